/**
 * OpenTelemetry's stable database attributes that flexidb can tell from a client, an operation and its outcome:
 * `server.address`/`server.port` (a host, never a URL: a connection string's credentials stay out),
 * `db.query.summary`, `db.query.text` (opt-in, values replaced by placeholders) and `db.response.status_code`.
 */

type Server = Record<string, string | number>

/**
 * `server.address` and `server.port` of a client whose driver adapter says where it connects; {} otherwise. A
 * MariaDB adapter keeps its settings private: its server is learnt when it connects (`learnServer`), and known
 * from then on to every client built on the same adapter.
 */
export const serverOf = (client: unknown): Server => {
  const factory = (client as { _engineConfig?: { adapter?: Record<string, unknown> } } | null)?._engineConfig?.adapter
  if (factory === undefined || factory === null) return {}
  const learnt = servers.get(factory)
  if (learnt !== undefined) return learnt
  // PrismaPg: the pool config it was given, or the app's own pool's options.
  const config = (factory.config ?? (factory.externalPool as { options?: unknown } | undefined)?.options) as
    | { connectionString?: unknown; host?: unknown; port?: unknown }
    | undefined
  if (config === undefined || config === null) return {}
  let host: unknown = config.host
  let port: unknown = config.port
  if (typeof config.connectionString === "string") {
    try {
      const url = new URL(config.connectionString)
      host = url.hostname || (url.searchParams.get("host") ?? host)
      port = url.port === "" ? port : Number(url.port)
    } catch {
      return {}
    }
  }
  if (typeof host !== "string" || host.length === 0) return {}
  const address = host.replace(/^\[|\]$/g, "")
  const defaultPort = factory.provider === "mysql" ? 3306 : 5432
  const number = typeof port === "number" ? port : typeof port === "string" && /^\d+$/.test(port) ? Number(port) : defaultPort
  return { "server.address": address, "server.port": number }
}

/** What a MariaDB adapter connected to, by adapter; the labels waiting for it, until it has connected once. */
const servers = new WeakMap<object, Server>()
const waiting = new WeakMap<object, Set<Record<string, unknown>>>()

/**
 * For a client on Prisma's MariaDB adapter whose server `serverOf` cannot tell yet: when the adapter connects,
 * `server.address`/`server.port` are read from one of its pool's connections (the host and port the driver
 * parsed, never the URL) and added to `labels`, before Prisma runs its first query on it (connect waits up to
 * 100 ms for it, then the labels get it whenever it comes). Once per adapter: its
 * `connect` is wrapped (that object only), and the pool lends one idle connection back at once. Without `labels`:
 * only watched, for labels built after the adapter has connected (a tenant's, connected by the missing-database
 * probe before its member is built).
 */
export const learnServer = (client: unknown, labels?: Record<string, unknown>): void => {
  const factory = (client as { _engineConfig?: { adapter?: Record<string, unknown> } } | null)?._engineConfig?.adapter
  if (factory === undefined || factory === null || factory.provider !== "mysql") return
  if (typeof factory.connect !== "function" || servers.has(factory)) return
  let set = waiting.get(factory)
  if (set !== undefined) {
    if (labels !== undefined) set.add(labels)
    return
  }
  waiting.set(factory, set = new Set(labels === undefined ? [] : [labels]))
  const connect = factory.connect as (...args: Array<unknown>) => Promise<{ underlyingDriver?: () => unknown }>
  try {
    let learning = false
    factory.connect = async function(this: unknown, ...args: Array<unknown>) {
      const adapter = await connect.apply(this, args)
      if (!servers.has(factory) && !learning) {
        learning = true
        const learnt = poolServer(adapter?.underlyingDriver?.()).then((server) => {
          if (server === undefined) return
          servers.set(factory, server)
          for (const l of waiting.get(factory) ?? []) Object.assign(l, server)
          waiting.delete(factory)
        }, () => {}).finally(() => {
          learning = false
        })
        // A connection is lent at once when the server is up; when it is down (the adapter's connect resolves
        // anyway), the pool would wait its acquireTimeout: connect waits 100 ms at most, the labels get the server
        // whenever it is learnt.
        let timer: ReturnType<typeof setTimeout> | undefined
        await Promise.race([learnt, new Promise<void>((resolve) => timer = setTimeout(resolve, 100))])
        clearTimeout(timer)
      }
      return adapter
    }
  } catch {
    // a frozen adapter: no server attributes
  }
}

