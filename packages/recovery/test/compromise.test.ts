// Recovery from a stolen portfolio key end to end: the key revoked at once, replacements made in
// another named backend (docs/key-segregation.md, further backends by name), CS02b mode 8 from the
// Recovery party (docs/domain.md §9: the stolen key must not authorise its own replacement),
// signed by the Recovery party's own key store through a session bound to exactly the batch's
// messages and approved by another of its operators (docs/keystore-estate.md §2); the stolen
// key's exposure falls to zero; the south portfolio is byte-identical before and after.
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { decodeUpdateSecurityCredentialsCommand, parseMessage, signedBytes, verifySignature } from '@smki/gbcs';
import { FileKeyBackend } from '@smki/keystore';
import { issueOrganisationCertificate } from '@smki/pki';
import { generateKeyPairSync } from 'node:crypto';
import { RecoveryPlans } from '../src/index.js';
import { certify, closeLater, deviceCert, deviceTrust, expectCode, meterResponse, NORTH, PASS, pki, recoveryParty, RECOVERY, sha, SOUTH, southSnapshot, supplierStore, SUPPLIER } from './_fixtures.js';
import { DATABASES, planDatabases, type DatabaseKind } from './_databases.js';

const databases = planDatabases('smki-recovery-compromise-');
let tick = 0;

