/**
 * productpage v1 (Istio's `productpage.py`): the web page and JSON API of Bookinfo. It
 * calls details, then reviews (which calls ratings in v2/v3), forwarding the trace
 * headers and the signed-in user as `end-user`.
 *
 *   GET  /, /index.html                      the service table and links
 *   GET  /productpage                        the book page
 *   POST /login  (form field username)       signs in (cookie), redirects back
 *   GET  /logout                             signs out, redirects back
 *   GET  /api/v1/products                    [{id,title,descriptionHtml}]
 *   GET  /api/v1/products/<id>               details' JSON (or {error}), with details' status
 *   GET  /api/v1/products/<id>/reviews       reviews' JSON (or {error})
 *   GET  /api/v1/products/<id>/ratings       ratings' JSON (or {error})
 *   GET  /health                             "Product page is healthy"
 *   GET  /static/*                           the style sheet
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createLoggedServer, internalError, readBody, redirect, send, sendHtml, sendJson, type LogSink, stdoutLog } from '../shared/http-server.js';
import { MeshClient } from '../shared/mesh-client.js';
import { CONTEXT_HEADERS, copyHeaders, END_USER, TRACE_HEADERS } from '../shared/propagation.js';
import { Backends, type Fetched } from './backends.js';
import { renderIndexPage, type ServiceNode } from './index-page.js';
import { renderProductPage } from './page.js';
import { PRODUCTS } from './products.js';
import { isValidUser, sessionUser, signInCookie, signOutCookie } from './session.js';
import { STATIC_FILES } from './static.js';

export interface ProductpageOptions {
  /** Base URLs, e.g. `http://details:9080`. */
  readonly detailsUrl: string;
  readonly reviewsUrl: string;
  readonly ratingsUrl: string;
  readonly client?: MeshClient;
  /** Per-call timeout to the backends; default 3 s, as the original. */
  readonly timeoutMs?: number;
  readonly log?: LogSink;
}

/** Where login and logout send the browser back to when there is no Referer. */
const DEFAULT_BACK = '/productpage';

const API_PRODUCT = /^\/api\/v1\/products\/([^/]+)(?:\/(reviews|ratings))?$/;

/** The headers productpage forwards (the original's list; `end-user` comes from the session instead). */
const FORWARDED = [...TRACE_HEADERS, ...CONTEXT_HEADERS];

export function createProductpageServer(options: ProductpageOptions): Server {
  const page = new Productpage(options);
  return createLoggedServer((req, res, url) => page.handle(req, res, url), options.log ?? stdoutLog);
}

class Productpage {
  readonly #backends: Backends;
  readonly #indexHtml: string;

  constructor(options: ProductpageOptions) {
    this.#backends = new Backends({ ...options, client: options.client ?? new MeshClient() });
    const leaf = (name: string, endpoint: string, children: readonly ServiceNode[] = []): ServiceNode => ({ name, endpoint, children });
    const ratings = leaf(options.ratingsUrl, 'ratings');
    this.#indexHtml = renderIndexPage(leaf('productpage', 'productpage', [leaf(options.detailsUrl, 'details'), leaf(options.reviewsUrl, 'reviews', [ratings])]));
  }

  handle(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/login') return method === 'POST' ? this.#run(res, this.#login(req, res, url)) : notAllowed(res, 'POST');
    if (method !== 'GET' && method !== 'HEAD') return notAllowed(res, 'GET, HEAD');
    if (path === '/' || path === '/index.html') return sendHtml(res, 200, this.#indexHtml);
    if (path === '/health') return sendHtml(res, 200, 'Product page is healthy');
    if (path === '/productpage') return this.#run(res, this.#productPage(req, res));
    if (path === '/logout') return redirect(res, back(req), { 'set-cookie': signOutCookie() });
    if (path === '/api/v1/products') return sendJson(res, 200, PRODUCTS);
    const api = API_PRODUCT.exec(path);
    if (api !== null) return this.#run(res, this.#api(req, res, api[1] as string, api[2]));
    const file = STATIC_FILES.get(path);
    if (file !== undefined) return send(res, 200, file.type, file.body);
    return sendHtml(res, 404, '<!DOCTYPE html>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n');
  }

  #run(res: ServerResponse, work: Promise<void>): void {
    work.catch((err: unknown) => internalError(res, err));
  }

  async #productPage(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const user = sessionUser(req.headers.cookie);
    const headers = forwardHeaders(req, user);
    const product = PRODUCTS[0];
    if (product === undefined) throw new Error('the product catalogue is empty');
    // Sequential, as the original: details, then reviews.
    const details = await this.#backends.details(String(product.id), headers);
    const reviews = await this.#backends.reviews(String(product.id), headers);
    sendHtml(res, 200, renderProductPage({ user, product, details, reviews }));
  }

  async #api(req: IncomingMessage, res: ServerResponse, productId: string, what: string | undefined): Promise<void> {
    const headers = forwardHeaders(req, sessionUser(req.headers.cookie));
    let fetched: Fetched;
    if (what === 'reviews') fetched = await this.#backends.reviews(productId, headers);
    else if (what === 'ratings') fetched = await this.#backends.ratings(productId, headers);
    else fetched = await this.#backends.details(productId, headers);
    sendJson(res, fetched.status, fetched.body);
  }

  async #login(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const body = await readBody(req, res);
    if (body === null) return;
    // Flask's request.values: the form, then the query string.
    const user = new URLSearchParams(body).get('username') ?? url.searchParams.get('username') ?? '';
    if (!isValidUser(user)) return sendHtml(res, 400, '<!DOCTYPE html>\n<title>400 Bad Request</title>\n<h1>Bad Request</h1>\n<p>A user name is required (printable characters, no surrounding spaces).</p>\n');
    redirect(res, back(req), { 'set-cookie': signInCookie(user) });
  }
}

/** The outbound headers for one incoming request: the forwarded ones, and `end-user` when signed in. */
function forwardHeaders(req: IncomingMessage, user: string): Record<string, string> {
  const headers = copyHeaders(req.headers, FORWARDED, {});
  if (user !== '') headers[END_USER] = user;
  return headers;
}

/** The original redirects to `request.referrer`. */
function back(req: IncomingMessage): string {
  const referer = req.headers.referer;
  return typeof referer === 'string' && referer !== '' ? referer : DEFAULT_BACK;
}

function notAllowed(res: ServerResponse, allow: string): void {
  res.setHeader('allow', allow);
  sendHtml(res, 405, '<!DOCTYPE html>\n<title>405 Method Not Allowed</title>\n<h1>Method Not Allowed</h1>\n');
}
