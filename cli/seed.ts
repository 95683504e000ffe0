/** `flexidb seed`: runs prisma/seeds/<name>.ts (tsx, else ts-node) or .js (node) with that database's URL. */
import { existsSync } from "node:fs"
import { join } from "node:path"
import type { Io } from "./io.js"
import { findBinary, runPrisma } from "./prisma.js"
import type { Project } from "./project.js"
import { CliError, SEEDS_DIR, urlVariable } from "./project.js"

const command = (project: Project, file: string): [string, Array<string>] => {
  if (/\.[cm]?js$/.test(file)) return [process.execPath, [file]]
  const tsx = findBinary(project.root, "tsx")
  if (tsx !== undefined) return [tsx, [file]]
  const tsNode = findBinary(project.root, "ts-node")
  if (tsNode !== undefined) return [tsNode, [file]]
  throw new CliError(`${file} is TypeScript: install tsx (npm install -D tsx) or ts-node to run it.`)
}

export const seed = async (project: Project, names: ReadonlyArray<string>, io: Io): Promise<number> => {
  let failed = 0
  for (const name of names) {
    const file = ["ts", "mts", "js", "mjs", "cjs"].map((ext) => join(project.root, SEEDS_DIR, `${name}.${ext}`)).find(existsSync)
    if (file === undefined) {
      io.out(`  - ${name}: no ${SEEDS_DIR}/${name}.ts or .js, skipped`)
      continue
    }
    const variable = urlVariable(name)
    const url = project.env[variable]
    if (url === undefined || url === "") {
      io.err(`  ✘ ${name}: ${variable} is not set: set it in the environment or in .env.`)
      failed++
      continue
    }
    const [bin, args] = command(project, file)
    const { code, output } = await runPrisma({
      database: name,
      bin,
      args,
      cwd: project.root,
      env: { ...project.env, [variable]: url, DATABASE_URL: url }
    }, false)
    if (output.trim()) io.out(output.trimEnd())
    io.out(`  ${code === 0 ? "✔" : "✘"} ${name}${code === 0 ? "" : ` (exit ${code})`}`)
    if (code !== 0) failed++
  }
  return failed === 0 ? 0 : 1
}
