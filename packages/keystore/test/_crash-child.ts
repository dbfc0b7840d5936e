// Child process for crash.test.ts: runs one key-store operation and, when told to, kills itself
// with SIGKILL at a named fault point (the store's, the audit log's, the metadata's or a key
// file's). Usage: node --import tsx _crash-child.ts <dir> <setup|op> <op> <point|-|record> <nth>
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHierarchy, issueOrganisationCertificate } from '@smki/pki';
import { FileKeyBackend } from '../src/backends/file.js';
import { KeyStore } from '../src/store.js';

const [dir, phase, op, point, nthArg] = process.argv.slice(2) as [string, string, string, string, string];
const PASS = 'crash-test passphrase';
const SUPPLIER = '90B3D51F30010000';
let armed = false;
let seen = 0;
const points: string[] = [];
const fault = (p: string): void => {
  if (!armed) return;
  points.push(p);
  if (p === point && ++seen === Number(nthArg)) process.kill(process.pid, 'SIGKILL');
};

const backend = await FileKeyBackend.open({ directory: dir, passphrase: PASS, fault });
const store = await KeyStore.open({ directory: dir, backend, passphrase: PASS, fault, auditGroupCommitMs: 5 });

if (phase === 'setup') {
  const { organisationCa } = await createHierarchy();
  const issue = async (portfolio: string, purpose: 'signing' | 'keyAgreement') => {
    const h = await store.generateKey(SUPPLIER, portfolio, purpose);
    const cert = await issueOrganisationCertificate({ issuer: organisationCa, role: 2, entityId: SUPPLIER, keyUsage: purpose === 'signing' ? 'digitalSignature' : 'keyAgreement', csr: await store.createCsr(h.keyId) });
    await store.attachCertificate(h.keyId, cert);
    return h;
  };
  await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
  await store.createPortfolio(SUPPLIER, { id: 'north' });
  await store.createPortfolio(SUPPLIER, { id: 'south' });
  await issue('north', 'signing');
  await issue('south', 'signing');
  await store.assignDevice(SUPPLIER, '00DB1234567890A1', 'north');
  await store.assignDevice(SUPPLIER, '00DB1234567890A2', 'north');
  // a second north generation, certified but not yet rotated in
  const g2 = await store.generateKey(SUPPLIER, 'north', 'signing');
  const cert2 = await issueOrganisationCertificate({ issuer: organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', csr: await store.createCsr(g2.keyId) });
  await store.attachCertificate(g2.keyId, cert2);
} else {
  armed = true;
  if (op === 'generate') await store.generateKey(SUPPLIER, 'south', 'keyAgreement');
  else if (op === 'rotate') await store.rotate(`${SUPPLIER}.north.DS.g2`);
  else if (op === 'move') await store.moveDevice(SUPPLIER, '00DB1234567890A2', 'south');
  else if (op === 'revoke') await store.revoke(`${SUPPLIER}.south.DS.g1`);
  else throw new Error(`unknown op ${op}`);
  armed = false;
}
await store.close();
await backend.close();
if (point === 'record') writeFileSync(join(dir, 'points.json'), JSON.stringify(points));
