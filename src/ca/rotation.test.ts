// CA rotation without a failed handshake, on a ManualClock and the SQLite CA store: the next CA joins the
// bundle first, signing switches only once the proxies hold that bundle (or when forced), and the old CA
// stays trusted until the last certificate it signed has expired; then it leaves the bundle and its key is
// deleted. A restarted control plane carries on with the new CA.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, test } from 'node:test';
import { BadRequestError, ConflictError, ForbiddenError } from '../errors/index.ts';
import type { CaEvent } from './events.ts';
import { KeyStore } from './key-store.ts';
import type { BundleDistribution } from './rotation.ts';
import {
  assertRefused, assertVerifies, certText, csrFor, dnsNode, harness, HOUR, MINUTE, opensslVerify, snapshot, splitPem,
} from './test-fixtures.ts';

const web = { mesh: 'shop', kind: 'virtualNode', name: 'web' } as const;

/** A distribution whose answer the test decides, recording which CAs it was asked about. */
function controlledDistribution(): BundleDistribution & { hold: boolean; asked: string[] } {
  const d = {
    hold: false,
    asked: [] as string[],
    async lacking(caId: string) {
      d.asked.push(caId);
      return d.hold ? [] : ['mesh/shop/virtualNode/web'];
    },
  };
  return d;
}

