/** The user file of --auth-file: bcrypt entries as the real `htpasswd -B` writes them; everything else named and refused. */
import { execFileSync } from "node:child_process"
import { describe, expect, it } from "vitest"
import { parseHtpasswd } from "../../../src/runtime/auth/Htpasswd.ts"

/** One entry made by the real htpasswd, printed instead of written (-n). */
const entry = (flags: string, user: string, password: string): string =>
  execFileSync("/usr/bin/htpasswd", [`-nb${flags}`, user, password], { encoding: "utf8" }).trim()

describe("parseHtpasswd", () => {
  it("reads htpasswd -B entries ($2y$), skipping blank lines and comments", () => {
    const text = `# team\n${entry("B", "alice", "a")}\n\n${entry("B", "bob", "b")}\r\n`
    const r = parseHtpasswd(text, "users")
    expect(r.ok).toBe(true)
    if (!r.ok) return
    expect([...r.users.keys()]).toEqual(["alice", "bob"])
    expect(r.users.get("alice")).toMatch(/^\$2y\$05\$/)
  })

  it("accepts $2a$ and $2b$ hashes (other bcrypt tools)", () => {
    const hash = entry("B", "x", "y").split(":")[1]!.slice(4)
    const r = parseHtpasswd(`a:$2a$${hash}\nb:$2b$${hash}\n`, "users")
    expect(r.ok).toBe(true)
  })

  it.each([
    ["m", /line 1 \(user "carol"\) has an Apache MD5 \(\$apr1\$\) hash/],
    ["s", /line 1 \(user "carol"\) has a SHA-1 \(\{SHA\}\) hash/],
    ["p", /line 1 \(user "carol"\) has a plain-text password/],
  ])("refuses htpasswd -%s entries, naming the line and the command that makes a bcrypt entry", (flag, message) => {
    const r = parseHtpasswd(entry(flag, "carol", "secret") + "\n", "/etc/hctunnel/users")
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(r.problems).toHaveLength(1)
    expect(r.problems[0]).toMatch(message)
    expect(r.problems[0]).toContain("only bcrypt is accepted")
    expect(r.problems[0]).toContain("htpasswd -B /etc/hctunnel/users carol")
    expect(r.problems[0]).toContain("htpasswd -B -c /etc/hctunnel/users carol")
  })

  it("refuses crypt hashes and reports every bad line", () => {
    const r = parseHtpasswd(`${entry("B", "ok", "x")}\nd:$6$salt$abcdef\nnocolon\ne:\n`, "f")
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(r.problems).toEqual([
      expect.stringMatching(/^f: line 2 \(user "d"\) has a crypt SHA-512 hash/),
      'f: line 3 is not a "user:hash" entry',
      expect.stringMatching(/^f: line 4 \(user "e"\) has an empty password field/),
    ])
  })

  it("refuses a user listed twice, and a file without users", () => {
    const a = entry("B", "alice", "1")
    const twice = parseHtpasswd(`${a}\n${a}\n`, "f")
    expect(twice.ok === false && twice.problems[0]).toBe('f: user "alice" appears twice (lines 1 and 2); keep one entry')
    const empty = parseHtpasswd("# nobody yet\n", "f")
    expect(empty.ok === false && empty.problems[0]).toMatch(/^f has no user: add one with htpasswd -B f USER/)
  })
})
