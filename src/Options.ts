/**
 * Options for `createFlexiDB`, `FlexiDB.layer` and `Database.layer`, their defaults, and their validation.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type { ClientEntry } from "./Client.js"
import { InvalidArgumentError } from "./Errors.js"

/**
 * How a database's connection is retried: `attempts` retries after the first failure, waiting `delay` ms before
 * the first retry, then doubling (`exponential`) or not (`fixed`).
 *
 * @since 0.1.0
 */
export interface RetryConfig {
  /** Retries after the first failed attempt. Default 3; 0 disables retrying. */
  readonly attempts?: number
  /** Milliseconds before the first retry. Default 1000. */
  readonly delay?: Duration.DurationInput
  /** Default `'exponential'`. */
  readonly backoff?: "exponential" | "fixed"
  /** Largest wait between attempts, in milliseconds. Default 30000. */
  readonly maxDelay?: Duration.DurationInput
}

/**
 * @since 0.1.0
 */
export interface CircuitBreakerConfig {
  /** Consecutive failures that signal an unhealthy database before the circuit opens. Default 5. */
  readonly threshold?: number
  /** Milliseconds the circuit stays open before one trial operation runs. Default 30000. */
  readonly resetTimeout?: Duration.DurationInput
  /**
   * Open on a ratio of failures instead of `threshold` in sequence: when at least `threshold` (0–1) of the
   * operations that ended in the last `duration` failed unhealthy, once at least `minimumThroughput` (default 20)
   * ended in it. Suits busy databases where one slow failure among successes says little.
   *
   * @since 0.2.0
   */
  readonly sampling?: {
    readonly threshold: number
    readonly duration: Duration.DurationInput
    readonly minimumThroughput?: number
  }
}

/**
 * Periodic `SELECT 1` on every database. Polling is on when this option is given.
 *
 * @since 0.1.0
 */
export interface HealthCheckConfig {
  /** Milliseconds between checks. Default 30000. */
  readonly interval?: Duration.DurationInput
  /** Milliseconds a check (and `health()`) waits for an answer. Default 5000. */
  readonly timeout?: Duration.DurationInput
  /**
   * Called once each time the status of a database's member changes: `member` says which (`{ role: 'write',
   * index: 0 }` is the database itself; a replica's status never changes the database's).
   */
  readonly onStatusChange?: (name: string, healthy: boolean, member: MemberRef) => void
}

/**
 * Background reconnection of a database found down (at start-up, by a health check or by its circuit opening).
 *
 * @since 0.1.0
 */
export interface ReconnectConfig {
  /** Default true. */
  readonly enabled?: boolean
  /** Milliseconds between reconnect attempts. Default 5000. */
  readonly interval?: Duration.DurationInput
  /** Attempts before giving up until the database is next found down. Default 10. */
  readonly maxAttempts?: number
}

/**
 * Which member of a database an event is about: its write client, or read client number `index` of a pair.
 *
 * @since 0.2.0
 */
export interface MemberRef {
  readonly role: "write" | "read"
  readonly index: number
}

/**
 * What a custom balance policy is given for each healthy replica it may choose.
 *
 * @since 0.2.0
 */
export interface ReplicaInfo {
  /** The replica's place in the pair's `read` list. */
  readonly index: number
  readonly weight: number
  /** Operations running on it now. */
  readonly inFlight: number
  readonly totalQueries: number
  readonly failedQueries: number
}

/**
 * How reads are spread over healthy replicas: `'round-robin'` (weighted), `'random'` (weighted), `'least-busy'`
 * (fewest operations in flight, ties in turn), or a function given the healthy replicas that returns one of them.
 *
 * @since 0.2.0
 */
export type BalancePolicy = "round-robin" | "random" | "least-busy" | ((replicas: ReadonlyArray<ReplicaInfo>) => ReplicaInfo)

/**
 * Reads inside `session()` after a write: to the writer for `window` (default 2000 ms), or, with `mode: 'lsn'`
 * (PostgreSQL), to a replica only once it has replayed the writer's WAL position after that write.
 *
 * @since 0.2.0
 */
