/**
 * What an accepted connection is, decided once per connection as Envoy's listener does:
 * the destination port (where a captured connection was going, from SO_ORIGINAL_DST, or
 * the listener's own port), then — when a filter chain matches on them — the TLS
 * ClientHello's server name and ALPN, read without terminating TLS (tls_inspector). The
 * chosen chain is a TCP proxy or an HTTP connection manager; HTTP connections are then
 * told apart as HTTP/1.1 or HTTP/2 by their first bytes. A chain with a TLS context
 * terminates TLS first (tls/termination.ts) and serves the decrypted connection alike,
 * in a `secure` context of its own.
 *
 * The sidecar's outbound listener is an HTTP proxy that routes each request by its own
 * port; a connection captured there for a TCP service (its original port has a TCP chain)
 * is proxied as TCP.
 */
import type { Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { type ChainAction, chooseChain, type HttpChain, needsClientHello, type ListenerRuntime } from './config/listeners.js';
import type { ListenContext } from './http/context.js';
import { drainConnection, serveConnection } from './http/h1-proxy.js';
import { drainH2Connection, H2Listener } from './http/h2/h2-server.js';
import { sniffConnection, type SniffHandlers } from './http/h2/h2-sniff.js';
import { originalDestination } from './listener/fast-accept.js';
import { serveTcpConnection } from './tcp/tcp-proxy.js';
import { peekFirstBytes } from './first-bytes.js';
import { type ClientHelloInfo, type HelloResult, inspectClientHello } from './tls/client-hello.js';
import { isTlsCarrier, terminate, terminationServer } from './tls/termination.js';
import type { DownstreamTls } from './tls/tls-context.js';

/** Envoy's default listener_filters_timeout: a client that sends no ClientHello by then is closed. */
export const HELLO_TIMEOUT_MS = 15_000;

/** The context and HTTP handlers of one destination port of a listener (plaintext, or TLS terminated). */
interface PortView {
  readonly ctx: ListenContext;
  readonly http: SniffHandlers;
  /** The terminating server of each chain TLS context seen on this port; a new configuration's contexts get new ones. */
  readonly tlsServers: WeakMap<DownstreamTls, TlsServer>;
}

/** One listener's connection dispatch; contexts per destination port share its connection set. */
export class ListenerDispatch {
  readonly #base: ListenContext;
  readonly #views = new Map<number, PortView>();
  /**
   * Connections whose TLS this proxy terminates (`secure` contexts), by port and chain:
   * the ClientHello chose the chain, so their requests use its routes.
   */
  readonly #secureViews = new Map<string, PortView>();

  constructor(base: ListenContext) {
    this.#base = base;
    this.#views.set(base.destinationPort, view(base));
  }

  /** Every open connection of the listener. */
  get connections(): Set<Socket> {
    return this.#base.connections;
  }

  /** Takes an accepted connection. */
  accept(socket: Socket): void {
    const base = this.#base;
    const listener = base.config.current.listeners.get(base.listenerName);
    const orig = originalDestination(socket);
    // A connection the kernel did not redirect has itself as "original" destination.
    const port = orig !== undefined && orig.port !== socket.localPort ? orig.port : undefined;
    if (base.mode === 'outbound') {
      const chain = port === undefined || listener === undefined ? null : chooseChain(listener, port, undefined, undefined);
      if (chain !== null && chain.kind === 'tcp') serveTcpConnection(socket, this.#view(port as number).ctx, chain);
      else sniffConnection(socket, (this.#views.get(base.destinationPort) as PortView).http);
      return;
    }
    const destination = port ?? base.destinationPort;
    if (listener !== undefined && needsClientHello(listener)) readHello(socket, this, listener, destination);
    else this.route(socket, listener, destination, undefined);
  }

  /** Serves `socket` by the chain for its destination port and ClientHello. */
  route(socket: Socket, listener: ListenerRuntime | undefined, port: number, hello: ClientHelloInfo | undefined): void {
    const chain = listener === undefined ? null : chooseChain(listener, port, hello?.serverName, hello?.alpn);
    if (chain === null) {
      // Envoy closes a connection no filter chain matches (listener stat no_filter_chain_match).
      this.#base.log.debug('no filter chain matches the connection', { listener: this.#base.listenerName, port, serverName: hello?.serverName });
      socket.destroy();
      return;
    }
    if (chain.tls !== null) {
      terminate(socket, this.#tlsServer(this.#secureView(port, chain), chain, chain.tls));
      return;
    }
    const v = this.#view(port);
    if (chain.kind === 'tcp') serveTcpConnection(socket, v.ctx, chain);
    else sniffConnection(socket, v.http);
  }

  /** Marks every context draining and closes idle connections (in-flight ones close after their response). */
  drain(): void {
    for (const v of this.#views.values()) (v.ctx as { draining: boolean }).draining = true;
    for (const v of this.#secureViews.values()) (v.ctx as { draining: boolean }).draining = true;
    for (const s of this.#base.connections) {
      // A terminated connection is drained through its TLS socket, which is in the set too.
      if (isTlsCarrier(s)) continue;
      if (!drainH2Connection(s)) drainConnection(s);
    }
  }

  #view(port: number): PortView {
    let v = this.#views.get(port);
    if (v === undefined) {
      v = view({ ...this.#base, destinationPort: port, draining: this.#base.draining });
      this.#views.set(port, v);
    }
    return v;
  }

  /** The secure view of `chain` on `port`; it follows the newest configuration's chain of that name. */
  #secureView(port: number, chain: ChainAction): PortView {
    const key = `${port}|${chain.name}|${chain.kind === 'http' ? (chain.rds ?? '') : 'tcp'}`;
    const http = chain.kind === 'http' ? chain : null;
    let v = this.#secureViews.get(key);
    if (v === undefined) {
      v = view({ ...this.#base, destinationPort: port, secure: true, chain: http, draining: this.#base.draining });
      this.#secureViews.set(key, v);
    } else if (v.ctx.chain !== http) {
      (v.ctx as { chain: HttpChain | null }).chain = http;
    }
    return v;
  }

  /** The server terminating `tls` for `chain` on a port's secure view; made on the chain's first connection there. */
  #tlsServer(v: PortView, chain: ChainAction, tls: DownstreamTls): TlsServer {
    let server = v.tlsServers.get(tls);
    if (server === undefined) {
      const ctx = v.ctx;
      const serve = chain.kind === 'tcp' ? (s: TLSSocket): void => serveTcpConnection(s, ctx, chain) : (s: TLSSocket): void => sniffConnection(s, v.http);
      server = terminationServer(tls, { connections: ctx.connections, log: ctx.log, serve });
      v.tlsServers.set(tls, server);
    }
    return server;
  }
}

function view(ctx: ListenContext): PortView {
  // HTTP/2 clients with prior knowledge (h2c, or h2 over TLS) are told apart by their preface.
  const h2 = new H2Listener(ctx);
  return { ctx, http: { connections: ctx.connections, h1: (socket, first) => serveConnection(socket, ctx, first), h2: (socket) => h2.accept(socket) }, tlsServers: new WeakMap() };
}

interface HelloContext {
  readonly dispatch: ListenerDispatch;
  readonly listener: ListenerRuntime;
  readonly port: number;
}

/** Reads until the ClientHello (or the first bytes of a non-TLS protocol) is in, then routes. */
function readHello(socket: Socket, dispatch: ListenerDispatch, listener: ListenerRuntime, port: number): void {
  peekFirstBytes(socket, { dispatch, listener, port }, dispatch.connections, helloOrMore, routeByHello, HELLO_TIMEOUT_MS);
}

function helloOrMore(buf: Buffer): HelloResult | undefined {
  const r = inspectClientHello(buf);
  return r.kind === 'incomplete' ? undefined : r;
}

function routeByHello(c: HelloContext, socket: Socket, r: HelloResult, bytes: Buffer): void {
  socket.unshift(bytes); // whatever serves the connection reads it from its start
  c.dispatch.route(socket, c.listener, c.port, r.kind === 'tls' ? r.hello : undefined);
}
