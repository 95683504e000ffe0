// The circuit breaker's transitions as tables: every (state, event) pair, with exact times. The pure functions are
// what the hot path and the Effect API both run, so pinning them pins when a database is refused and for how long.
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import * as CircuitBreaker from "../src/CircuitBreaker.js"
import { State } from "../src/CircuitBreaker.js"
import { CircuitOpenError } from "../src/Errors.js"

const config = { threshold: 3, resetTimeout: 30_000 } as const
/** A ticket issued now, for an outcome recorded under the circuit as it is. */
const now = (b: CircuitBreaker.CircuitBreaker) => CircuitBreaker.ticket(b)

const closed = (failures: number) => State.Closed({ failures })
const open = (openedAt: number) => State.Open({ openedAt })
const halfOpen = (trialAt: number) => State.HalfOpen({ trialAt })
const pass: CircuitBreaker.Permit = { _tag: "Pass" }
const trial: CircuitBreaker.Permit = { _tag: "Trial" }
const reject = (retryAfterMs: number): CircuitBreaker.Permit => ({ _tag: "Reject", retryAfterMs })

describe("acquireTransition (resetTimeout 30 s)", () => {
  it.each<[string, State, number, CircuitBreaker.Permit, State]>([
    ["Closed lets a call through", closed(0), 5, pass, closed(0)],
    ["Closed below threshold still lets a call through", closed(2), 5, pass, closed(2)],
    ["Open, the moment it opened: rejects for the whole resetTimeout", open(1000), 1000, reject(30_000), open(1000)],
    ["Open, 1 ms before resetTimeout: rejects for 1 ms", open(1000), 30_999, reject(1), open(1000)],
    ["Open, at exactly resetTimeout: one trial, HalfOpen from now", open(1000), 31_000, trial, halfOpen(31_000)],
    ["Open, long after resetTimeout: one trial, HalfOpen from now", open(1000), 90_000, trial, halfOpen(90_000)],
    ["HalfOpen: rejects others while the trial runs", halfOpen(5000), 5000, reject(30_000), halfOpen(5000)],
    ["HalfOpen, 1 ms before a hung trial expires: rejects for 1 ms", halfOpen(5000), 34_999, reject(1), halfOpen(5000)],
    ["HalfOpen, trial hung for resetTimeout: a new trial from now", halfOpen(5000), 35_000, trial, halfOpen(35_000)]
  ])("%s", (_, state, now, permit, next) => {
    expect(CircuitBreaker.acquireTransition(state, now, config)).toEqual([permit, next])
  })
})

describe("recordTransition at now = 7000 (threshold 3)", () => {
  it.each<[string, State, CircuitBreaker.Outcome, State]>([
    ["Closed: success keeps zero failures", closed(0), "Success", closed(0)],
    ["Closed: success resets the failure count", closed(2), "Success", closed(0)],
    ["Closed: the first unhealthy failure counts 1", closed(0), "Unhealthy", closed(1)],
    ["Closed: a failure below threshold counts up", closed(1), "Unhealthy", closed(2)],
    ["Closed: the failure reaching threshold opens at now", closed(2), "Unhealthy", open(7000)],
    ["HalfOpen: trial success closes", halfOpen(100), "Success", closed(0)],
    ["HalfOpen: trial failure re-opens at now", halfOpen(100), "Unhealthy", open(7000)],
    ["Open: a late failure keeps openedAt", open(1000), "Unhealthy", open(1000)]
  ])("%s", (_, state, outcome, next) => {
    expect(CircuitBreaker.recordTransition(state, outcome, 7000, config)).toEqual(next)
  })
})

describe("unsafeAcquire / unsafeRecord", () => {
  const breaker = (state: State) => {
    const b = CircuitBreaker.make(config)
    b.cell.current = state
    return b
  }

  // unsafeRecord returns true only when this very call opened the circuit: the caller then starts reconnecting.
  it.each<[string, boolean, State, CircuitBreaker.Outcome, State]>([
    ["a failure below threshold", false, closed(1), "Unhealthy", closed(2)],
    ["the failure reaching threshold", true, closed(2), "Unhealthy", open(7000)],
    ["a failed half-open trial", true, halfOpen(100), "Unhealthy", open(7000)],
    ["a late failure while already open", false, open(1000), "Unhealthy", open(1000)],
    ["a success while closed", false, closed(2), "Success", closed(0)],
    ["a successful half-open trial", false, halfOpen(100), "Success", closed(0)]
  ])("unsafeRecord of %s returns %s", (_, opened, state, outcome, next) => {
    const b = breaker(state)
    expect(CircuitBreaker.unsafeRecord(b, now(b), outcome, 7000)).toBe(opened)
    expect(b.cell.current).toEqual(next)
  })

  it("admits exactly one trial after resetTimeout and stores the moved state", () => {
    const b = breaker(open(0))
    expect(CircuitBreaker.unsafeAcquire(b, 29_000)).toEqual(reject(1000))
    expect(CircuitBreaker.unsafeAcquire(b, 30_000)).toEqual(trial)
    expect(CircuitBreaker.unsafeAcquire(b, 30_001)).toEqual(reject(29_999))
    expect(b.cell.current).toEqual(halfOpen(30_000))
  })
})

