// What an app following the catalog sees while one of its tenants moves: the instance registers a heartbeat, hears
// `moving`, drains its writes in flight and acknowledges (the mover waits for it); a write asked for during the
// cutover is held and released on the target once the move switches, on the target's client the instance opened while
// the fence was on; a cutover longer than moveTimeout rejects with
// TenantMovingError (outcomeUnknown false), and the tenant opens again once the row is active.
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { MoveProgress } from "../src/Catalog.js"
import { createFlexiDB, TenantMovingError } from "../src/index.js"
import * as prisma7 from "./fixtures/prisma7/clients.ts"
import { uniqueName } from "./support/databases.js"
import { moveFixture } from "./support/logical.js"

type Client = ReturnType<typeof prisma7.postgresql>
const tenant = (tag: string) => uniqueName(tag).replace(/^flexidb_/, "ma_")

const fx = moveFixture(
  `CREATE TABLE "User" (id SERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT);
     CREATE TABLE "Post" (id SERIAL PRIMARY KEY, title TEXT NOT NULL, "authorId" INTEGER NOT NULL REFERENCES "User"(id))`
)
const { servers, cluster } = fx
beforeAll(fx.setup, 120_000)
afterAll(fx.teardown, 60_000)

const app = (moveTimeout: `${number} millis` | `${number} seconds` = "5 seconds") =>
  createFlexiDB({}, {
    gracefulShutdown: false,
    retry: { attempts: 0 },
    logger: false,
    tenants: {
      catalog: { url: fx.catalogDb.url, servers: servers(), moveTimeout },
      client: (url) => prisma7.postgresql(url) as Client,
      maxClients: 4
    }
  })

const catalogSql = async (text: string, params: ReadonlyArray<unknown> = []) => {
  const c = new pg.Client({ connectionString: fx.catalogDb.url })
  await c.connect()
  try {
    return (await c.query(text, params as Array<unknown>)).rows
  } finally {
    await c.end()
  }
}

const eventually = async (check: () => Promise<boolean>, ms = 10_000) => {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`not reached within ${ms} ms`)
}

