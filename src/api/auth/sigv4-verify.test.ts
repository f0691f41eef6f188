// Signatures from the real clients (JS SDK v3, AWS CLI v2 and v1) verify against a real HTTP server, and
// every kind of bad request is refused with the exception AWS would give.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Sha256 } from '@aws-crypto/sha256-js';
import { AppMeshClient, CreateVirtualServiceCommand, DescribeVirtualNodeCommand, DescribeVirtualServiceCommand, ListMeshesCommand, ListVirtualNodesCommand } from '@aws-sdk/client-app-mesh';
import { SignatureV4 } from '@smithy/signature-v4';
import { type Clock, ManualClock, systemClock } from '../../base/clock.ts';
import { UnauthenticatedError } from '../../errors/index.ts';
import { type SignedRequest, verifySigV4 } from './sigv4-verify.ts';

const CREDS = { accessKeyId: 'AKIAKEYMESHTEST0001', secretAccessKey: 'keymesh-test-secret-key-0123456789abcdef' };
const WRONG_SECRET = { ...CREDS, secretAccessKey: 'not-the-right-secret-0000000000000000' };
const UNKNOWN_KEY = { accessKeyId: 'AKIAUNKNOWN000000000', secretAccessKey: CREDS.secretAccessKey };
const lookup = { secretFor: (id: string) => (id === CREDS.accessKeyId ? CREDS.secretAccessKey : undefined) };

interface Seen {
  req: SignedRequest;
  outcome: { accessKeyId: string; region: string } | UnauthenticatedError;
}

// A real node:http server that records each raw request and answers as App Mesh would.
const seen: Seen[] = [];
let clock: Clock = systemClock;
let server: Server;
let url: string;

before(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const signed: SignedRequest = { method: req.method ?? 'GET', rawUrl: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks) };
      verifySigV4(signed, lookup, clock).then(
        (who) => {
          seen.push({ req: signed, outcome: who });
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        },
        (e: unknown) => {
          assert.ok(e instanceof UnauthenticatedError, String(e));
          seen.push({ req: signed, outcome: e });
          res.writeHead(403, { 'content-type': 'application/json', 'x-amzn-ErrorType': e.awsType }).end(JSON.stringify({ message: e.message }));
        },
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

function lastSeen(): Seen {
  const s = seen.at(-1);
  assert.ok(s, 'the server saw no request');
  return s;
}

function sdk(credentials = CREDS): AppMeshClient {
  return new AppMeshClient({ endpoint: url, region: 'us-west-2', credentials, maxAttempts: 1 });
}

// --- AWS CLI -------------------------------------------------------------------------------------------

// CLI v2 (Debian's awscli, which CI installs) is required. CLI v1 (botocore-based, e.g. from pip) is checked too
// when the machine has one; it is not installable here from a registry, so its test exists only where it is.
const CLIS = [
  { name: 'AWS CLI v2', bin: existsSync('/usr/bin/aws') ? '/usr/bin/aws' : 'aws', required: true },
  { name: 'AWS CLI v1', bin: 'aws', required: false },
];

function cliEnv(creds: { accessKeyId: string; secretAccessKey: string }): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
  return {
    ...env,
    AWS_ACCESS_KEY_ID: creds.accessKeyId,
    AWS_SECRET_ACCESS_KEY: creds.secretAccessKey,
    AWS_DEFAULT_REGION: 'eu-central-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_PAGER: '',
    AWS_MAX_ATTEMPTS: '1',
  };
}

function cli(bin: string, args: string[], creds = CREDS): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(bin, ['appmesh', ...args, '--endpoint-url', url, '--output', 'json'], { env: cliEnv(creds), timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Synchronous on purpose: which tests exist is decided while the file loads, before any test runs. */
function cliVersion(bin: string): string | null {
  const r = spawnSync(bin, ['--version'], { env: cliEnv(CREDS), timeout: 30_000, encoding: 'utf8' });
  return r.status === 0 ? `${r.stdout}${r.stderr}` : null;
}

// --- raw HTTP ------------------------------------------------------------------------------------------

function send(method: string, rawUrl: string, headers: IncomingHttpHeaders, body: Uint8Array): Promise<{ status: number; errorType: string | undefined; message: string }> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(url);
    const out = request({ hostname, port, method, path: rawUrl, headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        const errorType = res.headers['x-amzn-errortype'];
        resolve({ status: res.statusCode ?? 0, errorType: Array.isArray(errorType) ? errorType[0] : errorType, message: text ? (JSON.parse(text) as { message?: string }).message ?? '' : '' });
      });
    });
    out.on('error', reject);
    out.end(body);
  });
}

