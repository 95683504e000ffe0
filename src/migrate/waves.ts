/**
 * `deployFleet`: a fleet of tenant databases migrated in waves, each wave deployed, verified by the app's own check
 * and left to bake before the next starts; a wave with more failures than allowed halts the run, and no tenant
 * outside it is touched.
 *
 * @since 0.2.0
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { PrismaClientLike } from "../Client.js"
import { errorSummary, redact } from "../Redact.js"
import { deployMigrations, MigrationError, type MigrationStatus } from "../migrate.js"
import { checkMigrations, formatFindings, type GuardFinding } from "./guard.js"
import { fleetStatus } from "./fleetStatus.js"
import { takeFleetLock } from "./fleetLock.js"
import { openSqlClient, type SqlClient } from "./sqlClient.js"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Cause from "effect/Cause"
import * as Exit from "effect/Exit"
import { schemaDeployer } from "./migrator.js"
import { schemaTenant } from "./fleetStatus.js"

/** A tenant of a fleet: its name and its database's URL (PostgreSQL: `?schema=` for a schema per tenant). */
export interface FleetTenant {
  readonly name: string
  readonly url: string
}

/** A wave's size: a count of tenants or a share of the fleet (`'25%'`), cumulative. @since 0.2.0 */
export type WaveSize = number | `${number}%`

/** @since 0.2.0 */
export type FleetTenantStatus = "applied" | "current" | "failed" | "verify-failed" | "not-attempted"

/** @since 0.2.0 */
export interface FleetTenantResult {
  readonly name: string
  /** `applied`: migrations applied and verified; `current`: nothing to apply (verified when its wave ran). */
  readonly status: FleetTenantStatus
  /** The migrations applied to it in this run. */
  readonly applied: ReadonlyArray<string>
  /** The 1-based wave it belongs to. */
  readonly wave: number
  readonly error?: { readonly code: string; readonly reason: string; readonly migration?: string | undefined } | undefined
}

/** @since 0.2.0 */
export interface FleetResult {
  /** Every tenant, in the fleet's order. */
  readonly tenants: ReadonlyArray<FleetTenantResult>
  /** Present when a wave had more failures than `maxFailures`: which (1-based) and why. */
  readonly halted?: { readonly wave: number; readonly reason: string } | undefined
}

/** What `onProgress` hears. @since 0.2.0 */
export type FleetProgress =
  | { readonly kind: "wave"; readonly wave: number; readonly waves: number; readonly tenants: number }
  | { readonly kind: "tenant"; readonly result: FleetTenantResult }
  | { readonly kind: "bake"; readonly wave: number; readonly millis: number }
  | { readonly kind: "halt"; readonly wave: number; readonly reason: string }

/**
 * `C`: what `verify` gets — the app's own client when it gives a `client` factory, else a `SqlClient` (raw SQL on the
 * tenant's database, `openSqlClient`).
 *
 * @since 0.2.0
 */
export interface DeployFleetOptions<C = SqlClient> {
  /** The fleet, in rollout order: an array or (async) iterable of `{ name, url }`. */
  readonly tenants: Iterable<FleetTenant> | AsyncIterable<FleetTenant>
  /** The migrations folder. */
  readonly migrations: string
  /** Cumulative wave sizes, e.g. `[1, '5%', '25%', '100%']`. Default `['100%']`; the last wave always ends the fleet. */
  readonly waves?: ReadonlyArray<WaveSize> | undefined
  /**
   * The app's smoke check, run for every tenant of a wave once it is deployed; a rejection is a failure. `client` is
   * `client(url)` when given, else a `SqlClient` on the tenant's database (`$queryRaw`, `$queryRawUnsafe`,
   * `$executeRawUnsafe`; PostgreSQL's `?schema=` is its search path). Either is disconnected after.
   */
  readonly verify?: ((tenant: FleetTenant, client: C) => Promise<void>) | undefined
  /** How long to wait after a verified wave before the next. Default 0. */
  readonly bake?: Duration.DurationInput | undefined
  /** Failures (deploy or verify) a wave may have and the run go on. Default 0. */
  readonly maxFailures?: number | undefined
  /** Databases deployed at once. Default 8. Tenants behind one migration lock take turns. */
  readonly concurrency?: number | undefined
  /** The app's own client for a tenant: migrations then run through it, and `verify` gets it. */
  readonly client?: ((url: string) => C & PrismaClientLike) | undefined
  readonly onProgress?: ((event: FleetProgress) => void) | undefined
  /** Let the destructive-change guard's findings through. Default false. */
  readonly allowDestructive?: boolean | undefined
  /** How long to wait for another deploy of the same fleet to finish. Default 0: refuse at once. */
  readonly lockTimeout?: Duration.DurationInput | undefined
}

