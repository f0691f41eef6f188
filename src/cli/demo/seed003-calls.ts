// Seed 003's mesh ("mTLS with SPIFFE/SPIRE in App Mesh on EKS", the howto-k8s-mtls-sds-based walkthrough) as
// the App Mesh calls its App Mesh controller makes from the Kubernetes resources: the controller names each
// resource `<name>_<namespace>`, so the virtual nodes are front_howto-k8s-mtls-sds-based and so on (the ARNs the
// seed lists). Every listener of red, green and blue is STRICT with its SVID as SDS certificate and requires
// front's; front's client policy presents front's SVID and accepts only the three colors'. The example files
// (examples/seed003/) are these inputs, one file per call.
import type { OperationInput, OperationName } from './api.ts';

export const MESH = 'howto-k8s-mtls-sds-based';
/** The trust domain SPIRE was installed with; keymesh's mesh gets it before its CA exists. */
export const TRUST_DOMAIN = `${MESH}.aws`;
export const TD_ID = `spiffe://${TRUST_DOMAIN}`;
/** The Kubernetes namespace's DNS suffix the seed's services live under. */
export const DOMAIN = `${MESH}.svc.cluster.local`;
export const COLORS = ['red', 'green', 'blue'] as const;
export type Color = (typeof COLORS)[number];
export type Workload = 'front' | Color;
export const WORKLOADS: readonly Workload[] = ['front', ...COLORS];
/** The virtual service front calls (Kubernetes service `color`), provided by the router. */
export const SERVICE = `color.${DOMAIN}`;
export const ROUTER = `color_${MESH}`;
/** Every listener's port in the seed (front's and the colors', the router's). */
export const PORT = 8080;
/** The header the router routes by. */
export const HEADER = 'color_header';
/** Where the example files live, relative to the repository (what the printed `aws` lines name). */
export const EXAMPLES_DIR = 'examples/seed003';

/** The App Mesh name of a workload's virtual node, as the controller makes it. */
export const nodeName = (w: Workload): string => `${w}_${MESH}`;
/** Its SPIFFE ID: keymesh names a virtual node's identity `spiffe://<trust domain>/<node name>`. */
export const spiffeId = (w: Workload): string => `${TD_ID}/${nodeName(w)}`;
/** Its Kubernetes service's DNS name (`front`, `color-red`, ...): the node's DNS service discovery. */
export const hostname = (w: Workload): string => `${w === 'front' ? 'front' : `color-${w}`}.${DOMAIN}`;
export const routeName = (c: Color): string => `color-route-${c}`;

/** One App Mesh call of the walkthrough, with the example file holding its --cli-input-json. */
export interface SeedCall {
  readonly operation: OperationName;
  readonly file: string;
  readonly input: OperationInput;
  /** In a few words, what it makes. */
  readonly what: string;
}

const listener = { portMapping: { port: PORT, protocol: 'http' } };
/** SDS trust: the bundle of the trust domain (SPIRE's secret name for it). */
const trust = { sds: { secretName: TD_ID } };

function colorNode(c: Color): SeedCall {
  return {
    operation: 'CreateVirtualNode', file: `${c}-vn.json`,
    what: `listener ${PORT} STRICT: SVID ${spiffeId(c)}, requires front's`,
    input: {
      meshName: MESH, virtualNodeName: nodeName(c),
      spec: {
        listeners: [{
          ...listener,
          tls: {
            mode: 'STRICT',
            certificate: { sds: { secretName: spiffeId(c) } },
            validation: { trust, subjectAlternativeNames: { match: { exact: [spiffeId('front')] } } },
          },
        }],
        serviceDiscovery: { dns: { hostname: hostname(c) } },
      },
    },
  };
}

function route(c: Color): SeedCall {
  return {
    operation: 'CreateRoute', file: `${routeName(c)}.json`,
    what: `${HEADER}: ${c} -> ${nodeName(c)}`,
    input: {
      meshName: MESH, virtualRouterName: ROUTER, routeName: routeName(c),
      spec: {
        httpRoute: {
          match: { prefix: '/', headers: [{ name: HEADER, match: { exact: c } }] },
          action: { weightedTargets: [{ virtualNode: nodeName(c), weight: 1 }] },
        },
      },
    },
  };
}

/** The seed's deploy: the mesh, the three colors, the router and its routes, the service, front. */
export function seed003Calls(): SeedCall[] {
  return [
    { operation: 'CreateMesh', file: 'mesh.json', what: 'the mesh', input: { meshName: MESH } },
    ...COLORS.map(colorNode),
    {
      operation: 'CreateVirtualRouter', file: 'color-router.json', what: `listener ${PORT}`,
      input: { meshName: MESH, virtualRouterName: ROUTER, spec: { listeners: [listener] } },
    },
    ...COLORS.map(route),
    {
      operation: 'CreateVirtualService', file: 'color-vs.json', what: `provided by ${ROUTER}`,
      input: { meshName: MESH, virtualServiceName: SERVICE, spec: { provider: { virtualRouter: { virtualRouterName: ROUTER } } } },
    },
    {
      operation: 'CreateVirtualNode', file: 'front-vn.json',
      what: `backend ${SERVICE}; client policy: SVID ${spiffeId('front')}, accepts red, green, blue`,
      input: {
        meshName: MESH, virtualNodeName: nodeName('front'),
        spec: {
          listeners: [listener],
          serviceDiscovery: { dns: { hostname: hostname('front') } },
          backends: [{ virtualService: { virtualServiceName: SERVICE } }],
          backendDefaults: {
            clientPolicy: {
              tls: {
                enforce: true,
                ports: [PORT],
                certificate: { sds: { secretName: spiffeId('front') } },
                validation: { trust, subjectAlternativeNames: { match: { exact: COLORS.map(spiffeId) } } },
              },
            },
          },
        },
      },
    },
  ];
}
