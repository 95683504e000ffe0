// catalog.move for MariaDB database tenants: the MariaDB on 3306 and a second server started by the test. A consistent
// dump (--single-transaction) is loaded on the target while an app writes; the cutover parks the source's tables and
// copies them again under the fence; row counts and CHECKSUM TABLE agree; every acknowledged write is on the target;
// the parked source stays until remove({ source: true }); a move back drops the old copy first.
import * as mariadb from "mariadb"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { openCatalog } from "../src/Catalog.js"
import type { Catalog } from "../src/Catalog.js"
import { createFlexiDB } from "../src/index.js"
import * as prisma7 from "./fixtures/prisma7/clients.ts"
import { createDatabase, uniqueName } from "./support/databases.js"
import type { TestDatabase } from "./support/databases.js"
import { startMariaDb } from "./support/mariadb.js"
import type { MariaServer } from "./support/mariadb.js"

type Client = ReturnType<typeof prisma7.mysql>
const main = "mysql://root@127.0.0.1:3306/"
let second: MariaServer
let catalogDb: TestDatabase
let catalog: Catalog
const servers = () => ({ m1: main, m2: second.url })

const onMain = async (sql: string) => {
  const c = await mariadb.createConnection({ host: "127.0.0.1", port: 3306, user: "root", password: "" })
  try {
    const rows: unknown = await c.query(sql)
    return Array.isArray(rows) ? [...rows] as Array<Record<string, unknown>> : []
  } finally {
    await c.end()
  }
}

beforeAll(async () => {
  second = await startMariaDb()
  catalogDb = await createDatabase("postgresql")
  catalog = await openCatalog({ url: catalogDb.url, servers: servers() })
}, 120_000)
afterAll(async () => {
  await catalog?.close()
  await catalogDb?.drop()
  await second?.stop()
}, 60_000)

