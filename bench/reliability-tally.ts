// What npm run chaos keeps of each call, and how it checks the writes against the databases afterwards. Nothing per
// read is kept (a 100-cycle run makes ~10^5 calls): counters, SQLite's latencies, and each write's key and outcome.
import Database from "better-sqlite3"
import * as mariadb from "mariadb"
import pg from "pg"
import type { TestDatabase } from "../test/support/databases.js"
import type { Call, LoopLag } from "./reliability-load.js"
import { batchFailures, codeOf, outcomeOf } from "./reliability-load.js"

export type PhaseKind = "baseline" | "drop" | "refuse" | "hang" | "latency" | "recover" | "settle"

/** The fault in force; a new object each time it changes, so a call can tell whether it spanned a change. */
export interface Phase {
  readonly kind: PhaseKind
  readonly cycle: number
}

interface WriteRecord {
  readonly acked: Array<string>
  readonly failed: Array<{ readonly email: string; readonly flagged: boolean | undefined }>
}

export const bump = (counts: Record<string, number>, key: string) => {
  counts[key] = (counts[key] ?? 0) + 1
}

const lastLine = (error: unknown) => String((error as Error | undefined)?.message).trim().split("\n").at(-1)

export class Tally {
  operations = 0
  baselineFailures = 0
  /** Calls that took longer than the bound, and of those, the ones the machine's stalls explain. */
  pastTimeout = 0
  pastTimeoutLoopStalled = 0
  maxCallMs = 0
  readonly slowest: Array<string> = []
  readonly writes: Map<string, WriteRecord>
  readonly sqliteMs = { baseline: [] as Array<number>, chaos: [] as Array<number> }
  sqliteCalls = 0
  sqliteFailures = 0
  /** Reads through get() and inside batch() operations (flexidb runs a read again once on a lost connection). */
  readonly dropReads = { total: 0, failed: 0, failedBy: {} as Record<string, number> }
  /** Errors from the proxied databases by code. */
  readonly errors: Record<string, number> = {}

  constructor(
    private readonly o: {
      readonly names: ReadonlyArray<string>
      readonly proxied: ReadonlyArray<string>
      readonly operationTimeout: number
      /** The longest a call may take: operationTimeout and the timer's own slack. */
      readonly bound: number
      readonly lag: LoopLag
      readonly phase: () => Phase
      readonly log: (line: string) => void
    }
  ) {
    this.writes = new Map(o.names.map((n) => [n, { acked: [], failed: [] }]))
  }

  /** Checks a call's wall time against the bound. */
  timed(what: string, ms: number, error: unknown) {
    this.maxCallMs = Math.max(this.maxCallMs, ms)
    if (ms <= this.o.bound) return
    this.pastTimeout++
    const now = performance.now()
    const stall = this.o.lag.max(now - ms, now)
    const stalls = this.o.lag.total(now - ms, now)
    // Excused only when the event loop's stalls during the call add up to at least the excess while this process was
    // mostly off the CPU: another process held the machine, and no timer here could have fired on time. Our own
    // blocking is not excused. (Added up, not the worst one alone: several stalls in a row each hold the timer back.)
    if (stalls.late >= ms - this.o.bound && stalls.cpu < stalls.late / 2) this.pastTimeoutLoopStalled++
    const line = `${what} ${Math.round(ms)} ms (${error === undefined ? "ok" : codeOf(error)}, in ${this.o.phase().kind}, ` +
      `event loop late by up to ${Math.round(stall.late)} ms meanwhile, ${Math.round(stalls.late)} ms in all, ` +
      `this process on the CPU ${Math.round(stalls.cpu)} ms of it)`
    this.o.log(`past the timeout: ${line}`)
    if (this.slowest.length < 20) this.slowest.push(line)
  }

