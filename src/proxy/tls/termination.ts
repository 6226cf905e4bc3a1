/**
 * Terminating TLS on a filter chain with a DownstreamTlsContext: the accepted socket
 * (its ClientHello already read for chain matching and put back) is handed to a
 * `tls.Server` that never listens (`emit('connection')`); its 'secureConnection' gives
 * the TLS socket, which then goes where a plaintext one would (the HTTP sniff, or the TCP
 * proxy). A `tls.Server` builds its SecureContext from the chain's options once, when it
 * is made (one per chain context and destination-port view, on its first connection);
 * the context then hands it rotated certificates with `setSecureContext` (`attach`).
 *
 * The raw socket stays in the listener's connection set until it closes, marked as a TLS
 * carrier: draining leaves it alone (the TLS socket above it, served by an engine, is
 * drained gracefully) but still waits for it, and a final close destroys it.
 */
import type { Socket } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import type { Logger } from '../../core/log.js';
import { clientAccepted, type DownstreamTls } from './tls-context.js';

const kCarrier = Symbol('trellis.tls.carrier');
type CarrierSocket = Socket & { [kCarrier]?: Set<Socket> };

/** Where terminated connections of one chain go, and what they share. */
export interface TlsHandoff {
  /** The listener's connections (the raw socket is in it until it closes). */
  readonly connections: Set<Socket>;
  readonly log: Logger;
  /** Serves the decrypted connection (HTTP sniff or TCP proxy). */
  serve(socket: TLSSocket): void;
}

const kHandoff = Symbol('trellis.tls.handoff');
type HandoffServer = Server & { [kHandoff]?: { readonly handoff: TlsHandoff; readonly tls: DownstreamTls } };

/** The never-listening server that terminates connections of `tls` for `handoff`. */
export function terminationServer(tls: DownstreamTls, handoff: TlsHandoff): Server {
  const server = createServer(tls.serverOptions) as HandoffServer;
  server[kHandoff] = { handoff, tls };
  tls.attach(server);
  server.on('secureConnection', onSecureConnection);
  server.on('tlsClientError', onTlsClientError);
  return server;
}

/**
 * Hands `socket` (paused, its first bytes put back) to `server` for the handshake. The
 * socket is resumed on the next tick, once the TLS socket wrapping it listens.
 */
export function terminate(socket: Socket, server: Server): void {
  const handoff = (server as HandoffServer)[kHandoff]?.handoff;
  if (handoff !== undefined) {
    (socket as CarrierSocket)[kCarrier] = handoff.connections;
    handoff.connections.add(socket);
    socket.once('close', onCarrierClose);
  }
  socket.on('error', noop); // the TLS socket reports failures; a reset must not throw here
  socket.pause();
  server.emit('connection', socket);
  process.nextTick(resume, socket);
}

/** Whether `socket` carries a terminated TLS connection (drain the TLS socket, not this one). */
export function isTlsCarrier(socket: Socket): boolean {
  return (socket as CarrierSocket)[kCarrier] !== undefined;
}

function resume(socket: Socket): void {
  if (!socket.destroyed) socket.resume();
}

function onCarrierClose(this: CarrierSocket): void {
  this[kCarrier]?.delete(this);
}

function onSecureConnection(this: HandoffServer, socket: TLSSocket): void {
  const h = this[kHandoff];
  if (h === undefined) {
    socket.destroy();
    return;
  }
  if (!clientAccepted(h.tls, socket)) {
    // OPTIONAL_MUTUAL with a certificate that does not verify, or a SAN that matches none.
    h.handoff.log.debug('client certificate rejected', { remote: socket.remoteAddress, reason: socket.authorizationError ?? 'subject alt name' });
    socket.destroy();
    return;
  }
  h.handoff.serve(socket);
}

function onTlsClientError(this: HandoffServer, err: Error, socket: TLSSocket): void {
  this[kHandoff]?.handoff.log.debug('TLS handshake failed', { remote: socket.remoteAddress, code: (err as { code?: string }).code, reason: (err as { reason?: string }).reason ?? err.message });
}

function noop(): void {}
