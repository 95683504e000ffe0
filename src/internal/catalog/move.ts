/**
 * Moving a PostgreSQL database tenant to another server while it is in use: the target's tables created empty from
 * the source's schema (pg_dump --schema-only | psql), a publication and a slot on the source, a subscription on the
 * target (initial copy, then streaming), then a short fence: the catalog row enters `moving`, the source is closed to
 * writes in its engine (`default_transaction_read_only` + its client sessions terminated, not the replication
 * connection), the target replays the source's last position, sequences are set, row counts compared; the row then
 * points at the target, and a checksum of every table is compared in a snapshot taken inside the fence.
 *
 * Each step is recorded in `flexidb.moves`, and the mover holds a session advisory lock on the catalog for the move:
 * a mover that dies (kill -9) loses its lock with its connection, and `resume` / `abort` take over.
 *
 * This file also holds what every move goes through (`move`, `resume`, `abort`, the lease, `removeSource`); SQLite
 * files move in move-file.ts, MariaDB databases in move-maria.ts, and the catalog's side of each step is in
 * move-common.ts.
 */
import { createHash } from "node:crypto"
import { spawn } from "node:child_process"
import { existsSync, readdirSync } from "node:fs"
import type * as Pg from "pg"
import { CatalogError, DuplicateDatabaseError, InvalidArgumentError, UnknownDatabaseError } from "../../Errors.js"
import { errorSummary } from "../../Redact.js"
import type { CatalogPool } from "./drivers.js"
import { loadPg } from "./drivers.js"
import type { Admin, Pause } from "./engines.js"
import * as engines from "./engines.js"
import type { Server } from "./servers.js"
import { withDatabase } from "./servers.js"
import { columns, toRow } from "./store.js"
import type { Row } from "./store.js"
import type { MoveContext, MoveOptions, MoveReport, Recorded } from "./move-common.js"
import { code, enterFence, forget, patiently, pipeInto, reach, record, recorded, refused, settleBack, switchRow, undoUnlessSwitched } from "./move-common.js"
import { runFile, undoFile } from "./move-file.js"
import { runMaria, undoMaria } from "./move-maria.js"

export type { MoveContext, MoveOptions, MoveProgress, MoveReport } from "./move-common.js"

const pgId = (id: string) => `"${id.replace(/"/g, '""')}"`

/** Publication, slot and subscription share one name: lowercase, short, derived from the tenant's name. */
export const replicationName = (name: string) => `flexidb_move_${createHash("md5").update(name).digest("hex").slice(0, 20)}`

/** pg_advisory_lock(key, hashtext(name)): the mover's lock, held on its own catalog session. */
const lockKey = 0x666c6d76

const binDir = () => {
  const fromEnv = process.env.FLEXIDB_PG_BIN
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv
  const root = "/usr/lib/postgresql"
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(a) - Number(b))
  return versions.length === 0 ? undefined : `${root}/${versions.at(-1)}/bin`
}
const tool = (name: string) => {
  const dir = binDir()
  return dir === undefined ? name : `${dir}/${name}`
}

/** libpq's environment for a URL: the credentials never reach a command line. */
const libpqEnv = (url: string): Record<string, string> => {
  const u = new URL(url)
  const env: Record<string, string> = {
    PGHOST: u.hostname.replace(/^\[|\]$/g, "") || "localhost",
    PGPORT: u.port === "" ? "5432" : u.port,
    PGDATABASE: decodeURIComponent(u.pathname.slice(1)),
    PGUSER: decodeURIComponent(u.username) || "postgres"
  }
  if (u.password !== "") env.PGPASSWORD = decodeURIComponent(u.password)
  const ssl = u.searchParams.get("sslmode")
  if (ssl !== null) env.PGSSLMODE = ssl
  return env
}

/** A libpq keyword connection string for the target's subscription (it connects to the source itself). */
const conninfo = (url: string) => {
  const env = libpqEnv(url)
  const q = (v: string) => `'${v.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`
  const parts = [`host=${q(env.PGHOST!)}`, `port=${q(env.PGPORT!)}`, `dbname=${q(env.PGDATABASE!)}`, `user=${q(env.PGUSER!)}`]
  if (env.PGPASSWORD !== undefined) parts.push(`password=${q(env.PGPASSWORD)}`)
  if (env.PGSSLMODE !== undefined) parts.push(`sslmode=${q(env.PGSSLMODE)}`)
  return parts.join(" ")
}

