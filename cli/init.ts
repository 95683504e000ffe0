/**
 * `flexidb init`: scaffolds prisma/schemas/ with an example schema and .env.example, in the project's root (the
 * nearest folder with prisma/schemas/ or package.json). Never overwrites a file, and adds no example schema to a
 * project that has a schema already.
 */
import { Console, Effect } from "effect"
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Io } from "./io.js"
import { findRoot, loadProject, loadProjectFiles, readSchema, SCHEMAS_DIR, urlVariable } from "./project.js"
import { stringField } from "./schema.js"

/** An example URL for .env.example, of the database's provider. */
const exampleUrl = (name: string, provider: string | undefined) =>
  provider === "sqlite"
    ? `file:./${name}.db`
    : provider === "mysql"
    ? `mysql://root@localhost:3306/${name}`
    : `postgresql://postgres@localhost:5432/${name}`

const ENV_EXAMPLE = ".env.example"
const ENV_HEADER = "# One URL per database: DATABASE_URL_<NAME> for prisma/schemas/<name>.prisma"

/** A line flexidb writes into .env.example: the variable, an example URL, and the schema it is for. */
const exampleLine = (name: string, provider: string | undefined) =>
  `${urlVariable(name)}=${exampleUrl(name, provider)} # prisma/schemas/${name}.prisma`

/** The variable a database-per-tenant module reads each tenant's URL from, `{tenant}` where its name goes. */
export const TENANT_TEMPLATE = "DATABASE_URL_TENANT_TEMPLATE"

/**
 * .env.example's line for the tenants of a database-per-tenant schema: DATABASE_URL_TENANT_TEMPLATE, an example URL of
 * the schema's provider with `{tenant}` where a tenant's name goes (the placeholder style of the other lines).
 */
export const templateLine = (schema: string, provider: string | undefined): ExtraLine => ({
  variable: TENANT_TEMPLATE,
  line: `${TENANT_TEMPLATE}=${
    provider === "sqlite"
      ? "file:./tenants/{tenant}.db"
      : provider === "mysql"
      ? "mysql://root@localhost:3306/tenant_{tenant}"
      : "postgresql://postgres@localhost:5432/tenant_{tenant}"
  } # each tenant's database, for prisma/schemas/${schema}.prisma`
})

/** A line for .env.example that is not one database's URL, added when its variable has no line. */
export interface ExtraLine {
  readonly variable: string
  readonly line: string
}

/**
 * A line flexidb wrote, for a schema that may be gone: it names its schema in its comment, or (written before the
 * comment was) it is exactly flexidb's example URL for the name its variable says. Anything else is the user's.
 */
