/**
 * Service instances for the failover and rolling-replacement tests (127.0.0.1 only): an
 * HTTP server that names itself in `x-backend`, counts requests received and in flight,
 * and behaves as told — answers 200, answers 503, or holds requests until `release()`.
 * It stops the way a well-behaved server does on SIGTERM (`stop()`: no new connections,
 * requests in flight answered, then the keep-alive connections closed) and can start
 * again on the same port (`restart()`), so "stopped" means connections are refused.
 */
import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type InstanceBehaviour = 'ok' | 'fail' | 'hold';

export class Instance {
  readonly name: string;
  port = 0;
  behaviour: InstanceBehaviour = 'ok';
  /** Requests received (whatever was answered). */
  requests = 0;
  /** Requests received and not answered yet. */
  inFlight = 0;
  /** `request` when a request arrives; `idle` when the last one in flight is answered. */
  readonly events = new EventEmitter();
  #server: Server | null = null;
  readonly #held: ServerResponse[] = [];

  private constructor(name: string) {
    this.name = name;
  }

  /** Starts an instance on a port of its own. */
  static async start(name: string, behaviour: InstanceBehaviour = 'ok'): Promise<Instance> {
    const instance = new Instance(name);
    instance.behaviour = behaviour;
    await instance.#listen(0);
    return instance;
  }

  get running(): boolean {
    return this.#server !== null;
  }

  /** Answers every held request (200), and answers later ones at once. */
  release(): void {
    this.behaviour = 'ok';
    for (const res of this.#held.splice(0)) this.#answer(res, false);
  }

  /** Resolves when no request is in flight. */
  async idle(): Promise<void> {
    while (this.inFlight > 0) await once(this.events, 'idle');
  }

  /**
   * Stops as a server does on SIGTERM: closes the listener (new connections are refused)
   * and idle keep-alive connections, waits for the requests in flight to be answered, then
   * closes the connections left.
   */
  async stop(): Promise<void> {
    const server = this.#server;
    if (server === null) return;
    this.#server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await this.idle();
    server.closeAllConnections();
    await closed;
  }

  /** Stops at once: connections are cut, held requests never answered. */
  async kill(): Promise<void> {
    const server = this.#server;
    if (server === null) return;
    this.#server = null;
    this.#held.splice(0);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  /** Listens again on the same port (after `stop()`). */
  async restart(): Promise<void> {
    if (this.#server === null) await this.#listen(this.port);
  }

  async #listen(port: number): Promise<void> {
    const server = createServer((req, res) => this.#onRequest(req, res));
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.requests++;
    this.inFlight++;
    // Answered, or the connection went away first: either way no longer in flight.
    res.once('close', () => {
      if (--this.inFlight === 0) this.events.emit('idle');
    });
    this.events.emit('request');
    req.resume();
    if (this.behaviour === 'hold') this.#held.push(res);
    else this.#answer(res, this.behaviour === 'fail');
  }

  #answer(res: ServerResponse, fail: boolean): void {
    res.writeHead(fail ? 503 : 200, { 'content-type': 'text/plain', 'x-backend': this.name });
    res.end(fail ? `${this.name} failed` : `${this.name} ok`);
  }
}
