// Fixtures of the tests of the public (database) KeyStore: a temporary store on SQLite, issuance
// through the store's own CSR, a two-portfolio supplier estate, the trail as an auditor reads it
// (the audit public key only), and the check that a refused call changed no row and wrote no
// record. Not a test file itself.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect } from 'vitest';
import { isSmkiError, type SmkiError, type SmkiErrorCode } from '@smki/core';
import { issueOrganisationCertificate, type SmkiCertificate } from '@smki/pki';
import { KeyStore, MemoryKeyBackend, type AuditRecord, type CredentialUpdate, type KeyBackend, type KeyHandle, type KeyPurpose, type TrailVerification } from '../src/index.js';
import { expectCode, M1, M2, M3, PASS, pki, SUPPLIER, usage } from './_store-fixtures.js';

export { ACB, expectCode, M1, M2, M3, message, OTHER_SUPPLIER, PASS, pki, SUPPLIER, usage, verifies } from './_store-fixtures.js';

const dirs: string[] = [];
const opened: { store: KeyStore; backend?: KeyBackend }[] = [];
afterEach(async () => {
  // Stores first (a store may still flush to its backend), then their backends, then the directories.
  for (const { store } of opened) await store.close().catch(() => undefined);
  for (const { backend } of opened.splice(0)) await backend?.close().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A temporary directory, removed after the test (after the stores in it are closed). */
export function publicTempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'smki-pub-'));
  dirs.push(d);
  return d;
}

/**
 * Open a public KeyStore (SQLite in `dir`), closed after the test. `closeBackend` also closes the
 * backend then (for backends made per store: file, PKCS#11).
 */
export async function openPublic(options: { dir?: string; backend?: KeyBackend; backends?: Record<string, KeyBackend>; closeBackend?: boolean } = {}): Promise<{ store: KeyStore; dir: string; backend: KeyBackend }> {
  const dir = options.dir ?? publicTempDir();
  const backend = options.backend ?? new MemoryKeyBackend();
  const store = await KeyStore.open({ directory: dir, backend, passphrase: PASS, ...(options.backends !== undefined ? { backends: options.backends } : {}) });
  opened.push({ store, ...(options.closeBackend === true ? { backend } : {}) });
  return { store, dir, backend };
}

/** Generate a key, make its CSR, have the organisation CA issue it, attach it. */
export async function issue<P extends KeyPurpose>(store: KeyStore, org: string, portfolio: string, purpose: P, role = 2): Promise<{ handle: KeyHandle<P>; cert: SmkiCertificate }> {
  const handle = (await store.generateKey(org, portfolio, purpose)) as KeyHandle<P>;
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

/** Every device id of a portfolio (all pages). */
export async function allDevicesOf(store: KeyStore, org: string, portfolioId: string): Promise<string[]> {
  const out: string[] = [];
  let after: string | undefined;
  do {
    const page = await store.devicesOf(org, portfolioId, { limit: 2, ...(after !== undefined ? { after } : {}) });
    out.push(...page.devices.map((d) => d.device));
    after = page.next;
  } while (after !== undefined);
  return out;
}

/** Every meter that trusts a key (all pages). */
export async function allTrusting(store: KeyStore, keyId: string): Promise<string[]> {
  const out: string[] = [];
  let after: string | undefined;
  do {
    const page = await store.devicesTrusting(keyId, { limit: 2, ...(after !== undefined ? { after } : {}) });
    out.push(...page.devices);
    after = page.next;
  } while (after !== undefined);
  return out;
}

/** Every credential update of a portfolio for a purpose (all pages). */
export async function allUpdates(store: KeyStore, org: string, portfolioId: string, purpose: KeyPurpose = 'signing') {
  const out: CredentialUpdate[] = [];
  let after: string | undefined;
  do {
    const page = await store.credentialUpdates(org, portfolioId, { purpose, limit: 2, ...(after !== undefined ? { after } : {}) });
    out.push(...page.updates);
    after = page.next;
  } while (after !== undefined);
  return out;
}

/**
 * Close the store and read its trail as an auditor does, with the audit public key only: the
 * verification and every record, in order.
 */
export async function auditorTrail(store: KeyStore, dir: string): Promise<{ verification: TrailVerification; records: AuditRecord[] }> {
  const auditPublicKey = store.auditPublicKey;
  await store.close();
  const records: AuditRecord[] = [];
  const verification = await KeyStore.verifyAuditTrail({ directory: dir, auditPublicKey, onRecord: (r) => records.push(r) });
  return { verification, records };
}

/** What the estate of {@link supplierEstate} looks like through every read (for before/after comparisons). */
export async function estateSnapshot(store: KeyStore, org = SUPPLIER): Promise<string> {
  const portfolios = await store.portfolios(org);
  const devices: unknown[] = [];
  for (const p of portfolios) devices.push(p.id, (await store.devicesOf(org, p.id)).devices);
  const exposure = await store.exposureReport();
  return JSON.stringify([await store.keys(), portfolios, devices, exposure]);
}

/**
 * Run `attempt`, expect exactly `code`, and check that it wrote no audit record (the head is
 * where it was), changed no row (every read the same) and left a store that verifies.
 */
export async function refusedWithoutChange(store: KeyStore, attempt: () => unknown, code: SmkiErrorCode, org = SUPPLIER): Promise<void> {
  await store.flush();
  const head = await store.auditHead();
  const before = await estateSnapshot(store, org);
  await expectCode(attempt as () => Promise<unknown>, code);
  await store.flush();
  expect(await store.auditHead(), `${code}: no audit record`).toEqual(head);
  expect(await estateSnapshot(store, org), `${code}: no row changed`).toBe(before);
  const { trail, findings } = await store.verifyStore();
  expect(trail.ok).toBe(true);
  expect(findings).toEqual([]);
}

/** The SmkiError `f` fails with, after checking its code. */
export async function refusal(f: () => unknown, code: SmkiErrorCode): Promise<SmkiError> {
  try {
    await f();
  } catch (e) {
    if (!isSmkiError(e)) throw e;
    expect(e.code).toBe(code);
    return e;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}
