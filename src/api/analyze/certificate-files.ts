/**
 * Certificate, key and CA files named by Gateway servers and DestinationRules: each must
 * exist and hold PEM data the proxy can load, or the proxy refuses (NACKs) the listener or
 * cluster that uses it, and the gateway or the route keeps its previous configuration.
 * Istio's analyzers do not look (istio/istio#50070).
 *
 * Only files the proxy reads are checked: modes SIMPLE, MUTUAL and OPTIONAL_MUTUAL
 * without a credentialName (which replaces the files). The files are read through the
 * `readFile` given, so analysis stays a function of its inputs; `trellis analyze` passes
 * the local file system.
 */
import { certificatesProblem, privateKeyProblem } from '../../core/pem.js';
import type { Finding } from '../finding.js';
import type { Resource } from '../resource.js';
import type { Path } from '../schema/path.js';
import { findingAt, type Model } from './model.js';

/** Reads a file as text; throws (a Node file-system error, with its `code`) when it cannot. */
export type ReadFile = (path: string) => string;

const KIND = { certificate: 'certificate', key: 'private key', ca: 'CA bundle' } as const;
type FileKind = (typeof KIND)[keyof typeof KIND];

interface FileUse {
  readonly file: string;
  readonly kind: FileKind;
  readonly path: Path;
}

/** What is wrong with a file's contents for its use, or undefined when the proxy can load it. */
function contentProblem(text: string, kind: FileKind): string | undefined {
  if (kind === KIND.key) {
    const problem = privateKeyProblem(text);
    if (problem === undefined) return undefined;
    return problem.kind === 'none' ? 'holds no PEM private key' : `holds a private key that cannot be loaded (${problem.detail})`;
  }
  const problem = certificatesProblem(text);
  if (problem === undefined) return undefined;
  return problem.kind === 'none' ? 'holds no PEM certificate' : `holds a certificate that cannot be parsed (${problem.detail})`;
}

function readProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'EISDIR') return 'is a directory';
  return `cannot be read (${code ?? (err as Error).message})`;
}

type Terminating = { mode?: string; credentialName?: string; credentialNames?: readonly string[] };

function readByProxy(tls: Terminating | undefined): boolean {
  const mode = tls?.mode;
  if (mode !== 'SIMPLE' && mode !== 'MUTUAL' && mode !== 'OPTIONAL_MUTUAL') return false;
  return tls?.credentialName === undefined && (tls?.credentialNames ?? []).length === 0;
}

function gatewayFiles(gw: Resource<'Gateway'>): FileUse[] {
  const out: FileUse[] = [];
  gw.spec.servers.forEach((server, i) => {
    const tls = server.tls;
    if (!readByProxy(tls)) return;
    const at = (field: string | number, ...rest: (string | number)[]): Path => ['spec', 'servers', i, 'tls', field, ...rest];
    const add = (file: string | undefined, kind: FileKind, path: Path) => file !== undefined && out.push({ file, kind, path });
    add(tls?.serverCertificate, KIND.certificate, at('serverCertificate'));
    add(tls?.privateKey, KIND.key, at('privateKey'));
    if (tls?.mode !== 'SIMPLE') add(tls?.caCertificates, KIND.ca, at('caCertificates'));
    tls?.tlsCertificates?.forEach((c, j) => {
      add(c.serverCertificate, KIND.certificate, at('tlsCertificates', j, 'serverCertificate'));
      add(c.privateKey, KIND.key, at('tlsCertificates', j, 'privateKey'));
      if (tls?.mode !== 'SIMPLE' && tls?.caCertificates === undefined) add(c.caCertificates, KIND.ca, at('tlsCertificates', j, 'caCertificates'));
    });
  });
  return out;
}

type ClientTls = { mode?: string; credentialName?: string; clientCertificate?: string; privateKey?: string; caCertificates?: string; insecureSkipVerify?: boolean };
type Policy = { tls?: ClientTls; portLevelSettings?: readonly { tls?: ClientTls }[] };

function clientTlsFiles(tls: ClientTls | undefined, path: Path, out: FileUse[]): void {
  if ((tls?.mode !== 'SIMPLE' && tls?.mode !== 'MUTUAL') || tls.credentialName !== undefined) return;
  if (tls.mode === 'MUTUAL' && tls.clientCertificate !== undefined) out.push({ file: tls.clientCertificate, kind: KIND.certificate, path: [...path, 'clientCertificate'] });
  if (tls.mode === 'MUTUAL' && tls.privateKey !== undefined) out.push({ file: tls.privateKey, kind: KIND.key, path: [...path, 'privateKey'] });
  if (tls.caCertificates !== undefined && tls.insecureSkipVerify !== true) out.push({ file: tls.caCertificates, kind: KIND.ca, path: [...path, 'caCertificates'] });
}

function policyFiles(policy: Policy | undefined, path: Path, out: FileUse[]): void {
  clientTlsFiles(policy?.tls, [...path, 'tls'], out);
  policy?.portLevelSettings?.forEach((p, i) => clientTlsFiles(p.tls, [...path, 'portLevelSettings', i, 'tls'], out));
}

function destinationRuleFiles(dr: Resource<'DestinationRule'>): FileUse[] {
  const out: FileUse[] = [];
  policyFiles(dr.spec.trafficPolicy, ['spec', 'trafficPolicy'], out);
  dr.spec.subsets.forEach((s, i) => policyFiles(s.trafficPolicy, ['spec', 'subsets', i, 'trafficPolicy'], out));
  return out;
}

export function checkCertificateFiles(model: Model, readFile: ReadFile): Finding[] {
  const problems = new Map<string, string | undefined>(); // `${kind}|${file}` -> problem; one read per file and use
  const problemOf = (use: FileUse): string | undefined => {
    const key = `${use.kind}|${use.file}`;
    if (!problems.has(key)) {
      let problem: string | undefined;
      try {
        problem = contentProblem(readFile(use.file), use.kind);
      } catch (err) {
        problem = readProblem(err);
      }
      problems.set(key, problem);
    }
    return problems.get(key);
  };
  const out: Finding[] = [];
  const check = (r: Resource<'Gateway'> | Resource<'DestinationRule'>, uses: readonly FileUse[]) => {
    for (const use of uses) {
      const problem = problemOf(use);
      if (problem === undefined) continue;
      out.push(findingAt(r, 'TRELLIS_ANALYZE_CERTIFICATE_UNREADABLE', use.path,
        `${use.kind} file ${use.file} ${problem}; a proxy given this configuration would reject it (NACK) and keep its previous one`));
    }
  };
  for (const gw of model.of('Gateway')) check(gw, gatewayFiles(gw));
  for (const dr of model.of('DestinationRule')) check(dr, destinationRuleFiles(dr));
  return out;
}
