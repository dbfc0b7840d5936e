// The key store's rules one case each, written against the mutants the mutation-testing run found
// alive (each case fails with the rule it checks removed or inverted): options of open, the
// write-ahead order and its fault points, the records of `store.opened`, revocations applied again
// beyond an older head, identifiers and generations, caps at their boundary, the whole-estate rule
// across organisations, refusals of edited metadata, and what the audit records carry; orphan keys
// and the store.opened record at open, group commit of use records, the use context
// keyAgreementWith records, the certificates attachCertificate refuses, identifiers that are not
// strings, whole-estate portfolios without a key, and a closed store that stays closed.
// docs/domain.md §1 (key segregation), §2 (one certificate per cell); RFC 2104 (the metadata and
// audit MACs); GBCS 4.3.2 (originator counters carried in use records).
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { diffieHellman, generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isSmkiError, p1363ToDer, publicKeyFromRaw, publicKeyToRaw, type Signer, type SmkiError, type SmkiErrorCode } from '@smki/core';
import { issueDeviceCertificate, issueOrganisationCertificate, parseCertificate, parseCsr } from '@smki/pki';
import {
  AuditLog,
  deriveAuditKey,
  MemoryKeyBackend,
  type AuditHead,
  type KeyAgreementKeyHandle,
  type KeySpec,
  type SigningKeyHandle,
} from '../src/index.js';
import { MetadataFileStore } from '../src/internal/metadata.js';
import { JsonKeyStore as KeyStore } from '../src/store.js';
import { ACB, auditRecords, expectCode, issue, M1, M2, M3, message, openStore, OTHER_SUPPLIER, PASS, pki, supplierEstate, SUPPLIER, tempDir, verifies } from './_store-fixtures.js';

