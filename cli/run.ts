/**
 * Runs a Prisma command for several databases: in parallel with bounded concurrency (captured output, progress
 * lines, a summary table), or one at a time with the terminal attached (interactive commands).
 */
import { redact } from "../src/internal/redact.js"
import type { Io } from "./io.js"
import type { Outcome } from "./prisma.js"
import { invocation, runPrisma } from "./prisma.js"
import type { Project } from "./project.js"
import { CliError } from "./project.js"

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

const pool = async <A, B>(items: ReadonlyArray<A>, limit: number, f: (a: A) => Promise<B>): Promise<Array<B>> => {
  const results: Array<B> = new Array(items.length)
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await f(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`

const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd()).join("\n")
}

/** Runs the command for each database and reports; resolves the exit code (1 if any database failed). */
export const runAcross = async (
  project: Project,
  names: ReadonlyArray<string>,
  options: AcrossOptions,
  io: Io
): Promise<number> => {
  const label = `prisma ${options.command.join(" ")}`
  const one = async (name: string): Promise<Result> => {
    let outcome: Outcome
    try {
      const run = invocation(project, name, options.command, options.extra, options.needsUrl)
      if (!options.json) io.out(options.interactive ? `\n▸ ${name}: ${label}` : `  … ${name}: ${label}`)
      outcome = await runPrisma(run, options.interactive)
    } catch (error) {
      if (!(error instanceof CliError) && !(error instanceof Error && error.name === "SchemaParseError")) throw error
      if (!options.json) io.out(`  ✘ ${name}: ${(error as Error).message}`)
      return { database: name, ok: false, code: 1, ms: 0, error: (error as Error).message }
    }
    const ok = outcome.code === 0
    if (!options.json) io.out(`  ${ok ? "✔" : "✘"} ${name} (${ok ? seconds(outcome.ms) : `exit ${outcome.code}`})`)
    // Prisma can echo a connection string in an error: what flexidb prints never carries credentials.
    return { database: name, ok, code: outcome.code, ms: outcome.ms, ...(!options.interactive && { output: redact(outcome.output) }) }
  }
  const results = options.interactive
    ? await pool(names, 1, one)
    : await pool(names, Math.max(1, options.concurrency), one)
  const failed = results.filter((r) => !r.ok)

  if (options.json) {
    io.out(JSON.stringify({ command: label, ok: failed.length === 0, results }, null, 2))
  } else {
    // Prisma's own output, one database at a time (never interleaved): failures to stderr.
    for (const r of results) {
      const text = r.output?.trim()
      if (!text) continue
      const block = `\n── ${r.database} ${"─".repeat(Math.max(3, 40 - r.database.length))}\n${text}`
      if (r.ok) io.out(block)
      else io.err(block)
    }
    io.out(`\n${table([
      ["database", "result", "time"],
      ...results.map((r) => [r.database, r.ok ? "ok" : r.error ? "not run" : `failed (exit ${r.code})`, seconds(r.ms)])
    ])}`)
    io.out(
      failed.length === 0
        ? `\n${label}: ${results.length} database${results.length === 1 ? "" : "s"} ok`
        : `\n${label} failed for ${failed.map((r) => r.database).join(", ")}`
    )
  }
  // One database: Prisma's own exit code reaches the caller. Several: 1 if any failed.
  if (results.length === 1) return results[0]!.code
  return failed.length === 0 ? 0 : 1
}
