/**
 * flexidb as an Effect service: a registry of databases that lives as long as its Layer's scope. Every database
 * connects in the background with retry; closing the scope disconnects them all and ends every fiber. Declare
 * your app's databases once with `Tag` and every `get` is typed by name.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type { LazyArg } from "effect/Function"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { ClientEntry, ClientOf, DBStats, MiddlewareFn, PrismaClientLike, Role, Settled, TenantStats } from "./Client.js"
import type {
  BatchError,
  ClosedError,
  DuplicateDatabaseError,
  InvalidArgumentError,
  TenantError,
  TenantLockedError,
  UnknownDatabaseError,
  UnknownGroupError
} from "./Errors.js"
import { makeScoped } from "./internal/service.js"
import type { FlexiDBOptions, MetricsHandler } from "./Options.js"

type Names<M> = keyof M & string
type Return<F> = F extends (...args: any) => infer R ? R : never
type Value<R> = R extends Effect.Effect<infer A, any, any> ? A : Awaited<R>

/**
 * Operations for the Effect `batch`: one function per database, given its client, returning an Effect or a
 * Promise (a Prisma query).
 *
 * @since 0.2.0
 */
export type BatchOperations<M> = {
  readonly [K in Names<M>]?: (client: ClientOf<M[K]>) => Effect.Effect<any, any, any> | PromiseLike<any>
}

/**
 * Each key's value: what its Effect succeeds with, or what its Promise resolves to.
 *
 * @since 0.2.0
 */
export type BatchResults<O> = { -readonly [K in keyof O]: Value<Return<O[K]>> }

/**
 * Each key's outcome.
 *
 * @since 0.2.0
 */
export type BatchSettledResults<O> = { -readonly [K in keyof O]: Settled<Value<Return<O[K]>>> }

/**
 * What the operations' Effects need from the context.
 *
 * @since 0.2.0
 */
export type BatchContext<O> = { [K in keyof O]-?: Return<O[K]> extends Effect.Effect<any, any, infer R> ? R : never }[keyof O]

/** Rejects keys that are not database names at compile time. */
type OnlyKnown<O, M> = O & { readonly [K in Exclude<keyof O & string, Names<M>>]: never }

/**
 * The registry service, typed by the map of its databases (`Record<string, ClientEntry>` when the names are only
 * known at run time) and by the tenants' client `T` (the `tenants` option). It is the whole of flexidb: the Promise
 * facade `createFlexiDB` and `flexidb/testing` run this service. Every error channel is a union of flexidb's
 * tagged errors.
 *
 * @since 0.1.0
 */
