// Need-to-know access and dual control of the key store (docs/keystore-estate.md §2): operators
// and grants, the exact operations, signed operator requests (ECDSA P-256/SHA-256, FIPS 186-5
// §6.4; r ‖ s as IEEE 1363), canonical JSON (RFC 8785 §3.2), the access policy and M-of-N
// approvals. Every refusal has a case that breaks exactly that rule and expects exactly its code;
// with the guard commented out, its case fails. Real P-256 keys throughout.
import { createHash, generateKeyPairSync, verify as nodeVerify, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createKeySigner, isSmkiError, parseEui64, toHex, type Eui64, type Signer, type SmkiErrorCode } from '@smki/core';
import {
  assertNoApprovalsRequired,
  assertQuorum,
  assignmentListDigest,
  authorise,
  canonicalJson,
  checkOperationMatches,
  createApproval,
  createOperatorRequest,
  createProposal,
  DEFAULT_ACCESS_POLICY,
  deviceListDigest,
  evaluateQuorum,
  grantScopes,
  MAX_CANONICAL_JSON_BYTES,
  OPERATION_NAMES,
  OPERATION_ROLE,
  operationHash,
  parseAccessPolicy,
  parseOperation,
  parseOperatorInfo,
  parseProposal,
  permits,
  policyHash,
  requiredApprovals,
  verifyApproval,
  verifyOperatorRequest,
  type AccessPolicy,
  type AccessScope,
  type Approval,
  type ApprovalFields,
  type Operation,
  type OperatorGrant,
  type OperatorInfo,
  type OperatorRequest,
  type OperatorRequestFields,
  type Proposal,
  type QuorumOptions,
  type VerifyOperatorRequestOptions,
} from '../src/access.js';

// ---- helpers ---------------------------------------------------------------------------------

/** The code of what `f` throws: undefined when it returns, a description when it throws something else. */
function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isSmkiError(e) ? e.code : `not a SmkiError: ${String(e)}`;
  }
  return undefined;
}

function expectCode(f: () => unknown, code: SmkiErrorCode): void {
  expect(codeOf(f)).toBe(code);
}

async function expectCodeAsync(f: () => Promise<unknown>, code: SmkiErrorCode): Promise<void> {
  try {
    await f();
  } catch (e) {
    expect(isSmkiError(e) ? e.code : `not a SmkiError: ${String(e)}`).toBe(code);
    return;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

/** The error `f` throws (a SmkiError), for its detail. */
function errorOf(f: () => unknown): { code: string; detail: string | undefined } {
  try {
    f();
  } catch (e) {
    if (!isSmkiError(e)) throw e;
    return { code: e.code, detail: (e.context as { detail?: string }).detail };
  }
  throw new Error('nothing was thrown');
}

/** A JSON round trip: what the store receives from the wire. */
function wire<T>(v: T): Record<string, unknown> {
  return JSON.parse(JSON.stringify(v)) as Record<string, unknown>;
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').toUpperCase();
}

interface Party {
  readonly id: string;
  readonly signer: Signer;
  readonly key: KeyObject;
}

function party(id: string, key: KeyObject = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey): Party {
  return { id, signer: createKeySigner(key), key };
}

// ---- the estate ------------------------------------------------------------------------------

const STORE = 'store-1';
const ORG = parseEui64('90B3D51F30010000');
const ORG2 = parseEui64('90B3D51F30020000');
const M1 = parseEui64('00DB1234567890A1');
const M2 = parseEui64('00DB1234567890A2');
const NOW = new Date('2025-06-01T12:00:00.000Z');
const at = (ms: number): Date => new Date(NOW.getTime() + ms);
const HOUR = 3_600_000;
const KEY_NORTH = `${ORG}.north.DS.g1`;
const KEY_SOUTH = `${ORG}.south.DS.g1`;
const HASH = 'AB'.repeat(32);

const alice = party('alice'); // custodian of north (proposes)
const nora = party('nora'); // custodian of north
const bob = party('bob'); // custodian of the whole organisation
const carol = party('carol'); // custodian of south
const dave = party('dave'); // device manager of the organisation
const erin = party('erin'); // administrator of the organisation
const root = party('root'); // administrator of the whole store
const sam = party('sam'); // signer for north
const audrey = party('audrey'); // auditor of the organisation
const twin = party('alice-twin', alice.key); // another id with alice's key
const stranger = party('stranger'); // not in the store

const grant = (role: OperatorGrant['role'], organisation: Eui64 | '*', portfolioId?: string): OperatorGrant =>
  portfolioId === undefined ? { role, organisation } : { role, organisation, portfolioId };

const OPERATORS = new Map<string, OperatorInfo>(
  (
    [
      [alice, [grant('custodian', ORG, 'north')]],
      [nora, [grant('custodian', ORG, 'north')]],
      [bob, [grant('custodian', ORG)]],
      [carol, [grant('custodian', ORG, 'south')]],
      [dave, [grant('deviceManager', ORG)]],
      [erin, [grant('administrator', ORG)]],
      [root, [grant('administrator', '*')]],
      [sam, [grant('signer', ORG, 'north')]],
      [audrey, [grant('auditor', ORG)]],
      [twin, [grant('custodian', ORG, 'north')]],
    ] as const
  ).map(([p, grants]) => [p.id, { operatorId: p.id, publicKey: p.signer.publicKey, grants }]),
);
const lookup = (id: string): OperatorInfo | undefined => OPERATORS.get(id);
const info = (p: Party): OperatorInfo => OPERATORS.get(p.id) as OperatorInfo;

const REVOKE_NORTH: Operation = { op: 'key.revoke', keyId: KEY_NORTH };
const NORTH: AccessScope = { organisation: ORG, portfolioIds: ['north'] };
const SOUTH: AccessScope = { organisation: ORG, portfolioIds: ['south'] };

/** One valid operation of each kind, with every optional field. */
const EVERY_OPERATION: readonly Operation[] = [
  { op: 'organisation.add', entityId: ORG2, role: 2, maxDevicesPerKey: 5000 },
  { op: 'portfolio.create', organisation: ORG, portfolioId: 'east', name: 'East of the river', wholeEstate: ['keyAgreement'] },
  { op: 'key.generate', organisation: ORG, portfolioId: 'north', purpose: 'signing' },
  { op: 'key.csr', keyId: KEY_NORTH },
  { op: 'key.attach', keyId: KEY_NORTH, certificateSha256: HASH },
  { op: 'key.rotate', keyId: KEY_NORTH },
  { op: 'key.retire', keyId: KEY_NORTH },
  { op: 'key.revoke', keyId: KEY_NORTH, reason: 'keyCompromise' },
  { op: 'device.assign', organisation: ORG, count: 2, listSha256: HASH },
  { op: 'device.move', organisation: ORG, toPortfolioId: 'north', count: 1, listSha256: HASH },
  { op: 'device.credentialsUpdated', organisation: ORG, device: M1, purpose: 'signing' },
  { op: 'operator.add', operatorId: 'frank', publicKey: toHex(stranger.signer.publicKey), grants: [grant('signer', ORG, 'north')] },
  { op: 'operator.remove', operatorId: 'frank' },
  { op: 'policy.set', policySha256: HASH },
  { op: 'session.sign', organisation: ORG, portfolioIds: ['north', 'south'] },
  { op: 'session.audit', organisation: '*' },
];

async function request(p: Party = alice, over: Partial<OperatorRequestFields> = {}): Promise<Record<string, unknown>> {
  return wire(await createOperatorRequest(p.signer, { storeId: STORE, operatorId: p.id, counter: 7n, issuedAt: NOW, operation: REVOKE_NORTH, ...over }));
}

function verifyReq(value: unknown, over: Partial<VerifyOperatorRequestOptions> = {}) {
  return verifyOperatorRequest(value, { storeId: STORE, lookup, lastCounter: undefined, now: NOW, ...over });
}

// ---- canonical JSON --------------------------------------------------------------------------

describe('canonicalJson (RFC 8785 §3.2 for strings, safe integers, booleans, null, arrays and plain objects)', () => {
  it('sorts keys by UTF-16 code units (not code points), writes no white space and keeps array order', () => {
    // U+1F600 is D83D DE00 in UTF-16, so it sorts before U+FF61 (code point order would put it after).
    const value = { b: [3, 1, 2], a: { z: null, y: true, x: false }, B: 'x', '\uff61': 1, '\ud83d\ude00': 2, '': -5 };
    expect(canonicalJson(value)).toBe('{"":-5,"B":"x","a":{"x":false,"y":true,"z":null},"b":[3,1,2],"😀":2,"｡":1}');
  });

  it('escapes strings as JSON.stringify does, writes -0 as 0, and takes objects without a prototype', () => {
    expect(canonicalJson('a"b\\c\n\u0001é')).toBe('"a\\"b\\\\c\\n\\u0001é"');
    expect(canonicalJson(-0)).toBe('0');
    expect(canonicalJson(Number.MAX_SAFE_INTEGER)).toBe('9007199254740991');
    const bare = Object.create(null) as Record<string, unknown>;
    bare['k'] = [];
    expect(canonicalJson(bare)).toBe('{"k":[]}');
  });

  class Thing {
    readonly a = 1;
  }
  const cyclic: Record<string, unknown> = {};
  cyclic['self'] = { back: cyclic };
  const sparse: unknown[] = [1];
  sparse[2] = 3;
  const extra = Object.assign([1], { note: 'x' });
  const getter = Object.defineProperty({}, 'k', { get: () => 1, enumerable: true });
  const hidden = Object.defineProperty({}, 'k', { value: 1, enumerable: false });
  class Items extends Array<number> {}
  const subArray = Items.from([1]);
  const cases: [string, unknown, string][] = [
    ['undefined', undefined, '$: a value of type undefined'],
    ['undefined in an object', { a: undefined }, '$.a: a value of type undefined'],
    ['undefined in an array', [undefined], '$[0]: a value of type undefined'],
    ['NaN', Number.NaN, 'not an integer'],
    ['Infinity', Number.POSITIVE_INFINITY, 'not an integer'],
    ['a fraction', 1.5, 'not an integer'],
    ['an integer beyond 2^53 - 1', 2 ** 53, 'beyond 2^53 - 1'],
    ['a bigint', 1n, 'a value of type bigint'],
    ['a function', () => 1, 'a value of type function'],
    ['a symbol', Symbol('s'), 'a value of type symbol'],
    ['a symbol key', { [Symbol('s')]: 1 }, 'a symbol key'],
    ['a Date', new Date(0), 'an instance of a class'],
    ['a Map', new Map(), 'an instance of a class'],
    ['a Uint8Array', new Uint8Array(1), 'an instance of a class'],
    ['a boxed string', Object('s'), 'an instance of a class'],
    ['a class instance', new Thing(), 'an instance of a class'],
    ['an object with another prototype', Object.create({ inherited: 1 }), 'an instance of a class'],
    ['an array of a subclass', subArray, 'an array of another class'],
    ['a cycle', cyclic, '$.self.back: a cycle'],
    ['an array hole', sparse, '$[1]: a hole or an accessor'],
    ['an array element accessor', Object.defineProperty([0], 0, { get: () => 1 }), '$[0]: a hole or an accessor'],
    ['an array with a property', extra, 'an array with properties besides its elements'],
    ['an accessor', getter, '$.k: an accessor or a hidden property'],
    ['a hidden property', hidden, '$.k: an accessor or a hidden property'],
    ['a lone surrogate', '\ud800', 'a lone surrogate'],
    ['a lone surrogate in a key', { '\udc00': 1 }, 'a lone surrogate'],
    ['a string longer than the limit', 'x'.repeat(MAX_CANONICAL_JSON_BYTES + 1), `a string of more than ${MAX_CANONICAL_JSON_BYTES} characters`],
  ];
  it.each(cases)('refuses %s (ERR_INVALID_ARGUMENT, naming where and what)', (_name, value, detail) => {
    const e = errorOf(() => canonicalJson(value));
    expect(e.code).toBe('ERR_INVALID_ARGUMENT');
    expect(e.detail).toContain(detail);
  });

  it('takes 16 nested containers, refuses 17', () => {
    const nest = (n: number): unknown => (n === 0 ? 1 : n % 2 ? [nest(n - 1)] : { k: nest(n - 1) });
    expect(canonicalJson(nest(16))).toContain('1');
    expectCode(() => canonicalJson(nest(17)), 'ERR_INVALID_ARGUMENT');
  });

  it('takes exactly 64 KiB of text, refuses one byte more (counted in UTF-8)', () => {
    expect(canonicalJson('x'.repeat(MAX_CANONICAL_JSON_BYTES - 2))).toHaveLength(MAX_CANONICAL_JSON_BYTES);
    expectCode(() => canonicalJson('x'.repeat(MAX_CANONICAL_JSON_BYTES - 1)), 'ERR_INVALID_ARGUMENT');
    // 'é' is two bytes in UTF-8: 32767 of them and the quotes are 65536 bytes; one more is too many.
    expect(Buffer.byteLength(canonicalJson('é'.repeat(32_767)))).toBe(MAX_CANONICAL_JSON_BYTES);
    expectCode(() => canonicalJson('é'.repeat(32_768)), 'ERR_INVALID_ARGUMENT');
    expectCode(() => canonicalJson(Array.from({ length: 40_000 }, () => 1)), 'ERR_INVALID_ARGUMENT');
  });

  const data: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', maxDepth: 4 },
      fc.constant(null),
      fc.boolean(),
      fc.maxSafeInteger(),
      fc.string(),
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(fc.string(), tie('value'), { maxKeys: 5 }),
    ),
  })).value;
  /** The same data with every object's keys in another order (reversed, then rotated by `turn`). */
  const reorder = (v: unknown, turn: number): unknown => {
    if (Array.isArray(v)) return v.map((x) => reorder(x, turn));
    if (typeof v !== 'object' || v === null) return v;
    const entries = Object.entries(v).reverse();
    const k = entries.length === 0 ? 0 : turn % entries.length;
    return Object.fromEntries([...entries.slice(k), ...entries.slice(0, k)].map(([key, x]) => [key, reorder(x, turn)]));
  };

  it('property: the text does not depend on the order of keys, and parses back to the same data', () => {
    fc.assert(
      fc.property(data, fc.nat(), (v, turn) => {
        const text = canonicalJson(v);
        expect(canonicalJson(reorder(v, turn))).toBe(text);
        expect(JSON.parse(text)).toEqual(v);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
      }),
      { numRuns: 300 },
    );
  });
});

