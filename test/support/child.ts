// A small app run as a child process by shutdown.test.ts. argv: mode, sqlite file.
import { createFlexiDB } from "../../src/index.js"
import * as prisma7 from "../fixtures/prisma7/clients.ts"

const [mode, file] = process.argv.slice(2) as [string, string]
const db = createFlexiDB(
  { app: prisma7.sqlite(file), down: prisma7.postgresql("postgresql://postgres:pw@127.0.0.1:1/none") },
  {
    retry: { attempts: 0 },
    healthCheck: { interval: 200, timeout: 500 },
    reconnect: { interval: 100, maxAttempts: 1000 },
    hooks: { onDisconnect: (name) => console.log(`disconnected:${name}`) }
  }
)
if (mode === "own-handler") {
  process.on("SIGINT", () => {
    console.log("app-handler")
    setTimeout(() => {
      console.log(`app-exits:${JSON.stringify(db.list())}`)
      process.exit(0)
    }, 300)
  })
}
await db.ready()
await db.get("app").user.count()
console.log("ready")
if (mode === "disconnect") await db.disconnect()
// Otherwise wait for a signal: health and reconnect fibers keep the process alive meanwhile.
