/**
 * Whether a failed operation may have taken effect: `isOutcomeUnknown(error)`.
 *
 * @since 0.2.0
 */
import { outcomeUnknown } from "./internal/classify.js"

/**
 * Whether a failed operation may have taken effect. Every error an operation through flexidb rejects with carries
 * `outcomeUnknown`: true when it failed after it may have reached the server (an operation timeout, a connection
 * lost mid-query, an error flexidb cannot place), so a write may have been committed; false when it provably did not
 * run (an open circuit, a refused connection, no connection from the pool) or the database refused it (a unique
 * violation). A batch's says whether any of its failures may have taken effect. Check it before retrying a write that
 * is not idempotent. The flag is about the statement that failed: a function that ran several queries (a `batch()`
 * operation, `Database.query`) may have committed the ones before it.
 *
 * @example
 * try {
 *   await db.get("orders").order.create({ data })
 * } catch (error) {
 *   if (isOutcomeUnknown(error)) await reconcile(data.key) // it may be there
 *   else throw error
 * }
 *
 * @since 0.2.0
 */
export const isOutcomeUnknown = (error: unknown): boolean => outcomeUnknown(error)