// ---- operations ------------------------------------------------------------------------------

describe('operations: exact shapes and their hash (docs/keystore-estate.md §2)', () => {
  it('has one example of every operation, each with the role that performs it', () => {
    expect(EVERY_OPERATION.map((o) => o.op)).toEqual(OPERATION_NAMES);
    expect(OPERATION_ROLE).toEqual({
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
  });

  it.each(EVERY_OPERATION.map((o) => [o.op, o] as const))('%s parses to a frozen copy, and its hash is SHA-256 of the domain line and its canonical JSON', (_name, op) => {
    const parsed = parseOperation(wire(op));
    expect(parsed).toEqual(op);
    expect(Object.isFrozen(parsed)).toBe(true);
    expect(operationHash(op)).toBe(sha256Hex(`smki-keystore operation v1\n${canonicalJson(op)}`));
    expect(operationHash(reverseKeys(op))).toBe(operationHash(op));
  });

  it('a known vector: the hash of key.revoke', () => {
    const text = `{"keyId":"${KEY_NORTH}","op":"key.revoke"}`;
    expect(canonicalJson(REVOKE_NORTH)).toBe(text);
    expect(operationHash(REVOKE_NORTH)).toBe(createHash('sha256').update(`smki-keystore operation v1\n${text}`).digest('hex').toUpperCase());
  });

  it('optional fields may be left out, and change the hash when present', () => {
    expect(parseOperation({ op: 'organisation.add', entityId: ORG2, role: 2 })).toEqual({ op: 'organisation.add', entityId: ORG2, role: 2 });
    expect(parseOperation({ op: 'portfolio.create', organisation: ORG, portfolioId: 'east', wholeEstate: [] })).toBeTruthy();
    expect(operationHash({ op: 'key.revoke', keyId: KEY_NORTH, reason: 'x' })).not.toBe(operationHash(REVOKE_NORTH));
  });

  it('the copy does not change when the caller changes its object afterwards', () => {
    const mine = { op: 'session.sign', organisation: ORG, portfolioIds: ['north'] };
    const parsed = parseOperation(mine);
    mine.portfolioIds.push('south');
    expect(parsed).toEqual({ op: 'session.sign', organisation: ORG, portfolioIds: ['north'] });
    expect(Object.isFrozen((parsed as unknown as { portfolioIds: string[] }).portfolioIds)).toBe(true);
  });

  const OPTIONAL = ['maxDevicesPerKey', 'name', 'wholeEstate', 'reason'];
  it.each(EVERY_OPERATION.map((o) => [o.op, o] as const))('%s without any one of its required fields, or with a field it does not have, is refused', (_name, op) => {
    for (const k of Object.keys(op)) {
      const { [k]: _gone, ...rest } = op as unknown as Record<string, unknown>;
      if (OPTIONAL.includes(k)) expect(parseOperation(rest)).toEqual(rest);
      else expectCode(() => parseOperation(rest), 'ERR_INVALID_ARGUMENT');
    }
    expectCode(() => parseOperation({ ...op, extra: 1 }), 'ERR_INVALID_ARGUMENT');
  });

  const long = (n: number, c = 'a'): string => c.repeat(n);
  const notOnCurve = `04${'00'.repeat(64)}`;
  const cases: [string, unknown][] = [
    ['an unknown op', { op: 'key.destroy', keyId: KEY_NORTH }],
    ['an op of the wrong case', { op: 'key.REVOKE', keyId: KEY_NORTH }],
    ['op __proto__', JSON.parse('{"op":"__proto__","keyId":"k"}')],
    ['op constructor', { op: 'constructor', keyId: KEY_NORTH }],
    ['op toString', { op: 'toString', keyId: KEY_NORTH }],
    ['an inherited op', Object.assign(Object.create({ op: 'key.csr' }) as object, { keyId: KEY_NORTH })],
    ['null', null],
    ['a string', 'key.revoke'],
    ['an array', [REVOKE_NORTH]],
    ['a field given by a getter', Object.defineProperty({ op: 'key.csr' }, 'keyId', { get: () => KEY_NORTH, enumerable: true })],
    ['an EUI-64 in lower case', { op: 'organisation.add', entityId: '90b3d51f30020000', role: 2 }],
    ['an EUI-64 with separators', { op: 'organisation.add', entityId: '90-B3-D5-1F-30-02-00-00', role: 2 }],
    ['a Remote Party Role that does not exist', { op: 'organisation.add', entityId: ORG2, role: 99 }],
    ['a role as a string', { op: 'organisation.add', entityId: ORG2, role: '2' }],
    ['maxDevicesPerKey 0', { op: 'organisation.add', entityId: ORG2, role: 2, maxDevicesPerKey: 0 }],
    ['maxDevicesPerKey 1.5', { op: 'organisation.add', entityId: ORG2, role: 2, maxDevicesPerKey: 1.5 }],
    ['a portfolio id with a space', { op: 'portfolio.create', organisation: ORG, portfolioId: 'no way' }],
    ['a portfolio id of 65 characters', { op: 'portfolio.create', organisation: ORG, portfolioId: long(65) }],
    ['an empty name', { op: 'portfolio.create', organisation: ORG, portfolioId: 'east', name: '' }],
    ['a name of 129 characters', { op: 'portfolio.create', organisation: ORG, portfolioId: 'east', name: long(129) }],
    ['a name with a newline', { op: 'portfolio.create', organisation: ORG, portfolioId: 'east', name: 'a\nb' }],
    ['a name with a C1 control', { op: 'portfolio.create', organisation: ORG, portfolioId: 'east', name: 'a\u0085b' }],
    ['a name with a lone surrogate', { op: 'portfolio.create', organisation: ORG, portfolioId: 'east', name: 'a\ud800' }],
    ['wholeEstate xmlSigning', { op: 'portfolio.create', organisation: ORG, portfolioId: 'east', wholeEstate: ['xmlSigning'] }],
    ['wholeEstate twice the same', { op: 'portfolio.create', organisation: ORG, portfolioId: 'east', wholeEstate: ['signing', 'signing'] }],
    ['wholeEstate not an array', { op: 'portfolio.create', organisation: ORG, portfolioId: 'east', wholeEstate: 'signing' }],
    ['an unknown purpose', { op: 'key.generate', organisation: ORG, portfolioId: 'north', purpose: 'encryption' }],
    ['a key id with a space', { op: 'key.csr', keyId: 'a b' }],
    ['a key id of 129 characters', { op: 'key.csr', keyId: long(129) }],
    ['a certificate hash in lower case', { op: 'key.attach', keyId: KEY_NORTH, certificateSha256: HASH.toLowerCase() }],
    ['a certificate hash of 63 digits', { op: 'key.attach', keyId: KEY_NORTH, certificateSha256: HASH.slice(1) }],
    ['a reason of 129 characters', { op: 'key.revoke', keyId: KEY_NORTH, reason: long(129) }],
    ['count 0', { op: 'device.assign', organisation: ORG, count: 0, listSha256: HASH }],
    ['count 100001', { op: 'device.assign', organisation: ORG, count: 100_001, listSha256: HASH }],
    ['count 1.5', { op: 'device.move', organisation: ORG, toPortfolioId: 'north', count: 1.5, listSha256: HASH }],
    ['count as a string', { op: 'device.move', organisation: ORG, toPortfolioId: 'north', count: '1', listSha256: HASH }],
    ['credentials updated for xmlSigning', { op: 'device.credentialsUpdated', organisation: ORG, device: M1, purpose: 'xmlSigning' }],
    ['an operator key not on the curve', { op: 'operator.add', operatorId: 'frank', publicKey: notOnCurve, grants: [grant('signer', ORG)] }],
    ['an operator key in lower case', { op: 'operator.add', operatorId: 'frank', publicKey: toHex(stranger.signer.publicKey).toLowerCase(), grants: [grant('signer', ORG)] }],
    ['an operator key compressed', { op: 'operator.add', operatorId: 'frank', publicKey: `02${toHex(stranger.signer.publicKey).slice(2, 66)}`, grants: [grant('signer', ORG)] }],
    ['no grants', { op: 'operator.add', operatorId: 'frank', publicKey: toHex(stranger.signer.publicKey), grants: [] }],
    ['a grant of an unknown role', { op: 'operator.add', operatorId: 'frank', publicKey: toHex(stranger.signer.publicKey), grants: [{ role: 'root', organisation: ORG }] }],
    ['a grant of a portfolio of every organisation', { op: 'operator.add', operatorId: 'frank', publicKey: toHex(stranger.signer.publicKey), grants: [{ role: 'signer', organisation: '*', portfolioId: 'north' }] }],
    ['a grant twice', { op: 'operator.add', operatorId: 'frank', publicKey: toHex(stranger.signer.publicKey), grants: [grant('signer', ORG), grant('signer', ORG)] }],
    ['a grant with another field', { op: 'operator.add', operatorId: 'frank', publicKey: toHex(stranger.signer.publicKey), grants: [{ role: 'signer', organisation: ORG, admin: true }] }],
    ['65 grants', { op: 'operator.add', operatorId: 'frank', publicKey: toHex(stranger.signer.publicKey), grants: Array.from({ length: 65 }, (_, i) => grant('signer', ORG, `p${i}`)) }],
    ['an operator id of 65 characters', { op: 'operator.remove', operatorId: long(65) }],
    ['an operator id with a space', { op: 'operator.remove', operatorId: 'a b' }],
    ['an empty operator id', { op: 'operator.remove', operatorId: '' }],
    ['no portfolios to sign for', { op: 'session.sign', organisation: ORG, portfolioIds: [] }],
    ['a portfolio twice', { op: 'session.sign', organisation: ORG, portfolioIds: ['north', 'north'] }],
    ['257 portfolios', { op: 'session.sign', organisation: ORG, portfolioIds: Array.from({ length: 257 }, (_, i) => `p${i}`) }],
    ['an audit of "all"', { op: 'session.audit', organisation: 'all' }],
  ];
  it.each(cases)('refuses %s (ERR_INVALID_ARGUMENT)', (_name, value) => {
    expectCode(() => parseOperation(value), 'ERR_INVALID_ARGUMENT');
    expectCode(() => operationHash(value), 'ERR_INVALID_ARGUMENT');
  });

  it('the bounds themselves are accepted: 64 grants, 256 portfolios, 100000 devices, 128-character texts', () => {
    const pk = toHex(stranger.signer.publicKey);
    expect(() => parseOperation({ op: 'operator.add', operatorId: long(64), publicKey: pk, grants: Array.from({ length: 64 }, (_, i) => grant('signer', ORG, `p${i}`)) })).not.toThrow();
    expect(() => parseOperation({ op: 'session.sign', organisation: ORG, portfolioIds: Array.from({ length: 256 }, (_, i) => `p${i}`) })).not.toThrow();
    expect(() => parseOperation({ op: 'device.assign', organisation: ORG, count: 100_000, listSha256: HASH })).not.toThrow();
    expect(() => parseOperation({ op: 'key.revoke', keyId: long(128), reason: long(128) })).not.toThrow();
  });
});

function reverseKeys<T>(v: T): T {
  if (Array.isArray(v)) return v.map(reverseKeys) as T;
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reverseKeys(x)])) as T;
}

