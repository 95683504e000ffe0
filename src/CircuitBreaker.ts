/**
 * A per-database circuit breaker: a policy (Closed → Open → HalfOpen → Closed, `resetTimeout` apart) over a
 * strategy that decides when a closed circuit opens — `consecutive(n)` failures in sequence (the default), or
 * `sampling(…)`, a ratio of failures over a rolling window with a minimum throughput, as cockatiel's SamplingBreaker.
 * The state is a tagged union that moves through the pure transitions below, so it can be inspected and tested with
 * `TestClock`. Open turns HalfOpen lazily on the next call after `resetTimeout`: there is no timer fiber.
 *
 * A call is admitted with a `Ticket` (`unsafeAdmit`) and its outcome recorded against that ticket (`unsafeRecord`):
 * an outcome counts only under the state the call was admitted in.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as MutableRef from "effect/MutableRef"

/**
 * @since 0.1.0
 */
export type State = Data.TaggedEnum<{
  /** Serving. `failures` counts the unhealthy failures the strategy holds (in sequence, or in its window). */
  Closed: { readonly failures: number }
  /** Refusing every call until `openedAt + resetTimeout`. */
  Open: { readonly openedAt: number }
  /** One trial call is running (since `trialAt`); its outcome closes or re-opens the circuit. */
  HalfOpen: { readonly trialAt: number }
}>

/** @since 0.1.0 */
export const State = Data.taggedEnum<State>()

/**
 * When a closed circuit opens.
 *
 * @since 0.2.0
 */
export type Strategy = Data.TaggedEnum<{
  /** After `threshold` unhealthy failures in sequence; a success starts the count again. */
  Consecutive: { readonly threshold: number }
  /**
   * When at least `threshold` (0–1) of the calls that ended in the last `duration` ms failed unhealthy, once at least
   * `minimumThroughput` calls ended in it. Every call is sampled: one more clock read per query.
   */
  Sampling: { readonly threshold: number; readonly duration: number; readonly minimumThroughput: number }
}>

/** @since 0.2.0 */
export const Strategy = Data.taggedEnum<Strategy>()

/**
 * Opens after `threshold` unhealthy failures in sequence.
 *
 * @since 0.2.0
 */
export const consecutive = (threshold: number): Strategy => Strategy.Consecutive({ threshold })

/**
 * Opens when `threshold` (a ratio, 0–1) of the calls of the last `duration` ms failed unhealthy, with at least
 * `minimumThroughput` calls in that window (default 20).
 *
 * @since 0.2.0
 */
export const sampling = (options: { readonly threshold: number; readonly duration: number; readonly minimumThroughput?: number }): Strategy =>
  Strategy.Sampling({ threshold: options.threshold, duration: options.duration, minimumThroughput: options.minimumThroughput ?? 20 })

/**
 * @since 0.1.0
 */
export interface Config {
  /** Milliseconds the circuit stays open before a trial call is allowed. Default 30000. */
  readonly resetTimeout: number
  /** When the circuit opens. */
  readonly strategy: Strategy
}

/**
 * What `make` takes: `threshold` alone means `consecutive(threshold)`.
 *
 * @since 0.2.0
 */
export type Options =
  | { readonly resetTimeout: number; readonly strategy: Strategy }
  | { readonly resetTimeout: number; readonly threshold: number; readonly strategy?: Strategy | undefined }

/**
 * An admitted call's ticket: the circuit's generation and failure count when it was admitted, and whether it is
 * the half-open trial. Record its outcome with it.
 *
 * @since 0.2.0
 */
export interface Ticket {
  readonly _tag: "Pass" | "Trial"
  readonly generation: number
  readonly counted: number
}

/**
 * A call refused: the circuit is open (or a trial is running) for `retryAfterMs` more.
 *
 * @since 0.2.0
 */
export interface Rejection {
  readonly _tag: "Reject"
  readonly retryAfterMs: number
}

/**
 * What a call may do: run normally, run as the half-open trial, or be refused for `retryAfterMs`.
 *
 * @since 0.1.0
 */
export type Permit =
  | { readonly _tag: "Pass" }
  | { readonly _tag: "Trial" }
  | Rejection

const pass: Permit = { _tag: "Pass" }
const trial: Permit = { _tag: "Trial" }

/**
 * How a call ended, for the breaker: `Success` also covers errors that prove the database answered (a unique
 * violation, a missing record); `Lost` is an unhealthy failure where the connection closed under the call.
 *
 * @since 0.1.0
 */
