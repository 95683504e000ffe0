// npm run bench:telemetry: what telemetry costs per query, side by side in one run (SQLite findUnique through get()).
// Telemetry is decided when an instance is built, so the "no provider" instance is built before the SDK is
// registered and the others after, in one process. Prints markdown rows for BENCHMARKS.md.
import { context, metrics, trace } from "@opentelemetry/api"
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks"
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics"
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { createFlexiDB } from "../src/index.js"
import * as prisma7 from "../test/fixtures/prisma7/clients.ts"
import { createDatabase } from "../test/support/databases.js"
import { pair, pairing, writeSection } from "./harness.js"

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

const variant = (name: string, run: () => PromiseLike<unknown>) => ({ name, run })
const before = () => {
  spans.reset()
  pairing.before()
}
const row = async (what: string, a: ReturnType<typeof variant>, b: ReturnType<typeof variant>) => {
  const r = await pair(a, b, { ...pairing, before })
  const line = `| ${what} | ${us(r.bUs)} | ${us(r.aUs)} | ${r.ratio.toFixed(3)}× (IQR ${r.q1.toFixed(3)}–${r.q3.toFixed(3)}) |`
  rows.push(line)
  console.log(line)
}

const rawV = variant("raw", () => raw.user.findUnique(query))
const offV = variant("get() no provider", () => off.get("off").user.findUnique(query))
const onV = variant("get() SDK", () => on.get("on").user.findUnique(query))
const promV = variant("get() SDK + prometheus", () => withProm.get("prom").user.findUnique(query))

console.log("| what | B | A | B ÷ A |\n| --- | --- | --- | --- |")
await row("get(), no provider registered ÷ the bare client", rawV, offV)
await row("get(), SDK tracer + meter registered ÷ no provider", offV, onV)
await row("get(), SDK registered + `prometheus: true` ÷ no provider", offV, promV)

await Promise.all([off.disconnect(), on.disconnect(), withProm.disconnect(), raw.$disconnect()])
await file.drop()

writeSection("telemetry", [
  "## Telemetry (`npm run bench:telemetry`)",
  "",
  "One run, SQLite `findUnique` through `get()`: direct pairs (ABBA rounds, a scavenge before each block, the median",
  "of the rounds' ratios). \"No provider\" is an instance built before the OpenTelemetry SDK was registered (no",
  "telemetry work on the hot path); \"SDK\" has the SDK's tracer (in-memory exporter, a span per query) and meter",
  "(a duration per query) registered; `prometheus: true` adds flexidb's own meter provider.",
  "",
  "| what | B | A | B ÷ A |",
  "| --- | --- | --- | --- |",
  ...rows
])
process.exit(0)
