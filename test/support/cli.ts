// Temp projects for CLI tests, with a recording stand-in for the prisma binary.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { run } from "../../cli/main.js"

export interface Call {
  readonly argv: ReadonlyArray<string>
  readonly cwd: string
  readonly database: string
  readonly config: string
  readonly urls: Record<string, string>
  readonly start: number
  readonly end: number
}

// The stand-in: records what flexidb passed, sleeps a little (to show overlap or its absence), and fails when
// FAKE_PRISMA_FAIL names the database. With FAKE_PRISMA_WRITE_OUTPUT set, generate writes a file into each
// generator's output folder (read from the schema flexidb's config names), as the real one leaves a client there.
const standIn = `#!/usr/bin/env node
const fs = require("node:fs"), path = require("node:path")
const argv = process.argv.slice(2)
const i = argv.indexOf("--config")
const configFile = i === -1 ? "" : argv[i + 1]
const database = path.basename(configFile).replace(/\\.config\\.[a-z]+$/, "")
const start = Date.now()
const urls = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("DATABASE_URL")))
// FAKE_PRISMA_BARRIER=N: wait (up to 10 s) until N stand-ins have started, which only runs in parallel get past at
// once: overlap then shows without depending on how fast a loaded machine starts each one. Else a fixed 80 ms.
const barrier = Number(process.env.FAKE_PRISMA_BARRIER || 0)
const after = (done) => {
  if (!barrier) return setTimeout(done, 80)
  const marks = process.env.FAKE_PRISMA_LOG + ".barrier"
  fs.appendFileSync(marks, "x")
  const deadline = Date.now() + 10000
  const poll = () => fs.readFileSync(marks, "utf8").length >= barrier || Date.now() > deadline ? done() : setTimeout(poll, 10)
  poll()
}
after(() => {
  const config = configFile ? fs.readFileSync(configFile, "utf8") : ""
  fs.appendFileSync(process.env.FAKE_PRISMA_LOG, JSON.stringify({ argv, cwd: process.cwd(), database,
    config, urls, start, end: Date.now() }) + "\\n")
  if (process.env.FAKE_PRISMA_FAIL === database) {
    console.error("Error: P1001 boom for " + database + " at " + (urls["DATABASE_URL_" + database.toUpperCase()] || ""))
    process.exit(3)
  }
  const schema = /schema: (".*"),/.exec(config)
  if (argv[0] === "generate" && process.env.FAKE_PRISMA_WRITE_OUTPUT && schema) {
    const file = JSON.parse(schema[1]), source = fs.readFileSync(file, "utf8")
    for (const [, literal, variable] of source.matchAll(/output\\s*=\\s*(?:"([^"]*)"|env\\("([^"]*)"\\))/g)) {
      const dir = path.resolve(path.dirname(file), literal ?? process.env[variable])
      fs.mkdirSync(dir, { recursive: true })
      fs.writeFileSync(path.join(dir, "client.ts"), "// the stand-in's client for " + database + "\\n")
    }
  }
  console.log("prisma " + argv[0] + " ok for " + database)
})
`

export const schemaSource = (major: 6 | 7, name: string, provider: string, urlEnv = `DATABASE_URL_${name.toUpperCase()}`) =>
  major === 7
    ? `generator client {\n  provider = "prisma-client"\n  output   = "../../generated/${name}"\n}\n\ndatasource db {\n  provider = "${provider}"\n}\n\nmodel User {\n  id Int @id\n}\n`
    : `generator client {\n  provider = "prisma-client-js"\n  output   = "../../generated/${name}"\n}\n\ndatasource db {\n  provider = "${provider}"\n  url      = env("${urlEnv}")\n}\n\nmodel User {\n  id Int @id\n}\n`

export const fakeProject = (major: 6 | 7, schemas: Record<string, string>, dotenv = "") => {
  const root = mkdtempSync(join(tmpdir(), "flexidb-cli-"))
  mkdirSync(join(root, "prisma", "schemas"), { recursive: true })
  for (const [name, provider] of Object.entries(schemas)) {
    writeFileSync(join(root, "prisma", "schemas", `${name}.prisma`), schemaSource(major, name, provider))
  }
  mkdirSync(join(root, "node_modules", ".bin"), { recursive: true })
  mkdirSync(join(root, "node_modules", "prisma"), { recursive: true })
  writeFileSync(join(root, "node_modules", "prisma", "package.json"), JSON.stringify({ name: "prisma", version: major === 7 ? "7.10.1" : "6.19.3" }))
  writeFileSync(join(root, "node_modules", ".bin", "prisma"), standIn)
  chmodSync(join(root, "node_modules", ".bin", "prisma"), 0o755)
  if (dotenv) writeFileSync(join(root, ".env"), dotenv)
  const log = join(root, "calls.jsonl")
  return {
    root,
    calls: (): Array<Call> => existsSync(log) ? readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l)) : [],
    cli: (argv: ReadonlyArray<string>, env: Record<string, string> = {}) => cli(root, argv, { FAKE_PRISMA_LOG: log, ...env }),
    remove: () => rmSync(root, { recursive: true, force: true })
  }
}

/** Runs the CLI in-process in `cwd`; returns exit code and what it printed. */
export const cli = async (cwd: string, argv: ReadonlyArray<string>, env: Record<string, string | undefined> = {}, signal?: AbortSignal) => {
  const out: Array<string> = []
  const err: Array<string> = []
  const code = await run(argv, {
    cwd,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    ...(signal && { signal })
  })
  return { code, out: out.join("\n"), err: err.join("\n") }
}