/** pg_dump --schema-only of the source piped into psql on the target; stderr (no credentials: they are in env) kept. */
const copySchema = (source: string, target: string) => {
  const hint = "set FLEXIDB_PG_BIN to PostgreSQL's bin folder"
  const dump = spawn(tool("pg_dump"), ["--schema-only", "--no-owner", "--no-privileges", "--no-publications", "--no-subscriptions"], {
    env: { ...process.env, ...libpqEnv(source) },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const load = spawn(tool("psql"), ["-q", "-X", "-v", "ON_ERROR_STOP=1", "-f", "-"], {
    env: { ...process.env, ...libpqEnv(target) },
    stdio: ["pipe", "ignore", "pipe"]
  })
  return pipeInto({ process: dump, name: "pg_dump", hint }, { process: load, name: "psql", hint })
}

const connect = async (url: string): Promise<Pg.Client> => {
  const pg = await loadPg("move")
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  c.on("error", () => undefined)
  await c.connect()
  return c
}
const using = async <A>(url: string, f: (c: Pg.Client) => Promise<A>): Promise<A> => {
  const c = await connect(url)
  try {
    return await f(c)
  } finally {
    await c.end().catch(() => undefined)
  }
}

const dbUrl = (server: Server, location: string) => withDatabase(server.base, location)

/** The mover's lock on tenant `name`, held on a session of its own until `release`. */
const lock = async (ctx: MoveContext, name: string) => {
  const c = await connect(ctx.catalogUrl)
  const { rows } = await c.query(`SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok`, [lockKey, name])
  if (rows[0]?.ok !== true) {
    await c.end().catch(() => undefined)
    throw refused(name, "another process is moving this tenant right now: wait for it (or for it to die), then --resume or --abort")
  }
  // The lock lives as long as this session: once it errs or ends, another process may take the move over.
  let alive = true
  const lost = () => {
    alive = false
  }
  c.on("error", lost)
  c.on("end", lost)
  return { release: () => c.end().catch(() => undefined), held: () => alive }
}

const rowOf = async (ctx: MoveContext, name: string) => {
  const { rows } = await ctx.pool.query(`SELECT ${columns} FROM flexidb.tenants WHERE name = $1 AND state <> 'creating'`, [name])
  if (rows.length === 0) throw new UnknownDatabaseError({ database: name, registered: [], tenant: true })
  return toRow(rows[0]!)
}

const lsnBytes = (lsn: string) => {
  const [hi, lo] = lsn.split("/")
  return BigInt(`0x${hi}`) * 0x100000000n + BigInt(`0x${lo}`)
}

/** The target's copy so far, and how far behind the source's current WAL position its subscription is. */
const measure = async (source: Admin, target: Pg.Client, slot: string) => {
  const [{ rows: t }, s] = await Promise.all([
    target.query(
      `SELECT (SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables)::bigint AS rows,
              pg_database_size(current_database())::bigint AS bytes`
    ),
    source.query(
      `SELECT pg_current_wal_lsn()::text AS now, (SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1) AS done`,
      [slot]
    )
  ])
  const now = String(s[0]!.now)
  const done = s[0]!.done == null ? undefined : String(s[0]!.done)
  const lag = done === undefined ? 0n : lsnBytes(now) - lsnBytes(done)
  return { rows: Number(t[0]!.rows), bytes: Number(t[0]!.bytes), lagBytes: lag > 0n ? Number(lag) : 0 }
}

/** Drops the subscription on the target (keeping the source's slot: dropped separately), if there is one. */
const dropSubscription = async (target: Pg.Client, sub: string) => {
  const { rows } = await target.query(`SELECT 1 FROM pg_subscription WHERE subname = $1`, [sub])
  if (rows.length === 0) return
  await target.query(`ALTER SUBSCRIPTION ${pgId(sub)} DISABLE`)
  await target.query(`ALTER SUBSCRIPTION ${pgId(sub)} SET (slot_name = NONE)`)
  await target.query(`DROP SUBSCRIPTION ${pgId(sub)}`)
}

/** Drops the slot (once its walsender is gone) and the publication on the source. */
const dropPublisher = async (ctx: MoveContext, from: Server, fromLocation: string, admin: Admin, name: string) => {
  for (let i = 0;; i++) {
    try {
      await admin.query(
        `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`,
        [name]
      )
      break
    } catch (e) {
      // 55006: the slot is still in use by a walsender that is exiting.
      if (code(e) !== "55006" || i >= 500) throw e
      await admin.query(
        `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`,
        [name]
      )
      await ctx.pause(10)
    }
  }
  const exists = await admin.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [fromLocation])
  if (exists.length === 0) return
  await using(dbUrl(from, fromLocation), async (c) => {
    await c.query(`SET default_transaction_read_only = off`)
    await c.query(`DROP PUBLICATION IF EXISTS ${pgId(name)}`)
  })
}

/** Terminates the client sessions on `location` (not replication) until none is left, for at most 5 s. */
const terminateClients = async (ctx: MoveContext, admin: Admin, location: string) => {
  const sessions = `FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()`
  for (let i = 0; i < 500; i++) {
    const rows = await admin.query(`SELECT pg_terminate_backend(pid) AS t ${sessions}`, [location])
    if (rows.length === 0) return
    await ctx.pause(10)
  }
}

const tablesOf = async (c: Pg.Client) =>
  (await c.query(
    `SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_tables
     WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`
  )).rows.map((r) => String(r.t))

const checksumSql = (table: string) =>
  `SELECT count(*)::bigint AS n, coalesce(md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))), '') AS h FROM ${table} x`

/** Catalog + engine changes that put a recorded move back: the tenant active on its source, the target's copy gone. */
const undo = async (ctx: MoveContext, m: Recorded): Promise<Row> => {
  if (m.from.engine === "sqlite") return undoFile(ctx, m)
  if (m.from.engine === "mysql") return undoMaria(ctx, m)
  const name = replicationName(m.name)
  const toAdmin = (await ctx.adminOf(m.to))!
  const fromAdmin = (await ctx.adminOf(m.from))!
  const there = await toAdmin.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [m.toLocation])
  if (there.length > 0) {
    await using(dbUrl(m.to, m.toLocation), (c) => dropSubscription(c, name))
    await toAdmin.query(`DROP DATABASE IF EXISTS ${pgId(m.toLocation)} WITH (FORCE)`)
  }
  await dropPublisher(ctx, m.from, m.fromLocation, fromAdmin, name)
  await fromAdmin.query(`ALTER DATABASE ${pgId(m.fromLocation)} RESET default_transaction_read_only`)
  return settleBack(ctx, m)
}


