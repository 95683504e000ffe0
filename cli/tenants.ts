/**
 * `flexidb tenants list|create|suspend|resume|remove|move`: the tenant catalog (`flexidb/catalog`) from the command line.
 * The catalog is `--catalog URL` or FLEXIDB_CATALOG_URL; the servers are FLEXIDB_SERVER_<NAME> variables
 * (`FLEXIDB_SERVER_MAIN` is server `main`) or `--servers <module>` (its default export). No URL is ever printed.
 */
import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Option, Stream } from "effect"
import { isAbsolute, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { Catalog } from "../src/Catalog.js"
import type { CatalogConfig, MoveProgress, Row, Service } from "../src/Catalog.js"
import { isFlexiDBError, redact } from "../src/index.js"
import { CliError } from "./error.js"
import { Io } from "./io.js"
import { currentProjectFiles } from "./project.js"

/** `--catalog URL`: also on `migrate … --tenants catalog` and `doctor --tenants catalog`. */
export const catalogFlag = Options.text("catalog").pipe(
  Options.withDescription("The catalog database's postgresql:// URL (default: FLEXIDB_CATALOG_URL)"),
  Options.optional
)
/** `--servers <module>`: also on `migrate … --tenants catalog` and `doctor --tenants catalog`. */
export const serversFlag = Options.text("servers").pipe(
  Options.withDescription("A module whose default export is the servers object (default: FLEXIDB_SERVER_<NAME> variables)"),
  Options.optional
)
const json = Options.boolean("json").pipe(Options.withDescription("Print JSON instead of a table"))
const name = Args.text({ name: "name" }).pipe(Args.withDescription("The tenant's name"))

/** The servers: the module's default export, else every FLEXIDB_SERVER_<NAME> variable of `env`. */
const serversOf = (env: Readonly<Record<string, string | undefined>>, cwd: string, module: string | undefined) => {
  if (module === undefined) {
    const servers: Record<string, string> = {}
    for (const [key, value] of Object.entries(env)) {
      const m = /^FLEXIDB_SERVER_(.+)$/.exec(key)
      if (m !== null && value !== undefined && value !== "") servers[m[1]!.toLowerCase()] = value
    }
    return Effect.succeed(servers)
  }
  const file = isAbsolute(module) ? module : resolve(cwd, module)
  return Effect.tryPromise({
    try: async () => {
      const m = await import(pathToFileURL(file).href)
      const servers = m.default ?? m.servers
      if (typeof servers !== "object" || servers === null) throw new Error("its default export is not an object")
      return servers as Record<string, string>
    },
    catch: (e) => new CliError(`--servers ${module}: cannot load the servers (${redact(e instanceof Error ? e.message : String(e))}).`)
  })
}

/**
 * The catalog's config as the CLI builds it: the URL from `--catalog` or FLEXIDB_CATALOG_URL (a usage error without
 * either), the servers from `--servers <module>` or the FLEXIDB_SERVER_<NAME> variables. Shared by `flexidb tenants`
 * and `--tenants catalog`.
 */
export const catalogConfig = (
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
  o: { readonly catalog?: string | undefined; readonly servers?: string | undefined },
  migrations?: string
): Effect.Effect<CatalogConfig, CliError> =>
  Effect.gen(function*() {
    const url = o.catalog ?? env.FLEXIDB_CATALOG_URL
    if (url === undefined || url === "") {
      return yield* new CliError("No catalog: pass --catalog <postgresql://…> or set FLEXIDB_CATALOG_URL.", { exitCode: 2 })
    }
    const config: CatalogConfig = { url, servers: yield* serversOf(env, cwd, o.servers), migrations }
    return config
  })

/** The variables come from the environment over the project's .env, as every other command reads them. */
const configFrom = (o: { readonly catalog: Option.Option<string>; readonly servers: Option.Option<string> }, migrations?: string) =>
  Effect.flatMap(Effect.zip(Io, currentProjectFiles), ([io, project]) =>
    catalogConfig(project.env, io.cwd, { catalog: Option.getOrUndefined(o.catalog), servers: Option.getOrUndefined(o.servers) }, migrations))

/** Runs `f` with the catalog open; flexidb's errors become the CLI's (their messages carry no credential). */
export const withCatalog = <A>(config: CatalogConfig, f: (c: Service) => Effect.Effect<A, unknown>) =>
  Effect.scoped(Effect.flatMap(Catalog.make(config), f)).pipe(
    Effect.catchAll((e) =>
      Effect.fail(
        e instanceof CliError ? e : new CliError(isFlexiDBError(e) ? e.message : redact(String(e)), { cause: e })
      )
    )
  )

const header = ["NAME", "SERVER", "KIND", "LOCATION", "STATE", "EPOCH"] as const
const cells = (r: Row) => [r.name, r.server, r.kind, r.location, r.state, String(r.epoch)]

/** A plain table, columns as wide as their widest cell. */
export const table = (rows: ReadonlyArray<Row>): Array<string> => {
  const all = [header as ReadonlyArray<string>, ...rows.map(cells)]
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)))
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  "))
}

