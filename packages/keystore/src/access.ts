/**
 * Need-to-know access and dual control (M of N) for the key store: operators and their grants,
 * the exact operations they may ask for, signed operator requests, the access policy, proposals
 * and signed approvals. Pure and storage-agnostic: the store persists operators, the last counter
 * it accepted from each, proposals and approvals, and calls these functions to decide.
 *
 * Every decision fails closed: anything malformed, unknown, unsigned, stale, replayed or out of
 * scope is refused with its own code, and nothing here is ever read from an object's prototype
 * (`__proto__`, `constructor` and `toString` are names like any other). Inputs that come from
 * outside are typed `unknown` and checked field by field, with bounds on every size, count and
 * length; what is returned is a fresh, frozen copy of what was checked, so a getter or a later
 * change to the caller's object cannot make the store execute something other than what was
 * verified. No error carries key material: only ids, counters, times, hashes and field names.
 *
 * Byte formats (each signature and hash is over UTF-8, after a domain line that names what it is,
 * so that no signed or hashed value can be taken for another kind):
 *
 * - operation hash: SHA-256 of `smki-keystore operation v1\n` + {@link canonicalJson} of the operation;
 * - operator request signature: ECDSA P-256/SHA-256 (64-byte `r ‖ s`, upper-case hex) over
 *   `smki-keystore operator request v1\n` + canonicalJson of every field of the request but `signature`;
 * - approval signature: the same over `smki-keystore approval v1\n` + canonicalJson of every field
 *   of the approval but `signature`;
 * - policy hash: SHA-256 of `smki-keystore access policy v1\n` + canonicalJson of the policy;
 * - device and assignment lists: SHA-256 of a domain line and one line per entry (see {@link deviceListDigest}).
 *
 * @see docs/keystore-estate.md §2 (need-to-know access and dual control)
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  fromHex,
  isP256Point,
  isRemotePartyRole,
  parseEui64,
  publicKeyFromRaw,
  SmkiError,
  toHex,
  verifyP1363,
  type Eui64,
  type RemotePartyRoleCode,
  type Signer,
  type SmkiErrorCode,
} from '@smki/core';
import { KEY_PURPOSES, type KeyPurpose } from './types.js';

// ---------------------------------------------------------------------------------------------
// Limits

/** Most bytes (UTF-8) of one {@link canonicalJson} text: 64 KiB. */
export const MAX_CANONICAL_JSON_BYTES = 65_536;
/** Most nested arrays and objects in one {@link canonicalJson} value. */
export const MAX_CANONICAL_JSON_DEPTH = 16;
/** Most grants one operator holds. */
export const MAX_OPERATOR_GRANTS = 64;
/** Most portfolios one scope, or one `session.sign` operation, names. */
export const MAX_SCOPE_PORTFOLIOS = 256;
/** Most scopes one authorisation checks. */
export const MAX_SCOPES = 64;
/** Most devices one `device.assign` or `device.move` operation, and one list digest, covers. */
export const MAX_DEVICE_LIST = 100_000;
/** Most rules in one access policy. */
export const MAX_POLICY_RULES = 64;
/** Most approvals one policy rule may require. */
export const MAX_REQUIRED_APPROVALS = 16;
/** Most approvals {@link evaluateQuorum} takes for one proposal. */
export const MAX_APPROVALS_PER_PROPOSAL = 64;
/** Longest lifetime of a proposal (from `createdAt` to `expiresAt`): 30 days, in milliseconds. */
export const MAX_PROPOSAL_LIFETIME_MS = 30 * 24 * 3600 * 1000;
/** Widest time window {@link verifyOperatorRequest} accepts as `maxAgeMs` or `maxFutureMs`: one day, in milliseconds. */
export const MAX_REQUEST_WINDOW_MS = 24 * 3600 * 1000;
/** Default oldest age of an operator request, in milliseconds (5 minutes). */
export const DEFAULT_REQUEST_MAX_AGE_MS = 300_000;
/** Default furthest an operator request's `issuedAt` may be ahead of the clock, in milliseconds (1 minute). */
export const DEFAULT_REQUEST_MAX_FUTURE_MS = 60_000;
/** Highest operator request counter: 2^63 − 1. */
export const MAX_OPERATOR_COUNTER = (1n << 63n) - 1n;

const MAX_TEXT = 128;

const OPERATION_DOMAIN = 'smki-keystore operation v1\n';
const REQUEST_DOMAIN = 'smki-keystore operator request v1\n';
const APPROVAL_DOMAIN = 'smki-keystore approval v1\n';
const POLICY_DOMAIN = 'smki-keystore access policy v1\n';
const DEVICE_LIST_DOMAIN = 'smki-keystore device list v1\n';
const ASSIGNMENT_LIST_DOMAIN = 'smki-keystore assignment list v1\n';
const MESSAGE_LIST_DOMAIN = 'smki-keystore message list v1\n';

const OPERATOR_ID = /^[A-Za-z0-9._@-]{1,64}$/;
const STORE_ID = /^[A-Za-z0-9._:@-]{1,128}$/;
const PORTFOLIO_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** What a key store's further backend may be named (its `backends` option): 1-32 lower-case letters, digits or `-`, starting with a letter. */
export const BACKEND_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const KEY_ID = /^[A-Za-z0-9._:@/+-]{1,128}$/;
const EUI64 = /^[0-9A-F]{16}$/;
const SHA256 = /^[0-9A-F]{64}$/;
const PUBLIC_KEY_HEX = /^04[0-9A-F]{128}$/;
const SIGNATURE_HEX = /^[0-9A-F]{128}$/;
const PROPOSAL_ID = /^[0-9a-f]{32}$/;
const COUNTER = /^[1-9][0-9]{0,18}$/;
const ISO_MS = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$/;
/** C0 and C1 controls and DEL: never in a name or a reason. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** A UTF-16 surrogate that is not half of a pair (with the `u` flag, a pair is one code point). */
const LONE_SURROGATE = /\p{Cs}/u;

/** A refusal with the code the caller chose for this input. */
type Bad = (detail: string) => never;

function fail(code: SmkiErrorCode, message: string, detail?: string): never {
  throw new SmkiError(code, message, detail === undefined ? {} : { detail });
}

function refuser(code: SmkiErrorCode, what: string): Bad {
  return (detail) => fail(code, `${what}: ${detail}`, detail);
}

/** A string from outside, shortened for an error's detail (ids and field names only, never key material). */
function shown(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').toUpperCase();
}

function utf8(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'utf8'));
}

/**
 * Run a parse of outside data; anything thrown that is not already a toolkit error (a Proxy's
 * trap, say) becomes the caller's refusal, so that every malformed input is refused with its code.
 */
function guarded<T>(bad: Bad, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    if (e instanceof SmkiError) throw e;
    return bad('the value cannot be read as plain data');
  }
}

// ---------------------------------------------------------------------------------------------
// Plain data from outside

/**
 * The own data properties of a plain object (prototype `Object.prototype` or null): exactly the
 * `required` names and at most the `optional` ones, each read once. Symbols, accessors, hidden
 * (non-enumerable) properties and any other name are refused.
 */
function readFields(value: unknown, required: readonly string[], optional: readonly string[], bad: Bad, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null) bad(`${what} is not an object`);
  // An array, a Date, a Map, a class instance: not a plain object.
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) bad(`${what} is not a plain object`);
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const k of Reflect.ownKeys(value as object)) {
    if (typeof k !== 'string' || (!required.includes(k) && !optional.includes(k))) {
      bad(`${what} has a field it does not allow: ${typeof k === 'string' ? shown(k) : 'a symbol'}`);
    }
    const name = k as string;
    const d = Object.getOwnPropertyDescriptor(value, name);
    if (d === undefined || !('value' in d) || !d.enumerable) bad(`${what}.${name} is not a plain data field`);
    out[name] = (d as PropertyDescriptor).value;
  }
  for (const k of required) if (!Object.hasOwn(out, k)) bad(`${what} lacks ${k}`);
  return out;
}

/** The elements of a plain array of at most `max` elements, each read once; holes, accessors and extra properties are refused. */
function readArray(value: unknown, max: number, bad: Bad, what: string): unknown[] {
  if (!Array.isArray(value) || Object.getPrototypeOf(value) !== Array.prototype) bad(`${what} is not an array`);
  const a = value as unknown[];
  const n = a.length;
  if (n > max) bad(`${what} has more than ${max} elements`);
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const d = Object.getOwnPropertyDescriptor(a, i);
    if (d === undefined || !('value' in d)) bad(`${what}[${i}] is a hole or an accessor`);
    out.push((d as PropertyDescriptor).value);
  }
  if (Reflect.ownKeys(a).length !== n + 1) bad(`${what} has properties besides its elements`);
  return out;
}

function readString(v: unknown, pattern: RegExp, bad: Bad, what: string, spelling: string): string {
  if (typeof v !== 'string' || !pattern.test(v)) bad(`${what} is not ${spelling}`);
  return v as string;
}

/** The time in milliseconds of an ISO 8601 UTC time with milliseconds, in the one spelling `Date.prototype.toISOString` gives. */
function readTime(v: unknown, bad: Bad, what: string): number {
  if (typeof v !== 'string' || !ISO_MS.test(v)) bad(`${what} is not an ISO 8601 UTC time with milliseconds`);
  const t = Date.parse(v as string);
  if (!Number.isFinite(t) || new Date(t).toISOString() !== v) bad(`${what} is not a real time`);
  return t;
}

/** The ISO spelling of a `Date` the caller passed, refused when it is not a valid date of years 0000–9999. */
function timeOf(d: unknown, bad: Bad, what: string): string {
  if (!(d instanceof Date) || !Number.isFinite(d.getTime())) bad(`${what} is not a valid Date`);
  const iso = (d as Date).toISOString();
  readTime(iso, bad, what);
  return iso;
}

function readNow(now: unknown): number {
  if (!(now instanceof Date) || !Number.isFinite(now.getTime())) fail('ERR_INVALID_ARGUMENT', 'now is not a valid Date', 'now');
  return (now as Date).getTime();
}

// ---------------------------------------------------------------------------------------------
// Canonical JSON

/**
 * The canonical JSON text of `value`: object keys sorted by UTF-16 code units, no white space,
 * strings escaped as `JSON.stringify` escapes them. Only strings (well-formed UTF-16), safe
 * integers, booleans, null, arrays and plain objects (prototype `Object.prototype` or null) are
 * data; anything else is refused rather than dropped or coerced: `undefined` (also in an array or
 * as a property), NaN, infinities, fractions, integers beyond 2^53 − 1, bigint, functions,
 * symbols (as values or keys), class instances (`Date`, `Map`, `Uint8Array`, boxed primitives),
 * accessors, hidden (non-enumerable) properties, array holes or extra array properties, a lone
 * surrogate, a cycle, nesting deeper than {@link MAX_CANONICAL_JSON_DEPTH}, or text longer than
 * {@link MAX_CANONICAL_JSON_BYTES} UTF-8 bytes. `-0` is written `0`.
 *
 * For the data it accepts, the text is that of RFC 8785 (JSON Canonicalization Scheme): integers
 * only, so number formatting is never in question.
 * @throws SmkiError `ERR_INVALID_ARGUMENT` (detail: where, as `$.a[2]`, and what)
 * @see RFC 8785 §3.2 (JCS: sorting by UTF-16 code units, JSON.stringify string escaping)
 */
