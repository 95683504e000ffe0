// npm run test:repeat -- N [--starved] [--keep]
//
// Runs the whole CI (`bash .ci/run` with CI=true) N times, one after another, each time on a fresh clone of the
// committed HEAD — so a missing install step or a test that only passes in a warm working tree shows too — and
// reports every failed test by suite and name, with the first line of its message. `--starved` runs two `yes`
// processes beside each run (the 2-core machine with its CPU taken), as RELIABILITY.md records. A clone is removed
// after a green run; a red run's clone and log are kept (`--keep` keeps every one). Exit code 1 when a run failed.
import { spawn, spawnSync } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

interface Failure {
  readonly suite: string
  readonly test: string
  readonly message: string
}

interface Run {
  readonly index: number
  readonly seconds: number
  readonly exit: number
  readonly summary: string
  readonly failures: ReadonlyArray<Failure>
  readonly log: string
}

const args = process.argv.slice(2)
const runs = Number(args.find((a) => /^\d+$/.test(a)) ?? "1")
const starved = args.includes("--starved")
const keep = args.includes("--keep")
if (!Number.isInteger(runs) || runs < 1 || runs > 100) {
  console.error("usage: npm run test:repeat -- N [--starved] [--keep]   (N from 1 to 100)")
  process.exit(2)
}

const root = spawnSync("git", ["rev-parse", "--show-toplevel"], { encoding: "utf8" }).stdout.trim()
const head = spawnSync("git", ["-C", root, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).stdout.trim()
if (spawnSync("git", ["-C", root, "status", "--porcelain", "--untracked-files=no"], { encoding: "utf8" }).stdout.trim()) {
  console.error("note: tracked files have uncommitted changes; the runs test the committed HEAD only")
}

const hogs: Array<ChildProcess> = []
const stopHogs = () => {
  for (const h of hogs.splice(0)) h.kill("SIGKILL")
}
process.on("SIGINT", () => {
  stopHogs()
  process.exit(130)
})
process.on("SIGTERM", () => {
  stopHogs()
  process.exit(130)
})

/** The failed tests of a run, from the JSON report vitest writes for .ci/run. */
const failuresOf = (clone: string): Array<Failure> => {
  const file = join(clone, "test/.tmp/results.json")
  if (!existsSync(file)) return []
  const report = JSON.parse(readFileSync(file, "utf8")) as {
    testResults: Array<{ name: string; assertionResults: Array<{ status: string; fullName: string; failureMessages: Array<string> }> }>
  }
  return report.testResults.flatMap((suite) =>
    suite.assertionResults
      .filter((t) => t.status === "failed")
      .map((t) => ({
        suite: suite.name.slice(suite.name.lastIndexOf("/test/") + 1),
        test: t.fullName,
        message: (t.failureMessages[0] ?? "").split("\n")[0]!.slice(0, 200)
      }))
  )
}

const once = (index: number): Promise<Run> =>
  new Promise((resolve) => {
    const clone = mkdtempSync(join(tmpdir(), `flexidb-repeat-${index}-`))
    const log = join(clone, "..", `${clone.split("/").pop()}.log`)
    const cloned = spawnSync("git", ["clone", "-q", root, clone], { encoding: "utf8" })
    if (cloned.status !== 0) throw new Error(`git clone failed: ${cloned.stderr}`)
    if (starved) for (let i = 0; i < 2; i++) hogs.push(spawn("yes", { stdio: ["ignore", "ignore", "ignore"] }))
    const out = createWriteStream(log)
    const started = performance.now()
    const ci = spawn("bash", [".ci/run"], { cwd: clone, env: { ...process.env, CI: "true" }, stdio: ["ignore", "pipe", "pipe"] })
    let tail = ""
    const collect = (chunk: Buffer) => {
      out.write(chunk)
      tail = (tail + chunk.toString()).slice(-4000)
    }
    ci.stdout.on("data", collect)
    ci.stderr.on("data", collect)
    ci.on("close", (code) => {
      stopHogs()
      out.end()
      const summary = tail.split("\n").map((l) => l.trim()).filter((l) => /^\d+ passed, \d+ failed/.test(l)).pop() ?? "(no summary line)"
      const run: Run = {
        index,
        seconds: Math.round((performance.now() - started) / 1000),
        exit: code ?? 1,
        summary,
        failures: failuresOf(clone),
        log
      }
      if (run.exit === 0 && !keep) {
        rmSync(clone, { recursive: true, force: true })
        rmSync(log, { force: true })
      }
      resolve(run)
    })
  })

const results: Array<Run> = []
console.log(`${runs} CI run(s) of ${head} on fresh clones${starved ? ", CPU starved by two `yes`" : ""}`)
for (let i = 1; i <= runs; i++) {
  const run = await once(i)
  results.push(run)
  console.log(`run ${i}: exit ${run.exit}, ${run.summary}, ${run.seconds} s${run.exit === 0 ? "" : ` (log: ${run.log})`}`)
  for (const f of run.failures) console.log(`  ✘ ${f.suite} › ${f.test}\n    ${f.message}`)
}
const red = results.filter((r) => r.exit !== 0)
console.log(`\n${results.length - red.length} of ${results.length} runs green at ${head}`)
process.exit(red.length === 0 ? 0 : 1)
