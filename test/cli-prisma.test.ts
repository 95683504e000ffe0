// The CLI driving the real Prisma: Prisma 7 generate/validate/format on several schemas (with codegen's output
// type-checked, and its tenant modules run against real databases), codegen's tenant modules type-checked against
// Prisma 6.19's clients, and real SQLite migrations through Prisma 6.19's JavaScript schema engine. Incremental
// generate: with the real Prisma, and in detail with the recording stand-in.
import Database from "better-sqlite3"
import { spawnSync } from "node:child_process"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import pg from "pg"
import { afterAll, describe, expect, it } from "vitest"
import { cli, fakeProject } from "./support/cli.js"
import { createDatabase, MYSQL_HOST, PG_HOST } from "./support/databases.js"

const repo = join(import.meta.dirname, "..")
const engines = {
  PRISMA_SCHEMA_ENGINE_BINARY: join(repo, "test", "fixtures", "bin", "schema-engine"),
  PRISMA_QUERY_ENGINE_LIBRARY: join(repo, "test", "fixtures", "bin", "libquery_engine-stub.so.node")
}
const made: Array<string> = []
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })))
/** A project inside `parent`, so `prisma` resolves to that folder's installed version, as in an app. */
const projectIn = (parent: string) => {
  mkdirSync(parent, { recursive: true })
  const root = mkdtempSync(join(parent, "proj-"))
  made.push(root)
  mkdirSync(join(root, "prisma", "schemas"), { recursive: true })
  writeFileSync(join(root, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }))
  return root
}

/** An app's strict tsconfig, for tsc and for tsx (which follows `paths` too): "flexidb" is this repository's source. */
const writeTsconfig = (root: string) =>
  writeFileSync(join(root, "tsconfig.json"), JSON.stringify({
    compilerOptions: {
      target: "ES2022", module: "ESNext", moduleResolution: "Bundler", strict: true, noEmit: true, skipLibCheck: true,
      noUncheckedIndexedAccess: true, verbatimModuleSyntax: true,
      allowImportingTsExtensions: true, types: ["node"], typeRoots: [join(repo, "node_modules", "@types")],
      paths: { flexidb: [join(repo, "src", "index.ts")] }
    },
    include: ["src"]
  }))

/** tsc over the project: its findings, not just its exit code, are what a failure shows. */
const typeCheck = (root: string) => {
  const tsc = spawnSync(join(repo, "node_modules", ".bin", "tsc"), ["-p", root], { encoding: "utf8" })
  expect(tsc.stdout + tsc.stderr).toBe("")
  expect(tsc.status).toBe(0)
}

/** codegen's four tenant modules, src/tenant-<kind>.ts, for `sqlite`, `mysql` and `postgresql` schemas. */
const tenantModules = async (root: string, env: Record<string, string> = {}) => {
  for (const [output, ...flags] of [
    ["tenant-sqlite.ts", "--tenant-schema", "sqlite"],
    ["tenant-mysql.ts", "--tenant-schema", "mysql"],
    ["tenant-pg.ts", "--tenant-schema", "postgresql"],
    ["tenant-schema.ts", "--tenant-schema", "postgresql", "--tenant-mode", "schema"]
  ]) expect((await cli(root, ["codegen", "--output", `src/${output}`, ...flags], env)).code).toBe(0)
  writeFileSync(join(root, "src", "use-tenants.ts"), [
    `import { db as perFile, tenants } from "./tenant-sqlite"`,
    `import { db as perMysql } from "./tenant-mysql"`,
    `import { db as perDatabase } from "./tenant-pg"`,
    `import { db as perSchema } from "./tenant-schema"`,
    `export const a: Promise<number> = perFile.withTenant("acme", (client) => client.post.count())`,
    `export const b: Promise<number> = perMysql.tenant("acme").then((client) => client.user.count())`,
    `export const c: Promise<number> = perDatabase.tenant("acme").then((client) => client.post.count())`,
    `export const d: Promise<number> = perSchema.withTenant("acme", (client) => client.user.count())`,
    `export const e: Promise<number> = perSchema.get("mysql").post.count()`,
    `export const f: Promise<number> = tenants.resolve("acme").user.count()`,
    ``
  ].join("\n"))
}

