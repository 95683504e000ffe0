// The examples in examples/ run as documented and show what the README says they show.
import { join } from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { runOk } from "./support/run.js"

const root = join(import.meta.dirname, "..")
const run = (file: string) => runOk(process.execPath, ["--import", "tsx", join(root, "examples", file)], { cwd: root })

beforeAll(async () => {
  await runOk("bash", [join(root, "examples", "setup.sh")], { cwd: root })
}, 60_000)

describe("examples", () => {
  it("demo.ts shows get, batch, middleware, health and stats", async () => {
    const out = await run("demo.ts")
    expect(out).toContain("[mw] users     User.create")
    expect(out).toContain("{ users: 1, analytics: [ { _count: 1, kind: 'signup' } ] }")
    expect(out).toContain("Unknown database 'tenant_nope' (registered: 'users', 'analytics', 'tenant_acme')")
    expect(out).toMatch(/"tenant_acme": true/)
    expect(out).toMatch(/│ users\s+│ true\s+│ 3\s+│ 0/)
    expect(out).toContain("disconnected: every client closed")
  })

  it("effect.ts composes databases as Layers with typed errors", async () => {
    const out = await run("effect.ts")
    expect(out).toContain("users: 1, events: 1")
    expect(out).toContain("caught QueryError: P2002")
    expect(out).toContain("healthy: true")
    expect(out).toContain(`batch: {"users":1,"analytics":1}`)
    expect(out).toContain("scope closed: both clients disconnected")
  })

  it("telemetry.ts prints flexidb's spans under the app's and its Prometheus text", async () => {
    const out = await run("telemetry.ts")
    expect(out).toMatch(/User\.create users\s+CLIENT\s+← POST \/signup\s+ERROR P2002/)
    expect(out).toMatch(/batch analytics\s+CLIENT\s+← batch/)
    expect(out).toContain(`db_operation_name="User.create",db_query_summary="INSERT User",error_type="P2002"`)
    expect(out).toMatch(/flexidb_member_healthy\{[^}]*db_namespace="users"[^}]*\} 1/)
    expect(out).toContain("GET /metrics → 200 text/plain; version=0.0.4; charset=utf-8")
  })
})
