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
import * as MutableRef from "effect/MutableRef"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import type { ClientEntry, PrismaClientLike, TenantStats } from "../Client.js"
import type { TenantError } from "../Errors.js"
import {
  CatalogError,
  InvalidArgumentError,
  TenantCapacityError,
  TenantResolveError,
  TenantMovingError,
  TenantSuspendedError,
  UnknownDatabaseError
} from "../Errors.js"
import type { ResolvedTenants } from "../Options.js"
import type { Change, Follower } from "./catalog/follow.js"
import { cutByMove, fenceAheadMs } from "./catalog/cut.js"
import { follow } from "./catalog/follow.js"
import { parseServers, tenantUrl } from "./catalog/servers.js"
import type { Row } from "./catalog/store.js"
import { forkIn } from "./database.js"
import type { Db } from "./database.js"
import type { Env } from "./hotPath.js"
import type { Registry } from "./registry.js"
import * as Telemetry from "./telemetry.js"

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
  /** The catalog's epoch it was opened at (with `catalog`): a higher one means it must be reopened or closed. */
  readonly epoch: number | undefined
  /** Superseded by a catalog change: out of the cache, writes refused, closed when its last lease ends. */
  retired: boolean
}

export interface Tenants {
  /** The tenant's database, resident or opened now (single flight per name). */
  readonly acquire: (name: string) => Effect.Effect<Db, TenantError>
  /** The hot path of a hit: the resident tenant's database (touched), or undefined. */
  readonly hit: (name: string) => Db | undefined
  /**
   * Holds a resident tenant (it is never evicted) until `release`, counted as a hit; undefined if it is not resident
   * (then `hold` acquires it, counted as a miss).
   */
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

const unknownTenant = (name: string) => new UnknownDatabaseError({ database: name, registered: [], tenant: true })

/** What a server or driver says when the database itself is not there (not a table: the probe is `SELECT 1`). */
const missingCodes = new Set(["P1003", "3D000", "1049", "ER_BAD_DB_ERROR", "SQLITE_CANTOPEN"])
const missingMessage =
  /database "[^"]*" does not exist|Unknown database|no: 1049|unable to open database file|directory does not exist/i

/** Whether `error` (or a cause under it, the driver adapter's included) says the database does not exist. */
export const databaseMissing = (error: unknown, depth = 0): boolean => {
  if (typeof error !== "object" || error === null || depth > 5) return false
  const e = error as Record<string, unknown>
  for (const c of [e.code, e.errno, e.originalCode]) {
    if ((typeof c === "string" || typeof c === "number") && missingCodes.has(String(c))) return true
  }
  if (e.kind === "DatabaseDoesNotExist") return true
  for (const m of [e.message, e.originalMessage, typeof e.cause === "string" ? e.cause : undefined]) {
    if (typeof m === "string" && missingMessage.test(m)) return true
  }
  const adapter = (e.meta as Record<string, unknown> | undefined)?.driverAdapterError as Record<string, unknown> | undefined
  return [adapter, adapter?.cause, typeof e.cause === "object" ? e.cause : undefined].some((c) =>
    c !== undefined && c !== error && databaseMissing(c, depth + 1)
  )
}

/** The writer of a client entry (a client, or a `{ read, write }` pair). */
const writerOf = (entry: unknown): PrismaClientLike | undefined => {
  const e = entry as { write?: unknown; $queryRawUnsafe?: unknown }
  const c = typeof e?.$queryRawUnsafe === "function" ? e : e?.write
  return typeof (c as PrismaClientLike | undefined)?.$queryRawUnsafe === "function" ? c as PrismaClientLike : undefined
}

/** Every client of an entry (a client, or a writer and its replicas), as Prisma clients. */
const clientsOf = (entry: unknown): Array<PrismaClientLike> => {
  const writer = writerOf(entry)
  if (writer === undefined) return []
  const e = entry as { read?: unknown }
  const read = Array.isArray(e.read) ? e.read : e.read === undefined ? [] : [e.read]
  return [writer, ...read.map((c) => ((c as { client?: PrismaClientLike }).client ?? c) as PrismaClientLike)]
}

const disconnectAll = (entry: unknown) => Promise.allSettled(clientsOf(entry).map((c) => c.$disconnect())).then(() => undefined)

/**
 * Whether a probe of the tenant's writer says its database does not exist; then its clients are disconnected. Any
 * other outcome (it answers, or its server is down) leaves the tenant to the registry, which connects and reconnects.
 */
const missing = (entry: unknown): Effect.Effect<boolean> => {
  const writer = writerOf(entry)
  if (writer === undefined) return Effect.succeed(false)
  return Effect.promise(() =>
    writer.$connect().then(() => writer.$queryRawUnsafe("SELECT 1")).then(() => false, (error) => databaseMissing(error))
  ).pipe(Effect.tap((gone) => gone ? Effect.promise(() => disconnectAll(entry)) : Effect.void))
}

