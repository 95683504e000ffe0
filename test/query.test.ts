// Database.query takes the read paths get() takes: one read re-run policy. A read inside the function whose
// connection is killed under it runs again on a fresh connection (real PostgreSQL, pg_terminate_backend); with
// 'read', a replica that turns out unreachable is taken out of rotation and the function runs on another member;
// the read client it gets refuses writes; a role that is neither fails the Effect (never a defect).
import { Cause, Effect, Exit, Option } from "effect"
import pg from "pg"
import { afterAll, describe, expect, it } from "vitest"
import { Database, InvalidArgumentError, QueryError, ReadOnlyError } from "../src/index.js"
import type { TestDatabase } from "./support/databases.js"
import { createDatabase, PG_HOST } from "./support/databases.js"
import { clientFor, clientVia, generations } from "./support/prisma.js"
import { FaultProxy } from "./support/proxy.js"

const gen = generations[1]
const dbs: Array<TestDatabase> = []
afterAll(() => Promise.all(dbs.map((d) => d.drop())))

const open = async () => {
  const db = await createDatabase("postgresql")
  dbs.push(db)
  return db
}

const quiet = { logger: false, reconnect: { enabled: false } } as const

const failure = <A, E>(exit: Exit.Exit<A, E>) => {
  expect(Exit.isFailure(exit)).toBe(true)
  if (Exit.isSuccess(exit)) throw new Error("succeeded")
  expect(Cause.isDie(exit.cause)).toBe(false)
  return Option.getOrThrow(Cause.failureOption(exit.cause))
}

describe("Database.query", () => {
  it("runs a read again when its connection is killed under it, and counts one operation", async () => {
    const db = await open()
    const name = new URL(db.url).pathname.slice(1)
    const admin = new pg.Client({ connectionString: `postgresql://postgres@${PG_HOST}/postgres` })
    await admin.connect()
    let killed = 0
    // Kills the backend running the marked query, once, as soon as it is seen running.
    const killer = (async () => {
      for (let i = 0; i < 400 && killed === 0; i++) {
        const { rows } = await admin.query(
          `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE '%flexidb-rerun-mark%' AND state = 'active' AND pid <> pg_backend_pid()`,
          [name]
        )
        if (rows.length > 0) {
          await admin.query("SELECT pg_terminate_backend($1)", [rows[0].pid])
          killed++
        }
        await new Promise((r) => setTimeout(r, 10))
      }
    })()
    try {
      const result = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const database = yield* Database.make("main", clientFor(gen, db), quiet)
        const rows = yield* database.query((c) =>
          c.$queryRawUnsafe<Array<{ n: number }>>("SELECT 1::int AS n FROM pg_sleep(0.5) /* flexidb-rerun-mark */")
        )
        const stats = yield* database.stats
        return { rows, stats }
      })))
      await killer
      expect(killed).toBe(1)
      expect(result.rows.map((r) => r.n)).toEqual([1])
      expect(result.stats).toMatchObject({ totalQueries: 1, failedQueries: 0, circuitState: "closed" })
    } finally {
      await admin.end()
    }
  })

  it("with 'read', moves to another member when its replica turns out unreachable", async () => {
    const db = await open()
    const proxy = await FaultProxy.start(Number(PG_HOST.split(":")[1]))
    try {
      const exit = await Effect.runPromiseExit(Effect.scoped(Effect.gen(function*() {
        // Replica 0 reaches the server through a proxy, and is up when the database starts; replica 1 directly.
        const database = yield* Database.make("main", {
          write: clientFor(gen, db),
          read: [clientVia(db, proxy.port, { connect: 500, acquire: 1000 }), clientFor(gen, db)]
        }, quiet)
        expect((yield* database.stats).members.map((m) => m.healthy)).toEqual([true, true, true])
        // Then the network to it goes: round robin sends the next read to it first.
        yield* Effect.promise(() => proxy.refuse())
        const counts = []
        for (let i = 0; i < 4; i++) counts.push(yield* database.query((c) => c.user.count(), "read"))
        return { counts, stats: yield* database.stats }
      })))
      expect(Exit.isSuccess(exit)).toBe(true)
      if (Exit.isFailure(exit)) return
      expect(exit.value.counts).toEqual([0, 0, 0, 0])
      const [writer, dead, alive] = exit.value.stats.members
      expect(dead).toMatchObject({ healthy: false })
      expect(alive!.totalQueries).toBe(4)
      expect(writer!.totalQueries).toBe(0)
    } finally {
      await proxy.close()
    }
  })

  it("with 'read', refuses writes; a role that is neither fails with InvalidArgumentError", async () => {
    const db = await open()
    const exits = await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const database = yield* Database.make("main", { write: clientFor(gen, db), read: clientFor(gen, db) }, quiet)
      const write = yield* Effect.exit(database.query((c) => c.user.create({ data: { email: "no@x.io" } }), "read"))
      const raw = yield* Effect.exit(database.query((c) => c.$queryRawUnsafe(`DELETE FROM "User" RETURNING id`), "read"))
      const role = yield* Effect.exit(database.query((c) => c.user.count(), "primary" as never))
      const prisma = yield* Effect.exit(database.query((c) => c.$queryRawUnsafe("SELECT * FROM missing_table")))
      return { write, raw, role, prisma }
    })))
    expect(failure(exits.write)).toBeInstanceOf(ReadOnlyError)
    expect(failure(exits.raw)).toBeInstanceOf(ReadOnlyError)
    expect(failure(exits.role)).toBeInstanceOf(InvalidArgumentError)
    expect(failure(exits.prisma)).toBeInstanceOf(QueryError)
  })
})

describe("Database.make", () => {
  it("refuses prometheus: true (it would build a MeterProvider nothing reads or shuts down)", async () => {
    const db = await open()
    let connected = false
    const client = clientFor(gen, db)
    const exit = await Effect.runPromiseExit(Effect.scoped(Effect.gen(function*() {
      yield* Database.make("main", client, { prometheus: true } as never)
      connected = true
    })))
    expect(failure(exit)).toMatchObject({ _tag: "InvalidArgumentError", path: "prometheus" })
    expect(connected).toBe(false)
    await client.$disconnect()
  })
})