// ---- operators, grants and authorisation -------------------------------------------------------

describe('operators and grants', () => {
  it('parseOperatorInfo copies and freezes a record, and refuses each defect', () => {
    const parsed = parseOperatorInfo(info(alice));
    expect(parsed).toEqual(info(alice));
    expect(Object.isFrozen(parsed)).toBe(true);
    expect(parsed.publicKey).not.toBe(alice.signer.publicKey);
    const good = { operatorId: 'x', publicKey: alice.signer.publicKey, grants: [grant('auditor', ORG)] };
    for (const bad of [
      { ...good, operatorId: 'a b' },
      { ...good, publicKey: toHex(alice.signer.publicKey) },
      { ...good, publicKey: alice.signer.publicKey.subarray(1) },
      { ...good, publicKey: new Uint8Array(65).fill(4) },
      { ...good, grants: [] },
      { ...good, grants: [grant('auditor', '90b3d51f30010000' as Eui64)] },
      { ...good, extra: 1 },
      { operatorId: 'x', publicKey: alice.signer.publicKey },
    ]) {
      expectCode(() => parseOperatorInfo(bad), 'ERR_INVALID_ARGUMENT');
    }
  });

  it('permits: a portfolio grant covers that portfolio only; an organisation grant its portfolios; "*" everything; roles never include each other', () => {
    const g = [grant('custodian', ORG, 'north'), grant('deviceManager', ORG), grant('auditor', '*')];
    expect(permits(g, 'custodian', ORG, 'north')).toBe(true);
    expect(permits(g, 'custodian', ORG, 'south')).toBe(false);
    expect(permits(g, 'custodian', ORG)).toBe(false); // the whole organisation is more than north
    expect(permits(g, 'custodian', ORG2, 'north')).toBe(false);
    expect(permits(g, 'custodian', '*')).toBe(false);
    expect(permits(g, 'deviceManager', ORG, 'south')).toBe(true);
    expect(permits(g, 'deviceManager', ORG)).toBe(true);
    expect(permits(g, 'deviceManager', ORG2)).toBe(false);
    expect(permits(g, 'deviceManager', '*')).toBe(false);
    expect(permits(g, 'auditor', ORG2, 'any')).toBe(true);
    expect(permits(g, 'auditor', '*')).toBe(true);
    expect(permits(g, 'signer', ORG, 'north')).toBe(false);
    expect(permits([grant('administrator', '*')], 'custodian', ORG, 'north')).toBe(false);
    // a '*' grant naming a portfolio (which parsing refuses) gives nothing
    expect(permits([{ role: 'auditor', organisation: '*', portfolioId: 'north' }], 'auditor', ORG, 'north')).toBe(false);
    // anything that is not a list of at most 64 grants permits nothing
    expect(permits(undefined as unknown as OperatorGrant[], 'auditor', ORG)).toBe(false);
    expect(permits([null, 'x'] as unknown as OperatorGrant[], 'auditor', ORG)).toBe(false);
    const many = [...Array.from({ length: 64 }, (_, i) => grant('signer', ORG, `p${i}`)), grant('auditor', ORG)];
    expect(permits(many.slice(1), 'auditor', ORG)).toBe(true);
    expect(permits(many, 'auditor', ORG)).toBe(false);
  });

  it('grantScopes gives one scope per grant', () => {
    expect(grantScopes([grant('signer', ORG, 'north'), grant('auditor', '*')])).toEqual([
      { organisation: ORG, portfolioIds: ['north'] },
      { organisation: '*', portfolioIds: [] },
    ]);
    expectCode(() => grantScopes([]), 'ERR_INVALID_ARGUMENT');
  });
});

