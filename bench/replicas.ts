// npm run bench:replicas: what a pair's read routing costs, side by side in one run, written into BENCHMARKS.md
// between its "replicas" markers. Needs PostgreSQL on 127.0.0.1:5432 and root (it starts a streaming replica).
import { AsyncLocalStorage } from "node:async_hooks"
import { createFlexiDB } from "../src/index.js"
import * as prisma7 from "../test/fixtures/prisma7/clients.ts"
import { createDatabase } from "../test/support/databases.js"
import { startReplicaSet } from "../test/support/replica.js"
import { pair, pairing, writeSection } from "./harness.js"

type Client = ReturnType<typeof prisma7.sqlite>
const rows: Array<string> = []
const us = (x: number) => `${x.toFixed(x < 10 ? 2 : 1)} µs`
const note = (what: string, a: string, b: string, result: string) => {
  rows.push(`| ${what} | ${a} | ${b} | ${result} |`)
  console.log(`${what}: ${result} (${a} vs ${b})`)
}

/**
 * get(name, 'read') against get() of the replica's own client registered on its own: both end in the same client
 * through a flexidb hook, so the ratio is the routing alone. Run in both orders (A against B, then B against A): on
 * SQLite the order alone moved a pair by ±4 %, and the geometric mean of the two cancels it.
 */
const routing = async (label: string, open: () => Client) => {
  const write = open()
  const read = open()
  await write.user.deleteMany()
  await write.user.create({ data: { id: 1, email: "bench@x.io" } })
  const flexi = createFlexiDB({ main: { write, read }, replica: read }, { gracefulShutdown: false })
  await flexi.ready()
  const query = { where: { id: 1 } }
  const direct = { name: "get", run: () => flexi.get("replica").user.findUnique(query) }
  const routed = { name: "read", run: () => flexi.get("main", "read").user.findUnique(query) }
  const ab = await pair(direct, routed, pairing)
  const ba = await pair(routed, direct, pairing)
  note(
    `${label}: findUnique through get(name, 'read') (routing client) ÷ get() of the same client, both orders`,
    us((ab.bUs + ba.aUs) / 2),
    `${us((ab.aUs + ba.bUs) / 2)} (get())`,
    `${Math.sqrt(ab.ratio / ba.ratio).toFixed(3)}× (the orders: ${ab.ratio.toFixed(3)}, ${(1 / ba.ratio).toFixed(3)})`
  )
  await flexi.disconnect()
}

/** The routing's own cost, with no database: clients whose queries resolve at once. */
const inMemory = async () => {
  const row = { id: 1 }
  const client = (): Client => {
    const base = {
      $connect: async () => {},
      $disconnect: async () => {},
      $queryRawUnsafe: async () => [{ ok: 1 }],
      $extends: (extension: { query: { $allOperations: (hook: object) => PromiseLike<unknown> } }) => ({
        ...base,
        user: {
          findUnique: (args: unknown) =>
            extension.query.$allOperations({ args, model: "User", operation: "findUnique", query: () => Promise.resolve(row) })
        }
      })
    }
    return base as unknown as Client
  }
  const read = client()
  const flexi = createFlexiDB({ main: { write: client(), read }, replica: read }, { gracefulShutdown: false })
  await flexi.ready()
  const query = { where: { id: 1 } }
  const p = await pair(
    { name: "get", run: () => flexi.get("replica").user.findUnique(query) },
    { name: "read", run: () => flexi.get("main", "read").user.findUnique(query) },
    { ...pairing, perBlock: 200 }
  )
  note(
    "In memory (a query that resolves at once): the routing's own cost per read",
    us(p.bUs),
    `${us(p.aUs)} (get())`,
    `+${((p.bUs - p.aUs) * 1000).toFixed(0)} ns`
  )
  await flexi.disconnect()
}

/** A session's reads after a write in LSN mode (the replica has caught up) against reads outside any session. */
const lsn = async () => {
  const set = await startReplicaSet(1)
  try {
    await set.primary.sql(`CREATE TABLE "User" (id SERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT)`)
    await set.caughtUp()
    for (const cache of [10, 0]) {
      const flexi = createFlexiDB({
        main: { write: prisma7.postgresql(set.primary.url()), read: prisma7.postgresql(set.replicas[0]!.url()) }
      }, { gracefulShutdown: false, replicas: { readYourWrites: { mode: "lsn", lsnCacheTime: cache } } })
      await flexi.ready()
      const read = flexi.get("main", "read")
      // Inside a session that has written, captured once: every call of the pair's "session" side runs in it.
      const inSession = await flexi.session(async () => {
        await flexi.get("main").user.create({ data: { email: `lsn-${cache}@x.io` } })
        await set.caughtUp()
        return AsyncLocalStorage.snapshot()
      })
      const p = await pair(
        { name: "outside", run: () => read.user.count() },
        { name: "session", run: () => inSession(() => read.user.count()) },
        pairing
      )
      note(
        `PostgreSQL replica: a session's read after a write, LSN mode, lsnCacheTime ${cache} ms, direct pair`,
        us(p.bUs),
        `${us(p.aUs)} (a read outside sessions)`,
        `${p.ratio.toFixed(3)}× (IQR ${p.q1.toFixed(3)}–${p.q3.toFixed(3)})`
      )
      await flexi.disconnect()
    }
  } finally {
    set.stop()
  }
}

await inMemory()
const sqlite = await createDatabase("sqlite")
await routing("SQLite", () => prisma7.sqlite(sqlite.url))
await sqlite.drop()
const postgres = await createDatabase("postgresql")
await routing("PostgreSQL", () => prisma7.postgresql(postgres.url) as unknown as Client)
await postgres.drop()
await lsn()

writeSection("replicas", [
  "## Replicas (`npm run bench:replicas`)",
  "",
  "One run. The routing rows read one client through the routing read client and through `get()` of that client",
  "registered on its own, so the ratio is the routing alone (target ≤ 1.02× `get()`): direct pairs, 300 ABBA rounds",
  "of 4 × 20 calls, a scavenge before each block, the median of the rounds' ratios, in both orders (their geometric",
  "mean cancels what the order alone does). The in-memory row is the routing's own cost, with no database. The LSN",
  "rows are direct pairs too: a read inside a session after a write, on a real streaming replica that has replayed",
  "it, against a read outside sessions; each costs the replica's replay position, asked at most once per",
  "`lsnCacheTime`.",
  "",
  "| what | flexidb | baseline | ratio |",
  "| --- | --- | --- | --- |",
  ...rows
])
process.exit(0)
