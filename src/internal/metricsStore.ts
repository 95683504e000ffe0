/**
 * The series behind `metrics()`. An OpenTelemetry SDK keeps every attribute set it has seen until the process ends
 * (cumulative temporality, and asynchronous instruments too: measured with sdk-metrics 2.12), so a tenant that
 * left the top set would stay in every scrape. flexidb keeps its own few series instead — a histogram and a counter
 * per attribute set, gauges read at scrape time — and drops a tenant's series when it leaves the top set. The text
 * is still made by @opentelemetry/exporter-prometheus' serializer, from the SDK's own data shapes.
 */
import type * as Api from "@opentelemetry/api"
import type { MetricData, ResourceMetrics } from "@opentelemetry/sdk-metrics"

export interface HistogramSeries {
  readonly attributes: Api.Attributes
  readonly counts: Array<number>
  sum: number
  count: number
  min: number
  max: number
}

export interface CounterSeries {
  readonly attributes: Api.Attributes
  value: number
}

/** One gauge or up-down value read at scrape time. */
export interface Reading {
  readonly name: string
  readonly description: string
  readonly unit?: string
  /** A monotonic sum (a `_total` counter) rather than a gauge. */
  readonly counter?: boolean
  readonly points: ReadonlyArray<readonly [Api.Attributes, number]>
}

export interface Store {
  readonly histogram: (attributes: Api.Attributes) => HistogramSeries
  readonly counter: (attributes: Api.Attributes) => CounterSeries
  /** Records `seconds` into `series`. */
  readonly record: (series: HistogramSeries, seconds: number) => void
  /** Drops every series whose tenant `keep` refuses; returns how many. */
  readonly prune: (keep: (tenant: string) => boolean) => number
  /** The series as the SDK's ResourceMetrics, with `readings` as gauges and counters. */
  readonly collect: (readings: ReadonlyArray<Reading>) => ResourceMetrics
}

type Sdk = typeof import("@opentelemetry/sdk-metrics")
type Resources = typeof import("@opentelemetry/resources")

const key = (attributes: Api.Attributes) => JSON.stringify(attributes)

export const make = (
  sdk: Sdk,
  resources: Resources | undefined,
  histogram: { readonly name: string; readonly description: string; readonly unit: string; readonly boundaries: ReadonlyArray<number> },
  counter: { readonly name: string; readonly description: string }
): Store => {
  const histograms = new Map<string, HistogramSeries>()
  const counters = new Map<string, CounterSeries>()
  // The text format carries no timestamps: the points' times are never read.
  const start: Api.HrTime = [0, 0]
  const boundaries = histogram.boundaries
  const resource = resources?.defaultResource?.() ?? { attributes: {} }
  const descriptor = (name: string, description: string, unit = "", type: string) => ({
    name,
    description,
    unit,
    type,
    valueType: 1 // ValueType.DOUBLE
  })
  return {
    histogram: (attributes) => {
      const k = key(attributes)
      let series = histograms.get(k)
      if (series === undefined) {
        series = { attributes, counts: new Array(boundaries.length + 1).fill(0), sum: 0, count: 0, min: Infinity, max: -Infinity }
        histograms.set(k, series)
      }
      return series
    },
    counter: (attributes) => {
      const k = key(attributes)
      let series = counters.get(k)
      if (series === undefined) counters.set(k, series = { attributes, value: 0 })
      return series
    },
    record: (series, seconds) => {
      let i = 0
      while (i < boundaries.length && seconds > boundaries[i]!) i++
      series.counts[i]!++
      series.sum += seconds
      series.count++
      if (seconds < series.min) series.min = seconds
      if (seconds > series.max) series.max = seconds
    },
    prune: (keep) => {
      let dropped = 0
      for (const map of [histograms, counters] as Array<Map<string, { attributes: Api.Attributes }>>) {
        for (const [k, s] of map) {
          const tenant = s.attributes["flexidb.tenant"]
          if (typeof tenant === "string" && !keep(tenant)) {
            map.delete(k)
            dropped++
          }
        }
      }
      return dropped
    },
    collect: (readings) => {
      const end = start
      const metrics: Array<MetricData> = []
      if (histograms.size > 0) {
        metrics.push({
          descriptor: descriptor(histogram.name, histogram.description, histogram.unit, "HISTOGRAM"),
          aggregationTemporality: sdk.AggregationTemporality.CUMULATIVE,
          dataPointType: sdk.DataPointType.HISTOGRAM,
          dataPoints: [...histograms.values()].map((s) => ({
            startTime: start,
            endTime: end,
            attributes: s.attributes,
            value: {
              buckets: { boundaries: [...boundaries], counts: [...s.counts] },
              sum: s.sum,
              count: s.count,
              min: s.min,
              max: s.max
            }
          }))
        } as unknown as MetricData)
      }
      if (counters.size > 0) {
        metrics.push({
          descriptor: descriptor(counter.name, counter.description, "", "COUNTER"),
          aggregationTemporality: sdk.AggregationTemporality.CUMULATIVE,
          dataPointType: sdk.DataPointType.SUM,
          isMonotonic: true,
          dataPoints: [...counters.values()].map((s) => ({ startTime: start, endTime: end, attributes: s.attributes, value: s.value }))
        } as unknown as MetricData)
      }
      for (const r of readings) {
        if (r.points.length === 0) continue
        metrics.push({
          descriptor: descriptor(r.name, r.description, r.unit, r.counter === true ? "OBSERVABLE_COUNTER" : "OBSERVABLE_GAUGE"),
          aggregationTemporality: sdk.AggregationTemporality.CUMULATIVE,
          dataPointType: r.counter === true ? sdk.DataPointType.SUM : sdk.DataPointType.GAUGE,
          ...(r.counter === true ? { isMonotonic: true } : {}),
          dataPoints: r.points.map(([attributes, value]) => ({ startTime: start, endTime: end, attributes, value }))
        } as unknown as MetricData)
      }
      return {
        resource: resource as ResourceMetrics["resource"],
        scopeMetrics: [{ scope: { name: "flexidb" }, metrics }]
      }
    }
  }
}
