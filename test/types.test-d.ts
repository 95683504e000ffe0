// Type tests: checked by tsc during `npm test` (vitest typecheck).
import { describe, expectTypeOf, it } from "vitest"
import { Context, Effect, Option } from "effect"
import type { Layer, Scope } from "effect"
import { createFlexiDB, FlexiDBService } from "../src/index.js"
import type {
  BatchError,
  ClosedError,
  TenantError,
  TenantLockedError,
  TenantStats,
  UnknownGroupError,
  InvalidArgumentError,
  PrismaClientLike,
  Settled,
  UnknownDatabaseError,
  DuplicateDatabaseError,
  CircuitBreakerConfig,
  DBStats,
  FlexiDB,
  FlexiDBHooks,
  FlexiDBOptions,
  HealthCheckConfig,
  MiddlewareFn,
  ReadWriteClient,
  ReconnectConfig,
  RetryConfig
} from "../src/index.js"
import { createMockFlexiDB, mockFlexiDB } from "../src/testing.js"
import type { MysqlClient, SqliteClient } from "./fixtures/prisma7/clients.ts"

declare const sqlite: SqliteClient
declare const mysql: MysqlClient
declare const service: FlexiDBService.Service<{ user: SqliteClient; orders: ReadWriteClient<MysqlClient> }>

describe("types", () => {
  const db = createFlexiDB({ user: sqlite, orders: { read: mysql, write: mysql } })

  it("get() is typed as exactly the registered client, pairs as their client", () => {
    expectTypeOf(db.get("user")).toEqualTypeOf<SqliteClient>()
    expectTypeOf(db.get("orders", "read")).toEqualTypeOf<MysqlClient>()
    // @ts-expect-error an unregistered name is a compile error
    db.get("nope")
    // @ts-expect-error only 'read' and 'write' are roles
    db.get("user", "primary")
  })

  it("batch() results are typed per key, and a wrong key is a compile error", async () => {
    const result = await db.batch({ user: (c) => c.user.count(), orders: (c) => c.user.findMany() })
    expectTypeOf(result.user).toEqualTypeOf<number>()
    expectTypeOf(result.orders).toMatchTypeOf<Array<{ id: number; email: string }>>()
    // @ts-expect-error a key that is not a database
    await db.batch({ usr: (c: SqliteClient) => c.user.count() })
    const settled = await db.batchSettled({ user: (c) => c.user.count() })
    if (settled.user.status === "fulfilled") expectTypeOf(settled.user.value).toEqualTypeOf<number>()
  })

  it("register() widens the instance's names; Record<string, C> allows names chosen at run time", () => {
    const more = db.register("tenant", sqlite)
    expectTypeOf(more.get("tenant")).toEqualTypeOf<SqliteClient>()
    const tenants = createFlexiDB<Record<string, SqliteClient>>({})
    expectTypeOf(tenants.get(String(Math.random()))).toEqualTypeOf<SqliteClient>()
    // Operations built at run time, keyed by tenant.
    const ops: Record<string, (c: SqliteClient) => Promise<number>> = { a: (c) => c.user.count() }
    expectTypeOf(tenants.batch(ops)).resolves.toEqualTypeOf<Record<string, number>>()
  })

  it("stats(), health(), list() are keyed by the names", async () => {
    expectTypeOf(db.stats().user).toEqualTypeOf<DBStats>()
    expectTypeOf(await db.health()).toEqualTypeOf<Record<"user" | "orders", boolean>>()
    expectTypeOf(db.list()).toEqualTypeOf<Array<"user" | "orders">>()
    expectTypeOf(db.group("g", ["user"]).user).toEqualTypeOf<SqliteClient>()
  })

  it("exports the option and helper types", () => {
    expectTypeOf<RetryConfig["backoff"]>().toEqualTypeOf<"exponential" | "fixed" | undefined>()
    expectTypeOf<FlexiDBOptions["retry"]>().toEqualTypeOf<RetryConfig | undefined>()
    expectTypeOf<FlexiDBOptions["circuitBreaker"]>().toEqualTypeOf<CircuitBreakerConfig | undefined>()
    expectTypeOf<FlexiDBOptions["healthCheck"]>().toEqualTypeOf<HealthCheckConfig | undefined>()
    expectTypeOf<FlexiDBOptions["reconnect"]>().toEqualTypeOf<ReconnectConfig | undefined>()
    expectTypeOf<FlexiDBOptions["hooks"]>().toEqualTypeOf<FlexiDBHooks | undefined>()
    expectTypeOf<MiddlewareFn>().parameters.toEqualTypeOf<[string, string, () => Promise<unknown>]>()
    expectTypeOf<ReadWriteClient<SqliteClient>["write"]>().toEqualTypeOf<SqliteClient>()
    const annotated: FlexiDB<{ user: SqliteClient }> = createFlexiDB({ user: sqlite })
    expectTypeOf(annotated.get("user")).toEqualTypeOf<SqliteClient>()
    // @ts-expect-error backoff is a closed set
    const bad: FlexiDBOptions = { retry: { backoff: "linear" } }
    void bad
  })

  it("the mock has the same interface and typed get()", () => {
    const mock = createMockFlexiDB({ user: { user: { count: async () => 3 } } })
    expectTypeOf(mock.get("user").user.count).returns.resolves.toEqualTypeOf<number>()
    // @ts-expect-error unknown mock name
    mock.get("nope")
  })

  it("mockFlexiDB<M>() is a FlexiDB<M>: it goes where the real instance goes, with no cast", () => {
    type App = { user: SqliteClient; orders: { read: MysqlClient; write: MysqlClient } }
    const mock = mockFlexiDB<App>({ user: { user: { count: async () => 3 } }, orders: {} })
    const takesTheApp = (app: FlexiDB<App>) => app.get("user")
    expectTypeOf(takesTheApp(mock)).toEqualTypeOf<SqliteClient>()
    expectTypeOf(mock.get("orders", "read")).toEqualTypeOf<MysqlClient>()
    mock.setDown("user")
    // @ts-expect-error every database of the app needs a mock, if only {}
    mockFlexiDB<App>({ user: {} })
    // @ts-expect-error a mock holds only what the client has
    mockFlexiDB<App>({ user: { usr: {} }, orders: {} })
    // @ts-expect-error setDown takes the app's database names
    mock.setDown("nope")
  })
})

