// CS02b Update Security Credentials through the validator (docs/domain.md §9, §10; GBCS 5.4a for
// critical commands, RFC 5280 §6.1 for the replacement certificates' paths): the command is
// checked like any critical command plus its own rules, each refusal with its own code, and a
// device's verified response or alert 0x00CB moves the device's cells in the registry.
// Real certificates (pki), real ECDSA, the validator's world fixture.
import { sign as nodeSign } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { isSmkiError, parseEui64, type Eui64 } from '@smki/core';
import {
  buildGeneralSigning,
  buildUpdateSecurityCredentials,
  encodeCredentialsAlert,
  encodeUpdateSecurityCredentialsPayload,
  encodeUpdateSecurityCredentialsResponse,
  parseMessage,
  signPreCommand,
  signedBytes,
  type CellOutcome,
  type TrustAnchorCell,
} from '@smki/gbcs';
import { createHierarchy, issueDeviceCertificate, issueOrganisationCertificate, type SmkiCertificate } from '@smki/pki';
import type { DeviceRecord } from '@smki/store';
import type { Validator } from '../src/index.js';
import { SUPPLIER, buildWorld, keyPair, memoryStores, openValidator, type KeyPair, type Party, type Stores, type World } from './_world.js';

const RECOVERY = parseEui64('90B3D51F30000001');
const DS: TrustAnchorCell = { role: 2, keyUsage: 'digitalSignature' };
const KA: TrustAnchorCell = { role: 2, keyUsage: 'keyAgreement' };

let world: World;
let recovery: Party;
let newDs: Party;
let newKa: Party;
let newNoDs: Party;
let otherEntityDs: Party;
let revokedDs: Party;
let foreignDs: Party;
let deviceDs: KeyPair;
let deviceDsCert: SmkiCertificate;
let counter = 0n;

const clock = () => new Date(world.now.getTime() - 24 * 3600_000);
const next = (): bigint => (counter += 1n) + BigInt(world.now.getTime()) - 1_000_000n;

beforeAll(async () => {
  world = await buildWorld({ meters: 2, portfolios: 2 });
  const org = async (entityId: string, role: number, keyUsage: 'digitalSignature' | 'keyAgreement', issuer = world.hierarchy.organisationCa): Promise<Party> => {
    const k = keyPair();
    return { ...k, certificate: await issueOrganisationCertificate({ issuer, role, entityId, keyUsage, publicKey: k.publicKey, now: clock }) };
  };
  recovery = await org(RECOVERY, 1, 'digitalSignature');
  newDs = await org(SUPPLIER, 2, 'digitalSignature');
  newKa = await org(SUPPLIER, 2, 'keyAgreement');
  newNoDs = await org(world.networkOperator.certificate.entityId!, 3, 'digitalSignature');
  otherEntityDs = await org(world.otherSupplier.certificate.entityId!, 2, 'digitalSignature');
  revokedDs = await org(SUPPLIER, 2, 'digitalSignature');
  const foreign = await createHierarchy({ now: clock });
  foreignDs = await org(SUPPLIER, 2, 'digitalSignature', foreign.organisationCa);
  deviceDs = keyPair();
  deviceDsCert = await issueDeviceCertificate({ issuer: world.hierarchy.deviceCa, entityId: world.meters[0]!.eui, keyUsage: 'digitalSignature', publicKey: deviceDs.publicKey, now: clock });
});

const meter = () => world.meters[0]!;
const oldDs = () => world.portfolios[0]!;

/** The meter with its DS certificate, its supplier KA cell and a recovery cell. */
function record(): DeviceRecord {
  const m = meter();
  return {
    ...m.record,
    cells: [
      ...m.record.cells,
      { role: 2, keyUsage: 'keyAgreement', cellUsage: 'management', ski: world.supplierKa.certificate.subjectKeyId!, entity: SUPPLIER },
      { role: 1, keyUsage: 'digitalSignature', cellUsage: 'management', ski: recovery.certificate.subjectKeyId!, entity: RECOVERY },
    ],
    digitalSignatureCertificate: deviceDsCert.der,
  };
}

async function fresh(revoked: readonly SmkiCertificate[] = []): Promise<{ v: Validator; stores: Stores }> {
  const stores = await memoryStores(world);
  await stores.registry.put([record()]);
  const crls = revoked.length > 0 ? await world.crlsWith({ revoked }) : world.crls;
  const certificates = [...world.certificates, recovery, newDs, newKa, newNoDs, otherEntityDs, revokedDs].map((p) => ('certificate' in p ? p.certificate : p));
  const v = await openValidator(world, stores, { trust: { certificates, crls } });
  return { v, stores };
}

