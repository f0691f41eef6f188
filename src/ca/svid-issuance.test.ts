// SVIDs as proxies receive them, checked with openssl: they verify against the trust bundle as TLS server
// and client certificates, carry the identity's SPIFFE ID and service discovery names, and live exactly the
// mesh's SVID TTL; the CA that signs them is a proper CA, of the mesh's key type. And what issuance refuses.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { BadRequestError, ConflictError, CsrError, NotFoundError } from '../errors/index.ts';
import { KEY_TYPES, type KeyType } from '../pki/api.ts';
import { NOT_BEFORE_SKEW_MS } from './leaf-signer.ts';
import {
  assertRefused, assertVerifies, certDates, certText, csrFor, dnsNode, harness, HOUR, MINUTE, sanNames, snapshot, splitPem, type Harness,
} from './test-fixtures.ts';

const PUBLIC_KEY: Record<KeyType, RegExp> = {
  'ec-p256': /ASN1 OID: prime256v1/,
  'ec-p384': /ASN1 OID: secp384r1/,
  'rsa-2048': /Public-Key: \(2048 bit\)/,
  'rsa-3072': /Public-Key: \(3072 bit\)/,
};
const SIGNATURE: Record<KeyType, string> = {
  'ec-p256': 'ecdsa-with-SHA256', 'ec-p384': 'ecdsa-with-SHA384', 'rsa-2048': 'sha256WithRSAEncryption', 'rsa-3072': 'sha256WithRSAEncryption',
};

function assertLeafExtensions(text: string, rsaLeaf = false): void {
  assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
  assert.match(text, rsaLeaf ? /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment\n/ : /X509v3 Key Usage: critical\s+Digital Signature\n/);
  assert.match(text, /X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication\n/);
}

/** The CSR with one byte of its signature changed: well formed, but not signed by its key. */
function tamperedCsr(pem: string): string {
  const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  der[der.length - 3]! ^= 0x55;
  return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
}