export interface ReadYourWritesConfig {
  readonly mode?: "window" | "lsn"
  /** How long after a write the session's reads of that database go to the writer. Default 2000 ms. */
  readonly window?: Duration.DurationInput
  /** LSN mode: how long a replica's replay position is reused before it is asked again. Default 10 ms. */
  readonly lsnCacheTime?: Duration.DurationInput
}

/**
 * How a `{ read, write }` pair serves reads. Set for every pair in `createFlexiDB`'s options, or per pair on the
 * entry itself (`{ write, read, balance: 'least-busy' }`).
 *
 * @since 0.2.0
 */
export interface ReplicaConfig {
  /** Default `'round-robin'`. */
  readonly balance?: BalancePolicy
  /** When no replica is healthy: `'primary'` (default) reads from the writer, `'error'` rejects with ReplicaUnavailableError. */
  readonly fallback?: "primary" | "error"
  readonly readYourWrites?: ReadYourWritesConfig
}

/** Replica settings with every default filled in. */
export interface ResolvedReplicaConfig {
  readonly balance: BalancePolicy
  readonly fallback: "primary" | "error"
  readonly readYourWrites: { readonly mode: "window" | "lsn"; readonly window: number; readonly lsnCacheTime: number }
}

/**
 * Lifecycle hooks. A hook that throws or rejects is ignored: it never breaks flexidb.
 *
 * @since 0.1.0
 */
export interface FlexiDBHooks {
  /** A member of a database connected (at start-up, after register(), or after a reconnect). */
  readonly onConnect?: (name: string, member: MemberRef) => void
  /** A database was disconnected by unregister() or disconnect(). */
  readonly onDisconnect?: (name: string) => void
  /**
   * A member of a database failed to connect, or was found down. `error` carries no credentials in its message.
   */
  readonly onError?: (name: string, error: Error, member: MemberRef) => void
  /** A connection attempt failed and attempt number `attempt` (from 1) is about to start. */
  readonly onRetry?: (name: string, attempt: number) => void
}

/**
 * Options for `createFlexiDB` and the Effect layers. Every duration takes milliseconds (a number) or any
 * `Duration.DurationInput` (`"5 seconds"`, `Duration.minutes(1)`).
 *
 * @since 0.1.0
 */
export interface FlexiDBOptions<T extends ClientEntry = ClientEntry> {
  readonly retry?: RetryConfig
  readonly circuitBreaker?: CircuitBreakerConfig
  readonly healthCheck?: HealthCheckConfig
  readonly reconnect?: ReconnectConfig
  readonly hooks?: FlexiDBHooks
  /** How `{ read, write }` pairs serve reads; a pair's own keys override these. */
  readonly replicas?: ReplicaConfig
  /**
   * Milliseconds after which an operation through `get()` or `batch()` rejects with `OperationTimeoutError`
   * (the database may still finish it). Default: no limit.
   */
  readonly operationTimeout?: Duration.DurationInput
  /**
   * Count queries in `stats()`, pass them through the breaker and middleware. Default true; false makes `get()`
   * return the bare client.
   */
  readonly intercept?: boolean
  /** Disconnect everything on SIGINT and SIGTERM. Default true. */
  readonly gracefulShutdown?: boolean
  /** Milliseconds `$disconnect` may take per client before it is abandoned. Default 5000. */
  readonly disconnectTimeout?: Duration.DurationInput
  /** Databases per tenant, opened on demand by `tenant(name)` and kept within a budget. */
  readonly tenants?: TenantsConfig<T>
  /**
   * Keep flexidb's metrics for `metrics()` (Prometheus text). Needs `@opentelemetry/api`,
   * `@opentelemetry/sdk-metrics` and `@opentelemetry/exporter-prometheus` installed. Default false.
   * `{ port }` (since 0.2.0) also serves them on `http://host:port/metrics` from a server of flexidb's own,
   * closed by `disconnect()`; a port it cannot listen on is said through `logger` (the databases work without it).
   */
  readonly prometheus?: boolean | PrometheusConfig
  /** How spans and metrics describe operations: the bounded tenant label, query text. */
  readonly telemetry?: TelemetryConfig
  /**
   * Where flexidb says, in one line, that a database went down or came back (credentials removed). Default: a
   * `[flexidb]` line on stderr through `console.warn`; pass your logger (anything with `warn(message)`, such as
   * pino or `console`), or `false` for silence.
   */
  readonly logger?: FlexiDBLogger | false
}

