// The CLI's in-process migrate (flexidb/migrate, no Prisma) on fleets of real databases: `--tenants <module>` for a
// tenants module's SQLite files, PostgreSQL and MariaDB databases, and `--in-process` for a project's own schemas.
import Database from "better-sqlite3"
import * as mariadb from "mariadb"
import { createHash } from "node:crypto"
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { afterAll, describe, expect, it } from "vitest"
import { run } from "../cli/main.js"
import { cli, fakeProject } from "./support/cli.js"
import { MYSQL_HOST, PG_HOST, uniqueName } from "./support/databases.js"

const fixtures = join(import.meta.dirname, "fixtures", "migrations")
const INIT = "20260101000000_init"
const ROLES = "20260102000000_roles_and_publishing"

const made: Array<string> = []
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })))

/**
 * A project with one schema, `tenant`, of `provider`, and its migrations folder from the fixtures (only `only`
 * migrations when given). No Prisma in it: the in-process migrate never looks for one.
 */
const project = (provider: "sqlite" | "postgresql" | "mysql", only?: ReadonlyArray<string>) => {
  const root = mkdtempSync(join(tmpdir(), "flexidb-cli-migrate-"))
  made.push(root)
  mkdirSync(join(root, "prisma", "schemas"), { recursive: true })
  writeFileSync(join(root, "prisma", "schemas", "tenant.prisma"), `datasource db {\n  provider = "${provider}"\n}\n\nmodel User {\n  id Int @id\n}\n`)
  const folder = join(root, "prisma", "migrations", "tenant")
  mkdirSync(folder, { recursive: true })
  cpSync(join(fixtures, provider, "migration_lock.toml"), join(folder, "migration_lock.toml"))
  for (const name of only ?? [INIT, ROLES]) cpSync(join(fixtures, provider, name), join(folder, name), { recursive: true })
  mkdirSync(join(root, "tenants"))
  return {
    root,
    folder,
    /** Adds a fixture migration the folder does not have yet. */
    add: (name: string) => cpSync(join(fixtures, provider, name), join(folder, name), { recursive: true }),
    /** Writes a tenants module; resolves its file name. */
    module: (source: string, file = "tenants.mjs") => {
      writeFileSync(join(root, file), source)
      return file
    },
    run: (argv: ReadonlyArray<string>, env: Record<string, string> = {}) => cli(root, argv, env)
  }
}

/**
 * A module exporting `entries` (as JSON): by default a function returning them; or the array; or an async iterable
 * (one that can be iterated again: the module stays in the test process's cache between runs).
 */
const listing = (entries: ReadonlyArray<unknown>, shape: "array" | "function" | "iterable" = "function") =>
  shape === "array"
    ? `export default ${JSON.stringify(entries)}\n`
    : shape === "function"
    ? `export default async () => ${JSON.stringify(entries)}\n`
    : `export default { async *[Symbol.asyncIterator]() { for (const e of ${JSON.stringify(entries)}) yield e } }\n`

const sqliteTenants = (count: number, prefix = "t") =>
  Array.from({ length: count }, (_, i) => ({ name: `${prefix}${i}`, url: `file:./tenants/${prefix}${i}.db` }))

const sha256 = (text: string | Buffer) => createHash("sha256").update(text).digest("hex")
const fileHash = (file: string) => sha256(readFileSync(file))

interface MigrationRow {
  readonly migration_name: string
  readonly checksum: string
  readonly finished_at: unknown
  readonly rolled_back_at: unknown
  readonly logs: string | null
  readonly applied_steps_count: number
}

const sqliteRows = (file: string): Array<MigrationRow> => {
  const db = new Database(file, { readonly: true, fileMustExist: true })
  try {
    return db.prepare(`SELECT * FROM _prisma_migrations ORDER BY started_at, migration_name`).all() as Array<MigrationRow>
  } finally {
    db.close()
  }
}

const sqliteExec = (file: string, sql: string) => {
  const db = new Database(file, { fileMustExist: true })
  db.exec(sql)
  db.close()
}

