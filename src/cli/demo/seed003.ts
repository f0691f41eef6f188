// Seed 003, "Using mTLS with SPIFFE/SPIRE in AWS App Mesh on Amazon EKS" (the howto-k8s-mtls-sds-based
// walkthrough), replayed on loopback: front calls the color service, whose router picks red, green or blue by
// `color_header`; every hop between sidecars is mutual TLS with SPIFFE identities delivered over SDS. Each
// step is checked against what the seed shows. What stands for what:
//
// - EKS, the App Mesh controller, the Kubernetes resources -> `keymesh server` in this process; the calls the
//   controller made are real App Mesh API calls (inputs in examples/seed003/), with its resource names
//   (`front_howto-k8s-mtls-sds-based`, the ARNs the seed lists).
// - SPIRE's server with the trust domain howto-k8s-mtls-sds-based.aws -> keymesh's CA, the mesh's trust
//   domain set to that before its CA exists (`keymesh ca settings --trust-domain`).
// - `register` (one SPIRE entry per workload, selected by pod labels) -> a join token bound to one virtual
//   node; the proxy makes its key, sends a CSR and gets its SVID, `spiffe://<trust domain>/<node name>` (keymesh
//   derives the ID from the node's name, so the path is front_howto-k8s-mtls-sds-based where SPIRE's
//   registration said front). `spire-server entry show` -> `keymesh ca issued`. TTL 3600 as in the seed;
//   renewal at half-life -> the seed's auto-rotation.
// - The SPIRE agent feeding Envoy over SDS -> keymesh's proxy resolving the SDS certificate secret named by its
//   own SPIFFE ID locally (the key never leaves it) and the bundle secret (named by the trust domain) over ADS.
// - Pods, Kubernetes services and iptables -> an address of its own per workload (127.0.0.x) with the seed's
//   port 8080 for its app and App Mesh's 15000/15001 for its sidecar. Without iptables, `<service>:8080` of the
//   seed is the sidecar's ingress :15000 here, and front's app sends its request for the color service to its
//   sidecar's egress :15001 with the service's name in Host (seed003-apps.ts).
// - The curler pod -> this process: `curl -H "color_header: blue" front:8080` through front's sidecar, and
//   `curl -k https://color-blue:8080` done with node:tls (seed003-tls.ts), TLS 1.2 as the seed's curl spoke.
import { cliLine, type CallResult } from './api.ts';
import { describeAnswer, httpGet, readCerts, readStats, sleep, type HttpAnswer, type Stats } from './probe.ts';
import { columns } from './report.ts';
import { colorApp, frontApp } from './seed003-apps.ts';
import {
  COLORS, EXAMPLES_DIR, HEADER, hostname, MESH, nodeName, PORT, ROUTER, seed003Calls, SERVICE, spiffeId, TD_ID, TRUST_DOMAIN, WORKLOADS,
  type Color, type Workload,
} from './seed003-calls.ts';
import { describeProbe, probeWithoutClientCertificate, type TlsProbeResult } from './seed003-tls.ts';
import { freeLoopbackAddresses, startApp, startControlPlane, startProxy, StepFailed, type Proxy, type Stage, type Walkthrough, type WalkthroughResult } from './stage.ts';

const INGRESS_PORT = 15000;
const EGRESS_PORT = 15001;
/** The SVID lifetime the seed's entries show (TTL 3600), keymesh's default. */
const SVID_TTL_S = 3600;
/** The seed asks for blue; red and green are asked next the same way. */
const ORDER: readonly Color[] = ['blue', 'red', 'green'];
/** Loopback addresses tried for the four workloads (away from seed 004's, so both can run at once). */
const CANDIDATE_ADDRESSES = Array.from({ length: 20 }, (_v, i) => `127.0.0.${121 + i}`);
/** How long a check may take for the configuration to reach the proxies and show its effect. */
const SETTLE_MS = 30_000;
const POLL_MS = 200;

export const seed003: Walkthrough = {
  name: 'sds',
  seed: '003',
  title: 'mTLS with SPIFFE identities over SDS',
  run: (stage) => runSeed003(stage),
};

interface IssuedSvid {
  readonly serial: string;
  readonly spiffeId: string | null;
  readonly caId: string;
  readonly notAfter: number;
  readonly issuedAt: number;
  readonly revokedAt: number | null;
}

