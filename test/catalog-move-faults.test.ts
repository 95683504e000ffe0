// A PostgreSQL move while its source server fails under it: the catalog reaches `east` only through the fault proxy
// (test/support/proxy.ts), so the mover's sessions, the target's subscription (which connects to the source) and the
// writer all meet the fault. Whatever step the fault hits, the move ends in one of two states the databases agree
// with: finished (the tenant on west, every acknowledged write there once) or undone (active on east, every
// acknowledged write there, nothing left on west); never a tenant left fenced, a slot, a publication or a
// subscription left behind, or an acknowledged write lost.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Catalog, MoveProgress } from "../src/Catalog.js"
import { openCatalog } from "../src/Catalog.js"
import { CatalogError, ConnectionError } from "../src/index.js"
import { createDatabase, uniqueName } from "./support/databases.js"
import type { TestDatabase } from "./support/databases.js"
import type { LogicalClusters } from "./support/logical.js"
import { startLogicalClusters, writer as writeWherever } from "./support/logical.js"
import { FaultProxy } from "./support/proxy.js"

const tenant = (tag: string) => uniqueName(tag).replace(/^flexidb_/, "mf_")

let clusters: LogicalClusters
let proxy: FaultProxy
let catalogDb: TestDatabase
let catalog: Catalog
const east = () => clusters.clusters[0]!
const west = () => clusters.clusters[1]!
const servers = () => ({ east: `postgresql://postgres@127.0.0.1:${proxy.port}/postgres`, west: west().url() })

beforeAll(async () => {
  clusters = await startLogicalClusters(2)
  proxy = await FaultProxy.start(east().port)
  catalogDb = await createDatabase("postgresql")
  catalog = await openCatalog({ url: catalogDb.url, servers: servers() })
  await east().sql(`CREATE DATABASE tpl`)
  await east().sql(`CREATE TABLE "User" (id SERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE)`, "tpl")
}, 120_000)

afterAll(async () => {
  await catalog?.close()
  await catalogDb?.drop()
  await proxy?.close()
  clusters?.stop()
}, 60_000)

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Moves a written tenant east → west and applies `fault` to the source's proxy when the move reports `at`; the fault
 * is held `holdMs`, then restored. Returns how the move ended and what the databases hold.
 */
const faultedMove = async (tag: string, at: MoveProgress["step"], fault: (p: FaultProxy) => unknown, holdMs: number) => {
  const name = tenant(tag)
  await catalog.create(name, { server: "east", template: "tpl" })
  await east().sql(`INSERT INTO "User" (email) SELECT 'seed' || g || '@x.io' FROM generate_series(1, 20000) g`, name)
  const w = writeWherever(() => catalog.get(name), (server, location) => servers()[server as "east"].replace(/\/postgres$/, `/${location}`))
  while (w.acked.length < 20) await sleep(10)
  let faulted: Promise<void> | undefined
  const outcome = await catalog
    .move(name, {
      server: "west",
      onProgress: (p) => {
        if (p.step !== at || faulted !== undefined) return
        faulted = (async () => {
          await fault(proxy)
          await sleep(holdMs)
          await proxy.restore()
        })()
      }
    })
    .then((report) => ({ moved: true as const, report }), (error: unknown) => ({ moved: false as const, error }))
  await faulted
  expect(faulted, `the move never reported '${at}'`).toBeDefined()
  // Settled when the call returns, either way: a failed move waited for its source to put the tenant back.
  const settled = (await catalog.get(name))!
  const before = w.acked.length
  // The tenant takes writes again wherever it now lives.
  for (const until = Date.now() + 30_000; w.acked.length < before + 20 && Date.now() < until;) await sleep(10)
  await w.stop()
  const row = (await catalog.get(name))!
  const here = row.server === "west" ? west() : east()
  const keys = (await here.sql(`SELECT email FROM "User" WHERE email NOT LIKE 'seed%'`, name)).map((r) => String(r.email))
  const leftOnWest = await west().sql(`SELECT datname FROM pg_database WHERE datname = '${name}'`)
  return { name, outcome, settled, row, acked: w.acked, keys, leftOnWest }
}

