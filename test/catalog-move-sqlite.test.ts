// catalog.move for SQLite file tenants, on real files: the online backup API copies the live file to the other
// folder, the cutover parks the source (nobody can write it) and copies the rest under the fence, the tables are
// compared row by row, and the row switches. An app following the catalog writes all along: every acknowledged write
// is in the target file; the source stays parked until remove({ source: true }); moves across engines are refused.
import Database from "better-sqlite3"
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openCatalog } from "../src/Catalog.js"
import type { Catalog } from "../src/Catalog.js"
import { createFlexiDB, InvalidArgumentError } from "../src/index.js"
import * as prisma7 from "./fixtures/prisma7/clients.ts"
import { createDatabase, PG_HOST, uniqueName } from "./support/databases.js"
import type { TestDatabase } from "./support/databases.js"

type Client = ReturnType<typeof prisma7.sqlite>
const dir = mkdtempSync(join(tmpdir(), "flexidb-move-sqlite-"))
const a = join(dir, "a")
const b = join(dir, "b")
const servers = { a: `file:${a}`, b: `file:${b}`, main: `postgresql://postgres@${PG_HOST}/postgres` }
let catalogDb: TestDatabase
let catalog: Catalog

beforeAll(async () => {
  mkdirSync(a)
  mkdirSync(b)
  const t = new Database(join(a, "template.db"))
  t.exec(`CREATE TABLE "User" (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, name TEXT);
    CREATE TABLE "Post" (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL, authorId INTEGER NOT NULL REFERENCES "User"(id))`)
  t.close()
  catalogDb = await createDatabase("postgresql")
  catalog = await openCatalog({ url: catalogDb.url, servers })
}, 60_000)
afterAll(async () => {
  await catalog?.close()
  await catalogDb?.drop()
  rmSync(dir, { recursive: true, force: true })
}, 60_000)

const emails = (file: string) => {
  const d = new Database(file, { readonly: true, fileMustExist: true })
  try {
    return new Set((d.prepare(`SELECT email FROM "User"`).all() as Array<{ email: string }>).map((r) => r.email))
  } finally {
    d.close()
  }
}

describe("catalog.move (SQLite file → SQLite file)", () => {
  it("moves a file tenant while an app writes: every acknowledged write in the target file, the source parked until remove({ source: true })", async () => {
    const name = uniqueName("sq").replace(/^flexidb_/, "ms_")
    await catalog.create(name, { server: "a", template: "template.db" })
    {
      const d = new Database(join(a, `${name}.db`))
      d.prepare(`WITH RECURSIVE g(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM g WHERE v < 3000)
        INSERT INTO "User" (email) SELECT 'seed' || v || '@x.io' FROM g`).run()
      d.close()
    }
    const db = createFlexiDB({}, {
      gracefulShutdown: false,
      retry: { attempts: 0 },
      logger: false,
      tenants: { catalog: { url: catalogDb.url, servers }, client: (url) => prisma7.sqlite(url.slice("file:".length)) as Client }
    })
    const acked: Array<string> = []
    let failures = 0
    let stop = false
    const loop = (async () => {
      for (let i = 0; !stop; i++) {
        const key = `w${i}@x.io`
        try {
          await (await db.tenant(name)).user.create({ data: { email: key } })
          acked.push(key)
        } catch {
          failures++
        }
        await new Promise((r) => setTimeout(r, 2))
      }
    })()
    try {
      while (acked.length < 20) await new Promise((r) => setTimeout(r, 5))
      const report = await catalog.move(name, { server: "b" })
      const at = acked.length
      while (acked.length < at + 20) await new Promise((r) => setTimeout(r, 5))
      stop = true
      await loop
      expect(report.row).toEqual({
        name,
        server: "b",
        kind: "file",
        location: `${name}.db`,
        state: "active",
        epoch: 3,
        source: { server: "a", location: `${name}.db` }
      })
      expect(report.checksum).toBe("equal")
      expect(report.instances).toMatchObject({ live: 1, acked: 1 })
      const there = emails(join(b, `${name}.db`))
      for (const key of acked) expect(there.has(key)).toBe(true)
      expect(there.size).toBe(3000 + acked.length)
      // The source is parked: no file to open where it was; the parked copy holds only what came before the fence.
      expect(existsSync(join(a, `${name}.db`))).toBe(false)
      const parked = emails(join(a, `${name}.db.parked`))
      for (const key of parked) expect(there.has(key)).toBe(true)
      console.log(`SQLite move under a writer: fence ${report.fenceMs} ms for ${report.bytes} bytes, ${failures} failed writes`)

      await catalog.remove(name, { source: true })
      expect(existsSync(join(a, `${name}.db.parked`))).toBe(false)
      expect((await catalog.get(name))!.source).toBeUndefined()

      // Back to a: the move goes; and across engines it is refused.
      const back = await catalog.move(name, { server: "a" })
      expect(back.row).toMatchObject({ server: "a", source: { server: "b" } })
      expect(emails(join(a, `${name}.db`)).size).toBe(3000 + acked.length)
      await expect(catalog.move(name, { server: "main" })).rejects.toBeInstanceOf(InvalidArgumentError)
    } finally {
      stop = true
      await loop
      await db.disconnect()
    }
  }, 120_000)
})