const ownedBy = (line: string): string | undefined => {
  const m = /^(DATABASE_URL_[A-Z0-9_]+)=(\S*)(?:\s+#\s*prisma\/schemas\/([A-Za-z0-9_-]+)\.prisma)?\s*$/.exec(line)
  if (m === null) return undefined
  const [, variable, value, schema] = m
  if (schema !== undefined) return urlVariable(schema) === variable ? schema : undefined
  const example = /^(?:file:\.\/([A-Za-z0-9_-]+)\.db|mysql:\/\/root@localhost:3306\/([A-Za-z0-9_-]+)|postgresql:\/\/postgres@localhost:5432\/([A-Za-z0-9_-]+))$/
    .exec(value!)
  const name = example?.[1] ?? example?.[2] ?? example?.[3]
  return name !== undefined && urlVariable(name) === variable ? name : undefined
}

/**
 * Brings .env.example in line with the schemas: a line for each database that has none, and flexidb's own lines of
 * schemas that are gone removed — a renamed schema's old line is replaced by the new one, in its place. The user's
 * own lines stay as they are. Says what it changed; writes nothing when nothing changed.
 */
export const syncEnvExample = (
  root: string,
  databases: ReadonlyArray<{ readonly name: string; readonly provider: string | undefined }>,
  /** Variables neither added nor removed (the tenants' schema's, whose databases have URLs of their own). */
  leave: ReadonlyArray<string> = [],
  /** Lines of other variables the app reads (DATABASE_URL_TENANT_TEMPLATE), added when missing, never removed. */
  extra: ReadonlyArray<ExtraLine> = []
): Effect.Effect<void> =>
  Effect.gen(function*() {
    const path = join(root, ENV_EXAMPLE)
    const wanted = new Map(databases.map((d) => [urlVariable(d.name), d]))
    if (!existsSync(path)) {
      writeFileSync(path, [ENV_HEADER, ...databases.map((d) => exampleLine(d.name, d.provider)), ...extra.map((e) => e.line), ""].join("\n"))
      return yield* Console.log(`  created ${ENV_EXAMPLE}`)
    }
    const text = readFileSync(path, "utf8")
    const lines = text.split("\n")
    const present = new Set(lines.map((l) => /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=/.exec(l)?.[1]).filter((v) => v !== undefined))
    const missing = [
      ...[...wanted.entries()].filter(([variable]) => !present.has(variable)).map(([, d]) => exampleLine(d.name, d.provider)),
      ...extra.filter((e) => !present.has(e.variable)).map((e) => e.line)
    ]
    const removed: Array<string> = []
    const out: Array<string> = []
    for (const line of lines) {
      const schema = ownedBy(line)
      if (schema !== undefined && !wanted.has(urlVariable(schema)) && !leave.includes(urlVariable(schema))) {
        removed.push(urlVariable(schema))
        // The new schema's line takes the old one's place.
        const next = missing.shift()
        if (next !== undefined) out.push(next)
        continue
      }
      out.push(line)
    }
    if (removed.length === 0 && missing.length === 0 && out.length === lines.length) {
      return yield* Console.log(`  kept    ${ENV_EXAMPLE} (up to date)`)
    }
    const end = out.length > 0 && out[out.length - 1] === "" ? out.length - 1 : out.length
    out.splice(end, 0, ...missing)
    const added = [...wanted.keys(), ...extra.map((e) => e.variable)].filter((v) => !present.has(v))
    writeFileSync(path, `${out.join("\n")}${text.endsWith("\n") || text === "" ? "" : "\n"}`)
    yield* Console.log(
      `  updated ${ENV_EXAMPLE} (` +
        [added.length > 0 && `added ${added.join(", ")}`, removed.length > 0 && `removed ${removed.join(", ")}: no such schema`]
          .filter((p) => p !== false).join("; ") + `)`
    )
  })

const schemaFor = (major: 6 | 7) =>
  major === 7
    ? `generator client {
  provider            = "prisma-client"
  output              = "../../src/generated/main"
  // Imports between the generated files end in .js, so \`tsc\` output runs under node. Without it Prisma picks the
  // extension from the tsconfig it finds at generate time: .ts when there is none, and node then fails to start.
  importFileExtension = "js"
}

datasource db {
  provider = "postgresql"
}

model User {
  id    Int     @id @default(autoincrement())
  email String  @unique
  name  String?
}
`
    : `generator client {
  provider   = "prisma-client-js"
  output     = "../../src/generated/main"
  engineType = "client"
}

datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL_MAIN")
}

model User {
  id    Int     @id @default(autoincrement())
  email String  @unique
  name  String?
}
`

export const init: Effect.Effect<void, never, Io> = Effect.gen(function*() {
  const io = yield* Io
  const { root, ...found } = findRoot(io.cwd)
  if (root !== found.from) {
    yield* Console.log(`In ${root}: the nearest folder above ${found.from} with ${SCHEMAS_DIR}/ or package.json.`)
  }
  const major = yield* loadProject(root, io.env).pipe(
    Effect.map((project) => project.prismaMajor),
    Effect.catchTag("CliError", () =>
      Console.log("Prisma is not installed yet: scaffolding for Prisma 7 (npm install -D prisma @prisma/client).").pipe(
        Effect.as(7 as const)
      ))
  )
  const project = loadProjectFiles(root, io.env)
  // A project with schemas of its own gets no example beside them: .env.example names its own databases.
  const databases = project.schemas.length > 0
    ? yield* Effect.forEach(project.schemas, (name) =>
      readSchema(project, name).pipe(
        Effect.map((schema) => schema.datasources[0] === undefined ? undefined : stringField(schema.datasources[0], "provider")),
        Effect.orElseSucceed(() => undefined),
        Effect.map((provider) => ({ name, provider }))
      ))
    : [{ name: "main", provider: "postgresql" }]
  if (project.schemas.length > 0) {
    yield* Console.log(
      `  kept    ${SCHEMAS_DIR}/ (${project.schemas.map((n) => `${n}.prisma`).join(", ")}: no example schema added)`
    )
  }
  if (project.schemas.length === 0) {
    const file = join(SCHEMAS_DIR, "main.prisma")
    const path = join(root, file)
    mkdirSync(join(path, ".."), { recursive: true })
    writeFileSync(path, schemaFor(major))
    yield* Console.log(`  created ${file}`)
  }
  yield* syncEnvExample(root, databases)
  const variables = databases.map((d) => urlVariable(d.name)).join(", ")
  // Copying over an .env the project has would lose what is in it.
  const first = existsSync(join(root, ".env"))
    ? `set ${variables} in .env (.env.example lists them)`
    : `cp .env.example .env and set ${variables}`
  yield* Console.log(`
Next:
  1. ${first}; add a schema per database as prisma/schemas/<name>.prisma
     with DATABASE_URL_<NAME> in .env
  2. npx flexidb generate         generate every client
  3. npx flexidb migrate dev      create and apply migrations (prisma/migrations/<name>/)
  4. npx flexidb codegen          write src/db.ts wiring every client into createFlexiDB`)
})
