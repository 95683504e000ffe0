// npm run chaos [-- --cycles N] [--json] [--property-runs N] [--no-write]
//
// PostgreSQL and MariaDB behind the TCP fault proxy and an untouched SQLite database, under a steady load of 32
// workers writing rows with unique keys and reading through get() and batch(), while every cycle drops all
// connections, refuses new ones, hangs, adds 200 ms of latency, and restores after each. Then the databases
// themselves are read around the proxy: every acknowledged write must be there, and every failed write that is
// there must have said its outcome was unknown. Exit code 1 when a check fails. test/reliability.test.ts runs
// runChaos() with 10 cycles and the same checks.
import { spawnSync } from "node:child_process"
import { readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { pathToFileURL } from "node:url"
import { createFlexiDB } from "../src/index.js"
import * as prisma7 from "../test/fixtures/prisma7/clients.ts"
import type { TestDatabase } from "../test/support/databases.js"
import { createDatabase } from "../test/support/databases.js"
import { clientVia } from "../test/support/prisma.js"
import { FaultProxy } from "../test/support/proxy.js"
import type { AnyClient, Check } from "./reliability-load.js"
import {
  check,
  codeOf,
  createMemorySqlite,
  flag,
  has,
  Load,
  LoopLag,
  machine,
  quantile,
  settleServers,
  table,
  Teardown,
  writeReliability,
} from "./reliability-load.js"
import type { Phase, PhaseKind } from "./reliability-tally.js"
import { bump, storedEmails, Tally } from "./reliability-tally.js"

export interface ChaosOptions {
  readonly cycles: number
  readonly workers?: number
  /** Each worker starts a call at most this often. */
  readonly periodMs?: number
  readonly operationTimeout?: number
  readonly reconnectInterval?: number
  /** The fault-free phase first, whose SQLite latency the chaos phase is held to. */
  readonly baselineSeconds?: number
  readonly log?: (line: string) => void
}

/** How long each fault is held, with the load running. Long enough for the circuit to open and calls to time out. */
const hold = { drop: 500, refuse: 1_200, hang: 1_500, latency: 1_000 } as const
const LATENCY_MS = 200
/** A call may end this long after operationTimeout: the timer's own delay on a busy event loop. */
const TIMEOUT_SLACK_MS = 50
/**
 * A reconnect attempt runs at most one interval after the last; once the server is back, the attempt's own connect
 * and SELECT 1 take this long at most here.
 */
const ATTEMPT_MS = 100

/**
 * MariaDB pool timeouts short enough that a refused server fails a query at once, and a connection retried every
 * 500 ms throughout an outage (README: Reliability).
 */
const poolTimeouts = { connect: 500, acquire: 1000, initialization: 3_600_000 }

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export interface ChaosFigures {
  readonly cycles: number
  readonly seconds: number
  readonly operations: number
  readonly settings: { readonly workers: number; readonly periodMs: number; readonly operationTimeout: number; readonly reconnectInterval: number }
  readonly writes: {
    readonly attempted: number
    readonly acknowledged: number
    readonly failed: number
    readonly failedFlaggedUnknown: number
    /** Failed writes whose error had no boolean `outcomeUnknown` at all. */
    readonly failedWithoutFlag: number
    readonly failedOnProxied: number
  }
  readonly lost: number
  readonly failedCommittedUnflagged: number
  readonly failedCommittedFlagged: number
  readonly pastTimeout: number
  /** Of those, calls late by no more than the event loop itself was during the call. */
  readonly pastTimeoutLoopStalled: number
  readonly slowest: ReadonlyArray<string>
  readonly maxCallMs: number
  readonly unsettledCalls: number
  readonly unhandledRejections: number
  readonly sqlite: {
    readonly calls: number
    readonly failures: number
    readonly baselineP99: number
    readonly chaosP99: number
    readonly ratio: number
  }
  /** Per database, the pure connection drops after which its circuit was not closed. */
  readonly dropsOpenedCircuit: Record<string, number>
  readonly dropReads: { readonly total: number; readonly failed: number; readonly failedBy: Record<string, number> }
  readonly recovery: { readonly samples: number; readonly p50: number; readonly p99: number; readonly max: number; readonly never: number; readonly slowest: Record<string, number> }
  /** Errors from the proxied databases by code, the whole run. */
  readonly errors: Record<string, number>
  readonly baselineFailures: number
  readonly eventLoopDelay: Record<"baseline" | "chaos", { readonly p99: number; readonly max: number }>
  readonly checks: ReadonlyArray<Check>
}

export const runChaos = async (options: ChaosOptions): Promise<ChaosFigures> => {
  const workers = options.workers ?? 32
  const periodMs = options.periodMs ?? 100
  const operationTimeout = options.operationTimeout ?? 1_000
  const reconnectInterval = options.reconnectInterval ?? 1_000
  const baselineSeconds = options.baselineSeconds ?? 10
  const log = options.log ?? (() => {})
  const bound = operationTimeout + TIMEOUT_SLACK_MS

  // Undone in reverse order, whatever happens: the instance, then the proxies, then the databases.
  const teardown = new Teardown(log)
  const lag = new LoopLag()
  // The event loop's own delay, reported beside the calls' times: what the whole process went through.
  const loop = { baseline: monitorEventLoopDelay({ resolution: 5 }), chaos: monitorEventLoopDelay({ resolution: 5 }) }
  try {
    const pgDb = await createDatabase("postgresql")
    teardown.add(() => pgDb.drop())
    const myDb = await createDatabase("mysql")
    teardown.add(() => myDb.drop())
    const liteDb = await createMemorySqlite()
    teardown.add(() => liteDb.drop())
    const pgProxy = await FaultProxy.start(5432)
    const myProxy = await FaultProxy.start(3306)
    teardown.add(() => Promise.all([pgProxy.close(), myProxy.close()]))
    const proxies = [pgProxy, myProxy]
    const proxied = ["postgres", "mariadb"] as const
    const names = [...proxied, "sqlite"] as const

    const db = createFlexiDB<Record<string, AnyClient>>({
      postgres: clientVia(pgDb, pgProxy.port, poolTimeouts),
      mariadb: clientVia(myDb, myProxy.port, poolTimeouts),
      sqlite: prisma7.sqlite(liteDb.url)
    }, {
      gracefulShutdown: false,
      // Hundreds of status changes: the figures say what happened, not a line per change on stderr.
      logger: false,
      operationTimeout,
      retry: { attempts: 3, delay: 200 },
      reconnect: { interval: reconnectInterval, maxAttempts: 1_000 },
      healthCheck: { interval: reconnectInterval, timeout: 500 },
      circuitBreaker: { threshold: 5, resetTimeout: 5_000 }
    })
    teardown.add(() => db.disconnect())
    const ready = await db.ready()
    if (!Object.values(ready).every(Boolean)) throw new Error(`not every database connected: ${JSON.stringify(ready)}`)

    // One of each call on each client before the load: Prisma compiles its query engine and each query's plan on
    // first use, a synchronous pause of the whole event loop that would otherwise land in the first second of load.
    // On a starved machine a first call (its plan compiled) can outlast the 1 s timeout: such a call is tried again.
    const warm = async (call: (attempt: number) => PromiseLike<unknown>) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await call(attempt)
        } catch (error) {
          if (attempt === 5 || (error as { code?: string }).code !== "FLEXIDB_OPERATION_TIMEOUT") throw error
        }
      }
    }
    for (const name of names) {
      const client = db.get(name)
      await warm((attempt) => client.user.create({ data: { email: `warmup-${name}-${attempt}@chaos.test` } }))
      await warm(() => client.user.findUnique({ where: { email: `warmup-${name}-1@chaos.test` } }))
      await warm(() => client.user.findMany({ take: 3, orderBy: { id: "desc" } }))
      await warm(() => client.user.findFirst({ select: { id: true } }))
      await warm(() => client.$queryRaw`SELECT 1 AS one`)
    }
    await warm(() => db.batch(Object.fromEntries(names.map((n) => [n, (c: AnyClient) => c.user.findFirst()]))))

    await settleServers()
    let phase: Phase = { kind: "baseline", cycle: 0 }
    const tally = new Tally({ names, proxied, operationTimeout, bound, lag, phase: () => phase, log })
    const dropsOpenedCircuit: Record<string, number> = {}

    /** Time from a restore until a query through flexidb succeeds again; Infinity if not within 10 intervals. */
    const timeToServe = async (name: string, fault: PhaseKind) => {
      const start = performance.now()
      const seen: Array<string> = []
      const done = (ms: number) => {
        // A slow recovery says how it went: what each probe met.
        if (ms > reconnectInterval) log(`slow recovery: ${name} after ${fault}, ${fmt(ms)} ms: ${seen.join(", ")}`)
        return ms
      }
      while (performance.now() - start < 10 * reconnectInterval) {
        const t = performance.now()
        try {
          await db.get(name).user.findFirst({ select: { id: true } })
          tally.timed(`probe ${name}`, performance.now() - t, undefined)
          return done(performance.now() - start)
        } catch (error) {
          tally.timed(`probe ${name}`, performance.now() - t, error)
          const code = `${Math.round(t - start)}:${codeOf(error)}`
          if (seen.at(-1)?.split(":")[1] !== codeOf(error)) seen.push(code)
          await sleep(10)
        }
      }
      return done(Number.POSITIVE_INFINITY)
    }
    const recoveries: Array<number> = []
    const slowestRecovery: Record<string, number> = {}
    const restore = async (cycle: number) => {
      const fault = phase.kind
      await Promise.all(proxies.map((p) => p.restore()))
      phase = { kind: "recover", cycle }
      const times = await Promise.all(proxied.map((name) => timeToServe(name, fault)))
      times.forEach((ms, i) => {
        const key = `${proxied[i]} after ${fault}`
        slowestRecovery[key] = Math.max(slowestRecovery[key] ?? 0, ms)
      })
      recoveries.push(...times)
    }

    const tag = `c${process.pid}${Date.now().toString(36)}`
    const started = performance.now()
    const load = new Load<Phase>({ db, databases: names, workers, periodMs, tag, phase: () => phase, onCall: tally.call })
    teardown.add(() => load.stop(3 * operationTimeout))
    loop.baseline.enable()
    await sleep(baselineSeconds * 1_000)
    loop.baseline.disable()
    loop.chaos.enable()

    for (let cycle = 1; cycle <= options.cycles; cycle++) {
      phase = { kind: "drop", cycle }
      for (const p of proxies) p.dropAll()
      await sleep(hold.drop)
      // The servers stayed up: a circuit open now was opened by the failures of calls on the dropped connections.
      const states = db.stats()
      for (const name of proxied) if (states[name]!.circuitState !== "closed") bump(dropsOpenedCircuit, name)

      phase = { kind: "refuse", cycle }
      await Promise.all(proxies.map((p) => p.refuse()))
      await sleep(hold.refuse)
      await restore(cycle)

      phase = { kind: "hang", cycle }
      for (const p of proxies) p.hang()
      await sleep(hold.hang)
      await restore(cycle)

      phase = { kind: "latency", cycle }
      for (const p of proxies) p.latency(LATENCY_MS)
      await sleep(hold.latency)
      await restore(cycle)

      log(`cycle ${cycle}/${options.cycles}: ${tally.operations} calls, ${tally.pastTimeout} past the timeout, ${tally.dropReads.failed} failed reads across drops`)
    }

    phase = { kind: "settle", cycle: options.cycles }
    const unsettledCalls = await load.stop(3 * operationTimeout)
    loop.chaos.disable()
    const seconds = (performance.now() - started) / 1_000
    // A write that timed out may still be running at the server: let it finish before looking.
    await sleep(1_000)

    const outcome = tally.verify(new Map([
      ["postgres", await storedEmails(pgDb)],
      ["mariadb", await storedEmails(myDb)],
      ["sqlite", await storedEmails(liteDb)]
    ]))
    const finite = recoveries.filter(Number.isFinite)
    const baselineP99 = quantile(tally.sqliteMs.baseline, 0.99)
    const chaosP99 = quantile(tally.sqliteMs.chaos, 0.99)
    // The faults make this process busier (errors, reconnects, the proxy): SQLite's calls share its event loop and the
    // machine's two cores. What that explains is the loop's own extra delay under chaos; a call queued behind a faulted
    // database would wait for its timeout (operationTimeout), far beyond both.
    const loopExtraP99 = Math.max(0, (loop.chaos.percentile(99) - loop.baseline.percentile(99)) / 1e6)
    const recovery = {
      samples: recoveries.length,
      p50: quantile(finite, 0.5),
      p99: quantile(finite, 0.99),
      max: Math.max(0, ...recoveries),
      never: recoveries.length - finite.length,
      slowest: slowestRecovery
    }
    const { writes, lost, failedCommittedUnflagged } = outcome
    const { pastTimeout, pastTimeoutLoopStalled, maxCallMs, sqliteFailures, dropReads, errors, baselineFailures } = tally
    const timeouts = errors.FLEXIDB_OPERATION_TIMEOUT ?? 0
    const checks = [
      // The faults must have bitten, or every other check passes for nothing.
      check("faults took effect (failed writes on the proxied databases, timeouts among them)", writes.failedOnProxied > 0 && timeouts > 0, `${writes.failedOnProxied} failed, ${timeouts} timeouts`),
      check("no failure in the fault-free baseline", baselineFailures === 0, baselineFailures),
      check("acknowledged writes lost: 0", lost === 0, lost),
      check("failed writes found committed without outcomeUnknown: 0", failedCommittedUnflagged === 0, failedCommittedUnflagged),
      check(
        `calls past operationTimeout + ${TIMEOUT_SLACK_MS} ms (${bound} ms), beyond what the machine's stalls of this process explain: 0`,
        pastTimeout - pastTimeoutLoopStalled === 0,
        `${pastTimeout - pastTimeoutLoopStalled} (${pastTimeout} in all, slowest ${Math.round(maxCallMs)} ms)`
      ),
      check("calls still unsettled at the end: 0", unsettledCalls === 0, unsettledCalls),
      check("unhandled rejections: 0", teardown.unhandled === 0, teardown.unhandled),
      check("SQLite failed calls: 0", sqliteFailures === 0, sqliteFailures),
      check(
        `SQLite p99 within 2× the baseline's beyond the event loop's own extra delay under chaos, or under a tenth of operationTimeout (${operationTimeout / 10} ms): not held by the faulted databases' timeouts`,
        chaosP99 <= Math.max(2 * baselineP99 + loopExtraP99, operationTimeout / 10),
        `${chaosP99.toFixed(1)} ms vs ${baselineP99.toFixed(1)} ms (loop p99 +${loopExtraP99.toFixed(1)} ms)`
      ),
      check("failed reads (get() and batch()) across connection drops: 0", dropReads.failed === 0, `${dropReads.failed} of ${dropReads.total}`),
      check(
        `back in service within one reconnect interval (${reconnectInterval} ms, + ${ATTEMPT_MS} ms for the attempt itself) of every restore`,
        recovery.max <= reconnectInterval + ATTEMPT_MS,
        `max ${fmt(recovery.max)} ms`
      )
    ]
    return {
      cycles: options.cycles,
      seconds,
      operations: tally.operations,
      settings: { workers, periodMs, operationTimeout, reconnectInterval },
      ...outcome,
      pastTimeout,
      pastTimeoutLoopStalled,
      slowest: tally.slowest,
      maxCallMs,
      unsettledCalls,
      unhandledRejections: teardown.unhandled,
      sqlite: { calls: tally.sqliteCalls, failures: sqliteFailures, baselineP99, chaosP99, ratio: chaosP99 / baselineP99 },
      dropReads,
      dropsOpenedCircuit,
      recovery,
      errors,
      baselineFailures,
      eventLoopDelay: {
        baseline: { p99: loop.baseline.percentile(99) / 1e6, max: loop.baseline.max / 1e6 },
        chaos: { p99: loop.chaos.percentile(99) / 1e6, max: loop.chaos.max / 1e6 }
      },
      checks
    }
  } finally {
    lag.stop()
    loop.baseline.disable()
    loop.chaos.disable()
    await teardown.close()
  }
}

