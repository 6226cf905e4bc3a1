/** gRPC echo backends and clients for end-to-end tests (127.0.0.1 only). */
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { join } from 'node:path';
import { ROOT } from '../helpers.js';

export interface EchoReply {
  backend: string;
  message: string;
}

export type EchoClient = grpc.Client & {
  Call(req: { message: string }, metadata: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: EchoReply) => void): grpc.ClientUnaryCall;
};

const definition = loadSync(join(ROOT, 'test/fixtures/echo.proto'));
const pkg = grpc.loadPackageDefinition(definition) as unknown as {
  trellis: { test: { Echo: grpc.ServiceClientConstructor & { service: grpc.ServiceDefinition } } };
};
/** The Echo service (test/fixtures/echo.proto): its definition and client constructor. */
export const Echo = pkg.trellis.test.Echo;

export interface Backend {
  readonly name: string;
  readonly port: number;
  /** Calls served so far. */
  calls: number;
  close(): Promise<void>;
}

export async function startBackend(name: string): Promise<Backend> {
  const server = new grpc.Server();
  const backend = { name, port: 0, calls: 0, close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())) };
  server.addService(Echo.service, {
    Call: (call: grpc.ServerUnaryCall<{ message: string }, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) => {
      backend.calls++;
      cb(null, { backend: name, message: call.request.message });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err === null ? resolve(p) : reject(err))),
  );
  return Object.assign(backend, { port });
}

export function echoClient(target: string): EchoClient {
  return new Echo(target, grpc.credentials.createInsecure()) as unknown as EchoClient;
}

/** One call; resolves with the backend's name. */
export function call(client: EchoClient, headers: Record<string, string> = {}): Promise<string> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k, v);
  return new Promise((resolve, reject) => {
    client.Call({ message: 'hi' }, md, { deadline: Date.now() + 5_000 }, (err, reply) => (err === null && reply !== undefined ? resolve(reply.backend) : reject(err)));
  });
}

/** `total` calls, `concurrency` at a time; returns how many each backend answered. */
export async function callMany(client: EchoClient, total: number, concurrency = 32, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      next++;
      const backend = await call(client, headers);
      counts.set(backend, (counts.get(backend) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  return counts;
}
