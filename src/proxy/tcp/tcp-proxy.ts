/**
 * TCP proxying: a connection (or a CONNECT tunnel) to one endpoint of a cluster chosen by
 * a `tcp_proxy` filter chain — or, for CONNECT to an HTTP service, by HTTP routing of the
 * target authority — then bytes both ways, with Istio's TCP metrics. A cluster with an
 * UpstreamTlsContext is reached over TLS: the tunnel starts once the handshake is done,
 * and a failed handshake is a connect failure (UF) like a refused connection.
 */
import { connect, type Socket } from 'node:net';
import type { TcpChain } from '../config/listeners.js';
import { chooseChain } from '../config/listeners.js';
import type { ListenContext } from '../http/context.js';
import { decide, portOf } from '../http/router.js';
import { tcpSeries } from '../telemetry/http-labels.js';
import type { PeerWorkload } from '../telemetry/peer.js';
import { tlsFailureReason, type UpstreamTls } from '../tls/tls-context.js';
import { tunnel } from './tunnel.js';
import { readIntoSharedBuffer } from '../socket-reader.js';

interface TcpTarget {
  readonly address: string;
  readonly port: number;
  readonly service: string;
  readonly connectTimeoutMs: number;
  readonly peer: PeerWorkload | null;
  readonly tls: UpstreamTls | null;
}


/** An endpoint of one of the chain's (weighted) clusters, or the reason there is none. */
function pickFromChain(ctx: ListenContext, chain: TcpChain, remote: string | undefined): TcpTarget | { flag: string } {
  const total = chain.clusters.reduce((a, c) => a + c.weight, 0);
  let point = Math.random() * total;
  const chosen = chain.clusters.find((c) => (point -= c.weight) < 0) ?? chain.clusters[0];
  if (chosen === undefined) return { flag: 'NR' };
  const cluster = ctx.config.current.clusters.get(chosen.name);
  if (cluster === undefined) return { flag: 'NC' };
  const endpoint = cluster.picker.pick({ hash: undefined });
  void remote;
  if (endpoint === undefined) return { flag: 'UH' };
  return { address: endpoint.address, port: endpoint.port, service: cluster.service, connectTimeoutMs: cluster.connectTimeoutMs, peer: endpoint.workload, tls: cluster.tls };
}

/** Connects `down` to `target`, tunnels, and records TCP metrics; `onUpstream` runs once connected. */
function proxyTo(ctx: ListenContext, down: Socket, target: TcpTarget, onUpstream: (up: Socket) => void): void {
  const series = tcpSeries(ctx, target.service, '-', target.peer);
  const up = target.tls === null ? connect({ host: target.address, port: target.port, noDelay: true, onread: readIntoSharedBuffer() }) : target.tls.connect(target.address, target.port);
  up.setTimeout(target.connectTimeoutMs);
  let connected = false;
  up.once('timeout', () => {
    if (!connected) up.destroy();
  });
  up.once(target.tls === null ? 'connect' : 'secureConnect', () => {
    connected = true;
    up.setTimeout(0);
    series.opened++;
    onUpstream(up);
    tunnel(down, up, (stats) => {
      series.closed++;
      series.received += stats.aToB;
      series.sent += stats.bToA;
    });
  });
  up.once('error', (err: Error) => {
    if (connected) return;
    if (target.tls !== null) ctx.log.debug('upstream TLS connection failed', { address: `${target.address}:${target.port}`, reason: tlsFailureReason(err) });
    tcpSeries(ctx, target.service, 'UF', target.peer).opened++;
    down.destroy();
  });
}

/** A connection accepted by a listener whose chain is a TCP proxy. */
export function serveTcpConnection(socket: Socket, ctx: ListenContext, chain: TcpChain): void {
  socket.pause();
  const target = pickFromChain(ctx, chain, socket.remoteAddress);
  if ('flag' in target) {
    tcpSeries(ctx, 'unknown', target.flag).opened++;
    socket.destroy();
    return;
  }
  proxyTo(ctx, socket, target, () => undefined);
}

/**
 * `CONNECT host:port` on the outbound listener: how local applications reach TCP services
 * through their sidecar. The target port picks the filter chain; a TCP chain names the
 * cluster, an HTTP chain is routed like a request for that authority. Answers
 * `200 Connection Established` once the upstream connection is up, then tunnels; `rest`
 * holds bytes the client sent after the CONNECT head.
 */
export function handleConnect(socket: Socket, ctx: ListenContext, authority: string, rest: Buffer | null): void {
  const port = portOf(authority, 'http');
  const listener = ctx.config.current.listeners.get(ctx.listenerName);
  const chain = listener === undefined ? null : chooseChain(listener, port, undefined, undefined);
  let target: TcpTarget | { flag: string };
  if (chain !== null && chain.kind === 'tcp') {
    target = pickFromChain(ctx, chain, socket.remoteAddress);
  } else {
    const d = decide(ctx, { method: 'CONNECT', path: '/', query: '', authority: authority.toLowerCase(), scheme: 'http', headers: [] }, socket.remoteAddress);
    target = d.kind === 'forward' ? { address: d.address, port: d.port, service: d.destinationService, connectTimeoutMs: d.cluster.connectTimeoutMs, peer: d.endpoint?.workload ?? null, tls: d.cluster.tls } : { flag: d.flag };
  }
  if ('flag' in target) {
    const status = target.flag === 'NR' ? '404 Not Found' : '503 Service Unavailable';
    socket.end(`HTTP/1.1 ${status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
    tcpSeries(ctx, 'unknown', target.flag).opened++;
    return;
  }
  socket.pause();
  proxyTo(ctx, socket, target, (up) => {
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (rest !== null && rest.length > 0) up.write(rest);
  });
}
