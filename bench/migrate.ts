// npm run bench:migrate: migrating many SQLite tenants. flexidb's in-process migrate (one `flexidb migrate deploy
// --tenants` command: flexidb/migrate on each database, 8 at once) against `prisma migrate deploy` run once per
// database with Prisma 6.19's JavaScript schema engine (the way to run Prisma's migrate offline, without its native
// engine), on 100 fresh tenants; then 10,000 tenants in process (time, peak RSS), and the run again, all up to date.
// Each side runs in its own process. Writes its section of BENCHMARKS.md; exits 1 when a database is not as
// expected afterwards. `-- --tenants N` for a shorter run (N in process, N/100 — at least 5, at most 100 — with Prisma).
import Database from "better-sqlite3"
import { execFileSync } from "node:child_process"
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { cpus, tmpdir, totalmem } from "node:os"
import { join } from "node:path"
import { prisma6 } from "../test/support/prisma6.js"
import { writeSection } from "./harness.js"

const repo = join(import.meta.dirname, "..")
const fixtures = join(repo, "test", "fixtures")
const arg = (flag: string) => {
  const i = process.argv.indexOf(flag)
  return i === -1 ? undefined : process.argv[i + 1]
}
const MIGRATIONS = ["20260101000000_init", "20260102000000_roles_and_publishing"]

// -----------------------------------------------------------------------------------------------------------------
// The child: one `flexidb migrate deploy --tenants` command, in process; prints its time and peak RSS as JSON.

if (arg("--child") !== undefined) {
  const { run } = await import("../cli/main.js")
  // What the process holds before the command: Node, tsx and the CLI's modules.
  const baseRssMiB = process.resourceUsage().maxRSS / 1024
  const root = arg("--child")!
  const lines = { out: 0, err: 0 }
  const started = performance.now()
  const code = await run(["migrate", "deploy", "--tenants", "tenants.mjs", "--schema", "tenant", "--json"], {
    cwd: root,
    env: {},
    out: (t) => {
      lines.out++
      writeFileSync(join(root, "report.json"), t)
    },
    err: () => lines.err++
  })
  const ms = performance.now() - started
  console.log(JSON.stringify({ code, ms, baseRssMiB, maxRssMiB: process.resourceUsage().maxRSS / 1024, lines }))
  process.exit(0)
}

// -----------------------------------------------------------------------------------------------------------------
// The parent

const count = Number(arg("--tenants") ?? 10_000)
const compared = Number(arg("--compare") ?? Math.min(100, Math.max(5, Math.round(count / 100))))
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(compared) || compared < 1) {
  throw new Error("--tenants N and --compare N: whole numbers from 1")
}

/** A project of one `tenant` schema (SQLite) with the fixture's migrations, and a tenants module of `n` files. */
const fleet = (n: number, label: string) => {
  const root = mkdtempSync(join(tmpdir(), `flexidb-bench-migrate-${label}-`))
  mkdirSync(join(root, "prisma", "schemas"), { recursive: true })
  writeFileSync(join(root, "prisma", "schemas", "tenant.prisma"), `datasource db {\n  provider = "sqlite"\n}\n`)
  cpSync(join(fixtures, "migrations", "sqlite"), join(root, "prisma", "migrations", "tenant"), { recursive: true })
  mkdirSync(join(root, "tenants"))
  writeFileSync(join(root, "tenants.mjs"), [
    `const tenants = []`,
    `for (let i = 0; i < ${n}; i++) tenants.push({ name: "t" + i, url: "file:./tenants/t" + i + ".db" })`,
    `export default tenants`,
    ``
  ].join("\n"))
  return { root, file: (i: number) => join(root, "tenants", `t${i}.db`) }
}

/** Every database has both migrations, finished, once. */
const check = (n: number, file: (i: number) => string) => {
  for (let i = 0; i < n; i++) {
    const db = new Database(file(i), { readonly: true, fileMustExist: true })
    const rows = db.prepare(`SELECT migration_name AS name FROM _prisma_migrations WHERE finished_at IS NOT NULL ORDER BY migration_name`).all() as Array<{ name: string }>
    db.close()
    if (rows.map((r) => r.name).join() !== MIGRATIONS.join()) throw new Error(`${file(i)}: ${JSON.stringify(rows)}`)
  }
}

interface Child {
  readonly code: number
  readonly ms: number
  readonly baseRssMiB: number
  readonly maxRssMiB: number
  readonly wallMs: number
}