/** After the switch: the replication objects dropped; idempotent, so `resume` can run it again. */
const finish = async (ctx: MoveContext, m: Recorded) => {
  if (m.from.engine !== "postgresql") return
  const name = replicationName(m.name)
  await using(dbUrl(m.to, m.toLocation), (c) => dropSubscription(c, name))
  await dropPublisher(ctx, m.from, m.fromLocation, (await ctx.adminOf(m.from))!, name)
}

const checkPostgres = async (ctx: MoveContext, row: Row, to: Server) => {
  const from = ctx.serverOf(row.server)
  if (from instanceof InvalidArgumentError) throw from
  if (from.engine !== to.engine) {
    throw new InvalidArgumentError({
      path: "server",
      reason: `tenant '${row.name}' lives on ${from.engine} server '${from.name}' and '${to.name}' is ${to.engine}: a move stays on one engine`
    })
  }
  const file = (from.engine === "sqlite" && row.kind === "file") || (from.engine === "mysql" && row.kind === "database")
  if (from.engine === "postgresql" && row.kind === "schema") {
    // A move publishes and fences a whole database; a schema shares its database (and the fence) with other tenants.
    throw new InvalidArgumentError({
      path: "kind",
      reason: `tenant '${row.name}' is a PostgreSQL schema tenant (schema '${row.location}' on server '${from.name}'), and ` +
        `schema tenants do not move: a move copies and closes a whole database, which this schema shares with other ` +
        `tenants. Nothing was changed. To move it, stop its writes, copy it with pg_dump --schema='${row.location}' into a ` +
        `database tenant created on '${to.name}' (flexidb tenants create NAME --server ${to.name} --kind database), and ` +
        `remove this one; tenants that may move are best created with --kind database`
    })
  }
  if (!file && (from.engine !== "postgresql" || row.kind !== "database")) {
    throw new InvalidArgumentError({
      path: "kind",
      reason: `moving a ${from.engine} ${row.kind} tenant is not supported yet: PostgreSQL and MariaDB 'database' tenants and SQLite files move`
    })
  }
  if (from.name === to.name) {
    throw new InvalidArgumentError({ path: "server", reason: `tenant '${row.name}' already lives on server '${to.name}'` })
  }
  if (row.state !== "active") {
    throw refused(row.name, `it is ${row.state}: only an active tenant moves (resume it first)`)
  }
  /** A server's admin session, answering: else a ConnectionError naming the server, before anything changes. */
  const answering = (server: Server) =>
    reach(row.name, server, async () => {
      const admin = (await ctx.adminOf(server))!
      await admin.query(`SELECT 1`)
      return admin
    })
  if (file) {
    return from.engine === "sqlite"
      ? { from, fromAdmin: undefined as unknown as Admin, toAdmin: undefined as unknown as Admin }
      : { from, fromAdmin: await answering(from), toAdmin: await answering(to) }
  }
  // Its wal_level is read on the first round trip, which also proves the source answers.
  const [fromAdmin, level] = await reach(row.name, from, async () => {
    const admin = (await ctx.adminOf(from))!
    return [admin, String((await admin.query(`SHOW wal_level`))[0]!.wal_level)] as const
  })
  if (level !== "logical") {
    throw refused(
      row.name,
      `server '${from.name}' has wal_level = ${level}: a move copies through logical replication, so set ` +
        `wal_level = logical in its postgresql.conf (plus max_replication_slots and max_wal_senders ≥ 2) and restart it`
    )
  }
  return { from, fromAdmin, toAdmin: await answering(to) }
}