/** The SmkiError `f` throws or rejects with, checked to carry `code`. */
async function caught(f: () => unknown, code: SmkiErrorCode): Promise<SmkiError> {
  try {
    await f();
  } catch (e) {
    if (!isSmkiError(e)) throw e;
    expect(e.code).toBe(code);
    return e;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

/** Change the authenticated state of a closed store as a holder of the passphrase could. */
async function editState(dir: string, edit: (state: Record<string, any>) => void): Promise<void> {
  const { store, payload } = await MetadataFileStore.open(dir, PASS);
  const state = JSON.parse(payload!) as Record<string, any>;
  edit(state);
  store.write(JSON.stringify(state));
}

async function readState(dir: string): Promise<Record<string, any>> {
  return JSON.parse((await MetadataFileStore.open(dir, PASS)).payload!) as Record<string, any>;
}

/** Append records to a closed store's log with its audit key, after the head its metadata names (the metadata is then older than the log). */
async function appendBeyondHead(dir: string, events: Parameters<AuditLog['append']>[0][]): Promise<void> {
  const { store, payload } = await MetadataFileStore.open(dir, PASS);
  const head = (JSON.parse(payload!) as { auditHead: AuditHead }).auditHead;
  const log = await AuditLog.open(dir, { key: deriveAuditKey(store.secrets.auditSecret), head });
  for (const e of events) await log.append(e, { durable: false });
  await log.close();
}

/** A copy of a store directory as a crash at this moment would leave it (the lock of this live process left out). */
function snapshot(dir: string): string {
  const to = tempDir();
  cpSync(dir, to, { recursive: true, filter: (src) => !src.endsWith('/LOCK') });
  return to;
}

const storeOpened = (dir: string) => auditRecords(dir).filter((r) => r.type === 'store.opened');
const fieldsOf = (r: Record<string, unknown>) => Object.keys(r).filter((k) => !['seq', 'at', 'type', 'prev', 'mac'].includes(k));

/** A memory backend that records the specs it was given. */
class RecordingBackend extends MemoryKeyBackend {
  readonly specs: KeySpec[] = [];
  override async generateKey(spec: KeySpec) {
    this.specs.push(spec);
    return super.generateKey(spec);
  }
}

describe('KeyStore.open: options', () => {
  it('takes the passphrase from SMKI_KEYSTORE_PASSPHRASE; refuses none and an empty one, and then holds no lock', async () => {
    const dir = tempDir();
    const saved = process.env.SMKI_KEYSTORE_PASSPHRASE;
    try {
      delete process.env.SMKI_KEYSTORE_PASSPHRASE;
      await caught(() => KeyStore.open({ directory: dir, backend: new MemoryKeyBackend() }), 'ERR_INVALID_ARGUMENT');
      await caught(() => KeyStore.open({ directory: dir, backend: new MemoryKeyBackend(), passphrase: '' }), 'ERR_INVALID_ARGUMENT');
      process.env.SMKI_KEYSTORE_PASSPHRASE = PASS;
      const s = await KeyStore.open({ directory: dir, backend: new MemoryKeyBackend() });
      await s.addOrganisation({ entityId: SUPPLIER, role: 2 });
      await s.close();
    } finally {
      if (saved === undefined) delete process.env.SMKI_KEYSTORE_PASSPHRASE;
      else process.env.SMKI_KEYSTORE_PASSPHRASE = saved;
    }
    // the environment's passphrase is the store's: the option opens it too, another does not
    const { store } = await openStore(dir);
    await expectCode(store.addOrganisation({ entityId: SUPPLIER, role: 2 }), 'ERR_ORGANISATION_EXISTS');
    await store.close();
    await caught(() => KeyStore.open({ directory: dir, backend: new MemoryKeyBackend(), passphrase: 'another' }), 'ERR_KEYSTORE_WRONG_PASSPHRASE');
  });

  it('creates a missing directory (and its parents) mode 0700 and removes temporaries a crash left', async () => {
    const dir = join(tempDir(), 'a', 'b');
    const { store } = await openStore(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    await store.close();
    const stale = '.store.json.999999.0123456789ab.tmp';
    writeFileSync(join(dir, stale), 'half a write');
    const { store: again } = await openStore(dir);
    expect(existsSync(join(dir, stale))).toBe(false);
    await again.close();
  });

  it('passes auditGroupCommitMs to the log (an out-of-range one is refused) and releases the lock after a failed open', async () => {
    const dir = tempDir();
    await caught(() => KeyStore.open({ directory: dir, backend: new MemoryKeyBackend(), passphrase: PASS, auditGroupCommitMs: -1 }), 'ERR_INVALID_ARGUMENT');
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
    const { store } = await openStore(dir);
    await store.close();
  });

  it('uses the scrypt cost it is given for a new store', async () => {
    const dir = tempDir();
    const store = await KeyStore.open({ directory: dir, backend: new MemoryKeyBackend(), passphrase: PASS, scryptN: 2 ** 16 });
    await store.close();
    expect(JSON.parse(readFileSync(join(dir, 'store.json'), 'utf8')).kdf.N).toBe(2 ** 16);
  });

  it('dates keys, revocations and records by the injected clock', async () => {
    const at = new Date('2031-02-03T04:05:06.789Z');
    const { store, dir } = await openStore(tempDir(), new MemoryKeyBackend(), { now: () => at });
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await store.createPortfolio(SUPPLIER, { id: 'north' });
    const k = await store.generateKey(SUPPLIER, 'north', 'signing');
    expect(store.key(k.keyId).createdAt).toBe(at.toISOString());
    expect((await store.revoke(k.keyId)).revokedAt).toBe(at.toISOString());
    await store.flush();
    expect(auditRecords(dir).every((r) => r.at === at.toISOString())).toBe(true);
  });

  it('refuses authentic metadata whose payload is not JSON, on open and on verifyAuditTrail', async () => {
    const dir = tempDir();
    (await openStore(dir)).store.close();
    const { store: meta } = await MetadataFileStore.open(dir, PASS);
    meta.write('{ not json');
    await caught(() => KeyStore.open({ directory: dir, backend: new MemoryKeyBackend(), passphrase: PASS }), 'ERR_KEYSTORE_CORRUPT');
    await caught(() => KeyStore.verifyAuditTrail(dir, PASS), 'ERR_KEYSTORE_CORRUPT');
    expect(existsSync(join(dir, 'LOCK'))).toBe(false);
  });

  it('verifyAuditTrail of a directory without a store is ERR_KEYSTORE_CORRUPT', async () => {
    await caught(() => KeyStore.verifyAuditTrail(tempDir(), PASS), 'ERR_KEYSTORE_CORRUPT');
  });
});

describe('the write-ahead order, seen through the fault points', () => {
  it('a lifecycle change: backend, metadata (atomic write), then the audit log', async () => {
    const points: string[] = [];
    const { store } = await openStore(tempDir(), new MemoryKeyBackend(), { fault: (p: string) => points.push(p) });
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await store.createPortfolio(SUPPLIER, { id: 'north' });
    points.length = 0;
    await store.generateKey(SUPPLIER, 'north', 'signing');
    expect(points).toEqual([
      'store:after-backend-generate',
      'store:before-metadata',
      'metadata:after-write',
      'metadata:after-fsync',
      'metadata:after-rename',
      'metadata:after-fsync-dir',
      'store:after-metadata',
      'audit:before-write',
      'audit:after-write',
      'audit:after-fsync',
      'store:after-audit',
    ]);
  });

  it('a failed metadata write changes nothing, writes no record, and the store goes on', async () => {
    let failNext = false;
    const fault = (p: string) => {
      if (failNext && p === 'store:before-metadata') {
        failNext = false;
        throw new Error('disk full');
      }
    };
    const { store, dir } = await openStore(tempDir(), new MemoryKeyBackend(), { fault });
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await store.flush();
    const before = auditRecords(dir).length;
    failNext = true;
    await expect(store.createPortfolio(SUPPLIER, { id: 'north' })).rejects.toThrow('disk full');
    await store.flush();
    expect(auditRecords(dir)).toHaveLength(before);
    await expectCode(() => store.portfolio(SUPPLIER, 'north'), 'ERR_PORTFOLIO_NOT_FOUND');
    // the log is not left waiting for the aborted records: the next change goes through
    await store.createPortfolio(SUPPLIER, { id: 'north' });
    await store.close();
    expect((await KeyStore.verifyAuditTrail(dir, PASS)).ok).toBe(true);
  });

  it('a change called while close() waits is refused with ERR_KEYSTORE_CLOSED; the one before it is applied', async () => {
    const { store, dir } = await openStore();
    const first = store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    const closing = store.close();
    const late = store.createPortfolio(SUPPLIER, { id: 'north' });
    await expect(first).resolves.toMatchObject({ entityId: SUPPLIER });
    await expectCode(late, 'ERR_KEYSTORE_CLOSED');
    await closing;
    expect(auditRecords(dir).map((r) => r.type)).toEqual(['store.opened', 'organisation.created']);
  });

  it('close() is idempotent and saves the head over every use record', async () => {
    const { store, dir } = await openStore();
    await supplierEstate(store);
    await store.signFor(M1, message);
    await store.close();
    await store.close();
    const n = auditRecords(dir).length;
    expect((await readState(dir)).auditHead.count).toBe(n);
    expect((await readState(dir)).auditIntent).toBeUndefined();
    expect(await KeyStore.verifyAuditTrail(dir, PASS)).toMatchObject({ ok: true, count: n });
  });
});

describe('store.opened says what opening recovered, and nothing when there was nothing', () => {
  it('a fresh store and a clean reopen: no recovery fields', async () => {
    const { store, dir } = await openStore();
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await store.close();
    const { store: again } = await openStore(dir);
    await again.close();
    expect(storeOpened(dir).map(fieldsOf)).toEqual([[], []]);
  });

  it('use records beyond the saved head are adopted and counted; a torn last line is cut and counted', async () => {
    const { store, dir } = await openStore();
    await supplierEstate(store);
    await store.signFor(M1, message);
    await store.signFor(M2, message);
    await store.flush(); // on disk, but the metadata's head is older
    const crashed = snapshot(dir);
    writeFileSync(join(crashed, 'audit.log'), Buffer.concat([readFileSync(join(crashed, 'audit.log')), Buffer.from('{"seq":99,"at"')]));
    const { store: again } = await openStore(crashed);
    await again.close();
    const opened = storeOpened(crashed).at(-1)!;
    expect(fieldsOf(opened)).toEqual(['recoveredRecords', 'tornBytesRemoved']);
    expect(opened).toMatchObject({ recoveredRecords: 2, tornBytesRemoved: 14 });
    expect((await KeyStore.verifyAuditTrail(crashed, PASS)).ok).toBe(true);
  });

  it('a crash between the metadata write and the log write: the next open writes the committed records and counts them', async () => {
    let crashed: string | undefined;
    let dir = '';
    const fault = (p: string) => {
      if (p === 'store:after-metadata' && crashed === undefined && dir) crashed = snapshot(dir);
    };
    const opened = await openStore(tempDir(), new MemoryKeyBackend(), { fault });
    dir = opened.dir;
    await opened.store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    // verifyAuditTrail reads the committed lines the log lacks from the metadata
    const v = await KeyStore.verifyAuditTrail(crashed!, PASS);
    expect(v).toMatchObject({ ok: true, intentLinesMissing: 1 });
    const { store } = await openStore(crashed!);
    expect(store.keys()).toEqual([]);
    await store.close();
    const last = storeOpened(crashed!).at(-1)!;
    expect(fieldsOf(last)).toEqual(['completedRecords']);
    expect(last.completedRecords).toBe(1);
    expect(auditRecords(crashed!).map((r) => r.type)).toEqual(['store.opened', 'organisation.created', 'store.opened']);
  });
});

describe('records beyond an older head: revocations and retirements applied again, anything else refused', () => {
  /** One closed supplier estate with a second north signing key (made once; each case works on a copy). */
  let template: { backend: MemoryKeyBackend; dir: string; north: Awaited<ReturnType<typeof supplierEstate>>['north']; g2: string } | undefined;
  async function estateClosed() {
    if (!template) {
      const backend = new MemoryKeyBackend();
      const { store, dir } = await openStore(tempDir(), backend);
      const estate = await supplierEstate(store);
      const g2 = (await issue(store, SUPPLIER, 'north', 'signing')).handle.keyId;
      await store.close();
      const keep = mkdtempSync(join(tmpdir(), 'smki-ks-template-'));
      cpSync(dir, keep, { recursive: true });
      template = { backend, dir: keep, north: estate.north, g2 };
    }
    const dir = tempDir();
    cpSync(template.dir, dir, { recursive: true });
    return { ...template, dir };
  }
  afterAll(() => {
    if (template) rmSync(template.dir, { recursive: true, force: true });
  });

  it('1000 lifecycle records beyond the head refuse to open, naming the count', async () => {
    const e = await estateClosed();
    await appendBeyondHead(e.dir, Array.from({ length: 1000 }, () => ({ type: 'key.retired' as const, keyId: e.g2 })));
    const err = await caught(() => KeyStore.open({ directory: e.dir, backend: e.backend, passphrase: PASS }), 'ERR_KEYSTORE_METADATA_ROLLBACK');
    expect((err.context as { detail: string }).detail).toMatch(/^1000 or more lifecycle records/);
    expect(existsSync(join(e.dir, 'LOCK'))).toBe(false);
  });

  it('999 retirements of one key beyond the head are applied as one', async () => {
    const e = await estateClosed();
    await appendBeyondHead(e.dir, Array.from({ length: 999 }, () => ({ type: 'key.retired' as const, keyId: e.g2 })));
    const { store, dir } = await openStore(e.dir, e.backend);
    expect(store.key(e.g2).state).toBe('retired');
    await store.close();
    expect(storeOpened(dir).at(-1)!.reappliedRecords).toBe(1);
  });

  it('a retirement beyond the head of a key the metadata has revoked leaves it revoked, and is not counted', async () => {
    const e = await estateClosed();
    const { store } = await openStore(e.dir, e.backend);
    const revoked = await store.revoke(e.g2, 'keyCompromise');
    await store.close();
    await appendBeyondHead(e.dir, [
      { type: 'key.retired', keyId: e.g2 },
      { type: 'key.revoked', keyId: e.g2 },
    ]);
    const { store: again, dir } = await openStore(e.dir, e.backend);
    expect(again.key(e.g2)).toMatchObject({ state: 'revoked', revokedAt: revoked.revokedAt });
    await again.close();
    expect(fieldsOf(storeOpened(dir).at(-1)!)).toEqual(['recoveredRecords']);
  });

  it('a retirement beyond the head of a retired key is not counted; a revocation of it is, dated by its record, and clears no other key', async () => {
    const e = await estateClosed();
    const { store } = await openStore(e.dir, e.backend);
    await store.retire(e.g2);
    await store.close();
    await appendBeyondHead(e.dir, [{ type: 'key.retired', keyId: e.g2 }]);
    let s = (await openStore(e.dir, e.backend)).store;
    expect(s.key(e.g2).state).toBe('retired');
    await s.close();
    expect(storeOpened(e.dir).at(-1)!.reappliedRecords).toBeUndefined();

    await appendBeyondHead(e.dir, [{ type: 'key.revoked', keyId: e.g2 }]);
    const at = auditRecords(e.dir).at(-1)!.at;
    s = (await openStore(e.dir, e.backend)).store;
    expect(s.key(e.g2)).toMatchObject({ state: 'revoked', revokedAt: at });
    // g1, not g2, is the current north signing key: it stays
    expect(s.portfolio(SUPPLIER, 'north').current.signing).toBe(e.north.ds.handle.keyId);
    await s.close();
    expect(storeOpened(e.dir).at(-1)!.reappliedRecords).toBe(1);
  });

  it('any other lifecycle record beyond the head refuses to open, naming the record', async () => {
    const e = await estateClosed();
    await appendBeyondHead(e.dir, [{ type: 'key.csr', keyId: e.g2 }]);
    const err = await caught(() => KeyStore.open({ directory: e.dir, backend: e.backend, passphrase: PASS }), 'ERR_KEYSTORE_METADATA_ROLLBACK');
    expect((err.context as { detail: string }).detail).toMatch(/^seq \d+: key\.csr$/);
  });

  it('a revocation or retirement beyond the head of a key the metadata does not know refuses to open, naming the record', async () => {
    for (const type of ['key.revoked', 'key.retired'] as const) {
      const e = await estateClosed();
      await appendBeyondHead(e.dir, [{ type, keyId: `${SUPPLIER}.north.DS.g9` }]);
      const err = await caught(() => KeyStore.open({ directory: e.dir, backend: e.backend, passphrase: PASS }), 'ERR_KEYSTORE_METADATA_ROLLBACK');
      expect((err.context as { detail: string }).detail).toBe(`seq ${auditRecords(e.dir).length}: ${type}`);
      expect(existsSync(join(e.dir, 'LOCK'))).toBe(false);
    }
  });
});

describe('identifiers, labels and generations', () => {
  it('key ids and backend labels name organisation, portfolio, purpose and generation; generations count per (organisation, portfolio, purpose)', async () => {
    const backend = new RecordingBackend();
    const { store } = await openStore(tempDir(), backend);
    for (const org of [SUPPLIER, OTHER_SUPPLIER]) {
      await store.addOrganisation({ entityId: org, role: 2 });
      await store.createPortfolio(org, { id: 'north' });
      await store.createPortfolio(org, { id: 'south' });
    }
    const ids = [
      await store.generateKey(SUPPLIER, 'north', 'signing'),
      await store.generateKey(SUPPLIER, 'north', 'signing'),
      await store.generateKey(SUPPLIER, 'north', 'keyAgreement'),
      await store.generateKey(SUPPLIER, 'north', 'prepaymentKeyAgreement'),
      await store.generateKey(SUPPLIER, 'south', 'signing'),
      await store.generateKey(OTHER_SUPPLIER, 'north', 'signing'),
    ].map((h) => h.keyId);
    expect(ids).toEqual([
      `${SUPPLIER}.north.DS.g1`,
      `${SUPPLIER}.north.DS.g2`,
      `${SUPPLIER}.north.KA.g1`,
      `${SUPPLIER}.north.KAP.g1`,
      `${SUPPLIER}.south.DS.g1`,
      `${OTHER_SUPPLIER}.north.DS.g1`,
    ]);
    expect(backend.specs.map((s) => s.label)).toEqual([
      `${SUPPLIER}/north/DS/g1`,
      `${SUPPLIER}/north/DS/g2`,
      `${SUPPLIER}/north/KA/g1`,
      `${SUPPLIER}/north/KAP/g1`,
      `${SUPPLIER}/south/DS/g1`,
      `${OTHER_SUPPLIER}/north/DS/g1`,
    ]);
    expect(backend.specs.map((s) => s.keyId)).toEqual(ids);
    const k = store.key(ids[1]!);
    expect(k).toMatchObject({ generation: 2, state: 'pending', backend: 'memory', organisation: SUPPLIER, portfolioId: 'north', purpose: 'signing' });
    expect(k.publicKey).toBe(Buffer.from(await backend.publicKey(k.handle)).toString('hex').toUpperCase());
    const h = await store.generateKey(SUPPLIER, 'north', 'signing');
    expect(h).toEqual({ keyId: `${SUPPLIER}.north.DS.g3`, purpose: 'signing' });
    expect(Object.isFrozen(h)).toBe(true);
    expect(Object.isFrozen(k)).toBe(true);
  });

  it('a key id the edited metadata already holds is ERR_KEYSTORE_CORRUPT, before any key is generated', async () => {
    const backend = new RecordingBackend();
    const { store, dir } = await openStore(tempDir(), backend);
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await store.createPortfolio(SUPPLIER, { id: 'north' });
    const g1 = await store.generateKey(SUPPLIER, 'north', 'signing');
    await store.close();
    await editState(dir, (s) => {
      s.keys[g1.keyId].generation = 0;
    });
    const { store: again } = await openStore(dir, backend);
    await expectCode(again.generateKey(SUPPLIER, 'north', 'signing'), 'ERR_KEYSTORE_CORRUPT');
    expect(backend.specs).toHaveLength(1);
  });

  it('every purpose argument is checked', async () => {
    const { store } = await openStore();
    await supplierEstate(store);
    await expectCode(store.generateKey(SUPPLIER, 'north', 'decrypt' as never), 'ERR_INVALID_ARGUMENT');
    await expectCode(store.markCredentialsUpdated(SUPPLIER, M1, 'decrypt' as never), 'ERR_INVALID_ARGUMENT');
    await expectCode(store.createPortfolio(SUPPLIER, { id: 'east', wholeEstate: ['decrypt' as never] }), 'ERR_INVALID_ARGUMENT');
  });
});

describe('organisations and portfolios: arguments', () => {
  it('maxDevicesPerKey is a positive safe integer; 1 is accepted', async () => {
    const { store } = await openStore();
    for (const [i, cap] of [0, -1, 1.5, Number.NaN, 2 ** 53].entries()) {
      await expectCode(store.addOrganisation({ entityId: `90B3D51F3001000${i}`, role: 2, maxDevicesPerKey: cap }), 'ERR_INVALID_ARGUMENT');
    }
    const o = await store.addOrganisation({ entityId: SUPPLIER, role: 2, maxDevicesPerKey: 1 });
    expect(o).toEqual({ entityId: SUPPLIER, role: 2, maxDevicesPerKey: 1 });
    expect(Object.isFrozen(o)).toBe(true);
    const p = await store.addOrganisation({ entityId: OTHER_SUPPLIER, role: 3 });
    expect(p).toStrictEqual({ entityId: OTHER_SUPPLIER, role: 3 });
    const err = await caught(() => store.addOrganisation({ entityId: ACB, role: 99 }), 'ERR_ROLE_UNKNOWN');
    expect(err.context).toEqual({ role: '99' });
  });

  it('portfolio ids: 1 to 64 of A-Z a-z 0-9 _ -, nothing before or after', async () => {
    const { store } = await openStore();
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    for (const id of ['', 'x'.repeat(65), 'a b', 'ab!', '!ab', 'a/b', '.a', 5 as unknown as string]) {
      await expectCode(store.createPortfolio(SUPPLIER, { id }), 'ERR_INVALID_ARGUMENT');
    }
    for (const id of ['x'.repeat(64), 'A', 'z9_-Z0']) expect((await store.createPortfolio(SUPPLIER, { id })).id).toBe(id);
  });

  it('a portfolio: named by its id unless named; whole-estate purposes once each, one portfolio per purpose; frozen', async () => {
    const { store, dir } = await openStore();
    await store.addOrganisation({ entityId: ACB, role: 4 });
    const p = await store.createPortfolio(ACB, { id: 'estate', wholeEstate: ['keyAgreement', 'keyAgreement'] });
    expect(p).toEqual({ organisation: ACB, id: 'estate', name: 'estate', wholeEstate: ['keyAgreement'], current: {}, devices: [] });
    expect(Object.isFrozen(p) && Object.isFrozen(p.wholeEstate) && Object.isFrozen(p.current) && Object.isFrozen(p.devices)).toBe(true);
    expect((await store.createPortfolio(ACB, { id: 'named', name: 'The north' })).name).toBe('The north');
    await expectCode(store.createPortfolio(ACB, { id: 'estate2', wholeEstate: ['keyAgreement'] }), 'ERR_INVALID_ARGUMENT');
    expect((await store.createPortfolio(ACB, { id: 'estate3', wholeEstate: ['signing'] })).wholeEstate).toEqual(['signing']);
    await store.flush();
    const created = auditRecords(dir).filter((r) => r.type === 'portfolio.created');
    expect(created.map((r) => [r.portfolioId, r.name, r.wholeEstate])).toEqual([
      ['estate', 'estate', ['keyAgreement']],
      ['named', 'The north', []],
      ['estate3', 'estate3', ['signing']],
    ]);
  });

  it('another organisation’s whole-estate portfolio neither blocks nor serves this one', async () => {
    const { store } = await openStore();
    const { north } = await supplierEstate(store);
    await store.addOrganisation({ entityId: ACB, role: 4 });
    await store.createPortfolio(ACB, { id: 'estate', wholeEstate: ['keyAgreement'] });
    await issue(store, ACB, 'estate', 'keyAgreement', 4);
    await store.assignDevice(ACB, M1, 'estate');
    // the supplier's meters keep their own key-agreement key, and the supplier may declare its own estate key
    expect(store.keyAgreementFor(M1, { organisation: SUPPLIER }).publicKey).toEqual(Buffer.from(north.ka.cert.publicKeyBytes));
    await store.createPortfolio(SUPPLIER, { id: 'east' });
    await store.assignDevice(SUPPLIER, '00DB1234567890B1', 'east', { installed: {} });
    expect(store.device(SUPPLIER, '00DB1234567890B1').installed).toEqual({});
    expect(store.devicesExposedBy(north.ka.handle.keyId).wholeEstate).toBe(false);
  });
});

describe('caps at their boundary', () => {
  async function capped(cap: number) {
    const { store, dir } = await openStore();
    await store.addOrganisation({ entityId: SUPPLIER, role: 2, maxDevicesPerKey: cap });
    for (const p of ['north', 'south', 'east']) {
      await store.createPortfolio(SUPPLIER, { id: p });
      await issue(store, SUPPLIER, p, 'signing');
    }
    return { store, dir };
  }

  it('assignDevice: the cap is reached, never passed', async () => {
    const { store } = await capped(2);
    await store.assignDevice(SUPPLIER, M1, 'north');
    await store.assignDevice(SUPPLIER, M2, 'north');
    const err = await caught(() => store.assignDevice(SUPPLIER, M3, 'north'), 'ERR_PORTFOLIO_DEVICE_CAP');
    expect((err.context as { detail: string }).detail).toBe(`${SUPPLIER}.north.DS.g1`);
    expect(store.portfolio(SUPPLIER, 'north').devices).toEqual([M1, M2]);
  });

  it('moveDevice: into a portfolio at the cap is refused; into one below it is not', async () => {
    const { store } = await capped(1);
    await store.assignDevice(SUPPLIER, M1, 'north');
    await store.assignDevice(SUPPLIER, M3, 'south');
    await expectCode(store.moveDevice(SUPPLIER, M1, 'south'), 'ERR_PORTFOLIO_DEVICE_CAP');
    expect(store.device(SUPPLIER, M1).portfolioId).toBe('north');
    const updates = await store.moveDevice(SUPPLIER, M1, 'east');
    expect(updates).toEqual([{ device: M1, purpose: 'signing', fromKeyId: `${SUPPLIER}.north.DS.g1`, toKeyId: `${SUPPLIER}.east.DS.g1` }]);
    expect(Object.isFrozen(updates[0])).toBe(true);
  });

  it('markCredentialsUpdated: recording the key a meter already trusts adds no device to it', async () => {
    const { store } = await capped(1);
    await store.assignDevice(SUPPLIER, M1, 'north');
    const d = await store.markCredentialsUpdated(SUPPLIER, M1, 'signing');
    expect(d.installed.signing).toBe(`${SUPPLIER}.north.DS.g1`);
    await store.assignDevice(SUPPLIER, M3, 'south');
    await store.moveDevice(SUPPLIER, M3, 'east');
    await store.moveDevice(SUPPLIER, M1, 'south');
    // M3 still trusts south's key: moving M1 there and updating it would put two meters on it
    await expectCode(store.markCredentialsUpdated(SUPPLIER, M1, 'signing'), 'ERR_PORTFOLIO_DEVICE_CAP');
  });
});

describe('the organisation of a use, when it is not named', () => {
  it('is the only one; with none or several the caller must name it', async () => {
    const { store } = await openStore();
    await expectCode(store.signFor(M1, message), 'ERR_INVALID_ARGUMENT');
    const { north } = await supplierEstate(store);
    expect(verifies(north.ds.cert.der, await store.signFor(M1, message))).toBe(true);
    await store.addOrganisation({ entityId: OTHER_SUPPLIER, role: 2 });
    await expectCode(store.signFor(M1, message), 'ERR_INVALID_ARGUMENT');
    expect(verifies(north.ds.cert.der, await store.signFor(M1, message, { organisation: SUPPLIER }))).toBe(true);
  });
});

describe('edited metadata that points a meter at the wrong key is refused at use', () => {
  it('a key of another purpose, or of another organisation: ERR_KEYSTORE_CORRUPT', async () => {
    const backend = new MemoryKeyBackend();
    const { store, dir } = await openStore(tempDir(), backend);
    const { north } = await supplierEstate(store);
    await supplierEstate(store, { entityId: OTHER_SUPPLIER });
    await store.close();
    await editState(dir, (s) => {
      s.devices[`${SUPPLIER}/${M1}`].installed.signing = north.ka.handle.keyId;
      s.devices[`${SUPPLIER}/${M2}`].installed.signing = `${OTHER_SUPPLIER}.north.DS.g1`;
    });
    const { store: again } = await openStore(dir, backend);
    await expectCode(again.signFor(M1, message, { organisation: SUPPLIER }), 'ERR_KEYSTORE_CORRUPT');
    await expectCode(again.signFor(M2, message, { organisation: SUPPLIER }), 'ERR_KEYSTORE_CORRUPT');
    expect(verifies(north.ds.cert.der, await again.signFor(M3, message, { organisation: SUPPLIER }))).toBe(false); // M3 is south's, untouched
  });
});

describe('use: what is signed, with which key, and what the record says', () => {
  it('data that is not bytes is refused before the backend signs, and nothing is recorded', async () => {
    const { store, dir } = await openStore();
    await supplierEstate(store);
    await store.flush();
    const n = auditRecords(dir).length;
    await expectCode(store.signFor(M1, 'DF09' as unknown as Uint8Array), 'ERR_INVALID_ARGUMENT');
    await store.flush();
    expect(auditRecords(dir)).toHaveLength(n);
  });

  it('a use record names the operation, key, portfolio and device, and carries message code and counter only when given', async () => {
    const { store, dir } = await openStore();
    const { north } = await supplierEstate(store);
    const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await store.signFor('00-DB-12-34-56-78-90-A1', message, { messageCode: 0x0101, counter: 2n ** 63n });
    await store.signFor(M1, message);
    await store.keyAgreementFor(M3, { messageCode: 0 }).deriveSharedSecret(peer.publicKey);
    await store.flush();
    const used = auditRecords(dir).filter((r) => r.type === 'key.used');
    expect(used.map((r) => ({ ...r, seq: 0, at: '', prev: '', mac: '' }))).toEqual([
      { seq: 0, at: '', type: 'key.used', operation: 'sign', keyId: north.ds.handle.keyId, portfolioId: 'north', device: M1, messageCode: 0x0101, counter: (2n ** 63n).toString(), prev: '', mac: '' },
      { seq: 0, at: '', type: 'key.used', operation: 'sign', keyId: north.ds.handle.keyId, portfolioId: 'north', device: M1, prev: '', mac: '' },
      { seq: 0, at: '', type: 'key.used', operation: 'keyAgreement', keyId: `${SUPPLIER}.south.KA.g1`, portfolioId: 'south', device: M3, messageCode: 0, prev: '', mac: '' },
    ]);
  });

  it('signWith: a key of the meter’s portfolio it does not trust, or of the portfolio it left, is ERR_KEY_STATE_TRANSITION; of a third, ERR_KEY_PORTFOLIO_MISMATCH', async () => {
    const { store } = await openStore();
    const { north, south } = await supplierEstate(store);
    await store.createPortfolio(SUPPLIER, { id: 'east' });
    const east = await issue(store, SUPPLIER, 'east', 'signing');
    const g2 = await issue(store, SUPPLIER, 'north', 'signing');
    await store.rotate(g2.handle.keyId); // M1, M2 still trust g1
    await expectCode(store.signWith(g2.handle as SigningKeyHandle, M1, message), 'ERR_KEY_STATE_TRANSITION');
    await store.moveDevice(SUPPLIER, M2, 'south'); // M2 still trusts north g1
    await expectCode(store.signWith(south.ds.handle as SigningKeyHandle, M2, message), 'ERR_KEY_STATE_TRANSITION');
    await expectCode(store.signWith(g2.handle as SigningKeyHandle, M2, message), 'ERR_KEY_STATE_TRANSITION');
    await expectCode(store.signWith(east.handle as SigningKeyHandle, M2, message), 'ERR_KEY_PORTFOLIO_MISMATCH');
    expect(verifies(north.ds.cert.der, await store.signWith(north.ds.handle as SigningKeyHandle, M2, message))).toBe(true);
    await expectCode(store.signWith(undefined as unknown as SigningKeyHandle, M2, message), 'ERR_KEY_NOT_FOUND');
  });

  it('key agreement: peer as a point, as SPKI DER or as a KeyObject; per purpose; never with a signing key', async () => {
    const { store } = await openStore();
    await supplierEstate(store);
    const kap = await issue(store, SUPPLIER, 'north', 'prepaymentKeyAgreement');
    await store.markCredentialsUpdated(SUPPLIER, M1, 'prepaymentKeyAgreement');
    const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ka = store.keyAgreementFor(M1);
    const expected = diffieHellman({ privateKey: peer.privateKey, publicKey: publicKeyFromRaw(ka.publicKey) });
    const point = publicKeyToRaw(peer.publicKey);
    const der = new Uint8Array(peer.publicKey.export({ format: 'der', type: 'spki' }));
    for (const p of [point, der, peer.publicKey]) expect(Buffer.from(await ka.deriveSharedSecret(p))).toEqual(expected);
    const prepayment = store.keyAgreementFor(M1, { purpose: 'prepaymentKeyAgreement' });
    expect(prepayment.publicKey).toEqual(Buffer.from(kap.cert.publicKeyBytes));
    await expectCode(() => store.keyAgreementFor(M1, { purpose: 'signing' as never }), 'ERR_KEY_NOT_FOR_KEY_AGREEMENT');
  });

  it('a KeyAgreement refuses once its meter trusts another key, and keyAgreementWith a key of the same portfolio the meter does not trust', async () => {
    const { store } = await openStore();
    await supplierEstate(store);
    const ka = store.keyAgreementFor(M1);
    const g2 = await issue(store, SUPPLIER, 'north', 'keyAgreement');
    await store.rotate(g2.handle.keyId);
    await expectCode(() => store.keyAgreementWith(g2.handle as KeyAgreementKeyHandle, M1), 'ERR_KEY_STATE_TRANSITION');
    await store.markCredentialsUpdated(SUPPLIER, M1, 'keyAgreement');
    const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await expectCode(ka.deriveSharedSecret(peer.publicKey), 'ERR_KEY_STATE_TRANSITION');
    const now = store.keyAgreementWith(g2.handle as KeyAgreementKeyHandle, M1);
    expect(now.publicKey).toEqual(Buffer.from(g2.cert.publicKeyBytes));
    expect(await now.deriveSharedSecret(peer.publicKey)).toHaveLength(32);
  });
});

describe('lifecycle: records and results', () => {
  it('rotate lists the meters not yet on the new key, and records the key it replaced (none after a revocation)', async () => {
    const { store, dir } = await openStore();
    const { north } = await supplierEstate(store);
    const g2 = await issue(store, SUPPLIER, 'north', 'signing');
    await store.assignDevice(SUPPLIER, '00DB1234567890B1', 'north', { installed: { signing: g2.handle.keyId } });
    const updates = await store.rotate(g2.handle.keyId);
    expect(updates).toEqual([
      { device: M1, purpose: 'signing', fromKeyId: north.ds.handle.keyId, toKeyId: g2.handle.keyId },
      { device: M2, purpose: 'signing', fromKeyId: north.ds.handle.keyId, toKeyId: g2.handle.keyId },
    ]);
    expect(store.key(g2.handle.keyId).state).toBe('active');
    await store.revoke(g2.handle.keyId);
    const g3 = await issue(store, SUPPLIER, 'north', 'signing');
    expect(store.key(g3.handle.keyId).state).toBe('active'); // no current key: the first certificate makes it current
    const g4 = await issue(store, SUPPLIER, 'north', 'signing');
    expect(store.key(g4.handle.keyId).state).toBe('pending');
    await store.revoke(g3.handle.keyId);
    await store.rotate(g4.handle.keyId);
    await store.flush();
    const rotated = auditRecords(dir).filter((r) => r.type === 'key.rotated');
    expect(rotated.map(fieldsOf)).toEqual([
      ['organisation', 'portfolioId', 'purpose', 'fromKeyId', 'toKeyId', 'devicesToUpdate'],
      ['organisation', 'portfolioId', 'purpose', 'toKeyId', 'devicesToUpdate'],
    ]);
    expect(rotated[0]).toMatchObject({ organisation: SUPPLIER, portfolioId: 'north', purpose: 'signing', fromKeyId: north.ds.handle.keyId, devicesToUpdate: 2 });
    expect(rotated[1]).toMatchObject({ toKeyId: g4.handle.keyId, devicesToUpdate: 3 });
  });

  it('revoke records the reason, cut to what a record carries (128 characters); a long reason never blocks a revocation', async () => {
    const { store, dir } = await openStore();
    const { north, south } = await supplierEstate(store);
    const long = 'keyCompromise: '.padEnd(300, 'x');
    expect((await store.revoke(north.ds.handle.keyId, long)).state).toBe('revoked');
    await store.revoke(south.ds.handle.keyId);
    await store.flush();
    const revoked = auditRecords(dir).filter((r) => r.type === 'key.revoked');
    expect(revoked[0]!.reason).toBe(long.slice(0, 128));
    expect(fieldsOf(revoked[1]!)).toEqual(['keyId']);
    expect(store.portfolio(SUPPLIER, 'north').current.signing).toBeUndefined();
    expect(store.portfolio(SUPPLIER, 'north').current.keyAgreement).toBe(north.ka.handle.keyId);
  });

  it('revoking a key that is not current leaves the current key', async () => {
    const { store } = await openStore();
    const { north } = await supplierEstate(store);
    const g2 = await issue(store, SUPPLIER, 'north', 'signing');
    await store.revoke(g2.handle.keyId);
    expect(store.portfolio(SUPPLIER, 'north').current.signing).toBe(north.ds.handle.keyId);
  });

  it('a CSR carries the organisation, its role, the key usage of the purpose, and a common name only when given', async () => {
    const { store } = await openStore();
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await store.createPortfolio(SUPPLIER, { id: 'north' });
    const ds = await store.generateKey(SUPPLIER, 'north', 'signing');
    const ka = await store.generateKey(SUPPLIER, 'north', 'keyAgreement');
    const a = parseCsr(await store.createCsr(ds.keyId, { commonName: 'North DS' }));
    expect(a).toMatchObject({ entityId: SUPPLIER, role: 2, commonName: 'North DS', requestedKeyUsage: ['digitalSignature'] });
    expect(Buffer.from(a.publicKeyBytes).toString('hex').toUpperCase()).toBe(store.key(ds.keyId).publicKey);
    const b = parseCsr(await store.createCsr(ka.keyId));
    expect(b.commonName).toBeUndefined();
    expect(b.requestedKeyUsage).toEqual(['keyAgreement']);
  });
});

describe('devices: what is recorded', () => {
  it('assignDevice takes an installed key only of this organisation and purpose, own properties only', async () => {
    const { store } = await openStore();
    const { north } = await supplierEstate(store);
    await supplierEstate(store, { entityId: OTHER_SUPPLIER });
    const D = '00DB1234567890B1';
    await expectCode(store.assignDevice(SUPPLIER, D, 'north', { installed: { signing: `${OTHER_SUPPLIER}.north.DS.g1` } }), 'ERR_INVALID_ARGUMENT');
    await expectCode(store.assignDevice(SUPPLIER, D, 'north', { installed: { signing: north.ka.handle.keyId } }), 'ERR_INVALID_ARGUMENT');
    const inherited = Object.create({ signing: `${SUPPLIER}.south.DS.g1` }) as Record<string, string>;
    const d = await store.assignDevice(SUPPLIER, D, 'north', { installed: inherited });
    expect(d).toEqual({ device: D, organisation: SUPPLIER, portfolioId: 'north', installed: { signing: north.ds.handle.keyId, keyAgreement: north.ka.handle.keyId } });
    expect(Object.isFrozen(d) && Object.isFrozen(d.installed)).toBe(true);
    expect(store.device(SUPPLIER, D)).toEqual(d);
    await expectCode(() => store.device(SUPPLIER, '00DB123456789999'), 'ERR_DEVICE_UNKNOWN');
  });

  it('moveDevice lists updates only for purposes with a current key the meter does not trust yet, and records both portfolios', async () => {
    const { store, dir } = await openStore();
    const { south } = await supplierEstate(store);
    await store.createPortfolio(SUPPLIER, { id: 'east' });
    await issue(store, SUPPLIER, 'east', 'signing'); // east: a signing key only
    expect(await store.moveDevice(SUPPLIER, M1, 'east')).toEqual([
      { device: M1, purpose: 'signing', fromKeyId: `${SUPPLIER}.north.DS.g1`, toKeyId: `${SUPPLIER}.east.DS.g1` },
    ]);
    await store.markCredentialsUpdated(SUPPLIER, M1, 'signing');
    const back = await store.moveDevice(SUPPLIER, M1, 'south');
    expect(back.map((u) => [u.purpose, u.toKeyId])).toEqual([
      ['signing', south.ds.handle.keyId],
      ['keyAgreement', south.ka.handle.keyId],
    ]);
    await store.markCredentialsUpdated(SUPPLIER, M1, 'signing');
    await store.markCredentialsUpdated(SUPPLIER, M1, 'keyAgreement');
    await store.moveDevice(SUPPLIER, M1, 'east');
    expect(await store.moveDevice(SUPPLIER, M1, 'south')).toEqual([]); // it trusts south's keys already
    await store.flush();
    expect(auditRecords(dir).filter((r) => r.type === 'device.moved').at(0)).toMatchObject({ organisation: SUPPLIER, device: M1, fromPortfolioId: 'north', toPortfolioId: 'east' });
  });

  it('markCredentialsUpdated refuses an estate purpose and a portfolio without a current key; records the key', async () => {
    const { store, dir } = await openStore();
    await store.addOrganisation({ entityId: ACB, role: 4 });
    await store.createPortfolio(ACB, { id: 'estate', wholeEstate: ['keyAgreement'] });
    await store.createPortfolio(ACB, { id: 'north' });
    await issue(store, ACB, 'estate', 'keyAgreement', 4);
    await store.assignDevice(ACB, M1, 'north');
    await expectCode(store.markCredentialsUpdated(ACB, M1, 'keyAgreement'), 'ERR_PORTFOLIO_WHOLE_ESTATE_CONFLICT');
    await expectCode(store.markCredentialsUpdated(ACB, M1, 'signing'), 'ERR_DEVICE_NO_INSTALLED_CERTIFICATE');
    const ds = await issue(store, ACB, 'north', 'signing', 4);
    expect((await store.markCredentialsUpdated(ACB, M1, 'signing')).installed).toEqual({ signing: ds.handle.keyId });
    await store.flush();
    expect(auditRecords(dir).at(-1)).toMatchObject({ type: 'device.credentials-updated', device: M1, purpose: 'signing', keyId: ds.handle.keyId });
  });
});

describe('reading', () => {
  it('keys of one organisation, or all; exposure of an estate key only while it is current; the report largest first, then by key id', async () => {
    const { store } = await openStore();
    const { north, south } = await supplierEstate(store);
    await store.addOrganisation({ entityId: ACB, role: 4 });
    await store.createPortfolio(ACB, { id: 'estate', wholeEstate: ['keyAgreement'] });
    const e1 = await issue(store, ACB, 'estate', 'keyAgreement', 4);
    await store.createPortfolio(ACB, { id: 'north' });
    await store.assignDevice(ACB, M1, 'north');
    await store.assignDevice(ACB, M2, 'north');
    expect(store.keys(ACB).map((k) => k.keyId)).toEqual([e1.handle.keyId]);
    expect(store.keys().length).toBe(5);
    expect(store.devicesExposedBy(e1.handle.keyId)).toEqual({ keyId: e1.handle.keyId, portfolioId: 'estate', purpose: 'keyAgreement', wholeEstate: true, devices: [M1, M2] });
    const e2 = await issue(store, ACB, 'estate', 'keyAgreement', 4);
    await store.rotate(e2.handle.keyId);
    expect(store.devicesExposedBy(e1.handle.keyId)).toMatchObject({ wholeEstate: false, devices: [] });
    const x = store.devicesExposedBy(north.ds.handle.keyId);
    expect(Object.isFrozen(x) && Object.isFrozen(x.devices)).toBe(true);
    await store.revoke(south.ka.handle.keyId);
    const pending = await store.generateKey(SUPPLIER, 'south', 'signing');
    const report = store.exposureReport(SUPPLIER).map((r) => [r.keyId, r.devices.length]);
    expect(report).toEqual([
      [north.ds.handle.keyId, 2],
      [north.ka.handle.keyId, 2],
      [south.ds.handle.keyId, 1],
      [pending.keyId, 0],
    ]);
    expect(store.exposureReport().map((r) => r.keyId)).toEqual([e2.handle.keyId, north.ds.handle.keyId, north.ka.handle.keyId, south.ds.handle.keyId, e1.handle.keyId, pending.keyId]);
  });

  it('an error without a detail has an empty context; one with it, the detail only', async () => {
    const { store } = await openStore();
    await store.close();
    expect((await caught(() => store.keys(), 'ERR_KEYSTORE_CLOSED')).context).toStrictEqual({});
    const { store: s2 } = await openStore();
    expect((await caught(() => s2.key('nope'), 'ERR_KEY_NOT_FOUND')).context).toStrictEqual({ detail: 'nope' });
  });
});

/** Where the DER TLV that starts at `at` ends. */
function tlvEnd(der: Uint8Array, at: number): number {
  const first = der[at + 1]!;
  if (first < 0x80) return at + 2 + first;
  let length = 0;
  for (let i = 0; i < (first & 0x7f); i++) length = length * 256 + der[at + 2 + i]!;
  return at + 2 + (first & 0x7f) + length;
}
function derTlv(tag: number, body: Uint8Array): Buffer {
  const n = body.length;
  return Buffer.concat([Buffer.from([tag, ...(n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff])]), body]);
}

/**
 * An issued digitalSignature certificate with keyAgreement added to its key usage (as a CA that
 * ignored the one-usage rule would issue it), signed again by `ca`: same length, so only the
 * usage bits and the signature change.
 */
async function withBothKeyUsages(der: Uint8Array, ca: Signer): Promise<Uint8Array> {
  const b = Buffer.from(der);
  const signingOnly = Buffer.from('040403020780', 'hex'); // OCTET STRING { BIT STRING digitalSignature }
  const at = b.indexOf(signingOnly);
  expect(at > 0 && b.lastIndexOf(signingOnly) === at).toBe(true);
  Buffer.from('040403020388', 'hex').copy(b, at); // digitalSignature + keyAgreement
  const tbsAt = b[1]! < 0x80 ? 2 : 2 + (b[1]! & 0x7f); // past the outer SEQUENCE's tag and length
  const algAt = tlvEnd(b, tbsAt);
  const tbs = b.subarray(tbsAt, algAt);
  const alg = b.subarray(algAt, tlvEnd(b, algAt));
  const signature = p1363ToDer(await ca.sign(tbs));
  return derTlv(0x30, Buffer.concat([tbs, alg, derTlv(0x03, Buffer.concat([Buffer.from([0]), signature]))]));
}

describe('open: orphan keys, and the store.opened record', () => {
  it('backend keys the metadata does not name (a crash between generating and recording) are the orphans, and only those', async () => {
    const backend = new MemoryKeyBackend();
    let crash = false;
    const fault = (p: string) => {
      if (crash && p === 'store:after-backend-generate') {
        crash = false;
        throw new Error('killed after the backend generated');
      }
    };
    const { store, dir } = await openStore(tempDir(), backend, { fault });
    expect(store.orphanHandles()).toEqual([]);
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await store.createPortfolio(SUPPLIER, { id: 'north' });
    const kept = await store.generateKey(SUPPLIER, 'north', 'signing');
    crash = true;
    await expect(store.generateKey(SUPPLIER, 'north', 'keyAgreement')).rejects.toThrow('killed after the backend generated');
    expect(store.keys().map((k) => k.keyId)).toEqual([kept.keyId]);
    await store.close();
    const keptHandle = (await readState(dir)).keys[kept.keyId].handle as string;
    const lost = (await backend.listHandles()).filter((h) => h !== keptHandle);
    expect(lost).toHaveLength(1);
    const { store: again } = await openStore(dir, backend);
    expect(again.orphanHandles()).toEqual(lost);
    expect(again.key(kept.keyId).handle).toBe(keptHandle);
  });

  it('the store.opened record is on disk before open returns, and the head saved at open covers it', async () => {
    const dir = tempDir();
    await (await openStore(dir)).store.close();
    // a long group-commit window: a record that waited for it would not be in the file yet
    await openStore(dir, new MemoryKeyBackend(), { auditGroupCommitMs: 10_000 });
    const records = auditRecords(dir);
    expect(records.map((r) => r.type)).toEqual(['store.opened', 'store.opened']);
    expect((await readState(dir)).auditHead.count).toBe(2);
  });
});

describe('use records are group-committed', () => {
  it('signFor and a key agreement return before their records are written; flush() writes them, in order', async () => {
    const { store, dir } = await openStore(tempDir(), new MemoryKeyBackend(), { auditGroupCommitMs: 10_000 });
    const { north } = await supplierEstate(store);
    const n = auditRecords(dir).length;
    await store.signFor(M1, message, { counter: 1n });
    expect(auditRecords(dir)).toHaveLength(n);
    await store.keyAgreementFor(M1, { counter: 2n }).deriveSharedSecret(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    expect(auditRecords(dir)).toHaveLength(n);
    await store.flush();
    expect(auditRecords(dir).slice(n).map((r) => [r.type, r.operation, r.keyId, r.counter])).toEqual([
      ['key.used', 'sign', north.ds.handle.keyId, '1'],
      ['key.used', 'keyAgreement', north.ka.handle.keyId, '2'],
    ]);
  });
});

describe('keyAgreementWith: the use it records, and the keys it refuses', () => {
  it('records the message code and counter given, with the given key’s purpose and organisation, whatever else `use` carries', async () => {
    const { store, dir } = await openStore();
    await supplierEstate(store);
    await supplierEstate(store, { entityId: OTHER_SUPPLIER });
    const kap = await issue(store, SUPPLIER, 'north', 'prepaymentKeyAgreement');
    await store.markCredentialsUpdated(SUPPLIER, M1, 'prepaymentKeyAgreement');
    const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const use = { messageCode: 0x0050, counter: 0x0102030405060708n, purpose: 'keyAgreement', organisation: OTHER_SUPPLIER };
    const ka = store.keyAgreementWith(kap.handle as KeyAgreementKeyHandle, M1, use as never);
    expect(ka.publicKey).toEqual(Buffer.from(kap.cert.publicKeyBytes));
    await ka.deriveSharedSecret(peer.publicKey);
    await store.keyAgreementWith(kap.handle as KeyAgreementKeyHandle, M1).deriveSharedSecret(peer.publicKey);
    await store.close();
    expect((await KeyStore.verifyAuditTrail(dir, PASS)).ok).toBe(true);
    const used = auditRecords(dir).filter((r) => r.type === 'key.used');
    expect(used.map((r) => ({ ...r, seq: 0, at: '', prev: '', mac: '' }))).toEqual([
      { seq: 0, at: '', type: 'key.used', operation: 'keyAgreement', keyId: kap.handle.keyId, portfolioId: 'north', device: M1, messageCode: 0x0050, counter: '72623859790382856', prev: '', mac: '' },
      { seq: 0, at: '', type: 'key.used', operation: 'keyAgreement', keyId: kap.handle.keyId, portfolioId: 'north', device: M1, prev: '', mac: '' },
    ]);
  });

  it('a signing key is ERR_KEY_NOT_FOR_KEY_AGREEMENT naming it, the meter’s own or another portfolio’s; no handle is ERR_KEY_NOT_FOUND', async () => {
    const { store, dir } = await openStore();
    const { north, south } = await supplierEstate(store);
    await store.flush();
    const n = auditRecords(dir).length;
    for (const k of [north.ds.handle, south.ds.handle]) {
      const err = await caught(() => store.keyAgreementWith(k as unknown as KeyAgreementKeyHandle, M1), 'ERR_KEY_NOT_FOR_KEY_AGREEMENT');
      expect(err.context).toStrictEqual({ detail: k.keyId });
    }
    for (const none of [undefined, null]) await expectCode(() => store.keyAgreementWith(none as never, M1), 'ERR_KEY_NOT_FOUND');
    await store.flush();
    expect(auditRecords(dir)).toHaveLength(n);
  });
});

describe('attachCertificate refuses a wrong certificate, and then nothing changes', () => {
  /** A pending signing key, the first of a new portfolio (a certificate would make it current), and its CSR. */
  async function pendingFirstKey() {
    const { store, dir } = await openStore();
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await store.createPortfolio(SUPPLIER, { id: 'east' });
    const handle = await store.generateKey(SUPPLIER, 'east', 'signing');
    const csr = await store.createCsr(handle.keyId);
    const right = await issueOrganisationCertificate({ issuer: pki().organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', csr });
    await store.flush();
    return { store, dir, keyId: handle.keyId, right, records: auditRecords(dir).length };
  }
  async function unchanged(store: KeyStore, dir: string, keyId: string, state: string, records: number) {
    expect(store.key(keyId)).toMatchObject({ state });
    expect(store.key(keyId).certificate).toBeUndefined();
    expect(store.key(keyId).serialNumber).toBeUndefined();
    expect(store.portfolio(SUPPLIER, 'east').current).toEqual({});
    await store.flush();
    expect(auditRecords(dir)).toHaveLength(records);
  }

  it('to a key revoked or retired while pending: ERR_KEY_STATE_TRANSITION (it never becomes active)', async () => {
    const { store, dir, keyId, right, records } = await pendingFirstKey();
    await store.revoke(keyId);
    const err = await caught(() => store.attachCertificate(keyId, right), 'ERR_KEY_STATE_TRANSITION');
    expect(err.context).toStrictEqual({ detail: keyId });
    await unchanged(store, dir, keyId, 'revoked', records + 1);
    const g2 = await store.generateKey(SUPPLIER, 'east', 'signing');
    const cert2 = await issueOrganisationCertificate({ issuer: pki().organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', csr: await store.createCsr(g2.keyId) });
    await store.retire(g2.keyId);
    await expectCode(store.attachCertificate(g2.keyId, cert2), 'ERR_KEY_STATE_TRANSITION');
    expect(store.key(g2.keyId)).toMatchObject({ state: 'retired' });
    expect(store.portfolio(SUPPLIER, 'east').current).toEqual({});
  });

  it('a device certificate for the key, naming the organisation’s id: ERR_CERTIFICATE_ENTITY_MISMATCH', async () => {
    const { store, dir, keyId, right, records } = await pendingFirstKey();
    const device = await issueDeviceCertificate({ issuer: pki().deviceCa, entityId: SUPPLIER, keyUsage: 'digitalSignature', publicKey: Buffer.from(store.key(keyId).publicKey, 'hex') });
    expect([device.kind, device.entityId]).toEqual(['device', SUPPLIER]);
    const err = await caught(() => store.attachCertificate(keyId, device), 'ERR_CERTIFICATE_ENTITY_MISMATCH');
    expect(err.context).toStrictEqual({ detail: keyId });
    await unchanged(store, dir, keyId, 'pending', records);
    expect((await store.attachCertificate(keyId, right)).state).toBe('active');
  });

  it('an organisation certificate with a second key usage: ERR_CERTIFICATE_PURPOSE_MISMATCH', async () => {
    const { store, dir, keyId, right, records } = await pendingFirstKey();
    const both = await withBothKeyUsages(right.der, pki().organisationCa.signer);
    const parsed = parseCertificate(both);
    expect([parsed.kind, parsed.entityId, parsed.role, parsed.keyUsage]).toEqual(['organisation', SUPPLIER, 2, ['digitalSignature', 'keyAgreement']]);
    const err = await caught(() => store.attachCertificate(keyId, both), 'ERR_CERTIFICATE_PURPOSE_MISMATCH');
    expect(err.context).toStrictEqual({ detail: keyId });
    await unchanged(store, dir, keyId, 'pending', records);
    expect((await store.attachCertificate(keyId, right)).state).toBe('active');
  });
});

describe('lifecycle refusals that keep a key’s state', () => {
  it('retiring a revoked key is ERR_KEY_STATE_TRANSITION: it stays revoked and no retirement is recorded', async () => {
    const { store, dir } = await openStore();
    await supplierEstate(store);
    const g2 = await store.generateKey(SUPPLIER, 'north', 'signing'); // pending: no meter trusts it, not current
    const revoked = await store.revoke(g2.keyId);
    const err = await caught(() => store.retire(g2.keyId), 'ERR_KEY_STATE_TRANSITION');
    expect(err.context).toStrictEqual({ detail: g2.keyId });
    expect(store.key(g2.keyId)).toEqual(revoked);
    await store.flush();
    expect(auditRecords(dir).filter((r) => r.type === 'key.retired')).toEqual([]);
  });

  it('close() of a closed store writes nothing, even after another store opened its directory', async () => {
    const dir = tempDir();
    const first = await KeyStore.open({ directory: dir, backend: new MemoryKeyBackend(), passphrase: PASS, auditGroupCommitMs: 5 });
    await first.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await first.close();
    const { store: second } = await openStore(dir);
    await second.addOrganisation({ entityId: OTHER_SUPPLIER, role: 2 });
    await first.close();
    expect(Object.keys((await readState(dir)).organisations)).toEqual([SUPPLIER, OTHER_SUPPLIER]);
    expect((await KeyStore.verifyAuditTrail(dir, PASS)).ok).toBe(true);
  });
});

describe('arguments that are not strings', () => {
  it('a key id that is not a string names no key, whatever it converts to; nothing is signed or recorded', async () => {
    const { store, dir } = await openStore();
    const { north } = await supplierEstate(store);
    const id = north.ds.handle.keyId;
    await store.flush();
    const n = auditRecords(dir).length;
    await expectCode(() => store.key([id] as never), 'ERR_KEY_NOT_FOUND');
    await expectCode(store.signWith({ keyId: new String(id), purpose: 'signing' } as never, M1, message), 'ERR_KEY_NOT_FOUND');
    await expectCode(store.retire({ toString: () => id } as never), 'ERR_KEY_NOT_FOUND');
    await store.flush();
    expect(auditRecords(dir)).toHaveLength(n);
  });

  it('a portfolio id that is not a string is refused as an argument (no detail), whatever it converts to', async () => {
    const { store } = await openStore();
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await store.createPortfolio(SUPPLIER, { id: 'north' });
    for (const id of [new String('north'), new String('south'), ['south'], 5]) {
      expect((await caught(() => store.createPortfolio(SUPPLIER, { id: id as never }), 'ERR_INVALID_ARGUMENT')).context).toStrictEqual({});
    }
    await expectCode(() => store.portfolio(SUPPLIER, 'south'), 'ERR_PORTFOLIO_NOT_FOUND');
  });
});

describe('whole-estate keys: devices, exposure, and a portfolio without a current key', () => {
  it('a whole-estate portfolio with no current key (none yet, or revoked) is ERR_DEVICE_NO_INSTALLED_CERTIFICATE for the device', async () => {
    const { store } = await openStore();
    await store.addOrganisation({ entityId: ACB, role: 4 });
    await store.createPortfolio(ACB, { id: 'estate', wholeEstate: ['keyAgreement'] });
    await store.createPortfolio(ACB, { id: 'north' });
    await store.assignDevice(ACB, M1, 'north');
    const none = await caught(() => store.keyAgreementFor(M1), 'ERR_DEVICE_NO_INSTALLED_CERTIFICATE');
    expect(none.context).toStrictEqual({ detail: M1 });
    const e1 = await issue(store, ACB, 'estate', 'keyAgreement', 4);
    expect(store.keyAgreementFor(M1).publicKey).toEqual(Buffer.from(e1.cert.publicKeyBytes));
    await store.revoke(e1.handle.keyId);
    expect((await caught(() => store.keyAgreementFor(M1), 'ERR_DEVICE_NO_INSTALLED_CERTIFICATE')).context).toStrictEqual({ detail: M1 });
  });

  it('a whole-estate portfolio for a purpose is refused only when a device records a key of that purpose', async () => {
    const { store } = await openStore();
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await store.createPortfolio(SUPPLIER, { id: 'north' });
    await issue(store, SUPPLIER, 'north', 'signing');
    await store.assignDevice(SUPPLIER, M1, 'north'); // trusts north's signing key, no key-agreement key
    await store.assignDevice(SUPPLIER, M2, 'north', { installed: {} });
    const err = await caught(() => store.createPortfolio(SUPPLIER, { id: 'estate-ds', wholeEstate: ['signing'] }), 'ERR_PORTFOLIO_WHOLE_ESTATE_CONFLICT');
    expect(err.context).toStrictEqual({ detail: 'estate-ds' });
    expect((await store.createPortfolio(SUPPLIER, { id: 'estate-ka', wholeEstate: ['keyAgreement'] })).wholeEstate).toEqual(['keyAgreement']);
  });

  it('devicesExposedBy lists the devices sorted, whatever order they were assigned in', async () => {
    const { store } = await openStore();
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await store.createPortfolio(SUPPLIER, { id: 'north' });
    const ds = await issue(store, SUPPLIER, 'north', 'signing');
    for (const d of [M3, M1, M2]) await store.assignDevice(SUPPLIER, d, 'north');
    expect(store.devicesExposedBy(ds.handle.keyId).devices).toEqual([M1, M2, M3]);
  });
});

describe('edited metadata: what counts as a key’s exposure, and a cap that is not a number', () => {
  it('a device record of another organisation that names the key is not its exposure: the key is retired as devicesExposedBy says it may be', async () => {
    const backend = new MemoryKeyBackend();
    const { store, dir } = await openStore(tempDir(), backend);
    await supplierEstate(store);
    await supplierEstate(store, { entityId: OTHER_SUPPLIER });
    const g2 = await issue(store, SUPPLIER, 'north', 'signing'); // certified, not current, trusted by no supplier meter
    await store.close();
    await editState(dir, (s) => {
      s.devices[`${OTHER_SUPPLIER}/${M1}`].installed.signing = g2.handle.keyId;
    });
    const { store: again } = await openStore(dir, backend);
    expect(again.devicesExposedBy(g2.handle.keyId).devices).toEqual([]);
    expect((await again.retire(g2.handle.keyId)).state).toBe('retired');
    // and the other organisation's meter is never signed for with it
    await expectCode(again.signFor(M1, message, { organisation: OTHER_SUPPLIER }), 'ERR_KEY_RETIRED');
  });

  it('a cap that is not a number refuses every assignment and move it would govern (fail closed)', async () => {
    const backend = new MemoryKeyBackend();
    const { store, dir } = await openStore(tempDir(), backend);
    await supplierEstate(store, { maxDevicesPerKey: 5 });
    await store.close();
    await editState(dir, (s) => {
      s.organisations[SUPPLIER].maxDevicesPerKey = 'many';
    });
    const { store: again } = await openStore(dir, backend);
    await expectCode(again.assignDevice(SUPPLIER, '00DB1234567890B1', 'north'), 'ERR_PORTFOLIO_DEVICE_CAP');
    await expectCode(again.moveDevice(SUPPLIER, M3, 'north'), 'ERR_PORTFOLIO_DEVICE_CAP');
    expect(again.portfolio(SUPPLIER, 'north').devices).toEqual([M1, M2]);
  });
});

describe('a use context the audit record cannot carry refuses the operation before the key is used', () => {
  /** A memory backend that counts the key operations it performed. */
  class CountingBackend extends MemoryKeyBackend {
    operations = 0;
    override async sign(handle: string, data: Uint8Array): Promise<Uint8Array> {
      this.operations++;
      return super.sign(handle, data);
    }
    override async deriveSharedSecret(handle: string, point: Uint8Array): Promise<Uint8Array> {
      this.operations++;
      return super.deriveSharedSecret(handle, point);
    }
  }

  const BAD: [unknown, string][] = [
    [null, 'use'],
    [7, 'use'],
    ['messageCode', 'use'],
    [{ messageCode: 0x10000 }, 'messageCode'],
    [{ messageCode: -1 }, 'messageCode'],
    [{ messageCode: 1.5 }, 'messageCode'],
    [{ messageCode: '80' }, 'messageCode'],
    [{ messageCode: 80n }, 'messageCode'],
    [{ counter: -1n }, 'counter'],
    [{ counter: 1n << 64n }, 'counter'],
    [{ counter: 1 }, 'counter'],
    [{ counter: '1' }, 'counter'],
  ];

  it('signFor, signWith, keyAgreementFor and keyAgreementWith: ERR_INVALID_ARGUMENT naming the field; no key operation, no record', async () => {
    const backend = new CountingBackend();
    const { store, dir } = await openStore(undefined, backend);
    const { north } = await supplierEstate(store);
    const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    await store.flush();
    const records = auditRecords(dir).length;
    const ops = backend.operations;
    for (const [use, field] of BAD) {
      const calls: (() => unknown)[] = [
        () => store.signFor(M1, message, use as never),
        () => store.signWith(north.ds.handle as SigningKeyHandle, M1, message, use as never),
        () => store.keyAgreementFor(M1, use as never).deriveSharedSecret(peer),
        () => store.keyAgreementWith(north.ka.handle as KeyAgreementKeyHandle, M1, use as never).deriveSharedSecret(peer),
      ];
      for (const call of calls) {
        const err = await caught(call, 'ERR_INVALID_ARGUMENT');
        expect(err.context).toStrictEqual({ detail: field });
      }
    }
    await store.flush();
    expect(backend.operations).toBe(ops);
    expect(auditRecords(dir)).toHaveLength(records);
  });

  it('the bounds themselves are accepted and recorded; what keyAgreementFor records is read when it is called', async () => {
    const { store, dir } = await openStore();
    await supplierEstate(store);
    const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    await store.flush();
    const n = auditRecords(dir).length;
    await store.signFor(M1, message, { messageCode: 0, counter: 0n });
    await store.signFor(M1, message, { messageCode: 0xffff, counter: (1n << 64n) - 1n });
    const options = { messageCode: 0x0050, counter: 9n };
    const ka = store.keyAgreementFor(M1, options);
    options.messageCode = 0x10000;
    options.counter = -1n;
    await ka.deriveSharedSecret(peer);
    await store.flush();
    expect(auditRecords(dir).slice(n).map((r) => [r.operation, r.messageCode, r.counter])).toEqual([
      ['sign', 0, '0'],
      ['sign', 0xffff, ((1n << 64n) - 1n).toString()],
      ['keyAgreement', 0x0050, '9'],
    ]);
  });
});

describe('metadata whose top level is not the four maps', () => {
  it('is ERR_KEYSTORE_CORRUPT at open and in verifyAuditTrail, naming the missing map', async () => {
    const cases: [unknown, string | undefined][] = [
      [null, undefined],
      [[], undefined],
      ['text', undefined],
      [{ organisations: {}, portfolios: {}, keys: {} }, 'devices'],
      [{ organisations: {}, portfolios: [], keys: {}, devices: {} }, 'portfolios'],
      [{ organisations: null, portfolios: {}, keys: {}, devices: {} }, 'organisations'],
      [{ organisations: {}, portfolios: {}, keys: 1, devices: {} }, 'keys'],
    ];
    for (const [payload, detail] of cases) {
      const { store, dir } = await openStore();
      await store.close();
      const { store: meta } = await MetadataFileStore.open(dir, PASS);
      meta.write(JSON.stringify(payload));
      for (const call of [() => KeyStore.open({ directory: dir, backend: new MemoryKeyBackend(), passphrase: PASS }), () => KeyStore.verifyAuditTrail(dir, PASS)]) {
        const err = await caught(call, 'ERR_KEYSTORE_CORRUPT');
        expect(err.context).toStrictEqual(detail === undefined ? {} : { detail });
      }
    }
  });
});
