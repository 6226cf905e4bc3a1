/**
 * An in-process fake ADS server (state of the world) for testing the proxy's xDS client,
 * after grpc-js-xds `test/xds-server.ts` (STYLE 20): real gRPC on 127.0.0.1:0, built
 * with grpc-js and `adsServiceDefinition()`. Nothing is answered by itself: a test
 * scripts every response with `send()` and waits for what the client sends back with
 * `waitForRequest()`. Every request is recorded with its stream and what it is:
 *
 * - `subscribe`: a request with no nonce, or one repeating a nonce already answered
 *   (a subscription change, e.g. new RDS names after an LDS ACK);
 * - `ack`: the first request echoing a response's nonce, without `error_detail`;
 * - `nack`: the same with `error_detail` (kept in `request.error_detail`).
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { encodeResource, type PackedAny } from '../../src/xds/any.js';
import type { DiscoveryRequest__Output } from '../../src/xds/generated/envoy/service/discovery/v3/DiscoveryRequest.js';
import type { DiscoveryResponse } from '../../src/xds/generated/envoy/service/discovery/v3/DiscoveryResponse.js';
import { adsServiceDefinition } from '../../src/xds/protos.js';

export type RequestKind = 'subscribe' | 'ack' | 'nack';

export interface RecordedRequest {
  /** 1 for the first stream the server accepted, 2 for the next... */
  readonly stream: number;
  /** Position in `FakeControlPlane.requests`. */
  readonly index: number;
  readonly kind: RequestKind;
  readonly request: DiscoveryRequest__Output;
}

type Call = grpc.ServerDuplexStream<DiscoveryRequest__Output, DiscoveryResponse>;

interface StreamState {
  readonly id: number;
  readonly call: Call;
  /** Nonces sent on this stream and not yet echoed. */
  readonly pending: Set<string>;
  open: boolean;
}

interface Waiter {
  readonly since: number;
  readonly predicate: (r: RecordedRequest) => boolean;
  readonly resolve: (r: RecordedRequest) => void;
}

export const DEFAULT_WAIT_MS = 5_000;

export class FakeControlPlane {
  readonly requests: RecordedRequest[] = [];
  /** Emits `stream` (id) when a stream opens and `request` (RecordedRequest). */
  readonly events = new EventEmitter();
  readonly #server = new grpc.Server();
  readonly #streams: StreamState[] = [];
  readonly #waiters = new Set<Waiter>();
  #refuse = 0;
  #nonce = 0;
  port = 0;

  /** A fake listening on 127.0.0.1, on a free port or on `port` (to stand in for a restarted one). */
  static async start(port = 0): Promise<FakeControlPlane> {
    const cp = new FakeControlPlane();
    cp.port = await new Promise<number>((resolve, reject) => {
      cp.#server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err === null ? resolve(port) : reject(err)));
    });
    return cp;
  }

