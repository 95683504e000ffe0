// One contract, three faces: the Effect service (FlexiDBService), the Promise facade (createFlexiDB) and the mock
// (flexidb/testing) have the same methods and take the same options. A method or an option on one face only fails here.
import { Cause, Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { createFlexiDB, FlexiDBService } from "../src/index.js"
import { createMockFlexiDB } from "../src/testing.js"

/** Where the Promise face names a method differently, because its shape differs: a callback, not an Effect. */
const promiseName: Record<string, string> = { withSession: "session" }
/** What the facade has by nature: `disconnect()` is, for the service, its Layer's scope closing. */
const facadeOnly = ["disconnect"]
/** The mock's test controls. */
const mockControls = ["calls", "setDown", "setUp"]

const serviceOf = (options?: object) =>
  Effect.runPromise(Effect.scoped(Effect.map(FlexiDBService.make({}, { gracefulShutdown: false, ...options }), (s) => s)))

/** The options a face knows, as its refusal of an unknown one lists them. */
const knownOptions = (error: unknown) => {
  const match = /unknown option \(known: ([^)]*)\)/.exec(String((error as Error).message))
  if (match === null) throw new Error(`not an unknown-option error: ${String(error)}`)
  return match[1]!.split(", ").sort()
}

describe("parity of the faces", () => {
  it("every service method is on the facade and the mock, and the facade has nothing more", async () => {
    const service = Object.keys(await serviceOf()).sort()
    const facade = createFlexiDB({}, { gracefulShutdown: false })
    const mock = createMockFlexiDB({})
    try {
      const expected = [...service.map((k) => promiseName[k] ?? k), ...facadeOnly].sort()
      expect(Object.keys(facade).sort()).toEqual(expected)
      expect(Object.keys(mock).sort()).toEqual([...expected, ...mockControls].sort())
      // Every member is a method (or, for the service, an Effect).
      for (const k of Object.keys(facade)) expect(typeof (facade as unknown as Record<string, unknown>)[k]).toBe("function")
    } finally {
      await facade.disconnect()
      await mock.disconnect()
    }
  })

  it("every face knows the same options and refuses an unknown one the same way", async () => {
    const bad = { nosuch: 1 } as never
    const facade = (() => {
      try {
        createFlexiDB({}, bad)
      } catch (error) {
        return error
      }
    })()
    const mock = (() => {
      try {
        createMockFlexiDB({}, bad)
      } catch (error) {
        return error
      }
    })()
    const exit = await Effect.runPromiseExit(Effect.scoped(FlexiDBService.make({}, bad)))
    const service = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
    expect(knownOptions(service)).toEqual(knownOptions(facade))
    expect(knownOptions(mock)).toEqual(knownOptions(facade))
    expect(String(service)).toBe(String(facade))
  })
})
