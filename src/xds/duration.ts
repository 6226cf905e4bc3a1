/** `google.protobuf.Duration` as decoded (`{seconds, nanos}`, seconds possibly a string) to milliseconds. */
export function durationMs(d: { readonly seconds?: string | number; readonly nanos?: number } | null | undefined, fallback = 0): number {
  if (d == null) return fallback;
  return Number(d.seconds ?? 0) * 1000 + Math.round((d.nanos ?? 0) / 1e6);
}
