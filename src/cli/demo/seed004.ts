// Seed 004, "Configuring Mutual TLS with File Provided TLS Certificates", replayed on loopback: a virtual
// gateway in front of the colorteller service, certificate files from `keymesh certs` (the seed's certs.sh),
// the mesh created plain (mesh.sh up), then the seed's five updates (mesh.sh update_1..5), each a real App
// Mesh API call, followed by a request through the gateway and the proxies' stats, checked against what the
// seed says should happen. The calls' inputs are the files in examples/seed004/, with the seed's /keys/
// standing for the directory that holds the certificate files.
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { cliLine, versionOf, type OperationInput, type OperationName } from './api.ts';
import { describeAnswer, httpGet, readStats, sleep, type HttpAnswer, type Stats } from './probe.ts';
import { columns } from './report.ts';
import { freeLoopbackAddresses, makeCertificates, startApp, startControlPlane, startProxy, StepFailed, type Proxy, type Stage, type Walkthrough, type WalkthroughResult } from './stage.ts';

export const MESH = 'ColorApp-MutualTLS';
export const DOMAIN = 'appmesh-mtls.local';
export const NODE = 'colorteller-vn';
export const SERVICE = `colorteller.${DOMAIN}`;
export const GATEWAY = 'gateway-vgw';
export const ROUTE = 'colorteller-route';
/** What the colorteller answers (the seed's shows yellow; ours is white). */
export const COLOR = 'white';
/** The application's and the gateway's port, the sidecar's ingress and egress ports: the seed's. */
const APP_PORT = 9080;
const INGRESS_PORT = 15000;
const EGRESS_PORT = 15001;
/** Loopback addresses tried for the colorteller and the gateway, two by two. */
const CANDIDATE_ADDRESSES = Array.from({ length: 20 }, (_v, i) => `127.0.0.${101 + i}`);
/** How long a step may take for its configuration to reach the proxies and show its effect. */
const SETTLE_MS = 30_000;
const POLL_MS = 200;
/** Where the example files live, relative to the repository (what the printed `aws` lines name). */
export const EXAMPLES_DIR = 'examples/seed004';

/** One App Mesh call of the walkthrough, with the example file holding its --cli-input-json. */
export interface SeedCall {
  readonly operation: OperationName;
  readonly file: string;
  readonly input: OperationInput;
}

const listener9080 = { portMapping: { port: APP_PORT, protocol: 'http' } };
const cloudMap = { awsCloudMap: { namespaceName: DOMAIN, serviceName: 'colorteller' } };

/**
 * The seed's calls, with its `/keys/` paths under `keys` (the default keeps the seed's paths: that is what
 * the example files hold).
 */
