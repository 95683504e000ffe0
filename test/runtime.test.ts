// The Promise API against real databases: Prisma 6 and 7, SQLite, PostgreSQL and MariaDB.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { BatchError, createFlexiDB, UnknownDatabaseError } from "../src/index.js"
import type { FlexiDB } from "../src/index.js"
import { interceptPath } from "../src/internal/intercept.js"
import type { TestDatabase } from "./support/databases.js"
import { providers } from "./support/databases.js"
import type { AnyClient } from "./support/prisma.js"
import { generations, openDatabase } from "./support/prisma.js"

const quiet = { gracefulShutdown: false, retry: { attempts: 0 } } as const

describe.each(generations.flatMap((gen) => providers.map((provider) => ({ gen, provider }))))(
  "Prisma $gen.version on $provider",
  ({ gen, provider }) => {
    let db: TestDatabase
    let client: AnyClient
    let flexi: FlexiDB<{ main: AnyClient }>

    beforeAll(async () => {
      ;({ db, client } = await openDatabase(gen, provider))
      flexi = createFlexiDB({ main: client }, quiet)
      expect(await flexi.ready()).toEqual({ main: true })
    })
    afterAll(async () => {
      await flexi?.disconnect()
      await db?.drop()
    })

    it("serves queries through get() and counts model, raw and transaction queries", async () => {
      const before = flexi.stats().main.totalQueries
      const main = flexi.get("main")
      const user = await main.user.create({ data: { email: `a-${provider}@x.io`, name: "Ada" } })
      expect(await main.user.findUnique({ where: { id: user.id } })).toMatchObject({ email: user.email })
      await main.$queryRawUnsafe("SELECT 1")
      await main.$transaction(async (tx) => {
        await tx.user.count()
        await tx.user.findMany()
      })
      await main.$transaction([main.user.count(), main.post.count()])
      const stats = flexi.stats().main
      expect(stats.totalQueries - before).toBe(7)
      expect(stats.failedQueries).toBe(0)
      expect(stats.connected).toBe(true)
      expect(stats.lastConnectedAt).toBeInstanceOf(Date)
      expect(stats.avgResponseTimeMs).toBeGreaterThan(0)
    })

    it("passes every operation through middleware with its name, first registered outermost", async () => {
      const order: Array<string> = []
      const removeA = flexi.use(async (name, op, next) => {
        order.push(`a>${name}:${op}`)
        const r = await next()
        order.push(`a<${op}`)
        return r
      })
      const removeB = flexi.use(async (_name, op, next) => {
        order.push(`b>${op}`)
        const r = await next()
        order.push(`b<${op}`)
        return r
      })
      try {
        await flexi.get("main").user.findMany()
        await flexi.get("main").$queryRawUnsafe("SELECT 1")
        await flexi.batch({ main: (c) => c.user.count() })
      } finally {
        removeA()
        removeB()
      }
      expect(order).toEqual([
        "a>main:User.findMany", "b>User.findMany", "b<User.findMany", "a<User.findMany",
        "a>main:$queryRawUnsafe", "b>$queryRawUnsafe", "b<$queryRawUnsafe", "a<$queryRawUnsafe",
        "a>main:batch", "b>batch", "b<batch", "a<batch"
      ])
    })

    it("keeps the whole Prisma client API: fluent relations, tagged raw queries, $extends, lazy promises", async () => {
      const main = flexi.get("main")
      const author = await main.user.create({ data: { email: `fluent-${provider}@x.io`, posts: { create: [{ title: "a" }] } } })
      const before = flexi.stats().main.totalQueries
      const posts = await main.user.findUnique({ where: { id: author.id } }).posts()
      expect(posts?.map((p: { title: string }) => p.title)).toEqual(["a"])
      const [row] = await main.$queryRaw<Array<{ n: number }>>`SELECT ${41} + 1 AS n`
      expect(Number(row!.n)).toBe(42)
      const extended = main.$extends({ model: { user: { byEmail: (email: string) => ({ email }) } } })
      expect(extended.user.byEmail("x")).toEqual({ email: "x" })
      expect(await extended.user.count({ where: { id: author.id } })).toBe(1)
      // Prisma's promises run only when awaited: an operation never awaited is never sent, nor counted.
      void main.user.count()
      expect(flexi.stats().main.totalQueries - before).toBe(3)
    })

    it("runs an array $transaction atomically even through asynchronous middleware, counting each query", async () => {
      const remove = flexi.use(async (_name, _op, next) => {
        await new Promise((r) => setTimeout(r, 5))
        return next()
      })
      try {
        const main = flexi.get("main")
        const email = `tx-${provider}@x.io`
        const before = flexi.stats().main.totalQueries
        const [created, count] = await main.$transaction([
          main.user.create({ data: { email } }),
          main.user.count({ where: { email } })
        ])
        expect(created.email).toBe(email)
        expect(count).toBe(1)
        expect(flexi.stats().main.totalQueries - before).toBe(2)
        // A failing member rolls the whole array back.
        await expect(main.$transaction([
          main.user.create({ data: { email: `tx2-${provider}@x.io` } }),
          main.user.create({ data: { email } })
        ])).rejects.toMatchObject({ code: "P2002" })
        expect(await main.user.count({ where: { email: `tx2-${provider}@x.io` } })).toBe(0)
      } finally {
        remove()
      }
    })

    it("does not count a unique violation toward the circuit breaker", async () => {
      const email = `dup-${provider}@x.io`
      await flexi.get("main").user.create({ data: { email } })
      for (let i = 0; i < 7; i++) {
        await expect(flexi.get("main").user.create({ data: { email } })).rejects.toMatchObject({ code: "P2002" })
      }
      const stats = flexi.stats().main
      expect(stats.circuitState).toBe("closed")
      expect(stats.failedQueries).toBeGreaterThanOrEqual(7)
      expect(await flexi.get("main").user.count()).toBeGreaterThan(0)
    })

    it("answers health() with SELECT 1", async () => {
      expect(await flexi.health()).toEqual({ main: true })
    })

    it("hands out the app's client one layer down: the app's own client untouched, its extensions kept, no extension added", async () => {
      // Prisma's internals the layer reads are there (a rename would fall back to the slower $extends hook).
      expect(interceptPath(client)).toBe("layer")
      const before = flexi.stats().main.totalQueries
      await client.user.count()
      expect(flexi.stats().main.totalQueries).toBe(before)
      // A client the app extended itself: its computed field and its own query hook stay behind get().
      const seen: Array<string> = []
      const extended = (client as any).$extends({
        result: { user: { shout: { needs: { email: true }, compute: (u: { email: string }) => u.email.toUpperCase() } } },
        query: {
          $allOperations: ({ operation, args, query }: { operation: string; args: unknown; query: (a: unknown) => unknown }) => {
            seen.push(operation)
            return query(args)
          }
        }
      })
      // Its extensions keep running inside flexidb's hook, as they always have: that client takes Prisma's $extends hook.
      expect(interceptPath(extended)).toBe("extends")
      const other = createFlexiDB({ x: extended as AnyClient }, quiet)
      expect(await other.ready()).toEqual({ x: true })
      const x = other.get("x") as any
      const email = `layer-${provider}@x.io`
      await x.user.create({ data: { email } })
      expect((await x.user.findFirst({ where: { email } })).shout).toBe(email.toUpperCase())
      // An interactive transaction's calls, and an extension of get()'s client, pass the layer as well.
      expect(await x.$transaction(async (tx: any) => tx.user.count({ where: { email } }))).toBe(1)
      expect(await x.$extends({}).user.count({ where: { email } })).toBe(1)
      // (flexidb's connection check, SELECT 1, goes through the app's client as it is, hook and all.)
      expect(seen.filter((op) => op !== "$queryRawUnsafe")).toEqual(["create", "findFirst", "count", "count"])
      expect(other.stats().x.totalQueries).toBe(4)
      // An extension's `$parent` on get()'s client of the bare one is the app's client.
      expect((flexi.get("main") as any).$parent).toBe(client)
      // Disconnects the shared client: the last test of this block.
      await other.disconnect()
    })
  }
)