export function canonicalJson(value: unknown): string {
  const parts: string[] = [];
  let bytes = 0;
  const ancestors = new Set<object>();
  const bad = (path: string, what: string): never => {
    const where = path.length > 128 ? `${path.slice(0, 128)}…` : path;
    return fail('ERR_INVALID_ARGUMENT', `not canonical JSON data at ${where}: ${what}`, `${where}: ${what}`);
  };
  const emit = (s: string, path: string): void => {
    bytes += Buffer.byteLength(s, 'utf8');
    if (bytes > MAX_CANONICAL_JSON_BYTES) bad(path, `longer than ${MAX_CANONICAL_JSON_BYTES} bytes`);
    parts.push(s);
  };
  const string = (s: string, path: string): void => {
    // Before JSON.stringify copies it: a string this long can only make the text too long.
    if (s.length > MAX_CANONICAL_JSON_BYTES) bad(path, `a string of more than ${MAX_CANONICAL_JSON_BYTES} characters`);
    if (LONE_SURROGATE.test(s)) bad(path, 'a string with a lone surrogate');
    emit(JSON.stringify(s), path);
  };
  const walk = (v: unknown, depth: number, path: string): void => {
    switch (typeof v) {
      case 'string':
        string(v, path);
        return;
      case 'boolean':
        emit(v ? 'true' : 'false', path);
        return;
      case 'number':
        if (!Number.isSafeInteger(v)) bad(path, Number.isInteger(v) ? 'an integer beyond 2^53 - 1' : 'a number that is not an integer');
        emit(String(v), path);
        return;
      case 'object':
        break;
      default:
        bad(path, `a value of type ${typeof v}`);
    }
    if (v === null) {
      emit('null', path);
      return;
    }
    const o = v as object;
    if (ancestors.has(o)) bad(path, 'a cycle');
    if (depth >= MAX_CANONICAL_JSON_DEPTH) bad(path, `nested deeper than ${MAX_CANONICAL_JSON_DEPTH}`);
    ancestors.add(o);
    if (Array.isArray(o)) {
      if (Object.getPrototypeOf(o) !== Array.prototype) bad(path, 'an array of another class');
      const n = o.length;
      emit('[', path);
      for (let i = 0; i < n; i++) {
        const d = Object.getOwnPropertyDescriptor(o, i);
        if (d === undefined || !('value' in d)) bad(`${path}[${i}]`, 'a hole or an accessor');
        if (i > 0) emit(',', path);
        walk((d as PropertyDescriptor).value, depth + 1, `${path}[${i}]`);
      }
      if (Reflect.ownKeys(o).length !== n + 1) bad(path, 'an array with properties besides its elements');
      emit(']', path);
    } else {
      const proto: unknown = Object.getPrototypeOf(o);
      if (proto !== Object.prototype && proto !== null) bad(path, 'an instance of a class (only plain objects are data)');
      const keys = Reflect.ownKeys(o);
      const names: string[] = [];
      for (const k of keys) {
        if (typeof k !== 'string') bad(path, 'a symbol key');
        names.push(k as string);
      }
      // Array.prototype.sort without a comparator orders strings by UTF-16 code units (RFC 8785 §3.2.3).
      names.sort();
      emit('{', path);
      names.forEach((k, i) => {
        const at = `${path}.${k}`;
        const d = Object.getOwnPropertyDescriptor(o, k);
        if (d === undefined || !('value' in d) || !d.enumerable) bad(at, 'an accessor or a hidden property');
        if (i > 0) emit(',', path);
        string(k, at);
        emit(':', at);
        walk((d as PropertyDescriptor).value, depth + 1, at);
      });
      emit('}', path);
    }
    ancestors.delete(o);
  };
  guarded(refuser('ERR_INVALID_ARGUMENT', 'not canonical JSON data'), () => walk(value, 0, '$'));
  return parts.join('');
}

// ---------------------------------------------------------------------------------------------
// Operators and grants

/**
 * What an operator may do. Roles are separate duties: none includes another (an administrator
 * cannot generate keys or sign, a custodian cannot move devices).
 *
 * - `administrator`: organisations, portfolios, operators and the access policy;
 * - `custodian`: key generation, CSRs, attaching certificates, rotation, retirement, revocation;
 * - `deviceManager`: assigning and moving devices, recording credential updates;
 * - `signer`: a service account that may only open signing sessions for its portfolios;
 * - `auditor`: reading and verifying only (audit sessions).
 * @see docs/keystore-estate.md §2
 */
export type OperatorRole = 'administrator' | 'custodian' | 'deviceManager' | 'signer' | 'auditor';

/** Every operator role. */
export const OPERATOR_ROLES: readonly OperatorRole[] = Object.freeze(['administrator', 'custodian', 'deviceManager', 'signer', 'auditor']);

/**
 * One role held for an organisation, or for one portfolio of it. `organisation: '*'` is every
 * organisation of the store, and the whole store (it never names a portfolio: portfolio ids are
 * unique per organisation only).
 */
export interface OperatorGrant {
  /** The role. */
  readonly role: OperatorRole;
  /** The organisation (canonical EUI-64), or `'*'` for the whole store. */
  readonly organisation: Eui64 | '*';
  /** One portfolio of the organisation; absent for every portfolio of it. */
  readonly portfolioId?: string;
}

/** An operator as the store knows it: its id, its public key and its grants. */
export interface OperatorInfo {
  /** Operator id: 1 to 64 of `A–Z a–z 0–9 . _ @ -`. */
  readonly operatorId: string;
  /** Its ECDSA P-256 public key: the 65-byte uncompressed point. */
  readonly publicKey: Uint8Array;
  /** What it may do (1 to {@link MAX_OPERATOR_GRANTS}, no two the same). */
  readonly grants: readonly OperatorGrant[];
}

function readGrant(value: unknown, bad: Bad, what: string): OperatorGrant {
  const f = readFields(value, ['role', 'organisation'], ['portfolioId'], bad, what);
  const role = f['role'];
  if (typeof role !== 'string' || !OPERATOR_ROLES.includes(role as OperatorRole)) bad(`${what}.role is not an operator role`);
  const organisation = f['organisation'];
  if (organisation !== '*' && (typeof organisation !== 'string' || !EUI64.test(organisation))) bad(`${what}.organisation is not a canonical EUI-64 or '*'`);
  const grant: { role: OperatorRole; organisation: Eui64 | '*'; portfolioId?: string } = { role: role as OperatorRole, organisation: organisation as Eui64 | '*' };
  if (Object.hasOwn(f, 'portfolioId')) {
    if (organisation === '*') bad(`${what} names a portfolio of every organisation`);
    grant.portfolioId = readString(f['portfolioId'], PORTFOLIO_ID, bad, `${what}.portfolioId`, 'a portfolio id');
  }
  return Object.freeze(grant);
}

function readGrants(value: unknown, bad: Bad, what: string): readonly OperatorGrant[] {
  const items = readArray(value, MAX_OPERATOR_GRANTS, bad, what);
  if (items.length === 0) bad(`${what} is empty`);
  const seen = new Set<string>();
  const out = items.map((item, i) => {
    const g = readGrant(item, bad, `${what}[${i}]`);
    const key = `${g.role}/${g.organisation}/${g.portfolioId ?? ''}`;
    if (seen.has(key)) bad(`${what}[${i}] repeats a grant`);
    seen.add(key);
    return g;
  });
  return Object.freeze(out);
}

/**
 * An operator record checked and copied: id, a 65-byte P-256 point, 1 to
 * {@link MAX_OPERATOR_GRANTS} distinct grants, nothing else. The store checks every record it
 * reads with this (the functions below do too, on what `lookup` returns).
 * @throws SmkiError `ERR_INVALID_ARGUMENT` (detail: the field)
 */
export function parseOperatorInfo(value: unknown): OperatorInfo {
  const bad = refuser('ERR_INVALID_ARGUMENT', 'not an operator record');
  return guarded(bad, () => {
    const f = readFields(value, ['operatorId', 'publicKey', 'grants'], [], bad, 'operator');
    const operatorId = readString(f['operatorId'], OPERATOR_ID, bad, 'operator.operatorId', 'an operator id');
    const pk = f['publicKey'];
    if (!(pk instanceof Uint8Array) || !isP256Point(pk)) bad('operator.publicKey is not a 65-byte uncompressed P-256 point');
    const grants = readGrants(f['grants'], bad, 'operator.grants');
    return Object.freeze({ operatorId, publicKey: new Uint8Array(pk as Uint8Array), grants });
  });
}

/**
 * Whether `grants` give `role` for `organisation` (and, when given, `portfolioId`). A grant
 * without a portfolio covers every portfolio of its organisation; a grant of organisation `'*'`
 * covers everything. Asking for no portfolio asks for the whole organisation, which a portfolio's
 * grant never gives; asking for organisation `'*'` asks for the whole store, which only a `'*'`
 * grant gives. Anything that is not a list of grants permits nothing.
 * @see docs/keystore-estate.md §2
 */
