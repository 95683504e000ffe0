// unregister() and disconnect() while queries are in flight: they finish or fail cleanly, no client leaks.
import { afterAll, describe, expect, it } from "vitest"
import pg from "pg"
import { ClosedError, createFlexiDB, isOutcomeUnknown, UnknownDatabaseError } from "../src/index.js"
import type { FlexiDB } from "../src/index.js"
import type { TestDatabase } from "./support/databases.js"
import { PG_HOST } from "./support/databases.js"
import type { AnyClient } from "./support/prisma.js"
import { generations, openDatabase } from "./support/prisma.js"

const gen7 = generations[1]
const opened: Array<TestDatabase> = []
afterAll(() => Promise.all(opened.map((d) => d.drop())))

const sessionsOn = async (db: TestDatabase) => {
  const name = db.url.slice(db.url.lastIndexOf("/") + 1)
  const c = new pg.Client({ connectionString: `postgresql://postgres@${PG_HOST}/postgres` })
  await c.connect()
  const r = await c.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1`, [name])
  await c.end()
  return r.rows[0].n as number
}

describe("queries in flight", () => {
  it("unregister() lets in-flight queries settle and leaves no connection behind", async () => {
    const { client, db } = await openDatabase(gen7, "postgresql")
    opened.push(db)
    const flexi = createFlexiDB({ main: client }, { gracefulShutdown: false })
    await flexi.ready()
    const main = flexi.get("main")
    const inFlight = Array.from({ length: 12 }, (_, i) =>
      main.$queryRawUnsafe(`SELECT pg_sleep(0.2)::text AS slept, ${i} AS i`).then(() => "done", (e: unknown) => e))
    await new Promise((r) => setTimeout(r, 50))
    expect(await sessionsOn(db)).toBeGreaterThan(0)
    await flexi.unregister("main")
    const outcomes = await Promise.all(inFlight)
    // None hangs, none is lost.
    expect(outcomes).toHaveLength(12)
    // Those that were sent complete; those still waiting for a connection are refused, provably unsent.
    for (const o of outcomes) {
      if (o !== "done") {
        expect(o).toBeInstanceOf(Error)
        expect(isOutcomeUnknown(o)).toBe(false)
      }
    }
    expect(outcomes.filter((o) => o === "done").length).toBeGreaterThan(0)
    for (let i = 0; i < 50 && (await sessionsOn(db)) > 0; i++) await new Promise((r) => setTimeout(r, 20))
    expect(await sessionsOn(db)).toBe(0)
    await flexi.disconnect()
  })

  it.each([
    ["disconnect()", "ClosedError", ClosedError, (f: FlexiDB<{ main: AnyClient }>) => f.disconnect()],
    ["unregister()", "UnknownDatabaseError", UnknownDatabaseError, (f: FlexiDB<{ main: AnyClient }>) => f.unregister("main")]
  ] as const)(
    "a batch() begun just before %s finishes or fails with %s, and no connection outlives it",
    async (_what, _name, expected, close) => {
      const { client, db } = await openDatabase(gen7, "postgresql")
      opened.push(db)
      const flexi = createFlexiDB({ main: client }, { gracefulShutdown: false })
      await flexi.ready()
      const settled = flexi.batchSettled({ main: (c) => c.$queryRawUnsafe("SELECT 1") })
      await close(flexi)
      const outcome = (await settled).main
      if (outcome.status === "rejected") expect(outcome.reason).toBeInstanceOf(expected)
      for (let i = 0; i < 50 && (await sessionsOn(db)) > 0; i++) await new Promise((r) => setTimeout(r, 20))
      expect(await sessionsOn(db)).toBe(0)
      await flexi.disconnect()
    }
  )
})
