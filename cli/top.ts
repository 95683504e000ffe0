/**
 * `flexidb top --url http://host:port/metrics` (repeatable): a live view of one flexidb instance or several, read
 * from their Prometheus endpoints (`metricsHandler()` or `prometheus: { port }`). Per database and member: health,
 * circuit, operations per second, p50 and p99, errors, pool in use and waiting; per instance the tenant cache.
 * In a terminal it redraws every second, sorted by a key you press, until `q`; otherwise (or with `--once`) it
 * prints one view, as plain text or (`--json`) one JSON document with the same numbers.
 */
import { Command, Options } from "@effect/cli"
import Table from "cli-table3"
import { Effect } from "effect"
import { CliError } from "./error.js"
import { Io } from "./io.js"

interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** The samples of a Prometheus text exposition. */
export const parseExposition = (text: string): Array<Sample> => {
  const samples: Array<Sample> = []
  for (const line of text.split("\n")) {
    if (line.length === 0 || line.startsWith("#")) continue
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line)
    if (m === null) continue
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]!] = l[2]!.replace(/\\n/g, "\n").replace(/\\(.)/g, "$1")
    }
    samples.push({ name: m[1]!, labels, value: m[3] === "+Inf" ? Infinity : Number(m[3]) })
  }
  return samples
}

/** One scrape of one instance: when, and what it said (or why it could not be read). */
interface Scrape {
  readonly url: string
  readonly atMs: number
  readonly samples: ReadonlyArray<Sample> | undefined
  readonly error: string | undefined
}

/** A member of a database, as shown on one row. */
export interface MemberView {
  readonly instance: string
  readonly database: string
  readonly role: string
  readonly member: number
  /** 1/0 for a member; for `other` tenants, how many of them are healthy; null when it has no gauges (a tenant closed since). */
  readonly healthy: number | null
  readonly circuit: "closed" | "half-open" | "open" | null
  /** Operations per second between the last two scrapes; null on the first. */
  readonly opsPerSecond: number | null
  /** Seconds, from the histogram of the last interval (or since start when nothing ran in it); null without data. */
  readonly p50: number | null
  readonly p99: number | null
  /** Failed operations since start (by error.type), and refusals by the open circuit. */
  readonly errors: number
  readonly rejected: number
  readonly pool: { readonly used: number; readonly idle: number; readonly waiting: number } | null
}

export interface InstanceView {
  readonly url: string
  readonly error: string | null
  readonly members: ReadonlyArray<MemberView>
  readonly tenants: {
    readonly resident: number
    readonly leased: number
    readonly waiting: number
    readonly hits: number
    readonly misses: number
    readonly evictions: number
    /** hits / (hits + misses) since start; null before any. */
    readonly hitRate: number | null
  } | null
}

const circuits = ["closed", "half-open", "open"] as const

const scrape = (url: string): Effect.Effect<Scrape> =>
  Effect.promise(async () => {
    const atMs = performance.now()
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000), headers: { accept: "text/plain" } })
      const text = await response.text()
      if (!response.ok) return { url, atMs, samples: undefined, error: `HTTP ${response.status}: ${text.trim().slice(0, 200)}` }
      return { url, atMs, samples: parseExposition(text), error: undefined }
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code
      return { url, atMs, samples: undefined, error: cause ?? (error instanceof Error ? error.message : String(error)) }
    }
  })

const memberKey = (l: Readonly<Record<string, string>>, name = l.db_namespace) =>
  `${name}\u0000${l.flexidb_role ?? "write"}\u0000${l.flexidb_member ?? "0"}`

/** Prometheus' histogram_quantile over cumulative buckets `[le, count]`, sorted by le. */
const quantile = (q: number, buckets: ReadonlyArray<readonly [number, number]>): number | null => {
  const total = buckets.at(-1)?.[1] ?? 0
  if (total <= 0) return null
  const rank = q * total
  let lower = 0
  let below = 0
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return lower
      return lower + (le - lower) * ((rank - below) / Math.max(count - below, 1e-12))
    }
    lower = le
    below = count
  }
  return lower
}

interface Totals {
  count: number
  errors: number
  rejected: number
  readonly buckets: Map<number, number>
}

