// flexidb/catalog on real servers: the catalog's own tables (created once, whatever the number of openers), create
// per kind (PostgreSQL database from a template, PostgreSQL schema and MariaDB database by the migrator, SQLite file
// from a template), a duplicate refused whoever creates it, the engine's fence holding against a connection opened
// before (a superuser's included), resume putting everything back, remove, list over 100,000 rows, and errors that
// carry no credential.
import { it as effect } from "@effect/vitest"
import Database from "better-sqlite3"
import { Effect } from "effect"
import * as mariadb from "mariadb"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Catalog, CatalogService, openCatalog } from "../src/Catalog.js"
import type { Row } from "../src/Catalog.js"
import { ConnectionError, DuplicateDatabaseError, InvalidArgumentError, UnknownDatabaseError } from "../src/index.js"
import { deployMigrations, migrationStatus } from "../src/migrate.js"
import { createDatabase, PG_HOST, uniqueName } from "./support/databases.js"
import type { TestDatabase } from "./support/databases.js"

const fixtures = join(import.meta.dirname, "fixtures", "migrations")
const pgServer = `postgresql://postgres@${PG_HOST}/postgres`
const mariaServer = "mysql://root@127.0.0.1:3306/"

const dir = mkdtempSync(join(tmpdir(), "flexidb-catalog-"))
let catalogDb: TestDatabase
let schemaDb: TestDatabase
let template: TestDatabase
const servers = () => ({
  main: pgServer,
  shared: schemaDb.url,
  maria: mariaServer,
  files: `file:${dir}`
})
/** Tenant names unique to this run: the servers are shared with other suites. */
const tenant = (tag: string) => uniqueName(tag).replace(/^flexidb_/, "ct_")

const dropped: Array<() => Promise<void>> = []
beforeAll(async () => {
  ;[catalogDb, schemaDb, template] = await Promise.all([
    createDatabase("postgresql"),
    createDatabase("postgresql"),
    createDatabase("postgresql")
  ])
  const t = new Database(join(dir, "template.db"))
  t.exec(`CREATE TABLE "User" (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, name TEXT)`)
  t.close()
}, 60_000)
afterAll(async () => {
  for (const d of dropped) await d().catch(() => undefined)
  await Promise.all([catalogDb?.drop(), schemaDb?.drop(), template?.drop()])
  rmSync(dir, { recursive: true, force: true })
}, 60_000)

const admin = async (url = pgServer) => {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  return c
}
const withDb = (db: string) => `postgresql://postgres@${PG_HOST}/${db}`

/** A row must never hold a URL or a credential. */
const noSecrets = (row: unknown) => expect(JSON.stringify(row)).not.toMatch(/:\/\/|postgres@|root@|file:/)

