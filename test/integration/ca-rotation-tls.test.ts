// CA rotation under live mutual-TLS traffic, on the real clock: three workloads (virtual nodes) with SVIDs
// from keymesh's CA keep opening fresh mTLS connections (node:tls, loopback) to each other while the CA
// rotates: prepare (new CA in every bundle) → activate, gated on every workload holding that bundle →
// natural renewals at half-life onto the new CA → the old CA retires once its last certificate expired.
// Not one handshake may fail, and afterwards the old CA must really be gone: its leaves are refused.
import assert from 'node:assert/strict';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import tls from 'node:tls';
import { systemClock } from '../../src/base/clock.ts';
import { CertificateAuthority } from '../../src/ca/authority.ts';
import { KeyStore } from '../../src/ca/key-store.ts';
import type { BundleDistribution } from '../../src/ca/rotation.ts';
import { MIN_SVID_TTL_MS } from '../../src/ca/trust-domains.ts';
import { ConflictError } from '../../src/errors/index.ts';
import { DEFAULT_LIMITS } from '../../src/mesh/limits.ts';
import { ResourceManager } from '../../src/mesh/manager.ts';
import { issueLeaf } from '../../src/pki/issue.ts';
import { exportPrivateKeyPem, generateKeyPair } from '../../src/pki/keys.ts';
import { parseCertificateChainPem, parseCertificatePem, toPem } from '../../src/pki/pem.ts';
import { openssl, withScratchDir } from '../../src/pki/testing-openssl.ts';
import { SqliteCaStore } from '../../src/store/sqlite/sqlite-ca-store.ts';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { mtlsRequest, TlsWorkload } from '../support/tls-workload.ts';

const MESH = 'rotation';
const TRUST_DOMAIN = 'rotation.keymesh.test';
const ACCOUNT = '000000000000';
const REGION = 'us-east-1';
const NODES = ['alpha', 'bravo', 'charlie'] as const;
const dnsNameOf = (node: string) => `${node}.rotation.local`;

/** The whole test, including setup and cleanup; it normally takes about 65 s. */
const TEST_TIMEOUT_MS = 240_000;
/** Traffic stops by itself after this long or this many connections per client→server lane, whatever happens. */
const TRAFFIC_LIMIT_MS = 200_000;
const MAX_REQUESTS_PER_LANE = 50_000;
/** Between two connections of one lane, so six lanes do not starve the CA and the renewal timers. */
const LANE_PAUSE_MS = 10;
const STEADY_MS = 3_000;
/** Traffic with the new CA in every bundle before it signs anything. */
const PREPARED_DWELL_MS = 2_000;
/** Traffic after every workload has the bundle without the old CA. */
const AFTER_RETIREMENT_MS = 4_000;
/** Each client→server pair must complete at least this many handshakes in every phase. */
const MIN_PER_PAIR_PER_PHASE = 5;

const PHASES = ['steady', 'prepared', 'activated', 'renewed', 'retired'] as const;
type Phase = (typeof PHASES)[number];

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(50);
  }
}

interface Failure {
  readonly phase: Phase;
  readonly pair: string;
  readonly at: number;
  readonly message: string;
}

/** Every workload connects to every other one, over and over, each connection a fresh handshake, alternating TLS 1.3 and TLS 1.2. */
class Traffic {
  phase: Phase = 'steady';
  readonly ok = new Map<Phase, Map<string, number>>(PHASES.map((p) => [p, new Map<string, number>()]));
  readonly failures: Failure[] = [];
  readonly protocols = new Map<Phase, Map<string, number>>(PHASES.map((p) => [p, new Map<string, number>()]));
  reused = 0;
  readonly #workloads: readonly TlsWorkload[];
  readonly #deadline: number;
  #lanes: Promise<void>[] = [];
  #stopped = false;

  constructor(workloads: readonly TlsWorkload[]) {
    this.#workloads = workloads;
    this.#deadline = Date.now() + TRAFFIC_LIMIT_MS;
  }

