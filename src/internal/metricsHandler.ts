/**
 * `/metrics` for Prometheus: a `(req, res)` handler that node:http, Express and Fastify all call, and the server
 * `prometheus: { port }` starts on its own.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http"
import { createServer } from "node:http"
import { InvalidArgumentError } from "../Errors.js"
import type { MetricsHandler } from "../Options.js"
import { errorSummary } from "../Redact.js"

/** Prometheus' text exposition format, version 0.0.4. */
export const contentType = "text/plain; version=0.0.4; charset=utf-8"

/** A Fastify reply: not a ServerResponse, but it has `header` and `send` (and the ServerResponse as `raw`). */
interface Reply {
  readonly raw: ServerResponse
  code(status: number): Reply
  header(name: string, value: string): Reply
  send(body: string): unknown
}
const isReply = (res: unknown): res is Reply =>
  typeof (res as Reply | null)?.send === "function" && typeof (res as Reply).header === "function" &&
  typeof (res as Reply).raw === "object"

const respond = (res: ServerResponse | Reply, status: number, type: string, body: string) => {
  if (isReply(res)) return res.code(status).header("content-type", type).send(body)
  res.statusCode = status
  res.setHeader("content-type", type)
  res.end(body)
}

/**
 * The handler over `metrics` (a facade's `metrics()`, which refuses after `disconnect()`). It answers every request
 * it is given (route it to `/metrics` yourself): 200 with the text, or 503 with a one-line reason (no credential:
 * flexidb's errors are redacted).
 */
export const handler = (metrics: () => Promise<string>): MetricsHandler => (_req, res) =>
  metrics().then(
    (text) => {
      respond(res as ServerResponse | Reply, 200, contentType, text)
    },
    (error: unknown) => {
      respond(res as ServerResponse | Reply, 503, "text/plain; charset=utf-8", `${errorSummary(error)}\n`)
    }
  )

/** The handler of a registry whose `metrics` may be missing (no `prometheus` option): 503 saying so. */
export const ofRegistry = (metrics: (() => Promise<string>) | undefined): MetricsHandler =>
  handler(metrics ?? (() => Promise.reject(new InvalidArgumentError({ path: "prometheus", reason: missing }))))

export const missing = "metrics need the option: { prometheus: true }"

/**
 * flexidb's own server: `/metrics` through `handler`, 404 elsewhere. Resolves once it listens; rejects with the
 * listen error (EADDRINUSE…). `close` ends it and every connection it holds.
 */
export const serve = (
  metrics: () => Promise<string>,
  port: number,
  host: string
): Promise<{ readonly port: number; readonly close: () => Promise<void> }> => {
  const handle = handler(metrics)
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.method === "GET" && (req.url === "/metrics" || req.url?.startsWith("/metrics?"))) return void handle(req, res)
    respond(res, 404, "text/plain; charset=utf-8", "flexidb serves /metrics only\n")
  })
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(port, host, () => {
      server.off("error", reject)
      // Prometheus keeps its scrape connection open: it must not hold the process up once flexidb is done.
      server.unref()
      const address = server.address()
      resolve({
        port: typeof address === "object" && address !== null ? address.port : port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done())
            server.closeAllConnections()
          })
      })
    })
  })
}