export function permits(grants: readonly OperatorGrant[], role: OperatorRole, organisation: Eui64 | '*', portfolioId?: string): boolean {
  if (!Array.isArray(grants) || grants.length > MAX_OPERATOR_GRANTS) return false;
  for (const g of grants as readonly unknown[]) {
    if (typeof g !== 'object' || g === null) continue;
    const { role: r, organisation: o, portfolioId: p } = g as OperatorGrant;
    if (r !== role) continue;
    if (o === '*') {
      if (p === undefined) return true;
      continue;
    }
    if (o !== organisation) continue;
    if (p === undefined || p === portfolioId) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Operations

/**
 * One state-changing call of the key store (or the opening of a session), with its exact
 * parameters: what an operator signs, a policy names and approvers approve. A discriminated union
 * on `op`. Identifiers are in their canonical spelling (EUI-64s in upper-case hex); bulk device
 * lists are carried by their count and digest ({@link deviceListDigest}, {@link assignmentListDigest}).
 * @see docs/keystore-estate.md §2
 */
export type Operation =
  | {
      /** Add an organisation. */
      readonly op: 'organisation.add';
      /** Its EUI-64 entity id. */
      readonly entityId: Eui64;
      /** Its Remote Party Role code. */
      readonly role: RemotePartyRoleCode;
      /** Most devices one key may be trusted by. */
      readonly maxDevicesPerKey?: number;
    }
  | {
      /** Create a portfolio. */
      readonly op: 'portfolio.create';
      /** The organisation. */
      readonly organisation: Eui64;
      /** The new portfolio's id. */
      readonly portfolioId: string;
      /** A display name (1 to 128 characters, no control characters). */
      readonly name?: string;
      /** Purposes for which its key serves the whole estate (never `xmlSigning`). */
      readonly wholeEstate?: readonly KeyPurpose[];
    }
  | {
      /** Generate a key. */
      readonly op: 'key.generate';
      /** The organisation. */
      readonly organisation: Eui64;
      /** The portfolio. */
      readonly portfolioId: string;
      /** The key's purpose. */
      readonly purpose: KeyPurpose;
      /** One of the store's further backends, by name (default: the store's backend). */
      readonly backend?: string;
    }
  | {
      /** Make a certification request for a key. */
      readonly op: 'key.csr';
      /** The key id. */
      readonly keyId: string;
    }
  | {
      /** Attach a certificate to a key. */
      readonly op: 'key.attach';
      /** The key id. */
      readonly keyId: string;
      /** SHA-256 of the certificate's DER, upper-case hex. */
      readonly certificateSha256: string;
    }
  | {
      /** Make a key its portfolio's current key for its purpose. */
      readonly op: 'key.rotate';
      /** The key id. */
      readonly keyId: string;
    }
  | {
      /** Retire a key. */
      readonly op: 'key.retire';
      /** The key id. */
      readonly keyId: string;
    }
  | {
      /** Revoke a key. */
      readonly op: 'key.revoke';
      /** The key id. */
      readonly keyId: string;
      /** Why (1 to 128 characters, no control characters). */
      readonly reason?: string;
    }
  | {
      /** Assign devices to portfolios. */
      readonly op: 'device.assign';
      /** The organisation. */
      readonly organisation: Eui64;
      /** How many devices (1 to {@link MAX_DEVICE_LIST}). */
      readonly count: number;
      /** {@link assignmentListDigest} of the assignments. */
      readonly listSha256: string;
    }
  | {
      /** Move devices to another portfolio. */
      readonly op: 'device.move';
      /** The organisation. */
      readonly organisation: Eui64;
      /** The portfolio they move to. */
      readonly toPortfolioId: string;
      /** How many devices (1 to {@link MAX_DEVICE_LIST}). */
      readonly count: number;
      /** {@link deviceListDigest} of the devices. */
      readonly listSha256: string;
    }
  | {
      /** Record that a device's credentials were updated to its portfolio's current key. */
      readonly op: 'device.credentialsUpdated';
      /** The organisation. */
      readonly organisation: Eui64;
      /** The device. */
      readonly device: Eui64;
      /** The purpose whose anchor changed (never `xmlSigning`: no meter trusts that key). */
      readonly purpose: KeyPurpose;
    }
  | {
      /** Add an operator. */
      readonly op: 'operator.add';
      /** Its id. */
      readonly operatorId: string;
      /** Its public key: the 65-byte uncompressed P-256 point, upper-case hex. */
      readonly publicKey: string;
      /** Its grants. */
      readonly grants: readonly OperatorGrant[];
    }
  | {
      /** Remove an operator. */
      readonly op: 'operator.remove';
      /** Its id. */
      readonly operatorId: string;
    }
  | {
      /** Replace the access policy. */
      readonly op: 'policy.set';
      /** {@link policyHash} of the new policy. */
      readonly policySha256: string;
    }
  | {
      /** Open a signing session. */
      readonly op: 'session.sign';
      /** The organisation. */
      readonly organisation: Eui64;
      /** The portfolios it signs for (1 to {@link MAX_SCOPE_PORTFOLIOS}, distinct). */
      readonly portfolioIds: readonly string[];
      /**
       * With `messagesSha256`: the session signs exactly these messages, each once ({@link
       * messageListDigest} of the payload's `messages`), and nothing else; approvals of the
       * request then cover the exact bytes to be signed.
       */
      readonly count?: number;
      /** {@link messageListDigest} of the messages the session may sign (with `count`). */
      readonly messagesSha256?: string;
    }
  | {
      /** Open a read-and-verify session. */
      readonly op: 'session.audit';
      /** The organisation, or `'*'` for the whole store. */
      readonly organisation: Eui64 | '*';
    };

/** The name of an operation (its `op`). */
export type OperationName = Operation['op'];

/**
 * The role that performs each operation (and that an approver of it must hold; administrators
 * approve the operations administrators perform).
 * @see docs/keystore-estate.md §2
 */
export const OPERATION_ROLE: Readonly<Record<OperationName, OperatorRole>> = Object.freeze({
  'organisation.add': 'administrator',
  'portfolio.create': 'administrator',
  'key.generate': 'custodian',
  'key.csr': 'custodian',
  'key.attach': 'custodian',
  'key.rotate': 'custodian',
  'key.retire': 'custodian',
  'key.revoke': 'custodian',
  'device.assign': 'deviceManager',
  'device.move': 'deviceManager',
  'device.credentialsUpdated': 'deviceManager',
  'operator.add': 'administrator',
  'operator.remove': 'administrator',
  'policy.set': 'administrator',
  'session.sign': 'signer',
  'session.audit': 'auditor',
});

/** Every operation name, in a fixed order. */
export const OPERATION_NAMES: readonly OperationName[] = Object.freeze(Object.keys(OPERATION_ROLE) as OperationName[]);

type FieldKind =
  | 'eui64'
  | 'eui64OrAll'
  | 'rpRole'
  | 'positiveInt'
  | 'count'
  | 'portfolioId'
  | 'portfolioIds'
  | 'text'
  | 'purposes'
  | 'purpose'
  | 'devicePurpose'
  | 'keyId'
  | 'sha256'
  | 'operatorId'
  | 'publicKey'
  | 'grants'
  | 'backendName';

interface OperationSpec {
  readonly required: Readonly<Record<string, FieldKind>>;
  readonly optional: Readonly<Record<string, FieldKind>>;
}

/** The fields of each operation, besides `op`. */
const OPERATION_FIELDS: Readonly<Record<OperationName, OperationSpec>> = Object.freeze({
  'organisation.add': { required: { entityId: 'eui64', role: 'rpRole' }, optional: { maxDevicesPerKey: 'positiveInt' } },
  'portfolio.create': { required: { organisation: 'eui64', portfolioId: 'portfolioId' }, optional: { name: 'text', wholeEstate: 'purposes' } },
  'key.generate': { required: { organisation: 'eui64', portfolioId: 'portfolioId', purpose: 'purpose' }, optional: { backend: 'backendName' } },
  'key.csr': { required: { keyId: 'keyId' }, optional: {} },
  'key.attach': { required: { keyId: 'keyId', certificateSha256: 'sha256' }, optional: {} },
  'key.rotate': { required: { keyId: 'keyId' }, optional: {} },
  'key.retire': { required: { keyId: 'keyId' }, optional: {} },
  'key.revoke': { required: { keyId: 'keyId' }, optional: { reason: 'text' } },
  'device.assign': { required: { organisation: 'eui64', count: 'count', listSha256: 'sha256' }, optional: {} },
  'device.move': { required: { organisation: 'eui64', toPortfolioId: 'portfolioId', count: 'count', listSha256: 'sha256' }, optional: {} },
  'device.credentialsUpdated': { required: { organisation: 'eui64', device: 'eui64', purpose: 'devicePurpose' }, optional: {} },
  'operator.add': { required: { operatorId: 'operatorId', publicKey: 'publicKey', grants: 'grants' }, optional: {} },
  'operator.remove': { required: { operatorId: 'operatorId' }, optional: {} },
  'policy.set': { required: { policySha256: 'sha256' }, optional: {} },
  'session.sign': { required: { organisation: 'eui64', portfolioIds: 'portfolioIds' }, optional: { count: 'count', messagesSha256: 'sha256' } },
  'session.audit': { required: { organisation: 'eui64OrAll' }, optional: {} },
});

/** The purposes a device installs an anchor for (every purpose but `xmlSigning`). */
const DEVICE_PURPOSES: readonly KeyPurpose[] = KEY_PURPOSES.filter((p) => p !== 'xmlSigning');

function readField(kind: FieldKind, v: unknown, bad: Bad, what: string): unknown {
  switch (kind) {
    case 'eui64':
      return readString(v, EUI64, bad, what, 'a canonical EUI-64 (16 upper-case hex digits)');
    case 'eui64OrAll':
      return v === '*' ? v : readString(v, EUI64, bad, what, "a canonical EUI-64 or '*'");
    case 'rpRole':
      if (!isRemotePartyRole(v)) bad(`${what} is not a Remote Party Role code`);
      return v;
    case 'positiveInt':
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) bad(`${what} is not a positive integer`);
      return v;
    case 'count':
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > MAX_DEVICE_LIST) bad(`${what} is not an integer from 1 to ${MAX_DEVICE_LIST}`);
      return v;
    case 'portfolioId':
      return readString(v, PORTFOLIO_ID, bad, what, 'a portfolio id (1 to 64 of A-Z a-z 0-9 _ -)');
    case 'portfolioIds': {
      const items = readArray(v, MAX_SCOPE_PORTFOLIOS, bad, what);
      if (items.length === 0) bad(`${what} is empty`);
      const ids = items.map((p, i) => readString(p, PORTFOLIO_ID, bad, `${what}[${i}]`, 'a portfolio id'));
      if (new Set(ids).size !== ids.length) bad(`${what} names a portfolio twice`);
      return Object.freeze(ids);
    }
    case 'backendName':
      return readString(v, BACKEND_NAME, bad, what, "a backend name (1-32 lower-case letters, digits or '-', starting with a letter)");
    case 'text':
      if (typeof v !== 'string' || v.length === 0 || v.length > MAX_TEXT) bad(`${what} is not a text of 1 to ${MAX_TEXT} characters`);
      if (CONTROL.test(v as string) || LONE_SURROGATE.test(v as string)) bad(`${what} has a control character or a lone surrogate`);
      return v;
    case 'purposes': {
      const items = readArray(v, DEVICE_PURPOSES.length, bad, what);
      items.forEach((p, i) => {
        if (typeof p !== 'string' || !DEVICE_PURPOSES.includes(p as KeyPurpose)) bad(`${what}[${i}] is not a device key purpose`);
      });
      if (new Set(items).size !== items.length) bad(`${what} names a purpose twice`);
      return Object.freeze(items);
    }
    case 'purpose':
      if (typeof v !== 'string' || !KEY_PURPOSES.includes(v as KeyPurpose)) bad(`${what} is not a key purpose`);
      return v;
    case 'devicePurpose':
      if (typeof v !== 'string' || !DEVICE_PURPOSES.includes(v as KeyPurpose)) bad(`${what} is not a device key purpose`);
      return v;
    case 'keyId':
      return readString(v, KEY_ID, bad, what, 'a key id');
    case 'sha256':
      return readString(v, SHA256, bad, what, 'a SHA-256 (64 upper-case hex digits)');
    case 'operatorId':
      return readString(v, OPERATOR_ID, bad, what, 'an operator id (1 to 64 of A-Z a-z 0-9 . _ @ -)');
    case 'publicKey':
      readString(v, PUBLIC_KEY_HEX, bad, what, 'a 65-byte uncompressed point in upper-case hex');
      if (!isP256Point(fromHex(v as string))) bad(`${what} is not a point on P-256`);
      return v;
    case 'grants':
      return readGrants(v, bad, what);
  }
}

