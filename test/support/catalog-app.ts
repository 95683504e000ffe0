// An app instance that follows a tenant catalog, run as a child process by catalog-fleet.test.ts.
// argv: catalog URL, servers (JSON), tenant, "listen" | "nolisten", instance id.
// It writes to the tenant every few milliseconds and prints "state <outcome>" each time the outcome changes
// ("ok", or the error's tag), so the parent sees when a change reached it, and "tick <n>" after every 10th attempt,
// so the parent can wait for attempts made after a point instead of sleeping.
import { createFlexiDB } from "../../src/index.js"
import * as prisma7 from "../fixtures/prisma7/clients.ts"

const [url, servers, tenant, mode, id] = process.argv.slice(2) as [string, string, string, string, string]
const db = createFlexiDB({}, {
  gracefulShutdown: false,
  logger: false,
  retry: { attempts: 0 },
  reconnect: { interval: 100, maxAttempts: 1_000_000 },
  tenants: {
    catalog: { url, servers: JSON.parse(servers), listen: mode === "listen", pollInterval: mode === "listen" ? "5 seconds" : "1 hour" },
    client: (u) => prisma7.postgresql(u)
  }
})

let last = ""
let n = 0
let attempts = 0
const say = (outcome: string) => {
  if (outcome === last) return
  last = outcome
  console.log(`state ${outcome}`)
}
process.on("SIGTERM", () => {
  void db.disconnect().finally(() => process.exit(0))
})
for (;;) {
  try {
    const client = await db.tenant(tenant)
    await client.user.create({ data: { email: `${id}-${n++}@fleet.io` } })
    say("ok")
  } catch (e) {
    say(String((e as { _tag?: string })._tag ?? (e as Error).name ?? "error"))
  }
  if (++attempts % 10 === 0) console.log(`tick ${attempts}`)
  await new Promise((r) => setTimeout(r, 10))
}
