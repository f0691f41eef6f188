// keymesh's admin endpoints for its certificate authority, beside the App Mesh API on the same port and
// authenticated the same way (SigV4 with the admin credentials). App Mesh has no such operations, so the
// paths live under /keymesh/v1. Two read-only routes are public: CRLs and the control-plane CA certificate,
// which relying parties fetch without credentials. Times in answers are ms since the epoch; private keys
// and join-token secrets (except once, in the create answer) never appear in any answer.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CertificateAuthority } from '../../ca/authority.ts';
import type { Identity, IdentityKind } from '../../ca/spiffe.ts';
import { BadRequestError } from '../../errors/index.ts';
import { BodyFields, parseJsonBody, sendJson } from '../json-body.ts';

export interface CaRoutesOptions {
  authority: CertificateAuthority;
  /** The CA workloads pin for the identity endpoint (PEM). */
  controlPlaneCaPem: string;
  /** Where workloads reach the identity endpoint, shown with new join tokens: asked when a token is made, since
   * with port 0 it is known only once bound. */
  identityEndpoint: () => string;
}

type Params = Record<string, string>;
type Query = Record<string, string | undefined>;
interface Call {
  params: Params;
  query: Query;
  body: () => unknown;
}
type Handler = (call: Call) => Promise<unknown>;

const KINDS: Record<string, IdentityKind> = { virtualNodes: 'virtualNode', virtualGateways: 'virtualGateway' };
const PREFIX = '/keymesh/v1';

