/**
 * Loading the Envoy xDS v3 protos that ship in `@grpc/grpc-js-xds` (folder `deps/`), twice
 * over the same files and include dirs:
 *
 * - as a proto-loader package definition, for grpc-js: the ADS service for
 *   `server.addService` and for clients. grpc-js converts messages with LOADER_OPTIONS, so
 *   handlers see plain objects of the generated `__Output` types.
 * - as a protobufjs `Root`, for encoding and decoding resources packed in `Any`s (any.ts).
 *
 * Both are loaded on first use (about 0.1 s each) and cached for the life of the process;
 * importing this module does nothing. Both throw (ENOENT, parse errors) only when the
 * installed `@grpc/grpc-js-xds` lacks the protos: a broken install, not a runtime case.
 * The generated types in `./generated/` come from the same files and options
 * (`scripts/gen-xds-types.sh`); change the two together.
 */
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import type { IConversionOptions, Root } from 'protobufjs';
import type {
  AggregatedDiscoveryServiceClient,
  AggregatedDiscoveryServiceDefinition,
} from './generated/envoy/service/discovery/v3/AggregatedDiscoveryService.js';

/** The entry files, relative to `deps/envoy-api`; imports are found in the include dirs. */
export const XDS_PROTO_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/clusters/aggregate/v3/cluster.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
] as const;

/**
 * How grpc-js (through proto-loader) converts messages to and from plain objects: field
 * names as in the .proto (snake_case), 64-bit integers and enums as strings, defaults
 * filled in, virtual oneof fields naming the member that is set, and `Any`s of known
 * types unpacked into `{'@type': url, ...fields}` (`json`).
 */
export const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  json: true,
} as const satisfies protoLoader.Options;

/** The same conversion, for protobufjs `Type.toObject` (any.ts). */
export const CONVERSION_OPTIONS: IConversionOptions = {
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  json: true,
};

/** The fully qualified name of the ADS service in the package definition. */
export const ADS_SERVICE_NAME = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

/** A client class for ADS, as `grpc.makeClientConstructor` makes it. */
export type AdsClientConstructor = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => AggregatedDiscoveryServiceClient;

let includeDirs: readonly string[] | undefined;
let packageDefinition: protoLoader.PackageDefinition | undefined;
let root: Root | undefined;

/** `deps/{envoy-api,xds,googleapis,protoc-gen-validate}` of the installed @grpc/grpc-js-xds. */
export function xdsIncludeDirs(): readonly string[] {
  if (includeDirs === undefined) {
    const pkg = createRequire(import.meta.url).resolve('@grpc/grpc-js-xds/package.json');
    const deps = join(dirname(pkg), 'deps');
    includeDirs = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(deps, d));
  }
  return includeDirs;
}

/** The proto-loader package definition of XDS_PROTO_FILES, loaded once. */
export function loadXdsPackageDefinition(): protoLoader.PackageDefinition {
  packageDefinition ??= protoLoader.loadSync([...XDS_PROTO_FILES], {
    ...LOADER_OPTIONS,
    includeDirs: [...xdsIncludeDirs()],
  });
  return packageDefinition;
}

/** The ADS service (SotW and delta), for `server.addService(adsServiceDefinition(), handlers)`. */
export function adsServiceDefinition(): AggregatedDiscoveryServiceDefinition {
  return loadXdsPackageDefinition()[ADS_SERVICE_NAME] as unknown as AggregatedDiscoveryServiceDefinition;
}

/** A client class for ADS: `new (adsClientConstructor())('127.0.0.1:15010', credentials)`. */
export function adsClientConstructor(): AdsClientConstructor {
  const ctor = grpc.makeClientConstructor(adsServiceDefinition(), 'AggregatedDiscoveryService');
  return ctor as unknown as AdsClientConstructor;
}

/**
 * The protobufjs Root of XDS_PROTO_FILES (with `keepCase`, like the loader), loaded and
 * resolved once. Callers must not add to it or change it.
 */
export function xdsRoot(): Root {
  if (root === undefined) {
    const loaded = new protobuf.Root();
    loaded.resolvePath = includeDirResolver(loaded.resolvePath.bind(loaded), [
      ...xdsIncludeDirs(),
      protobufWellKnownDir(),
    ]);
    loaded.loadSync([...XDS_PROTO_FILES], { keepCase: true });
    loaded.resolveAll();
    root = loaded;
  }
  return root;
}

/**
 * Resolves an import against the include dirs in order, as protoc and proto-loader do;
 * falls back to protobufjs's own resolution, which serves its bundled well-known types
 * (google/protobuf/{any,duration,struct,wrappers...}.proto).
 */
function includeDirResolver(
  fallback: (origin: string, target: string) => string | null,
  dirs: readonly string[],
): (origin: string, target: string) => string | null {
  return (origin, target) => {
    if (isAbsolute(target)) return target;
    for (const dir of dirs) {
      const candidate = join(dir, target);
      if (readable(candidate)) return candidate;
    }
    return fallback(origin, target);
  };
}

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * protobufjs's package folder: it holds google/protobuf/descriptor.proto, which the
 * validate and udpa annotations import and which protobufjs does not bundle by default
 * (proto-loader registers it globally on import; this does not rely on that).
 */
function protobufWellKnownDir(): string {
  return dirname(createRequire(import.meta.url).resolve('protobufjs/package.json'));
}
