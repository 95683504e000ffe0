/**
 * The `flexidb` command, built on @effect/cli. Handlers are Effects that fail with a CliError; `run(argv, io)`
 * runs the program in-process and turns its Exit into the exit code: 0 on success, the CliError's code (1 when a
 * command or a database failed), 2 for a usage error. Arguments after `--` pass through to Prisma untouched.
 */
import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import type { FileSystem } from "@effect/platform"
import type { CommandExecutor } from "@effect/platform/CommandExecutor"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Cause, Console, Context, Effect, Exit, Option } from "effect"
import { codegen } from "./codegen.js"
import { databasesOverview, doctor } from "./doctor.js"
import { CliError } from "./error.js"
import { init } from "./init.js"
import { Io, stopRequested } from "./io.js"
import type { Action } from "./fleet.js"
import { runFleet } from "./fleet.js"
import type { ProjectFiles } from "./project.js"
import { currentProject, currentProjectFiles, selectSchemas } from "./project.js"
import type { AcrossOptions } from "./run.js"
import { runAcross } from "./run.js"
import { seed } from "./seed.js"
import { topCommand } from "./top.js"
import { catalogFlag, serversFlag, tenantsCommand } from "./tenants.js"
import { projectTargets, tenantTargets } from "./targets.js"
import type { CommandLine } from "./usage.js"
import { commandName, commandTree, presentTo, readCommandLine, shortHelp } from "./usage.js"
import { watch } from "./watch.js"
import type { WaveFlags } from "./waves.js"
import { deployInWaves, guardTenants, statusDrift, wantsWaves } from "./waves.js"

const VERSION = "0.1.0"

/** The arguments after `--`, passed to Prisma untouched. */
class PassThrough extends Context.Tag("flexidb/cli/PassThrough")<PassThrough, ReadonlyArray<string>>() {}

const schema = Options.text("schema").pipe(
  Options.withDescription("One schema from prisma/schemas (name or name.prisma); default: every schema"),
  Options.optional
)
const json = Options.boolean("json").pipe(Options.withDescription("Print the summary as JSON, for CI"))
/**
 * A whole-number flag from `min` to `max`; anything else (`abc`, `1.5`, `0`) is a usage error (exit 2) that says
 * what it takes, in one message (@effect/cli's own integer parsing would say "'abc' is not a integer").
 */
const wholeNumber = (name: string, min: number, max: number, takes = `a whole number from ${min} to ${max}`) =>
  Options.text(name).pipe(
    Options.withPseudoName("integer"),
    Options.mapEffect((text) => {
      const n = /^\s*[+-]?\d+\s*$/.test(text) ? Number(text) : Number.NaN
      return Number.isSafeInteger(n) && n >= min && n <= max
        ? Effect.succeed(n)
        : Effect.fail(ValidationError.invalidValue(HelpDoc.p(`--${name} must be ${takes}, got ${text.trim()}.`)))
    })
  )

/** `--concurrency`: a whole number from 1 to 1000 in every command. */
const concurrencyFlag = (description: string) =>
  wholeNumber("concurrency", 1, 1000).pipe(Options.withDescription(description))
const concurrency = concurrencyFlag("How many databases run at once").pipe(Options.withDefault(4))

/**
 * A stop request (Ctrl+C) interrupts the command: the scopes of its Prisma runs close, which ends those processes,
 * and flexidb exits 130 as a process ended by SIGINT would, so a calling script stops too.
 */
const stoppable = <R>(self: Effect.Effect<void, CliError, R>) =>
  Effect.raceFirst(self, Effect.zipRight(stopRequested, new CliError("stopped", { exitCode: 130, reported: true })))

/** The project and the schemas `--schema` selects from it. */
const selected = (option: Option.Option<string>) =>
  Effect.flatMap(currentProject, (project) =>
    Effect.map(selectSchemas(project, Option.getOrUndefined(option)), (names) => ({ project, names })))

type Spec = Omit<AcrossOptions, "extra" | "json" | "concurrency">

const across = (name: string, description: string, spec: Spec) => {
  const runIt = (o: { readonly schema: Option.Option<string>; readonly json: boolean }, concurrency: number) =>
    Effect.gen(function*() {
      const { names, project } = yield* selected(o.schema)
      yield* runAcross(project, names, { ...spec, extra: yield* PassThrough, json: o.json, concurrency })
    }).pipe(stoppable)
  // One database at a time, terminal attached: no --concurrency to offer.
  return spec.interactive
    ? Command.make(name, { schema, json }, (o) => runIt(o, 1)).pipe(Command.withDescription(description))
    : Command.make(name, { schema, json, concurrency }, (o) => runIt(o, o.concurrency)).pipe(Command.withDescription(description))
}