function readOperation(value: unknown, bad: Bad): Operation {
  if (typeof value !== 'object' || value === null) bad('the operation is not an object');
  const d = Object.getOwnPropertyDescriptor(value, 'op');
  const op: unknown = d !== undefined && 'value' in d ? d.value : undefined;
  if (typeof op !== 'string' || !Object.hasOwn(OPERATION_FIELDS, op)) {
    bad(typeof op === 'string' ? `unknown operation ${shown(op)}` : 'the operation has no op');
  }
  const spec = OPERATION_FIELDS[op as OperationName];
  const required = Object.keys(spec.required);
  const optional = Object.keys(spec.optional);
  const f = readFields(value, ['op', ...required], optional, bad, op as string);
  const out: Record<string, unknown> = { op };
  for (const k of required) out[k] = readField(spec.required[k] as FieldKind, f[k], bad, `${op as string}.${k}`);
  for (const k of optional) if (Object.hasOwn(f, k)) out[k] = readField(spec.optional[k] as FieldKind, f[k], bad, `${op as string}.${k}`);
  return Object.freeze(out) as unknown as Operation;
}

/**
 * An operation checked strictly and copied (frozen): a known `op`, exactly its required fields,
 * at most its optional ones, each of its type and in its canonical spelling (EUI-64s in
 * upper-case hex, hashes in upper-case hex, ids in their alphabets, counts in range, operator
 * public keys on P-256). Object keys may come in any order.
 * @throws SmkiError `ERR_INVALID_ARGUMENT` (detail: the field)
 */
export function parseOperation(value: unknown): Operation {
  const bad = refuser('ERR_INVALID_ARGUMENT', 'not an operation');
  return guarded(bad, () => readOperation(value, bad));
}

/**
 * The hash that names an operation: SHA-256 (upper-case hex) of `smki-keystore operation v1\n`
 * followed by the {@link canonicalJson} of the operation, after {@link parseOperation}'s checks.
 * Two spellings of the same object (key order) have the same hash.
 * @throws SmkiError `ERR_INVALID_ARGUMENT`
 */
export function operationHash(operation: unknown): string {
  return hashOf(parseOperation(operation));
}

function hashOf(op: Operation): string {
  return sha256Hex(OPERATION_DOMAIN + canonicalJson(op));
}

// ---------------------------------------------------------------------------------------------
// Device lists

/** The count and digest of a device list, as `device.move` carries them. */
export interface ListDigest {
  /** How many entries. */
  readonly count: number;
  /** The digest, upper-case hex. */
  readonly listSha256: string;
}

/**
 * The count and digest of a set of devices (the `count` and `listSha256` of `device.move`):
 * SHA-256 of `smki-keystore device list v1\n` and then, for each device in ascending order of
 * its canonical EUI-64, the EUI-64 and `\n`. Any accepted spelling of an EUI-64; the order given
 * does not matter; a device twice is refused.
 * @throws SmkiError `ERR_EUI64_INVALID`, `ERR_INVALID_ARGUMENT` (not an array, none, more than
 *   {@link MAX_DEVICE_LIST}, a device twice)
 */
export function deviceListDigest(devices: readonly string[]): ListDigest {
  const bad = refuser('ERR_INVALID_ARGUMENT', 'not a device list');
  const items = guarded(bad, () => readArray(devices, MAX_DEVICE_LIST, bad, 'devices'));
  if (items.length === 0) bad('devices is empty');
  const euis = items.map((d) => parseEui64(d as string) as string).sort();
  for (let i = 1; i < euis.length; i++) if (euis[i] === euis[i - 1]) bad(`device ${euis[i] as string} is listed twice`);
  const h = createHash('sha256').update(DEVICE_LIST_DOMAIN, 'utf8');
  for (const e of euis) h.update(`${e}\n`, 'utf8');
  return Object.freeze({ count: euis.length, listSha256: h.digest('hex').toUpperCase() });
}

/**
 * The count and digest of a list of assignments (the `count` and `listSha256` of
 * `device.assign`): SHA-256 of `smki-keystore assignment list v1\n` and then, for each assignment
 * in ascending order of its canonical EUI-64, the EUI-64, a space, the portfolio id and `\n`.
 * Any accepted spelling of an EUI-64; the order given does not matter; a device twice is refused.
 * @throws SmkiError `ERR_EUI64_INVALID`, `ERR_INVALID_ARGUMENT` (not an array of
 *   `{ device, portfolioId }`, none, more than {@link MAX_DEVICE_LIST}, a device twice)
 */
export function assignmentListDigest(assignments: readonly { readonly device: string; readonly portfolioId: string }[]): ListDigest {
  const bad = refuser('ERR_INVALID_ARGUMENT', 'not an assignment list');
  const lines = guarded(bad, () => {
    const items = readArray(assignments, MAX_DEVICE_LIST, bad, 'assignments');
    if (items.length === 0) bad('assignments is empty');
    return items.map((a, i) => {
      const f = readFields(a, ['device', 'portfolioId'], [], bad, `assignments[${i}]`);
      return { device: parseEui64(f['device'] as string) as string, portfolioId: readString(f['portfolioId'], PORTFOLIO_ID, bad, `assignments[${i}].portfolioId`, 'a portfolio id') };
    });
  });
  lines.sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : 0));
  for (let i = 1; i < lines.length; i++) if (lines[i]?.device === lines[i - 1]?.device) bad(`device ${lines[i]?.device as string} is assigned twice`);
  const h = createHash('sha256').update(ASSIGNMENT_LIST_DOMAIN, 'utf8');
  for (const l of lines) h.update(`${l.device} ${l.portfolioId}\n`, 'utf8');
  return Object.freeze({ count: lines.length, listSha256: h.digest('hex').toUpperCase() });
}

/** One message a bound signing session may sign: the meter, and the SHA-256 of the exact bytes. */
export interface MessageToSign {
  /** The meter's EUI-64 (any accepted spelling). */
  readonly device: string;
  /** SHA-256 of the bytes to be signed, 64 hex digits (either case). */
  readonly sha256: string;
}

/**
 * The count and digest of the messages a bound signing session may sign (the `count` and
 * `messagesSha256` of `session.sign`): SHA-256 of `smki-keystore message list v1\n` and then, for
 * each message in ascending order of its canonical EUI-64 and then its hash, the EUI-64, a space,
 * the upper-case SHA-256 and `\n`. The order given does not matter; a message twice is refused.
 * @throws SmkiError `ERR_EUI64_INVALID`, `ERR_INVALID_ARGUMENT` (not an array of
 *   `{ device, sha256 }`, none, more than {@link MAX_DEVICE_LIST}, a message twice)
 * @example
 * ```ts
 * import { createHash } from 'node:crypto';
 * import { messageListDigest } from '@smki/keystore';
 * const command = new Uint8Array([0xdf, 0x09]);
 * const d = messageListDigest([{ device: '00DB1234567890A0', sha256: createHash('sha256').update(command).digest('hex') }]);
 * console.log(d.count, d.listSha256.length); // 1 64
 * ```
 */
export function messageListDigest(messages: readonly MessageToSign[]): ListDigest {
  const bad = refuser('ERR_INVALID_ARGUMENT', 'not a message list');
  const lines = guarded(bad, () => {
    const items = readArray(messages, MAX_DEVICE_LIST, bad, 'messages');
    if (items.length === 0) bad('messages is empty');
    return items.map((m, i) => {
      const f = readFields(m, ['device', 'sha256'], [], bad, `messages[${i}]`);
      const sha = typeof f['sha256'] === 'string' ? f['sha256'].toUpperCase() : f['sha256'];
      return `${parseEui64(f['device'] as string) as string} ${readString(sha, SHA256, bad, `messages[${i}].sha256`, 'a SHA-256 in hex')}`;
    });
  });
  lines.sort();
  for (let i = 1; i < lines.length; i++) if (lines[i] === lines[i - 1]) bad(`message ${lines[i] as string} is listed twice`);
  const h = createHash('sha256').update(MESSAGE_LIST_DOMAIN, 'utf8');
  for (const l of lines) h.update(`${l}\n`, 'utf8');
  return Object.freeze({ count: lines.length, listSha256: h.digest('hex').toUpperCase() });
}

// ---------------------------------------------------------------------------------------------
// Authorisation

/**
 * Where an operation acts: an organisation and the portfolios it touches (none: the organisation
 * as a whole), or `'*'` and no portfolio: the whole store. The store computes it from its state
 * (a key's portfolio; both portfolios of a move; the portfolios of an assignment list; for
 * `operator.remove`, {@link grantScopes} of the operator removed).
 */
export interface AccessScope {
  /** The organisation (canonical EUI-64), or `'*'` for the whole store. */
  readonly organisation: Eui64 | '*';
  /** The portfolios, distinct; none for the organisation as a whole. */
  readonly portfolioIds: readonly string[];
}

/**
 * The scopes of a list of grants, one each: what an operator who may manage an operator of these
 * grants must hold (the scope of `operator.remove`).
 * @throws SmkiError `ERR_INVALID_ARGUMENT`
 */
export function grantScopes(grants: readonly OperatorGrant[]): readonly AccessScope[] {
  const bad = refuser('ERR_INVALID_ARGUMENT', 'not a list of grants');
  return guarded(bad, () => Object.freeze(readGrants(grants, bad, 'grants').map(scopeOfGrant)));
}

function scopeOfGrant(g: OperatorGrant): AccessScope {
  return Object.freeze({ organisation: g.organisation, portfolioIds: Object.freeze(g.portfolioId === undefined ? [] : [g.portfolioId]) });
}

function readScope(value: unknown, bad: Bad, what: string): AccessScope {
  const f = readFields(value, ['organisation', 'portfolioIds'], [], bad, what);
  const organisation = readField('eui64OrAll', f['organisation'], bad, `${what}.organisation`) as Eui64 | '*';
  const items = readArray(f['portfolioIds'], MAX_SCOPE_PORTFOLIOS, bad, `${what}.portfolioIds`);
  const portfolioIds = items.map((p, i) => readString(p, PORTFOLIO_ID, bad, `${what}.portfolioIds[${i}]`, 'a portfolio id'));
  if (new Set(portfolioIds).size !== portfolioIds.length) bad(`${what}.portfolioIds names a portfolio twice`);
  if (organisation === '*' && portfolioIds.length > 0) bad(`${what} names portfolios of every organisation`);
  return Object.freeze({ organisation, portfolioIds: Object.freeze(portfolioIds) });
}

