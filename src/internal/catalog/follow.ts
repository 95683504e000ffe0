/**
 * A process following the tenant catalog: looks tenants up on a miss, LISTENs on one dedicated session connection
 * for changes, and checks its resident tenants against the catalog after each (re)connection and every
 * `pollInterval`, so a lost notification costs at most that long. The engine's fence, not this, is what stops a
 * process that hears nothing at all.
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import { ConnectionError } from "../../Errors.js"
import type { ResolvedTenants } from "../../Options.js"
import { errorSummary } from "../../Redact.js"
import type { CatalogPool } from "./drivers.js"
import { loadPg, openCatalogPool } from "./drivers.js"
import { channel, columns, heartbeatMs, toRow } from "./store.js"
import type { Row, State } from "./store.js"

/** A tenant's state as a process learns it: `removed` when its row is gone. */
export interface Change {
  readonly name: string
  readonly state: State | "removed"
  readonly epoch: number
}

export interface Follower {
  /** The tenant's row, or undefined (none, or still being created). ConnectionError when the catalog is unreachable. */
  readonly lookup: (name: string) => Effect.Effect<Row | undefined, ConnectionError>
  /** Checks `names` against the catalog now. */
  readonly resync: Effect.Effect<void, ConnectionError>
  /** Tells a mover this process has drained its writes to `name` at `epoch` (state `moving`) and holds new ones. */
  readonly ack: (name: string, epoch: number) => Effect.Effect<void>
  /**
   * The row a move's switch will write for `name`, fenced at `epoch`: the target's server and location, active, at
   * epoch + 1. Undefined when the row is no longer that fence (already switched, or aborted).
   */
  readonly target: (name: string, epoch: number) => Effect.Effect<Row | undefined, ConnectionError>
}

type Catalog = NonNullable<ResolvedTenants["catalog"]>

const unreachable = (e: unknown) =>
  e instanceof ConnectionError
    ? e
    : new ConnectionError({ database: "catalog", attempts: 1, reason: errorSummary(e), cause: e })

/** How long a lost LISTEN connection waits before it connects again. */
const reconnectDelay = Duration.seconds(1)
/** How long the first notification (our own probe) may take before we say notifications do not arrive. */
const probeTimeout = Duration.seconds(2)

