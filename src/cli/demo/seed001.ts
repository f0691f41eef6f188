// Seed 001, App Mesh's mutual TLS reference, "Migrating services communicating over plaintext", replayed on
// loopback under continuous traffic: a client virtual node (`my-client-node`) whose application keeps sending
// requests through its sidecar to the virtual service `backend.my-mesh.local`, served by `my-backend-node`. The mesh
// starts in plaintext; the seed's five steps then take the link to mutual TLS, each an App Mesh API call (step 3
// only looks), and after each the walkthrough shows the requests sent and failed so far, how many connections to
// the server are still plaintext, and the stats the seed says to verify (ssl.handshake, ssl.no_certificate,
// ssl.fail_verify_no_cert, ssl.fail_verify_san). Not one request may fail.
//
// Where the seed's world is a cloud, keymesh's counterparts stand in (examples/seed001/README.md says the same):
// - App Mesh, ECS/EKS and Envoy: `keymesh server` in this process and keymesh's proxy as the sidecars, each
//   workload on its own 127.0.0.x, so the stats read `listener.127.0.0.x_15000.ssl.*` for the seed's
//   `listener.0.0.0.0_15000.ssl.*`; Cloud Map: keymesh's endpoint registry (the server's sidecar registers itself).
// - The certificates: files from `keymesh certs` (the seed's "File System" source), under the /keys/ the example
//   files name. Files rather than SPIFFE SVIDs over SDS because the migration IS the certificate configuration:
//   each step adds one piece (the server's certificate, its trust and SANs, the client's certificate) in a call
//   one can read; with SVIDs every proxy would hold its certificate from the start.
// - The client application: the walkthrough's load loop (seed001-load.ts), 4 keep-alive connections at 150
//   requests/s to the client sidecar's egress listener with the virtual service as Host, as an application
//   redirected by iptables would send them; bounded in count and time.
// - "Confirm communication is happening over a TLS connection": the proxies' stats, keymesh's own
//   `keymesh.plaintext_cx_active` / `_total` (connections served without TLS), and a TLS client of the walkthrough's
//   (seed001-tls-probe.ts) doing by hand what `openssl s_client` would.
//
// The order of the seed's steps, under App Mesh's rules as keymesh implements them: a client without a client
// policy follows the server, so at step 1 (PERMISSIVE, which needs a certificate) my-client-node starts TLS at
// once, unvalidated and without a client certificate. Step 2 makes the server ask for and check client
// certificates; PERMISSIVE still takes a TLS client without one (as it takes plaintext), so the clients that step 4
// has not reached yet keep working. Step 3 confirms that the traffic is TLS and that the server's certificate and
// trust are what step 4's client policy will check; step 4 gives the client its certificate (ssl.no_certificate
// stops rising: the seed's check before going STRICT); step 5 refuses plaintext and certificate-less clients.
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { cliLine, versionOf } from './api.ts';
import { describeAnswer, httpGet, readStats, sleep, type Stats } from './probe.ts';
import { columns } from './report.ts';
import { APP_PORT, CLIENT, CLIENT_SAN, EXAMPLES_DIR, MESH, OTHER_SAN, SERVER, SERVICE, seed001Calls } from './seed001-mesh.ts';
import { LoadLoop, type LoadCounts } from './seed001-load.ts';
import { describeProbe, tlsProbe } from './seed001-tls-probe.ts';
import { freeLoopbackAddresses, makeCertificates, startApp, startControlPlane, startProxy, StepFailed, type Proxy, type Stage, type Walkthrough, type WalkthroughResult } from './stage.ts';

/** What the server's application answers. */
export const ANSWER = `hello from ${SERVER}`;
const INGRESS_PORT = 15000;
const EGRESS_PORT = 15001;
/**
 * Loopback addresses tried for the server and the client: a range of this walkthrough's own, so that it can run
 * beside the other walkthroughs (their tests run in parallel) without both taking an address that was free.
 */
const CANDIDATE_ADDRESSES = Array.from({ length: 20 }, (_v, i) => `127.0.0.${141 + i}`);
/** The client application's traffic: a few keep-alive connections at a steady rate, bounded. */
const LOAD = { connections: 4, ratePerSecond: 150, maxRequests: 30_000, maxMs: 150_000 } as const;
/** How long a step may take to reach the proxies and show its effect. */
const SETTLE_MS = 30_000;
const POLL_MS = 100;
/** How long the traffic runs after a step settled, to see that it keeps flowing the same way. */
const WINDOW_MS = 1_000;

