/**
 * OpenTelemetry for one instance: a CLIENT span and a duration per operation, gauges of circuits, members and the
 * tenant cache, and (the `prometheus` option) the same metrics in Prometheus' text format. `@opentelemetry/api` is
 * an optional peer dependency, loaded here when an instance is built: without it, or with no tracer or meter
 * provider registered by then, `make` answers undefined and the hot path does no telemetry work at all.
 */
import type * as Api from "@opentelemetry/api"
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { createRequire } from "node:module"
import { ClosedError, InvalidArgumentError } from "../Errors.js"
import type { MemberRef, ResolvedOptions } from "../Options.js"
import { errorSummary } from "../Redact.js"
import { learnServer, modelSummary, rawOperations, rawText, serverOf, statusCode } from "./attributes.js"
import { serve } from "./metricsHandler.js"
import type { PoolFigures } from "./pool.js"
import { watchPool } from "./pool.js"
import * as MetricsStore from "./metricsStore.js"
import type { Dialect } from "./sql.js"
import { summarize } from "./sql.js"
import * as TenantLabel from "./tenantLabel.js"
import { PROMETHEUS_PACKAGES, prometheusMissing } from "./telemetryPackages.js"

/** The attributes every span and metric of one member carries. */
export type Labels = Api.Attributes

/** One operation under way: `run` makes its span the active one; `end` records its outcome. */
export interface Ongoing {
  readonly run: <A>(f: () => A) => A
  readonly end: (durationNs: number, failed: boolean, error: unknown) => void
}

export type { PoolFigures } from "./pool.js"

/** What the gauges read when a reader collects: each member's state and pool, and the tenant cache's figures. */
export interface Source {
  readonly members: () => ReadonlyArray<{
    readonly labels: Labels
    readonly healthy: boolean
    readonly circuit: string
    readonly pool: (() => PoolFigures | undefined) | undefined
  }>
  readonly tenants: () => Readonly<Record<string, number>> | undefined
}

export interface Telemetry {
  /** Reads `client`'s connection pool, when there are metrics and its driver adapter exposes one. */
  readonly pool: (client: unknown) => (() => PoolFigures | undefined) | undefined
  /** `input`: the operation's arguments, for a raw SQL call's `db.query.summary` (and text, when asked for). */
  readonly start: (labels: Labels, operation: string, input?: unknown) => Ongoing
  /** A parent span for a batch: its operations' spans are its children. */
  readonly batch: () => Ongoing
  /** An operation refused by an open circuit. */
  readonly rejected: (labels: Labels, operation: string) => void
  /** `effect` in a root span of its own (health checks, reconnects: not under whatever request started them). */
  readonly root: <A, E>(labels: Labels, operation: string, effect: Effect.Effect<A, E>) => Effect.Effect<A, E>
  /** Starts the gauges' callbacks; the function it returns stops them. */
  readonly observe: (source: Source) => () => void
  /** The metrics in Prometheus' text format (the `prometheus` option), or undefined. */
  readonly prometheus: (() => Promise<string>) | undefined
  readonly shutdown: () => Promise<void>
}

/**
 * The optional packages, resolved from flexidb's own file: `__filename` in the CommonJS build, this module's URL in
 * the ESM build. Not a bare `require`: the bundler turns it into a shim that throws in ESM.
 */
const load = <A>(id: string): A | undefined => {
  try {
    return createRequire(typeof __filename === "string" ? __filename : import.meta.url)(id) as A
  } catch {
    return undefined
  }
}

/** The semantic conventions' buckets for `db.client.operation.duration`, in seconds. */
export const durationBuckets = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10]

export const circuitValue: Record<string, number> = { closed: 0, "half-open": 1, open: 2 }