/** What a healthy deploy leaves: each migration once, finished, with the file's checksum and no logs. */
const expectApplied = (rows: ReadonlyArray<MigrationRow>, folder: string, names: ReadonlyArray<string>) => {
  expect(rows.map((r) => r.migration_name)).toEqual(names)
  for (const row of rows) {
    expect(row.checksum).toBe(sha256(readFileSync(join(folder, row.migration_name, "migration.sql"))))
    expect(row.finished_at).not.toBeNull()
    expect(row.rolled_back_at).toBeNull()
    expect(row.logs).toBeNull()
    expect(Number(row.applied_steps_count)).toBe(1)
  }
}

const json = (out: string) => JSON.parse(out) as {
  ok: boolean
  stopped?: string | null
  summary: { applied: number; upToDate: number; pending: number; resolved: number; failed: number; notAttempted: number }
  results: Array<{ tenant?: string; database?: string; outcome: string; applied?: Array<string>; pending?: Array<string>; error?: { code: string; migration?: string; reason: string } }>
}
const byName = (results: ReturnType<typeof json>["results"]) =>
  Object.fromEntries(results.map((r) => [r.tenant ?? r.database, r]))

describe("200 SQLite tenants, one command", () => {
  const p = project("sqlite")
  const tenants = sqliteTenants(200)
  const module = p.module(listing(tenants))
  const file = (name: string) => join(p.root, "tenants", `${name}.db`)

  it("deploys every tenant: Prisma's _prisma_migrations rows and the tables in each", async () => {
    const r = await p.run(["migrate", "deploy", "--tenants", module, "--schema", "tenant"])
    expect(r.err).not.toContain("✘")
    expect(r.code).toBe(0)
    expect(r.out).toContain("migrate deploy: 200 tenants in")
    expect(r.out).toContain(": 200 applied")
    expect(r.out).toMatch(new RegExp(`t199\\s+applied 2 \\(${INIT}, ${ROLES}\\)`))
    for (const { name } of tenants) expectApplied(sqliteRows(file(name)), p.folder, [INIT, ROLES])
    const db = new Database(file("t42"), { readonly: true })
    const columns = db.prepare(`SELECT name FROM pragma_table_info('User')`).all().map((c) => (c as { name: string }).name)
    db.close()
    expect(columns).toEqual(["id", "email", "name", "role"])
  }, 60_000)

  it("a second run applies nothing: every tenant up to date, no row added; status agrees", async () => {
    const r = await p.run(["migrate", "deploy", "--tenants", module, "--schema", "tenant", "--json"])
    expect(r.code).toBe(0)
    const report = json(r.out)
    expect(report.ok).toBe(true)
    expect(report.summary).toMatchObject({ applied: 0, upToDate: 200, failed: 0, notAttempted: 0 })
    expect(report.results.every((x) => x.outcome === "up to date" && x.applied!.length === 0)).toBe(true)
    for (const { name } of tenants) expect(sqliteRows(file(name))).toHaveLength(2)
    const status = await p.run(["migrate", "status", "--tenants", module, "--schema", "tenant"])
    expect(status.code).toBe(0)
    expect(status.out).toContain(": 200 up to date")
  }, 60_000)

  it("a changed migration file is refused: exit 1, no tenant changed, a new migration applied nowhere", async () => {
    const before = tenants.map(({ name }) => fileHash(file(name)))
    const script = join(p.folder, INIT, "migration.sql")
    const original = readFileSync(script, "utf8")
    appendFileSync(script, "\n-- edited after it was applied\n")
    mkdirSync(join(p.folder, "20260103000000_more"))
    writeFileSync(join(p.folder, "20260103000000_more", "migration.sql"), `ALTER TABLE "User" ADD COLUMN "extra" TEXT;\n`)
    try {
      // Default policy: the first refusals stop new tenants from starting.
      const stopped = await p.run(["migrate", "deploy", "--tenants", module, "--schema", "tenant", "--json"])
      expect(stopped.code).toBe(1)
      const first = json(stopped.out)
      expect(first.ok).toBe(false)
      expect(first.summary.failed).toBeGreaterThanOrEqual(1)
      expect(first.summary.failed + first.summary.notAttempted).toBe(200)
      expect(first.summary.notAttempted).toBeGreaterThan(100)
      for (const x of first.results.filter((x) => x.outcome === "failed")) {
        expect(x.error).toMatchObject({ code: "FLEXIDB_MIGRATION_MODIFIED", migration: INIT })
      }
      // --json: the document says it stopped; stderr stays empty.
      expect(first.stopped).toBe("failure")
      expect(stopped.err).toBe("")
      // --continue: every tenant tries, every one refuses.
      const all = await p.run(["migrate", "deploy", "--tenants", module, "--schema", "tenant", "--continue"])
      expect(all.code).toBe(1)
      expect(all.out).toContain(": 200 failed")
      expect(all.out).toMatch(new RegExp(`t7\\s+failed \\(FLEXIDB_MIGRATION_MODIFIED ${INIT}: applied migrations were changed since`))
      expect(tenants.map(({ name }) => fileHash(file(name)))).toEqual(before)
      // The dry run sees it too, and still changes nothing.
      const dry = await p.run(["migrate", "deploy", "--tenants", module, "--schema", "tenant", "--dry-run", "--tenant", "t3"])
      expect(dry.code).toBe(1)
      expect(dry.out).toContain("failed (FLEXIDB_MIGRATION_MODIFIED")
      expect(fileHash(file("t3"))).toBe(before[3])
    } finally {
      writeFileSync(script, original)
      rmSync(join(p.folder, "20260103000000_more"), { recursive: true })
    }
  }, 60_000)
})

