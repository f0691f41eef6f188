import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ConfigError } from '../errors/index.ts';
import { formatExportLines, resolveAdminCredentials } from './credentials.ts';

const ENV_ID = 'AKIAKEYMESHENV00001';
const ENV_SECRET = 'env-secret-key-0123456789abcdefghij';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'keymesh-creds-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function configError(pattern: RegExp, notContaining?: string) {
  return (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.match(e.message, pattern);
    if (notContaining) assert.ok(!e.message.includes(notContaining), `message leaks the secret: ${e.message}`);
    return true;
  };
}

test('environment credentials take precedence over a stored file', (t) => {
  const dataDir = tempDir(t);
  resolveAdminCredentials({ dataDir, env: {} }); // stores a generated pair
  const creds = resolveAdminCredentials({ dataDir, env: { KEYMESH_ACCESS_KEY_ID: ENV_ID, KEYMESH_SECRET_ACCESS_KEY: ENV_SECRET } });
  assert.deepEqual(creds, { accessKeyId: ENV_ID, secretAccessKey: ENV_SECRET, source: 'env' });
});

test('only one of the two variables set is an error naming the missing one', (t) => {
  const dataDir = tempDir(t);
  assert.throws(() => resolveAdminCredentials({ dataDir, env: { KEYMESH_ACCESS_KEY_ID: ENV_ID } }), configError(/KEYMESH_SECRET_ACCESS_KEY is not/));
  assert.throws(() => resolveAdminCredentials({ dataDir, env: { KEYMESH_SECRET_ACCESS_KEY: ENV_SECRET } }), configError(/KEYMESH_ACCESS_KEY_ID is not/, ENV_SECRET));
  // Empty counts as unset: both empty falls through to the data directory.
  assert.equal(resolveAdminCredentials({ dataDir, env: { KEYMESH_ACCESS_KEY_ID: '', KEYMESH_SECRET_ACCESS_KEY: '' } }).source, 'generated');
});

test('badly formed environment credentials are refused without echoing the secret', (t) => {
  const dataDir = tempDir(t);
  assert.throws(() => resolveAdminCredentials({ dataDir, env: { KEYMESH_ACCESS_KEY_ID: 'short', KEYMESH_SECRET_ACCESS_KEY: ENV_SECRET } }), configError(/KEYMESH_ACCESS_KEY_ID must be 16 to 128/, ENV_SECRET));
  assert.throws(() => resolveAdminCredentials({ dataDir, env: { KEYMESH_ACCESS_KEY_ID: ENV_ID, KEYMESH_SECRET_ACCESS_KEY: 'has a space in it 0123' } }), configError(/KEYMESH_SECRET_ACCESS_KEY must be at least 16/, 'has a space'));
  assert.throws(() => resolveAdminCredentials({ dataDir, env: { KEYMESH_ACCESS_KEY_ID: ENV_ID, KEYMESH_SECRET_ACCESS_KEY: 'tooshort' } }), configError(/at least 16/, 'tooshort'));
});

test('first use generates AWS-like credentials, stores them mode 600 atomically, then reuses them', (t) => {
  const dataDir = tempDir(t);
  const first = resolveAdminCredentials({ dataDir, env: {} });
  assert.equal(first.source, 'generated');
  assert.match(first.accessKeyId, /^KM[A-Z0-9]{18}$/);
  assert.match(first.secretAccessKey, /^[A-Za-z0-9/+]{40}$/);

  const file = join(dataDir, 'credentials.json');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dataDir), ['credentials.json'], 'no temp file left behind');
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { accessKeyId: first.accessKeyId, secretAccessKey: first.secretAccessKey });

  const again = resolveAdminCredentials({ dataDir, env: {} });
  assert.deepEqual(again, { accessKeyId: first.accessKeyId, secretAccessKey: first.secretAccessKey, source: 'stored' });
  assert.notEqual(resolveAdminCredentials({ dataDir: tempDir(t), env: {} }).secretAccessKey, first.secretAccessKey);
});

test('with create: false a missing file is an error, not a new key pair', (t) => {
  const dataDir = tempDir(t);
  assert.throws(() => resolveAdminCredentials({ dataDir, env: {}, create: false }), configError(/does not exist/));
  assert.deepEqual(readdirSync(dataDir), []);
});

test('a credentials file readable by others is refused with the chmod fix', (t) => {
  const dataDir = tempDir(t);
  const file = join(dataDir, 'credentials.json');
  writeFileSync(file, JSON.stringify({ accessKeyId: ENV_ID, secretAccessKey: ENV_SECRET }));
  chmodSync(file, 0o644);
  assert.throws(() => resolveAdminCredentials({ dataDir, env: {} }), configError(/mode 644.*chmod 600 .*credentials\.json/, ENV_SECRET));
  chmodSync(file, 0o400); // stricter than 600 is fine
  assert.equal(resolveAdminCredentials({ dataDir, env: {} }).source, 'stored');
});

test('a malformed credentials file names the file and problem but never the secret', (t) => {
  const dataDir = tempDir(t);
  const file = join(dataDir, 'credentials.json');
  const cases: [string, RegExp][] = [
    [`{"accessKeyId": "${ENV_ID}", "secretAccessKey": "${ENV_SECRET}"`, /credentials\.json: it is not valid JSON/], // the parser would quote the secret
    [`{"accessKeyId": "${ENV_ID}", "secretAccessKey": "${ENV_SECRET} x"}`, /credentials\.json: secretAccessKey must be at least 16 characters with no whitespace/],
    [`{"secretAccessKey": "${ENV_SECRET}"}`, /credentials\.json: accessKeyId must be/],
    [`["${ENV_SECRET}"]`, /credentials\.json: expected a JSON object/],
  ];
  for (const [text, pattern] of cases) {
    writeFileSync(file, text, { mode: 0o600 });
    assert.throws(() => resolveAdminCredentials({ dataDir, env: {} }), configError(pattern, ENV_SECRET));
  }
});

test('formatExportLines gives one shell line for the AWS CLI and SDKs', () => {
  assert.equal(
    formatExportLines({ accessKeyId: 'KMABCDEFGHIJKLMNOPQR', secretAccessKey: 'abc/def+ghi' }, 'eu-west-1'),
    'export AWS_ACCESS_KEY_ID=KMABCDEFGHIJKLMNOPQR AWS_SECRET_ACCESS_KEY=abc/def+ghi AWS_DEFAULT_REGION=eu-west-1',
  );
});
