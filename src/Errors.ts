/**
 * The errors flexidb raises. Each is a `Data.TaggedError`, so Effect code can `catchTag` them, and an `Error`
 * with a stable `code`, so Promise code can `instanceof`- or `code`-check them. None carries a connection string.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Predicate from "effect/Predicate"
import { errorSummary, redact } from "./Redact.js"

/** @since 0.1.0 */
export const TypeId: unique symbol = Symbol.for("flexidb/FlexiDBError")
/** @since 0.1.0 */
export type TypeId = typeof TypeId

/** The fields with credentials removed from every string (and list of strings) in them; causes kept as they are. */
const withoutCredentials = (fields: unknown): unknown => {
  if (typeof fields !== "object" || fields === null) return fields
  const clean: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(fields)) {
    clean[key] = typeof value === "string"
      ? redact(value)
      : Array.isArray(value) && value.every((v) => typeof v === "string")
      ? value.map(redact)
      : value
  }
  return clean
}

/**
 * `Data.TaggedError`, with credentials removed from its string fields: a connection string passed where a name or an
 * option goes (`db.get(process.env.DATABASE_URL)`) is not repeated by the error, its message or its JSON.
 */
const TaggedError = <Tag extends string>(tag: Tag): ReturnType<typeof Data.TaggedError<Tag>> => {
  const Base = Data.TaggedError(tag) as unknown as new(fields: unknown) => object
  return class extends Base {
    constructor(fields: unknown) {
      super(withoutCredentials(fields))
    }
  } as unknown as ReturnType<typeof Data.TaggedError<Tag>>
}

const formatNames = (names: ReadonlyArray<string>) =>
  names.length === 0 ? "none are registered" : `registered: ${names.map((n) => `'${n}'`).join(", ")}`

/**
 * Thrown by `get()`, `batch()`, `unregister()` and `group()` for a name that is not registered.
 * `registered` lists the names that are.
 *
 * @since 0.1.0
 */
export class UnknownDatabaseError extends TaggedError("UnknownDatabaseError")<{
  readonly database: string
  readonly registered: ReadonlyArray<string>
  /** A tenant (`tenant()`, `withTenant()`): `tenants.exists` said no, or its database does not exist. @since 0.2.0 */
  readonly tenant?: boolean
}> {
  readonly [TypeId]: TypeId = TypeId
  readonly code = "FLEXIDB_UNKNOWN_DATABASE"
  /** Refused before anything ran. */
  readonly outcomeUnknown = false
  override get message() {
    if (this.tenant === true) {
      return `Unknown tenant '${this.database}': there is no such tenant. Check the name, or create the tenant first.`
    }
    return `Unknown database '${this.database}' (${formatNames(this.registered)}). Register it first with register().`
  }
}

/**
 * Thrown by `healthGroup()` and `group(name)` for a group that was never defined.
 *
 * @since 0.1.0
 */
export class UnknownGroupError extends TaggedError("UnknownGroupError")<{
  readonly group: string
  readonly defined: ReadonlyArray<string>
}> {
  readonly [TypeId]: TypeId = TypeId
  readonly code = "FLEXIDB_UNKNOWN_GROUP"
  /** Refused before anything ran. */
  readonly outcomeUnknown = false
  override get message() {
    const defined = this.defined.length === 0 ? "none are defined" : `defined: ${this.defined.join(", ")}`
    return `Unknown group '${this.group}' (${defined}). Define it first with group(name, databases).`
  }
}

/**
 * Thrown by `register()` for a name that is already registered. Nothing is changed.
 *
 * @since 0.1.0
 */
export class DuplicateDatabaseError extends TaggedError("DuplicateDatabaseError")<{
  readonly database: string
}> {
  readonly [TypeId]: TypeId = TypeId
  readonly code = "FLEXIDB_DUPLICATE_DATABASE"
  /** Refused before anything ran. */
  readonly outcomeUnknown = false
  override get message() {
    return `Database '${this.database}' is already registered. Call unregister('${this.database}') first to replace it.`
  }
}

