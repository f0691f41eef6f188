// keymesh's data plane under continuous load while the control plane does disruptive things, with real
// processes on loopback: a control plane (`keymesh server` on fixed ports), a `client` sidecar and a `server`
// sidecar (`keymesh proxy`), and the server's application (its own process). The client's requests go to its
// sidecar's egress listener with `Host: server.resilience.local`, through a virtual router, over mutual TLS
// with SDS material (seed 003's shape: certificates named by SPIFFE IDs, trust by the trust domain, each side
// checking the other's SPIFFE ID) to the server's sidecar, and on to the application.
//
// 1. CA rotation: prepare, activate once every proxy holds the new bundle, natural SVID renewals onto the
//    new CA (60 s SVIDs). Not one request may fail, new mTLS handshakes must happen in every phase, and in the
//    end both sidecars present certificates of the new CA.
// 2. The control plane is SIGKILLed: the proxies keep serving on their last configuration; it comes back on
//    the same data directory and ports, the proxies reconnect, and a route change made through the API
//    reaches them. Not one request may fail.
//
// No timing is asserted: only counts (requests, failures, handshakes) and states. Every wait and the load are
// bounded in count and time. The two tests share the mesh and run in this order (the rotation first, while
// the proxies' SVIDs are fresh). KEYMESH_TEST_VERBOSE=1 shows the processes' output.
import assert from 'node:assert/strict';
import { after, before, test, type TestContext } from 'node:test';
import { CreateMeshCommand, CreateRouteCommand, CreateVirtualNodeCommand, CreateVirtualRouterCommand, CreateVirtualServiceCommand, type AppMeshClient } from '@aws-sdk/client-app-mesh';
import { sdkClient } from '../support/aws-cli.ts';
import { makeTempDir } from '../support/keymesh-server.ts';
import { ControlPlane, HttpApp, HttpLoad, httpGet, MeshProxy, tearDownMesh, until, type CertsAnswer, type LoadOptions } from '../support/mesh-processes.ts';
import { sdsMutualTls } from '../support/sds-tls.ts';

const MESH = 'resilience';
const TRUST_DOMAIN = 'resilience.keymesh.test';
const TD = `spiffe://${TRUST_DOMAIN}`;
const SERVICE = 'server.resilience.local';
const CLIENT_IP = '127.0.0.51';
const SERVER_IP = '127.0.0.52';
const APP_PORT = 8080;
const EGRESS_PORT = 15001;
const SERVER_LISTENER = `listener.${SERVER_IP}_15000`;
const CLIENT_CLUSTER = `cluster.cds_egress_${MESH}_server_http_${APP_PORT}`;

/** Whole-test limits: generous, only there so that nothing can hang. */
const TEST_TIMEOUT_MS = 180_000;
/** The load: a few workers, paced; it stops by itself after this many requests or this long. */
const LOAD: Omit<LoadOptions, 'maxDurationMs'> = {
  host: CLIENT_IP, port: EGRESS_PORT, hostHeader: SERVICE, expectApp: 'server',
  concurrency: 4, ratePerSecond: 100, maxRequests: 20_000, freshEvery: 10, postEvery: 7, requestTimeoutMs: 10_000,
};
/** Requests per phase below which the load did not really run through it (a loaded 2-CPU machine does far more). */
const MIN_PER_PHASE = 20;
/** SVIDs live 60 s (keymesh's minimum) + 10 s backdating: renewal is due 18–32 s after issuance. */
const SVID_TTL = '60s';
const RENEWAL_WAIT_MS = 60_000;
/** How long the control plane stays dead, under load. */
const OUTAGE_MS = 10_000;
/** Full-jitter reconnection backoff tops out at 30 s. */
const RECONNECT_WAIT_MS = 45_000;

