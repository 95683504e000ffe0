// Runtime registration, lifecycle hooks, read/write pairs and databases that are down, against real databases.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest"
import {
  CircuitOpenError,
  ClosedError,
  createFlexiDB,
  DuplicateDatabaseError,
  InvalidArgumentError,
  UnknownDatabaseError
} from "../src/index.js"
import type { TestDatabase } from "./support/databases.js"
import pg from "pg"
import { generations, downClient, openDatabase, SECRET } from "./support/prisma.js"

const [gen6, gen7] = generations
const opened: Array<TestDatabase> = []
const open = async (gen: (typeof generations)[number], provider: "sqlite" | "postgresql" | "mysql") => {
  const r = await openDatabase(gen, provider)
  opened.push(r.db)
  return r.client
}
afterAll(() => Promise.all(opened.map((d) => d.drop())))

const unhandled: Array<unknown> = []
const onUnhandled = (e: unknown) => unhandled.push(e)
beforeAll(() => {
  process.on("unhandledRejection", onUnhandled)
})
afterAll(() => {
  process.off("unhandledRejection", onUnhandled)
})
afterEach(() => {
  expect(unhandled).toEqual([])
})

const base = { gracefulShutdown: false } as const

describe("register() and unregister()", () => {
  it("registers at run time, usable at once, and connects in the background", async () => {
    const events: Array<string> = []
    const flexi = createFlexiDB({}, { ...base, hooks: { onConnect: (n) => events.push(`connect:${n}`) } })
    const typed = flexi.register("tenant_a", await open(gen7, "sqlite"))
    const count = await typed.get("tenant_a").user.count()
    expect(count).toBe(0)
    expect(await typed.ready()).toEqual({ tenant_a: true })
    expect(events).toEqual(["connect:tenant_a"])
    expect(typed.stats().tenant_a.connected).toBe(true)
    await flexi.disconnect()
  })

  it("refuses a registered name, an invalid name or a non-client, and changes nothing", async () => {
    const client = await open(gen7, "sqlite")
    const flexi = createFlexiDB({ a: client }, base)
    expect(() => flexi.register("a", client)).toThrow(DuplicateDatabaseError)
    expect(() => flexi.register("", client)).toThrow(InvalidArgumentError)
    expect(() => flexi.register("x".repeat(129), client)).toThrow(/at most 128 characters/)
    expect(() => flexi.register("b", {} as never)).toThrow(/expected a Prisma client/)
    expect(() => flexi.register("b", { read: client } as never)).toThrow(/expected a Prisma client/)
    expect(flexi.list()).toEqual(["a"])
    await flexi.disconnect()
  })

  it("unregister() stops serving the name, disconnects it and fires onDisconnect", async () => {
    const disconnected: Array<string> = []
    const flexi = createFlexiDB(
      { a: await open(gen6, "postgresql"), b: await open(gen7, "mysql") },
      { ...base, hooks: { onDisconnect: (n) => disconnected.push(n) } }
    )
    await flexi.ready()
    const a = flexi.get("a")
    await flexi.unregister("a")
    expect(disconnected).toEqual(["a"])
    expect(() => flexi.get("a")).toThrow("Unknown database 'a' (registered: 'b')")
    expect(flexi.list()).toEqual(["b"])
    await expect(flexi.unregister("a")).rejects.toBeInstanceOf(UnknownDatabaseError)
    // The name is free again.
    flexi.register("a", await open(gen7, "sqlite"))
    expect(await flexi.get("a").user.count()).toBe(0)
    expect(a).not.toBe(flexi.get("a"))
    await flexi.disconnect()
  })
})

describe("hooks", () => {
  it("a hook that throws or rejects never breaks flexidb", async () => {
    const flexi = createFlexiDB({ a: await open(gen7, "sqlite") }, {
      ...base,
      healthCheck: {
        onStatusChange: () => {
          throw new Error("hook bug")
        }
      },
      hooks: { onConnect: () => Promise.reject(new Error("async hook bug")), onDisconnect: () => {
        throw new Error("hook bug")
      } }
    })
    expect(await flexi.ready()).toEqual({ a: true })
    expect(await flexi.get("a").user.count()).toBe(0)
    await flexi.disconnect()
    await new Promise((r) => setTimeout(r, 20))
  })
})

