/**
 * One registered database: its clients, breaker and counters, and the synchronous hot path every query takes.
 * Lifecycle work (connect, health, reconnect, shutdown) lives in lifecycle.ts and runs as Effects.
 */
import type { Clock } from "effect"
import { Effect, Exit, Fiber, Runtime } from "effect"
import * as CircuitBreaker from "../CircuitBreaker.js"
import type { ClientEntry, DBStats, MiddlewareFn, PrismaClientLike, Role } from "../Client.js"
import { CircuitOpenError, InvalidArgumentError, OperationTimeoutError } from "../Errors.js"
import type { ResolvedOptions } from "../Options.js"
import { isUnhealthy } from "./classify.js"
import { errorSummary } from "./redact.js"

/** What every database of one instance shares: options, clock, middleware, and a runtime for rare forks. */
export interface Env {
  readonly options: ResolvedOptions
  readonly clock: Clock.Clock
  readonly runtime: Runtime.Runtime<never>
  /** Replaced (never mutated) by `use()`, so a running chain keeps the list it started with. */
  middleware: ReadonlyArray<MiddlewareFn>
  /** Called from the hot path when a query opens a circuit: the database was found down. */
  readonly onFoundDown: (db: DatabaseState, error: unknown) => void
}

export type Status = "pending" | "up" | "down"

export interface DatabaseState {
  readonly name: string
  readonly write: PrismaClientLike
  readonly reads: ReadonlyArray<PrismaClientLike>
  /** Each distinct client once: connect and disconnect act on these. */
  readonly clients: ReadonlyArray<PrismaClientLike>
  /** What `get()` hands out: intercepted clients, or the bare ones when interception is off. */
  readonly api: { readonly write: PrismaClientLike; readonly reads: ReadonlyArray<PrismaClientLike> }
  readonly breaker: CircuitBreaker.CircuitBreaker
  readonly counters: Counters
  status: Status
  closed: boolean
  nextRead: number
  /** Starts the reconnect fiber in the database's scope unless one runs; set by supervise(). */
  reconnect: Effect.Effect<void>
}

interface Counters {
  readonly registeredAt: number
  lastConnectedAt: number | null
  lastError: string | null
  total: number
  failed: number
  rejected: number
  /** Sum of response times in nanoseconds, as a float: exact well past any process lifetime. */
  elapsedNs: number
}

const isClient = (u: unknown): u is PrismaClientLike =>
  typeof u === "object" && u !== null &&
  ["$connect", "$disconnect", "$queryRawUnsafe", "$extends"].every((m) => typeof (u as any)[m] === "function")

const clientError = (path: string, value: unknown) =>
  new InvalidArgumentError({
    path,
    reason: `expected a Prisma client (with $connect, $disconnect, $queryRawUnsafe and $extends) or { read, write }, ` +
      `got ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}`
  })

const maxNameLength = 128

/** Throws InvalidArgumentError for a name no one should use: empty, too long, or with control characters. */
export const validateName = (name: unknown): string => {
  if (typeof name !== "string") {
    throw new InvalidArgumentError({ path: "name", reason: `expected a string, got ${typeof name}` })
  }
  if (name.trim().length === 0) {
    throw new InvalidArgumentError({ path: "name", reason: "a database name cannot be empty" })
  }
  if (name.length > maxNameLength) {
    throw new InvalidArgumentError({
      path: "name",
      reason: `a database name can have at most ${maxNameLength} characters, got ${name.length}`
    })
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) {
    throw new InvalidArgumentError({ path: "name", reason: "a database name cannot contain control characters" })
  }
  return name
}

/** Splits an entry into its clients; throws InvalidArgumentError for anything that is not a client or pair. */
export const splitEntry = (name: string, entry: unknown) => {
  if (isClient(entry)) return { write: entry, reads: [entry] as ReadonlyArray<PrismaClientLike> }
  if (typeof entry === "object" && entry !== null && "write" in entry && "read" in entry) {
    const { read, write } = entry as { read: unknown; write: unknown }
    if (!isClient(write)) throw clientError(`clients.${name}.write`, write)
    const reads = Array.isArray(read) ? read : [read]
    if (reads.length === 0) {
      throw new InvalidArgumentError({ path: `clients.${name}.read`, reason: "needs at least one client" })
    }
    reads.forEach((r, i) => {
      if (!isClient(r)) throw clientError(`clients.${name}.read${Array.isArray(read) ? `[${i}]` : ""}`, r)
    })
    return { write, reads: reads as ReadonlyArray<PrismaClientLike> }
  }
  throw clientError(`clients.${name}`, entry)
}

export const makeDatabase = (name: string, entry: ClientEntry, env: Env): DatabaseState => {
  const { reads, write } = splitEntry(name, entry)
  const clients = [...new Set([write, ...reads])]
  const breaker = CircuitBreaker.make(env.options.circuitBreaker)
  const counters: Counters = {
    registeredAt: env.clock.unsafeCurrentTimeMillis(),
    lastConnectedAt: null,
    lastError: null,
    total: 0,
    failed: 0,
    rejected: 0,
    elapsedNs: 0
  }
  const db: DatabaseState = {
    name,
    write,
    reads,
    clients,
    api: { write, reads },
    breaker,
    counters,
    status: "pending",
    closed: false,
    nextRead: 0,
    reconnect: Effect.void
  }
  if (env.options.intercept) {
    const wrapped = new Map(clients.map((c) => [c, intercept(c, db, env)]))
    ;(db as { api: DatabaseState["api"] }).api = { write: wrapped.get(write)!, reads: reads.map((r) => wrapped.get(r)!) }
  }
  return db
}

