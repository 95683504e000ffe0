// Raw SQL that writes never gets past a guard that refuses writes: preventWrites() on any client (the writer, an
// interactive transaction, batch()) and a pair's read client. The SQL decides, not the method's name: `$queryRaw`
// with UPDATE … RETURNING, INSERT, DELETE, DDL, SELECT … FOR UPDATE or a data-modifying WITH is a write. Refused
// means not sent: the rows stay as they were and no query is counted. Real SQLite, PostgreSQL and MariaDB, Prisma 6
// and 7. Also: a balance function that throws or strays fails the read it chose for, typed, and never throws out of
// a Promise-returning call or kills an Effect.
import { Cause, Effect, Exit, Option } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import { createFlexiDB, Database, InvalidArgumentError, ReadOnlyError } from "../src/index.js"
import type { Provider, TestDatabase } from "./support/databases.js"
import { createDatabase } from "./support/databases.js"
import type { AnyClient, Generation } from "./support/prisma.js"
import { clientFor, generations } from "./support/prisma.js"

const base = { gracefulShutdown: false } as const
const dbs: Array<TestDatabase> = []
afterAll(() => Promise.all(dbs.map((d) => d.drop())))

const open = async (gen: Generation, provider: Provider) => {
  const db = await createDatabase(provider)
  dbs.push(db)
  return db
}

/** Writes in raw SQL, each refused; `q` quotes an identifier in the provider's way. */
const rawWrites = (provider: Provider) => {
  const q = provider === "mysql" ? "`" : "\""
  const user = `${q}User${q}`
  return [
    provider === "mysql" ? `UPDATE ${user} SET name = 'changed'` : `UPDATE ${user} SET name = 'changed' RETURNING id`,
    `INSERT INTO ${user} (email) VALUES ('sneaked@x.io')`,
    `DELETE FROM ${user}`,
    `SELECT * FROM ${user} FOR UPDATE`,
    `WITH d AS (DELETE FROM ${user} RETURNING id) SELECT count(*) FROM d`,
    `/* SELECT */ DROP TABLE ${q}Post${q}`,
    `-- a read\nSELECT 1; DELETE FROM ${user}`,
    `SELECT 'DELETE' AS x; UPDATE ${user} SET name = 'changed'`
  ]
}

/** A tagged-template write, as apps write them. */
const taggedWrite = (client: AnyClient, provider: Provider) =>
  provider === "mysql"
    ? client.$queryRaw`UPDATE User SET name = ${"changed"}`
    : client.$queryRaw`UPDATE "User" SET name = ${"changed"} RETURNING id`

/** The rows as the database holds them, read with a client of its own. */
const rows = async (gen: Generation, db: TestDatabase) => {
  const own = clientFor(gen, db)
  try {
    const users = await own.user.findMany({ orderBy: { id: "asc" }, select: { email: true, name: true } })
    const posts = await own.post.count()
    return { users, posts }
  } finally {
    await own.$disconnect()
  }
}

const seed = async (client: AnyClient) => {
  const a = await client.user.create({ data: { email: "a@x.io" } })
  await client.post.create({ data: { title: "kept", authorId: a.id } })
  await client.user.create({ data: { email: "b@x.io" } })
}

const expected = { users: [{ email: "a@x.io", name: null }, { email: "b@x.io", name: null }], posts: 1 }

const cases = [
  ...generations.flatMap((gen) => (["sqlite", "postgresql"] as const).map((provider) => ({ gen, provider }))),
  { gen: generations[1], provider: "mysql" as const }
].map((c) => ({ ...c, version: c.gen.version }))

