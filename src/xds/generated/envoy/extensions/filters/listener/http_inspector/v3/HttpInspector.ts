// Original file: envoy-api/envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto


export interface HttpInspector {
}

export interface HttpInspector__Output {
}
