/**
 * `flexidb/migrate`: Prisma's migration folders applied in process, through a client the app already has (or a URL),
 * with no schema engine. It keeps Prisma's own `_prisma_migrations` table — same columns, checksums and values — and
 * takes the lock Prisma takes, so a database migrated here is up to date for `prisma migrate status`, and one
 * migrated by Prisma is up to date here.
 *
 * Prisma's rules, from its schema engine (prisma-engines: apply_migrations.rs, sql_migration_persistence.rs,
 * checksum.rs) and checked against Prisma 6.19 itself in test/migrate.test.ts:
 * - Migrations are the sub-folders of the folder, in `localeCompare` order, each with a `migration.sql`;
 *   `migration_lock.toml`'s provider must match the database's.
 * - A migration is applied when it has a row not rolled back; a row with neither `finished_at` nor
 *   `rolled_back_at` is a failed migration, and nothing is applied until it is resolved.
 * - Applying one: a row with a new id, the checksum (SHA-256 of the file, hex) and `started_at`; the script; then
 *   `applied_steps_count` 1 and `finished_at`. A script that fails leaves its row unfinished, the error in `logs`.
 * Stricter than Prisma's `migrate deploy`, which lets both pass: a recorded migration whose file changed and a
 * recorded migration missing from the folder are refused too, and nothing is changed.
 *
 * The work is Effects (src/migrate/: loader, dialect, connection, lock, ledger, migrator); the functions here run
 * them and reject with a `MigrationError`, or with the driver's own error as it was thrown.
 *
 * @since 0.2.0
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { Cause, Effect, Exit } from "effect"
import * as migrator from "./migrate/migrator.js"
import type { MigrateOptions, MigrationStatus } from "./migrate/model.js"

export { checksum, deployRefusal, statements } from "./migrate/ledger.js"
export type { MigrateOptions, MigrationStatus, Provider } from "./migrate/model.js"
export { DriverError, isMigrationError, MigrationError, MigrationErrorTypeId } from "./migrate/model.js"

/**
 * The same three operations as Effects, for Effect programs: `Migrator.deploy(options)`, `Migrator.status(options)`,
 * `Migrator.resolve(options)`. They need @effect/platform's `FileSystem` (`NodeContext.layer` or
 * `NodeFileSystem.layer`), fail with `MigrationError` or `DriverError` (the driver's own error as `cause`), and can
 * be interrupted or timed out (`Effect.timeout`): the transaction is rolled back and the connection closed.
 *
 * @since 0.2.0
 */
export * as Migrator from "./migrate/migrator.js"

/** Runs an operation; rejects with its MigrationError, or with the driver's error itself. */
const run = async <A>(effect: Effect.Effect<A, migrator.Failure, import("@effect/platform").FileSystem.FileSystem>): Promise<A> => {
  const exit = await Effect.runPromiseExit(Effect.provide(effect, NodeFileSystem.layer))
  if (Exit.isSuccess(exit)) return exit.value
  const failure = Cause.failureOption(exit.cause)
  if (failure._tag === "Some") throw failure.value._tag === "DriverError" ? failure.value.cause : failure.value
  throw Cause.squash(exit.cause)
}

/**
 * Applies the folder's pending migrations in order, under Prisma's lock. On PostgreSQL and SQLite each migration
 * runs in a savepoint of one transaction: a failing one is undone and recorded failed, those before it stay applied.
 * Rejects with a `MigrationError` (refused: P3005, P3009, P3015, P3019, a modified or missing migration; a failed
 * script: P3018; the lock: P1002) or with the driver's error (the database cannot be reached).
 *
 * @since 0.2.0
 */
export const deployMigrations = (options: MigrateOptions): Promise<{ readonly applied: ReadonlyArray<string> }> =>
  run(migrator.deploy(options))

/**
 * Where the database stands against the folder. Changes nothing (a SQLite file that is not there is not created).
 * Rejects as `deployMigrations` does when the folder or the database cannot be read.
 *
 * @since 0.2.0
 */
export const migrationStatus = (options: MigrateOptions): Promise<MigrationStatus> => run(migrator.status(options))

/**
 * Prisma's `migrate resolve`: `applied` records a migration as applied without running it (a failed one fixed by
 * hand, or baselining a database that already has it); `rolledBack` marks a failed one as rolled back, so the next
 * deploy applies it again. Rejects with Prisma's P3008, P3011, P3012 or P3017 when it cannot.
 *
 * @since 0.2.0
 */
export const resolveMigration = (
  options: MigrateOptions & { readonly applied?: string | undefined; readonly rolledBack?: string | undefined }
): Promise<void> => run(migrator.resolve(options))

// -----------------------------------------------------------------------------------------------------------------
// Fleet tooling (src/migrate/): the destructive-change guard, waves, fleet status, drift.
export { checkMigrations, checkScript, formatFindings } from "./migrate/guard.js"
export type { CheckMigrationsOptions, GuardFinding, GuardKind } from "./migrate/guard.js"
export { deployFleet, deployFleetEffect, DestructiveMigrationError } from "./migrate/waves.js"
export type { DeployFleetOptions, FleetProgress, FleetResult, FleetTenant, FleetTenantResult, FleetTenantStatus, WaveSize } from "./migrate/waves.js"
export { openSqlClient } from "./migrate/sqlClient.js"
export type { SqlClient } from "./migrate/sqlClient.js"
export { fleetStatus } from "./migrate/fleetStatus.js"
export type { FleetStatusOptions, TenantStatus } from "./migrate/fleetStatus.js"
export { fleetDrift } from "./migrate/drift.js"
export type { Drift, DriftKind, FleetDriftOptions, FleetDriftResult } from "./migrate/drift.js"
