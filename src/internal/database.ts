/**
 * The one implementation of a database: its members (the writer and a pair's replicas), each with a breaker and
 * counters (the hot path's, see hotPath.ts) and a client whose every operation passes them (intercept.ts; unless
 * `intercept: false`); the routing read client of a pair (replicas.ts); and its lifecycle as Effects — connect on
 * `retrySchedule`, status and hooks, reconnect on `reconnectSchedule` in a fiber of the member's scope, health
 * polling to fork into the database's scope, release when that scope closes. `make` below neither connects nor
 * polls: `Database.make` runs `connect` and waits for it; the registry (and through it `createFlexiDB`, tenants and
 * `flexidb/testing`) runs it in the background. Both record OpenTelemetry spans and metrics when a provider is
 * registered; without one, `Database.make` records Effect spans and Metrics instead (makeEnv's `effectTelemetry`).
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberHandle from "effect/FiberHandle"
import * as MutableRef from "effect/MutableRef"
import * as Ref from "effect/Ref"
import * as Runtime from "effect/Runtime"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as CircuitBreaker from "../CircuitBreaker.js"
import type { DBStats, MemberStats, PrismaClientLike, Role } from "../Client.js"
import {
  ConnectionError,
  InvalidArgumentError,
  OperationTimeoutError,
  ReadOnlyError,
  ReconnectFailedError
} from "../Errors.js"
import type { ReplicaUnavailableError } from "../Errors.js"
import type { MemberRef, ResolvedOptions, ResolvedReplicaConfig } from "../Options.js"
import { defaultReplicaConfig, reconnectSchedule, replicaKeys, resolveReplicas, retrySchedule } from "../Options.js"
import { errorSummary, redact } from "../Redact.js"
import type { Counters, Env, Target } from "./hotPath.js"
import { makeCounters, makeMiddleware, retryRead, runOperation } from "./hotPath.js"
import type { Member, Router } from "./replicas.js"
import { isWrite, makeRouter, readOnly } from "./replicas.js"
import { guardIdleConnections } from "./idleCheck.js"
import type { Hook } from "./intercept.js"
import { intercept } from "./intercept.js"
import * as Session from "./session.js"
import type { Dialect } from "./sql.js"
import { dialectOf, isRawRead } from "./sql.js"
import * as EffectTelemetry from "./effectTelemetry.js"
import * as Telemetry from "./telemetry.js"

export type Status = "pending" | "up" | "down"

/** A database as the registry and the public modules see it. */
export interface Db {
  readonly name: string
  readonly env: Env
  /** The write client's member: its breaker is the database's, its health the database's. */
  readonly writer: Member
  /** A pair's replicas, in the order given (empty for a single client). */
  readonly readers: ReadonlyArray<Member>
  /** What `get()` hands out for a role: the writer's client, or a pair's routing read client. */
  readonly clientFor: (role: Role | undefined) => PrismaClientLike
  /** The member an operation of `role` made now runs on (the writer for writes). */
  readonly memberFor: (
    role: Role | undefined,
    operation: string
  ) => Member | ReplicaUnavailableError | InvalidArgumentError
  /**
   * Runs the app's function `f` as one operation on `member` (from `memberFor`), as `Database.query` does: counted
   * and broken as one call; the reads `f` sends run again after a lost connection (the read re-run policy); on a
   * replica, `f` gets a read-only client, and runs once more on another member if the replica turns out
   * unreachable. Writes through the writer are refused while prevented.
   */
  readonly run: <A>(member: Member, operation: string, f: (client: PrismaClientLike) => PromiseLike<A>) => Promise<A>
  /** Writes are refused while above zero (`preventWrites`). */
  readonly prevented: MutableRef.MutableRef<number>
  /** True from the moment release starts: nothing new is sent to a closing client. */
  readonly isClosed: () => boolean
  /** The first connection: the writer's, retried on the schedule (ConnectionError); each replica's once. */
  readonly connect: Effect.Effect<void, ConnectionError>
  /** Records that the writer did not answer (its first connection's outcome too) and starts reconnecting it. */
  readonly markDown: (error: unknown) => Effect.Effect<void>
  /** Records that every member answered (flexidb/testing's setUp). */
  readonly markUp: Effect.Effect<void>
  /** `SELECT 1` on every member now, within the health timeout; true when the writer answered. Never fails. */
  readonly check: Effect.Effect<boolean>
  /** Health polling for as long as it runs (nothing when polling is off); fork it into the database's scope. */
  readonly watch: Effect.Effect<void>
  readonly stats: Effect.Effect<DBStats>
}