/** The flexidb command in a process of its own: the time inside it and the process's whole wall time. */
const flexidb = (root: string): Child => {
  const started = performance.now()
  const out = execFileSync(process.execPath, ["--import", "tsx", import.meta.filename, "--child", root], {
    cwd: repo,
    encoding: "utf8",
    maxBuffer: 64 * 2 ** 20
  })
  const wallMs = performance.now() - started
  const result = JSON.parse(out.trim().split("\n").at(-1)!)
  if (result.code !== 0) throw new Error(`flexidb migrate deploy exited ${result.code}: ${readFileSync(join(root, "report.json"), "utf8").slice(0, 2000)}`)
  return { ...result, wallMs }
}

/** Prisma 6.19, once per database, one after the other: what a deploy loop over tenants runs. */
const prisma = async (n: number, file: (i: number) => string) => {
  const started = performance.now()
  for (let i = 0; i < n; i++) {
    const run = await prisma6(["migrate", "deploy"], file(i), join(fixtures, "migrations", "sqlite"))
    if (run.code !== 0) throw new Error(`prisma migrate deploy exited ${run.code}: ${run.out}`)
  }
  return performance.now() - started
}

const s = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`)
const rate = (n: number, ms: number) => `${Math.round(n / (ms / 1000)).toLocaleString("en-US")}/s`
const rows: Array<string> = []
const note = (what: string, time: string, detail: string) => {
  rows.push(`| ${what} | ${time} | ${detail} |`)
  console.log(`${what}: ${time} (${detail})`)
}

// 1. The comparison, on `compared` fresh tenants each.
console.log(`${compared} tenants: flexidb in process, then prisma migrate deploy once per database…`)
const mine = fleet(compared, "flexidb")
const f = flexidb(mine.root)
check(compared, mine.file)
const theirs = fleet(compared, "prisma")
const p = await prisma(compared, theirs.file)
check(compared, theirs.file)
const ratio = p / f.ms
const wallRatio = p / f.wallMs
note(
  `${compared} SQLite tenants, fresh: \`flexidb migrate deploy --tenants\` (in process, concurrency 8)`,
  s(f.ms),
  `${rate(compared, f.ms)}; ${s(f.wallMs)} for the whole process, Node and tsx start included`
)
note(
  `${compared} SQLite tenants, fresh: \`prisma migrate deploy\` once per database (Prisma 6.19, JavaScript engine)`,
  s(p),
  `${s(p / compared)} a database`
)
note(
  `→ flexidb against Prisma`,
  `${ratio.toFixed(0)}× faster`,
  `${wallRatio.toFixed(0)}× counting flexidb's process start; target ≥ 50×: ${ratio >= 50 ? "met" : "not met"}`
)
rmSync(mine.root, { recursive: true, force: true })
rmSync(theirs.root, { recursive: true, force: true })

// 2. Many tenants in process, then the same command again: every tenant up to date.
console.log(`${count.toLocaleString("en-US")} tenants in process…`)
const big = fleet(count, "many")
const first = flexidb(big.root)
check(count, big.file)
const second = flexidb(big.root)
const report = JSON.parse(readFileSync(join(big.root, "report.json"), "utf8"))
if (report.summary.upToDate !== count) throw new Error(`the second run: ${JSON.stringify(report.summary)}`)
rmSync(big.root, { recursive: true, force: true })
note(
  `${count.toLocaleString("en-US")} SQLite tenants, fresh, one command in process`,
  s(first.ms),
  `${rate(count, first.ms)}; peak RSS ${first.maxRssMiB.toFixed(0)} MiB for the whole process, ` +
    `${first.baseRssMiB.toFixed(0)} MiB of it before the command started (Node, tsx, the CLI's modules)`
)
note(
  `the same ${count.toLocaleString("en-US")} again: every tenant up to date`,
  s(second.ms),
  `${rate(count, second.ms)}; peak RSS ${second.maxRssMiB.toFixed(0)} MiB`
)

const cpu = cpus()[0]?.model.trim() ?? "unknown CPU"
writeSection("migrate", [
  "## Migrating many databases (`npm run bench:migrate`)",
  "",
  `Measured on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; one run.`,
  "The fixture's two SQLite migrations (test/fixtures/migrations/sqlite) on fresh tenant files. flexidb is one",
  "`flexidb migrate deploy --tenants <module> --schema tenant --json` command run in its own process (its time from the",
  "command's start to its report; the process's wall time beside it). Prisma is `prisma migrate deploy` run once per",
  "database, one after the other, with Prisma 6.19's JavaScript schema engine and `@prisma/adapter-better-sqlite3`",
  "(the native engine cannot be downloaded here): each run starts Node and Prisma's CLI, which is most of its time.",
  "Every database is checked afterwards: both migrations recorded, finished.",
  "",
  "| what | time | detail |",
  "| --- | --- | --- |",
  ...rows
])
process.exit(0)
