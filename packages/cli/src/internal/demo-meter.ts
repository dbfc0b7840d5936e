/**
 * The meter side of `smki demo`'s recovery act: the least a meter does with a CS02b Update
 * Security Credentials command authorised by the Recovery party (mode 8; GBCS CS02b, docs/domain.md
 * §9), so that the demo's north meters can be re-keyed and answer. Not a device model: one mode,
 * the cells the demo uses, no future-dated commands.
 *
 * What the meter checks before it changes anything (a refusal changes nothing): the frame carries
 * the ACB's MAC, checked with the meter's own key-agreement key (docs/domain.md §4); the command is
 * for it; it is mode 8 from the party in its recovery cell (role 1, digitalSignature), authorised
 * by that cell; the User signature verifies with the key in that cell; the originator counter is
 * above the cell's floor and equals control [3]; each new certificate is signed by the issuing CA
 * of the certification path, which is itself signed by the root in the meter's root cell, names an
 * entity, and has the key usage of the cell it replaces; every target cell is one the meter has.
 * Then it installs the new keys, raises the recovery floor to the counter, sets the other roles'
 * floors as control [6] says, and answers with one outcome per requested cell (old and new entity
 * and key ids), a response signed with its own digital-signature key.
 * @module
 * @internal
 */
import { sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { concatBytes, type Eui64 } from '@smki/core';
import {
  apduBytes,
  buildGeneralSigning,
  CREDENTIALS_STATUS,
  decodeUpdateSecurityCredentialsCommand,
  encodeUpdateSecurityCredentialsResponse,
  parseMessage,
  signedBytes,
  UPDATE_SECURITY_CREDENTIALS_BASE_CODE,
  verifyMac,
  verifySignature,
  type CellOutcome,
  type TrustAnchorCell,
} from '@smki/gbcs';
import { parseCertificate, type SmkiCertificate } from '@smki/pki';

/** A trust-anchor cell's content: the entity and the public key it holds (with its key id). */
interface CellKey {
  readonly entity: Eui64;
  readonly keyId: string;
  readonly publicKey: KeyObject;
}

/** What {@link DemoMeter.applyCredentials} returns: the signed response, or why the meter refused. */
export type MeterAnswer = { readonly ok: true; readonly response: Uint8Array } | { readonly ok: false; readonly reason: string };

const cellName = (c: { readonly role: number; readonly keyUsage: string; readonly cellUsage?: string }): string => `${c.role}/${c.keyUsage}/${c.cellUsage ?? 'management'}`;

/** Whether `cert` carries a signature of `issuer`'s key over its tbsCertificate. */
function signedBy(cert: SmkiCertificate, issuer: SmkiCertificate): boolean {
  if (issuer.publicKey === undefined) return false;
  try {
    return nodeVerify('sha256', cert.tbsDer, { key: issuer.publicKey, dsaEncoding: 'der' }, cert.signature);
  } catch {
    return false;
  }
}

/** A simulated meter holding trust-anchor cells, counter floors, and its own DS key and certificate. */
export class DemoMeter {
  readonly eui: Eui64;
  readonly #dsKey: KeyObject;
  readonly #kaKey: KeyObject;
  readonly #acbPublicKey: Uint8Array;
  readonly #root: SmkiCertificate;
  readonly #cells = new Map<string, CellKey>();
  readonly #floors = new Map<number, bigint>();

  /**
   * @param eui the meter
   * @param keys its digital-signature private key (its responses are signed with it) and its
   *   key-agreement private key (it checks the ACB's MAC with it)
   * @param anchors the root certificate in its root cell, and the ACB's key-agreement public key (its ACB cell)
   */
  constructor(eui: Eui64, keys: { readonly ds: KeyObject; readonly ka: KeyObject }, anchors: { readonly root: SmkiCertificate; readonly acbPublicKey: Uint8Array }) {
    this.eui = eui;
    this.#dsKey = keys.ds;
    this.#kaKey = keys.ka;
    this.#root = anchors.root;
    this.#acbPublicKey = anchors.acbPublicKey;
  }

  /** Install an organisation certificate in a cell (as at manufacture or commissioning). */
  install(cell: TrustAnchorCell, certificate: SmkiCertificate): void {
    if (certificate.publicKey === undefined || certificate.entityId === undefined || certificate.subjectKeyId === undefined) throw new Error('a cell holds a certificate with an entity, a key and a key id');
    this.#cells.set(cellName(cell), { entity: certificate.entityId, keyId: certificate.subjectKeyId, publicKey: certificate.publicKey });
  }

  /** The key id (SKI, upper-case hex) a cell holds, if the meter has the cell. */
  keyIdIn(cell: TrustAnchorCell): string | undefined {
    return this.#cells.get(cellName(cell))?.keyId;
  }

  /** Apply a CS02b mode 8 command as the DCC delivers it (a frame with the ACB MAC): every check first, then the change and the device-signed response. */
  applyCredentials(frame: Uint8Array): MeterAnswer {
    const no = (reason: string): MeterAnswer => ({ ok: false, reason });
    let command: Uint8Array;
    try {
      if (!verifyMac(frame, { privateKey: this.#kaKey, publicKey: this.#acbPublicKey })) return no('the ACB MAC does not verify');
      command = apduBytes(parseMessage(frame));
    } catch {
      return no('not a frame with the ACB MAC');
    }
    let decoded;
    try {
      decoded = decodeUpdateSecurityCredentialsCommand(command);
    } catch {
      return no('not a CS02b command');
    }
    const { payload, message } = decoded;
    if (message.recipient !== this.eui) return no('not for this meter');
    if (payload.mode !== 8 || message.messageCode !== UPDATE_SECURITY_CREDENTIALS_BASE_CODE + 8) return no(`mode ${payload.mode}: this meter applies mode 8 (Recovery) only`);
    const authorising = payload.authorisingCell;
    if (authorising === undefined || authorising.role !== 1 || authorising.keyUsage !== 'digitalSignature') return no('not authorised by the recovery cell');
    const recovery = this.#cells.get(cellName(authorising));
    if (recovery === undefined || recovery.entity !== message.originator) return no('the originator is not the party in the recovery cell');
    if (!verifySignature(message, recovery.publicKey)) return no("the signature does not verify with the recovery cell's key");
    const counter = message.originatorCounter;
    if (payload.sequenceNumber !== counter) return no('control [3] is not the originator counter');
    if (counter <= (this.#floors.get(1) ?? -1n)) return no('the counter is not above the recovery floor');
    if (payload.certificationPath.length === 0) return no('no certification path');
    let ca: SmkiCertificate;
    try {
      ca = parseCertificate(payload.certificationPath[0]!);
    } catch {
      return no('the certification path does not parse');
    }
    if (ca.basicConstraints?.ca !== true || !signedBy(ca, this.#root)) return no('the issuing CA is not signed by the root in the root cell');
    const changes: { key: string; cell: TrustAnchorCell; next: CellKey; old: CellKey }[] = [];
    for (const r of payload.replacements) {
      const key = cellName(r.cell);
      const old = this.#cells.get(key);
      if (old === undefined || r.cell.role === 1 || changes.some((c) => c.key === key)) return no(`cell ${key} is not one this command may replace here`);
      let cert: SmkiCertificate;
      try {
        cert = parseCertificate(r.certificate);
      } catch {
        return no('a new certificate does not parse');
      }
      if (!signedBy(cert, ca)) return no('a new certificate is not signed by the issuing CA');
      if (cert.entityId === undefined || cert.subjectKeyId === undefined || cert.publicKey === undefined || !(cert.keyUsage as readonly string[]).includes(r.cell.keyUsage)) return no(`the new certificate does not fit cell ${key}`);
      changes.push({ key, cell: r.cell, old, next: { entity: cert.entityId, keyId: cert.subjectKeyId, publicKey: cert.publicKey } });
    }
    // Everything checked: the change, then the answer.
    for (const c of changes) this.#cells.set(c.key, c.next);
    this.#floors.set(1, counter);
    for (const f of payload.otherRoleFloors ?? []) this.#floors.set(f.role, f.floor);
    const results: CellOutcome[] = changes.map((c) => ({ cell: c.cell, status: CREDENTIALS_STATUS.success, oldEntityId: c.old.entity, oldKeyId: c.old.keyId, newEntityId: c.next.entity, newKeyId: c.next.keyId }));
    const body = encodeUpdateSecurityCredentialsResponse({ outcome: { sequenceNumber: counter, mode: 8, floorChanges: [], results } });
    const unsigned = parseMessage(buildGeneralSigning({ cra: 'response', originatorCounter: counter, originator: this.eui, recipient: message.originator, messageCode: message.messageCode, payload: body, signatureField: 'empty' }));
    const signature = nodeSign('sha256', signedBytes(unsigned), { key: this.#dsKey, dsaEncoding: 'ieee-p1363' });
    return { ok: true, response: concatBytes(unsigned.bytes.subarray(0, unsigned.signedRange.end), Uint8Array.of(0x40), new Uint8Array(signature)) };
  }
}
