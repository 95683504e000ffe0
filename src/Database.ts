/**
 * One database as an Effect service: `make` connects its Prisma client (retried on a Schedule, proven with
 * `SELECT 1`) in the current Scope, watches its health in fibers of that scope, and disconnects it when the scope
 * closes. `layer` turns that into a Layer so Effect apps compose databases like any other service.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Runtime } from "effect"
import type { Scope } from "effect"
import type { LazyArg } from "effect/Function"
import * as CircuitBreaker from "./CircuitBreaker.js"
import type { DBStats, PrismaClientLike, ReadWriteClient, Role } from "./Client.js"
import type { ConnectionError, InvalidArgumentError } from "./Errors.js"
import { CircuitOpenError, OperationTimeoutError, QueryError } from "./Errors.js"
import type { Env } from "./internal/database.js"
import { clientFor, makeDatabase, runOperation, snapshot, validateName } from "./internal/database.js"
import { check, connectWithRetry, installReconnect, markDown, markUp, pollHealth, release } from "./internal/lifecycle.js"
import type { FlexiDBOptions } from "./Options.js"
import { resolveOptions } from "./Options.js"

/**
 * A connected database.
 *
 * @since 0.1.0
 */
export interface Database<C extends PrismaClientLike = PrismaClientLike> {
  readonly name: string
  /** The client (the write client of a pair): every query through it is counted and passes the breaker. */
  readonly client: C
  /** The client for a role: `'read'` picks the next read client of a pair. */
  readonly clientFor: (role: Role) => C
  /**
   * Runs `f` with the client as one operation. Fails with CircuitOpenError (not run), OperationTimeoutError, or
   * QueryError carrying Prisma's error.
   */
  readonly query: <A>(
    f: (client: C) => PromiseLike<A>,
    role?: Role
  ) => Effect.Effect<A, QueryError | CircuitOpenError | OperationTimeoutError>
  /** `SELECT 1` within the health timeout; updates the status and fires hooks on a change. Never fails. */
  readonly health: Effect.Effect<boolean>
  readonly stats: Effect.Effect<DBStats>
  readonly circuit: Effect.Effect<CircuitBreaker.State>
}

/**
 * Options for one database: those of `createFlexiDB` except process-wide ones (graceful shutdown is the Effect
 * runtime's job: `NodeRuntime.runMain` interrupts on SIGINT and the scope closes).
 *
 * @since 0.1.0
 */
export type DatabaseOptions = Omit<FlexiDBOptions, "gracefulShutdown">

const passThrough = (database: string) => (error: unknown) =>
  error instanceof CircuitOpenError || error instanceof OperationTimeoutError
    ? error
    : new QueryError({ database, cause: error })

/**
 * Connects `client` in the current scope and keeps it healthy until the scope closes. Fails with ConnectionError
 * when every attempt of the retry schedule failed, or InvalidArgumentError for invalid options.
 *
 * @since 0.1.0
 */
export const make = <C extends PrismaClientLike>(
  name: string,
  client: C | ReadWriteClient<C>,
  options?: DatabaseOptions
): Effect.Effect<Database<C>, ConnectionError | InvalidArgumentError, Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = yield* Effect.try({
      try: () => resolveOptions({ ...options, gracefulShutdown: false }),
      catch: (e) => e as InvalidArgumentError
    })
    const runtime = yield* Effect.runtime<never>()
    const env: Env = {
      options: resolved,
      clock: yield* Effect.clock,
      runtime,
      middleware: [],
      onFoundDown: (db, error) => {
        Runtime.runFork(runtime)(markDown(db, env, error))
      }
    }
    const db = yield* Effect.try({
      try: () => makeDatabase(validateName(name), client, env),
      catch: (e) => e as InvalidArgumentError
    })
    const scope = yield* Effect.scope
    yield* Effect.addFinalizer(() => release(db, env))
    yield* installReconnect(db, env, scope)
    yield* connectWithRetry(db, env)
    yield* markUp(db, env)
    if (resolved.healthCheck.enabled) yield* Effect.forkScoped(pollHealth(db, env))
    return {
      name,
      client: db.api.write as C,
      clientFor: (role) => clientFor(db, role) as C,
      query: (f, role) =>
        Effect.tryPromise({
          try: () => runOperation(db, env, "query", f, clientFor(db, role, "bare") as C),
          catch: passThrough(name)
        }),
      health: check(db, env),
      stats: Effect.sync(() => snapshot(db)),
      circuit: CircuitBreaker.get(db.breaker)
    } satisfies Database<C>
  })

/**
 * A Layer for one database. `client` is called when the layer is built, so each build gets its own client.
 *
 * @example
 * class UserDb extends Context.Tag("UserDb")<UserDb, Database.Database<UserClient>>() {}
 * const UserDbLive = Database.layer(UserDb, "user", () => new UserClient({ adapter }))
 *
 * @since 0.1.0
 */
export const layer = <I, C extends PrismaClientLike>(
  tag: Context.Tag<I, Database<C>>,
  name: string,
  client: LazyArg<C | ReadWriteClient<C>>,
  options?: DatabaseOptions
): Layer.Layer<I, ConnectionError | InvalidArgumentError> =>
  Layer.scoped(tag, Effect.suspend(() => make(name, client(), options)))
