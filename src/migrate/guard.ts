/**
 * The destructive-change guard: each migration's SQL read by a real parser for its dialect — PostgreSQL's own
 * (libpg-query), SQLite's (sql-parser-cst), MySQL/MariaDB's (node-sql-parser) — never by regular expressions, so
 * comments and string literals cannot trigger it and `CREATE` never does.
 *
 * @since 0.2.0
 */
import { readdir, readFile } from "node:fs/promises"
import { join } from "node:path"
import { MigrationError, type Provider, statements } from "../migrate.js"

/** @since 0.2.0 */
export type GuardKind =
  | "drop-table"
  | "drop-column"
  | "alter-type"
  | "set-not-null"
  | "rename"
  | "truncate"
  | "delete-without-where"
  | "update-without-where"
  | "unparseable"

/**
 * One destructive statement: where it is (`file` relative to the migrations folder, 1-based `line`), the statement,
 * what it does and how to do it as expand/contract instead.
 *
 * @since 0.2.0
 */
export interface GuardFinding {
  readonly file: string
  readonly line: number
  readonly statement: string
  readonly kind: GuardKind
  /** The table (and column) it is about, when known. */
  readonly target?: string | undefined
  readonly advice: string
}

const advice: Record<GuardKind, string> = {
  "drop-table": "expand/contract: first ship code that no longer reads or writes the table to every tenant, then " +
    "drop it in a later migration (after a backup)",
  "drop-column": "expand/contract: first ship code that no longer reads or writes the column to every tenant, " +
    "then drop it in a later migration",
  "alter-type": "expand/contract: add a new column of the new type, write both, backfill in batches, switch " +
    "reads, then drop the old column in a later migration",
  "set-not-null": "expand/contract: give the column a DEFAULT and backfill its NULLs in batches first (PostgreSQL: " +
    "a CHECK (col IS NOT NULL) NOT VALID constraint, VALIDATE it), then SET NOT NULL in a later migration",
  "rename": "expand/contract: add the new table or column, write both, backfill, switch reads, then drop the old " +
    "name in a later migration (index and constraint renames are harmless and not reported)",
  "truncate": "remove rows in a batched data job, not in a schema migration that runs on every tenant",
  "delete-without-where": "add a WHERE, or run the data change as a batched job outside the schema migration",
  "update-without-where": "add a WHERE, or run the backfill as a batched job outside the schema migration",
  "unparseable": "the guard's parser cannot read this statement, so it cannot vouch for it: read it yourself and " +
    "deploy with allowDestructive (--allow-destructive) if it is safe"
}

interface Raw {
  readonly offset: number
  readonly text: string
  readonly kind: GuardKind
  readonly target?: string | undefined
}

/** A column as earlier migrations declared it. */
interface ColumnInfo {
  readonly type: string
  readonly notNull?: boolean | undefined
  /** MySQL ENUM's values. */
  readonly values?: ReadonlyArray<string> | undefined
}

/**
 * What earlier migrations built: table → column → its declaration, to judge Prisma's SQLite table redefinitions and
 * MySQL's MODIFY/CHANGE (which Prisma writes for any change to a column, harmless ones included).
 */
type Model = Map<string, Map<string, ColumnInfo>>

// -----------------------------------------------------------------------------------------------------------------
// PostgreSQL: libpg-query

const checkPostgres = async (sql: string): Promise<Array<Raw>> => {
  const { parse } = await import("libpg-query")
  let tree: any
  try {
    tree = await parse(sql)
  } catch {
    // Find the statements it cannot read, and check the others.
    const out: Array<Raw> = []
    for (const { offset, text } of located(sql)) {
      try {
        out.push(...pgStatements(await parse(text), text, offset))
      } catch {
        out.push({ offset, text, kind: "unparseable" })
      }
    }
    return out
  }
  return pgStatements(tree, sql, 0)
}

