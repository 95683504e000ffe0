// fleetDrift on real PostgreSQL (schema tenants of one database and a database tenant), SQLite and MariaDB, each compared with its applied
// migrations replayed on a scratch of its kind. Each planted difference is found, and nothing else; clean tenants
// are listed with no drift; the scratches are gone afterwards.
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import Database from "better-sqlite3"
import * as mariadb from "mariadb"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { deployFleet, deployMigrations, fleetDrift } from "../src/migrate.js"
import { MYSQL_HOST, PG_HOST, uniqueName } from "./support/databases.js"

const INIT = "20260101000000_init"
const dir = mkdtempSync(join(tmpdir(), "flexidb-drift-"))
const migrations = join(dir, "full")
const initOnly = join(dir, "init")
cpSync(join(import.meta.dirname, "fixtures", "migrations", "postgresql"), migrations, { recursive: true })
cpSync(join(migrations, INIT), join(initOnly, INIT), { recursive: true })
const schemasDb = uniqueName("drift_s")
const tenantDb = uniqueName("drift_d")
const base = `postgresql://postgres@${PG_HOST}`
const sql = async (db: string, text: string) => {
  const c = new pg.Client({ connectionString: `${base}/${db}` })
  await c.connect()
  try {
    return (await c.query(text)) as unknown as { rows: Array<any> }
  } finally {
    await c.end()
  }
}
const N = 40
const tenants = [
  ...Array.from({ length: N }, (_, i) => ({ name: `s${i}`, url: `${base}/${schemasDb}?schema=s${i}` })),
  { name: "db", url: `${base}/${tenantDb}` }
]

beforeAll(async () => {
  await sql("postgres", `CREATE DATABASE "${schemasDb}"`)
  await sql("postgres", `CREATE DATABASE "${tenantDb}"`)
  for (const t of tenants) await deployMigrations({ url: t.url, migrations: t.name === "s5" ? initOnly : migrations })
}, 120_000)

afterAll(async () => {
  await sql("postgres", `DROP DATABASE IF EXISTS "${schemasDb}" WITH (FORCE)`)
  await sql("postgres", `DROP DATABASE IF EXISTS "${tenantDb}" WITH (FORCE)`)
  rmSync(dir, { recursive: true, force: true })
})

describe("fleetDrift", () => {
  it("every tenant listed, clean ones with no drift (two applied sets, schema and database tenants)", async () => {
    const result = await fleetDrift({ tenants, migrations, batch: 16 })
    expect(result.tenants.map((t) => t.name)).toEqual(tenants.map((t) => t.name))
    expect(result.tenants.filter((t) => t.drift.length > 0)).toEqual([])
  })

  it("each planted difference is found, and nothing else", async () => {
    await sql(schemasDb, `CREATE INDEX "sneaky" ON s1."Post" ("title")`)
    await sql(schemasDb, `ALTER TABLE s2."Post" ALTER COLUMN "title" DROP NOT NULL`)
    await sql(schemasDb, `CREATE TABLE s3."Scratchpad" (id INT)`)
    await sql(schemasDb, `ALTER TABLE s4."User" ALTER COLUMN "role" SET DEFAULT 'admin'`)
    // s5 has only INIT applied: a column ROLES adds is extra there.
    await sql(schemasDb, `ALTER TABLE s5."User" ADD COLUMN "role" TEXT`)
    await sql(schemasDb, `ALTER TABLE s6."Post" DROP CONSTRAINT "Post_authorId_fkey"`)
    await sql(schemasDb, `ALTER TABLE s7."User" ALTER COLUMN "name" TYPE VARCHAR(40)`)
    await sql(tenantDb, `ALTER TABLE "Post" DROP COLUMN "published"`)
    const result = await fleetDrift({ tenants, migrations })
    const drifted = Object.fromEntries(result.tenants.filter((t) => t.drift.length > 0).map((t) => [t.name, t.drift.map((d) => [d.kind, d.table, d.column])]))
    expect(drifted).toEqual({
      s1: [["extra-index", "Post", undefined]],
      s2: [["column-nullability", "Post", "title"]],
      s3: [["extra-table", "Scratchpad", undefined]],
      s4: [["column-default", "User", "role"]],
      s5: [["extra-column", "User", "role"]],
      s6: [["missing-foreign-key", "Post", undefined]],
      s7: [["column-type", "User", "name"]],
      // The published column goes, and the index over it with it.
      db: [["missing-column", "Post", "published"], ["missing-index", "Post", undefined]]
    })
    expect(result.tenants.find((t) => t.name === "s7")!.drift[0]!.detail).toBe("expected text, found character varying(40)")
    expect(result.tenants.find((t) => t.name === "s1")!.drift[0]!.detail).toContain(`sneaky: CREATE INDEX sneaky ON "Post"`)
    // No scratch schema or database is left behind.
    expect((await sql(schemasDb, `SELECT count(*)::int AS n FROM pg_namespace WHERE nspname LIKE '\\_flexidb\\_drift\\_%'`)).rows[0].n).toBe(0)
    expect((await sql("postgres", `SELECT count(*)::int AS n FROM pg_database WHERE datname LIKE '\\_flexidb\\_drift\\_%'`)).rows[0].n).toBe(0)
  })

  it("refuses tenants it cannot check before doing anything", async () => {
    await expect(fleetDrift({ tenants: [{ name: "ms", url: "sqlserver://127.0.0.1:1433;database=x" }], migrations })).rejects.toMatchObject({ code: "FLEXIDB_FLEET_DRIFT" })
    await expect(fleetDrift({ tenants: [tenants[0]!, { name: "my", url: "mysql://root@127.0.0.1:3306/x" }], migrations }))
      .rejects.toMatchObject({ code: "FLEXIDB_FLEET_DRIFT", reason: expect.stringContaining("one kind") })
  })
})