/** The error for a role that is neither `'read'` nor `'write'`. */
export const invalidRole = (role: unknown) =>
  new InvalidArgumentError({ path: "role", reason: `expected 'read' or 'write', got ${JSON.stringify(role) ?? typeof role}` })

/** Runs `f`; an InvalidArgumentError it throws is the failure, anything else is a defect. */
export const validate = <A>(f: () => A): Effect.Effect<A, InvalidArgumentError> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(f())
    } catch (error) {
      return error instanceof InvalidArgumentError ? Effect.fail(error) : Effect.die(error)
    }
  })

/**
 * The environment of one instance, captured from the running fiber (so TestClock reaches the hot path). Telemetry
 * is decided here, once: InvalidArgumentError when the `prometheus` option's packages are missing.
 */
export const makeEnv = (
  options: ResolvedOptions,
  observe?: (database: string, operation: string) => void,
  effectTelemetry = false
): Effect.Effect<Env, InvalidArgumentError> =>
  Effect.flatMap(Effect.all([Effect.runtime<never>(), Effect.clock]), ([runtime, clock]) =>
    Effect.map(validate(() => Telemetry.make(options, clock)), (telemetry) => ({
      options,
      clock,
      runtime,
      middleware: makeMiddleware(),
      observe,
      telemetry,
      effectTelemetry: effectTelemetry && telemetry === undefined
    })))

/*
 * FiberRefs history. A fiber's FiberRefs keep a stack per FiberRef with an entry per ancestor fiber that set it; a
 * finalizer runs with the FiberRefs of the fiber that added it, patched onto the fiber that runs it. Closing a
 * database in a fiber (a tenant's load making room) so took on that database's history, and the next database made
 * in that fiber kept it, one entry longer: with tenants closed and opened for ever, the history grew by an entry per
 * eviction, kept alive by every live database (~1 KiB each). Closing and forking on the instance's own runtime keeps
 * every database's history as short as the instance's.
 */

/** Forks `effect` on the instance's runtime as a fiber that ends when `scope` closes (and leaves it when it ends). */
export const forkIn = <A, E>(env: Env, effect: Effect.Effect<A, E>, scope: Scope.Scope) =>
  Effect.sync(() => Runtime.runFork(env.runtime)(effect, { scope }))

/** Runs `effect` on a fiber of the instance's runtime and waits for its outcome, taking none of its FiberRefs back. */
export const isolated = <A, E>(env: Env, effect: Effect.Effect<A, E>) =>
  Effect.flatMap(Effect.sync(() => Runtime.runFork(env.runtime)(effect)), (fiber) => Effect.flatten(Fiber.await(fiber)))

/** Whether `u` has what flexidb needs of a Prisma client. */
export const isClient = (u: unknown): u is PrismaClientLike =>
  typeof u === "object" && u !== null &&
  ["$connect", "$disconnect", "$queryRawUnsafe", "$extends"].every((m) => typeof (u as any)[m] === "function")

const clientError = (path: string, value: unknown) =>
  new InvalidArgumentError({
    path,
    reason: `expected a Prisma client (with $connect, $disconnect, $queryRawUnsafe and $extends) or { read, write }, ` +
      `got ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}`
  })

const maxNameLength = 128