/** The scopes an operation names itself, which every check adds to the store's. */
function intrinsicScopes(op: Operation): AccessScope[] {
  const s = (organisation: Eui64 | '*', portfolioIds: readonly string[] = []): AccessScope => ({ organisation, portfolioIds });
  switch (op.op) {
    case 'organisation.add':
      return [s(op.entityId)];
    case 'portfolio.create':
    case 'session.audit':
      return [s(op.organisation)];
    case 'key.generate':
      return [s(op.organisation, [op.portfolioId])];
    case 'device.move':
      return [s(op.organisation, [op.toPortfolioId])];
    case 'session.sign':
      return [s(op.organisation, op.portfolioIds)];
    case 'operator.add':
      // No escalation: whoever adds an operator holds administrator over every grant it gives.
      return op.grants.map(scopeOfGrant);
    case 'policy.set':
      return [s('*')];
    default:
      return [];
  }
}

function operationOrganisation(op: Operation): Eui64 | '*' | undefined {
  if (op.op === 'organisation.add') return op.entityId;
  return 'organisation' in op ? op.organisation : undefined;
}

/**
 * The scopes to check for `op`: the store's `scope` (one or a list, checked) and the operation's
 * own. A scope of another organisation than the operation names, or nothing to check at all, is
 * the caller's error (fail closed).
 */
function scopesFor(op: Operation, scope: unknown): AccessScope[] {
  const bad = refuser('ERR_INVALID_ARGUMENT', 'not an access scope');
  const given = guarded(bad, () => {
    if (Array.isArray(scope)) return readArray(scope, MAX_SCOPES, bad, 'scope').map((s, i) => readScope(s, bad, `scope[${i}]`));
    return [readScope(scope, bad, 'scope')];
  });
  const org = operationOrganisation(op);
  if (org !== undefined) {
    for (const s of given) if (s.organisation !== org) bad(`the scope names ${s.organisation}, the operation ${org}`);
  }
  const all = [...given, ...intrinsicScopes(op)];
  if (all.length === 0) bad(`nothing to authorise ${op.op} against`);
  return all;
}

/** The first part of `scopes` that `grants` do not give `role` for, or undefined when they give all. */
function missing(grants: readonly OperatorGrant[], role: OperatorRole, scopes: readonly AccessScope[]): string | undefined {
  for (const s of scopes) {
    if (s.portfolioIds.length === 0) {
      if (!permits(grants, role, s.organisation)) return `${role} of ${s.organisation === '*' ? 'the whole store' : s.organisation}`;
      continue;
    }
    for (const p of s.portfolioIds) if (!permits(grants, role, s.organisation, p)) return `${role} of ${s.organisation}/${p}`;
  }
  return undefined;
}

/**
 * Refuse unless `operator` holds the role that performs `operation` ({@link OPERATION_ROLE}) for
 * the organisation and every portfolio of `scope`, and of the scope the operation names itself:
 * the portfolio of `key.generate`, the destination of `device.move`, the portfolios of
 * `session.sign`, the organisation of `organisation.add`, `portfolio.create` and `session.audit`
 * (as a whole: a portfolio's grant is not enough), the whole store for `policy.set`, and for
 * `operator.add` every grant the new operator gets (no one grants more than they administer).
 * Roles do not include one another.
 *
 * `scope` is one {@link AccessScope} or a list of them, all required; it must name the operation's
 * organisation where the operation names one.
 * @throws SmkiError `ERR_OPERATOR_FORBIDDEN` (detail: the role and scope lacking),
 *   `ERR_INVALID_ARGUMENT` (a malformed operator, operation or scope; a scope of another
 *   organisation; no scope at all for an operation that names none)
 * @see docs/keystore-estate.md §2
 */
export function authorise(operator: OperatorInfo, operation: Operation, scope: AccessScope | readonly AccessScope[]): void {
  const info = parseOperatorInfo(operator);
  const op = parseOperation(operation);
  const scopes = scopesFor(op, scope);
  const lacking = missing(info.grants, OPERATION_ROLE[op.op], scopes);
  if (lacking !== undefined) fail('ERR_OPERATOR_FORBIDDEN', `operator ${info.operatorId} may not ${op.op}: it lacks ${lacking}`, `${info.operatorId} lacks ${lacking}`);
}

// ---------------------------------------------------------------------------------------------
// Signed operator requests

/**
 * A state-changing call as its operator signed it. JSON-ready: the store receives it as parsed
 * JSON and gives it to {@link verifyOperatorRequest}.
 */
export interface OperatorRequest {
  /** Format version. */
  readonly v: 1;
  /** The store it is for (a request for another store is refused). */
  readonly storeId: string;
  /** The operator. */
  readonly operatorId: string;
  /** Decimal, 1 to 2^63 − 1, no leading zero; above the last one the store accepted from this operator. */
  readonly counter: string;
  /** When it was made: ISO 8601 UTC with milliseconds (`2025-01-31T12:00:00.000Z`). */
  readonly issuedAt: string;
  /** The exact operation. */
  readonly operation: Operation;
  /** ECDSA P-256/SHA-256 `r ‖ s` (128 upper-case hex digits) over the other fields, as the module comment says. */
  readonly signature: string;
}

/** What {@link createOperatorRequest} signs. */
export interface OperatorRequestFields {
  /** The store it is for. */
  readonly storeId: string;
  /** The operator. */
  readonly operatorId: string;
  /** The operator's next counter, 1 to 2^63 − 1. */
  readonly counter: bigint;
  /** When it is made. */
  readonly issuedAt: Date;
  /** The operation. */
  readonly operation: Operation;
}

/** Options of {@link verifyOperatorRequest}. */
export interface VerifyOperatorRequestOptions {
  /** This store's id. */
  readonly storeId: string;
  /** The operator of an id, or undefined when there is none. Only own entries: never a plain object's inherited property. */
  readonly lookup: (operatorId: string) => OperatorInfo | undefined;
  /**
   * The last counter the store accepted from the request's operator (undefined: none yet), or a
   * function that gives it for an operator id.
   */
  readonly lastCounter: bigint | undefined | ((operatorId: string) => bigint | undefined);
  /** The store's clock. */
  readonly now: Date;
  /** Oldest accepted `issuedAt`, in ms before `now` (default {@link DEFAULT_REQUEST_MAX_AGE_MS}; at most {@link MAX_REQUEST_WINDOW_MS}). */
  readonly maxAgeMs?: number;
  /** Furthest accepted `issuedAt`, in ms after `now` (default {@link DEFAULT_REQUEST_MAX_FUTURE_MS}; at most {@link MAX_REQUEST_WINDOW_MS}). */
  readonly maxFutureMs?: number;
}

/** A verified operator request: what the store may now authorise and execute. */
export interface VerifiedOperatorRequest {
  /** The operator, whose key verified the signature. */
  readonly operatorId: string;
  /** Its counter: the store records it as the operator's last. */
  readonly counter: bigint;
  /** When it was made (ISO). */
  readonly issuedAt: string;
  /** The operation, checked and frozen. */
  readonly operation: Operation;
  /** {@link operationHash} of the operation. */
  readonly operationHash: string;
}

interface RequestBody {
  readonly v: 1;
  readonly storeId: string;
  readonly operatorId: string;
  readonly counter: string;
  readonly issuedAt: string;
  readonly operation: Operation;
}

function requestMessage(body: RequestBody): Uint8Array {
  return utf8(REQUEST_DOMAIN + canonicalJson(body));
}

function readStoreId(v: unknown, bad: Bad, what: string): string {
  return readString(v, STORE_ID, bad, what, 'a store id (1 to 128 of A-Z a-z 0-9 . _ : @ -)');
}

function counterOf(c: unknown, bad: Bad, what: string): bigint {
  if (typeof c !== 'bigint' || c < 1n || c > MAX_OPERATOR_COUNTER) bad(`${what} is not a bigint from 1 to 2^63 - 1`);
  return c as bigint;
}

function checkSigner(signer: unknown): Signer {
  const ok =
    typeof signer === 'object' &&
    signer !== null &&
    (signer as Signer).publicKey instanceof Uint8Array &&
    isP256Point((signer as Signer).publicKey) &&
    typeof (signer as Signer).sign === 'function';
  if (!ok) fail('ERR_INVALID_ARGUMENT', 'not a Signer with a P-256 public key', 'signer');
  return signer as Signer;
}

/** Sign `message`, and check that the signature is 64 bytes and verifies under the signer's own key. */
async function signChecked(signer: Signer, message: Uint8Array, code: SmkiErrorCode): Promise<string> {
  const publicKey = new Uint8Array(signer.publicKey);
  const sig: unknown = await signer.sign(message);
  // verifyP1363 is false for anything but 64 bytes r ‖ s that verify.
  if (!(sig instanceof Uint8Array) || !verifyP1363(publicKeyFromRaw(publicKey), message, sig)) {
    fail(code, 'the signer returned a signature that does not verify under its public key', 'signer');
  }
  return toHex(sig as Uint8Array);
}

/**
 * Make a signed operator request: the operator's signature, by `signer`, over the request's
 * fields (the operation checked as {@link parseOperation} checks it). The signer's key must be
 * the one the store holds for `operatorId` for the request to verify.
 * @throws SmkiError `ERR_INVALID_ARGUMENT` (a field out of range, a malformed operation, not a
 *   signer), `ERR_OPERATOR_SIGNATURE_INVALID` (the signer returned a signature that does not
 *   verify under its own public key)
 * @see docs/keystore-estate.md §2
 */
export async function createOperatorRequest(signer: Signer, fields: OperatorRequestFields): Promise<OperatorRequest> {
  const bad = refuser('ERR_INVALID_ARGUMENT', 'cannot make an operator request');
  const s = checkSigner(signer);
  const body: RequestBody = guarded(bad, () => {
    const f = readFields(fields, ['storeId', 'operatorId', 'counter', 'issuedAt', 'operation'], [], bad, 'fields');
    return Object.freeze({
      v: 1 as const,
      storeId: readStoreId(f['storeId'], bad, 'storeId'),
      operatorId: readString(f['operatorId'], OPERATOR_ID, bad, 'operatorId', 'an operator id'),
      counter: counterOf(f['counter'], bad, 'counter').toString(),
      issuedAt: timeOf(f['issuedAt'], bad, 'issuedAt'),
      operation: parseOperation(f['operation']),
    });
  });
  const signature = await signChecked(s, requestMessage(body), 'ERR_OPERATOR_SIGNATURE_INVALID');
  return Object.freeze({ ...body, signature });
}

function windowOption(v: unknown, fallback: number, name: string): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > MAX_REQUEST_WINDOW_MS) {
    fail('ERR_INVALID_ARGUMENT', `${name} is not an integer from 0 to ${MAX_REQUEST_WINDOW_MS}`, name);
  }
  return v as number;
}

/** The operator of `id` from the store's lookup: undefined, or a record checked as {@link parseOperatorInfo} checks it, of that id. */
function lookUp(lookup: (id: string) => OperatorInfo | undefined, id: string): OperatorInfo | undefined {
  const found = lookup(id);
  if (found === undefined) return undefined;
  const info = parseOperatorInfo(found);
  if (info.operatorId !== id) fail('ERR_INVALID_ARGUMENT', `the lookup of operator ${shown(id)} returned another operator`, 'lookup');
  return info;
}

