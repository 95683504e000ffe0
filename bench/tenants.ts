// npm run bench:tenants: 10,000 SQLite tenants touched in a loop with maxClients 200 — memory at 200, 1,000 and
// 10,000 tenants touched, a hit against get(), a miss's latency — beside the naive way (a client per tenant, kept) at
// 1,000 tenants, and raw Prisma closing and opening the same clients by hand. Each runs in its own process, so one's
// memory never counts against another's. Writes its section of BENCHMARKS.md; exits 1 when the heap grows more than
// 20 % after 200 tenants. `-- --tenants N` for a shorter run (CI runs 1,200 through the same assertions).
import { execFileSync } from "node:child_process"
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import Database from "better-sqlite3"
import { createFlexiDB } from "../src/index.js"
import * as prisma7 from "../test/fixtures/prisma7/clients.ts"
import { pair, pairing, writeSection } from "./harness.js"

const arg = (flag: string) => {
  const i = process.argv.indexOf(flag)
  return i === -1 ? undefined : process.argv[i + 1]
}
const mib = (bytes: number) => bytes / 2 ** 20
const gc = () => (globalThis as { gc?: () => void }).gc?.()
/** Heap and RSS after a full collection; open file descriptors (SQLite connections and their files). */
const memory = () => {
  gc()
  const m = process.memoryUsage()
  return { rss: mib(m.rss), heap: mib(m.heapUsed), fds: readdirSync("/proc/self/fd").length }
}
type Memory = ReturnType<typeof memory>

/** A folder of `count` SQLite tenant files, copied from one with the fixture tables and a row. */
const tenantFiles = (count: number) => {
  const dir = mkdtempSync(join(tmpdir(), "flexidb-bench-tenants-"))
  const template = join(dir, "template.db")
  const t = new Database(template)
  t.exec(`CREATE TABLE "User" (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, name TEXT)`)
  t.exec(`CREATE TABLE "Post" (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL, authorId INTEGER NOT NULL)`)
  t.exec(`INSERT INTO "User" (id, email) VALUES (1, 'bench@x.io')`)
  t.close()
  for (let i = 0; i < count; i++) copyFileSync(template, join(dir, `t${i}.db`))
  return { dir, file: (name: string) => join(dir, `${name}.db`) }
}

const quantile = (xs: Array<number>, q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((s.length - 1) * q))]!
}

/** flexidb: every tenant touched once in a loop, with maxClients 200. */
const flexi = async (count: number) => {
  const files = tenantFiles(count)
  const db = createFlexiDB({}, {
    gracefulShutdown: false,
    tenants: { resolve: (name) => prisma7.sqlite(files.file(name)), maxClients: 200 }
  })
  const marks = new Set([200, 1000, count])
  const at: Record<number, Memory> = {}
  const misses: Array<number> = []
  const query = { where: { id: 1 } }
  for (let i = 0; i < count; i++) {
    const start = process.hrtime.bigint()
    const client = await db.tenant(`t${i}`)
    misses.push(Number(process.hrtime.bigint() - start) / 1e3)
    if ((await client.user.findUnique(query)) === null) throw new Error(`tenant t${i} lost its row`)
    if (marks.has(i + 1)) at[i + 1] = memory()
  }
  const stats = db.tenantStats()
  if (stats.resident > 200 || stats.misses !== count) throw new Error(`unexpected ${JSON.stringify(stats)}`)
  // A hit: a resident tenant's client through tenant(), against the same database through get().
  const hot = `t${count - 1}`
  const hit = await pair(
    // get() compiles for registered names only; a resident tenant is served by it at run time all the same.
    { name: "get", run: () => (db as unknown as { get: (n: string) => Awaited<ReturnType<typeof db.tenant>> }).get(hot).user.findUnique(query) },
    { name: "tenant", run: () => db.tenant(hot).then((c) => c.user.findUnique(query)) },
    pairing
  )
  await db.disconnect()
  rmSync(files.dir, { recursive: true, force: true })
  return { at, resident: stats.resident, evictions: stats.evictions, missP50: quantile(misses, 0.5), missP99: quantile(misses, 0.99), hit }
}

/** Raw Prisma with a hand-written LRU of 200 clients: what the churn of clients costs Prisma and SQLite alone. */
const lru = async (count: number) => {
  const files = tenantFiles(count)
  const open: Array<ReturnType<typeof prisma7.sqlite>> = []
  const marks = new Set([200, 1000, count])
  const at: Record<number, Memory> = {}
  for (let i = 0; i < count; i++) {
    const client = prisma7.sqlite(files.file(`t${i}`))
    await client.user.findUnique({ where: { id: 1 } })
    open.push(client)
    if (open.length > 200) await open.shift()!.$disconnect()
    if (marks.has(i + 1)) at[i + 1] = memory()
  }
  await Promise.all(open.map((c) => c.$disconnect()))
  rmSync(files.dir, { recursive: true, force: true })
  return { at }
}

