/**
 * SIGINT/SIGTERM handling shared by every instance in the process: one listener per signal while any instance
 * wants it. On a signal every instance disconnects; then, unless the app listens for that signal itself, the
 * signal is raised again with our listener gone, so the process ends exactly as it would have without flexidb.
 */
const signals = ["SIGINT", "SIGTERM"] as const
type Signal = (typeof signals)[number]

const closers = new Set<() => Promise<void>>()

const onSignal = (signal: Signal) => {
  const pending = [...closers]
  closers.clear()
  uninstall()
  void Promise.allSettled(pending.map((close) => close())).then(() => {
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
  })
}

const listeners: Record<Signal, () => void> = { SIGINT: () => onSignal("SIGINT"), SIGTERM: () => onSignal("SIGTERM") }
let installed = false

const uninstall = () => {
  if (!installed) return
  installed = false
  for (const s of signals) process.removeListener(s, listeners[s])
}

/** Disconnects `close` on SIGINT/SIGTERM; the returned function cancels that. */
export const closeOnSignal = (close: () => Promise<void>): () => void => {
  closers.add(close)
  if (!installed) {
    installed = true
    for (const s of signals) process.on(s, listeners[s])
  }
  return () => {
    closers.delete(close)
    if (closers.size === 0) uninstall()
  }
}
