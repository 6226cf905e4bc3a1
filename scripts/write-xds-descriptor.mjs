// Build step (npm run build, after tsc): writes the xDS descriptor (src/xds/descriptor.ts)
// next to the compiled protos.ts, from the .proto files of the installed @grpc/grpc-js-xds.
//
//   node scripts/write-xds-descriptor.mjs      (from the repository root, after tsc)
import { writeFileSync } from 'node:fs';
import { DESCRIPTOR_ROOT_TYPES, DESCRIPTOR_SERVICES, descriptorOf } from '../dist/src/xds/descriptor.js';
import { DESCRIPTOR_URL, loadXdsProtos } from '../dist/src/xds/protos.js';

writeFileSync(DESCRIPTOR_URL, JSON.stringify(descriptorOf(loadXdsProtos(), DESCRIPTOR_ROOT_TYPES, DESCRIPTOR_SERVICES)));
