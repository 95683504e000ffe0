/**
 * What the in-process migrate runs on: the databases of a tenants module (`--tenants`), or the project's own
 * databases (`--in-process`), each checked before anything runs. Every message here names the tenant or the
 * entry; a URL never appears in one, not even redacted.
 */
import { Console, Effect } from "effect"
import { existsSync, readFileSync, statSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, isAbsolute, join, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { redact } from "../src/index.js"
import { CliError } from "./error.js"
import type { ProjectFiles } from "./project.js"
import { databaseUrl, MIGRATIONS_DIR, migrationsPath, missingUrl, readSchema, SCHEMAS_DIR, urlVariable } from "./project.js"
import { stringField } from "./schema.js"
import { catalogFleet, CATALOG } from "./catalog-fleet.js"
import type { CatalogFlags } from "./catalog-fleet.js"

export { CATALOG } from "./catalog-fleet.js"
export type { CatalogFlags } from "./catalog-fleet.js"

export type Provider = "sqlite" | "postgresql" | "mysql"

/** One database to migrate. */
export interface Target {
  /** The tenant's name (`--tenants`) or the schema's (`--in-process`). */
  readonly name: string
  /** The URL the library opens: a relative SQLite path made absolute against the project's root. */
  readonly url: string
  /** PostgreSQL: the schema the migrations go in (the entry's `schema`, or the URL's `?schema=`). */
  readonly schema?: string | undefined
  readonly migrations: string
  /**
   * The lock a deploy takes, as Prisma's: targets with one lock run one after the other, never waiting on each other
   * into a timeout. PostgreSQL's advisory lock is the database's (a schema per tenant shares it); MySQL's
   * `GET_LOCK('prisma_migrate')` is the whole server's; SQLite's is the file's.
   */
  readonly lock: string
  /** Set when this database cannot run (no URL): reported failed, never attempted. */
  readonly problem?: { readonly code: string; readonly reason: string } | undefined
  /**
   * Set when this database must not be touched now (`--tenants catalog`: a suspended tenant, fenced by its engine, or
   * one being moved): reported skipped with this reason, never attempted, not a failure.
   */
  readonly skip?: string | undefined
}

/** The one line of an error that flexidb shows: its message's first line, without credentials. */
export const firstLine = (error: unknown): string => {
  const text = error instanceof Error ? error.message : String(error)
  const line = text.split("\n").map((l) => l.trim()).find((l) => l !== "") ?? (error instanceof Error ? error.name : "error")
  const clean = redact(line)
  return clean.length > 300 ? `${clean.slice(0, 299)}…` : clean
}

const schemes: Record<string, Provider> = {
  file: "sqlite",
  postgres: "postgresql",
  postgresql: "postgresql",
  mysql: "mysql",
  mariadb: "mysql"
}

const providerOfSchema = (raw: string | undefined): Provider | undefined =>
  raw === "sqlite" ? "sqlite" : raw === "postgresql" || raw === "postgres" ? "postgresql" : raw === "mysql" ? "mysql" : undefined

/** The schema's datasource provider, when it is one the in-process migrate handles and written as a string. */
export const schemaProvider = (project: ProjectFiles, name: string): Effect.Effect<string | undefined, CliError> =>
  Effect.map(readSchema(project, name), (schema) => {
    const datasource = schema.datasources[0]
    return datasource === undefined ? undefined : stringField(datasource, "provider")
  })

const pgSchema = /^[A-Za-z0-9_-]{1,63}$/

/**
 * Checks one URL (never echoing it) and turns it into what the library opens, with the key that says which
 * database it is: two targets with one key would run twice on one database.
 */
export const checkUrl = (
  root: string,
  url: string,
  schemaField: unknown,
  expected: string | undefined
): { readonly url: string; readonly schema?: string | undefined; readonly key: string; readonly lock: string } | string => {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase()
  const provider = scheme === undefined ? undefined : schemes[scheme]
  if (provider === undefined) {
    return `its url ${scheme === undefined ? "has no scheme" : `is a '${scheme}:' URL`}: the in-process migrate opens ` +
      `file: (SQLite), postgresql:// (PostgreSQL) and mysql:// or mariadb:// (MySQL, MariaDB) URLs`
  }
  const wanted = providerOfSchema(expected)
  if (expected !== undefined && wanted !== provider) {
    return `its url is a ${provider} URL, but the schema's datasource provider is '${expected}'`
  }
  if (schemaField !== undefined && (typeof schemaField !== "string" || !pgSchema.test(schemaField))) {
    return `schema must be a PostgreSQL schema name (1 to 63 letters, digits, '_' or '-')`
  }
  if (provider === "sqlite") {
    if (schemaField !== undefined) return `schema is for PostgreSQL; this is a SQLite URL`
    const path = url.replace(/^file:(\/\/)?/i, "").replace(/\?.*$/, "")
    if (path === "" || path === ":memory:") return `its url names no SQLite file`
    const file = isAbsolute(path) ? path : resolve(root, path)
    return { url: `file:${file}`, key: `sqlite:${file}`, lock: `sqlite:${file}` }
  }
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return `its url does not parse as a URL`
  }
  // Prisma's own `?schema=` on a PostgreSQL URL: the schema Prisma would migrate (the entry's `schema`, if both, agrees).
  const fromUrl = provider === "postgresql" ? parsed.searchParams.get("schema") ?? undefined : undefined
  if (provider !== "postgresql" && schemaField !== undefined) return `schema is for PostgreSQL; this is a ${provider} URL`
  if (fromUrl !== undefined && !pgSchema.test(fromUrl)) {
    return `its url's ?schema= must be a PostgreSQL schema name (1 to 63 letters, digits, '_' or '-')`
  }
  if (fromUrl !== undefined && schemaField !== undefined && fromUrl !== schemaField) {
    return `its url's ?schema= and its schema field name different schemas`
  }
  const schema = (schemaField as string | undefined) ?? fromUrl
  const port = parsed.port || (provider === "postgresql" ? "5432" : "3306")
  const socket = parsed.searchParams.get("host") ?? parsed.searchParams.get("socket") ?? ""
  const host = `${parsed.hostname.toLowerCase()}:${port}${socket}`
  const database = `${provider}://${host}${parsed.pathname}`
  return { url, schema, key: `${database}#${schema ?? ""}`, lock: provider === "mysql" ? `mysql://${host}` : database }
}

