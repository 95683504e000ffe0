// A TCP proxy between flexidb and a real database server that tests control: it can drop every connection,
// refuse new ones, accept but never answer (a hung database), blackhole the open ones (a load balancer's or NAT's idle
// timeout: no FIN, no reset, nothing ever arrives again), add latency, and come back. Loopback only.
import net from "node:net"

type Mode = "pass" | "hang" | "blackhole"

export class FaultProxy {
  private mode: Mode = "pass"
  private latencyMs = 0
  private listening = true
  private readonly sockets = new Set<net.Socket>()
  /** Client sockets whose connection is blackholed for good: nothing forwarded either way, never closed. */
  private readonly dead = new WeakSet<net.Socket>()

  private constructor(private readonly server: net.Server, readonly port: number, private readonly target: number) {}

  static start(targetPort: number): Promise<FaultProxy> {
    return new Promise((resolve, reject) => {
      const server = net.createServer()
      server.once("error", reject)
      server.listen(0, "127.0.0.1", () => {
        const proxy = new FaultProxy(server, (server.address() as net.AddressInfo).port, targetPort)
        server.on("connection", (c) => proxy.accept(c))
        resolve(proxy)
      })
    })
  }

  private track(socket: net.Socket) {
    this.sockets.add(socket)
    socket.on("close", () => this.sockets.delete(socket))
    socket.on("error", () => socket.destroy())
  }

  private accept(client: net.Socket) {
    this.track(client)
    if (this.mode === "hang") return // accepted, never answered
    if (this.mode === "blackhole") {
      this.dead.add(client) // accepted, then nothing, forever
      return
    }
    const upstream = net.connect(this.target, "127.0.0.1")
    this.track(upstream)
    const forward = (from: net.Socket, to: net.Socket) =>
      from.on("data", (chunk) => {
        if (this.mode === "hang") return // a hung server swallows everything
        if (this.dead.has(client)) return // blackholed: swallowed both ways, the sockets stay open
        if (this.latencyMs === 0) to.write(chunk)
        else setTimeout(() => to.writable && to.write(chunk), this.latencyMs)
      })
    forward(client, upstream)
    forward(upstream, client)
    client.on("close", () => upstream.destroy())
    upstream.on("close", () => client.destroy())
  }

  /** Resets every open connection, as a crashed server or a broken network does. */
  dropAll() {
    for (const s of this.sockets) s.destroy()
  }

  /** Stops listening (new connections get ECONNREFUSED) and drops the open ones. */
  async refuse() {
    if (this.listening) {
      this.listening = false
      await new Promise<void>((r) => {
        this.server.close(() => r())
        this.dropAll()
      })
    }
  }

  /** Accepts connections and keeps the open ones, but nothing is ever answered. */
  hang() {
    this.mode = "hang"
  }

  /**
   * Every open connection goes silent for good, as when a load balancer or NAT forgets it: nothing is forwarded either
   * way and neither end is closed or reset, not even by restore(). New connections while blackholed are accepted and
   * silent too; after restore() new ones pass again.
   */
  blackhole() {
    this.mode = "blackhole"
    for (const s of this.sockets) this.dead.add(s)
  }

  latency(ms: number) {
    this.latencyMs = ms
  }

  /** Serves normally again; connections left broken by a hang are reset (blackholed ones stay silent and open). */
  async restore() {
    if (this.mode === "hang") this.dropAll()
    this.mode = "pass"
    this.latencyMs = 0
    if (!this.listening) {
      await new Promise<void>((resolve, reject) => {
        this.server.once("error", reject)
        this.server.listen(this.port, "127.0.0.1", () => {
          this.server.removeListener("error", reject) // or one more is left behind each refuse/restore
          resolve()
        })
      })
      this.listening = true
    }
  }

  async close() {
    this.dropAll()
    if (this.listening) await new Promise<void>((r) => this.server.close(() => r()))
    this.listening = false
  }
}