/**
 * The guard refused the pending migrations: nothing was touched. `findings` says what and where; deploy with
 * `allowDestructive: true` (`--allow-destructive`) once each is known to be safe.
 *
 * @since 0.2.0
 */
export class DestructiveMigrationError extends Data.TaggedError("DestructiveMigrationError")<{
  readonly findings: ReadonlyArray<GuardFinding>
}> {
  readonly code = "FLEXIDB_MIGRATION_DESTRUCTIVE"
  override get message() {
    return `${this.code}: the pending migrations have ${this.findings.length} destructive statement(s); no tenant ` +
      `was touched. Rewrite them as expand/contract, or deploy with allowDestructive (--allow-destructive):\n` +
      formatFindings(this.findings)
  }
}

const fail = (reason: string) => new MigrationError({ code: "FLEXIDB_MIGRATION_OPTIONS", reason })

/** The cumulative end index of each wave over `total` tenants; the last is always the whole fleet. */
export const waveEnds = (waves: ReadonlyArray<WaveSize>, total: number): Array<number> => {
  const ends: Array<number> = []
  let previous = 0
  for (const w of waves) {
    const n = typeof w === "number"
      ? w
      : /^\d+(\.\d+)?%$/.test(w)
      ? Math.ceil((Number(w.slice(0, -1)) / 100) * total)
      : Number.NaN
    if (!Number.isInteger(n) || n < 0 || (typeof w === "string" && Number(w.slice(0, -1)) > 100)) {
      throw fail(`waves: each a count of tenants (an integer ≥ 0) or a share like '25%' (≤ 100%), got ${JSON.stringify(w)}`)
    }
    if (n < previous) throw fail(`waves are cumulative: ${JSON.stringify(w)} is smaller than the wave before it`)
    previous = n
    const end = Math.min(n, total)
    if (end > (ends[ends.length - 1] ?? 0) || (ends.length === 0 && end > 0)) ends.push(end)
  }
  if ((ends[ends.length - 1] ?? 0) < total) ends.push(total)
  return ends
}

/** Tenants behind the same migration lock (one PostgreSQL database, one MySQL server, one SQLite file). */
export const lockDomain = (url: string): string => {
  try {
    const u = new URL(url)
    if (u.protocol === "file:") return url.replace(/\?.*$/, "")
    if (/^mysql|^mariadb/.test(u.protocol)) return `${u.protocol}//${u.host}`
    return `${u.protocol}//${u.host}${u.pathname}`
  } catch {
    return url.replace(/\?.*$/, "")
  }
}

const collect = async (tenants: DeployFleetOptions["tenants"]): Promise<Array<FleetTenant>> => {
  const out: Array<FleetTenant> = []
  const seen = new Set<string>()
  for await (const t of tenants as AsyncIterable<FleetTenant>) {
    if (typeof t?.name !== "string" || typeof t?.url !== "string") throw fail("tenants: each entry is { name, url }")
    if (seen.has(t.name)) throw fail(`tenants: '${t.name}' is listed twice`)
    seen.add(t.name)
    out.push({ name: t.name, url: t.url })
  }
  return out
}

const errorOf = (e: unknown): NonNullable<FleetTenantResult["error"]> =>
  e instanceof MigrationError
    ? { code: e.code, reason: e.reason, migration: e.migration }
    : { code: String((e as { code?: unknown })?.code ?? "FLEXIDB_FLEET_ERROR"), reason: redact(errorSummary(e)) }

/**
 * The run as an Effect (bake sleeps on Effect's Clock: `TestClock` drives it in tests). See `deployFleet`.
 *
 * @since 0.2.0
 */
export const deployFleetEffect = <C = SqlClient>(
  options: DeployFleetOptions<C>
): Effect.Effect<FleetResult, MigrationError | DestructiveMigrationError> =>
  Effect.gen(function*() {
    const maxFailures = options.maxFailures ?? 0
    const concurrency = options.concurrency ?? 8
    if (!Number.isInteger(maxFailures) || maxFailures < 0) return yield* fail("maxFailures: an integer ≥ 0")
    if (!Number.isInteger(concurrency) || concurrency < 1) return yield* fail("concurrency: an integer ≥ 1")
    const bake = Duration.decode(options.bake ?? 0)
    const tenants = yield* promise(() => collect(options.tenants))
    const ends = yield* promise(async () => waveEnds(options.waves ?? ["100%"], tenants.length))
    const waveOf = (i: number) => ends.findIndex((end) => i < end) + 1

    // One run per fleet at a time: a second waits up to lockTimeout, then is refused naming the first.
    const lock = yield* takeFleetLock(tenants, options.lockTimeout)
    return yield* Effect.ensuring(
      Effect.gen(function*() {
        // One read of where every tenant stands: what is pending, and what the guard must see.
        const statuses = yield* promise(() => fleetStatus({ tenants, migrations: options.migrations, concurrency }))
        const pending = new Set(statuses.flatMap((s) => s.pending))
        if (pending.size > 0 && options.allowDestructive !== true) {
          const findings = yield* promise(() => checkMigrations({ migrations: options.migrations, pending: [...pending] }))
          if (findings.length > 0) return yield* Effect.fail(new DestructiveMigrationError({ findings }))
        }
        return yield* run(options as DeployFleetOptions<any>, tenants, statuses, ends, waveOf, bake, maxFailures, concurrency)
      }),
      Effect.promise(() => lock.release())
    )
  })

