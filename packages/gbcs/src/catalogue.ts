/**
 * The catalogue of GBCS message codes for critical commands: use case, DUIS service, device type,
 * eligible DCC User roles, and whether a command is critical.
 *
 * Two facts shape the API (docs/domain.md §5):
 * - **Criticality belongs to (message code, originator role), not to the code alone.** Five codes
 *   (`0x000F`, `0x00AB`, `0x00AF`, `0x0102`, `0x0103`) travel both User-signed (critical) and
 *   originated by the Access Control Broker (Remote Party Role 4), unsigned (not critical).
 * - **Eligibility is stated in DUIS roles but checked on the wire** as (Remote Party Role of the
 *   originator's certificate, fuel of the target device): IS = supplier (2) on an electricity
 *   meter, GS = supplier (2) on a gas meter, ED = network operator (3) on an electricity meter,
 *   GT = network operator (3) on a gas meter.
 *
 * Security posture: every answer fails closed. A code the catalogue does not hold is `'unknown'`
 * to {@link classify}, critical to {@link isCritical} and never eligible to {@link isEligible}.
 * The catalogue holds only the codes docs/domain.md §5 names; it is not a complete list of GBCS message
 * codes, and other critical use cases exist, so an unknown code must never be taken as harmless.
 * @module
 */
import { RemotePartyRole, SmkiError } from '@smki/core';

// ---- types ---------------------------------------------------------------------------------

/**
 * A DCC User role as DUIS names it: `IS` import supplier, `GS` gas supplier, `ED` electricity
 * distributor, `GT` gas transporter. On the wire a DUIS role is a Remote Party Role plus the fuel
 * of the target device (see {@link duisRoleOnWire}).
 * @see docs/domain.md §5 (Critical commands: the DUIS role to wire mapping)
 * @example
 * ```ts
 * import type { DuisRole } from '@smki/gbcs';
 * const role: DuisRole = 'IS';
 * console.log(role);
 * ```
 */
export type DuisRole = 'IS' | 'GS' | 'ED' | 'GT';

/**
 * Every {@link DuisRole}, in a fixed order (IS, GS, ED, GT). Frozen.
 * @see docs/domain.md §5
 * @example
 * ```ts
 * import { DUIS_ROLES } from '@smki/gbcs';
 * for (const role of DUIS_ROLES) console.log(role);
 * ```
 */
export const DUIS_ROLES: readonly DuisRole[] = Object.freeze(['IS', 'GS', 'ED', 'GT'] as const);

/**
 * The fuel of a target device: `electricity` for an ESME, `gas` for a GSME. With the originator's
 * Remote Party Role it decides the originator's DUIS role.
 * @see docs/domain.md §5
 * @example
 * ```ts
 * import type { DeviceFuel } from '@smki/gbcs';
 * const fuel: DeviceFuel = 'gas';
 * console.log(fuel);
 * ```
 */
export type DeviceFuel = 'electricity' | 'gas';

/**
 * The devices a message code is for: an electricity meter (ESME use cases, `ECS…`), a gas meter
 * (GSME use cases, `GCS…`), or `any` (common use cases, `CS…`, sent to either).
 * @see docs/domain.md §5
 * @example
 * ```ts
 * import { lookupMessageCode, type DeviceType } from '@smki/gbcs';
 * const type: DeviceType | undefined = lookupMessageCode(0x0050)?.deviceType; // 'electricity'
 * console.log(type);
 * ```
 */
export type DeviceType = DeviceFuel | 'any';

/**
 * The answer of {@link classify}: `critical` (a User signature is required), `non-critical`
 * (this originator sends this code without a User signature), or `unknown` (the catalogue does
 * not hold the code, or does not say that this originator sends it: reject).
 * @see docs/domain.md §5
 * @example
 * ```ts
 * import { classify, type Criticality } from '@smki/gbcs';
 * const c: Criticality = classify({ messageCode: 0x0050, originatorRole: 2 }); // 'critical'
 * console.log(c);
 * ```
 */
export type Criticality = 'critical' | 'non-critical' | 'unknown';

/**
 * One message code of the catalogue. Frozen, as are its arrays.
 * @see docs/domain.md §5
 * @example
 * ```ts
 * import { lookupMessageCode, type MessageCodeEntry } from '@smki/gbcs';
 * const e: MessageCodeEntry | undefined = lookupMessageCode(0x0081);
 * console.log(e?.useCase, e?.duisService, e?.eligibleRoles); // GCS32 7.2 Disable Supply [ 'GS' ]
 * ```
 */
