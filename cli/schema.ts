/**
 * The Prisma schema reader: Prisma's own. `get_config` of @prisma/prisma-schema-wasm is the call with which
 * `prisma generate`, `validate` and `format` read a schema's generators and datasources: the same parser, the same
 * validation of those blocks (preview features, required arguments, `env()`), the same errors with their positions.
 *
 * Prisma 6 and Prisma 7 disagree on one thing flexidb reads: a datasource's `url`. Prisma 7 refuses it (the URL
 * moved to prisma.config.ts), Prisma 6 requires it. So both readers are here — the build Prisma 7.10 ships and the
 * one Prisma 6.19 ships — and a schema is read by the one of the installed Prisma when the caller knows it;
 * otherwise by whichever accepts it, Prisma 7's first.
 */
import { Data } from "effect"
import { createRequire } from "node:module"

export type Value =
  | { readonly kind: "string"; readonly value: string }
  | { readonly kind: "env"; readonly name: string }
  | { readonly kind: "array"; readonly items: ReadonlyArray<Value> }

export interface Block {
  readonly type: "generator" | "datasource"
  readonly name: string
  /**
   * As Prisma reads them. A generator: `provider`, `output` (when given), `previewFeatures` (always, sorted as
   * Prisma sorts them), `binaryTargets` (when given) and every other key of its block (`moduleFormat`, `engineType`…).
   * A datasource: `provider` as written, `activeProvider` (Prisma's name for it: `postgres` is `postgresql`),
   * `schemas`, and with Prisma 6 `url`, `directUrl`, `shadowDatabaseUrl` when given.
   */
  readonly fields: ReadonlyMap<string, Value>
  /** The file the block is in: a schema may be several files. */
  readonly file: string
}

export interface Schema {
  readonly generators: ReadonlyArray<Block>
  readonly datasources: ReadonlyArray<Block>
  /** Whose reader accepted it: Prisma 7's or Prisma 6's. */
  readonly prisma: 6 | 7
}

export interface SchemaProblem {
  readonly file: string
  readonly line: number
  readonly reason: string
}

/** A schema Prisma would refuse, with the file and line of its first problem and every other one Prisma found. */
export class SchemaParseError extends Data.TaggedError("SchemaParseError")<{
  readonly file: string
  readonly line: number
  readonly reason: string
  readonly problems: ReadonlyArray<SchemaProblem>
}> {
  constructor(problems: ReadonlyArray<SchemaProblem>) {
    const [first] = problems
    super({ file: first!.file, line: first!.line, reason: first!.reason, problems })
  }

  override get message() {
    const more = this.problems.length - 1
    return `${this.file}:${this.line}: ${this.reason}${more > 0 ? ` (and ${more} more problem${more === 1 ? "" : "s"})` : ""}`
  }
}

export interface ReadOptions {
  /** The installed Prisma's major version: read as that Prisma reads it. Unknown: whichever reader accepts it. */
  readonly prisma?: 6 | 7 | undefined
}

interface Engine {
  readonly get_config: (params: string) => string
  readonly format: (schema: string, params: string) => string
}

interface EnvValue {
  readonly fromEnvVar: string | null
  readonly value: string | null
}

interface Config {
  readonly config: {
    readonly generators: ReadonlyArray<{
      readonly name: string
      readonly provider: EnvValue
      readonly output: EnvValue | null
      readonly config: Readonly<Record<string, string | ReadonlyArray<string>>>
      readonly binaryTargets: ReadonlyArray<EnvValue>
      readonly previewFeatures: ReadonlyArray<string>
      readonly sourceFilePath: string
    }>
    readonly datasources: ReadonlyArray<{
      readonly name: string
      readonly provider: string
      readonly activeProvider: string
      readonly url?: EnvValue
      readonly directUrl?: EnvValue | null
      readonly shadowDatabaseUrl?: EnvValue | null
      readonly schemas: ReadonlyArray<string>
      readonly sourceFilePath: string
    }>
  }
  readonly errors: ReadonlyArray<{ readonly file_name: string; readonly message: string }>
}

const require = createRequire(import.meta.url)
const packages = { 7: "@prisma/prisma-schema-wasm", 6: "prisma6-schema-wasm" } as const
const engines: Partial<Record<6 | 7, Engine>> = {}
let panic: string | undefined

/** Loaded on first use: a command that reads no schema never compiles either module. */
const engine = (major: 6 | 7): Engine => {
  // The modules report a Rust panic through this global before they throw.
  const global = globalThis as { PRISMA_WASM_PANIC_REGISTRY?: { set_message: (message: string) => void } }
  global.PRISMA_WASM_PANIC_REGISTRY ??= { set_message: (message) => (panic = message) }
  return (engines[major] ??= require(packages[major]) as Engine)
}

/** Prisma's message: `error: <reason>\n  -->  <file>:<line>\n<code frame>`. The frame is for terminals. */
const problemOf = (error: { readonly file_name: string; readonly message: string }): SchemaProblem => {
  const at = /-->\s+(.*):(\d+)\s*$/m.exec(error.message)
  const reason = (error.message.split("\n")[0] ?? "").replace(/^error:\s*/, "").replace(/^Error validating:\s*/, "")
  return { file: at?.[1] ?? error.file_name, line: at === null ? 1 : Number(at[2]), reason: reason || error.message.trim() }
}

