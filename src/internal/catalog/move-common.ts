/**
 * What every kind of move shares: its types, the catalog's side of each step (the fence entered and acknowledged,
 * the switch, an undone move settled back), and the record of a move under way.
 */
import type { ChildProcess } from "node:child_process"
import { CatalogError, ConnectionError, InvalidArgumentError, isFlexiDBError } from "../../Errors.js"
import { errorSummary } from "../../Redact.js"
import { isUnhealthy } from "../classify.js"
import type { CatalogPool } from "./drivers.js"
import { unreachable } from "./drivers.js"
import type { Admin, Pause } from "./engines.js"
import type { Server } from "./servers.js"
import { columns, heartbeatMs, notify, toRow } from "./store.js"
import type { Row, Session } from "./store.js"

/** What a move reports while it runs. */
export interface MoveProgress {
  readonly step: "schema" | "copying" | "fenced" | "caught-up" | "switched" | "verified"
  /** Rows written on the target so far (inserts the subscription applied). */
  readonly rows: number
  /** The target database's size in bytes. */
  readonly bytes: number
  /** Bytes of the source's WAL the target has not confirmed yet (0 once caught up). */
  readonly lagBytes: number
  /** Milliseconds since the fence began (0 before it). */
  readonly fenceMs: number
}

/** The outcome of a finished move. */
export interface MoveReport {
  readonly row: Row
  readonly rows: number
  readonly bytes: number
  readonly copyMs: number
  /** From the row entering `moving` to the row pointing at the target. */
  readonly fenceMs: number
  /** `equal`: every table's checksum matched (a snapshot of the target taken inside the fence against the source). */
  readonly checksum: "equal" | "skipped"
  /** App instances alive (heartbeat) when the fence began, and how many acknowledged before the source was closed. */
  readonly instances: { readonly live: number; readonly acked: number; readonly waitedMs: number }
}

export interface MoveContext {
  readonly pool: CatalogPool
  readonly catalogUrl: string
  readonly serverOf: (name: string) => Server | InvalidArgumentError
  readonly adminOf: (server: Server) => Promise<Admin | undefined>
  readonly pause: Pause
  /** Milliseconds on the catalog's Clock. */
  readonly now: () => number
  /** While a move runs: whether its mover still holds the tenant's lock (its catalog session alive). */
  readonly held?: (() => boolean) | undefined
}

export interface Recorded {
  readonly name: string
  readonly from: Server
  readonly fromLocation: string
  readonly to: Server
  readonly toLocation: string
  readonly step: "copying" | "fenced" | "switched"
}

export interface MoveOptions {
  readonly server: string
  readonly onProgress?: ((progress: MoveProgress) => void) | undefined
  /** How long the initial copy may take. Default 10 minutes. */
  readonly copyTimeout?: number | undefined
  /** How long the target may take to replay the source's last position inside the fence. Default 30 s. */
  readonly catchUpTimeout?: number | undefined
  /**
   * How long the fence waits for every live app instance to acknowledge (its writes in flight finished, new ones
   * held) before the source is closed to writes anyway. Default 5 s.
   */
  readonly moveTimeout?: number | undefined
}

export const code = (e: unknown) => String((e as { code?: unknown })?.code ?? "")
export const refused = (name: string, reason: string) => new CatalogError({ operation: "move", tenant: name, reason })

/** Runs `f` inside one catalog transaction. */
export const transaction = <A>(pool: CatalogPool, f: (s: Session) => Promise<A>) =>
  pool.session(async (s) => {
    await s.query("BEGIN")
    try {
      const a = await f(s)
      await s.query("COMMIT")
      return a
    } catch (e) {
      await s.query("ROLLBACK").catch(() => undefined)
      throw e
    }
  })

export const recorded = async (ctx: MoveContext, name: string): Promise<Recorded | undefined> => {
  const { rows } = await ctx.pool.query(
    `SELECT name, from_server, from_location, to_server, to_location, step FROM flexidb.moves WHERE name = $1`,
    [name]
  )
  if (rows.length === 0) return undefined
  const r = rows[0]!
  const from = ctx.serverOf(String(r.from_server))
  const to = ctx.serverOf(String(r.to_server))
  if (from instanceof InvalidArgumentError) throw from
  if (to instanceof InvalidArgumentError) throw to
  return {
    name,
    from,
    fromLocation: String(r.from_location),
    to,
    toLocation: String(r.to_location),
    step: r.step as Recorded["step"]
  }
}

/** Records a move under way (step `copying`); a second one of the tenant is refused. */
export const record = async (ctx: MoveContext, m: Recorded, fromEpoch: number) => {
  try {
    await ctx.pool.query(
      `INSERT INTO flexidb.moves (name, from_server, from_location, to_server, to_location, step, from_epoch)
       VALUES ($1, $2, $3, $4, $5, 'copying', $6)`,
      [m.name, m.from.name, m.fromLocation, m.to.name, m.toLocation, fromEpoch]
    )
  } catch (e) {
    if (code(e) === "23505") throw refused(m.name, "a move of this tenant is already recorded: --resume or --abort it")
    throw e
  }
}