export interface MessageCodeEntry {
  /** The GBCS message code, the first two octets of other-information (0 to 0xFFFF). */
  readonly code: number;
  /** The GBCS use case, e.g. `ECS43`. */
  readonly useCase: string;
  /** What the command does, in a few words. */
  readonly name: string;
  /** The DUIS service reference, e.g. `7.2 Disable Supply` (the number, and the name where docs/domain.md gives it). */
  readonly duisService: string;
  /** The devices the code is for. */
  readonly deviceType: DeviceType;
  /**
   * The DUIS roles that may send it. A domain-table row's roles are narrowed to the code's fuel: IS and ED
   * are electricity roles, GS and GT gas roles; a code for `any` device keeps the row's roles.
   */
  readonly eligibleRoles: readonly DuisRole[];
  /** Whether the code is critical when a User (Remote Party Role 2 or 3) originates it. */
  readonly critical: boolean;
  /** Whether the Access Control Broker (role 4) also originates this code, unsigned and not critical. */
  readonly acbOriginated: boolean;
  /** Where the entry needs a word more than the domain table gives. */
  readonly notes?: string;
}

/**
 * What {@link classify} and {@link isCritical} ask: the message code of a command and the Remote
 * Party Role of its originator (the role in the OU of the originator's certificate).
 * @see docs/domain.md §5
 * @example
 * ```ts
 * import { isCritical, type CriticalityQuery } from '@smki/gbcs';
 * const q: CriticalityQuery = { messageCode: 0x0102, originatorRole: 4 };
 * console.log(isCritical(q)); // false: the ACB sends 0x0102 unsigned
 * ```
 */
export interface CriticalityQuery {
  /** The GBCS message code. */
  readonly messageCode: number;
  /** The originator's Remote Party Role code (2 supplier, 3 network operator, 4 ACB, …). */
  readonly originatorRole: number;
}

/**
 * What {@link isEligible} asks: a {@link CriticalityQuery} plus the fuel of the target device.
 * @see docs/domain.md §5
 * @example
 * ```ts
 * import { isEligible, type EligibilityQuery } from '@smki/gbcs';
 * const q: EligibilityQuery = { messageCode: 0x0050, originatorRole: 2, deviceFuel: 'electricity' };
 * console.log(isEligible(q)); // true: an import supplier may disconnect an ESME
 * ```
 */
export interface EligibilityQuery extends CriticalityQuery {
  /** The fuel of the target device. */
  readonly deviceFuel: DeviceFuel;
}

/**
 * A DUIS role as it appears on the wire: the originator's Remote Party Role and the fuel of the
 * target device.
 * @see docs/domain.md §5
 * @example
 * ```ts
 * import { duisRoleOnWire, type DuisRoleWire } from '@smki/gbcs';
 * const w: DuisRoleWire = duisRoleOnWire('GT'); // { remotePartyRole: 3, fuel: 'gas' }
 * console.log(w.remotePartyRole, w.fuel);
 * ```
 */
export interface DuisRoleWire {
  /** 2 (supplier) or 3 (network operator). */
  readonly remotePartyRole: 2 | 3;
  /** The fuel of the target device. */
  readonly fuel: DeviceFuel;
}

// ---- the DUIS role <-> wire mapping (docs/domain.md §5) ------------------------------------------------

/** Remote Party Roles (docs/domain.md §2). */
const SUPPLIER = RemotePartyRole.Supplier;
const NETWORK_OPERATOR = RemotePartyRole.NetworkOperator;
const ACCESS_CONTROL_BROKER = RemotePartyRole.AccessControlBroker;

const WIRE: Readonly<Record<DuisRole, DuisRoleWire>> = Object.freeze({
  IS: Object.freeze({ remotePartyRole: SUPPLIER, fuel: 'electricity' }),
  GS: Object.freeze({ remotePartyRole: SUPPLIER, fuel: 'gas' }),
  ED: Object.freeze({ remotePartyRole: NETWORK_OPERATOR, fuel: 'electricity' }),
  GT: Object.freeze({ remotePartyRole: NETWORK_OPERATOR, fuel: 'gas' }),
});

function isDuisRole(role: unknown): role is DuisRole {
  return role === 'IS' || role === 'GS' || role === 'ED' || role === 'GT';
}

function isDeviceFuel(fuel: unknown): fuel is DeviceFuel {
  return fuel === 'electricity' || fuel === 'gas';
}

/**
 * The wire form of a DUIS role: IS → (2, electricity), GS → (2, gas), ED → (3, electricity),
 * GT → (3, gas). The inverse of {@link duisRoleFor}.
 * @throws SmkiError `ERR_INVALID_ARGUMENT` when `role` is not one of IS, GS, ED, GT.
 * @see docs/domain.md §5 (the DUIS role to wire mapping)
 * @example
 * ```ts
 * import { duisRoleOnWire } from '@smki/gbcs';
 * const { remotePartyRole, fuel } = duisRoleOnWire('IS');
 * console.log(remotePartyRole, fuel); // 2 electricity
 * ```
 */
