/**
 * A per-database circuit breaker. The state is a tagged union that moves only through the pure `transition`
 * functions below, so it can be inspected, saved and tested with `TestClock`. Open turns HalfOpen lazily on the
 * next call after `resetTimeout`: there is no timer fiber.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as MutableRef from "effect/MutableRef"
import { CircuitOpenError } from "./Errors.js"

/**
 * @since 0.1.0
 */
export type State = Data.TaggedEnum<{
  /** Serving. `failures` counts consecutive unhealthy failures. */
  Closed: { readonly failures: number }
  /** Refusing every call until `openedAt + resetTimeout`. */
  Open: { readonly openedAt: number }
  /** One trial call is running (since `trialAt`); its outcome closes or re-opens the circuit. */
  HalfOpen: { readonly trialAt: number }
}>

/** @since 0.1.0 */
export const State = Data.taggedEnum<State>()

/**
 * @since 0.1.0
 */
export interface Config {
  /** Consecutive unhealthy failures that open the circuit. Default 5. */
  readonly threshold: number
  /** Milliseconds the circuit stays open before a trial call is allowed. Default 30000. */
  readonly resetTimeout: number
}

/**
 * What a call may do: run normally, run as the half-open trial, or be refused for `retryAfterMs`.
 *
 * @since 0.1.0
 */
export type Permit =
  | { readonly _tag: "Pass" }
  | { readonly _tag: "Trial" }
  | { readonly _tag: "Reject"; readonly retryAfterMs: number }

const pass: Permit = { _tag: "Pass" }
const trial: Permit = { _tag: "Trial" }

/**
 * How a call ended, for the breaker: `Success` also covers errors that prove the database answered
 * (a unique violation, a missing record).
 *
 * @since 0.1.0
 */
export type Outcome = "Success" | "Unhealthy"

const closed = State.Closed({ failures: 0 })

/**
 * Decides whether a call may run at time `now` (milliseconds).
 *
 * @since 0.1.0
 */
export const acquireTransition = (state: State, now: number, config: Config): readonly [Permit, State] => {
  switch (state._tag) {
    case "Closed":
      return [pass, state]
    case "Open": {
      const wait = state.openedAt + config.resetTimeout - now
      return wait > 0 ? [{ _tag: "Reject", retryAfterMs: wait }, state] : [trial, State.HalfOpen({ trialAt: now })]
    }
    case "HalfOpen": {
      // A trial that never reports back (a hung query with no timeout) must not wedge the breaker forever.
      const wait = state.trialAt + config.resetTimeout - now
      return wait > 0 ? [{ _tag: "Reject", retryAfterMs: wait }, state] : [trial, State.HalfOpen({ trialAt: now })]
    }
  }
}

/**
 * Records how a call that was let through ended.
 *
 * @since 0.1.0
 */
export const recordTransition = (state: State, outcome: Outcome, now: number, config: Config): State => {
  if (outcome === "Success") return state._tag === "Closed" && state.failures === 0 ? state : closed
  switch (state._tag) {
    case "Closed":
      return state.failures + 1 >= config.threshold
        ? State.Open({ openedAt: now })
        : State.Closed({ failures: state.failures + 1 })
    case "HalfOpen":
      return State.Open({ openedAt: now })
    case "Open":
      // A call admitted before the circuit opened failed late: the circuit is already open.
      return state
  }
}

/**
 * A breaker: one mutable cell holding the current `State`. Lifecycle code reads and moves it through Effect
 * (`acquire`, `record`); the query hot path uses the `unsafe*` twins, as Effect's own `unsafe` APIs do, because
 * an Effect run per query would cost more than the bookkeeping itself.
 *
 * `generation` counts the circuit's moves (opened, trial, closed, reset): a call notes it when admitted and its
 * outcome counts only under the same generation. Without it, a call admitted while the circuit was closed that
 * succeeded (or failed with a query error) after the circuit opened closed it again at once (as cockatiel does).
 *
 * `counted` counts the unhealthy failures the breaker has counted. A call notes it when admitted too: a failure of a
 * call that was already in flight when another failure was counted is part of the same event (one dropped network
 * fails every query on it at once) and does not count again. Consecutive failures are failures in sequence.
 *
 * `countedAt` is when the last one was counted. A lost connection within `sameFaultMs` of it is the same fault too:
 * a pool learns one socket at a time that the connections it holds are dead (a silent drop says nothing until each
 * is used) and hands them out meanwhile, so calls admitted after the first failure still meet the dead ones.
 *
 * @since 0.1.0
 */
export interface CircuitBreaker {
  readonly config: Config
  readonly cell: MutableRef.MutableRef<State>
  /** @since 0.2.0 */
  readonly generation: MutableRef.MutableRef<number>
  /** @since 0.2.0 */
  readonly counted: MutableRef.MutableRef<number>
  /** @since 0.2.0 */
  readonly countedAt: MutableRef.MutableRef<number>
}