export function seed004Calls(keys = '/keys'): { setup: SeedCall[]; steps: SeedCall[] } {
  const file = (name: string) => `${keys}/${name}`;
  const colortellerCert = { file: { certificateChain: file('colorteller_cert_chain.pem'), privateKey: file('colorteller_key.pem') } };
  const trustCa = { file: { certificateChain: file('ca_cert.pem') } };
  const gatewayPolicy = (san: string, withCertificate: boolean) => ({
    meshName: MESH,
    virtualGatewayName: GATEWAY,
    spec: {
      listeners: [listener9080],
      backendDefaults: {
        clientPolicy: {
          tls: {
            validation: { trust: trustCa, subjectAlternativeNames: { match: { exact: [san] } } },
            ...(withCertificate ? { certificate: { file: { certificateChain: file('gateway_cert_chain.pem'), privateKey: file('gateway_key.pem') } } } : {}),
          },
        },
      },
    },
  });
  return {
    setup: [
      { operation: 'CreateMesh', file: 'mesh.json', input: { meshName: MESH } },
      {
        operation: 'CreateVirtualNode', file: 'colorteller-vn.json',
        input: { meshName: MESH, virtualNodeName: NODE, spec: { listeners: [listener9080], serviceDiscovery: cloudMap } },
      },
      {
        operation: 'CreateVirtualService', file: 'colorteller-vs.json',
        input: { meshName: MESH, virtualServiceName: SERVICE, spec: { provider: { virtualNode: { virtualNodeName: NODE } } } },
      },
      {
        operation: 'CreateVirtualGateway', file: 'gateway-vgw.json',
        input: { meshName: MESH, virtualGatewayName: GATEWAY, spec: { listeners: [listener9080] } },
      },
      {
        operation: 'CreateGatewayRoute', file: 'colorteller-route.json',
        input: {
          meshName: MESH, virtualGatewayName: GATEWAY, gatewayRouteName: ROUTE,
          spec: { httpRoute: { match: { prefix: '/' }, action: { target: { virtualService: { virtualServiceName: SERVICE } } } } },
        },
      },
    ],
    steps: [
      {
        operation: 'UpdateVirtualNode', file: 'step1-colorteller-vn-strict-tls.json',
        input: {
          meshName: MESH, virtualNodeName: NODE,
          spec: { listeners: [{ ...listener9080, tls: { mode: 'STRICT', certificate: colortellerCert } }], serviceDiscovery: cloudMap },
        },
      },
      { operation: 'UpdateVirtualGateway', file: 'step2-gateway-vgw-client-policy-bad-san.json', input: gatewayPolicy(`bogus.${DOMAIN}`, false) },
      { operation: 'UpdateVirtualGateway', file: 'step3-gateway-vgw-client-policy-good-san.json', input: gatewayPolicy(SERVICE, false) },
      {
        operation: 'UpdateVirtualNode', file: 'step4-colorteller-vn-require-client-cert.json',
        input: {
          meshName: MESH, virtualNodeName: NODE,
          spec: {
            listeners: [{
              ...listener9080,
              tls: {
                mode: 'STRICT',
                certificate: colortellerCert,
                validation: { trust: trustCa, subjectAlternativeNames: { match: { exact: [`gateway.${DOMAIN}`] } } },
              },
            }],
            serviceDiscovery: cloudMap,
          },
        },
      },
      { operation: 'UpdateVirtualGateway', file: 'step5-gateway-vgw-client-cert.json', input: gatewayPolicy(SERVICE, true) },
    ],
  };
}

/** The colorteller: its color on every path, and `/ping` for health checks (as the seed's Go app). */
function colorteller(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('content-type', 'text/plain');
  res.end(req.url === '/ping' ? 'pong' : COLOR);
}

/** What one look at the mesh shows: the answer through the gateway and both proxies' stats. */
interface Observation {
  readonly answer: HttpAnswer;
  readonly colorteller: Stats;
  readonly gateway: Stats;
}

interface StatView {
  readonly who: 'colorteller' | 'gateway';
  /** The grep pattern as the seed writes it (`ssl.handshake`), also shown on the command line. */
  readonly grep: string;
}

interface StepDefinition {
  readonly title: string;
  /** The seed's own command for this step. */
  readonly seedCommand: string;
  /** In a few words, what the call changes. */
  readonly change: string;
  readonly stats: readonly StatView[];
  /** null when the mesh shows what the seed says (for now); otherwise what it shows instead. */
  check(now: Observation, before: Observation): string | null;
  /** What was seen, in the seed's terms, once check passed. */
  outcome(now: Observation, before: Observation): string;
  /** The summary row: outcome and the numbers that tell. */
  summary(now: Observation, before: Observation): string;
}

export const seed004: Walkthrough = {
  name: 'file',
  seed: '004',
  title: 'mutual TLS with file-provided certificates',
  run: (stage) => runSeed004(stage),
};