test('prepare → activate (when the proxies hold the bundle) → retire once the old CA\'s certificates expired', async () => {
  const distribution = controlledDistribution();
  const h = await harness({ sqlite: true, distribution });
  after(() => h.close());
  await h.addNode('shop', 'web', dnsNode('web.shop.local'));
  const old = await h.ca.ensureCa('shop');
  const oldSvid = await h.ca.issue(web, (await csrFor()).csrPem);
  const managed = await h.ca.requestCertificate({ mesh: 'shop', caArn: old.arn, domainName: 'shop.example.com', validityMs: 2 * HOUR });
  const events: readonly CaEvent[] = h.events; // read through this name: assert.deepEqual(h.events, ...) narrows h.events' type
  h.events.length = 0;
  h.clock.advance(MINUTE);

  // Prepared: the next CA is trusted, but the old one still signs.
  const next = await h.ca.prepareRotation('shop');
  assert.equal(next.status, 'prepared');
  assert.notEqual(next.id, old.id);
  assert.deepEqual(h.events, [{ type: 'bundle', mesh: 'shop', trustDomain: 'shop' }]);
  const bundle = await h.ca.trustBundle('shop');
  assert.deepEqual(bundle.caIds, [old.id, next.id]);
  assert.equal(bundle.pem, old.certPem + next.certPem);
  assert.equal(splitPem(bundle.pem).length, 2);
  assert.equal((await h.ca.issue(web, (await csrFor()).csrPem)).caId, old.id);
  assert.match(certText(next.certPem), /CA:TRUE, pathlen:0/);
  assert.deepEqual(h.keyFiles().filter((f) => f.startsWith('ca-')), [`ca-${next.id}.key.pem`, `ca-${old.id}.key.pem`].sort());

  await assertRefused(h.ca.prepareRotation('shop'), ConflictError, new RegExp(`already has a next CA \\(${next.id}, prepared\\)`));
  await assertRefused(h.ca.activate('shop', old.id), ConflictError, new RegExp(`CA ${old.id} is active; only a prepared CA can be activated`), 'KM_ERR_CA_NOT_PREPARED');
  await assertRefused(h.ca.activate('elsewhere', next.id), BadRequestError, new RegExp(`CA ${next.id} belongs to trust domain shop, not elsewhere`));

  // Not every proxy has the new bundle: activation would break their handshakes.
  h.events.length = 0;
  const before = await snapshot(h, ['shop']);
  await assertRefused(h.ca.activate('shop', next.id), ConflictError, [/Not every connected proxy of trust domain shop has received the bundle/, new RegExp(next.id), /waiting for mesh\/shop\/virtualNode\/web\)/, /or force/], 'KM_ERR_BUNDLE_NOT_DISTRIBUTED');
  assert.deepEqual(distribution.asked, [next.id]);
  assert.deepEqual(await snapshot(h, ['shop']), before);
  assert.equal((await h.ca.describeCa(next.id)).status, 'prepared');
  assert.deepEqual(h.events, []);

  // Now they do.
  distribution.hold = true;
  h.clock.advance(10 * MINUTE);
  const { activated, retiring } = await h.ca.activate('shop', next.arn);
  assert.equal(activated.id, next.id);
  assert.equal(activated.status, 'active');
  assert.equal(activated.activatedAt, h.clock.now());
  assert.equal(retiring?.id, old.id);
  assert.equal(retiring?.status, 'retiring');
  assert.equal(retiring?.lastIssuedNotAfter, managed.notAfter, 'the old CA waits for the last certificate it signed');
  assert.deepEqual(h.events, [{ type: 'issuer', mesh: 'shop', trustDomain: 'shop', caId: next.id }]);

  // New SVIDs come from the new CA and verify against the bundle; the old SVID still verifies too.
  const newSvid = await h.ca.issue(web, (await csrFor()).csrPem);
  assert.equal(newSvid.caId, next.id);
  assert.equal(newSvid.bundlePem, old.certPem + next.certPem);
  const now = h.clock.now();
  await assertVerifies({ bundlePem: newSvid.bundlePem, chainPem: newSvid.certChainPem, at: now });
  await assertVerifies({ bundlePem: newSvid.bundlePem, chainPem: oldSvid.certChainPem, at: now });
  assert.notEqual((await opensslVerify({ bundlePem: old.certPem, chainPem: newSvid.certChainPem, at: now })).status, 0, 'the new SVID is not signed by the old CA');
  // A proxy still holding an old-CA SVID renews into the new CA.
  const peer = await h.ca.identityFromPeerCertificate(oldSvid.certChainPem);
  assert.equal((await h.ca.renew(peer, (await csrFor()).csrPem)).caId, next.id);
  // Managed certificates move to the new CA at the next upkeep, so the old one can retire.
  const upkeep = await h.ca.maintain();
  assert.deepEqual(upkeep.renewed, [managed.arn]);
  assert.deepEqual(upkeep.retired, []);
  assert.equal((await h.ca.resolveCertificateArn(managed.arn)).caArn, next.arn);

  // The old CA stays in the bundle until its last SVID has expired.
  const lastOld = (await h.ca.describeCa(old.id)).lastIssuedNotAfter;
  assert.equal(lastOld, Math.max(oldSvid.notAfter, managed.notAfter));
  // (the managed certificate was re-issued by the new CA, but the first one stays valid, and trusted, until it expires)
  h.clock.advance(lastOld - h.clock.now() - 1000);
  assert.deepEqual((await h.ca.maintain()).retired, []);
  assert.deepEqual((await h.ca.trustBundle('shop')).caIds, [old.id, next.id]);

  h.clock.advance(1000);
  h.events.length = 0;
  const report = await h.ca.maintain();
  assert.deepEqual(report.retired, [old.id]);
  const retired = await h.ca.describeCa(old.id);
  assert.equal(retired.status, 'retired');
  assert.equal(retired.retiredAt, h.clock.now());
  assert.deepEqual((await h.ca.trustBundle('shop')).caIds, [next.id]);
  assert.equal((await h.ca.trustBundle('shop')).pem, next.certPem);
  assert.ok(!existsSync(h.keyPath(`ca-${old.id}.key.pem`)), 'a retired CA signs nothing again: its key file is gone');
  assert.ok(existsSync(h.keyPath(`ca-${next.id}.key.pem`)));
  assert.ok(events.some((e) => e.type === 'bundle' && e.trustDomain === 'shop'));
  await assertRefused(h.ca.crl(old.id), ConflictError, /only CAs in the trust bundle publish a CRL/);
  assert.deepEqual(await h.ca.retireExpired(), []);
});