export type Outcome = "Success" | "Unhealthy" | "Lost"

const closed = State.Closed({ failures: 0 })

/**
 * Decides whether a call may run at time `now` (milliseconds).
 *
 * @since 0.1.0
 */
export const acquireTransition = (
  state: State,
  now: number,
  config: Pick<Config, "resetTimeout">
): readonly [Permit, State] => {
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
 * Records how a call that was let through ended, under the consecutive strategy (`threshold` failures in
 * sequence). A sampling breaker's closed circuit moves by its window instead (see `unsafeRecord`); the other
 * moves are the same.
 *
 * @since 0.1.0
 */
export const recordTransition = (
  state: State,
  outcome: Outcome,
  now: number,
  config: { readonly threshold: number }
): State => {
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

/** A sampling strategy's rolling window: `buckets` slices of `duration`, each counting the calls that ended in it. */
interface Window {
  readonly bucketMs: number
  readonly epochs: Float64Array
  readonly successes: Float64Array
  readonly failures: Float64Array
}

const buckets = 10

const makeWindow = (duration: number): Window => ({
  bucketMs: Math.max(1, duration / buckets),
  epochs: new Float64Array(buckets).fill(-1),
  successes: new Float64Array(buckets),
  failures: new Float64Array(buckets)
})

/** Counts one ended call at `now`; returns the window's totals then. */
const sample = (w: Window, now: number, failed: boolean): readonly [calls: number, failures: number] => {
  const epoch = Math.floor(now / w.bucketMs)
  const i = epoch % buckets
  if (w.epochs[i] !== epoch) {
    w.epochs[i] = epoch
    w.successes[i] = 0
    w.failures[i] = 0
  }
  if (failed) w.failures[i]!++
  else w.successes[i]!++
  let calls = 0
  let failures = 0
  for (let j = 0; j < buckets; j++) {
    if (epoch - w.epochs[j]! < buckets) {
      calls += w.successes[j]! + w.failures[j]!
      failures += w.failures[j]!
    }
  }
  return [calls, failures]
}

const clearWindow = (w: Window) => {
  w.epochs.fill(-1)
  w.successes.fill(0)
  w.failures.fill(0)
}

/**
 * A breaker: one mutable cell holding the current `State`, read and moved synchronously by the query hot path
 * (`unsafeAdmit`, `unsafeRecord`), as Effect's own `unsafe` APIs do: an Effect run per query would cost more than
 * the bookkeeping itself. Lifecycle code moves it through Effects (`reset`, `trip`).
 *
 * `generation` counts the circuit's moves (opened, trial, closed, reset): a ticket notes it at admission and the
 * call's outcome counts only under the same generation. Without it, a call admitted while the circuit was closed
 * that succeeded (or failed with a query error) after the circuit opened would close it again at once. (cockatiel
 * guards only the half-open trial this way: a late success there closes only from half-open.)
 *
 * `counted` counts the unhealthy failures the breaker has counted. A ticket notes it too: a failure of a call that
 * was already in flight when another failure was counted is part of the same event (one dropped network fails every
 * query on it at once) and does not count again.
 *
 * `countedAt` is when the last one was counted. A `Lost` connection within `sameFaultMs` of it is the same fault too:
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
  /**
   * True when every success must be recorded, not only those after a failure (the sampling strategy).
   *
   * @since 0.2.0
   */
  readonly samplesSuccesses: boolean
  /** The sampling strategy's window (undefined for consecutive). */
  readonly window: Window | undefined
  /** The ticket a call admitted now gets: remade only when the circuit moves or counts, so admission allocates nothing. */
  readonly issued: MutableRef.MutableRef<Ticket>
}

/**
 * How long after a counted failure a lost connection is still the same fault, in ms.
 *
 * @since 0.2.0
 */
export const sameFaultMs = 1_000

/**
 * A closed breaker. `threshold` alone means `consecutive(threshold)`.
 *
 * @since 0.1.0
 */
export const make = (options: Options): CircuitBreaker => {
  const strategy = options.strategy ?? consecutive((options as { threshold: number }).threshold)
  const window = strategy._tag === "Sampling" ? makeWindow(strategy.duration) : undefined
  return {
    config: { resetTimeout: options.resetTimeout, strategy },
    cell: MutableRef.make<State>(closed),
    generation: MutableRef.make(0),
    counted: MutableRef.make(0),
    countedAt: MutableRef.make(Number.NEGATIVE_INFINITY),
    samplesSuccesses: window !== undefined,
    window,
    issued: MutableRef.make<Ticket>({ _tag: "Pass", generation: 0, counted: 0 })
  }
}

const reissue = (breaker: CircuitBreaker) => {
  breaker.issued.current = { _tag: "Pass", generation: breaker.generation.current, counted: breaker.counted.current }
}

/** Stores `next`; a move to another state (not a closed circuit counting failures) is a new generation. */
const move = (breaker: CircuitBreaker, next: State) => {
  const before = breaker.cell.current
  if (next === before) return
  breaker.cell.current = next
  if (!(before._tag === "Closed" && next._tag === "Closed")) {
    breaker.generation.current++
    reissue(breaker)
    if (next._tag === "Closed" && breaker.window !== undefined) clearWindow(breaker.window)
  }
}

/**
 * The ticket of a call admitted now without asking (a call the circuit does not gate): its outcome is recorded
 * under the circuit's current generation and count.
 *
 * @since 0.2.0
 */
export const ticket = (breaker: CircuitBreaker): Ticket => breaker.issued.current

/**
 * Admits a call: its ticket, or a `Rejection` (the call must not run). The clock is read only when the circuit is
 * not closed: a closed circuit admits every call whatever the time.
 *
 * @since 0.2.0
 */
export const unsafeAdmit = (breaker: CircuitBreaker, clock: Pick<Clock.Clock, "unsafeCurrentTimeMillis">): Ticket | Rejection => {
  if (breaker.cell.current._tag === "Closed") return breaker.issued.current
  const [permit, next] = acquireTransition(breaker.cell.current, clock.unsafeCurrentTimeMillis(), breaker.config)
  if (permit._tag === "Reject") return permit
  move(breaker, next)
  const issued = breaker.issued.current
  return permit._tag === "Trial" ? { ...issued, _tag: "Trial" } : issued
}

/**
 * Asks for a permit at `now`, moving the circuit (Open → HalfOpen) when the permit is a trial. Prefer
 * `unsafeAdmit`, whose ticket records the outcome.
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
 * Records how the call admitted with `ticket` ended, at `now`; returns true when this call opened the circuit. It is
 * ignored when the circuit has moved since the ticket was issued; an unhealthy failure is ignored when another was
 * counted while the call was in flight; a `Lost` connection is ignored within `sameFaultMs` of the last one counted.
 *
 * @since 0.1.0
 */
export const unsafeRecord = (breaker: CircuitBreaker, ticket: Ticket, outcome: Outcome, now: number): boolean => {
  if (ticket.generation !== breaker.generation.current) return false
  const before = breaker.cell.current
  if (outcome !== "Success") {
    if (ticket.counted !== breaker.counted.current) return false
    if (outcome === "Lost" && before._tag === "Closed" && now - breaker.countedAt.current < sameFaultMs) return false
    breaker.counted.current++
    breaker.countedAt.current = now
    reissue(breaker)
  }
  const strategy = breaker.config.strategy
  let next: State
  if (before._tag === "Closed" && strategy._tag === "Sampling") {
    const [calls, failures] = sample(breaker.window!, now, outcome !== "Success")
    next = outcome !== "Success" && calls >= strategy.minimumThroughput && failures >= strategy.threshold * calls
      ? State.Open({ openedAt: now })
      : failures === before.failures
      ? before
      : State.Closed({ failures })
  } else {
    next = recordTransition(before, outcome, now, strategy._tag === "Consecutive" ? strategy : { threshold: 1 })
  }
  move(breaker, next)
  return next._tag === "Open" && before._tag !== "Open"
}

/**
 * Closes the circuit, as after a successful reconnect.
 *
 * @since 0.1.0
 */
export const reset = (breaker: CircuitBreaker): Effect.Effect<void> =>
  Effect.sync(() => move(breaker, closed))

/**
 * Opens the circuit now, as if the database had just failed: calls are refused until `resetTimeout` has passed,
 * then one trial runs. For maintenance windows and for `flexidb/testing`'s `setDown`.
 *
 * @since 0.2.0
 */
export const trip = (breaker: CircuitBreaker): Effect.Effect<void> =>
  Effect.map(Clock.currentTimeMillis, (now) => move(breaker, State.Open({ openedAt: now })))

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
