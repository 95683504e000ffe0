/**
 * The Promise facade: `createFlexiDB` for ordinary apps. A thin shell over the same registry the Effect service
 * uses, run by a `ManagedRuntime`. `get()` is a Map lookup; Effect runs only for lifecycle work.
 *
 * @since 0.1.0
 */
import { Cause, Effect, Exit, Layer, ManagedRuntime, Scope } from "effect"
import type { ClientEntry, ClientOf, DBStats, MiddlewareFn, PrismaClientLike, Role } from "./Client.js"
import type { Settled } from "./internal/registry.js"
import { makeRegistry, record } from "./internal/registry.js"
import { closeOnSignal } from "./internal/shutdown.js"
import type { FlexiDBOptions } from "./Options.js"
import { resolveOptions } from "./Options.js"

/** The names of a map, as strings. */
type Names<M> = keyof M & string

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
export interface FlexiDB<M extends Record<string, ClientEntry>> {
  /**
   * The client for `name`, synchronously. `'read'` picks a read client of a pair, `'write'` (the default) its
   * write client. Throws UnknownDatabaseError, listing the registered names, for any other name.
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
  list(): Array<Names<M>>
  /** `SELECT 1` on every database, each bounded by the health timeout. Never rejects; a pair checks its writer. */
  health(): Promise<Record<Names<M>, boolean>>
  /** A snapshot of every database's statistics. */
  stats(): Record<Names<M>, DBStats>
  /** Resolves once every database's first connection attempt (with retries) has settled: `{ name: connected }`. */
  ready(): Promise<Record<Names<M>, boolean>>
  /**
   * Adds a database, usable at once; it connects in the background with retry. Throws DuplicateDatabaseError
   * for a registered name and InvalidArgumentError for an invalid name or client. Returns this instance, typed
   * with the new name.
   */
  register<N extends string, E extends ClientEntry>(name: N, client: E): FlexiDB<M & { [K in N]: E }>
  /** Stops serving a database, ends its fibers and disconnects its clients. */
  unregister(name: Names<M>): Promise<void>
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
export const createFlexiDB = <const M extends Record<string, ClientEntry> = Record<string, PrismaClientLike>>(
  clients: M,
  options?: FlexiDBOptions
): FlexiDB<M> => {
  const resolved = resolveOptions(options)
  const runtime = ManagedRuntime.make(Layer.empty)
  const scope = runtime.runSync(Scope.make())
  const built = runtime.runSyncExit(Scope.extend(makeRegistry(clients, resolved), scope))
  if (Exit.isFailure(built)) {
    runtime.runSync(Scope.close(scope, Exit.void))
    void runtime.dispose()
    throw Cause.squash(built.cause)
  }
  const registry = built.value
  const run = <A, E>(effect: Effect.Effect<A, E>): Promise<A> =>
    runtime.runPromiseExit(effect).then((exit) => {
      if (Exit.isSuccess(exit)) return exit.value
      throw Cause.squash(exit.cause)
    })

  let closing: Promise<void> | undefined
  const disconnect = () =>
    closing ??= (() => {
      stopListening()
      return run(Scope.close(scope, Exit.void)).finally(() => runtime.dispose())
    })()
  const stopListening = resolved.gracefulShutdown ? closeOnSignal(disconnect) : () => {}

  const groupClients = (members: ReadonlyArray<string>) =>
    record(members.map((m) => [m, registry.unsafeGet(m)] as const))

  const db: FlexiDB<Record<string, PrismaClientLike>> = {
    get: (name, role) => registry.unsafeGet(name, role),
    batch: registry.batch as never,
    batchSettled: registry.batchSettled as never,
    use: (middleware) => registry.unsafeUse(middleware),
    group: (name: string, members?: ReadonlyArray<string>) =>
      groupClients(members === undefined ? registry.unsafeGroupMembers(name) : registry.unsafeDefineGroup(name, members)),
    healthGroup: (name) => {
      try {
        return run(registry.health(registry.unsafeGroupMembers(name)))
      } catch (error) {
        return Promise.reject(error)
      }
    },
    list: registry.list,
    health: () => run(registry.health()),
    stats: registry.stats,
    ready: () => run(registry.ready),
    register: (name, client) => {
      registry.unsafeRegister(name, client)
      return db as never
    },
    unregister: (name) => run(registry.unregister(name)),
    disconnect
  }
  return db as unknown as FlexiDB<M>
}
