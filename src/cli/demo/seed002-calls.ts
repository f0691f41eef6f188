// Seed 002's mesh ("TLS with ACM"), as the App Mesh calls its mesh.sh up makes from its CloudFormation: the
// names, ports and specs of the seed, the certificate and CA named by ARN. The ARNs exist only once the CA and
// the certificate are made, so the example files (examples/seed002/) hold the seed's variables
// `${CERTIFICATE_ARN}` and `${ROOT_CA_ARN}` in their place; steps.sh fills them in.
import type { OperationInput, OperationName } from './api.ts';

export const MESH = 'ColorApp-TLS';
export const SERVICES_DOMAIN = 'default.svc.cluster.local';
export const NODE = 'ColorTellerWhite';
export const SERVICE = `colorteller.${SERVICES_DOMAIN}`;
export const GATEWAY = 'ColorGateway';
export const ROUTE = 'ColorGatewayRoute';
/** What `aws acm request-certificate --domain-name` asks for. */
export const CERTIFICATE_DOMAIN = `*.${SERVICES_DOMAIN}`;
/** The listeners' port in the seed (the colorteller's and the gateway's). */
export const SEED_PORT = 80;
/** Where the example files live, relative to the repository (what the printed `aws` lines name). */
export const EXAMPLES_DIR = 'examples/seed002';
/** The placeholders the example files hold, named as the seed's shell variables. */
export const PLACEHOLDERS = { certificateArn: '${CERTIFICATE_ARN}', caArn: '${ROOT_CA_ARN}' } as const;

/** One App Mesh call of the walkthrough, with the example file holding its --cli-input-json. */
export interface SeedCall {
  readonly operation: OperationName;
  readonly file: string;
  readonly input: OperationInput;
}

export interface Seed002Arns {
  readonly certificateArn: string;
  readonly caArn: string;
}

/**
 * mesh.sh up: the mesh, the colorteller (STRICT TLS with the ACM certificate), its virtual service, the gateway
 * (trusting the CA) and its route. The defaults are the example files' placeholders and the seed's port.
 */
export function seed002Calls(arns: Seed002Arns = PLACEHOLDERS, port = SEED_PORT): SeedCall[] {
  const listener = { portMapping: { port, protocol: 'http' } };
  return [
    { operation: 'CreateMesh', file: 'mesh.json', input: { meshName: MESH } },
    {
      operation: 'CreateVirtualNode', file: 'colorteller-white-vn.json',
      input: {
        meshName: MESH, virtualNodeName: NODE,
        spec: {
          listeners: [{
            ...listener,
            healthCheck: { protocol: 'http', path: '/ping', healthyThreshold: 2, unhealthyThreshold: 3, timeoutMillis: 2000, intervalMillis: 5000 },
            tls: { mode: 'STRICT', certificate: { acm: { certificateArn: arns.certificateArn } } },
          }],
          serviceDiscovery: { dns: { hostname: SERVICE } },
        },
      },
    },
    {
      operation: 'CreateVirtualService', file: 'colorteller-vs.json',
      input: { meshName: MESH, virtualServiceName: SERVICE, spec: { provider: { virtualNode: { virtualNodeName: NODE } } } },
    },
    {
      operation: 'CreateVirtualGateway', file: 'color-gateway-vgw.json',
      input: {
        meshName: MESH, virtualGatewayName: GATEWAY,
        spec: {
          backendDefaults: { clientPolicy: { tls: { validation: { trust: { acm: { certificateAuthorityArns: [arns.caArn] } } } } } },
          listeners: [listener],
        },
      },
    },
    {
      operation: 'CreateGatewayRoute', file: 'color-gateway-route.json',
      input: {
        meshName: MESH, virtualGatewayName: GATEWAY, gatewayRouteName: ROUTE,
        spec: { httpRoute: { match: { prefix: '/' }, action: { target: { virtualService: { virtualServiceName: SERVICE } } } } },
      },
    },
  ];
}
