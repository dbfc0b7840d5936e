// Future-dated CS02b commands and the alert 0x00CB (docs/domain.md §9): a command with an
// execution time is answered at once with `SEQUENCE { NULL }` (no outcome: the items stay built
// and the plan records that they are scheduled), and later with the alert 0x00CB, code 0x8F66
// (executed: the outcome applies as a response's would) or 0x8F67 (failed: every cell failed,
// with its status). The alert is device-signed and verified FIRST exactly as a response is: the
// device's DS certificate, validating to the device trust, must verify its signature.
import { generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { concatBytes } from '@smki/core';
import {
  buildGeneralSigning,
  CREDENTIALS_ALERT_CODES,
  CREDENTIALS_ALERT_MESSAGE_CODE,
  CREDENTIALS_STATUS,
  decodeUpdateSecurityCredentialsCommand,
  encodeCredentialsAlert,
  encodeUpdateSecurityCredentialsResponse,
  parseMessage,
  signedBytes,
  type Cra,
  type CellOutcome,
} from '@smki/gbcs';
import { createHierarchy, issueDeviceCertificate, parseCertificate, type SmkiCertificate } from '@smki/pki';
import { RecoveryPlans } from '../src/index.js';
import { certify, closeLater, deviceCert, deviceKey, deviceTrust, expectCode, meterResponse, NORTH, pki, supplierStore, SUPPLIER, tempDir } from './_fixtures.js';

const AT = new Date('2031-03-01T02:00:00Z');

/** A device-signed message from `device` (as test/_fixtures.ts's meterResponse signs). */
function deviceSigned(fields: { cra: Cra; device: string; to: string; counter: bigint; messageCode: number; payload: Uint8Array; key?: KeyObject }): Uint8Array {
  const unsigned = buildGeneralSigning({ cra: fields.cra, originatorCounter: fields.counter, originator: fields.device, recipient: fields.to, messageCode: fields.messageCode, payload: fields.payload, signatureField: 'empty' });
  const m = parseMessage(unsigned);
  const sig = nodeSign('sha256', signedBytes(m), { key: fields.key ?? deviceKey(fields.device), dsaEncoding: 'ieee-p1363' });
  return concatBytes(m.bytes.subarray(0, m.signedRange.end), Uint8Array.of(0x40), new Uint8Array(sig));
}

/** The meter's immediate answer to a future-dated command: `SEQUENCE { NULL }`, same code, device-signed. */
function scheduledResponse(command: Uint8Array, key?: KeyObject): Uint8Array {
  const { message } = decodeUpdateSecurityCredentialsCommand(command);
  return deviceSigned({ cra: 'response', device: message.recipient, to: message.originator, counter: message.originatorCounter, messageCode: message.messageCode, payload: encodeUpdateSecurityCredentialsResponse({}), ...(key ? { key } : {}) });
}

/** The meter's alert 0x00CB once the future-dated command ran: its outcome per requested cell. */
function alertFor(
  command: Uint8Array,
  oldCerts: Record<string, SmkiCertificate>,
  options: { code?: number; status?: (cell: CellOutcome['cell']) => number; key?: KeyObject; cra?: Cra; to?: string; messageCode?: number; sequenceNumber?: bigint; mode?: number; newKeyId?: string } = {},
): Uint8Array {
  const { payload, message } = decodeUpdateSecurityCredentialsCommand(command);
  const results: CellOutcome[] = payload.replacements.map((r) => {
    const status = options.status?.(r.cell) ?? CREDENTIALS_STATUS.success;
    const old = oldCerts[r.cell.keyUsage] as SmkiCertificate;
    const next = deviceNewIds(r.certificate);
    const keep = status !== CREDENTIALS_STATUS.success;
    return { cell: r.cell, status, oldEntityId: old.entityId!, oldKeyId: old.subjectKeyId!, newEntityId: keep ? old.entityId! : next.entityId, newKeyId: keep ? old.subjectKeyId! : (options.newKeyId ?? next.keyId) };
  });
  const body = encodeCredentialsAlert({
    code: options.code ?? CREDENTIALS_ALERT_CODES.success,
    executionTime: AT,
    outcome: { sequenceNumber: options.sequenceNumber ?? message.originatorCounter, mode: options.mode ?? payload.mode, floorChanges: [], results },
  });
  // The alert carries the device's own counter; the outcome's sequence number names the command.
  return deviceSigned({ cra: options.cra ?? 'alert', device: message.recipient, to: options.to ?? message.originator, counter: 77n, messageCode: options.messageCode ?? CREDENTIALS_ALERT_MESSAGE_CODE, payload: body, ...(options.key ? { key: options.key } : {}) });
}

const deviceNewIds = (der: Uint8Array) => {
  const c = parseCertificate(der);
  return { entityId: c.entityId!, keyId: c.subjectKeyId! };
};

/** A rotation of north with both new certificates attached; `future` commands for the first meters. */
async function futureDated() {
  const estate = await supplierStore();
  const path = join(tempDir(), 'plans.db');
  const plans = await RecoveryPlans.open({ deviceTrust: deviceTrust(), path, keystore: estate.store, counters: { startCounter: 9000n } });
  closeLater(() => plans.close());
  const { plan, csrs } = await plans.planRotation({ organisation: SUPPLIER, portfolioId: 'north' });
  await plans.attachCertificates(plan.planId, { certificates: { signing: await certify(csrs.signing!, 'signing'), keyAgreement: await certify(csrs.keyAgreement!, 'keyAgreement') }, certificationPath: [pki().organisationCa.certificate] });
  const future = await plans.buildBatch(plan.planId, { limit: 4, executionTime: AT });
  const oldCerts = { digitalSignature: estate.north.signing, keyAgreement: estate.north.keyAgreement };
  const counts = async () => (await plans.status(plan.planId)).counts;
  /** The plan's recorded events of `type` (read from the database as an auditor would). */
  const events = (type: string) => {
    const db = new Database(path, { readonly: true });
    try {
      return (db.prepare('SELECT event FROM recovery_events ORDER BY seq').all() as { event: string }[]).map((r) => JSON.parse(r.event) as Record<string, unknown>).filter((e) => e['type'] === type);
    } finally {
      db.close();
    }
  };
  return { ...estate, plans, plan, future, oldCerts, counts, events };
}

describe('future-dated commands and the alert 0x00CB (docs/domain.md §9)', () => {
  it('a future-dated command is answered with SEQUENCE { NULL }: scheduled, still built; the alert 0x8F66 then replaces both cells, once', async () => {
    const { store, plans, plan, future, oldCerts, counts, northKeys, events } = await futureDated();
    const c = future[0]!;
    expect(decodeUpdateSecurityCredentialsCommand(c.command).payload.executionTime).toEqual(AT);

    const r = await plans.recordResponse(plan.planId, scheduledResponse(c.command), { deviceCertificate: deviceCert(c.device) });
    expect(r).toMatchObject({ device: c.device, outcomes: [], scheduled: true, planState: 'in-progress' });
    expect(await counts()).toMatchObject({ built: 8, replaced: 0, failed: 0 });
    expect((await store.device(SUPPLIER, c.device)).installed.signing).toBe(northKeys.signing);
    // Recorded (in the hash-chained history) as scheduled, for both cells of that command.
    expect(events('item.scheduled')).toEqual([expect.objectContaining({ planId: plan.planId, device: c.device, purposes: ['signing', 'keyAgreement'], counter: String(c.counter) })]);
    expect((await plans.verifyPlanHistory()).ok).toBe(true);

    const a = await plans.recordAlert(plan.planId, alertFor(c.command, oldCerts), { deviceCertificate: deviceCert(c.device) });
    expect(a.outcomes).toEqual([
      { purpose: 'signing', state: 'replaced', status: 0 },
      { purpose: 'keyAgreement', state: 'replaced', status: 0 },
    ]);
    expect(await counts()).toMatchObject({ built: 6, replaced: 2 });
    expect((await store.device(SUPPLIER, c.device)).installed).toMatchObject({ signing: plan.newKeys.signing, keyAgreement: plan.newKeys.keyAgreement });
    // The same alert again finds nothing awaiting it.
    await expectCode(plans.recordAlert(plan.planId, alertFor(c.command, oldCerts), { deviceCertificate: deviceCert(c.device) }), 'ERR_RECOVERY_RESPONSE_UNMATCHED');
    // The alert may also come without the immediate response having been recorded.
    const d = future[1]!;
    expect((await plans.recordAlert(plan.planId, alertFor(d.command, oldCerts, { status: (cell) => (cell.keyUsage === 'keyAgreement' ? CREDENTIALS_STATUS.busy : 0) }), { deviceCertificate: deviceCert(d.device) })).outcomes).toEqual([
      { purpose: 'signing', state: 'replaced', status: 0 },
      { purpose: 'keyAgreement', state: 'failed', status: CREDENTIALS_STATUS.busy },
    ]);
    expect((await plans.verifyPlanHistory()).ok).toBe(true);
  });

  it('recordRecoveryResponse takes what the meter sent, response or alert, and dispatches on its CRA flag', async () => {
    const { plans, plan, future, oldCerts, counts } = await futureDated();
    const c = future[0]!;
    const cert = { deviceCertificate: deviceCert(c.device) };
    expect(await plans.recordRecoveryResponse(plan.planId, scheduledResponse(c.command), cert)).toMatchObject({ scheduled: true, outcomes: [] });
    expect((await plans.recordRecoveryResponse(plan.planId, alertFor(c.command, oldCerts), cert)).outcomes.map((o) => o.state)).toEqual(['replaced', 'replaced']);
    expect(await counts()).toMatchObject({ replaced: 2 });
    // Each path keeps its checks: the alert again awaits nothing, another meter's signature is refused.
    await expectCode(plans.recordRecoveryResponse(plan.planId, alertFor(c.command, oldCerts), cert), 'ERR_RECOVERY_RESPONSE_UNMATCHED');
    const d = future[1]!;
    await expectCode(plans.recordRecoveryResponse(plan.planId, alertFor(d.command, oldCerts, { key: deviceKey(NORTH[5]!) }), { deviceCertificate: deviceCert(d.device) }), 'ERR_RECOVERY_RESPONSE_SIGNATURE');
    await expectCode(plans.recordRecoveryResponse(plan.planId, new Uint8Array([0xdf, 0x09]), cert), 'ERR_GBCS_MALFORMED');
    expect((await plans.verifyPlanHistory()).ok).toBe(true);
  });

  it('the alert 0x8F67 marks every cell failed with its status (even one reported 0); the key store is told nothing; retry sends it again', async () => {
    const { store, plans, plan, future, oldCerts, counts, northKeys } = await futureDated();
    const c = future[0]!;
    await plans.recordResponse(plan.planId, scheduledResponse(c.command), { deviceCertificate: deviceCert(c.device) });
    const status = (cell: CellOutcome['cell']) => (cell.keyUsage === 'digitalSignature' ? CREDENTIALS_STATUS.busy : 0);
    const a = await plans.recordAlert(plan.planId, alertFor(c.command, oldCerts, { code: CREDENTIALS_ALERT_CODES.failure, status }), { deviceCertificate: deviceCert(c.device) });
    expect(a.outcomes).toEqual([
      { purpose: 'signing', state: 'failed', status: CREDENTIALS_STATUS.busy },
      { purpose: 'keyAgreement', state: 'failed', status: 0 },
    ]);
    expect(await counts()).toMatchObject({ built: 6, failed: 2, replaced: 0 });
    expect((await store.device(SUPPLIER, c.device)).installed).toMatchObject({ signing: northKeys.signing, keyAgreement: northKeys.keyAgreement });
    await plans.retry(plan.planId, c.device);
    const again = await plans.buildBatch(plan.planId, { limit: 1 });
    expect(again.map((x) => x.device)).toEqual([c.device]);
    expect(again[0]!.counter).toBeGreaterThan(c.counter);
  });

  it('SEQUENCE { NULL } to a command executed at once is refused: no outcome, nothing changes', async () => {
    const { plans, plan, counts } = await futureDated();
    const [now] = await plans.buildBatch(plan.planId, { limit: 1 });
    expect(decodeUpdateSecurityCredentialsCommand(now!.command).payload.executionTime).toBeUndefined();
    await expectCode(plans.recordResponse(plan.planId, scheduledResponse(now!.command), { deviceCertificate: deviceCert(now!.device) }), 'ERR_RECOVERY_RESPONSE_OUTCOME');
    expect(await counts()).toMatchObject({ built: 10, replaced: 0, failed: 0 });
  });

  it('an alert for a command executed at once is refused (its outcome comes in its response), and changes nothing', async () => {
    const { plans, plan, oldCerts, counts } = await futureDated();
    const [now] = await plans.buildBatch(plan.planId, { limit: 1 });
    await expectCode(plans.recordAlert(plan.planId, alertFor(now!.command, oldCerts), { deviceCertificate: deviceCert(now!.device) }), 'ERR_RECOVERY_RESPONSE_UNMATCHED');
    expect(await counts()).toMatchObject({ built: 10, replaced: 0 });
  });

  it('an alert signed by another key, or by a "device certificate" of another hierarchy, is refused before anything is read; the true one then counts', async () => {
    const { plans, plan, future, oldCerts, counts } = await futureDated();
    const c = future[0]!;
    // Another meter's key, with the right meter's certificate.
    await expectCode(plans.recordAlert(plan.planId, alertFor(c.command, oldCerts, { key: deviceKey(NORTH[5]!) }), { deviceCertificate: deviceCert(c.device) }), 'ERR_RECOVERY_RESPONSE_SIGNATURE');
    // Another meter's certificate.
    await expectCode(plans.recordAlert(plan.planId, alertFor(c.command, oldCerts), { deviceCertificate: deviceCert(NORTH[5]!) }), 'ERR_RECOVERY_RESPONSE_SIGNATURE');
    // A DS certificate for the right meter from another hierarchy, whose key really signed the alert.
    const rogue = await createHierarchy();
    const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const forged = await issueDeviceCertificate({ issuer: rogue.deviceCa, publicKey: k.publicKey, entityId: c.device, keyUsage: 'digitalSignature' });
    await expectCode(plans.recordAlert(plan.planId, alertFor(c.command, oldCerts, { key: k.privateKey }), { deviceCertificate: forged }), 'ERR_RECOVERY_RESPONSE_SIGNATURE');
    // The same forgery as the immediate answer changes nothing either.
    await expectCode(plans.recordResponse(plan.planId, scheduledResponse(c.command, k.privateKey), { deviceCertificate: forged }), 'ERR_RECOVERY_RESPONSE_SIGNATURE');
    expect(await counts()).toMatchObject({ built: 8, replaced: 0, failed: 0 });
    expect((await plans.recordAlert(plan.planId, alertFor(c.command, oldCerts), { deviceCertificate: deviceCert(c.device) })).outcomes.map((o) => o.state)).toEqual(['replaced', 'replaced']);
  });

  it('a message that is not an alert 0x00CB to the plan originator, or whose outcome does not fit the command, is refused and changes nothing', async () => {
    const { plans, plan, future, oldCerts, counts } = await futureDated();
    const c = future[0]!;
    const cert = { deviceCertificate: deviceCert(c.device) };
    // Alert bytes presented as a response, and a response presented as an alert.
    await expectCode(plans.recordResponse(plan.planId, alertFor(c.command, oldCerts), cert), 'ERR_RECOVERY_RESPONSE_UNMATCHED');
    await expectCode(plans.recordAlert(plan.planId, scheduledResponse(c.command), cert), 'ERR_RECOVERY_RESPONSE_UNMATCHED');
    // An alert of another code, of another CRA, to another party.
    await expectCode(plans.recordAlert(plan.planId, alertFor(c.command, oldCerts, { messageCode: 0x00cc }), cert), 'ERR_RECOVERY_RESPONSE_UNMATCHED');
    await expectCode(plans.recordAlert(plan.planId, alertFor(c.command, oldCerts, { cra: 'command' }), cert), 'ERR_RECOVERY_RESPONSE_UNMATCHED');
    await expectCode(plans.recordAlert(plan.planId, alertFor(c.command, oldCerts, { to: '90B3D51F30020000' }), cert), 'ERR_RECOVERY_RESPONSE_UNMATCHED');
    // An outcome for another command of the meter, for another mode, with another new key.
    await expectCode(plans.recordAlert(plan.planId, alertFor(c.command, oldCerts, { sequenceNumber: c.counter + 100n }), cert), 'ERR_RECOVERY_RESPONSE_UNMATCHED');
    await expectCode(plans.recordAlert(plan.planId, alertFor(c.command, oldCerts, { mode: 8 }), cert), 'ERR_RECOVERY_RESPONSE_OUTCOME');
    await expectCode(plans.recordAlert(plan.planId, alertFor(c.command, oldCerts, { newKeyId: '0102030405060708' }), cert), 'ERR_RECOVERY_RESPONSE_OUTCOME');
    expect(await counts()).toMatchObject({ built: 8, replaced: 0, failed: 0 });
    // A meter's immediate response (with an outcome) to a future-dated command still counts as a response.
    expect((await plans.recordResponse(plan.planId, meterResponse(c.command, { oldCerts }), cert)).outcomes.map((o) => o.state)).toEqual(['replaced', 'replaced']);
  });
});
