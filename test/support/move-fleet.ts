// App instances (child processes running move-app.ts) writing to one tenant: started, stopped, and what each said.
import { spawn } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import { join } from "node:path"

export interface Instance {
  readonly proc: ChildProcess
  /** Keys the server acknowledged, with how long each write took (ms). */
  readonly acked: Array<{ readonly key: string; readonly ms: number; readonly end: number }>
  /** Keys whose write failed, with the error's tag. */
  readonly failed: Array<{ readonly key: string; readonly tag: string }>
  readonly ready: Promise<void>
  readonly exited: Promise<void>
}

export const startApps = (
  count: number,
  catalogUrl: string,
  servers: Record<string, string>,
  tenant: string,
  engine: "postgresql" | "sqlite" | "mysql" = "postgresql"
): Array<Instance> =>
  Array.from({ length: count }, (_, i) => {
    const proc = spawn(process.execPath, [
      "--import",
      "tsx",
      join(import.meta.dirname, "move-app.ts"),
      catalogUrl,
      JSON.stringify(servers),
      tenant,
      `app${i}`,
      engine
    ], { stdio: ["ignore", "pipe", "inherit"] })
    const acked: Instance["acked"] = []
    const failed: Instance["failed"] = []
    let buffer = ""
    let isReady: () => void
    const ready = new Promise<void>((r) => (isReady = r))
    proc.stdout!.on("data", (d: Buffer) => {
      buffer += d.toString()
      const lines = buffer.split("\n")
      buffer = lines.pop()!
      for (const l of lines) {
        const [what, key, rest, end] = l.split(" ")
        if (what === "ready") isReady()
        else if (what === "ack") acked.push({ key: key!, ms: Number(rest), end: Number(end) })
        else if (what === "fail") failed.push({ key: key!, tag: rest! })
      }
    })
    const exited = new Promise<void>((r) => proc.on("exit", () => r()))
    return { proc, acked, failed, ready, exited }
  })

export const stopApps = async (apps: ReadonlyArray<Instance>) => {
  for (const a of apps) a.proc.kill("SIGTERM")
  await Promise.all(apps.map((a) => a.exited))
}

/** Until every app has had `n` more writes acknowledged than now. */
export const moreAcks = async (apps: ReadonlyArray<Instance>, n: number, ms = 30_000) => {
  const base = apps.map((a) => a.acked.length)
  const end = Date.now() + ms
  while (apps.some((a, i) => a.acked.length < base[i]! + n)) {
    if (Date.now() > end) throw new Error(`the apps did not write ${n} more rows within ${ms} ms`)
    await new Promise((r) => setTimeout(r, 10))
  }
}
