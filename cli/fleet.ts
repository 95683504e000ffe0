/**
 * The in-process migrate: flexidb/migrate run on many databases at once, without Prisma. Bounded concurrency (one
 * run per database: the targets are checked for that before), a live progress line on a terminal or plain lines
 * otherwise (stderr), then a table or one JSON document (stdout). By default the first failure stops new databases
 * from starting (those in flight finish); `continueOnFailure` goes on. Status and dry runs read only, and read all.
 */
import { Console, Effect, Fiber, Schedule } from "effect"
import { existsSync } from "node:fs"
import { redact } from "../src/index.js"
import type { FileSystem } from "@effect/platform"
import type { MigrationStatus } from "../src/migrate.js"
import { deployRefusal, fleetStatus, MigrationError, Migrator } from "../src/migrate.js"
import { CliError } from "./error.js"
import { Io, stopRequested } from "./io.js"
import type { Target } from "./targets.js"
import { tenantOf } from "./waves.js"

export type Action =
  | { readonly kind: "deploy" }
  | { readonly kind: "dry-run" }
  | { readonly kind: "status" }
  | { readonly kind: "resolve"; readonly applied?: string | undefined; readonly rolledBack?: string | undefined }

export type Outcome = "applied" | "up to date" | "no migrations" | "pending" | "resolved" | "failed" | "not attempted" | "skipped"

export interface Failure {
  readonly code: string
  readonly migration?: string | undefined
  /** The whole reason, credentials removed. */
  readonly reason: string
}

export interface Result {
  readonly name: string
  readonly outcome: Outcome
  /** deploy: what this run applied. */
  readonly applied?: ReadonlyArray<string>
  /** status, dry run: what a deploy would apply. */
  readonly pending?: ReadonlyArray<string>
  /** status, dry run: where the database stands. */
  readonly status?: MigrationStatus
  readonly error?: Failure
  /** skipped: why (a suspended tenant of the catalog). */
  readonly reason?: string
  readonly ms: number
}

export interface FleetOptions {
  /** What the table and the JSON call each database: "tenant" (`--tenants`) or "database" (`--in-process`). */
  readonly label: "tenant" | "database"
  /** "migrate deploy", "migrate status", "migrate resolve". */
  readonly command: string
  readonly concurrency: number
  readonly continueOnFailure: boolean
  readonly json: boolean
  /** For the JSON document: the schema and the tenants module, when `--tenants`. */
  readonly context?: Readonly<Record<string, string>>
}

// -----------------------------------------------------------------------------------------------------------------
// One database

const failureOf = (error: unknown): Failure => {
  if (error instanceof MigrationError) {
    return {
      code: error.code,
      ...(error.migration !== undefined && { migration: error.migration }),
      reason: redact(error.reason)
    }
  }
  const e = error as { code?: unknown; errno?: unknown }
  const code = typeof e?.code === "string"
    ? e.code
    : typeof e?.errno === "number"
    ? String(e.errno)
    : error instanceof Error
    ? error.name
    : "ERROR"
  return { code, reason: redact(error instanceof Error ? error.message : String(error)) }
}

/** A status (or dry run) read beforehand, as the status action reports it. */
const statusOutcome = (status: MigrationStatus): Omit<Result, "name" | "ms"> => {
  const refused = deployRefusal(status)
  if (refused !== undefined) return { outcome: "failed", pending: status.pending, status, error: failureOf(refused) }
  return { outcome: status.pending.length > 0 ? "pending" : "up to date", pending: status.pending, status }
}

/**
 * Status and dry run over many databases: `fleetStatus` per migrations folder — schema tenants of one PostgreSQL
 * database in a few queries over one connection, the others at most `concurrency` connections at once per server —
 * rather than one connection per database. A folder whose fleet cannot be read that way (a server down) is left to
 * the one-by-one run, which says which database failed and why.
 */
const readStatuses = (targets: ReadonlyArray<Target>, concurrency: number): Effect.Effect<Map<string, MigrationStatus>> =>
  Effect.gen(function*() {
    const known = new Map<string, MigrationStatus>()
    const byFolder = new Map<string, Array<Target>>()
    for (const t of targets) {
      if (t.problem !== undefined || t.skip !== undefined || !existsSync(t.migrations)) continue
      const list = byFolder.get(t.migrations)
      if (list === undefined) byFolder.set(t.migrations, [t])
      else list.push(t)
    }
    yield* Effect.forEach([...byFolder], ([migrations, list]) =>
      Effect.promise(() =>
        fleetStatus({ tenants: list.map(tenantOf), migrations, concurrency }).then(
          (all) => all.forEach((s, i) => known.set(list[i]!.name, s)),
          () => {}
        )
      ), { discard: true })
    return known
  })

