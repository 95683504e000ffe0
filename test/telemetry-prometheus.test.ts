// The /metrics endpoint and a real Prometheus (Debian's package) scraping it: the bounded tenant label counted at
// Prometheus, and every PromQL expression of examples/grafana/flexidb.json answered with data.
import express from "express"
import Fastify from "fastify"
import { once } from "node:events"
import { readFileSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createFlexiDB } from "../src/index.js"
import * as prisma7 from "./fixtures/prisma7/clients.ts"
import type { TestDatabase } from "./support/databases.js"
import { createDatabase } from "./support/databases.js"
import { freePort, scrape, sqliteTenants } from "./support/metrics.js"
import type { Prometheus } from "./support/prometheus.js"
import { startPrometheus } from "./support/prometheus.js"
import type { AnyClient } from "./support/prisma.js"
import { downClient, SECRET } from "./support/prisma.js"

const sqliteTenant = sqliteTenants("flexidb-telemetry-prometheus-")
const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

describe("the metrics endpoint", () => {
  it("metricsHandler() serves metrics() to a node:http server with Prometheus' content type, and 503 after disconnect", async () => {
    const db = createFlexiDB({ main: sqliteTenant("endpoint") }, { gracefulShutdown: false, prometheus: true })
    const server = createServer((req, res) => void db.metricsHandler()(req, res))
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`
    try {
      await db.get("main").user.count()
      const answer = await scrape(url)
      expect(answer.status).toBe(200)
      expect(answer.type).toBe(CONTENT_TYPE)
      expect(answer.samples.find((s) => s.name === "db_client_operation_duration_count" && s.labels.db_namespace === "main")?.value).toBe(1)
      await db.disconnect()
      const after = await scrape(url)
      expect(after.status).toBe(503)
      expect(after.text).toMatch(/disconnect/i)
    } finally {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await db.disconnect()
    }
  })

  it("metricsHandler() is an Express route and a Fastify route as it is", async () => {
    const db = createFlexiDB({ main: sqliteTenant("frameworks") }, { gracefulShutdown: false, prometheus: true })
    const app = express()
    app.get("/metrics", db.metricsHandler())
    const server = app.listen(0, "127.0.0.1")
    await once(server, "listening")
    const fastify = Fastify()
    fastify.get("/metrics", db.metricsHandler())
    await fastify.listen({ port: 0, host: "127.0.0.1" })
    try {
      await db.get("main").user.count()
      for (const url of [
        `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`,
        `http://127.0.0.1:${(fastify.server.address() as AddressInfo).port}/metrics`
      ]) {
        const answer = await scrape(url)
        expect([answer.status, answer.type], url).toEqual([200, CONTENT_TYPE])
        expect(answer.samples.find((s) => s.name === "db_client_operation_duration_count" && s.labels.db_namespace === "main")?.value).toBe(1)
      }
    } finally {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await fastify.close()
      await db.disconnect()
    }
  })

  it("prometheus: { port } serves /metrics on its own, 404 elsewhere, and stops with disconnect()", async () => {
    const port = await freePort()
    const db = createFlexiDB({ main: sqliteTenant("own") }, { gracefulShutdown: false, prometheus: { port } })
    await db.get("main").user.count()
    const url = `http://127.0.0.1:${port}`
    const answer = await scrape(`${url}/metrics`)
    expect([answer.status, answer.type]).toEqual([200, CONTENT_TYPE])
    expect(answer.samples.some((s) => s.name === "flexidb_member_healthy" && s.labels.db_namespace === "main")).toBe(true)
    expect((await fetch(`${url}/`)).status).toBe(404)
    await db.disconnect()
    await expect(fetch(`${url}/metrics`)).rejects.toThrow()
  })
})

/** An app with a PostgreSQL database, one that is down, and SQLite tenants in a cache of ten, top five labelled. */
const open = (port: number, database: TestDatabase) =>
  createFlexiDB({
    main: prisma7.postgresql(database.url.replace("postgres@", `postgres:${SECRET}@`)) as unknown as AnyClient,
    down: downClient(prisma7, "postgresql")
  } as Record<string, AnyClient>, {
    gracefulShutdown: false,
    logger: false,
    prometheus: { port },
    telemetry: { tenantLabel: { top: 5 } },
    retry: { attempts: 0 },
    reconnect: { enabled: false },
    circuitBreaker: { threshold: 1, resetTimeout: 600_000 },
    tenants: { resolve: (name) => sqliteTenant(name) as unknown as AnyClient, maxClients: 10 }
  })

describe("the metrics server", () => {
  it("says through the logger when its port is taken, and the databases work without it", async () => {
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve))
    const port = (taken.address() as AddressInfo).port
    const lines: Array<string> = []
    const db = createFlexiDB({ main: sqliteTenant("taken") }, {
      gracefulShutdown: false,
      prometheus: { port },
      logger: { warn: (line) => lines.push(line) }
    })
    try {
      expect(await db.get("main").user.count()).toBe(0)
      for (let i = 0; i < 100 && lines.length === 0; i++) await new Promise((r) => setTimeout(r, 10))
      expect(lines).toEqual([`The metrics server could not listen on port ${port}: listen EADDRINUSE: address already in use 127.0.0.1:${port}`])
      expect((await db.metrics()).length).toBeGreaterThan(0)
    } finally {
      await db.disconnect()
      await new Promise<void>((resolve) => taken.close(() => resolve()))
    }
  })
})

