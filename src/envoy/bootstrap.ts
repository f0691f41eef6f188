// An Envoy bootstrap that points a stock Envoy at keymesh, for App Mesh users who keep their Envoy sidecars:
// everything (listeners, clusters, routes, endpoints, secrets) comes over ADS; the bootstrap only says where
// keymesh is and how to authenticate to it. The xDS connection is mTLS with the SVID that
// `keymesh identity run --out DIR` keeps renewed in DIR; Envoy reads it through a file-based SDS secret
// watched on DIR, so renewals apply without a restart. The endpoint is verified against the pinned
// control-plane CA under the name keymesh-control-plane.
//
// The object is in Envoy's JSON form; it uses no wrapper or Duration fields, so it is also protobufjs form
// and the tests check it against the Bootstrap proto with roundTrip.
import { join } from 'node:path';
import { CONTROL_PLANE_SERVER_NAME } from '../base/control-plane.ts';

export const XDS_CLUSTER = 'keymesh-xds';
/** The file `keymesh identity run` writes into its output directory for Envoy's file-based SDS. */
export const XDS_CLIENT_SECRET_FILE = 'xds-client-secret.json';
export const XDS_CLIENT_SECRET_NAME = 'keymesh-xds-client';

export interface BootstrapInput {
  /** The node id keymesh checks against the proxy's identity: the resource ARN. */
  readonly nodeId: string;
  /** Envoy's node.cluster (stats and logs): the virtual node or gateway name. */
  readonly nodeCluster: string;
  readonly xdsHost: string;
  readonly xdsPort: number;
  /** Absolute path of the control-plane CA certificate. */
  readonly controlPlaneCaPath: string;
  /** Absolute path of the directory `keymesh identity run` writes the SVID to. */
  readonly svidDir: string;
  readonly adminAddress: string;
  readonly adminPort: number;
  /**
   * The proxy's SPIFFE ID. Specs that name it as an SDS certificate (`certificate.sds.secretName`) get it from
   * a static secret on the SVID files, reloaded when `keymesh identity run` renews them (translate refers to
   * such secrets by name only: the control plane never holds SVID keys).
   */
  readonly spiffeId?: string;
  /**
   * node.metadata as Envoy's JSON reads it (a Struct is a plain object there), e.g. keymesh's placement
   * (`{ keymesh: { listen_address, ingress_port, egress_port } }`, see src/xds/node-metadata.ts).
   */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

const ADS = { ads: {}, resourceApiVersion: 'V3' };

export function envoyBootstrap(input: BootstrapInput): Record<string, unknown> {
  const ip = /^[\d.]+$/.test(input.xdsHost) || input.xdsHost.includes(':');
  return {
    node: { id: input.nodeId, cluster: input.nodeCluster, ...(input.metadata ? { metadata: input.metadata } : {}) },
    admin: { address: { socketAddress: { address: input.adminAddress, portValue: input.adminPort } } },
    dynamicResources: {
      adsConfig: { apiType: 'GRPC', transportApiVersion: 'V3', setNodeOnFirstMessageOnly: true, grpcServices: [{ envoyGrpc: { clusterName: XDS_CLUSTER } }] },
      cdsConfig: ADS,
      ldsConfig: ADS,
    },
    staticResources: {
      ...(input.spiffeId !== undefined ? { secrets: [svidSecret(input.spiffeId, input.svidDir)] } : {}),
      clusters: [{
        name: XDS_CLUSTER,
        type: ip ? 'STATIC' : 'STRICT_DNS',
        typedExtensionProtocolOptions: {
          'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
            '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
            explicitHttpConfig: { http2ProtocolOptions: {} },
          },
        },
        loadAssignment: {
          clusterName: XDS_CLUSTER,
          endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: input.xdsHost, portValue: input.xdsPort } } } }] }],
        },
        transportSocket: {
          name: 'envoy.transport_sockets.tls',
          typedConfig: {
            '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
            sni: CONTROL_PLANE_SERVER_NAME,
            commonTlsContext: {
              tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2' },
              tlsCertificateSdsSecretConfigs: [{
                name: XDS_CLIENT_SECRET_NAME,
                sdsConfig: {
                  pathConfigSource: { path: join(input.svidDir, XDS_CLIENT_SECRET_FILE), watchedDirectory: { path: input.svidDir } },
                  resourceApiVersion: 'V3',
                },
              }],
              validationContext: {
                trustedCa: { filename: input.controlPlaneCaPath },
                matchTypedSubjectAltNames: [{ sanType: 'DNS', matcher: { exact: CONTROL_PLANE_SERVER_NAME } }],
              },
            },
          },
        },
      }],
    },
  };
}

function svidSecret(name: string, svidDir: string): Record<string, unknown> {
  return {
    name,
    tlsCertificate: {
      certificateChain: { filename: join(svidDir, 'svid.pem') },
      privateKey: { filename: join(svidDir, 'svid_key.pem') },
      watchedDirectory: { path: svidDir },
    },
  };
}

/** The file-based SDS answer Envoy reads for the xDS client certificate: the SVID files by name. */
export function xdsClientSecretFile(svidDir: string): Record<string, unknown> {
  return {
    resources: [{
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
      name: XDS_CLIENT_SECRET_NAME,
      tlsCertificate: {
        certificateChain: { filename: join(svidDir, 'svid.pem') },
        privateKey: { filename: join(svidDir, 'svid_key.pem') },
      },
    }],
  };
}
