// Periodic upkeep (retiring CAs, renewing managed certificates, refreshing CRLs) walks the items of every
// mesh. One item that fails (a mesh whose CA expired or waits for its offline signature, an unreadable key
// file) must not stop the others: otherwise one broken mesh would let every other mesh's certificates and
// CRLs run out. Failures are collected, and reported together once every item had its turn.
import { UnavailableError } from '../errors/index.ts';

export interface UpkeepFailure {
  /** What failed, for the operator: "renew arn:aws:acm:...". */
  readonly task: string;
  readonly error: unknown;
}

/** Runs `task` on each item in turn; a failing item is recorded in `failures` and the next one runs. */
export async function forEachItem<T>(items: Iterable<T>, label: (item: T) => string, task: (item: T) => Promise<void>, failures: UpkeepFailure[]): Promise<void> {
  for (const item of items) {
    try {
      await task(item);
    } catch (error) {
      failures.push({ task: label(item), error });
    }
  }
}

/** One error naming every failure (their errors are its cause, for the logs); `done` says what did succeed. */
export function throwIfFailed(failures: readonly UpkeepFailure[], done: string): void {
  if (failures.length === 0) return;
  const what = failures.map((f) => `${f.task}: ${f.error instanceof Error ? f.error.message : String(f.error)}`).join('; ');
  throw new UnavailableError(`CA upkeep: ${failures.length} task(s) failed: ${what}. Done: ${done}.`, { cause: new AggregateError(failures.map((f) => f.error)) });
}
