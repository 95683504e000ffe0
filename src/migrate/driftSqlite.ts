/**
 * SQLite's side of `fleetDrift`: a file's schema read from `sqlite_master` and the table pragmas, in the shape the
 * PostgreSQL catalog reader gives, so one comparison serves both.
 *
 * @since 0.2.0
 */
import type { Snapshot } from "./drift.js"

/** The SQLite file a `file:` URL names. */
export const sqlitePath = (url: string) => url.replace(/^file:(\/\/)?/, "").replace(/\?.*$/, "")

/** Tables (but Prisma's), columns (declared type, NOT NULL, default), indexes and foreign keys of one SQLite file. */
export const sqliteSnapshot = async (file: string): Promise<Snapshot> => {
  const Sqlite = (await import("better-sqlite3")).default
  const db = new Sqlite(file, { readonly: true, fileMustExist: true })
  try {
    const out: Snapshot = new Map()
    const tables = db.prepare(
      `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> '_prisma_migrations'`
    ).all() as Array<{ name: string }>
    for (const { name } of tables) {
      const columns = new Map(
        (db.prepare(`SELECT name, type, "notnull" AS nn, dflt_value AS def FROM pragma_table_info(?)`).all(name) as Array<
          { name: string; type: string; nn: number; def: string | null }
        >).map((c) => [c.name, { type: c.type.toLowerCase(), notNull: c.nn === 1, default: c.def }])
      )
      const indexes = new Map<string, string>()
      for (const i of db.prepare(`SELECT name, "unique" AS u, origin FROM pragma_index_list(?)`).all(name) as Array<{ name: string; u: number; origin: string }>) {
        const cols = (db.prepare(`SELECT name FROM pragma_index_info(?) ORDER BY seqno`).all(i.name) as Array<{ name: string | null }>)
          .map((c) => c.name ?? "<expression>")
        // Automatic indexes (PRIMARY KEY, UNIQUE constraints) are named by SQLite: keyed by what they cover.
        const key = i.origin === "c" ? i.name : `${i.origin === "pk" ? "primary key" : "unique"} (${cols.join(", ")})`
        indexes.set(key, `${i.u === 1 ? "UNIQUE " : ""}(${cols.join(", ")})`)
      }
      const fks = new Map<number, { table: string; from: Array<string>; to: Array<string>; upd: string; del: string }>()
      for (const f of db.prepare(`SELECT id, "table" AS t, "from" AS f, "to" AS o, on_update AS u, on_delete AS d FROM pragma_foreign_key_list(?) ORDER BY id, seq`).all(name) as Array<
        { id: number; t: string; f: string; o: string | null; u: string; d: string }
      >) {
        const fk = fks.get(f.id) ?? { table: f.t, from: [], to: [], upd: f.u, del: f.d }
        fk.from.push(f.f)
        fk.to.push(f.o ?? "")
        fks.set(f.id, fk)
      }
      // SQLite's foreign keys have no names: each is known by what it says.
      const foreignKeys = new Map<string, string>()
      for (const fk of fks.values()) {
        const def = `FOREIGN KEY (${fk.from.join(", ")}) REFERENCES ${fk.table}(${fk.to.join(", ")}) ON UPDATE ${fk.upd} ON DELETE ${fk.del}`
        foreignKeys.set(def, def)
      }
      out.set(name, { columns, indexes, foreignKeys })
    }
    return out
  } finally {
    db.close()
  }
}
