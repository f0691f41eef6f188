// In-process change notifications, so the xDS server can push new validation contexts and certificates
// within seconds of a change. Listeners run synchronously after the change is committed; a throwing
// listener never fails the operation that emitted.

export type CaEvent =
  /** The trust bundle of a trust domain changed (a CA was added to or removed from it). */
  | { readonly type: 'bundle'; readonly mesh: string; readonly trustDomain: string }
  /** A different CA now signs for the trust domain (rotation's activate). */
  | { readonly type: 'issuer'; readonly mesh: string; readonly trustDomain: string; readonly caId: string }
  /** A CA's CRL changed (a certificate or an identity was revoked). */
  | { readonly type: 'crl'; readonly mesh: string; readonly trustDomain: string; readonly caId: string }
  /** An identity was revoked or reinstated: drop its streams, refuse its renewals. */
  | { readonly type: 'identity'; readonly mesh: string; readonly spiffeId: string; readonly revoked: boolean }
  /** A managed certificate was issued, renewed or deleted: re-send it to the listeners that use it. */
  | { readonly type: 'managed-certificate'; readonly mesh: string; readonly arn: string };

export type CaListener = (event: CaEvent) => void;

export class CaEvents {
  readonly #listeners = new Set<CaListener>();
  readonly #onError: (error: unknown) => void;

  constructor(onError: (error: unknown) => void = () => {}) {
    this.#onError = onError;
  }

  /** Returns an unsubscribe function. */
  watch(listener: CaListener): () => void {
    const entry: CaListener = (e) => listener(e); // so one function can be registered twice
    this.#listeners.add(entry);
    return () => void this.#listeners.delete(entry);
  }

  emit(event: CaEvent): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch (e) {
        try {
          this.#onError(e);
        } catch {
          // a failing error handler must not fail the change either
        }
      }
    }
  }
}
