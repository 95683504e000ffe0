/**
 * The OpenTelemetry packages the `prometheus` option needs (optional: flexidb does not depend on them), and what
 * to say when some are missing. Shared by createFlexiDB's error, `flexidb codegen` and `flexidb doctor`.
 */
export const PROMETHEUS_PACKAGES = [
  "@opentelemetry/api",
  "@opentelemetry/sdk-metrics",
  "@opentelemetry/exporter-prometheus"
] as const

/** `prometheus` needs …: npm i … (the missing ones). */
export const prometheusMissing = (missing: ReadonlyArray<string>): string =>
  `needs ${PROMETHEUS_PACKAGES.join(", ")}; missing: ${missing.join(", ")}. Install them: npm i ${missing.join(" ")}`