  start(): void {
    for (const client of this.#workloads) {
      for (const server of this.#workloads) if (client !== server) this.#lanes.push(this.#lane(client, server));
    }
  }

  enter(phase: Phase): void {
    this.phase = phase;
  }

  count(phase: Phase): number {
    return [...(this.ok.get(phase)?.values() ?? [])].reduce((a, b) => a + b, 0);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await Promise.all(this.#lanes);
  }

  async #lane(client: TlsWorkload, server: TlsWorkload): Promise<void> {
    const pair = `${client.name}→${server.name}`;
    for (let i = 0; i < MAX_REQUESTS_PER_LANE && !this.#stopped && Date.now() < this.#deadline; i += 1) {
      const phase = this.phase; // a connection counts for the phase it started in
      try {
        const r = await client.request(server, { tls12: i % 2 === 1 });
        const counts = this.ok.get(phase)!;
        counts.set(pair, (counts.get(pair) ?? 0) + 1);
        const protocols = this.protocols.get(phase)!;
        protocols.set(String(r.protocol), (protocols.get(String(r.protocol)) ?? 0) + 1);
        if (r.reused) this.reused += 1;
      } catch (e) {
        this.failures.push({ phase, pair, at: Date.now(), message: e instanceof Error ? e.message : String(e) });
      }
      await sleep(LANE_PAUSE_MS);
    }
  }
}

test('CA rotation under live mTLS traffic: no handshake fails, and afterwards the old CA is really gone', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const started = Date.now();
  const dataDir = await mkdtemp(join(tmpdir(), 'keymesh-rotation-'));
  const cleanups: (() => Promise<unknown>)[] = [];
  const workloads: TlsWorkload[] = [];
  let traffic: Traffic | undefined;
  try {
    // --- the control plane: App Mesh resources and the CA on one SQLite file, real clock ----------------
    const dbPath = join(dataDir, 'keymesh.db');
    const resources = SqliteStore.open(dbPath);
    cleanups.push(() => resources.close());
    const caStore = SqliteCaStore.open(dbPath);
    cleanups.push(() => caStore.close());
    const manager = new ResourceManager({ store: resources, clock: systemClock, account: ACCOUNT, region: REGION, limits: DEFAULT_LIMITS });
    await manager.create({ kind: 'mesh', mesh: MESH, parent: '', name: MESH }, {}, []);
    for (const node of NODES) {
      await manager.create({ kind: 'virtualNode', mesh: MESH, parent: '', name: node }, {
        listeners: [{ portMapping: { port: 8443, protocol: 'tcp' } }],
        serviceDiscovery: { dns: { hostname: dnsNameOf(node) } },
      }, []);
    }
    // Activation asks whether every proxy holds the new bundle; here the proxies are the workloads, and
    // each answers from the bundle its TLS contexts actually use.
    const distribution: BundleDistribution = { lacking: async (caId) => workloads.filter((w) => !w.holds(caId)).map((w) => w.name) };
    const listenerErrors: unknown[] = [];
    const authority = new CertificateAuthority({
      caStore, resources, dataDir, clock: systemClock, region: REGION, account: ACCOUNT, distribution, onListenerError: (e) => listenerErrors.push(e),
    });
    const settings = await authority.configure(MESH, { trustDomain: TRUST_DOMAIN, svidTtlMs: MIN_SVID_TTL_MS });
    assert.equal(settings.svidTtlMs, MIN_SVID_TTL_MS);
    const oldCa = await authority.ensureCa(MESH);
    assert.equal(oldCa.status, 'active');

    // --- the workloads: bootstrap from join tokens, serve mTLS on loopback -----------------------------
    for (const node of NODES) {
      const token = await authority.createJoinToken({ mesh: MESH, kind: 'virtualNode', name: node });
      assert.equal(token.spiffeId, `spiffe://${TRUST_DOMAIN}/${node}`);
      const w = await TlsWorkload.start({ authority, trustDomain: TRUST_DOMAIN, name: node, spiffeId: token.spiffeId, dnsName: dnsNameOf(node), joinToken: token.token });
      cleanups.push(() => w.close());
      workloads.push(w);
    }
    for (const w of workloads) w.acceptClients(workloads.filter((o) => o !== w).map((o) => o.spiffeId));
    for (const w of workloads) {
      assert.equal(w.currentCaId(), oldCa.id);
      assert.deepEqual(w.heldCaIds(), [oldCa.id]);
      const lifetime = (w.svid?.notAfter ?? 0) - (w.svid?.notBefore ?? 0);
      assert.ok(lifetime <= MIN_SVID_TTL_MS + 10_000, `SVID lifetime ${lifetime} ms: the minimum TTL plus the notBefore backdating`);
    }
    const phaseStart = new Map<Phase, number>();
    const enter = (phase: Phase) => {
      traffic?.enter(phase);
      phaseStart.set(phase, Date.now());
    };

    // --- steady state ----------------------------------------------------------------------------------
    traffic = new Traffic(workloads);
    enter('steady');
    traffic.start();
    await sleep(STEADY_MS);

    // --- prepare: the new CA enters the bundle; activation waits until every workload holds it ---------
    const laggard = workloads[2]!;
    laggard.pauseBundleUpdates();
    enter('prepared');
    const newCa = await authority.prepareRotation(TRUST_DOMAIN);
    assert.equal(newCa.status, 'prepared');
    assert.deepEqual([...(await authority.trustBundle(TRUST_DOMAIN)).caIds].sort(), [oldCa.id, newCa.id].sort());
    await waitFor('the two prompt workloads hold the new CA', () => workloads.filter((w) => w !== laggard).every((w) => w.holds(newCa.id)), 10_000);
    assert.equal(laggard.holds(newCa.id), false);
    await assert.rejects(authority.activate(TRUST_DOMAIN, newCa.id), (e: unknown) => {
      assert.ok(e instanceof ConflictError, String(e));
      assert.equal(e.code, 'KM_ERR_BUNDLE_NOT_DISTRIBUTED');
      return true;
    }, 'activation must wait for the workload that has not got the new bundle yet');
    assert.equal((await authority.describeCa(newCa.id)).status, 'prepared');
    assert.equal((await authority.describeCa(oldCa.id)).status, 'active');
    await laggard.resumeBundleUpdates();
    await waitFor('every workload holds the new CA', () => workloads.every((w) => w.holds(newCa.id)), 10_000);
    await sleep(PREPARED_DWELL_MS);
    assert.ok(workloads.every((w) => w.issued.every((i) => i.caId === oldCa.id)), 'a prepared CA signs nothing');

    // --- activate: new SVIDs come from the new CA; workloads renew at half-life, not forced -----------
    const activation = await authority.activate(TRUST_DOMAIN, newCa.id);
    const activatedAt = Date.now();
    enter('activated');
    assert.equal(activation.activated.id, newCa.id);
    assert.equal(activation.retiring?.id, oldCa.id);
    // Renewal is due at 40–60% of the 70 s lifetime (60 s TTL, notBefore backdated 10 s).
    await waitFor('every workload renewed onto the new CA', () => workloads.every((w) => w.currentCaId() === newCa.id), 75_000);
    enter('renewed');
    for (const w of workloads) {
      const renewals = w.issued.filter((i) => i.kind === 'renewal');
      assert.ok(renewals.length >= 1, `${w.name} renewed`);
      for (const i of w.issued) {
        if (i.at < activatedAt) assert.equal(i.caId, oldCa.id, `${w.name}: before activation, issued by the old CA`);
      }
    }

    // --- retire: only once the old CA's last certificate has expired ----------------------------------
    const retiring = await authority.describeCa(oldCa.id);
    assert.equal(retiring.status, 'retiring');
    assert.ok(retiring.lastIssuedNotAfter > Date.now(), 'the old CA still has unexpired certificates');
    const early = await authority.maintain();
    assert.deepEqual(early.retired, [], 'maintain keeps a retiring CA while its certificates are valid');
    assert.equal((await authority.describeCa(oldCa.id)).status, 'retiring');

    // A leaf that the old CA's key signs now, outside keymesh (as with a stolen key): valid for ten
    // minutes, for a real identity. While the old CA is in the bundle, a workload accepts it...
    const oldRecord = (await caStore.getCa(oldCa.id))!;
    const oldKeyFile = join(dataDir, 'ca', oldRecord.keyFile);
    const oldKeys = await new KeyStore({ dir: join(dataDir, 'ca') }).load(oldRecord.keyFile);
    const oldCaCert = parseCertificatePem(oldCa.certPem, 'old CA');
    const forgedKeys = await generateKeyPair('ec-p256');
    const forgedLeaf = await issueLeaf({
      publicKey: forgedKeys.publicKey, issuerCert: oldCaCert, issuerKeys: oldKeys,
      uris: [workloads[1]!.spiffeId], dnsNames: [workloads[1]!.dnsName],
      notBefore: new Date(Date.now() - 10_000), notAfter: new Date(Date.now() + 10 * 60_000),
    });
    const forgedKeyPem = await exportPrivateKeyPem(forgedKeys);
    const forgedRequest = (maxVersion: 'TLSv1.3' | 'TLSv1.2') => mtlsRequest({
      port: workloads[0]!.port, servername: workloads[0]!.dnsName, expectServer: workloads[0]!.spiffeId, clientId: workloads[1]!.spiffeId,
      secureContext: tls.createSecureContext({ minVersion: 'TLSv1.2', maxVersion, key: forgedKeyPem, cert: toPem(forgedLeaf), ca: workloads[0]!.bundle!.pem }),
    });
    for (const version of ['TLSv1.3', 'TLSv1.2'] as const) assert.equal((await forgedRequest(version)).protocol, version); // accepted: the old CA is still trusted

    const expiry = retiring.lastIssuedNotAfter;
    await sleep(Math.max(0, expiry - Date.now() + 250));
    const report = await authority.maintain();
    assert.deepEqual(report.retired, [oldCa.id], 'the old CA retires once its last certificate has expired');
    enter('retired');
    assert.equal((await authority.describeCa(oldCa.id)).status, 'retired');
    await assert.rejects(access(oldKeyFile), { code: 'ENOENT' }, 'a retired CA\'s key file is deleted');
    await waitFor('every workload holds the bundle without the old CA', () => workloads.every((w) => w.heldCaIds().length === 1 && w.holds(newCa.id)), 10_000);
    await sleep(AFTER_RETIREMENT_MS);
    const trafficEnd = Date.now();
    await traffic.stop();

    // --- not one failed handshake, plenty in every phase -------------------------------------------------
    const summary = PHASES.map((p) => {
      const next = PHASES[PHASES.indexOf(p) + 1];
      const seconds = (((next ? phaseStart.get(next) : trafficEnd) ?? trafficEnd) - (phaseStart.get(p) ?? trafficEnd)) / 1000;
      return `${p}: ${traffic!.count(p)} handshakes in ${seconds.toFixed(1)} s ${JSON.stringify(Object.fromEntries(traffic!.protocols.get(p)!))}`;
    });
    for (const line of summary) t.diagnostic(line);
    t.diagnostic(`failures: ${traffic.failures.length}`);
    assert.deepEqual(traffic.failures, [], 'no client-side failure');
    for (const w of workloads) {
      assert.deepEqual(w.problems, [], `${w.name}: no inbound handshake failure, refused peer or lost identity`);
      assert.deepEqual(w.identityWarnings(), [], `${w.name}: no renewal failure or expiry warning`);
    }
    assert.deepEqual(listenerErrors, []);
    assert.equal(traffic.reused, 0, 'every connection was a full handshake');
    for (const p of PHASES) {
      for (const client of workloads) {
        for (const server of workloads) {
          if (client === server) continue;
          const n = traffic.ok.get(p)!.get(`${client.name}→${server.name}`) ?? 0;
          assert.ok(n >= MIN_PER_PAIR_PER_PHASE, `${client.name}→${server.name} completed ${n} handshakes in phase ${p}`);
        }
      }
      for (const protocol of ['TLSv1.3', 'TLSv1.2']) {
        const n = traffic.protocols.get(p)!.get(protocol) ?? 0;
        assert.ok(n >= MIN_PER_PAIR_PER_PHASE, `${n} ${protocol} handshakes in phase ${p}`);
      }
    }

    // --- the end state: one CA, every SVID chains to it and only to it -----------------------------------
    const finalBundle = await authority.trustBundle(TRUST_DOMAIN);
    assert.deepEqual(finalBundle.caIds, [newCa.id]);
    assert.equal(finalBundle.anchors.length, 1);
    assert.equal(toPem(finalBundle.anchors), toPem(parseCertificatePem(newCa.certPem, 'new CA')));
    for (const w of workloads) assert.equal(w.bundle?.pem, finalBundle.pem, `${w.name} uses the final bundle`);
    await withScratchDir(async (_dir, write) => {
      const bundleFile = write('bundle.pem', finalBundle.pem);
      const oldCaFile = write('old-ca.pem', oldCa.certPem);
      for (const w of workloads) {
        const svid = w.svid;
        assert.ok(svid, `${w.name} has an SVID`);
        assert.equal(w.currentCaId(), newCa.id);
        assert.equal(parseCertificateChainPem(svid.certChainPem, 'SVID').length, 1, 'a root CA: the chain is the leaf alone');
        const leafFile = write(`${w.name}.pem`, svid.certChainPem);
        const good = openssl(['verify', '-CAfile', bundleFile, leafFile]);
        assert.equal(good.status, 0, good.output);
        assert.match(good.stdout, /: OK/);
        const bad = openssl(['verify', '-CAfile', oldCaFile, leafFile]);
        assert.notEqual(bad.status, 0, `${w.name}'s SVID must not verify against the old CA:\n${bad.output}`);
        assert.match(bad.output, /unable to get local issuer certificate/);
      }
    });

    // --- the old CA really left: the same forged leaf a workload accepted before is refused now ----------
    const server = workloads[0]!;
    for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
      const before = server.problems.length;
      // Node's server checks the client certificate once the handshake is done and then drops the
      // connection: the client only sees it closed; the server says why.
      await assert.rejects(forgedRequest(version), /connection closed before the reply/, `${version}: a leaf signed by the retired CA is refused`);
      await waitFor('the server reports the refused handshake', () => server.problems.length > before, 5_000);
      assert.equal(server.problems.length, before + 1);
      assert.match(server.problems.at(-1)!.message, /inbound handshake failed: .*client certificate: (UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)/, "no trusted issuer for the old CA's leaf");
    }
    // ... while the real SVIDs still connect, with either version.
    assert.equal((await workloads[1]!.request(server)).protocol, 'TLSv1.3');
    assert.equal((await workloads[1]!.request(server, { tls12: true })).protocol, 'TLSv1.2');

    t.diagnostic(`runtime: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (e) {
    // Whatever step failed, show the handshake failures seen so far: they usually explain it.
    for (const f of traffic?.failures.slice(0, 10) ?? []) t.diagnostic(`handshake failure (${f.phase}, ${f.pair}, ${new Date(f.at).toISOString()}): ${f.message}`);
    for (const w of workloads) for (const p of w.problems.slice(0, 5)) t.diagnostic(`${w.name} (${new Date(p.at).toISOString()}): ${p.message}`);
    throw e;
  } finally {
    await traffic?.stop();
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    await rm(dataDir, { recursive: true, force: true });
  }
});