/**
 * Thrown synchronously for invalid options, names or clients. `path` names the offending option
 * (such as `retry.attempts`). Nothing is changed.
 *
 * @since 0.1.0
 */
export class InvalidArgumentError extends TaggedError("InvalidArgumentError")<{
  readonly path: string
  readonly reason: string
}> {
  readonly [TypeId]: TypeId = TypeId
  readonly code = "FLEXIDB_INVALID_ARGUMENT"
  /** Refused before anything ran. */
  readonly outcomeUnknown = false
  override get message() {
    return `Invalid ${this.path}: ${this.reason}`
  }
}

/**
 * A query was refused without running because the database's circuit breaker is open: it failed
 * `threshold` times in a row with errors that mean the database is unreachable. `retryAfterMs` says when a
 * trial query will be let through.
 *
 * @since 0.1.0
 */
export class CircuitOpenError extends TaggedError("CircuitOpenError")<{
  readonly database: string
  readonly operation: string
  readonly retryAfterMs: number
}> {
  readonly [TypeId]: TypeId = TypeId
  readonly code = "FLEXIDB_CIRCUIT_OPEN"
  /** It was not run: nothing reached the database. */
  readonly outcomeUnknown = false
  override get message() {
    return `Circuit open for database '${this.database}': ${this.operation} was not run. ` +
      `The database failed repeatedly; a trial query is allowed in ${Math.max(0, Math.ceil(this.retryAfterMs))} ms.`
  }
}

/**
 * A database could not be connected after every retry. `cause` is the last error from Prisma or the driver;
 * `reason` is its message with credentials removed.
 *
 * @since 0.1.0
 */
export class ConnectionError extends TaggedError("ConnectionError")<{
  readonly database: string
  readonly attempts: number
  readonly reason: string
  readonly cause: unknown
}> {
  readonly [TypeId]: TypeId = TypeId
  readonly code = "FLEXIDB_CONNECTION_FAILED"
  override get message() {
    const tries = this.attempts === 1 ? "1 attempt" : `${this.attempts} attempts`
    return `Could not connect to database '${this.database}' after ${tries}: ${this.reason}. ${hintFor(this.reason)}`
  }
}

/** A SQLite file that cannot be opened has no server to check: its folder and path are what to look at. */
const hintFor = (reason: string) =>
  /cannot open database|unable to open database file|SQLITE_CANTOPEN|directory does not exist/i.test(reason)
    ? "Check that the file's folder exists and its path is right (a relative file: URL is resolved against the " +
      "process's working directory)."
    : "Check that the server is running and its URL is right."

/**
 * An operation did not finish within the `operationTimeout` the app set. The database may still complete it:
 * `outcomeUnknown` is true.
 *
 * @since 0.1.0
 */
export class OperationTimeoutError extends TaggedError("OperationTimeoutError")<{
  readonly database: string
  readonly operation: string
  readonly timeoutMs: number
}> {
  readonly [TypeId]: TypeId = TypeId
  readonly code = "FLEXIDB_OPERATION_TIMEOUT"
  /** The database may still complete it: a write may have taken effect. */
  readonly outcomeUnknown = true
  override get message() {
    return `${this.operation} on database '${this.database}' did not finish within ${this.timeoutMs} ms.`
  }
}

/**
 * A query run through `Database.query` failed. `cause` is Prisma's error, untouched (a unique violation, a missing
 * record, a lost connection…); the message is its reason with credentials removed.
 *
 * @since 0.1.0
 */
export class QueryError extends TaggedError("QueryError")<{
  readonly database: string
  readonly cause: unknown
}> {
  readonly [TypeId]: TypeId = TypeId
  readonly code = "FLEXIDB_QUERY_FAILED"
  /** Whether the query may have taken effect, as flexidb marked its cause (see `isOutcomeUnknown`); true if unmarked. */
  get outcomeUnknown(): boolean {
    return markedUnknown(this.cause)
  }
  override get message() {
    return `Query on database '${this.database}' failed: ${describe(this.cause)}`
  }
}