describe("a real Prometheus scraping flexidb", () => {
  let prometheus: Prometheus | undefined
  let database: TestDatabase
  let db: ReturnType<typeof open>
  let running = true
  let traffic: Promise<void> = Promise.resolve()
  const tenants = Array.from({ length: 30 }, (_, i) => `t${i}`)

  beforeAll(async () => {
    database = await createDatabase("postgresql")
    const port = await freePort()
    db = open(port, database)
    await db.ready()
    prometheus = await startPrometheus([`127.0.0.1:${port}`])
    // Traffic while Prometheus scrapes: reads, a unique violation, refusals of the open circuit, tenants in and
    // out of a cache of ten.
    await db.get("main").user.create({ data: { email: "dup@example.com" } })
    traffic = (async () => {
      for (let round = 0; running; round++) {
        await db.get("main").user.findMany()
        await db.get("main").user.create({ data: { email: "dup@example.com" } }).catch(() => {})
        await db.get("down").user.count().catch(() => {})
        for (const t of round === 0 ? tenants : [tenants[round % 30]!, "t0", "t1"]) await ((await db.tenant(t)) as unknown as AnyClient).user.count()
        await new Promise((r) => setTimeout(r, 50))
      }
    })()
  }, 60_000)
  afterAll(async () => {
    running = false
    await traffic.catch(() => {})
    await prometheus?.stop()
    await db?.disconnect()
    await database?.drop()
  })

  it("holds a bounded number of flexidb_tenant values: the top five and other, of thirty tenants", async () => {
    const promql = `count(count by (flexidb_tenant) (db_client_operation_duration_count{flexidb_tenant!=""}))`
    await prometheus!.until(`count(count by (flexidb_tenant) (flexidb_member_healthy{flexidb_tenant!=""}))`, (r) => r.length > 0)
    // Once all thirty have been touched and scraped, exactly six values; never more, whatever the scrape.
    const [values] = await prometheus!.until(promql, (r) => r.length > 0 && Number(r[0]!.value[1]) >= 6)
    expect(Number(values!.value[1])).toBe(6)
    // Which five moves with the window (t0 and t1, touched every round, stay): never more than five and other (fewer
    // just after a rerank, until the tenants new to the top set have run an operation under their own name).
    const names = (await prometheus!.query(`count by (flexidb_tenant) ({flexidb_tenant!=""})`)).map((r) => r.metric.flexidb_tenant)
    expect(names.length).toBeLessThanOrEqual(6)
    expect(names).toEqual(expect.arrayContaining(["other", "t0", "t1"]))
    // Series per tenant value: no more for `other` (25 tenants and more) than for a tenant of its own.
    const perTenant = await prometheus!.query(`count by (flexidb_tenant) ({__name__=~"flexidb_member_healthy|flexidb_circuit_state", flexidb_tenant!=""})`)
    for (const r of perTenant) expect(Number(r.value[1])).toBe(2)
    const [all] = await prometheus!.query(`count({flexidb_tenant!=""})`)
    const [most] = await prometheus!.query(`max(count by (flexidb_tenant) ({flexidb_tenant!=""}))`)
    expect(Number(all!.value[1])).toBeLessThanOrEqual(6 * Number(most!.value[1]))
  }, 60_000)

  it("answers every PromQL expression of the Grafana dashboard with data", async () => {
    const dashboard = JSON.parse(readFileSync(new URL("../examples/grafana/flexidb.json", import.meta.url), "utf8")) as {
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>
      templating: { list: Array<{ query: { query: string } }> }
    }
    const expressions = dashboard.panels.flatMap((p) => p.targets.map((t) => [p.title, t.expr] as const))
    expect(expressions.length).toBeGreaterThanOrEqual(15)
    // Grafana's variables as Grafana would fill them: every database, a rate window of a minute.
    const filled = (expr: string) => expr.replaceAll("$__rate_interval", "1m").replaceAll("$database", ".+")
    for (const [title, expr] of expressions) {
      const result = await prometheus!.until(filled(expr), (r) => r.some((s) => Number.isFinite(Number(s.value[1]))))
      expect(result.length, `${title}: ${expr}`).toBeGreaterThan(0)
    }
    // The variable's values: label_values is Grafana's, answered by Prometheus' label API.
    const names = await (await fetch(`${prometheus!.url}/api/v1/label/db_namespace/values?match[]=flexidb_member_healthy`)).json() as { data: Array<string> }
    expect(names.data).toEqual(expect.arrayContaining(["main", "down", "other"]))
    // The error panel shows the unique violation and the refusals by the open circuit.
    const errors = await prometheus!.query(filled(expressions.find(([t]) => t.startsWith("Errors"))![1]))
    expect(errors.map((r) => r.metric.error_type)).toContain("P2002")
    const circuits = await prometheus!.query(`flexidb_circuit_state{db_namespace="down"}`)
    expect(circuits.map((r) => r.value[1])).toEqual(["2"])
  }, 120_000)
})
