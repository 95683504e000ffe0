// deployFleet on real SQLite files and real PostgreSQL schema tenants: waves halt on a deploy failure and on a verify
// failure without touching any tenant after the failed wave, a re-run resumes, the guard refuses before anything runs,
// and bake waits on Effect's clock (TestClock here).
import Database from "better-sqlite3"
import * as mariadb from "mariadb"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import * as TestContext from "effect/TestContext"
import { cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import pg from "pg"
import { afterAll, describe, expect, it, vi } from "vitest"
import { deployFleet, deployFleetEffect, deployMigrations, DestructiveMigrationError, migrationStatus, resolveMigration } from "../src/migrate.js"
import type { FleetProgress } from "../src/migrate.js"
import { takeFleetLock } from "../src/migrate/fleetLock.js"
import { MYSQL_HOST, PG_HOST, uniqueName } from "./support/databases.js"
import { scratch } from "./support/prisma6.js"

const fixtures = join(import.meta.dirname, "fixtures", "migrations")
const INIT = "20260101000000_init"
const ROLES = "20260102000000_roles_and_publishing"
const dir = scratch()
const dropped: Array<() => Promise<void>> = []
afterAll(async () => {
  for (const d of dropped) await d()
  rmSync(dir, { recursive: true, force: true })
})

/** A copy of a provider's folder with only the first migration, and the full one. */
const folders = (provider: string) => {
  const base = join(dir, uniqueName("f"))
  const full = join(base, "full")
  cpSync(join(fixtures, provider), full, { recursive: true })
  const initOnly = join(base, "init")
  mkdirSync(initOnly, { recursive: true })
  cpSync(join(full, INIT), join(initOnly, INIT), { recursive: true })
  cpSync(join(full, "migration_lock.toml"), join(initOnly, "migration_lock.toml"))
  return { full, initOnly }
}

/** n SQLite tenants at INIT. */
const sqliteFleet = async (n: number, initOnly: string) => {
  const d = join(dir, uniqueName("fleet"))
  mkdirSync(d)
  const tenants = Array.from({ length: n }, (_, i) => ({ name: `t${String(i).padStart(3, "0")}`, url: `file:${join(d, `t${i}.db`)}` }))
  for (const t of tenants) await deployMigrations({ url: t.url, migrations: initOnly })
  return tenants
}
const sqlite = (url: string, sql: string) => {
  const db = new Database(url.slice("file:".length))
  db.exec(sql)
  db.close()
}

/** n PostgreSQL schema tenants of one new database, at INIT. */
const pgFleet = async (n: number, initOnly: string) => {
  const name = uniqueName("waves")
  const admin = new pg.Client({ connectionString: `postgresql://postgres@${PG_HOST}/postgres` })
  await admin.connect()
  await admin.query(`CREATE DATABASE "${name}"`)
  await admin.end()
  dropped.push(async () => {
    const a = new pg.Client({ connectionString: `postgresql://postgres@${PG_HOST}/postgres` })
    await a.connect()
    await a.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
    await a.end()
  })
  const url = `postgresql://postgres@${PG_HOST}/${name}`
  const tenants = Array.from({ length: n }, (_, i) => ({ name: `s${i}`, url: `${url}?schema=s${i}` }))
  for (const t of tenants) await deployMigrations({ url: t.url, migrations: initOnly })
  const query = async (sql: string) => {
    const c = new pg.Client({ connectionString: url })
    await c.connect()
    try {
      return (await c.query(sql)).rows
    } finally {
      await c.end()
    }
  }
  return { tenants, query }
}

const pendingOf = async (tenants: ReadonlyArray<{ url: string }>, migrations: string) =>
  Promise.all(tenants.map(async (t) => (await migrationStatus({ url: t.url, migrations })).pending))

describe("deployFleet", () => {
  it("SQLite: a migration failing on the 3rd tenant of 1,000 with waves [10, '100%'] touches 10 tenants at most, then a re-run resumes", async () => {
    const { full, initOnly } = folders("sqlite")
    const tenants = await sqliteFleet(1000, initOnly)
    // The 3rd tenant has a table in the way of the migration's redefinition.
    sqlite(tenants[2]!.url, `CREATE TABLE "new_User" (x INTEGER)`)
    const events: Array<FleetProgress> = []
    const result = await deployFleet({ tenants, migrations: full, waves: [10, "100%"], onProgress: (e) => events.push(e) })
    expect(result.halted).toEqual({ wave: 1, reason: expect.stringContaining("t002: P3018") })
    expect(result.tenants.map((t) => t.status)).toEqual([
      "applied", "applied", "failed", ...Array(7).fill("applied"), ...Array(990).fill("not-attempted")
    ])
    expect(result.tenants[2]).toMatchObject({ name: "t002", wave: 1, applied: [], error: { code: "P3018", migration: ROLES } })
    expect(result.tenants[0]).toEqual({ name: "t000", status: "applied", applied: [ROLES], wave: 1 })
    expect(result.tenants[10]).toEqual({ name: "t010", status: "not-attempted", applied: [], wave: 2 })
    // Untouched, as the result says: everything after the first wave still has ROLES pending.
    expect((await pendingOf(tenants.slice(10), full)).every((p) => p.length === 1 && p[0] === ROLES)).toBe(true)
    expect(events.filter((e) => e.kind === "wave")).toEqual([{ kind: "wave", wave: 1, waves: 2, tenants: 10 }])

    // Fixed by hand, resolved, re-run: the first wave finishes (its current tenants skipped), then the rest.
    sqlite(tenants[2]!.url, `DROP TABLE "new_User"`)
    await resolveMigration({ url: tenants[2]!.url, migrations: full, rolledBack: ROLES })
    const again = await deployFleet({ tenants, migrations: full, waves: [10, "100%"] })
    expect(again.halted).toBeUndefined()
    expect(again.tenants.map((t) => t.status)).toEqual([
      "current", "current", "applied", ...Array(7).fill("current"), ...Array(990).fill("applied")
    ])
    expect((await pendingOf(tenants, full)).every((p) => p.length === 0)).toBe(true)
    // A third run finds nothing to do.
    expect((await deployFleet({ tenants, migrations: full, waves: [10, "100%"] })).tenants.every((t) => t.status === "current")).toBe(true)
  }, 180_000)

  it("PostgreSQL schema tenants: a verify failure halts its wave; the re-run verifies that wave again, then goes on", async () => {
    const { full, initOnly } = folders("postgresql")
    const { tenants, query } = await pgFleet(12, initOnly)
    const verified: Array<string> = []
    const verify = async (tenant: { name: string; url: string }) => {
      verified.push(tenant.name)
      // The app's smoke check: the new column is there, and s3 is "broken".
      const schema = new URL(tenant.url).searchParams.get("schema")!
      const rows = await query(`SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = '${schema}' AND table_name = 'User' AND column_name = 'role'`)
      if (rows[0].n !== 1) throw new Error("no role column")
      if (tenant.name === "s3" && broken) throw new Error("s3 answers 500")
    }
    let broken = true
    const result = await deployFleet({ tenants, migrations: full, waves: [1, 5, "100%"], verify, concurrency: 4 })
    expect(result.halted).toEqual({ wave: 2, reason: expect.stringContaining("s3: FLEXIDB_FLEET_VERIFY s3 answers 500") })
    expect(result.tenants.map((t) => t.status)).toEqual([
      "applied", "applied", "applied", "verify-failed", "applied", ...Array(7).fill("not-attempted")
    ])
    expect(verified.sort()).toEqual(["s0", "s1", "s2", "s3", "s4"])
    expect((await pendingOf(tenants.slice(5), full)).every((p) => p.length === 1)).toBe(true)

    // Still broken: the re-run verifies wave 2 again and halts there again, touching nothing after it.
    verified.length = 0
    const still = await deployFleet({ tenants, migrations: full, waves: [1, 5, "100%"], verify })
    expect(still.halted?.wave).toBe(2)
    expect(verified.sort()).toEqual(["s1", "s2", "s3", "s4"])
    expect((await pendingOf(tenants.slice(5), full)).every((p) => p.length === 1)).toBe(true)

    broken = false
    verified.length = 0
    const resumed = await deployFleet({ tenants, migrations: full, waves: [1, 5, "100%"], verify })
    expect(resumed.halted).toBeUndefined()
    expect(resumed.tenants.map((t) => t.status)).toEqual([...Array(5).fill("current"), ...Array(7).fill("applied")])
    // Wave 1 was complete and is not verified again; wave 2 is, then wave 3 deployed and verified.
    expect(verified.sort()).toEqual(["s1", "s10", "s11", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9"])
  })

  it("PostgreSQL: a deploy failure in the first wave of [1, '100%'] touches one tenant; maxFailures lets a wave through", async () => {
    const { full, initOnly } = folders("postgresql")
    const { tenants, query } = await pgFleet(6, initOnly)
    await query(`ALTER TABLE "s0"."User" ADD COLUMN "role" TEXT`)
    const halted = await deployFleet({ tenants, migrations: full, waves: [1, "100%"] })
    expect(halted.halted?.wave).toBe(1)
    expect(halted.tenants.map((t) => t.status)).toEqual(["failed", ...Array(5).fill("not-attempted")])
    expect((await pendingOf(tenants.slice(1), full)).every((p) => p.length === 1)).toBe(true)
    // Resolved by hand as applied (the column is there); a second tenant breaks, and one failure is allowed.
    await resolveMigration({ url: tenants[0]!.url, migrations: full, applied: ROLES })
    await query(`ALTER TABLE "s3"."User" ADD COLUMN "role" TEXT`)
    const tolerated = await deployFleet({ tenants, migrations: full, waves: [1, "100%"], maxFailures: 1 })
    expect(tolerated.halted).toBeUndefined()
    expect(tolerated.tenants.map((t) => t.status)).toEqual(["current", "applied", "applied", "failed", "applied", "applied"])
  })

  it("the guard refuses destructive pending migrations before any tenant is touched; allowDestructive lets them through", async () => {
    const { full, initOnly } = folders("sqlite")
    const tenants = await sqliteFleet(3, initOnly)
    mkdirSync(join(full, "20260301000000_drop_posts"))
    writeFileSync(join(full, "20260301000000_drop_posts", "migration.sql"), `-- no longer used\nDROP TABLE "Post";\n`)
    const refused = await deployFleet({ tenants, migrations: full }).then(() => undefined, (e: unknown) => e)
    expect(refused).toBeInstanceOf(DestructiveMigrationError)
    const e = refused as DestructiveMigrationError
    expect(e.code).toBe("FLEXIDB_MIGRATION_DESTRUCTIVE")
    expect(e.findings.map((f) => [f.file, f.line, f.kind])).toEqual([["20260301000000_drop_posts/migration.sql", 2, "drop-table"]])
    expect(e.message).toContain("allowDestructive")
    expect((await pendingOf(tenants, full)).every((p) => p.length === 2)).toBe(true)
    const allowed = await deployFleet({ tenants, migrations: full, allowDestructive: true })
    expect(allowed.tenants.map((t) => t.applied)).toEqual(Array(3).fill([ROLES, "20260301000000_drop_posts"]))
  })

  it("bake waits on Effect's clock between waves (TestClock): the second wave starts only once it has passed", async () => {
    const { full, initOnly } = folders("sqlite")
    const tenants = await sqliteFleet(3, initOnly)
    let baking!: () => void
    const bakeStarted = new Promise<void>((resolve) => (baking = resolve))
    await Effect.runPromise(Effect.gen(function*() {
      const fiber = yield* Effect.fork(deployFleetEffect({
        tenants,
        migrations: full,
        waves: [1, "100%"],
        bake: "30 minutes",
        onProgress: (e) => e.kind === "bake" && baking()
      }))
      yield* Effect.promise(() => bakeStarted)
      yield* TestClock.adjust("29 minutes")
      // Still baking: the rest of the fleet is untouched.
      expect(yield* Effect.promise(() => pendingOf(tenants, full))).toEqual([[], [ROLES], [ROLES]])
      yield* TestClock.adjust("1 minute")
      const result = yield* Fiber.join(fiber)
      expect(result.tenants.map((t) => t.status)).toEqual(["applied", "applied", "applied"])
    }).pipe(Effect.provide(TestContext.TestContext)))
  })

  it("waves are checked: cumulative, counts or shares", async () => {
    const { full, initOnly } = folders("sqlite")
    const tenants = await sqliteFleet(1, initOnly)
    await expect(deployFleet({ tenants, migrations: full, waves: [5, 2] })).rejects.toMatchObject({ code: "FLEXIDB_MIGRATION_OPTIONS" })
    await expect(deployFleet({ tenants, migrations: full, waves: ["150%"] })).rejects.toMatchObject({ code: "FLEXIDB_MIGRATION_OPTIONS" })
  })
})

describe("deployFleet over the schema tenants of one database", () => {
  it("deploys them over one connection, not one per tenant; each as deployMigrations would", async () => {
    const { full, initOnly } = folders("postgresql")
    const { tenants } = await pgFleet(12, initOnly)
    const connects = vi.spyOn(pg.Client.prototype, "connect")
    try {
      const result = await deployFleet({ tenants, migrations: full, waves: [2, "100%"] })
      expect(result.tenants.map((t) => [t.status, t.applied])).toEqual(Array(12).fill(["applied", [ROLES]]))
      // The fleet lock's, fleetStatus's, and one per wave for its schemas (12 before: one per tenant, and those).
      expect(connects.mock.calls.length).toBeLessThanOrEqual(4)
    } finally {
      connects.mockRestore()
    }
    expect(await pendingOf(tenants, full)).toEqual(Array(12).fill([]))
  })
})

describe("deployFleet's verify without a client factory: a SqlClient on the tenant", () => {
  it("PostgreSQL schema tenants: unqualified names are the tenant's schema; it sees what the wave deployed", async () => {
    const { full, initOnly } = folders("postgresql")
    const { tenants, query } = await pgFleet(2, initOnly)
    await query(`INSERT INTO s1."User" ("email") VALUES ('a@x'), ('b@x')`)
    const seen: Array<unknown> = []
    const result = await deployFleet({
      tenants,
      migrations: full,
      verify: async (tenant, client) => {
        // ROLES added "role" (default 'member'): the query fails unless it ran in this tenant's schema.
        const rows = await client.$queryRaw<{ n: number; roles: Array<string> | null }>`
          SELECT count(*)::int AS n, array_agg(DISTINCT "role") AS roles FROM "User" WHERE "id" > ${0}`
        seen.push([tenant.name, rows[0]])
        expect(await client.$executeRawUnsafe(`UPDATE "User" SET "name" = $1`, "checked")).toBe(rows[0]!.n)
      }
    })
    expect(result.tenants.map((t) => t.status)).toEqual(["applied", "applied"])
    expect(seen).toEqual([["s0", { n: 0, roles: null }], ["s1", { n: 2, roles: ["member"] }]])
    expect(await query(`SELECT count(*)::int AS n FROM s1."User" WHERE "name" = 'checked'`)).toEqual([{ n: 2 }])
  })

  it("SQLite: raw SQL through it; a failing query is a verify failure that halts the wave", async () => {
    const { full, initOnly } = folders("sqlite")
    const tenants = await sqliteFleet(3, initOnly)
    const result = await deployFleet({
      tenants,
      migrations: full,
      waves: [2, "100%"],
      verify: async (tenant, client) => {
        await client.$executeRawUnsafe(`INSERT INTO "User" ("email") VALUES (?)`, `${tenant.name}@x`)
        const [row] = await client.$queryRawUnsafe<{ role: string }>(`SELECT "role" FROM "User" WHERE "email" = ?`, `${tenant.name}@x`)
        expect(row).toEqual({ role: "member" })
        if (tenant.name === "t001") await client.$queryRawUnsafe(`SELECT * FROM "NoSuchTable"`)
      }
    })
    expect(result.tenants.map((t) => t.status)).toEqual(["applied", "verify-failed", "not-attempted"])
    expect(result.tenants[1]!.error).toMatchObject({ code: "FLEXIDB_FLEET_VERIFY", reason: expect.stringContaining("NoSuchTable") })
  })
})

describe("deployFleet on MariaDB", () => {
  it("a fleet of databases of one server, in waves; the fleet lock refuses a second run at once, naming the holder", async () => {
    const { full, initOnly } = folders("mysql")
    const admin = await mariadb.createConnection({ host: "127.0.0.1", port: 3306, user: "root" })
    const names = Array.from({ length: 3 }, () => uniqueName("wv"))
    try {
      for (const n of names) await admin.query(`CREATE DATABASE \`${n}\``)
      // Names of this run's own: the fleet lock (GET_LOCK) is keyed by the names, server-wide, and other runs share the server.
      const tenants = names.map((n, i) => ({ name: `m${i}_${names[0]}`, url: `mysql://root@${MYSQL_HOST}/${n}` }))
      for (const t of tenants) await deployMigrations({ url: t.url, migrations: initOnly })
      const held = await Effect.runPromise(takeFleetLock(tenants, undefined))
      const refused = await Effect.runPromise(Effect.flip(takeFleetLock(tenants, undefined)))
      expect(refused.code).toBe("FLEXIDB_FLEET_LOCKED")
      expect(refused.reason).toMatch(/another fleet deploy of these tenants is running: connection \d+ from /)
      await held.release()
      const roles: Array<unknown> = []
      const result = await deployFleet({
        tenants,
        migrations: full,
        waves: [1, "100%"],
        // No client factory: a SqlClient on the tenant's database.
        verify: async (_, client) => {
          roles.push((await client.$queryRaw<{ d: string }>`SELECT COLUMN_DEFAULT AS d FROM information_schema.COLUMNS
            WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ${"User"} AND COLUMN_NAME = ${"role"}`)[0]?.d)
        }
      })
      expect(result.tenants.map((t) => [t.status, t.applied])).toEqual(Array(3).fill(["applied", [ROLES]]))
      expect(roles).toEqual(Array(3).fill("'member'"))
    } finally {
      for (const n of names) await admin.query(`DROP DATABASE IF EXISTS \`${n}\``)
      await admin.end()
    }
  })
})