const parallel = (command: ReadonlyArray<string>, needsUrl: boolean): Spec => ({ command, needsUrl, interactive: false })
const attached = (command: ReadonlyArray<string>): Spec => ({ command, needsUrl: true, interactive: true })

// -----------------------------------------------------------------------------------------------------------------
// migrate deploy / status / resolve: Prisma per database, or flexidb/migrate in process (--tenants, --in-process)

const tenants = Options.text("tenants").pipe(
  Options.withDescription(
    "A module whose default export lists the tenants' databases ({ name, url } each), or `catalog` for the tenant " +
      "catalog's: migrate them in process with --schema's migrations, without Prisma"
  ),
  Options.optional
)
const tenant = Options.text("tenant").pipe(Options.withDescription("With --tenants: only this tenant"), Options.optional)
const inProcess = Options.boolean("in-process").pipe(
  Options.withDescription("Run flexidb/migrate in process on each schema's DATABASE_URL_<NAME> instead of Prisma (no schema engine)")
)
const optionalConcurrency = concurrencyFlag("How many databases run at once (default 4 with Prisma, 8 in process)").pipe(
  Options.optional
)

/** `--concurrency` (checked as it is read), else the mode's default. */
const concurrencyOf = (value: Option.Option<number>, fallback: number) => Effect.succeed(Option.getOrElse(value, () => fallback))

interface InProcessFlags {
  readonly schema: Option.Option<string>
  readonly json: boolean
  readonly concurrency: Option.Option<number>
  readonly tenants: Option.Option<string>
  readonly tenant: Option.Option<string>
  /** `--tenants catalog`: the catalog's URL and the servers module. */
  readonly catalog?: Option.Option<string>
  readonly servers?: Option.Option<string>
  readonly continueOnFailure: boolean
  /** deploy --tenants: deployFleet's waves, verify, bake, guard. */
  readonly waveFlags?: WaveFlags
  /** status --tenants --drift: fleetDrift. */
  readonly drift?: boolean
}

/**
 * The in-process run: the tenants of `--tenants` (one schema's migrations for all), or each selected schema's own
 * database. Prisma is not needed, nor looked for.
 */
const inProcessRun = (command: string, action: Action, o: InProcessFlags) =>
  Effect.gen(function*() {
    if ((yield* PassThrough).length > 0) {
      return yield* new CliError(`Arguments after -- go to Prisma, which ${command} --in-process or --tenants does not run.`)
    }
    const concurrency = yield* concurrencyOf(o.concurrency, 8)
    const project = yield* currentProjectFiles
    const module = Option.getOrUndefined(o.tenants)
    if (module === undefined && Option.isSome(o.tenant)) {
      return yield* new CliError(`--tenant picks one tenant of a --tenants <module> list: give the module too.`)
    }
    const waves = o.waveFlags !== undefined && (wantsWaves(o.waveFlags) || o.waveFlags.allowDestructive)
    if (module === undefined && (waves || o.drift === true)) {
      return yield* new CliError(`${waves ? "--waves, --verify, --bake, --max-failures and --allow-destructive" : "--drift"} work on a fleet: give --tenants <module>.`, { exitCode: 2 })
    }
    if (module === undefined) {
      const names = yield* withoutTenantsSchema(project, command, Option.getOrUndefined(o.schema))
      const targets = yield* projectTargets(project, names)
      return yield* runFleet(targets, action, {
        label: "database",
        command,
        concurrency,
        continueOnFailure: o.continueOnFailure,
        json: o.json
      })
    }
    const schemaName = Option.getOrUndefined(o.schema)
    if (schemaName === undefined && project.schemas.length !== 1) {
      return yield* new CliError(
        `--tenants needs --schema: the tenants' schema, whose prisma/migrations/<name>/ they get ` +
          `(${project.schemas.length === 0 ? "no schemas in prisma/schemas/" : `found: ${project.schemas.join(", ")}`}).`
      )
    }
    const [name] = yield* selectSchemas(project, schemaName)
    const targets = yield* tenantTargets(project, module, name!, Option.getOrUndefined(o.tenant), true, {
      catalog: o.catalog && Option.getOrUndefined(o.catalog),
      servers: o.servers && Option.getOrUndefined(o.servers)
    })
    if (waves && wantsWaves(o.waveFlags!) && action.kind === "deploy") return yield* deployInWaves(targets, o.waveFlags!, { root: project.root, concurrency, json: o.json })
    if (action.kind === "deploy" && o.waveFlags?.allowDestructive !== true) yield* guardTenants(targets)
    if (o.drift === true) return yield* statusDrift(targets, { json: o.json })
    yield* runFleet(targets, action, {
      label: "tenant",
      command,
      concurrency,
      continueOnFailure: o.continueOnFailure,
      json: o.json,
      context: { schema: name!, tenants: module }
    })
  })

