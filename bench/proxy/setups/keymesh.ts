// keymesh's own pair: a control plane (`keymesh server`) and two `keymesh proxy` sidecars configured through the
// App Mesh API, as a user would set up two services of a mesh with mutual TLS from the mesh's own CA.
//
//   mesh `bench` (trust domain `bench`)
//   virtual node `server`: listener http on the app's port, TLS STRICT, certificate = its SVID
//                          (sds spiffe://bench/server), trust = the mesh's bundle (sds spiffe://bench), client
//                          SAN spiffe://bench/client; service discovery server.bench.local
//   virtual service `server.bench.local`, provided by `server`
//   virtual node `client`: backend server.bench.local; client policy enforcing TLS on the app's port with its
//                          SVID, the mesh's bundle and the server's SPIFFE ID as SAN
//
// Both sidecars bootstrap their SVIDs with join tokens. The server side registers its ingress listener as the
// `server` node's instance (EDS); the client side's egress listener routes by Host, so wrk sends
// `Host: server.bench.local` to the client sidecar's egress port:
//
//   wrk ─▶ client sidecar egress ─mTLS─▶ server sidecar ingress ─▶ app
//
// Modes: reuse mode as a user runs it (the client sidecar pools its upstream mTLS connections and resumes TLS
// sessions). Handshake mode, the Envoy way: the client sidecar runs with `--upstream-max-requests-per-connection
// 1 --upstream-tls-max-session-keys 0` (node.metadata.keymesh; the control plane puts Envoy's
// max_requests_per_connection 1 and max_session_keys 0 on its cluster to `server`), so each request opens a new
// mTLS connection with a full handshake, closed after the response. Checked before and after each run: the
// server side's `ssl.handshake` rises by one per request and the client side's `ssl.session_reused` stays 0
// (the server side issues session tickets, but a client that offers none resumes nothing). Neither side pins the
// TLS group (Node's default list applies), unlike the other pairs' X25519.
//
// KEYMESH_BENCH_CPU_PROF=<dir>: run each sidecar under `node --cpu-prof` (profiles in <dir>/client and
// <dir>/server, written when the sidecar exits after the pair is stopped). KEYMESH_BENCH_NODE_FLAGS: more Node
// flags for both sidecars (space-separated, e.g. `--max-semi-space-size=32` or `--trace-gc`).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  AppMeshClient, CreateMeshCommand, CreateVirtualNodeCommand, CreateVirtualServiceCommand,
} from '@aws-sdk/client-app-mesh';
import type { PairContext, PairSetup } from '../harness.ts';
import { sleep, within, type ManagedProcess } from '../procs.ts';

// What an installed `keymesh` runs: the compiled JavaScript in dist/ (`npm run build`, done by npm ci), not the
// TypeScript sources through Node's type stripping, whose transformer alone holds ~50 MiB per process. Built
// afresh once per bench run, so the figures are those of the sources as they are.
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const KEYMESH_MAIN = join(REPO, 'dist', 'cli', 'main.js');
let built: Promise<void> | undefined;

function buildDist(nodeBin: string): Promise<void> {
  built ??= new Promise((resolve, reject) => {
    execFile(nodeBin, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(REPO, 'tsconfig.build.json')], { cwd: REPO, timeout: 300_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`npm run build failed: ${error.message}\n${stdout}${stderr}`));
      else resolve();
    });
  });
  return built;
}
const MESH = 'bench';
const TRUST_DOMAIN = 'spiffe://bench';
const SERVER_ID = `${TRUST_DOMAIN}/server`;
const CLIENT_ID = `${TRUST_DOMAIN}/client`;
/** The virtual service the client sidecar routes to, sent as Host; also the DNS SAN of the server's SVID. */
export const SERVICE = 'server.bench.local';

const PACKAGE_VERSION = (JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version?: string }).version ?? '?';
const CREDENTIALS = { accessKeyId: 'AKIAKEYMESHBENCH001', secretAccessKey: randomBytes(20).toString('hex') };

