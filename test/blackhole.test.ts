// Pooled connections that went silent (a load balancer's or NAT's idle timeout forgot them: no FIN, no reset), through
// the fault proxy's blackhole in front of real PostgreSQL and MariaDB. The server itself is fine: a read that draws
// such a connection must neither fail nor wait out the operation timeout.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createFlexiDB } from "../src/index.js"
import type { Provider } from "./support/databases.js"
import { createDatabase } from "./support/databases.js"
import { clientVia } from "./support/prisma.js"
import { proxiedDatabase } from "./support/proxied.js"
import { FaultProxy } from "./support/proxy.js"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
/** Long enough that a read waiting it out is told apart from one that does not, however loaded the machine. */
const operationTimeout = 20_000

describe.each(["postgresql", "mysql"] as const)("%s reads after idle connections were blackholed", (provider: Exclude<Provider, "sqlite">) => {
  const fx = proxiedDatabase(provider)

  /** No retry (a read that fails is seen), no health check or reconnect in the way: the read meets the pool as is. */
  const open = () =>
    createFlexiDB({ main: clientVia(fx.db, fx.proxy.port, { connect: 2000, acquire: 30_000 }) }, {
      gracefulShutdown: false,
      operationTimeout,
      retry: { attempts: 0 },
      healthCheck: { interval: 600_000 },
      reconnect: { enabled: false }
    })

  /** Fills the pool with `n` connections, all idle once the reads are done. */
  const warm = async (flexi: ReturnType<typeof open>, n: number) => {
    const sleepSql = provider === "postgresql" ? "SELECT 1 AS one FROM pg_sleep(0.2)" : "SELECT SLEEP(0.2) AS one"
    await Promise.all(Array.from({ length: n }, () => flexi.get("main").$queryRawUnsafe(sleepSql)))
  }

  it("one read after every idle connection went silent is served, well within the operation timeout", async () => {
    const flexi = open()
    try {
      await warm(flexi, 4)
      fx.proxy.blackhole()
      await fx.proxy.restore() // the server answers new connections; the pool's 4 stay silent for good
      await sleep(1500) // idle past the pool's check threshold, as a connection a NAT forgets is
      const began = Date.now()
      const rows = await flexi.get("main").$queryRaw<Array<{ one: number }>>`SELECT 1 AS one`
      const took = Date.now() - began
      expect(rows.map((r) => Number(r.one))).toEqual([1])
      expect(took).toBeLessThan(operationTimeout / 2)
    } finally {
      await flexi.disconnect()
    }
  }, 60_000)

  it("concurrent reads and a model read after the blackhole all succeed, none waiting out the timeout", async () => {
    const flexi = open()
    try {
      await flexi.get("main").user.create({ data: { email: "bh@x.io" } })
      await warm(flexi, 6)
      fx.proxy.blackhole()
      await fx.proxy.restore()
      await sleep(1500)
      const began = Date.now()
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) =>
        i % 2 === 0 ? flexi.get("main").user.findMany() : flexi.get("main").$queryRaw`SELECT 1 AS one`
      ))
      const took = Date.now() - began
      expect(results.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason))).toEqual([])
      expect(took).toBeLessThan(operationTimeout / 2)
      expect(flexi.stats().main!.circuitState).toBe("closed")
    } finally {
      await flexi.disconnect()
    }
  }, 60_000)
})