export function duisRoleOnWire(role: DuisRole): DuisRoleWire {
  if (!isDuisRole(role)) {
    const given: unknown = role;
    throw new SmkiError('ERR_INVALID_ARGUMENT', 'not a DUIS role (IS, GS, ED or GT)', {
      detail: typeof given === 'string' ? `role ${JSON.stringify(given.slice(0, 16))}` : `role of type ${typeof given}`,
    });
  }
  return WIRE[role];
}

/**
 * The DUIS role an originator acts in: supplier (2) on an electricity meter is IS, on a gas meter
 * GS; network operator (3) on an electricity meter is ED, on a gas meter GT. Any other Remote Party
 * Role (the ACB included) or fuel has no DUIS role: `undefined`. The inverse of
 * {@link duisRoleOnWire}.
 * @see docs/domain.md §5 (the DUIS role to wire mapping), §2 (Remote Party Role codes)
 * @example
 * ```ts
 * import { duisRoleFor } from '@smki/gbcs';
 * console.log(duisRoleFor(3, 'gas')); // 'GT'
 * console.log(duisRoleFor(4, 'gas')); // undefined: the ACB is not a DUIS User role
 * ```
 */
export function duisRoleFor(remotePartyRole: number, fuel: DeviceFuel): DuisRole | undefined {
  if (!isDeviceFuel(fuel)) return undefined;
  if (remotePartyRole === SUPPLIER) return fuel === 'electricity' ? 'IS' : 'GS';
  if (remotePartyRole === NETWORK_OPERATOR) return fuel === 'electricity' ? 'ED' : 'GT';
  return undefined;
}

// ---- the table (docs/domain.md §5) ---------------------------------------------------------------------

const FUEL_ROLES: Readonly<Record<DeviceFuel, readonly DuisRole[]>> = { electricity: ['IS', 'ED'], gas: ['GS', 'GT'] };

/** One catalogue entry, frozen; a row's roles narrowed to the code's fuel. */
function entry(
  code: number,
  useCase: string,
  name: string,
  duisService: string,
  deviceType: DeviceType,
  rowRoles: readonly DuisRole[],
  more: { acbOriginated?: boolean; notes?: string } = {},
): MessageCodeEntry {
  const eligibleRoles = deviceType === 'any' ? [...rowRoles] : rowRoles.filter((r) => FUEL_ROLES[deviceType].includes(r));
  const e: MessageCodeEntry = {
    code,
    useCase,
    name,
    duisService,
    deviceType,
    eligibleRoles: Object.freeze(eligibleRoles),
    critical: true,
    acbOriginated: more.acbOriginated ?? false,
    ...(more.notes === undefined ? {} : { notes: more.notes }),
  };
  return Object.freeze(e);
}

const IS: readonly DuisRole[] = ['IS'];
const GS: readonly DuisRole[] = ['GS'];
const IS_GS: readonly DuisRole[] = ['IS', 'GS'];
const ALL: readonly DuisRole[] = ['IS', 'GS', 'ED', 'GT'];
const ACB = { acbOriginated: true } as const;
const SPLIT_1_1_1_2 =
  'docs/domain.md §5 gives DUIS 1.1, 1.2 for the tariff group; tariff-and-price use cases are 1.1 (Update Import Tariff), price-only ones 1.2 (Update Price)';

/** CS02b replacement modes by message code (GBCS CredentialsReplacementMode, 0x0100 + mode). */
const CS02B_MODES = [
  'rootBySupplier',
  'rootByWanProvider',
  'supplierBySupplier',
  'networkOperatorByNetworkOperator',
  'accessControlBrokerByACB',
  'wanProviderByWanProvider',
  'transCoSByTransCoS',
  'supplierByTransCoS',
  'anyExceptAbnormalRootByRecovery',
  'anyByContingency',
] as const;

/**
 * The Remote Party Roles of a CS02b mode's target cells: the roles whose trust-anchor cells the
 * mode may replace. `anyExceptRoot` (mode 8): every role that has a DS or KA cell in a device
 * (1 recovery, 2 supplier, 3 network operator, 4 ACB, 5 transitional change of supplier, 6 WAN
 * provider), but not the root.
 * @see docs/domain.md §9, §10
 * @example
 * ```ts
 * import { CREDENTIALS_MODES, type CredentialsTargets } from '@smki/gbcs';
 * const t: CredentialsTargets | undefined = CREDENTIALS_MODES[8]?.targets; // 'anyExceptRoot'
 * console.log(t);
 * ```
 */
export type CredentialsTargets = readonly number[] | 'anyExceptRoot';

/**
 * One CS02b replacement mode: who authorises it, whether the command carries a User signature,
 * which cells it may replace, and whether this toolkit builds and accepts it.
 * @see docs/domain.md §9 (modes and who signs), §10 (the rules the toolkit applies)
 * @example
 * ```ts
 * import { CREDENTIALS_MODES, type CredentialsModeEntry } from '@smki/gbcs';
 * const e: CredentialsModeEntry | undefined = CREDENTIALS_MODES[7];
 * console.log(e?.name, e?.authorisingRole, e?.targets); // supplierByTransCoS 5 [ 2 ]
 * ```
 */
