// The tenant catalog (`npm run bench:catalog`): how fast a change reaches 8 app processes (by LISTEN, and by polling
// alone), how long from `create` to a tenant's first query per kind, and what a miss costs with 100,000 rows in the
// catalog. Writes its section of BENCHMARKS.md. `-- --short` runs a few rounds of each, to check the bench works.
import { PrismaPg } from "@prisma/adapter-pg"
import Database from "better-sqlite3"
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { openCatalog } from "../src/Catalog.js"
import { createFlexiDB } from "../src/index.js"
import * as prisma7 from "../test/fixtures/prisma7/clients.ts"
import { createDatabase, PG_HOST, uniqueName } from "../test/support/databases.js"
import { writeSection } from "./harness.js"

const short = process.argv.includes("--short")
const processes = 8
const rounds = short ? 4 : 50
const creates = short ? 5 : 1_000
const misses = short ? 200 : 5_000
const pollInterval = 1_000
/** How long the fleet serves a resumed tenant before the next suspend. */
const settleMs = 250

const pgServer = `postgresql://postgres@${PG_HOST}/postgres`
const dir = mkdtempSync(join(tmpdir(), "flexidb-bench-catalog-"))
const quantile = (xs: ReadonlyArray<number>, q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN
}
const fmt = (ms: number) => `${ms.toFixed(1)} ms`
const now = () => performance.timeOrigin + performance.now()

const catalogDb = await createDatabase("postgresql")
const template = await createDatabase("postgresql")
const schemaDb = await createDatabase("postgresql")
const templateName = new URL(template.url).pathname.slice(1)
{
  const t = new Database(join(dir, "template.db"))
  t.exec(`CREATE TABLE "User" (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, name TEXT)`)
  t.close()
}
const servers = { main: pgServer, shared: schemaDb.url, files: `file:${dir}` }
const catalog = await openCatalog({
  url: catalogDb.url,
  servers,
  migrations: join(import.meta.dirname, "..", "test", "fixtures", "migrations", "postgresql")
})
const made: Array<string> = []
const lines: Array<string> = []

