// `flexidb doctor` against real SQLite files, PostgreSQL and MariaDB databases: every check passing for the right
// reason, and failing for its own with the one thing to do — never with a URL or a password in what it prints. Also
// `flexidb` with no command (the databases above the usage) and `--completions`.
import Database from "better-sqlite3"
import * as mariadb from "mariadb"
import { spawnSync } from "node:child_process"
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer, type Server, type Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { afterAll, afterEach, describe, expect, it } from "vitest"
import { cli, fakeProject } from "./support/cli.js"
import { createDatabase, MYSQL_HOST, PG_HOST, type TestDatabase } from "./support/databases.js"

const repo = join(import.meta.dirname, "..")
const engines = {
  PRISMA_SCHEMA_ENGINE_BINARY: join(repo, "test", "fixtures", "bin", "schema-engine"),
  PRISMA_QUERY_ENGINE_LIBRARY: join(repo, "test", "fixtures", "bin", "libquery_engine-stub.so.node")
}
const PASSWORD = "s3cr3t-Pa55"

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f()
})

/** A real database with none of the fixture's tables: what a fresh database looks like to migrations. */
const emptyDatabase = async (provider: "postgresql" | "mysql"): Promise<TestDatabase> => {
  const db = await createDatabase(provider)
  cleanups.push(() => db.drop())
  if (provider === "postgresql") {
    const client = new pg.Client({ connectionString: db.url })
    await client.connect()
    await client.query(`DROP TABLE "Post", "User"`)
    await client.end()
  } else {
    const conn = await mariadb.createConnection(db.url.replace(/^mysql:/, "mariadb:"))
    await conn.query("DROP TABLE `Post`, `User`")
    await conn.end()
  }
  return db
}

/** `postgresql://postgres@host/db` with a password the server (trust) ignores: it must never be printed. */
const withPassword = (url: string) => url.replace("postgres@", `postgres:${PASSWORD}@`)

/** A port that refuses connections: one just closed. */
const closedPort = async () => {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  const { port } = server.address() as { port: number }
  await new Promise((r) => server.close(r))
  return port
}

/** A server that accepts connections and never says a word: a database that hangs. */
const silentServer = async () => {
  const sockets: Array<Socket> = []
  const server: Server = createServer((s) => sockets.push(s))
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  cleanups.push(() => {
    sockets.forEach((s) => s.destroy())
    return new Promise((r) => server.close(r))
  })
  return (server.address() as { port: number }).port
}

const migrationsOf = (root: string, name: string, provider: string) =>
  cpSync(join(repo, "test", "fixtures", "migrations", provider), join(root, "prisma", "migrations", name), { recursive: true })

const adapter = (root: string, pkg: string, version: string) => {
  mkdirSync(join(root, "node_modules", ...pkg.split("/")), { recursive: true })
  writeFileSync(join(root, "node_modules", ...pkg.split("/"), "package.json"), JSON.stringify({ name: pkg, version }))
}

interface Report {
  readonly ok: boolean
  readonly summary: { readonly databases: number; readonly ok: number; readonly failed: number }
  readonly results: ReadonlyArray<{
    readonly database: string
    readonly provider: string | null
    readonly ok: boolean
    readonly fix?: string
    readonly checks: Record<string, { readonly status: string; readonly detail: string; readonly fix?: string }>
  }>
}

/**
 * The `npx flexidb …` command a fix names, run as a user pastes it in an app where flexidb is a local dependency: by
 * npx, which finds node_modules/.bin/flexidb (here this repository's bin, through tsx), never a global flexidb.
 */
