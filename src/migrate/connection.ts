/**
 * A database to migrate, as a scoped resource: opened from a Prisma client the app has (its `$transaction`) or from a
 * URL with the driver under Prisma's adapter (better-sqlite3, pg, mariadb), and closed when its scope closes — also
 * when the work is interrupted or times out. Each transaction runs on one connection and is rolled back when its
 * work fails or is interrupted.
 *
 * @internal
 */
import type { Scope } from "effect"
import { Effect, Exit, Runtime } from "effect"
import type { PrismaClientLike } from "../Client.js"
import { redact } from "../Redact.js"
import type { MigrateOptions, Provider } from "./model.js"
import { DriverError, MigrationError } from "./model.js"

type Rows = Array<Record<string, unknown>>

/** Queries on one connection, inside a transaction. */
export interface Connection {
  readonly provider: Provider
  readonly query: (sql: string, ...args: ReadonlyArray<unknown>) => Effect.Effect<Rows, DriverError>
  readonly execute: (sql: string, ...args: ReadonlyArray<unknown>) => Effect.Effect<unknown, DriverError>
}

/** An open database. */
export interface Database {
  readonly provider: Provider
  /**
   * Runs `use` on one connection in a transaction: committed when it succeeds, rolled back when it fails or is
   * interrupted. `writes` (SQLite): take the write lock from the start.
   */
  readonly transaction: <A, E, R>(
    writes: boolean,
    use: (c: Connection) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | DriverError, R>
}

const driverCall = <A>(f: () => PromiseLike<A> | A): Effect.Effect<A, DriverError> =>
  Effect.tryPromise({ try: async () => await f(), catch: (cause) => new DriverError({ cause }) })

const connection = (
  provider: Provider,
  query: (sql: string, args: ReadonlyArray<unknown>) => PromiseLike<unknown> | unknown,
  execute: (sql: string, args: ReadonlyArray<unknown>) => PromiseLike<unknown> | unknown = query
): Connection => ({
  provider,
  query: (sql, ...args) => driverCall(() => query(sql, args)) as Effect.Effect<Rows, DriverError>,
  execute: (sql, ...args) => driverCall(() => execute(sql, args))
})

export const providerOf = (raw: unknown): Effect.Effect<Provider, MigrationError> => {
  if (raw === "postgresql" || raw === "postgres" || raw === "cockroachdb") return Effect.succeed("postgresql")
  if (raw === "mysql" || raw === "mariadb") return Effect.succeed("mysql")
  if (raw === "sqlite") return Effect.succeed("sqlite")
  return Effect.fail(
    new MigrationError({
      code: "FLEXIDB_MIGRATION_PROVIDER",
      reason: `flexidb/migrate supports PostgreSQL, MySQL/MariaDB and SQLite; this database's provider is '${String(raw)}'`
    })
  )
}

/** Thrown inside Prisma's `$transaction` callback to roll it back when the work failed: its Exit is kept aside. */
const ROLLBACK = Symbol("flexidb/migrate/rollback")

const viaClient = (client: PrismaClientLike): Effect.Effect<Database, MigrationError> =>
  Effect.map(providerOf((client as { _activeProvider?: unknown })._activeProvider), (provider): Database => ({
    provider,
    transaction: <A, E, R>(_writes: boolean, use: (c: Connection) => Effect.Effect<A, E, R>) =>
      Effect.flatMap(Effect.runtime<R>(), (runtime) => {
        let inner: Exit.Exit<A, E> | undefined
        const run = driverCall(() =>
          (client as any).$transaction(
            async (tx: any) => {
              inner = await Runtime.runPromiseExit(runtime)(use(connection(
                provider,
                (sql, args) => tx.$queryRawUnsafe(sql, ...args),
                (sql, args) => tx.$executeRawUnsafe(sql, ...args)
              )))
              if (Exit.isFailure(inner)) throw ROLLBACK
              return inner.value
            },
            // A migration takes as long as it takes: the transaction's own limit is a day.
            { maxWait: 60_000, timeout: 86_400_000 }
          ) as Promise<A>
        )
        return Effect.catchAll(run, (error): Effect.Effect<A, E | DriverError> =>
          inner !== undefined && Exit.isFailure(inner) ? inner : Effect.fail(error))
      })
  }))

/** The driver package under Prisma's adapter, loaded when a URL needs it. */
const load = (pkg: string): Effect.Effect<any, MigrationError> =>
  Effect.tryPromise({
    try: async () => {
      const m = await import(pkg)
      return m.default ?? m
    },
    catch: () =>
      new MigrationError({
        code: "FLEXIDB_MIGRATION_DRIVER",
        reason: `migrating by URL needs the '${pkg}' package (the driver under its Prisma adapter): npm install ${pkg}`
      })
  })

/** The SQLite file a `file:` URL names. */
export const sqlitePath = (url: string) => url.replace(/^file:(\/\/)?/, "").replace(/\?.*$/, "")

/** BEGIN … COMMIT around `use`; ROLLBACK when it fails or is interrupted. */
const inTransaction = <A, E, R>(
  c: Connection,
  begin: string,
  use: (c: Connection) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | DriverError, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.zipRight(
      c.execute(begin),
      Effect.flatMap(
        restore(use(c)).pipe(Effect.onExit((exit) => Exit.isFailure(exit) ? Effect.ignore(c.execute("ROLLBACK")) : Effect.void)),
        (a) => Effect.as(c.execute("COMMIT"), a)
      )
    )
  )

/**
 * How a URL is opened. The defaults are the in-process migrate's; `flexidb doctor` opens with a timeout, read-only,
 * and the app's own drivers.
 */
export interface ConnectSettings {
  /** Milliseconds the driver has to connect and to answer a query (pg, mariadb), or to wait for a lock (SQLite). */
  readonly timeout?: number | undefined
  /** SQLite: open the file read-only; a file that is not there is an error, not created. */
  readonly readOnly?: boolean | undefined
  /** Where a driver package comes from (default: flexidb's own `import`). */
  readonly load?: ((pkg: "better-sqlite3" | "pg" | "mariadb") => Effect.Effect<any, MigrationError>) | undefined
}

/**
 * A connection being made, given to the scope at once: interrupting the wait (a timeout) leaves nothing open. The
 * scope's end closes the connection, waiting for it to close (a database dropped next finds no session), or for
 * the attempt to settle first.
 */
const connecting = <C>(attempt: () => Promise<C>, close: (c: C) => unknown): Effect.Effect<C, DriverError, Scope.Scope> =>
  Effect.gen(function*() {
    const pending = attempt()
    yield* Effect.addFinalizer(() => Effect.promise(() => pending.then((c) => close(c), () => {}).then(undefined, () => {})))
    return yield* Effect.tryPromise({ try: () => pending, catch: (cause) => new DriverError({ cause }) })
  })

const viaUrl = (url: string, settings: ConnectSettings): Effect.Effect<Database, MigrationError | DriverError, Scope.Scope> =>
  Effect.gen(function*() {
    const scheme = /^([a-z]+):/i.exec(url)?.[1]?.toLowerCase()
    const timeout = settings.timeout
    const driver = settings.load ?? load
    if (scheme === "file") {
      const Sqlite = yield* driver("better-sqlite3")
      const db = yield* Effect.acquireRelease(
        Effect.try({
          try: () =>
            new Sqlite(sqlitePath(url), {
              ...(settings.readOnly && { readonly: true, fileMustExist: true }),
              ...(timeout !== undefined && { timeout })
            }),
          catch: (cause) => new DriverError({ cause })
        }),
        (db) => Effect.sync(() => db.close())
      )
      const c = connection("sqlite", (sql, args) => db.prepare(sql).all(...args), (sql, args) =>
        /^(BEGIN|COMMIT|ROLLBACK)\b/.test(sql) ? db.exec(sql) : db.prepare(sql).run(...args))
      return {
        provider: "sqlite",
        // IMMEDIATE: the write lock from the start, so two deploys on one file run one after the other.
        transaction: (writes, use) => inTransaction(c, writes ? "BEGIN IMMEDIATE" : "BEGIN", use)
      } satisfies Database
    }
    if (scheme === "postgres" || scheme === "postgresql") {
      const pg = yield* driver("pg")
      const client = new pg.Client({
        connectionString: url,
        ...(timeout !== undefined && { connectionTimeoutMillis: timeout, query_timeout: timeout })
      })
      // A connection that fails after it was given up must not become an unhandled error.
      client.on("error", () => {})
      yield* connecting(() => client.connect(), () => client.end())
      const c = connection("postgresql", async (sql, args) => (await client.query(sql, args.length === 0 ? undefined : args)).rows)
      return { provider: "postgresql", transaction: (_writes, use) => inTransaction(c, "BEGIN", use) } satisfies Database
    }
    if (scheme === "mysql" || scheme === "mariadb") {
      const mariadb = yield* driver("mariadb")
      const target = new URL(url.replace(/^mysql:/i, "mariadb:"))
      if (timeout !== undefined) target.searchParams.set("connectTimeout", String(timeout))
      const conn = yield* connecting(() => mariadb.createConnection(target.href) as Promise<any>, (conn) => conn.end())
      // A statement that returns no rows answers with a summary, not an array.
      const c = connection("mysql", async (sql, args) => {
        const result = await conn.query(timeout === undefined ? sql : { sql, timeout }, args)
        return Array.isArray(result) ? [...result] : []
      })
      return { provider: "mysql", transaction: (_writes, use) => inTransaction(c, "BEGIN", use) } satisfies Database
    }
    return yield* new MigrationError({
      code: "FLEXIDB_MIGRATION_URL",
      reason: `cannot tell the database from the URL ${redact(url)}: use file:, postgresql:// or mysql:// (mariadb://)`
    })
  })

/** Opens the database `url` names, runs `SELECT 1`, and closes it: is it there, and does it answer? */
export const ping = (url: string, settings: ConnectSettings = {}): Effect.Effect<void, MigrationError | DriverError> =>
  Effect.scoped(Effect.flatMap(viaUrl(url, settings), (db) => db.transaction(false, (c) => c.query("SELECT 1"))))

/** The database `options` name (a client, or a URL), open until the scope closes. */
export const open = (options: MigrateOptions): Effect.Effect<Database, MigrationError | DriverError, Scope.Scope> =>
  options.client !== undefined ? viaClient(options.client) : viaUrl(options.url!, {})
