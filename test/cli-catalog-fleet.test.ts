// `--tenants catalog`: `flexidb migrate status|deploy` and `flexidb doctor` take the tenant fleet from a real tenant
// catalog on PostgreSQL — database tenants copied from a template, schema tenants built by the migrator, a suspended
// tenant skipped with the reason — the template kept current so that a new tenant is born current. Run in-process
// as the binary runs it; no URL is ever printed.
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openCatalog } from "../src/Catalog.js"
import type { Catalog } from "../src/Catalog.js"
import { fakeProject } from "./support/cli.js"
import { createDatabase, PG_HOST, uniqueName } from "./support/databases.js"
import type { TestDatabase } from "./support/databases.js"

const fixtures = join(import.meta.dirname, "fixtures", "migrations", "postgresql")
const INIT = "20260101000000_init"
const ROLES = "20260102000000_roles_and_publishing"
const pgServer = `postgresql://postgres@${PG_HOST}/postgres`
/** What the CLI is given for server main: a password (the server trusts, so it is ignored) that must never be printed. */
const mainServer = `postgresql://postgres:hunter2@${PG_HOST}/postgres`

const name = (tag: string) => uniqueName(tag).replace(/^flexidb_/, "cf_")
const admin = async () => {
  const c = new pg.Client({ connectionString: pgServer })
  await c.connect()
  return c
}

let catalogDb: TestDatabase
let schemaDb: TestDatabase
let catalog: Catalog
const template = name("tpl")
const databases: Array<string> = [template]
const scratch = mkdtempSync(join(tmpdir(), "flexidb-cli-catalog-fleet-"))
const p = fakeProject(7, { tenant: "postgresql" })
const tenants = { a: name("a"), b: name("b"), s1: name("s1"), s2: name("s2"), off: name("off"), late: name("late") }

/** A migrations folder with `names` of the fixture's migrations. */
const folder = (path: string, names: ReadonlyArray<string>) => {
  mkdirSync(path, { recursive: true })
  cpSync(join(fixtures, "migration_lock.toml"), join(path, "migration_lock.toml"))
  for (const n of names) cpSync(join(fixtures, n), join(path, n), { recursive: true })
  return path
}

beforeAll(async () => {
  ;[catalogDb, schemaDb] = await Promise.all([createDatabase("postgresql"), createDatabase("postgresql")])
  const a = await admin()
  await a.query(`CREATE DATABASE "${template}"`)
  await a.end()
  // The project: the tenants' schema, recorded as such, with both migrations; the catalog builds schema tenants
  // with the first only, so they have one pending.
  writeFileSync(join(p.root, "package.json"), JSON.stringify({ name: "app", private: true, type: "module", flexidb: { tenantSchema: "tenant", tenantMode: "database" } }))
  folder(join(p.root, "prisma", "migrations", "tenant"), [INIT, ROLES])
  catalog = await openCatalog({
    url: catalogDb.url,
    servers: { main: pgServer, shared: schemaDb.url },
    migrations: folder(join(scratch, "init-only"), [INIT])
  })
  databases.push(tenants.a, tenants.b, tenants.off, tenants.late)
  for (const t of [tenants.a, tenants.b, tenants.off]) await catalog.create(t, { server: "main", template })
  for (const t of [tenants.s1, tenants.s2]) await catalog.create(t, { server: "shared", kind: "schema" })
  await catalog.suspend(tenants.off)
}, 120_000)

afterAll(async () => {
  await catalog?.close().catch(() => undefined)
  const a = await admin()
  for (const d of databases) await a.query(`DROP DATABASE IF EXISTS "${d}" WITH (FORCE)`).catch(() => undefined)
  await a.end()
  await Promise.all([catalogDb?.drop(), schemaDb?.drop()])
  p.remove()
  rmSync(scratch, { recursive: true, force: true })
}, 60_000)

const env = () => ({
  FLEXIDB_CATALOG_URL: catalogDb.url,
  FLEXIDB_SERVER_MAIN: mainServer,
  FLEXIDB_SERVER_SHARED: schemaDb.url,
  FLEXIDB_TEMPLATE_MAIN: template
})

/** Runs the CLI; nothing it prints holds a URL. */
const flexidb = async (argv: ReadonlyArray<string>, e: Record<string, string> = env()) => {
  const r = await p.cli(argv, e)
  for (const printed of [r.out, r.err]) expect(printed).not.toMatch(/hunter2|\bpostgres(ql)?:\/\/(?!…)|postgres@|\bfile:/i)
  return r
}

interface Report {
  readonly ok: boolean
  readonly results: ReadonlyArray<{ tenant: string; outcome: string; pending?: Array<string>; applied?: Array<string>; reason?: string }>
}
const byTenant = (report: Report) => Object.fromEntries(report.results.map((r) => [r.tenant, r]))
const tpl = `${template}@main`

