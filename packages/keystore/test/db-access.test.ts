// Need-to-know access and dual control on the database store (SQLite and PostgreSQL): the
// initialisation ceremony, signed requests with counters, roles per organisation and portfolio,
// M-of-N approvals, signing sessions, refusals audited, and the trail's verification checking
// every request's and approval's signature.
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createKeySigner, parseEui64, type Signer } from '@smki/core';
import { issueOrganisationCertificate } from '@smki/pki';
import {
  assignmentListDigest,
  createApproval,
  createOperatorRequest,
  deviceListDigest,
  type Operation,
  type OperatorGrant,
  type Proposal,
} from '../src/access.js';
import { DbKeyStore, type SigningSession } from '../src/internal/db/engine.js';
import { PostgresDriver, SqliteDriver, type SqlDriver } from '../src/internal/db/driver.js';
import { POSTGRES_SCHEMA, SQLITE_SCHEMA } from '../src/internal/db/schema.js';
import { MemoryKeyBackend } from '../src/index.js';
import { connectionOf, postgresForThisFile } from '../../store/test/_postgres.js';
import { expectCode, message, PASS, pki, SUPPLIER, tempDir } from './_store-fixtures.js';

const { pg } = postgresForThisFile('smki-ks-access-');
let schemas = 0;
const ORG = parseEui64(SUPPLIER);
const eui = (i: number) => `00DB${i.toString(16).toUpperCase().padStart(12, '0')}`;

interface Operator {
  readonly id: string;
  readonly signer: Signer;
  readonly grants: OperatorGrant[];
  counter: bigint;
}
const operator = (id: string, grants: OperatorGrant[]): Operator => ({ id, signer: createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey), grants, counter: 0n });

const databases = [
  { kind: 'sqlite', fresh: () => { const path = join(tempDir(), 'keystore.db'); return { open: async (): Promise<SqlDriver> => SqliteDriver.open(path, SQLITE_SCHEMA), sql: (q: string): string => { const db = new Database(path); try { if (/^\s*select/i.test(q)) return (db.prepare(q).raw().all() as unknown[][]).map((r) => r.join('|')).join('\n'); db.exec(q); return ''; } finally { db.close(); } } }; } },
  { kind: 'postgres', fresh: () => { const schema = `acc_${++schemas}`; return { open: async (): Promise<SqlDriver> => PostgresDriver.open({ ...connectionOf(pg), schema }, POSTGRES_SCHEMA), sql: (q: string): string => pg.psql(`SET search_path TO ${schema}; ${q}`).trim() }; } },
];

