/**
 * The registry service: every method of flexidb as an Effect over one registry. `FlexiDBService.make` is this over a
 * new registry; `createFlexiDB` and `flexidb/testing` run it (internal/facade.ts).
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import type { ClientEntry, PrismaClientLike, TenantStats } from "../Client.js"
import type { TenantError, UnknownDatabaseError } from "../Errors.js"
import { BatchError, ClosedError, InvalidArgumentError, isFlexiDBError, TenantLockedError } from "../Errors.js"
import type { Service } from "../FlexiDB.js"
import type { FlexiDBOptions } from "../Options.js"
import { resolveOptions } from "../Options.js"
import { validate } from "./database.js"
import type { BatchRun, Operation, Registry } from "./registry.js"
import { batchOutcome, make as makeRegistry, record, settledResults } from "./registry.js"
import { handler } from "./metricsHandler.js"
import { closeOnSignal } from "./shutdown.js"
import * as Session from "./session.js"

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

/**
 * A batch with a defect dies, and only dies: the dead operations' causes, their typed failures turned into defects,
 * beside each other operation's failure as a defect. Nothing in it is a failure, so no `catchAll` on the batch's E
 * can swallow the bug, and none of the failures is lost.
 */
export const deathOf = (run: BatchRun): Cause.Cause<never> | undefined => {
  let died = false
  let cause: Cause.Cause<never> | undefined
  run.values.forEach((value, i) => {
    if (run.ok[i]) return
    const part: Cause.Cause<never> = value instanceof Died
      ? Cause.flatMap(value.cause, (error) => Cause.die(error))
      : Cause.die(value)
    if (value instanceof Died) died = true
    cause = cause === undefined ? part : Cause.parallel(cause, part)
  })
  return died ? cause : undefined
}

/** Runs a batch through the registry's hot path as an Effect; a death inside an operation is a defect here too. */
const runBatch = (registry: Registry, operations: object) =>
  Effect.flatMap(
    Effect.zip(Effect.runtime<any>(), FiberRef.get(Session.sessionRef)),
    ([runtime, session]) =>
      Effect.async<BatchRun, UnknownDatabaseError | InvalidArgumentError | ClosedError>((resume) => {
        const fibers = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
        const start = () => registry.batch(promised(operations as Record<string, unknown>, runtime, fibers), (run) => run)
        ;(session === undefined ? start() : Session.enter(session, start)).then(
          (run) => {
            const death = deathOf(run)
            resume(death === undefined ? Effect.succeed(run) : Effect.failCause(death))
          },
          (error) => resume(isFlexiDBError(error) ? Effect.fail(error as ClosedError) : Effect.die(error))
        )
        // Interrupted: the operations' fibers are interrupted, and waited for.
        return Effect.suspend(() => Fiber.interruptAll(fibers))
      })
  )

/** The error for a tenant method on an instance without the `tenants` option. */
export const noTenants = (operation: string) =>
  new InvalidArgumentError({
    path: "tenants",
    reason: `${operation} needs the tenants option: createFlexiDB(clients, { tenants: { resolve } }), ` +
      `or FlexiDBService.make / layer with the same options`
  })

/** The error for `metrics()` on an instance without the `prometheus` option. */
export const noMetrics = () =>
  new InvalidArgumentError({
    path: "prometheus",
    reason: "metrics() needs the option: createFlexiDB(clients, { prometheus: true }), or the same in FlexiDBService.make"
  })

/** The lock of `withTenant`: TenantLockedError when entering `name` inside another tenant, unless nested. */
export const lockedOut = (
  current: Session.CurrentTenant | undefined,
  name: string,
  options: { readonly nested?: boolean } | undefined
): TenantLockedError | undefined =>
  current !== undefined && current.name !== name && options?.nested !== true
    ? new TenantLockedError({ tenant: name, current: current.name })
    : undefined

/** The tenant of the enclosing `withTenant`: the fiber's, else (an Effect run inside the Promise face's) the async context's. */
const enclosingTenant = Effect.map(FiberRef.get(Session.tenantRef), (t) => t ?? Session.currentTenant())

/** `client` as the Effect API hands it out: bound to the enclosing session, if any. */
const inSession = <C>(client: C): Effect.Effect<C> =>
  Effect.map(FiberRef.get(Session.sessionRef), (session) => (session === undefined ? client : Session.bind(client, session)))

