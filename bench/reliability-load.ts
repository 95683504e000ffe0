// The steady load that npm run chaos and npm run soak put on a flexidb instance, and what both need around it:
// workers paced to a fixed offered rate, every call timed and classified, quantiles, a forced collection, the
// machine's description and RELIABILITY.md's marked sections.
import { execFileSync } from "node:child_process"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { cpus, totalmem } from "node:os"
import { join } from "node:path"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { BatchError } from "../src/index.js"
import type { FlexiDB } from "../src/index.js"
import type * as prisma7 from "../test/fixtures/prisma7/clients.ts"
import pg from "pg"
import { createDatabase, PG_HOST } from "../test/support/databases.js"

/** The fixture's clients share one model API whatever the provider: the SQLite client's type stands for all. */
export type AnyClient = ReturnType<typeof prisma7.sqlite>
// Any tenant type: the load uses get() and batch() only.
export type Instance = FlexiDB<Record<string, AnyClient>, any>

export type Kind = "write" | "read" | "batch"

/** One call as the app saw it. */
export interface Call<P = unknown> {
  readonly kind: Kind
  /** The database name, or "batch". */
  readonly database: string
  /** For writes: the row's unique key. */
  readonly email: string | undefined
  readonly ms: number
  readonly error: unknown
  /** Whatever `phase()` returned when the call started and when it ended (chaos: the fault in force). */
  readonly startPhase: P
  readonly endPhase: P
}

export interface LoadOptions<P> {
  readonly db: Instance
  /** The databases the load writes to and reads from; `batch()` reads from all of them at once. */
  readonly databases: ReadonlyArray<string>
  readonly workers: number
  /** Each worker starts a call at most every `periodMs`: the offered load stays the same whether calls fail fast or hang. */
  readonly periodMs: number
  /** Tells unique keys of different runs apart. */
  readonly tag: string
  readonly phase: () => P
  readonly onCall: (call: Call<P>) => void
}

/** What an error says about whether the operation may have happened (the `outcomeUnknown` contract). */
export const outcomeOf = (error: unknown): boolean | undefined => {
  const flag = (error as { outcomeUnknown?: unknown } | null)?.outcomeUnknown
  return typeof flag === "boolean" ? flag : undefined
}

/** A short name for an error: flexidb's or Prisma's code, else the class. */
export const codeOf = (error: unknown): string => {
  const e = error as { code?: unknown; _tag?: unknown; name?: unknown } | null
  if (typeof e?.code === "string") return e.code
  if (typeof e?._tag === "string") return e._tag
  return typeof e?.name === "string" ? e.name : typeof error
}

/** The databases a batch call failed on (a non-BatchError rejection failed them all). */
export const batchFailures = (error: unknown, databases: ReadonlyArray<string>): Array<string> =>
  error === undefined ? [] : error instanceof BatchError ? Object.keys(error.failures) : [...databases]

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/**
 * `workers` loops, each cycling through writes (a new row with a unique email), reads (`findUnique`, `findMany`,
 * `$queryRaw`) through `get()`, and a `batch()` read across every database. `pause()` lets the calls in flight
 * finish and holds the workers (the soak samples a quiet process); `stop()` ends them.
 */
export class Load<P> {
  private running = true
  private paused: Promise<void> | undefined
  private resume: (() => void) | undefined
  /** Workers waiting at the pause, not in a call nor in a timer between calls. */
  private parked = 0
  private readonly loops: Array<Promise<void>>
  /** Recent keys written per database, so reads find real rows. */
  private readonly recent = new Map<string, Array<string>>()
  private seq = 0

  constructor(private readonly options: LoadOptions<P>) {
    for (const name of options.databases) this.recent.set(name, [])
    this.loops = Array.from({ length: options.workers }, (_, i) => this.worker(i))
  }