describe("a tenant whose migration fails", () => {
  it("is reported failed with the database's error in its logs; the rest stop, or go on with --continue; resolve", async () => {
    const p = project("sqlite", [INIT])
    const tenants = sqliteTenants(6)
    const module = p.module(listing(tenants, "iterable"))
    const file = (name: string) => join(p.root, "tenants", `${name}.db`)
    const deploy = (...flags: Array<string>) =>
      p.run(["migrate", "deploy", "--tenants", module, "--schema", "tenant", "--concurrency", "1", ...flags])
    expect((await deploy()).code).toBe(0)
    // t2 gets a table the next migration creates.
    sqliteExec(file("t2"), `CREATE TABLE "new_User" ("planted" TEXT)`)
    p.add(ROLES)

    const stopped = await deploy()
    expect(stopped.code).toBe(1)
    expect(stopped.out).toMatch(new RegExp(`t0\\s+applied 1 \\(${ROLES}\\)`))
    expect(stopped.out).toMatch(new RegExp(`t1\\s+applied 1 \\(${ROLES}\\)`))
    expect(stopped.out).toMatch(new RegExp(`t2\\s+failed \\(P3018 ${ROLES}: .*table "new_User" already exists\\)`))
    for (const name of ["t3", "t4", "t5"]) expect(stopped.out).toMatch(new RegExp(`${name}\\s+not attempted`))
    expect(stopped.out).toContain(": 2 applied, 1 failed, 3 not attempted")
    expect(stopped.err).toContain(`✘ t2: P3018 ${ROLES}`)
    const failedRow = sqliteRows(file("t2")).find((r) => r.migration_name === ROLES)!
    expect(failedRow.finished_at).toBeNull()
    expect(failedRow.rolled_back_at).toBeNull()
    expect(failedRow.logs).toContain(`Migration name: ${ROLES}`)
    expect(failedRow.logs).toContain(`table "new_User" already exists`)
    // The failed migration was undone: t2 is as it was, with its init applied.
    expectApplied(sqliteRows(file("t2")).filter((r) => r.migration_name === INIT), p.folder, [INIT])
    for (const name of ["t3", "t4", "t5"]) expectApplied(sqliteRows(file(name)), p.folder, [INIT])

    // --continue: t2 refuses (its failed migration), the others are applied.
    const going = await deploy("--continue", "--json")
    expect(going.code).toBe(1)
    const results = byName(json(going.out).results)
    expect(results.t0!.outcome).toBe("up to date")
    expect(results.t2).toMatchObject({ outcome: "failed", error: { code: "P3009", migration: ROLES } })
    for (const name of ["t3", "t4", "t5"]) {
      expect(results[name]).toMatchObject({ outcome: "applied", applied: [ROLES] })
      expectApplied(sqliteRows(file(name)), p.folder, [INIT, ROLES])
    }

    // Fixed by hand, marked rolled back for t2 alone: the next deploy applies it there.
    sqliteExec(file("t2"), `DROP TABLE "new_User"`)
    const resolved = await p.run(["migrate", "resolve", "--tenants", module, "--schema", "tenant", "--tenant", "t2", "--rolled-back", ROLES])
    expect(resolved.code).toBe(0)
    expect(resolved.out).toMatch(new RegExp(`t2\\s+resolved: ${ROLES} marked rolled back`))
    const again = await deploy()
    expect(again.code).toBe(0)
    expect(again.out).toMatch(new RegExp(`t2\\s+applied 1 \\(${ROLES}\\)`))
    expect(again.out).toContain(": 1 applied, 5 up to date")
    const rows = sqliteRows(file("t2"))
    expect(rows.filter((r) => r.migration_name === ROLES && r.rolled_back_at !== null)).toHaveLength(1)
    expect(rows.filter((r) => r.migration_name === ROLES && r.finished_at !== null)).toHaveLength(1)
  }, 60_000)
})

