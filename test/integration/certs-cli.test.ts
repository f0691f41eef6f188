// Seed 004 (mutual TLS with file-provided certificates), step 2 "Generate the Certificates", done with
// `keymesh certs` instead of certs.sh: a CA, then colorteller and gateway certificates. OpenSSL checks the
// files, and an OpenSSL mTLS server and client use them the way the two Envoys do in Part 2.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openssl, opensslOk } from '../../src/pki/testing-openssl.ts';
import { KEYMESH_MAIN, makeTempDir, removeDir } from '../support/keymesh-server.ts';

const DOMAIN = 'appmesh-mtls.local';

function keymesh(args: string[], env: Record<string, string | undefined> = {}) {
  const r = spawnSync(process.execPath, [KEYMESH_MAIN, 'certs', ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, KEYMESH_CA_PASSPHRASE: undefined, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function keymeshOk(args: string[], env: Record<string, string | undefined> = {}): string {
  const r = keymesh(args, env);
  assert.equal(r.code, 0, `keymesh certs ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** A user error: exit 1, one line on stderr matching `message`, no stack trace, nothing secret. */
function expectUserError(r: ReturnType<typeof keymesh>, message: RegExp): void {
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr.trimEnd(), message);
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, `one line: ${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

function pemBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
}

interface TlsServer {
  readonly port: number;
  /** Everything the server printed, once it has exited (it accepts one connection). */
  finished(): Promise<string>;
  close(): void;
}

/** `openssl s_server` on a free loopback port (port 0, read back from its ACCEPT line), one connection. */
async function startTlsServer(cwd: string, args: string[]): Promise<TlsServer> {
  // stdin stays an open pipe: s_server stops when its stdin reaches EOF.
  const child = spawn('openssl', ['s_server', '-accept', '127.0.0.1:0', '-naccept', '1', ...args], { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<string>((resolve) => child.on('close', () => resolve(output)));
  const killTimer = setTimeout(() => child.kill(), 15_000);
  exited.finally(() => clearTimeout(killTimer)).catch(() => {});
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`s_server did not start:\n${output}`)), 10_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /ACCEPT 127\.0\.0\.1:(\d+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', () => reject(new Error(`s_server exited:\n${output}`)));
  });
  return { port, finished: () => exited, close: () => child.kill() };
}

/** `openssl s_client` to the server; stdin is closed at once, so it ends right after the handshake. */
function tlsClient(cwd: string, port: number, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-brief', ...args], { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => child.kill(), 10_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
    child.stdin.end();
  });
}

/** Colorteller as in seed 004 Part 2 step 4: presents its chain and requires a client certificate from the CA. */
function colortellerServer(dir: string, extra: string[] = []): Promise<TlsServer> {
  return startTlsServer(dir, ['-cert', 'colorteller_cert.pem', '-cert_chain', 'colorteller_cert_chain.pem', '-key', 'colorteller_key.pem', '-CAfile', 'ca_cert.pem', '-Verify', '1', '-verify_return_error', ...extra]);
}

describe('keymesh certs reproduces seed 004\'s certificate set', () => {
  let dir = '';
  let outputs: string[] = [];

  before(() => {
    dir = makeTempDir('keymesh-certs-');
    outputs = [
      keymeshOk(['ca', '--out', dir]),
      keymeshOk(['issue', '--ca-dir', dir, '--name', 'colorteller', '--dns', `colorteller.${DOMAIN}`, '--out', dir]),
      keymeshOk(['issue', '--ca-dir', dir, '--name', 'gateway', '--dns', `gateway.${DOMAIN}`, '--out', dir]),
    ];
  });
  after(() => removeDir(dir));

  test('the files of certs.sh, keys mode 600 and never printed', () => {
    for (const name of ['ca_cert.pem', 'ca_key.pem', 'colorteller_key.pem', 'colorteller_cert.pem', 'colorteller_cert_chain.pem', 'gateway_key.pem', 'gateway_cert.pem', 'gateway_cert_chain.pem']) {
      const path = join(dir, name);
      if (name.endsWith('_key.pem')) {
        assert.equal(mode(path), 0o600, name);
        assert.match(readFileSync(path, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
        assert.equal(opensslOk(['pkey', '-in', path, '-check', '-noout']).trim(), 'Key is valid');
      } else {
        assert.equal(mode(path) & 0o022, 0, `${name} is not writable by others`);
      }
    }
    for (const out of outputs) assert.doesNotMatch(out, /PRIVATE KEY|BEGIN/);
    assert.match(outputs[1] ?? '', /colorteller_key\.pem \(mode 600\)/);
  });

  test('openssl verify -verbose -CAfile ca_cert.pem colorteller_cert.pem prints OK (the README\'s check)', () => {
    const r = openssl(['verify', '-verbose', '-CAfile', 'ca_cert.pem', 'colorteller_cert.pem'], { cwd: dir });
    assert.equal(r.status, 0, r.output);
    assert.equal(r.stdout, 'colorteller_cert.pem: OK\n');
    assert.equal(openssl(['verify', '-purpose', 'sslclient', '-CAfile', 'ca_cert.pem', 'gateway_cert.pem'], { cwd: dir }).stdout, 'gateway_cert.pem: OK\n');
  });

  test('the chain file is the certificate, then the CA (the *_cert_chain.pem role)', () => {
    for (const name of ['colorteller', 'gateway']) {
      const chain = pemBlocks(readFileSync(join(dir, `${name}_cert_chain.pem`), 'utf8'));
      assert.deepEqual(chain, [readFileSync(join(dir, `${name}_cert.pem`), 'utf8'), readFileSync(join(dir, 'ca_cert.pem'), 'utf8')]);
    }
  });

  test('the certificates carry what the seed\'s *_cert.cfg asks for', () => {
    const text = opensslOk(['x509', '-in', 'colorteller_cert.pem', '-noout', '-text'], { cwd: dir });
    assert.match(text, /Subject: CN ?= ?colorteller\.appmesh-mtls\.local\n/);
    assert.match(text, /Subject Alternative Name: \n\s+DNS:colorteller\.appmesh-mtls\.local\n/);
    assert.match(text, /Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /Extended Key Usage: \n\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    const ca = opensslOk(['x509', '-in', 'ca_cert.pem', '-noout', '-text'], { cwd: dir });
    assert.match(ca, /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
  });

  test('mutual TLS: the gateway (client certificate) and colorteller (server, requires one) handshake, each checking the other\'s SAN', async () => {
    const server = await colortellerServer(dir, ['-verify_hostname', `gateway.${DOMAIN}`]);
    try {
      const client = await tlsClient(dir, server.port, ['-cert', 'gateway_cert.pem', '-cert_chain', 'gateway_cert_chain.pem', '-key', 'gateway_key.pem',
        '-CAfile', 'ca_cert.pem', '-servername', `colorteller.${DOMAIN}`, '-verify_hostname', `colorteller.${DOMAIN}`, '-verify_return_error']);
      assert.equal(client.code, 0, client.output);
      assert.match(client.output, /CONNECTION ESTABLISHED/);
      assert.match(client.output, /Verification: OK/);
      assert.match(client.output, /Verified peername: colorteller\.appmesh-mtls\.local/);
      const serverOutput = await server.finished();
      assert.match(serverOutput, /depth=0 CN = gateway\.appmesh-mtls\.local\nverify return:1/);
    } finally {
      server.close();
    }
  });

  test('and fails the way seed 004 Part 2 shows: a wrong SAN (step 2), no client certificate (step 4)', async () => {
    const server = await colortellerServer(dir);
    try {
      const bogus = await tlsClient(dir, server.port, ['-cert', 'gateway_cert.pem', '-key', 'gateway_key.pem', '-CAfile', 'ca_cert.pem', '-verify_hostname', `bogus.${DOMAIN}`, '-verify_return_error']);
      assert.notEqual(bogus.code, 0);
      assert.match(bogus.output, /hostname mismatch/);
    } finally {
      server.close();
    }
    const strict = await colortellerServer(dir);
    try {
      await tlsClient(dir, strict.port, ['-CAfile', 'ca_cert.pem', '-verify_hostname', `colorteller.${DOMAIN}`, '-verify_return_error']);
      assert.match(await strict.finished(), /peer did not return a certificate/);
    } finally {
      strict.close();
    }
  });

  test('existing files are kept unless --force; with --force they are replaced', () => {
    const before = readFileSync(join(dir, 'gateway_key.pem'), 'utf8');
    const args = ['issue', '--ca-dir', dir, '--name', 'gateway', '--dns', `gateway.${DOMAIN}`, '--out', dir];
    expectUserError(keymesh(args), /gateway_key\.pem already exists; pass --force to replace it/);
    expectUserError(keymesh(['ca', '--out', dir]), /ca_cert\.pem already exists; pass --force/);
    assert.equal(readFileSync(join(dir, 'gateway_key.pem'), 'utf8'), before);
    keymeshOk([...args, '--force', '--key-type', 'rsa-2048']);
    assert.notEqual(readFileSync(join(dir, 'gateway_key.pem'), 'utf8'), before);
    assert.equal(mode(join(dir, 'gateway_key.pem')), 0o600);
    assert.equal(openssl(['verify', '-CAfile', 'ca_cert.pem', 'gateway_cert.pem'], { cwd: dir }).stdout, 'gateway_cert.pem: OK\n');
  });
});

describe('keymesh certs errors and the CA passphrase', () => {
  let dir = '';
  before(() => {
    dir = makeTempDir('keymesh-certs-err-');
  });
  after(() => removeDir(dir));

  test('bad flags and missing CA files: one clear line, exit 1, nothing written', () => {
    const ca = join(dir, 'plain');
    keymeshOk(['ca', '--out', ca, '--key-type', 'ec-p384', '--days', '10']);
    const out = join(dir, 'out');
    const issue = (...extra: string[]) => keymesh(['issue', '--ca-dir', ca, '--name', 'svc', '--out', out, ...extra]);
    expectUserError(issue('--dns', 'bad_name.local'), /^keymesh: --dns bad_name\.local: label "bad_name" is not a valid host name label/);
    expectUserError(issue('--dns', 'a..b'), /^keymesh: --dns a\.\.b: DNS name has an empty label/);
    expectUserError(issue('--uri', 'spiffe://Bad/x'), /^keymesh: --uri spiffe:\/\/Bad\/x: SPIFFE trust domain "Bad"/);
    expectUserError(issue(), /^keymesh: give at least one --dns or --uri/);
    expectUserError(issue('--dns', 'a.local', '--days', 'soon'), /^keymesh: --days soon: expected a whole number/);
    expectUserError(keymesh(['issue', '--ca-dir', join(dir, 'nowhere'), '--name', 'svc', '--dns', 'a.local', '--out', out]), /^keymesh: missing CA file .*nowhere\/ca_cert\.pem; create the CA with: keymesh certs ca --out /);
    expectUserError(keymesh(['issue', '--ca-dir', ca, '--name', '../escape', '--dns', 'a.local', '--out', out]), /^keymesh: --name \.\.\/escape: use letters, digits/);
    expectUserError(keymesh(['issue', '--ca-dir', ca, '--ca-name', 'colorteller', '--name', 'svc', '--dns', 'a.local', '--out', out]), /missing CA file .*colorteller_cert\.pem/);
    const badKeyType = keymesh(['ca', '--out', join(dir, 'x'), '--key-type', 'dsa']);
    assert.equal(badKeyType.code, 1);
    assert.match(badKeyType.stderr, /argument 'dsa' is invalid\. Allowed choices are ec-p256, ec-p384, rsa-2048, rsa-3072/);
    assert.equal(statSync(out, { throwIfNoEntry: false }), undefined, 'nothing written');
    // The key file swapped for the certificate: named, and explained.
    const swapped = join(dir, 'swapped');
    keymeshOk(['ca', '--out', swapped]);
    copyFileSync(join(swapped, 'ca_key.pem'), join(swapped, 'ca_cert.pem'));
    expectUserError(keymesh(['issue', '--ca-dir', swapped, '--name', 'svc', '--dns', 'a.local', '--out', out]), /ca_cert\.pem: expected a CERTIFICATE but it holds a PRIVATE KEY \(is this the key file\?/);
  });

  test('KEYMESH_CA_PASSPHRASE encrypts the CA key; issuing needs the same passphrase, and a wrong one is refused without being echoed', () => {
    const ca = join(dir, 'encrypted');
    const pass = 'correct horse battery staple';
    const created = keymeshOk(['ca', '--out', ca, '--key-type', 'rsa-2048'], { KEYMESH_CA_PASSPHRASE: pass });
    assert.match(created, /encrypted with KEYMESH_CA_PASSPHRASE/);
    const keyPath = join(ca, 'ca_key.pem');
    assert.match(readFileSync(keyPath, 'utf8'), /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
    assert.equal(mode(keyPath), 0o600);
    assert.equal(openssl(['pkey', '-in', keyPath, '-passin', `pass:${pass}`, '-noout']).status, 0);
    assert.notEqual(openssl(['pkey', '-in', keyPath, '-passin', 'pass:wrong', '-noout']).status, 0);

    const args = ['issue', '--ca-dir', ca, '--name', 'svc', '--dns', 'svc.local', '--out', join(dir, 'enc-out')];
    expectUserError(keymesh(args), /ca_key\.pem is encrypted: set KEYMESH_CA_PASSPHRASE to its passphrase$/);
    const wrong = keymesh(args, { KEYMESH_CA_PASSPHRASE: 'hunter2-not-it' });
    expectUserError(wrong, /ca_key\.pem: cannot decrypt the private key: wrong passphrase$/);
    assert.doesNotMatch(wrong.stdout + wrong.stderr, /hunter2/);
    expectUserError(keymesh(['ca', '--out', join(dir, 'empty'), '--force'], { KEYMESH_CA_PASSPHRASE: '' }), /KEYMESH_CA_PASSPHRASE is set but empty/);
    const issued = keymeshOk(args, { KEYMESH_CA_PASSPHRASE: pass });
    assert.doesNotMatch(issued, new RegExp(pass));
    assert.equal(openssl(['verify', '-CAfile', join(ca, 'ca_cert.pem'), join(dir, 'enc-out', 'svc_cert.pem')]).status, 0);
    // Leaf keys stay unencrypted: Envoy reads them as plain PEM files.
    assert.match(readFileSync(join(dir, 'enc-out', 'svc_key.pem'), 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
  });

  test('a URI-only (SPIFFE) certificate has no common name and a critical SAN; --days beyond the CA is cut to it', () => {
    const ca = join(dir, 'td');
    keymeshOk(['ca', '--out', ca, '--trust-domain', DOMAIN, '--days', '5']);
    const out = keymeshOk(['issue', '--ca-dir', ca, '--name', 'svid', '--uri', `spiffe://${DOMAIN}/colorteller`, '--days', '30', '--out', ca]);
    assert.match(out, /cut to the CA's expiry/);
    const text = opensslOk(['x509', '-in', join(ca, 'svid_cert.pem'), '-noout', '-text']);
    assert.match(text, /Subject: *\n/);
    assert.match(text, /Subject Alternative Name: critical\s+URI:spiffe:\/\/appmesh-mtls\.local\/colorteller\n/);
    assert.match(opensslOk(['x509', '-in', join(ca, 'ca_cert.pem'), '-noout', '-text']), /URI:spiffe:\/\/appmesh-mtls\.local\n/);
    assert.equal(
      opensslOk(['x509', '-in', join(ca, 'svid_cert.pem'), '-noout', '-enddate']),
      opensslOk(['x509', '-in', join(ca, 'ca_cert.pem'), '-noout', '-enddate']),
    );
  });
});