describe("postgresql: a write hung on a blackholed connection", () => {
  const fx = proxiedDatabase("postgresql")

  it("a write that times out on a silent connection: the writes after it are served, and disconnect() ends within its timeout", async () => {
    const flexi = createFlexiDB({ main: clientVia(fx.db, fx.proxy.port, { connect: 2000, acquire: 30_000 }) }, {
      gracefulShutdown: false,
      operationTimeout: 5_000,
      disconnectTimeout: 1_000,
      retry: { attempts: 0 },
      healthCheck: { interval: 600_000 },
      reconnect: { enabled: false }
    })
    try {
      // 4 connections in the pool; the first write after the blackhole draws one and times out (its query never ends).
      await Promise.all(Array.from({ length: 4 }, () => flexi.get("main").$queryRawUnsafe("SELECT 1 AS one FROM pg_sleep(0.2)")))
      fx.proxy.blackhole()
      await fx.proxy.restore()
      const first = await flexi.get("main").user.create({ data: { email: "w0@x.io" } }).catch((e: unknown) => e)
      expect(first).toMatchObject({ _tag: "OperationTimeoutError" })
      // Idle past the check's threshold by then, the 3 other silent connections are checked and replaced.
      const outcomes: Array<string> = []
      for (let i = 1; i <= 4; i++) {
        outcomes.push(await flexi.get("main").user.create({ data: { email: `w${i}@x.io` } }).then(() => "ok", (e: unknown) => String(e)))
      }
      expect(outcomes).toEqual(["ok", "ok", "ok", "ok"])
      // The timed-out write's connection never answers: disconnect() gives up on it after disconnectTimeout (1 s
      // here) instead of waiting for the network to say it is gone (84 s when this was written).
      const began = Date.now()
      await flexi.disconnect()
      expect(Date.now() - began).toBeLessThan(30_000)
    } finally {
      await flexi.disconnect()
    }
  }, 90_000)
})

describe("postgresql: writers across many databases while the network goes silent", () => {
  // A fleet's shape (the chaos:fleet run): writers in turn over several databases behind one server, busy enough
  // that no connection is idle when it goes silent. A write in flight then can only time out; what follows must not.
  it("each writer loses at most the write it had in flight: after the restore no write fails or waits out the timeout", async () => {
    const count = 8
    const dbs = await Promise.all(Array.from({ length: count }, () => createDatabase("postgresql")))
    const proxy = await FaultProxy.start(5432)
    const timeout = 5_000
    const flexi = createFlexiDB(
      Object.fromEntries(dbs.map((db, i) => [`t${i}`, clientVia(db, proxy.port, { connect: 2000, acquire: 30_000 })])),
      { gracefulShutdown: false, operationTimeout: timeout, retry: { attempts: 0 }, reconnect: { interval: 200 } }
    )
    try {
      await flexi.ready()
      const calls: Array<{ readonly start: number; readonly ms: number; readonly error?: string }> = []
      let stop = false
      const writers = [0, 1, 2, 3].map(async (w) => {
        for (let i = 0; !stop; i++) {
          const start = performance.now()
          const error = await flexi.get(`t${(w + 4 * i) % count}`).user.create({ data: { email: `w${w}-${i}@x.io` } })
            .then(() => undefined, (e: unknown) => String((e as { code?: string }).code ?? e))
          calls.push({ start, ms: performance.now() - start, ...(error !== undefined && { error }) })
        }
      })
      await sleep(1_000)
      proxy.blackhole()
      await sleep(1_500) // every connection the writers had is silent now, idle ones past the check's threshold
      await proxy.restore()
      const restored = performance.now()
      await sleep(timeout + 3_000) // the hung writes end at their timeout; then 3 s of writes
      stop = true
      await Promise.all(writers)
      const during = calls.filter((c) => c.start < restored)
      const after = calls.filter((c) => c.start >= restored)
      // The fault bit: writes in flight on the silent connections timed out (one per writer, or a few).
      expect(during.filter((c) => c.error === "FLEXIDB_OPERATION_TIMEOUT").length).toBeGreaterThan(0)
      expect(after.filter((c) => c.error !== undefined).map((c) => c.error)).toEqual([])
      expect(after.length).toBeGreaterThan(20)
      expect(Math.max(...after.map((c) => c.ms))).toBeLessThan(timeout)
    } finally {
      await flexi.disconnect()
      await proxy.close()
      for (const db of dbs) await db.drop()
    }
  }, 90_000)
})
