/** `flexidb init`: scaffolds prisma/schemas/ with an example schema and .env.example. Never overwrites a file. */
import { Console, Effect } from "effect"
import { existsSync, mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { Io } from "./io.js"
import { loadProject, SCHEMAS_DIR } from "./project.js"

const schemaFor = (major: 6 | 7) =>
  major === 7
    ? `generator client {
  provider = "prisma-client"
  output   = "../../src/generated/main"
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
  const major = yield* loadProject(io.cwd, io.env).pipe(
    Effect.map((project) => project.prismaMajor),
    Effect.catchTag("CliError", () =>
      Console.log("Prisma is not installed yet: scaffolding for Prisma 7 (npm install -D prisma @prisma/client).").pipe(
        Effect.as(7 as const)
      ))
  )
  const files: Array<[string, string]> = [
    [join(SCHEMAS_DIR, "main.prisma"), schemaFor(major)],
    [".env.example", "# One URL per database: DATABASE_URL_<NAME> for prisma/schemas/<name>.prisma\nDATABASE_URL_MAIN=postgresql://postgres@localhost:5432/main\n"]
  ]
  for (const [file, content] of files) {
    const path = join(io.cwd, file)
    if (existsSync(path)) {
      yield* Console.log(`  kept    ${file} (exists)`)
      continue
    }
    mkdirSync(join(path, ".."), { recursive: true })
    writeFileSync(path, content)
    yield* Console.log(`  created ${file}`)
  }
  yield* Console.log(`
Next:
  1. cp .env.example .env and set DATABASE_URL_MAIN; add a schema per database as prisma/schemas/<name>.prisma
     with DATABASE_URL_<NAME> in .env
  2. npx flexidb generate         generate every client
  3. npx flexidb migrate dev      create and apply migrations (prisma/migrations/<name>/)
  4. npx flexidb codegen          write src/db.ts wiring every client into createFlexiDB`)
})
