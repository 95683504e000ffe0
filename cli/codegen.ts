/**
 * `flexidb codegen`: reads every schema and writes a module (default src/db.ts) that imports each generated client
 * relative to itself, builds it with the driver adapter its datasource needs, and wires them into createFlexiDB
 * with the options of a file beside it (src/db.options.ts), which codegen creates once and never overwrites.
 * With `--tenant-schema NAME` that schema is the tenants' instead: the module's `tenants.resolve` builds its client
 * for a tenant, in a database of its own (`--tenant-mode database`, the URL from DATABASE_URL_TENANT_TEMPLATE) or
 * in a PostgreSQL schema of its own on one shared pool (`--tenant-mode schema`).
 *
 * Relative imports carry the extension of the file they reach as it runs (`client.js` for Prisma's `client.ts`):
 * that is what TypeScript's nodenext and node16 resolution require, and what bundler and CommonJS resolution
 * accept too (each maps `.js` to the `.ts` beside it).
 */
import { Console, Effect } from "effect"
import { createHash } from "node:crypto"
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { basename, dirname, extname, join, relative, resolve } from "node:path"
import { CliError } from "./error.js"
import type { Project } from "./project.js"
import { readSchema, recordTenants, schemaPath, selectSchemas, urlVariable } from "./project.js"
import { syncEnvExample, templateLine } from "./init.js"
import type { ProviderAdapter } from "./providers.js"
import { ADAPTER_PACKAGES, ADAPTERS } from "./providers.js"
import { stringField } from "./schema.js"
import { PROMETHEUS_PACKAGES } from "../src/internal/telemetryPackages.js"

type Adapter = ProviderAdapter
const adapters = ADAPTERS

const pascal = (name: string) =>
  name.replace(/(^|[^A-Za-z0-9]+)([A-Za-z0-9])/g, (_, __, c: string) => c.toUpperCase()).replace(/^(\d)/, "_$1")

/** A relative import of `to` from the module `from`, `to` written as the file that runs (`.js`, `.mjs`, `.cjs`). */
const importPath = (from: string, to: string) => {
  const rel = relative(dirname(from), to).split("\\").join("/")
  return rel.startsWith(".") ? rel : `./${rel}`
}

/** What a TypeScript file's extension becomes in an import of it: `.ts` → `.js`, `.mts` → `.mjs`, `.cts` → `.cjs`. */
const runtimeExtension: Record<string, string> = { ".ts": ".js", ".mts": ".mjs", ".cts": ".cjs" }

/** prisma-client's entry is `client.<generatedFileExtension>` (ts by default; mts, cts, js, mjs, cjs). */
const clientEntry = (generatedFileExtension: string | undefined) => {
  const ext = `.${generatedFileExtension ?? "ts"}`
  return `client${runtimeExtension[ext] ?? ext}`
}

/** What the module needs of one schema: its client's class name and import path, and its driver adapter. */
const database = (project: Project, target: string, name: string) =>
  Effect.gen(function*() {
    const schema = yield* readSchema(project, name)
    const generator = schema.generators.find((g) => {
      const provider = stringField(g, "provider")
      return provider === "prisma-client" || provider === "prisma-client-js"
    })
    if (generator === undefined) {
      return yield* new CliError(`prisma/schemas/${name}.prisma has no prisma-client or prisma-client-js generator.`)
    }
    const out = stringField(generator, "output")
    if (out === undefined) {
      return yield* new CliError(
        `prisma/schemas/${name}.prisma: the generator has no output. With several schemas each client needs its own, ` +
          `e.g. output = "../../src/generated/${name}".`
      )
    }
    const clientDir = resolve(dirname(schemaPath(project, name)), out)
    const provider = schema.datasources[0] === undefined ? undefined : stringField(schema.datasources[0], "provider")
    const adapter = adapters[provider ?? ""]
    if (adapter === undefined) {
      return yield* new CliError(`prisma/schemas/${name}.prisma: no driver adapter is known for provider '${provider}'.`)
    }
    // prisma-client-js writes a CommonJS folder: its index.js, named as a file (ESM has no folder imports).
    const entry = stringField(generator, "provider") === "prisma-client"
      ? clientEntry(stringField(generator, "generatedFileExtension"))
      : "index.js"
    return { name, provider, cls: `${pascal(name)}Client`, from: importPath(target, join(clientDir, entry)), adapter }
  })

