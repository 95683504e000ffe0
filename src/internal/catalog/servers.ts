/**
 * Servers and where a tenant lives on one: the catalog stores a server's name and the tenant's location, and the URL
 * is put together here, in the process, from the app's own `servers` config — never stored, never in an error.
 */
import { InvalidArgumentError } from "../../Errors.js"

export type Kind = "database" | "schema" | "file"
export type Engine = "postgresql" | "mysql" | "sqlite"

export interface Server {
  readonly name: string
  readonly engine: Engine
  /** The base URL (for SQLite, the folder), kept in memory only. */
  readonly base: string
}

/** Tenant names reach database, schema and file names: letters, digits, `_` and `-`, as database names. */
const tenantName = /^[A-Za-z0-9_-]{1,128}$/
/** PostgreSQL and MariaDB cut identifiers at 63/64 bytes; 8 more are kept for the parked name (`<name>__parked`). */
const serverNameMax = 55

export const parkedName = (location: string) => `${location}__parked`

export const checkTenantName = (name: unknown): InvalidArgumentError | undefined => {
  if (typeof name !== "string" || !tenantName.test(name)) {
    return new InvalidArgumentError({
      path: "tenant",
      reason: `a tenant name has 1 to 128 letters, digits, '_' or '-', got ${JSON.stringify(name)}`
    })
  }
  return undefined
}

export const engineOf = (url: string): Engine | undefined =>
  /^postgres(?:ql)?:\/\//i.test(url)
    ? "postgresql"
    : /^(?:mysql|mariadb):\/\//i.test(url)
    ? "mysql"
    : /^file:/i.test(url)
    ? "sqlite"
    : undefined

/** Checks the app's `servers` config; the error names the server, never its URL. */
export const parseServers = (servers: unknown): Map<string, Server> | InvalidArgumentError => {
  if (typeof servers !== "object" || servers === null || Array.isArray(servers)) {
    return new InvalidArgumentError({
      path: "servers",
      reason: "expected an object mapping server names to base URLs ({ main: process.env.FLEXIDB_SERVER_MAIN })"
    })
  }
  const out = new Map<string, Server>()
  for (const [name, url] of Object.entries(servers)) {
    if (!tenantName.test(name)) {
      return new InvalidArgumentError({ path: "servers", reason: `a server name has letters, digits, '_' or '-', got ${JSON.stringify(name)}` })
    }
    const engine = typeof url === "string" ? engineOf(url) : undefined
    if (engine === undefined) {
      return new InvalidArgumentError({
        path: `servers.${name}`,
        reason: "expected a postgresql://, mysql:// / mariadb:// URL or a file: folder (the URL is not repeated here)"
      })
    }
    out.set(name, { name, engine, base: url as string })
  }
  return out
}

export const defaultKind = (engine: Engine): Kind => (engine === "sqlite" ? "file" : "database")

/** Why a kind cannot live on a server, or a name is too long for it. */
export const checkPlacement = (name: string, server: Server, kind: Kind): InvalidArgumentError | undefined => {
  const ok = kind === "file" ? server.engine === "sqlite" : kind === "schema" ? server.engine === "postgresql" : server.engine !== "sqlite"
  if (!ok) {
    return new InvalidArgumentError({
      path: "kind",
      reason: `a '${kind}' tenant cannot live on server '${server.name}' (${server.engine}): 'database' needs PostgreSQL ` +
        `or MariaDB, 'schema' PostgreSQL, 'file' a file: folder`
    })
  }
  if (kind !== "file" && name.length > serverNameMax) {
    return new InvalidArgumentError({
      path: "tenant",
      reason: `a ${server.engine} tenant name has at most ${serverNameMax} characters, got ${name.length}`
    })
  }
  return undefined
}

export const locationOf = (name: string, kind: Kind) => (kind === "file" ? `${name}.db` : name)

/** The folder of a `file:` server. */
export const folderOf = (server: Server) => server.base.replace(/^file:(?:\/\/(?=\/))?/i, "").replace(/\/+$/, "") || "/"

/** A URL with its database (path) replaced. */
export const withDatabase = (base: string, database: string) => {
  const u = new URL(base)
  u.pathname = `/${encodeURIComponent(database)}`
  return u.toString()
}

/**
 * The URL a tenant's client connects with: for `database`, the server's URL on the tenant's database; for `schema`,
 * the server's URL itself (the schema goes to the adapter: `new PrismaPg(..., { schema: info.location })`); for
 * `file`, `file:<folder>/<name>.db`.
 */
export const tenantUrl = (server: Server, kind: Kind, location: string) =>
  kind === "file" ? `file:${folderOf(server)}/${location}` : kind === "schema" ? server.base : withDatabase(server.base, location)
