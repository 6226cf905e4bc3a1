/**
 * Loading the Envoy xDS v3 protos that ship in `@grpc/grpc-js-xds` (folder `deps/`) once,
 * as one protobufjs `Root`, which serves both:
 *
 * - grpc-js: the ADS service for `server.addService` and for clients, with serializers
 *   over the Root's DiscoveryRequest/Response types. They convert messages exactly as
 *   `@grpc/proto-loader` would with LOADER_OPTIONS (`Type.fromObject` + `encode`,
 *   `decode` + `Type.toObject`), so handlers see plain objects of the generated
 *   `__Output` types.
 * - encoding and decoding resources packed in `Any`s (any.ts).
 *
 * Why not proto-loader at run time: its package definition is a second Root over the
 * same files plus a descriptor (a `DescriptorProto` object, and the encoded
 * `FileDescriptorProto`s) for each of its ~450 message types, which the ADS service
 * never uses: it took longer to load than the Root, and kept about 4 MiB more heap live
 * in the proxy.
 *
 * The Root is loaded on first use and kept for the life of the process; it comes from the
 * build's descriptor of the types Trellis uses (descriptor.ts), not from the .proto files;
 * importing this module does nothing. Loading throws (ENOENT, parse errors) only when the
 * installed `@grpc/grpc-js-xds` lacks the protos: a broken install, not a runtime case.
 * The generated types in `./generated/` come from the same files and options
 * (`scripts/gen-xds-types.sh`, with proto-loader's generator); change the two together.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { TrellisError } from '../core/errors.js';
import type * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import type { IConversionOptions, Root, Type } from 'protobufjs';
import type { AggregatedDiscoveryServiceClient } from './generated/envoy/service/discovery/v3/AggregatedDiscoveryService.js';

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
 * How messages are converted to and from plain objects, in proto-loader's terms (the
 * options of the generated types): field names as in the .proto (snake_case), 64-bit
 * integers and enums as strings, defaults filled in, virtual oneof fields naming the
 * member that is set, and `Any`s of known types unpacked into `{'@type': url, ...fields}`
 * (`json`).
 */
export const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  json: true,
} as const satisfies protoLoader.Options;

/** The same conversion, for protobufjs `Type.toObject` (any.ts and the ADS deserializers). */
export const CONVERSION_OPTIONS: IConversionOptions = {
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  json: true,
};

/** The fully qualified name of the ADS service in the xDS protos. */
export const ADS_SERVICE_NAME = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

/** A client class for ADS, as `grpc.makeClientConstructor` makes it. */
export type AdsClientConstructor = new (
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
) => AggregatedDiscoveryServiceClient;

/**
 * The ADS service as grpc-js takes it. Handlers and clients see plain objects: the
 * server reads `DiscoveryRequest__Output` and writes `DiscoveryResponse`, the client
 * the reverse (and the same for the delta messages).
 */
export interface AdsServiceDefinition extends grpc.ServiceDefinition {
  readonly StreamAggregatedResources: grpc.MethodDefinition<object, object>;
  readonly DeltaAggregatedResources: grpc.MethodDefinition<object, object>;
}

let includeDirs: readonly string[] | undefined;
let root: Root | undefined;
let adsService: AdsServiceDefinition | undefined;
let adsClient: AdsClientConstructor | undefined;

/** `deps/{envoy-api,xds,googleapis,protoc-gen-validate}` of the installed @grpc/grpc-js-xds. */
export function xdsIncludeDirs(): readonly string[] {
  if (includeDirs === undefined) {
    const pkg = createRequire(import.meta.url).resolve('@grpc/grpc-js-xds/package.json');
    const deps = join(dirname(pkg), 'deps');
    includeDirs = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(deps, d));
  }
  return includeDirs;
}

/**
 * The ADS service (SotW and delta) over xdsRoot(), built once: for
 * `server.addService(adsServiceDefinition(), handlers)` and adsClientConstructor().
 */
