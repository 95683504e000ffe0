/**
 * `flexidb codegen`: reads every schema and writes a module (default src/db.ts) that imports each generated client
 * relative to itself, builds it with the driver adapter its datasource needs, and wires them into createFlexiDB.
 */
import { Console, Effect } from "effect"
import { existsSync, mkdirSync, writeFileSync } from "node:fs"
import { dirname, relative, resolve } from "node:path"
import { CliError } from "./error.js"
import type { Project } from "./project.js"
import { readSchema, schemaPath, selectSchemas, urlVariable } from "./project.js"
import { stringField } from "./schema.js"

interface Adapter {
  readonly pkg: string
  readonly name: (major: 6 | 7) => string
  readonly make: (cls: string, url: string) => string
}

const adapters: Record<string, Adapter> = {
  sqlite: {
    pkg: "@prisma/adapter-better-sqlite3",
    name: (major) => (major === 7 ? "PrismaBetterSqlite3" : "PrismaBetterSQLite3"),
    make: (cls, url) => `new ${cls}({ url: ${url} })`
  },
  postgresql: { pkg: "@prisma/adapter-pg", name: () => "PrismaPg", make: (cls, url) => `new ${cls}({ connectionString: ${url} })` },
  mysql: { pkg: "@prisma/adapter-mariadb", name: () => "PrismaMariaDb", make: (cls, url) => `new ${cls}(${url})` }
}
adapters.postgres = adapters.postgresql!

const pascal = (name: string) =>
  name.replace(/(^|[^A-Za-z0-9]+)([A-Za-z0-9])/g, (_, __, c: string) => c.toUpperCase()).replace(/^(\d)/, "_$1")

const importPath = (from: string, to: string) => {
  const rel = relative(dirname(from), to).split("\\").join("/")
  return rel.startsWith(".") ? rel : `./${rel}`
}

/** What the module needs of one schema: its client's class name and import path, and its driver adapter. */
const database = (project: Project, target: string, name: string) =>
  Effect.gen(function*() {
    const schema = yield* readSchema(project, name)
    const generator = schema.generators.find((g) => {
      const provider = stringField(g, "provider")
      return provider === "prisma-client" || provider === "prisma-client-js"
    })
    if (generator === undefined) {
      return yield* new CliError(`prisma/schemas/${name}.prisma has no prisma-client or prisma-client-js generator.`)
    }
    const out = stringField(generator, "output")
    if (out === undefined) {
      return yield* new CliError(
        `prisma/schemas/${name}.prisma: the generator has no output. With several schemas each client needs its own, ` +
          `e.g. output = "../../src/generated/${name}".`
      )
    }
    const clientDir = resolve(dirname(schemaPath(project, name)), out)
    const provider = schema.datasources[0] === undefined ? undefined : stringField(schema.datasources[0], "provider")
    const adapter = adapters[provider ?? ""]
    if (adapter === undefined) {
      return yield* new CliError(`prisma/schemas/${name}.prisma: no driver adapter is known for provider '${provider}'.`)
    }
    return {
      name,
      cls: `${pascal(name)}Client`,
      from: importPath(target, stringField(generator, "provider") === "prisma-client" ? `${clientDir}/client` : clientDir),
      adapter
    }
  })

export const codegen = (project: Project, output: string, force: boolean): Effect.Effect<void, CliError> =>
  Effect.gen(function*() {
    const target = resolve(project.root, output)
    if (existsSync(target) && !force) {
      return yield* new CliError(`${output} exists and was left untouched. Run with --force to overwrite it.`)
    }
    const names = yield* selectSchemas(project, undefined)
    const databases = yield* Effect.forEach(names, (name) => database(project, target, name))
    const major = project.prismaMajor
    const used = [...new Set(databases.map((d) => d.adapter))]
    const lines = [
      `// Written by \`flexidb codegen\` from prisma/schemas/*.prisma. Regenerate: npx flexidb codegen --force`,
      `// Adapter packages it needs: ${used.map((a) => a.pkg).join(", ")}`,
      ...used.map((a) => `import { ${a.name(major)} } from "${a.pkg}"`),
      `import { createFlexiDB } from "flexidb"`,
      ...databases.map((d) => `import { PrismaClient as ${d.cls} } from "${d.from}"`),
      ``,
      `const url = (variable: string): string => {`,
      `  const value = process.env[variable]`,
      `  if (value === undefined || value === "") throw new Error(\`\${variable} is not set: set it to the database's URL (see .env.example)\`)`,
      `  return value`,
      `}`,
      ``,
      `export const db = createFlexiDB({`,
      ...databases.map((d) =>
        `  ${JSON.stringify(d.name)}: new ${d.cls}({ adapter: ${d.adapter.make(d.adapter.name(major), `url(${JSON.stringify(urlVariable(d.name))})`)} }),`
      ),
      `})`,
      ``,
      `export type DB = typeof db`,
      ``
    ]
    mkdirSync(dirname(target), { recursive: true })
    writeFileSync(target, lines.join("\n"))
    yield* Console.log(`Wrote ${output}: ${databases.map((d) => d.name).join(", ")}`)
    yield* Console.log(`It needs: npm install ${used.map((a) => a.pkg).join(" ")}`)
  })
