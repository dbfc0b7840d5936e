import { ByteReader, concatBytes, readTlv, SmkiError, type Eui64 } from '@smki/core';
import type { DeviceFuel } from './catalogue.js';
import { buildGeneralSigning, type SignatureField } from './codec.js';
import { generalizedTimeBytes, generalizedTimeProblem, readGeneralizedTime, unsignedContents } from './internal/der-time.js';

/**
 * Builders for the unsigned pre-commands of the critical commands a supplier sends most
 * (docs/domain.md §5): enable / disable / arm supply (ECS42, ECS43, ECS44, GCS32, GCS39) and activate
 * firmware (CS06), and decoders that let a validator check that a payload repeats the header's
 * originator counter.
 *
 * Each builder writes its payload from the layouts in docs/domain.md §5 and hands it, with the header
 * fields, to {@link buildGeneralSigning}: nothing here encodes a header by hand.
 * @module
 */

const U64_MAX = (1n << 64n) - 1n;

// ---- shared options ----------------------------------------------------------------------------

/**
 * How an unsigned pre-command ends: `empty` (a single `00` signature length, the DLMS
 * general-signing form in which the signature octet string is present and empty) or `absent`
 * (the APDU ends right after the content, as the DCC's test environment sends it).
 * {@link signPreCommand} accepts both and signs the same bytes either way.
 */
export type PreCommandEnding = Exclude<SignatureField, 'present'>;

/** What every command builder needs: who sends it, to which device, under which counter. */
export interface CommandOptions {
  /** The User's (supplier's) EUI-64 entity id, the originator system title; any accepted spelling. */
  readonly originator: Eui64 | string;
  /** The target device's EUI-64, the recipient system title; any accepted spelling. */
  readonly recipient: Eui64 | string;
  /**
   * The originator counter (unsigned 64-bit, strictly increasing per originator). It is also the
   * counter of the DUIS request id `originator:target:counter`, and DLMS and CS06 payloads repeat it.
   */
  readonly counter: bigint;
  /** The optional 12-byte COSEM date-time of the header. */
  readonly dateTime?: Uint8Array;
  /** How the unsigned pre-command ends (default `empty`: a single `00`). */
  readonly signatureField?: PreCommandEnding;
}

// ---- supply commands ----------------------------------------------------------------------------

/** What a supply command does to the load switch or gas valve. */
export type SupplyAction = 'enable' | 'disable' | 'arm';

/** The GBCS use cases of the supply commands. */
export type SupplyUseCase = 'ECS42' | 'ECS43' | 'ECS44' | 'GCS32' | 'GCS39';

/** One supply command: its use case, message code, DUIS service and payload kind. */
export interface SupplyCommand {
  /** The GBCS use case. */
  readonly useCase: SupplyUseCase;
  /** The GBCS message code in the other-information field. */
  readonly messageCode: number;
  /** The meter it is for. */
  readonly fuel: DeviceFuel;
  /** What it does. */
  readonly action: SupplyAction;
  /** The DUIS service (7.1 Enable Supply, 7.2 Disable Supply, 7.3 Arm Supply). */
  readonly duisService: '7.1' | '7.2' | '7.3';
  /**
   * `dlms`: a DLMS ACTION on the script table that repeats the counter; `gbz-template`: a fixed
   * 29-byte ZigBee (GBZ) payload copied from the reference messages.
   */
  readonly payloadKind: 'dlms' | 'gbz-template';
  /** The script table's script id (DLMS commands only). */
  readonly scriptId?: number;
}

/**
 * The supply commands by use case (docs/domain.md §5): ECS42 enable 0x004F (script 0x0033), ECS43
 * disable 0x0050 (script 0x0034), ECS44 arm 0x0051 (script 0x0036), GCS32 close the gas valve
 * 0x0081 and GCS39 arm 0x0085. All are critical when a supplier (role 2) sends them.
 * @see docs/domain.md §5 (critical commands; payloads)
 * @example
 * ```ts
 * import { SUPPLY_COMMANDS } from '@smki/gbcs';
 * console.log(SUPPLY_COMMANDS.ECS43.messageCode.toString(16)); // '50'
 * ```
 */