const totals = (samples: ReadonlyArray<Sample>) => {
  const byMember = new Map<string, Totals>()
  const of = (key: string) => {
    let t = byMember.get(key)
    if (t === undefined) byMember.set(key, t = { count: 0, errors: 0, rejected: 0, buckets: new Map() })
    return t
  }
  for (const s of samples) {
    if (s.name === "db_client_operation_duration_count") {
      const t = of(memberKey(s.labels))
      t.count += s.value
      if (s.labels.error_type !== undefined) t.errors += s.value
    } else if (s.name === "db_client_operation_duration_bucket") {
      const t = of(memberKey(s.labels))
      const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le)
      t.buckets.set(le, (t.buckets.get(le) ?? 0) + s.value)
    } else if (s.name === "flexidb_operations_rejected_total") {
      of(memberKey(s.labels)).rejected += s.value
    }
  }
  return byMember
}

const sortedBuckets = (buckets: ReadonlyMap<number, number>, minus?: ReadonlyMap<number, number>) =>
  [...buckets].map(([le, n]) => [le, n - (minus?.get(le) ?? 0)] as const).sort((a, b) => a[0] - b[0])

/** The view of one instance from its last scrape and the one before (for rates). */
export const view = (now: Scrape, before: Scrape | undefined): InstanceView => {
  if (now.samples === undefined) return { url: now.url, error: now.error ?? "no answer", members: [], tenants: null }
  const samples = now.samples
  const current = totals(samples)
  const previous = before?.samples === undefined ? undefined : totals(before.samples)
  const seconds = before === undefined ? 0 : (now.atMs - before.atMs) / 1000
  const members = new Map<string, { healthy: number | null; circuit: MemberView["circuit"]; pool: { used: number; idle: number; waiting: number } | null; labels: Record<string, string> }>()
  const member = (key: string, labels: Readonly<Record<string, string>>) => {
    let m = members.get(key)
    if (m === undefined) members.set(key, m = { healthy: null, circuit: null, pool: null, labels: { ...labels } })
    return m
  }
  for (const s of samples) {
    if (s.name === "flexidb_member_healthy") member(memberKey(s.labels), s.labels).healthy = s.value
    else if (s.name === "flexidb_circuit_state") member(memberKey(s.labels), s.labels).circuit = circuits[s.value] ?? null
    else if (s.name === "db_client_connection_count" || s.name === "db_client_connection_pending_requests") {
      const name = s.labels.db_client_connection_pool_name
      if (name === undefined) continue
      const m = member(memberKey(s.labels, name), { ...s.labels, db_namespace: name })
      const pool = m.pool ??= { used: 0, idle: 0, waiting: 0 }
      if (s.name === "db_client_connection_pending_requests") pool.waiting = s.value
      else if (s.labels.db_client_connection_state === "used") pool.used = s.value
      else if (s.labels.db_client_connection_state === "idle") pool.idle = s.value
    }
  }
  // A member seen only through its operations (no gauges yet) still gets a row.
  for (const [key, t] of current) if (t.count > 0 || t.rejected > 0) member(key, Object.fromEntries(zipKey(key)))
  const rows: Array<MemberView> = [...members].map(([key, m]) => {
    const t = current.get(key)
    const p = previous?.get(key)
    const delta = t === undefined ? 0 : t.count - (p?.count ?? 0)
    // The last interval's latencies when anything ran in it, else since start.
    const buckets = t === undefined ? [] : sortedBuckets(t.buckets, p !== undefined && delta > 0 ? p.buckets : undefined)
    return {
      instance: now.url,
      database: m.labels.db_namespace ?? "?",
      role: m.labels.flexidb_role ?? "write",
      member: Number(m.labels.flexidb_member ?? 0),
      healthy: m.healthy,
      circuit: m.circuit,
      opsPerSecond: previous === undefined || seconds <= 0 ? null : Math.max(0, delta) / seconds,
      p50: quantile(0.5, buckets),
      p99: quantile(0.99, buckets),
      errors: t?.errors ?? 0,
      rejected: t?.rejected ?? 0,
      pool: m.pool
    }
  })
  const value = (name: string) => samples.find((s) => s.name === name)?.value
  const resident = value("flexidb_tenants_resident")
  const hits = value("flexidb_tenants_hits_total") ?? 0
  const misses = value("flexidb_tenants_misses_total") ?? 0
  return {
    url: now.url,
    error: null,
    members: rows,
    tenants: resident === undefined ? null : {
      resident,
      leased: value("flexidb_tenants_leased") ?? 0,
      waiting: value("flexidb_tenants_waiting") ?? 0,
      hits,
      misses,
      evictions: value("flexidb_tenants_evictions_total") ?? 0,
      hitRate: hits + misses === 0 ? null : hits / (hits + misses)
    }
  }
}

