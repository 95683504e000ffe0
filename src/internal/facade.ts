/**
 * The Promise face, derived from the service: each method runs the service's Effect on the instance's runtime —
 * `runSync` for what answers at once, `runPromise` for the rest — and converts its failure once, in `thrown`. Three
 * paths do not go through a run, because a run costs more than the work: `get()` (a Map lookup), `tenant()` of a
 * resident tenant (a Map lookup), and `batch()` (Prisma's own promises). `session()` and `withTenant()` are the
 * Promise face's own context combinators (AsyncLocalStorage), over the same tenant cache and lock as the service's.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Scope from "effect/Scope"
import type { ClientEntry, PrismaClientLike, Role, TenantStats } from "../Client.js"
import type { FlexiDB } from "../createFlexiDB.js"
import { BatchError, ClosedError } from "../Errors.js"
import type { Service } from "../FlexiDB.js"
import type { FlexiDBOptions } from "../Options.js"
import { resolveOptions } from "../Options.js"
import { handler } from "./metricsHandler.js"
import type { Registry } from "./registry.js"
import { batchOutcome, make as makeRegistry, settledResults } from "./registry.js"
import { lockedOut, make as makeService, noTenants } from "./service.js"
import { closeOnSignal } from "./shutdown.js"
import * as Session from "./session.js"

/** A rejection of the caller's own function, carried through the service's Effect untouched. */
class Rejected {
  constructor(readonly error: unknown) {}
}

/**
 * The one error conversion: a failure is thrown as the error it is (flexidb's tagged errors are `Error`s with a
 * code), a defect as itself, the caller's own rejection as itself.
 */
export const thrown = (cause: Cause.Cause<unknown>): unknown => {
  const error = Cause.squash(cause)
  return error instanceof Rejected ? error.error : error
}

/** What the Promise face needs besides the service: the runtime, the registry's hot paths, and `disconnect`. */
export interface Parts {
  readonly service: Service
  readonly registry: Registry
  readonly runtime: ManagedRuntime.ManagedRuntime<never, never>
  /** Whether the runtime was disposed: then nothing runs, and every method answers as documented. */
  readonly disposed: () => boolean
  /** Whether `disconnect()` was called. */
  readonly closing: () => boolean
  readonly disconnect: () => Promise<void>
}

const emptyTenantStats: TenantStats = {
  resident: 0,
  leased: 0,
  waiting: 0,
  hits: 0,
  misses: 0,
  evictions: 0,
  resolveFailures: 0
}

