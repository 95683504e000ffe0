// Dropped connections on a healthy server (a failover, a pooler restart, a load balancer's idle timeout), through a
// real TCP proxy in front of real PostgreSQL and MariaDB: reads survive them, and every failed operation says
// whether it may have taken effect.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createFlexiDB, isOutcomeUnknown } from "../src/index.js"
import type { FlexiDBOptions } from "../src/index.js"
import type { Provider } from "./support/databases.js"
import { clientVia } from "./support/prisma.js"
import { proxiedDatabase } from "./support/proxied.js"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.each(["postgresql", "mysql"] as const)("%s connections dropped under load", (provider: Exclude<Provider, "sqlite">) => {
  const fx = proxiedDatabase(provider)

  /** An instance over the proxy, with no health check in the way (60 s apart), and `options` on top. */
  const open = (options: FlexiDBOptions = {}) =>
    createFlexiDB({ main: clientVia(fx.db, fx.proxy.port, { connect: 1000, acquire: 2000 }) }, {
      gracefulShutdown: false,
      healthCheck: { interval: 60_000 },
      ...options
    })

  /**
   * `loops` loops of `op` while every connection is dropped `drops` times, at least 100 ms apart. A drop waits until
   * every loop has finished an operation begun after the one before: each drop is a fault of its own, with the
   * server reachable in between, however slow a starved CI machine makes a query and its pool's reconnect.
   */
  const underDrops = async (loops: number, drops: number, op: (loop: number) => PromiseLike<unknown>) => {
    let on = true
    let done = 0
    let dropped = 0
    const failures: Array<unknown> = []
    /** For each loop, how many drops there had been when its last finished operation began. */
    const finished = Array.from({ length: loops }, () => -1)
    const running = Array.from({ length: loops }, async (_, l) => {
      while (on) {
        const began = dropped
        try {
          await op(l)
          done++
        } catch (error) {
          failures.push(error)
          await sleep(5) // a refusal is immediate: let the timers run
        }
        finished[l] = began
      }
    })
    while (dropped < drops) {
      await sleep(100)
      while (finished.some((began) => began < dropped)) await sleep(5)
      dropped++
      fx.proxy.dropAll()
    }
    await sleep(40)
    on = false
    await Promise.all(running)
    return { done, failures }
  }
  const messages = (errors: ReadonlyArray<unknown>) => errors.map((e) => (e as Error).message)

  it("4 readers lose no read across 30 drops of every connection, and the circuit stays closed", async () => {
    const flexi = open({ circuitBreaker: { threshold: 3 } })
    try {
      await flexi.get("main").user.create({ data: { email: "seed@x.io" } })
      // Model reads and a plain SELECT through $queryRaw.
      const { done: reads, failures } = await underDrops(4, 30, (r) =>
        r % 2 === 0 ? flexi.get("main").user.findMany() : flexi.get("main").$queryRaw`SELECT 1 AS one`
      )
      expect(messages(failures)).toEqual([])
      expect(reads).toBeGreaterThan(100)
      expect(flexi.stats().main!.circuitState).toBe("closed")
    } finally {
      await flexi.disconnect()
    }
  })

  it("the reads of batch() operations survive the drops too, and each operation runs once", async () => {
    const flexi = open({ circuitBreaker: { threshold: 3 } })
    try {
      await flexi.get("main").user.create({ data: { email: "seed-batch@x.io" } })
      let calls = 0
      const { done: reads, failures } = await underDrops(4, 30, (r) =>
        flexi.batch({
          main: (client) => {
            calls++
            return r % 2 === 0 ? client.user.findMany() : client.$queryRaw`SELECT 1 AS one`
          }
        })
      )
      expect(messages(failures)).toEqual([])
      expect(reads).toBeGreaterThan(100)
      // The operation is the app's function: run once per batch, counted once.
      expect(calls).toBe(reads)
      expect(flexi.stats().main!.totalQueries).toBe(reads + 1)
      expect(flexi.stats().main!.circuitState).toBe("closed")
    } finally {
      await flexi.disconnect()
    }
  })

  it("writes failing together when every connection drops are one failure: the circuit stays closed", async () => {
    const flexi = open({ circuitBreaker: { threshold: 2 } })
    try {
      await flexi.get("main").user.count()
      let n = 0
      const { done: writes, failures } = await underDrops(8, 20, () =>
        flexi.get("main").user.create({ data: { email: `burst${n++}@x.io` } })
      )
      // Writes in flight failed (never run again; a write whose new connection dropped before it was sent may say
      // its outcome is known), and none was refused by the circuit.
      expect(failures.length).toBeGreaterThan(0)
      expect(failures.some((e) => isOutcomeUnknown(e))).toBe(true)
      expect(failures.filter((e) => (e as { code?: string }).code === "FLEXIDB_CIRCUIT_OPEN")).toEqual([])
      expect(flexi.stats().main!.circuitState).toBe("closed")
      expect(writes).toBeGreaterThan(100)
    } finally {
      await flexi.disconnect()
    }
  })

  it("a write whose connection is lost is not run again, and says its outcome is unknown", async () => {
    const flexi = open()
    try {
      await flexi.get("main").user.count()
      // A write in flight when every connection drops: the server may or may not have committed it.
      const insert = provider === "postgresql"
        ? `INSERT INTO "User" (email) SELECT 'lost@x.io' FROM pg_sleep(0.5)`
        : "INSERT INTO `User` (email) SELECT 'lost@x.io' FROM (SELECT SLEEP(0.5)) AS s"
      const raw = flexi.get("main").$executeRawUnsafe(insert)
      const write = Promise.resolve(raw).then(() => "committed", (e: unknown) => e)
      await sleep(150)
      fx.proxy.dropAll()
      const error = await write
      expect(error).toBeInstanceOf(Error)
      expect((error as { outcomeUnknown?: unknown }).outcomeUnknown).toBe(true)
      expect(isOutcomeUnknown(error)).toBe(true)
      // Not retried: at most the one row the server may have committed.
      await sleep(700)
      expect(await flexi.get("main").user.count({ where: { email: "lost@x.io" } })).toBeLessThanOrEqual(1)
      // A failure the server reported is known: the write did not happen.
      await flexi.get("main").user.create({ data: { email: "dup@x.io" } })
      const duplicate = await flexi.get("main").user.create({ data: { email: "dup@x.io" } }).catch((e: unknown) => e)
      expect(duplicate).toMatchObject({ code: "P2002", outcomeUnknown: false })
    } finally {
      await flexi.disconnect()
    }
  })

  it("a refused connection and an open circuit say the operation never ran", async () => {
    const flexi = open({ retry: { attempts: 0 }, reconnect: { enabled: false }, circuitBreaker: { threshold: 1, resetTimeout: 60_000 } })
    try {
      await flexi.get("main").user.count()
      await fx.proxy.refuse()
      // Once the pool has let its closed connections go, a new one is refused before anything is sent. (A write on a
      // pooled connection that died under it is another matter: that one may have reached the server.)
      await sleep(200)
      const refused = await flexi.get("main").user.create({ data: { email: "never@x.io" } }).catch((e: unknown) => e)
      expect(isOutcomeUnknown(refused)).toBe(false)
      const open = await flexi.get("main").user.create({ data: { email: "never@x.io" } }).catch((e: unknown) => e)
      expect(open).toMatchObject({ code: "FLEXIDB_CIRCUIT_OPEN", outcomeUnknown: false })
    } finally {
      await fx.proxy.restore()
      await flexi.disconnect()
    }
  })
})
