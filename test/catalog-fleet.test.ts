// Apps that follow the tenant catalog: tenant() opens what the catalog says; suspend, resume and remove reach the
// process at once (LISTEN) or by polling (TestClock); PgBouncer in transaction mode is detected and said; and, with
// real child processes, a suspend reaches every instance while the engine's fence holds even for an instance that
// hears nothing — after suspend() resolves, no write is accepted for the tenant by any process.
import { it as effect } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import { PrismaPg } from "@prisma/adapter-pg"
import Database from "better-sqlite3"
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openCatalog } from "../src/Catalog.js"
import { fenceAheadMs } from "../src/internal/catalog/cut.js"
import type { Catalog } from "../src/Catalog.js"
import {
  ClosedError,
  ConnectionError,
  createFlexiDB,
  FlexiDBService,
  TenantSuspendedError,
  UnknownDatabaseError
} from "../src/index.js"
import * as prisma7 from "./fixtures/prisma7/clients.ts"
import { createDatabase, PG_HOST, uniqueName } from "./support/databases.js"
import type { TestDatabase } from "./support/databases.js"
import { until } from "./support/effect.js"
import { startPgBouncer } from "./support/pgbouncer.js"
import { FaultProxy } from "./support/proxy.js"

type Client = ReturnType<typeof prisma7.postgresql>
const pgServer = `postgresql://postgres@${PG_HOST}/postgres`
const servers = { main: pgServer }
let catalogDb: TestDatabase
let template: TestDatabase
let templateName: string
let catalog: Catalog
const made: Array<string> = []

beforeAll(async () => {
  ;[catalogDb, template] = await Promise.all([createDatabase("postgresql"), createDatabase("postgresql")])
  templateName = new URL(template.url).pathname.slice(1)
  // When each row was written, by the server's clock: the fence is judged by it.
  const t = new pg.Client({ connectionString: template.url })
  await t.connect()
  await t.query(`ALTER TABLE "User" ADD COLUMN at timestamptz NOT NULL DEFAULT clock_timestamp()`)
  await t.end()
  catalog = await openCatalog({ url: catalogDb.url, servers })
}, 60_000)
afterAll(async () => {
  const a = new pg.Client({ connectionString: pgServer })
  await a.connect()
  for (const name of made) await a.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined)
  await a.end()
  await catalog?.close()
  await Promise.all([catalogDb?.drop(), template?.drop()])
}, 60_000)

const newTenant = async () => {
  const name = uniqueName("fl").replace(/^flexidb_/, "ft_")
  made.push(name)
  await catalog.create(name, { server: "main", template: templateName })
  return name
}

const app = (extra: { listen?: boolean; url?: string; log?: Array<string>; pollInterval?: `${number} seconds` | `${number} hour` } = {}) =>
  createFlexiDB({}, {
    gracefulShutdown: false,
    retry: { attempts: 0 },
    logger: { warn: (line: string) => extra.log?.push(line) },
    tenants: {
      catalog: { url: extra.url ?? catalogDb.url, servers, listen: extra.listen ?? true, pollInterval: extra.pollInterval ?? "5 seconds" },
      client: (url) => prisma7.postgresql(url) as Client,
      maxClients: 4
    }
  })

/** Real time, bounded: for a change to arrive by notification (milliseconds when it works). */
const eventually = async (check: () => Promise<boolean>, ms = 10_000) => {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`not reached within ${ms} ms`)
}
const outcome = (p: Promise<unknown>) => p.then(() => "ok", (e: unknown) => (e as { _tag?: string })._tag ?? String(e))

