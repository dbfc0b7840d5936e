import { ByteReader, checkDerStructure, concatBytes, eui64FromBytes, fromHex, parseEui64, readTlv, SmkiError, toHex, type Eui64, type SmkiErrorCode } from '@smki/core';
import { toCertificate, type CertificateInput, type SmkiCertificate } from '@smki/pki';
import { CREDENTIALS_MODES, type CredentialsModeEntry } from './catalogue.js';
import { parseMessage, type GbcsMessage } from './codec.js';
import { buildGeneralSigning } from './codec.js';
import type { CommandOptions } from './commands.js';
import { generalizedTimeBytes, generalizedTimeProblem, readGeneralizedTime, unsignedContents } from './internal/der-time.js';

/**
 * The credential-replacement commands (docs/domain.md §9, §10): CS02b Update Security Credentials
 * (message codes 0x0102–0x0108, replacement modes 2 to 8), its response and its future-dated
 * alert 0x00CB, and CS02c / CS02d / CS02e (issue a device key pair, update and provide the device
 * certificate) with their responses.
 *
 * Commands are built as unsigned pre-commands through {@link buildGeneralSigning} and decoded as
 * strict DER (definite, minimal lengths; nothing after the last element; every failure
 * `ERR_GBCS_MALFORMED` with the offset). Responses and alerts come from devices, which write some
 * lengths in a non-minimal long form (`30 82 00 CA`): their decoders accept that, and only that,
 * departure from DER.
 * @module
 */

const U64_MAX = (1n << 64n) - 1n;

// ---- DER tags -------------------------------------------------------------------------------------

const TAG_INTEGER = 0x02;
const TAG_BIT_STRING = 0x03;
const TAG_OCTET_STRING = 0x04;
const TAG_NULL = 0x05;
const TAG_ENUMERATED = 0x0a;
const TAG_GENERALIZED_TIME = 0x18;
const TAG_SEQUENCE = 0x30;
/** Control block context tags: [0] [1] [3] [4] primitive, [2] [5] [6] constructed (IMPLICIT). */
const TAG_C0 = 0x80;
const TAG_C1 = 0x81;
const TAG_C2 = 0xa2;
const TAG_C3 = 0x83;
const TAG_C4 = 0x84;
const TAG_C5 = 0xa5;
const TAG_C6 = 0xa6;

/** Most elements a SEQUENCE OF in these payloads may hold (a device has a handful of cells). */
const MAX_LIST = 64;
/** Largest payload the decoders read (a GBCS message is at most 64 KiB). */
const MAX_PAYLOAD_BYTES = 64 * 1024;

// ---- errors ---------------------------------------------------------------------------------------

function invalid(message: string, detail?: string): never {
  throw new SmkiError('ERR_GBCS_INVALID_FIELD', message, detail === undefined ? {} : { detail });
}

function malformed(offset: number, message: string, cause?: unknown): never {
  throw new SmkiError('ERR_GBCS_MALFORMED', `${message} at offset ${offset}`, { offset }, cause === undefined ? undefined : { cause });
}

type CredentialsCode = Extract<SmkiErrorCode, `ERR_GBCS_CREDENTIALS_${string}`>;

function refuse(code: CredentialsCode, message: string, detail?: string): never {
  throw new SmkiError(code, message, detail === undefined ? {} : { detail });
}

/** Run a decoder body; any failure that is not already ERR_GBCS_MALFORMED becomes one, at its offset. */
function decoding<T>(what: string, payload: unknown, body: (p: Uint8Array) => T): T {
  if (!(payload instanceof Uint8Array)) malformed(0, `${what} is a Uint8Array`);
  if (payload.length > MAX_PAYLOAD_BYTES) malformed(MAX_PAYLOAD_BYTES, `${what} is longer than ${MAX_PAYLOAD_BYTES} bytes`);
  try {
    return body(payload);
  } catch (e) {
    if (e instanceof SmkiError && e.code === 'ERR_GBCS_MALFORMED') throw e;
    const o = e instanceof SmkiError ? (e.context as { offset?: unknown }).offset : undefined;
    return malformed(typeof o === 'number' ? o : 0, `not a ${what}: ${e instanceof Error ? e.message : 'undecodable'}`, e);
  }
}

// ---- DER writing ----------------------------------------------------------------------------------

/** How constructed elements' lengths are written: minimal (DER) or the devices' `82 hh ll` form. */
type LengthForm = 'minimal' | 'device';

function lengthOf(n: number, form: LengthForm, constructed: boolean): Uint8Array {
  if (form === 'device' && constructed) {
    if (n > 0xffff) invalid('element too long for a two-byte length', String(n));
    return Uint8Array.of(0x82, n >> 8, n & 0xff);
  }
  if (n < 0x80) return Uint8Array.of(n);
  if (n < 0x100) return Uint8Array.of(0x81, n);
  if (n < 0x10000) return Uint8Array.of(0x82, n >> 8, n & 0xff);
  return invalid('element too long for a GBCS message', String(n));
}

function tlv(tag: number, value: Uint8Array, form: LengthForm = 'minimal'): Uint8Array {
  return concatBytes(Uint8Array.of(tag), lengthOf(value.length, form, (tag & 0x20) !== 0), value);
}

/** A non-negative INTEGER (or ENUMERATED, or an IMPLICIT-tagged INTEGER) in minimal two's complement. */
function unsigned(tag: number, v: bigint): Uint8Array {
  return tlv(tag, unsignedContents(v));
}

function generalizedTime(t: unknown, what: string): Uint8Array {
  const problem = generalizedTimeProblem(t);
  if (problem !== undefined) invalid(`${what} ${problem.message}`, problem.detail);
  return tlv(TAG_GENERALIZED_TIME, generalizedTimeBytes(t as Date));
}

// ---- DER reading ----------------------------------------------------------------------------------

interface El {
  readonly tag: number;
  readonly start: number;
  readonly valueStart: number;
  readonly end: number;
}

/**
 * Read one TLV. Strict: core's DER reader (definite, minimal lengths). Lenient (responses and
 * alerts only): a long-form length may be non-minimal (`82 00 CA`), nothing else is relaxed.
 */
function read(r: ByteReader, tag: number, lenient: boolean, what: string): El {
  const at = r.offset;
  if (r.done) malformed(at, `${what} missing`);
  if (r.bytes[at] !== tag) malformed(at, `${what}: expected tag 0x${tag.toString(16)}, found 0x${(r.bytes[at] as number).toString(16)}`);
  if (!lenient) return readTlv(r, tag);
  r.u8(what);
  const lenAt = r.offset;
  const first = r.u8(what);
  let length = first;
  if (first >= 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 3) malformed(lenAt, `${what}: length form 0x${first.toString(16)}`);
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + r.u8(what);
  }
  const valueStart = r.offset;
  if (length > r.end - valueStart) malformed(valueStart, `${what} claims ${length} bytes, ${r.end - valueStart} left`);
  r.offset = valueStart + length;
  return { tag, start: at, valueStart, end: valueStart + length };
}

function inner(r: ByteReader, el: El): ByteReader {
  return new ByteReader(r.bytes, el.valueStart, el.end);
}

function end(r: ByteReader, what: string): void {
  if (!r.done) malformed(r.offset, `${r.remaining} byte(s) after the ${what}`);
}

function readUnsigned(r: ByteReader, tag: number, lenient: boolean, what: string, max: bigint): bigint {
  const el = read(r, tag, lenient, what);
  const v = r.bytes.subarray(el.valueStart, el.end);
  if (v.length === 0) malformed(el.start, `${what}: empty INTEGER`);
  if ((v[0] as number) & 0x80) malformed(el.valueStart, `${what} is negative`);
  if (v.length > 1 && v[0] === 0 && ((v[1] as number) & 0x80) === 0) malformed(el.valueStart, `${what}: INTEGER is not minimal`);
  if (v.length > 9) malformed(el.start, `${what} is too large`);
  let x = 0n;
  for (const b of v) x = (x << 8n) | BigInt(b);
  if (x > max) malformed(el.start, `${what} is above ${max}`);
  return x;
}

function readTime(r: ByteReader, lenient: boolean, what: string): Date {
  const el = read(r, TAG_GENERALIZED_TIME, lenient, what);
  const t = readGeneralizedTime(r.bytes.subarray(el.valueStart, el.end));
  if (t instanceof Date) return t;
  return malformed(el.start, t.problem === 'form' ? `${what} is not GeneralizedTime YYYYMMDDHHMMSSZ` : `${what} ${t.text} is not a calendar time`);
}

/** A certificate element: one SEQUENCE whose contents are well-formed DER (bounded, iterative). */
function readCertificate(r: ByteReader, lenient: boolean, what: string): Uint8Array {
  const el = read(r, TAG_SEQUENCE, lenient, what);
  const der = r.bytes.subarray(el.start, el.end);
  try {
    checkDerStructure(der, 16, 4096);
  } catch (e) {
    const o = e instanceof SmkiError ? (e.context as { offset?: unknown }).offset : undefined;
    malformed(el.start + (typeof o === 'number' ? o : 0), `${what} is not well-formed DER`, e);
  }
  return der.slice();
}

// ---- key usage and cells ---------------------------------------------------------------------------

/**
 * The key usage of a trust-anchor cell: `digitalSignature` (DS), `keyAgreement` (KA) or
 * `keyCertSign` (the root cell).
 * @see docs/domain.md §9 (a cell)
 * @example
 * ```ts
 * import type { CellKeyUsage } from '@smki/gbcs';
 * const ku: CellKeyUsage = 'keyAgreement';
 * console.log(ku);
 * ```
 */
export type CellKeyUsage = 'digitalSignature' | 'keyAgreement' | 'keyCertSign';

/**
 * The key usage a device key pair has (CS02c, CS02e): DS or KA.
 * @see docs/domain.md §9 (CS02c, CS02e)
 * @example
 * ```ts
 * import type { DeviceKeyUsage } from '@smki/gbcs';
 * const ku: DeviceKeyUsage = 'digitalSignature';
 * console.log(ku);
 * ```
 */
export type DeviceKeyUsage = 'digitalSignature' | 'keyAgreement';

/** The three key-usage BIT STRINGs, whole (tag, length, unused bits, bits): docs/domain.md §9. */
const KEY_USAGE_DER: Readonly<Record<CellKeyUsage, Uint8Array>> = {
  digitalSignature: Uint8Array.of(0x03, 0x02, 0x07, 0x80),
  keyAgreement: Uint8Array.of(0x03, 0x02, 0x03, 0x08),
  keyCertSign: Uint8Array.of(0x03, 0x02, 0x02, 0x04),
};

function keyUsageDer(ku: unknown, allowed: readonly CellKeyUsage[], what: string): Uint8Array {
  if (typeof ku !== 'string' || !(allowed as readonly string[]).includes(ku)) invalid(`${what} must be one of ${allowed.join(', ')}`, String(ku).slice(0, 24));
  return KEY_USAGE_DER[ku as CellKeyUsage];
}

