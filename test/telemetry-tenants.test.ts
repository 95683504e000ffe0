// The bounded tenant label: only the busiest tenants keep their own `flexidb.tenant` in metrics, the rest are
// `other`, and a tenant leaving the top set leaves the scrape. Real SQLite tenants, the metrics read over a real
// HTTP request, TestClock for the sliding window.
import { it as effect } from "@effect/vitest"
import { Clock, Effect, TestClock } from "effect"
import { describe, expect, it } from "vitest"
import { view } from "../cli/top.js"
import { createFlexiDB, FlexiDBService, InvalidArgumentError } from "../src/index.js"
import { resolveOptions } from "../src/Options.js"
import * as TenantLabel from "../src/internal/tenantLabel.js"
import * as prisma7 from "./fixtures/prisma7/clients.ts"
import type { Sample } from "./support/metrics.js"
import { scrape, serving, sqliteTenants } from "./support/metrics.js"
import { createDatabase } from "./support/databases.js"

const sqliteTenant = sqliteTenants("flexidb-telemetry-tenants-")

/** The `flexidb.tenant` values in a scrape (of `metric` only, when given). */
const tenantsIn = (samples: ReadonlyArray<Sample>, metric?: string) =>
  [...new Set(samples.filter((s) => s.labels.flexidb_tenant !== undefined && (metric === undefined || s.name === metric))
    .map((s) => s.labels.flexidb_tenant))].sort()
const operations = (samples: ReadonlyArray<Sample>, tenant: string) =>
  samples.filter((s) => s.name === "db_client_operation_duration_count" && s.labels.flexidb_tenant === tenant)
    .reduce((n, s) => n + s.value, 0)
const gauge = (samples: ReadonlyArray<Sample>, name: string, tenant: string) =>
  samples.find((s) => s.name === name && s.labels.flexidb_tenant === tenant)?.value

describe("the sliding window (TestClock)", () => {
  effect.effect("ranks tenants by operations in the last minute, on the instance's clock", () =>
    Effect.gen(function*() {
      const label = TenantLabel.make(2, yield* Clock.clockWith(Effect.succeed))
      // Room in the top set: the first two tenants take it at once.
      expect([label.count("a"), label.count("b"), label.count("c")]).toEqual([true, true, false])
      for (let i = 0; i < 5; i++) label.count("c")
      // Within the same ten-second slot nothing is reranked.
      yield* TestClock.adjust("9999 millis")
      expect(label.count("c")).toBe(false)
      yield* TestClock.adjust("1 millis")
      // The next slot: c (7 operations) and a or b (1 each; ties by name) are the top two.
      expect(label.count("c")).toBe(true)
      expect([...label.top()].sort()).toEqual(["a", "c"])
      expect(label.kept("b")).toBe(false)
      // A minute later every count has left the window; b, busy now, takes a place at the next slot.
      yield* TestClock.adjust("60 seconds")
      label.count("b")
      label.refresh()
      yield* TestClock.adjust("10 seconds")
      label.refresh()
      expect([...label.top()]).toEqual(["b"])
      expect(label.count("z")).toBe(true)
    }))

  effect.effect("'all' keeps every name, 'none' none", () =>
    Effect.gen(function*() {
      const clock = yield* Clock.clockWith(Effect.succeed)
      const all = TenantLabel.make(Infinity, clock)
      const none = TenantLabel.make(0, clock)
      for (const t of ["a", "b", "c"]) {
        expect(all.count(t)).toBe(true)
        expect(none.count(t)).toBe(false)
      }
    }))
})

describe("the telemetry option", () => {
  it("takes { top }, 'all' or 'none', and says what is wrong otherwise", () => {
    expect(resolveOptions({}).telemetry).toEqual({ tenantTop: 50, queryText: false })
    expect(resolveOptions({ telemetry: { tenantLabel: "all", queryText: true } }).telemetry).toEqual({ tenantTop: Infinity, queryText: true })
    expect(resolveOptions({ telemetry: { tenantLabel: "none" } }).telemetry.tenantTop).toBe(0)
    expect(resolveOptions({ telemetry: { tenantLabel: { top: 3 } } }).telemetry.tenantTop).toBe(3)
    expect(() => resolveOptions({ telemetry: { tenantLabel: { top: -1 } } })).toThrow(/telemetry.tenantLabel.top/)
    expect(() => resolveOptions({ telemetry: { tenantLabel: "some" as never } })).toThrow(InvalidArgumentError)
    expect(() => resolveOptions({ telemetry: { other: 1 } as never })).toThrow(/telemetry.other/)
    expect(resolveOptions({ prometheus: { port: 9464 } })).toMatchObject({ prometheus: true, prometheusServer: { port: 9464, host: "127.0.0.1" } })
    expect(() => resolveOptions({ prometheus: { port: 70_000 } })).toThrow(/prometheus.port/)
    expect(() => resolveOptions({ prometheus: { port: 0 } })).toThrow(/prometheus.port/)
    expect(() => resolveOptions({ prometheus: {} as never })).toThrow(/prometheus.port/)
  })
})