/**
 * `batch()` rejects with this when one or more operations failed; every operation ran to completion first.
 * `failures` maps each failed database to its original error; `results` holds the ones that succeeded.
 *
 * @since 0.1.0
 */
export class BatchError extends TaggedError("BatchError")<{
  readonly failures: Readonly<Record<string, unknown>>
  readonly results: Readonly<Record<string, unknown>>
}> {
  readonly [TypeId]: TypeId = TypeId
  readonly code = "FLEXIDB_BATCH_FAILED"
  /** Whether any failed operation may have taken effect (see `isOutcomeUnknown`). */
  get outcomeUnknown(): boolean {
    return Object.values(this.failures).some(markedUnknown)
  }
  override get message() {
    const names = Object.keys(this.failures)
    return `batch() failed on ${names.length} database${names.length === 1 ? "" : "s"}: ` +
      names.map((n) => `'${n}' (${describe(this.failures[n])})`).join(", ")
  }
}

/**
 * Given to the `onError` hook when background reconnection stopped after `reconnect.maxAttempts` attempts. The
 * database stays down until the next failed health check or query starts a new round (health checks run only with
 * the `healthCheck` option).
 *
 * @since 0.2.0
 */
export class ReconnectFailedError extends TaggedError("ReconnectFailedError")<{
  readonly database: string
  readonly attempts: number
}> {
  readonly [TypeId]: TypeId = TypeId
  readonly code = "FLEXIDB_RECONNECT_FAILED"
  override get message() {
    const tries = this.attempts === 1 ? "1 attempt" : `${this.attempts} attempts`
    return `Database '${this.database}' did not answer after ${tries} to reconnect. Reconnection starts again ` +
      `when a health check or a query next finds it down; check that the server is running.`
  }
}

/**
 * A read through `get(name, 'read')` found no healthy replica and the pair's `fallback` is `'error'`. Nothing was
 * sent.
 *
 * @since 0.2.0
 */
export class ReplicaUnavailableError extends TaggedError("ReplicaUnavailableError")<{
  readonly database: string
  readonly operation: string
  readonly replicas: number
}> {
  readonly [TypeId]: TypeId = TypeId
  readonly code = "FLEXIDB_REPLICA_UNAVAILABLE"
  /** It was not run: nothing reached the database. */
  readonly outcomeUnknown = false
  override get message() {
    return `No healthy replica of database '${this.database}' for ${this.operation} (${this.replicas} configured, ` +
      `fallback: 'error'). Read from the writer with get('${this.database}'), or set fallback: 'primary'.`
  }
}

/**
 * A write was refused without being sent: it went through a read client (`get(name, 'read')`), or the database's
 * writes are prevented by `preventWrites()`.
 *
 * @since 0.2.0
 */
export class ReadOnlyError extends TaggedError("ReadOnlyError")<{
  readonly database: string
  readonly operation: string
  readonly reason: "read-client" | "prevented"
}> {
  readonly [TypeId]: TypeId = TypeId
  readonly code = "FLEXIDB_READ_ONLY"
  /** It was not run: nothing reached the database. */
  readonly outcomeUnknown = false
  override get message() {
    return this.reason === "read-client"
      ? `${this.operation} is a write and was not sent: get('${this.database}', 'read') is read-only. ` +
        `Write through get('${this.database}').`
      : `${this.operation} was not sent: writes to database '${this.database}' are prevented (preventWrites) ` +
        `until the maintenance callback ends.`
  }
}

/**
 * A new tenant found every slot of the tenant budget (`maxClients`, or `maxConnections / connectionLimit`) busy for
 * `acquireTimeout`: nothing was resolved or opened.
 *
 * @since 0.2.0
 */