function readKeyUsage(r: ByteReader, lenient: boolean, allowed: readonly CellKeyUsage[], what: string): CellKeyUsage {
  const el = read(r, TAG_BIT_STRING, lenient, what);
  const value = r.bytes.subarray(el.valueStart, el.end);
  for (const ku of allowed) {
    const want = KEY_USAGE_DER[ku].subarray(2);
    if (value.length === want.length && value.every((b, i) => b === want[i])) return ku;
  }
  return malformed(el.start, `${what} is not ${allowed.join(', ')} (03 02 07 80, 03 02 03 08, 03 02 02 04)`);
}

/** Whether a cell holds management keys or the prepayment top-up KA key. */
export type CellUsage = 'management' | 'prepayment';

/**
 * A trust-anchor cell of a device: (Remote Party Role, key usage, cell usage). Encoded
 * `SEQUENCE { role INTEGER, keyUsage BIT STRING, cellUsage INTEGER OPTIONAL }`, the cell usage
 * absent for management and 1 for prepayment top-up.
 * @see docs/domain.md §9 (a cell), §2 (trust anchors are cells)
 * @example
 * ```ts
 * import type { TrustAnchorCell } from '@smki/gbcs';
 * const prepaymentKa: TrustAnchorCell = { role: 2, keyUsage: 'keyAgreement', cellUsage: 'prepayment' };
 * console.log(prepaymentKa);
 * ```
 */
export interface TrustAnchorCell {
  /** The Remote Party Role whose key the cell holds (0 root, 1 recovery, 2 supplier, …). */
  readonly role: number;
  /** The key usage of the cell. */
  readonly keyUsage: CellKeyUsage;
  /** `management` (the cell usage is absent on the wire; the default) or `prepayment` (1). */
  readonly cellUsage?: CellUsage;
}

const CELL_USAGE_PREPAYMENT = 1n;

function encodeCell(cell: TrustAnchorCell, what: string, form: LengthForm = 'minimal'): Uint8Array {
  if (typeof cell !== 'object' || cell === null) invalid(`${what} must be an object`);
  const role = cell.role;
  if (!Number.isInteger(role) || role < 0 || role > 255) invalid(`${what}: role must be an integer 0–255`, String(role));
  const parts = [unsigned(TAG_INTEGER, BigInt(role)), keyUsageDer(cell.keyUsage, ['digitalSignature', 'keyAgreement', 'keyCertSign'], `${what}: keyUsage`)];
  const usage = cell.cellUsage ?? 'management';
  if (usage === 'prepayment') parts.push(unsigned(TAG_INTEGER, CELL_USAGE_PREPAYMENT));
  else if (usage !== 'management') invalid(`${what}: cellUsage must be management or prepayment`, String(usage).slice(0, 24));
  return concatBytes(...parts);
}

function readCellBody(r: ByteReader, lenient: boolean, what: string): TrustAnchorCell {
  const role = Number(readUnsigned(r, TAG_INTEGER, lenient, `${what} role`, 255n));
  const keyUsage = readKeyUsage(r, lenient, ['digitalSignature', 'keyAgreement', 'keyCertSign'], `${what} keyUsage`);
  let cellUsage: CellUsage = 'management';
  if (!r.done) {
    const at = r.offset;
    const u = readUnsigned(r, TAG_INTEGER, lenient, `${what} cellUsage`, 255n);
    if (u !== CELL_USAGE_PREPAYMENT) malformed(at, `${what} cellUsage ${u} is not 1 (prepayment top-up; management is absent)`);
    cellUsage = 'prepayment';
  }
  end(r, what);
  return { role, keyUsage, cellUsage };
}

function readCell(r: ByteReader, tag: number, lenient: boolean, what: string): TrustAnchorCell {
  const el = read(r, tag, lenient, what);
  return readCellBody(inner(r, el), lenient, what);
}

// ---- CS02b: the fields ----------------------------------------------------------------------------

/**
 * A sequence-number floor for one cell usage, as in control [5] and inside [6]:
 * `SEQUENCE { usage INTEGER (0 prepayment top-up), seq INTEGER }`.
 * @see docs/domain.md §9 (control [5], [6])
 * @example
 * ```ts
 * import type { UsageFloor } from '@smki/gbcs';
 * const prepaymentFloor: UsageFloor = { usage: 0, floor: 0n };
 * console.log(prepaymentFloor);
 * ```
 */
export interface UsageFloor {
  /** The cell usage the floor is for (0: prepayment top-up). */
  readonly usage: number;
  /** The new floor of its counter (unsigned 64-bit). */
  readonly floor: bigint;
}

/**
 * A new counter floor for another role, as in control [6]:
 * `SEQUENCE { role INTEGER, floor INTEGER, SEQUENCE OF UsageFloor OPTIONAL }`.
 * @see docs/domain.md §9 (control [6]; mode 7 resets the supplier's floor, mode 8 those of roles 2–5)
 * @example
 * ```ts
 * import type { RoleFloor } from '@smki/gbcs';
 * const supplierReset: RoleFloor = { role: 2, floor: 0n };
 * console.log(supplierReset);
 * ```
 */
export interface RoleFloor {
  /** The Remote Party Role whose counter floor is set. */
  readonly role: number;
  /** The new floor (unsigned 64-bit). */
  readonly floor: bigint;
  /** Floors per cell usage, when given. */
  readonly usageFloors?: readonly UsageFloor[];
}

/**
 * One replacement: a new certificate (X.509 DER) and the cell it goes into.
 * @see docs/domain.md §9 (replacements)
 * @example
 * ```ts
 * import type { CredentialsReplacement } from '@smki/gbcs';
 * const r: CredentialsReplacement = { certificate: new Uint8Array([0x30, 0x00]), cell: { role: 2, keyUsage: 'digitalSignature' } };
 * console.log(r.cell.role);
 * ```
 */
export interface CredentialsReplacement {
  /** The new certificate, DER. */
  readonly certificate: Uint8Array;
  /** The target cell. */
  readonly cell: TrustAnchorCell;
}

/**
 * The fields of a CS02b payload, as the encoder takes them and the decoder returns them. The
 * decoder always writes `cellUsage` of every cell (`management` when absent on the wire) and
 * leaves out the optional fields that are absent.
 * @see docs/domain.md §9 (CS02b payload)
 * @example
 * ```ts
 * import type { UpdateSecurityCredentialsPayload } from '@smki/gbcs';
 * const p: UpdateSecurityCredentialsPayload = { mode: 4, sequenceNumber: 1000n, disapplyTimeChecks: true, replacements: [], certificationPath: [] };
 * console.log(p.mode);
 * ```
 */
export interface UpdateSecurityCredentialsPayload {
  /** The replacement mode (message code − 0x100). */
  readonly mode: number;
  /** Control [0]: a plaintext symmetric key (unused in the reference data). */
  readonly symmetricKey?: Uint8Array;
  /**
   * Control [1]: `true` writes 1 (disapply time-based certificate checks; immediate commands),
   * `false` writes 0 (apply), absent leaves it out (future-dated commands).
   */
  readonly disapplyTimeChecks?: boolean;
  /** Control [2]: the authorising cell; absent for mode 4 (ACB by ACB). */
  readonly authorisingCell?: TrustAnchorCell;
  /** Control [3]: the authorising sequence number, equal to the header's originator counter. */
  readonly sequenceNumber: bigint;
  /** Control [4]: a new floor for the authorising role's counter. */
  readonly authorisingFloor?: bigint;
  /** Control [5]: floors of the authorising role's other cell usages. */
  readonly authorisingUsageFloors?: readonly UsageFloor[];
  /** Control [6]: other roles' floors. */
  readonly otherRoleFloors?: readonly RoleFloor[];
  /** The new certificates and their cells, in order. */
  readonly replacements: readonly CredentialsReplacement[];
  /** The issuing CA certificates that signed the new ones (DER). */
  readonly certificationPath: readonly Uint8Array[];
  /** When to replace (whole seconds, UTC); absent = at once. */
  readonly executionTime?: Date;
}

function checkU64(v: unknown, what: string): bigint {
  if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) invalid(`${what} must be a bigint in [0, 2^64)`, typeof v === 'bigint' ? String(v) : typeof v);
  return v;
}

function checkSmall(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) invalid(`${what} must be an integer 0–255`, String(v));
  return v;
}

function checkList<T>(v: unknown, what: string, min = 0): readonly T[] {
  if (!Array.isArray(v)) invalid(`${what} must be an array`);
  if (v.length < min || v.length > MAX_LIST) invalid(`${what} must hold ${min} to ${MAX_LIST} entries`, String(v.length));
  return v as readonly T[];
}

function checkDer(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length === 0 || v[0] !== TAG_SEQUENCE) invalid(`${what} must be DER bytes (a SEQUENCE)`);
  try {
    checkDerStructure(v, 16, 4096);
  } catch (e) {
    throw new SmkiError('ERR_GBCS_INVALID_FIELD', `${what} is not one well-formed DER object`, { detail: e instanceof Error ? e.message : 'undecodable' }, { cause: e });
  }
  return v;
}

function encodeUsageFloors(list: unknown, what: string): Uint8Array {
  return concatBytes(
    ...checkList<UsageFloor>(list, what).map((f, i) => {
      if (typeof f !== 'object' || f === null) invalid(`${what}[${i}] must be an object`);
      return tlv(TAG_SEQUENCE, concatBytes(unsigned(TAG_INTEGER, BigInt(checkSmall(f.usage, `${what}[${i}].usage`))), unsigned(TAG_INTEGER, checkU64(f.floor, `${what}[${i}].floor`))));
    }),
  );
}

/**
 * The CS02b payload, DER: `SEQUENCE { control, replacements, certificationPath, executionDateTime
 * OPTIONAL }` with the control block `SEQUENCE { mode, [0] key OPTIONAL, [1] time checks OPTIONAL,
 * [2] authorising cell OPTIONAL, [3] sequence number, [4] floor OPTIONAL, [5] usage floors
 * OPTIONAL, [6] other roles' floors OPTIONAL }`. This writes the fields as given; the mode's rules
 * are {@link buildUpdateSecurityCredentials}'s and {@link checkUpdateSecurityCredentials}'s.
 * @throws SmkiError `ERR_GBCS_INVALID_FIELD` (a field out of range: mode not 0–255, counters not
 *   unsigned 64-bit, a cell's role not 0–255 or key usage not DS / KA / keyCertSign, a certificate
 *   that is not one DER SEQUENCE, more than 64 entries in a list, a time not a whole-second Date)
 * @see docs/domain.md §9 (CS02b payload)
 * @example
 * ```ts
 * import { encodeUpdateSecurityCredentialsPayload, decodeUpdateSecurityCredentials } from '@smki/gbcs';
 * const der = encodeUpdateSecurityCredentialsPayload({ mode: 4, sequenceNumber: 7n, replacements: [], certificationPath: [] });
 * console.log(decodeUpdateSecurityCredentials(der).sequenceNumber); // 7n
 * ```
 */
