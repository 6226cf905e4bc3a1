/**
 * Deliberately faulty HTTP/2 backends on 127.0.0.1 for the HTTP/2 resilience tests: an
 * h2c server and a gRPC Echo server (grpc-js), each counting what it got and behaving as
 * told — answering, failing (503 / UNAVAILABLE), stalling (never answering), holding
 * requests until released, or ending each connection with GOAWAY after a few streams.
 */
import { EventEmitter } from 'node:events';
import { constants, createServer, type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { Echo, type EchoClient, type EchoReply } from './echo.js';

/**
 * `goaway`: after `GOAWAY_AFTER` streams on a connection, GOAWAY (NO_ERROR) naming the
 * last one, which is still answered; `goaway-error`: the same with PROTOCOL_ERROR, sent
 * once that last response is out.
 */
export type H2Behaviour = 'ok' | 'fail' | 'stall' | 'goaway' | 'goaway-error';

/** A request path that the h2c backend holds unanswered (whatever its behaviour) until `release()`. */
export const HOLD_PATH = '/hold';

/** What an h2c backend saw of a request. */
export interface SeenRequest {
  readonly authority: string;
  readonly path: string;
  readonly contentType: string;
  readonly body: Buffer;
}

export const GOAWAY_AFTER = 3;

export interface H2Backend {
  readonly name: string;
  readonly port: number;
  behaviour: H2Behaviour;
  /** Requests (streams) received. */
  requests: number;
  /** Connections accepted; connections closed. */
  sessions: number;
  closedSessions: number;
  /** Requests with their bodies, in the order they completed ('seen' is emitted for each). */
  readonly seen: SeenRequest[];
  /** 'request' per stream; 'session-close' per closed connection. */
  readonly events: EventEmitter;
  /** Answers the requests held on `HOLD_PATH` (200, `<name> held`). */
  release(): void;
  close(): Promise<void>;
}

type CountedSession = ServerHttp2Session & { streams?: number };

/** `maxConcurrentStreams`: the SETTINGS value the backend announces (Node's default: unlimited). */
export async function startFaultyH2(name: string, behaviour: H2Behaviour, maxConcurrentStreams?: number): Promise<H2Backend> {
  const server: Http2Server = createServer(maxConcurrentStreams === undefined ? {} : { settings: { maxConcurrentStreams } });
  const open = new Set<ServerHttp2Session>();
  const held: ServerHttp2Stream[] = [];
  const backend: H2Backend = {
    name, port: 0, behaviour, requests: 0, sessions: 0, closedSessions: 0, seen: [], events: new EventEmitter(),
    release: () => {
      for (const s of held.splice(0)) {
        if (s.closed) continue;
        s.respond({ ':status': 200, 'content-type': 'text/plain', 'x-backend': name });
        s.end(`${name} held`);
      }
    },
    close: () => Promise.resolve(),
  };
  server.on('session', (s: ServerHttp2Session) => {
    backend.sessions++;
    open.add(s);
    s.on('error', () => undefined);
    s.on('close', () => {
      open.delete(s);
      backend.closedSessions++;
      backend.events.emit('session-close');
    });
  });
  server.on('stream', (stream, headers) => {
    backend.requests++;
    backend.events.emit('request');
    stream.on('error', () => undefined);
    const session = stream.session as CountedSession;
    session.streams = (session.streams ?? 0) + 1;
    const b = backend.behaviour;
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      backend.seen.push({ authority: String(headers[':authority']), path: String(headers[':path']), contentType: String(headers['content-type'] ?? ''), body: Buffer.concat(chunks) });
      backend.events.emit('seen');
    });
    if (headers[':path'] === HOLD_PATH) {
      held.push(stream);
      return;
    }
    if (b === 'stall') return;
    const last = (b === 'goaway' || b === 'goaway-error') && session.streams === GOAWAY_AFTER;
    if (last && b === 'goaway') session.goaway(constants.NGHTTP2_NO_ERROR, stream.id as number);
    stream.respond({ ':status': b === 'fail' ? 503 : 200, 'content-type': 'text/plain', 'x-backend': name });
    stream.end(b === 'fail' ? `${name} failed` : `${name} ok`, () => {
      if (last && b === 'goaway-error') session.goaway(constants.NGHTTP2_PROTOCOL_ERROR, stream.id as number);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return Object.assign(backend, {
    port: typeof addr === 'object' && addr !== null ? addr.port : 0,
    close: () => new Promise<void>((resolve) => {
      for (const s of open) s.destroy();
      server.close(() => resolve());
    }),
  });
}

// ---- gRPC ----

export type GrpcBehaviour = 'ok' | 'unavailable' | 'stall';

export type { EchoClient, EchoReply };

export interface GrpcBackend {
  readonly name: string;
  readonly port: number;
  calls: number;
  readonly events: EventEmitter;
  close(): Promise<void>;
}

/** An Echo server: answers with its name, or UNAVAILABLE (trailers-only, as grpc-js sends errors), or never. */
export async function startFaultyGrpc(name: string, behaviour: GrpcBehaviour): Promise<GrpcBackend> {
  const server = new grpc.Server();
  const backend: GrpcBackend = { name, port: 0, calls: 0, events: new EventEmitter(), close: () => Promise.resolve() };
  server.addService(Echo.service, {
    Call: (call: grpc.ServerUnaryCall<{ message: string }, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) => {
      backend.calls++;
      backend.events.emit('call');
      if (behaviour === 'stall') return;
      if (behaviour === 'unavailable') cb({ code: grpc.status.UNAVAILABLE, details: `${name} is unavailable` });
      else cb(null, { backend: name, message: call.request.message });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err === null ? resolve(p) : reject(err))),
  );
  return Object.assign(backend, {
    port,
    // A stalled call never ends: shut down at once rather than wait for it.
    close: () => {
      server.forceShutdown();
      return Promise.resolve();
    },
  });
}

/** A grpc-js client (not xDS) for `authority`, connected to the proxy's `port`. */
export function echoClient(port: number, authority: string): EchoClient {
  return new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority }) as unknown as EchoClient;
}

/** One unary call with a deadline; resolves with the error (if any) and the reply. */
export function echo(client: EchoClient, message: string, deadlineMs = 10_000): Promise<{ err: grpc.ServiceError | null; reply: EchoReply | undefined }> {
  return new Promise((resolve) => {
    client.Call({ message }, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, reply) => resolve({ err, reply }));
  });
}
