/** Where the CLI writes and what it runs in: the real process, or a test's capture. */
export interface Io {
  readonly cwd: string
  readonly env: Readonly<Record<string, string | undefined>>
  readonly out: (text: string) => void
  readonly err: (text: string) => void
  /** Ends long-running commands (watch); the process's SIGINT does too. */
  readonly signal?: AbortSignal
}

export const processIo = (): Io => ({
  cwd: process.cwd(),
  env: process.env,
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`)
})