describe("Prisma 7, for real", () => {
  const root = projectIn(join(repo, "test", ".tmp"))
  for (const provider of ["sqlite", "postgresql", "mysql"]) {
    const source = readFileSync(join(repo, "test", "fixtures", "prisma7", "schemas", `${provider}.prisma`), "utf8")
    writeFileSync(join(root, "prisma", "schemas", `${provider}.prisma`), source.replace(`"../generated/${provider}"`, `"../../generated/${provider}"`))
  }
  writeTsconfig(root)

  it("migrate deploy with the offline stub as the schema engine: Prisma fails, and flexidb says what works without it", async () => {
    const stubbed = projectIn(join(repo, "test", ".tmp"))
    cpSync(join(root, "prisma", "schemas", "postgresql.prisma"), join(stubbed, "prisma", "schemas", "core.prisma"))
    mkdirSync(join(stubbed, "prisma", "migrations", "core", "20260101000000_init"), { recursive: true })
    writeFileSync(join(stubbed, "prisma", "migrations", "core", "20260101000000_init", "migration.sql"), `CREATE TABLE "T" ("id" INTEGER PRIMARY KEY);\n`)
    writeFileSync(join(stubbed, "prisma", "migrations", "core", "migration_lock.toml"), `provider = "postgresql"\n`)
    const r = await cli(stubbed, ["migrate", "deploy", "--schema", "core"], {
      ...engines,
      DATABASE_URL_CORE: `postgresql://postgres@${PG_HOST}/flexidb_never_created`
    })
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/Schema engine (exited|error)/i)
    expect(r.err).toContain("Prisma's schema engine is not available here")
    expect(r.err).toContain("npx flexidb migrate deploy|status|resolve --in-process (and with --tenants <module>) work without it")
  }, 60_000)

  it("validates every schema, and names the one that is invalid", async () => {
    const ok = await cli(root, ["validate"], engines)
    expect(ok.code).toBe(0)
    expect(ok.out).toContain("prisma validate: 3 databases ok")
    writeFileSync(join(root, "prisma", "schemas", "broken.prisma"), `datasource db {\n  provider = "sqlite"\n}\nmodel X {\n  id Nope @id\n}\n`)
    const bad = await cli(root, ["validate"], engines)
    rmSync(join(root, "prisma", "schemas", "broken.prisma"))
    expect(bad.code).toBe(1)
    expect(bad.out).toContain("prisma validate failed for broken")
  })

  it("formats a schema in place", async () => {
    const file = join(root, "prisma", "schemas", "sqlite.prisma")
    const tidy = readFileSync(file, "utf8")
    writeFileSync(file, tidy.replace("  email String  @unique", "  email      String     @unique"))
    expect((await cli(root, ["format", "--schema", "sqlite"], engines)).code).toBe(0)
    expect(readFileSync(file, "utf8")).toBe(tidy)
  })

  it("generates every client, and codegen's src/db.ts type-checks against them", async () => {
    const r = await cli(root, ["generate"], engines)
    expect(r.code).toBe(0)
    for (const p of ["sqlite", "postgresql", "mysql"]) expect(existsSync(join(root, "generated", p, "client.ts"))).toBe(true)
    expect((await cli(root, ["codegen"], engines)).code).toBe(0)
    writeFileSync(join(root, "src", "use.ts"), [
      `import { db } from "./db"`,
      `export const n: Promise<number> = db.get("postgresql").user.count()`,
      `export const m: Promise<number> = db.get("mysql").post.count()`,
      `// @ts-expect-error not a database`,
      `db.get("oracle")`,
      ``
    ].join("\n"))
    // With tenants: a database per tenant for each provider, and a PostgreSQL schema per tenant.
    await tenantModules(root, engines)
    typeCheck(root)
  }, 120_000)

  it("a second generate runs no Prisma; a changed schema regenerates that client only", async () => {
    if (!existsSync(join(root, "generated", "mysql", "client.ts"))) expect((await cli(root, ["generate"], engines)).code).toBe(0)
    const client = (p: string) => statSync(join(root, "generated", p, "client.ts")).mtimeMs
    const before = { sqlite: client("sqlite"), postgresql: client("postgresql"), mysql: client("mysql") }
    const again = await cli(root, ["generate"], engines)
    expect(again.code).toBe(0)
    expect(again.out).toContain("prisma generate: 3 databases ok (all up to date)")
    expect(again.out).not.toContain("── ")
    const file = join(root, "prisma", "schemas", "mysql.prisma")
    writeFileSync(file, readFileSync(file, "utf8") + `\nmodel Extra {\n  id Int @id\n}\n`)
    const changed = await cli(root, ["generate"], engines)
    expect(changed.code).toBe(0)
    expect(changed.out).toContain("prisma generate: 3 databases ok (2 up to date)")
    expect(client("mysql")).toBeGreaterThan(before.mysql)
    expect(existsSync(join(root, "generated", "mysql", "models", "Extra.ts"))).toBe(true)
    expect([client("sqlite"), client("postgresql")]).toEqual([before.sqlite, before.postgresql])
  }, 120_000)

  /**
   * Writes the tenant module `flags` ask for as src/<module>.ts, then runs `script` (which imports it) with tsx and
   * resolves the JSON it prints last. The ordinary databases are built at import and only probed; one that is down
   * would hold disconnect(), so they get the test servers.
   */
  const runTenants = async (module: string, flags: ReadonlyArray<string>, script: string, env: Record<string, string>) => {
    // The module imports every client: generate them unless a test before did.
    if (!existsSync(join(root, "generated", "mysql", "client.ts"))) expect((await cli(root, ["generate"], engines)).code).toBe(0)
    expect((await cli(root, ["codegen", "--force", "--output", `src/${module}.ts`, ...flags], engines)).code).toBe(0)
    mkdirSync(join(root, "scripts"), { recursive: true })
    writeFileSync(join(root, "scripts", `${module}.ts`), [
      `import { db, tenants } from "../src/${module}"`,
      `const outcome = async (f: () => unknown) => {`,
      `  try { await f(); return "ok" } catch (e) { return e instanceof Error ? e.message : String(e) }`,
      `}`,
      script
    ].join("\n"))
    const run = spawnSync(process.execPath, ["--import", "tsx", join("scripts", `${module}.ts`)], {
      cwd: root,
      encoding: "utf8",
      timeout: 60_000,
      env: {
        ...process.env,
        DATABASE_URL_SQLITE: `file:${join(root, "sqlite.db")}`,
        DATABASE_URL_POSTGRESQL: `postgresql://postgres@${PG_HOST}/postgres`,
        DATABASE_URL_MYSQL: `mysql://root@${MYSQL_HOST}/test`,
        ...env
      }
    })
    expect(run.stderr).toBe("")
    expect(run.status).toBe(0)
    return JSON.parse(run.stdout.trim().split("\n").at(-1)!)
  }

  it("codegen's SQLite tenants run: a file per tenant from the template, and a bad name never reaches the URL", async () => {
    const dir = mkdtempSync(join(root, "tenants-"))
    const acme = new Database(join(dir, "acme.db"))
    acme.exec(`CREATE TABLE "User" (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, name TEXT)`)
    acme.close()
    const template = `file:${dir}/{tenant}.db`
    const result = await runTenants("tenant-file", ["--tenant-schema", "sqlite"], `
      const missing = await outcome(() => db.tenant("acme"))
      process.env["DATABASE_URL_TENANT_TEMPLATE"] = ${JSON.stringify(template.replace("{tenant}", "shared"))}
      const noPlaceholder = await outcome(() => db.tenant("acme"))
      process.env["DATABASE_URL_TENANT_TEMPLATE"] = ${JSON.stringify(template)}
      const refused: Record<string, string> = {}
      // Straight to resolve, past flexidb's own check: the generated code must refuse these itself.
      for (const name of ["../x", "a'b", "a/b", "a@b", "..", "a%2Fb", "a.b", ""]) refused[name] = await outcome(() => tenants.resolve(name))
      const created = await db.withTenant("acme", (client) => client.user.create({ data: { email: "ann@acme.test" } }))
      const count = await (await db.tenant("acme")).user.count()
      await db.disconnect()
      console.log(JSON.stringify({ missing, noPlaceholder, refused, created: created.email, count }))
    `, { DATABASE_URL_TENANT_TEMPLATE: "" })
    expect(result.missing).toContain("DATABASE_URL_TENANT_TEMPLATE is not set: set it to the tenants' database URL with {tenant}")
    expect(result.noPlaceholder).toContain("DATABASE_URL_TENANT_TEMPLATE has no {tenant}")
    expect(Object.keys(result.refused)).toHaveLength(8)
    for (const [name, message] of Object.entries(result.refused)) {
      expect(message).toBe(`Refused tenant name ${JSON.stringify(name)}: a tenant name is 1 to 128 letters, digits, _ or -`)
    }
    expect(result).toMatchObject({ created: "ann@acme.test", count: 1 })
    // No name made a file anywhere else, nor the template without {tenant} its shared one.
    expect(readdirSync(dir)).toEqual(["acme.db"])
    expect(readdirSync(root).filter((f) => f.endsWith(".db") && f !== "sqlite.db")).toEqual([])
  }, 120_000)

  it("codegen's database-per-tenant PostgreSQL and MariaDB run, each pool bounded, a name too long for PostgreSQL refused", async () => {
    for (const provider of ["postgresql", "mysql"] as const) {
      const database = await createDatabase(provider)
      try {
        // The test database's name is the tenant's: the template is the URL with {tenant} for it.
        const name = database.url.slice(database.url.lastIndexOf("/") + 1)
        const [sleep, connections] = provider === "postgresql"
          ? ["SELECT 1 AS one FROM pg_sleep(0.2)", "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database()"]
          : ["SELECT SLEEP(0.2) AS s", "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = DATABASE()"]
        const result = await runTenants(`tenant-${provider}`, ["--tenant-schema", provider], `
          await db.withTenant(${JSON.stringify(name)}, (client) => client.user.create({ data: { email: "ann@acme.test" } }))
          const client = await db.tenant(${JSON.stringify(name)})
          const count = await client.user.count()
          // Eight queries at once through a pool of connectionLimit (2, as generated): it opens no more.
          await Promise.all(Array.from({ length: 8 }, () => client.$queryRawUnsafe(${JSON.stringify(sleep)})))
          const [row] = await client.$queryRawUnsafe<Array<{ n: number | bigint }>>(${JSON.stringify(connections)})
          const long = await outcome(() => tenants.resolve("x".repeat(64), { connectionLimit: 2 }))
          await db.disconnect()
          console.log(JSON.stringify({ count, connections: Number(row!.n), long }))
        `, { DATABASE_URL_TENANT_TEMPLATE: database.url.replace(name, "{tenant}") })
        expect(result.count).toBe(1)
        expect(result.connections).toBeGreaterThanOrEqual(1)
        expect(result.connections).toBeLessThanOrEqual(2)
        expect(result.long).toBe(provider === "postgresql" ? `Refused tenant name "${"x".repeat(64)}": its database name would be longer than PostgreSQL's 63 bytes` : "ok")
      } finally {
        await database.drop()
      }
    }
  }, 120_000)

  it("codegen's schema-per-tenant PostgreSQL runs: each tenant's rows in its own schema, PostgreSQL's own refused", async () => {
    const database = await createDatabase("postgresql")
    const admin = new pg.Client({ connectionString: database.url })
    try {
      await admin.connect()
      for (const schema of ["acme", "globex"]) {
        await admin.query(`CREATE SCHEMA ${schema}`)
        await admin.query(`CREATE TABLE ${schema}."User" (id SERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT)`)
      }
      const result = await runTenants("tenant-schema", ["--tenant-schema", "postgresql", "--tenant-mode", "schema"], `
        await db.withTenant("acme", (client) => client.user.create({ data: { email: "ann@acme.test" } }))
        const acme = await (await db.tenant("acme")).user.count()
        const globex = await db.withTenant("globex", (client) => client.user.count())
        const refused: Record<string, string> = {}
        for (const name of ["public", "pg_catalog", "information_schema", 'a"b', "a.b", "x".repeat(64)]) {
          refused[name] = await outcome(() => tenants.resolve(name))
        }
        await db.disconnect()
        console.log(JSON.stringify({ acme, globex, refused }))
      `, { DATABASE_URL_POSTGRESQL: database.url })
      expect(result).toMatchObject({ acme: 1, globex: 0 })
      expect(Object.keys(result.refused)).toHaveLength(6)
      for (const message of Object.values(result.refused)) expect(message).toMatch(/^Refused tenant name /)
      const rows = await admin.query(`SELECT (SELECT count(*) FROM acme."User")::int AS acme, (SELECT count(*) FROM public."User")::int AS public`)
      expect(rows.rows[0]).toEqual({ acme: 1, public: 0 })
    } finally {
      await admin.end()
      await database.drop()
    }
  }, 120_000)
})

