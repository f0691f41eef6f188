// The workload identity endpoint of a real `keymesh server`, driven by real clients: `keymesh token create`
// and `keymesh ca ...` processes, openssl for keys and CSRs (the private key never leaves the test's
// directory), curl for bootstrap and mTLS renewal, and keymesh's own HttpIdentityTransport.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HttpIdentityTransport } from '../../src/identity/http-transport.ts';
import { opensslOk } from '../../src/pki/testing-openssl.ts';
import { appmeshCli } from '../support/aws-cli.ts';
import { KEYMESH_MAIN, makeTempDir, removeDir, startKeymeshServer, TEST_CREDENTIALS, type ServerHandle } from '../support/keymesh-server.ts';

const MESH = 'colorapp';
const NODE = 'colorteller';
const HOSTNAME = 'colorteller.colorapp.local';
const SPIFFE_ID = `spiffe://${MESH}/${NODE}`;

let server: ServerHandle;
let dir: string;
let cpCa: string;

function keymesh(args: string[]) {
  const r = spawnSync(process.execPath, [KEYMESH_MAIN, ...args, '--endpoint', server.url, '--data-dir', server.dataDir], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function keymeshOk(args: string[]): string {
  const r = keymesh(args);
  assert.equal(r.code, 0, `keymesh ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

function newToken(node = NODE, extra: string[] = []): string {
  return keymeshOk(['token', 'create', '--mesh', MESH, '--virtual-node', node, ...extra]).trim();
}

/** A key made here and a CSR for `uri` (what a proxy sends: the key stays with it). */
function keyAndCsr(name: string, uri: string): { key: string; csr: string } {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  opensslOk(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  opensslOk(['req', '-new', '-key', key, '-subj', '/', '-addext', `subjectAltName=URI:${uri}`, '-out', csr]);
  return { key, csr: readFileSync(csr, 'utf8') };
}

interface CurlAnswer {
  status: number;
  json: Record<string, unknown>;
}

function curl(path: string, body: unknown, client?: { cert: string; key: string }): CurlAnswer {
  const bodyFile = join(dir, 'body.json');
  writeFileSync(bodyFile, JSON.stringify(body));
  const r = spawnSync('curl', [
    '-sS', '--cacert', cpCa, '-H', 'content-type: application/json', '--data', `@${bodyFile}`, '-w', '\n%{http_code}',
    ...(client ? ['--cert', client.cert, '--key', client.key] : []),
    // The endpoint's certificate is for keymesh-control-plane and localhost.
    `${server.identityUrl.replace('127.0.0.1', 'localhost')}${path}`,
  ], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  const status = Number(lines.pop());
  return { status, json: JSON.parse(lines.join('\n')) as Record<string, unknown> };
}

function saveSvid(name: string, answer: CurlAnswer): { cert: string; bundle: string } {
  const cert = join(dir, `${name}.pem`);
  const bundle = join(dir, `${name}-bundle.pem`);
  writeFileSync(cert, answer.json.certChainPem as string);
  writeFileSync(bundle, answer.json.bundlePem as string);
  return { cert, bundle };
}

before(async () => {
  dir = makeTempDir('keymesh-identity-');
  server = await startKeymeshServer({ env: { KEYMESH_CA_PASSPHRASE: 'correct horse battery staple' } });
  cpCa = join(server.dataDir, 'control-plane', 'ca-cert.pem');
  for (const args of [
    ['create-mesh', '--mesh-name', MESH],
    ['create-virtual-node', '--mesh-name', MESH, '--virtual-node-name', NODE, '--spec', JSON.stringify({
      listeners: [{ portMapping: { port: 9080, protocol: 'http' } }], serviceDiscovery: { dns: { hostname: HOSTNAME } },
    })],
    ['create-virtual-node', '--mesh-name', MESH, '--virtual-node-name', 'gateway', '--spec', JSON.stringify({ backends: [{ virtualService: { virtualServiceName: HOSTNAME } }] })],
  ]) {
    const r = await appmeshCli(server.url, args);
    assert.equal(r.code, 0, r.stderr);
  }
});

after(async () => {
  await server?.stop();
  removeDir(dir);
  if (server) removeDir(server.dataDir);
});

describe('bootstrap with a join token, renewal over mTLS', () => {
  let first: { cert: string; bundle: string };
  let firstKey: string;

  test('a join token and a CSR give an SVID that openssl verifies, with the SPIFFE ID and the DNS name', () => {
    const { key, csr } = keyAndCsr('first', SPIFFE_ID);
    const token = newToken();
    assert.match(token, /^kmjt1\.[\w-]{16}\.[\w-]{43}$/);
    const answer = curl('/identity/v1/bootstrap', { joinToken: token, csr });
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    assert.equal(answer.json.spiffeId, SPIFFE_ID);
    first = saveSvid('first', answer);
    firstKey = key;
    assert.match(opensslOk(['verify', '-CAfile', first.bundle, first.cert]), /OK/);
    const text = opensslOk(['x509', '-in', first.cert, '-noout', '-text']);
    assert.match(text, new RegExp(`URI:${SPIFFE_ID}`));
    assert.match(text, new RegExp(`DNS:${HOSTNAME.replace(/\./g, '\\.')}`));
    assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(text, /CA:FALSE/);
    // The default lifetime is one hour.
    const lifetime = (answer.json.notAfter as number) - (answer.json.notBefore as number);
    assert.ok(lifetime >= 3600_000 && lifetime <= 3600_000 + 60_000, `lifetime ${lifetime} ms`);
  });

  test('a new token names the identity endpoint where it listens (the OS chose its port), not the configured :0', () => {
    const r = keymesh(['token', 'create', '--mesh', MESH, '--virtual-node', NODE]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stderr.includes(`Identity endpoint: ${server.identityUrl}`), r.stderr);
    assert.doesNotMatch(r.stderr, /:0\b/);
  });

  test('the same token a second time is refused, and says it was used', () => {
    const token = newToken();
    const { csr } = keyAndCsr('twice', SPIFFE_ID);
    assert.equal(curl('/identity/v1/bootstrap', { joinToken: token, csr }).status, 200);
    const again = curl('/identity/v1/bootstrap', { joinToken: token, csr });
    assert.equal(again.status, 403);
    assert.equal(again.json.code, 'KM_ERR_TOKEN_USED');
    assert.match(again.json.message as string, /already used/);
  });

  test("a CSR for another identity is refused and does not spend the token", () => {
    const token = newToken();
    const foreign = keyAndCsr('foreign', `spiffe://${MESH}/gateway`);
    const refused = curl('/identity/v1/bootstrap', { joinToken: token, csr: foreign.csr });
    assert.equal(refused.status, 400);
    assert.match(refused.json.message as string, /asks for spiffe:\/\/colorapp\/gateway but the caller is spiffe:\/\/colorapp\/colorteller/);
    const own = keyAndCsr('own', SPIFFE_ID);
    assert.equal(curl('/identity/v1/bootstrap', { joinToken: token, csr: own.csr }).status, 200);
  });

  test('an expired token, a malformed one and a guessed secret are refused', async () => {
    const token = newToken(NODE, ['--ttl', '1s']);
    await new Promise((r) => setTimeout(r, 1500));
    const { csr } = keyAndCsr('late', SPIFFE_ID);
    const expired = curl('/identity/v1/bootstrap', { joinToken: token, csr });
    assert.equal(expired.status, 403);
    assert.equal(expired.json.code, 'KM_ERR_TOKEN_EXPIRED');
    assert.equal(curl('/identity/v1/bootstrap', { joinToken: 'not-a-token', csr }).json.code, 'KM_ERR_TOKEN_MALFORMED');
    const guessed = `${newToken().slice(0, 23)}${'A'.repeat(43)}`;
    const unknown = curl('/identity/v1/bootstrap', { joinToken: guessed, csr });
    assert.equal(unknown.status, 403);
    assert.equal(unknown.json.code, 'KM_ERR_TOKEN_UNKNOWN');
  });

  test('renewal is authenticated by the current SVID: with it a new SVID, without it a refusal', async () => {
    const { csr } = keyAndCsr('renew', SPIFFE_ID);
    const renewed = curl('/identity/v1/renew', { csr }, { cert: first.cert, key: firstKey });
    assert.equal(renewed.status, 200, JSON.stringify(renewed.json));
    assert.equal(renewed.json.spiffeId, SPIFFE_ID);
    const anonymous = curl('/identity/v1/renew', { csr });
    assert.equal(anonymous.status, 403);
    assert.equal(anonymous.json.code, 'KM_ERR_NO_CLIENT_CERT');
    // Renewing as colorteller but asking for the gateway's identity is refused.
    const foreign = keyAndCsr('renew-foreign', `spiffe://${MESH}/gateway`);
    const refused = curl('/identity/v1/renew', { csr: foreign.csr }, { cert: first.cert, key: firstKey });
    assert.equal(refused.status, 400);
    assert.match(refused.json.message as string, /caller is spiffe:\/\/colorapp\/colorteller/);

    // keymesh's own transport (what SvidSource uses) renews the same way, pinning the control-plane CA.
    const transport = new HttpIdentityTransport({ endpoint: server.identityUrl, caPem: readFileSync(cpCa, 'utf8') });
    const viaTransport = await transport.renew(keyAndCsr('transport', SPIFFE_ID).csr, {
      keyPem: readFileSync(firstKey, 'utf8'), certChainPem: readFileSync(first.cert, 'utf8'),
    });
    assert.equal(viaTransport.spiffeId, SPIFFE_ID);
    // A different pinned CA: the endpoint is not trusted.
    const wrongPin = new HttpIdentityTransport({ endpoint: server.identityUrl, caPem: readFileSync(first.bundle, 'utf8') });
    await assert.rejects(wrongPin.bootstrap(keyAndCsr('pin', SPIFFE_ID).csr, newToken()), /cannot reach the identity endpoint/);
  });

  test('revoking a certificate: it cannot renew, the public CRL lists it, openssl -crl_check rejects it', () => {
    const serial = opensslOk(['x509', '-in', first.cert, '-noout', '-serial']).trim().split('=')[1]!;
    keymeshOk(['ca', 'revoke', '--serial', serial]);
    const { csr } = keyAndCsr('after-revoke', SPIFFE_ID);
    const refused = curl('/identity/v1/renew', { csr }, { cert: first.cert, key: firstKey });
    assert.equal(refused.status, 403);
    assert.match(refused.json.message as string, /was revoked/);

    const caId = keymeshOk(['ca', 'list', '--mesh', MESH]).split('\n')[1]!.split(/\s+/)[0]!;
    const crl = spawnSync('curl', ['-sS', '-f', `${server.url}/keymesh/v1/public/crl/${caId}`], { encoding: 'utf8' });
    assert.equal(crl.status, 0, `the CRL is public: ${crl.stderr}`);
    const crlFile = join(dir, 'ca.crl.pem');
    writeFileSync(crlFile, crl.stdout);
    assert.match(opensslOk(['crl', '-in', crlFile, '-noout', '-text']), new RegExp(`Serial Number: ${serial}`, 'i'));
    const check = spawnSync('openssl', ['verify', '-crl_check', '-CRLfile', crlFile, '-CAfile', first.bundle, first.cert], { encoding: 'utf8' });
    assert.notEqual(check.status, 0);
    assert.match(check.stdout + check.stderr, /certificate revoked/);
  });

  test('revoking the identity: no new token, no bootstrap with an earlier one; reinstating lets it back in', () => {
    const earlier = newToken();
    keymeshOk(['ca', 'revoke-identity', '--mesh', MESH, '--virtual-node', NODE, '--reason', 'host compromised']);
    const denied = keymesh(['token', 'create', '--mesh', MESH, '--virtual-node', NODE]);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /revoked .*host compromised/);
    const { csr } = keyAndCsr('revoked', SPIFFE_ID);
    const refused = curl('/identity/v1/bootstrap', { joinToken: earlier, csr });
    assert.equal(refused.status, 403);
    assert.equal(refused.json.code, 'KM_ERR_IDENTITY_REVOKED');
    keymeshOk(['ca', 'reinstate-identity', '--mesh', MESH, '--virtual-node', NODE]);
    assert.equal(curl('/identity/v1/bootstrap', { joinToken: newToken(), csr }).status, 200);
  });
});