const paste = (root: string, fix: string, env: Record<string, string> = {}) => {
  const command = /\bnpx flexidb ((?:(?! \(| or |,).)+)/.exec(fix)?.[1]
  if (command === undefined) throw new Error(`no npx flexidb command in: ${fix}`)
  const bin = join(root, "node_modules", ".bin", "flexidb")
  if (!existsSync(bin)) {
    mkdirSync(join(root, "node_modules", ".bin"), { recursive: true })
    writeFileSync(bin, `#!/bin/sh\nexec "${join(repo, "node_modules", ".bin", "tsx")}" "${join(repo, "cli", "bin.ts")}" "$@"\n`)
    chmodSync(bin, 0o755)
  }
  const run = spawnSync("npx", ["--no", "flexidb", ...command.trim().split(/\s+/)], {
    cwd: root,
    encoding: "utf8",
    timeout: 120_000,
    // No flexidb on the PATH: only npx's lookup of the local bin can find it.
    env: { PATH: process.env.PATH!, HOME: process.env.HOME!, ...env }
  })
  return { code: run.status, out: run.stdout, err: run.stderr }
}

/** Doctor's JSON, which must be stdout whole; and its text run, both checked for secrets. */
const doctor = async (run: (argv: ReadonlyArray<string>) => Promise<{ code: number; out: string; err: string }>, secrets: ReadonlyArray<string>, args: ReadonlyArray<string> = []) => {
  const json = await run(["doctor", "--json", ...args])
  const text = await run(["doctor", ...args])
  for (const printed of [json.out, json.err, text.out, text.err]) {
    for (const secret of secrets) expect(printed).not.toContain(secret)
    // No database URL of any kind (Prisma's own reasons may link to its documentation).
    expect(printed).not.toMatch(/\b(postgres(ql)?|mysql|mariadb|sqlserver):\/\/|\bfile:/i)
  }
  const report = JSON.parse(json.out) as Report
  // --json: stdout is the document, and nothing else is written (no "flexidb: …" line on stderr either).
  expect(json.err).toBe("")
  expect(text.code).toBe(json.code)
  const row = (name: string) => report.results.find((r) => r.database === name)!
  return { code: json.code, report, text, row }
}

describe("flexidb doctor: a healthy project", () => {
  const made: Array<string> = []
  afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })))

  it("passes every check on SQLite, PostgreSQL and MariaDB: server answers, migrations applied, clients current, adapters installed", async () => {
    // Inside the repository: `prisma` and the adapters are this repository's, as in an app.
    mkdirSync(join(repo, "test", ".tmp"), { recursive: true })
    const root = mkdtempSync(join(repo, "test", ".tmp", "doctor-"))
    made.push(root)
    mkdirSync(join(root, "prisma", "schemas"), { recursive: true })
    writeFileSync(join(root, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }))
    for (const provider of ["sqlite", "postgresql", "mysql"]) {
      const source = readFileSync(join(repo, "test", "fixtures", "prisma7", "schemas", `${provider}.prisma`), "utf8")
      writeFileSync(join(root, "prisma", "schemas", `${provider}.prisma`), source.replace(`"../generated/${provider}"`, `"../../generated/${provider}"`))
      migrationsOf(root, provider, provider)
    }
    const [postgres, maria] = [await emptyDatabase("postgresql"), await emptyDatabase("mysql")]
    const env = {
      ...engines,
      DATABASE_URL_SQLITE: "file:./app.db",
      DATABASE_URL_POSTGRESQL: withPassword(postgres.url),
      DATABASE_URL_MYSQL: maria.url
    }
    const run = (argv: ReadonlyArray<string>) => cli(root, argv, env)
    expect((await run(["migrate", "deploy", "--in-process"])).code).toBe(0)
    expect((await run(["generate"])).code).toBe(0)

    const { code, report, text, row } = await doctor(run, [PASSWORD, postgres.url, maria.url, "app.db"])
    expect(code).toBe(0)
    expect(report.ok).toBe(true)
    expect(report.summary).toEqual({ databases: 3, ok: 3, failed: 0 })
    for (const name of ["sqlite", "postgresql", "mysql"]) {
      const { checks, ok, fix } = row(name)
      expect(ok).toBe(true)
      expect(fix).toBeUndefined()
      expect(Object.fromEntries(Object.entries(checks).map(([k, c]) => [k, c.status]))).toEqual({
        schema: "pass", url: "pass", server: "pass", migrations: "pass", client: "pass", adapter: "pass"
      })
      expect(checks.server!.detail).toMatch(/^answered in \d+ ms$/)
      expect(checks.migrations!.detail).toBe("up to date (2 applied)")
      expect(checks.client!.detail).toMatch(/^current \(7\.\d+\.\d+\)$/)
    }
    expect(row("postgresql").provider).toBe("postgresql")
    expect(row("mysql").checks.adapter!.detail).toMatch(/^7\./)
    // The same in words: progress per database, the table, the verdict.
    expect(text.out).toContain("  … mysql: doctor")
    expect(text.out).toContain("  ✔ mysql (all checks pass)")
    expect(text.out).toMatch(/^database\s+provider\s+schema\s+url\s+server\s+migrations\s+client\s+adapter$/m)
    expect(text.out).toContain("doctor: 3 databases, all checks pass")
    // Not a check: what the prometheus option needs (installed in this repository).
    expect(text.out).toContain(
      "metrics: the prometheus option's packages are installed (@opentelemetry/api, @opentelemetry/sdk-metrics, @opentelemetry/exporter-prometheus)"
    )
    expect((report as unknown as { prometheus: unknown }).prometheus).toEqual({
      packages: ["@opentelemetry/api", "@opentelemetry/sdk-metrics", "@opentelemetry/exporter-prometheus"],
      missing: []
    })

    // The client: made from another schema, then by another Prisma — generate is the fix for both.
    const schemaFile = join(root, "prisma", "schemas", "sqlite.prisma")
    const original = readFileSync(schemaFile, "utf8")
    writeFileSync(schemaFile, original + `\nmodel Extra {\n  id Int @id\n}\n`)
    const stale = await doctor(run, [PASSWORD], ["--schema", "sqlite"])
    expect(stale.code).toBe(1)
    expect(stale.row("sqlite").checks.client).toEqual({ status: "fail", detail: "stale: the schema changed since", fix: "run npx flexidb generate --schema sqlite" })
    expect(stale.row("sqlite").fix).toBe("run npx flexidb generate --schema sqlite")
    writeFileSync(schemaFile, original)
    const classFile = join(root, "generated", "sqlite", "internal", "class.ts")
    const generated = readFileSync(classFile, "utf8")
    writeFileSync(classFile, generated.replace(/"clientVersion": "[^"]+"/, `"clientVersion": "7.0.0"`))
    const older = await doctor(run, [PASSWORD], ["--schema", "sqlite"])
    expect(older.row("sqlite").checks.client!.detail).toMatch(/^generated by Prisma 7\.0\.0, 7\.\d+\.\d+ installed$/)
    writeFileSync(classFile, generated)
    rmSync(join(root, "generated", "sqlite"), { recursive: true })
    const gone = await doctor(run, [PASSWORD], ["--schema", "sqlite"])
    expect(gone.row("sqlite").checks.client).toEqual({ status: "fail", detail: "not generated", fix: "run npx flexidb generate --schema sqlite" })
  }, 180_000)
})