/** The host and port a mariadb pool's connections go to, from the connection it lends on request. */
const poolServer = async (driver: unknown): Promise<Server | undefined> => {
  const pool = driver as {
    getConnection?: () => Promise<{ release: () => Promise<void> }>
    once?: (event: string, f: (conn: { opts?: { host?: unknown; port?: unknown; socketPath?: unknown } }) => void) => void
    removeListener?: (event: string, f: (...args: Array<never>) => void) => void
  } | null | undefined
  if (typeof pool?.getConnection !== "function" || typeof pool.once !== "function") return undefined
  let opts: { host?: unknown; port?: unknown; socketPath?: unknown } | undefined
  const seen = (conn: { opts?: typeof opts }) => {
    opts = conn?.opts
  }
  pool.once("acquire", seen)
  try {
    const conn = await pool.getConnection()
    await conn.release()
  } finally {
    pool.removeListener?.("acquire", seen)
  }
  if (opts === undefined || typeof opts.host !== "string" || opts.host.length === 0 || opts.socketPath) return undefined
  const port = typeof opts.port === "number" ? opts.port : Number(opts.port ?? 3306)
  return { "server.address": opts.host.replace(/^\[|\]$/g, ""), "server.port": Number.isFinite(port) ? port : 3306 }
}

/** Prisma's model operations, by the kind of statement they send. */
const kinds: Record<string, string> = {
  findUnique: "SELECT",
  findUniqueOrThrow: "SELECT",
  findFirst: "SELECT",
  findFirstOrThrow: "SELECT",
  findMany: "SELECT",
  count: "SELECT",
  aggregate: "SELECT",
  groupBy: "SELECT",
  findRaw: "SELECT",
  aggregateRaw: "SELECT",
  create: "INSERT",
  createMany: "INSERT",
  createManyAndReturn: "INSERT",
  update: "UPDATE",
  updateMany: "UPDATE",
  updateManyAndReturn: "UPDATE",
  upsert: "UPSERT",
  delete: "DELETE",
  deleteMany: "DELETE"
}

/** `db.query.summary` of a model operation labelled `Model.operation`: `SELECT User`; undefined for others. */
export const modelSummary = (operation: string): string | undefined => {
  const dot = operation.indexOf(".")
  if (dot <= 0) return undefined
  const kind = kinds[operation.slice(dot + 1)]
  return kind === undefined ? undefined : `${kind} ${operation.slice(0, dot)}`
}

/** The raw SQL operations, whose arguments carry their statement. */
export const rawOperations = new Set(["$queryRaw", "$executeRaw", "$queryRawUnsafe", "$executeRawUnsafe"])

/**
 * The statement of a raw SQL call, with its values as placeholders: a tagged template's parts joined by `?`, a
 * `Prisma.sql` value's text (placeholders already), an unsafe call's string with its literals replaced.
 */
export const rawText = (args: unknown): string | undefined => {
  if (Array.isArray(args)) {
    const first: unknown = args[0]
    if (Array.isArray(first)) return first.join("?")
    return typeof first === "string" ? withoutLiterals(first) : undefined
  }
  const sql = args as { sql?: unknown; strings?: ReadonlyArray<unknown> } | null
  if (typeof sql?.sql === "string") return sql.sql
  if (Array.isArray(sql?.strings)) return sql.strings.join("?")
  return undefined
}

/** Quoted strings, numbers and hex or boolean literals as `?`; comments removed (they may hold anything). */
export const withoutLiterals = (sql: string): string =>
  sql
    .replace(/--[^\n]*|\/\*[\s\S]*?\*\//g, " ")
    .replace(/'(?:[^']|'')*'|\$\$[\s\S]*?\$\$/g, "?")
    .replace(/\b(?:0x[0-9a-f]+|\d+(?:\.\d+)?(?:e[+-]?\d+)?|true|false)\b/gi, (m, offset: number, all: string) =>
      // `$1` and `?1` are placeholders already; identifiers like t1 are not literals (\b keeps them whole).
      all[offset - 1] === "$" ? m : "?")
    .replace(/\s+/g, " ")
    .trim()

/**
 * `db.response.status_code`: the database's own code when it answered with one (PostgreSQL's SQLSTATE such as
 * 23505, MySQL's error number such as 1062, SQLite's SQLITE_CONSTRAINT_UNIQUE), as Prisma's driver adapter passes
 * it on; else Prisma's code (P2025); undefined for flexidb's own refusals and network errors.
 */
export const statusCode = (error: unknown): string | undefined => {
  const e = error as { code?: unknown; meta?: { driverAdapterError?: { cause?: { originalCode?: unknown } } } } | null
  const original = e?.meta?.driverAdapterError?.cause?.originalCode
  if (typeof original === "string" || typeof original === "number") return String(original)
  const code = e?.code
  if (typeof code === "string" && /^P\d{4}$/.test(code)) return code
  return undefined
}