describe("the catalog's tables", () => {
  it("three catalogs opened at once create schema flexidb once; a fourth finds it done", async () => {
    const opened = await Promise.all([1, 2, 3].map(() => openCatalog({ url: catalogDb.url, servers: servers() })))
    const fourth = await openCatalog({ url: catalogDb.url, servers: servers() })
    const c = await admin(catalogDb.url)
    const { rows } = await c.query(`SELECT version FROM flexidb.catalog_version`)
    expect(rows).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }])
    const cols = await c.query(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = 'flexidb' AND table_name = 'tenants' ORDER BY ordinal_position`
    )
    expect(cols.rows.map((r) => r.column_name)).toEqual(["name", "server", "kind", "location", "state", "epoch", "created_at", "updated_at", "source_server", "source_location"])
    await c.end()
    await Promise.all([...opened, fourth].map((o) => o.close()))
  })
})

describe("PostgreSQL database tenants", () => {
  it("create from a template → usable at once; a duplicate from another catalog fails; suspend fences a superuser's open connection; resume; remove drops", async () => {
    const [a, b] = await Promise.all([1, 2].map(() => openCatalog({ url: catalogDb.url, servers: servers() })))
    const name = tenant("db")
    dropped.push(async () => {
      const c = await admin()
      await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
      await c.end()
    })
    try {
      // Two creates of one name at once, from two catalog instances: exactly one wins.
      const outcomes = await Promise.allSettled([
        a!.create(name, { server: "main", template: new URL(template.url).pathname.slice(1) }),
        b!.create(name, { server: "main", template: new URL(template.url).pathname.slice(1) })
      ])
      const won = outcomes.filter((o) => o.status === "fulfilled") as Array<PromiseFulfilledResult<Row>>
      const lost = outcomes.filter((o) => o.status === "rejected") as Array<PromiseRejectedResult>
      expect(won).toHaveLength(1)
      expect(lost[0]!.reason).toBeInstanceOf(DuplicateDatabaseError)
      const row = won[0]!.value
      expect(row).toEqual({ name, server: "main", kind: "database", location: name, state: "active", epoch: 1 })
      noSecrets(row)
      await expect(a!.create(name, { server: "main" })).rejects.toBeInstanceOf(DuplicateDatabaseError)

      // Usable at once, its schema copied from the template.
      const before = await admin(withDb(name))
      before.on("error", () => undefined) // terminated by the fence
      await before.query(`INSERT INTO "User" (email) VALUES ('first@x.io')`)

      const suspended = await b!.suspend(name)
      expect(suspended).toMatchObject({ state: "suspended", epoch: 2 })
      expect(await a!.get(name)).toEqual(suspended)
      // The superuser's connection opened before is gone, and no new one is let in.
      await expect(before.query(`INSERT INTO "User" (email) VALUES ('late@x.io')`)).rejects.toThrow()
      await expect(admin(withDb(name))).rejects.toThrow(/not currently accepting connections/)
      // Idempotent.
      expect(await a!.suspend(name)).toMatchObject({ state: "suspended", epoch: 2 })

      expect(await a!.resume(name)).toMatchObject({ state: "active", epoch: 3 })
      const after = await admin(withDb(name))
      expect((await after.query(`SELECT email FROM "User"`)).rows).toEqual([{ email: "first@x.io" }])
      await after.end()

      await a!.remove(name, { drop: true })
      expect(await b!.get(name)).toBeUndefined()
      const c = await admin()
      expect((await c.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [name])).rows).toEqual([])
      await c.end()
      await expect(a!.suspend(name)).rejects.toBeInstanceOf(UnknownDatabaseError)
    } finally {
      await Promise.all([a!.close(), b!.close()])
    }
  }, 60_000)
})

describe("PostgreSQL schema tenants", () => {
  it("built from the migrations; suspend parks the schema (a pooled connection from before cannot write); resume restores", async () => {
    const catalog = await openCatalog({ url: catalogDb.url, servers: servers(), migrations: join(fixtures, "postgresql") })
    const name = tenant("sc")
    try {
      const row = await catalog.create(name, { server: "shared", kind: "schema" })
      expect(row).toEqual({ name, server: "shared", kind: "schema", location: name, state: "active", epoch: 1 })
      const before = await admin(schemaDb.url)
      await before.query(`INSERT INTO "${name}"."User" (email) VALUES ('a@x.io')`)
      expect((await before.query(`SELECT migration_name FROM "${name}"._prisma_migrations ORDER BY 1`)).rows).toHaveLength(2)
      // Built in one round trip, recorded as the migrator records it: nothing pending, nothing modified, a deploy a no-op.
      const status = await migrationStatus({ url: schemaDb.url, schema: name, migrations: join(fixtures, "postgresql") })
      expect(status).toMatchObject({ applied: expect.any(Array), pending: [], failed: [], modified: [], missingLocally: [] })
      expect(status.applied).toHaveLength(2)
      expect(await deployMigrations({ url: schemaDb.url, schema: name, migrations: join(fixtures, "postgresql") })).toEqual({ applied: [] })
      await catalog.suspend(name)
      before.on("error", () => undefined)
      await expect(before.query(`INSERT INTO "${name}"."User" (email) VALUES ('late@x.io')`)).rejects.toThrow(/does not exist/)
      await catalog.resume(name)
      const after = await admin(schemaDb.url)
      expect((await after.query(`SELECT email FROM "${name}"."User"`)).rows).toEqual([{ email: "a@x.io" }])
      await catalog.remove(name, { drop: true })
      expect((await after.query(`SELECT 1 FROM pg_namespace WHERE nspname LIKE $1`, [`${name}%`])).rows).toEqual([])
      await Promise.all([before.end().catch(() => undefined), after.end()])
    } finally {
      await catalog.close()
    }
  }, 60_000)
})

describe("MariaDB database tenants", () => {
  it("built by the migrator; suspend kills its sessions and parks its tables; resume puts them back", async () => {
    const catalog = await openCatalog({ url: catalogDb.url, servers: servers(), migrations: join(fixtures, "mysql") })
    const name = tenant("my")
    dropped.push(async () => {
      const c = await mariadb.createConnection({ host: "127.0.0.1", port: 3306, user: "root" })
      await c.query(`DROP DATABASE IF EXISTS \`${name}\``)
      await c.query(`DROP DATABASE IF EXISTS \`${name}__parked\``)
      await c.end()
    })
    const connect = () => mariadb.createConnection({ host: "127.0.0.1", port: 3306, user: "root", database: name })
    try {
      expect(await catalog.create(name, { server: "maria" })).toMatchObject({ kind: "database", location: name, state: "active" })
      const before = await connect()
      before.on("error", () => undefined) // killed by the fence
      await before.query("INSERT INTO `User` (email) VALUES ('a@x.io')")
      await catalog.suspend(name)
      await expect(before.query("INSERT INTO `User` (email) VALUES ('late@x.io')")).rejects.toThrow()
      const other = await connect()
      await expect(other.query("INSERT INTO `User` (email) VALUES ('new@x.io')")).rejects.toThrow(/doesn't exist/)
      await other.end()
      await catalog.resume(name)
      const after = await connect()
      expect(await after.query("SELECT email FROM `User`")).toEqual([{ email: "a@x.io" }])
      await after.end()
      await catalog.remove(name, { drop: true })
      const c = await mariadb.createConnection({ host: "127.0.0.1", port: 3306, user: "root" })
      expect(await c.query(`SHOW DATABASES LIKE '${name}%'`)).toEqual([])
      await c.end()
      await before.end().catch(() => undefined)
    } finally {
      await catalog.close()
    }
  }, 60_000)
})

