// Quotas answer LimitExceededException and request bursts TooManyRequestsException, as App Mesh does;
// neither changes what is stored.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CreateMeshCommand, CreateVirtualNodeCommand, ListMeshesCommand, ListVirtualNodesCommand } from '@aws-sdk/client-app-mesh';
import { sdkClient } from '../support/aws-cli.ts';
import { removeDir, startKeymeshServer } from '../support/keymesh-server.ts';

test('a quota reached is LimitExceededException, and --limit raises it', async () => {
  const server = await startKeymeshServer({ args: ['--limit', 'meshes=2', '--limit', 'backendsPerVirtualNode=1'] });
  const client = sdkClient(server.url);
  try {
    await client.send(new CreateMeshCommand({ meshName: 'one' }));
    await client.send(new CreateMeshCommand({ meshName: 'two' }));
    await assert.rejects(client.send(new CreateMeshCommand({ meshName: 'three' })), (e: Error & { $metadata: { httpStatusCode: number } }) => {
      assert.equal(e.name, 'LimitExceededException');
      assert.equal(e.$metadata.httpStatusCode, 400);
      assert.match(e.message, /limit of 2 meshes/);
      return true;
    });
    const backends = [{ virtualService: { virtualServiceName: 'a.local' } }, { virtualService: { virtualServiceName: 'b.local' } }];
    await assert.rejects(client.send(new CreateVirtualNodeCommand({ meshName: 'one', virtualNodeName: 'n', spec: { backends } })), /at most 1 backends/);
    assert.deepEqual((await client.send(new ListMeshesCommand({}))).meshes?.map((m) => m.meshName), ['one', 'two']);
    assert.deepEqual((await client.send(new ListVirtualNodesCommand({ meshName: 'one' }))).virtualNodes, []);
  } finally {
    client.destroy();
    await server.stop();
    removeDir(server.dataDir);
  }

  const bad = await startKeymeshServer({ args: ['--limit', 'meshes=0'] }).then(
    () => assert.fail('a zero limit must be refused'),
    (e: Error) => e.message,
  );
  assert.match(bad, /--limit meshes=0: value must be a positive integer/);
});

test('a burst above --rate-limit gets TooManyRequestsException, which SDKs retry', async () => {
  const server = await startKeymeshServer({ args: ['--rate-limit', '2'] });
  const once = sdkClient(server.url);
  try {
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => once.send(new ListMeshesCommand({}))));
    const throttled = results.filter((r) => r.status === 'rejected' && (r.reason as Error).name === 'TooManyRequestsException');
    assert.ok(throttled.length >= 6, `expected most of the burst to be throttled; ${throttled.length} were`);
    assert.ok(results.some((r) => r.status === 'fulfilled'));
    // The SDK's standard retry mode backs off and gets through.
    const retrying = sdkClient(server.url, undefined, 5);
    await new Promise((r) => setTimeout(r, 1000));
    const ok = await retrying.send(new ListMeshesCommand({}));
    assert.deepEqual(ok.meshes, []);
    retrying.destroy();
  } finally {
    once.destroy();
    await server.stop();
    removeDir(server.dataDir);
  }
});
