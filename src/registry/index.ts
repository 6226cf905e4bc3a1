/**
 * The registry's public API: services and their endpoints, from configuration, run-time
 * registrations and their aggregate. Importing it has no side effects.
 */
export type { Clock, Timer } from './clock.js';
export { systemClock } from './clock.js';
export type { Endpoint, Locality, Location, PortProtocol, RegistrySnapshot, Resolution, Service, ServicePort, ServiceSource, Workload, WorkloadSource } from './model.js';
export { LOCATIONS, RESOLUTIONS, SERVICE_SOURCES, WORKLOAD_SOURCES, formatLocality, parseLocality } from './model.js';
export type { Registry } from './registry.js';
export { ConfigRegistry, type ConfigRegistryOptions } from './config-source.js';
export {
  DEFAULT_REGISTRATION_TTL_MS,
  RegistrationRegistry,
  type RegisterResult,
  type RegistrationInfo,
  type RegistrationRegistryOptions,
} from './registration-source.js';
export { type FieldError, type RegistrationInput, validateRegistration } from './registration-input.js';
export { AggregateRegistry } from './aggregate.js';
export { endpointsOf } from './endpoints.js';
export { findService, hostAliases } from './hostnames.js';
export { EXPORT_TO_ANNOTATION, kubernetesHostname } from './convert/kubernetes-service.js';
