/**
 * flexidb: many independent Prisma databases in one Node.js process.
 *
 * @since 0.1.0
 */
export { createFlexiDB } from "./createFlexiDB.js"
export type { BatchOperations, BatchResults, BatchSettledResults, FlexiDB } from "./createFlexiDB.js"
export type {
  ClientEntry,
  ClientOf,
  DBStats,
  MemberStats,
  MiddlewareFn,
  PrismaClientLike,
  ReadWriteClient,
  Role,
  TenantStats,
  WeightedReplica
} from "./Client.js"
export type {
  BalancePolicy,
  CircuitBreakerConfig,
  MemberRef,
  ReadYourWritesConfig,
  ReplicaConfig,
  ReplicaInfo,
  FlexiDBHooks,
  FlexiDBLogger,
  FlexiDBOptions,
  HealthCheckConfig,
  MetricsHandler,
  PrometheusConfig,
  ReconnectConfig,
  RetryConfig,
  TelemetryConfig,
  TenantInfo,
  TenantsCatalogConfig,
  TenantsConfig
} from "./Options.js"
export type { Settled } from "./Client.js"
export {
  BatchError,
  CatalogError,
  CircuitOpenError,
  ClosedError,
  ConnectionError,
  DuplicateDatabaseError,
  InvalidArgumentError,
  isFlexiDBError,
  OperationTimeoutError,
  QueryError,
  ReadOnlyError,
  ReconnectFailedError,
  ReplicaUnavailableError,
  TenantCapacityError,
  TenantLockedError,
  TenantSuspendedError,
  TenantResolveError,
  TenantMovingError,
  UnknownDatabaseError,
  UnknownGroupError
} from "./Errors.js"
export type { FlexiDBError, TenantError } from "./Errors.js"
export { isOutcomeUnknown } from "./Outcome.js"
export { errorSummary, redact } from "./Redact.js"

/** The circuit breaker's states and pure transitions. @since 0.1.0 */
export * as CircuitBreaker from "./CircuitBreaker.js"
/** One database as an Effect service and Layer. @since 0.1.0 */
export * as Database from "./Database.js"
/** The registry as an Effect service and Layer. @since 0.1.0 */
export * as FlexiDBService from "./FlexiDB.js"
