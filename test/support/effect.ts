import { Effect, TestClock } from "effect"

/**
 * Lets real I/O started by a fiber finish while TestClock holds time still: yields to the event loop until
 * `done()` holds, for at most `bound` turns. This waits for sockets, never for timers under test.
 */
export const until = (done: () => boolean, bound = 500) =>
  Effect.gen(function*() {
    for (let i = 0; i < bound && !done(); i++) {
      yield* Effect.promise(() => new Promise<void>((r) => setTimeout(r, 5)))
    }
    if (!done()) return yield* Effect.die(new Error(`condition not reached while waiting for I/O`))
  })

/** Drains pending promise callbacks and fiber steps without advancing any clock. */
export const flush = Effect.promise(() => new Promise<void>((r) => setImmediate(r))).pipe(Effect.repeatN(5))

/**
 * Advances TestClock by `step` up to `maxSteps` times, letting I/O settle after each, until `done()` holds.
 * Returns how many steps it took.
 */
export const stepUntil = (done: () => boolean, step: number, maxSteps: number) =>
  Effect.gen(function*() {
    for (let i = 1; i <= maxSteps; i++) {
      yield* TestClock.adjust(step)
      // Up to a second of real time for I/O to settle (a pool re-establishing connections), not for timers.
      for (let turn = 0; turn < 200 && !done(); turn++) {
        yield* Effect.promise(() => new Promise<void>((r) => setTimeout(r, 5)))
      }
      if (done()) return i
    }
    return yield* Effect.die(new Error(`condition not reached after ${maxSteps} steps of ${step} ms`))
  })