/** Signs a request the way the JS SDK does, at a chosen time, for calling the verifier directly. */
async function signAt(date: Date, path = '/v20190125/meshes', body = '', query: Record<string, string | string[]> = {}): Promise<SignedRequest> {
  const signer = new SignatureV4({ service: 'appmesh', region: 'us-east-1', credentials: CREDS, sha256: Sha256 });
  const signed = await signer.sign(
    { method: 'PUT', protocol: 'http:', hostname: 'localhost', path, query, headers: { host: 'localhost:7000', 'content-type': 'application/json' }, body },
    { signingDate: date },
  );
  const headers = Object.fromEntries(Object.entries(signed.headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { method: 'PUT', rawUrl: path, headers, body: Buffer.from(body) };
}

async function rejectsWith(p: Promise<unknown>, awsType: string, message: string | RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof UnauthenticatedError);
    assert.equal(e.awsType, awsType);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

const BAD_SIGNATURE = /^The request signature we calculated does not match the signature you provided\. Check your AWS Secret Access Key and signing method\. Consult the service documentation for details\.$/;

// --- tests ---------------------------------------------------------------------------------------------

test('JS SDK v3 requests verify: query strings, dotted names, spaces and plus signs in the path', async () => {
  const client = sdk();
  try {
    await client.send(new ListMeshesCommand({ limit: 2, nextToken: 'abc=' }));
    assert.deepEqual(lastSeen().outcome, { accessKeyId: CREDS.accessKeyId, region: 'us-west-2' });
    assert.match(lastSeen().req.rawUrl, /[?&]nextToken=abc%3D/);

    await client.send(new CreateVirtualServiceCommand({ meshName: 'mesh-1', meshOwner: '123456789012', virtualServiceName: 'colorteller.appmesh-mtls.local', spec: {} }));
    assert.deepEqual(lastSeen().outcome, { accessKeyId: CREDS.accessKeyId, region: 'us-west-2' });
    assert.match(lastSeen().req.rawUrl, /meshOwner=123456789012/);

    await client.send(new DescribeVirtualServiceCommand({ meshName: 'mesh-1', virtualServiceName: 'colorteller.appmesh-mtls.local' }));
    assert.match(lastSeen().req.rawUrl, /\/virtualServices\/colorteller\.appmesh-mtls\.local$/);
    assert.ok(!(lastSeen().outcome instanceof Error), String(lastSeen().outcome));

    await client.send(new ListVirtualNodesCommand({ meshName: 'mesh-1', limit: 2, nextToken: 'abc/+=', meshOwner: '123456789012' }));
    assert.match(lastSeen().req.rawUrl, /\?.*limit=2&.*meshOwner=123456789012/);
    assert.ok(!(lastSeen().outcome instanceof Error), String(lastSeen().outcome));

    for (const name of ['my node', 'a+b', "odd:name@(1)*!'~"]) {
      await client.send(new DescribeVirtualNodeCommand({ meshName: 'mesh 1', virtualNodeName: name }));
      assert.ok(!(lastSeen().outcome instanceof Error), `${name}: ${String(lastSeen().outcome)}`);
    }
    assert.match(lastSeen().req.rawUrl, /%/, 'names travel percent-encoded');
  } finally {
    client.destroy();
  }
});

test('JS SDK v3: a wrong secret gives InvalidSignatureException, an unknown key UnrecognizedClientException', async () => {
  const wrong = sdk(WRONG_SECRET);
  await assert.rejects(wrong.send(new ListMeshesCommand({})), (e: Error) => e.name === 'InvalidSignatureException' && BAD_SIGNATURE.test(e.message));
  wrong.destroy();
  const unknown = sdk(UNKNOWN_KEY);
  await assert.rejects(unknown.send(new ListMeshesCommand({})), (e: Error) => e.name === 'UnrecognizedClientException' && e.message === 'The security token included in the request is invalid.');
  unknown.destroy();
});

for (const { name, bin, required } of CLIS) {
  const version = cliVersion(bin);
  const major = name.endsWith('v1') ? 'aws-cli/1.' : 'aws-cli/2.';
  const present = version?.startsWith(major) ?? false;
  if (!present && !required) continue;
  test(`${name} requests verify, and wrong or unknown keys are refused`, async () => {
    assert.ok(present, `${name} is required for this test (found: ${version?.trim() ?? 'nothing'}); apt-get install awscli`);
    const ok = async (args: string[]) => {
      const r = await cli(bin, args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.deepEqual(lastSeen().outcome, { accessKeyId: CREDS.accessKeyId, region: 'eu-central-1' });
      return lastSeen().req;
    };
    await ok(['list-meshes']);
    const paged = await ok(['list-meshes', '--no-paginate', '--limit', '2', '--next-token', 'abc=']);
    assert.match(paged.rawUrl, /nextToken=abc%3D/);
    const three = await ok(['list-virtual-nodes', '--mesh-name', 'mesh-1', '--mesh-owner', '123456789012', '--no-paginate', '--limit', '2', '--next-token', 'abc/+=']);
    assert.match(three.rawUrl, /\?.*limit=2.*&.*meshOwner=123456789012/);
    const dotted = await ok(['describe-virtual-service', '--mesh-name', 'mesh-1', '--virtual-service-name', 'colorteller.appmesh-mtls.local']);
    assert.match(dotted.rawUrl, /\/virtualServices\/colorteller\.appmesh-mtls\.local$/);
    await ok(['create-virtual-service', '--mesh-name', 'mesh-1', '--mesh-owner', '123456789012', '--virtual-service-name', 'colorteller.appmesh-mtls.local', '--spec', '{}']);
    const spaced = await ok(['describe-virtual-node', '--mesh-name', 'mesh 1', '--virtual-node-name', 'my node+x']);
    assert.match(spaced.rawUrl, /%20/);

    const wrong = await cli(bin, ['list-meshes'], WRONG_SECRET);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /InvalidSignatureException/);
    assert.match(wrong.stderr, /signature we calculated does not match/);
    if (name.endsWith('v2')) assert.equal(wrong.code, 254);

    const unknown = await cli(bin, ['create-virtual-service', '--mesh-name', 'm', '--virtual-service-name', 'a.b', '--spec', '{}'], UNKNOWN_KEY);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /UnrecognizedClientException/);
  });
}

test('an unsigned request gets MissingAuthenticationTokenException', async () => {
  const r = await send('GET', '/v20190125/meshes', { host: new URL(url).host }, new Uint8Array());
  assert.deepEqual(r, { status: 403, errorType: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' });
});

test('a captured signed request replays as is, but not with a changed body', async () => {
  const client = sdk();
  await client.send(new CreateVirtualServiceCommand({ meshName: 'm', virtualServiceName: 'colorteller.appmesh-mtls.local', spec: {} }));
  client.destroy();
  const captured = lastSeen().req;
  assert.ok(!(lastSeen().outcome instanceof Error));

  const replay = await send(captured.method, captured.rawUrl, captured.headers, captured.body);
  assert.equal(replay.status, 200);

  // The SDK signs x-amz-content-sha256, so the hash no longer matches the body.
  const tampered = Buffer.from(Buffer.from(captured.body).toString('utf8').replace('colorteller', 'colorTELLER'));
  const r = await send(captured.method, captured.rawUrl, captured.headers, tampered);
  assert.deepEqual(r, { status: 403, errorType: 'InvalidSignatureException', message: "The provided 'x-amz-content-sha256' header does not match what was computed." });

  // Without that header (as botocore sends), the body hash is part of the signature itself.
  const { 'x-amz-content-sha256': _, ...withoutHash } = captured.headers;
  const cliLike = await verifySigV4({ ...captured, headers: withoutHash, body: tampered }, lookup, systemClock).catch((e: unknown) => e);
  assert.ok(cliLike instanceof UnauthenticatedError && cliLike.awsType === 'InvalidSignatureException' && BAD_SIGNATURE.test(cliLike.message));
});

test('a request signed 20 minutes before the server clock is refused with the skew message', async () => {
  // Through the server: the SDK signs with the real time; the verifier's clock runs 20 minutes ahead.
  clock = { now: () => Date.now() + 20 * 60_000 };
  const client = sdk();
  try {
    await assert.rejects(client.send(new ListMeshesCommand({})), (e: Error) =>
      e.name === 'InvalidSignatureException' && /^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 15 min\.\)$/.test(e.message));
  } finally {
    client.destroy();
    clock = systemClock;
  }

  // Directly, with exact timestamps.
  const req = await signAt(new Date(Date.UTC(2026, 10, 22, 0, 0, 0)));
  await rejectsWith(verifySigV4(req, lookup, new ManualClock(Date.UTC(2026, 10, 22, 0, 20, 0))), 'InvalidSignatureException',
    'Signature expired: 20261122T000000Z is now earlier than 20261122T000500Z (20261122T002000Z - 15 min.)');
  await rejectsWith(verifySigV4(req, lookup, new ManualClock(Date.UTC(2026, 10, 21, 23, 40, 0))), 'InvalidSignatureException',
    'Signature not yet current: 20261122T000000Z is still later than 20261121T235500Z (20261121T234000Z + 15 min.)');
  // Within 15 minutes either way is fine.
  assert.deepEqual(await verifySigV4(req, lookup, new ManualClock(Date.UTC(2026, 10, 22, 0, 15, 0))), { accessKeyId: CREDS.accessKeyId, region: 'us-east-1' });
});

test('malformed or unacceptable Authorization headers', async () => {
  const at = new Date(Date.UTC(2026, 10, 22));
  const now = new ManualClock(at.getTime());
  const good = await signAt(at, '/v20190125/meshes', '{"meshName":"m"}');
  const auth = String(good.headers.authorization);
  const withAuth = (a: string, extra: Record<string, string> = {}): SignedRequest => ({ ...good, headers: { ...good.headers, authorization: a, ...extra } });

  await rejectsWith(verifySigV4(withAuth(auth.replace(/, Signature=\w+/, '')), lookup, now), 'IncompleteSignatureException', "Authorization header requires 'Signature' parameter.");
  await rejectsWith(verifySigV4(withAuth('AWS4-HMAC-SHA256 foo'), lookup, now), 'IncompleteSignatureException',
    "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter.");
  await rejectsWith(verifySigV4(withAuth('Bearer abc'), lookup, now), 'IncompleteSignatureException', /AWS4-HMAC-SHA256/);
  await rejectsWith(verifySigV4(withAuth(auth.replace('/us-east-1/', '/')), lookup, now), 'IncompleteSignatureException', /exactly 5 slash-delimited elements/);
  await rejectsWith(verifySigV4(withAuth(auth.replace('/appmesh/', '/s3/')), lookup, now), 'InvalidSignatureException', "Credential should be scoped to correct service: 'appmesh'.");
  await rejectsWith(verifySigV4(withAuth(auth.replace('/20261122/', '/20261121/')), lookup, now), 'InvalidSignatureException', /Date in Credential scope does not match/);
  await rejectsWith(verifySigV4(withAuth(auth.replace('SignedHeaders=', 'SignedHeaders=x;').replace(';host;', ';')), lookup, now), 'IncompleteSignatureException', /'Host' .* must be a 'SignedHeader'/);
  await rejectsWith(verifySigV4(withAuth(auth, { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' }), lookup, now), 'InvalidSignatureException', /UNSIGNED-PAYLOAD/);
  await rejectsWith(verifySigV4(withAuth(auth, { 'x-amz-security-token': 'tok' }), lookup, now), 'UnrecognizedClientException', 'The security token included in the request is invalid.');
  await rejectsWith(verifySigV4(withAuth(auth.replace(/Signature=\w+/, 'Signature=00')), lookup, now), 'InvalidSignatureException', BAD_SIGNATURE);
  await rejectsWith(verifySigV4({ ...good, headers: { host: 'localhost:7000' }, rawUrl: '/v20190125/meshes?X-Amz-Signature=abc' }, lookup, now), 'IncompleteSignatureException', /presigned/);
  // A signed header changed on the way.
  await rejectsWith(verifySigV4({ ...good, headers: { ...good.headers, 'content-type': 'text/plain' } }, lookup, now), 'InvalidSignatureException', BAD_SIGNATURE);
  assert.deepEqual(await verifySigV4(good, lookup, now), { accessKeyId: CREDS.accessKeyId, region: 'us-east-1' });
});

test('the query string is canonicalised: order as sent does not matter, values are compared decoded', async () => {
  const at = new Date(Date.UTC(2026, 10, 22));
  const req = await signAt(at, '/v20190125/meshes', '', { nextToken: 'a b/+=', limit: '2', tag: ['z', 'y'] });
  const now = new ManualClock(at.getTime());
  const sent = { ...req, rawUrl: '/v20190125/meshes?tag=z&nextToken=a%20b%2F%2B%3D&limit=2&tag=y' };
  assert.deepEqual(await verifySigV4(sent, lookup, now), { accessKeyId: CREDS.accessKeyId, region: 'us-east-1' });
  await rejectsWith(verifySigV4({ ...req, rawUrl: '/v20190125/meshes?nextToken=a%20b&limit=2&tag=z&tag=y' }, lookup, now), 'InvalidSignatureException', BAD_SIGNATURE);
});
