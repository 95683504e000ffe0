// One telemetry variant in a process of its own, for bench/telemetry.ts to count under callgrind (bench/instructions.ts
// runs it; the handshake is bench/counted.ts's). Every process builds the same things in the same order — the bare
// client, an instance before the OpenTelemetry SDK is registered, the SDK (in-memory span exporter, a metric
// reader), an instance after it, one with `prometheus: true`, and Prisma's instrumentation (disabled) — so the
// variants differ only in what they run:
// - raw: the bare client; prisma: the bare client with @prisma/instrumentation's tracing enabled;
// - off: get() on the instance built with no provider; on: get() with the SDK's tracer and meter; prom: on +
//   flexidb's own Prometheus series.
import { context, metrics, trace } from "@opentelemetry/api"
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks"
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics"
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { PrismaInstrumentation } from "@prisma/instrumentation"
import { createFlexiDB } from "../src/index.js"
import * as prisma7 from "../test/fixtures/prisma7/clients.ts"
import { counted } from "./counted.js"

class Reader extends MetricReader {
  protected override onShutdown = async () => {}
  protected override onForceFlush = async () => {}
}

const [variant, file, count, warmup] = process.argv.slice(2) as [string, string, string, string]
const raw = prisma7.sqlite(file)
const off = createFlexiDB({ off: prisma7.sqlite(file) }, { gracefulShutdown: false })
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
const spans = new InMemorySpanExporter()
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }))
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new Reader()] }))
const on = createFlexiDB({ on: prisma7.sqlite(file) }, { gracefulShutdown: false })
const prom = createFlexiDB({ prom: prisma7.sqlite(file) }, { gracefulShutdown: false, prometheus: true })
await Promise.all([off.ready(), on.ready(), prom.ready(), raw.$connect()])
const prismaTracing = new PrismaInstrumentation()
if (variant === "prisma") prismaTracing.enable()
else prismaTracing.disable()

const query = { where: { id: 1 } }
const variants: Record<string, () => PromiseLike<unknown>> = {
  raw: () => raw.user.findUnique(query),
  prisma: () => raw.user.findUnique(query),
  off: () => off.get("off").user.findUnique(query),
  on: () => on.get("on").user.findUnique(query),
  prom: () => prom.get("prom").user.findUnique(query)
}
const run = variants[variant]!
// The in-memory exporter keeps every span: emptied after the warm-up and between the measured queries' chunks is
// not needed (2,000 spans), but the warm-up's are dropped so both phases start alike.
await counted(run, Number(warmup), Number(count), () => spans.reset())
await Promise.all([off.disconnect(), on.disconnect(), prom.disconnect(), raw.$disconnect()])
process.exit(0)
