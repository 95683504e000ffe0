// catalog.move on real servers: two PostgreSQL clusters with wal_level = logical started by the test (never the system
// cluster's settings), the catalog on 5432. A tenant moved while a writer keeps inserting (following the catalog row):
// every acknowledged write on the target, the source read-only and equal to the target's fenced state, sequences set,
// the source kept until remove({ source: true }); a move back drops the old copy first; a source without
// wal_level = logical refused before anything changes; a failed move leaves the tenant active on its source.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { MoveProgress } from "../src/Catalog.js"
import { CatalogError, InvalidArgumentError } from "../src/index.js"
import { createDatabase, PG_HOST, uniqueName } from "./support/databases.js"
import { moveFixture, writer as writeWherever } from "./support/logical.js"

const tenant = (tag: string) => uniqueName(tag).replace(/^flexidb_/, "mv_")
// The tenants' template on east: a serial key (a sequence the move must carry) and Prisma's ledger.
const fx = moveFixture(
  `CREATE TABLE "User" (id SERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT);
     CREATE TABLE _prisma_migrations (id text PRIMARY KEY, migration_name text NOT NULL);
     INSERT INTO _prisma_migrations VALUES ('1', '0001_init')`,
  { main: `postgresql://postgres@${PG_HOST}/postgres` }
)
const servers = fx.servers
const east = () => fx.cluster("east")
const west = () => fx.cluster("west")
beforeAll(fx.setup, 120_000)
afterAll(fx.teardown, 60_000)

/** The tenant's writer (test/support/logical.ts) against this test's two clusters. */
const writer = (name: string) =>
  writeWherever(
    () => fx.catalog.get(name),
    (server, location) => `${servers()[server]!.replace(/\/postgres$/, "")}/${location}`
  )

const emails = async (c: { sql: (t: string, d?: string) => Promise<Array<Record<string, any>>> }, db: string) =>
  new Set((await c.sql(`SELECT email FROM "User"`, db)).map((r) => String(r.email)))