/**
 * How long after a counted failure a lost connection is still the same fault, in ms.
 *
 * @since 0.2.0
 */
export const sameFaultMs = 1_000

/** @since 0.1.0 */
export const make = (config: Config): CircuitBreaker => ({
  config,
  cell: MutableRef.make<State>(closed),
  generation: MutableRef.make(0),
  counted: MutableRef.make(0),
  countedAt: MutableRef.make(Number.NEGATIVE_INFINITY)
})

/** Stores `next`; a move to another state (not a closed circuit counting failures) is a new generation. */
const move = (breaker: CircuitBreaker, next: State) => {
  const before = breaker.cell.current
  if (next === before) return
  breaker.cell.current = next
  if (!(before._tag === "Closed" && next._tag === "Closed")) breaker.generation.current++
}

/**
 * Asks for a permit at `now`. Returns the permit; a `Reject` permit means the call must not run.
 *
 * @since 0.1.0
 */
export const unsafeAcquire = (breaker: CircuitBreaker, now: number): Permit => {
  // The hot path: a closed circuit lets everything through, with nothing to allocate.
  if (breaker.cell.current._tag === "Closed") return pass
  const [permit, next] = acquireTransition(breaker.cell.current, now, breaker.config)
  move(breaker, next)
  return permit
}

/**
 * Records an outcome at `now`; returns true when this call opened the circuit. With the `generation` the call was
 * admitted under, an outcome from before the circuit's last move is ignored; with the `counted` it was admitted
 * under, an unhealthy failure is ignored when another was counted while the call was in flight; a `lost` connection
 * (the failure was the connection closing under the call) is ignored within `sameFaultMs` of the last one counted.
 *
 * @since 0.1.0
 */
export const unsafeRecord = (
  breaker: CircuitBreaker,
  outcome: Outcome,
  now: number,
  generation?: number,
  counted?: number,
  lost = false
): boolean => {
  if (generation !== undefined && generation !== breaker.generation.current) return false
  if (outcome === "Unhealthy") {
    if (counted !== undefined && counted !== breaker.counted.current) return false
    if (lost && breaker.cell.current._tag === "Closed" && now - breaker.countedAt.current < sameFaultMs) return false
    breaker.counted.current++
    breaker.countedAt.current = now
  }
  const before = breaker.cell.current
  const next = recordTransition(before, outcome, now, breaker.config)
  move(breaker, next)
  return next._tag === "Open" && before._tag !== "Open"
}

/**
 * Asks for a permit, failing with `CircuitOpenError` while the circuit is open.
 *
 * @since 0.1.0
 */
export const acquire = (
  breaker: CircuitBreaker,
  database: string,
  operation: string
): Effect.Effect<Permit, CircuitOpenError> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const permit = unsafeAcquire(breaker, now)
    return permit._tag === "Reject"
      ? Effect.fail(new CircuitOpenError({ database, operation, retryAfterMs: permit.retryAfterMs }))
      : Effect.succeed(permit)
  })

/**
 * Records an outcome; succeeds with true when this call opened the circuit.
 *
 * @since 0.1.0
 */
export const record = (
  breaker: CircuitBreaker,
  outcome: Outcome,
  generation?: number,
  counted?: number,
  lost = false
): Effect.Effect<boolean> =>
  Effect.map(Clock.currentTimeMillis, (now) => unsafeRecord(breaker, outcome, now, generation, counted, lost))

/**
 * Closes the circuit, as after a successful reconnect.
 *
 * @since 0.1.0
 */
export const reset = (breaker: CircuitBreaker): Effect.Effect<void> =>
  Effect.sync(() => move(breaker, closed))

/**
 * Opens the circuit now, as if the database had just failed `threshold` times: calls are refused until
 * `resetTimeout` has passed, then one trial runs. For maintenance windows and for `flexidb/testing`'s `setDown`.
 *
 * @since 0.2.0
 */
export const trip = (breaker: CircuitBreaker): Effect.Effect<void> =>
  Effect.map(Clock.currentTimeMillis, (now) => move(breaker, State.Open({ openedAt: now })))

/**
 * The circuit's generation now: pass it to `record` with the outcome of a call admitted now.
 *
 * @since 0.2.0
 */
export const generation = (breaker: CircuitBreaker): Effect.Effect<number> => Effect.sync(() => breaker.generation.current)

/**
 * The current state.
 *
 * @since 0.1.0
 */
export const get = (breaker: CircuitBreaker): Effect.Effect<State> => Effect.sync(() => breaker.cell.current)

/**
 * The state's name as reported by `stats()`.
 *
 * @since 0.1.0
 */
export const stateName = (state: State): "closed" | "open" | "half-open" =>
  state._tag === "Closed" ? "closed" : state._tag === "Open" ? "open" : "half-open"