describe("clients kept across unregister() and disconnect()", () => {
  it("a client kept from get() after unregister() sends nothing and reopens no connection", async () => {
    const { db, client } = await openDatabase(gen7, "postgresql")
    opened.push(db)
    const flexi = createFlexiDB({ t: client }, base)
    await flexi.ready()
    const kept = flexi.get("t")
    await flexi.unregister("t")
    await expect(kept.user.count()).rejects.toMatchObject({ _tag: "ClosedError", database: "t" })
    const name = new URL(db.url).pathname.slice(1)
    const admin = new pg.Client({ connectionString: db.url.replace(`/${name}`, "/postgres") })
    await admin.connect()
    const { rows } = await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1", [name])
    await admin.end()
    expect(rows[0].n).toBe(0)
    await flexi.disconnect()
  })

  it("ready() still waiting when disconnect() comes resolves: those databases never connected", async () => {
    const flexi = createFlexiDB({ down: downClient(gen7, "postgresql") }, { ...base, retry: { attempts: 5, delay: 1000 } })
    const ready = flexi.ready()
    await flexi.disconnect()
    expect(await ready).toEqual({ down: false })
  })
})

describe("disconnect()", () => {
  it("disconnects every client, fires onDisconnect for each, and is idempotent", async () => {
    const disconnected: Array<string> = []
    const flexi = createFlexiDB(
      { a: await open(gen7, "postgresql"), b: { read: await open(gen7, "sqlite"), write: await open(gen7, "sqlite") } },
      { ...base, healthCheck: { interval: 50 }, hooks: { onDisconnect: (n) => disconnected.push(n) } }
    )
    await flexi.ready()
    await Promise.all([flexi.disconnect(), flexi.disconnect()])
    await flexi.disconnect()
    expect(disconnected.sort()).toEqual(["a", "b"])
    expect(() => flexi.get("a")).toThrow(ClosedError)
    expect(() => flexi.register("c", {} as never)).toThrow(ClosedError)
  })

  it("after disconnect() every method answers as documented: reads are empty, changes throw ClosedError", async () => {
    const flexi = createFlexiDB({ a: await open(gen7, "sqlite") }, base)
    flexi.group("g", ["a"])
    await flexi.disconnect()
    expect(await flexi.health()).toEqual({})
    expect(await flexi.ready()).toEqual({})
    expect(flexi.stats()).toEqual({})
    expect(flexi.list()).toEqual([])
    await expect(flexi.unregister("a")).rejects.toBeInstanceOf(ClosedError)
    await expect(flexi.batch({ a: (c) => c.user.count() })).rejects.toBeInstanceOf(ClosedError)
    await expect(flexi.healthGroup("g")).rejects.toBeInstanceOf(ClosedError)
    expect(() => flexi.group("g")).toThrow(ClosedError)
    expect(() => flexi.use(async (_d, _o, next) => next())).toThrow(ClosedError)
  })
})

describe("read/write pairs", () => {
  it("'read' picks the replica, 'write' and the default the primary; stats are per database", async () => {
    const write = await open(gen7, "postgresql")
    const read = await open(gen7, "postgresql")
    const flexi = createFlexiDB({ main: { read, write } }, base)
    await flexi.get("main").user.create({ data: { email: "w@x.io" } })
    expect(await flexi.get("main", "write").user.count()).toBe(1)
    expect(await flexi.get("main", "read").user.count()).toBe(0)
    expect(flexi.stats().main.totalQueries).toBe(3)
    expect(await flexi.health()).toEqual({ main: true })
    // A role that is neither is refused, not silently served by the primary.
    expect(() => flexi.get("main", "reader" as "read")).toThrow("Invalid role: expected 'read' or 'write', got \"reader\"")
    await flexi.disconnect()
  })

  it("health() probes every replica, but a replica that is down never makes the database unhealthy", async () => {
    const write = await open(gen7, "postgresql")
    const read = await open(gen7, "postgresql")
    const down = downClient(gen7, "postgresql")
    const changes: Array<[string, boolean, string]> = []
    const flexi = createFlexiDB({ healthy: { read, write }, replicaDown: { read: [read, down], write } }, {
      ...base,
      retry: { attempts: 0 },
      reconnect: { enabled: false },
      healthCheck: { timeout: 2000, onStatusChange: (name, ok, m) => changes.push([name, ok, `${m.role}${m.index}`]) }
    })
    expect(await flexi.ready()).toEqual({ healthy: true, replicaDown: true })
    expect(await flexi.health()).toEqual({ healthy: true, replicaDown: true })
    const stats = flexi.stats().replicaDown
    expect(stats.connected).toBe(true)
    expect(stats.members.map((m) => [m.role, m.index, m.healthy])).toEqual([["write", 0, true], ["read", 0, true], ["read", 1, false]])
    expect(JSON.stringify(flexi.stats())).not.toContain(SECRET)
    expect(changes.sort()).toEqual([
      ["healthy", true, "read0"], ["healthy", true, "write0"],
      ["replicaDown", false, "read1"], ["replicaDown", true, "read0"], ["replicaDown", true, "write0"]
    ])
    await flexi.disconnect()
  })

  it("round-robins over several read clients; a single client serves both roles", async () => {
    const [r1, r2, w] = [await open(gen7, "sqlite"), await open(gen7, "sqlite"), await open(gen7, "sqlite")]
    await r2.user.create({ data: { email: "only-r2@x.io" } })
    const flexi = createFlexiDB({ pair: { read: [r1, r2], write: w }, single: w }, base)
    const counts = [
      await flexi.get("pair", "read").user.count(),
      await flexi.get("pair", "read").user.count(),
      await flexi.get("pair", "read").user.count()
    ]
    expect(counts).toEqual([0, 1, 0])
    expect(flexi.get("single", "read")).toBe(flexi.get("single", "write"))
    await flexi.disconnect()
  })
})