const pgStatements = (tree: any, sql: string, base: number): Array<Raw> => {
  const bytes = Buffer.from(sql, "utf8")
  const out: Array<Raw> = []
  const added = new Set<string>()
  const defaulted = new Set<string>()
  for (const raw of tree.stmts ?? []) {
    const start = raw.stmt_location ?? 0
    const len = raw.stmt_len ?? bytes.length - start
    const text = bytes.subarray(start, start + len).toString("utf8")
    const offset = base + bytes.subarray(0, start).toString("utf8").length
    const push = (kind: GuardKind, target?: string) => out.push({ offset, text, kind, target })
    const [type, node] = Object.entries(raw.stmt ?? {})[0] ?? []
    const n = node as any
    const table = n?.relation?.relname as string | undefined
    switch (type) {
      case "DropStmt":
        if (n.removeType === "OBJECT_TABLE") {
          for (const o of n.objects ?? []) push("drop-table", (o.List?.items ?? []).map((i: any) => i.String?.sval).join("."))
        }
        break
      case "TruncateStmt":
        push("truncate", (n.relations ?? []).map((r: any) => r.RangeVar?.relname).join(", "))
        break
      case "DeleteStmt":
        if (n.whereClause === undefined) push("delete-without-where", table)
        break
      case "UpdateStmt":
        if (n.whereClause === undefined) push("update-without-where", table)
        break
      case "RenameStmt":
        if (n.renameType === "OBJECT_TABLE") push("rename", table)
        else if (n.renameType === "OBJECT_COLUMN") push("rename", `${table}.${n.subname}`)
        break
      case "CreateStmt":
        for (const e of n.tableElts ?? []) if (e.ColumnDef) added.add(`${table}.${e.ColumnDef.colname}`)
        break
      case "AlterTableStmt":
        // A default given anywhere in the statement counts (Prisma writes SET NOT NULL, SET DEFAULT in that order).
        for (const c of n.cmds ?? []) {
          const cmd = c.AlterTableCmd ?? {}
          if (cmd.subtype === "AT_ColumnDefault" && cmd.def !== undefined) defaulted.add(`${table}.${cmd.name}`)
        }
        for (const c of n.cmds ?? []) {
          const cmd = c.AlterTableCmd ?? {}
          const column = `${table}.${cmd.name}`
          if (cmd.subtype === "AT_AddColumn") {
            const def = cmd.def?.ColumnDef
            added.add(`${table}.${def?.colname}`)
          } else if (cmd.subtype === "AT_DropColumn") push("drop-column", column)
          else if (cmd.subtype === "AT_AlterColumnType") push("alter-type", column)
          else if (cmd.subtype === "AT_ColumnDefault" && cmd.def !== undefined) defaulted.add(column)
          else if (cmd.subtype === "AT_SetNotNull" && !added.has(column) && !defaulted.has(column)) {
            push("set-not-null", column)
          }
        }
        break
    }
  }
  return out
}

// -----------------------------------------------------------------------------------------------------------------
// SQLite: sql-parser-cst

const sqliteParse = async (sql: string) => {
  const { parse } = await import("sql-parser-cst")
  return parse(sql, { dialect: "sqlite", includeRange: true }).statements as Array<any>
}

const name = (node: any): string => node?.name ?? node?.text ?? ""

