/**
 * `flexidb doctor`: a row per database in prisma/schemas, every check with what it found, and for a row that fails
 * the one thing to do. The checks, in the order their fixes come: the schema reads as the installed Prisma reads it;
 * `DATABASE_URL_<NAME>` is set (and of the schema's kind); the server answers (connect and `SELECT 1` through the
 * provider's driver, within a timeout; SQLite: the file is there and opens); migrations (flexidb/migrate's status,
 * or Prisma's for providers it does not migrate; no migrations folder passes); the generated client is there, made
 * from the current schema by the installed Prisma; the driver adapter package is installed for that Prisma.
 *
 * The tenants' schema (package.json's `"flexidb": { "tenantSchema" }`) is not one database: without `--tenants` its
 * row checks what it can without the tenants' list; with `--tenants <module>` it connects to a sample tenant and reads
 * every tenant's migrations. Every fix names a command that works when pasted here (`--in-process` where Prisma's
 * schema engine is absent). Connections and migration reads go through flexidb/migrate's Effects, within
 * `Effect.timeout`.
 *
 * No URL, password or SQLite path is ever shown: messages from drivers are cut to their first line, stripped of the
 * URL and its password, and redacted.
 */
import type { FileSystem } from "@effect/platform"
import type { CommandExecutor } from "@effect/platform/CommandExecutor"
import { Console, Duration, Effect } from "effect"
import { existsSync, readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join, relative, resolve } from "node:path"
import { redact } from "../src/index.js"
import type { MigrationStatus } from "../src/migrate.js"
import { MigrationError, Migrator } from "../src/migrate.js"
import { CliError } from "./error.js"
import type { Io } from "./io.js"
import type { Project } from "./project.js"
import { databaseUrl, findRoot, loadProjectFiles, MIGRATIONS_DIR, migrationsPath, SCHEMAS_DIR, schemaPath, urlVariable } from "./project.js"
import { installedVersion, invocation, readProjectSchema, runPrisma, schemaEngineAvailable } from "./prisma.js"
import { finishedLine, progressLine, startedLine } from "./run.js"
import type { Schema } from "./schema.js"
import { activeProvider, clientGenerator, formatSchema, parseSchema, resolvedField, stringField } from "./schema.js"
import type { Reachable } from "./providers.js"
import { ADAPTER_PACKAGES, DRIVERS } from "./providers.js"
import { projectTargets, tenantTargets } from "./targets.js"
import { PROMETHEUS_PACKAGES } from "../src/internal/telemetryPackages.js"
import type { CatalogFlags } from "./targets.js"

export type Status = "pass" | "fail" | "skip"

export interface Check {
  readonly status: Status
  /** What was found, in a few words (the table's cell). */
  readonly detail: string
  /** For a failed check: the one thing to do. */
  readonly fix?: string
}

export const CHECKS = ["schema", "url", "server", "migrations", "client", "adapter"] as const
export type CheckName = (typeof CHECKS)[number]

export interface Row {
  readonly database: string
  readonly provider: string | null
  readonly ok: boolean
  /** The first failed check's fix: what to do next for this database. */
  readonly fix?: string
  readonly checks: Readonly<Record<CheckName, Check>>
  readonly ms: number
}

export interface DoctorOptions {
  readonly json: boolean
  readonly concurrency: number
  /** How long a server has to answer, in milliseconds. */
  readonly timeout: number
  /** `--tenants <module>`: the tenants' databases, for the tenants' schema's row. */
  readonly tenants?: string | undefined
  /** `--tenants catalog`: `--catalog` and `--servers`, when given. */
  readonly catalog?: CatalogFlags | undefined
}

/** How this machine runs the commands doctor suggests: Prisma's, or in process where its schema engine is absent. */
interface Machine {
  readonly engine: boolean
  readonly timeout: number
  readonly catalog?: CatalogFlags | undefined
  readonly concurrency: number
}

const pass = (detail: string): Check => ({ status: "pass", detail })
const fail = (detail: string, fix: string): Check => ({ status: "fail", detail, fix })
const skip = (detail: string): Check => ({ status: "skip", detail })

const ADAPTERS = ADAPTER_PACKAGES

// -----------------------------------------------------------------------------------------------------------------
// Messages without secrets

