/**
 * The registry of one flexidb instance: databases made by `database.make`, each in a child Scope of the
 * instance's, kept in a plain Map that `get()` reads synchronously. Everything here is an Effect except the hot
 * paths, which the facades call directly: `find` and `client` (a Map lookup, and its error) and `batch` (Prisma's
 * promises).
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as MutableRef from "effect/MutableRef"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import type { ClientEntry, DBStats, MiddlewareFn, PrismaClientLike, Role, Settled } from "../Client.js"
import {
  BatchError,
  ClosedError,
  DuplicateDatabaseError,
  InvalidArgumentError,
  UnknownDatabaseError,
  UnknownGroupError
} from "../Errors.js"
import type { ResolvedOptions } from "../Options.js"
import type { Db } from "./database.js"
import { forkIn, invalidRole, isolated, make as makeDatabase, makeEnv, splitEntry, validate, validateName } from "./database.js"
import { runOperation } from "./hotPath.js"
import { readOnly } from "./replicas.js"
import type { Tenants } from "./tenants.js"
import { make as makeTenants } from "./tenants.js"

interface Entry {
  readonly db: Db
  readonly scope: Scope.CloseableScope
  readonly connected: Deferred.Deferred<boolean>
}

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

/** `batch()`'s answer: `{ name: value }`, or the BatchError naming each failed database. */
export const batchOutcome = ({ names, ok, values }: BatchRun): Record<string, unknown> | BatchError => {
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
  return failed ? new BatchError({ failures, results }) : results
}

/** `batchSettled()`'s answer: each database's outcome. */
export const settledResults = ({ names, ok, values }: BatchRun): Record<string, Settled<unknown>> => {
  const settled: Record<string, Settled<unknown>> = {}
  names.forEach((name, i) =>
    define(settled, name, ok[i] ? { status: "fulfilled", value: values[i] } : { status: "rejected", reason: values[i] })
  )
  return settled
}

/** A batch operation as the core runs it: given the bare client, it returns a promise or a plain value. */
export type Operation = (client: any) => unknown

const validRole = (role: unknown): role is Role | undefined => role === undefined || role === "read" || role === "write"