describe('keymesh identity run', () => {
  test('bootstraps from a token file into svid.pem, svid_key.pem (600) and bundle.pem; a restart needs no token', () => {
    const out = join(dir, 'workload');
    const tokenFile = join(dir, 'workload.token');
    writeFileSync(tokenFile, `${newToken()}\n`, { mode: 0o600 });
    const run = (extra: string[]) => spawnSync(process.execPath, [KEYMESH_MAIN, 'identity', 'run', '--endpoint', server.identityUrl, '--control-plane-ca', cpCa, '--out', out, '--once', ...extra], { encoding: 'utf8', timeout: 30_000 });
    const first = run(['--join-token-file', tokenFile, '--spiffe-id', SPIFFE_ID]);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /SVID issued for spiffe:\/\/colorapp\/colorteller/);
    assert.doesNotMatch(first.stdout + first.stderr, /kmjt1\.|PRIVATE KEY/);
    assert.equal(statSync(join(out, 'svid_key.pem')).mode & 0o777, 0o600);
    // For a stock Envoy: the file-based SDS secret that names these files (keymesh bootstrap envoy).
    assert.match(readFileSync(join(out, 'xds-client-secret.json'), 'utf8'), /svid_key\.pem/);
    assert.match(opensslOk(['verify', '-CAfile', join(out, 'bundle.pem'), join(out, 'svid.pem')]), /OK/);
    // The key on disk is the one the certificate is for.
    const certKey = opensslOk(['x509', '-in', join(out, 'svid.pem'), '-noout', '-pubkey']);
    assert.equal(opensslOk(['pkey', '-in', join(out, 'svid_key.pem'), '-pubout']), certKey);
    // A stock Envoy's bootstrap picks up the saved identity as the static secret SDS certificates name.
    const boot = spawnSync(process.execPath, [KEYMESH_MAIN, 'bootstrap', 'envoy', '--mesh', MESH, '--virtual-node', NODE, '--control-plane-ca', cpCa, '--svid-dir', out], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(boot.status, 0, boot.stderr);
    const secret = (JSON.parse(boot.stdout) as { staticResources: { secrets: { name: string; tlsCertificate: { privateKey: { filename: string } } }[] } }).staticResources.secrets[0]!;
    assert.equal(secret.name, SPIFFE_ID);
    assert.equal(secret.tlsCertificate.privateKey.filename, join(out, 'svid_key.pem'));
    const again = run([]);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /SVID loaded/);
    const noToken = spawnSync(process.execPath, [KEYMESH_MAIN, 'identity', 'run', '--endpoint', server.identityUrl, '--control-plane-ca', cpCa, '--out', join(dir, 'empty'), '--once'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(noToken.status, 1);
    assert.match(noToken.stderr, /no join token/);
  });
});

describe('keymesh ca and token commands', () => {
  test('issued certificates are listed with expiry; join tokens are listed without secrets', () => {
    const issued = keymeshOk(['ca', 'issued', '--mesh', MESH]);
    assert.match(issued.split('\n')[0]!, /SERIAL\s+IDENTITY\s+CA\s+NOT AFTER\s+REVOKED/);
    assert.match(issued, /spiffe:\/\/colorapp\/colorteller .* \d{4}-\d\d-\d\dT.*revoked/);
    const tokens = keymeshOk(['token', 'list', '--mesh', MESH]);
    assert.match(tokens, /spiffe:\/\/colorapp\/colorteller/);
    assert.doesNotMatch(tokens, /kmjt1\./);
  });

  test('CA keys are files of mode 600, encrypted with KEYMESH_CA_PASSPHRASE, and never in an answer', () => {
    const shown = keymeshOk(['ca', 'show', keymeshOk(['ca', 'list', '--mesh', MESH]).split('\n')[1]!.split(/\s+/)[0]!]);
    assert.doesNotMatch(shown, /PRIVATE KEY/);
    const caDir = join(server.dataDir, 'ca');
    const keyFiles = spawnSync('ls', [caDir], { encoding: 'utf8' }).stdout.trim().split('\n').filter((f) => f.endsWith('.pem'));
    assert.ok(keyFiles.length >= 1);
    for (const f of keyFiles) {
      assert.equal(statSync(join(caDir, f)).mode & 0o777, 0o600, f);
      assert.match(readFileSync(join(caDir, f), 'utf8'), /BEGIN ENCRYPTED PRIVATE KEY/);
    }
    assert.doesNotMatch(server.stdout() + server.stderr(), /correct horse|PRIVATE KEY|kmjt1\./, 'no passphrase, key or token in the server log');
  });

  test('rotation through the CLI: prepare puts the new CA in the bundle, activate switches issuance', () => {
    const before = keymeshOk(['ca', 'bundle', '--mesh', MESH]);
    assert.equal(before.match(/BEGIN CERTIFICATE/g)?.length, 1);
    const prepared = JSON.parse(keymeshOk(['ca', 'rotate', 'prepare', '--mesh', MESH])) as { id: string; status: string; arn: string };
    assert.equal(prepared.status, 'prepared');
    assert.match(prepared.arn, /^arn:aws:acm-pca:us-east-1:000000000000:certificate-authority\//);
    assert.equal(keymeshOk(['ca', 'bundle', '--mesh', MESH]).match(/BEGIN CERTIFICATE/g)?.length, 2);
    const activated = JSON.parse(keymeshOk(['ca', 'rotate', 'activate', '--ca', prepared.arn])) as { activated: { status: string }; retiring: { status: string } };
    assert.equal(activated.activated.status, 'active');
    assert.equal(activated.retiring.status, 'retiring');
    const list = keymeshOk(['ca', 'list', '--mesh', MESH]);
    assert.match(list, new RegExp(`${prepared.id}\\s.*active`));
    assert.match(list, /retiring/);
    // New SVIDs come from the new CA and verify against the bundle, which still holds the old one.
    const { csr } = keyAndCsr('rotated', SPIFFE_ID);
    const svid = saveSvid('rotated', curl('/identity/v1/bootstrap', { joinToken: newToken(), csr }));
    const bundle = join(dir, 'rotated-bundle-now.pem');
    writeFileSync(bundle, keymeshOk(['ca', 'bundle', '--mesh', MESH]));
    assert.match(opensslOk(['verify', '-CAfile', bundle, svid.cert]), /OK/);
    const issuer = opensslOk(['x509', '-in', svid.cert, '-noout', '-issuer']);
    const newCaSubject = JSON.parse(keymeshOk(['ca', 'show', prepared.id])) as { certPem: string };
    writeFileSync(join(dir, 'new-ca.pem'), newCaSubject.certPem);
    assert.equal(issuer.replace('issuer=', ''), opensslOk(['x509', '-in', join(dir, 'new-ca.pem'), '-noout', '-subject']).replace('subject=', ''));
  });

  test('seed 002 the keymesh way: a managed certificate and the CA ARN go into App Mesh specs', async () => {
    const cert = JSON.parse(keymeshOk(['ca', 'request-certificate', '--mesh', MESH, '--domain-name', '*.colorapp.local'])) as { arn: string; caArn: string; certChainPem: string; notAfter: number };
    assert.match(cert.arn, /^arn:aws:acm:us-east-1:000000000000:certificate\//);
    assert.match(cert.caArn, /^arn:aws:acm-pca:us-east-1:000000000000:certificate-authority\//);
    assert.doesNotMatch(JSON.stringify(cert), /PRIVATE KEY/);
    const chain = join(dir, 'managed.pem');
    writeFileSync(chain, cert.certChainPem);
    assert.match(opensslOk(['x509', '-in', chain, '-noout', '-ext', 'subjectAltName']), /DNS:\*\.colorapp\.local/);
    const node = await appmeshCli(server.url, ['create-virtual-node', '--mesh-name', MESH, '--virtual-node-name', 'colorteller-white', '--spec', JSON.stringify({
      listeners: [{ portMapping: { port: 9080, protocol: 'http' }, tls: { mode: 'STRICT', certificate: { acm: { certificateArn: cert.arn } } } }],
      serviceDiscovery: { dns: { hostname: 'colorteller-white.colorapp.local' } },
    })]);
    assert.equal(node.code, 0, node.stderr);
    const gw = await appmeshCli(server.url, ['create-virtual-gateway', '--mesh-name', MESH, '--virtual-gateway-name', 'gateway', '--spec', JSON.stringify({
      listeners: [{ portMapping: { port: 9080, protocol: 'http' } }],
      backendDefaults: { clientPolicy: { tls: { validation: { trust: { acm: { certificateAuthorityArns: [cert.caArn] } } } } } },
    })]);
    assert.equal(gw.code, 0, gw.stderr);
    assert.match(keymeshOk(['ca', 'certificates', '--mesh', MESH]), new RegExp(cert.arn.replace(/[/.*]/g, '\\$&')));
  });

  test('admin endpoints need a signature; bad requests name the problem', () => {
    const r = spawnSync('curl', ['-sS', '-w', '\n%{http_code}', `${server.url}/keymesh/v1/cas`], { encoding: 'utf8' });
    assert.match(r.stdout, /403$/);
    assert.match(r.stdout, /Missing Authentication Token/);
    const unknownNode = keymesh(['token', 'create', '--mesh', MESH, '--virtual-node', 'nope']);
    assert.equal(unknownNode.code, 1);
    assert.match(unknownNode.stderr, /nope/);
    const both = keymesh(['token', 'create', '--mesh', MESH]);
    assert.equal(both.code, 1);
    assert.match(both.stderr, /exactly one of --virtual-node or --virtual-gateway/);
    const badTtl = keymesh(['token', 'create', '--mesh', MESH, '--virtual-node', NODE, '--ttl', 'soon']);
    assert.match(badTtl.stderr, /--ttl soon: expected a duration/);
  });
});