/** A driver's message as one short line: without the URL (not even redacted), its password, or any other URL. */
const clean = (error: unknown, url: string | undefined): string => {
  let text = error instanceof Error ? error.message : String(error)
  if (url !== undefined && url !== "") text = text.split(url).join("<url>")
  try {
    const password = url === undefined ? "" : decodeURIComponent(new URL(url).password)
    if (password !== "") text = text.split(password).join("***")
  } catch {
    // Not a URL the WHATWG parser reads: no password to look for.
  }
  const line = redact(text)
    .replace(/[a-z][a-z0-9+.-]*:\/\/\S+/gi, "<url>")
    .split("\n")
    .map((l) => l.trim().replace(/^\(conn:[^)]*\)\s*/, "")) // the mariadb driver's connection ids: noise here
    .find((l) => l !== "") ?? (error instanceof Error ? error.name : "error")
  return line.length > 160 ? `${line.slice(0, 159)}…` : line
}

// -----------------------------------------------------------------------------------------------------------------
// Drivers: the app's own (beside its adapter, or in its node_modules), else the one flexidb finds

const requireFrom = (base: string, pkg: string): any => {
  try {
    const require = createRequire(base)
    return require(require.resolve(pkg))
  } catch {
    return undefined
  }
}

const findPackageDir = (root: string, pkg: string): string | undefined => {
  for (let dir = resolve(root); ; dir = dirname(dir)) {
    const candidate = join(dir, "node_modules", ...pkg.split("/"))
    if (existsSync(join(candidate, "package.json"))) return candidate
    if (dirname(dir) === dir) return undefined
  }
}

const loadDriver = (project: Project, provider: Reachable): any => {
  const adapter = findPackageDir(project.root, ADAPTERS[provider]!)
  const bases = [
    ...(adapter === undefined ? [] : [join(adapter, "package.json")]),
    join(project.root, "package.json"),
    import.meta.url
  ]
  for (const base of bases) {
    const driver = requireFrom(base, DRIVERS[provider])
    if (driver !== undefined) return driver.default ?? driver
  }
  return undefined
}

// -----------------------------------------------------------------------------------------------------------------
// The server

interface Probe {
  readonly ok: boolean
  readonly ms: number
  readonly error?: unknown
  readonly timedOut?: boolean
}

/**
 * Connects and runs `SELECT 1` through flexidb/migrate's connection (the one its status read opens too), with the
 * app's own driver, read-only, within the timeout; never fails. The drivers' own timeouts end an attempt;
 * `Effect.timeout` ends one that would not, interrupting it, and nothing it opened stays open.
 */
const probe = (driver: any, url: string, timeout: number): Effect.Effect<Probe> =>
  Migrator.ping(url, { timeout, readOnly: true, load: () => Effect.succeed(driver) }).pipe(
    Effect.timeoutFail({ duration: timeout + 250, onTimeout: () => TIMED_OUT }),
    Effect.timed,
    Effect.map(([elapsed]): Probe => ({ ok: true, ms: Duration.toMillis(elapsed) })),
    Effect.catchAll((error) =>
      Effect.succeed<Probe>(
        typeof error === "symbol"
          ? { ok: false, ms: timeout, timedOut: true }
          : { ok: false, ms: 0, error: error._tag === "DriverError" ? error.cause : error }
      )
    )
  )

const TIMED_OUT = Symbol("flexidb/doctor/timed-out")

/** A driver that gave up waiting by its own timeout (pg: "Connection terminated due to connection timeout"). */
const timedOut = (error: unknown) => /\btime(d)?[ -]?out\b|timeout expired/i.test(error instanceof Error ? error.message : String(error))

/** The fix a driver's error asks for, by its code. */
const serverFix = (error: unknown, name: string): string => {
  const variable = urlVariable(name)
  const e = error as { code?: unknown; errno?: unknown } | undefined
  const code = String(e?.code ?? "")
  if (
    ["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ETIMEDOUT", "ECONNRESET", "EAI_AGAIN", "ER_CONNECTION_TIMEOUT"].includes(code) ||
    timedOut(error)
  ) {
    return `start the database server, or fix the host and port in ${variable}`
  }
  if (code === "28P01" || code === "28000" || code === "ER_ACCESS_DENIED_ERROR" || e?.errno === 1045) {
    return `fix the user or password in ${variable}`
  }
  if (code === "3D000" || code === "ER_BAD_DB_ERROR" || e?.errno === 1049) {
    return `create the database ${variable} names (CREATE DATABASE), or fix its name in ${variable}`
  }
  if (code === "SQLITE_NOTADB") return `${variable} names a file that is not a SQLite database: fix ${variable}`
  return `check ${variable} and that its server accepts connections`
}

