/**
 * `new Date(ms).toISOString()`, computed without V8's date cache: the first date
 * operation that breaks a time into fields (toISOString included, though it is UTC)
 * makes V8 set up its time-zone cache through ICU, which reads about 0.6 MiB of ICU data
 * into a process that otherwise never needs it (docs/proxy.md "Memory"). Log lines and
 * the xDS status stamp times this way.
 */

const MS_PER_DAY = 86_400_000;
/** Years toISOString writes with four digits; outside them, it is used itself. */
const MIN_MS = -62_167_219_200_000; // 0000-01-01T00:00:00.000Z
const MAX_MS = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

/** The UTC time `ms` (milliseconds since the epoch) as `YYYY-MM-DDTHH:mm:ss.sssZ`. */
export function isoTime(ms: number): string {
  if (!Number.isInteger(ms) || ms < MIN_MS || ms > MAX_MS) return new Date(ms).toISOString();
  const days = Math.floor(ms / MS_PER_DAY);
  const inDay = ms - days * MS_PER_DAY;
  // Days since 1970-01-01 to a civil date (Howard Hinnant's civil_from_days, eras of 400 years).
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T${pad(Math.floor(inDay / 3_600_000), 2)}:${pad(Math.floor(inDay / 60_000) % 60, 2)}:${pad(Math.floor(inDay / 1000) % 60, 2)}.${pad(inDay % 1000, 3)}Z`;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}
