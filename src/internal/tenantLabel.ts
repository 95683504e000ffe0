/**
 * The bounded tenant label. A metric series per tenant is what takes a Prometheus down at fleet scale (10,000
 * tenants × every bucket and gauge): only the busiest `top` tenants, by operations in a sliding window, keep their
 * own `flexidb.tenant` value; every other tenant is `other`. The window is counted on the instance's Clock, so
 * TestClock drives it, and the ranking is redone when the clock enters a new slot of the window (on the next
 * operation or scrape), never per operation.
 */
import type * as Clock from "effect/Clock"

/** The value every tenant outside the top set reports as. */
export const OTHER = "other"

/** The window is `slots` slots of `slotMs`: one minute, moved on every ten seconds. */
const slotMs = 10_000
const slots = 6

export interface TenantLabel {
  /** Counts one operation of `tenant`; true when the tenant keeps its own name in metrics. */
  readonly count: (tenant: string) => boolean
  /** Whether `tenant` keeps its own name now (no operation counted). */
  readonly kept: (tenant: string) => boolean
  /** Moves the window to the clock's time, reranking if a slot went by. */
  readonly refresh: () => void
  /** The tenants that keep their own name now. */
  readonly top: () => ReadonlySet<string>
}

export const make = (top: number, clock: Clock.Clock): TenantLabel => {
  if (top === Infinity) {
    return { count: () => true, kept: () => true, refresh: () => {}, top: () => new Set() }
  }
  // One map of counts per slot of the window; `slot` is the one the clock is in (its index modulo `slots`).
  const window: Array<Map<string, number>> = Array.from({ length: slots }, () => new Map())
  let slot = Math.floor(clock.unsafeCurrentTimeMillis() / slotMs)
  let kept = new Set<string>()

  const rerank = () => {
    const sums = new Map<string, number>()
    for (const counts of window) for (const [t, n] of counts) sums.set(t, (sums.get(t) ?? 0) + n)
    const ranked = [...sums].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    kept = new Set(ranked.slice(0, top).map(([t]) => t))
  }
  const refresh = () => {
    const now = Math.floor(clock.unsafeCurrentTimeMillis() / slotMs)
    if (now === slot) return
    // The slots the clock went past are emptied: their counts have left the window.
    for (let s = slot + 1; s <= Math.min(now, slot + slots); s++) window[s % slots]!.clear()
    slot = now
    rerank()
  }
  return {
    count: (tenant) => {
      refresh()
      const counts = window[slot % slots]!
      counts.set(tenant, (counts.get(tenant) ?? 0) + 1)
      if (kept.has(tenant)) return true
      // Room left in the top set: a tenant takes it at once rather than waiting for the next slot.
      if (kept.size < top) {
        kept.add(tenant)
        return true
      }
      return false
    },
    kept: (tenant) => kept.has(tenant),
    refresh,
    top: () => kept
  }
}
