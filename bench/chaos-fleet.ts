// npm run chaos:fleet [-- --cycles N] [--short] [--apps N] [--tenants N] [--json] [--no-write]
//
// A fleet under faults: N app processes (test/support/chaos-fleet-app.ts) follow a tenant catalog and write unique
// keys to 50 tenants spread over two PostgreSQL clusters, the catalog on a third; all three are started by the run
// (test/support/logical.ts), never the shared server on 5432. Each cycle the driver suspends and resumes a tenant,
// kills one app process with SIGKILL and starts it again, stops the catalog's cluster and starts it again (then
// suspends and resumes another tenant), moves a tenant to the other cluster, puts a fault proxy in front of one
// cluster for the apps, and deploys one more additive migration to the fleet in waves from a child process (killed
// with SIGKILL mid-run every other cycle, then run again). Then the databases themselves are
// read: every acknowledged key must be in its tenant's current placement once, no row may have been written while its
// tenant was suspended (a column defaulting to clock_timestamp()) or on a placement after the move left it, every
// process must have seen each change within pollInterval, and nothing (fence, lock, replication slot) may be left.
// Exit code 1 when a check fails. test/reliability.test.ts runs 3 cycles with 3 apps and 10 tenants in CI.
import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { openCatalog } from "../src/Catalog.js"
import { deployMigrations } from "../src/migrate.js"
import type { Catalog } from "../src/Catalog.js"
import { startLogicalClusters } from "../test/support/logical.js"
import { FaultProxy } from "../test/support/proxy.js"
import type { Check } from "./reliability-load.js"
import { check, flag, has, machine, quantile, table, Teardown, writeReliability } from "./reliability-load.js"

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
/** A process's view may lag the catalog by pollInterval, + this much on a loaded machine (a write's own time). */
const VIEW_SLACK_MS = 1_000
/** How long each proxy fault is held. */
const FAULT_MS = 1_500

interface Outcome {
  readonly tenant: string
  readonly ok: boolean
  readonly tag: string
  readonly end: number
}

interface App {
  readonly index: number
  readonly prefix: string
  readonly proc: ChildProcess
  readonly started: number
  ended: number
  readonly outcomes: Array<Outcome>
  readonly ready: Promise<void>
  readonly exited: Promise<void>
}

/** A change the driver made and when it was in the catalog: each process must see it within pollInterval. */
interface Change {
  readonly kind: "suspend" | "resume" | "move"
  /** Made right after the catalog's cluster came back. */
  readonly afterRestart: boolean
  readonly tenant: string
  readonly expect: "active" | "suspended"
  readonly at: number
}

export interface FleetOptions {
  readonly cycles: number
  readonly apps?: number
  readonly tenants?: number
  readonly pollMs?: number
  readonly catalogDownMs?: number
  readonly log?: (line: string) => void
}

