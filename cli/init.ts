/** `flexidb init`: scaffolds prisma/schemas/ with an example schema and .env.example. Never overwrites a file. */
import { existsSync, mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import type { Io } from "./io.js"
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

export const init = async (io: Io): Promise<number> => {
  let major: 6 | 7 = 7
  try {
    major = loadProject(io.cwd, io.env).prismaMajor
  } catch {
    io.out("Prisma is not installed yet: scaffolding for Prisma 7 (npm install -D prisma @prisma/client).")
  }
  const files: Array<[string, string]> = [
    [join(SCHEMAS_DIR, "main.prisma"), schemaFor(major)],
    [".env.example", "# One URL per database: DATABASE_URL_<NAME> for prisma/schemas/<name>.prisma\nDATABASE_URL_MAIN=postgresql://postgres@localhost:5432/main\n"]
  ]
  for (const [file, content] of files) {
    const path = join(io.cwd, file)
    if (existsSync(path)) {
      io.out(`  kept    ${file} (exists)`)
      continue
    }
    mkdirSync(join(path, ".."), { recursive: true })
    writeFileSync(path, content)
    io.out(`  created ${file}`)
  }
  io.out(`
Next:
  1. cp .env.example .env and set DATABASE_URL_MAIN; add a schema per database as prisma/schemas/<name>.prisma
     with DATABASE_URL_<NAME> in .env
  2. npx flexidb generate         generate every client
  3. npx flexidb migrate dev      create and apply migrations (prisma/migrations/<name>/)
  4. npx flexidb codegen          write src/db.ts wiring every client into createFlexiDB`)
  return 0
}