/** How often a caller held by a move's cutover reads the tenant's row again. */
const moveRecheckMs = 20

/** How long a client opened on a move's target waits to be taken after the fence began, on top of moveTimeout. */
const warmUnusedMs = 30_000

/** Whether two rows open the same client: a warm one is taken only by the row it was opened for. */
const sameOpening = (a: Row, b: Row) =>
  a.name === b.name && a.server === b.server && a.kind === b.kind && a.location === b.location && a.epoch === b.epoch

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
    /** Retired tenants still registered (leased): a reopen of the name waits for them to close. */
    const retiring = new Map<string, Deferred.Deferred<void>>()
    /** The highest epoch heard for a name while it was loading: the load retires what it opened if it is older. */
    const heard = new Map<string, number>()
    /** Retired tenants a lease still holds: a later suspend or remove shuts them too. */
    const leased = new Map<string, Tenant>()
    /**
     * Clients opened on a move's target while its fence is on, for the PostgreSQL database tenants this process has
     * open: the switch finds the target's client built and connected, so a held write waits for the fence only, not
     * for a new Prisma client and its first connection too. The load after the switch takes it; it is closed when
     * the move ends elsewhere (aborted, suspended, removed) or nothing takes it.
     */
    const warm = new Map<string, { readonly row: Row; readonly entry: Promise<unknown> }>()

    const dropWarm = (name: string) =>
      Effect.suspend(() => {
        const w = warm.get(name)
        if (w === undefined) return Effect.void
        warm.delete(name)
        return Effect.promise(() => w.entry.then(disconnectAll))
      })

    /** Opens the move's target for `c` (state `moving`) ahead of its switch. */
    const warmUp = (c: Change) =>
      Effect.gen(function*() {
        const to = yield* Effect.orElseSucceed(follower!.target(c.name, c.epoch), () => undefined)
        if (to === undefined || to.kind !== "database") return
        if (!(servers instanceof Map) || servers.get(to.server)?.engine !== "postgresql") return
        if (warm.get(c.name)?.row.epoch === to.epoch) return // heard twice (notification and resync)
        yield* dropWarm(c.name)
        const entry = clientOf(to).then(
          async (e) => {
            const writer = writerOf(e)
            try {
              await writer?.$connect()
              await writer?.$queryRawUnsafe("SELECT 1")
              return e
            } catch {
              await disconnectAll(e)
              return undefined
            }
          },
          () => undefined
        )
        warm.set(c.name, { row: to, entry })
        yield* Effect.sleep(Duration.millis(catalog!.moveTimeout + warmUnusedMs))
        if (warm.get(c.name)?.entry === entry) yield* dropWarm(c.name)
      })

    /** The client for `row`: the one opened ahead of the switch that led to it, else a new one. */
    const open = async (row: Row) => {
      const w = warm.get(row.name)
      if (w !== undefined) {
        warm.delete(row.name)
        const entry = await w.entry
        if (entry !== undefined && sameOpening(w.row, row)) return entry
        if (entry !== undefined) void disconnectAll(entry)
      }
      return clientOf(row)
    }

    /** Waits until none of `t`'s queries is in flight (writer and replicas), for at most `moveTimeout`. */
    const settled = (t: Tenant, members: ReadonlyArray<Db["writer"]> = [t.db.writer, ...t.db.readers]) =>
      Effect.gen(function*() {
        const started = yield* Clock.currentTimeMillis
        while (members.some((m) => m.counters.inFlight > 0)) {
          if ((yield* Clock.currentTimeMillis) - started >= (catalog?.moveTimeout ?? 5_000)) return
          yield* Effect.sleep(Duration.millis(2))
        }
      })

    /**
     * Closes a retired tenant once its queries in flight have finished (for at most `moveTimeout`: a disconnect under
     * a write would roll back Prisma's own transaction around it): unregistered (its client disconnects), and a
     * reopen of its name may go on.
     */
    const close = (t: Tenant) =>
      Effect.zipRight(settled(t), Effect.suspend(() => {
        const gone = retiring.get(t.name)
        if (leased.get(t.name) === t) leased.delete(t.name)
        if (registry.find(t.name) !== t.db) {
          retiring.delete(t.name)
          return gone === undefined ? Effect.void : Deferred.succeed(gone, undefined)
        }
        return Effect.ignore(registry.unregister(t.name)).pipe(
          Effect.zipRight(Effect.sync(() => retiring.delete(t.name))),
          Effect.zipRight(gone === undefined ? Effect.void : Deferred.succeed(gone, undefined))
        )
      }))

    /**
     * A catalog change superseded `t`: no new caller gets it, writes are refused now, it closes when its leases end.
     * `shut` (suspended or removed): no new operation at all, reads included, even through a client a lease holds —
     * each rejects with ClosedError, as through a client kept past its tenant's close.
     */
    const retire = (t: Tenant, shut = false) =>
      Effect.gen(function*() {
        if (shut) MutableRef.set(t.db.writer.closed, true) // one cell for the writer and its replicas
        if (t.retired) return
        t.retired = true
        if (t.leases > 0) leased.set(t.name, t)
        if (resident.get(t.name) === t) resident.delete(t.name)
        yield* stopExpiry(t)
        if (!retiring.has(t.name)) retiring.set(t.name, yield* Deferred.make<void>())
        registry.preventWrites(t.name)
        // Forked: the client's disconnect must not hold up the next change the follower applies.
        if (t.leases === 0) yield* forkIn(env, close(t), scope)
      })

    /**
     * A move's fence reached this process: the tenant is retired (new writes refused on it, new callers held in
     * `load`); once its queries in flight have finished — or after `moveTimeout` — the mover is told.
     */
    const drainForMove = (t: Tenant | undefined, c: Change) =>
      Effect.zipRight(t === undefined ? Effect.void : settled(t, [t.db.writer]), follower!.ack(c.name, c.epoch))

    const applyChanges = (changes: ReadonlyArray<Change>) =>
      Effect.forEach(changes, (c) =>
        Effect.suspend(() => {
          if (loading.has(c.name)) heard.set(c.name, Math.max(heard.get(c.name) ?? 0, c.epoch))
          const shut = c.state === "suspended" || c.state === "removed"
          const held = leased.get(c.name)
          if (shut && held !== undefined && held.epoch !== undefined && c.epoch > held.epoch) {
            MutableRef.set(held.db.writer.closed, true)
          }
          const t = resident.get(c.name)
          const retired = t !== undefined && t.epoch !== undefined && c.epoch > t.epoch ? retire(t, shut) : Effect.void
          if (c.state !== "moving") {
            const w = warm.get(c.name)
            return w !== undefined && w.row.epoch !== c.epoch ? Effect.zipRight(retired, dropWarm(c.name)) : retired
          }
          const used = t !== undefined || loading.has(c.name)
          return Effect.all([
            retired,
            forkIn(env, drainForMove(t, c), scope),
            used ? forkIn(env, warmUp(c), scope) : Effect.void
          ], { discard: true })
        }), { discard: true })

    const catalog = config.catalog
    const servers = catalog === undefined ? undefined : parseServers(catalog.servers)
    const follower: Follower | undefined = catalog === undefined
      ? undefined
      : yield* follow(catalog, applyChanges, () => [...resident.keys()], env.options.log)
    // Interruptible, within disconnectTimeout: a finalizer is not, and a client whose server went silent never ends.
    yield* Effect.addFinalizer(() =>
      Effect.forEach(
        [...warm.keys()],
        (name) => Effect.interruptible(dropWarm(name)).pipe(Effect.timeout(Duration.millis(env.options.disconnectTimeout)), Effect.ignore),
        { discard: true }
      )
    )

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
        // Asked before a slot is taken: a random name costs one call to `exists` and nothing else.
        if (config.exists !== undefined) {
          const known = yield* Effect.tryPromise({
            try: async () => config.exists!(name),
            catch: (cause) => new TenantResolveError({ tenant: name, cause })
          }).pipe(
            Effect.tapError(() => Effect.sync(() => counts.resolveFailures++))
          )
          if (known !== true) {
            counts.resolveFailures++
            return yield* Effect.fail(unknownTenant(name))
          }
        }
        // With a catalog, the row says whether the tenant exists and may be served, before a slot is taken.
        let row: Row | undefined
        if (follower !== undefined) {
          heard.delete(name)
          row = yield* follower.lookup(name).pipe(Effect.tapError(() => Effect.sync(() => counts.resolveFailures++)))
          // A move's cutover: held until the row points somewhere active (the target, or the source if it was
          // aborted), for at most moveTimeout.
          if (row?.state === "moving") {
            const started = yield* Clock.currentTimeMillis
            while (row?.state === "moving") {
              const waited = (yield* Clock.currentTimeMillis) - started
              if (waited >= catalog!.moveTimeout) {
                counts.resolveFailures++
                return yield* Effect.fail(new TenantMovingError({ tenant: name, waitedMs: waited, outcomeUnknown: false }))
              }
              yield* Effect.sleep(Duration.millis(Math.min(moveRecheckMs, catalog!.moveTimeout - waited)))
              heard.delete(name)
              row = yield* follower.lookup(name).pipe(Effect.tapError(() => Effect.sync(() => counts.resolveFailures++)))
            }
          }
          if (row === undefined || row.state === "suspended") {
            counts.resolveFailures++
            return yield* Effect.fail(row === undefined ? unknownTenant(name) : new TenantSuspendedError({ tenant: name }))
          }
          // The client this name had before a change is still closing (its leases have not ended).
          const gone = retiring.get(name)
          if (gone !== undefined) yield* Deferred.await(gone)
        }
        yield* reserve(name)
        slotted = true
        const entry = yield* Effect.tryPromise({
          try: async () => row === undefined ? config.resolve!(name, { connectionLimit: config.connectionLimit }) : open(row),
          catch: (cause) => new TenantResolveError({ tenant: name, cause })
        }).pipe(Effect.tapError(() => Effect.sync(() => counts.resolveFailures++)))
        if (entry === undefined || entry === null) {
          counts.resolveFailures++
          return yield* Effect.fail(unknownTenant(name))
        }
        // A tenant whose database is gone would be kept down and reconnected forever: asked first, and refused. A
        // catalog row says it exists: asked only if the first connection fails (one round trip less to the first query).
        // The probe connects the clients: telemetry watches their adapters' pools and servers from before that.
        Telemetry.watchEntry(entry, env.telemetry, env.telemetry !== undefined || env.effectTelemetry)
        if (row === undefined && (yield* missing(entry))) {
          counts.resolveFailures++
          return yield* Effect.fail(unknownTenant(name))
        }
        yield* registry.register(name, entry as ClientEntry, true)
        const db = registry.find(name)!
        const up = yield* registry.connected(name)
        if (!up && row !== undefined && (yield* missing(entry))) {
          yield* Effect.ignore(registry.unregister(name))
          counts.resolveFailures++
          return yield* Effect.fail(unknownTenant(name))
        }
        const now = yield* Clock.currentTimeMillis
        const t: Tenant = {
          name,
          db,
          leases: 0,
          lastUsed: now,
          activity: activityOf(db),
          expiry: undefined,
          epoch: row?.epoch,
          retired: false
        }
        resident.set(name, t)
        reserved.current--
        slotted = false
        // Interruptible whatever forked it (a lease is acquired uninterruptibly): the scope must be able to end it.
        t.expiry = yield* forkIn(env, Effect.interruptible(expire(t)), scope)
        // A change heard while it opened: what it opened is already out of date.
        if (row !== undefined && (heard.get(name) ?? 0) > row.epoch) yield* retire(t)
        return db
      }).pipe(
        Effect.onExit((exit) =>
          Effect.zipRight(
            Effect.sync(() => {
              loading.delete(name)
              heard.delete(name)
              // A load that failed after reserving gives its slot back.
              if (slotted) reserved.current--
            }),
            Deferred.done(done, exit)
          )
        )
      )
    }

    /** The client of a catalog row, from this app's own servers and `client`. */
    const clientOf = async (row: Row) => {
      const server = servers instanceof Map ? servers.get(row.server) : undefined
      if (server === undefined) {
        throw new CatalogError({
          operation: "open",
          tenant: row.name,
          reason: servers instanceof Map
            ? `its server '${row.server}' is not in tenants.catalog.servers: add it (the same servers as the catalog's)`
            : servers!.message
        })
      }
      const client = await catalog!.client(tenantUrl(server, row.kind, row.location), {
        name: row.name,
        server: row.server,
        kind: row.kind,
        location: row.location,
        epoch: row.epoch,
        connectionLimit: config.connectionLimit
      })
      // A write cut by a move's fence this process had not heard of: TenantMovingError, and the row applied.
      return cutByMove(
        client,
        row,
        (name) => Runtime.runPromise(env.runtime)(follower!.lookup(name)),
        (now) => Runtime.runFork(env.runtime)(applyChanges([{ name: now.name, state: now.state, epoch: now.epoch }])),
        Math.min(fenceAheadMs, (env.options.operationTimeout ?? Infinity) / 2)
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

    /** Holds a resident tenant, without counting: `hold` counted it when it acquired. */
    const holdResident = (name: string): Lease | undefined => {
      const t = resident.get(name)
      if (t === undefined || registry.find(name) !== t.db) return undefined
      t.leases++
      return { db: t.db, tenant: t }
    }

    /** A hit of `withTenant()`: counted like `tenant()`'s (a miss is counted by `hold`'s acquire). */
    const retain = (name: string): Lease | undefined => {
      const held = holdResident(name)
      if (held !== undefined) counts.hits++
      return held
    }

    const release = (lease: Lease) => {
      const t = lease.tenant as Tenant
      t.leases--
      t.lastUsed = clock.unsafeCurrentTimeMillis()
      if (t.retired && t.leases === 0) Runtime.runFork(env.runtime)(close(t))
    }

    /** Acquires and holds, again if the tenant was evicted in between (another tenant's load may run meanwhile). */
    const hold = (name: string): Effect.Effect<Lease, TenantError> =>
      Effect.flatMap(acquire(name), () => {
        const held = holdResident(name)
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
