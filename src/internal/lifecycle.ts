/**
 * Lifecycle work for one database, as Effects: connect with retry, status changes and their hooks, the health
 * and reconnect fibers, and release. Fibers are forked into the database's own scope, so closing that scope
 * (unregister, disconnect) ends them.
 */
import { Cause, Clock, Deferred, Duration, Effect, Exit, FiberHandle, Schedule, Scope } from "effect"
import * as CircuitBreaker from "../CircuitBreaker.js"
import type { PrismaClientLike } from "../Client.js"
import { ConnectionError, OperationTimeoutError } from "../Errors.js"
import { retrySchedule } from "../Options.js"
import type { DatabaseState, Env } from "./database.js"
import { errorSummary } from "./redact.js"

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

/** An Error safe to hand to hooks: the summary has no credentials, the original stays as `cause`. */
const hookError = (db: DatabaseState, error: unknown): Error =>
  error instanceof ConnectionError ? error : new Error(`Database '${db.name}': ${errorSummary(error)}`, { cause: error })

/** `SELECT 1` on one client, bounded by `timeout` milliseconds. */
export const probe = (db: DatabaseState, client: PrismaClientLike, timeout: number): Effect.Effect<void, unknown> =>
  Effect.tryPromise({ try: () => client.$queryRawUnsafe("SELECT 1"), catch: (e) => e }).pipe(
    Effect.timeoutFail({
      duration: Duration.millis(timeout),
      onTimeout: () => new OperationTimeoutError({ database: db.name, operation: "SELECT 1", timeoutMs: timeout })
    }),
    Effect.asVoid
  )

/**
 * One connection attempt on every client. Prisma with a driver adapter resolves `$connect` even when the server
 * is down, so the probe is what proves the connection.
 */
const connectOnce = (db: DatabaseState, env: Env): Effect.Effect<void, unknown> =>
  Effect.forEach(
    db.clients,
    (client) =>
      Effect.tryPromise({ try: () => client.$connect(), catch: (e) => e }).pipe(
        Effect.timeoutFail({
          duration: Duration.millis(env.options.healthCheck.timeout),
          onTimeout: () =>
            new OperationTimeoutError({
              database: db.name,
              operation: "$connect",
              timeoutMs: env.options.healthCheck.timeout
            })
        }),
        Effect.zipRight(probe(db, client, env.options.healthCheck.timeout))
      ),
    { concurrency: "unbounded", discard: true }
  )

/** Connects with the retry schedule; fails with ConnectionError once every attempt failed. */
export const connectWithRetry = (db: DatabaseState, env: Env): Effect.Effect<void, ConnectionError> =>
  Effect.suspend(() => {
    let attempts = 0
    const schedule = retrySchedule(env.options.retry).pipe(
      // The schedule also emits on the step that ends it: only real retries reach the hook.
      Schedule.tapOutput((retry) =>
        retry <= env.options.retry.attempts ? callHook(env.options.hooks.onRetry, db.name, retry) : Effect.void
      )
    )
    return Effect.suspend(() => {
      attempts++
      return connectOnce(db, env)
    }).pipe(
      Effect.retry(schedule),
      Effect.mapError((cause) =>
        new ConnectionError({ database: db.name, attempts, reason: errorSummary(cause), cause })
      )
    )
  })

/**
 * The database answered. If it was not up (pending, or found down by a check or by its circuit opening), it is
 * connected now: record when, close its circuit, and tell the app.
 */
export const markUp = (db: DatabaseState, env: Env): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (db.closed || db.status === "up") return
    db.counters.lastConnectedAt = yield* Clock.currentTimeMillis
    yield* CircuitBreaker.reset(db.breaker)
    db.status = "up"
    yield* callHook(env.options.hooks.onConnect, db.name)
    yield* callHook(env.options.hooks.onStatusChange, db.name, true)
  })

/**
 * The database did not answer: record why, tell the app if that is news, and make sure a reconnect fiber runs
 * (starting one is a no-op while one is running).
 */
