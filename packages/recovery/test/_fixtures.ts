// Fixtures of the recovery tests (not a test file): a supplier's key store with two portfolios
// (north: 20 meters, south: 5), real certificates from a test hierarchy, per-meter device DS keys
// with device certificates, a meter that answers a CS02b command as docs/domain.md §9 describes
// (response CRA 02, same message code, one outcome per requested cell, device-signed), and the
// Recovery party's own key store under dual control.
import { createHash, generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, expect } from 'vitest';
import { concatBytes, createKeySigner, isSmkiError, parseEui64, type SmkiErrorCode } from '@smki/core';
import {
  buildGeneralSigning,
  CREDENTIALS_STATUS,
  decodeUpdateSecurityCredentialsCommand,
  encodeUpdateSecurityCredentialsResponse,
  parseMessage,
  signedBytes,
  type CellOutcome,
} from '@smki/gbcs';
import { createApproval, KeyStore, MemoryKeyBackend, type KeyBackend, type KeyPurpose } from '@smki/keystore';
import { createHierarchy, issueDeviceCertificate, issueOrganisationCertificate, parseCertificate, type SmkiCertificate, type SmkiHierarchy } from '@smki/pki';
import type { BatchProposal, RecoverySigning } from '../src/index.js';

export const SUPPLIER = '90B3D51F30010000';
export const RECOVERY = '90B3D51F30000001';
export const PASS = 'test passphrase, not a real one';
export const NORTH = Array.from({ length: 20 }, (_, i) => `00DB12345678${(0x10 + i).toString(16).toUpperCase().padStart(4, '0')}`);
export const SOUTH = Array.from({ length: 5 }, (_, i) => `00DB12345679${(0x10 + i).toString(16).toUpperCase().padStart(4, '0')}`);

let hierarchy: SmkiHierarchy | undefined;
const deviceKeys = new Map<string, { privateKey: KeyObject; cert: SmkiCertificate }>();
beforeAll(async () => {
  hierarchy = await createHierarchy();
  for (const d of [...NORTH, ...SOUTH]) {
    const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const cert = await issueDeviceCertificate({ issuer: hierarchy.deviceCa, publicKey: k.publicKey, entityId: d, keyUsage: 'digitalSignature' });
    deviceKeys.set(d, { privateKey: k.privateKey, cert });
  }
}, 120_000);

/** The test hierarchy. */
export function pki(): SmkiHierarchy {
  if (!hierarchy) throw new Error('made in beforeAll');
  return hierarchy;
}

/** What a meter's DS certificate must chain to: the test root, with the device CA. */
export function deviceTrust(): { anchors: SmkiCertificate[]; intermediates: SmkiCertificate[] } {
  return { anchors: [pki().root.certificate], intermediates: [pki().deviceCa.certificate] };
}

/** A meter's device DS certificate (what the plan checks its responses with). */
export function deviceCert(device: string): SmkiCertificate {
  const k = deviceKeys.get(device);
  if (!k) throw new Error(`no device ${device}`);
  return k.cert;
}

/** A meter's device DS private key (to sign a response as that meter). */
export function deviceKey(device: string): KeyObject {
  const k = deviceKeys.get(device);
  if (!k) throw new Error(`no device ${device}`);
  return k.privateKey;
}

const dirs: string[] = [];
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A temporary directory, removed after the test. */
export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'smki-recovery-'));
  dirs.push(d);
  return d;
}

/** Close `c` after the test (before its directory is removed). */
export function closeLater(c: () => Promise<unknown>): void {
  closers.push(c);
}

const usage = (p: KeyPurpose) => (p === 'signing' ? 'digitalSignature' : 'keyAgreement');

/** The organisation CA issues a certificate for a CSR (as the supplier's CA would). */
export async function certify(csr: Uint8Array, purpose: KeyPurpose, entityId = SUPPLIER, role = 2): Promise<SmkiCertificate> {
  return issueOrganisationCertificate({ issuer: pki().organisationCa, role, entityId, keyUsage: usage(purpose), csr });
}

async function issue(store: KeyStore, org: string, portfolio: string, purpose: KeyPurpose, role = 2): Promise<SmkiCertificate> {
  const handle = await store.generateKey(org, portfolio, purpose);
  const cert = await certify(await store.createCsr(handle.keyId), purpose, org, role);
  await store.attachCertificate(handle.keyId, cert);
  return cert;
}

/** The supplier's key store: north (20 meters) and south (5), DS and KA keys each, in `backend` (default a new memory backend); further backends by name. */
export async function supplierStore(options: { backends?: Record<string, KeyBackend>; backend?: KeyBackend; directory?: string } = {}) {
  const dir = options.directory ?? tempDir();
  const store = await KeyStore.open({ directory: dir, backend: options.backend ?? new MemoryKeyBackend(), passphrase: PASS, ...(options.backends ? { backends: options.backends } : {}) });
  closeLater(() => store.close());
  await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
  await store.createPortfolio(SUPPLIER, { id: 'north' });
  await store.createPortfolio(SUPPLIER, { id: 'south' });
  const north = { signing: await issue(store, SUPPLIER, 'north', 'signing'), keyAgreement: await issue(store, SUPPLIER, 'north', 'keyAgreement') };
  const south = { signing: await issue(store, SUPPLIER, 'south', 'signing'), keyAgreement: await issue(store, SUPPLIER, 'south', 'keyAgreement') };
  await store.assignDevices(SUPPLIER, [...NORTH.map((device) => ({ device, portfolioId: 'north' })), ...SOUTH.map((device) => ({ device, portfolioId: 'south' }))]);
  const northKeys = (await store.portfolio(SUPPLIER, 'north')).current;
  const southKeys = (await store.portfolio(SUPPLIER, 'south')).current;
  return { store, dir, north, south, northKeys, southKeys };
}

