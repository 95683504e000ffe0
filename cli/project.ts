/**
 * What the CLI knows about the app it runs in: its schemas (`prisma/schemas/<name>.prisma`), each database's URL
 * variable (`DATABASE_URL_<NAME>`, from the environment or `.env`), its migrations folder, and the installed
 * Prisma major version.
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, resolve } from "node:path"
import { parseEnv } from "node:util"
import { Effect } from "effect"
import { CliError } from "./error.js"
import { Io } from "./io.js"
import type { Schema } from "./schema.js"
import { parseSchema, SchemaParseError } from "./schema.js"

export const SCHEMAS_DIR = join("prisma", "schemas")
export const MIGRATIONS_DIR = join("prisma", "migrations")
export const CONFIGS_DIR = join("prisma", "config")
export const SEEDS_DIR = join("prisma", "seeds")

/** The app's files and environment: all that commands which never run Prisma (the in-process migrate) need. */
export interface ProjectFiles {
  readonly root: string
  /**
   * How the root was found, from the folder flexidb ran in: `schemas` (the nearest folder with prisma/schemas/),
   * `package` (the nearest with package.json, and no prisma/schemas/ on the way), or `none` (neither, up to the
   * file system's root: the folder flexidb ran in). Absent when a caller gave the root.
   */
  readonly found?: { readonly from: string; readonly by: "schemas" | "package" | "none" }
  readonly schemas: ReadonlyArray<string>
  /** The process environment over `.env`: what each Prisma run gets. */
  readonly env: Readonly<Record<string, string>>
  /**
   * The tenants' schema, as `flexidb codegen --tenant-schema` recorded it in package.json (`"flexidb": {
   * "tenantSchema": "tenant", "tenantMode": "database" }`): its databases are the tenants', not one database at
   * `DATABASE_URL_<NAME>`. Absent when the project has none.
   */
  readonly tenants?: TenantSchema | undefined
}

/** The schema every tenant's database has, and where those databases are. */
export interface TenantSchema {
  readonly schema: string
  /** `database`: a database per tenant (`DATABASE_URL_TENANT_TEMPLATE`); `schema`: a PostgreSQL schema per tenant. */
  readonly mode: "database" | "schema"
}

export interface Project extends ProjectFiles {
  /** Installed Prisma major version, 6 or 7. */
  readonly prismaMajor: 6 | 7
}

/** `userProfile`, `user-profile` and `user_profile` all become `USER_PROFILE`. */
export const upperSnake = (name: string) =>
  name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").replace(/[^A-Za-z0-9]+/g, "_").toUpperCase()

export const urlVariable = (name: string) => `DATABASE_URL_${upperSnake(name)}`

/**
 * A .env file's variables, read by Node's own parser (`util.parseEnv`, as `node --env-file` reads it): quotes are
 * removed, `# comments` after a value dropped, `export` and multi-line quoted values understood. Never expands
 * variables.
 */
export const parseDotenv = (source: string): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(parseEnv(source))) {
    if (value !== undefined) Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true })
  }
  return out
}

const isDirectory = (path: string) => {
  try {
    return statSync(path).isDirectory()
  } catch {
    return false
  }
}

/**
 * The project flexidb runs for, as Prisma finds its own: from `cwd` upward, the nearest folder with prisma/schemas/
 * or package.json (whichever comes first). Run from src/ or a package's subfolder, the project is its root.
 */
export const findRoot = (cwd: string): NonNullable<ProjectFiles["found"]> & { readonly root: string } => {
  const from = resolve(cwd)
  for (let dir = from; ; dir = dirname(dir)) {
    if (isDirectory(join(dir, SCHEMAS_DIR))) return { root: dir, from, by: "schemas" }
    if (existsSync(join(dir, "package.json"))) return { root: dir, from, by: "package" }
    if (dirname(dir) === dir) return { root: from, from, by: "none" }
  }
}

