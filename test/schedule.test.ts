// The connection retry policy: the exact waits between attempts, how many retries there are, and what each retry
// is numbered (the `onRetry` hook reports it). Driven by TestClock (Schedule.driver and Effect.retry): nothing sleeps.
import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Option, Schedule, TestClock } from "effect"
import { InvalidArgumentError, ReconnectFailedError } from "../src/Errors.js"
import { FlexiDBService } from "../src/index.js"
import type { FlexiDBOptions, RetryConfig } from "../src/Options.js"
import { reconnectSchedule, resolveOptions, retrySchedule } from "../src/Options.js"
import { flush, until } from "./support/effect.js"

const scheduleFor = (retry: RetryConfig) => retrySchedule(resolveOptions({ retry }).retry)

/**
 * Steps the schedule as Effect.retry does, one failed attempt at a time, while TestClock runs its sleeps: returns
 * the wait before each retry and the schedule's output for it.
 */
const run = (retry: RetryConfig) =>
  Effect.gen(function*() {
    const driver = yield* Schedule.driver(scheduleFor(retry))
    const steps: Array<{ readonly waited: number; readonly output: number }> = []
    const loop = Effect.gen(function*() {
      for (let before = 0;; before = yield* Clock.currentTimeMillis) {
        const output = yield* Effect.option(driver.next(new Error("connect failed")))
        if (Option.isNone(output)) return
        steps.push({ waited: (yield* Clock.currentTimeMillis) - before, output: output.value })
      }
    })
    const fiber = yield* Effect.fork(loop)
    yield* TestClock.adjust(Duration.hours(1))
    yield* Fiber.join(fiber)
    return { delays: steps.map((s) => s.waited), outputs: steps.map((s) => s.output) }
  })

describe("retrySchedule", () => {
  it.effect.each<[string, RetryConfig, Array<number>]>([
    ["defaults: 3 retries, 1000 ms doubling", {}, [1000, 2000, 4000]],
    ["exponential doubles from delay", { attempts: 6, delay: 100 }, [100, 200, 400, 800, 1600, 3200]],
    ["exponential is capped by maxDelay", { attempts: 6, delay: 100, maxDelay: 500 }, [100, 200, 400, 500, 500, 500]],
    ["exponential with maxDelay below delay waits maxDelay", { attempts: 2, delay: 1000, maxDelay: 300 }, [300, 300]],
    ["fixed waits delay every time", { attempts: 4, delay: 250, backoff: "fixed" }, [250, 250, 250, 250]],
    ["fixed is capped by maxDelay", { attempts: 2, delay: 1000, maxDelay: 300, backoff: "fixed" }, [300, 300]],
    ["delay 0 retries immediately", { attempts: 3, delay: 0 }, [0, 0, 0]],
    ["attempts 0 means no retry", { attempts: 0, delay: 100 }, []]
  ])("%s", ([, retry, delays]) =>
    Effect.gen(function*() {
      const result = yield* run(retry)
      expect(result.delays).toEqual(delays)
      // One output per retry, numbered from 1: what `onRetry(name, attempt)` reports.
      expect(result.outputs).toEqual(delays.map((_, i) => i + 1))
    }))

  it.effect("Effect.retry attempts at 0, 100, 300, 700 ms of TestClock and then gives up", () =>
    Effect.gen(function*() {
      const attemptedAt: Array<number> = []
      const connect = Effect.flatMap(Clock.currentTimeMillis, (now) => {
        attemptedAt.push(now)
        return Effect.fail("refused")
      })
      const fiber = yield* Effect.fork(Effect.retry(connect, scheduleFor({ attempts: 3, delay: 100 })))
      yield* TestClock.adjust(699)
      expect(attemptedAt).toEqual([0, 100, 300])
      yield* TestClock.adjust(1)
      expect(yield* Effect.flip(Fiber.join(fiber))).toBe("refused")
      expect(attemptedAt).toEqual([0, 100, 300, 700])
    }))
})

describe("resolveOptions validation", () => {
  it.each<[string, unknown]>([
    ["options", null],
    ["retries", { retries: {} }],
    ["retry", { retry: 3 }],
    ["retry.tries", { retry: { tries: 3 } }],
    ["retry.attempts", { retry: { attempts: -1 } }],
    ["retry.attempts", { retry: { attempts: 1.5 } }],
    ["retry.attempts", { retry: { attempts: "3" } }],
    ["retry.attempts", { retry: { attempts: Number.NaN } }],
    ["retry.delay", { retry: { delay: -1 } }],
    ["retry.delay", { retry: { delay: Infinity } }],
    ["retry.backoff", { retry: { backoff: "linear" } }],
    ["retry.maxDelay", { retry: { maxDelay: -1 } }],
    ["circuitBreaker.threshold", { circuitBreaker: { threshold: 0 } }],
    ["circuitBreaker.threshold", { circuitBreaker: { threshold: 2.5 } }],
    ["circuitBreaker.resetTimeout", { circuitBreaker: { resetTimeout: 0 } }],
    ["healthCheck.interval", { healthCheck: { interval: 0 } }],
    ["healthCheck.timeout", { healthCheck: { timeout: -5 } }],
    ["healthCheck.onStatusChange", { healthCheck: { onStatusChange: "log" } }],
    ["reconnect.enabled", { reconnect: { enabled: "yes" } }],
    ["reconnect.interval", { reconnect: { interval: 0 } }],
    ["reconnect.maxAttempts", { reconnect: { maxAttempts: 0 } }],
    ["hooks.onConnect", { hooks: { onConnect: 1 } }],
    ["hooks.onEror", { hooks: { onEror: () => {} } }],
    ["operationTimeout", { operationTimeout: 0 }],
    ["intercept", { intercept: "no" }],
    ["gracefulShutdown", { gracefulShutdown: 1 }],
    ["disconnectTimeout", { disconnectTimeout: -1 }]
  ])("%s: rejects %o", (path, value) => {
    const thrown = (() => {
      try {
        resolveOptions(value as FlexiDBOptions)
      } catch (e) {
        return e
      }
    })()
    expect(thrown).toBeInstanceOf(InvalidArgumentError)
    expect(thrown).toMatchObject({ path, code: "FLEXIDB_INVALID_ARGUMENT" })
  })

  it("accepts the boundary values (no retry, no wait, no cap)", () => {
    expect(resolveOptions({ retry: { attempts: 0, delay: 0, maxDelay: 0 } }).retry).toEqual({
      attempts: 0,
      delay: 0,
      backoff: "exponential",
      maxDelay: 0
    })
  })
})

