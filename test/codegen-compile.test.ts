// codegen's module as an app compiles and runs it: real `prisma generate` (Prisma 7), `flexidb codegen`, then the
// real TypeScript compiler under the settings apps use — nodenext (what `tsc --init` writes), node16, bundler and
// CommonJS — against flexidb's built declarations, as the package ships them. Then the compiled app runs with node.
import { execFileSync, spawnSync } from "node:child_process"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { cli } from "./support/cli.js"
import { MYSQL_HOST, PG_HOST } from "./support/databases.js"

const repo = join(import.meta.dirname, "..")
const work = join(repo, "test", ".tmp", `codegen-${process.pid}`)
const pkg = join(work, "flexidb")
const engines = {
  PRISMA_SCHEMA_ENGINE_BINARY: join(repo, "test", "fixtures", "bin", "schema-engine"),
  PRISMA_QUERY_ENGINE_LIBRARY: join(repo, "test", "fixtures", "bin", "libquery_engine-stub.so.node"),
  PRISMA_HIDE_UPDATE_MESSAGE: "1",
  CHECKPOINT_DISABLE: "1"
}

/** What `tsc --init` (TypeScript 5.9) writes, with Node's types, as an app that reads process.env has them. */
const tscInit = {
  module: "nodenext",
  target: "esnext",
  types: ["node"],
  sourceMap: true,
  declaration: true,
  declarationMap: true,
  noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: true,
  strict: true,
  jsx: "react-jsx",
  verbatimModuleSyntax: true,
  isolatedModules: true,
  noUncheckedSideEffectImports: true,
  moduleDetection: "force",
  skipLibCheck: true
}

interface Setting {
  /** package.json's "type". */
  readonly type?: "module"
  readonly compilerOptions: Record<string, unknown>
  /** The generator's moduleFormat for Prisma 7's client, as such an app sets it. */
  readonly moduleFormat?: "cjs"
  /** How the app runs: node over tsc's output, or (bundler resolution) a bundler's loader over the sources: tsx. */
  readonly runs?: "tsx"
}

const strict = { strict: true, skipLibCheck: true, types: ["node"], target: "es2022" }
const settings: Record<string, Setting> = {
  nodenext: { type: "module", compilerOptions: tscInit },
  node16: { type: "module", compilerOptions: { ...strict, module: "node16", moduleResolution: "node16" } },
  bundler: { type: "module", compilerOptions: { ...strict, module: "esnext", moduleResolution: "bundler" }, runs: "tsx" },
  commonjs: {
    compilerOptions: { ...strict, module: "commonjs", moduleResolution: "node10", esModuleInterop: true },
    moduleFormat: "cjs"
  },
  // A CommonJS package under nodenext: tsc --init's settings, but verbatimModuleSyntax, which forbids import
  // statements in CommonJS files, is off.
  "nodenext, CommonJS package": { compilerOptions: { ...tscInit, verbatimModuleSyntax: false }, moduleFormat: "cjs" }
}

beforeAll(() => {
  rmSync(work, { recursive: true, force: true })
  mkdirSync(pkg, { recursive: true })
  // flexidb as it ships: its package.json (exports, types) over a build of the library's entries, made here so that
  // no other test's `npm run build` races with it.
  cpSync(join(repo, "package.json"), join(pkg, "package.json"))
  execFileSync(
    join(repo, "node_modules", ".bin", "tsup"),
    [
      "--no-config", "--entry.index", "src/index.ts", "--entry.testing", "src/testing.ts", "--format", "esm,cjs",
      "--dts", "--target", "node20", "--out-dir", join(pkg, "dist")
    ],
    { cwd: repo, stdio: "pipe" }
  )
}, 180_000)
afterAll(() => rmSync(work, { recursive: true, force: true }))

const schema = (name: string, provider: string, moduleFormat: string | undefined) =>
  [
    `generator client {`,
    `  provider = "prisma-client"`,
    `  output   = "../../src/generated/${name}"`,
    ...(moduleFormat === undefined ? [] : [`  moduleFormat = "${moduleFormat}"`]),
    `}`,
    ``,
    `datasource db {`,
    `  provider = "${provider}"`,
    `}`,
    ``,
    `model User {`,
    `  id    Int    @id @default(autoincrement())`,
    `  email String @unique`,
    `}`,
    ``
  ].join("\n")

