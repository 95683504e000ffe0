// Telemetry is decided when an instance is built: none before a provider is registered (this file's worker starts
// with none; vitest isolates files), and flexidb imported before the provider is registered still sees it.
import { trace } from "@opentelemetry/api"
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { createFlexiDB, InvalidArgumentError } from "../src/index.js"
import * as prisma7 from "../test/fixtures/prisma7/clients.ts"
import type { TestDatabase } from "./support/databases.js"
import { createDatabase } from "./support/databases.js"

let file: TestDatabase
beforeAll(async () => {
  file = await createDatabase("sqlite")
})
afterAll(() => file?.drop())

describe("telemetry with no provider registered", () => {
  it("records nothing for an instance built before the provider, and spans for one built after", async () => {
    const before = createFlexiDB({ early: prisma7.sqlite(file.url) }, { gracefulShutdown: false })
    await before.ready()
    await expect(before.metrics()).rejects.toThrow(InvalidArgumentError)
    await expect(before.metrics()).rejects.toThrow(/prometheus: true/)

    const spans = new InMemorySpanExporter()
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] })
    trace.setGlobalTracerProvider(provider)
    const after = createFlexiDB({ late: prisma7.sqlite(file.url) }, { gracefulShutdown: false })
    try {
      await after.ready()
      await before.get("early").user.count()
      await after.get("late").user.count()
      expect(spans.getFinishedSpans().map((s) => s.name)).toEqual(["User.count late"])
      expect(before.stats().early!.totalQueries).toBe(1)
    } finally {
      await before.disconnect()
      await after.disconnect()
      trace.disable()
      await provider.shutdown()
    }
  })
})
