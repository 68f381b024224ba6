/** A self-signed certificate for `localhost` / 127.0.0.1, made at test time with the openssl CLI. */
import { execFile } from "node:child_process"
import { mkdtemp, readFile, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"

const run = promisify(execFile)

export interface Cert {
  readonly dir: string
  readonly keyFile: string
  readonly certFile: string
  readonly key: string
  readonly cert: string
  remove(): Promise<void>
}

export const makeCert = async (): Promise<Cert> => {
  const dir = await mkdtemp(join(tmpdir(), "hctunnel-e2e-cert-"))
  const keyFile = join(dir, "key.pem")
  const certFile = join(dir, "cert.pem")
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,digitalSignature,keyCertSign",
    "-addext",
    "extendedKeyUsage=serverAuth",
    "-keyout",
    keyFile,
    "-out",
    certFile,
  ])
  return {
    dir,
    keyFile,
    certFile,
    key: await readFile(keyFile, "utf8"),
    cert: await readFile(certFile, "utf8"),
    remove: () => rm(dir, { recursive: true, force: true }),
  }
}
