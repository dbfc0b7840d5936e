// Child process of counters.test.ts (not a test file): one service of two, in its own process,
// building a plan's batches (one meter each) on the shared plan database until nothing is pending;
// prints the counters of the commands it kept, as a JSON list of strings.
// Usage: node --import tsx _build-child.ts <keystore dir> <keys dir> <where JSON> <planId…>
import { fromHex } from '@smki/core';
import { FileKeyBackend, KeyStore } from '@smki/keystore';
import { RecoveryPlans } from '@smki/recovery';

const [storeDir, keysDir, whereJson, ...planIds] = process.argv.slice(2) as [string, string, string, ...string[]];
const PASS = 'test passphrase, not a real one';
const backend = await FileKeyBackend.open({ directory: keysDir, passphrase: PASS });
const keystore = await KeyStore.open({ directory: storeDir, backend, passphrase: PASS });
const plans = await RecoveryPlans.open({ ...(JSON.parse(whereJson) as { path: string }), keystore, counters: { startCounter: 1n }, deviceTrust: { anchors: [fromHex(process.env['SMKI_TEST_ROOT'] as string)] } });
const kept: string[] = [];
for (let busy = true; busy; ) {
  busy = false;
  for (const planId of planIds) {
    const built = await plans.buildBatch(planId, { limit: 1 });
    kept.push(...built.map((c) => String(c.counter)));
    busy ||= (await plans.status(planId)).counts.pending > 0;
  }
}
await plans.close();
await keystore.close();
await backend.close();
console.log(JSON.stringify(kept));
