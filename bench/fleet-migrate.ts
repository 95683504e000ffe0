// npm run bench:fleet -- --tenants N: PostgreSQL schema tenants of one database (default 10,000; `--tenants 300` for a
// short run). Measures, against the targets: fleetStatus with nothing to migrate (≤ 10 s at 10,000),
// deployFleet with nothing to migrate (≤ 15 s), deployFleet of one additive migration over every tenant (≤ 10 min; the
// per-tenant cost × N, from deployMigrations one tenant at a time on a sample, is the figure to beat), and
// fleetDrift over the fleet when it exists. Prints one JSON line; drops its database.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { deployFleet, deployMigrations, fleetDrift, fleetStatus } from "../src/migrate.js"

const arg = (flag: string) => {
  const i = process.argv.indexOf(flag)
  return i === -1 ? undefined : process.argv[i + 1]
}
const N = Number(arg("--tenants") ?? 10_000)
const HOST = process.env.PG_HOST ?? "127.0.0.1:5432"
const INIT = "20260101000000_init"
const fixtures = join(import.meta.dirname, "..", "test", "fixtures", "migrations", "postgresql")
const dir = mkdtempSync(join(tmpdir(), "flexidb-bench-fleet-"))
const initOnly = join(dir, "init")
mkdirSync(initOnly)
cpSync(join(fixtures, INIT), join(initOnly, INIT), { recursive: true })
cpSync(join(fixtures, "migration_lock.toml"), join(initOnly, "migration_lock.toml"))
const name = `flexidb_bench_fleet_${process.pid}`
const url = `postgresql://postgres@${HOST}/${name}`
const admin = async (sql: string) => {
  const a = new pg.Client({ connectionString: `postgresql://postgres@${HOST}/postgres` })
  await a.connect()
  await a.query(sql)
  await a.end()
}
const time = async <A>(f: () => Promise<A>): Promise<[A, number]> => {
  const t = performance.now()
  const a = await f()
  return [a, (performance.now() - t) / 1000]
}

await admin(`CREATE DATABASE "${name}"`)
try {
  // s0 by deployMigrations; the others in bulk: INIT's own SQL in each schema, s0's ledger copied. A fleet at INIT.
  const initSql = readFileSync(join(initOnly, INIT, "migration.sql"), "utf8")
  await deployMigrations({ url: `${url}?schema=s0`, migrations: initOnly })
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  for (let i = 1; i < N; i += 200) {
    const sql: Array<string> = []
    for (let k = i; k < Math.min(i + 200, N); k++) {
      sql.push(`CREATE SCHEMA s${k}`, `SET search_path TO s${k}`, initSql,
        `CREATE TABLE s${k}._prisma_migrations AS SELECT * FROM s0._prisma_migrations`)
    }
    await c.query(sql.join(";"))
  }
  await c.end()
  const tenants = Array.from({ length: N }, (_, i) => ({ name: `t${i}`, url: `${url}?schema=s${i}` }))

  const [, statusInit] = await time(() => fleetStatus({ tenants, migrations: initOnly }))
  const [nothing, deployNothing] = await time(() => deployFleet({ tenants, migrations: initOnly }))
  if (!nothing.tenants.every((t) => t.status === "current")) throw new Error("expected every tenant current")
  // The per-tenant cost of one additive migration, one tenant at a time, on a sample of 20.
  const sample = tenants.slice(0, Math.min(20, N))
  const [, sampleSeconds] = await time(async () => {
    for (const t of sample) await deployMigrations({ url: t.url, migrations: fixtures })
  })
  const [rollout, deployOne] = await time(() => deployFleet({ tenants, migrations: fixtures, waves: [10, "100%"] }))
  if (rollout.halted || rollout.tenants.some((t) => t.status === "failed")) throw new Error(`rollout failed: ${rollout.halted?.reason}`)
  const [after, statusCurrent] = await time(() => fleetStatus({ tenants, migrations: fixtures }))
  if (!after.every((s) => s.pending.length === 0)) throw new Error("expected nothing pending")
  // One planted difference: drift finds it, and nothing else.
  const pc = new pg.Client({ connectionString: url })
  await pc.connect()
  await pc.query(`CREATE INDEX planted ON s${N - 1}."Post" ("title")`)
  await pc.end()
  const [drift, driftSeconds] = await time(() => fleetDrift({ tenants, migrations: fixtures }))
  const drifted = drift.tenants.filter((t) => t.drift.length > 0)
  if (drifted.length !== 1 || drifted[0]!.name !== `t${N - 1}` || drifted[0]!.drift.length !== 1) {
    throw new Error(`drift: expected the planted index only, found ${JSON.stringify(drifted).slice(0, 500)}`)
  }
  console.log(JSON.stringify({
    tenants: N,
    statusSeconds: { atInit: +statusInit.toFixed(2), upToDate: +statusCurrent.toFixed(2) },
    deployNothingSeconds: +deployNothing.toFixed(2),
    driftSeconds: +driftSeconds.toFixed(2),
    deployOneAdditiveSeconds: +deployOne.toFixed(2),
    perTenantSequentialSeconds: +(sampleSeconds / sample.length).toFixed(4),
    perTenantTimesN: +((sampleSeconds / sample.length) * N).toFixed(1)
  }))
} finally {
  await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
  rmSync(dir, { recursive: true, force: true })
}
