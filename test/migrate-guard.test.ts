// The destructive-change guard: a fixture of destructive and harmless migrations per dialect (test/fixtures/guard),
// read by each dialect's real parser. Every finding is listed exactly: no false positive on comments, strings,
// CREATE, index/constraint renames or Prisma's own SQLite table redefinition.
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { checkMigrations, checkScript } from "../src/migrate/guard.js"

const fixtures = join(import.meta.dirname, "fixtures", "guard")
const seen = async (provider: string, pending?: Array<string>) =>
  (await checkMigrations({ migrations: join(fixtures, provider), pending })).map((f) => [f.file.split("/")[0], f.line, f.kind, f.target])

describe("the guard over a fixture folder", () => {
  it("PostgreSQL (libpg-query): every destructive kind, once each; the harmless look-alikes pass", async () => {
    const D = "20240102000000_destructive"
    expect(await seen("postgresql")).toEqual([
      [D, 2, "drop-table", "Legacy"],
      [D, 3, "drop-column", "User.age"],
      [D, 4, "alter-type", "User.name"],
      [D, 5, "set-not-null", "User.name"],
      [D, 6, "rename", "User.email"],
      [D, 7, "rename", "Post"],
      [D, 8, "truncate", "Audit"],
      [D, 9, "delete-without-where", "Session"],
      [D, 10, "update-without-where", "User"],
      // The unreadable statement is a finding of its own; the readable one beside it is not.
      ["20240104000000_unreadable", 2, "unparseable", undefined]
    ])
  })

  it("SQLite (sql-parser-cst): Prisma's redefinition passes when every column is copied, is found when one is lost", async () => {
    expect(await seen("sqlite")).toEqual([
      ["20240103000000_redefine_drops", 9, "drop-column", "User.name"],
      ["20240103000000_redefine_drops", 17, "alter-type", "Post.title"],
      ["20240104000000_destructive", 2, "rename", "User.email"],
      ["20240104000000_destructive", 3, "drop-column", "User.mail"],
      ["20240104000000_destructive", 4, "delete-without-where", "Post"],
      ["20240104000000_destructive", 6, "drop-table", "Post"]
    ])
  })

  it("MySQL/MariaDB (node-sql-parser): MODIFY/CHANGE judged against the column's earlier declaration", async () => {
    expect(await seen("mysql")).toEqual([
      ["20240102000000_destructive", 1, "drop-column", "User.name"],
      // VARCHAR(191) → VARCHAR(50): narrower.
      ["20240102000000_destructive", 2, "alter-type", "User.email"],
      ["20240102000000_destructive", 3, "drop-table", "Legacy"],
      ["20240102000000_destructive", 4, "truncate", "Audit"],
      ["20240102000000_destructive", 5, "update-without-where", "User"],
      // An enum value removed; NOT NULL without a default; a column renamed (its type kept).
      ["20240104000000_modify", 1, "alter-type", "User.role"],
      ["20240104000000_modify", 2, "set-not-null", "User.nick"],
      ["20240104000000_modify", 3, "rename", "User.email"]
    ])
  })

  it("MySQL/MariaDB: Prisma's RENAME INDEX (which node-sql-parser cannot read) passes; anything more in that statement does not", async () => {
    expect(await checkScript("-- RenameIndex\nALTER TABLE `Post` RENAME INDEX `Post_a_idx` TO `Post_b_idx`;\n", "mysql")).toEqual([])
    expect(await checkScript("ALTER TABLE db.`Post` RENAME KEY `a` TO `b`, RENAME INDEX c TO `d` /* c */;", "mysql")).toEqual([])
    for (const sql of [
      "ALTER TABLE `Post` RENAME INDEX `a` TO `b`, DROP COLUMN `x`;",
      "ALTER TABLE `Post` RENAME INDEX `a` TO 'b';",
      "ALTER TABLE `Post` RENAME INDEX `a` `b`;"
    ]) {
      expect((await checkScript(sql, "mysql")).map((f) => f.kind)).toEqual(["unparseable"])
    }
  })

  it("only pending migrations are reported; applied ones still tell SQLite what a table had", async () => {
    expect(await seen("postgresql", ["20240103000000_harmless"])).toEqual([])
    expect(await seen("sqlite", ["20240103000000_redefine_drops"])).toEqual([
      ["20240103000000_redefine_drops", 9, "drop-column", "User.name"],
      ["20240103000000_redefine_drops", 17, "alter-type", "Post.title"]
    ])
  })

  it("each finding carries the statement and expand/contract advice", async () => {
    const [f] = await checkScript(`-- first\n\nALTER TABLE "User" DROP COLUMN "age";`, "postgresql", "x/migration.sql")
    expect(f).toEqual({
      file: "x/migration.sql",
      line: 3,
      statement: `ALTER TABLE "User" DROP COLUMN "age"`,
      kind: "drop-column",
      target: "User.age",
      advice: expect.stringContaining("expand/contract")
    })
  })

  it("comments and string literals never trigger it, in any dialect", async () => {
    for (const provider of ["postgresql", "sqlite", "mysql"] as const) {
      const q = provider === "mysql" ? "`" : '"'
      const sql = `-- DROP TABLE ${q}User${q};\n/* TRUNCATE ${q}User${q}; */\n` +
        `INSERT INTO ${q}Note${q} (${q}body${q}) VALUES ('DELETE FROM x; DROP TABLE y; ALTER TABLE z DROP COLUMN w');\n`
      expect(await checkScript(sql, provider)).toEqual([])
    }
  })

  it("the project's own migration fixtures are clean", async () => {
    for (const provider of ["postgresql", "sqlite", "mysql"]) {
      expect(await checkMigrations({ migrations: join(import.meta.dirname, "fixtures", "migrations", provider) })).toEqual([])
    }
  })
})