export const SUPPLY_COMMANDS: Readonly<Record<SupplyUseCase, SupplyCommand>> = Object.freeze({
  ECS42: Object.freeze({ useCase: 'ECS42', messageCode: 0x004f, fuel: 'electricity', action: 'enable', duisService: '7.1', payloadKind: 'dlms', scriptId: 0x0033 }),
  ECS43: Object.freeze({ useCase: 'ECS43', messageCode: 0x0050, fuel: 'electricity', action: 'disable', duisService: '7.2', payloadKind: 'dlms', scriptId: 0x0034 }),
  ECS44: Object.freeze({ useCase: 'ECS44', messageCode: 0x0051, fuel: 'electricity', action: 'arm', duisService: '7.3', payloadKind: 'dlms', scriptId: 0x0036 }),
  GCS32: Object.freeze({ useCase: 'GCS32', messageCode: 0x0081, fuel: 'gas', action: 'disable', duisService: '7.2', payloadKind: 'gbz-template' }),
  GCS39: Object.freeze({ useCase: 'GCS39', messageCode: 0x0085, fuel: 'gas', action: 'arm', duisService: '7.3', payloadKind: 'gbz-template' }),
} satisfies Record<SupplyUseCase, SupplyCommand>);

/** Length of the DLMS script-table ACTION payload (docs/domain.md §5). */
const DLMS_SUPPLY_LENGTH = 21;
/** `D9 ‖ 20`: a DLMS access request whose invoke-id starts 0x20. */
const DLMS_ACCESS_REQUEST = 0xd9;
const DLMS_INVOKE_HIGH = 0x20;
/** After the invoke-id: `00` (no date-time) ‖ `01 03 0009 00000A006AFF 01` (ACTION, class 9, script table, method 1) ‖ `01 12` (one long-unsigned). */
const DLMS_SCRIPT_ACTION = Uint8Array.of(0x00, 0x01, 0x03, 0x00, 0x09, 0x00, 0x00, 0x0a, 0x00, 0x6a, 0xff, 0x01, 0x01, 0x12);

/*
 * GBZ payloads of GCS32 / GCS39, verbatim from the reference messages (docs/domain.md §5). The GBZ layout
 * is not modelled yet, and docs/domain.md shows no byte in them that depends on the counter, the originator or
 * the recipient, so they are sent as they are. Unverified observation, not relied on: bytes 15–18
 * (80 4A 37 1C) read as a little-endian ZigBee UTCTime of 2015-01-01T00:00:00Z.
 */
const GCS32_TEMPLATE = Uint8Array.of(
  0x01, 0x09, 0x01, 0x01, 0x07, 0x02, 0x00, 0x15, 0x01, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x80,
  0x4a, 0x37, 0x1c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
);
const GCS39_TEMPLATE = (() => {
  const t = GCS32_TEMPLATE.slice();
  t[t.length - 2] = 0x01; // docs/domain.md §5: GCS39 is GCS32 with the second-last byte 01
  return t;
})();

function invalid(message: string, detail?: string): never {
  throw new SmkiError('ERR_GBCS_INVALID_FIELD', message, detail === undefined ? {} : { detail });
}

function malformed(offset: number, message: string, cause?: unknown): never {
  throw new SmkiError('ERR_GBCS_MALFORMED', `${message} at offset ${offset}`, { offset }, cause === undefined ? undefined : { cause });
}

function checkCounter(counter: unknown): bigint {
  if (typeof counter !== 'bigint' || counter < 0n || counter > U64_MAX) {
    invalid('counter must be a bigint in [0, 2^64)', typeof counter === 'bigint' ? String(counter) : typeof counter);
  }
  return counter;
}

function checkOptions(o: CommandOptions): void {
  if (typeof o !== 'object' || o === null) invalid('command options must be an object');
  checkCounter(o.counter);
  if (o.signatureField !== undefined && o.signatureField !== 'empty' && o.signatureField !== 'absent') {
    invalid('signatureField of a pre-command must be empty or absent', String(o.signatureField));
  }
}

