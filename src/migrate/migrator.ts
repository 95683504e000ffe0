/**
 * flexidb/migrate's three operations as Effects, in the manner of @effect/sql's Migrator: the folder read through
 * FileSystem (loader), the database opened in a scope (connection) and spoken to in its dialect, Prisma's lock taken
 * (lock), and Prisma's rules applied (ledger). Interrupting one rolls its transaction back and closes what it opened.
 * `flexidb/migrate`'s Promise API is a facade over these; `flexidb/migrate` exports them as `Migrator`.
 */
import { FileSystem } from "@effect/platform"
import type { Scope } from "effect"
import { Clock, Effect } from "effect"
import { randomUUID } from "node:crypto"
import { join } from "node:path"
import type { Connection, Database } from "./connection.js"
import { open, sqlitePath } from "./connection.js"
import { dialect } from "./dialect.js"
import { checkProvider, checksum, deployRefusal, failure, hasTables, notEmpty, readRows, statements, statusOf } from "./ledger.js"
import { readFolder } from "./loader.js"
import { takeLock } from "./lock.js"
import type { DriverError, Folder, MigrateOptions, MigrationStatus } from "./model.js"
import { MigrationError } from "./model.js"

export type { ConnectSettings } from "./connection.js"
/**
 * Opens the database a URL names (with the settings' timeout, read-only, drivers), runs `SELECT 1` and closes it.
 * Fails with the driver's error (`DriverError`) when it is not there or does not answer; interrupting it (a
 * timeout) leaves nothing open.
 */
export { ping } from "./connection.js"

/** The errors of an operation: flexidb's own, or a driver's (connection refused, a query the server rejected). */
export type Failure = MigrationError | DriverError

const options = (given: MigrateOptions): Effect.Effect<MigrateOptions, MigrationError> => {
  const invalid = (reason: string) => Effect.fail(new MigrationError({ code: "FLEXIDB_MIGRATION_OPTIONS", reason }))
  if (typeof given !== "object" || given === null) return invalid("expected { client | url, migrations }")
  if (typeof given.migrations !== "string" || given.migrations === "") {
    return invalid("migrations: the migrations folder's path, e.g. prisma/migrations/<schema>")
  }
  if ((given.client === undefined) === (given.url === undefined)) return invalid("give one of client (a Prisma client) or url")
  if (given.schema !== undefined && !/^[A-Za-z0-9_-]{1,63}$/.test(given.schema)) {
    return invalid(`schema: 1 to 63 letters, digits, '_' or '-', got ${JSON.stringify(given.schema)}`)
  }
  // A PostgreSQL URL's `?schema=` (as Prisma reads it) when no `schema` option is given.
  if (given.schema === undefined && typeof given.url === "string" && /^postgres(ql)?:/i.test(given.url)) {
    try {
      const schema = new URL(given.url).searchParams.get("schema")
      if (schema !== null && schema !== "") return Effect.succeed({ ...given, schema })
    } catch {
      // Not a URL the WHATWG parser reads: the driver says so when it opens it.
    }
  }
  return Effect.succeed(given)
}

/** Puts the session in the `schema` option's schema (PostgreSQL); `create` makes it when missing, as Prisma. */
const useSchema = (c: Connection, options: MigrateOptions, create: boolean): Effect.Effect<void, Failure> =>
  Effect.gen(function*() {
    if (options.schema === undefined) return
    if (c.provider !== "postgresql") {
      return yield* new MigrationError({ code: "FLEXIDB_MIGRATION_OPTIONS", reason: "schema is for PostgreSQL databases" })
    }
    // The name was checked: letters, digits, '_' and '-'.
    if (create) yield* c.execute(`CREATE SCHEMA IF NOT EXISTS "${options.schema}"`)
    yield* c.query(`SELECT set_config('search_path', $1, true) AS s`, `"${options.schema}"`)
  })

/**
 * Runs `fn` in a transaction with Prisma's lock held. A MigrationError that `fn` returns (rather than fails with) is
 * failed with after the transaction commits: what it recorded (a failed migration's row) stays.
 */
const locked = <A>(
  given: MigrateOptions,
  fn: (c: Connection, folder: Folder, options: MigrateOptions) => Effect.Effect<A | MigrationError, Failure>
): Effect.Effect<A, Failure, FileSystem.FileSystem> =>
  Effect.scoped(Effect.gen(function*() {
    const o = yield* options(given)
    const folder = yield* readFolder(o.migrations)
    const db = yield* open(o)
    yield* checkProvider(folder, db.provider)
    return yield* lockedOn(db, folder, o, fn)
  }))