export interface CredentialsModeEntry {
  /** The replacement mode, 0 to 9 (the message code is 0x0100 + mode). */
  readonly mode: number;
  /** The GBCS message code, 0x0100 + mode. */
  readonly messageCode: number;
  /** The GBCS name of the mode, e.g. `supplierBySupplier`. */
  readonly name: string;
  /**
   * The Remote Party Role of the party that authorises the command (whose cell is the authorising
   * cell [2], and whose key signs it when {@link CredentialsModeEntry.userSignature} is true);
   * `undefined` where docs/domain.md §9 does not say (mode 9).
   */
  readonly authorisingRole: number | undefined;
  /**
   * Whether the command carries a User signature: false only for mode 4 (ACB by ACB), which the
   * ACB MAC alone authorises and which has no authorising cell.
   */
  readonly userSignature: boolean;
  /** The roles whose cells the mode may replace. */
  readonly targets: CredentialsTargets;
  /** Whether this toolkit builds and accepts the mode: modes 2 to 8. Modes 0, 1 and 9 have no public layout. */
  readonly supported: boolean;
}

function credentialsMode(mode: number, authorisingRole: number | undefined, targets: CredentialsTargets, supported: boolean): CredentialsModeEntry {
  return Object.freeze({
    mode,
    messageCode: 0x0100 + mode,
    name: CS02B_MODES[mode] as string,
    authorisingRole,
    userSignature: authorisingRole !== ACCESS_CONTROL_BROKER,
    targets: typeof targets === 'string' ? targets : Object.freeze([...targets]),
    supported,
  });
}

/**
 * The CS02b replacement modes by mode number (index 0 to 9), the one table the builder
 * (`buildUpdateSecurityCredentials`) and a validator read: 2 supplier by supplier (role 2),
 * 3 network operator by network operator (3), 4 ACB by ACB (4, no User signature), 5 WAN provider
 * by WAN provider (6), 6 transitional change of supplier by itself (5), 7 supplier by
 * transitional change of supplier (5 authorises, role 2 cells replaced), 8 any cell but the root by
 * the Recovery party (1). Modes 0 (root by supplier), 1 (root by WAN provider) and 9 (contingency)
 * are listed with `supported: false`: their layout is not public, so they are refused. Frozen.
 * @see docs/domain.md §9 (modes and who signs), §10; §2 (Remote Party Role codes)
 * @example
 * ```ts
 * import { CREDENTIALS_MODES } from '@smki/gbcs';
 * for (const m of CREDENTIALS_MODES.filter((e) => e.supported)) {
 *   console.log(m.messageCode.toString(16), m.name, m.authorisingRole, m.userSignature);
 * }
 * ```
 */
export const CREDENTIALS_MODES: readonly CredentialsModeEntry[] = Object.freeze([
  credentialsMode(0, SUPPLIER, [RemotePartyRole.Root], false),
  credentialsMode(1, RemotePartyRole.WanProvider, [RemotePartyRole.Root], false),
  credentialsMode(2, SUPPLIER, [SUPPLIER], true),
  credentialsMode(3, NETWORK_OPERATOR, [NETWORK_OPERATOR], true),
  credentialsMode(4, ACCESS_CONTROL_BROKER, [ACCESS_CONTROL_BROKER], true),
  credentialsMode(5, RemotePartyRole.WanProvider, [RemotePartyRole.WanProvider], true),
  credentialsMode(6, RemotePartyRole.TransitionalChangeOfSupplier, [RemotePartyRole.TransitionalChangeOfSupplier], true),
  credentialsMode(7, RemotePartyRole.TransitionalChangeOfSupplier, [SUPPLIER], true),
  credentialsMode(8, RemotePartyRole.Recovery, 'anyExceptRoot', true),
  credentialsMode(9, undefined, [], false),
]);