describe("Prisma 6.19, real SQLite migrations through its JavaScript schema engine", () => {
  const root = projectIn(join(repo, "test", "fixtures", "prisma6", ".tmp"))
  const names = ["alpha", "beta"]
  for (const name of names) {
    const model = name[0]!.toUpperCase() + name.slice(1)
    writeFileSync(join(root, "prisma", "schemas", `${name}.prisma`), [
      `generator client {\n  provider = "prisma-client-js"\n  output   = "../../generated/${name}"\n}`,
      `datasource db {\n  provider = "sqlite"\n  url      = env("DATABASE_URL_${name.toUpperCase()}")\n}`,
      `model ${model} {\n  id Int @id\n}`,
      ``
    ].join("\n\n"))
    // The user's own per-database config: the JS engine needs an adapter, which flexidb's generated config lacks.
    mkdirSync(join(root, "prisma", "config"), { recursive: true })
    writeFileSync(join(root, "prisma", "config", `${name}.config.ts`), [
      `import path from "node:path"`,
      `import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3"`,
      `export default {`,
      `  experimental: { adapter: true },`,
      `  engine: "js",`,
      `  schema: path.join(import.meta.dirname, "..", "schemas", "${name}.prisma"),`,
      `  migrations: { path: path.join(import.meta.dirname, "..", "migrations", "${name}") },`,
      `  adapter: async () => new PrismaBetterSQLite3({ url: process.env.DATABASE_URL_${name.toUpperCase()}! }),`,
      `}`,
      ``
    ].join("\n"))
    const migration = join(root, "prisma", "migrations", name, "20260101000000_init")
    mkdirSync(migration, { recursive: true })
    writeFileSync(join(migration, "migration.sql"), `CREATE TABLE "${model}" ("id" INTEGER NOT NULL PRIMARY KEY);\n`)
    writeFileSync(join(root, "prisma", "migrations", name, "migration_lock.toml"), `provider = "sqlite"\n`)
  }
  writeFileSync(join(root, ".env"), names.map((n) => `DATABASE_URL_${n.toUpperCase()}=file:${join(root, `${n}.db`)}`).join("\n"))
  const tables = (name: string) => {
    const db = new Database(join(root, `${name}.db`), { readonly: true })
    const rows = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as Array<{ name: string }>
    db.close()
    return rows.map((r) => r.name)
  }

  it("migrate deploy applies each database's own migrations to its own database only", async () => {
    const r = await cli(root, ["migrate", "deploy"], engines)
    expect(r.code).toBe(0)
    expect(tables("alpha")).toEqual(["Alpha", "_prisma_migrations"])
    expect(tables("beta")).toEqual(["Beta", "_prisma_migrations"])
  })

  it("migrate status reports each database up to date", async () => {
    const r = await cli(root, ["migrate", "status", "--json"], engines)
    expect(r.code).toBe(0)
    const report = JSON.parse(r.out)
    for (const result of report.results) expect(result.output).toContain("Database schema is up to date")
  })

  it("db push changes only the database whose schema changed", async () => {
    const file = join(root, "prisma", "schemas", "beta.prisma")
    writeFileSync(file, readFileSync(file, "utf8") + `\nmodel Extra {\n  id Int @id\n}\n`)
    const r = await cli(root, ["db", "push", "--schema", "beta", "--", "--skip-generate"], engines)
    expect(r.code).toBe(0)
    expect(tables("beta")).toEqual(["Beta", "Extra", "_prisma_migrations"])
    expect(tables("alpha")).toEqual(["Alpha", "_prisma_migrations"])
  })
})