const zipKey = (key: string) => {
  const [database, role, member] = key.split("\u0000")
  return [["db_namespace", database!], ["flexidb_role", role!], ["flexidb_member", member!]] as const
}

/** The sort keys: the key to press, and the order it gives. */
export const sortKeys = {
  o: { name: "ops/s", compare: (a: MemberView, b: MemberView) => (b.opsPerSecond ?? -1) - (a.opsPerSecond ?? -1) },
  p: { name: "p99", compare: (a: MemberView, b: MemberView) => (b.p99 ?? -1) - (a.p99 ?? -1) },
  e: { name: "errors", compare: (a: MemberView, b: MemberView) => b.errors + b.rejected - (a.errors + a.rejected) },
  h: { name: "health", compare: (a: MemberView, b: MemberView) => (a.healthy ?? 2) - (b.healthy ?? 2) },
  c: {
    name: "circuit",
    compare: (a: MemberView, b: MemberView) => circuits.indexOf(b.circuit as never) - circuits.indexOf(a.circuit as never)
  },
  n: { name: "name", compare: (a: MemberView, b: MemberView) => (a.database < b.database ? -1 : a.database > b.database ? 1 : a.member - b.member) }
} as const
export type SortKey = keyof typeof sortKeys

const ms = (s: number | null) => (s === null ? "-" : (s * 1000).toFixed(s < 0.01 ? 2 : 1))
const rate = (r: number | null) => (r === null ? "-" : r.toFixed(r < 10 ? 1 : 0))

/** The view as text: one table of members, then a line per instance for its tenants. */
export const render = (instances: ReadonlyArray<InstanceView>, sort: SortKey, color: boolean): string => {
  const several = instances.length > 1
  const table = new Table({
    head: [...(several ? ["instance"] : []), "database", "member", "health", "circuit", "ops/s", "p50 ms", "p99 ms", "errors", "pool used/idle", "waiting"],
    style: { head: color ? ["cyan"] : [], border: color ? ["grey"] : [], compact: true },
    colAligns: [...(several ? ["left" as const] : []), "left", "left", "left", "left", "right", "right", "right", "right", "right", "right"]
  })
  const rows = instances.flatMap((i) => i.members).sort((a, b) => sortKeys[sort].compare(a, b) || sortKeys.n.compare(a, b))
  for (const m of rows) {
    table.push([
      ...(several ? [m.instance] : []),
      m.database,
      `${m.role} ${m.member}`,
      m.healthy === null ? "-" : m.database === "other" ? `${m.healthy} up` : m.healthy > 0 ? "up" : "DOWN",
      m.circuit ?? "-",
      rate(m.opsPerSecond),
      ms(m.p50),
      ms(m.p99),
      m.rejected > 0 ? `${m.errors} (+${m.rejected} refused)` : String(m.errors),
      m.pool === null ? "-" : `${m.pool.used}/${m.pool.idle}`,
      m.pool === null ? "-" : String(m.pool.waiting)
    ])
  }
  const lines = [table.toString()]
  for (const i of instances) {
    const where = several ? `${i.url}: ` : ""
    if (i.error !== null) lines.push(`${where}unreachable (${i.error})`)
    else if (i.tenants !== null) {
      const t = i.tenants
      lines.push(
        `${where}tenants: ${t.resident} resident, ${t.leased} leased, ${t.waiting} waiting; hit rate ${
          t.hitRate === null ? "-" : `${(t.hitRate * 100).toFixed(1)} %`
        } (${t.hits} hits, ${t.misses} misses), ${t.evictions} evictions`
      )
    }
  }
  return lines.join("\n")
}