function preCommand(o: CommandOptions, messageCode: number, payload: Uint8Array): Uint8Array {
  return buildGeneralSigning({
    cra: 'command',
    originatorCounter: o.counter,
    originator: o.originator,
    recipient: o.recipient,
    ...(o.dateTime !== undefined ? { dateTime: o.dateTime } : {}),
    messageCode,
    payload,
    signatureField: o.signatureField ?? 'empty',
  });
}

/**
 * The payload of a supply command: for ECS42/43/44 the 21-byte DLMS ACTION on the script table
 * `D9 ‖ 20 ‖ low 24 bits of the counter ‖ 00 ‖ 01 03 0009 00000A006AFF 01 ‖ 01 12 ‖ script id`;
 * for GCS32/39 the 29-byte GBZ template (the counter is not in it).
 * @param useCase - the supply use case
 * @param counter - the originator counter the header will carry
 * @throws SmkiError `ERR_GBCS_INVALID_FIELD` (unknown use case, counter outside [0, 2^64))
 * @see docs/domain.md §5 (payloads)
 * @example
 * ```ts
 * import { toHex } from '@smki/core';
 * import { encodeSupplyPayload } from '@smki/gbcs';
 * console.log(toHex(encodeSupplyPayload('ECS43', 1000n))); // 'D9200003E8000103000900000A006AFF0101120034'
 * ```
 */
export function encodeSupplyPayload(useCase: SupplyUseCase, counter: bigint): Uint8Array {
  const c = typeof useCase === 'string' && Object.hasOwn(SUPPLY_COMMANDS, useCase) ? SUPPLY_COMMANDS[useCase] : undefined;
  if (c === undefined) invalid('not a supply use case (ECS42, ECS43, ECS44, GCS32, GCS39)', String(useCase).slice(0, 16));
  const n = Number(checkCounter(counter) & 0xffffffn);
  if (c.payloadKind === 'gbz-template') return (c.useCase === 'GCS32' ? GCS32_TEMPLATE : GCS39_TEMPLATE).slice();
  const script = c.scriptId as number;
  const out = concatBytes(
    Uint8Array.of(DLMS_ACCESS_REQUEST, DLMS_INVOKE_HIGH, n >>> 16, (n >>> 8) & 0xff, n & 0xff),
    DLMS_SCRIPT_ACTION,
    Uint8Array.of(script >> 8, script & 0xff),
  );
  if (out.length !== DLMS_SUPPLY_LENGTH) throw new Error('internal: DLMS supply payload is not 21 bytes');
  return out;
}

/**
 * Build the unsigned pre-command of a supply command given by use case; the named builders
 * ({@link buildEnableSupply}, {@link buildDisableSupply}, {@link buildArmSupply}) call this.
 * @throws SmkiError `ERR_GBCS_INVALID_FIELD` (unknown use case, counter outside [0, 2^64), an
 *   originator or recipient that is not an EUI-64 — the cause is `ERR_EUI64_INVALID` — or a
 *   date-time that is not 12 bytes)
 * @see docs/domain.md §3 (layout), §5 (codes and payloads)
 * @example
 * ```ts
 * import { buildSupplyCommand } from '@smki/gbcs';
 * const pre = buildSupplyCommand('GCS39', { originator: '90B3D51F30010000', recipient: '00DB123456789100', counter: 1001n });
 * ```
 */
export function buildSupplyCommand(useCase: SupplyUseCase, options: CommandOptions): Uint8Array {
  checkOptions(options);
  const payload = encodeSupplyPayload(useCase, options.counter);
  return preCommand(options, SUPPLY_COMMANDS[useCase].messageCode, payload);
}

/**
 * ECS42 Enable Supply (DUIS 7.1, message code 0x004F): close the electricity meter's load switch
 * (reconnect). Returns the unsigned pre-command, to be signed with {@link signPreCommand}.
 * @throws SmkiError `ERR_GBCS_INVALID_FIELD` (counter outside [0, 2^64), bad EUI-64 with cause
 *   `ERR_EUI64_INVALID`, date-time not 12 bytes)
 * @see docs/domain.md §5 (ECS42: script 0x0033)
 * @example
 * ```ts
 * import { buildEnableSupply, signPreCommand } from '@smki/gbcs';
 * import { generateKeyPairSync } from 'node:crypto';
 * const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
 * const pre = buildEnableSupply({ originator: '90-B3-D5-1F-30-01-00-00', recipient: '00DB1234567890A0', counter: 1002n });
 * const signed = await signPreCommand(pre, privateKey);
 * ```
 */