/**
 * flexidb's own `/metrics` server (the `prometheus` option).
 *
 * @since 0.2.0
 */
export interface PrometheusConfig {
  /** The port to listen on, 1–65535. */
  readonly port: number
  /** The interface to listen on. Default `127.0.0.1`; `0.0.0.0` for every interface. */
  readonly host?: string
}

/**
 * A request handler serving flexidb's metrics in Prometheus' text format (`text/plain; version=0.0.4`): call it
 * from a `node:http` server or an Express route with `(req, res)`, or a Fastify route with `(request, reply)`.
 * It answers 200 with the metrics, or 503 with a one-line reason when there are none to give (no `prometheus`
 * option, or after `disconnect()`); it never rejects.
 *
 * @since 0.2.0
 */
export type MetricsHandler = (req: unknown, res: unknown) => Promise<void>

/**
 * How spans and metrics describe operations.
 *
 * @since 0.2.0
 */
export interface TelemetryConfig {
  /**
   * The `flexidb.tenant` value in metrics (spans always carry the tenant). `{ top: N }` (default `{ top: 50 }`):
   * the N tenants with the most operations in the last minute keep their name, every other tenant reports as
   * `other` (its `db.namespace` too), and a tenant leaving the top set has its series removed from `metrics()`.
   * `'all'`: every tenant's own name (one set of series per tenant: fine for a few dozen). `'none'`: every tenant
   * reports as `other`.
   */
  readonly tenantLabel?: { readonly top: number } | "all" | "none"
  /**
   * Put `db.query.text` on raw SQL spans, with literal values replaced by `?`. Default false: spans carry only
   * `db.query.summary` (`SELECT users`).
   */
  readonly queryText?: boolean
}

/**
 * What flexidb logs through: one `warn` line per status change of a database or replica.
 *
 * @since 0.2.0
 */
export interface FlexiDBLogger {
  readonly warn: (message: string) => void
}

/**
 * A database per tenant, opened on first use and kept within a budget of clients and connections.
 *
 * @since 0.2.0
 */
export interface TenantsConfig<T extends ClientEntry = ClientEntry> {
  /**
   * Makes the client of tenant `name` (sync or async), or `undefined` when there is no such tenant. Pass
   * `connectionLimit` to your adapter's pool (`new PrismaPg({ connectionString, max: connectionLimit })`). Required
   * unless `catalog` is given (then `client` makes the clients).
   */
  readonly resolve?: (
    name: string,
    context: { readonly connectionLimit: number | undefined }
  ) => T | undefined | PromiseLike<T | undefined>
  /**
   * Whether tenant `name` exists (sync or async), asked before `resolve` when a tenant is not open. `false` rejects
   * with UnknownDatabaseError ("Unknown tenant 'name'") before anything is opened: no slot is taken, no client made,
   * nothing reconnects. Without it, `resolve` returning `undefined` or a database the server says does not exist is
   * refused the same way, after `resolve`.
   *
   * @since 0.2.0
   */
  readonly exists?: (name: string) => boolean | PromiseLike<boolean>
  /**
   * Follow a tenant catalog (`flexidb/catalog`) instead of `resolve`: `tenant(name)` opens what the catalog says
   * (a suspended tenant rejects with TenantSuspendedError, one not in it with UnknownDatabaseError), and every change
   * made from any process is applied here at once (LISTEN) or within `pollInterval`.
   *
   * @since 0.2.0
   */
  readonly catalog?: TenantsCatalogConfig
  /**
   * With `catalog`: makes the client of a tenant from its URL (put together from `catalog.servers` and the tenant's
   * location; for a `schema` tenant the server's URL, with the schema in `info.location`).
   *
   * @since 0.2.0
   */
  readonly client?: (url: string, info: TenantInfo) => T | PromiseLike<T>
  /** Tenant clients kept at most (least recently used idle ones are closed to make room). Default 100. */
  readonly maxClients?: number
  /** A tenant unused this long is closed. Default 10 minutes. */
  readonly idleTimeout?: Duration.DurationInput
  /** Connections each tenant's pool may open: given to `resolve`. */
  readonly connectionLimit?: number
  /** Connections all tenants together may hold: at most `floor(maxConnections / connectionLimit)` clients. */
  readonly maxConnections?: number
  /** How long a new tenant waits for a slot when every tenant is busy, then TenantCapacityError. Default 10 s. */
  readonly acquireTimeout?: Duration.DurationInput
}

