// Raw SQL as flexidb reads it: which statements only read (the allow-list that keeps writes off read clients and
// out of preventWrites, and decides which raw reads are sent again after a lost connection), and the summary that
// names a statement in spans and metrics. Pure functions of the text: the table is the specification.
import { describe, expect, it } from "vitest"
import { dialectOf, isRawRead, isReadStatement, rawText, summarize } from "../src/internal/sql.js"
import * as prisma6 from "./fixtures/prisma6/clients.js"
import * as prisma7 from "./fixtures/prisma7/clients.ts"

const reads: ReadonlyArray<string> = [
  "SELECT 1",
  "select * from users where id = $1",
  "  \n\t SELECT 1",
  "-- a comment\nSELECT 1",
  "/* a comment */ SELECT 1",
  "(SELECT 1) UNION (SELECT 2)",
  "((SELECT id FROM a))",
  "SELECT 1;",
  "SELECT 1; SELECT 2",
  "SELECT 'DELETE FROM users' AS s",
  "SELECT 'it''s; DROP TABLE users' AS s",
  "SELECT \"update\" FROM t",
  "SELECT `delete` FROM t",
  "SELECT * FROM t -- FOR UPDATE",
  "SELECT * FROM t /* FOR UPDATE */",
  "SELECT * FROM t WHERE note = 'FOR UPDATE'",
  "SELECT substring(name FROM 1 FOR 2) FROM t",
  "SELECT replace(name, 'a', 'b') FROM t",
  "WITH a AS (SELECT 1) SELECT * FROM a",
  "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
  "VALUES (1), (2)",
  "TABLE users",
  "SHOW search_path",
  "DESCRIBE users",
  "EXPLAIN SELECT * FROM users",
  "EXPLAIN DELETE FROM users",
  "EXPLAIN UPDATE users SET a = 1",
  "EXPLAIN ANALYZE SELECT * FROM users",
  "EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM users",
  "SELECT pg_last_wal_replay_lsn()::text AS lsn"
]

const writes: ReadonlyArray<string> = [
  "INSERT INTO t VALUES (1)",
  "UPDATE t SET a = 1",
  "UPDATE t SET a = 1 RETURNING *",
  "DELETE FROM t RETURNING id",
  "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
  "CREATE TABLE t (id int)",
  "DROP TABLE t",
  "TRUNCATE t",
  "ALTER TABLE t ADD COLUMN b int",
  "SET search_path = x",
  "BEGIN",
  "CALL p()",
  "DO $$ BEGIN END $$",
  "COPY t FROM STDIN",
  "PRAGMA user_version = 3",
  "REPLACE INTO t VALUES (1)",
  "SELECT * FROM t FOR UPDATE",
  "SELECT * FROM t FOR NO KEY UPDATE",
  "SELECT * FROM t FOR SHARE",
  "SELECT * FROM t FOR KEY SHARE",
  "SELECT * FROM t FOR UPDATE SKIP LOCKED",
  "SELECT * FROM t LOCK IN SHARE MODE",
  "SELECT * INTO new_t FROM t",
  "SELECT id INTO @x FROM t",
  "SELECT nextval('s')",
  "SELECT pg_advisory_lock(1)",
  "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
  "WITH u AS (UPDATE t SET a = 1 RETURNING *) SELECT count(*) FROM u",
  "WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a",
  "WITH a AS (SELECT 1) DELETE FROM t",
  "WITH a AS MATERIALIZED (INSERT INTO t VALUES (1) RETURNING *) SELECT 1",
  "SELECT 1; DELETE FROM t",
  "SELECT 1; /* */ UPDATE t SET a = 1",
  "-- SELECT\nDELETE FROM t",
  "/* SELECT */ DELETE FROM t",
  "(DELETE FROM t)",
  "EXPLAIN ANALYZE DELETE FROM t",
  "EXPLAIN (ANALYZE) UPDATE t SET a = 1",
  "EXPLAIN ANALYZE WITH d AS (DELETE FROM t RETURNING 1) SELECT * FROM d",
  // Dialects that lex differently: a read only if every one reads it.
  "SELECT 'a\\'; DELETE FROM t; -- '", // PostgreSQL: the string ends at \'
  "SELECT 'a\\' ; DELETE FROM t",
  "SELECT \"a\\\"; DELETE FROM t; -- \"",
  "SELECT 1 /* /* */ ; DELETE FROM t; /* */", // MySQL and SQLite do not nest comments
  "SELECT 1 # comment\n; DELETE FROM t",
  "SELECT /*!50000 1; DELETE FROM t */",
  "SELECT E'\\'; DELETE FROM t; --'",
  "SELECT $a; DELETE FROM t; $a",
  "SELECT 1--1\n; DELETE FROM t",
  "",
  "   ",
  "-- only a comment",
  "; ;",
  "GIBBERISH"
]

describe("isReadStatement", () => {
  it.each(reads)("reads: %s", (sql) => {
    expect(isReadStatement(sql)).toBe(true)
  })
  it.each(writes)("writes: %s", (sql) => {
    expect(isReadStatement(sql)).toBe(false)
  })
  it("answers the same from its cache, and for SQL longer than it caches", () => {
    for (let i = 0; i < 2_500; i++) expect(isReadStatement(`SELECT ${i}`)).toBe(true)
    expect(isReadStatement("SELECT 1")).toBe(true)
    expect(isReadStatement("DELETE FROM t")).toBe(false)
    expect(isReadStatement("DELETE FROM t")).toBe(false)
    const long = `SELECT ${"a, ".repeat(3_000)}b FROM t`
    expect(isReadStatement(long)).toBe(true)
    expect(isReadStatement(`${long}; DELETE FROM t`)).toBe(false)
  })
})

