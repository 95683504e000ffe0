/**
 * Runs a Prisma command for several databases: in parallel with bounded concurrency (captured output, progress
 * lines, a summary table), or one at a time with the terminal attached (interactive commands).
 */
import type { CommandExecutor } from "@effect/platform/CommandExecutor"
import { Console, Effect } from "effect"
import { redact } from "../src/index.js"
import { CliError } from "./error.js"
import { invocation, runPrisma } from "./prisma.js"
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
}

export interface Result {
  readonly database: string
  readonly ok: boolean
  readonly code: number
  readonly ms: number
  readonly error?: string
  readonly output?: string
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`

const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd()).join("\n")
}

/** Prints what a human reads: each database's Prisma output (never interleaved), the table and a verdict. */
const report = (label: string, results: ReadonlyArray<Result>, failed: ReadonlyArray<Result>) =>
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
      ...results.map((r) => [r.database, r.ok ? "ok" : r.error ? "not run" : `failed (exit ${r.code})`, seconds(r.ms)])
    ])}`)
    yield* Console.log(
      failed.length === 0
        ? `\n${label}: ${results.length} database${results.length === 1 ? "" : "s"} ok`
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
    const progress = (line: string) => options.json ? Effect.void : Console.log(line)
    const one = (name: string): Effect.Effect<Result, never, CommandExecutor> =>
      invocation(project, name, options.command, options.extra, options.needsUrl).pipe(Effect.matchEffect({
        // This database cannot run (no URL, a schema that does not parse): the others still do.
        onFailure: (error) =>
          progress(`  ✘ ${name}: ${error.message}`).pipe(
            Effect.as({ database: name, ok: false, code: 1, ms: 0, error: error.message })
          ),
        onSuccess: (run) =>
          Effect.gen(function*() {
            yield* progress(options.interactive ? `\n▸ ${name}: ${label}` : `  … ${name}: ${label}`)
            const outcome = yield* runPrisma(run, options.interactive)
            const ok = outcome.code === 0
            yield* progress(`  ${ok ? "✔" : "✘"} ${name} (${ok ? seconds(outcome.ms) : `exit ${outcome.code}`})`)
            // Prisma can echo a connection string in an error: what flexidb prints never carries credentials.
            return { database: name, ok, code: outcome.code, ms: outcome.ms, ...(!options.interactive && { output: redact(outcome.output) }) }
          })
      }))
    // Interactive commands share one terminal: one database at a time.
    const results = yield* Effect.forEach(names, one, {
      concurrency: options.interactive ? 1 : Math.max(1, options.concurrency)
    })
    const failed = results.filter((r) => !r.ok)

    if (options.json) yield* Console.log(JSON.stringify({ command: label, ok: failed.length === 0, results }, null, 2))
    else yield* report(label, results, failed)

    if (failed.length > 0) {
      return yield* new CliError(`${label} failed for ${failed.map((r) => r.database).join(", ")}`, {
        // One database: Prisma's own exit code reaches the caller. Several: 1.
        exitCode: results.length === 1 ? results[0]!.code : 1,
        reported: true
      })
    }
  })
