/**
 * Running the app's own `prisma` for one database: its own config (URL variable and migrations folder), its
 * own environment, captured output for parallel runs or the terminal attached for interactive ones.
 */
import { Command as PlatformCommand } from "@effect/platform"
import type { CommandExecutor, Process } from "@effect/platform/CommandExecutor"
import { Duration, Effect, Stream } from "effect"
import { createHash } from "node:crypto"
import { spawnSync } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { CliError } from "./error.js"
import type { Project } from "./project.js"
import { databaseUrl, migrationsPath, missingUrl, SCHEMAS_DIR, schemaPath, urlVariable, userConfig } from "./project.js"
import type { Schema } from "./schema.js"
import { activeProvider, parseSchema, resolvedField, SchemaParseError } from "./schema.js"

/** A binary in node_modules/.bin of the project or a folder above it, as npm would find it. */
export const findBinary = (root: string, name: string): string | undefined => {
  for (let dir = resolve(root); ; dir = dirname(dir)) {
    const bin = join(dir, "node_modules", ".bin", process.platform === "win32" ? `${name}.cmd` : name)
    if (existsSync(bin)) return bin
    if (dirname(dir) === dir) return undefined
  }
}

export const prismaBinary = (project: Project): Effect.Effect<string, CliError> =>
  Effect.suspend(() => {
    const bin = findBinary(project.root, "prisma")
    return bin === undefined
      ? Effect.fail(new CliError(`The prisma CLI is not installed in ${project.root}. Install it: npm install -D prisma`))
      : Effect.succeed(bin)
  })

/** The version of a package installed for the project (its node_modules or a folder's above), as Node would find it. */
export const installedVersion = (root: string, pkg: string): string | undefined => {
  for (let dir = resolve(root); ; dir = dirname(dir)) {
    const manifest = join(dir, "node_modules", ...pkg.split("/"), "package.json")
    if (existsSync(manifest)) {
      try {
        const version = JSON.parse(readFileSync(manifest, "utf8")).version
        return typeof version === "string" ? version : undefined
      } catch {
        return undefined
      }
    }
    if (dirname(dir) === dir) return undefined
  }
}

const engines = new Map<string, boolean>()

/**
 * Whether Prisma's native schema engine can run here (`migrate`, `db push`, `db pull` and `diff` need it): the
 * binary `PRISMA_SCHEMA_ENGINE_BINARY` names answers `--version`, or, without that variable, Prisma has downloaded
 * one beside it (`@prisma/engines`). Doctor's fixes use it: `--in-process` where the engine is absent.
 */
export const schemaEngineAvailable = (project: Pick<Project, "root" | "env">): boolean => {
  const given = project.env.PRISMA_SCHEMA_ENGINE_BINARY
  const key = `${project.root}\0${given ?? ""}`
  const known = engines.get(key)
  if (known !== undefined) return known
  let available: boolean
  if (given !== undefined && given !== "") {
    const run = spawnSync(given, ["--version"], { timeout: 5000, stdio: "ignore", env: { PATH: project.env.PATH ?? "" } })
    available = run.status === 0
  } else {
    available = ["@prisma/engines", "prisma"].some((pkg) => {
      for (let dir = resolve(project.root); ; dir = dirname(dir)) {
        const folder = join(dir, "node_modules", ...pkg.split("/"))
        if (existsSync(folder)) {
          try {
            return readdirSync(folder).some((f) => f.startsWith("schema-engine"))
          } catch {
            return false
          }
        }
        if (dirname(dir) === dir) return false
      }
    })
  }
  engines.set(key, available)
  return available
}

/** Where flexidb writes the configs it generates: never in the app's source tree, never with a URL in it. */
export const configDir = (project: Pick<Project, "root">) => resolve(project.root, "node_modules", ".cache", "flexidb")

/**
 * A schema read as the installed Prisma reads it. One that Prisma would refuse is the user's to fix: a CliError
 * with Prisma's reason, file and line.
 */
export const readProjectSchema = (
  project: Project,
  name: string,
  source?: string
): Effect.Effect<Schema, CliError> =>
  Effect.try({
    try: () =>
      parseSchema(source ?? readFileSync(schemaPath(project, name), "utf8"), join(SCHEMAS_DIR, `${name}.prisma`), {
        prisma: project.prismaMajor
      }),
    catch: (error) => error
  }).pipe(Effect.catchAll((error) =>
    error instanceof SchemaParseError ? Effect.fail(new CliError(error.message, { cause: error })) : Effect.die(error)
  ))