const waitFor = async (ctx: MoveContext, what: string, name: string, ms: number, ok: () => Promise<boolean>) => {
  const until = ctx.now() + ms
  for (;;) {
    if (await ok()) return
    if (ctx.now() > until) throw refused(name, `${what} did not happen within ${ms} ms`)
    await ctx.pause(20)
  }
}

const run = async (ctx: MoveContext, row: Row, to: Server, options: MoveOptions): Promise<MoveReport> => {
  const { from, fromAdmin, toAdmin } = await checkPostgres(ctx, row, to)
  if (from.engine === "sqlite") return runFile(ctx, row, from, to, options)
  if (from.engine === "mysql") return runMaria(ctx, row, from, to, fromAdmin, toAdmin, options)
  const name = row.name
  const progress = options.onProgress ?? (() => undefined)
  if (row.source !== undefined) {
    if (row.source.server !== to.name) {
      throw refused(name, `its previous copy on server '${row.source.server}' is still kept: remove it first (remove(name, { source: true }))`)
    }
    // Moving back where it was: that old copy is dropped first.
    await toAdmin.query(`DROP DATABASE IF EXISTS ${pgId(row.source.location)} WITH (FORCE)`)
    await ctx.pool.query(`UPDATE flexidb.tenants SET source_server = NULL, source_location = NULL WHERE name = $1`, [name])
  }
  const m: Recorded = { name, from, fromLocation: row.location, to, toLocation: row.location, step: "copying" }
  const repl = replicationName(name)
  await record(ctx, m, row.epoch)
  try {
    await toAdmin.query(`CREATE DATABASE ${pgId(m.toLocation)}`)
  } catch (e) {
    await ctx.pool.query(`DELETE FROM flexidb.moves WHERE name = $1`, [name])
    if (code(e) === "42P04") throw new DuplicateDatabaseError({ database: name })
    throw e
  }
  const started = ctx.now()
  let fenceStart: number | undefined
  const target = await connect(dbUrl(to, m.toLocation))
  let snapshot: Pg.Client | undefined
  let source: Promise<Pg.Client> | undefined
  /** The copy's figures as last measured before the fence: nothing is measured inside it (it would lengthen it). */
  let copiedSoFar = { rows: 0, bytes: 0, lagBytes: 0 }
  try {
    progress({ step: "schema", rows: 0, bytes: 0, lagBytes: 0, fenceMs: 0 })
    await copySchema(dbUrl(from, m.fromLocation), dbUrl(to, m.toLocation))
    await using(dbUrl(from, m.fromLocation), async (c) => {
      await c.query(`CREATE PUBLICATION ${pgId(repl)} FOR ALL TABLES`)
      await c.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [repl])
    })
    await target.query(
      `CREATE SUBSCRIPTION ${pgId(repl)} CONNECTION '${conninfo(dbUrl(from, m.fromLocation)).replace(/'/g, "''")}' ` +
        `PUBLICATION ${pgId(repl)} WITH (create_slot = false, slot_name = '${repl}')`
    )
    // The initial copy: every table's sync state ready ('r') or synced ('s').
    await waitFor(ctx, "the initial copy", name, options.copyTimeout ?? 600_000, async () => {
      const { rows } = await target.query(
        `SELECT count(*) FILTER (WHERE srsubstate NOT IN ('r', 's'))::int AS left, count(*)::int AS n FROM pg_subscription_rel`
      )
      const p = await measure(fromAdmin, target, repl)
      copiedSoFar = p
      progress({ step: "copying", ...p, fenceMs: 0 })
      return Number(rows[0]!.left) === 0
    })

    // The connection the snapshot is taken on, opened before the fence so the fence does not wait for it.
    snapshot = await connect(dbUrl(to, m.toLocation))

    // The fence: every process hears `moving`; the source's engine refuses writes from here on.
    // Every live instance drains its writes in flight to the tenant and says so; a dead or deaf one is waited for
    // moveTimeout at most — the engine's fence below stops it anyway.
    const fenced = await enterFence(ctx, name, from, options.moveTimeout ?? 5_000)
    fenceStart = fenced.fenceStart
    const instances = fenced.instances
    await fromAdmin.query(`ALTER DATABASE ${pgId(m.fromLocation)} SET default_transaction_read_only = on`)
    await terminateClients(ctx, fromAdmin, m.fromLocation)
    const fenceMs = () => ctx.now() - fenceStart!
    progress({ step: "fenced", ...copiedSoFar, fenceMs: fenceMs() })
    // Its session on the (now read-only) source, opened while the target catches up.
    source = connect(dbUrl(from, m.fromLocation))
    source.catch(() => undefined)

    // Catch up: the target has replayed everything the source wrote before its door closed.
    const last = String((await fromAdmin.query(`SELECT pg_current_wal_lsn()::text AS l`))[0]!.l)
    await waitFor(ctx, "the target's catch-up", name, options.catchUpTimeout ?? 30_000, async () => {
      const { rows } = await target.query(
        `SELECT (latest_end_lsn IS NOT NULL AND latest_end_lsn >= $2::pg_lsn) AS ok FROM pg_stat_subscription WHERE subname = $1`,
        [repl, last]
      )
      return rows.some((r) => r.ok === true)
    })
    // Sequences are not replicated: without this the first insert on the target is a unique-key error.
    const src = await source
    try {
      const seqs = await src.query(
        `SELECT format('%I.%I', schemaname, sequencename) AS s, last_value::text AS v FROM pg_sequences WHERE last_value IS NOT NULL`
      )
      if (seqs.rows.length > 0) {
        // One round trip for all of them.
        await target.query(
          `SELECT setval(s::regclass, v::bigint, true) FROM unnest($1::text[], $2::text[]) AS x(s, v)`,
          [seqs.rows.map((r) => r.s), seqs.rows.map((r) => r.v)]
        )
      }
      for (const table of await tablesOf(src)) {
        const [a, b] = await Promise.all([
          src.query(`SELECT count(*)::bigint AS n FROM ${table}`),
          target.query(`SELECT count(*)::bigint AS n FROM ${table}`)
        ])
        if (String(a.rows[0]!.n) !== String(b.rows[0]!.n)) {
          throw refused(name, `table ${table} has ${a.rows[0]!.n} rows on the source and ${b.rows[0]!.n} on the target after the catch-up`)
        }
      }
    } finally {
      await src.end().catch(() => undefined)
    }
    progress({ step: "caught-up", ...copiedSoFar, lagBytes: 0, fenceMs: fenceMs() })
    // A snapshot of the target as it is inside the fence: the checksum after the switch is taken in it.
    await snapshot.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`)
    await snapshot.query(`SELECT 1`)

    // The switch: the row points at the target, active; the source is kept, read-only, as `source`.
    const switched = await switchRow(ctx, name, to, m.toLocation, from, m.fromLocation)
    const fence = fenceMs()
    const copied = await measure(fromAdmin, target, repl)
    progress({ step: "switched", ...copied, lagBytes: 0, fenceMs: fence })
    // Switched: the tenant lives on the target now. Its replication objects are dropped, waiting for a server that
    // does not answer for a moment; past that, --resume or the lease drops them.
    const cleanup = await patiently(ctx, () => finish(ctx, { ...m, step: "switched" }))
    if (cleanup !== undefined) {
      throw new CatalogError({
        operation: "move",
        tenant: name,
        reason: `the move switched: '${name}' lives on server '${to.name}' now, but dropping its replication objects failed ` +
          `(${errorSummary(cleanup)}): \`flexidb tenants move ${name} --resume\` finishes it, as an open catalog's move lease does`,
        cause: cleanup
      })
    }

    // The full checksum: every table of the source (read-only) against the target's snapshot from inside the fence.
    await using(dbUrl(from, m.fromLocation), async (src) => {
      for (const table of await tablesOf(src)) {
        const [a, b] = await Promise.all([src.query(checksumSql(table)), snapshot!.query(checksumSql(table))])
        if (a.rows[0]!.h !== b.rows[0]!.h || String(a.rows[0]!.n) !== String(b.rows[0]!.n)) {
          throw refused(
            name,
            `table ${table} differs between the source and the target after the switch: the source is kept (read-only) ` +
              `on server '${from.name}'; do not remove it, and move the tenant back to it`
          )
        }
      }
    })
    await snapshot.query("COMMIT").catch(() => undefined)
    await forget(ctx, name)
    progress({ step: "verified", ...copied, lagBytes: 0, fenceMs: fence })
    return {
      row: switched,
      rows: copied.rows,
      bytes: copied.bytes,
      copyMs: fenceStart - started,
      fenceMs: fence,
      checksum: "equal",
      instances
    }
  } catch (e) {
    await snapshot?.end().catch(() => undefined)
    snapshot = undefined
    await source?.then((c) => c.end()).catch(() => undefined)
    await target.end().catch(() => undefined)
    return undoUnlessSwitched(ctx, name, (now) => undo(ctx, now), e)
  } finally {
    await snapshot?.end().catch(() => undefined)
    await target.end().catch(() => undefined)
  }
}