let cp: ControlPlane;
let appmesh: AppMeshClient;
let dir: string;
const proxies: Record<'client' | 'server', MeshProxy | undefined> = { client: undefined, server: undefined };
const sidecar = (name: 'client' | 'server'): MeshProxy => proxies[name] ?? assert.fail(`the ${name} sidecar did not start`);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const normalSerial = (s: string) => s.toLowerCase().replace(/[^0-9a-f]/g, '').replace(/^0+(?=.)/, '');

/** The router's one route to start with (the default 15 s timeout). */
const MAIN_ROUTE = { priority: 10, httpRoute: { match: { prefix: '/' }, action: { weightedTargets: [{ virtualNode: 'server', weight: 1 }] } } };

/** Issued certificates by serial: which CA signed it (`keymesh ca issued`). */
async function issuedBy(): Promise<Map<string, { caId: string; identity: string }>> {
  const out = await cp.cliOk(['ca', 'issued', '--mesh', MESH]);
  const map = new Map<string, { caId: string; identity: string }>();
  for (const line of out.split('\n').slice(1)) {
    const [serial, identity, caId] = line.trim().split(/\s+/);
    if (serial && identity && caId) map.set(normalSerial(serial), { caId, identity });
  }
  return map;
}

type Presented = { serial: string; caId: string | undefined; certs: CertsAnswer };

/** The leaf each sidecar presents (/certs), with the CA that issued it; and every issued certificate. */
async function presented(): Promise<{ client: Presented; server: Presented; issued: Awaited<ReturnType<typeof issuedBy>> }> {
  const issued = await issuedBy();
  const one = async (name: 'client' | 'server') => {
    const certs = await sidecar(name).certs();
    const serial = normalSerial(certs.certificates[0]?.cert_chain[0]?.serial_number ?? '');
    return { serial, caId: issued.get(serial)?.caId, certs };
  };
  return { client: await one('client'), server: await one('server'), issued };
}

/** The failure counters of the mTLS hop on both sides, by name, for those that are not 0. */
async function sslProblems(): Promise<Record<string, number>> {
  const [server, client] = await Promise.all([sidecar('server').stats(), sidecar('client').stats()]);
  const names = [
    ...['fail_verify_error', 'fail_verify_san', 'fail_verify_no_cert', 'connection_error'].map((n) => [server, `${SERVER_LISTENER}.ssl.${n}`] as const),
    ...['fail_verify_error', 'fail_verify_san', 'connection_error'].map((n) => [client, `${CLIENT_CLUSTER}.ssl.${n}`] as const),
    [client, `${CLIENT_CLUSTER}.upstream_cx_connect_fail`] as const,
  ];
  return Object.fromEntries(names.map(([stats, name]) => [name, stats.get(name) ?? 0]).filter(([, v]) => v !== 0));
}

/** What the load and the proxies saw, for the test's diagnostics (once, whether it passes or fails). */
const reported = new WeakSet<HttpLoad>();
async function report(t: TestContext, load: HttpLoad): Promise<void> {
  if (reported.has(load)) return;
  reported.add(load);
  t.diagnostic(`load: ${load.summary()}`);
  for (const f of load.failures.slice(0, 10)) t.diagnostic(`failed (${f.phase}, ${f.connection} connection, ${new Date(f.at).toISOString()}): ${f.request}: ${f.message}`);
  try {
    const client = await sidecar('client').stats();
    const server = await sidecar('server').stats();
    const pick = (m: Map<string, number>, re: RegExp) => [...m].filter(([k, v]) => re.test(k) && v !== 0).map(([k, v]) => `${k}=${v}`).join(' ');
    const clientStats = new RegExp(`^${escape(CLIENT_CLUSTER)}\\.(upstream_rq_(total|retry|retry_success|timeout|5xx|503|504)|upstream_cx_(total|destroy|connect_fail)|keymesh\\.upstream_cx_reused|ssl\\.\\w+)$|^control_plane\\.`);
    const serverStats = new RegExp(`^${escape(SERVER_LISTENER)}\\.(ssl\\.\\w+|downstream_cx_total)$|^cluster\\.cds_ingress_\\w+\\.(upstream_rq_(total|retry|5xx|503)|upstream_cx_total)$|^control_plane\\.`);
    t.diagnostic(`client sidecar: ${pick(client, clientStats)}`);
    t.diagnostic(`server sidecar: ${pick(server, serverStats)}`);
  } catch (e) {
    t.diagnostic(`stats unavailable: ${(e as Error).message}`);
  }
}