/**
 * The schemas a migrate command without `--tenants` runs on: never the tenants' schema (package.json's
 * `"flexidb": { "tenantSchema" }`), whose databases are the tenants'. Named with `--schema`, it is a usage error
 * that says what works; among all schemas it is left out, with a line on stderr.
 */
const withoutTenantsSchema = (project: ProjectFiles, command: string, schemaOption: string | undefined) =>
  Effect.gen(function*() {
    const names = yield* selectSchemas(project, schemaOption)
    const tenants = project.tenants?.schema
    if (tenants === undefined || !names.includes(tenants)) return names
    const fix = `npx flexidb ${command} --tenants <module> --schema ${tenants}`
    if (schemaOption !== undefined) {
      return yield* new CliError(
        `${tenants} is the tenants' schema (package.json "flexidb": { "tenantSchema" }): its databases are the ` +
          `tenants', listed by a module. Add --tenants: ${fix}`,
        { exitCode: 2 }
      )
    }
    yield* Console.error(`${command}: left out ${tenants}, the tenants' schema (${fix} runs it on every tenant)`)
    const rest = names.filter((n) => n !== tenants)
    if (rest.length === 0) return yield* new CliError(`${command}: no schema but the tenants': run ${fix}`, { exitCode: 2 })
    return rest
  })

/** Flags that only the in-process run has: refused with Prisma, naming what would make them work. */
const onlyInProcess = (flags: Record<string, boolean>) => {
  const given = Object.entries(flags).filter(([, on]) => on).map(([flag]) => flag)
  return given.length === 0
    ? Effect.void
    : Effect.fail(new CliError(
      `${given.join(" and ")} run${given.length === 1 ? "s" : ""} in process: add --in-process (or --tenants <module>).`
    ))
}

const viaPrisma = (
  spec: Spec,
  schemaOption: Option.Option<string>,
  json: boolean,
  concurrency: Option.Option<number>,
  extra: ReadonlyArray<string> = []
) =>
  Effect.gen(function*() {
    const project = yield* currentProject
    const names = yield* withoutTenantsSchema(project, `migrate ${spec.command[1]}`, Option.getOrUndefined(schemaOption))
    yield* runAcross(project, names, {
      ...spec,
      extra: [...extra, ...(yield* PassThrough)],
      json,
      concurrency: yield* concurrencyOf(concurrency, 4)
    })
  }).pipe(stoppable)

/** A migrate command's handler: in process (FileSystem) or through Prisma (CommandExecutor). */
type MigrateHandler = Effect.Effect<void, CliError, Io | PassThrough | FileSystem.FileSystem | CommandExecutor>

/** What deploy, status and resolve share: Prisma's way, or in process over the schemas or a tenant list. */
const fleet = { schema, json, concurrency: optionalConcurrency, tenants, tenant, inProcess, catalog: catalogFlag, servers: serversFlag }
const continueOnFailure = (description: string) => Options.boolean("continue").pipe(Options.withDescription(description))