export function encodeUpdateSecurityCredentialsPayload(fields: UpdateSecurityCredentialsPayload): Uint8Array {
  if (typeof fields !== 'object' || fields === null) invalid('CS02b fields must be an object');
  const control: Uint8Array[] = [unsigned(TAG_INTEGER, BigInt(checkSmall(fields.mode, 'mode')))];
  if (fields.symmetricKey !== undefined) {
    if (!(fields.symmetricKey instanceof Uint8Array)) invalid('symmetricKey must be bytes');
    control.push(tlv(TAG_C0, fields.symmetricKey));
  }
  if (fields.disapplyTimeChecks !== undefined) {
    if (typeof fields.disapplyTimeChecks !== 'boolean') invalid('disapplyTimeChecks must be a boolean');
    control.push(unsigned(TAG_C1, fields.disapplyTimeChecks ? 1n : 0n));
  }
  if (fields.authorisingCell !== undefined) control.push(tlv(TAG_C2, encodeCell(fields.authorisingCell, 'authorisingCell')));
  control.push(unsigned(TAG_C3, checkU64(fields.sequenceNumber, 'sequenceNumber')));
  if (fields.authorisingFloor !== undefined) control.push(unsigned(TAG_C4, checkU64(fields.authorisingFloor, 'authorisingFloor')));
  if (fields.authorisingUsageFloors !== undefined) control.push(tlv(TAG_C5, encodeUsageFloors(fields.authorisingUsageFloors, 'authorisingUsageFloors')));
  if (fields.otherRoleFloors !== undefined) {
    const roles = checkList<RoleFloor>(fields.otherRoleFloors, 'otherRoleFloors').map((f, i) => {
      if (typeof f !== 'object' || f === null) invalid(`otherRoleFloors[${i}] must be an object`);
      const parts = [unsigned(TAG_INTEGER, BigInt(checkSmall(f.role, `otherRoleFloors[${i}].role`))), unsigned(TAG_INTEGER, checkU64(f.floor, `otherRoleFloors[${i}].floor`))];
      if (f.usageFloors !== undefined) parts.push(tlv(TAG_SEQUENCE, encodeUsageFloors(f.usageFloors, `otherRoleFloors[${i}].usageFloors`)));
      return tlv(TAG_SEQUENCE, concatBytes(...parts));
    });
    control.push(tlv(TAG_C6, concatBytes(...roles)));
  }
  const replacements = checkList<CredentialsReplacement>(fields.replacements, 'replacements').map((r, i) => {
    if (typeof r !== 'object' || r === null) invalid(`replacements[${i}] must be an object`);
    return tlv(TAG_SEQUENCE, concatBytes(checkDer(r.certificate, `replacements[${i}].certificate`), tlv(TAG_SEQUENCE, encodeCell(r.cell, `replacements[${i}].cell`))));
  });
  const path = checkList<Uint8Array>(fields.certificationPath, 'certificationPath').map((c, i) => checkDer(c, `certificationPath[${i}]`));
  const parts = [tlv(TAG_SEQUENCE, concatBytes(...control)), tlv(TAG_SEQUENCE, concatBytes(...replacements)), tlv(TAG_SEQUENCE, concatBytes(...path))];
  if (fields.executionTime !== undefined) parts.push(generalizedTime(fields.executionTime, 'executionTime'));
  return tlv(TAG_SEQUENCE, concatBytes(...parts));
}

function readUsageFloors(r: ByteReader, what: string): UsageFloor[] {
  const out: UsageFloor[] = [];
  while (!r.done) {
    if (out.length >= MAX_LIST) malformed(r.offset, `${what}: more than ${MAX_LIST} entries`);
    const el = read(r, TAG_SEQUENCE, false, what);
    const f = inner(r, el);
    const usage = Number(readUnsigned(f, TAG_INTEGER, false, `${what} usage`, 255n));
    const floor = readUnsigned(f, TAG_INTEGER, false, `${what} seq`, U64_MAX);
    end(f, what);
    out.push({ usage, floor });
  }
  return out;
}

/** Read an optional context-tagged control field when the next byte is its tag. */
function peekTag(r: ByteReader): number | undefined {
  return r.done ? undefined : (r.bytes[r.offset] as number);
}

/**
 * Decode a CS02b payload (docs/domain.md §9), every field. Strict DER: one SEQUENCE and nothing
 * after it; the control block's fields in tag order ([0] to [6], [3] required), minimal
 * non-negative INTEGERs (counters below 2^64), key usages exactly `03 02 07 80`, `03 02 03 08` or
 * `03 02 02 04`, a cell usage absent or 1, certificates that are well-formed DER SEQUENCEs, at most
 * 64 entries per list, the execution time `YYYYMMDDHHMMSSZ`. Bounded: no recursion on the input.
 * It does not judge the mode's rules: see {@link checkUpdateSecurityCredentials}.
 * @throws SmkiError `ERR_GBCS_MALFORMED` (with the offset in the payload; a DER error as cause)
 * @see docs/domain.md §9 (CS02b payload)
 * @example
 * ```ts
 * import { decodeUpdateSecurityCredentials, encodeUpdateSecurityCredentialsPayload } from '@smki/gbcs';
 * const der = encodeUpdateSecurityCredentialsPayload({ mode: 4, sequenceNumber: 1n, disapplyTimeChecks: true, replacements: [], certificationPath: [] });
 * console.log(decodeUpdateSecurityCredentials(der).disapplyTimeChecks); // true
 * ```
 */
export function decodeUpdateSecurityCredentials(payload: Uint8Array): UpdateSecurityCredentialsPayload {
  return decoding('CS02b payload', payload, (p) => {
    const top = new ByteReader(p);
    const seq = read(top, TAG_SEQUENCE, false, 'CS02b SEQUENCE');
    end(top, 'CS02b SEQUENCE');
    const r = inner(top, seq);

    const c = inner(r, read(r, TAG_SEQUENCE, false, 'control'));
    const mode = Number(readUnsigned(c, TAG_INTEGER, false, 'mode', 255n));
    let symmetricKey: Uint8Array | undefined;
    let disapplyTimeChecks: boolean | undefined;
    let authorisingCell: TrustAnchorCell | undefined;
    if (peekTag(c) === TAG_C0) {
      const el = read(c, TAG_C0, false, 'control [0]');
      symmetricKey = p.slice(el.valueStart, el.end);
    }
    if (peekTag(c) === TAG_C1) {
      const at = c.offset;
      const v = readUnsigned(c, TAG_C1, false, 'control [1]', 255n);
      if (v > 1n) malformed(at, `control [1] is ${v}, not 0 (apply) or 1 (disapply)`);
      disapplyTimeChecks = v === 1n;
    }
    if (peekTag(c) === TAG_C2) authorisingCell = readCell(c, TAG_C2, false, 'authorising cell [2]');
    const sequenceNumber = readUnsigned(c, TAG_C3, false, 'authorising sequence number [3]', U64_MAX);
    let authorisingFloor: bigint | undefined;
    let authorisingUsageFloors: UsageFloor[] | undefined;
    let otherRoleFloors: RoleFloor[] | undefined;
    if (peekTag(c) === TAG_C4) authorisingFloor = readUnsigned(c, TAG_C4, false, 'control [4]', U64_MAX);
    if (peekTag(c) === TAG_C5) authorisingUsageFloors = readUsageFloors(inner(c, read(c, TAG_C5, false, 'control [5]')), 'control [5]');
    if (peekTag(c) === TAG_C6) {
      const l = inner(c, read(c, TAG_C6, false, 'control [6]'));
      otherRoleFloors = [];
      while (!l.done) {
        if (otherRoleFloors.length >= MAX_LIST) malformed(l.offset, `control [6]: more than ${MAX_LIST} entries`);
        const f = inner(l, read(l, TAG_SEQUENCE, false, 'control [6] entry'));
        const role = Number(readUnsigned(f, TAG_INTEGER, false, 'control [6] role', 255n));
        const floor = readUnsigned(f, TAG_INTEGER, false, 'control [6] floor', U64_MAX);
        let usageFloors: UsageFloor[] | undefined;
        if (!f.done) usageFloors = readUsageFloors(inner(f, read(f, TAG_SEQUENCE, false, 'control [6] usage floors')), 'control [6] usage floors');
        end(f, 'control [6] entry');
        otherRoleFloors.push({ role, floor, ...(usageFloors !== undefined ? { usageFloors } : {}) });
      }
    }
    end(c, 'control block');

    const rl = inner(r, read(r, TAG_SEQUENCE, false, 'replacements'));
    const replacements: CredentialsReplacement[] = [];
    while (!rl.done) {
      if (replacements.length >= MAX_LIST) malformed(rl.offset, `replacements: more than ${MAX_LIST} entries`);
      const e = inner(rl, read(rl, TAG_SEQUENCE, false, 'replacement'));
      const certificate = readCertificate(e, false, 'replacement certificate');
      const cell = readCell(e, TAG_SEQUENCE, false, 'target cell');
      end(e, 'replacement');
      replacements.push({ certificate, cell });
    }

    const pl = inner(r, read(r, TAG_SEQUENCE, false, 'certificationPath'));
    const certificationPath: Uint8Array[] = [];
    while (!pl.done) {
      if (certificationPath.length >= MAX_LIST) malformed(pl.offset, `certificationPath: more than ${MAX_LIST} entries`);
      certificationPath.push(readCertificate(pl, false, 'certification path certificate'));
    }

    let executionTime: Date | undefined;
    if (!r.done) executionTime = readTime(r, false, 'execution date-time');
    end(r, 'execution date-time');
    return {
      mode,
      ...(symmetricKey !== undefined ? { symmetricKey } : {}),
      ...(disapplyTimeChecks !== undefined ? { disapplyTimeChecks } : {}),
      ...(authorisingCell !== undefined ? { authorisingCell } : {}),
      sequenceNumber,
      ...(authorisingFloor !== undefined ? { authorisingFloor } : {}),
      ...(authorisingUsageFloors !== undefined ? { authorisingUsageFloors } : {}),
      ...(otherRoleFloors !== undefined ? { otherRoleFloors } : {}),
      replacements,
      certificationPath,
      ...(executionTime !== undefined ? { executionTime } : {}),
    };
  });
}

// ---- CS02b: the rules ------------------------------------------------------------------------------

/** The first CS02b message code (mode 0). */
export const UPDATE_SECURITY_CREDENTIALS_BASE_CODE = 0x0100;

/** Roles that have DS and KA management cells in a device (docs/domain.md §9, §10). */
const CELL_ROLES: readonly number[] = [1, 2, 3, 4, 5, 6];
const ROOT_ROLE = 0;
const SUPPLIER_ROLE = 2;

/** The table entry of a mode this toolkit supports, or the refusal. */
function supportedMode(mode: unknown): CredentialsModeEntry {
  const e = typeof mode === 'number' && Number.isInteger(mode) ? CREDENTIALS_MODES[mode] : undefined;
  if (e === undefined) refuse('ERR_GBCS_CREDENTIALS_MODE_UNSUPPORTED', 'not a CS02b replacement mode (0–9)', String(mode).slice(0, 16));
  if (!e.supported) refuse('ERR_GBCS_CREDENTIALS_MODE_UNSUPPORTED', `CS02b mode ${e.mode} (${e.name}) is not supported: its layout is not public`, String(e.mode));
  return e;
}

/** Whether a cell exists in a device: DS/KA management cells of roles 1–6, the supplier's prepayment KA cell, the root's keyCertSign cell. */
function cellExists(cell: TrustAnchorCell): boolean {
  const usage = cell.cellUsage ?? 'management';
  if (cell.keyUsage === 'keyCertSign') return cell.role === ROOT_ROLE && usage === 'management';
  if (usage === 'prepayment') return cell.role === SUPPLIER_ROLE && cell.keyUsage === 'keyAgreement';
  return CELL_ROLES.includes(cell.role);
}