describe("catalog.move (PostgreSQL → PostgreSQL)", () => {
  it("moves a tenant while it is written: every acknowledged write on the target, the source read-only and equal, sequences set, the source kept until remove({ source: true })", async () => {
    const name = tenant("live")
    await fx.catalog.create(name, { server: "east", template: "tpl" })
    await east().sql(`INSERT INTO "User" (email) SELECT 'seed' || g || '@x.io' FROM generate_series(1, 5000) g`, name)
    const w = writer(name)
    while (w.acked.length < 20) await new Promise((r) => setTimeout(r, 10))
    const seen: Array<MoveProgress> = []
    const report = await fx.catalog.move(name, { server: "west", onProgress: (p) => seen.push(p) })
    const after = w.acked.length
    while (w.acked.length < after + 20) await new Promise((r) => setTimeout(r, 10))
    await w.stop()

    expect(report.row).toEqual({
      name,
      server: "west",
      kind: "database",
      location: name,
      state: "active",
      epoch: 3,
      source: { server: "east", location: name }
    })
    expect(await fx.catalog.get(name)).toEqual(report.row)
    expect(report.checksum).toBe("equal")
    expect(report.rows).toBeGreaterThanOrEqual(5000)
    expect(report.fenceMs).toBeGreaterThanOrEqual(0)
    expect([...new Set(seen.map((p) => p.step))]).toEqual(["schema", "copying", "fenced", "caught-up", "switched", "verified"])

    // Every acknowledged write is on the target, once; the source holds nothing the target lacks.
    const onTarget = await emails(west(), name)
    const onSource = await emails(east(), name)
    for (const key of w.acked) expect(onTarget.has(key)).toBe(true)
    for (const key of onSource) expect(onTarget.has(key)).toBe(true)
    const n = (await west().sql(`SELECT count(*)::int AS n FROM "User"`, name))[0]!.n
    expect(n).toBe(onTarget.size)
    expect(w.acked.length).toBe(onTarget.size - 5000)
    // _prisma_migrations arrived with the copy.
    expect(await west().sql(`SELECT migration_name FROM _prisma_migrations`, name)).toEqual([{ migration_name: "0001_init" }])
    // The sequence was set: an insert without an id takes the next key, not a duplicate.
    const id = (await west().sql(`INSERT INTO "User" (email) VALUES ('after@x.io') RETURNING id`, name))[0]!.id
    const max = (await east().sql(`SELECT max(id)::int AS max FROM "User"`, name))[0]!.max
    expect(id).toBeGreaterThan(max)
    // The source stays, refusing writes; no replication object is left on either side.
    await expect(east().sql(`INSERT INTO "User" (email) VALUES ('late@x.io')`, name)).rejects.toThrow(/read-only transaction/)
    expect(await east().sql(`SELECT slot_name FROM pg_replication_slots`)).toEqual([])
    expect(await east().sql(`SELECT pubname FROM pg_publication`, name)).toEqual([])
    expect(await west().sql(`SELECT subname FROM pg_subscription`)).toEqual([])
    expect(JSON.stringify(report)).not.toMatch(/:\/\/|postgres@/)

    await fx.catalog.remove(name, { source: true })
    expect(await fx.catalog.get(name)).toEqual({ ...report.row, source: undefined })
    expect(await east().sql(`SELECT 1 FROM pg_database WHERE datname = $1`.replace("$1", `'${name}'`))).toEqual([])
  }, 120_000)

  it("a move back to the server holding the tenant's old copy drops that copy first", async () => {
    const name = tenant("back")
    await fx.catalog.create(name, { server: "east", template: "tpl" })
    await east().sql(`INSERT INTO "User" (email) VALUES ('a@x.io')`, name)
    await fx.catalog.move(name, { server: "west" })
    await west().sql(`INSERT INTO "User" (email) VALUES ('b@x.io')`, name)
    const back = await fx.catalog.move(name, { server: "east" })
    expect(back.row).toMatchObject({ server: "east", state: "active", epoch: 5, source: { server: "west", location: name } })
    expect(await emails(east(), name)).toEqual(new Set(["a@x.io", "b@x.io"]))
    await east().sql(`INSERT INTO "User" (email) VALUES ('c@x.io')`, name)
  }, 120_000)

  it("a source without wal_level = logical is refused before anything changes, naming the setting", async () => {
    const name = tenant("nowal")
    const tpl = await createDatabase("postgresql")
    try {
      await fx.catalog.create(name, { server: "main", template: new URL(tpl.url).pathname.slice(1) })
      const before = await fx.catalog.get(name)
      const e = await fx.catalog.move(name, { server: "west" }).catch((x: unknown) => x)
      expect(e).toBeInstanceOf(CatalogError)
      expect((e as Error).message).toMatch(/wal_level = replica.*wal_level = logical/)
      expect(await fx.catalog.get(name)).toEqual(before)
      expect(await west().sql(`SELECT 1 FROM pg_database WHERE datname = '${name}'`)).toEqual([])
      expect(await fx.catalog.resumeMove(name)).toMatchObject({ outcome: "none" })
    } finally {
      await fx.catalog.remove(name, { drop: true }).catch(() => undefined)
      await tpl.drop()
    }
  }, 60_000)

  it("refuses moves across engines, to the same server, and of unknown tenants", async () => {
    const name = tenant("same")
    await fx.catalog.create(name, { server: "east", template: "tpl" })
    await expect(fx.catalog.move(name, { server: "east" })).rejects.toBeInstanceOf(InvalidArgumentError)
    await expect(fx.catalog.move(name, { server: "nowhere" })).rejects.toBeInstanceOf(InvalidArgumentError)
    await expect(fx.catalog.move(tenant("none"), { server: "west" })).rejects.toMatchObject({ code: "FLEXIDB_UNKNOWN_DATABASE" })
    expect(await fx.catalog.get(name)).toMatchObject({ server: "east", state: "active", epoch: 1 })
  }, 60_000)

  it("refuses to move a schema tenant before anything changes, saying what to do instead", async () => {
    const name = tenant("schema")
    await fx.catalog.create(name, { server: "east", kind: "schema" })
    await east().sql(`CREATE TABLE "${name}"."User" (id SERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE)`)
    await east().sql(`INSERT INTO "${name}"."User" (email) VALUES ('a@x.io')`)
    const before = await fx.catalog.get(name)
    const e = await fx.catalog.move(name, { server: "west" }).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(InvalidArgumentError)
    expect((e as Error).message).toMatch(/schema tenants do not move.*Nothing was changed.*pg_dump --schema=.*--kind database/)
    expect(await fx.catalog.get(name)).toEqual(before)
    expect(await fx.catalog.resumeMove(name)).toMatchObject({ outcome: "none" })
    // The schema still takes writes where it is; nothing was made on the target or published on the source.
    await east().sql(`INSERT INTO "${name}"."User" (email) VALUES ('b@x.io')`)
    expect(await east().sql(`SELECT pubname FROM pg_publication`)).toEqual([])
    expect(await east().sql(`SELECT slot_name FROM pg_replication_slots`)).toEqual([])
    expect(await west().sql(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, "postgres", [name])).toEqual([])
    await fx.catalog.remove(name, { drop: true })
  }, 60_000)
})
