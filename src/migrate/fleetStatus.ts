/**
 * `fleetStatus`: where every tenant of a fleet stands, in a few queries per server. Schema tenants of one PostgreSQL
 * database (`?schema=` in the URL, as Prisma writes it) are read together: one query finds which schemas have a
 * `_prisma_migrations` table, one `UNION ALL` per batch of 500 reads them — never one connection per tenant, and
 * never one query over 10,000 tables (each table read takes a lock-table slot until the query ends; PostgreSQL's
 * default table has 64 × max_connections of them). Other tenants go through `migrationStatus`, at most
 * `concurrency` at once per server.
 *
 * @since 0.2.0
 */
import { createHash } from "node:crypto"
import { readdir, readFile } from "node:fs/promises"
import { join } from "node:path"
import { checksum, MigrationError, migrationStatus, type MigrationStatus } from "../migrate.js"
import { errorSummary, redact } from "../Redact.js"

/** @since 0.2.0 */
export interface FleetStatusOptions {
  readonly tenants: Iterable<{ readonly name: string; readonly url: string }> | AsyncIterable<{ readonly name: string; readonly url: string }>
  readonly migrations: string
  /** Connections at once per server for database tenants. Default 8. */
  readonly concurrency?: number | undefined
  /** Schemas read per query. Default 500. */
  readonly batch?: number | undefined
}

/**
 * A tenant's status. `needsBaseline`: it has tables but no `_prisma_migrations` (a deploy refuses it, Prisma's
 * P3005, until baselined); absent means false.
 *
 * @since 0.2.0
 */
export type TenantStatus = { readonly name: string } & MigrationStatus & { readonly needsBaseline?: boolean | undefined }

interface Local {
  readonly name: string
  readonly script: string | undefined
}

const readLocal = async (folder: string): Promise<Array<Local>> => {
  let entries
  try {
    entries = await readdir(folder, { withFileTypes: true })
  } catch (error) {
    throw new MigrationError({
      code: "FLEXIDB_MIGRATIONS_FOLDER",
      reason: `cannot read the migrations folder ${folder} (${errorSummary(error)}): give the folder that holds ` +
        `<timestamp>_<name>/migration.sql`
    })
  }
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort((a, b) => a.localeCompare(b))
  return Promise.all(names.map(async (name) => ({
    name,
    script: await readFile(join(folder, name, "migration.sql"), "utf8").catch(() => undefined)
  })))
}

/** Prisma's checksum comparison (as migrationStatus): any line-ending variant; old unpadded hex too. */
const matches = (recorded: string, script: string) => {
  const variants = [script, script.replaceAll("\r\n", "\n"), script.replaceAll("\n", "\r\n")]
  const unpadded = (s: string) => [...createHash("sha256").update(s, "utf8").digest()].map((b) => b.toString(16)).join("")
  return variants.some((v) => recorded.length === 64 ? checksum(v) === recorded : recorded.length > 0 && unpadded(v) === recorded)
}

interface Row {
  readonly name: string
  readonly checksum: string
  readonly finished: boolean
  readonly rolledBack: boolean
}

/** migrationStatus's rules over rows ordered by `started_at`. */
export const statusFromRows = (local: ReadonlyArray<Local>, rows: ReadonlyArray<Row>): MigrationStatus => {
  const live = rows.filter((r) => !r.rolledBack)
  const names = new Set(local.map((m) => m.name))
  const appliedRows = live.filter((r) => r.finished)
  const appliedNames = new Set(appliedRows.map((r) => r.name))
  const liveNames = new Set(live.map((r) => r.name))
  return {
    applied: [...local.filter((m) => appliedNames.has(m.name)).map((m) => m.name), ...[...appliedNames].filter((n) => !names.has(n))],
    pending: local.filter((m) => !liveNames.has(m.name)).map((m) => m.name),
    failed: live.filter((r) => !r.finished).map((r) => r.name),
    modified: local.filter((m) => {
      const row = appliedRows.find((r) => r.name === m.name)
      return row !== undefined && m.script !== undefined && !matches(row.checksum, m.script)
    }).map((m) => m.name),
    missingLocally: [...appliedNames].filter((n) => !names.has(n))
  }
}

