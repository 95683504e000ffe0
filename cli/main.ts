/**
 * The `flexidb` command, built on @effect/cli. `run(argv, io)` runs it in-process and resolves the exit code:
 * 0 on success, 1 when a command or a database failed, 2 for a usage error. Arguments after `--` pass through to
 * Prisma untouched.
 */
import { Command, Options } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Console, Effect, Option } from "effect"
import { codegen } from "./codegen.js"
import { init } from "./init.js"
import type { Io } from "./io.js"
import type { Project } from "./project.js"
import { CliError, loadProject, selectSchemas } from "./project.js"
import type { AcrossOptions } from "./run.js"
import { runAcross } from "./run.js"
import { seed } from "./seed.js"
import { watch } from "./watch.js"

const VERSION = "0.1.0"

interface Context {
  readonly io: Io
  readonly extra: ReadonlyArray<string>
  exitCode: number
}

const schema = Options.text("schema").pipe(
  Options.withDescription("One schema from prisma/schemas (name or name.prisma); default: every schema"),
  Options.optional
)
const json = Options.boolean("json").pipe(Options.withDescription("Print the summary as JSON, for CI"))
const concurrency = Options.integer("concurrency").pipe(
  Options.withDescription("How many databases run at once"),
  Options.withDefault(4)
)

/** Turns a CLI step into a handler: CliErrors print their friendly message; anything else is a bug with a stack. */
const step = (ctx: Context, f: (project: () => Project) => Promise<number>) =>
  Effect.promise(async () => {
    try {
      ctx.exitCode = await f(() => loadProject(ctx.io.cwd, ctx.io.env))
    } catch (error) {
      if (error instanceof CliError || (error instanceof Error && error.name === "SchemaParseError")) {
        ctx.io.err(`flexidb: ${error.message}`)
        ctx.exitCode = error instanceof CliError ? error.exitCode : 1
      } else {
        ctx.io.err(error instanceof Error ? (error.stack ?? error.message) : String(error))
        ctx.exitCode = 1
      }
    }
  })

type Spec = Omit<AcrossOptions, "extra" | "json" | "concurrency">

const across = (ctx: Context, name: string, description: string, spec: Spec) =>
  Command.make(name, { schema, json, concurrency }, (o) =>
    step(ctx, async (project) => {
      const p = project()
      return runAcross(p, selectSchemas(p, Option.getOrUndefined(o.schema)), {
        ...spec,
        extra: ctx.extra,
        json: o.json,
        concurrency: o.concurrency
      }, ctx.io)
    })).pipe(Command.withDescription(description))

const tree = (ctx: Context) => {
  const parallel = (command: ReadonlyArray<string>, needsUrl: boolean) => ({ command, needsUrl, interactive: false })
  const attached = (command: ReadonlyArray<string>) => ({ command, needsUrl: true, interactive: true })
  const migrate = Command.make("migrate").pipe(
    Command.withDescription("Prisma Migrate for every database, each with its own URL and migrations folder"),
    Command.withSubcommands([
      across(ctx, "dev", "prisma migrate dev, one database at a time, terminal attached", attached(["migrate", "dev"])),
      across(ctx, "deploy", "prisma migrate deploy, in parallel", parallel(["migrate", "deploy"], true)),
      across(ctx, "reset", "prisma migrate reset, one database at a time, terminal attached", attached(["migrate", "reset"])),
      across(ctx, "status", "prisma migrate status, in parallel", parallel(["migrate", "status"], true))
    ])
  )
  const db = Command.make("db").pipe(
    Command.withDescription("prisma db push / db pull for every database"),
    Command.withSubcommands([
      across(ctx, "push", "prisma db push, one database at a time, terminal attached", attached(["db", "push"])),
      across(ctx, "pull", "prisma db pull, in parallel", parallel(["db", "pull"], true))
    ])
  )
  const studio = Command.make("studio", { schema }, (o) =>
    step(ctx, async (project) => {
      const p = project()
      const [first] = selectSchemas(p, Option.getOrUndefined(o.schema))
      return runAcross(p, [first!], { ...attached(["studio"]), extra: ctx.extra, json: false, concurrency: 1 }, ctx.io)
    })).pipe(Command.withDescription("prisma studio for one database (--schema, else the first)"))
  return Command.make("flexidb").pipe(
    Command.withDescription("Prisma's commands across every schema in prisma/schemas, each against its own database"),
    Command.withSubcommands([
      Command.make("init", {}, () => step(ctx, async () => init(ctx.io))).pipe(
        Command.withDescription("Scaffold prisma/schemas/ and .env.example; never overwrites a file")
      ),
      Command.make("codegen", {
        output: Options.text("output").pipe(Options.withDefault("src/db.ts")),
        force: Options.boolean("force").pipe(Options.withDescription("Overwrite an existing file"))
      }, (o) => step(ctx, async (project) => codegen(project(), o.output, o.force, ctx.io))).pipe(
        Command.withDescription("Write src/db.ts: every generated client wired into createFlexiDB")
      ),
      across(ctx, "generate", "prisma generate for every schema, in parallel", parallel(["generate"], false)),
      across(ctx, "validate", "prisma validate for every schema, in parallel", parallel(["validate"], false)),
      across(ctx, "format", "prisma format for every schema, in parallel", parallel(["format"], false)),
      migrate,
      across(ctx, "diff", "prisma migrate diff for every database (pass its flags after --)", parallel(["migrate", "diff"], true)),
      db,
      studio,
      Command.make("seed", { schema }, (o) =>
        step(ctx, async (project) => {
          const p = project()
          return seed(p, selectSchemas(p, Option.getOrUndefined(o.schema)), ctx.io)
        })).pipe(Command.withDescription("Run prisma/seeds/<name>.ts (tsx, else ts-node) or .js with that database's URL")),
      Command.make("watch", { schema }, (o) =>
        step(ctx, async (project) => {
          const p = project()
          return watch(p, selectSchemas(p, Option.getOrUndefined(o.schema)), ctx.io)
        })).pipe(Command.withDescription("Regenerate a schema's client when it changes; Ctrl+C stops"))
    ])
  )
}

const consoleFor = (io: Io): Console.Console => {
  const base = Effect.runSync(Console.consoleWith(Effect.succeed))
  const line = (write: (s: string) => void) => (...args: ReadonlyArray<unknown>) =>
    Effect.sync(() => write(args.map(String).join(" ")))
  return {
    ...base,
    log: line(io.out),
    info: line(io.out),
    error: line(io.err),
    warn: line(io.err),
    unsafe: { ...base.unsafe, log: (...a) => io.out(a.join(" ")), error: (...a) => io.err(a.join(" ")) }
  }
}

/** Runs the CLI with `argv` (without node and the script). Resolves the exit code; never throws. */
export const run = async (argv: ReadonlyArray<string>, io: Io): Promise<number> => {
  const dashes = argv.indexOf("--")
  const own = dashes === -1 ? argv : argv.slice(0, dashes)
  const ctx: Context = { io, extra: dashes === -1 ? [] : argv.slice(dashes + 1), exitCode: 0 }
  const app = Command.run(tree(ctx), { name: "flexidb", version: VERSION })
  const args = own.length === 0 ? ["--help"] : own[0] === "help" ? [...own.slice(1), "--help"] : own
  const exit = await app(["node", "flexidb", ...args]).pipe(
    Effect.provide(NodeContext.layer),
    Effect.withConsole(consoleFor(io)),
    Effect.runPromiseExit
  )
  return exit._tag === "Success" ? ctx.exitCode : 2
}