export function buildEnableSupply(options: CommandOptions): Uint8Array {
  return buildSupplyCommand('ECS42', options);
}

/** Options of the supply builders that exist for both fuels. */
export interface FuelCommandOptions extends CommandOptions {
  /** The target meter's fuel: `electricity` (ESME) or `gas` (GSME). Required: never guessed. */
  readonly fuel: DeviceFuel;
}

function byFuel(o: FuelCommandOptions, electricity: SupplyUseCase, gas: SupplyUseCase): SupplyUseCase {
  if (typeof o !== 'object' || o === null) invalid('command options must be an object');
  if (o.fuel === 'electricity') return electricity;
  if (o.fuel === 'gas') return gas;
  return invalid("fuel must be 'electricity' or 'gas'", String(o.fuel));
}

/**
 * Disable Supply (DUIS 7.2), the **remote disconnect**: ECS43 (0x0050, open the load switch) for
 * an electricity meter or GCS32 (0x0081, close the valve) for a gas meter. Returns the unsigned
 * pre-command, to be signed with {@link signPreCommand}.
 * @throws SmkiError `ERR_GBCS_INVALID_FIELD` (fuel not electricity or gas, counter outside
 *   [0, 2^64), bad EUI-64 with cause `ERR_EUI64_INVALID`, date-time not 12 bytes)
 * @see docs/domain.md §5 (ECS43: script 0x0034; GCS32: GBZ template)
 * @example
 * ```ts
 * import { buildDisableSupply, parseMessage } from '@smki/gbcs';
 * const pre = buildDisableSupply({ fuel: 'electricity', originator: '90B3D51F30010000', recipient: '00DB1234567890A0', counter: 1000n });
 * console.log(parseMessage(pre).messageCode === 0x0050); // true
 * ```
 */
export function buildDisableSupply(options: FuelCommandOptions): Uint8Array {
  return buildSupplyCommand(byFuel(options, 'ECS43', 'GCS32'), options);
}

/**
 * Arm Supply (DUIS 7.3): ECS44 (0x0051) for an electricity meter or GCS39 (0x0085) for a gas
 * meter; the consumer then restores supply locally. Returns the unsigned pre-command.
 * @throws SmkiError `ERR_GBCS_INVALID_FIELD` (fuel not electricity or gas, counter outside
 *   [0, 2^64), bad EUI-64 with cause `ERR_EUI64_INVALID`, date-time not 12 bytes)
 * @see docs/domain.md §5 (ECS44: script 0x0036; GCS39: GBZ template)
 * @example
 * ```ts
 * import { buildArmSupply } from '@smki/gbcs';
 * const pre = buildArmSupply({ fuel: 'gas', originator: '90B3D51F30010000', recipient: '00DB123456789100', counter: 1003n, signatureField: 'absent' });
 * ```
 */
export function buildArmSupply(options: FuelCommandOptions): Uint8Array {
  return buildSupplyCommand(byFuel(options, 'ECS44', 'GCS39'), options);
}

// ---- CS06 activate firmware ----------------------------------------------------------------------

/** The CS06 Activate Firmware message code (DUIS 11.3). */
export const ACTIVATE_FIRMWARE_MESSAGE_CODE = 0x0012;

/** The fields of a CS06 payload. */
export interface ActivateFirmwarePayload {
  /** The manufacturer image hash (32 bytes). */
  readonly imageHash: Uint8Array;
  /** The originator counter the payload repeats (must equal the header's). */
  readonly counter: bigint;
  /** When to activate (whole seconds, UTC); absent = at once. */
  readonly executionTime?: Date;
}

/** Options of {@link buildActivateFirmware}. */
export interface ActivateFirmwareOptions extends CommandOptions {
  /** The manufacturer image hash of the firmware to activate (32 bytes). */
  readonly imageHash: Uint8Array;
  /**
   * When to activate: a whole-second UTC time in years 0000–9999; absent = at once.
   * The reference data cancels a pending activation with `new Date('9999-12-31T23:59:59Z')`.
   */
  readonly executionTime?: Date;
}

