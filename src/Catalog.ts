/**
 * `flexidb/catalog`: a tenant catalog in PostgreSQL that every app instance follows. The catalog says where each
 * tenant lives (a server's name and a location on it — never a URL or a credential) and whether it is active;
 * `create`, `suspend`, `resume` and `remove` change it for every process at once and fence the tenant in its own
 * engine, so a process that missed the change still cannot write where it should not.
 *
 * @since 0.2.0
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import {
  CatalogError,
  ConnectionError,
  DuplicateDatabaseError,
  InvalidArgumentError,
  isFlexiDBError,
  UnknownDatabaseError
} from "./Errors.js"
import type { Admin, Target } from "./internal/catalog/engines.js"
import * as engines from "./internal/catalog/engines.js"
import { openAdmin, openCatalogPool, unreachable } from "./internal/catalog/drivers.js"
import type { CatalogPool } from "./internal/catalog/drivers.js"
import type { Kind, Server } from "./internal/catalog/servers.js"
import { checkPlacement, checkTenantName, defaultKind, locationOf, parseServers } from "./internal/catalog/servers.js"
import * as moves from "./internal/catalog/move.js"
import type { MoveContext } from "./internal/catalog/move.js"
import { columns, migrate, notify, toRow, updateAndNotify } from "./internal/catalog/store.js"
import type { Row, State } from "./internal/catalog/store.js"
import type { MoveOptions, MoveRecovery, MoveReport } from "./internal/catalog/move.js"
import { errorSummary } from "./Redact.js"

/**
 * `Kind`: how a tenant lives on its server (`database`, `schema`, `file`). `Row`: a catalog row, `{ name, server,
 * kind, location, state, epoch, source? }` — a server's name and a location on it, never a URL; `source` is the
 * read-only copy a move left behind. `State`: `active`, `suspended`, or `moving` (a move's cutover).
 *
 * @since 0.2.0
 */
export type { Kind } from "./internal/catalog/servers.js"
/** @since 0.2.0 */
export type { Row, State } from "./internal/catalog/store.js"
/**
 * `MoveOptions`: `{ server, onProgress?, copyTimeout?, catchUpTimeout?, moveTimeout? }`. `MoveProgress`: what `onProgress` hears
 * (step, rows and bytes on the target, lag in bytes, the fence's milliseconds). `MoveReport`: a finished move
 * (the new row, rows, bytes, copy and fence milliseconds, checksum, the instances that acknowledged the fence). `MoveRecovery`: what `resumeMove` /
 * `abortMove` did (`none` when no move was recorded).
 *
 * @since 0.2.0
 */
export type { MoveOptions, MoveProgress, MoveRecovery, MoveReport } from "./internal/catalog/move.js"

/**
 * Where the catalog is and which servers tenants may live on.
 *
 * @since 0.2.0
 */
export interface CatalogConfig {
  /** The PostgreSQL database holding the catalog (flexidb creates and migrates schema `flexidb` in it). */
  readonly url: string
  /**
   * `{ [server]: baseUrl }` from the app's config: `postgresql://…/postgres` (a maintenance database: tenants'
   * databases are created from it; for `schema` tenants, the database holding the schemas), `mysql://…` or
   * `mariadb://…`, or `file:/folder` for SQLite files. Rows store only the server's name.
   */
  readonly servers: Readonly<Record<string, string>>
  /** The tenant schema's Prisma migrations folder: builds schema and MariaDB tenants (and templateless ones). */
  readonly migrations?: string | undefined
  /**
   * A move's lease (ms): every open catalog looks every `moveLease / 2` for a recorded move untouched this long whose
   * mover is gone (its lock free), and undoes it back to its source (once switched: cleans it up), so a dead mover
   * never leaves a tenant fenced. Default 30,000.
   */
  readonly moveLease?: number | undefined
}

/**
 * What `create` builds.
 *
 * @since 0.2.0
 */
export interface CreateOptions {
  /** A server name of `servers`. */
  readonly server: string
  /** Default: `database` on PostgreSQL and MariaDB, `file` on a `file:` server. */
  readonly kind?: Kind | undefined
  /**
   * PostgreSQL database tenants: the database to copy (`CREATE DATABASE … TEMPLATE`), kept migrated. SQLite: the
   * file to copy (under the server's folder, or an absolute path). Without one, the `migrations` build the tenant.
   */
  readonly template?: string | undefined
}

/**
 * What `remove` removes: with `source: true`, only the read-only copy a move left behind (`row.source`); with
 * `drop: true`, the tenant's data too.
 *
 * @since 0.2.0
 */
