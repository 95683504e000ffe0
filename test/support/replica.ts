// Real PostgreSQL streaming replicas for tests: a primary cluster and replicas of it (pg_basebackup -R), each on a
// free port, in a temporary folder, run as the postgres user. A few seconds to start here; removed by stop().
import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"

const bin = (() => {
  const versions = execFileSync("ls", ["/usr/lib/postgresql"], { encoding: "utf8" }).trim().split("\n").sort()
  return `/usr/lib/postgresql/${versions.at(-1)}/bin`
})()

/** A port nothing listens on now (the OS picks it). */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })

const asPostgres = (script: string) =>
  execFileSync("su", ["postgres", "-s", "/bin/sh", "-c", script], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })

export interface Cluster {
  readonly port: number
  readonly url: (database?: string) => string
  /** Runs SQL as postgres on this cluster's `postgres` database. */
  readonly sql: (text: string, database?: string) => Promise<Array<Record<string, unknown>>>
}

export interface ReplicaSet {
  readonly primary: Cluster
  readonly replicas: ReadonlyArray<Cluster>
  /** Holds replica `i`'s replay of the primary's WAL: replication lag on demand. */
  readonly pauseReplay: (i?: number) => Promise<void>
  readonly resumeReplay: (i?: number) => Promise<void>
  /** Waits until every replica has replayed everything the primary has written so far. */
  readonly caughtUp: () => Promise<void>
  /** Kills replica `i` at once (`pg_ctl stop -m immediate`), as a crash would. */
  readonly killReplica: (i?: number) => void
  /** Starts replica `i` again after killReplica(). */
  readonly startReplica: (i?: number) => void
  readonly stop: () => void
}

const cluster = (port: number): Cluster => {
  const url = (database = "postgres") => `postgresql://postgres@127.0.0.1:${port}/${database}`
  return {
    port,
    url,
    sql: async (text, database) => {
      const client = new pg.Client({ connectionString: url(database) })
      await client.connect()
      try {
        return (await client.query(text)).rows
      } finally {
        await client.end()
      }
    }
  }
}

/** Starts a primary and `count` streaming replicas of it. */
export const startReplicaSet = async (count = 1): Promise<ReplicaSet> => {
  const dir = mkdtempSync(join(tmpdir(), "flexidb-replica-"))
  execFileSync("chown", ["postgres", dir])
  const p = await freePort()
  const ports: Array<number> = []
  for (let i = 0; i < count; i++) ports.push(await freePort())
  const ctl = (data: string, port: number, action: string) =>
    `${bin}/pg_ctl -D ${dir}/${data} -o '-p ${port} -k ${dir} -c listen_addresses=127.0.0.1' -l ${dir}/${data}.log -w ${action}`
  asPostgres([
    `${bin}/initdb -D ${dir}/p -A trust -U postgres > /dev/null`,
    `echo 'host replication all 127.0.0.1/32 trust' >> ${dir}/p/pg_hba.conf`,
    ctl("p", p, "start") + " > /dev/null",
    ...ports.flatMap((port, i) => [
      `${bin}/pg_basebackup -h 127.0.0.1 -p ${p} -U postgres -D ${dir}/r${i} -R`,
      ctl(`r${i}`, port, "start") + " > /dev/null"
    ])
  ].join(" && "))
  const primary = cluster(p)
  const replicas = ports.map(cluster)
  const lsn = async (c: Cluster, fn: string) => String((await c.sql(`SELECT ${fn}()::text AS lsn`))[0]!.lsn)
  let stopped = false
  return {
    primary,
    replicas,
    pauseReplay: async (i = 0) => {
      await replicas[i]!.sql("SELECT pg_wal_replay_pause()")
    },
    resumeReplay: async (i = 0) => {
      await replicas[i]!.sql("SELECT pg_wal_replay_resume()")
    },
    caughtUp: async () => {
      const target = await lsn(primary, "pg_current_wal_lsn")
      for (const replica of replicas) {
        for (let n = 0; ; n++) {
          const [{ ok }] = (await replica.sql(`SELECT pg_last_wal_replay_lsn() >= '${target}'::pg_lsn AS ok`)) as [{ ok: boolean }]
          if (ok) break
          if (n > 500) throw new Error("a replica did not catch up within 5 s")
          await new Promise((resolve) => setTimeout(resolve, 10))
        }
      }
    },
    killReplica: (i = 0) => {
      asPostgres(`${bin}/pg_ctl -D ${dir}/r${i} -m immediate stop > /dev/null`)
    },
    startReplica: (i = 0) => {
      asPostgres(ctl(`r${i}`, ports[i]!, "start") + " > /dev/null")
    },
    stop: () => {
      if (stopped) return
      stopped = true
      for (const data of [...ports.map((_, i) => `r${i}`), "p"]) {
        try {
          asPostgres(`${bin}/pg_ctl -D ${dir}/${data} -m immediate stop > /dev/null 2>&1`)
        } catch {
          // already stopped
        }
      }
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