/**
 * Where the tenant catalog is, and the servers its rows name.
 *
 * @since 0.2.0
 */
export interface TenantsCatalogConfig {
  /** The catalog database (PostgreSQL). Point it at the server, not through PgBouncer in transaction mode: LISTEN needs a session. */
  readonly url: string
  /** `{ [server]: baseUrl }`, as given to `openCatalog`. */
  readonly servers: Readonly<Record<string, string>>
  /** How often resident tenants are checked against the catalog when notifications are not delivered. Default 5 s. */
  readonly pollInterval?: Duration.DurationInput
  /** `false` keeps this process off LISTEN (it follows by polling only): a test hook for the engine's fence. Default true. */
  readonly listen?: boolean
  /**
   * While the tenant is moving (`catalog.move`), `tenant(name)` waits this long for the move to switch, then rejects
   * with TenantMovingError. Default 5 s.
   */
  readonly moveTimeout?: Duration.DurationInput
}

/**
 * What `tenants.client` is told about the tenant it makes a client for.
 *
 * @since 0.2.0
 */
export interface TenantInfo {
  readonly name: string
  readonly server: string
  readonly kind: "database" | "schema" | "file"
  /** The database, schema or file name on the server. */
  readonly location: string
  readonly epoch: number
  readonly connectionLimit: number | undefined
}

/** Tenant settings with every default filled in. */
export interface ResolvedTenants {
  /** Undefined with `catalog`. */
  readonly resolve: TenantsConfig<ClientEntry>["resolve"]
  readonly catalog:
    | {
      readonly url: string
      readonly servers: Readonly<Record<string, string>>
      readonly pollInterval: number
      readonly listen: boolean
      readonly moveTimeout: number
      readonly client: NonNullable<TenantsConfig<ClientEntry>["client"]>
    }
    | undefined
  readonly exists: TenantsConfig<ClientEntry>["exists"]
  readonly maxClients: number
  readonly idleTimeout: number
  readonly connectionLimit: number | undefined
  readonly acquireTimeout: number
}

/** Options with every default filled in. */
export interface ResolvedOptions {
  readonly retry: {
    readonly attempts: number
    readonly delay: number
    readonly backoff: "exponential" | "fixed"
    readonly maxDelay: number
  }
  readonly circuitBreaker: {
    readonly threshold: number
    readonly resetTimeout: number
    readonly sampling?: { readonly threshold: number; readonly duration: number; readonly minimumThroughput: number }
  }
  readonly healthCheck: { readonly interval: number; readonly timeout: number; readonly enabled: boolean }
  readonly reconnect: { readonly enabled: boolean; readonly interval: number; readonly maxAttempts: number }
  readonly hooks: FlexiDBHooks & { readonly onStatusChange?: (name: string, healthy: boolean, member: MemberRef) => void }
  readonly replicas: ResolvedReplicaConfig
  readonly operationTimeout: number | undefined
  readonly intercept: boolean
  readonly gracefulShutdown: boolean
  readonly disconnectTimeout: number
  readonly tenants: ResolvedTenants | undefined
  readonly prometheus: boolean
  /** flexidb's own `/metrics` server, with `prometheus: { port }`. */
  readonly prometheusServer: { readonly port: number; readonly host: string } | undefined
  readonly telemetry: {
    /** Tenants that keep their own name in metrics: Infinity for `'all'`, 0 for `'none'`. */
    readonly tenantTop: number
    readonly queryText: boolean
  }
  /** Undefined for `logger: false`. */
  readonly log: ((message: string) => void) | undefined
}

const fail = (path: string, reason: string): never => {
  throw new InvalidArgumentError({ path, reason })
}

/** An option's path in messages: `retry.attempts`; a top-level option by its own name (`operationTimeout`). */
const at = (path: string, key: string) => (path === "" ? key : `${path}.${key}`)

const isObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const section = (options: Record<string, unknown>, key: string, known: ReadonlyArray<string>, parent?: string) => {
  const value = options[key]
  const path = parent === undefined ? key : `${parent}.${key}`
  if (value === undefined) return {}
  if (!isObject(value)) return fail(path, `expected an object, got ${typeof value}`)
  for (const k of Object.keys(value)) {
    if (!known.includes(k)) fail(`${path}.${k}`, `unknown option (known: ${known.join(", ")})`)
  }
  return value
}

