/** The CLI's one expected failure: what went wrong for the user, and the exit code it means. */
import { Data } from "effect"

/**
 * A command failed in a way the user can act on. `run` prints `flexidb: <message>` (unless `reported`: the command
 * has already said so, in its summary) and exits with `exitCode`: 1 by default, Prisma's own code when one
 * database ran, 130 when the user stopped the command.
 */
export class CliError extends Data.TaggedError("CliError")<{
  readonly message: string
  readonly exitCode: number
  readonly reported: boolean
  readonly cause?: unknown
}> {
  constructor(message: string, options: { readonly exitCode?: number; readonly reported?: boolean; readonly cause?: unknown } = {}) {
    super({
      message,
      exitCode: options.exitCode ?? 1,
      reported: options.reported ?? false,
      ...(options.cause !== undefined && { cause: options.cause })
    })
  }
}