function buildEntries(): MessageCodeEntry[] {
  return [
    // Supply: disable (remote disconnect), enable, arm.
    entry(0x0050, 'ECS43', 'Open the load switch (remote disconnect)', '7.2 Disable Supply', 'electricity', IS),
    entry(0x0081, 'GCS32', 'Close the gas valve (remote disconnect)', '7.2 Disable Supply', 'gas', GS),
    entry(0x004f, 'ECS42', 'Close the load switch (reconnect)', '7.1 Enable Supply', 'electricity', IS),
    entry(0x0051, 'ECS44', 'Arm the load switch', '7.3 Arm Supply', 'electricity', IS),
    entry(0x0085, 'GCS39', 'Arm the gas valve', '7.3 Arm Supply', 'gas', GS),
    // Firmware.
    entry(0x0012, 'CS06', 'Activate firmware', '11.3 Activate Firmware', 'any', IS_GS, {
      notes: 'Payload: DER SEQUENCE { image hash (32 octets), originator counter, execution time OPTIONAL }',
    }),
    // Clock.
    entry(0x0062, 'ECS70', 'Set the clock', '6.11', 'electricity', IS),
    entry(0x007f, 'GCS28', 'Set the clock', '6.11', 'gas', GS),
    // Supply tamper state: 6.25 for the ESME, 6.7 for the GSME.
    entry(0x0068, 'ECS81', 'Set the supply tamper state', '6.25', 'electricity', IS),
    entry(0x007d, 'GCS24', 'Set the supply tamper state', '6.7', 'gas', GS),
    entry(0x00fc, 'GCS24a', 'Set the supply tamper state', '6.7', 'gas', GS),
    // Device credentials.
    entry(0x000a, 'CS02c', 'Issue device security credentials', '6.17', 'any', IS_GS),
    entry(0x000b, 'CS02d', 'Update device credentials', '6.15.2', 'any', IS_GS),
    entry(0x000c, 'CS02e', 'Provide device credentials', '6.24.2', 'any', IS_GS),
    // Security credentials, one code per replacement mode; 0x0102 and 0x0103 also ACB-originated.
    ...CS02B_MODES.map((mode, i) =>
      entry(0x0100 + i, 'CS02b', `Update security credentials (${mode})`, '6.15.1', 'any', ALL, {
        acbOriginated: i === 2 || i === 3,
        notes: 'docs/domain.md §5 gives the range 0x0100-0x0109; the name is the GBCS replacement mode (code 0x0100 + mode)',
      }),
    ),
    // Tariffs and prices.
    entry(0x0019, 'ECS01a', 'Set tariff and price (primary element)', '1.1', 'electricity', IS_GS, { notes: SPLIT_1_1_1_2 }),
    entry(0x00a2, 'ECS01b', 'Set price (primary element)', '1.2', 'electricity', IS_GS, { notes: SPLIT_1_1_1_2 }),
    entry(0x00b7, 'ECS01c', 'Set tariff and price (secondary element)', '1.1', 'electricity', IS_GS, { notes: SPLIT_1_1_1_2 }),
    entry(0x00c7, 'ECS01d', 'Set price (secondary element)', '1.2', 'electricity', IS_GS, { notes: SPLIT_1_1_1_2 }),
    entry(0x006b, 'GCS01a', 'Set tariff and price', '1.1', 'gas', IS_GS, { notes: SPLIT_1_1_1_2 }),
    entry(0x00a3, 'GCS01b', 'Set price', '1.2', 'gas', IS_GS, { notes: SPLIT_1_1_1_2 }),
    // Payment mode.
    entry(0x001a, 'ECS02', 'Set payment mode to credit', '1.6', 'electricity', IS_GS),
    entry(0x001b, 'ECS03', 'Set payment mode to prepayment', '1.6', 'electricity', IS_GS),
    entry(0x006c, 'GCS02', 'Set payment mode to credit', '1.6', 'gas', IS_GS),
    entry(0x006d, 'GCS03', 'Set payment mode to prepayment', '1.6', 'gas', IS_GS),
    // Meter balance.
    entry(0x001c, 'ECS04a', 'Adjust the meter balance', '1.5', 'electricity', IS_GS),
    entry(0x00b3, 'ECS04b', 'Reset the meter balance', '1.5', 'electricity', IS_GS),
    entry(0x0086, 'GCS40a', 'Adjust the prepayment-mode meter balance', '1.5', 'gas', IS_GS),
    entry(0x00b4, 'GCS40b', 'Reset the prepayment-mode meter balance', '1.5', 'gas', IS_GS),
    entry(0x00c0, 'GCS40c', 'Adjust the credit-mode meter balance', '1.5', 'gas', IS_GS),
    entry(0x00c2, 'GCS40d', 'Reset the credit-mode meter balance', '1.5', 'gas', IS_GS),
    // Debt, prepayment configuration, emergency credit.
    entry(0x001e, 'ECS07', 'Manage debt', '2.3', 'electricity', IS_GS),
    entry(0x006e, 'GCS04', 'Manage debt', '2.3', 'gas', IS_GS),
    entry(0x001f, 'ECS08', 'Update prepayment configuration', '2.1', 'electricity', IS_GS),
    entry(0x00de, 'ECS08a', 'Update prepayment configuration', '2.1', 'electricity', IS_GS, {
      notes: 'docs/domain.md §5 lists 0x00DE in the ECS08/GCS05 group; GBCS names it ECS08a, an ESME use case',
    }),
    entry(0x006f, 'GCS05', 'Update prepayment configuration', '2.1', 'gas', IS_GS),
    entry(0x0020, 'ECS09', 'Activate emergency credit remotely', '2.5', 'electricity', IS_GS),
    entry(0x0070, 'GCS06', 'Activate emergency credit remotely', '2.5', 'gas', IS_GS),
    // Join / unjoin (critical variants; the ACB also sends three of these codes, unsigned).
    entry(0x000d, 'CS03A1', 'Method A join (meter)', '8.7.1', 'any', IS_GS),
    entry(0x00ab, 'CS03A2', 'Method A join (non-meter)', '8.7.1', 'any', IS_GS, ACB),
    entry(0x00af, 'CS03C', 'Method C join', '8.7.1', 'any', IS_GS, ACB),
    entry(0x000f, 'CS04AC', 'Method A or C unjoin', '8.8.1', 'any', IS_GS, ACB),
  ].sort((a, b) => a.code - b.code);
}

