// An app instance writing to one tenant while it moves, run as a child process by catalog-move-fleet.test.ts and
// bench/move.ts. argv: catalog URL, servers (JSON), tenant, instance id, and the engine (postgresql by default;
// sqlite, mysql). Each write inserts a new unique key; it prints
// "ack <key> <ms> <end>" when the server acknowledged it (ms: how long the write took, held time included; end: when
// it returned, epoch ms) and
// "fail <key> <tag>[:<code>]" otherwise (FLEXIDB_MOVE_APP_ERRORS=1: the error itself on stderr). SIGTERM: disconnects and prints "done".
import { createFlexiDB } from "../../src/index.js"
import * as prisma7 from "../fixtures/prisma7/clients.ts"

const [url, servers, tenant, id, engine = "postgresql"] = process.argv.slice(2) as [string, string, string, string, string?]
const clientOf = (u: string) =>
  engine === "sqlite" ? prisma7.sqlite(u.slice("file:".length)) : engine === "mysql" ? prisma7.mysql(u) : prisma7.postgresql(u)
const db = createFlexiDB({}, {
  gracefulShutdown: false,
  logger: false,
  retry: { attempts: 0 },
  tenants: {
    catalog: { url, servers: JSON.parse(servers), moveTimeout: "5 seconds" },
    client: (u) => clientOf(u) as ReturnType<typeof prisma7.postgresql>
  }
})

let stopping = false
process.on("SIGTERM", () => (stopping = true))
const lines: Array<string> = []
const flush = () => {
  if (lines.length > 0) process.stdout.write(lines.splice(0).join("\n") + "\n")
}
const timer = setInterval(flush, 50)
console.log("ready")
for (let i = 0; !stopping; i++) {
  const key = `${id}-${i}@x.io`
  const started = performance.now()
  try {
    await (await db.tenant(tenant)).user.create({ data: { email: key } })
    const ended = performance.now()
    lines.push(`ack ${key} ${(ended - started).toFixed(1)} ${(performance.timeOrigin + ended).toFixed(0)}`)
  } catch (e) {
    const code = (e as { code?: unknown }).code
    lines.push(`fail ${key} ${(e as { _tag?: string })._tag ?? (e as Error).name}${typeof code === "string" ? `:${code}` : ""}`)
    if (process.env.FLEXIDB_MOVE_APP_ERRORS === "1") process.stderr.write(`${key}: ${String(e)}\n`)
    await new Promise((r) => setTimeout(r, 5))
  }
  await new Promise((r) => setTimeout(r, 2))
}
clearInterval(timer)
flush()
await db.disconnect()
console.log("done")
process.exit(0)
