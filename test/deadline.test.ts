// An operation keeps one deadline across the runs of a read: the run after a lost connection gets what is left of
// operationTimeout when it is sent, not what was left when the first run failed. Real SQLite; a middleware stands in
// for a connection lost under the first run and for the slow start of the second (a burst of retries after every
// connection dropped: each retry's own Prisma work, one after another, on one event loop).
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createFlexiDB, OperationTimeoutError } from "../src/index.js"
import type { TestDatabase } from "./support/databases.js"
import { createDatabase } from "./support/databases.js"
import { clientFor, generations } from "./support/prisma.js"

const gen7 = generations[1]
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const busy = (ms: number) => {
  const until = Date.now() + ms
  while (Date.now() < until) {
    // the second run's synchronous start, holding the event loop
  }
}

describe("operationTimeout across a read's runs", () => {
  let db: TestDatabase
  beforeAll(async () => {
    db = await createDatabase("sqlite")
  })
  afterAll(async () => {
    await db?.drop()
  })

  it("the run after a lost connection times out at the operation's deadline, not later by its slow start", async () => {
    const timeout = 2000
    const flexi = createFlexiDB({ main: clientFor(gen7, db) }, { gracefulShutdown: false, operationTimeout: timeout })
    try {
      await flexi.get("main").user.count()
      let runs = 0
      flexi.use(async (_database, operation, next) => {
        if (operation !== "User.findMany") return next()
        runs++
        if (runs === 1) {
          await sleep(500)
          throw Object.assign(new Error("Server has closed the connection."), { code: "P1017" })
        }
        busy(1000) // sent at about 1.5 s: 0.5 s of the deadline left
        return new Promise(() => undefined) // and never answered
      })
      const began = Date.now()
      const error = await flexi.get("main").user.findMany().catch((e: unknown) => e)
      const took = Date.now() - began
      expect(runs).toBe(2)
      expect(error).toBeInstanceOf(OperationTimeoutError)
      // At the deadline (2 s), give or take a loaded machine; the deadline counted from the first run's failure would
      // have fired at 3 s.
      expect(took).toBeLessThan(timeout + 700)
    } finally {
      await flexi.disconnect()
    }
  }, 30_000)
})
