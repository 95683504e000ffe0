// Replica sets against a real PostgreSQL primary with two streaming replicas (and MariaDB pairs of separate
// databases): failover without a failed read, lag and read-your-writes, balance policies, writes refused.
import { it as effect } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  createFlexiDB,
  Database,
  FlexiDBService,
  InvalidArgumentError,
  ReadOnlyError,
  ReplicaUnavailableError
} from "../src/index.js"
import type { ReadWriteClient } from "../src/index.js"
import * as prisma7 from "./fixtures/prisma7/clients.ts"
import { createDatabase } from "./support/databases.js"
import type { TestDatabase } from "./support/databases.js"
import { stepUntil, until } from "./support/effect.js"
import { downClient, generations } from "./support/prisma.js"
import type { AnyClient } from "./support/prisma.js"
import type { ReplicaSet } from "./support/replica.js"
import { startReplicaSet } from "./support/replica.js"

type Pg = ReturnType<typeof prisma7.postgresql>
const base = { gracefulShutdown: false } as const
let set: ReplicaSet

beforeAll(async () => {
  set = await startReplicaSet(2)
  await set.primary.sql(`CREATE TABLE "User" (id SERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT)`)
  await set.primary.sql(`CREATE TABLE "Post" (id SERIAL PRIMARY KEY, title TEXT NOT NULL, "authorId" INTEGER NOT NULL REFERENCES "User"(id))`)
  await set.caughtUp()
}, 120_000)
afterAll(() => set?.stop())

let unique = 0
const email = (what: string) => `${what}-${process.pid}-${unique++}@x.io`

/** A pair over the real primary and its replicas, with fresh clients. */
const pair = (extra: Partial<ReadWriteClient<Pg>> = {}): ReadWriteClient<Pg> => ({
  write: prisma7.postgresql(set.primary.url()),
  read: set.replicas.map((r) => prisma7.postgresql(r.url())),
  ...extra
})

const members = (flexi: { stats(): Record<string, { members: ReadonlyArray<{ totalQueries: number }> }> }) =>
  flexi.stats().main!.members.map((m) => m.totalQueries)

describe("a dead replica costs no failed read", () => {
  effect.scoped("under steady read load: 0 failed reads, out of rotation at once, back within one health interval", () =>
    Effect.gen(function*() {
      const registry = yield* FlexiDBService.make({ main: pair() }, {
        ...base,
        reconnect: { enabled: false },
        healthCheck: { interval: 1_000, timeout: 500 }
      })
      expect(yield* registry.ready).toEqual({ main: true })
      const read = yield* registry.get("main", "read")
      const stats = () => Effect.map(registry.stats, (s) => s.main.members)
      let failed = 0
      const load = (workers: number, reads: number) =>
        Effect.promise(() =>
          Promise.all(Array.from({ length: workers }, async () => {
            for (let i = 0; i < reads; i++) await read.user.count().catch(() => failed++)
          }))
        )
      yield* load(4, 10)
      const warm = yield* stats()
      expect(warm[1]!.totalQueries).toBeGreaterThan(0)
      expect(warm[2]!.totalQueries).toBeGreaterThan(0)

      set.killReplica(1)
      yield* load(4, 25)
      expect(failed).toBe(0)
      const afterKill = yield* stats()
      expect(afterKill[2]).toMatchObject({ healthy: false })
      // At most the reads in flight when it died failed on it; each ran again on the other replica.
      expect(afterKill[2]!.failedQueries).toBeLessThanOrEqual(4)
      yield* load(4, 10)
      expect((yield* stats())[2]!.totalQueries).toBe(afterKill[2]!.totalQueries)
      expect(failed).toBe(0)

      set.startReplica(1)
      // One health interval after it answers again, it is back in rotation.
      yield* stepUntil(() => Effect.runSync(Effect.map(registry.stats, (s) => s.main.members[2]!.healthy)), 1_000, 1)
      yield* load(2, 10)
      expect((yield* stats())[2]!.totalQueries).toBeGreaterThan(afterKill[2]!.totalQueries)
      expect(failed).toBe(0)
    }), 60_000)

  it("every replica down: reads go to the writer and the database is healthy; fallback 'error' refuses instead", async () => {
    const write = prisma7.postgresql(set.primary.url())
    const read = [downClient(generations[1], "postgresql"), downClient(generations[1], "postgresql")] as unknown as Array<Pg>
    const flexi = createFlexiDB({ main: { write, read }, strict: { write, read, fallback: "error" } }, {
      ...base,
      retry: { attempts: 0 },
      reconnect: { enabled: false }
    })
    expect(await flexi.ready()).toEqual({ main: true, strict: true })
    expect(await flexi.get("main", "read").user.count()).toBeGreaterThanOrEqual(0)
    expect(await flexi.health()).toEqual({ main: true, strict: true })
    expect(flexi.stats().main.members.map((m) => m.healthy)).toEqual([true, false, false])
    await expect(flexi.get("strict", "read").user.count()).rejects.toBeInstanceOf(ReplicaUnavailableError)
    await flexi.disconnect()
  })
})

