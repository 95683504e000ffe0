// npm run bench:generate: `flexidb generate` over 4 schemas (Prisma 7's prisma-client, SQLite, the fixture's schema)
// cold — no record, no generated clients: every schema runs `prisma generate` — against warm — nothing changed since
// the last generate: every schema `up to date`, no Prisma started — and with one schema changed. Timed two ways: the
// command itself (`run()` inside this process) and the built executable's whole process (`node dist/cli.js
// generate`, Node's start and module loading included). Writes its section of BENCHMARKS.md; exits 1 when a run did
// not do what it should (cold: 4 generated; warm: 4 up to date; one changed: exactly that one generated).
// `-- --rounds N` (default 3); `-- --no-build` to time the dist/ already built.
import { execFileSync } from "node:child_process"
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { cpus, totalmem } from "node:os"
import { join } from "node:path"
import { run } from "../cli/main.js"
import { writeSection } from "./harness.js"

const repo = join(import.meta.dirname, "..")
const arg = (flag: string) => {
  const i = process.argv.indexOf(flag)
  return i === -1 ? undefined : process.argv[i + 1]
}
const rounds = Number(arg("--rounds") ?? 3)
if (!Number.isInteger(rounds) || rounds < 1) throw new Error("--rounds N: a whole number from 1")

const NAMES = ["alpha", "beta", "gamma", "delta"]
const env: Record<string, string> = {
  ...(process.env as Record<string, string>),
  // Prisma's CLI wants its native engine at start; generate never runs it.
  PRISMA_SCHEMA_ENGINE_BINARY: join(repo, "test", "fixtures", "bin", "schema-engine"),
  PRISMA_HIDE_UPDATE_MESSAGE: "1",
  CHECKPOINT_DISABLE: "1"
}

// Inside the repository: `prisma` resolves to this repository's, as in an app.
mkdirSync(join(repo, "test", ".tmp"), { recursive: true })
const root = mkdtempSync(join(repo, "test", ".tmp", "bench-generate-"))
mkdirSync(join(root, "prisma", "schemas"), { recursive: true })
writeFileSync(join(root, "package.json"), JSON.stringify({ name: "bench-generate", private: true }))
const source = readFileSync(join(repo, "test", "fixtures", "prisma7", "schemas", "sqlite.prisma"), "utf8")
for (const n of NAMES) {
  writeFileSync(join(root, "prisma", "schemas", `${n}.prisma`), source.replace(`"../generated/sqlite"`, `"../../generated/${n}"`))
}

/** No record and no clients: the next generate is cold. */
const reset = () => {
  rmSync(join(root, "generated"), { recursive: true, force: true })
  rmSync(join(root, "node_modules", ".cache", "flexidb", "generate"), { recursive: true, force: true })
}

interface Report {
  readonly ok: boolean
  readonly results: ReadonlyArray<{ readonly database: string; readonly upToDate?: boolean }>
}

/** What a run did: how many databases Prisma generated, how many were up to date. */
const tally = (json: string) => {
  const report = JSON.parse(json) as Report
  if (!report.ok) throw new Error(`generate failed: ${json}`)
  const upToDate = report.results.filter((r) => r.upToDate).length
  return { generated: report.results.length - upToDate, upToDate }
}

const expect = (what: string, got: { generated: number; upToDate: number }, generated: number) => {
  if (got.generated !== generated || got.upToDate !== NAMES.length - generated) {
    console.error(`${what}: expected ${generated} generated and ${NAMES.length - generated} up to date, got ${JSON.stringify(got)}`)
    process.exit(1)
  }
}

/** The command in this process: its own time, from argv to exit code. */
const inProcess = async (argv: ReadonlyArray<string>) => {
  const out: Array<string> = []
  const started = performance.now()
  const code = await run(argv, { cwd: root, env, out: (t) => out.push(t), err: () => {} })
  const ms = performance.now() - started
  if (code !== 0) throw new Error(`flexidb ${argv.join(" ")} exited ${code}: ${out.join("\n")}`)
  return { ms, ...tally(out.join("\n")) }
}

/** The built executable as `npx flexidb` runs it: the whole process. */
const wholeProcess = (argv: ReadonlyArray<string>) => {
  const started = performance.now()
  const out = execFileSync(process.execPath, [join(repo, "dist", "cli.js"), ...argv], { cwd: root, env, encoding: "utf8" })
  const ms = performance.now() - started
  return argv.includes("--json") ? { ms, ...tally(out) } : { ms, generated: 0, upToDate: 0 }
}

let edits = 0
const changeOne = () => appendFileSync(join(root, "prisma", "schemas", "gamma.prisma"), `\n// edit ${++edits}\n`)