function cellText(cell: TrustAnchorCell): string {
  return `role ${cell.role} ${cell.keyUsage} ${cell.cellUsage ?? 'management'}`;
}

/** What {@link checkUpdateSecurityCredentials} may check beyond the payload. */
export interface UpdateSecurityCredentialsContext {
  /** The header's originator counter: [3] must equal it. */
  readonly originatorCounter?: bigint;
  /** The header's originator (the signer's entity id, checked against `signerCertificate`). */
  readonly originator?: Eui64 | string;
  /**
   * The certificate of the key that signs (or signed) the command: its role must be the mode's
   * authorising role, its key usage digitalSignature, its entity the originator. Must be absent
   * for mode 4 (no User signature).
   */
  readonly signerCertificate?: CertificateInput;
  /** Whether the command carries a User signature: a signature on a mode 4 command is refused. */
  readonly signed?: boolean;
}

/**
 * Check a CS02b payload against its mode's rules (docs/domain.md §10) and return the mode's
 * catalogue entry:
 * - the mode is 2 to 8 (0, 1 and 9 have no public layout);
 * - the authorising cell [2] is absent for mode 4 and otherwise the DS management cell of the
 *   mode's authorising role; a signer certificate, when given, has that role, digitalSignature and
 *   the originator's entity id; mode 4 carries no User signature and takes no signer certificate;
 * - [3] equals the header's originator counter (when given);
 * - at least one replacement; every target cell exists in a device, the mode may replace it (mode
 *   8 anything but the root cell), and no cell is targeted twice;
 * - every replacement certificate parses, its Remote Party Role is the cell's role and its key
 *   usage is exactly the cell's (digitalSignature for a DS cell, keyAgreement for a KA cell).
 * @throws SmkiError `ERR_GBCS_CREDENTIALS_MODE_UNSUPPORTED`, `ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH`,
 *   `ERR_GBCS_CREDENTIALS_COUNTER_MISMATCH`, `ERR_GBCS_CREDENTIALS_CELL_NOT_ALLOWED`,
 *   `ERR_GBCS_CREDENTIALS_CERTIFICATE_ROLE`, `ERR_GBCS_CREDENTIALS_CERTIFICATE_KEY_USAGE`,
 *   `ERR_GBCS_INVALID_FIELD` (no replacement), `ERR_CERT_MALFORMED` (a certificate that does not parse)
 * @see docs/domain.md §10 (the rules), §9 (modes and who signs)
 * @example
 * ```ts
 * import { checkUpdateSecurityCredentials, decodeUpdateSecurityCredentials, parseMessage } from '@smki/gbcs';
 * declare const signedCommand: Uint8Array;
 * const m = parseMessage(signedCommand);
 * const entry = checkUpdateSecurityCredentials(decodeUpdateSecurityCredentials(m.payload), { originatorCounter: m.originatorCounter, signed: m.signature !== null });
 * console.log(entry.name);
 * ```
 */
export function checkUpdateSecurityCredentials(payload: UpdateSecurityCredentialsPayload, context: UpdateSecurityCredentialsContext = {}): CredentialsModeEntry {
  if (typeof payload !== 'object' || payload === null) invalid('CS02b fields must be an object');
  const entry = supportedMode(payload.mode);
  const authorising = entry.authorisingRole as number;

  // Who authorises: the cell, the signer's certificate, the signature.
  if (!entry.userSignature) {
    if (payload.authorisingCell !== undefined) refuse('ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH', `mode ${entry.mode} (${entry.name}) has no authorising cell: the ACB MAC authorises it`);
    if (context.signerCertificate !== undefined) refuse('ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH', `mode ${entry.mode} (${entry.name}) carries no User signature`);
    if (context.signed === true) refuse('ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH', `mode ${entry.mode} (${entry.name}) must not carry a User signature`);
  } else {
    const cell = payload.authorisingCell;
    if (cell === undefined) refuse('ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH', `mode ${entry.mode} (${entry.name}) needs the authorising cell of role ${authorising}`);
    if (cell.role !== authorising || cell.keyUsage !== 'digitalSignature' || (cell.cellUsage ?? 'management') !== 'management') {
      refuse('ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH', `mode ${entry.mode} (${entry.name}) is authorised by the DS management cell of role ${authorising}, not ${cellText(cell)}`, cellText(cell));
    }
    if (context.signerCertificate !== undefined) {
      const s = toCertificate(context.signerCertificate);
      if (s.role !== authorising) refuse('ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH', `the signer's role is ${String(s.role)}, mode ${entry.mode} needs role ${authorising}`, String(s.role));
      if (s.keyUsage.length !== 1 || s.keyUsage[0] !== 'digitalSignature') refuse('ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH', "the signer's certificate is not a digitalSignature certificate", s.keyUsage.join(','));
      if (context.originator !== undefined && s.entityId !== parseEui64(context.originator)) {
        refuse('ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH', "the signer's certificate is not the originator's", String(s.entityId));
      }
    }
  }

  // [3] is the header's counter.
  if (context.originatorCounter !== undefined && payload.sequenceNumber !== context.originatorCounter) {
    refuse('ERR_GBCS_CREDENTIALS_COUNTER_MISMATCH', `the authorising sequence number ${String(payload.sequenceNumber)} is not the originator counter ${context.originatorCounter}`, String(payload.sequenceNumber));
  }

  // What is replaced, and by what.
  if (!Array.isArray(payload.replacements) || payload.replacements.length === 0) invalid('a CS02b command replaces at least one cell');
  const seen = new Set<string>();
  for (const [i, r] of (payload.replacements as readonly unknown[]).entries()) {
    if (typeof r !== 'object' || r === null) invalid(`replacements[${i}] must be an object`);
    const { cell: rawCell, certificate } = r as { cell?: unknown; certificate?: unknown };
    if (typeof rawCell !== 'object' || rawCell === null) invalid(`replacements[${i}].cell must be an object`);
    const cell = rawCell as TrustAnchorCell;
    encodeCell(cell, `replacements[${i}].cell`);
    if (!cellExists(cell)) refuse('ERR_GBCS_CREDENTIALS_CELL_NOT_ALLOWED', `replacement ${i}: a device has no cell ${cellText(cell)}`, cellText(cell));
    const allowed = entry.targets === 'anyExceptRoot' ? cell.role !== ROOT_ROLE : entry.targets.includes(cell.role);
    if (!allowed) refuse('ERR_GBCS_CREDENTIALS_CELL_NOT_ALLOWED', `replacement ${i}: mode ${entry.mode} (${entry.name}) may not replace the cell ${cellText(cell)}`, cellText(cell));
    const key = cellText(cell);
    if (seen.has(key)) refuse('ERR_GBCS_CREDENTIALS_CELL_NOT_ALLOWED', `replacement ${i}: the cell ${key} is targeted twice`, key);
    seen.add(key);
    const cert: SmkiCertificate = certificateOf(certificate);
    if (cert.role !== cell.role) refuse('ERR_GBCS_CREDENTIALS_CERTIFICATE_ROLE', `replacement ${i}: the certificate's role is ${String(cert.role)}, the cell's ${cell.role}`, String(cert.role));
    if (cert.keyUsage.length !== 1 || cert.keyUsage[0] !== cell.keyUsage) {
      refuse('ERR_GBCS_CREDENTIALS_CERTIFICATE_KEY_USAGE', `replacement ${i}: the certificate's key usage is ${cert.keyUsage.join(',') || 'none'}, the cell's ${cell.keyUsage}`, cert.keyUsage.join(','));
    }
  }
  return entry;
}

/** Options of {@link buildUpdateSecurityCredentials}: the header, the mode and what to replace. */
export interface UpdateSecurityCredentialsOptions extends CommandOptions {
  /** The replacement mode, 2 to 8; the message code is 0x0100 + mode. */
  readonly mode: number;
  /** Control [2]: the authorising cell (the DS management cell of the mode's authorising role); omit for mode 4. */
  readonly authorisingCell?: TrustAnchorCell;
  /** The new certificates and their cells (certificates as DER, PEM or parsed). */
  readonly replacements: readonly {
    /** The new certificate (DER, PEM or parsed). */
    readonly certificate: CertificateInput;
    /** The cell it goes into. */
    readonly cell: TrustAnchorCell;
  }[];
  /** The issuing CA certificates (DER, PEM or parsed). */
  readonly certificationPath: readonly CertificateInput[];
  /** When to replace; absent = at once. */
  readonly executionTime?: Date;
  /**
   * Control [1]. Default: `true` (write 1, disapply) for an immediate command, absent for a
   * future-dated one, as the reference data does.
   */
  readonly disapplyTimeChecks?: boolean;
  /** Control [0]: a plaintext symmetric key (unused in the reference data). */
  readonly symmetricKey?: Uint8Array;
  /** Control [4]: a new floor for the authorising role's counter (mode 2 in the reference data: 0). */
  readonly authorisingFloor?: bigint;
  /** Control [5]: floors of the authorising role's other cell usages (mode 2: `[{ usage: 0, floor: 0n }]`). */
  readonly authorisingUsageFloors?: readonly UsageFloor[];
  /** Control [6]: other roles' floors (mode 7 resets the supplier's, mode 8 those of roles 2–5). */
  readonly otherRoleFloors?: readonly RoleFloor[];
  /** The certificate of the key that will sign: checked to be the mode's authorising role, DS, the originator. */
  readonly signerCertificate?: CertificateInput;
}

/**
 * CS02b Update Security Credentials (DUIS 6.15.1, message code 0x0100 + mode, modes 2 to 8):
 * replace trust anchors in a device. Fills [3] with the header's originator counter, checks the
 * mode's rules ({@link checkUpdateSecurityCredentials}) and returns the unsigned pre-command. The
 * authorising party signs it with {@link signPreCommand}, except mode 4 (ACB by ACB), which the
 * ACB MAC alone authorises.
 * @throws SmkiError `ERR_GBCS_CREDENTIALS_MODE_UNSUPPORTED`, `ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH`,
 *   `ERR_GBCS_CREDENTIALS_COUNTER_MISMATCH`, `ERR_GBCS_CREDENTIALS_CELL_NOT_ALLOWED`,
 *   `ERR_GBCS_CREDENTIALS_CERTIFICATE_ROLE`, `ERR_GBCS_CREDENTIALS_CERTIFICATE_KEY_USAGE` (the rules of
 *   {@link checkUpdateSecurityCredentials}); `ERR_GBCS_INVALID_FIELD` (counter, EUI-64, date-time or a
 *   payload field out of range); `ERR_CERT_MALFORMED`
 * @see docs/domain.md §9 (CS02b), §10 (the rules)
 * @example
 * ```ts
 * import { buildUpdateSecurityCredentials, signPreCommand } from '@smki/gbcs';
 * import type { KeyObject } from 'node:crypto';
 * declare const newSupplierDs: Uint8Array, organisationCa: Uint8Array, currentSupplierDsKey: KeyObject;
 * const pre = buildUpdateSecurityCredentials({
 *   originator: '90B3D51F30010000', recipient: '00DB1234567890A0', counter: 2000n, mode: 2,
 *   authorisingCell: { role: 2, keyUsage: 'digitalSignature' },
 *   replacements: [{ certificate: newSupplierDs, cell: { role: 2, keyUsage: 'digitalSignature' } }],
 *   certificationPath: [organisationCa], authorisingFloor: 0n, authorisingUsageFloors: [{ usage: 0, floor: 0n }],
 * });
 * const signed = await signPreCommand(pre, currentSupplierDsKey);
 * ```
 */
