// npm run bench:fleet [-- --short | --tenants N]: PostgreSQL schema tenants of one database (default 10,000; `--short`
// is 300, for CI). Measures, against the targets: fleetStatus with nothing to migrate (≤ 10 s at 10,000),
// deployFleet with nothing to migrate (≤ 15 s), deployFleet of one additive migration over every tenant (≤ 10 min; the
// per-tenant cost × N, from deployMigrations one tenant at a time on a sample, is the figure to beat), fleetDrift over
// the fleet (≤ 60 s, finding one planted difference and nothing else), and waves: a migration failing on the 3rd
// tenant of the first 1,000 with waves [10, '100%'] touches at most 10 tenants. Prints one JSON line; drops its one
// database at the end (also on Ctrl+C), and with it every schema.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { deployFleet, deployMigrations, fleetDrift, fleetStatus } from "../src/migrate.js"

const arg = (flag: string) => {
  const i = process.argv.indexOf(flag)
  return i === -1 ? undefined : process.argv[i + 1]
}
const N = Number(arg("--tenants") ?? (process.argv.includes("--short") ? 300 : 10_000))
const WAVE_FLEET = Math.min(1000, N)
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
let step = 0
// Each figure on stderr as soon as it is measured: a long run stopped early still says what it measured.
const time = async <A>(f: () => Promise<A>): Promise<[A, number]> => {
  const t = performance.now()
  const a = await f()
  const seconds = (performance.now() - t) / 1000
  console.error(`[${new Date().toISOString()}] step ${++step}: ${seconds.toFixed(2)} s`)
  return [a, seconds]
}

await admin(`CREATE DATABASE "${name}"`)
// Ctrl+C: the database (and its N schemas) dropped before exiting.
process.once("SIGINT", () => {
  // Dropping it ends the run's own sessions: their errors are expected now.
  process.on("uncaughtException", () => {})
  admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).finally(() => process.exit(130))
})
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
  // Waves: a migration that fails on the 3rd tenant (its table already there) over the first WAVE_FLEET tenants.
  const failing = join(dir, "failing")
  cpSync(fixtures, failing, { recursive: true })
  mkdirSync(join(failing, "20270101000000_wave"))
  writeFileSync(join(failing, "20270101000000_wave", "migration.sql"), `CREATE TABLE "Wave" ("id" INTEGER NOT NULL PRIMARY KEY);\n`)
  const wc = new pg.Client({ connectionString: url })
  await wc.connect()
  await wc.query(`CREATE TABLE s2."Wave" ("id" INTEGER)`)
  await wc.end()
  const fleet = tenants.slice(0, WAVE_FLEET)
  const [waves, wavesSeconds] = await time(() => deployFleet({ tenants: fleet, migrations: failing, waves: [10, "100%"] }))
  const touched = waves.tenants.filter((t) => t.status !== "not-attempted")
  const untouched = (await fleetStatus({ tenants: fleet.slice(10), migrations: failing }))
    .every((s) => s.pending.length === 1 && s.applied.length === 2)
  if (waves.halted?.wave !== 1 || waves.tenants[2]!.status !== "failed" || touched.length > 10 || !untouched) {
    throw new Error(`waves: expected a halt in wave 1 touching ≤ 10 tenants, got ${JSON.stringify({ halted: waves.halted, touched: touched.length, untouched })}`)
  }
  console.log(JSON.stringify({
    tenants: N,
    statusSeconds: { atInit: +statusInit.toFixed(2), upToDate: +statusCurrent.toFixed(2) },
    deployNothingSeconds: +deployNothing.toFixed(2),
    driftSeconds: +driftSeconds.toFixed(2),
    deployOneAdditiveSeconds: +deployOne.toFixed(2),
    perTenantSequentialSeconds: +(sampleSeconds / sample.length).toFixed(4),
    perTenantTimesN: +((sampleSeconds / sample.length) * N).toFixed(1),
    waves: { fleet: WAVE_FLEET, haltedAtWave: waves.halted.wave, touched: touched.length, seconds: +wavesSeconds.toFixed(2) }
  }))
} finally {
  await admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
  rmSync(dir, { recursive: true, force: true })
}
