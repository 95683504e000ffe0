// A real PgBouncer (the Debian package) in transaction pooling mode in front of the test PostgreSQL: its own config,
// port and folder, run as the postgres user (PgBouncer refuses root). Removed by stop().
import { execFileSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { PG_HOST } from "./databases.js"
import { freePort } from "./replica.js"

export interface PgBouncer {
  readonly port: number
  /** `url` (a database on the test server) rewritten to go through PgBouncer. */
  readonly via: (url: string) => string
  /** Transactions PgBouncer has passed to the server so far, over every database (its `SHOW STATS`). */
  readonly transactions: () => Promise<number>
  /** Client connections PgBouncer holds now to any of `databases` (its `SHOW CLIENTS`). */
  readonly clients: (databases: ReadonlyArray<string>) => Promise<number>
  /** Server connections PgBouncer holds open now to any of `databases` (its `SHOW SERVERS`). */
  readonly servers: (databases: ReadonlyArray<string>) => Promise<number>
  readonly stop: () => void
}

const binary = "/usr/sbin/pgbouncer"

/**
 * Starts PgBouncer: `poolSize` server connections at most per database, `serverConnections` at most in all (it closes
 * idle ones of other databases to stay within).
 */
export const startPgBouncer = async (
  poolSize: number,
  serverConnections: number,
  /** More `[pgbouncer]` settings, e.g. `{ query_wait_timeout: 3 }`. */
  settings: Readonly<Record<string, string | number>> = {}
): Promise<PgBouncer> => {
  if (!existsSync(binary)) {
    throw new Error(`PgBouncer is not installed (${binary}): apt-get install pgbouncer (.ci/run does it).`)
  }
  const dir = mkdtempSync(join(tmpdir(), "flexidb-pgbouncer-"))
  execFileSync("chown", ["postgres", dir])
  const port = await freePort()
  const [host, serverPort] = PG_HOST.split(":")
  writeFileSync(join(dir, "users.txt"), `"postgres" ""\n`)
  writeFileSync(
    join(dir, "pgbouncer.ini"),
    [
      "[databases]",
      `* = host=${host} port=${serverPort}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      `unix_socket_dir = ${dir}`,
      "auth_type = trust",
      `auth_file = ${dir}/users.txt`,
      "admin_users = postgres",
      "pool_mode = transaction",
      `default_pool_size = ${poolSize}`,
      `max_user_connections = ${serverConnections}`,
      "max_client_conn = 900",
      "ignore_startup_parameters = extra_float_digits,options",
      `logfile = ${dir}/pgbouncer.log`,
      `pidfile = ${dir}/pgbouncer.pid`,
      ...Object.entries(settings).map(([k, v]) => `${k} = ${v}`)
    ].join("\n") + "\n"
  )
  execFileSync("su", ["postgres", "-s", "/bin/sh", "-c", `${binary} -d ${dir}/pgbouncer.ini`], { stdio: "pipe" })
  const show = async (what: string): Promise<Array<Record<string, unknown>>> => {
    const admin = new pg.Client({ connectionString: `postgresql://postgres@127.0.0.1:${port}/pgbouncer` })
    await admin.connect()
    try {
      return (await admin.query(`SHOW ${what}`)).rows
    } finally {
      await admin.end()
    }
  }
  // Ready when its admin console answers.
  for (let n = 0; ; n++) {
    try {
      await show("VERSION")
      break
    } catch (error) {
      if (n > 200) throw new Error(`PgBouncer did not start (${String(error)}): ${readFileSync(join(dir, "pgbouncer.log"), "utf8")}`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
  let stopped = false
  return {
    port,
    via: (url) => {
      const u = new URL(url)
      u.host = `127.0.0.1:${port}`
      return u.toString()
    },
    transactions: async () =>
      (await show("STATS")).reduce((sum, r) => sum + Number(r.total_xact_count), 0),
    clients: async (databases) => (await show("CLIENTS")).filter((r) => databases.includes(String(r.database))).length,
    servers: async (databases) => (await show("SERVERS")).filter((r) => databases.includes(String(r.database))).length,
    stop: () => {
      if (stopped) return
      stopped = true
      try {
        process.kill(Number(readFileSync(join(dir, "pgbouncer.pid"), "utf8").trim()), "SIGTERM")
      } catch {
        // already gone
      }
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
