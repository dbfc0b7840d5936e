// Further backends by name: a key that must not live beside the others (the replacement for a
// compromised key, made in another HSM token or key directory) is generated in a named backend,
// recorded with it, and only ever used through it; a store opened without that backend refuses
// that key (and only that key) and writes nothing.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createKeySigner, parseEui64 } from '@smki/core';
import { issueOrganisationCertificate } from '@smki/pki';
import { createApproval, createOperatorRequest, parseOperation, type Operation } from '../src/access.js';
import { FileKeyBackend } from '../src/backends/file.js';
import { KeyStore, MemoryKeyBackend, type SigningKeyHandle } from '../src/index.js';
import { auditorTrail, expectCode, issue, M1, M2, M3, message, openPublic, PASS, pki, refusedWithoutChange, supplierEstate, SUPPLIER, usage, verifies } from './_public-fixtures.js';

/** A key made in the named backend `token`, certified and attached. */
async function issueIn(store: KeyStore, portfolio: string, purpose: 'signing' | 'keyAgreement', backend: string) {
  const handle = await store.generateKey(SUPPLIER, portfolio, purpose, { backend });
  const cert = await issueOrganisationCertificate({ issuer: pki().organisationCa, role: 2, entityId: SUPPLIER, keyUsage: usage(purpose), csr: await store.createCsr(handle.keyId) });
  await store.attachCertificate(handle.keyId, cert);
  return { handle, cert };
}

