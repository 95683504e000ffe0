// One of bench/catalog.ts's app processes. argv: catalog URL, servers (JSON), tenant, listen|nolisten, pollInterval.
// Tries tenant() every 2 ms and prints "<outcome> <epoch ms>" each time the outcome changes.
import { createFlexiDB } from "../src/index.js"
import * as prisma7 from "../test/fixtures/prisma7/clients.ts"

const [url, servers, tenant, mode, poll] = process.argv.slice(2) as [string, string, string, string, string]
const db = createFlexiDB({}, {
  gracefulShutdown: false,
  logger: false,
  tenants: {
    catalog: { url, servers: JSON.parse(servers), listen: mode === "listen", pollInterval: Number(poll) },
    client: (u) => prisma7.postgresql(u)
  }
})
process.on("SIGTERM", () => void db.disconnect().finally(() => process.exit(0)))
let last = ""
for (;;) {
  const outcome = await db.tenant(tenant).then(() => "ok", (e: { _tag?: string }) => e._tag ?? "error")
  if (outcome !== last) {
    last = outcome
    console.log(`${outcome} ${performance.timeOrigin + performance.now()}`)
  }
  await new Promise((r) => setTimeout(r, 2))
}
