// The load generator: wrk (Debian's package), one run = one child process, its text output parsed.
import { within, type Supervisor } from './procs.ts';

export interface WrkOptions {
  readonly wrk: string;
  readonly url: string;
  readonly connections: number;
  readonly threads: number;
  readonly seconds: number;
  /** Send `Connection: close`: a new connection per request. */
  readonly newConnectionPerRequest: boolean;
  /** Host header to send instead of the URL's authority (a client side that routes by Host). */
  readonly host?: string;
}

export interface WrkResult {
  readonly requests: number;
  readonly seconds: number;
  readonly rps: number;
  /** Latency percentiles, milliseconds (wrk --latency). */
  readonly latencyMs: { readonly avg: number; readonly max: number; readonly p50: number; readonly p75: number; readonly p90: number; readonly p99: number };
  readonly non2xx: number;
  readonly socketErrors: { readonly connect: number; readonly read: number; readonly write: number; readonly timeout: number };
  readonly raw: string;
}

function toMs(value: string, unit: string): number {
  const v = Number(value);
  switch (unit) {
    case 'us': return v / 1000;
    case 'ms': return v;
    case 's': return v * 1000;
    case 'm': return v * 60_000;
    case 'h': return v * 3_600_000;
    default: return Number.NaN;
  }
}

export function parseWrk(raw: string): WrkResult {
  const lat = (re: RegExp): number => {
    const m = re.exec(raw);
    return m ? toMs(m[1] as string, m[2] as string) : Number.NaN;
  };
  const pct = (p: number) => lat(new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm'));
  const total = /(\d+) requests in ([\d.]+)(us|ms|s|m|h)/.exec(raw);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(raw);
  const errs = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(raw);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(raw);
  const avgMax = /^\s+Latency\s+([\d.]+)(us|ms|s|m|h)\s+[\d.]+\w+\s+([\d.]+)(us|ms|s|m|h)/m.exec(raw);
  if (!total || !rps) throw new Error(`cannot read wrk's output:\n${raw}`);
  return {
    requests: Number(total[1]),
    seconds: toMs(total[2] as string, total[3] as string) / 1000,
    rps: Number(rps[1]),
    latencyMs: {
      avg: avgMax ? toMs(avgMax[1] as string, avgMax[2] as string) : Number.NaN,
      max: avgMax ? toMs(avgMax[3] as string, avgMax[4] as string) : Number.NaN,
      p50: pct(50), p75: pct(75), p90: pct(90), p99: pct(99),
    },
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: {
      connect: Number(errs?.[1] ?? 0), read: Number(errs?.[2] ?? 0), write: Number(errs?.[3] ?? 0), timeout: Number(errs?.[4] ?? 0),
    },
    raw,
  };
}

/** Runs wrk once and parses its report; kills it if it overruns its duration by 30 s. */
export async function runWrk(sup: Supervisor, o: WrkOptions): Promise<WrkResult> {
  const args = [
    '-t', String(o.threads), '-c', String(o.connections), '-d', `${o.seconds}s`, '--latency', '--timeout', '5s',
    ...(o.newConnectionPerRequest ? ['-H', 'Connection: close'] : []),
    ...(o.host ? ['-H', `Host: ${o.host}`] : []),
    o.url,
  ];
  const proc = sup.spawn('wrk', o.wrk, args, { collectStdout: true });
  const status = await within(proc.exited, (o.seconds + 30) * 1000);
  const out = sup.stdoutOf(proc);
  await sup.stop(proc);
  if (!status) throw new Error(`wrk did not finish within ${o.seconds + 30} s: ${out}`);
  if (status.code !== 0) throw new Error(`wrk ${args.join(' ')} exited ${status.code ?? status.signal}:\n${proc.output()}`);
  return parseWrk(out);
}
