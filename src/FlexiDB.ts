/**
 * flexidb as an Effect service: a registry of databases that lives as long as its Layer's scope. Every database
 * connects in the background with retry; closing the scope disconnects them all and ends every fiber.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer } from "effect"
import type { Scope } from "effect"
import type { ClientEntry, DBStats, MiddlewareFn, PrismaClientLike, Role } from "./Client.js"
import type {
  BatchError,
  ClosedError,
  DuplicateDatabaseError,
  InvalidArgumentError,
  UnknownDatabaseError
} from "./Errors.js"
import type { Settled } from "./internal/registry.js"
import { makeRegistry } from "./internal/registry.js"
import type { FlexiDBOptions } from "./Options.js"
import { resolveOptions } from "./Options.js"

export type { Settled } from "./internal/registry.js"

/**
 * @since 0.1.0
 */
export interface Service {
  /** The client for `name` (the write client of a pair unless `role` is `'read'`). */
  readonly get: <C = PrismaClientLike>(name: string, role?: Role) => Effect.Effect<C, UnknownDatabaseError | ClosedError>
  /** Registers a database; it connects in the background. */
  readonly register: (
    name: string,
    entry: ClientEntry
  ) => Effect.Effect<void, DuplicateDatabaseError | InvalidArgumentError | ClosedError>
  /** Removes a database: it stops being served, its fibers end and its clients disconnect. */
  readonly unregister: (name: string) => Effect.Effect<void, UnknownDatabaseError | ClosedError>
  /** Adds middleware; the returned effect's value removes it. */
  readonly use: (middleware: MiddlewareFn) => Effect.Effect<Effect.Effect<void>, InvalidArgumentError>
  /** Runs one operation per database in parallel; fails with BatchError naming each failed database. */
  readonly batch: (
    ops: Record<string, (client: any) => PromiseLike<unknown>>
  ) => Effect.Effect<Record<string, unknown>, BatchError | UnknownDatabaseError | InvalidArgumentError | ClosedError>
  /** Like batch, but succeeds with every database's outcome. */
  readonly batchSettled: (
    ops: Record<string, (client: any) => PromiseLike<unknown>>
  ) => Effect.Effect<Record<string, Settled<unknown>>, UnknownDatabaseError | InvalidArgumentError | ClosedError>
  /** `SELECT 1` on every database (or those named), each bounded by the health timeout. Never fails. */
  readonly health: (names?: ReadonlyArray<string>) => Effect.Effect<Record<string, boolean>>
  readonly stats: Effect.Effect<Record<string, DBStats>>
  readonly list: Effect.Effect<Array<string>>
  /** Waits until every database's first connection attempt (with its retries) has settled. */
  readonly ready: Effect.Effect<Record<string, boolean>>
}

/**
 * The registry service.
 *
 * @since 0.1.0
 */
export class FlexiDB extends Context.Tag("flexidb/FlexiDB")<FlexiDB, Service>() {}

const attempt = <A, E>(f: () => A): Effect.Effect<A, E> => Effect.try({ try: f, catch: (e) => e as E })

/**
 * Builds a registry in the current scope. Fails with InvalidArgumentError, before registering anything, for an
 * invalid option, name or client.
 *
 * @since 0.1.0
 */
export const make = (
  clients: Readonly<Record<string, ClientEntry>>,
  options?: FlexiDBOptions
): Effect.Effect<Service, InvalidArgumentError, Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = yield* attempt<ReturnType<typeof resolveOptions>, InvalidArgumentError>(() => resolveOptions(options))
    const registry = yield* makeRegistry(clients, resolved)
    return {
      get: <C>(name: string, role?: Role) => attempt(() => registry.unsafeGet(name, role) as C),
      register: (name, entry) => attempt(() => registry.unsafeRegister(name, entry)),
      unregister: registry.unregister,
      use: (middleware) => attempt(() => Effect.sync(registry.unsafeUse(middleware))),
      batch: (ops) => Effect.tryPromise({ try: () => registry.batch(ops), catch: (e) => e as BatchError }),
      batchSettled: (ops) => Effect.tryPromise({ try: () => registry.batchSettled(ops), catch: (e) => e as ClosedError }),
      health: registry.health,
      stats: Effect.sync(registry.stats),
      list: Effect.sync(registry.list),
      ready: registry.ready
    } satisfies Service
  })

/**
 * The registry as a Layer: built when the layer is, closed (every database disconnected) when its scope closes.
 *
 * @since 0.1.0
 */
export const layer = (
  clients: Readonly<Record<string, ClientEntry>>,
  options?: FlexiDBOptions
): Layer.Layer<FlexiDB, InvalidArgumentError> => Layer.scoped(FlexiDB, make(clients, options))