describe.each(DATABASES)('compromise of the north portfolio keys (CS02b mode 8, by the Recovery party), plans in %s', (kind: DatabaseKind) => {
  async function compromised() {
    const token = await FileKeyBackend.open({ directory: mkdtempSync(join(tmpdir(), 'smki-recovery-token-')), passphrase: PASS });
    closeLater(() => token.close());
    const estate = await supplierStore({ backends: { 'token-b': token } });
    const plans = await RecoveryPlans.open({ deviceTrust: deviceTrust(), ...databases.fresh(kind), keystore: estate.store, counters: { nextCounter: () => BigInt(Date.now()) * 1000n + BigInt(tick++) } });
    closeLater(() => plans.close());
    return { ...estate, plans, token };
  }

  it('a backend the key store was not opened with is refused before anything is revoked', async () => {
    const { store, plans, northKeys } = await compromised();
    await expectCode(plans.planCompromise({ organisation: SUPPLIER, portfolioId: 'north', recoveryParty: RECOVERY, backend: 'token-c' }), 'ERR_INVALID_ARGUMENT');
    expect((await store.key(northKeys.signing!)).state).toBe('active');
    expect((await store.key(northKeys.keyAgreement!)).state).toBe('active');
    expect(await plans.plans()).toEqual([]);
  });

  it('revokes at once, re-keys north from a named backend under dual control, exposure falls to zero, south untouched', async () => {
    const { store, plans, north, northKeys } = await compromised();
    const south = await southSnapshot(store);
    const recovery = await recoveryParty();

    const { plan, csrs } = await plans.planCompromise({ organisation: SUPPLIER, portfolioId: 'north', recoveryParty: RECOVERY, backend: 'token-b' });
    expect(plan).toMatchObject({ route: 'compromise', originator: RECOVERY, backend: 'token-b', state: 'awaiting-certificates' });
    // Revoked at once: the stolen keys never sign again, and still count their meters.
    expect((await store.key(northKeys.signing!)).state).toBe('revoked');
    expect((await store.key(northKeys.keyAgreement!)).state).toBe('revoked');
    await expectCode(store.signFor(NORTH[0]!, new Uint8Array([1])), 'ERR_KEY_REVOKED');
    expect((await plans.status(plan.planId)).remaining).toEqual({ signing: 20, keyAgreement: 20 });
    // The replacements live in the named backend, not beside the stolen keys.
    expect((await store.key(plan.newKeys.signing!)).backend).toContain('token-b');
    expect((await store.key(plan.newKeys.keyAgreement!)).backend).toContain('token-b');

    const newDs = await certify(csrs.signing!, 'signing');
    const newKa = await certify(csrs.keyAgreement!, 'keyAgreement');
    await plans.attachCertificates(plan.planId, { certificates: { signing: newDs.der, keyAgreement: newKa.der }, certificationPath: [pki().organisationCa.certificate.der] });
    await expectCode(plans.buildBatch(plan.planId), 'ERR_INVALID_ARGUMENT'); // mode 8 needs the Recovery party

    const a = await plans.buildBatch(plan.planId, { limit: 12, recovery: recovery.signing });
    const b = await plans.buildBatch(plan.planId, { limit: 12, recovery: recovery.signing });
    expect(await plans.buildBatch(plan.planId, { recovery: recovery.signing })).toEqual([]);
    const all = [...a, ...b];
    expect(all.map((c) => c.device)).toEqual(NORTH);
    for (const c of all) {
      const { payload, message } = decodeUpdateSecurityCredentialsCommand(c.command);
      expect(payload.mode).toBe(8);
      expect(message.originator).toBe(RECOVERY);
      expect(payload.replacements.map((r) => r.certificate)).toEqual([newDs.der, newKa.der]);
      expect(verifySignature(c.command, recovery.certificate.publicKey!)).toBe(true);
      expect(verifySignature(c.command, north.signing.publicKey!)).toBe(false);
    }
    // The duty officer approved two proposals, each naming exactly its batch's commands, as signed.
    expect(recovery.seen.map((p) => p.commands.length)).toEqual([12, 8]);
    expect(recovery.seen[0]!.operation).toMatchObject({ op: 'session.sign', count: 12, portfolioIds: ['recovery'] });
    for (const [i, c] of a.entries()) expect(sha(signedBytes(parseMessage(recovery.seen[0]!.commands[i]!.command)))).toBe(sha(signedBytes(parseMessage(c.command))));

    const oldCerts = { digitalSignature: north.signing, keyAgreement: north.keyAgreement };
    for (const c of all) await plans.recordResponse(plan.planId, meterResponse(c.command, { oldCerts }), { deviceCertificate: deviceCert(c.device) });
    const done = await plans.status(plan.planId);
    expect(done.counts).toEqual({ pending: 0, built: 0, replaced: 40, failed: 0, escalated: 0 });
    expect(done.remaining).toEqual({ signing: 0, keyAgreement: 0 });
    expect(done.plan.state).toBe('complete');
    const exposure = await store.exposureReport(SUPPLIER);
    expect(exposure.find((e) => e.keyId === northKeys.signing)).toBeUndefined();
    expect(exposure.find((e) => e.keyId === plan.newKeys.signing)?.deviceCount).toBe(20);
    expect((await store.key(northKeys.signing!)).state).toBe('revoked'); // stays revoked
    expect(await southSnapshot(store)).toBe(south);
    for (const d of SOUTH) expect((await store.device(SUPPLIER, d)).installed.signing).not.toBe(plan.newKeys.signing);
    expect((await plans.verifyPlanHistory()).ok).toBe(true);
  });

  it('without the other operator\'s approval nothing is signed: the meters stay pending, the counters are spent, and a later approved batch uses new ones', async () => {
    const { plans } = await compromised();
    const recovery = await recoveryParty();
    const { plan, csrs } = await plans.planCompromise({ organisation: SUPPLIER, portfolioId: 'north', recoveryParty: RECOVERY, backend: 'token-b', purposes: ['signing'] });
    await plans.attachCertificates(plan.planId, { certificates: { signing: await certify(csrs.signing!, 'signing') }, certificationPath: [pki().organisationCa.certificate] });
    await expectCode(plans.buildBatch(plan.planId, { limit: 3, recovery: { ...recovery.signing, approve: async () => [] } }), 'ERR_PROPOSAL_QUORUM_NOT_MET');
    expect((await plans.status(plan.planId)).counts).toMatchObject({ pending: 20, built: 0 });
    const spent = await plans.countersUsed(RECOVERY);
    expect(spent).toHaveLength(3);
    const built = await plans.buildBatch(plan.planId, { limit: 3, recovery: recovery.signing });
    expect(built.every((c) => c.counter > spent[2]!)).toBe(true);
    expect(built.every((c) => decodeUpdateSecurityCredentialsCommand(c.command).payload.replacements.length === 1)).toBe(true);
  });

  it("a Recovery certificate that is not the plan originator's DS certificate is refused before anything is proposed", async () => {
    const { plans } = await compromised();
    const recovery = await recoveryParty();
    const { plan, csrs } = await plans.planCompromise({ organisation: SUPPLIER, portfolioId: 'north', recoveryParty: RECOVERY, backend: 'token-b' });
    await plans.attachCertificates(plan.planId, { certificates: { signing: await certify(csrs.signing!, 'signing'), keyAgreement: await certify(csrs.keyAgreement!, 'keyAgreement') }, certificationPath: [pki().organisationCa.certificate] });
    const supplierCert = await certify(csrs.signing!, 'signing');
    await expectCode(plans.buildBatch(plan.planId, { limit: 2, recovery: { ...recovery.signing, certificate: supplierCert } }), 'ERR_RECOVERY_COMMAND_REFUSED');
    expect(recovery.seen).toEqual([]);
    expect((await plans.status(plan.planId)).counts.built).toBe(0);
    expect(await plans.countersUsed(RECOVERY)).toEqual([]); // refused before a counter is spent
  });

  it("a signature that does not verify with the Recovery certificate (the store signed with another key) is refused and nothing is kept", async () => {
    const { plans } = await compromised();
    const recovery = await recoveryParty();
    const { plan, csrs } = await plans.planCompromise({ organisation: SUPPLIER, portfolioId: 'north', recoveryParty: RECOVERY, backend: 'token-b' });
    await plans.attachCertificates(plan.planId, { certificates: { signing: await certify(csrs.signing!, 'signing'), keyAgreement: await certify(csrs.keyAgreement!, 'keyAgreement') }, certificationPath: [pki().organisationCa.certificate] });
    // A role 1 DS certificate of the Recovery party, for a key its store does not sign with.
    const stranger = await issueOrganisationCertificate({ issuer: pki().organisationCa, role: 1, entityId: RECOVERY, keyUsage: 'digitalSignature', publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey });
    await expectCode(plans.buildBatch(plan.planId, { limit: 2, recovery: { ...recovery.signing, certificate: stranger } }), 'ERR_RECOVERY_COMMAND_REFUSED');
    expect((await plans.status(plan.planId)).counts).toMatchObject({ pending: 40, built: 0 });
    expect(await plans.commands(plan.planId, NORTH[0]!)).toEqual([]);
  });
});
