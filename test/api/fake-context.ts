/** A ParseContext for schema tests: collects reports with their display paths. */
import { formatPath } from '../../src/api/schema/path.js';
import type { ParseContext } from '../../src/api/schema/schema.js';
import type { Code } from '../../src/core/codes.js';

export interface Report {
  readonly code: Code;
  readonly path: string;
  readonly message: string;
}

export function fakeContext(namespace = 'default'): ParseContext & { reports: Report[] } {
  const reports: Report[] = [];
  return {
    namespace,
    domain: 'cluster.local',
    reports,
    report(code, path, message) {
      reports.push({ code, path: formatPath(path), message });
    },
  };
}
