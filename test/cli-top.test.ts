// `flexidb top` against a real app serving /metrics (a child process): `--once --json` and `--once` by running the
// command, and the live view in a real terminal (tmux: start, read the screen, press a sort key, quit).
import type { ChildProcess } from "node:child_process"
import { execFileSync, spawn, spawnSync } from "node:child_process"
import { once } from "node:events"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { freePort } from "./support/metrics.js"

const root = fileURLToPath(new URL("..", import.meta.url))
const flexidb = ["--import", "tsx", "cli/bin.ts"]
let app: ChildProcess
let url: string

beforeAll(async () => {
  const port = await freePort()
  url = `http://127.0.0.1:${port}/metrics`
  app = spawn(process.execPath, ["--import", "tsx", "test/support/metrics-app.ts", String(port)], { cwd: root, stdio: ["ignore", "pipe", "inherit"] })
  let out = ""
  app.stdout!.on("data", (d: Buffer) => (out += d.toString()))
  for (let i = 0; i < 600 && !out.includes("ready"); i++) {
    if (app.exitCode !== null) throw new Error(`the app exited: ${out}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  if (!out.includes("ready")) throw new Error("the app did not start")
}, 60_000)
afterAll(async () => {
  if (app?.exitCode === null) {
    app.kill("SIGTERM")
    await once(app, "exit")
  }
})

describe("flexidb top, once", () => {
  it("--once --json prints one JSON document with every member's numbers and the tenant cache", () => {
    // --url twice: the same app seen as two instances, one entry each.
    const run = spawnSync(process.execPath, [...flexidb, "top", "--once", "--json", "--url", url, "--url", url], { cwd: root, encoding: "utf8" })
    expect(run.status, run.stderr).toBe(0)
    const { instances } = JSON.parse(run.stdout) as { instances: Array<any> }
    expect(instances.map((i) => i.url)).toEqual([url, url])
    expect(instances[1].members.map((m: any) => m.database).sort()).toEqual(instances[0].members.map((m: any) => m.database).sort())
    const [instance] = instances
    expect(instance.error).toBeNull()
    const byName = Object.fromEntries(instance.members.map((m: any) => [m.database, m]))
    expect(byName.main).toMatchObject({ role: "write", member: 0, healthy: 1, circuit: "closed", errors: 0 })
    expect(byName.main.opsPerSecond).toBeGreaterThan(0)
    expect(byName.main.p99).toBeGreaterThan(0)
    expect(byName.main.p99).toBeGreaterThanOrEqual(byName.main.p50)
    expect(byName.down).toMatchObject({ healthy: 0, circuit: "open" })
    expect(byName.down.rejected).toBeGreaterThan(0)
    // Five tenants in a cache of three: the cache is full and evicting.
    expect(instance.tenants).toMatchObject({ resident: 3 })
    expect(instance.tenants.evictions).toBeGreaterThan(0)
    expect(instance.tenants.misses).toBeGreaterThan(0)
  }, 60_000)

  it("prints a plain table when not a terminal, and fails saying which instance did not answer", async () => {
    const run = spawnSync(process.execPath, [...flexidb, "top", "--url", url], { cwd: root, encoding: "utf8" })
    expect(run.status, run.stderr).toBe(0)
    expect(run.stdout).not.toContain("\x1b[")
    expect(run.stdout).toMatch(/│ main\s+│ write 0 │ up\s+│ closed/)
    expect(run.stdout).toMatch(/│ down\s+│ write 0 │ DOWN\s+│ open/)
    expect(run.stdout).toMatch(/tenants: 3 resident/)
    const nobody = `http://127.0.0.1:${await freePort()}/metrics`
    const failed = spawnSync(process.execPath, [...flexidb, "top", "--once", "--url", nobody], { cwd: root, encoding: "utf8" })
    expect(failed.status).toBe(1)
    expect(failed.stderr).toContain(`no instance answered: ${nobody} (ECONNREFUSED)`)
  }, 60_000)
})

describe("flexidb top in a terminal (tmux)", () => {
  it("redraws a live view, sorts by the key pressed, and quits on q", async () => {
    const socket = `flexidb-top-${process.pid}`
    const tmux = (...args: Array<string>) => execFileSync("tmux", ["-L", socket, ...args], { encoding: "utf8" })
    const screen = () => tmux("capture-pane", "-p", "-t", "top")
    const waitFor = async (what: (text: string) => boolean) => {
      for (let i = 0; i < 200; i++) {
        const text = screen()
        if (what(text)) return text
        await new Promise((r) => setTimeout(r, 100))
      }
      throw new Error(`not on screen:\n${screen()}`)
    }
    const command = [process.execPath, ...flexidb, "top", "--url", url].join(" ")
    tmux("new-session", "-d", "-s", "top", "-x", "150", "-y", "30", "-c", root, command)
    try {
      const first = await waitFor((t) => /sorted by ops\/s/.test(t) && /│ main /.test(t) && /tenants: \d+ resident/.test(t))
      expect(first).toMatch(/│ down\s+│ write 0 │ DOWN\s+│ open/)
      // Rates need a second scrape: numbers appear in the ops/s column.
      await waitFor((t) => /│ main\s+│ write 0 │ up\s+│ closed\s+│\s+\d+(\.\d)?\s+│/.test(t))
      tmux("send-keys", "-t", "top", "n")
      const byName = await waitFor((t) => /sorted by name/.test(t))
      const rows = byName.split("\n").filter((l) => /^│ \S/.test(l) && !l.startsWith("│ database")).map((l) => l.split("│")[1]!.trim())
      expect(rows.slice(0, 2)).toEqual(["down", "main"])
      tmux("send-keys", "-t", "top", "q")
      for (let i = 0; i < 100; i++) {
        if (spawnSync("tmux", ["-L", socket, "has-session", "-t", "top"]).status !== 0) break
        await new Promise((r) => setTimeout(r, 100))
      }
      expect(spawnSync("tmux", ["-L", socket, "has-session", "-t", "top"]).status).not.toBe(0)
    } finally {
      spawnSync("tmux", ["-L", socket, "kill-server"])
    }
  }, 60_000)
})
