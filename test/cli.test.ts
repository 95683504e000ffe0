// The flexidb CLI in-process, with a recording stand-in for prisma: what it passes for every command.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { spawnSync } from "node:child_process"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { run } from "../cli/main.js"
import { cli, fakeProject } from "./support/cli.js"

const projects: Array<{ remove: () => void }> = []
const project = (...args: Parameters<typeof fakeProject>) => {
  const p = fakeProject(...args)
  projects.push(p)
  return p
}
afterEach(() => {
  projects.splice(0).forEach((p) => p.remove())
})

describe("schemas and per-database config", () => {
  it("generate runs every schema with its own config: schema, migrations folder, URL variable (Prisma 7)", async () => {
    const p = project(7, { user: "postgresql", analytics: "sqlite" })
    const r = await p.cli(["generate"])
    expect(r.code).toBe(0)
    const calls = p.calls().sort((a, b) => a.database.localeCompare(b.database))
    expect(calls.map((c) => c.database)).toEqual(["analytics", "user"])
    for (const c of calls) {
      expect(c.argv[0]).toBe("generate")
      expect(c.argv[1]).toBe("--config")
      expect(c.cwd).toBe(p.root)
      expect(c.config).toContain(`schema: ${JSON.stringify(join(p.root, "prisma", "schemas", `${c.database}.prisma`))}`)
      expect(c.config).toContain(`migrations: { path: ${JSON.stringify(join(p.root, "prisma", "migrations", c.database))} }`)
      expect(c.config).toContain(`datasource: { url: process.env["DATABASE_URL_${c.database.toUpperCase()}"] }`)
    }
    // Nothing connects in generate: a placeholder URL of the datasource's kind stands in.
    expect(calls[1]!.urls.DATABASE_URL_USER).toMatch(/^postgresql:\/\//)
    expect(r.out).toMatch(/database\s+result\s+time/)
    expect(r.out).toContain("prisma generate: 2 databases ok")
  })

  it("runs schemas in parallel for generate, one at a time for migrate dev", async () => {
    const p = project(7, { a: "sqlite", b: "sqlite", c: "sqlite" }, "DATABASE_URL_A=file:a\nDATABASE_URL_B=file:b\nDATABASE_URL_C=file:c\n")
    // Each stand-in waits until all three have started: only a parallel run gets them past that at once.
    await p.cli(["generate"], { FAKE_PRISMA_BARRIER: "3" })
    const parallel = p.calls()
    const overlap = (cs: typeof parallel) => cs.some((x) => cs.some((y) => x !== y && x.start < y.end && y.start < x.end))
    expect(overlap(parallel)).toBe(true)
    const dev = project(7, { a: "sqlite", b: "sqlite", c: "sqlite" }, "DATABASE_URL_A=file:a\nDATABASE_URL_B=file:b\nDATABASE_URL_C=file:c\n")
    expect((await dev.cli(["migrate", "dev"])).code).toBe(0)
    const sequential = dev.calls()
    expect(sequential.map((c) => c.argv.slice(0, 2))).toEqual([["migrate", "dev"], ["migrate", "dev"], ["migrate", "dev"]])
    expect(overlap(sequential)).toBe(false)
  })

  it("takes each URL from the environment or .env; a missing one fails only that database, naming the variable", async () => {
    const p = project(7, { user: "postgresql", orders: "mysql" }, "DATABASE_URL_USER=postgresql://u:secret@db/user\n")
    const r = await p.cli(["migrate", "deploy"], { DATABASE_URL_ORDERS_X: "unrelated" })
    expect(r.code).toBe(1)
    const calls = p.calls()
    expect(calls.map((c) => c.database)).toEqual(["user"])
    expect(calls[0]!.urls.DATABASE_URL_USER).toBe("postgresql://u:secret@db/user")
    expect(calls[0]!.config).not.toContain("secret")
    expect(r.out).toContain("DATABASE_URL_ORDERS is not set")
    expect(r.out).toContain("prisma migrate deploy failed for orders")
    // The environment wins over .env.
    await p.cli(["migrate", "status", "--schema", "user"], { DATABASE_URL_USER: "postgresql://from-env/user" })
    expect(p.calls().at(-1)!.urls.DATABASE_URL_USER).toBe("postgresql://from-env/user")
  })

  it("Prisma 6: no datasource in the config; the schema's own env() variable gets this database's URL", async () => {
    const p = project(6, { user: "postgresql" }, "DATABASE_URL_USER=postgresql://db/user\n")
    writeFileSync(join(p.root, "prisma", "schemas", "user.prisma"),
      readFileSync(join(p.root, "prisma", "schemas", "user.prisma"), "utf8").replace("DATABASE_URL_USER", "DATABASE_URL"))
    expect((await p.cli(["db", "pull"])).code).toBe(0)
    const [call] = p.calls()
    expect(call!.config).not.toContain("datasource")
    expect(call!.urls.DATABASE_URL).toBe("postgresql://db/user")
    expect(call!.urls.DATABASE_URL_USER).toBe("postgresql://db/user")
  })

  it("uses a user's own prisma/config/<name>.config.ts instead of writing one", async () => {
    const p = project(7, { user: "sqlite" })
    mkdirSync(join(p.root, "prisma", "config"))
    writeFileSync(join(p.root, "prisma", "config", "user.config.ts"), "export default { schema: 'mine' }\n")
    await p.cli(["validate"])
    expect(p.calls()[0]!.argv).toEqual(["validate", "--config", join(p.root, "prisma", "config", "user.config.ts")])
  })

  it("passes flags after -- to prisma untouched", async () => {
    const p = project(7, { user: "sqlite" }, "DATABASE_URL_USER=file:u.db\n")
    await p.cli(["migrate", "deploy", "--", "--skip-generate", "--x=1"])
    expect(p.calls()[0]!.argv.slice(-2)).toEqual(["--skip-generate", "--x=1"])
  })

  it("exits non-zero naming a failed schema, and --json reports every result for CI", async () => {
    const p = project(7, { good: "sqlite", bad: "sqlite" })
    const r = await p.cli(["generate", "--json"], { FAKE_PRISMA_FAIL: "bad" })
    expect(r.code).toBe(1)
    const report = JSON.parse(r.out)
    expect(report.ok).toBe(false)
    const byName = Object.fromEntries(report.results.map((x: { database: string }) => [x.database, x]))
    expect(byName.good).toMatchObject({ ok: true, code: 0 })
    expect(byName.bad).toMatchObject({ ok: false, code: 3 })
    expect(byName.bad.output).toContain("P1001 boom for bad")
    const text = await p.cli(["generate"], { FAKE_PRISMA_FAIL: "bad" })
    expect(text.out).toContain("prisma generate failed for bad")
    expect(text.err).toContain("── bad")
    expect(text.err).toContain("P1001 boom for bad")
    // Successful runs' output reaches the user too, grouped under each database.
    expect(text.out).toContain("── good")
    expect(text.out).toContain("prisma generate ok for good")
  })

  it("a single database's run exits with Prisma's own exit code", async () => {
    const p = project(7, { only: "sqlite" })
    expect((await p.cli(["generate"], { FAKE_PRISMA_FAIL: "only" })).code).toBe(3)
    expect((await p.cli(["generate"])).code).toBe(0)
  })

  it("studio opens one database: --schema, else the first", async () => {
    const p = project(7, { b: "sqlite", a: "sqlite" }, "DATABASE_URL_A=file:a\nDATABASE_URL_B=file:b\n")
    await p.cli(["studio"])
    await p.cli(["studio", "--schema", "b"])
    expect(p.calls().map((c) => [c.argv[0], c.database])).toEqual([["studio", "a"], ["studio", "b"]])
  })
})

describe("--schema", () => {
  it("accepts a name or name.prisma", async () => {
    const p = project(7, { user: "sqlite", other: "sqlite" })
    await p.cli(["format", "--schema", "user"])
    await p.cli(["format", "--schema", "user.prisma"])
    expect(p.calls().map((c) => c.database)).toEqual(["user", "user"])
  })

  it.each(["../x", "/etc/passwd", "a/b", "..", "user/../../x.prisma", "C:\\x"])("refuses the path %s and runs nothing", async (value) => {
    const p = project(7, { user: "sqlite" })
    const r = await p.cli(["generate", "--schema", value])
    expect(r.code).toBe(1)
    expect(r.err).toContain("is refused: give a schema name from prisma/schemas")
    expect(p.calls()).toEqual([])
  })

  it("names the schemas found when the name has no schema", async () => {
    const p = project(7, { user: "sqlite", orders: "sqlite" })
    const r = await p.cli(["validate", "--schema", "usr"])
    expect(r.code).toBe(1)
    expect(r.err).toContain("No schema named 'usr' in prisma/schemas/ (found: orders, user)")
  })
})

describe("usage", () => {
  it("help and --help print usage; an unknown command fails with usage", async () => {
    const p = project(7, { user: "sqlite" })
    const help = await p.cli(["help"])
    expect(help.code).toBe(0)
    for (const c of ["init", "codegen", "generate", "validate", "format", "migrate", "diff", "db", "studio", "seed", "watch", "top"]) {
      expect(help.out).toContain(c)
    }
    expect((await p.cli(["migrate", "--help"])).out).toContain("Prisma Migrate for every database")
    const bad = await p.cli(["frobnicate"])
    expect(bad.code).toBe(2)
    expect(bad.err).toBe(
      "flexidb: unknown command 'frobnicate'.\nThe commands of flexidb: init, codegen, generate, validate, format, doctor, " +
        "migrate, tenants, diff, db, studio, seed, watch, top. Usage: flexidb --help"
    )
  })

  it("a near miss of a command says which one was meant, and runs nothing (exit 2)", async () => {
    const p = project(7, { user: "sqlite" })
    const top = await p.cli(["generat"])
    expect(top.code).toBe(2)
    expect(top.err).toContain("flexidb: unknown command 'generat'. Did you mean `generate`?")
    const nested = await p.cli(["migrate", "dpeloy", "--schema", "user"])
    expect(nested.code).toBe(2)
    expect(nested.err).toContain("flexidb: unknown command 'migrate dpeloy'. Did you mean `migrate deploy`?")
    expect(nested.err).toContain("The commands of flexidb migrate: dev, deploy, reset, status, resolve. Usage: flexidb migrate --help")
    expect((await p.cli(["vaildate"])).err).toContain("Did you mean `validate`?")
    expect((await p.cli(["stu"])).err).toContain("Did you mean `studio`?")
    expect(p.calls()).toEqual([])
  })

  it("help <unknown> exits 2; help <command> shows that command's usage", async () => {
    const p = project(7, { user: "sqlite" })
    const unknown = await p.cli(["help", "generat"])
    expect(unknown.code).toBe(2)
    expect(unknown.err).toContain("flexidb: unknown command 'generat'. Did you mean `generate`?")
    expect(unknown.out).toBe("")
    expect((await p.cli(["help", "migrate", "nope"])).code).toBe(2)
    const known = await p.cli(["help", "migrate", "deploy"])
    expect(known.code).toBe(0)
    expect(known.out).toContain("flexidb migrate deploy [--schema text]")
  })

  it("usage lines name the program and the command, and show Prisma's pass-through where Prisma runs", async () => {
    const p = project(7, { user: "sqlite" })
    const usage = async (...command: Array<string>) => {
      const r = await p.cli([...command, "--help"])
      expect(r.code).toBe(0)
      return /USAGE\n\n(.*)\n/.exec(r.out)![1]!
    }
    expect(await usage("migrate", "dev")).toBe("flexidb migrate dev [--schema text] [--json] [-- <prisma migrate dev flags>]")
    expect(await usage("generate")).toBe(
      "flexidb generate [--schema text] [--json] [--concurrency integer] [--force] [-- <prisma generate flags>]"
    )
    expect(await usage("db", "pull")).toBe("flexidb db pull [--schema text] [--json] [--concurrency integer] [-- <prisma db pull flags>]")
    expect(await usage("diff")).toMatch(/^flexidb diff .*\[-- <prisma migrate diff flags>\]$/)
    expect(await usage("studio")).toBe("flexidb studio [--schema text] [-- <prisma studio flags>]")
    expect(await usage("migrate")).toBe("flexidb migrate <command>")
    expect(await usage("init")).toBe("flexidb init")
    expect(await usage("seed")).toBe("flexidb seed [--schema text]")
    const root = await p.cli(["help"])
    expect(root.out).toContain("USAGE\n\nflexidb <command>\n")
    expect(root.out).toContain("Commands that run Prisma hand it the arguments after -- untouched: npx flexidb migrate reset --schema analytics -- --force")
    expect(root.out).not.toMatch(/^\$ /m)
  })

  it("help has no generic \"A user-defined piece of text.\"; the footer about Prisma's flags only where a command runs Prisma", async () => {
    const p = project(7, { user: "sqlite" })
    const footer = "Commands that run Prisma hand it the arguments after -- untouched"
    for (const command of [["tenants"], ["tenants", "create"], ["top"], ["doctor"], ["init"]]) {
      const r = await p.cli([...command, "--help"])
      expect(r.code).toBe(0)
      expect(r.out).toContain(`flexidb ${command.join(" ")}`)
      expect(r.out).not.toContain("A user-defined piece of text.")
      expect(r.out).not.toContain(footer)
    }
    // top's --url keeps its own description.
    expect((await p.cli(["top", "--help"])).out).toContain("--url text 1+\n\n  A flexidb metrics endpoint")
    for (const command of [["generate"], ["migrate"], ["migrate", "deploy"], ["db", "push"]]) {
      const r = await p.cli([...command, "--help"])
      expect(r.out).not.toContain("A user-defined piece of text.")
      expect(r.out).toContain(footer)
    }
  })

  it("commands that run one database at a time have no --concurrency", async () => {
    const p = project(7, { user: "sqlite" }, "DATABASE_URL_USER=file:./u.db\n")
    for (const command of [["migrate", "dev"], ["migrate", "reset"], ["db", "push"], ["studio"], ["seed"], ["watch"]]) {
      expect((await p.cli([...command, "--help"])).out, command.join(" ")).not.toContain("--concurrency")
      const r = await p.cli([...command, "--concurrency", "2"])
      expect(r.code, command.join(" ")).toBe(2)
      expect(r.err).toContain("Received unknown argument: '--concurrency'")
    }
    expect(p.calls()).toEqual([])
  })

  it("--concurrency below 1 (or above 1000) is a usage error in every command that has it", async () => {
    const p = project(7, { user: "sqlite" }, "DATABASE_URL_USER=file:./u.db\n")
    for (const command of [
      ["generate"], ["validate"], ["format"], ["diff"], ["db", "pull"], ["doctor"],
      ["migrate", "deploy"], ["migrate", "status"], ["migrate", "deploy", "--in-process"], ["migrate", "resolve", "--applied", "x"]
    ]) {
      for (const n of ["0", "-1", "1001"]) {
        const r = await p.cli([...command, "--concurrency", n])
        expect(r.code, `${command.join(" ")} --concurrency ${n}`).toBe(2)
        expect(r.err).toContain(`--concurrency must be a whole number from 1 to 1000, got ${n}.`)
      }
    }
    expect(p.calls()).toEqual([])
    expect((await p.cli(["validate", "--concurrency", "1"])).code).toBe(0)
  })

  it("no ANSI escapes unless the stream is a terminal and NO_COLOR is unset", async () => {
    const p = project(7, { user: "sqlite" })
    const help = async (color: { out: boolean; err: boolean } | undefined, env: Record<string, string> = {}) => {
      const out: Array<string> = []
      const err: Array<string> = []
      await run(["generate", "--help"], {
        cwd: p.root,
        env: { PATH: process.env.PATH, ...env },
        out: (t) => out.push(t),
        err: (t) => err.push(t),
        ...(color && { color })
      })
      const bad: Array<string> = []
      await run(["generate", "--bogus"], { cwd: p.root, env: { PATH: process.env.PATH, ...env }, out: () => {}, err: (t) => bad.push(t), ...(color && { color }) })
      return { out: out.join("\n"), err: bad.join("\n") }
    }
    const terminal = await help({ out: true, err: true })
    expect(terminal.out).toContain("\x1b[")
    for (const plain of [await help(undefined), await help({ out: false, err: false }), await help({ out: true, err: true }, { NO_COLOR: "1" })]) {
      expect(plain.out).toContain("flexidb generate [--schema text]")
      expect(plain.out).not.toContain("\x1b")
      expect(plain.err).toContain("Received unknown argument: '--bogus'")
      expect(plain.err).not.toContain("\x1b")
    }
  })

  it("the real process: no escapes through a pipe or with NO_COLOR, colour on a terminal", () => {
    const bin = join(import.meta.dirname, "..", "cli", "bin.ts")
    const tsx = join(import.meta.dirname, "..", "node_modules", "tsx", "dist", "esm", "index.mjs")
    const command = `${JSON.stringify(process.execPath)} --import ${JSON.stringify(tsx)} ${JSON.stringify(bin)} generate --help`
    const piped = spawnSync("sh", ["-c", command], { encoding: "utf8", env: { PATH: process.env.PATH } })
    expect(piped.stdout).toContain("flexidb generate [--schema text]")
    expect(piped.stdout).not.toContain("\x1b")
    // script(1) gives the command a terminal.
    const onTerminal = (env: Record<string, string>) =>
      spawnSync("script", ["-qec", command, "/dev/null"], { encoding: "utf8", env: { PATH: process.env.PATH, TERM: "xterm", ...env } }).stdout
    expect(onTerminal({})).toContain("\x1b[")
    const noColor = onTerminal({ NO_COLOR: "1" })
    expect(noColor).toContain("flexidb generate [--schema text]")
    expect(noColor).not.toContain("\x1b")
  }, 60_000)
})

describe("init", () => {
  it("scaffolds a schema for the installed Prisma and .env.example, says what to do next, never overwrites", async () => {
    for (const major of [6, 7] as const) {
      const p = project(major, {})
      const r = await p.cli(["init"])
      expect(r.code).toBe(0)
      const schema = readFileSync(join(p.root, "prisma", "schemas", "main.prisma"), "utf8")
      expect(schema).toMatch(major === 7 ? /provider\s+= "prisma-client"\n[\s\S]*importFileExtension = "js"/ : /provider\s+= "prisma-client-js"/)
      expect(readFileSync(join(p.root, ".env.example"), "utf8")).toContain("DATABASE_URL_MAIN=")
      expect(r.out).toContain("npx flexidb generate")
      expect(r.out).toContain("1. cp .env.example .env and set DATABASE_URL_MAIN")
      expect((await p.cli(["init"])).out).toContain("kept    .env.example (up to date)")
      // A project with an .env of its own is not told to copy over it.
      writeFileSync(join(p.root, ".env"), "DATABASE_URL_MAIN=postgresql://localhost/app\n")
      const withEnv = await p.cli(["init"])
      expect(withEnv.out).toContain("1. set DATABASE_URL_MAIN in .env (.env.example lists them)")
      expect(withEnv.out).not.toContain("cp .env.example")
      // The user's own lines stay; only a line for a database it lacks is added.
      writeFileSync(join(p.root, ".env.example"), "MINE=1\n")
      const again = await p.cli(["init"])
      expect(again.out).toContain("updated .env.example (added DATABASE_URL_MAIN)")
      expect(readFileSync(join(p.root, ".env.example"), "utf8")).toBe(
        "MINE=1\nDATABASE_URL_MAIN=postgresql://postgres@localhost:5432/main # prisma/schemas/main.prisma\n"
      )
    }
  })

  it("adds no example schema to a project that has a schema, even once main.prisma is gone", async () => {
    const p = project(7, { user: "postgresql", cache: "sqlite" })
    const r = await p.cli(["init"])
    expect(r.code).toBe(0)
    expect(r.out).toContain("kept    prisma/schemas/ (cache.prisma, user.prisma: no example schema added)")
    expect(existsSync(join(p.root, "prisma", "schemas", "main.prisma"))).toBe(false)
    // .env.example names the project's own databases, with a URL of each one's kind.
    expect(readFileSync(join(p.root, ".env.example"), "utf8")).toBe(
      "# One URL per database: DATABASE_URL_<NAME> for prisma/schemas/<name>.prisma\n" +
        "DATABASE_URL_CACHE=file:./cache.db # prisma/schemas/cache.prisma\n" +
        "DATABASE_URL_USER=postgresql://postgres@localhost:5432/user # prisma/schemas/user.prisma\n"
    )
    expect(r.out).toContain("set DATABASE_URL_CACHE, DATABASE_URL_USER")
    // The example itself, renamed by the user: init never brings it back.
    const q = project(7, {})
    await q.cli(["init"])
    renameSync(join(q.root, "prisma", "schemas", "main.prisma"), join(q.root, "prisma", "schemas", "app.prisma"))
    const renamed = await q.cli(["init"])
    expect(readdirSync(join(q.root, "prisma", "schemas"))).toEqual(["app.prisma"])
    // .env.example follows the rename: the old schema's line is replaced by the new one's, in its place.
    expect(renamed.out).toContain("updated .env.example (added DATABASE_URL_APP; removed DATABASE_URL_MAIN: no such schema)")
    expect(readFileSync(join(q.root, ".env.example"), "utf8")).toBe(
      "# One URL per database: DATABASE_URL_<NAME> for prisma/schemas/<name>.prisma\n" +
        "DATABASE_URL_APP=postgresql://postgres@localhost:5432/app # prisma/schemas/app.prisma\n"
    )
  })

  it(".env.example follows schema renames in codegen too, also a line written before lines named their schema; the user's lines stay", async () => {
    const p = project(7, { core: "postgresql", cache: "sqlite" })
    // As 0.1.0's init wrote it, plus the user's own lines (one of them a variable of no schema).
    writeFileSync(join(p.root, ".env.example"), [
      "# One URL per database: DATABASE_URL_<NAME> for prisma/schemas/<name>.prisma",
      "DATABASE_URL_MAIN=postgresql://postgres@localhost:5432/main",
      "DATABASE_URL_CACHE=file:./cache.db",
      "DATABASE_URL_ORDER_REPLICA=postgresql://replica@db:5432/order",
      "PORT=3000",
      ""
    ].join("\n"))
    const r = await p.cli(["codegen"])
    expect(r.code).toBe(0)
    expect(r.out).toContain("updated .env.example (added DATABASE_URL_CORE; removed DATABASE_URL_MAIN: no such schema)")
    expect(readFileSync(join(p.root, ".env.example"), "utf8")).toBe([
      "# One URL per database: DATABASE_URL_<NAME> for prisma/schemas/<name>.prisma",
      "DATABASE_URL_CORE=postgresql://postgres@localhost:5432/core # prisma/schemas/core.prisma",
      "DATABASE_URL_CACHE=file:./cache.db",
      "DATABASE_URL_ORDER_REPLICA=postgresql://replica@db:5432/order",
      "PORT=3000",
      ""
    ].join("\n"))
  })

  it("run from a subfolder, scaffolds in the project's root: the nearest folder with package.json", async () => {
    const p = project(7, {})
    rmSync(join(p.root, "prisma"), { recursive: true })
    writeFileSync(join(p.root, "package.json"), "{}")
    mkdirSync(join(p.root, "src", "lib"), { recursive: true })
    const r = await cli(join(p.root, "src", "lib"), ["init"])
    expect(r.code).toBe(0)
    expect(r.out).toContain(`In ${p.root}: the nearest folder above ${join(p.root, "src", "lib")} with prisma/schemas/ or package.json.`)
    expect(existsSync(join(p.root, "prisma", "schemas", "main.prisma"))).toBe(true)
    expect(existsSync(join(p.root, "src", "lib", "prisma"))).toBe(false)
  })
})

describe("the project's root and .env", () => {
  it("run from a subfolder, finds the project upward, as Prisma does", async () => {
    const p = project(7, { user: "sqlite" }, "DATABASE_URL_USER=file:./user.db\n")
    mkdirSync(join(p.root, "src", "routes"), { recursive: true })
    const r = await cli(join(p.root, "src", "routes"), ["migrate", "deploy"], { FAKE_PRISMA_LOG: join(p.root, "calls.jsonl") })
    expect(r.code).toBe(0)
    const [call] = p.calls()
    expect(call!.cwd).toBe(p.root)
    expect(call!.urls.DATABASE_URL_USER).toBe("file:./user.db")
    // The nearest folder with prisma/schemas/ wins over a package.json further down.
    writeFileSync(join(p.root, "src", "package.json"), "{}")
    const nested = await cli(join(p.root, "src", "routes"), ["validate"], { FAKE_PRISMA_LOG: join(p.root, "calls.jsonl") })
    expect(nested.code).toBe(1)
    expect(nested.err).toContain(
      `No schemas: none in ${join(p.root, "src", "prisma", "schemas")}/: ${join(p.root, "src")} is the nearest folder above ` +
        `${join(p.root, "src", "routes")} with package.json, and it has no prisma/schemas/ (run 'npx flexidb init' to create one there).`
    )
  })

  it("says which folders it searched when no project is found", async () => {
    const empty = mkdtempSync(join(tmpdir(), "flexidb-nowhere-"))
    projects.push({ remove: () => rmSync(empty, { recursive: true, force: true }) })
    const r = await cli(empty, ["migrate", "deploy", "--in-process"])
    expect(r.code).toBe(1)
    expect(r.err).toContain(
      `No schemas: none: no folder from ${empty} up to the file system's root has prisma/schemas/ or package.json ` +
        `(run flexidb in your project, or 'npx flexidb init' to start one in ${empty}).`
    )
    // A command that runs Prisma says so before it looks for Prisma.
    const prisma = await cli(empty, ["generate"])
    expect(prisma.code).toBe(1)
    expect(prisma.err).toBe(
      `flexidb: No project here: no folder from ${empty} up to the file system's root has prisma/schemas/ or ` +
        `package.json. Run flexidb in your project, or 'npx flexidb init' to start one here.`
    )
  })

  it("reads .env with Node's parser: quotes and comments are not part of a value", async () => {
    const p = project(7, { user: "sqlite", orders: "postgresql", logs: "sqlite" }, [
      `DATABASE_URL_USER="file:./users.db" # the users`,
      `export DATABASE_URL_ORDERS='postgresql://u:p@db/orders'`,
      `DATABASE_URL_LOGS=file:./logs.db # unquoted, a comment after a space`,
      ``
    ].join("\n"))
    expect((await p.cli(["migrate", "deploy"])).code).toBe(0)
    const urls = Object.fromEntries(p.calls().map((c) => [c.database, c.urls[`DATABASE_URL_${c.database.toUpperCase()}`]]))
    expect(urls).toEqual({ user: "file:./users.db", orders: "postgresql://u:p@db/orders", logs: "file:./logs.db" })
  })
})

describe("offline", () => {
  it("a Prisma that could not download its engines: flexidb says what makes generate work here", async () => {
    const p = project(7, { user: "postgresql" })
    // Prisma's own failure, as it prints it on a machine without internet.
    writeFileSync(join(p.root, "node_modules", ".bin", "prisma"), [
      "#!/bin/sh",
      "echo 'Error: request to https://binaries.prisma.sh/all_commits/x/debian-openssl-3.0.x/schema-engine.gz.sha256 failed, reason: getaddrinfo ENOTFOUND binaries.prisma.sh' >&2",
      "exit 1",
      ""
    ].join("\n"))
    const r = await p.cli(["generate"])
    expect(r.code).toBe(1)
    expect(r.err).toContain("point PRISMA_SCHEMA_ENGINE_BINARY at a stub that exits 1 (the README's \"Offline\")")
    // Another failure gets no such hint.
    const q = project(7, { user: "postgresql" })
    const other = await q.cli(["validate"], { FAKE_PRISMA_FAIL: "user" })
    expect(other.code).toBe(3)
    expect(other.err).not.toContain("PRISMA_SCHEMA_ENGINE_BINARY")
  })
})

describe("offline: the schema engine is a stub", () => {
  const stub = join(import.meta.dirname, "fixtures", "bin", "schema-engine")
  // Prisma's failure when PRISMA_SCHEMA_ENGINE_BINARY names the stub: it runs the stub, which exits 1.
  const failsAsPrisma = (root: string) => {
    writeFileSync(join(root, "node_modules", ".bin", "prisma"), [
      "#!/bin/sh",
      `"$PRISMA_SCHEMA_ENGINE_BINARY" can-connect-to-database 2>/dev/null`,
      `echo "Error: Schema engine exited. Error: Command failed with exit code $?: $PRISMA_SCHEMA_ENGINE_BINARY can-connect-to-database" >&2`,
      "exit 1",
      ""
    ].join("\n"))
  }

  it("migrate deploy through Prisma says what works without the engine: --in-process, --tenants; dev, diff and db push need it", async () => {
    const p = project(7, { core: "postgresql" }, "DATABASE_URL_CORE=postgresql://postgres@127.0.0.1:5432/nowhere\n")
    failsAsPrisma(p.root)
    const r = await p.cli(["migrate", "deploy", "--schema", "core"], { PRISMA_SCHEMA_ENGINE_BINARY: stub })
    expect(r.code).toBe(1)
    expect(r.err).toContain("Schema engine exited")
    expect(r.err).toContain(
      "Prisma's schema engine is not available here (PRISMA_SCHEMA_ENGINE_BINARY names one that does not run). " +
        "npx flexidb migrate deploy|status|resolve --in-process (and with --tenants <module>) work without it; " +
        "migrate dev, diff and db push need the real engine."
    )
    expect(r.err).not.toContain("could not download")
    // The same words from an engine that runs (it answers --version) are another failure: no such hint.
    const working = join(p.root, "engine-that-runs")
    writeFileSync(join(p.root, "engine-that-runs"), "#!/bin/sh\n[ \"$1\" = --version ] && exit 0\nexit 1\n")
    chmodSync(working, 0o755)
    const other = await p.cli(["migrate", "deploy", "--schema", "core"], { PRISMA_SCHEMA_ENGINE_BINARY: working })
    expect(other.code).toBe(1)
    expect(other.err).toContain("Schema engine exited")
    expect(other.err).not.toContain("not available here")
  })
})

describe("codegen", () => {
  it("imports each client relative to the output, names adapters, and never overwrites without --force", async () => {
    const p = project(7, { user: "postgresql", orders: "mysql", cache: "sqlite" })
    const r = await p.cli(["codegen"])
    expect(r.code).toBe(0)
    const file = readFileSync(join(p.root, "src", "db.ts"), "utf8")
    expect(file).toContain(`import { PrismaClient as UserClient } from "../generated/user/client.js"`)
    expect(file).toContain(`import { PrismaPg } from "@prisma/adapter-pg"`)
    expect(file).toContain(`import { PrismaMariaDb } from "@prisma/adapter-mariadb"`)
    expect(file).toContain(`import { PrismaBetterSqlite3 } from "@prisma/adapter-better-sqlite3"`)
    expect(file).toContain(`"orders": new OrdersClient({ adapter: new PrismaMariaDb(url("DATABASE_URL_ORDERS")) })`)
    writeFileSync(join(p.root, "src", "db.ts"), "// mine")
    const again = await p.cli(["codegen"])
    expect(again.code).toBe(1)
    expect(again.err).toContain("src/db.ts exists and was left untouched. Run with --force")
    expect(readFileSync(join(p.root, "src", "db.ts"), "utf8")).toBe("// mine")
    expect((await p.cli(["codegen", "--force", "--output", "lib/database.ts"])).code).toBe(0)
    expect(readFileSync(join(p.root, "lib", "database.ts"), "utf8")).toContain(`from "../generated/user/client.js"`)
    // Lines codegen did not write: --force alone names them and refuses; --yes replaces them.
    const forced = await p.cli(["codegen", "--force"])
    expect(forced.code).toBe(1)
    expect(forced.err).toContain("  1: // mine")
    expect((await p.cli(["codegen", "--force", "--yes"])).code).toBe(0)
    expect(readFileSync(join(p.root, "src", "db.ts"), "utf8")).not.toBe("// mine")
  })

  it("--force says which hand edits it would replace and refuses without --yes; its own module it replaces freely", async () => {
    const p = project(7, { user: "postgresql", cache: "sqlite" })
    expect((await p.cli(["codegen"])).code).toBe(0)
    const file = join(p.root, "src", "db.ts")
    const options = join(p.root, "src", "db.options.ts")
    writeFileSync(options, "// the user's options\n")
    // codegen's own output, regenerated after a schema change: no question asked.
    writeFileSync(join(p.root, "prisma", "schemas", "orders.prisma"), readFileSync(join(p.root, "prisma", "schemas", "user.prisma"), "utf8").replaceAll("user", "orders"))
    const regenerated = await p.cli(["codegen", "--force"])
    expect(regenerated.code).toBe(0)
    expect(regenerated.out).not.toContain("Replaced")
    expect(readFileSync(file, "utf8")).toContain("OrdersClient")
    // A hand edit: --force names it and refuses; --force --yes replaces it and says so. db.options.ts is never touched.
    const generated = readFileSync(file, "utf8")
    writeFileSync(file, generated.replace("const clients = {", "// resolve: look the tenant up\nconst clients = {"))
    const refused = await p.cli(["codegen", "--force"])
    expect(refused.code).toBe(1)
    expect(refused.err).toMatch(/src\/db\.ts has 1 line codegen did not write, which --force would replace:\n  \d+: \/\/ resolve: look the tenant up\n/)
    expect(refused.err).toContain("Move your changes to src/db.options.ts (codegen never overwrites it), or add --yes to replace them.")
    expect(readFileSync(file, "utf8")).toContain("// resolve: look the tenant up")
    const replaced = await p.cli(["codegen", "--force", "--yes"])
    expect(replaced.code).toBe(0)
    expect(replaced.out).toMatch(/Replaced 1 line of src\/db\.ts that codegen did not write:\n  \d+: \/\/ resolve: look the tenant up/)
    expect(readFileSync(file, "utf8")).toBe(generated)
    expect(readFileSync(options, "utf8")).toBe("// the user's options\n")
  })

  it("keeps the user's options in db.options.ts, which it creates once and --force never overwrites", async () => {
    const p = project(7, { user: "postgresql" })
    const first = await p.cli(["codegen"])
    expect(first.out).toContain("Created src/db.options.ts: your options for createFlexiDB (codegen never overwrites it)")
    const options = join(p.root, "src", "db.options.ts")
    expect(readFileSync(options, "utf8")).toContain(`import type { Options } from "./db.js"\n\nexport const options: Options = {`)
    const db = readFileSync(join(p.root, "src", "db.ts"), "utf8")
    expect(db).toContain(`import { options } from "./db.options.js"`)
    expect(db).toContain(`export const db = createFlexiDB(clients, options)`)
    expect(db).toContain(`export type Options = Omit<FlexiDBOptions, "tenants">`)
    // What flexidb/testing needs: the clients' type, and the instance's.
    expect(db).toContain(`export type Clients = typeof clients`)
    expect(db).toContain(`export type DB = typeof db`)
    const mine = `import type { Options } from "./db.js"\nexport const options: Options = { retry: { attempts: 9 } }\n`
    writeFileSync(options, mine)
    const again = await p.cli(["codegen", "--force", "--tenant-schema", "user"])
    expect(again.code).toBe(0)
    expect(again.out).toContain("Kept src/db.options.ts: your options (codegen never overwrites it)")
    expect(readFileSync(options, "utf8")).toBe(mine)
    expect(readFileSync(join(p.root, "src", "db.ts"), "utf8")).toContain(`import { options } from "./db.options.js"`)
    // Beside any output, named after it; .mts and .cts import as .mjs and .cjs.
    expect((await p.cli(["codegen", "--output", "lib/database.mts"])).code).toBe(0)
    expect(readFileSync(join(p.root, "lib", "database.mts"), "utf8")).toContain(`import { options } from "./database.options.mjs"`)
    expect(readFileSync(join(p.root, "lib", "database.options.mts"), "utf8")).toContain(`import type { Options } from "./database.mjs"`)
    const js = await p.cli(["codegen", "--output", "lib/database.js"])
    expect(js.code).toBe(1)
    expect(js.err).toContain("--output lib/database.js: codegen writes TypeScript; give a .ts, .mts or .cts file.")
  })

  it("says how to load .env where a variable is missing", async () => {
    const p = project(7, { user: "postgresql" })
    await p.cli(["codegen"])
    expect(readFileSync(join(p.root, "src", "db.ts"), "utf8")).toContain(
      "is not set: set it to the database's URL in the environment, or in .env (see .env.example). An app does not read " +
        `.env by itself: start it with node --env-file=.env (Node 20.6+), or import "dotenv/config" before this module.`
    )
  })

  it("lists only the packages that are missing", async () => {
    const p = project(7, { user: "postgresql", cache: "sqlite" })
    const none = await p.cli(["codegen"])
    expect(none.out).toContain("It needs: npm install flexidb @prisma/client @prisma/adapter-better-sqlite3 @prisma/adapter-pg")
    // An installed package is not listed.
    for (const pkg of ["flexidb", "@prisma/client", "@prisma/adapter-pg"]) {
      mkdirSync(join(p.root, "node_modules", pkg), { recursive: true })
      writeFileSync(join(p.root, "node_modules", pkg, "package.json"), "{}")
    }
    const some = await p.cli(["codegen", "--force"])
    expect(some.out).toMatch(/^It needs: npm install @prisma\/adapter-better-sqlite3$/m)
    mkdirSync(join(p.root, "node_modules", "@prisma", "adapter-better-sqlite3"), { recursive: true })
    writeFileSync(join(p.root, "node_modules", "@prisma", "adapter-better-sqlite3", "package.json"), "{}")
    const all = await p.cli(["codegen", "--force"])
    expect(all.code).toBe(0)
    expect(all.out).not.toContain("npm install")
    // A TypeScript project with a SQLite database also needs better-sqlite3's declarations (the adapter's import them).
    writeFileSync(join(p.root, "tsconfig.json"), "{}")
    const typed = await p.cli(["codegen", "--force"])
    expect(typed.out).toMatch(/^For TypeScript: npm install -D @types\/better-sqlite3$/m)
    mkdirSync(join(p.root, "node_modules", "@types", "better-sqlite3"), { recursive: true })
    writeFileSync(join(p.root, "node_modules", "@types", "better-sqlite3", "package.json"), "{}")
    expect((await p.cli(["codegen", "--force"])).out).not.toContain("npm install")
    // The options file shows the prometheus option commented out, with the packages it needs; once it is set,
    // codegen lists them too.
    const options = join(p.root, "src", "db.options.ts")
    const commented = readFileSync(options, "utf8")
    expect(commented).toContain(
      "  // npm i @opentelemetry/api @opentelemetry/sdk-metrics @opentelemetry/exporter-prometheus\n  // prometheus: { port: 9464 },"
    )
    writeFileSync(options, commented.replace("  // prometheus: { port: 9464 },", "  prometheus: { port: 9464 },"))
    const metrics = await p.cli(["codegen", "--force"])
    expect(metrics.out).toMatch(
      /^It needs: npm install @opentelemetry\/api @opentelemetry\/sdk-metrics @opentelemetry\/exporter-prometheus$/m
    )
  })

  it("imports prisma-client-js output from the folder itself (Prisma 6)", async () => {
    const p = project(6, { user: "sqlite" })
    await p.cli(["codegen"])
    const file = readFileSync(join(p.root, "src", "db.ts"), "utf8")
    // prisma-client-js writes a CommonJS folder: its index.js, named as a file, as ESM resolution needs.
    expect(file).toContain(`from "../generated/user/index.js"`)
    expect(file).toContain(`import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3"`)
  })
})

describe("codegen --tenant-schema", () => {
  const generated = async (schemas: Record<string, string>, args: ReadonlyArray<string>) => {
    const p = project(7, schemas)
    const r = await p.cli(["codegen", ...args])
    return { ...r, file: existsSync(join(p.root, "src", "db.ts")) ? readFileSync(join(p.root, "src", "db.ts"), "utf8") : undefined }
  }

  it("a database per tenant: resolve checks the name, fills DATABASE_URL_TENANT_TEMPLATE, bounds each pool", async () => {
    const r = await generated({ user: "postgresql", tenant: "postgresql" }, ["--tenant-schema", "tenant.prisma"])
    expect(r.code).toBe(0)
    const file = r.file!
    expect(file).toContain("Regenerate: npx flexidb codegen --tenant-schema tenant --force")
    expect(file).toContain(`import { createFlexiDB, type FlexiDBOptions, type TenantsConfig } from "flexidb"`)
    expect(file).toContain(`import { PrismaClient as TenantClient } from "../generated/tenant/client.js"`)
    // The generated code checks the name itself, refusing rather than escaping, before the URL is built.
    expect(file).toContain("if (!/^[A-Za-z0-9_-]{1,128}$/.test(name)) {")
    expect(file).toContain(`const databaseUrl = template.replaceAll("{tenant}", tenantName(name))`)
    expect(file).toContain(`process.env["DATABASE_URL_TENANT_TEMPLATE"]`)
    expect(file).toContain(`DATABASE_URL_TENANT_TEMPLATE is not set`)
    expect(file).toContain(`DATABASE_URL_TENANT_TEMPLATE has no {tenant}`)
    // PostgreSQL cuts longer database names to 63 bytes: two tenants would meet in one database.
    expect(file).toContain("> 63) {")
    expect(file).toContain(
      `resolve: (name, { connectionLimit }) =>\n    new TenantClient({ adapter: new PrismaPg({ connectionString: tenantUrl(name), max: connectionLimit }) }),`
    )
    expect(file).toContain(`} satisfies TenantsConfig<TenantClient>`)
    // The tenant schema is not one of the ordinary databases.
    expect(file).toContain(`const clients = {\n  "user": new UserClient(`)
    expect(file).toContain(`export const db = createFlexiDB(clients, { ...options, tenants: { ...tenants, ...options.tenants } })`)
    expect(file).not.toContain(`"tenant": new`)
    expect(file).not.toContain(`"DATABASE_URL_TENANT"`)
    expect(r.out).toContain("Wrote src/db.ts: user")
    expect(r.out).toContain("Tenants of tenant: a database each, at DATABASE_URL_TENANT_TEMPLATE (e.g. postgresql://localhost:5432/tenant_{tenant})")
  })

  it(".env.example gets DATABASE_URL_TENANT_TEMPLATE (database per tenant) or the shared database's line (schema per tenant); the user's lines stay", async () => {
    const p = project(7, { core: "postgresql", tenant: "postgresql" })
    // package.json records the tenants' schema, so --force keeps it.
    writeFileSync(join(p.root, "package.json"), JSON.stringify({ name: "app", private: true }))
    writeFileSync(join(p.root, ".env.example"), "MINE=1\nDATABASE_URL_CORE=postgresql://me@db/core\n")
    const r = await p.cli(["codegen", "--tenant-schema", "tenant"])
    expect(r.code).toBe(0)
    expect(r.out).toContain("updated .env.example (added DATABASE_URL_TENANT_TEMPLATE)")
    expect(readFileSync(join(p.root, ".env.example"), "utf8")).toBe([
      "MINE=1",
      "DATABASE_URL_CORE=postgresql://me@db/core",
      "DATABASE_URL_TENANT_TEMPLATE=postgresql://postgres@localhost:5432/tenant_{tenant} # each tenant's database, for prisma/schemas/tenant.prisma",
      ""
    ].join("\n"))
    // Again (--force): nothing to add, and the template line is kept, not taken for a schema's that is gone.
    expect((await p.cli(["codegen", "--force"])).out).toContain("kept    .env.example (up to date)")
    // A user's own template line is left as it is.
    writeFileSync(join(p.root, ".env.example"), "DATABASE_URL_CORE=x\nDATABASE_URL_TENANT_TEMPLATE=postgresql://me@db/t_{tenant}\n")
    expect((await p.cli(["codegen", "--force"])).out).toContain("kept    .env.example (up to date)")
    // Created from nothing: SQLite and MariaDB tenants get a template of their kind.
    const sqlite = project(7, { shop: "sqlite" })
    expect((await sqlite.cli(["codegen", "--tenant-schema", "shop"])).code).toBe(0)
    expect(readFileSync(join(sqlite.root, ".env.example"), "utf8")).toContain(
      "\nDATABASE_URL_TENANT_TEMPLATE=file:./tenants/{tenant}.db # each tenant's database, for prisma/schemas/shop.prisma\n"
    )
    const mysql = project(7, { shop: "mysql" })
    expect((await mysql.cli(["codegen", "--tenant-schema", "shop"])).code).toBe(0)
    expect(readFileSync(join(mysql.root, ".env.example"), "utf8")).toContain("DATABASE_URL_TENANT_TEMPLATE=mysql://root@localhost:3306/tenant_{tenant} #")
    // A schema per tenant: the module reads the shared database's own variable, and no template.
    const shared = project(7, { tenant: "postgresql" })
    expect((await shared.cli(["codegen", "--tenant-schema", "tenant", "--tenant-mode", "schema"])).code).toBe(0)
    const example = readFileSync(join(shared.root, ".env.example"), "utf8")
    expect(example).toContain("\nDATABASE_URL_TENANT=postgresql://postgres@localhost:5432/tenant # prisma/schemas/tenant.prisma\n")
    expect(example).not.toContain("TEMPLATE")
  })

  it("SQLite tenants get a file each with no pool; MariaDB tenants get connectionLimit in the URL", async () => {
    const sqlite = (await generated({ main: "postgresql", shop: "sqlite" }, ["--tenant-schema", "shop"])).file!
    expect(sqlite).toContain(`resolve: (name) => new ShopClient({ adapter: new PrismaBetterSqlite3({ url: tenantUrl(name) }) }),`)
    expect(sqlite).toContain("DATABASE_URL_TENANT_TEMPLATE=file:./tenants/{tenant}.db")
    expect(sqlite).toContain(`return template.replaceAll("{tenant}", tenantName(name))`)
    expect(sqlite).not.toContain("> 63")
    expect(sqlite).toContain(`"main": new MainClient(`)
    expect(sqlite).not.toContain(`"shop": new`)
    const mysql = (await generated({ shop: "mysql" }, ["--tenant-schema", "shop"])).file!
    expect(mysql).toContain(`new ShopClient({ adapter: new PrismaMariaDb(withConnectionLimit(tenantUrl(name), connectionLimit)) })`)
    expect(mysql).toContain(`limited.searchParams.set("connectionLimit", String(connectionLimit))`)
    // The only schema is the tenants': no ordinary database.
    expect(mysql).toContain(`const clients = {\n}`)
  })

  it("a PostgreSQL schema per tenant: one shared pg.Pool from the schema's URL variable, { schema } per tenant", async () => {
    const r = await generated({ user: "sqlite", tenant: "postgresql" }, ["--tenant-schema", "tenant", "--tenant-mode", "schema"])
    expect(r.code).toBe(0)
    const file = r.file!
    expect(file).toContain("Regenerate: npx flexidb codegen --tenant-schema tenant --tenant-mode schema --force")
    // A named import: pg's ESM entry has it, and CommonJS needs no esModuleInterop for it.
    expect(file).toContain(`import { Pool } from "pg"`)
    expect(file).toContain(`pool = new Pool({ connectionString: url("DATABASE_URL_TENANT"), max: 10, allowExitOnIdle: true })`)
    expect(file).toContain(`resolve: (name) => new TenantClient({ adapter: new PrismaPg(tenantPool(), { schema: tenantSchema(name) }) }),`)
    expect(file).toContain(`if (!/^[A-Za-z0-9_-]{1,63}$/.test(name) || name === "public" || name === "information_schema" || name.startsWith("pg_")) {`)
    expect(file).not.toContain("DATABASE_URL_TENANT_TEMPLATE")
    expect(file).toContain(`"user": new UserClient(`)
    expect(file).not.toContain(`"tenant": new`)
    expect(r.out).toContain("npm install flexidb @prisma/client @prisma/adapter-pg @prisma/adapter-better-sqlite3 pg")
  })

  it("refuses an unknown schema listing the schemas, schema mode off PostgreSQL, and --tenant-mode alone", async () => {
    for (const name of ["nope", "../user", "user/x"]) {
      const r = await generated({ user: "postgresql", orders: "mysql" }, ["--tenant-schema", name])
      expect(r.code).toBe(1)
      expect(r.err).toContain(`--tenant-schema '${name}': no such schema in prisma/schemas/ (found: orders, user)`)
      expect(r.file).toBeUndefined()
    }
    const mysql = await generated({ user: "postgresql", orders: "mysql" }, ["--tenant-schema", "orders", "--tenant-mode", "schema"])
    expect(mysql.code).toBe(1)
    expect(mysql.err).toContain("--tenant-mode schema needs a PostgreSQL schema; prisma/schemas/orders.prisma's provider is 'mysql'")
    expect(mysql.file).toBeUndefined()
    const alone = await generated({ user: "postgresql" }, ["--tenant-mode", "schema"])
    expect(alone.code).toBe(1)
    expect(alone.err).toContain("--tenant-mode needs --tenant-schema")
    expect((await generated({ user: "postgresql" }, ["--tenant-schema", "user", "--tenant-mode", "table"])).code).toBe(2)
  })
})

describe("seed", () => {
  it("runs prisma/seeds/<name>.js with that database's URL; a schema with no seed is skipped", async () => {
    const p = project(7, { user: "sqlite", other: "sqlite" }, "DATABASE_URL_USER=file:./user.db\n")
    mkdirSync(join(p.root, "prisma", "seeds"))
    writeFileSync(join(p.root, "prisma", "seeds", "user.js"), "console.log('seeding ' + process.env.DATABASE_URL_USER + ' ' + process.env.DATABASE_URL)\n")
    const r = await p.cli(["seed"])
    expect(r.code).toBe(0)
    expect(r.out).toContain("seeding file:./user.db file:./user.db")
    expect(r.out).toContain("other: no prisma/seeds/other.ts or .js, skipped")
    expect(existsSync(join(p.root, "calls.jsonl"))).toBe(false)
  })
})

describe("watch", () => {
  it("regenerates only the schema that changed, debounced, and stops cleanly", async () => {
    const p = project(7, { user: "sqlite", other: "sqlite" })
    const stop = new AbortController()
    const { cli } = await import("./support/cli.js")
    const running = cli(p.root, ["watch"], { FAKE_PRISMA_LOG: join(p.root, "calls.jsonl") }, stop.signal)
    await new Promise((r) => setTimeout(r, 200))
    const file = join(p.root, "prisma", "schemas", "user.prisma")
    for (let i = 0; i < 3; i++) writeFileSync(file, readFileSync(file, "utf8") + "\n")
    for (let i = 0; i < 100 && p.calls().length === 0; i++) await new Promise((r) => setTimeout(r, 20))
    await new Promise((r) => setTimeout(r, 300))
    stop.abort()
    const r = await running
    expect(r.code).toBe(0)
    expect(p.calls().map((c) => [c.argv[0], c.database])).toEqual([["generate", "user"]])
    expect(r.out).toContain("watch stopped")
  })
})
