// Child process of crash.test.ts (not a test file): opens the supplier's key store (file
// backends, so keys outlive the process) and the plan database, starts a plan, and kills itself
// with SIGKILL at the named fault point of the plan's first step — a real crash, no cleanup.
// Usage: node --import tsx _plan-child.ts <keystore dir> <keys dir> <token dir> <where JSON> <rotation|compromise> <point>
import { fromHex } from '@smki/core';
import { FileKeyBackend, KeyStore } from '@smki/keystore';
import { RecoveryPlans, type RecoveryFaultPoint } from '@smki/recovery';

const [storeDir, keysDir, tokenDir, whereJson, route, point] = process.argv.slice(2) as [string, string, string, string, string, string];
const PASS = 'test passphrase, not a real one';
const backend = await FileKeyBackend.open({ directory: keysDir, passphrase: PASS });
const token = await FileKeyBackend.open({ directory: tokenDir, passphrase: PASS });
const keystore = await KeyStore.open({ directory: storeDir, backend, passphrase: PASS, backends: { 'token-b': token } });
const plans = await RecoveryPlans.open({
  ...(JSON.parse(whereJson) as { path: string }),
  keystore,
  counters: { startCounter: 1n },
  deviceTrust: { anchors: [fromHex(process.env['SMKI_TEST_ROOT'] as string)] },
  fault: (p: RecoveryFaultPoint) => {
    if (p === point) process.kill(process.pid, 'SIGKILL');
  },
});
const options = { organisation: '90B3D51F30010000', portfolioId: 'north' };
if (route === 'compromise') await plans.planCompromise({ ...options, recoveryParty: '90B3D51F30000001', backend: 'token-b' });
else await plans.planRotation(options);
console.log('finished without a crash');
await plans.close();
await keystore.close();
