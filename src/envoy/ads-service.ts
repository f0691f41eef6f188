// The ADS gRPC service definition, loaded from Envoy's protos with @grpc/proto-loader (once per process).
// Messages are camelCase objects, except google.protobuf.Any, which proto-loader keeps as `{ type_url, value }`.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoIncludeDirs } from './protos.ts';
import type { WireStruct } from './struct.ts';

export const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

/** A DiscoveryRequest as proto-loader hands it over (absent fields are undefined). */
export interface DiscoveryRequest {
  versionInfo?: string;
  node?: { id?: string; cluster?: string; metadata?: WireStruct };
  resourceNames?: string[];
  typeUrl?: string;
  responseNonce?: string;
  errorDetail?: { code?: number; message?: string };
}

export interface WireAny {
  type_url: string;
  value: Buffer;
}

export interface DiscoveryResponse {
  versionInfo: string;
  resources: WireAny[];
  typeUrl: string;
  nonce: string;
}

let definition: grpc.ServiceDefinition | undefined;

export function adsServiceDefinition(): grpc.ServiceDefinition {
  if (definition) return definition;
  const includeDirs = [...protoIncludeDirs(), dirname(createRequire(import.meta.url).resolve('protobufjs/package.json'))];
  const pkg = protoLoader.loadSync('envoy/service/discovery/v3/ads.proto', {
    includeDirs, keepCase: false, longs: String, enums: String, defaults: false, oneofs: true,
  });
  const svc = pkg[ADS_SERVICE];
  if (!svc || !('StreamAggregatedResources' in svc)) throw new Error(`${ADS_SERVICE} is not in envoy/service/discovery/v3/ads.proto`);
  definition = svc as grpc.ServiceDefinition;
  return definition;
}

/** A client constructor for the service (tests, and later a keymesh-side ADS probe). */
export function adsClientConstructor(): grpc.ServiceClientConstructor {
  return grpc.makeClientConstructor(adsServiceDefinition(), ADS_SERVICE);
}