async function runSeed004(stage: Stage): Promise<WalkthroughResult> {
  const report = stage.report;
  report.title('keymesh demo: seed 004, mutual TLS with file-provided certificates', [
    'A virtual gateway in front of the colorteller service. Five App Mesh API calls take the link between them',
    'from plain HTTP to mutual TLS; after each, a request goes through the gateway and the proxies\' stats tell',
    'what happened, as in the seed. Everything runs in this process, on loopback, and is removed at the end.',
  ]);

  // --- setup ------------------------------------------------------------------------------------------------
  report.section('Setup');
  const [ctIp, gwIp] = await freeLoopbackAddresses(2, [APP_PORT, INGRESS_PORT, EGRESS_PORT], CANDIDATE_ADDRESSES) as [string, string];
  const cp = await startControlPlane(stage);
  report.done('control plane', `App Mesh API ${cp.url}, identity endpoint ${cp.identityUrl}, xDS ${cp.xdsAddress}, data in ${cp.dataDir}`);

  const keys = join(stage.dir, 'keys');
  await makeCertificates(keys, [{ name: 'colorteller', dns: [SERVICE] }, { name: 'gateway', dns: [`gateway.${DOMAIN}`] }]);
  report.done('certificates', `in ${keys} (the seed's /keys): ca_cert.pem; colorteller_* (DNS ${SERVICE}); gateway_* (DNS gateway.${DOMAIN})`);

  const calls = seed004Calls(keys);
  const examples = seed004Calls();
  report.done('mesh', `plain HTTP, as the seed's mesh.sh up (inputs in ${EXAMPLES_DIR}/, /keys/ = ${keys}/):`);
  for (const [i, call] of calls.setup.entries()) {
    const result = await cp.api.call(call.operation, call.input);
    report.command(cliLine(call.operation, examples.setup[i]!.input, `${EXAMPLES_DIR}/${call.file}`), [], `${result.request}: ${result.status}`);
  }

  const app = await startApp(stage, 'the colorteller app', ctIp, APP_PORT, colorteller);
  report.done('colorteller app', `${app.url}/ answers "${COLOR}"`);
  const ct = await startProxy(stage, cp, { kind: 'virtualNode', mesh: MESH, name: NODE, ip: ctIp, ingressPort: INGRESS_PORT, egressPort: EGRESS_PORT });
  report.done(NODE, `keymesh proxy on ${ctIp} (ingress :${INGRESS_PORT}, egress :${EGRESS_PORT}), admin ${ct.adminHost}:${ct.adminPort}`);
  const gw = await startProxy(stage, cp, { kind: 'virtualGateway', mesh: MESH, name: GATEWAY, ip: gwIp, ingressPort: INGRESS_PORT, egressPort: EGRESS_PORT });
  report.done(GATEWAY, `keymesh gateway on ${gwIp}:${APP_PORT}, admin ${gw.adminHost}:${gw.adminPort}`);

  // --- the stats the seed reads -----------------------------------------------------------------------------
  const gatewayUrl = `http://${gwIp}:${APP_PORT}/`;
  const ctListener = `listener.${ctIp}_${INGRESS_PORT}.ssl`;
  const gwCluster = `cluster.cds_egress_${MESH}_${NODE}_http_${APP_PORT}.ssl`;
  const proxies: Record<StatView['who'], Proxy> = { colorteller: ct, gateway: gw };
  const observe = async (): Promise<Observation> => {
    const answer = await httpGet(gatewayUrl);
    const [colortellerStats, gatewayStats] = await Promise.all([readStats(ct.adminHost, ct.adminPort), readStats(gw.adminHost, gw.adminPort)]);
    return { answer, colorteller: colortellerStats, gateway: gatewayStats };
  };
  const succeeded = (o: Observation) => o.answer.status === 200 && o.answer.body.trim() === COLOR;
  const expectSuccess = (o: Observation) => (succeeded(o) ? null : `the request through the gateway answers ${describeAnswer(o.answer)}, not 200 ${COLOR}`);
  const expectFailure = (o: Observation) => (o.answer.status !== 200 ? null : `the request through the gateway still succeeds (${describeAnswer(o.answer)})`);
  const hs = (o: Observation) => o.colorteller.get(`${ctListener}.handshake`);
  const noCert = (o: Observation) => o.colorteller.get(`${ctListener}.no_certificate`);
  const noCertFail = (o: Observation) => o.colorteller.get(`${ctListener}.fail_verify_no_cert`);
  const gwHs = (o: Observation) => o.gateway.get(`${gwCluster}.handshake`);
  const sanFail = (o: Observation) => o.gateway.get(`${gwCluster}.fail_verify_san`);

  /** Prints an observation the way the seed shows it: curl through the gateway, then curl | grep on the stats. */
  const show = (o: Observation, views: readonly StatView[], waitedMs?: number) => {
    report.command(`curl ${gatewayUrl}`, [describeAnswer(o.answer, Infinity)], waitedMs !== undefined && waitedMs >= 1000 ? `after ${(waitedMs / 1000).toFixed(1)} s for the configuration to arrive` : undefined);
    for (const v of views) {
      const p = proxies[v.who];
      const lines = o[v.who].grep(new RegExp(v.grep.replaceAll('.', '\\.')));
      report.command(`curl -s '${p.adminHost}:${p.adminPort}/stats?usedonly' | grep ${v.grep}`, lines.length ? lines : ['(no output)'], p.name);
    }
  };

  /** Looks until `check` passes (bounded): the configuration takes a moment to reach the proxies. */
  const settle = async (label: string, step: Pick<StepDefinition, 'check' | 'stats'>, before: Observation) => {
    const started = Date.now();
    for (;;) {
      const now = await observe();
      const problem = step.check(now, before);
      if (problem === null) return { now, waitedMs: Date.now() - started };
      if (stage.closing) throw new Error(`${label}: interrupted`);
      if (Date.now() - started > SETTLE_MS) {
        show(now, step.stats);
        const reason = `${label} did not behave as the seed says: after ${SETTLE_MS / 1000} s, ${problem}`;
        report.failed(reason);
        throw new StepFailed(reason);
      }
      await sleep(POLL_MS);
    }
  };

  // --- Part 1: plain HTTP -----------------------------------------------------------------------------------
  report.section('Part 1: plain HTTP through the gateway', 'the seed\'s "Deploy and Verify"');
  const plain: Pick<StepDefinition, 'check' | 'stats'> = {
    stats: [{ who: 'colorteller', grep: 'ssl.handshake' }],
    check: (o) => expectSuccess(o) ?? (hs(o) === 0 ? null : `the colorteller already counts ${hs(o)} TLS handshakes`),
  };
  const first = await settle('part 1', plain, await observe());
  show(first.now, plain.stats, first.waitedMs);
  report.ok(`as the seed says: "${COLOR}", in plain HTTP: no TLS handshake yet`);

  // --- Part 2: the five steps -------------------------------------------------------------------------------
  const steps: StepDefinition[] = [
    {
      title: 'enable strict TLS termination on the colorteller',
      seedCommand: 'mesh.sh update_1_strict_tls',
      change: `listener ${APP_PORT}: tls STRICT, certificate file colorteller_cert_chain.pem + colorteller_key.pem`,
      stats: [{ who: 'colorteller', grep: 'ssl.handshake' }, { who: 'gateway', grep: 'ssl.handshake' }, { who: 'colorteller', grep: 'ssl.no_certificate' }],
      check: (o) => expectSuccess(o)
        ?? (hs(o) >= 1 ? null : 'the colorteller counts no TLS handshake yet')
        ?? (gwHs(o) >= 1 ? null : 'the gateway counts no TLS handshake yet')
        ?? (noCert(o) === hs(o) ? null : `ssl.no_certificate (${noCert(o)}) differs from ssl.handshake (${hs(o)})`),
      outcome: (o) => `the request still succeeds, now over TLS (${hs(o)} handshake${hs(o) === 1 ? '' : 's'}); ssl.no_certificate equals ssl.handshake (${noCert(o)} = ${hs(o)}): no client certificate`,
      summary: (o) => `handshake ${hs(o)}, no_certificate ${noCert(o)}`,
    },
    {
      title: 'client policy on the gateway, with the wrong subject alternative name',
      seedCommand: 'mesh.sh update_2_client_policy_bad_san',
      change: `backendDefaults.clientPolicy.tls: trust file ca_cert.pem, SAN exact bogus.${DOMAIN}`,
      stats: [{ who: 'gateway', grep: 'ssl.fail_verify_san' }],
      check: (o, b) => expectFailure(o) ?? (sanFail(o) > sanFail(b) ? null : `the gateway's ssl.fail_verify_san did not rise (${sanFail(o)})`),
      outcome: (o, b) => `the request fails; the gateway refuses the colorteller's certificate: ssl.fail_verify_san ${sanFail(b)} -> ${sanFail(o)}`,
      summary: (o) => `fail_verify_san ${sanFail(o)}`,
    },
    {
      title: 'correct the subject alternative name',
      seedCommand: 'mesh.sh update_3_client_policy_good_san',
      change: `backendDefaults.clientPolicy.tls: trust file ca_cert.pem, SAN exact ${SERVICE}`,
      stats: [{ who: 'gateway', grep: 'ssl.handshake' }],
      check: (o) => expectSuccess(o),
      outcome: () => `the request succeeds again: the gateway validates the colorteller's certificate (CA and SAN ${SERVICE})`,
      summary: (o) => `handshake ${gwHs(o)} (gateway)`,
    },
    {
      title: 'require a client certificate at the colorteller',
      seedCommand: 'mesh.sh update_4_require_client_cert',
      change: `listener ${APP_PORT} tls: + validation: trust file ca_cert.pem, SAN exact gateway.${DOMAIN}`,
      stats: [{ who: 'colorteller', grep: 'ssl.fail_verify_no_cert' }],
      check: (o, b) => expectFailure(o) ?? (noCertFail(o) > noCertFail(b) ? null : `the colorteller's ssl.fail_verify_no_cert did not rise (${noCertFail(o)})`),
      outcome: (o, b) => `the request fails: the gateway presents no certificate; ssl.fail_verify_no_cert ${noCertFail(b)} -> ${noCertFail(o)}`,
      summary: (o) => `fail_verify_no_cert ${noCertFail(o)}`,
    },
    {
      title: 'provide a client certificate at the gateway',
      seedCommand: 'mesh.sh update_5_client_cert',
      change: 'backendDefaults.clientPolicy.tls: + certificate file gateway_cert_chain.pem + gateway_key.pem',
      stats: [{ who: 'colorteller', grep: 'ssl.handshake' }, { who: 'colorteller', grep: 'ssl.no_certificate' }],
      check: (o, b) => expectSuccess(o)
        ?? (hs(o) > hs(b) ? null : `the colorteller's ssl.handshake did not rise (${hs(o)})`)
        ?? (noCert(o) === noCert(b) ? null : `the colorteller's ssl.no_certificate rose (${noCert(b)} -> ${noCert(o)}): a client came in without a certificate`),
      outcome: (o, b) => `mutual TLS: the request succeeds; ssl.handshake ${hs(b)} -> ${hs(o)} while ssl.no_certificate stays ${noCert(o)}: the gateway presented its certificate`,
      summary: (o) => `handshake ${hs(o)}, no_certificate ${noCert(o)} (unchanged)`,
    },
  ];

  const rows: string[][] = [];
  for (const [i, step] of steps.entries()) {
    const call = calls.steps[i]!;
    const label = `step ${i + 1} (${step.title})`;
    report.section(`Step ${i + 1}/${steps.length}: ${step.title}`, step.seedCommand);
    const before = await observe();
    const result = await cp.api.call(call.operation, call.input);
    const version = versionOf(result);
    report.command(cliLine(call.operation, examples.steps[i]!.input, `${EXAMPLES_DIR}/${call.file}`), [
      `${result.request}: ${result.status}${version !== undefined ? `, version ${version}` : ''}`,
      step.change,
    ]);
    const { now, waitedMs } = await settle(label, step, before);
    show(now, step.stats, waitedMs);
    report.ok(`as the seed says: ${step.outcome(now, before)}`);
    rows.push([`step ${i + 1}`, step.title, now.answer.status === 200 ? describeAnswer(now.answer, 20) : now.answer.status === 0 ? 'no answer' : String(now.answer.status), step.summary(now, before)]);
  }

  return {
    summary: [
      'The gateway and the colorteller now speak mutual TLS, as at the end of seed 004: each presents a certificate,',
      'each validates the other\'s against the CA and its subject alternative name.',
      ...columns(rows),
    ],
    keep: [
      { comment: `a request through the gateway (the colorteller answers ${COLOR})`, commands: [`curl ${gatewayUrl}`] },
      {
        comment: 'the proxies\' stats, as the seed reads them from their admin ports',
        commands: [`curl -s ${ct.adminHost}:${ct.adminPort}/stats | grep ssl     # ${NODE}`, `curl -s ${gw.adminHost}:${gw.adminPort}/stats | grep ssl     # ${GATEWAY}`],
      },
      {
        comment: `the App Mesh API with the AWS CLI (run from the repository; the example files say /keys/ for ${keys}/)`,
        commands: [
          cp.exportLine,
          `aws appmesh describe-virtual-node --mesh-name ${MESH} --virtual-node-name ${NODE} --endpoint-url ${cp.url}`,
          `aws appmesh update-virtual-gateway --endpoint-url ${cp.url} --cli-input-json "$(sed 's|/keys/|${keys}/|g' ${EXAMPLES_DIR}/${calls.steps[1]!.file})"`,
        ],
      },
      { comment: 'what each proxy ACKed, and the registered instances', commands: [`npx keymesh proxies --mesh ${MESH} --endpoint ${cp.url}`, `npx keymesh endpoints list --mesh ${MESH} --endpoint ${cp.url}`] },
    ],
  };
}
