// Child process for durability-strace.test.ts. `setup` builds a store (encrypted-file backend);
// `trace` (run under strace by the test) reopens it and runs one lifecycle change after another,
// writing a marker line to a marker file before and after each one, so the parent can cut the
// system-call trace into steps: `SMKI-STEP begin <step>` and `SMKI-STEP end <step>`. The markers
// are written synchronously from the main thread after the step's promise has resolved, so every
// system call the step waited for comes before its `end` marker in the trace.
// Usage: node --import tsx _strace-child.ts <dir> <setup|trace> [marker file]
import { closeSync, openSync, writeSync } from 'node:fs';
import { createHierarchy, issueOrganisationCertificate } from '@smki/pki';
import { FileKeyBackend } from '../src/backends/file.js';
import { JsonKeyStore as KeyStore } from '../src/store.js';

const [dir, phase, markerFile] = process.argv.slice(2) as [string, string, string | undefined];
const PASS = 'strace-test passphrase';
const SUPPLIER = '90B3D51F30010000';
const M1 = '00DB1234567890A1';
const M2 = '00DB1234567890A2';

const backend = await FileKeyBackend.open({ directory: dir, passphrase: PASS });
// A long group-commit window: the use record of the `sign` step stays in memory until `flush()`.
const store = await KeyStore.open({ directory: dir, backend, passphrase: PASS, auditGroupCommitMs: 10_000 });

if (phase === 'setup') {
  const { organisationCa } = await createHierarchy();
  const certify = async (keyId: string) => {
    const cert = await issueOrganisationCertificate({ issuer: organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', csr: await store.createCsr(keyId) });
    await store.attachCertificate(keyId, cert);
  };
  await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
  await store.createPortfolio(SUPPLIER, { id: 'north' });
  await store.createPortfolio(SUPPLIER, { id: 'south' });
  // the first key of a portfolio becomes its current key when it is certified
  for (const p of ['north', 'south']) await certify((await store.generateKey(SUPPLIER, p, 'signing')).keyId);
  await store.assignDevice(SUPPLIER, M1, 'north');
  await store.assignDevice(SUPPLIER, M2, 'north');
  // a second north generation, certified but not yet rotated in
  await certify((await store.generateKey(SUPPLIER, 'north', 'signing')).keyId);
} else if (phase === 'trace') {
  if (markerFile === undefined) throw new Error('trace needs a marker file');
  const marker = openSync(markerFile, 'a');
  const step = async (name: string, run: () => Promise<unknown>): Promise<void> => {
    writeSync(marker, `SMKI-STEP begin ${name}\n`);
    await run();
    writeSync(marker, `SMKI-STEP end ${name}\n`);
  };
  await step('generate', () => store.generateKey(SUPPLIER, 'south', 'keyAgreement'));
  await step('rotate', () => store.rotate(`${SUPPLIER}.north.DS.g2`));
  await step('move', () => store.moveDevice(SUPPLIER, M2, 'south'));
  await step('revoke', () => store.revoke(`${SUPPLIER}.south.DS.g1`, 'keyCompromise'));
  // An audit commit: a use record (group-committed, so not yet written) and then flush().
  await step('sign', () => store.signFor(M1, new Uint8Array([1, 2, 3])));
  await step('flush', () => store.flush());
  closeSync(marker);
} else {
  throw new Error(`unknown phase ${phase}`);
}
await store.close();
await backend.close();
