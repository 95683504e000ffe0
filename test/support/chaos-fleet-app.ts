// An app instance of bench/chaos-fleet.ts: follows the catalog and writes a new unique key to each of its tenants in
// turn (4 loops at once). argv: catalog URL, servers (JSON), tenants (JSON), key prefix, pollInterval (ms).
// Prints "ready", then for each write "ack <tenant> <key> <end>" once the server acknowledged it (end: epoch ms) or
// "fail <tenant> <key> <tag>[:<code>] <end>" (FLEXIDB_CHAOS_APP_ERRORS=1: the rarer errors' messages on stderr), and
// "unhandled <message>" for an unhandled rejection. Lines are flushed every 20 ms: a kill -9 may lose the last ones
// (those writes then count as not acknowledged, never as lost).
import { createFlexiDB } from "../../src/index.js"
import * as prisma7 from "../fixtures/prisma7/clients.ts"

const [url, servers, tenantsJson, prefix, poll] = process.argv.slice(2) as [string, string, string, string, string]
const tenants = JSON.parse(tenantsJson) as Array<string>
const lines: Array<string> = []
const flush = () => {
  if (lines.length > 0) process.stdout.write(lines.splice(0).join("\n") + "\n")
}
process.on("unhandledRejection", (e) => lines.push(`unhandled ${String((e as Error)?.message ?? e).replace(/\s+/g, " ")}`))
const db = createFlexiDB({}, {
  gracefulShutdown: false,
  logger: false,
  retry: { attempts: 0 },
  // A write on a hung or blackholed connection ends (outcome unknown, so not acknowledged) instead of holding its loop.
  operationTimeout: 2_000,
  reconnect: { interval: 200, maxAttempts: 1_000_000 },
  tenants: {
    catalog: { url, servers: JSON.parse(servers), pollInterval: Number(poll), moveTimeout: "5 seconds" },
    client: (u) => prisma7.postgresql(u),
    maxClients: 60
  }
})

let stopping = false
process.on("SIGTERM", () => (stopping = true))
const timer = setInterval(flush, 20)
console.log("ready")
let n = 0
const loop = async (offset: number) => {
  for (let i = offset; !stopping; i += 4) {
    const tenant = tenants[i % tenants.length]!
    const key = `${prefix}-${n++}`
    try {
      await (await db.tenant(tenant)).user.create({ data: { email: key } })
      lines.push(`ack ${tenant} ${key} ${Date.now()}`)
    } catch (e) {
      const code = (e as { code?: unknown }).code
      // A suspension's fence refusing a write this process sent before it heard (the error's `cause`): `:fence`.
      const fence = (e as { _tag?: string })._tag === "TenantSuspendedError" && (e as { cause?: unknown }).cause !== undefined
      const tag = `${(e as { _tag?: string })._tag ?? (e as Error).name}${
        fence ? ":fence" : typeof code === "string" && !code.startsWith("FLEXIDB_") ? `:${code}` : ""
      }`
      if (process.env.FLEXIDB_CHAOS_APP_ERRORS === "1" && !/^(TenantSuspendedError|ConnectionError|CircuitOpenError)/.test(tag)) {
        console.error(`${prefix} ${tenant}: ${String((e as Error).message ?? e).replace(/\s+/g, " ").slice(0, 300)}`)
      }
      lines.push(`fail ${tenant} ${key} ${tag} ${Date.now()}`)
      await new Promise((r) => setTimeout(r, 5))
    }
    await new Promise((r) => setTimeout(r, 2))
  }
}
await Promise.all([0, 1, 2, 3].map(loop))
clearInterval(timer)
flush()
console.error(`${prefix}: writes ended, disconnecting`)
await db.disconnect()
console.log("done")
process.exit(0)