export function adsServiceDefinition(): AdsServiceDefinition {
  if (adsService === undefined) {
    const service = xdsRoot().lookupService(ADS_SERVICE_NAME);
    adsService = {
      StreamAggregatedResources: methodDefinition(service, 'StreamAggregatedResources'),
      DeltaAggregatedResources: methodDefinition(service, 'DeltaAggregatedResources'),
    };
  }
  return adsService;
}

/** A client class for ADS, made once: `new (adsClientConstructor())('127.0.0.1:15010', credentials)`. */
export function adsClientConstructor(): AdsClientConstructor {
  adsClient ??= grpc.makeClientConstructor(adsServiceDefinition(), 'AggregatedDiscoveryService') as unknown as AdsClientConstructor;
  return adsClient;
}

/** What proto-loader's `createMethodDefinition` makes of a method, minus the descriptors. */
function methodDefinition(service: protobuf.Service, name: string): grpc.MethodDefinition<object, object> {
  const method = service.methods[name];
  const request = method?.resolvedRequestType;
  const response = method?.resolvedResponseType;
  if (method === undefined || request == null || response == null) {
    // Only a broken @grpc/grpc-js-xds install gets here, like a missing .proto file.
    throw new TrellisError('TRELLIS_XDS_UNKNOWN_TYPE', `${ADS_SERVICE_NAME}.${name} is not in the loaded xDS protos: reinstall @grpc/grpc-js-xds`);
  }
  return {
    path: `/${ADS_SERVICE_NAME}/${name}`,
    requestStream: method.requestStream === true,
    responseStream: method.responseStream === true,
    requestSerialize: serializer(request),
    requestDeserialize: deserializer(request),
    responseSerialize: serializer(response),
    responseDeserialize: deserializer(response),
    // The lowerCamelCase alias grpc-js adds to clients (`streamAggregatedResources`).
    originalName: name.charAt(0).toLowerCase() + name.slice(1),
  };
}

function serializer(type: Type): (message: object) => Buffer {
  return (message) => {
    const bytes = type.encode(type.fromObject(message)).finish();
    return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer(type: Type): (bytes: Buffer) => object {
  return (bytes) => type.toObject(type.decode(bytes), CONVERSION_OPTIONS);
}

/**
 * The protobufjs Root Trellis encodes and decodes with (resolved, loaded once; callers
 * must not add to it or change it): the build's xDS descriptor (descriptor.ts), the part
 * of XDS_PROTO_FILES reachable from the types Trellis sends, or, in a tree built without
 * it (`tsc` alone), the .proto files themselves (loadXdsProtos).
 */
export function xdsRoot(): Root {
  if (root === undefined) {
    let json: string | undefined;
    try {
      json = readFileSync(DESCRIPTOR_URL, 'utf8');
    } catch {
      // No descriptor in this build: parse the protos, as the build step does.
    }
    root = json === undefined ? loadXdsProtos() : protobuf.Root.fromJSON(JSON.parse(json) as protobuf.INamespace);
    root.resolveAll();
  }
  return root;
}

/** Where the build writes the descriptor (`scripts/write-xds-descriptor.mjs`): next to this module. */
export const DESCRIPTOR_URL = new URL('./xds-descriptor.json', import.meta.url);

/**
 * The protobufjs Root of XDS_PROTO_FILES (with `keepCase`, like the loader), parsed from
 * the .proto files on each call (about 0.15 s and 5 MiB of heap): for the build step that
 * writes the descriptor, and for tests that compare the two.
 */
export function loadXdsProtos(): Root {
  const loaded = new protobuf.Root();
  loaded.resolvePath = includeDirResolver(loaded.resolvePath.bind(loaded), [
    ...xdsIncludeDirs(),
    protobufWellKnownDir(),
  ]);
  loaded.loadSync([...XDS_PROTO_FILES], { keepCase: true });
  loaded.resolveAll();
  return loaded;
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
