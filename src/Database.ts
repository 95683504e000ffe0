/**
 * One database as an Effect service: `make` connects its Prisma client (retried on a Schedule, proven with
 * `SELECT 1`) in the current Scope, watches its health in fibers of that scope, and disconnects it when the scope
 * closes. `layer` and `layerConfig` turn that into a Layer so Effect apps compose databases like any other service.
 * It is the same database the registry and `createFlexiDB` hold: one implementation, waited for here.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as ConfigError from "effect/ConfigError"
import type * as Context from "effect/Context"
import type * as Scope from "effect/Scope"
import type { LazyArg } from "effect/Function"
import * as CircuitBreaker from "./CircuitBreaker.js"
import type { DBStats, PrismaClientLike, ReadWriteClient, Role } from "./Client.js"
import type { ConnectionError } from "./Errors.js"
import {
  CircuitOpenError,
  InvalidArgumentError,
  OperationTimeoutError,
  QueryError,
  ReadOnlyError,
  ReplicaUnavailableError
} from "./Errors.js"
import { invalidRole, make as makeDatabase, makeEnv, validate } from "./internal/database.js"
import * as EffectTelemetry from "./internal/effectTelemetry.js"
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
   * Runs `f` with the client as one operation (`'read'`: a replica's, chosen now, read-only), counted and broken
   * as one call. The reads `f` sends run again when their connection is lost under them, as `get()`'s do; with
   * `'read'`, `f` runs once more on another member when its replica turns out unreachable, as a read through
   * `clientFor('read')` does. Fails with CircuitOpenError (not run), ReplicaUnavailableError (no healthy replica,
   * `fallback: 'error'`), OperationTimeoutError, ReadOnlyError (a write on a read client), InvalidArgumentError
   * (a role that is neither `'read'` nor `'write'`, or a `balance` function that failed), or QueryError carrying
   * Prisma's error.
   */
  readonly query: <A>(f: (client: C) => PromiseLike<A>, role?: Role) => Effect.Effect<A, QueryFailure>
  /** `SELECT 1` within the health timeout; updates the status and fires hooks on a change. Never fails. */
  readonly health: Effect.Effect<boolean>
  readonly stats: Effect.Effect<DBStats>
  readonly circuit: Effect.Effect<CircuitBreaker.State>
}

/**
 * Options for one database: those of `createFlexiDB` except process-wide ones (graceful shutdown is the Effect
 * runtime's job: `NodeRuntime.runMain` interrupts on SIGINT and the scope closes; metrics are Effect `Metric`s, or a
 * registered OpenTelemetry MeterProvider's, so there is no `prometheus` text endpoint here). Durations take milliseconds or
 * any `Duration.DurationInput` (`"5 seconds"`).
 *
 * @since 0.1.0
 */
export type DatabaseOptions = Omit<FlexiDBOptions, "gracefulShutdown" | "tenants" | "prometheus">

/**
 * How `Database.query` fails.
 *
 * @since 0.2.0
 */
export type QueryFailure =
  | QueryError
  | CircuitOpenError
  | OperationTimeoutError
  | ReplicaUnavailableError
  | ReadOnlyError
  | InvalidArgumentError

const asQueryError = (database: string) => (error: unknown): QueryFailure =>
  error instanceof CircuitOpenError || error instanceof OperationTimeoutError || error instanceof ReplicaUnavailableError ||
    error instanceof ReadOnlyError || error instanceof InvalidArgumentError
    ? error
    : new QueryError({ database, cause: error })

/**
 * Connects `client` in the current scope and keeps it healthy until the scope closes. Fails with ConnectionError
 * when every attempt of the retry schedule failed, or InvalidArgumentError for an invalid name, client or option.
 *
 * @since 0.1.0
 */
export const make = <C extends PrismaClientLike>(
  name: string,
  client: C | ReadWriteClient<C>,
  options?: DatabaseOptions
): Effect.Effect<Database<C>, ConnectionError | InvalidArgumentError, Scope.Scope> =>
  Effect.gen(function*() {
    if ((options as { prometheus?: unknown } | undefined)?.prometheus === true) {
      // It would build a MeterProvider that nothing reads or shuts down.
      return yield* Effect.fail(
        new InvalidArgumentError({
          path: "prometheus",
          reason: "Database.make has no metrics() endpoint: its metrics are Effect Metrics (Metric.snapshot), or those " +
            "of a registered OpenTelemetry MeterProvider; for Prometheus text use createFlexiDB(clients, { prometheus: true })"
        })
      )
    }
    const resolved = yield* validate(() => resolveOptions({ ...options, gracefulShutdown: false }))
    // With a global OpenTelemetry provider, the OpenTelemetry path records everything; without one, Effect's
    // tracer and Metric do (effectTelemetry.ts): one path, never both.
    const db = yield* makeDatabase(name, client, yield* makeEnv(resolved, undefined, true))
    const traced = db.env.effectTelemetry
    yield* db.connect
    yield* Effect.forkScoped(db.watch)
    return {
      name,
      client: db.clientFor("write") as C,
      clientFor: (role) => {
        if (role !== "read" && role !== "write") throw invalidRole(role)
        return db.clientFor(role) as C
      },
      query: <A>(f: (client: C) => PromiseLike<A>, role?: Role) =>
        Effect.suspend((): Effect.Effect<A, QueryFailure> => {
          if (role !== undefined && role !== "read" && role !== "write") return Effect.fail(invalidRole(role))
          const member = db.memberFor(role, "query")
          if (member instanceof ReplicaUnavailableError || member instanceof InvalidArgumentError) return Effect.fail(member)
          const run = Effect.tryPromise({
            try: () => db.run(member, "query", f as (client: PrismaClientLike) => PromiseLike<A>),
            catch: asQueryError(name)
          })
          return traced ? EffectTelemetry.operation(member.labels, "query", run) : run
        }),
      health: db.check,
      stats: db.stats,
      circuit: CircuitBreaker.get(db.writer.breaker)
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

/**
 * What `layerConfig` reads: the database's URL, kept `Redacted` so it never reaches a log, plus any options.
 *
 * @since 0.2.0
 */
export interface DatabaseConfig extends DatabaseOptions {
  readonly url: Redacted.Redacted
}

/**
 * A Layer for one database whose URL and options come from Effect `Config` (environment variables by default).
 * `client` builds the Prisma client from the URL (`Redacted.value(url)` where the adapter needs the string).
 * Fails with a ConfigError naming a missing or malformed variable, before any client is made.
 *
 * @example
 * const UserDbLive = Database.layerConfig(UserDb, "user", {
 *   url: Config.redacted("DATABASE_URL_USER"),
 *   operationTimeout: Config.succeed("5 seconds")
 * }, (url) => new UserClient({ adapter: new PrismaPg({ connectionString: Redacted.value(url) }) }))
 *
 * @since 0.2.0
 */
export const layerConfig = <I, C extends PrismaClientLike>(
  tag: Context.Tag<I, Database<C>>,
  name: string,
  config: Config.Config.Wrap<DatabaseConfig>,
  client: (url: Redacted.Redacted, config: DatabaseConfig) => C | ReadWriteClient<C>
): Layer.Layer<I, ConfigError.ConfigError | ConnectionError | InvalidArgumentError> =>
  Layer.scoped(
    tag,
    Effect.flatMap(Config.unwrap(config), (resolved) => {
      const { url, ...options } = resolved
      return make(name, client(url, resolved), options)
    })
  )
