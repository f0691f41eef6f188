// keymesh's admin endpoint for the xDS server: which proxies are connected and what they did with the
// configuration sent to them (last version sent and ACKed per type, the last NACK and its message, refused
// secrets). SigV4-authenticated like the other /keymesh/v1 routes. The xDS server is seen only through this
// small interface, so the API does not depend on src/xds.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendJson } from '../json-body.ts';

/** What the route needs of a proxy status (the xDS server's ProxyStatus has more; all of it is returned). */
export interface ProxyStatusLike {
  readonly identity: { readonly mesh: string };
}

export interface ProxyRoutesOptions {
  /** Connected, authenticated proxies (e.g. XdsServer.proxies). */
  proxies(): readonly ProxyStatusLike[];
}

export function registerProxyRoutes(app: FastifyInstance, options: ProxyRoutesOptions): void {
  app.route({
    method: 'GET',
    url: '/keymesh/v1/proxies',
    handler: async (req: FastifyRequest, reply: FastifyReply) => {
      const mesh = (req.query as Record<string, string | undefined>).mesh;
      const proxies = options.proxies().filter((p) => !mesh || p.identity.mesh === mesh);
      return sendJson(reply, { proxies });
    },
  });
}
