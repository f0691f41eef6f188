// Private keys of CAs and managed certificates, one PKCS#8 PEM file each under `<dataDir>/ca/` (directory
// 0700, files 0600), encrypted when a passphrase is configured. The database only names the files, so a
// database backup or dump never holds a key. Nothing here logs or returns key material except to the
// in-process caller that signs with it.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { InternalError, PemError } from '../errors/index.ts';
import type { KeyPair } from '../pki/api.ts';
import { exportPrivateKeyPem, importPrivateKeyPem } from '../pki/keys.ts';

export interface KeyStoreOptions {
  /** The key directory, normally `<dataDir>/ca`. */
  readonly dir: string;
  /** Encrypts new key files (AES-256) and decrypts existing ones. Given by the caller (config reads KEYMESH_CA_PASSPHRASE). */
  readonly passphrase?: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export class KeyStore {
  readonly dir: string;
  readonly #passphrase: string | undefined;
  #dirReady = false;

  constructor(options: KeyStoreOptions) {
    this.dir = options.dir;
    this.#passphrase = options.passphrase === '' ? undefined : options.passphrase;
  }

  get encrypted(): boolean {
    return this.#passphrase !== undefined;
  }

  /** Absolute path of a key file (for operators and tests; the file is useless without the passphrase when one is set). */
  pathOf(name: string): string {
    if (!NAME.test(name)) throw new InternalError(`invalid key file name "${name}"`);
    return join(this.dir, name);
  }

  /**
   * Writes a new key file. Temp file + fsync + rename + directory fsync: a crash leaves either no file or
   * the whole key, never half of one. Refuses to replace an existing file (names are unique per key).
   */
  async save(name: string, keys: KeyPair): Promise<void> {
    const path = this.pathOf(name);
    await this.#ensureDir();
    if (await exists(path)) throw new InternalError(`key file ${path} already exists; refusing to overwrite a key`);
    const pem = await exportPrivateKeyPem(keys, this.#passphrase);
    const temp = join(this.dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const fh = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        await fh.chmod(0o600); // whatever the umask
        await fh.writeFile(pem);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(temp, path);
      await syncDir(this.dir);
    } catch (e) {
      await unlink(temp).catch(() => {});
      throw new InternalError(`cannot write key file ${path}: ${(e as Error).message}`, { cause: e });
    }
  }

  async load(name: string): Promise<KeyPair> {
    const path = this.pathOf(name);
    let pem: string;
    try {
      pem = await readFile(path, 'utf8');
    } catch (e) {
      throw new InternalError(`cannot read key file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}. The CA cannot sign without it; restore it from a backup of ${this.dir}.`, { cause: e });
    }
    try {
      return await importPrivateKeyPem(pem, `key file ${path}`, this.#passphrase);
    } catch (e) {
      if (e instanceof PemError && this.#passphrase === undefined && /encrypted/.test(e.message)) {
        throw new PemError(`${e.message}; start keymesh with the CA passphrase (KEYMESH_CA_PASSPHRASE) it was written with`, { cause: e });
      }
      throw e;
    }
  }

  /** Deletes a key file; a missing file is fine (the goal is that the key is gone). */
  async remove(name: string): Promise<void> {
    try {
      await unlink(this.pathOf(name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new InternalError(`cannot delete key file ${this.pathOf(name)}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Creates the directory 0700, or tightens an existing one that others can read. */
  async #ensureDir(): Promise<void> {
    if (this.#dirReady) return;
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    if ((await stat(this.dir)).mode & 0o077) await chmod(this.dir, 0o700);
    this.#dirReady = true;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Makes the rename itself durable. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, constants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