if (arg("--no-build") === undefined && !process.argv.includes("--no-build")) {
  console.log("building dist/ (npm run build)")
  execFileSync("npm", ["run", "build"], { cwd: repo, stdio: "ignore" })
}

const samples: Record<string, Array<number>> = {}
const note = (key: string, ms: number) => (samples[key] ??= []).push(ms)
const median = (key: string) => {
  const xs = [...samples[key]!].sort((a, b) => a - b)
  const mid = Math.floor(xs.length / 2)
  return xs.length % 2 === 1 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2
}

try {
  // One run first, not timed: Prisma's and flexidb's files in the page cache, as on a developer's machine.
  reset()
  await inProcess(["generate", "--json"])
  for (let round = 1; round <= rounds; round++) {
    reset()
    const cold = await inProcess(["generate", "--json"])
    expect("cold (command)", cold, 4)
    const warm = await inProcess(["generate", "--json"])
    expect("warm (command)", warm, 0)
    changeOne()
    const one = await inProcess(["generate", "--json"])
    expect("one changed (command)", one, 1)
    note("command cold", cold.ms)
    note("command warm", warm.ms)
    note("command one", one.ms)

    reset()
    const pCold = wholeProcess(["generate", "--json"])
    expect("cold (process)", pCold, 4)
    const pWarm = wholeProcess(["generate", "--json"])
    expect("warm (process)", pWarm, 0)
    changeOne()
    const pOne = wholeProcess(["generate", "--json"])
    expect("one changed (process)", pOne, 1)
    note("process cold", pCold.ms)
    note("process warm", pWarm.ms)
    note("process one", pOne.ms)
    note("process version", wholeProcess(["--version"]).ms)
    console.log(
      `round ${round}: command cold ${cold.ms.toFixed(0)} ms, warm ${warm.ms.toFixed(1)} ms, one ${one.ms.toFixed(0)} ms; ` +
        `process cold ${pCold.ms.toFixed(0)} ms, warm ${pWarm.ms.toFixed(0)} ms, one ${pOne.ms.toFixed(0)} ms`
    )
  }
} finally {
  rmSync(root, { recursive: true, force: true })
}

const s = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms < 10 ? ms.toFixed(1) : ms.toFixed(0)} ms`)
const ratio = (a: string, b: string) => median(a) / median(b)
const verdict = (r: number) => (r <= 0.1 ? "met" : "not met")
const prisma = JSON.parse(readFileSync(join(repo, "node_modules", "prisma", "package.json"), "utf8")).version
const commandRatio = ratio("command warm", "command cold")
const processRatio = ratio("process warm", "process cold")
const lines = [
  "## Incremental generate (`npm run bench:generate`)",
  "",
  `Measured on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} × ${cpus()[0]?.model.trim() ?? "CPU"}, ` +
    `${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; median of ${rounds} round${rounds === 1 ? "" : "s"}.`,
  `4 schemas in one project (Prisma ${prisma}, \`prisma-client\`, SQLite, the fixture's two models). Cold: no record and`,
  "no generated clients, so every schema runs `prisma generate` (4 at once). Warm: nothing changed since the last",
  "generate, so every schema is `up to date` and no Prisma is started. One changed: a line added to one schema, which",
  "alone is generated again. \"Command\" is `run()` inside a running process, from argv to exit code; \"whole process\"",
  "is the built executable (`node dist/cli.js generate --json`), Node's start and flexidb's module loading included.",
  "",
  "| what | command | whole process |",
  "| --- | --- | --- |",
  `| cold: 4 schemas, \`prisma generate\` each | ${s(median("command cold"))} | ${s(median("process cold"))} |`,
  `| warm: 4 schemas up to date | ${s(median("command warm"))} | ${s(median("process warm"))} |`,
  `| one schema changed: 1 generated, 3 up to date | ${s(median("command one"))} | ${s(median("process one"))} |`,
  `| the executable doing nothing (\`--version\`) | — | ${s(median("process version"))} |`,
  `| → warm ÷ cold (target ≤ 0.1×) | ${commandRatio.toFixed(3)}×: ${verdict(commandRatio)} | ${processRatio.toFixed(3)}×: ${verdict(processRatio)} |`,
  "",
  `Warm, the whole process is the executable's start (${s(median("process version"))} for \`--version\`: Node and`,
  `flexidb's modules, mostly Effect's) plus ${s(Math.max(0, median("process warm") - median("process version")))}: the command's own work is reading`,
  "4 schemas with Prisma's reader, hashing them and reading 4 records."
]
writeSection("generate", lines)
console.log(lines.join("\n"))
