/**
 * `flexidb watch`: regenerates only the schema that changed, debounced, and only when what it generates from did
 * change (the record `flexidb generate` keeps). Ctrl+C (or io.signal) stops it cleanly.
 */
import { FileSystem } from "@effect/platform"
import type { CommandExecutor } from "@effect/platform/CommandExecutor"
import { Console, Effect, GroupBy, Stream } from "effect"
import { basename, join } from "node:path"
import type { Io } from "./io.js"
import { stopRequested } from "./io.js"
import type { Project } from "./project.js"
import { SCHEMAS_DIR } from "./project.js"
import { runAcross } from "./run.js"

// Editors save a file in several writes: one regeneration per burst.
const DEBOUNCE = "150 millis"

export const watch = (
  project: Project,
  names: ReadonlyArray<string>
): Effect.Effect<void, never, Io | FileSystem.FileSystem | CommandExecutor> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const regenerate = (name: string) =>
      Console.log(`\n${name}.prisma changed`).pipe(
        Effect.zipRight(runAcross(project, [name], {
          command: ["generate"],
          extra: [],
          needsUrl: false,
          interactive: false,
          json: false,
          concurrency: 1,
          // The record generate keeps: a save that changed nothing regenerates nothing, and generate knows after.
          incremental: { force: false }
        })),
        // A failed regeneration is in its summary already: keep watching.
        Effect.catchTag("CliError", () => Effect.void),
        // Stopping waits for a regeneration under way rather than leave a half-written client behind.
        Effect.uninterruptible
      )
    const changed = fs.watch(join(project.root, SCHEMAS_DIR)).pipe(
      Stream.map((event) => basename(event.path)),
      Stream.filter((file) => file.endsWith(".prisma")),
      Stream.map((file) => file.slice(0, -".prisma".length)),
      Stream.filter((name) => names.includes(name)),
      // Debounced per schema: two schemas saved together both regenerate.
      Stream.groupByKey((name) => name),
      GroupBy.evaluate((_, events) => Stream.debounce(events, DEBOUNCE))
    )
    yield* Console.log(`Watching ${SCHEMAS_DIR}/ (${names.join(", ")}); Ctrl+C stops.`)
    // A watcher that fails (the folder removed, say) is not something a retry fixes: a defect.
    yield* Stream.runForEach(changed, regenerate).pipe(Effect.orDie, Effect.raceFirst(stopRequested))
    yield* Console.log("watch stopped")
  })