describe('every CA key type: the CA certificate and the SVIDs it signs', () => {
  const harnesses: Harness[] = [];
  after(async () => Promise.all(harnesses.map((h) => h.close())));

  for (const keyType of KEY_TYPES) {
    test(keyType, async () => {
      const h = await harness();
      harnesses.push(h);
      const mesh = `shop-${keyType}`;
      if (keyType !== 'ec-p256') await h.ca.configure(mesh, { keyType }); // ec-p256 is the default
      assert.equal((await h.ca.settings(mesh)).keyType, keyType);
      await h.addNode(mesh, 'web', dnsNode(`web.${mesh}.local`));
      await h.addGateway(mesh, 'ingress');

      const caView = await h.ca.ensureCa(mesh);
      assert.equal(caView.keyType, keyType);
      assert.equal(caView.status, 'active');
      const caText = certText(caView.certPem);
      assert.match(caText, /X509v3 Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
      assert.match(caText, /X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign\n/);
      assert.match(caText, PUBLIC_KEY[keyType]);
      assert.deepEqual(sanNames(caText), [`URI:spiffe://${mesh}`]);

      const leafKeyType: KeyType = keyType === 'rsa-2048' ? 'rsa-2048' : 'ec-p256';
      const now = h.clock.now();
      const { csrPem } = await csrFor({ uris: [`spiffe://${mesh}/web`], dnsNames: [`web.${mesh}.local`] }, leafKeyType);
      const svid = await h.ca.issue({ mesh, kind: 'virtualNode', name: 'web' }, csrPem);
      assert.equal(svid.spiffeId, `spiffe://${mesh}/web`);
      assert.equal(svid.caId, caView.id);
      assert.equal(svid.bundlePem, caView.certPem);
      assert.equal(splitPem(svid.certChainPem).length, 1, 'a leaf of a root CA travels alone');
      await assertVerifies({ bundlePem: svid.bundlePem, chainPem: svid.certChainPem, at: now });

      const text = certText(svid.certChainPem);
      assertLeafExtensions(text, leafKeyType.startsWith('rsa'));
      assert.deepEqual(sanNames(text), [`DNS:web.${mesh}.local`, `URI:spiffe://${mesh}/web`]);
      assert.match(text, new RegExp(`Signature Algorithm: ${SIGNATURE[keyType]}`));
      const dates = certDates(svid.certChainPem);
      assert.equal(dates.notAfter - now, HOUR, 'the default SVID TTL is one hour from issuance');
      assert.equal(now - dates.notBefore, NOT_BEFORE_SKEW_MS, 'notBefore is backdated a little for clock skew');
      assert.deepEqual({ notBefore: svid.notBefore, notAfter: svid.notAfter }, dates);

      const gw = await h.ca.issue({ mesh, kind: 'virtualGateway', name: 'ingress' }, (await csrFor({ uris: [`spiffe://${mesh}/virtualGateway/ingress`] })).csrPem);
      assert.equal(gw.spiffeId, `spiffe://${mesh}/virtualGateway/ingress`);
      await assertVerifies({ bundlePem: gw.bundlePem, chainPem: gw.certChainPem, at: now });
      const gwText = certText(gw.certChainPem);
      assertLeafExtensions(gwText);
      assert.deepEqual(sanNames(gwText), [`URI:spiffe://${mesh}/virtualGateway/ingress`]);

      // Each issuance is recorded, and raises the CA's lastIssuedNotAfter (what rotation waits for).
      const issued = await h.ca.listIssued({ caId: caView.id });
      assert.deepEqual(issued.map((c) => c.serial).sort(), [svid.serial, gw.serial].sort());
      assert.equal((await h.ca.describeCa(caView.id)).lastIssuedNotAfter, svid.notAfter);
    });
  }
});

describe('what an SVID holds', () => {
  test('the SVID TTL is configurable per mesh, also after the mesh has its CA', async () => {
    const h = await harness();
    after(() => h.close());
    await h.addNode('shop', 'web', dnsNode('web.shop.local'));
    await h.addNode('other', 'web', dnsNode('web.other.local'));
    await h.ca.ensureCa('shop');
    const settings = await h.ca.configure('shop', { svidTtlMs: 5 * MINUTE });
    assert.equal(settings.svidTtlMs, 5 * MINUTE);
    const now = h.clock.now();
    const svid = await h.ca.issue({ mesh: 'shop', kind: 'virtualNode', name: 'web' }, (await csrFor()).csrPem);
    assert.equal(certDates(svid.certChainPem).notAfter - now, 5 * MINUTE);
    const other = await h.ca.issue({ mesh: 'other', kind: 'virtualNode', name: 'web' }, (await csrFor()).csrPem);
    assert.equal(certDates(other.certChainPem).notAfter - now, HOUR, 'another mesh keeps the default');

    await assertRefused(h.ca.configure('shop', { svidTtlMs: 1000 }), BadRequestError, /SVID TTL must be .* got 1000/);
    await assertRefused(h.ca.configure('shop', { keyType: 'dsa-1024' }), BadRequestError, /Unknown key type "dsa-1024"/);
    assert.equal((await h.ca.settings('shop')).svidTtlMs, 5 * MINUTE);
  });

  test('DNS SANs come from service discovery: DNS hostname, Cloud Map service.namespace, none for an IP or no discovery', async () => {
    const h = await harness();
    after(() => h.close());
    await h.addNode('shop', 'dns', dnsNode('Web.Shop.Local'));
    await h.addNode('shop', 'cloudmap', { serviceDiscovery: { awsCloudMap: { namespaceName: 'shop.local', serviceName: 'cart' } } });
    await h.addNode('shop', 'ip', dnsNode('10.0.0.7'));
    await h.addNode('shop', 'bare', {});
    const now = h.clock.now();
    const expected: Record<string, string[]> = {
      dns: ['DNS:web.shop.local', 'URI:spiffe://shop/dns'],
      cloudmap: ['DNS:cart.shop.local', 'URI:spiffe://shop/cloudmap'],
      ip: ['URI:spiffe://shop/ip'],
      bare: ['URI:spiffe://shop/bare'],
    };
    for (const [name, sans] of Object.entries(expected)) {
      // A CSR without names gets them all the same: the SVID says who the workload is, not what it asked for.
      const svid = await h.ca.issue({ mesh: 'shop', kind: 'virtualNode', name }, (await csrFor()).csrPem);
      assert.deepEqual(sanNames(certText(svid.certChainPem)), sans, name);
      await assertVerifies({ bundlePem: svid.bundlePem, chainPem: svid.certChainPem, at: now });
    }
  });

  test('the first issuance of a mesh creates its CA once, even when requests race', async () => {
    const h = await harness();
    after(() => h.close());
    await h.addNode('shop', 'web', dnsNode('web.shop.local'));
    const svids = await Promise.all(Array.from({ length: 5 }, async () => h.ca.issue({ mesh: 'shop', kind: 'virtualNode', name: 'web' }, (await csrFor()).csrPem)));
    assert.equal(new Set(svids.map((s) => s.caId)).size, 1);
    assert.equal((await h.ca.listCas({ mesh: 'shop' })).length, 1);
    assert.equal(new Set(svids.map((s) => s.serial)).size, 5);
    assert.deepEqual(h.events.filter((e) => e.type === 'issuer').length, 1);
  });
});

describe('refusals: nothing is signed and nothing stored changes', () => {
  test('a CSR for another identity, a DNS name the node does not serve, a missing node, a garbage CSR', async () => {
    const h = await harness();
    after(() => h.close());
    await h.addNode('shop', 'web', dnsNode('web.shop.local'));
    await h.addNode('shop', 'db', dnsNode('db.shop.local'));
    await h.addGateway('shop', 'ingress');
    await h.ca.ensureCa('shop');
    const web = { mesh: 'shop', kind: 'virtualNode', name: 'web' } as const;
    const before = await snapshot(h, ['shop']);

    await assertRefused(h.ca.issue(web, (await csrFor({ uris: ['spiffe://shop/db'] })).csrPem), CsrError,
      [/asks for spiffe:\/\/shop\/db/, /caller is spiffe:\/\/shop\/web/], 'KM_ERR_CSR_IDENTITY');
    await assertRefused(h.ca.issue(web, (await csrFor({ uris: ['spiffe://shop/web', 'spiffe://shop/db'] })).csrPem), CsrError, /spiffe:\/\/shop\/db/, 'KM_ERR_CSR_IDENTITY');
    await assertRefused(h.ca.issue(web, (await csrFor({ uris: ['spiffe://shop/virtualGateway/ingress'] })).csrPem), CsrError, /virtualGateway\/ingress/, 'KM_ERR_CSR_IDENTITY');
    await assertRefused(h.ca.issue(web, (await csrFor({ uris: ['spiffe://other/web'] })).csrPem), CsrError, /spiffe:\/\/other\/web/, 'KM_ERR_CSR_IDENTITY');
    await assertRefused(h.ca.issue(web, (await csrFor({ dnsNames: ['db.shop.local'] })).csrPem), CsrError,
      [/DNS name db\.shop\.local/, /may have web\.shop\.local/], 'KM_ERR_CSR_DNS');
    await assertRefused(h.ca.issue({ mesh: 'shop', kind: 'virtualGateway', name: 'ingress' }, (await csrFor({ dnsNames: ['ingress.shop.local'] })).csrPem),
      CsrError, /has no service discovery DNS name/, 'KM_ERR_CSR_DNS');
    await assertRefused(h.ca.issue({ mesh: 'shop', kind: 'virtualNode', name: 'ghost' }, (await csrFor()).csrPem), NotFoundError, /VirtualNode ghost in mesh shop does not exist/);
    await assertRefused(h.ca.issue({ mesh: 'shop', kind: 'virtualGateway', name: 'web' }, (await csrFor()).csrPem), NotFoundError, /VirtualGateway web in mesh shop does not exist/);
    await assertRefused(h.ca.issue({ mesh: 'nomesh', kind: 'virtualNode', name: 'web' }, (await csrFor()).csrPem), NotFoundError, /mesh nomesh does not exist/);
    await assertRefused(h.ca.issue(web, 'not a CSR at all'), CsrError, /certificate signing request/);
    const real = (await csrFor()).csrPem;
    await assertRefused(h.ca.issue(web, tamperedCsr(real)), CsrError, /certificate signing request: the signature does not verify/);
    await assertRefused(h.ca.issue(web, (await h.ca.describeCa((await h.ca.listCas())[0]!.id)).certPem), CsrError, /expected a CERTIFICATE REQUEST but found a CERTIFICATE/);
    await assertRefused(h.ca.issue({ mesh: 'shop', kind: 'virtualNode', name: 'bad/name' }, real), BadRequestError, /cannot be part of a SPIFFE ID/, 'KM_ERR_SPIFFE_NAME');

    assert.deepEqual(await snapshot(h, ['shop']), before);
  });

  test('a refused request for a mesh without a CA does not create one', async () => {
    const h = await harness();
    after(() => h.close());
    await h.addNode('shop', 'web', dnsNode('web.shop.local'));
    const before = await snapshot(h, ['shop']);
    await assertRefused(h.ca.issue({ mesh: 'shop', kind: 'virtualNode', name: 'web' }, 'garbage'), CsrError, /certificate signing request/);
    await assertRefused(h.ca.issue({ mesh: 'shop', kind: 'virtualNode', name: 'web' }, (await csrFor({ uris: ['spiffe://shop/db'] })).csrPem), CsrError, /spiffe:\/\/shop\/db/);
    assert.deepEqual(await snapshot(h, ['shop']), before);
    assert.deepEqual(await h.ca.listCas(), []);
  });

  test('a mesh whose CA waits for its offline signature cannot issue, and says so', async () => {
    const h = await harness();
    after(() => h.close());
    await h.addNode('shop', 'web', dnsNode('web.shop.local'));
    const { ca } = await h.ca.prepareCsr('shop');
    const before = await snapshot(h, ['shop']);
    await assertRefused(h.ca.issue({ mesh: 'shop', kind: 'virtualNode', name: 'web' }, (await csrFor()).csrPem), ConflictError,
      [new RegExp(`CA ${ca.id} is waiting for its certificate`)], 'KM_ERR_CA_PENDING');
    assert.deepEqual(await snapshot(h, ['shop']), before);
  });
});
