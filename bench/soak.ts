// npm run soak [-- --minutes N] [--sample-every S] [--json] [--no-write]
//
// The chaos run's load without faults, plus churn: a database registered, used and unregistered, middleware added
// and removed, and tenants opened beyond maxClients so that they are evicted — PostgreSQL, MariaDB and SQLite all
// along. Every interval the process is sampled at a quiet point (the load held while the calls in flight finish):
// heap after a full collection, RSS, active handles, file descriptors, process listeners, Effect's root fibers and
// the servers' connections to the run's databases. Pass: after the warm-up every series is flat — its
// least-squares slope within a stated bound — and stays under its ceiling. Exit code 1 otherwise.
// test/reliability.test.ts runs runSoak() for 60 seconds with the same checks.
import { readdirSync } from "node:fs"
import { pathToFileURL } from "node:url"
import { PrismaPg } from "@prisma/adapter-pg"
import { Effect, Fiber } from "effect"
import * as mariadb from "mariadb"
import pg from "pg"
import { createFlexiDB } from "../src/index.js"
import type { MiddlewareFn } from "../src/index.js"
import * as prisma7 from "../test/fixtures/prisma7/clients.ts"
import type { TestDatabase } from "../test/support/databases.js"
import { createDatabase } from "../test/support/databases.js"
import type { AnyClient, Call, Check } from "./reliability-load.js"
import {
  check,
  codeOf,
  collectGarbage,
  createMemorySqlite,
  flag,
  has,
  Load,
  machine,
  Repeat,
  table,
  Teardown,
  writeReliability,
} from "./reliability-load.js"

export interface SoakOptions {
  readonly seconds: number
  /** Seconds between samples. */
  readonly sampleEvery: number
  /** Seconds left out of the slopes: pools filling, the JIT settling, first tenants opening. */
  readonly warmupSeconds?: number
  /** SQLite churns and tenant evictions run flat out before the clock starts (default 5,000). */
  readonly prewarm?: number
  readonly workers?: number
  readonly periodMs?: number
  readonly log?: (line: string) => void
}

export interface Sample {
  /** Seconds since the load started. */
  readonly t: number
  readonly heapMiB: number
  readonly rssMiB: number
  readonly handles: number
  readonly fds: number
  readonly listeners: number
  readonly fibers: number
  readonly connections: number
}

type Series = Exclude<keyof Sample, "t">

/**
 * The bounds, stated before any run. Slopes are per minute after the warm-up. Ceilings: for connections, what the
 * pools may open (below); for the other counts, what the warm-up reached plus a few (a pool's idle connections
 * close and reopen with the load, so a count moves by a few between quiet points).
 */
const bounds: Record<Series, { readonly unit: string; readonly slope: number; readonly ceiling: (warmup: number) => number }> = {
  heapMiB: { unit: "MiB", slope: 1, ceiling: () => Number.POSITIVE_INFINITY },
  // RSS keeps what the allocator took until it gives it back, and moves by tens of MiB between quiet points as
  // Prisma's per-client engines come and go with the tenants: its slope is reported, not held to a bound (as in
  // bench:tenants). A native leak still has to stay under half as much again as the warm-up's peak.
  rssMiB: { unit: "MiB", slope: Number.POSITIVE_INFINITY, ceiling: (warmup) => 1.5 * warmup },
  handles: { unit: "", slope: 1, ceiling: (warmup) => warmup + 12 },
  fds: { unit: "", slope: 1, ceiling: (warmup) => warmup + 12 },
  listeners: { unit: "", slope: 0.5, ceiling: (warmup) => warmup + 2 },
  fibers: { unit: "", slope: 1, ceiling: (warmup) => warmup + 6 },
  connections: { unit: "", slope: 1, ceiling: () => CONNECTION_CEILING }
}

/** SQLite churns and tenant evictions before the clock starts (see runSoak). */
const PREWARM = 5_000
const TENANTS = 12
const MAX_TENANT_CLIENTS = 4
const TENANT_CONNECTIONS = 2
/** pg.Pool's default max and mariadb's default connectionLimit, for the two main clients. */
const MAIN_POOL = 10
/** Every pool that can be open at once: the main ones, the resident tenants', one churned database's. */
const CONNECTION_CEILING = 2 * MAIN_POOL + MAX_TENANT_CLIENTS * TENANT_CONNECTIONS + TENANT_CONNECTIONS

