// The meter side of `smki demo`'s recovery act (src/internal/demo-meter.ts): a CS02b mode 8 command
// from the Recovery party is applied only when every check passes (GBCS CS02b; docs/domain.md §4,
// §9: the ACB MAC with the meter's key-agreement key, authorised by the recovery cell, signed with its key, counter above the floor, the new
// certificate chaining to the root cell through the certification path), and the meter's answer
// is a device-signed response with one outcome per replaced cell; a refusal changes nothing.
import { createHash, generateKeyPairSync } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createKeySigner, parseEui64, type Signer } from '@smki/core';
import { buildUpdateSecurityCredentials, decodeUpdateSecurityCredentialsResponse, parseMessage, signedBytes, signPreCommand, verifySignature, wrapWithMac } from '@smki/gbcs';
import { messageListDigest, operationHash } from '@smki/keystore';
import { createHierarchy, issueDeviceCertificate, issueOrganisationCertificate, type SmkiCertificate, type SmkiHierarchy } from '@smki/pki';
import { DemoMeter } from '../src/internal/demo-meter.js';
import { checkProposal } from '../src/internal/recovery-party.js';

const SUPPLIER = parseEui64('90B3D51F30010000');
const RECOVERY = parseEui64('90B3D51F30000001');
const METER = parseEui64('00DB123400000001');
const OTHER = parseEui64('00DB123400000002');
const SUPPLIER_DS = { role: 2, keyUsage: 'digitalSignature' } as const;
const RECOVERY_DS = { role: 1, keyUsage: 'digitalSignature' } as const;

let pki: SmkiHierarchy;
let foreign: SmkiHierarchy;
let oldCert: SmkiCertificate;
let newCert: SmkiCertificate;
let foreignCert: SmkiCertificate;
let recoveryCert: SmkiCertificate;
let recovery: Signer;
let supplierOld: Signer;
let deviceDs: SmkiCertificate;
const meterKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const meterKa = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const otherKa = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const acbKa = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const acbPublicKey = new Uint8Array(acbKa.publicKey.export({ format: 'der', type: 'spki' }).subarray(-65));

/** The DCC's delivery of a signed command: the ACB's MAC for `to` (default this meter's key-agreement key). */
const frame = (signed: Uint8Array, to = meterKa.publicKey) => wrapWithMac(signed, { privateKey: acbKa.privateKey, publicKey: to });

const orgCert = async (h: SmkiHierarchy, role: number, entityId: string, publicKey: import('node:crypto').KeyObject) =>
  issueOrganisationCertificate({ issuer: h.organisationCa, role, entityId, keyUsage: 'digitalSignature', publicKey });

beforeAll(async () => {
  pki = await createHierarchy();
  foreign = await createHierarchy();
  const keys = Array.from({ length: 4 }, () => generateKeyPairSync('ec', { namedCurve: 'P-256' }));
  oldCert = await orgCert(pki, 2, SUPPLIER, keys[0]!.publicKey);
  supplierOld = createKeySigner(keys[0]!.privateKey);
  newCert = await orgCert(pki, 2, SUPPLIER, keys[1]!.publicKey);
  foreignCert = await orgCert(foreign, 2, SUPPLIER, keys[1]!.publicKey);
  recoveryCert = await orgCert(pki, 1, RECOVERY, keys[2]!.publicKey);
  recovery = createKeySigner(keys[2]!.privateKey);
  deviceDs = await issueDeviceCertificate({ issuer: pki.deviceCa, entityId: METER, keyUsage: 'digitalSignature', publicKey: meterKey.publicKey });
}, 60_000);

function meter(): DemoMeter {
  const m = new DemoMeter(METER, { ds: meterKey.privateKey, ka: meterKa.privateKey }, { root: pki.root.certificate, acbPublicKey });
  m.install(SUPPLIER_DS, oldCert);
  m.install(RECOVERY_DS, recoveryCert);
  return m;
}

/** A mode 8 command as @smki/recovery builds it, signed by `signer` (not yet counter-signed). */
async function mode8(o: { counter?: bigint; recipient?: string; originator?: string; cert?: SmkiCertificate; path?: SmkiCertificate; cell?: { role: number; keyUsage: 'digitalSignature' }; signer?: Signer } = {}): Promise<Uint8Array> {
  const counter = o.counter ?? 1000n;
  const pre = buildUpdateSecurityCredentials({
    originator: o.originator ?? RECOVERY,
    recipient: o.recipient ?? METER,
    counter,
    mode: 8,
    authorisingCell: RECOVERY_DS,
    replacements: [{ certificate: (o.cert ?? newCert).der, cell: o.cell ?? SUPPLIER_DS }],
    certificationPath: [(o.path ?? pki.organisationCa.certificate).der],
    otherRoleFloors: [2, 3, 4, 5].map((role) => ({ role, floor: 0n })),
  });
  return signPreCommand(pre, o.signer ?? recovery);
}