const print = (rows: ReadonlyArray<Row>, asJson: boolean, single = false) =>
  asJson
    ? Console.log(JSON.stringify(single ? rows[0] : rows))
    : Effect.forEach(table(rows), (line) => Console.log(line), { discard: true })

const list = Command.make("list", {
  catalog: catalogFlag,
  servers: serversFlag,
  json,
  state: Options.choice("state", ["active", "suspended", "moving"]).pipe(Options.optional),
  server: Options.text("server").pipe(Options.withDescription("Only this server's tenants"), Options.optional)
}, (o) =>
  Effect.gen(function*() {
    const config = yield* configFrom(o)
    const rows = yield* withCatalog(config, (c) =>
      Stream.runCollect(c.list({ state: Option.getOrUndefined(o.state), server: Option.getOrUndefined(o.server) })))
    yield* print([...rows], o.json)
  })).pipe(Command.withDescription("The catalog's tenants (a table, or --json)"))

const create = Command.make("create", {
  catalog: catalogFlag,
  servers: serversFlag,
  json,
  server: Options.text("server").pipe(Options.withDescription("The server it lives on (a name of the servers)")),
  kind: Options.choice("kind", ["database", "schema", "file"]).pipe(Options.optional),
  template: Options.text("template").pipe(
    Options.withDescription("PostgreSQL: the database to copy; SQLite: the file to copy"),
    Options.optional
  ),
  migrations: Options.text("migrations").pipe(
    Options.withDescription("The tenant schema's migrations folder (builds schema and MariaDB tenants)"),
    Options.optional
  ),
  name
}, (o) =>
  Effect.gen(function*() {
    const io = yield* Io
    const migrations = Option.map(o.migrations, (m) => (isAbsolute(m) ? m : resolve(io.cwd, m)))
    const config = yield* configFrom(o, Option.getOrUndefined(migrations))
    const row = yield* withCatalog(config, (c) =>
      c.create(o.name, { server: o.server, kind: Option.getOrUndefined(o.kind), template: Option.getOrUndefined(o.template) }))
    yield* print([row], o.json, true)
    // Nothing to build it from: the tenant exists with no tables, and its app's first query would fail on them.
    if (Option.isNone(o.template) && Option.isNone(o.migrations)) {
      yield* Console.error(
        `note: ${row.name} was created empty (no --template or --migrations): build its tables with ` +
          `\`flexidb migrate deploy --tenants catalog --schema <tenant schema>\`, or remove it ` +
          `(\`flexidb tenants remove ${row.name} --drop\`) and create it again with one of them`
      )
    }
  })).pipe(Command.withDescription("Create a tenant on a server and record it active"))

const change = (verb: "suspend" | "resume", description: string) =>
  Command.make(verb, { catalog: catalogFlag, servers: serversFlag, json, name }, (o) =>
    Effect.gen(function*() {
      const config = yield* configFrom(o)
      const row = yield* withCatalog(config, (c) => c[verb](o.name))
      yield* print([row], o.json, true)
    })).pipe(Command.withDescription(description))

