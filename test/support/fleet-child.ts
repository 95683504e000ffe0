// A fleet deploy in its own process, for migrate-fleet-lock.test.ts. argv[2]: JSON { tenants, migrations, waves,
// lockTimeout, gate }. With a gate, verify prints "holding" and waits until the gate file exists. Prints the result
// (or the error's code and message) as the last line.
import { existsSync } from "node:fs"
import { setTimeout as sleep } from "node:timers/promises"
import { deployFleet } from "../../src/migrate.js"

const o = JSON.parse(process.argv[2]!)
console.log("locking")
try {
  const result = await deployFleet({
    tenants: o.tenants,
    migrations: o.migrations,
    waves: o.waves,
    lockTimeout: o.lockTimeout,
    verify: o.gate === undefined ? undefined : async () => {
      console.log("holding")
      while (!existsSync(o.gate)) await sleep(20)
    }
  })
  console.log(JSON.stringify({ result }))
} catch (e) {
  console.log(JSON.stringify({ error: { code: (e as { code?: string }).code, message: (e as Error).message } }))
}