const read = (major: 6 | 7, files: ReadonlyArray<readonly [string, string]>): Config => {
  panic = undefined
  try {
    // No environment: a value from env() stays a variable's name, and no URL is ever read here.
    return JSON.parse(engine(major).get_config(JSON.stringify({
      prismaSchema: files,
      datasourceOverrides: {},
      ignoreEnvVarErrors: true,
      env: {}
    })))
  } catch (error) {
    // A panic in Prisma's reader: what it said is all the user can act on. The module cannot be used again.
    delete engines[major]
    const reason = panic ?? (error instanceof Error ? error.message : String(error))
    return { config: { generators: [], datasources: [] }, errors: [{ file_name: files[0]?.[0] ?? "schema.prisma", message: `Prisma's schema reader failed: ${reason}` }] }
  }
}

const valueOf = (v: EnvValue): Value =>
  v.fromEnvVar !== null ? { kind: "env", name: v.fromEnvVar } : { kind: "string", value: v.value ?? "" }

const strings = (items: ReadonlyArray<string>): Value => ({
  kind: "array",
  items: items.map((value) => ({ kind: "string", value }))
})

const schemaOf = (prisma: 6 | 7, { config }: Config): Schema => ({
  prisma,
  generators: config.generators.map((g) => {
    const fields = new Map<string, Value>([["provider", valueOf(g.provider)]])
    if (g.output !== null) fields.set("output", valueOf(g.output))
    fields.set("previewFeatures", strings(g.previewFeatures))
    if (g.binaryTargets.length > 0) fields.set("binaryTargets", { kind: "array", items: g.binaryTargets.map(valueOf) })
    for (const [key, value] of Object.entries(g.config)) {
      fields.set(key, typeof value === "string" ? { kind: "string", value } : strings(value))
    }
    return { type: "generator" as const, name: g.name, fields, file: g.sourceFilePath }
  }),
  datasources: config.datasources.map((d) => {
    const fields = new Map<string, Value>([
      ["provider", { kind: "string", value: d.provider }],
      ["activeProvider", { kind: "string", value: d.activeProvider }],
      ["schemas", strings(d.schemas)]
    ])
    for (const key of ["url", "directUrl", "shadowDatabaseUrl"] as const) {
      const v = d[key]
      if (v !== undefined && v !== null) fields.set(key, valueOf(v))
    }
    return { type: "datasource" as const, name: d.name, fields, file: d.sourceFilePath }
  })
})

/**
 * Reads a schema made of one or more files (`[path, source]`: the path labels its blocks and errors), as Prisma
 * does. Throws `SchemaParseError` for a schema Prisma would refuse.
 */
export const parseSchemaFiles = (files: ReadonlyArray<readonly [string, string]>, options: ReadOptions = {}): Schema => {
  const fail = (config: Config) => new SchemaParseError(config.errors.map(problemOf))
  if (options.prisma !== undefined) {
    const config = read(options.prisma, files)
    if (config.errors.length > 0) throw fail(config)
    return schemaOf(options.prisma, config)
  }
  const seven = read(7, files)
  if (seven.errors.length === 0) return schemaOf(7, seven)
  const six = read(6, files)
  if (six.errors.length === 0) return schemaOf(6, six)
  // Neither accepts it: the problems of the reader it is closer to. A datasource `url` only Prisma 7 refuses, and
  // means the schema was written for Prisma 6.
  const urlRefused = seven.errors.some((e) => e.message.includes("`url` is no longer supported"))
  throw fail(six.errors.length < seven.errors.length || (six.errors.length === seven.errors.length && urlRefused) ? six : seven)
}

/** Reads one schema file's source. `file` labels errors. */
export const parseSchema = (source: string, file = "schema.prisma", options: ReadOptions = {}): Schema =>
  parseSchemaFiles([[file, source]], options)

/**
 * The schema as `prisma format` lays it out, by the reader of the given Prisma: what `prisma generate` keeps as the
 * client's `inlineSchema`. Two sources that format alike differ only in layout (spacing, alignment, blank lines).
 * Undefined when Prisma's formatter fails on it.
 */
export const formatSchema = (source: string, major: 6 | 7): string | undefined => {
  try {
    const files = JSON.parse(engine(major).format(
      JSON.stringify([["schema.prisma", source]]),
      JSON.stringify({ textDocument: { uri: "file:/schema.prisma" }, options: { tabSize: 2, insertSpaces: true } })
    )) as ReadonlyArray<readonly [string, string]>
    return files[0]?.[1]
  } catch {
    delete engines[major]
    return undefined
  }
}

/** A field's string value, if it is a literal string. */
export const stringField = (block: Block, key: string): string | undefined => {
  const v = block.fields.get(key)
  return v?.kind === "string" ? v.value : undefined
}

/** A literal string, or the value of the variable `env("…")` names in `env`; undefined when neither is there. */
export const resolvedField = (block: Block, key: string, env: Readonly<Record<string, string | undefined>>): string | undefined => {
  const v = block.fields.get(key)
  return v?.kind === "string" ? v.value : v?.kind === "env" ? env[v.name] || undefined : undefined
}

/** The generator that builds the Prisma client (`prisma-client`, or Prisma 6's `prisma-client-js`), if any. */
export const clientGenerator = (schema: Schema): Block | undefined =>
  schema.generators.find((g) => {
    const provider = stringField(g, "provider")
    return provider === "prisma-client" || provider === "prisma-client-js"
  })

/** The provider of the schema's datasource, as Prisma names it (`postgres` is `postgresql`). */
export const activeProvider = (schema: Schema): string | undefined => {
  const datasource = schema.datasources[0]
  return datasource === undefined ? undefined : stringField(datasource, "activeProvider")
}