// -----------------------------------------------------------------------------------------------------------------
// The generated client

/** The file Prisma writes the client's configuration into: its version and the schema it was generated from. */
const clientConfigFile = (dir: string, provider: string): string | undefined => {
  const candidates = provider === "prisma-client"
    ? ["ts", "mts", "cts", "js", "mjs", "cjs"].map((ext) => join(dir, "internal", `class.${ext}`))
    : [join(dir, "index.js")]
  return candidates.find((f) => existsSync(f))
}

const jsonString = (text: string, key: string): string | undefined => {
  const m = new RegExp(`"${key}":\\s*("(?:[^"\\\\]|\\\\.)*")`).exec(text)
  if (m === null) return undefined
  try {
    return JSON.parse(m[1]!)
  } catch {
    return undefined
  }
}

/** Two schema sources that Prisma's formatter lays out alike: they differ in layout only. */
const sameMeaning = (a: string, b: string, major: 6 | 7): boolean => {
  const formatted = formatSchema(b, major)
  return formatted !== undefined && formatted === (formatSchema(a, major) ?? a)
}

const clientCheck = (project: Project, name: string, schema: Schema, source: string): Check => {
  const generate = `run npx flexidb generate --schema ${name}`
  const generator = clientGenerator(schema)
  if (generator === undefined) {
    return fail("no client generator", `add a generator with provider = "prisma-client" and an output to ${SCHEMAS_DIR}/${name}.prisma`)
  }
  const output = resolvedField(generator, "output", project.env)
  if (output === undefined) {
    return fail(
      "generator has no output",
      `give the generator an output of its own (e.g. output = "../../src/generated/${name}"): with several schemas each client needs one`
    )
  }
  const dir = resolve(dirname(schemaPath(project, name)), output)
  const file = clientConfigFile(dir, stringField(generator, "provider")!)
  if (file === undefined) return fail("not generated", generate)
  const text = readFileSync(file, "utf8")
  const version = jsonString(text, "clientVersion")
  const inline = jsonString(text, "inlineSchema")
  // Prisma keeps the schema as `prisma format` lays it out: a schema written in another layout is no change.
  if (inline !== undefined && inline !== source && !sameMeaning(inline, source, schema.prisma)) {
    return fail("stale: the schema changed since", generate)
  }
  const installed = installedVersion(project.root, "prisma")
  if (version !== undefined && installed !== undefined && version !== installed) {
    return fail(`generated by Prisma ${version}, ${installed} installed`, generate)
  }
  return pass(inline === undefined ? "present" : `current${version === undefined ? "" : ` (${version})`}`)
}

// -----------------------------------------------------------------------------------------------------------------
// One database

interface Target {
  readonly url: string
  readonly schema?: string | undefined
}
type TenantTarget = import("./targets.js").Target

/** `npx flexidb migrate <verb>` (as pasted in an app) for one database: in process where Prisma's schema engine is absent, or for a tenant. */
interface Commands {
  readonly migrate: (verb: "deploy" | "resolve") => string
  /** Where the migrations are, for messages. */
  readonly where: string
  /** The database, in a message ("" for a schema's own). */
  readonly on: string
}

const projectCommands = (project: Project, name: string, engine: boolean): Commands => ({
  migrate: (verb) => `npx flexidb migrate ${verb}${engine ? "" : " --in-process"} --schema ${name}`,
  where: relative(project.root, migrationsPath(project, name)) || MIGRATIONS_DIR,
  on: ""
})

const tenantCommands = (project: Project, name: string, module: string, tenant: string): Commands => ({
  migrate: (verb) => `npx flexidb migrate ${verb} --tenants ${module} --schema ${name}${verb === "resolve" ? ` --tenant ${tenant}` : ""}`,
  where: relative(project.root, migrationsPath(project, name)) || MIGRATIONS_DIR,
  on: ` on tenant ${tenant}`
})

const listed = (names: ReadonlyArray<string>) =>
  names.length > 2 ? `${names.slice(0, 2).join(", ")} and ${names.length - 2} more` : names.join(", ")

