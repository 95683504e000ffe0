/**
 * The Promise facade: `createFlexiDB` for ordinary apps. The Effect service (`FlexiDBService`) run by a
 * `ManagedRuntime` of the instance's own, each method converted once (internal/facade.ts); `get()`, a resident
 * `tenant()` and `batch()` take the registry's hot paths directly (a Map lookup, Prisma's promises).
 *
 * @since 0.1.0
 */
import type { ClientEntry, ClientOf, DBStats, MiddlewareFn, PrismaClientLike, Role, Settled, TenantStats } from "./Client.js"
import { build } from "./internal/facade.js"
import type { FlexiDBOptions, MetricsHandler } from "./Options.js"

/** The names of a map, as strings. */
type Names<M> = keyof M & string
/** The names of the databases served: the registered ones, and any string once tenants (of type `T`) are configured. */
type Known<M, T> = Names<M> | ([T] extends [never] ? never : string)

/**
 * Operations for `batch()`: one function per registered database, given its client.
 *
 * @since 0.1.0
 */
export type BatchOperations<M> = { readonly [K in Names<M>]?: (client: ClientOf<M[K]>) => PromiseLike<unknown> }

/**
 * What `batch()` resolves to: each key's awaited result.
 *
 * @since 0.1.0
 */
export type BatchResults<O> = { -readonly [K in keyof O]: O[K] extends (...args: any) => infer R ? Awaited<R> : never }

/**
 * What `batchSettled()` resolves to: each key's outcome.
 *
 * @since 0.1.0
 */
export type BatchSettledResults<O> = {
  -readonly [K in keyof O]: Settled<O[K] extends (...args: any) => infer R ? Awaited<R> : never>
}

/** Rejects keys of `O` that are not database names at compile time. */
type OnlyKnown<O, M> = O & { readonly [K in Exclude<keyof O & string, Names<M>>]: never }

/**
 * A flexidb instance. `M` maps each database name to its client (or `{ read, write }` pair); for databases named
 * at run time (a tenant per database), type it as `Record<string, TenantClient>`.
 *
 * @since 0.1.0
 */