export interface RemoveOptions {
  readonly drop?: boolean | undefined
  readonly source?: boolean | undefined
}

/**
 * Which rows `list` yields.
 *
 * @since 0.2.0
 */
export interface ListOptions {
  readonly state?: State | undefined
  readonly server?: string | undefined
  /** Rows fetched per query. Default 1,000. */
  readonly pageSize?: number | undefined
}

/** The errors of a catalog operation. @since 0.2.0 */
export type CatalogFailure =
  | InvalidArgumentError
  | DuplicateDatabaseError
  | UnknownDatabaseError
  | ConnectionError
  | CatalogError

/**
 * The catalog as an Effect service.
 *
 * @since 0.2.0
 */
export interface Service {
  /**
   * Builds tenant `name` on `server` and records it active: usable at once, its schema in place. Fails with
   * DuplicateDatabaseError when the name exists (in the catalog or on the server, whichever process created it),
   * InvalidArgumentError for a bad name, an unknown server or a kind the server cannot hold.
   */
  readonly create: (name: string, options: CreateOptions) => Effect.Effect<Row, CatalogFailure>
  /** Fences the tenant in its engine, then records it suspended (epoch + 1). UnknownDatabaseError if there is none. */
  readonly suspend: (name: string) => Effect.Effect<Row, CatalogFailure>
  /** Opens the fence and records the tenant active (epoch + 1). */
  readonly resume: (name: string) => Effect.Effect<Row, CatalogFailure>
  /**
   * Fences the tenant, drops its data with `{ drop: true }` (else it stays parked on its server), and deletes its row.
   * Also cleans up a tenant whose `create` died half-way (its row left 'creating').
   */
  readonly remove: (name: string, options?: RemoveOptions) => Effect.Effect<void, CatalogFailure>
  /**
   * Moves an active PostgreSQL `database` tenant to `server` while it is in use: the copy by logical replication,
   * then a fence (state `moving`: the source refuses writes in its engine), the catch-up, sequences, row counts, the
   * switch (the row points at the target; the source stays read-only as `row.source`) and a checksum of every table.
   * Fails with CatalogError when the source's server lacks `wal_level = logical` (before anything changes), when a
   * move of the tenant is unfinished or running; InvalidArgumentError across engines, for other kinds, or to the
   * server it is on. A failure before the switch puts the tenant back on its source, active.
   */
  readonly move: (name: string, options: MoveOptions) => Effect.Effect<MoveReport, CatalogFailure>
  /**
   * Finishes a move whose mover died: before the switch the copy is undone and the move run again; after it the
   * replication is cleaned up. `outcome: "none"` when no move is recorded.
   */
  readonly resumeMove: (name: string, options?: { readonly onProgress?: MoveOptions["onProgress"] }) => Effect.Effect<MoveRecovery, CatalogFailure>
  /** Undoes an unfinished move: the tenant active on its source, the target's copy dropped. Refused once switched. */
  readonly abortMove: (name: string) => Effect.Effect<MoveRecovery, CatalogFailure>
  /** The tenant's row, or undefined. */
  readonly get: (name: string) => Effect.Effect<Row | undefined, CatalogFailure>
  /** Every row in name order, fetched a page at a time (fine for 100,000 rows). */
  readonly list: (options?: ListOptions) => Stream.Stream<Row, CatalogFailure>
}

/**
 * The catalog service's Tag, provided by `Catalog.layer(config)`.
 *
 * @since 0.2.0
 */
export class CatalogService extends Context.Tag("flexidb/Catalog")<CatalogService, Service>() {}

/** A driver failure as a tagged error: unreachable → ConnectionError, anything else → CatalogError. */
const failure = (operation: string, where: string, tenant?: string) => (e: unknown): CatalogFailure =>
  isFlexiDBError(e)
    ? (e as CatalogFailure)
    : unreachable(e)
    ? new ConnectionError({ database: where, attempts: 1, reason: errorSummary(e), cause: e })
    : new CatalogError({ operation, tenant, reason: errorSummary(e), cause: e })

/**
 * Opens the catalog in the current scope: connects, creates or migrates its tables (once, under a lock, whatever
 * the number of processes), and closes every connection when the scope closes. Fails with ConnectionError when the
 * catalog cannot be reached and InvalidArgumentError for bad `servers`.
 *
 * @since 0.2.0
 */