/** What a deploy would refuse (deployRefusal's cases), each with its own fix; then what it would apply. */
const statusCheck = (s: MigrationStatus, c: Commands): Check => {
  if (s.needsBaseline === true) {
    // Prisma's P3005: a deploy would refuse it. The database was made some other way (db push, by hand): record
    // the migrations it already has, then deploy the rest.
    const first = s.pending[0]
    return fail(
      `not empty, no migrations table: baseline it`,
      first === undefined
        ? `baseline the database${c.on}: record each migration it already has with ${c.migrate("resolve")} --applied <migration>`
        : `baseline the database${c.on}: run ${c.migrate("resolve")} --applied ${first} (then the same for each later migration it already has)`
    )
  }
  if (s.failed.length > 0) {
    return fail(
      `failed: ${s.failed[0]}`,
      `undo what ${s.failed[0]} did${c.on}, then run ${c.migrate("resolve")} --rolled-back ${s.failed[0]} ` +
        `(or --applied ${s.failed[0]} if you finished it by hand)`
    )
  }
  if (s.modified.length > 0) {
    return fail(`changed after it was applied: ${s.modified[0]}`, `restore ${c.where}/${s.modified[0]}/migration.sql as it was applied, and put the change in a new migration`)
  }
  if (s.missingLocally.length > 0) {
    return fail(`applied, missing from ${c.where}: ${s.missingLocally[0]}`, `restore the folder ${c.where}/${s.missingLocally[0]}/ (it is applied to the database${c.on})`)
  }
  if (s.pending.length > 0) return fail(`${s.pending.length} pending`, `run ${c.migrate("deploy")} (pending: ${listed(s.pending)})`)
  return pass(`up to date (${s.applied.length} applied)`)
}

/** flexidb/migrate's status of one database, within the timeout; never fails. */
const readStatus = (target: Target, migrations: string, timeout: number) =>
  Migrator.status({ url: target.url, migrations, ...(target.schema !== undefined && { schema: target.schema }) }).pipe(
    Effect.mapError((e): unknown => e._tag === "DriverError" ? e.cause : e),
    // Past the timeout the read is interrupted: its transaction rolled back, its connection closed.
    Effect.timeoutFail({ duration: timeout * 2, onTimeout: (): unknown => new Error(`no answer within ${timeout} ms`) }),
    Effect.either
  )

const statusFailure = (error: unknown, url: string, name: string, c: Commands, variable: string): Check =>
  error instanceof MigrationError
    ? fail(`${error.code}: ${clean(error.reason, url)}`, `run ${c.migrate("deploy").replace(" deploy", " status")} for the whole story`)
    : fail(clean(error, url), `check ${variable} and its server`)

const migrationsCheck = (
  project: Project,
  name: string,
  provider: string | undefined,
  target: Target | undefined,
  machine: Machine
): Effect.Effect<Check, never, CommandExecutor | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const folder = migrationsPath(project, name)
    if (!existsSync(folder)) return pass("no migrations")
    if (provider === undefined || !(provider in DRIVERS)) {
      // A provider flexidb/migrate does not read: Prisma's own status (it needs its schema engine).
      const run = yield* Effect.either(invocation(project, name, ["migrate", "status"], [], true))
      if (run._tag === "Left") return skip("not checked")
      const outcome = yield* runPrisma(run.right, false)
      return outcome.code === 0
        ? pass("up to date (prisma migrate status)")
        : fail(`prisma migrate status: exit ${outcome.code}`, `run npx flexidb migrate status --schema ${name} to see what Prisma found`)
    }
    if (target === undefined) return skip("not checked")
    const c = projectCommands(project, name, machine.engine)
    const status = yield* readStatus(target, folder, machine.timeout)
    return status._tag === "Left"
      ? statusFailure(status.left, target.url, name, c, urlVariable(name))
      : statusCheck(status.right, c)
  })

/** The fix for a SQLite file that is not there: what creates it on this machine. */
const createSqlite = (project: Project, name: string, engine: boolean): string => {
  const variable = urlVariable(name)
  if (existsSync(migrationsPath(project, name))) {
    return `create the SQLite file ${variable} names (npx flexidb migrate deploy${engine ? "" : " --in-process"} --schema ${name}), or fix ${variable}`
  }
  return engine
    ? `create the SQLite file ${variable} names (npx flexidb db push --schema ${name}), or fix ${variable}`
    : `create the SQLite file ${variable} names: npx flexidb db push --schema ${name} where Prisma's schema engine runs ` +
      `(it is absent here), or fix ${variable}`
}

