/**
 * productpage's calls to details, reviews and ratings, with the original's behaviour:
 * a 3 s timeout per call, and reviews tried twice. The second reviews try is a bug Istio
 * keeps on purpose ("3s + 1 retry = 6s") for its fault-injection and request-timeout
 * tasks: with ratings delayed 7 s behind reviews v2, the page shows the reviews error
 * after about 6 s; with a 0.5 s route timeout on reviews, after about 1 s.
 */
import { MeshClient } from '../shared/mesh-client.js';

export const DETAILS_UNAVAILABLE = 'Sorry, product details are currently unavailable for this book.';
export const REVIEWS_UNAVAILABLE = 'Sorry, product reviews are currently unavailable for this book.';
export const PRODUCT_RATINGS_UNAVAILABLE = 'Sorry, product ratings are currently unavailable for this book.';

/** productpage.py: `requests.get(url, headers=headers, timeout=3.0)`. */
export const CALL_TIMEOUT_MS = 3_000;
/** productpage.py: `for _ in range(2)` around the reviews call. */
export const REVIEWS_TRIES = 2;

/** A backend's answer as productpage uses it: the status it reports and the JSON body. */
export interface Fetched {
  /** 200, the backend's error status, or 500 when there was no response at all. */
  readonly status: number;
  /** The backend's JSON on 200; otherwise `{error: <the original's message>}`. */
  readonly body: unknown;
}

export interface BackendsOptions {
  readonly client: MeshClient;
  readonly detailsUrl: string;
  readonly reviewsUrl: string;
  readonly ratingsUrl: string;
  /** Per-call timeout; default 3 s, as the original. Tests may shorten it. */
  readonly timeoutMs?: number;
}

export class Backends {
  readonly #options: BackendsOptions;
  readonly #timeoutMs: number;

  constructor(options: BackendsOptions) {
    this.#options = options;
    this.#timeoutMs = options.timeoutMs ?? CALL_TIMEOUT_MS;
  }

  details(productId: string, headers: Readonly<Record<string, string>>): Promise<Fetched> {
    return this.#get(`${this.#options.detailsUrl}/details/${productId}`, headers, 1, DETAILS_UNAVAILABLE);
  }

  reviews(productId: string, headers: Readonly<Record<string, string>>): Promise<Fetched> {
    return this.#get(`${this.#options.reviewsUrl}/reviews/${productId}`, headers, REVIEWS_TRIES, REVIEWS_UNAVAILABLE);
  }

  ratings(productId: string, headers: Readonly<Record<string, string>>): Promise<Fetched> {
    return this.#get(`${this.#options.ratingsUrl}/ratings/${productId}`, headers, 1, PRODUCT_RATINGS_UNAVAILABLE);
  }

  /** Up to `tries` GETs until one answers 200; the last failure's status is reported. */
  async #get(url: string, headers: Readonly<Record<string, string>>, tries: number, unavailable: string): Promise<Fetched> {
    let status = 500;
    for (let i = 0; i < tries; i++) {
      const reply = await this.#options.client.fetch(url, { headers, timeoutMs: this.#timeoutMs });
      if (reply.status === 200) {
        try {
          return { status: 200, body: JSON.parse(reply.body) as unknown };
        } catch {
          return { status: 500, body: { error: unavailable } };
        }
      }
      status = reply.status === 0 ? 500 : reply.status;
    }
    return { status, body: { error: unavailable } };
  }
}