export const make = (config: CatalogConfig): Effect.Effect<Service, InvalidArgumentError | ConnectionError | CatalogError, Scope.Scope> =>
  Effect.gen(function*() {
    if (typeof config !== "object" || config === null || typeof config.url !== "string") {
      return yield* new InvalidArgumentError({ path: "catalog.url", reason: "expected the catalog database's postgresql:// URL" })
    }
    const servers = parseServers(config.servers)
    if (servers instanceof InvalidArgumentError) return yield* servers
    const pool: CatalogPool = yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => openCatalogPool(config.url), catch: (e) => failure("open", "catalog")(e) as ConnectionError }),
      (p) => Effect.promise(() => p.end().catch(() => undefined))
    )
    yield* Effect.tryPromise({
      try: () => pool.session(migrate),
      catch: (e) => failure("open", "catalog")(e) as ConnectionError | CatalogError
    })
    const admins = new Map<string, Promise<Admin>>()
    yield* Effect.addFinalizer(() =>
      Effect.promise(() => Promise.allSettled([...admins.values()].map((a) => a.then((x) => x.end()))))
    )
    const adminOf = (server: Server): Promise<Admin | undefined> => {
      if (server.engine === "sqlite") return Promise.resolve(undefined)
      let a = admins.get(server.name)
      if (a === undefined) {
        a = openAdmin(server)
        admins.set(server.name, a)
        a.catch(() => admins.delete(server.name))
      }
      return a
    }
    const serverOf = (name: string): Server | InvalidArgumentError =>
      servers.get(name) ??
        new InvalidArgumentError({
          path: "server",
          reason: `unknown server '${name}' (known: ${[...servers.keys()].map((s) => `'${s}'`).join(", ") || "none"}): ` +
            `add it to servers (or FLEXIDB_SERVER_${name.toUpperCase()})`
        })
    const targetOf = (row: Row): Target | InvalidArgumentError => {
      const server = serverOf(row.server)
      return server instanceof InvalidArgumentError ? server : { name: row.name, server, kind: row.kind, location: row.location }
    }
    // The engines wait (a template in use, terminated sessions exiting) on this fiber's Clock.
    const runtime = yield* Effect.runtime<never>()
    const pause = (ms: number) => Runtime.runPromise(runtime)(Effect.sleep(ms))
    const unknownTenant = (name: string) => new UnknownDatabaseError({ database: name, registered: [], tenant: true })

    const create = (name: string, options: CreateOptions) =>
      Effect.gen(function*() {
        const bad = checkTenantName(name)
        if (bad !== undefined) return yield* bad
        if (typeof options !== "object" || options === null) {
          return yield* new InvalidArgumentError({ path: "create options", reason: "expected { server, kind?, template? }" })
        }
        const server = serverOf(options.server)
        if (server instanceof InvalidArgumentError) return yield* server
        const kind = options.kind ?? defaultKind(server.engine)
        const misplaced = checkPlacement(name, server, kind)
        if (misplaced !== undefined) return yield* misplaced
        const target: Target = { name, server, kind, location: locationOf(name, kind) }
        return yield* Effect.tryPromise({
          try: async () => {
            try {
              await pool.query(
                `INSERT INTO flexidb.tenants (name, server, kind, location, state) VALUES ($1, $2, $3, $4, 'creating')`,
                [name, server.name, kind, target.location]
              )
            } catch (e) {
              if ((e as { code?: unknown }).code === "23505") throw new DuplicateDatabaseError({ database: name })
              throw e
            }
            try {
              await engines.provision(await adminOf(server), target, options.template, config.migrations, pause)
            } catch (e) {
              await pool.query(`DELETE FROM flexidb.tenants WHERE name = $1 AND state = 'creating'`, [name]).catch(() => undefined)
              throw e
            }
            // Recorded active and announced in one statement: one round trip.
            const { rows } = await updateAndNotify(pool, `state = 'active', updated_at = now()`, `name = $1 AND state = 'creating'`, [name])
            if (rows.length === 0) {
              throw new CatalogError({ operation: "create", tenant: name, reason: "it was removed while it was being created" })
            }
            return toRow(rows[0]!)
          },
          catch: failure("create", options.server, name)
        })
      })

    /** Locks the row, runs the engine change, records the new state and tells every process, in one transaction. */
    const change = <A>(
      operation: string,
      name: string,
      apply: (row: Row, target: Target, admin: Admin | undefined, s: { query: typeof pool.query }) => Promise<A>,
      /** Also a row left 'creating' (a create that died half-way): only `remove` may clean it up. */
      creating = false
    ) =>
      Effect.suspend(() => {
        const bad = checkTenantName(name)
        if (bad !== undefined) return Effect.fail(bad)
        return Effect.tryPromise({
          try: () =>
            pool.session(async (s) => {
              await s.query("BEGIN")
              try {
                const { rows } = await s.query(
                  `SELECT ${columns} FROM flexidb.tenants WHERE name = $1${creating ? "" : " AND state <> 'creating'"} FOR UPDATE`,
                  [name]
                )
                if (rows.length === 0) throw unknownTenant(name)
                const row = toRow(rows[0]!)
                const target = targetOf(row)
                if (target instanceof InvalidArgumentError) throw target
                const result = await apply(row, target, await adminOf(target.server), s)
                await s.query("COMMIT")
                return result
              } catch (e) {
                await s.query("ROLLBACK").catch(() => undefined)
                throw e
              }
            }),
          catch: failure(operation, "catalog", name)
        })
      })

    const setState = (s: { query: typeof pool.query }, name: string, state: State) =>
      updateAndNotify(s, `state = $2, epoch = epoch + 1, updated_at = now()`, `name = $1`, [name, state]).then(({ rows }) =>
        toRow(rows[0]!)
      )

    const moveContext: MoveContext = {
      pool,
      catalogUrl: config.url,
      serverOf: (name) => serverOf(name),
      adminOf,
      pause,
      now: () => Runtime.runSync(runtime)(Clock.currentTimeMillis)
    }

    // The lease on moves: a dead mover's fence expires and the tenant goes back to its source.
    const lease = config.moveLease ?? 30_000
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.zipRight(
          Effect.sleep(Math.max(10, lease / 2)),
          Effect.ignore(Effect.tryPromise(() => moves.expire(moveContext, lease)))
        )
      )
    )

    const service: Service = {
      create,
      move: (name, options) =>
        Effect.suspend(() => {
          const bad = checkTenantName(name)
          if (bad !== undefined) return Effect.fail(bad)
          if (typeof options !== "object" || options === null || typeof options.server !== "string") {
            return Effect.fail(new InvalidArgumentError({ path: "move options", reason: "expected { server, onProgress? }" }))
          }
          return Effect.tryPromise({ try: () => moves.move(moveContext, name, options), catch: failure("move", "catalog", name) })
        }),
      resumeMove: (name, options) =>
        Effect.suspend(() => {
          const bad = checkTenantName(name)
          if (bad !== undefined) return Effect.fail(bad)
          return Effect.tryPromise({
            try: () => moves.resume(moveContext, name, options?.onProgress),
            catch: failure("move", "catalog", name)
          })
        }),
      abortMove: (name) =>
        Effect.suspend(() => {
          const bad = checkTenantName(name)
          if (bad !== undefined) return Effect.fail(bad)
          return Effect.tryPromise({ try: () => moves.abort(moveContext, name), catch: failure("move", "catalog", name) })
        }),
      suspend: (name) =>
        change("suspend", name, async (row, target, admin, s) => {
          await engines.fence(admin, target, pause)
          return row.state === "suspended" ? row : setState(s, name, "suspended")
        }),
      resume: (name) =>
        change("resume", name, async (row, target, admin, s) => {
          await engines.unfence(admin, target)
          return row.state === "active" ? row : setState(s, name, "active")
        }),
      remove: (name, options) =>
        options?.source === true
          ? Effect.suspend(() => {
            const bad = checkTenantName(name)
            if (bad !== undefined) return Effect.fail(bad)
            return Effect.tryPromise({ try: () => moves.removeSource(moveContext, name), catch: failure("remove", "catalog", name) })
          }).pipe(Effect.asVoid)
          : change("remove", name, async (row, target, admin, s) => {
          await engines.fence(admin, target, pause)
          if (options?.drop === true) await engines.drop(admin, target)
          await s.query(`DELETE FROM flexidb.tenants WHERE name = $1`, [name])
          await notify(s, name, "removed", row.epoch + 1)
        }, true),
      get: (name) =>
        Effect.suspend(() => {
          const bad = checkTenantName(name)
          if (bad !== undefined) return Effect.fail(bad)
          return Effect.tryPromise({
            try: async () => {
              const { rows } = await pool.query(
                `SELECT ${columns} FROM flexidb.tenants WHERE name = $1 AND state <> 'creating'`,
                [name]
              )
              return rows.length === 0 ? undefined : toRow(rows[0]!)
            },
            catch: failure("get", "catalog", name)
          })
        }),
      list: (options = {}) => {
        const pageSize = options.pageSize ?? 1000
        const where = [`state <> 'creating'`, `name > $1`]
        const params: Array<unknown> = []
        if (options.state !== undefined) {
          params.push(options.state)
          where.push(`state = $${params.length + 1}`)
        }
        if (options.server !== undefined) {
          params.push(options.server)
          where.push(`server = $${params.length + 1}`)
        }
        const sql = `SELECT ${columns} FROM flexidb.tenants WHERE ${where.join(" AND ")} ORDER BY name LIMIT ${Math.max(1, Math.floor(pageSize))}`
        return Stream.paginateChunkEffect("", (after: string) =>
          Effect.tryPromise({
            try: async () => {
              const { rows } = await pool.query(sql, [after, ...params])
              const page = rows.map(toRow)
              const next = page.length < pageSize ? Option.none<string>() : Option.some(page[page.length - 1]!.name)
              return [Chunk.unsafeFromArray(page), next] as const
            },
            catch: failure("list", "catalog")
          })
        )
      }
    }
    return service
  })

