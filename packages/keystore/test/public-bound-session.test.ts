// A signing session bound to messages: the session.sign request names the count and digest of
// the exact messages (meter and SHA-256 of the bytes) the session may sign, approvals of the
// request cover those bytes, and the session signs each of them once and nothing else.
import { createHash, generateKeyPairSync, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createKeySigner, parseEui64 } from '@smki/core';
import { parseCertificate } from '@smki/pki';
import { createApproval, createOperatorRequest, messageListDigest, type Operation } from '../src/access.js';
import type { SigningSession } from '../src/index.js';
import { expectCode, M1, M2, M3, openPublic, supplierEstate, SUPPLIER } from './_public-fixtures.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex').toUpperCase();
const cmd = (n: number) => new Uint8Array([0xdf, 0x09, n]);
/** The signature (r ‖ s) over `data` verifies with the certificate's key. */
const signs = (cert: Uint8Array, data: Uint8Array, sig: Uint8Array) => verify('sha256', data, { key: parseCertificate(cert).publicKey!, dsaEncoding: 'ieee-p1363' }, sig);

/** A store under access control whose policy puts every signing session under dual control: a service (proposer) and an approver, both signers of north. */
async function controlled() {
  const { store } = await openPublic();
  const estate = await supplierEstate(store);
  const org = parseEui64(SUPPLIER);
  const mk = (id: string) => ({ id, signer: createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey), counter: 0n });
  const svc = mk('recovery-svc');
  const approver = mk('approver');
  const admin = mk('admin');
  await store.initialiseAccess({
    operators: [
      { operatorId: svc.id, publicKey: svc.signer.publicKey, grants: [{ role: 'signer' as const, organisation: org, portfolioId: 'north' }] },
      { operatorId: approver.id, publicKey: approver.signer.publicKey, grants: [{ role: 'signer' as const, organisation: org, portfolioId: 'north' }] },
      { operatorId: admin.id, publicKey: admin.signer.publicKey, grants: [{ role: 'administrator' as const, organisation: '*' as const }] },
    ],
    policy: { v: 1, rules: [{ operation: 'session.sign', approvals: 1 }] },
  });
  const request = async (o: typeof svc, operation: Operation) => createOperatorRequest(o.signer, { storeId: store.storeId, operatorId: o.id, counter: ++o.counter, issuedAt: new Date(), operation });
  /** Open a session bound to `messages` (none: unbound), proposed by the service, approved by the approver. */
  const open = async (messages?: { device: string; data: Uint8Array }[]): Promise<SigningSession> => {
    const list = messages?.map((m) => ({ device: m.device, sha256: sha(m.data) }));
    const d = list === undefined ? undefined : messageListDigest(list);
    const op: Operation = { op: 'session.sign', organisation: org, portfolioIds: ['north'], ...(d === undefined ? {} : { count: d.count, messagesSha256: d.listSha256 }) };
    const payload = list === undefined ? {} : { messages: list };
    const proposal = await store.propose(await request(svc, op), { payload });
    await store.approve(await createApproval(approver.signer, { storeId: store.storeId, proposalId: proposal.proposalId, operationHash: proposal.operationHash, approverId: approver.id, expiresAt: new Date(Date.now() + 3_600_000) }));
    return (await store.execute(await request(svc, op), { ...payload, proposalId: proposal.proposalId })) as SigningSession;
  };
  return { store, ...estate, org, svc, request, open };
}

