import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    // The JSON file is what .ci/run counts (passed, failed, skipped, and which suites ran).
    reporters: ["default", ["json", { outputFile: "test/.tmp/results.json" }]],
    hookTimeout: 60_000,
    // Type tests: expectTypeOf and @ts-expect-error in *.test-d.ts, checked by tsc as part of the run.
    typecheck: { enabled: true, include: ["test/**/*.test-d.ts"], tsconfig: "./tsconfig.json" }
  }
})
