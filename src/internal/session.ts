/**
 * Read-your-writes sessions: an AsyncLocalStorage store (one per HTTP request is the intended use) that remembers,
 * per database, when the session last wrote to it and, in LSN mode, the writer's WAL position after that write.
 */
import { AsyncLocalStorage } from "node:async_hooks"

export interface LastWrite {
  /** Clock milliseconds of the write. */
  readonly at: number
  /** The writer's WAL position after it (LSN mode), or undefined when it could not be read. */
  readonly lsn: bigint | undefined
}

export interface Session {
  /** Keyed by the database object, so a name reused after unregister() starts afresh. */
  readonly writes: Map<object, LastWrite>
}

const storage = new AsyncLocalStorage<Session>()

/** The session the caller runs in, if any. */
export const current = (): Session | undefined => storage.getStore()

/** Runs `f` in a session; inside one already, joins it. */
export const run = <A>(f: () => A): A => (storage.getStore() === undefined ? storage.run({ writes: new Map() }, f) : f())

/** A PostgreSQL LSN (`16/B374D848`) as a number that orders like the position. */
export const parseLsn = (text: unknown): bigint | undefined => {
  if (typeof text !== "string") return undefined
  const match = /^([0-9A-F]+)\/([0-9A-F]+)$/i.exec(text.trim())
  return match === null ? undefined : (BigInt(`0x${match[1]}`) << 32n) + BigInt(`0x${match[2]}`)
}

/** The tenant `withTenant()` runs in. */
export interface CurrentTenant {
  readonly name: string
  readonly client: unknown
}

const tenantStorage = new AsyncLocalStorage<CurrentTenant>()

export const currentTenant = (): CurrentTenant | undefined => tenantStorage.getStore()

export const inTenant = <A>(tenant: CurrentTenant, f: () => A): A => tenantStorage.run(tenant, f)
