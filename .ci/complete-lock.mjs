// npm leaves out of package-lock.json the optional platform packages (rollup's and msgpackr-extract's builds for
// other operating systems) that the registry mirror on our machines does not hold; `npm ci` then refuses the lock.
// This adds the entries npm writes against the full registry: name, version, os/cpu, optional. On a machine of
// that platform npm fetches them by name and version; on ours it skips them. Run after `npm install`:
//   node .ci/complete-lock.mjs [dir]
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"

const dir = process.argv[2] ?? "."
const file = join(dir, "package-lock.json")
const lock = JSON.parse(readFileSync(file, "utf8"))
const packages = lock.packages

const platform = (name) => {
  const tail = name.split("/").pop()
  const os = ["android", "darwin", "freebsd", "linux", "openbsd", "openharmony", "win32", "sunos", "aix"].find((o) => tail.includes(`-${o}-`))
  const cpu = ["arm64", "arm", "x64", "ia32", "loong64", "ppc64", "riscv64", "s390x"].find((c) => tail.includes(`-${c}`))
  const libc = /-(musl|gnu)(eabihf)?$/.exec(tail)?.[1] ?? (tail.includes("musleabihf") ? "musl" : undefined)
  return { os, cpu, libc: os === "linux" ? libc : undefined }
}

let added = 0
for (const [path, meta] of Object.entries(packages)) {
  for (const [dep, version] of Object.entries(meta.optionalDependencies ?? {})) {
    const base = path === "" ? "" : `${path}/`
    if (packages[`${base}node_modules/${dep}`] || packages[`node_modules/${dep}`]) continue
    const { cpu, libc, os } = platform(dep)
    if (!os || !cpu) continue
    packages[`node_modules/${dep}`] = {
      version,
      cpu: [cpu],
      license: meta.license ?? "MIT",
      ...(libc && { libc: [libc === "gnu" ? "glibc" : "musl"] }),
      optional: true,
      os: [os]
    }
    added++
  }
}
lock.packages = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : 1)))
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`)
console.log(`${file}: added ${added} optional platform entries`)