export function buildUpdateSecurityCredentials(options: UpdateSecurityCredentialsOptions): Uint8Array {
  if (typeof options !== 'object' || options === null) invalid('command options must be an object');
  const counter = checkU64(options.counter, 'counter');
  if (!Array.isArray(options.replacements)) invalid('replacements must be an array');
  if (!Array.isArray(options.certificationPath)) invalid('certificationPath must be an array');
  const fields: UpdateSecurityCredentialsPayload = {
    mode: options.mode,
    ...(options.symmetricKey !== undefined ? { symmetricKey: options.symmetricKey } : {}),
    ...(options.disapplyTimeChecks !== undefined ? { disapplyTimeChecks: options.disapplyTimeChecks } : options.executionTime === undefined ? { disapplyTimeChecks: true } : {}),
    ...(options.authorisingCell !== undefined ? { authorisingCell: options.authorisingCell } : {}),
    sequenceNumber: counter,
    ...(options.authorisingFloor !== undefined ? { authorisingFloor: options.authorisingFloor } : {}),
    ...(options.authorisingUsageFloors !== undefined ? { authorisingUsageFloors: options.authorisingUsageFloors } : {}),
    ...(options.otherRoleFloors !== undefined ? { otherRoleFloors: options.otherRoleFloors } : {}),
    replacements: options.replacements.map((r) => ({ certificate: certificateDer(r?.certificate), cell: r?.cell })),
    certificationPath: options.certificationPath.map((c) => certificateDer(c)),
    ...(options.executionTime !== undefined ? { executionTime: options.executionTime } : {}),
  };
  const entry = checkUpdateSecurityCredentials(fields, {
    originatorCounter: counter,
    originator: options.originator,
    ...(options.signerCertificate !== undefined ? { signerCertificate: options.signerCertificate } : {}),
  });
  return preCommand(options, entry.messageCode, encodeUpdateSecurityCredentialsPayload(fields));
}

/** Certificates parsed lately, by their DER: a batch of commands carries the same few replacements. */
const PARSED = new Map<string, SmkiCertificate>();
const MAX_PARSED = 64;

/** A certificate parsed (a DER one parsed once while it stays among the last {@link MAX_PARSED}; a parsed certificate is frozen, so sharing it is safe). */
function certificateOf(c: unknown): SmkiCertificate {
  if (!(c instanceof Uint8Array)) return toCertificate(c as CertificateInput);
  const key = Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString('latin1');
  let cert = PARSED.get(key);
  if (cert === undefined) {
    cert = toCertificate(c);
    if (PARSED.size >= MAX_PARSED) PARSED.delete(PARSED.keys().next().value as string);
    PARSED.set(key, cert);
  }
  return cert;
}

function certificateDer(c: unknown): Uint8Array {
  if (c instanceof Uint8Array) return c;
  return toCertificate(c as CertificateInput).der;
}

function preCommand(o: CommandOptions, messageCode: number, payload: Uint8Array): Uint8Array {
  if (o.signatureField !== undefined && o.signatureField !== 'empty' && o.signatureField !== 'absent') {
    invalid('signatureField of a pre-command must be empty or absent', String(o.signatureField));
  }
  return buildGeneralSigning({
    cra: 'command',
    originatorCounter: checkU64(o.counter, 'counter'),
    originator: o.originator,
    recipient: o.recipient,
    ...(o.dateTime !== undefined ? { dateTime: o.dateTime } : {}),
    messageCode,
    payload,
    signatureField: o.signatureField ?? 'empty',
  });
}

/** What {@link decodeUpdateSecurityCredentialsCommand} returns. */
export interface DecodedUpdateSecurityCredentialsCommand {
  /** The mode's catalogue entry. */
  readonly entry: CredentialsModeEntry;
  /** The decoded payload. */
  readonly payload: UpdateSecurityCredentialsPayload;
  /** The parsed message. */
  readonly message: GbcsMessage;
}

/**
 * Read a CS02b command as a validator does: parse the message, decode its payload, and check that
 * the payload's mode is the message code's, [3] is the header's originator counter, a mode 4
 * command carries no User signature, and the mode's rules hold ({@link checkUpdateSecurityCredentials}).
 * Whether a signature that is present verifies, and under whose certificate, is the caller's
 * question (`verifySignature` with the authorising party's DS certificate).
 * @throws SmkiError `ERR_GBCS_MALFORMED` (message or payload); `ERR_GBCS_CREDENTIALS_MODE_UNSUPPORTED`
 *   (a message code outside 0x0100–0x0109, a command CRA flag missing, or mode 0, 1, 9);
 *   `ERR_GBCS_CREDENTIALS_MODE_MISMATCH`; and the codes of {@link checkUpdateSecurityCredentials}:
 *   `ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH`, `ERR_GBCS_CREDENTIALS_COUNTER_MISMATCH`,
 *   `ERR_GBCS_CREDENTIALS_CELL_NOT_ALLOWED`, `ERR_GBCS_CREDENTIALS_CERTIFICATE_ROLE`,
 *   `ERR_GBCS_CREDENTIALS_CERTIFICATE_KEY_USAGE`, `ERR_GBCS_INVALID_FIELD`, `ERR_CERT_MALFORMED`
 * @see docs/domain.md §9, §10
 * @example
 * ```ts
 * import { decodeUpdateSecurityCredentialsCommand } from '@smki/gbcs';
 * declare const command: Uint8Array;
 * const { entry, payload } = decodeUpdateSecurityCredentialsCommand(command);
 * console.log(entry.name, payload.replacements.length);
 * ```
 */
export function decodeUpdateSecurityCredentialsCommand(message: Uint8Array | GbcsMessage, context: Pick<UpdateSecurityCredentialsContext, 'signerCertificate'> = {}): DecodedUpdateSecurityCredentialsCommand {
  const m = message instanceof Uint8Array ? parseMessage(message) : message;
  const mode = m.messageCode - UPDATE_SECURITY_CREDENTIALS_BASE_CODE;
  if (m.cra !== 'command') refuse('ERR_GBCS_CREDENTIALS_MODE_UNSUPPORTED', `a CS02b command has CRA flag command, not ${m.cra}`, m.cra);
  if (mode < 0 || mode > 9) refuse('ERR_GBCS_CREDENTIALS_MODE_UNSUPPORTED', `message code 0x${m.messageCode.toString(16).padStart(4, '0')} is not CS02b`, String(m.messageCode));
  supportedMode(mode);
  const payload = decodeUpdateSecurityCredentials(m.payload);
  if (payload.mode !== mode) refuse('ERR_GBCS_CREDENTIALS_MODE_MISMATCH', `payload mode ${payload.mode} under message code 0x${m.messageCode.toString(16).padStart(4, '0')} (mode ${mode})`, String(payload.mode));
  const entry = checkUpdateSecurityCredentials(payload, {
    originatorCounter: m.originatorCounter,
    originator: m.originator,
    signed: m.signature !== null,
    ...(context.signerCertificate !== undefined ? { signerCertificate: context.signerCertificate } : {}),
  });
  return { entry, payload, message: m };
}

// ---- CS02b: response and alert ----------------------------------------------------------------------

/**
 * The status of one cell's replacement in a CS02b response or alert (ENUMERATED): 0 success,
 * 5 bad certificate, 10 no trust anchor, 17 insufficient memory, 25 trust anchor not found,
 * 30 busy, 127 other. A decoder returns any value 0–255; these are the ones docs/domain.md §9 names.
 * @see docs/domain.md §9 (response)
 * @example
 * ```ts
 * import { CREDENTIALS_STATUS } from '@smki/gbcs';
 * console.log(CREDENTIALS_STATUS.success, CREDENTIALS_STATUS.badCertificate); // 0 5
 * ```
 */
export const CREDENTIALS_STATUS = Object.freeze({
  /** 0: the cell was replaced. */
  success: 0,
  /** 5: the certificate was refused. */
  badCertificate: 5,
  /** 10: no trust anchor to check the certificate against. */
  noTrustAnchor: 10,
  /** 17: no room to store it. */
  insufficientMemory: 17,
  /** 25: the trust anchor was not found. */
  trustAnchorNotFound: 25,
  /** 30: the device was busy. */
  busy: 30,
  /** 127: any other failure. */
  other: 127,
} as const);

/**
 * The outcome for one requested cell: the cell, the status, and the entity id (EUI-64) and key id
 * (SKI, 8 bytes, upper-case hex) before and after. A failed cell keeps its old ids as the new ones.
 * @see docs/domain.md §9 (outcome)
 * @example
 * ```ts
 * import type { CellOutcome } from '@smki/gbcs';
 * declare const o: CellOutcome;
 * console.log(o.status === 0 ? `${o.oldKeyId} -> ${o.newKeyId}` : `cell kept ${o.oldKeyId}`);
 * ```
 */
export interface CellOutcome {
  /** The cell. */
  readonly cell: TrustAnchorCell;
  /** The status ({@link CREDENTIALS_STATUS}). */
  readonly status: number;
  /** The entity id of the certificate the cell held. */
  readonly oldEntityId: Eui64;
  /** The SKI of the certificate the cell held (16 hex digits). */
  readonly oldKeyId: string;
  /** The entity id of the certificate the cell holds now. */
  readonly newEntityId: Eui64;
  /** The SKI of the certificate the cell holds now (16 hex digits). */
  readonly newKeyId: string;
}

/**
 * What a device did with a CS02b command: the authorising sequence number, the mode, the counter
 * floors it changed (each a raw DER element: docs/domain.md §9 does not give their layout) and one
 * {@link CellOutcome} per requested cell, in order.
 * @see docs/domain.md §9 (response, alert 0x00CB)
 * @example
 * ```ts
 * import type { CredentialsExecutionOutcome } from '@smki/gbcs';
 * declare const o: CredentialsExecutionOutcome;
 * console.log(o.mode, o.results.every((r) => r.status === 0));
 * ```
 */
export interface CredentialsExecutionOutcome {
  /** The authorising sequence number ([3] of the command). */
  readonly sequenceNumber: bigint;
  /** The replacement mode. */
  readonly mode: number;
  /** The floor changes, each one whole DER element as the device wrote it. */
  readonly floorChanges: readonly Uint8Array[];
  /** One outcome per requested cell, in the command's order. */
  readonly results: readonly CellOutcome[];
}

/**
 * A CS02b response: the command was accepted (NULL), and, for an immediate command, what was done.
 * A future-dated command's response has no outcome; the alert 0x00CB carries it later.
 * @see docs/domain.md §9 (response)
 * @example
 * ```ts
 * import type { UpdateSecurityCredentialsResponse } from '@smki/gbcs';
 * const futureDated: UpdateSecurityCredentialsResponse = {};
 * console.log(futureDated.outcome === undefined);
 * ```
 */
export interface UpdateSecurityCredentialsResponse {
  /** What was done; absent for a future-dated command. */
  readonly outcome?: CredentialsExecutionOutcome;
}

