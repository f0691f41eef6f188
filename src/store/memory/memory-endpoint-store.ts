// An in-memory EndpointStore (tests, and `--store memory` style embedding). Records are cloned in and out.
import { StoreError } from '../../errors/index.ts';
import { compareEndpoints, endpointKeyText, type EndpointKey, type EndpointRecord, type EndpointStore } from '../endpoint-store.ts';

export class MemoryEndpointStore implements EndpointStore {
  readonly #records = new Map<string, EndpointRecord>();
  #closed = false;

  async putEndpoint(record: EndpointRecord): Promise<void> {
    this.#checkOpen();
    this.#records.set(endpointKeyText(record), structuredClone(record));
  }

  async getEndpoint(key: EndpointKey): Promise<EndpointRecord | undefined> {
    this.#checkOpen();
    const r = this.#records.get(endpointKeyText(key));
    return r && structuredClone(r);
  }

  async setEndpointExpiry(key: EndpointKey, expiresAt: number | null): Promise<boolean> {
    this.#checkOpen();
    const current = this.#records.get(endpointKeyText(key));
    if (!current) return false;
    this.#records.set(endpointKeyText(key), { ...current, expiresAt });
    return true;
  }

  async deleteEndpoint(key: EndpointKey): Promise<EndpointRecord | undefined> {
    this.#checkOpen();
    const current = this.#records.get(endpointKeyText(key));
    this.#records.delete(endpointKeyText(key));
    return current && structuredClone(current);
  }

  async listEndpoints(filter: { mesh?: string } = {}): Promise<EndpointRecord[]> {
    this.#checkOpen();
    return [...this.#records.values()].filter((r) => filter.mesh === undefined || r.mesh === filter.mesh)
      .sort(compareEndpoints).map((r) => structuredClone(r));
  }

  async deleteExpiredEndpoints(now: number): Promise<EndpointRecord[]> {
    this.#checkOpen();
    const expired = [...this.#records.values()].filter((r) => r.expiresAt !== null && r.expiresAt <= now).sort(compareEndpoints);
    for (const r of expired) this.#records.delete(endpointKeyText(r));
    return expired;
  }

  async leaseConnectedEndpoints(expiresAt: number): Promise<number> {
    this.#checkOpen();
    let n = 0;
    for (const [k, r] of this.#records) {
      if (r.source !== 'proxy' || r.expiresAt !== null) continue;
      this.#records.set(k, { ...r, expiresAt });
      n++;
    }
    return n;
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  #checkOpen(): void {
    if (this.#closed) throw new StoreError('The memory endpoint store is closed.');
  }
}
