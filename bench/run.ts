// npm run bench: flexidb against raw Prisma, side by side in one run. Writes BENCHMARKS.md.
// Needs PostgreSQL on 127.0.0.1:5432 (as the tests do); not part of the test run.
import Database from "better-sqlite3"
import { execFileSync } from "node:child_process"
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { cpus, tmpdir, totalmem } from "node:os"
import { join } from "node:path"
import { createFlexiDB } from "../src/index.js"
import * as prisma7 from "../test/fixtures/prisma7/clients.ts"
import { createDatabase } from "../test/support/databases.js"
import type { TestDatabase } from "../test/support/databases.js"
import { compare, pair, pairing, ratio } from "./harness.js"
import type { Paired, Variant } from "./harness.js"
import * as instructions from "./instructions.js"

const repo = join(import.meta.dirname, "..")
const rows: Array<[string, string, string, string]> = []
const note = (what: string, flexidb: string, baseline: string, result: string) => {
  rows.push([what, flexidb, baseline, result])
  console.log(`${what}: ${result}   (${flexidb} vs ${baseline})`)
}
const us = (x: number) => `${x.toFixed(1)} µs`
const gc = () => (globalThis as { gc?: () => void }).gc?.()
const kb = (bytes: number) => (Number.isNaN(bytes) ? "?" : `${(bytes / 1024).toFixed(1)} KiB`)
/** Side-by-side blocks: short, for the reason the direct pairs' rounds are (below). */
const sideBySide = { blocks: 200, perBlock: 15 }
/** Each direct pair's result, for the targets. */
const pairs: Array<{ readonly label: string; readonly what: string; readonly p: Paired }> = []

/** CPU time all processes but this one used, in ms since boot (Linux; undefined elsewhere). */
const othersCpuMs = () => {
  try {
    const [, ...fields] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).map(Number)
    // user nice system idle iowait irq softirq steal: busy is all but idle and iowait, in 1/100 s.
    const busy = fields.slice(0, 8).reduce((a, b, i) => (i === 3 || i === 4 ? a : a + b), 0) * 10
    const own = process.cpuUsage()
    return busy - (own.user + own.system) / 1000
  } catch {
    return undefined
  }
}
/** What share of the machine's CPU other processes took while `f` ran. */
const othersShare = async <A>(f: () => Promise<A>): Promise<[A, number | undefined]> => {
  const before = othersCpuMs()
  const start = performance.now()
  const a = await f()
  const after = othersCpuMs()
  const share = before === undefined || after === undefined
    ? undefined
    : Math.max(0, after - before) / ((performance.now() - start) * cpus().length)
  return [a, share]
}
const disturbed: Array<string> = []

const seed = async (client: ReturnType<typeof prisma7.sqlite>) => {
  await client.user.deleteMany()
  await client.user.create({ data: { id: 1, email: "bench@x.io", name: "Bench" } })
}