/** The service over `registry`. */
export const make = (registry: Registry): Service => {
  const client = (name: string, role: unknown) =>
    Effect.suspend(() => {
      const found = registry.client(name, role)
      return isFlexiDBError(found) ? Effect.fail(found) : inSession(found)
    })
  const tenantsOf = (operation: string) =>
    Effect.suspend(() =>
      registry.tenants === undefined ? Effect.fail(noTenants(operation)) : Effect.succeed(registry.tenants)
    )
  const groupClients = (list: ReadonlyArray<string>) =>
    Effect.map(
      Effect.forEach(list, (m) => Effect.orDie(client(m, "write"))),
      (cs) => record(list.map((m, i) => [m, cs[i]!]))
    )

  const withTenant = <A, E, R>(
    name: string,
    f: (client: PrismaClientLike) => Effect.Effect<A, E, R>,
    options?: { readonly nested?: boolean }
  ): Effect.Effect<A, E | TenantError | TenantLockedError, R> =>
    Effect.flatMap(enclosingTenant, (current): Effect.Effect<A, E | TenantError | TenantLockedError, R> => {
      const locked = lockedOut(current, name, options)
      if (locked !== undefined) return Effect.fail(locked)
      return Effect.flatMap(tenantsOf("withTenant()"), (tenants) =>
        Effect.acquireUseRelease(
          // A resident tenant is held at once; otherwise the cache opens it and holds it.
          Effect.suspend(() => {
            const held = tenants.retain(name)
            return held === undefined ? tenants.hold(name) : Effect.succeed(held)
          }),
          (lease) =>
            Effect.flatMap(inSession(lease.db.clientFor("write")), (c) =>
              Effect.locally(f(c), Session.tenantRef, { name, client: c })),
          (lease) => Effect.sync(() => tenants.release(lease))
        ))
    })

  const metrics = Effect.suspend((): Effect.Effect<string, InvalidArgumentError | ClosedError> => {
    if (registry.isClosed()) return Effect.fail(new ClosedError({ operation: "metrics()" }))
    return registry.metrics === undefined ? Effect.fail(noMetrics()) : Effect.promise(registry.metrics)
  })
  const service: Service = {
    get: client,
    register: (name, entry) => registry.register(name, entry),
    unregister: registry.unregister,
    use: registry.use,
    batch: ((operations: object) =>
      Effect.flatMap(runBatch(registry, operations), (run) => {
        const outcome = batchOutcome(run)
        return outcome instanceof BatchError ? Effect.fail(outcome) : Effect.succeed(outcome)
      })) as never,
    batchSettled: ((operations: object) => Effect.map(runBatch(registry, operations), settledResults)) as never,
    group: ((name: string, members?: ReadonlyArray<string>) =>
      members === undefined
        ? Effect.flatMap(registry.groupMembers(name), groupClients)
        : Effect.flatMap(registry.defineGroup(name, members), groupClients)) as never,
    healthGroup: (name) => Effect.flatMap(registry.groupMembers(name), (members) => registry.health(members)),
    health: registry.health,
    stats: registry.stats,
    list: registry.list,
    ready: registry.ready,
    metrics,
    metricsHandler: () =>
      handler(() =>
        Effect.runPromiseExit(metrics).then((exit) => Exit.isSuccess(exit) ? exit.value : Promise.reject(Cause.squash(exit.cause)))
      ),
    withSession: (effect) =>
      Effect.flatMap(FiberRef.get(Session.sessionRef), (session) =>
        // Nested sessions join the outer one; an Effect run inside the Promise face's session joins that.
        session !== undefined
          ? effect
          : Effect.locally(effect, Session.sessionRef, Session.current() ?? { writes: new Map() })),
    tenant: (name) =>
      Effect.flatMap(tenantsOf("tenant()"), (tenants) =>
        Effect.suspend(() => {
          // A resident tenant: no fiber, no wait.
          const db = tenants.hit(name)
          return db === undefined ? tenants.acquire(name) : Effect.succeed(db)
        })).pipe(Effect.flatMap((db) => inSession(db.clientFor("write")))),
    withTenant,
    currentTenant: Effect.map(enclosingTenant, (t) => Option.fromNullable(t as { name: string; client: PrismaClientLike } | undefined)),
    tenantStats: Effect.flatMap(tenantsOf("tenantStats()"), (t): Effect.Effect<TenantStats> => t.stats),
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
  return service
}

/**
 * A registry of `clients` in the current scope and its service; with `gracefulShutdown`, SIGINT and SIGTERM close the
 * registry first, as they close a `createFlexiDB` instance.
 */
export const makeScoped = (
  clients: Readonly<Record<string, ClientEntry>>,
  options: FlexiDBOptions<any> | undefined
): Effect.Effect<Service, InvalidArgumentError, Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = yield* validate(() => resolveOptions(options))
    const registry = yield* makeRegistry(clients, resolved)
    if (resolved.gracefulShutdown) {
      const runtime = yield* Effect.runtime<never>()
      yield* Effect.acquireRelease(
        Effect.sync(() => closeOnSignal(() => Runtime.runPromise(runtime)(registry.close))),
        (stop) => Effect.sync(stop)
      )
    }
    return make(registry)
  })
