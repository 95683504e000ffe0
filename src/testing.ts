/**
 * `flexidb/testing`: the flexidb interface with no database, for unit tests of code that takes a `FlexiDB`.
 * `get` returns your mocks, `batch` runs against them, middleware runs, and `setDown(name)` makes a database
 * fail every operation and health check, to exercise your app's failure paths.
 *
 * @since 0.1.0
 */
import type { ClientEntry, ClientOf, DBStats, MiddlewareFn, PrismaClientLike, Role } from "./Client.js"
import type { BatchResults, BatchSettledResults, FlexiDB } from "./createFlexiDB.js"
import { CircuitOpenError, DuplicateDatabaseError, InvalidArgumentError, UnknownDatabaseError, UnknownGroupError } from "./Errors.js"
import type { BatchRun } from "./internal/registry.js"
import { batchResults, record, settledResults } from "./internal/registry.js"

type Names<M> = keyof M & string
type Ops<M> = { readonly [K in Names<M>]?: (client: ClientOf<M[K]>) => PromiseLike<unknown> }

/**
 * A mock instance: the FlexiDB interface, typed by your mocks, plus controls for tests. For one that is typed by
 * your real clients (and goes wherever your instance goes), use `mockFlexiDB<AppDatabases>(mocks)`.
 *
 * @since 0.1.0
 */
export interface MockFlexiDB<M extends Record<string, unknown>>
  extends
    Omit<FlexiDB<Record<Names<M>, PrismaClientLike>>, "get" | "register" | "batch" | "batchSettled" | "group">,
    MockControls<M>
{
  get<K extends Names<M>>(name: K, role?: Role): ClientOf<M[K]>
  register<N extends string, E>(name: N, client: E): MockFlexiDB<M & { [K in N]: E }>
  batch<O extends Ops<M>>(operations: O): Promise<BatchResults<O>>
  batchSettled<O extends Ops<M>>(operations: O): Promise<BatchSettledResults<O>>
  group<G extends Names<M>>(name: string, members: ReadonlyArray<G>): { [K in G]: ClientOf<M[K]> }
  group(name: string): Partial<{ [K in Names<M>]: ClientOf<M[K]> }>
}

/**
 * What the mock of one client may hold: any part of it, nested (`{ user: { findMany } }`). Its methods may return
 * plain values or promises of partial rows: a mock answers only what the test asks.
 *
 * @since 0.1.0
 */
export type MockOf<C> = {
  readonly [K in keyof C]?: C[K] extends (...args: any) => any ? (...args: any) => unknown
    : C[K] extends object ? MockOf<C[K]>
    : C[K]
}

/** One mock per database of `M` (what you pass to `createFlexiDB`); `{}` for a database the test never calls. */
export type MockClients<M> = { readonly [K in Names<M>]: MockOf<ClientOf<M[K]>> }

/** The controls a mock adds to the FlexiDB interface. */
export interface MockControls<M> {
  /** Makes `name` fail: operations reject with CircuitOpenError, health reports false, stats say disconnected. */
  setDown(name: Names<M>): void
  /** Makes `name` serve again. */
  setUp(name: Names<M>): void
  /** Every operation that ran (or was refused): `[database, operation]`, in order. */
  readonly calls: ReadonlyArray<readonly [string, string]>
}

interface MockState {
  client: unknown
  down: boolean
  total: number
  failed: number
  rejected: number
  readonly registeredAt: Date
}

const pick = (entry: unknown, role: Role | undefined) => {
  if (typeof entry === "object" && entry !== null && "write" in entry && "read" in entry) {
    const { read, write } = entry as { read: unknown; write: unknown }
    return role === "read" ? (Array.isArray(read) ? read[0] : read) : write
  }
  return entry
}

const proxies = new WeakMap<object, Map<string, object>>()

/**
 * Wraps a mock client so calls through it behave like calls through a real instance's client: `db.model.method()`
 * runs as operation `Model.method`, and `db.$method()` as `$method`, through middleware and `setDown`.
 */
const instrument = (
  name: string,
  client: unknown,
  runOp: (name: string, operation: string, run: () => PromiseLike<unknown>) => Promise<unknown>
): unknown => {
  if (typeof client !== "object" || client === null) return client
  let byName = proxies.get(client)
  if (byName === undefined) proxies.set(client, byName = new Map())
  const cached = byName.get(name)
  if (cached !== undefined) return cached
  const wrapFn = (target: object, fn: Function, operation: string) => (...args: Array<unknown>) =>
    runOp(name, operation, () => Promise.resolve(fn.apply(target, args)))
  const proxy = new Proxy(client, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver)
      if (typeof key !== "string") return value
      if (typeof value === "function") return wrapFn(target, value, key)
      if (typeof value === "object" && value !== null && !key.startsWith("$")) {
        const model = key.charAt(0).toUpperCase() + key.slice(1)
        return new Proxy(value, {
          get(inner, method, r) {
            const v = Reflect.get(inner, method, r)
            return typeof v === "function" && typeof method === "string" ? wrapFn(inner, v, `${model}.${method}`) : v
          }
        })
      }
      return value
    }
  })
  byName.set(name, proxy)
  return proxy
}

/**
 * Creates a mock instance from plain objects (or real clients). Unknown names throw exactly as the real one does.
 *
 * @since 0.1.0
 */
