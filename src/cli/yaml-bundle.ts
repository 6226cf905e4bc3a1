/**
 * Several YAML files sent as one multi-document text, so that `trellis apply -f a.yaml -f
 * b.yaml` is validated and stored as one change (a VirtualService in one file may need
 * the DestinationRule in the other), and a finding's line in the text mapped back to the
 * file and line a user must edit.
 */
export interface BundledFile {
  /** As shown to the user (relative to the current directory when possible). */
  readonly name: string;
  readonly text: string;
}

export interface Bundle {
  readonly text: string;
  /** The file and line of a line of `text`; undefined for a separator line. */
  locate(line: number): { readonly file: string; readonly line: number } | undefined;
}

const SEPARATOR = '---\n';

export function bundle(files: readonly BundledFile[]): Bundle {
  const parts: string[] = [];
  const starts: { file: string; first: number; last: number }[] = [];
  let line = 1;
  for (const f of files) {
    const text = f.text.endsWith('\n') || f.text === '' ? f.text : `${f.text}\n`;
    if (parts.length > 0) {
      parts.push(SEPARATOR);
      line++;
    }
    const lines = countNewlines(text);
    starts.push({ file: f.name, first: line, last: line + lines - 1 });
    parts.push(text);
    line += lines;
  }
  return {
    text: parts.join(''),
    locate(n) {
      const s = starts.find((x) => n >= x.first && n <= x.last);
      return s === undefined ? undefined : { file: s.file, line: n - s.first + 1 };
    },
  };
}

function countNewlines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}
