// Bad input, generated: every invalid name, option or --schema gets a clear error and changes nothing.
import { Duration, FastCheck as fc } from "effect"
import { existsSync, readdirSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createFlexiDB, InvalidArgumentError, UnknownDatabaseError } from "../src/index.js"
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

const prototypeNames = fc.constantFrom("__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "valueOf", "__defineGetter__")
const names = fc.oneof(
  prototypeNames,
  fc.string({ maxLength: 20 }),
  fc.string({ minLength: 120, maxLength: 300 }),
  fc.constantFrom("", " ", "\t", "a\nb", "x\u0000y", "ü-tenant", "tenant:42")
)

describe("database names", () => {
  it("an unregistered name always throws UnknownDatabaseError naming it, and never reads Object.prototype", () => {
    fc.assert(fc.property(names, (name) => {
      fc.pre(name !== "base")
      try {
        flexi.get(name)
        return false
      } catch (e) {
        return e instanceof UnknownDatabaseError && e.database === name && e.registered.includes("base")
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
        expect(flexi.list()).toEqual(before)
        return
      }
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
    fc.constantFrom("-5 seconds", "5 fortnights", "Infinity millis")
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
        return e instanceof InvalidArgumentError && e.message.startsWith(`Invalid ${section}.${key}:`)
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
