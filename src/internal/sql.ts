/**
 * Raw SQL, classified on the hot path: is it a read (safe on a replica, under `preventWrites`, and to send again
 * after a lost connection), and what is it (`SELECT users`, for spans and metrics, never a value).
 *
 * An allow-list, as Rails' `prevent_writes` has: SELECT without INTO and without a locking clause, SHOW, DESCRIBE,
 * plain EXPLAIN, WITH whose parts are all reads, VALUES, TABLE. Everything else is a write, and several statements
 * are a write if any is. It is a lexer, not a parser: comments, string literals and quoted identifiers are skipped,
 * so a keyword inside them never counts. The client's dialect is not known here, and the dialects lex differently
 * (`\'` ends a PostgreSQL string but not a MySQL one; PostgreSQL nests comments, MySQL and SQLite do not; `#` starts
 * a MySQL comment; `$tag$` quotes in PostgreSQL only): text where they could differ is lexed as each of them, and it
 * is a read only if it is one under all, unless the caller names the dialect (a Prisma client's provider, see
 * `dialectOf`). A misreading errs towards "write".
 *
 * Functions that write are not seen, with one exception: the sequence and lock functions below, which a replica
 * refuses and which must never run twice.
 */

/** How a dialect lexes. */
interface Lexing {
  /** `\` escapes inside '…' and "…" (MySQL, MariaDB). */
  readonly backslash: boolean
  /** `/* /* *\/ *\/` nests (PostgreSQL). */
  readonly nested: boolean
  /** `$tag$…$tag$` quotes and `E'…'` strings (PostgreSQL). */
  readonly postgres: boolean
  /** `#` comments, `--` only before whitespace, `/*! … *\/` run as code (MySQL, MariaDB). */
  readonly mysql: boolean
}

const postgres: Lexing = { backslash: false, nested: true, postgres: true, mysql: false }
const mysql: Lexing = { backslash: true, nested: false, postgres: false, mysql: true }
/** SQLite, and standard SQL. */
const standard: Lexing = { backslash: false, nested: false, postgres: false, mysql: false }

/** A word (keyword or bare identifier), a quoted identifier, or punctuation; literals and comments leave nothing. */
interface Token {
  readonly kind: "word" | "quoted" | "(" | ")" | "." | "other"
  /** The word upper-cased, the quoted identifier's text, or the character. */
  readonly text: string
  /** Parentheses open around it. */
  readonly depth: number
}

type Statement = ReadonlyArray<Token>