/**
 * The URL's kind (as the in-process migrate reads it: a relative SQLite path is the project root's), then the
 * server. `target` is the database to read migrations from: there only when the server answered.
 */
const serverCheck = (
  project: Project,
  name: string,
  provider: string | undefined,
  url: string | undefined,
  timeout: number,
  engine: boolean
): Effect.Effect<{ readonly url?: Check; readonly server?: Check; readonly target?: Target }> =>
  Effect.gen(function*() {
    const variable = urlVariable(name)
    if (provider === undefined) return { server: skip("no datasource") }
    if (!(provider in DRIVERS)) return { server: skip(`not checked (${provider})`) }
    if (url === undefined) return {}
    const reachable = provider as Reachable
    const targets = yield* Effect.either(projectTargets(project, [name]))
    const t = targets._tag === "Right" ? targets.right[0] : undefined
    if (t === undefined) return {}
    if (t.problem !== undefined) {
      return { url: fail("wrong kind of URL", `set ${variable} to a ${reachable} URL: ${t.problem.reason.replace(`${variable}: `, "")}`) }
    }
    const driver = loadDriver(project, reachable)
    if (driver === undefined) {
      return { server: fail(`no ${DRIVERS[reachable]} driver`, `npm install ${ADAPTERS[reachable]} (it brings ${DRIVERS[reachable]})`) }
    }
    if (reachable === "sqlite" && !existsSync(t.url.replace(/^file:/, ""))) {
      return { server: fail("no such file", createSqlite(project, name, engine)) }
    }
    const probed = yield* probe(driver, t.url, timeout)
    if (probed.ok) return { server: pass(`answered in ${Math.max(1, Math.round(probed.ms))} ms`), target: { url: t.url, schema: t.schema } }
    return {
      server: probed.timedOut || timedOut(probed.error)
        ? fail(`no answer within ${timeout} ms`, `start the database server, or fix the host and port in ${variable}`)
        : fail(clean(probed.error, url), serverFix(probed.error, name))
    }
  })

const adapterCheck = (project: Project, provider: string | undefined): Check => {
  const adapter = provider === undefined ? undefined : ADAPTERS[provider]
  if (adapter === undefined) return skip(provider === undefined ? "not checked" : `none for ${provider}`)
  const version = installedVersion(project.root, adapter)
  const prisma = installedVersion(project.root, "prisma")
  if (version === undefined) return fail(`${adapter} missing`, `npm install ${adapter}`)
  // An adapter of another major version than Prisma's does not fit its client.
  if (prisma !== undefined && version.split(".")[0] !== prisma.split(".")[0]) {
    return fail(`${version}, Prisma ${prisma}`, `npm install ${adapter}@${prisma}`)
  }
  return pass(version)
}

/** The url, server and migrations checks of the tenants' schema: its databases are the tenants'. */
interface Spread {
  readonly url: Check
  readonly server: Check
  readonly migrations: Check
}

const TEMPLATE = "DATABASE_URL_TENANT_TEMPLATE"

/**
 * A database per tenant, without the tenants' list: their URLs come from DATABASE_URL_TENANT_TEMPLATE (never
 * DATABASE_URL_<NAME>). Doctor's url check and the overview of `flexidb` with no command both say this.
 */
const templateCheck = (project: Pick<Project, "env">): Check => {
  const template = project.env[TEMPLATE]
  return template === undefined || template === ""
    ? skip(`tenants' URLs: ${TEMPLATE} or --tenants <module>`)
    : template.includes("{tenant}")
    ? pass(`${TEMPLATE} set`)
    : fail(`${TEMPLATE} has no {tenant}`, `put {tenant} where the tenant's name goes in ${TEMPLATE}: every tenant would get one database`)
}

/** Without `--tenants`: what doctor can tell of the tenants without their list. */
const tenantsUnlisted = (project: Project, name: string, migrations: boolean): Spread => {
  const perTenant = skip("per tenant: add --tenants <module>")
  return {
    url: templateCheck(project),
    server: perTenant,
    migrations: migrations ? perTenant : pass("no migrations")
  }
}