/** `db.system.name` from Prisma's provider. */
const systemName = (client: unknown): string => {
  const provider = (client as { _activeProvider?: unknown })?._activeProvider
  switch (provider) {
    case "postgresql":
    case "postgres":
      return "postgresql"
    case "cockroachdb":
      return "cockroachdb"
    // The MariaDB adapter speaks to MySQL and MariaDB servers alike: the provider cannot tell which one answers.
    case "mysql":
      return "mysql"
    case "sqlite":
      return "sqlite"
    case "sqlserver":
      return "microsoft.sql_server"
    default:
      return "other_sql"
  }
}

/**
 * The attributes of one member, through OpenTelemetry or Effect. Spans carry them as they are; a tenant's metrics
 * carry its bounded value instead (`bounded` below).
 */
export const memberLabels = (database: string, ref: MemberRef, client: unknown, tenant: boolean, traced = true): Labels => {
  const labels: Labels = {
    "db.system.name": systemName(client),
    "db.namespace": database,
    ...serverOf(client),
    "flexidb.role": ref.role,
    "flexidb.member": ref.index,
    ...(tenant ? { "flexidb.tenant": database } : {})
  }
  // A MariaDB adapter's server is learnt when it connects, before its first query (attributes.ts); only with
  // telemetry on (`traced`), so an instance without it connects as before.
  if (traced && labels["server.address"] === undefined) learnServer(client, labels)
  return labels
}

/**
 * For a tenant's clients, before flexidb's missing-database probe connects them (and so before their members are
 * built): what telemetry learns when an adapter connects — its pool (`telemetry.pool`) and a MariaDB adapter's
 * server — has to be watched from before that first connect. Nothing without telemetry.
 */
export const watchEntry = (entry: unknown, telemetry: Telemetry | undefined, traced: boolean): void => {
  if (!traced) return
  const e = entry as { write?: unknown; read?: unknown; $connect?: unknown } | null
  const clients = typeof e?.$connect === "function"
    ? [e]
    : [e?.write, ...(Array.isArray(e?.read) ? e.read : e?.read === undefined ? [] : [e.read])]
  for (const c of clients) {
    const client = (c as { client?: unknown } | undefined)?.client ?? c
    if (client === undefined || client === null) continue
    telemetry?.pool(client)
    learnServer(client)
  }
}

/** A tenant member's labels as every tenant outside the top set reports them. */
const otherOf = (labels: Labels): Labels => {
  let other = others.get(labels)
  if (other === undefined) {
    other = { ...labels, "db.namespace": TenantLabel.OTHER, "flexidb.tenant": TenantLabel.OTHER }
    others.set(labels, other)
  }
  return other
}
const others = new WeakMap<Labels, Labels>()

/** `error.type`: the error's code (Prisma's P2002, flexidb's CIRCUIT_OPEN…), else its class name. */
export const errorType = (error: unknown): string => {
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code === "string" && code.length > 0) return code
  if (error instanceof Error) return error.name || error.constructor.name
  return "_OTHER"
}

/** The gauges' values at one reading, a tenant outside the top set folded into `other`. */
interface Readings {
  readonly circuit: Array<readonly [Labels, number]>
  readonly healthy: Array<readonly [Labels, number]>
  readonly connections: Array<readonly [Labels, number]>
  readonly pending: Array<readonly [Labels, number]>
  readonly tenants: Readonly<Record<string, number>> | undefined
}

/**
 * Reads `source`. Members of tenants outside the top set are one group per distinct `other` label set: `healthy`
 * counts its healthy members (1 or 0 for a single member, as before), `circuit` is its worst circuit, the pool
 * figures are summed.
 */
