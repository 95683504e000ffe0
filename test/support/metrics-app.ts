// A flexidb app for `flexidb top` tests, run as a child process: a SQLite database under steady load, one that is
// down (its circuit open), and SQLite tenants, serving /metrics on the port given as its first argument. Prints
// "ready" once it serves; stops on SIGTERM.
import Database from "better-sqlite3"
import { copyFileSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createFlexiDB } from "../../src/index.js"
import * as prisma7 from "../fixtures/prisma7/clients.ts"

const port = Number(process.argv[2])
const dir = mkdtempSync(join(tmpdir(), "flexidb-metrics-app-"))
const template = join(dir, "template.db")
const t = new Database(template)
t.exec(`CREATE TABLE "User" (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, name TEXT)`)
t.close()
const sqlite = (name: string) => {
  const file = join(dir, `${name}.db`)
  try {
    copyFileSync(template, file, 1)
  } catch {
    // exists
  }
  return prisma7.sqlite(file)
}

const db = createFlexiDB({
  main: sqlite("main"),
  down: prisma7.postgresql("postgresql://nobody@127.0.0.1:1/none")
} as Record<string, ReturnType<typeof sqlite>>, {
  gracefulShutdown: false,
  logger: false,
  prometheus: { port },
  retry: { attempts: 0 },
  reconnect: { enabled: false },
  circuitBreaker: { threshold: 1, resetTimeout: 600_000 },
  tenants: { resolve: (name) => sqlite(name), maxClients: 3 }
})
await db.ready()
let running = true
const load = (async () => {
  for (let round = 0; running; round++) {
    await db.get("main").user.count()
    await db.get("down").user.count().catch(() => {})
    await (await db.tenant(`t${round % 5}`)).user.count()
    await new Promise((r) => setTimeout(r, 10))
  }
})()
console.log("ready")
process.once("SIGTERM", async () => {
  running = false
  await load.catch(() => {})
  await db.disconnect()
  rmSync(dir, { recursive: true, force: true })
  process.exit(0)
})
