/**
 * Moving a SQLite file tenant between `file:` servers: better-sqlite3's online backup API, then the rest under the
 * fence from the parked source.
 */
import { createHash } from "node:crypto"
import { existsSync } from "node:fs"
import { rm, stat } from "node:fs/promises"
import { join } from "node:path"
import { DuplicateDatabaseError } from "../../Errors.js"
import { loadSqlite } from "./drivers.js"
import * as engines from "./engines.js"
import type { MoveContext, MoveOptions, MoveReport, Recorded } from "./move-common.js"
import { enterFence, finishCopied, record, refused, settleBack, undoUnlessSwitched } from "./move-common.js"
import type { Server } from "./servers.js"
import { folderOf } from "./servers.js"
import type { Row } from "./store.js"

const removeFiles = (file: string) => Promise.all([file, `${file}-wal`, `${file}-shm`].map((f) => rm(f, { force: true })))

/** Undoes a file move: the target's copy removed, the source unparked, the row active there. */
export const undoFile = async (ctx: MoveContext, m: Recorded): Promise<Row> => {
  await removeFiles(join(folderOf(m.to), m.toLocation))
  await engines.unfence(undefined, { name: m.name, server: m.from, kind: "file", location: m.fromLocation })
  return settleBack(ctx, m)
}

/** Every table's row count and a hash of its rows in rowid order. */
const fileDigest = (db: any): Map<string, { n: number; h: string }> => {
  const out = new Map<string, { n: number; h: string }>()
  const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all()
  for (const { name } of tables as Array<{ name: string }>) {
    const hash = createHash("md5")
    let n = 0
    for (const r of db.prepare(`SELECT * FROM "${name.replace(/"/g, '""')}"`).iterate()) {
      hash.update(JSON.stringify(r))
      n++
    }
    out.set(name, { n, h: hash.digest("hex") })
  }
  return out
}

/**
 * A SQLite file tenant: the online backup API copies the live file to the target folder; under the fence the file is
 * parked (renamed aside: nobody can write it, a connection opened before included) and copied again, whole, from the
 * parked file — the window grows with the file's size. The parked file stays as the move's source.
 */
export const runFile = async (ctx: MoveContext, row: Row, from: Server, to: Server, options: MoveOptions): Promise<MoveReport> => {
  const name = row.name
  const progress = options.onProgress ?? (() => undefined)
  const sourceFile = join(folderOf(from), row.location)
  const targetFile = join(folderOf(to), row.location)
  if (row.source !== undefined) {
    if (row.source.server !== to.name) {
      throw refused(name, `its previous copy on server '${row.source.server}' is still kept: remove it first (remove(name, { source: true }))`)
    }
    await engines.drop(undefined, { name, server: to, kind: "file", location: row.source.location })
    await ctx.pool.query(`UPDATE flexidb.tenants SET source_server = NULL, source_location = NULL WHERE name = $1`, [name])
  }
  const Sqlite = await loadSqlite(`server '${to.name}'`)
  if (existsSync(targetFile) || existsSync(`${targetFile}.parked`)) throw new DuplicateDatabaseError({ database: name })
  const m: Recorded = { name, from, fromLocation: row.location, to, toLocation: row.location, step: "copying" }
  await record(ctx, m, row.epoch)
  const started = ctx.now()
  const backup = async (file: string) => {
    const db = new Sqlite(file, { fileMustExist: true })
    // SQLite restarts an online backup whenever another connection writes the source between two steps: a tenant
    // written all the time never finishes in small steps (a 50 MB file with 2 writers did not in 12 minutes). After
    // the first restart the rest is copied in one step (writers wait for it, as they wait for any long read).
    let remaining = Number.POSITIVE_INFINITY
    let restarted = false
    try {
      await db.backup(targetFile, {
        progress: (p: { totalPages: number; remainingPages: number }) => {
          progress({ step: "copying", rows: 0, bytes: (p.totalPages - p.remainingPages) * 4096, lagBytes: 0, fenceMs: 0 })
          if (p.remainingPages > remaining) restarted = true
          remaining = p.remainingPages
          return restarted ? Math.max(1024, p.totalPages) : 1024
        }
      })
    } finally {
      db.close()
    }
  }
  try {
    progress({ step: "schema", rows: 0, bytes: 0, lagBytes: 0, fenceMs: 0 })
    await backup(sourceFile)
    const { fenceStart, instances } = await enterFence(ctx, name, from, options.moveTimeout ?? 5_000)
    const fenceMs = () => ctx.now() - fenceStart
    await engines.fence(undefined, { name, server: from, kind: "file", location: row.location }, ctx.pause)
    progress({ step: "fenced", rows: 0, bytes: 0, lagBytes: 0, fenceMs: fenceMs() })
    // The rest: the parked file, which nobody can write any more, copied again.
    await removeFiles(targetFile)
    await backup(`${sourceFile}.parked`)
    const source = new Sqlite(`${sourceFile}.parked`, { readonly: true, fileMustExist: true })
    const target = new Sqlite(targetFile, { readonly: true, fileMustExist: true })
    let rows = 0
    try {
      const a = fileDigest(source)
      const b = fileDigest(target)
      for (const [table, d] of a) {
        const t = b.get(table)
        if (t === undefined || t.n !== d.n || t.h !== d.h) {
          throw refused(name, `table ${table} differs between the source and its copy: the move was undone`)
        }
        rows += d.n
      }
    } finally {
      source.close()
      target.close()
    }
    const { size } = await stat(targetFile)
    return finishCopied(
      ctx,
      name,
      { from, fromLocation: m.fromLocation, to, toLocation: m.toLocation },
      { rows, bytes: size },
      { started, fenceStart, instances },
      progress
    )
  } catch (e) {
    return undoUnlessSwitched(ctx, name, (m) => undoFile(ctx, m), e)
  }
}