/** Polls `look` until `check` passes (null), at most SETTLE_MS; then fails the step with the last problem. */
async function settle<T>(stage: Stage, label: string, look: () => Promise<T>, check: (t: T) => string | null): Promise<{ value: T; waitedMs: number }> {
  const started = Date.now();
  for (;;) {
    const value = await look();
    const problem = check(value);
    if (problem === null) return { value, waitedMs: Date.now() - started };
    if (stage.closing) throw new Error(`${label}: interrupted`);
    if (Date.now() - started > SETTLE_MS) fail(stage, `${label} did not behave as the seed says: after ${SETTLE_MS / 1000} s, ${problem}`);
    await sleep(POLL_MS);
  }
}

function fail(stage: Stage, reason: string): never {
  stage.report.failed(reason);
  throw new StepFailed(reason);
}

const waited = (ms: number) => (ms >= 1000 ? `after ${(ms / 1000).toFixed(1)} s for the configuration to arrive` : undefined);

async function runSeed003(stage: Stage): Promise<WalkthroughResult> {
  const report = stage.report;
  report.title('keymesh demo: seed 003, mTLS with SPIFFE identities over SDS', [
    'front calls the color service, whose router sends each request to red, green or blue by its color_header.',
    'Every workload\'s sidecar gets a SPIFFE identity (an SVID) from keymesh\'s CA, as SPIRE gave one to each Envoy,',
    'and every hop between sidecars is mutual TLS. Everything runs in this process, on loopback, and is removed at the end.',
  ]);

  // --- setup: the control plane and the trust domain ---------------------------------------------------------
  report.section('Setup');
  const ips = await freeLoopbackAddresses(WORKLOADS.length, [PORT, INGRESS_PORT, EGRESS_PORT], CANDIDATE_ADDRESSES);
  const ip = Object.fromEntries(WORKLOADS.map((w, i) => [w, ips[i]!])) as Record<Workload, string>;
  const cp = await startControlPlane(stage);
  report.done('control plane', `App Mesh API ${cp.url}, identity endpoint ${cp.identityUrl}, xDS ${cp.xdsAddress}, data in ${cp.dataDir}`);
  const settings = await cp.api.admin<{ trustDomain: string; svidTtlMs: number }>('PUT', `/keymesh/v1/meshes/${MESH}/ca/settings`, { trustDomain: TRUST_DOMAIN });
  report.done('trust domain', `${settings.trustDomain}, SVIDs valid ${settings.svidTtlMs / 1000} s: what the seed's SPIRE server was installed with`);
  report.command(`keymesh ca settings --mesh ${MESH} --trust-domain ${TRUST_DOMAIN}`, [], `PUT /keymesh/v1/meshes/${MESH}/ca/settings: 200`);

  // --- step 1: the mesh ---------------------------------------------------------------------------------------
  report.section('Step 1/4: the mesh, as the App Mesh controller creates it', 'the seed\'s deploy.sh');
  report.line(`Inputs in ${EXAMPLES_DIR}/. Certificates and trust are SDS secret names: each workload's SPIFFE ID, and ${TD_ID} for the bundle.`);
  const created: string[][] = [];
  for (const call of seed003Calls()) {
    const result: CallResult = await cp.api.call(call.operation, call.input);
    report.command(cliLine(call.operation, call.input, `${EXAMPLES_DIR}/${call.file}`), [call.what], `${result.request}: ${result.status}`);
    const arn = arnOf(result);
    if (arn !== undefined && !call.operation.endsWith('Mesh') && call.operation !== 'CreateRoute') created.push([call.operation.replace(/^Create/, ''), arn]);
  }
  report.line('Their ARNs (what the seed\'s kubectl get lists):');
  for (const row of columns(created)) report.detail(row);
  report.ok(`as the seed lists them: virtual nodes front, red, green and blue, the router ${ROUTER} and the service ${SERVICE}`);

  // --- step 2: workloads and their identities ----------------------------------------------------------------
  report.section('Step 2/4: the workloads and their SPIFFE identities', 'the seed\'s register and spire-server entry show');
  for (const c of COLORS) await startApp(stage, `the ${c} app`, ip[c], PORT, colorApp(c));
  await startApp(stage, 'the front app', ip.front, PORT, frontApp({ egressHost: ip.front, egressPort: EGRESS_PORT, serviceAuthority: `${SERVICE}:${PORT}`, header: HEADER }));
  // One join token per workload (SPIRE's registration entry), then the proxy's own key, CSR and SVID.
  const proxies = Object.fromEntries(await Promise.all(WORKLOADS.map(async (w) => [w, await startProxy(stage, cp, {
    kind: 'virtualNode', mesh: MESH, name: nodeName(w), ip: ip[w], ingressPort: INGRESS_PORT, egressPort: EGRESS_PORT,
  })] as const))) as Record<Workload, Proxy>;
  for (const w of WORKLOADS) {
    const p = proxies[w];
    report.done(w, `app ${ip[w]}:${PORT} (${w === 'front' ? `asks ${SERVICE}:${PORT} through its sidecar` : `answers "${w}"`}); keymesh proxy ingress :${INGRESS_PORT}, egress :${EGRESS_PORT}, admin ${p.adminHost}:${p.adminPort}`);
  }

  const { certificates } = await cp.api.admin<{ certificates: IssuedSvid[] }>('GET', `/keymesh/v1/issued?mesh=${MESH}&unexpired=true`);
  const svidOf = new Map<Workload, IssuedSvid>();
  for (const w of WORKLOADS) {
    const mine = certificates.filter((c) => c.spiffeId === spiffeId(w) && c.revokedAt === null);
    if (mine.length !== 1) fail(stage, `step 2: ${spiffeId(w)} has ${mine.length} SVIDs, not one`);
    svidOf.set(w, mine[0]!);
  }
  // X.509 keeps whole seconds: notAfter is issuedAt + the lifetime, cut to the second below.
  const ttl = (s: IssuedSvid) => Math.ceil((s.notAfter - s.issuedAt) / 1000);
  report.command(`keymesh ca issued --mesh ${MESH}`, columns([
    ['SPIFFE ID', 'TTL', 'NOT AFTER', 'SERIAL'],
    ...WORKLOADS.map((w) => { const s = svidOf.get(w)!; return [spiffeId(w), String(ttl(s)), isoSeconds(s.notAfter), s.serial]; }),
  ]), 'spire-server entry show');
  for (const w of WORKLOADS) if (ttl(svidOf.get(w)!) !== SVID_TTL_S) fail(stage, `step 2: the SVID of ${w} lives ${ttl(svidOf.get(w)!)} s, not ${SVID_TTL_S}`);

  // What each proxy presents and trusts: its own SVID under the SDS name the spec gives, the trust domain's bundle.
  for (const w of WORKLOADS) {
    const p = proxies[w];
    const certs = await readCerts(p.adminHost, p.adminPort);
    const presented = certs.certificates.flatMap((c) => c.cert_chain);
    const trusted = certs.certificates.flatMap((c) => c.ca_cert);
    const own = presented.find((d) => d.subject_alt_names.some((n) => 'uri' in n && n.uri === spiffeId(w)));
    if (!own) fail(stage, `step 2: the proxy of ${w} presents no certificate for ${spiffeId(w)} (its /certs: ${JSON.stringify(certs)})`);
    if (own.serial_number !== svidOf.get(w)!.serial) fail(stage, `step 2: the proxy of ${w} presents serial ${own.serial_number}, not its SVID's ${svidOf.get(w)!.serial}`);
    const bundle = trusted.find((d) => d.subject_alt_names.some((n) => 'uri' in n && n.uri === TD_ID));
    if (!bundle) fail(stage, `step 2: the proxy of ${w} does not trust the bundle of ${TD_ID}`);
    report.command(`curl -s ${p.adminHost}:${p.adminPort}/certs`, [`presents ${spiffeId(w)} (serial ${own.serial_number}, until ${own.expiration_time}); trusts the CA of ${TD_ID}`], w);
  }
  report.ok(`as the seed's entries: one identity per workload in ${TD_ID}, TTL ${SVID_TTL_S}; each proxy holds its own SVID (key made there, never sent)`);
  report.line(`  Auto-rotation: each proxy renews its SVID at half its lifetime (about every ${SVID_TTL_S / 120} min, ±10%) with a fresh key; new handshakes use it.`);

  // --- step 3: through front ----------------------------------------------------------------------------------
  report.section('Step 3/4: through front, mutual TLS between the sidecars', 'the seed\'s curl -H "color_header: blue" front...:8080');
  const frontUrl = `http://${ip.front}:${INGRESS_PORT}/`;
  const frontCurl = (c: Color) => `curl -H "${HEADER}: ${c}" ${frontUrl}`;
  report.line(`front's service port 8080 is its sidecar's ingress :${INGRESS_PORT} here (what iptables did in the pod).`);
  const listenerSsl = (c: Color) => `listener.${ip[c]}_${INGRESS_PORT}.ssl`;
  const frontClusterSsl = (c: Color) => `cluster.cds_egress_${MESH}_${nodeName(c)}_http_${PORT}.ssl`;
  const statsOf = (w: Workload, usedOnly = true): Promise<Stats> => readStats(proxies[w].adminHost, proxies[w].adminPort, usedOnly);
  const answers = new Map<Color, HttpAnswer>();
  const rows3: string[][] = [];
  for (const c of ORDER) {
    // The full stats (not ?usedonly), so that ssl.no_certificate shows its 0.
    const p = proxies[c];
    const handshakes = (s: Stats) => s.get(`${listenerSsl(c)}.handshake`);
    const before = handshakes(await statsOf(c, false));
    const { value, waitedMs } = await settle(stage, `step 3 (${HEADER}: ${c})`, () => httpGet(frontUrl, 10_000, { [HEADER]: c }),
      (a) => (a.status === 200 && a.body.trim() === c ? null : `the request through front answers ${describeAnswer(a)}, not 200 ${c}`));
    answers.set(c, value);
    report.command(frontCurl(c), [describeAnswer(value, Infinity)], waited(waitedMs));
    const s = await statsOf(c, false);
    report.command(`curl -s ${p.adminHost}:${p.adminPort}/stats | grep -E '_${INGRESS_PORT}\\.ssl\\.(handshake|no_certificate):'`,
      orNone(s.grep(new RegExp(`_${INGRESS_PORT}\\.ssl\\.(handshake|no_certificate):`))), nodeName(c));
    const noCert = s.get(`${listenerSsl(c)}.no_certificate`);
    if (handshakes(s) <= before) fail(stage, `step 3: ${c}'s sidecar counts no new TLS handshake (${listenerSsl(c)}.handshake ${before} -> ${handshakes(s)})`);
    if (noCert !== 0) fail(stage, `step 3: ${c}'s sidecar counts ${noCert} handshakes without a client certificate`);
    rows3.push([c, `handshake ${before} -> ${handshakes(s)}`, `no_certificate ${noCert}`]);
  }
  const front = proxies.front;
  const frontStats = await statsOf('front');
  report.command(`curl -s '${front.adminHost}:${front.adminPort}/stats?usedonly' | grep ssl.handshake`, orNone(frontStats.grep(/ssl\.handshake/)), nodeName('front'));
  for (const c of COLORS) {
    if (frontStats.get(`${frontClusterSsl(c)}.handshake`) < 1) fail(stage, `step 3: front's sidecar counts no TLS handshake towards ${c} (${frontClusterSsl(c)}.handshake)`);
  }
  report.ok('as the seed says: blue through front, and red and green; each color\'s ssl.handshake rose while ssl.no_certificate stayed 0: front presented its SVID every time');

  // --- step 4: straight to blue, without a certificate -------------------------------------------------------
  report.section('Step 4/4: straight to blue without a client certificate', 'the seed\'s curl -k https://color-blue...:8080 -v');
  const blue = proxies.blue;
  const noCertCounter = `${listenerSsl('blue')}.fail_verify_no_cert`;
  const blueBefore4 = await statsOf('blue');
  const before4 = blueBefore4.get(noCertCounter);
  const blueUrl = `https://${ip.blue}:${INGRESS_PORT}/`;
  const probes: [string, TlsProbeResult][] = [];
  for (const [version, comment] of [['TLSv1.2', 'TLS 1.2, as the seed\'s curl; node:tls, no client certificate'], ['TLSv1.3', 'TLS 1.3, as today\'s curl']] as const) {
    const r = await probeWithoutClientCertificate(ip.blue, INGRESS_PORT, { maxVersion: version });
    report.command(`curl -k -v ${version === 'TLSv1.2' ? '--tls-max 1.2 ' : ''}${blueUrl}`, [describeProbe(r)], comment);
    probes.push([version, r]);
  }
  for (const [version, r] of probes) {
    if (r.outcome !== 'alert') fail(stage, `step 4: with ${version}, blue's sidecar did not refuse with a TLS alert: ${describeProbe(r)}`);
  }
  if (probes[0]![1].handshakeCompleted) fail(stage, 'step 4: with TLS 1.2 the handshake completed before blue\'s sidecar refused');
  const { value: after4 } = await settle(stage, 'step 4', () => statsOf('blue'),
    (s) => (s.get(noCertCounter) >= before4 + probes.length ? null : `${noCertCounter} is ${s.get(noCertCounter)}, not ${before4 + probes.length}`));
  report.command(`curl -s '${blue.adminHost}:${blue.adminPort}/stats?usedonly' | grep -E 'ssl\\.(fail_verify_no_cert|handshake)'`, orNone(after4.grep(/ssl\.(fail_verify_no_cert|handshake)/)), nodeName('blue'));
  if (after4.get(`${listenerSsl('blue')}.handshake`) !== blueBefore4.get(`${listenerSsl('blue')}.handshake`)) {
    fail(stage, 'step 4: blue\'s ssl.handshake rose: a connection without a client certificate was accepted');
  }
  report.ok(`as the seed says: STRICT mode refuses a client without a certificate in the TLS handshake (alert ${probes[0]![1].alert}); ssl.fail_verify_no_cert ${before4} -> ${after4.get(noCertCounter)}`);

  return {
    summary: [
      `front, red, green and blue speak mutual TLS with SPIFFE identities of ${TD_ID}, as at the end of seed 003.`,
      ...columns([
        ['step 1', 'the mesh', `${seed003Calls().length} App Mesh calls`],
        ['step 2', 'identities', `${WORKLOADS.length} SVIDs, TTL ${SVID_TTL_S}`],
        ...rows3.map(([c, hs, nc]) => ['step 3', `${HEADER}: ${c!}`, `${describeAnswer(answers.get(c as Color)!, 20)}; ${hs!}, ${nc!}`]),
        ['step 4', 'no client certificate', `${probes.map(([v, r]) => `${v} alert ${r.alert}`).join(', ')}; fail_verify_no_cert ${after4.get(noCertCounter)}`],
      ]),
    ],
    keep: [
      { comment: `through front (red, green, blue; front's app itself is at ${ip.front}:${PORT})`, commands: COLORS.map(frontCurl) },
      { comment: 'straight to blue without a client certificate: the handshake fails', commands: [`curl -k -v --tls-max 1.2 ${blueUrl}`] },
      {
        comment: 'the sidecars\' ssl stats and certificates (admin ports)',
        commands: [...COLORS.map((c) => `curl -s ${proxies[c].adminHost}:${proxies[c].adminPort}/stats | grep ${listenerSsl(c)}     # ${c}`), `curl -s ${front.adminHost}:${front.adminPort}/certs     # front`],
      },
      {
        comment: 'the App Mesh API with the AWS CLI, and the SVIDs (spire-server entry show)',
        commands: [
          cp.exportLine,
          `aws appmesh list-virtual-nodes --mesh-name ${MESH} --endpoint-url ${cp.url}`,
          `aws appmesh describe-virtual-node --mesh-name ${MESH} --virtual-node-name ${nodeName('blue')} --endpoint-url ${cp.url}`,
          `npx keymesh ca issued --mesh ${MESH} --endpoint ${cp.url}`,
          `npx keymesh proxies --mesh ${MESH} --endpoint ${cp.url}`,
        ],
      },
      { comment: `the DNS names in the SVIDs come from the nodes' service discovery (${hostname('blue')}, ...)`, commands: [`curl -s ${blue.adminHost}:${blue.adminPort}/certs`] },
    ],
  };
}

const isoSeconds = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function orNone(lines: readonly string[]): readonly string[] {
  return lines.length > 0 ? lines : ['(no output)'];
}

/** The resource's ARN in a Create answer (`metadata.arn`). */
function arnOf(result: CallResult): string | undefined {
  for (const value of [result.body, ...Object.values(result.body)]) {
    const arn = (value as { metadata?: { arn?: unknown } } | null)?.metadata?.arn;
    if (typeof arn === 'string') return arn;
  }
  return undefined;
}
