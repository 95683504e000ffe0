// flexidb/testing: the same interface with no database.
import { describe, expect, expectTypeOf, it } from "vitest"
import { BatchError, CircuitOpenError, ClosedError, InvalidArgumentError, UnknownDatabaseError } from "../src/index.js"
import type { FlexiDB } from "../src/index.js"
import { createMockFlexiDB, mockFlexiDB } from "../src/testing.js"
import type { MockOptions } from "../src/testing.js"
import type { SqliteClient } from "./fixtures/prisma7/clients.ts"

const makeMock = (options?: MockOptions) =>
  createMockFlexiDB({
    user: { user: { findMany: async () => [{ id: 1 }], count: async () => 1 }, $queryRawUnsafe: async (_sql: string) => [1] },
    orders: { order: { count: async () => 7 } }
  }, options)

describe("createMockFlexiDB", () => {
  it("get() returns the mocks and unknown names throw like the real one", async () => {
    const db = makeMock()
    expect(await db.get("user").user.findMany()).toEqual([{ id: 1 }])
    expect(() => db.get("nope" as "user")).toThrow(UnknownDatabaseError)
    expect(() => db.get("__proto__" as "user")).toThrow("Unknown database '__proto__' (registered: 'user', 'orders')")
  })

  it("batch() works, health() is all true; disconnect() closes it like the real one, and again is a no-op", async () => {
    const disconnected: Array<string> = []
    const db = makeMock({ hooks: { onDisconnect: (name) => disconnected.push(name) } })
    expect(await db.batch({ user: (c) => c.user.count(), orders: (c) => c.order.count() })).toEqual({ user: 1, orders: 7 })
    expect(await db.health()).toEqual({ user: true, orders: true })
    expect(await db.ready()).toEqual({ user: true, orders: true })
    const remove = db.use(async (_name, _op, next) => next())
    await db.disconnect()
    expect(disconnected.sort()).toEqual(["orders", "user"])
    remove() // removing a middleware after disconnect() is harmless
    expect(db.list()).toEqual([])
    expect(() => db.get("user")).toThrow(ClosedError)
    await expect(db.batch({ user: (c) => c.user.count() })).rejects.toBeInstanceOf(ClosedError)
    expect(await db.health()).toEqual({})
    // A second disconnect() resolves and changes nothing.
    await expect(db.disconnect()).resolves.toBeUndefined()
    expect(db.list()).toEqual([])
    expect(disconnected.sort()).toEqual(["orders", "user"])
  })

  it("runs middleware with operation names and records calls", async () => {
    const db = makeMock()
    const seen: Array<string> = []
    db.use(async (name, op, next) => {
      seen.push(`${name}:${op}`)
      return next()
    })
    await db.get("user").user.count()
    await db.get("user").$queryRawUnsafe("SELECT 1")
    await db.batch({ orders: (c) => c.order.count() })
    expect(seen).toEqual(["user:User.count", "user:$queryRawUnsafe", "orders:batch"])
    expect(db.calls).toEqual([["user", "User.count"], ["user", "$queryRawUnsafe"], ["orders", "batch"]])
    expect(db.stats().user.totalQueries).toBe(2)
  })

  it("setDown() makes a database fail every operation and health check, setUp() restores it", async () => {
    const db = makeMock()
    db.setDown("orders")
    await expect(db.get("orders").order.count()).rejects.toBeInstanceOf(CircuitOpenError)
    await expect(db.batch({ orders: (c) => c.order.count(), user: (c) => c.user.count() })).rejects.toBeInstanceOf(BatchError)
    expect(await db.health()).toEqual({ user: true, orders: false })
    expect(db.stats().orders).toMatchObject({ connected: false, circuitState: "open" })
    db.setUp("orders")
    expect(await db.get("orders").order.count()).toBe(7)
  })

  it("register, unregister and groups behave like the real one", async () => {
    const db = makeMock().register("extra", { thing: { count: async () => 0 } })
    expect(db.list()).toEqual(["user", "orders", "extra"])
    expect(() => db.register("extra", {} as never)).toThrow(/already registered/)
    expect(Object.keys(db.group("g", ["user", "orders"]))).toEqual(["user", "orders"])
    expect(await db.healthGroup("g")).toEqual({ user: true, orders: true })
    await expect(db.healthGroup("none")).rejects.toThrow(/Unknown group/)
    await db.unregister("extra")
    await expect(db.unregister("extra")).rejects.toBeInstanceOf(UnknownDatabaseError)
  })
})

