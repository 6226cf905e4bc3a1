/**
 * Listening sockets for the proxy that take every pending connection at once.
 *
 * Node 20's libuv accepts one connection per event-loop turn: with 1,000 clients
 * connecting at once the last ones waited ~3 s for their turn
 * (shared/reference/proxy-perf-notes.md, "Many new connections"). The native helper in
 * `native/` (Linux; built by `npm run build:native`, which `prepare` runs and tolerates
 * failing) owns the listening socket: a libuv poll handle on Node's loop reports it
 * readable, the addon drains the queue with accept4() and passes the batch of fds to
 * `onAccepted` below, which wraps each in a `net.Socket`. When the addon is not built, not
 * loadable (other platform, other ABI) or the host is not an IP literal, the listener is
 * a plain `net.createServer({ noDelay: true })`; `Listener.native` says which.
 *
 * Sockets from the native path behave like `net.Server`'s accepted sockets for the proxy:
 * readable, writable, `allowHalfOpen` false, no-delay on, and `remoteAddress`,
 * `remotePort`, `localAddress`, `localPort` filled in (Node 20 reads them from the fd with
 * getpeername/getsockname, so no native peer lookup is needed; the test checks it against
 * the addon's `peerName`). Only `socket.server` is unset, and with `sharedReadBuffer` they
 * read into the proxy's shared read buffer instead of emitting 'data' (socket-reader.ts;
 * node:net's server has no such option). They also cost the same per
 * request: libuv's uv_tcp_open() and its accept both end in uv__stream_open() with the
 * same flags, Node wraps both in a TCP handle of type SOCKET, and the request path makes
 * the same system calls (callgrind: instructions per keep-alive request within 1 % of
 * node:net's; bench/accept-ab.ts compares the two paths in one run). Making a socket from
 * an fd costs five more system calls, once per connection (Node's guessHandleType: isatty's
 * ioctl, fstat, getsockopt, getsockname; uv_tcp_open's non-blocking ioctl).
 */
import { createRequire } from 'node:module';
import { type AddressInfo, createServer, isIP, type OnReadOpts, Socket, type SocketConstructorOpts } from 'node:net';
import { fileURLToPath } from 'node:url';
import { readIntoSharedBuffer } from '../socket-reader.js';

/** A bound listener. */
export interface Listener {
  /** The bound port (the one asked for, or the kernel's pick for 0). */
  readonly port: number;
  /** True when the native helper drains the accept queue. */
  readonly native: boolean;
  /**
   * Stops accepting and closes the listening socket; accepted sockets are not touched
   * (the caller drains them). Idempotent.
   */
  close(): void;
}

export interface ListenerOptions {
  /** Use the native helper when it is available (default true); false forces node:net. */
  readonly native?: boolean;
  /** listen(2) backlog; the kernel caps it at net.core.somaxconn. Default: that cap, as Envoy's listeners on Linux. */
  readonly backlog?: number;
  /**
   * Accept errors on the node:net path after binding (net.Server 'error' events, e.g.
   * ENOBUFS); ignored when absent. The native path retries those itself, as libuv does.
   */
  readonly onError?: (err: Error) => void;
  /**
   * Sockets from the native path read into the shared read buffer (socket-reader.ts):
   * they emit no 'data' for what they read, and are read with `readWith`. Sockets from
   * node:net's server emit 'data' (`readWith` reads both). Default false.
   */
  readonly sharedReadBuffer?: boolean;
}

/** An address from the kernel. */
export interface SocketAddress {
  readonly address: string;
  readonly port: number;
}

/** What native/src/trellis_net.c exports (documented there). */
export interface TrellisNet {
  listen(host: string, port: number, backlog: number): { fd: number; port: number };
  watch(listenFd: number, onFds: (fds: number[]) => void): object;
  unwatch(watcher: object): void;
  acceptAll(listenFd: number): number[];
  originalDst(fd: number): SocketAddress | null;
  peerName(fd: number): SocketAddress | null;
  noDelay(fd: number): boolean | null;
  keepalive(fd: number, idleS: number, intervalS: number, probes: number): boolean;
  keepaliveOf(fd: number): [number, number, number, number] | null;
  close(fd: number): void;
  /** Absent from helpers built before it existed (rebuild: npm run build:native). */
  mallocTrim?(): boolean;
}

/**
 * Envoy's listeners use net.core.somaxconn (4096 on current kernels) when no
 * tcp_backlog_size is set; asking for more than the cap gets the cap. node:net's 511
 * overflowed when 1,000 clients connected at once, and each dropped handshake waits a
 * second for the client's SYN retry.
 */
const DEFAULT_BACKLOG = 65_535;
/** From dist/src/proxy/listener/ to the repository root. */
const ADDON_URL = new URL('../../../../native/build/Release/trellis_net.node', import.meta.url);

const ADDON = loadAddon();
const addon: TrellisNet | null = ADDON.addon;
/** Why the native helper is not in use, for the caller's log; null when it is. */
export const nativeUnavailableReason: string | null = ADDON.reason;

