// MariaDB serving again after a refusal ends, through the fault proxy in front of the real server. mariadb's pool
// retries a failed connection every 500 ms within a round of `initializationTimeout` (by default acquireTimeout -
// 100 ms), and after each failed round waits 200 ms more than after the one before before it tries again: a refusal
// of a few seconds under load left it waiting past flexidb's reconnect attempt, which then failed and waited another
// interval. With the pool's round as long as the outages it should ride out (README: Reliability), it keeps trying
// every 500 ms, and flexidb's first reconnect attempt after the server is back finds it serving.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createFlexiDB } from "../src/index.js"
import type { TestDatabase } from "./support/databases.js"
import { createDatabase } from "./support/databases.js"
import { clientVia } from "./support/prisma.js"
import { FaultProxy } from "./support/proxy.js"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const interval = 1000

describe("mariadb after a refusal ends", () => {
  let db: TestDatabase
  let proxy: FaultProxy
  beforeAll(async () => {
    db = await createDatabase("mysql")
    proxy = await FaultProxy.start(3306)
  })
  afterAll(async () => {
    await proxy?.close()
    await db?.drop()
  })

  it("serves again within one reconnect interval of the restore, after refusals of 3 and 6 s under load", async () => {
    const flexi = createFlexiDB({
      main: clientVia(db, proxy.port, { connect: 500, acquire: 1000, initialization: 3_600_000 })
    }, {
      gracefulShutdown: false,
      logger: false,
      operationTimeout: 1000,
      reconnect: { interval, maxAttempts: 1000 },
      healthCheck: { interval, timeout: 500 },
      circuitBreaker: { threshold: 5, resetTimeout: 5000 }
    })
    try {
      await flexi.get("main").$queryRaw`SELECT 1`
      const recoveries: Array<number> = []
      for (const hold of [3000, 6000]) {
        // 4 readers throughout: the pool has requests waiting while it is refused, as under an app's load.
        let on = true
        const readers = Array.from({ length: 4 }, async () => {
          while (on) {
            await flexi.get("main").$queryRaw`SELECT 1`.catch(() => undefined)
            await sleep(50)
          }
        })
        await proxy.refuse()
        await sleep(hold)
        await proxy.restore()
        const restored = Date.now()
        for (;;) {
          const ok = await flexi.get("main").$queryRaw`SELECT 1`.then(() => true, () => false)
          if (ok) break
          await sleep(20)
        }
        recoveries.push(Date.now() - restored)
        on = false
        await Promise.all(readers)
      }
      // One interval for flexidb's next reconnect attempt (the circuit refuses calls until then), plus one second for
      // the attempt itself on a loaded machine: an attempt that failed because the pool was still waiting would
      // cost another interval.
      expect(recoveries.every((ms) => ms < interval + 1000), `recoveries ${recoveries.join(", ")} ms`).toBe(true)
    } finally {
      await flexi.disconnect()
    }
  }, 90_000)
})