describe("a database that is down", () => {
  it.each(["postgresql", "mysql"] as const)(
    "on %s never crashes start-up, reports itself down, and keeps credentials out of everything",
    async (provider) => {
      const seen: Array<unknown> = []
      const good = await open(gen7, "sqlite")
      const flexi = createFlexiDB({ good, down: downClient(gen7, provider) }, {
        ...base,
        retry: { attempts: 1, delay: 10 },
        reconnect: { enabled: false },
        circuitBreaker: { threshold: 2, resetTimeout: 60_000 },
        hooks: {
          onError: (...args) => seen.push(args),
          onRetry: (...args) => seen.push(args)
        },
        healthCheck: { timeout: 3000, onStatusChange: (...args) => seen.push(args) }
      })
      expect(await flexi.ready()).toEqual({ good: true, down: false })
      expect(await flexi.health()).toEqual({ good: true, down: false })
      const stats = flexi.stats()
      expect(stats.down.connected).toBe(false)
      expect(stats.down.lastError).toBeTruthy()
      expect(stats.good.connected).toBe(true)

      // Queries fail with the driver's error until the breaker opens, then fail fast without running.
      const errors: Array<unknown> = []
      for (let i = 0; i < 3; i++) errors.push(await flexi.get("down").user.count().catch((e) => e))
      expect(errors[2]).toBeInstanceOf(CircuitOpenError)
      expect(flexi.stats().down.circuitState).toBe("open")
      expect(flexi.stats().down.rejectedQueries).toBe(1)
      expect(await flexi.get("good").user.count()).toBe(0)

      const everything = JSON.stringify([flexi.stats(), await flexi.health(), seen.map(String), seen, errors.map(String)],
        (_k, v) => v instanceof Error ? { message: v.message, stack: v.stack, cause: String(v.cause) } : v)
      expect(everything).not.toContain(SECRET)
      expect(seen.some((e) => Array.isArray(e) && e[0] === "down" && e[1] === false)).toBe(true)
      await flexi.disconnect()
    }
  )

  it("says once, through the logger, that a database is down — and nothing with logger: false", async () => {
    const lines: Array<string> = []
    const flexi = createFlexiDB({ down: downClient(gen7, "postgresql"), good: await open(gen7, "sqlite") }, {
      ...base,
      retry: { attempts: 0 },
      reconnect: { enabled: false },
      logger: { warn: (line) => lines.push(line) }
    })
    await flexi.ready()
    await flexi.health()
    await flexi.get("down").user.count().catch(() => {})
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^Database 'down' is down: .*Can't reach database server at 127\.0\.0\.1:1.*\. Reconnect is off/)
    expect(lines[0]).not.toContain(SECRET)
    await flexi.disconnect()

    const warn = vi.spyOn(console, "warn").mockImplementation(() => {})
    try {
      const silent = createFlexiDB({ down: downClient(gen7, "postgresql") }, { ...base, retry: { attempts: 0 }, logger: false })
      await silent.ready()
      await silent.disconnect()
      expect(warn).not.toHaveBeenCalled()
      // By default, one line on stderr.
      const loud = createFlexiDB({ down: downClient(gen7, "postgresql") }, { ...base, retry: { attempts: 0 }, reconnect: { enabled: false } })
      await loud.ready()
      await loud.disconnect()
      expect(warn.mock.calls.map((c) => String(c[0]))).toEqual([expect.stringMatching(/^\[flexidb\] Database 'down' is down: /)])
    } finally {
      warn.mockRestore()
    }
    expect(() => createFlexiDB({}, { logger: "yes" as never })).toThrow(/Invalid logger: .*warn\(message\)/)
  })

  it("says Prisma's reason in lastError and BatchError without Prisma's code frame", async () => {
    const flexi = createFlexiDB({ down: downClient(gen7, "postgresql") }, {
      ...base,
      retry: { attempts: 0 },
      reconnect: { enabled: false },
      circuitBreaker: { threshold: 100 }
    })
    await flexi.ready()
    // Prisma's message quotes the lines of this file around the call, for a terminal.
    const raw = await flexi.get("down").user.count().catch((e: Error) => e)
    expect((raw as Error).message).toMatch(/invocation in/)
    const batch = await flexi.batch({ down: (c) => c.user.count() }).catch((e: Error) => e)
    for (const text of [flexi.stats().down.lastError!, (batch as Error).message]) {
      expect(text).not.toMatch(/registry\.test\.ts|invocation in|→|await flexi/)
      expect(text).toMatch(/Can't reach database server at 127\.0\.0\.1:1/)
    }
    await flexi.disconnect()
  })

  it("a call refused by Prisma's validation never reaches the database: it neither counts nor resets the breaker", async () => {
    const flexi = createFlexiDB({ down: downClient(gen7, "postgresql") }, {
      ...base,
      retry: { attempts: 0 },
      reconnect: { enabled: false },
      circuitBreaker: { threshold: 2, resetTimeout: 60_000 }
    })
    await flexi.ready()
    const down = flexi.get("down")
    await expect(down.user.count()).rejects.toThrow()
    await expect(down.user.create({ data: { email: 42 as never } })).rejects.toMatchObject({ name: "PrismaClientValidationError" })
    await expect(down.user.count()).rejects.toThrow()
    expect(flexi.stats().down.circuitState).toBe("open")
    await flexi.disconnect()
  })
})

describe("options", () => {
  it("intercept: false returns the bare client, to get() and batch() operations alike, and counts only operations", async () => {
    const client = await open(gen7, "sqlite")
    const flexi = createFlexiDB({ a: client }, { ...base, intercept: false })
    expect(flexi.get("a")).toBe(client)
    await flexi.get("a").user.count()
    expect(flexi.stats().a.totalQueries).toBe(0)
    expect(await flexi.batch({ a: async (c) => c === client })).toEqual({ a: true })
    expect(flexi.stats().a.totalQueries).toBe(1)
    await flexi.disconnect()
  })

  it("a batch() operation gets one client, its own (not get()'s), the same for every batch", async () => {
    const client = await open(gen7, "sqlite")
    const flexi = createFlexiDB({ a: client }, base)
    const seen: Array<unknown> = []
    await flexi.batch({ a: async (c) => seen.push(c) })
    await flexi.batch({ a: async (c) => seen.push(c) })
    expect(seen[0]).toBe(seen[1])
    expect(seen[0]).not.toBe(flexi.get("a"))
    // Its queries are the operation's: counted once, as the operation.
    await flexi.batch({ a: (c) => Promise.all([c.user.count(), c.user.findMany()]) })
    expect(flexi.stats().a.totalQueries).toBe(3)
    await flexi.disconnect()
  })

  it.each([
    [{ retry: { attempts: -1 } }, "retry.attempts: must be at least 0"],
    [{ retry: { backoff: "linear" } }, "retry.backoff: expected 'exponential' or 'fixed'"],
    [{ healthCheck: { interval: 0 } }, "healthCheck.interval: must be at least 1"],
    [{ reconnect: { interval: 0 } }, "reconnect.interval: must be at least 1"],
    [{ circuitBreaker: { threshold: 1.5 } }, "circuitBreaker.threshold: expected a whole number"],
    [{ retry: { delay: Number.NaN } }, "retry.delay: expected a finite number"],
    [{ hooks: { onConnect: "yes" } }, "hooks.onConnect: expected a function"],
    [{ retyr: {} }, "retyr: unknown option"],
    [{ healthCheck: { intervall: 5 } }, "healthCheck.intervall: unknown option"]
  ])("rejects %j with a clear error and starts nothing", async (options, message) => {
    const client = await open(gen7, "sqlite")
    let connects = 0
    const spy = new Proxy(client, {
      get: (t, k, r) => k === "$connect" ? () => (connects++, t.$connect()) : Reflect.get(t, k, r)
    })
    expect(() => createFlexiDB({ a: spy }, options as never)).toThrow(InvalidArgumentError)
    expect(() => createFlexiDB({ a: spy }, options as never)).toThrow(message)
    await new Promise((r) => setTimeout(r, 20))
    expect(connects).toBe(0)
  })
})
