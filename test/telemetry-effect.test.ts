// The Effect API's telemetry through @effect/opentelemetry, as an Effect app sets it up: NodeSdk's layer with the real
// SDK's in-memory span exporter and a metric reader, no global OpenTelemetry provider; real SQLite, PostgreSQL and
// MariaDB.
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import type { HistogramMetricData, MetricData } from "@opentelemetry/sdk-metrics"
import { MetricReader } from "@opentelemetry/sdk-metrics"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { SpanKind, SpanStatusCode } from "@opentelemetry/api"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { Database } from "../src/index.js"
import * as prisma7 from "../test/fixtures/prisma7/clients.ts"
import type { Provider, TestDatabase } from "./support/databases.js"
import { createDatabase, providers } from "./support/databases.js"
import type { AnyClient } from "./support/prisma.js"
import { SECRET } from "./support/prisma.js"
import { FaultProxy } from "./support/proxy.js"

class TestReader extends MetricReader {
  protected override onShutdown = async () => {}
  protected override onForceFlush = async () => {}
}

// The SDK's exporter and reader are shut down (and the exporter emptied) with the layer: the program reads them first.
let spans = new InMemorySpanExporter()
let reader = new TestReader()
const Otel = NodeSdk.layer(() => ({
  resource: { serviceName: "app" },
  spanProcessor: new SimpleSpanProcessor(spans = new InMemorySpanExporter()),
  metricReader: (reader = new TestReader())
}))
let finished: Array<ReadableSpan> = []

/** The metrics now, and the spans finished so far (kept for the test's assertions). */
const collect = Effect.promise(async (): Promise<Array<MetricData>> => {
  finished = [...spans.getFinishedSpans()]
  const { resourceMetrics } = await reader.collect()
  return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics)
})
const points = (all: ReadonlyArray<MetricData>, name: string, database: string) =>
  all.find((m) => m.descriptor.name === name)?.dataPoints.filter((p) => p.attributes["db.namespace"] === database) ?? []
const byName = (name: string) => finished.filter((s) => s.name === name)
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId

const withPassword = (db: TestDatabase) =>
  db.provider === "postgresql" ? db.url.replace("postgres@", `postgres:${SECRET}@`) : db.url
const system: Record<Provider, string> = { sqlite: "sqlite", postgresql: "postgresql", mysql: "mysql" }

