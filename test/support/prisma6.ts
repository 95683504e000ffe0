// Prisma 6.19's own CLI, offline: its JavaScript schema engine runs `migrate deploy` / `migrate status` on SQLite
// (a prisma.config.ts with an adapter and `engine: "js"`). The oracle for flexidb/migrate's compatibility.
import { execFile } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const fixture = join(import.meta.dirname, "..", "fixtures", "prisma6")
const bin = join(fixture, "node_modules", ".bin", "prisma")

/** Runs `prisma <args>` on the SQLite file `database` with the migrations in `migrations`. */
export const prisma6 = (args: ReadonlyArray<string>, database: string, migrations: string) => {
  // The config imports the adapter: it must live where the fixture's node_modules resolve.
  mkdirSync(join(fixture, ".tmp"), { recursive: true })
  const dir = mkdtempSync(join(fixture, ".tmp", "migrate-"))
  writeFileSync(join(dir, "prisma.config.ts"), [
    `import { PrismaBetterSQLite3 } from "@prisma/adapter-better-sqlite3"`,
    `export default {`,
    `  experimental: { adapter: true },`,
    `  engine: "js",`,
    `  schema: ${JSON.stringify(join(import.meta.dirname, "..", "fixtures", "migrations", "schemas", "b.prisma"))},`,
    `  migrations: { path: ${JSON.stringify(migrations)} },`,
    `  adapter: async () => new PrismaBetterSQLite3({ url: ${JSON.stringify(`file:${database}`)} }),`,
    `}`,
    ``
  ].join("\n"))
  const env = {
    ...process.env,
    PRISMA_SCHEMA_ENGINE_BINARY: join(fixture, "..", "bin", "schema-engine"),
    PRISMA_QUERY_ENGINE_LIBRARY: join(fixture, "..", "bin", "libquery_engine-stub.so.node"),
    PRISMA_HIDE_UPDATE_MESSAGE: "1",
    CHECKPOINT_DISABLE: "1",
    DATABASE_URL: `file:${database}`
  }
  return new Promise<{ code: number; out: string }>((resolve) => {
    execFile(bin, [...args, "--config", join(dir, "prisma.config.ts")], { cwd: dir, env, timeout: 60_000 }, (error, stdout, stderr) => {
      rmSync(dir, { recursive: true, force: true })
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, out: `${stdout}${stderr}` })
    })
  })
}

export const scratch = () => mkdtempSync(join(tmpdir(), "flexidb-migrate-"))