describe("replication lag and read-your-writes", () => {
  it.each(["window", "lsn"] as const)("%s mode: stale outside a session, the session sees its own write", async (mode) => {
    const flexi = createFlexiDB({ main: pair() }, { ...base, replicas: { readYourWrites: { mode } } })
    await flexi.ready()
    const [outside, inside] = [email("outside"), email("inside")]
    await set.pauseReplay(0)
    await set.pauseReplay(1)
    try {
      await flexi.get("main").user.create({ data: { email: outside } })
      expect(await flexi.get("main", "read").user.findUnique({ where: { email: outside } })).toBeNull()
      await flexi.session(async () => {
        await flexi.get("main").user.create({ data: { email: inside } })
        expect(await flexi.get("main", "read").user.findUnique({ where: { email: inside } })).not.toBeNull()
      })
      // Another request, outside that session, still reads the lagging replicas.
      expect(await flexi.get("main", "read").user.findUnique({ where: { email: inside } })).toBeNull()
    } finally {
      await set.resumeReplay(0)
      await set.resumeReplay(1)
    }
    await set.caughtUp()
    expect(await flexi.get("main", "read").user.findUnique({ where: { email: inside } })).not.toBeNull()
    await flexi.disconnect()
  })

  it("lsn mode sends a session's reads back to the replicas once they have replayed its write", async () => {
    const flexi = createFlexiDB({ main: pair() }, { ...base, replicas: { readYourWrites: { mode: "lsn", lsnCacheTime: 0 } } })
    await flexi.ready()
    await flexi.session(async () => {
      await flexi.get("main").user.create({ data: { email: email("lsn") } })
      await set.caughtUp()
      const before = members(flexi)
      await flexi.get("main", "read").user.count()
      const after = members(flexi)
      expect(after[0]).toBe(before[0]) // not the writer
      expect(after[1]! + after[2]!).toBe(before[1]! + before[2]! + 1)
    })
    await flexi.disconnect()
  })

  effect.scoped("window mode: a session's reads return to the replicas once the window has passed", () =>
    Effect.gen(function*() {
      const registry = yield* FlexiDBService.make({ main: pair() }, { ...base, replicas: { readYourWrites: { window: "2 seconds" } } })
      yield* registry.ready
      /** Whether one read now goes to the writer. */
      const readsWriter = async (read: Pg) => {
        const before = Effect.runSync(registry.stats).main.members[0]!.totalQueries
        await read.user.count()
        return Effect.runSync(registry.stats).main.members[0]!.totalQueries === before + 1
      }
      const seen: Array<boolean> = []
      const gate = () => {
        let resolve!: () => void
        const promise = new Promise<void>((r) => (resolve = r))
        return { promise, resolve }
      }
      const gates = [gate(), gate()]
      // The clients handed out inside withSession carry its session to Prisma.
      const inSession = Effect.flatMap(Effect.all([registry.get("main"), registry.get("main", "read")]), ([write, read]) =>
        Effect.promise(async () => {
          await write.user.create({ data: { email: email("window") } })
          seen.push(await readsWriter(read))
          for (const gate of gates) {
            await gate.promise
            seen.push(await readsWriter(read))
          }
        }))
      const fiber = yield* Effect.fork(registry.withSession(inSession))
      yield* until(() => seen.length === 1)
      yield* TestClock.adjust(1_999)
      gates[0]!.resolve()
      yield* until(() => seen.length === 2)
      yield* TestClock.adjust(1)
      gates[1]!.resolve()
      yield* Fiber.join(fiber)
      expect(seen).toEqual([true, true, false])
    }))
})

