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

/** One subject alternative name: its type as Node spells it (`DNS`, `URI`, `IP Address`, `email`...) and its value. */
export interface SanEntry {
  readonly type: string;
  readonly value: string;
}

/**
 * Node's `subjectaltname` text (`DNS:a.example, URI:spiffe://..., IP Address:10.0.0.1`)
 * as entries. Node writes a value holding characters that would make the list ambiguous
 * (a comma, a quote) as a JSON string, so a quoted value is read to its closing quote.
 */
export function parseSubjectAltNames(text: string | undefined): SanEntry[] {
  const out: SanEntry[] = [];
  let i = 0;
  while (text !== undefined && i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const type = text.slice(i, colon);
    let end: number;
    let value: string;
    if (text[colon + 1] === '"') {
      end = colon + 2;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      end++;
      value = text.slice(colon + 1, end);
      try {
        value = JSON.parse(value) as string;
      } catch {
        // keep it as it is
      }
    } else {
      end = text.indexOf(', ', colon + 1);
      if (end < 0) end = text.length;
      value = text.slice(colon + 1, end);
    }
    out.push({ type, value });
    i = end + 2; // past ', '
  }
  return out;
}

/** The SAN values of a certificate that Envoy matches, without their type prefix. */
export function subjectAltNames(cert: Pick<PeerCertificate, 'subjectaltname'> | undefined): string[] {
  return parseSubjectAltNames(cert?.subjectaltname)
    .filter((e) => SAN_TYPES.has(e.type))
    .map((e) => e.value);
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