/** The alert code of alert 0x00CB: 0x8F66 success, 0x8F67 failure. */
export const CREDENTIALS_ALERT_CODES = Object.freeze({
  /** 0x8F66: the future-dated replacement was executed. */
  success: 0x8f66,
  /** 0x8F67: it failed. */
  failure: 0x8f67,
} as const);

/** The message code of the alert that reports a future-dated CS02b command's outcome. */
export const CREDENTIALS_ALERT_MESSAGE_CODE = 0x00cb;

/**
 * The alert 0x00CB payload: `SEQUENCE { code INTEGER (0x8F66 success, 0x8F67 failure),
 * executionDateTime, outcome }`. The outcome is read as the same execution outcome a response
 * carries (sequence number, mode, floor changes, per-cell results).
 * @see docs/domain.md §9 (alert 0x00CB), §10
 * @example
 * ```ts
 * import type { CredentialsAlert } from '@smki/gbcs';
 * declare const a: CredentialsAlert;
 * console.log(a.code === 0x8f66 ? 'replaced' : 'failed', a.executionTime.toISOString());
 * ```
 */
export interface CredentialsAlert {
  /** 0x8F66 (success) or 0x8F67 (failure). */
  readonly code: number;
  /** When the replacement was executed. */
  readonly executionTime: Date;
  /** What was done. */
  readonly outcome: CredentialsExecutionOutcome;
}

/** How the device-side encoders write lengths. */
export interface DeviceEncodingOptions {
  /**
   * `device`: every SEQUENCE length in the long form `82 hh ll`, as devices write some of them (not
   * DER; the decoders of responses and alerts accept it). Default `minimal` (DER).
   */
  readonly lengths?: 'minimal' | 'device';
}

function ids(v: unknown, what: string): Uint8Array {
  if (typeof v !== 'string' || !/^[0-9A-Fa-f]{16}$/.test(v)) invalid(`${what} must be 16 hex digits`, String(v).slice(0, 24));
  return fromHex(v.toUpperCase());
}

function encodeOutcome(o: CredentialsExecutionOutcome, form: LengthForm): Uint8Array {
  if (typeof o !== 'object' || o === null) invalid('outcome must be an object');
  const floors = checkList<Uint8Array>(o.floorChanges, 'floorChanges').map((f, i) => {
    if (!(f instanceof Uint8Array) || f.length === 0) invalid(`floorChanges[${i}] must be DER bytes`);
    try {
      checkDerStructure(f, 16, 1024);
    } catch (e) {
      throw new SmkiError('ERR_GBCS_INVALID_FIELD', `floorChanges[${i}] is not one DER element`, {}, { cause: e });
    }
    return f;
  });
  const results = checkList<CellOutcome>(o.results, 'results').map((r, i) => {
    if (typeof r !== 'object' || r === null) invalid(`results[${i}] must be an object`);
    return tlv(
      TAG_SEQUENCE,
      concatBytes(
        tlv(TAG_SEQUENCE, encodeCell(r.cell, `results[${i}].cell`, form), form),
        unsigned(TAG_ENUMERATED, BigInt(checkSmall(r.status, `results[${i}].status`))),
        tlv(TAG_OCTET_STRING, ids(r.oldEntityId, `results[${i}].oldEntityId`)),
        tlv(TAG_OCTET_STRING, ids(r.oldKeyId, `results[${i}].oldKeyId`)),
        tlv(TAG_OCTET_STRING, ids(r.newEntityId, `results[${i}].newEntityId`)),
        tlv(TAG_OCTET_STRING, ids(r.newKeyId, `results[${i}].newKeyId`)),
      ),
      form,
    );
  });
  return tlv(
    TAG_SEQUENCE,
    concatBytes(
      unsigned(TAG_INTEGER, checkU64(o.sequenceNumber, 'sequenceNumber')),
      unsigned(TAG_INTEGER, BigInt(checkSmall(o.mode, 'mode'))),
      tlv(TAG_SEQUENCE, concatBytes(...floors), form),
      tlv(TAG_SEQUENCE, concatBytes(...results), form),
    ),
    form,
  );
}

function readOctets8(r: ByteReader, what: string): Uint8Array {
  const el = read(r, TAG_OCTET_STRING, true, what);
  if (el.end - el.valueStart !== 8) malformed(el.start, `${what} is ${el.end - el.valueStart} bytes, not 8`);
  return r.bytes.subarray(el.valueStart, el.end);
}

function readOutcome(r: ByteReader): CredentialsExecutionOutcome {
  const o = inner(r, read(r, TAG_SEQUENCE, true, 'execution outcome'));
  const sequenceNumber = readUnsigned(o, TAG_INTEGER, true, 'outcome sequence number', U64_MAX);
  const mode = Number(readUnsigned(o, TAG_INTEGER, true, 'outcome mode', 255n));
  const fl = inner(o, read(o, TAG_SEQUENCE, true, 'floor changes'));
  const floorChanges: Uint8Array[] = [];
  while (!fl.done) {
    if (floorChanges.length >= MAX_LIST) malformed(fl.offset, `floor changes: more than ${MAX_LIST} entries`);
    const at = fl.offset;
    const tag = fl.bytes[at] as number;
    if ((tag & 0x1f) === 0x1f) malformed(at, 'floor change: high tag number');
    const el = read(fl, tag, true, 'floor change');
    floorChanges.push(fl.bytes.slice(el.start, el.end));
  }
  const rl = inner(o, read(o, TAG_SEQUENCE, true, 'cell outcomes'));
  const results: CellOutcome[] = [];
  while (!rl.done) {
    if (results.length >= MAX_LIST) malformed(rl.offset, `cell outcomes: more than ${MAX_LIST} entries`);
    const e = inner(rl, read(rl, TAG_SEQUENCE, true, 'cell outcome'));
    const cell = readCell(e, TAG_SEQUENCE, true, 'outcome cell');
    const status = Number(readUnsigned(e, TAG_ENUMERATED, true, 'outcome status', 255n));
    const oldEntityId = eui64FromBytes(readOctets8(e, 'old entity id'));
    const oldKeyId = toHex(readOctets8(e, 'old key id'));
    const newEntityId = eui64FromBytes(readOctets8(e, 'new entity id'));
    const newKeyId = toHex(readOctets8(e, 'new key id'));
    end(e, 'cell outcome');
    results.push({ cell, status, oldEntityId, oldKeyId, newEntityId, newKeyId });
  }
  end(o, 'execution outcome');
  return { sequenceNumber, mode, floorChanges, results };
}

/**
 * Encode a CS02b response payload (the device side): `SEQUENCE { NULL, outcome OPTIONAL }`, one
 * result per requested cell in the command's order.
 * @throws SmkiError `ERR_GBCS_INVALID_FIELD` (an id not 16 hex digits, a status or mode not 0–255,
 *   a floor change that is not one DER element, a list over 64 entries)
 * @see docs/domain.md §9 (response)
 * @example
 * ```ts
 * import { toHex } from '@smki/core';
 * import { encodeUpdateSecurityCredentialsResponse } from '@smki/gbcs';
 * console.log(toHex(encodeUpdateSecurityCredentialsResponse({}))); // '30020500': accepted, future-dated
 * console.log(toHex(encodeUpdateSecurityCredentialsResponse({}, { lengths: 'device' }))); // '308200020500'
 * ```
 */
export function encodeUpdateSecurityCredentialsResponse(response: UpdateSecurityCredentialsResponse, options: DeviceEncodingOptions = {}): Uint8Array {
  if (typeof response !== 'object' || response === null) invalid('response must be an object');
  const form = lengthForm(options);
  const parts: Uint8Array[] = [Uint8Array.of(TAG_NULL, 0)];
  if (response.outcome !== undefined) parts.push(encodeOutcome(response.outcome, form));
  return tlv(TAG_SEQUENCE, concatBytes(...parts), form);
}

function lengthForm(options: DeviceEncodingOptions): LengthForm {
  const l = options?.lengths ?? 'minimal';
  if (l !== 'minimal' && l !== 'device') invalid("lengths must be 'minimal' or 'device'", String(l));
  return l;
}

/**
 * Decode a CS02b response payload: `SEQUENCE { NULL, SEQUENCE OPTIONAL { seq, mode, SEQUENCE OF
 * floor changes, SEQUENCE OF outcome } }`. DER, except that a long-form length may be non-minimal
 * (`30 82 00 CA`), as devices write it. Bounded; nothing after the last element.
 * @throws SmkiError `ERR_GBCS_MALFORMED` (with the offset)
 * @see docs/domain.md §9 (response)
 * @example
 * ```ts
 * import { fromHex } from '@smki/core';
 * import { decodeUpdateSecurityCredentialsResponse } from '@smki/gbcs';
 * console.log(decodeUpdateSecurityCredentialsResponse(fromHex('308200020500')).outcome); // undefined: future-dated
 * ```
 */
export function decodeUpdateSecurityCredentialsResponse(payload: Uint8Array): UpdateSecurityCredentialsResponse {
  return decoding('CS02b response', payload, (p) => {
    const top = new ByteReader(p);
    const r = inner(top, read(top, TAG_SEQUENCE, true, 'CS02b response SEQUENCE'));
    end(top, 'CS02b response SEQUENCE');
    const n = read(r, TAG_NULL, true, 'accepted NULL');
    if (n.end !== n.valueStart) malformed(n.start, 'the NULL is not empty');
    const outcome = r.done ? undefined : readOutcome(r);
    end(r, 'execution outcome');
    return outcome === undefined ? {} : { outcome };
  });
}

/**
 * Encode the alert 0x00CB payload (the device side): `SEQUENCE { code, executionDateTime, outcome }`.
 * @throws SmkiError `ERR_GBCS_INVALID_FIELD` (a code other than 0x8F66 / 0x8F67, a time that is not
 *   a whole-second Date, an outcome field out of range)
 * @see docs/domain.md §9 (alert 0x00CB)
 * @example
 * ```ts
 * import { encodeCredentialsAlert, decodeCredentialsAlert } from '@smki/gbcs';
 * const der = encodeCredentialsAlert({ code: 0x8f66, executionTime: new Date('2030-01-01T00:00:00Z'), outcome: { sequenceNumber: 5n, mode: 2, floorChanges: [], results: [] } });
 * console.log(decodeCredentialsAlert(der).code.toString(16)); // '8f66'
 * ```
 */
export function encodeCredentialsAlert(alert: CredentialsAlert, options: DeviceEncodingOptions = {}): Uint8Array {
  if (typeof alert !== 'object' || alert === null) invalid('alert must be an object');
  const form = lengthForm(options);
  if (alert.code !== CREDENTIALS_ALERT_CODES.success && alert.code !== CREDENTIALS_ALERT_CODES.failure) invalid('alert code must be 0x8F66 or 0x8F67', String(alert.code));
  return tlv(TAG_SEQUENCE, concatBytes(unsigned(TAG_INTEGER, BigInt(alert.code)), generalizedTime(alert.executionTime, 'executionTime'), encodeOutcome(alert.outcome, form)), form);
}

