// A second MariaDB server for tests, beside the one on 3306: mariadb-install-db into a temporary folder, mariadbd on a
// free port. stop() ends that process (by its pid) and removes the folder.
import { execFileSync, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as mariadb from "mariadb"
import { freePort } from "./replica.js"

export interface MariaServer {
  readonly url: string
  readonly query: (sql: string) => Promise<Array<Record<string, unknown>>>
  readonly stop: () => Promise<void>
}

export const startMariaDb = async (): Promise<MariaServer> => {
  const dir = mkdtempSync(join(tmpdir(), "flexidb-mariadb-"))
  execFileSync("mariadb-install-db", [
    "--no-defaults",
    `--datadir=${dir}/data`,
    "--user=root",
    "--auth-root-authentication-method=normal",
    "--skip-test-db"
  ], { stdio: "ignore" })
  const port = await freePort()
  const proc = spawn("/usr/sbin/mariadbd", [
    "--no-defaults",
    `--datadir=${dir}/data`,
    `--port=${port}`,
    `--socket=${dir}/sock`,
    "--bind-address=127.0.0.1",
    "--user=root",
    "--skip-log-bin"
  ], { stdio: "ignore" })
  const exited = new Promise<void>((r) => proc.on("exit", () => r()))
  const query = async (sql: string) => {
    const c = await mariadb.createConnection({ host: "127.0.0.1", port, user: "root", password: "", multipleStatements: true })
    try {
      const rows: unknown = await c.query(sql)
      return Array.isArray(rows) ? [...rows] as Array<Record<string, unknown>> : []
    } finally {
      await c.end()
    }
  }
  for (let i = 0; ; i++) {
    try {
      await query("SELECT 1")
      break
    } catch (e) {
      if (i > 300) throw e
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  return {
    url: `mysql://root@127.0.0.1:${port}/`,
    query,
    stop: async () => {
      proc.kill("SIGTERM")
      await exited
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
