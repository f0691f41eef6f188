// `keymesh server`'s xDS server end to end: a real server process, seed 004's mesh made with the AWS CLI,
// SVIDs bootstrapped over the identity endpoint (openssl key + CSR, curl), and a scripted Envoy (grpc-js ADS
// client over mTLS with that SVID, pinning the control-plane CA).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { decodeResource, TYPE_URLS as T } from '../../src/envoy/protos.ts';
import { opensslOk } from '../../src/pki/testing-openssl.ts';
import { adsClientConstructor, type DiscoveryRequest, type DiscoveryResponse } from '../../src/envoy/ads-service.ts';
import * as seed from '../fixtures/seed-specs.ts';
import { appmeshCli } from '../support/aws-cli.ts';
import { keymeshAcm } from '../support/keymesh-acm.ts';
import { KEYMESH_MAIN, makeTempDir, removeDir, startKeymeshServer, TEST_CREDENTIALS, type ServerHandle } from '../support/keymesh-server.ts';

const MESH = 'appmesh-mtls';
const SERVICE = 'colorteller.appmesh-mtls.local';

let server: ServerHandle;
let dir: string;
let cpCaPath: string;
let trustDomain: string;
let certArn: string;
let caArn: string;
const arnOf = (kind: 'virtualNode' | 'virtualGateway', name: string) => `arn:aws:appmesh:us-east-1:000000000000:mesh/${MESH}/${kind}/${name}`;

interface Svid { key: string; cert: string; spiffeId: string }
const svids: Record<string, Svid> = {};

