// The validator's decision, rule by rule (docs/validator.md): GBCS 4.3 (message layout), 5.4a
// (critical commands carry the User's signature and the ACB MAC), 6.2.4 (anti-replay), and
// RFC 5280 §6.1 (the signer's path, revocation required). Each case breaks exactly one rule and
// expects exactly its code; accepted frames are checked by a simulated meter that shares no code
// with the library.
import { beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { SmkiError } from '@smki/core';
import { verifyAuditLog } from '@smki/keystore';
import { MemoryDeviceRegistry, MemoryStateStore } from '@smki/store';
import {
  buildDisableSupply,
  buildGeneralCiphering,
  buildGeneralSigning,
  createCatalogue,
  encodeSupplyPayload,
  parseMessage,
  signPreCommand,
} from '@smki/gbcs';
import { SimulatedMeter } from '../../gbcs/test/_device-simulator.js';
import { DECISION_LOG_SCHEMA, type Decision, type Validator } from '../src/index.js';
import {
  LOG_KEY,
  MODEL,
  NETWORK_OPERATOR,
  OTHER_SUPPLIER,
  SUPPLIER,
  activate,
  buildWorld,
  disconnect,
  memoryStores,
  openValidator,
  reconnectUnsigned,
  tempDir,
  type World,
  keyPair,
} from './_world.js';
import { expectRejectedAt } from './_expect.js';
import { createHierarchy, issueOrganisationCertificate } from '@smki/pki';

let world: World;
const IMAGE = createHash('sha256').update('approved image').digest();
const REVOKED_IMAGE = createHash('sha256').update('vulnerable image').digest();
const UNKNOWN_IMAGE = createHash('sha256').update('unknown image').digest();
const NOW_MS = () => BigInt(world.now.getTime());

beforeAll(async () => {
  world = await buildWorld({ meters: 6 });
});

async function fresh(extra: Parameters<typeof openValidator>[2] = {}): Promise<{ v: Validator; stores: Awaited<ReturnType<typeof memoryStores>> }> {
  const stores = await memoryStores(world, [IMAGE, REVOKED_IMAGE]);
  await stores.firmware.revoke(MODEL, REVOKED_IMAGE, world.now.getTime(), 'CVE announced');
  const v = await openValidator(world, stores, extra);
  return { v, stores };
}

function flip(bytes: Uint8Array, at: number): Uint8Array {
  const b = Uint8Array.from(bytes);
  b[at] = (b[at] as number) ^ 0x01;
  return b;
}

/** A rejection with this code, at the step docs/validator.md gives it. */
const expectRejected = expectRejectedAt;

function meterFor(i: number): SimulatedMeter {
  const m = world.meters[i]!;
  return new SimulatedMeter({
    eui64: m.eui,
    supplier: { entityId: SUPPLIER, dsPublicKey: world.portfolios[m.portfolio]!.publicKey, kaPublicKey: world.acb.publicKey },
    acb: { entityId: '90B3D51F30000004', kaPublicKey: world.acb.publicKey },
    criticalCodes: [0x0050, 0x004f, 0x0012],
    ka: { privateKey: m.ka.privateKey, publicKey: m.ka.publicKey },
  });
}

describe('accepted commands (GBCS 5.4a)', () => {
  it('a remote disconnect signed with the portfolio key the meter trusts is MAC\'d, and the meter accepts the frame', async () => {
    const { v } = await fresh();
    const meter = world.meters[0]!;
    const d = await v.validate(await disconnect(world, meter, NOW_MS()), { sender: SUPPLIER });
    expect(d.outcome).toBe('accepted');
    if (d.outcome !== 'accepted') return;
    expect(d.critical).toBe(true);
    expect(d.role).toBe(2);
    expect(d.signerSerial).toBe(world.portfolios[0]!.certificate.serialNumber);
    const result = meterFor(0).receive(d.frame);
    expect(result.accepted, result.reason).toBe(true);
    // The frame carries the APDU exactly as signed.
    expect(parseMessage(d.frame).frame).toBe('ciphered');
    await v.close();
  });

  it('meters of the second portfolio accept commands signed with the second key', async () => {
    const { v } = await fresh();
    const d = await v.validate(await disconnect(world, world.meters[1]!, NOW_MS()), { sender: SUPPLIER });
    expect(d.outcome).toBe('accepted');
    expect(meterFor(1).receive((d as { frame: Uint8Array }).frame).accepted).toBe(true);
    await v.close();
  });

  it('an approved firmware image is activated', async () => {
    const { v } = await fresh();
    const d = await v.validate(await activate(world, world.meters[0]!, NOW_MS(), IMAGE), { sender: SUPPLIER });
    expect(d.outcome).toBe('accepted');
    expect(meterFor(0).receive((d as { frame: Uint8Array }).frame).accepted).toBe(true);
    await v.close();
  });

  it('a non-critical command without a signature passes anti-replay and anomaly counting, then gets its MAC', async () => {
    const catalogue = createCatalogue([
      { code: 0x0400, useCase: 'XR01', name: 'a read (test entry)', duisService: '4.x', deviceType: 'any', eligibleRoles: ['IS', 'GS'], critical: false, acbOriginated: false },
    ]);
    const { v, stores } = await fresh({ catalogue, anomalyThreshold: () => ({ limit: 1, windowMs: 60_000 }) });
    const meter = world.meters[0]!;
    const read = (counter: bigint) =>
      buildGeneralSigning({ cra: 'command', originatorCounter: counter, originator: SUPPLIER, recipient: meter.eui, messageCode: 0x0400, payload: Uint8Array.of(0x01, 0x09, 0x00), signatureField: 'empty' });
    const c = NOW_MS();
    const d1 = await v.validate(read(c), { sender: SUPPLIER });
    expect(d1.outcome).toBe('accepted');
    expect((d1 as { critical: boolean }).critical).toBe(false);
    expect(meterFor(0).receive((d1 as { frame: Uint8Array }).frame).accepted).toBe(true);
    expectRejected(await v.validate(read(c), { sender: SUPPLIER }), 'ERR_COMMAND_REPLAYED');
    const d3 = await v.validate(read(c + 1n), { sender: SUPPLIER });
    expect(d3.outcome).toBe('quarantined');
    expect(await stores.store.lastCounter(SUPPLIER, meter.eui)).toBe(c);
    await v.close();
  });
});

describe('the attack suite: each rule, broken alone, gives its code', () => {
  it('tampered header, payload and signature bytes: ERR_COMMAND_SIGNATURE_INVALID', async () => {
    const { v } = await fresh();
    const meter = world.meters[0]!;
    const good = await disconnect(world, meter, NOW_MS());
    const m = parseMessage(good);
    // Header: the date-time-absent marker would change the layout; flip the top counter byte's low bit instead.
    const header = flip(good, 3);
    const payload = flip(good, m.signedRange.end - 1); // the script id's low byte
    const signature = flip(good, good.length - 1);
    for (const bad of [payload, signature]) expectRejected(await v.validate(bad, { sender: SUPPLIER }), 'ERR_COMMAND_SIGNATURE_INVALID');
    const h = await v.validate(header, { sender: SUPPLIER });
    // The counter is in the header and the payload repeats its low bits: either rule catches it, the signature first.
    expectRejected(h, 'ERR_COMMAND_SIGNATURE_INVALID');
    // Nothing moved: the genuine command is still accepted.
    expect((await v.validate(good, { sender: SUPPLIER })).outcome).toBe('accepted');
    await v.close();
  });

  it("a command signed with the other portfolio's key: ERR_COMMAND_PORTFOLIO_MISMATCH", async () => {
    const { v } = await fresh();
    const meter = world.meters[0]!; // portfolio 0
    const d = await v.validate(await disconnect(world, meter, NOW_MS(), world.portfolios[1]!.signer), { sender: SUPPLIER });
    expectRejected(d, 'ERR_COMMAND_PORTFOLIO_MISMATCH');
    await v.close();
  });

  it('a key the supplier does not hold: ERR_COMMAND_SIGNATURE_INVALID (not a portfolio mismatch)', async () => {
    const { v } = await fresh();
    const d = await v.validate(await disconnect(world, world.meters[0]!, NOW_MS(), world.otherSupplier.signer), { sender: SUPPLIER });
    expectRejected(d, 'ERR_COMMAND_SIGNATURE_INVALID');
    await v.close();
  });

  it('a revoked signer: ERR_COMMAND_SIGNER_REVOKED; the other portfolio still works', async () => {
    const crls = await world.crlsWith({ revoked: [world.portfolios[0]!.certificate], crlNumber: 2n });
    const { v } = await fresh({ trust: { certificates: world.certificates, crls } });
    expectRejected(await v.validate(await disconnect(world, world.meters[0]!, NOW_MS()), { sender: SUPPLIER }), 'ERR_COMMAND_SIGNER_REVOKED');
    expect((await v.validate(await disconnect(world, world.meters[1]!, NOW_MS()), { sender: SUPPLIER })).outcome).toBe('accepted');
    await v.close();
  });

  it('a revocation learnt at run time (updateTrust) refuses the next command at once', async () => {
    const { v } = await fresh();
    const meter = world.meters[0]!;
    expect((await v.validate(await disconnect(world, meter, NOW_MS()), { sender: SUPPLIER })).outcome).toBe('accepted');
    v.updateTrust({ certificates: world.certificates, crls: await world.crlsWith({ revoked: [world.portfolios[0]!.certificate], crlNumber: 2n }) });
    expectRejected(await v.validate(await disconnect(world, meter, NOW_MS() + 1n), { sender: SUPPLIER }), 'ERR_COMMAND_SIGNER_REVOKED');
    await v.close();
  });

  it('an expired signer: ERR_COMMAND_SIGNER_EXPIRED', async () => {
    const later = new Date(world.portfolios[0]!.certificate.notAfter.getTime() + 1000);
    const crls = await world.crlsWith({ thisUpdate: new Date(later.getTime() - 3600_000), nextUpdate: new Date(later.getTime() + 3600_000), crlNumber: 3n });
    const { v } = await fresh({ trust: { certificates: world.certificates, crls }, now: () => later, counterClockWindowMs: false });
    expectRejected(await v.validate(await disconnect(world, world.meters[0]!, NOW_MS()), { sender: SUPPLIER }), 'ERR_COMMAND_SIGNER_EXPIRED');
    await v.close();
  });

  it('an expired CRL: ERR_COMMAND_REVOCATION_UNKNOWN, and crlStatus and the event say so', async () => {
    const events: string[] = [];
    const crls = await world.crlsWith({ thisUpdate: new Date(world.now.getTime() - 48 * 3600_000), nextUpdate: new Date(world.now.getTime() - 1000), crlNumber: 4n });
    const { v } = await fresh({ trust: { certificates: world.certificates, crls }, onEvent: (e) => events.push(e.type) });
    expectRejected(await v.validate(await disconnect(world, world.meters[0]!, NOW_MS()), { sender: SUPPLIER }), 'ERR_COMMAND_REVOCATION_UNKNOWN');
    expect(v.crlStatus().map((s) => s.state)).toEqual(['expired', 'expired']);
    expect(events).toContain('crl-expired');
    await v.close();
  });

  it('a CRL close to its nextUpdate fires crl-expiring once per minute, not per command', async () => {
    const events: string[] = [];
    const crls = await world.crlsWith({ nextUpdate: new Date(world.now.getTime() + 3600_000), crlNumber: 5n });
    const { v } = await fresh({ trust: { certificates: world.certificates, crls }, onEvent: (e) => events.push(e.type) });
    for (let i = 0n; i < 3n; i++) expect((await v.validate(await disconnect(world, world.meters[0]!, NOW_MS() + i), { sender: SUPPLIER })).outcome).toBe('accepted');
    expect(events).toEqual(['crl-expiring', 'crl-expiring']);
    expect(v.crlStatus().map((s) => s.state)).toEqual(['expiring', 'expiring']);
    await v.close();
  });

  it("unknown signer (the cell's certificate is not in the trust store): ERR_COMMAND_SIGNER_UNKNOWN", async () => {
    const { v, stores } = await fresh();
    const m = world.meters[0]!;
    await stores.registry.put([{ ...m.record, cells: [{ ...m.record.cells[0]!, ski: '4000000000000001' }, m.record.cells[1]!] }]);
    expectRejected(await v.validate(await disconnect(world, m, NOW_MS()), { sender: SUPPLIER }), 'ERR_COMMAND_SIGNER_UNKNOWN');
    await v.close();
  });

  it("a cell naming a certificate of the wrong key usage: ERR_COMMAND_SIGNER_WRONG_CERTIFICATE", async () => {
    const { v, stores } = await fresh();
    const m = world.meters[0]!;
    await stores.registry.put([{ ...m.record, cells: [{ ...m.record.cells[0]!, ski: world.supplierKa.certificate.subjectKeyId! }, m.record.cells[1]!] }]);
    expectRejected(await v.validate(await disconnect(world, m, NOW_MS()), { sender: SUPPLIER }), 'ERR_COMMAND_SIGNER_WRONG_CERTIFICATE');
    await v.close();
  });

  it("a cell naming another role's certificate: ERR_COMMAND_SIGNER_WRONG_CERTIFICATE", async () => {
    const { v, stores } = await fresh();
    const m = world.meters[0]!;
    await stores.registry.put([{ ...m.record, cells: [{ ...m.record.cells[0]!, ski: world.networkOperator.certificate.subjectKeyId! }, m.record.cells[1]!] }]);
    expectRejected(await v.validate(await disconnect(world, m, NOW_MS()), { sender: SUPPLIER }), 'ERR_COMMAND_SIGNER_WRONG_CERTIFICATE');
    await v.close();
  });

  it("a cell naming another supplier's signing certificate: ERR_COMMAND_SIGNER_WRONG_CERTIFICATE", async () => {
    const { v, stores } = await fresh();
    const m = world.meters[0]!;
    await stores.registry.put([{ ...m.record, cells: [{ ...m.record.cells[0]!, ski: world.otherSupplier.certificate.subjectKeyId! }, m.record.cells[1]!] }]);
    expectRejected(await v.validate(await disconnect(world, m, NOW_MS()), { sender: SUPPLIER }), 'ERR_COMMAND_SIGNER_WRONG_CERTIFICATE');
    await v.close();
  });

  it('a device with no supplier signing cell: ERR_COMMAND_NO_TRUST_ANCHOR', async () => {
    const { v, stores } = await fresh();
    const m = world.meters[0]!;
    await stores.registry.put([{ ...m.record, cells: [m.record.cells[1]!] }]);
    expectRejected(await v.validate(await disconnect(world, m, NOW_MS()), { sender: SUPPLIER }), 'ERR_COMMAND_NO_TRUST_ANCHOR');
    await v.close();
  });

  it('a network operator sending a remote disconnect: ERR_COMMAND_ROLE_NOT_ELIGIBLE', async () => {
    const { v } = await fresh();
    const d = await v.validate(await disconnect(world, world.meters[0]!, NOW_MS(), world.networkOperator.signer, NETWORK_OPERATOR), { sender: NETWORK_OPERATOR });
    expectRejected(d, 'ERR_COMMAND_ROLE_NOT_ELIGIBLE');
    await v.close();
  });

  it("another supplier (not the device's responsible supplier): ERR_COMMAND_NOT_RESPONSIBLE", async () => {
    const { v } = await fresh();
    const d = await v.validate(await disconnect(world, world.meters[0]!, NOW_MS(), world.otherSupplier.signer, OTHER_SUPPLIER), { sender: OTHER_SUPPLIER });
    expectRejected(d, 'ERR_COMMAND_NOT_RESPONSIBLE');
    await v.close();
  });

  it('an originator with no signing certificate: ERR_COMMAND_ORIGINATOR_UNKNOWN', async () => {
    const { v } = await fresh();
    const stranger = '90B3D51F30090000';
    const d = await v.validate(await disconnect(world, world.meters[0]!, NOW_MS(), world.otherSupplier.signer, stranger as never), { sender: stranger });
    expectRejected(d, 'ERR_COMMAND_ORIGINATOR_UNKNOWN');
    await v.close();
  });

  it('sender ≠ originator: ERR_COMMAND_SENDER_MISMATCH (and a sender that is not an EUI-64)', async () => {
    const { v } = await fresh();
    const cmd = await disconnect(world, world.meters[0]!, NOW_MS());
    expectRejected(await v.validate(cmd, { sender: OTHER_SUPPLIER }), 'ERR_COMMAND_SENDER_MISMATCH');
    expectRejected(await v.validate(cmd, { sender: 'nobody' }), 'ERR_COMMAND_SENDER_MISMATCH');
    expectRejected(await v.validate(cmd, undefined as never), 'ERR_COMMAND_SENDER_MISMATCH');
    await v.close();
  });

  it('an unknown message code: ERR_COMMAND_UNKNOWN_MESSAGE_CODE', async () => {
    const { v } = await fresh();
    const m = world.meters[0]!;
    const pre = buildGeneralSigning({ cra: 'command', originatorCounter: NOW_MS(), originator: SUPPLIER, recipient: m.eui, messageCode: 0xfff0, payload: Uint8Array.of(0x01), signatureField: 'empty' });
    expectRejected(await v.validate(await signPreCommand(pre, world.portfolios[0]!.signer), { sender: SUPPLIER }), 'ERR_COMMAND_UNKNOWN_MESSAGE_CODE');
    await v.close();
  });

  it('a critical command without a signature: ERR_COMMAND_SIGNATURE_MISSING', async () => {
    const { v } = await fresh();
    const m = world.meters[0]!;
    expectRejected(await v.validate(buildDisableSupply({ fuel: 'electricity', originator: SUPPLIER, recipient: m.eui, counter: NOW_MS() }), { sender: SUPPLIER }), 'ERR_COMMAND_SIGNATURE_MISSING');
    expectRejected(await v.validate(reconnectUnsigned(m, NOW_MS()), { sender: SUPPLIER }), 'ERR_COMMAND_SIGNATURE_MISSING');
    await v.close();
  });

  it('replay, equal and older counters: ERR_COMMAND_REPLAYED; a newer one passes', async () => {
    const { v } = await fresh();
    const m = world.meters[0]!;
    const c = NOW_MS();
    const first = await disconnect(world, m, c);
    expect((await v.validate(first, { sender: SUPPLIER })).outcome).toBe('accepted');
    expectRejected(await v.validate(first, { sender: SUPPLIER }), 'ERR_COMMAND_REPLAYED');
    expectRejected(await v.validate(await disconnect(world, m, c), { sender: SUPPLIER }), 'ERR_COMMAND_REPLAYED');
    expectRejected(await v.validate(await disconnect(world, m, c - 1n), { sender: SUPPLIER }), 'ERR_COMMAND_REPLAYED');
    expect((await v.validate(await disconnect(world, m, c + 1n), { sender: SUPPLIER })).outcome).toBe('accepted');
    // Counters are per (originator, device): another meter is not affected.
    expect((await v.validate(await disconnect(world, world.meters[2]!, c), { sender: SUPPLIER })).outcome).toBe('accepted');
    await v.close();
  });

  it('a counter further ahead of the clock than the window: ERR_COMMAND_COUNTER_AHEAD', async () => {
    const { v } = await fresh({ counterClockWindowMs: 60_000 });
    const m = world.meters[0]!;
    expectRejected(await v.validate(await disconnect(world, m, NOW_MS() + 60_001n), { sender: SUPPLIER }), 'ERR_COMMAND_COUNTER_AHEAD');
    expect((await v.validate(await disconnect(world, m, NOW_MS() + 60_000n), { sender: SUPPLIER })).outcome).toBe('accepted');
    await v.close();
  });

  it("a payload whose own counter disagrees with the header: ERR_COMMAND_PAYLOAD_COUNTER_MISMATCH (DLMS and CS06)", async () => {
    const { v } = await fresh();
    const m = world.meters[0]!;
    const c = NOW_MS();
    const dlms = buildGeneralSigning({ cra: 'command', originatorCounter: c, originator: SUPPLIER, recipient: m.eui, messageCode: 0x0050, payload: encodeSupplyPayload('ECS43', c + 1n), signatureField: 'empty' });
    expectRejected(await v.validate(await signPreCommand(dlms, world.portfolios[0]!.signer), { sender: SUPPLIER }), 'ERR_COMMAND_PAYLOAD_COUNTER_MISMATCH');
    const cs06 = parseMessage(await activate(world, m, c + 7n, IMAGE));
    const wrong = buildGeneralSigning({ cra: 'command', originatorCounter: c, originator: SUPPLIER, recipient: m.eui, messageCode: 0x0012, payload: cs06.payload, signatureField: 'empty' });
    expectRejected(await v.validate(await signPreCommand(wrong, world.portfolios[0]!.signer), { sender: SUPPLIER }), 'ERR_COMMAND_PAYLOAD_COUNTER_MISMATCH');
    await v.close();
  });

  it('a payload that does not decode as its code requires: ERR_COMMAND_PAYLOAD_MALFORMED (CS06 and DLMS)', async () => {
    const { v, stores } = await fresh();
    const m = world.meters[0]!;
    const c = NOW_MS();
    const sign = (messageCode: number, payload: Uint8Array) =>
      signPreCommand(buildGeneralSigning({ cra: 'command', originatorCounter: c, originator: SUPPLIER, recipient: m.eui, messageCode, payload, signatureField: 'empty' }), world.portfolios[0]!.signer);
    expectRejected(await v.validate(await sign(0x0012, Uint8Array.of(0x30, 0x03, 0x04, 0x01, 0x00)), { sender: SUPPLIER }), 'ERR_COMMAND_PAYLOAD_MALFORMED');
    expectRejected(await v.validate(await sign(0x0050, Uint8Array.of(0xd9, 0x20, 0x00)), { sender: SUPPLIER }), 'ERR_COMMAND_PAYLOAD_MALFORMED');
    expect(await stores.store.lastCounter(SUPPLIER, m.eui)).toBeUndefined();
    await v.close();
  });

  it('a signer certificate with no path to the trusted root: ERR_COMMAND_SIGNER_PATH_INVALID', async () => {
    const foreign = await createHierarchy({ now: () => new Date(world.now.getTime() - 24 * 3600_000) });
    const key = keyPair();
    const cert = await issueOrganisationCertificate({ issuer: foreign.organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', publicKey: key.publicKey, now: () => new Date(world.now.getTime() - 24 * 3600_000) });
    const { v, stores } = await fresh({ trust: { certificates: [...world.certificates, cert], crls: world.crls } });
    const m = world.meters[0]!;
    await stores.registry.put([{ ...m.record, cells: [{ ...m.record.cells[0]!, ski: cert.subjectKeyId! }, m.record.cells[1]!] }]);
    const d = await v.validate(await disconnect(world, m, NOW_MS(), key.signer), { sender: SUPPLIER });
    expectRejected(d, 'ERR_COMMAND_SIGNER_PATH_INVALID');
    // The message names the path finding (its code, then its text).
    expect((d as { message: string }).message).toMatch(/^ERR_[A-Z_]+: \S/);
    await v.close();
  });

  it('an unknown device: ERR_COMMAND_UNKNOWN_DEVICE', async () => {
    const { v, stores } = await fresh();
    const m = world.meters[0]!;
    await stores.registry.remove([m.eui]);
    expectRejected(await v.validate(await disconnect(world, m, NOW_MS()), { sender: SUPPLIER }), 'ERR_COMMAND_UNKNOWN_DEVICE');
    await v.close();
  });

  it('a response, an alert or an already MAC\'d frame: ERR_COMMAND_NOT_A_COMMAND', async () => {
    const { v } = await fresh();
    const m = world.meters[0]!;
    for (const cra of ['response', 'alert'] as const) {
      const fields = { cra, originatorCounter: NOW_MS(), originator: SUPPLIER, recipient: m.eui, messageCode: 0x0050, payload: encodeSupplyPayload('ECS43', NOW_MS()) };
      const unsigned = parseMessage(buildGeneralSigning({ ...fields, signatureField: 'absent' }));
      const signature = await world.portfolios[0]!.signer.sign(unsigned.bytes.subarray(unsigned.signedRange.start, unsigned.signedRange.end));
      expectRejected(await v.validate(buildGeneralSigning({ ...fields, signature }), { sender: SUPPLIER }), 'ERR_COMMAND_NOT_A_COMMAND');
    }
    const signed = await disconnect(world, m, NOW_MS());
    expectRejected(await v.validate(buildGeneralCiphering(signed, new Uint8Array(12)), { sender: SUPPLIER }), 'ERR_COMMAND_NOT_A_COMMAND');
    await v.close();
  });

  it('an unapproved, a revoked and an unknown-model firmware image: ERR_FIRMWARE_NOT_APPROVED', async () => {
    const { v, stores } = await fresh();
    const m = world.meters[0]!;
    expectRejected(await v.validate(await activate(world, m, NOW_MS(), UNKNOWN_IMAGE), { sender: SUPPLIER }), 'ERR_FIRMWARE_NOT_APPROVED');
    expectRejected(await v.validate(await activate(world, m, NOW_MS(), REVOKED_IMAGE), { sender: SUPPLIER }), 'ERR_FIRMWARE_NOT_APPROVED');
    // Revoking an approved image takes effect on the next command.
    await stores.firmware.revoke(MODEL, IMAGE, world.now.getTime(), 'CVE');
    expectRejected(await v.validate(await activate(world, m, NOW_MS(), IMAGE), { sender: SUPPLIER }), 'ERR_FIRMWARE_NOT_APPROVED');
    const { model: _model, ...noModel } = m.record;
    await stores.registry.put([noModel]);
    expectRejected(await v.validate(await activate(world, m, NOW_MS(), UNKNOWN_IMAGE), { sender: SUPPLIER }), 'ERR_FIRMWARE_NOT_APPROVED');
    await v.close();
  });

  it('over the anomaly threshold: quarantined (counter not advanced); release re-checks and MACs; discard is final', async () => {
    const { v, stores } = await fresh({ anomalyThreshold: (_u, code) => (code === 0x0050 ? { limit: 2, windowMs: 3600_000 } : undefined) });
    const c = NOW_MS();
    const ds = await Promise.all([0, 1, 2, 3].map((i) => disconnect(world, world.meters[i]!, c)));
    const decisions = [];
    for (const d of ds) decisions.push(await v.validate(d, { sender: SUPPLIER }));
    expect(decisions.map((d) => d.outcome)).toEqual(['accepted', 'accepted', 'quarantined', 'quarantined']);
    const q = decisions[2] as Extract<Decision, { outcome: 'quarantined' }>;
    expect(q.code).toBe('ERR_COMMAND_QUARANTINED');
    expect(q.count).toBe(2);
    expect(await stores.store.lastCounter(SUPPLIER, world.meters[2]!.eui)).toBeUndefined();
    const released = await v.release(q.quarantineId, 'alice');
    expect(released.outcome).toBe('accepted');
    expect(meterFor(2).receive((released as { frame: Uint8Array }).frame).accepted).toBe(true);
    expectRejected(await v.release(q.quarantineId, 'alice'), 'ERR_QUARANTINE_NOT_HELD');
    const q2 = decisions[3] as Extract<Decision, { outcome: 'quarantined' }>;
    expect(await v.discard(q2.quarantineId, 'bob')).toBe(true);
    expect(await v.discard(q2.quarantineId, 'bob')).toBe(false);
    expectRejected(await v.release(q2.quarantineId, 'alice'), 'ERR_QUARANTINE_NOT_HELD');
    expect(v.stats()).toEqual({ accepted: 3, quarantined: 2, rejected: { ERR_QUARANTINE_NOT_HELD: 2 } });
    await v.close();
  });

  it('truncated and oversized input: ERR_GBCS_MALFORMED and ERR_COMMAND_TOO_LARGE', async () => {
    const { v } = await fresh();
    const good = await disconnect(world, world.meters[0]!, NOW_MS());
    for (const n of [0, 1, 5, 20, good.length - 1]) expectRejected(await v.validate(good.subarray(0, n), { sender: SUPPLIER }), 'ERR_GBCS_MALFORMED');
    expectRejected(await v.validate(new Uint8Array(64 * 1024 + 1), { sender: SUPPLIER }), 'ERR_COMMAND_TOO_LARGE');
    expectRejected(await v.validate('DF' as never, { sender: SUPPLIER }), 'ERR_GBCS_MALFORMED');
    await v.close();
  });

  it('a counter repeated within one batch is accepted once', async () => {
    const { v } = await fresh();
    const cmd = await disconnect(world, world.meters[0]!, NOW_MS());
    const ds = await v.validateBatch([
      { bytes: cmd, sender: SUPPLIER },
      { bytes: cmd, sender: SUPPLIER },
      { bytes: await disconnect(world, world.meters[0]!, NOW_MS() - 5n), sender: SUPPLIER },
    ]);
    expect(ds.map((d) => d.outcome)).toEqual(['accepted', 'rejected', 'rejected']);
    expect(ds.slice(1).map((d) => (d as { code: string }).code)).toEqual(['ERR_COMMAND_REPLAYED', 'ERR_COMMAND_REPLAYED']);
    await v.close();
  });

  it('the ACB key agreement failing: ERR_COMMAND_COUNTER_SIGN_FAILED, nothing committed', async () => {
    const { v, stores } = await fresh({
      acb: { keyId: 'acb', keyAgreement: { publicKey: new Uint8Array(65), deriveSharedSecret: () => Promise.reject(new Error('HSM gone')) } },
    });
    const m = world.meters[0]!;
    expectRejected(await v.validate(await disconnect(world, m, NOW_MS()), { sender: SUPPLIER }), 'ERR_COMMAND_COUNTER_SIGN_FAILED');
    expect(await stores.store.lastCounter(SUPPLIER, m.eui)).toBeUndefined();
    await v.close();
  });

  it('a device without a usable key-agreement certificate: ERR_COMMAND_DEVICE_KEY_UNUSABLE', async () => {
    const { v, stores } = await fresh();
    const m = world.meters[0]!;
    const { keyAgreementCertificate: _ka, ...noKa } = m.record;
    await stores.registry.put([noKa]);
    expectRejected(await v.validate(await disconnect(world, m, NOW_MS()), { sender: SUPPLIER }), 'ERR_COMMAND_DEVICE_KEY_UNUSABLE');
    await stores.registry.put([{ ...m.record, keyAgreementCertificate: world.meters[1]!.kaCertificate.der }]);
    expectRejected(await v.validate(await disconnect(world, m, NOW_MS()), { sender: SUPPLIER }), 'ERR_COMMAND_DEVICE_KEY_UNUSABLE');
    // Its own certificate, but the key's point moved off the curve (the ECDH never sees it).
    const der = Uint8Array.from(m.kaCertificate.der);
    const at = Buffer.from(der).indexOf(Buffer.from(m.kaCertificate.publicKeyBytes));
    expect(at).toBeGreaterThan(0);
    der[at + 64] = (der[at + 64] as number) ^ 0x01;
    await stores.registry.put([{ ...m.record, keyAgreementCertificate: der }]);
    const offCurve = await v.validate(await disconnect(world, m, NOW_MS()), { sender: SUPPLIER });
    expectRejected(offCurve, 'ERR_COMMAND_DEVICE_KEY_UNUSABLE');
    expect(offCurve.outcome === 'rejected' && offCurve.message).toMatch(/P-256 point/);
    expect(await stores.store.lastCounter(SUPPLIER, m.eui)).toBeUndefined();
    await v.close();
  });
});

describe('the decision log', () => {
  it('records every decision, verifies with the key and the schema, and a rejection moves no counter', async () => {
    const dir = tempDir();
    const { v, stores } = await fresh({ dir });
    const m = world.meters[0]!;
    const c = NOW_MS();
    expectRejected(await v.validate(await disconnect(world, m, c, world.portfolios[1]!.signer), { sender: SUPPLIER }), 'ERR_COMMAND_PORTFOLIO_MISMATCH');
    expect(await stores.store.lastCounter(SUPPLIER, m.eui)).toBeUndefined();
    expect((await v.validate(await disconnect(world, m, c), { sender: SUPPLIER })).outcome).toBe('accepted');
    const path = v.logHead().path;
    await v.close();
    const result = await verifyAuditLog(path, { key: LOG_KEY, schema: DECISION_LOG_SCHEMA });
    expect(result.ok).toBe(true);
    expect(result.count).toBe(2);
  });

  it('refuses to start when the state store is behind the log (a restored copy): ERR_VALIDATOR_STATE_BEHIND', async () => {
    const dir = tempDir();
    const stores = await memoryStores(world);
    const v = await openValidator(world, stores, { dir });
    expect((await v.validate(await disconnect(world, world.meters[0]!, NOW_MS()), { sender: SUPPLIER })).outcome).toBe('accepted');
    await v.close();
    // A fresh (empty) store stands for a backup from before that commit.
    await expect(openValidator(world, { ...stores, store: new MemoryStateStore() }, { dir })).rejects.toMatchObject({ code: 'ERR_VALIDATOR_STATE_BEHIND' });
    // The store the log belongs to opens.
    const again = await openValidator(world, stores, { dir });
    expectRejected(await again.validate(await disconnect(world, world.meters[0]!, NOW_MS()), { sender: SUPPLIER }), 'ERR_COMMAND_REPLAYED');
    await again.close();
  });

  it('an empty registry object is not confused with a device', async () => {
    const stores = { ...(await memoryStores(world)), registry: new MemoryDeviceRegistry() };
    const v = await openValidator(world, stores);
    expectRejected(await v.validate(await disconnect(world, world.meters[0]!, NOW_MS()), { sender: SUPPLIER }), 'ERR_COMMAND_UNKNOWN_DEVICE');
    await v.close();
  });
});

describe('options', () => {
  it('refuses bad options with ERR_INVALID_ARGUMENT', async () => {
    const stores = await memoryStores(world);
    const bad = [
      { log: { dir: tempDir(), id: 'bad id', key: LOG_KEY } },
      { log: { dir: tempDir(), id: 'ok', key: new Uint8Array(16) } },
      { counterClockWindowMs: -1 },
      { sharedSecretCache: { maxEntries: 0 } },
      { acb: { keyId: '', keyAgreement: null as never } },
      { anomalyThreshold: { limit: 1, windowMs: 1000 } },
      { now: new Date() },
    ];
    for (const b of bad) await expect(openValidator(world, stores, b as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  it('a closed validator refuses every call with ERR_VALIDATOR_CLOSED', async () => {
    const { v } = await fresh();
    await v.close();
    await v.close();
    const cmd = await disconnect(world, world.meters[0]!, NOW_MS());
    await expect(v.validate(cmd, { sender: SUPPLIER })).rejects.toMatchObject({ code: 'ERR_VALIDATOR_CLOSED' });
    await expect(v.validateBatch([])).rejects.toMatchObject({ code: 'ERR_VALIDATOR_CLOSED' });
    await expect(v.release('00000000-0000-4000-8000-000000000000', 'alice')).rejects.toMatchObject({ code: 'ERR_VALIDATOR_CLOSED' });
    expect(() => v.updateTrust({ certificates: world.certificates, crls: world.crls })).toThrow(expect.objectContaining({ code: 'ERR_VALIDATOR_CLOSED' }));
  });
});

describe('one decision log per process', () => {
  it('a second validator writing the same log id is refused by the store (ERR_STORE_LOG_CONFLICT) and stays refused; the first goes on', async () => {
    const stores = await memoryStores(world);
    const a = await openValidator(world, stores, { id: 'shared' });
    const b = await openValidator(world, stores, { id: 'shared' });
    const c = NOW_MS();
    expect((await a.validate(await disconnect(world, world.meters[0]!, c), { sender: SUPPLIER })).outcome).toBe('accepted');
    expectRejected(await b.validate(await disconnect(world, world.meters[1]!, c), { sender: SUPPLIER }), 'ERR_STORE_LOG_CONFLICT');
    expectRejected(await b.validate(await disconnect(world, world.meters[2]!, c), { sender: SUPPLIER }), 'ERR_STORE_LOG_CONFLICT');
    expect(await stores.store.lastCounter(SUPPLIER, world.meters[1]!.eui)).toBeUndefined();
    expect((await a.validate(await disconnect(world, world.meters[1]!, c), { sender: SUPPLIER })).outcome).toBe('accepted');
    await a.close();
    await b.close();
  });

  it('a discard whose log record cannot be committed throws to the operator and answers every other command of its group', async () => {
    const base = await memoryStores(world);
    let down = false;
    const store = new Proxy(base.store, {
      get(target, prop, receiver) {
        if (prop === 'commit') {
          return (...args: Parameters<typeof target.commit>) =>
            down ? Promise.reject(new SmkiError('ERR_STORE_UNAVAILABLE', 'the store is down (test)', {})) : target.commit(...args);
        }
        const value = Reflect.get(target, prop, receiver) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const v = await openValidator(world, { ...base, store }, { anomalyThreshold: () => ({ limit: 0, windowMs: 60_000 }) });
    const q = await v.validate(await disconnect(world, world.meters[0]!, NOW_MS()), { sender: SUPPLIER });
    expect(q.outcome).toBe('quarantined');
    down = true;
    const [discarded, other] = await Promise.allSettled([
      v.discard((q as { quarantineId: string }).quarantineId, 'bob'),
      v.validate(await disconnect(world, world.meters[1]!, NOW_MS()), { sender: SUPPLIER }),
    ]);
    expect(discarded.status).toBe('rejected');
    expect(other.status).toBe('fulfilled');
    expect((other as PromiseFulfilledResult<Decision>).value.outcome).toBe('rejected');
    down = false;
    await v.close();
  });
});
