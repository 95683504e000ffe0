// Moving a live tenant (`npm run bench:move`): a PostgreSQL tenant of ~100 MB moved back and forth 20 times between
// two clusters (wal_level = logical, started here on free ports) while 8 app processes insert unique keys into it.
// Per move: the copy's rate, the fence (the row entering `moving` to the row pointing at the target) and the
// write-blocked window (the longest write that ended during the move, held time included); over the run: p50/p99 of
// the window, and 0 acknowledged writes lost or duplicated. Writes its section of BENCHMARKS.md.
// `-- --short`: ~5 MB, 2 processes, 2 moves, to check the bench works (BENCHMARKS.md left alone).
import { openCatalog } from "../src/Catalog.js"
import type { MoveReport } from "../src/Catalog.js"
import { createDatabase, uniqueName } from "../test/support/databases.js"
import { startLogicalClusters } from "../test/support/logical.js"
import { moreAcks, startApps, stopApps } from "../test/support/move-fleet.js"
import { writeSection } from "./harness.js"

const short = process.argv.includes("--short")
const megabytes = short ? 5 : 100
const processes = short ? 2 : 8
const moves = short ? 2 : 20

const quantile = (xs: ReadonlyArray<number>, q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN
}

const clusters = await startLogicalClusters(2)
const catalogDb = await createDatabase("postgresql")
const servers = { east: clusters.clusters[0]!.url(), west: clusters.clusters[1]!.url() }
const cluster = (server: string) => clusters.clusters[server === "east" ? 0 : 1]!
const catalog = await openCatalog({ url: catalogDb.url, servers })
const lines: Array<string> = []
try {
  await cluster("east").sql(`CREATE DATABASE tpl`)
  await cluster("east").sql(
    `CREATE TABLE "User" (id SERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT);
     CREATE TABLE "Post" (id SERIAL PRIMARY KEY, title TEXT NOT NULL, "authorId" INTEGER NOT NULL REFERENCES "User"(id))`,
    "tpl"
  )
  const name = uniqueName("bm").replace(/^flexidb_/, "bm_")
  await catalog.create(name, { server: "east", template: "tpl" })
  // About 300 bytes a row on disk with its index entries.
  const rows = Math.round((megabytes * 2 ** 20) / 330)
  await cluster("east").sql(
    `INSERT INTO "User" (email, name) SELECT 'seed' || g || '@x.io', repeat(md5(g::text), 6) FROM generate_series(1, ${rows}) g`,
    name
  )
  const size = Number((await cluster("east").sql(`SELECT pg_database_size(current_database())::bigint AS b`, name))[0]!.b)
  const apps = startApps(processes, catalogDb.url, servers, name)
  const reports: Array<MoveReport & { windowMs: number; heldWrites: number }> = []
  try {
    await Promise.all(apps.map((a) => a.ready))
    await moreAcks(apps, 10)
    for (let i = 0; i < moves; i++) {
      const to = i % 2 === 0 ? "west" : "east"
      const started = performance.timeOrigin + performance.now()
      const report = await catalog.move(name, { server: to })
      await moreAcks(apps, 5)
      const ended = performance.timeOrigin + performance.now()
      const during = apps.flatMap((a) => a.acked.filter((x) => x.end >= started && x.end <= ended))
      const windowMs = Math.max(0, ...during.map((x) => x.ms))
      reports.push({ ...report, windowMs, heldWrites: during.filter((x) => x.ms > 50).length })
      console.log(
        `move ${i + 1}/${moves} → ${to}: copy ${report.copyMs} ms (${(report.bytes / 2 ** 20 / (report.copyMs / 1000)).toFixed(1)} MB/s), ` +
          `fence ${report.fenceMs} ms, window ${windowMs.toFixed(0)} ms, instances ${report.instances.acked}/${report.instances.live}`
      )
    }
  } finally {
    await stopApps(apps)
  }
  const where = (await catalog.get(name))!
  const acked = apps.flatMap((a) => a.acked.map((x) => x.key))
  const present = new Set(
    (await cluster(where.server).sql(`SELECT email FROM "User" WHERE email NOT LIKE 'seed%'`, name)).map((r) => String(r.email))
  )
  const lost = acked.filter((k) => !present.has(k)).length
  const duplicated = acked.length - new Set(acked).size
  const failed = apps.flatMap((a) => a.failed.map((f) => f.tag))
  const windows = reports.map((r) => r.windowMs)
  const fences = reports.map((r) => r.fenceMs)
  const rates = reports.map((r) => r.bytes / 2 ** 20 / (r.copyMs / 1000))
  lines.push(
    `A PostgreSQL tenant of ${(size / 2 ** 20).toFixed(0)} MB moved ${moves} times between two clusters on this machine ` +
      `while ${processes} app processes inserted into it (${acked.length} writes acknowledged, ${failed.length} failed` +
      `${failed.length > 0 ? `: ${[...new Set(failed)].join(", ")}` : ""}):`,
    "",
    "| | p50 | p99 | max |",
    "|---|---|---|---|",
    `| write-blocked window (longest write during a move) | ${quantile(windows, 0.5).toFixed(0)} ms | ${quantile(windows, 0.99).toFixed(0)} ms | ${Math.max(...windows).toFixed(0)} ms |`,
    `| fence (moving → switched) | ${quantile(fences, 0.5).toFixed(0)} ms | ${quantile(fences, 0.99).toFixed(0)} ms | ${Math.max(...fences).toFixed(0)} ms |`,
    `| copy rate (initial copy) | ${quantile(rates, 0.5).toFixed(1)} MB/s | | |`,
    "",
    `Acknowledged writes lost: ${lost}; duplicated: ${duplicated} (target: 0, 0; window p99 ≤ 1 s).`
  )
  console.log(lines.join("\n"))
  if (lost > 0 || duplicated > 0) process.exitCode = 1
  if (!short) writeSection("move", lines)
} finally {
  await catalog.close()
  await catalogDb.drop()
  clusters.stop()
}