function loadAddon(): { addon: TrellisNet | null; reason: string | null } {
  try {
    return { addon: createRequire(import.meta.url)(fileURLToPath(ADDON_URL)) as TrellisNet, reason: null };
  } catch (err) {
    const reason =
      (err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND'
        ? 'native accept helper not built (npm run build:native)'
        : `native accept helper not loadable: ${(err as Error).message}`;
    return { addon: null, reason };
  }
}

/** The loaded addon, for tests; null without it. */
export function nativeAddon(): TrellisNet | null {
  return addon;
}

/**
 * Binds `host:port` and calls `onSocket` with each accepted connection, synchronously
 * from the loop. If `onSocket` throws, the error becomes an uncaught exception (as from
 * a 'connection' listener) and the rest of the batch is still served. Rejects with the
 * system error (`code` EADDRINUSE, EACCES, ...) when the address cannot be bound.
 */
export async function createListener(
  host: string,
  port: number,
  onSocket: (socket: Socket) => void,
  options: ListenerOptions = {},
): Promise<Listener> {
  const backlog = options.backlog ?? DEFAULT_BACKLOG;
  // The addon parses IP literals only; names and zone ids (fe80::1%eth0) go to node:net.
  if (addon !== null && options.native !== false && isIP(host) !== 0 && !host.includes('%')) {
    return listenNative(addon, host, port, backlog, onSocket, options.sharedReadBuffer === true);
  }
  return listenPortable(host, port, backlog, onSocket, options.onError);
}

function listenNative(
  net: TrellisNet,
  host: string,
  port: number,
  backlog: number,
  onSocket: (socket: Socket) => void,
  sharedBuffer: boolean,
): Listener {
  const bound = net.listen(host, port, backlog);
  // One closure per listener; called once per readable event with every accepted fd.
  const onAccepted = (fds: number[]): void => {
    // As with net.Server, a throwing onSocket costs its own connection only: the rest of
    // the batch is still served, then the first error becomes an uncaught exception.
    let failed = false;
    let failure: unknown;
    for (let i = 0; i < fds.length; i++) {
      const fd = fds[i] as number;
      let socket: Socket | null = null;
      try {
        socket = wrapAccepted(fd, sharedBuffer);
        onSocket(socket);
      } catch (err) {
        if (socket === null) net.close(fd);
        if (!failed) failure = err;
        failed = true;
      }
    }
    if (failed) throw failure;
  };
  const watcher = net.watch(bound.fd, onAccepted);
  let closed = false;
  return {
    port: bound.port,
    native: true,
    close(): void {
      if (closed) return;
      closed = true;
      net.unwatch(watcher); // takes the fd out of epoll first
      net.close(bound.fd);
    },
  };
}

/** An accepted fd as net.Server would hand it over. */
function wrapAccepted(fd: number, sharedBuffer: boolean): Socket {
  // Not `noDelay: true` here: for an fd socket Node 20 only records that option (it is
  // applied on connect), and would then skip a later setNoDelay(true) as a no-op.
  // `onread` is a documented option of the constructor that @types/node lists for connect() only.
  const options: SocketConstructorOpts & { onread?: OnReadOpts } = { fd, readable: true, writable: true };
  if (sharedBuffer) options.onread = readIntoSharedBuffer();
  const socket = new Socket(options);
  socket.setNoDelay(true);
  return socket;
}

function listenPortable(
  host: string,
  port: number,
  backlog: number,
  onSocket: (socket: Socket) => void,
  onError: ((err: Error) => void) | undefined,
): Promise<Listener> {
  return new Promise((resolve, reject) => {
    const server = createServer({ noDelay: true }, onSocket);
    server.once('error', reject);
    server.listen({ host, port, backlog }, () => {
      server.off('error', reject);
      server.on('error', onError ?? ignore);
      resolve({
        port: (server.address() as AddressInfo).port,
        native: false,
        close(): void {
          if (server.listening) server.close();
        },
      });
    });
  });
}

function ignore(): void {}

/**
 * The destination a connection had before an iptables/nft REDIRECT sent it to this
 * listener (SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST), for transparent capture. Undefined
 * when the connection was not redirected (the kernel has no NAT entry), when the addon is
 * not built, or when the socket is closed. Works for sockets from either listener path.
 * Cost: two syscalls (~1 µs); call once per connection.
 */
export function originalDestination(socket: Socket): SocketAddress | undefined {
  if (addon === null) return undefined;
  const fd = fdOf(socket);
  if (fd === undefined) return undefined;
  return addon.originalDst(fd) ?? undefined;
}

/** `_handle.fd`: node:net's (undocumented, long-stable) view of the socket's fd; undefined before it exists. */
function fdOf(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  return fd === undefined || fd < 0 ? undefined : fd;
}

/**
 * TCP keepalive on a connected socket, as Envoy's `tcp_keepalive` (0 in a field: the OS
 * default). Node sets only SO_KEEPALIVE and the idle time; the interval and probe count
 * need the native helper. Returns false when only Node's part could be applied.
 */
export function setTcpKeepalive(socket: Socket, idleS: number, intervalS: number, probes: number): boolean {
  const fd = fdOf(socket);
  if (addon !== null && fd !== undefined && addon.keepalive(fd, idleS, intervalS, probes)) return true;
  socket.setKeepAlive(true, idleS * 1000);
  return false;
}

/** [SO_KEEPALIVE on (1/0), TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT] as the kernel has them; null without the helper. */
export function tcpKeepaliveOf(socket: Socket): [number, number, number, number] | null {
  const fd = fdOf(socket);
  return addon === null || fd === undefined ? null : addon.keepaliveOf(fd);
}