/** An app with four schemas, its tsconfig and package.json, flexidb installed; clients generated, codegen run. */
const app = async (name: string, setting: Setting) => {
  const root = mkdtempSync(join(work, `${name}-`))
  mkdirSync(join(root, "prisma", "schemas"), { recursive: true })
  mkdirSync(join(root, "node_modules"), { recursive: true })
  symlinkSync(pkg, join(root, "node_modules", "flexidb"), "dir")
  writeFileSync(join(root, "package.json"), JSON.stringify({ name: "app", private: true, ...(setting.type && { type: setting.type }) }))
  writeFileSync(join(root, "tsconfig.json"), JSON.stringify({
    compilerOptions: { ...setting.compilerOptions, rootDir: "src", outDir: "dist" },
    include: ["src"]
  }, null, 2))
  for (const [schemaName, provider] of [["user", "postgresql"], ["orders", "mysql"], ["cache", "sqlite"], ["tenant", "postgresql"]]) {
    writeFileSync(join(root, "prisma", "schemas", `${schemaName}.prisma`), schema(schemaName!, provider!, setting.moduleFormat))
  }
  const generated = await cli(root, ["generate"], engines)
  expect(generated.err).toBe("")
  expect(generated.code).toBe(0)
  for (const schemaName of ["user", "orders", "cache", "tenant"]) {
    expect(existsSync(join(root, "src", "generated", schemaName, "client.ts"))).toBe(true)
  }
  for (const args of [
    ["codegen"],
    ["codegen", "--tenant-schema", "tenant", "--output", "src/tenants/db.ts"],
    ["codegen", "--tenant-schema", "tenant", "--tenant-mode", "schema", "--output", "src/schemas.ts"]
  ]) {
    const r = await cli(root, args, engines)
    expect(r.err).toBe("")
    expect(r.code).toBe(0)
  }
  return root
}

/** tsc over the app: its findings, not just its exit code, are what a failure shows. */
const tsc = (root: string) => {
  const r = spawnSync(join(repo, "node_modules", ".bin", "tsc"), ["-p", root], { encoding: "utf8" })
  return (r.stdout + r.stderr).trim()
}

/** The app's own code over codegen's modules: options in the user's files, the instance used, its types mocked. */
const appSources = (root: string) => {
  writeFileSync(join(root, "src", "db.options.ts"), [
    `import type { Options } from "./db.js"`,
    `export const options: Options = { retry: { attempts: 0 }, healthCheck: { timeout: 500 }, gracefulShutdown: false }`,
    ``
  ].join("\n"))
  writeFileSync(join(root, "src", "tenants", "db.options.ts"), [
    `import type { Options } from "./db.js"`,
    `export const options: Options = {`,
    `  tenants: { maxClients: 3, connectionLimit: 1, exists: (name) => name !== "nosuch" },`,
    `  gracefulShutdown: false`,
    `}`,
    ``
  ].join("\n"))
  writeFileSync(join(root, "src", "use.ts"), [
    `import { db } from "./db.js"`,
    `import { db as perTenant, tenants } from "./tenants/db.js"`,
    `import { db as perSchema } from "./schemas.js"`,
    `export const users = (): Promise<number> => db.get("user").user.count()`,
    `export const tenant = (): Promise<number> => perTenant.withTenant("acme", (client) => client.user.count())`,
    `export const schemaTenant = (): Promise<number> => perSchema.tenant("acme").then((client) => client.user.count())`,
    `export const resolved = () => tenants.resolve("acme", { connectionLimit: 1 })`,
    `// @ts-expect-error not a database`,
    `export const oracle = () => db.get("oracle")`,
    ``
  ].join("\n"))
  writeFileSync(join(root, "src", "main.ts"), [
    `import { db } from "./db.js"`,
    `import { db as perTenant } from "./tenants/db.js"`,
    `import { db as perSchema } from "./schemas.js"`,
    `console.log(JSON.stringify({ databases: db.list(), tenantsOnly: perTenant.list() }))`,
    `void Promise.all([db.disconnect(), perTenant.disconnect(), perSchema.disconnect()])`,
    ``
  ].join("\n"))
}

