/** `flexidb watch`: regenerates only the schema that changed, debounced. Ctrl+C (or io.signal) stops it cleanly. */
import { watch as watchDir } from "node:fs"
import { join } from "node:path"
import type { Io } from "./io.js"
import type { Project } from "./project.js"
import { SCHEMAS_DIR } from "./project.js"
import { runAcross } from "./run.js"

const DEBOUNCE_MS = 150

export const watch = (project: Project, names: ReadonlyArray<string>, io: Io): Promise<number> =>
  new Promise((done) => {
    const pending = new Map<string, NodeJS.Timeout>()
    let running = Promise.resolve()
    const regenerate = (name: string) => {
      running = running.then(async () => {
        io.out(`\n${name}.prisma changed`)
        await runAcross(project, [name], {
          command: ["generate"],
          extra: [],
          needsUrl: false,
          interactive: false,
          json: false,
          concurrency: 1
        }, io)
      })
    }
    const watcher = watchDir(join(project.root, SCHEMAS_DIR), (_event, file) => {
      const name = file?.toString().replace(/\.prisma$/, "")
      if (name === undefined || !file!.toString().endsWith(".prisma") || !names.includes(name)) return
      clearTimeout(pending.get(name))
      pending.set(name, setTimeout(() => {
        pending.delete(name)
        regenerate(name)
      }, DEBOUNCE_MS))
    })
    const stop = () => {
      watcher.close()
      for (const t of pending.values()) clearTimeout(t)
      process.off("SIGINT", stop)
      void running.then(() => {
        io.out("watch stopped")
        done(0)
      })
    }
    process.once("SIGINT", stop)
    io.signal?.addEventListener("abort", stop, { once: true })
    io.out(`Watching ${SCHEMAS_DIR}/ (${names.join(", ")}); Ctrl+C stops.`)
  })
