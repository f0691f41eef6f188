// /certs in Envoy's shape from real certificates (made with src/pki), and /config_dump's redaction of secrets.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { X509Certificate } from '@peculiar/x509';
import { PemError } from '../../errors/index.ts';
import { createRootCa, issueIntermediateCa, issueLeaf } from '../../pki/issue.ts';
import { exportPrivateKeyPem, generateKeyPair } from '../../pki/keys.ts';
import { toPem } from '../../pki/pem.ts';
import { formatCerts } from './certs.ts';
import { REDACTED, redactSecrets } from './redact.ts';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 2, 1, 12, 0, 0);

let root: X509Certificate;
let root2: X509Certificate;
let inter: X509Certificate;
let leaf: X509Certificate;
let keyPem: string;

before(async () => {
  const rootKeys = await generateKeyPair('ec-p256');
  root = await createRootCa(rootKeys, { commonName: 'keymesh root', notBefore: new Date(NOW - DAY), notAfter: new Date(NOW + 3650 * DAY), pathLength: 1, uri: 'spiffe://mesh.local' });
  root2 = await createRootCa(await generateKeyPair('ec-p256'), { commonName: 'keymesh next root', notBefore: new Date(NOW), notAfter: new Date(NOW + 7300 * DAY), pathLength: 1 });
  const interKeys = await generateKeyPair('ec-p256');
  inter = await issueIntermediateCa(interKeys.publicKey, root, rootKeys, { commonName: 'keymesh intermediate', notBefore: new Date(NOW - DAY), notAfter: new Date(NOW + 365 * DAY), pathLength: 0 });
  const leafKeys = await generateKeyPair('ec-p256');
  leaf = await issueLeaf({
    publicKey: leafKeys.publicKey, issuerCert: inter, issuerKeys: interKeys,
    uris: ['spiffe://mesh.local/ns/default/sa/colorteller'], dnsNames: ['colorteller.appmesh-mtls.local'],
    notBefore: new Date(Date.UTC(2026, 2, 1, 11, 0, 0)), notAfter: new Date(Date.UTC(2026, 2, 3, 11, 0, 0)), serial: '000a1b2c3d4e',
  });
  keyPem = await exportPrivateKeyPem(leafKeys);
});

describe('/certs', () => {
  test('Envoy\'s shape: leaf of each chain, every CA of the bundle, uint64 days as a string', () => {
    const json = formatCerts([
      { caCert: [{ pem: toPem([root, root2]), path: '/keys/ca_cert.pem' }], certChain: [{ pem: toPem([leaf, inter]) }] },
      { caCert: [{ pem: toPem(root) }] },
    ], NOW);
    assert.equal(json.certificates.length, 2);
    const [first, second] = json.certificates;
    assert.deepEqual(first!.cert_chain, [{
      path: '<inline>',
      serial_number: 'a1b2c3d4e',
      subject_alt_names: [{ uri: 'spiffe://mesh.local/ns/default/sa/colorteller' }, { dns: 'colorteller.appmesh-mtls.local' }],
      days_until_expiration: '1',
      valid_from: '2026-03-01T11:00:00Z',
      expiration_time: '2026-03-03T11:00:00Z',
    }]);
    assert.deepEqual(first!.ca_cert.map((c) => [c.path, c.days_until_expiration, c.subject_alt_names]), [
      ['/keys/ca_cert.pem', '3650', [{ uri: 'spiffe://mesh.local' }]],
      ['/keys/ca_cert.pem', '7300', []],
    ]);
    for (const c of first!.ca_cert) assert.match(c.serial_number, /^(0|[1-9a-f][0-9a-f]*)$/);
    assert.deepEqual(second!.cert_chain, []);
    assert.equal(second!.ca_cert.length, 1);
    assert.deepEqual(Object.keys(first!.cert_chain[0]!), ['path', 'serial_number', 'subject_alt_names', 'days_until_expiration', 'valid_from', 'expiration_time']);
  });

  test('an expired certificate has 0 days left', () => {
    const json = formatCerts([{ certChain: [{ pem: toPem(leaf) }] }], NOW + 30 * DAY);
    assert.equal(json.certificates[0]!.cert_chain[0]!.days_until_expiration, '0');
  });

  test('a key file given as a certificate is an error naming it', () => {
    assert.throws(() => formatCerts([{ certChain: [{ pem: keyPem, path: '/keys/oops.pem' }] }], NOW), (e: unknown) => e instanceof PemError && /\/keys\/oops\.pem/.test(e.message));
  });
});

