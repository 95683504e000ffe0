/**
 * What the catalog does on a tenant's server: build the tenant, close the door on it (the fence), open it again, drop
 * it. The fence is the engine's, so a process that missed every notification still cannot write where it should not.
 *
 * - PostgreSQL database: `ALLOW_CONNECTIONS false` (superusers included) and its sessions terminated.
 * - PostgreSQL schema: the sessions holding locks in it terminated, then renamed aside (`<name>__parked`): Prisma
 *   names its tables with the schema, so every later statement finds no table.
 * - MariaDB: its sessions killed and its tables moved (`RENAME TABLE`, atomic) into `<name>__parked`.
 * - SQLite: the file (with its -wal and -shm) renamed aside; a connection opened before writes into the parked file,
 *   which `resume` puts back, so nothing is lost.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as Effect from "effect/Effect"
import { randomUUID } from "node:crypto"
import { constants as fsConstants } from "node:fs"
import { access, copyFile, rename, rm } from "node:fs/promises"
import { isAbsolute, join } from "node:path"
import { DuplicateDatabaseError, InvalidArgumentError } from "../../Errors.js"
import { deployMigrations } from "../../migrate.js"
import { ddl } from "../../migrate/dialect.js"
import { checksum } from "../../migrate/ledger.js"
import { readFolder } from "../../migrate/loader.js"
import type { Kind, Server } from "./servers.js"
import { folderOf, parkedName, tenantUrl, withDatabase } from "./servers.js"

/** The least a pooled driver connection offers: pg's Pool and mariadb's Pool both fit. */
export interface Admin {
  readonly query: (sql: string, params?: ReadonlyArray<unknown>) => Promise<ReadonlyArray<Record<string, unknown>>>
  readonly end: () => Promise<void>
}

export interface Target {
  readonly name: string
  readonly server: Server
  readonly kind: Kind
  readonly location: string
}

const pgId = (id: string) => `"${id.replace(/"/g, '""')}"`
const myId = (id: string) => `\`${id.replace(/`/g, "``")}\``

const code = (e: unknown) => String((e as { code?: unknown; errno?: unknown })?.code ?? "")
const errno = (e: unknown) => Number((e as { errno?: unknown })?.errno)

const exists = (file: string) => access(file, fsConstants.F_OK).then(() => true, () => false)
const sqliteFiles = (file: string) => [file, `${file}-wal`, `${file}-shm`]

/** Waits `ms` on the caller's Clock (the catalog passes `Effect.sleep` run in its own runtime). */
export type Pause = (ms: number) => Promise<void>

/** Waits until none of `query`'s sessions is left (a terminated backend takes a moment to exit), for at most 2 s. */
const drained = async (admin: Admin, sql: string, params: ReadonlyArray<unknown>, pause: Pause) => {
  for (let i = 0; i < 200; i++) {
    const rows = await admin.query(sql, params)
    if (Number(rows[0]?.n ?? 0) === 0) return
    await pause(10)
  }
}

const duplicate = (t: Target) => new DuplicateDatabaseError({ database: t.name })

/**
 * A new schema tenant built as the migrator would build it — its tables, then `_prisma_migrations` with each migration
 * recorded applied (Prisma's checksum) — as one script for one round trip; undefined (the migrator builds it) when a
 * migration has no migration.sql or the folder is for another provider. A schema nobody else can know yet needs no lock.
 */
const schemaScript = async (location: string, migrations: string): Promise<string | undefined> => {
  const folder = await Effect.runPromise(Effect.provide(readFolder(migrations), NodeFileSystem.layer))
  const locked = folder.lockProvider
  if (locked !== undefined && locked !== "postgresql" && locked !== "postgres") return undefined
  if (folder.migrations.some((m) => m.script === undefined)) return undefined
  const text = (s: string) => `'${s.replace(/'/g, "''")}'`
  return [
    `CREATE SCHEMA ${pgId(location)}`,
    `SELECT set_config('search_path', ${text(pgId(location))}, true)`,
    ddl.postgresql,
    ...folder.migrations.flatMap((m) => [
      m.script!,
      `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, finished_at, applied_steps_count) ` +
      `VALUES (${text(randomUUID())}, ${text(checksum(m.script!))}, ${text(m.name)}, clock_timestamp(), clock_timestamp(), 1)`
    ])
  ].join(";\n")
}