const number = (
  obj: Record<string, unknown>,
  path: string,
  key: string,
  fallback: number,
  rule: { readonly min: number; readonly integer?: boolean }
): number => {
  const value = obj[key]
  if (value === undefined) return fallback
  if (typeof value !== "number" || !Number.isFinite(value)) {
    return fail(at(path, key), `expected a finite number, got ${JSON.stringify(value) ?? typeof value}`)
  }
  if (rule.integer === true && !Number.isInteger(value)) fail(at(path, key), `expected a whole number, got ${value}`)
  if (value < rule.min) fail(at(path, key), `must be at least ${rule.min}, got ${value}`)
  return value
}

/** A duration option in milliseconds: a number of milliseconds, or a DurationInput such as `"5 seconds"`. */
/** A required ratio above 0, at most 1. */
const ratio = (obj: Record<string, unknown>, path: string, key: string): number => {
  const value = obj[key]
  if (typeof value !== "number" || !(value > 0 && value <= 1)) {
    return fail(`${path}.${key}`, `expected a number above 0 and at most 1, got ${JSON.stringify(value) ?? typeof value}`)
  }
  return value
}

const duration = (
  obj: Record<string, unknown>,
  path: string,
  key: string,
  fallback: number,
  rule: { readonly min: number }
): number => {
  const value = obj[key]
  if (value === undefined) return fallback
  if (typeof value === "number") return number(obj, path, key, fallback, rule)
  // Duration clamps negative inputs to zero; a negative duration is a mistake to report, not to round.
  const negative = (typeof value === "string" && value.trim().startsWith("-")) ||
    (typeof value === "bigint" && value < 0n) ||
    (Array.isArray(value) && value.some((n) => typeof n !== "number" || n < 0))
  const decoded = negative ? undefined : Option.getOrUndefined(Duration.decodeUnknown(value))
  if (decoded === undefined || !Duration.isFinite(decoded)) {
    return fail(
      at(path, key),
      `expected milliseconds or a duration such as "5 seconds", got ${JSON.stringify(value) ?? typeof value}`
    )
  }
  const ms = Duration.toMillis(decoded)
  if (ms < rule.min) fail(at(path, key), `must be at least ${rule.min} ms, got ${ms} ms`)
  return ms
}

const callback = <F>(obj: Record<string, unknown>, path: string, key: string): F | undefined => {
  const value = obj[key]
  if (value === undefined) return undefined
  if (typeof value !== "function") return fail(at(path, key), `expected a function, got ${typeof value}`)
  return value as F
}

const boolean = (obj: Record<string, unknown>, path: string, key: string, fallback: boolean): boolean => {
  const value = obj[key]
  if (value === undefined) return fallback
  if (typeof value !== "boolean") return fail(at(path, key), `expected true or false, got ${JSON.stringify(value)}`)
  return value
}

const topLevel = [
  "retry",
  "circuitBreaker",
  "healthCheck",
  "reconnect",
  "hooks",
  "operationTimeout",
  "intercept",
  "gracefulShutdown",
  "disconnectTimeout",
  "replicas",
  "tenants",
  "prometheus",
  "telemetry",
  "logger"
]

