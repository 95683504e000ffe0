/**
 * Request context. Read-your-writes sessions remember, per database, when the session last wrote to it and, in LSN
 * mode, the writer's WAL position after that write; the current tenant is the one of the enclosing `withTenant`. The
 * hot path reads both from AsyncLocalStorage (the Promise face sets them there). The Effect face keeps them in
 * FiberRefs and enters AsyncLocalStorage only where Prisma runs (`bind`, `enter`).
 */
import * as FiberRef from "effect/FiberRef"
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

/** The Effect API's request context: the session of the enclosing `withSession`, if any. */
export const sessionRef: FiberRef.FiberRef<Session | undefined> = FiberRef.unsafeMake<Session | undefined>(undefined)

/** The Effect API's request context: the tenant of the enclosing `withTenant`, if any. */
export const tenantRef: FiberRef.FiberRef<CurrentTenant | undefined> = FiberRef.unsafeMake<CurrentTenant | undefined>(
  undefined
)

/** Runs `f` in `session` (AsyncLocalStorage), for Prisma calls made on behalf of an Effect inside `withSession`. */
export const enter = <A>(session: Session, f: () => A): A => storage.run(session, f)

const bound = new WeakMap<object, WeakMap<Session, unknown>>()

/**
 * A view of `client` whose calls run in `session`: the bridge from the Effect API's fiber-local session to the
 * AsyncLocalStorage the hot path reads, made only where Prisma runs. A Prisma query is lazy — it is sent when `then`
 * is called — so the `then` of what a call returns runs in the session too. Views are kept per client and session.
 */
export const bind = <C>(client: C, session: Session): C => {
  if (typeof client !== "object" || client === null) return client
  let views = bound.get(client)
  if (views === undefined) bound.set(client, views = new WeakMap())
  const known = views.get(session)
  if (known !== undefined) return known as C
  const view = new Proxy(client, {
    get(target, key) {
      const value = Reflect.get(target, key)
      if (typeof value === "function") {
        return (...args: Array<unknown>) => {
          const out = storage.run(session, () => value.apply(target, args))
          return isThenable(out) ? inSession(out, session) : out
        }
      }
      // A model delegate (`client.user`): its methods run in the session too.
      return typeof value === "object" && value !== null && typeof key === "string" && !key.startsWith("_")
        ? bind(value, session)
        : value
    }
  })
  views.set(session, view)
  return view
}

const isThenable = (u: unknown): u is PromiseLike<unknown> =>
  (typeof u === "object" || typeof u === "function") && u !== null && typeof (u as PromiseLike<unknown>).then === "function"

/** The promise itself (a PrismaPromise stays one, for `$transaction([...])`), its `then` run in the session. */
const inSession = <P extends PromiseLike<unknown>>(promise: P, session: Session): P =>
  new Proxy(promise, {
    get: (target, key) =>
      key === "then"
        ? (onFulfilled?: (a: unknown) => unknown, onRejected?: (e: unknown) => unknown) =>
          storage.run(session, () => target.then(onFulfilled, onRejected))
        : Reflect.get(target, key)
  })
