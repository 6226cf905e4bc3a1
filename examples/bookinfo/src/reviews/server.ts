/**
 * reviews v1/v2/v3 (Istio's Java `LibertyRestEndpoint`): two fixed reviews of the book;
 * v2 and v3 add each reviewer's rating from the ratings service, in the version's color.
 *
 *   GET /reviews/<id> → {"id":"<id>","podname":"...","clustername":"...","reviews":[
 *                          {"reviewer":"Reviewer1","text":"...","rating":{"stars":5,"color":"black"}}, ...]}
 *                       (v1: no "rating"; ratings failing: "rating":{"error":"Ratings service is currently unavailable"})
 *   GET /health       → {"status":"Reviews is healthy"}
 */
import type { IncomingHttpHeaders, Server, ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { createLoggedServer, internalError, sendJson, stdoutLog, type LogSink } from '../shared/http-server.js';
import { MeshClient } from '../shared/mesh-client.js';
import { CONTEXT_HEADERS, copyHeaders, END_USER, TRACE_HEADERS } from '../shared/propagation.js';
import type { ReviewsConfig } from './config.js';

export interface ReviewsOptions {
  readonly config: ReviewsConfig;
  /** Base URL of ratings, e.g. `http://ratings:9080`. */
  readonly ratingsUrl: string;
  readonly client?: MeshClient;
  /** Shown on the product page as "Reviews served by"; default this machine's host name. */
  readonly podname?: string;
  /** Default the string "null", as the Java original prints an unset `CLUSTER_NAME` (the page then hides it). */
  readonly clustername?: string;
  readonly log?: LogSink;
}

export const RATINGS_UNAVAILABLE = 'Ratings service is currently unavailable';

const REVIEWS = [
  { reviewer: 'Reviewer1', text: 'An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!' },
  { reviewer: 'Reviewer2', text: 'Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.' },
] as const;

/** The headers reviews forwards to ratings: trace context, the signed-in user, and session headers. */
const FORWARDED = [...TRACE_HEADERS, END_USER, ...CONTEXT_HEADERS];

/** Java's `int` path parameter: anything else does not match the route. */
const INT_MAX = 2 ** 31 - 1;

export function createReviewsServer(options: ReviewsOptions): Server {
  const reviews = new Reviews(options);
  return createLoggedServer((req, res, url) => {
    const path = url.pathname;
    if (path === '/health' && req.method === 'GET') return sendJson(res, 200, { status: 'Reviews is healthy' });
    const m = /^\/reviews\/([+-]?\d+)$/.exec(path);
    const id = m === null ? NaN : Number(m[1]);
    if (req.method !== 'GET' || !Number.isInteger(id) || Math.abs(id) > INT_MAX) return sendJson(res, 404, { error: 'not found' });
    reviews.answer(String(id), req.headers, res).catch((err: unknown) => internalError(res, err));
  }, options.log ?? stdoutLog);
}

class Reviews {
  readonly #options: ReviewsOptions;
  readonly #client: MeshClient;
  readonly #podname: string;
  readonly #clustername: string;

  constructor(options: ReviewsOptions) {
    this.#options = options;
    this.#client = options.client ?? new MeshClient();
    this.#podname = options.podname ?? hostname();
    this.#clustername = options.clustername ?? 'null';
  }

  async answer(productId: string, incoming: IncomingHttpHeaders, res: ServerResponse): Promise<void> {
    const { ratingsEnabled, starColor } = this.#options.config;
    const stars = ratingsEnabled ? await this.#ratings(productId, incoming) : null;
    sendJson(res, 200, {
      id: productId,
      podname: this.#podname,
      clustername: this.#clustername,
      reviews: REVIEWS.map((r) => {
        if (!ratingsEnabled) return { reviewer: r.reviewer, text: r.text };
        const n = stars?.[r.reviewer];
        const rating = typeof n === 'number' ? { stars: n, color: starColor } : { error: RATINGS_UNAVAILABLE };
        return { reviewer: r.reviewer, text: r.text, rating };
      }),
    });
  }

  /** Each reviewer's stars from ratings, or null when ratings did not answer 200 with JSON in time. */
  async #ratings(productId: string, incoming: IncomingHttpHeaders): Promise<Record<string, number> | null> {
    const headers = copyHeaders(incoming, FORWARDED, { accept: 'application/json' });
    const url = `${this.#options.ratingsUrl}/ratings/${productId}`;
    const reply = await this.#client.fetch(url, { headers, timeoutMs: this.#options.config.ratingsTimeoutMs });
    if (reply.status !== 200) return null;
    let parsed: unknown;
    try {
      parsed = JSON.parse(reply.body);
    } catch {
      return null;
    }
    const ratings = (parsed as { ratings?: unknown } | null)?.ratings;
    if (typeof ratings !== 'object' || ratings === null) return {};
    const out: Record<string, number> = {};
    for (const r of REVIEWS) {
      const n = (ratings as Record<string, unknown>)[r.reviewer];
      if (Number.isInteger(n)) out[r.reviewer] = n as number;
    }
    return out;
  }
}
