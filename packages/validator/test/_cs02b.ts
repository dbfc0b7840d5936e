// A CS02b fixture shared by the durable-answer, supplier-rule and pool tests (docs/domain.md §9,
// §10): the validator's world plus a recovery party, a transitional change-of-supplier party, the
// replacement certificates, a meter with a digital-signing certificate, and builders of signed
// commands and device-signed answers. Real certificates (pki), real ECDSA.
import { sign as nodeSign } from 'node:crypto';
import { parseEui64, type Eui64 } from '@smki/core';
import {
  buildGeneralSigning,
  buildUpdateSecurityCredentials,
  decodeUpdateSecurityCredentialsCommand,
  encodeUpdateSecurityCredentialsResponse,
  parseMessage,
  signPreCommand,
  signedBytes,
  type CellOutcome,
  type TrustAnchorCell,
} from '@smki/gbcs';
import { issueDeviceCertificate, issueOrganisationCertificate, parseCertificate, type SmkiCertificate } from '@smki/pki';
import type { DeviceRecord } from '@smki/store';
import { OTHER_SUPPLIER, SUPPLIER, buildWorld, keyPair, type KeyPair, type Party, type World } from './_world.js';

export const RECOVERY = parseEui64('90B3D51F30000001');
export const COS = parseEui64('90B3D51F30000005');
export const THIRD_SUPPLIER = parseEui64('90B3D51F30090000');
export const DS: TrustAnchorCell = { role: 2, keyUsage: 'digitalSignature' };
export const KA: TrustAnchorCell = { role: 2, keyUsage: 'keyAgreement' };

export interface Cs02bFixture {
  readonly world: World;
  readonly recovery: Party;
  /** The transitional change-of-supplier party (role 5). */
  readonly cos: Party;
  /** The supplier's replacement DS and KA certificates. */
  readonly newDs: Party;
  readonly newKa: Party;
  /** The other supplier's DS certificate (another organisation). */
  readonly otherDs: Party;
  /** A third supplier's DS certificate. */
  readonly thirdDs: Party;
  readonly deviceDs: KeyPair;
  /** Every certificate the validator trusts. */
  readonly certificates: readonly SmkiCertificate[];
  /** Meter 0 with its DS certificate, its supplier KA cell, a recovery cell and a CoS cell. */
  record(): DeviceRecord;
  cs02b(o?: Cs02bOptions): Promise<Uint8Array>;
  /** A device-signed success (or per-cell statuses) response to `command`. */
  response(command: Uint8Array, certs?: readonly SmkiCertificate[], statuses?: readonly number[]): Uint8Array;
  next(): bigint;
}

export interface Cs02bOptions {
  readonly mode?: number;
  readonly originator?: Eui64;
  readonly signer?: KeyPair;
  readonly replacements?: { certificate: SmkiCertificate; cell: TrustAnchorCell }[];
  readonly counter?: bigint;
}