const perQuery = async (label: string, db: TestDatabase) => {
  // The fixture schemas are identical across providers: one client type serves both here.
  const client = (db.provider === "sqlite" ? prisma7.sqlite(db.url) : prisma7.postgresql(db.url)) as ReturnType<typeof prisma7.sqlite>
  await seed(client)
  // Every variant queries through the same Prisma client (and connection pool): separate instances differ by a
  // few percent on their own. Prisma's own query extension with a hook that does nothing is the floor for any
  // $extends-based interception. The middleware runs on a second instance over the same client, so `get()`
  // without middleware stays measured on the first.
  const flexi = createFlexiDB({ main: client }, { gracefulShutdown: false })
  const withMiddleware = createFlexiDB({ main: client }, { gracefulShutdown: false })
  withMiddleware.use((_db, _op, next) => next())
  // `intercept: false`: get() hands out the bare client (issue 21: it must keep costing a Map lookup).
  const bareFlexi = createFlexiDB({ main: client }, { gracefulShutdown: false, intercept: false })
  await Promise.all([flexi.ready(), withMiddleware.ready(), bareFlexi.ready()])
  const extended = client.$extends({ query: { $allOperations: ({ args, query }) => query(args) } })
  const query = { where: { id: 1 } }
  const raw: Variant = { name: "raw", run: () => client.user.findUnique(query) }
  const hook: Variant = { name: "extends", run: () => extended.user.findUnique(query) }
  const get: Variant = { name: "get", run: () => flexi.get("main").user.findUnique(query) }
  const middleware: Variant = { name: "middleware", run: () => withMiddleware.get("main").user.findUnique(query) }
  const batch: Variant = { name: "batch", run: () => flexi.batch({ main: (c) => c.user.findUnique(query) }) }
  const [r, e, g, m, b] = await compare([raw, hook, get, middleware, batch], sideBySide)
  note(`${label}: findUnique through Prisma's $extends with an empty hook (no flexidb)`, us(e!.us), us(r!.us), `${ratio(e!, r!).toFixed(3)}×`)
  note(`${label}: findUnique through get()`, us(g!.us), us(r!.us), `${ratio(g!, r!).toFixed(3)}× (${ratio(g!, e!).toFixed(3)}× the empty hook)`)
  note(`${label}: findUnique through get() with one pass-through middleware`, us(m!.us), us(r!.us), `${ratio(m!, r!).toFixed(3)}× (${ratio(m!, g!).toFixed(3)}× get())`)
  note(`${label}: batch() with one operation`, us(b!.us), us(r!.us), `${ratio(b!, r!).toFixed(3)}×`)
  const bare: Variant = { name: "intercept: false", run: () => bareFlexi.get("main").user.findUnique(query) }
  // The questions of issues 8 and 21 as direct pairs: each pair alone, in ABBA rounds.
  for (const [a, x, what] of [
    [raw, get, "get() ÷ raw"],
    [hook, get, "get() ÷ the empty hook"],
    [get, middleware, "one pass-through middleware ÷ get()"],
    [raw, batch, "batch() ÷ raw"],
    [raw, bare, "intercept: false ÷ raw"]
  ] as const) {
    const p = await pair(a, x, pairing)
    pairs.push({ label, what, p })
    note(
      `${label}, direct pair: ${what}`,
      `${us(p.bUs)}, ${kb(p.bBytes)} allocated`,
      `${us(p.aUs)}, ${kb(p.aBytes)} (${p.a})`,
      `${p.ratio.toFixed(3)}× (IQR ${p.q1.toFixed(3)}–${p.q3.toFixed(3)}, ${p.rounds} rounds)`
    )
  }
  if (db.provider === "sqlite") {
    // flexidb's own work per batch, with an operation that does no I/O at all.
    const nothing = () => Promise.resolve(1)
    const [p, n] = await compare([
      { name: "promise", run: () => nothing().then((v) => ({ main: v })) },
      { name: "batch", run: () => flexi.batch({ main: nothing }) }
    ], { blocks: 40, perBlock: 2000 })
    note("batch() bookkeeping alone (an operation with no I/O)", us(n!.us), `${us(p!.us)} (a bare promise)`, `+${((n!.us - p!.us) * 1000).toFixed(0)} ns per batch`)
  }
  await bareFlexi.disconnect()
  await withMiddleware.disconnect()
  await flexi.disconnect()
}

/**
 * Main-thread CPU instructions per SQLite query outside the garbage collector, under callgrind: repeatable where
 * wall time is not. Raw Prisma once more with `errorFormat: "minimal"`, for what its call-stack capture costs. One
 * process per variant: starting node, Prisma and its query compiler under valgrind takes
 * most of a minute, and the count moves less between processes of one layout (0.0–0.4 % over two and three
 * repeats) than between layouts (about 1 %, see BENCHMARKS.md).
 */
const instructionsPerQuery = async () => {
  if (!instructions.available()) {
    console.log("valgrind not found: instruction counts skipped")
    return
  }
  const db = await createDatabase("sqlite")
  const client = prisma7.sqlite(db.url)
  await seed(client)
  await client.$disconnect()
  const counted = await instructions.countAll(db.url, [
    ["raw", "default"], ["extends", "default"], ["get", "default"], ["middleware", "default"], ["batch", "default"],
    ["bare", "default"], ["raw", "minimal"]
  ], { repeats: 1 })
  await db.drop()
  const find = (variant: string, format: string) => counted.find((c) => c.variant === variant && c.errorFormat === format)!
  const k = (n: number) => `${(n / 1000).toFixed(1)} k`
  const collector = ([lo, hi]: readonly [number, number]) =>
    lo === hi ? `${(lo / 1000).toFixed(0)} k` : `${(lo / 1000).toFixed(0)}–${(hi / 1000).toFixed(0)} k`
  const raw = find("raw", "default")
  for (const [variant, what, against] of [
    ["extends", "$extends with an empty hook (no flexidb)", undefined],
    ["get", "get()", ["extends", "the empty hook"]],
    ["middleware", "get() with one pass-through middleware", ["get", "get()"]],
    ["batch", "batch() with one operation", undefined],
    ["bare", "get() with intercept: false", undefined]
  ] as const) {
    const c = find(variant, "default")
    const details = [
      ...(against ? [`${(c.perQuery / find(against[0], "default").perQuery).toFixed(3)}× ${against[1]}`] : []),
      ...(c.spread > 0 || raw.spread > 0 ? [`spread ${(c.spread * 100).toFixed(1)} % / ${(raw.spread * 100).toFixed(1)} %`] : []),
      `main-thread collector, left out: ${collector(c.collector)} / ${collector(raw.collector)}`
    ]
    note(`SQLite instructions per findUnique: ${what}`, k(c.perQuery), `${k(raw.perQuery)} (raw)`, `${(c.perQuery / raw.perQuery).toFixed(3)}× (${details.join("; ")})`)
  }
  // What Prisma's call-stack capture costs: the same raw query without it.
  const minimal = find("raw", "minimal")
  note(
    `SQLite instructions per findUnique: raw Prisma with errorFormat: "minimal" (no call-stack capture)`,
    k(minimal.perQuery),
    `${k(raw.perQuery)} (raw, default errorFormat)`,
    `${(minimal.perQuery / raw.perQuery).toFixed(3)}× (the capture: ${k(raw.perQuery - minimal.perQuery)} per query)`
  )
}