describe("balance", () => {
  const run = async (balance: unknown, reads: number, read?: ReadWriteClient<Pg>["read"]) => {
    const flexi = createFlexiDB({ main: pair({ balance: balance as never, ...(read && { read }) }) }, base)
    await flexi.ready()
    const before = members(flexi)
    for (let i = 0; i < reads; i++) await flexi.get("main", "read").user.count()
    const after = members(flexi)
    await flexi.disconnect()
    return after.map((n, i) => n - before[i]!)
  }
  const replicas = () => set.replicas.map((r) => prisma7.postgresql(r.url()))

  it("round-robin alternates; weights share in proportion", async () => {
    expect(await run("round-robin", 10)).toEqual([0, 5, 5])
    const [a, b] = replicas()
    expect(await run("round-robin", 12, [{ client: a!, weight: 3 }, { client: b!, weight: 1 }])).toEqual([0, 9, 3])
  })

  it("random follows the weights within bounds", async () => {
    const [a, b] = replicas()
    const [, heavy, light] = await run("random", 400, [{ client: a!, weight: 3 }, { client: b!, weight: 1 }])
    expect(heavy! + light!).toBe(400)
    expect(heavy).toBeGreaterThan(250)
    expect(heavy).toBeLessThan(350)
  })

  it("least-busy sends reads away from a replica that is busy", async () => {
    const flexi = createFlexiDB({ main: pair({ balance: "least-busy" }) }, base)
    await flexi.ready()
    const read = flexi.get("main", "read")
    // The first read goes to replica 0 and holds it; while it runs, the others go to replica 1.
    const slow = read.$queryRawUnsafe("SELECT 1 AS done FROM pg_sleep(0.5)")
    const before = members(flexi)
    for (let i = 0; i < 5; i++) await read.user.count()
    const after = members(flexi)
    expect([after[1]! - before[1]!, after[2]! - before[2]!]).toEqual([0, 5])
    await slow
    await flexi.disconnect()
  })

  it("a function chooses among the healthy replicas", async () => {
    const seen: Array<Array<number>> = []
    const counts = await run((rs: ReadonlyArray<{ index: number }>) => {
      seen.push(rs.map((r) => r.index))
      return rs.find((r) => r.index === 1)!
    }, 6)
    expect(counts).toEqual([0, 0, 6])
    expect(seen[0]).toEqual([0, 1])
  })
})

describe("writes through a read client", () => {
  it("are refused without being sent, inside transactions too; a transaction runs on one member as a whole", async () => {
    const operations: Array<string> = []
    const flexi = createFlexiDB({ main: pair() }, base)
    flexi.use((_db, op, next) => {
      operations.push(op)
      return next()
    })
    await flexi.ready()
    const read = flexi.get("main", "read")
    const address = email("refused")
    await expect(read.user.create({ data: { email: address } })).rejects.toBeInstanceOf(ReadOnlyError)
    await expect(read.user.upsert({ where: { email: address }, create: { email: address }, update: {} })).rejects.toMatchObject({
      code: "FLEXIDB_READ_ONLY",
      operation: "User.upsert"
    })
    await expect(read.$executeRawUnsafe(`INSERT INTO "User" (email) VALUES ('${address}')`)).rejects.toBeInstanceOf(ReadOnlyError)
    // Raw SQL is judged by what it says, not by the method: these never reach a replica (which would refuse them
    // too, with a server error instead of ReadOnlyError) nor the middleware.
    await expect(read.$queryRawUnsafe(`INSERT INTO "User" (email) VALUES ('${address}') RETURNING id`)).rejects.toMatchObject({
      _tag: "ReadOnlyError",
      reason: "read-client"
    })
    await expect(read.$queryRaw`SELECT id FROM "User" WHERE email = ${address} FOR UPDATE`).rejects.toBeInstanceOf(ReadOnlyError)
    await expect(read.$transaction(async (tx) => {
      await tx.user.count()
      return tx.user.deleteMany()
    })).rejects.toBeInstanceOf(ReadOnlyError)
    expect(operations).toEqual(["User.count"])

    const before = members(flexi)
    const [n, m] = await read.$transaction(async (tx) => [await tx.user.count(), await tx.post.count()])
    expect([n, m].every((x) => typeof x === "number")).toBe(true)
    const after = members(flexi)
    const moved = after.map((x, i) => x - before[i]!)
    expect(moved.filter((x) => x > 0)).toHaveLength(1)
    expect(await set.primary.sql(`SELECT count(*)::int AS n FROM "User" WHERE email = '${address}'`)).toEqual([{ n: 0 }])
    await flexi.disconnect()
  })

  it("preventWrites() refuses writes through every client, batch() included, until its callback settles", async () => {
    const flexi = createFlexiDB({ main: pair() }, base)
    await flexi.ready()
    const address = email("maintenance")
    const users = await flexi.get("main").user.count()
    await flexi.preventWrites("main", async () => {
      await expect(flexi.get("main").user.create({ data: { email: address } })).rejects.toMatchObject({ reason: "prevented" })
      await expect(flexi.batch({ main: (c) => c.user.create({ data: { email: address } }) })).rejects.toThrow(/prevented/)
      await expect(flexi.get("main").$queryRawUnsafe(`INSERT INTO "User" (email) VALUES ('${address}') RETURNING id`))
        .rejects.toMatchObject({ reason: "prevented" })
      // Reads still run, on the writer and the replicas alike.
      expect(await flexi.get("main").user.count()).toBe(users)
      expect(await flexi.get("main").user.findUnique({ where: { email: address } })).toBe(null)
    })
    await flexi.get("main").user.create({ data: { email: address } })
    await expect(flexi.preventWrites("nope" as "main", () => 1)).rejects.toThrow(/Unknown database 'nope'/)
    await flexi.disconnect()
  })
})

