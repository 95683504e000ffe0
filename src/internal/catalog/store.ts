/**
 * The catalog's own tables, in schema `flexidb` of the catalog database, and the statements on them. Created and
 * migrated under an advisory lock, so any number of processes may open the catalog at once.
 */
import type { Kind } from "./servers.js"

/** `moving`: fenced for a move's cutover (reads go on from where the row points; writes are refused there). */
export type State = "active" | "suspended" | "moving"

/** A catalog row: where a tenant lives (a server's name, a location on it), never a URL or a credential. */
export interface Row {
  readonly name: string
  readonly server: string
  readonly kind: Kind
  readonly location: string
  readonly state: State
  readonly epoch: number
  /** After a move: the read-only copy left where the tenant was, until `remove(name, { source: true })`. */
  readonly source?: { readonly server: string; readonly location: string }
}

/** The channel every process LISTENs on; a payload is `{ name, state, epoch }` (`state: "removed"` once removed). */
export const channel = "flexidb_tenants"

/** pg_advisory_xact_lock key for the catalog's DDL: "flexidb" as bytes, kept clear of Prisma's 72707369. */
const ddlLock = 0x666c6578

/** Each version's statements, applied once, in order. */
const versions: ReadonlyArray<ReadonlyArray<string>> = [
  [
    `CREATE TABLE flexidb.tenants (
      name text PRIMARY KEY,
      server text NOT NULL,
      kind text NOT NULL CHECK (kind IN ('database', 'schema', 'file')),
      location text NOT NULL,
      state text NOT NULL CHECK (state IN ('creating', 'active', 'suspended')),
      epoch bigint NOT NULL DEFAULT 1,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`,
    `CREATE INDEX tenants_state_server ON flexidb.tenants (state, server, name)`,
    `CREATE INDEX tenants_server ON flexidb.tenants (server, name)`
  ],
  [
    `ALTER TABLE flexidb.tenants DROP CONSTRAINT tenants_state_check`,
    `ALTER TABLE flexidb.tenants ADD CONSTRAINT tenants_state_check CHECK (state IN ('creating', 'active', 'suspended', 'moving'))`,
    `ALTER TABLE flexidb.tenants ADD COLUMN source_server text, ADD COLUMN source_location text`,
    // One row per move under way: the step reached, so a crashed mover's work is resumed or undone.
    `CREATE TABLE flexidb.moves (
      name text PRIMARY KEY REFERENCES flexidb.tenants (name) ON DELETE CASCADE,
      from_server text NOT NULL,
      from_location text NOT NULL,
      to_server text NOT NULL,
      to_location text NOT NULL,
      step text NOT NULL CHECK (step IN ('copying', 'fenced', 'switched')),
      from_epoch bigint NOT NULL,
      started_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`
  ],
  [
    // App instances following the catalog, each with a heartbeat: a mover waits for the live ones' acknowledgements.
    `CREATE TABLE flexidb.instances (id text PRIMARY KEY, seen_at timestamptz NOT NULL DEFAULT now())`,
    // An instance has drained its writes to a moving tenant (at that epoch) and holds new ones.
    `CREATE TABLE flexidb.move_acks (
      name text NOT NULL,
      epoch bigint NOT NULL,
      instance text NOT NULL,
      acked_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (name, epoch, instance)
    )`
  ]
]

/** How often an instance renews its heartbeat; one not seen for three of these is taken for dead. */
export const heartbeatMs = 1_000

export interface Session {
  readonly query: (sql: string, params?: ReadonlyArray<unknown>) => Promise<{ rows: Array<Record<string, unknown>> }>
}

/** Creates or migrates the catalog's tables: one process does it, the others wait on the lock and find it done. */
export const migrate = async (s: Session): Promise<void> => {
  await s.query("BEGIN")
  try {
    await s.query(`SELECT pg_advisory_xact_lock(${ddlLock})`)
    await s.query(`CREATE SCHEMA IF NOT EXISTS flexidb`)
    await s.query(`CREATE TABLE IF NOT EXISTS flexidb.catalog_version (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`)
    const { rows } = await s.query(`SELECT coalesce(max(version), 0) AS v FROM flexidb.catalog_version`)
    for (let v = Number(rows[0]!.v); v < versions.length; v++) {
      for (const sql of versions[v]!) await s.query(sql)
      await s.query(`INSERT INTO flexidb.catalog_version (version) VALUES ($1)`, [v + 1])
    }
    await s.query("COMMIT")
  } catch (e) {
    await s.query("ROLLBACK").catch(() => undefined)
    throw e
  }
}

export const columns = `name, server, kind, location, state, epoch, source_server, source_location`

export const toRow = (r: Record<string, unknown>): Row => {
  const row: Row = {
    name: String(r.name),
    server: String(r.server),
    kind: r.kind as Kind,
    location: String(r.location),
    state: r.state as State,
    epoch: Number(r.epoch)
  }
  return r.source_server == null ? row : { ...row, source: { server: String(r.source_server), location: String(r.source_location) } }
}

export const notify = (s: Session, name: string, state: State | "removed", epoch: number) =>
  s.query(`SELECT pg_notify($1, $2)`, [channel, JSON.stringify({ name, state, epoch })])

/**
 * Updates the tenant's row and announces its new state in one statement (one round trip, atomic on its own or in the
 * caller's transaction): the rows updated, each announced as `notify` would.
 */
export const updateAndNotify = (s: Session, set: string, where: string, params: ReadonlyArray<unknown>) =>
  s.query(
    `WITH u AS (UPDATE flexidb.tenants SET ${set} WHERE ${where} RETURNING ${columns})
     SELECT u.*, pg_notify('${channel}', json_build_object('name', u.name, 'state', u.state, 'epoch', u.epoch)::text) AS notified FROM u`,
    params
  )
