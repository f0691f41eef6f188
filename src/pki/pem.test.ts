// Certificate files: what OpenSSL writes parses, what keymesh writes is what OpenSSL reads, and every
// damaged or mixed-up file is a PemError that names the file and the problem.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PemError } from '../errors/index.ts';
import { parseCertificateChainPem, parseCertificatePem, toPem } from './pem.ts';
import { opensslOk, withScratchDir } from './testing-openssl.ts';

function opensslSelfSigned(cn: string): string {
  return opensslOk(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', '/dev/null', '-subj', `/CN=${cn}`, '-days', '1']);
}

function expectPemError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PemError, `expected a PemError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

test('certificates made by openssl parse, singly and as a chain in file order; toPem writes them back byte for byte', async () => {
  const a = opensslSelfSigned('a.example');
  const b = opensslSelfSigned('b.example');
  const cert = parseCertificatePem(a, 'a.pem');
  assert.equal(cert.subject, 'CN=a.example');
  assert.equal(toPem(cert), a);

  const chain = parseCertificateChainPem(`${a}${b}`, 'chain.pem');
  assert.deepEqual(chain.map((c) => c.subject), ['CN=a.example', 'CN=b.example']);
  assert.equal(toPem(chain), `${a}${b}`);

  // Text around the blocks (as `openssl x509 -text` leaves it) and CRLF line ends are fine.
  const text = opensslOk(['x509', '-text'], { input: a });
  assert.equal(parseCertificatePem(text, 'text.pem').subject, 'CN=a.example');
  assert.equal(parseCertificatePem(a.replace(/\n/g, '\r\n'), 'crlf.pem').subject, 'CN=a.example');

  await withScratchDir(async (_dir, write) => {
    const path = write('back.pem', toPem(chain));
    assert.match(opensslOk(['crl2pkcs7', '-nocrl', '-certfile', path]), /BEGIN PKCS7/);
    assert.match(opensslOk(['x509', '-in', path, '-noout', '-subject']), /CN ?= ?a\.example/);
  });
});

test('bad certificate files are PemErrors naming the file and what is wrong', () => {
  const a = opensslSelfSigned('a.example');
  const key = opensslOk(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']);
  const lines = a.trimEnd().split('\n');
  const cases: [string, RegExp][] = [
    ['', /^ca_cert\.pem: no PEM block found \(the file is empty\)$/],
    ['not a certificate at all', /^ca_cert\.pem: no PEM block found \(no "-----BEGIN \.\.\.-----" line\)$/],
    [key, /^ca_cert\.pem: expected a CERTIFICATE but it holds a PRIVATE KEY \(is this the key file\?/],
    [`${a}${key}`, /^ca_cert\.pem: expected a CERTIFICATE but block 2 is a PRIVATE KEY/],
    [lines.slice(0, 5).join('\n'), /^ca_cert\.pem: the CERTIFICATE block has no "-----END CERTIFICATE-----" line; the file is cut short or damaged$/],
    [a.replace('-----END CERTIFICATE-----', '-----END PRIVATE KEY-----'), /^ca_cert\.pem: the CERTIFICATE block ends with "-----END PRIVATE KEY-----"/],
    [a.replace(/\n(.{5})/, '\n$1*'), /^ca_cert\.pem: the CERTIFICATE block is damaged: its base64 content is invalid$/],
    // Valid base64 of a cut-short DER certificate: whole lines removed from the middle.
    [[...lines.slice(0, 4), lines.at(-1)].join('\n'), /^ca_cert\.pem: certificate 1 is damaged: its content is not a valid X\.509 certificate$/],
  ];
  for (const [pem, message] of cases) {
    expectPemError(() => parseCertificatePem(pem, 'ca_cert.pem'), message);
  }
  expectPemError(() => parseCertificatePem(`${a}${a}`, 'leaf.pem'), /^leaf\.pem: expected one certificate, found 2$/);
  expectPemError(() => parseCertificateChainPem(key, 'colorteller_cert_chain.pem'), /^colorteller_cert_chain\.pem: expected a CERTIFICATE but it holds a PRIVATE KEY/);
});