/** A finished move forgotten: its record and its instances' acknowledgements. */
export const forget = async (ctx: MoveContext, name: string) => {
  await ctx.pool.query(`DELETE FROM flexidb.moves WHERE name = $1`, [name])
  await ctx.pool.query(`DELETE FROM flexidb.move_acks WHERE name = $1`, [name])
}

/**
 * `f`, before a move has changed anything: a server that cannot be reached is a `ConnectionError` naming it (and
 * the tenant), as for any catalog operation, not one naming the catalog.
 */
export const reach = async <A>(name: string, server: Server, f: () => Promise<A>): Promise<A> => {
  try {
    return await f()
  } catch (e) {
    if (isFlexiDBError(e) || !unreachable(e)) throw e
    throw new ConnectionError({
      database: server.name,
      attempts: 1,
      reason: `server '${server.name}' (moving tenant '${name}'; nothing was changed) did not answer: ${errorSummary(e)}`,
      cause: e
    })
  }
}

/** How long a move keeps trying a step that puts things right while a server it needs does not answer. */
export const patienceMs = 15_000

/** A server (or the catalog) that did not answer for now — refused, dropped, shutting down: worth waiting for. */
const transient = (e: unknown) => isUnhealthy(e) && !["3D000", "1049", "ER_BAD_DB_ERROR"].includes(code(e))

/**
 * Runs `f` (idempotent) until it succeeds, a failure that is not transient, `patienceMs`, or `held()` saying the
 * mover lost its lock (its catalog session gone: another process's `--abort` or lease may be at work). Resolves to
 * `undefined` when done, else to the last failure.
 */
export const patiently = async (ctx: MoveContext, f: () => Promise<unknown>): Promise<unknown> => {
  const until = ctx.now() + patienceMs
  for (;;) {
    try {
      await f()
      return undefined
    } catch (e) {
      if (!transient(e) || ctx.now() >= until || ctx.held?.() === false) return e
      await ctx.pause(200)
    }
  }
}

/**
 * A move that failed before its switch goes back to its source (`undo`: the engine's side, then `settleBack`); after
 * the switch the target is where the tenant lives, and nothing is undone. A server that does not answer (refused,
 * dropped: the fault that failed the move, often) is waited for (`patiently`); past that the record stays for
 * `--resume` / `--abort` and the catalog's move lease. The error thrown is a `CatalogError` saying what failed, at
 * which step, and where the tenant stands now.
 */
export const undoUnlessSwitched = async (ctx: MoveContext, name: string, undo: (m: Recorded) => Promise<unknown>, error: unknown): Promise<never> => {
  const now = await recorded(ctx, name).catch(() => undefined)
  if (now === undefined || now.step === "switched") throw error
  const undoError = await patiently(ctx, () => undo(now))
  if (isFlexiDBError(error) && !(error instanceof CatalogError)) throw error
  const what = error instanceof CatalogError ? error.reason : errorSummary(error)
  const where = undoError === undefined
    ? `the move was undone: '${name}' is active on server '${now.from.name}' again, as before the move`
    : `undoing it failed too (${errorSummary(undoError)}): ${
      now.step === "copying"
        ? `'${name}' still takes writes on '${now.from.name}'`
        : `'${name}' stays fenced (its writes refused)`
    } until \`flexidb tenants move ${name} --abort\` (or --resume) succeeds, or an open catalog's move lease puts it back on '${now.from.name}'`
  throw new CatalogError({ operation: "move", tenant: name, reason: `${what} (step '${now.step}'); ${where}`, cause: error })
}

/** The catalog's side of an undone move: active where it was, the move forgotten. */
export const settleBack = (ctx: MoveContext, m: Recorded) =>
  transaction(ctx.pool, async (s) => {
    const { rows } = await s.query(
      `UPDATE flexidb.tenants SET state = 'active', epoch = epoch + 1, updated_at = now()
       WHERE name = $1 AND state = 'moving' RETURNING ${columns}`,
      [m.name]
    )
    await s.query(`DELETE FROM flexidb.moves WHERE name = $1`, [m.name])
    await s.query(`DELETE FROM flexidb.move_acks WHERE name = $1`, [m.name])
    if (rows.length > 0) {
      const row = toRow(rows[0]!)
      await notify(s, m.name, row.state, row.epoch)
      return row
    }
    return toRow((await s.query(`SELECT ${columns} FROM flexidb.tenants WHERE name = $1`, [m.name])).rows[0]!)
  })