const promise = <A>(f: () => Promise<A>): Effect.Effect<A, MigrationError> =>
  Effect.tryPromise({
    try: f,
    catch: (e) => e instanceof MigrationError ? e : new MigrationError({ code: "FLEXIDB_FLEET_ERROR", reason: redact(errorSummary(e)) })
  })

const run = (
  options: DeployFleetOptions<any>,
  tenants: ReadonlyArray<FleetTenant>,
  statuses: ReadonlyArray<{ readonly name: string } & MigrationStatus>,
  ends: ReadonlyArray<number>,
  waveOf: (i: number) => number,
  bake: Duration.Duration,
  maxFailures: number,
  concurrency: number
): Effect.Effect<FleetResult> =>
  Effect.gen(function*() {
    const results = new Map<string, FleetTenantResult>()
    const progress = (event: FleetProgress) =>
      Effect.sync(() => {
        if (event.kind === "tenant") results.set(event.result.name, event.result)
        options.onProgress?.(event)
      })
    const current = (i: number) => {
      const s = statuses[i]!
      return s.pending.length === 0 && s.failed.length === 0 && s.modified.length === 0 && s.missingLocally.length === 0
    }
    let halted: FleetResult["halted"]
    const memberships = ends.map((end, w) =>
      tenants.slice(w === 0 ? 0 : ends[w - 1], end).map((t, k) => ({ tenant: t, index: (w === 0 ? 0 : ends[w - 1]!) + k }))
    )
    // Resuming: waves whose every tenant is current were deployed by an earlier run and are skipped — except the
    // last of them before work remains, which is verified again (an earlier run may have halted on its verify).
    const firstPending = memberships.findIndex((members) => !members.every((m) => current(m.index)))
    for (const [w, members] of memberships.entries()) {
      const wave = w + 1
      if (members.every((m) => current(m.index)) && !(w === firstPending - 1 && options.verify !== undefined)) {
        for (const m of members) yield* progress({ kind: "tenant", result: { name: m.tenant.name, status: "current", applied: [], wave } })
        continue
      }
      yield* progress({ kind: "wave", wave, waves: ends.length, tenants: members.length })
      // Tenants behind one lock take turns; different locks run side by side.
      const groups = new Map<string, Array<(typeof members)[number]>>()
      for (const m of members) {
        const key = lockDomain(m.tenant.url)
        const group = groups.get(key)
        if (group === undefined) groups.set(key, [m])
        else group.push(m)
      }
      const done = (yield* Effect.forEach(
        [...groups.values()],
        (group) =>
          Effect.scoped(Effect.flatMap(
            sharedDeployer(options, group.filter((m) => !current(m.index)).map((m) => m.tenant)),
            (deploy) =>
              Effect.forEach(group, (m) =>
                deployAndVerify(options, m.tenant, current(m.index), wave, deploy).pipe(Effect.tap((r) => progress({ kind: "tenant", result: r }))))
          )),
        { concurrency }
      )).flat()
      const failures = done.filter((r) => r.status === "failed" || r.status === "verify-failed")
      if (failures.length > maxFailures) {
        const reason = `${failures.length} tenant(s) failed (maxFailures ${maxFailures}): ` +
          failures.slice(0, 3).map((f) =>
            `${f.name}: ${f.error?.code}${f.error?.migration ? ` (${f.error.migration})` : ""} ${f.error?.reason.split("\n")[0]}`
          ).join("; ") +
          (failures.length > 3 ? `; …` : "")
        halted = { wave, reason }
        yield* progress({ kind: "halt", wave, reason })
        break
      }
      if (wave < ends.length && Duration.toMillis(bake) > 0 && done.some((r) => r.applied.length > 0)) {
        yield* progress({ kind: "bake", wave, millis: Duration.toMillis(bake) })
        yield* Effect.sleep(bake)
      }
    }
    return {
      tenants: tenants.map((t, i) => results.get(t.name) ?? { name: t.name, status: "not-attempted" as const, applied: [], wave: waveOf(i) }),
      ...(halted !== undefined && { halted })
    }
  })

