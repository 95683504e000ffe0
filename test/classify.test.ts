// Which failures count against a database's health. The circuit breaker opens on errors that say the database is
// unreachable, gone, closed or exhausted — never on errors that prove it answered (a unique violation, a missing
// record, bad SQL, a wrong type). Every row is a real error from a real client or driver against a real server,
// produced once in beforeAll (one at a time: under load a refused connection can surface as a timeout instead);
// the table then checks how `isUnhealthy` classifies it.
import { PrismaPg } from "@prisma/adapter-pg"
import BetterSqlite from "better-sqlite3"
import * as mariadb from "mariadb"
import net from "node:net"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { cutKind } from "../src/internal/catalog/cut.js"
import { connectionLost, isUnhealthy, notSent } from "../src/internal/classify.js"
import { isOutcomeUnknown } from "../src/Outcome.js"
import { retryable } from "../src/internal/database.js"
import { BatchError, CircuitOpenError, InvalidArgumentError, OperationTimeoutError, TenantCapacityError, UnknownDatabaseError } from "../src/index.js"
import type { Provider, TestDatabase } from "./support/databases.js"
import { createDatabase, PG_HOST } from "./support/databases.js"
import type { AnyClient, Generation } from "./support/prisma.js"
import { clientFor, generations } from "./support/prisma.js"

interface Env {
  readonly db: Record<Provider, TestDatabase>
  /** A port nothing listens on: bound, then closed. */
  readonly closedPort: number
  /** A port that accepts TCP connections and never answers: a hung server. */
  readonly silentPort: number
  /** Closes what a row opened, right after it (a MariaDB pool holds up to 10 connections). */
  readonly cleanup: Array<() => Promise<unknown>>
}

type Case = readonly [name: string, unhealthy: boolean, produce: (env: Env) => Promise<unknown>]

// ---- Servers, URLs and admin sessions ----------------------------------------------------------------------------

const listen = (server: net.Server) =>
  new Promise<number>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port))
  )

const freePort = async () => {
  const server = net.createServer()
  const port = await listen(server)
  await new Promise((resolve) => server.close(resolve))
  return port
}

const silentServer = async () => {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket.on("error", () => {}))
  })
  const port = await listen(server)
  const close = async () => {
    server.close()
    for (const socket of sockets) socket.destroy()
  }
  return { port, close }
}

const urlOf = (db: TestDatabase, change: { port?: number; database?: string; search?: string } = {}) => {
  const url = new URL(db.url)
  if (change.port !== undefined) url.port = String(change.port)
  if (change.database !== undefined) url.pathname = `/${change.database}`
  if (change.search !== undefined) url.search = change.search
  return url.toString()
}
const mariadbUrl = (url: string) => url.replace("mysql://", "mariadb://")
/** Short MariaDB timeouts, so an unreachable server fails in well under a second. */
const fastMariadb = "connectTimeout=300&acquireTimeout=600"

const pgQuery = async (url: string, sql: string) => {
  const c = new pg.Client({ connectionString: url })
  await c.connect()
  try {
    return (await c.query(sql)).rows
  } finally {
    await c.end()
  }
}
const mariadbQuery = async (config: string | mariadb.ConnectionConfig, sql: string) => {
  const c = await mariadb.createConnection(typeof config === "string" ? mariadbUrl(config) : config)
  try {
    return await c.query(sql)
  } finally {
    await c.end()
  }
}
const pgAdmin = (sql: string) => pgQuery(`postgresql://postgres@${PG_HOST}/postgres`, sql)
const mariadbAdmin = (sql: string) => mariadbQuery({ host: "127.0.0.1", port: 3306, user: "root" }, sql)

/** The row could not set up the failure it meant to produce; reported as such, never classified. */
class NotProduced extends Error {}

/** Polls (I/O only, bounded) until `check` holds: lets a kill land while a statement runs. */
const until = async (what: string, check: () => Promise<boolean>) => {
  for (let i = 0; i < 200; i++) if (await check()) return
  throw new NotProduced(`${what}: never happened`)
}
const pgRunning = (pid: number) =>
  until(`session ${pid} active`, async () =>
    (await pgAdmin(`SELECT 1 FROM pg_stat_activity WHERE pid = ${pid} AND state = 'active'`)).length > 0)
