// npm run demo:effect: the same databases composed as Effect Layers. Each Layer connects its client (retried on a
// Schedule, proven with SELECT 1) when built and disconnects it when its scope closes.
import { PrismaBetterSqlite3 } from "@prisma/adapter-better-sqlite3"
import { Console, Context, Effect, Layer } from "effect"
import { mkdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import { Database, FlexiDBService } from "../src/index.js"
import { PrismaClient as AnalyticsClient } from "./generated/analytics/client.ts"
import { PrismaClient as UsersClient } from "./generated/users/client.ts"

const data = join(import.meta.dirname, ".data", "effect")
rmSync(data, { recursive: true, force: true })
mkdirSync(data, { recursive: true })
const sqlite = (name: string) => new PrismaBetterSqlite3({ url: `file:${join(data, `${name}.db`)}` })

class Users extends Context.Tag("Users")<Users, Database.Database<UsersClient>>() {}
class Analytics extends Context.Tag("Analytics")<Analytics, Database.Database<AnalyticsClient>>() {}

const UsersLive = Database.layer(Users, "users", () => new UsersClient({ adapter: sqlite("users") }), {
  retry: { attempts: 3, delay: 200, backoff: "exponential" }
})
const AnalyticsLive = Database.layer(Analytics, "analytics", () => new AnalyticsClient({ adapter: sqlite("analytics") }))

const program = Effect.gen(function*() {
  const users = yield* Users
  const analytics = yield* Analytics
  yield* users.query((c) =>
    c.$executeRawUnsafe(`CREATE TABLE "User" (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL)`)
  )
  yield* analytics.query((c) =>
    c.$executeRawUnsafe(`CREATE TABLE "Event" (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, userId INTEGER NOT NULL)`)
  )

  const ada = yield* users.query((c) => c.user.create({ data: { email: "ada@example.com", name: "Ada" } }))
  yield* analytics.query((c) => c.event.create({ data: { kind: "signup", userId: ada.id } }))

  const [userCount, eventCount] = yield* Effect.all(
    [users.query((c) => c.user.count()), analytics.query((c) => c.event.count())],
    { concurrency: "unbounded" }
  )
  yield* Console.log(`users: ${userCount}, events: ${eventCount}`)

  // Failures are typed: a unique violation is a QueryError carrying Prisma's error as its cause.
  yield* users.query((c) => c.user.create({ data: { email: "ada@example.com", name: "Ada again" } })).pipe(
    Effect.catchTag("QueryError", (e) => Console.log(`caught ${e._tag}: ${(e.cause as { code?: string }).code}`))
  )

  const stats = yield* users.stats
  yield* Console.log(`users stats: ${stats.totalQueries} queries, circuit ${stats.circuitState}`)
  yield* Console.log(`healthy: ${yield* users.health}`)
})

// The whole registry as one typed service: declared once, `get` is typed by name and `batch` takes Effects or
// Promises per database, all in parallel.
class AppDb extends FlexiDBService.Tag("AppDb")<AppDb, { users: UsersClient; analytics: AnalyticsClient }>() {}
const AppDbLive = AppDb.layer(() => ({
  users: new UsersClient({ adapter: sqlite("users") }),
  analytics: new AnalyticsClient({ adapter: sqlite("analytics") })
}), { gracefulShutdown: false })

const report = Effect.gen(function*() {
  const db = yield* AppDb
  const users = yield* db.get("users")
  const ada = yield* Effect.promise(() => users.user.findUniqueOrThrow({ where: { email: "ada@example.com" } }))
  const counts = yield* db.batch({
    users: (c) => c.user.count(),
    analytics: (c) => Effect.promise(() => c.event.count({ where: { userId: ada.id } }))
  })
  yield* Console.log(`batch: ${JSON.stringify(counts)}`)
})

program.pipe(
  Effect.provide(Layer.mergeAll(UsersLive, AnalyticsLive)),
  Effect.zipRight(Effect.provide(report, AppDbLive)),
  Effect.catchTag("ConnectionError", (e) => Console.error(e.message)),
  Effect.runPromise
).then(() => console.log("scope closed: both clients disconnected"))
