/** `flexidb seed`: runs prisma/seeds/<name>.ts (tsx, else ts-node) or .js (node) with that database's URL. */
import type { CommandExecutor } from "@effect/platform/CommandExecutor"
import { Console, Effect } from "effect"
import { CliError } from "./error.js"
import { findBinary, runPrisma } from "./prisma.js"
import type { Project } from "./project.js"
import { databaseUrl, findModule, missingUrl, SEEDS_DIR, urlVariable } from "./project.js"

const command = (project: Project, file: string): Effect.Effect<readonly [string, Array<string>], CliError> =>
  Effect.suspend(() => {
    if (/\.[cm]?js$/.test(file)) return Effect.succeed([process.execPath, [file]] as const)
    const runner = findBinary(project.root, "tsx") ?? findBinary(project.root, "ts-node")
    return runner === undefined
      ? Effect.fail(new CliError(`${file} is TypeScript: install tsx (npm install -D tsx) or ts-node to run it.`))
      : Effect.succeed([runner, [file]] as const)
  })

/** Seeds one database; succeeds with whether it went well (a missing seed file is not a failure). */
const seedOne = (project: Project, name: string): Effect.Effect<boolean, CliError, CommandExecutor> =>
  Effect.gen(function*() {
    const file = findModule(project, SEEDS_DIR, name)
    if (file === undefined) {
      yield* Console.log(`  - ${name}: no ${SEEDS_DIR}/${name}.ts or .js, skipped`)
      return true
    }
    const url = databaseUrl(project, name)
    if (url === undefined) {
      yield* Console.error(`  ✘ ${name}: ${missingUrl(name)}`)
      return false
    }
    const [bin, args] = yield* command(project, file)
    const { code, output } = yield* runPrisma({
      database: name,
      bin,
      args,
      cwd: project.root,
      env: { ...project.env, [urlVariable(name)]: url, DATABASE_URL: url }
    }, false)
    if (output.trim()) yield* Console.log(output.trimEnd())
    yield* Console.log(`  ${code === 0 ? "✔" : "✘"} ${name}${code === 0 ? "" : ` (exit ${code})`}`)
    return code === 0
  })

/** Seeds each database in turn; fails (exit 1, already reported line by line) when any seed failed. */
export const seed = (project: Project, names: ReadonlyArray<string>): Effect.Effect<void, CliError, CommandExecutor> =>
  Effect.gen(function*() {
    const ok = yield* Effect.forEach(names, (name) => seedOne(project, name))
    const failed = names.filter((_, i) => !ok[i])
    if (failed.length > 0) return yield* new CliError(`seed failed for ${failed.join(", ")}`, { reported: true })
  })