describe("migrate --tenants catalog", () => {
  it("status lists every tenant and the template, the suspended one skipped; deploy makes all current; a new tenant is born current", async () => {
    const status = await flexidb(["migrate", "status", "--tenants", "catalog", "--schema", "tenant", "--json"])
    expect(status.code).toBe(1)
    const before = byTenant(JSON.parse(status.out))
    expect(Object.keys(before).sort()).toEqual([tenants.a, tenants.b, tenants.off, tenants.s1, tenants.s2, tpl].sort())
    for (const t of [tenants.a, tenants.b, tpl]) expect(before[t]).toMatchObject({ outcome: "pending", pending: [INIT, ROLES] })
    for (const t of [tenants.s1, tenants.s2]) expect(before[t]).toMatchObject({ outcome: "pending", pending: [ROLES] })
    expect(before[tenants.off]).toMatchObject({ outcome: "skipped" })
    expect(before[tenants.off]!.reason).toMatch(/^suspended: .*flexidb tenants resume/)

    const deploy = await flexidb(["migrate", "deploy", "--tenants", "catalog", "--schema", "tenant"])
    expect(deploy.code).toBe(0)
    expect(deploy.out).toMatch(new RegExp(`^${tenants.off}\\s+skipped \\(suspended`, "m"))
    expect(deploy.out).toMatch(/: 6 tenants in .*: 5 applied, 1 skipped$/m)

    const after = await flexidb(["migrate", "status", "--tenants", "catalog", "--schema", "tenant", "--json"])
    expect(after.code).toBe(0)
    const current = byTenant(JSON.parse(after.out))
    for (const t of [tenants.a, tenants.b, tenants.s1, tenants.s2, tpl]) expect(current[t]!.outcome).toBe("up to date")
    expect(current[tenants.off]!.outcome).toBe("skipped")

    // --drift (fleetDrift) leaves the suspended tenant out, and says so on stderr (with --json: stdout only).
    const drift = await flexidb(["migrate", "status", "--tenants", "catalog", "--schema", "tenant", "--drift"])
    expect(drift.code).toBe(0)
    expect(drift.err).toContain(`${tenants.off}: skipped (suspended`)
    const driftJson = await flexidb(["migrate", "status", "--tenants", "catalog", "--schema", "tenant", "--drift", "--json"])
    expect(driftJson).toMatchObject({ code: 0, err: "" })
    expect(driftJson.out).not.toContain(tenants.off)

    // A copy of the deployed template has everything already.
    await catalog.create(tenants.late, { server: "main", template })
    const late = await flexidb(["migrate", "status", "--tenants", "catalog", "--schema", "tenant", "--tenant", tenants.late, "--json"])
    expect(late.code).toBe(0)
    expect(JSON.parse(late.out).results).toMatchObject([{ tenant: tenants.late, outcome: "up to date" }])
    // Resumed, the skipped tenant is migrated by the next deploy.
    await catalog.resume(tenants.off)
    const resumed = await flexidb(["migrate", "deploy", "--tenants", "catalog", "--schema", "tenant", "--json"])
    expect(resumed.code).toBe(0)
    expect(byTenant(JSON.parse(resumed.out))[tenants.off]).toMatchObject({ outcome: "applied", applied: [INIT, ROLES] })
    await catalog.suspend(tenants.off)
  }, 120_000)

  it("doctor --tenants catalog: every active tenant's migrations and a sample connection, the suspended one left out", async () => {
    const json = await flexidb(["doctor", "--json", "--tenants", "catalog"])
    const row = JSON.parse(json.out).results.find((r: { database: string }) => r.database === "tenant")
    expect(row.checks.url).toEqual({ status: "pass", detail: "6 tenants from catalog (1 suspended or moving, not checked)" })
    expect(row.checks.server.status).toBe("pass")
    expect(row.checks.migrations).toEqual({ status: "pass", detail: "up to date on 6 tenants (2 applied)" })
  }, 60_000)

  it("errors: no catalog is a usage error; a row whose server has no URL names the server and its variable", async () => {
    const none = await flexidb(["migrate", "status", "--tenants", "catalog", "--schema", "tenant"], { FLEXIDB_SERVER_MAIN: mainServer })
    expect(none.code).toBe(2)
    expect(none.err).toMatch(/--catalog .*FLEXIDB_CATALOG_URL/)
    const { FLEXIDB_SERVER_SHARED: _, ...withoutShared } = env()
    const missing = await flexidb(["migrate", "deploy", "--tenants", "catalog", "--schema", "tenant"], withoutShared)
    expect(missing.code).toBe(1)
    expect(missing.err).toContain(`2 tenants are on server 'shared', which has no URL: set FLEXIDB_SERVER_SHARED`)
    // --catalog on the command line does as the variable.
    const { FLEXIDB_CATALOG_URL: url, ...withoutCatalog } = env()
    const flag = await flexidb(["migrate", "status", "--tenants", "catalog", "--schema", "tenant", "--catalog", url], withoutCatalog)
    expect(flag.code).toBe(0)
  }, 60_000)
})
