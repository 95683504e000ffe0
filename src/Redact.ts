/**
 * Credential removal for anything flexidb shows: error messages, `stats()`, hooks, logs and CLI output.
 *
 * @since 0.2.0
 */
/** Userinfo in any URL (`scheme://user:secret@host`): both parts go, the user can be a secret too. */
const urlCredentials = /([a-z][a-z0-9+.-]*:\/\/)[^/\s@]*@/gi
/** `password=…` style pairs in query strings and key-value connection strings. */
const keyValueSecrets = /\b(password|passwd|pwd|secret|token|sslpassword)=([^&\s;'"]*)/gi

/**
 * Removes credentials from text that may contain a connection string: the userinfo of any URL and
 * `password=…`-style pairs.
 *
 * @example
 * redact("postgresql://app:s3cret@db:5432/app") // "postgresql://***@db:5432/app"
 *
 * @since 0.2.0
 */
export const redact = (text: string): string =>
  text.replace(urlCredentials, "$1***@").replace(keyValueSecrets, "$1=***")

// eslint-disable-next-line no-control-regex
const ansi = /\u001b\[[0-9;]*m/g
const frameHeading = /^\s*Invalid `[^`]*` invocation/m
/** A line of Prisma's code frame: its heading, the file and position, or a numbered source line (`→ 13 await …`). */
const codeFrame = /^\s*Invalid `[^`]*` invocation(?: in)?:?\s*$|^\s*(?:file:\/\/\/?)?(?:[A-Za-z]:)?[\\/]?[^\s:]+(?:[\\/][^\s:]+)+:\d+:\d+\s*$|^(?:\s+|\s*→\s*)\d+\s/

/**
 * A one-line, credential-free summary of an error, for a log line or a message: Prisma's code frame (the
 * "Invalid `…` invocation" heading, file positions and numbered source lines) is dropped, and of what is left the last
 * paragraph, the reason, is kept, cut to `max` characters. flexidb's `lastError`, hooks and messages use it.
 *
 * @example
 * logger.warn(`order not saved: ${errorSummary(error)}`)
 *
 * @since 0.2.0
 */
export const errorSummary = (error: unknown, max = 300): string => {
  const raw = error instanceof Error ? error.message : typeof error === "string" ? error : String(error)
  // Prisma's code frame is for a terminal: "Invalid `…` invocation in", the file, and numbered lines of its source.
  const plain = raw.replace(ansi, "")
  const unframed = frameHeading.test(plain) ? plain.split("\n").filter((line) => !codeFrame.test(line)).join("\n") : plain
  const paragraphs = unframed.split(/\n\s*\n/).map((p) => p.replace(/\s+/g, " ").trim()).filter((p) => p.length > 0)
  const reason = paragraphs.at(-1) ?? (error instanceof Error ? error.name : "unknown error")
  const text = redact(reason)
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}
