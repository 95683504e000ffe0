// Moving a live tenant (`npm run bench:move`): a PostgreSQL tenant of ~100 MB moved back and forth 20 times between
// two clusters (wal_level = logical, started here on free ports) while 8 app processes insert unique keys into it.
// Per move: the copy's rate, the fence (the row entering `moving` to the row pointing at the target) and the
// write-blocked window (the longest write that ended during the move, held time included), and the cutover's steps
// (fence entered, every instance acknowledged and the source closed; target caught up, sequences set, rows counted;
// switched); over the run: p50/p99, 0 acknowledged writes lost or duplicated, 0 rows committed on the source after its
// close (by the source's own clock, in the source). Then SQLite files and MariaDB databases of growing size, each
// moved there and back while 2 app processes write: their window against the tenant's size (their cutover copies the
// whole tenant again under the fence). Writes its section of BENCHMARKS.md.
// `-- --short`: ~5 MB, 2 processes, 2 moves, 1 MB SQLite/MariaDB, to check the bench works (BENCHMARKS.md left alone).
import Database from "better-sqlite3"
import * as mariadb from "mariadb"
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { openCatalog } from "../src/Catalog.js"
import type { MoveProgress, MoveReport } from "../src/Catalog.js"
import { createDatabase, uniqueName } from "../test/support/databases.js"
import { startLogicalClusters } from "../test/support/logical.js"
import { startMariaDb } from "../test/support/mariadb.js"
import { moreAcks, startApps, stopApps } from "../test/support/move-fleet.js"
import type { Instance } from "../test/support/move-fleet.js"
import { writeSection } from "./harness.js"

const short = process.argv.includes("--short")
const megabytes = short ? 5 : 100
const processes = short ? 2 : 8
const moves = short ? 2 : 20
const smallSizes = short ? [1] : [1, 10, 50]

const quantile = (xs: ReadonlyArray<number>, q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN
}

