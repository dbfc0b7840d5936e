// Child process for crash.test.ts: runs one key-store operation (`op`), or only opens the store
// (`reopen`: recovery after a crash, e.g. cutting off a torn final audit line), and, when told to,
// kills itself with SIGKILL at a named fault point (the store's, the audit log's, the metadata's or
// a key file's). `record` runs to the end and saves the points passed, in order, to points.json.
// Usage: node --import tsx _crash-child.ts <dir> <setup|op|reopen|check> <op|-> <point|-|record> <nth>
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHierarchy, issueOrganisationCertificate } from '@smki/pki';
import { FileKeyBackend } from '../src/backends/file.js';
import { Pkcs11KeyBackend } from '../src/backends/pkcs11.js';
import { JsonKeyStore as KeyStore } from '../src/store.js';

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

// SMKI_CRASH_BACKEND=pkcs11 puts the keys on a SoftHSM2 token (SOFTHSM2_CONF names a per-run
// copy of the token directory); otherwise encrypted files in the store directory.
const hsm = process.env.SMKI_CRASH_BACKEND === 'pkcs11';
const backend = hsm
  ? await Pkcs11KeyBackend.open({ module: process.env.SMKI_SOFTHSM_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: process.env.SMKI_CRASH_TOKEN!, pin: process.env.SMKI_CRASH_PIN!, fault })
  : await FileKeyBackend.open({ directory: dir, passphrase: PASS, fault });
armed = phase === 'reopen';
const store = await KeyStore.open({ directory: dir, backend, passphrase: PASS, fault, auditGroupCommitMs: 5 });
armed = false;

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
} else if (phase === 'check') {
  // Report the state after a crash (the parent cannot open a second SoftHSM configuration itself).
  const keys = store.keys(SUPPLIER).filter((k) => k.portfolioId === 'south' && k.purpose === 'keyAgreement');
  const publicKeys = await Promise.all(keys.map(async (k) => Buffer.from(await backend.publicKey(k.handle)).toString('hex').toUpperCase() === k.publicKey));
  const signature = await store.signFor('00DB1234567890A1', new Uint8Array([1, 2, 3]));
  console.log(JSON.stringify({ keys: keys.map((k) => k.state), publicKeysMatch: publicKeys, orphans: store.orphanHandles().length, signature: signature.length }));
} else if (phase === 'op') {
  armed = true;
  if (op === 'generate') await store.generateKey(SUPPLIER, 'south', 'keyAgreement');
  else if (op === 'rotate') await store.rotate(`${SUPPLIER}.north.DS.g2`);
  else if (op === 'move') await store.moveDevice(SUPPLIER, '00DB1234567890A2', 'south');
  else if (op === 'revoke') await store.revoke(`${SUPPLIER}.south.DS.g1`);
  else throw new Error(`unknown op ${op}`);
  armed = false;
} else if (phase !== 'reopen') {
  throw new Error(`unknown phase ${phase}`);
}
await store.close();
await backend.close();
if (phase === 'check') {
  const verdict = await KeyStore.verifyAuditTrail(dir, PASS);
  console.log(JSON.stringify({ auditOk: verdict.ok, findings: verdict.findings.length }));
}
if (point === 'record') writeFileSync(join(dir, 'points.json'), JSON.stringify(points));
