/**
 * The per-query path every operation takes: breaker check, middleware, timing and counting. It is synchronous
 * bookkeeping around Prisma's promise, with no Effect run per query: measured here, `Effect.runPromise` costs
 * 12–16 µs against a 83 µs SQLite findUnique, so the state this path touches lives in plain cells (the counters,
 * the breaker's MutableRef, the middleware list) beside the lifecycle's Refs. An Effect runs only when a circuit
 * opens or an operation timeout is set.
 */
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as MutableRef from "effect/MutableRef"
import * as Runtime from "effect/Runtime"
import * as CircuitBreaker from "../CircuitBreaker.js"
import type { MiddlewareFn } from "../Client.js"
import { CircuitOpenError, ClosedError, OperationTimeoutError } from "../Errors.js"
import type { ResolvedOptions } from "../Options.js"
import { errorSummary } from "../Redact.js"
import { connectionLost, isUnhealthy, neverSent, outcomeUnknown } from "./classify.js"
import type { Labels, Ongoing, PoolFigures, Telemetry } from "./telemetry.js"

/** What every database of one instance shares. */
export interface Env {
  readonly options: ResolvedOptions
  readonly clock: Clock.Clock
  /** For the rare forks of the hot path (a circuit opening, an operation timer). */
  readonly runtime: Runtime.Runtime<never>
  /** Replaced (never mutated) by `use()`, so a running chain keeps the list it started with. */
  readonly middleware: MutableRef.MutableRef<ReadonlyArray<MiddlewareFn>>
  /** Sees every operation that reaches a database, run or refused (flexidb/testing records them). */
  readonly observe: ((database: string, operation: string) => void) | undefined
  /** Spans and metrics: undefined unless a provider was registered when the instance was built. */
  readonly telemetry: Telemetry | undefined
  /** The Effect API: health checks also in `Effect.withSpan` and Effect `Metric` gauges (see effectTelemetry.ts). */
  readonly effectTelemetry: boolean
}

/** Counters the hot path writes; `stats()` reads them. */
export interface Counters {
  readonly registeredAt: number
  lastError: string | null
  total: number
  failed: number
  rejected: number
  /** Operations started and not yet settled (least-busy balancing reads it). */
  inFlight: number
  /** Sum of response times in nanoseconds, as a float: exact well past any process lifetime. */
  elapsedNs: number
}

/** The part of a database the hot path needs. */
export interface Target {
  readonly name: string
  readonly env: Env
  readonly breaker: CircuitBreaker.CircuitBreaker
  readonly counters: Counters
  /** The database was found down by its circuit opening: runs the lifecycle's markDown (a fork). */
  readonly foundDown: (error: unknown) => void
  /** Set when the database is released: a client kept from `get()` sends nothing more (Prisma would reconnect). */
  readonly closed: MutableRef.MutableRef<boolean>
  /** The member's attributes in spans and metrics. */
  readonly labels: Labels
  /** Reads the member's connection pool, for the pool metrics (when there are metrics and a pool to read). */
  readonly pool: (() => PoolFigures | undefined) | undefined
}