/** With `--tenants <module>`: a sample connection, and every tenant's migrations. */
const tenantsListed = (
  project: Project,
  name: string,
  provider: string | undefined,
  module: string,
  machine: Machine
): Effect.Effect<Spread, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const folder = migrationsPath(project, name)
    const hasMigrations = existsSync(folder)
    const listing = yield* Effect.either(tenantTargets(project, module, name, undefined, false, machine.catalog))
    if (listing._tag === "Left") {
      const problem = listing.left.message.split("\n")[0]!
      return {
        url: fail(`--tenants ${module}: not read`, problem),
        server: skip("not checked"),
        migrations: hasMigrations ? skip("not checked") : pass("no migrations")
      }
    }
    // A suspended tenant of the catalog is fenced: not reachable, not a failure.
    const targets: ReadonlyArray<TenantTarget> = listing.right.filter((t) => t.skip === undefined)
    const skipped = listing.right.length - targets.length
    const url = pass(`${targets.length} tenant${targets.length === 1 ? "" : "s"} from ${module}${skipped > 0 ? ` (${skipped} suspended or moving, not checked)` : ""}`)
    if (provider === undefined || !(provider in DRIVERS)) {
      return { url, server: skip(`not checked (${provider ?? "no datasource"})`), migrations: skip("not checked") }
    }
    const reachable = provider as Reachable
    const driver = loadDriver(project, reachable)
    if (driver === undefined) {
      return {
        url,
        server: fail(`no ${DRIVERS[reachable]} driver`, `npm install ${ADAPTERS[reachable]} (it brings ${DRIVERS[reachable]})`),
        migrations: hasMigrations ? skip("not checked") : pass("no migrations")
      }
    }
    if (targets.length === 0) return { url, server: skip("not checked: no tenant to reach"), migrations: skip("not checked") }
    // A sample connection: the first tenant listed.
    const sample = targets[0]!
    const checkTenant = `check tenant ${sample.name}'s url in ${module} and its server`
    const server = reachable === "sqlite" && !existsSync(sample.url.replace(/^file:/, ""))
      ? fail(`tenant ${sample.name}: no such file`, hasMigrations
        ? `create it: npx flexidb migrate deploy --tenants ${module} --schema ${name}`
        : checkTenant)
      : yield* Effect.map(probe(driver, sample.url, machine.timeout), (probed) =>
        probed.ok
          ? pass(`tenant ${sample.name} answered in ${Math.max(1, Math.round(probed.ms))} ms (1 of ${targets.length})`)
          : probed.timedOut || timedOut(probed.error)
          ? fail(`tenant ${sample.name}: no answer within ${machine.timeout} ms`, checkTenant)
          : fail(`tenant ${sample.name}: ${clean(probed.error, sample.url)}`, checkTenant))
    if (!hasMigrations) return { url, server, migrations: pass("no migrations") }
    // Every tenant's migrations: the first that needs something says what, and how many more do.
    const checks = yield* Effect.forEach(targets, (t) =>
      Effect.map(readStatus(t, folder, machine.timeout), (status) => {
        const c = tenantCommands(project, name, module, t.name)
        const check = status._tag === "Left"
          ? (status.left instanceof MigrationError
            ? fail(`${status.left.code}: ${clean(status.left.reason, t.url)}`, `run npx flexidb migrate status --tenants ${module} --schema ${name} --tenant ${t.name} for the whole story`)
            : fail(clean(status.left, t.url), `check tenant ${t.name}'s url in ${module} and its server`))
          : statusCheck(status.right, c)
        return { tenant: t.name, check, applied: status._tag === "Right" ? status.right.applied.length : 0 }
      }), { concurrency: machine.concurrency })
    const failing = checks.filter((c) => c.check.status === "fail")
    if (failing.length === 0) {
      const applied = [...new Set(checks.map((c) => c.applied))]
      return {
        url,
        server,
        migrations: pass(`up to date on ${checks.length} tenant${checks.length === 1 ? "" : "s"}` +
          (applied.length === 1 ? ` (${applied[0]} applied)` : ""))
      }
    }
    // Pending everywhere it fails: one deploy of the fleet is the fix. Anything else: the first tenant's own fix.
    const isPending = (c: (typeof failing)[number]) => /^\d+ pending$/.test(c.check.detail)
    const onlyPending = failing.every(isPending)
    // What blocks a deploy comes first: its fix is the one to do before the deploy.
    const first = failing.find((c) => !isPending(c)) ?? failing[0]!
    const of = `${failing.length} of ${checks.length} tenants`
    return {
      url,
      server,
      migrations: onlyPending
        ? fail(`${of} pending`, `run npx flexidb migrate deploy --tenants ${module} --schema ${name}`)
        : fail(`${of}; ${first.tenant}: ${first.check.detail}`, first.check.fix!)
    }
  })

