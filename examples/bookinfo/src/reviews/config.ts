/**
 * What distinguishes reviews v1, v2 and v3. Istio builds one Java program three times
 * with different settings (`ENABLE_RATINGS`, `STAR_COLOR`); here the version picks those
 * defaults and the same two variables override them.
 */

export interface ReviewsConfig {
  readonly version: string;
  /** Whether reviews calls ratings and shows stars (false in v1). */
  readonly ratingsEnabled: boolean;
  readonly starColor: string;
  /** The timeout of the ratings call, in ms: 10 s for black stars, 2.5 s otherwise. */
  readonly ratingsTimeoutMs: number;
}

const VERSION_DEFAULTS: Readonly<Record<string, { readonly ratingsEnabled: boolean; readonly starColor: string }>> = {
  v1: { ratingsEnabled: false, starColor: 'black' },
  v2: { ratingsEnabled: true, starColor: 'black' },
  v3: { ratingsEnabled: true, starColor: 'red' },
};

/**
 * Reads `VERSION` (or `SERVICE_VERSION`; default v1), `ENABLE_RATINGS` (true when it says
 * `true`, any case, as Java's `Boolean.valueOf`) and `STAR_COLOR` (default black).
 */
export function reviewsConfigFromEnv(env: NodeJS.ProcessEnv): ReviewsConfig {
  const version = env.VERSION || env.SERVICE_VERSION || 'v1';
  const defaults = VERSION_DEFAULTS[version] ?? { ratingsEnabled: false, starColor: 'black' };
  const enable = env.ENABLE_RATINGS;
  const ratingsEnabled = enable === undefined || enable === '' ? defaults.ratingsEnabled : enable.toLowerCase() === 'true';
  const starColor = env.STAR_COLOR || defaults.starColor;
  return { version, ratingsEnabled, starColor, ratingsTimeoutMs: ratingsTimeoutMs(starColor) };
}

/**
 * The original's `timeout = star_color.equals("black") ? 10000 : 2500`. v2's 10 s is
 * longer than productpage's 3 s per call: that mismatch is the bug Istio's
 * fault-injection task exposes (a 7 s ratings delay shows the reviews error after ~6 s).
 */
export function ratingsTimeoutMs(starColor: string): number {
  return starColor === 'black' ? 10_000 : 2_500;
}
