// A mover run as a child process by catalog-move-crash.test.ts: it moves a tenant and kills itself (SIGKILL, as
// kill -9 would) the moment the move reports step `killAt`. argv: catalog URL, servers (JSON), tenant, server, killAt.
import { openCatalog } from "../../src/Catalog.js"

const [url, servers, tenant, server, killAt] = process.argv.slice(2) as [string, string, string, string, string]
const catalog = await openCatalog({ url, servers: JSON.parse(servers) })
await catalog.move(tenant, {
  server,
  onProgress: (p) => {
    if (p.step === killAt) {
      console.log(`killed at ${p.step}`)
      process.kill(process.pid, "SIGKILL")
    }
  }
})
console.log("moved")
await catalog.close()
