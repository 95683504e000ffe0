/**
 * `flexidb/testing`: the flexidb interface with no database, for unit tests of code that takes a `FlexiDB`.
 * It is the real instance — the same registry, breaker, middleware chain, round robin, validation and errors —
 * over in-memory clients that answer from your mocks. `setDown(name)` makes a database unreachable (its circuit
 * opens, health fails, stats say disconnected) to exercise your app's failure paths.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as CircuitBreaker from "./CircuitBreaker.js"
import type { ClientEntry, ClientOf, PrismaClientLike, Role } from "./Client.js"
import type { BatchResults, BatchSettledResults, FlexiDB } from "./createFlexiDB.js"
import { build } from "./internal/facade.js"
import { isClient } from "./internal/database.js"
import type { FlexiDBOptions, TenantsConfig } from "./Options.js"

type Names<M> = keyof M & string
/** The mock behind an entry: a pair's write mock (its read mocks have the same shape), else the mock itself. */
type Mocked<E> = E extends { readonly write: infer W; readonly read: unknown } ? W : E
type Ops<M> = { readonly [K in Names<M>]?: (client: Mocked<M[K]>) => PromiseLike<unknown> }

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
  get<K extends Names<M>>(name: K, role?: Role): Mocked<M[K]>
  register<N extends string, E>(name: N, client: E): MockFlexiDB<M & { [K in N]: E }>
  batch<O extends Ops<M>>(operations: O): Promise<BatchResults<O>>
  batchSettled<O extends Ops<M>>(operations: O): Promise<BatchSettledResults<O>>
  group<G extends Names<M>>(name: string, members: ReadonlyArray<G>): { [K in G]: Mocked<M[K]> }
  group(name: string): Partial<{ [K in Names<M>]: Mocked<M[K]> }>
}

/**
 * What the mock of one client may hold: any part of it, nested (`{ user: { findMany } }`). Its methods may return
 * plain values or promises of partial rows, of the types the client's methods resolve to: a mock answers only what
 * the test asks, and a key or a value the client does not have is a compile error.
 *
 * @since 0.1.0
 */
export type MockOf<C> = {
  // String keys only: Prisma's symbol-keyed type index would make every object literal fit.
  readonly [K in keyof C as K extends string ? K : never]?: C[K] extends (...args: any) => infer R
    ? (...args: any) => MockAnswer<R>
    : C[K] extends object ? MockOf<C[K]>
    : C[K]
}

/**
 * What a mocked method may return for a client method that returns `R`: its value, any part of it (rows with only
 * the fields the test reads), or a promise of either.
 *
 * @since 0.2.0
 */
export type MockAnswer<R> = PartialValue<Awaited<R>> | PromiseLike<PartialValue<Awaited<R>>>

/** A value with any of its fields left out, nested; arrays of such values. */
type PartialValue<A> = A extends ReadonlyArray<infer E> ? ReadonlyArray<PartialValue<E>>
  : A extends Date | Uint8Array | ((...args: any) => any) ? A
  : A extends object ? { readonly [K in keyof A]?: PartialValue<A[K]> }
  : A

/**
 * One mock per database of `M` (what you pass to `createFlexiDB`); `{}` for a database the test never calls.
 *
 * @since 0.1.0
 */
export type MockClients<M> = { readonly [K in Names<M>]: MockOf<ClientOf<M[K]>> }

/**
 * The databases of `X`: `X` itself when it is a clients map (`{ user: UserClient }`, what you pass to
 * `createFlexiDB`), or the map of a FlexiDB instance's type (`typeof db`). codegen's module exports both, as `Clients`
 * and `DB`.
 *
 * @since 0.2.0
 */
export type DatabasesOf<X> = X extends FlexiDB<infer M, any> ? M : X

/** The tenants' client type of a FlexiDB instance's type; never for a clients map. */
type TenantOf<X> = X extends FlexiDB<any, infer T> ? T : never

/**
 * What `mockFlexiDB<X>(mocks)` returns: the instance's own type when `X` is one (so it goes wherever your `db` goes),
 * else `FlexiDB<X>`; with the mock's controls either way.
 *
 * @since 0.2.0
 */
export type MockedFlexiDB<X> =
  & (X extends FlexiDB<any, any> ? X : X extends Record<string, ClientEntry> ? FlexiDB<X> : never)
  // With tenants, any name can be a database: setDown("acme") works on an open tenant.
  & MockControls<[TenantOf<X>] extends [never] ? DatabasesOf<X> : DatabasesOf<X> & Record<string, unknown>>

/**
 * A mock's options: `createFlexiDB`'s, except that `tenants.resolve` may return a mock of the tenant's client (or a
 * real client), which the mock serves like any database.
 *
 * @since 0.2.0
 */
export type MockOptions<T = unknown> = Omit<FlexiDBOptions, "tenants"> & {
  readonly tenants?: Omit<TenantsConfig, "resolve"> & {
    readonly resolve: (
      name: string,
      context: { readonly connectionLimit: number | undefined }
    ) => MockOf<T> | undefined | PromiseLike<MockOf<T> | undefined>
  }
}