describe("flexidb doctor: a client is stale only when the schema's meaning changed", () => {
  it("an unformatted schema is fresh right after generate; a real change is stale, and the fix doctor gives makes it fresh", async () => {
    mkdirSync(join(repo, "test", ".tmp"), { recursive: true })
    const root = mkdtempSync(join(repo, "test", ".tmp", "doctor-layout-"))
    cleanups.push(() => rmSync(root, { recursive: true, force: true }))
    mkdirSync(join(root, "prisma", "schemas"), { recursive: true })
    writeFileSync(join(root, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }))
    const schemaFile = join(root, "prisma", "schemas", "audit.prisma")
    // Not in `prisma format`'s layout: odd indentation, no alignment, no blank lines, a comment.
    const unformatted = `generator client {\n provider = "prisma-client"\n      output = "../../generated/audit"\n}\n` +
      `datasource db {\n provider = "sqlite"\n}\n// who did what\nmodel Entry {\n id Int @id @default(autoincrement())\n` +
      `    action String\n  at DateTime @default(now())\n}\n`
    writeFileSync(schemaFile, unformatted)
    const run = (argv: ReadonlyArray<string>) => cli(root, argv, { ...engines, DATABASE_URL_AUDIT: "file:./audit.db" })
    expect((await run(["generate"])).code).toBe(0)
    const fresh = await doctor(run, [], ["--schema", "audit"])
    expect(fresh.row("audit").checks.client).toMatchObject({ status: "pass" })
    expect(fresh.row("audit").checks.client!.detail).toMatch(/^current \(7\.\d+\.\d+\)$/)
    // Another layout of the same schema is no change either.
    writeFileSync(schemaFile, unformatted.replaceAll("\n ", "\n\t").replace("// who did what\n", "\n\n// who did what\n"))
    expect((await doctor(run, [], ["--schema", "audit"])).row("audit").checks.client!.status).toBe("pass")

    // A real change: a new field.
    writeFileSync(schemaFile, unformatted.replace("  at DateTime", "  actor String?\n  at DateTime"))
    const stale = await doctor(run, [], ["--schema", "audit"])
    expect(stale.row("audit").checks.client).toEqual({ status: "fail", detail: "stale: the schema changed since", fix: "run npx flexidb generate --schema audit" })
    // The fix, pasted: it regenerates (not "up to date"), and doctor agrees.
    const generated = paste(root, stale.row("audit").checks.client!.fix!, { ...engines, DATABASE_URL_AUDIT: "file:./audit.db" })
    expect(generated.code).toBe(0)
    expect(generated.out).not.toContain("up to date")
    expect((await doctor(run, [], ["--schema", "audit"])).row("audit").checks.client!.status).toBe("pass")
  }, 120_000)
})

