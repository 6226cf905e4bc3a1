/**
 * `/config_dump` shows resources as received, but not private keys given inline (Envoy
 * redacts them too): a JSON.stringify replacer that puts `[redacted]` in place of the
 * inline data of every `private_key` (and `password`) DataSource. Files are shown by name.
 */

const SECRET_FIELDS = new Set(['private_key', 'password']);
const REDACTED = '[redacted]';

export function redactSecrets(this: unknown, key: string, value: unknown): unknown {
  if (!SECRET_FIELDS.has(key) || value === null || typeof value !== 'object') return value;
  const ds = value as Record<string, unknown>;
  const out: Record<string, unknown> = { ...ds };
  for (const f of ['inline_bytes', 'inline_string', 'environment_variable']) if (ds[f] != null && ds[f] !== '') out[f] = REDACTED;
  return out;
}
