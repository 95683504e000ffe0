// The Effect API on real databases: a typed registry Tag, Effect-native batch, layerConfig, and role checks.
import { describe, expect, it } from "@effect/vitest"
import { Cause, Chunk, Config, ConfigProvider, Context, Deferred, Effect, Exit, Fiber, Layer, Option, Redacted } from "effect"
import {
  BatchError,
  createFlexiDB,
  Database,
  DuplicateDatabaseError,
  FlexiDBService,
  InvalidArgumentError,
  isFlexiDBError,
  TenantLockedError,
  TenantResolveError,
  UnknownDatabaseError
} from "../src/index.js"
import { MigrationError } from "../src/migrate.js"
import type { PostgresClient, SqliteClient } from "./fixtures/prisma7/clients.ts"
import * as prisma7 from "./fixtures/prisma7/clients.ts"
import type { Provider, TestDatabase } from "./support/databases.js"
import { createDatabase } from "./support/databases.js"

const database = (provider: Provider) => Effect.acquireRelease(Effect.promise(() => createDatabase(provider)), (d) => Effect.promise(d.drop))

class AppDb extends FlexiDBService.Tag("test/AppDb")<AppDb, { user: SqliteClient; audit: PostgresClient }>() {}

/** The app's databases as a Layer, on a fresh SQLite file and PostgreSQL database. */
const appLayer = (sqlite: TestDatabase, postgres: TestDatabase, events: Array<string> = []) =>
  AppDb.layer(() => ({ user: prisma7.sqlite(sqlite.url), audit: prisma7.postgresql(postgres.url) }), {
    gracefulShutdown: false,
    hooks: { onDisconnect: (n) => events.push(`disconnect:${n}`) }
  })

class Tenant extends Context.Tag("test/Tenant")<Tenant, string>() {}

describe("FlexiDBService.Tag", () => {
  it.scoped("declares the app's databases once: get() is typed by name and the scope disconnects them", () =>
    Effect.gen(function*() {
      const sqlite = yield* database("sqlite")
      const postgres = yield* database("postgresql")
      const events: Array<string> = []
      yield* Effect.gen(function*() {
        const db = yield* AppDb
        expect(yield* db.ready).toEqual({ user: true, audit: true })
        const user = yield* db.get("user")
        const audit = yield* db.get("audit")
        yield* Effect.promise(() => user.user.create({ data: { email: "a@x" } }))
        expect(yield* Effect.promise(() => user.user.count())).toBe(1)
        expect(yield* Effect.promise(() => audit.user.count())).toBe(0)
        expect((yield* db.stats).user.totalQueries).toBe(2)
        expect(yield* Effect.flip(db.get("nope" as "user"))).toBeInstanceOf(UnknownDatabaseError)
        expect(yield* Effect.flip(db.get("user", "reader" as "read"))).toBeInstanceOf(InvalidArgumentError)
      }).pipe(Effect.provide(appLayer(sqlite, postgres, events)))
      expect(events.sort()).toEqual(["disconnect:audit", "disconnect:user"])
    }))
})

