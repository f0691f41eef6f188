// The App Mesh-compatible REST API on fastify. Routes come from the service model; every request is
// authenticated (SigV4) and rate-limited before its handler runs, and every failure leaves as an App Mesh
// error (`x-amzn-ErrorType` header + `{"message"}` body), which is what the AWS CLI and SDKs parse.
import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Clock } from '../base/clock.ts';
import { isKeymeshError } from '../errors/index.ts';
import type { ResourceManager } from '../mesh/manager.ts';
import { registerCaRoutes, type CaRoutesOptions } from './admin/ca-routes.ts';
import { registerEndpointRoutes, type EndpointRoutesOptions } from './admin/endpoint-routes.ts';
import { registerProxyRoutes, type ProxyRoutesOptions } from './admin/proxy-routes.ts';
import { type CredentialLookup, verifySigV4 } from './auth/sigv4-verify.ts';
import { parseJsonBody } from './json-body.ts';
import { buildOperations } from './operations.ts';
import { RateLimiter, type RateLimitOptions } from './rate-limit.ts';
import { toWireError } from './wire-errors.ts';

/** Generous for App Mesh specs (a few KiB), small enough that a hostile body costs nothing. */
const BODY_LIMIT = 1024 * 1024;

export interface ApiServerOptions {
  manager: ResourceManager;
  clock: Clock;
  /** Credentials to verify signatures against; null turns authentication off (--insecure-no-auth). */
  credentials: CredentialLookup | null;
  rateLimit: RateLimitOptions;
  /** Server log settings; false for none. Logs never include credentials or bodies. */
  logger: { level: string } | false;
  /** keymesh's own admin endpoints for the certificate authority (under /keymesh/v1); omitted: none. */
  ca?: CaRoutesOptions;
  /** The xDS server's proxy status (GET /keymesh/v1/proxies); omitted: no such route. */
  proxies?: ProxyRoutesOptions;
  /** The endpoint registry (GET /keymesh/v1/endpoints, operator registrations); omitted: no such routes. */
  endpoints?: EndpointRoutesOptions;
}

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: Buffer;
  }
}

export function createApiServer(options: ApiServerOptions): FastifyInstance {
  const app = Fastify({
    logger: options.logger,
    bodyLimit: BODY_LIMIT,
    // Resource names may be 255 characters, percent-encoded up to three times as long.
    routerOptions: { maxParamLength: 2048 },
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => randomUUID(),
  });
  const limiter = new RateLimiter(options.rateLimit, options.clock);

  // The signature covers the exact body bytes, so keep them; JSON is parsed by the handler wrapper.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    req.rawBody = body as Buffer;
    done(null, undefined);
  });

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-amzn-RequestId', req.id);
  });

  app.addHook('preHandler', async (req) => {
    let caller = req.ip;
    // Public routes (CRLs, the control-plane CA certificate) serve what any relying party may fetch.
    const isPublic = (req.routeOptions.config as { public?: boolean } | undefined)?.public === true;
    if (options.credentials && !isPublic) {
      const who = await verifySigV4(
        { method: req.method, rawUrl: req.raw.url ?? '/', headers: req.headers, body: req.rawBody ?? Buffer.alloc(0) },
        options.credentials,
        options.clock,
      );
      caller = who.accessKeyId;
    }
    limiter.take(caller);
  });

  for (const op of buildOperations()) {
    app.route({
      method: op.method,
      url: op.uri.replace(/\{(\w+)\}/g, ':$1'),
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        const result = await op.handle(options.manager, {
          params: req.params as Record<string, string>,
          query: req.query as Record<string, string | string[] | undefined>,
          body: parseJsonBody(req.rawBody),
        });
        req.log.debug({ op: op.name }, 'ok');
        return reply.code(200).type('application/json').send(JSON.stringify(result));
      },
    });
  }

  if (options.ca) registerCaRoutes(app, options.ca);
  if (options.proxies) registerProxyRoutes(app, options.proxies);
  if (options.endpoints) registerEndpointRoutes(app, options.endpoints);

  app.setNotFoundHandler(async (req, reply) => {
    sendError(reply, 404, 'UnknownOperationException', `No App Mesh operation matches ${req.method} ${req.url.split('?')[0]}.`);
  });

  app.setErrorHandler(async (err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (!isKeymeshError(err) && err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendError(reply, 413, 'BadRequestException', `Request body is larger than ${BODY_LIMIT} bytes.`);
    }
    if (!isKeymeshError(err) && typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      return sendError(reply, 400, 'BadRequestException', err.message);
    }
    const wire = toWireError(err);
    if (wire.status >= 500) req.log.error({ err }, 'request failed');
    else req.log.debug({ type: wire.type, message: wire.message }, 'request refused');
    sendError(reply, wire.status, wire.type, wire.message);
  });

  return app;
}

function sendError(reply: FastifyReply, status: number, type: string, message: string): void {
  reply.code(status).header('x-amzn-ErrorType', type).type('application/json').send(JSON.stringify({ message }));
}
