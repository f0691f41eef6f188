// The behaviour every CaStore backend must show, as one node:test suite (like contract.ts for ResourceStore).
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ConflictError, NotFoundError } from '../errors/index.ts';
import type { CaRecord, CaStatus, CaStore, IssuedCertificate, JoinTokenRecord, ManagedCertificateRecord } from './ca-store.ts';

export interface CaStoreFixture {
  store: CaStore;
  /** Opens a new instance on the same data (persistent backends only). The suite closes `store` first. */
  reopen?: () => Promise<CaStore>;
  /** A second instance on the same data, open at the same time (backends shared between processes). */
  second?: () => Promise<CaStore>;
  cleanup: () => Promise<void>;
}

export function sampleCa(id: string, trustDomain = 'td', status: CaStatus = 'active', extra: Partial<CaRecord> = {}): CaRecord {
  return {
    id, arn: `arn:aws:acm-pca:us-east-1:000000000000:certificate-authority/${id}`, mesh: `mesh-${trustDomain}`, trustDomain,
    origin: 'generated', keyType: 'ec-p256', keyFile: `ca-${id}.key.pem`, certPem: `CERT ${id}`, chainPem: '', csrPem: '', status,
    notBefore: 1_000, notAfter: 1_000_000, lastIssuedNotAfter: 0, createdAt: 10, updatedAt: 10,
    activatedAt: status === 'active' ? 10 : null, retiringSince: null, retiredAt: null, ...extra,
  };
}

export function sampleIssued(serial: string, caId: string, extra: Partial<IssuedCertificate> = {}): IssuedCertificate {
  return {
    serial, caId, kind: 'svid', mesh: 'm', spiffeId: 'spiffe://td/front', managedArn: null, notBefore: 100, notAfter: 5_000,
    issuedAt: 100, revokedAt: null, ...extra,
  };
}

function sampleToken(id: string, extra: Partial<JoinTokenRecord> = {}): JoinTokenRecord {
  return {
    id, secretHash: 'ab'.repeat(32), mesh: 'm', kind: 'virtualNode', name: 'front', spiffeId: 'spiffe://td/front', createdAt: 1,
    expiresAt: 600_001, usedAt: null, ...extra,
  };
}

function sampleManaged(id: string, extra: Partial<ManagedCertificateRecord> = {}): ManagedCertificateRecord {
  return {
    arn: `arn:aws:acm:us-east-1:000000000000:certificate/${id}`, id, mesh: 'm', caId: 'ca1', domainName: '*.svc.local',
    subjectAlternativeNames: ['*.svc.local', 'svc.local'], keyType: 'ec-p256', keyFile: `managed-${id}.key.pem`, certPem: 'LEAF', chainPem: '',
    serial: '0a', notBefore: 0, notAfter: 30, validityMs: 30, createdAt: 5, renewedAt: null, rev: 0, ...extra,
  };
}

function isError(type: new (...args: never[]) => Error, ...mentions: string[]) {
  return (e: unknown) => {
    assert.ok(e instanceof type, `expected ${type.name}, got ${String(e)}`);
    for (const m of mentions) assert.ok(e.message.includes(m), `message should mention ${m}: ${e.message}`);
    return true;
  };
}

