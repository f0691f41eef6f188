// keymesh's admin endpoints for the endpoint registry (src/discovery): the instances of each virtual node that
// the xDS server hands out as load assignments. Sidecars register themselves over xDS; these routes list the
// registry and let an operator register an instance that has no keymesh proxy (Cloud Map's RegisterInstance /
// DeregisterInstance). SigV4-authenticated like the other /keymesh/v1 routes.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { EndpointRegistry } from '../../discovery/endpoint-registry.ts';
import { BadRequestError, NotFoundError } from '../../errors/index.ts';
import { BodyFields, parseJsonBody, sendJson } from '../json-body.ts';

export interface EndpointRoutesOptions {
  registry: Pick<EndpointRegistry, 'list' | 'register' | 'deregister'>;
  /** Whether the virtual node exists (registering an instance of a node that does not would route nowhere). */
  nodeExists(mesh: string, virtualNode: string): Promise<boolean>;
}

const NODE = '/keymesh/v1/meshes/:mesh/virtualNodes/:virtualNode/endpoints';
type Params = { mesh: string; virtualNode: string; instance?: string };

export function registerEndpointRoutes(app: FastifyInstance, options: EndpointRoutesOptions): void {
  const { registry } = options;
  app.get('/keymesh/v1/endpoints', async (req: FastifyRequest, reply: FastifyReply) => {
    const mesh = (req.query as Record<string, string | undefined>).mesh;
    return sendJson(reply, { endpoints: await registry.list(mesh ? { mesh } : {}) });
  });
  app.post(NODE, async (req: FastifyRequest, reply: FastifyReply) => {
    const { mesh, virtualNode } = req.params as Params;
    const f = new BodyFields(parseJsonBody(req.rawBody), ['address', 'port', 'ports', 'instance']);
    const registration = { mesh, virtualNode, address: f.requiredString('address'), port: f.count('port'), ports: f.counts('ports'), instance: f.string('instance') };
    if (registration.port === undefined) throw new BadRequestError('"port" is required.');
    if (!(await options.nodeExists(mesh, virtualNode))) throw new NotFoundError(`Virtual node ${virtualNode} does not exist in mesh ${mesh}.`);
    return sendJson(reply, await registry.register({ ...registration, port: registration.port }));
  });
  app.delete(`${NODE}/:instance`, async (req: FastifyRequest, reply: FastifyReply) => {
    const { mesh, virtualNode, instance } = req.params as Params;
    return sendJson(reply, await registry.deregister({ mesh, virtualNode, instance: instance! }));
  });
}