describe("tenant mocks (#27 item 8)", () => {
  const real = createFlexiDB({ core: mysql }, { tenants: { resolve: (): SqliteClient | undefined => sqlite } })
  type DB = typeof real

  it("a tenant's mock is typed by the tenant client: a typo or a wrong return type is a compile error", () => {
    mockFlexiDB<DB>({ core: {} }, {
      tenants: { resolve: (name) => (name === "acme" ? { user: { count: async () => 3, findMany: async () => [{ id: 1 }] } } : undefined) }
    })
    mockFlexiDB<DB>({ core: {} }, { tenants: { resolve: async () => ({ post: { findFirst: () => null } }) } })
    // @ts-expect-error a model the tenant client does not have
    mockFlexiDB<DB>({ core: {} }, { tenants: { resolve: () => ({ projct: {} }) } })
    // @ts-expect-error count() resolves to a number
    mockFlexiDB<DB>({ core: {} }, { tenants: { resolve: () => ({ user: { count: async () => "three" } }) } })
    // @ts-expect-error the same on a registered database
    mockFlexiDB<DB>({ core: { user: { count: async () => "three" } } })
  })
})

describe("Effect API types", () => {
  class AppDb extends FlexiDBService.Tag("types/AppDb")<AppDb, { user: SqliteClient; orders: ReadWriteClient<MysqlClient> }>() {}
  class Tenant extends Context.Tag("types/Tenant")<Tenant, string>() {}

  it("a Tag declares the databases once: get() is typed by name, without a cast", () => {
    expectTypeOf(Effect.flatMap(AppDb, (db) => db.get("user"))).toEqualTypeOf<
      Effect.Effect<SqliteClient, UnknownDatabaseError | ClosedError | InvalidArgumentError, AppDb>
    >()
    expectTypeOf(service.get("orders", "read")).toEqualTypeOf<
      Effect.Effect<MysqlClient, UnknownDatabaseError | ClosedError | InvalidArgumentError>
    >()
    // @ts-expect-error an undeclared name is a compile error
    service.get("nope")
    expectTypeOf(AppDb.layer({ user: sqlite, orders: { read: mysql, write: mysql } })).toEqualTypeOf<
      Layer.Layer<AppDb, InvalidArgumentError>
    >()
    // @ts-expect-error the layer takes exactly the declared clients
    AppDb.layer({ user: mysql, orders: { read: mysql, write: mysql } })
  })

  it("batch takes Effects and Promises: values, errors and the Effects' context are typed", () => {
    const batch = service.batch({
      user: (c) => Effect.map(Tenant, (t) => `${t}:${c.$connect.name}`),
      orders: (c) => c.user.count()
    })
    expectTypeOf(batch).toEqualTypeOf<
      Effect.Effect<
        { user: string; orders: number },
        BatchError | UnknownDatabaseError | InvalidArgumentError | ClosedError,
        Tenant
      >
    >()
    // @ts-expect-error a key that is not a database
    service.batch({ usr: () => Effect.void })
    expectTypeOf(service.batchSettled({ user: () => Effect.succeed(1) })).toEqualTypeOf<
      Effect.Effect<{ user: Settled<number> }, UnknownDatabaseError | InvalidArgumentError | ClosedError, never>
    >()
  })

  it("the untyped service and FlexiDBService.make infer the map", () => {
    expectTypeOf(Effect.flatMap(FlexiDBService.FlexiDB, (db) => db.get("anything"))).toEqualTypeOf<
      Effect.Effect<PrismaClientLike, UnknownDatabaseError | ClosedError | InvalidArgumentError, FlexiDBService.FlexiDB>
    >()
    const made = Effect.flatMap(FlexiDBService.make({ user: sqlite }), (db) => db.get("user"))
    expectTypeOf(made).toEqualTypeOf<
      Effect.Effect<SqliteClient, InvalidArgumentError | UnknownDatabaseError | ClosedError, Scope.Scope>
    >()
  })
})

