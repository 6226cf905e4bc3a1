/**
 * The control plane, wired: config directory → store → registry → mesh → translation →
 * ADS; run-time registrations → registry; an admin HTTP API over all of it. `start()`
 * returns once both servers listen; `close()` stops everything it started.
 */
import type { Logger } from '../core/log.js';
import { AggregateRegistry } from '../registry/aggregate.js';
import { ConfigRegistry } from '../registry/config-source.js';
import { RegistrationRegistry } from '../registry/registration-source.js';
import { AdminServer } from './admin/server.js';
import { AppliedConfig } from './applied-config.js';
import { ConfigStore } from './config-store.js';
import { Debouncer } from './debounce.js';
import { DirWatcher } from './dir-watcher.js';
import { buildMesh, DEFAULT_MESH_CONFIG, type Mesh, type MeshConfig } from './translate/mesh.js';
import { XdsServer } from './xds-server/server.js';

export interface ControlPlaneOptions {
  readonly configDir: string;
  readonly host?: string;
  readonly xdsPort?: number;
  readonly adminPort?: number;
  readonly mesh?: Partial<MeshConfig>;
  readonly registrationTtlMs?: number;
  /** Debounce settings (Istio: 100 ms quiet, 10 s max). */
  readonly debounce?: { readonly quietMs?: number; readonly maxMs?: number };
  readonly log: Logger;
}

export const DEFAULT_XDS_PORT = 15010;
export const DEFAULT_ADMIN_PORT = 15014;

export class ControlPlane {
  readonly store: ConfigStore;
  /** Configuration applied at run time (`trellis apply`), stored under `<configDir>/applied/`. */
  readonly applied: AppliedConfig;
  readonly registrations: RegistrationRegistry;
  readonly registry: AggregateRegistry;
  readonly xds: XdsServer;
  readonly meshConfig: MeshConfig;
  readonly #configRegistry: ConfigRegistry;
  readonly #options: ControlPlaneOptions;
  readonly #debouncer: Debouncer;
  readonly #log: Logger;
  #admin: AdminServer | undefined;
  #watcher: DirWatcher | undefined;
  #mesh: Mesh;
  #pushes = 0;
  xdsPort = 0;
  adminPort = 0;

  constructor(options: ControlPlaneOptions) {
    this.#options = options;
    this.#log = options.log;
    this.meshConfig = { ...DEFAULT_MESH_CONFIG, ...options.mesh };
    this.store = new ConfigStore(options.configDir, { domain: this.meshConfig.domain, keepPositions: false });
    this.applied = new AppliedConfig({ configDir: options.configDir, store: this.store, domain: this.meshConfig.domain, rescan: () => this.#rescan() });
    this.#configRegistry = new ConfigRegistry({ domain: this.meshConfig.domain });
    this.registrations = new RegistrationRegistry(options.registrationTtlMs === undefined ? {} : { ttlMs: options.registrationTtlMs });
    this.registry = new AggregateRegistry([this.#configRegistry, this.registrations]);
    this.#mesh = buildMesh([], this.registry.snapshot(), this.meshConfig);
    this.xds = new XdsServer(this.#mesh, options.log.child({ component: 'xds' }));
    this.#debouncer = new Debouncer(() => this.#push(), options.debounce);
  }

  get mesh(): Mesh {
    return this.#mesh;
  }

  /**
   * True when no change waits for its push and every connected proxy has acknowledged
   * the current version of everything it subscribes to: the mesh has converged.
   */
  get settled(): boolean {
    if (this.#debouncer.pending) return false;
    for (const p of this.xds.proxies()) {
      for (const [type, st] of Object.entries(p.status.types)) {
        const version = p.snapshot.types.get(type)?.version;
        if (version !== undefined && st.ackedVersion !== version) return false;
      }
    }
    return true;
  }

  /**
   * After a configuration change: pushes it now (skipping the debounce) and resolves once
   * every proxy has acknowledged it (`whenSettled`), or false after `timeoutMs`.
   */
  whenChangePushed(timeoutMs: number): Promise<boolean> {
    this.#debouncer.flush();
    return this.whenSettled(timeoutMs);
  }

  /** Resolves once `settled` (checked on every acknowledgement), or false after `timeoutMs`. */
  whenSettled(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (!this.settled) return;
        clearTimeout(timer);
        this.xds.events.off('sync', check);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.xds.events.off('sync', check);
        resolve(false);
      }, timeoutMs);
      this.xds.events.on('sync', check);
      // A pending push ends in acknowledgements; without one, check now.
      queueMicrotask(check);
    });
  }

  /** How many pushes have been made (for tests and metrics). */
  get pushes(): number {
    return this.#pushes;
  }

  async start(): Promise<void> {
    this.#rescan();
    this.#configRegistry.update(this.store.snapshot().resources);
    this.#rebuild();
    this.xds.push(this.#mesh); // no proxy is connected yet: this sets the mesh the first ones get
    this.store.subscribe(() => this.#onConfig());
    this.registry.subscribe(() => this.#debouncer.trigger());
    this.#watcher = new DirWatcher(this.#options.configDir, () => this.#rescan());
    const host = this.#options.host ?? '127.0.0.1';
    this.xdsPort = await this.xds.listen(host, this.#options.xdsPort ?? DEFAULT_XDS_PORT);
    this.#admin = new AdminServer(this, this.#log.child({ component: 'admin' }));
    this.adminPort = await this.#admin.listen(host, this.#options.adminPort ?? DEFAULT_ADMIN_PORT);
    this.#log.info('control plane started', { config: this.#options.configDir, xds: `${host}:${this.xdsPort}`, admin: `${host}:${this.adminPort}` });
  }

  /** Re-reads the config directory now (the watcher does this by itself). */
  rescan(): boolean {
    return this.#rescan();
  }

  async close(): Promise<void> {
    this.#watcher?.close();
    this.#debouncer.close();
    this.registrations.close();
    this.registry.close();
    await Promise.all([this.xds.close(), this.#admin?.close()]);
  }

  #rescan(): boolean {
    try {
      return this.store.rescan();
    } catch (err) {
      this.#log.error('cannot read the config directory', { dir: this.#options.configDir, err });
      return false;
    }
  }

  #onConfig(): void {
    const snap = this.store.snapshot();
    for (const file of snap.files) {
      if (file.valid) continue;
      const errors = file.findings.filter((f) => f.severity === 'error').map((f) => `${f.line ?? ''}: ${f.path ?? ''}: ${f.message} [${f.code}]`);
      this.#log.warn('invalid configuration file: the last good version of its resources keeps serving', { file: file.file, errors, servingPrevious: file.servingPrevious });
    }
    this.#configRegistry.update(snap.resources); // notifies the registry subscription when it changes
    this.#debouncer.trigger();
  }

  #rebuild(): void {
    this.#mesh = buildMesh(this.store.snapshot().resources, this.registry.snapshot(), this.meshConfig);
  }

  #push(): void {
    this.#rebuild();
    this.#pushes++;
    this.xds.push(this.#mesh);
  }
}