describe("metrics of many tenants", () => {
  effect.scoped("only the busiest keep their name, on every label; the rest report as other; one leaving the top set leaves the scrape", () =>
    Effect.gen(function*() {
      const registry = yield* FlexiDBService.make({}, {
        gracefulShutdown: false,
        prometheus: true,
        telemetry: { tenantLabel: { top: 2 } },
        tenants: { resolve: (name) => sqliteTenant(name) }
      })
      const touch = (name: string, times: number) =>
        Effect.gen(function*() {
          const client = (yield* registry.tenant(name)) as ReturnType<typeof prisma7.sqlite>
          for (let i = 0; i < times; i++) yield* Effect.promise(() => client.user.count())
        })
      const read = Effect.promise(() => serving(registry.metricsHandler(), scrape))

      yield* touch("t1", 3)
      yield* touch("t2", 2)
      for (const t of ["t3", "t4", "t5"]) yield* touch(t, 1)
      const first = yield* read
      expect(first.status).toBe(200)
      expect(first.type).toBe("text/plain; version=0.0.4; charset=utf-8")
      expect(tenantsIn(first.samples)).toEqual(["other", "t1", "t2"])
      // Every label carries the bounded value: db.namespace (and a pool's name) too.
      for (const s of first.samples.filter((s) => s.labels.flexidb_tenant !== undefined)) {
        expect(s.labels.db_namespace ?? s.labels.db_client_connection_pool_name).toBe(s.labels.flexidb_tenant)
      }
      expect([operations(first.samples, "t1"), operations(first.samples, "t2"), operations(first.samples, "other")]).toEqual([3, 2, 3])
      // The members of t3, t4 and t5 as one: three healthy, circuits closed.
      expect(gauge(first.samples, "flexidb_member_healthy", "other")).toBe(3)
      expect(gauge(first.samples, "flexidb_circuit_state", "other")).toBe(0)
      expect(first.text).not.toMatch(/"t[345]"/)

      // t5 gets busy; the ranking moves on with the window's slots (ten seconds).
      yield* TestClock.adjust("10 seconds")
      yield* touch("t5", 10)
      yield* TestClock.adjust("10 seconds")
      const second = yield* read
      // t2 left the top set: its series are gone, not left behind at their last value.
      expect(second.text).not.toContain(`"t2"`)
      expect(tenantsIn(second.samples, "db_client_operation_duration_count")).toEqual(["other", "t1"])
      expect(gauge(second.samples, "flexidb_member_healthy", "t5")).toBe(1)
      expect(gauge(second.samples, "flexidb_member_healthy", "other")).toBe(3)
      expect(operations(second.samples, "other")).toBe(13)
      yield* touch("t5", 1)
      yield* touch("t2", 1)
      const third = yield* read
      expect(tenantsIn(third.samples, "db_client_operation_duration_count")).toEqual(["other", "t1", "t5"])
      expect([operations(third.samples, "t5"), operations(third.samples, "other")]).toEqual([1, 14])
    }))

  it("the Effect face's handler answers 503 once the registry's scope has closed", async () => {
    const handler = await Effect.runPromise(Effect.scoped(
      Effect.map(FlexiDBService.make({ main: sqliteTenant("scoped") }, { gracefulShutdown: false, prometheus: true }), (r) => r.metricsHandler())
    ))
    const answer = await serving(handler, scrape)
    expect(answer.status).toBe(503)
    expect(answer.text).toMatch(/Cannot metrics\(\): this flexidb instance was disconnected/)
  })

  effect.scoped("without the prometheus option the handler answers 503 saying so", () =>
    Effect.gen(function*() {
      const registry = yield* FlexiDBService.make({}, { gracefulShutdown: false })
      const answer = yield* Effect.promise(() => serving(registry.metricsHandler(), scrape))
      expect(answer.status).toBe(503)
      expect(answer.text).toMatch(/prometheus: true/)
    }))
})

describe("pool gauges and server of tenant members (real PostgreSQL and MariaDB)", () => {
  // A tenant's client is connected by the missing-database probe before its member is built: the pool and the
  // server must still be found (flexidb top showed `-` for a tenant's pool).
  it.each(["postgresql", "mysql"] as const)("%s: each tenant's pool is in the scrape, the other tenants' summed, and flexidb top shows them", async (provider) => {
    const database = await createDatabase(provider)
    const db = createFlexiDB({}, {
      gracefulShutdown: false,
      prometheus: true,
      telemetry: { tenantLabel: { top: 1 } },
      tenants: { resolve: () => prisma7[provider](database.url) as never }
    })
    try {
      for (const t of ["t1", "t1", "t2", "t3"]) await ((await db.tenant(t)) as ReturnType<typeof prisma7.sqlite>).user.count()
      const { samples } = await serving(db.metricsHandler(), scrape)
      const pools = new Set(samples.filter((s) => s.name === "db_client_connection_count").map((s) => s.labels.db_client_connection_pool_name))
      expect([...pools].sort()).toEqual(["other", "t1"])
      // By state, and the requests waiting (how many connections stay open is the driver's idle timeout's call).
      for (const pool of ["t1", "other"]) {
        const of = samples.filter((s) => s.labels.db_client_connection_pool_name === pool)
        expect(of.filter((s) => s.name === "db_client_connection_count").map((s) => s.labels.db_client_connection_state).sort())
          .toEqual(["idle", "used"])
        expect(of.filter((s) => s.name === "db_client_connection_pending_requests").map((s) => s.value)).toEqual([0])
      }
      const shown = view({ url: "u", atMs: 1, samples, error: undefined }, undefined)
      for (const name of ["t1", "other"]) expect(shown.members.find((m) => m.database === name)?.pool).not.toBeNull()
      // The server is a host and a port, on every tenant's duration points.
      const points = samples.filter((s) => s.name === "db_client_operation_duration_count")
      expect(points.length).toBeGreaterThan(0)
      const url = new URL(database.url)
      for (const p of points) expect([p.labels.server_address, p.labels.server_port]).toEqual([url.hostname, url.port])
    } finally {
      await db.disconnect()
      await database.drop()
    }
  })
})