/** The migrations folder every tenant shares: the schema's, which must exist. */
const tenantMigrations = (project: ProjectFiles, schema: string): Effect.Effect<string, CliError> => {
  const folder = migrationsPath(project, schema)
  return existsSync(folder) && statSync(folder).isDirectory()
    ? Effect.succeed(folder)
    : Effect.fail(new CliError(
      `No migrations folder ${join(MIGRATIONS_DIR, schema)}/ for schema '${schema}': create the migrations with ` +
        `'npx flexidb migrate dev --schema ${schema}' first.`
    ))
}

const TS = /\.[cm]?tsx?$/

/** The project's tsx, to import a TypeScript module in a Node that cannot: its `tsImport`, if installed. */
const projectTsx = async (root: string): Promise<((specifier: string, parent: string) => Promise<any>) | undefined> => {
  try {
    const require = createRequire(join(root, "package.json"))
    const manifest = require.resolve("tsx/package.json")
    const api = JSON.parse(readFileSync(manifest, "utf8")).exports?.["./esm/api"]?.import?.default
    if (typeof api !== "string") return undefined
    const m = await import(pathToFileURL(join(dirname(manifest), api)).href)
    return typeof m.tsImport === "function" ? m.tsImport : undefined
  } catch {
    return undefined
  }
}

/** Imports the tenants module; resolves its default export. */
const importModule = (root: string, specifier: string): Effect.Effect<unknown, CliError> =>
  Effect.tryPromise({
    try: async () => {
      const file = resolve(root, specifier)
      if (!existsSync(file)) throw new CliError(`--tenants ${specifier}: no such file (${file}).`)
      const href = pathToFileURL(file).href
      let ns: Record<string, unknown>
      try {
        ns = await import(href)
      } catch (error) {
        if (!(TS.test(file) && (error as { code?: unknown })?.code === "ERR_UNKNOWN_FILE_EXTENSION")) throw error
        // This Node cannot import TypeScript by itself: through the project's tsx, as `flexidb seed` runs a .ts seed.
        const tsImport = await projectTsx(root)
        if (tsImport === undefined) {
          throw new CliError(
            `--tenants ${specifier} is TypeScript, which this Node cannot import by itself. Install tsx in the ` +
              `project (npm install -D tsx: flexidb then imports it through tsx), run flexidb under it ` +
              `(node --import tsx node_modules/.bin/flexidb …), or give a .js/.mjs module.`
          )
        }
        ns = await tsImport(href, pathToFileURL(join(root, "package.json")).href)
      }
      if (!("default" in ns) || ns.default === undefined) {
        throw new CliError(
          `--tenants ${specifier} has no default export: export default an array of { name, url }, an async ` +
            `iterable of them, or a function (possibly async) that returns either.`
        )
      }
      // A module loaded as CommonJS (a .ts outside a "type": "module" package, through tsx): its exports object.
      const exported = ns.default as Record<PropertyKey, unknown>
      const wrapped = typeof exported === "object" && exported !== null && "default" in exported &&
        !(Symbol.iterator in exported) && !(Symbol.asyncIterator in exported)
      return wrapped ? exported.default : exported
    },
    catch: (error) =>
      error instanceof CliError ? error : new CliError(`--tenants ${specifier}: importing it failed: ${firstLine(error)}`)
  })

