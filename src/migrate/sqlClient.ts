/**
 * `openSqlClient(url)`: the client `deployFleet` gives `verify` when the app gave no `client` factory — raw SQL on
 * the tenant's database, over the driver the in-process migrate uses (pg, mariadb, better-sqlite3), with the method
 * names of Prisma's raw API. A PostgreSQL URL's `?schema=` (Prisma's) becomes the search path, so unqualified names
 * are the tenant's tables. It connects at its first query and `$disconnect()` closes it.
 *
 * @since 0.2.0
 */
import { MigrationError } from "./model.js"
import { sqlitePath } from "./connection.js"

/**
 * Raw SQL on one tenant's database. Placeholders are the database's own, as in Prisma's `$queryRawUnsafe`: `$1, $2`
 * on PostgreSQL, `?` on MySQL/MariaDB and SQLite; `$queryRaw` (a tagged template) writes them for you.
 *
 * @since 0.2.0
 */
export interface SqlClient {
  /** Rows of a query: `await client.$queryRaw\`SELECT count(*) AS n FROM "User" WHERE "id" > ${0}\``. */
  $queryRaw<T = Record<string, unknown>>(strings: TemplateStringsArray, ...values: ReadonlyArray<unknown>): Promise<Array<T>>
  $queryRawUnsafe<T = Record<string, unknown>>(sql: string, ...values: ReadonlyArray<unknown>): Promise<Array<T>>
  /** A statement's count of affected rows. */
  $executeRawUnsafe(sql: string, ...values: ReadonlyArray<unknown>): Promise<number>
  $disconnect(): Promise<void>
}

interface Driver {
  readonly placeholder: (i: number) => string
  readonly query: (sql: string, values: ReadonlyArray<unknown>) => Promise<{ rows: Array<any>; count: number }>
  readonly close: () => Promise<void>
}

const load = async (pkg: string): Promise<any> => {
  try {
    const m = await import(pkg)
    return m.default ?? m
  } catch {
    throw new MigrationError({
      code: "FLEXIDB_MIGRATION_DRIVER",
      reason: `the verify client needs the '${pkg}' package (the driver under its Prisma adapter): npm install ${pkg}`
    })
  }
}

const connect = async (url: string): Promise<Driver> => {
  const scheme = /^([a-z]+):/i.exec(url)?.[1]?.toLowerCase()
  if (scheme === "file") {
    const Sqlite = await load("better-sqlite3")
    const db = new Sqlite(sqlitePath(url), { fileMustExist: true })
    return {
      placeholder: () => "?",
      query: async (sql, values) => {
        const statement = db.prepare(sql)
        if (statement.reader) return { rows: statement.all(...values), count: 0 }
        return { rows: [], count: statement.run(...values).changes }
      },
      close: async () => db.close()
    }
  }
  if (scheme === "postgres" || scheme === "postgresql") {
    const pg = await load("pg")
    const u = new URL(url)
    const schema = u.searchParams.get("schema")
    u.searchParams.delete("schema")
    const client = new pg.Client({ connectionString: u.toString() })
    client.on("error", () => {})
    await client.connect()
    if (schema !== null && schema !== "") {
      await client.query(`SELECT set_config('search_path', $1, false)`, [`"${schema.replaceAll('"', '""')}"`])
    }
    return {
      placeholder: (i) => `$${i + 1}`,
      query: async (sql, values) => {
        const r = await client.query(sql, values.length === 0 ? undefined : [...values])
        return { rows: r.rows, count: r.rowCount ?? 0 }
      },
      close: () => client.end()
    }
  }
  if (scheme === "mysql" || scheme === "mariadb") {
    const mariadb = await load("mariadb")
    const conn = await mariadb.createConnection(url.replace(/^mysql:/i, "mariadb:"))
    return {
      placeholder: () => "?",
      query: async (sql, values) => {
        const r = await conn.query(sql, [...values])
        return Array.isArray(r) ? { rows: [...r], count: 0 } : { rows: [], count: Number(r?.affectedRows ?? 0) }
      },
      close: () => conn.end()
    }
  }
  throw new MigrationError({
    code: "FLEXIDB_MIGRATION_URL",
    reason: `cannot tell the database from the tenant's URL: use file:, postgresql:// or mysql:// (mariadb://)`
  })
}

/**
 * A raw SQL client for the database `url` names (see `SqlClient`); it connects at its first query.
 *
 * @since 0.2.0
 */
export const openSqlClient = (url: string): SqlClient => {
  let driver: Promise<Driver> | undefined
  const get = () => (driver ??= connect(url))
  const run = async (sql: string, values: ReadonlyArray<unknown>) => (await get()).query(sql, values)
  return {
    $queryRaw: async (strings, ...values) => {
      const d = await get()
      const sql = strings.reduce((text, part, i) => text + (i === 0 ? "" : d.placeholder(i - 1)) + part, "")
      return (await d.query(sql, values)).rows
    },
    $queryRawUnsafe: async (sql, ...values) => (await run(sql, values)).rows,
    $executeRawUnsafe: async (sql, ...values) => (await run(sql, values)).count,
    $disconnect: async () => {
      const d = driver
      driver = undefined
      if (d !== undefined) await d.then((c) => c.close(), () => {})
    }
  }
}
