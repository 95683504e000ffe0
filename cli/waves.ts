/**
 * `migrate deploy --tenants … --waves/--verify/--bake/--max-failures/--allow-destructive` (deployFleet) and
 * `migrate status --tenants … --drift` (fleetDrift). Exit codes: 3 when the destructive-change guard refuses (no
 * tenant touched), 1 when a wave halts, a tenant failed or drifted, 2 for a usage error.
 */
import { Effect, Option } from "effect"
import * as Duration from "effect/Duration"
import { existsSync } from "node:fs"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import type { FleetTenant, WaveSize } from "../src/migrate.js"
import type { GuardFinding } from "../src/migrate.js"
import { checkMigrations, DestructiveMigrationError, deployFleet, fleetDrift, fleetStatus, formatFindings } from "../src/migrate.js"
import { CliError } from "./error.js"
import { Io } from "./io.js"
import type { Target } from "./targets.js"

export interface WaveFlags {
  readonly waves: Option.Option<string>
  readonly verify: Option.Option<string>
  readonly bake: Option.Option<string>
  readonly maxFailures: Option.Option<number>
  readonly allowDestructive: boolean
}

/** Whether any wave flag was given: the run is then deployFleet's. */
export const wantsWaves = (o: WaveFlags) =>
  Option.isSome(o.waves) || Option.isSome(o.verify) || Option.isSome(o.bake) || Option.isSome(o.maxFailures)

const usage = (message: string) => new CliError(message, { exitCode: 2 })

export const parseWaves = (text: string): Effect.Effect<Array<WaveSize>, CliError> =>
  Effect.forEach(text.split(",").map((s) => s.trim()), (s): Effect.Effect<WaveSize, CliError> =>
    /^\d+$/.test(s)
      ? Effect.succeed(Number(s))
      : /^\d+(\.\d+)?%$/.test(s) && Number(s.slice(0, -1)) <= 100
      ? Effect.succeed(s as `${number}%`)
      : Effect.fail(usage(`--waves: a comma-separated list of counts or shares, e.g. 1,5%,25%,100%; got '${s}'.`)))

export const parseBake = (text: string): Effect.Effect<Duration.Duration, CliError> => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim())
  if (m === null) return Effect.fail(usage(`--bake: a duration such as 500ms, 30s, 5m or 1h; got '${text}'.`))
  const unit = { ms: "millis", s: "seconds", m: "minutes", h: "hours" }[m[2] as "ms" | "s" | "m" | "h"]
  return Effect.succeed(Duration.decode(`${Number(m[1])} ${unit}` as Duration.DurationInput))
}

/** A target as deployFleet takes it: a PostgreSQL target's schema in the URL, as Prisma writes it. */
export const tenantOf = (t: Target): FleetTenant => {
  if (t.schema === undefined || !/^postgres(ql)?:/i.test(t.url)) return { name: t.name, url: t.url }
  const u = new URL(t.url)
  u.searchParams.set("schema", t.schema)
  return { name: t.name, url: u.toString() }
}

/**
 * The targets to run: a skipped one (a suspended tenant of the catalog) is left out, and named on stderr (not with
 * --json, whose output is stdout only).
 */
const runnable = (io: Io, targets: ReadonlyArray<Target>, json: boolean): ReadonlyArray<Target> => {
  const skipped = targets.filter((t) => t.skip !== undefined)
  if (!json) for (const t of skipped) io.err(`${t.name}: skipped (${t.skip})`)
  return skipped.length === 0 ? targets : targets.filter((t) => t.skip === undefined)
}

const problems = (targets: ReadonlyArray<Target>) => {
  const bad = targets.filter((t) => t.problem !== undefined)
  return bad.length === 0
    ? Effect.void
    : Effect.fail(new CliError(`${bad.length} tenant(s) cannot run: ${bad.map((t) => `${t.name}: ${t.problem!.reason}`).join("; ")}`))
}

const verifyOf = (root: string, specifier: string) =>
  Effect.tryPromise({
    try: async () => {
      const file = resolve(root, specifier)
      if (!existsSync(file)) throw new Error(`no such file (${file})`)
      const ns = await import(pathToFileURL(file).href)
      if (typeof ns.default !== "function") throw new Error("its default export is not a function (tenant, client) => Promise<void>")
      return ns.default as (tenant: FleetTenant, client: unknown) => Promise<void>
    },
    catch: (e) => usage(`--verify ${specifier}: ${e instanceof Error ? e.message : String(e)}.`)
  })

