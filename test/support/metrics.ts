// Reading flexidb's metrics as Prometheus would: over a real HTTP request, parsed line by line.
import Database from "better-sqlite3"
import { copyFileSync, mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll } from "vitest"
import * as prisma7 from "../fixtures/prisma7/clients.ts"

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

/**
 * SQLite tenants for metrics tests: each name a file copied from one template (a `User` table) in a temporary folder,
 * made before the file's tests and removed after them. Returns the function giving a tenant's Prisma 7 client.
 */
export const sqliteTenants = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  const template = join(dir, "template.db")
  beforeAll(() => {
    const t = new Database(template)
    t.exec(`CREATE TABLE "User" (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT NOT NULL UNIQUE, name TEXT)`)
    t.close()
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  return (name: string) => {
    const file = join(dir, `${name}.db`)
    try {
      copyFileSync(template, file, 1)
    } catch {
      // the tenant exists
    }
    return prisma7.sqlite(file)
  }
}
