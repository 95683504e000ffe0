// The Effect API on real databases: a typed registry Tag, Effect-native batch, layerConfig, and role checks.
import { describe, expect, it } from "@effect/vitest"
import { Cause, Config, ConfigProvider, Context, Deferred, Effect, Exit, Fiber, Layer, Redacted } from "effect"
import { BatchError, Database, FlexiDBService, InvalidArgumentError, UnknownDatabaseError } from "../src/index.js"
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