describe("Prisma 6.19, codegen against the fixture's clients", () => {
  it("the tenant modules type-check with Prisma 6's clients and adapters", async () => {
    const root = projectIn(join(repo, "test", "fixtures", "prisma6", ".tmp"))
    for (const provider of ["sqlite", "postgresql", "mysql"]) {
      const source = readFileSync(join(repo, "test", "fixtures", "prisma6", "schemas", `${provider}.prisma`), "utf8")
      const generated = join(repo, "test", "fixtures", "prisma6", "generated", provider)
      writeFileSync(join(root, "prisma", "schemas", `${provider}.prisma`), source.replace(`"../generated/${provider}"`, JSON.stringify(generated)))
    }
    writeTsconfig(root)
    await tenantModules(root)
    expect(readFileSync(join(root, "src", "tenant-sqlite.ts"), "utf8")).toContain("new PrismaBetterSQLite3({ url: tenantUrl(name) })")
    typeCheck(root)
  }, 120_000)
})

describe("incremental generate, with the recording stand-in", () => {
  const projects: Array<{ remove: () => void }> = []
  afterAll(() => projects.forEach((p) => p.remove()))
  const project = (schemas: Record<string, string>) => {
    const p = fakeProject(7, schemas)
    projects.push(p)
    // The stand-in leaves a client in each output folder, as Prisma does.
    return { ...p, generate: (args: ReadonlyArray<string> = [], env: Record<string, string> = {}) => p.cli(["generate", ...args], { FAKE_PRISMA_WRITE_OUTPUT: "1", ...env }) }
  }
  const generated = (p: { calls: () => Array<{ argv: ReadonlyArray<string>; database: string }> }, from: number) =>
    p.calls().slice(from).filter((c) => c.argv[0] === "generate").map((c) => c.database).sort()
  const schemaFile = (root: string, name: string) => join(root, "prisma", "schemas", `${name}.prisma`)
  const addModel = (root: string, name: string) =>
    writeFileSync(schemaFile(root, name), readFileSync(schemaFile(root, name), "utf8") + `\nmodel Extra {\n  id Int @id\n}\n`)

  it("a second generate over 4 unchanged schemas skips all four; changing one regenerates exactly that one", async () => {
    const p = project({ a: "sqlite", b: "postgresql", c: "mysql", d: "sqlite" })
    const first = await p.generate()
    expect(first.code).toBe(0)
    expect(generated(p, 0)).toEqual(["a", "b", "c", "d"])
    const second = await p.generate()
    expect(second.code).toBe(0)
    expect(generated(p, 4)).toEqual([])
    for (const n of ["a", "b", "c", "d"]) {
      expect(second.out).toContain(`  ✔ ${n} (up to date)`)
      expect(second.out).toMatch(new RegExp(`^${n}\\s+up to date$`, "m"))
    }
    expect(second.out).toContain("prisma generate: 4 databases ok (all up to date)")
    const json = JSON.parse((await p.generate(["--json"])).out)
    expect(json.results.map((r: { database: string; upToDate?: boolean }) => [r.database, r.upToDate])).toEqual([["a", true], ["b", true], ["c", true], ["d", true]])
    addModel(p.root, "c")
    const third = await p.generate()
    expect(third.code).toBe(0)
    expect(generated(p, 4)).toEqual(["c"])
    expect(third.out).toContain("prisma generate: 4 databases ok (3 up to date)")
    // --force regenerates every one; the record lives beside flexidb's per-database configs, not in the app's tree.
    const count = p.calls().length
    expect((await p.generate(["--force"])).code).toBe(0)
    expect(generated(p, count)).toEqual(["a", "b", "c", "d"])
    expect(readdirSync(join(p.root, "node_modules", ".cache", "flexidb", "generate")).sort()).toEqual(["a.json", "b.json", "c.json", "d.json"])
    expect(readdirSync(join(p.root, "prisma")).sort()).toEqual(["schemas"])
    expect(readdirSync(join(p.root, "prisma", "schemas")).sort()).toEqual(["a.prisma", "b.prisma", "c.prisma", "d.prisma"])
  })

  it("regenerates when the output is gone, Prisma changed, an env() output moved, the flags differ, or the last run failed", async () => {
    const p = project({ a: "sqlite", b: "sqlite" })
    expect((await p.generate()).code).toBe(0)
    let seen = p.calls().length
    const next = () => {
      const list = generated(p, seen)
      seen = p.calls().length
      return list
    }
    rmSync(join(p.root, "generated", "a"), { recursive: true })
    expect((await p.generate()).code).toBe(0)
    expect(next()).toEqual(["a"])
    // Another Prisma version: every client is generated again.
    writeFileSync(join(p.root, "node_modules", "prisma", "package.json"), JSON.stringify({ name: "prisma", version: "7.11.0" }))
    expect((await p.generate()).code).toBe(0)
    expect(next()).toEqual(["a", "b"])
    // An output read from env(): its value is part of the record.
    writeFileSync(schemaFile(p.root, "b"), readFileSync(schemaFile(p.root, "b"), "utf8").replace(`output   = "../../generated/b"`, `output   = env("B_OUTPUT")`))
    expect((await p.generate([], { B_OUTPUT: "../../generated/b1" })).code).toBe(0)
    expect(next()).toEqual(["b"])
    expect((await p.generate([], { B_OUTPUT: "../../generated/b1" })).code).toBe(0)
    expect(next()).toEqual([])
    expect((await p.generate([], { B_OUTPUT: "../../generated/b2" })).code).toBe(0)
    expect(next()).toEqual(["b"])
    // Flags after -- change what Prisma generates.
    expect((await p.generate(["--", "--no-hints"], { B_OUTPUT: "../../generated/b2" })).code).toBe(0)
    expect(next()).toEqual(["a", "b"])
    expect((await p.generate(["--", "--no-hints"], { B_OUTPUT: "../../generated/b2" })).code).toBe(0)
    expect(next()).toEqual([])
    // A failed generate records nothing: the next run tries that database again, and only it.
    addModel(p.root, "a")
    const failed = await p.generate(["--", "--no-hints"], { FAKE_PRISMA_FAIL: "a", B_OUTPUT: "../../generated/b2" })
    expect(failed.code).toBe(1)
    expect(failed.out).toContain("prisma generate failed for a")
    expect(next()).toEqual(["a"])
    expect((await p.generate(["--", "--no-hints"], { B_OUTPUT: "../../generated/b2" })).code).toBe(0)
    expect(next()).toEqual(["a"])
  })

  it("a schema Prisma would refuse is not run, and says why with Prisma's reason and line", async () => {
    const p = project({ a: "sqlite", b: "sqlite" })
    writeFileSync(schemaFile(p.root, "b"), readFileSync(schemaFile(p.root, "b"), "utf8").replace(`provider = "sqlite"`, `provider = "sqlite"\n  url      = env("DATABASE_URL_B")`))
    const r = await p.generate()
    expect(r.code).toBe(1)
    expect(generated(p, 0)).toEqual(["a"])
    expect(r.out).toContain("✘ b: prisma/schemas/b.prisma:8: The datasource property `url` is no longer supported in schema files")
  })

  it("watch keeps the same record: a save that changes nothing regenerates nothing, and generate knows what watch did", async () => {
    const p = project({ user: "sqlite", other: "sqlite" })
    expect((await p.generate()).code).toBe(0)
    const stop = new AbortController()
    const running = cli(p.root, ["watch"], { FAKE_PRISMA_LOG: join(p.root, "calls.jsonl"), FAKE_PRISMA_WRITE_OUTPUT: "1" }, stop.signal)
    await new Promise((r) => setTimeout(r, 200))
    const file = schemaFile(p.root, "user")
    writeFileSync(file, readFileSync(file, "utf8"))
    await new Promise((r) => setTimeout(r, 600))
    expect(generated(p, 2)).toEqual([])
    addModel(p.root, "user")
    for (let i = 0; i < 100 && generated(p, 2).length === 0; i++) await new Promise((r) => setTimeout(r, 20))
    await new Promise((r) => setTimeout(r, 300))
    stop.abort()
    const r = await running
    expect(r.code).toBe(0)
    expect(generated(p, 2)).toEqual(["user"])
    expect(r.out).toContain("✔ user (up to date)")
    const after = await p.generate()
    expect(after.out).toContain("prisma generate: 2 databases ok (all up to date)")
    expect(generated(p, 2)).toEqual(["user"])
  })
})
