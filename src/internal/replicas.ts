/**
 * A pair's reads: the balance policies, the routing client that `get(name, 'read')` returns (each query chooses
 * its replica when it is made, skips the ones that are down, and moves once to another when its replica turns out
 * unreachable), read-your-writes sessions, and the guard that keeps writes off a read client.
 */
import type * as MutableRef from "effect/MutableRef"
import type { PrismaClientLike } from "../Client.js"
import { CircuitOpenError, InvalidArgumentError, ReadOnlyError, ReplicaUnavailableError } from "../Errors.js"
import type { MemberRef, ReplicaInfo, ResolvedReplicaConfig } from "../Options.js"
import { errorSummary } from "../Redact.js"
import type { Target } from "./hotPath.js"
import { failsOver } from "./hotPath.js"
import * as Session from "./session.js"
import type { Dialect } from "./sql.js"
import { dialectOf, isRawQuery, isRawRead } from "./sql.js"

/** One client of a database, with its own breaker, counters and health. */
export interface Member extends Target {
  readonly ref: MemberRef
  readonly weight: number
  readonly bare: PrismaClientLike
  /** What `get()` hands out: intercepted (or bare with `intercept: false`). */
  readonly api: PrismaClientLike
  /**
   * What a `batch()` operation is given: the bare client with its reads run again after a lost connection (see
   * `readRuns`), made on the first batch; the bare client itself with `intercept: false`.
   */
  readonly batchClient: () => PrismaClientLike
  /** The client's SQL dialect (its provider), for raw SQL; undefined when it does not say. */
  readonly dialect: Dialect | undefined
  /** Up, as the routing sees it: set at once when a query finds the member unreachable. */
  readonly healthy: MutableRef.MutableRef<boolean>
  /** Takes the member out of rotation now; its status, hooks and reconnect follow in the background. */
  readonly takeDown: (error: unknown) => void
}

/** Model operations and raw calls that always write. */
const writes = new Set([
  "create",
  "createMany",
  "createManyAndReturn",
  "update",
  "updateMany",
  "updateManyAndReturn",
  "upsert",
  "delete",
  "deleteMany",
  "$executeRaw",
  "$executeRawUnsafe",
  "$runCommandRaw"
])

/**
 * A call that writes: a model write, `$executeRaw*`, or a `$queryRaw*` whose SQL is not a plain read (`UPDATE …
 * RETURNING`, `SELECT … FOR UPDATE`, a data-modifying WITH, DDL: see internal/sql.ts).
 */
export const isWrite = (operation: string, args: unknown, dialect: Dialect | undefined) =>
  writes.has(operation) || (isRawQuery(operation) && !isRawRead(operation, args, dialect))

/** What a router needs of its database. */
export interface Routed {
  readonly name: string
  readonly writer: Member
  readonly readers: ReadonlyArray<Member>
  readonly config: ResolvedReplicaConfig
  readonly now: () => number
}

interface Balancer {
  /** One of `candidates` (never empty); InvalidArgumentError when the app's balance function fails or strays. */
  readonly choose: (candidates: ReadonlyArray<Member>) => Member | InvalidArgumentError
}

const info = (m: Member): ReplicaInfo => ({
  index: m.ref.index,
  weight: m.weight,
  inFlight: m.counters.inFlight,
  totalQueries: m.counters.total,
  failedQueries: m.counters.failed
})

const safeJson = (u: unknown) => {
  try {
    return JSON.stringify(u) ?? typeof u
  } catch {
    return typeof u
  }
}

