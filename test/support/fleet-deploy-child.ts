// A fleet migration run as its own process, for bench/chaos-fleet.ts (which kills it with SIGKILL mid-wave and runs
// it again): `deployFleet` over the catalog's active tenants, in waves 1, 25%, 100%. argv: catalog URL, servers
// (JSON: name → base URL), migrations folder. Prints "tenant <name> <status>" as each tenant finishes, then
// "done <ok|failed|halted>"; exit code 0 when every tenant is applied or current.
import { openCatalog } from "../../src/Catalog.js"
import { withDatabase } from "../../src/internal/catalog/servers.js"
import { deployFleet } from "../../src/migrate.js"

const [url, serversJson, migrations] = process.argv.slice(2) as [string, string, string]
const servers = JSON.parse(serversJson) as Record<string, string>
const catalog = await openCatalog({ url, servers })
const tenants: Array<{ name: string; url: string }> = []
for await (const row of catalog.list()) {
  if (row.state !== "active") continue
  tenants.push({ name: row.name, url: withDatabase(servers[row.server]!, row.location) })
}
await catalog.close()
const result = await deployFleet({
  tenants,
  migrations,
  waves: [1, "25%", "100%"],
  onProgress: (event) => {
    if (event.kind === "tenant") process.stdout.write(`tenant ${event.result.name} ${event.result.status}\n`)
  }
})
const ok = result.halted === undefined && result.tenants.every((t) => t.status === "applied" || t.status === "current")
process.stdout.write(`done ${result.halted !== undefined ? "halted" : ok ? "ok" : "failed"}\n`)
for (const t of result.tenants) if (t.error !== undefined) process.stderr.write(`${t.name}: ${t.error.code} ${t.error.reason}\n`)
process.exit(ok ? 0 : 1)
