/**
 * Decodes a chunked HTTP/1.1 body (RFC 9112 §7.1) into its data, for a request that goes
 * on to an HTTP/2 upstream, where DATA frames do the framing. The bytes must already have
 * passed `BodyFramer` (h1-body.ts), which rejects every malformed or smuggling-prone
 * encoding: this decoder trusts its input and only finds the data in it. Chunk extensions
 * and the trailer section are skipped.
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
          if (c === 0x0a) {
            if (this.#lineLength === 0) this.#state = DONE;
            this.#lineLength = 0;
          } else if (c !== 0x0d) {
            this.#lineLength++;
          }
          i++;
          break;
      }
    }
    return out;
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