const resolveTenants = (input: Record<string, unknown>): ResolvedTenants | undefined => {
  if (input.tenants === undefined) return undefined
  const t = section(input, "tenants", [
    "resolve",
    "exists",
    "catalog",
    "client",
    "maxClients",
    "idleTimeout",
    "connectionLimit",
    "maxConnections",
    "acquireTimeout"
  ])
  const resolve = callback<TenantsConfig<ClientEntry>["resolve"]>(t, "tenants", "resolve")
  const client = callback<TenantsConfig<ClientEntry>["client"]>(t, "tenants", "client")
  let catalog: ResolvedTenants["catalog"]
  if (t.catalog !== undefined) {
    const c = section(t, "catalog", ["url", "servers", "pollInterval", "listen", "moveTimeout"], "tenants")
    if (typeof c.url !== "string" || !/^postgres(?:ql)?:\/\//i.test(c.url)) {
      fail("tenants.catalog.url", "expected the catalog database's postgresql:// URL (the URL is not repeated here)")
    }
    if (!isObject(c.servers) || Object.values(c.servers).some((v) => typeof v !== "string")) {
      fail("tenants.catalog.servers", "expected an object mapping server names to base URLs")
    }
    if (resolve !== undefined) fail("tenants.resolve", "give either resolve or catalog (with client), not both")
    if (client === undefined) fail("tenants.client", "expected a function (url, info) => client: it makes each tenant's client")
    catalog = {
      url: c.url as string,
      servers: c.servers as Record<string, string>,
      pollInterval: duration(c, "tenants.catalog", "pollInterval", 5_000, { min: 1 }),
      listen: boolean(c, "tenants.catalog", "listen", true),
      moveTimeout: duration(c, "tenants.catalog", "moveTimeout", 5_000, { min: 1 }),
      client: client!
    }
  } else if (resolve === undefined) {
    return fail("tenants.resolve", "expected a function (name, { connectionLimit }) => client")
  } else if (client !== undefined) {
    fail("tenants.client", "is for tenants.catalog: with resolve, resolve makes the clients")
  }
  const exists = callback<TenantsConfig<ClientEntry>["exists"]>(t, "tenants", "exists")
  const connectionLimit = t.connectionLimit === undefined
    ? undefined
    : number(t, "tenants", "connectionLimit", 1, { min: 1, integer: true })
  let maxClients = number(t, "tenants", "maxClients", 100, { min: 1, integer: true })
  if (t.maxConnections !== undefined) {
    const max = number(t, "tenants", "maxConnections", 1, { min: 1, integer: true })
    if (connectionLimit === undefined) {
      fail("tenants.maxConnections", "needs tenants.connectionLimit: the connections each tenant's pool may open")
    }
    if (max < connectionLimit!) {
      fail("tenants.maxConnections", `must be at least connectionLimit (${connectionLimit}), got ${max}`)
    }
    maxClients = Math.min(maxClients, Math.floor(max / connectionLimit!))
  }
  return {
    resolve,
    catalog,
    exists,
    maxClients,
    connectionLimit,
    idleTimeout: duration(t, "tenants", "idleTimeout", 600_000, { min: 1 }),
    acquireTimeout: duration(t, "tenants", "acquireTimeout", 10_000, { min: 0 })
  }
}

/** The replica settings, in the `replicas` option and on a pair. */
export const replicaKeys: ReadonlyArray<string> = ["balance", "fallback", "readYourWrites"]

/**
 * Checks replica settings found at `path` (the `replicas` option, or a pair entry), filling in from `base`; throws
 * InvalidArgumentError naming the key.
 */
export const resolveReplicas = (
  input: Record<string, unknown>,
  path: string,
  base: ResolvedReplicaConfig = defaultReplicaConfig
): ResolvedReplicaConfig => {
  const balance = input.balance ?? base.balance
  if (typeof balance !== "function" && !["round-robin", "random", "least-busy"].includes(balance as string)) {
    fail(`${path}.balance`, `expected 'round-robin', 'random', 'least-busy' or a function, got ${JSON.stringify(balance)}`)
  }
  const fallback = input.fallback ?? base.fallback
  if (fallback !== "primary" && fallback !== "error") {
    fail(`${path}.fallback`, `expected 'primary' or 'error', got ${JSON.stringify(fallback)}`)
  }
  const ryw = section(input, "readYourWrites", ["mode", "window", "lsnCacheTime"], path)
  const mode = ryw.mode ?? base.readYourWrites.mode
  if (mode !== "window" && mode !== "lsn") {
    fail(`${path}.readYourWrites.mode`, `expected 'window' or 'lsn', got ${JSON.stringify(mode)}`)
  }
  const where = `${path}.readYourWrites`
  return {
    balance: balance as BalancePolicy,
    fallback: fallback as "primary" | "error",
    readYourWrites: {
      mode: mode as "window" | "lsn",
      window: duration(ryw, where, "window", base.readYourWrites.window, { min: 0 }),
      lsnCacheTime: duration(ryw, where, "lsnCacheTime", base.readYourWrites.lsnCacheTime, { min: 0 })
    }
  }
}

