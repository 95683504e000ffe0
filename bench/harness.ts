// Side-by-side timing: variants run interleaved in small blocks, so drift (JIT, GC, the other core) hits them
// alike; each variant's result is the median of its block means.

export interface Variant {
  readonly name: string
  readonly run: () => PromiseLike<unknown>
}

export interface Measured {
  readonly name: string
  /** Median of block means, microseconds per call. */
  readonly us: number
}

const quantile = (xs: ReadonlyArray<number>, q: number) => {
  const s = [...xs].sort((a, b) => a - b)
  const at = (s.length - 1) * q
  const lo = Math.floor(at)
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (at - lo)
}
const median = (xs: ReadonlyArray<number>) => quantile(xs, 0.5)

/** Microseconds per call of `n` calls of `run`, one after another. */
const block = async (run: () => PromiseLike<unknown>, n: number) => {
  const start = process.hrtime.bigint()
  for (let i = 0; i < n; i++) await run()
  return Number(process.hrtime.bigint() - start) / 1e3 / n
}

export const compare = async (
  variants: ReadonlyArray<Variant>,
  { blocks = 60, perBlock = 50, warmup = 3 } = {}
): Promise<Array<Measured>> => {
  const samples = variants.map(() => [] as Array<number>)
  for (let b = -warmup; b < blocks; b++) {
    // Rotate the order each block so no variant always runs first.
    for (let k = 0; k < variants.length; k++) {
      const i = (b + warmup + k) % variants.length
      const us = await block(variants[i]!.run, perBlock)
      if (b >= 0) samples[i]!.push(us)
    }
  }
  return variants.map((v, i) => ({ name: v.name, us: median(samples[i]!) }))
}

export const ratio = (a: Measured, b: Measured) => a.us / b.us

/** A direct pair: B ÷ A over many ABBA rounds. */
export interface Paired {
  readonly a: string
  readonly b: string
  /** Median over rounds of (B1 + B2) ÷ (A1 + A2). */
  readonly ratio: number
  /** First and third quartiles of the per-round ratios. */
  readonly q1: number
  readonly q3: number
  readonly rounds: number
  /** Median block means, microseconds per call. */
  readonly aUs: number
  readonly bUs: number
}

/**
 * Measures B against A alone, in rounds of four blocks A, B, B, A: a drift that is linear within a round (the
 * JIT settling, the other core's load rising or falling) costs both sides alike, and a round's ratio cancels
 * what the whole round shared. The median over many rounds discards the rounds a collection or a neighbour
 * disturbed; the interquartile range says how much the rest moved.
 */
export const pair = async (
  a: Variant,
  b: Variant,
  { rounds = 60, perBlock = 100, warmup = 3 } = {}
): Promise<Paired> => {
  const ratios: Array<number> = []
  const as: Array<number> = []
  const bs: Array<number> = []
  for (let r = -warmup; r < rounds; r++) {
    const a1 = await block(a.run, perBlock)
    const b1 = await block(b.run, perBlock)
    const b2 = await block(b.run, perBlock)
    const a2 = await block(a.run, perBlock)
    if (r < 0) continue
    ratios.push((b1 + b2) / (a1 + a2))
    as.push(a1, a2)
    bs.push(b1, b2)
  }
  return {
    a: a.name,
    b: b.name,
    ratio: median(ratios),
    q1: quantile(ratios, 0.25),
    q3: quantile(ratios, 0.75),
    rounds,
    aUs: median(as),
    bUs: median(bs)
  }
}
