// The SVID saved to disk, so a restarted proxy keeps its identity without a new join token (a token is
// single use; SPIRE #417: an identity not saved until its first rotation forced re-attestation).
//
// One file, `svid.json`, holds key, chain and bundle together: written to a temporary file (mode 0600,
// fsynced) and renamed over the old one, so a crash leaves either the old identity or the new one, never
// a new key beside an old certificate. The key is not encrypted: like SPIRE's agent data directory, the
// file's mode and the directory's (0700) are the protection.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PemError } from '../errors/index.ts';
import type { SvidResponse } from './svid.ts';

export const STATE_FILE = 'svid.json';

export interface SavedSvid extends SvidResponse {
  readonly keyPem: string;
}

export async function saveSvid(dir: string, svid: SavedSvid): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const body = JSON.stringify({
    version: 1,
    spiffeId: svid.spiffeId,
    notBefore: svid.notBefore,
    notAfter: svid.notAfter,
    certChainPem: svid.certChainPem,
    bundlePem: svid.bundlePem,
    keyPem: svid.keyPem,
  });
  const tmp = join(dir, `.${STATE_FILE}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const file = await open(tmp, 'wx', 0o600);
    try {
      await file.writeFile(body);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, join(dir, STATE_FILE));
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  // Make the rename itself durable.
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/** The saved SVID, or undefined when there is none. A damaged file is a PemError (the caller decides). */
export async function loadSvid(dir: string): Promise<SavedSvid | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, STATE_FILE), 'utf8');
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return undefined;
    throw e;
  }
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new PemError(`${join(dir, STATE_FILE)}: not valid JSON; the file is damaged`);
  }
  const str = (k: string) => typeof v[k] === 'string';
  const num = (k: string) => typeof v[k] === 'number';
  if (v.version !== 1 || !str('spiffeId') || !str('certChainPem') || !str('bundlePem') || !str('keyPem') || !num('notBefore') || !num('notAfter')) {
    throw new PemError(`${join(dir, STATE_FILE)}: not a keymesh SVID state file (version 1)`);
  }
  return v as unknown as SavedSvid;
}