export async function cs02bFixture(): Promise<Cs02bFixture> {
  const world = await buildWorld({ meters: 2, portfolios: 2 });
  const clock = () => new Date(world.now.getTime() - 24 * 3600_000);
  const org = async (entityId: string, role: number, keyUsage: 'digitalSignature' | 'keyAgreement'): Promise<Party> => {
    const k = keyPair();
    return { ...k, certificate: await issueOrganisationCertificate({ issuer: world.hierarchy.organisationCa, role, entityId, keyUsage, publicKey: k.publicKey, now: clock }) };
  };
  const recovery = await org(RECOVERY, 1, 'digitalSignature');
  const cos = await org(COS, 5, 'digitalSignature');
  const newDs = await org(SUPPLIER, 2, 'digitalSignature');
  const newKa = await org(SUPPLIER, 2, 'keyAgreement');
  const otherDs = await org(OTHER_SUPPLIER, 2, 'digitalSignature');
  const thirdDs = await org(THIRD_SUPPLIER, 2, 'digitalSignature');
  const deviceDs = keyPair();
  const meter = world.meters[0]!;
  const deviceDsCert = await issueDeviceCertificate({ issuer: world.hierarchy.deviceCa, entityId: meter.eui, keyUsage: 'digitalSignature', publicKey: deviceDs.publicKey, now: clock });
  const oldDs = world.portfolios[meter.portfolio]!;
  let counter = 0n;
  const next = (): bigint => (counter += 1n) + BigInt(world.now.getTime()) - 1_000_000n;

  const record = (): DeviceRecord => ({
    ...meter.record,
    cells: [
      ...meter.record.cells,
      { role: 2, keyUsage: 'keyAgreement', cellUsage: 'management', ski: world.supplierKa.certificate.subjectKeyId!, entity: SUPPLIER },
      { role: 1, keyUsage: 'digitalSignature', cellUsage: 'management', ski: recovery.certificate.subjectKeyId!, entity: RECOVERY },
      { role: 5, keyUsage: 'digitalSignature', cellUsage: 'management', ski: cos.certificate.subjectKeyId!, entity: COS },
    ],
    digitalSignatureCertificate: deviceDsCert.der,
  });

  const cs02b = async (o: Cs02bOptions = {}): Promise<Uint8Array> => {
    const mode = o.mode ?? 2;
    const authorising = mode === 8 ? 1 : mode === 7 || mode === 6 ? 5 : mode === 3 ? 3 : 2;
    const pre = buildUpdateSecurityCredentials({
      originator: o.originator ?? SUPPLIER,
      recipient: meter.eui,
      counter: o.counter ?? next(),
      mode,
      authorisingCell: { role: authorising, keyUsage: 'digitalSignature' },
      replacements: o.replacements ?? [
        { certificate: newDs.certificate, cell: DS },
        { certificate: newKa.certificate, cell: KA },
      ],
      certificationPath: [world.hierarchy.organisationCa.certificate],
    });
    return signPreCommand(pre, (o.signer ?? oldDs).signer);
  };

  const response = (command: Uint8Array, certs?: readonly SmkiCertificate[], statuses?: readonly number[]): Uint8Array => {
    const c = parseMessage(command);
    // The cells and certificates the command names, in its order.
    const payloadCells = decodeCells(command);
    const olds = new Map<string, string>([
      ['2/digitalSignature', oldDs.certificate.subjectKeyId!],
      ['2/keyAgreement', world.supplierKa.certificate.subjectKeyId!],
    ]);
    const results: CellOutcome[] = payloadCells.map((cell, i) => {
      const status = statuses?.[i] ?? 0;
      const cert = certs?.[i] ?? cell.certificate;
      const old = olds.get(`${cell.cell.role}/${cell.cell.keyUsage}`)!;
      return {
        cell: { ...cell.cell, cellUsage: 'management' },
        status,
        oldEntityId: SUPPLIER,
        oldKeyId: old,
        newEntityId: status === 0 ? (cert.entityId as Eui64) : SUPPLIER,
        newKeyId: status === 0 ? cert.subjectKeyId! : old,
      };
    });
    const payload = encodeUpdateSecurityCredentialsResponse({ outcome: { sequenceNumber: c.originatorCounter, mode: c.messageCode - 0x100, floorChanges: [], results } }, { lengths: 'device' });
    const pre = buildGeneralSigning({ cra: 'response', originatorCounter: c.originatorCounter, originator: c.recipient, recipient: c.originator, messageCode: c.messageCode, payload, signatureField: 'empty' });
    const m = parseMessage(pre);
    const sig = nodeSign('sha256', signedBytes(m), { key: deviceDs.privateKey, dsaEncoding: 'ieee-p1363' });
    const out = new Uint8Array(pre.length - 1 + 65);
    out.set(pre.subarray(0, pre.length - 1));
    out[pre.length - 1] = 0x40;
    out.set(sig, pre.length);
    return out;
  };

  const certificates = [...world.certificates, recovery.certificate, cos.certificate, newDs.certificate, newKa.certificate, otherDs.certificate, thirdDs.certificate];
  return { world, recovery, cos, newDs, newKa, otherDs, thirdDs, deviceDs, certificates, record, cs02b, response, next };
}

/** The replacements of a CS02b command: each certificate (parsed) and its cell. */
function decodeCells(command: Uint8Array): { certificate: SmkiCertificate; cell: TrustAnchorCell }[] {
  return decodeUpdateSecurityCredentialsCommand(parseMessage(command)).payload.replacements.map((r) => ({ certificate: parseCertificate(r.certificate), cell: { role: r.cell.role, keyUsage: r.cell.keyUsage } }));
}
