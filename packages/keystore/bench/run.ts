/**
 * `pnpm run bench` for @smki/keystore: ECDSA P-256 signatures per second through each backend
 * and through the store (key resolution + audit record), beside the raw node:crypto sign rate
 * measured in the same process, so the overhead is a ratio. Then the PKCS#11 (SoftHSM2) rows,
 * beside raw graphene-pk11. Prints numbers; never fails on speed.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHierarchy, issueOrganisationCertificate } from '@smki/pki';
import { FileKeyBackend } from '../src/backends/file.js';
import { KeyStore, MemoryKeyBackend, type KeyBackend } from '../src/index.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? '1.5');
const message = new Uint8Array(120).fill(0x5a); // about the size of a signed pre-command

async function rate(name: string, fn: () => Promise<unknown> | unknown, batch = 64): Promise<number> {
  for (let i = 0; i < 200; i++) await fn();
  let n = 0;
  const t0 = performance.now();
  const until = t0 + SECONDS * 1000;
  let now = t0;
  while (now < until) {
    const ps: unknown[] = [];
    for (let i = 0; i < batch; i++) ps.push(fn());
    await Promise.all(ps);
    n += batch;
    now = performance.now();
  }
  const r = n / ((now - t0) / 1000);
  console.log(`${name.padEnd(60)} ${Math.round(r).toLocaleString('en-GB').padStart(10)} /s`);
  return r;
}

console.log(`@smki/keystore benchmarks (node ${process.version}, ${SECONDS}s per row)\n`);
const raw = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const baseline = await rate('node:crypto ECDSA P-256 sign (baseline)', () => sign('sha256', message, { key: raw, dsaEncoding: 'ieee-p1363' }));

const dir = mkdtempSync(join(tmpdir(), 'smki-ks-bench-'));
try {
  const memory = new MemoryKeyBackend();
  const file = await FileKeyBackend.open({ directory: join(dir, 'file'), passphrase: 'bench passphrase' });
  const results: [string, number][] = [];
  for (const backend of [memory, file] as KeyBackend[]) {
    const { handle } = await backend.generateKey({ keyId: `bench-${backend.kind}`, label: 'bench' });
    results.push([`${backend.kind} backend sign`, await rate(`${backend.kind} backend: sign`, () => backend.sign(handle, message))]);
  }

  // Through the store: resolve the meter's installed key, sign, append a group-committed use record.
  const { organisationCa } = await createHierarchy();
  const store = await KeyStore.open({ directory: join(dir, 'store'), backend: file, passphrase: 'bench passphrase' });
  await store.addOrganisation({ entityId: '90B3D51F30010000', role: 2 });
  await store.createPortfolio('90B3D51F30010000', { id: 'north' });
  const ds = await store.generateKey('90B3D51F30010000', 'north', 'signing');
  const cert = await issueOrganisationCertificate({ issuer: organisationCa, role: 2, entityId: '90B3D51F30010000', keyUsage: 'digitalSignature', csr: await store.createCsr(ds.keyId) });
  await store.attachCertificate(ds.keyId, cert);
  await store.assignDevice('90B3D51F30010000', '00DB1234567890A0', 'north');
  let counter = 0n;
  const viaStore = await rate('KeyStore.signFor (file backend, audited)', () => store.signFor('00DB1234567890A0', message, { messageCode: 0x0050, counter: counter++ }));
  await store.close();

  console.log('\nratios against the baseline (1.00 = raw node:crypto)');
  for (const [name, r] of results) console.log(`  ${name.padEnd(40)} ${(r / baseline).toFixed(2)}`);
  console.log(`  ${'KeyStore.signFor (file, audited)'.padEnd(40)} ${(viaStore / baseline).toFixed(2)}`);
  await file.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

console.log('');
const { runPkcs11Bench } = await import('./pkcs11.js');
await runPkcs11Bench();