describe("options", () => {
  it("invalid replica settings throw InvalidArgumentError naming the key", () => {
    expect(() => createFlexiDB({}, { ...base, replicas: { balance: "fastest" as never } })).toThrow(
      "Invalid replicas.balance: expected 'round-robin', 'random', 'least-busy' or a function, got \"fastest\""
    )
    expect(() => createFlexiDB({ main: pair({ fallback: "writer" as never }) }, base)).toThrow(InvalidArgumentError)
    expect(() => createFlexiDB({ main: pair({ fallback: "writer" as never }) }, base)).toThrow("Invalid clients.main.fallback")
    expect(() => createFlexiDB({ main: { ...pair(), read: [{ client: prisma7.postgresql(set.primary.url()), weight: 0 }] } }, base))
      .toThrow("Invalid clients.main.read[0].weight: expected a number above 0, got 0")
  })
})

describe("MariaDB pairs (separate databases)", () => {
  const dbs: Array<TestDatabase> = []
  afterAll(() => Promise.all(dbs.map((d) => d.drop())))
  const mysql = async () => {
    const d = await createDatabase("mysql")
    dbs.push(d)
    return prisma7.mysql(d.url) as unknown as AnyClient
  }

  it("routes reads to the replicas, fails over from a dead one, and refuses writes", async () => {
    const [write, r1] = [await mysql(), await mysql()]
    await r1.user.create({ data: { email: "replica@x.io" } })
    const flexi = createFlexiDB({ main: { write, read: [r1, downClient(generations[1], "mysql")] } }, {
      ...base,
      retry: { attempts: 0 },
      reconnect: { enabled: false }
    })
    await flexi.ready()
    for (let i = 0; i < 6; i++) expect(await flexi.get("main", "read").user.count()).toBe(1)
    expect(await flexi.get("main").user.count()).toBe(0)
    await expect(flexi.get("main", "read").user.create({ data: { email: "no@x.io" } })).rejects.toBeInstanceOf(ReadOnlyError)
    expect(flexi.stats().main.members.map((m) => m.healthy)).toEqual([true, true, false])
    await flexi.disconnect()
  })
})

describe("the Effect API", () => {
  effect.scoped("Database.make with a pair routes reads, fails over, and keeps the writer's health", () =>
    Effect.gen(function*() {
      const db = yield* Database.make("main", {
        write: prisma7.postgresql(set.primary.url()),
        read: [downClient(generations[1], "postgresql") as unknown as Pg, prisma7.postgresql(set.replicas[0]!.url())]
      }, { retry: { attempts: 0 }, reconnect: { enabled: false } })
      const read = db.clientFor("read")
      for (let i = 0; i < 4; i++) yield* Effect.promise(() => read.user.count())
      expect(yield* db.health).toBe(true)
      const stats = yield* db.stats
      expect(stats.members.map((m) => m.healthy)).toEqual([true, false, true])
      expect(yield* db.query((c) => c.user.count(), "read")).toBeGreaterThanOrEqual(0)
    }))
})