test('activate with force skips the distribution check; a restart keeps signing with the new CA', async () => {
  const distribution = controlledDistribution();
  const h = await harness({ sqlite: true, distribution });
  await h.addNode('shop', 'web', dnsNode('web.shop.local'));
  const old = await h.ca.ensureCa('shop');
  await h.ca.configure('shop', { keyType: 'ec-p384' }); // the next CA gets the new key type
  const next = await h.ca.prepareRotation('shop');
  assert.equal(next.keyType, 'ec-p384');
  assert.match(certText(next.certPem), /ASN1 OID: secp384r1/);
  const { retiring } = await h.ca.activate('shop', next.id, { force: true });
  assert.equal(retiring?.id, old.id);
  assert.deepEqual(distribution.asked, [], 'forced: not asked');
  // The old CA never signed anything, so nothing needs it in the bundle: it retires at the next upkeep.
  assert.deepEqual((await h.ca.retireExpired()).map((c) => c.id), [old.id]);
  assert.deepEqual(h.keyFiles(), [`ca-${next.id}.key.pem`]);
  await h.close(false);

  // The control plane restarts: same database, same key directory.
  const again = await harness({ sqlite: true, dataDir: h.dataDir, resources: h.resources, clock: h.clock });
  after(() => again.close());
  assert.equal((await again.ca.ensureCa('shop')).id, next.id);
  const svid = await again.ca.issue(web, (await csrFor()).csrPem);
  assert.equal(svid.caId, next.id);
  await assertVerifies({ bundlePem: svid.bundlePem, chainPem: svid.certChainPem, at: again.clock.now() });
});

test('abandoning a prepared CA removes it from the bundle and deletes its key', async () => {
  const h = await harness({ sqlite: true });
  after(() => h.close());
  const old = await h.ca.ensureCa('shop');
  const next = await h.ca.prepareRotation('shop');
  h.events.length = 0;
  const abandoned = await h.ca.abandonCa(next.id);
  assert.equal(abandoned.status, 'retired');
  assert.deepEqual((await h.ca.trustBundle('shop')).caIds, [old.id]);
  assert.deepEqual(h.keyFiles(), [`ca-${old.id}.key.pem`]);
  assert.deepEqual(h.events, [{ type: 'bundle', mesh: 'shop', trustDomain: 'shop' }]);
  await assertRefused(h.ca.abandonCa(old.id), ConflictError, /only a CA that is pending or prepared can become retired/);
  // Another rotation can be prepared.
  assert.equal((await h.ca.prepareRotation('shop')).status, 'prepared');
});

test('rotation of an unknown trust domain is refused by name', async () => {
  const h = await harness();
  after(() => h.close());
  await assertRefused(h.ca.prepareRotation('nowhere'), BadRequestError, /No mesh has trust domain nowhere/, 'KM_ERR_TRUST_DOMAIN_UNKNOWN');
  assert.deepEqual(await h.ca.listCas(), []);
});

test('key files of every CA are readable by a restarted key store, and a revoked identity stays revoked across restarts', async () => {
  const h = await harness({ sqlite: true });
  await h.addNode('shop', 'web', dnsNode('web.shop.local'));
  const ca = await h.ca.ensureCa('shop');
  await h.ca.revokeIdentity(web, 'lost laptop');
  await h.close(false);
  const keys = new KeyStore({ dir: h.keyPath('') });
  assert.equal((await keys.load(`ca-${ca.id}.key.pem`)).type, 'ec-p256');
  const again = await harness({ sqlite: true, dataDir: h.dataDir, resources: h.resources, clock: h.clock });
  after(() => again.close());
  await assertRefused(again.ca.createJoinToken(web), ForbiddenError, /lost laptop/, 'KM_ERR_IDENTITY_REVOKED');
});
