// A database per tenant at scale: single-flight opening, a bounded number of resident clients, leases that survive
// eviction pressure, idle expiry (TestClock), a connection budget counted on the real server, and tenant isolation.
import { it as effect } from "@effect/vitest"
import { PrismaBetterSqlite3 } from "@prisma/adapter-better-sqlite3"
import { PrismaPg } from "@prisma/adapter-pg"
import Database from "better-sqlite3"
import { Effect, Fiber, TestClock } from "effect"
import { copyFileSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { run as runChild } from "./support/run.js"
import {
  createFlexiDB,
  FlexiDBService,
  InvalidArgumentError,
  TenantCapacityError,
  TenantLockedError,
  UnknownDatabaseError
} from "../src/index.js"
import { PostgresClient } from "./fixtures/prisma7/clients.ts"
import * as prisma7 from "./fixtures/prisma7/clients.ts"
import { createDatabase, PG_HOST } from "./support/databases.js"
import type { TestDatabase } from "./support/databases.js"
import { until } from "./support/effect.js"
import { startPgBouncer } from "./support/pgbouncer.js"
import type { PgBouncer } from "./support/pgbouncer.js"

const base = { gracefulShutdown: false } as const
type Sqlite = ReturnType<typeof prisma7.sqlite>

// SQLite tenants: one file each, copied from a template with the fixture tables.
const dir = mkdtempSync(join(tmpdir(), "flexidb-tenants-"))
const template = join(dir, "template.db")
beforeAll(() => {
  const t = new Database(template)
  t.exec(`CREATE TABLE "User" (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, name TEXT)`)
  t.exec(`CREATE TABLE "Post" (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL, authorId INTEGER NOT NULL)`)
  t.close()
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const sqliteTenant = (name: string) => {
  const file = join(dir, `${name}.db`)
  try {
    copyFileSync(template, file, 1 /* COPYFILE_EXCL: keep an existing tenant's data */)
  } catch {
    // the tenant exists
  }
  return prisma7.sqlite(file)
}

describe("opening tenants", () => {
  it("50 concurrent tenant('t1') resolve it once and share one client; get() serves it once resident", async () => {
    let resolves = 0
    const flexi = createFlexiDB({}, {
      ...base,
      tenants: {
        resolve: async (name) => {
          resolves++
          await new Promise((r) => setTimeout(r, 20))
          return sqliteTenant(name)
        }
      }
    })
    const clients = await Promise.all(Array.from({ length: 50 }, () => flexi.tenant("t1")))
    expect(resolves).toBe(1)
    expect(new Set(clients).size).toBe(1)
    expect(await clients[0]!.user.count()).toBe(0)
    expect(flexi.get("t1" as never)).toBe(clients[0])
    expect(flexi.stats().t1!.connected).toBe(true)
    expect(flexi.tenantStats()).toMatchObject({ resident: 1, misses: 1 })
    await flexi.disconnect()
  })

  it("a bad name is refused before resolve is called; no such tenant and a failing resolve leave nothing behind", async () => {
    const asked: Array<string> = []
    const flexi = createFlexiDB({}, {
      ...base,
      tenants: {
        resolve: (name) => {
          asked.push(name)
          if (name === "boom") throw new Error("directory unavailable")
          return name === "ghost" ? undefined : sqliteTenant(name)
        }
      }
    })
    for (const bad of ["", "../etc", "a/b", "a'b", 'a"b', "a b", "a%2Fb", "a?x=1", "a@host", "x".repeat(129), "é"]) {
      await expect(flexi.tenant(bad)).rejects.toBeInstanceOf(InvalidArgumentError)
    }
    expect(asked).toEqual([])
    await expect(flexi.tenant("ghost")).rejects.toBeInstanceOf(UnknownDatabaseError)
    await expect(flexi.tenant("boom")).rejects.toThrow("directory unavailable")
    expect(flexi.list()).toEqual([])
    expect(flexi.tenantStats()).toMatchObject({ resident: 0, resolveFailures: 2 })
    // It is asked again next time: a failure is not cached.
    await expect(flexi.tenant("boom")).rejects.toThrow("directory unavailable")
    expect(asked).toEqual(["ghost", "boom", "boom"])
    await flexi.disconnect()
  })

  it("needs the tenants option, said plainly", async () => {
    const flexi = createFlexiDB({}, base)
    await expect(flexi.tenant("a")).rejects.toThrow("tenant() needs the tenants option")
    await flexi.disconnect()
  })
})

describe("bounded", () => {
  it("500 tenants touched with maxClients 20: never more than 20 open, every query succeeds", async () => {
    let open = 0
    let most = 0
    const flexi = createFlexiDB({ main: sqliteTenant("static-main") }, {
      ...base,
      hooks: {
        onConnect: (name, m) => {
          if (name !== "main" && m.role === "write") most = Math.max(most, ++open)
        },
        onDisconnect: (name) => {
          if (name !== "main") open--
        }
      },
      tenants: { resolve: (name) => sqliteTenant(name), maxClients: 20 }
    })
    for (let i = 0; i < 500; i++) {
      const client = await flexi.tenant(`t${i}`)
      await client.user.create({ data: { email: `u${i}@x.io` } })
      expect(flexi.tenantStats().resident).toBeLessThanOrEqual(20)
    }
    expect(most).toBeLessThanOrEqual(20)
    expect(flexi.tenantStats()).toMatchObject({ resident: 20, misses: 500, evictions: 480 })
    // Evicted tenants come back transparently, with their data; the static database was never evicted.
    expect(await (await flexi.tenant("t3")).user.count()).toBe(1)
    expect(flexi.list()).toContain("main")
    await flexi.disconnect()
  }, 120_000)

  it("a leased tenant survives heavy eviction pressure and its queries keep working", async () => {
    const flexi = createFlexiDB({}, { ...base, tenants: { resolve: (name) => sqliteTenant(name), maxClients: 3 } })
    const result = await flexi.withTenant("kept", async (client) => {
      for (let i = 0; i < 30; i++) {
        await (await flexi.tenant(`other${i}`)).user.count()
        await client.user.count()
      }
      expect(flexi.tenantStats().leased).toBe(1)
      return client.user.count()
    })
    expect(result).toBe(0)
    expect(flexi.list()).toContain("kept")
    await flexi.disconnect()
  })

  it("a closed tenant is let go: its client is collected, and no live fiber keeps history of it", async () => {
    // Two leaks this found: a closed tenant's idle timer slept on (holding the tenant) until its idleTimeout, and each
    // tenant's fibers inherited the FiberRefs history of the load that closed the one before (one entry per eviction).
    setFlagsFromString("--expose-gc")
    const gc = runInNewContext("gc") as () => void
    const made: Array<WeakRef<object>> = []
    const flexi = createFlexiDB({}, {
      ...base,
      tenants: {
        resolve: (name) => {
          const client = sqliteTenant(name)
          made.push(new WeakRef(client))
          return client
        },
        maxClients: 5
      }
    })
    for (let i = 0; i < 200; i++) await (await flexi.tenant(`gc${i}`)).user.count()
    expect(flexi.tenantStats()).toMatchObject({ resident: 5, evictions: 195 })
    await new Promise((resolve) => setTimeout(resolve, 10))
    gc()
    expect(made.filter((ref) => ref.deref() !== undefined).length).toBeLessThanOrEqual(5)
    // The live fibers (the open tenants' own) carry a few entries of FiberRefs history each, not one per eviction
    // (`locals` is FiberRefs' own record of it: fiber id and value per ancestor that set a FiberRef).
    const depths = Fiber.unsafeRoots().flatMap((fiber) =>
      [...(fiber.getFiberRefs() as unknown as { locals: Map<unknown, Array<unknown>> }).locals.values()].map((s) => s.length)
    )
    expect(depths.length).toBeGreaterThan(0)
    expect(Math.max(...depths)).toBeLessThan(10)
    await flexi.disconnect()
  })

  it("bench:tenants, short: 1,200 tenants through maxClients 200 keep the heap flat after 200 (its own assertions)", async () => {
    // The same script as `npm run bench:tenants` (10,000 tenants), fewer tenants; it exits 1 when memory grows.
    const run = await runChild(process.execPath, ["--expose-gc", "--import", "tsx", "bench/tenants.ts", "--tenants", "1200", "--write", "no"], {
      cwd: join(import.meta.dirname, "..")
    })
    expect(run.stderr).not.toContain("FAILED")
    expect(run.stdout).toContain("1,200 tenants touched (flexidb)")
    expect(run.status).toBe(0)
  }, 180_000)

  it("unregister() of a tenant works, and the name opens again on next use", async () => {
    const flexi = createFlexiDB({}, { ...base, tenants: { resolve: (name) => sqliteTenant(name) } })
    await flexi.tenant("gone")
    await flexi.unregister("gone")
    expect(flexi.tenantStats().resident).toBe(0)
    expect(await (await flexi.tenant("gone")).user.count()).toBe(0)
    await flexi.disconnect()
  })
})

describe("isolation", () => {
  it("withTenant() makes the tenant current; entering another inside is refused unless nested", async () => {
    const flexi = createFlexiDB({}, { ...base, tenants: { resolve: (name) => sqliteTenant(name) } })
    await flexi.withTenant("acme", async (client) => {
      expect(flexi.currentTenant()).toEqual({ name: "acme", client })
      await expect(flexi.withTenant("globex", () => 1)).rejects.toBeInstanceOf(TenantLockedError)
      await expect(flexi.withTenant("globex", () => 1)).rejects.toThrow("Cannot enter tenant 'globex' inside tenant 'acme'")
      expect(await flexi.withTenant("acme", () => "same tenant")).toBe("same tenant")
      expect(await flexi.withTenant("globex", () => flexi.currentTenant()!.name, { nested: true })).toBe("globex")
      expect(flexi.currentTenant()!.name).toBe("acme")
    })
    expect(flexi.currentTenant()).toBeUndefined()
    await flexi.disconnect()
  })
})

describe("time (TestClock)", () => {
  effect.scoped("an idle tenant is closed after idleTimeout, not before", () =>
    Effect.gen(function*() {
      const closed: Array<string> = []
      const registry = yield* FlexiDBService.make({}, {
        ...base,
        hooks: { onDisconnect: (name) => closed.push(name) },
        tenants: { resolve: (name) => sqliteTenant(`idle-${name}`), idleTimeout: "1 minute" }
      })
      yield* registry.tenant("a")
      yield* TestClock.adjust(59_999)
      expect(closed).toEqual([])
      expect((yield* registry.tenantStats).resident).toBe(1)
      yield* TestClock.adjust(1)
      yield* until(() => closed.length === 1)
      expect(closed).toEqual(["a"])
      expect(yield* registry.tenantStats).toMatchObject({ resident: 0, evictions: 1 })
    }))

  effect.scoped("when every slot stays busy, a new tenant fails with TenantCapacityError exactly at acquireTimeout", () =>
    Effect.gen(function*() {
      const registry = yield* FlexiDBService.make({}, {
        ...base,
        tenants: { resolve: (name) => sqliteTenant(`busy-${name}`), maxClients: 1, acquireTimeout: "2 seconds" }
      })
      const hold = yield* Effect.fork(registry.withTenant("holder", () => Effect.never))
      yield* until(() => Effect.runSync(registry.tenantStats).leased === 1)
      const waiting = yield* Effect.fork(Effect.flip(registry.tenant("late")))
      yield* TestClock.adjust(1_999)
      yield* until(() => Effect.runSync(registry.tenantStats).waiting === 1)
      expect(waiting.unsafePoll()).toBeNull()
      yield* TestClock.adjust(1)
      const error = yield* Fiber.join(waiting)
      expect(error).toBeInstanceOf(TenantCapacityError)
      expect(error).toMatchObject({ code: "FLEXIDB_TENANT_CAPACITY", tenant: "late", maxClients: 1 })
      yield* Fiber.interrupt(hold)
      // The slot is free again: the late tenant opens.
      expect(yield* registry.tenant("late")).toBeDefined()
    }))
})

/** Samples a count until stopped; resolves the most it saw. */
const sampling = (count: () => Promise<number>) => {
  let on = true
  let most = 0
  const done = (async () => {
    while (on) {
      most = Math.max(most, await count())
      await new Promise((r) => setTimeout(r, 5))
    }
  })()
  return async () => {
    on = false
    await done
    return most
  }
}

// The PostgreSQL parts run twice: straight to the server, and through PgBouncer in transaction pooling mode (one
// pooler shared by many app processes is how a fleet keeps within the server's max_connections).
describe.each([
  { via: "the server", pooler: undefined },
  { via: "PgBouncer (transaction pooling)", pooler: { poolSize: 2, serverConnections: 4 } }
])("a connection budget on PostgreSQL, through $via", ({ pooler }) => {
  const dbs: Array<TestDatabase> = []
  let bouncer: PgBouncer | undefined
  beforeAll(async () => {
    if (pooler) bouncer = await startPgBouncer(pooler.poolSize, pooler.serverConnections)
  })
  afterAll(async () => {
    bouncer?.stop()
    await Promise.all(dbs.map((d) => d.drop()))
  })
  const url = (u: string) => (bouncer ? bouncer.via(u) : u)

  it("40 tenant databases hammered with maxConnections 8, connectionLimit 2: never more than 8 connections", async () => {
    for (let i = 0; i < 40; i++) dbs.push(await createDatabase("postgresql"))
    const byName = new Map(dbs.map((d, i) => [`pg${i}`, d]))
    const names = dbs.map((d) => new URL(d.url).pathname.slice(1))
    const flexi = createFlexiDB({}, {
      ...base,
      tenants: {
        resolve: (name, { connectionLimit }) =>
          new PostgresClient({ adapter: new PrismaPg({ connectionString: url(byName.get(name)!.url), max: connectionLimit }) }),
        maxConnections: 8,
        connectionLimit: 2,
        acquireTimeout: "30 seconds"
      }
    })
    const admin = new pg.Client({ connectionString: `postgresql://postgres@${PG_HOST}/postgres` })
    await admin.connect()
    // Straight to the server, its own count. Through the pooler, PgBouncer's: a server connection PgBouncer has just
    // closed (to open one for another database within its limit) stays in pg_stat_activity until its backend exits.
    const server = sampling(async () =>
      bouncer
        ? bouncer.servers(names)
        : (await admin.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ANY($1)", [names])).rows[0].n
    )
    // Through the pooler, flexidb's budget is on the connections to PgBouncer.
    const clients = bouncer ? sampling(() => bouncer!.clients(names)) : undefined
    const before = bouncer ? await bouncer.transactions() : 0
    let ok = 0
    let most = 0
    let mostClients = 0
    try {
      await Promise.all(Array.from({ length: 16 }, async (_, w) => {
        for (let i = 0; i < 20; i++) {
          const name = `pg${(w * 7 + i * 3) % 40}`
          await flexi.withTenant(name, (c) => c.user.count())
          ok++
        }
      }))
    } finally {
      most = await server()
      mostClients = clients ? await clients() : 0
      await admin.end()
    }
    expect(ok).toBe(320)
    expect(most).toBeGreaterThan(0)
    expect(most).toBeLessThanOrEqual(pooler ? pooler.serverConnections : 8)
    if (bouncer) {
      expect(mostClients).toBeGreaterThan(0)
      expect(mostClients).toBeLessThanOrEqual(8)
      // Every query went through the pooler.
      expect((await bouncer.transactions()) - before).toBeGreaterThanOrEqual(320)
    }
    expect(flexi.tenantStats().resident).toBeLessThanOrEqual(4)
    await flexi.disconnect()
  }, 120_000)
})

describe.each([
  { via: "the server", pooled: false },
  { via: "PgBouncer (transaction pooling)", pooled: true }
])("schema per tenant on one pool (PostgreSQL), through $via", ({ pooled }) => {
  it("1,000 schema tenants share one pool of 5 connections: never more than 5, each query in its own schema", async () => {
    const db = await createDatabase("postgresql")
    const bouncer = pooled ? await startPgBouncer(5, 5) : undefined
    const database = new URL(db.url).pathname.slice(1)
    // One migration script, applied to every tenant's schema.
    const migration = (schema: string) =>
      `CREATE SCHEMA "${schema}"; CREATE TABLE "${schema}"."User" (id SERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT);`
    const setup = new pg.Client({ connectionString: db.url })
    await setup.connect()
    const names = Array.from({ length: 1000 }, (_, i) => `tenant_${i}`)
    for (let i = 0; i < names.length; i += 100) await setup.query(names.slice(i, i + 100).map(migration).join("\n"))
    const pool = new pg.Pool({ connectionString: bouncer ? bouncer.via(db.url) : db.url, max: 5 })
    pool.setMaxListeners(0) // one "error" listener per open tenant: more than Node's default warning threshold
    const flexi = createFlexiDB({}, {
      ...base,
      tenants: {
        resolve: (name) => new PostgresClient({ adapter: new PrismaPg(pool, { schema: name }) }),
        maxClients: 100
      }
    })
    const connections = sampling(async () => {
      const { rows } = await setup.query(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        [database]
      )
      return Math.max(rows[0].n, pool.totalCount)
    })
    await Promise.all(Array.from({ length: 10 }, async (_, w) => {
      for (let i = w; i < names.length; i += 10) {
        await flexi.withTenant(names[i]!, (c) => c.user.create({ data: { email: `${names[i]}@x.io` } }))
      }
    }))
    const most = await connections()
    expect(most).toBeGreaterThan(0)
    expect(most).toBeLessThanOrEqual(5)
    expect(flexi.tenantStats()).toMatchObject({ resident: 100, evictions: 900 })
    // Evicting 900 tenants left the shared pool open: an evicted tenant comes back through it.
    expect(await (await flexi.tenant("tenant_7")).user.findMany({ select: { email: true } })).toEqual([{ email: "tenant_7@x.io" }])
    // Every row is in its own tenant's schema, and only there.
    const counts = await setup.query(names.map((n) => `SELECT '${n}' AS t, email FROM "${n}"."User"`).join(" UNION ALL "))
    expect(counts.rows).toHaveLength(1000)
    expect(counts.rows.every((r: { t: string; email: string }) => r.email === `${r.t}@x.io`)).toBe(true)
    if (bouncer) expect(await bouncer.transactions()).toBeGreaterThanOrEqual(1000)
    // Each open tenant's adapter listens on the shared pool; a closed tenant leaves no listener behind.
    expect(pool.listenerCount("error")).toBe(flexi.tenantStats().resident)
    await flexi.disconnect()
    await pool.end()
    bouncer?.stop()
    await setup.end()
    await db.drop()
  }, 120_000)
})

describe("a MariaDB tenant", () => {
  it("opens, serves, is evicted to make room, and opens again with its data", async () => {
    const dbs = [await createDatabase("mysql"), await createDatabase("mysql")]
    const urls = new Map([["m0", dbs[0]!.url], ["m1", dbs[1]!.url]])
    const flexi = createFlexiDB({}, {
      ...base,
      tenants: { resolve: (name) => prisma7.mysql(urls.get(name)!) as unknown as Sqlite, maxClients: 1 }
    })
    await (await flexi.tenant("m0")).user.create({ data: { email: "kept@x.io" } })
    await (await flexi.tenant("m1")).user.count()
    expect(flexi.list()).toEqual(["m1"])
    expect(await (await flexi.tenant("m0")).user.count()).toBe(1)
    expect(flexi.tenantStats()).toMatchObject({ evictions: 2, resident: 1 })
    await flexi.disconnect()
    await Promise.all(dbs.map((d) => d.drop()))
  })
})

// Issue #27: random names must cost nothing — no slot, no client, no reconnect loop, no "down" line — and a tenant
// whose database the server says does not exist is refused the same way, without the server's database name.
describe("unknown tenants are refused before they cost anything", () => {
  /** Everything an unknown tenant could leave behind: log lines, hook calls. */
  const watched = () => {
    const lines: Array<string> = []
    const events: Array<string> = []
    return {
      lines,
      events,
      options: {
        logger: { warn: (line: string) => lines.push(line) },
        reconnect: { interval: 20 },
        hooks: {
          onConnect: (name: string) => events.push(`connect:${name}`),
          onError: (name: string) => events.push(`error:${name}`),
          onRetry: (name: string) => events.push(`retry:${name}`)
        }
      }
    }
  }

  it("PostgreSQL with exists(): 300 random names never resolve, evict or log; the real tenants stay resident", async () => {
    const dbs = [await createDatabase("postgresql"), await createDatabase("postgresql"), await createDatabase("postgresql")]
    const urls = new Map(dbs.map((d, i) => [`real${i}`, d.url]))
    const resolved: Array<string> = []
    const w = watched()
    const flexi = createFlexiDB({}, {
      ...base,
      ...w.options,
      tenants: {
        exists: async (name) => urls.has(name),
        resolve: (name) => {
          resolved.push(name)
          return prisma7.postgresql(urls.get(name)!)
        },
        maxClients: 3
      }
    })
    try {
      for (const name of urls.keys()) await (await flexi.tenant(name)).user.count()
      const refused = await Promise.all(
        Array.from({ length: 300 }, (_, i) => (i % 2 === 0 ? flexi.tenant(`nosuch${i}`) : flexi.withTenant(`nosuch${i}`, () => 1)).then(
          () => undefined,
          (e: unknown) => e
        ))
      )
      for (const e of refused) {
        expect(e).toBeInstanceOf(UnknownDatabaseError)
        expect((e as UnknownDatabaseError).message).toMatch(/^Unknown tenant 'nosuch\d+'/)
        expect((e as UnknownDatabaseError).message).not.toMatch(/register/)
      }
      expect(resolved.sort()).toEqual(["real0", "real1", "real2"])
      expect(flexi.list().sort()).toEqual(["real0", "real1", "real2"])
      expect(flexi.tenantStats()).toMatchObject({ resident: 3, evictions: 0, misses: 303, resolveFailures: 300 })
      // Still the same clients: nothing was reopened.
      for (const name of urls.keys()) expect(await (await flexi.tenant(name)).user.count()).toBe(0)
      expect(flexi.tenantStats()).toMatchObject({ misses: 303, hits: 3 })
      expect(w.lines).toEqual([])
      expect(w.events.filter((e) => !e.startsWith("connect:real"))).toEqual([])
    } finally {
      await flexi.disconnect()
      await Promise.all(dbs.map((d) => d.drop()))
    }
  }, 60_000)

  it.each([
    {
      engine: "PostgreSQL (3D000)",
      client: (db: string) => prisma7.postgresql(`postgresql://postgres@${PG_HOST}/${db}`)
    },
    {
      engine: "MariaDB (1049)",
      client: (db: string) => prisma7.mysql(`mysql://root@127.0.0.1:3306/${db}?connectTimeout=2000&acquireTimeout=1500`)
    },
    {
      engine: "SQLite (a missing file, fileMustExist)",
      client: (db: string) =>
        new prisma7.SqliteClient({ adapter: new PrismaBetterSqlite3({ url: `file:${join(dir, `${db}.db`)}`, fileMustExist: true }) })
    }
  ])("$engine: a tenant whose database does not exist is refused, not kept, not reconnected, its name unsaid", async ({ client }) => {
    const real = await createDatabase("postgresql")
    const w = watched()
    const made: Array<{ connects: number }> = []
    const flexi = createFlexiDB({}, {
      ...base,
      ...w.options,
      tenants: {
        // The server's database name is not the tenant's name: it must not reach the caller.
        resolve: (name) => {
          if (name === "real") return prisma7.postgresql(real.url) as unknown as Sqlite
          const c = client(`nc_t_${name}`)
          const seen = { connects: 0 }
          made.push(seen)
          const connect = c.$connect.bind(c)
          c.$connect = () => {
            seen.connects++
            return connect()
          }
          return c as unknown as Sqlite
        },
        // Without exists(), a slot is reserved before resolve: room for both, so the real tenant is not evicted.
        maxClients: 2
      }
    })
    try {
      await (await flexi.tenant("real")).user.count()
      const error = await flexi.tenant("nosuch").then(() => undefined, (e: unknown) => e)
      expect(error).toBeInstanceOf(UnknownDatabaseError)
      expect((error as Error).message).toMatch(/^Unknown tenant 'nosuch'/)
      expect(JSON.stringify({ error, message: (error as Error).message })).not.toContain("nc_t_")
      // Not kept: the real tenant was not evicted for it, and the name is not served.
      expect(flexi.list()).toEqual(["real"])
      expect(flexi.tenantStats()).toMatchObject({ resident: 1, evictions: 0, resolveFailures: 1 })
      // Not reconnected: with reconnect every 20 ms, a kept tenant would have tried again many times by now.
      await new Promise((r) => setTimeout(r, 300))
      expect(made).toEqual([{ connects: 1 }])
      expect(w.lines).toEqual([])
      expect(w.events).toEqual(["connect:real"])
    } finally {
      await flexi.disconnect()
      await real.drop()
    }
  }, 30_000)
})

describe("withTenant() counts like tenant() (#27 item 4)", () => {
  it("100 requests through withTenant(): 1 miss, 99 hits, in tenantStats() and in flexidb_tenants_hits_total", async () => {
    const flexi = createFlexiDB({}, { ...base, prometheus: true, tenants: { resolve: (name) => sqliteTenant(name) } })
    try {
      for (let i = 0; i < 100; i++) await flexi.withTenant("counted", (c) => c.user.count())
      expect(flexi.tenantStats()).toMatchObject({ hits: 99, misses: 1 })
      await flexi.tenant("counted")
      expect(flexi.tenantStats()).toMatchObject({ hits: 100, misses: 1 })
      const text = await flexi.metrics()
      expect(text).toMatch(/^flexidb_tenants_hits_total(?:\{[^}]*\})? 100$/m)
      expect(text).toMatch(/^flexidb_tenants_misses_total(?:\{[^}]*\})? 1$/m)
    } finally {
      await flexi.disconnect()
    }
  })

  effect.scoped("the Effect service's withTenant counts a hit once, not twice", () =>
    Effect.gen(function*() {
      const registry = yield* FlexiDBService.make({}, { ...base, tenants: { resolve: (name) => sqliteTenant(name) } })
      for (let i = 0; i < 10; i++) yield* registry.withTenant("eff", (c) => Effect.promise(() => (c as Sqlite).user.count()))
      expect(yield* registry.tenantStats).toMatchObject({ hits: 9, misses: 1 })
    }))
})
