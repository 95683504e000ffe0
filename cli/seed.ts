/** `flexidb seed`: runs prisma/seeds/<name>.ts (tsx, else ts-node) or .js (node) with that database's URL. */
import type { Io } from "./io.js"
import { findBinary, runPrisma } from "./prisma.js"
import type { Project } from "./project.js"
import { CliError, databaseUrl, findModule, missingUrl, SEEDS_DIR, urlVariable } from "./project.js"

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
    const file = findModule(project, SEEDS_DIR, name)
    if (file === undefined) {
      io.out(`  - ${name}: no ${SEEDS_DIR}/${name}.ts or .js, skipped`)
      continue
    }
    const url = databaseUrl(project, name)
    if (url === undefined) {
      io.err(`  ✘ ${name}: ${missingUrl(name)}`)
      failed++
      continue
    }
    const [bin, args] = command(project, file)
    const { code, output } = await runPrisma({
      database: name,
      bin,
      args,
      cwd: project.root,
      env: { ...project.env, [urlVariable(name)]: url, DATABASE_URL: url }
    }, false)
    if (output.trim()) io.out(output.trimEnd())
    io.out(`  ${code === 0 ? "✔" : "✘"} ${name}${code === 0 ? "" : ` (exit ${code})`}`)
    if (code !== 0) failed++
  }
  return failed === 0 ? 0 : 1
}
