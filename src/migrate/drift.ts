/**
 * `fleetDrift`: each tenant's live schema against what its applied migrations produce. The applied migrations are
 * replayed once per distinct applied set on a scratch of the same kind — a schema in the same database for schema
 * tenants, a database on the same server for database tenants — and both sides are read from the catalog (tables,
 * columns with type, nullability and default, indexes, foreign keys), many schemas per query.
 *
 * @since 0.2.0
 */
import { randomUUID } from "node:crypto"
import { cpSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { deployMigrations, MigrationError } from "../migrate.js"
import { errorSummary, redact } from "../Redact.js"
import { mysqlDrift } from "./driftMysql.js"
import { sqlitePath, sqliteSnapshot } from "./driftSqlite.js"
import { fleetStatus, schemaTenant } from "./fleetStatus.js"

/** @since 0.2.0 */
export type DriftKind =
  | "missing-table"
  | "extra-table"
  | "missing-column"
  | "extra-column"
  | "column-type"
  | "column-nullability"
  | "column-default"
  | "missing-index"
  | "extra-index"
  | "index-definition"
  | "missing-foreign-key"
  | "extra-foreign-key"
  | "foreign-key-definition"

/** One difference: `missing-*` is in what the migrations produce and not in the tenant, `extra-*` the reverse. @since 0.2.0 */
export interface Drift {
  readonly kind: DriftKind
  readonly table: string
  readonly column?: string | undefined
  readonly detail: string
}

/** @since 0.2.0 */
export interface FleetDriftResult {
  /** Every tenant, in the fleet's order; `drift` is empty for a clean one. */
  readonly tenants: ReadonlyArray<{ readonly name: string; readonly drift: ReadonlyArray<Drift> }>
}

/** @since 0.2.0 */
export interface FleetDriftOptions {
  readonly tenants: Iterable<{ readonly name: string; readonly url: string }> | AsyncIterable<{ readonly name: string; readonly url: string }>
  readonly migrations: string
  /** Schemas read per catalog query. Default 500. */
  readonly batch?: number | undefined
}

/** @internal */
export interface Column {
  readonly type: string
  readonly notNull: boolean
  readonly default: string | null
}
/** @internal */
export interface Table {
  readonly columns: Map<string, Column>
  readonly indexes: Map<string, string>
  readonly foreignKeys: Map<string, string>
}
/** @internal A schema's tables by name. */
export type Snapshot = Map<string, Table>

/** Removes a schema's qualifier from catalog text (`s3."User"`, `"s-3".x`), so two schemas' definitions compare. */
const unqualify = (text: string, schema: string) => {
  const esc = schema.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  return text.replace(new RegExp(`"${esc}"\\.|\\b${esc}\\.`, "g"), "")
}

/** Catalog snapshots of many schemas of one database, `batch` schemas per query. */
const snapshots = async (url: string, schemas: ReadonlyArray<string>, batch: number): Promise<Map<string, Snapshot>> => {
  const pg = (await import("pg")).default
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  const out = new Map<string, Snapshot>(schemas.map((s) => [s, new Map()]))
  const table = (schema: string, name: string) => {
    const snap = out.get(schema)!
    let t = snap.get(name)
    if (t === undefined) snap.set(name, t = { columns: new Map(), indexes: new Map(), foreignKeys: new Map() })
    return t
  }
  try {
    for (let i = 0; i < schemas.length; i += batch) {
      const part = [...schemas.slice(i, i + batch)]
      const tables = `c.relkind IN ('r', 'p') AND c.relname <> '_prisma_migrations' AND n.nspname = ANY($1::text[])`
      const cols = await client.query(
        `SELECT n.nspname AS s, c.relname AS t, a.attname AS col, format_type(a.atttypid, a.atttypmod) AS type,
                a.attnotnull AS nn, pg_get_expr(d.adbin, d.adrelid) AS def
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
         LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
         WHERE ${tables}`,
        [part]
      )
      for (const r of cols.rows) {
        const t = table(r.s, r.t)
        if (r.col !== null) t.columns.set(r.col, { type: r.type, notNull: r.nn, default: r.def === null ? null : unqualify(r.def, r.s) })
      }
      const idx = await client.query(
        `SELECT n.nspname AS s, c.relname AS t, i.relname AS name, pg_get_indexdef(x.indexrelid) AS def
         FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${tables}`,
        [part]
      )
      for (const r of idx.rows) table(r.s, r.t).indexes.set(r.name, unqualify(r.def, r.s))
      const fks = await client.query(
        `SELECT n.nspname AS s, c.relname AS t, k.conname AS name, pg_get_constraintdef(k.oid) AS def
         FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE k.contype = 'f' AND ${tables}`,
        [part]
      )
      for (const r of fks.rows) table(r.s, r.t).foreignKeys.set(r.name, unqualify(r.def, r.s))
    }
    return out
  } finally {
    await client.end().catch(() => {})
  }
}

/** The differences of `live` from `expected`. */
export const compare = (expected: Snapshot, live: Snapshot): Array<Drift> => {
  const out: Array<Drift> = []
  const names = [...new Set([...expected.keys(), ...live.keys()])].sort()
  for (const name of names) {
    const e = expected.get(name)
    const l = live.get(name)
    if (l === undefined) {
      out.push({ kind: "missing-table", table: name, detail: `table ${name} is not in the database` })
      continue
    }
    if (e === undefined) {
      out.push({ kind: "extra-table", table: name, detail: `table ${name} is not made by the applied migrations` })
      continue
    }
    for (const col of [...new Set([...e.columns.keys(), ...l.columns.keys()])].sort()) {
      const a = e.columns.get(col)
      const b = l.columns.get(col)
      if (b === undefined) out.push({ kind: "missing-column", table: name, column: col, detail: `expected ${a!.type}` })
      else if (a === undefined) out.push({ kind: "extra-column", table: name, column: col, detail: `${b.type} is not made by the applied migrations` })
      else {
        if (a.type !== b.type) out.push({ kind: "column-type", table: name, column: col, detail: `expected ${a.type}, found ${b.type}` })
        if (a.notNull !== b.notNull) {
          out.push({ kind: "column-nullability", table: name, column: col, detail: `expected ${a.notNull ? "NOT NULL" : "nullable"}, found ${b.notNull ? "NOT NULL" : "nullable"}` })
        }
        if (a.default !== b.default) out.push({ kind: "column-default", table: name, column: col, detail: `expected ${a.default ?? "no default"}, found ${b.default ?? "no default"}` })
      }
    }
    for (const [kind, map] of [["index", "indexes"], ["foreign-key", "foreignKeys"]] as const) {
      for (const key of [...new Set([...e[map].keys(), ...l[map].keys()])].sort()) {
        const a = e[map].get(key)
        const b = l[map].get(key)
        if (b === undefined) out.push({ kind: `missing-${kind}`, table: name, detail: `${key}: ${a}` })
        else if (a === undefined) out.push({ kind: `extra-${kind}`, table: name, detail: `${key}: ${b}` })
        else if (a !== b) out.push({ kind: `${kind}-definition`, table: name, detail: `${key}: expected ${a}, found ${b}` })
      }
    }
  }
  return out
}

const failure = (what: string, error: unknown) =>
  new MigrationError({ code: "FLEXIDB_FLEET_DRIFT", reason: `${what} (${redact(errorSummary(error))})` })

/**
 * Compares each tenant's live schema with what its applied migrations produce, replayed once per distinct applied
 * set on a scratch schema (schema tenants: in the same database) or scratch database (database tenants: on the same
 * server — MySQL/MariaDB tenants too, read from `information_schema`), dropped afterwards; SQLite tenants on a
 * scratch file. Tenants of more than one kind in one fleet reject with `FLEXIDB_FLEET_DRIFT` before anything runs. Rejects with a `MigrationError` when the folder cannot be read or a server refuses (never naming its URL).
 *
 * @since 0.2.0
 */
export const fleetDrift = async (options: FleetDriftOptions): Promise<FleetDriftResult> => {
  const tenants: Array<{ name: string; url: string }> = []
  for await (const t of options.tenants as AsyncIterable<{ name: string; url: string }>) tenants.push({ name: t.name, url: t.url })
  const kindOf = (url: string) =>
    /^postgres(ql)?:\/\//i.test(url) ? "PostgreSQL" : /^file:/i.test(url) ? "SQLite" : /^(mysql|mariadb):\/\//i.test(url) ? "MySQL" : undefined
  const other = tenants.find((t) => kindOf(t.url) === undefined)
  if (other !== undefined) {
    throw new MigrationError({
      code: "FLEXIDB_FLEET_DRIFT",
      reason: `drift is checked for PostgreSQL, MySQL/MariaDB and SQLite tenants; '${other.name}' is none of them`
    })
  }
  const kinds = new Set(tenants.map((t) => kindOf(t.url)))
  if (kinds.size > 1) {
    throw new MigrationError({
      code: "FLEXIDB_FLEET_DRIFT",
      reason: `a fleet is of one kind (${[...kinds].join(", ")} found): check each kind on its own`
    })
  }
  const batch = options.batch ?? 500
  const statuses = await fleetStatus({ tenants, migrations: options.migrations })
  const work = mkdtempSync(join(tmpdir(), "flexidb-drift-"))
  try {
    if (kinds.has("SQLite")) return await sqliteDrift(tenants, statuses.map((s) => s.applied), options.migrations, work)
    if (kinds.has("MySQL")) return await mysqlDrift(tenants, statuses.map((s) => s.applied), options.migrations, work, batch, compare)
    // Where each tenant lives: (connection URL, schema). A database tenant's schema is public.
    const place = tenants.map((t) => {
      const s = schemaTenant(t.url)
      return s ?? { server: t.url, schema: "public" }
    })
    // Expected snapshots, one per (database kind, applied set): a schema tenant's scratch is a schema of its own
    // database; a database tenant's is a scratch database on its server.
    const expected = new Map<string, Snapshot>()
    const keyOf = (i: number) => `${schemaTenant(tenants[i]!.url) ? place[i]!.server : "db:" + serverOf(place[i]!.server)}\n${statuses[i]!.applied.join(",")}`
    for (let i = 0; i < tenants.length; i++) {
      const key = keyOf(i)
      if (expected.has(key)) continue
      const folder = join(work, `set${expected.size}`)
      mkdirSync(folder)
      for (const m of statuses[i]!.applied) cpSync(join(options.migrations, m), join(folder, m), { recursive: true })
      expected.set(key, await replay(place[i]!, schemaTenant(tenants[i]!.url) !== undefined, folder, batch))
    }
    // Live snapshots, per database, many schemas at once.
    const byDatabase = new Map<string, Array<number>>()
    for (let i = 0; i < tenants.length; i++) {
      const members = byDatabase.get(place[i]!.server)
      if (members === undefined) byDatabase.set(place[i]!.server, [i])
      else members.push(i)
    }
    const live = new Map<number, Snapshot>()
    for (const [server, members] of byDatabase) {
      let snaps
      try {
        snaps = await snapshots(server, [...new Set(members.map((i) => place[i]!.schema))], batch)
      } catch (error) {
        throw failure(`cannot read the catalog of ${tenants[members[0]!]!.name}'s database`, error)
      }
      for (const i of members) live.set(i, snaps.get(place[i]!.schema)!)
    }
    return { tenants: tenants.map((t, i) => ({ name: t.name, drift: compare(expected.get(keyOf(i))!, live.get(i)!) })) }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

const serverOf = (url: string) => {
  const u = new URL(url)
  return `${u.protocol}//${u.username}@${u.host}`
}

/** The migrations in `folder` applied on a scratch of the tenant's kind; its catalog snapshot; the scratch dropped. */
const replay = async (
  place: { readonly server: string; readonly schema: string },
  schemaKind: boolean,
  folder: string,
  batch: number
): Promise<Snapshot> => {
  const pg = (await import("pg")).default
  const scratch = `_flexidb_drift_${randomUUID().replaceAll("-", "").slice(0, 16)}`
  const admin = new pg.Client({ connectionString: place.server })
  await admin.connect()
  try {
    if (schemaKind) {
      try {
        await deployMigrations({ url: place.server, migrations: folder, schema: scratch })
        return (await snapshots(place.server, [scratch], batch)).get(scratch)!
      } finally {
        await admin.query(`DROP SCHEMA IF EXISTS "${scratch}" CASCADE`)
      }
    }
    await admin.query(`CREATE DATABASE "${scratch}"`)
    try {
      const u = new URL(place.server)
      u.pathname = `/${scratch}`
      await deployMigrations({ url: u.toString(), migrations: folder })
      return (await snapshots(u.toString(), ["public"], batch)).get("public")!
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS "${scratch}" WITH (FORCE)`)
    }
  } catch (error) {
    throw error instanceof MigrationError ? error : failure("cannot replay the applied migrations on a scratch", error)
  } finally {
    await admin.end().catch(() => {})
  }
}

/** SQLite: each applied set replayed on a scratch file in a temporary folder, each tenant's file read read-only. */
const sqliteDrift = async (
  tenants: ReadonlyArray<{ readonly name: string; readonly url: string }>,
  applied: ReadonlyArray<ReadonlyArray<string>>,
  migrations: string,
  work: string
): Promise<FleetDriftResult> => {
  const expected = new Map<string, Snapshot>()
  const out: Array<{ name: string; drift: ReadonlyArray<Drift> }> = []
  for (const [i, t] of tenants.entries()) {
    const key = applied[i]!.join(",")
    if (!expected.has(key)) {
      const folder = join(work, `set${expected.size}`)
      mkdirSync(folder)
      for (const m of applied[i]!) cpSync(join(migrations, m), join(folder, m), { recursive: true })
      const scratch = join(work, `set${expected.size}.db`)
      await deployMigrations({ url: `file:${scratch}`, migrations: folder })
      expected.set(key, await sqliteSnapshot(scratch))
    }
    let live
    try {
      live = await sqliteSnapshot(sqlitePath(t.url))
    } catch (error) {
      throw failure(`cannot read ${t.name}'s database file`, error)
    }
    out.push({ name: t.name, drift: compare(expected.get(key)!, live) })
  }
  return { tenants: out }
}