export const runFleetChaos = async (options: FleetOptions) => {
  const appCount = options.apps ?? 4
  const tenantCount = options.tenants ?? 50
  const pollMs = options.pollMs ?? 2_000
  const catalogDownMs = options.catalogDownMs ?? 2_000
  const log = options.log ?? (() => {})
  const teardown = new Teardown(log)
  const apps: Array<App> = []
  const acked = new Map<string, { tenant: string; end: number }>()
  let childUnhandled = 0
  try {
    const started = performance.now()
    const logical = await startLogicalClusters(3)
    teardown.add(async () => logical.stop())
    const [catalogCluster, east, west] = logical.clusters as [typeof logical.clusters[0], typeof logical.clusters[0], typeof logical.clusters[0]]
    const byServer = { east, west } as const
    const servers = { east: east.url(), west: west.url() }
    // The apps reach west through the fault proxy; the driver (catalog, moves, checks) reaches it directly.
    const proxy = await FaultProxy.start(west.port)
    teardown.add(() => proxy.close())
    const appServers = { east: east.url(), west: `postgresql://postgres@127.0.0.1:${proxy.port}/postgres` }
    await catalogCluster.sql(`CREATE DATABASE catalog`)
    const catalogUrl = catalogCluster.url("catalog")
    // The fleet's migrations: the tenants' first, which builds the template, then one more additive migration each
    // cycle. New tenants are copies of the template, so they are born with the first recorded.
    const migrations = mkdtempSync(join(tmpdir(), "flexidb-chaos-fleet-migrations-"))
    teardown.add(async () => rmSync(migrations, { recursive: true, force: true }))
    writeFileSync(join(migrations, "migration_lock.toml"), `provider = "postgresql"\n`)
    mkdirSync(join(migrations, "00000_init"))
    writeFileSync(
      join(migrations, "00000_init", "migration.sql"),
      `CREATE TABLE "User" (id SERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE "Post" (id SERIAL PRIMARY KEY, title TEXT NOT NULL, "authorId" INTEGER NOT NULL REFERENCES "User"(id));\n`
    )
    for (const c of [east, west]) {
      await c.sql(`CREATE DATABASE tpl`)
      await deployMigrations({ url: c.url("tpl"), migrations })
    }
    // 4 processes × 25 tenants per cluster, a pool each: past PostgreSQL's default 100 connections.
    for (const [i, c] of [east, west].entries()) {
      await c.sql(`ALTER SYSTEM SET max_connections = 600`)
      logical.halt(i + 1)
      logical.start(i + 1)
    }
    let catalog: Catalog = await openCatalog({ url: catalogUrl, servers })
    teardown.add(() => catalog.close())
    const names = Array.from({ length: tenantCount }, (_, i) => `cf${i}`)
    for (let i = 0; i < names.length; i += 5) {
      await Promise.all(names.slice(i, i + 5).map((n, j) => catalog.create(n, { server: (i + j) % 2 === 0 ? "east" : "west", template: "tpl" })))
    }
    log(`${tenantCount} tenants created in ${((performance.now() - started) / 1000).toFixed(0)} s`)

    /** A catalog call, tried again while the catalog's cluster comes back (its pool's connections were ended). */
    const retried = async <A>(what: string, call: () => Promise<A>): Promise<A> => {
      const end = Date.now() + 30_000
      for (;;) {
        try {
          return await call()
        } catch (e) {
          if (Date.now() > end) throw e
          log(`${what}: ${(e as { _tag?: string })._tag ?? (e as Error).name}, again`)
          await sleep(200)
        }
      }
    }

    const generation = new Array<number>(appCount).fill(0)
    const startApp = (index: number): App => {
      const prefix = `a${index}g${generation[index]!++}`
      const proc = spawn(process.execPath, [
        "--import", "tsx", join(import.meta.dirname, "..", "test", "support", "chaos-fleet-app.ts"),
        catalogUrl, JSON.stringify(appServers), JSON.stringify(names), prefix, String(pollMs)
      ], { stdio: ["ignore", "pipe", "inherit"] })
      const outcomes: Array<Outcome> = []
      let buffer = ""
      let isReady: () => void
      const ready = new Promise<void>((r) => (isReady = r))
      proc.stdout!.on("data", (d: Buffer) => {
        buffer += d.toString()
        const lines = buffer.split("\n")
        buffer = lines.pop()!
        for (const l of lines) {
          const [what, tenant, key, a, b] = l.split(" ") as [string, string, string, string, string]
          if (what === "ready") isReady()
          else if (what === "ack") {
            acked.set(key, { tenant, end: Number(a) })
            outcomes.push({ tenant, ok: true, tag: "ok", end: Number(a) })
          } else if (what === "fail") outcomes.push({ tenant, ok: false, tag: a, end: Number(b) })
          else if (what === "unhandled") {
            childUnhandled++
            log(`${prefix}: ${l}`)
          }
        }
      })
      const app: App = {
        index, prefix, proc, started: Date.now(), ended: Number.POSITIVE_INFINITY, outcomes, ready,
        exited: new Promise<void>((r) => proc.on("exit", () => r()))
      }
      void app.exited.then(() => (app.ended = Date.now()))
      apps.push(app)
      return app
    }
    const live = new Map<number, App>()
    teardown.add(async () => {
      for (const a of live.values()) a.proc.kill("SIGKILL")
      await Promise.all([...live.values()].map((a) => a.exited))
    })
    for (let i = 0; i < appCount; i++) live.set(i, startApp(i))
    await Promise.all([...live.values()].map((a) => a.ready))

    const changes: Array<Change> = []
    /** Each tenant's server over time: where it was created, then each move's target from its switch on. */
    const placements = new Map(names.map((n, i) => [n, [{ at: 0, server: i % 2 === 0 ? "east" : "west" }]]))
    const serverAt = (tenant: string, t: number) => placements.get(tenant)!.filter((p) => p.at <= t).at(-1)!.server
    const suspended: Array<{ tenant: string; from: number; to: number }> = []
    const leftBehind: Array<{ tenant: string; rows: number }> = []
    const catalogDown: Array<{ from: number; to: number }> = []
    const moveMs: Array<number> = []
    let kills = 0
    /** After each proxy fault is restored: how long until each process has a write acknowledged on west again. */
    const recoveries: Array<{ fault: string; at: number }> = []
    const faults = ["drop", "refuse", "hang", "blackhole"] as const
    let moveFailures = 0
    const deploys = { runs: 0, killed: 0, failed: 0, tenantsBeforeKill: [] as Array<number> }

    /**
     * `deployFleet` in a child process (test/support/fleet-deploy-child.ts); killed with SIGKILL once `killAfter`
     * tenants have finished, if given. Whether it was killed, and whether it deployed the whole fleet.
     */
    const deploy = (killAfter: number | undefined) =>
      new Promise<{ killed: boolean; ok: boolean }>((resolve) => {
        deploys.runs++
        const proc = spawn(process.execPath, [
          "--import", "tsx", join(import.meta.dirname, "..", "test", "support", "fleet-deploy-child.ts"),
          catalogUrl, JSON.stringify(servers), migrations
        ], { stdio: ["ignore", "pipe", "pipe"] })
        let finished = 0
        let killed = false
        let done = ""
        let errors = ""
        proc.stderr!.on("data", (d: Buffer) => (errors += d.toString()))
        proc.stdout!.on("data", (d: Buffer) => {
          for (const l of d.toString().split("\n")) {
            if (l.startsWith("tenant ")) finished++
            if (l.startsWith("done ")) done = l.slice(5)
          }
          if (killAfter !== undefined && !killed && finished >= killAfter) {
            killed = true
            deploys.tenantsBeforeKill.push(finished)
            proc.kill("SIGKILL")
          }
        })
        proc.on("exit", (code) => {
          if (!killed && (code !== 0 || done !== "ok")) log(`fleet deploy: ${done || `exit ${code}`} ${errors.trim().slice(-500)}`)
          resolve({ killed, ok: !killed && code === 0 && done === "ok" })
        })
      })

    const suspendResume = async (tenant: string, afterRestart = false) => {
      await retried("suspend", () => catalog.suspend(tenant))
      const from = Date.now()
      changes.push({ kind: "suspend", afterRestart, tenant, expect: "suspended", at: from })
      // Held past the view's bound, so a process that never hears of it shows (its writes refused by the fence).
      await sleep(pollMs + 2 * VIEW_SLACK_MS)
      const to = Date.now()
      await retried("resume", () => catalog.resume(tenant))
      suspended.push({ tenant, from, to })
      changes.push({ kind: "resume", afterRestart, tenant, expect: "active", at: Date.now() })
    }

    for (let cycle = 1; cycle <= options.cycles; cycle++) {
      // 1. suspend / resume
      await suspendResume(names[(cycle * 3) % tenantCount]!)

      // 2. kill -9 of one app process, started again
      const victim = (cycle - 1) % appCount
      const old = live.get(victim)!
      await sleep(Math.random() * 200)
      old.proc.kill("SIGKILL")
      await old.exited
      kills++
      const fresh = startApp(victim)
      live.set(victim, fresh)
      await fresh.ready

      // 3. the catalog's cluster stopped and started; then a change must reach every process again
      const from = Date.now()
      logical.halt(0)
      await sleep(catalogDownMs)
      logical.start(0)
      catalogDown.push({ from, to: Date.now() })
      await suspendResume(names[(cycle * 3 + 1) % tenantCount]!, true)

      // 4. a move to the other cluster; the source is looked at (no write after the switch), then removed
      const moving = names[(cycle * 7 + 2) % tenantCount]!
      const row = (await retried("get", () => catalog.get(moving)))!
      const target = row.server === "east" ? "west" : "east"
      const t = performance.now()
      try {
        await catalog.move(moving, { server: target })
        const switched = Date.now()
        moveMs.push(performance.now() - t)
        changes.push({ kind: "move", afterRestart: false, tenant: moving, expect: "active", at: switched })
        placements.get(moving)!.push({ at: switched, server: target })
        await sleep(pollMs + VIEW_SLACK_MS)
        const source = byServer[row.server as "east" | "west"]
        const [late] = await source.sql(`SELECT count(*)::int AS n FROM "User" WHERE at > to_timestamp($1 / 1000.0)`, row.location, [switched])
        leftBehind.push({ tenant: moving, rows: late!.n as number })
        await retried("remove source", () => catalog.remove(moving, { source: true }))
      } catch (e) {
        moveFailures++
        log(`move of ${moving}: ${(e as Error).message}`)
      }
      // 5. the fault proxy in front of west, for the apps: drop, refuse, hang, blackhole in turn, then restored
      const fault = faults[(cycle - 1) % faults.length]!
      if (fault === "drop") proxy.dropAll()
      else if (fault === "refuse") await proxy.refuse()
      else if (fault === "hang") proxy.hang()
      else proxy.blackhole()
      await sleep(FAULT_MS)
      await proxy.restore()
      recoveries.push({ fault, at: Date.now() })
      await sleep(pollMs)

      // 6. a fleet migration: one more additive migration, deployed in waves (1, 25%, 100%) by a child process while
      //    the apps write; every other cycle that process is killed (SIGKILL) mid-run and the deploy run again
      const migration = `${String(cycle).padStart(5, "0")}_c${cycle}`
      mkdirSync(join(migrations, migration))
      writeFileSync(join(migrations, migration, "migration.sql"), `ALTER TABLE "User" ADD COLUMN "c${cycle}" integer;\n`)
      const first = await deploy(cycle % 2 === 1 ? 1 + (cycle % Math.max(1, Math.floor(tenantCount / 2))) : undefined)
      if (first.killed) {
        deploys.killed++
        if (!(await deploy(undefined)).ok) deploys.failed++
      } else if (!first.ok) deploys.failed++

      log(`cycle ${cycle}/${options.cycles}: ${acked.size} acknowledged writes, ${kills} kills, ${moveMs.length} moves, ${deploys.runs} deploys`)
    }

    // The end: every process stopped, then the databases read.
    // SIGTERM: each app finishes its writes and disconnects; one still there after 15 s is killed and counted.
    for (const a of live.values()) a.proc.kill("SIGTERM")
    let hungAtExit = 0
    await Promise.all([...live.values()].map(async (a) => {
      const ended = await Promise.race([a.exited.then(() => true), sleep(15_000).then(() => false)])
      if (ended) return
      hungAtExit++
      log(`${a.prefix} still running 15 s after SIGTERM: killed`)
      a.proc.kill("SIGKILL")
      await a.exited
    }))
    live.clear()
    const seconds = (performance.now() - started) / 1_000

    const rows = new Map<string, Array<{ email: string; at: Date }>>()
    let notActive = 0
    /** Tenants whose ledger does not have every migration finished once, or has one started and never finished. */
    let notMigrated = 0
    for (const name of names) {
      const row = (await catalog.get(name))!
      if (row.state !== "active") notActive++
      const server = byServer[row.server as "east" | "west"]
      rows.set(name, await server.sql(`SELECT email, at FROM "User"`, row.location) as Array<{ email: string; at: Date }>)
      const [ledger] = await server.sql(
        `SELECT count(DISTINCT migration_name) FILTER (WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL)::int AS done,
                count(*) FILTER (WHERE finished_at IS NULL AND rolled_back_at IS NULL)::int AS unfinished,
                (SELECT count(*)::int FROM information_schema.columns WHERE table_name = 'User' AND column_name ~ '^c[0-9]+$') AS columns
         FROM _prisma_migrations`,
        row.location
      ).catch(() => [undefined]) // no ledger at all: not migrated
      if (ledger === undefined || ledger.done !== options.cycles + 1 || ledger.unfinished !== 0 || ledger.columns !== options.cycles) notMigrated++
    }
    const found = new Map<string, number>()
    for (const [tenant, list] of rows) for (const r of list) found.set(`${tenant} ${r.email}`, (found.get(`${tenant} ${r.email}`) ?? 0) + 1)
    const allEmails = new Map<string, number>()
    for (const list of rows.values()) for (const r of list) allEmails.set(r.email, (allEmails.get(r.email) ?? 0) + 1)
    let lost = 0
    for (const [key, { tenant }] of acked) if (!found.has(`${tenant} ${key}`)) lost++
    const duplicated = [...allEmails.values()].filter((n) => n > 1).length
    let writesWhileSuspended = 0
    for (const s of suspended) {
      for (const r of rows.get(s.tenant)!) if (r.at.getTime() > s.from && r.at.getTime() < s.to) writesWhileSuspended++
    }
    const writesOnLeftPlacement = leftBehind.reduce((n, l) => n + l.rows, 0)

    // Each process's view: after each change (until the next change of that tenant), how long it still acted on the
    // old one — the end of its last write there that disagrees with the catalog: one sent to the server after a
    // suspension, a failed one after a resume or a move; an upper bound, the write's own time included — and whether
    // it was then seen to agree (refused without touching the server: TenantSuspendedError — not one the suspension's
    // fence refused, `TenantSuspendedError:fence`: that write was sent on the old view —, or ReadOnlyError from a
    // lease on the retired client; after a resume or a move, a write acknowledged).
    const lags: Array<number> = []
    const firstAgreeing: Array<number> = []
    const maxLagBy: Record<string, number> = {}
    let neverSeen = 0
    for (const [i, c] of changes.entries()) {
      // The window ends at the next change of the tenant or the next stop of the catalog: a tenant not resident (a
      // resumed one) cannot be opened while the catalog is down, which is that fault's doing, not a stale view.
      const until = Math.min(
        changes.slice(i + 1).find((n) => n.tenant === c.tenant)?.at ?? Number.POSITIVE_INFINITY,
        catalogDown.find((d) => d.from > c.at)?.from ?? Number.POSITIVE_INFINITY
      )
      for (const a of apps) {
        if (a.started > c.at || a.ended < Math.min(until, c.at + pollMs + VIEW_SLACK_MS)) continue // not alive throughout
        const agreesWith = (o: Outcome) =>
          c.expect === "active" ? o.ok : o.tag === "TenantSuspendedError" || o.tag === "ReadOnlyError"
        const after = a.outcomes.filter((o) => o.tenant === c.tenant && o.end > c.at && o.end <= until)
        const first = after.findIndex(agreesWith)
        const stale = Math.max(0, ...after.slice(0, first === -1 ? after.length : first).map((o) => o.end - c.at))
        const by = `${c.kind}${c.afterRestart ? " after the catalog's restart" : ""}`
        lags.push(stale)
        maxLagBy[by] = Math.max(maxLagBy[by] ?? 0, stale)
        if (first === -1) neverSeen++
        else firstAgreeing.push(after[first]!.end - c.at)
        if (stale > pollMs + VIEW_SLACK_MS) {
          log(`${a.prefix} acted on the old view of ${c.tenant} ${stale} ms after ${by}: ${after.slice(0, first === -1 ? 8 : first + 1).slice(-8).map((o) => `${o.tag}@+${o.end - c.at}`).join(", ")}`)
        }
      }
    }
    const maxLag = Math.max(0, ...lags)

    // Back on west after each proxy fault: per process alive throughout, its first write acknowledged on a tenant the
    // catalog had on west at the restore and at the write (each tenant's placement followed through its moves).
    const backAfter: Array<number> = []
    const backBy: Record<string, number> = {}
    let neverBack = 0
    for (const r of recoveries) {
      for (const a of apps) {
        if (a.started > r.at - FAULT_MS || a.ended < r.at + pollMs) continue
        const ack = a.outcomes.find((o) => o.ok && o.end > r.at && serverAt(o.tenant, r.at) === "west" && serverAt(o.tenant, o.end) === "west")
        if (ack === undefined) {
          neverBack++
          continue
        }
        backAfter.push(ack.end - r.at)
        backBy[r.fault] = Math.max(backBy[r.fault] ?? 0, ack.end - r.at)
      }
    }
    const faultFailures = apps.flatMap((a) => a.outcomes).filter((o) => !o.ok && serverAt(o.tenant, o.end) === "west" && recoveries.some((r) => o.end > r.at - FAULT_MS && o.end < r.at + 2_500)).length

    // Served while the catalog was down: acknowledged writes that ended in a down window.
    const ackTimes = [...acked.values()].map((a) => a.end)
    /** Well inside a stop: 200 ms after it began, so a write acknowledged just before it does not count. */
    const inDown = (t: number, d: { from: number; to: number }) => t > d.from + 200 && t < d.to
    const servedWhileDown = ackTimes.filter((t) => catalogDown.some((d) => inDown(t, d))).length
    const downUnserved = catalogDown.filter((d) => !ackTimes.some((t) => inDown(t, d))).length

    await catalog.close()
    const [moves] = await catalogCluster.sql(`SELECT count(*)::int AS n FROM flexidb.moves`, "catalog")
    const [locks] = await catalogCluster.sql(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'`)
    let fenced = 0
    let slots = 0
    let subscriptions = 0
    let tenantLocks = 0
    for (const c of [east, west]) {
      tenantLocks += (await c.sql(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory'`))[0]!.n as number
      // A suspension's fence closes the database; a move's makes it read-only.
      fenced += (await c.sql(`SELECT count(*)::int AS n FROM pg_database WHERE NOT datallowconn AND datname <> 'template0'`))[0]!.n as number
      fenced += (await c.sql(`SELECT count(*)::int AS n FROM pg_db_role_setting WHERE 'default_transaction_read_only=on' = ANY(setconfig)`))[0]!.n as number
      slots += (await c.sql(`SELECT count(*)::int AS n FROM pg_replication_slots`))[0]!.n as number
      subscriptions += (await c.sql(`SELECT count(*)::int AS n FROM pg_subscription`))[0]!.n as number
    }
    const unhandled = childUnhandled + teardown.unhandled
    const failures = apps.flatMap((a) => a.outcomes.filter((o) => !o.ok))
    const failedBy: Record<string, number> = {}
    for (const f of failures) failedBy[f.tag] = (failedBy[f.tag] ?? 0) + 1

    const checks: Array<Check> = [
      check("faults took effect (processes killed, catalog stopped, writes refused for suspended tenants)", kills > 0 && catalogDown.length > 0 && (failedBy.TenantSuspendedError ?? 0) > 0, `${kills} kills, ${catalogDown.length} catalog stops, ${failedBy.TenantSuspendedError ?? 0} TenantSuspendedError`),
      check("acknowledged writes lost: 0", lost === 0, `${lost} of ${acked.size}`),
      check("keys found more than once: 0", duplicated === 0, duplicated),
      check("rows written while their tenant was suspended: 0", writesWhileSuspended === 0, `${writesWhileSuspended} over ${suspended.length} suspensions`),
      check("rows written on a placement after a move left it: 0", writesOnLeftPlacement === 0, `${writesOnLeftPlacement} over ${leftBehind.length} moves`),
      check(`every process's view equal to the catalog within pollInterval (${pollMs} ms) + ${VIEW_SLACK_MS} ms after each change (no write on the old view later)`, maxLag <= pollMs + VIEW_SLACK_MS, `latest old-view write ${maxLag} ms after, p50 ${quantile(lags, 0.5).toFixed(0)} ms over ${lags.length} (process, change) pairs`),
      check("resident tenants served while the catalog was down (acknowledged writes in every stop)", catalogDown.length > 0 && downUnserved === 0, `${servedWhileDown} acknowledged writes during ${catalogDown.length} stops; ${downUnserved} stops with none`),
      check("proxy faults bit (failed writes on west around them)", recoveries.length === 0 || faultFailures > 0, `${faultFailures} over ${recoveries.length} faults`),
      check(`every process wrote to west again within pollInterval (${pollMs} ms) of each restore`, neverBack === 0 && Math.max(0, ...backAfter) <= pollMs, `max ${Math.max(0, ...backAfter)} ms over ${backAfter.length}; never ${neverBack}`),
      check("app processes still running 15 s after SIGTERM (disconnect): 0", hungAtExit === 0, hungAtExit),
      check("moves failed: 0", moveFailures === 0, moveFailures),
      check("unhandled rejections (driver and every app process): 0", unhandled === 0, unhandled),
      check("fleet migrations: every tenant has each cycle's migration applied once, none left half-applied; no deploy failed", notMigrated === 0 && deploys.failed === 0, `${notMigrated} of ${tenantCount} tenants not current; ${deploys.failed} failed of ${deploys.runs} runs (${deploys.killed} killed mid-run and run again)`),
      check("left behind: tenants not active, moves recorded, advisory locks (catalog, tenant clusters), fenced databases, slots, subscriptions: 0", notActive + moves!.n + locks!.n + tenantLocks + fenced + slots + subscriptions === 0, `${notActive}, ${moves!.n}, ${locks!.n}, ${tenantLocks}, ${fenced}, ${slots}, ${subscriptions}`)
    ]
    return {
      cycles: options.cycles, seconds, apps: appCount, tenants: tenantCount, pollMs, catalogDownMs,
      acknowledged: acked.size, failedBy, kills, catalogStops: catalogDown.length, suspensions: suspended.length,
      moves: { done: moveMs.length, failed: moveFailures, p50: quantile(moveMs, 0.5), max: Math.max(0, ...moveMs) },
      lost, duplicated, writesWhileSuspended, writesOnLeftPlacement,
      view: { maxBy: maxLagBy, firstAgreeingP50: quantile(firstAgreeing, 0.5), firstAgreeingMax: Math.max(0, ...firstAgreeing), samples: lags.length, p50: quantile(lags, 0.5), p99: quantile(lags, 0.99), max: maxLag, never: neverSeen },
      proxy: { faults: recoveries.length, failures: faultFailures, p50: quantile(backAfter, 0.5), max: Math.max(0, ...backAfter), by: backBy, never: neverBack },
      deploys: { ...deploys, notMigrated }, hungAtExit, servedWhileDown, unhandled, checks
    }
  } finally {
    await teardown.close()
  }
}

type Figures = Awaited<ReturnType<typeof runFleetChaos>>
const int = (n: number) => n.toLocaleString("en-US")

export const report = (f: Figures, command: string) => [
  `Run ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC on ${machine()}: \`${command}\`.`,
  "",
  ...table([
    ["cycles (suspend/resume, kill -9 + restart, catalog cluster stop/start + suspend/resume, move, proxy fault on one tenant server, fleet migration)", int(f.cycles)],
    ["duration", `${f.seconds.toFixed(0)} s (${f.apps} app processes, ${f.tenants} tenants on two clusters, pollInterval ${f.pollMs} ms, catalog down ${f.catalogDownMs} ms each time)`],
    ["writes acknowledged", int(f.acknowledged)],
    ["failed writes by error", Object.entries(f.failedBy).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${int(v)}`).join(", ") || "none"],
    ["app processes killed with SIGKILL / catalog stops / suspensions", `${f.kills} / ${f.catalogStops} / ${f.suspensions}`],
    ["moves done / failed, p50 / max", `${f.moves.done} / ${f.moves.failed}, ${(f.moves.p50 / 1000).toFixed(1)} / ${(f.moves.max / 1000).toFixed(1)} s`],
    ["**acknowledged writes lost / keys duplicated**", `${int(f.lost)} / ${int(f.duplicated)}`],
    ["**rows written while suspended / on a placement a move left**", `${int(f.writesWhileSuspended)} / ${int(f.writesOnLeftPlacement)}`],
    ["**a process still acting on the old view after a change** (its last disagreeing write's end), p50 / p99 / max", `${f.view.p50.toFixed(0)} / ${f.view.p99.toFixed(0)} / ${f.view.max.toFixed(0)} ms over ${f.view.samples} (process, change) pairs`],
    ["its first write seen agreeing with the catalog, p50 / max (pairs with no write there between its last old-view one and the next change)", `${f.view.firstAgreeingP50.toFixed(0)} / ${f.view.firstAgreeingMax.toFixed(0)} ms (${f.view.never})`],
    ["latest old-view write by change", Object.entries(f.view.maxBy).map(([k, v]) => `${k} ${v} ms`).join(", ")],
    ["proxy faults on west (drop, refuse, hang, blackhole in turn, 1.5 s each); failed writes on west around them", `${f.proxy.faults}; ${int(f.proxy.failures)}`],
    ["each process's first write acknowledged on west after a restore, p50 / max (never)", `${f.proxy.p50.toFixed(0)} / ${f.proxy.max.toFixed(0)} ms (${f.proxy.never}); slowest by fault: ${Object.entries(f.proxy.by).map(([k, v]) => `${k} ${v} ms`).join(", ")}`],
    ["writes acknowledged while the catalog was down", int(f.servedWhileDown)],
    ["fleet migrations (one additive migration a cycle, waves 1 / 25% / 100%, while the apps write): deploy runs / killed mid-run (tenants finished before the kill) / failed; tenants not current at the end", `${f.deploys.runs} / ${f.deploys.killed} (${f.deploys.tenantsBeforeKill.join(", ") || "-"}) / ${f.deploys.failed}; ${f.deploys.notMigrated}`],
    ["**unhandled rejections**", int(f.unhandled)],
    ["app processes still running 15 s after SIGTERM", int(f.hungAtExit)]
  ]),
  "",
  ...f.checks.map((c) => `- ${c.ok ? "✓" : "✗"} ${c.name} — ${c.found}`)
]

const main = async () => {
  const short = has("short")
  const cycles = flag("cycles", short ? 4 : 100)
  const log = (line: string) => console.error(line)
  const figures = await runFleetChaos({ cycles, apps: flag("apps", 4), tenants: flag("tenants", short ? 10 : 50), log })
  const lines = report(figures, `npm run chaos:fleet -- --cycles ${cycles}${short ? " --short" : ""}`)
  if (has("json")) console.log(JSON.stringify(figures, null, 2))
  else console.log(lines.join("\n"))
  if (!has("no-write") && !short) writeReliability("chaos-fleet", lines)
  process.exit(figures.checks.every((c) => c.ok) ? 0 : 1)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((error: unknown) => {
    console.error(error)
    process.exit(1)
  })
}