describe('a replacement key in a backend the compromise does not reach', () => {
  it('is made in the named backend, recorded with it, signs and agrees keys through it; the first backend never holds it', async () => {
    const token = await FileKeyBackend.open({ directory: mkdtempSync(join(tmpdir(), 'smki-token-')), passphrase: PASS });
    const { store, dir, backend } = await openPublic({ backends: { 'recovery-token': token } });
    const { north, south } = await supplierEstate(store);
    await store.revoke(north.ds.handle.keyId, 'keyCompromise');
    await store.revoke(north.ka.handle.keyId, 'keyCompromise');
    const ds = await issueIn(store, 'north', 'signing', 'recovery-token');
    const ka = await issueIn(store, 'north', 'keyAgreement', 'recovery-token');
    expect((await store.key(ds.handle.keyId)).backend).toBe('@recovery-token');
    expect((await store.key(north.ds.handle.keyId)).backend).toBe('memory');
    const inToken = await token.listHandles();
    const inFirst = await backend.listHandles();
    for (const k of [ds, ka]) {
      const h = (await store.key(k.handle.keyId)).handle;
      expect(inToken).toContain(h);
      expect(inFirst).not.toContain(h);
    }
    // M1 re-credentialed: signed for with the new key (its certificate verifies the signature).
    await store.markCredentialsUpdated(SUPPLIER, M1, 'signing');
    await store.markCredentialsUpdated(SUPPLIER, M1, 'keyAgreement');
    expect(verifies(ds.cert.der, await store.signFor(M1, message))).toBe(true);
    expect(verifies(ds.cert.der, await store.signWith(ds.handle as SigningKeyHandle, M1, message))).toBe(true);
    const agreement = await store.keyAgreementFor(M1);
    expect(Buffer.from(agreement.publicKey).equals(Buffer.from(await token.publicKey((await store.key(ka.handle.keyId)).handle)))).toBe(true);
    expect(await agreement.deriveSharedSecret(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey)).toHaveLength(32);
    // M2 is not yet: the stolen key stays refused for it; the other portfolio is untouched.
    await expectCode(store.signFor(M2, message), 'ERR_KEY_REVOKED');
    expect(verifies(south.ds.cert.der, await store.signFor(M3, message))).toBe(true);
    expect(store.orphanHandles()).toEqual([]);
    // The trail records where each key was made.
    const { verification, records } = await auditorTrail(store, dir);
    expect(verification.ok).toBe(true);
    const generated = records.filter((r) => r.type === 'key.generated').map((r) => [(r as { keyId: string }).keyId, (r as { backend: string }).backend]);
    expect(generated).toContainEqual([ds.handle.keyId, '@recovery-token']);
    expect(generated).toContainEqual([north.ds.handle.keyId, 'memory']);
    await token.close();
  });

  it('opened without the named backend, its keys are refused (ERR_KEY_BACKEND_UNAVAILABLE, nothing written) and the rest of the store works', async () => {
    const token = new MemoryKeyBackend();
    const first = new MemoryKeyBackend();
    const { store, dir } = await openPublic({ backend: first, backends: { token } });
    const { north } = await supplierEstate(store);
    await store.revoke(north.ds.handle.keyId, 'keyCompromise');
    const ds = await issueIn(store, 'north', 'signing', 'token');
    await store.markCredentialsUpdated(SUPPLIER, M1, 'signing');
    const pendingInToken = await store.generateKey(SUPPLIER, 'south', 'signing', { backend: 'token' });
    await store.close();

    const without = (await openPublic({ dir, backend: first })).store;
    await refusedWithoutChange(without, () => without.signFor(M1, message), 'ERR_KEY_BACKEND_UNAVAILABLE');
    await refusedWithoutChange(without, () => without.signWith(ds.handle as SigningKeyHandle, M1, message), 'ERR_KEY_BACKEND_UNAVAILABLE');
    await refusedWithoutChange(without, () => without.createCsr(pendingInToken.keyId), 'ERR_KEY_BACKEND_UNAVAILABLE');
    expect(await without.signFor(M3, message)).toHaveLength(64);
    // Never looked for in the first backend, even if a key under that handle were there.
    expect(without.orphanHandles()).toEqual([]);
    await without.close();

    // A backend under another name is not the one the key was made in.
    const renamed = (await openPublic({ dir, backend: first, backends: { other: token } })).store;
    await expectCode(renamed.signFor(M1, message), 'ERR_KEY_BACKEND_UNAVAILABLE');
    expect([...renamed.orphanHandles()].sort()).toEqual((await token.listHandles()).map((h) => `@other/${h}`).sort());
    await renamed.close();

    const again = (await openPublic({ dir, backend: first, backends: { token } })).store;
    expect(verifies(ds.cert.der, await again.signFor(M1, message))).toBe(true);
    expect(again.orphanHandles()).toEqual([]);
  });

  it('an unknown backend name is refused before any backend makes a key, and nothing is recorded', async () => {
    const token = new MemoryKeyBackend();
    const { store, backend } = await openPublic({ backends: { token } });
    await supplierEstate(store);
    expect(store.backendNames()).toEqual(['token']);
    const before = [(await backend.listHandles()).length, (await token.listHandles()).length];
    for (const name of ['nope', 'Token', '', 42, null]) {
      await refusedWithoutChange(store, () => store.generateKey(SUPPLIER, 'north', 'signing', { backend: name as string }), 'ERR_INVALID_ARGUMENT');
    }
    await refusedWithoutChange(store, () => store.generateKey(SUPPLIER, 'north', 'signing', null as unknown as { backend?: string }), 'ERR_INVALID_ARGUMENT');
    expect([(await backend.listHandles()).length, (await token.listHandles()).length]).toEqual(before);
    // Without the option, the store's own backend.
    const k = await issue(store, SUPPLIER, 'north', 'signing');
    expect((await store.key(k.handle.keyId)).backend).toBe('memory');
  });

  it.each([
    [{ 'Upper': new MemoryKeyBackend() }],
    [{ '1st': new MemoryKeyBackend() }],
    [{ 'a b': new MemoryKeyBackend() }],
    [{ ['x'.repeat(33)]: new MemoryKeyBackend() }],
    [{ token: {} }],
    [{ token: null }],
    [[new MemoryKeyBackend()]],
  ])('a store is not opened with backends %j (ERR_INVALID_ARGUMENT)', async (backends) => {
    const { dir } = await openPublic();
    await expectCode(KeyStore.open({ directory: dir, backend: new MemoryKeyBackend(), passphrase: PASS, backends: backends as never }), 'ERR_INVALID_ARGUMENT');
  });

  it('under access control, a custodian names the backend in the signed request; approvals cover it', async () => {
    const token = new MemoryKeyBackend();
    const { store } = await openPublic({ backends: { token } });
    await supplierEstate(store);
    const org = parseEui64(SUPPLIER);
    const mk = (id: string) => ({ id, signer: createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey), counter: 0n });
    const alice = mk('alice');
    const bob = mk('bob');
    const admin = mk('admin');
    await store.initialiseAccess({
      operators: [
        ...[alice, bob].map((o) => ({ operatorId: o.id, publicKey: o.signer.publicKey, grants: [{ role: 'custodian' as const, organisation: org, portfolioId: 'north' }] })),
        { operatorId: admin.id, publicKey: admin.signer.publicKey, grants: [{ role: 'administrator' as const, organisation: '*' as const }] },
      ],
    });
    const request = async (o: typeof alice, operation: Operation) => createOperatorRequest(o.signer, { storeId: store.storeId, operatorId: o.id, counter: ++o.counter, issuedAt: new Date(), operation });
    const op: Operation = { op: 'key.generate', organisation: org, portfolioId: 'north', purpose: 'signing', backend: 'token' };
    const proposal = await store.propose(await request(alice, op));
    await store.approve(await createApproval(bob.signer, { storeId: store.storeId, proposalId: proposal.proposalId, operationHash: proposal.operationHash, approverId: bob.id, expiresAt: new Date(Date.now() + 3_600_000) }));
    // The approvals were for the token: the same generation in the first backend is another operation.
    const { backend: _omitted, ...inFirst } = op as Operation & { backend: string };
    await expectCode(store.execute(await request(alice, inFirst as Operation), { proposalId: proposal.proposalId }), 'ERR_OPERATION_MISMATCH');
    const handle = (await store.execute(await request(alice, op), { proposalId: proposal.proposalId })) as { keyId: string };
    expect((await store.key(handle.keyId)).backend).toBe('@token');
    expect(await token.listHandles()).toContain((await store.key(handle.keyId)).handle);
    // The request's field is checked like every other.
    expect(() => parseOperation({ ...op, backend: 'Not A Name' })).toThrow(/backend/);
    expect(parseOperation(op)).toEqual(op);
  });
});