/** One operation through `target`: breaker, middleware, optional timeout, timing and counting. */
export const runOperation = <I, A>(
  target: Target,
  operation: string,
  run: (input: I) => PromiseLike<A>,
  input: I,
  /** A read outside any transaction: run again when the connection it used is lost under it (`readRuns`). */
  retryable = false
): Promise<A> => {
  const env = target.env
  if (env.observe !== undefined) env.observe(target.name, operation)
  if (target.closed.current) return Promise.reject(new ClosedError({ operation, database: target.name }))
  const clock = env.clock
  // The ticket notes the circuit as it was at admission: the outcome counts only if it has not moved since.
  const ticket = CircuitBreaker.unsafeAdmit(target.breaker, clock)
  if (ticket._tag === "Reject") {
    target.counters.rejected++
    if (env.telemetry !== undefined) env.telemetry.rejected(target.labels, operation)
    return Promise.reject(new CircuitOpenError({ database: target.name, operation, retryAfterMs: ticket.retryAfterMs }))
  }
  const start = clock.unsafeCurrentTimeNanos()
  target.counters.inFlight++
  const middleware = env.middleware.current
  const ongoing = env.telemetry === undefined ? undefined : env.telemetry.start(target.labels, operation, input)
  let promise: PromiseLike<A>
  try {
    // Called straight when there is no telemetry: every frame under a query costs Prisma's stack capture time.
    promise = ongoing !== undefined
      ? ongoing.run(() => (middleware.length === 0 ? run(input) : chain(middleware, target.name, operation, () => run(input))))
      : middleware.length === 0
      ? run(input)
      : chain(middleware, target.name, operation, () => run(input))
    // A batch operation may return a plain value; it still settles like a query.
    if (typeof promise?.then !== "function") promise = Promise.resolve(promise)
  } catch (error) {
    promise = Promise.reject(error)
  }
  const timeout = env.options.operationTimeout
  if (timeout !== undefined) promise = withTimeout(promise, env, target.name, operation, timeout)
  let runs = 1
  const succeeded = (value: A) => {
    settle(target, start, ticket, false, undefined, ongoing)
    return value
  }
  const failed = (error: unknown): PromiseLike<A> => {
    // A read whose connection was lost under it runs again, within what is left of its timeout; the breaker and the
    // counters see only the final outcome. Middleware sees each run as a call of its own.
    if (retryable && runsAgain(runs, error, target, ticket)) {
      const left = timeout === undefined ? undefined : timeout - Number(clock.unsafeCurrentTimeNanos() - start) / 1e6
      if (left === undefined || left > 0) {
        runs++
        const call = () => (middleware.length === 0 ? run(input) : chain(middleware, target.name, operation, () => run(input)))
        return poolNoticed()
          .then(() => {
            if (!mayRetry(target, ticket)) throw error
            const again = Promise.resolve(ongoing !== undefined ? ongoing.run(call) : call())
            return left === undefined ? again : withTimeout(again, env, target.name, operation, left, timeout)
          })
          .then(succeeded, failed)
      }
    }
    settle(target, start, ticket, true, error, ongoing)
    throw marked(error)
  }
  // `then` straight on Prisma's promise: wrapping it in Promise.resolve first costs an extra thenable job per query.
  return promise.then(succeeded, failed) as Promise<A>
}

/**
 * A read inside a `batch()` operation: run again when the connection it used is lost under it. The operation
 * around it is what the breaker and the counters see; an operation is the app's function, never run twice, but the
 * reads it sends are safe to send again.
 */
export const retryRead = <A>(target: Target, run: () => PromiseLike<A>): PromiseLike<A> => {
  const ticket = CircuitBreaker.ticket(target.breaker)
  let runs = 1
  const failed = (error: unknown): PromiseLike<A> => {
    if (!runsAgain(runs, error, target, ticket)) throw error
    runs++
    return poolNoticed().then(() => {
      if (!mayRetry(target, ticket)) throw error
      return run().then(undefined, failed)
    })
  }
  // `then` straight on Prisma's promise, as in runOperation: no extra thenable job per query.
  return run().then(undefined, failed)
}

/*
 * The read re-run policy, one for every path a read takes: `get()`'s queries (runOperation), the reads inside a
 * `batch()` operation or a `Database.query` function (retryRead), and a pair's replica failover (failsOver).
 *  - Same member: a read outside any transaction whose connection was lost under it is sent again, at most
 *    `readRuns` times in all, after the pool has had a turn to notice its dead connections, and only while the
 *    database is open and its circuit has not moved since the read was admitted.
 *  - Another member: a read on a replica that turned out unreachable (or whose circuit is open) takes the replica
 *    out of rotation and runs once more on another member.
 * Never a write, never a query inside a transaction, never the app's own function (a batch operation).
 */

/**
 * How many times at most a read lost with its connection is sent. The pool learns that its idle connections died one
 * socket at a time, as each close reaches it, and may hand the retry another connection the same fault killed: on a
 * CPU-starved machine, one read in about half of the runs of 30 drops failed with a single retry. A server that is
 * down refuses the next connection, and a refusal is never run again, so this cannot loop on an outage.
 */
export const readRuns = 3

