// npm run bench:telemetry: what telemetry costs per query, side by side in one run (SQLite findUnique through
// get()), against @prisma/instrumentation's own tracing of the same query; and how many series a scrape holds as
// tenants are touched (10,000 of them, `tenantLabel: { top: 50 }`). `-- --short` (or BENCH_SHORT=1): a quick run
// to check the bench works (fewer rounds, 100 and 1,000 tenants); its figures are not for BENCHMARKS.md.
// Telemetry is decided when an instance is built, so the "no provider" instance is built before the SDK is
// registered and the others after, in one process. Prints markdown rows for BENCHMARKS.md.
import { context, metrics, trace } from "@opentelemetry/api"
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks"
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics"
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { PrismaInstrumentation } from "@prisma/instrumentation"
import { createFlexiDB } from "../src/index.js"
import * as prisma7 from "../test/fixtures/prisma7/clients.ts"
import { createDatabase } from "../test/support/databases.js"
import { pair, pairing, writeSection } from "./harness.js"

const short = process.argv.includes("--short") || process.env.BENCH_SHORT === "1"

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
const options = short ? { ...pairing, before, rounds: 30, warmup: 3 } : { ...pairing, before }
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
await row("flexidb's spans + metrics (SDK registered) ÷ @prisma/instrumentation's tracing", prismaV, onV)
traced(false)

await Promise.all([off.disconnect(), on.disconnect(), withProm.disconnect(), raw.$disconnect()])

// Series in one scrape as tenants are touched: every tenant is a client of the same SQLite file, run once.
const checkpoints = short ? [100, 1_000] : [1_000, 10_000]
const fleet = createFlexiDB({}, {
  gracefulShutdown: false,
  prometheus: true,
  telemetry: { tenantLabel: { top: 50 } },
  tenants: { resolve: () => prisma7.sqlite(file.url), maxClients: 50 }
})
const series: Array<string> = []
const lines = (text: string) => text.split("\n").filter((l) => l.length > 0 && !l.startsWith("#"))
let touched = 0
for (const at of checkpoints) {
  for (; touched < at; touched++) await (await fleet.tenant(`t${touched}`)).user.count()
  const all = lines(await fleet.metrics())
  const tenantValues = new Set(all.map((l) => /flexidb_tenant="([^"]*)"/.exec(l)?.[1]).filter((t) => t !== undefined))
  const perTenant = all.filter((l) => l.includes(`flexidb_tenant="t0"`)).length
  const perDatabase = all.filter((l) => !l.includes("flexidb_tenant=")).length
  const bound = 60 * perTenant + perDatabase
  const line = `| ${at.toLocaleString("en-US")} | ${all.length} | ${tenantValues.size} | ${perTenant} | ${perDatabase} | ${bound} | ${all.length <= bound ? "yes" : "NO"} |`
  series.push(line)
  console.log(line)
}
await fleet.disconnect()
await file.drop()

if (short) {
  console.log("--short: BENCHMARKS.md left as it is")
  process.exit(0)
}
writeSection("telemetry", [
  "## Telemetry (`npm run bench:telemetry`)",
  "",
  "One run, SQLite `findUnique` through `get()`: direct pairs (ABBA rounds, a scavenge before each block, the median",
  "of the rounds' ratios). \"No provider\" is an instance built before the OpenTelemetry SDK was registered (no",
  "telemetry work on the hot path); \"SDK\" has the SDK's tracer (in-memory exporter, a span per query) and meter",
  "(a duration per query) registered; `prometheus: true` adds flexidb's own series for `metrics()`.",
  "`@prisma/instrumentation`'s tracing is Prisma's own spans for the same query on the bare client (switched on for",
  `its blocks only), with the same SDK registered: Prisma makes ${prismaSpans.length} spans per query (${prismaSpans.join(", ")}),`,
  "flexidb one CLIENT span and a duration point.",
  "",
  "| what | B | A | B ÷ A |",
  "| --- | --- | --- | --- |",
  ...rows,
  "",
  "Series in one scrape of `metrics()` as tenants are touched once each (`tenantLabel: { top: 50 }`, a cache of 50",
  "clients): the bound is 60 × the series of one tenant + the series with no tenant.",
  "",
  "| tenants touched | series | `flexidb_tenant` values | series per tenant | per-database series | bound | within |",
  "| --- | --- | --- | --- | --- | --- | --- |",
  ...series
])
process.exit(0)
