// The `keymesh` command line as a new user meets it: help, and clear one-line errors for bad flags and bad
// files, with nothing stored lost.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { KEYMESH_MAIN, makeTempDir, removeDir, REPO_ROOT } from '../support/keymesh-server.ts';

function keymesh(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [KEYMESH_MAIN, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, KEYMESH_ACCESS_KEY_ID: '', KEYMESH_SECRET_ACCESS_KEY: '', ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('keymesh --help lists the commands; each command has its own help', () => {
  const top = keymesh(['--help']);
  assert.equal(top.code, 0);
  assert.match(top.stdout, /server \[options\]\s+Run the control plane/);
  assert.match(top.stdout, /credentials \[options\]\s+Print the export lines/);
  const server = keymesh(['server', '--help']);
  assert.equal(server.code, 0);
  for (const flag of ['--data-dir', '--listen', '--region', '--account-id', '--limit', '--rate-limit', '--endpoint-grace', '--insecure-no-auth', 'KEYMESH_ACCESS_KEY_ID']) {
    assert.ok(server.stdout.includes(flag), `server --help mentions ${flag}`);
  }
  for (const command of ['proxy', 'gateway']) {
    const help = keymesh([command, '--help']).stdout;
    for (const flag of ['--upstream-max-requests-per-connection', '--upstream-tls-max-session-keys']) assert.ok(help.includes(flag), `${command} --help mentions ${flag}`);
  }
});

test('keymesh --version prints the package version; the compiled command (dist/, what an install runs) works the same', () => {
  const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const v = keymesh(['--version']);
  assert.equal(v.code, 0);
  assert.equal(v.stdout.trim(), version);
  const dist = join(REPO_ROOT, 'dist', 'cli', 'main.js');
  assert.ok(existsSync(dist), `${dist} is missing: npm ci builds it (npm run build)`);
  for (const args of [['--version'], ['proxy', '--help'], ['demo', '--help']]) {
    const r = spawnSync(process.execPath, [dist, ...args], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, `dist keymesh ${args.join(' ')}: ${r.stderr}`);
    if (args[0] === '--version') assert.equal(r.stdout.trim(), version);
    else assert.match(r.stdout, /^Usage: keymesh /);
  }
});

test('bad flags are refused with one clear line', () => {
  const cases: [string[], RegExp][] = [
    [['server', '--listen', 'localhost'], /--listen localhost: expected HOST:PORT/],
    [['server', '--listen', '127.0.0.1:99999'], /--listen 127\.0\.0\.1:99999/],
    [['server', '--account-id', '42'], /--account-id 42: must be 12 digits/],
    [['server', '--limit', 'widgets=3'], /unknown limit "widgets"/],
    [['server', '--rate-limit', 'fast'], /--rate-limit fast/],
    [['server', '--endpoint-grace', 'soon'], /--endpoint-grace soon: expected a duration/],
    [['proxy', '--virtual-node', 'web', '--control-plane-ca', 'ca.pem', '--listen-address', 'localhost'], /"localhost" is not an IP address/],
    [['proxy', '--virtual-node', 'web', '--control-plane-ca', 'ca.pem', '--ingress-port', '70000'], /"70000" is not a port \(1-65535\)/],
    [['proxy', '--virtual-node', 'web', '--control-plane-ca', 'ca.pem', '--upstream-max-requests-per-connection', '0'], /--upstream-max-requests-per-connection.*"0" is not an integer from 1 to 4294967295/],
    [['proxy', '--virtual-node', 'web', '--control-plane-ca', 'ca.pem', '--upstream-max-requests-per-connection', '1.5'], /"1\.5" is not an integer from 1 to 4294967295/],
    [['gateway', '--virtual-gateway', 'gw', '--control-plane-ca', 'ca.pem', '--upstream-tls-max-session-keys', 'none'], /--upstream-tls-max-session-keys.*"none" is not an integer from 0 to 4294967295/],
    [['gateway', '--virtual-gateway', 'gw', '--control-plane-ca', 'ca.pem', '--upstream-tls-max-session-keys', '4294967296'], /"4294967296" is not an integer from 0 to 4294967295/],
    [['proxy', '--virtual-node', 'web', '--control-plane-ca', 'ca.pem'], /name the virtual node with --mesh and --virtual-node/],
    [['gateway', '--mesh', 'm', '--virtual-gateway', 'gw', '--control-plane-ca', 'missing.pem'], /--control-plane-ca missing\.pem: cannot read it/],
    [['serve'], /unknown command 'serve'/],
  ];
  for (const [args, message] of cases) {
    const dir = makeTempDir();
    try {
      const r = keymesh(args[0] === 'proxy' || args[0] === 'gateway' ? args : [...args, '--data-dir', dir]);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace for a user error');
    } finally {
      removeDir(dir);
    }
  }
});

test('a damaged database or an exposed credentials file stops the server with an error naming the file, and the file is kept', () => {
  const dir = makeTempDir();
  try {
    const db = join(dir, 'keymesh.db');
    writeFileSync(db, 'this is not a database, but it might be someone\'s data'.repeat(100));
    const r = keymesh(['server', '--data-dir', dir, '--listen', '127.0.0.1:0'], { KEYMESH_ACCESS_KEY_ID: 'AKIAKEYMESHTEST0001', KEYMESH_SECRET_ACCESS_KEY: 'keymesh-test-secret-key-0123456789abcdef' });
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(db), r.stderr);
    assert.match(readFileSync(db, 'utf8'), /^this is not a database/);

    const dir2 = makeTempDir();
    const creds = join(dir2, 'credentials.json');
    writeFileSync(creds, JSON.stringify({ accessKeyId: 'KMAAAAAAAAAAAAAAAAAA', secretAccessKey: 'S'.repeat(40) }));
    chmodSync(creds, 0o644);
    const exposed = keymesh(['server', '--data-dir', dir2, '--listen', '127.0.0.1:0']);
    assert.equal(exposed.code, 1);
    assert.match(exposed.stderr, /chmod 600/);
    assert.doesNotMatch(exposed.stderr, /SSSSSSSS/, 'the secret is never printed');
    removeDir(dir2);
  } finally {
    removeDir(dir);
  }
});

test('keymesh bootstrap envoy prints a bootstrap that the Envoy Bootstrap proto accepts field for field', async () => {
  const { roundTrip } = await import('../../src/envoy/protos.ts');
  const r = keymesh(['bootstrap', 'envoy', '--mesh', 'appmesh-mtls', '--virtual-gateway', 'gateway', '--xds', '127.0.0.1:7444', '--control-plane-ca', 'cp-ca.pem', '--svid-dir', 'gw-svid']);
  assert.equal(r.code, 0, r.stderr);
  const bootstrap = JSON.parse(r.stdout) as { node: { id: string } };
  assert.equal(bootstrap.node.id, 'arn:aws:appmesh:us-east-1:000000000000:mesh/appmesh-mtls/virtualGateway/gateway');
  assert.deepEqual(roundTrip('type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap', bootstrap), bootstrap);
  const both = keymesh(['bootstrap', 'envoy', '--mesh', 'm', '--virtual-node', 'a', '--virtual-gateway', 'b', '--control-plane-ca', 'x', '--svid-dir', 'y']);
  assert.equal(both.code, 1);
  assert.match(both.stderr, /exactly one of --virtual-node or --virtual-gateway/);
  assert.match(keymesh(['bootstrap', 'envoy', '--mesh', 'm', '--virtual-node', 'a', '--xds', 'nowhere', '--control-plane-ca', 'x', '--svid-dir', 'y']).stderr, /--xds nowhere: expected HOST:PORT/);
  // The opt-in upstream connection settings go into node.metadata.keymesh; bad values are refused.
  const base = ['bootstrap', 'envoy', '--mesh', 'm', '--virtual-node', 'a', '--control-plane-ca', 'x', '--svid-dir', 'y', '--spiffe-id', 'spiffe://m/a'];
  const opted = keymesh([...base, '--upstream-max-requests-per-connection', '1', '--upstream-tls-max-session-keys', '0']);
  assert.equal(opted.code, 0, opted.stderr);
  assert.deepEqual((JSON.parse(opted.stdout) as { node: { metadata: unknown } }).node.metadata, { keymesh: { upstream_max_requests_per_connection: 1, upstream_tls_max_session_keys: 0 } });
  for (const [flag, value, message] of [
    ['--upstream-max-requests-per-connection', '0', /"0" is not an integer from 1 to 4294967295/],
    ['--upstream-tls-max-session-keys', '-1', /"-1" is not an integer from 0 to 4294967295/],
  ] as const) {
    const bad = keymesh([...base, flag, value]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, message);
  }
  const help = keymesh(['bootstrap', 'envoy', '--help']).stdout;
  for (const flag of ['--upstream-max-requests-per-connection', '--upstream-tls-max-session-keys']) assert.ok(help.includes(flag), `bootstrap envoy --help mentions ${flag}`);
});