const intercept = (client: PrismaClientLike, db: DatabaseState, env: Env): PrismaClientLike =>
  client.$extends({
    name: "flexidb",
    query: {
      $allOperations: ({ args, model, operation, query }: {
        model?: string
        operation: string
        args: unknown
        query: (args: unknown) => PromiseLike<unknown>
      }) => runOperation(db, env, model === undefined ? operation : `${model}.${operation}`, query, args)
    }
  })

/**
 * The client for a role: the write client, or the next read client in turn. `bare` gives the uninstrumented
 * client, for code that already counts the whole operation (batch, Database.query).
 */
export const clientFor = (db: DatabaseState, role: Role | undefined, bare?: "bare"): PrismaClientLike => {
  const set = bare === undefined ? db.api : db
  if (role === undefined || role === "write") return set.write
  const reads = set.reads
  if (reads.length === 1) return reads[0]!
  const client = reads[db.nextRead % reads.length]!
  db.nextRead = (db.nextRead + 1) % reads.length
  return client
}

/**
 * The hot path: breaker check, middleware, timing and counting around one operation. Synchronous bookkeeping
 * only; an Effect runs here just when a circuit opens or an operation timeout is set.
 */
export const runOperation = <I, A>(
  db: DatabaseState,
  env: Env,
  operation: string,
  run: (input: I) => PromiseLike<A>,
  input: I
): Promise<A> => {
  const clock = env.clock
  const permit = CircuitBreaker.unsafeAcquire(db.breaker, clock.unsafeCurrentTimeMillis())
  if (permit._tag === "Reject") {
    db.counters.rejected++
    return Promise.reject(new CircuitOpenError({ database: db.name, operation, retryAfterMs: permit.retryAfterMs }))
  }
  const start = clock.unsafeCurrentTimeNanos()
  const middleware = env.middleware
  let promise: PromiseLike<A>
  try {
    promise = middleware.length === 0 ? run(input) : chain(middleware, db.name, operation, () => run(input))
    // A batch operation may return a plain value; it still settles like a query.
    if (typeof promise?.then !== "function") promise = Promise.resolve(promise)
  } catch (error) {
    promise = Promise.reject(error)
  }
  const timeout = env.options.operationTimeout
  if (timeout !== undefined) promise = withTimeout(promise, env, db.name, operation, timeout)
  // `then` straight on Prisma's promise: wrapping it in Promise.resolve first costs an extra thenable job per query.
  return (promise.then(
    (value) => {
      settle(db, env, start, false, undefined)
      return value
    },
    (error) => {
      settle(db, env, start, true, error)
      throw error
    }
  ) as Promise<A>)
}

const settle = (db: DatabaseState, env: Env, start: bigint, failed: boolean, error: unknown) => {
  const counters = db.counters
  counters.total++
  counters.elapsedNs += Number(env.clock.unsafeCurrentTimeNanos() - start)
  const state = db.breaker.cell.current
  if (!failed) {
    // Nothing to record on a closed circuit with no failures counted: the common case costs no clock read.
    if (state._tag !== "Closed" || state.failures > 0) {
      CircuitBreaker.unsafeRecord(db.breaker, "Success", env.clock.unsafeCurrentTimeMillis())
    }
    return
  }
  const now = env.clock.unsafeCurrentTimeMillis()
  counters.failed++
  const unhealthy = isUnhealthy(error)
  if (unhealthy) counters.lastError = errorSummary(error)
  if (CircuitBreaker.unsafeRecord(db.breaker, unhealthy ? "Unhealthy" : "Success", now)) env.onFoundDown(db, error)
}

const chain = <A>(
  middleware: ReadonlyArray<MiddlewareFn>,
  database: string,
  operation: string,
  run: () => PromiseLike<A>
): Promise<A> => {
  let called = -1
  const dispatch = (i: number): Promise<unknown> => {
    if (i <= called) return Promise.reject(new Error(`Middleware called next() more than once for ${operation}.`))
    called = i
    if (i === middleware.length) return Promise.resolve(run())
    try {
      return Promise.resolve(middleware[i]!(database, operation, () => dispatch(i + 1)))
    } catch (error) {
      return Promise.reject(error)
    }
  }
  return dispatch(0) as Promise<A>
}

const withTimeout = <A>(
  promise: PromiseLike<A>,
  env: Env,
  database: string,
  operation: string,
  timeoutMs: number
): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    // The timer is an Effect sleep on the instance's clock, so TestClock drives it in tests.
    const timer = Runtime.runFork(env.runtime)(Effect.sleep(timeoutMs))
    timer.addObserver((exit) => {
      if (Exit.isSuccess(exit)) reject(new OperationTimeoutError({ database, operation, timeoutMs }))
    })
    const stop = () => Runtime.runFork(env.runtime)(Fiber.interrupt(timer))
    promise.then(
      (value) => {
        stop()
        resolve(value)
      },
      (error) => {
        stop()
        reject(error)
      }
    )
  })

export const snapshot = (db: DatabaseState): DBStats => {
  const c = db.counters
  return {
    connected: db.status === "up",
    registeredAt: new Date(c.registeredAt),
    lastError: c.lastError,
    lastConnectedAt: c.lastConnectedAt === null ? null : new Date(c.lastConnectedAt),
    totalQueries: c.total,
    failedQueries: c.failed,
    rejectedQueries: c.rejected,
    avgResponseTimeMs: c.total === 0 ? 0 : c.elapsedNs / c.total / 1e6,
    circuitState: CircuitBreaker.stateName(db.breaker.cell.current)
  }
}
