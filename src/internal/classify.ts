/**
 * Which errors say a database is unhealthy (and so count toward the circuit breaker), as opposed to errors
 * about the query itself (a unique violation, a missing record), which prove the database answered.
 */

/** Prisma error codes for an unreachable, timed-out, closed or exhausted database. */
const unhealthyCodes = new Set([
  "P1001", // can't reach database server
  "P1002", // database server timed out
  "P1008", // operations timed out
  "P1011", // error opening a TLS connection
  "P1017", // server has closed the connection
  "P2024", // timed out fetching a new connection from the pool
  "P2037", // too many database connections opened
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "PROTOCOL_CONNECTION_LOST",
  "ER_GET_CONNECTION_TIMEOUT",
  "57P01", // postgres admin_shutdown
  "57P03", // postgres cannot_connect_now
  "08006", // postgres connection_failure
  "08001", // postgres sqlclient_unable_to_establish_sqlconnection
  "3D000", // postgres: the database does not exist (dropped under us)
  "45028", // mariadb: pool timeout, no connection could be had
  "45009", // mariadb: socket closed
  "45012", // mariadb: connection timeout
  "1049", // mariadb: unknown database (dropped under us)
  "2002", // mariadb: can't connect through the socket
  "2003", // mariadb: can't connect to the server
  "2006", // mariadb: server has gone away
  "2013", // mariadb: lost connection during query
  // The mariadb driver's own codes are names; its numbers are in `errno`.
  "ER_BAD_DB_ERROR",
  "ER_CONNECTION_TIMEOUT",
  "ER_SOCKET_UNEXPECTED_CLOSE",
  "ER_GET_CONNECTION_TIMEOUT",
  "ER_CONNECTION_ALREADY_CLOSED",
  "ER_CLOSING_POOL",
  "ECONNABORTED",
  "FLEXIDB_OPERATION_TIMEOUT"
])

/** Driver adapter error kinds (`meta.driverAdapterError.cause.kind`) with the same meaning. */
const unhealthyKinds = new Set([
  "DatabaseNotReachable",
  "DatabaseDoesNotExist",
  "ConnectionClosed",
  "SocketTimeout",
  "TooManyConnections",
  "TlsConnectionError"
])

/**
 * Raw queries wrap driver failures in P2010 with the driver's message, so the message is the only signal left.
 * `Code: \`N/A\`` marks a failure before the server answered.
 */
const unhealthyMessage =
  /can't reach database server|connection (?:terminated|refused|reset|closed|lost)|pool timeout|timed out|ECONNREFUSED|ECONNRESET|ETIMEDOUT|socket hang up|server has closed the connection|Connection ended|connect ETIMEDOUT|too many connections|connection error and is not queryable|timeout expired|timeout exceeded when trying to connect|cannot open database because the directory does not exist|unable to open database file/i

/**
 * A server that answered quotes the user's values in its message (`Duplicate entry 'Connection lost'`, `Incorrect
 * integer value: 'timed out'`): quoted text is data, never a signal.
 */