const doctorOne = (
  project: Project,
  name: string,
  machine: Machine,
  tenants: string | undefined
): Effect.Effect<Row, never, CommandExecutor | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const started = performance.now()
    const url = databaseUrl(project, name)
    const source = readFileSync(schemaPath(project, name), "utf8")
    const read = yield* Effect.either(readProjectSchema(project, name, source))
    const schema = read._tag === "Right" ? read.right : undefined
    const provider = schema === undefined ? undefined : activeProvider(schema)
    const hasMigrations = existsSync(migrationsPath(project, name))
    // The tenants' schema: a database per tenant (or a PostgreSQL schema per tenant), never DATABASE_URL_<NAME>'s.
    const isTenants = project.tenants?.schema === name
    const spread: Spread | undefined = !isTenants || schema === undefined
      ? undefined
      : tenants !== undefined
      ? yield* tenantsListed(project, name, provider, tenants, machine)
      : project.tenants?.mode === "schema"
      ? undefined
      : tenantsUnlisted(project, name, hasMigrations)
    const ownDatabase = spread === undefined
      ? yield* Effect.gen(function*() {
        const { target, ...server } = yield* serverCheck(project, name, provider, url, machine.timeout, machine.engine)
        return {
          url: server.url ??
            (url === undefined
              ? fail("not set", `set ${urlVariable(name)} in .env or the environment to the URL of database '${name}'`)
              : pass("set")),
          server: server.server ?? skip("not checked"),
          migrations: schema === undefined
            ? hasMigrations ? skip("not checked") : pass("no migrations")
            // A PostgreSQL schema per tenant: the tenants' migrations are in their schemas, not this database's own.
            : isTenants
            ? hasMigrations ? skip("per tenant: add --tenants <module>") : pass("no migrations")
            : yield* migrationsCheck(project, name, provider, target, machine)
        }
      })
      : spread
    const checks: Record<CheckName, Check> = {
      schema: read._tag === "Right"
        ? pass(provider === undefined ? "no datasource" : "ok")
        : fail("refused by Prisma", `fix ${read.left.message}`),
      url: ownDatabase.url,
      server: ownDatabase.server,
      migrations: ownDatabase.migrations,
      client: schema === undefined ? skip("not checked") : clientCheck(project, name, schema, source),
      adapter: adapterCheck(project, provider)
    }
    const failed = CHECKS.map((c) => checks[c]).find((c) => c.status === "fail")
    return {
      database: name,
      provider: provider ?? null,
      ok: failed === undefined,
      ...(failed !== undefined && { fix: failed.fix! }),
      checks,
      ms: Math.round(performance.now() - started)
    }
  })

// -----------------------------------------------------------------------------------------------------------------
// The command

const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join("  ").trimEnd()).join("\n")
}

/** A check in a table cell: its mark and what it found, cut short (the JSON has all of it). */
const cell = (check: Check) => {
  const detail = check.detail.length > 60 ? `${check.detail.slice(0, 59)}…` : check.detail
  return `${check.status === "pass" ? "✔" : check.status === "fail" ? "✘" : "–"} ${detail}`
}

/**
 * The project with the schema `--tenants` is for: the one package.json records, else the one `--schema` selects.
 * A usage error (exit 2) when neither says which.
 */
const withTenantsSchema = (project: Project, names: ReadonlyArray<string>, module: string | undefined) => {
  if (module === undefined || project.tenants !== undefined) return Effect.succeed(project)
  if (names.length === 1) return Effect.succeed({ ...project, tenants: { schema: names[0]!, mode: "database" as const } })
  return Effect.fail(new CliError(
    `--tenants ${module} lists the tenants' databases: give the tenants' schema too (--schema <name>; found: ` +
      `${names.join(", ")}), or record it once with npx flexidb codegen --tenant-schema <name>.`,
    { exitCode: 2 }
  ))
}

/**
 * Checks every database and reports: a table and what to do (stdout), or one JSON document. Fails with a CliError
 * (exit 1) when a check failed.
 */