describe('the demo meter applies CS02b mode 8 from the Recovery party (GBCS CS02b; docs/domain.md §9)', () => {
  it('a command the Recovery party signed: the supplier cell takes the new key, and the answer is a response signed with the meter’s DS key, one outcome per cell', async () => {
    const m = meter();
    const a = m.applyCredentials(frame(await mode8()));
    expect(a.ok).toBe(true);
    if (!a.ok) return;
    expect(m.keyIdIn(SUPPLIER_DS)).toBe(newCert.subjectKeyId);
    const msg = parseMessage(a.response);
    expect(msg).toMatchObject({ cra: 'response', originator: METER, recipient: RECOVERY, messageCode: 0x0108, originatorCounter: 1000n });
    expect(verifySignature(msg, deviceDs.publicKey!)).toBe(true);
    const body = decodeUpdateSecurityCredentialsResponse(msg.payload);
    expect(body.outcome).toMatchObject({ sequenceNumber: 1000n, mode: 8 });
    expect(body.outcome!.results).toMatchObject([{ cell: SUPPLIER_DS, status: 0, oldEntityId: SUPPLIER, oldKeyId: oldCert.subjectKeyId, newEntityId: SUPPLIER, newKeyId: newCert.subjectKeyId }]);
    // The same command again: its counter is at the recovery floor now.
    const again = m.applyCredentials(frame(await mode8()));
    expect(again).toEqual({ ok: false, reason: 'the counter is not above the recovery floor' });
  });

  it.each([
    ['without the ACB MAC (the signed command alone)', async () => mode8(), 'not a frame with the ACB MAC'],
    ['with the ACB MAC made for another meter', async () => frame(await mode8(), otherKa.publicKey), 'the ACB MAC does not verify'],
    ['signed with the stolen supplier key, not the recovery cell’s', () => mode8({ signer: supplierOld }), "the signature does not verify with the recovery cell's key"],
    ['for another meter', () => mode8({ recipient: OTHER }), 'not for this meter'],
    ['from a party not in the recovery cell', () => mode8({ originator: '90B3D51F30000009' }), 'the originator is not the party in the recovery cell'],
    ['a new certificate from another hierarchy', () => mode8({ cert: foreignCert, path: foreign.organisationCa.certificate }), 'the issuing CA is not signed by the root in the root cell'],
    ['a new certificate the path’s CA did not sign', () => mode8({ cert: foreignCert }), 'a new certificate is not signed by the issuing CA'],
    ['replacing the recovery cell itself', () => mode8({ cell: RECOVERY_DS, cert: recoveryCert }), 'cell 1/digitalSignature/management is not one this command may replace here'],
  ])('refused, nothing changed: %s', async (what, make, reason) => {
    const m = meter();
    const bytes = await make();
    expect(m.applyCredentials(what.includes('ACB MAC') ? bytes : frame(bytes))).toEqual({ ok: false, reason });
    expect(m.keyIdIn(SUPPLIER_DS)).toBe(oldCert.subjectKeyId);
    expect(m.keyIdIn(RECOVERY_DS)).toBe(recoveryCert.subjectKeyId);
    // Then the genuine command still applies (the refusal moved no floor).
    expect(m.applyCredentials(frame(await mode8())).ok).toBe(true);
  });
});

describe("an approver's check of a Recovery party batch before it approves (src/internal/recovery-party.ts checkProposal; docs/keystore-estate.md §2)", () => {
  async function proposal(commands: { device: string; counter: bigint; command: Uint8Array }[], over: Partial<{ organisation: string; operationHash: string; messages: Uint8Array[] }> = {}) {
    const messages = (over.messages ?? commands.map((c) => c.command)).map((b, i) => ({ device: commands[i]!.device, sha256: createHash('sha256').update(signedBytes(parseMessage(b))).digest('hex').toUpperCase() }));
    const digest = messageListDigest(messages);
    const operation = { op: 'session.sign' as const, organisation: parseEui64(over.organisation ?? RECOVERY), portfolioIds: ['recovery'], count: digest.count, messagesSha256: digest.listSha256 };
    return { storeId: 'S', proposalId: 'P', operationHash: over.operationHash ?? operationHash(operation), operation, commands: commands.map((c) => ({ ...c, device: parseEui64(c.device) })) };
  }

  it('passes the exact batch; refuses another command than the session binds, another organisation, and an operation hash that is not its operation’s', async () => {
    const a = { device: METER, counter: 1000n, command: await mode8() };
    const b = { device: METER, counter: 1001n, command: await mode8({ counter: 1001n }) };
    const exact = await proposal([a]);
    expect(() => checkProposal(exact as never, RECOVERY)).not.toThrow();
    const expectMismatch = async (p: Promise<unknown>) => {
      const value = await p;
      let code: string | undefined;
      try {
        checkProposal(value as never, RECOVERY);
      } catch (e) {
        code = (e as { code?: string }).code;
      }
      expect(code).toBe('ERR_OPERATION_MISMATCH');
    };
    // The approver is shown command b, the session is bound to a.
    await expectMismatch(proposal([b], { messages: [a.command] }));
    await expectMismatch(proposal([a], { organisation: SUPPLIER }));
    await expectMismatch(proposal([a], { operationHash: '00'.repeat(32) }));
    // A command that is not to the meter it is shown for.
    await expectMismatch(proposal([{ ...a, device: OTHER }], { messages: [a.command] }));
  });
});
