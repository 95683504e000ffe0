/**
 * `flexidb init`: scaffolds prisma/schemas/ with an example schema and .env.example, in the project's root (the
 * nearest folder with prisma/schemas/ or package.json). Never overwrites a file, and adds no example schema to a
 * project that has a schema already.
 */
import { Console, Effect } from "effect"
import { existsSync, mkdirSync, writeFileSync } from "node:fs"
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
  const envExample = [
    "# One URL per database: DATABASE_URL_<NAME> for prisma/schemas/<name>.prisma",
    ...databases.map((d) => `${urlVariable(d.name)}=${exampleUrl(d.name, d.provider)}`),
    ""
  ].join("\n")
  const files: Array<[string, string]> = [
    ...(project.schemas.length === 0 ? [[join(SCHEMAS_DIR, "main.prisma"), schemaFor(major)] as [string, string]] : []),
    [".env.example", envExample]
  ]
  for (const [file, content] of files) {
    const path = join(root, file)
    if (existsSync(path)) {
      yield* Console.log(`  kept    ${file} (exists)`)
      continue
    }
    mkdirSync(join(path, ".."), { recursive: true })
    writeFileSync(path, content)
    yield* Console.log(`  created ${file}`)
  }
  const variables = databases.map((d) => urlVariable(d.name)).join(", ")
  yield* Console.log(`
Next:
  1. cp .env.example .env and set ${variables}; add a schema per database as prisma/schemas/<name>.prisma
     with DATABASE_URL_<NAME> in .env
  2. npx flexidb generate         generate every client
  3. npx flexidb migrate dev      create and apply migrations (prisma/migrations/<name>/)
  4. npx flexidb codegen          write src/db.ts wiring every client into createFlexiDB`)
})
