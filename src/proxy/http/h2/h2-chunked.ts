/**
 * Decodes a chunked HTTP/1.1 body (RFC 9112 §7.1) into its data, where HTTP/2 DATA frames
 * do the framing instead: a request from an HTTP/1.1 client to an HTTP/2 upstream, and a
 * response from an HTTP/1.1 upstream to an HTTP/2 client. The bytes must already have
 * passed `BodyFramer` (h1-body.ts), which rejects every malformed or smuggling-prone
 * encoding: this decoder trusts its input and only finds the data in it. Chunk extensions
 * are skipped; the trailer section is kept (`trailers()`), to become HTTP/2 trailers.
 */

const SIZE = 0; // hex digits of a chunk size
const EXTENSION = 1; // anything up to the LF of the size line
const DATA = 2;
const DATA_END = 3; // the CRLF after chunk data
const TRAILERS = 4; // trailer field lines, up to the empty line
const DONE = 5;

export class ChunkedDecoder {
  #state = SIZE;
  #remaining = 0;
  /** Bytes of the current trailer line other than CR. */
  #lineLength = 0;
  /** The trailer section's bytes so far (Latin-1), CRLFs included. */
  #trailerText = '';

  /** The whole body (last chunk and trailer section) has been decoded. */
  get done(): boolean {
    return this.#state === DONE;
  }

  /** The data in `buf` (slices of it, no copies), in order. */
  decode(buf: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const n = buf.length;
    let i = 0;
    while (i < n && this.#state !== DONE) {
      const c = buf[i] as number;
      switch (this.#state) {
        case SIZE: {
          const digit = hexValue(c);
          if (digit >= 0) this.#remaining = this.#remaining * 16 + digit;
          else if (c === 0x0a) this.#endSizeLine();
          else if (c !== 0x0d) this.#state = EXTENSION;
          i++;
          break;
        }
        case EXTENSION:
          if (c === 0x0a) this.#endSizeLine();
          i++;
          break;
        case DATA: {
          const take = Math.min(this.#remaining, n - i);
          out.push(buf.subarray(i, i + take));
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#state = DATA_END;
          break;
        }
        case DATA_END:
          if (c === 0x0a) this.#state = SIZE;
          i++;
          break;
        case TRAILERS:
          i = this.#trailerBytes(buf, i);
          break;
      }
    }
    return out;
  }

  /**
   * The trailer fields, flat (`[name, value, ...]`, names lower-cased, values without
   * surrounding whitespace); empty when there were none. Call once `done`.
   */
  trailers(): string[] {
    const out: string[] = [];
    if (this.#trailerText.length <= 2) return out; // only the final CRLF
    for (const line of this.#trailerText.split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) out.push(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
    return out;
  }

  /** Scans trailer lines from `buf[i]`, keeping their text; returns where it stopped. */
  #trailerBytes(buf: Buffer, i: number): number {
    const start = i;
    const n = buf.length;
    for (; i < n; i++) {
      const c = buf[i] as number;
      if (c === 0x0a) {
        if (this.#lineLength === 0) {
          // The empty line ends the section.
          this.#state = DONE;
          i++;
          break;
        }
        this.#lineLength = 0;
      } else if (c !== 0x0d) {
        this.#lineLength++;
      }
    }
    this.#trailerText += buf.toString('latin1', start, i);
    return i;
  }

  #endSizeLine(): void {
    this.#state = this.#remaining === 0 ? TRAILERS : DATA;
    this.#lineLength = 0;
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}