export interface SeriesFigures {
  readonly name: Series
  readonly slopePerMinute: number
  /** The slope's standard error: how far the noise between quiet points alone moves it. */
  readonly slopeError: number
  readonly slopeBound: number
  readonly first: number
  readonly last: number
  readonly max: number
  readonly ceiling: number
}

export interface SoakFigures {
  readonly seconds: number
  readonly sampleEvery: number
  readonly warmupSeconds: number
  readonly operations: number
  readonly failures: Record<string, number>
  readonly maxCallMs: number
  readonly churn: {
    readonly registered: number
    readonly middlewareAdded: number
    /** Calls a removed middleware still saw. */
    readonly middlewareAfterRemoval: number
    readonly unregisteredStillListed: number
    readonly tenantCalls: number
    readonly evictions: number
    readonly maxResident: number
  }
  readonly unhandledRejections: number
  readonly samples: ReadonlyArray<Sample>
  readonly series: ReadonlyArray<SeriesFigures>
  readonly checks: ReadonlyArray<Check>
}

/** Least squares: the slope of `ys` against `xs`, and its standard error. */
export const fit = (xs: ReadonlyArray<number>, ys: ReadonlyArray<number>) => {
  const n = xs.length
  const mx = xs.reduce((a, b) => a + b, 0) / n
  const my = ys.reduce((a, b) => a + b, 0) / n
  let num = 0
  let den = 0
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my)
    den += (xs[i]! - mx) ** 2
  }
  const slope = den === 0 ? 0 : num / den
  let residuals = 0
  for (let i = 0; i < n; i++) residuals += (ys[i]! - (my + slope * (xs[i]! - mx))) ** 2
  return { slope, error: n > 2 && den > 0 ? Math.sqrt(residuals / (n - 2) / den) : Number.POSITIVE_INFINITY }
}

