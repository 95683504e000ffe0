/**
 * MySQL/MariaDB's side of `fleetDrift`: database tenants of one server read together from `information_schema`
 * (tables, columns with type, nullability and default, indexes, foreign keys), many databases per query over one
 * connection per server, in the shape the PostgreSQL reader gives, so one comparison serves all. The applied
 * migrations are replayed on a scratch database of the same server, dropped afterwards.
 *
 * @internal
 */
import { randomUUID } from "node:crypto"
import { cpSync, mkdirSync } from "node:fs"
import { join } from "node:path"
import { deployMigrations, MigrationError } from "../migrate.js"
import { errorSummary, redact } from "../Redact.js"
import type { Drift, Snapshot, Table } from "./drift.js"

const failure = (what: string, error: unknown) =>
  new MigrationError({ code: "FLEXIDB_FLEET_DRIFT", reason: `${what} (${redact(errorSummary(error))})` })

/** A tenant's server (its URL without the database) and its database. */
const placeOf = (url: string) => {
  const u = new URL(url.replace(/^mysql:/i, "mariadb:"))
  const database = decodeURIComponent(u.pathname.replace(/^\//, ""))
  u.pathname = "/"
  return { server: u.toString(), database }
}

const withDatabase = (server: string, database: string) => {
  const u = new URL(server)
  u.pathname = `/${encodeURIComponent(database)}`
  return u.toString()
}

/** Snapshots of many databases of one server, `batch` per query, over the connection `conn`. */
const snapshots = async (conn: any, databases: ReadonlyArray<string>, batch: number): Promise<Map<string, Snapshot>> => {
  const out = new Map<string, Snapshot>(databases.map((d) => [d, new Map()]))
  const tableOf = (db: string, name: string): Table | undefined => out.get(db)?.get(name)
  for (let i = 0; i < databases.length; i += batch) {
    const part = databases.slice(i, i + batch)
    const tables = await conn.query(
      `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLES
       WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME <> '_prisma_migrations' AND TABLE_SCHEMA IN (?)`,
      [part]
    )
    for (const r of tables) out.get(r.s)!.set(r.t, { columns: new Map(), indexes: new Map(), foreignKeys: new Map() })
    const columns = await conn.query(
      `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, COLUMN_NAME AS c, COLUMN_TYPE AS type, EXTRA AS extra,
              IS_NULLABLE AS nullable, COLUMN_DEFAULT AS def
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN (?) ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`,
      [part]
    )
    for (const r of columns) {
      const extra = String(r.extra ?? "").trim()
      tableOf(r.s, r.t)?.columns.set(r.c, {
        type: `${r.type}${extra === "" ? "" : ` ${extra}`}`,
        notNull: r.nullable === "NO",
        // MariaDB says NULL (the text) for a nullable column without a default: no default either way.
        default: r.def === null || r.def === "NULL" ? null : String(r.def)
      })
    }
    const indexes = await conn.query(
      `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, INDEX_NAME AS name, NON_UNIQUE AS nu, INDEX_TYPE AS kind,
              GROUP_CONCAT(CONCAT(COLUMN_NAME, IF(SUB_PART IS NULL, '', CONCAT('(', SUB_PART, ')'))) ORDER BY SEQ_IN_INDEX SEPARATOR ', ') AS cols
       FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN (?) GROUP BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, INDEX_TYPE`,
      [part]
    )
    for (const r of indexes) {
      tableOf(r.s, r.t)?.indexes.set(r.name, `${Number(r.nu) === 0 ? "UNIQUE " : ""}${r.kind} (${r.cols})`)
    }
    const fks = await conn.query(
      `SELECT k.TABLE_SCHEMA AS s, k.TABLE_NAME AS t, k.CONSTRAINT_NAME AS name,
              GROUP_CONCAT(k.COLUMN_NAME ORDER BY k.ORDINAL_POSITION SEPARATOR ', ') AS cols,
              k.REFERENCED_TABLE_NAME AS ref,
              GROUP_CONCAT(k.REFERENCED_COLUMN_NAME ORDER BY k.ORDINAL_POSITION SEPARATOR ', ') AS refcols,
              r.UPDATE_RULE AS upd, r.DELETE_RULE AS del
       FROM information_schema.KEY_COLUMN_USAGE k
       JOIN information_schema.REFERENTIAL_CONSTRAINTS r
         ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME
       WHERE k.TABLE_SCHEMA IN (?) AND k.REFERENCED_TABLE_NAME IS NOT NULL
       GROUP BY k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.REFERENCED_TABLE_NAME, r.UPDATE_RULE, r.DELETE_RULE`,
      [part]
    )
    for (const r of fks) {
      tableOf(r.s, r.t)?.foreignKeys.set(r.name, `FOREIGN KEY (${r.cols}) REFERENCES ${r.ref}(${r.refcols}) ON UPDATE ${r.upd} ON DELETE ${r.del}`)
    }
  }
  return out
}

const connect = async (server: string) => {
  const mariadb = (await import("mariadb")).default ?? (await import("mariadb"))
  return mariadb.createConnection(server)
}

/**
 * Drift of MySQL/MariaDB database tenants: per server, each distinct applied set replayed once on a scratch database
 * (`_flexidb_drift_…`, dropped after), then every tenant's database read from `information_schema` in batches.
 */
export const mysqlDrift = async (
  tenants: ReadonlyArray<{ readonly name: string; readonly url: string }>,
  applied: ReadonlyArray<ReadonlyArray<string>>,
  migrations: string,
  work: string,
  batch: number,
  compare: (expected: Snapshot, live: Snapshot) => Array<Drift>
): Promise<{ tenants: Array<{ name: string; drift: ReadonlyArray<Drift> }> }> => {
  const places = tenants.map((t) => placeOf(t.url))
  const byServer = new Map<string, Array<number>>()
  for (const [i, p] of places.entries()) {
    const members = byServer.get(p.server)
    if (members === undefined) byServer.set(p.server, [i])
    else members.push(i)
  }
  const drift = new Map<number, ReadonlyArray<Drift>>()
  let sets = 0
  for (const [server, members] of byServer) {
    let conn
    try {
      // Through the first tenant's database (the driver wants one in the URL); information_schema spans the server.
      conn = await connect(withDatabase(server, places[members[0]!]!.database))
    } catch (error) {
      throw failure(`cannot reach ${tenants[members[0]!]!.name}'s server`, error)
    }
    try {
      // What each applied set makes, on a scratch database of this server.
      const expected = new Map<string, Snapshot>()
      for (const i of members) {
        const key = applied[i]!.join(",")
        if (expected.has(key)) continue
        const folder = join(work, `mysql${sets++}`)
        mkdirSync(folder)
        for (const m of applied[i]!) cpSync(join(migrations, m), join(folder, m), { recursive: true })
        const scratch = `_flexidb_drift_${randomUUID().replaceAll("-", "").slice(0, 16)}`
        try {
          await conn.query(`CREATE DATABASE \`${scratch}\``)
          await deployMigrations({ url: withDatabase(server, scratch), migrations: folder })
          expected.set(key, (await snapshots(conn, [scratch], batch)).get(scratch)!)
        } catch (error) {
          throw error instanceof MigrationError ? error : failure("cannot replay the applied migrations on a scratch database", error)
        } finally {
          await conn.query(`DROP DATABASE IF EXISTS \`${scratch}\``).catch(() => {})
        }
      }
      let live
      try {
        live = await snapshots(conn, [...new Set(members.map((i) => places[i]!.database))], batch)
      } catch (error) {
        throw failure(`cannot read the catalog of ${tenants[members[0]!]!.name}'s server`, error)
      }
      for (const i of members) drift.set(i, compare(expected.get(applied[i]!.join(","))!, live.get(places[i]!.database)!))
    } finally {
      await conn.end().catch(() => {})
    }
  }
  return { tenants: tenants.map((t, i) => ({ name: t.name, drift: drift.get(i)! })) }
}