const refusal = (findings: ReadonlyArray<GuardFinding>) =>
  new CliError(
    `refused: the pending migrations have ${findings.length} destructive statement(s); no tenant was ` +
      `touched. Rewrite them as expand/contract, or pass --allow-destructive:\n${formatFindings(findings)}`,
    { exitCode: 3 }
  )

/**
 * The guard before a plain `migrate deploy --tenants`: the migrations pending on any tenant (all of the folder's when
 * a tenant's status cannot be read: the guard errs on the side of refusing), exit 3 on a finding.
 */
export const guardTenants = (targets: ReadonlyArray<Target>) =>
  Effect.gen(function*() {
    const usable = targets.filter((t) => t.problem === undefined && t.skip === undefined)
    if (usable.length === 0) return
    const migrations = usable[0]!.migrations
    if (!existsSync(migrations)) return
    const pending = yield* Effect.promise(() =>
      fleetStatus({ tenants: usable.map(tenantOf), migrations }).then(
        (all) => [...new Set(all.flatMap((s) => s.pending))],
        () => undefined
      )
    )
    if (pending !== undefined && pending.length === 0) return
    const findings = yield* Effect.tryPromise({
      try: () => checkMigrations({ migrations, pending }),
      catch: (e) => new CliError(e instanceof Error ? e.message : String(e))
    })
    if (findings.length > 0) return yield* refusal(findings)
  })

export const deployInWaves = (
  listed: ReadonlyArray<Target>,
  flags: WaveFlags,
  options: { readonly root: string; readonly concurrency: number; readonly json: boolean }
) =>
  Effect.gen(function*() {
    const io = yield* Io
    const targets = runnable(io, listed, options.json)
    yield* problems(targets)
    const waves = Option.isSome(flags.waves) ? yield* parseWaves(flags.waves.value) : undefined
    const bake = Option.isSome(flags.bake) ? yield* parseBake(flags.bake.value) : undefined
    const verify = Option.isSome(flags.verify) ? yield* verifyOf(options.root, flags.verify.value) : undefined
    const result = yield* Effect.tryPromise({
      try: () =>
        deployFleet({
          tenants: targets.map(tenantOf),
          migrations: targets[0]?.migrations ?? "",
          waves,
          bake,
          verify,
          maxFailures: Option.getOrUndefined(flags.maxFailures),
          concurrency: options.concurrency,
          allowDestructive: flags.allowDestructive,
          onProgress: (e) => {
            if (e.kind === "wave") io.err(`wave ${e.wave}/${e.waves}: ${e.tenants} tenant(s)`)
            else if (e.kind === "bake") io.err(`wave ${e.wave} verified: baking ${e.millis} ms`)
            else if (e.kind === "halt") io.err(`halted at wave ${e.wave}: ${e.reason}`)
          }
        }),
      catch: (e) =>
        e instanceof DestructiveMigrationError ? refusal(e.findings) : new CliError(e instanceof Error ? e.message : String(e))
    })
    if (options.json) io.out(JSON.stringify(result))
    else {
      for (const t of result.tenants) {
        const what = t.status === "applied" ? `applied ${t.applied.length} (${t.applied.join(", ")})` : t.status
        io.out(`${t.name}  wave ${t.wave}  ${what}${t.error ? `: ${t.error.code} ${t.error.reason.split("\n")[0]}` : ""}`)
      }
    }
    if (result.halted !== undefined) {
      return yield* new CliError(`halted at wave ${result.halted.wave}: ${result.halted.reason}`, { reported: options.json })
    }
    const failed = result.tenants.filter((t) => t.status === "failed" || t.status === "verify-failed")
    if (failed.length > 0) return yield* new CliError(`${failed.length} tenant(s) failed (within --max-failures)`)
  })

export const statusDrift = (listed: ReadonlyArray<Target>, options: { readonly json: boolean }) =>
  Effect.gen(function*() {
    const io = yield* Io
    const targets = runnable(io, listed, options.json)
    yield* problems(targets)
    const result = yield* Effect.tryPromise({
      try: () => fleetDrift({ tenants: targets.map(tenantOf), migrations: targets[0]?.migrations ?? "" }),
      catch: (e) => new CliError(e instanceof Error ? e.message : String(e))
    })
    if (options.json) io.out(JSON.stringify(result))
    else {
      for (const t of result.tenants) {
        if (t.drift.length === 0) io.out(`${t.name}  no drift`)
        for (const d of t.drift) io.out(`${t.name}  ${d.kind}  ${d.table}${d.column ? `.${d.column}` : ""}: ${d.detail}`)
      }
    }
    const drifted = result.tenants.filter((t) => t.drift.length > 0).length
    if (drifted > 0) return yield* new CliError(`${drifted} tenant(s) drifted from their applied migrations`, { reported: options.json })
  })
