// Retry delays, breaker timing, health intervals and reconnect, driven by TestClock: no test here sleeps.
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, TestClock } from "effect"
import pg from "pg"
import { CircuitOpenError, ConnectionError, Database, FlexiDBService, OperationTimeoutError } from "../src/index.js"
import { createDatabase, PG_HOST } from "./support/databases.js"
import type { TestDatabase } from "./support/databases.js"
import { flush, stepUntil, until } from "./support/effect.js"
import { flaky } from "./support/flaky.js"
import { clientFor, generations } from "./support/prisma.js"

const gen7 = generations[1]

const withDatabase = <A, E, R>(provider: "sqlite" | "postgresql", f: (db: TestDatabase) => Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(Effect.promise(() => createDatabase(provider)), f, (db) => Effect.promise(() => db.drop()))

const dbName = (db: TestDatabase) => db.url.slice(db.url.lastIndexOf("/") + 1)
const admin = (sql: string) =>
  Effect.promise(async () => {
    const c = new pg.Client({ connectionString: `postgresql://postgres@${PG_HOST}/postgres` })
    await c.connect()
    await c.query(sql)
    await c.end()
  })
/** Takes the database away (dropping it ends every session) and brings it back empty, same name. */
const outage = (db: TestDatabase) => admin(`DROP DATABASE "${dbName(db)}" WITH (FORCE)`)
const recover = (db: TestDatabase) => admin(`CREATE DATABASE "${dbName(db)}"`)

describe("retry", () => {
  const connectTimes = (backoff: "exponential" | "fixed", failures: number, steps: ReadonlyArray<number>) =>
    withDatabase("sqlite", (db) =>
      Effect.gen(function*() {
        const { client, state } = flaky(clientFor(gen7, db), failures)
        const retries: Array<number> = []
        const fiber = yield* Effect.fork(Effect.scoped(Database.make("flaky", client, {
          retry: { attempts: 3, delay: 1000, backoff },
          hooks: { onRetry: (_name, attempt) => retries.push(attempt) }
        })))
        yield* flush
        const seen: Array<[number, number]> = [[0, state.calls]]
        let now = 0
        for (const step of steps) {
          yield* TestClock.adjust(step)
          now += step
          yield* flush
          seen.push([now, state.calls])
        }
        const exit = yield* Fiber.await(fiber)
        return { seen, retries, exit }
      }))

  it.scoped("waits 1000, 2000, 4000 ms between attempts (exponential), then fails with ConnectionError", () =>
    Effect.gen(function*() {
      const { exit, retries, seen } = yield* connectTimes("exponential", 10, [999, 1, 1999, 1, 3999, 1])
      expect(seen).toEqual([[0, 1], [999, 1], [1000, 2], [2999, 2], [3000, 3], [6999, 3], [7000, 4]])
      expect(retries).toEqual([1, 2, 3])
      expect(Exit.isFailure(exit)).toBe(true)
      const error = Exit.isFailure(exit) ? exit.cause.toJSON() : undefined
      expect(JSON.stringify(error)).toContain("ConnectionError")
    }))

  it.scoped("waits 1000 ms each time with fixed backoff, and succeeds once the database answers", () =>
    Effect.gen(function*() {
      const { exit, seen } = yield* connectTimes("fixed", 2, [999, 1, 999, 1])
      expect(seen).toEqual([[0, 1], [999, 1], [1000, 2], [1999, 2], [2000, 3]])
      expect(Exit.isSuccess(exit)).toBe(true)
    }))

  it.scoped("caps exponential waits at maxDelay", () =>
    withDatabase("sqlite", (db) =>
      Effect.gen(function*() {
        const { client, state } = flaky(clientFor(gen7, db), 99)
        const fiber = yield* Effect.fork(Effect.scoped(Database.make("x", client, {
          retry: { attempts: 4, delay: 1000, maxDelay: 2500 }
        })))
        yield* flush
        const calls: Array<number> = []
        for (const step of [1000, 2000, 2500, 2500]) {
          yield* TestClock.adjust(step - 1)
          yield* flush
          calls.push(state.calls)
          yield* TestClock.adjust(1)
          yield* flush
          calls.push(state.calls)
        }
        expect(calls).toEqual([1, 2, 2, 3, 3, 4, 4, 5])
        yield* Fiber.interrupt(fiber)
      })))

  it.scoped("reports how many attempts were made", () =>
    withDatabase("sqlite", (db) =>
      Effect.gen(function*() {
        const { client } = flaky(clientFor(gen7, db), 99)
        const fiber = yield* Effect.fork(Effect.scoped(Database.make("x", client, { retry: { attempts: 2, delay: 10 } })))
        yield* flush
        for (let i = 0; i < 2; i++) {
          yield* TestClock.adjust(1000)
          yield* flush
        }
        const error = yield* Effect.flip(Fiber.join(fiber))
        expect(error).toBeInstanceOf(ConnectionError)
        expect((error as ConnectionError).attempts).toBe(3)
        expect(error.message).toContain("after 3 attempts")
      })))
})

describe("circuit breaker on a database that goes away", () => {
  it.scoped("opens after the threshold, fails fast, lets one trial through after resetTimeout, closes on success", () =>
    withDatabase("postgresql", (db) =>
      Effect.gen(function*() {
        const registry = yield* FlexiDBService.make({ pg: clientFor(gen7, db) }, {
          gracefulShutdown: false,
          reconnect: { enabled: false },
          circuitBreaker: { threshold: 3, resetTimeout: 10_000 }
        })
        yield* registry.ready
        const client = yield* registry.get("pg")
        const count = () => Effect.promise(() => client.$queryRawUnsafe("SELECT 1").then(() => "ok", (e: unknown) => e))
        expect(yield* count()).toBe("ok")
        yield* outage(db)
        for (let i = 0; i < 3; i++) expect(yield* count()).not.toBe("ok")
        const stats = () => Effect.map(registry.stats, (s) => s.pg!)
        expect((yield* stats()).circuitState).toBe("open")

        const refused = yield* count()
        expect(refused).toBeInstanceOf(CircuitOpenError)
        expect((refused as CircuitOpenError).retryAfterMs).toBe(10_000)
        yield* TestClock.adjust(9_999)
        expect(((yield* count()) as CircuitOpenError).retryAfterMs).toBe(1)
        const before = yield* stats()

        // The trial fails: the circuit opens again for a full resetTimeout.
        yield* TestClock.adjust(1)
        const trial = yield* count()
        expect(trial).not.toBeInstanceOf(CircuitOpenError)
        expect((yield* stats()).totalQueries).toBe(before.totalQueries + 1)
        expect(((yield* count()) as CircuitOpenError).retryAfterMs).toBe(10_000)

        // The database is back: the next trial succeeds and closes the circuit.
        yield* recover(db)
        yield* TestClock.adjust(10_000)
        expect(yield* count()).toBe("ok")
        expect((yield* stats()).circuitState).toBe("closed")
        expect(yield* count()).toBe("ok")
      })))
})

describe("operationTimeout", () => {
  it.scoped("rejects an operation that does not finish in time, and counts it as unhealthy", () =>
    withDatabase("sqlite", (db) =>
      Effect.gen(function*() {
        const registry = yield* FlexiDBService.make({ a: clientFor(gen7, db) }, {
          gracefulShutdown: false,
          operationTimeout: 2_000,
          circuitBreaker: { threshold: 1 },
          reconnect: { enabled: false }
        })
        yield* registry.ready
        const hang = new Promise<never>(() => {})
        const fiber = yield* Effect.fork(Effect.flip(registry.batch({ a: () => hang })))
        yield* TestClock.adjust(1_999)
        yield* flush
        expect(fiber.unsafePoll()).toBeNull()
        yield* TestClock.adjust(1)
        yield* until(() => fiber.unsafePoll() !== null)
        const failure = ((yield* Fiber.join(fiber)) as unknown as { failures: Record<string, unknown> }).failures.a
        expect(failure).toBeInstanceOf(OperationTimeoutError)
        expect((failure as OperationTimeoutError).message).toBe("batch on database 'a' did not finish within 2000 ms.")
        expect((yield* registry.stats).a!.circuitState).toBe("open")
      })))
})

describe("health checks and reconnect", () => {
  it.scoped("report each status change once, within the interval, and reconnect when the database is back", () =>
    withDatabase("postgresql", (db) =>
      Effect.gen(function*() {
        const events: Array<string> = []
        const registry = yield* FlexiDBService.make({ pg: clientFor(gen7, db) }, {
          gracefulShutdown: false,
          healthCheck: { interval: 10_000, timeout: 2_000, onStatusChange: (n, ok) => events.push(`${n}:${ok}`) },
          reconnect: { interval: 3_000, maxAttempts: 5 },
          hooks: { onConnect: (n) => events.push(`connect:${n}`) }
        })
        yield* registry.ready
        expect(events).toEqual(["connect:pg", "pg:true"])

        yield* outage(db)
        yield* TestClock.adjust(9_999)
        yield* flush
        expect(events).toHaveLength(2)
        yield* TestClock.adjust(1)
        yield* until(() => events.length === 3)
        expect(events[2]).toBe("pg:false")
        expect((yield* registry.stats).pg!.connected).toBe(false)

        // Still down at the next checks and reconnect attempts: nothing new is reported.
        yield* TestClock.adjust(3_000)
        yield* flush
        yield* TestClock.adjust(7_000)
        yield* flush
        yield* Effect.promise(() => new Promise((r) => setTimeout(r, 200)))
        expect(events).toHaveLength(3)

        yield* recover(db)
        const steps = yield* stepUntil(() => events.length >= 5, 3_000, 3)
        expect(steps).toBeLessThanOrEqual(2)
        expect(events.slice(3)).toEqual(["connect:pg", "pg:true"])
        expect((yield* registry.stats).pg!.connected).toBe(true)
        expect(yield* registry.health()).toEqual({ pg: true })
      })))

  it.scoped("health() answers within its timeout when a database never answers", () =>
    withDatabase("sqlite", (db) =>
      Effect.gen(function*() {
        const real = clientFor(gen7, db)
        const hung = new Proxy(real, {
          get: (t, k) => k === "$queryRawUnsafe" ? () => new Promise(() => {}) : Reflect.get(t, k, t)
        })
        const registry = yield* FlexiDBService.make({ hung, ok: real }, {
          gracefulShutdown: false,
          retry: { attempts: 0 },
          reconnect: { enabled: false },
          healthCheck: { interval: 60_000, timeout: 1_500 }
        })
        const fiber = yield* Effect.fork(registry.health())
        yield* TestClock.adjust(1_499)
        yield* flush
        expect(fiber.unsafePoll()).toBeNull()
        yield* TestClock.adjust(1)
        yield* until(() => fiber.unsafePoll() !== null)
        expect(yield* Fiber.join(fiber)).toEqual({ hung: false, ok: true })
      })))
})
