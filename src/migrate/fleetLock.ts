/**
 * The fleet lock: one `deployFleet` per fleet at a time, across processes and machines. Held on the fleet's first
 * tenant's server for the whole run: a PostgreSQL session advisory lock (a key of its own, beside Prisma's 72707369,
 * which stays per database), MySQL's `GET_LOCK`, or a lock file beside a SQLite fleet's first file. The holder says
 * who it is (PostgreSQL: the session's `application_name`; SQLite: the file's contents), so a refusal can name it.
 *
 * @since 0.2.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { createHash } from "node:crypto"
import { readFileSync, rmSync, writeFileSync } from "node:fs"
import { hostname } from "node:os"
import { MigrationError } from "../migrate.js"
import { errorSummary, redact } from "../Redact.js"

/** @since 0.2.0 */
export interface FleetLock {
  readonly release: () => Promise<void>
}

interface Attempt {
  /** The lock, or who holds it. */
  readonly take: () => Promise<FleetLock | { readonly holder: string }>
  readonly close: () => Promise<void>
}

// "flxf": the advisory lock's first key, so the second (the fleet's hash) cannot meet another app's pair by chance.
const CLASS = 0x666c7866

const identity = () => `flexidb fleet deploy, ${hostname()} pid ${process.pid}`

const keyOf = (names: ReadonlyArray<string>) =>
  createHash("sha256").update([...names].sort().join("\n")).digest().readInt32BE(0)

const postgres = async (url: string, key: number): Promise<Attempt> => {
  const pg = (await import("pg")).default
  const u = new URL(url)
  u.searchParams.delete("schema")
  const since = new Date().toISOString().slice(0, 19)
  const client = new pg.Client({ connectionString: u.toString(), application_name: `${identity()} since ${since}`.slice(0, 63) })
  await client.connect()
  let held = false
  return {
    take: async () => {
      const ok = (await client.query(`SELECT pg_try_advisory_lock($1, $2) AS ok`, [CLASS, key])).rows[0].ok
      if (ok) {
        held = true
        return { release: async () => void (await client.end().catch(() => {})) }
      }
      const who = (await client.query(
        `SELECT a.application_name AS app, host(a.client_addr) AS addr, a.backend_start AS at FROM pg_locks l
         JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.classid = $1::int::oid AND l.objid = $2::int::oid AND l.objsubid = 2 AND l.granted`,
        [CLASS, key]
      )).rows[0]
      return { holder: who === undefined ? "another session (gone since)" : `${who.app || "a session"}${who.addr ? ` from ${who.addr}` : ""}` }
    },
    close: async () => {
      if (!held) await client.end().catch(() => {})
    }
  }
}

const mysql = async (url: string, key: number): Promise<Attempt> => {
  const mariadb = (await import("mariadb")).default ?? (await import("mariadb"))
  const conn = await mariadb.createConnection(url.replace(/^mysql:/i, "mariadb:"))
  const name = `flexidb_fleet_${key}`
  let held = false
  return {
    take: async () => {
      const [row] = await conn.query(`SELECT GET_LOCK(?, 0) AS ok`, [name])
      if (Number(row?.ok) === 1) {
        held = true
        return { release: async () => void (await conn.end().catch(() => {})) }
      }
      const [who] = await conn.query(
        `SELECT p.ID AS id, p.HOST AS host FROM information_schema.PROCESSLIST p WHERE p.ID = IS_USED_LOCK(?)`,
        [name]
      )
      return { holder: who === undefined ? "another session (gone since)" : `connection ${who.id} from ${String(who.host).replace(/:\d+$/, "")}` }
    },
    close: async () => {
      if (!held) await conn.end().catch(() => {})
    }
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as { code?: string }).code === "EPERM"
  }
}

const sqliteFile = async (url: string, key: number): Promise<Attempt> => {
  const file = `${url.replace(/^file:(\/\/)?/, "").replace(/\?.*$/, "")}.flexidb-fleet-${(key >>> 0).toString(16)}.lock`
  return {
    take: async () => {
      const me = JSON.stringify({ host: hostname(), pid: process.pid, holder: identity() })
      try {
        writeFileSync(file, me, { flag: "wx" })
        return { release: async () => rmSync(file, { force: true }) }
      } catch (e) {
        if ((e as { code?: string }).code !== "EEXIST") throw e
      }
      let held: { host?: string; pid?: number; holder?: string } = {}
      try {
        held = JSON.parse(readFileSync(file, "utf8"))
      } catch {
        // Being written or removed right now: try again.
      }
      // A lock left by a process of this machine that is gone: take it over.
      if (held.host === hostname() && typeof held.pid === "number" && !alive(held.pid)) {
        rmSync(file, { force: true })
        return { holder: `${held.holder} (gone: retrying)` }
      }
      return { holder: held.holder ?? "another deploy" }
    },
    close: async () => {}
  }
}

/**
 * Takes the lock of the fleet named by its tenants (on the first tenant's server), retrying every 250 ms until
 * `timeout` (default 0: one try); fails with `FLEXIDB_FLEET_LOCKED`, naming the holder, when it cannot.
 *
 * @since 0.2.0
 */
export const takeFleetLock = (
  tenants: ReadonlyArray<{ readonly name: string; readonly url: string }>,
  timeout: Duration.DurationInput | undefined
): Effect.Effect<FleetLock, MigrationError> =>
  Effect.gen(function*() {
    if (tenants.length === 0) return { release: async () => {} }
    const first = tenants[0]!.url
    const key = keyOf(tenants.map((t) => t.name))
    const attempt = yield* Effect.tryPromise({
      try: () =>
        /^postgres(ql)?:/i.test(first)
          ? postgres(first, key)
          : /^(mysql|mariadb):/i.test(first)
          ? mysql(first, key)
          : sqliteFile(first, key),
      catch: (e) =>
        new MigrationError({ code: "FLEXIDB_FLEET_LOCK", reason: `cannot reach the first tenant's server for the fleet lock (${redact(errorSummary(e))})` })
    })
    const deadline = (yield* Effect.clockWith((c) => c.currentTimeMillis)) + Duration.toMillis(Duration.decode(timeout ?? 0))
    for (;;) {
      const got = yield* Effect.tryPromise({
        try: attempt.take,
        catch: (e) => new MigrationError({ code: "FLEXIDB_FLEET_LOCK", reason: `cannot take the fleet lock (${redact(errorSummary(e))})` })
      }).pipe(Effect.tapError(() => Effect.promise(attempt.close)))
      if ("release" in got) return got
      if ((yield* Effect.clockWith((c) => c.currentTimeMillis)) >= deadline) {
        yield* Effect.promise(attempt.close)
        return yield* Effect.fail(
          new MigrationError({
            code: "FLEXIDB_FLEET_LOCKED",
            reason: `another fleet deploy of these tenants is running: ${got.holder}. Wait for it to finish, or give ` +
              `lockTimeout (--lock-timeout) to wait for it.`
          })
        )
      }
      yield* Effect.sleep("250 millis")
    }
  })
