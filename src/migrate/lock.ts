/**
 * The lock Prisma takes while it migrates, taken here too so that flexidb and Prisma never migrate one database at
 * once. PostgreSQL: advisory lock 72707369, as a transaction lock (it conflicts with Prisma's session lock and ends
 * with the transaction), tried again on a Schedule until `timeout` has passed by the Clock — TestClock drives it in
 * tests. MySQL/MariaDB: `GET_LOCK('prisma_migrate', seconds)`, which waits in the server. SQLite: the transaction's
 * own write lock.
 *
 * @internal
 */
import { Data, Duration, Effect, Schedule } from "effect"
import type { Connection } from "./connection.js"
import type { DriverError } from "./model.js"
import { MigrationError } from "./model.js"

/** Prisma's advisory lock key. */
export const ADVISORY_LOCK = 72707369

/** How often a held PostgreSQL lock is tried again. */
export const RETRY_EVERY = Duration.millis(50)

class Busy extends Data.TaggedError("Busy")<{}> {}

const timedOut = (c: Connection, timeout: Duration.Duration) =>
  new MigrationError({
    code: "P1002",
    reason: `Timed out after ${Duration.toMillis(timeout)} ms waiting for the migration lock another deploy holds ` +
      (c.provider === "postgresql" ? `(PostgreSQL advisory lock ${ADVISORY_LOCK}).` : "(MySQL lock 'prisma_migrate').")
  })

/**
 * Takes the lock on `c` (inside its transaction), waiting up to `timeout`; fails with P1002 after. Succeeds with
 * what gives it back (MySQL's is the session's; the others end with the transaction).
 */
export const takeLock = (
  c: Connection,
  timeout: Duration.DurationInput
): Effect.Effect<Effect.Effect<void>, MigrationError | DriverError> => {
  const limit = Duration.decode(timeout)
  if (c.provider === "postgresql") {
    const attempt = Effect.flatMap(
      c.query(`SELECT pg_try_advisory_xact_lock(${ADVISORY_LOCK}) AS ok`),
      (rows) => rows[0]?.ok === true ? Effect.void : Effect.fail(new Busy())
    )
    return attempt.pipe(
      Effect.retry({
        schedule: Schedule.spaced(RETRY_EVERY).pipe(Schedule.upTo(limit)),
        while: (e) => e._tag === "Busy"
      }),
      Effect.catchTag("Busy", () => Effect.fail(timedOut(c, limit))),
      Effect.as(Effect.void)
    )
  }
  if (c.provider === "mysql") {
    return Effect.flatMap(
      c.query(`SELECT GET_LOCK('prisma_migrate', ?) AS ok`, Math.ceil(Duration.toMillis(limit) / 1000)),
      ([row]) =>
        Number(row?.ok) === 1
          ? Effect.succeed(Effect.ignore(c.query(`SELECT RELEASE_LOCK('prisma_migrate') AS ok`)))
          : Effect.fail(timedOut(c, limit))
    )
  }
  return Effect.succeed(Effect.void)
}
