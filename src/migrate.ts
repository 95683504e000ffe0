/**
 * `flexidb/migrate`: Prisma's migration folders applied in process, through a client the app already has (or a URL),
 * with no schema engine. It keeps Prisma's own `_prisma_migrations` table — same columns, checksums and values — and
 * takes the lock Prisma takes, so a database migrated here is up to date for `prisma migrate status`, and one
 * migrated by Prisma is up to date here.
 *
 * Prisma's rules, from its schema engine (prisma-engines: apply_migrations.rs, sql_migration_persistence.rs,
 * checksum.rs) and checked against Prisma 6.19 itself in test/migrate.test.ts:
 * - Migrations are the sub-folders of the folder, in `localeCompare` order, each with a `migration.sql`;
 *   `migration_lock.toml`'s provider must match the database's.
 * - A migration is applied when it has a row not rolled back; a row with neither `finished_at` nor
 *   `rolled_back_at` is a failed migration, and nothing is applied until it is resolved.
 * - Applying one: a row with a new id, the checksum (SHA-256 of the file, hex) and `started_at`; the script; then
 *   `applied_steps_count` 1 and `finished_at`. A script that fails leaves its row unfinished, the error in `logs`.
 * Stricter than Prisma's `migrate deploy`, which lets both pass: a recorded migration whose file changed and a
 * recorded migration missing from the folder are refused too, and nothing is changed.
 *
 * @since 0.2.0
 */
import * as Duration from "effect/Duration"
import { createHash, randomUUID } from "node:crypto"
import { existsSync } from "node:fs"
import { readdir, readFile } from "node:fs/promises"
import { join } from "node:path"
import type { PrismaClientLike } from "./Client.js"
import { TaggedError, TypeId } from "./Errors.js"
import { errorSummary, redact } from "./Redact.js"

/** @since 0.2.0 */
export type Provider = "postgresql" | "mysql" | "sqlite"

/**
 * Why a deploy, status or resolve was refused, or how a migration failed. `code` is Prisma's where Prisma has one
 * (P3005, P3009, P3015, P3017, P3018, P3008, P3011, P3012, P3019; P1002 for the lock), else `FLEXIDB_MIGRATION_*`.
 *
 * @since 0.2.0
 */
export class MigrationError extends TaggedError("MigrationError")<{
  readonly code: string
  readonly reason: string
  /** The migration it is about, if one. */
  readonly migration?: string | undefined
}> {
  readonly [TypeId]: TypeId = TypeId
  override get message() {
    return `${this.code}: ${this.reason}`
  }
}

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
}

// -----------------------------------------------------------------------------------------------------------------
// The folder

interface Migration {
  readonly name: string
  /** The script, or undefined when the folder has no migration.sql. */
  readonly script: string | undefined
}

interface Folder {
  readonly migrations: ReadonlyArray<Migration>
  /** migration_lock.toml's provider, if the file is there. */
  readonly lockProvider: string | undefined
}

const readFolder = async (folder: string): Promise<Folder> => {
  let entries
  try {
    entries = await readdir(folder, { withFileTypes: true })
  } catch (error) {
    throw new MigrationError({
      code: "FLEXIDB_MIGRATIONS_FOLDER",
      reason: `cannot read the migrations folder ${folder} (${errorSummary(error)}): give the folder that holds ` +
        `<timestamp>_<name>/migration.sql, e.g. prisma/migrations/<schema>`
    })
  }
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort((a, b) => a.localeCompare(b))
  const migrations = await Promise.all(names.map(async (name): Promise<Migration> => ({
    name,
    script: await readFile(join(folder, name, "migration.sql"), "utf8").catch(() => undefined)
  })))
  const lock = await readFile(join(folder, "migration_lock.toml"), "utf8").catch(() => undefined)
  const lockProvider = lock === undefined
    ? undefined
    : (lock.split("\n").find((l) => l.startsWith("provider"))?.replace(/^provider\s*=\s*/, "").trim().replace(/^"|"$/g, "") ??
      "<PROVIDER NOT FOUND>")
  return { migrations, lockProvider }
}