/** `locked`'s transaction on a database already open: one transaction, Prisma's lock held for it. */
const lockedOn = <A>(
  db: Database,
  folder: Folder,
  o: MigrateOptions,
  fn: (c: Connection, folder: Folder, options: MigrateOptions) => Effect.Effect<A | MigrationError, Failure>
): Effect.Effect<A, Failure> =>
  Effect.gen(function*() {
    const out = yield* db.transaction(true, (c) =>
      Effect.gen(function*() {
        yield* useSchema(c, o, true)
        const release = yield* takeLock(c, o.lockTimeout ?? "10 seconds")
        return yield* Effect.ensuring(fn(c, folder, o), release)
      }))
    if (out instanceof MigrationError) return yield* out
    return out
  })

/**
 * Deploys to many schemas of one PostgreSQL database over one connection, open until the scope closes: each schema
 * is `deploy`'s own transaction under Prisma's lock, as one `deploy` per schema would run it, without a connection
 * (and a read of the folder) each. `url` names the database (its `?schema=` is ignored).
 */
export const schemaDeployer = (
  url: string,
  migrations: string
): Effect.Effect<(schema: string) => Effect.Effect<{ readonly applied: ReadonlyArray<string> }, Failure>, Failure, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    const o = yield* options({ url, migrations })
    const folder = yield* readFolder(o.migrations)
    const db = yield* open(o)
    yield* checkProvider(folder, db.provider)
    return (schema: string) =>
      Effect.flatMap(options({ url, migrations, schema }), (given) => lockedOn(db, folder, given, deployBody))
  })

/** Applies the folder's pending migrations in order, under Prisma's lock. */
export const deploy = (given: MigrateOptions): Effect.Effect<{ readonly applied: ReadonlyArray<string> }, Failure, FileSystem.FileSystem> =>
  locked(given, deployBody)

const deployBody = (c: Connection, folder: Folder, o: MigrateOptions) =>
    Effect.gen(function*() {
      const d = dialect(c.provider)
      let rows = yield* readRows(c, d)
      if (rows === undefined) {
        if (yield* hasTables(c, d)) return notEmpty()
        yield* c.execute(d.ddl)
        rows = []
      }
      const status = statusOf(folder, rows)
      const refused = deployRefusal(status)
      if (refused !== undefined) return refused
      const missing = folder.migrations.find((m) => status.pending.includes(m.name) && m.script === undefined)
      if (missing !== undefined) {
        return new MigrationError({
          code: "P3015",
          migration: missing.name,
          reason: `Could not find the migration file at ${join(o.migrations, missing.name, "migration.sql")}. ` +
            `Please delete the directory or restore the migration file.`
        })
      }
      // PostgreSQL and SQLite: each migration in a savepoint, so a failing one is undone as a whole.
      const savepoints = c.provider !== "mysql"
      const applied: Array<string> = []
      for (const name of status.pending) {
        const script = folder.migrations.find((m) => m.name === name)!.script!
        const id = randomUUID()
        yield* c.execute(
          `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at) VALUES (${d.p(1)}, ${d.p(2)}, ${d.p(3)}, ${d.now(yield* Clock.currentTimeMillis)})`,
          id,
          checksum(script),
          name
        )
        if (savepoints) yield* c.execute(`SAVEPOINT flexidb_migration`)
        const ran = yield* Effect.either(
          c.provider === "postgresql"
            ? c.execute(script)
            : Effect.forEach(statements(script), (statement) => c.execute(statement), { discard: true })
        )
        if (ran._tag === "Left") {
          if (savepoints) yield* c.execute(`ROLLBACK TO SAVEPOINT flexidb_migration`)
          const { code, message } = failure(ran.left.cause)
          const logs = `A migration failed to apply. New migrations cannot be applied before the error is recovered ` +
            `from. Read more about how to resolve migration issues in a production database: ` +
            `https://pris.ly/d/migrate-resolve\n\nMigration name: ${name}\n\nDatabase error code: ${code}\n\n` +
            `Database error:\n${message}\n`
          yield* c.execute(`UPDATE _prisma_migrations SET logs = ${d.p(1)} WHERE id = ${d.p(2)}`, logs, id)
          return new MigrationError({ code: "P3018", migration: name, reason: logs })
        }
        if (savepoints) yield* c.execute(`RELEASE SAVEPOINT flexidb_migration`)
        yield* c.execute(
          `UPDATE _prisma_migrations SET applied_steps_count = applied_steps_count + 1, finished_at = ${d.now(yield* Clock.currentTimeMillis)} WHERE id = ${d.p(1)}`,
          id
        )
        applied.push(name)
      }
      return { applied }
    })