/** Throws InvalidArgumentError for a name no one should use: empty, too long, or with control characters. */
export const validateName = (name: unknown): string => {
  if (typeof name !== "string") {
    throw new InvalidArgumentError({ path: "name", reason: `expected a string, got ${typeof name}` })
  }
  if (name.trim().length === 0) {
    throw new InvalidArgumentError({ path: "name", reason: "a database name cannot be empty" })
  }
  if (name.length > maxNameLength) {
    throw new InvalidArgumentError({
      path: "name",
      reason: `a database name can have at most ${maxNameLength} characters, got ${name.length}`
    })
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) {
    throw new InvalidArgumentError({ path: "name", reason: "a database name cannot contain control characters" })
  }
  // Names are shown everywhere (stats, health, logs, spans, metrics): a connection string is not one.
  if (redact(name) !== name) {
    throw new InvalidArgumentError({
      path: "name",
      reason: "a database name cannot hold credentials (it looks like a connection string): name the database, " +
        "such as 'users', and pass its client"
    })
  }
  return name
}

/** A replica as given: a client, or `{ client, weight }`. */
const replica = (name: string, value: unknown, path: string) => {
  if (isClient(value)) return { client: value, weight: 1 }
  if (typeof value === "object" && value !== null && "client" in value) {
    const { client, weight = 1 } = value as { client: unknown; weight?: unknown }
    if (!isClient(client)) throw clientError(`${path}.client`, client)
    if (typeof weight !== "number" || !Number.isFinite(weight) || weight <= 0) {
      throw new InvalidArgumentError({ path: `${path}.weight`, reason: `expected a number above 0, got ${JSON.stringify(weight)}` })
    }
    return { client, weight }
  }
  throw clientError(path, value)
}

/**
 * Splits an entry into its clients and a pair's own replica settings; throws InvalidArgumentError for anything that
 * is not a client or pair, or for invalid settings.
 */
export const splitEntry = (name: string, entry: unknown, replicas: ResolvedReplicaConfig = defaultReplicaConfig) => {
  if (isClient(entry)) return { write: entry, reads: [], replicas }
  if (typeof entry === "object" && entry !== null && "write" in entry && "read" in entry) {
    const { read, write, ...rest } = entry as { read: unknown; write: unknown }
    if (!isClient(write)) throw clientError(`clients.${name}.write`, write)
    const list = Array.isArray(read) ? read : [read]
    if (list.length === 0) {
      throw new InvalidArgumentError({ path: `clients.${name}.read`, reason: "needs at least one client" })
    }
    const reads = list.map((r, i) => replica(name, r, `clients.${name}.read${Array.isArray(read) ? `[${i}]` : ""}`))
      // The writer listed among the reads is the writer: one client, one member.
      .filter((r) => r.client !== write)
    const unknown = Object.keys(rest).find((k) => !replicaKeys.includes(k))
    if (unknown !== undefined) {
      throw new InvalidArgumentError({
        path: `clients.${name}.${unknown}`,
        reason: "unknown key (a pair takes read, write, balance, fallback, readYourWrites)"
      })
    }
    return { write, reads, replicas: resolveReplicas(rest, `clients.${name}`, replicas) }
  }
  throw clientError(`clients.${name}`, entry)
}

/** Calls an app hook; a hook that throws or rejects must never break flexidb. */
export const callHook = <A extends ReadonlyArray<unknown>>(hook: ((...args: A) => unknown) | undefined, ...args: A) =>
  Effect.sync(() => {
    if (hook === undefined) return
    try {
      const result = hook(...args)
      if (typeof (result as PromiseLike<unknown> | undefined)?.then === "function") {
        ;(result as PromiseLike<unknown>).then(undefined, () => {})
      }
    } catch {
      // ignored on purpose: see above
    }
  })

const label = (model: string | undefined, operation: string) => (model === undefined ? operation : `${model}.${operation}`)

const modelReads = new Set([
  "findUnique",
  "findUniqueOrThrow",
  "findFirst",
  "findFirstOrThrow",
  "findMany",
  "count",
  "aggregate",
  "groupBy"
])

/**
 * Safe to run twice: a model read, or a raw query whose SQL only reads (internal/sql.ts: no INTO, no locking
 * clause, no sequence), outside any transaction (Prisma's own request says; without it nothing is retried).
 */