const TAG_INTEGER = 0x02;
const TAG_OCTET_STRING = 0x04;
const TAG_GENERALIZED_TIME = 0x18;
const TAG_SEQUENCE = 0x30;
const IMAGE_HASH_BYTES = 32;

/** One DER TLV (definite length; the CS06 payload never exceeds 127 bytes, longer forms kept for safety). */
function tlv(tag: number, value: Uint8Array): Uint8Array {
  const n = value.length;
  const len = n < 0x80 ? Uint8Array.of(n) : n < 0x100 ? Uint8Array.of(0x81, n) : Uint8Array.of(0x82, n >> 8, n & 0xff);
  return concatBytes(Uint8Array.of(tag), len, value);
}

/** A non-negative INTEGER in minimal two's complement (a leading 00 when the top bit is set). */
function derUnsigned(v: bigint): Uint8Array {
  return tlv(TAG_INTEGER, unsignedContents(v));
}

/** GeneralizedTime `YYYYMMDDHHMMSSZ` (DER: UTC, whole seconds, no fraction). */
function derGeneralizedTime(t: unknown): Uint8Array {
  const problem = generalizedTimeProblem(t);
  if (problem !== undefined) invalid(`executionTime ${problem.message}`, problem.detail);
  return tlv(TAG_GENERALIZED_TIME, generalizedTimeBytes(t as Date));
}

/**
 * The CS06 payload: DER `SEQUENCE { OCTET STRING (32) imageHash, INTEGER counter,
 * GeneralizedTime executionTime OPTIONAL }`, the INTEGER minimal and positive, the time
 * `YYYYMMDDHHMMSSZ`.
 * @throws SmkiError `ERR_GBCS_INVALID_FIELD` (hash not 32 bytes, counter outside [0, 2^64),
 *   execution time not a valid whole-second Date in years 0000–9999)
 * @see docs/domain.md §5 (CS06 payload)
 * @example
 * ```ts
 * import { encodeActivateFirmwarePayload } from '@smki/gbcs';
 * const der = encodeActivateFirmwarePayload({ imageHash: new Uint8Array(32), counter: 1000n });
 * console.log(der.length); // 40
 * ```
 */
export function encodeActivateFirmwarePayload(fields: ActivateFirmwarePayload): Uint8Array {
  if (typeof fields !== 'object' || fields === null) invalid('activate-firmware fields must be an object');
  const { imageHash, executionTime } = fields;
  if (!(imageHash instanceof Uint8Array) || imageHash.length !== IMAGE_HASH_BYTES) {
    invalid('imageHash must be 32 bytes', imageHash instanceof Uint8Array ? `${imageHash.length} bytes` : typeof imageHash);
  }
  const counter = checkCounter(fields.counter);
  const parts = [tlv(TAG_OCTET_STRING, imageHash), derUnsigned(counter)];
  if (executionTime !== undefined) parts.push(derGeneralizedTime(executionTime));
  return tlv(TAG_SEQUENCE, concatBytes(...parts));
}

/**
 * CS06 Activate Firmware (DUIS 11.3, message code 0x0012): activate the firmware image whose
 * manufacturer hash is given, at once or at `executionTime`. The payload repeats the header's
 * originator counter. Returns the unsigned pre-command, to be signed with {@link signPreCommand}.
 * @throws SmkiError `ERR_GBCS_INVALID_FIELD` (hash not 32 bytes, counter outside [0, 2^64),
 *   execution time not a whole-second Date in years 0000–9999, bad EUI-64 with cause
 *   `ERR_EUI64_INVALID`, date-time not 12 bytes)
 * @see docs/domain.md §5 (CS06)
 * @example
 * ```ts
 * import { createHash } from 'node:crypto';
 * import { buildActivateFirmware } from '@smki/gbcs';
 * const imageHash = new Uint8Array(createHash('sha256').update('firmware image').digest());
 * const pre = buildActivateFirmware({
 *   originator: '90B3D51F30010000', recipient: '00DB1234567890A0', counter: 1004n,
 *   imageHash, executionTime: new Date('2030-01-01T02:00:00Z'),
 * });
 * ```
 */
