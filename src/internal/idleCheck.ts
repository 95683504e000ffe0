/**
 * A pooled connection that sat idle may have been forgotten by a load balancer or a NAT on the way: no FIN, no reset,
 * its next query simply never gets an answer. pg's pool hands such a connection out as it is, and a read on it waits
 * out the whole operation timeout. So, on the pg pool behind a client's driver adapter (the app's, or the one the
 * adapter makes when Prisma connects), a connection idle for `IDLE_MS` or more answers a `SELECT 1` within
 * `CHECK_MS` before it is handed out; one that does not is thrown away with every connection that has been idle as
 * long (a silent network forgets them together), and the pool opens a fresh one. The catalog's own pg pools (its
 * database, the PostgreSQL tenant servers' admin pools) are guarded the same way.
 *
 * mariadb's pool does this itself (it pings a connection idle over `minDelayValidation`, 500 ms, with `pingTimeout`,
 * 250 ms): nothing is added there.
 */

/** A connection idle this long is checked before use. */
export const IDLE_MS = 1000
/** How long the check waits for `SELECT 1`. A slow answer only costs a new connection. */
export const CHECK_MS = 500

interface PgClient {
  query(sql: string): Promise<unknown>
  release(err?: Error | boolean): void
  on(event: "error", f: (e: unknown) => void): unknown
  removeListener(event: "error", f: (e: unknown) => void): unknown
  connection?: { stream?: { destroy?: () => void } }
}

interface PgPool {
  connect(cb?: (err: Error | undefined, client?: PgClient, done?: (err?: Error) => void) => void): Promise<PgClient> | undefined
  on(event: "release", f: (err: unknown, client: PgClient) => void): unknown
  _idle?: Array<{ client: PgClient }>
  _remove?: (client: PgClient) => void
  _pulseQueue?: () => void
}

const isPgPool = (driver: unknown): driver is PgPool => {
  const d = driver as Record<string, unknown> | null | undefined
  return typeof d?.totalCount === "number" && typeof d.idleCount === "number" && typeof d.connect === "function" &&
    typeof d.on === "function"
}

const noop = () => undefined
const kill = (client: PgClient) => {
  try {
    client.connection?.stream?.destroy?.()
  } catch {
    // already gone
  }
}

/** Answers `SELECT 1` within CHECK_MS. */
const alive = (client: PgClient): Promise<boolean> =>
  new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), CHECK_MS)
    client.query("SELECT 1").then(
      () => {
        clearTimeout(timer)
        resolve(true)
      },
      () => {
        clearTimeout(timer)
        resolve(false)
      }
    )
  })

const guarded = new WeakSet<object>()

/** Installs the check on a pg pool, once. Other drivers are left as they are. */
export const guardPool = (driver: unknown): void => {
  if (!isPgPool(driver) || guarded.has(driver)) return
  guarded.add(driver)
  const pool = driver
  /** When each connection was last given back: a connection never given back is fresh. */
  const lastUse = new WeakMap<PgClient, number>()
  pool.on("release", (_err, client) => lastUse.set(client, Date.now()))
  type Done = (err: Error | undefined, client?: PgClient, done?: (err?: Error) => void) => void
  const connect = pool.connect.bind(pool) as (cb: Done) => void

  /** The connections idle since before `since`: thrown away together. */
  const dropIdleSince = (since: number) => {
    for (const item of pool._idle?.slice() ?? []) {
      const last = lastUse.get(item.client)
      if (last !== undefined && last <= since && pool._remove !== undefined) {
        pool._remove(item.client)
        kill(item.client)
      }
    }
    // Room in a full pool: a caller waiting for a connection gets a new one now.
    pool._pulseQueue?.()
  }

  /** The pool's own acquisition, callbacks and all (no promise on the way of a connection used a moment ago). */
  const acquire = (cb: Done): void =>
    connect((err, client, done) => {
      const last = client === undefined ? undefined : lastUse.get(client)
      if (err !== undefined || client === undefined || last === undefined || Date.now() - last < IDLE_MS) {
        return cb(err, client, done)
      }
      // Checked out, so the pool's own error listener is off it: a socket error during the check is the check's.
      client.on("error", noop)
      void alive(client).then((ok) => {
        client.removeListener("error", noop)
        if (ok) return cb(undefined, client, done)
        lastUse.delete(client)
        client.release(new Error("an idle connection did not answer its check"))
        kill(client)
        dropIdleSince(Date.now() - IDLE_MS)
        acquire(cb)
      })
    })

  pool.connect = function(cb) {
    if (typeof cb === "function") {
      acquire(cb)
      return undefined
    }
    return new Promise<PgClient>((resolve, reject) =>
      acquire((err, client) => err !== undefined || client === undefined ? reject(err) : resolve(client))
    )
  }
}

/**
 * Guards the pool behind a client's driver adapter: the pool the app gave the adapter now, the one the adapter makes
 * when Prisma connects (the factory's `connect` is wrapped, on that factory object only, as `watchPool` does).
 */
export const guardIdleConnections = (client: unknown): void => {
  const factory = (client as { _engineConfig?: { adapter?: Record<string, unknown> } } | null)?._engineConfig?.adapter
  if (factory === undefined || factory === null || typeof factory.connect !== "function") return
  if (guardedFactories.has(factory)) return
  guardedFactories.add(factory)
  guardPool(factory.externalPool)
  const connect = factory.connect as (...args: Array<unknown>) => Promise<{ underlyingDriver?: () => unknown }>
  try {
    factory.connect = async function(this: unknown, ...args: Array<unknown>) {
      const adapter = await connect.apply(this, args)
      guardPool(adapter?.underlyingDriver?.())
      return adapter
    }
  } catch {
    // a frozen factory: only a pool the app gave it is guarded
  }
}
const guardedFactories = new WeakSet<object>()