/** A read-only view of a private map: no `set`, `delete` or `clear`, and the map never leaks. */
function readOnlyMap<K, V>(source: Iterable<readonly [K, V]>): ReadonlyMap<K, V> {
  const inner = new Map<K, V>(source);
  const view: ReadonlyMap<K, V> = {
    get size() {
      return inner.size;
    },
    get: (key) => inner.get(key),
    has: (key) => inner.has(key),
    forEach(callbackfn, thisArg?: unknown) {
      for (const [k, v] of inner) callbackfn.call(thisArg, v, k, view);
    },
    entries: () => inner.entries(),
    keys: () => inner.keys(),
    values: () => inner.values(),
    [Symbol.iterator]: () => inner.entries(),
  };
  return Object.freeze(view);
}

/**
 * Every message code docs/domain.md §5 names, keyed by code, in ascending order: the critical commands
 * (supply, firmware activation, clock, tamper state, credentials, tariffs, payment mode, balance,
 * debt, prepayment configuration, emergency credit, critical join/unjoin). Read-only: the view has
 * no `set`, `delete` or `clear`, and every entry and array in it is frozen.
 *
 * Every entry is critical when User-signed. Five codes are also sent by the Access Control Broker,
 * unsigned and not critical: `0x000F`, `0x00AB`, `0x00AF`, `0x0102`, `0x0103`
 * ({@link MessageCodeEntry.acbOriginated}); their criticality therefore depends on the originator's
 * role, which is why a validator asks {@link classify} or {@link isCritical}, never `entry.critical`
 * alone.
 *
 * No non-critical-only code is listed: docs/domain.md §5 names non-critical traffic (firmware distribution,
 * reads, top-up) without giving its message codes, and this catalogue holds no code that docs/domain.md does
 * not name. Such codes are `'unknown'` to {@link classify}.
 * @see docs/domain.md §5 (Critical commands)
 * @example
 * ```ts
 * import { MESSAGE_CATALOGUE } from '@smki/gbcs';
 * for (const [code, e] of MESSAGE_CATALOGUE) {
 *   console.log(code.toString(16).padStart(4, '0'), e.useCase, e.duisService, e.eligibleRoles.join(','));
 * }
 * ```
 */
export const MESSAGE_CATALOGUE: ReadonlyMap<number, MessageCodeEntry> = readOnlyMap(
  buildEntries().map((e) => [e.code, e] as const),
);

/**
 * The catalogue entry for a message code, or `undefined` when the catalogue does not hold it
 * (anything that is not one of its integers included).
 * @see docs/domain.md §5
 * @example
 * ```ts
 * import { lookupMessageCode } from '@smki/gbcs';
 * const e = lookupMessageCode(0x0012);
 * console.log(e?.useCase, e?.duisService); // CS06 11.3 Activate Firmware
 * console.log(lookupMessageCode(0x0052)); // undefined: not in docs/domain.md §5
 * ```
 */
export function lookupMessageCode(code: number): MessageCodeEntry | undefined {
  return MESSAGE_CATALOGUE.get(code);
}

// ---- the questions a validator asks ----------------------------------------------------------

/**
 * Classify a command by (message code, originator's Remote Party Role):
 * - `critical`: the code is in the catalogue and the originator is a User role that signs it —
 *   supplier (2) or network operator (3). Whether that role may send it is {@link isEligible}'s
 *   question, not this one.
 * - `non-critical`: the originator is the Access Control Broker (4) and the code is one of the five
 *   it also originates (`0x000F`, `0x00AB`, `0x00AF`, `0x0102`, `0x0103`).
 * - CS02b (`0x0102`–`0x0108`, credential replacement modes 2–8) from the party its mode names as
 *   authorising (docs/domain.md §10): `critical` (User-signed) from the recovery party (1) in mode 8,
 *   the transitional change of supplier (5) in modes 6 and 7 and the WAN provider (6) in mode 5;
 *   `non-critical` from the ACB in mode 4 (no User signature: the ACB MAC authorises it).
 * - `unknown`: the catalogue does not hold the code; or the ACB originates a code docs/domain.md does not say
 *   it sends; or the originator has any other role (0, 1, 5–8, 127, 135, 137, or no role code at
 *   all) for any other code. A validator must **reject** `unknown`: it is neither proof of a harmless command nor of a
 *   legitimate originator.
 * @see docs/domain.md §5 (critical is a property of the code and the originator's role)
 * @example
 * ```ts
 * import { classify } from '@smki/gbcs';
 * console.log(classify({ messageCode: 0x0102, originatorRole: 2 })); // 'critical'
 * console.log(classify({ messageCode: 0x0102, originatorRole: 4 })); // 'non-critical'
 * console.log(classify({ messageCode: 0x0108, originatorRole: 1 })); // 'critical': mode 8 by the recovery party
 * console.log(classify({ messageCode: 0x0108, originatorRole: 2 })); // 'unknown': a supplier never authorises mode 8
 * console.log(classify({ messageCode: 0x0050, originatorRole: 4 })); // 'unknown'
 * console.log(classify({ messageCode: 0x1234, originatorRole: 2 })); // 'unknown'
 * ```
 */