describe("the mock is the real instance over in-memory clients", () => {
  it("guards middleware: next() called twice rejects instead of running the operation twice", async () => {
    let runs = 0
    const db = createMockFlexiDB({ user: { user: { count: async () => ++runs } } })
    db.use(async (_name, _op, next) => {
      await next()
      return next()
    })
    await expect(db.get("user").user.count()).rejects.toThrow("Middleware called next() more than once for User.count.")
    expect(runs).toBe(1)
  })

  it("round-robins reads over a pair's read mocks, and writes go to the write mock", async () => {
    const mock = (who: string) => ({ user: { findFirst: async () => who } })
    const db = createMockFlexiDB({ orders: { write: mock("primary"), read: [mock("r1"), mock("r2")] } })
    const reads = []
    for (let i = 0; i < 4; i++) reads.push(await db.get("orders", "read").user.findFirst())
    expect(reads).toEqual(["r1", "r2", "r1", "r2"])
    expect(await db.get("orders").user.findFirst()).toBe("primary")
  })

  it("validates like the real one: roles, batch operations, names; a bad call changes nothing", async () => {
    const db = makeMock()
    expect(() => db.get("user", "reader" as "read")).toThrow(InvalidArgumentError)
    await expect(db.batch({ user: 42 } as never)).rejects.toThrow("Invalid batch.user: expected a function")
    expect(() => db.register("", {})).toThrow(InvalidArgumentError)
    expect(() => db.register("bad", 42)).toThrow(/expected a Prisma client/)
    expect(db.list()).toEqual(["user", "orders"])
    expect(db.calls).toEqual([])
  })

  it("a method the mock does not have rejects naming the database and the method, and how to add it", async () => {
    const db = makeMock()
    await expect((db.get("orders").order as { findMany?: () => Promise<unknown> }).findMany!()).rejects.toThrow(
      "flexidb/testing: database 'orders' has no mock for order.findMany(). Add one to the mock you pass for " +
        "'orders': { order: { findMany: async (args) => … } }"
    )
    await expect((db.get("orders") as any).invoice.count()).rejects.toThrow(
      "database 'orders' has no mock for invoice.count(). Add one to the mock you pass for 'orders': { invoice: { count: async (args) => … } }"
    )
    await expect((db.get("user") as any).$executeRaw`DELETE FROM x`).rejects.toThrow(
      "database 'user' has no mock for $executeRaw(). Add one to the mock you pass for 'user': { $executeRaw: async (...args) => … }"
    )
    expect(db.stats().orders).toMatchObject({ totalQueries: 2, failedQueries: 2, circuitState: "closed" })
  })

  it("never a TypeError: every way to reach a method with no mock names the database and the method", async () => {
    const db = createMockFlexiDB({
      user: { user: null, post: { findMany: async () => [] } },
      audit: {},
      orders: { write: { order: { findMany: async () => [] } }, read: [{ order: { findMany: async () => [] } }] }
    }) as any
    const outcome = async (f: () => PromiseLike<unknown>) => {
      try {
        await f()
        return "resolved"
      } catch (error) {
        return `${(error as Error).constructor.name}: ${(error as Error).message}`
      }
    }
    const reached = {
      nullModel: await outcome(() => db.get("user").user.count()),
      missingMethod: await outcome(() => db.get("user").post.count()),
      emptyMock: await outcome(() => db.get("audit").post.count()),
      readReplica: await outcome(() => db.get("orders", "read").order.count()),
      writer: await outcome(() => db.get("orders").order.aggregate({})),
      transaction: await outcome(() => db.get("user").$transaction((tx: any) => tx.post.count())),
      batch: await outcome(() => db.batch({ audit: (c: any) => c.post.count() }).catch((e: any) => Promise.reject(e.failures.audit)))
    }
    expect(reached).toEqual({
      nullModel: expect.stringContaining("Error: flexidb/testing: database 'user' has no mock for user.count()"),
      missingMethod: expect.stringContaining("database 'user' has no mock for post.count()"),
      emptyMock: expect.stringContaining("database 'audit' has no mock for post.count()"),
      readReplica: expect.stringContaining("database 'orders' has no mock for order.count()"),
      writer: expect.stringContaining("database 'orders' has no mock for order.aggregate()"),
      transaction: expect.stringContaining("database 'user' has no mock for post.count()"),
      batch: expect.stringContaining("database 'audit' has no mock for post.count()")
    })
    for (const message of Object.values(reached)) expect(message).not.toMatch(/TypeError|is not a function/)
    await db.disconnect()
  })

  it("stats and health are the real ones: counted, timed, and down after setDown()", async () => {
    const db = makeMock()
    await db.get("user").user.count()
    db.setDown("user")
    expect(db.stats().user).toMatchObject({
      connected: false,
      totalQueries: 1,
      circuitState: "open",
      lastError: "Can't reach database server: database 'user' was set down by setDown()."
    })
    db.setUp("user")
    expect(await db.health()).toEqual({ user: true, orders: true })
    expect(db.stats().user).toMatchObject({ connected: true, circuitState: "closed" })
    await db.disconnect()
  })
})