const mariadbRunning = (id: bigint | number) =>
  until(`connection ${id} sleeping`, async () =>
    (await mariadbAdmin(`SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = ${id} AND INFO LIKE 'SELECT SLEEP%'`))
      .length > 0)
/** Ends a PostgreSQL session as a failover or restart does, and waits until its backend is gone. */
const terminate = (pid: number) => pgAdmin(`SELECT pg_terminate_backend(${pid}, 5000)`)

/** Runs `body` while `holder` keeps its only pooled connection busy in an interactive transaction. */
const whileHeld = async (holder: AnyClient, body: () => Promise<unknown>) => {
  let release!: () => void
  let started!: () => void
  let holding = false
  const held = new Promise<void>((r) => (release = r))
  const inside = new Promise<void>((r) => (started = r))
  const tx = holder.$transaction(async (t) => {
    await t.$queryRawUnsafe("SELECT 1")
    holding = true
    started()
    await held
  }, { timeout: 10_000 })
  await Promise.race([inside, tx.catch(() => {})])
  if (!holding) throw new NotProduced("could not take the pool's only connection")
  try {
    return await body()
  } finally {
    release()
    await tx
  }
}

/** Sets up a row's failure: an error here is the setup's, not the row's. */
const setup = <A>(promise: Promise<A>) =>
  promise.catch((e) => Promise.reject(new NotProduced(`setup failed: ${e instanceof Error ? e.message : e}`)))

/** Bounds a call that may never settle, so it is reported instead of stalling the suite. */
const within = <A>(ms: number, promise: Promise<A>) => {
  let timer: NodeJS.Timeout | undefined
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NotProduced(`no answer in ${ms} ms`)), ms)
  })
  return Promise.race([promise, hung]).finally(() => clearTimeout(timer))
}

// ---- The rows ----------------------------------------------------------------------------------------------------