/**
 * The controls a mock adds to the FlexiDB interface.
 *
 * @since 0.1.0
 */
export interface MockControls<M> {
  /**
   * Makes `name` unreachable: its circuit opens (operations reject with CircuitOpenError; after `resetTimeout` a
   * trial runs and fails as a real client would, with Prisma's P1001), health reports false, stats say disconnected.
   */
  setDown(name: Names<M>): void
  /** Makes `name` serve again, at once: connected, circuit closed. */
  setUp(name: Names<M>): void
  /** Every operation that ran (or was refused): `[database, operation]`, in order. */
  readonly calls: ReadonlyArray<readonly [string, string]>
}

/** Whether a memory client's server answers. */
interface Server {
  down: boolean
}

type AllOperations = (params: {
  model?: string
  operation: string
  args: ReadonlyArray<unknown>
  query: (args: ReadonlyArray<unknown>) => PromiseLike<unknown>
}) => PromiseLike<unknown>

const isObject = (u: unknown): u is Record<string | symbol, unknown> => typeof u === "object" && u !== null

const notOperations = new Set(["then", "toJSON", "constructor"])

/** What a real client says when its server is gone: Prisma's P1001, which the breaker counts. */
const unreachable = (database: string) =>
  Object.assign(new Error(`Can't reach database server: database '${database}' was set down by setDown().`), {
    code: "P1001"
  })

/** What a test reads when code calls what its mock does not have: which database, which method, and the fix. */
const notMocked = (database: string, model: string | undefined, method: string) => {
  const path = model === undefined ? method : `${model}.${method}`
  const example = model === undefined
    ? `{ ${method}: async (...args) => … }`
    : `{ ${model}: { ${method}: async (args) => … } }`
  return new Error(
    `flexidb/testing: database '${database}' has no mock for ${path}(). Add one to the mock you pass for ` +
      `'${database}': ${example}`
  )
}

/**
 * A client over a mock, shaped like a Prisma client: `$connect`, `$queryRawUnsafe("SELECT 1")` and
 * `$disconnect` answer unless the server is down, and `$extends({ query: { $allOperations } })` routes every
 * model and `$` call through the hook, as Prisma does — so the registry intercepts it like a real one.
 */
const memoryClient = (database: string, mock: Record<string | symbol, unknown>, server: Server): PrismaClientLike => {
  const call = (hooks: ReadonlyArray<AllOperations>, model: string | undefined, operation: string, target: object) =>
  (...args: ReadonlyArray<unknown>): PromiseLike<unknown> => {
    const fn = (target as Record<string, unknown>)[operation]
    const key = model === undefined ? undefined : `${model.charAt(0).toLowerCase()}${model.slice(1)}`
    const query = (input: ReadonlyArray<unknown>): Promise<unknown> => {
      if (server.down) return Promise.reject(unreachable(database))
      if (typeof fn !== "function") return Promise.reject(notMocked(database, key, operation))
      try {
        return Promise.resolve(fn.apply(target, input))
      } catch (error) {
        return Promise.reject(error)
      }
    }
    const run = (i: number, input: ReadonlyArray<unknown>): PromiseLike<unknown> =>
      i < 0 ? query(input) : hooks[i]!({ model, operation, args: input, query: (next) => run(i - 1, next) })
    return run(hooks.length - 1, args)
  }

  const model = (hooks: ReadonlyArray<AllOperations>, key: string) => {
    const inner = isObject(mock[key]) ? mock[key] : {}
    const name = `${key.charAt(0).toUpperCase()}${key.slice(1)}`
    return new Proxy(inner, {
      // `then`, `toJSON` and `constructor` are not operations: a delegate returned from an async function is not a promise.
      get: (target, method) =>
        typeof method === "string" && !notOperations.has(method)
          ? call(hooks, name, method, target)
          : Reflect.get(target, method)
    })
  }

  const view = (hooks: ReadonlyArray<AllOperations>): PrismaClientLike => {
    const self: PrismaClientLike = new Proxy(mock, {
      get(target, key) {
        if (typeof key !== "string" || notOperations.has(key)) return Reflect.get(target, key)
        switch (key) {
          case "$connect":
            return () => (server.down ? Promise.reject(unreachable(database)) : Promise.resolve())
          case "$disconnect":
            return () => Promise.resolve()
          case "$on":
            return () => {}
          case "$extends":
            return (extension: { query?: { $allOperations?: AllOperations } }) => {
              const hook = extension?.query?.$allOperations
              return view(hook === undefined ? hooks : [...hooks, hook])
            }
          case "$transaction":
            if (typeof target.$transaction === "function") return call(hooks, undefined, key, target)
            return (input: unknown) =>
              Array.isArray(input) ? Promise.all(input) : Promise.resolve((input as (tx: unknown) => unknown)(self))
        }
        // The probe of a bare client: health checks see the server, not the mock.
        if (key === "$queryRawUnsafe" && hooks.length === 0 && typeof target[key] !== "function") {
          return () => (server.down ? Promise.reject(unreachable(database)) : Promise.resolve([{ "?column?": 1 }]))
        }
        const value = target[key]
        if (key.startsWith("$") || typeof value === "function") return call(hooks, undefined, key, target)
        // A model set to null or undefined has nothing mocked, like a model left out: its calls say so.
        if (value !== undefined && value !== null && !isObject(value)) return value
        return model(hooks, key)
      }
    }) as unknown as PrismaClientLike
    return self
  }
  return view([])
}