/** Runs the action on one database; never fails: a failure (or a defect) is its outcome. */
const attempt = (target: Target, action: Action): Effect.Effect<Omit<Result, "name" | "ms">, never, FileSystem.FileSystem> => {
  if (target.problem !== undefined) return Effect.succeed({ outcome: "failed", error: target.problem })
  if (target.skip !== undefined) return Effect.succeed({ outcome: "skipped", reason: target.skip })
  // A schema without a migrations folder (db push, or none yet) has nothing to deploy, as doctor says.
  if (action.kind !== "resolve" && !existsSync(target.migrations)) {
    return Effect.succeed({ outcome: "no migrations", applied: [], pending: [] })
  }
  const options = { url: target.url, migrations: target.migrations, ...(target.schema !== undefined && { schema: target.schema }) }
  const run: Effect.Effect<Omit<Result, "name" | "ms">, Migrator.Failure, FileSystem.FileSystem> = (() => {
    switch (action.kind) {
      case "deploy":
        return Effect.map(Migrator.deploy(options), ({ applied }) => ({ outcome: applied.length > 0 ? "applied" : "up to date", applied }))
      case "dry-run":
      case "status":
        // Only reads: a SQLite file that is not there yet has everything pending, and is not created.
        return Effect.map(Migrator.status(options), statusOutcome)
      case "resolve":
        return Effect.as(Migrator.resolve({ ...options, applied: action.applied, rolledBack: action.rolledBack }), { outcome: "resolved" })
    }
  })()
  return run.pipe(
    Effect.catchAll((e) => Effect.succeed({ outcome: "failed" as const, error: failureOf(e._tag === "DriverError" ? e.cause : e) })),
    Effect.catchAllDefect((d) => Effect.succeed({ outcome: "failed" as const, error: failureOf(d) }))
  )
}

// -----------------------------------------------------------------------------------------------------------------
// What the user reads

/** The first line of a reason, and of that its first sentence: what fits in a table cell. */
const firstLineOf = (text: string) => {
  const line = text.split("\n").map((l) => l.trim()).find((l) => l !== "") ?? ""
  const sentence = /^.+?\.(?=\s+[A-Z])/.exec(line)?.[0] ?? line
  return sentence.length > 160 ? `${sentence.slice(0, 159)}…` : sentence
}

/** A failure in one line: the code, the migration, and the database's own error when a script failed. */
export const headline = (error: Failure) => {
  const detail = error.code === "P3018" ? /Database error:\n([\s\S]*)$/.exec(error.reason)?.[1] ?? error.reason : error.reason
  return `${error.code}${error.migration === undefined ? "" : ` ${error.migration}`}: ${firstLineOf(detail)}`
}

const names = (list: ReadonlyArray<string> | undefined) => {
  const all = list ?? []
  const shown = all.length > 4 ? [...all.slice(0, 3), `… ${all.length - 3} more`] : all
  return `${all.length} (${shown.join(", ")})`
}

const describe = (r: Result, action: Action): string => {
  switch (r.outcome) {
    case "applied":
      return `applied ${names(r.applied)}`
    case "pending":
      return `${action.kind === "dry-run" ? "would apply" : "pending"} ${names(r.pending)}`
    case "resolved":
      return action.kind === "resolve" && action.applied !== undefined
        ? `resolved: ${action.applied} recorded as applied`
        : `resolved: ${action.kind === "resolve" ? action.rolledBack : ""} marked rolled back`
    case "failed":
      return `failed (${headline(r.error!)})`
    case "no migrations":
      return "no migrations: nothing to deploy"
    case "skipped":
      return `skipped (${r.reason})`
    default:
      return r.outcome
  }
}