const prismaCases = (gen: Generation): Array<Case> => {
  const v = `Prisma ${gen.version}`
  const open = (env: Env, provider: Provider, url = env.db[provider].url) => {
    const client = clientFor(gen, { ...env.db[provider], url })
    env.cleanup.push(() => client.$disconnect())
    return client
  }
  const answered = (provider: Provider, label: string, wrongType: string): Array<Case> => [
    [`${v} ${label}: unique violation (P2002)`, false, (env) =>
      open(env, provider).user.create({ data: { email: "taken@example.com" } })],
    [`${v} ${label}: record to update not found (P2025)`, false, (env) =>
      open(env, provider).user.update({ where: { id: 999_999 }, data: { name: "x" } })],
    [`${v} ${label}: foreign key violation (P2003)`, false, (env) =>
      open(env, provider).post.create({ data: { title: "t", authorId: 999_999 } })],
    [`${v} ${label}: syntax error in $queryRawUnsafe`, false, (env) => open(env, provider).$queryRawUnsafe("SELEC 1")],
    [`${v} ${label}: argument of the wrong type (validation)`, false, (env) =>
      open(env, provider).user.create({ data: { email: 123 as unknown as string } })],
    [`${v} ${label}: value of the wrong type in raw SQL`, false, (env) =>
      open(env, provider).$executeRawUnsafe(wrongType)]
  ]
  return [
    ...answered("sqlite", "SQLite", `INSERT INTO "User" (id, email) VALUES ('abc', 'x')`),
    ...answered("postgresql", "PostgreSQL", "SELECT 'abc'::int"),
    ...answered("mysql", "MariaDB", "INSERT INTO `Post` (title, authorId) VALUES ('t', 'abc')"),
    // the server quotes the value, and this one reads like a timeout.
    [`${v} MariaDB: value of the wrong type in raw SQL, quoting 'timed out'`, false, (env) =>
      open(env, "mysql").$executeRawUnsafe("INSERT INTO `Post` (title, authorId) VALUES ('t', 'timed out')")],

    // better-sqlite3 throws a bare TypeError; the SQLite twin of "database does not exist".
    [`${v} SQLite: database file in a missing directory`, true, (env) =>
      open(env, "sqlite", `${env.db.sqlite.url}.missing/db.sqlite`).user.findMany()],
    [`${v} PostgreSQL: server unreachable (closed port)`, true, (env) =>
      open(env, "postgresql", urlOf(env.db.postgresql, { port: env.closedPort })).user.findMany()],
    [`${v} MariaDB: server unreachable (closed port)`, true, (env) =>
      open(env, "mysql", urlOf(env.db.mysql, { port: env.closedPort, search: fastMariadb })).user.findMany()],
    [`${v} PostgreSQL: database does not exist`, true, (env) =>
      open(env, "postgresql", urlOf(env.db.postgresql, { database: "flexidb_no_such_db" })).user.findMany()],
    [`${v} MariaDB: database does not exist`, true, (env) =>
      open(env, "mysql", urlOf(env.db.mysql, { database: "flexidb_no_such_db", search: fastMariadb })).user.findMany()],
    [`${v} PostgreSQL: server accepts but never answers (connect timeout)`, true, (env) =>
      open(env, "postgresql", urlOf(env.db.postgresql, { port: env.silentPort })).user.findMany()],
    [`${v} MariaDB: server accepts but never answers (connect timeout)`, true, (env) =>
      open(env, "mysql", urlOf(env.db.mysql, { port: env.silentPort, search: fastMariadb })).user.findMany()],
    [`${v} MariaDB: pool exhausted (acquire timeout)`, true, (env) => {
      const client = open(env, "mysql", urlOf(env.db.mysql, { search: "connectionLimit=1&acquireTimeout=1000" }))
      return whileHeld(client, () => client.user.findMany())
    }],
    [`${v} PostgreSQL: session terminated mid-query`, true, (env) =>
      open(env, "postgresql").$transaction(async (tx) => {
        const [{ pid }] = await tx.$queryRawUnsafe<[{ pid: number }]>("SELECT pg_backend_pid() AS pid")
        // Prisma's promises are lazy: `then` sends the query.
        const sleeping = tx.$queryRawUnsafe("SELECT pg_sleep(30)").then(() => undefined)
        return Promise.all([sleeping, pgRunning(pid).then(() => terminate(pid))])
      })],
    // pg's `Error("Client has encountered a connection error and is not queryable")` escapes
    // Prisma unwrapped, with no code. (This also leaves the client's $disconnect() hanging: see cleanup.)
    [`${v} PostgreSQL: session terminated, then queried again`, true, (env) =>
      open(env, "postgresql").$transaction(async (tx) => {
        const [{ pid }] = await tx.$queryRawUnsafe<[{ pid: number }]>("SELECT pg_backend_pid() AS pid")
        await terminate(pid)
        return tx.user.findMany()
      })],
    // Killed mid-query: a kill between queries races the next write (45009, 45013 or EPIPE, and with Prisma 6
    // sometimes a query that never settles).
    [`${v} MariaDB: connection killed mid-query`, true, (env) =>
      open(env, "mysql").$transaction(async (tx) => {
        const [{ id }] = await tx.$queryRawUnsafe<[{ id: bigint }]>("SELECT CONNECTION_ID() AS id")
        const sleeping = tx.$queryRawUnsafe("SELECT SLEEP(30)").then(() => undefined)
        return Promise.all([sleeping, mariadbRunning(id).then(() => mariadbAdmin(`KILL ${id}`))])
      }, { timeout: 20_000 })]
  ]
}

// pg-pool's "timeout exceeded when trying to connect" has no code and matches no pattern.
// Built here because the fixtures' client takes no pool size (Prisma 7's adapter; Prisma 6's lives in the fixture).
const prisma7PgPoolCase: Case = ["Prisma 7 PostgreSQL: pool exhausted (connect timeout)", true, (env) => {
  const adapter = new PrismaPg({ connectionString: env.db.postgresql.url, max: 1, connectionTimeoutMillis: 1000 })
  const client = new generations[1].PostgresClient({ adapter }) as unknown as AnyClient
  env.cleanup.push(() => client.$disconnect())
  return whileHeld(client, () => client.user.findMany())
}]

