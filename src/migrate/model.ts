/**
 * What flexidb/migrate's callers see: its options, the status it reports and its one error. The modules beside this
 * one (loader, dialect, connection, ledger, lock) build on it; `flexidb/migrate` re-exports it.
 */
import { Data, Predicate } from "effect"
import type * as Duration from "effect/Duration"
import type { PrismaClientLike } from "../Client.js"
import { redact } from "../Redact.js"

/** @since 0.2.0 */
export type Provider = "postgresql" | "mysql" | "sqlite"

/**
 * The mark of a MigrationError: its own, not flexidb's registry errors' (`isFlexiDBError` is false for it).
 *
 * @since 0.2.0
 */
export const MigrationErrorTypeId: unique symbol = Symbol.for("flexidb/MigrationError")

/** @since 0.2.0 */
export type MigrationErrorTypeId = typeof MigrationErrorTypeId

/**
 * Why a deploy, status or resolve was refused, or how a migration failed. `code` is Prisma's where Prisma has one
 * (P3005, P3009, P3015, P3017, P3018, P3008, P3011, P3012, P3019; P1002 for the lock), else `FLEXIDB_MIGRATION_*`.
 *
 * @since 0.2.0
 */
export class MigrationError extends Data.TaggedError("MigrationError")<{
  readonly code: string
  readonly reason: string
  /** The migration it is about, if one. */
  readonly migration?: string | undefined
}> {
  readonly [MigrationErrorTypeId]: MigrationErrorTypeId = MigrationErrorTypeId
  /** A reason may quote a driver's message: credentials are removed, as from flexidb's other errors. */
  constructor(fields: { readonly code: string; readonly reason: string; readonly migration?: string | undefined }) {
    super({ ...fields, reason: redact(fields.reason) })
  }
  override get message() {
    return `${this.code}: ${this.reason}`
  }
}

/**
 * True for a MigrationError (from this copy of flexidb or another).
 *
 * @since 0.2.0
 */
export const isMigrationError = (u: unknown): u is MigrationError => Predicate.hasProperty(u, MigrationErrorTypeId)

/**
 * A driver's own failure (connection refused, a query the server rejected), kept whole as `cause`: the Effect API
 * fails with it; the Promise API rejects with the cause itself.
 *
 * @since 0.2.0
 */
export class DriverError extends Data.TaggedError("DriverError")<{ readonly cause: unknown }> {}

/** @since 0.2.0 */
export interface MigrateOptions {
  /** A Prisma client of the database (Prisma 6.19+ or 7, with a driver adapter); or give `url`. */
  readonly client?: PrismaClientLike | undefined
  /** The database's URL (`file:` SQLite, `postgres(ql)://`, `mysql://` / `mariadb://`), opened with its driver. */
  readonly url?: string | undefined
  /** The migrations folder: `prisma/migrations/<schema>/`, or any folder of `<timestamp>_<name>/migration.sql`. */
  readonly migrations: string
  /** PostgreSQL: the schema the migrations and their table go in (schema per tenant). Default: the search path's. */
  readonly schema?: string | undefined
  /** How long to wait for another deploy's lock (PostgreSQL, MySQL). Default 10 seconds, as Prisma. */
  readonly lockTimeout?: Duration.DurationInput | undefined
}

/** @since 0.2.0 */
export interface MigrationStatus {
  /** Recorded as applied, in folder order (then any recorded that the folder lacks). */
  readonly applied: ReadonlyArray<string>
  /** In the folder, not applied: what `deployMigrations` would apply, in order. */
  readonly pending: ReadonlyArray<string>
  /** Recorded as started and never finished nor rolled back: resolve them first. */
  readonly failed: ReadonlyArray<string>
  /** Applied, but the file no longer matches the recorded checksum. */
  readonly modified: ReadonlyArray<string>
  /** Applied, but not in the folder. */
  readonly missingLocally: ReadonlyArray<string>
  /**
   * The database has tables but no `_prisma_migrations`: a deploy refuses it (Prisma's P3005) until it is baselined,
   * each migration it already has recorded with `resolveMigration({ applied })`. Absent means false.
   *
   * @since 0.2.0
   */
  readonly needsBaseline?: boolean | undefined
}

/** @internal A migration of the folder. */
export interface Migration {
  readonly name: string
  /** The script, or undefined when the folder has no migration.sql. */
  readonly script: string | undefined
}

/** @internal The migrations folder as read. */
export interface Folder {
  readonly migrations: ReadonlyArray<Migration>
  /** migration_lock.toml's provider, if the file is there. */
  readonly lockProvider: string | undefined
}
