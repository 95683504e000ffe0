/**
 * A database per tenant, opened on demand and kept within a budget. Each tenant is a database of the registry —
 * breaker, stats, middleware and hooks as for any other, in its own scope, released by its finalizer — that this
 * cache registers when first used and unregisters when it must make room or the tenant has been idle too long.
 *
 * Why not `RcMap`: at capacity it refuses, where a tenant cache must close the least recently used idle tenant to
 * make room, and wait (up to `acquireTimeout`) only when every tenant is busy.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Scope from "effect/Scope"
import type { ClientEntry, TenantStats } from "../Client.js"
import type { TenantError } from "../Errors.js"
import { InvalidArgumentError, TenantCapacityError, TenantResolveError, UnknownDatabaseError } from "../Errors.js"
import type { ResolvedTenants } from "../Options.js"
import { forkIn } from "./database.js"
import type { Db } from "./database.js"
import type { Env } from "./hotPath.js"
import type { Registry } from "./registry.js"

interface Tenant {
  readonly name: string
  readonly db: Db
  leases: number
  /** When `tenant()` or a lease last touched it (Clock ms). */
  lastUsed: number
  /** Queries settled plus in flight when last looked at: a change means it was used meanwhile. */
  activity: number
  /** The fiber that closes it when idle: ended with the tenant, or it would keep the closed client alive. */
  expiry: Fiber.RuntimeFiber<void> | undefined
}

export interface Tenants {
  /** The tenant's database, resident or opened now (single flight per name). */
  readonly acquire: (name: string) => Effect.Effect<Db, TenantError>
  /** The hot path of a hit: the resident tenant's database (touched), or undefined. */
  readonly hit: (name: string) => Db | undefined
  /** Holds a resident tenant (it is never evicted) until `release`; undefined if it is not resident. */
  readonly retain: (name: string) => Lease | undefined
  readonly release: (lease: Lease) => void
  /** Acquires and holds: again if the tenant was closed in between (another tenant's load may run meanwhile). */
  readonly hold: (name: string) => Effect.Effect<Lease, TenantError>
  /** As `hold`, released when the scope closes. */
  readonly lease: (name: string) => Effect.Effect<Db, TenantError, Scope.Scope>
  readonly stats: Effect.Effect<TenantStats>
  /** Forgets a tenant that was unregistered. */
  readonly forget: (name: string) => Effect.Effect<void>
}

/** A hold on a tenant. */
export interface Lease {
  readonly db: Db
  readonly tenant: object
}

export type { TenantError }

/** Tenant names reach URLs and schema names: letters, digits, `_` and `-` only. */
const tenantName = /^[A-Za-z0-9_-]{1,128}$/

const activityOf = (db: Db) =>
  [db.writer, ...db.readers].reduce((n, m) => n + m.counters.total + m.counters.inFlight, 0)

const busy = (t: Tenant) => t.leases > 0 || [t.db.writer, ...t.db.readers].some((m) => m.counters.inFlight > 0)

/** How often a new tenant looks again for a slot while every tenant is busy. */
const recheck = Duration.millis(5)