describe("--dry-run", () => {
  it("lists each tenant's pending migrations and touches nothing, not even a database file that is not there yet", async () => {
    const p = project("sqlite", [INIT])
    const existing = sqliteTenants(2, "old")
    const module = p.module(listing([...existing, ...sqliteTenants(2, "new")], "array"))
    const file = (name: string) => join(p.root, "tenants", `${name}.db`)
    expect((await p.run(["migrate", "deploy", "--tenants", module, "--schema", "tenant", "--tenant", "old0"])).code).toBe(0)
    expect((await p.run(["migrate", "deploy", "--tenants", module, "--schema", "tenant", "--tenant", "old1"])).code).toBe(0)
    p.add(ROLES)
    const before = existing.map(({ name }) => fileHash(file(name)))
    const r = await p.run(["migrate", "deploy", "--tenants", module, "--schema", "tenant", "--dry-run"])
    expect(r.code).toBe(0)
    expect(r.out).toMatch(new RegExp(`old0\\s+would apply 1 \\(${ROLES}\\)`))
    expect(r.out).toMatch(new RegExp(`new1\\s+would apply 2 \\(${INIT}, ${ROLES}\\)`))
    expect(r.out).toContain("(dry run: nothing changed)")
    expect(existing.map(({ name }) => fileHash(file(name)))).toEqual(before)
    expect(existsSync(file("new0"))).toBe(false)
    expect(existsSync(file("new1"))).toBe(false)
    const report = json((await p.run(["migrate", "deploy", "--tenants", module, "--schema", "tenant", "--dry-run", "--json"])).out)
    expect(byName(report.results).old1).toMatchObject({ outcome: "pending", pending: [ROLES] })
    // Status: migrations to apply are exit 1, as `prisma migrate status`.
    expect((await p.run(["migrate", "status", "--tenants", module, "--schema", "tenant"])).code).toBe(1)
  })
})