describe('authorise: the role that performs the operation, over every portfolio in scope', () => {
  const ok = (p: Party, op: Operation, scope: AccessScope | readonly AccessScope[]) => expect(codeOf(() => authorise(info(p), op, scope))).toBeUndefined();
  const forbidden = (p: Party, op: Operation, scope: AccessScope | readonly AccessScope[]) => expectCode(() => authorise(info(p), op, scope), 'ERR_OPERATOR_FORBIDDEN');

  it('a custodian of north revokes a key of north, not a key of south', () => {
    ok(alice, REVOKE_NORTH, NORTH);
    forbidden(alice, { op: 'key.revoke', keyId: KEY_SOUTH }, SOUTH);
    ok(carol, { op: 'key.revoke', keyId: KEY_SOUTH }, SOUTH);
    ok(bob, { op: 'key.revoke', keyId: KEY_SOUTH }, SOUTH); // custodian of the organisation
    forbidden(bob, { op: 'key.revoke', keyId: 'other' }, { organisation: ORG2, portfolioIds: ['north'] });
  });

  it('roles are separate duties: no role performs another role’s operations', () => {
    forbidden(dave, REVOKE_NORTH, NORTH); // device manager
    forbidden(erin, REVOKE_NORTH, NORTH); // administrator
    forbidden(root, REVOKE_NORTH, NORTH); // administrator of the whole store
    forbidden(sam, REVOKE_NORTH, NORTH); // signer
    forbidden(audrey, REVOKE_NORTH, NORTH); // auditor
    forbidden(bob, { op: 'device.move', organisation: ORG, toPortfolioId: 'north', count: 1, listSha256: HASH }, SOUTH);
    forbidden(erin, { op: 'key.generate', organisation: ORG, portfolioId: 'north', purpose: 'signing' }, []);
    forbidden(bob, { op: 'session.sign', organisation: ORG, portfolioIds: ['north'] }, []);
    forbidden(bob, { op: 'session.audit', organisation: ORG }, []);
    ok(audrey, { op: 'session.audit', organisation: ORG }, []);
    forbidden(audrey, { op: 'session.audit', organisation: '*' }, []);
    ok(dave, { op: 'device.credentialsUpdated', organisation: ORG, device: M1, purpose: 'signing' }, NORTH);
  });

  it('a signer signs for its own portfolios only', () => {
    ok(sam, { op: 'session.sign', organisation: ORG, portfolioIds: ['north'] }, []);
    forbidden(sam, { op: 'session.sign', organisation: ORG, portfolioIds: ['north', 'south'] }, []);
    forbidden(sam, { op: 'session.sign', organisation: ORG, portfolioIds: ['north'] }, SOUTH); // the store's scope counts too
  });

  it('a move needs the role over both portfolios; the destination is checked even if the store leaves it out', () => {
    const move: Operation = { op: 'device.move', organisation: ORG, toPortfolioId: 'north', count: 2, listSha256: HASH };
    const northManager: OperatorInfo = { operatorId: 'nm', publicKey: alice.signer.publicKey, grants: [grant('deviceManager', ORG, 'north')] };
    const southManager: OperatorInfo = { operatorId: 'sm', publicKey: alice.signer.publicKey, grants: [grant('deviceManager', ORG, 'south')] };
    expectCode(() => authorise(northManager, move, { organisation: ORG, portfolioIds: ['south', 'north'] }), 'ERR_OPERATOR_FORBIDDEN');
    expectCode(() => authorise(southManager, move, SOUTH), 'ERR_OPERATOR_FORBIDDEN');
    ok(dave, move, { organisation: ORG, portfolioIds: ['south', 'north'] });
    expect(codeOf(() => authorise(northManager, move, NORTH))).toBeUndefined();
  });

  it('a key is generated in the portfolio the operation names, whatever scope the store gives', () => {
    const gen: Operation = { op: 'key.generate', organisation: ORG, portfolioId: 'south', purpose: 'signing' };
    forbidden(alice, gen, NORTH);
    ok(carol, gen, []);
  });

  it('organisations and portfolios are created by an administrator of the whole organisation; the policy by one of the whole store', () => {
    const northAdmin: OperatorInfo = { operatorId: 'na', publicKey: alice.signer.publicKey, grants: [grant('administrator', ORG, 'north')] };
    const create: Operation = { op: 'portfolio.create', organisation: ORG, portfolioId: 'north' };
    expectCode(() => authorise(northAdmin, create, NORTH), 'ERR_OPERATOR_FORBIDDEN');
    ok(erin, create, []);
    forbidden(erin, { op: 'portfolio.create', organisation: ORG2, portfolioId: 'north' }, []);
    forbidden(erin, { op: 'organisation.add', entityId: ORG2, role: 2 }, []);
    ok(root, { op: 'organisation.add', entityId: ORG2, role: 2 }, []);
    forbidden(erin, { op: 'policy.set', policySha256: HASH }, []);
    ok(root, { op: 'policy.set', policySha256: HASH }, []);
  });

  it('operator.add: no one grants more than they administer', () => {
    const add = (grants: OperatorGrant[]): Operation => ({ op: 'operator.add', operatorId: 'frank', publicKey: toHex(stranger.signer.publicKey), grants });
    ok(erin, add([grant('signer', ORG, 'north'), grant('custodian', ORG)]), []);
    forbidden(erin, add([grant('signer', ORG, 'north'), grant('auditor', ORG2)]), []);
    forbidden(erin, add([grant('auditor', '*')]), []);
    forbidden(erin, add([grant('administrator', '*')]), []);
    ok(root, add([grant('administrator', '*')]), []);
    forbidden(bob, add([grant('signer', ORG, 'north')]), []); // a custodian manages no operators
  });

  it('operator.remove: the scope is the removed operator’s grants', () => {
    const remove: Operation = { op: 'operator.remove', operatorId: 'root' };
    forbidden(erin, remove, grantScopes(info(root).grants));
    ok(erin, { op: 'operator.remove', operatorId: 'alice' }, grantScopes(info(alice).grants));
    ok(root, remove, grantScopes(info(root).grants));
  });

  it('a scope of another organisation than the operation’s, a malformed scope, or nothing to check against is the caller’s error', () => {
    const inval = (op: Operation, scope: unknown) => expectCode(() => authorise(info(bob), op, scope as AccessScope), 'ERR_INVALID_ARGUMENT');
    inval({ op: 'key.generate', organisation: ORG, portfolioId: 'north', purpose: 'signing' }, { organisation: ORG2, portfolioIds: [] });
    inval(REVOKE_NORTH, []);
    inval(REVOKE_NORTH, { organisation: '*', portfolioIds: ['north'] });
    inval(REVOKE_NORTH, { organisation: ORG, portfolioIds: ['north', 'north'] });
    inval(REVOKE_NORTH, { organisation: ORG, portfolioIds: ['no way'] });
    inval(REVOKE_NORTH, { organisation: ORG });
    inval(REVOKE_NORTH, { organisation: ORG, portfolioIds: [], extra: 1 });
    inval(REVOKE_NORTH, Array.from({ length: 65 }, () => NORTH));
    expectCode(() => authorise(info(bob), { op: 'key.revoke' } as unknown as Operation, NORTH), 'ERR_INVALID_ARGUMENT');
    expectCode(() => authorise({ ...info(bob), grants: [] }, REVOKE_NORTH, NORTH), 'ERR_INVALID_ARGUMENT');
  });

  it('the forbidden detail names the role and the scope lacking, never a key', () => {
    const e = errorOf(() => authorise(info(alice), { op: 'key.revoke', keyId: KEY_SOUTH }, SOUTH));
    expect(e.detail).toBe(`alice lacks custodian of ${ORG}/south`);
  });
});

// ---- signed operator requests ------------------------------------------------------------------

