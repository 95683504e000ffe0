/**
 * Runs a Prisma command for several databases: in parallel with bounded concurrency (captured output, progress
 * lines, a summary table), or one at a time with the terminal attached (interactive commands).
 */
import type { CommandExecutor } from "@effect/platform/CommandExecutor"
import { Console, Effect } from "effect"
import { redact } from "../src/index.js"
import { CliError } from "./error.js"
import type { GenerateState } from "./prisma.js"
import { generateState, invocation, recordGenerated, runPrisma, schemaEngineAvailable } from "./prisma.js"
import type { Project } from "./project.js"

export interface AcrossOptions {
  readonly command: ReadonlyArray<string>
  readonly extra: ReadonlyArray<string>
  /** The command talks to the database: a missing URL fails that database. */
  readonly needsUrl: boolean
  /** One database at a time with the terminal attached (migrate dev, migrate reset, db push). */
  readonly interactive: boolean
  readonly json: boolean
  readonly concurrency: number
  /**
   * `generate`: skip a database whose last successful generate was made from what it would be made from now (and
   * whose output is still there), unless `force`; record each successful one.
   */
  readonly incremental?: { readonly force: boolean } | undefined
}

export interface Result {
  readonly database: string
  readonly ok: boolean
  readonly code: number
  readonly ms: number
  readonly error?: string
  readonly output?: string
  /** Skipped: nothing changed since its last successful generate. */
  readonly upToDate?: boolean
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`

const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd()).join("\n")
}

/** The progress lines every command that runs per database prints (none with `--json`: stdout is the document). */
export const progressLine = (json: boolean) => (line: string) => json ? Effect.void : Console.log(line)
export const startedLine = (name: string, label: string) => `  … ${name}: ${label}`
export const finishedLine = (name: string, ok: boolean, detail: string) => `  ${ok ? "✔" : "✘"} ${name} (${detail})`

/**
 * What makes a failed run work here when Prisma's schema engine is the reason: Prisma could not download it, or
 * PRISMA_SCHEMA_ENGINE_BINARY names one that does not run (the README's offline stub) and Prisma needed it.
 */
const engineHint = (project: Project, failed: ReadonlyArray<Result>): string | undefined => {
  if (failed.some((r) => /binaries\.prisma\.sh|schema-engine\.gz/.test(r.output ?? ""))) {
    return `Prisma could not download its schema engine. generate, validate and format never run it: point ` +
      `PRISMA_SCHEMA_ENGINE_BINARY at a stub that exits 1 (the README's "Offline"); for migrations use --in-process.`
  }
  if (failed.some((r) => /Schema engine (?:exited|error)/i.test(r.output ?? "")) && !schemaEngineAvailable(project)) {
    return `Prisma's schema engine is not available here (PRISMA_SCHEMA_ENGINE_BINARY names one that does not run). ` +
      `npx flexidb migrate deploy|status|resolve --in-process (and with --tenants <module>) work without it; ` +
      `migrate dev, diff and db push need the real engine.`
  }
  return undefined
}

/** Prints what a human reads: each database's Prisma output (never interleaved), the table and a verdict. */
const report = (project: Project, label: string, results: ReadonlyArray<Result>, failed: ReadonlyArray<Result>) =>
  Effect.gen(function*() {
    // Failures' output to stderr.
    for (const r of results) {
      const text = r.output?.trim()
      if (!text) continue
      const block = `\n── ${r.database} ${"─".repeat(Math.max(3, 40 - r.database.length))}\n${text}`
      yield* r.ok ? Console.log(block) : Console.error(block)
    }
    yield* Console.log(`\n${table([
      ["database", "result", "time"],
      ...results.map((r) => [
        r.database,
        r.upToDate ? "up to date" : r.ok ? "ok" : r.error ? "not run" : `failed (exit ${r.code})`,
        r.upToDate ? "" : seconds(r.ms)
      ])
    ])}`)
    const hint = engineHint(project, failed)
    if (hint !== undefined) yield* Console.error(`\n${hint}`)
    const skipped = results.filter((r) => r.upToDate).length
    yield* Console.log(
      failed.length === 0
        ? `\n${label}: ${results.length} database${results.length === 1 ? "" : "s"} ok` +
          (skipped > 0 ? ` (${skipped === results.length ? "all" : skipped} up to date)` : "")
        : `\n${label} failed for ${failed.map((r) => r.database).join(", ")}`
    )
  })

/**
 * Runs the command for each database and reports. Fails with a CliError (already reported) when any database
 * failed: exit 1, or Prisma's own exit code when only one database ran.
 */
export const runAcross = (
  project: Project,
  names: ReadonlyArray<string>,
  options: AcrossOptions
): Effect.Effect<void, CliError, CommandExecutor> =>
  Effect.gen(function*() {
    const label = `prisma ${options.command.join(" ")}`
    const progress = progressLine(options.json)
    const incremental = options.incremental
    const prepare = (name: string) =>
      Effect.gen(function*() {
        // Read before the run: a schema saved while Prisma generates is not recorded as generated.
        const state: GenerateState | undefined = incremental === undefined
          ? undefined
          : yield* generateState(project, name, options.extra)
        if (state?.upToDate && !incremental!.force) return { state, run: undefined }
        return { state, run: yield* invocation(project, name, options.command, options.extra, options.needsUrl) }
      })
    const one = (name: string): Effect.Effect<Result, never, CommandExecutor> =>
      prepare(name).pipe(Effect.matchEffect({
        // This database cannot run (no URL, a schema Prisma would refuse): the others still do.
        onFailure: (error) =>
          progress(`  ✘ ${name}: ${error.message}`).pipe(
            Effect.as({ database: name, ok: false, code: 1, ms: 0, error: error.message })
          ),
        onSuccess: ({ run, state }) =>
          Effect.gen(function*() {
            if (run === undefined) {
              yield* progress(finishedLine(name, true, "up to date"))
              return { database: name, ok: true, code: 0, ms: 0, upToDate: true }
            }
            yield* progress(options.interactive ? `\n▸ ${name}: ${label}` : startedLine(name, label))
            const outcome = yield* runPrisma(run, options.interactive)
            const ok = outcome.code === 0
            yield* progress(finishedLine(name, ok, ok ? seconds(outcome.ms) : `exit ${outcome.code}`))
            if (ok && state !== undefined) yield* recordGenerated(project, state)
            // Prisma can echo a connection string in an error: what flexidb prints never carries credentials.
            return { database: name, ok, code: outcome.code, ms: outcome.ms, ...(!options.interactive && { output: redact(outcome.output) }) }
          })
      }))
    // Interactive commands share one terminal: one database at a time.
    const results = yield* Effect.forEach(names, one, {
      concurrency: options.interactive ? 1 : options.concurrency
    })
    const failed = results.filter((r) => !r.ok)

    if (options.json) yield* Console.log(JSON.stringify({ command: label, ok: failed.length === 0, results }, null, 2))
    else yield* report(project, label, results, failed)

    if (failed.length > 0) {
      return yield* new CliError(`${label} failed for ${failed.map((r) => r.database).join(", ")}`, {
        // One database: Prisma's own exit code reaches the caller. Several: 1.
        exitCode: results.length === 1 ? results[0]!.code : 1,
        reported: true
      })
    }
  })