const time = (ms: number) => (ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`)
const duration = (seconds: number) =>
  seconds < 60
    ? `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`
    : `${Math.floor(seconds / 60)}m${String(Math.floor(seconds % 60)).padStart(2, "0")}s`

const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd()).join("\n")
}

interface Counts {
  ok: number
  failed: number
  skipped: number
  running: number
}

/**
 * Progress on stderr: on a terminal one line redrawn in place (done, failed, pending, rate, ETA); otherwise a plain
 * line at each tenth of the way and at least every 5 seconds. Failures get a line of their own as they happen. With
 * `--json`, nothing but the terminal's live line, erased at the end.
 */
const progress = (io: Io, command: string, total: number, counts: Counts, started: number, json: boolean) => {
  const render = () => {
    const finished = counts.ok + counts.failed
    const seconds = Math.max(0.001, (Date.now() - started) / 1000)
    const rate = finished / seconds
    const pending = total - finished - counts.skipped
    return [
      `${command}: ${counts.ok} done`,
      `${counts.failed} failed`,
      `${pending} pending`,
      ...(counts.skipped > 0 ? [`${counts.skipped} not attempted`] : []),
      `${rate.toFixed(1)}/s`,
      ...(pending > 0 && rate > 0 ? [`ETA ${duration(pending / rate)}`] : [])
    ].join(" · ")
  }
  let lastLine = Date.now()
  let lastStep = 0
  // With --json stdout is the document and stderr stays empty: only a terminal's live line, erased at the end.
  const plain = () => {
    lastLine = Date.now()
    if (!json) io.err(render())
  }
  return {
    /**
     * Fork it, interrupt it at the end: on a terminal the live line's redraw loop; otherwise a plain line when none
     * was written for 5 seconds (slow databases).
     */
    live: io.live === undefined
      ? Effect.repeat(Effect.sync(() => Date.now() - lastLine >= 5000 && plain()), Schedule.spaced("1 second")).pipe(Effect.asVoid)
      : Effect.repeat(Effect.sync(() => io.live!.update(render())), Schedule.spaced("100 millis")).pipe(Effect.asVoid),
    finished: () => {
      if (io.live !== undefined) return
      const step = Math.floor(((counts.ok + counts.failed) * 10) / total)
      if (step > lastStep) {
        lastStep = step
        plain()
      }
    },
    say: (line: string) => {
      if (json) return
      io.live?.clear()
      io.err(line)
    },
    end: () => {
      if (io.live === undefined) return
      io.live.clear()
      if (!json) io.err(render())
    }
  }
}

// -----------------------------------------------------------------------------------------------------------------
// The run

/**
 * Runs `action` on every target and reports. Fails with a CliError, already reported, when a database failed (exit
 * 1), when a status finds migrations to apply (exit 1, as `prisma migrate status`), or when the user stopped it (exit
 * 130, after the databases in flight finished).
 */
export const runFleet = (
  targets: ReadonlyArray<Target>,
  action: Action,
  options: FleetOptions
): Effect.Effect<void, CliError, Io | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const io = yield* Io
    const started = Date.now()
    const counts: Counts = { ok: 0, failed: 0, skipped: 0, running: 0 }
    let stop: "failure" | "user" | undefined
    const stopsOnFailure = (action.kind === "deploy" || action.kind === "resolve") && !options.continueOnFailure
    const report = progress(io, options.command, targets.length, counts, started, options.json)
    const inFlight = () => counts.running
    const live = yield* Effect.fork(report.live)
    // Ctrl+C: no database starts after it; those in flight finish (a migration is not cut in the middle).
    const userStop = () => {
      if (stop !== undefined) return
      stop = "user"
      const waiting = inFlight()
      report.say(
        `stopping: no new ${options.label} starts` + (waiting > 0 ? `, ${waiting} in flight finish` : "") +
          ` (Ctrl+C again ends at once)`
      )
    }
    const watcher = yield* Effect.fork(Effect.zipRight(stopRequested, Effect.sync(userStop)))

    // Targets behind one lock (a server's MySQL lock, a database's PostgreSQL schemas) take turns: waiting for each
    // other in the database, the last would time out (P1002) behind the others.
    const sharing = new Map<string, number>()
    for (const t of targets) sharing.set(t.lock, (sharing.get(t.lock) ?? 0) + 1)
    const turns = new Map<string, Effect.Semaphore>()
    for (const [lock, n] of sharing) if (n > 1) turns.set(lock, Effect.unsafeMakeSemaphore(1))

    // Status and dry run: read for the whole fleet at once, not one connection per database.
    const known = action.kind === "status" || action.kind === "dry-run"
      ? yield* readStatuses(targets, options.concurrency)
      : new Map<string, MigrationStatus>()

    const one = (target: Target) => {
      const body = Effect.suspend((): Effect.Effect<Result, never, FileSystem.FileSystem> => {
        if (io.signal?.aborted) userStop()
        if (stop !== undefined) {
          counts.skipped++
          return Effect.succeed({ name: target.name, outcome: "not attempted", ms: 0 })
        }
        const t0 = performance.now()
        counts.running++
        const read = known.get(target.name)
        return Effect.map(read === undefined ? attempt(target, action) : Effect.succeed(statusOutcome(read)), (r): Result => {
          counts.running--
          const result: Result = { name: target.name, ...r, ms: Math.round(performance.now() - t0) }
          if (r.outcome === "failed") {
            counts.failed++
            report.say(`  ✘ ${target.name}: ${headline(r.error!)}`)
            if (stopsOnFailure && stop === undefined) {
              stop = "failure"
              const waiting = inFlight()
              report.say(
                `stopping after this failure: no new ${options.label} starts` +
                  (waiting > 0 ? `, ${waiting} in flight finish` : "") + ` (--continue keeps going)`
              )
            }
          } else {
            counts.ok++
          }
          report.finished()
          return result
        })
      })
      const turn = turns.get(target.lock)
      return turn === undefined ? body : turn.withPermits(1)(body)
    }
    const results = yield* Effect.forEach(targets, one, { concurrency: options.concurrency })
    yield* Fiber.interrupt(watcher)
    yield* Fiber.interrupt(live)
    report.end()
    const ms = Date.now() - started

    const tally = (o: Outcome) => results.filter((r) => r.outcome === o).length
    const summary = {
      applied: tally("applied"),
      upToDate: tally("up to date"),
      noMigrations: tally("no migrations"),
      pending: tally("pending"),
      resolved: tally("resolved"),
      failed: tally("failed"),
      skipped: tally("skipped"),
      notAttempted: tally("not attempted")
    }
    const failed = results.filter((r) => r.outcome === "failed")
    const notUpToDate = action.kind === "status" ? results.filter((r) => r.outcome === "pending") : []
    const ok = failed.length === 0 && notUpToDate.length === 0 && stop === undefined

    if (options.json) {
      yield* Console.log(JSON.stringify({
        command: options.command,
        ...options.context,
        ...(action.kind === "dry-run" && { dryRun: true }),
        ...(action.kind === "resolve" && {
          resolve: action.applied !== undefined ? { applied: action.applied } : { rolledBack: action.rolledBack }
        }),
        ok,
        stopped: stop ?? null,
        ms,
        summary,
        results: results.map(({ name, ...rest }) => ({ [options.label]: name, ...rest }))
      }, null, 2))
    } else {
      yield* Console.log(table([
        [options.label, "outcome", "time"],
        ...results.map((r) => [r.name, describe(r, action), r.outcome === "not attempted" ? "" : time(r.ms)])
      ]))
      const parts = [
        summary.applied > 0 && `${summary.applied} applied`,
        summary.upToDate > 0 && `${summary.upToDate} up to date`,
        summary.noMigrations > 0 && `${summary.noMigrations} without migrations`,
        summary.pending > 0 && `${summary.pending} ${action.kind === "dry-run" ? "with migrations to apply" : "pending"}`,
        summary.resolved > 0 && `${summary.resolved} resolved`,
        summary.failed > 0 && `${summary.failed} failed`,
        summary.skipped > 0 && `${summary.skipped} skipped`,
        summary.notAttempted > 0 && `${summary.notAttempted} not attempted`
      ].filter((p) => p !== false)
      const plural = `${options.label}${results.length === 1 ? "" : "s"}`
      yield* Console.log(
        `\n${options.command}${action.kind === "dry-run" ? " (dry run: nothing changed)" : ""}: ` +
          `${results.length} ${plural} in ${duration(ms / 1000)}: ${parts.join(", ")}`
      )
    }

    if (stop === "user") return yield* new CliError("stopped", { exitCode: 130, reported: true })
    if (failed.length > 0 || notUpToDate.length > 0) {
      const which = (list: ReadonlyArray<Result>) =>
        `${list.slice(0, 10).map((r) => r.name).join(", ")}${list.length > 10 ? ` and ${list.length - 10} more` : ""}`
      return yield* new CliError(
        failed.length > 0
          ? `${options.command} failed for ${which(failed)}`
          : `${options.command}: migrations to apply for ${which(notUpToDate)}`,
        // With --json the document says it all: nothing more on stderr.
        { reported: true }
      )
    }
  })