describe('verifyOperatorRequest: a request signed by its operator, for this store, fresh, with a new counter', () => {
  it('verifies, and returns the operator, the counter as a bigint, and the operation with its hash (frozen)', async () => {
    const r = verifyReq(await request(), { lastCounter: 6n });
    expect(r).toEqual({ operatorId: 'alice', counter: 7n, issuedAt: NOW.toISOString(), operation: REVOKE_NORTH, operationHash: operationHash(REVOKE_NORTH) });
    expect(Object.isFrozen(r)).toBe(true);
    expect(Object.isFrozen(r.operation)).toBe(true);
  });

  it('signs, with the operator’s key, the domain line and the canonical JSON of every field but the signature (a fixed text)', async () => {
    const req = (await request()) as unknown as OperatorRequest;
    const text = `smki-keystore operator request v1\n{"counter":"7","issuedAt":"2025-06-01T12:00:00.000Z","operation":{"keyId":"${KEY_NORTH}","op":"key.revoke"},"operatorId":"alice","storeId":"store-1","v":1}`;
    expect(req.signature).toMatch(/^[0-9A-F]{128}$/);
    expect(nodeVerify('sha256', Buffer.from(text), { key: alice.key, dsaEncoding: 'ieee-p1363' }, Buffer.from(req.signature, 'hex'))).toBe(true);
  });

  it('every field of every operation goes through a signed request', async () => {
    for (const [i, op] of EVERY_OPERATION.entries()) {
      const r = verifyReq(await request(alice, { operation: op, counter: BigInt(i + 1) }));
      expect(r.operation).toEqual(op);
    }
  });

  it('no request at all: ERR_OPERATOR_REQUIRED', () => {
    expectCode(() => verifyReq(undefined), 'ERR_OPERATOR_REQUIRED');
    expectCode(() => verifyReq(null), 'ERR_OPERATOR_REQUIRED');
  });

  it('a request for another store is refused even though its signature is good (ERR_OPERATOR_SIGNATURE_INVALID)', async () => {
    const other = await request(alice, { storeId: 'store-2' });
    expectCode(() => verifyReq(other), 'ERR_OPERATOR_SIGNATURE_INVALID');
    expect(verifyReq(other, { storeId: 'store-2' }).operatorId).toBe('alice');
  });

  it('malformed requests: ERR_OPERATOR_SIGNATURE_INVALID, before the operator is even looked up', async () => {
    const good = await request();
    const malformed: [string, unknown][] = [
      ['a string', JSON.stringify(good)],
      ['a function', () => good],
      ['an empty object', {}],
      ['an array', [good]],
      ['an extra field', { ...good, note: 'x' }],
      ['a __proto__ field', JSON.parse(JSON.stringify(good).replace('{', '{"__proto__":{},'))],
      ['v 2', { ...good, v: 2 }],
      ['v "1"', { ...good, v: '1' }],
      ['a storeId with a space', { ...good, storeId: 'store 1' }],
      ['an operator id with a space', { ...good, operatorId: 'a b' }],
      ['counter 0', { ...good, counter: '0' }],
      ['counter with a leading zero', { ...good, counter: '07' }],
      ['counter as a number', { ...good, counter: 7 }],
      ['counter 2^63', { ...good, counter: '9223372036854775808' }],
      ['counter negative', { ...good, counter: '-7' }],
      ['issuedAt without milliseconds', { ...good, issuedAt: '2025-06-01T12:00:00Z' }],
      ['issuedAt with an offset', { ...good, issuedAt: '2025-06-01T12:00:00.000+00:00' }],
      ['issuedAt on 30 February', { ...good, issuedAt: '2025-02-30T12:00:00.000Z' }],
      ['a malformed operation', { ...good, operation: { op: 'key.revoke' } }],
      ['an unknown operation', { ...good, operation: { op: 'key.destroy', keyId: 'k' } }],
      ['a signature in lower case', { ...good, signature: (good['signature'] as string).toLowerCase() }],
      ['a signature of 63 bytes', { ...good, signature: (good['signature'] as string).slice(2) }],
      ['a DER signature', { ...good, signature: `3044${good['signature'] as string}` }],
    ];
    for (const [name, value] of malformed) {
      expect(codeOf(() => verifyReq(value, { lookup: () => { throw new Error(`looked up for ${name}`); } })), name).toBe('ERR_OPERATOR_SIGNATURE_INVALID');
    }
    for (const k of Object.keys(good)) {
      const { [k]: _gone, ...rest } = good;
      expect(codeOf(() => verifyReq(rest)), k).toBe('ERR_OPERATOR_SIGNATURE_INVALID');
    }
  });

  it('the largest counter, 2^63 - 1, is accepted', async () => {
    const r = verifyReq(await request(alice, { counter: (1n << 63n) - 1n }));
    expect(r.counter).toBe((1n << 63n) - 1n);
  });

  it('an operator the store does not know: ERR_OPERATOR_UNKNOWN (checked before the signature)', async () => {
    const req = await request(stranger);
    expectCode(() => verifyReq(req), 'ERR_OPERATOR_UNKNOWN');
    expectCode(() => verifyReq({ ...req, signature: '00'.repeat(64) }), 'ERR_OPERATOR_UNKNOWN');
  });

  it('a signature by another key, or a flipped bit: ERR_OPERATOR_SIGNATURE_INVALID', async () => {
    const byNora = wire(await createOperatorRequest(nora.signer, { storeId: STORE, operatorId: 'alice', counter: 7n, issuedAt: NOW, operation: REVOKE_NORTH }));
    expectCode(() => verifyReq(byNora), 'ERR_OPERATOR_SIGNATURE_INVALID');
    const good = await request();
    const sig = good['signature'] as string;
    const flipped = `${sig.slice(0, 10)}${sig[10] === '0' ? '1' : '0'}${sig.slice(11)}`;
    expectCode(() => verifyReq({ ...good, signature: flipped }), 'ERR_OPERATOR_SIGNATURE_INVALID');
  });

  it('the signature covers each field: changing any one after signing refuses the request', async () => {
    const good = await request();
    const sigOf = async (over: Partial<OperatorRequestFields>) => (await request(alice, over))['signature'];
    // storeId: signed for store-2, presented as store-1
    const forOther = await request(alice, { storeId: 'store-2' });
    expectCode(() => verifyReq({ ...forOther, storeId: STORE }), 'ERR_OPERATOR_SIGNATURE_INVALID');
    // operatorId: alice-twin has alice's key, so only the signature's coverage of the id refuses this
    expectCode(() => verifyReq({ ...good, operatorId: 'alice-twin' }), 'ERR_OPERATOR_SIGNATURE_INVALID');
    expect(verifyReq(await request(twin)).operatorId).toBe('alice-twin');
    expectCode(() => verifyReq({ ...good, counter: '8' }), 'ERR_OPERATOR_SIGNATURE_INVALID');
    expectCode(() => verifyReq({ ...good, issuedAt: at(1).toISOString() }), 'ERR_OPERATOR_SIGNATURE_INVALID');
    expectCode(() => verifyReq({ ...good, operation: { op: 'key.revoke', keyId: KEY_SOUTH } }), 'ERR_OPERATOR_SIGNATURE_INVALID');
    expectCode(() => verifyReq({ ...good, operation: { ...REVOKE_NORTH, reason: 'x' } }), 'ERR_OPERATOR_SIGNATURE_INVALID');
    await expectCodeAsync(async () => verifyReq({ ...good, signature: await sigOf({ counter: 8n }) }), 'ERR_OPERATOR_SIGNATURE_INVALID');
    // the key order of the operation as sent does not matter: the signature is over canonical JSON
    expect(verifyReq({ ...good, operation: reverseKeys(good['operation']) }).operationHash).toBe(operationHash(REVOKE_NORTH));
  });

  it('issuedAt within [now - maxAgeMs, now + maxFutureMs], both ends included: else ERR_OPERATOR_REQUEST_STALE', async () => {
    const issued = async (ms: number) => request(alice, { issuedAt: at(ms) });
    expect(verifyReq(await issued(-300_000)).operatorId).toBe('alice');
    const old = await issued(-300_001);
    expectCode(() => verifyReq(old), 'ERR_OPERATOR_REQUEST_STALE');
    expect(verifyReq(await issued(60_000)).operatorId).toBe('alice');
    const ahead = await issued(60_001);
    expectCode(() => verifyReq(ahead), 'ERR_OPERATOR_REQUEST_STALE');
    // the window is the caller's
    expect(verifyReq(old, { maxAgeMs: 300_001 }).operatorId).toBe('alice');
    await expectCodeAsync(async () => verifyReq(await issued(-1), { maxAgeMs: 0 }), 'ERR_OPERATOR_REQUEST_STALE');
    expect(verifyReq(await issued(0), { maxAgeMs: 0, maxFutureMs: 0 }).operatorId).toBe('alice');
    await expectCodeAsync(async () => verifyReq(await issued(1), { maxFutureMs: 0 }), 'ERR_OPERATOR_REQUEST_STALE');
    expect(errorOf(() => verifyReq(old)).detail).toBe(`past: ${at(-300_001).toISOString()}`);
    expect(errorOf(() => verifyReq(ahead)).detail).toBe(`future: ${at(60_001).toISOString()}`);
  });

  it('a counter not above the last accepted: ERR_OPERATOR_REPLAYED (equal and lower); the last may come from a function', async () => {
    const req = await request(); // counter 7
    expectCode(() => verifyReq(req, { lastCounter: 7n }), 'ERR_OPERATOR_REPLAYED');
    expectCode(() => verifyReq(req, { lastCounter: 8n }), 'ERR_OPERATOR_REPLAYED');
    expect(verifyReq(req, { lastCounter: 6n }).counter).toBe(7n);
    expect(verifyReq(req, { lastCounter: 0n }).counter).toBe(7n);
    expect(verifyReq(req, { lastCounter: undefined }).counter).toBe(7n);
    const seen: string[] = [];
    expectCode(() => verifyReq(req, { lastCounter: (id) => (seen.push(id), 7n) }), 'ERR_OPERATOR_REPLAYED');
    expect(seen).toEqual(['alice']);
    expect(verifyReq(req, { lastCounter: (id) => (id === 'alice' ? 6n : 100n) }).counter).toBe(7n);
    expect(errorOf(() => verifyReq(req, { lastCounter: 7n })).detail).toBe('7 <= 7');
  });

  it('checks in order: shape, operator, signature, window, counter', async () => {
    const stale = await request(alice, { issuedAt: at(-HOUR) });
    // stale and replayed: stale
    expectCode(() => verifyReq(stale, { lastCounter: 100n }), 'ERR_OPERATOR_REQUEST_STALE');
    // bad signature, stale and replayed: signature
    expectCode(() => verifyReq({ ...stale, counter: '8' }, { lastCounter: 100n }), 'ERR_OPERATOR_SIGNATURE_INVALID');
    // unknown operator with a bad signature, stale: unknown
    expectCode(() => verifyReq({ ...stale, operatorId: 'nobody' }, { lastCounter: 100n }), 'ERR_OPERATOR_UNKNOWN');
    // another store, unknown operator: malformed
    expectCode(() => verifyReq({ ...stale, operatorId: 'nobody' }, { storeId: 'store-2' }), 'ERR_OPERATOR_SIGNATURE_INVALID');
  });

  it('property: any single-character change to a signed request is refused', async () => {
    const text = JSON.stringify(await request());
    expect(verifyReq(JSON.parse(text)).operatorId).toBe('alice');
    fc.assert(
      fc.property(fc.nat({ max: text.length - 1 }), fc.integer({ min: 0x20, max: 0x7e }), (i, c) => {
        const ch = String.fromCharCode(c);
        fc.pre(text[i] !== ch);
        const changed = `${text.slice(0, i)}${ch}${text.slice(i + 1)}`;
        let value: unknown;
        try {
          value = JSON.parse(changed);
        } catch {
          return; // not even JSON
        }
        const code = codeOf(() => verifyReq(value, { lastCounter: 6n }));
        expect(['ERR_OPERATOR_SIGNATURE_INVALID', 'ERR_OPERATOR_UNKNOWN']).toContain(code);
      }),
      { numRuns: 500 },
    );
  });

  it('bad options, or a lookup that returns a malformed record or another operator’s, are the caller’s error', async () => {
    const req = await request();
    const inval = (over: Record<string, unknown>) => expectCode(() => verifyReq(req, over as Partial<VerifyOperatorRequestOptions>), 'ERR_INVALID_ARGUMENT');
    inval({ now: new Date(Number.NaN) });
    inval({ now: NOW.getTime() });
    inval({ storeId: 'store 1' });
    inval({ lookup: OPERATORS });
    inval({ lastCounter: 6 });
    inval({ lastCounter: -1n });
    inval({ lastCounter: () => 6 });
    inval({ maxAgeMs: -1 });
    inval({ maxAgeMs: 86_400_001 });
    inval({ maxFutureMs: 1.5 });
    inval({ lookup: () => ({ ...info(alice), grants: [] }) });
    inval({ lookup: () => info(nora) });
    inval({ extra: 1 });
    // options are checked first, and forgetting the last counter is not the same as having none
    expectCode(() => verifyReq(undefined, { lastCounter: 6 as unknown as bigint }), 'ERR_INVALID_ARGUMENT');
    const { lastCounter: _omitted, ...withoutLast } = { storeId: STORE, lookup, lastCounter: undefined, now: NOW };
    expectCode(() => verifyOperatorRequest(req, withoutLast as VerifyOperatorRequestOptions), 'ERR_INVALID_ARGUMENT');
    expect(verifyReq(req, { maxAgeMs: 86_400_000, maxFutureMs: 86_400_000 }).operatorId).toBe('alice');
  });
});

describe('createOperatorRequest', () => {
  it('refuses fields out of range (ERR_INVALID_ARGUMENT)', async () => {
    const make = (over: Record<string, unknown>) => createOperatorRequest(alice.signer, { storeId: STORE, operatorId: 'alice', counter: 7n, issuedAt: NOW, operation: REVOKE_NORTH, ...over } as OperatorRequestFields);
    for (const over of [
      { counter: 0n },
      { counter: 1n << 63n },
      { counter: 7 },
      { issuedAt: new Date(Number.NaN) },
      { issuedAt: new Date('+010000-01-01T00:00:00.000Z') },
      { issuedAt: NOW.toISOString() },
      { storeId: '' },
      { operatorId: 'a b' },
      { operation: { op: 'key.revoke' } },
      { extra: 1 },
    ]) {
      await expectCodeAsync(() => make(over), 'ERR_INVALID_ARGUMENT');
    }
    await expectCodeAsync(() => createOperatorRequest({ publicKey: new Uint8Array(65), sign: alice.signer.sign } as Signer, { storeId: STORE, operatorId: 'alice', counter: 7n, issuedAt: NOW, operation: REVOKE_NORTH }), 'ERR_INVALID_ARGUMENT');
  });

  it('refuses a signer whose signature does not verify under its own public key (ERR_OPERATOR_SIGNATURE_INVALID)', async () => {
    const fields = { storeId: STORE, operatorId: 'alice', counter: 7n, issuedAt: NOW, operation: REVOKE_NORTH };
    const liar: Signer = { publicKey: alice.signer.publicKey, sign: (m) => nora.signer.sign(m) };
    await expectCodeAsync(() => createOperatorRequest(liar, fields), 'ERR_OPERATOR_SIGNATURE_INVALID');
    const short: Signer = { publicKey: alice.signer.publicKey, sign: async (m) => (await alice.signer.sign(m)).subarray(1) };
    await expectCodeAsync(() => createOperatorRequest(short, fields), 'ERR_OPERATOR_SIGNATURE_INVALID');
  });
});

// ---- policy ----------------------------------------------------------------------------------

