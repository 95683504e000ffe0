// A prototype for issue 21, measured by bench/instructions.ts and not shipped: flexidb's per-query bookkeeping at
// the driver adapter instead of Prisma's `$extends` query hook. The adapter factory a client is built with is
// wrapped, so every `queryRaw`/`executeRaw` outside a transaction runs through the hot path (runOperation: breaker,
// counters, timing, and a plain read sent again after a lost connection) with no copy of the model arguments; a
// transaction's statements are passed through. What it cannot see: the model operation (one findMany with an
// include is several statements; middleware needs the operation's name), so it stands in for the path taken when no
// middleware is registered.
import * as Clock from "effect/Clock"
import * as MutableRef from "effect/MutableRef"
import * as Runtime from "effect/Runtime"
import * as CircuitBreaker from "../src/CircuitBreaker.js"
import type { Target } from "../src/internal/hotPath.js"
import { makeCounters, makeMiddleware, runOperation } from "../src/internal/hotPath.js"
import { isReadStatement } from "../src/internal/sql.js"
import { resolveOptions } from "../src/Options.js"

interface Query {
  readonly sql: string
}
interface Queryable {
  queryRaw(query: Query): Promise<unknown>
  executeRaw(query: Query): Promise<number>
}
interface Factory {
  connect(): Promise<Queryable & object>
}

/** A database's hot-path target, as internal/database.ts makes one (no telemetry, no lifecycle). */
export const target = (name: string): Target => {
  const options = resolveOptions({ gracefulShutdown: false })
  const clock = Clock.make()
  return {
    name,
    env: {
      options,
      clock,
      runtime: Runtime.defaultRuntime,
      middleware: makeMiddleware(),
      observe: undefined,
      telemetry: undefined,
      effectTelemetry: false
    },
    breaker: CircuitBreaker.make(options.circuitBreaker),
    counters: makeCounters(clock),
    foundDown: () => {},
    closed: MutableRef.make(false),
    labels: { "db.system.name": "sqlite", "db.namespace": name, "flexidb.role": "write", "flexidb.member": 0 },
    pool: undefined
  }
}

/** The adapter with its top-level statements through the hot path; everything else is the adapter's own. */
const wrapAdapter = <A extends Queryable & object>(adapter: A, t: Target): A => {
  const queryRaw = (query: Query) =>
    runOperation(t, "queryRaw", (q: Query) => adapter.queryRaw(q), query, isReadStatement(query.sql, "sqlite"))
  const executeRaw = (query: Query) => runOperation(t, "executeRaw", (q: Query) => adapter.executeRaw(q), query)
  return new Proxy(adapter, {
    get: (a, key) => {
      if (key === "queryRaw") return queryRaw
      if (key === "executeRaw") return executeRaw
      const value = Reflect.get(a, key)
      return typeof value === "function" ? value.bind(a) : value
    }
  })
}

/** A driver adapter factory whose adapters count, break and re-run at the SQL level. */
export const wrapFactory = <F extends Factory & object>(factory: F, t: Target): F =>
  new Proxy(factory, {
    get: (f, key) => {
      if (key === "connect") return () => f.connect().then((adapter) => wrapAdapter(adapter, t))
      const value = Reflect.get(f, key)
      return typeof value === "function" ? value.bind(f) : value
    }
  })