const detectPrismaMajor = (root: string): Effect.Effect<6 | 7, CliError> =>
  Effect.try({
    try: () => {
      const require = createRequire(join(root, "package.json"))
      return String(JSON.parse(readFileSync(require.resolve("prisma/package.json"), "utf8")).version)
    },
    // Whatever stops us resolving or reading prisma's package.json, there is no Prisma here to run.
    catch: () => new CliError(`Prisma is not installed in ${root}. Install it first: npm install -D prisma @prisma/client`)
  }).pipe(Effect.flatMap((version) => {
    const major = Number(version.split(".")[0])
    return major === 6 || major === 7
      ? Effect.succeed(major)
      : Effect.fail(new CliError(`flexidb supports Prisma 6 and 7; this project has prisma ${version}.`))
  }))

/** The package.json field flexidb keeps its project settings in. */
const SETTINGS = "flexidb"

/** The tenants' schema package.json records, when it names one of the project's schemas. */
const recordedTenants = (root: string, schemas: ReadonlyArray<string>): TenantSchema | undefined => {
  let settings: unknown
  try {
    settings = JSON.parse(readFileSync(join(root, "package.json"), "utf8"))?.[SETTINGS]
  } catch {
    return undefined
  }
  const { tenantSchema, tenantMode } = (settings ?? {}) as { tenantSchema?: unknown; tenantMode?: unknown }
  if (typeof tenantSchema !== "string" || !schemas.includes(tenantSchema)) return undefined
  return { schema: tenantSchema, mode: tenantMode === "schema" ? "schema" : "database" }
}

/**
 * Records the tenants' schema in package.json (its `"flexidb"` field; the file's indentation kept), so every command
 * knows it. False when there is no package.json to record it in.
 */