describe("Effect-native batch", () => {
  it.scoped("runs Effect and Promise operations on each database in parallel, with their context", () =>
    Effect.gen(function*() {
      const sqlite = yield* database("sqlite")
      const postgres = yield* database("postgresql")
      const db = Context.get(yield* Layer.build(appLayer(sqlite, postgres)), AppDb)
      const results = yield* db.batch({
        user: (c) => Effect.flatMap(Tenant, (tenant) => Effect.promise(() => c.user.create({ data: { email: tenant } }))),
        audit: (c) => c.user.count()
      }).pipe(Effect.provideService(Tenant, "t@x"))
      expect(results.user.email).toBe("t@x")
      expect(results.audit).toBe(0)
      // Each operation counts once, as `batch`.
      const stats = yield* db.stats
      expect([stats.user.totalQueries, stats.audit.totalQueries]).toEqual([1, 1])
    }))

  it.scoped("fails with BatchError holding each typed failure, after every operation ran", () =>
    Effect.gen(function*() {
      const sqlite = yield* database("sqlite")
      const postgres = yield* database("postgresql")
      const db = Context.get(yield* Layer.build(appLayer(sqlite, postgres)), AppDb)
      const error = yield* Effect.flip(db.batch({
        user: () => Effect.fail("no such tenant" as const),
        audit: (c) => c.user.create({ data: { email: "kept@x" } })
      }))
      expect(error).toBeInstanceOf(BatchError)
      expect(error).toMatchObject({ failures: { user: "no such tenant" }, results: { audit: { email: "kept@x" } } })
      const settled = yield* db.batchSettled({ user: () => Effect.fail(1), audit: (c) => c.user.count() })
      expect(settled).toEqual({ user: { status: "rejected", reason: 1 }, audit: { status: "fulfilled", value: 1 } })
      // A name that is not registered fails before anything runs.
      expect(yield* Effect.flip(db.batch({ nope: () => Effect.void } as never))).toBeInstanceOf(UnknownDatabaseError)
    }))

  it.scoped("an operation that dies makes the batch die; interrupting the batch interrupts its Effects", () =>
    Effect.gen(function*() {
      const sqlite = yield* database("sqlite")
      const postgres = yield* database("postgresql")
      const db = Context.get(yield* Layer.build(appLayer(sqlite, postgres)), AppDb)
      const exit = yield* Effect.exit(db.batch({ user: () => Effect.die(new Error("bug")), audit: (c) => c.user.count() }))
      expect(Exit.isFailure(exit) && exit.cause._tag === "Die").toBe(true)

      // A failure beside a defect is still a defect; a function that throws instead of returning is a bug, not a failure.
      const both = yield* Effect.exit(db.batch({ user: () => Effect.failCause(Cause.parallel(Cause.fail("typed"), Cause.die("bug"))) }))
      expect(Exit.isFailure(both) && Cause.isDie(both.cause)).toBe(true)
      // Its typed failures and the other operations' failures stay in the Cause, as defects: no catchAll swallows the bug.
      const mixed = yield* Effect.exit(
        db.batch({
          user: () => Effect.failCause(Cause.parallel(Cause.fail("typed"), Cause.die("bug"))),
          audit: () => Effect.fail("other" as const)
        }).pipe(Effect.catchAll(() => Effect.succeed("swallowed")))
      )
      expect(Exit.isFailure(mixed)).toBe(true)
      if (Exit.isFailure(mixed)) {
        expect(Chunk.toReadonlyArray(Cause.failures(mixed.cause))).toEqual([])
        expect(Chunk.toReadonlyArray(Cause.defects(mixed.cause)).map(String).sort()).toEqual(["bug", "other", "typed"])
      }
      const threw = yield* Effect.exit(db.batch({ user: (): Effect.Effect<void> => { throw new Error("bug") } }))
      expect(Exit.isFailure(threw) && Cause.isDie(threw.cause)).toBe(true)

      const started = yield* Deferred.make<void>()
      const log: Array<string> = []
      const fiber = yield* Effect.fork(db.batch({
        user: () =>
          Deferred.succeed(started, undefined).pipe(
            Effect.zipRight(Effect.never),
            // Its finalizer takes time: interrupting the batch waits for it.
            Effect.onInterrupt(() => Effect.promise(() => new Promise((r) => setTimeout(r, 50))).pipe(Effect.tap(() => log.push("finalizer done"))))
          ),
        audit: (c) => c.user.count()
      }))
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      log.push("interrupt returned")
      expect(log).toEqual(["finalizer done", "interrupt returned"])
    }))
})

describe("Database.layerConfig", () => {
  class UserDb extends Context.Tag("test/UserDb")<UserDb, Database.Database<SqliteClient>>() {}
  const layer = Database.layerConfig(UserDb, "user", { url: Config.redacted("DATABASE_URL_USER"), operationTimeout: Config.duration("TIMEOUT") }, (url) => prisma7.sqlite(Redacted.value(url)))

  it.scoped("reads the URL as Redacted and the options from Config", () =>
    Effect.gen(function*() {
      const sqlite = yield* database("sqlite")
      const env = new Map([["DATABASE_URL_USER", sqlite.url], ["TIMEOUT", "2 seconds"]])
      const count = yield* Effect.flatMap(UserDb, (db) => db.query((c) => c.user.count())).pipe(
        Effect.provide(layer.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(env)))))
      )
      expect(count).toBe(0)
    }))

  it.effect("fails with a ConfigError naming the missing variable, before any client is made", () =>
    Effect.gen(function*() {
      let made = 0
      const counting = Database.layerConfig(UserDb, "user", { url: Config.redacted("DATABASE_URL_USER") }, () => {
        made++
        return prisma7.sqlite(":memory:")
      })
      const error = yield* Effect.flip(Effect.provide(UserDb, counting.pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map()))))))
      expect(String(error)).toContain("DATABASE_URL_USER")
      expect(made).toBe(0)
    }))
})

// The service is the whole contract: tenants, request context, metrics and typed errors, shared by the tests below.
class Tenants extends FlexiDBService.Tag("test/Tenants")<Tenants, { core: SqliteClient }, SqliteClient>() {}

