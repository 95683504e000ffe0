import { defineConfig, type Options } from "tsup"

const shared: Options = {
  sourcemap: true,
  target: "node20",
  external: [/^@prisma\//, /^effect/, /^@effect\//]
}

export default defineConfig([
  { ...shared, entry: { index: "src/index.ts", testing: "src/testing.ts", migrate: "src/migrate.ts", catalog: "src/Catalog.ts" }, format: ["esm", "cjs"], dts: true },
  // The executable: ESM only, with its shebang kept. `npm run build` empties dist/ first: no `clean` racing
  // between the two builds. Effect and @effect/* are bundled into it: loading them as ~1,000 separate modules was
  // most of the command's start-up. Native and optional packages stay outside.
  {
    ...shared,
    entry: { cli: "cli/bin.ts" },
    format: ["esm"],
    dts: false,
    sourcemap: false,
    external: [/^@prisma\//, "msgpackr", "@parcel/watcher", /^@opentelemetry\//, "pg", "mariadb", "better-sqlite3"],
    noExternal: [/^effect/, /^@effect\//],
    // Bundled CommonJS dependencies call require(): give the ESM bundle one.
    banner: { js: "import { createRequire as __flexidbRequire } from \"node:module\"; const require = __flexidbRequire(import.meta.url);" }
  }
])
