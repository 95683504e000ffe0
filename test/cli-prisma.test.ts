// The CLI driving the real Prisma: Prisma 7 generate/validate/format on several schemas (with codegen's output
// type-checked), and real SQLite migrations through Prisma 6.19's JavaScript schema engine.
import Database from "better-sqlite3"
import { execFileSync } from "node:child_process"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { cli } from "./support/cli.js"

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

describe("Prisma 7, for real", () => {
  const root = projectIn(join(repo, "test", ".tmp"))
  for (const provider of ["sqlite", "postgresql", "mysql"]) {
    const source = readFileSync(join(repo, "test", "fixtures", "prisma7", "schemas", `${provider}.prisma`), "utf8")
    writeFileSync(join(root, "prisma", "schemas", `${provider}.prisma`), source.replace(`"../generated/${provider}"`, `"../../generated/${provider}"`))
  }

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
    writeFileSync(join(root, "tsconfig.json"), JSON.stringify({
      compilerOptions: {
        target: "ES2022", module: "ESNext", moduleResolution: "Bundler", strict: true, noEmit: true, skipLibCheck: true,
        allowImportingTsExtensions: true, types: ["node"], typeRoots: [join(repo, "node_modules", "@types")],
        paths: { flexidb: [join(repo, "src", "index.ts")] }
      },
      include: ["src"]
    }))
    execFileSync(join(repo, "node_modules", ".bin", "tsc"), ["-p", root], { encoding: "utf8" })
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
