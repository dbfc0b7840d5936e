// Recovery on a key store under access control (docs/keystore-estate.md §2): every change the
// plan makes to the supplier's store is a request signed by an operator, and the store's policy
// puts revoking and generating under dual control (one approval beside the requester). Without the
// approvals the compromise plan is refused at its first key operation: nothing is revoked, nothing
// generated, the plan stays `declared`; with them (the plan resumed) it revokes, generates in the
// named backend, certifies, and re-keys meters whose responses mark their credentials updated,
// each as a signed request. Without an operator, the store refuses the plan's calls outright.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createKeySigner, parseEui64 } from '@smki/core';
import { createApproval, FileKeyBackend } from '@smki/keystore';
import { RecoveryPlans, type OperationProposal } from '../src/index.js';
import { certify, closeLater, deviceCert, deviceTrust, expectCode, meterResponse, NORTH, PASS, pki, recoveryParty, RECOVERY, supplierStore, SUPPLIER, tempDir } from './_fixtures.js';

async function controlledEstate() {
  const token = await FileKeyBackend.open({ directory: mkdtempSync(join(tmpdir(), 'smki-recovery-token-')), passphrase: PASS });
  closeLater(() => token.close());
  const estate = await supplierStore({ backends: { 'token-b': token } });
  const org = parseEui64(SUPPLIER);
  const mk = (id: string) => ({ id, signer: createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey) });
  const service = mk('recovery-service');
  const second = mk('second-custodian');
  const admin = mk('admin');
  await estate.store.initialiseAccess({
    operators: [
      { operatorId: service.id, publicKey: service.signer.publicKey, grants: [{ role: 'custodian', organisation: org }, { role: 'deviceManager', organisation: org }] },
      { operatorId: second.id, publicKey: second.signer.publicKey, grants: [{ role: 'custodian', organisation: org }] },
      { operatorId: admin.id, publicKey: admin.signer.publicKey, grants: [{ role: 'administrator', organisation: '*' }] },
    ],
    policy: { v: 1, rules: [{ operation: 'key.revoke', approvals: 1 }, { operation: 'key.generate', approvals: 1 }] },
  });
  const shown: OperationProposal[] = [];
  /** The second custodian approves what it is shown. */
  const approve = async (p: OperationProposal) => {
    shown.push(p);
    return [await createApproval(second.signer, { storeId: p.storeId, proposalId: p.proposalId, operationHash: p.operationHash, approverId: second.id, expiresAt: new Date(Date.now() + 3_600_000) })];
  };
  return { ...estate, service, second, approve, shown };
}

describe('recovery under key store access control (operators, dual control)', () => {
  it('without an operator the store refuses the first change: nothing revoked, the plan stays declared', async () => {
    const { store, northKeys } = await controlledEstate();
    const plans = await RecoveryPlans.open({ deviceTrust: deviceTrust(), path: join(tempDir(), 'plans.db'), keystore: store, counters: { startCounter: 1n } });
    closeLater(() => plans.close());
    await expectCode(plans.planCompromise({ organisation: SUPPLIER, portfolioId: 'north', recoveryParty: RECOVERY, backend: 'token-b' }), 'ERR_OPERATOR_REQUIRED');
    expect((await store.key(northKeys.signing!)).state).toBe('active');
    expect((await plans.plans()).map((p) => p.state)).toEqual(['declared']);
  });

  it('without the approvals nothing is revoked and the plan stays declared; with them, resumed, it revokes, generates and re-keys meters as signed requests', async () => {
    const { store, north, northKeys, service, approve, shown } = await controlledEstate();
    const keysBefore = (await store.keys(SUPPLIER)).length;
    const refuse = async (p: OperationProposal) => {
      shown.push(p);
      return [];
    };
    const path = join(tempDir(), 'plans.db');
    const refused = await RecoveryPlans.open({ deviceTrust: deviceTrust(), path, keystore: store, counters: { startCounter: 1n }, operator: { operatorId: service.id, operatorSigner: service.signer, approve: refuse } });
    closeLater(() => refused.close());
    await expectCode(refused.planCompromise({ organisation: SUPPLIER, portfolioId: 'north', recoveryParty: RECOVERY, backend: 'token-b' }), 'ERR_PROPOSAL_QUORUM_NOT_MET');
    expect(shown.map((p) => p.operation)).toEqual([{ op: 'key.revoke', keyId: northKeys.signing, reason: 'keyCompromise' }]);
    expect((await store.key(northKeys.signing!)).state).toBe('active');
    expect((await store.key(northKeys.keyAgreement!)).state).toBe('active');
    expect((await store.keys(SUPPLIER)).length).toBe(keysBefore);
    const [declared] = await refused.plans();
    expect(declared).toMatchObject({ state: 'declared', newKeys: {} });
    await refused.close();
    // An operator without approve cannot pass dual control either.
    const noApprover = await RecoveryPlans.open({ deviceTrust: deviceTrust(), path, keystore: store, counters: { startCounter: 1n }, operator: { operatorId: service.id, operatorSigner: service.signer } });
    closeLater(() => noApprover.close());
    await expectCode(noApprover.resume(declared!.planId), 'ERR_APPROVAL_REQUIRED');
    expect((await store.key(northKeys.signing!)).state).toBe('active');
    expect((await noApprover.plan(declared!.planId)).state).toBe('declared');
    await noApprover.close();

    // With the second custodian's approvals: the same declared plan resumed.
    shown.length = 0;
    const plans = await RecoveryPlans.open({ deviceTrust: deviceTrust(), path, keystore: store, counters: { startCounter: 1n }, operator: { operatorId: service.id, operatorSigner: service.signer, approve } });
    closeLater(() => plans.close());
    const { plan, csrs } = await plans.resume(declared!.planId);
    expect(plan).toMatchObject({ planId: declared!.planId, state: 'awaiting-certificates' });
    expect(shown.map((p) => p.operation.op)).toEqual(['key.revoke', 'key.revoke', 'key.generate', 'key.generate']);
    expect(shown.every((p) => p.planId === plan.planId)).toBe(true);
    expect((await store.key(northKeys.signing!)).state).toBe('revoked');
    expect((await store.key(plan.newKeys.signing!)).backend).toBe('@token-b');

    await plans.attachCertificates(plan.planId, { certificates: { signing: await certify(csrs.signing!, 'signing'), keyAgreement: await certify(csrs.keyAgreement!, 'keyAgreement') }, certificationPath: [pki().organisationCa.certificate] });
    const recovery = await recoveryParty();
    const built = await plans.buildBatch(plan.planId, { limit: 2, recovery: recovery.signing });
    const oldCerts = { digitalSignature: north.signing, keyAgreement: north.keyAgreement };
    for (const c of built) await plans.recordRecoveryResponse(plan.planId, meterResponse(c.command, { oldCerts }), { deviceCertificate: deviceCert(c.device) });
    expect((await plans.status(plan.planId)).counts.replaced).toBe(4);
    expect((await store.device(SUPPLIER, NORTH[0]!)).installed.signing).toBe(plan.newKeys.signing);
    // Every change is in the store's trail as a signed request of the operator, and the store verifies.
    expect((await store.operator(service.id)).lastCounter).toBeGreaterThan(8n);
    const verified = await store.verifyStore();
    expect(verified.findings).toEqual([]);
    expect(verified.trail.ok).toBe(true);
    expect((await plans.verifyPlanHistory()).ok).toBe(true);
  });
});
