// Side-by-side timing: variants run interleaved in small blocks, so drift (JIT, GC, the other core) hits them
// alike; each variant's result is the median of its block means.

export interface Variant {
  readonly name: string
  readonly run: () => Promise<unknown>
}

export interface Measured {
  readonly name: string
  /** Median of block means, microseconds per call. */
  readonly us: number
}

const median = (xs: Array<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
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
      const v = variants[i]!
      const start = process.hrtime.bigint()
      for (let n = 0; n < perBlock; n++) await v.run()
      const us = Number(process.hrtime.bigint() - start) / 1e3 / perBlock
      if (b >= 0) samples[i]!.push(us)
    }
  }
  return variants.map((v, i) => ({ name: v.name, us: median(samples[i]!) }))
}

export const ratio = (a: Measured, b: Measured) => a.us / b.us