/**
 * Verify a signed operator request (parsed JSON from outside) and return what it asks. The checks,
 * in this order, each with its code:
 *
 * 1. none given (undefined or null): `ERR_OPERATOR_REQUIRED`;
 * 2. shape and size: exactly the fields of {@link OperatorRequest}, each in its one spelling, the
 *    operation as {@link parseOperation} checks it, and `storeId` this store's: else
 *    `ERR_OPERATOR_SIGNATURE_INVALID`;
 * 3. the operator is known (`lookup`): else `ERR_OPERATOR_UNKNOWN`;
 * 4. the signature verifies under that operator's key: else `ERR_OPERATOR_SIGNATURE_INVALID`;
 * 5. `issuedAt` is within [`now` − `maxAgeMs`, `now` + `maxFutureMs`], both ends included: else
 *    `ERR_OPERATOR_REQUEST_STALE`;
 * 6. the counter is strictly above the last one accepted from this operator: else `ERR_OPERATOR_REPLAYED`.
 *
 * Security: this authenticates the request only. The store then calls {@link authorise} with the
 * operation's scope, checks the policy ({@link requiredApprovals}), and records the counter in
 * the same transaction as the change, so that a counter is accepted once.
 * @throws SmkiError `ERR_OPERATOR_REQUIRED`, `ERR_OPERATOR_SIGNATURE_INVALID`,
 *   `ERR_OPERATOR_UNKNOWN`, `ERR_OPERATOR_REQUEST_STALE`, `ERR_OPERATOR_REPLAYED`,
 *   `ERR_INVALID_ARGUMENT` (bad options; `lookup` returned a malformed record or another operator's)
 * @see docs/keystore-estate.md §2
 */
export function verifyOperatorRequest(value: unknown, options: VerifyOperatorRequestOptions): VerifiedOperatorRequest {
  const o = readFields(options, ['storeId', 'lookup', 'lastCounter', 'now'], ['maxAgeMs', 'maxFutureMs'], refuser('ERR_INVALID_ARGUMENT', 'bad options'), 'options');
  const storeId = readStoreId(o['storeId'], refuser('ERR_INVALID_ARGUMENT', 'bad options'), 'options.storeId');
  const lookup = o['lookup'];
  if (typeof lookup !== 'function') fail('ERR_INVALID_ARGUMENT', 'options.lookup is not a function', 'lookup');
  const last = o['lastCounter'];
  if (last !== undefined && typeof last !== 'function' && (typeof last !== 'bigint' || last < 0n || last > MAX_OPERATOR_COUNTER)) {
    fail('ERR_INVALID_ARGUMENT', 'options.lastCounter is not a counter, a function or undefined', 'lastCounter');
  }
  const now = readNow(o['now']);
  const maxAge = windowOption(o['maxAgeMs'], DEFAULT_REQUEST_MAX_AGE_MS, 'maxAgeMs');
  const maxFuture = windowOption(o['maxFutureMs'], DEFAULT_REQUEST_MAX_FUTURE_MS, 'maxFutureMs');

  if (value === undefined || value === null) fail('ERR_OPERATOR_REQUIRED', 'the store is under access control: the call needs a signed operator request');

  // 2. shape and size
  const bad = refuser('ERR_OPERATOR_SIGNATURE_INVALID', 'malformed operator request');
  const { body, signature, issuedMs, counter } = guarded(bad, () => {
    const f = readFields(value, ['v', 'storeId', 'operatorId', 'counter', 'issuedAt', 'operation', 'signature'], [], bad, 'request');
    if (f['v'] !== 1) bad('request.v is not 1');
    const sid = readStoreId(f['storeId'], bad, 'request.storeId');
    if (sid !== storeId) bad(`request.storeId is another store's (${shown(sid)})`);
    const operatorId = readString(f['operatorId'], OPERATOR_ID, bad, 'request.operatorId', 'an operator id');
    const c = readString(f['counter'], COUNTER, bad, 'request.counter', 'a decimal counter without leading zeros');
    const counterValue = BigInt(c);
    if (counterValue > MAX_OPERATOR_COUNTER) bad('request.counter is above 2^63 - 1');
    const issuedAt = f['issuedAt'] as string;
    const t = readTime(issuedAt, bad, 'request.issuedAt');
    const operation = readOperation(f['operation'], bad);
    const sig = readString(f['signature'], SIGNATURE_HEX, bad, 'request.signature', '64 bytes r||s in upper-case hex');
    const b: RequestBody = Object.freeze({ v: 1 as const, storeId: sid, operatorId, counter: c, issuedAt, operation });
    return { body: b, signature: sig, issuedMs: t, counter: counterValue };
  });
  // The fields' bounds keep the signed text far below MAX_CANONICAL_JSON_BYTES (the largest,
  // session.sign with 256 portfolio ids, is under 18 KiB), so this cannot throw.
  const message = requestMessage(body);

  // 3. the operator
  const info = lookUp(lookup as (id: string) => OperatorInfo | undefined, body.operatorId);
  if (info === undefined) fail('ERR_OPERATOR_UNKNOWN', `no operator ${shown(body.operatorId)} in the store`, body.operatorId);

  // 4. the signature
  if (!verifyP1363(publicKeyFromRaw((info as OperatorInfo).publicKey), message, fromHex(signature))) {
    fail('ERR_OPERATOR_SIGNATURE_INVALID', `the request's signature does not verify under operator ${body.operatorId}'s key`, body.operatorId);
  }

  // 5. the time window
  if (issuedMs < now - maxAge) fail('ERR_OPERATOR_REQUEST_STALE', `the request was issued more than ${maxAge} ms ago`, `past: ${body.issuedAt}`);
  if (issuedMs > now + maxFuture) fail('ERR_OPERATOR_REQUEST_STALE', `the request was issued more than ${maxFuture} ms ahead of the clock`, `future: ${body.issuedAt}`);

  // 6. the counter
  const lastCounter = typeof last === 'function' ? (last as (id: string) => unknown)(body.operatorId) : last;
  if (lastCounter !== undefined && (typeof lastCounter !== 'bigint' || lastCounter < 0n || lastCounter > MAX_OPERATOR_COUNTER)) {
    fail('ERR_INVALID_ARGUMENT', 'options.lastCounter gave something that is not a counter', 'lastCounter');
  }
  if (lastCounter !== undefined && counter <= (lastCounter as bigint)) {
    fail('ERR_OPERATOR_REPLAYED', `counter ${counter} is not above ${lastCounter as bigint}, the last accepted from operator ${body.operatorId}`, `${counter} <= ${lastCounter as bigint}`);
  }

  return Object.freeze({ operatorId: body.operatorId, counter, issuedAt: body.issuedAt, operation: body.operation, operationHash: hashOf(body.operation) });
}

// ---------------------------------------------------------------------------------------------
// Policy

/** One rule of an access policy: an operation that needs approvals. */
export interface AccessRule {
  /** The operation. */
  readonly operation: OperationName;
  /** How many approvals by distinct operators other than the proposer (1 to {@link MAX_REQUIRED_APPROVALS}). */
  readonly approvals: number;
  /**
   * Only for `device.assign` and `device.move`: the rule applies when the operation's `count` is
   * at least this. Absent: it always applies.
   */
  readonly minDevices?: number;
}

/**
 * The dual-control policy: which operations need how many approvals (M of N). An operation no
 * rule names needs none; where several apply, the highest count wins.
 * @see docs/keystore-estate.md §2
 */
export interface AccessPolicy {
  /** Format version. */
  readonly v: 1;
  /** The rules (at most {@link MAX_POLICY_RULES}; no two for the same operation and `minDevices`). */
  readonly rules: readonly AccessRule[];
}

/**
 * The access policy a store starts with: one approval for `operator.add`, `operator.remove`,
 * `policy.set`, `key.generate` and `key.revoke`, and for `device.assign` and `device.move` of
 * 1000 devices or more.
 */
export const DEFAULT_ACCESS_POLICY: AccessPolicy = Object.freeze({
  v: 1,
  rules: Object.freeze([
    rule('operator.add', 1),
    rule('operator.remove', 1),
    rule('policy.set', 1),
    rule('key.generate', 1),
    rule('key.revoke', 1),
    rule('device.assign', 1, 1000),
    rule('device.move', 1, 1000),
  ]),
});

function rule(operation: OperationName, approvals: number, minDevices?: number): AccessRule {
  return Object.freeze(minDevices === undefined ? { operation, approvals } : { operation, approvals, minDevices });
}

/**
 * An access policy checked and copied (frozen). Any defect refuses the whole policy: not an
 * object, `v` not 1, a field it does not have, more than {@link MAX_POLICY_RULES} rules, a rule
 * with another field, an unknown operation, approvals not an integer from 1 to
 * {@link MAX_REQUIRED_APPROVALS}, `minDevices` on an operation other than `device.assign` and
 * `device.move` or not an integer from 1 to {@link MAX_DEVICE_LIST}, two rules for the same
 * operation and `minDevices`.
 * @throws SmkiError `ERR_ACCESS_POLICY_INVALID` (detail: the defect)
 * @see docs/keystore-estate.md §2
 */
export function parseAccessPolicy(value: unknown): AccessPolicy {
  const bad = refuser('ERR_ACCESS_POLICY_INVALID', 'invalid access policy');
  return guarded(bad, () => {
    const f = readFields(value, ['v', 'rules'], [], bad, 'policy');
    if (f['v'] !== 1) bad('policy.v is not 1');
    const items = readArray(f['rules'], MAX_POLICY_RULES, bad, 'policy.rules');
    const seen = new Set<string>();
    const rules = items.map((item, i) => {
      const what = `policy.rules[${i}]`;
      const r = readFields(item, ['operation', 'approvals'], ['minDevices'], bad, what);
      const operation = r['operation'];
      if (typeof operation !== 'string' || !Object.hasOwn(OPERATION_ROLE, operation)) bad(`${what}.operation is not an operation`);
      const approvals = r['approvals'];
      if (typeof approvals !== 'number' || !Number.isSafeInteger(approvals) || approvals < 1 || approvals > MAX_REQUIRED_APPROVALS) {
        bad(`${what}.approvals is not an integer from 1 to ${MAX_REQUIRED_APPROVALS}`);
      }
      const rule: { operation: OperationName; approvals: number; minDevices?: number } = { operation: operation as OperationName, approvals: approvals as number };
      if (Object.hasOwn(r, 'minDevices')) {
        if (operation !== 'device.assign' && operation !== 'device.move') bad(`${what}.minDevices is only for device.assign and device.move`);
        const m = r['minDevices'];
        if (typeof m !== 'number' || !Number.isSafeInteger(m) || m < 1 || m > MAX_DEVICE_LIST) bad(`${what}.minDevices is not an integer from 1 to ${MAX_DEVICE_LIST}`);
        rule.minDevices = m as number;
      }
      const key = `${rule.operation}/${rule.minDevices ?? ''}`;
      if (seen.has(key)) bad(`${what} repeats the rule for ${rule.operation}${rule.minDevices === undefined ? '' : ` from ${rule.minDevices} devices`}`);
      seen.add(key);
      return Object.freeze(rule);
    });
    return Object.freeze({ v: 1 as const, rules: Object.freeze(rules) });
  });
}