describe("flexidb doctor: each check fails for its own reason", () => {
  const project = (schemas: Record<string, string>, dotenv = "") => {
    const p = fakeProject(7, schemas, dotenv)
    cleanups.push(() => p.remove())
    return p
  }

  it("URL variable: not set, or of another kind than the schema's provider", async () => {
    const p = project({ unset: "sqlite", wrong: "sqlite" }, `DATABASE_URL_WRONG=postgresql://postgres:${PASSWORD}@${PG_HOST}/postgres\n`)
    const { code, row, text } = await doctor(p.cli, [PASSWORD, "127.0.0.1"])
    expect(code).toBe(1)
    expect(row("unset").checks.url).toEqual({
      status: "fail",
      detail: "not set",
      fix: "set DATABASE_URL_UNSET in .env or the environment to the URL of database 'unset'"
    })
    // Nothing that needs the URL is tried without it.
    expect(row("unset").checks.server!.status).toBe("skip")
    expect(row("unset").fix).toBe(row("unset").checks.url!.fix)
    expect(row("wrong").checks.url!.status).toBe("fail")
    expect(row("wrong").checks.url!.fix).toBe(
      "set DATABASE_URL_WRONG to a sqlite URL: the URL is a postgresql URL, but the schema's datasource provider is 'sqlite' (prisma/schemas/wrong.prisma)"
    )
    expect(text.out).toContain("  ✘ unset (failed: url, client, adapter)")
    expect(text.out).toContain("To do:\n  unset: set DATABASE_URL_UNSET in .env")
    expect(text.out).toContain("doctor: 2 databases, 2 need attention")
  })

  it("server: refused, silent past --timeout, wrong password, no such database, no SQLite file", async () => {
    const [refused, silentPg, silentMy] = [await closedPort(), await silentServer(), await silentServer()]
    const p = project({ refused: "postgresql", hangs: "postgresql", hangsmy: "mysql", denied: "mysql", nodb: "postgresql", nofile: "sqlite" }, [
      `DATABASE_URL_REFUSED=postgresql://postgres:${PASSWORD}@127.0.0.1:${refused}/app`,
      `DATABASE_URL_HANGS=postgresql://postgres:${PASSWORD}@127.0.0.1:${silentPg}/app`,
      `DATABASE_URL_HANGSMY=mysql://root:${PASSWORD}@127.0.0.1:${silentMy}/app`,
      `DATABASE_URL_DENIED=mysql://root:${PASSWORD}@${MYSQL_HOST}/mysql`,
      `DATABASE_URL_NODB=postgresql://postgres:${PASSWORD}@${PG_HOST}/flexidb_no_such_database`,
      `DATABASE_URL_NOFILE=file:./missing.db`,
      ``
    ].join("\n"))
    const { code, row } = await doctor(p.cli, [PASSWORD, "missing.db"], ["--timeout", "700", "--concurrency", "6"])
    expect(code).toBe(1)
    expect(row("refused").checks.server).toMatchObject({ status: "fail", fix: "start the database server, or fix the host and port in DATABASE_URL_REFUSED" })
    expect(row("refused").checks.server!.detail).toContain("ECONNREFUSED")
    for (const name of ["hangs", "hangsmy"]) {
      expect(row(name).checks.server).toEqual({
        status: "fail",
        detail: "no answer within 700 ms",
        fix: `start the database server, or fix the host and port in DATABASE_URL_${name.toUpperCase()}`
      })
    }
    expect(row("denied").checks.server).toMatchObject({ status: "fail", fix: "fix the user or password in DATABASE_URL_DENIED" })
    expect(row("denied").checks.server!.detail).toMatch(/^Access denied for user 'root'/)
    expect(row("nodb").checks.server).toMatchObject({
      status: "fail",
      fix: "create the database DATABASE_URL_NODB names (CREATE DATABASE), or fix its name in DATABASE_URL_NODB"
    })
    expect(row("nofile").checks.server).toEqual({
      status: "fail",
      detail: "no such file",
      // No schema engine here (no PRISMA_SCHEMA_ENGINE_BINARY, none downloaded): db push cannot run, and doctor says so.
      fix: "create the SQLite file DATABASE_URL_NOFILE names: npx flexidb db push --schema nofile where Prisma's schema engine runs (it is absent here), or fix DATABASE_URL_NOFILE"
    })
    for (const name of ["refused", "hangs", "hangsmy", "denied", "nodb", "nofile"]) {
      // Migrations are not read from a server that did not answer.
      expect(row(name).checks.migrations!.detail).toBe("no migrations")
      expect(row(name).fix).toBe(row(name).checks.server!.fix)
    }
  }, 30_000)

  it("databases are checked in parallel: four silent servers cost one timeout, not four", async () => {
    const ports = [await silentServer(), await silentServer(), await silentServer(), await silentServer()]
    const p = project({ a: "postgresql", b: "postgresql", c: "mysql", d: "mysql" }, [
      `DATABASE_URL_A=postgresql://postgres@127.0.0.1:${ports[0]}/app`,
      `DATABASE_URL_B=postgresql://postgres@127.0.0.1:${ports[1]}/app`,
      `DATABASE_URL_C=mysql://root@127.0.0.1:${ports[2]}/app`,
      `DATABASE_URL_D=mysql://root@127.0.0.1:${ports[3]}/app`,
      ``
    ].join("\n"))
    const started = performance.now()
    const r = await p.cli(["doctor", "--json", "--timeout", "800"])
    const elapsed = performance.now() - started
    expect(JSON.parse(r.out).results.map((x: { checks: { server: { detail: string } } }) => x.checks.server.detail))
      .toEqual(Array(4).fill("no answer within 800 ms"))
    // One after the other would take 3.2 s at least.
    expect(elapsed).toBeGreaterThanOrEqual(800)
    expect(elapsed).toBeLessThan(2000)
  })

  it("migrations: none is fine; pending, applied, changed after it was applied, failed — on SQLite, PostgreSQL and MariaDB", async () => {
    const [postgres, maria] = [await emptyDatabase("postgresql"), await emptyDatabase("mysql")]
    const p = project({ lite: "sqlite", pg: "postgresql", my: "mysql", none: "sqlite" }, [
      `DATABASE_URL_LITE=file:./lite.db`,
      `DATABASE_URL_PG=${withPassword(postgres.url)}`,
      `DATABASE_URL_MY=${maria.url}`,
      `DATABASE_URL_NONE=file:./none.db`,
      ``
    ].join("\n"))
    new Database(join(p.root, "lite.db")).close()
    new Database(join(p.root, "none.db")).close()
    for (const [name, provider] of [["lite", "sqlite"], ["pg", "postgresql"], ["my", "mysql"]] as const) migrationsOf(p.root, name, provider)
    const secrets = [PASSWORD, postgres.url, maria.url, "lite.db"]

    const pending = await doctor(p.cli, secrets)
    expect(pending.code).toBe(1)
    expect(pending.row("none").checks.migrations).toEqual({ status: "pass", detail: "no migrations" })
    for (const name of ["lite", "pg", "my"]) {
      expect(pending.row(name).checks.server!.status).toBe("pass")
      expect(pending.row(name).checks.migrations).toEqual({
        status: "fail",
        detail: "2 pending",
        // No schema engine on this machine: the in-process deploy, which needs none.
        fix: `run npx flexidb migrate deploy --in-process --schema ${name} (pending: 20260101000000_init, 20260102000000_roles_and_publishing)`
      })
    }
    // Each fix, pasted, works.
    for (const name of ["lite", "pg", "my"]) expect(paste(p.root, pending.row(name).fix!).code).toBe(0)
    const applied = await doctor(p.cli, secrets)
    for (const name of ["lite", "pg", "my"]) expect(applied.row(name).checks.migrations).toEqual({ status: "pass", detail: "up to date (2 applied)" })

    const script = join(p.root, "prisma", "migrations", "pg", "20260102000000_roles_and_publishing", "migration.sql")
    writeFileSync(script, readFileSync(script, "utf8") + "\n-- edited afterwards\n")
    const changed = await doctor(p.cli, secrets, ["--schema", "pg"])
    expect(changed.row("pg").checks.migrations).toEqual({
      status: "fail",
      detail: "changed after it was applied: 20260102000000_roles_and_publishing",
      fix: "restore prisma/migrations/pg/20260102000000_roles_and_publishing/migration.sql as it was applied, and put the change in a new migration"
    })

    const broken = join(p.root, "prisma", "migrations", "lite", "20260103000000_broken")
    mkdirSync(broken)
    writeFileSync(join(broken, "migration.sql"), `CREATE TABLE "Ok" ("id" INTEGER PRIMARY KEY);\nTHIS IS NOT SQL;\n`)
    expect((await p.cli(["migrate", "deploy", "--in-process", "--schema", "lite"])).code).toBe(1)
    const failed = await doctor(p.cli, secrets, ["--schema", "lite"])
    expect(failed.row("lite").checks.migrations).toEqual({
      status: "fail",
      detail: "failed: 20260103000000_broken",
      fix: "undo what 20260103000000_broken did, then run npx flexidb migrate resolve --in-process --schema lite --rolled-back 20260103000000_broken " +
        "(or --applied 20260103000000_broken if you finished it by hand)"
    })
    // SQLite undid the failed script (a savepoint): the fix, pasted, leaves it pending again.
    expect(paste(p.root, failed.row("lite").fix!).code).toBe(0)
    expect((await doctor(p.cli, secrets, ["--schema", "lite"])).row("lite").checks.migrations).toMatchObject({ status: "fail", detail: "1 pending" })

    // Where Prisma's schema engine runs, the fixes are Prisma's own commands.
    const engine = join(p.root, "schema-engine")
    writeFileSync(engine, "#!/bin/sh\necho schema-engine-cli 7.10.1\n", { mode: 0o755 })
    const withEngine = await doctor((argv) => p.cli(argv, { PRISMA_SCHEMA_ENGINE_BINARY: engine }), secrets, ["--schema", "lite"])
    expect(withEngine.row("lite").checks.migrations!.fix).toBe("run npx flexidb migrate deploy --schema lite (pending: 20260103000000_broken)")
  }, 60_000)

  it("migrations of a provider flexidb/migrate does not read: Prisma's own migrate status", async () => {
    const p = project({ mssql: "sqlserver" }, `DATABASE_URL_MSSQL=sqlserver://localhost:1433;database=app;user=sa;password=${PASSWORD}\n`)
    mkdirSync(join(p.root, "prisma", "migrations", "mssql", "20260101000000_init"), { recursive: true })
    const ok = await doctor(p.cli, [PASSWORD, "sqlserver:"])
    expect(ok.row("mssql").checks.migrations).toEqual({ status: "pass", detail: "up to date (prisma migrate status)" })
    expect(ok.row("mssql").checks.server).toEqual({ status: "skip", detail: "not checked (sqlserver)" })
    expect(p.calls().map((c) => c.argv.slice(0, 2))).toEqual([["migrate", "status"], ["migrate", "status"]])
    const bad = await doctor((argv) => p.cli(argv, { FAKE_PRISMA_FAIL: "mssql" }), [PASSWORD])
    expect(bad.row("mssql").checks.migrations).toEqual({
      status: "fail",
      detail: "prisma migrate status: exit 3",
      fix: "run npx flexidb migrate status --schema mssql to see what Prisma found"
    })
  })

  it("schema: one the installed Prisma refuses fails with Prisma's reason and line", async () => {
    const p = project({ old: "sqlite" }, "DATABASE_URL_OLD=file:./old.db\n")
    const file = join(p.root, "prisma", "schemas", "old.prisma")
    writeFileSync(file, readFileSync(file, "utf8").replace(`provider = "sqlite"`, `provider = "sqlite"\n  url      = env("DATABASE_URL_OLD")`))
    const { row } = await doctor(p.cli, [])
    expect(row("old").checks.schema).toMatchObject({ status: "fail", detail: "refused by Prisma" })
    expect(row("old").fix).toMatch(/^fix prisma\/schemas\/old\.prisma:8: The datasource property `url` is no longer supported in schema files/)
  })

  it("client and adapter: not generated, no output, the adapter missing or of another Prisma", async () => {
    const p = project({ pgdb: "postgresql", mydb: "mysql", lite: "sqlite" })
    const file = join(p.root, "prisma", "schemas", "lite.prisma")
    writeFileSync(file, readFileSync(file, "utf8").replace(/\n\s*output\s*=.*\n/, "\n"))
    adapter(p.root, "@prisma/adapter-pg", "6.19.3")
    adapter(p.root, "@prisma/adapter-better-sqlite3", "7.10.0")
    const { row } = await doctor(p.cli, [])
    expect(row("pgdb").checks.client).toEqual({ status: "fail", detail: "not generated", fix: "run npx flexidb generate --schema pgdb" })
    expect(row("pgdb").checks.adapter).toEqual({ status: "fail", detail: "6.19.3, Prisma 7.10.1", fix: "npm install @prisma/adapter-pg@7.10.1" })
    expect(row("mydb").checks.adapter).toEqual({ status: "fail", detail: "@prisma/adapter-mariadb missing", fix: "npm install @prisma/adapter-mariadb" })
    expect(row("lite").checks.adapter).toEqual({ status: "pass", detail: "7.10.0" })
    expect(row("lite").checks.client).toMatchObject({ status: "fail", detail: "generator has no output" })
  })
})