const clusters = await startLogicalClusters(2)
const second = await startMariaDb()
const catalogDb = await createDatabase("postgresql")
const dir = mkdtempSync(join(tmpdir(), "flexidb-bench-move-"))
mkdirSync(join(dir, "a"))
mkdirSync(join(dir, "b"))
const servers = {
  east: clusters.clusters[0]!.url(),
  west: clusters.clusters[1]!.url(),
  a: `file:${join(dir, "a")}`,
  b: `file:${join(dir, "b")}`,
  m1: "mysql://root@127.0.0.1:3306/",
  m2: second.url
}
const cluster = (server: string) => clusters.clusters[server === "east" ? 0 : 1]!
const catalog = await openCatalog({ url: catalogDb.url, servers })
const lines: Array<string> = []
/** The longest write (held time included) that ended between `started` and `ended`, and how many waited > 50 ms. */
const windowOf = (apps: ReadonlyArray<Instance>, started: number, ended: number) => {
  const during = apps.flatMap((a) => a.acked.filter((x) => x.end >= started && x.end <= ended))
  return { windowMs: Math.max(0, ...during.map((x) => x.ms)), heldWrites: during.filter((x) => x.ms > 50).length }
}
const now = () => performance.timeOrigin + performance.now()
try {
  await cluster("east").sql(`CREATE DATABASE tpl`)
  await cluster("east").sql(
    `CREATE TABLE "User" (id SERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT,
       at timestamptz NOT NULL DEFAULT clock_timestamp());
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
  const reports: Array<MoveReport & { windowMs: number; heldWrites: number; closedMs: number; caughtUpMs: number; afterClose: number }> = []
  try {
    await Promise.all(apps.map((a) => a.ready))
    await moreAcks(apps, 10)
    for (let i = 0; i < moves; i++) {
      const to = i % 2 === 0 ? "west" : "east"
      const from = to === "west" ? "east" : "west"
      const started = now()
      const steps: Partial<Record<MoveProgress["step"], number>> = {}
      let closedAt: Promise<string> | undefined
      const report = await catalog.move(name, {
        server: to,
        onProgress: (p) => {
          if (steps[p.step] === undefined) steps[p.step] = p.fenceMs
          // The source's own clock once it is closed: nothing may be committed there after it.
          if (p.step === "fenced" && closedAt === undefined) {
            closedAt = cluster(from).sql(`SELECT clock_timestamp()::text AS t`, name).then((r) => String(r[0]!.t))
          }
        }
      })
      const afterClose = Number((await cluster(from).sql(
        `SELECT count(*)::int AS n FROM "User" WHERE at > $1::timestamptz`,
        name,
        [await closedAt!]
      ))[0]!.n)
      await moreAcks(apps, 5)
      const w = windowOf(apps, started, now())
      reports.push({ ...report, ...w, closedMs: steps.fenced ?? 0, caughtUpMs: steps["caught-up"] ?? 0, afterClose })
      console.log(
        `move ${i + 1}/${moves} → ${to}: copy ${report.copyMs} ms (${(report.bytes / 2 ** 20 / (report.copyMs / 1000)).toFixed(1)} MB/s), ` +
          `fence ${report.fenceMs} ms (closed ${steps.fenced} ms, caught up ${steps["caught-up"]} ms), window ${w.windowMs.toFixed(0)} ms, ` +
          `instances ${report.instances.acked}/${report.instances.live} in ${report.instances.waitedMs} ms, rows on the source after its close ${afterClose}`
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
  const afterClose = reports.reduce((n, r) => n + r.afterClose, 0)
  const windows = reports.map((r) => r.windowMs)
  const fences = reports.map((r) => r.fenceMs)
  const rates = reports.map((r) => r.bytes / 2 ** 20 / (r.copyMs / 1000))
  const row = (label: string, xs: ReadonlyArray<number>) =>
    `| ${label} | ${quantile(xs, 0.5).toFixed(0)} ms | ${quantile(xs, 0.99).toFixed(0)} ms | ${Math.max(...xs).toFixed(0)} ms |`
  lines.push(
    `A PostgreSQL tenant of ${(size / 2 ** 20).toFixed(0)} MB moved ${moves} times between two clusters on this machine ` +
      `while ${processes} app processes inserted into it (${acked.length} writes acknowledged, ${failed.length} failed` +
      `${failed.length > 0 ? `: ${[...new Set(failed)].join(", ")}` : ""}):`,
    "",
    "| | p50 | p99 | max |",
    "|---|---|---|---|",
    row("write-blocked window (longest write during a move)", windows),
    row("fence (moving → switched)", fences),
    row("— entered, instances acknowledged, source closed", reports.map((r) => r.closedMs)),
    row("— target caught up, sequences set, rows counted", reports.map((r) => r.caughtUpMs - r.closedMs)),
    row("— snapshot taken, row switched", reports.map((r) => r.fenceMs - r.caughtUpMs)),
    `| copy rate (initial copy) | ${quantile(rates, 0.5).toFixed(1)} MB/s | | |`,
    "",
    `Acknowledged writes lost: ${lost}; duplicated: ${duplicated}; rows committed on the source after its close: ` +
      `${afterClose} (target: 0, 0, 0; window p99 ≤ 1 s).`
  )
  if (lost > 0 || duplicated > 0 || afterClose > 0) process.exitCode = 1

  // SQLite and MariaDB: the cutover copies the whole tenant again, so the window grows with its size.
  const sqliteTemplate = new Database(join(dir, "a", "template.db"))
  sqliteTemplate.exec(`CREATE TABLE "User" (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, name TEXT)`)
  sqliteTemplate.close()
  const maria = await mariadb.createConnection({ host: "127.0.0.1", port: 3306, user: "root", password: "" })
  const catalogClient = new pg.Client({ connectionString: catalogDb.url })
  await catalogClient.connect()
  const small: Array<string> = []
  try {
    for (const engine of ["sqlite", "mysql"] as const) {
      for (const mb of smallSizes) {
        const t = uniqueName(engine === "sqlite" ? "bs" : "bm").replace(/^flexidb_/, engine === "sqlite" ? "bs_" : "bm_")
        const count = Math.round((mb * 2 ** 20) / 260)
        const [there, back] = engine === "sqlite" ? ["b", "a"] : ["m2", "m1"]
        if (engine === "sqlite") {
          await catalog.create(t, { server: "a", template: "template.db" })
          const d = new Database(join(dir, "a", `${t}.db`))
          d.prepare(`WITH RECURSIVE g(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM g WHERE v < ${count})
            INSERT INTO "User" (email, name) SELECT 'seed' || v || '@x.io', hex(randomblob(96)) FROM g`).run()
          d.close()
        } else {
          await maria.query(`CREATE DATABASE \`${t}\``)
          await maria.query(`CREATE TABLE \`${t}\`.User (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(191) NOT NULL UNIQUE, name VARCHAR(191) NULL)`)
          await maria.query(`INSERT INTO \`${t}\`.User (email, name) SELECT concat('seed', seq, '@x.io'), repeat(md5(seq), 5) FROM \`${t}\`.seq_1_to_${count}`)
          await catalogClient.query(`INSERT INTO flexidb.tenants (name, server, kind, location, state) VALUES ($1, 'm1', 'database', $1, 'active')`, [t])
        }
        const few = startApps(2, catalogDb.url, servers, t, engine)
        const results: Array<{ fenceMs: number; windowMs: number; bytes: number }> = []
        try {
          await Promise.all(few.map((a) => a.ready))
          await moreAcks(few, 10)
          for (const to of [there, back]) {
            const started = now()
            const report = await catalog.move(t, { server: to })
            await moreAcks(few, 5)
            results.push({ fenceMs: report.fenceMs, bytes: report.bytes, ...windowOf(few, started, now()) })
            console.log(`${engine} ${mb} MB → ${to}: fence ${report.fenceMs} ms, window ${results.at(-1)!.windowMs.toFixed(0)} ms`)
          }
        } finally {
          await stopApps(few)
        }
        const keys = few.flatMap((a) => a.acked.map((x) => x.key))
        const rows: Array<{ email: string }> = engine === "sqlite"
          ? (() => {
            const d = new Database(join(dir, "a", `${t}.db`), { readonly: true })
            try {
              return d.prepare(`SELECT email FROM "User" WHERE email NOT LIKE 'seed%'`).all() as Array<{ email: string }>
            } finally {
              d.close()
            }
          })()
          : [...await maria.query(`SELECT email FROM \`${t}\`.User WHERE email NOT LIKE 'seed%'`)] as Array<{ email: string }>
        const seen = new Set(rows.map((r) => r.email))
        const missing = keys.filter((k) => !seen.has(k)).length
        const doubled = keys.length - new Set(keys).size
        if (missing > 0 || doubled > 0) process.exitCode = 1
        const f = few.flatMap((a) => a.failed.map((x) => x.tag))
        small.push(
          // MariaDB's own size (information_schema) is stale right after the load (InnoDB statistics): the seeded size.
          `| ${engine === "sqlite" ? "SQLite file" : "MariaDB database"} | ${mb} MB | ` +
            `${results.map((r) => r.fenceMs).join(", ")} ms | ${results.map((r) => r.windowMs.toFixed(0)).join(", ")} ms | ` +
            `${keys.length} / ${f.length}${f.length > 0 ? ` (${[...new Set(f)].join(", ")})` : ""} | ${missing} / ${doubled} |`
        )
        await catalog.remove(t, { source: true })
        await catalog.remove(t, { drop: true })
      }
    }
  } finally {
    await maria.end()
    await catalogClient.end()
  }
  lines.push(
    "",
    "SQLite files and MariaDB databases, each moved there and back while 2 app processes insert into it: their cutover " +
      "copies the whole tenant again under the fence, so the window grows with the size.",
    "",
    "| tenant | seeded | fence (there, back) | window (there, back) | writes acknowledged / failed | lost / duplicated |",
    "|---|---|---|---|---|---|",
    ...small
  )
  console.log(lines.join("\n"))
  if (!short) writeSection("move", lines)
} finally {
  await catalog.close()
  await catalogDb.drop()
  clusters.stop()
  await second.stop()
  rmSync(dir, { recursive: true, force: true })
}
