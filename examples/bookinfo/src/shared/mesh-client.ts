/**
 * A small `fetch`-like HTTP/1.1 client for the Bookinfo services, over `node:http`.
 *
 * In the mesh every outbound call goes to the sidecar given in `HTTP_PROXY`, in absolute
 * form (`GET http://reviews:9080/reviews/0 HTTP/1.1`, `Host: reviews:9080`); the sidecar
 * routes on the Host header. Without a proxy (tests, or a service run by hand) the call
 * goes straight to the URL's host.
 *
 * Expected failures (refused, reset, timed out) resolve with `status: 0` and an `error`
 * instead of rejecting: the callers treat "no answer" like an error status, as Istio's
 * Python productpage does with `res = None`.
 */
import { request, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type RequestOptions } from 'node:http';
import { DIRECT, proxyConfigFromEnv, proxyFor, type ProxyConfig } from './proxy-config.js';

/** Bodies are small JSON documents; anything larger is a broken peer, not data. */
const MAX_BODY_BYTES = 1024 * 1024;

export interface MeshCall {
  readonly method?: string;
  /** Request headers, lower-case names. `host` is always set from the URL. */
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Total time allowed for the call (connect, response head and body), in ms. */
  readonly timeoutMs: number;
}

export interface MeshReply {
  /** The response status, or 0 when no complete response arrived (see `error`). */
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** null on a response; otherwise `timeout`, a socket error code (`ECONNREFUSED`), or a short reason. */
  readonly error: string | null;
}

export class MeshClient {
  readonly #proxy: ProxyConfig;

  constructor(proxy: ProxyConfig = DIRECT) {
    this.#proxy = proxy;
  }

  /** A client that uses `HTTP_PROXY`/`NO_PROXY` from `env`; throws if `HTTP_PROXY` is malformed. */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): MeshClient {
    return new MeshClient(proxyConfigFromEnv(env));
  }

  /** Sends one request to `url` (http:// only); never rejects. */
  fetch(url: string, call: MeshCall): Promise<MeshReply> {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return Promise.resolve(failed(`invalid URL ${url}`));
    }
    if (target.protocol !== 'http:') return Promise.resolve(failed(`unsupported scheme ${target.protocol}`));
    return new Promise((resolve) => new Call(resolve, call.timeoutMs).start(this.#requestOptions(target, call), call.body));
  }

  #requestOptions(target: URL, call: MeshCall): RequestOptions {
    const headers: Record<string, string> = { ...call.headers, host: target.host };
    if (call.body !== undefined) headers['content-length'] = String(Buffer.byteLength(call.body));
    const via = proxyFor(this.#proxy, target.hostname);
    // A fresh connection per call, like the original services (Python `requests.get`, a
    // JAX-RS client per call): the sidecar pools upstream connections, and the app never
    // reuses a keep-alive socket the other side is closing.
    const common = { method: call.method ?? 'GET', headers, agent: false as const, setHost: false };
    if (via !== null) return { ...common, host: via.host, port: via.port, path: target.href };
    const host = target.hostname.startsWith('[') ? target.hostname.slice(1, -1) : target.hostname;
    return { ...common, host, port: target.port === '' ? 80 : Number(target.port), path: target.pathname + target.search };
  }
}

/** The state of one call: settles once, with a response, an error or a timeout. */
class Call {
  readonly #resolve: (reply: MeshReply) => void;
  readonly #timeoutMs: number;
  #timer: NodeJS.Timeout | null = null;
  #done = false;

  constructor(resolve: (reply: MeshReply) => void, timeoutMs: number) {
    this.#resolve = resolve;
    this.#timeoutMs = timeoutMs;
  }

  start(options: RequestOptions, body: string | undefined): void {
    let req: ClientRequest;
    try {
      req = request(options, (res) => this.#read(res));
    } catch (err) {
      // An invalid header value (a caller bug) is thrown synchronously by node:http.
      this.#settle(failed((err as NodeJS.ErrnoException).code ?? String(err)));
      return;
    }
    this.#timer = setTimeout(() => {
      this.#settle(failed('timeout'));
      req.destroy();
    }, this.#timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => this.#settle(failed(err.code ?? err.message)));
    req.end(body);
  }

  #read(res: IncomingMessage): void {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        this.#settle(failed('response body too large'));
        res.destroy();
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => this.#settle({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), error: null }));
    res.on('error', (err: NodeJS.ErrnoException) => this.#settle(failed(err.code ?? err.message)));
  }

  #settle(reply: MeshReply): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#resolve(reply);
  }
}

function failed(error: string): MeshReply {
  return { status: 0, headers: {}, body: '', error };
}