export const recordTenants = (root: string, tenants: TenantSchema): boolean => {
  const file = join(root, "package.json")
  let text: string
  let manifest: Record<string, unknown>
  try {
    text = readFileSync(file, "utf8")
    manifest = JSON.parse(text)
  } catch {
    return false
  }
  const current = (manifest[SETTINGS] ?? {}) as Record<string, unknown>
  if (current.tenantSchema === tenants.schema && (current.tenantMode ?? "database") === tenants.mode) return true
  manifest[SETTINGS] = { ...current, tenantSchema: tenants.schema, tenantMode: tenants.mode }
  const indent = /^[ \t]+(?=")/m.exec(text)?.[0] ?? "  "
  writeFileSync(file, `${JSON.stringify(manifest, null, indent)}${text.endsWith("\n") ? "\n" : ""}`)
  return true
}

/** The schemas and the environment (the process's over `.env`); never looks for Prisma. */
export const loadProjectFiles = (root: string, environment: Io["env"], found?: ProjectFiles["found"]): ProjectFiles => {
  const dir = join(root, SCHEMAS_DIR)
  const schemas = existsSync(dir)
    ? readdirSync(dir).filter((f) => f.endsWith(".prisma")).map((f) => f.slice(0, -".prisma".length)).sort()
    : []
  const dotenv = existsSync(join(root, ".env")) ? parseDotenv(readFileSync(join(root, ".env"), "utf8")) : {}
  const env: Record<string, string> = { ...dotenv }
  for (const [k, v] of Object.entries(environment)) if (v !== undefined) env[k] = v
  const tenants = recordedTenants(root, schemas)
  return { root, schemas, env, ...(found !== undefined && { found }), ...(tenants !== undefined && { tenants }) }
}

export const loadProject = (root: string, environment: Io["env"], found?: ProjectFiles["found"]): Effect.Effect<Project, CliError> =>
  Effect.gen(function*() {
    const files = loadProjectFiles(root, environment, found)
    return { ...files, prismaMajor: yield* detectPrismaMajor(root) }
  })

/** The project flexidb runs in (found from the Io's working directory upward), with its environment. */
export const currentProject: Effect.Effect<Project, CliError, Io> = Effect.flatMap(Io, (io) => {
  const { root, ...found } = findRoot(io.cwd)
  return found.by === "none"
    ? Effect.fail(new CliError(
      `No project here: no folder from ${found.from} up to the file system's root has ${SCHEMAS_DIR}/ or package.json. ` +
        `Run flexidb in your project, or 'npx flexidb init' to start one here.`
    ))
    : loadProject(root, io.env, found)
})

/** The same without Prisma: for commands that run in process (a deploy image may have no `prisma` installed). */
export const currentProjectFiles: Effect.Effect<ProjectFiles, never, Io> = Effect.map(Io, (io) => {
  const { root, ...found } = findRoot(io.cwd)
  return loadProjectFiles(root, io.env, found)
})

/** Where the schemas were looked for, when there are none: the folder, and how flexidb came to it. */
const whereSearched = (project: ProjectFiles) => {
  const folder = `${join(project.root, SCHEMAS_DIR)}/`
  const found = project.found
  if (found?.by === "none") {
    return `none: no folder from ${found.from} up to the file system's root has ${SCHEMAS_DIR}/ or package.json ` +
      `(run flexidb in your project, or 'npx flexidb init' to start one in ${found.from})`
  }
  if (found?.by === "package" && found.from !== project.root) {
    return `none in ${folder}: ${project.root} is the nearest folder above ${found.from} with package.json, and it has ` +
      `no ${SCHEMAS_DIR}/ (run 'npx flexidb init' to create one there)`
  }
  return `none in ${folder} (run 'npx flexidb init' to create one)`
}

const listSchemas = (project: ProjectFiles) =>
  project.schemas.length === 0 ? whereSearched(project) : `found: ${project.schemas.join(", ")}`

/**
 * The schemas a command acts on: every one, or the one `--schema` names (`user` or `user.prisma`). A value that
 * is a path (`../x`, `/abs`, `a/b`) is refused: schemas live only in prisma/schemas.
 */
export const selectSchemas = (project: ProjectFiles, schema: string | undefined): Effect.Effect<ReadonlyArray<string>, CliError> => {
  if (schema === undefined) {
    return project.schemas.length === 0
      ? Effect.fail(new CliError(`No schemas: ${listSchemas(project)}.`))
      : Effect.succeed(project.schemas)
  }
  const name = schema.endsWith(".prisma") ? schema.slice(0, -".prisma".length) : schema
  if (!/^[A-Za-z0-9_-]+$/.test(name)) {
    return Effect.fail(new CliError(
      `--schema '${schema}' is refused: give a schema name from ${SCHEMAS_DIR}/ (such as 'user' or 'user.prisma'), not a path.`
    ))
  }
  return project.schemas.includes(name)
    ? Effect.succeed([name])
    : Effect.fail(new CliError(`No schema named '${name}' in ${SCHEMAS_DIR}/ (${listSchemas(project)}).`))
}

export const schemaPath = (project: ProjectFiles, name: string) => resolve(project.root, SCHEMAS_DIR, `${name}.prisma`)
export const migrationsPath = (project: ProjectFiles, name: string) => resolve(project.root, MIGRATIONS_DIR, name)

/** A schema that does not parse is the user's to fix (a CliError); a file that cannot be read is not expected here. */
export const readSchema = (project: ProjectFiles, name: string): Effect.Effect<Schema, CliError> =>
  Effect.try({
    try: () => parseSchema(readFileSync(schemaPath(project, name), "utf8"), join(SCHEMAS_DIR, `${name}.prisma`)),
    catch: (error) => error
  }).pipe(Effect.catchAll((error) =>
    error instanceof SchemaParseError ? Effect.fail(new CliError(error.message, { cause: error })) : Effect.die(error)
  ))

/** The first of `<dir>/<base>.{ts,mts,js,mjs,cjs}` that exists: a per-database file the user keeps. */
export const findModule = (project: Project, dir: string, base: string): string | undefined =>
  ["ts", "mts", "js", "mjs", "cjs"].map((ext) => resolve(project.root, dir, `${base}.${ext}`)).find((f) => existsSync(f))

/** A user's own Prisma config for one database, if they keep one: prisma/config/<name>.config.{ts,mts,js,mjs,cjs}. */
export const userConfig = (project: Project, name: string): string | undefined =>
  findModule(project, CONFIGS_DIR, `${name}.config`)

/** A database's URL from the environment or .env, or undefined when `DATABASE_URL_<NAME>` is unset or empty. */
export const databaseUrl = (project: ProjectFiles, name: string): string | undefined => {
  const url = project.env[urlVariable(name)]
  return url === undefined || url === "" ? undefined : url
}

export const missingUrl = (name: string) =>
  `${urlVariable(name)} is not set: set it in the environment or in .env to the URL of database '${name}'.`
