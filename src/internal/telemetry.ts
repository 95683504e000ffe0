/**
 * OpenTelemetry for one instance: a CLIENT span and a duration per operation, gauges of circuits, members and the
 * tenant cache, and (the `prometheus` option) the same metrics in Prometheus' text format. `@opentelemetry/api` is
 * an optional peer dependency, loaded here when an instance is built: without it, or with no tracer or meter
 * provider registered by then, `make` answers undefined and the hot path does no telemetry work at all.
 */
import type * as Api from "@opentelemetry/api"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { createRequire } from "node:module"
import { InvalidArgumentError } from "../Errors.js"
import type { MemberRef, ResolvedOptions } from "../Options.js"
import { errorSummary } from "../Redact.js"

/** The attributes every span and metric of one member carries. */
export type Labels = Api.Attributes

/** One operation under way: `run` makes its span the active one; `end` records its outcome. */
export interface Ongoing {
  readonly run: <A>(f: () => A) => A
  readonly end: (durationNs: number, failed: boolean, error: unknown) => void
}

/** What a driver's connection pool holds now. */
export interface PoolFigures {
  readonly idle: number
  readonly used: number
  /** Requests waiting for a connection. */
  readonly pending: number
}

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
  readonly start: (labels: Labels, operation: string) => Ongoing
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

/** The attributes of one member: the same in spans and metrics, through OpenTelemetry or Effect. */
export const memberLabels = (database: string, ref: MemberRef, client: unknown, tenant: boolean): Labels => ({
  "db.system.name": systemName(client),
  "db.namespace": database,
  "flexidb.role": ref.role,
  "flexidb.member": ref.index,
  ...(tenant ? { "flexidb.tenant": database } : {})
})

/** The figures of a pg Pool (totalCount, idleCount, waitingCount) or a mariadb Pool (its methods), else undefined. */
const poolReader = (driver: unknown): (() => PoolFigures) | undefined => {
  const pool = driver as Record<string, unknown> | null | undefined
  if (typeof pool?.totalCount === "number" && typeof pool.idleCount === "number") {
    const pg = pool as { totalCount: number; idleCount: number; waitingCount: number }
    return () => ({ idle: pg.idleCount, used: pg.totalCount - pg.idleCount, pending: pg.waitingCount })
  }
  if (typeof pool?.totalConnections === "function" && typeof pool.idleConnections === "function") {
    const mariadb = pool as { totalConnections(): number; idleConnections(): number; taskQueueSize(): number }
    return () => {
      const idle = mariadb.idleConnections()
      return { idle, used: mariadb.totalConnections() - idle, pending: mariadb.taskQueueSize() }
    }
  }
  return undefined
}

/**
 * The pool behind a client's driver adapter: the pool the app gave the adapter (`new PrismaPg(pool)`), else the one
 * the adapter makes when Prisma connects. Prisma keeps the connected adapter private, so the factory's `connect` is
 * wrapped (on that factory object only) to keep each new adapter's `underlyingDriver()`. Clients without a driver
 * adapter keep their pool to themselves: undefined.
 */
const watchPool = (client: unknown): (() => PoolFigures | undefined) | undefined => {
  const factory = (client as { _engineConfig?: { adapter?: Record<string, unknown> } } | null)?._engineConfig?.adapter
  if (factory === undefined || factory === null || typeof factory.connect !== "function") return undefined
  // Once per factory, whatever the number of clients or instances built on it.
  let watched = watchedFactories.get(factory)
  if (watched === undefined) {
    const cell: { read: (() => PoolFigures) | undefined } = { read: poolReader(factory.externalPool) }
    const connect = factory.connect as (...args: Array<unknown>) => Promise<{ underlyingDriver?: () => unknown }>
    try {
      factory.connect = async function(this: unknown, ...args: Array<unknown>) {
        const adapter = await connect.apply(this, args)
        cell.read = poolReader(adapter?.underlyingDriver?.()) ?? cell.read
        return adapter
      }
    } catch {
      // a frozen factory: only a pool the app gave it can be read
    }
    watchedFactories.set(factory, watched = cell)
  }
  const cell = watched
  return () => cell.read?.()
}
const watchedFactories = new WeakMap<object, { read: (() => PoolFigures) | undefined }>()