export interface Service<M extends Record<string, ClientEntry> = Record<string, ClientEntry>, T = PrismaClientLike> {
  /**
   * The client for `name` (the write client of a pair unless `role` is `'read'`). Fails with UnknownDatabaseError for
   * a name that is not registered, InvalidArgumentError for a role that is not `'read'` or `'write'`. Inside
   * `withSession`, the client's queries belong to the session.
   */
  readonly get: <K extends Names<M>>(
    name: K,
    role?: Role
  ) => Effect.Effect<ClientOf<M[K]>, UnknownDatabaseError | ClosedError | InvalidArgumentError>
  /** Registers a database; it connects in the background. */
  readonly register: (
    name: string,
    entry: ClientEntry
  ) => Effect.Effect<void, DuplicateDatabaseError | InvalidArgumentError | ClosedError>
  /** Removes a database: it stops being served, its fibers end and its clients disconnect. */
  readonly unregister: (name: Names<M>) => Effect.Effect<void, UnknownDatabaseError | ClosedError>
  /** Adds middleware; the returned effect's value removes it. */
  readonly use: (middleware: MiddlewareFn) => Effect.Effect<Effect.Effect<void>, InvalidArgumentError>
  /**
   * Runs one operation per database in parallel — an Effect or a Promise each — and succeeds with each value.
   * Every operation runs to completion; if any failed, fails with BatchError naming each failed database. An
   * operation that dies makes the batch die, with every other operation's failure beside it in the Cause (as a
   * defect: nothing of a dead batch is its typed error). Interrupting the batch interrupts the operations' Effects.
   */
  readonly batch: <O extends BatchOperations<M>>(
    operations: OnlyKnown<O, M>
  ) => Effect.Effect<
    BatchResults<O>,
    BatchError | UnknownDatabaseError | InvalidArgumentError | ClosedError,
    BatchContext<O>
  >
  /** Like batch, but succeeds with every database's outcome. */
  readonly batchSettled: <O extends BatchOperations<M>>(
    operations: OnlyKnown<O, M>
  ) => Effect.Effect<BatchSettledResults<O>, UnknownDatabaseError | InvalidArgumentError | ClosedError, BatchContext<O>>
  /**
   * With `members`: defines (or redefines) a group and succeeds with its databases' clients; UnknownDatabaseError for
   * a member that is not registered, changing nothing. Without: the clients of a defined group, or UnknownGroupError.
   */
  readonly group: {
    <G extends Names<M>>(
      name: string,
      members: ReadonlyArray<G>
    ): Effect.Effect<{ [K in G]: ClientOf<M[K]> }, UnknownDatabaseError | InvalidArgumentError | ClosedError>
    (name: string): Effect.Effect<Partial<{ [K in Names<M>]: ClientOf<M[K]> }>, UnknownGroupError>
  }
  /** `health` for a group's databases only; UnknownGroupError for a group that was never defined. */
  readonly healthGroup: (name: string) => Effect.Effect<Partial<Record<Names<M>, boolean>>, UnknownGroupError>
  /** `SELECT 1` on every database (or those named), each bounded by the health timeout. Never fails. */
  readonly health: (names?: ReadonlyArray<Names<M>>) => Effect.Effect<Record<Names<M>, boolean>>
  readonly stats: Effect.Effect<Record<Names<M>, DBStats>>
  readonly list: Effect.Effect<Array<Names<M>>>
  /** Waits until every database's first connection attempt (with its retries) has settled. */
  readonly ready: Effect.Effect<Record<Names<M>, boolean>>
  /**
   * flexidb's metrics in Prometheus' text format. Fails with InvalidArgumentError without the `prometheus: true`
   * option, ClosedError once the registry is closed.
   */
  readonly metrics: Effect.Effect<string, InvalidArgumentError | ClosedError>
  /**
   * A `(req, res)` handler serving the metrics in Prometheus' text format (the `prometheus` option; 503 with the
   * reason without it, or once the registry is closed), for node:http, Express or Fastify.
   *
   * @since 0.2.0
   */
  readonly metricsHandler: () => MetricsHandler
  /**
   * Runs `effect` in a read-your-writes session, as `SqlClient.withTransaction` runs one in a transaction: inside it,
   * after a write to a pair, that database's reads see it (the clients `get`, `tenant` and `batch` hand out inside
   * carry the session to Prisma). A nested `withSession` joins the outer one. Fails with what `effect` fails with.
   *
   * @since 0.2.0
   */
  readonly withSession: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /**
   * The client of tenant `name` (the `tenants` option): at once when it is open, else resolved, registered and
   * connected first (concurrent calls for one tenant resolve it once). Fails with a TenantError: InvalidArgumentError
   * (bad name, or no `tenants` option), UnknownDatabaseError (no such tenant), TenantCapacityError, TenantResolveError.
   *
   * @since 0.2.0
   */
  readonly tenant: (name: string) => Effect.Effect<T, TenantError>
  /**
   * Runs `f` with the tenant's client, holding the tenant open until it ends and making it the `currentTenant` of
   * the Effects inside. Entering another tenant inside fails with TenantLockedError unless `{ nested: true }`.
   *
   * @since 0.2.0
   */
  readonly withTenant: <A, E, R>(
    name: string,
    f: (client: T) => Effect.Effect<A, E, R>,
    options?: { readonly nested?: boolean }
  ) => Effect.Effect<A, E | TenantError | TenantLockedError, R>
  /**
   * The tenant of the enclosing `withTenant` (an Effect one, or the Promise face's around this Effect's run).
   *
   * @since 0.2.0
   */
  readonly currentTenant: Effect.Effect<Option.Option<{ readonly name: string; readonly client: T }>>
  /**
   * The tenant cache's figures. Fails with InvalidArgumentError without the `tenants` option.
   *
   * @since 0.2.0
   */
  readonly tenantStats: Effect.Effect<TenantStats, InvalidArgumentError>
  /** Refuses every write to `name` with ReadOnlyError, without sending it, while `effect` runs. */
  readonly preventWrites: <A, E, R>(
    name: Names<M>,
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | UnknownDatabaseError | ClosedError, R>
}

/**
 * The registry service with databases typed only at run time. For typed names, declare your own with `Tag`.
 *
 * @since 0.1.0
 */
export class FlexiDB extends Context.Tag("flexidb/FlexiDB")<FlexiDB, Service>() {}

/**
 * Builds a registry in the current scope. Fails with InvalidArgumentError, before registering anything, for an
 * invalid option, name or client. With `gracefulShutdown` (the default, as `createFlexiDB`), SIGINT or SIGTERM closes
 * the registry (every database disconnected) before the process ends; pass `false` when the app closes its layers
 * on signals itself (as `NodeRuntime.runMain` does).
 *
 * @since 0.1.0
 */
export const make = <const M extends Record<string, ClientEntry>, T extends ClientEntry = PrismaClientLike>(
  clients: M,
  options?: FlexiDBOptions<T>
): Effect.Effect<Service<M, ClientOf<T>>, InvalidArgumentError, Scope.Scope> =>
  makeScoped(clients, options) as unknown as Effect.Effect<Service<M, ClientOf<T>>, InvalidArgumentError, Scope.Scope>

/** The registry of `clients` (or of what the function returns, called when the layer is built) under `tag`. */
const layerFor = <I, M extends Record<string, ClientEntry>, T>(
  tag: Context.Tag<I, Service<M, T>>,
  clients: M | LazyArg<M>,
  options: FlexiDBOptions<any> | undefined
): Layer.Layer<I, InvalidArgumentError> =>
  Layer.scoped(
    tag,
    Effect.suspend(() => make(typeof clients === "function" ? clients() : clients, options) as Effect.Effect<Service<M, T>, InvalidArgumentError, Scope.Scope>)
  )

/**
 * The registry as a Layer: built when the layer is, closed (every database disconnected) when its scope closes.
 * `clients` may be a function, called when the layer is built. Options as `make`'s.
 *
 * @since 0.1.0
 */
export const layer = (
  clients: Readonly<Record<string, ClientEntry>> | LazyArg<Readonly<Record<string, ClientEntry>>>,
  options?: FlexiDBOptions<any>
): Layer.Layer<FlexiDB, InvalidArgumentError> => layerFor(FlexiDB, clients, options)

/**
 * A Tag class for your app's databases, declared once, so `get("user")` is typed without a cast; the third type
 * argument is the tenants' client (the `tenants` option), so `tenant` and `withTenant` hand out that type. Its
 * `layer` builds the registry.
 *
 * @example
 * class AppDb extends FlexiDBService.Tag("AppDb")<AppDb, { core: CoreClient }, TenantClient>() {}
 * const AppDbLive = AppDb.layer(() => ({ core: new CoreClient({ adapter }) }), { tenants: { resolve } })
 * const program = Effect.gen(function*() {
 *   const db = yield* AppDb
 *   const core = yield* db.get("core") // CoreClient
 *   const tasks = yield* db.withTenant("acme", (t) => Effect.promise(() => t.task.count())) // t: TenantClient
 * })
 *
 * @since 0.2.0
 */
export const Tag = <const Id extends string>(id: Id) =>
<Self, M extends Record<string, ClientEntry>, T = PrismaClientLike>(): TagClass<Self, Id, M, T> => {
  const tag = Context.Tag(id)<Self, Service<M, T>>()
  return Object.assign(tag, {
    layer: (clients: M | LazyArg<M>, options?: FlexiDBOptions<any>) => layerFor(tag, clients, options)
  })
}

/**
 * What `Tag` returns: a Context tag for `Service<M, T>` with a `layer` that builds it.
 *
 * @since 0.2.0
 */
export interface TagClass<Self, Id extends string, M extends Record<string, ClientEntry>, T = PrismaClientLike>
  extends Context.TagClass<Self, Id, Service<M, T>>
{
  /**
   * The registry of `clients` (or of what the function returns, when the layer is built) as a Layer. Its `tenants`
   * option's `resolve` returns the tenants' client `T`.
   */
  readonly layer: (
    clients: M | LazyArg<M>,
    options?: FlexiDBOptions<[T] extends [PrismaClientLike] ? T & ClientEntry : ClientEntry>
  ) => Layer.Layer<Self, InvalidArgumentError>
}
