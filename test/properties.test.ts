// Bad input, generated: every invalid name, option or --schema gets a clear error and changes nothing.
import { Duration, FastCheck as fc } from "effect"
import { existsSync, readdirSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { BatchError, createFlexiDB, InvalidArgumentError, redact, UnknownDatabaseError } from "../src/index.js"
import type { FlexiDB } from "../src/index.js"
import type { TestDatabase } from "./support/databases.js"
import { createDatabase } from "./support/databases.js"
import { fakeProject } from "./support/cli.js"
import type { AnyClient } from "./support/prisma.js"
import { clientFor, generations } from "./support/prisma.js"

const gen7 = generations[1]
/**
 * Cases per property: the default here, or FLEXIDB_PROPERTY_RUNS for all of them (npm run chaos runs 10,000 each).
 */
const runs = (fallback: number) => {
  const set = process.env.FLEXIDB_PROPERTY_RUNS
  if (set === undefined || set === "") return fallback
  const n = Number(set)
  if (!Number.isInteger(n) || n < 1) throw new Error(`FLEXIDB_PROPERTY_RUNS must be a positive integer, got ${set}`)
  return n
}
let sqlite: TestDatabase
let client: AnyClient
let flexi: FlexiDB<Record<string, AnyClient>>
beforeAll(async () => {
  sqlite = await createDatabase("sqlite")
  client = clientFor(gen7, sqlite)
  flexi = createFlexiDB<Record<string, AnyClient>>({ base: client }, { gracefulShutdown: false, healthCheck: { interval: 60_000 } })
})
afterAll(async () => {
  await flexi.disconnect()
  await sqlite.drop()
})

/** A connection string where a name or an option goes: its secret must appear in no error. */
const SECRET = "hunter2-Secret"
const credentials = fc.constantFrom(
  `postgresql://admin:${SECRET}@db.internal:5432/app`,
  `mysql://root:${SECRET}@10.0.0.7/app?connectTimeout=1000`,
  `file:./dev.db?password=${SECRET}`,
  `Server=db;Database=app;User Id=sa;Password=${SECRET};`
)
/** Neither its message nor its fields (JSON) repeat the secret. */
const noSecret = (error: unknown) => {
  const text = `${(error as Error).message}\n${JSON.stringify(error)}`
  return !text.includes(SECRET)
}
const prototypeNames = fc.constantFrom("__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "valueOf", "__defineGetter__")
const names = fc.oneof(
  prototypeNames,
  fc.string({ maxLength: 20 }),
  fc.string({ minLength: 120, maxLength: 300 }),
  fc.constantFrom("", " ", "\t", "a\nb", "x\u0000y", "ü-tenant", "tenant:42"),
  credentials
)

describe("database names", () => {
  it("an unregistered name always throws UnknownDatabaseError naming it, and never reads Object.prototype", () => {
    fc.assert(fc.property(names, (name) => {
      fc.pre(name !== "base")
      try {
        flexi.get(name)
        return false
      } catch (e) {
        return e instanceof UnknownDatabaseError && e.database === redact(name) && e.registered.includes("base") && noSecret(e)
      }
    }), { numRuns: runs(300) })
  })

  it("register() either serves the name exactly, or throws InvalidArgumentError and registers nothing", async () => {
    await fc.assert(fc.asyncProperty(names, async (name) => {
      fc.pre(name !== "base")
      const before = flexi.list()
      try {
        flexi.register(name, client)
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidArgumentError)
        expect(noSecret(e)).toBe(true)
        expect(flexi.list()).toEqual(before)
        return
      }
      expect(name).not.toContain(SECRET)
      expect(flexi.get(name)).toBe(flexi.get(name))
      expect(flexi.list()).toEqual([...before, name])
      expect(Object.keys(flexi.stats())).toContain(name)
      expect(() => flexi.register(name, client)).toThrow(/already registered/)
      await flexi.unregister(name)
      expect(flexi.list()).toEqual(before)
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    }), { numRuns: runs(60) })
    expect(Object.getPrototypeOf({})).toBe(Object.prototype)
  })
})

describe("options", () => {
  const bad = fc.oneof(
    fc.integer({ max: -1 }),
    fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0.5),
    fc.string(),
    fc.constant(null),
    fc.boolean(),
    fc.array(fc.integer(), { maxLength: 3 }).filter((a) => a.length !== 2 || a.some((n) => n < 0)),
    fc.constantFrom("-5 seconds", "5 fortnights", "Infinity millis"),
    credentials
  )
  const paths = fc.constantFrom(
    ["retry", "attempts"], ["retry", "delay"], ["retry", "maxDelay"], ["circuitBreaker", "threshold"],
    ["circuitBreaker", "resetTimeout"], ["healthCheck", "interval"], ["healthCheck", "timeout"],
    ["reconnect", "interval"], ["reconnect", "maxAttempts"]
  )

  it("an invalid numeric option throws InvalidArgumentError naming it, and connects nothing", () => {
    let connects = 0
    const spy = new Proxy(client, { get: (t, k) => (k === "$connect" ? () => (connects++, t.$connect()) : Reflect.get(t, k, t)) })
    fc.assert(fc.property(paths, bad, ([section, key], value) => {
      try {
        createFlexiDB({ a: spy }, { gracefulShutdown: false, [section!]: { [key!]: value } } as never)
        return false
      } catch (e) {
        return e instanceof InvalidArgumentError && e.message.startsWith(`Invalid ${section}.${key}:`) && noSecret(e)
      }
    }), { numRuns: runs(300) })
    expect(connects).toBe(0)
  })

  it("a duration option takes milliseconds or a Duration input, and a negative one is refused", async () => {
    const flexi = createFlexiDB({}, {
      gracefulShutdown: false,
      retry: { delay: "1 second", maxDelay: [2, 0] },
      healthCheck: { timeout: Duration.seconds(3) },
      operationTimeout: "250 millis"
    })
    await flexi.disconnect()
    expect(() => createFlexiDB({}, { gracefulShutdown: false, retry: { delay: "-1 second" } })).toThrow(
      'Invalid retry.delay: expected milliseconds or a duration such as "5 seconds", got "-1 second"'
    )
  })
})