const checkSqlite = async (sql: string, model: Model): Promise<Array<Raw>> => {
  // src: what was parsed (the script, or one statement of it), which the nodes' ranges index.
  let parsed: Array<{ node: any; offset: number; text: string; src: string }>
  const out: Array<Raw> = []
  try {
    parsed = (await sqliteParse(sql)).filter((s) => s.type !== "empty").map((s) => ({
      node: s,
      offset: s.range[0],
      text: sql.slice(s.range[0], s.range[1]),
      src: sql
    }))
  } catch {
    parsed = []
    for (const { offset, text } of located(sql)) {
      try {
        for (const s of await sqliteParse(text)) {
          if (s.type !== "empty") parsed.push({ node: s, offset: offset + s.range[0], text: text.slice(s.range[0], s.range[1]), src: text })
        }
      } catch {
        out.push({ offset, text, kind: "unparseable" })
      }
    }
  }
  const nodes = parsed.map((p) => p.node)
  parsed.forEach(({ node: s, offset, text, src }, i) => {
    const push = (kind: GuardKind, target?: string) => out.push({ offset, text, kind, target })
    switch (s.type) {
      case "create_table_stmt": {
        const columns = new Map<string, ColumnInfo>()
        for (const item of s.columns?.expr?.items ?? []) {
          if (item.type === "column_definition") columns.set(name(item.name), { type: typeText(src, item.dataType) })
        }
        model.set(name(s.name), columns)
        break
      }
      case "drop_table_stmt":
        for (const t of s.tables?.items ?? []) {
          const table = name(t)
          const copy = redefinition(nodes, i, table)
          if (copy === undefined) push("drop-table", table)
          else {
            const before = model.get(table)
            const after = model.get(copy.into)
            if (before === undefined) push("drop-table", table)
            else {
              for (const [column, type] of before) {
                if (!copy.columns.includes(column)) push("drop-column", `${table}.${column}`)
                else if (after?.has(column) === true && after.get(column)!.type.toLowerCase() !== type.type.toLowerCase()) {
                  push("alter-type", `${table}.${column}`)
                }
              }
            }
          }
          model.delete(table)
        }
        break
      case "alter_table_stmt": {
        const table = name(s.table)
        for (const a of s.actions?.items ?? []) {
          if (a.type === "alter_action_drop_column") {
            push("drop-column", `${table}.${name(a.column)}`)
            model.get(table)?.delete(name(a.column))
          } else if (a.type === "alter_action_rename_column") {
            push("rename", `${table}.${name(a.oldName)}`)
            const cols = model.get(table)
            if (cols?.has(name(a.oldName))) {
              cols.set(name(a.newName), cols.get(name(a.oldName))!)
              cols.delete(name(a.oldName))
            }
          } else if (a.type === "alter_action_rename" || a.type === "alter_action_rename_table") {
            const to = name(a.newName)
            // Prisma's redefinition ends by renaming its copy to the dropped table's name: harmless.
            if (!(to === table.replace(/^new_/, "") && table.startsWith("new_"))) push("rename", table)
            const cols = model.get(table)
            model.delete(table)
            if (cols !== undefined) model.set(to, cols)
          } else if (a.type === "alter_action_add_column") {
            model.get(table)?.set(name(a.column?.name), { type: typeText(src, a.column?.dataType) })
          }
        }
        break
      }
      case "delete_stmt":
        if (!s.clauses.some((c: any) => c.type === "where_clause")) push("delete-without-where", name(s.clauses[0]?.tables?.items?.[0]))
        break
      case "update_stmt":
        if (!s.clauses.some((c: any) => c.type === "where_clause")) push("update-without-where", name(s.clauses[0]?.tables?.items?.[0]))
        break
    }
  })
  return out
}

const typeText = (src: string, dataType: any): string =>
  dataType?.range === undefined ? "" : src.slice(dataType.range[0], dataType.range[1])

/**
 * Prisma's SQLite redefinition around `DROP TABLE "X"` at index i: an earlier `INSERT INTO "new_X" (cols) SELECT …
 * FROM "X"` and a later `ALTER TABLE "new_X" RENAME TO "X"`. Answers the copy's table and the columns copied.
 */
const redefinition = (nodes: Array<any>, i: number, table: string) => {
  const into = `new_${table}`
  const renamed = nodes.slice(i + 1).some((s) =>
    s.type === "alter_table_stmt" && name(s.table) === into &&
    (s.actions?.items ?? []).some((a: any) => (a.type === "alter_action_rename" || a.type === "alter_action_rename_table") && name(a.newName) === table)
  )
  if (!renamed) return undefined
  for (const s of nodes.slice(0, i)) {
    if (s.type !== "insert_stmt") continue
    const insert = s.clauses?.find((c: any) => c.type === "insert_clause")
    const select = s.clauses?.find((c: any) => c.type === "select_stmt")
    const from = select?.clauses?.find((c: any) => c.type === "from_clause")
    if (name(insert?.table) !== into || name(from?.expr) !== table) continue
    const selected = select.clauses.find((c: any) => c.type === "select_clause")?.columns?.items ?? []
    return { into, columns: selected.map((c: any) => name(c)) as Array<string> }
  }
  return undefined
}

// -----------------------------------------------------------------------------------------------------------------
// MySQL / MariaDB: node-sql-parser

