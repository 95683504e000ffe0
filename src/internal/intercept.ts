/**
 * How flexidb sees every operation of a client it hands out.
 *
 * Prisma sends each operation — a model call, a raw query (tagged, Unsafe or typed), each item of
 * `$transaction([...])`, each call on an interactive transaction's client — through its client's `_request` method,
 * once, before the query is built (Prisma 6.19 and 7, every engine). Its `$extends` query hook runs inside that
 * method and costs, on every query: a deep copy of the arguments, two more Prisma promises, a key string, and a walk
 * over the result rows once any extension is there (BENCHMARKS.md). So the client flexidb hands out is Prisma's own
 * client one layer down: an object inheriting from the app's client whose `_request` runs flexidb's hook first and
 * then Prisma's, with no extension added. Extensions the app adds to it later (`$extends`) build on that layer and
 * keep the hook; the app's own client is left as it was.
 *
 * The layer reads three of Prisma's internals (`_request`, `_originalClient`, `_extensions`), the way flexidb already
 * reads the driver adapter (idleCheck.ts). A client without them (another Prisma, a test double) gets the same hook
 * through `$extends`, as before; so does a client the app (or flexidb's tenants, catalog/cut.ts) has extended: its
 * query hooks and result extensions keep running around flexidb's, as they always have, and a read re-run sends
 * only Prisma's query again, not their work.
 */
import type { PrismaClientLike } from "../Client.js"

/**
 * One operation, as the hook sees it: the shape of Prisma's `$extends` query hook, which the fallback uses. Through
 * the layer, `args` is the caller's own object (no copy; undefined for a call without arguments): read it, never
 * change it.
 */
export interface Hook {
  readonly model?: string
  readonly operation: string
  readonly args: unknown
  /** Sends the operation (again, for a read re-run): Prisma's own request with these arguments. */
  readonly query: (args: unknown) => PromiseLike<unknown>
  /** Prisma's request: `transaction` is set inside `$transaction`. */
  readonly __internalParams?: { readonly transaction?: unknown }
}

export type Handler = (hook: Hook) => PromiseLike<unknown>

/** Prisma's request parameters, as far as the hook reads them. */
interface Request {
  readonly model?: string
  readonly action: string
  readonly clientMethod: string
  readonly args: unknown
  readonly transaction?: unknown
}

interface Internals {
  _request(this: unknown, request: Request): Promise<unknown>
  _originalClient: object
  _extensions: { isEmpty(): boolean }
  $extends(this: unknown, extension: object): PrismaClientLike
}

/** A Prisma client of the shape the layer reads, with no extension of the app's. */
const hasInternals = (client: unknown): client is Internals => {
  const c = client as Partial<Internals>
  return typeof c._request === "function" && typeof c._originalClient === "object" && c._originalClient !== null &&
    typeof c._extensions?.isEmpty === "function" && c._extensions.isEmpty() && typeof c.$extends === "function"
}

/** The fallback: Prisma's `$extends` query hook, which every peer uses. */
const viaExtends = (client: PrismaClientLike, handler: Handler): PrismaClientLike =>
  client.$extends({ name: "flexidb", query: { $allOperations: handler } }) as PrismaClientLike

/** `client`, with `handler` around each of its operations. */
export const intercept = (client: PrismaClientLike, handler: Handler): PrismaClientLike => {
  if (!hasInternals(client)) return viaExtends(client, handler)
  const request = client._request
  const layer = Object.create(client._originalClient) as Record<string, unknown>
  Object.defineProperties(layer, {
    // An extension of the handed-out client (`$extends`) builds on the layer, so it keeps the hook.
    _originalClient: { value: layer },
    // Writable, as on Prisma's own client: an APM or a spy may wrap it in turn.
    _request: {
      writable: true,
      configurable: true,
      value: function(this: unknown, params: Request) {
        // `this` is the client the call came through: the handed-out one, an extension of it, or a transaction's.
        const self = this
        return handler({
          model: params.model,
          operation: params.model !== undefined ? params.action : params.clientMethod,
          args: params.args,
          query: (args) => request.call(self, args === params.args ? params : { ...params, args }),
          __internalParams: params
        })
      }
    }
  })
  // Prisma's own `$extends` builds the client over the layer (its models, its `$transaction`), with no extension
  // added: `append` gives the (empty) list back unchanged.
  const extensions = client._extensions
  const from = Object.create(client as object, {
    _originalClient: { value: layer },
    _extensions: { value: Object.create(extensions, { append: { value: () => extensions } }) }
  }) as unknown
  const out = client.$extends.call(from, {})
  // Its parent (an extension's `$parent`) is the app's client.
  Object.defineProperty(out, "_appliedParent", { value: client, configurable: true })
  return out
}

/** Which way `intercept` takes for this client (tests). */
export const interceptPath = (client: unknown): "layer" | "extends" => (hasInternals(client) ? "layer" : "extends")