type Database = Effect.Effect.Success<ReturnType<typeof database>>

export type TenantMode = "database" | "schema"

export interface CodegenOptions {
  readonly output: string
  readonly force: boolean
  /** With `force`: replace lines of the module that codegen did not write (otherwise refused, naming them). */
  readonly yes?: boolean | undefined
  /** The schema whose client `tenants.resolve` builds per tenant; it is not one of the ordinary databases. */
  readonly tenantSchema?: string | undefined
  /** A database per tenant (default), or a PostgreSQL schema per tenant on one shared pool. */
  readonly tenantMode?: TenantMode | undefined
}

const TENANT_TEMPLATE = "DATABASE_URL_TENANT_TEMPLATE"

/** How an app gets the variables of its .env: the generated module says so when one is missing. */
const dotenvHint =
  `An app does not read .env by itself: start it with node --env-file=.env (Node 20.6+), or import "dotenv/config" ` +
  `before this module.`

/** The schema `--tenant-schema` names (`tenant` or `tenant.prisma`); anything else fails listing the schemas. */
const tenantSchemaName = (project: Project, options: CodegenOptions): Effect.Effect<string | undefined, CliError> => {
  const given = options.tenantSchema
  if (given === undefined) {
    // The one package.json records (a codegen --tenant-schema before): --force keeps the tenants.
    if (project.tenants !== undefined) return Effect.succeed(project.tenants.schema)
    return options.tenantMode === undefined
      ? Effect.succeed(undefined)
      : Effect.fail(new CliError(`--tenant-mode needs --tenant-schema: the schema whose client each tenant gets.`))
  }
  const name = given.endsWith(".prisma") ? given.slice(0, -".prisma".length) : given
  return project.schemas.includes(name)
    ? Effect.succeed(name)
    : Effect.fail(new CliError(
      `--tenant-schema '${given}': no such schema in prisma/schemas/ (found: ${project.schemas.join(", ")}).`
    ))
}

/**
 * The tenants' part of the module: how a tenant's name is checked and where its database is, then
 * `export const tenants = { resolve, ... }`. The name is checked in the generated code itself, although flexidb
 * checks it before calling resolve: that code is where a request's input meets a URL, so it never relies on a caller.
 */
