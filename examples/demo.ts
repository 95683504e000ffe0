// npm run demo: two SQLite databases (users, analytics) and a tenant registered at run time, managed by flexidb.
// Runs on embedded SQLite files under examples/.data: no server needed.
import { PrismaBetterSqlite3 } from "@prisma/adapter-better-sqlite3"
import { mkdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import { createFlexiDB } from "../src/index.js"
import { PrismaClient as AnalyticsClient } from "./generated/analytics/client.ts"
import { PrismaClient as UsersClient } from "./generated/users/client.ts"

const data = join(import.meta.dirname, ".data")
rmSync(data, { recursive: true, force: true })
mkdirSync(data, { recursive: true })
const sqlite = (name: string) => new PrismaBetterSqlite3({ url: `file:${join(data, `${name}.db`)}` })

const log = (title: string, value?: unknown) =>
  console.log(`\n\x1b[1m▸ ${title}\x1b[0m${value === undefined ? "" : `\n${typeof value === "string" ? value : JSON.stringify(value, null, 2)}`}`)

const db = createFlexiDB(
  {
    users: new UsersClient({ adapter: sqlite("users") }),
    analytics: new AnalyticsClient({ adapter: sqlite("analytics") })
  },
  {
    healthCheck: { interval: 30_000, onStatusChange: (name, ok) => console.log(`  [health] ${name} is ${ok ? "up" : "down"}`) },
    hooks: { onConnect: (name) => console.log(`  [hook] connected ${name}`) }
  }
)

log("createFlexiDB returned at once; waiting for the first connections")
console.log(await db.ready())

// Schema for the demo (an app would run `flexidb migrate deploy`).
await db.get("users").$executeRawUnsafe(
  `CREATE TABLE "User" (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL)`
)
await db.get("analytics").$executeRawUnsafe(
  `CREATE TABLE "Event" (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, userId INTEGER NOT NULL)`
)

log("middleware: every operation, with its database and name")
db.use(async (database, operation, next) => {
  const start = performance.now()
  try {
    return await next()
  } finally {
    console.log(`  [mw] ${database.padEnd(9)} ${operation.padEnd(18)} ${(performance.now() - start).toFixed(2)} ms`)
  }
})

log("get(): each name is its own typed Prisma client")
const ada = await db.get("users").user.create({ data: { email: "ada@example.com", name: "Ada" } })
await db.get("analytics").event.create({ data: { kind: "signup", userId: ada.id } })

log("batch(): one operation per database, in parallel")
const summary = await db.batch({
  users: (c) => c.user.count(),
  analytics: (c) => c.event.groupBy({ by: ["kind"], _count: true })
})
console.log(summary)

log("register(): a tenant database added at run time")
const withTenant = db.register("tenant_acme", new UsersClient({ adapter: sqlite("tenant_acme") }))
await withTenant.get("tenant_acme").$executeRawUnsafe(
  `CREATE TABLE "User" (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL)`
)
await withTenant.get("tenant_acme").user.create({ data: { email: "grace@acme.test", name: "Grace" } })

log("unknown names are errors that list what exists")
try {
  withTenant.get("tenant_nope" as "users")
} catch (error) {
  console.log(`  ${(error as Error).message}`)
}

log("health()", await withTenant.health())

log("stats()")
console.table(
  Object.fromEntries(
    Object.entries(withTenant.stats()).map(([name, s]) => [name, {
      connected: s.connected,
      queries: s.totalQueries,
      failed: s.failedQueries,
      "avg ms": Number(s.avgResponseTimeMs.toFixed(3)),
      circuit: s.circuitState
    }])
  )
)

await db.disconnect()
log("disconnected: every client closed, every fiber ended")