describe("an app following the catalog during a move", () => {
  it("acknowledges the fence; a write asked for during the cutover is held, then lands on the target", async () => {
    const name = tenant("held")
    await fx.catalog.create(name, { server: "east", template: "tpl" })
    const db = app()
    try {
      await (await db.tenant(name)).user.create({ data: { email: "before@x.io" } })
      // The instance has registered its heartbeat before the move begins.
      await eventually(async () => (await catalogSql(`SELECT count(*)::int AS n FROM flexidb.instances`))[0]!.n === 1)
      let held: Promise<unknown> | undefined
      let heldState = ""
      const report = await fx.catalog.move(name, {
        server: "west",
        onProgress: (p: MoveProgress) => {
          // Inside the fence (acknowledged, source closed): this write must wait for the switch.
          if (p.step === "fenced" && held === undefined) {
            held = db.tenant(name).then((c) => c.user.create({ data: { email: "held@x.io" } }))
            held.then(() => (heldState = "done"), () => (heldState = "failed"))
          }
          if (p.step === "caught-up") expect(heldState).toBe("")
        }
      })
      expect(report.instances).toMatchObject({ live: 1, acked: 1 })
      await held
      const onWest = (await cluster("west").sql(`SELECT email FROM "User" ORDER BY email`, name)).map((r) => r.email)
      expect(onWest).toEqual(["before@x.io", "held@x.io"])
      const onEast = (await cluster("east").sql(`SELECT email FROM "User" ORDER BY email`, name)).map((r) => r.email)
      expect(onEast).toEqual(["before@x.io"])
      // Later writes go to the target too, with a fresh key (the sequence was set).
      await (await db.tenant(name)).user.create({ data: { email: "after@x.io" } })
      expect((await cluster("west").sql(`SELECT count(*)::int AS n FROM "User"`, name))[0]!.n).toBe(3)
    } finally {
      await db.disconnect()
    }
    // A disconnected instance is no longer waited for.
    expect(await catalogSql(`SELECT id FROM flexidb.instances`)).toEqual([])
  }, 120_000)

  it("opens the target's client while the fence is on: the write held by the cutover runs on it after the switch, with no second client", async () => {
    const name = tenant("warm")
    await fx.catalog.create(name, { server: "east", template: "tpl" })
    const opened: Array<{ server: string; epoch: number; at: number }> = []
    const db = createFlexiDB({}, {
      gracefulShutdown: false,
      retry: { attempts: 0 },
      logger: false,
      tenants: {
        catalog: { url: fx.catalogDb.url, servers: servers() },
        client: (url, info) => {
          opened.push({ server: info.server, epoch: info.epoch, at: Date.now() })
          return prisma7.postgresql(url) as Client
        }
      }
    })
    // An instance that never acknowledges: the mover waits its moveTimeout (3 s) inside the fence.
    const deaf = `deaf-${name}`
    await catalogSql(`INSERT INTO flexidb.instances (id, seen_at) VALUES ($1, now() + interval '1 hour')`, [deaf])
    try {
      await (await db.tenant(name)).user.create({ data: { email: "before@x.io" } })
      let held: Promise<unknown> | undefined
      let caughtUpAt = 0
      const report = await fx.catalog.move(name, {
        server: "west",
        moveTimeout: 3_000,
        onProgress: (p: MoveProgress) => {
          if (p.step === "fenced" && held === undefined) {
            held = db.tenant(name).then((c) => c.user.create({ data: { email: "held@x.io" } }))
          }
          if (p.step === "caught-up") caughtUpAt = Date.now()
        }
      })
      await held
      await (await db.tenant(name)).user.create({ data: { email: "after@x.io" } })

      // One client for the target, opened for the row the switch wrote, before the fence ended.
      const onWest = opened.filter((o) => o.server === "west")
      expect(onWest).toHaveLength(1)
      expect(onWest[0]!.epoch).toBe(report.row.epoch)
      expect(onWest[0]!.at).toBeLessThan(caughtUpAt)
      expect((await cluster("west").sql(`SELECT email FROM "User" ORDER BY email`, name)).map((r) => r.email))
        .toEqual(["after@x.io", "before@x.io", "held@x.io"])
      expect((await cluster("east").sql(`SELECT email FROM "User"`, name)).map((r) => r.email)).toEqual(["before@x.io"])
    } finally {
      await catalogSql(`DELETE FROM flexidb.instances WHERE id = $1`, [deaf])
      await db.disconnect()
    }
  }, 120_000)

  it("a cutover longer than moveTimeout: TenantMovingError (not sent); the tenant opens again once active", async () => {
    const name = tenant("slow")
    await fx.catalog.create(name, { server: "east", template: "tpl" })
    const db = app("300 millis")
    try {
      await (await db.tenant(name)).user.create({ data: { email: "a@x.io" } })
      // A mover that stalls inside the fence: the row says moving, and nothing switches it.
      const [row] = await catalogSql(
        `UPDATE flexidb.tenants SET state = 'moving', epoch = epoch + 1 WHERE name = $1 RETURNING epoch`,
        [name]
      )
      await catalogSql(`SELECT pg_notify('flexidb_tenants', $1)`, [JSON.stringify({ name, state: "moving", epoch: Number(row!.epoch) })])
      // The instance heard it, drained and acknowledged at that epoch.
      await eventually(async () =>
        (await catalogSql(`SELECT 1 FROM flexidb.move_acks WHERE name = $1 AND epoch = $2`, [name, row!.epoch])).length === 1
      )
      const e = await db.tenant(name).then((c) => c.user.create({ data: { email: "b@x.io" } })).catch((x: unknown) => x)
      expect(e).toBeInstanceOf(TenantMovingError)
      expect(e).toMatchObject({ code: "FLEXIDB_TENANT_MOVING", outcomeUnknown: false, tenant: name })
      expect((e as TenantMovingError).waitedMs).toBeGreaterThanOrEqual(300)
      expect((await cluster("east").sql(`SELECT email FROM "User"`, name)).map((r) => r.email)).toEqual(["a@x.io"])

      await catalogSql(`UPDATE flexidb.tenants SET state = 'active', epoch = epoch + 1 WHERE name = $1`, [name])
      await (await db.tenant(name)).user.create({ data: { email: "c@x.io" } })
      expect((await cluster("east").sql(`SELECT count(*)::int AS n FROM "User"`, name))[0]!.n).toBe(2)
    } finally {
      await db.disconnect()
    }
  }, 60_000)

  it("a write cut by the source closing in a process that missed the fence: TenantMovingError (outcome unknown), then the target", async () => {
    const name = tenant("cut")
    await fx.catalog.create(name, { server: "east", template: "tpl" })
    // A process deaf to the catalog: no LISTEN, and its poll never comes during the test. It keeps its heartbeat, so
    // the mover waits for its acknowledgement (moveTimeout below), then closes the source under it.
    const db = createFlexiDB({}, {
      gracefulShutdown: false,
      retry: { attempts: 0 },
      logger: false,
      tenants: {
        catalog: { url: fx.catalogDb.url, servers: servers(), listen: false, pollInterval: "1 hour" },
        client: (url) => prisma7.postgresql(url) as Client
      }
    })
    try {
      await (await db.tenant(name)).user.create({ data: { email: "before@x.io" } })
      await eventually(async () => (await catalogSql(`SELECT count(*)::int AS n FROM flexidb.instances`))[0]!.n === 1)
      // A write in flight through the whole move: it sleeps before it inserts (no transaction id yet, so the
      // replication slot's creation does not wait for it), and the fence terminates its session.
      const cut = (await db.tenant(name)).$executeRawUnsafe(`INSERT INTO "User" (email) SELECT 'cut@x.io' FROM pg_sleep(120)`)
        .then(() => "committed", (e: unknown) => e)
      await eventually(async () =>
        (await cluster("east").sql(
          `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND query LIKE '%pg_sleep(120)%'`,
          "postgres",
          [name]
        )).length === 1
      )
      const report = await fx.catalog.move(name, { server: "west", moveTimeout: 200 })
      expect(report.instances).toMatchObject({ live: 1, acked: 0 })
      const e = await cut
      expect(e).toBeInstanceOf(TenantMovingError)
      expect(e).toMatchObject({ code: "FLEXIDB_TENANT_MOVING", outcomeUnknown: true, tenant: name })
      // The process applied the row it read after the failure: its next write opens on the target.
      await (await db.tenant(name)).user.create({ data: { email: "after@x.io" } })
      const onWest = (await cluster("west").sql(`SELECT email FROM "User" ORDER BY email`, name)).map((r) => r.email)
      expect(onWest).toEqual(["after@x.io", "before@x.io"])
      expect((await cluster("east").sql(`SELECT email FROM "User"`, name)).map((r) => r.email)).toEqual(["before@x.io"])
    } finally {
      await db.disconnect()
    }
  }, 120_000)
})