describe("middleware", () => {
  /** What one middleware does with the call it wraps. */
  type Step = "pass" | "answer" | "throw" | "reject" | "twice" | "recover"
  const steps = fc.array(fc.constantFrom<Step>("pass", "answer", "throw", "reject", "twice", "recover"), { maxLength: 5 })
  const behaviour = (step: Step, i: number) => async (_db: string, _op: string, next: () => Promise<unknown>) => {
    switch (step) {
      case "pass":
        return next()
      case "answer":
        return `answer ${i}`
      case "throw":
        throw new Error(`thrown by ${i}`)
      case "reject":
        return Promise.reject(new Error(`rejected by ${i}`))
      case "twice":
        await next()
        return next()
      case "recover":
        return next().catch(() => `recovered by ${i}`)
    }
  }
  /** The onion's outcome, worked out from the outside in: the query itself counts no users. */
  const expected = (chain: ReadonlyArray<Step>, i = 0): { ok: true; value: unknown } | { ok: false; message: RegExp } => {
    if (i === chain.length) return { ok: true, value: 0 }
    const inner = () => expected(chain, i + 1)
    switch (chain[i]!) {
      case "pass":
        return inner()
      case "answer":
        return { ok: true, value: `answer ${i}` }
      case "throw":
        return { ok: false, message: new RegExp(`^thrown by ${i}$`) }
      case "reject":
        return { ok: false, message: new RegExp(`^rejected by ${i}$`) }
      case "twice": {
        const once = inner()
        return once.ok ? { ok: false, message: /called next\(\) more than once/ } : once
      }
      case "recover": {
        const once = inner()
        return once.ok ? once : { ok: true, value: `recovered by ${i}` }
      }
    }
  }

  it("use() of anything but a function throws InvalidArgumentError and adds nothing", async () => {
    fc.assert(fc.property(fc.anything(), (value) => {
      fc.pre(typeof value !== "function")
      expect(() => flexi.use(value as never)).toThrow(InvalidArgumentError)
    }), { numRuns: runs(300) })
    // Nothing was added: a query still runs through an empty chain.
    await expect(flexi.get("base").user.count()).resolves.toBe(0)
  })

  it("any chain settles a query as the onion says, counted once, and leaves nothing behind when removed", async () => {
    await fc.assert(fc.asyncProperty(steps, async (chain) => {
      const before = flexi.stats().base!
      const removers = chain.map((step, i) => flexi.use(behaviour(step, i)))
      const outcome = await flexi.get("base").user.count().then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error })
      )
      removers.forEach((remove) => remove())
      const want = expected(chain)
      if (want.ok) expect(outcome).toEqual(want)
      else {
        expect(outcome.ok).toBe(false)
        expect(((outcome as { error: Error }).error).message).toMatch(want.message)
      }
      // One operation, however often next() ran; an app's error says nothing about the database.
      const after = flexi.stats().base!
      expect(after.totalQueries - before.totalQueries).toBe(1)
      expect(after.failedQueries - before.failedQueries).toBe(want.ok ? 0 : 1)
      expect(after.circuitState).toBe("closed")
      await expect(flexi.get("base").user.count()).resolves.toBe(0)
    }), { numRuns: runs(200) })
  })
})