describe("the service is the whole contract", () => {
  class TenantDb extends FlexiDBService.Tag("types/TenantDb")<TenantDb, { core: MysqlClient }, SqliteClient>() {}

  it("a Tag's third type is the tenants' client: tenant and withTenant give it; catchTags keeps every type", () => {
    const program = Effect.gen(function*() {
      const db = yield* TenantDb
      const tasks = yield* db.withTenant("acme", (c) => Effect.promise(() => c.user.count()))
      expectTypeOf(yield* db.tenant("acme")).toEqualTypeOf<SqliteClient>()
      const current = yield* db.currentTenant
      if (Option.isSome(current)) expectTypeOf(current.value.client).toEqualTypeOf<SqliteClient>()
      return tasks
    })
    expectTypeOf(program).toEqualTypeOf<Effect.Effect<number, TenantError | TenantLockedError, TenantDb>>()
    const handled = program.pipe(
      Effect.catchTags({
        TenantResolveError: (e) => Effect.succeed(e.tenant.length),
        TenantLockedError: (e) => Effect.succeed(e.current.length),
        UnknownDatabaseError: () => Effect.succeed(0),
        InvalidArgumentError: () => Effect.succeed(0),
        TenantCapacityError: (e) => Effect.succeed(e.maxClients),
        TenantSuspendedError: () => Effect.succeed(0),
        CatalogError: () => Effect.succeed(0),
        ConnectionError: () => Effect.succeed(0),
        TenantMovingError: (e) => Effect.succeed(e.waitedMs)
      })
    )
    expectTypeOf(handled).toEqualTypeOf<Effect.Effect<number, DuplicateDatabaseError | ClosedError, TenantDb>>()
    // The layer's resolve returns the tenants' client.
    TenantDb.layer({ core: mysql }, { tenants: { resolve: () => sqlite } })
  })

  it("the service, the layer and the facade take the same options", () => {
    type Facade = NonNullable<Parameters<typeof createFlexiDB>[1]>
    expectTypeOf<NonNullable<Parameters<typeof FlexiDBService.make>[1]>>().toEqualTypeOf<Facade>()
    expectTypeOf<keyof NonNullable<Parameters<typeof FlexiDBService.layer>[1]>>().toEqualTypeOf<keyof Facade>()
  })

  it("no error channel is unknown: each is a union of tagged errors", () => {
    type S = FlexiDBService.Service<{ core: MysqlClient }, SqliteClient>
    type ErrorOf<X> = X extends Effect.Effect<any, infer E, any> ? E
      : X extends (...args: any) => Effect.Effect<any, infer E, any> ? E
      : never
    type Channels = { [K in keyof S]: ErrorOf<S[K]> }
    type UnknownIn = { [K in keyof Channels]: unknown extends Channels[K] ? K : never }[keyof Channels]
    // Generic pass-throughs (withTenant, withSession, preventWrites, batch) add their own E to flexidb's.
    expectTypeOf<Exclude<UnknownIn, "withTenant" | "withSession" | "preventWrites">>().toEqualTypeOf<never>()
    expectTypeOf<Channels["tenant"]>().toEqualTypeOf<TenantError>()
    expectTypeOf<Channels["tenantStats"]>().toEqualTypeOf<InvalidArgumentError>()
    expectTypeOf<Channels["metrics"]>().toEqualTypeOf<InvalidArgumentError | ClosedError>()
    expectTypeOf<Channels["healthGroup"]>().toEqualTypeOf<UnknownGroupError>()
    expectTypeOf<S["tenantStats"]>().toEqualTypeOf<Effect.Effect<TenantStats, InvalidArgumentError>>()
    const s = {} as S
    expectTypeOf(s.withTenant("a", () => Effect.fail("mine" as const))).toEqualTypeOf<
      Effect.Effect<never, "mine" | TenantError | TenantLockedError, never>
    >()
  })
})

