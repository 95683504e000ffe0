/**
 * One dialect per database flexidb/migrate reads and writes: Prisma's table as each of Prisma's engines creates it,
 * placeholders, the time as SQL, and the catalog queries Prisma's rules need.
 *
 * @internal
 */
import type { Provider } from "./model.js"

/** Prisma's `_prisma_migrations`, as each of its engines creates it. */
export const ddl: Record<Provider, string> = {
  postgresql: `CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
)`,
  mysql: `CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             DATETIME(3),
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          DATETIME(3),
    started_at              DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    applied_steps_count     INTEGER UNSIGNED NOT NULL DEFAULT 0
) DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
  sqlite: `CREATE TABLE "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
)`
}

/** A database's dialect: placeholders, a time as SQL (UTC), the catalog queries, the table and the lock's SQL. */
export interface Dialect {
  readonly provider: Provider
  /** The i-th parameter's placeholder (1-based). */
  readonly p: (i: number) => string
  /** The time now as SQL; SQLite gets `millis` (the Clock's) written as Prisma's JavaScript engine writes it. */
  readonly now: (millis: number) => string
  /** Counts `_prisma_migrations` in the current schema: 0 or 1 (`n`). */
  readonly exists: string
  /** Counts the current schema's tables, as Prisma's P3005 does (`n`). */
  readonly tables: string
  /** Creates `_prisma_migrations`. */
  readonly ddl: string
}

/** The dialect of a provider. */
export const dialect = (provider: Provider): Dialect => {
  const p = (i: number) => (provider === "postgresql" ? `$${i}` : "?")
  // The time, in UTC: PostgreSQL's now() is the transaction's start, clock_timestamp() each row's own; SQLite gets
  // the text Prisma's JavaScript engine writes there (RFC 3339 with an offset, which its Rust engine reads too).
  const now = (millis: number) =>
    provider === "postgresql"
      ? "clock_timestamp()"
      : provider === "mysql"
      ? "UTC_TIMESTAMP(3)"
      : `'${new Date(millis).toISOString().replace("Z", "+00:00")}'`
  return {
    provider,
    p,
    now,
    ddl: ddl[provider],
    exists: provider === "postgresql"
      ? `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE c.relkind = 'r' AND ns.nspname = current_schema() AND c.relname = '_prisma_migrations'`
      : provider === "mysql"
      ? `SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '_prisma_migrations'`
      : `SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '_prisma_migrations'`,
    // Prisma's P3005 counts the schema's tables (PostGIS's own aside).
    tables: provider === "postgresql"
      ? `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace WHERE c.relkind = 'r' AND ns.nspname = current_schema() AND lower(c.relname) NOT IN ('spatial_ref_sys', 'geometry_columns', 'geography_columns', 'raster_columns', 'raster_overviews')`
      : provider === "mysql"
      ? `SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'`
      : `SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table'`
  }
}
