/**
 * A synthetic mesh for the control-plane benchmark, written as YAML the way a team would
 * keep it: `team-NN.yaml` holds 100 Kubernetes Services and their 1,000 WorkloadEntries,
 * `traffic.yaml` the DestinationRules (subsets v1/v2) and VirtualServices (90/10 split)
 * of every tenth service. Addresses are unique on 127.0.0.0/16; localities are spread
 * over three zones of one region.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface MeshShape {
  readonly services: number;
  readonly endpointsPerService: number;
  /** Every `splitEvery`-th service gets a DestinationRule and a 90/10 VirtualService. */
  readonly splitEvery: number;
  readonly servicesPerFile: number;
}

export const DEFAULT_SHAPE: MeshShape = { services: 1_000, endpointsPerService: 10, splitEvery: 10, servicesPerFile: 100 };

const ZONES = ['us-east1/us-east1-a', 'us-east1/us-east1-b', 'us-east1/us-east1-c'] as const;

export function serviceName(i: number): string {
  return `svc-${String(i).padStart(4, '0')}`;
}

export function hostOf(i: number): string {
  return `${serviceName(i)}.default.svc.cluster.local`;
}

/** The EDS cluster name of a service's default subset, as the translator names it. */
export function clusterOf(i: number): string {
  return `outbound|8080||${hostOf(i)}`;
}

/** Unique, in 127.0.0.0/16, never .0 in the last octet. */
export function initialAddress(service: number, endpoint: number, shape: MeshShape): string {
  const n = service * shape.endpointsPerService + endpoint;
  return `127.0.${Math.floor(n / 250)}.${(n % 250) + 1}`;
}

function serviceYaml(i: number): string {
  const name = serviceName(i);
  return `apiVersion: v1
kind: Service
metadata:
  name: ${name}
  namespace: default
  labels:
    app: ${name}
spec:
  selector:
    app: ${name}
  ports:
  - name: http
    port: 8080
    targetPort: 8080
`;
}

function workloadEntryYaml(i: number, j: number, address: string): string {
  const name = serviceName(i);
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: ${name}-${j}
  namespace: default
spec:
  address: ${address}
  labels:
    app: ${name}
    version: v${(j % 2) + 1}
  locality: ${ZONES[j % ZONES.length]}
  serviceAccount: ${name}
`;
}

function trafficYaml(i: number): string {
  const name = serviceName(i);
  const host = hostOf(i);
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ${name}
  namespace: default
spec:
  host: ${host}
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ${name}
  namespace: default
spec:
  hosts:
  - ${host}
  http:
  - route:
    - destination:
        host: ${host}
        subset: v1
      weight: 90
    - destination:
        host: ${host}
        subset: v2
      weight: 10
`;
}

/**
 * The generated directory, with the addresses it currently holds, so that one
 * WorkloadEntry can be changed and its file rewritten.
 */
export class GeneratedMesh {
  readonly dir: string;
  readonly shape: MeshShape;
  readonly #addresses: string[][];

  constructor(dir: string, shape: MeshShape = DEFAULT_SHAPE) {
    this.dir = dir;
    this.shape = shape;
    this.#addresses = Array.from({ length: shape.services }, (_, i) => Array.from({ length: shape.endpointsPerService }, (_, j) => initialAddress(i, j, shape)));
  }

  get files(): number {
    return Math.ceil(this.shape.services / this.shape.servicesPerFile) + 1;
  }

  writeAll(): void {
    for (let f = 0; f * this.shape.servicesPerFile < this.shape.services; f++) this.#writeTeam(f);
    const traffic: string[] = [];
    for (let i = 0; i < this.shape.services; i += this.shape.splitEvery) traffic.push(trafficYaml(i));
    writeFileSync(join(this.dir, 'traffic.yaml'), traffic.join('---\n'));
  }

  /** The text of the team file holding service `i`, with endpoint `j` at `address`. */
  prepareChange(i: number, j: number, address: string): { readonly path: string; readonly text: string } {
    const row = this.#addresses[i];
    if (row === undefined || row[j] === undefined) throw new Error(`no endpoint ${i}/${j} in the generated mesh`);
    row[j] = address;
    const team = Math.floor(i / this.shape.servicesPerFile);
    return { path: this.#teamPath(team), text: this.#teamText(team) };
  }

  #teamPath(team: number): string {
    return join(this.dir, `team-${String(team).padStart(2, '0')}.yaml`);
  }

  #teamText(team: number): string {
    const docs: string[] = [];
    const first = team * this.shape.servicesPerFile;
    const last = Math.min(first + this.shape.servicesPerFile, this.shape.services);
    for (let i = first; i < last; i++) {
      docs.push(serviceYaml(i));
      (this.#addresses[i] ?? []).forEach((address, j) => docs.push(workloadEntryYaml(i, j, address)));
    }
    return docs.join('---\n');
  }

  #writeTeam(team: number): void {
    writeFileSync(this.#teamPath(team), this.#teamText(team));
  }
}