const tenantsLayer = Layer.unwrapScoped(Effect.gen(function*() {
  const core = yield* database("sqlite")
  const acme = yield* database("sqlite")
  const globex = yield* database("sqlite")
  const files = new Map([["acme", acme.url], ["globex", globex.url]])
  return Tenants.layer(() => ({ core: prisma7.sqlite(core.url) }), {
    gracefulShutdown: false,
    prometheus: true,
    tenants: {
      resolve: (name) => {
        if (name === "boom") throw new Error("directory at postgresql://app:s3cret@10.0.0.1/dir unavailable")
        const url = files.get(name)
        return url === undefined ? undefined : prisma7.sqlite(url)
      }
    }
  })
}))

describe("the Effect service", () => {
  it.layer(tenantsLayer, { timeout: 60_000 })("with tenants", (it) => {
    it.effect("withTenant gives the tenant's client and makes it currentTenant; another tenant inside is refused", () =>
      Effect.gen(function*() {
        const db = yield* Tenants
        expect(yield* db.currentTenant).toEqual(Option.none())
        const count = yield* db.withTenant("acme", (client) =>
          Effect.gen(function*() {
            expect(Option.map(yield* db.currentTenant, (t) => t.name)).toEqual(Option.some("acme"))
            expect((yield* db.tenantStats).leased).toBe(1)
            const locked = yield* Effect.flip(db.withTenant("globex", () => Effect.void))
            expect(locked).toBeInstanceOf(TenantLockedError)
            expect(locked.message).toContain("Cannot enter tenant 'globex' inside tenant 'acme'")
            // Nested on purpose: allowed, and currentTenant is the inner one inside it.
            const inner = yield* db.withTenant("globex", () => Effect.map(db.currentTenant, Option.map((t) => t.name)), {
              nested: true
            })
            expect(inner).toEqual(Option.some("globex"))
            return yield* Effect.promise(() => client.user.count())
          }))
        expect(count).toBe(0)
        expect((yield* db.tenantStats).leased).toBe(0)
        expect(yield* db.currentTenant).toEqual(Option.none())
        // A resident tenant comes back at once, the same client.
        expect(yield* db.tenant("acme")).toBe(yield* db.tenant("acme"))
      }))

    it.effect("opening a tenant fails with tagged errors only: catchTags sees each", () =>
      Effect.gen(function*() {
        const db = yield* Tenants
        const resolveFailed = yield* Effect.flip(db.tenant("boom"))
        expect(resolveFailed).toBeInstanceOf(TenantResolveError)
        expect(resolveFailed).toMatchObject({ code: "FLEXIDB_TENANT_RESOLVE", tenant: "boom" })
        expect((resolveFailed as TenantResolveError).cause).toBeInstanceOf(Error)
        expect(resolveFailed.message).toContain("directory at postgresql://***@10.0.0.1/dir unavailable")
        expect(resolveFailed.message).not.toContain("s3cret")
        const tag = (name: string) =>
          db.tenant(name).pipe(
            Effect.as("opened"),
            Effect.catchTags({
              TenantResolveError: (e) => Effect.succeed(`resolve:${e.tenant}`),
              UnknownDatabaseError: (e) => Effect.succeed(`unknown:${e.database}`),
              InvalidArgumentError: (e) => Effect.succeed(`invalid:${e.path}`),
              TenantCapacityError: () => Effect.succeed("capacity"),
              DuplicateDatabaseError: () => Effect.succeed("duplicate"),
              ClosedError: () => Effect.succeed("closed")
            })
          )
        expect(yield* Effect.all([tag("boom"), tag("ghost"), tag("no such/name"), tag("globex")])).toEqual([
          "resolve:boom",
          "unknown:ghost",
          "invalid:tenant",
          "opened"
        ])
      }))

    it.effect("groups: define, read back, health; an undefined group is UnknownGroupError", () =>
      Effect.gen(function*() {
        const db = yield* Tenants
        const defined = yield* db.group("main", ["core"])
        expect(defined.core).toBe(yield* db.get("core"))
        expect((yield* db.group("main")).core).toBe(defined.core)
        expect(yield* db.healthGroup("main")).toEqual({ core: true })
        const missing = yield* Effect.flip(db.healthGroup("nope"))
        expect(missing._tag).toBe("UnknownGroupError")
        expect((yield* Effect.flip(db.group("nope")))._tag).toBe("UnknownGroupError")
        expect((yield* Effect.flip(db.group("bad", ["ghost" as "core"])))._tag).toBe("UnknownDatabaseError")
      }))

    it.effect("metrics in Prometheus' text format", () =>
      Effect.gen(function*() {
        const db = yield* Tenants
        yield* db.ready
        expect(yield* db.metrics).toContain("flexidb_")
      }))
  })

  it.scoped("100 concurrent registers of one name: one succeeds, 99 fail with DuplicateDatabaseError, one database made", () =>
    Effect.gen(function*() {
      const sqlite = yield* database("sqlite")
      const connected: Array<string> = []
      const disconnected: Array<string> = []
      const db = yield* FlexiDBService.make({} as Record<string, SqliteClient>, {
        gracefulShutdown: false,
        hooks: { onConnect: (n) => connected.push(n), onDisconnect: (n) => disconnected.push(n) }
      })
      const client = prisma7.sqlite(sqlite.url)
      // Each fiber yields to the others after every few steps, as a busy runtime makes them do.
      const exits = yield* Effect.forEach(
        Array.from({ length: 100 }, () => db.register("raced", client)),
        Effect.exit,
        { concurrency: "unbounded" }
      ).pipe(Effect.withMaxOpsBeforeYield(64))
      expect(exits.filter(Exit.isSuccess)).toHaveLength(1)
      const failures = exits.flatMap((e) => (Exit.isFailure(e) ? [Cause.squash(e.cause)] : []))
      expect(failures).toHaveLength(99)
      for (const f of failures) expect(f).toBeInstanceOf(DuplicateDatabaseError)
      expect(yield* db.ready).toEqual({ raced: true })
      // One database was made and connected; unregistering it disconnects it, and nothing else is left to close.
      expect(connected).toEqual(["raced"])
      yield* db.unregister("raced")
      expect(disconnected).toEqual(["raced"])
      expect(yield* db.list).toEqual([])
    }))

  it.scoped("without tenants, tenantStats and tenant fail with InvalidArgumentError in both faces; so does a bad role", () =>
    Effect.gen(function*() {
      const sqlite = yield* database("sqlite")
      const db = yield* FlexiDBService.make({ user: prisma7.sqlite(sqlite.url) }, { gracefulShutdown: false })
      expect(yield* Effect.flip(db.tenantStats)).toBeInstanceOf(InvalidArgumentError)
      expect(yield* Effect.flip(db.tenant("acme"))).toBeInstanceOf(InvalidArgumentError)
      expect(yield* Effect.flip(db.withTenant("acme", () => Effect.void))).toBeInstanceOf(InvalidArgumentError)
      expect(yield* Effect.flip(db.metrics)).toBeInstanceOf(InvalidArgumentError)
      expect(yield* Effect.flip(db.get("user", "primary" as "read"))).toBeInstanceOf(InvalidArgumentError)
      const flexi = createFlexiDB({ user: prisma7.sqlite(sqlite.url) }, { gracefulShutdown: false })
      yield* Effect.addFinalizer(() => Effect.promise(() => flexi.disconnect()))
      expect(() => flexi.tenantStats()).toThrow(InvalidArgumentError)
      expect(() => flexi.get("user", "primary" as "read")).toThrow(InvalidArgumentError)
      yield* Effect.promise(() => expect(flexi.tenant("acme")).rejects.toBeInstanceOf(InvalidArgumentError))
      yield* Effect.promise(() => expect(flexi.metrics()).rejects.toBeInstanceOf(InvalidArgumentError))
      // The same after disconnect(): without the option, it is a mistake whenever it is called.
      yield* Effect.promise(() => flexi.disconnect())
      expect(() => flexi.tenantStats()).toThrow(InvalidArgumentError)
    }))

  it.scoped("withSession: after a write, the session's reads of a pair go to the writer; outside, to the replica", () =>
    Effect.gen(function*() {
      const sqlite = yield* database("sqlite")
      const db = yield* FlexiDBService.make(
        { main: { write: prisma7.sqlite(sqlite.url), read: prisma7.sqlite(sqlite.url) } },
        { gracefulShutdown: false }
      )
      yield* db.ready
      const queries = Effect.map(db.stats, (s) => s.main.members.map((m) => m.totalQueries))
      const read = Effect.flatMap(db.get("main", "read"), (c) => Effect.promise(() => c.user.count()))
      const write = (email: string) =>
        Effect.flatMap(db.get("main"), (c) => Effect.promise(() => c.user.create({ data: { email } })))
      yield* write("a@x")
      yield* read
      expect(yield* queries).toEqual([1, 1]) // outside a session: the replica
      yield* db.withSession(Effect.gen(function*() {
        yield* write("b@x")
        yield* read
        // A nested session joins this one.
        yield* db.withSession(read)
      }))
      expect(yield* queries).toEqual([4, 1])
    }))
})

describe("tagged errors", () => {
  it("isFlexiDBError is about the runtime's errors: a MigrationError has a type id of its own", () => {
    const migration = new MigrationError({ code: "P3009", reason: "failed at postgresql://app:s3cret@db/app" })
    expect(isFlexiDBError(migration)).toBe(false)
    expect(migration.message).toBe("P3009: failed at postgresql://***@db/app")
    expect(isFlexiDBError(new TenantResolveError({ tenant: "acme", cause: new Error("x") }))).toBe(true)
    expect(isFlexiDBError(new UnknownDatabaseError({ database: "a", registered: [] }))).toBe(true)
  })
})