export const createMockFlexiDB = <const M extends Record<string, unknown>>(mocks: M): MockFlexiDB<M> => {
  const dbs = new Map<string, MockState>()
  const groups = new Map<string, ReadonlyArray<string>>()
  let middleware: ReadonlyArray<MiddlewareFn> = []
  const calls: Array<readonly [string, string]> = []
  const add = (name: string, client: unknown) => {
    if (dbs.has(name)) throw new DuplicateDatabaseError({ database: name })
    dbs.set(name, { client, down: false, total: 0, failed: 0, rejected: 0, registeredAt: new Date() })
  }
  for (const [name, client] of Object.entries(mocks)) add(name, client)
  const lookup = (name: string) => {
    const db = dbs.get(name)
    if (db === undefined) throw new UnknownDatabaseError({ database: String(name), registered: [...dbs.keys()] })
    return db
  }
  const runOp = (name: string, operation: string, run: () => PromiseLike<unknown>) => {
    const db = lookup(name)
    calls.push([name, operation])
    if (db.down) {
      db.rejected++
      return Promise.reject(new CircuitOpenError({ database: name, operation, retryAfterMs: 0 }))
    }
    const dispatch = (i: number): Promise<unknown> =>
      i === middleware.length
        ? Promise.resolve().then(run)
        : Promise.resolve().then(() => middleware[i]!(name, operation, () => dispatch(i + 1)))
    db.total++
    return dispatch(0).catch((e) => {
      db.failed++
      throw e
    })
  }
  const settleAll = (ops: Record<string, (c: any) => PromiseLike<unknown>>) => {
    const names = Object.keys(ops)
    names.forEach(lookup)
    return Promise.allSettled(names.map((n) => runOp(n, "batch", () => ops[n]!(pick(lookup(n).client, "write")))))
      .then((outcomes): BatchRun => ({
        names,
        ok: outcomes.map((o) => o.status === "fulfilled"),
        values: outcomes.map((o) => (o.status === "fulfilled" ? o.value : o.reason))
      }))
  }
  const healthOf = (names: ReadonlyArray<string>): Promise<never> =>
    Promise.resolve(record(names.map((n) => [n, !lookup(n).down] as const)) as never)

  const mock: MockFlexiDB<M> = {
    calls,
    get: (name: string, role?: Role) => instrument(name, pick(lookup(name).client, role), runOp) as never,
    batch: (ops: any) => settleAll(ops).then(batchResults) as never,
    batchSettled: (ops: any) => settleAll(ops).then(settledResults) as never,
    use: (fn) => {
      middleware = [...middleware, fn]
      return () => {
        middleware = middleware.filter((m) => m !== fn)
      }
    },
    group: ((name: string, members?: ReadonlyArray<string>) => {
      if (members !== undefined) {
        if (!Array.isArray(members)) throw new InvalidArgumentError({ path: `group('${name}')`, reason: "expected an array" })
        members.forEach(lookup)
        groups.set(name, [...new Set(members)])
      }
      const list = groups.get(name)
      if (list === undefined) throw new UnknownGroupError({ group: name, defined: [...groups.keys()] })
      return record(list.map((m) => [m, pick(lookup(m).client, "write")] as const))
    }) as never,
    healthGroup: (name) => {
      const list = groups.get(name)
      if (list === undefined) return Promise.reject(new UnknownGroupError({ group: name, defined: [...groups.keys()] }))
      return healthOf(list)
    },
    list: () => [...dbs.keys()],
    health: () => healthOf([...dbs.keys()]),
    stats: () =>
      record([...dbs].map(([n, d]) => [n, {
        connected: !d.down,
        registeredAt: d.registeredAt,
        lastError: d.down ? "marked down by setDown()" : null,
        lastConnectedAt: d.registeredAt,
        totalQueries: d.total,
        failedQueries: d.failed,
        rejectedQueries: d.rejected,
        avgResponseTimeMs: 0,
        circuitState: d.down ? "open" : "closed"
      } satisfies DBStats] as const)),
    ready: () => healthOf([...dbs.keys()]),
    register: (name: string, client: unknown) => {
      add(name, client)
      return mock as never
    },
    unregister: (name) =>
      new Promise<void>((resolve) => {
        lookup(name)
        dbs.delete(name)
        for (const [g, members] of groups) groups.set(g, members.filter((m) => m !== name))
        resolve()
      }),
    disconnect: () => Promise.resolve(),
    setDown: (name) => {
      lookup(name).down = true
    },
    setUp: (name) => {
      lookup(name).down = false
    }
  }
  return mock
}

/**
 * A mock typed by your real databases: it is a `FlexiDB<M>`, so it goes wherever your instance goes, with no cast.
 * Name the type of what you pass to `createFlexiDB`; each database's mock holds only what the test calls. At run
 * time it is `createMockFlexiDB(mocks)`.
 *
 * @example
 * const clients = { user: new UserClient({ adapter }) }
 * const db = mockFlexiDB<typeof clients>({ user: { user: { findMany: async () => [{ id: 1 }] } } })
 * await listUsers(db) // listUsers(db: FlexiDB<typeof clients>)
 *
 * @since 0.1.0
 */
export const mockFlexiDB = <M extends Record<string, ClientEntry>>(mocks: MockClients<M>): FlexiDB<M> & MockControls<M> =>
  createMockFlexiDB(mocks as Record<string, unknown>) as unknown as FlexiDB<M> & MockControls<M>
