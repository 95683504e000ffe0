// flexidb/migrate against real databases: Prisma's migration folders applied in process through a Prisma client or a
// URL, Prisma's table and lock kept, and Prisma 6.19's own CLI as the oracle (SQLite, its JavaScript engine).
import Database from "better-sqlite3"
import * as mariadb from "mariadb"
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import pg from "pg"
import { Cause, Effect, Exit, Fiber, type Scope, TestClock, TestContext } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { open } from "../src/migrate/connection.js"
import { takeLock } from "../src/migrate/lock.js"
import { checksum, deployMigrations, deployRefusal, migrationStatus, resolveMigration, statements } from "../src/migrate.js"
import * as prisma7 from "./fixtures/prisma7/clients.ts"
import { MYSQL_HOST, PG_HOST, uniqueName } from "./support/databases.js"
import { prisma6, scratch } from "./support/prisma6.js"

const fixtures = join(import.meta.dirname, "fixtures", "migrations")
const INIT = "20260101000000_init"
const ROLES = "20260102000000_roles_and_publishing"
const dir = scratch()
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** A copy of a provider's migrations folder, to change. */
const folder = (provider: string) => {
  const to = join(dir, uniqueName("folder"))
  cpSync(join(fixtures, provider), to, { recursive: true })
  return to
}
let files = 0
const sqliteFile = () => join(dir, `db${files++}.db`)
const sqliteRows = (file: string) => {
  const db = new Database(file, { readonly: true })
  const rows = db.prepare(`SELECT * FROM _prisma_migrations ORDER BY started_at, migration_name`).all() as Array<Record<string, unknown>>
  db.close()
  return rows
}
const sqliteTables = (file: string) => {
  const db = new Database(file, { readonly: true })
  const rows = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as Array<{ name: string }>
  db.close()
  return rows.map((r) => r.name)
}
const failure = (p: Promise<unknown>) => p.then(() => { throw new Error("expected a refusal") }, (e: unknown) => e as { code: string; message: string; migration?: string })

