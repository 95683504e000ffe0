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
import { compare, ratio } from "./harness.js"
import * as instructions from "./instructions.js"

const repo = join(import.meta.dirname, "..")
const rows: Array<[string, string, string, string]> = []
const note = (what: string, flexidb: string, baseline: string, result: string) => {
  rows.push([what, flexidb, baseline, result])
  console.log(`${what}: ${result}   (${flexidb} vs ${baseline})`)
}
const us = (x: number) => `${x.toFixed(1)} µs`
const gc = () => (globalThis as { gc?: () => void }).gc?.()

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
  // $extends-based interception.
  const flexi = createFlexiDB({ main: client }, { gracefulShutdown: false })
  await flexi.ready()
  const extended = client.$extends({ query: { $allOperations: ({ args, query }) => query(args) } })
  const query = { where: { id: 1 } }
  const [r, e, g, b] = await compare([
    { name: "raw", run: () => client.user.findUnique(query) },
    { name: "extends", run: () => extended.user.findUnique(query) },
    { name: "get", run: () => flexi.get("main").user.findUnique(query) },
    { name: "batch", run: () => flexi.batch({ main: (c) => c.user.findUnique(query) }) }
  ])
  note(`${label}: findUnique through Prisma's $extends with an empty hook (no flexidb)`, us(e!.us), us(r!.us), `${ratio(e!, r!).toFixed(3)}×`)
  note(`${label}: findUnique through get()`, us(g!.us), us(r!.us), `${ratio(g!, r!).toFixed(3)}× (${ratio(g!, e!).toFixed(3)}× the empty hook)`)
  note(`${label}: batch() with one operation`, us(b!.us), us(r!.us), `${ratio(b!, r!).toFixed(3)}×`)
  if (db.provider === "sqlite") {
    // flexidb's own work per batch, with an operation that does no I/O at all.
    const nothing = () => Promise.resolve(1)
    const [p, n] = await compare([
      { name: "promise", run: () => nothing().then((v) => ({ main: v })) },
      { name: "batch", run: () => flexi.batch({ main: nothing }) }
    ], { blocks: 40, perBlock: 2000 })
    note("batch() bookkeeping alone (an operation with no I/O)", us(n!.us), `${us(p!.us)} (a bare promise)`, `+${((n!.us - p!.us) * 1000).toFixed(0)} ns per batch`)
  }
  await flexi.disconnect()
}

/** Main-thread CPU instructions per SQLite query, under callgrind: repeatable where wall time is not. */
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
    ["raw", "default"], ["extends", "default"], ["get", "default"], ["batch", "default"],
    ["raw", "minimal"], ["batch", "minimal"]
  ])
  await db.drop()
  const find = (variant: string, format: string) => counted.find((c) => c.variant === variant && c.errorFormat === format)
  const k = (n: number) => `${(n / 1000).toFixed(1)} k`
  for (const format of ["default", "minimal"] as const) {
    const raw = find("raw", format)!
    const setting = format === "default" ? "Prisma's default errorFormat" : `errorFormat: "minimal"`
    for (const [variant, what] of [["extends", "$extends with an empty hook (no flexidb)"], ["get", "get()"], ["batch", "batch() with one operation"]] as const) {
      const c = find(variant, format)
      if (c === undefined) continue
      const spread = `spread ${(c.spread * 100).toFixed(1)} % / ${(raw.spread * 100).toFixed(1)} %`
      note(`SQLite instructions per findUnique, ${setting}: ${what}`, k(c.perQuery), `${k(raw.perQuery)} (raw)`, `${(c.perQuery / raw.perQuery).toFixed(3)}× (${spread})`)
    }
  }
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
  note(`heap per registered, connected database`, `${(perDb / 1024).toFixed(1)} KiB`, "—", "includes the extended client, breaker, counters, scope and fibers")
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
    const flexidb = () => execFileSync(process.execPath, [join(repo, "dist", "cli.js"), "generate"], { cwd: root, env, stdio: "ignore" })
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