describe.each(cases)("raw SQL writes (Prisma $version)", ({ gen, provider }) => {
  it(`${provider}: preventWrites() refuses them without sending them, through the client, a transaction and batch()`, async () => {
    const db = await open(gen, provider)
    const flexi = createFlexiDB({ main: clientFor(gen, db) }, base)
    await flexi.ready()
    const client = flexi.get("main")
    await seed(client)
    const counted = () => flexi.stats().main!.totalQueries
    await flexi.preventWrites("main", async () => {
      const before = counted()
      for (const sql of rawWrites(provider)) {
        await expect(client.$queryRawUnsafe(sql), sql).rejects.toMatchObject({ _tag: "ReadOnlyError", reason: "prevented" })
      }
      await expect(taggedWrite(client, provider)).rejects.toBeInstanceOf(ReadOnlyError)
      await expect(client.$transaction(async (tx) => tx.$queryRawUnsafe(rawWrites(provider)[0]!))).rejects.toBeInstanceOf(
        ReadOnlyError
      )
      // Nothing was sent: not one query counted (the transaction's own begin and rollback are not queries).
      expect(counted()).toBe(before)
      await expect(flexi.batch({ main: (c) => c.$queryRawUnsafe(rawWrites(provider)[2]!) })).rejects.toThrow(/prevented/)
      // Reads still go: raw and model, with the rows as they are.
      expect(Number((await client.$queryRawUnsafe<Array<{ n: unknown }>>("SELECT count(*) AS n FROM " + (provider === "mysql" ? "`User`" : "\"User\"")))[0]!.n)).toBe(2)
      expect(await client.user.count()).toBe(2)
    })
    expect(await rows(gen, db)).toEqual(expected)
    await flexi.disconnect()
  })

  it(`${provider}: a read client refuses them without sending them`, async () => {
    const db = await open(gen, provider)
    // The "replica" is a second client of the same database: anything sent to it would change the rows.
    const flexi = createFlexiDB({ main: { write: clientFor(gen, db), read: clientFor(gen, db) } }, base)
    await flexi.ready()
    await seed(flexi.get("main"))
    const read = flexi.get("main", "read")
    const counted = () => flexi.stats().main!.totalQueries
    const before = counted()
    for (const sql of rawWrites(provider)) {
      await expect(read.$queryRawUnsafe(sql), sql).rejects.toMatchObject({ _tag: "ReadOnlyError", reason: "read-client" })
    }
    await expect(taggedWrite(read, provider)).rejects.toBeInstanceOf(ReadOnlyError)
    await expect(read.$transaction(async (tx) => tx.$queryRawUnsafe(rawWrites(provider)[1]!))).rejects.toBeInstanceOf(ReadOnlyError)
    expect(counted()).toBe(before)
    expect(await read.user.count()).toBe(2)
    expect((await read.$queryRaw<Array<{ one: unknown }>>`SELECT 1 AS one`).map((r) => Number(r.one))).toEqual([1])
    expect(await rows(gen, db)).toEqual(expected)
    await flexi.disconnect()
  })
})

describe("a balance function that fails", () => {
  const pair = async (balance: unknown) => {
    const db = await open(generations[1], "sqlite")
    return { write: clientFor(generations[1], db), read: [clientFor(generations[1], db)], balance: balance as never }
  }
  const failing = [
    ["throws", () => {
      throw new Error("balance bug")
    }, /the balance function threw: balance bug/],
    ["returns a replica it was not given", () => ({ index: 7, weight: 1 }), /must return one of the replicas/],
    ["returns nothing", () => undefined, /must return one of the replicas/]
  ] as const

  it.each(failing)("that %s rejects the read with InvalidArgumentError, never throwing out of the call", async (_what, balance, message) => {
    const flexi = createFlexiDB({ main: await pair(balance) }, base)
    await flexi.ready()
    const read = flexi.get("main", "read")
    let count: Promise<unknown> | undefined
    let raw: Promise<unknown> | undefined
    let tx: Promise<unknown> | undefined
    expect(() => {
      count = read.user.count()
      raw = read.$queryRawUnsafe("SELECT 1")
      tx = read.$transaction(async (t) => t.user.count())
    }).not.toThrow()
    for (const p of [count, raw, tx]) {
      await expect(p).rejects.toBeInstanceOf(InvalidArgumentError)
      await expect(p).rejects.toThrow(message)
    }
    // The writer is not the app's choice: it still answers.
    expect(await flexi.get("main").user.count()).toBe(0)
    await flexi.disconnect()
  })

  it.each(failing)("that %s fails Database.query's Effect with InvalidArgumentError (not a defect)", async (_what, balance) => {
    const client = await pair(balance)
    const exit = await Effect.runPromiseExit(Effect.scoped(Effect.flatMap(
      Database.make("main", client),
      (db) => db.query((c) => c.user.count(), "read")
    )))
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isSuccess(exit)) return
    expect(Cause.isDie(exit.cause)).toBe(false)
    expect(Option.getOrThrow(Cause.failureOption(exit.cause))).toBeInstanceOf(InvalidArgumentError)
  })
})
