// Reading flexidb's metrics as Prometheus would: over a real HTTP request, parsed line by line.
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** The samples of a text exposition (comments skipped). */
export const parse = (text: string): Array<Sample> =>
  text.split("\n").filter((line) => line.length > 0 && !line.startsWith("#")).map((line) => {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line)
    if (m === null) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, "$1")
    return { name: m[1]!, labels, value: m[3] === "+Inf" ? Infinity : Number(m[3]) }
  })

/** Serves `handler` on a free port for the length of `f`. */
export const serving = async <A>(
  handler: (req: unknown, res: unknown) => Promise<void>,
  f: (url: string) => Promise<A>
): Promise<A> => {
  const server = createServer((req, res) => void handler(req, res))
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  try {
    return await f(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`)
  } finally {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}

/** One scrape of `url`: its status, content type and samples. */
export const scrape = async (url: string) => {
  const response = await fetch(url)
  const text = await response.text()
  return { status: response.status, type: response.headers.get("content-type"), text, samples: response.ok ? parse(text) : [] }
}

/** A port the OS says is free now. */
export const freePort = async (): Promise<number> => {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}
