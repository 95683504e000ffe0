// One benchmark variant in a process of its own, for bench/instructions.ts to run under callgrind (the handshake is
// bench/counted.ts's).
import { PrismaBetterSqlite3 } from "@prisma/adapter-better-sqlite3"
import { createFlexiDB } from "../src/index.js"
import { SqliteClient } from "../test/fixtures/prisma7/clients.ts"
import { counted } from "./counted.js"

const [variant, file, count, warmup, errorFormat] = process.argv.slice(2) as [string, string, string, string, string]
const adapter = new PrismaBetterSqlite3({ url: `file:${file}` })
const client = new SqliteClient(errorFormat === "minimal" ? { adapter, errorFormat } : { adapter })
const flexi = createFlexiDB({ main: client }, { gracefulShutdown: false })
// As in bench/run.ts: the middleware on a second instance over the same client. Every variant's process builds
// both, so they differ only in what they run.
const withMiddleware = createFlexiDB({ main: client }, { gracefulShutdown: false })
withMiddleware.use((_db, _op, next) => next())
await Promise.all([flexi.ready(), withMiddleware.ready()])
// `intercept: false`: get() hands out the bare client.
const bare = createFlexiDB({ main: client }, { gracefulShutdown: false, intercept: false })
await bare.ready()
// The adapter-level prototype (bench/adapter.ts) and its own baseline, in their processes only (so the other
// variants' layout is the same with and without it): two more clients of the same file, one over a wrapped adapter.
const second = async (wrap: boolean) => {
  const factory = new PrismaBetterSqlite3({ url: `file:${file}` })
  const { target, wrapFactory } = wrap ? await import("./adapter.js") : { target: undefined, wrapFactory: undefined }
  const c = new SqliteClient({
    adapter: wrapFactory === undefined ? factory : wrapFactory(factory, target!("main")),
    ...(errorFormat === "minimal" ? { errorFormat: "minimal" as const } : {})
  })
  await c.$connect()
  return c
}
const prototype = variant === "adapter" || variant === "raw2"
  ? await Promise.all([second(true), second(false)])
  : undefined
const extended = client.$extends({ query: { $allOperations: ({ args, query }) => query(args) } })
const query = { where: { id: 1 } }
const variants: Record<string, () => PromiseLike<unknown>> = {
  raw: () => client.user.findUnique(query),
  extends: () => extended.user.findUnique(query),
  get: () => flexi.get("main").user.findUnique(query),
  middleware: () => withMiddleware.get("main").user.findUnique(query),
  batch: () => flexi.batch({ main: (c) => c.user.findUnique(query) }),
  bare: () => bare.get("main").user.findUnique(query),
  batchBare: () => bare.batch({ main: (c) => c.user.findUnique(query) }),
  adapter: () => prototype![0].user.findUnique(query),
  // The prototype's own raw baseline: an unwrapped client built beside the wrapped one.
  raw2: () => prototype![1].user.findUnique(query)
}
const run = variants[variant]!
await counted(run, Number(warmup), Number(count))
await Promise.all([bare.disconnect(), ...(prototype ?? []).map((c) => c.$disconnect())])
await withMiddleware.disconnect()
await flexi.disconnect()
process.exit(0)
