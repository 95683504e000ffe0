// The attributes flexidb derives itself: statement summaries, text without values, the server of a client.
import { PrismaPg } from "@prisma/adapter-pg"
import pg from "pg"
import { describe, expect, it } from "vitest"
import { createRequire } from "node:module"
import { InvalidArgumentError } from "../src/index.js"
import { modelSummary, serverOf, withoutLiterals } from "../src/internal/attributes.js"
import { checkPrometheus } from "../src/internal/telemetry.js"
import { PROMETHEUS_PACKAGES } from "../src/internal/telemetryPackages.js"
import * as prisma7 from "./fixtures/prisma7/clients.ts"

describe("db.query.summary", () => {
  it("of a model operation is its statement kind and model", () => {
    expect(modelSummary("User.findMany")).toBe("SELECT User")
    expect(modelSummary("Post.createManyAndReturn")).toBe("INSERT Post")
    expect(modelSummary("Post.upsert")).toBe("UPSERT Post")
    expect(modelSummary("$queryRaw")).toBeUndefined()
    expect(modelSummary("batch")).toBeUndefined()
  })

  it("text keeps placeholders and identifiers, and replaces literals and comments", () => {
    expect(withoutLiterals("SELECT t1.id, 42, 1.5e3 FROM t1 WHERE a = 'it''s' AND b = $1 AND c = true -- x@y")).toBe(
      "SELECT t1.id, ?, ? FROM t1 WHERE a = ? AND b = $1 AND c = ?"
    )
  })
})

describe("server.address", () => {
  it("is the host and port of a PrismaPg client, never its URL or password", () => {
    const url = "postgresql://app:hunter2@db.internal:6543/main?sslmode=require"
    expect(serverOf(prisma7.postgresql(url))).toEqual({ "server.address": "db.internal", "server.port": 6543 })
    const pool = new pg.Pool({ host: "10.0.0.7", user: "app", password: "hunter2" })
    expect(serverOf(new prisma7.PostgresClient({ adapter: new PrismaPg(pool) }))).toEqual({
      "server.address": "10.0.0.7",
      "server.port": 5432
    })
    void pool.end()
    expect(serverOf(prisma7.sqlite("/tmp/none.db"))).toEqual({})
  })
})

describe("the prometheus option's packages", () => {
  const require = createRequire(import.meta.url)
  const without = (...absent: Array<string>) => (id: string) => (absent.includes(id) ? undefined : require(id) as unknown)
  const refusal = (loader: (id: string) => unknown) => {
    try {
      checkPrometheus(loader)
    } catch (error) {
      return error
    }
    return undefined
  }

  it("when some are missing, the error names every one it needs and says the npm i line of the missing ones", () => {
    const error = refusal(without("@opentelemetry/exporter-prometheus"))
    expect(error).toBeInstanceOf(InvalidArgumentError)
    expect((error as Error).message).toContain(
      "needs @opentelemetry/api, @opentelemetry/sdk-metrics, @opentelemetry/exporter-prometheus; missing: " +
        "@opentelemetry/exporter-prometheus. Install them: npm i @opentelemetry/exporter-prometheus"
    )
    expect((refusal(without(...PROMETHEUS_PACKAGES)) as Error).message).toMatch(
      /npm i @opentelemetry\/api @opentelemetry\/sdk-metrics @opentelemetry\/exporter-prometheus$/
    )
    expect(refusal(without())).toBeUndefined()
  })
})