describe.each(providers)("Database.query with @effect/opentelemetry on %s", (provider) => {
  it("is a CLIENT span under the app's Effect span, with a duration per query and the member's gauges", async () => {
    const database = await createDatabase(provider)
    const name = `effect_${provider}`
    try {
      const all = await Effect.gen(function*() {
        const db = yield* Database.make(name, prisma7[provider](withPassword(database)) as unknown as AnyClient)
        yield* Effect.gen(function*() {
          yield* db.query((c) => c.user.create({ data: { email: "ada@example.com" } }))
          yield* db.query((c) => c.user.findMany())
          const duplicate = yield* Effect.flip(db.query((c) => c.user.create({ data: { email: "ada@example.com" } })))
          expect(duplicate._tag).toBe("QueryError")
        }).pipe(Effect.withSpan("GET /users"))
        expect(yield* db.health).toBe(true)
        return yield* collect
      }).pipe(Effect.scoped, Effect.provide(Otel), Effect.runPromise)

      const [request] = byName("GET /users")
      const queries = byName(`query ${name}`)
      expect(queries).toHaveLength(3)
      for (const q of queries) {
        expect(q.kind).toBe(SpanKind.CLIENT)
        expect(parentOf(q)).toBe(request!.spanContext().spanId)
        expect(q.attributes).toMatchObject({
          "db.system.name": system[provider],
          "db.namespace": name,
          "db.operation.name": "query",
          "flexidb.role": "write",
          "flexidb.member": 0
        })
      }
      // The server is a host and a port (MariaDB's learnt when its adapter connects), never a URL.
      const server = provider === "sqlite"
        ? {}
        : { "server.address": new URL(database.url).hostname, "server.port": Number(new URL(database.url).port) }
      for (const q of queries) expect(q.attributes).toMatchObject(server)
      if (provider === "sqlite") for (const q of queries) expect(q.attributes["server.address"]).toBeUndefined()
      const failed = queries.filter((q) => q.status.code === SpanStatusCode.ERROR)
      expect(failed.map((q) => q.attributes["error.type"])).toEqual(["P2002"])
      // Health checks are root spans of their own.
      const health = byName(`health ${name}`)
      expect(health.length).toBeGreaterThanOrEqual(1)
      expect(health.every((h) => parentOf(h) === undefined)).toBe(true)

      const duration = points(all, "db.client.operation.duration", name) as HistogramMetricData["dataPoints"]
      expect(duration.reduce((n, p) => n + p.value.count, 0)).toBe(3)
      expect(duration.find((p) => p.attributes["error.type"] === "P2002")?.value.count).toBe(1)
      // Effect's metric tags are strings: the port as one.
      for (const p of duration) expect(p.attributes).toMatchObject(Object.fromEntries(Object.entries(server).map(([k, v]) => [k, String(v)])))
      expect(duration[0]!.value.buckets.boundaries).toEqual([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10])
      expect(points(all, "flexidb.member.healthy", name).map((p) => p.value)).toEqual([1])
      expect(points(all, "flexidb.circuit.state", name).map((p) => p.value)).toEqual([0])

      const shown = JSON.stringify([finished.map((s) => [s.attributes, s.events, s.status]), all])
      expect(shown).not.toContain(SECRET)
      expect(shown).not.toMatch(/postgres(ql)?:\/\/|mysql:\/\//)
    } finally {
      await database.drop()
    }
  })
})

describe("Database.query refused by an open circuit, with @effect/opentelemetry", () => {
  it("counts the rejection, records no duration for it, and shows the circuit open", async () => {
    const database = await createDatabase("postgresql")
    const proxy = await FaultProxy.start(5432)
    try {
      const url = new URL(withPassword(database))
      url.port = String(proxy.port)
      const all = await Effect.gen(function*() {
        const db = yield* Database.make("flaky", prisma7.postgresql(url.toString()) as unknown as AnyClient, {
          reconnect: { enabled: false },
          circuitBreaker: { threshold: 1, resetTimeout: "1 hour" }
        })
        yield* Effect.promise(() => proxy.refuse())
        expect((yield* Effect.flip(db.query((c) => c.user.count())))._tag).toBe("QueryError")
        expect((yield* Effect.flip(db.query((c) => c.user.count())))._tag).toBe("CircuitOpenError")
        expect(yield* db.health).toBe(false)
        return yield* collect
      }).pipe(Effect.scoped, Effect.provide(Otel), Effect.runPromise)

      expect(points(all, "flexidb.operations.rejected", "flaky").map((p) => [p.attributes["db.operation.name"], p.value]))
        .toEqual([["query", 1]])
      const duration = points(all, "db.client.operation.duration", "flaky") as HistogramMetricData["dataPoints"]
      expect(duration.reduce((n, p) => n + p.value.count, 0)).toBe(1)
      expect(points(all, "flexidb.circuit.state", "flaky").map((p) => p.value)).toEqual([2])
      expect(points(all, "flexidb.member.healthy", "flaky").map((p) => p.value)).toEqual([0])
      const refused = byName("query flaky").filter((s) => s.attributes["error.type"] === "FLEXIDB_CIRCUIT_OPEN")
      expect(refused).toHaveLength(1)
      const shown = JSON.stringify([finished.map((s) => [s.attributes, s.events, s.status]), all])
      expect(shown).not.toContain(SECRET)
    } finally {
      await proxy.close()
      await database.drop()
    }
  })
})