describe("doctor and migrate agree", () => {
  const project = (schemas: Record<string, string>, dotenv = "") => {
    const p = fakeProject(7, schemas, dotenv)
    cleanups.push(() => p.remove())
    return p
  }

  it("a database with tables and no _prisma_migrations (P3005): doctor says baseline, with the command, on PostgreSQL, MariaDB and SQLite", async () => {
    const [postgres, maria, lite] = [await createDatabase("postgresql"), await createDatabase("mysql"), await createDatabase("sqlite")]
    cleanups.push(() => postgres.drop(), () => maria.drop(), () => lite.drop())
    const p = project({ pg: "postgresql", my: "mysql", lite: "sqlite" }, [
      `DATABASE_URL_PG=${withPassword(postgres.url)}`,
      `DATABASE_URL_MY=${maria.url}`,
      `DATABASE_URL_LITE=file:${lite.url}`,
      ``
    ].join("\n"))
    for (const [name, provider] of [["lite", "sqlite"], ["pg", "postgresql"], ["my", "mysql"]] as const) migrationsOf(p.root, name, provider)
    const secrets = [PASSWORD, postgres.url, maria.url, lite.url]
    const before = await doctor(p.cli, secrets)
    for (const name of ["pg", "my", "lite"]) {
      expect(before.row(name).checks.migrations).toEqual({
        status: "fail",
        detail: "not empty, no migrations table: baseline it",
        fix: `baseline the database: run npx flexidb migrate resolve --in-process --schema ${name} --applied 20260101000000_init ` +
          `(then the same for each later migration it already has)`
      })
      // What doctor predicted is what a deploy does: Prisma's P3005, nothing changed.
      const deploy = await p.cli(["migrate", "deploy", "--in-process", "--schema", name, "--json"])
      expect(deploy.code).toBe(1)
      expect(deploy.err).toBe("")
      expect(JSON.parse(deploy.out).results[0].error.code).toBe("P3005")
      // The fix, pasted, baselines it; the rest is a deploy.
      expect(paste(p.root, before.row(name).fix!).code).toBe(0)
      const after = await doctor(p.cli, secrets, ["--schema", name])
      expect(after.row(name).checks.migrations).toEqual({
        status: "fail",
        detail: "1 pending",
        fix: `run npx flexidb migrate deploy --in-process --schema ${name} (pending: 20260102000000_roles_and_publishing)`
      })
    }
    const status = await p.cli(["migrate", "status", "--in-process", "--json"])
    expect(JSON.parse(status.out).results.map((r: { outcome: string }) => r.outcome)).toEqual(["pending", "pending", "pending"])
  }, 60_000)

  it("a schema without a migrations folder: doctor passes it, and migrate deploy --in-process says there is nothing to deploy (exit 0)", async () => {
    const p = project({ pushed: "sqlite" }, "DATABASE_URL_PUSHED=file:./pushed.db\n")
    new Database(join(p.root, "pushed.db")).close()
    expect((await doctor(p.cli, [])).row("pushed").checks.migrations).toEqual({ status: "pass", detail: "no migrations" })
    const deploy = await p.cli(["migrate", "deploy", "--in-process"])
    expect(deploy.code).toBe(0)
    expect(deploy.out).toMatch(/^pushed\s+no migrations: nothing to deploy/m)
    const json = await p.cli(["migrate", "deploy", "--in-process", "--json"])
    expect(json.code).toBe(0)
    expect(json.err).toBe("")
    expect(JSON.parse(json.out)).toMatchObject({ ok: true, results: [{ database: "pushed", outcome: "no migrations" }] })
    const status = await p.cli(["migrate", "status", "--in-process", "--schema", "pushed"])
    expect(status.code).toBe(0)
  })
})