describe("the tenants module", () => {
  it("refuses a bad list before anything runs: each bad entry named, no URL or password printed", async () => {
    const p = project("sqlite")
    const module = p.module(listing([
      { name: "ok", url: "file:./tenants/ok.db" },
      { name: "web", url: "http://admin:hunter2@example.com/db" },
      { name: "nourl" },
      { name: "a b", url: "file:./tenants/ab.db" },
      { name: "pg", url: "postgresql://app:hunter2@db:5432/x" },
      { name: "ok", url: "file:./tenants/ok2.db" },
      { name: "same", url: "file:tenants/ok.db" },
      "postgresql://app:hunter2@db/y",
      { name: "mem", url: "file::memory:" }
    ]))
    const r = await p.run(["migrate", "deploy", "--tenants", module, "--schema", "tenant"])
    expect(r.code).toBe(1)
    const text = r.out + r.err
    expect(r.err).toContain(`--tenants ${module}: 8 problems in the list, nothing was run:`)
    expect(r.err).toContain(`tenant 'web' (entry [1]): its url is a 'http:' URL`)
    expect(r.err).toContain(`tenant 'nourl' (entry [2]): url must be a database URL string, got an undefined`)
    expect(r.err).toContain(`entry [3]: name must be 1 to 128 letters, digits, '_' or '-', got "a b"`)
    expect(r.err).toContain(`tenant 'pg' (entry [4]): its url is a postgresql URL, but the schema's datasource provider is 'sqlite'`)
    expect(r.err).toContain(`tenant 'ok' is listed twice with different databases (entries [0] and [5])`)
    expect(r.err).toContain(`tenants 'ok' (entry [0]) and 'same' (entry [6]) are the same database`)
    expect(r.err).toContain(`entry [7]: expected { name, url }, got a string`)
    expect(r.err).toContain(`tenant 'mem' (entry [8]): its url names no SQLite file`)
    expect(text).not.toContain("hunter2")
    expect(text).not.toContain("example.com")
    expect(existsSync(join(p.root, "tenants", "ok.db"))).toBe(false)
  })

  it("names a module that is missing, has no default export, exports no list, or throws (redacted)", async () => {
    const p = project("sqlite")
    const attempt = async (module: string) => (await p.run(["migrate", "status", "--tenants", module, "--schema", "tenant"])).err
    expect(await attempt("nope.mjs")).toContain(`--tenants nope.mjs: no such file (${join(p.root, "nope.mjs")})`)
    expect(await attempt(p.module(`export const tenants = []\n`, "named.mjs"))).toContain("--tenants named.mjs has no default export")
    expect(await attempt(p.module(`export default 42\n`, "number.mjs"))).toContain("its default export is a number; expected an array or an (async) iterable")
    expect(await attempt(p.module(`export default () => ({ a: 1 })\n`, "object.mjs"))).toContain("its default export returned an object")
    const thrown = await attempt(p.module(`export default () => { throw new Error("cannot reach postgresql://reg:hunter2@registry/db") }\n`, "throws.mjs"))
    expect(thrown).toContain("listing the tenants failed: cannot reach postgresql://***@registry/db")
    expect(thrown).not.toContain("hunter2")
    expect(await attempt(p.module(`throw new Error("at load: mysql://root:hunter2@x/y")\n`, "load.mjs"))).toContain(
      "importing it failed: at load: mysql://***@x/y"
    )
    expect(await attempt(p.module(`export default []\n`, "empty.mjs"))).toContain("lists no tenants")
  })

  it("a TypeScript module, given flexidb's environment (.env under the process's); --tenant for one", async () => {
    const p = project("sqlite")
    writeFileSync(join(p.root, ".env"), `TENANT_DIR=tenants\n`)
    const module = p.module([
      `interface Entry { name: string; url: string }`,
      `export default ({ env }: { env: Record<string, string> }): Array<Entry> =>`,
      `  ["acme", "globex", "acme"].map((name) => ({ name, url: \`file:./\${env.TENANT_DIR}/\${name}.db\` }))`,
      ``
    ].join("\n"), "tenants.ts")
    const r = await p.run(["migrate", "deploy", "--tenants", module, "--schema", "tenant", "--tenant", "globex"])
    expect(r.code).toBe(0)
    expect(r.out).toContain(": 1 applied")
    // The same tenant twice, with the same database: migrated once, and said so.
    expect(r.err).toContain("--tenants tenants.ts: listed twice with the same database, migrated once: 'acme' (entries [0] and [2])")
    expect(existsSync(join(p.root, "tenants", "globex.db"))).toBe(true)
    expect(existsSync(join(p.root, "tenants", "acme.db"))).toBe(false)
    const other = await p.run(["migrate", "deploy", "--tenants", module, "--schema", "tenant", "--tenant", "initech"])
    expect(other.code).toBe(1)
    expect(other.err).toContain("--tenant initech: no such tenant in tenants.ts (2 listed)")
  })

  it("refuses flags that make no sense: --concurrency out of range, no --schema among several, Prisma-only mixes", async () => {
    const p = project("sqlite")
    const module = p.module(listing(sqliteTenants(1)))
    for (const n of ["0", "-1", "1001"]) {
      const r = await p.run(["migrate", "deploy", "--tenants", module, "--schema", "tenant", "--concurrency", n])
      expect(r.code).toBe(2)
      expect(r.err).toContain(`--concurrency must be a whole number from 1 to 1000, got ${n}`)
    }
    writeFileSync(join(p.root, "prisma", "schemas", "other.prisma"), `datasource db {\n  provider = "sqlite"\n}\n`)
    const noSchema = await p.run(["migrate", "deploy", "--tenants", module])
    expect(noSchema.code).toBe(1)
    expect(noSchema.err).toContain("--tenants needs --schema: the tenants' schema, whose prisma/migrations/<name>/ they get (found: other, tenant)")
    const noFolder = await p.run(["migrate", "deploy", "--tenants", module, "--schema", "other"])
    expect(noFolder.err).toContain("No migrations folder prisma/migrations/other/ for schema 'other'")
    expect((await p.run(["migrate", "deploy", "--in-process", "--tenant", "t0"])).err).toContain("--tenant picks one tenant of a --tenants <module> list")
    const passThrough = await p.run(["migrate", "deploy", "--tenants", module, "--schema", "tenant", "--", "--x"])
    expect(passThrough.err).toContain("Arguments after -- go to Prisma")
    const resolveBoth = await p.run(["migrate", "resolve", "--tenants", module, "--schema", "tenant"])
    expect(resolveBoth.err).toContain("needs one of --applied <migration> or --rolled-back <migration>")
    expect(existsSync(join(p.root, "tenants", "t0.db"))).toBe(false)
  })

  it("a stop request (Ctrl+C) starts no tenant: exit 130, every one not attempted", async () => {
    const p = project("sqlite")
    const module = p.module(listing(sqliteTenants(5)))
    const stop = new AbortController()
    stop.abort()
    const r = await cli(p.root, ["migrate", "deploy", "--tenants", module, "--schema", "tenant"], {}, stop.signal)
    expect(r.code).toBe(130)
    expect(r.out).toContain(": 5 not attempted")
    expect(existsSync(join(p.root, "tenants", "t0.db"))).toBe(false)
  })

  it("on a terminal: one live progress line redrawn on stderr, no plain progress lines", async () => {
    const p = project("sqlite")
    const module = p.module(listing(sqliteTenants(30)))
    const updates: Array<string> = []
    const err: Array<string> = []
    let cleared = 0
    const code = await run(["migrate", "deploy", "--tenants", module, "--schema", "tenant"], {
      cwd: p.root,
      env: {},
      out: () => {},
      err: (t) => err.push(t),
      live: { update: (line) => updates.push(line), clear: () => cleared++ }
    })
    expect(code).toBe(0)
    expect(updates.length).toBeGreaterThan(0)
    expect(updates[0]).toMatch(/^migrate deploy: \d+ done · 0 failed · \d+ pending · [\d.]+\/s/)
    expect(cleared).toBeGreaterThan(0)
    // The last state, kept on screen as a line of its own.
    expect(err).toHaveLength(1)
    expect(err[0]).toMatch(/^migrate deploy: 30 done · 0 failed · 0 pending · [\d.]+\/s$/)
  })
})

