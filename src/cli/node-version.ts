/**
 * The Node.js version check, run by src/cli.ts before anything else is loaded.
 * hctunnel's workers share one port with SO_REUSEPORT (`listen({ reusePort: true })`), which Node
 * supports from 22.12; older versions silently ignore the option. package.json's engines asks 22.19:
 * what the bundled @effect/platform-node declares, and a version the bundle was run on (2026-12-04:
 * --version, a proxied request over two workers, and `hctunnel/core`, all on Node 22.19.0).
 */
export const REQUIRED = { major: 22, minor: 19 } as const

/** undefined when `version` ("24.1.0" or "v24.1.0") is new enough, else the message to print. */
export const checkNodeVersion = (version: string): string | undefined => {
  const m = /^v?(\d+)\.(\d+)/.exec(version)
  const major = Number(m?.[1] ?? 0)
  const minor = Number(m?.[2] ?? 0)
  if (major > REQUIRED.major || (major === REQUIRED.major && minor >= REQUIRED.minor)) return undefined
  return (
    `hctunnel needs Node.js ${REQUIRED.major}.${REQUIRED.minor} or newer (24 recommended); this is Node.js ${version}.\n` +
    `Its worker threads share one listening port with SO_REUSEPORT, which older Node versions do not support.\n` +
    `Install a current Node.js (https://nodejs.org, or e.g. \`nvm install 24\`), or run it from a checkout with \`npx hctunnel\`, which uses the Node 24 installed in node_modules.`
  )
}
