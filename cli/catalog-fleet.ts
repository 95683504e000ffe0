/**
 * `--tenants catalog`: the tenant fleet read from the tenant catalog (`flexidb/catalog`) instead of a module. Each row
 * becomes a URL the way an app following the catalog builds it (`tenantUrl`), from the servers the CLI knows
 * (FLEXIDB_SERVER_<NAME> or `--servers <module>`, as `flexidb tenants`); the catalog itself stores no URL.
 *
 * The catalog records no template: `create(name, { template })` names one per call. The CLI takes the templates to
 * keep current from FLEXIDB_TEMPLATE_<SERVER>=<database> (one per PostgreSQL server), so that copies are born current.
 */
import { Effect, Stream } from "effect"
import { Catalog } from "../src/Catalog.js"
import type { Row } from "../src/Catalog.js"
import { parseServers, tenantUrl, withDatabase } from "../src/internal/catalog/servers.js"
import { CliError } from "./error.js"
import { catalogConfig, withCatalog } from "./tenants.js"

/** The keyword `--tenants` takes for the catalog's fleet (a module path is anything else). */
export const CATALOG = "catalog"

/** `--catalog URL` and `--servers <module>`, when a command gives them (else FLEXIDB_CATALOG_URL, FLEXIDB_SERVER_<NAME>). */
export interface CatalogFlags {
  readonly catalog?: string | undefined
  readonly servers?: string | undefined
}

/** One database of the fleet: a tenant (its row) or a server's template. */
export interface FleetEntry {
  readonly name: string
  readonly server: string
  readonly url: string
  /** A `schema` tenant: its schema on the server's database. */
  readonly schema?: string | undefined
  readonly template: boolean
  /** Why it is not migrated now (suspended, moving). */
  readonly skip?: string | undefined
}

const envName = (server: string) => `FLEXIDB_SERVER_${server.toUpperCase()}`

/** Why a row in this state cannot be migrated now, or undefined when it can. */
const skipOf = (row: Row): string | undefined =>
  row.state === "suspended"
    ? `suspended: fenced in its engine (no connection gets in); \`flexidb tenants resume ${row.name}\`, then deploy again`
    : row.state === "moving"
    ? `being moved: deploy again once the move is done`
    : undefined

/**
 * Every row of the catalog, and the templates, as URLs in memory (never printed). A row on a server the CLI has no
 * URL for is a problem naming the server and its variable; the caller refuses the run on any.
 */
export const catalogFleet = (
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
  flags: CatalogFlags
): Effect.Effect<{ readonly entries: ReadonlyArray<FleetEntry>; readonly problems: ReadonlyArray<string> }, CliError> =>
  Effect.gen(function*() {
    const config = yield* catalogConfig(env, cwd, flags)
    const servers = parseServers(config.servers)
    if (!(servers instanceof Map)) return yield* new CliError(`--tenants catalog: ${servers.message}`, { exitCode: 2 })
    const rows = yield* withCatalog(config, (c) => Stream.runCollect(c.list()))
    const where = flags.servers === undefined ? "" : ` (or add it to --servers ${flags.servers})`
    const entries: Array<FleetEntry> = []
    const problems: Array<string> = []
    const missing = new Map<string, number>()
    for (const row of rows) {
      const server = servers.get(row.server)
      if (server === undefined) {
        missing.set(row.server, (missing.get(row.server) ?? 0) + 1)
        continue
      }
      entries.push({
        name: row.name,
        server: row.server,
        url: tenantUrl(server, row.kind, row.location),
        schema: row.kind === "schema" ? row.location : undefined,
        template: false,
        skip: skipOf(row)
      })
    }
    for (const [server, n] of missing) {
      problems.push(`${n} tenant${n === 1 ? " is" : "s are"} on server '${server}', which has no URL: set ${envName(server)}${where}`)
    }
    for (const [key, value] of Object.entries(env)) {
      const m = /^FLEXIDB_TEMPLATE_(.+)$/.exec(key)
      if (m === null || value === undefined || value === "") continue
      const name = m[1]!.toLowerCase()
      const server = servers.get(name)
      if (server === undefined) {
        problems.push(`${key} names a template on server '${name}', which has no URL: set ${envName(name)}${where}`)
      } else if (server.engine !== "postgresql") {
        problems.push(`${key}: templates are PostgreSQL databases; server '${name}' is ${server.engine}`)
      } else if (!/^[A-Za-z0-9_-]{1,63}$/.test(value)) {
        problems.push(`${key} must be a database name (1 to 63 letters, digits, '_' or '-')`)
      } else {
        entries.push({ name: `${value}@${name}`, server: name, url: withDatabase(server.base, value), template: true })
      }
    }
    return { entries, problems }
  })