/**
 * The Prisma config for one database: the user's `prisma/config/<name>.config.*` when it exists, otherwise one
 * flexidb writes that points at the schema, at `prisma/migrations/<name>/`, and (Prisma 7) reads the URL from
 * `DATABASE_URL_<NAME>` at load time, so the URL itself is never written to disk.
 */
export const configFor = (project: Project, name: string): Effect.Effect<string> =>
  Effect.sync(() => {
    const own = userConfig(project, name)
    if (own !== undefined) return own
    const dir = configDir(project)
    mkdirSync(dir, { recursive: true })
    const file = join(dir, `${name}.config.mjs`)
    const lines = [
      `// Written by flexidb for database '${name}' on every run; edit prisma/config/${name}.config.ts instead.`,
      `export default {`,
      `  schema: ${JSON.stringify(schemaPath(project, name))},`,
      `  migrations: { path: ${JSON.stringify(migrationsPath(project, name))} },`,
      ...(project.prismaMajor === 7 ? [`  datasource: { url: process.env[${JSON.stringify(urlVariable(name))}] },`] : []),
      `}`,
      ``
    ]
    writeFileSync(file, lines.join("\n"))
    return file
  })

/** A URL of the right shape for commands that never connect (generate, validate, format). */
const placeholders: Record<string, string> = {
  sqlite: "file:./flexidb-placeholder.db",
  postgresql: "postgresql://placeholder@localhost:5432/placeholder",
  postgres: "postgresql://placeholder@localhost:5432/placeholder",
  mysql: "mysql://placeholder@localhost:3306/placeholder",
  sqlserver: "sqlserver://localhost:1433;database=placeholder",
  cockroachdb: "postgresql://placeholder@localhost:26257/placeholder",
  mongodb: "mongodb://localhost:27017/placeholder"
}

export interface Invocation {
  readonly database: string
  readonly bin: string
  readonly args: ReadonlyArray<string>
  readonly cwd: string
  readonly env: Readonly<Record<string, string>>
}

/**
 * Builds the run of `command` for one database. When `needsUrl`, a missing `DATABASE_URL_<NAME>` is an error
 * naming the variable; otherwise a placeholder of the datasource's kind stands in.
 */
export const invocation = (
  project: Project,
  name: string,
  command: ReadonlyArray<string>,
  extra: ReadonlyArray<string>,
  needsUrl: boolean
): Effect.Effect<Invocation, CliError> =>
  Effect.gen(function*() {
    const schema = yield* readProjectSchema(project, name)
    const datasource = schema.datasources[0]
    let url = databaseUrl(project, name)
    if (url === undefined) {
      if (needsUrl) return yield* new CliError(missingUrl(name))
      url = placeholders[activeProvider(schema) ?? ""] ?? placeholders.sqlite!
    }
    const env: Record<string, string> = { ...project.env, [urlVariable(name)]: url }
    // Prisma 6 reads the URL from the schema's env("…"): give that variable this database's URL too.
    const schemaUrl = datasource?.fields.get("url")
    if (schemaUrl?.kind === "env") env[schemaUrl.name] = url
    const bin = yield* prismaBinary(project)
    return { database: name, bin, args: [...command, "--config", yield* configFor(project, name), ...extra], cwd: project.root, env }
  })

export interface Outcome {
  readonly database: string
  readonly code: number
  readonly output: string
  readonly ms: number
}

/** Stdout and stderr as they arrive, interleaved as a terminal would show them; each decoded on its own. */
const captured = (child: Process) =>
  Stream.merge(Stream.decodeText(child.stdout), Stream.decodeText(child.stderr)).pipe(Stream.mkString)

/**
 * Runs one invocation (Prisma, or a seed script) and never fails: a binary that cannot be spawned is exit 127, a
 * run ended by a signal is 128. `attach` gives it the terminal (interactive commands); otherwise output is captured.
 * Interrupting the run ends the process (the executor's scope kills its process group).
 */