const tenantLines = (tenant: Database, mode: TenantMode, major: 6 | 7): Array<string> => {
  const adapter = tenant.adapter.name(major)
  const client = (adapterExpression: string) => `new ${tenant.cls}({ adapter: ${adapterExpression} })`
  const schemaVariable = urlVariable(tenant.name)
  const about = [
    `/**`,
    ` * The tenants of prisma/schemas/${tenant.name}.prisma: db.tenant(name) and db.withTenant(name, fn) open a tenant's`,
    ` * client on first use and keep them within the budget below (see flexidb's README, "Tenants"); the options file's`,
    ` * \`tenants\` overrides that budget. resolve builds a client for any valid name: to refuse a tenant that does not`,
    ` * exist before anything is opened, give \`tenants.exists\` in the options file (db.tenant(name) then rejects with`,
    ` * UnknownDatabaseError).`,
    ` * Exported for tests and scripts that call resolve.`,
    ` */`
  ]
  if (mode === "schema") {
    return [
      `// Each tenant is a PostgreSQL schema, named as the tenant, in the database at ${schemaVariable}. Every tenant's`,
      `// client shares one pool: thousands of tenants need only its connections, and closing a client never ends it.`,
      `let pool: Pool | undefined`,
      `const tenantPool = (): Pool => {`,
      `  if (pool === undefined) {`,
      `    // max: the connections all tenants share. allowExitOnIdle: an idle pool never keeps the process running.`,
      `    pool = new Pool({ connectionString: url(${JSON.stringify(schemaVariable)}), max: 10, allowExitOnIdle: true })`,
      `    // An idle connection the server drops is replaced on next use: it must not crash the process.`,
      `    pool.on("error", (error) => console.error(\`flexidb tenants pool: \${error.message}\`))`,
      `  }`,
      `  return pool`,
      `}`,
      ``,
      `/**`,
      ` * The tenant's schema name, checked before it reaches the database: 1-63 letters, digits, _ or - (PostgreSQL cuts`,
      ` * longer names to 63 bytes, so two long names would share a schema), and never one of PostgreSQL's own schemas.`,
      ` * Anything else is refused, never escaped.`,
      ` */`,
      `const tenantSchema = (name: string): string => {`,
      `  if (!/^[A-Za-z0-9_-]{1,63}$/.test(name) || name === "public" || name === "information_schema" || name.startsWith("pg_")) {`,
      `    throw new Error(\`Refused tenant name \${JSON.stringify(name)}: a tenant's schema is 1 to 63 letters, digits, _ or -, not public, information_schema or pg_*\`)`,
      `  }`,
      `  return name`,
      `}`,
      ``,
      ...about,
      `export const tenants = {`,
      `  resolve: (name) => ${client(`new ${adapter}(tenantPool(), { schema: tenantSchema(name) })`)},`,
      `  maxClients: 100 // tenant clients kept open: they hold no connection of their own`,
      `} satisfies TenantsConfig<${tenant.cls}>`
    ]
  }
  const example = tenant.adapter.example
  const postgres = tenant.adapter === adapters.postgresql
  return [
    `// Each tenant has a database of its own, at ${TENANT_TEMPLATE} with {tenant} replaced by its name, e.g.`,
    `// ${TENANT_TEMPLATE}=${example}`,
    ...(tenant.adapter === adapters.sqlite
      ? [
        `// The folder must exist; a missing file is created, empty. On a case-insensitive file system (macOS, Windows)`,
        `// "Acme" and "acme" would share a file: keep tenant names in one case there.`
      ]
      : []),
    ``,
    `/**`,
    ` * The tenant's name, checked before it goes into the URL: 1-128 letters, digits, _ or -. Anything else (a path,`,
    ` * a dot, a quote, @, /, ?, #, %...) is refused, never escaped: escaping does not make a name safe in a path.`,
    ` */`,
    `const tenantName = (name: string): string => {`,
    `  if (!/^[A-Za-z0-9_-]{1,128}$/.test(name)) {`,
    `    throw new Error(\`Refused tenant name \${JSON.stringify(name)}: a tenant name is 1 to 128 letters, digits, _ or -\`)`,
    `  }`,
    `  return name`,
    `}`,
    ``,
    `/** The tenant's database URL: ${TENANT_TEMPLATE} with {tenant} replaced by its checked name. */`,
    `const tenantUrl = (name: string): string => {`,
    `  const template = process.env[${JSON.stringify(TENANT_TEMPLATE)}]`,
    `  if (template === undefined || template === "") {`,
    `    throw new Error(${JSON.stringify(`${TENANT_TEMPLATE} is not set: set it to the tenants' database URL with {tenant} where the tenant's name goes, e.g. ${example}. ${dotenvHint}`)})`,
    `  }`,
    `  if (!template.includes("{tenant}")) {`,
    `    throw new Error(${JSON.stringify(`${TENANT_TEMPLATE} has no {tenant}: every tenant would get the same database. Put {tenant} where the tenant's name goes, e.g. ${example}`)})`,
    `  }`,
    ...(postgres
      ? [
        `  const databaseUrl = template.replaceAll("{tenant}", tenantName(name))`,
        `  // PostgreSQL cuts a longer database name to 63 bytes: two long tenant names would share a database.`,
        `  if (Buffer.byteLength(decodeURIComponent(new URL(databaseUrl).pathname.slice(1))) > 63) {`,
        `    throw new Error(\`Refused tenant name \${JSON.stringify(name)}: its database name would be longer than PostgreSQL's 63 bytes\`)`,
        `  }`,
        `  return databaseUrl`
      ]
      : [`  return template.replaceAll("{tenant}", tenantName(name))`]),
    `}`,
    ``,
    ...(tenant.adapter === adapters.mysql
      ? [
        `/** The URL with the size of the pool, which the mariadb driver reads from it, when flexidb gives one. */`,
        `const withConnectionLimit = (databaseUrl: string, connectionLimit: number | undefined): string => {`,
        `  if (connectionLimit === undefined) return databaseUrl`,
        `  const limited = new URL(databaseUrl)`,
        `  limited.searchParams.set("connectionLimit", String(connectionLimit))`,
        `  return limited.toString()`,
        `}`,
        ``
      ]
      : []),
    ...about,
    `export const tenants = {`,
    ...(tenant.adapter.pooled
      ? [
        `  resolve: (name, { connectionLimit }) =>`,
        `    ${client(tenant.adapter.make(adapter, "tenantUrl(name)", "connectionLimit"))},`,
        `  connectionLimit: 2, // the connections each tenant's pool may open`,
        `  maxConnections: 40 // all tenants' connections together: at most 20 tenant clients open at once`
      ]
      : [
        `  // SQLite has no pool: connectionLimit does not apply.`,
        `  resolve: (name) => ${client(tenant.adapter.make(adapter, "tenantUrl(name)"))},`,
        `  maxClients: 100 // tenant databases kept open at once`
      ]),
    `} satisfies TenantsConfig<${tenant.cls}>`
  ]
}