/** Handshake mode: the client sidecar's flags for a new mTLS connection and a full handshake per request. */
const HANDSHAKE_FLAGS = ['--upstream-max-requests-per-connection', '1', '--upstream-tls-max-session-keys', '0'];

/** Resolves with the first match of `re` in the process's output; rejects if the process exits first or after `ms`. */
async function waitForOutput(proc: ManagedProcess, re: RegExp, what: string, ms = 30_000): Promise<RegExpExecArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = re.exec(proc.output());
    if (m) return m;
    const st = proc.exitStatus();
    if (st) throw new Error(`${proc.name} exited (${st.code ?? st.signal}) before ${what}:\n${proc.output().trim()}`);
    if (Date.now() > deadline) throw new Error(`${proc.name}: no ${what} after ${ms / 1000} s:\n${proc.output().trim()}`);
    await sleep(50);
  }
}

/** `keymesh <args>` against the pair's control plane; its stdout. */
function keymesh(ctx: PairContext, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(ctx.nodeBin, [KEYMESH_MAIN, ...args], {
      encoding: 'utf8', timeout: 30_000,
      env: { ...process.env, AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey },
    }, (error, stdout, stderr) => {
      if (error) reject(new Error(`keymesh ${args.join(' ')}: ${error.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

/** GET `path` on 127.0.0.1:port: status and body (status 0 on a connection error). */
function get(port: number, path: string, host?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 5_000, headers: { connection: 'close', ...(host ? { host } : {}) } }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => resolve({ status: 0, body: e.message }));
    req.end();
  });
}

/** One counter from an admin's /stats (Envoy's text format). */
async function adminStat(adminPort: number, name: string): Promise<number> {
  const r = await get(adminPort, `/stats?filter=${encodeURIComponent(`^${name.replaceAll('.', '\\.')}$`)}`);
  const m = new RegExp(`^${name.replaceAll('.', '\\.')}: (\\d+)$`, 'm').exec(r.body);
  if (r.status !== 200 || !m) throw new Error(`admin 127.0.0.1:${adminPort}: no ${name} in /stats (status ${r.status}): ${r.body.slice(0, 500)}`);
  return Number(m[1]);
}

export const keymeshPair: PairSetup = {
  name: 'keymesh',
  description: 'keymesh proxy → mTLS (mesh CA SVIDs) → keymesh proxy (1 Node process each), configured by keymesh server over xDS',
  requires: [],
  async startPair(ctx) {
    await buildDist(ctx.nodeBin);
    const dataDir = join(ctx.dir, 'control-plane');
    const work = join(ctx.dir, 'work');
    mkdirSync(dataDir, { mode: 0o700 });
    mkdirSync(work, { mode: 0o700 });

    // The control plane, on ports the OS picks; it prints where it listens.
    const cp = ctx.spawn('keymesh server', ctx.nodeBin, [
      KEYMESH_MAIN, 'server', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--workload-listen', '127.0.0.1:0',
      '--xds-listen', '127.0.0.1:0', '--log-level', 'warn',
    ], { env: { ...process.env, KEYMESH_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, KEYMESH_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey } });
    const apiUrl = (await waitForOutput(cp, /listening on (http:\/\/\S+)/, 'its API address'))[1] as string;
    const identityUrl = (await waitForOutput(cp, /identity endpoint on (https:\/\/\S+)/, 'its identity endpoint'))[1] as string;
    const xdsAddress = (await waitForOutput(cp, /xDS \(ADS over gRPC, mTLS\) on (\S+)/, 'its xDS address'))[1] as string;
    const admin = ['--endpoint', apiUrl, '--data-dir', dataDir];

    // The mesh, through the App Mesh API.
    const appPort = ctx.app.port;
    const serverSpec = {
      listeners: [{
        portMapping: { port: appPort, protocol: 'http' as const },
        tls: {
          mode: 'STRICT' as const,
          certificate: { sds: { secretName: SERVER_ID } },
          validation: { trust: { sds: { secretName: TRUST_DOMAIN } }, subjectAlternativeNames: { match: { exact: [CLIENT_ID] } } },
        },
      }],
      serviceDiscovery: { dns: { hostname: SERVICE } },
    };
    const clientSpec = {
      backends: [{ virtualService: { virtualServiceName: SERVICE } }],
      backendDefaults: {
        clientPolicy: {
          tls: {
            enforce: true,
            ports: [appPort],
            certificate: { sds: { secretName: CLIENT_ID } },
            validation: { trust: { sds: { secretName: TRUST_DOMAIN } }, subjectAlternativeNames: { match: { exact: [SERVER_ID] } } },
          },
        },
      },
    };
    const api = new AppMeshClient({ endpoint: apiUrl, region: 'us-east-1', credentials: { ...CREDENTIALS }, maxAttempts: 1 });
    try {
      await api.send(new CreateMeshCommand({ meshName: MESH }));
      await api.send(new CreateVirtualNodeCommand({ meshName: MESH, virtualNodeName: 'server', spec: serverSpec }));
      await api.send(new CreateVirtualServiceCommand({ meshName: MESH, virtualServiceName: SERVICE, spec: { provider: { virtualNode: { virtualNodeName: 'server' } } } }));
      await api.send(new CreateVirtualNodeCommand({ meshName: MESH, virtualNodeName: 'client', spec: clientSpec }));
    } finally {
      api.destroy();
    }

    // Join tokens (single use: one per SVID) and the control-plane CA the sidecars pin.
    const cpCa = join(work, 'control-plane-ca.pem');
    const token = async (node: string, file: string) => {
      writeFileSync(file, (await keymesh(ctx, ['token', 'create', '--mesh', MESH, '--virtual-node', node, '--ca-out', cpCa, ...admin])).trim(), { mode: 0o600 });
      return file;
    };
    const serverToken = await token('server', join(work, 'server.token'));
    const clientToken = await token('client', join(work, 'client.token'));
    // The mTLS check's identity: an SVID of the `client` node (what the server side must accept) and the mesh's bundle.
    const probeDir = join(work, 'probe-svid');
    await keymesh(ctx, ['identity', 'run', '--once', '--endpoint', identityUrl, '--control-plane-ca', cpCa, '--out', probeDir,
      '--join-token-file', await token('client', join(work, 'probe.token')), '--spiffe-id', CLIENT_ID]);

    const [serverIngress, serverEgress, serverAdmin, clientIngress, clientEgress, clientAdmin] = [
      await ctx.freePort(), await ctx.freePort(), await ctx.freePort(), await ctx.freePort(), await ctx.freePort(), await ctx.freePort(),
    ];
    const profileDir = process.env.KEYMESH_BENCH_CPU_PROF;
    const extraFlags = (process.env.KEYMESH_BENCH_NODE_FLAGS ?? '').split(/\s+/).filter((f) => f !== '');
    const sidecar = (side: 'server' | 'client', tokenFile: string, ingress: number, egress: number, adminPort: number) => {
      const nodeFlags = [...extraFlags, ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', join(profileDir, side)] : [])];
      return ctx.spawn(`keymesh proxy (${side} side)`, ctx.nodeBin, [
        ...nodeFlags, KEYMESH_MAIN, 'proxy', '--mesh', MESH, '--virtual-node', side,
        '--xds', xdsAddress, '--identity-endpoint', identityUrl, '--control-plane-ca', cpCa, '--join-token-file', tokenFile,
        '--admin', `127.0.0.1:${adminPort}`, '--listen-address', '127.0.0.1', '--ingress-port', String(ingress),
        '--egress-port', String(egress), '--app-address', '127.0.0.1',
        ...(side === 'client' && ctx.mode === 'handshake' ? HANDSHAKE_FLAGS : []),
      ]);
    };
    const ready = /ready \(every listener serving\)/;
    const serverProc = sidecar('server', serverToken, serverIngress, serverEgress, serverAdmin);
    await waitForOutput(serverProc, ready, 'the ready line');
    const clientProc = sidecar('client', clientToken, clientIngress, clientEgress, clientAdmin);
    await waitForOutput(clientProc, ready, 'the ready line');

    // The client side learns the server's instance over EDS once the server side has registered: wait for a
    // request through the pair to reach the app.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const last = await get(clientEgress, '/', SERVICE);
      if (last.status === 200) break;
      if (Date.now() > deadline) throw new Error(`no 200 through the pair after 20 s; last: ${last.status} ${JSON.stringify(last.body.slice(0, 300))}`);
      await sleep(200);
    }
    ctx.log(`control plane ${apiUrl}, server sidecar ingress :${serverIngress} (admin :${serverAdmin}), client sidecar egress :${clientEgress} (admin :${clientAdmin})`);

    const listenerStat = `listener.127.0.0.1_${serverIngress}`;
    const handshakes = () => adminStat(serverAdmin, `${listenerStat}.ssl.handshake`);
    // The client side's cluster to the server node (cds_egress_<mesh>_<node>_<protocol>_<port>).
    const clientCluster = `cluster.cds_egress_${MESH}_server_http_${appPort}`;
    const resumed = () => adminStat(clientAdmin, `${clientCluster}.ssl.session_reused`);
    if (ctx.mode === 'handshake') {
      // Handshake mode must be what it says: one new mTLS connection per request, never a resumed session.
      const n = 8;
      const before = await handshakes();
      for (let i = 0; i < n; i++) {
        const r = await get(clientEgress, '/', SERVICE);
        if (r.status !== 200) throw new Error(`handshake-mode check: request ${i + 1} through the pair got ${r.status}`);
      }
      // A response can reach the client before the server side has counted the connection's handshake: wait a little.
      let during = (await handshakes()) - before;
      for (const until = Date.now() + 5_000; during < n && Date.now() < until; during = (await handshakes()) - before) await sleep(20);
      const reused = await resumed();
      if (during !== n || reused !== 0) {
        throw new Error(`handshake mode: ${n} requests made ${during} mTLS handshakes on the server side and ${reused} resumed sessions on the client side (want ${n} and 0)`);
      }
      ctx.log(`handshake mode: ${n} requests → ${during} full mTLS handshakes (client ssl.session_reused ${reused})`);
    }
    const sidecars = [clientProc, serverProc];
    return {
      entryPort: clientEgress,
      entryHost: SERVICE,
      mtlsPort: serverIngress,
      mtlsProbe: { caFile: join(probeDir, 'bundle.pem'), clientCert: join(probeDir, 'svid.pem'), clientKey: join(probeDir, 'svid_key.pem'), serverName: SERVICE },
      pids: { client: clientProc.pid, server: serverProc.pid, extra: { 'control plane': cp.pid } },
      // Connections the server side's ingress accepted (ssl.handshake); in handshake mode each must have been a
      // full handshake: a session the client side resumed fails the measurement.
      acceptedMtlsConnections: async () => {
        const accepted = await handshakes();
        if (ctx.mode === 'handshake') {
          const reused = await resumed();
          if (reused !== 0) throw new Error(`handshake mode: the client side resumed ${reused} TLS sessions (${clientCluster}.ssl.session_reused)`);
        }
        return accepted;
      },
      version: `keymesh ${PACKAGE_VERSION} on node ${process.version}`,
      config: {
        'virtual-node-server.json': JSON.stringify(serverSpec, null, 2),
        'virtual-node-client.json': JSON.stringify(clientSpec, null, 2),
      },
      async stop() {
        // SIGTERM lets each sidecar drain and exit on its own (and write its CPU profile when asked for one);
        // the harness then ends every process group that is left, the control plane included.
        for (const p of sidecars) if (!p.exitStatus()) process.kill(p.pid, 'SIGTERM');
        await within(Promise.all(sidecars.map((p) => p.exited)), 10_000);
      },
    };
  },
};