describe("batch operations", () => {
  /** What one batch operation does. */
  type Op = "value" | "query" | "reject" | "throw" | "plain"
  const run = (op: Op, name: string) => (client: AnyClient) => {
    switch (op) {
      case "value":
        return Promise.resolve(`value of ${name}`)
      case "query":
        return client.user.count()
      case "reject":
        return Promise.reject(new Error(`rejected on ${name}`))
      case "throw":
        throw new Error(`thrown on ${name}`)
      case "plain":
        return name.length
    }
  }
  const outcome = (op: Op, name: string) =>
    op === "value" ? `value of ${name}` : op === "query" ? 0 : op === "plain" ? name.length : undefined
  const valid = fc.dictionary(fc.constantFrom("base", "copy"), fc.constantFrom<Op>("value", "query", "reject", "throw", "plain"))

  it("a malformed batch rejects before anything runs, and changes nothing", async () => {
    const entry = fc.tuple(fc.oneof(fc.constantFrom("base", "copy"), names), fc.oneof(fc.constant("fn"), fc.anything()))
    const malformed = fc.oneof(
      // Not an object of operations at all.
      fc.anything().filter((v) => typeof v !== "object" || v === null || Array.isArray(v)),
      // An object with at least one name that is not registered or a value that is not a function.
      fc.array(entry, { minLength: 1, maxLength: 4 }).map((entries) => ({ entries }))
    )
    flexi.register("copy", clientFor(gen7, sqlite))
    try {
      await fc.assert(fc.asyncProperty(malformed, async (input) => {
        let calls = 0
        const fn = () => {
          calls++
          return 1
        }
        let ops: unknown = input
        if (typeof input === "object" && input !== null && "entries" in (input as object) && !Array.isArray(input)) {
          const entries = (input as { entries: Array<[string, unknown]> }).entries
          ops = Object.fromEntries(entries.map(([name, value]) => [name, value === "fn" ? fn : value]))
          const fine = Object.entries(ops as object).every(([name, value]) => (name === "base" || name === "copy") && value === fn)
          fc.pre(!fine)
        }
        const before = flexi.stats()
        const error = await flexi.batch(ops as never).then(() => undefined, (e: unknown) => e)
        expect(error instanceof InvalidArgumentError || error instanceof UnknownDatabaseError).toBe(true)
        expect(noSecret(error)).toBe(true)
        await Promise.resolve()
        expect(calls).toBe(0)
        expect(flexi.stats().base!.totalQueries).toBe(before.base!.totalQueries)
        expect(flexi.list()).toEqual(["base", "copy"])
      }), { numRuns: runs(300) })
    } finally {
      await flexi.unregister("copy")
    }
  })

  it("every operation runs once; batch() fails with exactly the failed ones, batchSettled() says each", async () => {
    flexi.register("copy", clientFor(gen7, sqlite))
    try {
      await fc.assert(fc.asyncProperty(valid, fc.boolean(), async (plan, settled) => {
        const calls: Record<string, number> = {}
        const ops = Object.fromEntries(Object.entries(plan).map(([name, op]) => [name, (c: AnyClient) => {
          calls[name] = (calls[name] ?? 0) + 1
          return run(op, name)(c)
        }]))
        const failing = Object.keys(plan).filter((name) => plan[name] === "reject" || plan[name] === "throw")
        if (settled) {
          const results = await flexi.batchSettled(ops as never) as Record<string, PromiseSettledResult<unknown>>
          for (const [name, op] of Object.entries(plan)) {
            const r = results[name]!
            if (failing.includes(name)) expect(r).toMatchObject({ status: "rejected", reason: { message: `${op === "throw" ? "thrown" : "rejected"} on ${name}` } })
            else expect(r).toEqual({ status: "fulfilled", value: outcome(op, name) })
          }
        } else {
          const result = await flexi.batch(ops as never).then((v) => ({ v }), (e: unknown) => ({ e }))
          if (failing.length === 0) {
            expect(result).toEqual({ v: Object.fromEntries(Object.entries(plan).map(([name, op]) => [name, outcome(op, name)])) })
          } else {
            const error = (result as { e: unknown }).e
            expect(error).toBeInstanceOf(BatchError)
            expect(Object.keys((error as BatchError).failures).sort()).toEqual([...failing].sort())
            expect(Object.keys((error as BatchError).results).sort()).toEqual(Object.keys(plan).filter((n) => !failing.includes(n)).sort())
          }
        }
        expect(calls).toEqual(Object.fromEntries(Object.keys(plan).map((name) => [name, 1])))
      }), { numRuns: runs(300) })
    } finally {
      await flexi.unregister("copy")
    }
  })
})

