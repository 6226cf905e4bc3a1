/**
 * `analyze`: validation findings of every resource, then checks of the set as a whole
 * (like `istioctl analyze`). Pure: resources in, findings out, in a stable order; the
 * certificate files Gateways and DestinationRules name are checked only when a
 * `readFile` is given.
 */
import { DEFAULT_TRUST_DOMAIN } from '../../core/spiffe.js';
import { compareFindings, type Finding } from '../finding.js';
import type { LoadResult } from '../load.js';
import { checkCertificateFiles, type ReadFile } from './certificate-files.js';
import { buildModel, duplicateFindings, type Model } from './model.js';
import { checkPeerAuthentication } from './peer-authentication.js';
import { checkConflictingVirtualServices, checkGateways, checkHosts, checkSubsets } from './routes.js';
import { checkGatewaySelectors, checkSubsetSelectors } from './selectors.js';

export interface AnalyzeOptions {
  readonly domain?: string;
  /** Reads the certificate, key and CA files the configuration names, to check them. */
  readonly readFile?: ReadFile;
}

type Analyzer = (model: Model, domain: string) => Finding[];

const ANALYZERS: readonly Analyzer[] = [
  checkSubsets,
  checkGateways,
  checkHosts,
  checkConflictingVirtualServices,
  checkGatewaySelectors,
  checkSubsetSelectors,
  checkPeerAuthentication,
];

export function analyze(input: LoadResult, options: AnalyzeOptions = {}): Finding[] {
  const domain = options.domain ?? DEFAULT_TRUST_DOMAIN;
  const model = buildModel(input.resources, input.workloads);
  const findings = [...input.findings, ...duplicateFindings(input.resources)];
  for (const run of ANALYZERS) findings.push(...run(model, domain));
  if (options.readFile !== undefined) findings.push(...checkCertificateFiles(model, options.readFile));
  return dedupe(findings).sort(compareFindings);
}

function dedupe(findings: readonly Finding[]): Finding[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    const key = `${f.code}|${f.file}|${f.line}|${f.path}|${f.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
