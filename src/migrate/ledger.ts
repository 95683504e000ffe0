/**
 * The ledger: Prisma's `_prisma_migrations` read and judged by Prisma's rules (prisma-engines' apply_migrations.rs,
 * sql_migration_persistence.rs, checksum.rs) — what is applied, pending, failed, changed or missing, and what a
 * deploy refuses — plus the checksum and the statement splitting the scripts need.
 *
 * @internal
 */
import { Effect } from "effect"
import { createHash } from "node:crypto"
import { errorSummary, redact } from "../Redact.js"
import type { Connection } from "./connection.js"
import type { Dialect } from "./dialect.js"
import type { DriverError, Folder, MigrationStatus, Provider } from "./model.js"
import { MigrationError } from "./model.js"

/** Prisma's checksum: SHA-256 of the script's UTF-8 bytes, lower-case hex. */
export const checksum = (script: string): string => createHash("sha256").update(script, "utf8").digest("hex")

/** Prisma's comparison: the script as it is, or with its line endings turned either way; old unpadded hex too. */
export const matches = (recorded: string, script: string) => {
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

export interface Row {
  readonly id: string
  readonly checksum: string
  readonly name: string
  readonly finished: boolean
  readonly rolledBack: boolean
}

/** The table's rows, oldest first; undefined when the table is not there. */
export const readRows = (c: Connection, d: Dialect): Effect.Effect<Array<Row> | undefined, DriverError> =>
  Effect.gen(function*() {
    if (Number((yield* c.query(d.exists))[0]?.n) === 0) return undefined
    const rows = yield* c.query(
      `SELECT id, checksum, migration_name, finished_at, rolled_back_at FROM _prisma_migrations ORDER BY started_at ASC`
    )
    return rows.map((r) => ({
    id: String(r.id),
    checksum: String(r.checksum),
    name: String(r.migration_name),
    finished: r.finished_at !== null && r.finished_at !== undefined,
    rolledBack: r.rolled_back_at !== null && r.rolled_back_at !== undefined
    }))
  })

/** Whether the current schema has tables (Prisma's P3005 asks when there is no history). */
export const hasTables = (c: Connection, d: Dialect): Effect.Effect<boolean, DriverError> =>
  Effect.map(c.query(d.tables), (rows) => Number(rows[0]?.n) > 0)

/** Where the database stands against the folder, by Prisma's rules. */
export const statusOf = (folder: Folder, rows: ReadonlyArray<Row>, needsBaseline = false): MigrationStatus => {
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
    missingLocally: [...appliedNames].filter((n) => !local.has(n)),
    ...(needsBaseline && { needsBaseline })
  }
}

/** Prisma's P3005: tables and no `_prisma_migrations`. */
export const notEmpty = () =>
  new MigrationError({
    code: "P3005",
    reason: `The database schema is not empty and has no _prisma_migrations table: baseline it first ` +
      `(\`npx flexidb migrate resolve --applied <name>\` for each migration it already has). ` +
      `Read more: https://pris.ly/d/migrate-baseline`
  })

/** migration_lock.toml's provider must be the database's (P3019). */
export const checkProvider = (folder: Folder, provider: Provider): Effect.Effect<void, MigrationError> => {
  const locked = folder.lockProvider
  if (locked === undefined || locked === provider || (locked === "postgres" && provider === "postgresql")) return Effect.void
  return Effect.fail(new MigrationError({
    code: "P3019",
    reason: `The datasource provider \`${provider}\` of the database does not match the one specified in the ` +
      `migration_lock.toml, \`${locked}\`. These migrations are for another kind of database.`
  }))
}

/**
 * What `deployMigrations` would refuse for this status, changing nothing: a database to baseline first (P3005), a
 * failed migration (P3009), a modified or a missing one; undefined when a deploy may go ahead (`flexidb migrate deploy --dry-run` reports it).
 *
 * @since 0.2.0
 */
export const deployRefusal = (status: MigrationStatus): MigrationError | undefined => {
  if (status.needsBaseline === true) return notEmpty()
  if (status.failed.length > 0) {
    return new MigrationError({
      code: "P3009",
      migration: status.failed[0],
      reason: `migrate found failed migrations in the target database, new migrations will not be applied: ` +
        `${status.failed.map((n) => `\`${n}\``).join(", ")}. Fix the database, then mark each one with ` +
        `\`npx flexidb migrate resolve --applied <name>\` (fixed by hand) or \`--rolled-back <name>\` (undone by hand). ` +
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

/** A failed script's code and message, as Prisma records them in `logs`. */
export const failure = (error: unknown): { code: string; message: string } => {
  const e = error as { meta?: { code?: unknown; message?: unknown }; code?: unknown; errno?: unknown }
  const code = e?.meta?.code ?? e?.errno ?? e?.code ?? "none"
  const message = typeof e?.meta?.message === "string" ? e.meta.message : errorSummary(error)
  return { code: String(code), message: redact(message) }
}
