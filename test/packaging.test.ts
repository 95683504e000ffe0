// Packaging: every `exports` entry imports (ESM) and requires (CJS) from the packed tarball, with types.
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { run, runOk } from "./support/run.js"

const root = join(import.meta.dirname, "..")
// Inside the repo, so the packed package resolves effect and Prisma from the repo's node_modules, as an app's would.
const work = join(root, "test", ".tmp", `pack-${process.pid}`)
const installed = join(work, "node_modules", "flexidb")
let tarball = ""

const node = (code: string, type: "module" | "commonjs") =>
  execFileSync(process.execPath, [type === "module" ? "--input-type=module" : "--input-type=commonjs", "-e", code], {
    cwd: work,
    encoding: "utf8"
  }).trim()

beforeAll(async () => {
  mkdirSync(installed, { recursive: true })
  // Its own package scope: otherwise Node's self-reference would resolve "flexidb" to the repo, not the tarball.
  writeFileSync(join(work, "package.json"), JSON.stringify({ name: "flexidb-pack-test", private: true }))
  // Build, then pack without scripts: stdout is then only npm's JSON.
  await runOk("npm", ["run", "build"], { cwd: root })
  const out = await runOk("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", work], { cwd: root })
  const { filename } = (JSON.parse(out) as Array<{ filename: string }>)[0]!
  tarball = join(work, filename)
  execFileSync("tar", ["-xzf", tarball, "-C", installed, "--strip-components=1"])
}, 120_000)
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe("the packed tarball", () => {
  it("imports every entry as ESM", () => {
    expect(node(`import * as m from "flexidb"; console.log(typeof m.createFlexiDB, typeof m.Database.make)`, "module"))
      .toBe("function function")
    expect(node(`import { createMockFlexiDB, mockFlexiDB } from "flexidb/testing"; console.log(typeof createMockFlexiDB, typeof mockFlexiDB)`, "module"))
      .toBe("function function")
    expect(node(`import { deployMigrations, migrationStatus } from "flexidb/migrate"; console.log(typeof deployMigrations, typeof migrationStatus)`, "module"))
      .toBe("function function")
  })

  it("requires every entry as CommonJS", () => {
    expect(node(`const m = require("flexidb"); console.log(typeof m.createFlexiDB, typeof m.CircuitBreaker.make)`, "commonjs"))
      .toBe("function function")
    expect(node(`const t = require("flexidb/testing"); console.log(typeof t.createMockFlexiDB, typeof t.mockFlexiDB)`, "commonjs"))
      .toBe("function function")
    expect(node(`const m = require("flexidb/migrate"); console.log(typeof m.deployMigrations, typeof m.resolveMigration)`, "commonjs"))
      .toBe("function function")
  })

  it("loads only the effect modules it uses, not effect's index, and none of the CLI's packages", () => {
    const loaded = node(`require("flexidb"); require("flexidb/testing"); console.log(JSON.stringify(Object.keys(require.cache)))`, "commonjs")
    const files = JSON.parse(loaded) as Array<string>
    expect(files.filter((f) => /[\\/]effect[\\/]dist[\\/]cjs[\\/]index\.js$/.test(f))).toEqual([])
    expect(files.filter((f) => /fast-check|@effect[\\/]|prisma-schema-wasm/.test(f))).toEqual([])
    expect(files.length).toBeLessThan(250)
  })

  it("ships type declarations for both module systems, and hides internals", () => {
    const pkg = JSON.parse(readFileSync(join(installed, "package.json"), "utf8"))
    for (const entry of [".", "./testing", "./migrate"]) {
      for (const kind of ["import", "require"]) {
        expect(existsSync(join(installed, pkg.exports[entry][kind].types)), `${entry} ${kind} types`).toBe(true)
        expect(existsSync(join(installed, pkg.exports[entry][kind].default)), `${entry} ${kind} code`).toBe(true)
      }
    }
    expect(node(`console.log(require.resolve("flexidb"))`, "commonjs")).toBe(join(installed, "dist", "index.cjs"))
    expect(() => node(`require("flexidb/internal/registry")`, "commonjs")).toThrow(/ERR_PACKAGE_PATH_NOT_EXPORTED/)
    expect(pkg.sideEffects).toBe(false)
    expect(existsSync(join(installed, "src"))).toBe(false)
    expect(existsSync(join(installed, "test"))).toBe(false)
  })

  it("ships the flexidb executable named in bin", () => {
    const pkg = JSON.parse(readFileSync(join(installed, "package.json"), "utf8"))
    const bin = join(installed, pkg.bin.flexidb)
    expect(readFileSync(bin, "utf8").startsWith("#!/usr/bin/env node")).toBe(true)
    const help = execFileSync(process.execPath, [bin, "--help"], { cwd: work, encoding: "utf8" })
    expect(help).toContain("Prisma's commands across every schema in prisma/schemas")
    expect(help).toContain("codegen")
  })

  it("runs the testing entry end to end from CommonJS", () => {
    const out = node(`
      const { createMockFlexiDB } = require("flexidb/testing")
      const db = createMockFlexiDB({ a: { user: { count: async () => 2 } } })
      db.batch({ a: (c) => c.user.count() }).then((r) => console.log(JSON.stringify(r)))
    `, "commonjs")
    expect(out).toBe(`{"a":2}`)
  })

  // @opentelemetry/* are optional peers: both builds load them lazily, and work without them.
  const client = `{ $connect: async () => {}, $disconnect: async () => {}, $queryRawUnsafe: async () => [], $extends() { return this } }`
  const metricsRun = (load: string) => `
    ${load}
    const db = createFlexiDB({ a: ${client} }, { prometheus: true, gracefulShutdown: false })
    db.metrics().then((text) => { console.log(text.includes("# TYPE") || text.includes("target_info")); return db.disconnect() })
  `
  it("type-checks a strict consumer against the shipped declarations (skipLibCheck false, nodenext, ESM and CJS)", async () => {
    const consumer = join(work, "consumer")
    mkdirSync(consumer, { recursive: true })
    writeFileSync(join(consumer, "tsconfig.json"), JSON.stringify({
      compilerOptions: { strict: true, skipLibCheck: false, module: "nodenext", moduleResolution: "nodenext", target: "es2022", noEmit: true, types: ["node"] },
      include: ["*.mts", "*.cts"]
    }))
    const uses = `
      const db = createFlexiDB({}, { gracefulShutdown: false, operationTimeout: 1000 })
      const settled: Promise<unknown> = db.batchSettled({})
      const unknown: boolean = isOutcomeUnknown(new Error("x"))
      const closed: string = new ClosedError({ operation: "get", database: "a" }).code
      const mock = createMockFlexiDB({})
      const status: typeof migrationStatus = migrationStatus
      void [settled, unknown, closed, mock, status, Database.make, FlexiDBService.FlexiDB]
    `
    writeFileSync(join(consumer, "esm.mts"), `
      import { ClosedError, createFlexiDB, Database, FlexiDBService, isOutcomeUnknown } from "flexidb"
      import { createMockFlexiDB } from "flexidb/testing"
      import { migrationStatus } from "flexidb/migrate"
      ${uses}`)
    writeFileSync(join(consumer, "cjs.cts"), `
      import flexidb = require("flexidb")
      import testing = require("flexidb/testing")
      import migrate = require("flexidb/migrate")
      const { ClosedError, createFlexiDB, Database, FlexiDBService, isOutcomeUnknown } = flexidb
      const { createMockFlexiDB } = testing
      const { migrationStatus } = migrate
      ${uses}`)
    const tsc = join(root, "node_modules", "typescript", "bin", "tsc")
    const result = await run(process.execPath, [tsc, "-p", consumer], { cwd: consumer })
    expect(result.stdout.trim()).toBe("")
    expect(result.status).toBe(0)
  }, 60_000)

  // effect is a peer dependency: an app's own effect is the one flexidb uses (Tags, Layers and errors match). Prisma 7's
  // @prisma/config pins an older effect of its own; npm nests that one under it.
  it.each(["3.22.2", "3.22.4"])("shares one copy of effect %s with an app that installs its own", async (version) => {
    const app = mkdtempSync(join(tmpdir(), "flexidb-peer-"))
    try {
      writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }))
      await runOk("npm", ["install", tarball, `effect@${version}`, "--omit=peer", "--no-audit", "--no-fund", "--prefer-offline"], {
        cwd: app
      })
      const out = execFileSync(process.execPath, ["--input-type=module", "-e", `
        import { createRequire } from "node:module"
        import { Effect } from "effect"
        import { FlexiDBService, UnknownDatabaseError } from "flexidb"
        const require = createRequire(import.meta.url)
        const fromFlexidb = createRequire(require.resolve("flexidb")).resolve("effect")
        const program = Effect.gen(function*() {
          const db = yield* FlexiDBService.FlexiDB
          return yield* Effect.catchTag(db.unregister("ghost"), "UnknownDatabaseError", (e) => Effect.succeed(e instanceof UnknownDatabaseError))
        }).pipe(Effect.provide(FlexiDBService.layer({}, { gracefulShutdown: false })))
        console.log(fromFlexidb === require.resolve("effect"), require("effect/package.json").version, await Effect.runPromise(program))
      `], { cwd: app, encoding: "utf8" })
      expect(out.trim()).toBe(`true ${version} true`)
    } finally {
      rmSync(app, { recursive: true, force: true })
    }
  }, 180_000)

  it("serves metrics() from both builds with the optional packages installed", () => {
    expect(node(metricsRun(`import { createFlexiDB } from "flexidb"`), "module")).toBe("true")
    expect(node(metricsRun(`const { createFlexiDB } = require("flexidb")`), "commonjs")).toBe("true")
  })

  it("works without the optional packages, and says what to install for metrics()", () => {
    const hide = join(work, "hide-otel.cjs")
    writeFileSync(hide, `
      const Module = require("node:module")
      const resolve = Module._resolveFilename
      Module._resolveFilename = function (request, ...rest) {
        if (request.startsWith("@opentelemetry/")) throw Object.assign(new Error("Cannot find module " + request), { code: "MODULE_NOT_FOUND" })
        return resolve.call(this, request, ...rest)
      }`)
    const run = (code: string, type: "module" | "commonjs") =>
      execFileSync(process.execPath, ["--require", hide, `--input-type=${type}`, "-e", code], { cwd: work, encoding: "utf8" }).trim()
    const plain = (load: string) => `
      ${load}
      const db = createFlexiDB({ a: ${client} }, { gracefulShutdown: false })
      db.ready().then((r) => { console.log(JSON.stringify(r)); return db.disconnect() })
      try { createFlexiDB({ b: ${client} }, { prometheus: true }) } catch (e) { console.log(e.message) }
    `
    for (const [load, type] of [[`import { createFlexiDB } from "flexidb"`, "module"], [`const { createFlexiDB } = require("flexidb")`, "commonjs"]] as const) {
      const out = run(plain(load), type)
      expect(out).toContain(`{"a":true}`)
      expect(out).toContain("missing: @opentelemetry/api, @opentelemetry/sdk-metrics, @opentelemetry/exporter-prometheus")
      expect(out).toContain("npm i @opentelemetry/api @opentelemetry/sdk-metrics @opentelemetry/exporter-prometheus")
    }
  })
})
