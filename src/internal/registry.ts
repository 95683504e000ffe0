/**
 * The registry of one flexidb instance: a plain Map read synchronously by `get()`, one child Scope per database.
 * Both the Effect service (FlexiDB.ts) and the Promise facade (createFlexiDB.ts) are thin shells over this.
 */
import { Deferred, Effect, ExecutionStrategy, Exit, Runtime, Scope } from "effect"
import type { ClientEntry, DBStats, MiddlewareFn, PrismaClientLike, Role } from "../Client.js"
import {
  BatchError,
  ClosedError,
  DuplicateDatabaseError,
  InvalidArgumentError,
  UnknownDatabaseError,
  UnknownGroupError
} from "../Errors.js"
import type { ResolvedOptions } from "../Options.js"
import type { DatabaseState, Env } from "./database.js"
import { clientFor, makeDatabase, runOperation, snapshot, splitEntry, validateName } from "./database.js"
import { check, markDown, release, supervise } from "./lifecycle.js"

interface Entry {
  readonly db: DatabaseState
  readonly scope: Scope.CloseableScope
  readonly connected: Deferred.Deferred<boolean>
}

/** The outcome of one database's operation in `batchSettled()`. */
export type Settled<A> =
  | { readonly status: "fulfilled"; readonly value: A }
  | { readonly status: "rejected"; readonly reason: unknown }

/** Sets a key as an own property, whatever it is (`__proto__` included): never touches Object.prototype. */
const define = <A>(target: Record<string, A>, key: string, value: A) => {
  // Only `__proto__` has a setter on a plain object; every other key is a plain (and much faster) assignment.
  if (key === "__proto__") Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
  else target[key] = value
}

/** Builds a record with `define`. */
export const record = <A>(entries: Iterable<readonly [string, A]>): Record<string, A> => {
  const out: Record<string, A> = {}
  for (const [k, v] of entries) define(out, k, v)
  return out
}

/** How each operation of a batch ended, in the order the operations were given. */
export interface BatchRun {
  readonly names: ReadonlyArray<string>
  readonly ok: ReadonlyArray<boolean>
  /** The value, or the error where `ok` is false. */
  readonly values: ReadonlyArray<unknown>
}

/** `batch()`'s answer: `{ name: value }`, or BatchError naming each failed database. */
export const batchResults = ({ names, ok, values }: BatchRun): Record<string, unknown> => {
  const results: Record<string, unknown> = {}
  const failures: Record<string, unknown> = {}
  let failed = false
  names.forEach((name, i) => {
    if (ok[i]) define(results, name, values[i])
    else {
      define(failures, name, values[i])
      failed = true
    }
  })
  if (failed) throw new BatchError({ failures, results })
  return results
}

/** `batchSettled()`'s answer: each database's outcome. */
export const settledResults = ({ names, ok, values }: BatchRun): Record<string, Settled<unknown>> => {
  const settled: Record<string, Settled<unknown>> = {}
  names.forEach((name, i) =>
    define(settled, name, ok[i] ? { status: "fulfilled", value: values[i] } : { status: "rejected", reason: values[i] })
  )
  return settled
}

const ownKeys = (ops: object, path: string): ReadonlyArray<string> => {
  if (typeof ops !== "object" || ops === null || Array.isArray(ops)) {
    throw new InvalidArgumentError({ path, reason: "expected an object mapping database names to functions" })
  }
  return Object.keys(ops)
}

export interface Registry {
  readonly env: Env
  readonly unsafeGet: (name: string, role?: Role) => PrismaClientLike
  readonly unsafeRegister: (name: string, entry: ClientEntry) => void
  readonly unregister: (name: string) => Effect.Effect<void, UnknownDatabaseError | ClosedError>
  readonly unsafeUse: (middleware: MiddlewareFn) => () => void
  readonly batch: (ops: Record<string, (client: any) => PromiseLike<unknown>>) => Promise<Record<string, unknown>>
  readonly batchSettled: (
    ops: Record<string, (client: any) => PromiseLike<unknown>>
  ) => Promise<Record<string, Settled<unknown>>>
  readonly unsafeDefineGroup: (name: string, members: ReadonlyArray<string>) => ReadonlyArray<string>
  readonly unsafeGroupMembers: (name: string) => ReadonlyArray<string>
  readonly list: () => Array<string>
  readonly health: (names?: ReadonlyArray<string>) => Effect.Effect<Record<string, boolean>>
  readonly stats: () => Record<string, DBStats>
  readonly ready: Effect.Effect<Record<string, boolean>>
  readonly close: Effect.Effect<void>
  readonly isClosed: () => boolean
}

