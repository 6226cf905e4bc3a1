/**
 * Multi-document YAML with source positions (the `yaml` package keeps the node ranges;
 * a LineCounter turns offsets into lines). Each document keeps its syntax tree so that a
 * finding's field path can be mapped back to the line a user must edit.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node } from 'yaml';
import { type Finding, finding } from './finding.js';
import type { Path } from './schema/path.js';

export interface Position {
  readonly line: number;
  readonly column: number;
}

export interface YamlDocument {
  readonly file: string;
  /** 0-based index of the document in its file. */
  readonly index: number;
  /** The document as plain data (maps become objects). */
  readonly value: unknown;
  /** Where the document starts. */
  readonly position: Position;
  /** The line of the node at `path`, or of its nearest existing ancestor. */
  locate(path: Path): Position;
}

export interface YamlReadResult {
  readonly documents: readonly YamlDocument[];
  readonly findings: readonly Finding[];
}

/** Every alias expansion counts; a small cap stops "billion laughs" documents. */
const MAX_ALIAS_COUNT = 100;

export function readYaml(text: string, file: string): YamlReadResult {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const documents: YamlDocument[] = [];
  const findings: Finding[] = [];
  // parseAllDocuments returns an EmptyStream (no documents) for empty input.
  const list = Array.isArray(docs) ? docs : [];
  list.forEach((doc, index) => {
    if (doc.errors.length > 0) {
      for (const err of doc.errors) {
        const pos = lineCounter.linePos(err.pos[0]);
        findings.push(finding('TRELLIS_CONFIG_YAML_SYNTAX', firstLine(err.message), { file, line: pos.line, column: pos.col }));
      }
      return;
    }
    if (doc.contents === null) return; // an empty document, e.g. after a trailing `---`
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      const pos = lineCounter.linePos(doc.contents.range?.[0] ?? 0);
      const message = err instanceof Error ? err.message : String(err);
      findings.push(finding('TRELLIS_CONFIG_YAML_SYNTAX', firstLine(message), { file, line: pos.line, column: pos.col }));
      return;
    }
    documents.push(makeDocument(doc, file, index, value, lineCounter));
  });
  return { documents, findings };
}

function firstLine(message: string): string {
  return message.split('\n', 1)[0] ?? message;
}

function makeDocument(doc: Document.Parsed, file: string, index: number, value: unknown, lc: LineCounter): YamlDocument {
  const toPosition = (offset: number): Position => {
    const p = lc.linePos(offset);
    return { line: p.line, column: p.col };
  };
  const start = doc.contents?.range?.[0] ?? 0;
  return {
    file,
    index,
    value,
    position: toPosition(start),
    locate: (path) => toPosition(locateOffset(doc.contents as Node | null, path, start)),
  };
}

/**
 * Walks `path` through the tree. A map entry is located at its key (the line a user reads
 * as "the field"), a list item at the item; a path that leaves the tree (a missing
 * required field) stops at the deepest node that exists.
 */
function locateOffset(root: Node | null, path: Path, fallback: number): number {
  let node: unknown = root;
  let offset = root?.range?.[0] ?? fallback;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (pair === undefined) break;
      offset = (pair.key as Node).range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (item === undefined || item === null) break;
      offset = (item as Node).range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset;
}
