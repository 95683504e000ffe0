// The CLI's Prisma schema reader — Prisma's own (get_config of @prisma/prisma-schema-wasm): generators, outputs and
// URLs read as Prisma reads them, and what Prisma refuses refused with Prisma's reason and the file and line.
import { describe, expect, it } from "vitest"
import type { Value } from "../cli/schema.js"
import { activeProvider, clientGenerator, parseSchema, parseSchemaFiles, resolvedField, SchemaParseError, stringField } from "../cli/schema.js"

const strings = (...values: ReadonlyArray<string>): Value => ({ kind: "array", items: values.map((value) => ({ kind: "string", value })) })

/** What was thrown: the error itself, to look at its fields. */
const thrown = (f: () => unknown): SchemaParseError => {
  try {
    f()
  } catch (error) {
    expect(error).toBeInstanceOf(SchemaParseError)
    return error as SchemaParseError
  }
  throw new Error("expected a SchemaParseError")
}

describe("parseSchema", () => {
  it("reads several generators, comments, env() and strings holding comment markers", () => {
    const schema = parseSchema(`
// generator fake { provider = "commented-out" }
/* block comment
   generator alsoFake { provider = "nope" } */
generator erd {
  provider = "prisma-erd-generator" // a third-party generator
  output   = "../docs/erd.svg"
}

generator client {
  provider        = "prisma-client"
  output          = "../src/generated/user" /* trailing */
  previewFeatures = ["views", "relationJoins"]
}

datasource db {
  provider = "postgresql"
  url      = env("DATABASE_URL_USER")
}

/// A documented model
model User {
  id    Int    @id @default(autoincrement())
  note  String @default("http://not-a-comment // really")
  data  Json   @default("{\\"a\\": \\"}\\"}")
  @@map("users")
}

enum Role {
  USER
  ADMIN
}

view Active {
  id Int @unique
}
`)
    expect(schema.generators.map((g) => stringField(g, "provider"))).toEqual(["prisma-erd-generator", "prisma-client"])
    expect(stringField(schema.generators[1]!, "output")).toBe("../src/generated/user")
    // Prisma keeps preview features sorted.
    expect(schema.generators[1]!.fields.get("previewFeatures")).toEqual(strings("relationJoins", "views"))
    expect(schema.datasources[0]!.fields.get("url")).toEqual({ kind: "env", name: "DATABASE_URL_USER" })
    // A datasource url is Prisma 6's: its reader is the one that accepts this schema.
    expect(schema.prisma).toBe(6)
    expect(clientGenerator(schema)?.name).toBe("client")
  })

  it("reports what Prisma refuses with file and line", () => {
    const cases: Array<[string, RegExp]> = [
      [`generator client {\n  provider = "prisma-client\n}`, /^x\.prisma:2: This line is not a valid definition within a generator/],
      [`model User {\n  id Int @id\n`, /^x\.prisma:1: This line is invalid\. It does not start with any known Prisma schema keyword/],
      [`generator a {\n  provider = "x" output = "y"\n}`, /^x\.prisma:2: This line is not a valid definition within a generator/],
      [`datasource db {\n  provider = "postgresql"\n  url = env(DATABASE_URL)\n}`, /^x\.prisma:3: Expected a string value, but received literal value `DATABASE_URL`/],
      [`table X {\n}`, /^x\.prisma:1: This line is invalid/],
      [`/* never closed`, /^x\.prisma:1: This line is invalid/]
    ]
    for (const [source, message] of cases) {
      expect(() => parseSchema(source, "x.prisma")).toThrow(SchemaParseError)
      expect(() => parseSchema(source, "x.prisma")).toThrow(message)
    }
    // Every problem Prisma found is kept, the first in the message with a count of the rest.
    const twice = thrown(() => parseSchema(`generator a {\n  provider = "x" output = "y"\n}`, "x.prisma"))
    expect(twice.problems.map((p) => [p.line, p.reason])).toEqual([
      [2, "This line is not a valid definition within a generator."],
      [1, `Argument "provider" is missing in generator block "a".`]
    ])
    expect(twice.message).toMatch(/\(and 1 more problem\)$/)
  })
})