describe("with the client's dialect", () => {
  // PostgreSQL's own quoting: a read there, but MySQL or SQLite would run the DELETE, so without the dialect a write.
  it.each([
    "/* nested /* comment */ still */ SELECT 1",
    "SELECT $$; DELETE FROM users; $$ AS s",
    "SELECT $tag$ INSERT INTO t $tag$ AS s",
    "SELECT 'a\\' AS backslash"
  ])("PostgreSQL reads: %s", (sql) => {
    expect(isReadStatement(sql, "postgresql")).toBe(true)
  })
  it.each([
    "/* nested /* comment */ still */ SELECT 1",
    "SELECT $$; DELETE FROM users; $$ AS s"
  ])("without a dialect, a write: %s", (sql) => {
    expect(isReadStatement(sql)).toBe(false)
  })
  it.each([
    ["SELECT 'a\\'; DELETE FROM t; -- '", "mysql", true],
    ["SELECT 'a\\'; DELETE FROM t; -- '", "postgresql", false],
    ["SELECT 'a\\'; DELETE FROM t; -- '", "sqlite", false],
    ["SELECT 1 # note\n", "mysql", true],
    ["SELECT 1 /* /* */ ; DELETE FROM t; /* */", "postgresql", true],
    ["SELECT 1 /* /* */ ; DELETE FROM t; /* */", "sqlite", false],
    ["SELECT /*!50000 1; DELETE FROM t */", "mysql", false]
  ] as const)("%s under %s: %s", (sql, dialect, read) => {
    expect(isReadStatement(sql, dialect)).toBe(read)
  })
  it("is the provider a Prisma 6 or 7 client keeps", () => {
    for (const gen of [prisma6, prisma7]) {
      expect(dialectOf(gen.sqlite("file:/nonexistent/flexidb-dialect.db"))).toBe("sqlite")
      expect(dialectOf(gen.postgresql("postgresql://postgres@127.0.0.1:1/x"))).toBe("postgresql")
      expect(dialectOf(gen.mysql("mysql://root@127.0.0.1:1/x"))).toBe("mysql")
    }
    expect(dialectOf({})).toBe(undefined)
  })
})

describe("summarize", () => {
  it.each([
    ["SELECT * FROM users WHERE email = 'secret@example.com'", "SELECT users"],
    ["select id from public.users u join orders o on o.uid = u.id", "SELECT public.users"],
    ["SELECT * FROM \"Order\" WHERE id = $1", "SELECT Order"],
    ["SELECT * FROM `Order`", "SELECT Order"],
    ["SELECT (SELECT max(id) FROM a) FROM b", "SELECT b"],
    ["SELECT 1", "SELECT"],
    ["  -- hi\n (SELECT a FROM t)", "SELECT t"],
    ["INSERT INTO orders (a) VALUES ('pw')", "INSERT orders"],
    ["INSERT OR REPLACE INTO orders VALUES (1)", "INSERT orders"],
    ["UPDATE ONLY users SET name = 'x'", "UPDATE users"],
    ["DELETE FROM sessions WHERE token = 'abc'", "DELETE sessions"],
    ["WITH a AS (SELECT 1) DELETE FROM t USING a", "DELETE t"],
    ["WITH a AS (SELECT 1) SELECT * FROM a", "SELECT a"],
    ["CREATE TABLE IF NOT EXISTS logs (id int)", "CREATE logs"],
    ["DROP TABLE t", "DROP t"],
    ["SHOW search_path", "SHOW"],
    ["EXPLAIN SELECT 1", "EXPLAIN"],
    ["TABLE users", "TABLE users"],
    ["SELECT 1; DELETE FROM t", "SELECT"],
    ["'just a string'", "OTHER"],
    ["FROBNICATE things", "OTHER"],
    ["", "OTHER"]
  ])("%s → %s", (sql, summary) => {
    expect(summarize(sql)).toBe(summary)
  })
  it("never repeats a value of the query", () => {
    for (const sql of ["SELECT * FROM t WHERE a = 'hunter2'", "INSERT INTO t VALUES ('hunter2')", "UPDATE t SET p = 'hunter2'"]) {
      expect(summarize(sql)).not.toContain("hunter2")
    }
  })
})

describe("rawText: the SQL of a raw call's arguments", () => {
  class Typed {
    constructor(private readonly text: string) {}
    get sql() {
      return this.text
    }
  }
  it.each([
    ["$queryRawUnsafe(sql, …values)", ["SELECT * FROM t WHERE id = $1", 1], "SELECT * FROM t WHERE id = $1"],
    ["a tagged template", [Object.assign(["SELECT * FROM t WHERE id = ", " AND b = ", ""], { raw: [] }), 1, 2], "SELECT * FROM t WHERE id =  ?  AND b =  ? "],
    ["Prisma.sql, as the query hook passes it", { strings: ["DELETE FROM t WHERE id = ", ""], values: [1] }, "DELETE FROM t WHERE id =  ? "],
    ["Prisma.sql, as a call's argument", [{ strings: ["SELECT 1"], values: [] }], "SELECT 1"],
    ["TypedSQL (a getter)", [new Typed("SELECT a FROM t")], "SELECT a FROM t"],
    ["nothing it knows", [42], undefined]
  ] as const)("%s", (_what, args, text) => {
    expect(rawText(args)).toBe(text)
  })
  it("a raw call it cannot read is not a read", () => {
    expect(isRawRead("$queryRawUnsafe", [42], "sqlite")).toBe(false)
    expect(isRawRead("$queryRaw", { strings: ["SELECT 1"], values: [] }, "sqlite")).toBe(true)
    expect(isRawRead("findMany", {}, "sqlite")).toBe(false)
  })
})