const pgClient = async (env: Env) => {
  const c = new pg.Client({ connectionString: env.db.postgresql.url })
  c.on("error", () => {}) // a terminated session reports here too
  env.cleanup.push(() => c.end())
  await setup(c.connect())
  const [{ pid }] = (await c.query("SELECT pg_backend_pid() AS pid")).rows
  return { c, pid: pid as number }
}
const pgCases: Array<Case> = [
  ["pg: connection refused (closed port)", true, (env) =>
    new pg.Client({ connectionString: urlOf(env.db.postgresql, { port: env.closedPort }) }).connect()],
  ["pg: database does not exist (3D000)", true, (env) =>
    new pg.Client({ connectionString: urlOf(env.db.postgresql, { database: "flexidb_no_such_db" }) }).connect()],
  // "timeout expired" has no code and matches no pattern.
  ["pg: server accepts but never answers (connect timeout)", true, (env) =>
    new pg.Client({
      connectionString: urlOf(env.db.postgresql, { port: env.silentPort }),
      connectionTimeoutMillis: 300
    }).connect()],
  // "timeout exceeded when trying to connect".
  ["pg.Pool: pool exhausted (connect timeout)", true, async (env) => {
    const pool = new pg.Pool({ connectionString: env.db.postgresql.url, max: 1, connectionTimeoutMillis: 1000 })
    env.cleanup.push(() => pool.end())
    const held = await setup(pool.connect())
    try {
      await pool.query("SELECT 1")
    } finally {
      held.release()
    }
  }],
  ["pg: session terminated mid-query (57P01)", true, async (env) => {
    const { c, pid } = await pgClient(env)
    return Promise.all([c.query("SELECT pg_sleep(30)"), pgRunning(pid).then(() => terminate(pid))])
  }],
  // "Client has encountered a connection error and is not queryable".
  ["pg: session terminated, then queried again", true, async (env) => {
    const { c, pid } = await pgClient(env)
    const ended = new Promise((resolve) => c.once("end", resolve))
    await terminate(pid)
    await ended
    return c.query("SELECT 1")
  }],
  ["pg: unique violation (23505)", false, (env) =>
    pgQuery(env.db.postgresql.url, `INSERT INTO "User" (email) VALUES ('taken@example.com')`)],
  ["pg: foreign key violation (23503)", false, (env) =>
    pgQuery(env.db.postgresql.url, `INSERT INTO "Post" (title, "authorId") VALUES ('t', 999999)`)],
  ["pg: syntax error (42601)", false, (env) => pgQuery(env.db.postgresql.url, "SELEC 1")],
  ["pg: invalid integer (22P02)", false, (env) => pgQuery(env.db.postgresql.url, "SELECT 'abc'::int")]
]

const mariadbClient = async (env: Env) => {
  const c = await setup(mariadb.createConnection(mariadbUrl(env.db.mysql.url)))
  c.on("error", () => {})
  env.cleanup.push(() => c.end())
  return c
}
const mariadbCases: Array<Case> = [
  ["mariadb: connection refused (closed port)", true, (env) =>
    mariadb.createConnection(mariadbUrl(urlOf(env.db.mysql, { port: env.closedPort })))],
  // SqlError's `code` is a name (ER_BAD_DB_ERROR), its number is `errno`; neither is listed.
  ["mariadb: database does not exist (1049)", true, (env) =>
    mariadb.createConnection(mariadbUrl(urlOf(env.db.mysql, { database: "flexidb_no_such_db" })))],
  // ER_CONNECTION_TIMEOUT (errno 45012) — the list has "45012", but as a string code.
  ["mariadb: server accepts but never answers (connect timeout)", true, (env) =>
    mariadb.createConnection(mariadbUrl(urlOf(env.db.mysql, { port: env.silentPort, search: fastMariadb })))],
  ["mariadb pool: pool exhausted (45028)", true, async (env) => {
    const pool = mariadb.createPool(`${mariadbUrl(env.db.mysql.url)}?connectionLimit=1&acquireTimeout=1000`)
    env.cleanup.push(() => pool.end())
    const held = await setup(pool.getConnection())
    try {
      await pool.query("SELECT 1")
    } finally {
      await held.release()
    }
  }],
  // ER_SOCKET_UNEXPECTED_CLOSE (errno 45009).
  ["mariadb: connection killed mid-query", true, async (env) => {
    const c = await mariadbClient(env)
    const id = c.threadId!
    return Promise.all([c.query("SELECT SLEEP(30)"), mariadbRunning(id).then(() => mariadbAdmin(`KILL ${id}`))])
  }],
  ["mariadb: connection killed, then queried again", true, async (env) => {
    const c = await mariadbClient(env)
    const ended = new Promise((resolve) => c.once("end", resolve))
    await mariadbAdmin(`KILL ${c.threadId}`)
    await ended
    return c.query("SELECT 1")
  }],
  ["mariadb: unique violation (1062)", false, (env) =>
    mariadbQuery(env.db.mysql.url, "INSERT INTO `User` (email) VALUES ('taken@example.com')")],
  ["mariadb: foreign key violation (1452)", false, (env) =>
    mariadbQuery(env.db.mysql.url, "INSERT INTO `Post` (title, authorId) VALUES ('t', 999999)")],
  ["mariadb: syntax error (1064)", false, (env) => mariadbQuery(env.db.mysql.url, "SELEC 1")],
  ["mariadb: incorrect integer value (1366)", false, (env) =>
    mariadbQuery(env.db.mysql.url, "INSERT INTO `Post` (title, authorId) VALUES ('t', 'abc')")],
  // the server quotes the duplicate value, and this one reads like a lost connection.
  ["mariadb: unique violation on a value reading 'Connection lost'", false, async (env) => {
    await mariadbQuery(env.db.mysql.url, "INSERT INTO `User` (email) VALUES ('Connection lost')")
    return mariadbQuery(env.db.mysql.url, "INSERT INTO `User` (email) VALUES ('Connection lost')")
  }]
]

