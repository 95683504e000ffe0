// The CLI's Prisma schema reader: the grammar it must get right to find generators, outputs and URLs.
import { describe, expect, it } from "vitest"
import { parseSchema, SchemaParseError, stringField } from "../cli/schema.js"

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
    expect(schema.generators[1]!.fields.get("previewFeatures")).toEqual({
      kind: "array",
      items: [{ kind: "string", value: "views" }, { kind: "string", value: "relationJoins" }]
    })
    expect(schema.datasources[0]!.fields.get("url")).toEqual({ kind: "env", name: "DATABASE_URL_USER" })
    expect(schema.blocks).toEqual([
      { type: "model", name: "User" },
      { type: "enum", name: "Role" },
      { type: "view", name: "Active" }
    ])
  })

  it("reports what it cannot read with file and line", () => {
    const cases: Array<[string, RegExp]> = [
      [`generator client {\n  provider = "prisma-client\n}`, /x\.prisma:2: unterminated string/],
      [`model User {\n  id Int @id\n`, /x\.prisma:1: unterminated block/],
      [`generator a {\n  provider = "x" output = "y"\n}`, /x\.prisma:2: expected end of line after provider/],
      [`datasource db {\n  url = env(DATABASE_URL)\n}`, /x\.prisma:2: env\(\) takes one string/],
      [`table X {\n}`, /x\.prisma:1: unknown block 'table'/],
      [`/* never closed`, /x\.prisma:1: unterminated block comment/]
    ]
    for (const [source, message] of cases) {
      expect(() => parseSchema(source, "x.prisma")).toThrow(SchemaParseError)
      expect(() => parseSchema(source, "x.prisma")).toThrow(message)
    }
  })
})