/** `move(name, { server })`: moves an active PostgreSQL database tenant to `server`. */
export const move = async (ctx: MoveContext, name: string, options: MoveOptions): Promise<MoveReport> => {
  const to = ctx.serverOf(options.server)
  if (to instanceof InvalidArgumentError) throw to
  const held = await lock(ctx, name)
  try {
    if (await recorded(ctx, name) !== undefined) {
      throw refused(name, "a move of this tenant was left unfinished: `flexidb tenants move NAME --resume` finishes it, `--abort` undoes it")
    }
    return await run({ ...ctx, held: held.held }, await rowOf(ctx, name), to, options)
  } finally {
    await held.release()
  }
}

/** What `resume` / `abort` did. */
export interface MoveRecovery {
  readonly outcome: "none" | "finished" | "aborted"
  readonly row: Row | undefined
  readonly message: string
  readonly report?: MoveReport | undefined
}

/** Finishes a move a dead mover left: before the switch it is undone and run again; after it, cleaned up. */
export const resume = async (ctx: MoveContext, name: string, onProgress?: MoveOptions["onProgress"]): Promise<MoveRecovery> => {
  const held = await lock(ctx, name)
  try {
    const m = await recorded(ctx, name)
    if (m === undefined) return { outcome: "none", row: await rowOf(ctx, name).catch(() => undefined), message: `no move of '${name}' is recorded: nothing to resume` }
    if (m.step === "switched") {
      await finish(ctx, m)
      await ctx.pool.query(`DELETE FROM flexidb.moves WHERE name = $1`, [name])
      return { outcome: "finished", row: await rowOf(ctx, name), message: `the move of '${name}' to '${m.to.name}' was already switched: replication cleaned up (no checksum: the target has taken writes since)` }
    }
    await undo(ctx, m)
    const report = await run({ ...ctx, held: held.held }, await rowOf(ctx, name), m.to, { server: m.to.name, onProgress })
    return { outcome: "finished", row: report.row, report, message: `moved '${name}' to '${m.to.name}' (the copy was started again)` }
  } finally {
    await held.release()
  }
}

