// OpenTelemetry and Prometheus, with the real SDK registered globally in this file's worker (vitest isolates files:
// telemetry-off.test.ts sees no provider) and real SQLite, PostgreSQL and MariaDB.
import type { Attributes } from "@opentelemetry/api"
import { context, metrics, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api"
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks"
import type { HistogramMetricData, MetricData } from "@opentelemetry/sdk-metrics"
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import parsePrometheus from "parse-prometheus-text-format"
import { PrismaMariaDb } from "@prisma/adapter-mariadb"
import { PrismaPg } from "@prisma/adapter-pg"
import pg from "pg"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { createFlexiDB } from "../src/index.js"
import * as prisma7 from "../test/fixtures/prisma7/clients.ts"
import type { Provider, TestDatabase } from "./support/databases.js"
import { createDatabase, providers } from "./support/databases.js"
import type { AnyClient } from "./support/prisma.js"
import { downClient, SECRET } from "./support/prisma.js"

/** An in-memory reader: the SDK's collection, read when the test asks. */
class TestReader extends MetricReader {
  protected override onShutdown = async () => {}
  protected override onForceFlush = async () => {}
}

const spans = new InMemorySpanExporter()
const reader = new TestReader()
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] })
const meterProvider = new MeterProvider({ readers: [reader] })
const app = () => trace.getTracer("app")

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  trace.setGlobalTracerProvider(tracerProvider)
  metrics.setGlobalMeterProvider(meterProvider)
})
afterAll(async () => {
  await tracerProvider.shutdown()
  await meterProvider.shutdown()
})
beforeEach(() => spans.reset())

const collected = async (): Promise<Array<MetricData>> => {
  const { resourceMetrics } = await reader.collect()
  return resourceMetrics.scopeMetrics.filter((s) => s.scope.name === "flexidb").flatMap((s) => s.metrics)
}
const metric = (all: ReadonlyArray<MetricData>, name: string) => all.find((m) => m.descriptor.name === name)

/** Prometheus samples by name. The parser folds a labelled histogram into one series: its samples are read untyped. */
const prometheus = (text: string) => {
  const families = parsePrometheus(text.replace(/^# TYPE (\S+) histogram$/gm, "# TYPE $1 untyped"))
  return (name: string) =>
    families.filter((f) => f.name === name).flatMap((f) => f.metrics)
}
/** OpenTelemetry attributes as Prometheus labels. */
const asLabels = (attributes: Attributes) =>
  Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k.replace(/\./g, "_"), String(v)]))
const matches = (labels: Record<string, string> | undefined, wanted: Record<string, string>) => {
  const { otel_scope_name: _, le: __, ...rest } = labels ?? {}
  return JSON.stringify(Object.entries(rest).sort()) === JSON.stringify(Object.entries(wanted).sort())
}

const withPassword = (db: TestDatabase) =>
  db.provider === "postgresql" ? db.url.replace("postgres@", `postgres:${SECRET}@`) : db.url
const client = (db: TestDatabase): AnyClient => prisma7[db.provider](withPassword(db)) as unknown as AnyClient
const system: Record<Provider, string> = { sqlite: "sqlite", postgresql: "postgresql", mysql: "mysql" }
// Where the driver adapter says it connects (PrismaPg's config; PrismaMariaDb keeps its config private).
const server: Record<Provider, Attributes> = {
  sqlite: {},
  postgresql: { "server.address": "127.0.0.1", "server.port": 5432 },
  mysql: { "server.address": "127.0.0.1", "server.port": 3306 }
}

const byName = (name: string) => spans.getFinishedSpans().filter((s) => s.name === name)
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId

describe.each(providers)("telemetry on %s", (provider) => {
  let a: TestDatabase
  let b: TestDatabase
  beforeAll(async () => {
    a = await createDatabase(provider)
    b = await createDatabase(provider)
  }, 30_000)
  afterAll(async () => {
    await a?.drop()
    await b?.drop()
  })

  it("makes a CLIENT span per operation under the app's span, batch children, and metrics that agree", async () => {
    const main = `main_${provider}`
    const other = `other_${provider}`
    const db = createFlexiDB({ [main]: client(a), [other]: client(b) }, { prometheus: true, gracefulShutdown: false })
    try {
      expect(await db.ready()).toEqual({ [main]: true, [other]: true })
      spans.reset() // the first connections' probes are not operations
      const request = await app().startActiveSpan("GET /users", async (span) => {
        await db.get(main).user.create({ data: { email: "ada@example.com" } })
        await db.get(main).user.findMany()
        await expect(db.get(main).user.create({ data: { email: "ada@example.com" } })).rejects.toMatchObject({ code: "P2002" })
        await db.batch({ [main]: (c: AnyClient) => c.user.count(), [other]: (c: AnyClient) => c.user.count() })
        await db.health()
        span.end()
        return span
      })
      const requestId = request.spanContext().spanId

      const [findMany] = byName(`User.findMany ${main}`)
      expect(findMany!.kind).toBe(SpanKind.CLIENT)
      expect(parentOf(findMany!)).toBe(requestId)
      expect(findMany!.spanContext().traceId).toBe(request.spanContext().traceId)
      expect(findMany!.attributes).toEqual({
        "db.system.name": system[provider],
        "db.namespace": main,
        ...server[provider],
        "db.operation.name": "User.findMany",
        "db.query.summary": "SELECT User",
        "flexidb.role": "write",
        "flexidb.member": 0
      })

      const creates = byName(`User.create ${main}`)
      expect(creates).toHaveLength(2)
      const failed = creates.find((s) => s.status.code === SpanStatusCode.ERROR)!
      expect(failed.attributes["error.type"]).toBe("P2002")
      expect(failed.attributes["db.response.status_code"]).toBe(
        { sqlite: "SQLITE_CONSTRAINT_UNIQUE", postgresql: "23505", mysql: "1062" }[provider]
      )
      expect(failed.attributes["db.query.summary"]).toBe("INSERT User")
      expect(failed.status.message).toMatch(/Unique constraint/)
      expect(failed.events.map((e) => e.name)).toEqual(["exception"])

      const [batch] = byName("batch")
      expect(parentOf(batch!)).toBe(requestId)
      const children = [...byName(`batch ${main}`), ...byName(`batch ${other}`)]
      expect(children).toHaveLength(2)
      for (const child of children) {
        expect(child.kind).toBe(SpanKind.CLIENT)
        expect(parentOf(child)).toBe(batch!.spanContext().spanId)
        expect(child.attributes["db.operation.name"]).toBe("batch")
      }

      // Health checks are root spans of their own, not under the request that asked for them.
      const health = byName(`health ${main}`)
      expect(health).toHaveLength(1)
      expect(parentOf(health[0]!)).toBeUndefined()

      // The duration histogram counts each operation once: its count is stats().totalQueries.
      const all = await collected()
      const duration = metric(all, "db.client.operation.duration") as HistogramMetricData
      expect(duration.descriptor.unit).toBe("s")
      const points = duration.dataPoints.filter((p) => p.attributes["db.namespace"] === main)
      const stats = db.stats()
      expect(points.reduce((n, p) => n + p.value.count, 0)).toBe(stats[main]!.totalQueries)
      expect(stats[main]!.totalQueries).toBe(4)
      expect(points.find((p) => p.attributes["error.type"] === "P2002")?.value.count).toBe(1)
      expect(points[0]!.value.buckets.boundaries).toEqual([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10])
      const healthy = metric(all, "flexidb.member.healthy")!.dataPoints.find((p) => p.attributes["db.namespace"] === main)
      expect(healthy?.value).toBe(1)
      const circuit = metric(all, "flexidb.circuit.state")!.dataPoints.find((p) => p.attributes["db.namespace"] === main)
      expect(circuit?.value).toBe(0)

      // The same numbers in Prometheus' text format, read back by a parser.
      const text = await db.metrics()
      expect(parsePrometheus(text).find((f) => f.name === "db_client_operation_duration")?.type).toBe("HISTOGRAM")
      const samples = prometheus(text)
      for (const p of duration.dataPoints.filter((p) => [main, other].includes(String(p.attributes["db.namespace"])))) {
        const wanted = asLabels(p.attributes)
        const count = samples("db_client_operation_duration_count").filter((s) => matches(s.labels, wanted))
        expect(count.map((s) => Number(s.value)), JSON.stringify(wanted)).toEqual([p.value.count])
        const sum = samples("db_client_operation_duration_sum").find((s) => matches(s.labels, wanted))
        expect(Number(sum!.value)).toBeCloseTo(p.value.sum!, 9)
        const inf = samples("db_client_operation_duration_bucket").find((s) => matches(s.labels, wanted) && s.labels!.le === "+Inf")
        expect(Number(inf!.value)).toBe(p.value.count)
      }
      const up = samples("flexidb_member_healthy").find((s) => s.labels?.db_namespace === main)
      expect(up?.value).toBe("1")

      // No credential anywhere.
      const shown = JSON.stringify([spans.getFinishedSpans().map((s) => [s.name, s.attributes, s.events, s.status]), all]) + text
      expect(shown).not.toContain(SECRET)
      expect(shown).not.toMatch(/postgres(ql)?:\/\/|mysql:\/\//)
    } finally {
      await db.disconnect()
    }
  })
})

describe.each(providers)("semantic-convention attributes on %s", (provider) => {
  it("summarize raw SQL by kind and first table, keep values out unless queryText, and give the database's error code", async () => {
    const database = await createDatabase(provider)
    const q = provider === "mysql" ? "`" : '"'
    const plain = createFlexiDB({ raw: client(database) }, { gracefulShutdown: false, prometheus: true })
    const texted = createFlexiDB({ texted: client(database) }, { gracefulShutdown: false, telemetry: { queryText: true } })
    try {
      await plain.ready()
      await texted.ready()
      const email = "grace@example.com"
      await plain.get("raw").$executeRawUnsafe(`INSERT INTO ${q}User${q} (email) VALUES ('${email}')`)
      // A tagged template whose table is quoted for this provider.
      const strings = Object.assign([`SELECT id FROM ${q}User${q} WHERE email = `, ""], { raw: [`SELECT id FROM ${q}User${q} WHERE email = `, ""] })
      await plain.get("raw").$queryRaw(strings, email)
      await texted.get("texted").$queryRawUnsafe(`SELECT id, 42 AS n FROM ${q}User${q} WHERE email = '${email}' /* ${email} */`)
      await expect(texted.get("texted").$queryRawUnsafe(`SELECT nope FROM ${q}User${q}`)).rejects.toThrow()

      const [insert] = byName("$executeRawUnsafe raw")
      expect(insert!.attributes["db.query.summary"]).toBe("INSERT User")
      expect(insert!.attributes["db.query.text"]).toBeUndefined()
      const [select] = byName("$queryRaw raw")
      expect(select!.attributes["db.query.summary"]).toBe("SELECT User")
      const [withText, failed] = byName("$queryRawUnsafe texted")
      expect(withText!.attributes["db.query.summary"]).toBe("SELECT User")
      expect(withText!.attributes["db.query.text"]).toBe(`SELECT id, ? AS n FROM ${q}User${q} WHERE email = ?`)
      expect(failed!.attributes["error.type"]).toEqual(expect.any(String))
      // The database's own code, as the driver adapter passes it on.
      expect(failed!.attributes["db.response.status_code"]).toBe({ sqlite: "SQLITE_ERROR", postgresql: "42703", mysql: "1054" }[provider])
      const shown = JSON.stringify(spans.getFinishedSpans().map((s) => [s.name, s.attributes, s.events, s.status])) +
        await plain.metrics()
      expect(shown).not.toContain(email)
      expect(shown).not.toContain(SECRET)
      expect(await plain.metrics()).toMatch(/db_query_summary="INSERT User"/)
    } finally {
      await plain.disconnect()
      await texted.disconnect()
      await database.drop()
    }
  })
})

/** The pool metrics of one database, by state, and its waiting requests. */
const poolMetrics = async (name: string) => {
  const all = await collected()
  const of = (metricName: string) =>
    metric(all, metricName)?.dataPoints.filter((p) => p.attributes["db.client.connection.pool.name"] === name) ?? []
  const count = of("db.client.connection.count")
  return {
    idle: count.find((p) => p.attributes["db.client.connection.state"] === "idle")?.value,
    used: count.find((p) => p.attributes["db.client.connection.state"] === "used")?.value,
    pending: of("db.client.connection.pending_requests")[0]?.value,
    attributes: count[0]?.attributes
  }
}

const pooled = {
  "a pg Pool the adapter made": (url: string) =>
    new prisma7.PostgresClient({ adapter: new PrismaPg({ connectionString: url, max: 2 }) }) as unknown as AnyClient,
  // flexidb ends the pool with the client: Prisma's adapter leaves the app's own pool open otherwise.
  "a pg Pool the app gave the adapter": (url: string) =>
    new prisma7.PostgresClient({
      adapter: new PrismaPg(new pg.Pool({ connectionString: url, max: 2 }), { disposeExternalPool: true })
    }) as unknown as AnyClient,
  "a mariadb Pool": (url: string) =>
    new prisma7.MysqlClient({ adapter: new PrismaMariaDb(`${url}?connectionLimit=2&acquireTimeout=10000`) }) as unknown as AnyClient
}

describe.each(Object.keys(pooled) as Array<keyof typeof pooled>)("pool metrics of %s", (kind) => {
  it("count used and idle connections and the requests waiting for one, labelled with the database", async () => {
    const provider: Provider = kind === "a mariadb Pool" ? "mysql" : "postgresql"
    const database = await createDatabase(provider)
    const name = `pool_${provider}`
    const db = createFlexiDB({ [name]: pooled[kind](withPassword(database)) }, { gracefulShutdown: false })
    try {
      await db.ready()
      const sleep = provider === "mysql" ? "SELECT SLEEP(0.6)" : "SELECT pg_sleep(0.6)::text"
      // Five slow queries on a pool of two: two run, three wait. (Prisma's queries start when awaited.)
      const running = Promise.all(Array.from({ length: 5 }, () => db.get(name).$queryRawUnsafe(sleep)))
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(await poolMetrics(name)).toMatchObject({ used: 2, idle: 0, pending: 3 })
      await running
      const after = await poolMetrics(name)
      expect(after).toMatchObject({ used: 0, pending: 0 })
      expect(after.idle).toBeGreaterThanOrEqual(1)
      expect(after.attributes).toEqual({
        "db.client.connection.pool.name": name,
        "db.client.connection.state": "idle",
        "flexidb.role": "write",
        "flexidb.member": 0
      })
      expect(JSON.stringify(await collected())).not.toContain(SECRET)
    } finally {
      await db.disconnect()
      await database.drop()
    }
  })
})

describe("telemetry of failures and tenants", () => {
  it("counts operations refused by an open circuit, and shows the circuit open", async () => {
    const db = createFlexiDB(
      { down: downClient(prisma7, "postgresql") },
      { prometheus: true, gracefulShutdown: false, retry: { attempts: 0 }, reconnect: { enabled: false }, circuitBreaker: { threshold: 1 } }
    )
    try {
      await db.ready()
      spans.reset()
      await expect(db.get("down").user.findMany()).rejects.toThrow()
      await expect(db.get("down").user.findMany()).rejects.toMatchObject({ code: "FLEXIDB_CIRCUIT_OPEN" })
      const [span] = byName("User.findMany down")
      expect(span!.status.code).toBe(SpanStatusCode.ERROR)
      expect(span!.attributes["error.type"]).toEqual(expect.any(String))
      const all = await collected()
      const rejected = metric(all, "flexidb.operations.rejected")!.dataPoints.filter((p) => p.attributes["db.namespace"] === "down")
      expect(rejected.map((p) => [p.attributes["db.operation.name"], p.value])).toEqual([["User.findMany", 1]])
      const circuit = metric(all, "flexidb.circuit.state")!.dataPoints.find((p) => p.attributes["db.namespace"] === "down")
      expect(circuit?.value).toBe(2)
      const healthy = metric(all, "flexidb.member.healthy")!.dataPoints.find((p) => p.attributes["db.namespace"] === "down")
      expect(healthy?.value).toBe(0)
      const text = await db.metrics()
      expect(prometheus(text)("flexidb_operations_rejected_total").find((s) => s.labels?.db_namespace === "down")?.value)
        .toBe("1")
      const shown = JSON.stringify([spans.getFinishedSpans().map((s) => [s.attributes, s.events, s.status]), all]) + text
      expect(shown).not.toContain(SECRET)
    } finally {
      await db.disconnect()
    }
  })

  it("keeps each tenant's name on its spans while its metrics report the bounded value", async () => {
    const files: Array<TestDatabase> = []
    const db = createFlexiDB({}, {
      gracefulShutdown: false,
      telemetry: { tenantLabel: { top: 1 } },
      tenants: {
        resolve: async () => {
          const file = await createDatabase("sqlite")
          files.push(file)
          return prisma7.sqlite(file.url)
        }
      }
    })
    try {
      await (await db.tenant("first")).user.count()
      await (await db.tenant("second")).user.count()
      const [span] = byName("User.count second")
      expect(span!.attributes).toMatchObject({ "flexidb.tenant": "second", "db.namespace": "second" })
      // The global SDK's meter: the second tenant, outside the top one, is `other` on every label.
      const duration = metric(await collected(), "db.client.operation.duration") as HistogramMetricData
      const tenants = duration.dataPoints
        .filter((p) => p.attributes["db.operation.name"] === "User.count" && p.attributes["flexidb.tenant"] !== undefined)
        .map((p) => [p.attributes["flexidb.tenant"], p.attributes["db.namespace"], p.value.count])
      expect(tenants).toEqual(expect.arrayContaining([["first", "first", 1], ["other", "other", 1]]))
      expect(tenants.some(([t]) => t === "second")).toBe(false)
    } finally {
      await db.disconnect()
      for (const f of files) await f.drop()
    }
  })

  it("labels a tenant's spans and reports the tenant cache", async () => {
    const files: Array<TestDatabase> = []
    const db = createFlexiDB({}, {
      prometheus: true,
      gracefulShutdown: false,
      tenants: {
        resolve: async () => {
          const file = await createDatabase("sqlite")
          files.push(file)
          return prisma7.sqlite(file.url)
        }
      }
    })
    try {
      await (await db.tenant("acme")).user.count()
      await (await db.tenant("acme")).user.count()
      const [span] = byName("User.count acme")
      expect(span!.attributes["flexidb.tenant"]).toBe("acme")
      const all = await collected()
      const value = (name: string) => metric(all, name)?.dataPoints[0]?.value
      expect([value("flexidb.tenants.resident"), value("flexidb.tenants.misses"), value("flexidb.tenants.hits")]).toEqual([1, 1, 1])
      const samples = prometheus(await db.metrics())
      expect(samples("flexidb_tenants_resident")[0]?.value).toBe("1")
      expect(samples("flexidb_tenants_misses_total")[0]?.value).toBe("1")
    } finally {
      await db.disconnect()
      for (const f of files) await f.drop()
    }
  })
})