describe("fleetDrift, SQLite", () => {
  it("clean files have no drift; each planted difference is found, and nothing else", async () => {
    const sqliteMigrations = join(import.meta.dirname, "fixtures", "migrations", "sqlite")
    const sqliteInit = join(dir, "sqlite-init")
    cpSync(join(sqliteMigrations, INIT), join(sqliteInit, INIT), { recursive: true })
    const files = Array.from({ length: 5 }, (_, i) => ({ name: `f${i}`, url: `file:${join(dir, `f${i}.db`)}` }))
    for (const f of files) await deployMigrations({ url: f.url, migrations: f.name === "f4" ? sqliteInit : sqliteMigrations })
    const clean = await fleetDrift({ tenants: files, migrations: sqliteMigrations })
    expect(clean.tenants).toEqual(files.map((f) => ({ name: f.name, drift: [] })))
    const exec = (url: string, text: string) => {
      const db = new Database(url.slice("file:".length))
      db.exec(text)
      db.close()
    }
    exec(files[0]!.url, `CREATE INDEX "sneaky" ON "Post" ("title")`)
    exec(files[1]!.url, `ALTER TABLE "User" ADD COLUMN "nickname" TEXT`)
    exec(files[2]!.url, `CREATE TABLE "Scratchpad" (id INTEGER)`)
    exec(files[3]!.url, `DROP INDEX "Post_authorId_published_idx"`)
    const result = await fleetDrift({ tenants: files, migrations: sqliteMigrations })
    expect(Object.fromEntries(result.tenants.map((t) => [t.name, t.drift.map((d) => [d.kind, d.table, d.column])]))).toEqual({
      f0: [["extra-index", "Post", undefined]],
      f1: [["extra-column", "User", "nickname"]],
      f2: [["extra-table", "Scratchpad", undefined]],
      f3: [["missing-index", "Post", undefined]],
      f4: []
    })
  })
})

describe("fleetDrift, MariaDB", () => {
  it("database tenants of one server: clean ones have no drift; each planted difference is found, and nothing else; no scratch left", async () => {
    // The fixture's two migrations and a third that renames an index (Prisma's RENAME INDEX: the guard lets it pass).
    const full = join(dir, "mysql-full")
    cpSync(join(import.meta.dirname, "fixtures", "migrations", "mysql"), full, { recursive: true })
    mkdirSync(join(full, "20260103000000_rename_index"))
    writeFileSync(join(full, "20260103000000_rename_index", "migration.sql"),
      "-- RenameIndex\nALTER TABLE `Post` RENAME INDEX `Post_authorId_published_idx` TO `Post_author_published_idx`;\n")
    const init = join(dir, "mysql-init")
    cpSync(join(full, INIT), join(init, INIT), { recursive: true })
    const admin = await mariadb.createConnection({ host: "127.0.0.1", port: 3306, user: "root" })
    const names = Array.from({ length: 6 }, () => uniqueName("dm"))
    try {
      for (const n of names) await admin.query(`CREATE DATABASE \`${n}\``)
      const fleet = names.map((n, i) => ({ name: `m${i}`, url: `mysql://root@${MYSQL_HOST}/${n}` }))
      for (const t of fleet) await deployMigrations({ url: t.url, migrations: init })
      // m5 stays at INIT: a second applied set.
      // Names of this run's own for deployFleet: its fleet lock (GET_LOCK) is keyed by the names, server-wide.
      const deployed = await deployFleet({ tenants: fleet.slice(0, 5).map((t) => ({ ...t, name: `${t.name}_${names[0]}` })), migrations: full })
      expect(deployed.tenants.map((t) => t.applied.length)).toEqual([2, 2, 2, 2, 2])
      const clean = await fleetDrift({ tenants: fleet, migrations: full })
      expect(clean.tenants).toEqual(fleet.map((t) => ({ name: t.name, drift: [] })))
      await admin.query(`CREATE INDEX sneaky ON \`${names[0]}\`.Post (title)`)
      await admin.query(`ALTER TABLE \`${names[1]}\`.User ADD COLUMN nickname VARCHAR(20) NULL`)
      await admin.query(`CREATE TABLE \`${names[2]}\`.Scratchpad (id INT)`)
      await admin.query(`ALTER TABLE \`${names[3]}\`.Post MODIFY title VARCHAR(100) NOT NULL`)
      await admin.query(`ALTER TABLE \`${names[4]}\`.Post DROP FOREIGN KEY Post_authorId_fkey`)
      await admin.query(`ALTER TABLE \`${names[5]}\`.User ALTER COLUMN name SET DEFAULT 'anon'`)
      const result = await fleetDrift({ tenants: fleet, migrations: full })
      expect(Object.fromEntries(result.tenants.map((t) => [t.name, t.drift.map((d) => [d.kind, d.table, d.column])]))).toEqual({
        m0: [["extra-index", "Post", undefined]],
        m1: [["extra-column", "User", "nickname"]],
        m2: [["extra-table", "Scratchpad", undefined]],
        m3: [["column-type", "Post", "title"]],
        m4: [["missing-foreign-key", "Post", undefined]],
        m5: [["column-default", "User", "name"]]
      })
      expect(result.tenants[3]!.drift[0]!.detail).toBe("expected varchar(191), found varchar(100)")
      expect(await admin.query(`SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '\\_flexidb\\_drift\\_%'`)).toEqual([])
    } finally {
      for (const n of names) await admin.query(`DROP DATABASE IF EXISTS \`${n}\``)
      await admin.end()
    }
  }, 120_000)
})
