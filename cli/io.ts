/** Where the CLI writes and what it runs in: the real process, or a test's capture. */
import { Context, Effect } from "effect"

export interface Io {
  readonly cwd: string
  readonly env: Readonly<Record<string, string | undefined>>
  readonly out: (text: string) => void
  readonly err: (text: string) => void
  /**
   * Which streams are terminals that may show colour. Text to any other stream, or to any stream while NO_COLOR
   * is set, carries no ANSI escapes. Absent: neither (a test's capture, a pipe).
   */
  readonly color?: { readonly out: boolean; readonly err: boolean }
  /**
   * Present when stderr is a terminal: `update` redraws one live status line in place (no newline), `clear` erases
   * it so other output can follow. Without it, progress is written as plain lines with `err`.
   */
  readonly live?: { readonly update: (line: string) => void; readonly clear: () => void }
  /** The user asks to stop (Ctrl+C in the real process): watch ends cleanly, other commands end their Prisma runs. */
  readonly signal?: AbortSignal
}

/** The Io a command runs in, as a service. */
export const Io = Context.GenericTag<Io>("flexidb/cli/Io")

/** Completes when the user asks to stop; never, when the Io has no signal. */
export const stopRequested: Effect.Effect<void, never, Io> = Effect.flatMap(Io, ({ signal }) =>
  signal === undefined
    ? Effect.never
    : Effect.async<void>((resume) => {
      const stop = () => resume(Effect.void)
      if (signal.aborted) return stop()
      signal.addEventListener("abort", stop, { once: true })
      return Effect.sync(() => signal.removeEventListener("abort", stop))
    }))

export const processIo = (): Io => {
  // @effect/platform starts Prisma in its own process group, so the terminal's Ctrl+C reaches flexidb alone: it
  // becomes a stop request that ends those processes. `once`: a second Ctrl+C ends flexidb at once.
  const stop = new AbortController()
  const onSignal = () => stop.abort()
  process.once("SIGINT", onSignal)
  process.once("SIGTERM", onSignal)
  return {
    cwd: process.cwd(),
    env: process.env,
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
    color: { out: process.stdout.isTTY === true, err: process.stderr.isTTY === true },
    ...(process.stderr.isTTY && {
      live: {
        // Cut to the terminal's width: a line that wraps could not be redrawn in place.
        update: (line: string) => process.stderr.write(`\r\x1b[2K${line.slice(0, Math.max(20, (process.stderr.columns ?? 80) - 1))}`),
        clear: () => process.stderr.write("\r\x1b[2K")
      }
    }),
    signal: stop.signal
  }
}
