// `flexidb tenants list|create|suspend|resume|remove`, run in-process as the binary runs it, against a real catalog:
// servers from FLEXIDB_SERVER_<NAME> or --servers <module>, a table or --json, and no URL or password printed.
import Database from "better-sqlite3"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { run } from "../cli/main.js"
import { createDatabase } from "./support/databases.js"
import type { TestDatabase } from "./support/databases.js"

let catalogDb: TestDatabase
const dir = mkdtempSync(join(tmpdir(), "flexidb-cli-tenants-"))
beforeAll(async () => {
  catalogDb = await createDatabase("postgresql")
  const t = new Database(join(dir, "template.db"))
  t.exec(`CREATE TABLE "User" (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, name TEXT)`)
  t.close()
}, 30_000)
afterAll(async () => {
  await catalogDb?.drop()
  rmSync(dir, { recursive: true, force: true })
})

const flexidb = async (argv: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const out: Array<string> = []
  const err: Array<string> = []
  const code = await run(argv, { cwd: dir, env: { PATH: process.env.PATH, ...env }, out: (t) => out.push(t), err: (t) => err.push(t) })
  return { code, out: out.join("\n"), err: err.join("\n") }
}

describe("flexidb tenants", () => {
  it("create, list (table and --json), suspend, resume, remove: with FLEXIDB_CATALOG_URL and FLEXIDB_SERVER_FILES", async () => {
    const env = { FLEXIDB_CATALOG_URL: catalogDb.url, FLEXIDB_SERVER_FILES: `file:${dir}` }
    const created = await flexidb(["tenants", "create", "acme", "--server", "files", "--template", "template.db", "--json"], env)
    expect(created).toMatchObject({ code: 0, err: "" })
    expect(JSON.parse(created.out)).toEqual({ name: "acme", server: "files", kind: "file", location: "acme.db", state: "active", epoch: 1 })

    const again = await flexidb(["tenants", "create", "acme", "--server", "files", "--template", "template.db"], env)
    expect(again.code).toBe(1)
    expect(again.err).toMatch(/already/)

    const table = await flexidb(["tenants", "list"], env)
    expect(table.code).toBe(0)
    expect(table.out.split("\n")).toEqual([
      "NAME  SERVER  KIND  LOCATION  STATE   EPOCH",
      "acme  files   file  acme.db   active  1"
    ])

    expect(JSON.parse((await flexidb(["tenants", "suspend", "acme", "--json"], env)).out)).toMatchObject({ state: "suspended", epoch: 2 })
    // list needs only the catalog.
    const suspended = await flexidb(["tenants", "list", "--json", "--state", "suspended", "--catalog", catalogDb.url])
    expect(JSON.parse(suspended.out)).toEqual([{ name: "acme", server: "files", kind: "file", location: "acme.db", state: "suspended", epoch: 2 }])
    expect(JSON.parse((await flexidb(["tenants", "resume", "acme", "--json"], env)).out)).toMatchObject({ state: "active", epoch: 3 })
    expect(await flexidb(["tenants", "remove", "acme", "--drop"], env)).toMatchObject({ code: 0, out: "removed acme" })
    expect(JSON.parse((await flexidb(["tenants", "list", "--json"], env)).out)).toEqual([])
  }, 30_000)

  it("--servers <module>: its default export is the servers object", async () => {
    const module = join(dir, "servers.mjs")
    writeFileSync(module, `export default { local: ${JSON.stringify(`file:${dir}`)} }\n`)
    const created = await flexidb(["tenants", "create", "beta", "--server", "local", "--template", "template.db", "--servers", "servers.mjs", "--catalog", catalogDb.url])
    expect(created.code).toBe(0)
    expect(created.out).toMatch(/^NAME\s+SERVER/)
    expect(created.out).toMatch(/beta\s+local\s+file\s+beta\.db\s+active\s+1/)
    expect((await flexidb(["tenants", "remove", "beta", "--drop", "--servers", "servers.mjs", "--catalog", catalogDb.url])).code).toBe(0)
  }, 30_000)

  it("reads FLEXIDB_CATALOG_URL and FLEXIDB_SERVER_<NAME> from the project's .env, as every command does; the environment wins", async () => {
    const project = join(dir, "app")
    mkdirSync(join(project, "src"), { recursive: true })
    writeFileSync(join(project, "package.json"), `{ "name": "app", "private": true }\n`)
    writeFileSync(join(project, ".env"), `FLEXIDB_CATALOG_URL="${catalogDb.url}"\nFLEXIDB_SERVER_FILES=file:${dir}\n`)
    const inProject = async (argv: ReadonlyArray<string>, env: Record<string, string> = {}) => {
      const out: Array<string> = []
      const err: Array<string> = []
      const code = await run(argv, { cwd: join(project, "src"), env: { PATH: process.env.PATH, ...env }, out: (t) => out.push(t), err: (t) => err.push(t) })
      return { code, out: out.join("\n"), err: err.join("\n") }
    }
    const created = await inProject(["tenants", "create", "gamma", "--server", "files", "--template", join(dir, "template.db"), "--json"])
    expect(created).toMatchObject({ code: 0, err: "" })
    expect(JSON.parse(created.out)).toMatchObject({ name: "gamma", server: "files", state: "active" })
    // Nothing to build it from: created, and said to be empty.
    const empty = await inProject(["tenants", "create", "delta", "--server", "files"])
    expect(empty.code).toBe(0)
    expect(empty.err).toMatch(/^note: delta was created empty \(no --template or --migrations\)/)
    expect((await inProject(["tenants", "remove", "delta", "--drop"])).code).toBe(0)
    const overridden = await inProject(["tenants", "list"], { FLEXIDB_CATALOG_URL: "postgresql://u:hunter2@127.0.0.1:1/cat" })
    expect(overridden.code).toBe(1)
    expect(overridden.out + overridden.err).not.toMatch(/hunter2|:\/\//)
    expect((await inProject(["tenants", "remove", "gamma", "--drop"])).code).toBe(0)
  }, 30_000)

  it("no catalog: a usage error; an unknown server or tenant says so; no URL or password is ever printed", async () => {
    const none = await flexidb(["tenants", "list"])
    expect(none.code).toBe(2)
    expect(none.err).toMatch(/FLEXIDB_CATALOG_URL/)
    const env = { FLEXIDB_CATALOG_URL: catalogDb.url, FLEXIDB_SERVER_SECRET: "postgresql://u:hunter2@127.0.0.1:1/x" }
    const unknown = await flexidb(["tenants", "create", "x", "--server", "nosuch"], env)
    expect(unknown.code).toBe(1)
    expect(unknown.err).toMatch(/unknown server 'nosuch'/)
    const missing = await flexidb(["tenants", "suspend", "nosuch"], env)
    expect(missing.err).toMatch(/Unknown tenant 'nosuch'/)
    const down = await flexidb(["tenants", "list"], { FLEXIDB_CATALOG_URL: "postgresql://u:hunter2@127.0.0.1:1/cat" })
    expect(down.code).toBe(1)
    for (const r of [unknown, missing, down]) expect(r.out + r.err).not.toMatch(/hunter2|:\/\//)
  }, 30_000)
})
