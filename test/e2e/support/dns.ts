/**
 * A tiny authoritative DNS server on 127.0.0.1 (UDP, port 0) for tests: it answers A and AAAA
 * questions from a table the test gives, with loopback addresses, and can stay silent (a server that
 * never answers), answer late, or say NXDOMAIN. Every question it receives is recorded.
 *
 * It never forwards anything anywhere: a name not in the table is NXDOMAIN. Point the resolver under
 * test at it (`--dns-server 127.0.0.1:<port>`, `servers: [...]`), so no test reaches the system's
 * resolv.conf servers.
 */
import * as dgram from "node:dgram"
import { isIPv4, isIPv6 } from "node:net"

/** What the server does for one name: its addresses (A and AAAA picked by family), or a behaviour. */
export type DnsAnswer =
  | {
      readonly addresses: ReadonlyArray<string>
      readonly ttl?: number
      /** Answer late: every question, or per question type. */
      readonly delayMs?: number | { readonly A?: number; readonly AAAA?: number }
      /** Question types left unanswered for this name (a server that drops AAAA questions, say). */
      readonly never?: ReadonlyArray<"A" | "AAAA">
    }
  | "never" // no answer at all, to every question for the name
  | "nxdomain"

export interface Question {
  readonly name: string
  readonly type: "A" | "AAAA" | number
}

export interface TestDnsServer {
  readonly port: number
  /** "127.0.0.1:<port>", as --dns-server takes it. */
  readonly address: string
  readonly questions: Array<Question>
  /** Change or add the answer of a name while running. */
  readonly set: (name: string, answer: DnsAnswer) => void
  readonly close: () => Promise<void>
}

const TYPE_A = 1
const TYPE_AAAA = 28

/** Read the question name at `offset` (no compression in queries). */
const readName = (msg: Buffer, offset: number): { name: string; end: number } | undefined => {
  const labels: Array<string> = []
  let i = offset
  for (let n = 0; n < 128 && i < msg.length; n++) {
    const len = msg[i]!
    if (len === 0) return { name: labels.join(".").toLowerCase(), end: i + 1 }
    if (len > 63 || i + 1 + len > msg.length) return undefined
    labels.push(msg.toString("latin1", i + 1, i + 1 + len))
    i += 1 + len
  }
  return undefined
}

const ipv4Bytes = (a: string): Buffer => Buffer.from(a.split(".").map(Number))

const ipv6Bytes = (a: string): Buffer => {
  const [head = "", tail] = a.split("::")
  const parts = (s: string | undefined) => (s === undefined || s === "" ? [] : s.split(":"))
  const h = parts(head)
  const t = parts(tail)
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t]
  const out = Buffer.alloc(16)
  groups.forEach((g, k) => {
    out.writeUInt16BE(parseInt(g, 16), k * 2)
  })
  return out
}

/** The response to `query` (its question copied), with `records` as answers and `rcode`. */
const response = (
  query: Buffer,
  questionEnd: number,
  rcode: number,
  records: ReadonlyArray<{ type: number; ttl: number; data: Buffer }>,
): Buffer => {
  const header = Buffer.alloc(12)
  query.copy(header, 0, 0, 2) // ID
  const rd = query[2]! & 0x01
  header[2] = 0x80 | 0x04 | rd // QR, AA, RD copied
  header[3] = 0x80 | rcode // RA
  header.writeUInt16BE(1, 4)
  header.writeUInt16BE(records.length, 6)
  const answers = records.map((r) => {
    const rr = Buffer.alloc(12)
    rr.writeUInt16BE(0xc00c, 0) // the name: a pointer to the question
    rr.writeUInt16BE(r.type, 2)
    rr.writeUInt16BE(1, 4) // IN
    rr.writeUInt32BE(r.ttl, 6)
    rr.writeUInt16BE(r.data.length, 10)
    return Buffer.concat([rr, r.data])
  })
  return Buffer.concat([header, query.subarray(12, questionEnd), ...answers])
}

export const startDnsServer = (table: Readonly<Record<string, DnsAnswer>>): Promise<TestDnsServer> =>
  new Promise((resolve, reject) => {
    const answers = new Map<string, DnsAnswer>(Object.entries(table).map(([k, v]) => [k.toLowerCase(), v]))
    const questions: Array<Question> = []
    const timers = new Set<ReturnType<typeof setTimeout>>()
    const socket = dgram.createSocket("udp4")
    socket.on("message", (msg, from) => {
      if (msg.length < 12) return
      const q = readName(msg, 12)
      if (q === undefined || q.end + 4 > msg.length) return
      const qtype = msg.readUInt16BE(q.end)
      const questionEnd = q.end + 4
      questions.push({ name: q.name, type: qtype === TYPE_A ? "A" : qtype === TYPE_AAAA ? "AAAA" : qtype })
      const answer = answers.get(q.name) ?? "nxdomain"
      if (answer === "never") return
      const send = (reply: Buffer) => socket.send(reply, from.port, from.address)
      if (answer === "nxdomain") return send(response(msg, questionEnd, 3, []))
      if (answer.never?.some((t) => (t === "A" ? TYPE_A : TYPE_AAAA) === qtype) === true) return
      const records = answer.addresses.flatMap((a) =>
        qtype === TYPE_A && isIPv4(a)
          ? [{ type: TYPE_A, ttl: answer.ttl ?? 60, data: ipv4Bytes(a) }]
          : qtype === TYPE_AAAA && isIPv6(a)
            ? [{ type: TYPE_AAAA, ttl: answer.ttl ?? 60, data: ipv6Bytes(a) }]
            : [],
      )
      const reply = response(msg, questionEnd, 0, records) // no record of the type: NODATA
      const delayMs = typeof answer.delayMs === "object" ? (qtype === TYPE_A ? answer.delayMs.A : answer.delayMs.AAAA) : answer.delayMs
      if (delayMs === undefined) return send(reply)
      const timer = setTimeout(() => {
        timers.delete(timer)
        send(reply)
      }, delayMs)
      timers.add(timer)
    })
    socket.once("error", reject)
    socket.bind(0, "127.0.0.1", () => {
      const port = socket.address().port
      resolve({
        port,
        address: `127.0.0.1:${port}`,
        questions,
        set: (name, answer) => void answers.set(name.toLowerCase(), answer),
        close: () =>
          new Promise<void>((done) => {
            for (const t of timers) clearTimeout(t)
            socket.close(() => done())
          }),
      })
    })
  })