/** A request with the probe header, on its own connection: the route added in test 2 gives it a 500 ms timeout. */
const probe = () => httpGet(CLIENT_IP, EGRESS_PORT, '/delay/1500', { headers: { host: SERVICE, 'x-probe': 'short-timeout' }, timeoutMs: 10_000 });

before(async () => {
  dir = makeTempDir('keymesh-resilience-');
  cp = await ControlPlane.start();
  appmesh = sdkClient(cp.url);
  await appmesh.send(new CreateMeshCommand({ meshName: MESH }));
  // 60 s SVIDs, so that natural renewals happen during the test; the trust domain before the CA exists.
  await cp.cliOk(['ca', 'settings', '--mesh', MESH, '--trust-domain', TRUST_DOMAIN, '--svid-ttl', SVID_TTL]);
  await appmesh.send(new CreateVirtualNodeCommand({
    meshName: MESH, virtualNodeName: 'server', spec: {
      listeners: [{
        portMapping: { port: APP_PORT, protocol: 'http' },
        tls: { mode: 'STRICT', ...sdsMutualTls(TD, 'server', ['client']) },
      }],
      serviceDiscovery: { dns: { hostname: SERVICE } },
    },
  }));
  await appmesh.send(new CreateVirtualRouterCommand({ meshName: MESH, virtualRouterName: 'server-router', spec: { listeners: [{ portMapping: { port: APP_PORT, protocol: 'http' } }] } }));
  await appmesh.send(new CreateRouteCommand({ meshName: MESH, virtualRouterName: 'server-router', routeName: 'main', spec: MAIN_ROUTE }));
  await appmesh.send(new CreateVirtualServiceCommand({ meshName: MESH, virtualServiceName: SERVICE, spec: { provider: { virtualRouter: { virtualRouterName: 'server-router' } } } }));
  await appmesh.send(new CreateVirtualNodeCommand({
    meshName: MESH, virtualNodeName: 'client', spec: {
      backends: [{ virtualService: { virtualServiceName: SERVICE } }],
      backendDefaults: {
        clientPolicy: {
          tls: { enforce: true, ports: [APP_PORT], ...sdsMutualTls(TD, 'client', ['server']) },
        },
      },
    },
  }));
  await HttpApp.start({ name: 'server', host: SERVER_IP, port: APP_PORT });
  [proxies.server, proxies.client] = await Promise.all([
    MeshProxy.start(cp, { kind: 'proxy', mesh: MESH, name: 'server', ip: SERVER_IP, workDir: dir }),
    MeshProxy.start(cp, { kind: 'proxy', mesh: MESH, name: 'client', ip: CLIENT_IP, workDir: dir }),
  ]);
  // The client learns the server's instance over EDS once the server's sidecar registered.
  await until('a request through both sidecars reaches the application', async () => {
    const r = await httpGet(CLIENT_IP, EGRESS_PORT, '/hello', { headers: { host: SERVICE } }).catch(() => undefined);
    return r?.status === 200 && JSON.parse(r.body).app === 'server';
  }, 20_000);
});

after(() => tearDownMesh({ cp, appmesh, dir }));

