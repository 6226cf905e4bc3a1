/**
 * Envoy's local reply body when an upstream try fails before response headers, shared by
 * the HTTP/1.1 and HTTP/2 engines: the reset reason by response flag, and for a
 * connection that failed in its TLS handshake the transport failure reason
 * (`TLS_error:...`), as Envoy words it.
 */

const PREFIX = 'upstream connect error or disconnect/reset before headers. reset reason: ';
const CONNECTION_FAILURE = Buffer.from(`${PREFIX}connection failure`);
const REMOTE_RESET = Buffer.from(`${PREFIX}remote reset`);
const CONNECTION_TERMINATION = Buffer.from(`${PREFIX}connection termination`);

/** The body for `flag` (UF, UC, UR, maybe with `,URX`); `transportFailure` is the TLS reason of a UF, or null. */
export function upstreamFailureBody(flag: string, transportFailure: string | null): Buffer {
  if (flag.startsWith('UF')) {
    return transportFailure === null ? CONNECTION_FAILURE : Buffer.from(`${PREFIX}connection failure, transport failure reason: ${transportFailure}`);
  }
  return flag.startsWith('UR') ? REMOTE_RESET : CONNECTION_TERMINATION;
}