/**
 * Builds a registry whose databases live in `parent`. Every name and entry is checked before any database is
 * registered, so invalid input changes nothing.
 */
export const makeRegistry = (
  clients: Readonly<Record<string, ClientEntry>>,
  options: ResolvedOptions
): Effect.Effect<Registry, InvalidArgumentError, Scope.Scope> =>
  Effect.gen(function*() {
    if (typeof clients !== "object" || clients === null || Array.isArray(clients)) {
      return yield* new InvalidArgumentError({
        path: "clients",
        reason: "expected an object mapping database names to Prisma clients or { read, write } pairs"
      })
    }
    const initial = Object.entries(clients)
    yield* Effect.try({
      try: () => initial.forEach(([name, entry]) => splitEntry(validateName(name), entry)),
      catch: (e) => e as InvalidArgumentError
    })

    // Each database's scope is a child of this one. It is forked before close() is added as a finalizer, so when
    // the instance's scope closes, close() runs first: the instance reads as closed before any database is released,
    // and every database is released at once rather than one after another.
    const databases = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.parallel)
    const runtime = yield* Effect.runtime<never>()
    const runFork = Runtime.runFork(runtime)
    const entries = new Map<string, Entry>()
    const groups = new Map<string, ReadonlyArray<string>>()
    let closed = false

    const env: Env = {
      options,
      clock: yield* Effect.clock,
      runtime,
      middleware: [],
      onFoundDown: (db, error) => {
        runFork(markDown(db, env, error))
      }
    }

    const names = () => [...entries.keys()]
    const ensureOpen = (operation: string) => {
      if (closed) throw new ClosedError({ operation })
    }
    const unknownDatabase = (name: string) => new UnknownDatabaseError({ database: String(name), registered: names() })
    const lookup = (name: string): Entry => {
      const entry = entries.get(name)
      if (entry === undefined) throw unknownDatabase(name)
      return entry
    }

    const unsafeRegister = (name: string, entry: ClientEntry) => {
      ensureOpen(`register('${name}')`)
      validateName(name)
      if (entries.has(name)) throw new DuplicateDatabaseError({ database: name })
      const db = makeDatabase(name, entry, env)
      const scope = Effect.runSync(Scope.fork(databases, ExecutionStrategy.sequential))
      const connected = Effect.runSync(Deferred.make<boolean>())
      Effect.runSync(Scope.addFinalizer(scope, release(db, env)))
      entries.set(name, { db, scope, connected })
      runFork(Effect.forkIn(supervise(db, env, scope, connected), scope))
    }

    const unregister = (name: string): Effect.Effect<void, UnknownDatabaseError | ClosedError> =>
      Effect.suspend((): Effect.Effect<void, UnknownDatabaseError | ClosedError> => {
        if (closed) return Effect.fail(new ClosedError({ operation: `unregister('${name}')` }))
        const entry = entries.get(name)
        if (entry === undefined) return Effect.fail(unknownDatabase(name))
        // Gone from get() at once; its fibers end and its clients disconnect as the scope closes.
        entries.delete(name)
        for (const [group, members] of groups) {
          if (members.includes(name)) groups.set(group, members.filter((m) => m !== name))
        }
        return Effect.zipRight(Scope.close(entry.scope, Exit.void), Deferred.succeed(entry.connected, false)).pipe(
          Effect.asVoid
        )
      })

    /**
     * Checks every name and operation before starting any (a bad one rejects and nothing runs), then runs them all
     * and answers once each has ended. Inside a batch the bare client is used: the batch operation is counted once,
     * its queries not again.
     */
    const batchWith = <R>(answer: (run: BatchRun) => R) =>
    (ops: Record<string, (client: any) => PromiseLike<unknown>>): Promise<R> => {
      let keys: ReadonlyArray<string>
      let targets: Array<DatabaseState>
      try {
        ensureOpen("batch()")
        keys = ownKeys(ops, "batch operations")
        targets = keys.map((name) => {
          if (typeof ops[name] !== "function") {
            throw new InvalidArgumentError({ path: `batch.${name}`, reason: `expected a function (client) => Promise` })
          }
          return lookup(name).db
        })
      } catch (error) {
        return Promise.reject(error)
      }
      const ok: Array<boolean> = new Array(targets.length)
      const values: Array<unknown> = new Array(targets.length)
      return new Promise<R>((resolve, reject) => {
        let pending = targets.length
        const finish = () => {
          try {
            resolve(answer({ names: keys, ok, values }))
          } catch (error) {
            reject(error)
          }
        }
        if (pending === 0) return finish()
        const ended = (i: number, fulfilled: boolean, value: unknown) => {
          values[i] = value
          ok[i] = fulfilled
          if (--pending === 0) finish()
        }
        // The operations start on a microtask of their own, from a nearly empty stack: Prisma captures the call stack
        // of every query (for its error messages), and each frame under the query, flexidb's or the caller's, costs
        // that capture time.
        void Promise.resolve().then(() => {
          for (let i = 0; i < targets.length; i++) {
            const db = targets[i]!
            // Unregistered or disconnected since batch() was called: its client is closing, so nothing is sent.
            if (closed || db.closed) {
              ended(i, false, closed ? new ClosedError({ operation: "batch()" }) : unknownDatabase(db.name))
              continue
            }
            runOperation(db, env, "batch", ops[keys[i]!]!, clientFor(db, "write", "bare")).then(
              (value) => ended(i, true, value),
              (error) => ended(i, false, error)
            )
          }
        })
      })
    }

    const registry: Registry = {
      env,
      unsafeGet: (name, role) => {
        if (closed) ensureOpen(`get('${name}')`)
        return clientFor(lookup(name).db, role)
      },
      unsafeRegister,
      unregister,
      unsafeUse: (middleware) => {
        if (typeof middleware !== "function") {
          throw new InvalidArgumentError({ path: "middleware", reason: "expected a function (database, operation, next)" })
        }
        env.middleware = [...env.middleware, middleware]
        return () => {
          env.middleware = env.middleware.filter((m) => m !== middleware)
        }
      },
      batch: batchWith(batchResults),
      batchSettled: batchWith(settledResults),
      unsafeDefineGroup: (name, members) => {
        ensureOpen(`group('${name}')`)
        validateName(name)
        if (!Array.isArray(members)) {
          throw new InvalidArgumentError({ path: `group('${name}')`, reason: "expected an array of database names" })
        }
        members.forEach(lookup)
        const list = [...new Set(members)]
        groups.set(name, list)
        return list
      },
      unsafeGroupMembers: (name) => {
        const members = groups.get(name)
        if (members === undefined) throw new UnknownGroupError({ group: String(name), defined: [...groups.keys()] })
        return members
      },
      list: names,
      health: (only) =>
        Effect.suspend(() => {
          const dbs = (only ?? names()).flatMap((n) => {
            const e = entries.get(n)
            return e === undefined ? [] : [e.db]
          })
          return Effect.forEach(dbs, (db) => Effect.map(check(db, env), (ok) => [db.name, ok] as const), {
            concurrency: "unbounded"
          }).pipe(Effect.map(record))
        }),
      stats: () => record([...entries.values()].map((e) => [e.db.name, snapshot(e.db)])),
      ready: Effect.suspend(() =>
        Effect.forEach([...entries.values()], (e) => Effect.map(Deferred.await(e.connected), (ok) => [e.db.name, ok] as const))
          .pipe(Effect.map(record))
      ),
      close: Effect.suspend(() => {
        if (closed) return Effect.void
        closed = true
        const all = [...entries.values()]
        entries.clear()
        groups.clear()
        return Effect.forEach(all, (e) => Scope.close(e.scope, Exit.void), { concurrency: "unbounded", discard: true })
      }),
      isClosed: () => closed
    }

    yield* Effect.addFinalizer(() => registry.close)
    for (const [name, entry] of initial) unsafeRegister(name, entry)
    return registry
  })
