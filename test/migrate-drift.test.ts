// fleetDrift on real PostgreSQL: schema tenants of one database and a database tenant, each compared with its applied
// migrations replayed on a scratch of its kind. Each planted difference is found, and nothing else; clean tenants
// are listed with no drift; the scratches are gone afterwards.
import { cpSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import Database from "better-sqlite3"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { deployMigrations, fleetDrift } from "../src/migrate.js"
import { PG_HOST, uniqueName } from "./support/databases.js"

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
    await expect(fleetDrift({ tenants: [{ name: "my", url: "mysql://root@127.0.0.1:3306/x" }], migrations })).rejects.toMatchObject({ code: "FLEXIDB_FLEET_DRIFT" })
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