function keymesh(args: string[]) {
  const r = spawnSync(process.execPath, [KEYMESH_MAIN, ...args, '--endpoint', server.url, '--data-dir', server.dataDir], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey },
  });
  assert.equal(r.status, 0, `keymesh ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

async function cli(args: string[]): Promise<any> {
  const r = await appmeshCli(server.url, args);
  assert.equal(r.code, 0, `aws appmesh ${args[0]}: ${r.stderr}`);
  return r.json;
}

/** What a proxy does: its own key and CSR, a join token, then POST /identity/v1/bootstrap with curl. */
function bootstrap(kind: 'virtualNode' | 'virtualGateway', name: string): Svid {
  const token = keymesh(['token', 'create', '--mesh', MESH, kind === 'virtualNode' ? '--virtual-node' : '--virtual-gateway', name]).trim();
  const key = join(dir, `${name}.key`);
  opensslOk(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  opensslOk(['req', '-new', '-key', key, '-subj', '/', '-out', join(dir, `${name}.csr`)]);
  const body = join(dir, `${name}.json`);
  writeFileSync(body, JSON.stringify({ joinToken: token, csr: readFileSync(join(dir, `${name}.csr`), 'utf8') }));
  const r = spawnSync('curl', [
    '-sS', '--fail-with-body', '--cacert', cpCaPath, '-H', 'content-type: application/json', '--data', `@${body}`,
    `${server.identityUrl.replace('127.0.0.1', 'localhost')}/identity/v1/bootstrap`,
  ], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  const answer = JSON.parse(r.stdout) as { certChainPem: string; spiffeId: string };
  return { key: readFileSync(key, 'utf8'), cert: answer.certChainPem, spiffeId: answer.spiffeId };
}

interface Decoded { versionInfo: string; typeUrl: string; nonce: string; resources: Record<string, any>[] }

/** A scripted Envoy on one ADS stream: sends requests, reads decoded responses, with bounded waits. */
class Envoy {
  readonly #client: grpc.Client;
  readonly #call: grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  readonly #queue: Decoded[] = [];
  #wake: (() => void) | undefined;
  status: { code: number; details: string } | undefined;
  #nodeSent = false;
  readonly nodeId: string;

  constructor(svid: Svid, nodeId: string) {
    this.nodeId = nodeId;
    const Client = adsClientConstructor();
    const creds = grpc.credentials.createSsl(readFileSync(cpCaPath), Buffer.from(svid.key), Buffer.from(svid.cert));
    this.#client = new Client(server.xdsAddress, creds, { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' });
    this.#call = (this.#client as any).StreamAggregatedResources();
    this.#call.on('data', (r: DiscoveryResponse) => {
      this.#queue.push({ versionInfo: r.versionInfo, typeUrl: r.typeUrl, nonce: r.nonce, resources: (r.resources ?? []).map((a) => decodeResource(a.type_url, a.value)) });
      this.#wake?.();
    });
    const ended = (s: { code: number; details: string }) => {
      this.status ??= { code: s.code, details: s.details };
      this.#wake?.();
    };
    this.#call.on('error', ended);
    this.#call.on('status', ended);
  }

  send(typeUrl: string, r: { versionInfo?: string; names?: string[]; nonce?: string; error?: string } = {}): void {
    const msg: DiscoveryRequest = { typeUrl, versionInfo: r.versionInfo ?? '', resourceNames: r.names ?? [], responseNonce: r.nonce ?? '' };
    if (r.error !== undefined) msg.errorDetail = { code: 3, message: r.error };
    if (!this.#nodeSent) msg.node = { id: this.nodeId, cluster: 'test' };
    this.#nodeSent = true;
    this.#call.write(msg);
  }

  ack(r: Decoded, names?: string[]): void {
    this.send(r.typeUrl, { versionInfo: r.versionInfo, nonce: r.nonce, ...(names ? { names } : {}) });
  }

  /** The next response of `typeUrl` (others are skipped); fails after `ms`. */
  async next(typeUrl: string, ms = 10_000): Promise<Decoded> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.#queue.findIndex((r) => r.typeUrl === typeUrl);
      if (i >= 0) return this.#queue.splice(i, 1)[0]!;
      if (this.status) throw new Error(`the stream ended: ${this.status.code} ${this.status.details}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${typeUrl} response within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  async ended(ms = 10_000): Promise<{ code: number; details: string }> {
    const deadline = Date.now() + ms;
    while (!this.status && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (!this.status) throw new Error(`the stream did not end within ${ms} ms`);
    return this.status;
  }

  close(): void {
    this.#call.cancel();
    this.#client.close();
  }
}

const envoys: Envoy[] = [];
function connect(who: string, nodeId: string): Envoy {
  const e = new Envoy(svids[who]!, nodeId);
  envoys.push(e);
  return e;
}

before(async () => {
  dir = makeTempDir('keymesh-xds-');
  server = await startKeymeshServer();
  cpCaPath = join(server.dataDir, 'control-plane', 'ca-cert.pem');
  const spec = (s: unknown) => ['--spec', JSON.stringify(s)];
  await cli(['create-mesh', '--mesh-name', MESH]);
  await cli(['create-virtual-node', '--mesh-name', MESH, '--virtual-node-name', 'colorteller', ...spec(seed.colortellerStrictTls)]);
  await cli(['create-virtual-service', '--mesh-name', MESH, '--virtual-service-name', SERVICE, ...spec(seed.colortellerService)]);
  await cli(['create-virtual-gateway', '--mesh-name', MESH, '--virtual-gateway-name', 'gateway', ...spec(seed.gatewayWithClientCert)]);
  await cli(['create-gateway-route', '--mesh-name', MESH, '--virtual-gateway-name', 'gateway', '--gateway-route-name', 'to-colorteller', ...spec(seed.gatewayRouteToColorteller)]);
  // Seed 002's ACM objects in this mesh: a managed certificate that only colorteller-white may have.
  ({ caArn, certArn } = await keymeshAcm(server.url, MESH, 'colorteller-white.appmesh-mtls.local'));
  await cli(['create-virtual-node', '--mesh-name', MESH, '--virtual-node-name', 'colorteller-white', ...spec(seed.acmColortellerNodeFor(certArn))]);
  svids.colorteller = bootstrap('virtualNode', 'colorteller');
  svids.gateway = bootstrap('virtualGateway', 'gateway');
  svids.white = bootstrap('virtualNode', 'colorteller-white');
  trustDomain = /^spiffe:\/\/([^/]+)\//.exec(svids.colorteller.spiffeId)![1]!;
});

after(async () => {
  for (const e of envoys) e.close();
  await server?.stop();
  if (dir) removeDir(dir);
  if (server) removeDir(server.dataDir);
});

describe('xDS from a real keymesh server', () => {
  test('the colorteller gets its ingress listener and clusters, decodable, from the store through translate', async () => {
    const e = connect('colorteller', arnOf('virtualNode', 'colorteller'));
    e.send(T.cluster);
    e.send(T.listener);
    const cds = await e.next(T.cluster);
    const lds = await e.next(T.listener);
    e.ack(cds);
    e.ack(lds);
    const listeners = lds.resources.map((l) => l.name);
    assert.ok(listeners.includes('lds_ingress_0.0.0.0_15000'), listeners.join(', '));
    const ingress = lds.resources.find((l) => l.name === 'lds_ingress_0.0.0.0_15000')!;
    assert.equal(ingress.address.socketAddress.portValue, 15000);
    // STRICT TLS with file certificates: the transport socket reads the seed's files.
    assert.match(JSON.stringify(ingress), /\/keys\/colorteller_cert_chain\.pem/);
    // Its local application, and (DROP_ALL, App Mesh's default) the AWS APIs.
    assert.deepEqual(cds.resources.map((c) => c.name), [`cds_egress_${MESH}_amazonaws`, `cds_ingress_${MESH}_colorteller_http_9080`]);
    assert.match(cds.versionInfo, /^[0-9a-f]{16}$/);
  });

  test("the gateway gets an EDS cluster to the colorteller whose assignment is the colorteller's connected sidecar", async () => {
    const e = connect('gateway', arnOf('virtualGateway', 'gateway'));
    e.send(T.cluster);
    const cds = await e.next(T.cluster);
    e.ack(cds);
    const egress = cds.resources.find((c) => String(c.name).startsWith(`cds_egress_${MESH}_colorteller`));
    assert.ok(egress, cds.resources.map((c) => c.name).join(', '));
    assert.equal(egress.name, `cds_egress_${MESH}_colorteller_http_9080`);
    assert.equal(egress.type, 'EDS', 'the colorteller registered when its stream was accepted');
    e.send(T.clusterLoadAssignment, { names: [egress.name] });
    const eds = await e.next(T.clusterLoadAssignment);
    // No placement metadata: the address it connected from, App Mesh's ingress port.
    assert.deepEqual(eds.resources[0]!.endpoints[0].lbEndpoints.map((l: any) => l.endpoint.address.socketAddress), [{ address: '127.0.0.1', portValue: 15000 }]);
  });

  test('aws appmesh update-virtual-node pushes a new listener version within a bounded wait', async () => {
    const e = connect('colorteller', arnOf('virtualNode', 'colorteller'));
    e.send(T.listener);
    const first = await e.next(T.listener);
    e.ack(first);
    assert.doesNotMatch(JSON.stringify(first.resources), /gateway\.appmesh-mtls\.local/);
    const started = Date.now();
    await cli(['update-virtual-node', '--mesh-name', MESH, '--virtual-node-name', 'colorteller', '--spec', JSON.stringify(seed.colortellerRequireClientCert)]);
    const pushed = await e.next(T.listener, 5000);
    assert.ok(Date.now() - started < 5000);
    assert.notEqual(pushed.versionInfo, first.versionInfo);
    // Step 4 of seed 004: the listener now requires the gateway's client certificate.
    assert.match(JSON.stringify(pushed.resources), /gateway\.appmesh-mtls\.local/);
    assert.match(JSON.stringify(pushed.resources), /\/keys\/ca_cert\.pem/);
    e.ack(pushed);
  });

  test('a NACK shows up in `keymesh proxies`, with its message', async () => {
    const e = connect('colorteller', arnOf('virtualNode', 'colorteller'));
    e.send(T.cluster);
    const cds = await e.next(T.cluster);
    e.send(T.cluster, { versionInfo: '', nonce: cds.nonce, error: 'cluster rejected by the test Envoy' });
    const deadline = Date.now() + 10_000;
    let out = '';
    while (Date.now() < deadline) {
      out = keymesh(['proxies', '--mesh', MESH]);
      if (out.includes('cluster rejected by the test Envoy')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(out, /^IDENTITY\s+CONNECTED SINCE\s+ACKED\s+LAST NACK/);
    const line = out.split('\n').find((l) => l.includes('cluster rejected by the test Envoy'));
    assert.ok(line, out);
    assert.match(line, new RegExp(`${svids.colorteller!.spiffeId.replace(/[.]/g, '\\.')} \\(${MESH}/virtualNode/colorteller\\)`));
    assert.match(line, new RegExp(`CDS ${cds.versionInfo}: cluster rejected`));
    // Another mesh filter shows none of them.
    assert.equal(keymesh(['proxies', '--mesh', 'no-such-mesh']).trim().split('\n').length, 1);
    const json = JSON.parse(keymesh(['proxies', '--mesh', MESH, '--json'])) as { proxies: any[] };
    const nacked = json.proxies.find((p) => p.lastNack?.message === 'cluster rejected by the test Envoy');
    assert.equal(nacked.lastNack.typeUrl, T.cluster);
    assert.equal(nacked.lastNack.version, cds.versionInfo);
    e.close();
  });

  test('a node.id naming another node than the SVID proves is refused', async () => {
    const e = connect('colorteller', arnOf('virtualNode', 'colorteller-white'));
    e.send(T.cluster);
    const status = await e.ended();
    assert.equal(status.code, grpc.status.PERMISSION_DENIED);
    assert.match(status.details, /colorteller-white/);
    assert.match(status.details, /colorteller/);
  });

  test('the trust-bundle validation secret is served; another proxy\'s ACM certificate secret is not', async () => {
    const e = connect('colorteller', arnOf('virtualNode', 'colorteller'));
    e.send(T.secret, { names: [certArn, trustDomain, `spiffe://${trustDomain}`, caArn, svids.white!.spiffeId] });
    const sds = await e.next(T.secret);
    const names = sds.resources.map((s) => s.name).sort();
    assert.deepEqual(names, [caArn, trustDomain, `spiffe://${trustDomain}`].sort());
    for (const s of sds.resources) {
      assert.match(s.validationContext.trustedCa.inlineString, /-----BEGIN CERTIFICATE-----/);
      assert.equal(s.tlsCertificate, undefined);
    }
    assert.doesNotMatch(JSON.stringify(sds.resources), /PRIVATE KEY/);
    e.ack(sds, [certArn, trustDomain, `spiffe://${trustDomain}`, caArn, svids.white!.spiffeId]);
    const json = JSON.parse(keymesh(['proxies', '--mesh', MESH, '--json'])) as { proxies: any[] };
    const refused = json.proxies.flatMap((p) => (p.identity.name === 'colorteller' ? p.refusedSecrets.map((r: any) => r.name) : []));
    assert.ok(refused.includes(certArn), JSON.stringify(refused));
    assert.ok(refused.includes(svids.white!.spiffeId), JSON.stringify(refused));
  });

  test('the proxy whose spec references the ACM certificate gets it, key and chain', async () => {
    const e = connect('white', arnOf('virtualNode', 'colorteller-white'));
    e.send(T.listener);
    const lds = await e.next(T.listener);
    assert.match(JSON.stringify(lds.resources), new RegExp(certArn.replace(/[/.]/g, '\\$&')));
    e.send(T.secret, { names: [certArn] });
    const sds = await e.next(T.secret);
    assert.equal(sds.resources.length, 1);
    const secret = sds.resources[0]!;
    assert.equal(secret.name, certArn);
    assert.match(secret.tlsCertificate.certificateChain.inlineString, /-----BEGIN CERTIFICATE-----/);
    assert.match(secret.tlsCertificate.privateKey.inlineString, /-----BEGIN PRIVATE KEY-----/);
  });

  test('a revocation reaches the validation secret of every proxy of the mesh: the pushed CRL lists the serial', async () => {
    const e = connect('colorteller', arnOf('virtualNode', 'colorteller'));
    e.send(T.secret, { names: [trustDomain] });
    const before = await e.next(T.secret);
    e.ack(before, [trustDomain]);
    // A second SVID of another node, revoked by serial while the colorteller's stream is open.
    const doomed = bootstrap('virtualNode', 'colorteller-white');
    const pem = join(dir, 'doomed.pem');
    writeFileSync(pem, doomed.cert);
    const serial = opensslOk(['x509', '-in', pem, '-noout', '-serial']).trim().split('=')[1]!;
    keymesh(['ca', 'revoke', '--serial', serial]);
    const after = await e.next(T.secret);
    assert.notEqual(after.versionInfo, before.versionInfo);
    const vc = after.resources[0]!.validationContext;
    assert.equal(vc.onlyVerifyLeafCertCrl, true);
    const crl = join(dir, 'pushed.crl.pem');
    writeFileSync(crl, vc.crl.inlineString);
    assert.match(opensslOk(['crl', '-in', crl, '-noout', '-text']), new RegExp(`Serial Number: ${serial}`, 'i'));
    e.close();
  });

  test('`keymesh ca revoke-identity` ends the open stream of that proxy within a bounded wait, and only that one', async () => {
    // A dedicated node, so the tests above keep their identities.
    await cli(['create-virtual-node', '--mesh-name', MESH, '--virtual-node-name', 'revoked-node', '--spec', JSON.stringify(seed.colortellerStrictTls)]);
    svids.revoked = bootstrap('virtualNode', 'revoked-node');
    const doomed = connect('revoked', arnOf('virtualNode', 'revoked-node'));
    const bystander = connect('colorteller', arnOf('virtualNode', 'colorteller'));
    doomed.send(T.cluster);
    bystander.send(T.cluster);
    doomed.ack(await doomed.next(T.cluster));
    bystander.ack(await bystander.next(T.cluster));
    const started = Date.now();
    keymesh(['ca', 'revoke-identity', '--mesh', MESH, '--virtual-node', 'revoked-node', '--reason', 'test']);
    const status = await doomed.ended(5000);
    assert.ok(Date.now() - started < 5000);
    assert.equal(status.code, grpc.status.PERMISSION_DENIED);
    assert.ok(status.details.includes(svids.revoked.spiffeId), status.details);
    assert.match(status.details, /revoked/);
    // The other proxy's stream stays open, and the revoked certificate cannot open a new one.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(bystander.status, undefined);
    const again = connect('revoked', arnOf('virtualNode', 'revoked-node'));
    again.send(T.cluster);
    assert.equal((await again.ended(5000)).code, grpc.status.UNAUTHENTICATED);
    bystander.close();
  });
});
