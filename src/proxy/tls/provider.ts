// The proxy's current TLS material, shared by every listener and cluster: SDS secrets as they arrive, its own
// SVID as it renews, and certificate files read on first use and re-read when they change (file-based
// certificates, seed 004: rotate a file and new handshakes use it; connections already open are kept).
// A TLS context's material is resolved once per change of any input, not per connection.
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { SecureContext } from 'node:tls';
import type { CommonTls } from './compile.ts';
import { resolveMaterial, SecureContextCache, type MaterialSources, type Resolved, type SecretMaterial, type TlsMaterial } from './material.ts';

export type Provided = { readonly ok: true; readonly material: TlsMaterial; readonly context: SecureContext } | { readonly ok: false; readonly missing: string };

export class TlsProvider {
  #secrets: ReadonlyMap<string, SecretMaterial> = new Map();
  #local: (name: string) => { chainPem: string; keyPem: string } | undefined;
  readonly #files = new Map<string, string>();
  readonly #watchers = new Map<string, FSWatcher>();
  readonly #contexts = new SecureContextCache();
  readonly #resolved = new WeakMap<CommonTls, { version: number; provided: Provided }>();
  readonly #listeners = new Set<() => void>();
  #version = 0;

  constructor(local: (name: string) => { chainPem: string; keyPem: string } | undefined) {
    this.#local = local;
  }

  /** New SDS secrets (the whole set, as accepted over ADS). */
  setSecrets(secrets: ReadonlyMap<string, SecretMaterial>): void {
    this.#secrets = secrets;
    this.#changed();
  }

  /** The proxy's own certificate changed (SVID renewal). */
  localChanged(): void {
    this.#changed();
  }

  /** Called after any change of material (to retry listeners that were waiting for it). */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  get(tls: CommonTls): Provided {
    const cached = this.#resolved.get(tls);
    if (cached && cached.version === this.#version) return cached.provided;
    const resolved: Resolved = resolveMaterial(tls, this.#sources);
    let provided: Provided;
    if (!resolved.ok) provided = resolved;
    else {
      try {
        provided = { ok: true, material: resolved.material, context: this.#contexts.get(resolved.material) };
      } catch (e) {
        provided = { ok: false, missing: `usable TLS material (${(e as Error).message})` };
      }
    }
    this.#resolved.set(tls, { version: this.#version, provided });
    return provided;
  }

  close(): void {
    for (const w of this.#watchers.values()) w.close();
    this.#watchers.clear();
    this.#listeners.clear();
  }

  readonly #sources: MaterialSources = {
    secret: (name) => this.#secrets.get(name),
    local: (name) => this.#local(name),
    file: (path) => this.#file(path),
  };

  #file(path: string): string {
    const cached = this.#files.get(path);
    if (cached !== undefined) return cached;
    const text = readFileSync(path, 'utf8');
    this.#files.set(path, text);
    this.#watch(path);
    return text;
  }

  /** Watches the file's directory (editors and `mv` replace files, which a file watch would lose). */
  #watch(path: string): void {
    const dir = dirname(path);
    if (this.#watchers.has(dir)) return;
    try {
      const w = watch(dir, { persistent: false }, () => {
        for (const p of [...this.#files.keys()]) if (dirname(p) === dir) this.#files.delete(p);
        this.#changed();
      });
      w.on('error', () => {});
      this.#watchers.set(dir, w);
    } catch {
      // An unwatchable directory: the content read now stays in use.
    }
  }

  #changed(): void {
    this.#version++;
    for (const l of [...this.#listeners]) l();
  }
}