test('CA rotation under continuous load: prepare, activate, renewals onto the new CA; not one request fails', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const started = Date.now();
  const [active, before] = await Promise.all([cp.cliOk(['ca', 'init', '--mesh', MESH]), presented()]);
  const oldCa = JSON.parse(active) as { id: string; status: string };
  assert.equal(oldCa.status, 'active');
  for (const name of ['client', 'server'] as const) {
    assert.equal(before[name].caId, oldCa.id, `${name} starts with an SVID of the first CA`);
    assert.deepEqual(before[name].certs.certificates[0]!.cert_chain[0]!.subject_alt_names.filter((s) => 'uri' in s), [{ uri: `${TD}/${name}` }]);
    assert.equal((await sidecar(name).trustedCas(TD))?.length, 1, `${name} trusts one CA`);
  }

  // New mTLS connections per phase. A burst of slow requests larger than any before needs more connections
  // between the sidecars than the client's pool holds, so each phase has its own new handshakes: the server
  // listener's ssl.handshake, and the client's ssl.handshake minus ssl.session_reused for full handshakes
  // (a resumed session presents no certificate).
  const counters = async () => {
    const [server, client] = await Promise.all([sidecar('server').stats(), sidecar('client').stats()]);
    return {
      handshakes: server.get(`${SERVER_LISTENER}.ssl.handshake`) ?? 0,
      full: (client.get(`${CLIENT_CLUSTER}.ssl.handshake`) ?? 0) - (client.get(`${CLIENT_CLUSTER}.ssl.session_reused`) ?? 0),
    };
  };
  const atStart = await counters();
  /** Since the end of the previous phase's burst (so a connection made before the phase was noticed counts). */
  const perPhase: Record<string, { handshakes: number; full: number }> = {};
  let last = atStart;
  let burstSize = 0;
  const burst = async () => {
    burstSize += 8;
    await load.burst(burstSize);
    const now = await counters();
    perPhase[load.phase] = { handshakes: now.handshakes - last.handshakes, full: now.full - last.full };
    last = now;
  };

  const load = new HttpLoad({ ...LOAD, maxDurationMs: 150_000 });
  const phase = (p: string) => {
    load.phase = p;
    t.diagnostic(`${((Date.now() - started) / 1000).toFixed(1)} s: ${p}`);
  };
  try {
    phase('steady');
    load.start();
    await sleep(2_000);
    await burst();

    // --- prepare: the new CA joins the bundle every proxy gets over SDS -------------------------------------
    const prepared = JSON.parse(await cp.cliOk(['ca', 'rotate', 'prepare', '--mesh', MESH])) as { id: string; status: string };
    assert.equal(prepared.status, 'prepared');
    phase('prepared');
    await until('both sidecars trust both CAs (SDS)', async () => {
      const counts = await Promise.all([sidecar('client').trustedCas(TD), sidecar('server').trustedCas(TD)]);
      return counts.every((c) => c?.length === 2);
    }, 20_000);
    await burst();

    // --- activate: refused until every proxy ACKed that bundle, so retried (bounded) -------------------------
    let refusals = 0;
    let attempts = 0;
    await until('`keymesh ca rotate activate` succeeds', async () => {
      attempts++;
      const r = await cp.cli(['ca', 'rotate', 'activate', '--ca', prepared.id]);
      if (r.code === 0) return true;
      assert.match(`${r.stdout}${r.stderr}`, /Not every connected proxy/, 'activation may only be refused for a proxy that lacks the bundle');
      refusals++;
      return attempts >= 40 ? assert.fail(`activation still refused after ${attempts} attempts`) : false;
    }, 30_000, 250);
    phase('activated');
    t.diagnostic(`activation: ${refusals} refusal(s) before it succeeded`);
    await burst();

    // --- natural renewals at half-life: each sidecar moves to the new CA on its own ------------------------
    const renewed = new Set<string>();
    let serverRenewedIn = '';
    let seen = '';
    await until('both sidecars present an SVID of the new CA', async () => {
      // /certs is cheap; which CA issued a certificate is asked (`keymesh ca issued`) only when one changed.
      const serials = (await Promise.all([sidecar('client').certs(), sidecar('server').certs()])).map((c) => c.certificates[0]?.cert_chain[0]?.serial_number).join();
      if (serials === seen) return false;
      seen = serials;
      const now = await presented();
      const fresh = (['client', 'server'] as const).filter((name) => !renewed.has(name) && now[name].caId === prepared.id);
      if (fresh.length === 0) return false;
      for (const name of fresh) renewed.add(name);
      phase(renewed.size === 2 ? 'both renewed' : `${fresh[0]} renewed`);
      if (fresh.includes('server')) serverRenewedIn = load.phase;
      await burst();
      return renewed.size === 2;
    }, RENEWAL_WAIT_MS, 500);
    await sleep(3_000);
    phase('stopping');
    await load.stop();
    const atEnd = await counters();
    t.diagnostic(`new mTLS connections by phase (server ssl.handshake, client full handshakes): ${JSON.stringify(perPhase)}; in all ${atEnd.handshakes - atStart.handshakes}, ${atEnd.full - atStart.full} full`);

    // --- not one failure, and the load ran through every phase ---------------------------------------------
    await report(t, load);
    assert.deepEqual(load.failures, [], 'no request failed');
    for (const [p, n] of load.ok) if (p !== 'stopping') assert.ok(n >= MIN_PER_PHASE, `${n} requests in phase ${p}`);
    assert.ok(load.okTotal >= 500, `${load.okTotal} requests in all`);
    assert.ok(load.connections.fresh >= 25 && load.connections.reused >= 250, JSON.stringify(load.connections));
    assert.deepEqual(await sslProblems(), {}, 'no handshake failed on either side of the mTLS hop');
    // New handshakes happened with both CAs trusted and once both sides held new-CA SVIDs: the sidecars' one
    // multiplexed connection (docs/proxy.md) is replaced whenever either side's TLS material changes — the
    // trust bundle at prepare, each certificate at renewal (activation alone changes no material).
    for (const p of ['prepared', 'both renewed']) assert.ok((perPhase[p]?.handshakes ?? 0) > 0, `new handshakes on the server sidecar in phase ${p}`);
    // The server's renewal gives its listener a new certificate (and session ticket keys), so sessions from
    // before cannot be resumed: full handshakes in which it presented its new-CA certificate and the client's
    // certificate was verified against the two-CA bundle. The client's renewal alone does not always lead to
    // a full handshake: its TLS session cache is keyed by the LENGTH of its TLS material (src/proxy/tls/dial.ts),
    // so a session made with its previous certificate may be resumed.
    assert.ok((perPhase[serverRenewedIn]?.full ?? 0) > 0, `full handshakes after the server's renewal (phase ${serverRenewedIn})`);

    // --- the end state: the old CA's certificates are no longer presented -----------------------------------
    const end = await presented();
    const issued = end.issued;
    const fromOld = new Set([...issued].filter(([, c]) => c.caId === oldCa.id).map(([serial]) => serial));
    for (const name of ['client', 'server'] as const) {
      assert.equal(end[name].caId, prepared.id, `${name} presents an SVID of the new CA`);
      assert.ok(!fromOld.has(end[name].serial), `${name}'s certificate is not one of the old CA's`);
      assert.equal(issued.get(end[name].serial)?.identity, `${TD}/${name}`);
      assert.deepEqual(end[name].certs.certificates[0]!.cert_chain[0]!.subject_alt_names.filter((s) => 'uri' in s), [{ uri: `${TD}/${name}` }]);
      assert.equal((await sidecar(name).trustedCas(TD))?.length, 2, `${name} still trusts the retiring CA while its certificates are valid`);
    }
    t.diagnostic(`runtime: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (e) {
    await report(t, load);
    throw e;
  } finally {
    await load.stop();
  }
});

test('control plane SIGKILLed under load: the proxies serve on, reconnect to its restart, and apply a change; not one request fails', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const started = Date.now();
  const connected = async () => Promise.all([sidecar('client').stat('control_plane.connected_state'), sidecar('server').stat('control_plane.connected_state')]);
  assert.deepEqual(await connected(), [1, 1], 'both proxies are connected to start with');

  const load = new HttpLoad({ ...LOAD, maxDurationMs: 120_000 });
  const phase = (p: string) => {
    load.phase = p;
    t.diagnostic(`${((Date.now() - started) / 1000).toFixed(1)} s: ${p}`);
  };
  try {
    phase('steady');
    load.start();
    // Before the change, the probe header means nothing: the main route (15 s timeout) answers after 1.5 s.
    const [before] = await Promise.all([probe(), sleep(2_000)]);
    assert.equal(before.status, 200, before.body);

    // --- the control plane dies without a word -----------------------------------------------------------
    await cp.kill();
    const killedAt = Date.now();
    phase('control plane dead');
    await until('both proxies noticed (control_plane.connected_state 0)', async () => (await connected()).every((s) => s === 0), 15_000);
    await load.burst(16);
    await sleep(Math.max(0, killedAt + OUTAGE_MS - Date.now()));

    // --- it comes back on the same data directory and ports ----------------------------------------------
    await cp.restart();
    phase('control plane restarted');
    await until('both proxies reconnected (control_plane.connected_state 1)', async () => (await connected()).every((s) => s === 1), RECONNECT_WAIT_MS, 250);
    phase('reconnected');
    // Meanwhile (no need to wait): the restarted control plane lists both proxies.
    const listed = until('the restarted control plane lists both proxies', async () => {
      const out = await cp.cli(['proxies', '--mesh', MESH, '--json']);
      if (out.code !== 0) return undefined;
      const ids = JSON.stringify(JSON.parse(out.stdout));
      return ids.includes(`${TD}/client`) && ids.includes(`${TD}/server`);
    }, 10_000, 500);
    listed.catch(() => {}); // awaited below; a rejection before then is not unhandled

    // --- a change through the API reaches the proxies: a route with a 500 ms timeout for the probe ---------
    await appmesh.send(new CreateRouteCommand({
      meshName: MESH, virtualRouterName: 'server-router', routeName: 'probe-timeout', spec: {
        priority: 0,
        httpRoute: {
          match: { prefix: '/', headers: [{ name: 'x-probe', match: { exact: 'short-timeout' } }] },
          action: { weightedTargets: [{ virtualNode: 'server', weight: 1 }] },
          timeout: { perRequest: { unit: 'ms', value: 500 } },
        },
      },
    }));
    phase('route added');
    let probes = 0;
    const after = await until('the client sidecar applies the new route (the probe times out: 504)', async () => {
      probes++;
      const r = await probe();
      return r.status === 504 ? r : probes >= 20 ? assert.fail(`the probe still answers ${r.status} after ${probes} attempts`) : undefined;
    }, 40_000, 250);
    assert.match(after.body, /upstream request timeout/);
    assert.ok(await listed);
    await sleep(2_000);
    phase('stopping');
    await load.stop();

    await report(t, load);
    assert.deepEqual(load.failures, [], 'no request failed');
    for (const p of ['steady', 'control plane dead', 'control plane restarted', 'route added']) {
      assert.ok((load.ok.get(p) ?? 0) >= MIN_PER_PHASE, `${load.ok.get(p) ?? 0} requests in phase ${p}`);
    }
    assert.ok((load.ok.get('control plane dead') ?? 0) >= 200, 'the proxies served through the outage');
    assert.deepEqual(await sslProblems(), {}, 'no handshake failed on either side of the mTLS hop');
    assert.equal(cp.starts, 2);
    t.diagnostic(`probe attempts until the change applied: ${probes}; runtime: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (e) {
    await report(t, load);
    if (!cp.running) t.diagnostic('the control plane is not running');
    else t.diagnostic(`control plane output: ${cp.output().slice(-3000)}`);
    throw e;
  } finally {
    await load.stop();
  }
});
