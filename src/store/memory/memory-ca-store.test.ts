import { describeCaStoreContract } from '../ca-contract.ts';
import { MemoryCaStore } from './memory-ca-store.ts';

describeCaStoreContract('memory', async () => {
  const store = new MemoryCaStore();
  return { store, cleanup: () => store.close() };
});
