// The CLI over deployFleet and fleetDrift, in process: `migrate deploy --tenants … --waves/--verify/--bake/
// --max-failures/--allow-destructive` (guard refusal: exit 3, no tenant touched; a halt: exit 1) and
// `migrate status --tenants … --drift [--json]`, on real SQLite files and PostgreSQL databases.
import Database from "better-sqlite3"
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { afterAll, describe, expect, it, vi } from "vitest"
import { deployMigrations, migrationStatus } from "../src/migrate.js"
import { cli } from "./support/cli.js"
import { PG_HOST, uniqueName } from "./support/databases.js"

const fixtures = join(import.meta.dirname, "fixtures", "migrations")
const INIT = "20260101000000_init"
const ROLES = "20260102000000_roles_and_publishing"
const made: Array<string> = []
const dbs: Array<string> = []
const admin = async (sql: string) => {
  const c = new pg.Client({ connectionString: `postgresql://postgres@${PG_HOST}/postgres` })
  await c.connect()
  try {
    await c.query(sql)
  } finally {
    await c.end()
  }
}
afterAll(async () => {
  for (const d of dbs) await admin(`DROP DATABASE IF EXISTS "${d}" WITH (FORCE)`)
  made.forEach((d) => rmSync(d, { recursive: true, force: true }))
})

/** A project with one schema, `tenant`, its migrations folder (INIT and ROLES), and n tenants at INIT. */
const project = async (provider: "sqlite" | "postgresql", n: number) => {
  const root = mkdtempSync(join(tmpdir(), "flexidb-cli-waves-"))
  made.push(root)
  mkdirSync(join(root, "prisma", "schemas"), { recursive: true })
  writeFileSync(join(root, "prisma", "schemas", "tenant.prisma"), `datasource db {\n  provider = "${provider}"\n}\n\nmodel User {\n  id Int @id\n}\n`)
  const folder = join(root, "prisma", "migrations", "tenant")
  cpSync(join(fixtures, provider), folder, { recursive: true })
  const initOnly = join(root, "init")
  mkdirSync(initOnly)
  cpSync(join(folder, INIT), join(initOnly, INIT), { recursive: true })
  const tenants: Array<{ name: string; url: string }> = []
  for (let i = 0; i < n; i++) {
    let url: string
    if (provider === "sqlite") url = `file:${join(root, `t${i}.db`)}`
    else {
      const name = uniqueName("cliwaves")
      await admin(`CREATE DATABASE "${name}"`)
      dbs.push(name)
      url = `postgresql://postgres@${PG_HOST}/${name}`
    }
    await deployMigrations({ url, migrations: initOnly })
    tenants.push({ name: `t${i}`, url })
  }
  writeFileSync(join(root, "tenants.mjs"), `export default ${JSON.stringify(tenants)}\n`)
  const pending = async () => Promise.all(tenants.map(async (t) => (await migrationStatus({ url: t.url, migrations: folder })).pending.length))
  return { root, folder, tenants, pending, run: (argv: Array<string>) => cli(root, ["migrate", ...argv, "--tenants", "tenants.mjs", "--schema", "tenant"]) }
}