describe('the access policy', () => {
  const op = {
    move: (count: number): Operation => ({ op: 'device.move', organisation: ORG, toPortfolioId: 'north', count, listSha256: HASH }),
    assign: (count: number): Operation => ({ op: 'device.assign', organisation: ORG, count, listSha256: HASH }),
  };

  it('the default: one approval for operator and policy changes, key generation and revocation, and bulk device changes from 1000', () => {
    expect(parseAccessPolicy(DEFAULT_ACCESS_POLICY)).toEqual(DEFAULT_ACCESS_POLICY);
    expect(Object.isFrozen(DEFAULT_ACCESS_POLICY.rules[0])).toBe(true);
    const needs = Object.fromEntries(EVERY_OPERATION.map((o) => [o.op, requiredApprovals(DEFAULT_ACCESS_POLICY, o)]));
    expect(needs).toEqual({
      'organisation.add': 0,
      'portfolio.create': 0,
      'key.generate': 1,
      'key.csr': 0,
      'key.attach': 0,
      'key.rotate': 0,
      'key.retire': 0,
      'key.revoke': 1,
      'device.assign': 0,
      'device.move': 0,
      'device.credentialsUpdated': 0,
      'operator.add': 1,
      'operator.remove': 1,
      'policy.set': 1,
      'session.sign': 0,
      'session.audit': 0,
    });
    expect(requiredApprovals(DEFAULT_ACCESS_POLICY, op.move(999))).toBe(0);
    expect(requiredApprovals(DEFAULT_ACCESS_POLICY, op.move(1000))).toBe(1);
    expect(requiredApprovals(DEFAULT_ACCESS_POLICY, op.assign(999))).toBe(0);
    expect(requiredApprovals(DEFAULT_ACCESS_POLICY, op.assign(1000))).toBe(1);
  });

  it('the highest count of the rules that apply wins', () => {
    const p = parseAccessPolicy({
      v: 1,
      rules: [
        { operation: 'device.move', approvals: 2, minDevices: 1000 },
        { operation: 'device.move', approvals: 1, minDevices: 10 },
        { operation: 'device.move', approvals: 3, minDevices: 50_000 },
        { operation: 'key.revoke', approvals: 2 },
      ],
    });
    expect([9, 10, 999, 1000, 49_999, 50_000].map((n) => requiredApprovals(p, op.move(n)))).toEqual([0, 1, 1, 2, 2, 3]);
    expect(requiredApprovals(p, op.assign(100_000))).toBe(0);
    const always = parseAccessPolicy({ v: 1, rules: [{ operation: 'device.move', approvals: 1 }, { operation: 'device.move', approvals: 2, minDevices: 100 }] });
    expect(requiredApprovals(always, op.move(1))).toBe(1);
    expect(requiredApprovals(always, op.move(100))).toBe(2);
    expect(requiredApprovals(parseAccessPolicy({ v: 1, rules: [] }), REVOKE_NORTH)).toBe(0);
  });

  const rule = (r: Record<string, unknown>) => ({ v: 1, rules: [r] });
  const defects: [string, unknown][] = [
    ['not an object', 'policy'],
    ['null', null],
    ['v 2', { v: 2, rules: [] }],
    ['no v', { rules: [] }],
    ['no rules', { v: 1 }],
    ['an extra field', { v: 1, rules: [], note: 'x' }],
    ['rules not an array', { v: 1, rules: {} }],
    ['65 rules', { v: 1, rules: Array.from({ length: 65 }, (_, i) => ({ operation: 'device.move', approvals: 1, minDevices: i + 1 })) }],
    ['a rule with another field', rule({ operation: 'key.revoke', approvals: 1, note: 'x' })],
    ['a rule without approvals', rule({ operation: 'key.revoke' })],
    ['a rule without an operation', rule({ approvals: 1 })],
    ['an unknown operation', rule({ operation: 'key.destroy', approvals: 1 })],
    ['operation toString', rule({ operation: 'toString', approvals: 1 })],
    ['operation __proto__', JSON.parse('{"v":1,"rules":[{"operation":"__proto__","approvals":1}]}')],
    ['approvals 0', rule({ operation: 'key.revoke', approvals: 0 })],
    ['approvals 17', rule({ operation: 'key.revoke', approvals: 17 })],
    ['approvals 1.5', rule({ operation: 'key.revoke', approvals: 1.5 })],
    ['approvals "1"', rule({ operation: 'key.revoke', approvals: '1' })],
    ['minDevices on key.revoke', rule({ operation: 'key.revoke', approvals: 1, minDevices: 10 })],
    ['minDevices 0', rule({ operation: 'device.move', approvals: 1, minDevices: 0 })],
    ['minDevices 100001', rule({ operation: 'device.move', approvals: 1, minDevices: 100_001 })],
    ['minDevices 1.5', rule({ operation: 'device.move', approvals: 1, minDevices: 1.5 })],
    ['the same operation twice', { v: 1, rules: [{ operation: 'key.revoke', approvals: 1 }, { operation: 'key.revoke', approvals: 2 }] }],
    ['the same operation and minDevices twice', { v: 1, rules: [{ operation: 'device.move', approvals: 1, minDevices: 5 }, { operation: 'device.move', approvals: 2, minDevices: 5 }] }],
  ];
  it.each(defects)('refuses a policy with %s (ERR_ACCESS_POLICY_INVALID)', (_name, value) => {
    expectCode(() => parseAccessPolicy(value), 'ERR_ACCESS_POLICY_INVALID');
    expectCode(() => requiredApprovals(value as AccessPolicy, REVOKE_NORTH), 'ERR_ACCESS_POLICY_INVALID');
  });

  it('the bounds themselves are accepted: 64 rules, 16 approvals, minDevices 100000', () => {
    expect(() => parseAccessPolicy({ v: 1, rules: Array.from({ length: 64 }, (_, i) => ({ operation: 'device.move', approvals: 16, minDevices: 100_000 - i })) })).not.toThrow();
  });

  it('policyHash: SHA-256 of the domain line and the canonical JSON, whatever the key order', () => {
    const h = policyHash(DEFAULT_ACCESS_POLICY);
    expect(h).toBe(sha256Hex(`smki-keystore access policy v1\n${canonicalJson(DEFAULT_ACCESS_POLICY)}`));
    expect(policyHash(reverseKeys(DEFAULT_ACCESS_POLICY))).toBe(h);
    expect(policyHash({ v: 1, rules: [{ operation: 'key.revoke', approvals: 2 }] })).not.toBe(policyHash({ v: 1, rules: [{ operation: 'key.revoke', approvals: 1 }] }));
    expectCode(() => policyHash({ v: 1, rules: [{ operation: 'key.revoke', approvals: 0 }] }), 'ERR_ACCESS_POLICY_INVALID');
  });

  it('an operation that needs approvals cannot be executed directly (ERR_APPROVAL_REQUIRED)', () => {
    expectCode(() => assertNoApprovalsRequired(DEFAULT_ACCESS_POLICY, REVOKE_NORTH), 'ERR_APPROVAL_REQUIRED');
    expect(errorOf(() => assertNoApprovalsRequired(DEFAULT_ACCESS_POLICY, REVOKE_NORTH)).detail).toBe('1');
    expect(() => assertNoApprovalsRequired(DEFAULT_ACCESS_POLICY, { op: 'key.rotate', keyId: KEY_NORTH })).not.toThrow();
    expect(() => assertNoApprovalsRequired(DEFAULT_ACCESS_POLICY, op.move(999))).not.toThrow();
    expectCode(() => assertNoApprovalsRequired(DEFAULT_ACCESS_POLICY, op.move(1000)), 'ERR_APPROVAL_REQUIRED');
  });
});

// ---- proposals and approvals --------------------------------------------------------------------

const PROPOSAL_ID = 'ab'.repeat(16);
const proposalOf = (operation: Operation, proposer = 'alice', over: { createdAt?: Date; expiresAt?: Date } = {}): Proposal =>
  createProposal({ storeId: STORE, proposer, operation, createdAt: over.createdAt ?? NOW, expiresAt: over.expiresAt ?? at(HOUR), proposalId: PROPOSAL_ID });
const REVOKE_PROPOSAL = proposalOf(REVOKE_NORTH);
const TWO_FOR_REVOKE = parseAccessPolicy({ v: 1, rules: [{ operation: 'key.revoke', approvals: 2 }] });

async function approve(p: Party, over: Partial<ApprovalFields> = {}, proposal: Proposal = REVOKE_PROPOSAL): Promise<Record<string, unknown>> {
  return wire(
    await createApproval(p.signer, { storeId: STORE, proposalId: proposal.proposalId, operationHash: proposal.operationHash, approverId: p.id, expiresAt: at(HOUR), ...over }),
  );
}

function verifyAppr(value: unknown, over: { proposal?: Proposal; scope?: AccessScope | readonly AccessScope[]; now?: Date } = {}) {
  return verifyApproval(value, { proposal: REVOKE_PROPOSAL, lookup, scope: NORTH, now: NOW, ...over });
}

function quorum(approvals: readonly unknown[], over: Partial<QuorumOptions> = {}) {
  return evaluateQuorum({ proposal: REVOKE_PROPOSAL, approvals, lookup, policy: TWO_FOR_REVOKE, scope: NORTH, now: NOW, ...over });
}

