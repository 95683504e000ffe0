// Real databases for tests: each call creates its own uniquely named database (or SQLite file) with the fixture
// tables and returns a function that drops it. A server that is down fails the suite: it never skips.
import Database from "better-sqlite3"
import * as mariadb from "mariadb"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"

export type Provider = "sqlite" | "postgresql" | "mysql"
export const providers: ReadonlyArray<Provider> = ["sqlite", "postgresql", "mysql"]

export const PG_HOST = "127.0.0.1:5432"
export const MYSQL_HOST = "127.0.0.1:3306"

let counter = 0
export const uniqueName = (prefix: string) =>
  `flexidb_${prefix}_${process.pid}_${Date.now().toString(36)}_${(counter++).toString(36)}`

const ddl: Record<Provider, ReadonlyArray<string>> = {
  sqlite: [
    `CREATE TABLE "User" (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, name TEXT)`,
    `CREATE TABLE "Post" (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL, authorId INTEGER NOT NULL REFERENCES "User"(id))`
  ],
  postgresql: [
    `CREATE TABLE "User" (id SERIAL PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT)`,
    `CREATE TABLE "Post" (id SERIAL PRIMARY KEY, title TEXT NOT NULL, "authorId" INTEGER NOT NULL REFERENCES "User"(id))`
  ],
  mysql: [
    "CREATE TABLE `User` (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(191) NOT NULL UNIQUE, name VARCHAR(191) NULL)",
    "CREATE TABLE `Post` (id INT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(191) NOT NULL, authorId INT NOT NULL, FOREIGN KEY (authorId) REFERENCES `User`(id))"
  ]
}

export interface TestDatabase {
  readonly provider: Provider
  /** The URL (for SQLite, the file path) the clients use. */
  readonly url: string
  readonly drop: () => Promise<void>
}

const serverDown = (what: string, error: unknown) =>
  new Error(
    `${what} is not reachable (${error instanceof Error ? error.message : String(error)}). ` +
      `The real-database suites need it: see DESIGN.md for how to start it.`
  )

const createSqlite = async (): Promise<TestDatabase> => {
  const dir = mkdtempSync(join(tmpdir(), "flexidb-"))
  const file = join(dir, "test.db")
  const db = new Database(file)
  for (const sql of ddl.sqlite) db.exec(sql)
  db.close()
  return { provider: "sqlite", url: file, drop: async () => rmSync(dir, { recursive: true, force: true }) }
}

const createPostgres = async (): Promise<TestDatabase> => {
  const name = uniqueName("pg")
  const admin = new pg.Client({ connectionString: `postgresql://postgres@${PG_HOST}/postgres` })
  try {
    await admin.connect()
  } catch (e) {
    throw serverDown(`PostgreSQL at ${PG_HOST}`, e)
  }
  try {
    await admin.query(`CREATE DATABASE "${name}"`)
  } finally {
    await admin.end()
  }
  const url = `postgresql://postgres@${PG_HOST}/${name}`
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  for (const sql of ddl.postgresql) await client.query(sql)
  await client.end()
  return {
    provider: "postgresql",
    url,
    drop: async () => {
      const a = new pg.Client({ connectionString: `postgresql://postgres@${PG_HOST}/postgres` })
      await a.connect()
      await a.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
      await a.end()
    }
  }
}

const mysqlAdmin = async () => {
  try {
    return await mariadb.createConnection({ host: "127.0.0.1", port: 3306, user: "root", connectTimeout: 3000 })
  } catch (e) {
    throw serverDown(`MariaDB at ${MYSQL_HOST}`, e)
  }
}

const createMysql = async (): Promise<TestDatabase> => {
  const name = uniqueName("my")
  const admin = await mysqlAdmin()
  try {
    await admin.query(`CREATE DATABASE \`${name}\``)
    await admin.query(`USE \`${name}\``)
    for (const sql of ddl.mysql) await admin.query(sql)
  } finally {
    await admin.end()
  }
  return {
    provider: "mysql",
    url: `mysql://root@${MYSQL_HOST}/${name}`,
    drop: async () => {
      const a = await mysqlAdmin()
      await a.query(`DROP DATABASE IF EXISTS \`${name}\``)
      await a.end()
    }
  }
}

export const createDatabase = (provider: Provider): Promise<TestDatabase> =>
  provider === "sqlite" ? createSqlite() : provider === "postgresql" ? createPostgres() : createMysql()