/** The naive way: a client per tenant, connected, queried and kept. */
const naive = async (count: number) => {
  const files = tenantFiles(count)
  const clients: Array<ReturnType<typeof prisma7.sqlite>> = []
  for (let i = 0; i < count; i++) {
    const client = prisma7.sqlite(files.file(`t${i}`))
    await client.user.findUnique({ where: { id: 1 } })
    clients.push(client)
  }
  const at = memory()
  await Promise.all(clients.map((c) => c.$disconnect()))
  rmSync(files.dir, { recursive: true, force: true })
  return { at }
}

const side = arg("--side")
if (side !== undefined) {
  const count = Number(arg("--tenants"))
  const base = memory()
  const result = side === "flexi" ? await flexi(count) : side === "lru" ? await lru(count) : await naive(count)
  process.stdout.write(JSON.stringify({ base, ...result }))
  process.exit(0)
}

// The parent: each side in a fresh process.
const count = Number(arg("--tenants") ?? 10_000)
if (!Number.isInteger(count) || count < 1000) throw new Error("--tenants: a whole number of at least 1000")
const child = (which: string, n: number) =>
  JSON.parse(
    execFileSync(process.execPath, ["--expose-gc", "--import", "tsx", import.meta.filename, "--side", which, "--tenants", String(n)], {
      encoding: "utf8",
      maxBuffer: 1 << 26,
      stdio: ["ignore", "pipe", "inherit"]
    })
  )
const f = child("flexi", count)
const l = child("lru", count)
const n = child("naive", 1000)
const at = f.at as Record<string, Memory>
const lat = l.at as Record<string, Memory>
const row = (what: string, m: Memory) => `| ${what} | ${m.rss.toFixed(0)} MiB | ${m.heap.toFixed(1)} MiB | ${m.fds} |`
const growth = (at[count]!.rss - at[200]!.rss) / at[200]!.rss
const heapGrowth = (at[count]!.heap - at[200]!.heap) / at[200]!.heap
const rawGrowth = (lat[count]!.rss - lat[200]!.rss) / lat[200]!.rss
const lines = [
  `${count.toLocaleString("en")} SQLite tenant databases touched once each, in a loop, with \`maxClients: 200\`:`,
  `${f.resident} open at the end, ${f.evictions.toLocaleString("en")} closed to make room.`,
  "",
  "| after | RSS | heap | open files |",
  "| --- | --- | --- | --- |",
  row("start (nothing open)", f.base),
  ...[200, 1000, count].map((k) => row(`${k.toLocaleString("en")} tenants touched (flexidb)`, at[k]!)),
  row("start (raw Prisma, own process)", l.base),
  ...[200, 1000, count].map((k) => row(`${k.toLocaleString("en")} tenants touched (raw Prisma, an LRU of 200 clients)`, lat[k]!)),
  row("1,000 tenants, a client each, kept (naive)", n.at),
  "",
  `- Memory after 200 tenants, from 200 to ${count.toLocaleString("en")} touched: heap ${(heapGrowth * 100).toFixed(1)} % ` +
    `(target: flat, within 20 %); RSS ${(growth * 100).toFixed(1)} %, where raw Prisma closing and opening the same ` +
    `clients by hand grows ${(rawGrowth * 100).toFixed(1)} %: native memory of the SQLite connections and Prisma's ` +
    `query compiler, freed to the allocator but not all returned to the system (raw Prisma's figure moved from 28 % ` +
    `to 73 % across runs here, so RSS is reported, not asserted).`,
  `- A miss (resolve + register + connect, a slot freed by closing the least recently used): p50 ${f.missP50.toFixed(0)} µs, ` +
    `p99 ${f.missP99.toFixed(0)} µs.`,
  `- A hit: \`(await tenant(name)).user.findUnique()\` ÷ \`get(name).user.findUnique()\` = ${f.hit.ratio.toFixed(3)}× ` +
    `(IQR ${f.hit.q1.toFixed(3)}–${f.hit.q3.toFixed(3)}; ${f.hit.bUs.toFixed(1)} vs ${f.hit.aUs.toFixed(1)} µs; target ≤ 1.02×).`,
  `- The naive way at 1,000 tenants holds ${n.at.fds - n.base.fds} more open files and ${(n.at.rss - n.base.rss).toFixed(0)} MiB ` +
    `more RSS than at its start; flexidb at 1,000 touched: ${at[1000]!.fds - f.base.fds} and ${(at[1000]!.rss - f.base.rss).toFixed(0)} MiB.`
]
console.log(lines.join("\n"))
const problems = [
  // RSS is reported, not asserted: raw Prisma alone under the same churn moved 28-73 % across runs here.
  heapGrowth > 0.2 && `heap grew ${(heapGrowth * 100).toFixed(1)} % after 200 tenants`,
  f.resident > 200 && `${f.resident} tenants open, more than maxClients`
].filter(Boolean)
if (arg("--write") !== "no") {
  writeSection("tenants", ["## Tenants (`npm run bench:tenants`)", "", ...lines])
}
for (const p of problems) console.error(`FAILED: ${p}`)
process.exit(problems.length === 0 ? 0 : 1)