describe('proposals', () => {
  it('createProposal names the operation by its hash; its id is 32 random lower-case hex digits by default', () => {
    expect(REVOKE_PROPOSAL).toEqual({
      proposalId: PROPOSAL_ID,
      storeId: STORE,
      proposer: 'alice',
      operation: REVOKE_NORTH,
      operationHash: operationHash(REVOKE_NORTH),
      createdAt: NOW.toISOString(),
      expiresAt: at(HOUR).toISOString(),
    });
    expect(Object.isFrozen(REVOKE_PROPOSAL)).toBe(true);
    const a = createProposal({ storeId: STORE, proposer: 'alice', operation: REVOKE_NORTH, createdAt: NOW, expiresAt: at(HOUR) });
    const b = createProposal({ storeId: STORE, proposer: 'alice', operation: REVOKE_NORTH, createdAt: NOW, expiresAt: at(HOUR) });
    expect(a.proposalId).toMatch(/^[0-9a-f]{32}$/);
    expect(a.proposalId).not.toBe(b.proposalId);
    expect(parseProposal(wire(a))).toEqual(a);
  });

  it('refuses a proposal that expires before it is made, lives longer than 30 days, or is malformed (ERR_INVALID_ARGUMENT)', () => {
    expectCode(() => proposalOf(REVOKE_NORTH, 'alice', { expiresAt: NOW }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => proposalOf(REVOKE_NORTH, 'alice', { expiresAt: at(30 * 24 * HOUR + 1) }), 'ERR_INVALID_ARGUMENT');
    expect(proposalOf(REVOKE_NORTH, 'alice', { expiresAt: at(30 * 24 * HOUR) }).expiresAt).toBe(at(30 * 24 * HOUR).toISOString());
    expect(proposalOf(REVOKE_NORTH, 'alice', { expiresAt: at(1) }).expiresAt).toBe(at(1).toISOString());
    const good = wire(REVOKE_PROPOSAL);
    for (const over of [
      { proposalId: PROPOSAL_ID.toUpperCase() },
      { proposalId: 'ab'.repeat(15) },
      { storeId: '' },
      { proposer: 'a b' },
      { operation: { op: 'key.revoke' } },
      { operationHash: HASH.toLowerCase() },
      { createdAt: 'yesterday' },
      { expiresAt: '2025-06-01T13:00:00Z' },
      { extra: 1 },
    ]) {
      expectCode(() => parseProposal({ ...good, ...over }), 'ERR_INVALID_ARGUMENT');
    }
    expectCode(() => createProposal({ storeId: STORE, proposer: 'alice', operation: REVOKE_NORTH, createdAt: NOW, expiresAt: at(HOUR), proposalId: 'xyz' }), 'ERR_INVALID_ARGUMENT');
  });

  it('a proposal whose hash is not its operation’s is refused (ERR_OPERATION_MISMATCH)', () => {
    expectCode(() => parseProposal({ ...wire(REVOKE_PROPOSAL), operationHash: HASH }), 'ERR_OPERATION_MISMATCH');
    expectCode(() => parseProposal({ ...wire(REVOKE_PROPOSAL), operation: { op: 'key.revoke', keyId: KEY_SOUTH } }), 'ERR_OPERATION_MISMATCH');
  });

  it('checkOperationMatches: the operation executed is the one proposed, or ERR_OPERATION_MISMATCH', () => {
    expect(() => checkOperationMatches(REVOKE_PROPOSAL, reverseKeys(REVOKE_NORTH))).not.toThrow();
    expectCode(() => checkOperationMatches(REVOKE_PROPOSAL, { op: 'key.revoke', keyId: KEY_SOUTH }), 'ERR_OPERATION_MISMATCH');
    expectCode(() => checkOperationMatches(REVOKE_PROPOSAL, { op: 'key.revoke', keyId: KEY_NORTH, reason: 'x' }), 'ERR_OPERATION_MISMATCH');
    expectCode(() => checkOperationMatches(REVOKE_PROPOSAL, { op: 'key.retire', keyId: KEY_NORTH }), 'ERR_OPERATION_MISMATCH');
    expectCode(() => checkOperationMatches(REVOKE_PROPOSAL, { op: 'key.revoke' } as unknown as Operation), 'ERR_INVALID_ARGUMENT');
  });
});

describe('verifyApproval', () => {
  it('verifies an approval by an operator who holds the role over the scope', async () => {
    expect(verifyAppr(await approve(nora))).toEqual({ approverId: 'nora', expiresAt: at(HOUR).toISOString() });
    expect(verifyAppr(await approve(bob)).approverId).toBe('bob');
  });

  it('signs, with the approver’s key, the domain line and the canonical JSON of every field but the signature (a fixed text)', async () => {
    const a = (await approve(nora)) as unknown as Approval;
    const text = `smki-keystore approval v1\n{"approverId":"nora","expiresAt":"2025-06-01T13:00:00.000Z","operationHash":"${REVOKE_PROPOSAL.operationHash}","proposalId":"${PROPOSAL_ID}","storeId":"store-1","v":1}`;
    expect(nodeVerify('sha256', Buffer.from(text), { key: nora.key, dsaEncoding: 'ieee-p1363' }, Buffer.from(a.signature, 'hex'))).toBe(true);
  });

  it('malformed, or for another store, proposal or operation: ERR_APPROVAL_INVALID', async () => {
    const good = await approve(nora);
    const bad: [string, unknown][] = [
      ['not an object', 'approval'],
      ['an extra field', { ...good, note: 1 }],
      ['v 2', { ...good, v: 2 }],
      ['expiresAt without milliseconds', { ...good, expiresAt: '2025-06-01T13:00:00Z' }],
      ['a signature in lower case', { ...good, signature: (good['signature'] as string).toLowerCase() }],
      ['another store (signed so)', await approve(nora, { storeId: 'store-2' })],
      ['another proposal (signed so)', await approve(nora, { proposalId: 'cd'.repeat(16) })],
      ['another operation hash (signed so)', await approve(nora, { operationHash: HASH })],
      ['an approver the store does not know', await approve(stranger)],
    ];
    for (const [name, value] of bad) expect(codeOf(() => verifyAppr(value)), name).toBe('ERR_APPROVAL_INVALID');
    for (const k of Object.keys(good)) {
      const { [k]: _gone, ...rest } = good;
      expect(codeOf(() => verifyAppr(rest)), k).toBe('ERR_APPROVAL_INVALID');
    }
  });

  it('the signature covers each field: changing any one after signing refuses the approval (ERR_APPROVAL_INVALID)', async () => {
    const good = await approve(nora);
    // store, proposal and operation hash: signed for others, presented as this proposal's
    await expectCodeAsync(async () => verifyAppr({ ...(await approve(nora, { storeId: 'store-2' })), storeId: STORE }), 'ERR_APPROVAL_INVALID');
    await expectCodeAsync(async () => verifyAppr({ ...(await approve(nora, { proposalId: 'cd'.repeat(16) })), proposalId: PROPOSAL_ID }), 'ERR_APPROVAL_INVALID');
    await expectCodeAsync(async () => verifyAppr({ ...(await approve(nora, { operationHash: HASH })), operationHash: REVOKE_PROPOSAL.operationHash }), 'ERR_APPROVAL_INVALID');
    // approverId: alice-twin has alice's key and alice's role, only the signature refuses this
    const byAlice = await approve(alice);
    expectCode(() => verifyAppr({ ...byAlice, approverId: 'alice-twin' }), 'ERR_APPROVAL_INVALID');
    expect(verifyAppr(await approve(twin)).approverId).toBe('alice-twin');
    expectCode(() => verifyAppr({ ...good, expiresAt: at(HOUR + 1).toISOString() }), 'ERR_APPROVAL_INVALID');
    await expectCodeAsync(async () => verifyAppr({ ...good, signature: (await approve(bob))['signature'] }), 'ERR_APPROVAL_INVALID');
    const byOther = wire(await createApproval(carol.signer, { storeId: STORE, proposalId: PROPOSAL_ID, operationHash: REVOKE_PROPOSAL.operationHash, approverId: 'nora', expiresAt: at(HOUR) }));
    expectCode(() => verifyAppr(byOther), 'ERR_APPROVAL_INVALID');
  });

  it('the proposer cannot approve its own proposal (ERR_APPROVAL_DUPLICATE)', async () => {
    const own = await approve(alice);
    expectCode(() => verifyApproval(own, { proposal: REVOKE_PROPOSAL, lookup, scope: NORTH, now: NOW }), 'ERR_APPROVAL_DUPLICATE');
    // a forged approval in the proposer's name is invalid, not a duplicate
    await expectCodeAsync(async () => verifyAppr({ ...(await approve(nora)), approverId: 'alice' }), 'ERR_APPROVAL_INVALID');
  });

  it('an approver who lacks the operation’s role over its scope: ERR_APPROVAL_INVALID', async () => {
    await expectCodeAsync(async () => verifyAppr(await approve(carol)), 'ERR_APPROVAL_INVALID'); // custodian of south, key of north
    await expectCodeAsync(async () => verifyAppr(await approve(dave)), 'ERR_APPROVAL_INVALID'); // device manager
    await expectCodeAsync(async () => verifyAppr(await approve(erin)), 'ERR_APPROVAL_INVALID'); // administrators approve their own kind of operation only
    await expectCodeAsync(async () => verifyAppr(await approve(root)), 'ERR_APPROVAL_INVALID');
    await expectCodeAsync(async () => verifyAppr(await approve(audrey)), 'ERR_APPROVAL_INVALID');
    // the scope the store gives counts: nora holds north only, and the key is in south
    const southKey = proposalOf({ op: 'key.revoke', keyId: KEY_SOUTH }, 'carol');
    await expectCodeAsync(async () => verifyAppr(await approve(nora, {}, southKey), { proposal: southKey, scope: SOUTH }), 'ERR_APPROVAL_INVALID');
    expect(verifyAppr(await approve(bob, {}, southKey), { proposal: southKey, scope: SOUTH }).approverId).toBe('bob');
  });

  it('administrators approve operator and policy changes', async () => {
    const add: Operation = { op: 'operator.add', operatorId: 'frank', publicKey: toHex(stranger.signer.publicKey), grants: [grant('signer', ORG, 'north')] };
    const p = proposalOf(add, 'root');
    expect(verifyAppr(await approve(erin, {}, p), { proposal: p, scope: [] }).approverId).toBe('erin');
    await expectCodeAsync(async () => verifyAppr(await approve(bob, {}, p), { proposal: p, scope: [] }), 'ERR_APPROVAL_INVALID');
    const policy = proposalOf({ op: 'policy.set', policySha256: policyHash(TWO_FOR_REVOKE) }, 'erin');
    const root2 = party('root2');
    const withRoot2 = (id: string) => (id === 'root2' ? { operatorId: 'root2', publicKey: root2.signer.publicKey, grants: [grant('administrator', '*')] } : lookup(id));
    expect(verifyApproval(await approve(root2, {}, policy), { proposal: policy, lookup: withRoot2, scope: [], now: NOW }).approverId).toBe('root2');
    // an administrator of one organisation does not approve the store's policy
    await expectCodeAsync(async () => verifyAppr(await approve(erin, {}, policy), { proposal: { ...policy, proposer: 'root' }, scope: [] }), 'ERR_APPROVAL_INVALID');
  });

  it('an approval expired at now: ERR_PROPOSAL_EXPIRED (the instant of expiry included)', async () => {
    const a = await approve(nora, { expiresAt: at(10) });
    expect(verifyAppr(a, { now: at(9) }).approverId).toBe('nora');
    expectCode(() => verifyAppr(a, { now: at(10) }), 'ERR_PROPOSAL_EXPIRED');
  });

  it('a proposal expired at now: ERR_PROPOSAL_EXPIRED (the instant of expiry included)', async () => {
    const a = await approve(nora, { expiresAt: at(2 * HOUR) });
    expect(verifyAppr(a, { now: at(HOUR - 1) }).approverId).toBe('nora');
    expectCode(() => verifyAppr(a, { now: at(HOUR) }), 'ERR_PROPOSAL_EXPIRED');
  });

  it('bad options are the caller’s error', async () => {
    const a = await approve(nora);
    expectCode(() => verifyAppr(a, { now: new Date(Number.NaN) }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => verifyAppr(a, { scope: [] }), 'ERR_INVALID_ARGUMENT');
    const gen = proposalOf({ op: 'key.generate', organisation: ORG, portfolioId: 'north', purpose: 'signing' });
    expect(verifyAppr(await approve(nora, {}, gen), { proposal: gen, scope: [] }).approverId).toBe('nora');
    expectCode(() => verifyAppr(a, { proposal: gen, scope: { organisation: ORG2, portfolioIds: [] } }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => verifyAppr(a, { proposal: { ...REVOKE_PROPOSAL, proposer: 'a b' } }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => verifyApproval(a, { proposal: REVOKE_PROPOSAL, lookup: 'no' as unknown as typeof lookup, scope: NORTH, now: NOW }), 'ERR_INVALID_ARGUMENT');
  });
});

describe('evaluateQuorum and assertQuorum: M distinct approvers other than the proposer, fail closed', () => {
  it('counts distinct approvers against the policy: not met, then met exactly', async () => {
    const one = quorum([await approve(nora)]);
    expect(one).toEqual({ required: 2, approvers: ['nora'], met: false });
    expect(Object.isFrozen(one)).toBe(true);
    const two = quorum([await approve(nora), await approve(bob)]);
    expect(two).toEqual({ required: 2, approvers: ['bob', 'nora'], met: true });
    expect(quorum([], { policy: DEFAULT_ACCESS_POLICY })).toEqual({ required: 1, approvers: [], met: false });
    expect(quorum([], { policy: { v: 1, rules: [] } })).toEqual({ required: 0, approvers: [], met: true });
  });

  it('one operator twice: ERR_APPROVAL_DUPLICATE (even with two valid approvals)', async () => {
    const first = await approve(nora);
    const second = await approve(nora, { expiresAt: at(HOUR + 5) });
    expect(verifyAppr(second).approverId).toBe('nora');
    expectCode(() => quorum([first, second]), 'ERR_APPROVAL_DUPLICATE');
    await expectCodeAsync(async () => quorum([first, first, await approve(bob)]), 'ERR_APPROVAL_DUPLICATE');
  });

  it('the proposer among the approvals: ERR_APPROVAL_DUPLICATE', async () => {
    await expectCodeAsync(async () => quorum([await approve(nora), await approve(bob), await approve(alice)]), 'ERR_APPROVAL_DUPLICATE');
  });

  it('one bad approval refuses the whole set, with its code', async () => {
    const good = [await approve(nora), await approve(bob)];
    await expectCodeAsync(async () => quorum([...good, await approve(carol)]), 'ERR_APPROVAL_INVALID');
    await expectCodeAsync(async () => quorum([...good, { ...(await approve(twin)), expiresAt: at(2 * HOUR).toISOString() }]), 'ERR_APPROVAL_INVALID');
    await expectCodeAsync(async () => quorum([...good, await approve(twin, { expiresAt: at(1) })], { now: at(1) }), 'ERR_PROPOSAL_EXPIRED');
    expectCode(() => quorum(good, { now: at(HOUR) }), 'ERR_PROPOSAL_EXPIRED');
    // the proposal's own expiry, with approvals that outlive it, or with none at all
    const outliving = [await approve(nora, { expiresAt: at(2 * HOUR) }), await approve(bob, { expiresAt: at(2 * HOUR) })];
    expect(quorum(outliving, { now: at(HOUR - 1) }).met).toBe(true);
    expectCode(() => quorum(outliving, { now: at(HOUR) }), 'ERR_PROPOSAL_EXPIRED');
    expectCode(() => quorum([], { now: at(HOUR), policy: { v: 1, rules: [] } }), 'ERR_PROPOSAL_EXPIRED');
    expectCode(() => quorum(good, { policy: { v: 1, rules: [{ operation: 'key.revoke', approvals: 0 }] } }), 'ERR_ACCESS_POLICY_INVALID');
    expectCode(() => quorum(Array.from({ length: 65 }, () => good[0])), 'ERR_INVALID_ARGUMENT');
    expectCode(() => quorum('all' as unknown as unknown[]), 'ERR_INVALID_ARGUMENT');
  });

  it('assertQuorum: ERR_PROPOSAL_QUORUM_NOT_MET with have/required, or the result when met exactly', async () => {
    const one = [await approve(nora)];
    const opts = { proposal: REVOKE_PROPOSAL, lookup, policy: TWO_FOR_REVOKE, scope: NORTH, now: NOW };
    expectCode(() => assertQuorum({ ...opts, approvals: one }), 'ERR_PROPOSAL_QUORUM_NOT_MET');
    expect(errorOf(() => assertQuorum({ ...opts, approvals: one })).detail).toBe('1/2');
    expect(errorOf(() => assertQuorum({ ...opts, approvals: [] })).detail).toBe('0/2');
    expect(assertQuorum({ ...opts, approvals: [...one, await approve(bob)] })).toEqual({ required: 2, approvers: ['bob', 'nora'], met: true });
  });
});

// ---- device lists ----------------------------------------------------------------------------

describe('device and assignment list digests (the count and listSha256 of device.move and device.assign)', () => {
  it('deviceListDigest: sorted canonical EUI-64s, one per line, after the domain line; order and spelling do not matter', () => {
    const d = deviceListDigest([M2, '00-db-12-34-56-78-90-a1']);
    expect(d).toEqual({ count: 2, listSha256: sha256Hex(`smki-keystore device list v1\n${M1}\n${M2}\n`) });
    expect(deviceListDigest([M1, M2])).toEqual(d);
    expect(deviceListDigest([M1]).listSha256).not.toBe(d.listSha256);
  });

  it('assignmentListDigest: each device with its portfolio; the portfolio changes the digest', () => {
    const d = assignmentListDigest([
      { device: M2, portfolioId: 'south' },
      { device: M1, portfolioId: 'north' },
    ]);
    expect(d).toEqual({ count: 2, listSha256: sha256Hex(`smki-keystore assignment list v1\n${M1} north\n${M2} south\n`) });
    expect(assignmentListDigest([{ device: M1, portfolioId: 'south' }, { device: M2, portfolioId: 'south' }]).listSha256).not.toBe(d.listSha256);
    expect(deviceListDigest([M1, M2]).listSha256).not.toBe(d.listSha256);
  });

  it('refuses an empty list, a device twice, too many devices, and malformed entries', () => {
    expectCode(() => deviceListDigest([]), 'ERR_INVALID_ARGUMENT');
    expectCode(() => deviceListDigest([M1, '00db1234567890a1']), 'ERR_INVALID_ARGUMENT');
    expectCode(() => deviceListDigest([M1, 'not an eui']), 'ERR_EUI64_INVALID');
    expectCode(() => deviceListDigest('00DB1234567890A1' as unknown as string[]), 'ERR_INVALID_ARGUMENT');
    const many = Array.from({ length: 100_001 }, (_, i) => i.toString(16).toUpperCase().padStart(16, '0'));
    expectCode(() => deviceListDigest(many), 'ERR_INVALID_ARGUMENT');
    expect(deviceListDigest(many.slice(1)).count).toBe(100_000);
    expectCode(() => assignmentListDigest([]), 'ERR_INVALID_ARGUMENT');
    expectCode(() => assignmentListDigest([{ device: M1, portfolioId: 'north' }, { device: M1, portfolioId: 'south' }]), 'ERR_INVALID_ARGUMENT');
    expectCode(() => assignmentListDigest([{ device: M1, portfolioId: 'no way' }]), 'ERR_INVALID_ARGUMENT');
    expectCode(() => assignmentListDigest([{ device: M1 } as unknown as { device: string; portfolioId: string }]), 'ERR_INVALID_ARGUMENT');
    expectCode(() => assignmentListDigest([{ device: M1, portfolioId: 'north', installed: {} } as { device: string; portfolioId: string }]), 'ERR_INVALID_ARGUMENT');
  });
});

// ---- plain data only -------------------------------------------------------------------------

describe('values that are not plain data', () => {
  const trap = () => {
    throw new Error('trap');
  };
  const hostile = () => new Proxy({}, { ownKeys: trap, getOwnPropertyDescriptor: trap });

  it('a Proxy whose traps throw is refused with the caller’s code, never with its own error', async () => {
    expectCode(() => canonicalJson(hostile()), 'ERR_INVALID_ARGUMENT');
    expectCode(() => parseOperation(hostile()), 'ERR_INVALID_ARGUMENT');
    expectCode(() => parseOperatorInfo(hostile()), 'ERR_INVALID_ARGUMENT');
    expectCode(() => verifyReq(hostile()), 'ERR_OPERATOR_SIGNATURE_INVALID');
    const good = await request();
    expectCode(() => verifyReq({ ...good, operation: hostile() }), 'ERR_OPERATOR_SIGNATURE_INVALID');
    expectCode(() => parseAccessPolicy(hostile()), 'ERR_ACCESS_POLICY_INVALID');
    expectCode(() => verifyAppr(hostile()), 'ERR_APPROVAL_INVALID');
    expectCode(() => parseProposal(hostile()), 'ERR_INVALID_ARGUMENT');
    expectCode(() => authorise(info(bob), REVOKE_NORTH, hostile() as AccessScope), 'ERR_INVALID_ARGUMENT');
    expectCode(() => deviceListDigest(new Proxy([M1], { ownKeys: trap, getOwnPropertyDescriptor: trap })), 'ERR_INVALID_ARGUMENT');
  });

  it('a field read through a getter is refused, so what is verified is what is returned', async () => {
    const good = await request();
    let reads = 0;
    const sneaky = Object.defineProperty({ ...good }, 'counter', {
      get: () => (++reads === 1 ? '7' : '8'),
      enumerable: true,
    });
    expectCode(() => verifyReq(sneaky), 'ERR_OPERATOR_SIGNATURE_INVALID');
    expect(reads).toBe(0);
  });
});

describe('each structural check refuses with its own detail (so none hides behind another)', () => {
  it('objects, fields, arrays and dates', async () => {
    const good = await request();
    const { counter: _c, ...noCounter } = good;
    const hiddenCounter = Object.defineProperty({ ...noCounter }, 'counter', { value: '7', enumerable: false });
    const getterCounter = Object.defineProperty({ ...noCounter }, 'counter', { get: () => '7', enumerable: true });
    const withOp = (operation: unknown) => ({ ...good, operation });
    const sign = (portfolioIds: unknown) => withOp({ op: 'session.sign', organisation: ORG, portfolioIds });
    const holed: unknown[] = [];
    holed[1] = 'north';
    const cases: [string, unknown, string][] = [
      ['a number', 42, 'request is not an object'],
      ['null inside', withOp(null), 'the operation is not an object'],
      ['a string operation', withOp('key.revoke'), 'the operation is not an object'],
      ['an operation without op', withOp({ keyId: KEY_NORTH }), 'the operation has no op'],
      ['an unknown op', withOp({ op: 'key.destroy', keyId: KEY_NORTH }), 'unknown operation "key.destroy"'],
      ['a Date', new Date(0), 'request is not a plain object'],
      ['an array', [good], 'request is not a plain object'],
      ['a symbol key', { ...good, [Symbol('s')]: 1 }, 'request has a field it does not allow: a symbol'],
      ['an extra field', { ...good, note: 1 }, 'request has a field it does not allow: "note"'],
      ['a hidden field', hiddenCounter, 'request.counter is not a plain data field'],
      ['a getter', getterCounter, 'request.counter is not a plain data field'],
      ['a missing field', noCounter, 'request lacks counter'],
      ['an array-like', sign({ 0: 'north', length: 1 }), 'session.sign.portfolioIds is not an array'],
      ['an array hole', sign(holed), 'session.sign.portfolioIds[0] is a hole or an accessor'],
      ['an array with a property', sign(Object.assign(['north'], { note: 1 })), 'session.sign.portfolioIds has properties besides its elements'],
    ];
    for (const [name, value, detail] of cases) {
      const e = errorOf(() => verifyReq(value));
      expect(e.code, name).toBe('ERR_OPERATOR_SIGNATURE_INVALID');
      expect(e.detail, name).toBe(detail);
    }
    const e = errorOf(() => parseOperation({ op: 'key.csr', keyId: KEY_NORTH, [Symbol('s')]: 1 }));
    expect(e.detail).toBe('key.csr has a field it does not allow: a symbol');
    await expect(createOperatorRequest(alice.signer, { storeId: STORE, operatorId: 'alice', counter: 7n, issuedAt: new Date(Number.NaN), operation: REVOKE_NORTH })).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      context: { detail: 'issuedAt is not a valid Date' },
    });
  });
});
