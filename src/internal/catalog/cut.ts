/**
 * A write cut by a move's fence in a process that had not heard of the move yet (its notification late or lost): the
 * mover closes the source in its engine (PostgreSQL: `default_transaction_read_only` and the tenant's sessions
 * terminated; MariaDB: sessions killed and tables parked; SQLite: the file parked), so the driver fails the write.
 * Right after such a failure the catalog row is read: when the tenant is moving, or has moved away from where this
 * client points, the app gets `TenantMovingError` instead of the driver's error — `outcomeUnknown: true` when the
 * connection was cut under the write (it may have committed before the fence), `false` when the engine refused it
 * (read-only, parked tables: it provably did not run) — and the process applies the row it read, so its next call
 * waits for the switch and opens on the target. Prisma's own transaction around a write rolled back before its commit
 * (P2028) counts as refused: its commit was never sent. A call refused by a suspension's fence (the database closed to
 * connections, tables parked) in a process that had not heard of it is a `TenantSuspendedError`, as the next is.
 */
import { TenantMovingError, TenantSuspendedError } from "../../Errors.js"
import { isUnhealthy, outcomeUnknown } from "../classify.js"
import type { Row } from "./store.js"

const field = (u: unknown, key: string): unknown =>
  typeof u === "object" && u !== null ? (u as Record<string, unknown>)[key] : undefined

/** Codes and messages of the error, its driver adapter's cause and its own causes. */
const texts = (error: unknown, depth = 0): Array<string> => {
  if (typeof error !== "object" || error === null || depth > 3) return []
  const adapter = field(field(field(error, "meta"), "driverAdapterError"), "cause")
  const own = [error, adapter].flatMap((e) =>
    ["code", "errno", "originalCode", "kind", "message", "originalMessage"].map((k) => field(e, k))
  ).filter((v) => typeof v === "string" || typeof v === "number").map(String)
  return [...own, ...texts(field(error, "cause"), depth + 1)]
}

/**
 * The engine refused the write as the fence makes it: a read-only database (PostgreSQL 25006), a parked table
 * (MariaDB 1146, SQLite `no such table`), a read-only SQLite file, a database closed to connections (PostgreSQL
 * 55000 with that message: a suspension's fence; the code alone means other things too). Nothing was written.
 */
const refusedCodes = new Set(["25006", "1146", "ER_NO_SUCH_TABLE", "SQLITE_READONLY", "TableDoesNotExist", "P2021"])
const refusedMessage =
  /read-only transaction|readonly database|no such table|Table '[^']*' doesn't exist|is not currently accepting connections/i
const refused = (error: unknown) => texts(error).some((t) => refusedCodes.has(t) || refusedMessage.test(t))

/** MariaDB's `KILL` of the session under the write (1927, 1317): like a lost connection, it may have committed. */
const killedCodes = new Set(["1927", "ER_CONNECTION_KILLED", "1317", "ER_QUERY_INTERRUPTED"])
const killedMessage = /Connection was killed|Query execution was interrupted/i
const killed = (error: unknown) => texts(error).some((t) => killedCodes.has(t) || killedMessage.test(t))

/**
 * Prisma's own transaction around the write (a create on MariaDB is an INSERT and a SELECT in one) was rolled back
 * before its commit, as when the fence kills the session between the two: P2028 "…cannot be executed on a
 * transaction that was rolled back". The commit was never sent: nothing was written.
 */
const rolledBack = (error: unknown) => {
  const t = texts(error)
  return t.includes("P2028") && t.some((x) => /transaction that was rolled back/i.test(x))
}

/**
 * What a failed write tells of a move's fence: `refused` — the engine refused it or Prisma rolled it back, it was
 * not written; `cut` — its connection was cut under it, it may have committed; `other` — a failure the fence would
 * not cause, or an unhealthy connection (which a fence can cause too: the row decides).
 */
export const cutKind = (error: unknown): "refused" | "cut" | "unhealthy" | "other" =>
  refused(error) || rolledBack(error) ? "refused" : killed(error) ? "cut" : isUnhealthy(error) ? "unhealthy" : "other"

/**
 * How long at most a refusal waits for the catalog row of the suspension whose fence refused it (the fence is set
 * first; its row commits a moment later), and never more than half the operation's timeout. A database closed for
 * another reason reports its refusal this much later.
 */
export const fenceAheadMs = 3_000
/** PostgreSQL's closed door (55000): a suspension's fence, set before its row commits. */
const closedDatabase = /is not currently accepting connections/i

/** Whether the row read after a failure says the client at `opened` was cut by a move. */
const cutBy = (opened: Row, now: Row | undefined) =>
  now !== undefined &&
  (now.state === "moving" || (now.epoch > opened.epoch && (now.server !== opened.server || now.location !== opened.location)))

/**
 * `client` (a tenant's, opened from `row`) whose failed operations are checked against the catalog: `lookup` reads
 * the row now, `learnt` hands it to the process (as a notification would). A client without `$extends` is returned
 * as it is.
 */
export const cutByMove = <C>(
  client: C,
  row: Row,
  lookup: (name: string) => Promise<Row | undefined>,
  learnt: (now: Row) => void,
  fenceWaitMs = fenceAheadMs
): C => {
  const extend = field(client, "$extends")
  if (typeof extend !== "function") return client
  /** The row still says this client's placement serves: active, same server, same location. */
  const serving = (now: Row | undefined) =>
    now !== undefined && now.state === "active" && now.server === row.server && now.location === row.location
  /**
   * The catalog sets a suspension's fence before the row's change commits (it holds the row meanwhile): a closed
   * PostgreSQL database while the row still says it serves is read again every 50 ms until it does not, or until
   * `fenceWaitMs` — one poll for every call of this client refused meanwhile. A missing table, MariaDB's and schema
   * tenants' fence, is as likely the app's own mistake: it is not waited on.
   */
  let polling: Promise<Row | undefined> | undefined
  const changed = (first: Row | undefined) =>
    polling ??= (async () => {
      const deadline = Date.now() + fenceWaitMs
      let now = first
      while (serving(now) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, Math.min(50, Math.max(0, deadline - Date.now()))))
        now = await lookup(row.name).catch(() => undefined)
      }
      return now
    })().finally(() => {
      polling = undefined
    })
  const check = async (error: unknown): Promise<never> => {
    const kind = cutKind(error)
    if (kind === "other") throw error
    let now = await lookup(row.name).catch(() => undefined)
    if (kind === "refused" && serving(now) && texts(error).some((t) => closedDatabase.test(t))) now = await changed(now)
    if (kind === "refused" && now?.state === "suspended" && now.epoch > row.epoch) {
      // A suspension this process had not heard of yet: its fence refused the call, which never ran.
      learnt(now)
      throw new TenantSuspendedError({ tenant: row.name, cause: error })
    }
    if (!cutBy(row, now)) throw error
    learnt(now!)
    throw new TenantMovingError({
      tenant: row.name,
      waitedMs: 0,
      outcomeUnknown: kind === "refused" ? false : kind === "cut" || outcomeUnknown(error)
    })
  }
  return extend.call(client, {
    name: "flexidb-move",
    query: {
      $allOperations: ({ args, query }: { args: unknown; query: (args: unknown) => PromiseLike<unknown> }) =>
        Promise.resolve(query(args)).catch(check)
    }
  }) as C
}