const remove = Command.make("remove", {
  catalog: catalogFlag,
  servers: serversFlag,
  json,
  drop: Options.boolean("drop").pipe(Options.withDescription("Drop its data too (else it stays parked on its server)")),
  source: Options.boolean("source").pipe(
    Options.withDescription("Only drop the read-only copy a move left on the tenant's previous server")
  ),
  name
}, (o) =>
  Effect.gen(function*() {
    const config = yield* configFrom(o)
    if (o.source) {
      yield* withCatalog(config, (c) => c.remove(o.name, { source: true }))
      yield* o.json
        ? Console.log(JSON.stringify({ name: o.name, sourceRemoved: true }))
        : Console.log(`removed the source copy of ${o.name}`)
      return
    }
    yield* withCatalog(config, (c) => c.remove(o.name, { drop: o.drop }))
    yield* o.json ? Console.log(JSON.stringify({ name: o.name, removed: true, dropped: o.drop })) : Console.log(`removed ${o.name}`)
  })).pipe(Command.withDescription("Fence a tenant and delete it from the catalog (--drop: its data too; --source: only a move's old copy)"))

const mb = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MB`
const progressLine = (p: MoveProgress) =>
  `${p.step}: ${p.rows} rows, ${mb(p.bytes)} on the target, lag ${p.lagBytes} bytes` + (p.fenceMs > 0 ? `, fenced ${p.fenceMs} ms` : "")

const move = Command.make("move", {
  catalog: catalogFlag,
  servers: serversFlag,
  json,
  to: Options.text("to").pipe(Options.withDescription("The server to move the tenant to"), Options.optional),
  resume: Options.boolean("resume").pipe(Options.withDescription("Finish a move whose mover died")),
  abort: Options.boolean("abort").pipe(Options.withDescription("Undo an unfinished move: the tenant back on its source")),
  name
}, (o) =>
  Effect.gen(function*() {
    const io = yield* Io
    if (o.resume && o.abort) return yield* new CliError("Pass --resume or --abort, not both.", { exitCode: 2 })
    if (!o.resume && !o.abort && Option.isNone(o.to)) {
      return yield* new CliError("Where to? Pass --to SERVER (or --resume / --abort for an unfinished move).", { exitCode: 2 })
    }
    const config = yield* configFrom(o)
    let last = ""
    const onProgress = (p: MoveProgress) => {
      if (o.json || p.step === last && p.step !== "copying") return
      last = p.step
      const line = progressLine(p)
      if (io.live !== undefined && p.step === "copying") io.live.update(line)
      else {
        io.live?.clear()
        io.err(line)
      }
    }
    if (o.resume || o.abort) {
      const r = yield* withCatalog(config, (c) => (o.resume ? c.resumeMove(o.name, { onProgress }) : c.abortMove(o.name)))
      io.live?.clear()
      yield* o.json ? Console.log(JSON.stringify(r)) : Console.log(r.message)
      return
    }
    const report = yield* withCatalog(config, (c) => c.move(o.name, { server: Option.getOrThrow(o.to), onProgress }))
    io.live?.clear()
    yield* o.json
      ? Console.log(JSON.stringify(report))
      : Console.log(
        `moved ${o.name} to ${report.row.server}: ${report.rows} rows, ${mb(report.bytes)}, copied in ${report.copyMs} ms, ` +
          `writes fenced ${report.fenceMs} ms, checksums ${report.checksum}; the source stays read-only on ` +
          `${report.row.source?.server} until \`flexidb tenants remove ${o.name} --source\``
      )
  })).pipe(Command.withDescription("Move a live tenant to another server (--to SERVER), or --resume / --abort an unfinished move"))

/** `flexidb tenants …`. */
export const tenantsCommand = Command.make("tenants").pipe(
  Command.withDescription("The tenant catalog: list, create, suspend, resume, remove, move (--catalog or FLEXIDB_CATALOG_URL)"),
  Command.withSubcommands([
    list,
    create,
    change("suspend", "Fence a tenant in its engine and record it suspended"),
    change("resume", "Open a suspended tenant again"),
    remove,
    move
  ])
)