export function classify(query: CriticalityQuery): Criticality {
  return classifyWith(lookupMessageCode, query);
}

function classifyWith(lookup: (code: number) => MessageCodeEntry | undefined, query: CriticalityQuery): Criticality {
  if (typeof query !== 'object' || query === null) return 'unknown';
  const e = lookup(query.messageCode);
  if (e === undefined) return 'unknown';
  const role = query.originatorRole;
  if (role === SUPPLIER || role === NETWORK_OPERATOR) return e.critical ? 'critical' : 'non-critical';
  if (role === ACCESS_CONTROL_BROKER) {
    if (e.acbOriginated) return 'non-critical';
    // CS02b mode 4 (ACB by ACB): no User signature; the ACB MAC authorises it.
    return e.useCase === 'CS02b' && credentialsModeOf(query.messageCode)?.authorisingRole === ACCESS_CONTROL_BROKER ? 'non-critical' : 'unknown';
  }
  // CS02b from the party its mode names (recovery in mode 8, the transitional change of supplier
  // in modes 6 and 7, the WAN provider in mode 5): a User-signed, critical command.
  if (e.useCase === 'CS02b' && typeof role === 'number' && credentialsModeOf(query.messageCode)?.authorisingRole === role) return 'critical';
  return 'unknown';
}

/** The supported CS02b mode of a message code (0x0100 + mode), if any. */
function credentialsModeOf(messageCode: number): CredentialsModeEntry | undefined {
  const m = CREDENTIALS_MODES[messageCode - 0x0100];
  return m !== undefined && m.supported && m.messageCode === messageCode ? m : undefined;
}

/**
 * Whether a command must carry its originator's User signature: `true` unless {@link classify}
 * says `non-critical`. So the five dual codes (`0x000F`, `0x00AB`, `0x00AF`, `0x0102`, `0x0103`)
 * are critical from a supplier or network operator and not from the Access Control Broker, every
 * other catalogued code is critical from a User, and — failing closed — an **unknown** code or
 * originator counts as critical too: a validator that asks only this question demands a signature
 * instead of waving an unrecognised command through. To refuse unknown commands outright, ask
 * {@link classify} and reject `'unknown'`.
 * @see docs/domain.md §5
 * @example
 * ```ts
 * import { isCritical } from '@smki/gbcs';
 * console.log(isCritical({ messageCode: 0x000f, originatorRole: 2 })); // true: User-signed unjoin
 * console.log(isCritical({ messageCode: 0x000f, originatorRole: 4 })); // false: ACB-originated unjoin
 * console.log(isCritical({ messageCode: 0x1234, originatorRole: 2 })); // true: unknown fails closed
 * ```
 */
export function isCritical(query: CriticalityQuery): boolean {
  return classify(query) !== 'non-critical';
}

/**
 * Whether the originator may send this command to this device: the code is in the catalogue; the
 * device's fuel fits the code's device type (an ESME code sent to a gas meter is not eligible);
 * and the originator's (Remote Party Role, device fuel) maps to a DUIS role ({@link duisRoleFor})
 * that the entry lists. Fails closed: an unknown code, an unknown fuel, or a role with no DUIS role
 * (the ACB included) gives `false`.
 *
 * This is the eligibility of **User** commands. The Access Control Broker is not a DUIS User role,
 * so `false` for role 4 says nothing about the five codes the ACB legitimately originates; a
 * validator recognises those with {@link classify} (`'non-critical'`) and their own checks.
 * @see docs/domain.md §5 (eligible roles, and the DUIS role to wire mapping)
 * @example
 * ```ts
 * import { isEligible } from '@smki/gbcs';
 * console.log(isEligible({ messageCode: 0x0050, originatorRole: 2, deviceFuel: 'electricity' })); // true
 * console.log(isEligible({ messageCode: 0x0050, originatorRole: 2, deviceFuel: 'gas' })); // false: ESME code
 * console.log(isEligible({ messageCode: 0x0050, originatorRole: 3, deviceFuel: 'electricity' })); // false: ED
 * ```
 */