const batchAcross = async (k: number) => {
  const dbs = await Promise.all(Array.from({ length: k }, () => createDatabase("postgresql")))
  const clients = dbs.map((d) => prisma7.postgresql(d.url))
  const flexi = createFlexiDB<Record<string, ReturnType<typeof prisma7.postgresql>>>(
    Object.fromEntries(clients.map((c, i) => [`db${i}`, c])),
    { gracefulShutdown: false }
  )
  await flexi.ready()
  // Each database answers after a different delay; the batch should take about as long as the slowest.
  const op = (i: number) => (c: ReturnType<typeof prisma7.postgresql>) => c.$queryRawUnsafe(`SELECT 1 AS done FROM pg_sleep(${(i + 1) * 0.002})`)
  const ops = Object.fromEntries(clients.map((_, i) => [`db${i}`, op(i)]))
  const slowest = k - 1
  const [batch, alone] = await compare([
    { name: "batch", run: () => flexi.batch(ops) },
    { name: "slowest", run: () => op(slowest)(flexi.get(`db${slowest}`)) }
  ], { blocks: 20, perBlock: 10 })
  note(`batch() over ${k} PostgreSQL databases`, us(batch!.us), `${us(alone!.us)} (slowest alone)`, `${ratio(batch!, alone!).toFixed(3)}×`)
  await flexi.disconnect()
  await Promise.all(dbs.map((d) => d.drop()))
}

const registry = async (count: number) => {
  const dir = mkdtempSync(join(tmpdir(), "flexidb-bench-"))
  const template = join(dir, "template.db")
  const t = new Database(template)
  t.exec(`CREATE TABLE "User" (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT)`)
  t.close()
  for (let i = 0; i < count; i++) cpSync(template, join(dir, `${i}.db`))
  const clients = Array.from({ length: count }, (_, i) => prisma7.sqlite(join(dir, `${i}.db`)))
  gc()
  const heapBefore = process.memoryUsage().heapUsed
  const flexi = createFlexiDB<Record<string, ReturnType<typeof prisma7.sqlite>>>({}, { gracefulShutdown: false })
  const start = performance.now()
  for (let i = 0; i < count; i++) flexi.register(`tenant${i}`, clients[i]!)
  const registerMs = performance.now() - start
  const connected = await flexi.ready()
  gc()
  const perDb = (process.memoryUsage().heapUsed - heapBefore) / count
  const ok = Object.values(connected).filter(Boolean).length
  const unStart = performance.now()
  for (let i = 0; i < count; i++) await flexi.unregister(`tenant${i}`)
  const unregisterMs = performance.now() - unStart
  note(`register() ${count} SQLite databases`, `${Math.round(count / (registerMs / 1000)).toLocaleString("en")}/s`, "—", `${(registerMs / count * 1000).toFixed(1)} µs each; ${ok}/${count} connected`)
  note(`unregister() ${count} databases (disconnects each)`, `${Math.round(count / (unregisterMs / 1000)).toLocaleString("en")}/s`, "—", `${(unregisterMs / count).toFixed(2)} ms each`)
  note(`heap per registered, connected database`, `${(perDb / 1024).toFixed(1)} KiB`, "—", "includes the client's layer, breaker, counters, scope and fibers")
  await flexi.disconnect()
  rmSync(dir, { recursive: true, force: true })
}