interface Cs02bOptions {
  readonly mode?: number;
  readonly originator?: Eui64;
  readonly signer?: KeyPair;
  readonly replacements?: { certificate: SmkiCertificate; cell: TrustAnchorCell }[];
  readonly executionTime?: Date;
  readonly counter?: bigint;
}

/** A signed CS02b command (default: mode 2, the supplier rotates its DS and KA cells). */
async function cs02b(o: Cs02bOptions = {}): Promise<Uint8Array> {
  const mode = o.mode ?? 2;
  const authorising = mode === 8 ? 1 : mode === 3 ? 3 : 2;
  const pre = buildUpdateSecurityCredentials({
    originator: o.originator ?? SUPPLIER,
    recipient: meter().eui,
    counter: o.counter ?? next(),
    mode,
    authorisingCell: { role: authorising, keyUsage: 'digitalSignature' },
    replacements: o.replacements ?? [
      { certificate: newDs.certificate, cell: DS },
      { certificate: newKa.certificate, cell: KA },
    ],
    certificationPath: [world.hierarchy.organisationCa.certificate],
    ...(o.executionTime ? { executionTime: o.executionTime } : {}),
  });
  return signPreCommand(pre, (o.signer ?? oldDs()).signer);
}

/** A device-signed answer: a response (CRA 02) or an alert 0x00CB (CRA 03). */
function deviceSigned(cra: 'response' | 'alert', command: Uint8Array, payload: Uint8Array, key: KeyPair = deviceDs): Uint8Array {
  const c = parseMessage(command);
  const pre = buildGeneralSigning({
    cra,
    originatorCounter: cra === 'response' ? c.originatorCounter : 7n,
    originator: c.recipient,
    recipient: c.originator,
    messageCode: cra === 'response' ? c.messageCode : 0x00cb,
    payload,
    signatureField: 'empty',
  });
  const m = parseMessage(pre);
  const sig = nodeSign('sha256', signedBytes(m), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  const out = new Uint8Array(pre.length - 1 + 65);
  out.set(pre.subarray(0, pre.length - 1));
  out[pre.length - 1] = 0x40;
  out.set(sig, pre.length);
  return out;
}

function outcome(command: Uint8Array, statuses: readonly number[], certs: readonly SmkiCertificate[] = [newDs.certificate, newKa.certificate], olds: readonly SmkiCertificate[] = [oldDs().certificate, world.supplierKa.certificate]) {
  const c = parseMessage(command);
  const cells = [DS, KA];
  const results: CellOutcome[] = statuses.map((status, i) => ({
    cell: { ...cells[i]!, cellUsage: 'management' },
    status,
    oldEntityId: SUPPLIER,
    oldKeyId: olds[i]!.subjectKeyId!,
    newEntityId: status === 0 ? (certs[i]!.entityId as Eui64) : SUPPLIER,
    newKeyId: status === 0 ? certs[i]!.subjectKeyId! : olds[i]!.subjectKeyId!,
  }));
  return { sequenceNumber: c.originatorCounter, mode: c.messageCode - 0x100, floorChanges: [], results };
}

const response = (command: Uint8Array, statuses: readonly number[] = [0, 0]) => deviceSigned('response', command, encodeUpdateSecurityCredentialsResponse({ outcome: outcome(command, statuses) }, { lengths: 'device' }));

async function codeOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => 'resolved',
    (e: unknown) => (isSmkiError(e) ? e.code : e),
  );
}

async function cellSki(stores: Stores, role: number, keyUsage: string): Promise<string | undefined> {
  return (await stores.registry.device(meter().eui))?.cells.find((c) => c.role === role && c.keyUsage === keyUsage)?.ski;
}