describe("admission and outcomes on the Clock", () => {
  it.effect("opens at the threshold, refuses with the time left, admits a trial once TestClock passes resetTimeout", () =>
    Effect.gen(function*() {
      const b = CircuitBreaker.make(config)
      const clock = yield* Effect.clock
      const fail = () => CircuitBreaker.unsafeRecord(b, now(b), "Unhealthy", clock.unsafeCurrentTimeMillis())
      expect([fail(), fail(), fail()]).toEqual([false, false, true])

      yield* TestClock.adjust(10_000)
      expect(CircuitBreaker.unsafeAdmit(b, clock)).toEqual(reject(20_000))

      yield* TestClock.adjust(20_000)
      const ticket = CircuitBreaker.unsafeAdmit(b, clock)
      expect(ticket._tag).toBe("Trial")
      if (ticket._tag === "Reject") return
      expect(CircuitBreaker.unsafeRecord(b, ticket, "Success", clock.unsafeCurrentTimeMillis())).toBe(false)
      expect(yield* CircuitBreaker.get(b)).toEqual(closed(0))
    }))
})

describe("stale outcomes: a call's outcome counts only under the generation it was admitted in", () => {
  it("a late success or query error from before the circuit opened does not close it; the trial's does", () => {
    const b = CircuitBreaker.make(config)
    const admittedClosed = now(b)
    for (let i = 0; i < 3; i++) CircuitBreaker.unsafeRecord(b, now(b), "Unhealthy", 1000)
    expect(b.cell.current).toEqual(open(1000))
    // The slow call admitted before the circuit opened answers now: a success, or a unique violation ("Success").
    expect(CircuitBreaker.unsafeRecord(b, admittedClosed, "Success", 2000)).toBe(false)
    expect(b.cell.current).toEqual(open(1000))
    expect(CircuitBreaker.unsafeAcquire(b, 31_000)).toEqual(trial)
    const admittedTrial = now(b)
    // Still stale during the trial: the trial's outcome decides.
    CircuitBreaker.unsafeRecord(b, admittedClosed, "Success", 31_500)
    expect(b.cell.current).toEqual(halfOpen(31_000))
    expect(CircuitBreaker.unsafeRecord(b, admittedTrial, "Success", 32_000)).toBe(false)
    expect(b.cell.current).toEqual(closed(0))
    // A late failure of a hung trial, after the circuit closed, does not count against the new closed circuit.
    CircuitBreaker.unsafeRecord(b, admittedTrial, "Unhealthy", 33_000)
    expect(b.cell.current).toEqual(closed(0))
  })

  it("counting failures while closed is one generation: concurrent calls' failures all count", () => {
    const b = CircuitBreaker.make(config)
    const g = now(b)
    // Each failure is of its own event (admitted after the one before was counted): a ticket per failure.
    expect([1, 2, 3].map(() => CircuitBreaker.unsafeRecord(b, { ...g, counted: b.counted.current }, "Unhealthy", 500))).toEqual([false, false, true])
    expect(b.cell.current).toEqual(open(500))
  })

  it("through the query path: a slow query admitted before the circuit opened leaves it open when it answers", async () => {
    const { createFlexiDB } = await import("../src/index.js")
    let release: (value: unknown) => void = () => {}
    const slow = new Promise((resolve) => (release = resolve))
    const down = Object.assign(new Error("Can't reach database server"), { code: "P1001" })
    const slowly = () => slow
    let answer: () => Promise<unknown> = slowly
    // Health probes fail with the server once it is "down" (a probe that answered would close the circuit, rightly).
    const base = {
      $connect: async () => {},
      $disconnect: async () => {},
      $queryRawUnsafe: () => answer === slowly ? Promise.resolve([{ ok: 1 }]) : Promise.reject(down),
      $extends: (extension: { query: { $allOperations: (hook: object) => PromiseLike<unknown> } }) => ({
        ...base,
        user: {
          findMany: (args: unknown) =>
            extension.query.$allOperations({ args, model: "User", operation: "findMany", query: () => answer() })
        }
      })
    }
    const db = createFlexiDB({ main: base as never }, {
      gracefulShutdown: false,
      circuitBreaker: { threshold: 3, resetTimeout: 60_000 },
      reconnect: { enabled: false },
      healthCheck: { interval: 3_600_000 }
    })
    const client = db.get("main") as unknown as { user: { findMany: () => Promise<unknown> } }
    const pending = client.user.findMany()
    answer = () => Promise.reject(down)
    for (let i = 0; i < 3; i++) await client.user.findMany().catch(() => {})
    expect(db.stats().main!.circuitState).toBe("open")
    release([])
    await pending
    expect(db.stats().main!.circuitState).toBe("open")
    await db.disconnect()
  })
})