describe("the mock's edges", () => {
  it("a model delegate is not a promise; setUp() is immediate; a name registered again can be set down", async () => {
    const db = makeMock()
    const delegate = async () => db.get("user").user
    expect(typeof (await delegate()).count).toBe("function")
    db.setDown("user")
    db.setUp("user")
    expect(db.stats().user).toMatchObject({ connected: true, circuitState: "closed" })
    await db.unregister("orders")
    db.register("orders", { order: { count: async () => 1 } })
    db.setDown("orders")
    expect(await db.health()).toEqual({ user: true, orders: false })
    expect(db.stats().orders.circuitState).toBe("open")
    expect(db.stats().user.totalQueries).toBe(0)
  })
})

describe("mockFlexiDB<App>()", () => {
  // What codegen's module exports: the clients' type and the instance's.
  const clients = {} as { user: SqliteClient; audit: SqliteClient }
  type Clients = typeof clients
  type DB = FlexiDB<Clients>
  type TenantsDB = FlexiDB<Clients, SqliteClient>
  const userCount = (db: DB) => db.get("user").user.count()

  it("takes either codegen export, Clients or DB, and is of the instance's own type", async () => {
    const byClients = mockFlexiDB<Clients>({ user: { user: { count: async () => 2 } }, audit: {} })
    const byInstance = mockFlexiDB<DB>({ user: { user: { count: async () => 3 } }, audit: {} })
    expectTypeOf(byInstance).toMatchTypeOf<DB>()
    expectTypeOf(byClients).toMatchTypeOf<FlexiDB<Clients>>()
    expect(await userCount(byClients)).toBe(2)
    expect(await userCount(byInstance)).toBe(3)
    byInstance.setDown("audit")
    expect(await byInstance.health()).toEqual({ user: true, audit: false })
    // @ts-expect-error every database needs a mock
    mockFlexiDB<DB>({ user: {} })
    // @ts-expect-error a mock holds only what the client has
    mockFlexiDB<DB>({ user: { nope: {} }, audit: {} })
    await byClients.disconnect()
    await byInstance.disconnect()
  })

  it("mocks tenants: resolve returns a tenant's mock, served as any database", async () => {
    const db = mockFlexiDB<TenantsDB>({ user: {}, audit: {} }, {
      tenants: { resolve: async (name) => (name === "missing" ? undefined : { user: { count: async () => name.length } }) }
    })
    expectTypeOf(db.tenant("acme")).toEqualTypeOf<Promise<SqliteClient>>()
    expect(await db.withTenant("acme", (client) => client.user.count())).toBe(4)
    expect(await (await db.tenant("globex")).user.count()).toBe(6)
    await expect(db.tenant("missing")).rejects.toBeInstanceOf(UnknownDatabaseError)
    await expect((await db.tenant("acme")).post.count()).rejects.toThrow("database 'acme' has no mock for post.count()")
    expect(db.calls).toContainEqual(["acme", "User.count"])
    db.setDown("acme")
    await expect((await db.tenant("acme")).user.count()).rejects.toBeInstanceOf(CircuitOpenError)
    await db.disconnect()
  })

  // App code, typed with the real clients.
  type App = { user: SqliteClient; audit: SqliteClient }
  const countUsers = async (db: FlexiDB<App>) => {
    const n = await db.get("user").user.count()
    const all = await db.batchSettled({ user: (c) => c.user.count(), audit: (c) => c.post.count() })
    return { n, audit: all.audit.status }
  }

  it("runs app code typed with the real clients against the mocks, and refuses what was not mocked", async () => {
    const db = mockFlexiDB<App>({ user: { user: { count: async () => 2 } }, audit: {} })
    expect(await countUsers(db)).toEqual({ n: 2, audit: "rejected" })
    expect(db.calls).toEqual([["user", "User.count"], ["user", "batch"], ["audit", "batch"]])
    db.setDown("user")
    await expect(countUsers(db)).rejects.toBeInstanceOf(CircuitOpenError)
  })
})
