// Argument checks shared by the backends, so that every backend rejects a bad call the same way (SQLite, for
// one, would read LIMIT -1 as "no limit").
import { StoreError } from '../errors/index.ts';

export function checkLimit(method: string, limit: number): void {
  if (!Number.isInteger(limit) || limit < 0) throw new StoreError(`${method}: limit must be a non-negative integer, got ${limit}`);
}
