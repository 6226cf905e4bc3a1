/**
 * The import directions of DESIGN.md: `core` imports no other part; `api` only `core`;
 * the proxy knows only xDS (never `api`, `registry` or `control-plane`); and so on.
 * Also: importing a module has no side effects beyond the CLI entry point.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SRC = join(ROOT, 'src');

/** Which parts each part may import (itself is always allowed). */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  core: [],
  api: ['core'],
  xds: ['core'],
  registry: ['core', 'api'],
  'control-plane': ['core', 'api', 'xds', 'registry'],
  proxy: ['core', 'xds'],
  cli: ['core', 'api', 'xds', 'registry', 'control-plane', 'proxy'],
};

/** Packages that would bring sockets, gRPC or Kubernetes into the pure parts. */
const FORBIDDEN_PACKAGES: Readonly<Record<string, readonly string[]>> = {
  core: ['node:net', 'node:http', 'node:http2', '@grpc/grpc-js', '@kubernetes/client-node'],
  api: ['node:net', 'node:http', 'node:http2', '@grpc/grpc-js', '@kubernetes/client-node'],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

function imports(text: string): string[] {
  const specs: string[] = [];
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]/gm)) specs.push(m[1] as string);
  for (const m of text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) specs.push(m[1] as string);
  for (const m of text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) specs.push(m[1] as string);
  return specs;
}

function partOf(file: string): string {
  return relative(SRC, file).split(/[\\/]/)[0] as string;
}

/** The imports of `file` (with contents `text`) that break the design's directions. */
function violations(file: string, text: string): string[] {
  const from = partOf(file);
  const allowed = ALLOWED[from];
  if (allowed === undefined) return [`${relative(ROOT, file)}: src/${from} is not a part of the design`];
  const out: string[] = [];
  for (const spec of imports(text)) {
    if (spec.startsWith('.')) {
      const to = partOf(resolve(dirname(file), spec));
      if (to !== from && !allowed.includes(to)) out.push(`${relative(ROOT, file)} imports ${to} (${spec})`);
    } else if ((FORBIDDEN_PACKAGES[from] ?? []).some((p) => spec === p || spec.startsWith(`${p}/`))) {
      out.push(`${relative(ROOT, file)} imports ${spec}`);
    }
  }
  return out;
}

describe('architecture', () => {
  it('keeps the import directions of DESIGN.md in every source file', () => {
    const files = sourceFiles(SRC);
    assert.ok(files.length > 10, 'no source files found');
    assert.deepEqual(files.flatMap((f) => violations(f, readFileSync(f, 'utf8'))), []);
  });

  it('reports a proxy that imports the configuration API, and a core that imports api', () => {
    assert.deepEqual(violations(join(SRC, 'proxy', 'router.ts'), "import { KINDS } from '../api/kinds.js';\n"), [
      'src/proxy/router.ts imports api (../api/kinds.js)',
    ]);
    assert.deepEqual(violations(join(SRC, 'core', 'x.ts'), "export { a } from '../api/a.js';\nimport net from 'node:net';\n"), [
      'src/core/x.ts imports api (../api/a.js)',
      'src/core/x.ts imports node:net',
    ]);
    assert.deepEqual(violations(join(SRC, 'cli', 'x.ts'), "import { main } from '../proxy/main.js';\n"), []);
  });
});