  /** A round: a write and a read on each database, then one batch() read across all of them. */
  private plan(): Array<[Kind, string]> {
    const names = this.options.databases
    return [...names.flatMap((n): Array<[Kind, string]> => [["write", n], ["read", n]]), ["batch", "batch"]]
  }

  private async worker(index: number) {
    const plan = this.plan()
    // Workers start spread over one period and at different places in the plan, so the load is even from the start.
    await sleep((this.options.periodMs * index) / this.options.workers)
    for (let step = index; this.running; step++) {
      if (this.paused !== undefined) {
        this.parked++
        await this.paused
        this.parked--
      }
      if (!this.running) break
      const started = performance.now()
      const [kind, database] = plan[step % plan.length]!
      await this.call(kind, database, step)
      const wait = this.options.periodMs - (performance.now() - started)
      if (wait > 0 && this.running) await sleep(wait)
    }
  }

  private query(client: AnyClient, database: string, step: number): Promise<unknown> {
    const keys = this.recent.get(database)!
    switch (step % 3) {
      case 0:
        return client.user.findUnique({ where: { email: keys[step % keys.length] ?? "nobody@chaos.test" } })
      case 1:
        return client.user.findMany({ take: 3, orderBy: { id: "desc" } })
      default:
        return client.$queryRaw`SELECT 1 AS one`
    }
  }

  private async call(kind: Kind, database: string, step: number) {
    const { db, databases, tag, phase, onCall } = this.options
    const n = this.seq++
    const email = kind === "write" ? `${tag}-${database}-${n}@chaos.test` : undefined
    const startPhase = phase()
    const started = performance.now()
    let error: unknown
    try {
      if (kind === "write") {
        await db.get(database).user.create({ data: { email: email! } })
        this.recent.get(database)![n % 64] = email!
      } else if (kind === "read") {
        await this.query(db.get(database), database, step)
      } else {
        const ops: Record<string, (c: AnyClient) => Promise<unknown>> = {}
        for (const name of databases) ops[name] = (client) => this.query(client, name, step)
        await db.batch(ops)
      }
    } catch (e) {
      // A rejection with `undefined` would read as a success below: keep something.
      error = e ?? new Error("rejected with undefined")
    }
    onCall({ kind, database, email, ms: performance.now() - started, error, startPhase, endPhase: phase() })
  }

  /** Holds every worker after its current call, and resolves once all of them wait: no call, no timer of theirs. */
  async pause() {
    this.paused ??= new Promise<void>((r) => (this.resume = r))
    while (this.parked < this.options.workers) await sleep(5)
  }

  unpause() {
    const resume = this.resume
    this.paused = undefined
    this.resume = undefined
    resume?.()
  }

  /** Ends every worker; resolves once their last calls settled, or after `boundMs` with how many had not. */
  async stop(boundMs: number): Promise<number> {
    this.running = false
    this.unpause()
    let finished = 0
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.all(this.loops.map((l) => l.then(() => finished++))),
      new Promise((r) => (timer = setTimeout(r, boundMs)))
    ])
    clearTimeout(timer)
    return this.loops.length - finished
  }
}

/**
 * A SQLite database on memory-backed storage (/dev/shm) where there is one. better-sqlite3 runs each query
 * synchronously on the event loop, so on a disk every commit's fsync stalls every call in the process, flexidb's
 * timers included: on this project's CI VM 8 writers saw p99 161 ms per insert. On a disk the run would measure the
 * disk; here it measures flexidb.
 */
export const createMemorySqlite = async () => {
  const previous = process.env.TMPDIR
  // createDatabase makes its folder with os.tmpdir(), which reads TMPDIR on each call.
  if (existsSync("/dev/shm")) process.env.TMPDIR = "/dev/shm"
  try {
    return await createDatabase("sqlite")
  } finally {
    if (previous === undefined) delete process.env.TMPDIR
    else process.env.TMPDIR = previous
  }
}