const deploy = Command.make("deploy", {
  ...fleet,
  continueOnFailure: continueOnFailure(
    "In process: keep starting databases after one fails (default: the first failure stops new ones)"
  ),
  dryRun: Options.boolean("dry-run").pipe(
    Options.withDescription("In process: list each database's pending migrations; change nothing")
  ),
  waves: Options.text("waves").pipe(Options.withDescription("With --tenants: deploy in cumulative waves, e.g. 1,5%,25%,100%"), Options.optional),
  verify: Options.text("verify").pipe(Options.withDescription("With --tenants: a module whose default export (tenant, client) => Promise<void> checks each tenant of a wave"), Options.optional),
  bake: Options.text("bake").pipe(Options.withDescription("With --tenants: wait this long after each verified wave (30s, 5m)"), Options.optional),
  maxFailures: wholeNumber("max-failures", 0, 1_000_000).pipe(Options.withDescription("With --tenants: failures a wave may have before the run halts (default 0)"), Options.optional),
  allowDestructive: Options.boolean("allow-destructive").pipe(Options.withDescription("With --tenants: let the destructive-change guard's findings through"))
}, (o): MigrateHandler =>
  o.inProcess || Option.isSome(o.tenants)
    ? inProcessRun("migrate deploy", o.dryRun ? { kind: "dry-run" } : { kind: "deploy" }, { ...o, waveFlags: o })
    : Effect.zipRight(
      onlyInProcess({
        "--continue": o.continueOnFailure,
        "--dry-run": o.dryRun,
        "--tenant": Option.isSome(o.tenant),
        "--waves, --verify, --bake, --max-failures, --allow-destructive": wantsWaves(o) || o.allowDestructive
      }),
      viaPrisma(parallel(["migrate", "deploy"], true), o.schema, o.json, o.concurrency)
    )).pipe(Command.withDescription("prisma migrate deploy in parallel; or in process with --in-process or --tenants <module>"))

const status = Command.make("status", {
  ...fleet,
  drift: Options.boolean("drift").pipe(Options.withDescription("With --tenants: compare each tenant's schema with its applied migrations (PostgreSQL)"))
}, (o): MigrateHandler =>
  o.inProcess || Option.isSome(o.tenants)
    ? inProcessRun("migrate status", { kind: "status" }, { ...o, continueOnFailure: true })
    : Effect.zipRight(
      onlyInProcess({ "--tenant": Option.isSome(o.tenant) }),
      viaPrisma(parallel(["migrate", "status"], true), o.schema, o.json, o.concurrency)
    )).pipe(Command.withDescription("prisma migrate status in parallel; or in process with --in-process or --tenants <module>"))

const resolve = Command.make("resolve", {
  ...fleet,
  continueOnFailure: continueOnFailure("In process: keep going after a database fails"),
  applied: Options.text("applied").pipe(
    Options.withDescription("Record this migration as applied (fixed by hand, or baselining)"),
    Options.optional
  ),
  rolledBack: Options.text("rolled-back").pipe(
    Options.withDescription("Mark this failed migration as rolled back: the next deploy applies it again"),
    Options.optional
  )
}, (o) =>
  Effect.gen(function*() {
    const applied = Option.getOrUndefined(o.applied)
    const rolledBack = Option.getOrUndefined(o.rolledBack)
    if ((applied === undefined) === (rolledBack === undefined)) {
      return yield* new CliError("migrate resolve needs one of --applied <migration> or --rolled-back <migration>.")
    }
    if (Option.isNone(o.schema)) {
      const project = yield* currentProjectFiles
      if (project.schemas.length > 1) {
        return yield* new CliError(
          `migrate resolve names a migration of one schema's folder: add --schema (found: ${project.schemas.join(", ")}).`
        )
      }
    }
    if (o.inProcess || Option.isSome(o.tenants)) {
      return yield* inProcessRun("migrate resolve", { kind: "resolve", applied, rolledBack }, o)
    }
    yield* onlyInProcess({ "--continue": o.continueOnFailure, "--tenant": Option.isSome(o.tenant) })
    yield* viaPrisma(
      parallel(["migrate", "resolve"], true),
      o.schema,
      o.json,
      o.concurrency,
      applied !== undefined ? ["--applied", applied] : ["--rolled-back", rolledBack!]
    )
  })).pipe(Command.withDescription("prisma migrate resolve; or in process with --in-process or --tenants <module>"))

const migrate = Command.make("migrate").pipe(
  Command.withDescription("Prisma Migrate for every database, each with its own URL and migrations folder"),
  Command.withSubcommands([
    across("dev", "prisma migrate dev, one database at a time, terminal attached", attached(["migrate", "dev"])),
    deploy,
    across("reset", "prisma migrate reset, one database at a time, terminal attached", attached(["migrate", "reset"])),
    status,
    resolve
  ])
)