/** A PostgreSQL URL's database (without `?schema=`) and schema, or undefined for any other tenant. */
export const schemaTenant = (url: string): { readonly server: string; readonly schema: string } | undefined => {
  if (!/^postgres(ql)?:\/\//i.test(url)) return undefined
  try {
    const u = new URL(url)
    const schema = u.searchParams.get("schema")
    if (schema === null || schema === "") return undefined
    u.searchParams.delete("schema")
    return { server: u.toString(), schema }
  } catch {
    return undefined
  }
}

/** A tiny semaphore: at most n at once per key. */
const limiter = (n: number) => {
  const queues = new Map<string, { active: number; waiting: Array<() => void> }>()
  return async <A>(key: string, f: () => Promise<A>): Promise<A> => {
    const q = queues.get(key) ?? { active: 0, waiting: [] }
    queues.set(key, q)
    if (q.active >= n) await new Promise<void>((resolve) => q.waiting.push(resolve))
    q.active++
    try {
      return await f()
    } finally {
      q.active--
      q.waiting.shift()?.()
    }
  }
}

const serverOf = (url: string) => {
  try {
    const u = new URL(url)
    return u.protocol === "file:" ? "file" : `${u.protocol}//${u.host}`
  } catch {
    return "other"
  }
}

const quote = (id: string) => `"${id.replaceAll('"', '""')}"`

/**
 * Reads many schemas' `_prisma_migrations` of one PostgreSQL database, `batch` tables per query. A schema without the
 * table maps to undefined when it has other tables (to baseline, as Prisma's P3005 counts them), else to no rows.
 */
const readSchemas = async (
  server: string,
  schemas: ReadonlyArray<string>,
  batch: number
): Promise<Map<string, Array<Row> | undefined>> => {
  const pg = (await import("pg")).default
  const client = new pg.Client({ connectionString: server })
  await client.connect()
  try {
    const found = new Set<string>(
      (await client.query(
        `SELECT n.nspname AS s FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relname = '_prisma_migrations' AND c.relkind IN ('r', 'p') AND n.nspname = ANY($1::text[])`,
        [schemas]
      )).rows.map((r: { s: string }) => r.s)
    )
    const out = new Map<string, Array<Row> | undefined>(schemas.map((s) => [s, []]))
    const absent = schemas.filter((s) => !found.has(s))
    if (absent.length > 0) {
      const withTables = (await client.query(
        `SELECT DISTINCT n.nspname AS s FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r' AND n.nspname = ANY($1::text[]) AND lower(c.relname) NOT IN
         ('spatial_ref_sys', 'geometry_columns', 'geography_columns', 'raster_columns', 'raster_overviews')`,
        [absent]
      )).rows as Array<{ s: string }>
      for (const r of withTables) out.set(r.s, undefined)
    }
    const present = schemas.filter((s) => found.has(s))
    for (let i = 0; i < present.length; i += batch) {
      const part = present.slice(i, i + batch)
      const sql = part.map((s, k) =>
        `SELECT ${k} AS k, migration_name AS n, checksum AS c, finished_at IS NOT NULL AS f, ` +
        `rolled_back_at IS NOT NULL AS r, started_at AS t FROM ${quote(s)}._prisma_migrations`
      ).join(" UNION ALL ")
      const { rows } = await client.query(`${sql} ORDER BY k, t`)
      for (const r of rows as Array<{ k: number; n: string; c: string; f: boolean; r: boolean }>) {
        out.get(part[r.k]!)!.push({ name: r.n, checksum: r.c, finished: r.f, rolledBack: r.r })
      }
    }
    return out
  } finally {
    await client.end().catch(() => {})
  }
}

/**
 * Where every tenant stands against the folder, as `migrationStatus` says it, in the fleet's order. Schema tenants
 * of one PostgreSQL database are read in a few queries over one connection; other tenants through `migrationStatus`,
 * at most `concurrency` connections at once per server. Changes nothing. Rejects with a `MigrationError` when the
 * folder cannot be read or a server cannot be reached (which server is said, never its URL).
 *
 * @since 0.2.0
 */
export const fleetStatus = async (options: FleetStatusOptions): Promise<Array<TenantStatus>> => {
  const local = await readLocal(options.migrations)
  const tenants: Array<{ name: string; url: string }> = []
  for await (const t of options.tenants as AsyncIterable<{ name: string; url: string }>) tenants.push(t)
  const batch = options.batch ?? 500
  const out = new Map<string, TenantStatus>()
  const bySchema = new Map<string, Array<{ name: string; schema: string }>>()
  const others: Array<{ name: string; url: string }> = []
  for (const t of tenants) {
    const s = schemaTenant(t.url)
    if (s === undefined || !/^[A-Za-z0-9_-]{1,63}$/.test(s.schema)) others.push(t)
    else {
      const members = bySchema.get(s.server)
      if (members === undefined) bySchema.set(s.server, [{ name: t.name, schema: s.schema }])
      else members.push({ name: t.name, schema: s.schema })
    }
  }
  const limit = limiter(options.concurrency ?? 8)
  await Promise.all([
    ...[...bySchema].map(([server, members]) =>
      limit(serverOf(server), async () => {
        let rows
        try {
          rows = await readSchemas(server, [...new Set(members.map((m) => m.schema))], batch)
        } catch (error) {
          throw new MigrationError({
            code: "FLEXIDB_FLEET_STATUS",
            reason: `cannot read the tenants' schemas on ${redact(serverOf(server))} (${redact(errorSummary(error))})`
          })
        }
        for (const m of members) {
          const ledger = rows.get(m.schema)
          out.set(m.name, { name: m.name, ...statusFromRows(local, ledger ?? []), ...(ledger === undefined && { needsBaseline: true }) })
        }
      })
    ),
    ...others.map((t) =>
      limit(serverOf(t.url), async () => {
        out.set(t.name, { name: t.name, ...(await migrationStatus({ url: t.url, migrations: options.migrations })) })
      })
    )
  ])
  return tenants.map((t) => out.get(t.name)!)
}
