// Rules the key store applies whatever holds its metadata (the JSON file of earlier releases or a
// database): identifiers, purposes and their key usages, and the use contexts checked before any
// key is used.
import { RemotePartyRole, SmkiError, type RemotePartyRoleCode, type SmkiErrorCode } from '@smki/core';
import { KEY_PURPOSES, type KeyPurpose, type UseContext, type XmlSignUse } from '../types.js';

/** A portfolio id: 1 to 64 of `A–Z a–z 0–9 _ -`. */
export const PORTFOLIO_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** The key usage each purpose's certificate has. */
export const PURPOSE_USAGE: Readonly<Record<KeyPurpose, 'digitalSignature' | 'keyAgreement'>> = {
  signing: 'digitalSignature',
  keyAgreement: 'keyAgreement',
  prepaymentKeyAgreement: 'keyAgreement',
  xmlSigning: 'digitalSignature',
};

/** The short name of each purpose in key ids and labels (`…north.DS.g2`). */
export const PURPOSE_SHORT: Readonly<Record<KeyPurpose, string>> = { signing: 'DS', keyAgreement: 'KA', prepaymentKeyAgreement: 'KAP', xmlSigning: 'XML' };

/**
 * The purposes whose certificates a meter installs as trust anchors: every purpose but
 * `xmlSigning`, the organisation's DUIS XML signing key, which no meter ever trusts. Assignment,
 * moves, rotations, credential updates and exposure consider only these.
 */
export const DEVICE_PURPOSES: readonly KeyPurpose[] = Object.freeze(KEY_PURPOSES.filter((p) => p !== 'xmlSigning'));

/** The role of every DUIS XML signing certificate (OU `87`), whatever the organisation's own role. */
export const XML_SIGNING_ROLE: RemotePartyRoleCode = RemotePartyRole.XmlSigning135;

/** An identifier as an audit record's `id` field carries it (the DUIS RequestID fits). */
export const REQUEST_ID = /^[A-Za-z0-9._:@/+-]{1,128}$/;

/** Longest revocation reason an audit record carries (its `text` fields). */
export const MAX_REASON = 128;

/** Throw a SmkiError with `code` (and `detail`, where given). */
export function fail(code: SmkiErrorCode, message: string, detail?: string): never {
  throw new SmkiError(code, message, detail === undefined ? {} : { detail });
}

/**
 * `{ [name]: value }`, or `{}` when `value` is undefined: an optional property is left out rather
 * than set to undefined (the options, records and results built here spread it in).
 */
export function optional<K extends string, V>(name: K, value: V | undefined): { [P in K]?: V } {
  return value === undefined ? {} : ({ [name]: value } as { [P in K]?: V });
}

/** `p` as a key purpose. @throws SmkiError `ERR_INVALID_ARGUMENT` */
export function checkPurpose(p: unknown): KeyPurpose {
  if (!KEY_PURPOSES.includes(p as KeyPurpose)) fail('ERR_INVALID_ARGUMENT', `not a key purpose: ${String(p)}`);
  return p as KeyPurpose;
}

/**
 * The use fields of a caller's context (message code, counter), checked before any key is used, so
 * that a value the audit record cannot carry refuses the operation instead of failing after the
 * key has signed or derived; nothing else is taken from the object.
 * @throws SmkiError `ERR_INVALID_ARGUMENT` (detail: the field)
 */
export function useOf(use: unknown): UseContext {
  if (typeof use !== 'object' || use === null) fail('ERR_INVALID_ARGUMENT', 'the use context must be an object', 'use');
  const { messageCode, counter } = use as UseContext;
  if (messageCode !== undefined && !(Number.isInteger(messageCode) && messageCode >= 0 && messageCode <= 0xffff)) {
    fail('ERR_INVALID_ARGUMENT', 'messageCode must be an integer from 0 to 0xFFFF', 'messageCode');
  }
  if (counter !== undefined && !(typeof counter === 'bigint' && counter >= 0n && counter < 1n << 64n)) {
    fail('ERR_INVALID_ARGUMENT', 'counter must be a bigint from 0 to 2^64 - 1', 'counter');
  }
  // Built field by field (no spread of temporaries: this runs for every signature).
  const out: { messageCode?: number; counter?: bigint } = {};
  if (messageCode !== undefined) out.messageCode = messageCode;
  if (counter !== undefined) out.counter = counter;
  return out;
}

/**
 * The request id of a caller's XML signing context, checked before the key is used (an identifier
 * an audit record's `id` field carries: 1 to 128 of `A–Z a–z 0–9 . _ : @ / + -`); nothing else is
 * taken from the object.
 * @throws SmkiError `ERR_INVALID_ARGUMENT` (detail: the field)
 */
export function xmlUseOf(use: unknown): XmlSignUse {
  if (typeof use !== 'object' || use === null) fail('ERR_INVALID_ARGUMENT', 'the use context must be an object', 'use');
  const { requestId } = use as XmlSignUse;
  if (requestId !== undefined && !(typeof requestId === 'string' && REQUEST_ID.test(requestId))) {
    fail('ERR_INVALID_ARGUMENT', 'requestId must be 1 to 128 of A-Z a-z 0-9 . _ : @ / + -', 'requestId');
  }
  return optional('requestId', requestId);
}

/** A store's scrypt cost, if given: a power of two from 2^15 to 2^20 (what a store's KDF parameters may hold). */
export function checkScryptN(n: unknown): void {
  if (n !== undefined && !(typeof n === 'number' && Number.isSafeInteger(n) && n >= 2 ** 15 && n <= 2 ** 20 && (n & (n - 1)) === 0)) {
    fail('ERR_INVALID_ARGUMENT', 'scryptN must be a power of two from 2^15 to 2^20', 'scryptN');
  }
}