const sqlite = (env: Env) => {
  const db = new BetterSqlite(env.db.sqlite.url)
  db.pragma("foreign_keys = ON")
  env.cleanup.push(async () => db.close())
  return db
}
const sqliteCases: Array<Case> = [
  // As through Prisma above.
  ["better-sqlite3: database file in a missing directory", true, async (env) =>
    new BetterSqlite(`${env.db.sqlite.url}.missing/db.sqlite`)],
  ["better-sqlite3: unique violation", false, async (env) =>
    sqlite(env).exec(`INSERT INTO "User" (email) VALUES ('taken@example.com')`)],
  ["better-sqlite3: foreign key violation", false, async (env) =>
    sqlite(env).exec(`INSERT INTO "Post" (title, authorId) VALUES ('t', 999999)`)],
  ["better-sqlite3: syntax error", false, async (env) => sqlite(env).exec("SELEC 1")],
  ["better-sqlite3: datatype mismatch", false, async (env) =>
    sqlite(env).exec(`INSERT INTO "User" (id, email) VALUES ('abc', 'x')`)]
]

const cases: ReadonlyArray<Case> = [
  ...generations.flatMap(prismaCases),
  prisma7PgPoolCase,
  ...pgCases,
  ...mariadbCases,
  ...sqliteCases
]

// ---- Produce every error once, then classify ---------------------------------------------------------------------

const errors = new Map<string, unknown>()
let env: Env
let silent: Awaited<ReturnType<typeof silentServer>>

beforeAll(async () => {
  const [sqliteDb, postgresql, mysql] = await Promise.all(
    (["sqlite", "postgresql", "mysql"] as const).map(createDatabase)
  )
  silent = await silentServer()
  env = {
    db: { sqlite: sqliteDb!, postgresql: postgresql!, mysql: mysql! },
    closedPort: await freePort(),
    silentPort: silent.port,
    cleanup: []
  }
  const seed = `INSERT INTO "User" (email) VALUES ('taken@example.com')`
  await pgQuery(postgresql!.url, seed)
  await mariadbQuery(mysql!.url, seed.replaceAll(`"`, "`"))
  sqlite(env).exec(seed)
  for (const [name, , produce] of cases) {
    try {
      await within(15_000, produce(env))
    } catch (error) {
      errors.set(name, error)
    }
    await closeAll()
  }
}, 120_000)

// A Prisma PostgreSQL client whose transaction's session was terminated never finishes $disconnect().
const closeAll = () => Promise.all(env.cleanup.splice(0).map((close) => within(2_000, close()).catch(() => {})))

