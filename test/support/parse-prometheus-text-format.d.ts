// The parser ships no types: what the tests read of its output.
declare module "parse-prometheus-text-format" {
  interface Family {
    readonly name: string
    readonly help: string
    readonly type: "COUNTER" | "GAUGE" | "HISTOGRAM" | "SUMMARY" | "UNTYPED"
    readonly metrics: ReadonlyArray<{ readonly value?: string; readonly labels?: Record<string, string> }>
  }
  export default function parse(text: string): Array<Family>
}