describe("the tenants' schema", () => {
  /** Three empty PostgreSQL tenant databases, a core database, and a tenants module listing them. */
  const setUp = async () => {
    const core = await emptyDatabase("postgresql")
    const tenants = [await emptyDatabase("postgresql"), await emptyDatabase("postgresql"), await emptyDatabase("postgresql")]
    const names = ["acme", "globex", "initech"]
    const p = fakeProject(7, { core: "postgresql", tenant: "postgresql" }, [
      `DATABASE_URL_CORE=${withPassword(core.url)}`,
      // A leftover the CLI must never use for the tenants' schema: a database that does not exist.
      `DATABASE_URL_TENANT=${core.url.replace(/\/[^/?]+(\?|$)/, "/nc_tenant_template$1")}`,
      ``
    ].join("\n"))
    cleanups.push(() => p.remove())
    writeFileSync(join(p.root, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }, null, 2) + "\n")
    migrationsOf(p.root, "core", "postgresql")
    migrationsOf(p.root, "tenant", "postgresql")
    const entries = names.map((name, i) => ({ name, url: withPassword(tenants[i]!.url) }))
    writeFileSync(join(p.root, "tenants.mjs"), `export default ${JSON.stringify(entries)}\n`)
    return { p, core, tenants, names, secrets: [PASSWORD, core.url, ...tenants.map((t) => t.url), "nc_tenant_template"] }
  }

  it("codegen --tenant-schema records it; doctor then never asks for DATABASE_URL_TENANT nor connects to it, and migrate --in-process needs --tenants", async () => {
    const { p, secrets } = await setUp()
    const codegen = await p.cli(["codegen", "--tenant-schema", "tenant"])
    expect(codegen.code).toBe(0)
    expect(JSON.parse(readFileSync(join(p.root, "package.json"), "utf8")).flexidb).toEqual({ tenantSchema: "tenant", tenantMode: "database" })
    // --force keeps the tenants without the flag: package.json says which schema is theirs.
    expect((await p.cli(["codegen", "--force"])).code).toBe(0)
    expect(readFileSync(join(p.root, "src", "db.ts"), "utf8")).toContain("export const tenants = {")

    const { report, text, row } = await doctor(p.cli, secrets)
    for (const printed of [JSON.stringify(report), text.out, text.err]) {
      expect(printed).not.toContain("DATABASE_URL_TENANT ")
      expect(printed).not.toMatch(/DATABASE_URL_TENANT\b(?!_TEMPLATE)/)
      expect(printed).not.toContain("does not exist")
    }
    expect(row("tenant").checks.url).toEqual({ status: "skip", detail: "tenants' URLs: DATABASE_URL_TENANT_TEMPLATE or --tenants <module>" })
    expect(row("tenant").checks.server).toEqual({ status: "skip", detail: "per tenant: add --tenants <module>" })
    expect(row("tenant").checks.migrations).toEqual({ status: "skip", detail: "per tenant: add --tenants <module>" })
    // The core database is checked as before.
    expect(row("core").checks.server!.status).toBe("pass")

    // migrate --in-process: the tenants' schema named alone is a usage error with the command that works.
    for (const verb of ["status", "deploy"]) {
      const r = await p.cli(["migrate", verb, "--in-process", "--schema", "tenant"])
      expect(r.code).toBe(2)
      expect(r.err).toContain(`Add --tenants: npx flexidb migrate ${verb} --tenants <module> --schema tenant`)
      expect(r.err).not.toContain("does not exist")
    }
    // Among every schema, it is left out (said on stderr), and the rest run.
    const all = await p.cli(["migrate", "deploy", "--in-process", "--json"])
    expect(all.code).toBe(0)
    expect(JSON.parse(all.out).results.map((r: { database: string }) => r.database)).toEqual(["core"])
    expect(all.err).toContain("left out tenant, the tenants' schema")
  }, 60_000)

  it("doctor --tenants <module>: a sample connection and every tenant's migrations, with fixes that work when pasted", async () => {
    const { p, secrets, names } = await setUp()
    expect((await p.cli(["codegen", "--tenant-schema", "tenant"])).code).toBe(0)
    const args = ["--tenants", "tenants.mjs"]
    const pending = await doctor(p.cli, secrets, args)
    const tenant = pending.row("tenant")
    expect(tenant.checks.url).toEqual({ status: "pass", detail: "3 tenants from tenants.mjs" })
    expect(tenant.checks.server!.detail).toMatch(/^tenant acme answered in \d+ ms \(1 of 3\)$/)
    expect(tenant.checks.migrations).toEqual({
      status: "fail",
      detail: "3 of 3 tenants pending",
      fix: "run npx flexidb migrate deploy --tenants tenants.mjs --schema tenant"
    })
    expect(paste(p.root, tenant.checks.migrations!.fix!).code).toBe(0)
    const applied = await doctor(p.cli, secrets, args)
    expect(applied.row("tenant").checks.migrations).toEqual({ status: "pass", detail: "up to date on 3 tenants (2 applied)" })

    // One tenant with a failed migration: its own fix, naming it, works when pasted.
    const broken = join(p.root, "prisma", "migrations", "tenant", "20260103000000_broken")
    mkdirSync(broken)
    writeFileSync(join(broken, "migration.sql"), `CREATE TABLE "Ok" ("id" INTEGER PRIMARY KEY);\nTHIS IS NOT SQL;\n`)
    // Past the destructive-change guard, which refuses a statement it cannot read before any tenant is touched.
    const deploy = ["migrate", "deploy", "--tenants", "tenants.mjs", "--schema", "tenant", "--tenant", names[1]!]
    expect((await p.cli(deploy)).code).toBe(3)
    expect((await p.cli([...deploy, "--allow-destructive"])).code).toBe(1)
    const failed = await doctor(p.cli, secrets, args)
    expect(failed.row("tenant").checks.migrations).toEqual({
      status: "fail",
      detail: "3 of 3 tenants; globex: failed: 20260103000000_broken",
      fix: "undo what 20260103000000_broken did on tenant globex, then run npx flexidb migrate resolve --tenants tenants.mjs " +
        "--schema tenant --tenant globex --rolled-back 20260103000000_broken (or --applied 20260103000000_broken if you finished it by hand)"
    })
    expect(paste(p.root, failed.row("tenant").fix!).code).toBe(0)

    // --tenants without a recorded schema and several schemas: a usage error that says what to add.
    writeFileSync(join(p.root, "package.json"), JSON.stringify({ name: "app" }))
    const r = await p.cli(["doctor", ...args])
    expect(r.code).toBe(2)
    expect(r.err).toContain("give the tenants' schema too (--schema <name>")
    const one = await doctor(p.cli, secrets, [...args, "--schema", "tenant"])
    expect(one.row("tenant").checks.url).toEqual({ status: "pass", detail: "3 tenants from tenants.mjs" })
  }, 90_000)
})