const describe = (value: unknown) =>
  value === null
    ? "null"
    : Array.isArray(value)
    ? "an array"
    : typeof value === "object" || typeof value === "undefined"
    ? `an ${typeof value}`
    : `a ${typeof value}`

/** Everything the module lists: from an array, an (async) iterable, or a function returning either. */
const entriesOf = (specifier: string, exported: unknown, env: Readonly<Record<string, string>>) =>
  Effect.tryPromise({
    try: async () => {
      // The function gets the environment flexidb sees (the process's over .env): a module can build URLs from it.
      const value = typeof exported === "function" ? await exported({ env }) : exported
      if (Array.isArray(value)) return value as ReadonlyArray<unknown>
      const iterable = value !== null && typeof value === "object" &&
        (Symbol.asyncIterator in value || Symbol.iterator in value)
      if (!iterable) {
        throw new CliError(
          `--tenants ${specifier}: its default export ${typeof exported === "function" ? "returned" : "is"} ` +
            `${describe(value)}; expected an array or an (async) iterable of { name, url }.`
        )
      }
      const out: Array<unknown> = []
      for await (const entry of value as AsyncIterable<unknown>) out.push(entry)
      return out
    },
    catch: (error) =>
      error instanceof CliError ? error : new CliError(`--tenants ${specifier}: listing the tenants failed: ${firstLine(error)}`)
  })

/** A tenant's name: the rule of flexidb's tenants, so a name here is a name there. */
const tenantName = /^[A-Za-z0-9_-]{1,128}$/

/**
 * The tenants of `--tenants <module>`, checked all at once: each entry's name and URL, no name twice, no database
 * twice, every URL of the schema's provider. Any problem refuses the whole list, before anything runs.
 */
export const tenantTargets = (
  project: ProjectFiles,
  specifier: string,
  schema: string,
  only: string | undefined,
  /** False for a reader (doctor): a schema without migrations still has tenants to reach. */
  requireMigrations = true,
  /** `--tenants catalog`: the catalog's URL and servers module, when given as flags (else the environment's). */
  catalog: CatalogFlags = {}
): Effect.Effect<ReadonlyArray<Target>, CliError> =>
  Effect.gen(function*() {
    const migrations = requireMigrations ? yield* tenantMigrations(project, schema) : migrationsPath(project, schema)
    const expected = yield* schemaProvider(project, schema)
    if (specifier === CATALOG) return yield* catalogTargets(project, migrations, expected, only, catalog)
    const entries = yield* entriesOf(specifier, yield* importModule(project.root, specifier), project.env)
    const problems: Array<string> = []
    const targets: Array<Target> = []
    const byName = new Map<string, { readonly index: number; readonly key: string }>()
    const duplicates: Array<string> = []
    const byKey = new Map<string, { name: string; index: number }>()
    entries.forEach((entry, index) => {
      const at = `entry [${index}]`
      if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
        problems.push(`${at}: expected { name, url }, got ${describe(entry)}`)
        return
      }
      const { name, url, schema: schemaField } = entry as Record<string, unknown>
      if (typeof name !== "string" || !tenantName.test(name)) {
        problems.push(
          `${at}: name must be 1 to 128 letters, digits, '_' or '-', got ` +
            (typeof name === "string" ? redact(JSON.stringify(name.length > 60 ? `${name.slice(0, 60)}…` : name)) : describe(name))
        )
        return
      }
      const who = `tenant '${name}' (${at})`
      if (typeof url !== "string" || url === "") {
        problems.push(`${who}: url must be a database URL string, got ${url === "" ? "an empty string" : describe(url)}`)
        return
      }
      const checked = checkUrl(project.root, url, schemaField, expected)
      if (typeof checked === "string") {
        problems.push(`${who}: ${checked}`)
        return
      }
      const twice = byName.get(name)
      if (twice !== undefined) {
        // The same tenant again (a registry's pages overlapping): once is enough. Another database: which is it?
        if (twice.key === checked.key) duplicates.push(`'${name}' (entries [${twice.index}] and [${index}])`)
        else problems.push(`tenant '${name}' is listed twice with different databases (entries [${twice.index}] and [${index}])`)
        return
      }
      byName.set(name, { index, key: checked.key })
      const same = byKey.get(checked.key)
      if (same !== undefined) {
        problems.push(
          `tenants '${same.name}' (entry [${same.index}]) and '${name}' (${at}) are the same database: it would be ` +
            `migrated twice`
        )
        return
      }
      byKey.set(checked.key, { name, index })
      targets.push({ name, url: checked.url, schema: checked.schema, migrations, lock: checked.lock })
    })
    if (problems.length > 0) {
      const shown = problems.slice(0, 10)
      return yield* new CliError(
        `--tenants ${specifier}: ${problems.length} problem${problems.length === 1 ? "" : "s"} in the list, nothing ` +
          `was run:\n${shown.map((p) => `  - ${p}`).join("\n")}` +
          (problems.length > shown.length ? `\n  … and ${problems.length - shown.length} more` : "")
      )
    }
    if (duplicates.length > 0) {
      yield* Console.error(
        `--tenants ${specifier}: listed twice with the same database, migrated once: ${duplicates.slice(0, 10).join(", ")}` +
          (duplicates.length > 10 ? ` and ${duplicates.length - 10} more` : "")
      )
    }
    if (targets.length === 0) return yield* new CliError(`--tenants ${specifier} lists no tenants: nothing to do.`)
    if (only !== undefined) {
      const one = targets.find((t) => t.name === only)
      if (one === undefined) {
        return yield* new CliError(`--tenant ${redact(only)}: no such tenant in ${specifier} (${targets.length} listed).`)
      }
      return [one]
    }
    return targets
  })