describe("SQLite, through a Prisma client", () => {
  it("applies pending migrations in order; a second deploy applies nothing; status says where it stands", async () => {
    const file = sqliteFile()
    const client = prisma7.sqlite(file)
    const migrations = join(fixtures, "sqlite")
    expect(await migrationStatus({ client, migrations })).toEqual({ applied: [], pending: [INIT, ROLES], failed: [], modified: [], missingLocally: [] })
    expect(await deployMigrations({ client, migrations })).toEqual({ applied: [INIT, ROLES] })
    expect(sqliteTables(file)).toEqual(["Post", "User", "_prisma_migrations"])
    expect(await deployMigrations({ client, migrations })).toEqual({ applied: [] })
    expect(await migrationStatus({ client, migrations })).toEqual({ applied: [INIT, ROLES], pending: [], failed: [], modified: [], missingLocally: [] })
    // The client works against the migrated schema.
    await client.user.create({ data: { email: "a@x.io" } })
    expect(await client.user.count()).toBe(1)
    await client.$disconnect()
  })

  it("checksums are Prisma's: SHA-256 of the file; a change of line endings alone is no change", async () => {
    expect(checksum("hello")).toBe("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    const migrations = folder("sqlite")
    const file = sqliteFile()
    await deployMigrations({ url: `file:${file}`, migrations })
    const init = join(migrations, INIT, "migration.sql")
    writeFileSync(init, readFileSync(init, "utf8").replaceAll("\n", "\r\n"))
    expect((await migrationStatus({ url: `file:${file}`, migrations })).modified).toEqual([])
  })
})

describe("compatible with Prisma 6.19 both ways (SQLite)", () => {
  const migrations = join(fixtures, "sqlite")

  it("flexidb writes the rows Prisma writes; Prisma finds a flexidb-migrated database up to date", async () => {
    const byPrisma = sqliteFile()
    const byFlexi = sqliteFile()
    const deployed = await prisma6(["migrate", "deploy"], byPrisma, migrations)
    expect(deployed.out).toContain("All migrations have been successfully applied")
    expect(await deployMigrations({ url: `file:${byFlexi}`, migrations })).toEqual({ applied: [INIT, ROLES] })
    const strip = (rows: Array<Record<string, unknown>>) =>
      rows.map(({ id, started_at, finished_at, ...rest }) => ({ ...rest, id: typeof id, finished: finished_at !== null, started: started_at !== null }))
    expect(strip(sqliteRows(byFlexi))).toEqual(strip(sqliteRows(byPrisma)))
    expect(sqliteRows(byFlexi).map((r) => r.checksum)).toEqual([INIT, ROLES].map((m) => checksum(readFileSync(join(migrations, m, "migration.sql"), "utf8"))))
    // Same tables and columns.
    const schema = (file: string) => {
      const db = new Database(file, { readonly: true })
      const sql = db.prepare(`SELECT name, sql FROM sqlite_master WHERE name NOT LIKE '_prisma%' ORDER BY name`).all()
      db.close()
      return sql
    }
    expect(schema(byFlexi)).toEqual(schema(byPrisma))
    // Times in the form Prisma's engine writes them here (RFC 3339 text with an offset).
    const form = (v: unknown) => String(v).replace(/\d/g, "0")
    expect(sqliteRows(byFlexi).map((r) => [form(r.started_at), form(r.finished_at)])).toEqual(
      sqliteRows(byPrisma).map((r) => [form(r.started_at), form(r.finished_at)])
    )
    const status = await prisma6(["migrate", "status"], byFlexi, migrations)
    expect(status.out).toContain("Database schema is up to date!")
    expect(status.code).toBe(0)
    const again = await prisma6(["migrate", "deploy"], byFlexi, migrations)
    expect(again.out).toContain("No pending migrations to apply")
  }, 120_000)

  it("flexidb finds a Prisma-migrated database up to date, and applies only what Prisma has not", async () => {
    const file = sqliteFile()
    const first = folder("sqlite")
    rmSync(join(first, ROLES), { recursive: true })
    expect((await prisma6(["migrate", "deploy"], file, first)).code).toBe(0)
    expect(await migrationStatus({ url: `file:${file}`, migrations: first })).toMatchObject({ applied: [INIT], pending: [] })
    expect(await deployMigrations({ url: `file:${file}`, migrations })).toEqual({ applied: [ROLES] })
    expect((await prisma6(["migrate", "status"], file, migrations)).out).toContain("Database schema is up to date!")
  }, 120_000)
})

describe("refuses like Prisma, changing nothing", () => {
  it("a recorded migration whose file changed", async () => {
    const migrations = folder("sqlite")
    const file = sqliteFile()
    rmSync(join(migrations, ROLES), { recursive: true })
    await deployMigrations({ url: `file:${file}`, migrations })
    cpSync(join(fixtures, "sqlite", ROLES), join(migrations, ROLES), { recursive: true })
    writeFileSync(join(migrations, INIT, "migration.sql"), "-- edited\n" + readFileSync(join(migrations, INIT, "migration.sql"), "utf8"))
    const before = sqliteRows(file)
    const error = await failure(deployMigrations({ url: `file:${file}`, migrations }))
    expect(error).toMatchObject({ code: "FLEXIDB_MIGRATION_MODIFIED", migration: INIT })
    expect(error.message).toContain("Restore the files as they were applied")
    expect(sqliteRows(file)).toEqual(before)
    expect(await migrationStatus({ url: `file:${file}`, migrations })).toMatchObject({ modified: [INIT], pending: [ROLES] })
  })

  it("a recorded migration missing from the folder", async () => {
    const migrations = folder("sqlite")
    const file = sqliteFile()
    await deployMigrations({ url: `file:${file}`, migrations })
    rmSync(join(migrations, INIT), { recursive: true })
    const error = await failure(deployMigrations({ url: `file:${file}`, migrations }))
    expect(error).toMatchObject({ code: "FLEXIDB_MIGRATION_MISSING", migration: INIT })
    expect(await migrationStatus({ url: `file:${file}`, migrations })).toMatchObject({ missingLocally: [INIT] })
  })

  it("a failed migration: recorded with the database's error, undone, and nothing more applied until resolved", async () => {
    const file = sqliteFile()
    const migrations = join(fixtures, "sqlite")
    const first = folder("sqlite")
    rmSync(join(first, ROLES), { recursive: true })
    await deployMigrations({ url: `file:${file}`, migrations: first })
    // A table in the way of the second migration.
    const db = new Database(file)
    db.exec(`CREATE TABLE "new_Post" (id INTEGER)`)
    db.close()
    const error = await failure(deployMigrations({ url: `file:${file}`, migrations }))
    expect(error).toMatchObject({ code: "P3018", migration: ROLES })
    const row = sqliteRows(file).find((r) => r.migration_name === ROLES)!
    expect(row).toMatchObject({ finished_at: null, rolled_back_at: null, applied_steps_count: 0 })
    expect(row.logs).toContain("table \"new_Post\" already exists")
    expect(row.logs).toContain(`Migration name: ${ROLES}`)
    // Undone as a whole: the first statements of the failed migration left nothing behind.
    expect(sqliteTables(file)).toEqual(["Post", "User", "_prisma_migrations", "new_Post"].sort())
    expect(await failure(deployMigrations({ url: `file:${file}`, migrations }))).toMatchObject({ code: "P3009", migration: ROLES })
    expect(await migrationStatus({ url: `file:${file}`, migrations })).toMatchObject({ failed: [ROLES], pending: [] })
    // Prisma agrees it failed.
    expect((await prisma6(["migrate", "status"], file, migrations)).out).toContain("have failed")
    // Fixed by hand and marked rolled back: the next deploy applies it again.
    const fix = new Database(file)
    fix.exec(`DROP TABLE "new_Post"`)
    fix.close()
    await resolveMigration({ url: `file:${file}`, migrations, rolledBack: ROLES })
    // Marked once: again is refused, as Prisma refuses it.
    expect(await failure(resolveMigration({ url: `file:${file}`, migrations, rolledBack: ROLES }))).toMatchObject({ code: "P3012" })
    expect(await deployMigrations({ url: `file:${file}`, migrations })).toEqual({ applied: [ROLES] })
    expect((await prisma6(["migrate", "status"], file, migrations)).out).toContain("Database schema is up to date!")
  }, 120_000)

  it("a database with tables and no migrations table (P3005), until baselined with resolve --applied", async () => {
    const file = sqliteFile()
    const db = new Database(file)
    db.exec(`CREATE TABLE "Legacy" (id INTEGER)`)
    db.close()
    const migrations = join(fixtures, "sqlite")
    // Status predicts the refusal: deployRefusal says P3005 before a deploy is tried.
    const before = await migrationStatus({ url: `file:${file}`, migrations })
    expect(before).toMatchObject({ needsBaseline: true, pending: [INIT, ROLES] })
    expect(deployRefusal(before)).toMatchObject({ code: "P3005" })
    expect(await failure(deployMigrations({ url: `file:${file}`, migrations }))).toMatchObject({ code: "P3005" })
    expect(sqliteTables(file)).toEqual(["Legacy"])
    await resolveMigration({ url: `file:${file}`, migrations, applied: INIT })
    const after = await migrationStatus({ url: `file:${file}`, migrations })
    expect(after.needsBaseline).toBeUndefined()
    expect(after.pending).toEqual([ROLES])
    expect(sqliteRows(file)[0]).toMatchObject({ migration_name: INIT, logs: "", applied_steps_count: 0 })
    expect(await failure(resolveMigration({ url: `file:${file}`, migrations, applied: INIT }))).toMatchObject({ code: "P3008" })
    expect(await failure(resolveMigration({ url: `file:${file}`, migrations, applied: "nope" }))).toMatchObject({ code: "P3017" })
    expect(await failure(resolveMigration({ url: `file:${file}`, migrations, rolledBack: INIT }))).toMatchObject({ code: "P3012" })
  })

  it("status of a SQLite file that is not there: every migration pending, and no file made", async () => {
    const file = join(dir, "absent.db")
    expect(await migrationStatus({ url: `file:${file}`, migrations: join(fixtures, "sqlite") })).toMatchObject({ pending: [INIT, ROLES] })
    expect(existsSync(file)).toBe(false)
  })

  it("migrations for another kind of database (P3019), and bad options", async () => {
    const file = sqliteFile()
    expect(await failure(deployMigrations({ url: `file:${file}`, migrations: join(fixtures, "postgresql") }))).toMatchObject({ code: "P3019" })
    expect(await failure(deployMigrations({ url: `file:${file}`, migrations: join(dir, "nowhere") }))).toMatchObject({ code: "FLEXIDB_MIGRATIONS_FOLDER" })
    expect(await failure(deployMigrations({ migrations: join(fixtures, "sqlite") }))).toMatchObject({ code: "FLEXIDB_MIGRATION_OPTIONS" })
    expect(await failure(deployMigrations({ url: "oracle://x", migrations: join(fixtures, "sqlite") }))).toMatchObject({ code: "FLEXIDB_MIGRATION_URL" })
    expect(sqliteTables(file)).toEqual([])
  })
})

describe("statements (SQLite and MySQL run one at a time)", () => {
  it("splits on ; outside quotes, comments and a trigger's body", () => {
    expect(statements(`-- a comment; still\nCREATE TABLE "a;b" (x TEXT DEFAULT 'it''s; fine');\n/* ; */ INSERT INTO t VALUES ('\\\\');`))
      .toEqual([`-- a comment; still\nCREATE TABLE "a;b" (x TEXT DEFAULT 'it''s; fine')`, `/* ; */ INSERT INTO t VALUES ('\\\\')`])
    expect(statements(`CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE b SET x = 1; DELETE FROM c; END;\nSELECT 1;`))
      .toEqual([`CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE b SET x = 1; DELETE FROM c; END`, `SELECT 1`])
    expect(statements(`-- only a comment\n`)).toEqual([])
  })
})

// ---------------------------------------------------------------------------------------------------------------

const pgAdmin = () => new pg.Client({ connectionString: `postgresql://postgres@${PG_HOST}/postgres` })
const emptyPostgres = async () => {
  const name = uniqueName("mig")
  const admin = pgAdmin()
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  return {
    url: `postgresql://postgres:secret-password@${PG_HOST}/${name}`,
    drop: async () => {
      const a = pgAdmin()
      await a.connect()
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await a.end()
    }
  }
}
const pgRows = async (url: string, schema = "public") => {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  const { rows } = await c.query(`SELECT * FROM "${schema}"._prisma_migrations ORDER BY migration_name`)
  await c.end()
  return rows
}

describe("PostgreSQL", () => {
  const migrations = join(fixtures, "postgresql")

  it("deploys through a Prisma client and by URL, and into a schema of its own (schema per tenant)", async () => {
    const db = await emptyPostgres()
    try {
      const client = prisma7.postgresql(db.url)
      expect(await deployMigrations({ client, migrations })).toEqual({ applied: [INIT, ROLES] })
      expect(await deployMigrations({ url: db.url, migrations })).toEqual({ applied: [] })
      const rows = await pgRows(db.url)
      expect(rows.map((r) => [r.migration_name, r.applied_steps_count, r.logs, r.rolled_back_at])).toEqual([[INIT, 1, null, null], [ROLES, 1, null, null]])
      expect(rows.every((r) => r.finished_at instanceof Date && r.finished_at >= r.started_at)).toBe(true)
      await client.user.create({ data: { email: "a@x.io" } })
      await client.$disconnect()
      // Schema per tenant: the migrations and their table in the tenant's schema, made if missing; or the URL's
      // ?schema=, as Prisma reads it.
      expect(await deployMigrations({ url: db.url, migrations, schema: "tenant_a" })).toEqual({ applied: [INIT, ROLES] })
      expect(await deployMigrations({ url: `${db.url}?schema=tenant_b`, migrations })).toEqual({ applied: [INIT, ROLES] })
      expect((await pgRows(db.url, "tenant_b")).map((r) => r.migration_name)).toEqual([INIT, ROLES])
      expect((await pgRows(db.url, "tenant_a")).map((r) => r.migration_name)).toEqual([INIT, ROLES])
      expect(await migrationStatus({ url: db.url, migrations, schema: "tenant_a" })).toMatchObject({ applied: [INIT, ROLES], pending: [] })
    } finally {
      await db.drop()
    }
  })

  it("a failing migration is undone as a whole and recorded failed; the message has no credentials", async () => {
    const db = await emptyPostgres()
    try {
      const broken = folder("postgresql")
      cpSync(join(broken, ROLES), join(broken, "20260103000000_broken"), { recursive: true })
      writeFileSync(join(broken, "20260103000000_broken", "migration.sql"), `CREATE TABLE "Half" (id INT);\nALTER TABLE "Nope" ADD COLUMN x INT;\n`)
      const error = await failure(deployMigrations({ url: db.url, migrations: broken }))
      expect(error).toMatchObject({ code: "P3018", migration: "20260103000000_broken" })
      expect(error.message).toContain("Database error code: 42P01")
      expect(error.message).not.toContain("secret-password")
      const rows = await pgRows(db.url)
      expect(rows.map((r) => [r.migration_name, r.finished_at === null])).toEqual([[INIT, false], [ROLES, false], ["20260103000000_broken", true]])
      const c = new pg.Client({ connectionString: db.url })
      await c.connect()
      expect((await c.query(`SELECT to_regclass('"Half"') AS t`)).rows[0].t).toBeNull()
      await c.end()
    } finally {
      await db.drop()
    }
  })

  it("takes Prisma's lock: a deploy waits while another holds it, then finds nothing to do; times out with P1002", async () => {
    const db = await emptyPostgres()
    try {
      // Prisma's own session lock, held by another connection.
      const holder = new pg.Client({ connectionString: db.url })
      await holder.connect()
      await holder.query(`SELECT pg_advisory_lock(72707369)`)
      expect(await failure(deployMigrations({ url: db.url, migrations, lockTimeout: "300 millis" }))).toMatchObject({ code: "P1002" })
      expect(await migrationStatus({ url: db.url, migrations })).toMatchObject({ applied: [], pending: [INIT, ROLES] })
      await holder.end()
      // Two deploys at once: one applies, the other waits for its lock and then has nothing to apply.
      const both = await Promise.all([deployMigrations({ url: db.url, migrations }), deployMigrations({ url: db.url, migrations })])
      expect(both.map((r) => r.applied.length).sort()).toEqual([0, 2])
      expect((await pgRows(db.url)).length).toBe(2)
    } finally {
      await db.drop()
    }
  })
})

describe("the lock's wait, on the Clock", () => {
  /** Runs `program` under TestClock, moving the clock 50 ms each time the program sleeps, until it ends. */
  const underTestClock = <A, E>(program: Effect.Effect<A, E, Scope.Scope>, onStep: (ms: number) => Promise<void> = async () => {}) =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(Effect.scoped(program))
      let ms = 0
      for (;;) {
        // Real time for a real query to answer: wait until the program sleeps on the clock, or has ended.
        for (;;) {
          if ((yield* Fiber.poll(fiber))._tag === "Some") return { exit: yield* Fiber.await(fiber), ms }
          if ((yield* TestClock.sleeps()).length > 0) break
          yield* Effect.promise(() => new Promise((r) => setImmediate(r)))
        }
        // What happens in the world before the clock moves on (the holder letting go) is seen by the next try.
        yield* Effect.promise(() => onStep(ms))
        yield* TestClock.adjust("50 millis")
        ms += 50
      }
    }).pipe(Effect.provide(TestContext.TestContext), Effect.runPromise)

  const locked = (url: string, timeout: Parameters<typeof takeLock>[1]) =>
    Effect.flatMap(open({ url, migrations: "unused" }), (db) => db.transaction(true, (c) => takeLock(c, timeout)))

  it("waits on a Schedule: P1002 once 10 s have passed by the Clock, not a step before; no real time spent", async () => {
    const db = await emptyPostgres()
    const holder = new pg.Client({ connectionString: db.url })
    try {
      await holder.connect()
      await holder.query(`SELECT pg_advisory_lock(72707369)`)
      const started = performance.now()
      const { exit, ms } = await underTestClock(locked(db.url, "10 seconds"))
      expect(Exit.isFailure(exit) && Cause.failureOption(exit.cause)).toMatchObject({ _tag: "Some", value: { code: "P1002" } })
      // The Schedule tries every 50 ms of the Clock's time, up to the timeout: it gives up exactly there.
      expect(ms).toBe(10_000)
      // Far less than the 10 s it waited by the Clock (200 real queries on a loaded machine).
      expect(performance.now() - started).toBeLessThan(9_000)
    } finally {
      await holder.end()
      await db.drop()
    }
  })

  it("takes the lock on the first try after the holder lets go", async () => {
    const db = await emptyPostgres()
    const holder = new pg.Client({ connectionString: db.url })
    try {
      await holder.connect()
      await holder.query(`SELECT pg_advisory_lock(72707369)`)
      const { exit, ms } = await underTestClock(locked(db.url, "10 seconds"), async (at) => {
        if (at === 950) await holder.query(`SELECT pg_advisory_unlock(72707369)`)
      })
      expect(Exit.isSuccess(exit)).toBe(true)
      expect(ms).toBe(1_000)
    } finally {
      await holder.end()
      await db.drop()
    }
  })
})

