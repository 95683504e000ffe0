/**
 * The one table of what the CLI knows per datasource provider: the driver adapter package an app installs (doctor
 * checks it, codegen imports it), the driver under it that flexidb reaches the server with (doctor's probe, the
 * in-process migrate), and how codegen builds a client with that adapter.
 */

/** The adapter package of each provider Prisma has one for. */
export const ADAPTER_PACKAGES: Readonly<Record<string, string>> = {
  sqlite: "@prisma/adapter-better-sqlite3",
  postgresql: "@prisma/adapter-pg",
  postgres: "@prisma/adapter-pg",
  cockroachdb: "@prisma/adapter-pg",
  mysql: "@prisma/adapter-mariadb",
  sqlserver: "@prisma/adapter-mssql"
}

/** The providers flexidb reaches itself (and migrates in process), with the driver under each one's adapter. */
export const DRIVERS = { sqlite: "better-sqlite3", postgresql: "pg", mysql: "mariadb" } as const
export type Reachable = keyof typeof DRIVERS

/** How codegen builds a client of a provider: its adapter package and class, and how to construct it. */
export interface ProviderAdapter {
  readonly pkg: string
  readonly name: (major: 6 | 7) => string
  /** The adapter for `url`; with `limit`, the most connections its pool may open (SQLite has no pool). */
  readonly make: (cls: string, url: string, limit?: string) => string
  readonly pooled: boolean
  /** A tenant URL template, for the generated comments and errors. */
  readonly example: string
}

/** The adapters codegen wires, by datasource provider (`postgres` is `postgresql`). */
export const ADAPTERS: Record<string, ProviderAdapter> = {
  sqlite: {
    pkg: ADAPTER_PACKAGES.sqlite!,
    name: (major) => (major === 7 ? "PrismaBetterSqlite3" : "PrismaBetterSQLite3"),
    make: (cls, url) => `new ${cls}({ url: ${url} })`,
    pooled: false,
    example: "file:./tenants/{tenant}.db"
  },
  postgresql: {
    pkg: ADAPTER_PACKAGES.postgresql!,
    name: () => "PrismaPg",
    make: (cls, url, limit) => `new ${cls}({ connectionString: ${url}${limit === undefined ? "" : `, max: ${limit}`} })`,
    pooled: true,
    example: "postgresql://user:password@localhost:5432/tenant_{tenant}"
  },
  mysql: {
    pkg: ADAPTER_PACKAGES.mysql!,
    name: () => "PrismaMariaDb",
    // The mariadb driver reads its pool's size from the URL.
    make: (cls, url, limit) => `new ${cls}(${limit === undefined ? url : `withConnectionLimit(${url}, ${limit})`})`,
    pooled: true,
    example: "mysql://user:password@localhost:3306/tenant_{tenant}"
  }
}
ADAPTERS.postgres = ADAPTERS.postgresql!