describe("SQLite file tenants", () => {
  it("copied from a template file; suspend parks the file (a write through an old connection lands there); resume brings it back", async () => {
    const catalog = await openCatalog({ url: catalogDb.url, servers: servers() })
    const name = tenant("f")
    try {
      const row = await catalog.create(name, { server: "files", template: "template.db" })
      expect(row).toEqual({ name, server: "files", kind: "file", location: `${name}.db`, state: "active", epoch: 1 })
      await expect(catalog.create(name, { server: "files", template: "template.db" })).rejects.toBeInstanceOf(DuplicateDatabaseError)
      const file = join(dir, `${name}.db`)
      const before = new Database(file)
      before.prepare(`INSERT INTO "User" (email) VALUES ('a@x.io')`).run()
      await catalog.suspend(name)
      expect(existsSync(file)).toBe(false)
      // Through the connection opened before: SQLite itself refuses a write to a file moved since it was opened
      // (SQLITE_READONLY_DBMOVED), so nothing is written anywhere and nothing is lost.
      expect(() => before.prepare(`INSERT INTO "User" (email) VALUES ('late@x.io')`).run()).toThrow(/readonly/)
      before.close()
      await catalog.resume(name)
      const after = new Database(file, { fileMustExist: true })
      expect(after.prepare(`SELECT email FROM "User" ORDER BY id`).all()).toEqual([{ email: "a@x.io" }])
      after.close()
      await catalog.remove(name, { drop: true })
      expect(existsSync(file) || existsSync(`${file}.parked`)).toBe(false)
    } finally {
      await catalog.close()
    }
  })
})

