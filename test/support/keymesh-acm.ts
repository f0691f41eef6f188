// Seed 002's ACM objects, the keymesh way: the mesh's CA (an `arn:aws:acm-pca:...` ARN) and a managed
// certificate it issued (`arn:aws:acm:...`), made through keymesh's admin endpoints.
import assert from 'node:assert/strict';
import { signedRequest } from './signed-request.ts';

export async function keymeshAcm(url: string, mesh: string, domainName: string): Promise<{ caArn: string; certArn: string }> {
  const ca = await signedRequest(url, 'POST', `/keymesh/v1/meshes/${encodeURIComponent(mesh)}/ca`, '{}');
  assert.equal(ca.status, 200, ca.text);
  const cert = await signedRequest(url, 'POST', '/keymesh/v1/managed-certificates', JSON.stringify({ mesh, caArn: ca.body.arn, domainName }));
  assert.equal(cert.status, 200, cert.text);
  return { caArn: ca.body.arn as string, certArn: cert.body.arn as string };
}