/**
 * The catalog as a Layer: opened when the layer is built, closed with its scope.
 *
 * @since 0.2.0
 */
export const layer = (config: CatalogConfig): Layer.Layer<CatalogService, InvalidArgumentError | ConnectionError | CatalogError> =>
  Layer.scoped(CatalogService, make(config))

/**
 * The catalog for Promise code, from `openCatalog`. Methods reject with the errors of `Service`.
 *
 * @since 0.2.0
 */
export interface Catalog {
  readonly create: (name: string, options: CreateOptions) => Promise<Row>
  readonly suspend: (name: string) => Promise<Row>
  readonly resume: (name: string) => Promise<Row>
  readonly remove: (name: string, options?: RemoveOptions) => Promise<void>
  readonly move: (name: string, options: MoveOptions) => Promise<MoveReport>
  readonly resumeMove: (name: string, options?: { readonly onProgress?: MoveOptions["onProgress"] }) => Promise<MoveRecovery>
  readonly abortMove: (name: string) => Promise<MoveRecovery>
  readonly get: (name: string) => Promise<Row | undefined>
  readonly list: (options?: ListOptions) => AsyncIterable<Row>
  /** Closes the catalog's connections. */
  readonly close: () => Promise<void>
}

/**
 * The Effect API of the catalog: `Catalog.layer(config)`, `Catalog.make(config)`, `Catalog.Service` (the Tag).
 *
 * @since 0.2.0
 */
