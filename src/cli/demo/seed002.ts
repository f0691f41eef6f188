// Seed 002, "TLS with certificates from ACM", replayed on loopback: the colorteller (white) behind the
// ColorGateway, its listener in STRICT TLS with a managed certificate named by ARN, the gateway trusting the CA
// named by ARN. Where the seed uses AWS, keymesh's counterpart stands in (examples/seed002/README.md):
//   ACM Private CA (aws acm-pca create-certificate-authority, self-sign, import, create-permission)
//     -> the mesh's CA in keymesh server (`keymesh ca settings --key-type rsa-2048`, `keymesh ca init`),
//        an arn:aws:acm-pca:... ARN; keymesh renews its own managed certificates, no permission to grant;
//   ACM (aws acm request-certificate --certificate-authority-arn)
//     -> `keymesh ca request-certificate --ca ARN`, an arn:aws:acm:... ARN; key kept by keymesh;
//   ACM's managed renewal (aws acm renew-certificate, or automatic before expiry)
//     -> `keymesh ca renew-certificate ARN` (or automatic at two thirds of the lifetime), pushed over SDS;
//   ECS tasks, the NLB, Cloud Map DNS -> an app, keymesh proxy and keymesh gateway on their own 127.0.0.x,
//     the colorteller's sidecar registered in keymesh's endpoint registry;
//   the bastion's curl colorteller:9901/stats -> the proxies' admin on their own address, port 9901.
// Then, as the brief of issue 6 asks, the managed renewal under traffic, and the seed's appendix question
// (what may a proxy export) answered by what the proxies hold.
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import type { CertsJson } from '../../proxy/admin/certs.ts';
import { cliLine } from './api.ts';
import { describeAnswer, httpGet, readCerts, readStats, sleep, type HttpAnswer, type Stats } from './probe.ts';
import { columns } from './report.ts';
import {
  CERTIFICATE_DOMAIN, EXAMPLES_DIR, GATEWAY, MESH, NODE, PLACEHOLDERS, SEED_PORT, SERVICE, seed002Calls,
} from './seed002-calls.ts';
import { trafficAcrossRenewal, type Round } from './seed002-renewal.ts';
import { curlLine, httpsGet, normalizeSerial, type TlsTarget } from './seed002-tls.ts';
import {
  freeLoopbackAddresses, permittedPort, startApp, startControlPlane, startProxy, StepFailed, type Stage, type Walkthrough, type WalkthroughResult,
} from './stage.ts';

const COLOR = 'white';
/** Used for the listeners when this user may not listen on the seed's port 80. */
const FALLBACK_PORT = 8080;
const INGRESS_PORT = 15000;
const EGRESS_PORT = 15001;
/** The seed reads the colorteller's Envoy admin at colorteller...:9901. */
const ADMIN_PORT = 9901;
/** Loopback addresses tried for the colorteller and the gateway: a range of its own (the other walkthroughs use 101-200). */
const CANDIDATE_ADDRESSES = Array.from({ length: 20 }, (_v, i) => `127.0.0.${161 + i}`);
/** The seed's CA: KeyAlgorithm=RSA_2048, SigningAlgorithm=SHA256WITHRSA. */
const KEY_TYPE = 'rsa-2048';
const SETTLE_MS = 30_000;
const POLL_MS = 200;
/** The renewal under traffic: rounds before it, rounds in a row on the new certificate after it, bounds. */
const RENEWAL = { warmup: 5, settled: 5, maxRounds: 400, timeoutMs: 30_000 } as const;

const enc = encodeURIComponent;

interface CaAnswer {
  readonly arn: string;
  readonly status: string;
  readonly keyType: string;
  readonly trustDomain: string;
  readonly certPem: string;
}

interface ManagedCertificate {
  readonly arn: string;
  readonly caArn: string;
  readonly domainName: string;
  readonly subjectAlternativeNames: readonly string[];
  readonly serial: string;
  readonly notAfter: number;
  readonly renewedAt: number | null;
  readonly certChainPem: string;
}

/** The colorteller: its color on every path, and `/ping` for the listener's health check (as the seed's Go app). */
function colorteller(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('content-type', 'text/plain');
  res.end(req.url === '/ping' ? 'pong' : COLOR);
}

/** The serials of the certificates a proxy presents (its `/certs` cert_chain entries) with the names they hold. */
function presented(certs: CertsJson): { serial: string; names: string[] }[] {
  return certs.certificates.flatMap((c) => c.cert_chain.map((d) => ({
    serial: d.serial_number, names: d.subject_alt_names.map((n) => ('dns' in n ? n.dns : 'uri' in n ? n.uri : n.ip_address)),
  })));
}

