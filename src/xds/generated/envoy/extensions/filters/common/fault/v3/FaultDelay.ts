// Original file: envoy-api/envoy/extensions/filters/common/fault/v3/fault.proto

import type { Duration as _google_protobuf_Duration, Duration__Output as _google_protobuf_Duration__Output } from '../../../../../../google/protobuf/Duration.js';
import type { FractionalPercent as _envoy_type_v3_FractionalPercent, FractionalPercent__Output as _envoy_type_v3_FractionalPercent__Output } from '../../../../../../envoy/type/v3/FractionalPercent.js';

// Original file: envoy-api/envoy/extensions/filters/common/fault/v3/fault.proto

export const _envoy_extensions_filters_common_fault_v3_FaultDelay_FaultDelayType = {
  FIXED: 'FIXED',
} as const;

export type _envoy_extensions_filters_common_fault_v3_FaultDelay_FaultDelayType =
  | 'FIXED'
  | 0

export type _envoy_extensions_filters_common_fault_v3_FaultDelay_FaultDelayType__Output = typeof _envoy_extensions_filters_common_fault_v3_FaultDelay_FaultDelayType[keyof typeof _envoy_extensions_filters_common_fault_v3_FaultDelay_FaultDelayType]

export interface _envoy_extensions_filters_common_fault_v3_FaultDelay_HeaderDelay {
}

export interface _envoy_extensions_filters_common_fault_v3_FaultDelay_HeaderDelay__Output {
}

export interface FaultDelay {
  'fixed_delay'?: (_google_protobuf_Duration | null);
  'percentage'?: (_envoy_type_v3_FractionalPercent | null);
  'header_delay'?: (_envoy_extensions_filters_common_fault_v3_FaultDelay_HeaderDelay | null);
  'fault_delay_secifier'?: "fixed_delay"|"header_delay";
}

export interface FaultDelay__Output {
  'fixed_delay'?: (_google_protobuf_Duration__Output | null);
  'percentage': (_envoy_type_v3_FractionalPercent__Output | null);
  'header_delay'?: (_envoy_extensions_filters_common_fault_v3_FaultDelay_HeaderDelay__Output | null);
  'fault_delay_secifier'?: "fixed_delay"|"header_delay";
}