export const markDown = (db: DatabaseState, env: Env, error: unknown): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (db.closed) return
    db.counters.lastError = errorSummary(error)
    if (db.status !== "down") {
      db.status = "down"
      yield* callHook(env.options.hooks.onError, db.name, hookError(db, error))
      yield* callHook(env.options.hooks.onStatusChange, db.name, false)
    }
    if (env.options.reconnect.enabled) yield* db.reconnect
  })

/**
 * Checks one database now, updating its status: true when every client (the primary and each replica of a pair)
 * answered within the health timeout, as connecting requires.
 */
export const check = (db: DatabaseState, env: Env): Effect.Effect<boolean> =>
  Effect.forEach(db.clients, (client) => probe(db, client, env.options.healthCheck.timeout), {
    concurrency: "unbounded",
    discard: true
  }).pipe(
    Effect.matchEffect({
      onSuccess: () => Effect.as(markUp(db, env), true),
      onFailure: (error) => Effect.as(markDown(db, env, error), false)
    })
  )

/**
 * Gives the database its reconnect fiber slot in `scope`: afterwards `db.reconnect` starts a reconnect loop
 * unless one is running. The loop tries `maxAttempts` times, `interval` apart, and stops at the first success.
 */
export const installReconnect = (db: DatabaseState, env: Env, scope: Scope.Scope): Effect.Effect<void> =>
  Effect.gen(function*() {
    const handle = yield* Scope.extend(FiberHandle.make<void, never>(), scope)
    const loop = Effect.gen(function*() {
      const { interval, maxAttempts } = env.options.reconnect
      for (let attempt = 1; attempt <= maxAttempts; attempt++) {
        yield* Effect.sleep(Duration.millis(interval))
        if (db.status === "up") return
        const exit = yield* Effect.exit(connectOnce(db, env))
        if (Exit.isSuccess(exit)) return yield* markUp(db, env)
        db.counters.lastError = errorSummary(Cause.squash(exit.cause))
      }
      yield* callHook(
        env.options.hooks.onError,
        db.name,
        new Error(
          `Database '${db.name}': gave up reconnecting after ${maxAttempts} attempts; ` +
            `the next failed health check starts a new round.`
        )
      )
    })
    db.reconnect = FiberHandle.run(handle, loop, { onlyIfMissing: true }).pipe(Effect.asVoid)
  })

/** Checks the database every `healthCheck.interval` forever; each check catches its own failure. */
export const pollHealth = (db: DatabaseState, env: Env): Effect.Effect<never> =>
  check(db, env).pipe(Effect.delay(Duration.millis(env.options.healthCheck.interval)), Effect.forever)

/**
 * Runs a database for as long as `scope` is open: connect with retry, then (if enabled) poll its health.
 * `connected` completes with the outcome of the first connection. Everything it forks lives in `scope`.
 */
export const supervise = (
  db: DatabaseState,
  env: Env,
  scope: Scope.Scope,
  connected: Deferred.Deferred<boolean>
): Effect.Effect<void> =>
  Effect.gen(function*() {
    yield* installReconnect(db, env, scope)
    const first = yield* Effect.exit(connectWithRetry(db, env))
    if (Exit.isSuccess(first)) yield* markUp(db, env)
    else yield* markDown(db, env, Cause.squash(first.cause))
    yield* Deferred.succeed(connected, Exit.isSuccess(first))
    if (env.options.healthCheck.enabled) yield* pollHealth(db, env)
  })

/** Disconnects every client of a database, each bounded by the disconnect timeout, then fires onDisconnect. */
export const release = (db: DatabaseState, env: Env): Effect.Effect<void> =>
  Effect.gen(function*() {
    db.closed = true
    db.status = "down"
    yield* Effect.forEach(
      db.clients,
      (client) =>
        Effect.tryPromise(() => client.$disconnect()).pipe(
          Effect.timeout(Duration.millis(env.options.disconnectTimeout)),
          Effect.ignore
        ),
      { concurrency: "unbounded", discard: true }
    )
    yield* callHook(env.options.hooks.onDisconnect, db.name)
  })