describe("an app following the catalog", () => {
  it("opens what the catalog says; suspend → TenantSuspendedError, resume → a new client, remove → UnknownDatabaseError", async () => {
    const name = await newTenant()
    const log: Array<string> = []
    const db = app({ log })
    try {
      const first = await db.tenant(name)
      await first.user.create({ data: { email: "a@x.io" } })
      expect(db.tenantStats()).toMatchObject({ resident: 1, misses: 1 })
      // Not in the catalog: refused before a slot or a client.
      await expect(db.tenant("nosuch")).rejects.toBeInstanceOf(UnknownDatabaseError)
      expect(db.tenantStats()).toMatchObject({ resident: 1, resolveFailures: 1 })

      await catalog.suspend(name)
      await eventually(async () => (await outcome(db.tenant(name))) === "TenantSuspendedError")
      expect(db.list()).not.toContain(name)
      const refused = await db.tenant(name).catch((e: unknown) => e)
      expect(refused).toBeInstanceOf(TenantSuspendedError)
      expect((refused as TenantSuspendedError).code).toBe("FLEXIDB_TENANT_SUSPENDED")

      await catalog.resume(name)
      await eventually(async () => (await outcome(db.tenant(name))) === "ok")
      const second = await db.tenant(name)
      expect(second).not.toBe(first)
      expect(await second.user.count()).toBe(1)

      await catalog.remove(name)
      await eventually(async () => (await outcome(db.tenant(name))) === "UnknownDatabaseError")
      expect(log).toEqual([])
    } finally {
      await db.disconnect()
    }
  }, 60_000)

  it("a process that has not heard of a suspension yet: the fence's refusal is a TenantSuspendedError, and the process learns the row", async () => {
    const name = await newTenant()
    const db = app({ listen: false, pollInterval: "1 hour" }) // it hears of nothing by itself
    try {
      const client = await db.tenant(name)
      await client.user.create({ data: { email: "before@x.io" } })
      await catalog.suspend(name)
      // The suspension terminated the pool's sessions: a call may first meet its dead connection (a driver error,
      // the call's outcome unknown); a call on a new connection is refused by the closed database.
      const seen: Array<string> = []
      let refusal: unknown
      for (let i = 0; i < 5 && seen.at(-1) !== "TenantSuspendedError"; i++) {
        seen.push(await outcome(client.user.create({ data: { email: `after${i}@x.io` } }).catch((e: unknown) => {
          refusal = e
          throw e
        })))
      }
      expect(seen.at(-1)).toBe("TenantSuspendedError")
      expect(seen.filter((s) => /P2039|55000|accepting connections/.test(s))).toEqual([])
      // It says the database refused the call (the refusal is its cause), not that nothing was sent.
      expect((refusal as TenantSuspendedError).cause).toBeDefined()
      expect((refusal as Error).message).toMatch(/is suspended: its database's fence refused the call, which did not run/)
      expect((refusal as TenantSuspendedError).outcomeUnknown).toBe(false)
      // The process applied the row it read: the next call is refused at once, without waiting for a poll.
      const local = await db.tenant(name).then(() => undefined, (e: unknown) => e)
      expect(local).toBeInstanceOf(TenantSuspendedError)
      expect((local as TenantSuspendedError).cause).toBeUndefined()
      expect((local as Error).message).toMatch(/is suspended: nothing was sent/)
    } finally {
      await db.disconnect()
    }
  }, 60_000)

  it("a call the fence refuses before the suspension's row commits waits for the row: a TenantSuspendedError, not Prisma's P2039", async () => {
    const name = await newTenant()
    const db = app({ listen: false, pollInterval: "1 hour" })
    const admin = new pg.Client({ connectionString: pgServer })
    await admin.connect()
    const write = (client: Client, email: string) => {
      const started = Date.now()
      return client.user.create({ data: { email } }).then(
        () => ({ outcome: "ok", ms: Date.now() - started }),
        (e: unknown) => ({
          outcome: e instanceof TenantSuspendedError
            ? `TenantSuspendedError${e.cause === undefined ? "" : " with cause"}`
            : /is not currently accepting connections/.test(String((e as Error).message))
            ? "the database's refusal"
            : String((e as { _tag?: string })._tag ?? (e as { code?: string }).code ?? e),
          ms: Date.now() - started
        })
      )
    }
    try {
      const client = await db.tenant(name)
      await client.user.create({ data: { email: "before@x.io" } })
      // What suspend() does first, by hand, and its row never changed: the database closed, its sessions ended.
      await admin.query(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS false`)
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, [name])
      // A call may first meet a dead connection (the driver's error, at once); the refused one waits for a row that
      // never comes, then is Prisma's refusal: the database is closed, and the catalog says nothing of why.
      let refused: { outcome: string; ms: number } | undefined
      for (let i = 0; i < 5 && refused === undefined; i++) {
        const r = await write(client, `unexplained${i}@x.io`)
        if (r.outcome === "the database's refusal") refused = r
      }
      expect(refused?.ms).toBeGreaterThanOrEqual(fenceAheadMs - 50)
      // Now the suspension's row commits while a refused call waits for it.
      const waiting = write(client, "explained@x.io")
      await catalog.suspend(name)
      expect((await waiting).outcome).toBe("TenantSuspendedError with cause")
      await expect(db.tenant(name)).rejects.toBeInstanceOf(TenantSuspendedError)
    } finally {
      await admin.end()
      await db.disconnect()
    }
  }, 60_000)

  it("schema and file tenants: client(url, info) gets the server's URL and the location; each serves its own data", async () => {
    const schemaDb = await createDatabase("postgresql")
    const dir = mkdtempSync(join(tmpdir(), "flexidb-fleet-"))
    const t = new Database(join(dir, "template.db"))
    t.exec(`CREATE TABLE "User" (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, name TEXT)`)
    t.close()
    const more = { ...servers, shared: schemaDb.url, files: `file:${dir}` }
    const wide = await openCatalog({ url: catalogDb.url, servers: more, migrations: join(import.meta.dirname, "fixtures", "migrations", "postgresql") })
    const seen: Array<unknown> = []
    const db = createFlexiDB({}, {
      gracefulShutdown: false,
      tenants: {
        catalog: { url: catalogDb.url, servers: more },
        client: (url, info) => {
          seen.push({ url, ...info })
          return (info.kind === "file"
            ? prisma7.sqlite(url.replace(/^file:/, ""))
            : new prisma7.PostgresClient({ adapter: new PrismaPg({ connectionString: url }, { schema: info.location }) })) as Client
        }
      }
    })
    const [s, f] = [uniqueName("fs").replace(/^flexidb_/, "fs_"), uniqueName("ff").replace(/^flexidb_/, "ff_")]
    try {
      await wide.create(s, { server: "shared", kind: "schema" })
      await wide.create(f, { server: "files", template: "template.db" })
      await (await db.tenant(s)).user.create({ data: { email: "s@x.io" } })
      await (await db.tenant(f)).user.create({ data: { email: "f@x.io" } })
      expect(seen).toEqual([
        { url: schemaDb.url, name: s, server: "shared", kind: "schema", location: s, epoch: 1, connectionLimit: undefined },
        { url: `file:${dir}/${f}.db`, name: f, server: "files", kind: "file", location: `${f}.db`, epoch: 1, connectionLimit: undefined }
      ])
      const check = new pg.Client({ connectionString: schemaDb.url })
      await check.connect()
      expect((await check.query(`SELECT email FROM "${s}"."User"`)).rows).toEqual([{ email: "s@x.io" }])
      await check.end()
      await wide.suspend(f)
      await eventually(async () => (await outcome(db.tenant(f))) === "TenantSuspendedError")
    } finally {
      await db.disconnect()
      await wide.remove(s, { drop: true }).catch(() => undefined)
      await wide.remove(f, { drop: true }).catch(() => undefined)
      await wide.close()
      await schemaDb.drop()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)

  it("a MariaDB tenant: built by the migrator, opened at its URL, suspended for the app and in the engine", async () => {
    const maria = { maria: "mysql://root@127.0.0.1:3306/" }
    const wide = await openCatalog({ url: catalogDb.url, servers: maria, migrations: join(import.meta.dirname, "fixtures", "migrations", "mysql") })
    const name = uniqueName("fm").replace(/^flexidb_/, "fm_")
    const db = createFlexiDB({}, {
      gracefulShutdown: false,
      retry: { attempts: 0 },
      tenants: { catalog: { url: catalogDb.url, servers: maria }, client: (url) => prisma7.mysql(url) as unknown as Client }
    })
    try {
      expect(await wide.create(name, { server: "maria" })).toMatchObject({ kind: "database", location: name })
      await (await db.tenant(name)).user.create({ data: { email: "m@x.io" } })
      await wide.suspend(name)
      await eventually(async () => (await outcome(db.tenant(name))) === "TenantSuspendedError")
      await wide.resume(name)
      await eventually(async () => (await outcome(db.tenant(name))) === "ok")
      expect(await (await db.tenant(name)).user.count()).toBe(1)
    } finally {
      await db.disconnect()
      await wide.remove(name, { drop: true }).catch(() => undefined)
      await wide.close()
    }
  }, 60_000)

  it("a leased tenant whose epoch changed refuses writes at once and closes when its lease ends", async () => {
    const name = await newTenant()
    const db = app()
    try {
      let release!: () => void
      const held = new Promise<void>((r) => (release = r))
      let inside!: Client
      const lease = db.withTenant(name, async (c) => {
        inside = c
        await held
      })
      await eventually(async () => inside !== undefined)
      await catalog.suspend(name)
      await catalog.resume(name) // the same place, a new epoch: reopened on next use
      await eventually(async () => !db.tenantStats().resident)
      // Still registered for the lease, but writes are refused.
      await expect(inside.user.create({ data: { email: "held@x.io" } })).rejects.toThrow()
      expect(db.list()).toContain(name)
      release()
      await lease
      await eventually(async () => (await outcome(db.tenant(name).then((c) => c.user.create({ data: { email: "new@x.io" } })))) === "ok")
    } finally {
      await db.disconnect()
    }
  }, 60_000)

  it("a leased tenant suspended or removed takes no new operation, reads included, and closes when its lease ends", async () => {
    // A SQLite file tenant: its fence parks the file, and a connection opened before still reads the parked file, so
    // only the app refuses. A PostgreSQL database tenant: refused by the app (ClosedError), not by a dropped socket.
    const dir = mkdtempSync(join(tmpdir(), "flexidb-fleet-"))
    const t = new Database(join(dir, "template.db"))
    t.exec(`CREATE TABLE "User" (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, name TEXT)`)
    t.close()
    const more = { ...servers, files: `file:${dir}` }
    const wide = await openCatalog({ url: catalogDb.url, servers: more })
    const db = createFlexiDB({}, {
      gracefulShutdown: false,
      retry: { attempts: 0 },
      tenants: {
        catalog: { url: catalogDb.url, servers: more },
        client: (url, info) => (info.kind === "file" ? prisma7.sqlite(url.replace(/^file:/, "")) : prisma7.postgresql(url)) as Client
      }
    })
    const file = uniqueName("fl").replace(/^flexidb_/, "fl_")
    try {
      await wide.create(file, { server: "files", template: "template.db" })
      const database = await newTenant()
      for (const [name, change] of [[file, "suspend"], [database, "remove"]] as const) {
        let release!: () => void
        const held = new Promise<void>((r) => (release = r))
        let inside: Client | undefined
        const lease = db.withTenant(name, async (c) => {
          await c.user.create({ data: { email: "in@x.io" } })
          inside = c
          await held
        })
        await eventually(async () => inside !== undefined)
        if (change === "suspend") await wide.suspend(name)
        else await wide.remove(name)
        await eventually(async () => db.tenantStats().resident === 0)
        // The lease is still open and its client still registered, but nothing new goes through it: not even a read.
        expect(db.list()).toContain(name)
        expect(await inside!.user.count().catch((e: unknown) => e)).toBeInstanceOf(ClosedError)
        // A write is refused before that, as under preventWrites: not sent either.
        const write = await inside!.user.create({ data: { email: "late@x.io" } }).catch((e: unknown) => e)
        expect(["ReadOnlyError", "ClosedError"]).toContain((write as { _tag?: string })._tag)
        expect((write as { outcomeUnknown?: boolean }).outcomeUnknown).toBe(false)
        release()
        await lease
        await eventually(async () => !db.list().includes(name))
      }
      await expect(db.tenant(file)).rejects.toBeInstanceOf(TenantSuspendedError)
      await expect(db.tenant(database)).rejects.toBeInstanceOf(UnknownDatabaseError)
    } finally {
      await db.disconnect()
      await wide.remove(file, { drop: true }).catch(() => undefined)
      await wide.close()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)

  it("a LISTEN connection killed while a change is made: it reconnects and resynchronises by epoch (polling hourly)", async () => {
    const name = await newTenant()
    const db = app({ pollInterval: "1 hour" })
    const admin = new pg.Client({ connectionString: pgServer })
    await admin.connect()
    try {
      await (await db.tenant(name)).user.count()
      const catalogName = new URL(catalogDb.url).pathname.slice(1)
      const listening = `FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'`
      await eventually(async () => Number((await admin.query(`SELECT count(*) AS n ${listening}`, [catalogName])).rows[0].n) > 0)
      await admin.query(`SELECT pg_terminate_backend(pid) ${listening}`, [catalogName])
      await catalog.suspend(name)
      // Not by polling (hourly): by the resynchronisation after the LISTEN session is back.
      await eventually(async () => (await outcome(db.tenant(name))) === "TenantSuspendedError", 20_000)
      await catalog.resume(name)
      await eventually(async () => (await outcome(db.tenant(name))) === "ok", 20_000)
    } finally {
      await admin.end()
      await db.disconnect()
    }
  }, 60_000)

  it("the catalog goes away: resident tenants keep serving, a new one fails with ConnectionError, and opens once it is back", async () => {
    const [resident, later] = [await newTenant(), await newTenant()]
    const proxy = await FaultProxy.start(Number(PG_HOST.split(":")[1]))
    const u = new URL(catalogDb.url)
    u.port = String(proxy.port)
    const db = app({ url: u.toString() })
    try {
      await (await db.tenant(resident)).user.create({ data: { email: "a@x.io" } })
      proxy.dropAll()
      await proxy.refuse()
      expect(await (await db.tenant(resident)).user.count()).toBe(1)
      await expect(db.tenant(later)).rejects.toBeInstanceOf(ConnectionError)
      expect(await (await db.tenant(resident)).user.count()).toBe(1)
      await proxy.restore()
      await eventually(async () => (await outcome(db.tenant(later))) === "ok")
    } finally {
      await db.disconnect()
      await proxy.close()
    }
  }, 60_000)

  it("a catalog that cannot be reached at all: ConnectionError, no credential in it", async () => {
    const db = app({ url: "postgresql://u:hunter2@127.0.0.1:1/cat" })
    try {
      const error = await db.tenant("any").catch((e: unknown) => e)
      expect(error).toBeInstanceOf(ConnectionError)
      expect(JSON.stringify({ m: (error as Error).message, error })).not.toMatch(/hunter2/)
    } finally {
      await db.disconnect()
    }
  })

  it("behind PgBouncer in transaction mode, notifications never arrive: said once through the logger", async () => {
    const bouncer = await startPgBouncer(2, 4)
    const log: Array<string> = []
    const db = app({ url: bouncer.via(catalogDb.url), log })
    try {
      const name = await newTenant()
      await (await db.tenant(name)).user.count()
      await eventually(async () => log.length > 0)
      expect(log[0]).toMatch(/PgBouncer in transaction mode/)
      expect(log[0]).not.toMatch(/:\/\//)
    } finally {
      await db.disconnect()
      bouncer.stop()
    }
  }, 60_000)

  it("tenants' connections through PgBouncer in transaction pooling, the catalog's LISTEN direct: changes arrive, the fence holds", async () => {
    // A query waiting for a server connection is failed after 3 s (query_wait_timeout, default 120 s): a fenced
    // database lets none in. Refused logins are retried after 1 s (server_login_retry, default 15 s).
    const bouncer = await startPgBouncer(2, 8, { query_wait_timeout: 3, server_login_retry: 1 })
    const pooled = { main: bouncer.via(pgServer) }
    const log: Array<string> = []
    const through = (listen: boolean) =>
      createFlexiDB({}, {
        gracefulShutdown: false,
        retry: { attempts: 0 },
        logger: { warn: (line: string) => log.push(line) },
        tenants: {
          catalog: { url: catalogDb.url, servers: pooled, listen, pollInterval: "1 hour" },
          client: (url) => prisma7.postgresql(url) as Client
        }
      })
    const [db, deaf] = [through(true), through(false)]
    try {
      const name = await newTenant()
      await (await db.tenant(name)).user.create({ data: { email: "a@x.io" } })
      const kept = await deaf.tenant(name)
      await kept.user.create({ data: { email: "b@x.io" } })
      // The tenants' clients are PgBouncer's clients; the catalog's LISTEN session is not.
      expect(await bouncer.clients([name])).toBeGreaterThan(0)
      expect(await bouncer.clients([new URL(catalogDb.url).pathname.slice(1)])).toBe(0)

      await catalog.suspend(name)
      await eventually(async () => (await outcome(db.tenant(name))) === "TenantSuspendedError")
      // The deaf instance's client, opened before: PgBouncer's server connections were terminated and no new one is
      // let in, so its write waits for a server connection and is failed, never sent.
      await expect(kept.user.create({ data: { email: "c@x.io" } })).rejects.toThrow()
      await catalog.resume(name)
      await eventually(async () => (await outcome(db.tenant(name).then((c) => c.user.create({ data: { email: "d@x.io" } })))) === "ok", 30_000)
      expect(await (await db.tenant(name)).user.count()).toBe(3)
      // No word of notifications not arriving (a reopen refused while PgBouncer's login retry waits may be logged).
      expect(log.filter((l) => /notifications do not arrive/.test(l))).toEqual([])
    } finally {
      await Promise.all([db.disconnect(), deaf.disconnect()])
      bouncer.stop()
    }
  }, 90_000)
})

describe("polling (TestClock)", () => {
  effect.scoped("with LISTEN off, a suspend is applied at the next pollInterval, not before", () =>
    Effect.gen(function*() {
      const name = yield* Effect.promise(newTenant)
      const registry = yield* FlexiDBService.make({}, {
        gracefulShutdown: false,
        tenants: {
          catalog: { url: catalogDb.url, servers, listen: false, pollInterval: "5 seconds" },
          client: (url) => prisma7.postgresql(url) as Client
        }
      })
      yield* registry.tenant(name)
      expect((yield* registry.tenantStats).resident).toBe(1)
      yield* Effect.promise(() => catalog.suspend(name))
      yield* TestClock.adjust(4_999)
      expect((yield* registry.tenantStats).resident).toBe(1)
      yield* TestClock.adjust(1)
      yield* until(() => Effect.runSync(registry.tenantStats).resident === 0)
      const error = yield* Effect.flip(registry.tenant(name))
      expect(error).toBeInstanceOf(TenantSuspendedError)
    }), 30_000)
})

describe("a fleet of real processes", () => {
  it("8 instances (two with LISTEN off) write to a tenant; after suspend() resolves no write is accepted by any", async () => {
    const name = await newTenant()
    const modes = ["listen", "listen", "listen", "listen", "listen", "listen", "nolisten", "nolisten"] as const
    const listening = modes.filter((m) => m === "listen").length
    // Started together (each spawn returns at once): the slow part, tsx loading the app, runs in parallel.
    const children = modes.map((mode, i) => {
      const proc = spawn(process.execPath, [
        "--import",
        "tsx",
        join(import.meta.dirname, "support", "catalog-app.ts"),
        catalogDb.url,
        JSON.stringify(servers),
        name,
        mode,
        `i${i}`
      ], { stdio: ["ignore", "pipe", "inherit"] })
      const child = { proc, states: [] as Array<string>, attempts: 0 }
      let buffer = ""
      proc.stdout!.on("data", (d: Buffer) => {
        buffer += d.toString()
        const lines = buffer.split("\n")
        buffer = lines.pop()!
        for (const l of lines) {
          if (l.startsWith("state ")) child.states.push(l.slice(6))
          else if (l.startsWith("tick ")) child.attempts = Number(l.slice(5))
        }
      })
      return child
    })
    /** Resolves once every instance has made `n` more attempts (a barrier on their progress, not a sleep). */
    const moreAttempts = (n: number) => {
      const from = children.map((c) => c.attempts)
      return eventually(async () => children.every((c, i) => c.attempts >= from[i]! + n), 60_000)
    }
    const admin = new pg.Client({ connectionString: catalogDb.url })
    await admin.connect()
    try {
      await eventually(async () => children.every((c) => c.states.includes("ok")), 120_000)
      await catalog.suspend(name)
      // The server's clock (the same cluster): every write committed after this was accepted after suspend().
      const suspendedAt = (await admin.query(`SELECT clock_timestamp() AS t`)).rows[0].t as Date
      // The listening instances hear it and refuse; the deaf ones are stopped by the engine.
      await eventually(async () => children.slice(0, listening).every((c) => c.states.at(-1) === "TenantSuspendedError"), 30_000)
      await eventually(async () => children.slice(listening).every((c) => c.states.at(-1) !== "ok"), 30_000)
      // Every instance, the deaf ones included, keeps trying: 30 attempts more each.
      await moreAttempts(30)
      const resumedAt = (await admin.query(`SELECT clock_timestamp() AS t`)).rows[0].t as Date
      await catalog.resume(name)
      const t = new pg.Client({ connectionString: `postgresql://postgres@${PG_HOST}/${name}` })
      await t.connect()
      const { rows } = await t.query(
        `SELECT count(*) FILTER (WHERE at > $1 AND at < $2) AS during, count(*) FILTER (WHERE at <= $1) AS before,
           count(DISTINCT split_part(email, '-', 1)) FILTER (WHERE at <= $1) AS writers FROM "User"`,
        [suspendedAt, resumedAt]
      )
      await t.end()
      expect(Number(rows[0].during)).toBe(0)
      expect(Number(rows[0].before)).toBeGreaterThan(0)
      expect(Number(rows[0].writers)).toBe(8)
      // After resume, the listening instances write again.
      await eventually(async () => children.slice(0, listening).every((c) => c.states.at(-1) === "ok"), 30_000)
    } finally {
      await admin.end()
      for (const c of children) c.proc.kill("SIGTERM")
      await Promise.all(children.map((c) => new Promise((r) => (c.proc.exitCode !== null ? r(null) : c.proc.once("exit", r)))))
    }
  }, 240_000)
})