export const doctor = (
  given: Project,
  names: ReadonlyArray<string>,
  options: DoctorOptions
): Effect.Effect<void, CliError, CommandExecutor | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const progress = progressLine(options.json)
    const project = yield* withTenantsSchema(given, names, options.tenants)
    const machine: Machine = { engine: schemaEngineAvailable(project), timeout: options.timeout, concurrency: 8, catalog: options.catalog }
    const rows = yield* Effect.forEach(names, (name) =>
      Effect.gen(function*() {
        yield* progress(startedLine(name, "doctor"))
        const row = yield* doctorOne(project, name, machine, options.tenants)
        const failed = CHECKS.filter((c) => row.checks[c].status === "fail")
        yield* progress(finishedLine(name, row.ok, row.ok ? "all checks pass" : `failed: ${failed.join(", ")}`))
        return row
      }), { concurrency: options.concurrency })
    const failed = rows.filter((r) => !r.ok)
    // Not a check (the prometheus option is the app's choice): what it needs, which flexidb does not install.
    const metricsMissing = PROMETHEUS_PACKAGES.filter((pkg) => installedVersion(project.root, pkg) === undefined)

    if (options.json) {
      yield* Console.log(JSON.stringify({
        command: "doctor",
        ok: failed.length === 0,
        summary: { databases: rows.length, ok: rows.length - failed.length, failed: failed.length },
        results: rows,
        prometheus: { packages: PROMETHEUS_PACKAGES, missing: metricsMissing }
      }, null, 2))
    } else {
      yield* Console.log(`\n${table([
        ["database", "provider", ...CHECKS],
        ...rows.map((r) => [r.database, r.provider ?? "?", ...CHECKS.map((c) => cell(r.checks[c]))])
      ])}`)
      if (failed.length > 0) {
        yield* Console.log(`\nTo do:\n${failed.map((r) => `  ${r.database}: ${r.fix}`).join("\n")}`)
      }
      yield* Console.log(
        `\ndoctor: ${rows.length} database${rows.length === 1 ? "" : "s"}, ` +
          (failed.length === 0 ? "all checks pass" : `${failed.length} need${failed.length === 1 ? "s" : ""} attention`)
      )
      yield* Console.log(
        metricsMissing.length === 0
          ? `metrics: the prometheus option's packages are installed (${PROMETHEUS_PACKAGES.join(", ")})`
          : `metrics: the prometheus option (prometheus: true or { port }) needs ${PROMETHEUS_PACKAGES.join(", ")}: ` +
            `npm i ${metricsMissing.join(" ")} (not needed without it)`
      )
    }
    if (failed.length > 0) {
      // Reported: by the summary, or by the JSON document (stdout carries it all; nothing more on stderr).
      return yield* new CliError(`doctor: ${failed.map((r) => r.database).join(", ")} need attention`, { reported: true })
    }
  })

// -----------------------------------------------------------------------------------------------------------------
// `flexidb` with no command

/**
 * The databases of the project `io.cwd` is in (found as every command finds it), for `flexidb` with no command: name, provider and whether its URL
 * variable is set (never its value); for the tenants' schema in database-per-tenant mode, DATABASE_URL_TENANT_TEMPLATE
 * as doctor checks it. Empty outside a project.
 */
export const databasesOverview = (io: Io): ReadonlyArray<string> => {
  const { root, ...found } = findRoot(io.cwd)
  const project = loadProjectFiles(root, io.env, found)
  if (project.schemas.length === 0) return []
  const rows = project.schemas.map((name) => {
    let provider: string
    try {
      provider = activeProvider(parseSchema(readFileSync(schemaPath(project, name), "utf8"), `${name}.prisma`)) ?? "no datasource"
    } catch {
      provider = "unreadable (npx flexidb doctor says why)"
    }
    // A database per tenant: the template's variable, as doctor checks it (a schema per tenant: the shared database's).
    if (project.tenants?.schema === name && project.tenants.mode === "database") {
      const template = templateCheck(project)
      return [name, provider, `per tenant: ${template.status === "skip" ? `${TEMPLATE} not set` : template.detail}`]
    }
    const variable = urlVariable(name)
    return [name, provider, `${variable} ${databaseUrl(project, name) === undefined ? "not set" : "set"}`]
  })
  return [`Databases in ${SCHEMAS_DIR}/ (npx flexidb doctor checks them):`, ...table(rows).split("\n").map((l) => `  ${l}`), ""]
}