const db = Command.make("db").pipe(
  Command.withDescription("prisma db push / db pull for every database"),
  Command.withSubcommands([
    across("push", "prisma db push, one database at a time, terminal attached", attached(["db", "push"])),
    across("pull", "prisma db pull, in parallel", parallel(["db", "pull"], true))
  ])
)

const studio = Command.make("studio", { schema }, (o) =>
  Effect.gen(function*() {
    const { names: [first], project } = yield* selected(o.schema)
    yield* runAcross(project, [first!], { ...attached(["studio"]), extra: yield* PassThrough, json: false, concurrency: 1 })
  }).pipe(stoppable)).pipe(Command.withDescription("prisma studio for one database (--schema, else the first)"))

const flexidb = Command.make("flexidb").pipe(
  Command.withDescription("Prisma's commands across every schema in prisma/schemas, each against its own database"),
  Command.withSubcommands([
    Command.make("init", {}, () => stoppable(init)).pipe(
      Command.withDescription("Scaffold prisma/schemas/ and .env.example; never overwrites a file")
    ),
    Command.make("codegen", {
      output: Options.text("output").pipe(Options.withDefault("src/db.ts")),
      force: Options.boolean("force").pipe(Options.withDescription("Overwrite an existing file (never db.options.ts)")),
      yes: Options.boolean("yes").pipe(
        Options.withDescription("With --force: also replace lines of the module that codegen did not write")
      ),
      tenantSchema: Options.text("tenant-schema").pipe(
        Options.withDescription("The schema of the tenants' databases: tenants.resolve builds its client per tenant"),
        Options.optional
      ),
      tenantMode: Options.choice("tenant-mode", ["database", "schema"]).pipe(
        Options.withDescription("A database per tenant (default), or a PostgreSQL schema per tenant on one pool"),
        Options.optional
      )
    }, (o) =>
      Effect.flatMap(currentProject, (project) =>
        codegen(project, {
          output: o.output,
          force: o.force,
          yes: o.yes,
          tenantSchema: Option.getOrUndefined(o.tenantSchema),
          tenantMode: Option.getOrUndefined(o.tenantMode)
        })).pipe(stoppable)).pipe(
        Command.withDescription("Write src/db.ts: every generated client wired into createFlexiDB (and tenants)")
      ),
    Command.make("generate", {
      schema,
      json,
      concurrency,
      force: Options.boolean("force").pipe(
        Options.withDescription("Regenerate every schema, also those unchanged since their last generate")
      )
    }, (o) =>
      Effect.gen(function*() {
        const { names, project } = yield* selected(o.schema)
        yield* runAcross(project, names, {
          ...parallel(["generate"], false),
          extra: yield* PassThrough,
          json: o.json,
          concurrency: o.concurrency,
          incremental: { force: o.force }
        })
      }).pipe(stoppable)).pipe(
        Command.withDescription("prisma generate for every schema changed since its last generate, in parallel (--force: all)")
      ),
    across("validate", "prisma validate for every schema, in parallel", parallel(["validate"], false)),
    across("format", "prisma format for every schema, in parallel", parallel(["format"], false)),
    Command.make("doctor", {
      schema,
      json,
      concurrency,
      timeout: wholeNumber("timeout", 1, Number.MAX_SAFE_INTEGER, "a whole number of milliseconds, 1 or more").pipe(
        Options.withDescription("Milliseconds each database server has to answer"),
        Options.withDefault(5000)
      ),
      tenants: Options.text("tenants").pipe(
        Options.withDescription(
          "A module listing the tenants' databases ({ name, url } each), or `catalog`: check a sample connection and every tenant's migrations"
        ),
        Options.optional
      ),
      catalog: catalogFlag,
      servers: serversFlag
    }, (o) =>
      Effect.gen(function*() {
        const { names, project } = yield* selected(o.schema)
        yield* doctor(project, names, {
          json: o.json,
          concurrency: o.concurrency,
          timeout: o.timeout,
          tenants: Option.getOrUndefined(o.tenants),
          catalog: { catalog: Option.getOrUndefined(o.catalog), servers: Option.getOrUndefined(o.servers) }
        })
      }).pipe(stoppable)).pipe(
        Command.withDescription(
          "Check every database: URL set, server answers, migrations applied, client generated from the current schema, adapter installed"
        )
      ),
    migrate,
    tenantsCommand,
    across("diff", "prisma migrate diff for every database (pass its flags after --)", parallel(["migrate", "diff"], true)),
    db,
    studio,
    Command.make("seed", { schema }, (o) =>
      Effect.flatMap(selected(o.schema), ({ names, project }) => seed(project, names)).pipe(stoppable)).pipe(
        Command.withDescription("Run prisma/seeds/<name>.ts (tsx, else ts-node) or .js with that database's URL")
      ),
    // Not `stoppable`: a stop request is how watch ends, cleanly and with exit 0.
    Command.make("watch", { schema }, (o) =>
      Effect.flatMap(selected(o.schema), ({ names, project }) => watch(project, names))).pipe(
        Command.withDescription("Regenerate a schema's client when it changes; Ctrl+C stops")
      ),
    topCommand
  ])
)