/** The Promise face of `service`. */
export const derive = (parts: Parts): FlexiDB<Record<string, PrismaClientLike>, PrismaClientLike> => {
  const { disposed, registry, runtime, service } = parts
  const refuse = (operation: string) => new ClosedError({ operation })

  const runSync = <A, E>(effect: Effect.Effect<A, E>): A => {
    const exit = runtime.runSyncExit(effect)
    if (Exit.isSuccess(exit)) return exit.value
    throw thrown(exit.cause)
  }
  /** Runs at once; after `disconnect()`, throws ClosedError. */
  const sync = <A, E>(operation: string, effect: Effect.Effect<A, E>): A => {
    if (disposed()) throw refuse(operation)
    return runSync(effect)
  }
  /** Runs to a Promise; after `disconnect()`, answers `whenClosed` (ClosedError unless given). */
  const promise = <A, E>(
    operation: string,
    effect: Effect.Effect<A, E>,
    whenClosed: () => Promise<A> = () => Promise.reject(refuse(operation))
  ): Promise<A> =>
    disposed()
      ? whenClosed()
      : runtime.runPromiseExit(effect).then((exit) => {
        if (Exit.isSuccess(exit)) return exit.value
        throw thrown(exit.cause)
      })
  const nothing = () => Promise.resolve({})

  const get = (name: string, role?: Role) => {
    const found = registry.find(name)
    if (found !== undefined && (role === undefined || role === "write" || role === "read")) return found.clientFor(role)
    throw registry.client(name, role)
  }

  const db: FlexiDB<Record<string, PrismaClientLike>, PrismaClientLike> = {
    get: get as never,
    batch: ((operations: never) =>
      registry.batch(operations, (outcomes) => {
        const answer = batchOutcome(outcomes)
        if (answer instanceof BatchError) throw answer
        return answer
      })) as never,
    batchSettled: ((operations: never) => registry.batch(operations, settledResults)) as never,
    use: (middleware) => {
      const remove = sync("use()", service.use(middleware))
      return () => {
        if (!disposed()) runSync(remove)
      }
    },
    group: ((name: string, members?: ReadonlyArray<string>) =>
      members === undefined
        ? sync(`group('${name}')`, service.group(name))
        : sync(`group('${name}')`, service.group(name, members))) as never,
    healthGroup: (name) => promise(`healthGroup('${name}')`, service.healthGroup(name)),
    list: () => (disposed() ? [] : runSync(service.list)),
    health: () => promise("health()", service.health(), nothing),
    stats: () => (disposed() ? {} : runSync(service.stats)),
    ready: () => promise("ready()", service.ready, nothing),
    metrics: () => (parts.closing() ? Promise.reject(refuse("metrics()")) : promise("metrics()", service.metrics)),
    metricsHandler: () => handler(() => db.metrics()),
    register: (name, client) => {
      sync(`register('${name}')`, service.register(name, client))
      return db as never
    },
    unregister: (name) => promise(`unregister('${name}')`, service.unregister(name)),
    session: Session.run,
    tenant: (name) => {
      // A resident tenant: a Map lookup, no run.
      const found = registry.tenants?.hit(name)
      if (found !== undefined) return Promise.resolve(found.clientFor("write"))
      return promise("tenant()", service.tenant(name))
    },
    withTenant: async (name, fn, options) => {
      const locked = lockedOut(Session.currentTenant(), name, options)
      if (locked !== undefined) throw locked
      const tenants = registry.tenants
      if (tenants === undefined) throw noTenants("withTenant()")
      // A resident tenant is held at once; otherwise the cache opens it and holds it.
      const lease = tenants.retain(name) ?? await promise("withTenant()", tenants.hold(name))
      const client = lease.db.clientFor("write")
      try {
        return await Session.inTenant({ name, client }, () => fn(client))
      } finally {
        tenants.release(lease)
      }
    },
    currentTenant: () => Session.currentTenant() as never,
    // Without the option it is a mistake whenever it is called; after disconnect() no tenant is open.
    tenantStats: () => {
      if (registry.tenants === undefined) throw noTenants("tenantStats()")
      return disposed() ? emptyTenantStats : runSync(service.tenantStats)
    },
    preventWrites: (name, fn) =>
      promise(
        `preventWrites('${name}')`,
        service.preventWrites(name, Effect.tryPromise({ try: async () => fn(), catch: (error) => new Rejected(error) }))
      ),
    disconnect: parts.disconnect
  }
  return db
}

/** An instance and its insides, for `flexidb/testing`, which drives the same registry. Not exported by the package. */
export interface Built {
  readonly db: FlexiDB<Record<string, PrismaClientLike>, PrismaClientLike>
  readonly registry: Registry
  /** Runs a lifecycle effect on the instance's runtime, synchronously. */
  readonly runSync: <A, E>(effect: Effect.Effect<A, E>) => A
}

/** The registry and its service on a runtime of their own, and the Promise face derived from the service. */
export const build = (
  clients: Readonly<Record<string, ClientEntry>>,
  options: FlexiDBOptions<any> | undefined,
  observe?: (database: string, operation: string) => void
): Built => {
  const resolved = resolveOptions(options)
  const runtime = ManagedRuntime.make(Layer.empty)
  const scope = runtime.runSync(Scope.make())
  const made = runtime.runSyncExit(Scope.extend(makeRegistry(clients, resolved, observe), scope))
  if (Exit.isFailure(made)) {
    runtime.runSync(Scope.close(scope, Exit.void))
    void runtime.dispose()
    throw Cause.squash(made.cause)
  }
  const registry = made.value
  // Once disposed, the runtime runs nothing: every method answers from the facade, as documented.
  let disposed = false
  let closing: Promise<void> | undefined
  const disconnect = () =>
    closing ??= (() => {
      stopListening()
      return runtime.runPromise(Scope.close(scope, Exit.void)).finally(() => {
        disposed = true
        return runtime.dispose()
      })
    })()
  const stopListening = resolved.gracefulShutdown ? closeOnSignal(disconnect) : () => {}
  const db = derive({
    service: makeService(registry),
    registry,
    runtime,
    disposed: () => disposed,
    closing: () => closing !== undefined,
    disconnect
  })
  const runSync = <A, E>(effect: Effect.Effect<A, E>): A => {
    const exit = runtime.runSyncExit(effect)
    if (Exit.isSuccess(exit)) return exit.value
    throw thrown(exit.cause)
  }
  return { db, registry, runSync }
}
