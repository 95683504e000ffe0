// npm run bench:telemetry: what telemetry costs per query, side by side in one run (SQLite findUnique through
// get()), against @prisma/instrumentation's own tracing of the same query; and how many series a scrape holds as
// tenants are touched (10,000 of them, `tenantLabel: { top: 50 }`). `-- --short` (or BENCH_SHORT=1): a quick run
// to check the bench works (fewer rounds, 100 and 1,000 tenants); its figures are not for BENCHMARKS.md.
// Telemetry is decided when an instance is built, so the "no provider" instance is built before the SDK is
// registered and the others after, in one process. Prints markdown rows for BENCHMARKS.md. Three parts, each with
// its own section there: `-- --only=time`, `--only=instructions` (callgrind), `--only=series` run one.
import { context, metrics, trace } from "@opentelemetry/api"
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks"
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics"
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { PrismaInstrumentation } from "@prisma/instrumentation"
import { createFlexiDB } from "../src/index.js"
import * as prisma7 from "../test/fixtures/prisma7/clients.ts"
import { createDatabase } from "../test/support/databases.js"
import { pair, pairing, writeSection } from "./harness.js"
import * as instructions from "./instructions.js"

const short = process.argv.includes("--short") || process.env.BENCH_SHORT === "1"
const only = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length)
const part = (name: "time" | "instructions" | "series") => only === undefined || only === name

class Reader extends MetricReader {
  protected override onShutdown = async () => {}
  protected override onForceFlush = async () => {}
}

const us = (x: number) => `${x.toFixed(x < 10 ? 2 : 1)} µs`
const rows: Array<string> = []
const file = await createDatabase("sqlite")
const seed = prisma7.sqlite(file.url)
await seed.user.create({ data: { id: 1, email: "bench@x.io" } })
await seed.$disconnect()
const query = { where: { id: 1 } }
const open = (name: string, options = {}) => createFlexiDB({ [name]: prisma7.sqlite(file.url) }, { gracefulShutdown: false, ...options })

if (part("time")) {
const raw = prisma7.sqlite(file.url)
const off = open("off")

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
const spans = new InMemorySpanExporter()
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }))
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new Reader()] }))
const on = open("on")
const withProm = open("prom", { prometheus: true })
await Promise.all([off.ready(), on.ready(), withProm.ready(), raw.$connect()])

// Prisma's own tracing, switched on only for the blocks that measure it: Prisma reads its global tracing helper
// per query, so one client serves both sides. The switch happens at a block's first call, not per call.
const prismaTracing = new PrismaInstrumentation()
prismaTracing.disable()
let tracing = false
const traced = (on: boolean) => {
  if (tracing === on) return
  tracing = on
  if (on) prismaTracing.enable()
  else prismaTracing.disable()
}

const variant = (name: string, run: () => PromiseLike<unknown>, prisma = false) => ({
  name,
  run: () => {
    traced(prisma)
    return run()
  }
})
const before = () => {
  spans.reset()
  pairing.before()
}
// Many short ABBA rounds: the ratio is the median over rounds, so a step in the shared machine's speed skews few.
const options = short ? { ...pairing, before, rounds: 30, warmup: 3 } : { ...pairing, before, rounds: 1_000 }
const row = async (what: string, a: ReturnType<typeof variant>, b: ReturnType<typeof variant>) => {
  const r = await pair(a, b, options)
  const line = `| ${what} | ${us(r.bUs)} | ${us(r.aUs)} | ${r.ratio.toFixed(3)}× (IQR ${r.q1.toFixed(3)}–${r.q3.toFixed(3)}) |`
  rows.push(line)
  console.log(line)
}

const rawV = variant("raw", () => raw.user.findUnique(query))
const prismaV = variant("raw, Prisma's tracing", () => raw.user.findUnique(query), true)
const offV = variant("get() no provider", () => off.get("off").user.findUnique(query))
const onV = variant("get() SDK", () => on.get("on").user.findUnique(query))
const promV = variant("get() SDK + prometheus", () => withProm.get("prom").user.findUnique(query))