/**
 * What a run set up, undone in reverse order however the run ends: finished, failed, or stopped with Ctrl-C (its
 * databases live on servers other runs share). It counts the unhandled rejections seen meanwhile.
 */
export class Teardown {
  unhandled = 0
  private readonly undo: Array<() => Promise<unknown>> = []
  private readonly onUnhandled = (reason: unknown) => {
    this.unhandled++
    this.log(`unhandled rejection: ${codeOf(reason)} ${reason instanceof Error ? reason.message : ""}`)
  }
  private readonly onSignal = (signal: NodeJS.Signals) => {
    this.log(`${signal}: undoing the run's set-up`)
    void this.close().finally(() => process.exit(signal === "SIGINT" ? 130 : 143))
  }

  constructor(private readonly log: (line: string) => void) {
    process.on("unhandledRejection", this.onUnhandled)
    process.once("SIGINT", this.onSignal)
    process.once("SIGTERM", this.onSignal)
  }

  add(undo: () => Promise<unknown>) {
    this.undo.push(undo)
  }

  async close() {
    process.off("SIGINT", this.onSignal)
    process.off("SIGTERM", this.onSignal)
    for (let undo = this.undo.pop(); undo !== undefined; undo = this.undo.pop()) {
      await undo().catch((e: unknown) => this.log(`cleanup: ${e instanceof Error ? e.message : String(e)}`))
    }
    process.off("unhandledRejection", this.onUnhandled)
  }
}

/**
 * How late the event loop ran, sampled every 10 ms over the last ~5 s: a call that ends late while nothing in the
 * process could run (a stall by the machine, a collector pause, synchronous work) says so.
 */
export class LoopLag {
  private readonly at = new Float64Array(512)
  private readonly late = new Float64Array(512)
  /** CPU time this process used between two ticks, ms: a late tick with little CPU was the machine's, not ours. */
  private readonly cpu = new Float64Array(512)
  private n = 0
  private last = performance.now()
  private lastCpu = process.cpuUsage()
  private readonly timer = setInterval(() => {
    const now = performance.now()
    const cpu = process.cpuUsage()
    this.at[this.n % 512] = now
    this.late[this.n % 512] = now - this.last - 10
    this.cpu[this.n % 512] = (cpu.user - this.lastCpu.user + cpu.system - this.lastCpu.system) / 1e3
    this.last = now
    this.lastCpu = cpu
    this.n++
  }, 10)

  /** The latest tick between `from` and `to` (performance.now() times): how late, and the CPU used meanwhile. */
  max(from: number, to: number) {
    let worst = { late: 0, cpu: 0 }
    for (let k = 0; k < Math.min(this.n, 512); k++) {
      if (this.at[k]! >= from && this.at[k]! <= to && this.late[k]! > worst.late) worst = { late: this.late[k]!, cpu: this.cpu[k]! }
    }
    return worst
  }

  /**
   * The ticks between `from` and `to` late by 10 ms or more, added up: how late the event loop was in all, and the
   * CPU this process used meanwhile. A timer due in that time can be late by all of it: each stall holds it back, and
   * an Effect timer's rejection is delivered one more turn of the loop after it fires.
   */
  total(from: number, to: number) {
    const sum = { late: 0, cpu: 0 }
    for (let k = 0; k < Math.min(this.n, 512); k++) {
      if (this.at[k]! >= from && this.at[k]! <= to && this.late[k]! >= 10) {
        sum.late += this.late[k]!
        sum.cpu += this.cpu[k]!
      }
    }
    return sum
  }

  stop() {
    clearInterval(this.timer)
  }
}

/**
 * `step` run over and over, at most once every `periodMs`, by one worker; pause() lets the step in progress finish
 * and holds the next. The soak's churn and tenant workers.
 */
export class Repeat {
  private running = true
  private paused: Promise<void> | undefined
  private resume: (() => void) | undefined
  private parked = false
  private readonly done: Promise<void>

