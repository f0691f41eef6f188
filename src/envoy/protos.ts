// Envoy's v3 API as protobuf types, loaded from the .proto files that ship inside @grpc/grpc-js-xds. The
// translation builds resources as plain objects in protobuf's JSON form (camelCase fields, `@type` on Any);
// this module turns them into wire bytes for xDS and checks that every field is one Envoy knows: protobufjs
// drops unknown fields silently, so `roundTrip` compares what survives encoding with what went in.
import { accessSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';
import { InternalError } from '../errors/index.ts';

/** The xDS resource types keymesh serves, by type URL. */
export const TYPE_URLS = {
  listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  routeConfiguration: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  clusterLoadAssignment: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
} as const;
export type XdsTypeUrl = (typeof TYPE_URLS)[keyof typeof TYPE_URLS];

/** Every proto a translated resource may reference through an Any (filters, transport sockets, loggers). */
const PROTO_FILES = [
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls_spiffe_validator_config.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/secret/v3/sds.proto',
];

function depsDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
}

/** Include paths for @grpc/proto-loader (the xDS server's gRPC service definitions). */
export function protoIncludeDirs(): string[] {
  const deps = depsDir();
  return ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(deps, d));
}

export const ENVOY_PROTO_FILES: readonly string[] = PROTO_FILES;

let root: protobuf.Root | undefined;

/** The loaded types (once per process; about half a second). */
export function envoyRoot(): protobuf.Root {
  if (root) return root;
  // protobufjs ships google/protobuf/descriptor.proto, which Envoy's validation annotations import.
  const dirs = [...protoIncludeDirs(), dirname(createRequire(import.meta.url).resolve('protobufjs/package.json'))];
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => {
    for (const d of dirs) {
      const candidate = join(d, target);
      try {
        accessSync(candidate);
        return candidate;
      } catch {
        // try the next include directory
      }
    }
    return target;
  };
  r.loadSync(PROTO_FILES, { keepCase: false });
  r.resolveAll();
  root = r;
  return r;
}

function typeOf(typeUrl: string): protobuf.Type {
  const name = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  try {
    return envoyRoot().lookupType(name);
  } catch {
    throw new InternalError(`unknown Envoy type ${typeUrl}`);
  }
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, bytes: String, defaults: false, json: true };

/** Wire bytes of a resource given in protobuf JSON form (the typed `@type` member is not needed). */
export function encodeResource(typeUrl: string, resource: object): Uint8Array {
  const type = typeOf(typeUrl);
  return type.encode(type.fromObject(resource)).finish();
}

export function decodeResource(typeUrl: string, bytes: Uint8Array): Record<string, unknown> {
  const type = typeOf(typeUrl);
  return type.toObject(type.decode(bytes), TO_OBJECT);
}

/** A resource as an Any message for DiscoveryResponse.resources, in @grpc/proto-loader's field naming (type_url). */
export function toAny(typeUrl: string, resource: object): { type_url: string; value: Buffer } {
  return { type_url: typeUrl, value: Buffer.from(encodeResource(typeUrl, resource)) };
}

/**
 * Encodes and decodes `resource` and returns what came back: deep-equal to the input exactly when every
 * field, enum value and Any type is known to Envoy's protos (encoding alone never complains).
 */
export function roundTrip(typeUrl: string, resource: object): Record<string, unknown> {
  return decodeResource(typeUrl, encodeResource(typeUrl, resource));
}