export interface Registry {
  /** The hot path of `get()`: the database, or undefined (not registered, or the instance is closed). */
  readonly find: (name: string) => Db | undefined
  /** The client for a role, or why there is none (for the error path of `get()`; `find` is the fast path). */
  readonly client: (name: string, role: unknown) => PrismaClientLike | UnknownDatabaseError | ClosedError | InvalidArgumentError
  /** `tenant`: registered by the tenant cache (its spans and metrics say so). */
  readonly register: (
    name: string,
    entry: ClientEntry,
    tenant?: boolean
  ) => Effect.Effect<void, DuplicateDatabaseError | InvalidArgumentError | ClosedError>
  readonly unregister: (name: string) => Effect.Effect<void, UnknownDatabaseError | ClosedError>
  /** Adds middleware; the effect it succeeds with removes it. */
  readonly use: (middleware: MiddlewareFn) => Effect.Effect<Effect.Effect<void>, InvalidArgumentError>
  /**
   * The hot path of `batch()`: checks every name and operation before starting any (a bad one rejects and
   * nothing runs), runs them all, and resolves `answer` of the outcomes once each has ended.
   */
  readonly batch: <R>(ops: Record<string, Operation>, answer: (run: BatchRun) => R) => Promise<R>
  readonly defineGroup: (
    name: string,
    members: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<string>, UnknownDatabaseError | InvalidArgumentError | ClosedError>
  readonly groupMembers: (name: string) => Effect.Effect<ReadonlyArray<string>, UnknownGroupError>
  readonly list: Effect.Effect<Array<string>>
  readonly health: (names?: ReadonlyArray<string>) => Effect.Effect<Record<string, boolean>>
  readonly stats: Effect.Effect<Record<string, DBStats>>
  readonly ready: Effect.Effect<Record<string, boolean>>
  /** The tenant cache, when the `tenants` option is set. */
  readonly tenants: Tenants | undefined
  /**
   * Refuses every write to `name` until the returned function is called; or why it cannot (a name not served).
   */
  readonly preventWrites: (name: string) => (() => void) | UnknownDatabaseError | ClosedError
  /** The metrics in Prometheus' text format, with the `prometheus` option. */
  readonly metrics: (() => Promise<string>) | undefined
  /** Waits for one database's first connection attempt to settle: whether it connected. */
  readonly connected: (name: string) => Effect.Effect<boolean>
  readonly close: Effect.Effect<void>
  /** Whether the instance was closed (its scope, or `disconnect()`). */
  readonly isClosed: () => boolean
}

/**
 * Builds a registry in the current scope, with `clients` registered. Every name and entry is checked before any
 * database is registered, so invalid input changes nothing. `observe` sees every operation (flexidb/testing).
 */
export const make = (
  clients: Readonly<Record<string, ClientEntry>>,
  options: ResolvedOptions,
  observe?: (database: string, operation: string) => void
): Effect.Effect<Registry, InvalidArgumentError, Scope.Scope> =>
  Effect.gen(function*() {
    if (typeof clients !== "object" || clients === null || Array.isArray(clients)) {
      return yield* new InvalidArgumentError({
        path: "clients",
        reason: "expected an object mapping database names to Prisma clients or { read, write } pairs"
      })
    }
    const initial = Object.entries(clients)
    yield* validate(() => initial.forEach(([name, entry]) => splitEntry(validateName(name), entry)))

    // Each database's scope is a child of this one. It is forked before close() is added as a finalizer, so when
    // the instance's scope closes, close() runs first: the instance reads as closed before any database is released,
    // and every database is released at once rather than one after another.
    const databases = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.parallel)
    const env = yield* makeEnv(options, observe)
    const entries = new Map<string, Entry>()
    const groups = new Map<string, ReadonlyArray<string>>()
    /** Names whose register() is under way. */
    const registering = new Set<string>()
    const closed = MutableRef.make(false)

    const names = () => [...entries.keys()]
    const unknown = (name: string) => new UnknownDatabaseError({ database: String(name), registered: names() })
    const refuse = (name: string, operation: string) =>
      closed.current ? new ClosedError({ operation }) : unknown(name)
    const ifOpen = <A, E>(operation: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E | ClosedError> =>
      Effect.suspend((): Effect.Effect<A, E | ClosedError> =>
        closed.current ? Effect.fail(new ClosedError({ operation })) : effect
      )

    const register = (name: string, entry: ClientEntry, tenant = false) =>
      ifOpen(
        `register('${name}')`,
        Effect.gen(function*() {
          yield* validate(() => validateName(name))
          // The name is taken before the first yield: a register of the same name meanwhile is a duplicate.
          if (entries.has(name) || registering.has(name)) return yield* new DuplicateDatabaseError({ database: name })
          registering.add(name)
          const made = yield* Effect.ensuring(
            Effect.gen(function*() {
              const scope = yield* Scope.fork(databases, ExecutionStrategy.sequential)
              const made = yield* Effect.exit(Scope.extend(makeDatabase(name, entry, env, tenant), scope))
              if (Exit.isFailure(made)) {
                yield* Scope.close(scope, Exit.void)
                return yield* Effect.failCause(made.cause)
              }
              const connected = yield* Deferred.make<boolean>()
              const added: Entry = { db: made.value, scope, connected }
              // Closed meanwhile: this database is closed at once, never served.
              if (closed.current) {
                yield* Scope.close(scope, Exit.void)
                return yield* new ClosedError({ operation: `register('${name}')` })
              }
              entries.set(name, added)
              return added
            }),
            Effect.sync(() => registering.delete(name))
          )
          const { connected, db, scope } = made
          // Connects in the background: a database that is down is found down and reconnects; register never waits.
          const run = db.connect.pipe(
            Effect.as(true),
            Effect.catchAll((error) => Effect.as(db.markDown(error), false)),
            Effect.flatMap((ok) => Deferred.succeed(connected, ok)),
            Effect.zipRight(db.watch)
          )
          yield* forkIn(env, run, scope)
        })
      )

    const unregister = (name: string) =>
      ifOpen(
        `unregister('${name}')`,
        Effect.suspend(() => {
          const entry = entries.get(name)
          if (entry === undefined) return Effect.fail(unknown(name))
          // Gone from get() at once; its fibers end and its clients disconnect as the scope closes.
          entries.delete(name)
          for (const [group, members] of groups) {
            if (members.includes(name)) groups.set(group, members.filter((m) => m !== name))
          }
          return Effect.zipRight(isolated(env, Scope.close(entry.scope, Exit.void)), Deferred.succeed(entry.connected, false)).pipe(
            Effect.asVoid
          )
        })
      )

    const batch = <R>(ops: Record<string, Operation>, answer: (run: BatchRun) => R): Promise<R> => {
      if (closed.current) return Promise.reject(new ClosedError({ operation: "batch()" }))
      if (typeof ops !== "object" || ops === null || Array.isArray(ops)) {
        return Promise.reject(
          new InvalidArgumentError({ path: "batch operations", reason: "expected an object mapping database names to functions" })
        )
      }
      const keys = Object.keys(ops)
      const targets: Array<Db> = new Array(keys.length)
      for (let i = 0; i < keys.length; i++) {
        const name = keys[i]!
        if (typeof ops[name] !== "function") {
          return Promise.reject(
            new InvalidArgumentError({ path: `batch.${name}`, reason: `expected a function (client) => Promise` })
          )
        }
        const entry = entries.get(name)
        if (entry === undefined) return Promise.reject(unknown(name))
        targets[i] = entry.db
      }
      const ok: Array<boolean> = new Array(targets.length)
      const values: Array<unknown> = new Array(targets.length)
      // One parent span, its operations' spans its children.
      const parent = env.telemetry?.batch()
      return new Promise<R>((resolve, reject) => {
        let pending = targets.length
        const finish = () => {
          const failed = ok.indexOf(false)
          parent?.end(0, failed >= 0, values[failed])
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
        const start = () => {
          for (let i = 0; i < targets.length; i++) {
            const db = targets[i]!
            // Unregistered or disconnected since batch() was called: its client is closing, so nothing is sent.
            if (closed.current || db.isClosed()) {
              ended(i, false, closed.current ? new ClosedError({ operation: "batch()" }) : unknown(db.name))
              continue
            }
            const writer = db.writer
            // Under preventWrites, a batch's writes are refused like any other.
            const bare = writer.batchClient()
            const client = db.prevented.current > 0 ? readOnly(bare, db.name, "prevented") : bare
            runOperation(writer, "batch", ops[keys[i]!] as (c: unknown) => PromiseLike<unknown>, client).then(
              (value) => ended(i, true, value),
              (error) => ended(i, false, error)
            )
          }
        }
        void Promise.resolve().then(parent === undefined ? start : () => parent.run(start))
      })
    }

    const close = Effect.suspend(() => {
      if (closed.current) return Effect.void
      closed.current = true
      const all = [...entries.values()]
      entries.clear()
      groups.clear()
      // A ready() still waiting gets its answer: these databases never connected.
      return Effect.forEach(
        all,
        (e) => Effect.zipRight(Scope.close(e.scope, Exit.void), Deferred.succeed(e.connected, false)),
        { concurrency: "unbounded", discard: true }
      )
    })

    const registry: Omit<Registry, "tenants"> = {
      find: (name) => entries.get(name)?.db,
      client: (name, role) => {
        const entry = entries.get(name)
        if (entry === undefined) return refuse(name, `get('${name}')`)
        if (!validRole(role)) {
          return invalidRole(role)
        }
        return entry.db.clientFor(role)
      },
      register,
      unregister,
      use: (middleware) =>
        typeof middleware !== "function"
          ? Effect.fail(new InvalidArgumentError({ path: "middleware", reason: "expected a function (database, operation, next)" }))
          : Effect.sync(() => {
            env.middleware.current = [...env.middleware.current, middleware]
            return Effect.sync(() => {
              env.middleware.current = env.middleware.current.filter((m) => m !== middleware)
            })
          }),
      batch,
      defineGroup: (name, members) =>
        ifOpen(
          `group('${name}')`,
          validate(() => {
            validateName(name)
            if (!Array.isArray(members)) {
              throw new InvalidArgumentError({ path: `group('${name}')`, reason: "expected an array of database names" })
            }
            return members
          }).pipe(Effect.flatMap((members) => {
            const missing = members.find((m) => !entries.has(m))
            if (missing !== undefined) return Effect.fail(unknown(missing))
            const list = [...new Set(members)]
            groups.set(name, list)
            return Effect.succeed(list)
          }))
        ),
      groupMembers: (name) =>
        Effect.suspend(() => {
          const members = groups.get(name)
          return members === undefined
            ? Effect.fail(new UnknownGroupError({ group: String(name), defined: [...groups.keys()] }))
            : Effect.succeed(members)
        }),
      list: Effect.sync(names),
      health: (only) =>
        Effect.suspend(() => {
          const dbs = (only ?? names()).flatMap((n) => {
            const e = entries.get(n)
            return e === undefined ? [] : [e.db]
          })
          return Effect.forEach(dbs, (db) => Effect.map(db.check, (ok) => [db.name, ok] as const), {
            concurrency: "unbounded"
          }).pipe(Effect.map(record))
        }),
      stats: Effect.suspend(() =>
        Effect.forEach([...entries.values()], (e) => Effect.map(e.db.stats, (s) => [e.db.name, s] as const))
      ).pipe(Effect.map(record)),
      ready: Effect.suspend(() =>
        Effect.forEach([...entries.values()], (e) => Effect.map(Deferred.await(e.connected), (ok) => [e.db.name, ok] as const))
      ).pipe(Effect.map(record)),
      preventWrites: (name) => {
        const db = entries.get(name)?.db
        if (db === undefined) return refuse(name, `preventWrites('${name}')`)
        db.prevented.current++
        let released = false
        return () => {
          if (released) return
          released = true
          db.prevented.current--
        }
      },
      metrics: env.telemetry?.prometheus,
      connected: (name) =>
        Effect.suspend(() => {
          const entry = entries.get(name)
          return entry === undefined ? Effect.succeed(false) : Deferred.await(entry.connected)
        }),
      close,
      isClosed: () => closed.current
    }

    yield* Effect.addFinalizer(() => close)
    for (const [name, entry] of initial) yield* Effect.orDie(register(name, entry))
    const withTenants: Registry = {
      ...registry,
      tenants: options.tenants === undefined ? undefined : yield* makeTenants(registry as Registry, env, options.tenants),
      unregister: (name) => Effect.tap(unregister(name), () => withTenants.tenants?.forget(name) ?? Effect.void)
    }
    const telemetry = env.telemetry
    if (telemetry !== undefined) {
      const runSync = Runtime.runSync(env.runtime)
      const stop = telemetry.observe({
        members: () =>
          [...entries.values()].flatMap(({ db }) => {
            const { members } = runSync(db.stats)
            return [db.writer, ...db.readers].map((m, i) => ({
              labels: m.labels,
              healthy: members[i]!.healthy,
              circuit: members[i]!.circuitState,
              pool: m.pool
            }))
          }),
        tenants: () => (withTenants.tenants === undefined ? undefined : { ...runSync(withTenants.tenants.stats) })
      })
      // Runs before close() (finalizers run in reverse): the gauges stop, and flexidb's own meter provider ends.
      yield* Effect.addFinalizer(() => Effect.zipRight(Effect.sync(stop), Effect.promise(telemetry.shutdown)))
    }
    return withTenants
  })