/** `error.type`: the error's code (Prisma's P2002, flexidb's CIRCUIT_OPEN…), else its class name. */
export const errorType = (error: unknown): string => {
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code === "string" && code.length > 0) return code
  if (error instanceof Error) return error.name || error.constructor.name
  return "_OTHER"
}

interface Instruments {
  readonly duration: Api.Histogram
  readonly rejected: Api.Counter
  readonly stop: (source: Source) => () => void
}

const instruments = (meter: Api.Meter): Instruments => {
  const duration = meter.createHistogram("db.client.operation.duration", {
    unit: "s",
    description: "Duration of database client operations, middleware included.",
    advice: { explicitBucketBoundaries: durationBuckets }
  })
  const rejected = meter.createCounter("flexidb.operations.rejected", {
    description: "Operations refused without being sent, because the member's circuit was open."
  })
  const circuit = meter.createObservableGauge("flexidb.circuit.state", {
    description: "Each member's circuit breaker: 0 closed, 1 half-open, 2 open."
  })
  const healthy = meter.createObservableGauge("flexidb.member.healthy", {
    description: "1 when the member answered its last connection or health check, else 0."
  })
  const tenantGauges = ["resident", "leased", "waiting"].map((k) =>
    [k, meter.createObservableGauge(`flexidb.tenants.${k}`, { description: `Tenant databases ${k}.` })] as const
  )
  const tenantCounters = ["hits", "misses", "evictions"].map((k) =>
    [k, meter.createObservableCounter(`flexidb.tenants.${k}`, { description: `Tenant cache ${k} since start.` })] as const
  )
  const connections = meter.createObservableUpDownCounter("db.client.connection.count", {
    unit: "{connection}",
    description: "Connections in the driver's pool, by state (idle, used)."
  })
  const pending = meter.createObservableUpDownCounter("db.client.connection.pending_requests", {
    unit: "{request}",
    description: "Requests waiting for a connection from the driver's pool."
  })
  const observables = [
    circuit,
    healthy,
    connections,
    pending,
    ...tenantGauges.map(([, g]) => g),
    ...tenantCounters.map(([, c]) => c)
  ]
  const stop = (source: Source) => {
    const callback: Api.BatchObservableCallback = (result) => {
      for (const m of source.members()) {
        result.observe(circuit, circuitValue[m.circuit] ?? -1, m.labels)
        result.observe(healthy, m.healthy ? 1 : 0, m.labels)
        const figures = m.pool?.()
        if (figures === undefined) continue
        const pool = poolLabels(m.labels)
        result.observe(connections, figures.idle, { ...pool, "db.client.connection.state": "idle" })
        result.observe(connections, figures.used, { ...pool, "db.client.connection.state": "used" })
        result.observe(pending, figures.pending, pool)
      }
      const tenants = source.tenants()
      if (tenants === undefined) return
      for (const [k, o] of [...tenantGauges, ...tenantCounters]) result.observe(o, tenants[k] ?? 0)
    }
    meter.addBatchObservableCallback(callback, observables)
    return () => meter.removeBatchObservableCallback(callback, observables)
  }
  return { duration, rejected, stop }
}

/** A pool's attributes: the semantic conventions' pool name is the flexidb database; role and member tell a pair's. */
const poolLabels = (labels: Labels): Labels => {
  const { "db.namespace": name, "db.system.name": _, ...rest } = labels
  return { "db.client.connection.pool.name": name, ...rest }
}

type MetricsSdk = typeof import("@opentelemetry/sdk-metrics")
type PrometheusPackage = typeof import("@opentelemetry/exporter-prometheus")