  constructor(private readonly step: (i: number) => Promise<void>, private readonly periodMs: number) {
    this.done = this.loop()
  }

  private async loop() {
    for (let i = 0; this.running; i++) {
      if (this.paused !== undefined) {
        this.parked = true
        await this.paused
        this.parked = false
      }
      if (!this.running) break
      const started = performance.now()
      await this.step(i)
      const wait = this.periodMs - (performance.now() - started)
      if (wait > 0 && this.running) await sleep(wait)
    }
  }

  /** Resolves once the step in progress has finished and the loop waits (no timer of its own pending). */
  async pause() {
    this.paused ??= new Promise<void>((r) => (this.resume = r))
    while (!this.parked) await sleep(5)
  }

  unpause() {
    const resume = this.resume
    this.paused = undefined
    this.resume = undefined
    resume?.()
  }

  stop() {
    this.running = false
    this.unpause()
    return this.done
  }
}

/** The value below which a share `q` of `xs` lies (nearest rank); NaN for none. */
export const quantile = (xs: ArrayLike<number>, q: number) => {
  if (xs.length === 0) return Number.NaN
  const sorted = Float64Array.from(xs).sort()
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!
}

/** A full collection, with or without --expose-gc (vitest's workers run without it). */
export const collectGarbage = () => {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (exposed !== undefined) return exposed()
  setFlagsFromString("--expose-gc")
  ;(runInNewContext("gc") as () => void)()
}

export const machine = () => {
  const cpu = cpus()
  return `${cpu.length} × ${cpu[0]?.model.trim() ?? "unknown CPU"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`
}

/** Replaces the section between `<!-- id -->` and `<!-- /id -->` in RELIABILITY.md. */
export const writeReliability = (id: string, lines: ReadonlyArray<string>) => {
  const file = join(import.meta.dirname, "..", "RELIABILITY.md")
  const section = [`<!-- ${id} -->`, ...lines, `<!-- /${id} -->`].join("\n")
  const current = readFileSync(file, "utf8")
  const marked = new RegExp(`<!-- ${id} -->[\\s\\S]*<!-- /${id} -->`)
  if (!marked.test(current)) throw new Error(`RELIABILITY.md has no <!-- ${id} --> section`)
  writeFileSync(file, current.replace(marked, () => section))
  console.error(`RELIABILITY.md: ${id} section written`)
}

/** A pass/fail line: what was checked, against what bound, and what was found. */
export interface Check {
  readonly name: string
  readonly ok: boolean
  readonly found: string
}

export const check = (name: string, ok: boolean, found: string | number): Check => ({ name, ok, found: String(found) })

export const table = (rows: ReadonlyArray<readonly [string, string]>) =>
  ["| figure | value |", "| --- | --- |", ...rows.map(([k, v]) => `| ${k} | ${v} |`)]

/** Flag parsing shared by both scripts: `--name N` as a positive number, `--json` as a switch. */
export const flag = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  if (i === -1) return fallback
  const value = Number(process.argv[i + 1])
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} expects a number, got ${process.argv[i + 1]}`)
  return value
}
export const has = (name: string) => process.argv.includes(`--${name}`)

/**
 * Lets the shared servers finish what earlier work left them before a fault-free baseline is measured: PostgreSQL's
 * dirty buffers written out (CHECKPOINT), then the kernel's writeback (`sync`). Right after a test suite (databases
 * created, copied and dropped by the hundred) a baseline otherwise meets the disk's flush: in one CI run here, writes
 * on both PostgreSQL and MariaDB waited past a 1 s timeout while this process sat idle.
 */
export const settleServers = async (): Promise<void> => {
  const c = new pg.Client({ connectionString: `postgresql://postgres@${PG_HOST}/postgres` })
  await c.connect()
  try {
    await c.query("CHECKPOINT")
  } finally {
    await c.end()
  }
  execFileSync("sync")
}