describe("PostgreSQL and MariaDB fleets", () => {
  const dropped: Array<() => Promise<void>> = []
  afterAll(async () => {
    for (const drop of dropped) await drop()
  })

  const pgAdmin = async <A>(fn: (c: pg.Client) => Promise<A>) => {
    const c = new pg.Client({ connectionString: `postgresql://postgres@${PG_HOST}/postgres` })
    await c.connect()
    try {
      return await fn(c)
    } finally {
      await c.end()
    }
  }
  const pgDatabases = async (count: number) => {
    const names = Array.from({ length: count }, () => uniqueName("mig"))
    await pgAdmin(async (c) => {
      for (const name of names) await c.query(`CREATE DATABASE "${name}"`)
    })
    dropped.push(() => pgAdmin(async (c) => {
      for (const name of names) await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
    }))
    return names
  }
  const pgRows = async (url: string, schema = "public") => {
    const c = new pg.Client({ connectionString: url })
    await c.connect()
    try {
      return (await c.query(`SELECT * FROM "${schema}"._prisma_migrations ORDER BY started_at`)).rows as Array<MigrationRow>
    } finally {
      await c.end()
    }
  }

  it("20 PostgreSQL databases, password-bearing URLs: --json is one document with no URL or password anywhere", async () => {
    const p = project("postgresql")
    const names = await pgDatabases(20)
    // The local server trusts: any password gets in, and must never get out.
    const url = (db: string) => `postgresql://postgres:s3cretpw@${PG_HOST}/${db}`
    const module = p.module(listing(names.map((db, i) => ({ name: `pg${i}`, url: i % 2 === 0 ? url(db) : url(db).replace("postgresql:", "postgres:") }))))
    const r = await p.run(["migrate", "deploy", "--tenants", module, "--schema", "tenant", "--json"])
    expect(r.err).not.toContain("✘")
    expect(r.code).toBe(0)
    const report = json(r.out)
    expect(report).toMatchObject({ ok: true, summary: { applied: 20, failed: 0 } })
    for (const text of [r.out, r.err]) {
      expect(text).not.toContain("s3cretpw")
      expect(text).not.toContain("postgres://")
      expect(text).not.toContain("postgresql://")
      expect(text).not.toContain(PG_HOST)
    }
    for (const db of names) expectApplied(await pgRows(`postgresql://postgres@${PG_HOST}/${db}`), p.folder, [INIT, ROLES])
    // Again: all up to date. A database that does not exist fails alone, its error without the password.
    const missing = p.module(listing([
      ...names.map((db, i) => ({ name: `pg${i}`, url: url(db) })),
      { name: "ghost", url: url(`${names[0]}_ghost`) }
    ]), "with-ghost.mjs")
    const again = await p.run(["migrate", "deploy", "--tenants", missing, "--schema", "tenant", "--json", "--continue"])
    expect(again.code).toBe(1)
    const second = json(again.out)
    expect(second.summary).toMatchObject({ upToDate: 20, failed: 1 })
    expect(byName(second.results).ghost!.error!.reason).toContain("does not exist")
    expect(again.out + again.err).not.toContain("s3cretpw")
  }, 60_000)

  it("PostgreSQL schema per tenant: the entry's schema, or the URL's ?schema= as Prisma reads it", async () => {
    const p = project("postgresql")
    const [db] = await pgDatabases(1)
    const base = `postgresql://postgres:s3cretpw@${PG_HOST}/${db}`
    await pgAdmin(async () => {
      const c = new pg.Client({ connectionString: base })
      await c.connect()
      await c.query(`CREATE SCHEMA acme; CREATE SCHEMA globex`)
      await c.end()
    })
    const module = p.module(listing([{ name: "acme", url: base, schema: "acme" }, { name: "globex", url: `${base}?schema=globex` }]))
    const r = await p.run(["migrate", "deploy", "--tenants", module, "--schema", "tenant"])
    expect(r.code).toBe(0)
    expect(r.out).toContain(": 2 applied")
    for (const schema of ["acme", "globex"]) expectApplied(await pgRows(base, schema), p.folder, [INIT, ROLES])
    // Two entries for one schema of one database would migrate it twice.
    const twice = p.module(listing([{ name: "a", url: base, schema: "acme" }, { name: "b", url: `${base}?schema=acme` }]), "twice.mjs")
    const refused = await p.run(["migrate", "deploy", "--tenants", twice, "--schema", "tenant"])
    expect(refused.code).toBe(1)
    expect(refused.err).toContain("tenants 'a' (entry [0]) and 'b' (entry [1]) are the same database")
  }, 30_000)

  it("20 MariaDB databases (mysql:// and mariadb:// URLs)", async () => {
    const p = project("mysql")
    const names = Array.from({ length: 20 }, () => uniqueName("mig"))
    const admin = await mariadb.createConnection({ host: "127.0.0.1", port: 3306, user: "root" })
    try {
      for (const name of names) await admin.query(`CREATE DATABASE \`${name}\``)
    } finally {
      await admin.end()
    }
    dropped.push(async () => {
      const a = await mariadb.createConnection({ host: "127.0.0.1", port: 3306, user: "root" })
      for (const name of names) await a.query(`DROP DATABASE IF EXISTS \`${name}\``)
      await a.end()
    })
    const module = p.module(listing(names.map((db, i) => ({ name: `my${i}`, url: `${i % 2 === 0 ? "mysql" : "mariadb"}://root@${MYSQL_HOST}/${db}` }))))
    const r = await p.run(["migrate", "deploy", "--tenants", module, "--schema", "tenant", "--concurrency", "4"])
    expect(r.err).not.toContain("✘")
    expect(r.code).toBe(0)
    expect(r.out).toContain(": 20 applied")
    const c = await mariadb.createConnection({ host: "127.0.0.1", port: 3306, user: "root" })
    try {
      for (const db of names) {
        expectApplied(await c.query(`SELECT * FROM \`${db}\`._prisma_migrations ORDER BY started_at`), p.folder, [INIT, ROLES])
      }
    } finally {
      await c.end()
    }
    const status = await p.run(["migrate", "status", "--tenants", module, "--schema", "tenant"])
    expect(status.code).toBe(0)
    expect(status.out).toContain(": 20 up to date")
  }, 60_000)
})