const main = async () => {
  const sqlite = await createDatabase("sqlite")
  await perQuery("SQLite", sqlite)
  await sqlite.drop()
  const pg = await createDatabase("postgresql")
  await perQuery("PostgreSQL", pg)
  await pg.drop()
  await instructionsPerQuery()
  await batchAcross(4)
  await registry(1000)
  cliGenerate()

  const cpu = cpus()[0]?.model ?? "unknown CPU"
  const table = [
    "| measurement | flexidb | baseline | result |",
    "| --- | --- | --- | --- |",
    ...rows.map((r) => `| ${r.join(" | ")} |`)
  ].join("\n")
  const doc = `# Benchmarks

Measured by \`npm run bench\` (bench/run.ts) on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} × ${cpu},
${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, Prisma 7.10 with driver adapters, PostgreSQL and SQLite on
the same machine. Ratios are flexidb ÷ baseline (lower is better, 1.000 is no overhead).

- **Wall time** (µs rows): raw Prisma, Prisma's \`$extends\` with an empty hook, \`get()\` and \`batch()\` all query
  through one Prisma client, interleaved in blocks of calls; each reports the median of its block means.
- **Instructions** (k rows): CPU instructions per query on the main thread, counted by valgrind's callgrind over 2,000
  queries after 8,000 warm-up queries, each variant in a process of its own (bench/instructions.ts), three times
  over; each row is the median, and its spread ((largest − smallest) ÷ median, flexidb's / raw's) shows how much
  the count moves between processes: what other processes do cannot change it, but the collector's and the JIT's
  decisions differ from one process to the next.

${table}

Targets (issue 4): a query through \`get()\` ≤ 1.02× raw; \`batch()\` with one operation ≤ 1.05× raw.

Wall-time ratios move by about ±5 % from run to run here (the two cores are shared with PostgreSQL, the benchmark's
event loop and the VM's neighbours); instruction ratios by about ±2 %. Read smaller differences as noise.

## Where the time goes

- **Prisma captures the call stack of every query.** Unless the client is built with \`errorFormat: "minimal"\`, each
  model query runs \`new Error()\` when it is called, to point its error messages at your code. On SQLite that is
  about a sixth of a findUnique's instructions (compare the raw baselines of the two instruction blocks), and it
  grows with every frame under the call, optimized frames most. It is the same cost with or without flexidb; an app
  that wants it back can pass \`errorFormat: "minimal"\` to its clients.
- **Prisma's query extension is the floor for \`get()\`.** \`get()\` hands out the client extended with Prisma's
  \`$extends\` query component: the way for queries inside \`$transaction\` (both forms) and raw queries to pass the
  breaker, middleware and statistics while the client keeps its Prisma type. An extension whose hook does nothing
  measured 1.4–3.5 % more instructions than raw across runs (a deep copy of the arguments and two more Prisma
  promises per query); flexidb's own share on top of it (breaker check, two clock reads, counters, one \`then\`)
  measured 0.1–0.8 %, within the noise. In wall time \`get()\` has measured 0–10 % above the empty hook across runs
  this session; where it was far above, its instructions did not account for the gap, which is not explained. The 1.02× target sits at or below the floor of Prisma's
  own extension, so it is not met. With \`intercept: false\`, \`get()\` returns the bare client and costs a \`Map\`
  lookup (≈ 10 ns).
- **Tried and dropped: a Proxy instead of \`$extends\`.** A Proxy over the client that wraps model methods, raw
  queries and transactions (keeping fluent relations, lazy promises and \`$transaction([...])\`) measured 1.057× raw
  in instructions against 1.039× for \`$extends\` (one run each): no gain, because its wrapper frame sits under every
  query when Prisma captures the stack. The tests it prompted (fluent API, tagged raw queries, \`$extends\` on
  \`get()\`'s client, array transactions through asynchronous middleware) stayed.
- **\`batch()\`** starts its operations on a microtask, from a nearly empty stack, so Prisma's capture walks neither
  flexidb's frames nor the caller's: in instructions, 1.085× → 1.034× raw (one run each). Its own bookkeeping (the "bookkeeping
  alone" row: name checks, breaker, counters, the result object) went from 3 µs to under 1 µs by dropping an
  executor, a \`forEach\`, a second \`then\` and \`Object.defineProperty\` for ordinary keys.
- **Removed earlier:** a \`Promise.resolve\` around Prisma's promise (an extra thenable job per query), a template
  string built on every \`get()\`, a tuple allocated by the breaker on every call, a clock read and breaker write after
  every success, and \`Promise.allSettled\` plus intermediate arrays in \`batch()\`.
- **\`batch()\` over several databases** costs the slowest one plus a few percent: the operations run concurrently.
- **\`register()\`** is synchronous (validation, \`$extends\`, a child scope and a forked fiber); connecting happens in
  the background. **\`unregister()\`** closes the database's scope: fibers end, \`$disconnect\` runs.
- **CLI \`generate\` in parallel** gains nothing on this 2-core machine: one \`prisma generate\` already keeps both cores
  busy. On more cores, \`--concurrency\` (default 4) runs that many at once.

How to reproduce: start PostgreSQL on 127.0.0.1:5432 (user postgres, trust), then \`npm ci && npm run bench\`. The
instruction rows need valgrind (\`apt install valgrind\`); without it they are left out.
`
  writeFileSync(join(repo, "BENCHMARKS.md"), doc)
  console.log("\nwrote BENCHMARKS.md")
}

await main()