/**
 * Not a delay: the end of this turn of the event loop, after its I/O callbacks, by which the pool has usually let go
 * of the other connections the same fault closed (not always: a socket's close may reach it a turn later, hence
 * `readRuns`). Whatever happened meanwhile is checked again after it.
 */
const poolNoticed = () => new Promise<void>((resolve) => setImmediate(resolve))

/** Not released, and the circuit has not moved since the operation was admitted (an open circuit sends nothing). */
const mayRetry = (target: Target, ticket: CircuitBreaker.Ticket) =>
  !target.closed.current && target.breaker.generation.current === ticket.generation

/** A read sent `runs` times so far, which failed with `error`, is sent again on the same member. */
const runsAgain = (runs: number, error: unknown, target: Target, ticket: CircuitBreaker.Ticket) =>
  runs < readRuns && connectionLost(error) && mayRetry(target, ticket)

/** A read that failed on a replica with `error` runs once more on another member: the replica is unreachable. */
export const failsOver = (error: unknown) => error instanceof CircuitOpenError || isUnhealthy(error)

/**
 * The error with `outcomeUnknown` said: true when the operation may have taken effect (a connection lost under it,
 * a timeout), false when it provably did not. flexidb's own errors say it themselves.
 */
const marked = (error: unknown): unknown => {
  if (typeof error === "object" && error !== null && typeof (error as { outcomeUnknown?: unknown }).outcomeUnknown !== "boolean") {
    try {
      // Not enumerable: the error's JSON and logged shape stay Prisma's.
      Object.defineProperty(error, "outcomeUnknown", { value: outcomeUnknown(error), configurable: true, writable: true })
    } catch {
      // a frozen error keeps its shape
    }
  }
  return error
}

const settle = (
  target: Target,
  start: bigint,
  ticket: CircuitBreaker.Ticket,
  failed: boolean,
  error: unknown,
  ongoing: Ongoing | undefined
) => {
  const { clock } = target.env
  const counters = target.counters
  counters.inFlight--
  counters.total++
  const elapsed = Number(clock.unsafeCurrentTimeNanos() - start)
  counters.elapsedNs += elapsed
  if (ongoing !== undefined) ongoing.end(elapsed, failed, error)
  const breaker = target.breaker
  const state = breaker.cell.current
  if (!failed) {
    // Nothing to record on a closed circuit with no failures counted (unless the strategy samples every call): the
    // common case costs no clock read.
    if (state._tag !== "Closed" || state.failures > 0 || breaker.samplesSuccesses) {
      CircuitBreaker.unsafeRecord(breaker, ticket, "Success", clock.unsafeCurrentTimeMillis())
    }
    return
  }
  counters.failed++
  const unhealthy = isUnhealthy(error)
  if (unhealthy) counters.lastError = errorSummary(error)
  // Refused by Prisma before anything was sent: it says nothing about the database, either way.
  else if (neverSent(error)) return
  const outcome = !unhealthy ? "Success" : connectionLost(error) ? "Lost" : "Unhealthy"
  if (CircuitBreaker.unsafeRecord(breaker, ticket, outcome, clock.unsafeCurrentTimeMillis())) target.foundDown(error)
}

/** The onion: the first middleware is outermost; `next()` may run once per middleware. */
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
  timeoutMs: number,
  /** The timeout the app set, for the error (a retry waits only what is left of it). */
  reportedMs = timeoutMs
): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    // The timer is an Effect sleep on the instance's clock, so TestClock drives it in tests.
    const fork = Runtime.runFork(env.runtime)
    const timer = fork(Effect.sleep(timeoutMs))
    timer.addObserver((exit) => {
      if (Exit.isSuccess(exit)) reject(new OperationTimeoutError({ database, operation, timeoutMs: reportedMs }))
    })
    const stop = () => fork(Fiber.interrupt(timer))
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

/** A new set of counters, started now. */
export const makeCounters = (clock: Clock.Clock): Counters => ({
  registeredAt: clock.unsafeCurrentTimeMillis(),
  lastError: null,
  total: 0,
  failed: 0,
  rejected: 0,
  inFlight: 0,
  elapsedNs: 0
})

/** Middleware cell for a new instance. */
export const makeMiddleware = () => MutableRef.make<ReadonlyArray<MiddlewareFn>>([])
