// A move under load from real processes: 8 app instances (child processes following the catalog) insert unique keys
// into one tenant while it moves from one PostgreSQL cluster to another. Afterwards: every acknowledged key is on the
// target exactly once (0 lost, 0 duplicated), no row was committed on the source after the fence (judged by the
// source's own clock, in the source), the report counts the 8 instances as acknowledged, and the write-blocked
// window (the longest write, held time included) is printed.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { uniqueName } from "./support/databases.js"
import { moveFixture } from "./support/logical.js"
import { moreAcks, startApps, stopApps } from "./support/move-fleet.js"


const fx = moveFixture(
  `CREATE TABLE "User" (id SERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT,
       at timestamptz NOT NULL DEFAULT clock_timestamp());
     CREATE TABLE "Post" (id SERIAL PRIMARY KEY, title TEXT NOT NULL, "authorId" INTEGER NOT NULL REFERENCES "User"(id))`
)
const { servers, cluster } = fx
beforeAll(fx.setup, 120_000)
afterAll(fx.teardown, 60_000)

describe("a move while 8 app processes write", () => {
  it("0 acknowledged writes lost, 0 duplicated, 0 rows committed on the source after the fence", async () => {
    const name = uniqueName("fleet").replace(/^flexidb_/, "mf_")
    await fx.catalog.create(name, { server: "east", template: "tpl" })
    await cluster("east").sql(`INSERT INTO "User" (email) SELECT 'seed' || g || '@x.io' FROM generate_series(1, 20000) g`, name)
    const apps = startApps(8, fx.catalogDb.url, servers(), name)
    try {
      await Promise.all(apps.map((a) => a.ready))
      await moreAcks(apps, 20)
      let fencedAt: Promise<string> | undefined
      const report = await fx.catalog.move(name, {
        server: "west",
        onProgress: (p) => {
          // The source's own clock once its door is closed: nothing may be committed there after this.
          if (p.step === "fenced" && fencedAt === undefined) {
            fencedAt = cluster("east").sql(`SELECT clock_timestamp()::text AS t`, name).then((r) => String(r[0]!.t))
          }
        }
      })
      await moreAcks(apps, 20)
      await stopApps(apps)

      expect(report.instances).toMatchObject({ live: 8, acked: 8 })
      const acked = apps.flatMap((a) => a.acked.map((x) => x.key))
      expect(new Set(acked).size).toBe(acked.length)
      const onTarget = (await cluster("west").sql(`SELECT email FROM "User" WHERE email NOT LIKE 'seed%'`, name)).map((r) => String(r.email))
      expect(new Set(onTarget).size).toBe(onTarget.length)
      const target = new Set(onTarget)
      const lost = acked.filter((k) => !target.has(k))
      expect(lost).toEqual([])
      // Rows on the target no app heard acknowledged: only writes whose outcome the app could not know (cut).
      const unknown = onTarget.filter((k) => !acked.includes(k))
      const failedKeys = new Set(apps.flatMap((a) => a.failed.map((f) => f.key)))
      for (const k of unknown) expect(failedKeys.has(k)).toBe(true)
      const after = await cluster("east").sql(`SELECT count(*)::int AS n FROM "User" WHERE at > $1::timestamptz`.replace("$1", `'${await fencedAt!}'`), name)
      expect(after[0]!.n).toBe(0)

      const window = Math.max(...apps.flatMap((a) => a.acked.map((x) => x.ms)))
      const failures = apps.flatMap((a) => a.failed.map((f) => f.tag))
      console.log(
        `move under 8 writers: ${acked.length} writes acknowledged, ${failures.length} failed (${[...new Set(failures)].join(", ") || "none"}); ` +
          `fence ${report.fenceMs} ms, longest write ${window.toFixed(0)} ms, copy ${report.copyMs} ms, ${report.rows} rows`
      )
    } finally {
      await stopApps(apps)
    }
  }, 180_000)
})