describe("replica and tenant types", () => {
  it("tenants: tenant() and withTenant() give the client resolve returns; get() takes the registered names only", async () => {
    const db = createFlexiDB({ core: mysql }, { tenants: { resolve: (): SqliteClient | undefined => sqlite } })
    expectTypeOf(db.get("core")).toEqualTypeOf<MysqlClient>()
    // @ts-expect-error with tenants set, a typo of a registered name is still a compile error (#27 item 6)
    db.get("cor")
    // @ts-expect-error tenants go through tenant(), not get()
    db.get("acme")
    expectTypeOf(await db.tenant("acme")).toEqualTypeOf<SqliteClient>()
    await db.withTenant("acme", (client) => expectTypeOf(client).toEqualTypeOf<SqliteClient>())
    expectTypeOf(db.tenantStats().resident).toEqualTypeOf<number>()
    const plain = createFlexiDB({ main: mysql })
    // @ts-expect-error no tenants: an unregistered name is a compile error
    plain.get("acme")
  })

  it("a pair takes weighted replicas and its own replica settings", () => {
    const db = createFlexiDB({
      orders: { write: mysql, read: [{ client: mysql, weight: 2 }, mysql], balance: "least-busy", fallback: "error" }
    })
    expectTypeOf(db.get("orders", "read")).toEqualTypeOf<MysqlClient>()
    expectTypeOf(db.stats().orders.members[0]!.role).toEqualTypeOf<"write" | "read">()
    // @ts-expect-error not a balance policy
    createFlexiDB({ orders: { write: mysql, read: mysql, balance: "fastest" } })
  })
})