export class TenantCapacityError extends TaggedError("TenantCapacityError")<{
  readonly tenant: string
  readonly maxClients: number
  readonly waitedMs: number
}> {
  readonly [TypeId]: TypeId = TypeId
  readonly code = "FLEXIDB_TENANT_CAPACITY"
  /** Refused before anything ran. */
  readonly outcomeUnknown = false
  override get message() {
    return `No room for tenant '${this.tenant}': all ${this.maxClients} tenant clients were busy for ${this.waitedMs} ms. ` +
      `Raise tenants.maxClients (or maxConnections), shorten leases, or retry later.`
  }
}

/**
 * `withTenant()` inside another tenant's `withTenant()`: tenant isolation forbids it unless `{ nested: true }`.
 *
 * @since 0.2.0
 */
export class TenantLockedError extends TaggedError("TenantLockedError")<{
  readonly tenant: string
  readonly current: string
}> {
  readonly [TypeId]: TypeId = TypeId
  readonly code = "FLEXIDB_TENANT_LOCKED"
  /** Refused before anything ran. */
  readonly outcomeUnknown = false
  override get message() {
    return `Cannot enter tenant '${this.tenant}' inside tenant '${this.current}'. Finish the first, or pass ` +
      `{ nested: true } if this code must reach both.`
  }
}

/**
 * The tenant is suspended in the catalog (`flexidb/catalog`'s `suspend`): nothing ran. It serves again after
 * `resume(name)`. Usually refused before anything is sent; with `cause`, the process had not heard of the suspension
 * yet and the database's own fence refused the call (`cause` is that refusal).
 *
 * @since 0.2.0
 */
export class TenantSuspendedError extends TaggedError("TenantSuspendedError")<{
  readonly tenant: string
  readonly cause?: unknown
}> {
  readonly [TypeId]: TypeId = TypeId
  readonly code = "FLEXIDB_TENANT_SUSPENDED"
  /** Refused before anything ran. */
  readonly outcomeUnknown = false
  override get message() {
    const how = this.cause === undefined ? "nothing was sent" : "its database's fence refused the call, which did not run"
    return `Tenant '${this.tenant}' is suspended: ${how}. It serves again once the catalog resumes it ` +
      `(resume('${this.tenant}'), or \`flexidb tenants resume ${this.tenant}\`).`
  }
}

/**
 * The tenant catalog (`flexidb/catalog`) refused or failed an operation for a reason other than an unknown or
 * duplicate tenant, a bad argument or an unreachable server: `reason` is the server's message, without credentials.
 *
 * @since 0.2.0
 */
export class CatalogError extends TaggedError("CatalogError")<{
  readonly operation: string
  readonly tenant?: string | undefined
  readonly reason: string
  readonly cause?: unknown
}> {
  readonly [TypeId]: TypeId = TypeId
  readonly code = "FLEXIDB_CATALOG"
  override get message() {
    const who = this.tenant === undefined ? "" : ` of tenant '${this.tenant}'`
    return `Catalog ${this.operation}${who} failed: ${this.reason}`
  }
}

/**
 * Thrown when the instance is used after `disconnect()`, or (with `database`) when a client kept from `get()` is
 * used after its database was unregistered or its instance disconnected: nothing is sent, no connection reopened.
 *
 * @since 0.1.0
 */
export class ClosedError extends TaggedError("ClosedError")<{
  readonly operation: string
  readonly database?: string
}> {
  readonly [TypeId]: TypeId = TypeId
  readonly code = "FLEXIDB_CLOSED"
  /** It was not run: nothing reached the database. */
  readonly outcomeUnknown = false
  override get message() {
    return this.database === undefined
      ? `Cannot ${this.operation}: this flexidb instance was disconnected. Create a new one with createFlexiDB().`
      : `Cannot run ${this.operation}: database '${this.database}' was unregistered or its instance disconnected. ` +
        `Take a fresh client from get('${this.database}').`
  }
}