describe('CS02b commands (docs/domain.md §9, §10)', () => {
  it('a supplier mode 2 rotation signed with the key the meter trusts passes as critical and gets its MAC', async () => {
    const { v } = await fresh();
    const d = await v.validate(await cs02b(), { sender: SUPPLIER });
    expect(d.outcome, JSON.stringify(d, (_k, x) => (typeof x === 'bigint' ? String(x) : x))).toBe('accepted');
    if (d.outcome !== 'accepted') return;
    expect(d.critical).toBe(true);
    expect(d.role).toBe(2);
    expect(d.signerSerial).toBe(oldDs().certificate.serialNumber);
    expect(parseMessage(d.frame).frame).toBe('ciphered');
    await v.close();
  });

  it('a mode 8 from the recovery party, signed with the key in the meter\'s recovery cell, passes', async () => {
    const { v } = await fresh();
    const d = await v.validate(await cs02b({ mode: 8, originator: RECOVERY, signer: recovery }), { sender: RECOVERY });
    expect(d.outcome).toBe('accepted');
    expect(d.outcome === 'accepted' && d.role).toBe(1);
    await v.close();
  });

  const refusals: [string, () => Promise<{ bytes: Uint8Array; sender: Eui64; revoked?: SmkiCertificate[] }>, string, string][] = [
    ['a supplier sending mode 8 (recovery only)', async () => ({ bytes: await cs02b({ mode: 8 }), sender: SUPPLIER }), 'ERR_COMMAND_CREDENTIALS_WRONG_ROLE', 'classify'],
    ['a supplier sending mode 3 (network operator by network operator)', async () => ({ bytes: await cs02b({ mode: 3, replacements: [{ certificate: newNoDs.certificate, cell: { role: 3, keyUsage: 'digitalSignature' } }] }), sender: SUPPLIER }), 'ERR_COMMAND_CREDENTIALS_WRONG_ROLE', 'classify'],
    [
      'mode 4 (the ACB\'s own) from a User',
      async () => {
        const pre = buildGeneralSigning({
          cra: 'command', originatorCounter: next(), originator: SUPPLIER, recipient: meter().eui, messageCode: 0x0104, signatureField: 'empty',
          payload: encodeUpdateSecurityCredentialsPayload({ mode: 4, sequenceNumber: counter, replacements: [], certificationPath: [] }),
        });
        return { bytes: await signPreCommand(pre, oldDs().signer), sender: SUPPLIER };
      },
      'ERR_COMMAND_CREDENTIALS_WRONG_ROLE',
      'classify',
    ],
    [
      'mode 9 (no public layout)',
      async () => {
        const pre = buildGeneralSigning({ cra: 'command', originatorCounter: next(), originator: SUPPLIER, recipient: meter().eui, messageCode: 0x0109, signatureField: 'empty', payload: Uint8Array.of(0x30, 0x00) });
        return { bytes: await signPreCommand(pre, oldDs().signer), sender: SUPPLIER };
      },
      'ERR_GBCS_CREDENTIALS_MODE_UNSUPPORTED',
      'classify',
    ],
    [
      'an unsigned mode 2',
      async () => {
        const c = parseMessage(await cs02b());
        const pre = buildGeneralSigning({ cra: 'command', originatorCounter: c.originatorCounter, originator: SUPPLIER, recipient: meter().eui, messageCode: 0x0102, payload: c.payload, signatureField: 'empty' });
        return { bytes: pre, sender: SUPPLIER };
      },
      'ERR_COMMAND_SIGNATURE_MISSING',
      'classify',
    ],
    [
      'an unsigned mode 8 from the recovery party (critical whatever the catalogue says of role 1)',
      async () => {
        const c = parseMessage(await cs02b({ mode: 8, originator: RECOVERY, signer: recovery }));
        const pre = buildGeneralSigning({ cra: 'command', originatorCounter: c.originatorCounter, originator: RECOVERY, recipient: meter().eui, messageCode: 0x0108, payload: c.payload, signatureField: 'empty' });
        return { bytes: pre, sender: RECOVERY };
      },
      'ERR_COMMAND_SIGNATURE_MISSING',
      'classify',
    ],
    ['a mode 2 signed with the supplier\'s other portfolio key', async () => ({ bytes: await cs02b({ signer: world.portfolios[1]! }), sender: SUPPLIER }), 'ERR_COMMAND_PORTFOLIO_MISMATCH', 'signature'],
    [
      '[3] is not the header\'s counter',
      async () => {
        const c = next();
        const payload = encodeUpdateSecurityCredentialsPayload({
          mode: 2, disapplyTimeChecks: true, authorisingCell: DS, sequenceNumber: c - 1n,
          replacements: [{ certificate: newDs.certificate.der, cell: DS }], certificationPath: [world.hierarchy.organisationCa.certificate.der],
        });
        const pre = buildGeneralSigning({ cra: 'command', originatorCounter: c, originator: SUPPLIER, recipient: meter().eui, messageCode: 0x0102, payload, signatureField: 'empty' });
        return { bytes: await signPreCommand(pre, oldDs().signer), sender: SUPPLIER };
      },
      'ERR_GBCS_CREDENTIALS_COUNTER_MISMATCH',
      'credentials',
    ],
    [
      'a payload that does not decode',
      async () => {
        const pre = buildGeneralSigning({ cra: 'command', originatorCounter: next(), originator: SUPPLIER, recipient: meter().eui, messageCode: 0x0102, payload: Uint8Array.of(0x30, 0x03, 0x02, 0x01), signatureField: 'empty' });
        return { bytes: await signPreCommand(pre, oldDs().signer), sender: SUPPLIER };
      },
      'ERR_COMMAND_PAYLOAD_MALFORMED',
      'credentials',
    ],
    [
      'a wrong target cell (a supplier DS certificate into the KA cell)',
      async () => {
        const c = next();
        const payload = encodeUpdateSecurityCredentialsPayload({
          mode: 2, disapplyTimeChecks: true, authorisingCell: DS, sequenceNumber: c,
          replacements: [{ certificate: newDs.certificate.der, cell: KA }], certificationPath: [world.hierarchy.organisationCa.certificate.der],
        });
        const pre = buildGeneralSigning({ cra: 'command', originatorCounter: c, originator: SUPPLIER, recipient: meter().eui, messageCode: 0x0102, payload, signatureField: 'empty' });
        return { bytes: await signPreCommand(pre, oldDs().signer), sender: SUPPLIER };
      },
      'ERR_GBCS_CREDENTIALS_CERTIFICATE_KEY_USAGE',
      'credentials',
    ],
    [
      'a target cell mode 2 may not replace (the network operator\'s)',
      async () => {
        const c = next();
        const payload = encodeUpdateSecurityCredentialsPayload({
          mode: 2, disapplyTimeChecks: true, authorisingCell: DS, sequenceNumber: c,
          replacements: [{ certificate: newNoDs.certificate.der, cell: { role: 3, keyUsage: 'digitalSignature' } }], certificationPath: [],
        });
        const pre = buildGeneralSigning({ cra: 'command', originatorCounter: c, originator: SUPPLIER, recipient: meter().eui, messageCode: 0x0102, payload, signatureField: 'empty' });
        return { bytes: await signPreCommand(pre, oldDs().signer), sender: SUPPLIER };
      },
      'ERR_GBCS_CREDENTIALS_CELL_NOT_ALLOWED',
      'credentials',
    ],
    ['a replacement certificate from an unknown CA', async () => ({ bytes: await cs02b({ replacements: [{ certificate: foreignDs.certificate, cell: DS }] }), sender: SUPPLIER }), 'ERR_COMMAND_CREDENTIALS_CERTIFICATE_UNTRUSTED', 'credentials'],
    ['a revoked replacement certificate (CRL)', async () => ({ bytes: await cs02b({ replacements: [{ certificate: revokedDs.certificate, cell: DS }] }), sender: SUPPLIER, revoked: [revokedDs.certificate] }), 'ERR_COMMAND_CREDENTIALS_CERTIFICATE_REVOKED', 'credentials'],
    ['a mode 2 that installs another supplier\'s certificate', async () => ({ bytes: await cs02b({ replacements: [{ certificate: otherEntityDs.certificate, cell: DS }] }), sender: SUPPLIER }), 'ERR_COMMAND_CREDENTIALS_CERTIFICATE_ENTITY', 'credentials'],
  ];

  it.each(refusals)('refuses %s', async (_name, make, code, step) => {
    const { bytes, sender, revoked } = await make();
    const { v } = await fresh(revoked ?? []);
    const d = await v.validate(bytes, { sender });
    expect(d.outcome).toBe('rejected');
    if (d.outcome !== 'rejected') return;
    expect([d.code, d.step], d.message).toEqual([code, step]);
    await v.close();
  });
});