/**
 * The hash that names a policy (the `policySha256` of `policy.set`): SHA-256 (upper-case hex) of
 * `smki-keystore access policy v1\n` and the policy's {@link canonicalJson}. Rules are in the
 * policy's order (their order does not change what the policy requires, but it is what was written).
 * @throws SmkiError `ERR_ACCESS_POLICY_INVALID`
 */
export function policyHash(policy: AccessPolicy): string {
  return sha256Hex(POLICY_DOMAIN + canonicalJson(parseAccessPolicy(policy)));
}

/**
 * How many approvals `operation` needs under `policy`: the highest `approvals` of the rules that
 * apply to it (a rule with `minDevices` applies when `count` is at least that), 0 when none does.
 * @throws SmkiError `ERR_ACCESS_POLICY_INVALID`, `ERR_INVALID_ARGUMENT` (a malformed operation)
 * @see docs/keystore-estate.md §2
 */
export function requiredApprovals(policy: AccessPolicy, operation: Operation): number {
  const p = parseAccessPolicy(policy);
  const op = parseOperation(operation);
  return requiredOf(p, op);
}

function requiredOf(p: AccessPolicy, op: Operation): number {
  let n = 0;
  for (const r of p.rules) {
    if (r.operation !== op.op) continue;
    if (r.minDevices !== undefined && (!('count' in op) || op.count < r.minDevices)) continue;
    if (r.approvals > n) n = r.approvals;
  }
  return n;
}

/**
 * Refuse an operation that the policy says needs approvals: the store calls this before it
 * executes an operation directly (not through a proposal).
 * @throws SmkiError `ERR_APPROVAL_REQUIRED` (detail: how many), `ERR_ACCESS_POLICY_INVALID`, `ERR_INVALID_ARGUMENT`
 */
export function assertNoApprovalsRequired(policy: AccessPolicy, operation: Operation): void {
  const n = requiredApprovals(policy, operation);
  if (n > 0) fail('ERR_APPROVAL_REQUIRED', `${operation.op} needs ${n} approval${n === 1 ? '' : 's'} under the access policy: propose it`, String(n));
}

// ---------------------------------------------------------------------------------------------
// Proposals and approvals

/** An operation waiting for approvals. The store keeps it until it is executed, withdrawn or expired. */
export interface Proposal {
  /** 32 lower-case hex digits (128 random bits). */
  readonly proposalId: string;
  /** The store it is for. */
  readonly storeId: string;
  /** The operator who proposed it (never counts as an approver). */
  readonly proposer: string;
  /** The exact operation. */
  readonly operation: Operation;
  /** {@link operationHash} of the operation. */
  readonly operationHash: string;
  /** When it was proposed (ISO 8601 UTC with milliseconds). */
  readonly createdAt: string;
  /** When it expires (the same spelling): at this instant it is no longer usable. */
  readonly expiresAt: string;
}

/** What {@link createProposal} takes. */
export interface ProposalFields {
  /** The store. */
  readonly storeId: string;
  /** The proposer's operator id. */
  readonly proposer: string;
  /** The operation. */
  readonly operation: Operation;
  /** Now. */
  readonly createdAt: Date;
  /** When it expires: after `createdAt`, at most {@link MAX_PROPOSAL_LIFETIME_MS} later. */
  readonly expiresAt: Date;
  /** The id (32 lower-case hex digits); default 16 random bytes. For deterministic tests. */
  readonly proposalId?: string;
}

function readProposal(value: unknown, bad: Bad): Proposal {
  const f = readFields(value, ['proposalId', 'storeId', 'proposer', 'operation', 'operationHash', 'createdAt', 'expiresAt'], [], bad, 'proposal');
  const proposalId = readString(f['proposalId'], PROPOSAL_ID, bad, 'proposal.proposalId', '32 lower-case hex digits');
  const storeId = readStoreId(f['storeId'], bad, 'proposal.storeId');
  const proposer = readString(f['proposer'], OPERATOR_ID, bad, 'proposal.proposer', 'an operator id');
  const operation = readOperation(f['operation'], bad);
  const hash = readString(f['operationHash'], SHA256, bad, 'proposal.operationHash', 'a SHA-256 (64 upper-case hex digits)');
  const created = readTime(f['createdAt'], bad, 'proposal.createdAt');
  const expires = readTime(f['expiresAt'], bad, 'proposal.expiresAt');
  if (expires <= created || expires - created > MAX_PROPOSAL_LIFETIME_MS) bad(`proposal.expiresAt is not after createdAt by at most ${MAX_PROPOSAL_LIFETIME_MS} ms`);
  if (hashOf(operation) !== hash) fail('ERR_OPERATION_MISMATCH', "the proposal's operation hash is not the hash of its operation", proposalId);
  return Object.freeze({ proposalId, storeId, proposer, operation, operationHash: hash, createdAt: f['createdAt'] as string, expiresAt: f['expiresAt'] as string });
}

/**
 * A proposal record checked and copied (frozen): every field in its spelling, `expiresAt` after
 * `createdAt` by at most {@link MAX_PROPOSAL_LIFETIME_MS}, and `operationHash` the hash of `operation`.
 * @throws SmkiError `ERR_INVALID_ARGUMENT` (detail: the field), `ERR_OPERATION_MISMATCH` (the hash is not the operation's)
 */
export function parseProposal(value: unknown): Proposal {
  const bad = refuser('ERR_INVALID_ARGUMENT', 'not a proposal');
  return guarded(bad, () => readProposal(value, bad));
}

/**
 * A new proposal of `operation` by `proposer` (who must be authorised for it: the store calls
 * {@link authorise} first).
 * @throws SmkiError `ERR_INVALID_ARGUMENT`
 * @see docs/keystore-estate.md §2
 */
export function createProposal(fields: ProposalFields): Proposal {
  const bad = refuser('ERR_INVALID_ARGUMENT', 'cannot make a proposal');
  return guarded(bad, () => {
    const f = readFields(fields, ['storeId', 'proposer', 'operation', 'createdAt', 'expiresAt'], ['proposalId'], bad, 'fields');
    const operation = parseOperation(f['operation']);
    return readProposal(
      {
        proposalId: f['proposalId'] === undefined ? randomBytes(16).toString('hex') : f['proposalId'],
        storeId: f['storeId'],
        proposer: f['proposer'],
        operation,
        operationHash: hashOf(operation),
        createdAt: timeOf(f['createdAt'], bad, 'createdAt'),
        expiresAt: timeOf(f['expiresAt'], bad, 'expiresAt'),
      },
      bad,
    );
  });
}

/**
 * One operator's signed approval of one proposal. JSON-ready. The signature binds the store, the
 * proposal, the exact operation (its hash) and the approval's own expiry.
 */
export interface Approval {
  /** Format version. */
  readonly v: 1;
  /** The store. */
  readonly storeId: string;
  /** The proposal approved. */
  readonly proposalId: string;
  /** {@link operationHash} of the proposal's operation. */
  readonly operationHash: string;
  /** The approving operator. */
  readonly approverId: string;
  /** When the approval expires (ISO 8601 UTC with milliseconds). */
  readonly expiresAt: string;
  /** ECDSA P-256/SHA-256 `r ‖ s` (128 upper-case hex digits) over the other fields, as the module comment says. */
  readonly signature: string;
}

/** What {@link createApproval} signs. */
export interface ApprovalFields {
  /** The store. */
  readonly storeId: string;
  /** The proposal. */
  readonly proposalId: string;
  /** The proposal's operation hash (check it against the operation you were shown: {@link operationHash}). */
  readonly operationHash: string;
  /** The approving operator. */
  readonly approverId: string;
  /** When the approval expires. */
  readonly expiresAt: Date;
}

interface ApprovalBody {
  readonly v: 1;
  readonly storeId: string;
  readonly proposalId: string;
  readonly operationHash: string;
  readonly approverId: string;
  readonly expiresAt: string;
}

function approvalMessage(body: ApprovalBody): Uint8Array {
  return utf8(APPROVAL_DOMAIN + canonicalJson(body));
}

/**
 * Make a signed approval: the approver's signature, by `signer`, over the store id, proposal id,
 * operation hash, approver id and expiry.
 * @throws SmkiError `ERR_INVALID_ARGUMENT` (a field out of range, not a signer),
 *   `ERR_APPROVAL_INVALID` (the signer returned a signature that does not verify under its own public key)
 * @see docs/keystore-estate.md §2
 */
export async function createApproval(signer: Signer, fields: ApprovalFields): Promise<Approval> {
  const bad = refuser('ERR_INVALID_ARGUMENT', 'cannot make an approval');
  const s = checkSigner(signer);
  const body: ApprovalBody = guarded(bad, () => {
    const f = readFields(fields, ['storeId', 'proposalId', 'operationHash', 'approverId', 'expiresAt'], [], bad, 'fields');
    return Object.freeze({
      v: 1 as const,
      storeId: readStoreId(f['storeId'], bad, 'storeId'),
      proposalId: readString(f['proposalId'], PROPOSAL_ID, bad, 'proposalId', '32 lower-case hex digits'),
      operationHash: readString(f['operationHash'], SHA256, bad, 'operationHash', 'a SHA-256 (64 upper-case hex digits)'),
      approverId: readString(f['approverId'], OPERATOR_ID, bad, 'approverId', 'an operator id'),
      expiresAt: timeOf(f['expiresAt'], bad, 'expiresAt'),
    });
  });
  const signature = await signChecked(s, approvalMessage(body), 'ERR_APPROVAL_INVALID');
  return Object.freeze({ ...body, signature });
}

/** Options of {@link verifyApproval}. */
export interface VerifyApprovalOptions {
  /** The proposal, as the store holds it. */
  readonly proposal: Proposal;
  /** The operator of an id, or undefined. */
  readonly lookup: (operatorId: string) => OperatorInfo | undefined;
  /** The scope of the proposal's operation, as for {@link authorise}. */
  readonly scope: AccessScope | readonly AccessScope[];
  /** The store's clock. */
  readonly now: Date;
}

/** A verified approval. */
export interface VerifiedApproval {
  /** The approver. */
  readonly approverId: string;
  /** When the approval expires (ISO). */
  readonly expiresAt: string;
}

interface ApprovalContext {
  readonly proposal: Proposal;
  readonly lookup: (id: string) => OperatorInfo | undefined;
  readonly scopes: readonly AccessScope[];
  readonly now: number;
}

function approvalContext(options: unknown, extra: readonly string[]): { ctx: ApprovalContext; fields: Record<string, unknown> } {
  const badOption = refuser('ERR_INVALID_ARGUMENT', 'bad options');
  const o = guarded(badOption, () => readFields(options, ['proposal', 'lookup', 'scope', 'now', ...extra], [], badOption, 'options'));
  const proposal = parseProposal(o['proposal']);
  const lookup = o['lookup'];
  if (typeof lookup !== 'function') fail('ERR_INVALID_ARGUMENT', 'options.lookup is not a function', 'lookup');
  const now = readNow(o['now']);
  const scopes = scopesFor(proposal.operation, o['scope']);
  return { ctx: { proposal, lookup: lookup as (id: string) => OperatorInfo | undefined, scopes, now }, fields: o };
}