describe("errors", () => {
  it("a bad name, an unknown server, a kind the server cannot hold: InvalidArgumentError naming no URL", async () => {
    const catalog = await openCatalog({ url: catalogDb.url, servers: { ...servers(), secret: "postgresql://u:hunter2@127.0.0.1:5432/postgres" } })
    try {
      for (const bad of ["", "a/b", "a'b", "x".repeat(129), "a b"]) {
        await expect(catalog.create(bad, { server: "main" })).rejects.toBeInstanceOf(InvalidArgumentError)
      }
      const unknown = await catalog.create("ok", { server: "nosuch" }).catch((e: unknown) => e)
      expect(unknown).toBeInstanceOf(InvalidArgumentError)
      expect((unknown as Error).message).toMatch(/unknown server 'nosuch'/)
      expect((unknown as Error).message).not.toMatch(/hunter2|:\/\//)
      await expect(catalog.create("ok", { server: "files", kind: "schema" })).rejects.toThrow(/cannot live on server 'files'/)
      await expect(catalog.create("ok", { server: "maria", kind: "schema" })).rejects.toBeInstanceOf(InvalidArgumentError)
      await expect(catalog.create("x".repeat(56), { server: "main" })).rejects.toThrow(/at most 55/)
      await expect(catalog.suspend("nosuch")).rejects.toThrow(/^Unknown tenant 'nosuch'/)
      expect(await catalog.get("nosuch")).toBeUndefined()
    } finally {
      await catalog.close()
    }
  })

  it("a create that died half-way blocks its name (DuplicateDatabaseError) until remove() cleans it up", async () => {
    const catalog = await openCatalog({ url: catalogDb.url, servers: servers() })
    const c = await admin(catalogDb.url)
    const name = tenant("half")
    try {
      await c.query(`INSERT INTO flexidb.tenants (name, server, kind, location, state) VALUES ($1, 'files', 'file', $2, 'creating')`, [name, `${name}.db`])
      expect(await catalog.get(name)).toBeUndefined()
      await expect(catalog.suspend(name)).rejects.toBeInstanceOf(UnknownDatabaseError)
      await expect(catalog.create(name, { server: "files", template: "template.db" })).rejects.toBeInstanceOf(DuplicateDatabaseError)
      await catalog.remove(name, { drop: true })
      expect(await catalog.create(name, { server: "files", template: "template.db" })).toMatchObject({ state: "active" })
      await catalog.remove(name, { drop: true })
    } finally {
      await c.end()
      await catalog.close()
    }
  })

  it("a catalog that cannot be reached: ConnectionError, no credential in it", async () => {
    const error = await openCatalog({ url: "postgresql://u:hunter2@127.0.0.1:1/cat", servers: {} }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConnectionError)
    expect(JSON.stringify({ m: (error as Error).message, e: error })).not.toMatch(/hunter2/)
  })

  it("a server URL of an unknown kind is refused without repeating it", async () => {
    const error = await openCatalog({ url: catalogDb.url, servers: { x: "http://u:hunter2@h/" } }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InvalidArgumentError)
    expect((error as Error).message).not.toMatch(/hunter2/)
  })
})

describe("list", () => {
  it("100,000 rows: every one, in name order, a page at a time; filtered by state and server", async () => {
    const c = await admin(catalogDb.url)
    const catalog = await openCatalog({ url: catalogDb.url, servers: servers() })
    try {
      await c.query(
        `INSERT INTO flexidb.tenants (name, server, kind, location, state)
         SELECT 'bulk' || lpad(i::text, 6, '0'), CASE WHEN i % 10 = 0 THEN 'files' ELSE 'main' END, 'database',
                'bulk' || lpad(i::text, 6, '0'), CASE WHEN i % 4 = 0 THEN 'suspended' ELSE 'active' END
         FROM generate_series(1, 100000) i`
      )
      let n = 0
      let last = ""
      for await (const row of catalog.list()) {
        if (!row.name.startsWith("bulk")) continue
        expect(row.name > last).toBe(true)
        last = row.name
        n++
      }
      expect(n).toBe(100_000)
      let suspendedOnFiles = 0
      for await (const row of catalog.list({ state: "suspended", server: "files", pageSize: 333 })) {
        expect(row).toMatchObject({ state: "suspended", server: "files" })
        if (row.name.startsWith("bulk")) suspendedOnFiles++
      }
      expect(suspendedOnFiles).toBe(5_000)
    } finally {
      await c.query(`DELETE FROM flexidb.tenants WHERE name LIKE 'bulk%'`)
      await c.end()
      await catalog.close()
    }
  }, 120_000)
})

describe("Catalog.layer (Effect)", () => {
  effect.live("create and get through the service", () =>
    Effect.gen(function*() {
      const catalog = yield* CatalogService
      const name = tenant("e")
      const row = yield* catalog.create(name, { server: "files", template: "template.db" })
      expect(yield* catalog.get(name)).toEqual(row)
      yield* catalog.remove(name, { drop: true })
      expect(yield* catalog.get(name)).toBeUndefined()
    }).pipe(Effect.provide(Catalog.layer({ url: catalogDb.url, servers: servers() }))))
})