describe('the device\'s answer moves its trust (docs/domain.md §9: response, alert 0x00CB)', () => {
  it('a verified success response moves both cells; the old key is then refused and the new one passes', async () => {
    const { v, stores } = await fresh();
    const command = await cs02b();
    expect((await v.validate(command, { sender: SUPPLIER })).outcome).toBe('accepted');
    const r = await v.recordCredentialsResponse(response(command), command);
    expect(r.state).toBe('applied');
    expect(r.cells.map((c) => c.moved)).toEqual([true, true]);
    expect(await cellSki(stores, 2, 'digitalSignature')).toBe(newDs.certificate.subjectKeyId);
    expect(await cellSki(stores, 2, 'keyAgreement')).toBe(newKa.certificate.subjectKeyId);
    // The old key is still one of the supplier's certificates: a portfolio mismatch now.
    const old = await cs02b({ signer: oldDs(), replacements: [{ certificate: newDs.certificate, cell: DS }] });
    const dOld = await v.validate(old, { sender: SUPPLIER });
    expect(dOld.outcome === 'rejected' && dOld.code).toBe('ERR_COMMAND_PORTFOLIO_MISMATCH');
    const dNew = await v.validate(await cs02b({ signer: newDs, replacements: [{ certificate: newDs.certificate, cell: DS }] }), { sender: SUPPLIER });
    expect(dNew.outcome).toBe('accepted');
    // The same answer again: the command was applied, nothing moves.
    expect(await codeOf(v.recordCredentialsResponse(response(command), command))).toBe('ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND');
    await v.close();
  });

  it('partial success moves only the successful cell', async () => {
    const { v, stores } = await fresh();
    const command = await cs02b();
    expect((await v.validate(command, { sender: SUPPLIER })).outcome).toBe('accepted');
    const r = await v.recordCredentialsResponse(response(command, [0, 5]), command);
    expect(r.cells.map((c) => [c.status, c.moved])).toEqual([[0, true], [5, false]]);
    expect(await cellSki(stores, 2, 'digitalSignature')).toBe(newDs.certificate.subjectKeyId);
    expect(await cellSki(stores, 2, 'keyAgreement')).toBe(world.supplierKa.certificate.subjectKeyId);
    await v.close();
  });

  it('a forged response signature, a response from another key, or no device certificate moves nothing', async () => {
    const { v, stores } = await fresh();
    const command = await cs02b();
    expect((await v.validate(command, { sender: SUPPLIER })).outcome).toBe('accepted');
    const good = response(command);
    const forged = Uint8Array.from(good);
    forged[forged.length - 5] = (forged[forged.length - 5] as number) ^ 1;
    expect(await codeOf(v.recordCredentialsResponse(forged, command))).toBe('ERR_CREDENTIALS_RESPONSE_SIGNATURE_INVALID');
    const other = deviceSigned('response', command, encodeUpdateSecurityCredentialsResponse({ outcome: outcome(command, [0, 0]) }), keyPair());
    expect(await codeOf(v.recordCredentialsResponse(other, command))).toBe('ERR_CREDENTIALS_RESPONSE_SIGNATURE_INVALID');
    const { digitalSignatureCertificate: _ds, ...withoutDs } = record();
    await stores.registry.put([withoutDs]);
    expect(await codeOf(v.recordCredentialsResponse(good, command))).toBe('ERR_CREDENTIALS_RESPONSE_SIGNATURE_INVALID');
    expect(await cellSki(stores, 2, 'digitalSignature')).toBe(oldDs().certificate.subjectKeyId);
    await v.close();
  });

  it('a response to a command the validator never passed, or that does not match it, moves nothing', async () => {
    const { v, stores } = await fresh();
    const refused = await cs02b({ mode: 8 }); // the supplier may not send mode 8: refused
    expect((await v.validate(refused, { sender: SUPPLIER })).outcome).toBe('rejected');
    expect(await codeOf(v.recordCredentialsResponse(response(refused), refused))).toBe('ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND');
    const never = await cs02b();
    expect(await codeOf(v.recordCredentialsResponse(response(never), never))).toBe('ERR_CREDENTIALS_RESPONSE_UNKNOWN_COMMAND');

    const command = await cs02b();
    expect((await v.validate(command, { sender: SUPPLIER })).outcome).toBe('accepted');
    // Another command's response (another counter).
    expect(await codeOf(v.recordCredentialsResponse(response(never), command))).toBe('ERR_CREDENTIALS_RESPONSE_MISMATCH');
    // One result for two cells.
    const short = deviceSigned('response', command, encodeUpdateSecurityCredentialsResponse({ outcome: { ...outcome(command, [0, 0]), results: outcome(command, [0]).results } }));
    expect(await codeOf(v.recordCredentialsResponse(short, command))).toBe('ERR_CREDENTIALS_RESPONSE_MISMATCH');
    // Cells in another order.
    const o = outcome(command, [0, 0]);
    const swapped = deviceSigned('response', command, encodeUpdateSecurityCredentialsResponse({ outcome: { ...o, results: [o.results[1]!, o.results[0]!] } }));
    expect(await codeOf(v.recordCredentialsResponse(swapped, command))).toBe('ERR_CREDENTIALS_RESPONSE_MISMATCH');
    // A success naming another new certificate than the command's.
    const wrongNew = deviceSigned('response', command, encodeUpdateSecurityCredentialsResponse({ outcome: outcome(command, [0, 0], [revokedDs.certificate, newKa.certificate]) }));
    expect(await codeOf(v.recordCredentialsResponse(wrongNew, command))).toBe('ERR_CREDENTIALS_RESPONSE_MISMATCH');
    // A bare SEQUENCE { NULL } for an immediate command.
    expect(await codeOf(v.recordCredentialsResponse(deviceSigned('response', command, encodeUpdateSecurityCredentialsResponse({})), command))).toBe('ERR_CREDENTIALS_RESPONSE_MISMATCH');
    // The device reports an old key id the registry's cell does not hold: compare-and-set refuses.
    const stale = deviceSigned('response', command, encodeUpdateSecurityCredentialsResponse({ outcome: outcome(command, [0, 0], undefined, [world.portfolios[1]!.certificate, world.supplierKa.certificate]) }));
    expect(await codeOf(v.recordCredentialsResponse(stale, command))).toBe('ERR_STORE_CELL_CONFLICT');
    expect(await cellSki(stores, 2, 'digitalSignature')).toBe(oldDs().certificate.subjectKeyId);
    expect(await cellSki(stores, 2, 'keyAgreement')).toBe(world.supplierKa.certificate.subjectKeyId);
    // The right answer still applies afterwards.
    expect((await v.recordCredentialsResponse(response(command), command)).state).toBe('applied');
    await v.close();
  });

  it('future-dated: the bare response moves nothing, alert 0x8F66 applies the outcome, 0x8F67 moves nothing', async () => {
    const at = new Date(world.now.getTime() + 24 * 3600_000);
    for (const [code, moves] of [
      [0x8f66, true],
      [0x8f67, false],
    ] as const) {
      const { v, stores } = await fresh();
      const command = await cs02b({ executionTime: at });
      expect((await v.validate(command, { sender: SUPPLIER })).outcome).toBe('accepted');
      const first = await v.recordCredentialsResponse(deviceSigned('response', command, encodeUpdateSecurityCredentialsResponse({}, { lengths: 'device' })), command);
      expect(first.state).toBe('scheduled');
      expect(await cellSki(stores, 2, 'digitalSignature')).toBe(oldDs().certificate.subjectKeyId);
      const alert = deviceSigned('alert', command, encodeCredentialsAlert({ code, executionTime: at, outcome: outcome(command, [0, 0]) }, { lengths: 'device' }));
      const r = await v.recordCredentialsResponse(alert, command);
      expect([r.answer, r.state]).toEqual(['alert', moves ? 'applied' : 'failed']);
      expect(await cellSki(stores, 2, 'digitalSignature')).toBe(moves ? newDs.certificate.subjectKeyId : oldDs().certificate.subjectKeyId);
      await v.close();
    }
  });

  it('a mode 8 recovery replaces the supplier cell; the compromised key is refused afterwards', async () => {
    const { v, stores } = await fresh();
    const command = await cs02b({ mode: 8, originator: RECOVERY, signer: recovery, replacements: [{ certificate: newDs.certificate, cell: DS }] });
    expect((await v.validate(command, { sender: RECOVERY })).outcome).toBe('accepted');
    const payload = encodeUpdateSecurityCredentialsResponse({ outcome: { ...outcome(command, [0]), results: outcome(command, [0]).results } });
    const r = await v.recordCredentialsResponse(deviceSigned('response', command, payload), command);
    expect(r.cells).toHaveLength(1);
    expect(await cellSki(stores, 2, 'digitalSignature')).toBe(newDs.certificate.subjectKeyId);
    // The compromised key, once revoked and removed from the trust store: no longer any of the supplier's keys.
    const { disconnect } = await import('./_world.js');
    const certificates = [...world.certificates.filter((c) => c !== oldDs().certificate), recovery.certificate, newDs.certificate];
    v.updateTrust({ certificates, crls: world.crls });
    const dOld = await v.validate(await disconnect(world, meter(), next(), oldDs().signer), { sender: SUPPLIER });
    expect(dOld.outcome === 'rejected' && dOld.code).toBe('ERR_COMMAND_SIGNATURE_INVALID');
    const dNew = await v.validate(await disconnect(world, meter(), next(), newDs.signer), { sender: SUPPLIER });
    expect(dNew.outcome).toBe('accepted');
    await v.close();
  });
});