export interface FlexiDB<M extends Record<string, ClientEntry>, T = never> {
  /**
   * The client for `name`, synchronously. `'read'` picks a read client of a pair, `'write'` (the default) its
   * write client. Throws UnknownDatabaseError, listing the registered names, for any other name. Only the names of
   * `M` compile, tenants or not: a tenant's client comes from `tenant(name)` or `withTenant(name, fn)`.
   */
  get<K extends Names<M>>(name: K, role?: Role): ClientOf<M[K]>
  /**
   * Runs one operation per database in parallel and resolves `{ name: result }`. An unknown name rejects before
   * anything runs. If any operation fails, every other still runs to completion, then it rejects with BatchError
   * naming each failed database. Each operation counts once, as `batch`, in stats, breaker and middleware.
   */
  batch<O extends BatchOperations<M>>(operations: OnlyKnown<O, M>): Promise<BatchResults<O>>
  /** Like `batch()`, but never rejects once started: resolves each database's outcome. */
  batchSettled<O extends BatchOperations<M>>(operations: OnlyKnown<O, M>): Promise<BatchSettledResults<O>>
  /** Adds middleware around every operation; the first added is outermost. Returns a function that removes it. */
  use(middleware: MiddlewareFn): () => void
  /**
   * Defines (or redefines) a group and returns its databases' clients. Throws UnknownDatabaseError for a member
   * that is not registered, changing nothing.
   */
  group<G extends Names<M>>(name: string, members: ReadonlyArray<G>): { [K in G]: ClientOf<M[K]> }
  /** The clients of a defined group; throws UnknownGroupError for an undefined group. */
  group(name: string): Partial<{ [K in Names<M>]: ClientOf<M[K]> }>
  /** `health()` for a group's databases only; rejects with UnknownGroupError for an undefined group. */
  healthGroup(name: string): Promise<Partial<Record<Names<M>, boolean>>>
  /** The registered names. */
  list(): Array<Known<M, T>>
  /** `SELECT 1` on every client of every database, each bounded by the health timeout. Never rejects. */
  health(): Promise<Record<Known<M, T>, boolean>>
  /** A snapshot of every database's statistics. */
  stats(): Record<Known<M, T>, DBStats>
  /** Resolves once every database's first connection attempt (with retries) has settled: `{ name: connected }`. */
  ready(): Promise<Record<Known<M, T>, boolean>>
  /**
   * flexidb's metrics in Prometheus' text exposition format, for a `/metrics` route: operation durations,
   * rejections, circuits, member health and the tenant cache, per database, role and member. Rejects with
   * InvalidArgumentError unless the instance was created with `{ prometheus: true }`, and with ClosedError after
   * `disconnect()`.
   */
  metrics(): Promise<string>
  /**
   * A `(req, res)` handler serving `metrics()` with Prometheus' content type, for node:http, Express or Fastify
   * (503 with the reason when `metrics()` rejects). See also the `prometheus: { port }` option.
   *
   * @since 0.2.0
   */
  metricsHandler(): MetricsHandler
  /**
   * Adds a database, usable at once; it connects in the background with retry. Throws DuplicateDatabaseError
   * for a registered name and InvalidArgumentError for an invalid name or client. Returns this instance, typed
   * with the new name.
   */
  register<N extends string, E extends ClientEntry>(name: N, client: E): FlexiDB<M & { [K in N]: E }, T>
  /** Stops serving a database, ends its fibers and disconnects its clients. */
  unregister(name: Known<M, T>): Promise<void>
  /**
   * Runs `fn` in a read-your-writes session (one per HTTP request is the intended use): inside it, after a write to
   * a pair, that database's reads go to its writer for `readYourWrites.window`, or (LSN mode) to a replica only once
   * it has replayed the write. Outside sessions reads go to replicas. Nested sessions join the outer one.
   */
  session<A>(fn: () => A): A
  /**
   * Refuses every write to `name` — through any of its clients, `batch()` included — with ReadOnlyError, without
   * sending it, until `fn` settles (a maintenance window). Reads go on. Rejects with UnknownDatabaseError for a name
   * that is not registered, before calling `fn`.
   */
  preventWrites<A>(name: Known<M, T>, fn: () => A | PromiseLike<A>): Promise<A>
  /**
   * The client of tenant `name` (the `tenants` option): at once when it is open; otherwise `tenants.resolve` makes
   * it, and it is registered (breaker, stats, middleware, hooks as any database) and connected first. Concurrent
   * calls for one tenant resolve it once. Rejects with InvalidArgumentError for a name that is not 1–128 letters,
   * digits, `_` or `-` (before `resolve` is called) or without the `tenants` option, UnknownDatabaseError when
   * `resolve` returns undefined, TenantResolveError (its `cause` what `resolve` threw), or TenantCapacityError when
   * every slot stayed busy for `acquireTimeout`.
   */
  tenant(name: string): Promise<T>
  /**
   * Runs `fn` with the tenant's client, holding the tenant (it is never closed meanwhile) and making it the current
   * tenant for code inside (`currentTenant()`). Entering another tenant inside rejects with TenantLockedError
   * unless `{ nested: true }`.
   */
  withTenant<A>(name: string, fn: (client: T) => A | PromiseLike<A>, options?: { readonly nested?: boolean }): Promise<A>
  /** The tenant of the enclosing `withTenant()`, if any. */
  currentTenant(): { readonly name: string; readonly client: T } | undefined
  /**
   * The tenant cache's figures: `{ resident, leased, waiting, hits, misses, evictions, resolveFailures }`. Throws
   * InvalidArgumentError without the `tenants` option.
   */
  tenantStats(): TenantStats
  /** Disconnects every client, ends every fiber and timer, fires onDisconnect. Idempotent. */
  disconnect(): Promise<void>
}


/**
 * Creates an instance and returns at once: every database connects in the background, with retry. A database
 * that is down never crashes the app nor causes an unhandled rejection. Throws InvalidArgumentError, before
 * anything starts, for invalid options, names or clients.
 *
 * @example
 * const db = createFlexiDB({ user: userClient, analytics: { read: replica, write: primary } })
 * const users = await db.get("user").user.findMany()
 *
 * @since 0.1.0
 */
export const createFlexiDB = <
  const M extends Record<string, ClientEntry> = Record<string, PrismaClientLike>,
  T extends ClientEntry = never
>(
  clients: M,
  options?: FlexiDBOptions<T>
): FlexiDB<M, ClientOf<T>> => build(clients, options).db as unknown as FlexiDB<M, ClientOf<T>>
