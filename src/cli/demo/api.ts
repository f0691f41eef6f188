// The App Mesh API as the demo calls it: real SigV4-signed HTTP requests to `keymesh server` on the App Mesh
// REST paths (src/model/appmesh-model.json), with the input shaped like the AWS CLI's --cli-input-json
// (members named in the path go there, the rest into the JSON body), and the equivalent `aws appmesh` line
// to show. Plus the keymesh admin call that makes a proxy's join token.
import { adminCall, type AdminTarget } from '../admin-client.ts';
import { withTimeout } from './probe.ts';

/** How long one API call may take. */
const CALL_TIMEOUT_MS = 15_000;

/** The operations the walkthroughs use: method and path template as in the App Mesh service model. */
export const OPERATIONS = {
  CreateMesh: { method: 'PUT', uri: '/v20190125/meshes' },
  DescribeMesh: { method: 'GET', uri: '/v20190125/meshes/{meshName}' },
  CreateVirtualNode: { method: 'PUT', uri: '/v20190125/meshes/{meshName}/virtualNodes' },
  UpdateVirtualNode: { method: 'PUT', uri: '/v20190125/meshes/{meshName}/virtualNodes/{virtualNodeName}' },
  DescribeVirtualNode: { method: 'GET', uri: '/v20190125/meshes/{meshName}/virtualNodes/{virtualNodeName}' },
  CreateVirtualService: { method: 'PUT', uri: '/v20190125/meshes/{meshName}/virtualServices' },
  CreateVirtualRouter: { method: 'PUT', uri: '/v20190125/meshes/{meshName}/virtualRouters' },
  CreateRoute: { method: 'PUT', uri: '/v20190125/meshes/{meshName}/virtualRouter/{virtualRouterName}/routes' },
  CreateVirtualGateway: { method: 'PUT', uri: '/v20190125/meshes/{meshName}/virtualGateways' },
  UpdateVirtualGateway: { method: 'PUT', uri: '/v20190125/meshes/{meshName}/virtualGateways/{virtualGatewayName}' },
  DescribeVirtualGateway: { method: 'GET', uri: '/v20190125/meshes/{meshName}/virtualGateways/{virtualGatewayName}' },
  CreateGatewayRoute: { method: 'PUT', uri: '/v20190125/meshes/{meshName}/virtualGateway/{virtualGatewayName}/gatewayRoutes' },
} as const;

export type OperationName = keyof typeof OPERATIONS;

/** An operation's input as the AWS CLI takes it in --cli-input-json: meshName, the resource's name, spec. */
export type OperationInput = Readonly<Record<string, unknown>>;

export interface CallResult {
  /** `PUT /v20190125/meshes/M/virtualNodes/N`. */
  readonly request: string;
  readonly status: number;
  /** The answer's body (the resource data for Create/Update/Describe). */
  readonly body: Record<string, unknown>;
}

/** `UpdateVirtualNode` → `update-virtual-node`, as the AWS CLI names it. */
export function cliName(operation: OperationName): string {
  return operation.replace(/[A-Z]/g, (c, i: number) => `${i === 0 ? '' : '-'}${c.toLowerCase()}`);
}

/** `meshName` → `--mesh-name`. */
function cliFlag(member: string): string {
  return `--${member.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9._:/=@%+,-]+$/.test(s) ? s : `'${s.replaceAll("'", "'\\''")}'`;
}

/**
 * The `aws appmesh ...` line for a call: with `--cli-input-json file://FILE` when the input is in a file,
 * otherwise one flag per member (objects as JSON).
 */
export function cliLine(operation: OperationName, input: OperationInput, inputFile?: string): string {
  const args = inputFile !== undefined
    ? ['--cli-input-json', `file://${inputFile}`]
    : Object.entries(input).flatMap(([k, v]) => [cliFlag(k), shellQuote(typeof v === 'string' ? v : JSON.stringify(v))]);
  return ['aws appmesh', cliName(operation), ...args].join(' ');
}

/** The request path with the members named in the template filled in, and the body with the others. */
export function httpRequestOf(operation: OperationName, input: OperationInput): { method: string; path: string; body: Record<string, unknown> } {
  const { method, uri } = OPERATIONS[operation];
  const body: Record<string, unknown> = { ...input };
  const path = uri.replace(/\{(\w+)\}/g, (_m, member: string) => {
    const value = input[member];
    if (typeof value !== 'string') throw new Error(`${operation}: ${member} is missing from the input`);
    delete body[member];
    return encodeURIComponent(value);
  });
  return { method, path, body };
}

export class AppMeshApi {
  readonly #target: AdminTarget;

  constructor(target: AdminTarget) {
    this.#target = target;
  }

  get endpoint(): string {
    return this.#target.endpoint;
  }

  /** Sends one App Mesh operation; an error answer throws AdminCallError (`Type: message`). */
  async call(operation: OperationName, input: OperationInput): Promise<CallResult> {
    const { method, path, body } = httpRequestOf(operation, input);
    const hasBody = method !== 'GET' && method !== 'DELETE';
    const answer = await withTimeout(adminCall<Record<string, unknown> | string>(this.#target, method, path, hasBody ? body : undefined),
      CALL_TIMEOUT_MS, `${method} ${path}: no answer from the control plane`);
    return { request: `${method} ${path}`, status: 200, body: typeof answer === 'object' && answer !== null ? answer : {} };
  }

  /** One of keymesh's own admin calls (`/keymesh/v1/...`, what `keymesh ca ...` sends); errors as call(). */
  admin<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
    return withTimeout(adminCall<T>(this.#target, method, path, body), CALL_TIMEOUT_MS, `${method} ${path}: no answer from the control plane`);
  }

  /** A single-use join token for a virtual node's or gateway's proxy, and the control-plane CA to pin. */
  async joinToken(mesh: string, kind: 'virtualNode' | 'virtualGateway', name: string): Promise<{ token: string; controlPlaneCaPem: string }> {
    const path = `/keymesh/v1/meshes/${encodeURIComponent(mesh)}/${kind}s/${encodeURIComponent(name)}/join-tokens`;
    return withTimeout(adminCall<{ token: string; controlPlaneCaPem: string }>(this.#target, 'POST', path, {}),
      CALL_TIMEOUT_MS, `POST ${path}: no answer from the control plane`);
  }
}

/** The version App Mesh reports in the resource's metadata (the answer is the resource data), if any. */
export function versionOf(result: CallResult): number | undefined {
  for (const value of [result.body, ...Object.values(result.body)]) {
    const version = (value as { metadata?: { version?: unknown } } | null)?.metadata?.version;
    if (typeof version === 'number') return version;
  }
  return undefined;
}