/** Builds the tenant; on failure whatever was made is dropped again. */
export const provision = async (
  admin: Admin | undefined,
  t: Target,
  template: string | undefined,
  migrations: string | undefined,
  pause: Pause
): Promise<void> => {
  const url = tenantUrl(t.server, t.kind, t.location)
  const migrate = async (options: { url: string; schema?: string }) => {
    if (migrations !== undefined) await deployMigrations({ ...options, migrations })
  }
  if (t.server.engine === "sqlite") {
    const file = join(folderOf(t.server), t.location)
    if (await exists(parkedFile(file))) throw duplicate(t)
    try {
      if (template !== undefined) {
        const from = isAbsolute(template) ? template : join(folderOf(t.server), template)
        await copyFile(from, file, fsConstants.COPYFILE_EXCL)
      } else {
        if (await exists(file)) throw duplicate(t)
        await migrate({ url })
      }
    } catch (e) {
      if (code(e) === "EEXIST") throw duplicate(t)
      if (!(e instanceof DuplicateDatabaseError)) await Promise.all(sqliteFiles(file).map((f) => rm(f, { force: true })))
      throw e
    }
    return
  }
  if (template !== undefined && !(t.server.engine === "postgresql" && t.kind === "database")) {
    throw new InvalidArgumentError({
      path: "template",
      reason: `a template is for PostgreSQL databases and SQLite files; a ${t.server.engine} ${t.kind} tenant is built by the migrations`
    })
  }
  const a = admin!
  if (t.server.engine === "postgresql" && t.kind === "database") {
    const sql = `CREATE DATABASE ${pgId(t.location)}${template === undefined ? "" : ` TEMPLATE ${pgId(template)}`}`
    // A template must have no other session while it is copied: a deploy or a probe may hold one for a moment.
    for (let attempt = 0;; attempt++) {
      try {
        await a.query(sql)
        break
      } catch (e) {
        if (code(e) === "42P04") throw duplicate(t)
        if (code(e) !== "55006" || attempt >= 50) throw e
        await pause(20)
      }
    }
    // A copy of the template is as current as the template: kept migrated by `flexidb migrate deploy`.
    if (template !== undefined) return
    try {
      await migrate({ url })
    } catch (e) {
      await a.query(`DROP DATABASE IF EXISTS ${pgId(t.location)} WITH (FORCE)`).catch(() => undefined)
      throw e
    }
    return
  }
  if (t.server.engine === "postgresql") {
    const built = migrations === undefined ? undefined : await schemaScript(t.location, migrations)
    try {
      // The whole schema in one round trip on the admin's warm connection: several statements in one simple query
      // run as one transaction, so a failure leaves nothing behind.
      await a.query(built ?? `CREATE SCHEMA ${pgId(t.location)}`)
    } catch (e) {
      if (code(e) === "42P06") throw duplicate(t)
      throw e
    }
    if (built !== undefined) return
    try {
      await migrate({ url: t.server.base, schema: t.location })
    } catch (e) {
      await a.query(`DROP SCHEMA IF EXISTS ${pgId(t.location)} CASCADE`).catch(() => undefined)
      throw e
    }
    return
  }
  try {
    await a.query(`CREATE DATABASE ${myId(t.location)}`)
  } catch (e) {
    if (errno(e) === 1007) throw duplicate(t)
    throw e
  }
  try {
    await migrate({ url: withDatabase(t.server.base, t.location) })
  } catch (e) {
    await a.query(`DROP DATABASE IF EXISTS ${myId(t.location)}`).catch(() => undefined)
    throw e
  }
}

const parkedFile = (file: string) => `${file}.parked`