type Deploy = (tenant: FleetTenant) => Promise<{ readonly applied: ReadonlyArray<string> }>

/**
 * The schema tenants of one PostgreSQL database, taking turns under its lock anyway, deploy over one connection open
 * for the group (each still its own transaction under Prisma's lock): no connection, and no read of the folder, per
 * tenant. Undefined — each tenant then opens its own — for other groups, an app's own client, or when the database
 * cannot be opened (each tenant's own attempt then says why).
 */
const sharedDeployer = (
  options: DeployFleetOptions<any>,
  toDeploy: ReadonlyArray<FleetTenant>
): Effect.Effect<Deploy | undefined, never, import("effect/Scope").Scope> => {
  if (options.client !== undefined || toDeploy.length < 2) return Effect.succeed(undefined)
  const places = toDeploy.map((t) => schemaTenant(t.url))
  // One connection for all only when each would open the same one (the same user, password and parameters).
  if (places.some((p) => p === undefined || p.server !== places[0]!.server)) return Effect.succeed(undefined)
  return schemaDeployer(places[0]!.server, options.migrations).pipe(
    Effect.provide(NodeFileSystem.layer),
    Effect.map((deploy): Deploy => async (tenant) => {
      const exit = await Effect.runPromiseExit(deploy(schemaTenant(tenant.url)!.schema))
      if (Exit.isSuccess(exit)) return exit.value
      const failure = Cause.failureOption(exit.cause)
      if (failure._tag === "Some") throw failure.value._tag === "DriverError" ? failure.value.cause : failure.value
      throw Cause.squash(exit.cause)
    }),
    Effect.orElseSucceed(() => undefined)
  )
}

const deployAndVerify = (
  options: DeployFleetOptions<any>,
  tenant: FleetTenant,
  isCurrent: boolean,
  wave: number,
  deploy: Deploy | undefined
): Effect.Effect<FleetTenantResult> =>
  Effect.promise(async (): Promise<FleetTenantResult> => {
    let client: PrismaClientLike | undefined
    let sql: SqlClient | undefined
    try {
      client = options.client?.(tenant.url)
      // No client of the app's: verify gets raw SQL on the tenant (it connects at its first query).
      if (client === undefined && options.verify !== undefined) sql = openSqlClient(tenant.url)
    } catch (e) {
      return { name: tenant.name, status: "failed", applied: [], wave, error: errorOf(e) }
    }
    try {
      let applied: ReadonlyArray<string> = []
      if (!isCurrent) {
        try {
          applied = (await (deploy !== undefined
            ? deploy(tenant)
            : deployMigrations(
              client !== undefined ? { client, migrations: options.migrations } : { url: tenant.url, migrations: options.migrations }
            ))).applied
        } catch (e) {
          return { name: tenant.name, status: "failed", applied: [], wave, error: errorOf(e) }
        }
      }
      if (options.verify !== undefined) {
        try {
          await options.verify(tenant, client ?? sql)
        } catch (e) {
          return { name: tenant.name, status: "verify-failed", applied, wave, error: { ...errorOf(e), code: "FLEXIDB_FLEET_VERIFY" } }
        }
      }
      return { name: tenant.name, status: applied.length > 0 ? "applied" : "current", applied, wave }
    } finally {
      await client?.$disconnect().catch(() => {})
      await sql?.$disconnect().catch(() => {})
    }
  })

/**
 * Deploys the migrations to a fleet in waves. Before anything runs, every tenant's status is read and the pending
 * migrations pass the destructive-change guard (else it rejects with `DestructiveMigrationError`, nothing touched,
 * unless `allowDestructive`). Then, wave by wave: each tenant deployed (tenants behind one migration lock take
 * turns), `verify` run for every tenant of the wave, then `bake`; the next wave starts only if the wave's failures are
 * ≤ `maxFailures`. Otherwise it halts: the result's `halted` says which wave and why, and no tenant after that wave is
 * touched — a halt resolves, it does not reject. Re-running resumes: a wave whose every tenant is current is skipped
 * (neither deployed, verified nor baked). One run per fleet at a time (`takeFleetLock`, on the first tenant's
 * server): a second waits up to `lockTimeout`, then rejects with `FLEXIDB_FLEET_LOCKED` naming the holder. Rejects with a `MigrationError` for invalid options or
 * an unreadable folder.
 *
 * @since 0.2.0
 */
export const deployFleet = async <C = SqlClient>(options: DeployFleetOptions<C>): Promise<FleetResult> => {
  const outcome = await Effect.runPromise(Effect.either(deployFleetEffect(options)))
  if (outcome._tag === "Left") throw outcome.left
  return outcome.right
}
