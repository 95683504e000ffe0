// A real Prometheus (Debian's `prometheus` package), started on a free port in a temp folder, scraping the given
// targets every second; removed by `stop`.
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freePort } from "./metrics.js"

export const PROMETHEUS = process.env.PROMETHEUS_BINARY ?? "/usr/bin/prometheus"

export interface Prometheus {
  readonly url: string
  /** A PromQL instant query: its result vector (or scalar as one sample). Throws on a query error. */
  readonly query: (promql: string) => Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>
  /** Polls `query(promql)` until `done(result)`, for at most `seconds` (waiting for scrapes, which are real I/O). */
  readonly until: (
    promql: string,
    done: (result: Array<{ metric: Record<string, string>; value: [number, string] }>) => boolean,
    seconds?: number
  ) => Promise<Array<{ metric: Record<string, string>; value: [number, string] }>>
  readonly stop: () => Promise<void>
}

/** `targets`: host:port pairs serving /metrics. */
export const startPrometheus = async (targets: ReadonlyArray<string>): Promise<Prometheus> => {
  const dir = mkdtempSync(join(tmpdir(), "flexidb-prometheus-"))
  const port = await freePort()
  const config = join(dir, "prometheus.yml")
  writeFileSync(
    config,
    [
      "global:",
      "  scrape_interval: 1s",
      "  evaluation_interval: 1s",
      "scrape_configs:",
      "  - job_name: flexidb",
      "    scrape_interval: 1s",
      "    static_configs:",
      `      - targets: [${targets.map((t) => `"${t}"`).join(", ")}]`,
      ""
    ].join("\n")
  )
  const child = spawn(PROMETHEUS, [
    `--config.file=${config}`,
    `--storage.tsdb.path=${join(dir, "data")}`,
    `--web.listen-address=127.0.0.1:${port}`,
    "--log.level=warn"
  ], { stdio: ["ignore", "ignore", "pipe"] })
  let log = ""
  child.stderr.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-4000)))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const url = `http://127.0.0.1:${port}`
  const stop = async () => {
    child.kill("SIGTERM")
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))])
    if (child.exitCode === null) child.kill("SIGKILL")
    rmSync(dir, { recursive: true, force: true })
  }
  const query: Prometheus["query"] = async (promql) => {
    const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`)
    const body = await response.json() as { status: string; error?: string; data: { resultType: string; result: any } }
    if (body.status !== "success") throw new Error(`${promql}: ${body.error}`)
    return body.data.resultType === "scalar" ? [{ metric: {}, value: body.data.result }] : body.data.result
  }
  const until: Prometheus["until"] = async (promql, done, seconds = 30) => {
    let last: Awaited<ReturnType<Prometheus["query"]>> = []
    for (let i = 0; i < seconds * 4; i++) {
      last = await query(promql)
      if (done(last)) return last
      await new Promise((r) => setTimeout(r, 250))
    }
    throw new Error(`${promql} did not get there in ${seconds} s: ${JSON.stringify(last).slice(0, 500)}`)
  }
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`prometheus exited: ${log}`)
      const ready = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false)
      if (ready) break
      if (i > 120) throw new Error(`prometheus did not become ready: ${log}`)
      await new Promise((r) => setTimeout(r, 250))
    }
  } catch (error) {
    await stop()
    throw error
  }
  return { url, query, until, stop }
}
