/** The in-memory TaskStore passes the contract the HTTP stores pass (test/helpers/store-contract.ts). */
import { MemoryStore } from '../../src/store/for-workers/memory-store';
import { taskStoreContract } from '../helpers/store-contract';

describe('store (in memory)', () => {
  const stores: MemoryStore[] = [];
  after(async () => {
    await Promise.all(stores.map((store) => store.close()));
  });
  taskStoreContract(async () => {
    const store = new MemoryStore();
    stores.push(store);
    return store;
  });
});
