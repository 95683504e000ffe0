// CPU instructions per query, counted by valgrind's callgrind: unlike wall time on a shared VM, what other
// processes do does not change the count. Each variant runs in its own process (bench/count.ts); only
// the main thread and only the measured queries are counted (after a warm-up, so the JIT has settled). Background
// threads (garbage collection helpers, the optimizing compiler) are left out: their share varies from run to run.
// So is the collector's share on the main thread (a scavenge is split between the main thread and its helpers
// differently each time): the counts below are the main thread's instructions outside the collector, with the
// collector's main-thread share kept beside them.
import { spawn, spawnSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"

// callgrind_annotate (valgrind's, in Perl) exits with 255 even for --version: that it ran is enough.
export const available = () =>
  spawnSync("valgrind", ["--version"]).status === 0 && spawnSync("callgrind_annotate", ["--version"]).error === undefined

export interface Counted {
  readonly variant: string
  /** Prisma's default, or `errorFormat: "minimal"`, which skips the call-stack capture on every query. */
  readonly errorFormat: "default" | "minimal"
  /** Main-thread instructions per query, outside the garbage collector. */
  readonly perQuery: number
  /** Main-thread instructions per query inside the garbage collector (`Heap::CollectGarbage`, inclusive). */
  readonly collector: number
}

/** Inclusive instructions under V8's collector entry in a callgrind file, or 0 (no collection, or no symbols). */
const collectorIn = (file: string) => {
  const out = spawnSync("callgrind_annotate", ["--inclusive=yes", "--threshold=100", file], { encoding: "utf8" })
  const line = out.stdout?.split("\n").find((l) => l.includes("v8::internal::Heap::CollectGarbage("))
  const n = line && /^\s*([\d,]+)/.exec(line)
  return n ? Number(n[1]!.replaceAll(",", "")) : 0
}

const count = (
  file: string,
  variant: string,
  errorFormat: Counted["errorFormat"],
  queries: number,
  warmup: number,
  script: string
) =>
  new Promise<Counted>((resolve, reject) => {
    const dir = mkdtempSync(join(tmpdir(), "flexidb-callgrind-"))
    const child = spawn("valgrind", [
      "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes", `--callgrind-out-file=${join(dir, "out")}`,
      process.execPath, "--import", "tsx", script,
      variant, file, String(queries), String(warmup), errorFormat
    ], { stdio: ["pipe", "pipe", "ignore"] })
    const instrument = (on: boolean) => spawnSync("callgrind_control", ["-i", on ? "on" : "off", String(child.pid)])
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (line === "ready") instrument(true)
      else if (line === "done") instrument(false)
      else return
      child.stdin!.write("go\n")
    })
    child.on("exit", (code) => {
      try {
        if (code !== 0) throw new Error(`${variant} under callgrind exited with ${code}`)
        // Thread 1 is the main thread: out-01.
        const main = readdirSync(dir).find((f) => f.endsWith("-01"))
        const totals = main && /^totals: (\d+)/m.exec(readFileSync(join(dir, main), "utf8"))
        if (!totals) throw new Error(`no callgrind totals for ${variant}`)
        const collector = collectorIn(join(dir, main))
        resolve({ variant, errorFormat, perQuery: (Number(totals[1]) - collector) / queries, collector: collector / queries })
      } catch (error) {
        reject(error)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })
  })

export interface Summary {
  readonly variant: string
  readonly errorFormat: Counted["errorFormat"]
  /** Median over the repeats, main-thread instructions per query outside the collector. */
  readonly perQuery: number
  /** (largest − smallest) ÷ median over the repeats. */
  readonly spread: number
  /** Smallest and largest main-thread collector instructions per query over the repeats. */
  readonly collector: readonly [number, number]
}

/**
 * Counts each variant `repeats` times, two processes at a time (one per core), the variants interleaved. A count
 * repeats closely within one process layout, but garbage-collection and JIT decisions differ between processes by a
 * few percent: hence the repeats, the median and the spread.
 */
export const countAll = async (
  file: string,
  runs: ReadonlyArray<readonly [string, Counted["errorFormat"]]>,
  { queries = 2000, warmup = 8000, repeats = 3, script = join(import.meta.dirname, "count.ts") } = {}
): Promise<Array<Summary>> => {
  const jobs = Array.from({ length: repeats }, () => runs).flat()
  const out: Array<Counted> = []
  for (let i = 0; i < jobs.length; i += 2) {
    out.push(...await Promise.all(jobs.slice(i, i + 2).map(([v, f]) => count(file, v, f, queries, warmup, script))))
  }
  return runs.map(([variant, errorFormat]) => {
    const mine = out.filter((c) => c.variant === variant && c.errorFormat === errorFormat)
    const xs = mine.map((c) => c.perQuery).sort((a, b) => a - b)
    const gc = mine.map((c) => c.collector)
    const median = xs[xs.length >> 1]!
    return {
      variant,
      errorFormat,
      perQuery: median,
      spread: (xs[xs.length - 1]! - xs[0]!) / median,
      collector: [Math.min(...gc), Math.max(...gc)] as const
    }
  })
}
