// Seed 001's mesh and its migration calls, as the App Mesh API takes them (and as examples/seed001/ holds them for
// `aws appmesh ... --cli-input-json`). The names are the seed's: the mesh `my-mesh`, the server `my-backend-node`
// on port 9080 (its stats read `cluster.cds_egress_my-mesh_my-backend-node_http_9080.ssl.*` on the client, as in
// the seed), reached through the virtual service `backend.my-mesh.local`; the client is `my-client-node`.
// Certificate paths say /keys/ as seed 004's files do; the demo puts its own directory there.
import type { SeedCall } from './seed004.ts';

export const MESH = 'my-mesh';
export const NAMESPACE = 'my-mesh.local';
export const SERVER = 'my-backend-node';
export const CLIENT = 'my-client-node';
export const SERVICE = `backend.${NAMESPACE}`;
/** The client certificate's name: what the server trusts once it validates clients. */
export const CLIENT_SAN = `client.${NAMESPACE}`;
/** A certificate from the same CA under a name the server does not trust (the walkthrough's own probe). */
export const OTHER_SAN = `other.${NAMESPACE}`;
/** The server's listener port (its application's), as in the seed's stat names. */
export const APP_PORT = 9080;
/** Where the example files live, relative to the repository (what the printed `aws` lines name). */
export const EXAMPLES_DIR = 'examples/seed001';

/** One of the seed's five migration steps: its App Mesh call, or none (step 3 only looks). */
export interface MigrationStep {
  readonly call?: SeedCall;
}

const listener = { portMapping: { port: APP_PORT, protocol: 'http' } };
/** Cloud Map discovery: keymesh's endpoint registry answers for it (the server's sidecar registers itself). */
const discovery = { awsCloudMap: { namespaceName: NAMESPACE, serviceName: 'backend' } };

/** The calls, with the seed's /keys/ paths under `keys` (the default keeps /keys: what the example files hold). */
export function seed001Calls(keys = '/keys'): { setup: SeedCall[]; steps: MigrationStep[] } {
  const file = (name: string) => `${keys}/${name}`;
  const serverCertificate = { file: { certificateChain: file('backend_cert_chain.pem'), privateKey: file('backend_key.pem') } };
  const trust = { file: { certificateChain: file('ca_cert.pem') } };
  const serverTls = (mode: 'PERMISSIVE' | 'STRICT', validate: boolean) => ({
    meshName: MESH,
    virtualNodeName: SERVER,
    spec: {
      listeners: [{
        ...listener,
        tls: {
          mode,
          certificate: serverCertificate,
          ...(validate ? { validation: { trust, subjectAlternativeNames: { match: { exact: [CLIENT_SAN] } } } } : {}),
        },
      }],
      serviceDiscovery: discovery,
    },
  });
  const client = (clientPolicy?: object) => ({
    meshName: MESH,
    virtualNodeName: CLIENT,
    spec: { backends: [{ virtualService: { virtualServiceName: SERVICE, ...(clientPolicy ? { clientPolicy } : {}) } }] },
  });
  return {
    setup: [
      { operation: 'CreateMesh', file: 'mesh.json', input: { meshName: MESH } },
      {
        operation: 'CreateVirtualNode', file: 'backend-vn.json',
        input: { meshName: MESH, virtualNodeName: SERVER, spec: { listeners: [listener], serviceDiscovery: discovery } },
      },
      {
        operation: 'CreateVirtualService', file: 'backend-vs.json',
        input: { meshName: MESH, virtualServiceName: SERVICE, spec: { provider: { virtualNode: { virtualNodeName: SERVER } } } },
      },
      { operation: 'CreateVirtualNode', file: 'client-vn.json', input: client() },
    ],
    steps: [
      { call: { operation: 'UpdateVirtualNode', file: 'step1-backend-vn-permissive.json', input: serverTls('PERMISSIVE', false) } },
      { call: { operation: 'UpdateVirtualNode', file: 'step2-backend-vn-mtls.json', input: serverTls('PERMISSIVE', true) } },
      {},
      {
        call: {
          operation: 'UpdateVirtualNode', file: 'step4-client-vn-mtls.json',
          input: client({
            tls: {
              certificate: { file: { certificateChain: file('client_cert_chain.pem'), privateKey: file('client_key.pem') } },
              validation: { trust, subjectAlternativeNames: { match: { exact: [SERVICE] } } },
            },
          }),
        },
      },
      { call: { operation: 'UpdateVirtualNode', file: 'step5-backend-vn-strict.json', input: serverTls('STRICT', true) } },
    ],
  };
}
