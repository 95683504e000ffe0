// PostgreSQL clusters with wal_level = logical for the move tests: each initdb'd as the postgres user in a temporary
// folder, on a free port, beside (never touching) the system cluster on 5432. stop() kills them and removes the folder.
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
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