export function isEligible(query: EligibilityQuery): boolean {
  return isEligibleWith(lookupMessageCode, query);
}

function isEligibleWith(lookup: (code: number) => MessageCodeEntry | undefined, query: EligibilityQuery): boolean {
  if (typeof query !== 'object' || query === null) return false;
  const e = lookup(query.messageCode);
  if (e === undefined) return false;
  if (!isDeviceFuel(query.deviceFuel)) return false;
  if (e.deviceType !== 'any' && e.deviceType !== query.deviceFuel) return false;
  const role = duisRoleFor(query.originatorRole, query.deviceFuel);
  return role !== undefined && e.eligibleRoles.includes(role);
}

// ---- configuration: codes docs/domain.md does not number -------------------------------------------------

/** A catalogue: the catalogue's own entries (docs/domain.md §5) plus any the deployment adds, and the questions asked of it. */
export interface Catalogue {
  /** Every entry, the catalogue's own and the added ones. */
  readonly entries: ReadonlyMap<number, MessageCodeEntry>;
  /** One entry. */
  lookup(code: number): MessageCodeEntry | undefined;
  /** {@link classify} over this catalogue. */
  classify(query: CriticalityQuery): Criticality;
  /** {@link isCritical} over this catalogue. */
  isCritical(query: CriticalityQuery): boolean;
  /** {@link isEligible} over this catalogue. */
  isEligible(query: EligibilityQuery): boolean;
}

const DEVICE_TYPES: readonly DeviceType[] = ['electricity', 'gas', 'any'];

function checkExtra(e: MessageCodeEntry): MessageCodeEntry {
  const bad = (why: string): never => {
    throw new SmkiError('ERR_INVALID_ARGUMENT', `catalogue entry ${String((e as { code?: unknown })?.code)}: ${why}`, {});
  };
  if (typeof e !== 'object' || e === null) bad('not an object');
  if (!Number.isInteger(e.code) || e.code < 0 || e.code > 0xffff) bad('code must be 0..0xFFFF');
  if (MESSAGE_CATALOGUE.has(e.code)) bad('the catalogue already defines this code; it cannot be redefined');
  if (typeof e.useCase !== 'string' || typeof e.name !== 'string' || typeof e.duisService !== 'string') bad('useCase, name and duisService are text');
  if (!DEVICE_TYPES.includes(e.deviceType)) bad('deviceType must be electricity, gas or any');
  if (!Array.isArray(e.eligibleRoles) || !e.eligibleRoles.every(isDuisRole)) bad('eligibleRoles must be DUIS roles');
  if (typeof e.critical !== 'boolean' || typeof e.acbOriginated !== 'boolean') bad('critical and acbOriginated are booleans');
  return Object.freeze({ ...e, eligibleRoles: Object.freeze([...e.eligibleRoles]) });
}

/**
 * A catalogue with entries added for codes docs/domain.md does not number (the common non-critical
 * commands, such as reads, whose codes are not in the public material this toolkit was checked
 * against: the domain rules ask that such rules be configuration, not guesses). The catalogue's own entries cannot be
 * changed or removed, so no configuration can make a critical command non-critical.
 * @throws SmkiError `ERR_INVALID_ARGUMENT` for a malformed entry, a duplicate, or a code the catalogue defines
 * @see docs/domain.md §5
 * @example
 * ```ts
 * import { createCatalogue } from '@smki/gbcs';
 * const catalogue = createCatalogue([
 *   { code: 0x0400, useCase: 'XR01', name: 'a read (example)', duisService: '4.x', deviceType: 'any', eligibleRoles: ['IS', 'GS'], critical: false, acbOriginated: false },
 * ]);
 * console.log(catalogue.classify({ messageCode: 0x0400, originatorRole: 2 })); // 'non-critical'
 * console.log(catalogue.classify({ messageCode: 0x0050, originatorRole: 2 })); // 'critical'
 * ```
 */
export function createCatalogue(extra: readonly MessageCodeEntry[] = []): Catalogue {
  const added = new Map<number, MessageCodeEntry>();
  for (const e of extra) {
    const entry = checkExtra(e);
    if (added.has(entry.code)) throw new SmkiError('ERR_INVALID_ARGUMENT', `catalogue entry ${entry.code} is given twice`, {});
    added.set(entry.code, entry);
  }
  const entries = readOnlyMap([...MESSAGE_CATALOGUE, ...added]);
  const lookup = (code: number): MessageCodeEntry | undefined => entries.get(code);
  return Object.freeze({
    entries,
    lookup,
    classify: (q: CriticalityQuery) => classifyWith(lookup, q),
    isCritical: (q: CriticalityQuery) => classifyWith(lookup, q) !== 'non-critical',
    isEligible: (q: EligibilityQuery) => isEligibleWith(lookup, q),
  });
}