/** Prisma's checksum: SHA-256 of the script's UTF-8 bytes, lower-case hex. */
export const checksum = (script: string): string => createHash("sha256").update(script, "utf8").digest("hex")

/** Prisma's comparison: the script as it is, or with its line endings turned either way; old unpadded hex too. */
const matches = (recorded: string, script: string) => {
  const variants = [script, script.replaceAll("\r\n", "\n"), script.replaceAll("\n", "\r\n")]
  const unpadded = (s: string) =>
    [...createHash("sha256").update(s, "utf8").digest()].map((b) => b.toString(16)).join("")
  return variants.some((v) =>
    recorded.length === 64 ? checksum(v) === recorded : recorded.length > 0 && unpadded(v) === recorded
  )
}

/**
 * The statements of a script, for drivers that run one at a time (SQLite, MySQL): split on `;` outside quotes,
 * comments and a trigger's BEGIN … END.
 */
export const statements = (script: string): Array<string> => {
  const out: Array<string> = []
  let start = 0
  let i = 0
  const push = (end: number) => {
    const s = script.slice(start, end).trim()
    if (s.replace(/--[^\n]*|\/\*[\s\S]*?\*\/|#[^\n]*/g, "").trim() !== "") out.push(s)
    start = end + 1
  }
  while (i < script.length) {
    const c = script[i]!
    if (c === "'" || c === '"' || c === "`") {
      for (i++; i < script.length; i++) {
        if (script[i] === "\\" && c === "'") i++
        else if (script[i] === c) {
          if (script[i + 1] === c) i++
          else break
        }
      }
    } else if (c === "-" && script[i + 1] === "-") {
      i = script.indexOf("\n", i)
      if (i === -1) break
    } else if (c === "/" && script[i + 1] === "*") {
      i = script.indexOf("*/", i + 2) + 1
      if (i === 0) break
    } else if (c === ";") {
      const text = script.slice(start, i)
      const trigger = /^\s*CREATE\s+(TEMP\s+|TEMPORARY\s+)?TRIGGER\b/i.test(text.replace(/^(\s*--[^\n]*\n)+/, ""))
      if (!trigger || /\bEND\s*$/i.test(text)) push(i)
    }
    i++
  }
  push(script.length)
  return out
}

// -----------------------------------------------------------------------------------------------------------------
// A database: queries on one connection, in a transaction

interface Connection {
  readonly provider: Provider
  readonly query: (sql: string, ...args: Array<unknown>) => Promise<Array<Record<string, unknown>>>
  readonly execute: (sql: string, ...args: Array<unknown>) => Promise<unknown>
}

/** Runs `fn` on one connection in a transaction; commits what `fn` returns. */
type Session = <A>(fn: (c: Connection) => Promise<A>) => Promise<A>

interface Database {
  readonly provider: Provider
  readonly session: Session
  readonly close: () => Promise<void>
}

const providerOf = (raw: unknown): Provider => {
  if (raw === "postgresql" || raw === "postgres" || raw === "cockroachdb") return "postgresql"
  if (raw === "mysql" || raw === "mariadb") return "mysql"
  if (raw === "sqlite") return "sqlite"
  throw new MigrationError({
    code: "FLEXIDB_MIGRATION_PROVIDER",
    reason: `flexidb/migrate supports PostgreSQL, MySQL/MariaDB and SQLite; this database's provider is '${String(raw)}'`
  })
}

const fromClient = (client: PrismaClientLike): Database => {
  const provider = providerOf((client as { _activeProvider?: unknown })._activeProvider)
  const session: Session = (fn) =>
    (client as any).$transaction(
      (tx: any) =>
        fn({
          provider,
          query: (sql, ...args) => tx.$queryRawUnsafe(sql, ...args),
          execute: (sql, ...args) => tx.$executeRawUnsafe(sql, ...args)
        }),
      // A migration takes as long as it takes: the transaction's own limit is a day.
      { maxWait: 60_000, timeout: 86_400_000 }
    )
  return { provider, session, close: async () => {} }
}

const load = async (pkg: string): Promise<any> => {
  try {
    const m = await import(pkg)
    return m.default ?? m
  } catch {
    throw new MigrationError({
      code: "FLEXIDB_MIGRATION_DRIVER",
      reason: `migrating by URL needs the '${pkg}' package (the driver under its Prisma adapter): npm install ${pkg}`
    })
  }
}

/** The SQLite file a `file:` URL names. */
const sqlitePath = (url: string) => url.replace(/^file:(\/\/)?/, "").replace(/\?.*$/, "")

const fromUrl = async (url: string, writes: boolean): Promise<Database> => {
  const scheme = /^([a-z]+):/i.exec(url)?.[1]?.toLowerCase()
  if (scheme === "file") {
    const Sqlite = await load("better-sqlite3")
    const db = new Sqlite(sqlitePath(url))
    const c: Connection = {
      provider: "sqlite",
      query: async (sql, ...args) => db.prepare(sql).all(...args),
      execute: async (sql, ...args) => db.prepare(sql).run(...args)
    }
    return {
      provider: "sqlite",
      // IMMEDIATE: the write lock from the start, so two deploys on one file run one after the other.
      session: async (fn) => {
        db.exec(writes ? "BEGIN IMMEDIATE" : "BEGIN")
        try {
          const out = await fn(c)
          db.exec("COMMIT")
          return out
        } catch (error) {
          if (db.inTransaction) db.exec("ROLLBACK")
          throw error
        }
      },
      close: async () => db.close()
    }
  }
  if (scheme === "postgres" || scheme === "postgresql") {
    const pg = await load("pg")
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    return pooled("postgresql", {
      query: async (sql, ...args) => (await client.query(sql, args.length === 0 ? undefined : args)).rows,
      end: () => client.end()
    })
  }
  if (scheme === "mysql" || scheme === "mariadb") {
    const mariadb = await load("mariadb")
    const conn = await mariadb.createConnection(url.replace(/^mysql:/i, "mariadb:"))
    return pooled("mysql", {
      // A statement that returns no rows answers with a summary, not an array.
      query: async (sql, ...args) => {
        const result = await conn.query(sql, args)
        return Array.isArray(result) ? [...result] : []
      },
      end: () => conn.end()
    })
  }
  throw new MigrationError({
    code: "FLEXIDB_MIGRATION_URL",
    reason: `cannot tell the database from the URL ${redact(url)}: use file:, postgresql:// or mysql:// (mariadb://)`
  })
}

const pooled = (
  provider: Provider,
  driver: { query: (sql: string, ...args: Array<unknown>) => Promise<Array<Record<string, unknown>>>; end: () => Promise<void> }
): Database => {
  const c: Connection = { provider, query: driver.query, execute: driver.query }
  return {
    provider,
    session: async (fn) => {
      await driver.query("BEGIN")
      try {
        const out = await fn(c)
        await driver.query("COMMIT")
        return out
      } catch (error) {
        await driver.query("ROLLBACK").catch(() => {})
        throw error
      }
    },
    close: driver.end
  }
}

const open = async (options: MigrateOptions, writes: boolean): Promise<Database> => {
  if (typeof options !== "object" || options === null) {
    throw new MigrationError({ code: "FLEXIDB_MIGRATION_OPTIONS", reason: "expected { client | url, migrations }" })
  }
  if (typeof options.migrations !== "string" || options.migrations === "") {
    throw new MigrationError({
      code: "FLEXIDB_MIGRATION_OPTIONS",
      reason: "migrations: the migrations folder's path, e.g. prisma/migrations/<schema>"
    })
  }
  if ((options.client === undefined) === (options.url === undefined)) {
    throw new MigrationError({ code: "FLEXIDB_MIGRATION_OPTIONS", reason: "give one of client (a Prisma client) or url" })
  }
  if (options.schema !== undefined && !/^[A-Za-z0-9_-]{1,63}$/.test(options.schema)) {
    throw new MigrationError({
      code: "FLEXIDB_MIGRATION_OPTIONS",
      reason: `schema: 1 to 63 letters, digits, '_' or '-', got ${JSON.stringify(options.schema)}`
    })
  }
  return options.client !== undefined ? fromClient(options.client) : fromUrl(options.url!, writes)
}

/** A PostgreSQL URL's `?schema=` (as Prisma reads it) when no `schema` option is given. */
const withUrlSchema = (options: MigrateOptions): MigrateOptions => {
  if (options?.schema !== undefined || typeof options?.url !== "string" || !/^postgres(ql)?:/i.test(options.url)) return options
  try {
    const schema = new URL(options.url).searchParams.get("schema")
    return schema === null || schema === "" ? options : { ...options, schema }
  } catch {
    return options
  }
}

// -----------------------------------------------------------------------------------------------------------------
// Prisma's table, per provider

const ddl: Record<Provider, string> = {
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

/** The dialect: placeholders, the time now (UTC), and the catalog queries. */
const dialect = (provider: Provider) => {
  const p = (i: number) => (provider === "postgresql" ? `$${i}` : "?")
  // The time, in UTC: PostgreSQL's now() is the transaction's start, clock_timestamp() each row's own; SQLite gets
  // the text Prisma's JavaScript engine writes there (RFC 3339 with an offset, which its Rust engine reads too).
  const now = () =>
    provider === "postgresql"
      ? "clock_timestamp()"
      : provider === "mysql"
      ? "UTC_TIMESTAMP(3)"
      : `'${new Date().toISOString().replace("Z", "+00:00")}'`
  return {
    p,
    now,
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

interface Row {
  readonly id: string
  readonly checksum: string
  readonly name: string
  readonly finished: boolean
  readonly rolledBack: boolean
}

const readRows = async (c: Connection): Promise<Array<Row> | undefined> => {
  const d = dialect(c.provider)
  if (Number((await c.query(d.exists))[0]?.n) === 0) return undefined
  const rows = await c.query(
    `SELECT id, checksum, migration_name, finished_at, rolled_back_at FROM _prisma_migrations ORDER BY started_at ASC`
  )
  return rows.map((r) => ({
    id: String(r.id),
    checksum: String(r.checksum),
    name: String(r.migration_name),
    finished: r.finished_at !== null && r.finished_at !== undefined,
    rolledBack: r.rolled_back_at !== null && r.rolled_back_at !== undefined
  }))
}

const statusOf = (folder: Folder, rows: ReadonlyArray<Row>): MigrationStatus => {
  const live = rows.filter((r) => !r.rolledBack)
  const local = new Set(folder.migrations.map((m) => m.name))
  const appliedRows = live.filter((r) => r.finished)
  const appliedNames = new Set(appliedRows.map((r) => r.name))
  return {
    applied: [
      ...folder.migrations.filter((m) => appliedNames.has(m.name)).map((m) => m.name),
      ...[...appliedNames].filter((n) => !local.has(n))
    ],
    pending: folder.migrations.filter((m) => !live.some((r) => r.name === m.name)).map((m) => m.name),
    failed: live.filter((r) => !r.finished).map((r) => r.name),
    modified: folder.migrations.filter((m) => {
      const row = appliedRows.find((r) => r.name === m.name)
      return row !== undefined && m.script !== undefined && !matches(row.checksum, m.script)
    }).map((m) => m.name),
    missingLocally: [...appliedNames].filter((n) => !local.has(n))
  }
}

const checkProvider = (folder: Folder, provider: Provider) => {
  const locked = folder.lockProvider
  if (locked === undefined || locked === provider || (locked === "postgres" && provider === "postgresql")) return
  throw new MigrationError({
    code: "P3019",
    reason: `The datasource provider \`${provider}\` of the database does not match the one specified in the ` +
      `migration_lock.toml, \`${locked}\`. These migrations are for another kind of database.`
  })
}

/** Puts the session in the `schema` option's schema (PostgreSQL); `create` makes it when missing, as Prisma. */
const useSchema = async (c: Connection, options: MigrateOptions, create: boolean) => {
  if (options.schema === undefined) return
  if (c.provider !== "postgresql") {
    throw new MigrationError({ code: "FLEXIDB_MIGRATION_OPTIONS", reason: "schema is for PostgreSQL databases" })
  }
  // The name was checked: letters, digits, '_' and '-'.
  if (create) await c.execute(`CREATE SCHEMA IF NOT EXISTS "${options.schema}"`)
  await c.query(`SELECT set_config('search_path', $1, true) AS s`, `"${options.schema}"`)
}

/** Sets the session's schema, then takes Prisma's lock; `release` gives it back (MySQL). */
const prepare = async (c: Connection, options: MigrateOptions) => {
  await useSchema(c, options, true)
  const timeout = Duration.toMillis(Duration.decode(options.lockTimeout ?? "10 seconds"))
  const timedOut = () =>
    new MigrationError({
      code: "P1002",
      reason: `Timed out after ${timeout} ms waiting for the migration lock another deploy holds ` +
        (c.provider === "postgresql" ? "(PostgreSQL advisory lock 72707369)." : "(MySQL lock 'prisma_migrate').")
    })
  if (c.provider === "postgresql") {
    // A transaction lock on Prisma's key: it conflicts with Prisma's session lock, and ends with the transaction.
    const deadline = Date.now() + timeout
    while (!(await c.query(`SELECT pg_try_advisory_xact_lock(72707369) AS ok`))[0]?.ok) {
      if (Date.now() >= deadline) throw timedOut()
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    return async () => {}
  }
  if (c.provider === "mysql") {
    const [row] = await c.query(`SELECT GET_LOCK('prisma_migrate', ?) AS ok`, Math.ceil(timeout / 1000))
    if (Number(row?.ok) !== 1) throw timedOut()
    return async () => {
      await c.query(`SELECT RELEASE_LOCK('prisma_migrate') AS ok`)
    }
  }
  return async () => {}
}

/** Runs `fn` in a session with the lock held; a MigrationError it returns is thrown after the session commits. */
const locked = async <A>(
  given: MigrateOptions,
  fn: (c: Connection, folder: Folder, options: MigrateOptions) => Promise<A | MigrationError>
): Promise<A> => {
  const options = withUrlSchema(given)
  const folder = await readFolder(options?.migrations)
  const db = await open(options, true)
  try {
    checkProvider(folder, db.provider)
    const out = await db.session(async (c) => {
      const release = await prepare(c, options)
      try {
        return await fn(c, folder, options)
      } finally {
        await release()
      }
    })
    if (out instanceof MigrationError) throw out
    return out
  } finally {
    await db.close()
  }
}

/**
 * What `deployMigrations` would refuse for this status, changing nothing: a failed migration (P3009), a modified or
 * a missing one; undefined when a deploy may go ahead (`flexidb migrate deploy --dry-run` reports it).
 *
 * @since 0.2.0
 */
export const deployRefusal = (status: MigrationStatus): MigrationError | undefined => {
  if (status.failed.length > 0) {
    return new MigrationError({
      code: "P3009",
      migration: status.failed[0],
      reason: `migrate found failed migrations in the target database, new migrations will not be applied: ` +
        `${status.failed.map((n) => `\`${n}\``).join(", ")}. Fix the database, then mark each one with ` +
        `\`flexidb migrate resolve --applied <name>\` (fixed by hand) or \`--rolled-back <name>\` (undone by hand). ` +
        `Read more: https://pris.ly/d/migrate-resolve`
    })
  }
  if (status.modified.length > 0) {
    return new MigrationError({
      code: "FLEXIDB_MIGRATION_MODIFIED",
      migration: status.modified[0],
      reason: `applied migrations were changed since: ${status.modified.map((n) => `\`${n}\``).join(", ")} ` +
        `(their migration.sql no longer matches the recorded checksum). Restore the files as they were applied; ` +
        `put further changes in a new migration. Nothing was applied.`
    })
  }
  if (status.missingLocally.length > 0) {
    return new MigrationError({
      code: "FLEXIDB_MIGRATION_MISSING",
      migration: status.missingLocally[0],
      reason: `migrations applied to the database are not in the folder: ` +
        `${status.missingLocally.map((n) => `\`${n}\``).join(", ")}. Deploy from a folder that has them ` +
        `(an older checkout or the wrong schema's folder?). Nothing was applied.`
    })
  }
  return undefined
}

const failure = (error: unknown): { code: string; message: string } => {
  const e = error as { meta?: { code?: unknown; message?: unknown }; code?: unknown; errno?: unknown }
  const code = e?.meta?.code ?? e?.errno ?? e?.code ?? "none"
  const message = typeof e?.meta?.message === "string" ? e.meta.message : errorSummary(error)
  return { code: String(code), message: redact(message) }
}

/**
 * Applies the folder's pending migrations in order, under Prisma's lock. On PostgreSQL and SQLite each migration
 * runs in a savepoint of one transaction: a failing one is undone and recorded failed, those before it stay applied.
 *
 * @since 0.2.0
 */
export const deployMigrations = (options: MigrateOptions): Promise<{ readonly applied: ReadonlyArray<string> }> =>
  locked(options, async (c, folder, options) => {
    const d = dialect(c.provider)
    let rows = await readRows(c)
    if (rows === undefined) {
      if (Number((await c.query(d.tables))[0]?.n) > 0) {
        return new MigrationError({
          code: "P3005",
          reason: `The database schema is not empty and has no _prisma_migrations table: baseline it first ` +
            `(\`flexidb migrate resolve --applied <name>\` for each migration it already has). ` +
            `Read more: https://pris.ly/d/migrate-baseline`
        })
      }
      await c.execute(ddl[c.provider])
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
        reason: `Could not find the migration file at ${join(options.migrations, missing.name, "migration.sql")}. ` +
          `Please delete the directory or restore the migration file.`
      })
    }
    const savepoints = c.provider !== "mysql"
    const applied: Array<string> = []
    for (const name of status.pending) {
      const script = folder.migrations.find((m) => m.name === name)!.script!
      const id = randomUUID()
      await c.execute(
        `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at) VALUES (${d.p(1)}, ${d.p(2)}, ${d.p(3)}, ${d.now()})`,
        id,
        checksum(script),
        name
      )
      if (savepoints) await c.execute(`SAVEPOINT flexidb_migration`)
      try {
        if (c.provider === "postgresql") await c.execute(script)
        else for (const statement of statements(script)) await c.execute(statement)
      } catch (error) {
        if (savepoints) await c.execute(`ROLLBACK TO SAVEPOINT flexidb_migration`)
        const { code, message } = failure(error)
        const logs = `A migration failed to apply. New migrations cannot be applied before the error is recovered ` +
          `from. Read more about how to resolve migration issues in a production database: ` +
          `https://pris.ly/d/migrate-resolve\n\nMigration name: ${name}\n\nDatabase error code: ${code}\n\n` +
          `Database error:\n${message}\n`
        await c.execute(`UPDATE _prisma_migrations SET logs = ${d.p(1)} WHERE id = ${d.p(2)}`, logs, id)
        return new MigrationError({ code: "P3018", migration: name, reason: logs })
      }
      if (savepoints) await c.execute(`RELEASE SAVEPOINT flexidb_migration`)
      await c.execute(
        `UPDATE _prisma_migrations SET applied_steps_count = applied_steps_count + 1, finished_at = ${d.now()} WHERE id = ${d.p(1)}`,
        id
      )
      applied.push(name)
    }
    return { applied }
  })

/**
 * Where the database stands against the folder. Changes nothing.
 *
 * @since 0.2.0
 */
export const migrationStatus = async (given: MigrateOptions): Promise<MigrationStatus> => {
  const options = withUrlSchema(given)
  const folder = await readFolder(options?.migrations)
  // A SQLite file that is not there yet has every migration pending: status does not create it.
  if (typeof options.url === "string" && /^file:/i.test(options.url) && !existsSync(sqlitePath(options.url))) {
    return statusOf(folder, [])
  }
  const db = await open(options, false)
  try {
    checkProvider(folder, db.provider)
    return await db.session(async (c) => {
      await useSchema(c, options, false)
      return statusOf(folder, (await readRows(c)) ?? [])
    })
  } finally {
    await db.close()
  }
}

/**
 * Prisma's `migrate resolve`: `applied` records a migration as applied without running it (a failed one fixed by
 * hand, or baselining a database that already has it); `rolledBack` marks a failed one as rolled back, so the next
 * deploy applies it again.
 *
 * @since 0.2.0
 */
export const resolveMigration = (
  options: MigrateOptions & { readonly applied?: string | undefined; readonly rolledBack?: string | undefined }
): Promise<void> =>
  locked(options, async (c, folder) => {
    const d = dialect(c.provider)
    const name = options.applied ?? options.rolledBack
    if ((options.applied === undefined) === (options.rolledBack === undefined)) {
      return new MigrationError({ code: "FLEXIDB_MIGRATION_OPTIONS", reason: "give one of applied or rolledBack: a migration's name" })
    }
    let rows = await readRows(c)
    const mine = (rows ?? []).filter((r) => r.name === name)
    if (options.rolledBack !== undefined) {
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
          reason: `The migration ${name} could not be found in ${options.migrations}. Give the whole name of its ` +
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
      if (rows === undefined) {
        await c.execute(ddl[c.provider])
        rows = []
      }
    }
    // Both: a failed attempt is marked rolled back (resolve --applied then records a new, finished row).
    await c.execute(
      `UPDATE _prisma_migrations SET rolled_back_at = ${d.now()} WHERE migration_name = ${d.p(1)} AND finished_at IS NULL AND rolled_back_at IS NULL`,
      name
    )
    if (options.applied !== undefined) {
      const script = folder.migrations.find((m) => m.name === name)!.script!
      const now = d.now()
      await c.execute(
        `INSERT INTO _prisma_migrations (id, checksum, logs, migration_name, started_at, finished_at) VALUES (${d.p(1)}, ${d.p(2)}, '', ${d.p(3)}, ${now}, ${now})`,
        randomUUID(),
        checksum(script),
        name
      )
    }
    return undefined
  })

// -----------------------------------------------------------------------------------------------------------------
// Fleet tooling (src/migrate/): the destructive-change guard, waves, fleet status, drift.
export { checkMigrations, checkScript, formatFindings } from "./migrate/guard.js"
export type { CheckMigrationsOptions, GuardFinding, GuardKind } from "./migrate/guard.js"
export { deployFleet, deployFleetEffect, DestructiveMigrationError } from "./migrate/waves.js"
export type { DeployFleetOptions, FleetProgress, FleetResult, FleetTenant, FleetTenantResult, FleetTenantStatus, WaveSize } from "./migrate/waves.js"
export { fleetStatus } from "./migrate/fleetStatus.js"
export type { FleetStatusOptions, TenantStatus } from "./migrate/fleetStatus.js"
export { fleetDrift } from "./migrate/drift.js"
export type { Drift, DriftKind, FleetDriftOptions, FleetDriftResult } from "./migrate/drift.js"
