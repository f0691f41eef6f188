// Verifies AWS Signature V4 (`Authorization: AWS4-HMAC-SHA256 ...`) requests from the AWS CLI (botocore) and
// the AWS SDKs. The canonical request is never rebuilt here: the signature is recomputed with the same
// SignatureV4 class the JS SDK signs with, fed exactly what the client signed (the headers it lists, the
// path and query as received, the body bytes), and compared in constant time. Errors use AWS's exception
// names and wording so AWS clients report them as they would against App Mesh.
import { createHash, timingSafeEqual } from 'node:crypto';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Clock } from '../../base/clock.ts';
import { UnauthenticatedError } from '../../errors/index.ts';

export interface SignedRequest {
  method: string;
  /** Path and query exactly as received (`req.url`), still percent-encoded. */
  rawUrl: string;
  /** Header names in lower case, as Node gives them. */
  headers: Record<string, string | string[] | undefined>;
  body: Uint8Array;
}

export interface CredentialLookup {
  secretFor(accessKeyId: string): string | undefined;
}

export interface VerifiedCaller {
  accessKeyId: string;
  /** Region from the credential scope; keymesh serves every region. */
  region: string;
}

export const SIGNING_SERVICE = 'appmesh';
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;

const ALGORITHM = 'AWS4-HMAC-SHA256';
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const BAD_SIGNATURE =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';
const INVALID_TOKEN = 'The security token included in the request is invalid.';

function fail(type: UnauthenticatedError['awsType'], message: string): never {
  throw new UnauthenticatedError(type, message);
}

