/**
 * The one implementation of a database: its clients, breaker and counters (the hot path's, see hotPath.ts), and
 * its lifecycle as Effects — connect on a Schedule, status and hooks, health polling and reconnect fibers in the
 * Scope it is made in, release when that Scope closes. `Database.make`, the registry (and through it
 * `createFlexiDB` and `flexidb/testing`) are all built from `make` below; they differ only in whether they wait
 * for the first connection.
 */
import { Cause, Clock, Duration, Effect, Exit, FiberHandle, MutableRef, Ref, Runtime, Schedule } from "effect"
import type { Scope } from "effect"
import * as CircuitBreaker from "../CircuitBreaker.js"
import type { DBStats, PrismaClientLike, Role } from "../Client.js"
import { ConnectionError, InvalidArgumentError, OperationTimeoutError, ReconnectFailedError } from "../Errors.js"
import type { ResolvedOptions } from "../Options.js"
import { retrySchedule } from "../Options.js"
import { errorSummary } from "../Redact.js"
import type { Counters, Env, Target } from "./hotPath.js"
import { makeCounters, makeMiddleware, runOperation } from "./hotPath.js"

export type Status = "pending" | "up" | "down"

/** A database as the registry and the public modules see it. */
export interface Db extends Target {
  /** Each distinct client once: connect, probe and disconnect act on these. */
  readonly clients: ReadonlyArray<PrismaClientLike>
  /** What `get()` hands out for a role: an intercepted client (or the bare one with `intercept: false`). */
  readonly clientFor: (role: Role | undefined) => PrismaClientLike
  /** The bare client for a role, for code that counts the whole operation itself (batch, Database.query). */
  readonly bareFor: (role: Role | undefined) => PrismaClientLike
  /** True from the moment release starts: nothing new is sent to a closing client. */
  readonly isClosed: () => boolean
  /** The first connection, retried on the schedule; the database is up when it succeeds. */
  readonly connect: Effect.Effect<void, ConnectionError>
  /** Records that the database did not answer and starts reconnecting. */
  readonly markDown: (error: unknown) => Effect.Effect<void>
  /** `SELECT 1` on every client now, within the health timeout; updates the status. Never fails. */
  readonly check: Effect.Effect<boolean>
  /** Health polling for as long as it runs (nothing when polling is off); fork it into the database's scope. */
  readonly watch: Effect.Effect<void>
  readonly stats: Effect.Effect<DBStats>
}

/** Runs `f`; an InvalidArgumentError it throws is the failure, anything else is a defect. */
export const validate = <A>(f: () => A): Effect.Effect<A, InvalidArgumentError> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(f())
    } catch (error) {
      return error instanceof InvalidArgumentError ? Effect.fail(error) : Effect.die(error)
    }
  })

/** The environment of one instance, captured from the running fiber (so TestClock reaches the hot path). */
export const makeEnv = (
  options: ResolvedOptions,
  observe?: (database: string, operation: string) => void
): Effect.Effect<Env> =>
  Effect.map(Effect.all([Effect.runtime<never>(), Effect.clock]), ([runtime, clock]) => ({
    options,
    clock,
    runtime,
    middleware: makeMiddleware(),
    observe
  }))

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

/** Calls an app hook; a hook that throws or rejects must never break flexidb. */
export const callHook = <A extends ReadonlyArray<unknown>>(hook: ((...args: A) => unknown) | undefined, ...args: A) =>
  Effect.sync(() => {
    if (hook === undefined) return
    try {
      const result = hook(...args)
      if (typeof (result as PromiseLike<unknown> | undefined)?.then === "function") {
        ;(result as PromiseLike<unknown>).then(undefined, () => {})
      }
    } catch {
      // ignored on purpose: see above
    }
  })

const intercept = (client: PrismaClientLike, target: Target): PrismaClientLike =>
  client.$extends({
    name: "flexidb",
    query: {
      $allOperations: ({ args, model, operation, query }: {
        model?: string
        operation: string
        args: unknown
        query: (args: unknown) => PromiseLike<unknown>
      }) => runOperation(target, model === undefined ? operation : `${model}.${operation}`, query, args)
    }
  })

/** A picker over a write client and its reads: `'read'` takes the next read client in turn. */
const picker = (write: PrismaClientLike, reads: ReadonlyArray<PrismaClientLike>, turn: { next: number }) =>
(role: Role | undefined): PrismaClientLike => {
  if (role !== "read") return write
  if (reads.length === 1) return reads[0]!
  const client = reads[turn.next % reads.length]!
  turn.next = (turn.next + 1) % reads.length
  return client
}

/**
 * Makes a database in the current scope: validates its name and clients (InvalidArgumentError, nothing made),
 * and disconnects its clients when the scope closes. It does not connect: run `connect`, then fork `watch`.
 */