describe("reconnect as a Schedule", () => {
  const reconnectFor = (reconnect: { interval?: number; maxAttempts?: number }) =>
    reconnectSchedule(resolveOptions({ reconnect }).reconnect)

  it.effect.each<[string, { interval?: number; maxAttempts?: number }, Array<number>]>([
    ["5 attempts 1000 ms apart: 4 retries after the first", { interval: 1000, maxAttempts: 5 }, [1000, 1000, 1000, 1000]],
    ["one attempt: no retry", { interval: 250, maxAttempts: 1 }, []]
  ])("%s", ([, reconnect, delays]) =>
    Effect.gen(function*() {
      const driver = yield* Schedule.driver(reconnectFor(reconnect))
      const waits: Array<number> = []
      const fiber = yield* Effect.fork(Effect.gen(function*() {
        for (let before = 0;; before = yield* Clock.currentTimeMillis) {
          if (Option.isNone(yield* Effect.option(driver.next("refused")))) return
          waits.push((yield* Clock.currentTimeMillis) - before)
        }
      }))
      yield* TestClock.adjust(Duration.hours(1))
      yield* Fiber.join(fiber)
      expect(waits).toEqual(delays)
    }))

  /** A client whose server can be taken away: `$connect` notes each attempt made while it is down. */
  const flaky = () => {
    const state = { up: true, attempts: [] as Array<number>, now: () => 0 }
    const down = Object.assign(new Error("Can't reach database server"), { code: "P1001" })
    const client = {
      $connect: async () => {
        if (!state.up) state.attempts.push(state.now())
      },
      $disconnect: async () => {},
      $queryRawUnsafe: () => (state.up ? Promise.resolve([{ ok: 1 }]) : Promise.reject(down)),
      $extends: () => client
    }
    return { state, client }
  }

  it.scoped("a database found down is tried interval, 2·interval … maxAttempts·interval later, then onError", () =>
    Effect.gen(function*() {
      const { client, state } = flaky()
      const clock = yield* Effect.clock
      state.now = () => clock.unsafeCurrentTimeMillis()
      const errors: Array<unknown> = []
      const registry = yield* FlexiDBService.make({ main: client as never }, {
        gracefulShutdown: false,
        logger: false,
        retry: { attempts: 0 },
        reconnect: { interval: 1000, maxAttempts: 3 },
        hooks: { onError: (_name, error) => errors.push(error) }
      })
      yield* registry.ready
      state.up = false
      expect(yield* registry.health()).toEqual({ main: false })
      yield* TestClock.adjust(999)
      yield* flush
      expect(state.attempts).toEqual([])
      for (const at of [1000, 2000, 3000]) {
        yield* TestClock.adjust(at === 1000 ? 1 : 1000)
        yield* until(() => state.attempts.length === at / 1000)
      }
      expect(state.attempts).toEqual([1000, 2000, 3000])
      yield* until(() => errors.some((e) => e instanceof ReconnectFailedError))
      expect(errors.find((e) => e instanceof ReconnectFailedError)).toMatchObject({ database: "main", attempts: 3 })
      yield* TestClock.adjust(60_000)
      yield* flush
      expect(state.attempts).toHaveLength(3)
    }))

  it.scoped("stops at the first attempt that connects: the database is up again", () =>
    Effect.gen(function*() {
      const { client, state } = flaky()
      const clock = yield* Effect.clock
      state.now = () => clock.unsafeCurrentTimeMillis()
      let connects = 0
      const registry = yield* FlexiDBService.make({ main: client as never }, {
        gracefulShutdown: false,
        logger: false,
        retry: { attempts: 0 },
        reconnect: { interval: 500, maxAttempts: 10 },
        hooks: { onConnect: () => connects++ }
      })
      yield* registry.ready
      state.up = false
      expect(yield* registry.health()).toEqual({ main: false })
      yield* TestClock.adjust(500)
      yield* until(() => state.attempts.length === 1)
      // Back before the second attempt: it connects, and nothing more is tried.
      state.up = true
      yield* TestClock.adjust(500)
      yield* until(() => connects === 2)
      const stats = yield* registry.stats
      expect(stats.main!.connected).toBe(true)
      yield* TestClock.adjust(10_000)
      yield* flush
      expect(state.attempts).toEqual([500])
    }))
})
