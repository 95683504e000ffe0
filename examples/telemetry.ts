// Observability: flexidb's spans and its /metrics text for a small SQLite run. Register the OpenTelemetry providers
// before createFlexiDB (here the SDK's, printing to the console); flexidb then traces and measures every operation.
import { PrismaBetterSqlite3 } from "@prisma/adapter-better-sqlite3"
import { context, trace } from "@opentelemetry/api"
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks"
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { mkdirSync, rmSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import { createFlexiDB } from "../src/index.js"
import { PrismaClient as AnalyticsClient } from "./generated/analytics/client.ts"
import { PrismaClient as UsersClient } from "./generated/users/client.ts"

const data = join(import.meta.dirname, ".data-telemetry")
rmSync(data, { recursive: true, force: true })
mkdirSync(data, { recursive: true })
const sqlite = (name: string) => new PrismaBetterSqlite3({ url: `file:${join(data, `${name}.db`)}` })

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
const spans = new InMemorySpanExporter()
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }))

const db = createFlexiDB(
  { users: new UsersClient({ adapter: sqlite("users") }), analytics: new AnalyticsClient({ adapter: sqlite("analytics") }) },
  { prometheus: true, gracefulShutdown: false }
)
await db.ready()
await db.get("users").$executeRawUnsafe(`CREATE TABLE "User" (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL)`)
await db.get("analytics").$executeRawUnsafe(`CREATE TABLE "Event" (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, userId INTEGER NOT NULL)`)
spans.reset()

// An app's request span: flexidb's spans are its children.
await trace.getTracer("app").startActiveSpan("POST /signup", async (span) => {
  const ada = await db.get("users").user.create({ data: { email: "ada@example.com", name: "Ada" } })
  await db.get("users").user.create({ data: { email: "ada@example.com", name: "Ada" } }).catch(() => {})
  await db.batch({ users: (c) => c.user.count(), analytics: (c) => c.event.create({ data: { kind: "signup", userId: ada.id } }) })
  span.end()
})

console.log("▸ spans (name, kind, parent, attributes)")
const names = new Map(spans.getFinishedSpans().map((s) => [s.spanContext().spanId, s.name]))
for (const s of spans.getFinishedSpans()) {
  const parent = s.parentSpanContext === undefined ? "-" : names.get(s.parentSpanContext.spanId) ?? "?"
  const status = s.status.code === 2 ? ` ERROR ${s.attributes["error.type"]}` : ""
  console.log(`  ${s.name.padEnd(18)} ${["INTERNAL", "SERVER", "CLIENT"][s.kind]!.padEnd(8)} ← ${parent.padEnd(14)}${status}`)
}
const [create] = spans.getFinishedSpans()
console.log(`  attributes of "${create!.name}": ${JSON.stringify(create!.attributes)}`)

// The /metrics route: db.metricsHandler() for node:http (Express and Fastify take it as well).
const server = createServer(db.metricsHandler())
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`)
console.log(`\n▸ GET /metrics → ${response.status} ${response.headers.get("content-type")}: operation counts and gauges`)
const text = await response.text()
console.log(text.split("\n").filter((l) => /_count\{|^flexidb_|^# TYPE/.test(l)).join("\n"))
server.close()

await db.disconnect()
rmSync(data, { recursive: true, force: true })