// Each side does what it says: Prisma's tracing makes spans of its own, flexidb's one CLIENT span per operation.
traced(true)
spans.reset()
await raw.user.findUnique(query)
const prismaSpans = spans.getFinishedSpans().map((s) => s.name)
traced(false)
spans.reset()
await on.get("on").user.findUnique(query)
const flexidbSpans = spans.getFinishedSpans().map((s) => s.name)
if (prismaSpans.length === 0 || !flexidbSpans.includes("User.findUnique on")) {
  throw new Error(`the variants do not trace as they should: Prisma ${prismaSpans}, flexidb ${flexidbSpans}`)
}
console.log(`Prisma's spans per query: ${prismaSpans.join(", ")}; flexidb's: ${flexidbSpans.join(", ")}`)

console.log("| what | B | A | B ÷ A |\n| --- | --- | --- | --- |")
await row("get(), no provider registered ÷ the bare client", rawV, offV)
await row("get(), SDK tracer + meter registered ÷ no provider", offV, onV)
await row("get(), SDK registered + `prometheus: true` ÷ no provider", offV, promV)
await row("@prisma/instrumentation's tracing (SDK registered) ÷ the bare client", rawV, prismaV)
await row("get(), SDK registered ÷ the bare client with @prisma/instrumentation's tracing (get()'s own cost included)", prismaV, onV)
traced(false)

await Promise.all([off.disconnect(), on.disconnect(), withProm.disconnect(), raw.$disconnect()])
if (!short) {
  writeSection("telemetry", [
    "## Telemetry (`npm run bench:telemetry`)",
    "",
    "One run, SQLite `findUnique` through `get()`: direct pairs (1,000 ABBA rounds of 20 calls a block, a scavenge",
    "before each block, the median of the rounds' ratios). \"No provider\" is an instance built before the",
    "OpenTelemetry SDK was registered (no telemetry work on the hot path); \"SDK\" has the SDK's tracer (in-memory",
    "exporter, a span per query) and meter (a duration per query) registered; `prometheus: true` adds flexidb's own",
    "series for `metrics()`. `@prisma/instrumentation`'s tracing is Prisma's own spans for the same query on the bare",
    `client (switched on for its blocks only), with the same SDK registered: Prisma makes ${prismaSpans.length} spans per query`,
    `(${prismaSpans.join(", ")}), flexidb one CLIENT span and a duration point. Wall time on a shared 2-core machine:`,
    "the instruction counts below are the figures to compare.",
    "",
    "| what | B | A | B ÷ A |",
    "| --- | --- | --- | --- |",
    ...rows
  ])
}
}

// Instructions per query under callgrind (bench/count-telemetry.ts, one process per variant), which the machine's
// load does not move: what each side's telemetry adds is its variant minus its own baseline.
const counted: Array<string> = []
let countedNote = "valgrind not found: instruction counts skipped"
// BENCH_CALLGRIND=repeats,queries,warmup overrides the sizes (3 processes a variant of 2,000 queries after 8,000).
const [repeats, queries, warmup] = (process.env.BENCH_CALLGRIND ?? (short ? "1,500,2000" : "3,2000,8000")).split(",").map(Number)
const callgrind = { repeats: repeats!, queries: queries!, warmup: warmup! }
if (part("instructions") && instructions.available()) {
  const variants = ["raw", "prisma", "off", "on", "prom"] as const
  const c = await instructions.countAll(file.url, variants.map((v) => [v, "default"] as const), {
    script: new URL("./count-telemetry.ts", import.meta.url).pathname,
    ...callgrind
  })
  const of = (v: string) => c.find((x) => x.variant === v)!
  const k = (n: number) => `${(n / 1000).toFixed(1)} k`
  const spread = (v: string) => `${(of(v).spread * 100).toFixed(1)} %`
  const prismaCost = of("prisma").perQuery - of("raw").perQuery
  const flexiCost = of("on").perQuery - of("off").perQuery
  const promCost = of("prom").perQuery - of("off").perQuery
  for (const [what, n, spreadOf] of [
    ["bare client", of("raw").perQuery, spread("raw")],
    ["bare client + @prisma/instrumentation's tracing", of("prisma").perQuery, spread("prisma")],
    ["get(), no provider registered", of("off").perQuery, spread("off")],
    ["get(), SDK tracer + meter registered", of("on").perQuery, spread("on")],
    ["get(), SDK registered + `prometheus: true`", of("prom").perQuery, spread("prom")]
  ] as const) counted.push(`| ${what} | ${k(n)} | ${spreadOf} |`)
  countedNote = `Prisma's tracing adds ${k(prismaCost)} instructions per query; flexidb's spans + metrics add ` +
    `${k(flexiCost)} (${(flexiCost / prismaCost).toFixed(2)}× Prisma's), with \`prometheus: true\` ${k(promCost)} ` +
    `(${(promCost / prismaCost).toFixed(2)}×).`
  for (const line of counted) console.log(line)
  console.log(countedNote)
  if (!short) {
    writeSection("telemetry-instructions", [
      "Main-thread instructions per query outside the garbage collector, counted by callgrind",
      "(`npm run bench:telemetry -- --only=instructions`; bench/count-telemetry.ts: every process builds the same",
      "clients, instances, SDK and instrumentation and runs one variant;",
      `${callgrind.repeats === 1 ? "one process a variant" : `median of ${callgrind.repeats} processes a variant`}, ` +
        `${callgrind.queries.toLocaleString("en-US")} queries counted after ${callgrind.warmup.toLocaleString("en-US")}; ` +
        "the spread is (largest − smallest) ÷ median). The machine's load does not move them.",
      "",
      "| variant | instructions per query | spread |",
      "| --- | --- | --- |",
      ...counted,
      "",
      countedNote
    ])
  }
}