afterAll(async () => {
  await closeAll()
  await silent.close()
  await Promise.all(Object.values(env.db).map((db) => db.drop()))
})

describe("isUnhealthy over real errors", () => {
  it.each(cases)("%s → %s", (name, unhealthy) => {
    const error = errors.get(name)
    expect(errors.has(name), `${name}: the call succeeded`).toBe(true)
    if (error instanceof NotProduced) expect.fail(`${name}: ${error.message}`)
    expect(isUnhealthy(error)).toBe(unhealthy)
  })
})

/** A Prisma 7 error from a driver adapter, shaped as Prisma makes it. */
const adapterError = (code: string, cause: Record<string, unknown>) =>
  Object.assign(new Error(`Database error. Code: ${String(cause.originalCode ?? cause.code)}`), {
    name: "PrismaClientKnownRequestError",
    code,
    meta: { driverAdapterError: { name: "DriverAdapterError", cause } }
  })

describe("did it happen? outcomeUnknown", () => {
  it.each([
    // Refused before anything was sent.
    ["a refused connection", Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" }), false],
    ["an unreachable host at connect", Object.assign(new Error("connect EHOSTUNREACH 10.0.0.9:5432"), { code: "EHOSTUNREACH", syscall: "connect" }), false],
    ["no connection from the pool", adapterError("P2024", { kind: "postgres", originalCode: "P2024" }), false],
    ["Prisma's validation", Object.assign(new Error("Argument `data` is missing."), { name: "PrismaClientValidationError" }), false],
    ["an open circuit", new CircuitOpenError({ database: "a", operation: "User.create", retryAfterMs: 1 }), false],
    ["an unknown database (batch() of an unregistered name)", new UnknownDatabaseError({ database: "a", registered: [] }), false],
    ["invalid input (a batch() operation that is not a function)", new InvalidArgumentError({ path: "batch.a", reason: "x" }), false],
    ["no tenant slot", new TenantCapacityError({ tenant: "t", maxClients: 1, waitedMs: 5 }), false],
    // The database answered with an error of its own.
    ["a unique violation", adapterError("P2002", { kind: "UniqueConstraintViolation", constraint: { fields: ["email"] } }), false],
    ["a server SQLSTATE through a raw query", adapterError("P2010", { kind: "postgres", originalCode: "23505", originalMessage: "duplicate key" }), false],
    ["a MariaDB server error", adapterError("P2010", { kind: "mysql", code: 1062, originalMessage: "Duplicate entry" }), false],
    ["a record not found", Object.assign(new Error("No record was found"), { name: "PrismaClientKnownRequestError", code: "P2025" }), false],
    // May have reached the server.
    ["a lost connection", Object.assign(new Error("Connection terminated unexpectedly"), {}), true],
    ["a host lost mid-query", Object.assign(new Error("read EHOSTUNREACH"), { code: "EHOSTUNREACH", syscall: "read" }), true],
    ["pg's query_timeout", new Error("Query read timeout"), true],
    ["mariadb's socket timeout", adapterError("P2039", { kind: "mysql", code: 45026, originalMessage: "socket timeout" }), true],
    ["an operation timeout", new OperationTimeoutError({ database: "a", operation: "User.create", timeoutMs: 5 }), true],
    ["a middleware's own error", new Error("audit log unavailable"), true],
    ["something thrown that is not an Error", "boom", true]
  ] as const)("%s: %s", (_what, error, unknown) => {
    expect(isOutcomeUnknown(error)).toBe(unknown)
  })

  it("a lost connection is told apart from one never made", () => {
    expect(connectionLost(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }))).toBe(true)
    expect(connectionLost(adapterError("P1017", { kind: "ConnectionClosed" }))).toBe(true)
    expect(connectionLost(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }))).toBe(false)
    expect(notSent(Object.assign(new Error("Can't reach database server at `db:5432`"), { code: "P1001" }))).toBe(true)
    // A user's value quoted in the server's message is data, not a signal; an apostrophe in a word is not a quote.
    expect(connectionLost(adapterError("P2010", { kind: "mysql", code: 1062, originalMessage: "Duplicate entry 'connection lost'" }))).toBe(false)
    expect(notSent(new Error("Can't reach database server at 'db' (x)"))).toBe(true)
  })

  it("a batch may have taken effect when any of its failures may have", () => {
    const lost = Object.assign(new Error("Connection terminated unexpectedly"), { outcomeUnknown: true })
    const refused = Object.assign(new Error("connect ECONNREFUSED"), { outcomeUnknown: false })
    expect(new BatchError({ failures: { a: lost, b: refused }, results: {} }).outcomeUnknown).toBe(true)
    expect(isOutcomeUnknown(new BatchError({ failures: { b: refused }, results: {} }))).toBe(false)
    expect(new BatchError({ failures: { c: new UnknownDatabaseError({ database: "c", registered: [] }) }, results: {} }).outcomeUnknown).toBe(false)
  })
})

