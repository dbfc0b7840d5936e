import { equalBytes, isSmkiError, parseEui64, SmkiError, type Eui64 } from '@smki/core';
import { decodeUpdateSecurityCredentialsCommand, type DecodedUpdateSecurityCredentialsCommand } from '@smki/gbcs';
import { parseCertificate, type SmkiCertificate } from '@smki/pki';

/** The purposes of a supplier's keys a meter trusts, one trust-anchor cell each. */
export type RecoveryPurpose = 'signing' | 'keyAgreement';

/** What a command of a recovery plan must be ({@link checkRecoveryCommand}). */
export interface RecoveryCommandExpectation {
  /** The CS02b mode: 2 (rotation, supplier by supplier) or 8 (compromise, by the Recovery party). */
  readonly mode: 2 | 8;
  /** The header's originator: the supplier (mode 2) or the Recovery party (mode 8). */
  readonly originator: string;
  /** The meter it is for. */
  readonly recipient: string;
  /** The supplier whose cells are replaced (its EUI-64, Remote Party Role 2). */
  readonly organisation: string;
  /** The new certificates (DER), per purpose: exactly these cells, with exactly these certificates. */
  readonly certificates: Readonly<Partial<Record<RecoveryPurpose, Uint8Array>>>;
}

const refuse = (message: string, detail?: string, cause?: unknown): never => {
  throw new SmkiError('ERR_RECOVERY_COMMAND_REFUSED', message, detail === undefined ? {} : { detail }, cause === undefined ? undefined : { cause });
};

/** The purpose a supplier management cell serves, or undefined for any other cell. */
function purposeOf(cell: { readonly role: number; readonly keyUsage: string; readonly cellUsage?: string }): RecoveryPurpose | undefined {
  if (cell.role !== 2 || (cell.cellUsage ?? 'management') !== 'management') return undefined;
  if (cell.keyUsage === 'digitalSignature') return 'signing';
  if (cell.keyUsage === 'keyAgreement') return 'keyAgreement';
  return undefined;
}

/**
 * Check a CS02b command a recovery plan built before anyone signs it: it decodes under GBCS's
 * own rules, is the plan's mode, from the plan's originator to the plan's meter, and replaces
 * exactly the named supplier's DS and KA management cells the plan names, each with the plan's
 * new certificate for it, a certificate of that supplier's entity (Remote Party Role 2, its
 * EUI-64). Anything else (another cell, another supplier's certificate, another mode) is refused.
 * @returns the decoded command
 * @throws SmkiError `ERR_RECOVERY_COMMAND_REFUSED` (with the GBCS refusal as `cause` when the bytes
 *   do not decode or break a CS02b rule)
 * @see docs/domain.md §9 (CS02b modes 2 and 8: who signs, what they may replace), §10 (the rules)
 * @example
 * ```ts
 * import { checkRecoveryCommand } from '@smki/recovery';
 * declare const command: Uint8Array, newDs: Uint8Array, newKa: Uint8Array;
 * checkRecoveryCommand(command, { mode: 8, originator: '90B3D51F30000001', recipient: '00DB1234567890A1', organisation: '90B3D51F30010000', certificates: { signing: newDs, keyAgreement: newKa } });
 * ```
 */
export function checkRecoveryCommand(command: Uint8Array, expected: RecoveryCommandExpectation): DecodedUpdateSecurityCredentialsCommand {
  let decoded: DecodedUpdateSecurityCredentialsCommand;
  try {
    decoded = decodeUpdateSecurityCredentialsCommand(command);
  } catch (e) {
    if (isSmkiError(e)) return refuse(`not a valid CS02b command: ${e.code}`, e.code, e);
    throw e;
  }
  const { payload, message } = decoded;
  if (payload.mode !== expected.mode) refuse(`mode ${payload.mode}, the plan sends mode ${expected.mode}`, String(payload.mode));
  const originator: Eui64 = parseEui64(expected.originator);
  if (message.originator !== originator) refuse(`originator ${message.originator}, the plan's is ${originator}`, message.originator);
  if (message.recipient !== parseEui64(expected.recipient)) refuse(`recipient ${message.recipient}, not the plan's meter`, message.recipient);
  const organisation = parseEui64(expected.organisation);
  const seen = new Set<RecoveryPurpose>();
  for (const [i, r] of payload.replacements.entries()) {
    const purpose = purposeOf(r.cell);
    if (purpose === undefined) refuse(`replacement ${i} targets the cell of role ${r.cell.role} ${r.cell.keyUsage} ${r.cell.cellUsage ?? 'management'}: only the supplier's DS and KA management cells`, `${r.cell.role}/${r.cell.keyUsage}`);
    const want = expected.certificates[purpose as RecoveryPurpose];
    if (want === undefined) refuse(`replacement ${i} replaces the supplier's ${String(purpose)} cell, which the plan does not`, String(purpose));
    const cert = parsedCertificate(r.certificate);
    if (cert.role !== 2 || cert.entityId !== organisation) refuse(`replacement ${i}: a certificate of role ${String(cert.role)}, entity ${String(cert.entityId)}, not the supplier ${organisation}`, String(cert.entityId));
    if (!equalBytes(r.certificate, want as Uint8Array)) refuse(`replacement ${i}: not the plan's new ${String(purpose)} certificate`, cert.serialNumber);
    seen.add(purpose as RecoveryPurpose);
  }
  for (const p of Object.keys(expected.certificates) as RecoveryPurpose[]) {
    if (expected.certificates[p] !== undefined && !seen.has(p)) refuse(`the supplier's ${p} cell is not replaced`, p);
  }
  return decoded;
}

/** Certificates parsed lately, by their DER: every command of a plan carries the same replacements. */
const PARSED = new Map<string, SmkiCertificate>();
const MAX_PARSED = 64;

/** A DER certificate parsed once while it stays among the last {@link MAX_PARSED} (parsed certificates are frozen). */
function parsedCertificate(der: Uint8Array): SmkiCertificate {
  const key = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('latin1');
  let cert = PARSED.get(key);
  if (cert === undefined) {
    cert = parseCertificate(der);
    if (PARSED.size >= MAX_PARSED) PARSED.delete(PARSED.keys().next().value as string);
    PARSED.set(key, cert);
  }
  return cert;
}
