// What the CA's modules share: the store, the key files, the clock, the event feed and the ARN settings.
// One small bag passed to each module instead of a god object holding all the behaviour.
import type { Clock } from '../base/clock.ts';
import { NotFoundError } from '../errors/index.ts';
import type { CaRecord, CaStore } from '../store/ca-store.ts';
import type { CaEvents } from './events.ts';
import type { KeyStore } from './key-store.ts';

export interface CaContext {
  readonly store: CaStore;
  readonly keys: KeyStore;
  readonly clock: Clock;
  readonly events: CaEvents;
  readonly region: string;
  readonly account: string;
}

/** A CA named by id or ARN (callers may hold either); NotFoundError naming it otherwise. */
export async function findCa(store: CaStore, ref: string): Promise<CaRecord> {
  const ca = ref.startsWith('arn:') ? await store.getCaByArn(ref) : await store.getCa(ref);
  if (!ca) throw new NotFoundError(`No keymesh certificate authority ${ref} exists.`, 'KM_ERR_CA_NOT_FOUND');
  return ca;
}

/** X.509 times have whole seconds; keymesh computes validity on whole seconds so what it records is what the certificate says. */
export function wholeSeconds(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
