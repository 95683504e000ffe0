// PostgreSQL clusters with wal_level = logical for the move tests: each initdb'd as the postgres user in a temporary
// folder, on a free port, beside (never touching) the system cluster on 5432. stop() kills them and removes the folder.
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { openCatalog } from "../../src/Catalog.js"
import type { Catalog } from "../../src/Catalog.js"
import { createDatabase } from "./databases.js"
import type { TestDatabase } from "./databases.js"
import { freePort } from "./replica.js"

const bin = (() => {
  const versions = execFileSync("ls", ["/usr/lib/postgresql"], { encoding: "utf8" }).trim().split("\n").sort()
  return `/usr/lib/postgresql/${versions.at(-1)}/bin`
})()

const asPostgres = (script: string) =>
  execFileSync("su", ["postgres", "-s", "/bin/sh", "-c", script], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })

export interface LogicalCluster {
  readonly port: number
  readonly url: (database?: string) => string
  readonly sql: (text: string, database?: string, params?: ReadonlyArray<unknown>) => Promise<Array<Record<string, any>>>
}

export interface LogicalClusters {
  readonly clusters: ReadonlyArray<LogicalCluster>
  readonly stop: () => void
  /** Stops cluster `i` (fast shutdown: sessions ended) / starts it again on its port, its data kept. */
  readonly halt: (i: number) => void
  readonly start: (i: number) => void
}

export const startLogicalClusters = async (count: number): Promise<LogicalClusters> => {
  const dir = mkdtempSync(join(tmpdir(), "flexidb-logical-"))
  execFileSync("chown", ["postgres", dir])
  const ports: Array<number> = []
  for (let i = 0; i < count; i++) ports.push(await freePort())
  asPostgres(ports.map((port, i) => [
    `${bin}/initdb -D ${dir}/c${i} -A trust -U postgres > /dev/null`,
    `printf 'wal_level = logical\\nmax_replication_slots = 20\\nmax_wal_senders = 20\\nfsync = off\\n' >> ${dir}/c${i}/postgresql.conf`,
    `${bin}/pg_ctl -D ${dir}/c${i} -o '-p ${port} -k ${dir} -c listen_addresses=127.0.0.1' -l ${dir}/c${i}.log -w start > /dev/null`
  ].join(" && ")).join(" && "))
  let stopped = false
  return {
    clusters: ports.map((port) => {
      const url = (database = "postgres") => `postgresql://postgres@127.0.0.1:${port}/${database}`
      return {
        port,
        url,
        sql: async (text, database, params) => {
          const c = new pg.Client({ connectionString: url(database) })
          await c.connect()
          try {
            return (await c.query(text, params as Array<unknown>)).rows
          } finally {
            await c.end()
          }
        }
      }
    }),
    halt: (i) => {
      asPostgres(`${bin}/pg_ctl -D ${dir}/c${i} -m fast -w stop > /dev/null`)
    },
    start: (i) => {
      asPostgres(`${bin}/pg_ctl -D ${dir}/c${i} -o '-p ${ports[i]} -k ${dir} -c listen_addresses=127.0.0.1' -l ${dir}/c${i}.log -w start > /dev/null`)
    },
    stop: () => {
      if (stopped) return
      stopped = true
      for (let i = 0; i < count; i++) {
        try {
          asPostgres(`${bin}/pg_ctl -D ${dir}/c${i} -m immediate stop > /dev/null 2>&1`)
        } catch {
          // already stopped
        }
      }
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

/**
 * Inserts a unique key every few milliseconds into wherever the catalog row points (`urlOf(server, location)`),
 * and records each key the server acknowledged. A failed insert is not retried: it is simply not acknowledged.
 */
export const writer = (
  lookup: () => Promise<{ readonly server: string; readonly location: string } | undefined>,
  urlOf: (server: string, location: string) => string,
  prefix = "w"
) => {
  let stopping = false
  const acked: Array<string> = []
  let failures = 0
  const done = (async () => {
    let conn: pg.Client | undefined
    let at = ""
    for (let i = 0; !stopping; i++) {
      const key = `${prefix}${i}@x.io`
      try {
        const row = (await lookup())!
        const where = urlOf(row.server, row.location)
        if (where !== at || conn === undefined) {
          await conn?.end().catch(() => undefined)
          conn = new pg.Client({ connectionString: where })
          conn.on("error", () => undefined)
          at = where
          await conn.connect()
        }
        await conn.query(`INSERT INTO "User" (email) VALUES ($1)`, [key])
        acked.push(key)
      } catch {
        failures++
        await conn?.end().catch(() => undefined)
        conn = undefined
      }
      await new Promise((r) => setTimeout(r, 3))
    }
    await conn?.end().catch(() => undefined)
  })()
  return {
    acked,
    failures: () => failures,
    stop: async () => {
      stopping = true
      await done
    }
  }
}

/** What moveFixture() sets up for a move suite; read its fields inside tests (setup() sets them). */
export interface MoveFixture {
  /** For beforeAll (120 s): two logical clusters, the catalog database on 5432 opened with them, `tpl` on east. */
  readonly setup: () => Promise<void>
  /** For afterAll (60 s): all of it gone. */
  readonly teardown: () => Promise<void>
  readonly catalog: Catalog
  readonly catalogDb: TestDatabase
  /** east and west (the two logical clusters), plus the extra servers given. */
  readonly servers: () => Record<string, string>
  readonly cluster: (server: string) => LogicalCluster
}

/**
 * A move suite's setup, shared by the catalog-move suites: two logical clusters (east, west), a catalog database on
 * 5432 opened with them (and `extraServers`), and a template database `tpl` on east made of `templateSql`. The suite
 * calls `beforeAll(fx.setup, 120_000)` and `afterAll(fx.teardown, 60_000)` (this file is also the bench's, outside
 * vitest, so it does not register them itself).
 */
export const moveFixture = (templateSql: string, extraServers: Record<string, string> = {}): MoveFixture => {
  let clusters: LogicalClusters | undefined
  let catalogDb: TestDatabase | undefined
  let catalog: Catalog | undefined
  const servers = () => ({ east: clusters!.clusters[0]!.url(), west: clusters!.clusters[1]!.url(), ...extraServers })
  const cluster = (server: string) => clusters!.clusters[server === "east" ? 0 : 1]!
  return {
    setup: async () => {
      clusters = await startLogicalClusters(2)
      catalogDb = await createDatabase("postgresql")
      catalog = await openCatalog({ url: catalogDb.url, servers: servers() })
      await cluster("east").sql(`CREATE DATABASE tpl`)
      await cluster("east").sql(templateSql, "tpl")
    },
    teardown: async () => {
      await catalog?.close()
      await catalogDb?.drop()
      clusters?.stop()
    },
    get catalog() {
      return catalog!
    },
    get catalogDb() {
      return catalogDb!
    },
    servers,
    cluster
  }
}