/** Everything the south portfolio is, through every read (before/after comparisons). */
export async function southSnapshot(store: KeyStore): Promise<string> {
  const p = await store.portfolio(SUPPLIER, 'south');
  const keys = (await store.keys(SUPPLIER)).filter((k) => k.portfolioId === 'south');
  const devices = (await store.devicesOf(SUPPLIER, 'south')).devices;
  const exposure = (await store.exposureReport(SUPPLIER)).filter((e) => e.portfolioId === 'south');
  return JSON.stringify([p, keys, devices, exposure]);
}

/** What a meter does with a CS02b command: the outcome per requested cell, `status` per cell (default success). */
export function meterResponse(command: Uint8Array, options: { status?: (cell: CellOutcome['cell']) => number; oldCerts: Record<string, SmkiCertificate>; signWith?: KeyObject; counter?: bigint; to?: string } ): Uint8Array {
  const { payload, message } = decodeUpdateSecurityCredentialsCommand(command);
  const device = message.recipient;
  const results: CellOutcome[] = payload.replacements.map((r) => {
    const status = options.status?.(r.cell) ?? CREDENTIALS_STATUS.success;
    const old = options.oldCerts[r.cell.keyUsage] as SmkiCertificate;
    const next = parseCertificate(r.certificate);
    const keep = status !== CREDENTIALS_STATUS.success;
    return {
      cell: r.cell,
      status,
      oldEntityId: old.entityId!,
      oldKeyId: old.subjectKeyId!,
      newEntityId: keep ? old.entityId! : next.entityId!,
      newKeyId: keep ? old.subjectKeyId! : next.subjectKeyId!,
    };
  });
  const counter = options.counter ?? message.originatorCounter;
  const body = encodeUpdateSecurityCredentialsResponse({ outcome: { sequenceNumber: message.originatorCounter, mode: payload.mode, floorChanges: [], results } });
  const unsigned = buildGeneralSigning({ cra: 'response', originatorCounter: counter, originator: device, recipient: options.to ?? message.originator, messageCode: message.messageCode, payload: body, signatureField: 'empty' });
  const m = parseMessage(unsigned);
  const key = options.signWith ?? (deviceKeys.get(device)?.privateKey as KeyObject);
  const sig = nodeSign('sha256', signedBytes(m), { key, dsaEncoding: 'ieee-p1363' });
  return concatBytes(m.bytes.subarray(0, m.signedRange.end), Uint8Array.of(0x40), new Uint8Array(sig));
}

/** The Recovery party's own key store: its DS key for every meter, three operators, a session needs one approval beside the proposer. */
export async function recoveryParty() {
  const dir = tempDir();
  const store = await KeyStore.open({ directory: dir, backend: new MemoryKeyBackend(), passphrase: 'the recovery party, another passphrase' });
  closeLater(() => store.close());
  const org = parseEui64(RECOVERY);
  await store.addOrganisation({ entityId: RECOVERY, role: 1 });
  await store.createPortfolio(RECOVERY, { id: 'recovery' });
  const certificate = await issue(store, RECOVERY, 'recovery', 'signing', 1);
  await store.assignDevices(RECOVERY, [...NORTH, ...SOUTH].map((device) => ({ device, portfolioId: 'recovery' })));
  const mk = (id: string) => ({ id, signer: createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey) });
  const svc = mk('recovery-service');
  const approver = mk('duty-officer');
  const admin = mk('admin');
  await store.initialiseAccess({
    operators: [
      { operatorId: svc.id, publicKey: svc.signer.publicKey, grants: [{ role: 'signer' as const, organisation: org, portfolioId: 'recovery' }] },
      { operatorId: approver.id, publicKey: approver.signer.publicKey, grants: [{ role: 'signer' as const, organisation: org, portfolioId: 'recovery' }] },
      { operatorId: admin.id, publicKey: admin.signer.publicKey, grants: [{ role: 'administrator' as const, organisation: '*' as const }] },
    ],
    policy: { v: 1, rules: [{ operation: 'session.sign', approvals: 1 }] },
  });
  const seen: BatchProposal[] = [];
  /** The duty officer approves what it is shown (after looking at every command). */
  const approve = async (p: BatchProposal) => {
    seen.push(p);
    return [await createApproval(approver.signer, { storeId: p.storeId, proposalId: p.proposalId, operationHash: p.operationHash, approverId: approver.id, expiresAt: new Date(Date.now() + 3_600_000) })];
  };
  const signing: RecoverySigning = { store, portfolioId: 'recovery', operatorId: svc.id, operatorSigner: svc.signer, certificate, approve };
  return { store, dir, certificate, signing, seen, svc, approver };
}

/** Expect an SmkiError with exactly `code`. */
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

export const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
