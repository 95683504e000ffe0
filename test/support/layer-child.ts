// An Effect app run as a child process by shutdown.test.ts: the registry as a Layer, with the default options.
// argv: sqlite file.
import { Effect } from "effect"
import { FlexiDBService } from "../../src/index.js"
import * as prisma7 from "../fixtures/prisma7/clients.ts"

const [file] = process.argv.slice(2) as [string]
const layer = FlexiDBService.layer({ app: prisma7.sqlite(file) }, {
  hooks: { onDisconnect: (name) => console.log(`disconnected:${name}`) }
})
Effect.runFork(
  Effect.gen(function*() {
    const db = yield* FlexiDBService.FlexiDB
    yield* db.ready
    console.log("ready")
    // Waits for a signal: nothing but the registry's fibers and this keeps the process alive.
    yield* Effect.never
  }).pipe(Effect.provide(layer))
)