/** What every outcome must satisfy. */
const holds = async (r: Awaited<ReturnType<typeof faultedMove>>) => {
  expect(r.settled).toEqual(r.row)
  expect(r.row.state).toBe("active")
  expect(await catalog.resumeMove(r.name)).toMatchObject({ outcome: "none" })
  // Every acknowledged write is on the tenant's placement, once.
  const stored = new Set(r.keys)
  expect(r.keys.length).toBe(stored.size)
  expect(r.acked.filter((k) => !stored.has(k))).toEqual([])
  expect(r.acked.length).toBeGreaterThan(40)
  // No replication object left on either cluster (a slot would hold the source's WAL forever).
  expect(await east().sql(`SELECT slot_name FROM pg_replication_slots`)).toEqual([])
  expect(await east().sql(`SELECT pubname FROM pg_publication`, r.name)).toEqual([])
  expect(await west().sql(`SELECT subname FROM pg_subscription`)).toEqual([])
  if (r.outcome.moved) {
    expect(r.row.server).toBe("west")
    expect(r.outcome.report.checksum).toBe("equal")
  } else {
    // Undone: back on its source, writable, the target's copy gone; the error says what happened.
    expect(r.row.server).toBe("east")
    expect(r.leftOnWest).toEqual([])
    expect(r.outcome.error).toBeInstanceOf(CatalogError)
    const message = (r.outcome.error as Error).message
    expect(message).toMatch(/\(step '(copying|fenced)'\); the move was undone: '[^']+' is active on server 'east' again/)
    expect(message).not.toMatch(/postgres@|:\/\//)
  }
}

describe("a PostgreSQL move while its source fails", () => {
  it("every connection to the source dropped during the initial copy: finished or undone, nothing lost or left behind", async () => {
    const r = await faultedMove("dropcopy", "copying", (p) => p.dropAll(), 0)
    await holds(r)
  }, 120_000)

  it("the source refusing connections for 1.5 s from the fence on: finished or undone, nothing lost or left behind", async () => {
    const r = await faultedMove("refusefence", "fenced", (p) => p.refuse(), 1_500)
    await holds(r)
  }, 120_000)

  it("the source dropping every connection at the switch: the switched move is finished, its writes on the target", async () => {
    const r = await faultedMove("dropswitch", "switched", (p) => p.dropAll(), 0)
    expect(r.outcome.moved).toBe(true)
    await holds(r)
  }, 120_000)

  it("the source hung (accepts, never answers) for 1.5 s during the copy: finished or undone, nothing lost or left behind", async () => {
    const r = await faultedMove("hangcopy", "copying", (p) => p.hang(), 1_500)
    await holds(r)
  }, 120_000)

  it("a move whose source cannot be reached at all is refused, naming the server, and changes nothing", async () => {
    const name = tenant("down")
    await catalog.create(name, { server: "east", template: "tpl" })
    const before = await catalog.get(name)
    await proxy.refuse()
    try {
      const e = await catalog.move(name, { server: "west" }).catch((x: unknown) => x)
      expect(e).toBeInstanceOf(ConnectionError)
      expect((e as Error).message).toMatch(/^Could not connect to database 'east' after 1 attempt: server 'east' \(moving tenant '[^']+'; nothing was changed\) did not answer: .*ECONNREFUSED/)
      expect((e as Error).message).not.toMatch(/postgres@|:\/\//)
    } finally {
      await proxy.restore()
    }
    expect(await catalog.get(name)).toEqual(before)
    expect(await west().sql(`SELECT 1 FROM pg_database WHERE datname = '${name}'`)).toEqual([])
  }, 60_000)
})