describe("MariaDB", () => {
  const migrations = join(fixtures, "mysql")
  const admin = () => mariadb.createConnection({ host: MYSQL_HOST.split(":")[0], port: Number(MYSQL_HOST.split(":")[1]), user: "root" })

  it("deploys through a Prisma client and by URL; takes Prisma's lock; two deploys at once apply once", async () => {
    const name = uniqueName("mig")
    const a = await admin()
    await a.query(`CREATE DATABASE ${name}`)
    const url = `mysql://root@${MYSQL_HOST}/${name}`
    try {
      const client = prisma7.mysql(url)
      const first = folder("mysql")
      rmSync(join(first, ROLES), { recursive: true })
      expect(await deployMigrations({ client, migrations: first })).toEqual({ applied: [INIT] })
      await client.$disconnect()
      // The lock, held elsewhere.
      const holder = await admin()
      await holder.query(`SELECT GET_LOCK('prisma_migrate', 10)`)
      expect(await failure(deployMigrations({ url, migrations, lockTimeout: "1 second" }))).toMatchObject({ code: "P1002" })
      await holder.query(`SELECT RELEASE_LOCK('prisma_migrate')`)
      await holder.end()
      const both = await Promise.all([deployMigrations({ url, migrations }), deployMigrations({ url, migrations })])
      expect(both.map((r) => r.applied.length).sort()).toEqual([0, 1])
      const rows = await a.query(`SELECT migration_name, applied_steps_count, logs, finished_at IS NOT NULL AS done FROM ${name}._prisma_migrations ORDER BY migration_name`)
      expect(rows.map((r: Record<string, unknown>) => [r.migration_name, Number(r.applied_steps_count), r.logs, Number(r.done)])).toEqual([[INIT, 1, null, 1], [ROLES, 1, null, 1]])
      expect(await migrationStatus({ url, migrations })).toEqual({ applied: [INIT, ROLES], pending: [], failed: [], modified: [], missingLocally: [] })
    } finally {
      await a.query(`DROP DATABASE IF EXISTS ${name}`)
      await a.end()
    }
  })
})