describe("catalog.move (MariaDB → MariaDB)", () => {
  it("moves a database tenant while an app writes: every acknowledged write on the target, checksums equal, the source parked until remove({ source: true })", async () => {
    const name = uniqueName("mm").replace(/^flexidb_/, "mm_")
    // Built by hand (the catalog's own create needs migrations): the row recorded by create, the tables here.
    await onMain(`CREATE DATABASE \`${name}\``)
    await onMain(`CREATE TABLE \`${name}\`.User (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(191) NOT NULL UNIQUE, name VARCHAR(191) NULL)`)
    await onMain(`CREATE TABLE \`${name}\`.Post (id INT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(191) NOT NULL, authorId INT NOT NULL)`)
    await onMain(`INSERT INTO \`${name}\`.User (email) SELECT concat('seed', seq, '@x.io') FROM \`${name}\`.seq_1_to_2000`)
    const cat = new pg.Client({ connectionString: catalogDb.url })
    await cat.connect()
    await cat.query(`INSERT INTO flexidb.tenants (name, server, kind, location, state) VALUES ($1, 'm1', 'database', $1, 'active')`, [name])
    await cat.end()
    const db = createFlexiDB({}, {
      gracefulShutdown: false,
      retry: { attempts: 0 },
      logger: false,
      tenants: { catalog: { url: catalogDb.url, servers: servers() }, client: (url) => prisma7.mysql(url) as Client }
    })
    const acked: Array<string> = []
    let stop = false
    const loop = (async () => {
      for (let i = 0; !stop; i++) {
        const key = `w${i}@x.io`
        try {
          await (await db.tenant(name)).user.create({ data: { email: key } })
          acked.push(key)
        } catch {
          // not acknowledged
        }
        await new Promise((r) => setTimeout(r, 2))
      }
    })()
    try {
      while (acked.length < 20) await new Promise((r) => setTimeout(r, 5))
      const report = await catalog.move(name, { server: "m2" })
      const at = acked.length
      while (acked.length < at + 20) await new Promise((r) => setTimeout(r, 5))
      stop = true
      await loop
      expect(report.row).toMatchObject({ name, server: "m2", state: "active", epoch: 3, source: { server: "m1", location: name } })
      expect(report.instances).toMatchObject({ live: 1, acked: 1 })
      const there = new Set((await second.query(`SELECT email FROM \`${name}\`.User`)).map((r) => String(r.email)))
      for (const key of acked) expect(there.has(key)).toBe(true)
      expect(there.size).toBe(2000 + acked.length)
      // The source's tables are parked: none left where apps look.
      expect(await onMain(`SELECT table_name FROM information_schema.tables WHERE table_schema = '${name}'`)).toEqual([])
      console.log(`MariaDB move under a writer: fence ${report.fenceMs} ms for ${report.rows} rows (${report.bytes} bytes)`)

      const back = await catalog.move(name, { server: "m1" })
      expect(back.row).toMatchObject({ server: "m1", source: { server: "m2" } })
      expect((await onMain(`SELECT count(*) AS n FROM \`${name}\`.User`))[0]!.n).toBe(BigInt(2000 + acked.length))
      await catalog.remove(name, { source: true })
      expect(await second.query(`SHOW DATABASES LIKE '${name}%'`)).toEqual([])
    } finally {
      stop = true
      await loop
      await db.disconnect()
      await catalog.remove(name, { drop: true }).catch(() => undefined)
    }
  }, 120_000)

  it("a write in flight when the fence is heard finishes before the instance lets its client go: acknowledged, not cut by its own disconnect", async () => {
    const name = uniqueName("mf").replace(/^flexidb_/, "mf_")
    await onMain(`CREATE DATABASE \`${name}\``)
    await onMain(`CREATE TABLE \`${name}\`.User (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(191) NOT NULL UNIQUE, name VARCHAR(191) NULL)`)
    const cat = new pg.Client({ connectionString: catalogDb.url })
    await cat.connect()
    await cat.query(`INSERT INTO flexidb.tenants (name, server, kind, location, state) VALUES ($1, 'm1', 'database', $1, 'active')`, [name])
    const db = createFlexiDB({}, {
      gracefulShutdown: false,
      retry: { attempts: 0 },
      logger: false,
      tenants: { catalog: { url: catalogDb.url, servers: servers() }, client: (url) => prisma7.mysql(url) as Client }
    })
    // Another session holds the key's lock: the app's create (Prisma's INSERT and SELECT in one transaction) waits on it.
    const holder = await mariadb.createConnection({ host: "127.0.0.1", port: 3306, user: "root", password: "", database: name })
    try {
      const tenantDb = await db.tenant(name)
      await tenantDb.user.create({ data: { email: "before@x.io" } })
      await holder.query(`BEGIN`)
      await holder.query(`INSERT INTO User (email) VALUES ('held@x.io')`)
      const write = tenantDb.user.create({ data: { email: "held@x.io" } }).then(() => "acknowledged", (e: unknown) => e)
      const waiting = async () =>
        (await onMain(`SELECT 1 FROM information_schema.PROCESSLIST WHERE DB = '${name}' AND COMMAND <> 'Sleep' AND INFO LIKE 'INSERT%'`)).length > 0
      for (let i = 0; !(await waiting()); i++) {
        if (i > 500) throw new Error("the app's INSERT never waited on the lock")
        await new Promise((r) => setTimeout(r, 10))
      }
      // The fence reaches the app (no mover: nothing closes the source): it retires the tenant, new callers are held.
      const { rows } = await cat.query(
        `UPDATE flexidb.tenants SET state = 'moving', epoch = epoch + 1 WHERE name = $1 RETURNING epoch`,
        [name]
      )
      await cat.query(`SELECT pg_notify('flexidb_tenants', $1)`, [JSON.stringify({ name, state: "moving", epoch: Number(rows[0]!.epoch) })])
      const held = (ms: number) =>
        Promise.race([
          db.tenant(name).then(() => false, () => true),
          new Promise<boolean>((r) => setTimeout(() => r(true), ms))
        ])
      for (let i = 0; !(await held(200)); i++) {
        if (i > 50) throw new Error("the app never heard the fence")
        await new Promise((r) => setTimeout(r, 20))
      }
      await holder.query(`ROLLBACK`)
      expect(await write).toBe("acknowledged")
      expect((await onMain(`SELECT email FROM \`${name}\`.User ORDER BY email`)).map((r) => r.email)).toEqual(["before@x.io", "held@x.io"])
      // Drained: the instance acknowledges the fence at that epoch.
      for (let i = 0; ; i++) {
        const acks = await cat.query(`SELECT 1 FROM flexidb.move_acks WHERE name = $1 AND epoch = $2`, [name, rows[0]!.epoch])
        if (acks.rows.length === 1) break
        if (i > 500) throw new Error("no acknowledgement")
        await new Promise((r) => setTimeout(r, 10))
      }
      await cat.query(`UPDATE flexidb.tenants SET state = 'active', epoch = epoch + 1 WHERE name = $1`, [name])
      await (await db.tenant(name)).user.create({ data: { email: "after@x.io" } })
    } finally {
      await holder.end().catch(() => undefined)
      await cat.end()
      await db.disconnect()
      await catalog.remove(name, { drop: true }).catch(() => undefined)
    }
  }, 120_000)
})
