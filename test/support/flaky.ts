import type { PrismaClientLike } from "../../src/index.js"

/**
 * A real client whose `$connect` fails `failures` times with ECONNREFUSED first: a fault no real database can
 * produce on demand. Everything else is the real client.
 */
export const flaky = <C extends PrismaClientLike>(client: C, failures: number) => {
  const state = { calls: 0, failures }
  const proxy = new Proxy(client, {
    get(target, key) {
      if (key === "$connect") {
        return () => {
          state.calls++
          return state.calls <= state.failures
            ? Promise.reject(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" }))
            : target.$connect()
        }
      }
      const value = Reflect.get(target, key, target)
      return typeof value === "function" ? value.bind(target) : value
    }
  })
  return { client: proxy, state }
}
