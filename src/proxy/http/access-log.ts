// Envoy's file access logs for the HTTP connection manager: the default format, or a text / JSON format with
// Envoy's command operators (%START_TIME%, %REQ(X)%, %RESPONSE_CODE%, ...). `/dev/stdout` and `/dev/stderr`
// go to the process's own streams; other paths are appended to (created 0644), one stream per path.
import { createWriteStream, type WriteStream } from 'node:fs';
import type { AccessLogSpec } from '../listeners/compile.ts';
import type { AccessLogEntry } from './http1-session.ts';

const DEFAULT_FORMAT = '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

function operator(op: string, e: AccessLogEntry): string {
  switch (op) {
    case 'START_TIME': return new Date(e.startTime).toISOString();
    case 'PROTOCOL': return e.protocol;
    case 'RESPONSE_CODE': return String(e.status);
    case 'RESPONSE_FLAGS': return e.responseFlags;
    case 'BYTES_RECEIVED': return String(e.bytesReceived);
    case 'BYTES_SENT': return String(e.bytesSent);
    case 'DURATION': return String(Math.round(e.durationMs));
    case 'UPSTREAM_HOST': return e.upstreamHost ?? '-';
    case 'UPSTREAM_CLUSTER': return e.upstreamCluster ?? '-';
    case 'DOWNSTREAM_REMOTE_ADDRESS': return e.downstreamRemoteAddress;
    default: break;
  }
  const req = /^REQ\(([^)]+)\)(?::\d+)?$/.exec(op);
  if (req) {
    const name = req[1]!.split('?')[0]!.toUpperCase();
    const value = name === ':METHOD' ? e.method : name === ':PATH' || name === 'X-ENVOY-ORIGINAL-PATH' ? e.path : name === ':AUTHORITY' || name === 'HOST' ? e.authority
      : name === 'USER-AGENT' ? e.userAgent : name === 'X-REQUEST-ID' ? e.requestId : undefined;
    return value ?? '-';
  }
  return '-';
}

export function formatEntry(format: string, e: AccessLogEntry): string {
  return format.replace(/%([A-Z_]+(?:\([^)]*\))?(?::\d+)?)%/g, (_, op: string) => operator(op, e));
}

function render(spec: AccessLogSpec, e: AccessLogEntry): string {
  if (spec.json) {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(spec.json)) out[k] = formatEntry(v, e);
    return `${JSON.stringify(out)}\n`;
  }
  const text = spec.text ?? DEFAULT_FORMAT;
  return formatEntry(text.endsWith('\n') ? text : `${text}\n`, e);
}

export interface AccessLogWriter {
  /** The sink for a connection manager's access logs; undefined when it has none. */
  sinkFor(specs: readonly AccessLogSpec[]): ((entry: AccessLogEntry) => void) | undefined;
  close(): Promise<void>;
}

export function accessLogWriter(): AccessLogWriter {
  const streams = new Map<string, NodeJS.WritableStream>();
  const streamFor = (path: string): NodeJS.WritableStream => {
    let s = streams.get(path);
    if (!s) {
      s = path === '/dev/stdout' ? process.stdout : path === '/dev/stderr' ? process.stderr : createWriteStream(path, { flags: 'a', mode: 0o644 }).on('error', () => {});
      streams.set(path, s);
    }
    return s;
  };
  return {
    sinkFor(specs) {
      if (specs.length === 0) return undefined;
      return (entry) => {
        for (const spec of specs) streamFor(spec.path).write(render(spec, entry));
      };
    },
    async close() {
      for (const [path, s] of streams) if (path !== '/dev/stdout' && path !== '/dev/stderr') await new Promise<void>((r) => (s as WriteStream).end(() => r()));
      streams.clear();
    },
  };
}