export const follow = (
  config: Catalog,
  apply: (changes: ReadonlyArray<Change>) => Effect.Effect<void>,
  resident: () => ReadonlyArray<string>,
  log: ((message: string) => void) | undefined
): Effect.Effect<Follower, never, Scope.Scope> =>
  Effect.gen(function*() {
    let opened: Promise<CatalogPool> | undefined
    const pool = () => {
      if (opened === undefined) {
        opened = openCatalogPool(config.url, 2, true)
        opened.catch(() => (opened = undefined))
      }
      return opened
    }
    yield* Effect.addFinalizer(() => Effect.promise(async () => (await opened?.catch(() => undefined))?.end().catch(() => undefined)))

    const lookup = (name: string) =>
      Effect.tryPromise({
        try: async () => {
          const { rows } = await (await pool()).query(
            `SELECT ${columns} FROM flexidb.tenants WHERE name = $1 AND state <> 'creating'`,
            [name]
          )
          return rows.length === 0 ? undefined : toRow(rows[0]!)
        },
        catch: unreachable
      })

    const resync = Effect.suspend(() => {
      const names = resident()
      if (names.length === 0) return Effect.void
      return Effect.tryPromise({
        try: async () => {
          const { rows } = await (await pool()).query(
            `SELECT name, state, epoch FROM flexidb.tenants WHERE name = ANY($1) AND state <> 'creating'`,
            [names]
          )
          const found = new Map(rows.map((r) => [String(r.name), r]))
          return names.map((name): Change => {
            const r = found.get(name)
            return r === undefined
              ? { name, state: "removed", epoch: Number.MAX_SAFE_INTEGER }
              : { name, state: r.state as State, epoch: Number(r.epoch) }
          })
        },
        catch: unreachable
      }).pipe(Effect.flatMap(apply))
    })

    // A heartbeat, so a mover knows whom to wait for. A catalog not migrated for moves yet simply has no table.
    const instance = `${process.pid}-${Math.random().toString(36).slice(2, 10)}`
    // The last upsert sent: the shutdown waits for it, or it could land after the row's deletion.
    let beating: Promise<unknown> = Promise.resolve()
    let stopped = false
    const beat = Effect.tryPromise(() => {
      if (stopped) return Promise.resolve()
      beating = pool().then((p) =>
        p.query(
          `INSERT INTO flexidb.instances (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET seen_at = now()`,
          [instance]
        )
      )
      return beating
    }).pipe(Effect.ignore)
    // Added before the heartbeat's fiber, so it runs after that fiber has been interrupted.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        stopped = true
        if (opened === undefined) return Effect.void
        // A catalog that went away must not hold up the shutdown: its heartbeat simply goes stale. (Interruptible: a
        // finalizer is not, and a timeout that cannot interrupt what it times waits for it.)
        return Effect.interruptible(Effect.tryPromise(async () => {
          await beating.catch(() => undefined)
          await (await opened!).query(`DELETE FROM flexidb.instances WHERE id = $1`, [instance])
        })).pipe(Effect.timeout(Duration.seconds(5)), Effect.ignore)
      })
    )
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(beat, Effect.sleep(Duration.millis(heartbeatMs)))))
    const ack = (name: string, epoch: number) =>
      Effect.tryPromise(() =>
        pool().then((p) =>
          p.query(
            `INSERT INTO flexidb.move_acks (name, epoch, instance) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
            [name, epoch, instance]
          )
        )
      ).pipe(Effect.ignore)

    // Polling: bounds staleness when notifications are not delivered at all.
    yield* Effect.forkScoped(
      Effect.forever(Effect.zipRight(Effect.sleep(Duration.millis(config.pollInterval)), Effect.ignore(resync)))
    )

    if (config.listen) {
      const notes = yield* Queue.unbounded<string>()
      const probe = `probe:${Math.random().toString(36).slice(2)}`
      let warned = false
      // One LISTEN session at a time: connect, probe, resync, wait for its loss, wait a second, again.
      const session = Effect.gen(function*() {
        const lost = yield* Deferred.make<void>()
        const heard = yield* Deferred.make<void>()
        const client = yield* Effect.acquireRelease(
          Effect.tryPromise({
            try: async () => {
              const pg = await loadPg("catalog")
              const c = new pg.Client({ connectionString: config.url, connectionTimeoutMillis: 5_000 })
              c.on("error", () => Deferred.unsafeDone(lost, Effect.void))
              c.on("end", () => Deferred.unsafeDone(lost, Effect.void))
              c.on("notification", (n) => {
                if (n.payload === probe) Deferred.unsafeDone(heard, Effect.void)
                else if (n.payload !== undefined) Queue.unsafeOffer(notes, n.payload)
              })
              await c.connect()
              await c.query(`LISTEN ${channel}`)
              return c
            },
            catch: unreachable
          }),
          (c) => Effect.promise(() => c.end().catch(() => undefined))
        )
        void client
        // Our own notification, sent through another connection, must come back on this one: through PgBouncer in
        // transaction mode it never does.
        yield* Effect.tryPromise(() => pool().then((p) => p.query(`SELECT pg_notify($1, $2)`, [channel, probe]))).pipe(Effect.ignore)
        const arrived = yield* Deferred.await(heard).pipe(Effect.timeout(probeTimeout), Effect.isSuccess)
        if (!arrived && !warned) {
          warned = true
          log?.(
            `Tenant catalog: notifications do not arrive on the LISTEN connection — is tenants.catalog.url going ` +
              `through PgBouncer in transaction mode? LISTEN needs a session connection: point it at PostgreSQL ` +
              `directly (or a session-mode pool). Until then changes are picked up every ${config.pollInterval} ms.`
          )
        }
        yield* Effect.ignore(resync)
        yield* Deferred.await(lost)
      }).pipe(Effect.scoped)
      yield* Effect.forkScoped(
        Effect.forever(Effect.zipRight(Effect.ignore(session), Effect.sleep(reconnectDelay)))
      )
      yield* Effect.forkScoped(
        Effect.forever(
          Effect.flatMap(Queue.take(notes), (payload) => {
            try {
              const p = JSON.parse(payload) as Change
              if (typeof p.name !== "string" || typeof p.epoch !== "number") return Effect.void
              return apply([p])
            } catch {
              return Effect.void
            }
          })
        )
      )
    }
    const target = (name: string, epoch: number) =>
      Effect.tryPromise({
        try: async () => {
          const { rows } = await (await pool()).query(
            `SELECT t.name, m.to_server AS server, t.kind, m.to_location AS location, 'active' AS state, t.epoch + 1 AS epoch
             FROM flexidb.tenants t JOIN flexidb.moves m USING (name)
             WHERE t.name = $1 AND t.state = 'moving' AND t.epoch = $2`,
            [name, epoch]
          )
          return rows.length === 0 ? undefined : toRow(rows[0]!)
        },
        catch: unreachable
      })
    return { lookup, resync, ack, target }
  })