/** Where the database stands against the folder. Changes nothing; a SQLite file that is not there is not created. */
export const status = (given: MigrateOptions): Effect.Effect<MigrationStatus, Failure, FileSystem.FileSystem> =>
  Effect.scoped(Effect.gen(function*() {
    const o = yield* options(given)
    const folder = yield* readFolder(o.migrations)
    if (typeof o.url === "string" && /^file:/i.test(o.url) && !(yield* sqliteFileExists(o.url))) return statusOf(folder, [])
    const db = yield* open(o)
    yield* checkProvider(folder, db.provider)
    return yield* db.transaction(false, (c) =>
      Effect.gen(function*() {
        yield* useSchema(c, o, false)
        const d = dialect(c.provider)
        const rows = yield* readRows(c, d)
        if (rows !== undefined) return statusOf(folder, rows)
        // No history: a deploy would refuse a database that has tables (P3005), as Prisma's does.
        return statusOf(folder, [], yield* hasTables(c, d))
      }))
  }))

const sqliteFileExists = (url: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => fs.exists(sqlitePath(url))).pipe(Effect.orElseSucceed(() => false))

/** Prisma's `migrate resolve`: records a migration as applied, or marks a failed one rolled back. */
export const resolve = (
  given: MigrateOptions & { readonly applied?: string | undefined; readonly rolledBack?: string | undefined }
): Effect.Effect<void, Failure, FileSystem.FileSystem> =>
  locked(given, (c, folder, o) =>
    Effect.gen(function*() {
      const d = dialect(c.provider)
      const name = given.applied ?? given.rolledBack
      if ((given.applied === undefined) === (given.rolledBack === undefined)) {
        return new MigrationError({ code: "FLEXIDB_MIGRATION_OPTIONS", reason: "give one of applied or rolledBack: a migration's name" })
      }
      const rows = yield* readRows(c, d)
      const mine = (rows ?? []).filter((r) => r.name === name)
      if (given.rolledBack !== undefined) {
        if (mine.length === 0) {
          return new MigrationError({
            code: "P3011",
            migration: name,
            reason: `Migration \`${name}\` cannot be rolled back because it was never applied to the database.`
          })
        }
        if (!mine.some((r) => !r.finished && !r.rolledBack)) {
          return new MigrationError({
            code: "P3012",
            migration: name,
            reason: `Migration \`${name}\` cannot be rolled back because it is not in a failed state.`
          })
        }
      } else {
        const local = folder.migrations.find((m) => m.name === name)
        if (local?.script === undefined) {
          return new MigrationError({
            code: "P3017",
            migration: name,
            reason: `The migration ${name} could not be found in ${o.migrations}. Give the whole name of its ` +
              `folder (e.g. "20201207184859_initial_migration").`
          })
        }
        if (mine.some((r) => r.finished && !r.rolledBack)) {
          return new MigrationError({
            code: "P3008",
            migration: name,
            reason: `The migration \`${name}\` is already recorded as applied in the database.`
          })
        }
        if (rows === undefined) yield* c.execute(d.ddl)
      }
      // Both: a failed attempt is marked rolled back (resolve --applied then records a new, finished row).
      const now = d.now(yield* Clock.currentTimeMillis)
      yield* c.execute(
        `UPDATE _prisma_migrations SET rolled_back_at = ${now} WHERE migration_name = ${d.p(1)} AND finished_at IS NULL AND rolled_back_at IS NULL`,
        name
      )
      if (given.applied !== undefined) {
        const script = folder.migrations.find((m) => m.name === name)!.script!
        yield* c.execute(
          `INSERT INTO _prisma_migrations (id, checksum, logs, migration_name, started_at, finished_at) VALUES (${d.p(1)}, ${d.p(2)}, '', ${d.p(3)}, ${now}, ${now})`,
          randomUUID(),
          checksum(script),
          name
        )
      }
      return undefined
    }))