/** A MySQL column definition from node-sql-parser's AST. */
const mysqlColumn = (d: any): ColumnInfo => {
  const def = d?.definition ?? {}
  const size = def.length === undefined ? "" : `(${def.length}${def.scale === undefined ? "" : `,${def.scale}`})`
  return {
    type: `${String(def.dataType ?? "").toUpperCase()}${size}`,
    notNull: d?.nullable?.type === "not null",
    values: def.dataType?.toUpperCase?.() === "ENUM" ? (def.expr?.value ?? []).map((v: any) => String(v.value)) : undefined
  }
}

/** What a MODIFY/CHANGE from `before` to `after` loses, if anything: a narrower type, or NOT NULL with no default. */
const mysqlChange = (before: ColumnInfo | undefined, after: ColumnInfo, hasDefault: boolean): GuardKind | undefined => {
  if (before === undefined) return "alter-type"
  if (before.type !== after.type) {
    const widerEnum = before.values !== undefined && after.values !== undefined && before.values.every((v) => after.values!.includes(v))
    const longer = /^(VAR)?CHAR|^VARBINARY/.test(before.type) && before.type.replace(/\(.*$/, "") === after.type.replace(/\(.*$/, "") &&
      Number(/\((\d+)\)/.exec(after.type)?.[1]) >= Number(/\((\d+)\)/.exec(before.type)?.[1])
    if (!widerEnum && !longer) return "alter-type"
  } else if (before.values !== undefined && after.values !== undefined && !before.values.every((v) => after.values!.includes(v))) {
    return "alter-type"
  }
  if (before.notNull !== true && after.notNull === true && !hasDefault) return "set-not-null"
  return undefined
}

/**
 * MySQL's tokens of one statement: identifiers (bare or backquoted, unquoted), `.` and `,`; comments and spaces
 * skipped. Undefined at anything else (a string, an operator): such a statement is not one this reads.
 */
const mysqlTokens = (text: string): Array<{ readonly word: string; readonly quoted: boolean }> | undefined => {
  const out: Array<{ word: string; quoted: boolean }> = []
  let i = 0
  while (i < text.length) {
    const ch = text[i]!
    if (/\s/.test(ch) || ch === ";") i++
    else if (text.startsWith("-- ", i) || text.startsWith("--\n", i) || ch === "#") i = text.includes("\n", i) ? text.indexOf("\n", i) + 1 : text.length
    else if (text.startsWith("/*", i)) {
      const end = text.indexOf("*/", i + 2)
      if (end === -1) return undefined
      i = end + 2
    } else if (ch === "`") {
      let word = ""
      let j = i + 1
      for (;;) {
        if (j >= text.length) return undefined
        if (text[j] === "`" && text[j + 1] === "`") (word += "`"), (j += 2)
        else if (text[j] === "`") break
        else word += text[j++]
      }
      out.push({ word, quoted: true })
      i = j + 1
    } else if (/[A-Za-z0-9_$]/.test(ch)) {
      let j = i
      while (j < text.length && /[A-Za-z0-9_$]/.test(text[j]!)) j++
      out.push({ word: text.slice(i, j), quoted: false })
      i = j
    } else if (ch === "." || ch === ",") {
      out.push({ word: ch, quoted: false })
      i++
    } else return undefined
  }
  return out
}

/**
 * `ALTER TABLE t RENAME INDEX|KEY a TO b[, RENAME INDEX …]`, which node-sql-parser cannot read (Prisma writes it for
 * a renamed index, harmless): its table when the statement is exactly that, else undefined.
 */
export const mysqlIndexRename = (text: string): string | undefined => {
  const t = mysqlTokens(text)
  if (t === undefined) return undefined
  const keyword = (i: number, ...words: Array<string>) => t[i] !== undefined && !t[i]!.quoted && words.includes(t[i]!.word.toUpperCase())
  const ident = (i: number) => t[i] !== undefined && (t[i]!.quoted || /^[A-Za-z0-9_$]+$/.test(t[i]!.word))
  if (!keyword(0, "ALTER") || !keyword(1, "TABLE") || !ident(2)) return undefined
  let table = t[2]!.word
  let i = 3
  if (t[i]?.word === "." && !t[i]!.quoted && ident(i + 1)) (table = t[i + 1]!.word), (i += 2)
  for (;;) {
    if (!keyword(i, "RENAME") || !keyword(i + 1, "INDEX", "KEY") || !ident(i + 2) || !keyword(i + 3, "TO") || !ident(i + 4)) return undefined
    i += 5
    if (i === t.length) return table
    if (t[i]?.word !== "," || t[i]!.quoted) return undefined
    i++
  }
}

const checkMysql = async (sql: string, model: Model): Promise<Array<Raw>> => {
  const { Parser } = (await import("node-sql-parser")).default ?? (await import("node-sql-parser"))
  const parser = new Parser()
  const out: Array<Raw> = []
  for (const { offset, text } of located(sql)) {
    let asts: Array<any>
    try {
      const ast = parser.astify(text, { database: "mysql" })
      asts = Array.isArray(ast) ? ast : [ast]
    } catch {
      // An index renamed (Prisma's `RENAME INDEX`) is harmless; anything else the parser cannot read is a finding.
      if (mysqlIndexRename(text) === undefined) out.push({ offset, text, kind: "unparseable" })
      continue
    }
    const push = (kind: GuardKind, target?: string) => out.push({ offset, text, kind, target })
    for (const s of asts) {
      const table = s.table?.[0]?.table as string | undefined
      if (s.type === "create" && s.keyword === "table" && table !== undefined) {
        model.set(table, new Map((s.create_definitions ?? []).filter((d: any) => d.resource === "column").map((d: any) => [d.column?.column, mysqlColumn(d)])))
      } else if (s.type === "drop" && s.keyword === "table") {
        for (const t of s.name ?? []) {
          push("drop-table", t.table)
          model.delete(t.table)
        }
      } else if (s.type === "truncate") for (const t of s.name ?? []) push("truncate", t.table)
      else if (s.type === "rename") push("rename", s.table?.[0]?.[0]?.table ?? table)
      else if (s.type === "delete" && s.where == null) push("delete-without-where", table ?? s.from?.[0]?.table)
      else if (s.type === "update" && s.where == null) push("update-without-where", table)
      else if (s.type === "alter" && table !== undefined) {
        const columns = model.get(table)
        for (const a of s.expr ?? []) {
          const column = a.old_column?.column ?? a.column?.column
          if (a.action === "add" && a.resource === "column") columns?.set(a.column?.column, mysqlColumn(a))
          else if (a.action === "drop" && a.resource === "column") {
            push("drop-column", `${table}.${column}`)
            columns?.delete(column)
          } else if (a.action === "modify" || a.action === "change") {
            const after = mysqlColumn(a)
            const renamed = a.action === "change" && a.column?.column !== undefined && a.old_column?.column !== undefined &&
              a.column.column !== a.old_column.column
            if (renamed) push("rename", `${table}.${column}`)
            const kind = mysqlChange(columns?.get(column), after, a.default_val != null)
            if (kind !== undefined) push(kind, `${table}.${column}`)
            columns?.delete(column)
            columns?.set(a.column?.column ?? column, after)
          } else if (a.action === "rename" && a.resource === "column") push("rename", `${table}.${column}`)
          else if (a.action === "rename" && a.resource === "table") push("rename", table)
        }
      }
    }
  }
  return out
}

// -----------------------------------------------------------------------------------------------------------------

/** The statements of a script with their offsets (only where a whole-script parse failed, or for MySQL). */
const located = (sql: string): Array<{ offset: number; text: string }> => {
  let cursor = 0
  return statements(sql).map((text) => {
    const offset = sql.indexOf(text, cursor)
    cursor = offset + text.length
    return { offset, text }
  })
}

/** 1-based line of the statement's first character that is neither space nor comment. */
const lineOf = (sql: string, offset: number, text: string) => {
  let i = 0
  for (;;) {
    while (i < text.length && /\s/.test(text[i]!)) i++
    if (text.startsWith("--", i)) i = text.includes("\n", i) ? text.indexOf("\n", i) : text.length
    else if (text.startsWith("/*", i)) i = text.includes("*/", i) ? text.indexOf("*/", i) + 2 : text.length
    else break
  }
  return sql.slice(0, offset + i).split("\n").length
}

const clean = (text: string) =>
  text.replace(/^(\s*(--[^\n]*\n|\/\*[\s\S]*?\*\/))*/, "").trim().replace(/;$/, "")

/**
 * The destructive statements of one migration script. `model` carries what earlier migrations created (SQLite:
 * for Prisma's table redefinitions; MySQL: for MODIFY/CHANGE); pass the same map across a folder's scripts, in order.
 *
 * @since 0.2.0
 */
export const checkScript = async (
  sql: string,
  provider: Provider,
  file = "migration.sql",
  model: Model = new Map()
): Promise<Array<GuardFinding>> => {
  const raw = provider === "postgresql"
    ? await checkPostgres(sql)
    : provider === "sqlite"
    ? await checkSqlite(sql, model)
    : await checkMysql(sql, model)
  return raw.map((r) => ({
    file,
    line: lineOf(sql, r.offset, r.text),
    statement: clean(r.text),
    kind: r.kind,
    ...(r.target !== undefined && { target: r.target }),
    advice: advice[r.kind]
  }))
}

/** @since 0.2.0 */
export interface CheckMigrationsOptions {
  /** The migrations folder (`<timestamp>_<name>/migration.sql`). */
  readonly migrations: string
  /** The dialect; default: `migration_lock.toml`'s provider. */
  readonly provider?: Provider | undefined
  /** The migrations to check, by folder name (those a deploy would apply); default: all of them. */
  readonly pending?: ReadonlyArray<string> | undefined
}

/**
 * Checks the folder's migrations (only `pending` ones, if given) for destructive statements: DROP TABLE, DROP COLUMN,
 * a column type change, SET NOT NULL on an existing column without a default, a table or column RENAME, TRUNCATE,
 * DELETE/UPDATE without WHERE, and any statement the parser cannot read. Resolves the findings (empty: safe). Fails
 * with a `MigrationError` when the folder cannot be read or the provider cannot be told.
 *
 * @since 0.2.0
 */
export const checkMigrations = async (options: CheckMigrationsOptions): Promise<Array<GuardFinding>> => {
  let entries
  try {
    entries = await readdir(options.migrations, { withFileTypes: true })
  } catch {
    throw new MigrationError({
      code: "FLEXIDB_MIGRATIONS_FOLDER",
      reason: `cannot read the migrations folder ${options.migrations}: give the folder of <timestamp>_<name>/migration.sql`
    })
  }
  const provider = options.provider ?? await lockProvider(options.migrations)
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort((a, b) => a.localeCompare(b))
  const pending = options.pending === undefined ? undefined : new Set(options.pending)
  const model: Model = new Map()
  const out: Array<GuardFinding> = []
  for (const n of names) {
    const sql = await readFile(join(options.migrations, n, "migration.sql"), "utf8").catch(() => undefined)
    if (sql === undefined) continue
    const findings = await checkScript(sql, provider, `${n}/migration.sql`, model)
    // Applied migrations still feed the model (SQLite), but are not reported.
    if (pending === undefined || pending.has(n)) out.push(...findings)
  }
  return out
}

const lockProvider = async (folder: string): Promise<Provider> => {
  const lock = await readFile(join(folder, "migration_lock.toml"), "utf8").catch(() => "")
  const raw = /provider\s*=\s*"?([a-z]+)"?/.exec(lock)?.[1]
  if (raw === "postgresql" || raw === "postgres") return "postgresql"
  if (raw === "sqlite") return "sqlite"
  if (raw === "mysql" || raw === "mariadb") return "mysql"
  throw new MigrationError({
    code: "FLEXIDB_MIGRATION_PROVIDER",
    reason: `cannot tell the migrations' dialect: ${folder}/migration_lock.toml names no provider; pass provider`
  })
}

/**
 * A one-line-per-finding report of the guard's findings, for refusals and the CLI.
 *
 * @since 0.2.0
 */
export const formatFindings = (findings: ReadonlyArray<GuardFinding>): string =>
  findings.map((f) => `${f.file}:${f.line} ${f.kind}${f.target ? ` (${f.target})` : ""}: ${f.statement.split("\n")[0]}\n  → ${f.advice}`)
    .join("\n")