function checkProposalLive(ctx: ApprovalContext): void {
  if (ctx.now >= Date.parse(ctx.proposal.expiresAt)) fail('ERR_PROPOSAL_EXPIRED', `proposal ${ctx.proposal.proposalId} expired at ${ctx.proposal.expiresAt}`, ctx.proposal.proposalId);
}

function verifyOne(value: unknown, ctx: ApprovalContext): VerifiedApproval {
  const { proposal } = ctx;
  const bad = refuser('ERR_APPROVAL_INVALID', 'invalid approval');
  const { body, signature } = guarded(bad, () => {
    const f = readFields(value, ['v', 'storeId', 'proposalId', 'operationHash', 'approverId', 'expiresAt', 'signature'], [], bad, 'approval');
    if (f['v'] !== 1) bad('approval.v is not 1');
    const storeId = readStoreId(f['storeId'], bad, 'approval.storeId');
    const proposalId = readString(f['proposalId'], PROPOSAL_ID, bad, 'approval.proposalId', '32 lower-case hex digits');
    const hash = readString(f['operationHash'], SHA256, bad, 'approval.operationHash', 'a SHA-256 (64 upper-case hex digits)');
    const approverId = readString(f['approverId'], OPERATOR_ID, bad, 'approval.approverId', 'an operator id');
    readTime(f['expiresAt'], bad, 'approval.expiresAt');
    const sig = readString(f['signature'], SIGNATURE_HEX, bad, 'approval.signature', '64 bytes r||s in upper-case hex');
    if (storeId !== proposal.storeId) bad(`approval.storeId is another store's (${shown(storeId)})`);
    if (proposalId !== proposal.proposalId) bad(`approval.proposalId is another proposal's (${proposalId})`);
    if (hash !== proposal.operationHash) bad('approval.operationHash is not the proposal operation hash');
    const b: ApprovalBody = Object.freeze({ v: 1 as const, storeId, proposalId, operationHash: hash, approverId, expiresAt: f['expiresAt'] as string });
    return { body: b, signature: sig };
  });
  const info = lookUp(ctx.lookup, body.approverId);
  if (info === undefined) bad(`no operator ${shown(body.approverId)} in the store`);
  if (!verifyP1363(publicKeyFromRaw((info as OperatorInfo).publicKey), approvalMessage(body), fromHex(signature))) {
    bad(`the signature does not verify under operator ${body.approverId}'s key`);
  }
  if (body.approverId === proposal.proposer) {
    fail('ERR_APPROVAL_DUPLICATE', `operator ${body.approverId} proposed ${proposal.proposalId} and cannot approve it`, body.approverId);
  }
  const lacking = missing((info as OperatorInfo).grants, OPERATION_ROLE[proposal.operation.op], ctx.scopes);
  if (lacking !== undefined) bad(`operator ${body.approverId} may not approve ${proposal.operation.op}: it lacks ${lacking}`);
  if (ctx.now >= Date.parse(body.expiresAt)) fail('ERR_PROPOSAL_EXPIRED', `the approval by ${body.approverId} expired at ${body.expiresAt}`, body.approverId);
  return Object.freeze({ approverId: body.approverId, expiresAt: body.expiresAt });
}

/**
 * Verify one approval (parsed JSON from outside) of `proposal`. The checks, in this order:
 *
 * 1. the options (the proposal as {@link parseProposal} checks it, the scope as {@link authorise}
 *    checks it): `ERR_INVALID_ARGUMENT` or `ERR_OPERATION_MISMATCH`;
 * 2. the proposal has not expired at `now`: else `ERR_PROPOSAL_EXPIRED`;
 * 3. shape; the store, proposal id and operation hash are the proposal's; the approver is known;
 *    the signature verifies under the approver's key: else `ERR_APPROVAL_INVALID`;
 * 4. the approver is not the proposer: else `ERR_APPROVAL_DUPLICATE`;
 * 5. the approver holds the role that performs the operation ({@link OPERATION_ROLE}: so
 *    administrators approve organisation, portfolio, operator and policy changes, custodians key
 *    changes, device managers device changes) over its whole scope, as {@link authorise} decides
 *    for the proposer: else `ERR_APPROVAL_INVALID`;
 * 6. the approval has not expired at `now`: else `ERR_PROPOSAL_EXPIRED`.
 * @throws SmkiError `ERR_APPROVAL_INVALID`, `ERR_APPROVAL_DUPLICATE`, `ERR_PROPOSAL_EXPIRED`,
 *   `ERR_INVALID_ARGUMENT`, `ERR_OPERATION_MISMATCH`
 * @see docs/keystore-estate.md §2
 */
export function verifyApproval(value: unknown, options: VerifyApprovalOptions): VerifiedApproval {
  const { ctx } = approvalContext(options, []);
  checkProposalLive(ctx);
  return verifyOne(value, ctx);
}

/** Options of {@link evaluateQuorum} and {@link assertQuorum}. */
export interface QuorumOptions extends VerifyApprovalOptions {
  /** The approvals collected (at most {@link MAX_APPROVALS_PER_PROPOSAL}). */
  readonly approvals: readonly unknown[];
  /** The access policy in force. */
  readonly policy: AccessPolicy;
}

/** Where a proposal stands. */
export interface QuorumResult {
  /** Approvals the policy requires for the operation now. */
  readonly required: number;
  /** The distinct approvers, sorted. */
  readonly approvers: readonly string[];
  /** Whether `approvers` reach `required`. */
  readonly met: boolean;
}

/**
 * Where a proposal stands: how many approvals the policy requires for its operation, and the
 * distinct approvers among `approvals`, each verified as {@link verifyApproval} verifies it.
 *
 * Security: fails closed. One invalid, expired, self- or repeated approval refuses the whole set
 * (with that approval's code) instead of being skipped: the store keeps only approvals that
 * verified when they were given, so a bad one among them means its state is wrong. The proposer
 * never counts, nor one operator twice.
 * @throws SmkiError `ERR_PROPOSAL_EXPIRED`, `ERR_APPROVAL_INVALID`, `ERR_APPROVAL_DUPLICATE` (the
 *   proposer, or one operator twice), `ERR_ACCESS_POLICY_INVALID`, `ERR_INVALID_ARGUMENT` (bad
 *   options, more than {@link MAX_APPROVALS_PER_PROPOSAL} approvals), `ERR_OPERATION_MISMATCH`
 * @see docs/keystore-estate.md §2
 */
export function evaluateQuorum(options: QuorumOptions): QuorumResult {
  const { ctx, fields } = approvalContext(options, ['approvals', 'policy']);
  const policy = parseAccessPolicy(fields['policy']);
  const badOption = refuser('ERR_INVALID_ARGUMENT', 'bad options');
  const approvals = guarded(badOption, () => readArray(fields['approvals'], MAX_APPROVALS_PER_PROPOSAL, badOption, 'options.approvals'));
  checkProposalLive(ctx);
  const approvers = new Set<string>();
  for (const a of approvals) {
    const v = verifyOne(a, ctx);
    if (approvers.has(v.approverId)) fail('ERR_APPROVAL_DUPLICATE', `operator ${v.approverId} approved ${ctx.proposal.proposalId} twice`, v.approverId);
    approvers.add(v.approverId);
  }
  const required = requiredOf(policy, ctx.proposal.operation);
  const sorted = [...approvers].sort();
  return Object.freeze({ required, approvers: Object.freeze(sorted), met: sorted.length >= required });
}

/**
 * {@link evaluateQuorum}, refusing unless the quorum is met: the store calls this, then
 * {@link checkOperationMatches}, in the transaction that executes the proposal and closes it.
 * @throws SmkiError `ERR_PROPOSAL_QUORUM_NOT_MET` (detail: `have/required`), and those of {@link evaluateQuorum}
 * @see docs/keystore-estate.md §2
 */
export function assertQuorum(options: QuorumOptions): QuorumResult {
  const r = evaluateQuorum(options);
  if (!r.met) {
    fail('ERR_PROPOSAL_QUORUM_NOT_MET', `proposal ${options.proposal.proposalId} has ${r.approvers.length} of the ${r.required} approvals it needs`, `${r.approvers.length}/${r.required}`);
  }
  return r;
}

/**
 * Refuse unless `operation` is the one proposed: its {@link operationHash} is the proposal's.
 * @throws SmkiError `ERR_OPERATION_MISMATCH`, `ERR_INVALID_ARGUMENT` (a malformed operation or proposal)
 * @see docs/keystore-estate.md §2
 */
export function checkOperationMatches(proposal: Proposal, operation: Operation): void {
  const p = parseProposal(proposal);
  if (operationHash(operation) !== p.operationHash) {
    fail('ERR_OPERATION_MISMATCH', `the operation is not the one proposed in ${p.proposalId}`, p.proposalId);
  }
}

// ---------------------------------------------------------------------------------------------
// Signatures alone (the audit: requests and approvals kept beside the trail, checked long after)

/**
 * Whether `value` is a signed operator request whose signature verifies under `publicKey` (the
 * 65-byte point): the signature only, not its window or counter (what an audit checks of a request
 * executed long ago). Never throws.
 */
export function operatorRequestSignatureValid(value: unknown, publicKey: Uint8Array): boolean {
  try {
    const r = value as OperatorRequest;
    if (typeof r !== 'object' || r === null || typeof r.signature !== 'string' || !/^[0-9A-F]{128}$/.test(r.signature)) return false;
    const body: RequestBody = { v: r.v, storeId: r.storeId, operatorId: r.operatorId, counter: r.counter, issuedAt: r.issuedAt, operation: r.operation };
    if (canonicalJson({ ...body, signature: r.signature }) !== canonicalJson(value)) return false;
    return verifyP1363(publicKeyFromRaw(publicKey), requestMessage(body), fromHex(r.signature));
  } catch {
    return false;
  }
}

/**
 * Whether `value` is a signed approval whose signature verifies under `publicKey`: the signature
 * only, not its expiry (what an audit checks of an approval given long ago). Never throws.
 */
export function approvalSignatureValid(value: unknown, publicKey: Uint8Array): boolean {
  try {
    const a = value as Approval;
    if (typeof a !== 'object' || a === null || typeof a.signature !== 'string' || !/^[0-9A-F]{128}$/.test(a.signature)) return false;
    const body: ApprovalBody = { v: a.v, storeId: a.storeId, proposalId: a.proposalId, operationHash: a.operationHash, approverId: a.approverId, expiresAt: a.expiresAt };
    if (canonicalJson({ ...body, signature: a.signature }) !== canonicalJson(value)) return false;
    return verifyP1363(publicKeyFromRaw(publicKey), approvalMessage(body), fromHex(a.signature));
  } catch {
    return false;
  }
}