const cliGenerate = () => {
  const root = mkdtempSync(join(repo, "test", ".tmp", "bench-cli-"))
  try {
    mkdirSync(join(root, "prisma", "schemas"), { recursive: true })
    writeFileSync(join(root, "package.json"), "{}")
    const source = readFileSync(join(repo, "test", "fixtures", "prisma7", "schemas", "sqlite.prisma"), "utf8")
    const names = ["a", "b", "c", "d"]
    for (const n of names) writeFileSync(join(root, "prisma", "schemas", `${n}.prisma`), source.replace(`"../generated/sqlite"`, `"../../generated/${n}"`))
    const env = { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: join(repo, "test", "fixtures", "bin", "schema-engine"), PRISMA_HIDE_UPDATE_MESSAGE: "1" }
    const time = (f: () => void) => {
      const s = performance.now()
      f()
      return performance.now() - s
    }
    const prisma = join(repo, "node_modules", ".bin", "prisma")
    // The built executable, as `npx flexidb` runs it.
    execFileSync("npm", ["run", "build"], { cwd: repo, stdio: "ignore" })
    const flexidb = () => execFileSync(process.execPath, [join(repo, "dist", "cli.js"), "generate", "--force"], { cwd: root, env, stdio: "ignore" })
    const sequential = () => names.forEach((n) => execFileSync(prisma, ["generate", "--schema", join(root, "prisma", "schemas", `${n}.prisma`)], { cwd: root, env, stdio: "ignore" }))
    const f: Array<number> = []
    const s: Array<number> = []
    for (let i = 0; i < 3; i++) {
      f.push(time(flexidb))
      s.push(time(sequential))
    }
    const med = (xs: Array<number>) => xs.sort((a, b) => a - b)[1]!
    note("CLI generate, 4 schemas", `${(med(f) / 1000).toFixed(2)} s (parallel)`, `${(med(s) / 1000).toFixed(2)} s (one prisma run after another)`, `${(med(f) / med(s)).toFixed(2)}×`)
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}

const began = performance.now()
const phase = (what: string) => console.log(`-- ${what} (${((performance.now() - began) / 1000).toFixed(0)} s)`)

const main = async () => {
  for (const [label, provider] of [["SQLite", "sqlite"], ["PostgreSQL", "postgresql"]] as const) {
    const db = await createDatabase(provider)
    const [, share] = await othersShare(() => perQuery(label, db))
    if (share !== undefined) disturbed.push(`${label} ${(share * 100).toFixed(0)} %`)
    await db.drop()
  }
  phase("instructions")
  await instructionsPerQuery()
  phase("batch across databases")
  await batchAcross(4)
  phase("registry")
  await registry(1000)
  phase("CLI")
  cliGenerate()
  phase("done")

  const cpu = cpus()[0]?.model ?? "unknown CPU"
  const table = [
    "| measurement | flexidb | baseline | result |",
    "| --- | --- | --- | --- |",
    ...rows.map((r) => `| ${r.join(" | ")} |`)
  ].join("\n")
  // A median of many rounds still moves by about ±1 % from run to run: closer to the limit than that is a tie.
  const verdict = (what: string, limit: number) =>
    pairs.filter((x) => x.what === what).map(({ label, p }) => {
      const met = p.ratio <= limit ? "met" : "not met"
      const call = Math.abs(p.ratio - limit) < 0.01 ? `within ±1 % of the limit: ${met} in this run, a tie within the noise` : met
      return `${label} ${p.ratio.toFixed(3)}× (${call})`
    }).join("; ")
  // The sections of the other benchmarks (`bench:replicas`, `bench:tenants`, `bench:catalog`, `bench:move`, …) and
  // the ones measured by hand follow this script's own: carried over as they are.
  const previous = (() => {
    try {
      return readFileSync(join(repo, "BENCHMARKS.md"), "utf8")
    } catch {
      return ""
    }
  })()
  // Everything from the first of those sections on, headings and hand-measured sections between them included.
  const start = previous.indexOf("<!-- replicas -->")
  const kept = start === -1 ? "" : `\n${previous.slice(start).trimEnd()}\n`
  const doc = `# Benchmarks

Measured by \`npm run bench\` (bench/run.ts) on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} × ${cpu},
${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, Prisma 7.10 with driver adapters, PostgreSQL and SQLite on
the same machine. Ratios are flexidb ÷ baseline (lower is better, 1.000 is no overhead). One run: every number
below moves from run to run by about as much as its interquartile range or spread says.

- **Wall time, side by side** (µs rows): raw Prisma, Prisma's \`$extends\` with an empty hook, \`get()\`, \`get()\` with
  one pass-through middleware (\`use((_db, _op, next) => next())\` on a second instance over the same client, so
  \`get()\` stays measured without it) and \`batch()\` all query through one Prisma client, interleaved in ${sideBySide.blocks}
  blocks of ${sideBySide.perBlock} calls each; each reports the median of its block means. Young-generation collections fall
  inside these blocks as they come.
- **Direct pairs** (the "direct pair" rows): two variants alone, in ${pairing.rounds} rounds of four blocks of
  ${pairing.perBlock} calls, A B B A (bench/harness.ts \`pair\`); a round's ratio is (B1 + B2) ÷ (A1 + A2), and the row
  reports the median over rounds and the interquartile range of the rounds. Before every block, untimed, the young
  generation is collected, so that no scavenge (a pause of 4–8 ms) falls inside a block; what each side then costs
  the collector is shown as its allocation per call (young-generation bytes, median of the blocks). The rounds are
  short (about 25 ms on SQLite) because this machine's speed changes in steps that last seconds (block means of one
  variant went from 320 to 200 µs and back): the same variant paired against itself measured 0.996–1.003 in four
  runs with such rounds, and 0.934–1.051 with rounds of 4 × 100 calls and scavenges inside the blocks. The
  median of ${pairing.rounds} rounds still moves by about ±1 % from run to run.
- **Instructions** (k rows): CPU instructions per query on the main thread outside the garbage collector, counted by
  valgrind's callgrind over 2,000 queries after 8,000 warm-up queries, each variant in a process of its own
  (bench/instructions.ts), one process each. The collector's main-thread share is left out of the count and shown
  beside it (flexidb's / raw's): a scavenge is split between the main thread and its helper threads differently in
  every process, which moved main-thread totals by 1–4 % between repeats; without it, repeats of a variant in
  the same process layout agreed within 0.0–0.4 %. Different layouts (which other clients a process builds) move a
  count by about 1 % (see below): compare rows of one run.

${table}

Targets (issues 8 and 21), read from the direct pairs of this run:
- \`get()\` ≤ 1.03× raw, below Prisma's own \`$extends\` floor (issue 21): ${verdict("get() ÷ raw", 1.03)}.
- \`get()\` within 1.02× of the empty \`$extends\` hook: ${verdict("get() ÷ the empty hook", 1.02)}.
- one pass-through middleware adds at most 2 %: ${verdict("one pass-through middleware ÷ get()", 1.02)}.
- \`batch()\` with one operation ≤ 1.05× raw: ${verdict("batch() ÷ raw", 1.05)}.
- \`intercept: false\` costs a \`Map\` lookup (within the noise of raw): ${verdict("intercept: false ÷ raw", 1.01)}.

Why the targets moved (measured 2026-11-26 with bench/instructions.ts, three processes per variant, against the
code before the change): reads that run again after a lost connection (RELIABILITY.md) cost the hot path. \`get()\`:
+7.8 k instructions per SQLite findUnique (595.6 k → 603.4 k; the empty hook 592 k, so 1.007× → 1.018× the hook),
the retry's bookkeeping and the breaker's failures-in-sequence rule. \`batch()\`: its operations' queries go through a
Prisma query extension so that their reads can run again: +31 k instructions (588 k → 619 k, the empty hook's own
cost), about 6 µs per query, the same on a 90 µs SQLite query as on a 300 µs PostgreSQL one. \`intercept: false\`
gives operations the bare client back, without the retry (1.07× raw here: the 3 µs bookkeeping).

Noise. Side-by-side ratios move by about ±3 % from run to run here, direct pairs and instruction ratios by about
±1 %; read smaller differences as noise. The two cores are shared with PostgreSQL, the benchmark's own
helper threads and whatever else runs: other processes took ${disturbed.length === 0 ? "an unknown share" : disturbed.join(" and ")}
of the machine's CPU time during the wall-time rows (PostgreSQL's server, which answers the PostgreSQL rows, counts as
another process). Well above a few percent for SQLite, the run was disturbed: run it again.

## Where the time goes

- **Prisma captures the call stack of every query, twice.** Unless the client is built with \`errorFormat: "minimal"\`,
  each model query runs \`new Error()\` when it is called (in \`applyFluent\` and again in \`applyModel\`), to point its
  error messages at your code: 90–100 k instructions, a sixth of a SQLite findUnique (the "minimal" row). It grows with every frame under the call, optimized frames with inlined calls
  most. It is the same with or without flexidb; an app that wants it back can pass \`errorFormat: "minimal"\`.
- **\`get()\` is under Prisma's query extension, not on it (since 2026-12-08).** Prisma sends every operation of a
  client — model calls, raw queries, each item of \`$transaction([...])\`, the calls on an interactive transaction's
  client — through its \`_request\` method once, before the query is built; its \`$extends\` query hook runs inside
  that method and costs 2–5 % more instructions than raw (a deep copy of the arguments, two more Prisma promises,
  a key string, and a walk over the result rows once any extension is there). \`get()\` now hands out the app's
  client one layer down (src/internal/intercept.ts): an object inheriting from it whose \`_request\` runs flexidb's
  hook first, with no extension added, so none of that is paid; an extension of \`get()\`'s client keeps the layer.
  A client the app extended before registering it, or one without those internals (a test double), gets the
  \`$extends\` hook, as before (the app's query hooks around flexidb's). With \`intercept: false\`, \`get()\` returns the bare client and costs a \`Map\` lookup (≈ 10 ns).
- **Issue 21, the layer, measured 2026-12-08 with bench/compare.ts** (\`node --import tsx bench/compare.ts
  <before-tree> 1\`: bench/count.ts of commit d3c9f4c, on Prisma's \`$extends\` hook, and of the layer, under
  callgrind in one run, one process per variant; main-thread instructions per SQLite findUnique outside the
  collector):

  | variant | hook (d3c9f4c) | layer | ÷ raw, hook | ÷ raw, layer |
  | --- | --- | --- | --- | --- |
  | raw Prisma | 546.7 k | 554.9 k | 1.000 | 1.000 |
  | \`$extends\` with an empty hook (no flexidb) | 567.3 k | 576.1 k | 1.038 | 1.038 |
  | \`get()\` | 589.5 k | 571.9 k | 1.078 | 1.031 |
  | \`get()\` with one pass-through middleware | 595.3 k | 576.6 k | 1.089 | 1.039 |
  | \`batch()\` with one operation | 622.5 k | 615.2 k | 1.139 | 1.109 |
  | \`get()\` with \`intercept: false\` | 558.1 k | 548.5 k | 1.021 | 0.989 |

  \`get()\` 17.6 k fewer instructions, one middleware 18.7 k fewer: \`get()\` is now 0.993× the empty \`$extends\` hook,
  one middleware 1.001× it (the issue's "one middleware may cost what \`$extends\` costs"). \`batch()\` gained 7 k
  (its operations' reads go through a layer too): its cost is elsewhere (below). Raw moved 8 k between the two
  sets of processes (the process-to-process spread): read differences under about 1 % as noise. The direct pairs of
  the last \`npm run bench\` on the hook (2026-11-26, another machine of this kind; no \`get()\` ÷ raw pair then),
  SQLite / PostgreSQL: \`get()\` ÷ the empty hook 1.053× / 1.035×, one middleware ÷ \`get()\` 1.013× / 1.004×,
  \`batch()\` ÷ raw 1.157× / 1.122×; the table above has the layer's.
- **Where the wall-time gap between \`get()\` and the empty hook went, while \`get()\` was built on the hook**
  (measured 2026-11-26 on SQLite; single runs unless a range is given). Earlier runs put \`get()\` 0–10 % above the hook in wall time, and direct pairs
  of 100-call blocks 1.008 and 1.055 in two runs, while instructions showed no gap. What was measured:
  - *The method.* Most of that spread was the measurement. Prisma allocates about 40 KiB per SQLite findUnique, so V8
    collects the young generation every 350–400 queries, a 4–8 ms pause, 15–30 % of a 100-call block here; and the
    machine's speed changes in steps. A variant paired against itself moved as much as the gap did (above). With
    short rounds and a collection before each block, \`get()\` ÷ hook measured 1.014–1.036 in eleven runs: a gap of
    about 2 %, which is there, and about as large as flexidb's share of the instructions below.
  - *Instructions* (main thread, outside the collector): \`get()\` 0.6–2.4 % above the hook in separate processes.
    Of that: \`runOperation\` and \`settle\` (JIT code, ≈ 1 k), one more \`then\` and promise (≈ 0.3 k), the
    operation's name (≈ 0.1 k), and 1.3–2.4 k in Prisma's stack capture, which has one more optimized frame to
    expand. The spread is V8's per-process state, not the code: the same build measured the hook at 585.6–592.2 k
    in different processes, the difference sitting in runtime property-definition paths (inline-cache misses) in
    Prisma's own code; the earlier "no gap" counts were processes where the hook drew the slower state. The
    collector's split between threads moved the old main-thread totals too (now left out).
  - *Caches and branches* (callgrind's simulation, one pair of processes): \`get()\` 2.0 % more instructions than the
    hook there, 1.9 % more L1 instruction-cache misses (21.0 k against 20.6 k per query: this workload misses the L1
    i-cache every 30 instructions, as Prisma, its query compiler and SQLite make a large code footprint), 1.9 % more
    L1 data misses, 0.6 % more mispredicted branches. They grow with flexidb's instructions; nothing beside them.
  - *Megamorphic call sites*: \`runOperation\` serves \`get()\`, middleware and \`batch()\`, whose operations hand
    Prisma's promises and native ones to the same \`then\`. In one process running every variant, as the wall-time
    blocks do, \`get()\` measured 6.1 k above the hook; in processes of its own 3.3–11.8 k. That is inside the
    per-process spread above: no penalty from shared call sites could be told apart.
  - *Allocation* (what the collector's cost follows): \`get()\` allocates 0.4 KiB per query more than the hook (1 %: a
    promise, two closures, the operation's name, BigInts from the clock); at 6–8 % of the time spent collecting,
    under 0.1 % of the wall time.
  - *Promise jobs*: 35 promises per query raw, 37 through the empty hook, 38 through \`get()\`, 40 with one
    middleware, 38 through \`batch()\` (counted with \`async_hooks\`).
  - *Clock reads*: three per query through Effect's \`Clock\` (\`Date.now()\` for the breaker, two
    \`process.hrtime.bigint()\` for the response time), ≈ 55 ns each; \`performance.now()\` costs the same. A hook
    timing each query with the high-resolution clock and one timing it with \`Date.now()\` measured 1.001 and 1.002
    against each other: the clock is not the gap.
  - *Taken apart in wall time*, as direct pairs against the empty hook: the same hook with one more \`then\` 0.999, with
    the operation's name built 1.004, with timing and counters 1.005–1.017, with flexidb's \`runOperation\` itself
    1.022; \`get()\` against a client taken from \`get()\` once, outside the calling function, 0.995. No single piece
    stands out: the 2 % is the bookkeeping as a whole (200–290 ns of its own per query around an already-settled
    promise; inside Prisma's chain, where every instruction pays for the misses above, more), Prisma's capture of
    one more frame, and the call sites it shares. Getting under 1.02× reliably means fewer instructions in the
    hook, not a different clock or fewer promises.
- **Issue 21, measured 2026-12-07 with bench/compare.ts** (\`node --import tsx bench/compare.ts <before-tree> 1\`:
  bench/count.ts of the code before this branch, commit 822466a, and of this branch, under callgrind in one run, one
  process per variant; main-thread instructions per SQLite findUnique outside the collector):

  | variant | before | after | ÷ raw before | ÷ raw after |
  | --- | --- | --- | --- | --- |
  | raw Prisma | 578.4 k | 576.1 k | 1.000 | 1.000 |
  | \`$extends\` with an empty hook | 595.3 k | 601.5 k | 1.029 | 1.044 |
  | \`get()\` | 608.7 k | 601.1 k | 1.052 | 1.043 |
  | \`get()\` with one pass-through middleware | 606.6 k | 605.4 k | 1.049 | 1.051 |
  | \`batch()\` with one operation | 634.6 k | 621.5 k | 1.097 | 1.079 |
  | \`get()\` with \`intercept: false\` | 579.6 k | 579.5 k | 1.002 | 1.006 |
  | driver-adapter prototype (bench/adapter.ts) ÷ its own raw client | — | 581.3 k / 569.0 k | — | 1.022 |

  The same code counted in different processes moves by about 1 % (the empty hook, unchanged, moved 595 → 601 k):
  \`get()\` went from 1.023× to 0.999× the empty hook and \`batch()\` from 1.097× to 1.079× raw, but the hot path
  changed little (admission reads one ticket, issued once per circuit move, instead of two cells), so most of that
  is the process-to-process spread, not a change of cost: read differences under about 1 % as noise. Not met in instructions: \`batch()\` ≤ 1.05× raw (1.079×) and
  \`get()\` ≤ 1.03× raw (1.043×); the wall-time rows above are the lead's to take at a quiet time.
- **Tried, not shipped: the bookkeeping at the driver adapter.** bench/adapter.ts wraps the driver adapter factory a
  client is built with: every \`queryRaw\`/\`executeRaw\` outside a transaction runs through \`runOperation\` (breaker,
  counters, timing, and a plain read — \`isReadStatement\` on the SQL — sent again after a lost connection), with no
  copy of the model arguments and no Prisma promise more. It costs 1.022× its own raw client in instructions, against
  1.043× for \`get()\` (on the hook then) and 1.044× for the empty \`$extends\` hook: about half of \`get()\`'s 25 k, below Prisma's
  \`$extends\` floor. It is not shipped because it keeps fewer behaviours than the issue requires: flexidb is handed
  a constructed client and cannot reach its adapter without Prisma internals (the API would have to take the adapter
  factory and build the client itself); statistics, spans and \`observe\` see SQL statements, not model operations
  (a findMany with an include is two statements; middleware needs the operation's name, so the model hook would stay
  whenever middleware is registered); \`outcomeUnknown\` and the breaker's stale-outcome rule work per statement; a
  transaction's statements pass through unseen, so both transaction forms would need their own path; and the
  replica router and \`preventWrites\` decide per model call today. The prototype and its count stay in bench/ for
  whoever takes that API step.
- **Tried and dropped (2026-12-07): \`batch()\`'s read re-run through a Proxy instead of a second \`$extends\` client.**
  A Proxy over the bare client handed to \`batch()\` operations wrapped model reads and \`$queryRaw*\` reads: Prisma's
  own lazy promise came back with its \`then\`, \`catch\` and \`finally\` sent through \`retryRead\`, its \`requestTransaction\`
  left alone (a \`$transaction([...])\` never re-runs) and \`$transaction\`'s callback client the bare one's. It kept the
  behaviours (test/drops.test.ts, and the API test it prompted in test/runtime.test.ts, which stayed) but cost more,
  not less: \`batch()\` 1.121× and 1.119× raw in instructions (670.4 k / 598.0 k and 667.3 k / 596.5 k, two runs, the
  second reading Prisma's delegate once per call), against 1.049× (617.3 k / 588.6 k) for the \`$extends\` client in a
  run of the code before it the same day (\`get()\` 1.059×, the empty hook 1.047× in that run: the process-to-process
  spread again). Where the 50 k go was not found in the time there was; candidates: Prisma's clients and model
  delegates are Proxies of their own, and a Proxy in front of them takes V8's inline caches off every
  \`client.user.findUnique\`; one more frame under Prisma's stack capture. Commit e5d3120, reverted.
- **Tried and dropped: a Proxy instead of \`$extends\`.** A Proxy over the client that wraps model methods, raw
  queries and transactions (keeping fluent relations, lazy promises and \`$transaction([...])\`) measured 1.057× raw
  in instructions against 1.039× for \`$extends\` (one run each): no gain, because its wrapper frame sits under every
  query when Prisma captures the stack. The tests it prompted (fluent API, tagged raw queries, \`$extends\` on
  \`get()\`'s client, array transactions through asynchronous middleware) stayed.
- **One pass-through middleware** adds closures for the chain, two promises and one thenable job (\`next()\` resolves
  Prisma's lazy promise): 1.7–5.8 k instructions (0.3–1.0 %) and 1 KiB per query.
- **\`batch()\`** starts its operations on a microtask, from a nearly empty stack, so Prisma's capture walks neither
  flexidb's frames nor the caller's: in instructions, 1.085× → 1.034× raw (one run each). Its own bookkeeping (the "bookkeeping
  alone" row: name checks, breaker, counters, the result object) went from 3 µs to under 1 µs by dropping an
  executor, a \`forEach\`, a second \`then\` and \`Object.defineProperty\` for ordinary keys. In wall time it still
  measures 1.045–1.061× raw on SQLite in direct pairs (1.016–1.033× on PostgreSQL), above its 1.9–3.1 % in
  instructions, and 1.063–1.070× a hand-written equivalent (the query started from a microtask, \`then\` on Prisma's
  promise, a result object), which itself measures 0.98–0.99× raw. That part is not Prisma's stack capture (the
  same with \`errorFormat: "minimal"\`); it goes with 2.3–2.8 KiB more allocation per query, of which flexidb's own
  frames account for about 0.8 KiB (a sampling heap profile) and the rest is allocated in Prisma's request path
  when it runs under \`batch()\`. Not resolved.
- **Removed earlier:** a \`Promise.resolve\` around Prisma's promise (an extra thenable job per query), a template
  string built on every \`get()\`, a tuple allocated by the breaker on every call, a clock read and breaker write after
  every success, and \`Promise.allSettled\` plus intermediate arrays in \`batch()\`.
- **\`batch()\` over several databases** costs the slowest one plus a few percent: the operations run concurrently.
- **\`register()\`** is synchronous (validation, the client's layer, a child scope and a forked fiber); connecting happens in
  the background. **\`unregister()\`** closes the database's scope: fibers end, \`$disconnect\` runs.
- **CLI \`generate\` in parallel** gains nothing on this 2-core machine: one \`prisma generate\` already keeps both cores
  busy. On more cores, \`--concurrency\` (default 4) runs that many at once.

How to reproduce: start PostgreSQL on 127.0.0.1:5432 (user postgres, trust), then \`npm ci && npm run bench\`. The
instruction rows need valgrind (\`apt install valgrind\`); without it they are left out.
${kept}`
  writeFileSync(join(repo, "BENCHMARKS.md"), doc)
  console.log("\nwrote BENCHMARKS.md")
}

await main()