export function buildActivateFirmware(options: ActivateFirmwareOptions): Uint8Array {
  checkOptions(options);
  const payload = encodeActivateFirmwarePayload({
    imageHash: options.imageHash,
    counter: options.counter,
    ...(options.executionTime !== undefined ? { executionTime: options.executionTime } : {}),
  });
  return preCommand(options, ACTIVATE_FIRMWARE_MESSAGE_CODE, payload);
}

// ---- decoders for validators ---------------------------------------------------------------------

/**
 * The 24-bit counter a DLMS access request repeats: checks the `D9 ‖ 20` framing and returns the
 * three bytes after it. A validator compares it with `Number(headerCounter & 0xFFFFFFn)`.
 * @throws SmkiError `ERR_GBCS_MALFORMED` (with the offset) when the payload is shorter than 5
 *   bytes or does not start `D9 20`
 * @see docs/domain.md §3 (DLMS invoke-id), §5
 * @example
 * ```ts
 * import { buildDisableSupply, decodeDlmsInvokeCounter, parseMessage } from '@smki/gbcs';
 * const m = parseMessage(buildDisableSupply({ fuel: 'electricity', originator: '90B3D51F30010000', recipient: '00DB1234567890A0', counter: 0x1_000_003n }));
 * console.log(BigInt(decodeDlmsInvokeCounter(m.payload)) === (m.originatorCounter & 0xffffffn)); // true
 * ```
 */
export function decodeDlmsInvokeCounter(payload: Uint8Array): number {
  if (!(payload instanceof Uint8Array)) malformed(0, 'a DLMS payload is a Uint8Array');
  if (payload.length < 5) malformed(payload.length, 'DLMS payload ends inside the invoke-id');
  if (payload[0] !== DLMS_ACCESS_REQUEST) malformed(0, 'not a DLMS access request (D9)');
  if (payload[1] !== DLMS_INVOKE_HIGH) malformed(1, 'DLMS invoke-id does not start 0x20');
  return ((payload[2] as number) << 16) | ((payload[3] as number) << 8) | (payload[4] as number);
}

/** What {@link decodeSupplyPayload} finds in an electricity supply payload. */
export interface DecodedSupplyPayload {
  /** ECS42, ECS43 or ECS44, from the script id. */
  readonly useCase: 'ECS42' | 'ECS43' | 'ECS44';
  /** The script id (0x0033, 0x0034 or 0x0036). */
  readonly scriptId: number;
  /** The 24-bit counter of the invoke-id. */
  readonly invokeCounter: number;
}

/**
 * Decode an ECS42/43/44 payload: exactly the 21-byte script-table ACTION of docs/domain.md §5 with a known
 * script id. A validator checks that `useCase` matches the header's message code (an enable code
 * must not carry a disable script) and that `invokeCounter` is the header counter's low 24 bits.
 * @throws SmkiError `ERR_GBCS_MALFORMED` (with the offset) for any other bytes
 * @see docs/domain.md §5 (ECS42 / ECS43 / ECS44 payload)
 * @example
 * ```ts
 * import { decodeSupplyPayload, encodeSupplyPayload } from '@smki/gbcs';
 * console.log(decodeSupplyPayload(encodeSupplyPayload('ECS44', 7n)).useCase); // 'ECS44'
 * ```
 */
export function decodeSupplyPayload(payload: Uint8Array): DecodedSupplyPayload {
  const invokeCounter = decodeDlmsInvokeCounter(payload);
  const body = 5;
  for (let i = 0; i < DLMS_SCRIPT_ACTION.length; i++) {
    if (body + i >= payload.length) malformed(payload.length, 'DLMS supply payload ends early');
    if (payload[body + i] !== DLMS_SCRIPT_ACTION[i]) malformed(body + i, 'not a DLMS ACTION on the script table (execute, one long-unsigned)');
  }
  const at = body + DLMS_SCRIPT_ACTION.length;
  if (payload.length < DLMS_SUPPLY_LENGTH) malformed(payload.length, 'DLMS supply payload ends inside the script id');
  if (payload.length > DLMS_SUPPLY_LENGTH) malformed(DLMS_SUPPLY_LENGTH, `${payload.length - DLMS_SUPPLY_LENGTH} byte(s) after the script id`);
  const scriptId = ((payload[at] as number) << 8) | (payload[at + 1] as number);
  const useCase = scriptId === 0x33 ? 'ECS42' : scriptId === 0x34 ? 'ECS43' : scriptId === 0x36 ? 'ECS44' : undefined;
  if (useCase === undefined) malformed(at, `script id 0x${scriptId.toString(16).padStart(4, '0')} is not enable, disable or arm`);
  return { useCase, scriptId, invokeCounter };
}