/**
 * Decode the alert 0x00CB payload that reports a future-dated CS02b command's outcome. DER, except
 * that a long-form length may be non-minimal, as devices write it. The code must be 0x8F66 or 0x8F67.
 * @throws SmkiError `ERR_GBCS_MALFORMED` (with the offset)
 * @see docs/domain.md §9 (alert 0x00CB)
 * @example
 * ```ts
 * import { decodeCredentialsAlert } from '@smki/gbcs';
 * declare const alertPayload: Uint8Array;
 * const a = decodeCredentialsAlert(alertPayload);
 * console.log(a.code, a.outcome.results.length);
 * ```
 */
export function decodeCredentialsAlert(payload: Uint8Array): CredentialsAlert {
  return decoding('CS02b alert', payload, (p) => {
    const top = new ByteReader(p);
    const r = inner(top, read(top, TAG_SEQUENCE, true, 'alert SEQUENCE'));
    end(top, 'alert SEQUENCE');
    const at = r.offset;
    const code = Number(readUnsigned(r, TAG_INTEGER, true, 'alert code', 0xffffn));
    if (code !== CREDENTIALS_ALERT_CODES.success && code !== CREDENTIALS_ALERT_CODES.failure) malformed(at, `alert code 0x${code.toString(16)} is not 0x8F66 or 0x8F67`);
    const executionTime = readTime(r, true, 'execution date-time');
    const outcome = readOutcome(r);
    end(r, 'alert');
    return { code, executionTime, outcome };
  });
}

// ---- CS02c / CS02d / CS02e ----------------------------------------------------------------------------

/** The CS02c Issue Security Credentials message code (the device makes a key pair). */
export const ISSUE_CREDENTIALS_MESSAGE_CODE = 0x000a;
/** The CS02d Update Device Certificate message code. */
export const UPDATE_DEVICE_CERTIFICATE_MESSAGE_CODE = 0x000b;
/** The CS02e Provide Device Certificate message code. */
export const PROVIDE_DEVICE_CERTIFICATE_MESSAGE_CODE = 0x000c;

/**
 * The errors of a CS02c response (`INTEGER`): 1 invalid key usage, 2 key generation failed,
 * 3 request failed.
 * @see docs/domain.md §9 (CS02c)
 * @example
 * ```ts
 * import { ISSUE_CREDENTIALS_ERRORS } from '@smki/gbcs';
 * console.log(ISSUE_CREDENTIALS_ERRORS.keyGenerationFailed); // 2
 * ```
 */
export const ISSUE_CREDENTIALS_ERRORS = Object.freeze({
  /** 1: the key usage asked for is not DS or KA. */
  invalidKeyUsage: 1,
  /** 2: the device could not make the key pair. */
  keyGenerationFailed: 2,
  /** 3: the device could not make the request. */
  requestFailed: 3,
} as const);

/**
 * The statuses of a CS02d response (`INTEGER`): 0 success, 1 invalid certificate, 2 wrong device
 * identity, 3 invalid key usage, 4 no such key pair, 5 wrong public key, 6 storage failed, 7 private
 * key change failed.
 * @see docs/domain.md §9 (CS02d)
 * @example
 * ```ts
 * import { UPDATE_DEVICE_CERTIFICATE_STATUS } from '@smki/gbcs';
 * console.log(UPDATE_DEVICE_CERTIFICATE_STATUS.wrongPublicKey); // 5
 * ```
 */
export const UPDATE_DEVICE_CERTIFICATE_STATUS = Object.freeze({
  /** 0: installed. */
  success: 0,
  /** 1: the certificate does not check. */
  invalidCertificate: 1,
  /** 2: it names another device. */
  wrongDeviceIdentity: 2,
  /** 3: its key usage is not DS or KA. */
  invalidKeyUsage: 3,
  /** 4: the device holds no key pair of that usage. */
  noSuchKeyPair: 4,
  /** 5: its public key is not the device's. */
  wrongPublicKey: 5,
  /** 6: it could not be stored. */
  storageFailed: 6,
  /** 7: the private key could not be changed over. */
  privateKeyChangeFailed: 7,
} as const);

/**
 * The errors of a CS02e response (`INTEGER`): 1 invalid key usage, 2 none held, 3 retrieval failed.
 * @see docs/domain.md §9 (CS02e)
 * @example
 * ```ts
 * import { PROVIDE_DEVICE_CERTIFICATE_ERRORS } from '@smki/gbcs';
 * console.log(PROVIDE_DEVICE_CERTIFICATE_ERRORS.noneHeld); // 2
 * ```
 */
export const PROVIDE_DEVICE_CERTIFICATE_ERRORS = Object.freeze({
  /** 1: the key usage asked for is not DS or KA. */
  invalidKeyUsage: 1,
  /** 2: the device holds no such certificate. */
  noneHeld: 2,
  /** 3: it could not be read. */
  retrievalFailed: 3,
} as const);

const ISSUE_ERRORS: readonly number[] = Object.values(ISSUE_CREDENTIALS_ERRORS);
const UPDATE_STATUSES: readonly number[] = Object.values(UPDATE_DEVICE_CERTIFICATE_STATUS);
const PROVIDE_ERRORS: readonly number[] = Object.values(PROVIDE_DEVICE_CERTIFICATE_ERRORS);
const DEVICE_KEY_USAGES: readonly CellKeyUsage[] = ['digitalSignature', 'keyAgreement'];

/** Options of {@link buildIssueCredentials} and {@link buildProvideDeviceCertificate}. */
export interface DeviceKeyCommandOptions extends CommandOptions {
  /** Which of the device's key pairs: DS or KA. */
  readonly keyUsage: DeviceKeyUsage;
}

/**
 * A decoded CS02c or CS02e command: which of the device's key pairs it is about.
 * @see docs/domain.md §9 (CS02c, CS02e)
 * @example
 * ```ts
 * import { decodeProvideDeviceCertificate, type KeyUsageCommand } from '@smki/gbcs';
 * const c: KeyUsageCommand = decodeProvideDeviceCertificate(new Uint8Array([0x30, 0x04, 0x03, 0x02, 0x07, 0x80]));
 * console.log(c.keyUsage); // 'digitalSignature'
 * ```
 */
export interface KeyUsageCommand {
  /** DS or KA. */
  readonly keyUsage: DeviceKeyUsage;
}

/**
 * A decoded CS02d command: the device certificate it installs (DER, for `@smki/pki` to parse).
 * @see docs/domain.md §9 (CS02d)
 * @example
 * ```ts
 * import type { DeviceCertificateCommand } from '@smki/gbcs';
 * declare const c: DeviceCertificateCommand;
 * console.log(c.certificate.length);
 * ```
 */
export interface DeviceCertificateCommand {
  /** The certificate, DER. */
  readonly certificate: Uint8Array;
}

/** `SEQUENCE { keyUsage BIT STRING }` (CS02c and CS02e commands). */
function keyUsageCommand(ku: unknown): Uint8Array {
  return tlv(TAG_SEQUENCE, keyUsageDer(ku, DEVICE_KEY_USAGES, 'keyUsage'));
}

function decodeKeyUsageCommand(what: string, payload: Uint8Array): { keyUsage: DeviceKeyUsage } {
  return decoding(what, payload, (p) => {
    const top = new ByteReader(p);
    const r = inner(top, read(top, TAG_SEQUENCE, false, `${what} SEQUENCE`));
    end(top, `${what} SEQUENCE`);
    const keyUsage = readKeyUsage(r, false, DEVICE_KEY_USAGES, 'keyUsage') as DeviceKeyUsage;
    end(r, 'keyUsage');
    return { keyUsage };
  });
}

/**
 * CS02c Issue Security Credentials (DUIS 6.17, message code 0x000A): the device makes a new key
 * pair of the given usage and answers with a certification request. Payload `SEQUENCE { keyUsage
 * BIT STRING }`. Returns the unsigned pre-command (supplier-signed, critical).
 * @throws SmkiError `ERR_GBCS_INVALID_FIELD` (key usage not DS or KA, counter, EUI-64 or date-time out of range)
 * @see docs/domain.md §9 (CS02c)
 * @example
 * ```ts
 * import { buildIssueCredentials, decodeIssueCredentials, parseMessage } from '@smki/gbcs';
 * const pre = buildIssueCredentials({ originator: '90B3D51F30010000', recipient: '00DB1234567890A0', counter: 3000n, keyUsage: 'keyAgreement' });
 * console.log(decodeIssueCredentials(parseMessage(pre).payload).keyUsage); // 'keyAgreement'
 * ```
 */
export function buildIssueCredentials(options: DeviceKeyCommandOptions): Uint8Array {
  if (typeof options !== 'object' || options === null) invalid('command options must be an object');
  return preCommand(options, ISSUE_CREDENTIALS_MESSAGE_CODE, keyUsageCommand(options.keyUsage));
}

/**
 * Decode a CS02c command payload: strict DER `SEQUENCE { keyUsage }`, the key usage DS
 * (`03 02 07 80`) or KA (`03 02 03 08`).
 * @throws SmkiError `ERR_GBCS_MALFORMED` (with the offset)
 * @see docs/domain.md §9 (CS02c)
 * @example
 * ```ts
 * import { fromHex } from '@smki/core';
 * import { decodeIssueCredentials } from '@smki/gbcs';
 * console.log(decodeIssueCredentials(fromHex('300403020780')).keyUsage); // 'digitalSignature'
 * ```
 */
export function decodeIssueCredentials(payload: Uint8Array): KeyUsageCommand {
  return decodeKeyUsageCommand('CS02c payload', payload);
}

/**
 * A CS02c response: the device's certification request (PKCS#10 DER, empty subject, its EUI-64 in
 * subjectAltName; parse and check it with `@smki/pki` `parseCsr`), or an error code
 * ({@link ISSUE_CREDENTIALS_ERRORS}).
 * @see docs/domain.md §9 (CS02c)
 * @example
 * ```ts
 * import type { IssueCredentialsResponse } from '@smki/gbcs';
 * const failed: IssueCredentialsResponse = { error: 2 };
 * console.log('error' in failed);
 * ```
 */
export type IssueCredentialsResponse =
  | {
      /** The PKCS#10 request (DER). */
      readonly request: Uint8Array;
    }
  | {
      /** The error code (1, 2 or 3). */
      readonly error: number;
    };

/**
 * A CS02e response: the device certificate (DER), or an error code
 * ({@link PROVIDE_DEVICE_CERTIFICATE_ERRORS}).
 * @see docs/domain.md §9 (CS02e)
 * @example
 * ```ts
 * import type { ProvideDeviceCertificateResponse } from '@smki/gbcs';
 * const none: ProvideDeviceCertificateResponse = { error: 2 };
 * console.log('certificate' in none);
 * ```
 */
export type ProvideDeviceCertificateResponse =
  | {
      /** The device certificate (DER). */
      readonly certificate: Uint8Array;
    }
  | {
      /** The error code (1, 2 or 3). */
      readonly error: number;
    };

/** A response that is either a DER SEQUENCE (request, certificate) or an INTEGER code. */
function decodeObjectOrCode(what: string, payload: Uint8Array, codes: readonly number[]): { der: Uint8Array } | { code: number } {
  return decoding(what, payload, (p) => {
    const top = new ByteReader(p);
    if (!top.done && p[0] === TAG_INTEGER) {
      const at = top.offset;
      const code = Number(readUnsigned(top, TAG_INTEGER, true, `${what} code`, 255n));
      if (!codes.includes(code)) malformed(at, `${what} code ${code} is not one of ${codes.join(', ')}`);
      end(top, `${what} code`);
      return { code };
    }
    const el = read(top, TAG_SEQUENCE, true, `${what} SEQUENCE`);
    end(top, `${what} SEQUENCE`);
    const der = p.subarray(el.start, el.end);
    // The object itself, as the device wrote it, need not be DER here: the caller parses it (pki).
    return { der: der.slice() };
  });
}

