/**
 * RequestAuthentication (`security.istio.io` v1, v1beta1): which JWTs a workload accepts.
 * Fields after istio/api `security/v1/request_authentication.proto`; rules after Istio's
 * `validateJwtRule` (non-empty issuer, audiences and locations; http(s) jwksUri; valid
 * header names). A request with an invalid token is rejected with 401; one with no token
 * passes without identity (an AuthorizationPolicy must require one).
 */
import { type Labels, nonEmptyString } from '../common.js';
import { headerName } from '../networking/headers.js';
import type { Path } from '../schema/path.js';
import { type ParseContext, type Schema, array, exclusive, object, required, withDefault } from '../schema/schema.js';
import { boolean, duration, string } from '../schema/scalars.js';
import { checkPolicyTarget, type PolicyTargetReference, policyTargetShape, resolvePolicyTarget } from './policy-target.js';

/** Istio's default JWKS fetch timeout. */
export const DEFAULT_JWKS_TIMEOUT_MS = 5000;

/**
 * Where Envoy's jwt_authn looks for a token when a rule names no location at all: the
 * `Authorization: Bearer` header, then the `access_token` query parameter.
 */
export const DEFAULT_TOKEN_HEADER: JwtHeader = { name: 'Authorization', prefix: 'Bearer ' };
export const DEFAULT_TOKEN_PARAM = 'access_token';

export interface JwtHeader {
  readonly name: string;
  /** Stripped from the header value before the token is read; '' when none. */
  readonly prefix: string;
}

export interface ClaimToHeader {
  readonly header: string;
  readonly claim: string;
}

export interface JwtRule {
  readonly issuer: string;
  /** Empty means the service's own names are accepted as audience. */
  readonly audiences: readonly string[];
  readonly jwksUri?: string;
  /** Inline JWKS JSON. With neither this nor jwksUri, keys come from OIDC discovery. */
  readonly jwks?: string;
  /** Token locations, with Envoy's default locations filled in when none was given. */
  readonly fromHeaders: readonly JwtHeader[];
  readonly fromParams: readonly string[];
  readonly fromCookies: readonly string[];
  /** False (Istio's default): the token is removed before the request is forwarded. */
  readonly forwardOriginalToken: boolean;
  readonly outputPayloadToHeader?: string;
  readonly outputClaimToHeaders: readonly ClaimToHeader[];
  /** JWKS fetch timeout. */
  readonly timeoutMs: number;
  readonly spaceDelimitedClaims: readonly string[];
}

const headerNameString = (empty: string): Schema<string> => string({ nonEmpty: empty, check: headerName });

const jwksUri: Schema<string> = string({
  nonEmpty: 'jwksUri must not be empty',
  check: (v, path, ctx) => {
    if (isHttpUrl(v)) return true;
    ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `jwksUri "${v}" is not an http or https URL`);
    return false;
  },
});

function isHttpUrl(s: string): boolean {
  try {
    const url = new URL(s);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

const NONE: readonly string[] = [];
const nonEmptyList = withDefault(array(nonEmptyString), NONE);

const jwtRule: Schema<JwtRule> = object(
  {
    issuer: required(string({ nonEmpty: 'issuer must not be empty' })),
    audiences: nonEmptyList,
    jwksUri,
    jwks: string({ nonEmpty: 'jwks must not be empty' }),
    fromHeaders: withDefault(array(object({ name: required(headerNameString('header name must not be empty')), prefix: withDefault(string(), '') })), []),
    fromParams: nonEmptyList,
    fromCookies: nonEmptyList,
    forwardOriginalToken: withDefault(boolean, false),
    outputPayloadToHeader: headerNameString('outputPayloadToHeader must not be empty'),
    outputClaimToHeaders: withDefault(
      array(object({ header: required(headerNameString('header must not be empty')), claim: required(string({ nonEmpty: 'claim must not be empty' })) })),
      [],
    ),
    timeout: withDefault(duration(), DEFAULT_JWKS_TIMEOUT_MS),
    spaceDelimitedClaims: nonEmptyList,
  },
  {
    expected: 'a JWT rule object',
    check: (v, path, ctx) => exclusive(v, ['jwksUri', 'jwks'], path, ctx),
    map: ({ timeout, ...v }): JwtRule => {
      const noLocation = v.fromHeaders.length === 0 && v.fromParams.length === 0 && v.fromCookies.length === 0;
      if (!noLocation) return { ...v, timeoutMs: timeout };
      return { ...v, fromHeaders: [DEFAULT_TOKEN_HEADER], fromParams: [DEFAULT_TOKEN_PARAM], timeoutMs: timeout };
    },
  },
);

export interface RequestAuthenticationSpec {
  /** Absent for namespace-wide (or, in the root namespace, mesh-wide) policies. */
  readonly selector?: Labels;
  /** `targetRef` and `targetRefs` together. */
  readonly targetRefs: readonly PolicyTargetReference[];
  readonly jwtRules: readonly JwtRule[];
}

export const requestAuthenticationSpec: Schema<RequestAuthenticationSpec> = object(
  { ...policyTargetShape, jwtRules: withDefault(array(jwtRule), []) },
  {
    expected: 'a RequestAuthentication spec object',
    check: (v, path: Path, ctx: ParseContext) => checkPolicyTarget(v, path, ctx),
    map: (v): RequestAuthenticationSpec => ({ ...resolvePolicyTarget(v), jwtRules: v.jwtRules }),
  },
);
