#!/bin/sh
# Regenerates src/xds/generated/: TypeScript types for the Envoy xDS v3 protos that ship in
# @grpc/grpc-js-xds/deps/, made by @grpc/proto-loader's proto-loader-gen-types (the same
# invocation as grpc-js-xds's own `generate-types` script, plus --json).
#
#   sh scripts/gen-xds-types.sh        (from anywhere; needs node_modules, not npm)
#
# The loader options must match LOADER_OPTIONS in src/xds/protos.ts (keepCase, longs
# String, enums String, defaults, oneofs, json), or the types describe objects the runtime
# never produces. The entry list must match XDS_PROTO_FILES there.
#
# After generating, two post-processing steps keep the tree small and strict-clean:
#  1. The generator writes one "master" file per entry basename (ads.ts, listener.ts...)
#     holding a ProtoGrpcType (a type for loadPackageDefinition's result) that imports
#     every type loaded. They are deleted: all but ads.ts have no service, import `grpc`
#     and declare `SubtypeConstructor` without using them (noUnusedLocals rejects that),
#     and ads.ts alone would pull in ~100 files nothing else needs (descriptor.proto,
#     validate rules). src/xds/protos.ts types the ADS client and service from
#     envoy/service/discovery/v3/AggregatedDiscoveryService.ts instead.
#  2. The generator writes a file for every message and enum of every proto file loaded,
#     including imports the entries never reference. Files not reachable by imports from
#     the types the entry files themselves define are deleted. KEEP_FILES adds seeds for
#     protos that are loaded only as imports but whose types Trellis names directly:
#     secret.proto (imported by tls.proto) defines Secret, the SDS resource type.
set -eu

ROOT=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)
DEPS="$ROOT/node_modules/@grpc/grpc-js-xds/deps"
GEN="$ROOT/node_modules/.bin/proto-loader-gen-types"
OUT="$ROOT/src/xds/generated"

ENTRY_FILES="
envoy/service/discovery/v3/ads.proto
envoy/config/listener/v3/listener.proto
envoy/config/route/v3/route.proto
envoy/config/cluster/v3/cluster.proto
envoy/config/endpoint/v3/endpoint.proto
envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto
envoy/extensions/filters/http/router/v3/router.proto
envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto
envoy/extensions/transport_sockets/tls/v3/tls.proto
envoy/extensions/filters/http/fault/v3/fault.proto
envoy/extensions/filters/http/cors/v3/cors.proto
envoy/extensions/clusters/aggregate/v3/cluster.proto
envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto
envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto
envoy/extensions/filters/listener/original_dst/v3/original_dst.proto
"
KEEP_FILES="
envoy/extensions/transport_sockets/tls/v3/secret.proto
"

rm -rf "$OUT"
# Run from deps/ with relative include dirs so the "// Original file:" headers carry
# package-relative paths (envoy-api/envoy/...), not this machine's absolute path.
cd "$DEPS"
# shellcheck disable=SC2086 # ENTRY_FILES is a whitespace-separated list on purpose
"$GEN" \
  --keepCase --longs=String --enums=String --defaults --oneofs --json --includeComments=false \
  --grpcLib=@grpc/grpc-js \
  --importFileExtension=.js \
  --includeDirs envoy-api xds googleapis protoc-gen-validate \
  -O "$OUT" \
  $ENTRY_FILES

# Step 1: master files.
rm -f "$OUT"/*.ts

# Step 2: keep only files reachable from the entry files' own types.
SEEDS="$ENTRY_FILES $KEEP_FILES" node --input-type=module - "$OUT" <<'JS'
import { readdirSync, readFileSync, rmSync, rmdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
const out = process.argv[2];
const seeds = new Set(process.env.SEEDS.split(/\s+/).filter(Boolean).map((f) => `envoy-api/${f}`));
const all = [];
(function walk(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p); else all.push(p);
  }
})(out);
const origin = (text) => /^\/\/ Original file: (\S+)/.exec(text)?.[1];
const seen = new Set();
const queue = all.filter((f) => seeds.has(origin(readFileSync(f, 'utf8'))));
while (queue.length > 0) {
  const f = queue.pop();
  if (seen.has(f)) continue;
  seen.add(f);
  for (const m of readFileSync(f, 'utf8').matchAll(/from '(\.[^']+)\.js'/g)) queue.push(resolve(dirname(f), `${m[1]}.ts`));
}
let removed = 0;
for (const f of all) if (!seen.has(f)) { rmSync(f); removed++; }
(function prune(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) prune(join(dir, e.name));
  if (readdirSync(dir).length === 0) rmdirSync(dir);
})(out);
console.log(`gen-xds-types: kept ${seen.size} files, removed ${removed} unreachable`);
JS
