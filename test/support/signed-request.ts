// Sends a raw SigV4-signed HTTP request (for bodies no SDK would send: broken JSON, wrong types).
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { TEST_CREDENTIALS } from './keymesh-server.ts';
import type { Credentials } from './aws-cli.ts';

export interface RawResponse {
  status: number;
  errorType: string | null;
  body: any;
  text: string;
}

export async function signedRequest(baseUrl: string, method: string, pathAndQuery: string, body?: string, creds: Credentials = TEST_CREDENTIALS): Promise<RawResponse> {
  const url = new URL(pathAndQuery, baseUrl);
  const query: Record<string, string> = {};
  url.searchParams.forEach((v, k) => { query[k] = v; });
  const signer = new SignatureV4({ service: 'appmesh', region: 'us-east-1', credentials: creds, sha256: Sha256 });
  const signed = await signer.sign({
    method,
    protocol: 'http:',
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    query,
    headers: { host: url.host, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body,
  });
  const res = await fetch(url, { method, headers: signed.headers as Record<string, string>, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let parsed: any;
  try { parsed = JSON.parse(text); } catch { parsed = undefined; }
  return { status: res.status, errorType: res.headers.get('x-amzn-errortype'), body: parsed, text };
}