describe('/config_dump redaction', () => {
  test('private keys are redacted at any depth, in both field spellings, inline or as files, without touching the input', () => {
    const b64Key = Buffer.from(keyPem).toString('base64');
    const dump = {
      configs: [
        {
          '@type': 'type.googleapis.com/envoy.admin.v3.SecretsConfigDump',
          dynamic_active_secrets: [{
            name: 'spiffe://mesh.local/ns/default/sa/colorteller',
            secret: {
              name: 'spiffe://mesh.local/ns/default/sa/colorteller',
              tls_certificate: { certificate_chain: { inline_string: toPem(leaf) }, private_key: { inline_bytes: b64Key } },
            },
          }, {
            name: 'ROOTCA',
            secret: { validation_context: { trusted_ca: { inline_string: toPem(root) } } },
          }],
        },
        {
          '@type': 'type.googleapis.com/envoy.admin.v3.ListenersConfigDump',
          listeners: [{ filterChains: [{ transportSocket: { typedConfig: { commonTlsContext: { tlsCertificates: [{ certificateChain: { filename: '/keys/c.pem' }, privateKey: { filename: '/keys/k.pem' }, password: { inlineString: 'hunter2' } }] } } } }] }],
        },
        { stray: `a key pasted where it does not belong: ${keyPem}`, alsoStray: b64Key, bytes: new TextEncoder().encode(keyPem), sessionTicketKeys: { keys: [{ inlineBytes: 'AAAA' }] } },
      ],
    };
    const before = JSON.stringify(dump);
    const out = JSON.stringify(redactSecrets(dump));
    assert.equal(JSON.stringify(dump), before, 'the input is not modified');
    assert.doesNotMatch(out, /PRIVATE KEY|hunter2|\/keys\/k\.pem|AAAA/);
    assert.ok(!out.includes(b64Key.slice(0, 40)));
    const doc = JSON.parse(out);
    assert.deepEqual(doc.configs[0].dynamic_active_secrets[0].secret.tls_certificate.private_key, { inline_bytes: REDACTED });
    assert.equal(doc.configs[0].dynamic_active_secrets[0].secret.tls_certificate.certificate_chain.inline_string, toPem(leaf), 'certificates stay');
    assert.equal(doc.configs[0].dynamic_active_secrets[1].secret.validation_context.trusted_ca.inline_string, toPem(root));
    const tls = doc.configs[1].listeners[0].filterChains[0].transportSocket.typedConfig.commonTlsContext.tlsCertificates[0];
    assert.deepEqual(tls, { certificateChain: { filename: '/keys/c.pem' }, privateKey: { filename: REDACTED }, password: { inlineString: REDACTED } });
    assert.equal(doc.configs[2].stray, REDACTED);
    assert.equal(doc.configs[2].alsoStray, REDACTED);
    assert.equal(doc.configs[2].bytes, REDACTED);
    assert.deepEqual(doc.configs[2].sessionTicketKeys, { keys: [{ inlineBytes: REDACTED }] });
  });

  test('whatever the proxy hands over becomes JSON: maps, sets, bytes, cycles', () => {
    const cyclic: Record<string, unknown> = { name: 'c' };
    cyclic.self = cyclic;
    const resources = new Map<string, unknown>([['cluster-a', { name: 'cluster-a', connectTimeout: '1s', raw: new Uint8Array([1, 2, 3]), big: 10n, fn: () => 1, when: new Date(0) }]]);
    const out = redactSecrets({ resources, names: new Set(['a', 'b']), cyclic, nan: Number.NaN }) as any;
    assert.deepEqual(out, {
      resources: { 'cluster-a': { name: 'cluster-a', connectTimeout: '1s', raw: 'AQID', big: '10', when: '1970-01-01T00:00:00.000Z' } },
      names: ['a', 'b'],
      cyclic: { name: 'c', self: '[circular]' },
      nan: 'NaN',
    });
  });
});