describe("flexidb with no command, and --completions", () => {
  it("inside a project, lists the databases (name, provider, URL variable set or not) above flexidb's own short help", async () => {
    const p = fakeProject(7, { users: "postgresql", cache: "sqlite", orders: "mysql" }, `DATABASE_URL_USERS=postgresql://u:${PASSWORD}@db/users\n`)
    cleanups.push(() => p.remove())
    const r = await p.cli([])
    expect(r.code).toBe(0)
    const lines = r.out.split("\n")
    expect(lines.slice(0, 4)).toEqual([
      "Databases in prisma/schemas/ (npx flexidb doctor checks them):",
      "  cache   sqlite      DATABASE_URL_CACHE not set",
      "  orders  mysql       DATABASE_URL_ORDERS not set",
      "  users   postgresql  DATABASE_URL_USERS set"
    ])
    expect(r.out.indexOf("Usage: flexidb <command>")).toBeGreaterThan(r.out.indexOf("DATABASE_URL_USERS set"))
    expect(r.out).not.toContain(PASSWORD)
    // From a folder inside the project, the same project.
    mkdirSync(join(p.root, "src"))
    expect((await cli(join(p.root, "src"), [])).out.split("\n").slice(0, 4)).toEqual(lines.slice(0, 4))
    // Outside a project: the usage alone.
    const empty = mkdtempSync(join(tmpdir(), "flexidb-empty-"))
    cleanups.push(() => rmSync(empty, { recursive: true, force: true }))
    const outside = await cli(empty, [])
    expect(outside.code).toBe(0)
    expect(outside.out).not.toContain("Databases in")
    // flexidb's own help, not @effect/cli's generic one: every command on one line, nothing wider than 100 columns.
    const help = outside.out.split("\n")
    expect(help[0]).toMatch(/^flexidb \d+\.\d+\.\d+: /)
    expect(help).toContain("Usage: flexidb <command> [--schema <name>] [--json] [flags] [-- <prisma flags>]")
    for (const command of ["init", "codegen", "generate", "validate", "format", "doctor", "migrate", "diff", "db", "studio", "seed", "watch"]) {
      expect(help.filter((l) => new RegExp(`^  ${command} +\\S`).test(l))).toHaveLength(1)
    }
    for (const line of help) expect(line.length).toBeLessThanOrEqual(100)
    for (const generic of ["--wizard", "--log-level", "USAGE", "--completions"]) expect(outside.out).not.toContain(generic)
    expect(outside.err).toBe("")
    // Its --help is still @effect/cli's whole reference.
    expect((await cli(empty, ["--help"])).out).toContain("--completions")
  })

  it("the tenants' schema (database per tenant) is shown as doctor checks it: DATABASE_URL_TENANT_TEMPLATE, per tenant", async () => {
    const p = fakeProject(7, { core: "postgresql", tenant: "postgresql" }, `DATABASE_URL_CORE=postgresql://u:${PASSWORD}@db/core\n`)
    cleanups.push(() => p.remove())
    writeFileSync(join(p.root, "package.json"), JSON.stringify({ name: "app", flexidb: { tenantSchema: "tenant", tenantMode: "database" } }))
    const unset = await p.cli([])
    expect(unset.out.split("\n").slice(0, 3)).toEqual([
      "Databases in prisma/schemas/ (npx flexidb doctor checks them):",
      "  core    postgresql  DATABASE_URL_CORE set",
      "  tenant  postgresql  per tenant: DATABASE_URL_TENANT_TEMPLATE not set"
    ])
    expect(unset.out).not.toMatch(/DATABASE_URL_TENANT\b(?!_TEMPLATE)/)
    const set = await p.cli([], { DATABASE_URL_TENANT_TEMPLATE: `postgresql://u:${PASSWORD}@db/t_{tenant}` })
    expect(set.out).toContain("  tenant  postgresql  per tenant: DATABASE_URL_TENANT_TEMPLATE set")
    const noPlaceholder = await p.cli([], { DATABASE_URL_TENANT_TEMPLATE: `postgresql://u:${PASSWORD}@db/t` })
    expect(noPlaceholder.out).toContain("  tenant  postgresql  per tenant: DATABASE_URL_TENANT_TEMPLATE has no {tenant}")
    for (const r of [unset, set, noPlaceholder]) expect(r.out).not.toContain(PASSWORD)
    // A PostgreSQL schema per tenant: the tenants share the database at DATABASE_URL_TENANT, which the module reads.
    writeFileSync(join(p.root, "package.json"), JSON.stringify({ name: "app", flexidb: { tenantSchema: "tenant", tenantMode: "schema" } }))
    expect((await p.cli([])).out).toContain("  tenant  postgresql  DATABASE_URL_TENANT not set")
  })

  it("prints completion scripts for bash, zsh and fish; bash's completes commands and options", async () => {
    const dir = mkdtempSync(join(tmpdir(), "flexidb-completions-"))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const scripts: Record<string, string> = {}
    for (const shell of ["bash", "zsh", "fish"]) {
      const r = await cli(dir, ["--completions", shell])
      expect(r.code).toBe(0)
      scripts[shell] = r.out
      for (const command of ["doctor", "generate", "migrate", "deploy"]) expect(r.out).toContain(command)
    }
    expect(scripts.zsh).toMatch(/^#compdef flexidb/)
    expect(scripts.fish).toContain("complete -c flexidb")
    expect(scripts.bash).toContain("complete -F _flexidb_bash_completions")
    writeFileSync(join(dir, "flexidb.bash"), scripts.bash!)
    const complete = (...words: ReadonlyArray<string>) => {
      const r = spawnSync("bash", ["-c", [
        `source ${JSON.stringify(join(dir, "flexidb.bash"))}`,
        `COMP_WORDS=(${words.map((w) => JSON.stringify(w)).join(" ")}); COMP_CWORD=${words.length - 1}`,
        `_flexidb_bash_completions flexidb ${JSON.stringify(words.at(-1))} ${JSON.stringify(words.at(-2))}`,
        `echo "\${COMPREPLY[@]}"`
      ].join("\n")], { encoding: "utf8" })
      expect(r.stderr).toBe("")
      return r.stdout.trim().split(/\s+/)
    }
    expect(complete("flexidb", "do")).toEqual(["doctor"])
    expect(complete("flexidb", "migrate", "de").sort()).toEqual(["deploy", "dev"])
    expect(complete("flexidb", "generate", "--fo")).toEqual(["--force"])
    expect(complete("flexidb", "doctor", "--ti")).toEqual(["--timeout"])
  })
})