export const seed001: Walkthrough = {
  name: 'migrate',
  seed: '001',
  title: 'migrating from plaintext through PERMISSIVE to STRICT under load',
  run: (stage) => runSeed001(stage),
};

/** One look at the mesh: the traffic's counts so far and both proxies' stats. */
interface Observation {
  readonly load: LoadCounts;
  readonly server: Stats;
  readonly client: Stats;
}

function backendApp(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('content-type', 'text/plain');
  res.end(req.url === '/ping' ? 'pong' : ANSWER);
}

async function runSeed001(stage: Stage): Promise<WalkthroughResult> {
  const report = stage.report;
  report.title('keymesh demo migrate: seed 001, migrating services communicating over plaintext to mutual TLS', [
    `${CLIENT}'s application sends ${LOAD.ratePerSecond} requests/s on ${LOAD.connections} keep-alive connections, through its sidecar, to ${SERVICE}`,
    `(${SERVER}). The seed's five steps take that link from plaintext to mutual TLS while the traffic runs; after each,`,
    'the requests sent and failed so far, the connections still in plaintext, and the TLS stats the seed names.',
    'Everything runs in this process, on loopback, and is removed at the end.',
  ]);

  // --- setup ------------------------------------------------------------------------------------------------
  report.section('Setup');
  const [serverIp, clientIp] = await freeLoopbackAddresses(2, [APP_PORT, INGRESS_PORT, EGRESS_PORT], CANDIDATE_ADDRESSES) as [string, string];
  const cp = await startControlPlane(stage);
  report.done('control plane', `App Mesh API ${cp.url}, identity endpoint ${cp.identityUrl}, xDS ${cp.xdsAddress}, data in ${cp.dataDir}`);

  const keys = join(stage.dir, 'keys');
  await makeCertificates(keys, [{ name: 'backend', dns: [SERVICE] }, { name: 'client', dns: [CLIENT_SAN] }, { name: 'other', dns: [OTHER_SAN] }]);
  report.done('certificates', `in ${keys} (/keys in the example files): ca_cert.pem; backend_* (DNS ${SERVICE}); client_* (DNS ${CLIENT_SAN}); other_* (DNS ${OTHER_SAN})`);

  const calls = seed001Calls(keys);
  const examples = seed001Calls();
  report.done('mesh', `in plaintext (inputs in ${EXAMPLES_DIR}/):`);
  for (const [i, call] of calls.setup.entries()) {
    const result = await cp.api.call(call.operation, call.input);
    report.command(cliLine(call.operation, examples.setup[i]!.input, `${EXAMPLES_DIR}/${call.file}`), [], `${result.request}: ${result.status}`);
  }

  const app = await startApp(stage, `${SERVER}'s application`, serverIp, APP_PORT, backendApp);
  report.done('server app', `${app.url}/ answers "${ANSWER}"`);
  const server = await startProxy(stage, cp, { kind: 'virtualNode', mesh: MESH, name: SERVER, ip: serverIp, ingressPort: INGRESS_PORT, egressPort: EGRESS_PORT });
  report.done(SERVER, `keymesh proxy on ${serverIp} (ingress :${INGRESS_PORT}, egress :${EGRESS_PORT}), admin ${server.adminHost}:${server.adminPort}`);
  const client = await startProxy(stage, cp, { kind: 'virtualNode', mesh: MESH, name: CLIENT, ip: clientIp, ingressPort: INGRESS_PORT, egressPort: EGRESS_PORT });
  report.done(CLIENT, `keymesh proxy on ${clientIp} (egress :${EGRESS_PORT}), admin ${client.adminHost}:${client.adminPort}`);

  // --- what the walkthrough reads ---------------------------------------------------------------------------
  const egressUrl = `http://${clientIp}:${EGRESS_PORT}/`;
  const hostHeader = `${SERVICE}:${APP_PORT}`;
  const ingressUrl = `http://${serverIp}:${INGRESS_PORT}/`;
  const listener = `listener.${serverIp}_${INGRESS_PORT}`;
  const cluster = `cluster.cds_egress_${MESH}_${SERVER}_http_${APP_PORT}`;
  const sv = (o: Observation, name: string) => o.server.get(`${listener}.${name}`);
  const handshakes = (o: Observation) => sv(o, 'ssl.handshake');
  const noCert = (o: Observation) => sv(o, 'ssl.no_certificate');
  const withCert = (o: Observation) => handshakes(o) - noCert(o);
  const plainOpen = (o: Observation) => sv(o, 'keymesh.plaintext_cx_active');
  /** Plaintext connections the walkthrough opened itself (its curl straight to the ingress), not the client. */
  let ownPlain = 0;
  const plainTotal = (o: Observation) => sv(o, 'keymesh.plaintext_cx_total');
  const clientPlain = (o: Observation) => plainTotal(o) - ownPlain;
  const clientHandshakes = (o: Observation) => o.client.get(`${cluster}.ssl.handshake`);
  const clientSanFail = (o: Observation) => o.client.get(`${cluster}.ssl.fail_verify_san`);
  // A request that met a keep-alive connection the server was closing (a drain) is sent again by the client's
  // sidecar on a new one (reset before any answer); the count says how often that saved a request.
  const secondTries = (o: Observation) => o.client.get(`${cluster}.upstream_rq_retry_success`);
  const file = (name: string) => join(keys, name);
  const clientCertificate = { certFile: file('client_cert_chain.pem'), keyFile: file('client_key.pem') };
  const otherCertificate = { certFile: file('other_cert_chain.pem'), keyFile: file('other_key.pem') };
  const probe = (certificate?: { certFile: string; keyFile: string }) => tlsProbe({
    host: serverIp, port: INGRESS_PORT, caFile: file('ca_cert.pem'), servername: SERVICE, ...(certificate ? { client: certificate } : {}),
  });
  const opensslLine = (certName?: string) => `openssl s_client -connect ${serverIp}:${INGRESS_PORT} -servername ${SERVICE} -verify_hostname ${SERVICE} -CAfile ${file('ca_cert.pem')}`
    + (certName ? ` -cert ${file(`${certName}_cert_chain.pem`)} -key ${file(`${certName}_key.pem`)}` : '');

  // The path must work before the traffic starts: the client's sidecar learns the server's address over EDS.
  const firstAnswer = await settleOn('the first request through the client\'s sidecar', async () => {
    const a = await httpGet(egressUrl, 5_000, { host: hostHeader });
    return { value: a, problem: a.status === 200 && a.body === ANSWER ? null : `it answers ${describeAnswer(a)}` };
  });
  report.done('path', `curl -H 'Host: ${hostHeader}' ${egressUrl}  ->  ${describeAnswer(firstAnswer)}`);

  const load = new LoadLoop({
    url: egressUrl, host: hostHeader, ...LOAD,
    check: (status, body) => (status === 200 && body === ANSWER ? null : `${status} ${body.trim().slice(0, 200)}`),
  });
  load.start();
  stage.onClose('the client application\'s traffic', async () => { await load.stop(); });
  report.done('traffic', `${CLIENT}'s application: ${LOAD.ratePerSecond} requests/s on ${LOAD.connections} keep-alive connections to ${egressUrl} (Host ${hostHeader}), at most ${LOAD.maxRequests} requests or ${LOAD.maxMs / 1000} s`);

  const observe = async (): Promise<Observation> => {
    const [serverStats, clientStats] = await Promise.all([readStats(server.adminHost, server.adminPort), readStats(client.adminHost, client.adminPort)]);
    const o = { load: load.counts, server: serverStats, client: clientStats };
    assertTrafficHealthy(o);
    return o;
  };

  /** Any failed request, or the traffic gone quiet (a bound reached), ends the walkthrough: that is the claim. */
  function assertTrafficHealthy(o: Observation): void {
    if (o.load.failed > 0) {
      const reasons = load.failures.slice(0, 5).map((f) => `at ${(f.atMs / 1000).toFixed(2)} s: ${f.reason}`).join('; ');
      const reason = `${o.load.failed} of ${o.load.sent} requests failed (${reasons})`;
      report.failed(reason);
      throw new StepFailed(`the migration did not keep the traffic whole: ${reason}`);
    }
    if (load.endedBy !== undefined && !stage.closing) {
      throw new StepFailed(`the client's traffic ended before the walkthrough did (${load.endedBy}, after ${o.load.sent} requests)`);
    }
  }

  /** Polls (bounded) until `look` says there is no problem; the last value otherwise, in the failure. */
  async function settleOn<T>(label: string, look: () => Promise<{ value: T; problem: string | null }>): Promise<T> {
    const started = Date.now();
    for (;;) {
      const { value, problem } = await look();
      if (problem === null) return value;
      if (stage.closing) throw new Error(`${label}: interrupted`);
      if (Date.now() - started > SETTLE_MS) {
        const reason = `${label} did not behave as the seed says: after ${SETTLE_MS / 1000} s, ${problem}`;
        report.failed(reason);
        throw new StepFailed(reason);
      }
      await sleep(POLL_MS);
    }
  }

  const settle = (label: string, check: (o: Observation) => string | null) => settleOn(label, async () => {
    const o = await observe();
    return { value: o, problem: check(o) };
  });

  /** The traffic runs WINDOW_MS more; then the same look again. */
  const afterWindow = async () => {
    await sleep(WINDOW_MS);
    return observe();
  };

  const serverGrep = `_${INGRESS_PORT}\\.(ssl\\.(handshake|no_certificate|fail_verify_no_cert|fail_verify_san)|keymesh\\.plaintext_cx)`;
  const clientGrep = `${cluster.replace('cluster.', '')}\\.(ssl\\.(handshake|fail_verify_san)|upstream_rq_retry)`;
  /** The traffic so far and the stats, as `curl .../stats | grep` shows them. */
  const show = (o: Observation, since?: Observation) => {
    const d = (now: number, before: number | undefined) => (before === undefined ? '' : ` (+${now - before})`);
    report.line(`traffic: ${o.load.sent} requests sent${d(o.load.sent, since?.load.sent)}, ${o.load.failed} failed; answered on a second try by ${CLIENT}'s sidecar: ${secondTries(o)}`);
    report.line(`plaintext connections from ${CLIENT} to ${SERVER}: ${plainOpen(o)} open, ${clientPlain(o)} opened in all`
      + `${ownPlain > 0 ? ` (and ${ownPlain} of the walkthrough's own curl)` : ''}; TLS handshakes: ${handshakes(o)}${d(handshakes(o), since && handshakes(since))},`
      + ` ${noCert(o)} of them without a client certificate`);
    const lines = (p: Proxy, stats: Stats, grep: string) => {
      const found = stats.grep(new RegExp(grep));
      report.command(`curl -s '${p.adminHost}:${p.adminPort}/stats?usedonly' | grep -E '${grep.replaceAll('\\\\', '\\')}'`, found.length ? found : ['(no output)'], p.name);
    };
    lines(server, o.server, serverGrep);
    lines(client, o.client, clientGrep);
  };

  const rows: string[][] = [['', 'step', 'requests (failed)', 'plaintext open/opened', 'TLS handshakes', 'without client cert']];
  const row = (label: string, title: string, o: Observation) => rows.push([label, title, `${o.load.sent} (${o.load.failed})`, `${plainOpen(o)}/${clientPlain(o)}`, String(handshakes(o)), String(noCert(o))]);

  // --- Part 1: plaintext ------------------------------------------------------------------------------------
  report.section('Before: plaintext', 'the seed\'s starting point: "services communicating over plaintext"');
  const plain = await settle('the plaintext start', (o) => (o.load.ok < 50 ? `only ${o.load.ok} requests answered yet`
    : plainOpen(o) < 1 ? `${SERVER} counts no open plaintext connection (keymesh.plaintext_cx_active ${plainOpen(o)})`
      : handshakes(o) > 0 ? `${SERVER} already counts ${handshakes(o)} TLS handshakes` : null));
  show(plain);
  report.ok(`the client's requests reach ${SERVER} in plaintext on ${plainOpen(plain)} keep-alive connection${plainOpen(plain) === 1 ? '' : 's'}; no ssl.* stats: the listener has no TLS yet`);
  row('before', 'plaintext', plain);

  /** Makes a step's call and prints it with what it changes. */
  const apply = async (i: number, change: string) => {
    const call = calls.steps[i]!.call!;
    const result = await cp.api.call(call.operation, call.input);
    const version = versionOf(result);
    report.command(cliLine(call.operation, examples.steps[i]!.call!.input, `${EXAMPLES_DIR}/${call.file}`), [
      `${result.request}: ${result.status}${version !== undefined ? `, version ${version}` : ''}`,
      change,
    ]);
  };
  const heading = (n: number, title: string, seedText: string) => report.section(`Step ${n}/5: ${title}`, `the seed: "${seedText}"`);

  // --- Step 1: PERMISSIVE -----------------------------------------------------------------------------------
  heading(1, 'PERMISSIVE on the server', 'Enable PERMISSIVE mode for the TLS configuration on the server endpoint');
  let before = await observe();
  await apply(0, `listener ${APP_PORT}: tls PERMISSIVE, certificate file backend_cert_chain.pem + backend_key.pem (App Mesh wants a certificate with any mode)`);
  const s1 = await settle('step 1 (PERMISSIVE)', (o) => (clientHandshakes(o) < 1 ? `${CLIENT} has made no TLS handshake yet`
    : plainOpen(o) > 0 ? `${plainOpen(o)} plaintext connection(s) still open to ${SERVER}` : null));
  const w1 = await afterWindow();
  show(w1, before);
  if (clientPlain(w1) !== clientPlain(s1)) fail(`step 1: ${plainTotal(w1) - plainTotal(s1)} plaintext connection(s) opened after the switch`);
  if (noCert(w1) !== handshakes(w1)) fail(`step 1: ${withCert(w1)} TLS handshake(s) came with a client certificate; ${CLIENT} has none`);
  report.ok(`PERMISSIVE takes plaintext and TLS; ${CLIENT}, without a client policy, follows the server (App Mesh's rule) into TLS at once: unvalidated,`
    + ` without a certificate (no_certificate = handshake = ${handshakes(w1)}); its plaintext connections: ${plainOpen(w1)} open, none opened in the last ${WINDOW_MS / 1000} s; 0 requests failed`);
  row('step 1', 'PERMISSIVE', w1);

  // --- Step 2: mutual TLS on the server ---------------------------------------------------------------------
  heading(2, 'mutual TLS on the server', 'Configure mutual TLS authentication on your server, specifying the server certificate, trust chain, and optionally the trusted SANs');
  before = await observe();
  await apply(1, `listener ${APP_PORT} tls: + validation: trust file ca_cert.pem, SAN exact ${CLIENT_SAN}; still PERMISSIVE`);
  await settle('step 2 (mutual TLS on the server)', (o) => (handshakes(o) <= handshakes(before)
    ? `no new TLS handshake at ${SERVER} since the call (the changed filter chain should have drained the client's connections)` : null));
  const w2 = await afterWindow();
  show(w2, before);
  const dHs2 = handshakes(w2) - handshakes(before);
  const dNoCert2 = noCert(w2) - noCert(before);
  if (dNoCert2 !== dHs2) fail(`step 2: of ${dHs2} new handshakes only ${dNoCert2} came without a certificate`);
  if (sv(w2, 'ssl.fail_verify_no_cert') !== sv(before, 'ssl.fail_verify_no_cert')) fail('step 2: the server refused a client for want of a certificate while PERMISSIVE');
  report.ok(`the server now asks for a client certificate and checks the one it gets; PERMISSIVE still takes a client without one: ${CLIENT}'s connections were`
    + ` drained and came back over TLS without a certificate (handshake +${dHs2}, no_certificate +${dNoCert2}, fail_verify_no_cert +0); 0 requests failed`);
  row('step 2', 'server mTLS', w2);

  // --- Step 3: confirm TLS ----------------------------------------------------------------------------------
  heading(3, 'confirm the communication is over TLS', 'Confirm communication is happening over a TLS connection');
  report.line('(no API call: the mesh is looked at)');
  before = await observe();
  const w3 = await afterWindow();
  show(w3, before);
  if (plainOpen(w3) !== 0 || clientPlain(w3) !== clientPlain(before)) fail(`step 3: plaintext connections to ${SERVER}: ${plainOpen(w3)} open, +${clientPlain(w3) - clientPlain(before)} in ${WINDOW_MS / 1000} s`);
  if (w3.load.ok <= before.load.ok) fail('step 3: no request went through in the window');
  report.ok(`the traffic is TLS: ${w3.load.sent - before.load.sent} requests in ${WINDOW_MS / 1000} s, no plaintext connection open or opened`);
  // By hand: the server's certificate and trust, as the client policy of step 4 will check them.
  const viaClientCert = await probe(clientCertificate);
  report.command(opensslLine('client'), [describeProbe(viaClientCert)], `as ${CLIENT_SAN}, then GET /`);
  if (!viaClientCert.ok || viaClientCert.status !== 200) fail(`step 3: a TLS client with ${CLIENT_SAN}'s certificate is not served: ${describeProbe(viaClientCert)}`);
  const sanBefore = sv(await observe(), 'ssl.fail_verify_san');
  const viaOther = await probe(otherCertificate);
  report.command(opensslLine('other'), [describeProbe(viaOther)], `as ${OTHER_SAN}, a name the server does not trust, then GET /`);
  const o3 = await settle('step 3 (an untrusted SAN)', (o) => (sv(o, 'ssl.fail_verify_san') > sanBefore ? null : `the server's ssl.fail_verify_san did not rise (${sv(o, 'ssl.fail_verify_san')})`));
  if (viaOther.ok && viaOther.status === 200) fail(`step 3: the server served a client certificate for ${OTHER_SAN}, which its SAN list does not name`);
  const plainProbe = await httpGet(ingressUrl);
  if (plainProbe.status === 200) ownPlain++;
  report.command(`curl ${ingressUrl}`, [describeAnswer(plainProbe)], 'plaintext, straight to the server\'s ingress');
  if (plainProbe.status !== 200) fail(`step 3: PERMISSIVE should still answer plaintext: ${describeAnswer(plainProbe)}`);
  report.ok(`the server's certificate checks out against ca_cert.pem as ${SERVICE} (${viaClientCert.ok ? viaClientCert.protocol : ''}), what step 4's client policy will require;`
    + ` it serves ${CLIENT_SAN}'s certificate and refuses ${OTHER_SAN}'s (ssl.fail_verify_san ${sanBefore} -> ${sv(o3, 'ssl.fail_verify_san')});`
    + ' a plaintext client still gets in (PERMISSIVE): the walkthrough\'s curl, no one else');
  row('step 3', 'confirm TLS', await observe());

  // --- Step 4: mutual TLS on the client ---------------------------------------------------------------------
  heading(4, 'mutual TLS on the client', 'Configure mutual TLS authentication on your clients, specifying the client certificate, trust chain, and optionally the trusted SANs');
  before = await observe();
  await apply(3, `backend ${SERVICE}: clientPolicy.tls: certificate file client_cert_chain.pem + client_key.pem, trust file ca_cert.pem, SAN exact ${SERVICE}`);
  const s4 = await settle('step 4 (mutual TLS on the client)', (o) => (withCert(o) <= withCert(before)
    ? `no TLS handshake with a client certificate at ${SERVER} yet (${withCert(o)})` : null));
  const w4 = await afterWindow();
  show(w4, before);
  if (noCert(w4) !== noCert(s4)) fail(`step 4: ${noCert(w4) - noCert(s4)} TLS connection(s) without a client certificate after the client got its certificate`);
  if (clientSanFail(w4) !== 0) fail(`step 4: ${CLIENT} refused the server's certificate ${clientSanFail(w4)} time(s) (ssl.fail_verify_san)`);
  report.ok(`the seed's check before STRICT: ssl.handshake rises (+${handshakes(w4) - handshakes(before)}) while ssl.no_certificate no longer does (${noCert(s4)}, +0 in the last`
    + ` ${WINDOW_MS / 1000} s): every TLS connection now comes with a client certificate; ${CLIENT} validates ${SERVICE} (its ssl.fail_verify_san 0); 0 requests failed`);
  row('step 4', 'client mTLS', w4);

  // --- Step 5: STRICT ---------------------------------------------------------------------------------------
  heading(5, 'STRICT on the server', 'Enable STRICT mode for the TLS configuration on the server endpoint');
  before = await observe();
  await apply(4, `listener ${APP_PORT} tls: mode STRICT (certificate and validation as in step 2)`);
  // Plaintext is refused once STRICT has reached the server: a request straight to its ingress tells when.
  const refusedPlain = await settleOn('step 5 (STRICT)', async () => {
    const a = await httpGet(ingressUrl, 5_000);
    if (a.status === 200) ownPlain++;
    return { value: a, problem: a.status === 200 ? 'a plaintext request to the server\'s ingress is still answered' : null };
  });
  report.command(`curl ${ingressUrl}`, [describeAnswer(refusedPlain)], 'plaintext, straight to the server\'s ingress');
  const noCertBefore = sv(await observe(), 'ssl.fail_verify_no_cert');
  const viaNoCert = await probe();
  report.command(opensslLine(), [describeProbe(viaNoCert)], 'TLS without a client certificate, then GET /');
  if (viaNoCert.ok && viaNoCert.status === 200) fail('step 5: STRICT served a TLS client without a certificate');
  const s5 = await settle('step 5 (a client without a certificate)', (o) => (sv(o, 'ssl.fail_verify_no_cert') > noCertBefore ? null
    : `the server's ssl.fail_verify_no_cert did not rise (${sv(o, 'ssl.fail_verify_no_cert')})`));
  const w5 = await afterWindow();
  show(w5, before);
  if (w5.load.ok <= s5.load.ok) fail('step 5: no request of the client went through after STRICT');
  if (plainOpen(w5) !== 0) fail(`step 5: ${plainOpen(w5)} plaintext connection(s) still open under STRICT`);
  report.ok(`STRICT: plaintext gets no answer and a TLS client without a certificate is refused (ssl.fail_verify_no_cert ${noCertBefore} -> ${sv(w5, 'ssl.fail_verify_no_cert')}),`
    + ` while ${CLIENT}'s requests keep flowing over mutual TLS: ${w5.load.sent - before.load.sent} since the call, 0 failed`);
  row('step 5', 'STRICT', w5);

  // --- the end ----------------------------------------------------------------------------------------------
  const last = await observe();
  const final = await load.stop();
  if (final.failed > 0) fail(`${final.failed} of ${final.sent} requests failed at the very end: ${load.failures.map((f) => f.reason).join('; ')}`);

  return {
    summary: [
      `${CLIENT} and ${SERVER} moved from plaintext to mutual TLS, as the seed's five steps say, under ${LOAD.ratePerSecond} requests/s:`,
      `${final.sent} requests, ${final.failed} failed. The server now takes only TLS with a client certificate its CA vouches for, named ${CLIENT_SAN}.`,
      `(${secondTries(last)} request${secondTries(last) === 1 ? '' : 's'} met a keep-alive connection the server was closing for a changed filter chain and got its answer`
        + ` on a second try by ${CLIENT}'s sidecar, as Envoy does for a reset before any answer; the application saw every request answered.)`,
      ...columns(rows),
    ],
    keep: [
      { comment: `a request of ${CLIENT}'s application, through its sidecar (mutual TLS to ${SERVER})`, commands: [`curl -H 'Host: ${hostHeader}' ${egressUrl}`] },
      {
        comment: `${SERVER}'s ingress by hand: plaintext is refused; mutual TLS with the client's certificate is served`,
        commands: [
          `curl ${ingressUrl}`,
          `curl --cacert ${file('ca_cert.pem')} --cert ${file('client_cert_chain.pem')} --key ${file('client_key.pem')} --resolve ${SERVICE}:${INGRESS_PORT}:${serverIp} https://${SERVICE}:${INGRESS_PORT}/`,
        ],
      },
      {
        comment: 'the proxies\' stats, as the seed reads them',
        commands: [
          `curl -s ${server.adminHost}:${server.adminPort}/stats | grep -E 'ssl|plaintext'     # ${SERVER}`,
          `curl -s ${client.adminHost}:${client.adminPort}/stats | grep ssl     # ${CLIENT}`,
        ],
      },
      {
        comment: `the App Mesh API with the AWS CLI (run from the repository; the example files say /keys/ for ${keys}/)`,
        commands: [
          cp.exportLine,
          `aws appmesh describe-virtual-node --mesh-name ${MESH} --virtual-node-name ${SERVER} --endpoint-url ${cp.url}`,
          `aws appmesh update-virtual-node --endpoint-url ${cp.url} --cli-input-json "$(sed 's|/keys/|${keys}/|g' ${EXAMPLES_DIR}/${calls.steps[1]!.call!.file})"   # back to PERMISSIVE`,
        ],
      },
      { comment: 'what each proxy ACKed, and the registered instances', commands: [`npx keymesh proxies --mesh ${MESH} --endpoint ${cp.url}`, `npx keymesh endpoints list --mesh ${MESH} --endpoint ${cp.url}`] },
    ],
  };

  function fail(reason: string): never {
    report.failed(reason);
    throw new StepFailed(`${reason} (not as the seed says)`);
  }
}