export const retryable = ({ __internalParams: request, args, operation }: Hook, dialect?: Dialect) => {
  if (request === undefined || request.transaction !== undefined) return false
  return modelReads.has(operation) || isRawRead(operation, args, dialect)
}

/** A replica's client: every query counted on that replica. */
const interceptReader = (client: PrismaClientLike, target: Target, dialect: Dialect | undefined): PrismaClientLike =>
  intercept(client, (hook) => runOperation(target, label(hook.model, hook.operation), hook.query, hook.args, retryable(hook, dialect)))

/**
 * The client a `batch()` operation is given: the operation is counted as one call, and the reads it sends run again
 * when their connection is lost under them.
 */
const retryingReads = (client: PrismaClientLike, target: Target, dialect: Dialect | undefined): PrismaClientLike =>
  intercept(client, (hook) => (retryable(hook, dialect) ? retryRead(target, () => hook.query(hook.args)) : hook.query(hook.args)))

/**
 * The writer's client: every query counted; writes refused while prevented; inside a session, a pair remembers
 * the write so the session reads its own writes.
 */
const interceptWriter = (
  client: PrismaClientLike,
  target: Target,
  prevented: MutableRef.MutableRef<number>,
  router: () => Router | undefined,
  dialect: Dialect | undefined
): PrismaClientLike =>
  intercept(client, (hook) => {
    const { args, model, operation, query } = hook
    if (prevented.current > 0 && isWrite(operation, args, dialect)) {
      return Promise.reject(new ReadOnlyError({ database: target.name, operation: label(model, operation), reason: "prevented" }))
    }
    const result = runOperation(target, label(model, operation), query, args, retryable(hook, dialect))
    const pair = router()
    if (pair === undefined) return result
    const session = Session.current()
    if (session === undefined || !isWrite(operation, args, dialect)) return result
    return result.then((value) => pair.wrote(session).then(() => value))
  })

/** A member's lifecycle: what the database composes. */
interface Life {
  readonly member: Member
  readonly status: Ref.Ref<Status>
  readonly lastConnectedAt: Ref.Ref<number | null>
  readonly connectOnce: Effect.Effect<void, unknown>
  readonly markUp: Effect.Effect<void>
  /** `connecting`: the first connection's own outcome, which moves a pending member. */
  readonly markDown: (error: unknown, connecting?: boolean) => Effect.Effect<void>
  readonly check: Effect.Effect<boolean>
}

