// Side-by-side timing: variants run interleaved in small blocks, so drift (JIT, GC, the other core) hits them
// alike; each variant's result is the median of its block means.
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { getHeapSpaceStatistics } from "node:v8"

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
  /** Median bytes allocated per call in the young generation (blocks with no collection in them); NaN if none. */
  readonly aBytes: number
  readonly bBytes: number
}

const youngUsed = () => {
  for (const space of getHeapSpaceStatistics()) if (space.space_name === "new_space") return space.space_used_size
  return 0
}

/**
 * Measures B against A alone, in rounds of four blocks A, B, B, A: a drift that is linear within a round (the
 * JIT settling, the other core's load rising or falling) costs both sides alike, and a round's ratio cancels
 * what the whole round shared. Keep rounds short and many: a step in the machine's speed inside a round skews
 * that round, and the median over rounds discards the few that were; the interquartile range says how much
 * the rest moved. `before` runs ahead of every block, untimed: bench/run.ts empties the young generation there,
 * so that no scavenge (a pause of several milliseconds, a large share of a short block) falls inside a block;
 * what each side allocates, and so what it costs the collector, is reported beside.
 */
export const pair = async (
  a: Variant,
  b: Variant,
  { before = () => {}, perBlock = 20, rounds = 300, warmup = 10 }: {
    readonly before?: () => void
    readonly perBlock?: number
    readonly rounds?: number
    readonly warmup?: number
  } = {}
): Promise<Paired> => {
  const ratios: Array<number> = []
  const times = { a: [] as Array<number>, b: [] as Array<number> }
  const bytes = { a: [] as Array<number>, b: [] as Array<number> }
  const measure = async (side: "a" | "b", keep: boolean) => {
    before()
    const used = youngUsed()
    const us = await block(side === "a" ? a.run : b.run, perBlock)
    const grown = youngUsed() - used
    if (keep) {
      times[side].push(us)
      // A young generation that shrank was collected during the block: its allocation is unknown.
      if (grown >= 0) bytes[side].push(grown / perBlock)
    }
    return us
  }
  for (let r = -warmup; r < rounds; r++) {
    const keep = r >= 0
    const a1 = await measure("a", keep)
    const b1 = await measure("b", keep)
    const b2 = await measure("b", keep)
    const a2 = await measure("a", keep)
    if (keep) ratios.push((b1 + b2) / (a1 + a2))
  }
  const bytesMedian = (xs: Array<number>) => (xs.length === 0 ? Number.NaN : median(xs))
  return {
    a: a.name,
    b: b.name,
    ratio: median(ratios),
    q1: quantile(ratios, 0.25),
    q3: quantile(ratios, 0.75),
    rounds,
    aUs: median(times.a),
    bUs: median(times.b),
    aBytes: bytesMedian(bytes.a),
    bBytes: bytesMedian(bytes.b)
  }
}

/**
 * Direct pairs: many short ABBA rounds, and a scavenge before every block (untimed), so none falls inside one
 * (`npm run bench` runs node with --expose-gc). Short rounds matter here: this VM's speed changes in steps (block
 * means of one variant jumped from 320 to 200 µs and back, for seconds), and a step inside a round skews its ratio.
 * Rounds of 4 × 20 calls (about 25 ms on SQLite) put the same variant against itself at 0.996–1.003 in four runs;
 * rounds of 4 × 100 calls at 0.934–1.051 with scavenges inside the blocks, 0.997–1.023 without.
 */
export const pairing = {
  rounds: 300,
  perBlock: 20,
  before: () => (globalThis as { gc?: (options: { type: "minor" }) => void }).gc?.({ type: "minor" })
}

/**
 * Writes `lines` into BENCHMARKS.md between `<!-- id -->` and `<!-- /id -->` (appended the first time): each
 * `npm run bench:*` script keeps its own section, and `npm run bench` carries them over.
 */
export const writeSection = (id: string, lines: ReadonlyArray<string>) => {
  const file = join(import.meta.dirname, "..", "BENCHMARKS.md")
  const section = [`<!-- ${id} -->`, ...lines, `<!-- /${id} -->`].join("\n")
  const current = readFileSync(file, "utf8")
  const marked = new RegExp(`<!-- ${id} -->[\\s\\S]*<!-- /${id} -->`)
  writeFileSync(file, marked.test(current) ? current.replace(marked, () => section) : `${current.trimEnd()}\n\n${section}\n`)
  console.log(`BENCHMARKS.md: ${id} section written`)
}
