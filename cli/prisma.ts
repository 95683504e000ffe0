/**
 * Running the app's own `prisma` for one database: its own config (URL variable and migrations folder), its
 * own environment, captured output for parallel runs or the terminal attached for interactive ones.
 */
import { spawn } from "node:child_process"
import { existsSync, mkdirSync, writeFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import type { Project } from "./project.js"
import { CliError, databaseUrl, migrationsPath, missingUrl, readSchema, schemaPath, urlVariable, userConfig } from "./project.js"
import { stringField } from "./schema.js"

/** A binary in node_modules/.bin of the project or a folder above it, as npm would find it. */
export const findBinary = (root: string, name: string): string | undefined => {
  for (let dir = resolve(root); ; dir = dirname(dir)) {
    const bin = join(dir, "node_modules", ".bin", process.platform === "win32" ? `${name}.cmd` : name)
    if (existsSync(bin)) return bin
    if (dirname(dir) === dir) return undefined
  }
}

export const prismaBinary = (project: Project): string => {
  const bin = findBinary(project.root, "prisma")
  if (bin === undefined) throw new CliError(`The prisma CLI is not installed in ${project.root}. Install it: npm install -D prisma`)
  return bin
}

/** Where flexidb writes the configs it generates: never in the app's source tree, never with a URL in it. */
export const configDir = (project: Project) => resolve(project.root, "node_modules", ".cache", "flexidb")

/**
 * The Prisma config for one database: the user's `prisma/config/<name>.config.*` when it exists, otherwise one
 * flexidb writes that points at the schema, at `prisma/migrations/<name>/`, and (Prisma 7) reads the URL from
 * `DATABASE_URL_<NAME>` at load time, so the URL itself is never written to disk.
 */
export const configFor = (project: Project, name: string): string => {
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
}

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
): Invocation => {
  const schema = readSchema(project, name)
  const datasource = schema.datasources[0]
  let url = databaseUrl(project, name)
  if (url === undefined) {
    if (needsUrl) throw new CliError(missingUrl(name))
    url = placeholders[datasource === undefined ? "" : stringField(datasource, "provider") ?? ""] ?? placeholders.sqlite!
  }
  const env: Record<string, string> = { ...project.env, [urlVariable(name)]: url }
  // Prisma 6 reads the URL from the schema's env("…"): give that variable this database's URL too.
  const schemaUrl = datasource?.fields.get("url")
  if (schemaUrl?.kind === "env") env[schemaUrl.name] = url
  return {
    database: name,
    bin: prismaBinary(project),
    args: [...command, "--config", configFor(project, name), ...extra],
    cwd: project.root,
    env
  }
}

export interface Outcome {
  readonly database: string
  readonly code: number
  readonly output: string
  readonly ms: number
}

/**
 * Runs one invocation (Prisma, or a seed script). `attach` gives it the terminal (interactive commands); otherwise
 * output is captured.
 */
export const runPrisma = (run: Invocation, attach: boolean): Promise<Outcome> =>
  new Promise((resolvePromise) => {
    const started = performance.now()
    const child = spawn(run.bin, [...run.args], {
      cwd: run.cwd,
      env: { ...run.env, PRISMA_HIDE_UPDATE_MESSAGE: "1" },
      stdio: attach ? "inherit" : ["ignore", "pipe", "pipe"]
    })
    let output = ""
    child.stdout?.on("data", (d) => (output += d))
    child.stderr?.on("data", (d) => (output += d))
    const done = (code: number) =>
      resolvePromise({ database: run.database, code, output, ms: Math.round(performance.now() - started) })
    child.on("error", (e) => {
      output += e.message
      done(127)
    })
    child.on("close", (code, signal) => done(code ?? (signal ? 128 : 1)))
  })