describe("the sampling strategy through the query path", () => {
  /** A client whose every other query fails as an unreachable server does. */
  const alternating = () => {
    const down = Object.assign(new Error("Can't reach database server"), { code: "P1001" })
    let n = 0
    const answer = () => (n++ % 2 === 0 ? Promise.reject(down) : Promise.resolve([]))
    const base = {
      $connect: async () => {},
      $disconnect: async () => {},
      $queryRawUnsafe: () => Promise.resolve([{ ok: 1 }]),
      $extends: (extension: { query: { $allOperations: (hook: object) => PromiseLike<unknown> } }) => ({
        ...base,
        user: {
          findMany: (args: unknown) =>
            extension.query.$allOperations({ args, model: "User", operation: "findMany", query: () => answer() })
        }
      })
    }
    return base
  }
  const run = async (circuitBreaker: object) => {
    const { createFlexiDB } = await import("../src/index.js")
    const db = createFlexiDB({ main: alternating() as never }, {
      gracefulShutdown: false,
      logger: false,
      circuitBreaker,
      reconnect: { enabled: false }
    })
    await db.ready()
    const client = db.get("main") as unknown as { user: { findMany: () => Promise<unknown> } }
    const states: Array<string> = []
    for (let i = 0; i < 7; i++) {
      await client.user.findMany().catch(() => {})
      states.push(db.stats().main!.circuitState)
    }
    await db.disconnect()
    return states
  }

  it("opens on half the calls failing once the window holds enough of them; consecutive never sees two in a row", async () => {
    const sampled = await run({ sampling: { threshold: 0.5, duration: 60_000, minimumThroughput: 6 } })
    // f s f s f s: below the throughput until the sixth, which is a success; the seventh, a failure, opens it (4 of 7).
    expect(sampled).toEqual(["closed", "closed", "closed", "closed", "closed", "closed", "open"])
    expect(await run({ threshold: 2 })).toEqual(Array(7).fill("closed"))
  })
})

describe("failures in flight together", () => {
  it("count once: a dropped network fails every call on it at once, and that is one failure, not threshold", () => {
    const breaker = CircuitBreaker.make({ threshold: 3, resetTimeout: 1000 })
    // Ten calls admitted, then all fail at once.
    const admitted = Array.from({ length: 10 }, () => CircuitBreaker.ticket(breaker))
    for (const ticket of admitted) CircuitBreaker.unsafeRecord(breaker, ticket, "Unhealthy", 0)
    expect(breaker.cell.current).toMatchObject({ _tag: "Closed", failures: 1 })
    // Calls admitted one after another, each failing: consecutive failures, and the third opens the circuit.
    for (let i = 0; i < 2; i++) {
      CircuitBreaker.unsafeRecord(breaker, CircuitBreaker.ticket(breaker), "Unhealthy", 0)
    }
    expect(breaker.cell.current._tag).toBe("Open")
  })

  it("a lost connection within a second of a counted failure is the same fault; refusals and later losses count", () => {
    const breaker = CircuitBreaker.make({ threshold: 2, resetTimeout: 1000 })
    const fail = (now: number, lost: boolean) =>
      CircuitBreaker.unsafeRecord(breaker, CircuitBreaker.ticket(breaker), lost ? "Lost" : "Unhealthy", now)
    fail(10_000, true)
    // Calls admitted after it meet the pool's other dead connections one by one: not counted.
    for (const now of [10_000, 10_400, 10_999]) expect(fail(now, true)).toBe(false)
    expect(breaker.cell.current).toMatchObject({ _tag: "Closed", failures: 1 })
    // A refused connection is not a lost one: it counts at once, and opens the circuit.
    expect(fail(10_100, false)).toBe(true)

    const later = CircuitBreaker.make({ threshold: 2, resetTimeout: 500 })
    const lose = (now: number) =>
      CircuitBreaker.unsafeRecord(later, CircuitBreaker.ticket(later), "Lost", now)
    lose(0)
    // A second later it is another fault.
    expect(lose(CircuitBreaker.sameFaultMs)).toBe(true)
    // A trial lost under a half-open circuit opens it again, however soon after the last counted failure.
    const trial = CircuitBreaker.sameFaultMs + 500
    expect(CircuitBreaker.unsafeAcquire(later, trial)._tag).not.toBe("Reject")
    expect(later.cell.current._tag).toBe("HalfOpen")
    expect(lose(trial)).toBe(true)
  })
})

