// Collects the SDS secrets the emitted resources refer to, so the xDS server knows what this proxy may fetch.
import type { SecretRef } from './api.ts';
import { compareStrings } from './envoy.ts';

export class SecretCollector {
  readonly #refs = new Map<string, SecretRef>();

  add(ref: SecretRef): void {
    this.#refs.set(`${ref.name}\u0000${ref.type}`, ref);
  }

  /** Sorted by name, then type. */
  list(): SecretRef[] {
    return [...this.#refs.values()].sort((a, b) => compareStrings(a.name, b.name) || compareStrings(a.type, b.type));
  }
}