const read = (source: Source, bounded: (labels: Labels) => Labels): Readings => {
  // By content: each member has its own labels object, and several fold into one `other` set.
  const groups = new Map<string, { labels: Labels; healthy: number; circuit: number; pool: PoolFigures | undefined }>()
  for (const m of source.members()) {
    const labels = bounded(m.labels)
    const figures = m.pool?.()
    const circuit = circuitValue[m.circuit] ?? -1
    const key = JSON.stringify(labels)
    const group = groups.get(key)
    if (group === undefined) {
      groups.set(key, { labels, healthy: m.healthy ? 1 : 0, circuit, pool: figures })
      continue
    }
    group.healthy += m.healthy ? 1 : 0
    group.circuit = Math.max(group.circuit, circuit)
    if (figures !== undefined) {
      const p = group.pool ?? { idle: 0, used: 0, pending: 0 }
      group.pool = { idle: p.idle + figures.idle, used: p.used + figures.used, pending: p.pending + figures.pending }
    }
  }
  const readings: Readings = { circuit: [], healthy: [], connections: [], pending: [], tenants: source.tenants() }
  for (const { labels, ...g } of groups.values()) {
    readings.circuit.push([labels, g.circuit])
    readings.healthy.push([labels, g.healthy])
    if (g.pool === undefined) continue
    const pool = poolLabels(labels)
    readings.connections.push([{ ...pool, "db.client.connection.state": "idle" }, g.pool.idle])
    readings.connections.push([{ ...pool, "db.client.connection.state": "used" }, g.pool.used])
    readings.pending.push([pool, g.pool.pending])
  }
  return readings
}

const describe = {
  duration: "Duration of database client operations, middleware included.",
  rejected: "Operations refused without being sent, because the member's circuit was open.",
  circuit: "Each member's circuit breaker: 0 closed, 1 half-open, 2 open (the worst of a group of tenants).",
  healthy: "1 when the member answered its last connection or health check, else 0 (for other tenants: how many did).",
  connections: "Connections in the driver's pool, by state (idle, used).",
  pending: "Requests waiting for a connection from the driver's pool."
}
const tenantGauges = ["resident", "leased", "waiting"]
const tenantCounters = ["hits", "misses", "evictions"]

interface Instruments {
  readonly duration: Api.Histogram
  readonly rejected: Api.Counter
  readonly stop: (source: Source, bounded: (labels: Labels) => Labels) => () => void
}

const instruments = (meter: Api.Meter): Instruments => {
  const duration = meter.createHistogram("db.client.operation.duration", {
    unit: "s",
    description: describe.duration,
    advice: { explicitBucketBoundaries: durationBuckets }
  })
  const rejected = meter.createCounter("flexidb.operations.rejected", { description: describe.rejected })
  const circuit = meter.createObservableGauge("flexidb.circuit.state", { description: describe.circuit })
  const healthy = meter.createObservableGauge("flexidb.member.healthy", { description: describe.healthy })
  const gauges = tenantGauges.map((k) =>
    [k, meter.createObservableGauge(`flexidb.tenants.${k}`, { description: `Tenant databases ${k}.` })] as const
  )
  const counters = tenantCounters.map((k) =>
    [k, meter.createObservableCounter(`flexidb.tenants.${k}`, { description: `Tenant cache ${k} since start.` })] as const
  )
  const connections = meter.createObservableUpDownCounter("db.client.connection.count", {
    unit: "{connection}",
    description: describe.connections
  })
  const pending = meter.createObservableUpDownCounter("db.client.connection.pending_requests", {
    unit: "{request}",
    description: describe.pending
  })
  const observables = [circuit, healthy, connections, pending, ...gauges.map(([, g]) => g), ...counters.map(([, c]) => c)]
  const stop = (source: Source, bounded: (labels: Labels) => Labels) => {
    const callback: Api.BatchObservableCallback = (result) => {
      const r = read(source, bounded)
      for (const [labels, v] of r.circuit) result.observe(circuit, v, labels)
      for (const [labels, v] of r.healthy) result.observe(healthy, v, labels)
      for (const [labels, v] of r.connections) result.observe(connections, v, labels)
      for (const [labels, v] of r.pending) result.observe(pending, v, labels)
      if (r.tenants === undefined) return
      for (const [k, o] of [...gauges, ...counters]) result.observe(o, r.tenants[k] ?? 0)
    }
    meter.addBatchObservableCallback(callback, observables)
    return () => meter.removeBatchObservableCallback(callback, observables)
  }
  return { duration, rejected, stop }
}

