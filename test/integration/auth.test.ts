// Authentication as AWS clients see it: generated credentials on first start, signatures verified, and a
// request with the wrong secret refused with the error the AWS CLI expects, changing nothing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ListMeshesCommand } from '@aws-sdk/client-app-mesh';
import { appmeshCli, sdkClient } from '../support/aws-cli.ts';
import { KEYMESH_MAIN, makeTempDir, removeDir, startKeymeshServer } from '../support/keymesh-server.ts';

function exportedCredentials(text: string): { accessKeyId: string; secretAccessKey: string } {
  const id = /AWS_ACCESS_KEY_ID=(\S+)/.exec(text)?.[1];
  const secret = /AWS_SECRET_ACCESS_KEY=(\S+)/.exec(text)?.[1];
  assert.ok(id && secret, `no export line in:\n${text}`);
  return { accessKeyId: id, secretAccessKey: secret };
}

test('first start generates credentials (0600), prints the export lines, and reuses them after a restart', async () => {
  const dataDir = makeTempDir();
  try {
    const first = await startKeymeshServer({ dataDir, generatedCredentials: true });
    const creds = exportedCredentials(first.stdout());
    const file = join(dataDir, 'credentials.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(statSync(dataDir).mode & 0o777, 0o700);
    const created = await appmeshCli(first.url, ['create-mesh', '--mesh-name', 'generated'], creds);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.json.mesh.meshName, 'generated');
    await first.stop();

    const second = await startKeymeshServer({ dataDir, generatedCredentials: true });
    assert.doesNotMatch(second.stdout(), /AWS_SECRET_ACCESS_KEY/, 'a restart must not print the secret again');
    const listed = await appmeshCli(second.url, ['list-meshes'], creds);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(listed.json.meshes.map((m: { meshName: string }) => m.meshName), ['generated']);
    await second.stop();

    // `keymesh credentials` prints the same lines for the stored credentials.
    const printed = spawnSync(process.execPath, [KEYMESH_MAIN, 'credentials', '--data-dir', dataDir], { encoding: 'utf8', env: { ...process.env, KEYMESH_ACCESS_KEY_ID: '', KEYMESH_SECRET_ACCESS_KEY: '' } });
    assert.equal(printed.status, 0, printed.stderr);
    assert.deepEqual(exportedCredentials(printed.stdout), creds);
    assert.ok(readFileSync(file, 'utf8').includes(creds.accessKeyId));
  } finally {
    removeDir(dataDir);
  }
});

test('a wrong secret key is refused with InvalidSignatureException and changes nothing', async () => {
  const server = await startKeymeshServer();
  try {
    const wrong = { accessKeyId: 'AKIAKEYMESHTEST0001', secretAccessKey: 'not-the-right-secret-0000000000000000' };
    const cli = await appmeshCli(server.url, ['create-mesh', '--mesh-name', 'intruder'], wrong);
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr, /InvalidSignatureException/);
    assert.match(cli.stderr, /signature we calculated does not match/);

    const unknownKey = await appmeshCli(server.url, ['create-mesh', '--mesh-name', 'intruder'], { accessKeyId: 'AKIAUNKNOWN000000000', secretAccessKey: 'whatever-secret-000000000000000000000' });
    assert.notEqual(unknownKey.code, 0);
    assert.match(unknownKey.stderr, /UnrecognizedClientException/);

    const sdk = sdkClient(server.url, wrong);
    await assert.rejects(sdk.send(new ListMeshesCommand({})), (e: Error) => e.name === 'InvalidSignatureException');
    sdk.destroy();

    const unsigned = await fetch(`${server.url}/v20190125/meshes`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"meshName":"intruder"}' });
    assert.equal(unsigned.status, 403);
    assert.equal(unsigned.headers.get('x-amzn-errortype'), 'MissingAuthenticationTokenException');

    const listed = await appmeshCli(server.url, ['list-meshes']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(listed.json.meshes, []);
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
});

test('--insecure-no-auth accepts unsigned requests and says so loudly', async () => {
  const server = await startKeymeshServer({ args: ['--insecure-no-auth'] });
  try {
    // stderr is its own pipe: give it a moment to catch up with stdout's "listening" line.
    for (let i = 0; i < 50 && !server.stderr().includes('WARNING'); i += 1) await new Promise((r) => setTimeout(r, 20));
    assert.match(server.stderr(), /WARNING: --insecure-no-auth/);
    const res = await fetch(`${server.url}/v20190125/meshes`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"meshName":"open"}' });
    assert.equal(res.status, 200);
    assert.equal((await res.json() as { meshName: string }).meshName, 'open');
  } finally {
    await server.stop();
    removeDir(server.dataDir);
  }
});