/** The README's testing section over codegen's exports: either type, the clients' or the instance's; tenants too. */
const mockSources = (root: string) => {
  writeFileSync(join(root, "src", "users.ts"), [
    `import type { FlexiDB } from "flexidb"`,
    `import type { Clients, DB } from "./db.js"`,
    `export const countUsers = (db: FlexiDB<Clients>) => db.get("user").user.count()`,
    `export const countOrders = (db: DB) => db.get("orders").user.count()`,
    ``
  ].join("\n"))
  writeFileSync(join(root, "src", "users.test.ts"), [
    `import { mockFlexiDB } from "flexidb/testing"`,
    `import type { Clients, DB } from "./db.js"`,
    `import type { DB as TenantsDB } from "./tenants/db.js"`,
    `import { countOrders, countUsers } from "./users.js"`,
    `const byClients = mockFlexiDB<Clients>({ user: { user: { count: async () => 2 } }, orders: {}, cache: {}, tenant: {} })`,
    `const byInstance = mockFlexiDB<DB>({ user: {}, orders: { user: { count: async () => 3 } }, cache: {}, tenant: {} })`,
    `const withTenants = mockFlexiDB<TenantsDB>({ user: {}, orders: {}, cache: {} }, {`,
    `  tenants: { resolve: (name) => (name === "acme" ? { user: { count: async () => 4 } } : undefined) }`,
    `})`,
    `export const n: Promise<number> = countUsers(byClients)`,
    `export const m: Promise<number> = countOrders(byInstance)`,
    `export const t: Promise<number> = withTenants.withTenant("acme", (client) => client.user.count())`,
    `byInstance.setDown("orders")`,
    `// @ts-expect-error a mock holds only what the client has`,
    `mockFlexiDB<Clients>({ user: { nope: {} }, orders: {}, cache: {}, tenant: {} })`,
    `// @ts-expect-error a tenant mock holds only what the tenants' client has`,
    `mockFlexiDB<TenantsDB>({ user: {}, orders: {}, cache: {} }, { tenants: { resolve: () => ({ usr: {} }) } })`,
    `// @ts-expect-error every database needs a mock`,
    `mockFlexiDB<DB>({ user: {} })`,
    ``
  ].join("\n"))
}

describe.each(Object.keys(settings))("codegen's module under %s", (name) => {
  const setting = settings[name]!
  let root = ""

  it("type-checks with the real tsc: db.ts, the tenant modules, the user's options and the mocks", async () => {
    root = await app(name, setting)
    const db = readFileSync(join(root, "src", "db.ts"), "utf8")
    expect(db).toContain(`import { PrismaClient as UserClient } from "./generated/user/client.js"`)
    expect(db).toContain(`import { options } from "./db.options.js"`)
    appSources(root)
    expect(tsc(root)).toBe("")
  }, 180_000)

  // node10 resolution (CommonJS's classic setting) ignores package.json "exports": it finds flexidb/testing through
  // "typesVersions".
  it(
    "the README's testing section type-checks: mockFlexiDB<Clients> and mockFlexiDB<DB>, tenants mocked",
    () => {
      mockSources(root)
      expect(tsc(root)).toBe("")
    },
    60_000
  )

  it(`runs ${setting.runs === "tsx" ? "with tsx" : "compiled, with node"}, and a missing variable says how to load .env`, () => {
    const main = setting.runs === "tsx" ? ["--import", "tsx", join("src", "main.ts")] : [join("dist", "main.js")]
    const run = (flags: ReadonlyArray<string>) =>
      spawnSync(process.execPath, [...flags, ...main], { cwd: root, encoding: "utf8", timeout: 60_000, env: { PATH: process.env.PATH! } })
    const missing = run([])
    expect(missing.status).not.toBe(0)
    expect(missing.stderr).toContain(
      "DATABASE_URL_CACHE is not set: set it to the database's URL in the environment, or in .env (see .env.example). " +
        `An app does not read .env by itself: start it with node --env-file=.env (Node 20.6+), or import "dotenv/config" before this module.`
    )
    writeFileSync(join(root, ".env"), [
      `DATABASE_URL_USER="postgresql://postgres@${PG_HOST}/postgres" # the app's own`,
      `DATABASE_URL_ORDERS=mysql://root@${MYSQL_HOST}/test`,
      `DATABASE_URL_CACHE="file:./cache.db"`,
      `DATABASE_URL_TENANT=postgresql://postgres@${PG_HOST}/postgres`,
      `DATABASE_URL_TENANT_TEMPLATE=file:./{tenant}.db`,
      ``
    ].join("\n"))
    const ok = run(["--env-file=.env"])
    expect(ok.stderr).toBe("")
    expect(JSON.parse(ok.stdout.trim().split("\n").at(-1)!)).toEqual({
      databases: ["cache", "orders", "tenant", "user"],
      tenantsOnly: ["cache", "orders", "user"]
    })
  }, 120_000)
})