export const make = (registry: Registry, env: Env, config: ResolvedTenants): Effect.Effect<Tenants, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const clock = yield* Effect.clock
    // In least-recently-used order: a Map iterates in insertion order, and a touch re-inserts.
    const resident = new Map<string, Tenant>()
    const loading = new Map<string, Deferred.Deferred<Db, TenantError>>()
    const counts = { hits: 0, misses: 0, evictions: 0, resolveFailures: 0, waiting: 0 }
    /** Slots taken by loads under way: counted with the resident tenants against the budget. */
    const reserved = { current: 0 }

    const touch = (t: Tenant, now: number) => {
      t.lastUsed = now
      resident.delete(t.name)
      resident.set(t.name, t)
    }

    /** Ends the tenant's idle-expiry fiber (unless it is the one closing the tenant). */
    const stopExpiry = (t: Tenant) => {
      const fiber = t.expiry
      t.expiry = undefined
      return fiber === undefined ? Effect.void : Fiber.interrupt(fiber)
    }

    const evict = (t: Tenant) =>
      Effect.suspend(() => {
        if (resident.get(t.name) !== t) return Effect.void
        resident.delete(t.name)
        counts.evictions++
        return Effect.zipRight(Effect.ignore(registry.unregister(t.name)), stopExpiry(t))
      })

    /** Closes the least recently used idle tenant; false when every tenant is busy. */
    const makeRoom = Effect.suspend(() => {
      for (const t of resident.values()) {
        if (!busy(t)) return Effect.as(evict(t), true)
      }
      return Effect.succeed(false)
    })

    /**
     * Waits for a slot: at once when there is one, by closing an idle tenant (and waiting until its connections are
     * closed), else until one frees up, for at most `acquireTimeout`.
     */
    const reserve = (name: string) =>
      Effect.gen(function*() {
        const started = yield* Clock.currentTimeMillis
        // The budget is shared by the resident tenants and the loads that have reserved their slot.
        while (resident.size + reserved.current >= config.maxClients) {
          if (yield* makeRoom) continue
          const waited = (yield* Clock.currentTimeMillis) - started
          if (waited >= config.acquireTimeout) {
            return yield* new TenantCapacityError({ tenant: name, maxClients: config.maxClients, waitedMs: waited })
          }
          counts.waiting++
          yield* Effect.sleep(Duration.min(recheck, Duration.millis(config.acquireTimeout - waited))).pipe(
            Effect.ensuring(Effect.sync(() => counts.waiting--))
          )
        }
        reserved.current++
      })

    /** Closes the tenant once it has been unused for `idleTimeout`. */
    const expire = (t: Tenant): Effect.Effect<void> =>
      Effect.gen(function*() {
        while (resident.get(t.name) === t) {
          const now = yield* Clock.currentTimeMillis
          const due = t.lastUsed + config.idleTimeout
          if (now < due) {
            yield* Effect.sleep(Duration.millis(due - now))
            continue
          }
          const activity = activityOf(t.db)
          if (activity !== t.activity || busy(t)) {
            // Used through a client it handed out: idle from now on.
            t.activity = activity
            t.lastUsed = now
            continue
          }
          t.expiry = undefined // this fiber: it ends with the eviction
          return yield* evict(t)
        }
      })

    const load = (name: string, done: Deferred.Deferred<Db, TenantError>) => {
      let slotted = false
      return Effect.gen(function*() {
        yield* reserve(name)
        slotted = true
        const entry = yield* Effect.tryPromise({
          try: async () => config.resolve(name, { connectionLimit: config.connectionLimit }),
          catch: (cause) => new TenantResolveError({ tenant: name, cause })
        }).pipe(Effect.tapError(() => Effect.sync(() => counts.resolveFailures++)))
        if (entry === undefined || entry === null) {
          counts.resolveFailures++
          return yield* Effect.fail(new UnknownDatabaseError({ database: name, registered: [] }))
        }
        yield* registry.register(name, entry as ClientEntry, true)
        const db = registry.find(name)!
        yield* registry.connected(name)
        const now = yield* Clock.currentTimeMillis
        const t: Tenant = { name, db, leases: 0, lastUsed: now, activity: activityOf(db), expiry: undefined }
        resident.set(name, t)
        reserved.current--
        slotted = false
        // Interruptible whatever forked it (a lease is acquired uninterruptibly): the scope must be able to end it.
        t.expiry = yield* forkIn(env, Effect.interruptible(expire(t)), scope)
        return db
      }).pipe(
        Effect.onExit((exit) =>
          Effect.zipRight(
            Effect.sync(() => {
              loading.delete(name)
              // A load that failed after reserving gives its slot back.
              if (slotted) reserved.current--
            }),
            Deferred.done(done, exit)
          )
        )
      )
    }

    const acquire = (name: string): Effect.Effect<Db, TenantError> =>
      Effect.gen(function*() {
        if (typeof name !== "string" || !tenantName.test(name)) {
          return yield* Effect.fail(
            new InvalidArgumentError({
              path: "tenant",
              reason: `a tenant name has 1 to 128 letters, digits, '_' or '-', got ${JSON.stringify(name)}`
            })
          )
        }
        const t = resident.get(name)
        if (t !== undefined) {
          if (registry.find(name) === t.db) {
            counts.hits++
            touch(t, yield* Clock.currentTimeMillis)
            return t.db
          }
          resident.delete(name) // unregistered behind our back
        }
        const pending = loading.get(name)
        if (pending !== undefined) return yield* Deferred.await(pending)
        counts.misses++
        const done = yield* Deferred.make<Db, TenantError>()
        loading.set(name, done)
        // The load runs to its end even if this caller is interrupted: others may be waiting on it.
        yield* forkIn(env, Effect.interruptible(load(name, done)), scope)
        return yield* Deferred.await(done)
      })

    const hit = (name: string): Db | undefined => {
      const t = resident.get(name)
      if (t === undefined || registry.find(name) !== t.db) return undefined
      counts.hits++
      touch(t, clock.unsafeCurrentTimeMillis())
      return t.db
    }

    const retain = (name: string): Lease | undefined => {
      const t = resident.get(name)
      if (t === undefined || registry.find(name) !== t.db) return undefined
      t.leases++
      return { db: t.db, tenant: t }
    }

    const release = (lease: Lease) => {
      const t = lease.tenant as Tenant
      t.leases--
      t.lastUsed = clock.unsafeCurrentTimeMillis()
    }

    /** Acquires and holds, again if the tenant was evicted in between (another tenant's load may run meanwhile). */
    const hold = (name: string): Effect.Effect<Lease, TenantError> =>
      Effect.flatMap(acquire(name), () => {
        const held = retain(name)
        return held === undefined ? hold(name) : Effect.succeed(held)
      })

    const lease = (name: string) =>
      Effect.map(Effect.acquireRelease(hold(name), (held) => Effect.sync(() => release(held))), (held) => held.db)

    return {
      acquire,
      hit,
      retain,
      release,
      hold,
      lease,
      stats: Effect.sync(() => ({
        resident: resident.size,
        leased: [...resident.values()].filter((t) => t.leases > 0).length,
        waiting: counts.waiting,
        hits: counts.hits,
        misses: counts.misses,
        evictions: counts.evictions,
        resolveFailures: counts.resolveFailures
      })),
      forget: (name) =>
        Effect.suspend(() => {
          const t = resident.get(name)
          if (t === undefined) return Effect.void
          resident.delete(name)
          return stopExpiry(t)
        })
    }
  })
