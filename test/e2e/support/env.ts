/**
 * The environment of every program a test starts (the proxy, curl, python, the CLI): the machine's own
 * HCTUNNEL_* settings and proxy variables (http_proxy, HTTPS_PROXY, ALL_PROXY, NO_PROXY...) left out, so
 * they cannot change what is tested; plus `extra`.
 */
export const cleanEnv = (extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^HCTUNNEL_|_proxy$/i.test(k)) env[k] = v
  return { ...env, ...extra }
}
