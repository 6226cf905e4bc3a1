/**
 * The common `main` of the four services: listen on `HOST`:`PORT` (default
 * 127.0.0.1:9080, Bookinfo's port), say where, and stop cleanly on SIGINT/SIGTERM.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { stdoutLog, type LogSink } from './http-server.js';

const DEFAULT_PORT = 9080;
const DEFAULT_HOST = '127.0.0.1';
/** In-flight requests get this long to finish after a stop signal. */
const DRAIN_MS = 5_000;

/**
 * Builds the server with `build` and serves it. Exits with status 2 on a bad `PORT` or a
 * setup error thrown by `build` (such as a malformed `HTTP_PROXY`), 1 if it cannot listen.
 */
export function runService(name: string, build: (log: LogSink) => Server, env: NodeJS.ProcessEnv = process.env): void {
  const port = parsePort(env.PORT);
  if (port === null) return fail(name, `PORT=${env.PORT ?? ''} is not a port number (0-65535)`, 2);
  let server: Server;
  try {
    server = build(stdoutLog);
  } catch (err) {
    return fail(name, err instanceof Error ? err.message : String(err), 2);
  }
  server.on('error', (err) => fail(name, `cannot listen: ${err.message}`, 1));
  server.listen(port, env.HOST || DEFAULT_HOST, () => {
    const { address, family, port: bound } = server.address() as AddressInfo;
    const host = family === 'IPv6' ? `[${address}]` : address;
    stdoutLog(`${name} listening on http://${host}:${bound}`);
  });
  const stop = (): void => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    setTimeout(() => process.exit(0), DRAIN_MS).unref();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

function parsePort(value: string | undefined): number | null {
  if (value === undefined || value === '') return DEFAULT_PORT;
  if (!/^\d{1,5}$/.test(value)) return null;
  const port = Number(value);
  return port <= 65535 ? port : null;
}

function fail(name: string, message: string, status: number): void {
  process.stderr.write(`${name}: ${message}\n`);
  process.exitCode = status;
  process.exit();
}
