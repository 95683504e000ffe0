// The Prisma generations under test, and a helper that opens a fresh database of a provider with a client.
import * as prisma6 from "../fixtures/prisma6/clients.js"
import * as prisma7 from "../fixtures/prisma7/clients.ts"
import type { Provider, TestDatabase } from "./databases.js"
import { createDatabase } from "./databases.js"

export const generations = [prisma6, prisma7] as const
export type Generation = (typeof generations)[number]

/** The calls the tests make: identical across generations and providers (the fixture schemas are the same). */
export type AnyClient = ReturnType<typeof prisma7.sqlite>

export const clientFor = (gen: Generation, db: TestDatabase): AnyClient =>
  gen[db.provider](db.url) as unknown as AnyClient

/**
 * A Prisma 7 client for `db` through a fault proxy listening on `port`. MariaDB's pool gets `timeouts` (ms): short
 * enough that a refused server fails a query at once, not after the driver's default 10 s.
 */
export const clientVia = (
  db: TestDatabase,
  port: number,
  timeouts: { connect: number; acquire: number; /** MariaDB's pool's `initializationTimeout` (README: Reliability) */ initialization?: number }
): AnyClient => {
  const url = new URL(db.url)
  url.port = String(port)
  const init = timeouts.initialization === undefined ? "" : `&initializationTimeout=${timeouts.initialization}`
  const client = db.provider === "postgresql"
    ? prisma7.postgresql(url.toString())
    : prisma7.mysql(`${url.toString()}?connectTimeout=${timeouts.connect}&acquireTimeout=${timeouts.acquire}${init}`)
  return client as unknown as AnyClient
}

export const openDatabase = async (gen: Generation, provider: Provider) => {
  const db = await createDatabase(provider)
  return { db, client: clientFor(gen, db) }
}

/** Unreachable servers with a password in the URL: nothing listens on port 1. */
export const SECRET = "hunter2-s3cret-pw"
export const downClient = (gen: Generation, provider: Exclude<Provider, "sqlite">): AnyClient =>
  (provider === "postgresql"
    ? gen.postgresql(`postgresql://postgres:${SECRET}@127.0.0.1:1/flexidb_down`)
    : gen.mysql(`mysql://root:${SECRET}@127.0.0.1:1/flexidb_down?connectTimeout=300&acquireTimeout=600`)) as unknown as AnyClient