try {
  // 1. Propagation: 8 processes watch one tenant; each change's delay to the last of them.
  const propagation = async (listen: boolean) => {
    const name = uniqueName("bp").replace(/^flexidb_/, "bc_")
    made.push(name)
    await catalog.create(name, { server: "main", template: templateName })
    const children: Array<{ proc: ChildProcess; seen: Array<{ state: string; at: number }> }> = []
    for (let i = 0; i < processes; i++) {
      const proc = spawn(process.execPath, [
        "--import",
        "tsx",
        join(import.meta.dirname, "catalog-child.ts"),
        catalogDb.url,
        JSON.stringify(servers),
        name,
        listen ? "listen" : "nolisten",
        String(pollInterval)
      ], { stdio: ["ignore", "pipe", "inherit"] })
      const child = { proc, seen: [] as Array<{ state: string; at: number }> }
      let buffer = ""
      proc.stdout!.on("data", (d: Buffer) => {
        buffer += d.toString()
        const parts = buffer.split("\n")
        buffer = parts.pop()!
        for (const l of parts) {
          const [state, at] = l.split(" ")
          child.seen.push({ state: state!, at: Number(at) })
        }
      })
      children.push(child)
    }
    const waitFor = async (state: string, after: number) => {
      for (;;) {
        const found = children.map((c) => c.seen.find((s) => s.state === state && s.at >= after)?.at)
        if (found.every((x) => x !== undefined)) return found as Array<number>
        await new Promise((r) => setTimeout(r, 5))
      }
    }
    await waitFor("ok", 0)
    const delays: Array<number> = []
    for (let r = 0; r < rounds; r++) {
      const suspend = r % 2 === 0
      const before = now()
      if (suspend) await catalog.suspend(name)
      else await catalog.resume(name)
      const done = now()
      const seen = await waitFor(suspend ? "TenantSuspendedError" : "ok", before)
      // A resume is applied when the tenant has been opened again: that is create-to-first-query's cost, not
      // propagation's. Suspends alone are counted.
      if (suspend) delays.push(...seen.map((at) => Math.max(0, at - done)))
      // After a resume every process has just built a new client (CPU-heavy with Prisma): the next suspend is made once
      // the fleet has served the tenant for a moment, or it would measure 8 processes busy on 2 cores, not the change.
      else await new Promise((r) => setTimeout(r, settleMs))
    }
    for (const c of children) c.proc.kill("SIGTERM")
    await Promise.all(children.map((c) => new Promise((r) => (c.proc.exitCode !== null ? r(null) : c.proc.once("exit", r)))))
    return delays
  }
  const notified = await propagation(true)
  const polled = await propagation(false)
  lines.push(
    `## Tenant catalog (\`npm run bench:catalog\`)`,
    "",
    `${processes} app processes following one catalog, ${rounds / 2} suspends (each followed by a resume, then ${settleMs} ms of serving); a`,
    "suspend counts as applied in a process when its next `tenant()` (tried every 2 ms) rejects with TenantSuspendedError, measured",
    "from `suspend()` resolving.",
    "",
    "| | p50 | p99 | max | target |",
    "| --- | --- | --- | --- | --- |",
    `| by LISTEN/NOTIFY | ${fmt(quantile(notified, 0.5))} | ${fmt(quantile(notified, 0.99))} | ${fmt(Math.max(...notified))} | p99 ≤ 100 ms |`,
    `| polling only (LISTEN off, pollInterval ${pollInterval} ms) | ${fmt(quantile(polled, 0.5))} | ${fmt(quantile(polled, 0.99))} | ${fmt(Math.max(...polled))} | ≤ pollInterval + 100 ms |`
  )

  // 2. create → first query, per kind, through an app that follows the catalog.
  const app = createFlexiDB({}, {
    gracefulShutdown: false,
    logger: false,
    tenants: {
      catalog: { url: catalogDb.url, servers },
      // One client type for the bench's purpose (count rows): the SQLite and PostgreSQL clients answer alike.
      client: (url, info): ReturnType<typeof prisma7.postgresql> =>
        info.kind === "file"
          ? prisma7.sqlite(url.replace(/^file:/, "")) as unknown as ReturnType<typeof prisma7.postgresql>
          : info.kind === "schema"
          ? new prisma7.PostgresClient({ adapter: new PrismaPg({ connectionString: url, max: 2 }, { schema: info.location }) })
          : prisma7.postgresql(url),
      maxClients: 20
    }
  })
  const firstQuery = async (kind: "database" | "schema" | "file") => {
    const times: Array<number> = []
    // 1,000 in a row for every kind; each is removed (and dropped) after its first query, untimed, so the server does
    // not fill up with 1,000 databases.
    for (let i = 0; i < creates; i++) {
      const name = uniqueName(kind[0]!).replace(/^flexidb_/, "bk_")
      if (kind === "database") made.push(name)
      const start = now()
      await catalog.create(name, {
        server: kind === "file" ? "files" : kind === "schema" ? "shared" : "main",
        kind,
        ...(kind !== "schema" && { template: kind === "file" ? "template.db" : templateName })
      })
      await (await app.tenant(name)).user.count()
      times.push(now() - start)
      await catalog.remove(name, { drop: true })
    }
    return times
  }
  const kinds = [
    ["PostgreSQL database (template)", await firstQuery("database"), "≤ 250 ms"],
    ["PostgreSQL schema (one script)", await firstQuery("schema"), "≤ 100 ms"],
    ["SQLite file (template)", await firstQuery("file"), "≤ 20 ms"]
  ] as const
  lines.push(
    "",
    "`create(name)` to the tenant's first query (`(await tenant(name)).user.count()`) in an app following the catalog:",
    "",
    "| kind | creates | p50 | p99 | target (p99) |",
    "| --- | --- | --- | --- | --- |",
    ...kinds.map(([k, t, target]) => `| ${k} | ${t.length} | ${fmt(quantile(t, 0.5))} | ${fmt(quantile(t, 0.99))} | ${target} |`)
  )

  // 3. A miss with 100,000 rows: the catalog lookup a miss adds (a suspended row: looked up and refused, nothing opened).
  const admin = new pg.Client({ connectionString: catalogDb.url })
  await admin.connect()
  await admin.query(
    `INSERT INTO flexidb.tenants (name, server, kind, location, state)
     SELECT 'bulk' || i, 'files', 'file', 'bulk' || i || '.db', 'suspended' FROM generate_series(1, 100000) i`
  )
  // A catalog of 100,000 tenants has grown over time: its statistics are current and autovacuum is not busy with a
  // bulk load just made, as it would be here without this.
  await admin.query(`VACUUM ANALYZE flexidb.tenants`)
  await admin.end()
  for (let i = 0; i < 200; i++) await app.tenant(`bulk${1 + i}`).catch(() => undefined)
  const lookups: Array<number> = []
  const rssBefore = process.memoryUsage().rss
  for (let i = 0; i < misses; i++) {
    const name = `bulk${1 + Math.floor(Math.random() * 100_000)}`
    const start = now()
    await app.tenant(name).catch(() => undefined)
    lookups.push(now() - start)
  }
  const rssAfter = process.memoryUsage().rss
  await app.disconnect()
  lines.push(
    "",
    `A miss with 100,000 tenants in the catalog (${misses} random suspended tenants: the lookup, then the refusal):`,
    `p50 ${fmt(quantile(lookups, 0.5))}, p99 ${fmt(quantile(lookups, 0.99))} (target: ≤ 2 ms added). RSS across them: ` +
      `${((rssAfter - rssBefore) / 2 ** 20).toFixed(1)} MiB (nothing of the catalog is held in the process).`
  )
  console.log(lines.join("\n"))
  if (!short) writeSection("catalog", lines)
} finally {
  await catalog.close()
  const a = new pg.Client({ connectionString: pgServer })
  await a.connect()
  for (const name of made) await a.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined)
  await a.end()
  await Promise.all([catalogDb.drop(), template.drop(), schemaDb.drop()])
  rmSync(dir, { recursive: true, force: true })
}
