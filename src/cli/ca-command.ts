// `keymesh ca ...` and `keymesh token ...`: the certificate authority of a running `keymesh server`, through
// its admin endpoints (SigV4-signed with the admin credentials, like the AWS CLI). Answers are printed as
// JSON, except PEM (bundle, CRL, CSR) and the tables of issued certificates and tokens.
import { readFileSync, writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { ConfigError } from '../errors/index.ts';
import { KEY_TYPES } from '../pki/api.ts';
import { adminCall } from './admin-client.ts';
import { chosenIdentity, identityOptions, target, withConnection, type ConnFlags, type IdentityFlags } from './admin-options.ts';
import { isoOrDash, table } from './text-table.ts';
import { parseDuration } from '../config/durations.ts';

const enc = encodeURIComponent;

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function readPemFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The admin path of the endpoint named by --virtual-node or --virtual-gateway. */
function identityPath(flags: IdentityFlags): string {
  const { kind, name } = chosenIdentity(flags);
  return `/keymesh/v1/meshes/${enc(flags.mesh)}/${kind}s/${enc(name)}`;
}

export function registerCaCommands(program: Command): void {
  const ca = program.command('ca').description("Manage the meshes' certificate authorities on a running keymesh server.");

  withConnection(ca.command('settings').description("Show or change a mesh's CA settings (trust domain, SVID lifetime, key type)."))
    .requiredOption('--mesh <mesh>', 'the mesh')
    .option('--trust-domain <td>', 'SPIFFE trust domain (only before the mesh has a CA)')
    .option('--svid-ttl <duration>', 'lifetime of issued SVIDs, e.g. 1h, 30m (default 1h)')
    .addOption(new Option('--key-type <type>', 'key type of CAs keymesh creates for the mesh').choices(KEY_TYPES))
    .action(async (f: ConnFlags & { mesh: string; trustDomain?: string; svidTtl?: string; keyType?: string }) => {
      const path = `/keymesh/v1/meshes/${enc(f.mesh)}/ca/settings`;
      const change = {
        ...(f.trustDomain !== undefined ? { trustDomain: f.trustDomain } : {}),
        ...(f.svidTtl !== undefined ? { svidTtlSeconds: Math.round(parseDuration(f.svidTtl, '--svid-ttl') / 1000) } : {}),
        ...(f.keyType !== undefined ? { keyType: f.keyType } : {}),
      };
      print(Object.keys(change).length ? await adminCall(target(f), 'PUT', path, change) : await adminCall(target(f), 'GET', path));
    });

  withConnection(ca.command('init').description("Create the mesh's CA (a self-signed root) if it has none; show the active CA."))
    .requiredOption('--mesh <mesh>', 'the mesh')
    .action(async (f: ConnFlags & { mesh: string }) => print(await adminCall(target(f), 'POST', `/keymesh/v1/meshes/${enc(f.mesh)}/ca`)));

  withConnection(ca.command('import').description('Bring your own CA: its certificate and key (and, for an intermediate, the chain up to your root).'))
    .requiredOption('--mesh <mesh>', 'the mesh')
    .requiredOption('--cert <file>', 'the CA certificate (PEM)')
    .requiredOption('--key <file>', 'its private key (PEM; encrypted keys need KEYMESH_IMPORT_KEY_PASSPHRASE)')
    .option('--chain <file>', 'the certificates above it, issuer first, ending with the root (PEM)')
    .action(async (f: ConnFlags & { mesh: string; cert: string; key: string; chain?: string }) => {
      const passphrase = process.env.KEYMESH_IMPORT_KEY_PASSPHRASE;
      print(await adminCall(target(f), 'POST', `/keymesh/v1/meshes/${enc(f.mesh)}/ca/import`, {
        certPem: readPemFile(f.cert, 'CA certificate'), keyPem: readPemFile(f.key, 'CA key'),
        ...(f.chain !== undefined ? { chainPem: readPemFile(f.chain, 'chain') } : {}), ...(passphrase ? { keyPassphrase: passphrase } : {}),
      }));
    });

  withConnection(ca.command('csr').description('Start an intermediate CA signed by your offline root: keymesh keeps the key and writes the CSR.'))
    .requiredOption('--mesh <mesh>', 'the mesh')
    .requiredOption('--out <file>', 'where to write the CSR (PEM)')
    .option('--common-name <cn>', 'subject common name of the CA')
    .addOption(new Option('--key-type <type>', 'key type').choices(KEY_TYPES))
    .action(async (f: ConnFlags & { mesh: string; out: string; commonName?: string; keyType?: string }) => {
      const r = await adminCall<{ ca: { id: string; arn: string }; csrPem: string }>(target(f), 'POST', `/keymesh/v1/meshes/${enc(f.mesh)}/ca/csr`, {
        ...(f.commonName !== undefined ? { commonName: f.commonName } : {}), ...(f.keyType !== undefined ? { keyType: f.keyType } : {}),
      });
      writeFileSync(f.out, r.csrPem);
      process.stdout.write(`CA ${r.ca.id} (${r.ca.arn}) is pending; CSR written to ${f.out}.\nSign it with your root as a CA (CA:TRUE, keyCertSign, cRLSign), then: keymesh ca import-signed --ca ${r.ca.id} --cert SIGNED.pem --chain ROOT_CHAIN.pem\n`);
    });

  withConnection(ca.command('import-signed').description('Complete a CA started with `ca csr` with the certificate your root signed.'))
    .requiredOption('--ca <id-or-arn>', 'the pending CA')
    .requiredOption('--cert <file>', 'the signed CA certificate (PEM)')
    .requiredOption('--chain <file>', 'the certificates above it, ending with your root (PEM)')
    .action(async (f: ConnFlags & { ca: string; cert: string; chain: string }) =>
      print(await adminCall(target(f), 'POST', `/keymesh/v1/cas/${enc(f.ca)}/signed`, { certPem: readPemFile(f.cert, 'certificate'), chainPem: readPemFile(f.chain, 'chain') })));

  withConnection(ca.command('list').description('List CAs with their status (pending, prepared, active, retiring, retired) and validity.'))
    .option('--mesh <mesh>', 'only this mesh')
    .action(async (f: ConnFlags & { mesh?: string }) => {
      const r = await adminCall<{ cas: { id: string; mesh: string; trustDomain: string; status: string; keyType: string; origin: string; notAfter: number }[] }>(
        target(f), 'GET', `/keymesh/v1/cas${f.mesh ? `?mesh=${enc(f.mesh)}` : ''}`);
      process.stdout.write(`${table([['ID', 'MESH', 'TRUST DOMAIN', 'STATUS', 'KEY', 'ORIGIN', 'NOT AFTER'], ...r.cas.map((c) => [c.id, c.mesh, c.trustDomain, c.status, c.keyType, c.origin, isoOrDash(c.notAfter)])])}\n`);
    });

  withConnection(ca.command('show').description('Show one CA (by id or ARN), including its certificate.'))
    .argument('<ca>', 'CA id or arn:aws:acm-pca:... ARN')
    .action(async (ref: string, f: ConnFlags) => print(await adminCall(target(f), 'GET', `/keymesh/v1/cas/${enc(ref)}`)));

  const rotate = ca.command('rotate').description('Rotate a mesh CA without a failed handshake: prepare, activate; the old CA retires on its own.');
  withConnection(rotate.command('prepare').description("Add a new CA to the mesh's trust bundle (it does not sign yet)."))
    .requiredOption('--mesh <mesh>', 'the mesh')
    .action(async (f: ConnFlags & { mesh: string }) => print(await adminCall(target(f), 'POST', `/keymesh/v1/meshes/${enc(f.mesh)}/ca/rotation`)));
  withConnection(rotate.command('activate').description('Switch issuance to the prepared CA once every proxy holds the new bundle.'))
    .requiredOption('--ca <id-or-arn>', 'the prepared CA')
    .option('--force', 'activate even if some proxy may not have the new bundle yet (their handshakes may fail)')
    .action(async (f: ConnFlags & { ca: string; force?: boolean }) => print(await adminCall(target(f), 'POST', `/keymesh/v1/cas/${enc(f.ca)}/activate`, { force: f.force === true })));
  withConnection(rotate.command('abandon').description('Drop a pending or prepared CA.'))
    .requiredOption('--ca <id-or-arn>', 'the CA')
    .action(async (f: ConnFlags & { ca: string }) => print(await adminCall(target(f), 'POST', `/keymesh/v1/cas/${enc(f.ca)}/abandon`)));

  withConnection(ca.command('bundle').description("Print a mesh's trust bundle (PEM): the CA certificates its proxies trust."))
    .requiredOption('--mesh <mesh>', 'the mesh')
    .action(async (f: ConnFlags & { mesh: string }) => {
      const r = await adminCall<{ bundlePem: string }>(target(f), 'GET', `/keymesh/v1/meshes/${enc(f.mesh)}/bundle`);
      process.stdout.write(r.bundlePem);
    });

  withConnection(ca.command('crl').description("Print a CA's certificate revocation list (PEM); also served without credentials at /keymesh/v1/public/crl/CA."))
    .requiredOption('--ca <id-or-arn>', 'the CA')
    .action(async (f: ConnFlags & { ca: string }) => {
      process.stdout.write(await adminCall<string>(target(f), 'GET', `/keymesh/v1/public/crl/${enc(f.ca)}`));
    });

  withConnection(ca.command('issued').description('List issued certificates with their expiry and revocation.'))
    .option('--mesh <mesh>', 'only this mesh')
    .option('--spiffe-id <id>', 'only this identity')
    .option('--unexpired', 'only certificates that have not expired')
    .action(async (f: ConnFlags & { mesh?: string; spiffeId?: string; unexpired?: boolean }) => {
      const q = new URLSearchParams({ ...(f.mesh ? { mesh: f.mesh } : {}), ...(f.spiffeId ? { spiffeId: f.spiffeId } : {}), ...(f.unexpired ? { unexpired: 'true' } : {}) });
      const r = await adminCall<{ certificates: { serial: string; kind: string; spiffeId: string | null; managedArn: string | null; caId: string; notAfter: number; revokedAt: number | null }[] }>(
        target(f), 'GET', `/keymesh/v1/issued?${q}`);
      const rows = r.certificates.map((c) => [c.serial, c.spiffeId ?? c.managedArn ?? '-', c.caId, isoOrDash(c.notAfter), c.revokedAt ? `revoked ${isoOrDash(c.revokedAt)}` : '']);
      process.stdout.write(`${table([['SERIAL', 'IDENTITY', 'CA', 'NOT AFTER', 'REVOKED'], ...rows])}\n`);
    });

  withConnection(ca.command('revoke').description('Revoke one certificate by serial (hex).'))
    .requiredOption('--serial <hex>', 'the certificate serial number')
    .action(async (f: ConnFlags & { serial: string }) => print(await adminCall(target(f), 'POST', `/keymesh/v1/issued/${enc(f.serial.replace(/:/g, '').toLowerCase())}/revoke`)));

  withConnection(identityOptions(ca.command('revoke-identity').description('Revoke every certificate of a virtual node or gateway and stop it from bootstrapping or renewing.')))
    .option('--reason <text>', 'why (shown in errors the identity gets)')
    .action(async (f: ConnFlags & { mesh: string; virtualNode?: string; virtualGateway?: string; reason?: string }) =>
      print(await adminCall(target(f), 'POST', `${identityPath(f)}/revoke`, f.reason ? { reason: f.reason } : {})));

  withConnection(identityOptions(ca.command('reinstate-identity').description('Let a revoked identity bootstrap again (with a new join token).')))
    .action(async (f: ConnFlags & { mesh: string; virtualNode?: string; virtualGateway?: string }) => print(await adminCall(target(f), 'DELETE', `${identityPath(f)}/revoke`)));

  // ACM-style managed certificates (seed 002): `certificate.acm.certificateArn` in specs names one of these.
  withConnection(ca.command('request-certificate').description('Issue a managed certificate (arn:aws:acm:...) from a mesh CA; keymesh keeps its key and renews it before expiry.'))
    .requiredOption('--mesh <mesh>', 'the mesh')
    .requiredOption('--domain-name <name>', 'the certificate\'s DNS name, e.g. *.appmesh-acm.local')
    .option('--san <name>', 'another DNS name (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--ca <arn>', "the CA to issue from (default: the mesh's active CA)")
    .option('--validity-days <n>', 'lifetime in days (default 30)')
    .action(async (f: ConnFlags & { mesh: string; domainName: string; san: string[]; ca?: string; validityDays?: string }) => {
      const t = target(f);
      const caArn = f.ca ?? (await adminCall<{ arn: string }>(t, 'POST', `/keymesh/v1/meshes/${enc(f.mesh)}/ca`)).arn;
      const days = f.validityDays === undefined ? undefined : Number(f.validityDays);
      if (days !== undefined && !(Number.isInteger(days) && days > 0)) throw new ConfigError(`--validity-days ${f.validityDays}: expected a whole number of days`);
      print(await adminCall(t, 'POST', '/keymesh/v1/managed-certificates', {
        mesh: f.mesh, caArn, domainName: f.domainName, ...(f.san.length ? { subjectAlternativeNames: [f.domainName, ...f.san] } : {}),
        ...(days !== undefined ? { validityDays: days } : {}),
      }));
    });
  withConnection(ca.command('certificates').description('List managed certificates with their expiry.'))
    .option('--mesh <mesh>', 'only this mesh')
    .action(async (f: ConnFlags & { mesh?: string }) => {
      const r = await adminCall<{ certificates: { arn: string; domainName: string; notAfter: number; renewedAt: number | null }[] }>(
        target(f), 'GET', `/keymesh/v1/managed-certificates${f.mesh ? `?mesh=${enc(f.mesh)}` : ''}`);
      process.stdout.write(`${table([['ARN', 'DOMAIN', 'NOT AFTER', 'RENEWED'], ...r.certificates.map((c) => [c.arn, c.domainName, isoOrDash(c.notAfter), isoOrDash(c.renewedAt)])])}\n`);
    });
  withConnection(ca.command('renew-certificate').description("Re-issue a managed certificate now (new key, from the mesh's active CA); proxies get it over SDS."))
    .argument('<arn>', 'arn:aws:acm:... ARN')
    .action(async (arn: string, f: ConnFlags) => print(await adminCall(target(f), 'POST', `/keymesh/v1/managed-certificates/${enc(arn)}/renew`)));
  withConnection(ca.command('delete-certificate').description('Delete a managed certificate and its key.'))
    .argument('<arn>', 'arn:aws:acm:... ARN')
    .action(async (arn: string, f: ConnFlags) => print(await adminCall(target(f), 'DELETE', `/keymesh/v1/managed-certificates/${enc(arn)}`)));

  const token = program.command('token').description('Join tokens: the single-use credential a new proxy bootstraps its identity with.');
  withConnection(identityOptions(token.command('create').description('Create a join token bound to one virtual node or virtual gateway.')))
    .option('--ttl <duration>', 'how long the token stays usable, e.g. 10m, 1h (default 10m, at most 24h)')
    .option('--ca-out <file>', 'also write the control-plane CA certificate the proxy must pin to this file')
    .option('--json', 'print the whole answer as JSON')
    .action(async (f: ConnFlags & { mesh: string; virtualNode?: string; virtualGateway?: string; ttl?: string; caOut?: string; json?: boolean }) => {
      const ttl = f.ttl !== undefined ? { ttlSeconds: Math.max(1, Math.round(parseDuration(f.ttl, '--ttl') / 1000)) } : {};
      const r = await adminCall<{ token: string; id: string; spiffeId: string; expiresAt: number; identityEndpoint: string; controlPlaneCaPem: string }>(
        target(f), 'POST', `${identityPath(f)}/join-tokens`, ttl);
      if (f.caOut) writeFileSync(f.caOut, r.controlPlaneCaPem);
      if (f.json) return print(r);
      process.stdout.write(`${r.token}\n`);
      process.stderr.write(`Join token ${r.id} for ${r.spiffeId}, single use, expires ${isoOrDash(r.expiresAt)}.\nIdentity endpoint: ${r.identityEndpoint}${f.caOut ? ` (pin the CA in ${f.caOut})` : ''}\n`);
    });
  withConnection(token.command('list').description('List join tokens (never their secrets).'))
    .option('--mesh <mesh>', 'only this mesh')
    .action(async (f: ConnFlags & { mesh?: string }) => {
      const r = await adminCall<{ joinTokens: { id: string; spiffeId: string; expiresAt: number; usedAt: number | null }[] }>(target(f), 'GET', `/keymesh/v1/join-tokens${f.mesh ? `?mesh=${enc(f.mesh)}` : ''}`);
      process.stdout.write(`${table([['ID', 'IDENTITY', 'EXPIRES', 'USED'], ...r.joinTokens.map((t) => [t.id, t.spiffeId, isoOrDash(t.expiresAt), isoOrDash(t.usedAt)])])}\n`);
    });
  withConnection(token.command('delete').description('Delete a join token so it can no longer be used.'))
    .argument('<id>', 'the token id (the middle part of kmjt1.ID.SECRET)')
    .action(async (id: string, f: ConnFlags) => print(await adminCall(target(f), 'DELETE', `/keymesh/v1/join-tokens/${enc(id)}`)));
}
