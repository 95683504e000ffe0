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

/**
 * @internal A one-line, credential-free summary of an error for `lastError`, hooks and messages. Prisma messages put a
 * code frame before the reason, separated by a blank line: the last paragraph is the reason.
 */
export const errorSummary = (error: unknown, max = 300): string => {
  const raw = error instanceof Error ? error.message : typeof error === "string" ? error : String(error)
  const paragraphs = raw.split(/\n\s*\n/).map((p) => p.replace(/\s+/g, " ").trim()).filter((p) => p.length > 0)
  const reason = paragraphs.at(-1) ?? (error instanceof Error ? error.name : "unknown error")
  const text = redact(reason)
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}
