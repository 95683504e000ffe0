// CPU instructions per query, counted by valgrind's callgrind: unlike wall time on a shared VM, the count repeats
// run to run, so differences of a percent are real. Each variant runs in its own process (bench/count.ts); only
// the main thread and only the measured queries are counted (after a warm-up, so the JIT has settled). Background
// threads (garbage collection helpers, the optimizing compiler) are left out: their share varies from run to run.
import { spawn, spawnSync } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"

export const available = () => spawnSync("valgrind", ["--version"]).status === 0

export interface Counted {
  readonly variant: string
  /** Prisma's default, or `errorFormat: "minimal"`, which skips the call-stack capture on every query. */
  readonly errorFormat: "default" | "minimal"
  /** Main-thread instructions per query. */
  readonly perQuery: number
}

const count = (file: string, variant: string, errorFormat: Counted["errorFormat"], queries: number, warmup: number) =>
  new Promise<Counted>((resolve, reject) => {
    const dir = mkdtempSync(join(tmpdir(), "flexidb-callgrind-"))
    const child = spawn("valgrind", [
      "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes", `--callgrind-out-file=${join(dir, "out")}`,
      process.execPath, "--import", "tsx", join(import.meta.dirname, "count.ts"),
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
        resolve({ variant, errorFormat, perQuery: Number(totals[1]) / queries })
      } catch (error) {
        reject(error)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    })
  })

/** Counts each variant, two processes at a time (one per core). */
export const countAll = async (
  file: string,
  runs: ReadonlyArray<readonly [string, Counted["errorFormat"]]>,
  { queries = 2000, warmup = 8000 } = {}
): Promise<Array<Counted>> => {
  const out: Array<Counted> = []
  for (let i = 0; i < runs.length; i += 2) {
    out.push(...await Promise.all(runs.slice(i, i + 2).map(([v, f]) => count(file, v, f, queries, warmup))))
  }
  return out
}