const isWordStart = (c: number) =>
  (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c > 127
const isWordPart = (c: number) => isWordStart(c) || (c >= 48 && c <= 57) || c === 36
const isSpace = (c: number) => c === 32 || (c >= 9 && c <= 13)

/** The statements of `sql` as `dialect` reads it; an unterminated literal or comment swallows the rest. */
const lex = (sql: string, dialect: Lexing): Array<Statement> => {
  const statements: Array<Statement> = []
  let current: Array<Token> = []
  let depth = 0
  /** Inside a MySQL `/*! … *\/`: its `*\/` closes nothing but it. */
  let executable = false
  const n = sql.length
  let i = 0
  /** The index after the quote closing the literal opened at `i` with `quote`. */
  const skipQuoted = (start: number, quote: number, backslash: boolean): number => {
    let j = start + 1
    while (j < n) {
      const c = sql.charCodeAt(j)
      if (backslash && c === 92) j += 2
      else if (c === quote) {
        if (sql.charCodeAt(j + 1) === quote) j += 2
        else return j + 1
      } else j++
    }
    return n
  }
  while (i < n) {
    const c = sql.charCodeAt(i)
    const next = sql.charCodeAt(i + 1)
    if (isSpace(c)) {
      i++
    } else if (c === 45 && next === 45 && (!dialect.mysql || i + 2 >= n || isSpace(sql.charCodeAt(i + 2)))) {
      // `--` to the end of the line
      const end = sql.indexOf("\n", i)
      i = end < 0 ? n : end + 1
    } else if (c === 35 && dialect.mysql) {
      const end = sql.indexOf("\n", i)
      i = end < 0 ? n : end + 1
    } else if (c === 47 && next === 42) {
      if (dialect.mysql && sql.charCodeAt(i + 2) === 33) {
        // MySQL runs what is inside `/*!NNNNN … */`: it is code.
        executable = true
        i += 3
        while (i < n && sql.charCodeAt(i) >= 48 && sql.charCodeAt(i) <= 57) i++
        continue
      }
      let level = 1
      i += 2
      while (i < n && level > 0) {
        const d = sql.charCodeAt(i)
        if (d === 42 && sql.charCodeAt(i + 1) === 47) {
          level--
          i += 2
        } else if (dialect.nested && d === 47 && sql.charCodeAt(i + 1) === 42) {
          level++
          i += 2
        } else i++
      }
    } else if (c === 42 && next === 47 && executable) {
      executable = false
      i += 2
    } else if (c === 39) {
      i = skipQuoted(i, 39, dialect.backslash)
    } else if (c === 34) {
      // A string in MySQL, an identifier elsewhere.
      const end = skipQuoted(i, 34, dialect.backslash)
      if (!dialect.mysql) current.push({ kind: "quoted", text: sql.slice(i + 1, end - 1).replace(/""/g, "\""), depth })
      i = end
    } else if (c === 96) {
      const end = skipQuoted(i, 96, false)
      current.push({ kind: "quoted", text: sql.slice(i + 1, end - 1).replace(/``/g, "`"), depth })
      i = end
    } else if (c === 36 && dialect.postgres && (next === 36 || isWordStart(next))) {
      // `$tag$…$tag$`; `$1` is a parameter, and `$a` with no closing `$` a word's part.
      let j = i + 1
      while (j < n && isWordPart(sql.charCodeAt(j)) && sql.charCodeAt(j) !== 36) j++
      if (sql.charCodeAt(j) === 36) {
        const tag = sql.slice(i, j + 1)
        const end = sql.indexOf(tag, j + 1)
        i = end < 0 ? n : end + tag.length
      } else {
        current.push({ kind: "other", text: "$", depth })
        i++
      }
    } else if (isWordStart(c)) {
      let j = i + 1
      while (j < n && isWordPart(sql.charCodeAt(j))) j++
      const after = sql.charCodeAt(j)
      if (after === 39 && j - i === 1) {
        // A prefixed string: E'…' (backslash escapes in PostgreSQL), N'…', X'…', B'…'.
        const prefix = sql.slice(i, j).toUpperCase()
        if (prefix === "E" || prefix === "N" || prefix === "X" || prefix === "B") {
          i = skipQuoted(j, 39, dialect.backslash || (prefix === "E" && dialect.postgres))
          continue
        }
      }
      current.push({ kind: "word", text: sql.slice(i, j).toUpperCase(), depth })
      i = j
    } else if (c === 40) {
      current.push({ kind: "(", text: "(", depth })
      depth++
      i++
    } else if (c === 41) {
      depth = Math.max(0, depth - 1)
      current.push({ kind: ")", text: ")", depth })
      i++
    } else if (c === 59 && depth === 0) {
      if (current.length > 0) statements.push(current)
      current = []
      i++
    } else if (c === 46) {
      current.push({ kind: ".", text: ".", depth })
      i++
    } else {
      current.push({ kind: "other", text: sql[i]!, depth })
      i++
    }
  }
  if (current.length > 0) statements.push(current)
  return statements
}

/** Functions that write or lock even inside a SELECT. */
const writingFunctions = new Set([
  "NEXTVAL",
  "SETVAL",
  "PG_ADVISORY_LOCK",
  "PG_ADVISORY_LOCK_SHARED",
  "PG_ADVISORY_XACT_LOCK",
  "PG_ADVISORY_XACT_LOCK_SHARED",
  "PG_TRY_ADVISORY_LOCK",
  "PG_TRY_ADVISORY_LOCK_SHARED",
  "PG_TRY_ADVISORY_XACT_LOCK",
  "PG_TRY_ADVISORY_XACT_LOCK_SHARED",
  "GET_LOCK",
  "RELEASE_LOCK",
  "RELEASE_ALL_LOCKS"
])

/** Statements that change data, as a data-modifying WITH contains them. */
const dataModifying = new Set(["INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT"])

/** Statement kinds `summarize` names; anything else is `OTHER`. */
const kinds = new Set([
  "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE", "UPSERT", "WITH", "VALUES", "TABLE", "SHOW", "EXPLAIN",
  "DESCRIBE", "DESC", "CREATE", "ALTER", "DROP", "TRUNCATE", "GRANT", "REVOKE", "BEGIN", "START", "COMMIT", "END",
  "ROLLBACK", "SAVEPOINT", "RELEASE", "SET", "RESET", "SHOW", "CALL", "DO", "EXECUTE", "PREPARE", "DEALLOCATE",
  "DECLARE", "FETCH", "CLOSE", "COPY", "LOCK", "UNLOCK", "VACUUM", "ANALYZE", "ANALYSE", "PRAGMA", "USE", "LISTEN",
  "NOTIFY", "UNLISTEN", "REFRESH", "REINDEX", "CLUSTER", "COMMENT", "ATTACH", "DETACH", "LOAD", "OPTIMIZE"
])

/** The first word, past opening parentheses. */
const head = (s: Statement): number => {
  let i = 0
  while (i < s.length && s[i]!.kind === "(") i++
  return i
}

const word = (s: Statement, i: number, text: string) => s[i]?.kind === "word" && s[i]!.text === text

/** A SELECT, VALUES, TABLE or WITH from `from`: no INTO, no locking clause, no writing function, no DML. */
const readsOnly = (s: Statement, from: number): boolean => {
  const withClause = word(s, from, "WITH")
  for (let i = from; i < s.length; i++) {
    const t = s[i]!
    if (t.kind !== "word") continue
    const w = t.text
    if (w === "INTO") return false
    // FOR UPDATE, FOR NO KEY UPDATE, FOR SHARE, FOR KEY SHARE; MySQL's LOCK IN SHARE MODE.
    if (w === "FOR" && (word(s, i + 1, "UPDATE") || word(s, i + 1, "SHARE") || word(s, i + 1, "NO") || word(s, i + 1, "KEY"))) {
      return false
    }
    if (w === "LOCK" && word(s, i + 1, "IN")) return false
    if (writingFunctions.has(w) && s[i + 1]?.kind === "(") return false
    // In a WITH, a statement that changes data starts a part (`AS (DELETE …)`) or is the main statement.
    if (withClause && dataModifying.has(w) && (t.depth === 0 || s[i - 1]?.kind === "(")) return false
  }
  return true
}

/** Where the statement EXPLAIN explains starts, past its options; -1 when there is none. */
const explained = (s: Statement, from: number): number => {
  for (let i = from + 1; i < s.length; i++) {
    const t = s[i]!
    if (t.kind === "word" && t.depth === s[from]!.depth && kinds.has(t.text) && t.text !== "ANALYZE" && t.text !== "ANALYSE") {
      return i
    }
  }
  return -1
}

const statementIsRead = (s: Statement): boolean => {
  const i = head(s)
  const first = s[i]
  if (first === undefined || first.kind !== "word") return false
  switch (first.text) {
    case "SELECT":
    case "WITH":
    case "VALUES":
    case "TABLE":
      return readsOnly(s, i)
    case "SHOW":
    case "DESCRIBE":
    case "DESC":
      return true
    case "EXPLAIN": {
      const inner = explained(s, i)
      let analyze = false
      for (let j = i + 1; j < (inner < 0 ? s.length : inner); j++) {
        if (word(s, j, "ANALYZE") || word(s, j, "ANALYSE")) analyze = true
      }
      // Plain EXPLAIN plans and runs nothing; EXPLAIN ANALYZE runs the statement.
      return !analyze || (inner >= 0 && statementIsRead(s.slice(inner)))
    }
    default:
      return false
  }
}

const isRead = (statements: ReadonlyArray<Statement>) => statements.length > 0 && statements.every(statementIsRead)

/** A name after `i` (`schema.table` kept whole), or undefined. */
const nameAt = (s: Statement, i: number): string | undefined => {
  const parts: Array<string> = []
  while (i < s.length) {
    const t = s[i]!
    if (t.kind !== "word" && t.kind !== "quoted") break
    parts.push(t.kind === "word" ? t.text.toLowerCase() : t.text)
    if (s[i + 1]?.kind !== ".") break
    i += 2
  }
  const name = parts.join(".")
  return name.length === 0 ? undefined : name.length > 128 ? name.slice(0, 128) : name
}

/** Words that may stand between a statement's keyword and its table. */
const skipped = new Set([
  "INTO", "FROM", "ONLY", "IGNORE", "LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "QUICK", "OR", "REPLACE", "ROLLBACK",
  "ABORT", "FAIL", "IF", "NOT", "EXISTS", "TABLE", "INDEX", "VIEW", "SEQUENCE", "SCHEMA", "DATABASE", "UNIQUE",
  "TEMP", "TEMPORARY", "UNLOGGED", "MATERIALIZED", "CONCURRENTLY", "FUNCTION", "TRIGGER", "TYPE", "EXTENSION"
])

const tableAfter = (s: Statement, i: number): string | undefined => {
  while (i < s.length && s[i]!.kind === "word" && skipped.has(s[i]!.text)) i++
  return nameAt(s, i)
}

/** The first table a SELECT reads: the word after its first FROM at the statement's own depth. */
const fromTable = (s: Statement, i: number): string | undefined => {
  const depth = s[i]!.depth
  for (let j = i + 1; j < s.length; j++) {
    const t = s[j]!
    if (t.kind === "word" && t.text === "FROM" && t.depth === depth) return nameAt(s, j + 1)
  }
  return undefined
}

const summarizeStatement = (s: Statement): string => {
  let i = head(s)
  let first = s[i]
  if (first === undefined || first.kind !== "word" || !kinds.has(first.text)) return "OTHER"
  if (first.text === "WITH") {
    // The main statement: the first statement keyword after the parts, at the WITH's own depth.
    const depth = first.depth
    let j = i + 1
    while (j < s.length && !(s[j]!.kind === "word" && s[j]!.depth === depth && kinds.has(s[j]!.text) && s[j]!.text !== "WITH")) j++
    if (j === s.length) return "WITH"
    i = j
    first = s[j]!
  }
  const kind = first.text === "DESC" ? "DESCRIBE" : first.text === "ANALYSE" ? "ANALYZE" : first.text
  let table: string | undefined
  switch (kind) {
    case "SELECT":
      table = fromTable(s, i)
      break
    case "INSERT":
    case "REPLACE":
    case "UPSERT":
    case "MERGE":
    case "UPDATE":
    case "DELETE":
    case "TABLE":
    case "TRUNCATE":
    case "CREATE":
    case "ALTER":
    case "DROP":
    case "DESCRIBE":
    case "COPY":
    case "LOCK":
      table = tableAfter(s, i + 1)
      break
  }
  return table === undefined ? kind : `${kind} ${table}`
}

interface Classified {
  readonly read: boolean
  readonly summary: string
}

/**
 * The SQL dialect of a Prisma client (its provider: `postgresql`, `mysql` for MySQL and MariaDB, `sqlite`), or
 * undefined when the client does not say.
 */
export type Dialect = "postgresql" | "mysql" | "sqlite"

const lexings: Record<Dialect, Lexing> = { postgresql: postgres, mysql, sqlite: standard }

/** The dialect of a Prisma client, from the provider Prisma 6 and 7 keep on it; undefined when unknown. */
export const dialectOf = (client: unknown): Dialect | undefined => {
  const provider = typeof client === "object" && client !== null ? (client as { _activeProvider?: unknown })._activeProvider : undefined
  return provider === "postgresql" || provider === "cockroachdb"
    ? "postgresql"
    : provider === "mysql" || provider === "sqlite"
    ? provider
    : undefined
}

const classify = (sql: string, dialect: Dialect | undefined): Classified => {
  const statements = lex(sql, dialect === undefined ? postgres : lexings[dialect])
  let read = isRead(statements)
  // Unknown dialect: they lex alike unless one of these is in the text, and then each must agree that it reads.
  if (read && dialect === undefined && /[\\#$]|\/\*|--/.test(sql)) read = isRead(lex(sql, mysql)) && isRead(lex(sql, standard))
  return { read, summary: statements.length === 0 ? "OTHER" : summarizeStatement(statements[0]!) }
}

/** Raw queries repeat (a tagged template's SQL is one string): a bounded cache per dialect, oldest out first. */
const caches = { postgresql: new Map<string, Classified>(), mysql: new Map<string, Classified>(), sqlite: new Map<string, Classified>(), unknown: new Map<string, Classified>() }
const cacheSize = 1_000
/** Longer SQL is classified each time: it is rarely sent twice, and would hold memory in the cache. */
const cacheableLength = 4_096

const classified = (sql: string, dialect: Dialect | undefined): Classified => {
  const cache = caches[dialect ?? "unknown"]
  const known = cache.get(sql)
  if (known !== undefined) return known
  const result = classify(sql, dialect)
  if (sql.length <= cacheableLength) {
    if (cache.size >= cacheSize) cache.delete(cache.keys().next().value!)
    cache.set(sql, result)
  }
  return result
}

/**
 * True when `sql` only reads: every statement in it is on the allow-list (SELECT without INTO or a locking clause,
 * SHOW, DESCRIBE, plain EXPLAIN, WITH of reads only, VALUES, TABLE). False for anything else, for several
 * statements of which one writes, and for text with no statement. Without `dialect`, a read under every dialect.
 */
export const isReadStatement = (sql: string, dialect?: Dialect): boolean => classified(sql, dialect).read

/**
 * The statement's kind and its first table (`SELECT users`, `INSERT orders`, `SELECT` for `SELECT 1`), for span
 * names and metric labels: never a value or other text of the query. `OTHER` when the kind is unknown. For several
 * statements, the first.
 */
export const summarize = (sql: string, dialect?: Dialect): string => classified(sql, dialect).summary

/**
 * The SQL text of a raw query's arguments: `$queryRawUnsafe(sql, …values)`, a tagged template's strings, or a
 * `Prisma.sql` / `Prisma.raw` / TypedSQL object (as Prisma's query hook passes it). Parameters stand as `?`: they are
 * values, never SQL. Undefined when the arguments are none of these.
 */
export const rawText = (args: unknown): string | undefined => {
  const first = Array.isArray(args) ? args[0] : args
  if (typeof first === "string") return first
  if (Array.isArray(first)) return first.every((s) => typeof s === "string") ? first.join(" ? ") : undefined
  if (typeof first !== "object" || first === null) return undefined
  const { sql, strings } = first as { sql?: unknown; strings?: unknown }
  if (Array.isArray(strings) && strings.every((s) => typeof s === "string")) return strings.join(" ? ")
  return typeof sql === "string" ? sql : undefined
}

/** Raw calls whose SQL says whether they read. */
const rawQueries = new Set(["$queryRaw", "$queryRawUnsafe", "$queryRawTyped"])

/** `$queryRaw*` whose SQL only reads (see `isReadStatement`); false for any other operation. */
export const isRawRead = (operation: string, args: unknown, dialect: Dialect | undefined): boolean => {
  if (!rawQueries.has(operation)) return false
  const text = rawText(args)
  return text !== undefined && isReadStatement(text, dialect)
}

/** A raw query that may write: `$queryRaw*` whose SQL is not a plain read. */
export const isRawQuery = (operation: string) => rawQueries.has(operation)