export async function verifySigV4(req: SignedRequest, creds: CredentialLookup, clock: Clock): Promise<VerifiedCaller> {
  const auth = header(req.headers, 'authorization');
  const [path = '/', rawQuery = ''] = splitOnce(req.rawUrl, '?');
  if (auth === undefined) {
    if (/(^|&)x-amz-signature=/i.test(rawQuery)) {
      fail('IncompleteSignatureException', 'Query-string (presigned URL) authentication is not supported; sign the request with an Authorization header.');
    }
    fail('MissingAuthenticationTokenException', 'Missing Authentication Token');
  }
  const parsed = parseAuthorization(auth, req.headers);
  const { accessKeyId, shortDate, region, service, terminator } = parsed.scope;

  if (!parsed.signedHeaders.includes('host')) {
    fail('IncompleteSignatureException', "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
  }
  if (!parsed.signedHeaders.includes('x-amz-date')) {
    // The SignatureV4 signer always signs X-Amz-Date (it is what botocore and the SDKs send); a request signed
    // over the `Date` header alone cannot be recomputed with it, so it is refused rather than half-supported.
    fail('IncompleteSignatureException', "Authorization header requires 'X-Amz-Date' to be a signed header; the 'Date' header alone is not supported.");
  }
  const m = AMZ_DATE.exec(parsed.amzDate);
  if (!m) {
    fail('IncompleteSignatureException', `Date must be in ISO-8601 'basic format'. Got '${parsed.amzDate}'. See http://en.wikipedia.org/wiki/ISO_8601`);
  }
  const signingDate = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  if (terminator !== 'aws4_request') {
    fail('InvalidSignatureException', `Credential should be scoped with a valid terminator: 'aws4_request', not '${terminator}'.`);
  }
  if (service !== SIGNING_SERVICE) {
    fail('InvalidSignatureException', `Credential should be scoped to correct service: '${SIGNING_SERVICE}'.`);
  }
  if (!/^[a-z0-9-]{1,32}$/.test(region)) {
    fail('InvalidSignatureException', 'Credential should be scoped to a valid region.');
  }
  if (shortDate !== parsed.amzDate.slice(0, 8)) {
    fail('InvalidSignatureException', `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${shortDate}' != '${parsed.amzDate.slice(0, 8)}', from '${parsed.amzDate}'.`);
  }
  checkSkew(signingDate, clock.now());

  // keymesh has no temporary credentials, so any session token is one it did not issue (as AWS would say).
  const secret = creds.secretFor(accessKeyId);
  if (secret === undefined || header(req.headers, 'x-amz-security-token') !== undefined) {
    fail('UnrecognizedClientException', INVALID_TOKEN);
  }

  // The JS SDK signs x-amz-content-sha256; the signer trusts that header as the payload hash, so it must
  // match the bytes actually received. UNSIGNED-PAYLOAD is refused: App Mesh bodies are small and an
  // unsigned body could be swapped in transit without breaking the signature.
  const claimedHash = parsed.signedHeaders.includes('x-amz-content-sha256') ? header(req.headers, 'x-amz-content-sha256') : undefined;
  if (claimedHash !== undefined) {
    if (claimedHash === 'UNSIGNED-PAYLOAD') {
      fail('InvalidSignatureException', 'UNSIGNED-PAYLOAD is not accepted by this service; sign the request body.');
    }
    if (claimedHash.toLowerCase() !== createHash('sha256').update(req.body).digest('hex')) {
      fail('InvalidSignatureException', "The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
  }

  // Only the headers the client signed, and all of them: `signableHeaders` keeps ones the signer would
  // otherwise drop (user-agent, expect, ...). The client signed what it sent, so nothing is added.
  const signedHeaders: Record<string, string> = Object.create(null);
  for (const name of parsed.signedHeaders) {
    const value = header(req.headers, name);
    if (value !== undefined) signedHeaders[name] = value;
  }
  const signer = new SignatureV4({
    service: SIGNING_SERVICE,
    region,
    credentials: { accessKeyId, secretAccessKey: secret },
    sha256: Sha256,
    // Both botocore and the JS SDK sign non-S3 paths normalized and percent-encoded a second time
    // (`my%20node` is signed as `my%2520node`): the signer does exactly that to the raw path.
    uriEscapePath: true,
    // Don't add an x-amz-content-sha256 header the client did not sign (botocore doesn't for non-S3).
    applyChecksum: false,
  });
  const recomputed = await signer.sign(
    { method: req.method, protocol: 'http:', hostname: signedHeaders.host ?? '', path, query: parseQuery(rawQuery), headers: signedHeaders, body: req.body },
    { signingDate, signableHeaders: new Set(parsed.signedHeaders) },
  );
  const expected = /Signature=([0-9a-f]+)$/.exec(String(recomputed.headers.authorization))?.[1] ?? '';
  if (!constantTimeEqual(expected, parsed.signature)) {
    fail('InvalidSignatureException', BAD_SIGNATURE);
  }
  return { accessKeyId, region };
}

interface ParsedAuthorization {
  scope: { accessKeyId: string; shortDate: string; region: string; service: string; terminator: string };
  signedHeaders: string[];
  signature: string;
  amzDate: string;
}

function parseAuthorization(auth: string, headers: SignedRequest['headers']): ParsedAuthorization {
  const [algorithm = '', rest = ''] = splitOnce(auth.trim(), ' ');
  if (algorithm !== ALGORITHM) {
    fail('IncompleteSignatureException', `Unsupported Authorization type '${algorithm.slice(0, 32)}'; expected ${ALGORITHM}.`);
  }
  const params = new Map<string, string>();
  for (const part of rest.split(',')) {
    const [key, value] = splitOnce(part.trim(), '=');
    if (key && value !== undefined) params.set(key, value);
  }
  const amzDate = header(headers, 'x-amz-date');
  const missing = [
    ...['Credential', 'Signature', 'SignedHeaders'].filter((p) => !params.get(p)).map((p) => `Authorization header requires '${p}' parameter.`),
    ...(amzDate === undefined && header(headers, 'date') === undefined ? ["Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."] : []),
  ];
  if (missing.length > 0) fail('IncompleteSignatureException', missing.join(' '));

  const credential = params.get('Credential')!;
  const parts = credential.split('/');
  if (parts.length !== 5 || parts.some((p) => p === '')) {
    fail('IncompleteSignatureException', `Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '${credential}'`);
  }
  const [accessKeyId, shortDate, region, service, terminator] = parts as [string, string, string, string, string];
  return {
    scope: { accessKeyId, shortDate, region, service, terminator },
    signedHeaders: params.get('SignedHeaders')!.split(';').map((h) => h.trim().toLowerCase()).filter(Boolean),
    signature: params.get('Signature')!,
    amzDate: amzDate ?? '',
  };
}

function checkSkew(signingDate: Date, nowMs: number): void {
  const stamp = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const at = stamp(signingDate.getTime());
  if (signingDate.getTime() < nowMs - MAX_CLOCK_SKEW_MS) {
    fail('InvalidSignatureException', `Signature expired: ${at} is now earlier than ${stamp(nowMs - MAX_CLOCK_SKEW_MS)} (${stamp(nowMs)} - 15 min.)`);
  }
  if (signingDate.getTime() > nowMs + MAX_CLOCK_SKEW_MS) {
    fail('InvalidSignatureException', `Signature not yet current: ${at} is still later than ${stamp(nowMs + MAX_CLOCK_SKEW_MS)} (${stamp(nowMs)} + 15 min.)`);
  }
}

/** The raw query as decoded key → value(s); the signer re-encodes them canonically (RFC 3986, sorted). */
function parseQuery(raw: string): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = Object.create(null);
  for (const pair of raw.split('&')) {
    if (pair === '') continue;
    const [k = '', v = ''] = splitOnce(pair, '=').map(decode);
    const prev = query[k];
    query[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v];
  }
  return query;
}

/** Percent-decoding only: AWS clients send a space as %20, so a literal '+' stays '+'. */
function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s; // broken escapes: keep as sent; the signature will then not match
  }
}

function header(headers: SignedRequest['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function splitOnce(s: string, sep: string): string[] {
  const i = s.indexOf(sep);
  return i < 0 ? [s] : [s.slice(0, i), s.slice(i + sep.length)];
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