function encodeCode(code: unknown, codes: readonly number[], what: string): Uint8Array {
  if (typeof code !== 'number' || !codes.includes(code)) invalid(`${what} must be one of ${codes.join(', ')}`, String(code));
  return unsigned(TAG_INTEGER, BigInt(code));
}

/**
 * Encode a CS02c response (the device side): the request's DER as it is, or the error INTEGER.
 * @throws SmkiError `ERR_GBCS_INVALID_FIELD` (a request that is not one DER SEQUENCE, an error not 1–3)
 * @see docs/domain.md §9 (CS02c)
 * @example
 * ```ts
 * import { encodeIssueCredentialsResponse } from '@smki/gbcs';
 * console.log(encodeIssueCredentialsResponse({ error: 1 })); // Uint8Array [ 2, 1, 1 ]
 * ```
 */
export function encodeIssueCredentialsResponse(response: IssueCredentialsResponse): Uint8Array {
  if (typeof response !== 'object' || response === null) invalid('response must be an object');
  if ('request' in response) return checkDer(response.request, 'request').slice();
  return encodeCode(response.error, ISSUE_ERRORS, 'error');
}

/**
 * Decode a CS02c response: a PKCS#10 request (one SEQUENCE, returned whole for `@smki/pki`
 * `parseCsr` to check) or an `INTEGER` error 1–3. A long-form length may be non-minimal (devices).
 * @throws SmkiError `ERR_GBCS_MALFORMED` (with the offset)
 * @see docs/domain.md §9 (CS02c)
 * @example
 * ```ts
 * import { fromHex } from '@smki/core';
 * import { decodeIssueCredentialsResponse } from '@smki/gbcs';
 * console.log(decodeIssueCredentialsResponse(fromHex('020102'))); // { error: 2 }
 * ```
 */
export function decodeIssueCredentialsResponse(payload: Uint8Array): IssueCredentialsResponse {
  const r = decodeObjectOrCode('CS02c response', payload, ISSUE_ERRORS);
  return 'der' in r ? { request: r.der } : { error: r.code };
}

/** Options of {@link buildUpdateDeviceCertificate}. */
export interface UpdateDeviceCertificateOptions extends CommandOptions {
  /** The new device certificate (DER, PEM or parsed): a device certificate of the recipient, DS or KA. */
  readonly certificate: CertificateInput;
}

/**
 * CS02d Update Device Certificate (DUIS 6.15.2, message code 0x000B): install a new device
 * certificate; the payload is the bare certificate. Refuses a certificate that is not a device
 * certificate of the recipient with exactly one of DS and KA. Returns the unsigned pre-command.
 * @throws SmkiError `ERR_GBCS_CREDENTIALS_DEVICE_CERTIFICATE`, `ERR_CERT_MALFORMED`,
 *   `ERR_GBCS_INVALID_FIELD` (counter, EUI-64 or date-time out of range)
 * @see docs/domain.md §9 (CS02d)
 * @example
 * ```ts
 * import { buildUpdateDeviceCertificate } from '@smki/gbcs';
 * declare const deviceKaCertificate: Uint8Array;
 * const pre = buildUpdateDeviceCertificate({ originator: '90B3D51F30010000', recipient: '00DB1234567890A0', counter: 3001n, certificate: deviceKaCertificate });
 * ```
 */
export function buildUpdateDeviceCertificate(options: UpdateDeviceCertificateOptions): Uint8Array {
  if (typeof options !== 'object' || options === null) invalid('command options must be an object');
  const cert = toCertificate(options.certificate);
  if (cert.kind !== 'device') refuse('ERR_GBCS_CREDENTIALS_DEVICE_CERTIFICATE', `the certificate is ${cert.kind}, not a device certificate`, cert.kind);
  const recipient = parseEui64(options.recipient);
  if (cert.entityId !== recipient) refuse('ERR_GBCS_CREDENTIALS_DEVICE_CERTIFICATE', `the certificate is for device ${String(cert.entityId)}, not the recipient ${recipient}`, String(cert.entityId));
  if (cert.keyUsage.length !== 1 || !DEVICE_KEY_USAGES.includes(cert.keyUsage[0] as CellKeyUsage)) {
    refuse('ERR_GBCS_CREDENTIALS_DEVICE_CERTIFICATE', 'a device certificate has exactly one of digitalSignature and keyAgreement', cert.keyUsage.join(','));
  }
  return preCommand(options, UPDATE_DEVICE_CERTIFICATE_MESSAGE_CODE, cert.der);
}

/**
 * Decode a CS02d command payload: exactly one certificate, strict DER (a SEQUENCE whose content is
 * well-formed DER, nothing after it), returned as bytes for `@smki/pki` to parse.
 * @throws SmkiError `ERR_GBCS_MALFORMED` (with the offset)
 * @see docs/domain.md §9 (CS02d)
 * @example
 * ```ts
 * import { buildUpdateDeviceCertificate, decodeUpdateDeviceCertificate, parseMessage } from '@smki/gbcs';
 * declare const pre: Uint8Array;
 * const { certificate } = decodeUpdateDeviceCertificate(parseMessage(pre).payload);
 * console.log(certificate.length);
 * ```
 */
export function decodeUpdateDeviceCertificate(payload: Uint8Array): DeviceCertificateCommand {
  return decoding('CS02d payload', payload, (p) => {
    const top = new ByteReader(p);
    const certificate = readCertificate(top, false, 'device certificate');
    end(top, 'device certificate');
    return { certificate };
  });
}

/**
 * Encode a CS02d response (the device side): `INTEGER` status 0–7.
 * @throws SmkiError `ERR_GBCS_INVALID_FIELD` (a status not 0–7)
 * @see docs/domain.md §9 (CS02d)
 * @example
 * ```ts
 * import { encodeUpdateDeviceCertificateResponse, UPDATE_DEVICE_CERTIFICATE_STATUS } from '@smki/gbcs';
 * console.log(encodeUpdateDeviceCertificateResponse(UPDATE_DEVICE_CERTIFICATE_STATUS.success)); // Uint8Array [ 2, 1, 0 ]
 * ```
 */
export function encodeUpdateDeviceCertificateResponse(status: number): Uint8Array {
  return encodeCode(status, UPDATE_STATUSES, 'status');
}

/**
 * Decode a CS02d response: an `INTEGER` status 0–7 ({@link UPDATE_DEVICE_CERTIFICATE_STATUS}). A
 * long-form length may be non-minimal (devices).
 * @throws SmkiError `ERR_GBCS_MALFORMED` (with the offset; also a status outside 0–7)
 * @see docs/domain.md §9 (CS02d)
 * @example
 * ```ts
 * import { fromHex } from '@smki/core';
 * import { decodeUpdateDeviceCertificateResponse } from '@smki/gbcs';
 * console.log(decodeUpdateDeviceCertificateResponse(fromHex('020100'))); // 0
 * ```
 */
export function decodeUpdateDeviceCertificateResponse(payload: Uint8Array): number {
  return decoding('CS02d response', payload, (p) => {
    const top = new ByteReader(p);
    const at = top.offset;
    const status = Number(readUnsigned(top, TAG_INTEGER, true, 'CS02d status', 255n));
    if (!UPDATE_STATUSES.includes(status)) malformed(at, `CS02d status ${status} is not 0–7`);
    end(top, 'CS02d status');
    return status;
  });
}

/**
 * CS02e Provide Device Certificate (DUIS 6.24.2, message code 0x000C): ask the device for its DS or
 * KA certificate. Payload `SEQUENCE { keyUsage }`. Returns the unsigned pre-command.
 * @throws SmkiError `ERR_GBCS_INVALID_FIELD` (key usage not DS or KA, counter, EUI-64 or date-time out of range)
 * @see docs/domain.md §9 (CS02e)
 * @example
 * ```ts
 * import { buildProvideDeviceCertificate } from '@smki/gbcs';
 * const pre = buildProvideDeviceCertificate({ originator: '90B3D51F30010000', recipient: '00DB1234567890A0', counter: 3002n, keyUsage: 'digitalSignature' });
 * ```
 */
export function buildProvideDeviceCertificate(options: DeviceKeyCommandOptions): Uint8Array {
  if (typeof options !== 'object' || options === null) invalid('command options must be an object');
  return preCommand(options, PROVIDE_DEVICE_CERTIFICATE_MESSAGE_CODE, keyUsageCommand(options.keyUsage));
}

/**
 * Decode a CS02e command payload: strict DER `SEQUENCE { keyUsage }`, DS or KA.
 * @throws SmkiError `ERR_GBCS_MALFORMED` (with the offset)
 * @see docs/domain.md §9 (CS02e)
 * @example
 * ```ts
 * import { fromHex } from '@smki/core';
 * import { decodeProvideDeviceCertificate } from '@smki/gbcs';
 * console.log(decodeProvideDeviceCertificate(fromHex('300403020308')).keyUsage); // 'keyAgreement'
 * ```
 */
export function decodeProvideDeviceCertificate(payload: Uint8Array): KeyUsageCommand {
  return decodeKeyUsageCommand('CS02e payload', payload);
}

/**
 * Encode a CS02e response (the device side): the certificate's DER as it is, or the error INTEGER.
 * @throws SmkiError `ERR_GBCS_INVALID_FIELD` (a certificate that is not one DER SEQUENCE, an error not 1–3)
 * @see docs/domain.md §9 (CS02e)
 * @example
 * ```ts
 * import { encodeProvideDeviceCertificateResponse } from '@smki/gbcs';
 * console.log(encodeProvideDeviceCertificateResponse({ error: 3 })); // Uint8Array [ 2, 1, 3 ]
 * ```
 */
export function encodeProvideDeviceCertificateResponse(response: ProvideDeviceCertificateResponse): Uint8Array {
  if (typeof response !== 'object' || response === null) invalid('response must be an object');
  if ('certificate' in response) return checkDer(response.certificate, 'certificate').slice();
  return encodeCode(response.error, PROVIDE_ERRORS, 'error');
}

/**
 * Decode a CS02e response: the certificate (one SEQUENCE, returned whole for `@smki/pki` to parse)
 * or an `INTEGER` error 1–3. A long-form length may be non-minimal (devices).
 * @throws SmkiError `ERR_GBCS_MALFORMED` (with the offset)
 * @see docs/domain.md §9 (CS02e)
 * @example
 * ```ts
 * import { fromHex } from '@smki/core';
 * import { decodeProvideDeviceCertificateResponse } from '@smki/gbcs';
 * console.log(decodeProvideDeviceCertificateResponse(fromHex('020102'))); // { error: 2 }
 * ```
 */
export function decodeProvideDeviceCertificateResponse(payload: Uint8Array): ProvideDeviceCertificateResponse {
  const r = decodeObjectOrCode('CS02e response', payload, PROVIDE_ERRORS);
  return 'der' in r ? { certificate: r.der } : { error: r.code };
}