const wrap = (name: string, mock: unknown, servers: Array<Server>): unknown => {
  if (!isObject(mock) || isClient(mock)) return mock
  if ("write" in mock && "read" in mock) {
    const one = (m: unknown) => wrap(name, m, servers)
    return { write: one(mock.write), read: Array.isArray(mock.read) ? mock.read.map(one) : one(mock.read) }
  }
  const server: Server = { down: false }
  servers.push(server)
  return memoryClient(name, mock, server)
}

/**
 * Creates a mock instance from plain objects (or real clients): a real flexidb instance whose clients answer
 * from the mocks. `options` are `createFlexiDB`'s; by default nothing reconnects in the background and no signal
 * handler is installed.
 *
 * @since 0.1.0
 */
export const createMockFlexiDB = <const M extends Record<string, unknown>>(
  mocks: M,
  options?: MockOptions
): MockFlexiDB<M> => {
  const calls: Array<readonly [string, string]> = []
  const servers = new Map<string, Array<Server>>()
  const memory = (name: string, mock: unknown) => {
    const own: Array<Server> = []
    const client = wrap(name, mock, own)
    return [client, () => servers.set(name, own)] as const
  }
  const initial = Object.entries(mocks).map(([name, mock]) => [name, ...memory(name, mock)] as const)
  const tenants = options?.tenants
  // A tenant's mock becomes an in-memory client as it is resolved, as the databases' mocks are here.
  const adopt = (name: string, mock: unknown) => {
    if (mock === undefined) return undefined
    const [client, keep] = memory(name, mock)
    keep()
    return client as ClientEntry
  }
  const { db, registry, runSync } = build(
    Object.fromEntries(initial.map(([name, client]) => [name, client])) as Record<string, ClientEntry>,
    {
      gracefulShutdown: false,
      reconnect: { enabled: false },
      // setDown() in a unit test is no news for stderr.
      logger: false,
      ...options,
      // Anything but a function is left to createFlexiDB's validation, which names it.
      ...(typeof tenants?.resolve === "function" && {
        tenants: {
          ...tenants,
          resolve: (name: string, context: { readonly connectionLimit: number | undefined }) => {
            const made: unknown = tenants.resolve(name, context)
            return isObject(made) && typeof made.then === "function"
              ? Promise.resolve(made).then((mock) => adopt(name, mock))
              : adopt(name, made)
          }
        }
      })
    } as FlexiDBOptions,
    (database, operation) => calls.push([database, operation])
  )
  initial.forEach(([, , keep]) => keep())

  const database = (name: string) => {
    const found = registry.find(name)
    if (found === undefined) throw registry.client(name, undefined)
    return found
  }
  const setServers = (name: string, down: boolean) => {
    for (const server of servers.get(name) ?? []) server.down = down
  }
  const mock = {
    ...db,
    calls,
    register: (name: string, client: unknown) => {
      const [wrapped, keep] = memory(name, client)
      db.register(name, wrapped as ClientEntry)
      keep()
      return mock
    },
    unregister: (name: string) => {
      const unregistered = db.unregister(name)
      if (registry.find(name) === undefined) servers.delete(name)
      return unregistered
    },
    setDown: (name: string) => {
      const found = database(name)
      setServers(name, true)
      runSync(Effect.zipRight(CircuitBreaker.trip(found.writer.breaker), found.markDown(unreachable(name))))
    },
    setUp: (name: string) => {
      const found = database(name)
      setServers(name, false)
      runSync(found.markUp)
    }
  }
  return mock as unknown as MockFlexiDB<M>
}

/**
 * A mock typed by your real databases: it is your instance's type, so it goes wherever your instance goes, with no
 * cast. Name either type codegen's module exports: `Clients` (each database's client, what you pass to
 * `createFlexiDB`) or `DB` (`typeof db`). Each database's mock holds only what the test calls; with tenants,
 * `options.tenants.resolve` returns a tenant's mock. At run time it is `createMockFlexiDB(mocks, options)`.
 *
 * @example
 * import type { Clients, DB } from "./db.js"
 * const db = mockFlexiDB<DB>({ user: { user: { findMany: async () => [{ id: 1 }] } } })
 * await listUsers(db) // listUsers(db: DB), or (db: FlexiDB<Clients>)
 *
 * @since 0.1.0
 */
export const mockFlexiDB = <X extends Record<string, ClientEntry> | FlexiDB<any, any>>(
  mocks: MockClients<DatabasesOf<X>>,
  options?: MockOptions<TenantOf<X>>
): MockedFlexiDB<X> =>
  createMockFlexiDB(mocks as Record<string, unknown>, options as MockOptions) as unknown as MockedFlexiDB<X>
