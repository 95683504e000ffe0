// Process hygiene, in child processes: nothing keeps the process alive after disconnect(), and signals end it.
import { spawn } from "node:child_process"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { TestDatabase } from "./support/databases.js"
import { createDatabase } from "./support/databases.js"

let db: TestDatabase
beforeAll(async () => {
  db = await createDatabase("sqlite")
})
afterAll(() => db.drop())

const run = (mode: string, signal?: NodeJS.Signals, script = "child.ts") =>
  new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((resolve, reject) => {
    const args = script === "child.ts" ? [mode, db.url] : [db.url]
    const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "support", script), ...args], {
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    let err = ""
    child.stdout.on("data", (d) => {
      out += d
      if (signal !== undefined && out.includes("ready\n")) setTimeout(() => child.kill(signal), 300)
    })
    child.stderr.on("data", (d) => (err += d))
    const guard = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`child did not exit by itself; stdout: ${out}; stderr: ${err}`))
    }, 20_000)
    child.on("exit", (code, sig) => {
      clearTimeout(guard)
      resolve({ code, signal: sig, out })
    })
  })

describe("process hygiene", () => {
  it("exits by itself after disconnect(), with health checks and reconnect running", async () => {
    const r = await run("disconnect")
    expect(r.code).toBe(0)
    expect(r.out.split("\n").filter(Boolean).sort()).toEqual(["disconnected:app", "disconnected:down", "ready"])
  })

  it.each(["SIGINT", "SIGTERM"] as const)("%s disconnects every database, then ends the process by that signal", async (sig) => {
    const r = await run("wait", sig)
    expect(r.signal).toBe(sig)
    expect(r.out).toContain("disconnected:app")
    expect(r.out).toContain("disconnected:down")
  })

  it("FlexiDBService.layer honours gracefulShutdown: SIGTERM disconnects the registry, then ends the process", async () => {
    const r = await run("layer", "SIGTERM", "layer-child.ts")
    expect(r.signal).toBe("SIGTERM")
    expect(r.out).toContain("disconnected:app")
  })

  it("leaves the process to an app that handles the signal itself", async () => {
    const r = await run("own-handler", "SIGINT")
    expect(r.code).toBe(0)
    expect(r.out).toContain("app-handler")
    expect(r.out).toContain("disconnected:app")
    expect(r.out).toContain("app-exits:[]")
  })
})
