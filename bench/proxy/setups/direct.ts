// The baseline: wrk talks to the app directly (no proxy, no TLS). In handshake mode wrk opens a new TCP
// connection per request to the app: the ceiling of "new connection per request" on this machine.
import type { PairSetup } from '../harness.ts';

export const direct: PairSetup = {
  name: 'direct',
  description: 'load generator → app, no proxies (the ceiling)',
  requires: [],
  direct: true,
  async startPair(ctx) {
    return { entryPort: ctx.app.port, pids: {}, stop: async () => {} };
  },
};