describe("migrate deploy --tenants in waves", () => {
  it("the guard refuses a destructive migration: exit 3, findings named, no tenant touched; --allow-destructive lets it through", async () => {
    const p = await project("sqlite", 3)
    mkdirSync(join(p.folder, "20260301000000_drop"))
    writeFileSync(join(p.folder, "20260301000000_drop", "migration.sql"), `-- 'DROP TABLE' in a comment is fine\nDROP TABLE "Post";\n`)
    const r = await p.run(["deploy", "--waves", "1,100%"])
    expect(r.code).toBe(3)
    expect(r.err).toContain("20260301000000_drop/migration.sql:2 drop-table (Post)")
    expect(r.err).toContain("--allow-destructive")
    expect(await p.pending()).toEqual([2, 2, 2])
    // A plain deploy --tenants is guarded too.
    const plain = await p.run(["deploy", "--concurrency", "2"])
    expect(plain.code).toBe(3)
    expect(plain.err).toContain("20260301000000_drop/migration.sql:2 drop-table (Post)")
    expect(await p.pending()).toEqual([2, 2, 2])
    // With Prisma (no --tenants, no --in-process) the flag is refused, not ignored.
    expect((await cli(p.root, ["migrate", "deploy", "--allow-destructive"])).code).not.toBe(0)
    const allowed = await p.run(["deploy", "--allow-destructive"])
    expect(allowed.code).toBe(0)
    expect(await p.pending()).toEqual([0, 0, 0])
  }, 60_000)

  it("a failure in the first wave halts: exit 1, the rest not attempted and untouched", async () => {
    const p = await project("sqlite", 5)
    const db = new Database(p.tenants[1]!.url.slice("file:".length))
    db.exec(`CREATE TABLE "new_User" (x INTEGER)`)
    db.close()
    const r = await p.run(["deploy", "--waves", "2,100%", "--bake", "10ms"])
    expect(r.code).toBe(1)
    expect(r.err).toContain("halted at wave 1")
    expect(r.out).toMatch(/t1 {2}wave 1 {2}failed: P3018/)
    expect(r.out).toMatch(/t4 {2}wave 2 {2}not-attempted/)
    // t1 has ROLES recorded as failed (not pending); t2–t4 were not touched.
    expect(await p.pending()).toEqual([0, 0, 1, 1, 1])
    expect((await migrationStatus({ url: p.tenants[1]!.url, migrations: p.folder })).failed).toEqual([ROLES])
  }, 60_000)

  it("--verify's module halts a wave it rejects; --json prints the result; usage errors exit 2", async () => {
    const p = await project("sqlite", 4)
    writeFileSync(join(p.root, "verify.mjs"), `export default async (tenant) => { if (tenant.name === "t1") throw new Error("t1 is sad") }\n`)
    const r = await p.run(["deploy", "--waves", "2,100%", "--verify", "verify.mjs", "--json"])
    expect(r.code).toBe(1)
    const result = JSON.parse(r.out)
    expect(result.halted).toEqual({ wave: 1, reason: expect.stringContaining("t1: FLEXIDB_FLEET_VERIFY t1 is sad") })
    expect(result.tenants.map((t: { status: string }) => t.status)).toEqual(["applied", "verify-failed", "not-attempted", "not-attempted"])
    expect((await p.run(["deploy", "--waves", "1,x"])).code).toBe(2)
    expect((await p.run(["deploy", "--bake", "soon"])).code).toBe(2)
    expect((await cli(p.root, ["migrate", "deploy", "--in-process", "--waves", "1"])).code).toBe(2)
  }, 60_000)
})

describe("migrate deploy --tenants --verify: the module's client", () => {
  it("is a SqlClient on the tenant: its queries see what the wave deployed; a failing one halts the wave", async () => {
    const p = await project("sqlite", 3)
    writeFileSync(join(p.root, "verify.mjs"), `export default async (tenant, client) => {
  await client.$executeRawUnsafe('INSERT INTO "User" ("email") VALUES (?)', tenant.name)
  const rows = await client.$queryRaw\`SELECT "role" FROM "User" WHERE "email" = \${tenant.name}\`
  if (rows.length !== 1 || rows[0].role !== "member") throw new Error("unexpected " + JSON.stringify(rows))
}\n`)
    const ok = await p.run(["deploy", "--waves", "1,100%", "--verify", "verify.mjs"])
    expect(ok.err).toBe("wave 1/2: 1 tenant(s)\nwave 2/2: 2 tenant(s)")
    expect(ok.code).toBe(0)
    expect(await p.pending()).toEqual([0, 0, 0])
    const q = await project("sqlite", 3)
    writeFileSync(join(q.root, "broken.mjs"), `export default async (tenant, client) => { await client.$queryRawUnsafe('SELECT * FROM "Missing"') }\n`)
    const r = await q.run(["deploy", "--waves", "1,100%", "--verify", "broken.mjs", "--json"])
    expect(r.code).toBe(1)
    expect(JSON.parse(r.out).halted).toEqual({ wave: 1, reason: expect.stringContaining("no such table: Missing") })
    expect(await q.pending()).toEqual([0, 1, 1])
  }, 60_000)
})