/** `persistent`: the backend keeps data across instances and shares it between them (the fixture provides reopen and second). */
export function describeCaStoreContract(name: string, makeStore: () => Promise<CaStoreFixture>, options: { persistent?: boolean } = {}): void {
  describe(`CaStore contract: ${name}`, () => {
    let fx: CaStoreFixture;
    let store: CaStore;
    beforeEach(async () => {
      fx = await makeStore();
      store = fx.store;
    });
    afterEach(async () => {
      await fx.cleanup();
    });

    describe('settings', () => {
      test('put, get, replace, and look up by trust domain', async () => {
        const s = { mesh: 'm', trustDomain: 'm.local', svidTtlMs: 3_600_000, keyType: 'ec-p256', updatedAt: 1 };
        assert.equal(await store.getSettings('m'), undefined);
        assert.deepEqual(await store.putSettings(s), s);
        assert.deepEqual(await store.getSettings('m'), s);
        const changed = { ...s, trustDomain: 'other', svidTtlMs: 60_000, updatedAt: 2 };
        await store.putSettings(changed);
        assert.deepEqual(await store.getSettings('m'), changed);
        assert.deepEqual(await store.getSettingsByTrustDomain('other'), changed);
        assert.equal(await store.getSettingsByTrustDomain('m.local'), undefined);
      });

      test('a trust domain belongs to one mesh', async () => {
        await store.putSettings({ mesh: 'a', trustDomain: 'shared', svidTtlMs: 1, keyType: 'ec-p256', updatedAt: 1 });
        await assert.rejects(store.putSettings({ mesh: 'b', trustDomain: 'shared', svidTtlMs: 1, keyType: 'ec-p256', updatedAt: 1 }), isError(ConflictError, 'shared', 'mesh a'));
        assert.equal(await store.getSettings('b'), undefined);
      });
    });

    describe('CAs', () => {
      test('create, get by id and ARN, list by filter in creation order', async () => {
        const a = sampleCa('a', 'td1', 'active', { createdAt: 2 });
        const b = sampleCa('b', 'td1', 'prepared', { createdAt: 1 });
        const c = sampleCa('c', 'td2', 'retired', { createdAt: 3, retiredAt: 3 });
        for (const r of [a, b, c]) assert.deepEqual(await store.createCa(r), r);
        assert.deepEqual(await store.getCa('a'), a);
        assert.deepEqual(await store.getCaByArn(c.arn), c);
        assert.equal(await store.getCa('zz'), undefined);
        assert.deepEqual((await store.listCas()).map((r) => r.id), ['b', 'a', 'c']);
        assert.deepEqual((await store.listCas({ trustDomain: 'td1' })).map((r) => r.id), ['b', 'a']);
        assert.deepEqual((await store.listCas({ mesh: 'mesh-td2' })).map((r) => r.id), ['c']);
        assert.deepEqual((await store.listCas({ statuses: ['active', 'retired'] })).map((r) => r.id), ['a', 'c']);
        assert.deepEqual(await store.listCas({ statuses: [] }), []);
        await assert.rejects(store.createCa(a), isError(ConflictError, 'a'));
      });

      test('one active and one next (pending or prepared) CA per trust domain', async () => {
        await store.createCa(sampleCa('a1', 'td'));
        await assert.rejects(store.createCa(sampleCa('a2', 'td')), isError(ConflictError, 'already has an active CA', 'a1'));
        await store.createCa(sampleCa('a3', 'other')); // another trust domain is independent
        await store.createCa(sampleCa('p1', 'td', 'pending'));
        await assert.rejects(store.createCa(sampleCa('p2', 'td', 'prepared')), isError(ConflictError, 'next CA', 'p1'));
        await store.createCa(sampleCa('r1', 'td', 'retiring'));
        await store.createCa(sampleCa('r2', 'td', 'retiring')); // any number of retiring ones
        assert.equal((await store.listCas({ trustDomain: 'td' })).length, 4);
      });

      test('setCaStatus moves between allowed statuses, stamps the time, and keeps the slots', async () => {
        await store.createCa(sampleCa('old', 'td', 'active'));
        await store.createCa(sampleCa('new', 'td', 'prepared'));
        await assert.rejects(store.setCaStatus('new', ['pending'], 'prepared', 50), isError(ConflictError, 'new', 'prepared', 'pending'));
        await assert.rejects(store.setCaStatus('new', ['prepared'], 'active', 50), isError(ConflictError, 'already has an active CA'));
        await assert.rejects(store.setCaStatus('ghost', ['active'], 'retired', 50), isError(NotFoundError, 'ghost'));
        const retiring = await store.setCaStatus('old', ['active'], 'retiring', 60);
        assert.equal(retiring.status, 'retiring');
        assert.equal(retiring.retiringSince, 60);
        assert.equal(retiring.updatedAt, 60);
        const retired = await store.setCaStatus('old', ['retiring'], 'retired', 70);
        assert.deepEqual([retired.status, retired.retiredAt, retired.retiringSince], ['retired', 70, 60]);
        assert.deepEqual(await store.getCa('old'), retired);
      });

      test('activateCa switches the active CA atomically', async () => {
        await store.createCa(sampleCa('old', 'td', 'active'));
        await store.createCa(sampleCa('new', 'td', 'prepared'));
        await store.createCa(sampleCa('elsewhere', 'td2', 'active'));
        const { activated, retiring } = await store.activateCa('new', 100);
        assert.deepEqual([activated.id, activated.status, activated.activatedAt], ['new', 'active', 100]);
        assert.deepEqual([retiring?.id, retiring?.status, retiring?.retiringSince], ['old', 'retiring', 100]);
        assert.deepEqual(await store.getCa('new'), activated);
        assert.deepEqual(await store.getCa('old'), retiring);
        assert.equal((await store.getCa('elsewhere'))?.status, 'active');
        await assert.rejects(store.activateCa('new', 200), isError(ConflictError, 'new', 'active'));
        // With no active CA, activating just activates.
        await store.createCa(sampleCa('first', 'td3', 'prepared'));
        assert.equal((await store.activateCa('first', 300)).retiring, undefined);
      });

      test('completePendingCa gives a pending CA its certificate', async () => {
        await store.createCa(sampleCa('p', 'td', 'pending', { certPem: '', notBefore: 0, notAfter: 0, csrPem: 'CSR' }));
        const done = await store.completePendingCa('p', { certPem: 'SIGNED', chainPem: 'ROOT', notBefore: 5, notAfter: 9_000, status: 'active' }, 40);
        assert.deepEqual(
          [done.status, done.certPem, done.chainPem, done.notBefore, done.notAfter, done.activatedAt, done.csrPem],
          ['active', 'SIGNED', 'ROOT', 5, 9_000, 40, 'CSR'],
        );
        await assert.rejects(store.completePendingCa('p', { certPem: 'x', chainPem: '', notBefore: 0, notAfter: 1, status: 'prepared' }, 41), ConflictError);
        await store.createCa(sampleCa('p2', 'td', 'pending'));
        await assert.rejects(store.completePendingCa('p2', { certPem: 'x', chainPem: '', notBefore: 0, notAfter: 1, status: 'active' }, 42), isError(ConflictError, 'active CA'));
        assert.equal((await store.completePendingCa('p2', { certPem: 'x', chainPem: '', notBefore: 0, notAfter: 1, status: 'prepared' }, 42)).status, 'prepared');
      });

      test('CRL numbers count up per CA', async () => {
        await store.createCa(sampleCa('a', 'td1'));
        await store.createCa(sampleCa('b', 'td2'));
        assert.deepEqual([await store.nextCrlNumber('a'), await store.nextCrlNumber('a'), await store.nextCrlNumber('b')], [1, 2, 1]);
        await assert.rejects(store.nextCrlNumber('zz'), NotFoundError);
      });
    });

    describe('issued certificates and revocation', () => {
      test('recording raises the CA lastIssuedNotAfter and normalizes the serial', async () => {
        await store.createCa(sampleCa('ca1'));
        await store.recordIssued(sampleIssued('00AB01', 'ca1', { notAfter: 7_000 }));
        await store.recordIssued(sampleIssued('cd', 'ca1', { notAfter: 6_000, issuedAt: 200 }));
        assert.equal((await store.getCa('ca1'))?.lastIssuedNotAfter, 7_000);
        assert.deepEqual(await store.getIssued('ab01'), sampleIssued('ab01', 'ca1', { notAfter: 7_000 }));
        assert.deepEqual(await store.getIssued('00:AB:01'), await store.getIssued('ab01'));
        await assert.rejects(store.recordIssued(sampleIssued('ab01', 'ca1')), isError(ConflictError, 'ab01'));
        await assert.rejects(store.recordIssued(sampleIssued('ef', 'ghost')), isError(NotFoundError, 'ghost'));
        assert.equal(await store.getIssued('ef'), undefined);
      });

      test('listIssued filters', async () => {
        await store.createCa(sampleCa('ca1', 'td1'));
        await store.createCa(sampleCa('ca2', 'td2'));
        await store.recordIssued(sampleIssued('01', 'ca1', { issuedAt: 1, notAfter: 100 }));
        await store.recordIssued(sampleIssued('02', 'ca1', { issuedAt: 2, notAfter: 300, spiffeId: 'spiffe://td/back' }));
        await store.recordIssued(sampleIssued('03', 'ca2', { issuedAt: 3, kind: 'managed', spiffeId: null, managedArn: 'arn:c' }));
        await store.revokeCertificate('02', 50);
        const serials = async (f: Parameters<CaStore['listIssued']>[0]) => (await store.listIssued(f)).map((c) => c.serial);
        assert.deepEqual(await serials({}), ['1', '2', '3']);
        assert.deepEqual(await serials({ caId: 'ca1' }), ['1', '2']);
        assert.deepEqual(await serials({ spiffeId: 'spiffe://td/back' }), ['2']);
        assert.deepEqual(await serials({ managedArn: 'arn:c' }), ['3']);
        assert.deepEqual(await serials({ revoked: true }), ['2']);
        assert.deepEqual(await serials({ revoked: false, caId: 'ca1' }), ['1']);
        assert.deepEqual(await serials({ unexpiredAt: 100 }), ['2', '3']);
      });

      test('revoking a certificate keeps the first time; unknown serials are NotFoundErrors', async () => {
        await store.createCa(sampleCa('ca1'));
        await store.recordIssued(sampleIssued('0a', 'ca1'));
        assert.equal((await store.revokeCertificate('0A', 10)).revokedAt, 10);
        assert.equal((await store.revokeCertificate('a', 20)).revokedAt, 10);
        await assert.rejects(store.revokeCertificate('ff', 10), isError(NotFoundError, 'ff'));
      });

      test('revoking an identity revokes its unexpired certificates in the same step', async () => {
        await store.createCa(sampleCa('ca1'));
        const id = 'spiffe://td/front';
        await store.recordIssued(sampleIssued('01', 'ca1', { notAfter: 100 })); // expired at 150
        await store.recordIssued(sampleIssued('02', 'ca1', { notAfter: 1_000, issuedAt: 120 }));
        await store.recordIssued(sampleIssued('03', 'ca1', { notAfter: 1_000, issuedAt: 130, revokedAt: 140 }));
        await store.recordIssued(sampleIssued('04', 'ca1', { notAfter: 1_000, spiffeId: 'spiffe://td/other' }));
        const { identity, revoked } = await store.revokeIdentity({ spiffeId: id, mesh: 'm', reason: 'stolen' }, 150);
        assert.deepEqual(identity, { spiffeId: id, mesh: 'm', reason: 'stolen', revokedAt: 150 });
        assert.deepEqual(revoked.map((c) => [c.serial, c.revokedAt]), [['2', 150]]);
        assert.equal((await store.getIssued('03'))?.revokedAt, 140);
        assert.equal((await store.getIssued('01'))?.revokedAt, null);
        assert.equal((await store.getIssued('04'))?.revokedAt, null);
        // Again: the first revocation stands.
        const again = await store.revokeIdentity({ spiffeId: id, mesh: 'm', reason: 'again' }, 500);
        assert.deepEqual([again.identity.revokedAt, again.identity.reason, again.revoked], [150, 'stolen', []]);
        assert.deepEqual(await store.getRevokedIdentity(id), identity);
        await store.revokeIdentity({ spiffeId: 'spiffe://x/y', mesh: 'm2', reason: '' }, 160);
        assert.deepEqual((await store.listRevokedIdentities()).map((r) => r.spiffeId), [id, 'spiffe://x/y']);
        assert.deepEqual((await store.listRevokedIdentities('m2')).map((r) => r.spiffeId), ['spiffe://x/y']);
        assert.equal(await store.unrevokeIdentity(id), true);
        assert.equal(await store.unrevokeIdentity(id), false);
        assert.equal(await store.getRevokedIdentity(id), undefined);
        assert.equal((await store.getIssued('02'))?.revokedAt, 150, 'certificates stay revoked');
      });
    });

    describe('join tokens', () => {
      test('create, get, list, delete', async () => {
        await store.createJoinToken(sampleToken('t1', { createdAt: 2 }));
        await store.createJoinToken(sampleToken('t2', { createdAt: 1, mesh: 'm2' }));
        assert.deepEqual(await store.getJoinToken('t1'), sampleToken('t1', { createdAt: 2 }));
        assert.equal(await store.getJoinToken('nope'), undefined);
        await assert.rejects(store.createJoinToken(sampleToken('t1')), isError(ConflictError, 't1'));
        assert.deepEqual((await store.listJoinTokens()).map((t) => t.id), ['t2', 't1']);
        assert.deepEqual((await store.listJoinTokens('m2')).map((t) => t.id), ['t2']);
        assert.equal(await store.deleteJoinToken('t2'), true);
        assert.equal(await store.deleteJoinToken('t2'), false);
      });

      test('a token is claimed once, even by concurrent callers', async () => {
        await store.createJoinToken(sampleToken('t1'));
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => store.claimJoinToken('t1', 1_000 + i)));
        assert.equal(results.filter(Boolean).length, 1);
        const usedAt = (await store.getJoinToken('t1'))?.usedAt;
        assert.equal(usedAt, 1_000 + results.indexOf(true));
        assert.equal(await store.claimJoinToken('t1', 5_000), false);
        await assert.rejects(store.claimJoinToken('nope', 1), isError(NotFoundError, 'nope'));
      });
    });

    describe('managed certificates', () => {
      test('create, get, list, compare-and-swap update, delete', async () => {
        const m1 = sampleManaged('c1');
        const created = await store.createManagedCertificate(m1);
        assert.deepEqual(created, { ...m1, rev: 1 });
        await store.createManagedCertificate(sampleManaged('c2', { mesh: 'm2', caId: 'ca2', createdAt: 4 }));
        assert.deepEqual(await store.getManagedCertificate(m1.arn), created);
        assert.deepEqual((await store.listManagedCertificates()).map((m) => m.id), ['c2', 'c1']);
        assert.deepEqual((await store.listManagedCertificates({ mesh: 'm' })).map((m) => m.id), ['c1']);
        assert.deepEqual((await store.listManagedCertificates({ caId: 'ca2' })).map((m) => m.id), ['c2']);
        await assert.rejects(store.createManagedCertificate(m1), isError(ConflictError, m1.arn));
        const renewed = await store.updateManagedCertificate({ ...created, certPem: 'NEW', serial: '0b', renewedAt: 20 }, 1);
        assert.deepEqual([renewed.rev, renewed.certPem, renewed.renewedAt], [2, 'NEW', 20]);
        await assert.rejects(store.updateManagedCertificate({ ...created, certPem: 'LOST' }, 1), isError(ConflictError, m1.arn));
        assert.deepEqual(await store.getManagedCertificate(m1.arn), renewed);
        await assert.rejects(store.updateManagedCertificate(sampleManaged('ghost'), 1), NotFoundError);
        assert.deepEqual(await store.deleteManagedCertificate(m1.arn), renewed);
        await assert.rejects(store.deleteManagedCertificate(m1.arn), NotFoundError);
      });
    });

    test('records go in and out as copies', async () => {
      const m = { ...sampleManaged('c1'), subjectAlternativeNames: ['a'] };
      const created = await store.createManagedCertificate(m);
      (m.subjectAlternativeNames as string[]).push('input');
      (created.subjectAlternativeNames as string[]).push('returned');
      ((await store.getManagedCertificate(m.arn))!.subjectAlternativeNames as string[]).push('got');
      assert.deepEqual((await store.getManagedCertificate(m.arn))?.subjectAlternativeNames, ['a']);
    });

    if (options.persistent) test('everything survives a reopen', async () => {
      await store.putSettings({ mesh: 'm', trustDomain: 'td', svidTtlMs: 5, keyType: 'rsa-2048', updatedAt: 1 });
      await store.createCa(sampleCa('ca1'));
      await store.recordIssued(sampleIssued('0c', 'ca1'));
      await store.revokeIdentity({ spiffeId: 'spiffe://td/x', mesh: 'm', reason: 'r' }, 3);
      await store.createJoinToken(sampleToken('t1'));
      await store.claimJoinToken('t1', 9);
      await store.createManagedCertificate(sampleManaged('c1'));
      await store.close();
      const again = await fx.reopen!();
      assert.equal((await again.getSettings('m'))?.keyType, 'rsa-2048');
      assert.equal((await again.getCa('ca1'))?.lastIssuedNotAfter, 5_000);
      assert.equal((await again.getIssued('c'))?.caId, 'ca1');
      assert.equal((await again.getRevokedIdentity('spiffe://td/x'))?.revokedAt, 3);
      assert.equal((await again.getJoinToken('t1'))?.usedAt, 9);
      assert.deepEqual((await again.getManagedCertificate(sampleManaged('c1').arn))?.subjectAlternativeNames, ['*.svc.local', 'svc.local']);
    });

    if (options.persistent) test('a second instance on the same data sees claims and keeps the slots', async () => {
      const other = await fx.second!();
      await store.createJoinToken(sampleToken('t1'));
      assert.equal(await other.claimJoinToken('t1', 5), true);
      assert.equal(await store.claimJoinToken('t1', 6), false);
      await store.createCa(sampleCa('a1'));
      await assert.rejects(other.createCa(sampleCa('a2')), ConflictError);
    });
  });
}