describe("what the hand-written reader could not read", () => {
  it("unicode escapes, non-ASCII names, and function calls with named arguments in a datasource", () => {
    const schema = parseSchema(`
generator client {
  provider        = "prisma-client"
  output          = "../gen/caf\\u00e9"
  previewFeatures = ["postgresqlExtensions"]
}

datasource db {
  provider   = "postgres"
  extensions = [pg_trgm, postgis(version: "3.4"), uuid_ossp(map: "uuid-ossp", schema: "extensions")]
}

model Café {
  id    Int    @id
  crème String @default("br\\u00fbl\\u00e9e")
}
`)
    // The old reader kept "u00e9", stopped at 'é' ("unexpected character"), and refused `version: "3.4"`.
    expect(stringField(schema.generators[0]!, "output")).toBe("../gen/café")
    expect(schema.generators[0]!.fields.get("previewFeatures")).toEqual(strings("postgresqlExtensions"))
    // Prisma's own name for the provider beside the one written.
    expect(stringField(schema.datasources[0]!, "provider")).toBe("postgres")
    expect(activeProvider(schema)).toBe("postgresql")
    expect(schema.prisma).toBe(7)
  })

  it("generator values from env() and every other key of the block, as Prisma reads them", () => {
    const [generator] = parseSchema(`
generator client {
  provider      = env("CLIENT_GENERATOR")
  output        = env("CLIENT_OUTPUT")
  moduleFormat  = "esm"
  binaryTargets = ["native", env("EXTRA_TARGET")]
  custom        = ["a", "b"]
}
`).generators
    expect(Object.fromEntries(generator!.fields)).toEqual({
      provider: { kind: "env", name: "CLIENT_GENERATOR" },
      output: { kind: "env", name: "CLIENT_OUTPUT" },
      previewFeatures: strings(),
      binaryTargets: { kind: "array", items: [{ kind: "string", value: "native" }, { kind: "env", name: "EXTRA_TARGET" }] },
      moduleFormat: { kind: "string", value: "esm" },
      custom: strings("a", "b")
    })
    expect(resolvedField(generator!, "output", { CLIENT_OUTPUT: "../out" })).toBe("../out")
    expect(resolvedField(generator!, "output", {})).toBeUndefined()
  })

  it("a schema of several files: each block labelled with its file, a problem with the file it is in", () => {
    const files: Array<[string, string]> = [
      ["schema/generator.prisma", `generator client {\n  provider = "prisma-client"\n  output   = "../gen"\n}\n`],
      ["schema/datasource.prisma", `datasource db {\n  provider = "sqlite"\n}\n`],
      ["schema/models.prisma", `model A {\n  id Int @id\n  b  B?\n}\n\nmodel B {\n  id  Int @id\n  aId Int @unique\n  a   A   @relation(fields: [aId], references: [id])\n}\n`]
    ]
    const schema = parseSchemaFiles(files)
    expect(schema.generators.map((g) => [g.name, g.file])).toEqual([["client", "schema/generator.prisma"]])
    expect(schema.datasources.map((d) => [d.name, d.file])).toEqual([["db", "schema/datasource.prisma"]])
    const broken = thrown(() => parseSchemaFiles([...files.slice(0, 2), ["schema/models.prisma", `model A {\n  id Int @id\n}\n\ntabel B {\n}\n`]]))
    expect(broken.message).toMatch(/^schema\/models\.prisma:5: This line is invalid/)
  })

  it("refuses what Prisma refuses and the old reader let through: an unknown preview feature, a trailing comma", () => {
    const unknown = thrown(() => parseSchema(`generator client {\n  provider = "prisma-client"\n  previewFeatures = ["views", "nope"]\n}\n`, "x.prisma"))
    expect(unknown.message).toMatch(/^x\.prisma:3: The preview feature "nope" is not known\. Expected one of: /)
    expect(() => parseSchema(`generator client {\n  provider = "prisma-client"\n  previewFeatures = ["views",]\n}\n`, "x.prisma"))
      .toThrow(/^x\.prisma:3: This line is not a valid definition within a generator/)
  })

  it("reads a schema as the installed Prisma does: Prisma 7 refuses a datasource url, Prisma 6 requires one", () => {
    const six = `datasource db {\n  provider = "sqlite"\n  url      = env("DATABASE_URL_MAIN")\n}\n`
    const seven = `datasource db {\n  provider = "sqlite"\n}\n`
    expect(parseSchema(six, "x.prisma", { prisma: 6 }).datasources[0]!.fields.get("url")).toEqual({ kind: "env", name: "DATABASE_URL_MAIN" })
    expect(() => parseSchema(six, "x.prisma", { prisma: 7 })).toThrow(/^x\.prisma:3: The datasource property `url` is no longer supported in schema files/)
    expect(parseSchema(seven, "x.prisma", { prisma: 7 }).datasources[0]!.fields.has("url")).toBe(false)
    expect(() => parseSchema(seven, "x.prisma", { prisma: 6 })).toThrow(/^x\.prisma:1: Argument "url" is missing in data source block "db"/)
    // Not knowing which Prisma: whichever reader accepts it.
    expect([parseSchema(six).prisma, parseSchema(seven).prisma]).toEqual([6, 7])
  })
})