/** Replica settings when none are given. */
export const defaultReplicaConfig: ResolvedReplicaConfig = {
  balance: "round-robin",
  fallback: "primary",
  readYourWrites: { mode: "window", window: 2000, lsnCacheTime: 10 }
}

/**
 * Fills in defaults and checks every value; throws `InvalidArgumentError` naming the option and what to use.
 *
 * @since 0.1.0
 */
export const resolveOptions = (input: FlexiDBOptions<any> | undefined = {}): ResolvedOptions => {
  if (!isObject(input)) return fail("options", `expected an object, got ${input === null ? "null" : typeof input}`)
  for (const k of Object.keys(input)) if (!topLevel.includes(k)) fail(k, `unknown option (known: ${topLevel.join(", ")})`)
  const r = section(input, "retry", ["attempts", "delay", "backoff", "maxDelay"])
  const backoff = r.backoff ?? "exponential"
  if (backoff !== "exponential" && backoff !== "fixed") {
    fail("retry.backoff", `expected 'exponential' or 'fixed', got ${JSON.stringify(backoff)}`)
  }
  const cb = section(input, "circuitBreaker", ["threshold", "resetTimeout", "sampling"])
  const sampling = section(cb, "sampling", ["threshold", "duration", "minimumThroughput"], "circuitBreaker")
  const hc = section(input, "healthCheck", ["interval", "timeout", "onStatusChange"])
  const rc = section(input, "reconnect", ["enabled", "interval", "maxAttempts"])
  const hooks = section(input, "hooks", ["onConnect", "onDisconnect", "onError", "onRetry"])
  const onStatusChange = callback<(name: string, healthy: boolean, member: MemberRef) => void>(
    hc,
    "healthCheck",
    "onStatusChange"
  )
  const replicas = resolveReplicas(section(input, "replicas", replicaKeys), "replicas")
  return {
    retry: {
      attempts: number(r, "retry", "attempts", 3, { min: 0, integer: true }),
      delay: duration(r, "retry", "delay", 1000, { min: 0 }),
      backoff: backoff as "exponential" | "fixed",
      maxDelay: duration(r, "retry", "maxDelay", 30_000, { min: 0 })
    },
    circuitBreaker: {
      threshold: number(cb, "circuitBreaker", "threshold", 5, { min: 1, integer: true }),
      resetTimeout: duration(cb, "circuitBreaker", "resetTimeout", 30_000, { min: 1 }),
      ...(cb.sampling !== undefined && {
        sampling: {
          threshold: ratio(sampling, "circuitBreaker.sampling", "threshold"),
          duration: duration(sampling, "circuitBreaker.sampling", "duration", 10_000, { min: 1 }),
          minimumThroughput: number(sampling, "circuitBreaker.sampling", "minimumThroughput", 20, { min: 1, integer: true })
        }
      })
    },
    healthCheck: {
      enabled: input.healthCheck !== undefined,
      interval: duration(hc, "healthCheck", "interval", 30_000, { min: 1 }),
      timeout: duration(hc, "healthCheck", "timeout", 5000, { min: 1 })
    },
    reconnect: {
      enabled: boolean(rc, "reconnect", "enabled", true),
      interval: duration(rc, "reconnect", "interval", 5000, { min: 1 }),
      maxAttempts: number(rc, "reconnect", "maxAttempts", 10, { min: 1, integer: true })
    },
    hooks: {
      ...(onStatusChange && { onStatusChange }),
      onConnect: callback(hooks, "hooks", "onConnect"),
      onDisconnect: callback(hooks, "hooks", "onDisconnect"),
      onError: callback(hooks, "hooks", "onError"),
      onRetry: callback(hooks, "hooks", "onRetry")
    },
    operationTimeout: input.operationTimeout === undefined
      ? undefined
      : duration(input as Record<string, unknown>, "", "operationTimeout", 0, { min: 1 }),
    replicas,
    intercept: boolean(input as Record<string, unknown>, "", "intercept", true),
    gracefulShutdown: boolean(input as Record<string, unknown>, "", "gracefulShutdown", true),
    disconnectTimeout: duration(input as Record<string, unknown>, "", "disconnectTimeout", 5000, { min: 1 }),
    tenants: resolveTenants(input as Record<string, unknown>),
    ...resolvePrometheus((input as Record<string, unknown>).prometheus),
    telemetry: resolveTelemetry(input as Record<string, unknown>),
    log: resolveLogger((input as Record<string, unknown>).logger)
  }
}