/** Returns a tenant whose move was left unfinished to its source, active; refused once the move has switched. */
export const abort = async (ctx: MoveContext, name: string): Promise<MoveRecovery> => {
  const held = await lock(ctx, name)
  try {
    const m = await recorded(ctx, name)
    if (m === undefined) return { outcome: "none", row: await rowOf(ctx, name).catch(() => undefined), message: `no move of '${name}' is recorded: nothing to abort` }
    if (m.step === "switched") {
      throw refused(name, `the move already switched to '${m.to.name}' (writes may have gone there): --resume finishes it; to go back, move it back`)
    }
    const row = await undo(ctx, m)
    return { outcome: "aborted", row, message: `the move of '${name}' was undone: it is active on '${m.from.name}' again` }
  } finally {
    await held.release()
  }
}

/**
 * The lease on a move: a recorded move untouched for `leaseMs` whose mover's lock is free (the mover died with its
 * connection) is undone back to its source — or, once switched, cleaned up. A mover still alive holds its lock, and
 * nothing happens. Returns the names it settled.
 */
export const expire = async (ctx: MoveContext, leaseMs: number): Promise<ReadonlyArray<string>> => {
  const { rows } = await ctx.pool.query(
    `SELECT name FROM flexidb.moves WHERE updated_at < now() - make_interval(secs => $1)`,
    [leaseMs / 1000]
  )
  const settled: Array<string> = []
  for (const r of rows) {
    const name = String(r.name)
    const m = await recorded(ctx, name).catch(() => undefined)
    if (m === undefined) continue
    try {
      if (m.step === "switched") await resume(ctx, name)
      else await abort(ctx, name)
      settled.push(name)
    } catch {
      // Its mover is alive (the lock is held), or a server is unreachable: looked at again next time.
    }
  }
  return settled
}

/** Drops the read-only copy a finished move left on the tenant's previous server. */
export const removeSource = async (ctx: MoveContext, name: string): Promise<Row> => {
  const held = await lock(ctx, name)
  try {
    if (await recorded(ctx, name) !== undefined) throw refused(name, "its move is unfinished: --resume it before removing the source")
    const row = await rowOf(ctx, name)
    if (row.source === undefined) return row
    const server = ctx.serverOf(row.source.server)
    if (server instanceof InvalidArgumentError) throw server
    if (server.engine === "sqlite") {
      await engines.drop(undefined, { name, server, kind: "file", location: row.source.location })
    } else if (server.engine === "mysql") {
      await engines.drop((await ctx.adminOf(server))!, { name, server, kind: "database", location: row.source.location })
    } else {
      const admin = (await ctx.adminOf(server))!
      await admin.query(`DROP DATABASE IF EXISTS ${pgId(row.source.location)} WITH (FORCE)`)
    }
    const { rows } = await ctx.pool.query(
      `UPDATE flexidb.tenants SET source_server = NULL, source_location = NULL, updated_at = now() WHERE name = $1 RETURNING ${columns}`,
      [name]
    )
    return toRow(rows[0]!)
  } finally {
    await held.release()
  }
}