function parseGeneralizedTime(bytes: Uint8Array, at: number): Date {
  const t = readGeneralizedTime(bytes);
  if (t instanceof Date) return t;
  return malformed(at, t.problem === 'form' ? 'execution time is not GeneralizedTime YYYYMMDDHHMMSSZ' : `execution time ${t.text} is not a calendar time`);
}

/**
 * Decode a CS06 payload, so a validator can check that its counter equals the header's. Strict DER:
 * one SEQUENCE and nothing after it; inside, an OCTET STRING of exactly 32 bytes, a minimal
 * non-negative INTEGER below 2^64, and optionally a GeneralizedTime `YYYYMMDDHHMMSSZ`; nothing else.
 * Bounded: no recursion, every length checked before it is read.
 * @throws SmkiError `ERR_GBCS_MALFORMED` (with the offset in the payload; the DER error as cause)
 * @see docs/domain.md §5 (CS06 payload)
 * @example
 * ```ts
 * import { buildActivateFirmware, decodeActivateFirmware, parseMessage } from '@smki/gbcs';
 * const m = parseMessage(buildActivateFirmware({ originator: '90B3D51F30010000', recipient: '00DB1234567890A0', counter: 1005n, imageHash: new Uint8Array(32) }));
 * console.log(decodeActivateFirmware(m.payload).counter === m.originatorCounter); // true
 * ```
 */
export function decodeActivateFirmware(payload: Uint8Array): ActivateFirmwarePayload {
  if (!(payload instanceof Uint8Array)) malformed(0, 'a CS06 payload is a Uint8Array');
  try {
    const top = new ByteReader(payload);
    const seq = readTlv(top, TAG_SEQUENCE);
    if (!top.done) malformed(top.offset, `${top.remaining} byte(s) after the CS06 SEQUENCE`);
    const r = new ByteReader(payload, seq.valueStart, seq.end);

    const hash = readTlv(r, TAG_OCTET_STRING);
    if (hash.end - hash.valueStart !== IMAGE_HASH_BYTES) malformed(hash.start, `image hash is ${hash.end - hash.valueStart} bytes, not 32`);

    const int = readTlv(r, TAG_INTEGER);
    const v = payload.subarray(int.valueStart, int.end);
    if (v.length === 0) malformed(int.start, 'empty INTEGER');
    if ((v[0] as number) & 0x80) malformed(int.valueStart, 'counter is negative');
    if (v.length > 1 && v[0] === 0 && ((v[1] as number) & 0x80) === 0) malformed(int.valueStart, 'counter INTEGER is not minimal');
    if (v.length > 9) malformed(int.start, 'counter is not below 2^64');
    let counter = 0n;
    for (const b of v) counter = (counter << 8n) | BigInt(b);
    if (counter > U64_MAX) malformed(int.start, 'counter is not below 2^64');

    let executionTime: Date | undefined;
    if (!r.done) {
      const time = readTlv(r, TAG_GENERALIZED_TIME);
      executionTime = parseGeneralizedTime(payload.subarray(time.valueStart, time.end), time.start);
    }
    if (!r.done) malformed(r.offset, 'unexpected element after the execution time');
    return {
      imageHash: payload.slice(hash.valueStart, hash.end),
      counter,
      ...(executionTime !== undefined ? { executionTime } : {}),
    };
  } catch (e) {
    if (e instanceof SmkiError && e.code === 'ERR_GBCS_MALFORMED') throw e;
    const o = e instanceof SmkiError ? (e.context as { offset?: unknown }).offset : undefined;
    return malformed(typeof o === 'number' ? o : 0, `not a CS06 payload: ${e instanceof Error ? e.message : 'undecodable'}`, e);
  }
}
