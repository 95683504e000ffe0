// The connection retry policy: the exact waits between attempts, how many retries there are, and what each retry
// is numbered (the `onRetry` hook reports it). Driven by TestClock (Schedule.driver and Effect.retry): nothing sleeps.
import { describe, expect, it } from "@effect/vitest"
import { Clock, Duration, Effect, Fiber, Option, Schedule, TestClock } from "effect"
import { InvalidArgumentError } from "../src/Errors.js"
import type { FlexiDBOptions, RetryConfig } from "../src/Options.js"
import { resolveOptions, retrySchedule } from "../src/Options.js"

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