/** Makes one member in the current scope: its breaker, counters, status, and reconnect fiber slot. */
const makeMember = (
  name: string,
  ref: MemberRef,
  bare: PrismaClientLike,
  weight: number,
  env: Env,
  closed: MutableRef.MutableRef<boolean>,
  connecting: (client: PrismaClientLike) => Promise<void>,
  api: (target: Target, dialect: Dialect | undefined) => PrismaClientLike,
  tenant: boolean
): Effect.Effect<Life, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { options } = env
    const hooks = options.hooks
    const status = yield* Ref.make<Status>("pending")
    const lastConnectedAt = yield* Ref.make<number | null>(null)
    // Routable until found down: a replica still connecting serves reads, and a dead one fails over on first use.
    const healthy = MutableRef.make(true)
    const counters: Counters = makeCounters(env.clock)
    const { resetTimeout, sampling, threshold } = options.circuitBreaker
    const breaker = CircuitBreaker.make({
      resetTimeout,
      strategy: sampling !== undefined ? CircuitBreaker.sampling(sampling) : CircuitBreaker.consecutive(threshold)
    })
    const healthTimeout = Duration.millis(options.healthCheck.timeout)
    const reconnecting = yield* FiberHandle.make<void, never>()
    const who = ref.role === "write" ? `Database '${name}'` : `Replica ${ref.index} of database '${name}'`
    const telemetry = env.telemetry
    const labels = Telemetry.memberLabels(name, ref, bare, tenant, telemetry !== undefined || env.effectTelemetry)
    const pool = telemetry?.pool(bare)
    guardIdleConnections(bare)
    /** Health checks and reconnects: root spans of their own when tracing. */
    const traced = <A, E>(operation: string, effect: Effect.Effect<A, E>) =>
      telemetry !== undefined
        ? telemetry.root(labels, operation, effect)
        : env.effectTelemetry
        ? Effect.withSpan(effect, `${operation} ${name}`, {
          kind: "client",
          root: true,
          attributes: { ...labels, "db.operation.name": operation }
        })
        : effect
    /** The Effect API's member gauges, set whenever the member's state may have moved. */
    const gauges = env.effectTelemetry
      ? Effect.suspend(() =>
        EffectTelemetry.gauges(labels, healthy.current, CircuitBreaker.stateName(breaker.cell.current))
      )
      : Effect.void

    const timeoutError = (operation: string) => () =>
      new OperationTimeoutError({ database: name, operation, timeoutMs: options.healthCheck.timeout })

    /** `SELECT 1` within the health timeout. */
    const probe: Effect.Effect<void, unknown> = Effect.tryPromise({
      try: () => bare.$queryRawUnsafe("SELECT 1"),
      catch: (e) => e
    }).pipe(Effect.timeoutFail({ duration: healthTimeout, onTimeout: timeoutError("SELECT 1") }), Effect.asVoid)

    // Prisma with a driver adapter resolves `$connect` even when the server is down: the probe proves the connection.
    const connectOnce = Effect.tryPromise({ try: () => connecting(bare), catch: (e) => e }).pipe(
      Effect.timeoutFail({ duration: healthTimeout, onTimeout: timeoutError("$connect") }),
      Effect.zipRight(probe)
    )

    /** It answered: if it was not up, it is connected now — record when, close its circuit, tell the app. */
    const markUp = Effect.gen(function*() {
      if (closed.current) return
      healthy.current = true
      const was = yield* Ref.getAndSet(status, "up")
      if (was === "up") return
      if (was === "down") options.log?.(`${who} is up again.`)
      yield* Ref.set(lastConnectedAt, yield* Clock.currentTimeMillis)
      yield* CircuitBreaker.reset(breaker)
      yield* callHook(hooks.onConnect, name, ref)
      yield* callHook(hooks.onStatusChange, name, true, ref)
      yield* gauges
    })

    /**
     * `interval` after it went down, then on the reconnect schedule (`maxAttempts` in all, `interval` apart); stops
     * at the first success, or when something else (a health check, a query's trial) found it up.
     */
    const attempt = Effect.flatMap(Ref.get(status), (now) =>
      now === "up"
        ? Effect.void
        : traced("reconnect", connectOnce).pipe(
          Effect.tapError((error) => Effect.sync(() => (counters.lastError = errorSummary(error)))),
          Effect.zipRight(markUp)
        ))
    const reconnect = Effect.sleep(Duration.millis(options.reconnect.interval)).pipe(
      Effect.zipRight(Effect.retry(attempt, reconnectSchedule(options.reconnect))),
      Effect.catchAll(() =>
        callHook(hooks.onError, name, new ReconnectFailedError({ database: name, attempts: options.reconnect.maxAttempts }), ref)
      )
    )

    const markDown = (error: unknown, connecting = false): Effect.Effect<void> =>
      Effect.gen(function*() {
        if (closed.current) return
        healthy.current = false
        counters.lastError = errorSummary(error)
        // The first connection is still being tried on its schedule: that loop reports its outcome.
        if (!connecting && (yield* Ref.get(status)) === "pending") return
        if ((yield* Ref.getAndSet(status, "down")) !== "down") {
          options.log?.(
            `${who} is down: ${errorSummary(error).replace(/\.$/, "")}. ` +
              (options.reconnect.enabled
                ? `Reconnecting every ${options.reconnect.interval} ms.`
                : "Reconnect is off: a health check or a query will find it again.")
          )
          const reported = error instanceof ConnectionError ? error : new Error(`${who}: ${errorSummary(error)}`, { cause: error })
          yield* callHook(hooks.onError, name, reported, ref)
          yield* callHook(hooks.onStatusChange, name, false, ref)
        }
        yield* gauges
        // A no-op while a reconnect fiber runs.
        if (options.reconnect.enabled) yield* FiberHandle.run(reconnecting, reconnect, { onlyIfMissing: true })
      })

    const fork = Runtime.runFork(env.runtime)
    const dialect = dialectOf(bare)
    const target: Target = { name, env, breaker, counters, closed, labels, pool, foundDown: (error) => fork(markDown(error)) }
    let forBatch: PrismaClientLike | undefined
    const member: Member = {
      ...target,
      ref,
      weight,
      bare,
      api: api(target, dialect),
      dialect,
      // Built on the first batch(): most tenants never see one. With `intercept: false`, the bare client too.
      batchClient: () => forBatch ??= env.options.intercept ? retryingReads(bare, target, dialect) : bare,
      healthy,
      takeDown: (error) => {
        healthy.current = false
        fork(markDown(error))
      }
    }
    const checked = Effect.matchEffect(traced("health", probe), {
      onSuccess: () => Effect.as(markUp, true),
      onFailure: (error) => Effect.as(markDown(error), false)
    })
    const check = Effect.tap(checked, () => gauges)
    return { member, status, lastConnectedAt, connectOnce, markUp, markDown, check }
  })

