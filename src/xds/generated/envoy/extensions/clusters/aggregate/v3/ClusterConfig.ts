// Original file: envoy-api/envoy/extensions/clusters/aggregate/v3/cluster.proto


export interface ClusterConfig {
  'clusters'?: (string)[];
}

export interface ClusterConfig__Output {
  'clusters': (string)[];
}
