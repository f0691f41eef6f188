// Data survives a restart, and a `kill -9` in the middle of a burst of writes loses no acknowledged write.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CreateMeshCommand, CreateVirtualNodeCommand, DescribeVirtualNodeCommand, ListTagsForResourceCommand, ListVirtualNodesCommand, UpdateVirtualNodeCommand } from '@aws-sdk/client-app-mesh';
import { sdkClient } from '../support/aws-cli.ts';
import { makeTempDir, removeDir, startKeymeshServer } from '../support/keymesh-server.ts';

test('resources, versions and tags survive a clean restart', async () => {
  const dataDir = makeTempDir();
  try {
    const first = await startKeymeshServer({ dataDir });
    const writer = sdkClient(first.url);
    let updated;
    try {
      await writer.send(new CreateMeshCommand({ meshName: 'persist', tags: [{ key: 'a', value: 'b' }] }));
      await writer.send(new CreateVirtualNodeCommand({ meshName: 'persist', virtualNodeName: 'n', spec: {} }));
      updated = await writer.send(new UpdateVirtualNodeCommand({ meshName: 'persist', virtualNodeName: 'n', spec: { backends: [{ virtualService: { virtualServiceName: 's.local' } }] } }));
    } finally {
      writer.destroy();
      await first.stop();
    }

    const second = await startKeymeshServer({ dataDir });
    const reader = sdkClient(second.url);
    try {
      const after = await reader.send(new DescribeVirtualNodeCommand({ meshName: 'persist', virtualNodeName: 'n' }));
      assert.deepEqual(after.virtualNode, updated.virtualNode);
      assert.deepEqual((await reader.send(new ListTagsForResourceCommand({ resourceArn: `arn:aws:appmesh:us-east-1:000000000000:mesh/persist` }))).tags, [{ key: 'a', value: 'b' }]);
    } finally {
      reader.destroy();
      await second.stop();
    }
  } finally {
    removeDir(dataDir);
  }
});

test('kill -9 during a burst of writes loses no acknowledged write', async () => {
  const dataDir = makeTempDir();
  try {
    const server = await startKeymeshServer({ dataDir, args: ['--rate-limit', '100000', '--limit', 'virtualNodesPerMesh=5000'] });
    const client = sdkClient(server.url);
    await client.send(new CreateMeshCommand({ meshName: 'burst' }));
    const acknowledged: string[] = [];
    let stop = false;
    const deadline = Date.now() + 20_000;
    // Four concurrent writers, bounded in count and time; the server is killed while they run.
    const writer = async (w: number) => {
      for (let i = 0; i < 500 && !stop && Date.now() < deadline; i += 1) {
        const name = `w${w}-${String(i).padStart(4, '0')}`;
        try {
          await client.send(new CreateVirtualNodeCommand({ meshName: 'burst', virtualNodeName: name, spec: {} }));
          acknowledged.push(name);
        } catch {
          return; // the server died under us: this write was never acknowledged
        }
      }
    };
    const writers = [0, 1, 2, 3].map(writer);
    while (acknowledged.length < 60 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await server.kill();
    stop = true;
    await Promise.all(writers);
    client.destroy();
    assert.ok(acknowledged.length >= 60, `only ${acknowledged.length} writes were acknowledged before the kill`);

    const again = await startKeymeshServer({ dataDir, args: ['--limit', 'virtualNodesPerMesh=5000'] });
    const reader = sdkClient(again.url);
    const stored = new Set<string>();
    let nextToken: string | undefined;
    for (let pages = 0; pages < 100; pages += 1) {
      const page = await reader.send(new ListVirtualNodesCommand({ meshName: 'burst', nextToken }));
      for (const n of page.virtualNodes ?? []) stored.add(n.virtualNodeName!);
      nextToken = page.nextToken;
      if (!nextToken) break;
    }
    const lost = acknowledged.filter((n) => !stored.has(n));
    assert.deepEqual(lost, []);
    reader.destroy();
    await again.stop();
  } finally {
    removeDir(dataDir);
  }
});
