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
const unquoted = (message: string) => message.replace(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"/g, "''")

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