/**
 * `--tenants catalog`: every row of the tenant catalog, its URL put together from its server (as the app does), and
 * the servers' templates (FLEXIDB_TEMPLATE_<SERVER>) so new tenants are born current. A suspended or moving tenant is
 * a target to skip, with the reason. A row on a server the environment does not name refuses the whole run.
 */
const catalogTargets = (
  project: ProjectFiles,
  migrations: string,
  expected: string | undefined,
  only: string | undefined,
  flags: CatalogFlags
): Effect.Effect<ReadonlyArray<Target>, CliError> =>
  Effect.gen(function*() {
    const fleet = yield* catalogFleet(project.env, project.root, flags)
    const problems: Array<string> = [...fleet.problems]
    const targets: Array<Target> = []
    for (const entry of fleet.entries) {
      const checked = checkUrl(project.root, entry.url, entry.schema, expected)
      if (typeof checked === "string") {
        problems.push(`${entry.template ? "template" : "tenant"} '${entry.name}' on server '${entry.server}': ${checked.replace(/^its url/, "the server's URL")}`)
        continue
      }
      targets.push({ name: entry.name, url: checked.url, schema: checked.schema, migrations, lock: checked.lock, skip: entry.skip })
    }
    if (problems.length > 0) {
      const shown = problems.slice(0, 10)
      return yield* new CliError(
        `--tenants catalog: ${problems.length} problem${problems.length === 1 ? "" : "s"}, nothing was run:\n` +
          shown.map((p) => `  - ${p}`).join("\n") +
          (problems.length > shown.length ? `\n  … and ${problems.length - shown.length} more` : "")
      )
    }
    if (targets.length === 0) return yield* new CliError(`--tenants catalog: the catalog has no tenants: nothing to do.`)
    if (only !== undefined) {
      const one = targets.find((t) => t.name === only)
      if (one === undefined) {
        return yield* new CliError(`--tenant ${redact(only)}: no such tenant in the catalog (${targets.length} listed).`)
      }
      return [one]
    }
    return targets
  })

/**
 * The project's own databases (`--in-process`): each selected schema's `DATABASE_URL_<NAME>` and
 * `prisma/migrations/<name>/`. A database without a URL, or with one of another kind, fails alone; two schemas on one
 * database refuse the run.
 */
export const projectTargets = (
  project: ProjectFiles,
  names: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<Target>, CliError> =>
  Effect.gen(function*() {
    const targets: Array<Target> = []
    const byKey = new Map<string, string>()
    for (const name of names) {
      const migrations = migrationsPath(project, name)
      const url = databaseUrl(project, name)
      if (url === undefined) {
        targets.push({ name, url: "", migrations, lock: name, problem: { code: "FLEXIDB_NO_URL", reason: missingUrl(name) } })
        continue
      }
      const checked = checkUrl(project.root, url, undefined, yield* schemaProvider(project, name))
      if (typeof checked === "string") {
        targets.push({
          name,
          url: "",
          migrations,
          lock: name,
          problem: {
            code: "FLEXIDB_URL",
            reason: `${urlVariable(name)}: ${checked.replace(/^its url/, "the URL")} (${join(SCHEMAS_DIR, `${name}.prisma`)})`
          }
        })
        continue
      }
      const same = byKey.get(checked.key)
      if (same !== undefined) {
        return yield* new CliError(
          `Schemas '${same}' and '${name}' have the same database: each database has one schema and one migrations folder.`
        )
      }
      byKey.set(checked.key, name)
      targets.push({ name, url: checked.url, schema: checked.schema, migrations, lock: checked.lock })
    }
    return targets
  })