/** A MeterProvider of flexidb's own, read only by `metrics()`. Throws InvalidArgumentError when the packages are missing. */
const prometheusMeter = () => {
  const sdk = load<MetricsSdk>("@opentelemetry/sdk-metrics")
  const prom = load<PrometheusPackage>("@opentelemetry/exporter-prometheus")
  if (sdk === undefined || prom === undefined) {
    throw new InvalidArgumentError({
      path: "prometheus",
      reason: "needs @opentelemetry/api, @opentelemetry/sdk-metrics and @opentelemetry/exporter-prometheus: " +
        "npm install @opentelemetry/api @opentelemetry/sdk-metrics @opentelemetry/exporter-prometheus"
    })
  }
  const reader = new prom.PrometheusExporter({ preventServerStart: true })
  const provider = new sdk.MeterProvider({ readers: [reader] })
  const serializer = new prom.PrometheusSerializer()
  return {
    meter: provider.getMeter("flexidb"),
    text: async () => {
      const { resourceMetrics } = await reader.collect()
      return serializer.serialize(resourceMetrics)
    },
    shutdown: () => provider.shutdown()
  }
}

/**
 * The instance's telemetry, decided now: spans when a tracer provider is registered, metrics when a meter provider
 * is (or the `prometheus` option is set); undefined when neither.
 */
export const make = (options: ResolvedOptions): Telemetry | undefined => {
  const api = load<typeof Api>("@opentelemetry/api")
  if (api === undefined) {
    if (options.prometheus) prometheusMeter() // throws, saying what to install
    return undefined
  }
  // The global provider is a proxy: what matters is whether anything was registered behind it.
  const registered = api.trace.getTracerProvider() as Api.TracerProvider & { getDelegate?: () => Api.TracerProvider }
  const noTracer = new api.ProxyTracerProvider().getDelegate()
  const tracer = registered.getDelegate?.() === noTracer ? undefined : api.trace.getTracer("flexidb")
  const globalMeter = api.metrics.getMeter("flexidb")
  const own = options.prometheus ? prometheusMeter() : undefined
  const meters = [...(globalMeter === api.createNoopMeter() ? [] : [globalMeter]), ...(own === undefined ? [] : [own.meter])]
  if (tracer === undefined && meters.length === 0) return undefined

  const all = meters.map(instruments)
  const { context, trace, SpanKind, SpanStatusCode } = api

  const fail = (span: Api.Span, error: unknown, type: string) => {
    const message = errorSummary(error)
    span.setAttribute("error.type", type)
    span.setStatus({ code: SpanStatusCode.ERROR, message })
    // Not recordException: a stack or a raw message may carry a connection string.
    span.addEvent("exception", { "exception.type": type, "exception.message": message })
  }

  const inSpan = (span: Api.Span | undefined) =>
    span === undefined
      ? <A>(f: () => A) => f()
      : <A>(f: () => A) => context.with(trace.setSpan(context.active(), span), f)

  return {
    pool: all.length === 0 ? () => undefined : watchPool,
    start: (labels, operation) => {
      const attributes = { ...labels, "db.operation.name": operation }
      const span = tracer?.startSpan(`${operation} ${labels["db.namespace"]}`, { kind: SpanKind.CLIENT, attributes })
      return {
        run: inSpan(span),
        end: (durationNs, failed, error) => {
          const type = failed ? errorType(error) : undefined
          const recorded = type === undefined ? attributes : { ...attributes, "error.type": type }
          for (const i of all) i.duration.record(durationNs / 1e9, recorded)
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
      const attributes = { ...labels, "db.operation.name": operation }
      for (const i of all) i.rejected.add(1, attributes)
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
      const stops = all.map((i) => i.stop(source))
      return () => stops.forEach((stop) => stop())
    },
    prometheus: own?.text,
    shutdown: () => own?.shutdown() ?? Promise.resolve()
  }
}
