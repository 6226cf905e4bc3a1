/**
 * Decoding and checking the resources of one DiscoveryResponse, all or nothing: the
 * response is accepted only when every resource decodes, has a unique name and passes
 * its type's validator; otherwise the client NACKs it and keeps what it had (STYLE 10;
 * Envoy and grpc-js-xds reject a response as a whole in state of the world).
 */
import { decodeAny } from '../../xds/any.js';
import type { Any__Output } from '../../xds/generated/google/protobuf/Any.js';
import { resourceName } from './subscriptions.js';

/** Validates (and may compile) one decoded resource; returns why it is rejected, or undefined. */
export type ResourceValidator = (resource: unknown, name: string) => string | undefined;

export type DecodeOutcome =
  | {
      readonly ok: true;
      /** The decoded resources by name, in response order. */
      readonly resources: ReadonlyMap<string, unknown>;
      /** Names in the response that were not subscribed (non-wildcard types only); left out of `resources`. */
      readonly unrequested: readonly string[];
    }
  | { readonly ok: false; readonly error: string };

/** The NACK message lists at most this many problems. */
const MAX_ERRORS = 10;

/**
 * Decodes `anys` as resources of `typeUrl`. `subscribed` is the set of names asked for,
 * or undefined for a wildcard type. Never throws: a validator that throws rejects its
 * resource with the exception's message.
 */
export function decodeResources(
  typeUrl: string,
  anys: readonly Any__Output[],
  subscribed: ReadonlySet<string> | undefined,
  validate: ResourceValidator | undefined,
): DecodeOutcome {
  const resources = new Map<string, unknown>();
  const unrequested: string[] = [];
  const errors: string[] = [];
  const kind = typeUrl.slice(typeUrl.lastIndexOf('.') + 1);
  anys.forEach((any, index) => {
    const decoded = decodeAny<unknown>(any, typeUrl);
    if (!decoded.ok) return void errors.push(`resource [${index}]: ${decoded.error}`);
    const name = resourceName(typeUrl, decoded.value);
    if (name === '') return void errors.push(`resource [${index}]: ${kind} has no name`);
    if (resources.has(name)) return void errors.push(`${kind} "${name}": duplicate name in the response`);
    if (subscribed !== undefined && !subscribed.has(name)) return void unrequested.push(name);
    const problem = runValidator(validate, decoded.value, name);
    if (problem !== undefined) return void errors.push(`${kind} "${name}": ${problem}`);
    resources.set(name, decoded.value);
  });
  if (errors.length === 0) return { ok: true, resources, unrequested };
  const more = errors.length > MAX_ERRORS ? `; and ${errors.length - MAX_ERRORS} more` : '';
  return { ok: false, error: errors.slice(0, MAX_ERRORS).join('; ') + more };
}

function runValidator(validate: ResourceValidator | undefined, resource: unknown, name: string): string | undefined {
  if (validate === undefined) return undefined;
  try {
    return validate(resource, name);
  } catch (err) {
    return `validator failed: ${err instanceof Error ? err.message : String(err)}`;
  }
}
