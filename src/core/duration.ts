/**
 * Durations as Istio reads them. Istio unmarshals `google.protobuf.Duration` fields with
 * the legacy jsonpb decoder, which calls Go's `time.ParseDuration`; so besides protobuf's
 * own `"1.5s"` form, Istio YAML uses `"100ms"`, `"5m"`, `"1h30m"` (the DestinationRule
 * reference itself writes `interval: 5m`). This parser accepts the same grammar:
 * a sequence of decimal numbers, each with a unit `ns`, `us` (`µs`), `ms`, `s`, `m`, `h`;
 * a lone `0` is zero. Negative durations are rejected: no mesh field takes one.
 */
export type DurationResult = { readonly ok: true; readonly ms: number } | { readonly ok: false; readonly reason: string };

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3, // U+00B5 micro sign
  'μs': 1e-3, // U+03BC Greek mu
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /(\d+(?:\.\d*)?|\.\d+)([a-zµμ]+)/y;

export function parseDuration(text: string): DurationResult {
  if (text === '0') return { ok: true, ms: 0 };
  if (text.startsWith('-')) return { ok: false, reason: `negative duration "${text}" is not allowed` };
  const body = text.startsWith('+') ? text.slice(1) : text;
  if (body === '') return { ok: false, reason: `"${text}" is not a duration (expected e.g. "7s", "0.5s", "100ms", "1h")` };
  let ms = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < body.length) {
    const m = PART.exec(body);
    if (m === null) return { ok: false, reason: `"${text}" is not a duration (expected e.g. "7s", "0.5s", "100ms", "1h")` };
    const unit = UNIT_MS[m[2] as string];
    if (unit === undefined) return { ok: false, reason: `unknown unit "${m[2]}" in duration "${text}" (use ns, us, ms, s, m or h)` };
    ms += Number(m[1]) * unit;
  }
  return { ok: true, ms };
}

/** Formats milliseconds the way a user wrote them most likely: "500ms", "7s", "1.5s", "2m", "1h". */
export function formatDuration(ms: number): string {
  if (ms !== 0 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms !== 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000) return `${ms / 1000}s`;
  return `${ms}ms`;
}
