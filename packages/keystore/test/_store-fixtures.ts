// Shared fixtures of the key store tests: a temporary store, the expected-code helper, certificate
// issuance through the store's own CSR, and a two-portfolio supplier estate.
import { verify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, expect } from 'vitest';
import { isSmkiError, type SmkiErrorCode } from '@smki/core';
import { createHierarchy, issueOrganisationCertificate, parseCertificate, type SmkiHierarchy } from '@smki/pki';
import { MemoryKeyBackend, type KeyPurpose } from '../src/index.js';
import { JsonKeyStore as KeyStore } from '../src/store.js';

export const SUPPLIER = '90B3D51F30010000';
export const OTHER_SUPPLIER = '90B3D51F30020000';
export const ACB = '90B3D51F30000004';
export const M1 = '00DB1234567890A1';
export const M2 = '00DB1234567890A2';
export const M3 = '00DB1234567890A3';
export const PASS = 'test passphrase, not a real one';

let hierarchy: SmkiHierarchy | undefined;
beforeAll(async () => {
  hierarchy = await createHierarchy();
});
/** The test hierarchy (made once per test file). */
export function pki(): SmkiHierarchy {
  if (!hierarchy) throw new Error('the hierarchy is made in beforeAll');
  return hierarchy;
}

const dirs: string[] = [];
const stores: KeyStore[] = [];
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A temporary directory, removed after the test. */
export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'smki-ks-'));
  dirs.push(d);
  return d;
}

/** Open a store (closed after the test). */
export async function openStore(dir = tempDir(), backend = new MemoryKeyBackend(), extra: Record<string, unknown> = {}): Promise<{ store: KeyStore; dir: string; backend: MemoryKeyBackend }> {
  const store = await KeyStore.open({ directory: dir, backend, passphrase: PASS, auditGroupCommitMs: 5, ...extra });
  stores.push(store);
  return { store, dir, backend };
}

/** Expect an SmkiError with exactly `code` from a promise or a function. */
export async function expectCode(p: Promise<unknown> | (() => unknown), code: SmkiErrorCode): Promise<void> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    if (!isSmkiError(e)) throw e;
    expect(e.code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

export const usage = (p: KeyPurpose) => (p === 'signing' || p === 'xmlSigning' ? 'digitalSignature' : 'keyAgreement');

/** Generate a key, make its CSR, have the organisation CA issue it, attach it. */
export async function issue(store: KeyStore, org: string, portfolio: string, purpose: KeyPurpose, role = 2) {
  const handle = await store.generateKey(org, portfolio, purpose);
  const csr = await store.createCsr(handle.keyId);
  const cert = await issueOrganisationCertificate({ issuer: pki().organisationCa, role, entityId: org, keyUsage: usage(purpose), csr });
  await store.attachCertificate(handle.keyId, cert);
  return { handle, cert };
}

/** A supplier with two portfolios, north (M1, M2) and south (M3), each with DS and KA keys. */
export async function supplierEstate(store: KeyStore, options: { maxDevicesPerKey?: number; entityId?: string } = {}) {
  const org = options.entityId ?? SUPPLIER;
  await store.addOrganisation({ entityId: org, role: 2, ...(options.maxDevicesPerKey !== undefined ? { maxDevicesPerKey: options.maxDevicesPerKey } : {}) });
  await store.createPortfolio(org, { id: 'north' });
  await store.createPortfolio(org, { id: 'south' });
  const north = { ds: await issue(store, org, 'north', 'signing'), ka: await issue(store, org, 'north', 'keyAgreement') };
  const south = { ds: await issue(store, org, 'south', 'signing'), ka: await issue(store, org, 'south', 'keyAgreement') };
  await store.assignDevice(org, M1, 'north');
  await store.assignDevice(org, M2, 'north');
  await store.assignDevice(org, M3, 'south');
  return { north, south };
}

export const message = new TextEncoder().encode('DF 09 01 ... a pre-command');
/** Whether `sig` (r‖s) over {@link message} verifies with the certificate's key. */
export const verifies = (certDer: Uint8Array, sig: Uint8Array) =>
  verify('sha256', message, { key: parseCertificate(certDer).publicKey!, dsaEncoding: 'ieee-p1363' }, sig);

/** The audit log's lines (parsed), for asserting what was or was not recorded. */
export function auditRecords(dir: string): { seq: number; type: string; [k: string]: unknown }[] {
  return readFileSync(join(dir, 'audit.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { seq: number; type: string });
}
