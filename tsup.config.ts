import { defineConfig, type Options } from "tsup"

const shared: Options = {
  sourcemap: true,
  target: "node20",
  external: [/^@prisma\//, /^effect/, /^@effect\//]
}

export default defineConfig([
  { ...shared, entry: { index: "src/index.ts", testing: "src/testing.ts", migrate: "src/migrate.ts" }, format: ["esm", "cjs"], dts: true },
  // The executable: ESM only, with its shebang kept. `npm run build` empties dist/ first: no `clean` racing
  // between the two builds.
  { ...shared, entry: { cli: "cli/bin.ts" }, format: ["esm"], dts: false }
])