const resolvePrometheus = (value: unknown): Pick<ResolvedOptions, "prometheus" | "prometheusServer"> => {
  if (value === undefined || typeof value === "boolean") return { prometheus: value === true, prometheusServer: undefined }
  if (!isObject(value)) return fail("prometheus", `expected true, false or { port }, got ${JSON.stringify(value)}`)
  const p = section({ prometheus: value }, "prometheus", ["port", "host"])
  if (p.port === undefined) fail("prometheus.port", "expected a port number, such as 9464")
  const port = number(p, "prometheus", "port", 0, { min: 1, integer: true })
  if (port > 65535) fail("prometheus.port", `must be at most 65535, got ${port}`)
  const host = p.host ?? "127.0.0.1"
  if (typeof host !== "string" || host.length === 0) fail("prometheus.host", `expected a host name or address, got ${JSON.stringify(host)}`)
  return { prometheus: true, prometheusServer: { port, host: host as string } }
}

const resolveTelemetry = (input: Record<string, unknown>): ResolvedOptions["telemetry"] => {
  const t = section(input, "telemetry", ["tenantLabel", "queryText"])
  const label = t.tenantLabel ?? { top: 50 }
  let tenantTop: number
  if (label === "all") tenantTop = Infinity
  else if (label === "none") tenantTop = 0
  else if (isObject(label) && Object.keys(label).every((k) => k === "top")) {
    tenantTop = number(label, "telemetry.tenantLabel", "top", 50, { min: 0, integer: true })
  } else {
    tenantTop = fail("telemetry.tenantLabel", `expected { top: N }, 'all' or 'none', got ${JSON.stringify(label)}`)
  }
  return { tenantTop, queryText: boolean(t, "telemetry", "queryText", false) }
}

const stderrLine = (message: string) => console.warn(`[flexidb] ${message}`)

const resolveLogger = (logger: unknown): ((message: string) => void) | undefined => {
  if (logger === undefined) return stderrLine
  if (logger === false) return undefined
  const warn = (logger as { warn?: unknown } | null)?.warn
  if (typeof warn !== "function") {
    return fail("logger", "expected false or an object with a warn(message) method, such as console or a pino logger")
  }
  return (message) => {
    try {
      const result: unknown = warn.call(logger, message)
      // An async logger's rejection is ignored too, not left unhandled.
      if (typeof (result as PromiseLike<unknown> | undefined)?.then === "function") {
        ;(result as PromiseLike<unknown>).then(undefined, () => {})
      }
    } catch {
      // a logger that throws must not break the database it reports on
    }
  }
}

/**
 * The retry policy as a `Schedule`: `attempts` recurrences, `delay` then doubling (capped at `maxDelay`) or fixed.
 * Its output is the retry number, from 1.
 *
 * @since 0.1.0
 */
export const retrySchedule = (retry: ResolvedOptions["retry"]): Schedule.Schedule<number, unknown> => {
  const cap = Duration.millis(retry.maxDelay)
  const delays: Schedule.Schedule<unknown> = retry.backoff === "exponential"
    ? Schedule.exponential(Duration.millis(retry.delay)).pipe(Schedule.modifyDelay((_, d) => Duration.min(d, cap)))
    : Schedule.spaced(Duration.min(Duration.millis(retry.delay), cap))
  return Schedule.intersect(delays, Schedule.recurs(retry.attempts)).pipe(Schedule.map(([, n]) => n + 1))
}

/**
 * The reconnect policy after the first attempt: the next ones `interval` apart, `maxAttempts` in all. Its output
 * numbers the retry (1, 2, …). Reconnect waits `interval` before the first attempt, then retries on this schedule.
 *
 * @since 0.2.0
 */
export const reconnectSchedule = (reconnect: ResolvedOptions["reconnect"]): Schedule.Schedule<number, unknown> =>
  Schedule.intersect(Schedule.spaced(Duration.millis(reconnect.interval)), Schedule.recurs(Math.max(0, reconnect.maxAttempts - 1)))
    .pipe(Schedule.map(([, n]) => n + 1))
