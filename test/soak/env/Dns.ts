/**
 * The soak's DNS server, on 127.0.0.1 (UDP): A records for its own names (always 127.0.0.1), NXDOMAIN for
 * any other name, and a switch that makes it silent: every question dropped, as a server that went away.
 * It never forwards a question anywhere.
 */
import dgram from "node:dgram"

export interface SoakDns {
  readonly address: string
  questions: number
  silent: boolean
  close(): Promise<void>
}

/** The name asked in a query (labels from byte 12, no compression in questions), and where it ends. */
const question = (msg: Buffer): { name: string; end: number } | undefined => {
  const labels: Array<string> = []
  let i = 12
  while (i < msg.length) {
    const len = msg[i]!
    if (len === 0) return { name: labels.join(".").toLowerCase(), end: i + 1 }
    if (len > 63) return undefined
    labels.push(msg.toString("latin1", i + 1, i + 1 + len))
    i += 1 + len
  }
  return undefined
}

/** `names`: name -> TTL in seconds. */
export const startDns = (names: ReadonlyMap<string, number>): Promise<SoakDns> =>
  new Promise((resolve, reject) => {
    const socket = dgram.createSocket("udp4")
    const dns: SoakDns = {
      address: "",
      questions: 0,
      silent: false,
      close: () => new Promise((done) => socket.close(() => done())),
    }
    socket.on("message", (msg, from) => {
      dns.questions++
      if (dns.silent || msg.length < 12) return
      const q = question(msg)
      if (q === undefined || q.end + 4 > msg.length) return
      const qtype = msg.readUInt16BE(q.end)
      const ttl = names.get(q.name)
      const header = Buffer.alloc(12)
      msg.copy(header, 0, 0, 2)
      header[2] = 0x84 | (msg[2]! & 0x01) // a response, authoritative, RD copied
      header[3] = 0x80 | (ttl === undefined ? 3 : 0) // RA; NXDOMAIN for unknown names
      header.writeUInt16BE(1, 4)
      const answers: Array<Buffer> = []
      if (ttl !== undefined && qtype === 1) {
        const rr = Buffer.alloc(16)
        rr.writeUInt16BE(0xc00c, 0) // the name: the question's
        rr.writeUInt16BE(1, 2) // A
        rr.writeUInt16BE(1, 4) // IN
        rr.writeUInt32BE(ttl, 6)
        rr.writeUInt16BE(4, 10)
        rr.set([127, 0, 0, 1], 12)
        answers.push(rr)
      }
      header.writeUInt16BE(answers.length, 6) // AAAA questions: no record (NODATA)
      socket.send(Buffer.concat([header, msg.subarray(12, q.end + 4), ...answers]), from.port, from.address)
    })
    socket.once("error", reject)
    socket.bind(0, "127.0.0.1", () => {
      ;(dns as { address: string }).address = `127.0.0.1:${socket.address().port}`
      resolve(dns)
    })
  })