function trusted(certs: CertsJson): string[] {
  return certs.certificates.flatMap((c) => c.ca_cert.map((d) => d.serial_number));
}

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);

export const seed002: Walkthrough = {
  name: 'acm',
  seed: '002',
  title: 'TLS with a managed certificate and trust by CA ARN (ACM)',
  run: (stage) => runSeed002(stage),
};

async function runSeed002(stage: Stage): Promise<WalkthroughResult> {
  const report = stage.report;
  report.title('keymesh demo acm: seed 002, TLS with certificates from ACM (keymesh\'s managed CA standing in)', [
    'A root CA and a managed certificate it issues, both named by ARN as in ACM; the colorteller terminates TLS',
    'with the certificate, the gateway validates it against the CA. Then a renewal under traffic, and who gets',
    'the key. Everything runs in this process, on loopback, and is removed at the end.',
  ]);
  const fail = (reason: string): never => {
    report.failed(reason);
    throw new StepFailed(reason);
  };

  // --- setup ------------------------------------------------------------------------------------------------
  report.section('Setup');
  const port = await permittedPort(CANDIDATE_ADDRESSES[0]!, SEED_PORT, FALLBACK_PORT);
  const [ctIp, gwIp] = await freeLoopbackAddresses(2, [port, INGRESS_PORT, EGRESS_PORT, ADMIN_PORT], CANDIDATE_ADDRESSES) as [string, string];
  const cp = await startControlPlane(stage);
  report.done('control plane', `App Mesh API ${cp.url}, identity endpoint ${cp.identityUrl}, xDS ${cp.xdsAddress}, data in ${cp.dataDir}`);
  report.done('addresses', `colorteller ${ctIp}, gateway ${gwIp}; listeners on port ${port}${port === SEED_PORT ? ' as in the seed'
    : ` (the seed's ${SEED_PORT} needs privileges here, so the specs say ${port})`}, admin :${ADMIN_PORT} on each`);
  const connection = `--endpoint ${cp.url}`;

  // --- Step 1: the root CA ------------------------------------------------------------------------------------
  report.section('Step 1/5: a root certificate authority', 'the seed: aws acm-pca create-certificate-authority, self-sign, import');
  report.line('# the seed: aws acm-pca create-certificate-authority --certificate-authority-type ROOT \\');
  report.line(`#   --certificate-authority-configuration "KeyAlgorithm=RSA_2048, SigningAlgorithm=SHA256WITHRSA, Subject={..., CommonName=${'${SERVICES_DOMAIN}'}}"`);
  report.line('#   then get-certificate-authority-csr, issue-certificate (RootCACertificate/V1), import-certificate-authority-certificate,');
  report.line('#   create-permission --principal acm.amazonaws.com. keymesh makes and self-signs the root in one call, and renews');
  report.line('#   its managed certificates itself: there is no permission to grant.');
  const settings = await cp.api.admin<{ keyType: string }>('PUT', `/keymesh/v1/meshes/${enc(MESH)}/ca/settings`, { keyType: KEY_TYPE });
  report.command(`keymesh ca settings --mesh ${MESH} --key-type ${KEY_TYPE} ${connection}`, [`keyType: ${settings.keyType}`]);
  const ca = await cp.api.admin<CaAnswer>('POST', `/keymesh/v1/meshes/${enc(MESH)}/ca`);
  const caCert = new X509Certificate(ca.certPem);
  const caKey = caCert.publicKey.asymmetricKeyDetails;
  report.command(`keymesh ca init --mesh ${MESH} ${connection}`, [
    `arn: ${ca.arn}`,
    `status: ${ca.status}, trust domain ${ca.trustDomain}, key ${ca.keyType}, serial ${normalizeSerial(caCert.serialNumber)}, valid until ${day(Date.parse(caCert.validTo))}`,
  ]);
  report.command(`export ROOT_CA_ARN=${ca.arn}`);
  if (!/^arn:aws:acm-pca:[^:]+:\d{12}:certificate-authority\/[^/]+$/.test(ca.arn)) fail(`step 1: the CA's ARN ${ca.arn} is not an ACM Private CA ARN`);
  if (ca.status !== 'active') fail(`step 1: the CA is ${ca.status}, not active`);
  if (!caCert.ca || caCert.issuer !== caCert.subject || !caCert.verify(caCert.publicKey)) fail('step 1: the CA certificate is not a self-signed CA certificate');
  if (caCert.publicKey.asymmetricKeyType !== 'rsa' || caKey?.modulusLength !== 2048) fail(`step 1: the CA key is ${caCert.publicKey.asymmetricKeyType} ${caKey?.modulusLength ?? ''}, not RSA 2048`);
  report.ok('as the seed: a self-signed root CA with an RSA 2048 key, active, named by an ACM Private CA ARN');

  // --- Step 2: the managed certificate ------------------------------------------------------------------------
  report.section('Step 2/5: a managed certificate from that CA', 'the seed: aws acm request-certificate');
  report.line(`# the seed: aws acm request-certificate --domain-name "*.${'${SERVICES_DOMAIN}'}" --certificate-authority-arn ${'${ROOT_CA_ARN}'}`);
  const cert = await cp.api.admin<ManagedCertificate>('POST', '/keymesh/v1/managed-certificates', { mesh: MESH, caArn: ca.arn, domainName: CERTIFICATE_DOMAIN });
  const leaf = new X509Certificate(cert.certChainPem);
  report.command(`keymesh ca request-certificate --mesh ${MESH} --domain-name '${CERTIFICATE_DOMAIN}' --ca $ROOT_CA_ARN ${connection}`, [
    `arn: ${cert.arn}`,
    `names ${cert.subjectAlternativeNames.join(', ')}; serial ${cert.serial}; valid until ${day(cert.notAfter)}; issued by ${cert.caArn}`,
  ]);
  report.command(`export CERTIFICATE_ARN=${cert.arn}`);
  if (!/^arn:aws:acm:[^:]+:\d{12}:certificate\/[^/]+$/.test(cert.arn)) fail(`step 2: the certificate's ARN ${cert.arn} is not an ACM ARN`);
  if (cert.caArn !== ca.arn) fail(`step 2: the certificate was issued by ${cert.caArn}, not ${ca.arn}`);
  if (!cert.subjectAlternativeNames.includes(CERTIFICATE_DOMAIN) || !leaf.checkHost(SERVICE)) fail(`step 2: the certificate does not cover ${SERVICE} (names: ${cert.subjectAlternativeNames.join(', ')})`);
  if (!leaf.checkIssued(caCert) || !leaf.verify(caCert.publicKey)) fail('step 2: the certificate is not signed by the CA');
  report.ok(`as the seed: a certificate for ${CERTIFICATE_DOMAIN} (so ${SERVICE}), signed by the CA; keymesh keeps its key`);

  // --- Step 3: the mesh ---------------------------------------------------------------------------------------
  report.section('Step 3/5: the mesh', 'the seed: ./mesh/mesh.sh up');
  const arns = { certificateArn: cert.arn, caArn: ca.arn };
  const calls = seed002Calls(arns, port);
  report.line(`# inputs in ${EXAMPLES_DIR}/; they say ${PLACEHOLDERS.certificateArn} and ${PLACEHOLDERS.caArn} where the ARNs go${port === SEED_PORT ? '' : `, and port ${SEED_PORT} (here ${port})`}`);
  for (const call of calls) {
    const result = await cp.api.call(call.operation, call.input);
    const uses = call.file === 'colorteller-white-vn.json' ? `listener ${port}: tls STRICT, certificate acm $CERTIFICATE_ARN; DNS ${SERVICE}`
      : call.file === 'color-gateway-vgw.json' ? `backendDefaults.clientPolicy.tls.validation.trust.acm: [$ROOT_CA_ARN]` : undefined;
    report.command(cliLine(call.operation, {}, `${EXAMPLES_DIR}/${call.file}`), uses ? [uses] : [], `${result.request}: ${result.status}`);
  }
  report.ok('the App Mesh API takes the specs: both ARNs name things that exist (an unknown ARN is a NotFoundException)');

  // --- Step 4: deploy and test --------------------------------------------------------------------------------
  report.section('Step 4/5: deploy and check the TLS handshake', 'the seed: ecs-service.sh, curl /color, the Envoy stats');
  const app = await startApp(stage, 'the colorteller app', ctIp, port, colorteller);
  report.done('colorteller app', `${app.url}/color answers "${COLOR}", /ping "pong" (the listener's health check)`);
  const ct = await startProxy(stage, cp, { kind: 'virtualNode', mesh: MESH, name: NODE, ip: ctIp, ingressPort: INGRESS_PORT, egressPort: EGRESS_PORT, adminPort: ADMIN_PORT });
  report.done(NODE, `keymesh proxy on ${ctIp} (ingress :${INGRESS_PORT}, egress :${EGRESS_PORT}), admin ${ct.adminHost}:${ct.adminPort}`);
  const gw = await startProxy(stage, cp, { kind: 'virtualGateway', mesh: MESH, name: GATEWAY, ip: gwIp, ingressPort: INGRESS_PORT, egressPort: EGRESS_PORT, adminPort: ADMIN_PORT });
  report.done(GATEWAY, `keymesh gateway on ${gwIp}:${port} (the seed's NLB endpoint), admin ${gw.adminHost}:${gw.adminPort}`);

  const colorUrl = `http://${gwIp}${port === 80 ? '' : `:${port}`}/color`;
  const ctStatsUrl = `http://${ct.adminHost}:${ct.adminPort}/stats`;
  const gwStatsUrl = `http://${gw.adminHost}:${gw.adminPort}/stats`;
  const ctCertsUrl = `http://${ct.adminHost}:${ct.adminPort}/certs`;
  const gwCertsUrl = `http://${gw.adminHost}:${gw.adminPort}/certs`;
  const handshakeStat = `listener.${ctIp}_${INGRESS_PORT}.ssl.handshake`;
  const gwHandshakeStat = `cluster.cds_egress_${MESH}_${NODE}_http_${port}.ssl.handshake`;
  const ctStats = () => readStats(ct.adminHost, ct.adminPort, false);
  const gwStats = () => readStats(gw.adminHost, gw.adminPort, false);
  const isWhite = (a: HttpAnswer) => a.status === 200 && a.body.trim() === COLOR;
  const showStats = (url: string, stats: Stats, who: string) => {
    const lines = stats.grep(/ssl\.handshake/);
    report.command(`curl -s ${url} | grep ssl.handshake`, lines.length ? lines : ['(no output)'], who);
  };

  // The configuration takes a moment to reach the gateway: look until the request succeeds (bounded).
  const started = Date.now();
  let answer = await httpGet(colorUrl);
  while (!isWhite(answer)) {
    if (stage.closing) throw new Error('step 4: interrupted');
    if (Date.now() - started > SETTLE_MS) {
      report.command(`curl ${colorUrl}`, [describeAnswer(answer, Infinity)]);
      fail(`step 4 did not behave as the seed says: after ${SETTLE_MS / 1000} s, the request through the gateway answers ${describeAnswer(answer)}, not 200 ${COLOR}`);
    }
    await sleep(POLL_MS);
    answer = await httpGet(colorUrl);
  }
  const waited = Date.now() - started;
  report.command(`curl ${colorUrl}`, [describeAnswer(answer, Infinity)], waited >= 1000 ? `after ${(waited / 1000).toFixed(1)} s for the configuration to arrive` : undefined);
  const [ct4, gw4] = await Promise.all([ctStats(), gwStats()]);
  showStats(ctStatsUrl, ct4, `${NODE}; the seed: listener.0.0.0.0_15000.ssl.handshake: 1`);
  showStats(gwStatsUrl, gw4, GATEWAY);
  const handshakes4 = ct4.get(handshakeStat);
  if (handshakes4 < 1) fail(`step 4 did not behave as the seed says: the colorteller counts no TLS handshake (${handshakeStat}: ${handshakes4})`);
  if (gw4.get(gwHandshakeStat) < 1) fail(`step 4: the gateway counts no TLS handshake to the colorteller (${gwHandshakeStat}: ${gw4.get(gwHandshakeStat)})`);
  const ctCerts4 = await readCerts(ct.adminHost, ct.adminPort);
  const served4 = presented(ctCerts4).find((p) => p.names.includes(CERTIFICATE_DOMAIN));
  report.command(`curl -s ${ctCertsUrl}`, [served4 ? `presents serial ${served4.serial} (${served4.names.join(', ')})` : 'presents no certificate for the domain'], NODE);
  if (served4?.serial !== cert.serial) fail(`step 4: the colorteller presents ${served4?.serial ?? 'nothing'}, not the managed certificate ${cert.serial}`);
  report.ok(`as the seed says: "${COLOR}", and ${handshakeStat}: ${handshakes4}: the gateway reached the colorteller over TLS with the ACM-style certificate, validated against the CA`);

  // --- Step 5: managed renewal --------------------------------------------------------------------------------
  report.section('Step 5/5: managed renewal under traffic', 'the seed: "ACM will automatically renew ... App Mesh will automatically distribute"');
  const caFile = join(stage.dir, 'root-ca.pem');
  const { bundlePem } = await cp.api.admin<{ bundlePem: string }>('GET', `/keymesh/v1/meshes/${enc(MESH)}/bundle`);
  writeFileSync(caFile, bundlePem, { mode: 0o644 });
  const target: TlsTarget = { ip: ctIp, port: INGRESS_PORT, serverName: SERVICE, caPem: bundlePem };
  report.command(`keymesh ca bundle --mesh ${MESH} ${connection} > ${caFile}`, [], 'the seed: aws acm-pca get-certificate-authority-certificate');
  report.line(`# each round: curl ${colorUrl} (through the gateway, its pooled TLS connection), and`);
  report.line(`#   ${curlLine(target, caFile, '/color')} (a new handshake each time)`);
  report.line('# the seed: aws acm renew-certificate --certificate-arn $CERTIFICATE_ARN (ACM also renews on its own before expiry;');
  report.line('#   keymesh at two thirds of the lifetime)');
  const ctBefore = await ctStats();
  const round = async (): Promise<Round> => {
    const [viaGateway, direct] = await Promise.all([httpGet(colorUrl), httpsGet(target, '/color')]);
    const problems = [
      ...(isWhite(viaGateway) ? [] : [`through the gateway: ${describeAnswer(viaGateway)}`]),
      ...(direct.status === 200 && direct.body.trim() === COLOR ? [] : [`direct TLS: ${direct.status === 0 ? `no answer: ${direct.error ?? ''}` : `${direct.status} ${direct.body}`}`]),
    ];
    return { ok: problems.length === 0, serial: direct.serial, ...(problems.length ? { problem: problems.join('; ') } : {}) };
  };
  const traffic = await trafficAcrossRenewal({
    round,
    renew: () => cp.api.admin<ManagedCertificate>('POST', `/keymesh/v1/managed-certificates/${enc(cert.arn)}/renew`),
    newSerial: (r) => r.serial,
    ...RENEWAL,
  }).catch((e: unknown) => fail(`step 5 did not behave as the seed says: ${(e as Error).message}`));
  const renewed = traffic.renewed;
  report.command(`keymesh ca renew-certificate $CERTIFICATE_ARN ${connection}`, [
    `serial ${cert.serial} -> ${renewed.serial}; valid until ${day(renewed.notAfter)}; same ARN, new key`,
  ], `sent after round ${RENEWAL.warmup}`);
  const requests = traffic.rounds.length;
  report.line(`${requests} rounds in ${(traffic.elapsedMs / 1000).toFixed(1)} s: ${requests - traffic.failed.length}/${requests} "${COLOR}" through the gateway and over direct TLS, ${traffic.failed.length} failed`);
  report.line(`new handshakes got: ${traffic.runs.map((r) => `serial ${r.serial} x${r.rounds}`).join(', then ')}`);
  const [ctAfter, ctCerts5] = await Promise.all([ctStats(), readCerts(ct.adminHost, ct.adminPort)]);
  const served5 = presented(ctCerts5).find((p) => p.names.includes(CERTIFICATE_DOMAIN));
  report.command(`curl -s ${ctCertsUrl}`, [served5 ? `presents serial ${served5.serial} (${served5.names.join(', ')})` : 'presents no certificate for the domain'], NODE);
  showStats(ctStatsUrl, ctAfter, NODE);
  const newHandshakes = ctAfter.get(handshakeStat) - ctBefore.get(handshakeStat);
  if (traffic.failed.length > 0) fail(`step 5: ${traffic.failed.length} of ${requests} rounds failed during the renewal, first: ${traffic.failed[0]!.problem ?? ''}`);
  if (renewed.serial === cert.serial) fail('step 5: the renewal kept the old serial');
  if (traffic.runs.length !== 2 || traffic.runs[0]!.serial !== cert.serial || traffic.runs[1]!.serial !== renewed.serial) {
    fail(`step 5: the handshakes did not go from the old certificate to the new one once and for good: ${traffic.runs.map((r) => `${r.serial} x${r.rounds}`).join(', ')}`);
  }
  if (served5?.serial !== renewed.serial) fail(`step 5: the colorteller's /certs shows ${served5?.serial ?? 'nothing'}, not the renewed ${renewed.serial}`);
  if (newHandshakes < requests) fail(`step 5: ${handshakeStat} rose by ${newHandshakes}, fewer than the ${requests} direct handshakes`);
  report.ok(`renewed and delivered over SDS with no failed request: the old certificate until the switch, then the new one (${handshakeStat} +${newHandshakes})`);

  // --- the seed's question ------------------------------------------------------------------------------------
  report.section('The seed\'s question: what does a proxy need to get the certificate and its key?');
  report.line('# the seed: an IAM role with acm:ExportCertificate (the key) and acm-pca:GetCertificateAuthorityCertificate (the CA),');
  report.line('#   and appmesh:StreamAggregatedResources. In keymesh: a proxy proves its identity (a SPIFFE certificate from a');
  report.line('#   single-use join token) on its mTLS xDS stream; the control plane sends a certificate and its key only to the');
  report.line('#   proxies whose own spec names that ARN, and the CA certificate to those whose spec trusts that CA ARN.');
  const [ctCerts, gwCerts] = await Promise.all([readCerts(ct.adminHost, ct.adminPort), readCerts(gw.adminHost, gw.adminPort)]);
  const ctPresents = presented(ctCerts).filter((p) => p.names.includes(CERTIFICATE_DOMAIN));
  const gwPresents = presented(gwCerts).filter((p) => p.names.includes(CERTIFICATE_DOMAIN));
  report.command(`curl -s ${ctCertsUrl}`, [`presents ${ctPresents.map((p) => p.serial).join(', ') || 'nothing'} (${CERTIFICATE_DOMAIN}): it holds the key`], NODE);
  report.command(`curl -s ${gwCertsUrl}`, [
    gwPresents.length ? `presents ${gwPresents.map((p) => p.serial).join(', ')}` : `presents nothing for ${CERTIFICATE_DOMAIN}; trusts the CA ${normalizeSerial(caCert.serialNumber)}`,
  ], GATEWAY);
  if (ctPresents.length !== 1 || ctPresents[0]!.serial !== renewed.serial) fail(`the question: the colorteller does not present the renewed certificate ${renewed.serial}`);
  if (gwPresents.length) fail(`the question: the gateway holds the colorteller's certificate (${gwPresents.map((p) => p.serial).join(', ')}), though its spec does not name it`);
  if (!trusted(gwCerts).includes(normalizeSerial(caCert.serialNumber))) fail('the question: the gateway does not trust the CA its spec names');
  report.ok('only the colorteller, whose listener names $CERTIFICATE_ARN, got the certificate and key; the gateway got the CA');

  return {
    summary: [
      `The gateway reaches the colorteller over TLS with a managed certificate, renewed under traffic, as seed 002 with ACM.`,
      ...columns([
        ['step 1', 'root CA', ca.arn],
        ['step 2', 'managed certificate', `${cert.arn}, serial ${cert.serial}`],
        ['step 3', 'mesh', `${MESH}: ${NODE} STRICT TLS (acm), ${GATEWAY} trusts the CA ARN`],
        ['step 4', 'curl /color', `200 ${COLOR}, ${handshakeStat}: ${handshakes4}`],
        ['step 5', 'renewal', `serial ${cert.serial} -> ${renewed.serial} under traffic: ${requests} rounds, ${traffic.failed.length} failed`],
        ['', 'question', 'key only to the colorteller; CA to the gateway'],
      ]),
    ],
    keep: [
      { comment: `a request through the gateway (the colorteller answers ${COLOR})`, commands: [`curl ${colorUrl}`] },
      { comment: 'straight to the colorteller\'s TLS listener, trusting only the CA (each one a new handshake)', commands: [curlLine(target, caFile, '/color')] },
      {
        comment: 'the proxies\' stats and certificates, as the seed reads them from the admin port',
        commands: [`curl -s ${ctStatsUrl} | grep ssl.handshake     # ${NODE}`, `curl -s ${ctCertsUrl}     # ${NODE}`, `curl -s ${gwCertsUrl}     # ${GATEWAY}`],
      },
      {
        comment: 'renew again and watch the serial change (keymesh ca takes the same credentials as the AWS CLI)',
        commands: [cp.exportLine, `npx keymesh ca renew-certificate ${renewed.arn} ${connection}`, `npx keymesh ca certificates --mesh ${MESH} ${connection}`],
      },
      {
        comment: 'the App Mesh API with the AWS CLI',
        commands: [`aws appmesh describe-virtual-node --mesh-name ${MESH} --virtual-node-name ${NODE} --endpoint-url ${cp.url}`,
          `aws appmesh describe-virtual-gateway --mesh-name ${MESH} --virtual-gateway-name ${GATEWAY} --endpoint-url ${cp.url}`],
      },
    ],
  };
}