describe("migrate status --tenants --drift", () => {
  it("lists every tenant; a planted difference is found and exits 1", async () => {
    const p = await project("postgresql", 2)
    expect((await p.run(["deploy"])).code).toBe(0)
    const clean = await p.run(["status", "--drift", "--json"])
    expect(clean.code).toBe(0)
    expect(JSON.parse(clean.out)).toEqual({ tenants: [{ name: "t0", drift: [] }, { name: "t1", drift: [] }] })
    const c = new pg.Client({ connectionString: p.tenants[1]!.url })
    await c.connect()
    await c.query(`CREATE TABLE "Notes" (id INT)`)
    await c.end()
    const drifted = await p.run(["status", "--drift", "--json"])
    expect(drifted.code).toBe(1)
    expect(JSON.parse(drifted.out)).toEqual({
      tenants: [{ name: "t0", drift: [] }, { name: "t1", drift: [{ kind: "extra-table", table: "Notes", detail: expect.any(String) }] }]
    })
    const text = await p.run(["status", "--drift"])
    expect(text.out).toContain("t1  extra-table  Notes")
  }, 60_000)
})

describe("migrate status --tenants reads the fleet with fleetStatus", () => {
  it("24 schema tenants of one database: read over one connection, not one per tenant, as migrationStatus says", async () => {
    const root = mkdtempSync(join(tmpdir(), "flexidb-cli-status-"))
    made.push(root)
    mkdirSync(join(root, "prisma", "schemas"), { recursive: true })
    writeFileSync(join(root, "prisma", "schemas", "tenant.prisma"), `datasource db {\n  provider = "postgresql"\n}\n\nmodel User {\n  id Int @id\n}\n`)
    const folder = join(root, "prisma", "migrations", "tenant")
    cpSync(join(fixtures, "postgresql"), folder, { recursive: true })
    const initOnly = join(root, "init")
    mkdirSync(initOnly)
    cpSync(join(folder, INIT), join(initOnly, INIT), { recursive: true })
    const db = uniqueName("clistatus")
    const role = uniqueName("r")
    await admin(`CREATE DATABASE "${db}"`)
    dbs.push(db)
    try {
      // 24 schema tenants: s0–s9 current, s10–s19 at INIT, s20–s22 without a ledger (everything pending), s23 absent.
      const base = `postgresql://postgres@${PG_HOST}/${db}`
      for (let i = 0; i < 23; i++) {
        await deployMigrations({ url: `${base}?schema=s${i}`, migrations: i < 10 ? folder : initOnly })
      }
      const c = new pg.Client({ connectionString: base })
      await c.connect()
      await c.query(`DROP TABLE s20._prisma_migrations, s21._prisma_migrations, s22._prisma_migrations;
        DROP TABLE s20."Post", s20."User", s21."Post", s21."User", s22."Post", s22."User"`)
      await c.end()
      // A role that reads, for the CLI (its name never printed).
      await admin(`CREATE ROLE "${role}" LOGIN; GRANT pg_read_all_data TO "${role}"`)
      const url = (i: number) => `postgresql://${role}@${PG_HOST}/${db}?schema=s${i}`
      const tenants = Array.from({ length: 24 }, (_, i) => ({ name: `t${i}`, url: url(i) }))
      writeFileSync(join(root, "tenants.mjs"), `export default ${JSON.stringify(tenants)}\n`)
      // Every connection the CLI opens, counted (the migrator and fleetStatus both connect with pg.Client).
      const connects = vi.spyOn(pg.Client.prototype, "connect")
      const r = await cli(root, ["migrate", "status", "--tenants", "tenants.mjs", "--schema", "tenant", "--json", "--concurrency", "8"])
      expect(connects.mock.calls.length).toBe(1)
      connects.mockRestore()
      expect(r.code).toBe(1) // migrations to apply, as prisma migrate status
      const doc = JSON.parse(r.out)
      expect(doc.summary).toMatchObject({ upToDate: 10, pending: 14, failed: 0 })
      for (const [i, t] of tenants.entries()) {
        const expected = await migrationStatus({ url: `${base}?schema=s${i}`, migrations: folder })
        const got = doc.results[i]
        expect(got.tenant).toBe(t.name)
        expect(got.status).toMatchObject({ applied: expected.applied, pending: expected.pending, failed: [], modified: [] })
        expect(got.outcome).toBe(i < 10 ? "up to date" : "pending")
      }
      expect(r.out + r.err).not.toContain(role + "@")
      // The dry run reads the same way.
      const dry = await cli(root, ["migrate", "deploy", "--dry-run", "--tenants", "tenants.mjs", "--schema", "tenant", "--json", "--concurrency", "8"])
      expect(JSON.parse(dry.out).summary).toMatchObject({ upToDate: 10, pending: 14, failed: 0 })
    } finally {
      await admin(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`)
      await admin(`DROP ROLE IF EXISTS "${role}"`)
    }
  }, 120_000)
})