/** Closes the door: once this returns, no session can reach the tenant's data where it was. Idempotent. */
export const fence = async (admin: Admin | undefined, t: Target, pause: Pause): Promise<void> => {
  if (t.server.engine === "sqlite") {
    const file = join(folderOf(t.server), t.location)
    for (const f of sqliteFiles(file)) {
      await rename(f, parkedFile(f)).catch((e) => {
        if (code(e) !== "ENOENT") throw e
      })
    }
    return
  }
  const a = admin!
  if (t.server.engine === "postgresql" && t.kind === "database") {
    await a.query(`ALTER DATABASE ${pgId(t.location)} ALLOW_CONNECTIONS false`)
    const sessions = `FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`
    await a.query(`SELECT pg_terminate_backend(pid) ${sessions}`, [t.location])
    await drained(a, `SELECT count(*) AS n ${sessions}`, [t.location], pause)
    return
  }
  if (t.server.engine === "postgresql") {
    const found = await a.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [t.location])
    if (found.length === 0) return // parked already
    const holders = `FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
      WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) AND l.pid <> pg_backend_pid()`
    await a.query(`SELECT pg_terminate_backend(l.pid) ${holders}`, [t.location])
    await drained(a, `SELECT count(*) AS n ${holders}`, [t.location], pause)
    await a.query(`ALTER SCHEMA ${pgId(t.location)} RENAME TO ${pgId(parkedName(t.location))}`)
    return
  }
  const killSessions = async () => {
    const ids = await a.query(
      `SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()`,
      [t.location]
    )
    for (const row of ids) await a.query(`KILL ${Number(row.id)}`).catch(() => undefined)
  }
  await killSessions()
  await a.query(`CREATE DATABASE IF NOT EXISTS ${myId(parkedName(t.location))}`)
  await moveTables(a, t.location, parkedName(t.location))
  await killSessions()
}

const moveTables = async (a: Admin, from: string, to: string) => {
  const tables = await a.query(
    `SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ?`,
    [from]
  )
  if (tables.length === 0) return
  await a.query(
    `RENAME TABLE ${tables.map((r) => `${myId(from)}.${myId(String(r.t))} TO ${myId(to)}.${myId(String(r.t))}`).join(", ")}`
  )
}

/** Opens the door again. Idempotent. */
export const unfence = async (admin: Admin | undefined, t: Target): Promise<void> => {
  if (t.server.engine === "sqlite") {
    const file = join(folderOf(t.server), t.location)
    for (const f of sqliteFiles(file)) {
      await rename(parkedFile(f), f).catch((e) => {
        if (code(e) !== "ENOENT") throw e
      })
    }
    return
  }
  const a = admin!
  if (t.server.engine === "postgresql" && t.kind === "database") {
    await a.query(`ALTER DATABASE ${pgId(t.location)} ALLOW_CONNECTIONS true`)
    return
  }
  if (t.server.engine === "postgresql") {
    const parked = await a.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [parkedName(t.location)])
    if (parked.length > 0) await a.query(`ALTER SCHEMA ${pgId(parkedName(t.location))} RENAME TO ${pgId(t.location)}`)
    return
  }
  const parked = await a.query(`SELECT 1 FROM information_schema.schemata WHERE schema_name = ?`, [parkedName(t.location)])
  if (parked.length === 0) return
  await moveTables(a, parkedName(t.location), t.location)
  await a.query(`DROP DATABASE ${myId(parkedName(t.location))}`)
}

/** Drops the tenant's data, fenced or not. */
export const drop = async (admin: Admin | undefined, t: Target): Promise<void> => {
  if (t.server.engine === "sqlite") {
    const file = join(folderOf(t.server), t.location)
    await Promise.all(sqliteFiles(file).flatMap((f) => [f, parkedFile(f)]).map((f) => rm(f, { force: true })))
    return
  }
  const a = admin!
  if (t.server.engine === "postgresql" && t.kind === "database") {
    await a.query(`DROP DATABASE IF EXISTS ${pgId(t.location)} WITH (FORCE)`)
    return
  }
  if (t.server.engine === "postgresql") {
    await a.query(`DROP SCHEMA IF EXISTS ${pgId(t.location)} CASCADE`)
    await a.query(`DROP SCHEMA IF EXISTS ${pgId(parkedName(t.location))} CASCADE`)
    return
  }
  await a.query(`DROP DATABASE IF EXISTS ${myId(t.location)}`)
  await a.query(`DROP DATABASE IF EXISTS ${myId(parkedName(t.location))}`)
}
