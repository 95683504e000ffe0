// fleetStatus on real PostgreSQL: a few hundred schema tenants of one database read in batches over one connection,
// each answer exactly what migrationStatus says for that tenant; database tenants and SQLite files in the same call.
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { deployMigrations, fleetStatus, migrationStatus } from "../src/migrate.js"
import { PG_HOST, uniqueName } from "./support/databases.js"

const INIT = "20260101000000_init"
const ROLES = "20260102000000_roles_and_publishing"
const dir = mkdtempSync(join(tmpdir(), "flexidb-fleet-status-"))
const migrations = join(dir, "postgresql")
cpSync(join(import.meta.dirname, "fixtures", "migrations", "postgresql"), migrations, { recursive: true })
const name = uniqueName("fleetstatus")
const url = `postgresql://postgres@${PG_HOST}/${name}`
const N = 300

const admin = async (sql: string) => {
  const a = new pg.Client({ connectionString: `postgresql://postgres@${PG_HOST}/postgres` })
  await a.connect()
  try {
    await a.query(sql)
  } finally {
    await a.end()
  }
}
const run = async (sql: string) => {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    await c.query(sql)
  } finally {
    await c.end()
  }
}

beforeAll(async () => {
  await admin(`CREATE DATABASE "${name}"`)
  await deployMigrations({ url: `${url}?schema=s0`, migrations })
  // Every kind of ledger, copied from s0's: current, one pending, no table at all, failed, modified, rolled back,
  // one recorded migration the folder lacks.
  const sql: Array<string> = []
  for (let i = 1; i < N; i++) {
    const s = `s${i}`
    sql.push(`CREATE SCHEMA ${s}`)
    if (i % 10 === 1) continue // no _prisma_migrations: everything pending
    if (i % 10 === 7) {
      sql.push(`CREATE TABLE ${s}."Legacy" (id INT)`) // tables and no _prisma_migrations: to baseline
      continue
    }
    sql.push(`CREATE TABLE ${s}._prisma_migrations AS SELECT * FROM s0._prisma_migrations`)
    if (i % 10 === 2) sql.push(`DELETE FROM ${s}._prisma_migrations WHERE migration_name = '${ROLES}'`)
    if (i % 10 === 3) sql.push(`UPDATE ${s}._prisma_migrations SET finished_at = NULL WHERE migration_name = '${ROLES}'`)
    if (i % 10 === 4) sql.push(`UPDATE ${s}._prisma_migrations SET checksum = repeat('0', 64) WHERE migration_name = '${INIT}'`)
    if (i % 10 === 5) sql.push(`UPDATE ${s}._prisma_migrations SET rolled_back_at = now(), finished_at = NULL WHERE migration_name = '${ROLES}'`)
    if (i % 10 === 6) sql.push(`INSERT INTO ${s}._prisma_migrations (id, checksum, migration_name, started_at, finished_at, applied_steps_count) VALUES ('x${i}', repeat('a', 64), '20250101000000_gone', now(), now(), 1)`)
  }
  await run(sql.join(";\n"))
}, 120_000)

afterAll(async () => {
  await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
  rmSync(dir, { recursive: true, force: true })
})

const tenants = Array.from({ length: N }, (_, i) => ({ name: `tenant-${i}`, url: `${url}?schema=s${i}` }))