describe("the sampling strategy: a ratio of failures over a rolling window, with a minimum throughput", () => {
  const sampling = (resetTimeout = 5000) =>
    CircuitBreaker.make({
      resetTimeout,
      strategy: CircuitBreaker.sampling({ threshold: 0.5, duration: 10_000, minimumThroughput: 4 })
    })
  const record = (b: CircuitBreaker.CircuitBreaker, outcome: CircuitBreaker.Outcome, at: number) =>
    CircuitBreaker.unsafeRecord(b, CircuitBreaker.ticket(b), outcome, at)

  it("stays closed below the minimum throughput, then opens when half the window's calls failed", () => {
    const b = sampling()
    expect(b.samplesSuccesses).toBe(true)
    expect([0, 100, 200].map((t) => record(b, "Unhealthy", t))).toEqual([false, false, false])
    expect(b.cell.current).toEqual(closed(3))
    // A success never opens it, and does not forget the failures (unlike consecutive).
    expect(record(b, "Success", 300)).toBe(false)
    expect(b.cell.current).toEqual(closed(3))
    // 4 failures of 5 calls: at or above the ratio, at or above the throughput.
    expect(record(b, "Unhealthy", 400)).toBe(true)
    expect(b.cell.current).toEqual(open(400))
  })

  it("forgets calls older than its window; below the ratio it stays closed", () => {
    const b = sampling()
    record(b, "Unhealthy", 0)
    record(b, "Unhealthy", 0)
    for (let i = 0; i < 3; i++) record(b, "Success", 9_000)
    // Counted with the two at t=0 it would be 3 failures of 6 (open); they left the window: 1 of 4.
    expect(record(b, "Unhealthy", 10_500)).toBe(false)
    expect(b.cell.current).toEqual(closed(1))
    for (let i = 0; i < 6; i++) record(b, "Success", 10_600)
    // 2 failures of 11: 18 %.
    expect(record(b, "Unhealthy", 10_700)).toBe(false)
    expect(b.cell.current).toEqual(closed(2))
  })

  it("moves through half-open like the consecutive one, and a closed circuit starts an empty window", () => {
    const b = sampling(5000)
    for (const t of [0, 1, 2, 3]) record(b, "Unhealthy", t)
    expect(b.cell.current).toEqual(open(3))
    expect(CircuitBreaker.unsafeAdmit(b, { unsafeCurrentTimeMillis: () => 4_000 })).toEqual(reject(1_003))
    const ticket = CircuitBreaker.unsafeAdmit(b, { unsafeCurrentTimeMillis: () => 5_003 })
    expect(ticket._tag).toBe("Trial")
    if (ticket._tag === "Reject") return
    expect(CircuitBreaker.unsafeRecord(b, ticket, "Success", 5_010)).toBe(false)
    expect(b.cell.current).toEqual(closed(0))
    // The four failures before it opened are forgotten: three new ones are below the throughput.
    for (const t of [5_020, 5_030, 5_040]) expect(record(b, "Unhealthy", t)).toBe(false)
    expect(b.cell.current).toEqual(closed(3))
  })

  it("is the circuitBreaker.sampling option; a ratio outside (0, 1] is refused", async () => {
    const { resolveOptions } = await import("../src/Options.js")
    expect(resolveOptions({ circuitBreaker: { sampling: { threshold: 0.25, duration: "1 minute" } } }).circuitBreaker)
      .toEqual({ threshold: 5, resetTimeout: 30_000, sampling: { threshold: 0.25, duration: 60_000, minimumThroughput: 20 } })
    expect(() => resolveOptions({ circuitBreaker: { sampling: { threshold: 2, duration: 1000 } } })).toThrow(
      "Invalid circuitBreaker.sampling.threshold: expected a number above 0 and at most 1, got 2"
    )
  })
})
