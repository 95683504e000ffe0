// A real database whose server is reached through the fault proxy, for one describe block: both made before its tests
// and removed after them.
import { afterAll, beforeAll } from "vitest"
import type { Provider, TestDatabase } from "./databases.js"
import { createDatabase } from "./databases.js"
import { FaultProxy } from "./proxy.js"

const ports = { postgresql: 5432, mysql: 3306 } as const

export interface Proxied {
  readonly db: TestDatabase
  readonly proxy: FaultProxy
}

export const proxiedDatabase = (provider: Exclude<Provider, "sqlite">): Proxied => {
  const fixture = {} as { db: TestDatabase; proxy: FaultProxy }
  beforeAll(async () => {
    fixture.db = await createDatabase(provider)
    fixture.proxy = await FaultProxy.start(ports[provider])
  })
  afterAll(async () => {
    await fixture.proxy?.close()
    await fixture.db?.drop()
  })
  return fixture
}