const mib = (bytes: number) => bytes / 2 ** 20
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Connections the servers hold to this run's databases (the sampler's own are to no database of the run). */
const connectionCounter = async (pgDb: TestDatabase, myDb: TestDatabase) => {
  const pgAdmin = new pg.Client({ connectionString: new URL("/postgres", pgDb.url).toString() })
  await pgAdmin.connect()
  const myAdmin = await mariadb.createConnection({ host: "127.0.0.1", port: 3306, user: "root" })
  const pgName = new URL(pgDb.url).pathname.slice(1)
  const myName = new URL(myDb.url).pathname.slice(1)
  return {
    count: async () => {
      const a = await pgAdmin.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1`, [pgName])
      const b = await myAdmin.query(`SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ?`, [myName])
      return Number(a.rows[0].n) + Number(b[0].n)
    },
    close: () => Promise.all([pgAdmin.end(), myAdmin.end()])
  }
}

export const runSoak = async (options: SoakOptions): Promise<SoakFigures> => {
  const { seconds, sampleEvery } = options
  const warmupSeconds = options.warmupSeconds ?? Math.min(120, seconds / 3)
  const log = options.log ?? (() => {})
  const teardown = new Teardown(log)
  try {
    const pgDb = await createDatabase("postgresql")
    teardown.add(() => pgDb.drop())
    const myDb = await createDatabase("mysql")
    teardown.add(() => myDb.drop())
    const liteDb = await createMemorySqlite()
    teardown.add(() => liteDb.drop())
    const connections = await connectionCounter(pgDb, myDb)
    teardown.add(() => connections.close())

    /** A new client of one of the three databases, with a small pool: tenants and churned databases. */
    const clientOf = (i: number, limit: number): AnyClient =>
      (i % 3 === 0
        ? new prisma7.PostgresClient({ adapter: new PrismaPg({ connectionString: pgDb.url, max: limit }) })
        : i % 3 === 1
        ? prisma7.mysql(`${myDb.url}?connectionLimit=${limit}&connectTimeout=2000&acquireTimeout=3000`)
        : prisma7.sqlite(liteDb.url)) as unknown as AnyClient
    const main: Record<string, AnyClient> = {
      postgres: prisma7.postgresql(pgDb.url) as unknown as AnyClient,
      mariadb: prisma7.mysql(myDb.url) as unknown as AnyClient,
      sqlite: prisma7.sqlite(liteDb.url)
    }
    const db = createFlexiDB(main, {
      gracefulShutdown: false,
      logger: false,
      // Health checks on: their fibers and timers are part of what must not pile up.
      healthCheck: { interval: 1_000, timeout: 500 },
      tenants: {
        resolve: (name, { connectionLimit }) => clientOf(Number(name.slice(1)), connectionLimit ?? TENANT_CONNECTIONS),
        maxClients: MAX_TENANT_CLIENTS,
        connectionLimit: TENANT_CONNECTIONS
      }
    })
    teardown.add(() => db.disconnect())
    const ready = await db.ready()
    if (!Object.values(ready).every(Boolean)) throw new Error(`not every database connected: ${JSON.stringify(ready)}`)

    let operations = 0
    let maxCallMs = 0
    const failures: Record<string, number> = {}
    const fail = (what: string, error: unknown) => {
      const key = `${what} ${codeOf(error)}`
      if (failures[key] === undefined) log(`failure: ${key}: ${String((error as Error)?.message).trim().split("\n").at(-1)}`)
      failures[key] = (failures[key] ?? 0) + 1
    }
    const onCall = (call: Call) => {
      operations++
      maxCallMs = Math.max(maxCallMs, call.ms)
      if (call.error !== undefined) fail(`${call.kind} ${call.database}`, call.error)
    }
    const churn = { registered: 0, middlewareAdded: 0, middlewareAfterRemoval: 0, unregisteredStillListed: 0, tenantCalls: 0, maxResident: 0 }
    /** A database registered, used and unregistered; middleware added, used and removed. */
    const churnStep = async (i: number) => {
      const name = `churn_${i}`
      try {
        db.register(name, clientOf(i, TENANT_CONNECTIONS))
        churn.registered++
        await db.get(name).user.findFirst()
        await db.unregister(name)
        if (db.list().includes(name)) churn.unregisteredStillListed++
        let seen = 0
        const middleware: MiddlewareFn = (_db, _op, next) => (seen++, next())
        const remove = db.use(middleware)
        churn.middlewareAdded++
        await db.get("sqlite").user.findFirst()
        remove()
        const before = seen
        await db.get("sqlite").user.findFirst()
        churn.middlewareAfterRemoval += seen - before
        operations += 3
      } catch (error) {
        fail("churn", error)
      }
    }
    /** One tenant of 12, at random, for 4 slots: most visits open one and evict another. */
    const visit = async (name = `t${Math.floor(Math.random() * TENANTS)}`) => {
      try {
        await db.withTenant(name, (c) => c.user.findFirst())
        churn.tenantCalls++
        operations++
        churn.maxResident = Math.max(churn.maxResident, db.tenantStats().resident)
      } catch (error) {
        fail("tenant", error)
      }
    }
    // The heap settles over the first ~20,000 churns (V8's code and feedback for the new paths, Prisma's module
    // caches; measured: +0.7 MiB from 4,000 to 20,000 tenant evictions, +0.04 MiB over the next 20,000) and then stays
    // flat. Churned flat out first, so that the slopes measure what every further churn leaves behind, not the
    // settling: every path on every provider a few hundred times, then the bulk on SQLite, whose clients open in
    // microseconds (PostgreSQL and MariaDB pools take tens of milliseconds to open).
    // The load starts with the pre-warm: its own paths settle too (pools filling to their high-water marks).
    const load = new Load({ db, databases: Object.keys(main), workers: options.workers ?? 32, periodMs: options.periodMs ?? 100, tag: `s${process.pid}${Date.now().toString(36)}`, phase: () => undefined, onCall })
    const prewarmStarted = performance.now()
    const prewarm = options.prewarm ?? PREWARM
    for (let i = 0; i < 300; i++) await Promise.all([churnStep(i), visit(), visit()])
    for (let i = 0; i < prewarm; i++) {
      // Index 2 mod 3 is SQLite, for churned databases and tenants alike; new tenant names evict one each.
      await Promise.all([churnStep(300 + 3 * i + 2), visit(`w${3 * i + 2}`)])
    }
    log(`pre-warm: ${300 + prewarm} churns and ${600 + prewarm} tenant visits in ${((performance.now() - prewarmStarted) / 1_000).toFixed(0)} s`)

    const churner = new Repeat((i) => churnStep(300 + 3 * prewarm + i), 200)
    const visitors = Array.from({ length: 4 }, () => new Repeat(() => visit(), 50))
    // Stopped before the instance is disconnected, whatever happens (the normal path stops them first itself).
    teardown.add(() => Promise.all([load.stop(5_000), churner.stop(), ...visitors.map((v) => v.stop())]))
    const everything = { pause: () => Promise.all([load.pause(), churner.pause(), ...visitors.map((v) => v.pause())]), unpause: () => [load, churner, ...visitors].forEach((w) => w.unpause()) }

    const samples: Array<Sample> = []
    const started = performance.now()
    const take = async () => {
      // A quiet point: nothing in flight, garbage collected, so what is left is what the process keeps.
      await everything.pause()
      collectGarbage()
      collectGarbage()
      const memory = process.memoryUsage()
      const sample: Sample = {
        t: (performance.now() - started) / 1_000,
        heapMiB: mib(memory.heapUsed),
        rssMiB: mib(memory.rss),
        handles: process.getActiveResourcesInfo().length,
        fds: readdirSync("/proc/self/fd").length,
        listeners: process.eventNames().reduce((n, e) => n + process.listenerCount(e), 0),
        // Effect's global scope: every fiber started by runFork, forkDaemon or forkIn (health checks, reconnects).
        fibers: Effect.runSync(Fiber.roots).length,
        connections: await connections.count()
      }
      everything.unpause()
      samples.push(sample)
      log(`${sample.t.toFixed(0)} s: heap ${sample.heapMiB.toFixed(1)} MiB, rss ${sample.rssMiB.toFixed(0)} MiB, ${sample.handles} handles, ${sample.fds} fds, ${sample.listeners} listeners, ${sample.fibers} fibers, ${sample.connections} connections, ${operations} calls`)
    }
    while ((performance.now() - started) / 1_000 < seconds) {
      await sleep(sampleEvery * 1_000)
      await take()
    }
    const unsettled = await load.stop(5_000)
    await Promise.all([churner.stop(), ...visitors.map((v) => v.stop())])
    const evictions = db.tenantStats().evictions

    const steady = samples.filter((s) => s.t >= warmupSeconds)
    const warm = samples.filter((s) => s.t < warmupSeconds)
    const series = (Object.keys(bounds) as Array<Series>).map((name): SeriesFigures => {
      const ys = steady.map((s) => s[name])
      const reached = Math.max(...warm.map((s) => s[name]))
      const line = fit(steady.map((s) => s.t / 60), ys)
      return {
        name,
        slopePerMinute: line.slope,
        slopeError: line.error,
        slopeBound: bounds[name].slope,
        first: ys[0] ?? Number.NaN,
        last: ys.at(-1) ?? Number.NaN,
        max: Math.max(...ys),
        ceiling: bounds[name].ceiling(reached)
      }
    })
    const failed = Object.values(failures).reduce((a, b) => a + b, 0)
    const checks = [
      check("samples after the warm-up: at least 5", steady.length >= 5, steady.length),
      // Growing means a slope above the bound by more than twice its standard error: a short run's noise alone
      // does not fail it, a leak that outgrows the noise does. Shrinking is never a failure.
      ...series.map((s) =>
        check(
          `${s.name}: ${[
            Number.isFinite(s.slopeBound) && `not growing faster than ${s.slopeBound}${bounds[s.name].unit && ` ${bounds[s.name].unit}`}/min`,
            Number.isFinite(s.ceiling) && `max ≤ ${fmt(s.ceiling)}`
          ].filter(Boolean).join(", ")}`,
          s.slopePerMinute - 2 * s.slopeError <= s.slopeBound && s.max <= s.ceiling,
          `${s.slopePerMinute.toFixed(3)} ± ${s.slopeError.toFixed(3)}/min, max ${fmt(s.max)}`
        )
      ),
      check("failed calls: 0", failed === 0, failed),
      check("calls unsettled at the end: 0", unsettled === 0, unsettled),
      check("unhandled rejections: 0", teardown.unhandled === 0, teardown.unhandled),
      check("removed middleware saw no call", churn.middlewareAfterRemoval === 0, churn.middlewareAfterRemoval),
      check("unregistered databases no longer listed", churn.unregisteredStillListed === 0, churn.unregisteredStillListed),
      check("churn happened: databases registered and tenants evicted", churn.registered > 0 && evictions > 0, `${churn.registered} registered, ${evictions} evictions`),
      check(`resident tenants never above maxClients (${MAX_TENANT_CLIENTS})`, churn.maxResident <= MAX_TENANT_CLIENTS, churn.maxResident)
    ]
    return {
      seconds: (performance.now() - started) / 1_000,
      sampleEvery,
      warmupSeconds,
      operations,
      failures,
      maxCallMs,
      churn: { ...churn, evictions },
      unhandledRejections: teardown.unhandled,
      samples,
      series,
      checks
    }
  } finally {
    await teardown.close()
  }
}

const fmt = (x: number) => (Number.isFinite(x) ? (Number.isInteger(x) ? String(x) : x.toFixed(1)) : "—")
const int = (n: number) => n.toLocaleString("en-US")

export const report = (f: SoakFigures, command: string) => [
  `Run ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC on ${machine()}: \`${command}\`.`,
  "",
  ...table([
    ["duration / sample every / warm-up left out", `${(f.seconds / 60).toFixed(1)} min / ${f.sampleEvery} s / ${f.warmupSeconds.toFixed(0)} s`],
    ["operations (failed)", `${int(f.operations)} (${int(Object.values(f.failures).reduce((a, b) => a + b, 0))})`],
    ["databases registered and unregistered", int(f.churn.registered)],
    ["middleware added and removed (calls seen after removal)", `${int(f.churn.middlewareAdded)} (${f.churn.middlewareAfterRemoval})`],
    ["tenant visits / evictions / most resident", `${int(f.churn.tenantCalls)} / ${int(f.churn.evictions)} / ${f.churn.maxResident} of ${MAX_TENANT_CLIENTS}`],
    ["unhandled rejections", int(f.unhandledRejections)]
  ]),
  "",
  "| series | after warm-up: first → last | max (ceiling) | slope per minute ± standard error (bound) |",
  "| --- | --- | --- | --- |",
  ...f.series.map((s) =>
    `| ${s.name} | ${fmt(s.first)} → ${fmt(s.last)} | ${fmt(s.max)} (${fmt(s.ceiling)}) | ${s.slopePerMinute.toFixed(3)} ± ${s.slopeError.toFixed(3)} (${Number.isFinite(s.slopeBound) ? s.slopeBound : "reported"}) |`
  ),
  "",
  ...f.checks.map((c) => `- ${c.ok ? "✓" : "✗"} ${c.name} — ${c.found}`)
]

const main = async () => {
  const minutes = flag("minutes", 10)
  const seconds = minutes * 60
  // Each minute for long runs, more often for short ones: enough points after the warm-up for a slope.
  const sampleEvery = flag("sample-every", Math.min(60, Math.max(3, Math.round(seconds / 40))))
  const figures = await runSoak({ seconds, sampleEvery, log: (line) => console.error(line) })
  const lines = report(figures, `npm run soak -- --minutes ${minutes}`)
  if (has("json")) console.log(JSON.stringify(figures, null, 2))
  else console.log(lines.join("\n"))
  if (!has("no-write")) writeReliability("soak", lines)
  process.exit(figures.checks.every((c) => c.ok) ? 0 : 1)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((error: unknown) => {
    console.error(error)
    process.exit(1)
  })
}