describe("--schema path tricks", () => {
  const tricky = fc.oneof(
    fc.tuple(fc.constantFrom("../", "..\\", "/", "./", "a/", "~/", "C:\\", "%2e%2e/"), fc.string({ maxLength: 12 }))
      .map(([a, b]) => a + b),
    fc.string({ maxLength: 12 }).map((s) => `${s}/../user`),
    fc.constantFrom("..", ".", "user/", "/user", "user\u0000", "user.prisma/..", "")
  )

  it("are refused, run nothing and write nothing", async () => {
    const p = fakeProject(7, { user: "sqlite" })
    const listing = () => readdirSync(p.root, { recursive: true }).map(String).sort()
    const before = listing()
    try {
      await fc.assert(fc.asyncProperty(tricky, async (value) => {
        const r = await p.cli(["validate", "--schema", value])
        expect(r.code).not.toBe(0)
        expect(r.err).toMatch(/is refused|No schema named/)
        expect(p.calls()).toEqual([])
      }), { numRuns: runs(60) })
      expect(listing()).toEqual(before)
      expect(existsSync(join(p.root, "node_modules", ".cache"))).toBe(false)
    } finally {
      p.remove()
    }
  })
})

describe("CLI flags", () => {
  /** Commands that take `--schema`, `--json` and `--concurrency`. */
  const command = fc.constantFrom(["validate"], ["format"], ["generate"], ["migrate", "status"], ["db", "pull"], ["doctor"])
  const good = fc.oneof(
    fc.constant(["--schema", "user"]),
    fc.constant(["--json"]),
    fc.integer({ min: 1, max: 1000 }).map((n) => ["--concurrency", String(n)])
  )
  const booleanWords = new Set(["true", "1", "y", "yes", "on", "false", "0", "n", "no", "off"])
  /** One thing wrong, and what the error must name. */
  const bad: fc.Arbitrary<{ readonly args: ReadonlyArray<string>; readonly says: string }> = fc.oneof(
    fc.stringMatching(/^--[a-z][a-z-]{0,12}$/)
      .filter((flag) => !["--schema", "--json", "--concurrency", "--help", "--version", "--timeout", "--force", "--log-level", "--completions", "--wizard"].includes(flag))
      .map((flag) => ({ args: [flag], says: `unknown argument: '${flag}'` })),
    fc.oneof(
      fc.integer({ max: 0 }).map(String),
      fc.integer({ min: 1001 }).map(String),
      fc.constantFrom("abc", "1.5", "1e3", "0x10", "NaN", "Infinity", "١٢", `postgresql://u:${SECRET}@h/db`)
    ).chain((value) => fc.constantFrom([`--concurrency=${value}`], ["--concurrency", value]))
      .map((args) => ({ args, says: "--concurrency must be a whole number from 1 to 1000" })),
    fc.constant({ args: ["--concurrency="], says: "unknown argument: '--concurrency='" }),
    fc.string({ minLength: 1, maxLength: 12 })
      // Not a word @effect/cli reads as a boolean flag's value (`--json yes` is `--json`).
      .filter((word) => !word.startsWith("-") && word.trim() === word && word !== "help" && !booleanWords.has(word.toLowerCase()))
      .map((word) => ({ args: [word], says: `unknown argument: '${word}'` }))
  )
  const argv = fc.tuple(command, fc.array(good, { maxLength: 3 }), bad, fc.nat()).map(([cmd, flags, wrong, at]) => {
    // Each good flag once, and not the one given wrong (a repeated flag is an error of its own), the wrong thing
    // anywhere among them.
    const once = [...new Map(flags.map((f) => [f[0], f])).values()].filter((f) => !wrong.args[0]!.startsWith(f[0]!))
    const position = at % (once.length + 1)
    return { argv: [...cmd, ...[...once.slice(0, position), wrong.args, ...once.slice(position)].flat()], cmd, says: wrong.says }
  })

  it("one bad flag or value anywhere: exit 2, the error names it and the help to read, nothing runs or is written", async () => {
    const p = fakeProject(7, { user: "sqlite" }, `DATABASE_URL_USER=file:./u.db?password=${SECRET}\n`)
    const listing = () => readdirSync(p.root, { recursive: true }).map(String).sort()
    const before = listing()
    try {
      await fc.assert(fc.asyncProperty(argv, async ({ argv, cmd, says }) => {
        const before = p.calls().length
        const r = await p.cli(argv)
        expect(r.code).toBe(2)
        expect(r.err.toLowerCase()).toContain(says.toLowerCase())
        expect(r.err).toContain(`Usage: flexidb ${cmd.join(" ")} --help`)
        // No stack trace (a crash), no secret echoed.
        expect(r.err).not.toMatch(/^\s+at /m)
        expect(r.out + r.err).not.toContain(SECRET)
        expect(p.calls().length - before).toBe(0)
      }), { numRuns: runs(100) })
      expect(p.calls()).toEqual([])
      expect(listing()).toEqual(before)
    } finally {
      p.remove()
    }
  })
})

describe("credentials in CLI output", () => {
  it("a connection string echoed by prisma is printed without its password", async () => {
    const p = fakeProject(7, { user: "postgresql" }, "DATABASE_URL_USER=postgresql://admin:pa55-Secret@db.internal:5432/user\n")
    try {
      for (const args of [["migrate", "deploy"], ["migrate", "status", "--json"]]) {
        const r = await p.cli(args, { FAKE_PRISMA_FAIL: "user" })
        expect(r.code).toBe(3)
        expect(r.out + r.err).toContain("postgresql://***@db.internal:5432/user")
        expect(r.out + r.err).not.toContain("pa55-Secret")
      }
    } finally {
      p.remove()
    }
  })
})