const balancer = (name: string, readers: ReadonlyArray<Member>, policy: ResolvedReplicaConfig["balance"]): Balancer => {
  // Smooth weighted round robin (as nginx does): even spread, in proportion to the weights, over whoever is healthy.
  const current: Array<number> = readers.map(() => 0)
  const roundRobin = (candidates: ReadonlyArray<Member>) => {
    if (candidates.length === 1) return candidates[0]!
    let total = 0
    let best = candidates[0]!
    let bestScore = -Infinity
    for (let i = 0; i < candidates.length; i++) {
      const m = candidates[i]!
      const score = (current[m.ref.index] = current[m.ref.index]! + m.weight)
      total += m.weight
      if (score > bestScore) {
        best = m
        bestScore = score
      }
    }
    current[best.ref.index] = bestScore - total
    return best
  }
  if (typeof policy === "function") {
    return {
      choose: (candidates) => {
        const infos = candidates.map(info)
        let chosen: ReplicaInfo
        try {
          chosen = policy(infos)
        } catch (error) {
          // The app's code failed: the read it was choosing for fails with it, typed, never thrown out of the call.
          return new InvalidArgumentError({
            path: `clients.${name}.balance`,
            reason: `the balance function threw: ${errorSummary(error)}`
          })
        }
        const i = infos.indexOf(chosen)
        const found = i >= 0 ? candidates[i] : candidates.find((m) => m.ref.index === chosen?.index)
        if (found === undefined) {
          return new InvalidArgumentError({
            path: `clients.${name}.balance`,
            reason: `the balance function must return one of the replicas it is given, got ${safeJson(chosen)}`
          })
        }
        return found
      }
    }
  }
  switch (policy) {
    case "random":
      return {
        choose: (candidates) => {
          let r = Math.random() * candidates.reduce((sum, m) => sum + m.weight, 0)
          for (const m of candidates) if ((r -= m.weight) < 0) return m
          return candidates[candidates.length - 1]!
        }
      }
    case "least-busy":
      return {
        choose: (candidates) => {
          const least = Math.min(...candidates.map((m) => m.counters.inFlight))
          return roundRobin(candidates.filter((m) => m.counters.inFlight === least))
        }
      }
    default:
      return { choose: roundRobin }
  }
}

/** A write refused without being sent. */
const refuse = (database: string, reason: "read-client" | "prevented", operation: string) => () =>
  Promise.reject(new ReadOnlyError({ database, operation, reason }))

/**
 * A raw query that refuses its SQL, without sending it, when the SQL may write. A tagged template's `this` is
 * whatever it was read from: the call goes to `target`, as Prisma's own method would.
 */
const rawGuard = (
  target: object,
  key: string,
  fn: (...args: Array<unknown>) => unknown,
  database: string,
  reason: "read-client" | "prevented",
  dialect: Dialect | undefined
) =>
(...args: Array<unknown>) =>
  isRawRead(key, args, dialect) ? Reflect.apply(fn, target, args) : refuse(database, reason, key)()

/**
 * A proxy that refuses every write without sending it: model write methods, `$executeRaw*`, and `$queryRaw*` whose
 * SQL may write.
 */
export const readOnly = <C extends object>(
  client: C,
  database: string,
  reason: "read-client" | "prevented",
  dialect: Dialect | undefined = dialectOf(client)
): C =>
  new Proxy(client, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver)
      if (typeof key !== "string") return value
      if (key.startsWith("$")) {
        if (writes.has(key)) return refuse(database, reason, key)
        if (!isRawQuery(key) || typeof value !== "function") return value
        return rawGuard(target, key, value as (...args: Array<unknown>) => unknown, database, reason, dialect)
      }
      if (typeof value !== "object" || value === null) return value
      const model = `${key.charAt(0).toUpperCase()}${key.slice(1)}`
      return new Proxy(value, {
        get: (m, method, r) =>
          typeof method === "string" && writes.has(method)
            ? refuse(database, reason, `${model}.${method}`)
            : Reflect.get(m, method, r)
      })
    }
  })

/** The replica positions fetched lately, per member (LSN mode). */
interface Position {
  at: number
  lsn: bigint | undefined
  pending: Promise<bigint | undefined> | undefined
}

export interface Router {
  /** The routing client for `get(name, 'read')`. */
  readonly client: PrismaClientLike
  /**
   * The member a read made now goes to (the writer under fallback); a failure to reject with: no healthy replica,
   * or an app balance function that threw or returned a stranger.
   */
  readonly pick: (operation: string) => Member | ReplicaUnavailableError | InvalidArgumentError
  /**
   * Runs `call` on the member a read made now goes to; when that replica turns out unreachable, takes it out of
   * rotation and runs `call` once more on another member (`failsOver`). Rejects with ReplicaUnavailableError or
   * InvalidArgumentError (the app's balance function) when no member can be chosen.
   */
  readonly read: <A>(operation: string, call: (member: Member) => PromiseLike<A>) => PromiseLike<A>
  /** As `read`, on a member already chosen (by `pick`). */
  readonly readOn: <A>(member: Member, operation: string, call: (member: Member) => PromiseLike<A>) => PromiseLike<A>
  /** Call after a write through the writer succeeded inside a session: remembers it (and the WAL position). */
  readonly wrote: (session: Session.Session) => Promise<void>
}

