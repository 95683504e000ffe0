import { configDefaults, defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The JSON file is what .ci/run counts (passed, failed, skipped, and which suites ran).
    reporters: ["default", ["json", { outputFile: "test/.tmp/results.json" }]],
    projects: [
      {
        extends: true,
        test: {
          name: "suites",
          include: ["test/**/*.test.ts"],
          exclude: [...configDefaults.exclude, "test/reliability.test.ts"],
          // Type tests: expectTypeOf and @ts-expect-error in *.test-d.ts, checked by tsc as part of the run.
          typecheck: { enabled: true, include: ["test/**/*.test-d.ts"], tsconfig: "./tsconfig.json" }
        }
      },
      {
        // Chaos and soak measure latency and growth: they run after every other suite, alone on the machine.
        extends: true,
        test: { name: "reliability", include: ["test/reliability.test.ts"], sequence: { groupOrder: 1 } }
      }
    ]
  }
})