export const Catalog = { layer, make, Service: CatalogService } as const

const squashed = <A>(exit: Exit.Exit<A, unknown>): A => {
  if (Exit.isSuccess(exit)) return exit.value
  throw Cause.squash(exit.cause)
}

/**
 * Opens the catalog for Promise code (see `make`). Rejects with ConnectionError when the catalog cannot be reached.
 *
 * @since 0.2.0
 */
export const openCatalog = async (config: CatalogConfig): Promise<Catalog> => {
  const scope = Effect.runSync(Scope.make())
  const opened = await Effect.runPromiseExit(Scope.extend(make(config), scope))
  if (Exit.isFailure(opened)) await Effect.runPromise(Scope.close(scope, Exit.void))
  const service = squashed(opened)
  let closed = false
  const run = <A>(effect: Effect.Effect<A, CatalogFailure>): Promise<A> =>
    closed
      ? Promise.reject(new CatalogError({ operation: "call", reason: "the catalog was closed: open it again with openCatalog()" }))
      : Effect.runPromiseExit(effect).then(squashed)
  return {
    create: (name, options) => run(service.create(name, options)),
    suspend: (name) => run(service.suspend(name)),
    resume: (name) => run(service.resume(name)),
    remove: (name, options) => run(service.remove(name, options)),
    move: (name, options) => run(service.move(name, options)),
    resumeMove: (name, options) => run(service.resumeMove(name, options)),
    abortMove: (name) => run(service.abortMove(name)),
    get: (name) => run(service.get(name)),
    list: (options) => ({
      [Symbol.asyncIterator]: () => {
        const it = Stream.toAsyncIterable(service.list(options))[Symbol.asyncIterator]()
        return {
          next: () =>
            it.next().catch((e: unknown) => {
              throw Cause.isCause(e) ? Cause.squash(e) : e
            }),
          return: it.return === undefined ? undefined : (v?: unknown) => it.return!(v)
        } as AsyncIterator<Row>
      }
    }),
    close: async () => {
      if (closed) return
      closed = true
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  }
}