const cli = Command.run(flexidb, {
  name: "flexidb",
  version: VERSION,
  footer: HelpDoc.p(
    "Commands that run Prisma hand it the arguments after -- untouched: npx flexidb migrate reset --schema analytics -- --force"
  )
})
/** The commands, for readCommandLine: an unknown one is refused with the nearest, before @effect/cli runs. */
const commands = commandTree(flexidb)

/** Each command in a few words, for `flexidb` with no command; one without a line here shows its description. */
const SUMMARIES: Readonly<Record<string, string>> = {
  init: "scaffold prisma/schemas/ and .env.example",
  codegen: "write src/db.ts: every generated client wired into createFlexiDB (and tenants)",
  generate: "prisma generate for each schema changed since its last generate",
  validate: "prisma validate for every schema",
  format: "prisma format for every schema",
  doctor: "check every database (URL, server, migrations, client, adapter) and say what to do",
  migrate: "deploy | status | resolve | dev | reset per database (--in-process, --tenants)",
  tenants: "list | create | suspend | resume | remove tenants in the catalog (flexidb/catalog)",
  diff: "prisma migrate diff for every database (its flags after --)",
  db: "push | pull for every database",
  studio: "Prisma Studio for one database",
  seed: "run prisma/seeds/<name>.ts with that database's URL",
  watch: "regenerate a schema's client when it changes",
  top: "a live view of flexidb instances from their /metrics endpoints"
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

/** The exit code the program's Exit means, after telling the user what they need to know about a failure. */
const exitCode = (exit: Exit.Exit<void, CliError | ValidationError.ValidationError>, io: Io, line: CommandLine): number => {
  if (Exit.isSuccess(exit)) return 0
  const error = Option.getOrUndefined(Cause.failureOption(exit.cause))
  // @effect/cli has printed what was wrong with the command line; the user needs where to read what is right.
  if (ValidationError.isValidationError(error)) {
    io.err(`Usage: ${commandName(commands, line.path)} --help`)
    return 2
  }
  if (error instanceof CliError) {
    if (!error.reported) io.err(`flexidb: ${error.message}`)
    return error.exitCode
  }
  // A defect is a bug in flexidb: its stack helps the report.
  const defect = Cause.squash(exit.cause)
  io.err(defect instanceof Error ? (defect.stack ?? defect.message) : String(defect))
  return 1
}

/** Runs the CLI with `argv` (without node and the script). Resolves the exit code; never throws. */
export const run = async (argv: ReadonlyArray<string>, given: Io): Promise<number> => {
  const dashes = argv.indexOf("--")
  const own = dashes === -1 ? argv : argv.slice(0, dashes)
  const commandLine = readCommandLine(commands, own)
  // Plain text unless to a terminal that takes colour; help's usage line names the program and the command.
  const io = presentTo(given, commands, commandLine)
  if (commandLine.problem !== undefined) {
    io.err(commandLine.problem)
    return 2
  }
  // No command: flexidb's own short help, under the project's databases when run inside one.
  if (own.length === 0) {
    for (const line of [...databasesOverview(io), ...shortHelp(commands, SUMMARIES, VERSION)]) io.out(line)
    return 0
  }
  const args = own[0] === "help" ? [...own.slice(1), "--help"] : own
  const exit = await cli(["node", "flexidb", ...args]).pipe(
    Effect.provideService(PassThrough, dashes === -1 ? [] : argv.slice(dashes + 1)),
    Effect.provideService(Io, io),
    Effect.provide(NodeContext.layer),
    Effect.withConsole(consoleFor(io)),
    Effect.runPromiseExit
  )
  return exitCode(exit, io, commandLine)
}
