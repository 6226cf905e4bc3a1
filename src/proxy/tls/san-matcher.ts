/**
 * Envoy's `match_subject_alt_names`: a peer certificate is accepted when one of its
 * subject alternative names (DNS, URI, email or IP) satisfies one of the StringMatchers.
 * Compiled once per TLS context; used as `checkServerIdentity` for upstream connections
 * and after the handshake for client certificates. Without matchers the name is not
 * checked at all (Envoy does not check the hostname either).
 */
import type { PeerCertificate } from 'node:tls';
import type { StringMatcher__Output } from '../../xds/generated/envoy/type/matcher/v3/StringMatcher.js';
import { compileStringMatcher, type ValueMatcher } from '../routing/string-matcher.js';

/** The SAN types Envoy matches, as Node's `subjectaltname` spells them. */
const SAN_TYPES = new Set(['DNS', 'URI', 'email', 'IP Address']);

/** The SAN values of a certificate, without their type prefix. */
export function subjectAltNames(cert: Pick<PeerCertificate, 'subjectaltname'> | undefined): string[] {
  const text = cert?.subjectaltname;
  if (text === undefined || text === '') return [];
  const out: string[] = [];
  for (const part of text.split(', ')) {
    const colon = part.indexOf(':');
    if (colon <= 0 || !SAN_TYPES.has(part.slice(0, colon))) continue;
    let value = part.slice(colon + 1);
    // Node quotes values with special characters as JSON strings.
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        // keep it as it is
      }
    }
    out.push(value);
  }
  return out;
}

export class SanMatcher {
  readonly #matchers: readonly ValueMatcher[];
  /** The configured matchers as written, for messages. */
  readonly description: string;

  /** Throws for an invalid regex (the resource is NACKed). */
  constructor(matchers: readonly StringMatcher__Output[]) {
    this.#matchers = matchers.map(compileStringMatcher);
    this.description = matchers.map(describe).join(', ');
  }

  /** Whether some SAN of `cert` satisfies some matcher. */
  accepts(cert: Pick<PeerCertificate, 'subjectaltname'> | undefined): boolean {
    for (const san of subjectAltNames(cert)) for (const m of this.#matchers) if (m.matches(san)) return true;
    return false;
  }

  /** For `tls.connect({checkServerIdentity})`: an Error when no SAN matches, else undefined. */
  check(cert: PeerCertificate): Error | undefined {
    if (this.accepts(cert)) return undefined;
    const sans = subjectAltNames(cert);
    const err = new Error(`certificate SANs [${sans.join(', ')}] match none of [${this.description}]`) as Error & { code: string; reason: string };
    err.code = 'ERR_TLS_CERT_ALTNAME_INVALID';
    err.reason = err.message;
    return err;
  }
}

function describe(m: StringMatcher__Output): string {
  const kind = m.match_pattern ?? 'exact';
  const value = kind === 'safe_regex' ? m.safe_regex?.regex : (m as unknown as Record<string, unknown>)[kind];
  return `${kind} ${String(value)}`;
}

/** A no-op `checkServerIdentity`: without SAN matchers the peer's name is not checked (Envoy's semantics). */
export function noIdentityCheck(): undefined {
  return undefined;
}