const fmt = (ms: number) => (Number.isFinite(ms) ? ms.toFixed(ms < 10 ? 1 : 0) : "never")
const int = (n: number) => n.toLocaleString("en-US")
/** " (a 3, b 1)", largest first; nothing when empty. */
const breakdown = (counts: Record<string, number>, unit = "") => {
  const parts = Object.entries(counts).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${unit ? fmt(v) : int(v)}${unit}`)
  return parts.length === 0 ? "" : ` (${parts.join(", ")})`
}

export interface PropertyFigures {
  readonly runs: number
  readonly tests: ReadonlyArray<{ readonly name: string; readonly ok: boolean; readonly ms: number }>
  readonly ok: boolean
  readonly seconds: number
}

/** test/properties.test.ts in its own vitest process, each fast-check property at `runs` cases. */
export const runProperties = (runs: number): PropertyFigures => {
  const root = join(import.meta.dirname, "..")
  const out = join(tmpdir(), `flexidb-properties-${process.pid}.json`)
  const started = performance.now()
  // Its own reporter and output file: the suite's JSON report (test/.tmp/results.json) is CI's, not ours.
  const child = spawnSync(process.execPath, [
    join(root, "node_modules", "vitest", "vitest.mjs"), "run", "test/properties.test.ts",
    "--reporter=json", `--outputFile=${out}`, "--testTimeout=3600000"
  ], { cwd: root, env: { ...process.env, FLEXIDB_PROPERTY_RUNS: String(runs) }, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
  const seconds = (performance.now() - started) / 1_000
  try {
    const report = JSON.parse(readFileSync(out, "utf8")) as {
      testResults: Array<{ assertionResults: Array<{ fullName: string; status: string; duration: number }> }>
    }
    const tests = report.testResults.flatMap((f) => f.assertionResults).map((t) => ({ name: t.fullName, ok: t.status === "passed", ms: t.duration }))
    return { runs, tests, ok: child.status === 0 && tests.length > 0 && tests.every((t) => t.ok), seconds }
  } catch {
    console.error(child.stdout, child.stderr)
    return { runs, tests: [], ok: false, seconds }
  } finally {
    rmSync(out, { force: true })
  }
}

export const report = (f: ChaosFigures, properties: PropertyFigures | undefined, command: string) => [
  `Run ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC on ${machine()}: \`${command}\`.`,
  "",
  ...table([
    ["fault cycles (drop, refuse, hang, +200 ms latency, each restored)", int(f.cycles)],
    ["duration", `${f.seconds.toFixed(0)} s (${f.settings.workers} workers, a call each every ${f.settings.periodMs} ms at most)`],
    ["operations", int(f.operations)],
    ["writes attempted / acknowledged", `${int(f.writes.attempted)} / ${int(f.writes.acknowledged)}`],
    ["**acknowledged writes lost**", int(f.lost)],
    ["failed writes (with `outcomeUnknown: true`)", `${int(f.writes.failed)} (${int(f.writes.failedFlaggedUnknown)})`],
    ["failed writes found committed: flagged `outcomeUnknown` / **not flagged**", `${int(f.failedCommittedFlagged)} / ${int(f.failedCommittedUnflagged)}`],
    [`**calls past operationTimeout (${f.settings.operationTimeout} ms) + ${TIMEOUT_SLACK_MS} ms**`, `${int(f.pastTimeout)} (slowest call ${fmt(f.maxCallMs)} ms${f.pastTimeout > 0 ? `; ${int(f.pastTimeoutLoopStalled)} late by no more than the event loop was` : ""})`],
    ["**unhandled rejections**", int(f.unhandledRejections)],
    ["SQLite calls failed", `${int(f.sqlite.failures)} of ${int(f.sqlite.calls)}`],
    ["SQLite p99: chaos / fault-free baseline", `${fmt(f.sqlite.chaosP99)} ms / ${fmt(f.sqlite.baselineP99)} ms (${f.sqlite.ratio.toFixed(2)}×)`],
    ["**failed reads across connection drops** (get() and batch())", `${int(f.dropReads.failed)} of ${int(f.dropReads.total)}${breakdown(f.dropReads.failedBy)}`],
    [`recovery after a restore, p50 / p99 / max (reconnect interval ${f.settings.reconnectInterval} ms)`, `${fmt(f.recovery.p50)} / ${fmt(f.recovery.p99)} / ${fmt(f.recovery.max)} ms over ${f.recovery.samples} restores`],
    ["connection drops after which a circuit was open (servers up throughout)", `${breakdown(f.dropsOpenedCircuit).slice(2, -1) || "none"} of ${int(f.cycles)} each`],
    ["slowest recovery by database and fault", breakdown(f.recovery.slowest, " ms").slice(2, -1)],
    ["event loop delay p99 / max: chaos (baseline)", `${fmt(f.eventLoopDelay.chaos.p99)} / ${fmt(f.eventLoopDelay.chaos.max)} ms (${fmt(f.eventLoopDelay.baseline.p99)} / ${fmt(f.eventLoopDelay.baseline.max)} ms)`],
    ["errors from the proxied databases", breakdown(f.errors).slice(2, -1)],
    ...(properties === undefined ? [] : [[
      "fast-check properties (test/properties.test.ts)",
      `${properties.tests.length} tests, ${int(properties.runs)} cases per property: ${properties.ok ? "all passed" : "**FAILED**"} in ${properties.seconds.toFixed(0)} s`
    ] as const])
  ]),
  "",
  ...f.checks.map((c) => `- ${c.ok ? "✓" : "✗"} ${c.name} — ${c.found}`)
]

const main = async () => {
  const cycles = flag("cycles", 100)
  const propertyRuns = flag("property-runs", 10_000)
  const json = has("json")
  const log = (line: string) => console.error(line)
  const figures = await runChaos({ cycles, log, periodMs: flag("period-ms", 100), workers: flag("workers", 32) })
  let properties: PropertyFigures | undefined
  if (propertyRuns > 0) {
    log(`fast-check properties at ${propertyRuns} cases each…`)
    properties = runProperties(propertyRuns)
  }
  const command = `npm run chaos -- --cycles ${cycles}${propertyRuns === 10_000 ? "" : ` --property-runs ${propertyRuns}`}`
  const lines = report(figures, properties, command)
  if (json) console.log(JSON.stringify({ ...figures, properties }, null, 2))
  else console.log(lines.join("\n"))
  if (!has("no-write")) writeReliability("chaos", lines)
  const ok = figures.checks.every((c) => c.ok) && (properties?.ok ?? true)
  process.exit(ok ? 0 : 1)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((error: unknown) => {
    console.error(error)
    process.exit(1)
  })
}
