/**
 * The migrations folder, read through @effect/platform's FileSystem: its sub-folders in `localeCompare` order (as
 * Prisma sorts them), each with its `migration.sql` (or none), and `migration_lock.toml`'s provider.
 *
 * @internal
 */
import { FileSystem } from "@effect/platform"
import { Effect } from "effect"
import { join } from "node:path"
import { errorSummary } from "../Redact.js"
import type { Folder, Migration } from "./model.js"
import { MigrationError } from "./model.js"

/** Reads the folder; a folder that cannot be listed is a MigrationError saying what to give instead. */
export const readFolder = (folder: string): Effect.Effect<Folder, MigrationError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const entries = yield* fs.readDirectory(folder).pipe(
      Effect.mapError((error) =>
        new MigrationError({
          code: "FLEXIDB_MIGRATIONS_FOLDER",
          reason: `cannot read the migrations folder ${folder} (${errorSummary(error.cause ?? error)}): give the ` +
            `folder that holds <timestamp>_<name>/migration.sql, e.g. prisma/migrations/<schema>`
        })
      )
    )
    const isDirectory = (name: string) =>
      fs.stat(join(folder, name)).pipe(Effect.map((info) => info.type === "Directory"), Effect.orElseSucceed(() => false))
    const names = (yield* Effect.filter(entries, isDirectory)).sort((a, b) => a.localeCompare(b))
    const text = (file: string) => fs.readFileString(file, "utf8").pipe(Effect.option, Effect.map((o) => o._tag === "Some" ? o.value : undefined))
    const migrations = yield* Effect.forEach(names, (name) =>
      Effect.map(text(join(folder, name, "migration.sql")), (script): Migration => ({ name, script })))
    const lock = yield* text(join(folder, "migration_lock.toml"))
    const lockProvider = lock === undefined
      ? undefined
      : (lock.split("\n").find((l) => l.startsWith("provider"))?.replace(/^provider\s*=\s*/, "").trim().replace(/^"|"$/g, "") ??
        "<PROVIDER NOT FOUND>")
    return { migrations, lockProvider }
  })