export const make = (name: string, entry: unknown, env: Env): Effect.Effect<Db, InvalidArgumentError, Scope.Scope> =>
  Effect.gen(function*() {
    const { reads, write } = yield* validate(() => splitEntry(validateName(name), entry))
    const { options } = env
    const clients = [...new Set([write, ...reads])]
    const status = yield* Ref.make<Status>("pending")
    const lastConnectedAt = yield* Ref.make<number | null>(null)
    const closed = MutableRef.make(false)
    const counters: Counters = makeCounters(env.clock)
    const breaker = CircuitBreaker.make(options.circuitBreaker)
    const healthTimeout = Duration.millis(options.healthCheck.timeout)

    const timeoutError = (operation: string) => () =>
      new OperationTimeoutError({ database: name, operation, timeoutMs: options.healthCheck.timeout })

    /** `SELECT 1` on one client, within the health timeout. */
    const probe = (client: PrismaClientLike): Effect.Effect<void, unknown> =>
      Effect.tryPromise({ try: () => client.$queryRawUnsafe("SELECT 1"), catch: (e) => e }).pipe(
        Effect.timeoutFail({ duration: healthTimeout, onTimeout: timeoutError("SELECT 1") }),
        Effect.asVoid
      )

    /**
     * One connection attempt on every client. Prisma with a driver adapter resolves `$connect` even when the
     * server is down, so the probe is what proves the connection.
     */
    const connectOnce: Effect.Effect<void, unknown> = Effect.forEach(
      clients,
      (client) =>
        Effect.tryPromise({ try: () => client.$connect(), catch: (e) => e }).pipe(
          Effect.timeoutFail({ duration: healthTimeout, onTimeout: timeoutError("$connect") }),
          Effect.zipRight(probe(client))
        ),
      { concurrency: "unbounded", discard: true }
    )

    // Finalizers run in reverse: added before the reconnect handle and the health fiber, this runs after they end.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        closed.current = true
        yield* Ref.set(status, "down")
        yield* Effect.forEach(
          clients,
          (client) =>
            Effect.tryPromise(() => client.$disconnect()).pipe(
              Effect.timeout(Duration.millis(options.disconnectTimeout)),
              Effect.ignore
            ),
          { concurrency: "unbounded", discard: true }
        )
        yield* callHook(options.hooks.onDisconnect, name)
      })
    )
    const reconnecting = yield* FiberHandle.make<void, never>()

    /** The database answered: if it was not up, it is connected now — record when, close its circuit, tell the app. */
    const markUp = Effect.gen(function*() {
      if (closed.current) return
      if ((yield* Ref.getAndSet(status, "up")) === "up") return
      yield* Ref.set(lastConnectedAt, yield* Clock.currentTimeMillis)
      yield* CircuitBreaker.reset(breaker)
      yield* callHook(options.hooks.onConnect, name)
      yield* callHook(options.hooks.onStatusChange, name, true)
    })

    /** Tries `maxAttempts` times, `interval` apart; stops at the first success. */
    const reconnect = Effect.gen(function*() {
      const { interval, maxAttempts } = options.reconnect
      for (let attempt = 1; attempt <= maxAttempts; attempt++) {
        yield* Effect.sleep(Duration.millis(interval))
        if ((yield* Ref.get(status)) === "up") return
        const exit = yield* Effect.exit(connectOnce)
        if (Exit.isSuccess(exit)) return yield* markUp
        counters.lastError = errorSummary(Cause.squash(exit.cause))
      }
      yield* callHook(options.hooks.onError, name, new ReconnectFailedError({ database: name, attempts: maxAttempts }))
    })

    const markDown = (error: unknown): Effect.Effect<void> =>
      Effect.gen(function*() {
        if (closed.current) return
        counters.lastError = errorSummary(error)
        if ((yield* Ref.getAndSet(status, "down")) !== "down") {
          const reported = error instanceof ConnectionError
            ? error
            : new Error(`Database '${name}': ${errorSummary(error)}`, { cause: error })
          yield* callHook(options.hooks.onError, name, reported)
          yield* callHook(options.hooks.onStatusChange, name, false)
        }
        // A no-op while a reconnect fiber runs.
        if (options.reconnect.enabled) yield* FiberHandle.run(reconnecting, reconnect, { onlyIfMissing: true })
      })

    const connect = Effect.suspend(() => {
      let attempts = 0
      const schedule = retrySchedule(options.retry).pipe(
        // The schedule also emits on the step that ends it: only real retries reach the hook.
        Schedule.tapOutput((retry) =>
          retry <= options.retry.attempts ? callHook(options.hooks.onRetry, name, retry) : Effect.void
        )
      )
      return Effect.suspend(() => {
        attempts++
        return connectOnce
      }).pipe(
        Effect.retry(schedule),
        Effect.mapError((cause) => new ConnectionError({ database: name, attempts, reason: errorSummary(cause), cause })),
        Effect.zipRight(markUp)
      )
    })

    // Every client of a pair must answer, as connecting requires.
    const check = Effect.forEach(clients, probe, { concurrency: "unbounded", discard: true }).pipe(
      Effect.matchEffect({
        onSuccess: () => Effect.as(markUp, true),
        onFailure: (error) => Effect.as(markDown(error), false)
      })
    )

    const forkMarkDown = Runtime.runFork(env.runtime)
    const target: Target = { name, env, breaker, counters, foundDown: (error) => forkMarkDown(markDown(error)) }
    const intercepted = options.intercept ? new Map(clients.map((c) => [c, intercept(c, target)])) : undefined
    const api = (c: PrismaClientLike) => intercepted?.get(c) ?? c
    const turn = { next: 0 }

    return {
      ...target,
      clients,
      clientFor: picker(api(write), reads.map(api), turn),
      bareFor: picker(write, reads, turn),
      isClosed: () => closed.current,
      connect,
      markDown,
      check,
      watch: options.healthCheck.enabled
        ? check.pipe(Effect.delay(Duration.millis(options.healthCheck.interval)), Effect.forever)
        : Effect.void,
      stats: Effect.gen(function*() {
        const connectedAt = yield* Ref.get(lastConnectedAt)
        return {
          connected: (yield* Ref.get(status)) === "up",
          registeredAt: new Date(counters.registeredAt),
          lastError: counters.lastError,
          lastConnectedAt: connectedAt === null ? null : new Date(connectedAt),
          totalQueries: counters.total,
          failedQueries: counters.failed,
          rejectedQueries: counters.rejected,
          avgResponseTimeMs: counters.total === 0 ? 0 : counters.elapsedNs / counters.total / 1e6,
          circuitState: CircuitBreaker.stateName(breaker.cell.current)
        } satisfies DBStats
      })
    }
  })
