/**
 * The catalog's own connections: a small pg pool on the catalog database, and an admin pool per tenant server (pg
 * or mariadb, loaded when a server of that engine is first used). Both drivers are optional peer dependencies.
 */
import type * as Pg from "pg"
import { ConnectionError } from "../../Errors.js"
import { isUnhealthy } from "../classify.js"
import { guardPool } from "../idleCheck.js"
import type { Admin } from "./engines.js"
import type { Server } from "./servers.js"
import type { Session } from "./store.js"

/** A catalog or tenant server that cannot be reached (refused, dropped, unknown host, or refusing our login). */
export const unreachable = (e: unknown): boolean =>
  isUnhealthy(e) || ["ECONNREFUSED", "ENOTFOUND", "28P01", "28000"].includes(String((e as { code?: unknown })?.code))

export interface CatalogPool extends Session {
  /** Runs `f` on one connection of the pool (a transaction, or LISTEN). */
  readonly session: <A>(f: (s: Session) => Promise<A>) => Promise<A>
  readonly end: () => Promise<void>
}

/** The drivers are the app's (optional peer dependencies), loaded by name so no bundler pulls them in. */
const load = async (pkg: string, where: string): Promise<any> => {
  try {
    const m = await import(pkg)
    return m.default ?? m
  } catch (cause) {
    throw new ConnectionError({
      database: where,
      attempts: 0,
      reason: `the catalog needs the '${pkg}' package (the driver under its Prisma adapter): npm install ${pkg}`,
      cause
    })
  }
}

export const loadPg = (where: string): Promise<typeof Pg> => load("pg", where)

/** better-sqlite3 (a file tenant's move uses its online backup API). */
export const loadSqlite = (where: string): Promise<any> => load("better-sqlite3", where)

export const openCatalogPool = async (
  url: string,
  max = 4,
  /** Keep idle connections open (a follower's lookups then never pay for a connection; the heartbeat uses one too). */
  keepIdle = false
): Promise<CatalogPool> => {
  const pg = await loadPg("catalog")
  const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: 5_000, ...(keepIdle && { idleTimeoutMillis: 0 }) })
  // An idle connection the server closed: the pool drops it and opens another when asked.
  pool.on("error", () => undefined)
  guardPool(pool) // and one a network forgot, checked before use
  return {
    query: (sql, params) => pool.query(sql, params as Array<unknown>),
    session: async (f) => {
      const client = await pool.connect()
      let broken: Error | undefined
      try {
        return await f({ query: (sql, params) => client.query(sql, params as Array<unknown>) })
      } catch (e) {
        broken = e as Error
        throw e
      } finally {
        client.release(broken !== undefined && (broken as { code?: string }).code === undefined ? broken : undefined)
      }
    },
    end: () => pool.end()
  }
}

const pgAdmin = async (server: Server): Promise<Admin> => {
  const pg = await loadPg(`server '${server.name}'`)
  const pool = new pg.Pool({ connectionString: server.base, max: 2, connectionTimeoutMillis: 5_000 })
  pool.on("error", () => undefined)
  guardPool(pool)
  return {
    query: async (sql, params) => (await pool.query(sql, params as Array<unknown>)).rows,
    end: () => pool.end()
  }
}

const mariadbAdmin = async (server: Server): Promise<Admin> => {
  const mariadb = await load("mariadb", `server '${server.name}'`)
  const u = new URL(server.base)
  const pool = mariadb.createPool({
    host: u.hostname,
    port: u.port === "" ? 3306 : Number(u.port),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    connectionLimit: 2,
    connectTimeout: 5_000,
    acquireTimeout: 10_000,
    // A failed connection is tried again every 500 ms for an hour, not in rounds of acquireTimeout with a back-off
    // growing 200 ms a round: back within 500 ms of the server (README: Reliability).
    initializationTimeout: 3_600_000
  })
  return {
    query: async (sql, params) => {
      const rows: unknown = await pool.query(sql, params as Array<unknown>)
      return Array.isArray(rows) ? [...rows] as Array<Record<string, unknown>> : []
    },
    end: () => pool.end()
  }
}

export const openAdmin = (server: Server): Promise<Admin> =>
  server.engine === "postgresql" ? pgAdmin(server) : mariadbAdmin(server)
