// The fleet lock across two real processes: while one deployFleet runs on a fleet, a second on the same fleet is
// refused naming the first (lockTimeout 0), or waits for it and then finds nothing left to do.
import { type ChildProcess, spawn } from "node:child_process"
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { afterAll, describe, expect, it } from "vitest"
import { deployMigrations } from "../src/migrate.js"
import { PG_HOST, uniqueName } from "./support/databases.js"

const INIT = "20260101000000_init"
const dir = mkdtempSync(join(tmpdir(), "flexidb-fleet-lock-"))
const cleanup: Array<() => Promise<void>> = []
const children: Array<ChildProcess> = []
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL")
  for (const f of cleanup) await f()
  rmSync(dir, { recursive: true, force: true })
})

const folders = (provider: string) => {
  const full = join(dir, uniqueName("full"))
  cpSync(join(import.meta.dirname, "fixtures", "migrations", provider), full, { recursive: true })
  const initOnly = join(dir, uniqueName("init"))
  mkdirSync(initOnly)
  cpSync(join(full, INIT), join(initOnly, INIT), { recursive: true })
  return { full, initOnly }
}

/** A child deploy; `lines` resolves each printed line as it comes, `last` the final JSON. */
const child = (options: object) => {
  const p = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "support", "fleet-child.ts"), JSON.stringify(options)], {
    stdio: ["ignore", "pipe", "inherit"]
  })
  children.push(p)
  const lines: Array<string> = []
  const waiters: Array<() => void> = []
  let buffer = ""
  p.stdout!.on("data", (d: Buffer) => {
    buffer += d.toString()
    const parts = buffer.split("\n")
    buffer = parts.pop()!
    lines.push(...parts)
    for (const w of waiters.splice(0)) w()
  })
  const until = (line: string) =>
    new Promise<void>((resolve) => {
      const check = () => (lines.includes(line) ? resolve() : waiters.push(check))
      check()
    })
  const last = new Promise<any>((resolve) => p.on("exit", () => resolve(JSON.parse(lines[lines.length - 1]!))))
  return { pid: p.pid!, until, last }
}

describe("the fleet lock, two processes", () => {
  it("PostgreSQL: a second deploy is refused naming the first, or waits for it and finds nothing left", async () => {
    const name = uniqueName("lock")
    const admin = async (db: string, sql: string) => {
      const c = new pg.Client({ connectionString: `postgresql://postgres@${PG_HOST}/${db}` })
      await c.connect()
      try {
        return (await c.query(sql)).rows
      } finally {
        await c.end()
      }
    }
    await admin("postgres", `CREATE DATABASE "${name}"`)
    cleanup.push(() => admin("postgres", `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).then(() => {}))
    const { full, initOnly } = folders("postgresql")
    const tenants = Array.from({ length: 4 }, (_, i) => ({ name: `s${i}`, url: `postgresql://postgres@${PG_HOST}/${name}?schema=s${i}` }))
    for (const t of tenants) await deployMigrations({ url: t.url, migrations: initOnly })
    const gate = join(dir, uniqueName("gate"))

    const first = child({ tenants, migrations: full, waves: [1, "100%"], gate })
    await first.until("holding")
    const refused = await child({ tenants, migrations: full }).last
    expect(refused.error.code).toBe("FLEXIDB_FLEET_LOCKED")
    expect(refused.error.message).toContain(`pid ${first.pid}`)

    const waiting = child({ tenants, migrations: full, lockTimeout: "2 minutes" })
    // It is trying: its lock session is connected while the first still holds the lock.
    for (let i = 0; ; i++) {
      const rows = await admin("postgres", `SELECT 1 FROM pg_stat_activity WHERE application_name LIKE 'flexidb fleet deploy, % pid ${waiting.pid} %'`)
      if (rows.length > 0) break
      if (i > 600) throw new Error("the second deploy never tried the lock")
      await new Promise((r) => setTimeout(r, 50))
    }
    writeFileSync(gate, "")
    const done = await first.last
    expect(done.result.tenants.map((t: { status: string }) => t.status)).toEqual(["applied", "applied", "applied", "applied"])
    // Had it not waited, it would have deployed tenants 1–3 itself.
    const after = await waiting.last
    expect(after.result.tenants.map((t: { status: string }) => t.status)).toEqual(["current", "current", "current", "current"])
  }, 120_000)

  it("SQLite: a lock file beside the first tenant's file names the holder", async () => {
    const { full, initOnly } = folders("sqlite")
    const tenants = Array.from({ length: 3 }, (_, i) => ({ name: `t${i}`, url: `file:${join(dir, `${uniqueName("t")}.db`)}` }))
    for (const t of tenants) await deployMigrations({ url: t.url, migrations: initOnly })
    const gate = join(dir, uniqueName("gate"))
    const first = child({ tenants, migrations: full, waves: [1, "100%"], gate })
    await first.until("holding")
    const refused = await child({ tenants, migrations: full }).last
    expect(refused.error).toMatchObject({ code: "FLEXIDB_FLEET_LOCKED", message: expect.stringContaining(`pid ${first.pid}`) })
    writeFileSync(gate, "")
    expect((await first.last).result.tenants.every((t: { status: string }) => t.status === "applied")).toBe(true)
    // Released: the next run takes it.
    expect((await child({ tenants, migrations: full }).last).result.tenants.every((t: { status: string }) => t.status === "current")).toBe(true)
  }, 120_000)
})
