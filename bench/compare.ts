// Instruction counts of two trees side by side in one run (issue 21: "before/after, same run"): bench/count.ts of
// this tree and of another checkout (its src/, with this tree's count.ts copied beside it), variant by variant.
// Usage: node --import tsx bench/compare.ts <before-tree> [repeats]
import { join } from "node:path"
import * as prisma7 from "../test/fixtures/prisma7/clients.ts"
import { createDatabase } from "../test/support/databases.js"
import * as instructions from "./instructions.js"

const [before, repeats = "2"] = process.argv.slice(2)
if (before === undefined) throw new Error("usage: bench/compare.ts <before-tree> [repeats]")
const db = await createDatabase("sqlite")
const client = prisma7.sqlite(db.url)
await client.user.create({ data: { id: 1, email: "bench@x.io", name: "Bench" } })
await client.$disconnect()
const variants = ["raw", "extends", "get", "middleware", "batch", "bare"] as const
const runs = variants.map((v) => [v, "default"] as const)
const options = { repeats: Number(repeats) }
const old = await instructions.countAll(db.url, runs, { ...options, script: join(before, "bench", "count.ts") })
const now = await instructions.countAll(db.url, [...runs, ["raw2", "default"], ["adapter", "default"]], options)
await db.drop()
const k = (n: number) => `${(n / 1000).toFixed(1)} k`
const of = (xs: typeof now, v: string) => xs.find((c) => c.variant === v)!.perQuery
for (const [label, xs] of [["before", old], ["after", now]] as const) {
  const raw = of(xs, "raw")
  console.log(`${label}:`)
  for (const c of xs) {
    console.log(`  ${c.variant.padEnd(10)} ${k(c.perQuery).padStart(9)}  ${(c.perQuery / raw).toFixed(3)}× raw  spread ${(c.spread * 100).toFixed(1)} %`)
  }
  console.log(`  get ÷ extends ${(of(xs, "get") / of(xs, "extends")).toFixed(3)}, middleware ÷ get ${(of(xs, "middleware") / of(xs, "get")).toFixed(3)}, batch ÷ raw ${(of(xs, "batch") / raw).toFixed(3)}, bare ÷ raw ${(of(xs, "bare") / raw).toFixed(3)}`)
}
console.log(`adapter prototype ÷ its own raw: ${(of(now, "adapter") / of(now, "raw2")).toFixed(3)} (${k(of(now, "adapter"))} / ${k(of(now, "raw2"))})`)