/** A pool's attributes: the semantic conventions' pool name is the flexidb database; role and member tell a pair's. */
const poolLabels = (labels: Labels): Labels => {
  const {
    "db.namespace": name,
    "db.system.name": _,
    "server.address": __,
    "server.port": ___,
    ...rest
  } = labels
  return { "db.client.connection.pool.name": name, ...rest }
}

type MetricsSdk = typeof import("@opentelemetry/sdk-metrics")
type PrometheusPackage = typeof import("@opentelemetry/exporter-prometheus")
type ResourcesPackage = typeof import("@opentelemetry/resources")

/**
 * flexidb's own series, read only by `metrics()`: see metricsStore.ts for why not an SDK MeterProvider. Throws
 * InvalidArgumentError when the packages are missing.
 */
const prometheusStore = (loader: (id: string) => unknown = load) => {
  const sdk = loader("@opentelemetry/sdk-metrics") as MetricsSdk | undefined
  const prom = loader("@opentelemetry/exporter-prometheus") as PrometheusPackage | undefined
  const missing = PROMETHEUS_PACKAGES.filter((id) =>
    id === "@opentelemetry/sdk-metrics" ? sdk === undefined
    : id === "@opentelemetry/exporter-prometheus" ? prom === undefined
    : loader(id) === undefined
  )
  if (missing.length > 0 || sdk === undefined || prom === undefined) {
    throw new InvalidArgumentError({ path: "prometheus", reason: prometheusMissing(missing) })
  }
  const store = MetricsStore.make(
    sdk,
    loader("@opentelemetry/resources") as ResourcesPackage | undefined,
    { name: "db.client.operation.duration", description: describe.duration, unit: "s", boundaries: durationBuckets },
    { name: "flexidb.operations.rejected", description: describe.rejected }
  )
  return { store, serializer: new prom.PrometheusSerializer() }
}

/** The `prometheus` option's packages, loaded through `loader` (tests: one that lacks some). Throws as make does. */
export const checkPrometheus = (loader: (id: string) => unknown): void => {
  prometheusStore(loader)
}

/** A cached metric attribute set: its OpenTelemetry attributes and, with `metrics()`, its own series. */
interface Point {
  readonly attributes: Labels
  readonly series: MetricsStore.HistogramSeries | undefined
}

/**
 * The instance's telemetry, decided now: spans when a tracer provider is registered, metrics when a meter provider
 * is (or the `prometheus` option is set); undefined when neither.
 */