describe("--in-process: the project's own databases", () => {
  it("deploys each schema's migrations to its DATABASE_URL_<NAME> without Prisma; a missing URL fails that database alone", async () => {
    const p = fakeProject(7, { alpha: "sqlite", beta: "sqlite" }, "DATABASE_URL_ALPHA=file:./alpha.db\nDATABASE_URL_BETA=file:./data/beta.db\n")
    made.push(p.root)
    mkdirSync(join(p.root, "data"))
    for (const name of ["alpha", "beta", "gamma"]) cpSync(join(fixtures, "sqlite"), join(p.root, "prisma", "migrations", name), { recursive: true })
    const r = await p.cli(["migrate", "deploy", "--in-process"])
    expect(r.code).toBe(0)
    expect(r.out).toMatch(/database\s+outcome\s+time/)
    expect(r.out).toMatch(new RegExp(`alpha\\s+applied 2 \\(${INIT}, ${ROLES}\\)`))
    expect(r.out).toContain("migrate deploy: 2 databases in")
    expect(p.calls()).toEqual([])
    const migrations = (name: string) => join(p.root, "prisma", "migrations", name)
    expectApplied(sqliteRows(join(p.root, "alpha.db")), migrations("alpha"), [INIT, ROLES])
    expectApplied(sqliteRows(join(p.root, "data", "beta.db")), migrations("beta"), [INIT, ROLES])

    const status = await p.cli(["migrate", "status", "--in-process", "--json"])
    expect(status.code).toBe(0)
    expect(json(status.out).results.map((x) => [x.database, x.outcome])).toEqual([["alpha", "up to date"], ["beta", "up to date"]])

    writeFileSync(join(p.root, "prisma", "schemas", "gamma.prisma"), `datasource db {\n  provider = "sqlite"\n}\n`)
    const missing = await p.cli(["migrate", "deploy", "--in-process", "--continue"])
    expect(missing.code).toBe(1)
    expect(missing.out).toMatch(/gamma\s+failed \(FLEXIDB_NO_URL: DATABASE_URL_GAMMA is not set/)
    expect(missing.out).toContain(": 2 up to date, 1 failed")
    const one = await p.cli(["migrate", "status", "--in-process", "--schema", "alpha"])
    expect(one.code).toBe(0)
    expect(p.calls()).toEqual([])
    // Without --in-process, Prisma runs as before; the in-process flags are refused there.
    const mixed = await p.cli(["migrate", "deploy", "--dry-run"])
    expect(mixed.code).toBe(1)
    expect(mixed.err).toContain("--dry-run runs in process: add --in-process (or --tenants <module>)")
    expect(p.calls()).toEqual([])
    // migrate resolve, in process for one schema, or through Prisma's own migrate resolve.
    const resolveAll = await p.cli(["migrate", "resolve", "--in-process", "--applied", INIT])
    expect(resolveAll.err).toContain("migrate resolve names a migration of one schema's folder: add --schema (found: alpha, beta, gamma)")
    const already = await p.cli(["migrate", "resolve", "--in-process", "--schema", "alpha", "--applied", INIT])
    expect(already.code).toBe(1)
    expect(already.out).toMatch(/alpha\s+failed \(P3008 20260101000000_init: The migration `20260101000000_init` is already recorded as applied/)
    expect((await p.cli(["migrate", "resolve", "--schema", "beta", "--rolled-back", ROLES])).code).toBe(0)
    expect(p.calls().map((c) => [c.database, c.argv[0], c.argv[1], ...c.argv.slice(-2)])).toEqual([["beta", "migrate", "resolve", "--rolled-back", ROLES]])
  })
})