describe("a failed write during a move's fence: written or not? (cutKind)", () => {
  it.each([
    // Not written: the engine refused it, or Prisma rolled its own transaction back before the commit.
    ["PostgreSQL's read-only database", adapterError("P2010", { kind: "postgres", originalCode: "25006", originalMessage: "cannot execute INSERT in a read-only transaction" }), "refused"],
    ["MariaDB's parked table", adapterError("P2021", { kind: "TableDoesNotExist", table: "User" }), "refused"],
    ["Prisma 7's transaction around the write rolled back before its commit (P2028)", Object.assign(
      new Error("Transaction API error: Transaction already closed: A commit cannot be executed on a transaction that was rolled back."),
      { name: "PrismaClientKnownRequestError", code: "P2028" }
    ), "refused"],
    // Maybe written: the session was killed under it.
    ["MariaDB's KILL under the statement (1927)", adapterError("P2010", { kind: "mysql", code: 1927, originalMessage: "Connection was killed" }), "cut"],
    ["a lost connection", new Error("Connection terminated unexpectedly"), "unhealthy"],
    // Nothing to do with a fence.
    ["a unique violation", adapterError("P2002", { kind: "UniqueConstraintViolation", constraint: { fields: ["email"] } }), "other"],
    ["Prisma 7's other transaction errors (P2028, not found)", Object.assign(
      new Error("Transaction API error: Transaction not found."),
      { name: "PrismaClientKnownRequestError", code: "P2028" }
    ), "other"]
  ] as const)("%s: %s", (_what, error, kind) => {
    expect(cutKind(error)).toBe(kind)
  })

  it("a real MariaDB connection killed mid-query through Prisma 7 is a cut", () => {
    expect(cutKind(errors.get("Prisma 7 MariaDB: connection killed mid-query"))).not.toBe("other")
  })
})

describe("reads run again after a lost connection: which", () => {
  const hook = (operation: string, args: unknown, transaction?: unknown) =>
    ({ operation, args, query: async () => {}, __internalParams: { transaction } })
  it.each([
    ["findMany", hook("findMany", {}), true],
    ["count", hook("count", {}), true],
    ["a plain SELECT", hook("$queryRawUnsafe", ["SELECT id FROM users WHERE id = $1", 1]), true],
    ["a tagged $queryRaw", hook("$queryRaw", [["SELECT 1 AS one"]]), true],
    ["a Prisma.sql query", hook("$queryRaw", { strings: ["select * from t where a = ", ""], values: [1] }), true],
    ["a write", hook("create", { data: {} }), false],
    ["a read inside a transaction", hook("findMany", {}, { kind: "itx", id: "1" }), false],
    ["EXPLAIN ANALYZE (it runs the statement)", hook("$queryRawUnsafe", ["EXPLAIN ANALYZE DELETE FROM t"]), false],
    ["SELECT … INTO", hook("$queryRawUnsafe", ["SELECT * INTO copy FROM t"]), false],
    ["two statements", hook("$queryRawUnsafe", ["SELECT 1; DELETE FROM t"]), false],
    ["a sequence", hook("$queryRawUnsafe", ["SELECT nextval('s')"]), false],
    ["$executeRaw", hook("$executeRawUnsafe", ["SELECT 1"]), false],
    ["a request Prisma did not describe", { operation: "findMany", args: {}, query: async () => {} }, false]
  ] as const)("%s: %s", (_what, h, expected) => {
    expect(retryable(h as never)).toBe(expected)
  })
})
