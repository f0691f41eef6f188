// The "straightforward Node http/https proxy" of issue 5: two Node processes (node-naive-proxy.ts), one
// event loop each, no cluster, no worker threads. The reference that reaches about a quarter of nginx.
import { fileURLToPath } from 'node:url';
import type { PairSetup } from '../harness.ts';

const SCRIPT = fileURLToPath(new URL('../node-naive-proxy.ts', import.meta.url));

export const nodeNaivePair: PairSetup = {
  name: 'node-naive',
  description: 'Node http → https.request ⇢ https.createServer → http.request (1 process each)',
  requires: [],
  async startPair(ctx) {
    const [entryPort, mtlsPort, statsPort] = [await ctx.freePort(), await ctx.freePort(), await ctx.freePort()];
    const c = ctx.certs;
    const common = { mode: ctx.mode, caFile: c.caFile, serverName: c.serverName };
    const serverCfg = { ...common, role: 'server', listenPort: mtlsPort, upstreamPort: ctx.app.port, statsPort, certFile: c.serverCert, keyFile: c.serverKey };
    const clientCfg = { ...common, role: 'client', listenPort: entryPort, upstreamPort: mtlsPort, certFile: c.clientCert, keyFile: c.clientKey };
    const serverProc = ctx.spawn('node-naive server side', ctx.nodeBin, [SCRIPT, JSON.stringify(serverCfg)]);
    await ctx.waitForPort(mtlsPort, serverProc);
    await ctx.waitForPort(statsPort, serverProc);
    const clientProc = ctx.spawn('node-naive client side', ctx.nodeBin, [SCRIPT, JSON.stringify(clientCfg)]);
    await ctx.waitForPort(entryPort, clientProc);
    return {
      entryPort, mtlsPort,
      pids: { client: clientProc.pid, server: serverProc.pid },
      async acceptedMtlsConnections() {
        const res = await fetch(`http://127.0.0.1:${statsPort}/`, { signal: AbortSignal.timeout(5_000) });
        return Number((await res.text()).trim());
      },
      version: `node ${process.version}`,
      async stop() {
        // The harness ends both processes.
      },
    };
  },
};