/** Where a package resolves from `root`, as Node looks for it: node_modules of the root and of every folder above. */
const installed = (root: string, pkg: string): boolean => {
  for (let dir = resolve(root); ; dir = dirname(dir)) {
    if (existsSync(join(dir, "node_modules", pkg, "package.json"))) return true
    if (dirname(dir) === dir) return false
  }
}

/** The message of the generated module when a database's variable is missing: where it goes, and how .env is loaded. */
const notSet = (variable: string) =>
  `\${${variable}} is not set: set it to the database's URL in the environment, or in .env (see .env.example). ${dotenvHint}`

/** The user's file beside the module: src/db.ts → src/db.options.ts, imported as ./db.options.js. */
const optionsFile = (target: string) => {
  const ext = extname(target)
  const base = basename(target, ext)
  return {
    path: join(dirname(target), `${base}.options${ext}`),
    importOptions: `./${base}.options${runtimeExtension[ext]}`,
    importModule: `./${base}${runtimeExtension[ext]}`
  }
}

/** The options file, written once: the user's from then on. */
const optionsSource = (importModule: string, tenants: boolean) =>
  [
    `// createFlexiDB's options for the databases in ${importModule.replace(/\.[cm]?js$/, ".ts")}. This file is yours: \`flexidb codegen\` created it`,
    `// once and never overwrites it (codegen --force rewrites the module, which imports these). Every option: the`,
    `// README's "Options" section.`,
    `import type { Options } from "${importModule}"`,
    ``,
    `export const options: Options = {`,
    `  // retry: { attempts: 3, delay: 1000, backoff: "exponential" },`,
    `  // circuitBreaker: { threshold: 5, resetTimeout: 30_000 },`,
    `  // healthCheck: { interval: 30_000, onStatusChange: (name, healthy) => console.log(name, healthy ? "up" : "down") },`,
    `  // hooks: { onError: (name, error) => console.error(name, error.message) },`,
    `  // Metrics at http://127.0.0.1:9464/metrics (or prometheus: true and db.metricsHandler()). Needs:`,
    `  // npm i ${PROMETHEUS_PACKAGES.join(" ")}`,
    `  // prometheus: { port: 9464 },`,
    ...(tenants
      ? [
        `  // tenants: {`,
        `  //   // Asked before resolve when a tenant is not open: false refuses it (UnknownDatabaseError), with no client`,
        `  //   // made and no connection opened. Look the name up in your own registry of tenants.`,
        `  //   exists: async (name) => (await registry.find(name)) !== undefined, // boolean | Promise<boolean>`,
        `  //   maxClients: 20,`,
        `  // },`
      ]
      : []),
    `}`,
    ``
  ].join("\n")