// Series in one scrape as tenants are touched: every tenant is a client of the same SQLite file, run once.
if (part("series")) {
const hot = process.argv.includes("--hot")
const checkpoints = short ? [100, 1_000] : [1_000, 2_500, 5_000, 10_000]
const started = performance.now()
const fleet = createFlexiDB({}, {
  gracefulShutdown: false,
  prometheus: true,
  telemetry: { tenantLabel: { top: 50 } },
  tenants: { resolve: () => prisma7.sqlite(file.url), maxClients: hot ? 200 : 50 }
})
const series: Array<string> = []
const lines = (text: string) => text.split("\n").filter((l) => l.length > 0 && !l.startsWith("#"))
let touched = 0
for (const at of checkpoints) {
  for (; touched < at; touched++) {
    await (await fleet.tenant(`t${touched}`)).user.count()
    // `--hot`: 50 busy tenants besides, each touched once every 100 new ones, so the top set is theirs.
    if (hot && touched % 100 === 0) for (let h = 0; h < 50; h++) await (await fleet.tenant(`h${h}`)).user.count()
  }
  const all = lines(await fleet.metrics())
  const tenantValues = new Set(all.map((l) => /flexidb_tenant="([^"]*)"/.exec(l)?.[1]).filter((t) => t !== undefined))
  // A tenant's series: the most any one value has (`other` included, which has the same metrics as a tenant). Not
  // one named tenant's: right after the window's rerank, tenants new to the top set have no series yet.
  const counts = new Map<string, number>()
  for (const l of all) {
    const t = /flexidb_tenant="([^"]*)"/.exec(l)?.[1]
    if (t !== undefined) counts.set(t, (counts.get(t) ?? 0) + 1)
  }
  const perTenant = Math.max(0, ...counts.values())
  const perDatabase = all.filter((l) => !l.includes("flexidb_tenant=")).length
  const bound = 60 * perTenant + perDatabase
  const line = `| ${at.toLocaleString("en-US")} | ${all.length} | ${tenantValues.size} | ${perTenant} | ${perDatabase} | ${bound} | ${all.length <= bound ? "yes" : "NO"} |`
  series.push(line)
  console.log(`${line} (${((performance.now() - started) / 1000).toFixed(0)} s)`)
}
await fleet.disconnect()
if (!short) {
  writeSection(hot ? "telemetry-series-hot" : "telemetry-series", [
    ...(hot ? [
      "The same with 50 busy tenants besides (`-- --only=series --hot`: each touched once every 100 new tenants, a",
      "cache of 200 clients), so the top set is theirs and each has its own series:"
    ] : [
      "Series in one scrape of `metrics()` as tenants are touched once each, one after another",
      "(`npm run bench:telemetry -- --only=series`; `tenantLabel: { top: 50 }`, a cache of 50 clients, every tenant a",
      "client of one SQLite file): the bound is 60 × the series of one tenant + the series with no tenant. Touched",
      "once each, no tenant is busier than another: after each rerank of the window the top set holds tenants that",
      "have run nothing since, so `other` carries them all."
    ]),
    "",
    "| tenants touched | series | `flexidb_tenant` values | series per tenant | per-database series | bound | within |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...series
  ])
}
}
await file.drop()
if (short) console.log("--short: BENCHMARKS.md left as it is")
process.exit(0)
