/**
 * flexidb as an Effect service: a registry of databases that lives as long as its Layer's scope. Every database
 * connects in the background with retry; closing the scope disconnects them all and ends every fiber. Declare
 * your app's databases once with `Tag` and every `get` is typed by name.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import type { LazyArg } from "effect/Function"
import type { ClientEntry, ClientOf, DBStats, MiddlewareFn, PrismaClientLike, Role, Settled, TenantStats } from "./Client.js"
import type {
  ClosedError,
  DuplicateDatabaseError,
  UnknownDatabaseError,
  UnknownGroupError
} from "./Errors.js"
import { BatchError, InvalidArgumentError, isFlexiDBError } from "./Errors.js"
import { validate } from "./internal/database.js"
import { ofRegistry } from "./internal/metricsHandler.js"
import * as Session from "./internal/session.js"
import type { BatchRun, Operation, Registry } from "./internal/registry.js"
import { batchOutcome, make as makeRegistry, record, settledResults } from "./internal/registry.js"
import type { FlexiDBOptions, MetricsHandler } from "./Options.js"
import { resolveOptions } from "./Options.js"

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
 * known at run time).
 *
 * @since 0.1.0
 */
export interface Service<M extends Record<string, ClientEntry> = Record<string, ClientEntry>> {
  /** The client for `name` (the write client of a pair unless `role` is `'read'`). */
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
   * operation that dies makes the batch die. Interrupting the batch interrupts the operations' Effects.
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
  /** Defines (or redefines) a group and succeeds with its databases' clients. */
  readonly group: <G extends Names<M>>(
    name: string,
    members: ReadonlyArray<G>
  ) => Effect.Effect<{ [K in G]: ClientOf<M[K]> }, UnknownDatabaseError | InvalidArgumentError | ClosedError>
  /** The databases of a defined group. */
  readonly groupMembers: (name: string) => Effect.Effect<ReadonlyArray<Names<M>>, UnknownGroupError>
  /** `SELECT 1` on every database (or those named), each bounded by the health timeout. Never fails. */
  readonly health: (names?: ReadonlyArray<Names<M>>) => Effect.Effect<Record<Names<M>, boolean>>
  readonly stats: Effect.Effect<Record<Names<M>, DBStats>>
  readonly list: Effect.Effect<Array<Names<M>>>
  /** Waits until every database's first connection attempt (with its retries) has settled. */
  readonly ready: Effect.Effect<Record<Names<M>, boolean>>
  /**
   * Runs `f` (Prisma calls) in a read-your-writes session, as `createFlexiDB`'s `session()`: after a write to a
   * pair, its reads inside the session see it. Fails with what `f` rejects with.
   */
  readonly session: <A>(f: () => PromiseLike<A>) => Effect.Effect<A, unknown>
  /**
   * The client of tenant `name` (the `tenants` option), opened if it is not: as `createFlexiDB`'s `tenant()`. Fails
   * with InvalidArgumentError (bad name, or no `tenants` option), UnknownDatabaseError (no such tenant),
   * TenantCapacityError, or what `resolve` threw.
   */
  readonly tenant: (name: string) => Effect.Effect<PrismaClientLike, unknown>
  /**
   * A `(req, res)` handler serving the metrics in Prometheus' text format (the `prometheus` option; 503 with the
   * reason without it), for node:http, Express or Fastify.
   *
   * @since 0.2.0
   */
  readonly metricsHandler: () => MetricsHandler
  /** Runs `f` with the tenant's client, holding the tenant open until it ends. */
  readonly withTenant: <A, E, R>(
    name: string,
    f: (client: PrismaClientLike) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | unknown, R>
  readonly tenantStats: Effect.Effect<TenantStats>
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

/** An Effect operation's death travels through the Promise-based core as this, and comes out as a defect. */
class Died {
  constructor(readonly cause: Cause.Cause<unknown>) {}
}

/**
 * Effect operations become Promise operations, each forked on `runtime` into `fibers` (so interrupting the batch
 * can interrupt them and wait for them). A defect — a death, an interruption, or a function that throws instead of
 * returning — travels as `Died`.
 */
const promised = (
  operations: Record<string, unknown>,
  runtime: Runtime.Runtime<any>,
  fibers: Set<Fiber.RuntimeFiber<unknown, unknown>>
): Record<string, Operation> =>
  record(Object.keys(operations).map((name) => {
    const op = operations[name]
    if (typeof op !== "function") return [name, op as Operation] as const
    return [name, (client: unknown) => {
      let out: unknown
      try {
        out = op(client)
      } catch (error) {
        return Promise.reject(new Died(Cause.die(error)))
      }
      if (!Effect.isEffect(out)) return out
      const fiber = Runtime.runFork(runtime)(out as Effect.Effect<unknown, unknown>)
      fibers.add(fiber)
      return new Promise((resolve, reject) =>
        fiber.addObserver((exit) => {
          fibers.delete(fiber)
          if (Exit.isSuccess(exit)) resolve(exit.value)
          else if (Cause.isDie(exit.cause) || Cause.isInterrupted(exit.cause)) reject(new Died(exit.cause))
          else reject(Option.getOrUndefined(Cause.failureOption(exit.cause)))
        })
      )
    }] as const
  }))

/** Runs a batch through the registry's hot path as an Effect; a death inside an operation is a defect here too. */
const runBatch = (registry: Registry, operations: object) =>
  Effect.flatMap(Effect.runtime<any>(), (runtime) =>
    Effect.async<BatchRun, UnknownDatabaseError | InvalidArgumentError | ClosedError>((resume) => {
      const fibers = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
      registry.batch(promised(operations as Record<string, unknown>, runtime, fibers), (run) => run).then(
        (run) => {
          const died = run.values.find((v) => v instanceof Died) as Died | undefined
          resume(died === undefined ? Effect.succeed(run) : Effect.failCause(died.cause as Cause.Cause<never>))
        },
        (error) => resume(isFlexiDBError(error) ? Effect.fail(error as ClosedError) : Effect.die(error))
      )
      // Interrupted: the operations' fibers are interrupted, and waited for.
      return Effect.suspend(() => Fiber.interruptAll(fibers))
    }))

/**
 * Builds a registry in the current scope. Fails with InvalidArgumentError, before registering anything, for an
 * invalid option, name or client.
 *
 * @since 0.1.0
 */
export const make = <const M extends Record<string, ClientEntry>>(
  clients: M,
  options?: FlexiDBOptions
): Effect.Effect<Service<M>, InvalidArgumentError, Scope.Scope> =>
  Effect.gen(function*() {
    const registry = yield* makeRegistry(clients, yield* validate(() => resolveOptions(options)))
    const client = (name: string, role: unknown) =>
      Effect.suspend(() => {
        const found = registry.client(name, role)
        return isFlexiDBError(found) ? Effect.fail(found) : Effect.succeed(found)
      })
    const tenantsOf = (operation: string) =>
      registry.tenants === undefined
        ? Effect.fail(
          new InvalidArgumentError({
            path: "tenants",
            reason: `${operation} needs the tenants option: FlexiDBService.make(clients, { tenants: { resolve } })`
          })
        )
        : Effect.succeed(registry.tenants)
    const service: Service<Record<string, PrismaClientLike>> = {
      get: client,
      metricsHandler: () => ofRegistry(registry.metrics),
      register: registry.register,
      unregister: registry.unregister,
      use: registry.use,
      batch: (operations) =>
        Effect.flatMap(runBatch(registry, operations), (run) => {
          const outcome = batchOutcome(run)
          return outcome instanceof BatchError ? Effect.fail(outcome) : Effect.succeed(outcome)
        }) as never,
      batchSettled: (operations) => Effect.map(runBatch(registry, operations), settledResults) as never,
      group: (name, members) =>
        Effect.flatMap(
          registry.defineGroup(name, members),
          (list) => Effect.map(Effect.forEach(list, (m) => client(m, "write")), (cs) => record(list.map((m, i) => [m, cs[i]!])))
        ) as never,
      groupMembers: registry.groupMembers,
      health: registry.health,
      stats: registry.stats,
      list: registry.list,
      ready: registry.ready,
      session: (f) => Effect.tryPromise({ try: () => Session.run(f), catch: (e) => e }),
      tenant: (name) => Effect.map(tenantsOf("tenant()"), (t) => t.acquire(name)).pipe(Effect.flatten, Effect.map((db) => db.clientFor("write"))),
      withTenant: (name, f) =>
        Effect.scoped(
          Effect.flatMap(tenantsOf("withTenant()"), (t) => Effect.flatMap(t.lease(name), (db) => f(db.clientFor("write"))))
        ),
      tenantStats: Effect.flatMap(tenantsOf("tenantStats()"), (t) => t.stats).pipe(Effect.orDie),
      preventWrites: <A, E, R>(name: string, effect: Effect.Effect<A, E, R>) =>
        Effect.acquireUseRelease(
          Effect.suspend(() => {
            const release = registry.preventWrites(name)
            return typeof release === "function" ? Effect.succeed(release) : Effect.fail(release)
          }),
          () => effect,
          (release) => Effect.sync(release)
        )
    }
    return service as unknown as Service<M>
  })

/** The registry of `clients` (or of what the function returns, called when the layer is built) under `tag`. */
const layerFor = <I, M extends Record<string, ClientEntry>>(
  tag: Context.Tag<I, Service<M>>,
  clients: M | LazyArg<M>,
  options: FlexiDBOptions | undefined
): Layer.Layer<I, InvalidArgumentError> =>
  Layer.scoped(tag, Effect.suspend(() => make(typeof clients === "function" ? clients() : clients, options)))

/**
 * The registry as a Layer: built when the layer is, closed (every database disconnected) when its scope closes.
 * `clients` may be a function, called when the layer is built.
 *
 * @since 0.1.0
 */
export const layer = (
  clients: Readonly<Record<string, ClientEntry>> | LazyArg<Readonly<Record<string, ClientEntry>>>,
  options?: FlexiDBOptions
): Layer.Layer<FlexiDB, InvalidArgumentError> => layerFor(FlexiDB, clients, options)

/**
 * A Tag class for your app's databases, declared once, so `get("user")` is typed without a cast. Its `layer`
 * builds the registry.
 *
 * @example
 * class AppDb extends FlexiDBService.Tag("AppDb")<AppDb, { user: UserClient; audit: AuditClient }>() {}
 * const AppDbLive = AppDb.layer(() => ({ user: new UserClient({ adapter }), audit: new AuditClient({ adapter }) }))
 * const program = Effect.gen(function*() {
 *   const db = yield* AppDb
 *   const user = yield* db.get("user") // UserClient
 * })
 *
 * @since 0.2.0
 */
export const Tag = <const Id extends string>(id: Id) =>
<Self, M extends Record<string, ClientEntry>>(): TagClass<Self, Id, M> => {
  const tag = Context.Tag(id)<Self, Service<M>>()
  return Object.assign(tag, {
    layer: (clients: M | LazyArg<M>, options?: FlexiDBOptions) => layerFor(tag, clients, options)
  })
}

/**
 * What `Tag` returns: a Context tag for `Service<M>` with a `layer` that builds it.
 *
 * @since 0.2.0
 */
export interface TagClass<Self, Id extends string, M extends Record<string, ClientEntry>>
  extends Context.TagClass<Self, Id, Service<M>>
{
  /** The registry of `clients` (or of what the function returns, when the layer is built) as a Layer. */
  readonly layer: (clients: M | LazyArg<M>, options?: FlexiDBOptions) => Layer.Layer<Self, InvalidArgumentError>
}