const memberStats = (life: Life) =>
  Effect.map(Ref.get(life.status), (status): MemberStats => {
    const m = life.member
    return {
      role: m.ref.role,
      index: m.ref.index,
      healthy: status === "up",
      circuitState: CircuitBreaker.stateName(m.breaker.cell.current),
      totalQueries: m.counters.total,
      failedQueries: m.counters.failed,
      inFlight: m.counters.inFlight
    }
  })

/**
 * Makes a database in the current scope: validates its name and clients (InvalidArgumentError, nothing made),
 * and disconnects its clients when the scope closes. It does not connect: run `connect`, then fork `watch`.
 */
export const make = (
  name: string,
  entry: unknown,
  env: Env,
  tenant = false
): Effect.Effect<Db, InvalidArgumentError, Scope.Scope> =>
  Effect.gen(function*() {
    const { options } = env
    const { reads, replicas, write } = yield* validate(() => splitEntry(validateName(name), entry, options.replicas))
    const clients = [...new Set([write, ...reads.map((r) => r.client)])]
    const closed = MutableRef.make(false)
    const prevented = MutableRef.make(0)
    // `$connect` calls in flight: release waits for them, or a late one would reopen the pool it just closed.
    const inFlight = new Set<Promise<void>>()
    const connecting = (client: PrismaClientLike) => {
      const attempt = client.$connect()
      inFlight.add(attempt)
      const done = () => inFlight.delete(attempt)
      attempt.then(done, done)
      return attempt
    }

    // Finalizers run in reverse: added before the members' reconnect slots and the health fiber, this runs after
    // they end.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        closed.current = true
        for (const life of lives) {
          life.member.healthy.current = false
          yield* Ref.set(life.status, "down")
        }
        // Interruptible, or the timeouts would wait for what they time: a finalizer is not, and a client whose
        // connection was blackholed under a query never finishes its $disconnect.
        yield* Effect.interruptible(Effect.promise(() => Promise.allSettled([...inFlight]))).pipe(
          Effect.timeout(Duration.millis(options.disconnectTimeout)),
          Effect.ignore
        )
        yield* Effect.forEach(
          clients,
          (client) =>
            Effect.interruptible(Effect.tryPromise(() => client.$disconnect())).pipe(
              Effect.timeout(Duration.millis(options.disconnectTimeout)),
              Effect.ignore
            ),
          { concurrency: "unbounded", discard: true }
        )
        yield* callHook(options.hooks.onDisconnect, name)
      })
    )

    const intercepting = options.intercept
    const readers = yield* Effect.forEach(reads, (r, index) =>
      makeMember(name, { role: "read", index }, r.client, r.weight, env, closed, connecting, (t, dialect) =>
        intercepting ? interceptReader(r.client, t, dialect) : r.client, tenant))
    // The writer's interception needs the router (to remember a session's writes), and the router the writer: the
    // router is made after the writer and read through this cell when a query runs.
    let router: Router | undefined
    const writer = yield* makeMember(name, { role: "write", index: 0 }, write, 1, env, closed, connecting, (t, dialect) =>
      intercepting ? interceptWriter(write, t, prevented, () => router, dialect) : write, tenant)
    const lives = [writer, ...readers]
    if (readers.length > 0) {
      router = makeRouter({
        name,
        writer: writer.member,
        readers: readers.map((r) => r.member),
        config: replicas,
        now: () => env.clock.unsafeCurrentTimeMillis()
      })
    }
    const writerApi = writer.member.api
    const readClient = router?.client

    const connect = Effect.all([
      Effect.suspend(() => {
        let attempts = 0
        const schedule = retrySchedule(options.retry).pipe(
          // The schedule also emits on the step that ends it: only real retries reach the hook.
          Schedule.tapOutput((retry) =>
            retry <= options.retry.attempts ? callHook(options.hooks.onRetry, name, retry) : Effect.void
          )
        )
        return Effect.suspend(() => {
          attempts++
          return writer.connectOnce
        }).pipe(
          Effect.retry(schedule),
          Effect.mapError((cause) => new ConnectionError({ database: name, attempts, reason: errorSummary(cause), cause })),
          Effect.zipRight(writer.markUp)
        )
      }),
      // A replica that is down does not hold the database back: it is found down and reconnects on its own.
      Effect.forEach(readers, (r) => Effect.matchEffect(r.connectOnce, { onSuccess: () => r.markUp, onFailure: (e) => r.markDown(e, true) }), {
        concurrency: "unbounded",
        discard: true
      })
    ], { concurrency: "unbounded", discard: true })

    const check = Effect.map(
      Effect.forEach(lives, (life) => life.check, { concurrency: "unbounded" }),
      ([writerUp]) => writerUp!
    )

    const stats = Effect.gen(function*() {
      const members = yield* Effect.forEach(lives, memberStats)
      const all = lives.map((l) => l.member.counters)
      const total = all.reduce((n, c) => n + c.total, 0)
      const connectedAt = yield* Ref.get(writer.lastConnectedAt)
      return {
        connected: members[0]!.healthy,
        registeredAt: new Date(writer.member.counters.registeredAt),
        lastError: writer.member.counters.lastError,
        lastConnectedAt: connectedAt === null ? null : new Date(connectedAt),
        totalQueries: total,
        failedQueries: all.reduce((n, c) => n + c.failed, 0),
        rejectedQueries: all.reduce((n, c) => n + c.rejected, 0),
        avgResponseTimeMs: total === 0 ? 0 : all.reduce((n, c) => n + c.elapsedNs, 0) / total / 1e6,
        circuitState: members[0]!.circuitState,
        members
      } satisfies DBStats
    })

    return {
      name,
      env,
      writer: writer.member,
      readers: readers.map((r) => r.member),
      clientFor: (role) => (role === "read" && readClient !== undefined ? readClient : writerApi),
      memberFor: (role, operation) => (role === "read" && router !== undefined ? router.pick(operation) : writer.member),
      run: <A>(member: Member, operation: string, f: (client: PrismaClientLike) => PromiseLike<A>) => {
        const call = (m: Member) => {
          const client = m.batchClient()
          const guarded = m !== writer.member
            ? readOnly(client, name, "read-client", m.dialect)
            : prevented.current > 0
            ? readOnly(client, name, "prevented", m.dialect)
            : client
          return runOperation(m, operation, f, guarded)
        }
        return Promise.resolve(router === undefined || member === writer.member ? call(member) : router.readOn(member, operation, call))
      },
      prevented,
      isClosed: () => closed.current,
      connect,
      markDown: (error) => writer.markDown(error, true),
      markUp: Effect.forEach(lives, (life) => life.markUp, { discard: true }),
      check,
      watch: options.healthCheck.enabled
        ? check.pipe(Effect.delay(Duration.millis(options.healthCheck.interval)), Effect.forever)
        : Effect.void,
      stats
    } satisfies Db
  })