describe("fleetStatus", () => {
  it(`${N} schema tenants: each exactly as migrationStatus says, in the fleet's order, in batches`, async () => {
    const started = performance.now()
    const fleet = await fleetStatus({ tenants, migrations, batch: 64 })
    const ms = performance.now() - started
    console.log(`fleetStatus: ${N} schema tenants in ${ms.toFixed(0)} ms`)
    expect(fleet.map((t) => t.name)).toEqual(tenants.map((t) => t.name))
    const one: Array<Awaited<ReturnType<typeof migrationStatus>>> = []
    for (let i = 0; i < N; i += 8) one.push(...await Promise.all(tenants.slice(i, i + 8).map((t) => migrationStatus({ url: t.url, migrations }))))
    // needsBaseline aside (migrationStatus may not say it), each is migrationStatus's answer.
    const strip = ({ needsBaseline: _, ...rest }: { readonly name: string; readonly needsBaseline?: boolean | undefined }) => rest
    expect(fleet.map(strip)).toEqual(tenants.map((t, i) => strip({ name: t.name, ...one[i] })))
    expect(fleet.filter((t) => t.needsBaseline === true).map((t) => t.name)).toEqual(tenants.filter((_, i) => i % 10 === 7).map((t) => t.name))
    // The kinds are all there (the fixture is what it claims).
    expect(fleet[0]).toEqual({ name: "tenant-0", applied: [INIT, ROLES], pending: [], failed: [], modified: [], missingLocally: [] })
    expect(fleet[1]!.pending).toEqual([INIT, ROLES])
    expect(fleet[2]!.pending).toEqual([ROLES])
    expect(fleet[3]!.failed).toEqual([ROLES])
    expect(fleet[4]!.modified).toEqual([INIT])
    expect(fleet[5]!.pending).toEqual([ROLES])
    expect(fleet[6]!.missingLocally).toEqual(["20250101000000_gone"])
    expect(fleet[7]).toEqual({ name: "tenant-7", applied: [], pending: [INIT, ROLES], failed: [], modified: [], missingLocally: [], needsBaseline: true })
  })

  it("one connection for the schema tenants of a database: a role allowed a single connection reads them all", async () => {
    const role = `flexidb_fs_${process.pid}_${Date.now().toString(36)}`
    await run(`CREATE ROLE ${role} LOGIN CONNECTION LIMIT 1; GRANT CONNECT ON DATABASE "${name}" TO ${role}; ` +
      Array.from({ length: N }, (_, i) => `GRANT USAGE ON SCHEMA s${i} TO ${role}; GRANT SELECT ON ALL TABLES IN SCHEMA s${i} TO ${role};`).join(" "))
    try {
      const limited = tenants.map((t) => ({ ...t, url: t.url.replace("postgres@", `${role}@`) }))
      const out = await fleetStatus({ tenants: limited, migrations, batch: 10, concurrency: 8 })
      expect(out).toEqual(await fleetStatus({ tenants, migrations }))
      // The same role refuses a second connection at once: one connection per tenant would have failed.
      const a = new pg.Client({ connectionString: limited[0]!.url.replace(/\?.*$/, "") })
      const b = new pg.Client({ connectionString: limited[0]!.url.replace(/\?.*$/, "") })
      await a.connect()
      await expect(b.connect()).rejects.toThrow(/too many connections/)
      await a.end()
    } finally {
      await run(`REASSIGN OWNED BY ${role} TO postgres; DROP OWNED BY ${role}; DROP ROLE ${role}`)
    }
  })

  it("database tenants and SQLite files beside schema tenants, from an async iterable", async () => {
    const file = join(dir, "t.db")
    await deployMigrations({ url: `file:${file}`, migrations: join(import.meta.dirname, "fixtures", "migrations", "sqlite") })
    writeFileSync(join(dir, "x"), "")
    async function* fleet() {
      yield { name: "db", url }
      yield tenants[2]!
    }
    const out = await fleetStatus({ tenants: fleet(), migrations })
    expect(out).toEqual([
      { name: "db", ...(await migrationStatus({ url, migrations })) },
      { name: tenants[2]!.name, applied: [INIT], pending: [ROLES], failed: [], modified: [], missingLocally: [] }
    ])
    const sqlite = await fleetStatus({ tenants: [{ name: "file", url: `file:${file}` }], migrations: join(import.meta.dirname, "fixtures", "migrations", "sqlite") })
    expect(sqlite).toEqual([{ name: "file", applied: [INIT, ROLES], pending: [], failed: [], modified: [], missingLocally: [] }])
  })
})