  private constructor() {
    this.#server.addService(adsServiceDefinition() as unknown as grpc.ServiceDefinition, {
      StreamAggregatedResources: (call: Call) => this.#onStream(call),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
        call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'delta xDS: not in the fake' });
      },
    });
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** How many streams the server has accepted (including refused ones). */
  get streamCount(): number {
    return this.#streams.length;
  }

  /** The next `count` streams are ended at once with UNAVAILABLE, before any response. */
  refuseStreams(count: number): void {
    this.#refuse += count;
  }

  /**
   * Sends a response on the latest open stream; returns its nonce. `resources` are plain
   * objects of the type (checked and packed with `encodeResource`; a test bug throws) or
   * already packed Anys, sent as they are.
   */
  send(typeUrl: string, version: string, resources: readonly (object | PackedAny)[]): string {
    const stream = [...this.#streams].reverse().find((s) => s.open);
    if (stream === undefined) throw new Error('fake control plane: no open stream to send on');
    const anys = resources.map((r) => (isPacked(r) ? r : pack(typeUrl, r)));
    const nonce = `n${++this.#nonce}`;
    stream.pending.add(nonce);
    stream.call.write({ version_info: version, type_url: typeUrl, nonce, resources: anys });
    return nonce;
  }

  /** Ends every open stream with status OK, as a control plane that restarts gracefully. */
  endStreams(): void {
    for (const s of this.#streams) {
      if (!s.open) continue;
      s.open = false;
      s.call.end();
    }
  }

  /**
   * The first recorded request from index `since` on that matches, waiting for it up to
   * `timeoutMs`. Rejects with the requests seen so far when none comes.
   */
  waitForRequest(predicate: (r: RecordedRequest) => boolean, options: { since?: number; timeoutMs?: number } = {}): Promise<RecordedRequest> {
    const since = options.since ?? 0;
    const found = this.requests.slice(since).find(predicate);
    if (found !== undefined) return Promise.resolve(found);
    const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        since,
        predicate,
        resolve: (r) => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          resolve(r);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`fake control plane: no matching request within ${timeoutMs} ms; got:\n${this.describe(since)}`));
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  /** Every `count` requests from `since`, waiting for the last one; in order of arrival. */
  async waitForRequests(predicate: (r: RecordedRequest) => boolean, count: number, options: { since?: number; timeoutMs?: number } = {}): Promise<RecordedRequest[]> {
    const out: RecordedRequest[] = [];
    let since = options.since ?? 0;
    while (out.length < count) {
      const r = await this.waitForRequest(predicate, { ...options, since });
      out.push(r);
      since = r.index + 1;
    }
    return out;
  }

  /** The recorded requests from `since`, one line each, for failure messages. */
  describe(since = 0): string {
    return this.requests
      .slice(since)
      .map((r) => `  #${r.index} stream ${r.stream} ${r.kind} ${short(r.request.type_url)} v=${r.request.version_info} nonce=${r.request.response_nonce} names=${JSON.stringify(r.request.resource_names)}${r.request.error_detail ? ` error=${JSON.stringify(r.request.error_detail.message)}` : ''}`)
      .join('\n');
  }

  close(): Promise<void> {
    for (const s of this.#streams) s.open = false;
    return new Promise((resolve) => {
      this.#server.tryShutdown(() => resolve());
      setImmediate(() => this.#server.forceShutdown());
    });
  }

  #onStream(call: Call): void {
    const stream: StreamState = { id: this.#streams.length + 1, call, pending: new Set(), open: true };
    this.#streams.push(stream);
    call.on('error', () => {});
    call.on('close', () => (stream.open = false));
    call.on('cancelled', () => (stream.open = false));
    call.on('end', () => {
      stream.open = false;
      call.end();
    });
    call.on('data', (request: DiscoveryRequest__Output) => this.#record(stream, request));
    this.events.emit('stream', stream.id);
    if (this.#refuse > 0) {
      this.#refuse--;
      stream.open = false;
      call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'fake control plane: stream refused' });
    }
  }

  #record(stream: StreamState, request: DiscoveryRequest__Output): void {
    const nonce = request.response_nonce;
    let kind: RequestKind = 'subscribe';
    if (nonce !== '' && stream.pending.delete(nonce)) kind = request.error_detail != null ? 'nack' : 'ack';
    const recorded: RecordedRequest = { stream: stream.id, index: this.requests.length, kind, request };
    this.requests.push(recorded);
    this.events.emit('request', recorded);
    for (const w of [...this.#waiters]) if (recorded.index >= w.since && w.predicate(recorded)) w.resolve(recorded);
  }
}

function isPacked(r: object): r is PackedAny {
  return 'type_url' in r && 'value' in r && (r as PackedAny).value instanceof Uint8Array;
}

function pack(typeUrl: string, resource: object): PackedAny {
  const encoded = encodeResource(typeUrl, resource);
  if (!encoded.ok) throw new Error(`fake control plane: test resource does not encode: ${encoded.error}`);
  return encoded.any;
}

function short(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('.') + 1);
}