describe("several databases at once", () => {
  const [gen6, gen7] = generations
  const opened: Array<TestDatabase> = []
  let flexi: FlexiDB<{ users: AnyClient; orders: AnyClient; legacy: AnyClient }>

  beforeAll(async () => {
    const users = await openDatabase(gen7, "postgresql")
    const orders = await openDatabase(gen7, "mysql")
    const legacy = await openDatabase(gen6, "sqlite")
    opened.push(users.db, orders.db, legacy.db)
    flexi = createFlexiDB({ users: users.client, orders: orders.client, legacy: legacy.client }, quiet)
    await flexi.ready()
  })
  afterAll(async () => {
    await flexi?.disconnect()
    await Promise.all(opened.map((d) => d.drop()))
  })

  it("keeps each database's data apart", async () => {
    await flexi.get("users").user.create({ data: { email: "only-in-users@x.io" } })
    expect(await flexi.get("users").user.count({ where: { email: "only-in-users@x.io" } })).toBe(1)
    expect(await flexi.get("orders").user.count({ where: { email: "only-in-users@x.io" } })).toBe(0)
    expect(await flexi.get("legacy").user.count({ where: { email: "only-in-users@x.io" } })).toBe(0)
  })

  it("batch() runs in parallel, resolves per name, and counts each operation once", async () => {
    const before = flexi.stats()
    const result = await flexi.batch({
      users: (c) => c.user.findMany().then(() => "u" as const),
      orders: async (c) => {
        await c.user.count()
        await c.user.findMany()
        return 42
      }
    })
    expect(result).toEqual({ users: "u", orders: 42 })
    // Keyed in the order given, whichever finished first.
    expect(Object.keys(await flexi.batch({
      legacy: async (c) => {
        await new Promise((r) => setTimeout(r, 30))
        return c.user.count()
      },
      users: (c) => c.user.count()
    }))).toEqual(["legacy", "users"])
    const after = flexi.stats()
    expect(after.users.totalQueries - before.users.totalQueries).toBe(2)
    expect(after.orders.totalQueries - before.orders.totalQueries).toBe(1)
    expect(after.legacy.totalQueries - before.legacy.totalQueries).toBe(1)
  })

  it("batch() operations keep the client's API: both transaction forms, fluent relations, raw reads, catch and finally", async () => {
    const op = async (c: AnyClient, name: string) => {
      const email = `batch-api-${name}@x.io`
      const [created, count] = await c.$transaction([
        c.user.create({ data: { email, posts: { create: [{ title: "t" }] } } }),
        c.user.count({ where: { email } })
      ])
      const inside = await c.$transaction(async (tx) => tx.user.count({ where: { email } }))
      const posts = await c.user.findUnique({ where: { id: created.id } }).posts()
      const [row] = await c.$queryRaw<Array<{ n: number }>>`SELECT ${41} + 1 AS n`
      const missing = await c.user.findUniqueOrThrow({ where: { id: -1 } }).catch(() => "missing")
      let finished = false
      await c.user.findMany({ where: { email } }).finally(() => {
        finished = true
      })
      // Leaves the shared databases as they were, for the tests below.
      await c.$transaction([c.post.deleteMany({ where: { authorId: created.id } }), c.user.delete({ where: { id: created.id } })])
      return [count, inside, posts?.map((p: { title: string }) => p.title), Number(row!.n), missing, finished]
    }
    const before = flexi.stats()
    const result = await flexi.batch({ users: (c) => op(c, "users"), orders: (c) => op(c, "orders"), legacy: (c) => op(c, "legacy") })
    for (const name of ["users", "orders", "legacy"] as const) {
      expect(result[name]).toEqual([1, 1, ["t"], 42, "missing", true])
      // One operation, counted once, however many queries it sent.
      expect(flexi.stats()[name].totalQueries - before[name].totalQueries).toBe(1)
    }
  })

  it("batch() rejects an unknown name before anything runs", async () => {
    let ran = false
    const ops = {
      users: async () => {
        ran = true
      },
      nope: async () => 1
    }
    await expect(flexi.batch(ops as never)).rejects.toBeInstanceOf(UnknownDatabaseError)
    expect(ran).toBe(false)
  })

  it("batch() runs every operation to completion and names each failed database", async () => {
    let slowFinished = false
    const failure = flexi.batch({
      users: (c) => c.user.create({ data: { email: "only-in-users@x.io" } }),
      orders: () => Promise.reject(new Error("boom")),
      legacy: async (c) => {
        await new Promise((r) => setTimeout(r, 50))
        slowFinished = true
        return c.user.count()
      }
    })
    const error = await failure.then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(BatchError)
    const batchError = error as BatchError
    expect(Object.keys(batchError.failures).sort()).toEqual(["orders", "users"])
    expect((batchError.failures.users as { code?: string }).code).toBe("P2002")
    expect((batchError.failures.orders as Error).message).toBe("boom")
    expect(batchError.results).toEqual({ legacy: 0 })
    expect(batchError.message).toContain("'users'")
    expect(batchError.message).toContain("'orders'")
    expect(slowFinished).toBe(true)
  })

  it("batch() settles operations that throw synchronously or return plain values like any other", async () => {
    const settled = await flexi.batchSettled({
      users: () => {
        throw new Error("sync boom")
      },
      orders: (() => 7) as never,
      legacy: (c) => c.user.count()
    })
    expect(settled.users).toMatchObject({ status: "rejected", reason: { message: "sync boom" } })
    expect(settled.orders).toEqual({ status: "fulfilled", value: 7 })
    expect(settled.legacy).toEqual({ status: "fulfilled", value: 0 })
  })

  it("batchSettled() never rejects and reports each outcome", async () => {
    const settled = await flexi.batchSettled({
      users: (c) => c.user.count(),
      orders: () => Promise.reject(new Error("nope"))
    })
    expect(settled.users).toEqual({ status: "fulfilled", value: 1 })
    expect(settled.orders.status).toBe("rejected")
  })

  it("batch() starts its operations from a fresh stack: Prisma's per-query stack capture walks none of the caller's frames", async () => {
    const stacks: Array<string> = []
    const callerOfBatch = () =>
      flexi.batch({
        users: (c) => {
          stacks.push(new Error().stack ?? "")
          return c.user.count()
        }
      })
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 100
    try {
      await callerOfBatch()
    } finally {
      Error.stackTraceLimit = limit
    }
    expect(stacks).toHaveLength(1)
    expect(stacks[0]).not.toContain("callerOfBatch")
    // The operation itself, flexidb's runOperation and the microtask that starts the batch: nothing else.
    expect(stacks[0]!.split("\n").filter((l) => l.trim().startsWith("at ")).length).toBeLessThanOrEqual(4)
  })

  it("groups return only their databases, and health per group", async () => {
    const g = flexi.group("sql", ["users", "orders"])
    expect(Object.keys(g).sort()).toEqual(["orders", "users"])
    expect(await g.users.user.count()).toBe(1)
    expect(Object.keys(flexi.group("sql")).sort()).toEqual(["orders", "users"])
    expect(await flexi.healthGroup("sql")).toEqual({ users: true, orders: true })
    expect(() => flexi.group("bad", ["users", "ghost" as "users"])).toThrow(/Unknown database 'ghost'/)
    expect(() => flexi.group("bad")).toThrow(/Unknown group 'bad'/)
    await expect(flexi.healthGroup("missing")).rejects.toThrow(/Unknown group 'missing'.*defined: sql/)
  })

  it("get() throws for unknown names, listing the registered ones, whatever the name", () => {
    for (const name of ["nope", "__proto__", "constructor", "toString", "hasOwnProperty", ""]) {
      expect(() => flexi.get(name as "users")).toThrow(UnknownDatabaseError)
    }
    expect(() => flexi.get("nope" as "users")).toThrow("Unknown database 'nope' (registered: 'users', 'orders', 'legacy')")
  })

  it("list() and health() cover every database", async () => {
    expect(flexi.list()).toEqual(["users", "orders", "legacy"])
    expect(await flexi.health()).toEqual({ users: true, orders: true, legacy: true })
  })
})

describe("a database that cannot be opened", () => {
  it("a SQLite file whose folder does not exist: the ConnectionError says to check the folder and path, not a server", async () => {
    for (const gen of generations) {
      const seen: Array<Error> = []
      const db = createFlexiDB({ lite: gen.sqlite(`/tmp/flexidb-no-such-folder-${process.pid}/x.db`) as AnyClient }, {
        ...quiet,
        hooks: { onError: (_name, error) => seen.push(error) }
      })
      try {
        expect(await db.ready()).toEqual({ lite: false })
        const error = seen.find((e) => (e as { _tag?: string })._tag === "ConnectionError")
        expect(error?.message).toMatch(/^Could not connect to database 'lite' after 1 attempt: .*Check that the file's folder exists/)
        expect(error?.message).not.toMatch(/server is running/)
      } finally {
        await db.disconnect()
      }
    }
  })
})
