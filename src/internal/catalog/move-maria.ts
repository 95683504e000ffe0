/**
 * Moving a MariaDB database tenant between MariaDB servers: a consistent dump while live, then the parked tables
 * copied again under the fence.
 */
import { spawn } from "node:child_process"
import { DuplicateDatabaseError } from "../../Errors.js"
import type { Admin } from "./engines.js"
import * as engines from "./engines.js"
import type { MoveContext, MoveOptions, MoveReport, Recorded } from "./move-common.js"
import { enterFence, finishCopied, pipeInto, record, refused, settleBack, undoUnlessSwitched } from "./move-common.js"
import type { Server } from "./servers.js"
import type { Row } from "./store.js"

/** Undoes a MariaDB move: the target's copy dropped, the source's tables back in place, the row active there. */
export const undoMaria = async (ctx: MoveContext, m: Recorded): Promise<Row> => {
  await engines.drop((await ctx.adminOf(m.to))!, { name: m.name, server: m.to, kind: "database", location: m.toLocation })
  await engines.unfence((await ctx.adminOf(m.from))!, { name: m.name, server: m.from, kind: "database", location: m.fromLocation })
  return settleBack(ctx, m)
}

const myId = (id: string) => `\`${id.replace(/`/g, "``")}\``

/** mariadb-dump of `database` on `from` piped into `mariadb` on `into` at `to`; the password goes through MYSQL_PWD. */
const copyMaria = (from: Server, database: string, to: Server, into: string) => {
  const args = (server: Server) => {
    const u = new URL(server.base)
    return {
      argv: ["-h", u.hostname || "127.0.0.1", "-P", u.port === "" ? "3306" : u.port, "-u", decodeURIComponent(u.username) || "root"],
      env: { ...process.env, MYSQL_PWD: decodeURIComponent(u.password) }
    }
  }
  const f = args(from)
  const t = args(to)
  const dump = spawn(
    "mariadb-dump",
    [...f.argv, "--single-transaction", "--skip-lock-tables", "--no-create-db", "--routines", "--triggers", "--hex-blob", database],
    { env: f.env, stdio: ["ignore", "pipe", "pipe"] }
  )
  const load = spawn("mariadb", [...t.argv, into], { env: t.env, stdio: ["pipe", "ignore", "pipe"] })
  const hint = "put MariaDB's client tools on PATH"
  return pipeInto({ process: dump, name: "mariadb-dump", hint }, { process: load, name: "mariadb", hint })
}

/** Every table's row count and CHECKSUM TABLE in `database`. */
const mariaDigest = async (admin: Admin, database: string) => {
  const out = new Map<string, string>()
  const tables = await admin.query(
    `SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE' ORDER BY 1`,
    [database]
  )
  for (const r of tables) {
    const t = String(r.t)
    const [n] = await admin.query(`SELECT count(*) AS n FROM ${myId(database)}.${myId(t)}`)
    const [c] = await admin.query(`CHECKSUM TABLE ${myId(database)}.${myId(t)} EXTENDED`)
    out.set(t, `${n!.n}/${c!.Checksum}`)
  }
  return out
}

/**
 * A MariaDB database tenant: a consistent dump (`--single-transaction`) loaded on the target while the tenant is live;
 * under the fence the source's tables are parked (`RENAME TABLE` into `<name>__parked`, its sessions killed, as
 * `suspend` does) and copied again, whole, from there — the window grows with the tenant's size; every table's row
 * count and CHECKSUM TABLE are compared before the switch. The parked tables stay as the move's source.
 */
export const runMaria = async (
  ctx: MoveContext,
  row: Row,
  from: Server,
  to: Server,
  fromAdmin: Admin,
  toAdmin: Admin,
  options: MoveOptions
): Promise<MoveReport> => {
  const name = row.name
  const progress = options.onProgress ?? (() => undefined)
  if (row.source !== undefined) {
    if (row.source.server !== to.name) {
      throw refused(name, `its previous copy on server '${row.source.server}' is still kept: remove it first (remove(name, { source: true }))`)
    }
    await engines.drop(toAdmin, { name, server: to, kind: "database", location: row.source.location })
    await ctx.pool.query(`UPDATE flexidb.tenants SET source_server = NULL, source_location = NULL WHERE name = $1`, [name])
  }
  const m: Recorded = { name, from, fromLocation: row.location, to, toLocation: row.location, step: "copying" }
  await record(ctx, m, row.epoch)
  try {
    await toAdmin.query(`CREATE DATABASE ${myId(m.toLocation)}`)
  } catch (e) {
    await ctx.pool.query(`DELETE FROM flexidb.moves WHERE name = $1`, [name])
    if (Number((e as { errno?: unknown }).errno) === 1007) throw new DuplicateDatabaseError({ database: name })
    throw e
  }
  const started = ctx.now()
  try {
    progress({ step: "schema", rows: 0, bytes: 0, lagBytes: 0, fenceMs: 0 })
    await copyMaria(from, m.fromLocation, to, m.toLocation)
    progress({ step: "copying", rows: 0, bytes: 0, lagBytes: 0, fenceMs: 0 })
    const { fenceStart, instances } = await enterFence(ctx, name, from, options.moveTimeout ?? 5_000)
    const fenceMs = () => ctx.now() - fenceStart
    await engines.fence(fromAdmin, { name, server: from, kind: "database", location: m.fromLocation }, ctx.pause)
    progress({ step: "fenced", rows: 0, bytes: 0, lagBytes: 0, fenceMs: fenceMs() })
    // The rest: the parked tables, which nobody can reach any more, copied again.
    await toAdmin.query(`DROP DATABASE ${myId(m.toLocation)}`)
    await toAdmin.query(`CREATE DATABASE ${myId(m.toLocation)}`)
    const parked = `${m.fromLocation}__parked`
    await copyMaria(from, parked, to, m.toLocation)
    const [a, b] = await Promise.all([mariaDigest(fromAdmin, parked), mariaDigest(toAdmin, m.toLocation)])
    let rows = 0
    for (const [table, d] of a) {
      if (b.get(table) !== d) throw refused(name, `table ${table} differs between the source and its copy: the move was undone`)
      rows += Number(d.split("/")[0])
    }
    const size = Number((await toAdmin.query(
      `SELECT coalesce(sum(data_length + index_length), 0) AS bytes FROM information_schema.tables WHERE table_schema = ?`,
      [m.toLocation]
    ))[0]?.bytes ?? 0)
    return finishCopied(
      ctx,
      name,
      { from, fromLocation: m.fromLocation, to, toLocation: m.toLocation },
      { rows, bytes: size },
      { started, fenceStart, instances },
      progress
    )
  } catch (e) {
    return undoUnlessSwitched(ctx, name, (m) => undoMaria(ctx, m), e)
  }
}