describe.each(databases)('access control over $kind', (database) => {
  /** A store with an estate (set up before the ceremony), then its operators. */
  async function controlled(before?: (store: DbKeyStore, db: ReturnType<typeof database.fresh>) => Promise<void>) {
    const db = database.fresh();
    const backend = new MemoryKeyBackend();
    const store = await DbKeyStore.open({ driver: await db.open(), backend, passphrase: PASS });
    await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
    for (const p of ['north', 'south']) {
      await store.createPortfolio(SUPPLIER, { id: p });
      const h = await store.generateKey(SUPPLIER, p, 'signing');
      await store.attachCertificate(h.keyId, await issueOrganisationCertificate({ issuer: pki().organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', csr: await store.createCsr(h.keyId) }));
    }
    await before?.(store, db);
    await store.assignDevices(SUPPLIER, [1, 2, 3, 4].map((i) => ({ device: eui(i), portfolioId: i % 2 === 1 ? 'north' : 'south' })));
    const ops = {
      admin: operator('admin', [{ role: 'administrator', organisation: '*' }]),
      admin2: operator('admin2', [{ role: 'administrator', organisation: '*' }]),
      alice: operator('alice', [{ role: 'custodian', organisation: ORG, portfolioId: 'north' }]),
      bob: operator('bob', [{ role: 'custodian', organisation: ORG, portfolioId: 'north' }]),
      carol: operator('carol', [{ role: 'custodian', organisation: ORG, portfolioId: 'south' }]),
      dave: operator('dave', [{ role: 'deviceManager', organisation: ORG }]),
      svc: operator('svc-north', [{ role: 'signer', organisation: ORG, portfolioId: 'north' }]),
    };
    await store.initialiseAccess({ operators: Object.values(ops).map((o) => ({ operatorId: o.id, publicKey: o.signer.publicKey, grants: o.grants })) });
    const request = async (o: Operator, operation: Operation, issuedAt = new Date()) =>
      createOperatorRequest(o.signer, { storeId: store.storeId, operatorId: o.id, counter: ++o.counter, issuedAt, operation });
    const approval = (o: Operator, p: Proposal, expiresAt = new Date(Date.now() + 3_600_000)) =>
      createApproval(o.signer, { storeId: store.storeId, proposalId: p.proposalId, operationHash: p.operationHash, approverId: o.id, expiresAt });
    return { db, store, backend, ops, request, approval };
  }

  it('after the ceremony, nothing changes without a signed request, and no backend key is made for a refused one', async () => {
    const { store, backend } = await controlled();
    const handles = (await backend.listHandles()).length;
    const head = await store.auditHead();
    await expectCode(store.generateKey(SUPPLIER, 'north', 'signing'), 'ERR_OPERATOR_REQUIRED');
    await expectCode(store.revoke(`${SUPPLIER}.north.DS.g1`), 'ERR_OPERATOR_REQUIRED');
    await expectCode(store.assignDevices(SUPPLIER, [{ device: eui(9), portfolioId: 'north' }]), 'ERR_OPERATOR_REQUIRED');
    await expectCode(store.signFor(eui(1), message), 'ERR_OPERATOR_REQUIRED');
    await expectCode(store.initialiseAccess({ operators: [] }), 'ERR_INVALID_ARGUMENT');
    expect((await backend.listHandles()).length).toBe(handles);
    expect(await store.auditHead()).toEqual(head);
    await store.close();
  });

  it('a key generation needs a second custodian: proposed, approved by another, executed once', async () => {
    const { store, backend, ops, request, approval } = await controlled();
    const op: Operation = { op: 'key.generate', organisation: ORG, portfolioId: 'north', purpose: 'signing' };
    const handles = (await backend.listHandles()).length;
    await expectCode(store.execute(await request(ops.alice, op)), 'ERR_APPROVAL_REQUIRED');
    const proposal = await store.propose(await request(ops.alice, op));
    // The proposer never counts; a custodian of south may not approve a north key.
    await expectCode(store.approve(await approval(ops.alice, proposal)), 'ERR_APPROVAL_DUPLICATE');
    await expectCode(store.approve(await approval(ops.carol, proposal)), 'ERR_APPROVAL_INVALID');
    await expectCode(store.execute(await request(ops.alice, op), { proposalId: proposal.proposalId }), 'ERR_PROPOSAL_QUORUM_NOT_MET');
    // Refused before the backend was asked: no key was made for either refusal.
    expect((await backend.listHandles()).length).toBe(handles);
    expect(store.orphanHandles()).toEqual([]);
    const standing = await store.approve(await approval(ops.bob, proposal));
    expect(standing).toEqual({ required: 1, approvers: ['bob'], met: true });
    await expectCode(store.approve(await approval(ops.bob, proposal)), 'ERR_APPROVAL_DUPLICATE');
    // Another operation under this proposal's approvals is refused.
    await expectCode(store.execute(await request(ops.alice, { ...op, purpose: 'keyAgreement' }), { proposalId: proposal.proposalId }), 'ERR_OPERATION_MISMATCH');
    const handle = (await store.execute(await request(ops.alice, op), { proposalId: proposal.proposalId })) as { keyId: string };
    expect(handle.keyId).toBe(`${SUPPLIER}.north.DS.g2`);
    expect((await store.proposal(proposal.proposalId)).state).toBe('executed');
    // Approvals are usable once.
    await expectCode(store.execute(await request(ops.alice, op), { proposalId: proposal.proposalId }), 'ERR_PROPOSAL_CLOSED');
    const v = await store.verifyStore();
    expect(v.trail.ok).toBe(true);
    expect(v.findings).toEqual([]);
    await store.close();
  });

  it('refuses a replayed, a stale, a foreign and a forbidden request, each audited, nothing changed', async () => {
    const { db, store, ops, request } = await controlled();
    const revokeSouth: Operation = { op: 'key.revoke', keyId: `${SUPPLIER}.south.DS.g1` };
    // Alice is custodian of north only.
    await expectCode(store.execute(await request(ops.alice, revokeSouth)), 'ERR_OPERATOR_FORBIDDEN');
    // A policy that lets revocations through without approval, set by two administrators.
    const policy = { v: 1 as const, rules: [{ operation: 'operator.add' as const, approvals: 1 }] };
    const { policyHash } = await import('../src/access.js');
    const setPolicy: Operation = { op: 'policy.set', policySha256: policyHash(policy) };
    const p = await store.propose(await request(ops.admin, setPolicy), { payload: { policy } });
    await store.approve(await createApproval(ops.admin2.signer, { storeId: store.storeId, proposalId: p.proposalId, operationHash: p.operationHash, approverId: 'admin2', expiresAt: new Date(Date.now() + 60_000) }));
    await store.execute(await request(ops.admin, setPolicy), { policy, proposalId: p.proposalId });
    const r = await request(ops.carol, revokeSouth);
    expect(((await store.execute(r)) as { state: string }).state).toBe('revoked');
    await expectCode(store.execute(r), 'ERR_OPERATOR_REPLAYED');
    const stale = await request(ops.carol, { op: 'key.retire', keyId: `${SUPPLIER}.south.DS.g1` }, new Date(Date.now() - 3_600_000));
    await expectCode(store.execute(stale), 'ERR_OPERATOR_REQUEST_STALE');
    const foreign = { ...(await request(ops.carol, revokeSouth)), storeId: '0'.repeat(32) };
    await expectCode(store.execute(foreign), 'ERR_OPERATOR_SIGNATURE_INVALID');
    const forged = { ...(await request(ops.carol, revokeSouth)), operatorId: 'alice' };
    await expectCode(store.execute(forged), 'ERR_OPERATOR_SIGNATURE_INVALID');
    // Each refusal is in the trail with its code.
    const refused: string[] = [];
    const { verifyTrail } = await import('../src/internal/db/trail.js');
    const t = await verifyTrail(await db.open(), { storeId: store.storeId, publicKey: store.auditPublicKey }, (rec) => {
      if (rec.type === 'operator.refused') refused.push(`${rec.code}:${rec.operatorId ?? '-'}`);
    });
    expect(t.ok).toBe(true);
    expect(refused).toEqual(['ERR_OPERATOR_FORBIDDEN:alice', 'ERR_OPERATOR_REPLAYED:carol', 'ERR_OPERATOR_REQUEST_STALE:carol', 'ERR_OPERATOR_SIGNATURE_INVALID:carol', 'ERR_OPERATOR_SIGNATURE_INVALID:alice']);
    const v = await store.verifyStore();
    expect(v.findings).toEqual([]);
    await store.close();
  });

  it('one request executed twice at once: the second is refused in its transaction', async () => {
    const { store, ops, request } = await controlled();
    const r = await request(ops.svc, { op: 'session.sign', organisation: ORG, portfolioIds: ['north'] });
    const both = await Promise.allSettled([store.execute(r), store.execute(r)]);
    expect(both.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
    const failed = both.find((x) => x.status === 'rejected') as PromiseRejectedResult;
    expect((failed.reason as { code: string }).code).toBe('ERR_OPERATOR_REPLAYED');
    await store.close();
  });

  /** Process a opens a store with a meter and signs for it; then process b holds the ceremony. */
  async function ceremonyAfterOpen() {
    const db = database.fresh();
    const backend = new MemoryKeyBackend();
    const a = await DbKeyStore.open({ driver: await db.open(), backend, passphrase: PASS });
    await a.addOrganisation({ entityId: SUPPLIER, role: 2 });
    await a.createPortfolio(SUPPLIER, { id: 'north' });
    const h = await a.generateKey(SUPPLIER, 'north', 'signing');
    await a.attachCertificate(h.keyId, await issueOrganisationCertificate({ issuer: pki().organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', csr: await a.createCsr(h.keyId) }));
    await a.assignDevices(SUPPLIER, [{ device: eui(1), portfolioId: 'north' }]);
    await a.signFor(eui(1), message);
    const b = await DbKeyStore.open({ driver: await db.open(), backend, passphrase: PASS });
    const admin = operator('admin', [{ role: 'administrator', organisation: '*' }]);
    await b.initialiseAccess({ operators: [{ operatorId: admin.id, publicKey: admin.signer.publicKey, grants: admin.grants }] });
    return { db, a, b };
  }

  it('a process that opened before the ceremony signs nothing after it: its use batch refuses', async () => {
    const { db, a, b } = await ceremonyAfterOpen();
    await expectCode(a.signFor(eui(1), message), 'ERR_OPERATOR_REQUIRED');
    // And from then on it refuses before using the key.
    await expectCode(a.signFor(eui(1), message), 'ERR_OPERATOR_REQUIRED');
    await a.close();
    await b.close();
  });

  it("a process that opened before the ceremony, its policy row and index entry deleted since: the use batch reads the meta row's memory of the ceremony and refuses", async () => {
    const { db, a, b } = await ceremonyAfterOpen();
    await b.close();
    db.sql(`DELETE FROM access`);
    db.sql(`DELETE FROM audit_subjects WHERE subject = 'access:1'`);
    const head = await a.auditHead();
    await expectCode(a.signFor(eui(1), message), 'ERR_KEYSTORE_ROW_TAMPERED');
    expect(await a.auditHead()).toEqual(head);
    await a.close();
  });

  it('a signer signs only for its portfolios, only while it is an operator', async () => {
    const { store, ops, request, approval } = await controlled();
    const session = (await store.execute(await request(ops.svc, { op: 'session.sign', organisation: ORG, portfolioIds: ['north'] }))) as SigningSession;
    expect(session.portfolioIds).toEqual(['north']);
    await session.signFor(eui(1), message);
    await expectCode(session.signFor(eui(2), message), 'ERR_OPERATOR_FORBIDDEN');
    // A session for south is refused to a signer of north.
    await expectCode(store.execute(await request(ops.svc, { op: 'session.sign', organisation: ORG, portfolioIds: ['south'] })), 'ERR_OPERATOR_FORBIDDEN');
    // Removing the operator (two administrators) ends its session.
    const remove: Operation = { op: 'operator.remove', operatorId: 'svc-north' };
    const p = await store.propose(await request(ops.admin, remove));
    await store.approve(await approval(ops.admin2, p));
    await store.execute(await request(ops.admin, remove), { proposalId: p.proposalId });
    await expectCode(session.signFor(eui(1), message), 'ERR_OPERATOR_UNKNOWN');
    expect((await store.operator('svc-north')).removed).toBe(true);
    await store.close();
  });

  it("a session agrees keys and signs DUIS XML only with its portfolios' keys, each use recorded with the operator; the store itself refuses both", async () => {
    const certify = async (store: DbKeyStore, portfolio: string, purpose: 'keyAgreement' | 'xmlSigning') => {
      const h = await store.generateKey(SUPPLIER, portfolio, purpose);
      const role = purpose === 'xmlSigning' ? 135 : 2;
      await store.attachCertificate(h.keyId, await issueOrganisationCertificate({ issuer: pki().organisationCa, role, entityId: SUPPLIER, keyUsage: purpose === 'xmlSigning' ? 'digitalSignature' : 'keyAgreement', csr: await store.createCsr(h.keyId) }));
    };
    const { db, store, ops, request, approval } = await controlled(async (s) => {
      await certify(s, 'north', 'keyAgreement');
      await certify(s, 'south', 'keyAgreement');
      await certify(s, 'north', 'xmlSigning');
    });
    const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    // Outside a session: refused, as signing is.
    await expectCode(store.keyAgreementFor(eui(1)), 'ERR_OPERATOR_REQUIRED');
    await expectCode(store.xmlSigner(SUPPLIER), 'ERR_OPERATOR_REQUIRED');
    const session = (await store.execute(await request(ops.svc, { op: 'session.sign', organisation: ORG, portfolioIds: ['north'] }))) as SigningSession;
    const z = await (await session.keyAgreementFor(eui(1), { messageCode: 0x0050 })).deriveSharedSecret(peer);
    expect(z).toHaveLength(32);
    await expectCode(session.keyAgreementFor(eui(2)), 'ERR_OPERATOR_FORBIDDEN'); // a south meter, a south key
    const xml = await session.xmlSigner({ requestId: '90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1000' });
    expect(xml.portfolioId).toBe('north');
    expect(await xml.sign(new TextEncoder().encode('<ds:SignedInfo/>'))).toHaveLength(64);
    // A signer of south (added under the policy: two administrators) finds no XML key of its own.
    const south = operator('svc-south', [{ role: 'signer', organisation: ORG, portfolioId: 'south' }]);
    const add: Operation = { op: 'operator.add', operatorId: south.id, publicKey: Buffer.from(south.signer.publicKey).toString('hex').toUpperCase(), grants: south.grants };
    const p = await store.propose(await request(ops.admin, add));
    await store.approve(await approval(ops.admin2, p));
    await store.execute(await request(ops.admin, add), { proposalId: p.proposalId });
    const other = (await store.execute(await request(south, { op: 'session.sign', organisation: ORG, portfolioIds: ['south'] }))) as SigningSession;
    await expectCode(other.xmlSigner(), 'ERR_KEY_NOT_FOUND');
    await expectCode(other.xmlSigner({ portfolioId: 'north' }), 'ERR_OPERATOR_FORBIDDEN');
    await expectCode(other.keyAgreementFor(eui(1)), 'ERR_OPERATOR_FORBIDDEN');
    // Every use in the trail names its operator.
    const uses: string[] = [];
    const { verifyTrail } = await import('../src/internal/db/trail.js');
    const t = await verifyTrail(await db.open(), { storeId: store.storeId, publicKey: store.auditPublicKey }, (rec) => {
      if (rec.type === 'key.used') uses.push(`${rec.operation}:${rec.operatorId ?? '-'}`);
    });
    expect(t.ok).toBe(true);
    expect(uses).toEqual(['keyAgreement:svc-north', 'xml-sign:svc-north']);
    expect((await store.verifyStore()).findings).toEqual([]);
    await store.close();
  });

  it('bulk operations carry the digest of their exact list', async () => {
    const { store, ops, request, approval } = await controlled();
    const assignments = [5, 6, 7].map((i) => ({ device: eui(i), portfolioId: 'north' }));
    const d = assignmentListDigest(assignments);
    const op: Operation = { op: 'device.assign', organisation: ORG, count: d.count, listSha256: d.listSha256 };
    await expectCode(store.execute(await request(ops.dave, op), { assignments: [...assignments, { device: eui(8), portfolioId: 'north' }] }), 'ERR_OPERATION_MISMATCH');
    // The payload is copied when execute is called: a list changed afterwards changes nothing.
    const list = [...assignments];
    const pending = store.execute(await request(ops.dave, op), { assignments: list });
    list.push({ device: eui(99), portfolioId: 'north' });
    expect(await pending).toBe(3);
    await expectCode(store.device(SUPPLIER, eui(99)), 'ERR_DEVICE_UNKNOWN');
    const m = deviceListDigest([eui(5), eui(6)]);
    const move: Operation = { op: 'device.move', organisation: ORG, toPortfolioId: 'south', count: m.count, listSha256: m.listSha256 };
    expect(await store.execute(await request(ops.dave, move), { devices: [eui(5), eui(6)] })).toBe(2);
    void approval;
    await store.close();
  });

  it("the trail's verification checks every request's and approval's signature", async () => {
    const { db, store, ops, request, approval } = await controlled();
    const op: Operation = { op: 'key.generate', organisation: ORG, portfolioId: 'north', purpose: 'keyAgreement' };
    const p = await store.propose(await request(ops.alice, op));
    await store.approve(await approval(ops.bob, p));
    await store.execute(await request(ops.alice, op), { proposalId: p.proposalId });
    expect((await store.verifyStore()).findings).toEqual([]);
    // Bob's approval replaced by one with another expiry (its signature no longer matches).
    db.sql(`UPDATE approvals SET approval = replace(approval, '"expiresAt":"2', '"expiresAt":"3')`);
    db.sql(`UPDATE signed_requests SET request = replace(request, '"purpose":"keyAgreement"', '"purpose":"signing"')`);
    const v = await store.verifyStore();
    expect(v.findings.filter((f) => /signed approval/.test(f.message))).toHaveLength(1);
    expect(v.findings.filter((f) => /signed request/.test(f.message)).length).toBeGreaterThanOrEqual(1);
    await store.close();
  });

  it("the auditor's check holds every operator row against the trail, even when the index the store opens with was edited too", async () => {
    const { db, store, ops, request, approval } = await controlled();
    const before = db.sql(`SELECT last_counter, rev, mac FROM operators WHERE operator_id = 'svc-north'`).split('|');
    await store.execute(await request(ops.svc, { op: 'session.sign', organisation: ORG, portfolioIds: ['north'] }));
    // A proposer's counter is in its kept request, not in the proposal's record.
    const op: Operation = { op: 'key.generate', organisation: ORG, portfolioId: 'north', purpose: 'keyAgreement' };
    const p = await store.propose(await request(ops.alice, op));
    await store.approve(await approval(ops.bob, p));
    await store.execute(await request(ops.alice, op), { proposalId: p.proposalId });
    expect((await store.verifyStore()).findings).toEqual([]);
    await store.close();
    // The signer's authentic row of before its request put back, and the index entries that would give it away deleted.
    db.sql(`UPDATE operators SET last_counter = '${before[0]}', rev = ${before[1]}, mac = '${before[2]}' WHERE operator_id = 'svc-north'`);
    db.sql(`DELETE FROM audit_subjects WHERE subject = 'operators:svc-north' AND seq > ${before[1]}`);
    // Dave's row deleted with its index entries.
    db.sql(`DELETE FROM operators WHERE operator_id = 'dave'`);
    db.sql(`DELETE FROM audit_subjects WHERE subject = 'operators:dave'`);
    const reopened = await DbKeyStore.open({ driver: await db.open(), backend: new MemoryKeyBackend(), passphrase: PASS });
    const found = (await reopened.verifyStore()).findings.map((f) => `${f.code} ${f.row}`);
    expect(found).toContain('ERR_KEYSTORE_METADATA_ROLLBACK operators:svc-north');
    expect(found).toContain('ERR_KEYSTORE_ROW_TAMPERED operators:dave');
    expect(found.filter((f) => f.includes('operators:alice') || f.includes('operators:bob'))).toEqual([]);
    await reopened.close();
  });

  it('refuses to open when an operator row is put back (its counter lowered: a replay) or the access row is deleted', async () => {
    let metaBefore: string[] = [];
    const { db, store, ops, request } = await controlled(async (_s, d) => {
      metaBefore = d.sql('SELECT access_seq, rev, mac FROM meta').split('|');
    });
    const before = db.sql(`SELECT last_counter, rev, mac FROM operators WHERE operator_id = 'svc-north'`).split('|');
    const r = await request(ops.svc, { op: 'session.sign', organisation: ORG, portfolioIds: ['north'] });
    await store.execute(r);
    await store.close();
    const backend = new MemoryKeyBackend();
    // The authentic row of before the request: counter 0 again, so the request would replay.
    db.sql(`UPDATE operators SET last_counter = '${before[0]}', rev = ${before[1]}, mac = '${before[2]}' WHERE operator_id = 'svc-north'`);
    await expectCode(DbKeyStore.open({ driver: await db.open(), backend, passphrase: PASS }), 'ERR_KEYSTORE_METADATA_ROLLBACK');
    db.sql(`DELETE FROM operators WHERE operator_id = 'svc-north'`);
    db.sql(`DELETE FROM access`);
    await expectCode(DbKeyStore.open({ driver: await db.open(), backend, passphrase: PASS }), 'ERR_KEYSTORE_ROW_TAMPERED');
    // With its index entry deleted too: the authenticated meta row remembers the ceremony.
    db.sql(`DELETE FROM audit_subjects WHERE subject IN ('access:1', 'operators:svc-north')`);
    await expectCode(DbKeyStore.open({ driver: await db.open(), backend, passphrase: PASS }), 'ERR_KEYSTORE_ROW_TAMPERED');
    // Only with the meta row of before the ceremony put back (and its index entry gone) does the
    // store open uncontrolled; the auditor's check finds it.
    db.sql(`UPDATE meta SET access_seq = 0, rev = ${metaBefore[1]}, mac = '${metaBefore[2]}'`);
    db.sql(`DELETE FROM audit_subjects WHERE subject = 'meta:1' AND seq > ${metaBefore[1]}`);
    const lifted = await DbKeyStore.open({ driver: await db.open(), backend, passphrase: PASS });
    const found = (await lifted.verifyStore()).findings.map((f) => `${f.code} ${f.row}`);
    expect(found).toContain('ERR_KEYSTORE_ROW_TAMPERED access:1');
    expect(found).toContain('ERR_KEYSTORE_METADATA_ROLLBACK meta:1');
    await lifted.close();
  });
});
