// The child's side of bench/instructions.ts (one variant in a process of its own, under callgrind): warms up, says
// "ready" on stdout, waits for a line on stdin (instrumentation is switched on meanwhile), runs the measured calls,
// says "done", and waits again before it returns.
import { createInterface } from "node:readline"

export const counted = async (
  run: () => PromiseLike<unknown>,
  warmup: number,
  count: number,
  /** Between the warm-up and the measured calls, outside the count. */
  warmedUp?: () => void
): Promise<void> => {
  const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
  const handshake = async (word: string) => {
    process.stdout.write(`${word}\n`)
    await lines.next()
  }
  for (let i = 0; i < warmup; i++) await run()
  warmedUp?.()
  await handshake("ready")
  for (let i = 0; i < count; i++) await run()
  await handshake("done")
}