/** The row enters `moving` (epoch + 1, announced), then every live instance's acknowledgement, or moveTimeout. */
export const enterFence = async (ctx: MoveContext, name: string, from: Server, moveTimeout: number) => {
  const epoch = await transaction(ctx.pool, async (s) => {
    const { rows } = await s.query(
      `UPDATE flexidb.tenants SET state = 'moving', epoch = epoch + 1, updated_at = now()
       WHERE name = $1 AND state = 'active' AND server = $2 RETURNING ${columns}`,
      [name, from.name]
    )
    if (rows.length === 0) throw refused(name, "its row changed during the copy (suspended, removed or moved)")
    await s.query(`UPDATE flexidb.moves SET step = 'fenced', updated_at = now() WHERE name = $1`, [name])
    const r = toRow(rows[0]!)
    await notify(s, name, r.state, r.epoch)
    return r.epoch
  })
  const fenceStart = ctx.now()
  const until = fenceStart + moveTimeout
  for (;;) {
    const { rows } = await ctx.pool.query(
      `SELECT count(*)::int AS live, count(a.instance)::int AS acked
       FROM flexidb.instances i LEFT JOIN flexidb.move_acks a ON a.instance = i.id AND a.name = $1 AND a.epoch = $2
       WHERE i.seen_at > now() - make_interval(secs => $3)`,
      [name, epoch, (3 * heartbeatMs) / 1000]
    )
    const instances = { live: Number(rows[0]!.live), acked: Number(rows[0]!.acked), waitedMs: ctx.now() - fenceStart }
    if (instances.acked >= instances.live || ctx.now() >= until) return { fenceStart, instances }
    await ctx.pause(5)
  }
}

/** The row points at the target, active, keeping the source; the move recorded as switched. */
export const switchRow = (ctx: MoveContext, name: string, to: Server, toLocation: string, from: Server, fromLocation: string) =>
  transaction(ctx.pool, async (s) => {
    const { rows } = await s.query(
      `UPDATE flexidb.tenants SET server = $2, location = $3, state = 'active', epoch = epoch + 1, updated_at = now(),
         source_server = $4, source_location = $5
       WHERE name = $1 AND state = 'moving' RETURNING ${columns}`,
      [name, to.name, toLocation, from.name, fromLocation]
    )
    if (rows.length === 0) throw refused(name, "its row left 'moving' during the cutover")
    await s.query(`UPDATE flexidb.moves SET step = 'switched', updated_at = now() WHERE name = $1`, [name])
    const r = toRow(rows[0]!)
    await notify(s, name, r.state, r.epoch)
    return r
  })

/** A dump tool and the client that loads its output, as they are started (stdout of one piped into the other). */
interface Piped {
  readonly process: ChildProcess
  readonly name: string
  /** What to do when it cannot start (not on PATH). */
  readonly hint: string
}

/**
 * Pipes `dump`'s output into `load` and resolves when both exit 0; rejects with the first failure and the last lines
 * of their stderr (credentials travel in their environment, never in argv, so stderr names none).
 */
export const pipeInto = (dump: Piped, load: Piped) =>
  new Promise<void>((resolve, reject) => {
    let errors = ""
    dump.process.stderr?.on("data", (d) => (errors += String(d)))
    load.process.stderr?.on("data", (d) => (errors += String(d)))
    dump.process.stdout!.pipe(load.process.stdin!)
    let left = 2
    let failed = false
    for (const p of [dump, load]) {
      p.process.on("error", (e) => reject(new Error(`${p.name} could not start (${e.message}): ${p.hint}`)))
      p.process.on("close", (status: number | null) => {
        if (status !== 0 && !failed) {
          failed = true
          reject(new Error(`${p.name} exited with ${status}: ${errors.trim().split("\n").slice(-3).join(" ")}`))
        }
        if (--left === 0 && !failed) resolve()
      })
    }
  })

/**
 * The end of a move whose copy was checked inside the fence (SQLite, MariaDB): the row switched to the target, the
 * move forgotten, progress reported at each step, and the report.
 */
export const finishCopied = async (
  ctx: MoveContext,
  name: string,
  where: { readonly from: Server; readonly fromLocation: string; readonly to: Server; readonly toLocation: string },
  copied: { readonly rows: number; readonly bytes: number },
  timing: { readonly started: number; readonly fenceStart: number; readonly instances: MoveReport["instances"] },
  progress: (p: MoveProgress) => void
): Promise<MoveReport> => {
  const { rows, bytes } = copied
  const fenceMs = () => ctx.now() - timing.fenceStart
  progress({ step: "caught-up", rows, bytes, lagBytes: 0, fenceMs: fenceMs() })
  const switched = await switchRow(ctx, name, where.to, where.toLocation, where.from, where.fromLocation)
  const fence = fenceMs()
  progress({ step: "switched", rows, bytes, lagBytes: 0, fenceMs: fence })
  await forget(ctx, name)
  progress({ step: "verified", rows, bytes, lagBytes: 0, fenceMs: fence })
  return { row: switched, rows, bytes, copyMs: timing.fenceStart - timing.started, fenceMs: fence, checksum: "equal", instances: timing.instances }
}