/** Two scrapes of every instance a second apart: the view with rates. */
const once = (urls: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const first = yield* Effect.forEach(urls, scrape, { concurrency: "unbounded" })
    yield* Effect.sleep("1 second")
    const second = yield* Effect.forEach(urls, scrape, { concurrency: "unbounded" })
    return second.map((s, i) => view(s, first[i]))
  })

const header = (urls: ReadonlyArray<string>, sort: SortKey) =>
  `flexidb top: ${urls.length === 1 ? urls[0] : `${urls.length} instances`}, sorted by ${sortKeys[sort].name}` +
  `  [${Object.entries(sortKeys).map(([k, v]) => `${k} ${v.name}`).join(", ")}, q quit]`

/** The live view: redraws every second on the alternate screen until `q` (or Ctrl+C). */
const live = (urls: ReadonlyArray<string>, color: boolean) =>
  Effect.async<void>((resume) => {
    const out = process.stdout
    const input = process.stdin
    let sort: SortKey = "o"
    let last: Array<Scrape> | undefined
    let shown: ReadonlyArray<InstanceView> = []
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const draw = () => out.write(`\x1b[H\x1b[2J${header(urls, sort)}\n${render(shown, sort, color)}\n`)
    const tick = () => {
      Effect.runPromise(Effect.forEach(urls, scrape, { concurrency: "unbounded" })).then((now) => {
        if (stopped) return
        shown = now.map((s, i) => view(s, last?.[i]))
        last = now
        draw()
        timer = setTimeout(tick, 1000)
      })
    }
    const stop = () => {
      if (stopped) return
      stopped = true
      clearTimeout(timer)
      input.off("data", onKey)
      input.setRawMode?.(false)
      input.pause()
      out.write("\x1b[?25h\x1b[?1049l")
    }
    const onKey = (key: string) => {
      if (key === "q" || key === "\u0003") {
        stop()
        return resume(Effect.void)
      }
      if (key in sortKeys) {
        sort = key as SortKey
        draw()
      }
    }
    out.write("\x1b[?1049h\x1b[?25l")
    input.setRawMode?.(true)
    input.setEncoding("utf8")
    input.on("data", onKey)
    input.resume()
    tick()
    return Effect.sync(stop)
  })

/** The `top` command's handler. */
export const top = (options: { readonly urls: ReadonlyArray<string>; readonly once: boolean; readonly json: boolean }) =>
  Effect.gen(function*() {
    const io = yield* Io
    const urls = options.urls.map((u) => (/^https?:\/\//.test(u) ? u : `http://${u}`))
    for (const u of urls) {
      if (!URL.canParse(u)) return yield* Effect.fail(new CliError(`--url ${u} is not a URL: give http://host:port/metrics`, { exitCode: 2 }))
    }
    const terminal = io.color?.out === true && process.stdin.isTTY === true && process.stdout.isTTY === true
    if (!options.once && !options.json && terminal) return yield* live(urls, true)
    const instances = yield* once(urls)
    io.out(options.json ? JSON.stringify({ instances }, null, 2) : render(instances, "o", false))
    if (instances.every((i) => i.error !== null)) {
      return yield* Effect.fail(new CliError(`no instance answered: ${instances.map((i) => `${i.url} (${i.error})`).join(", ")}`))
    }
  })

/** `flexidb top`, registered in main.ts. */
export const topCommand = Command.make("top", {
  urls: Options.text("url").pipe(
    Options.withDescription("A flexidb metrics endpoint, http://host:port/metrics (repeat for several instances)"),
    Options.atLeast(1)
  ),
  once: Options.boolean("once").pipe(Options.withDescription("Print one view and exit (the default when not a terminal)")),
  json: Options.boolean("json").pipe(Options.withDescription("With --once: one JSON document with the same numbers"))
}, (o) => top(o)).pipe(
  Command.withDescription("A live view of flexidb instances from their /metrics: health, circuits, ops/s, p50/p99, errors, pools, tenants")
)