  readonly call = (call: Call<Phase>) => {
    const { kind, database, error, startPhase } = call
    const { names, proxied } = this.o
    this.operations++
    this.timed(`${kind} ${database}`, call.ms, error)
    // A call counts for the baseline only if it also ended in it: one cut short by the first fault is chaos's.
    const baseline = startPhase.kind === "baseline" && call.endPhase === startPhase
    if (baseline && error !== undefined && this.baselineFailures++ < 10) {
      this.o.log(`failed without a fault: ${kind} ${database}: ${codeOf(error)} ${lastLine(error)}`)
    }
    const failedOn = kind === "batch" ? batchFailures(error, names) : error === undefined ? [] : [database]
    const causeOn = (name: string) =>
      kind === "batch" ? (error as { failures?: Record<string, unknown> }).failures?.[name] ?? error : error
    for (const name of failedOn) if (proxied.includes(name)) bump(this.errors, codeOf(causeOn(name)))
    if (kind === "write") {
      const record = this.writes.get(database)!
      if (error === undefined) record.acked.push(call.email!)
      else record.failed.push({ email: call.email!, flagged: outcomeOf(error) })
    }
    if (database === "sqlite" || kind === "batch") {
      this.sqliteCalls++
      if (failedOn.includes("sqlite")) this.sqliteFailures++
      if (database === "sqlite") (baseline ? this.sqliteMs.baseline : this.sqliteMs.chaos).push(call.ms)
    }
    // A read that started and ended inside one pure connection-drop phase: the servers were up all along.
    if (kind !== "write" && startPhase.kind === "drop" && call.endPhase === startPhase) {
      for (const name of kind === "batch" ? proxied : proxied.filter((n) => n === database)) {
        this.dropReads.total++
        if (!failedOn.includes(name)) continue
        this.dropReads.failed++
        const key = `${kind === "batch" ? "batch()" : "get()"} ${name} ${codeOf(causeOn(name))}`
        if (this.dropReads.failedBy[key] === undefined) this.o.log(`read failed across a drop: ${key}: ${lastLine(causeOn(name))}`)
        bump(this.dropReads.failedBy, key)
      }
    }
  }

  /** Each write's outcome against what its database holds now. */
  verify(stored: ReadonlyMap<string, ReadonlySet<string>>) {
    const all = [...this.writes.entries()]
    const failed = all.flatMap(([, r]) => r.failed)
    let lost = 0
    let committedUnflagged = 0
    let committedFlagged = 0
    for (const [name, record] of all) {
      const rows = stored.get(name)!
      lost += record.acked.filter((e) => !rows.has(e)).length
      for (const f of record.failed) {
        if (!rows.has(f.email)) continue
        if (f.flagged === true) committedFlagged++
        else committedUnflagged++
      }
    }
    return {
      writes: {
        attempted: all.reduce((n, [, r]) => n + r.acked.length + r.failed.length, 0),
        acknowledged: all.reduce((n, [, r]) => n + r.acked.length, 0),
        failed: failed.length,
        failedFlaggedUnknown: failed.filter((f) => f.flagged === true).length,
        failedWithoutFlag: failed.filter((f) => f.flagged === undefined).length,
        failedOnProxied: this.o.proxied.reduce((n, name) => n + this.writes.get(name)!.failed.length, 0)
      },
      lost,
      failedCommittedUnflagged: committedUnflagged,
      failedCommittedFlagged: committedFlagged
    }
  }
}

/** Every email in a database, read with the driver itself (around the proxy). */
export const storedEmails = async (db: TestDatabase): Promise<Set<string>> => {
  if (db.provider === "postgresql") {
    const c = new pg.Client({ connectionString: db.url })
    await c.connect()
    try {
      return new Set((await c.query(`SELECT email FROM "User"`)).rows.map((r) => r.email as string))
    } finally {
      await c.end()
    }
  }
  if (db.provider === "mysql") {
    const c = await mariadb.createConnection(db.url.replace("mysql://", "mariadb://"))
    try {
      return new Set((await c.query("SELECT email FROM `User`")).map((r: { email: string }) => r.email))
    } finally {
      await c.end()
    }
  }
  const c = new Database(db.url, { readonly: true })
  try {
    return new Set((c.prepare(`SELECT email FROM "User"`).all() as Array<{ email: string }>).map((r) => r.email))
  } finally {
    c.close()
  }
}
