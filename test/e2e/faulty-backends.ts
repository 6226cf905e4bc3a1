/**
 * Deliberately faulty HTTP backends on 127.0.0.1 for the resilience tests: each counts
 * the requests it got and behaves as told — answers 200, answers 503 (always or for a
 * fraction), stalls (never answers), or resets the connection.
 */
import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Behaviour = 'ok' | 'fail' | 'stall' | 'reset' | 'hold' | { readonly failFraction: number };

export interface FaultyBackend {
  readonly name: string;
  readonly port: number;
  behaviour: Behaviour;
  /** Requests received (whatever was answered). */
  requests: number;
  /** The Host header of every request received, in order. */
  readonly hosts: string[];
  /** 'request' for each request received. */
  readonly events: EventEmitter;
  /** Answers 200 to every request held so far ('hold': requests wait for this). */
  releaseHeld(): void;
  close(): Promise<void>;
}

export async function startFaulty(name: string, behaviour: Behaviour): Promise<FaultyBackend> {
  const sockets = new Set<Socket>();
  const held: (() => void)[] = [];
  const backend: FaultyBackend = {
    name, port: 0, behaviour, requests: 0, hosts: [], events: new EventEmitter(),
    releaseHeld: () => {
      for (const answer of held.splice(0)) answer();
    },
    close: () => Promise.resolve(),
  };
  let seed = name.length * 7919;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
  const server: Server = createServer((req, res) => {
    backend.requests++;
    backend.hosts.push(String(req.headers.host));
    backend.events.emit('request');
    req.resume();
    const b = backend.behaviour;
    if (b === 'stall') return;
    if (b === 'hold') {
      held.push(() => res.end(`${name} ok`));
      return;
    }
    if (b === 'reset') {
      req.socket.destroy();
      return;
    }
    const fail = b === 'fail' || (typeof b === 'object' && random() < b.failFraction);
    res.writeHead(fail ? 503 : 200, { 'content-type': 'text/plain', 'x-backend': name });
    res.end(fail ? `${name} failed` : `${name} ok`);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(backend, {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  });
}

/** A port on 127.0.0.1 where nothing listens (connections are refused). */
export async function refusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