describe('a signing session bound to the messages its request named', () => {
  it('signs exactly the named messages, each once; another message, another meter or a second time is refused and not recorded', async () => {
    const { store, north, open } = await controlled();
    const session = await open([{ device: M1, data: cmd(1) }, { device: M2, data: cmd(2) }]);
    expect(session.remaining()).toBe(2);
    const head = await store.auditHead();
    await expectCode(session.signFor(M1, cmd(2)), 'ERR_OPERATOR_FORBIDDEN'); // M2's message, for M1
    await expectCode(session.signFor(M1, cmd(9)), 'ERR_OPERATOR_FORBIDDEN'); // never named
    await store.flush();
    expect(await store.auditHead()).toEqual(head);
    expect(signs(north.ds.cert.der, cmd(1), await session.signFor(M1, cmd(1)))).toBe(true);
    expect(session.remaining()).toBe(1);
    await expectCode(session.signFor(M1, cmd(1)), 'ERR_OPERATOR_FORBIDDEN'); // once only
    expect(signs(north.ds.cert.der, cmd(2), await session.signFor(M2, cmd(2)))).toBe(true);
    expect(session.remaining()).toBe(0);
    // A bound session neither agrees keys nor signs XML.
    await expectCode(session.keyAgreementFor(M1), 'ERR_OPERATOR_FORBIDDEN');
    await expectCode(session.xmlSigner(), 'ERR_OPERATOR_FORBIDDEN');
  });

  it('two concurrent calls for one message: one signature, one refusal', async () => {
    const { open } = await controlled();
    const session = await open([{ device: M1, data: cmd(1) }]);
    const results = await Promise.allSettled([session.signFor(M1, cmd(1)), session.signFor(M1, cmd(1))]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
  });

  it('a use refused after its message was claimed (an unknown meter) leaves the message to sign again', async () => {
    const { north, open } = await controlled();
    const unknown = '00DB1234567890EE';
    const session = await open([{ device: M1, data: cmd(1) }, { device: unknown, data: cmd(1) }]);
    await expectCode(session.signFor(unknown, cmd(1)), 'ERR_DEVICE_UNKNOWN');
    await expectCode(session.signFor(unknown, cmd(1)), 'ERR_DEVICE_UNKNOWN'); // refused for the same reason, not as used
    expect(session.remaining()).toBe(2);
    expect(signs(north.ds.cert.der, cmd(1), await session.signFor(M1, cmd(1)))).toBe(true);
    expect(session.remaining()).toBe(1);
  });

  it('the request binds the messages: another list, no list, or half a binding is refused before any session opens', async () => {
    const { store, svc, request, org } = await controlled();
    const list = [{ device: M1, sha256: sha(cmd(1)) }];
    const d = messageListDigest(list);
    const op: Operation = { op: 'session.sign', organisation: org, portfolioIds: ['north'], count: d.count, messagesSha256: d.listSha256 };
    await expectCode(store.propose(await request(svc, op), { payload: { messages: [{ device: M1, sha256: sha(cmd(2)) }] } }), 'ERR_OPERATION_MISMATCH');
    await expectCode(store.propose(await request(svc, op), { payload: { messages: [...list, { device: M2, sha256: sha(cmd(2)) }] } }), 'ERR_OPERATION_MISMATCH');
    await expectCode(store.propose(await request(svc, op), { payload: {} }), 'ERR_INVALID_ARGUMENT'); // no list: an empty one
    const { messagesSha256: _m, ...noDigest } = op as Operation & { messagesSha256: string };
    await expectCode(store.propose(await request(svc, noDigest as Operation), { payload: { messages: list } }), 'ERR_INVALID_ARGUMENT');
    const plain: Operation = { op: 'session.sign', organisation: org, portfolioIds: ['north'] };
    await expectCode(store.propose(await request(svc, plain), { payload: { messages: list } }), 'ERR_INVALID_ARGUMENT');
  });

  it('an unbound session (no count, no digest) signs any message for its portfolios, as before, and is refused outside them', async () => {
    const { north, open } = await controlled();
    const session = await open();
    expect(session.remaining()).toBeUndefined();
    expect(signs(north.ds.cert.der, cmd(7), await session.signFor(M1, cmd(7)))).toBe(true);
    expect(signs(north.ds.cert.der, cmd(7), await session.signFor(M1, cmd(7)))).toBe(true);
    await expectCode(session.signFor(M3, cmd(7)), 'ERR_OPERATOR_FORBIDDEN');
  });
});

describe('messageListDigest', () => {
  it('is independent of order and hex case, and refuses a message twice, an empty list and a bad hash', () => {
    const a = { device: M1, sha256: sha(cmd(1)) };
    const b = { device: '00db1234567890a2', sha256: sha(cmd(2)).toLowerCase() };
    expect(messageListDigest([a, b])).toEqual(messageListDigest([b, a]));
    expect(messageListDigest([a, { device: M2, sha256: sha(cmd(2)) }])).toEqual(messageListDigest([a, b]));
    expect(messageListDigest([a]).listSha256).not.toBe(messageListDigest([{ ...a, sha256: sha(cmd(3)) }]).listSha256);
    expect(messageListDigest([a]).listSha256).not.toBe(messageListDigest([{ ...a, device: M3 }]).listSha256);
    expect(() => messageListDigest([a, { ...a, sha256: a.sha256.toLowerCase() }])).toThrow(/twice/);
    expect(() => messageListDigest([])).toThrow(/empty/);
    expect(() => messageListDigest([{ device: M1, sha256: 'AB' }])).toThrow(/SHA-256/);
  });
});