/** The last line of codegen's module: a digest of everything above it, so a later --force can tell hand edits. */
const CHECKSUM = "// flexidb codegen checksum: "
const digest = (body: string) => createHash("sha256").update(body).digest("hex").slice(0, 16)
const sealed = (body: string) => `${body}${CHECKSUM}${digest(body)}\n`

/**
 * The lines of the module on disk that codegen did not write, and would replace: none when the file is as codegen
 * left it (its checksum matches); otherwise its lines that the new module does not have.
 */
const handEdits = (existing: string, next: string): ReadonlyArray<{ readonly line: number; readonly text: string }> => {
  const at = existing.lastIndexOf(CHECKSUM)
  if (at !== -1 && existing.slice(at + CHECKSUM.length).trim() === digest(existing.slice(0, at))) return []
  const kept = new Set(next.split("\n").map((l) => l.trim()))
  return existing.split("\n").flatMap((text, i) =>
    text.trim() === "" || kept.has(text.trim()) || text.startsWith(CHECKSUM) ? [] : [{ line: i + 1, text }]
  )
}

export const codegen = (project: Project, options: CodegenOptions): Effect.Effect<void, CliError> =>
  Effect.gen(function*() {
    const { output, force } = options
    const target = resolve(project.root, output)
    const ext = extname(target)
    if (runtimeExtension[ext] === undefined) {
      return yield* new CliError(`--output ${output}: codegen writes TypeScript; give a .ts, .mts or .cts file.`)
    }
    if (existsSync(target) && !force) {
      return yield* new CliError(`${output} exists and was left untouched. Run with --force to overwrite it.`)
    }
    const previous = existsSync(target) ? readFileSync(target, "utf8") : undefined
    const names = yield* selectSchemas(project, undefined)
    const tenantSchema = yield* tenantSchemaName(project, options)
    const all = yield* Effect.forEach(names, (name) => database(project, target, name))
    const tenant = all.find((d) => d.name === tenantSchema)
    const databases = all.filter((d) => d !== tenant)
    const mode = options.tenantMode ??
      (options.tenantSchema === undefined || project.tenants?.schema === tenantSchema ? project.tenants?.mode : undefined) ??
      "database"
    if (tenant !== undefined && mode === "schema" && tenant.adapter !== adapters.postgresql) {
      return yield* new CliError(
        `--tenant-mode schema needs a PostgreSQL schema; prisma/schemas/${tenant.name}.prisma's provider is ` +
          `'${tenant.provider}'. Use --tenant-mode database: a database per tenant.`
      )
    }
    const major = project.prismaMajor
    const used = [...new Set(all.map((d) => d.adapter))]
    const pool = tenant !== undefined && mode === "schema"
    const packages = [...used.map((a) => a.pkg), ...(pool ? ["pg"] : [])]
    const flags = tenant === undefined ? "" : ` --tenant-schema ${tenant.name}${mode === "schema" ? " --tenant-mode schema" : ""}`
    const mine = optionsFile(target)
    const lines = [
      `// Written by \`flexidb codegen\` from prisma/schemas/*.prisma. Regenerate: npx flexidb codegen${flags} --force`,
      `// --force rewrites this file: your options go in ${mine.importOptions.replace(/\.[cm]?js$/, ".ts")}, which codegen never overwrites.`,
      `// Packages it needs: ${packages.join(", ")}`,
      ...used.map((a) => `import { ${a.name(major)} } from "${a.pkg}"`),
      tenant === undefined
        ? `import { createFlexiDB, type FlexiDBOptions } from "flexidb"`
        : `import { createFlexiDB, type FlexiDBOptions, type TenantsConfig } from "flexidb"`,
      ...(pool ? [`import { Pool } from "pg"`] : []),
      ...all.map((d) => `import { PrismaClient as ${d.cls} } from "${d.from}"`),
      `import { options } from "${mine.importOptions}"`,
      ``,
      ...(tenant === undefined
        ? [
          `/** What ${mine.importOptions.replace(/\.[cm]?js$/, ".ts")} sets: createFlexiDB's options (tenants: codegen --tenant-schema). */`,
          `export type Options = Omit<FlexiDBOptions, "tenants">`
        ]
        : [
          `/**`,
          ` * What ${mine.importOptions.replace(/\.[cm]?js$/, ".ts")} sets: createFlexiDB's options. Its \`tenants\` sets the tenants' budget`,
          ` * (maxClients, connectionLimit, maxConnections, idleTimeout, acquireTimeout) over the defaults below; resolve is`,
          ` * this module's (typed by the tenants' client, so db.tenant() and db.withTenant() give a ${tenant?.cls}).`,
          ` */`,
          `export type Options = Omit<FlexiDBOptions, "tenants"> & {`,
          `  readonly tenants?: Omit<TenantsConfig<${tenant?.cls}>, "resolve" | "client" | "catalog">`,
          `}`
        ]),
      ``,
      `const url = (variable: string): string => {`,
      `  const value = process.env[variable]`,
      `  if (value === undefined || value === "") {`,
      `    throw new Error(\`${notSet("variable")}\`)`,
      `  }`,
      `  return value`,
      `}`,
      ``,
      ...(tenant === undefined ? [] : [...tenantLines(tenant, mode, major), ``]),
      `const clients = {`,
      ...databases.map((d) =>
        `  ${JSON.stringify(d.name)}: new ${d.cls}({ adapter: ${d.adapter.make(d.adapter.name(major), `url(${JSON.stringify(urlVariable(d.name))})`)} }),`
      ),
      `}`,
      ``,
      `/** Each database's client type, by name: \`mockFlexiDB<Clients>(mocks)\` in tests, \`FlexiDB<Clients>\` in signatures. */`,
      `export type Clients = typeof clients`,
      ``,
      tenant === undefined
        ? `export const db = createFlexiDB(clients, options)`
        : `export const db = createFlexiDB(clients, { ...options, tenants: { ...tenants, ...options.tenants } })`,
      ``,
      `/** The instance's type: \`mockFlexiDB<DB>(mocks)\` gives a mock of it. */`,
      `export type DB = typeof db`,
      ``
    ]
    const source = sealed(lines.join("\n"))
    // --force replaces codegen's own module freely; lines someone wrote there only with --yes, and never silently.
    const edits = previous === undefined ? [] : handEdits(previous, source)
    if (edits.length > 0) {
      const shown = edits.slice(0, 8).map((e) => `  ${e.line}: ${e.text.trim().slice(0, 90)}`)
      const list = `${shown.join("\n")}${edits.length > shown.length ? `\n  … and ${edits.length - shown.length} more` : ""}`
      const where = relative(project.root, optionsFile(target).path)
      if (!options.yes) {
        return yield* new CliError(
          `${output} has ${edits.length} line${edits.length === 1 ? "" : "s"} codegen did not write, which --force would replace:\n` +
            `${list}\nMove your changes to ${where} (codegen never overwrites it), or add --yes to replace them.`
        )
      }
      yield* Console.log(`Replaced ${edits.length} line${edits.length === 1 ? "" : "s"} of ${output} that codegen did not write:\n${list}`)
    }
    mkdirSync(dirname(target), { recursive: true })
    writeFileSync(target, source)
    yield* Console.log(`Wrote ${output}: ${databases.map((d) => d.name).join(", ") || "no database but the tenants'"}`)
    // .env.example follows the schemas: a renamed schema's old line is replaced.
    yield* syncEnvExample(
      project.root,
      // A database per tenant: the tenants' schema has no DATABASE_URL_<NAME> of its own.
      yield* Effect.forEach(names.filter((n) => !(n === tenant?.name && mode === "database")), (name) => Effect.map(readSchema(project, name), (schema) => ({
        name,
        provider: schema.datasources[0] === undefined ? undefined : stringField(schema.datasources[0], "provider")
      }))),
      tenant !== undefined && mode === "database" ? [urlVariable(tenant.name)] : [],
      // ... and the module reads DATABASE_URL_TENANT_TEMPLATE instead (a schema per tenant reads the schema's own).
      tenant !== undefined && mode === "database" ? [templateLine(tenant.name, tenant.provider)] : []
    )
    const optionsPath = relative(project.root, mine.path)
    if (existsSync(mine.path)) {
      yield* Console.log(`Kept ${optionsPath}: your options (codegen never overwrites it)`)
    } else {
      writeFileSync(mine.path, optionsSource(mine.importModule, tenant !== undefined))
      yield* Console.log(`Created ${optionsPath}: your options for createFlexiDB (codegen never overwrites it)`)
    }
    if (tenant !== undefined) {
      // Every command reads it there: doctor and migrate then treat this schema's databases as the tenants'.
      const recorded = project.tenants?.schema === tenant.name && project.tenants.mode === mode
      if (!recorded) {
        yield* recordTenants(project.root, { schema: tenant.name, mode })
          ? Console.log(`Recorded in package.json ("flexidb": { "tenantSchema": "${tenant.name}", "tenantMode": "${mode}" }): doctor and migrate treat ${tenant.name} as the tenants' schema`)
          : Console.log(`No package.json to record the tenants' schema in: doctor and migrate will treat ${tenant.name} as one database. Create package.json, then run codegen again.`)
      }
      yield* Console.log(
        `Tenants of ${tenant.name}: ` + (mode === "schema"
          ? `a PostgreSQL schema each, in the database at ${urlVariable(tenant.name)}`
          // Without the example's user:password, which would print as *** (everything the CLI prints is redacted).
          : `a database each, at ${TENANT_TEMPLATE} (e.g. ${tenant.adapter.example.replace("user:password@", "")})`)
      )
    }
    // flexidb itself may be run with npx without being installed; Prisma's generated clients need @prisma/client.
    // The options file's `prometheus` (not commented out) needs OpenTelemetry's packages, which flexidb does not bring.
    const prometheus = /^\s*prometheus\s*:/m.test(readFileSync(mine.path, "utf8")) ? PROMETHEUS_PACKAGES : []
    const missing = ["flexidb", "@prisma/client", ...packages, ...prometheus].filter((pkg) => !installed(project.root, pkg))
    if (missing.length > 0) yield* Console.log(`It needs: npm install ${missing.join(" ")}`)
    // @prisma/adapter-better-sqlite3's declarations import better-sqlite3's, which the driver does not ship: without
    // them tsc fails inside node_modules (TS7016) unless skipLibCheck is on.
    if (
      packages.includes(ADAPTER_PACKAGES.sqlite!) && !installed(project.root, "@types/better-sqlite3") &&
      existsSync(join(project.root, "tsconfig.json"))
    ) yield* Console.log("For TypeScript: npm install -D @types/better-sqlite3")
  })
