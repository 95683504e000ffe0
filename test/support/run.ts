// Child processes for tests, without blocking the test's worker. A synchronous spawn that outlasts vitest's
// 60-second RPC timeout (tsc, a build or a benchmark on a loaded 2-core machine) fails the whole run with
// "[vitest-worker]: Timeout calling onTaskUpdate", whatever the test itself found.
import { spawn } from "node:child_process"

export interface Ran {
  /** The exit code, or null when a signal ended it. */
  readonly status: number | null
  readonly stdout: string
  readonly stderr: string
}

export interface RunOptions {
  readonly cwd?: string
  readonly env?: NodeJS.ProcessEnv
  /** Ends the process (SIGKILL) after this many milliseconds. */
  readonly timeout?: number
}

/** Runs `command` to its end and resolves its exit code and output; never rejects for a non-zero exit. */
export const run = (command: string, args: ReadonlyArray<string>, options: RunOptions = {}): Promise<Ran> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    const timer = options.timeout === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), options.timeout)
    child.once("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.once("close", (status) => {
      clearTimeout(timer)
      resolve({ status, stdout, stderr })
    })
  })

/** As `run`, but rejects (with its stderr) when the command fails, as `execFileSync` throws; resolves its stdout. */
export const runOk = async (command: string, args: ReadonlyArray<string>, options: RunOptions = {}): Promise<string> => {
  const ran = await run(command, args, options)
  if (ran.status !== 0) {
    throw Object.assign(new Error(`${command} ${args.join(" ")} exited with ${ran.status}:\n${ran.stderr}`), ran)
  }
  return ran.stdout
}
