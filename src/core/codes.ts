/**
 * The catalog of every stable code Trellis reports: errors raised by the program, and the
 * findings of configuration validation and `trellis analyze`. `docs/errors.md` documents
 * each of them; a test fails when the two disagree.
 *
 * Findings carry a default severity: `error` findings make configuration invalid (the
 * control plane keeps the last good version; `analyze` exits non-zero), `warning` and
 * `info` findings are advice.
 */
export const SEVERITIES = ['error', 'warning', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

interface CodeInfo {
  readonly severity: Severity;
  readonly summary: string;
}

function code(severity: Severity, summary: string): CodeInfo {
  return { severity, summary };
}

export const CODES = {
  // Program errors (setup, bad arguments, bugs' guards).
  TRELLIS_CLI_USAGE: code('error', 'The command line is not valid: unknown command, flag or missing argument.'),
  TRELLIS_CLI_PATH_NOT_FOUND: code('error', 'A file or directory named on the command line does not exist or cannot be read.'),
  TRELLIS_CORE_INVALID_DURATION: code('error', 'A duration string is not valid.'),
  TRELLIS_REGISTRY_INVALID_OPTION: code('error', 'A registry setting is not valid (for example a registration TTL that is not a positive duration).'),
  TRELLIS_XDS_UNKNOWN_TYPE: code('error', 'An xDS type URL is not one of the Envoy API types Trellis loads (a bug in the caller).'),
  TRELLIS_CORE_INVALID_SPIFFE_ID: code('error', 'A SPIFFE identity is not of the form spiffe://<trust-domain>/ns/<ns>/sa/<sa>.'),
  TRELLIS_CLI_NO_RESOURCES: code('error', 'The files given to apply or delete hold no resource the mesh reads.'),
  TRELLIS_CLI_CONTROL_PLANE_UNREACHABLE: code('error', 'The control plane cannot be reached at the URL the command uses.'),
  TRELLIS_CLI_CONTROL_PLANE_ERROR: code('error', 'The control plane answered in a way the command does not understand (another program on its port, or a different version).'),

  // trellis run / up: the local mesh.
  TRELLIS_RUN_REGISTRATION_FAILED: code('error', 'The control plane refused the workload\'s registration; the message gives its reason.'),
  TRELLIS_RUN_COMMAND_FAILED: code('error', 'The application command could not be started (not found, not executable).'),
  TRELLIS_UP_INVALID_WORKLOADS: code('error', 'The mesh directory\'s workloads.yaml is not valid; the message gives the file, line and field.'),

  // The control plane's admin API.
  TRELLIS_ADMIN_NOT_FOUND: code('error', 'The admin API has no such endpoint.'),
  TRELLIS_ADMIN_METHOD_NOT_ALLOWED: code('error', 'The admin API endpoint exists but not for this HTTP method.'),
  TRELLIS_ADMIN_BAD_REQUEST: code('error', 'An admin API request is malformed (missing parameter, body not JSON, body too large).'),
  TRELLIS_ADMIN_PROXY_NOT_FOUND: code('error', 'No connected proxy has the requested id.'),
  TRELLIS_ADMIN_INTERNAL: code('error', 'The admin API failed unexpectedly (a bug: please report it).'),
  TRELLIS_ADMIN_CONFIG_INVALID: code('error', 'Configuration sent to PUT /v1/config has errors; the response lists them, and nothing was stored.'),
  TRELLIS_ADMIN_CONFIG_NOT_FOUND: code('error', 'No served resource has this kind, namespace and name.'),
  TRELLIS_ADMIN_CONFIG_NOT_APPLIED: code('error', 'The resource comes from a file of the configuration directory, not from trellis apply; change that file instead.'),
  TRELLIS_ADMIN_CONFIG_DELETE_BREAKS: code('error', 'Deleting the applied resource would leave errors in the configuration (a route to a subset only it defines); nothing was deleted.'),
  TRELLIS_ADMIN_CONFIG_STORAGE: code('error', 'Applied configuration cannot be written to (or removed from) the configuration directory.'),
  TRELLIS_REGISTRATION_INVALID: code('error', 'A workload registration is not valid; the response lists each field error.'),
  TRELLIS_REGISTRATION_NOT_FOUND: code('error', 'No live registration has this id (it expired or was removed): register again.'),

  // Reading YAML and recognising resources.
  TRELLIS_CONFIG_YAML_SYNTAX: code('error', 'The file is not valid YAML.'),
  TRELLIS_CONFIG_NOT_A_RESOURCE: code('error', 'A YAML document is not a Kubernetes-style object with apiVersion, kind and metadata.'),
  TRELLIS_CONFIG_UNSUPPORTED_VERSION: code('error', 'The apiVersion is not one that serves this kind.'),
  TRELLIS_CONFIG_UNSUPPORTED_KIND: code('warning', 'An Istio or Gateway API kind that Trellis does not implement yet (for example EnvoyFilter); it is skipped.'),
  TRELLIS_CONFIG_SKIPPED_KIND: code('info', 'The kind is not one the mesh uses (for example a Deployment); it is skipped.'),
  TRELLIS_CONFIG_INVALID_NAME: code('error', 'metadata.name or metadata.namespace is missing or is not a valid Kubernetes name.'),

  // Field validation.
  TRELLIS_CONFIG_UNKNOWN_FIELD: code('error', 'A field is not part of the resource schema (often a typo or wrong indentation).'),
  TRELLIS_CONFIG_WRONG_TYPE: code('error', 'A field has the wrong type (for example a string where a number is expected).'),
  TRELLIS_CONFIG_REQUIRED: code('error', 'A required field is missing or empty.'),
  TRELLIS_CONFIG_OUT_OF_RANGE: code('error', 'A number is outside the range the field allows.'),
  TRELLIS_CONFIG_INVALID_VALUE: code('error', 'A value is not one the field allows (an enum, a name, a host, a label, a CIDR...).'),
  TRELLIS_CONFIG_INVALID_DURATION: code('error', 'A duration is not valid, or is below the field minimum (1ms, whole milliseconds).'),
  TRELLIS_CONFIG_INVALID_REGEX: code('error', 'A regular expression is not valid RE2 syntax (RE2 has no lookaround or backreferences).'),
  TRELLIS_CONFIG_CONFLICT: code('error', 'Fields that exclude each other are set together, or a required choice is missing.'),
  TRELLIS_CONFIG_DUPLICATE: code('error', 'A name or key that must be unique within the resource appears twice.'),
  TRELLIS_CONFIG_DEPRECATED: code('warning', 'A deprecated field is used; it is accepted, and the message says what replaces it.'),

  // Findings of `trellis analyze` over a set of resources.
  TRELLIS_ANALYZE_DUPLICATE_RESOURCE: code('warning', 'The same resource (kind, namespace, name) is defined more than once.'),
  TRELLIS_ANALYZE_SUBSET_NOT_FOUND: code('error', 'A route names a subset that no DestinationRule for its host defines.'),
  TRELLIS_ANALYZE_GATEWAY_NOT_FOUND: code('error', 'A VirtualService names a Gateway that does not exist.'),
  TRELLIS_ANALYZE_HOST_NOT_FOUND: code('warning', 'A destination host is declared by no Service or ServiceEntry.'),
  TRELLIS_ANALYZE_CONFLICTING_VIRTUAL_SERVICES: code('error', 'Two VirtualServices for sidecars (the mesh gateway) define the same host; Istio does not merge them.'),
  TRELLIS_ANALYZE_GATEWAY_SELECTS_NOTHING: code('info', 'A Gateway selector matches no declared workload.'),
  TRELLIS_ANALYZE_SUBSET_SELECTS_NOTHING: code('warning', 'A DestinationRule subset selects no declared workload of its host.'),
  TRELLIS_ANALYZE_CONFLICTING_PEER_AUTHENTICATION: code('error', 'PeerAuthentication policies at the same level give one workload different mTLS modes.'),
  TRELLIS_ANALYZE_CERTIFICATE_UNREADABLE: code('warning', 'A certificate, private key or CA file named by a Gateway or DestinationRule does not exist, cannot be read, or holds no PEM data the proxy can load.'),
} as const satisfies Record<string, CodeInfo>;

export type Code = keyof typeof CODES;

export function severityOf(c: Code): Severity {
  return CODES[c].severity;
}
