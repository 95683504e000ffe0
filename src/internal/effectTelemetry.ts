/**
 * The Effect API's telemetry. Each `Database.query` runs in `Effect.withSpan` and records Effect `Metric`s, with the
 * names and attributes of the OpenTelemetry path, so an app that provides @effect/opentelemetry's layers gets them
 * through its own tracer and metric exporter with no setup. Effect resolves the tracer per fiber: without a tracer
 * layer the span stays in Effect's native tracer and is exported nowhere.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import { CircuitOpenError, QueryError } from "../Errors.js"
import type { Labels } from "./telemetry.js"
import { circuitValue, durationBuckets, errorType } from "./telemetry.js"

const duration = Metric.histogram(
  "db.client.operation.duration",
  MetricBoundaries.fromIterable(durationBuckets),
  "Duration of database client operations, middleware included, in seconds."
)
const rejected = Metric.counter("flexidb.operations.rejected", {
  description: "Operations refused without being sent, because the member's circuit was open.",
  incremental: true
})
const healthy = Metric.gauge("flexidb.member.healthy", {
  description: "1 when the member answered its last connection or health check, else 0."
})
const circuit = Metric.gauge("flexidb.circuit.state", {
  description: "Each member's circuit breaker: 0 closed, 1 half-open, 2 open."
})

const tags = (attributes: Labels) => Object.entries(attributes).map(([k, v]) => MetricLabel.make(k, String(v)))

/** `error.type` as the OpenTelemetry path reports it: Prisma's own code for a query that failed. */
const typeOf = (error: unknown) => errorType(error instanceof QueryError ? error.cause : error)

/**
 * `effect` as one operation of a member: a CLIENT span `<operation> <database>` (with `error.type` when it fails),
 * its duration in seconds, or a rejection when the circuit refused it.
 */
export const operation = <A, E>(labels: Labels, name: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E> => {
  const attributes = { ...labels, "db.operation.name": name }
  const labelled = tags(attributes)
  const recorded = Effect.flatMap(Clock.currentTimeNanos, (start) =>
    Effect.onExit(
      Effect.tapError(effect, (error) => Effect.annotateCurrentSpan("error.type", typeOf(error))),
      (exit) => {
        if (Exit.isSuccess(exit)) return record(labelled, start)
        if (Cause.isInterruptedOnly(exit.cause)) return Effect.void
        const error = Option.getOrElse(Cause.failureOption(exit.cause), () => Cause.squash(exit.cause))
        if (error instanceof CircuitOpenError) return Metric.increment(Metric.taggedWithLabels(rejected, labelled))
        return record([...labelled, MetricLabel.make("error.type", typeOf(error))], start)
      }
    ))
  return Effect.withSpan(recorded, `${name} ${labels["db.namespace"]}`, { kind: "client", attributes })
}

const record = (labelled: ReadonlyArray<MetricLabel.MetricLabel>, start: bigint) =>
  Effect.flatMap(
    Clock.currentTimeNanos,
    (end) => Metric.update(Metric.taggedWithLabels(duration, labelled), Number(end - start) / 1e9)
  )

/** A member's health and circuit, set after each health check. */
export const gauges = (labels: Labels, up: boolean, state: string): Effect.Effect<void> => {
  const labelled = tags(labels)
  return Effect.zipRight(
    Metric.set(Metric.taggedWithLabels(healthy, labelled), up ? 1 : 0),
    Metric.set(Metric.taggedWithLabels(circuit, labelled), circuitValue[state] ?? -1)
  )
}
