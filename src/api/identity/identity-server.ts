// The workload identity endpoint (HTTPS, TLS 1.2+): where proxies get their X.509 SVIDs.
//   POST /identity/v1/bootstrap {joinToken, csr}  first SVID, proven by a single-use join token
//   POST /identity/v1/renew     {csr}             a new SVID, proven by the current one as TLS client certificate
//   GET  /identity/v1/bundle                      the caller's trust bundle and CRLs (mTLS)
// The server asks for a client certificate but does not let TLS judge it: bundles differ per trust domain
// and revocation lives in the CA, so the CA verifies the presented chain (identityFromPeerCertificate).
// The handshake itself proves the client holds the leaf's private key.
import { randomUUID } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { X509Certificate } from '@peculiar/x509';
import type { CertificateAuthority } from '../../ca/authority.ts';
import type { PeerIdentity } from '../../ca/peer-identity.ts';
import type { Svid } from '../../ca/svid-issuer.ts';
import { ForbiddenError, isKeymeshError } from '../../errors/index.ts';
import { BodyFields, sendJson } from '../json-body.ts';
import { toWireError } from '../wire-errors.ts';
import { peerChain } from './peer-chain.ts';

/** A CSR is a few KiB; nothing legitimate is larger. */
const BODY_LIMIT = 64 * 1024;

export interface IdentityServerOptions {
  authority: CertificateAuthority;
  tls: { certPem: string; keyPem: string };
  logger: { level: string } | false;
}

/** The JSON a workload receives; times are ms since the epoch. */
export interface SvidAnswer {
  spiffeId: string;
  certChainPem: string;
  bundlePem: string;
  notBefore: number;
  notAfter: number;
  serial: string;
}

export function createIdentityServer(options: IdentityServerOptions): FastifyInstance {
  const { authority } = options;
  const app = Fastify({
    https: {
      cert: options.tls.certPem,
      key: options.tls.keyPem,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    },
    logger: options.logger,
    bodyLimit: BODY_LIMIT,
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: () => randomUUID(),
  });

  app.post('/identity/v1/bootstrap', async (req, reply) => {
    const body = new BodyFields(req.body, ['joinToken', 'csr']);
    const svid = await authority.redeemJoinToken(body.requiredString('joinToken'), body.requiredString('csr'));
    req.log.info({ spiffeId: svid.spiffeId, serial: svid.serial, notAfter: new Date(svid.notAfter).toISOString() }, 'SVID issued (join token)');
    return sendJson(reply, answer(svid));
  });

  app.post('/identity/v1/renew', async (req, reply) => {
    const peer = await callerIdentity(authority, req);
    const csr = new BodyFields(req.body, ['csr']).requiredString('csr');
    const svid = await authority.renew(peer, csr);
    req.log.info({ spiffeId: svid.spiffeId, serial: svid.serial, previous: peer.serial }, 'SVID renewed');
    return sendJson(reply, answer(svid));
  });

  app.get('/identity/v1/bundle', async (req, reply) => {
    const peer = await callerIdentity(authority, req);
    const bundle = await authority.trustBundle(peer.trustDomain);
    return sendJson(reply, { trustDomain: bundle.trustDomain, bundlePem: bundle.pem, crlPem: await authority.crlsOf(peer.trustDomain) });
  });

  app.setNotFoundHandler(async (req, reply) => {
    sendError(reply, 404, 'NotFoundException', 'KM_ERR_NOT_FOUND', `No identity endpoint matches ${req.method} ${req.url.split('?')[0]}.`);
  });

  app.setErrorHandler(async (err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (!isKeymeshError(err) && typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      return sendError(reply, err.statusCode === 413 ? 413 : 400, 'BadRequestException', 'KM_ERR_BAD_REQUEST', err.message);
    }
    const wire = toWireError(err);
    if (wire.status >= 500) req.log.error({ err }, 'identity request failed');
    else req.log.info({ type: wire.type, code: isKeymeshError(err) ? err.code : undefined, message: wire.message }, 'identity request refused');
    sendError(reply, wire.status, wire.type, isKeymeshError(err) ? err.code : 'KM_ERR_INTERNAL', wire.message);
  });

  return app;
}

async function callerIdentity(authority: CertificateAuthority, req: FastifyRequest): Promise<PeerIdentity> {
  const chain: X509Certificate[] = peerChain(req.raw.socket as TLSSocket);
  if (chain.length === 0) {
    throw new ForbiddenError('This endpoint needs the current SVID as TLS client certificate; a workload without one bootstraps with a join token.', 'KM_ERR_NO_CLIENT_CERT');
  }
  try {
    return await authority.identityFromPeerCertificate(chain);
  } catch (e) {
    // Whatever is wrong with the presented certificate, the answer is "not authorized", with the reason.
    if (isKeymeshError(e) && e.kind === 'bad-request') throw new ForbiddenError(e.message, e.code);
    throw e;
  }
}

function answer(svid: Svid): SvidAnswer {
  return { spiffeId: svid.spiffeId, certChainPem: svid.certChainPem, bundlePem: svid.bundlePem, notBefore: svid.notBefore, notAfter: svid.notAfter, serial: svid.serial };
}

function sendError(reply: FastifyReply, status: number, type: string, code: string, message: string): void {
  reply.code(status).header('x-amzn-ErrorType', type).type('application/json').send(JSON.stringify({ message, code }));
}