/**
 * The reads of a pair. Every query through `client` picks its member when it is made: a healthy replica by the
 * policy, the writer when the session wrote lately (or no replica is healthy, under `fallback: 'primary'`).
 */
export const makeRouter = (db: Routed): Router => {
  const { config, name, readers, writer } = db
  const { choose } = balancer(name, readers, config.balance)
  const dialect = writer.dialect
  const ryw = config.readYourWrites
  const positions = new Map(readers.map((m): [Member, Position] => [m, { at: -Infinity, lsn: undefined, pending: undefined }]))

  /** The replicas a read may go to; the list itself, with no allocation, while every replica is healthy. */
  const healthy = (exclude?: Member): ReadonlyArray<Member> => {
    if (exclude === undefined) {
      let all = true
      for (let i = 0; i < readers.length; i++) {
        if (!readers[i]!.healthy.current) {
          all = false
          break
        }
      }
      if (all) return readers
    }
    return readers.filter((m) => m !== exclude && m.healthy.current)
  }
  const fallback = (operation: string): Member | ReplicaUnavailableError =>
    config.fallback === "primary" ? writer : new ReplicaUnavailableError({ database: name, operation, replicas: readers.length })

  /** A session's last write to this database, if it still counts. */
  const lastWrite = (): Session.LastWrite | undefined => {
    const session = Session.current()
    const last = session?.writes.get(db)
    if (last === undefined) return undefined
    if (ryw.mode === "window" || last.lsn === undefined) return db.now() - last.at < ryw.window ? last : undefined
    return last
  }

  const pick = (operation: string, exclude?: Member): Member | ReplicaUnavailableError | InvalidArgumentError => {
    if (exclude === undefined && lastWrite() !== undefined) return writer
    const candidates = healthy(exclude)
    return candidates.length === 0 ? fallback(operation) : choose(candidates)
  }

  /** Where a replica has replayed to, asked at most once per `lsnCacheTime`. */
  const replayed = (m: Member): Promise<bigint | undefined> => {
    const p = positions.get(m)!
    if (db.now() - p.at < ryw.lsnCacheTime) return Promise.resolve(p.lsn)
    return p.pending ??= Promise.resolve(m.bare.$queryRawUnsafe("SELECT pg_last_wal_replay_lsn()::text AS lsn")).then(
      (rows) => {
        p.lsn = Session.parseLsn((rows as Array<{ lsn?: unknown }>)[0]?.lsn)
        p.at = db.now()
        p.pending = undefined
        return p.lsn
      },
      () => {
        p.pending = undefined
        return undefined
      }
    )
  }

  /** LSN mode after a write: a healthy replica that has replayed that far, else the writer. */
  const pickCaughtUp = (need: bigint): Promise<Member | InvalidArgumentError> =>
    Promise.all(healthy().map((m) => replayed(m).then((lsn) => (lsn !== undefined && lsn >= need ? m : undefined))))
      .then((ready) => {
        const candidates = ready.filter((m): m is Member => m !== undefined)
        return candidates.length === 0 ? writer : choose(candidates)
      })

  /** Runs a read on a member; if the member turns out unreachable, takes it out and runs the read once more elsewhere. */
  const attempt = <A>(member: Member, operation: string, call: (member: Member) => PromiseLike<A>): PromiseLike<A> => {
    // `then` straight on Prisma's promise: Promise.resolve() around it would cost a thenable job per read.
    const first = call(member)
    if (member === writer) return first
    return first.then(undefined, (error) => {
      if (!failsOver(error)) throw error
      member.takeDown(error)
      const next = pick(operation, member)
      if (next instanceof ReplicaUnavailableError) throw error
      if (next instanceof InvalidArgumentError) throw next
      return call(next)
    })
  }

  const read = <A>(operation: string, call: (member: Member) => PromiseLike<A>): PromiseLike<A> => {
    const last = ryw.mode === "lsn" ? lastWrite() : undefined
    if (last?.lsn !== undefined) {
      return pickCaughtUp(last.lsn).then((m) => (m instanceof InvalidArgumentError ? Promise.reject(m) : attempt(m, operation, call)))
    }
    const member = pick(operation)
    return member instanceof ReplicaUnavailableError || member instanceof InvalidArgumentError
      ? Promise.reject(member)
      : attempt(member, operation, call)
  }

  const transaction = (arg: unknown, options?: unknown) => {
    if (typeof arg !== "function") {
      return Promise.reject(
        new InvalidArgumentError({
          path: "$transaction",
          reason: `a read client runs interactive transactions only: $transaction(async (tx) => …) on get('${name}', 'read')`
        })
      )
    }
    const member = pick("$transaction")
    if (member instanceof ReplicaUnavailableError || member instanceof InvalidArgumentError) return Promise.reject(member)
    // One member runs the whole transaction; writes inside it are refused like any other on a read client.
    return (member.api as any).$transaction((tx: object) => arg(readOnly(tx, name, "read-client", dialect)), options)
  }

  // A model's proxy and its methods are made once and kept: a read costs two Map lookups before it picks a member.
  // The proxies' targets are plain objects, not Prisma's: after every trap V8 checks the result against the target's
  // own property, and asking a Prisma client or model for one costs microseconds (3 µs a read, measured).
  const models = new Map<string, object>()
  const model = (key: string, value: object) => {
    const label = `${key.charAt(0).toUpperCase()}${key.slice(1)}`
    const methods = new Map<string, unknown>()
    const proxy = new Proxy({}, {
      get: (_, method) => {
        if (typeof method !== "string") return Reflect.get(value, method)
        const known = methods.get(method)
        if (known !== undefined) return known
        const fn = Reflect.get(value, method)
        if (typeof fn !== "function") return fn
        const operation = `${label}.${method}`
        const routed = writes.has(method)
          ? refuse(name, "read-client", operation)
          : (...args: Array<unknown>) => read(operation, (m) => (m.api as any)[key][method](...args))
        methods.set(method, routed)
        return routed
      },
      has: (_, method) => Reflect.has(value, method)
    })
    models.set(key, proxy)
    return proxy
  }

  const api = writer.api as object
  const client = new Proxy({}, {
    get(_, key) {
      if (typeof key !== "string") return Reflect.get(api, key)
      const known = models.get(key)
      if (known !== undefined) return known
      if (key === "$transaction") return transaction
      const value = Reflect.get(api, key)
      if (key.startsWith("$")) {
        if (writes.has(key)) return refuse(name, "read-client", key)
        if (isRawQuery(key)) {
          // Its SQL decides: a write is refused here, never sent to a replica (or to a writer standing in for one).
          return (...args: Array<unknown>) =>
            isRawRead(key, args, dialect) ? read(key, (m) => (m.api as any)[key](...args)) : refuse(name, "read-client", key)()
        }
        return value
      }
      return typeof value === "object" && value !== null ? model(key, value) : value
    },
    has: (_, key) => Reflect.has(api, key)
  }) as PrismaClientLike

  const wrote = (session: Session.Session): Promise<void> => {
    const at = db.now()
    if (ryw.mode === "window") {
      session.writes.set(db, { at, lsn: undefined })
      return Promise.resolve()
    }
    return Promise.resolve(writer.bare.$queryRawUnsafe("SELECT pg_current_wal_lsn()::text AS lsn")).then(
      (rows) => {
        session.writes.set(db, { at, lsn: Session.parseLsn((rows as Array<{ lsn?: unknown }>)[0]?.lsn) })
      },
      // The position could not be read: the window keeps the session's reads on the writer meanwhile.
      () => {
        session.writes.set(db, { at, lsn: undefined })
      }
    )
  }

  return { client, pick: (operation) => pick(operation), read, readOn: attempt, wrote }
}