/**
 * A tenant's resolver (`tenants.resolve`) threw or rejected: nothing was opened and no slot is kept. `cause` is what it
 * threw; the message is its reason with credentials removed.
 *
 * @since 0.2.0
 */
export class TenantResolveError extends TaggedError("TenantResolveError")<{
  readonly tenant: string
  readonly cause: unknown
}> {
  readonly [TypeId]: TypeId = TypeId
  readonly code = "FLEXIDB_TENANT_RESOLVE"
  /** Refused before anything ran on the tenant's database. */
  readonly outcomeUnknown = false
  override get message() {
    return `Could not resolve tenant '${this.tenant}': ${describe(this.cause)}. Check tenants.resolve and what it reads.`
  }
}

/**
 * What opening a tenant (`tenant()`, `withTenant()`) can fail with: a bad name or no `tenants` option
 * (InvalidArgumentError), no such tenant (UnknownDatabaseError), no slot in time (TenantCapacityError), the resolver
 * failed (TenantResolveError), a database of that name already registered (DuplicateDatabaseError), or the instance
 * is closed (ClosedError).
 *
 * @since 0.2.0
 */
export type TenantError =
  | InvalidArgumentError
  | UnknownDatabaseError
  | TenantCapacityError
  | TenantResolveError
  | TenantSuspendedError
  | CatalogError
  | ConnectionError
  | TenantMovingError
  | DuplicateDatabaseError
  | ClosedError

/**
 * The tenant is moving to another server (`catalog.move`) and its writes are held for the cutover: a new write waited
 * `moveTimeout` (default 5 s) for the move to finish and was not sent (`outcomeUnknown: false`). Try again: once the
 * move has switched, the tenant opens on its new server. A write the cutover cut (the source closed in its engine
 * under a process that had not heard of the move) says `outcomeUnknown: true` — or `false` when the closed source
 * refused it outright — with `waitedMs` 0.
 *
 * @since 0.2.0
 */
export class TenantMovingError extends TaggedError("TenantMovingError")<{
  readonly tenant: string
  readonly waitedMs: number
  readonly outcomeUnknown: boolean
}> {
  readonly [TypeId]: TypeId = TypeId
  readonly code = "FLEXIDB_TENANT_MOVING"
  override get message() {
    return this.outcomeUnknown
      ? `Tenant '${this.tenant}' is moving: this write was cut by the cutover and may or may not have been committed. ` +
        `Check, then try again once the move has switched.`
      : `Tenant '${this.tenant}' is moving to another server: the write waited ${this.waitedMs} ms (moveTimeout) and was ` +
        `not sent. Try again: once the move has switched, the tenant opens on its new server.`
  }
}

/** @since 0.1.0 */
export type FlexiDBError =
  | UnknownDatabaseError
  | UnknownGroupError
  | DuplicateDatabaseError
  | InvalidArgumentError
  | CircuitOpenError
  | ConnectionError
  | OperationTimeoutError
  | BatchError
  | ClosedError
  | QueryError
  | ReconnectFailedError
  | ReplicaUnavailableError
  | ReadOnlyError
  | TenantCapacityError
  | TenantLockedError
  | TenantSuspendedError
  | TenantMovingError
  | CatalogError
  | TenantResolveError

/**
 * Whether `u` is one of flexidb's own errors.
 *
 * @since 0.1.0
 */
export const isFlexiDBError = (u: unknown): u is FlexiDBError => Predicate.hasProperty(u, TypeId)

const describe = (error: unknown): string => errorSummary(error)

/** What flexidb marked on an operation's error; an error it could not mark (not an object) may have taken effect. */
const markedUnknown = (error: unknown): boolean => {
  const marked = (error as { outcomeUnknown?: unknown } | null)?.outcomeUnknown
  if (typeof marked === "boolean") return marked
  // flexidb's own refusals (an unknown name…) come before anything runs.
  return !Predicate.hasProperty(error, TypeId)
}