export const make = (options: ResolvedOptions, clock: Clock.Clock): Telemetry | undefined => {
  const api = load<typeof Api>("@opentelemetry/api")
  if (api === undefined) {
    if (options.prometheus) prometheusStore() // throws, saying what to install
    return undefined
  }
  // The global provider is a proxy: what matters is whether anything was registered behind it.
  const registered = api.trace.getTracerProvider() as Api.TracerProvider & { getDelegate?: () => Api.TracerProvider }
  const noTracer = new api.ProxyTracerProvider().getDelegate()
  const tracer = registered.getDelegate?.() === noTracer ? undefined : api.trace.getTracer("flexidb")
  const globalMeter = api.metrics.getMeter("flexidb")
  const own = options.prometheus ? prometheusStore() : undefined
  const meters = globalMeter === api.createNoopMeter() ? [] : [instruments(globalMeter)]
  if (tracer === undefined && meters.length === 0 && own === undefined) return undefined
  const metered = meters.length > 0 || own !== undefined
  const { context, trace, SpanKind, SpanStatusCode } = api
  const { queryText, tenantTop } = options.telemetry
  const tenants = TenantLabel.make(tenantTop, clock)

  /** A member's labels in metrics: a tenant outside the top set as `other`. Counts the operation when `counted`. */
  const bounded = (labels: Labels, counted = false): Labels => {
    const tenant = labels["flexidb.tenant"]
    if (tenant === undefined) return labels
    return (counted ? tenants.count(String(tenant)) : tenants.kept(String(tenant))) ? labels : otherOf(labels)
  }

  // Metric attribute sets by member labels, then by operation, summary and outcome: built once, so a query records
  // with no allocation. Emptied when series are dropped, so no point records into a dropped series.
  let points = new WeakMap<Labels, Map<string, Map<string | undefined, Point>>>()
  const point = (labels: Labels, operation: string, summary: string | undefined, type: string | undefined, status: string | undefined) => {
    let byLabels = points.get(labels)
    if (byLabels === undefined) points.set(labels, byLabels = new Map())
    // A success is keyed by its operation alone: no string is built per query.
    const k = type === undefined ? operation : `${operation}\u0000${type}\u0000${status}`
    let bySummary = byLabels.get(k)
    if (bySummary === undefined) byLabels.set(k, bySummary = new Map())
    let p = bySummary.get(summary)
    if (p === undefined) {
      const attributes: Labels = {
        ...labels,
        "db.operation.name": operation,
        ...(summary === undefined ? {} : { "db.query.summary": summary }),
        ...(type === undefined ? {} : { "error.type": type }),
        ...(status === undefined ? {} : { "db.response.status_code": status })
      }
      p = { attributes, series: own?.store.histogram(attributes) }
      bySummary.set(summary, p)
    }
    return p
  }

  // Model operations' summaries, by operation label: a few per model, built once.
  const modelSummaries = new Map<string, string | undefined>()
  const summaryOfModel = (operation: string) => {
    if (modelSummaries.has(operation)) return modelSummaries.get(operation)
    const summary = modelSummary(operation)
    modelSummaries.set(operation, summary)
    return summary
  }

  /** The dialect sql.ts parses a member's raw statements in. */
  const dialectOf = (labels: Labels): Dialect | undefined => {
    const system = labels["db.system.name"]
    return system === "postgresql" || system === "mysql" || system === "sqlite" ? system : undefined
  }

  const fail = (span: Api.Span, error: unknown, type: string) => {
    const message = errorSummary(error)
    span.setAttribute("error.type", type)
    const status = statusCode(error)
    if (status !== undefined) span.setAttribute("db.response.status_code", status)
    span.setStatus({ code: SpanStatusCode.ERROR, message })
    // Not recordException: a stack or a raw message may carry a connection string.
    span.addEvent("exception", { "exception.type": type, "exception.message": message })
  }

  const inSpan = (span: Api.Span | undefined) =>
    span === undefined
      ? <A>(f: () => A) => f()
      : <A>(f: () => A) => context.with(trace.setSpan(context.active(), span), f)

  let closed = false
  const text = own === undefined ? undefined : async () => {
    // The Effect face's handler outlives its scope: after it, nothing is measured any more.
    if (closed) throw new ClosedError({ operation: "read metrics" })
    tenants.refresh()
    // A tenant that left the top set: its series go, its operations from now on count as `other`.
    if (own.store.prune((t) => t === TenantLabel.OTHER || tenants.kept(t)) > 0) points = new WeakMap()
    const r = sourceNow === undefined ? undefined : read(sourceNow, (labels) => bounded(labels))
    const readings: Array<MetricsStore.Reading> = r === undefined ? [] : [
      { name: "flexidb.circuit.state", description: describe.circuit, points: r.circuit },
      { name: "flexidb.member.healthy", description: describe.healthy, points: r.healthy },
      { name: "db.client.connection.count", description: describe.connections, unit: "{connection}", points: r.connections },
      { name: "db.client.connection.pending_requests", description: describe.pending, unit: "{request}", points: r.pending },
      ...(r.tenants === undefined ? [] : [
        ...tenantGauges.map((k) => ({ name: `flexidb.tenants.${k}`, description: `Tenant databases ${k}.`, points: [[{}, r.tenants![k] ?? 0] as const] })),
        ...tenantCounters.map((k) => ({
          name: `flexidb.tenants.${k}`,
          description: `Tenant cache ${k} since start.`,
          counter: true,
          points: [[{}, r.tenants![k] ?? 0] as const]
        }))
      ])
    ]
    return own.serializer.serialize(own.store.collect(readings))
  }
  let sourceNow: Source | undefined
  // `prometheus: { port }`: flexidb's own /metrics server, closed with the instance. A port it cannot listen on is
  // said in the log (the databases work without it).
  const server = text === undefined || options.prometheusServer === undefined
    ? undefined
    : serve(text, options.prometheusServer.port, options.prometheusServer.host).then(
      (s) => s,
      (error: unknown) => {
        options.log?.(`The metrics server could not listen on port ${options.prometheusServer!.port}: ${errorSummary(error)}`)
        return undefined
      }
    )

  return {
    pool: metered ? watchPool : () => undefined,
    start: (labels, operation, input) => {
      // A model operation's summary from its name; a raw statement's from its text (sql.ts caches them).
      let summary: string | undefined
      let text: string | undefined
      if (rawOperations.has(operation)) {
        const sql = rawText(input)
        if (sql !== undefined) {
          summary = summarize(sql, dialectOf(labels))
          if (queryText) text = sql
        }
      } else {
        summary = summaryOfModel(operation)
      }
      const attributes: Labels = {
        ...labels,
        "db.operation.name": operation,
        ...(summary === undefined ? {} : { "db.query.summary": summary }),
        ...(text === undefined ? {} : { "db.query.text": text })
      }
      const span = tracer?.startSpan(`${operation} ${labels["db.namespace"]}`, { kind: SpanKind.CLIENT, attributes })
      const metricLabels = metered ? bounded(labels, true) : labels
      return {
        run: inSpan(span),
        end: (durationNs, failed, error) => {
          const type = failed ? errorType(error) : undefined
          if (metered) {
            const p = point(metricLabels, operation, summary, type, failed ? statusCode(error) : undefined)
            const seconds = durationNs / 1e9
            for (const i of meters) i.duration.record(seconds, p.attributes)
            if (p.series !== undefined) own!.store.record(p.series, seconds)
          }
          if (span === undefined) return
          if (type !== undefined) fail(span, error, type)
          span.end()
        }
      }
    },
    batch: () => {
      const span = tracer?.startSpan("batch", { kind: SpanKind.INTERNAL, attributes: { "db.operation.name": "batch" } })
      return {
        run: inSpan(span),
        end: (_, failed, error) => {
          if (span === undefined) return
          if (failed) fail(span, error, errorType(error))
          span.end()
        }
      }
    },
    rejected: (labels, operation) => {
      if (!metered) return
      const attributes = { ...bounded(labels, true), "db.operation.name": operation }
      for (const i of meters) i.rejected.add(1, attributes)
      if (own !== undefined) own.store.counter(attributes).value++
    },
    root: (labels, operation, effect) =>
      tracer === undefined
        ? effect
        : Effect.suspend(() => {
          const span = tracer.startSpan(`${operation} ${labels["db.namespace"]}`, {
            kind: SpanKind.CLIENT,
            root: true,
            attributes: { ...labels, "db.operation.name": operation }
          })
          return Effect.onExit(effect, (exit) =>
            Effect.sync(() => {
              if (Exit.isFailure(exit)) {
                const error = exit.cause._tag === "Fail" ? exit.cause.error : new Error("interrupted or defect")
                fail(span, error, errorType(error))
              }
              span.end()
            }))
        }),
    observe: (source) => {
      sourceNow = source
      const stops = meters.map((i) => i.stop(source, (labels) => bounded(labels)))
      return () => {
        sourceNow = undefined
        stops.forEach((stop) => stop())
      }
    },
    prometheus: text,
    shutdown: () => {
      closed = true
      return server?.then((s) => s?.close()) ?? Promise.resolve()
    }
  }
}