export function registerCaRoutes(app: FastifyInstance, options: CaRoutesOptions): void {
  const ca = options.authority;
  const route = (method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, handler: Handler) =>
    app.route({
      method,
      url: `${PREFIX}${url}`,
      handler: async (req: FastifyRequest, reply: FastifyReply) => {
        const result = await handler({ params: req.params as Params, query: req.query as Query, body: () => parseJsonBody(req.rawBody) });
        return sendJson(reply, result ?? {});
      },
    });

  // Per-mesh settings and the mesh's CA.
  route('GET', '/meshes/:mesh/ca/settings', async ({ params }) => ca.settings(params.mesh!));
  route('PUT', '/meshes/:mesh/ca/settings', async ({ params, body }) => {
    const f = new BodyFields(body(), ['trustDomain', 'svidTtlSeconds', 'keyType']);
    const ttl = f.count('svidTtlSeconds');
    const trustDomain = f.string('trustDomain');
    const keyType = f.string('keyType');
    return ca.configure(params.mesh!, {
      ...(trustDomain !== undefined ? { trustDomain } : {}), ...(ttl !== undefined ? { svidTtlMs: ttl * 1000 } : {}), ...(keyType !== undefined ? { keyType } : {}),
    });
  });
  route('POST', '/meshes/:mesh/ca', async ({ params }) => ca.ensureCa(params.mesh!));
  route('POST', '/meshes/:mesh/ca/import', async ({ params, body }) => {
    const f = new BodyFields(body(), ['certPem', 'keyPem', 'keyPassphrase', 'chainPem']);
    const keyPassphrase = f.string('keyPassphrase');
    const chainPem = f.string('chainPem');
    return ca.importCa(params.mesh!, {
      certPem: f.requiredString('certPem'), keyPem: f.requiredString('keyPem'),
      ...(keyPassphrase !== undefined ? { keyPassphrase } : {}), ...(chainPem !== undefined ? { chainPem } : {}),
    });
  });
  route('POST', '/meshes/:mesh/ca/csr', async ({ params, body }) => {
    const f = new BodyFields(body(), ['commonName', 'keyType']);
    const commonName = f.string('commonName');
    const keyType = f.string('keyType');
    return ca.prepareCsr(params.mesh!, { ...(commonName !== undefined ? { commonName } : {}), ...(keyType !== undefined ? { keyType } : {}) });
  });
  route('POST', '/meshes/:mesh/ca/rotation', async ({ params }) => ca.prepareRotation((await ca.settings(params.mesh!)).trustDomain));
  route('GET', '/meshes/:mesh/bundle', async ({ params }) => bundleAnswer(await ca.trustBundleOfMesh(params.mesh!)));

  // CAs by id or ARN (ARNs percent-encoded in the path).
  route('GET', '/cas', async ({ query }) => ({ cas: await ca.listCas(query.mesh ? { mesh: query.mesh } : {}) }));
  route('GET', '/cas/:ca', async ({ params }) => ca.describeCa(params.ca!));
  route('POST', '/cas/:ca/signed', async ({ params, body }) => {
    const f = new BodyFields(body(), ['certPem', 'chainPem']);
    return ca.importSigned(params.ca!, f.requiredString('certPem'), f.requiredString('chainPem'));
  });
  route('POST', '/cas/:ca/activate', async ({ params, body }) => {
    const f = new BodyFields(body(), ['force']);
    const target = await ca.describeCa(params.ca!);
    return ca.activate(target.trustDomain, target.id, { force: f.boolean('force') === true });
  });
  route('POST', '/cas/:ca/abandon', async ({ params }) => ca.abandonCa(params.ca!));

  // Issued certificates and revocation.
  route('GET', '/issued', async ({ query }) => {
    const issued = await ca.listIssued({
      ...(query.caId ? { caId: query.caId } : {}), ...(query.spiffeId ? { spiffeId: query.spiffeId } : {}),
      ...(query.revoked === 'true' ? { revoked: true } : query.revoked === 'false' ? { revoked: false } : {}),
      ...(query.unexpired === 'true' ? { unexpiredAt: Date.now() } : {}),
    });
    return { certificates: query.mesh ? issued.filter((c) => c.mesh === query.mesh) : issued };
  });
  route('POST', '/issued/:serial/revoke', async ({ params }) => ca.revokeCertificate(params.serial!.toLowerCase()));
  route('POST', '/meshes/:mesh/:kind/:name/revoke', async ({ params, body }) => {
    const f = new BodyFields(body(), ['reason']);
    return ca.revokeIdentity(identityOf(params), f.string('reason') ?? '');
  });
  route('DELETE', '/meshes/:mesh/:kind/:name/revoke', async ({ params }) => ({ reinstated: await ca.unrevokeIdentity(identityOf(params)) }));
  route('GET', '/revoked-identities', async ({ query }) => ({ identities: await ca.listRevokedIdentities(query.mesh) }));

  // Join tokens.
  route('POST', '/meshes/:mesh/:kind/:name/join-tokens', async ({ params, body }) => {
    const f = new BodyFields(body(), ['ttlSeconds']);
    const ttl = f.count('ttlSeconds');
    const created = await ca.createJoinToken(identityOf(params), ttl !== undefined ? { ttlMs: ttl * 1000 } : {});
    return { ...created, identityEndpoint: options.identityEndpoint(), controlPlaneCaPem: options.controlPlaneCaPem };
  });
  route('GET', '/join-tokens', async ({ query }) => ({ joinTokens: await ca.listJoinTokens(query.mesh) }));
  route('DELETE', '/join-tokens/:id', async ({ params }) => ({ deleted: await ca.deleteJoinToken(params.id!) }));

  // ACM-style managed certificates (ARNs percent-encoded in the path).
  route('POST', '/managed-certificates', async ({ body }) => {
    const f = new BodyFields(body(), ['mesh', 'caArn', 'domainName', 'subjectAlternativeNames', 'validityDays', 'keyType']);
    const sans = f.strings('subjectAlternativeNames');
    const days = f.count('validityDays');
    const keyType = f.string('keyType');
    return ca.requestCertificate({
      mesh: f.requiredString('mesh'), caArn: f.requiredString('caArn'), domainName: f.requiredString('domainName'),
      ...(sans !== undefined ? { subjectAlternativeNames: sans } : {}), ...(days !== undefined ? { validityMs: days * 86_400_000 } : {}),
      ...(keyType !== undefined ? { keyType } : {}),
    });
  });
  route('GET', '/managed-certificates', async ({ query }) => ({ certificates: await ca.listCertificates(query.mesh) }));
  route('GET', '/managed-certificates/:arn', async ({ params }) => ca.describeCertificate(params.arn!));
  route('POST', '/managed-certificates/:arn/renew', async ({ params }) => ca.renewCertificate(params.arn!));
  route('DELETE', '/managed-certificates/:arn', async ({ params }) => (await ca.deleteCertificate(params.arn!), { deleted: true }));

  // Public: what relying parties fetch without credentials.
  app.get(`${PREFIX}/public/crl/:ca`, { config: { public: true } }, async (req, reply) => {
    const crl = await ca.crl((req.params as Params).ca!.replace(/\.pem$/, ''));
    return reply.code(200).type('application/x-pem-file').header('cache-control', 'max-age=60').send(crl);
  });
  app.get(`${PREFIX}/public/control-plane-ca.pem`, { config: { public: true } }, async (_req, reply) =>
    reply.code(200).type('application/x-pem-file').send(options.controlPlaneCaPem));
}

function identityOf(params: Params): Identity {
  const kind = KINDS[params.kind!];
  if (!kind) throw new BadRequestError(`Unknown identity kind "${params.kind}" in the path: expected virtualNodes or virtualGateways.`);
  return { mesh: params.mesh!, kind, name: params.name! };
}

function bundleAnswer(bundle: { trustDomain: string; pem: string; caIds: readonly string[] }): unknown {
  return { trustDomain: bundle.trustDomain, bundlePem: bundle.pem, caIds: bundle.caIds };
}
