/**
 * The connection pool behind a Prisma client's driver adapter, read for the pool metrics: what it holds now.
 */

/** What a driver's connection pool holds now. */
export interface PoolFigures {
  readonly idle: number
  readonly used: number
  /** Requests waiting for a connection. */
  readonly pending: number
}

/** The figures of a pg Pool (totalCount, idleCount, waitingCount) or a mariadb Pool (its methods), else undefined. */
const poolReader = (driver: unknown): (() => PoolFigures) | undefined => {
  const pool = driver as Record<string, unknown> | null | undefined
  if (typeof pool?.totalCount === "number" && typeof pool.idleCount === "number") {
    const pg = pool as { totalCount: number; idleCount: number; waitingCount: number }
    return () => ({ idle: pg.idleCount, used: pg.totalCount - pg.idleCount, pending: pg.waitingCount })
  }
  if (typeof pool?.totalConnections === "function" && typeof pool.idleConnections === "function") {
    const mariadb = pool as { totalConnections(): number; idleConnections(): number; taskQueueSize(): number }
    return () => {
      const idle = mariadb.idleConnections()
      return { idle, used: mariadb.totalConnections() - idle, pending: mariadb.taskQueueSize() }
    }
  }
  return undefined
}

/**
 * The pool behind a client's driver adapter: the pool the app gave the adapter (`new PrismaPg(pool)`), else the one
 * the adapter makes when Prisma connects. Prisma keeps the connected adapter private, so the factory's `connect` is
 * wrapped (on that factory object only) to keep each new adapter's `underlyingDriver()`. Clients without a driver
 * adapter keep their pool to themselves: undefined.
 */
export const watchPool = (client: unknown): (() => PoolFigures | undefined) | undefined => {
  const factory = (client as { _engineConfig?: { adapter?: Record<string, unknown> } } | null)?._engineConfig?.adapter
  if (factory === undefined || factory === null || typeof factory.connect !== "function") return undefined
  // Once per factory, whatever the number of clients or instances built on it.
  let watched = watchedFactories.get(factory)
  if (watched === undefined) {
    const cell: { read: (() => PoolFigures) | undefined } = { read: poolReader(factory.externalPool) }
    const connect = factory.connect as (...args: Array<unknown>) => Promise<{ underlyingDriver?: () => unknown }>
    try {
      factory.connect = async function(this: unknown, ...args: Array<unknown>) {
        const adapter = await connect.apply(this, args)
        cell.read = poolReader(adapter?.underlyingDriver?.()) ?? cell.read
        return adapter
      }
    } catch {
      // a frozen factory: only a pool the app gave it can be read
    }
    watchedFactories.set(factory, watched = cell)
  }
  const cell = watched
  return () => cell.read?.()
}
const watchedFactories = new WeakMap<object, { read: (() => PoolFigures) | undefined }>()