const unquoted = (message: string) => message.replace(/(?<![A-Za-z])'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"/g, "''")

const matchesUnhealthy = (message: unknown) => typeof message === "string" && unhealthyMessage.test(unquoted(message))

/** Kinds that only name the driver: the reason is in the driver's own code and message. */
const genericKinds = new Set(["postgres", "mysql", "sqlite", "mssql", "GenericJs"])

const initializationErrors = new Set(["PrismaClientInitializationError", "PrismaClientRustPanicError"])

const field = (u: unknown, key: string): unknown =>
  typeof u === "object" && u !== null ? (u as Record<string, unknown>)[key] : undefined

export const isUnhealthy = (error: unknown): boolean => {
  if (typeof error !== "object" || error === null) return false
  const name = field(error, "name")
  if (typeof name === "string" && initializationErrors.has(name)) return true
  const code = field(error, "code") ?? field(error, "errorCode")
  if ((typeof code === "string" || typeof code === "number") && unhealthyCodes.has(String(code))) return true
  const errno = field(error, "errno")
  if (typeof errno === "number" && unhealthyCodes.has(String(errno))) return true
  const adapterCause = field(field(field(error, "meta"), "driverAdapterError"), "cause")
  const kind = field(adapterCause, "kind")
  if (typeof kind === "string") {
    if (unhealthyKinds.has(kind)) return true
    if (!genericKinds.has(kind)) return false
    return [field(adapterCause, "originalCode"), field(adapterCause, "code")].some((c) => unhealthyCodes.has(String(c))) ||
      [field(adapterCause, "originalMessage"), field(adapterCause, "cause")].some(matchesUnhealthy)
  }
  if (matchesUnhealthy(field(error, "message"))) return true
  const cause = field(error, "cause")
  return cause !== undefined && cause !== error && isUnhealthy(cause)
}

/** Errors Prisma raises before sending anything (invalid arguments): no evidence about the database's health. */
export const neverSent = (error: unknown): boolean => field(error, "name") === "PrismaClientValidationError"

/**
 * Infrastructure failures that happen before a query can be sent: the server refused or could not be reached, no
 * connection could be had from the pool, the database does not exist. The query provably did nothing.
 */
const unsentCodes = new Set([
  "P1001", "P1011", "P2024", "P2037", "ECONNREFUSED", "ER_GET_CONNECTION_TIMEOUT",
  "57P03", "08001", "3D000", "45028", "45012", "1049", "2002", "2003", "ER_BAD_DB_ERROR", "ER_CONNECTION_TIMEOUT",
  "ER_CLOSING_POOL"
])
const unsentKinds = new Set(["DatabaseNotReachable", "DatabaseDoesNotExist", "TooManyConnections", "TlsConnectionError"])
// EHOSTUNREACH and ENETUNREACH only from connect(): on an open connection they come after the query was sent.
const unsentMessage =
  /can't reach database server|ECONNREFUSED|connection refused|pool timeout|too many connections|timeout exceeded when trying to connect|connect (?:ETIMEDOUT|EHOSTUNREACH|ENETUNREACH)|retrieve connection from pool timeout|cannot open database because the directory does not exist|unable to open database file/i

/**
 * Connection failures on a connection that was open: the server closed it, the network reset it. A query sent on
 * it may or may not have run.
 */
const lostCodes = new Set([
  "P1017", "ECONNRESET", "EPIPE", "PROTOCOL_CONNECTION_LOST", "57P01", "08006", "45009", "2006", "2013",
  "ER_SOCKET_UNEXPECTED_CLOSE", "ER_CONNECTION_ALREADY_CLOSED", "ECONNABORTED"
])
const lostMessage =
  /connection (?:terminated|reset|closed|lost)|socket hang up|server has closed the connection|Connection ended|connection error and is not queryable|socket has unexpectedly been closed|Cannot execute new commands: connection closed|ECONNRESET|EPIPE/i

/** Every code, kind and message an error carries, its driver adapter's cause and its own cause included. */
const signals = (error: unknown, depth = 0): { codes: Array<string>; kinds: Array<string>; messages: Array<string> } => {
  const out = { codes: [] as Array<string>, kinds: [] as Array<string>, messages: [] as Array<string> }
  if (typeof error !== "object" || error === null || depth > 3) return out
  for (const key of ["code", "errorCode", "errno"]) {
    const v = field(error, key)
    if (typeof v === "string" || typeof v === "number") out.codes.push(String(v))
  }
  const message = field(error, "message")
  if (typeof message === "string") out.messages.push(unquoted(message))
  const adapterCause = field(field(field(error, "meta"), "driverAdapterError"), "cause")
  const kind = field(adapterCause, "kind")
  if (typeof kind === "string") out.kinds.push(kind)
  for (const key of ["originalCode", "code"]) {
    const v = field(adapterCause, key)
    if (typeof v === "string" || typeof v === "number") out.codes.push(String(v))
  }
  for (const key of ["originalMessage", "cause"]) {
    const v = field(adapterCause, key)
    if (typeof v === "string") out.messages.push(unquoted(v))
  }
  const cause = field(error, "cause")
  if (cause !== undefined && cause !== error) {
    const inner = signals(cause, depth + 1)
    out.codes.push(...inner.codes)
    out.kinds.push(...inner.kinds)
    out.messages.push(...inner.messages)
  }
  return out
}

/** The operation failed before it was sent: refused, unreachable, no connection from the pool. */
export const notSent = (error: unknown): boolean => {
  if (neverSent(error)) return true
  const name = field(error, "name")
  if (typeof name === "string" && initializationErrors.has(name)) return true
  const { codes, kinds, messages } = signals(error)
  return codes.some((c) => unsentCodes.has(c)) || kinds.some((k) => unsentKinds.has(k)) ||
    messages.some((m) => unsentMessage.test(m))
}

/** The connection the operation used was lost under it (and it was not refused before it was sent). */
export const connectionLost = (error: unknown): boolean => {
  if (notSent(error)) return false
  const { codes, kinds, messages } = signals(error)
  return codes.some((c) => lostCodes.has(c)) || kinds.includes("ConnectionClosed") || messages.some((m) => lostMessage.test(m))
}

/** Prisma codes for the database's own answers about the query (a constraint, a missing record…). */
const answeredCode = /^P2\d{3}$/
/** Codes that only wrap a driver's failure, which may be the server's answer or not: the driver's code decides. */
const wrappingCodes = new Set(["P2010", "P2039"])
/** Driver adapter kinds that name the database's answer. */
const answeredKind = (kind: string) => !genericKinds.has(kind) && !unhealthyKinds.has(kind) && kind !== "ConnectionClosed"
/**
 * A server's own error code: a SQLSTATE outside connection exceptions (08), operator intervention (57) and
 * insufficient resources (53), or a MySQL / MariaDB server error number (client and driver errors are 2000 and up).
 */
const serverCode = (code: unknown) =>
  (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) && !/^(?:08|57|53)/.test(code)) ||
  (/^\d+$/.test(String(code)) && Number(code) >= 1000 && Number(code) < 2000)

/** The database answered the query with an error of its own: the statement did not take effect. */
const answered = (error: unknown): boolean => {
  if (isUnhealthy(error)) return false
  const adapterCause = field(field(field(error, "meta"), "driverAdapterError"), "cause")
  const kind = field(adapterCause, "kind")
  if (typeof kind === "string") {
    if (answeredKind(kind)) return true
    return [field(adapterCause, "originalCode"), field(adapterCause, "code")].some(serverCode)
  }
  const code = field(error, "code")
  if (typeof code === "string" && answeredCode.test(code)) return !wrappingCodes.has(code)
  // A driver's own error, straight (the Effect API's QueryError cause, a batch operation's): pg's SQLSTATE, mariadb's errno.
  return field(error, "severity") !== undefined ? serverCode(code) : serverCode(field(error, "errno")) && field(error, "sqlState") !== undefined
}

/**
 * Whether a failed operation may have taken effect. False only when it provably did not: it was refused before it
 * was sent (a refused or unreachable server, no connection from the pool, invalid arguments) or the database
 * answered it with an error (a unique violation). Anything else — a connection lost mid-query, a timeout, an error
 * flexidb cannot place — may have reached the server: true.
 */
export const outcomeUnknown = (error: unknown): boolean => {
  const known = field(error, "outcomeUnknown")
  if (typeof known === "boolean") return known
  return !notSent(error) && !answered(error)
}