export const runPrisma = (run: Invocation, attach: boolean): Effect.Effect<Outcome, never, CommandExecutor> => {
  const command = PlatformCommand.make(run.bin, ...run.args).pipe(
    PlatformCommand.workingDirectory(run.cwd),
    // Exactly the environment built for this database: nothing else of flexidb's own process leaks in.
    PlatformCommand.env({ ...run.env, PRISMA_HIDE_UPDATE_MESSAGE: "1" }, { extendEnv: false }),
    attach
      ? (c) => c.pipe(PlatformCommand.stdin("inherit"), PlatformCommand.stdout("inherit"), PlatformCommand.stderr("inherit"))
      // An empty stdin, closed at once: a captured run that asks a question reads end of input, never hangs.
      : PlatformCommand.stdin(Stream.empty)
  )
  const finished = PlatformCommand.start(command).pipe(
    Effect.matchEffect({
      // Missing or not executable: a shell's 127, with Node's own reason ("spawn … ENOENT") as the output.
      onFailure: (error) => Effect.succeed({ code: 127, output: error.description ?? error.message }),
      onSuccess: (child) =>
        Effect.all({
          code: Effect.orElseSucceed(child.exitCode, () => 128),
          // A pipe that fails mid-read is not something the user can fix: a defect.
          output: attach ? Effect.succeed("") : Effect.orDie(captured(child))
        }, { concurrency: "unbounded" }) // read while it runs: a full pipe would stall the child
    }),
    Effect.scoped
  )
  return Effect.timed(finished).pipe(Effect.map(([elapsed, { code, output }]) => ({
    database: run.database,
    code,
    output,
    ms: Math.round(Duration.toMillis(elapsed))
  })))
}

// -----------------------------------------------------------------------------------------------------------------
// Incremental generate: a record per database of what its last successful generate was made from

/** What a generate of one database is made from, and whether its last successful generate was made from the same. */
export interface GenerateState {
  readonly database: string
  /** A digest of the schema's content, its generators as Prisma reads them, the Prisma version, the outputs and flags. */
  readonly key: string
  /** Every generator's output folder (or file); undefined when one has none flexidb can see (Prisma's default). */
  readonly outputs: ReadonlyArray<string> | undefined
  readonly upToDate: boolean
}

/** Beside flexidb's per-database configs: never in the app's source tree. */
const recordFile = (project: Pick<Project, "root">, name: string) => join(configDir(project), "generate", `${name}.json`)

const RECORD_VERSION = 1

/**
 * Where one database's generate stands. Up to date when the record of its last successful generate has the same key
 * and every output is still there; a generator without an output of its own is never up to date.
 */
export const generateState = (
  project: Project,
  name: string,
  extra: ReadonlyArray<string>
): Effect.Effect<GenerateState, CliError> =>
  Effect.gen(function*() {
    const file = schemaPath(project, name)
    const source = readFileSync(file, "utf8")
    const schema = yield* readProjectSchema(project, name, source)
    const generators = schema.generators.map((g) => ({
      name: g.name,
      fields: Object.fromEntries(g.fields),
      // A value from env(): the variable's value is part of what Prisma generates from (an output, a provider).
      env: Object.fromEntries([...g.fields].flatMap(([key, v]) => v.kind === "env" ? [[key, project.env[v.name] ?? null]] : []))
    }))
    const outputs = schema.generators.map((g) => {
      const out = resolvedField(g, "output", project.env)
      return out === undefined ? undefined : resolve(dirname(file), out)
    })
    const checkable = outputs.every((o) => o !== undefined) ? (outputs as ReadonlyArray<string>) : undefined
    const own = userConfig(project, name)
    const key = createHash("sha256").update(JSON.stringify({
      v: RECORD_VERSION,
      source,
      generators,
      prisma: installedVersion(project.root, "prisma") ?? null,
      client: installedVersion(project.root, "@prisma/client") ?? null,
      outputs,
      extra,
      config: own === undefined ? null : { file: own, source: readFileSync(own, "utf8") }
    })).digest("hex")
    let recorded: unknown
    try {
      recorded = JSON.parse(readFileSync(recordFile(project, name), "utf8")).key
    } catch {
      recorded = undefined
    }
    const upToDate = recorded === key && checkable !== undefined && checkable.length > 0 && checkable.every((o) => existsSync(o))
    return { database: name, key, outputs: checkable, upToDate }
  })

/** Records a successful generate (written whole, then renamed: a record is never half there). */
export const recordGenerated = (project: Project, state: GenerateState): Effect.Effect<void> =>
  Effect.sync(() => {
    const file = recordFile(project, state.database)
    mkdirSync(dirname(file), { recursive: true })
    const partial = `${file}.${process.pid}.tmp`
    writeFileSync(partial, JSON.stringify({
      key: state.key,
      database: state.database,
      prisma: installedVersion(project.root, "prisma") ?? null,
      outputs: state.outputs ?? null
    }, null, 2))
    renameSync(partial, file)
  })