describe("a fresh app from flexidb init", () => {
  // Prisma 7's generator picks its import extension from the tsconfig it finds when it runs: .ts when there is none
  // (or with rewriteRelativeImportExtensions), .js under nodenext. init's schema sets importFileExtension = "js", so
  // `tsc && node dist/…` works whether the tsconfig came before the first generate or after.
  const fresh = async (importFileExtension: boolean) => {
    const root = mkdtempSync(join(work, "init-"))
    writeFileSync(join(root, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }))
    mkdirSync(join(root, "node_modules"), { recursive: true })
    symlinkSync(pkg, join(root, "node_modules", "flexidb"), "dir")
    const init = await cli(root, ["init"], engines)
    expect(init.code).toBe(0)
    const schemaFile = join(root, "prisma", "schemas", "main.prisma")
    const template = readFileSync(schemaFile, "utf8")
    expect(template).toMatch(/importFileExtension = "js"/)
    if (!importFileExtension) writeFileSync(schemaFile, template.replace(/\n.*\/\/.*\n.*\/\/.*\n\s*importFileExtension = "js"/, ""))
    // The first generate, before the app has a tsconfig.
    const generated = await cli(root, ["generate"], engines)
    expect(generated.code).toBe(0)
    // What `tsc --init` writes, and an app that uses its client as the README's Use section does.
    writeFileSync(join(root, "tsconfig.json"), JSON.stringify({ compilerOptions: { ...tscInit, skipLibCheck: false, rootDir: "src", outDir: "dist" }, include: ["src"] }))
    writeFileSync(join(root, "src", "seed.ts"), [
      `import { PrismaPg } from "@prisma/adapter-pg"`,
      `import { createFlexiDB } from "flexidb"`,
      `import { PrismaClient as MainClient } from "./generated/main/client.js"`,
      `const db = createFlexiDB({ main: new MainClient({ adapter: new PrismaPg({ connectionString: process.env.DATABASE_URL_MAIN! }) }) }, { gracefulShutdown: false })`,
      `const [row] = await db.get("main").$queryRaw<Array<{ one: number }>>\`SELECT 1 AS one\``,
      `console.log(JSON.stringify(row))`,
      `await db.disconnect()`,
      ``
    ].join("\n"))
    expect(tsc(root)).toBe("")
    return spawnSync(process.execPath, [join("dist", "seed.js")], {
      cwd: root,
      encoding: "utf8",
      timeout: 60_000,
      env: { PATH: process.env.PATH!, DATABASE_URL_MAIN: `postgresql://postgres@${PG_HOST}/postgres` }
    })
  }

  it("tsc, then node dist/seed.js: runs on the first try", async () => {
    const run = await fresh(true)
    expect(run.stderr).toBe("")
    expect(JSON.parse(run.stdout.trim())).toEqual({ one: 1 })
  }, 180_000)

  it("without init's importFileExtension the compiled app cannot start (what the template prevents)", async () => {
    const run = await fresh(false)
    expect(run.status).not.toBe(0)
    expect(run.stderr).toMatch(/ERR_MODULE_NOT_FOUND[\s\S]*dist\/generated\/main\/[\w/]+\.ts' imported/)
  }, 180_000)
})
