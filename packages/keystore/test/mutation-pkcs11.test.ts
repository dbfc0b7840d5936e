// The PKCS#11 backend's decisions, driven through a scripted token: graphene-pk11 is replaced by an
// in-memory token whose answers each case sets (a key the token made extractable, a point in the
// wrong encoding, a return code of a failing device), so that every fail-closed rule and every
// error mapping runs in this process, where mutation testing can see it. The behaviour against a
// real token is tested in pkcs11.test.ts (SoftHSM2).
// PKCS #11 Base v2.40 §4.9 (CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_ALWAYS_SENSITIVE,
// CKA_NEVER_EXTRACTABLE, CKA_LOCAL), §5.4 (C_Initialize, CKF_OS_LOCKING_OK), §5.6 (C_Login return
// codes); Current Mechanisms v2.40 §2.3.3 (CKA_EC_POINT: DER OCTET STRING), §2.3.6 (ECDSA over a
// host digest), §2.3.16 (ECDH1_DERIVE).
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { publicKeyToRaw, SmkiError, type SmkiErrorCode } from '@smki/core';
import { Pkcs11KeyBackend, type Pkcs11BackendOptions } from '../src/backends/pkcs11.js';

// ---- the scripted token -------------------------------------------------------------------------

const PRIVATE_KEY = 3;
const PUBLIC_KEY = 2;
const SECRET_KEY = 4;
const CKK_EC = 3;
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const P384 = Buffer.from('06052b81040022', 'hex');
const TOKEN_INITIALIZED = 1024;
const ERROR_STATE = 16777216;

type Attrs = Record<string, unknown>;

/** A pkcs11js-style error: the return code in the message, the function in `method`. */
function p11(ckr: string, method = 'C_Sign'): Error {
  return Object.assign(new Error(`${ckr}:0x0 ${method}`), { method });
}

/** A graphene collection; like graphene's (whose `items` constructs and queries the object), an index out of range throws. */
function collection<T>(items: T[]) {
  return {
    length: items.length,
    items: (i: number) => {
      if (!Number.isInteger(i) || i < 0 || i >= items.length) throw new RangeError(`index ${i} of ${items.length}`);
      return items[i]!;
    },
  };
}

class FakeToken {
  readonly objects = new Map<string, FakeObject>();
  flags = TOKEN_INITIALIZED;
  gone = false;
  constructor(
    public label: string,
    public serial: string,
    public pin: string,
  ) {}
  add(attrs: Attrs, key?: KeyObject): FakeObject {
    const o = new FakeObject(this, Buffer.from([++fake.nextHandle, 0, 0, 0]), attrs, key);
    this.objects.set(o.handle.toString('hex'), o);
    return o;
  }
}

class FakeObject {
  constructor(
    readonly token: FakeToken,
    readonly handle: Buffer,
    readonly attrs: Attrs,
    readonly key?: KeyObject,
  ) {}
  getAttribute(template: Record<string, null>): Attrs {
    fake.check('getAttribute');
    const out: Attrs = {};
    for (const k of Object.keys(template)) out[k] = this.attrs[k];
    return out;
  }
  destroy(): void {
    fake.destroyed.push(String(this.attrs.class));
    fake.check('destroy');
    this.token.objects.delete(this.handle.toString('hex'));
  }
}

class FakeSession {
  readonly lib = { fake: true };
  constructor(readonly slot: FakeSlot) {}
  get token(): FakeToken {
    return this.slot.token;
  }
  login(pin: string, userType: number): void {
    fake.calls.push(`login ${userType}`);
    fake.check('login');
    if (pin !== this.token.pin) throw p11('CKR_PIN_INCORRECT', 'C_Login');
  }
  logout(): void {
    fake.calls.push('logout');
    fake.check('logout');
  }
  close(): void {
    fake.calls.push('close');
    fake.openSessions--;
    fake.check('close');
  }
  find(template: Attrs) {
    fake.finds++;
    fake.check('find');
    const all = [...this.token.objects.values()].filter((o) =>
      Object.entries(template).every(([k, v]) => (Buffer.isBuffer(v) ? Buffer.isBuffer(o.attrs[k]) && v.equals(o.attrs[k] as Buffer) : o.attrs[k] === v)),
    );
    return collection(all);
  }
  generateKeyPair(mechanism: unknown, pub: Attrs, priv: Attrs, cb: (e: Error | null, v: unknown) => void): void {
    fake.check('generateKeyPair:start'); // a throw before the call is under way (graphene checks the template first)
    fake.generated.push({ mechanism, pub, priv });
    const err = fake.take('generateKeyPair');
    if (err) return void setImmediate(() => cb(err, null));
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const point = publicKeyToRaw(publicKey);
    const p = this.token.add(
      {
        class: PRIVATE_KEY,
        keyType: CKK_EC,
        id: priv.id,
        label: priv.label,
        paramsEC: P256,
        sensitive: priv.sensitive,
        extractable: priv.extractable,
        alwaysSensitive: true,
        neverExtractable: true,
        local: true,
        ...fake.generatedPrivate,
      },
      privateKey,
    );
    const q = this.token.add({ class: PUBLIC_KEY, keyType: CKK_EC, id: pub.id, label: pub.label, pointEC: fake.encodePoint(point) });
    setImmediate(() => cb(null, { privateKey: p, publicKey: q }));
  }
  createSign(mechanism: string, key: { handle: Buffer }) {
    fake.calls.push(`sign-init ${mechanism}`);
    return {
      once: (data: Buffer, cb: (e: Error | null, v: Buffer | null) => void) => {
        fake.signed.push(Buffer.from(data));
        const err = fake.take('sign') ?? (this.token.objects.has(key.handle.toString('hex')) ? undefined : p11('CKR_KEY_HANDLE_INVALID', 'C_SignInit'));
        setImmediate(() => {
          fake.calls.push('sign-done');
          if (err) cb(err, null);
          else cb(null, fake.signature ?? Buffer.alloc(64, 1));
        });
      },
    };
  }
  deriveKey(algorithm: { name: string; params: unknown }, key: { handle: Buffer }, template: Attrs, cb: (e: Error | null, v: unknown) => void): void {
    fake.derived.push({ algorithm, template, key: key.handle });
    const err = fake.take('derive');
    if (err) return void setImmediate(() => cb(err, null));
    const value = fake.secretValue === undefined ? Buffer.alloc(32, 7) : (fake.secretValue ?? undefined);
    fake.lastSecret = value;
    const secret = this.token.add({ class: SECRET_KEY, value });
    setImmediate(() => cb(null, fake.deriveReturns === 'secret' ? secret : fake.deriveReturns));
  }
}

class FakeSlot {
  readonly handle: Buffer;
  constructor(
    readonly token: FakeToken,
    n: number,
  ) {
    this.handle = Buffer.from([n, 0, 0, 0, 0, 0, 0, 0]);
  }
  getToken() {
    fake.tokenInfos++;
    fake.check('getToken');
    if (this.token.gone) throw p11('CKR_TOKEN_NOT_PRESENT', 'C_GetTokenInfo');
    return { label: this.token.label.padEnd(32, ' '), serialNumber: this.token.serial, flags: this.token.flags };
  }
  open(flags: number): FakeSession {
    fake.calls.push(`open ${flags}`);
    fake.check('open');
    fake.openSessions++;
    return new FakeSession(this);
  }
}

class FakeModule {
  static load(path: string, name: string): FakeModule {
    fake.calls.push(`load ${path === name}`);
    fake.check('load');
    return new FakeModule();
  }
  readonly lib = {
    C_GetInfo: () => {
      if (!fake.initialized) throw p11('CKR_CRYPTOKI_NOT_INITIALIZED', 'C_GetInfo');
      return {};
    },
  };
  initialize(options: { flags: number }): void {
    fake.calls.push(`initialize ${options.flags}`);
    fake.check('initialize');
    fake.initialized = true;
  }
  finalize(): void {
    fake.calls.push('finalize');
    fake.initialized = false;
    fake.check('finalize');
  }
  getSlots(withToken: boolean) {
    fake.check('getSlots');
    expect(withToken).toBe(true);
    return collection(fake.slots);
  }
}

class FakePrivateKey {
  constructor(
    readonly handle: Buffer,
    readonly session: unknown,
    readonly lib: unknown,
  ) {}
}

const fake = {
  nextHandle: 0,
  initialized: false,
  slots: [] as FakeSlot[],
  calls: [] as string[],
  finds: 0,
  /** C_GetTokenInfo calls (each probe makes one). */
  tokenInfos: 0,
  openSessions: 0,
  destroyed: [] as string[],
  signed: [] as Buffer[],
  generated: [] as { mechanism: unknown; pub: Attrs; priv: Attrs }[],
  derived: [] as { algorithm: unknown; template: Attrs; key: Buffer }[],
  failures: new Map<string, unknown[]>(),
  generatedPrivate: {} as Attrs,
  encodePoint: (p: Uint8Array): Buffer | undefined => Buffer.concat([Buffer.from([0x04, 0x41]), p]),
  signature: undefined as Buffer | undefined,
  /** The derived secret's CKA_VALUE: undefined for the default, null for none. */
  secretValue: undefined as Buffer | null | undefined,
  lastSecret: undefined as Buffer | undefined,
  /** What C_DeriveKey's callback gives: the secret, or nothing. */
  deriveReturns: 'secret' as 'secret' | null | undefined,
  /** Make the next `count` calls of `op` fail with `error` (a synchronous call throws it as it is, even null); PASS lets a call through. */
  fail(op: string, error: unknown, count = 1): void {
    this.failures.set(op, [...(this.failures.get(op) ?? []), ...Array.from({ length: count }, () => error)]);
  },
  take(op: string): Error | undefined {
    const e = this.failures.get(op)?.shift();
    return e === PASS ? undefined : (e as Error | undefined);
  },
  check(op: string): void {
    const queue = this.failures.get(op);
    if (!queue || queue.length === 0) return;
    const e = queue.shift();
    if (e !== PASS) throw e;
  },
  reset(): void {
    this.slots = [];
    this.calls = [];
    this.finds = 0;
    this.tokenInfos = 0;
    this.destroyed = [];
    this.signed = [];
    this.generated = [];
    this.derived = [];
    this.failures.clear();
    this.generatedPrivate = {};
    this.encodePoint = (p) => Buffer.concat([Buffer.from([0x04, 0x41]), p]);
    this.signature = undefined;
    this.secretValue = undefined;
    this.lastSecret = undefined;
    this.deriveReturns = 'secret';
  },
};

/** A queued failure that is not one: the call goes through. */
const PASS = Symbol('pass');

/** graphene-pk11 as a CommonJS module reaches `import()`: its exports, and the same as `default`. */
async function fakeGraphene(importOriginal: () => Promise<unknown>) {
  const real = (await importOriginal()) as Record<string, unknown>;
  const ns = { ...real, Module: FakeModule, PrivateKey: FakePrivateKey };
  return { ...ns, default: ns };
}
vi.mock('graphene-pk11', (importOriginal) => fakeGraphene(importOriginal));

// ---- helpers -----------------------------------------------------------------------------------

const MODULE = process.execPath; // any file that exists: the module is scripted
const PIN = '1234';
const opened: Pkcs11KeyBackend[] = [];
// More module paths (the backend keeps one loaded module per library path for the process).
const libDir = mkdtempSync(join(tmpdir(), 'smki-p11-'));
const library = (name: string): string => {
  const path = join(libDir, name);
  writeFileSync(path, '');
  return path;
};
afterAll(() => rmSync(libDir, { recursive: true, force: true }));

/** `p`, or a rejection if it has not settled within `ms` (a mutant that leaves it pending fails fast). */
function within<T>(p: Promise<T>, what: string, ms = 2000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} still pending after ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

function token(label = 'smki', serial = 'S1', pin = PIN): FakeToken {
  const t = new FakeToken(label, serial, pin);
  fake.slots.push(new FakeSlot(t, fake.slots.length + 1));
  return t;
}

async function open(extra: Partial<Pkcs11BackendOptions> = {}): Promise<Pkcs11KeyBackend> {
  const b = await Pkcs11KeyBackend.open({ module: MODULE, tokenLabel: 'smki', pin: PIN, sessions: 2, ...extra });
  opened.push(b);
  return b;
}

async function code<C extends SmkiErrorCode>(p: Promise<unknown> | (() => unknown), c: C): Promise<SmkiError<C>> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(SmkiError);
    expect((e as SmkiError).code).toBe(c);
    return e as SmkiError<C>;
  }
  throw new Error(`expected ${c}, nothing was thrown`);
}

/** A key pair put on the token by someone else, with the given private attributes. */
function foreignKey(t: FakeToken, keyId: string, privateAttrs: Attrs, point?: Buffer | undefined, label = 'smki/x'): string {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const id = Buffer.from(keyId);
  t.add({ class: PRIVATE_KEY, keyType: CKK_EC, id, label, paramsEC: P256, sensitive: true, extractable: false, alwaysSensitive: false, neverExtractable: false, local: false, ...privateAttrs }, privateKey);
  t.add({ class: PUBLIC_KEY, keyType: CKK_EC, id, label, pointEC: arguments.length > 3 ? point : Buffer.concat([Buffer.from([0x04, 0x41]), publicKeyToRaw(publicKey)]) });
  return id.toString('hex').toUpperCase();
}

const peerPoint = () => publicKeyToRaw(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);

afterEach(async () => {
  for (const b of opened.splice(0)) await within(b.close(), 'close');
  fake.reset();
});

// ---- cases -------------------------------------------------------------------------------------

describe('loading graphene-pk11', () => {
  const restore = () => vi.doMock('graphene-pk11', (importOriginal) => fakeGraphene(importOriginal));
  afterEach(restore);

  it('not installed: ERR_HSM_UNAVAILABLE naming the package, with the import error as cause; nothing is loaded', async () => {
    token();
    const missing = new Error("Cannot find package 'graphene-pk11'");
    vi.doMock('graphene-pk11', () => {
      throw missing;
    });
    const e = await code(open(), 'ERR_HSM_UNAVAILABLE');
    expect(e.context).toEqual({ detail: 'graphene-pk11' });
    const causes: unknown[] = [];
    for (let c: unknown = e.cause; c instanceof Error; c = c.cause) causes.push(c);
    expect(causes).toContain(missing); // (vitest wraps a failing mock factory's error)
    expect(fake.calls).toEqual([]);
  });

  it('the API is taken from the default export (CommonJS) or, without one, from the namespace (ESM)', async () => {
    token();
    vi.doMock('graphene-pk11', async (importOriginal) => {
      const { default: api } = await fakeGraphene(importOriginal);
      return { default: api }; // Node could not list the CommonJS exports
    });
    await open({ module: library('libcjs.so') });
    vi.doMock('graphene-pk11', async (importOriginal) => ({ ...(await fakeGraphene(importOriginal)), default: undefined }));
    await open({ module: library('libesm.so') });
    expect(opened).toHaveLength(2);
  });
});

describe('open', () => {
  it('initialises once per process with OS locking, opens the sessions read-write, logs in once as the user', async () => {
    token();
    const a = await open({ sessions: 3 });
    const b = await open({ sessions: 1 });
    expect(fake.calls.filter((c) => c.startsWith('load') || c.startsWith('initialize') || c.startsWith('login'))).toEqual(['load true', 'initialize 2', 'login 1']);
    expect(fake.calls.filter((c) => c.startsWith('open'))).toEqual(['open 6', 'open 6', 'open 6', 'open 6']);
    expect(fake.openSessions).toBe(4);
    await b.close();
    expect(fake.calls).not.toContain('logout');
    expect(fake.calls).not.toContain('finalize');
    await a.close();
    expect(fake.calls.slice(-5)).toEqual(['logout', 'close', 'close', 'close', 'finalize']);
    expect(fake.openSessions).toBe(0);
    expect(a.tokenLabel).toBe('smki');
    expect(a.labelPrefix).toBe('smki/');
    expect(a.kind).toBe('pkcs11');
  });

  it('backends on two libraries: closing one releases only its own module', async () => {
    token();
    const a = await open({ module: library('liba.so') });
    const b = await open({ module: library('libb.so') });
    await a.close();
    expect(fake.calls.filter((c) => c === 'finalize')).toHaveLength(1);
    await b.close();
    expect(fake.calls.filter((c) => c === 'finalize')).toHaveLength(2);
  });

  it('a second backend on a token this process is logged in to must present the same PIN', async () => {
    token();
    await open();
    const e = await code(open({ pin: '9999' }), 'ERR_HSM_LOGIN_FAILED');
    expect(e.context).toEqual({ detail: 'PIN mismatch' });
    expect(fake.calls.filter((c) => c.startsWith('login'))).toHaveLength(1);
  });

  it('two tokens: one login each; closing one leaves the other logged in', async () => {
    token('smki', 'S1');
    token('other', 'S2');
    const a = await open();
    await open({ tokenLabel: 'other' });
    expect(fake.calls.filter((c) => c.startsWith('login'))).toHaveLength(2);
    await a.close();
    expect(fake.calls.filter((c) => c === 'logout')).toHaveLength(1);
    expect(fake.calls).not.toContain('finalize');
  });

  it.each([
    ['CKR_PIN_INCORRECT', 'ERR_HSM_LOGIN_FAILED'],
    ['CKR_PIN_INVALID', 'ERR_HSM_LOGIN_FAILED'],
    ['CKR_PIN_LEN_RANGE', 'ERR_HSM_LOGIN_FAILED'],
    ['CKR_PIN_LOCKED', 'ERR_HSM_LOGIN_FAILED'],
    ['CKR_PIN_EXPIRED', 'ERR_HSM_LOGIN_FAILED'],
    ['CKR_USER_ALREADY_LOGGED_IN', 'ERR_HSM_LOGIN_FAILED'],
    ['CKR_USER_ANOTHER_ALREADY_LOGGED_IN', 'ERR_HSM_LOGIN_FAILED'],
    ['CKR_DEVICE_REMOVED', 'ERR_HSM_UNAVAILABLE'],
    ['CKR_GENERAL_ERROR', 'ERR_HSM_OPERATION_FAILED'],
  ] as const)('C_Login returning %s is %s; the sessions are closed and the module released', async (ckr, expected) => {
    token();
    const refused = p11(ckr, 'C_Login');
    fake.fail('login', refused);
    const e = await code(open(), expected);
    expect(e.context).toEqual({ detail: ckr });
    expect(e.cause).toBe(refused);
    expect(fake.openSessions).toBe(0);
    expect(fake.calls.at(-1)).toBe('finalize');
    // and the next open starts again from scratch
    await open();
  });

  it('a session that will not close does not hide the error that made open fail', async () => {
    token();
    fake.fail('login', p11('CKR_PIN_LOCKED', 'C_Login'));
    fake.fail('close', new Error('close failed'), 2);
    await code(open(), 'ERR_HSM_LOGIN_FAILED');
  });

  it('options: labelPrefix up to 128 bytes, sessions 1 to 64, a token label of up to 32 bytes', async () => {
    token('é'.repeat(16)); // 32 bytes
    const base = { module: MODULE, tokenLabel: 'é'.repeat(16), pin: PIN };
    opened.push(await Pkcs11KeyBackend.open({ ...base, labelPrefix: 'p'.repeat(128), sessions: 64 }));
    await code(Pkcs11KeyBackend.open({ ...base, tokenLabel: 'é'.repeat(17) }), 'ERR_INVALID_ARGUMENT');
    await code(Pkcs11KeyBackend.open({ ...base, labelPrefix: 'é'.repeat(65) }), 'ERR_INVALID_ARGUMENT');
    await code(Pkcs11KeyBackend.open({ ...base, labelPrefix: 5 as unknown as string }), 'ERR_INVALID_ARGUMENT');
    expect((await code(Pkcs11KeyBackend.open({ ...base, sessions: 65 }), 'ERR_INVALID_ARGUMENT')).context).toEqual({ detail: '65' });
    await code(Pkcs11KeyBackend.open({ ...base, sessions: -1 }), 'ERR_INVALID_ARGUMENT');
    await code(Pkcs11KeyBackend.open({ ...base, module: 5 as unknown as string }), 'ERR_INVALID_ARGUMENT');
    await code(Pkcs11KeyBackend.open({ ...base, pin: 5 as unknown as string }), 'ERR_INVALID_ARGUMENT');
    await code(Pkcs11KeyBackend.open({ ...base, tokenLabel: 5 as unknown as string }), 'ERR_INVALID_ARGUMENT');
    await code(Pkcs11KeyBackend.open(undefined as unknown as Pkcs11BackendOptions), 'ERR_INVALID_ARGUMENT');
    const b = opened[0]!;
    expect(b.labelPrefix).toBe('p'.repeat(128));
  });

  it('an empty module path, token label or PIN is refused before anything is loaded or logged in to', async () => {
    const blank = token('', 'S0'); // a token whose label is all blanks
    blank.pin = '';
    for (const bad of [{ module: '' }, { tokenLabel: '' }, { pin: '' }]) {
      const e = await code(Pkcs11KeyBackend.open({ module: MODULE, tokenLabel: 'smki', pin: PIN, ...bad }), 'ERR_INVALID_ARGUMENT');
      expect(e.context).toStrictEqual({});
    }
    // the blank token would have been found, and its empty PIN taken
    await code(Pkcs11KeyBackend.open({ module: MODULE, tokenLabel: '', pin: '' }), 'ERR_INVALID_ARGUMENT');
    expect(fake.calls.filter((c) => c.startsWith('open') || c.startsWith('login'))).toEqual([]);
  });

  it('a missing module, one that will not load or initialise: ERR_HSM_UNAVAILABLE', async () => {
    token();
    const missing = await code(open({ module: '/nonexistent/lib.so' }), 'ERR_HSM_UNAVAILABLE');
    expect(missing.context).toEqual({ detail: '/nonexistent/lib.so' });
    expect((missing.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
    fake.fail('initialize', p11('CKR_GENERAL_ERROR', 'C_Initialize'));
    expect((await code(open(), 'ERR_HSM_UNAVAILABLE')).context).toEqual({ detail: 'CKR_GENERAL_ERROR' });
    await open(); // initialised now
  });

  it('a library that will not load: ERR_HSM_UNAVAILABLE with the loader error as cause; the next open loads it again', async () => {
    token();
    const lib = library('libbroken.so');
    const dlopen = new Error(`${lib}: invalid ELF header`);
    fake.fail('load', dlopen);
    const e = await code(open({ module: lib }), 'ERR_HSM_UNAVAILABLE');
    expect(e.context).toEqual({ detail: 'native error' });
    expect(e.cause).toBe(dlopen);
    expect(fake.calls).toEqual(['load true']);
    await open({ module: lib });
    expect(fake.calls.filter((c) => c.startsWith('load'))).toEqual(['load true', 'load true']);
  });

  it('a session that cannot be opened: mapped with its return code; the sessions opened so far are closed, the module released', async () => {
    token();
    const refused = p11('CKR_SESSION_COUNT', 'C_OpenSession');
    fake.fail('open', PASS);
    fake.fail('open', refused);
    const e = await code(open({ sessions: 3 }), 'ERR_HSM_OPERATION_FAILED');
    expect(e.context).toEqual({ detail: 'CKR_SESSION_COUNT' });
    expect(e.cause).toBe(refused);
    expect(fake.openSessions).toBe(0);
    expect(fake.calls.filter((c) => c.startsWith('login'))).toEqual([]);
    expect(fake.calls.at(-1)).toBe('finalize');
  });

  it('finding the token: a failing slot list, a slot whose token went away, none or two with the label', async () => {
    const t = token();
    fake.fail('getSlots', p11('CKR_GENERAL_ERROR', 'C_GetSlotList'));
    expect((await code(open(), 'ERR_HSM_UNAVAILABLE')).context).toEqual({ detail: 'CKR_GENERAL_ERROR' });
    t.gone = true;
    token('smki', 'S2');
    await open(); // the first slot is skipped
    fake.slots = [];
    expect((await code(open(), 'ERR_HSM_UNAVAILABLE')).context).toEqual({ detail: 'no token with this label' });
    token('smki', 'S3');
    token('smki', 'S4');
    expect((await code(open(), 'ERR_HSM_UNAVAILABLE')).context).toEqual({ detail: 'ambiguous token label' });
  });

  it('a module finalised by other code is initialised again, and the backends of before are dead', async () => {
    const t = token();
    const a = await open();
    const h = foreignKey(t, 'k1', {});
    await a.sign(h, new Uint8Array(1));
    fake.initialized = false; // finalised underneath
    const b = await open();
    const e = await code(a.sign(h, new Uint8Array(1)), 'ERR_HSM_UNAVAILABLE');
    expect(e.context).toEqual({ detail: 'CKR_CRYPTOKI_NOT_INITIALIZED' });
    await code(a.publicKey(h), 'ERR_HSM_UNAVAILABLE');
    const calls = fake.calls.length;
    await a.close(); // touches nothing of the new epoch's sessions
    expect(fake.calls.slice(calls)).toEqual([]);
    expect((await b.sign(h, new Uint8Array(1))).length).toBe(64);
  });
});

describe('keys made by someone else are used only if sensitive, non-extractable and on P-256', () => {
  it('an imported key that is sensitive and non-extractable is used (only a fresh key must be local)', async () => {
    const t = token();
    const b = await open();
    const h = foreignKey(t, 'imported', {});
    expect(await b.sign(h, new Uint8Array([1]))).toHaveLength(64);
    expect(await b.publicKey(h)).toHaveLength(65);
  });

  it.each([
    ['extractable', { extractable: true }, 'CKA_EXTRACTABLE is true'],
    ['extractable unknown', { extractable: undefined }, 'CKA_EXTRACTABLE is true'],
    ['not sensitive', { sensitive: false }, 'CKA_SENSITIVE is false'],
    ['sensitive unknown', { sensitive: undefined }, 'CKA_SENSITIVE is false'],
    ['on P-384', { paramsEC: P384 }, 'not on P-256'],
    ['without parameters', { paramsEC: undefined }, 'not on P-256'],
    ['parameters as text', { paramsEC: P256.toString('hex') }, 'not on P-256'],
    ['not an EC key', { keyType: 0 }, 'not an EC key'],
    ['everything wrong', { keyType: 0, paramsEC: P384, sensitive: false, extractable: true }, 'not an EC key, not on P-256, CKA_SENSITIVE is false, CKA_EXTRACTABLE is true'],
  ])('%s: ERR_KEY_INVALID for sign, derive and publicKey', async (_name, attrs, detail) => {
    const t = token();
    const b = await open();
    const h = foreignKey(t, 'weak', attrs);
    expect((await code(b.sign(h, new Uint8Array(1)), 'ERR_KEY_INVALID')).context).toEqual({ detail });
    await code(b.deriveSharedSecret(h, peerPoint()), 'ERR_KEY_INVALID');
    await code(b.publicKey(h), 'ERR_KEY_INVALID');
    expect(fake.signed).toHaveLength(0);
  });

  it('two private keys under one handle, or a public key count other than one: ERR_HSM_OPERATION_FAILED', async () => {
    const t = token();
    const b = await open();
    const h = foreignKey(t, 'twice', {});
    foreignKey(t, 'twice', {});
    expect((await code(b.sign(h, new Uint8Array(1)), 'ERR_HSM_OPERATION_FAILED')).context).toEqual({ detail: h });
    const lonely = foreignKey(t, 'lonely', {});
    for (const o of t.objects.values()) if (o.attrs.class === PUBLIC_KEY && (o.attrs.id as Buffer).equals(Buffer.from('lonely'))) t.objects.delete(o.handle.toString('hex'));
    expect((await code(b.sign(lonely, new Uint8Array(1)), 'ERR_HSM_OPERATION_FAILED')).context).toEqual({ detail: lonely });
  });

  it('two private keys of ours under one handle with a single public key: refused, neither is used', async () => {
    const t = token();
    const b = await open();
    const h = foreignKey(t, 'twice', {});
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    t.add({ class: PRIVATE_KEY, keyType: CKK_EC, id: Buffer.from('twice'), label: 'smki/y', paramsEC: P256, sensitive: true, extractable: false }, privateKey);
    expect((await code(b.sign(h, new Uint8Array(1)), 'ERR_HSM_OPERATION_FAILED')).context).toEqual({ detail: h });
    await code(b.deriveSharedSecret(h, peerPoint()), 'ERR_HSM_OPERATION_FAILED');
    await code(b.publicKey(h), 'ERR_HSM_OPERATION_FAILED');
    expect(fake.signed).toHaveLength(0);
    expect(fake.derived).toHaveLength(0);
  });

  it('an object under the handle without a label is not ours, and does not disturb the lookup', async () => {
    const t = token();
    const b = await open();
    const h = foreignKey(t, 'k', {});
    t.add({ class: PRIVATE_KEY, keyType: CKK_EC, id: Buffer.from('k'), paramsEC: P256, sensitive: true, extractable: false });
    t.add({ class: PUBLIC_KEY, keyType: CKK_EC, id: Buffer.from('k') });
    expect(await b.sign(h, new Uint8Array(1))).toHaveLength(64);
  });

  it('objects under another label prefix are not ours: not found, not listed, not destroyed', async () => {
    const t = token();
    const b = await open();
    const h = foreignKey(t, 'theirs', {}, undefined, 'other/x');
    expect((await code(b.sign(h, new Uint8Array(1)), 'ERR_KEY_NOT_FOUND')).context).toEqual({ detail: h });
    expect(await b.listHandles()).toEqual([]);
    await b.destroyKey(h);
    expect(t.objects.size).toBe(2);
    // a label that only contains the prefix later on is not ours either
    const h2 = foreignKey(t, 'later', {}, undefined, 'x/smki/');
    await code(b.sign(h2, new Uint8Array(1)), 'ERR_KEY_NOT_FOUND');
  });
});

describe('CKA_EC_POINT', () => {
  const point = () => publicKeyToRaw(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
  it.each([
    ['the DER OCTET STRING', (p: Uint8Array) => Buffer.concat([Buffer.from([0x04, 0x41]), p])],
    ['the bare point', (p: Uint8Array) => Buffer.from(p)],
  ])('%s is read', async (_name, encode) => {
    const t = token();
    const b = await open();
    const p = point();
    const h = foreignKey(t, 'pt', {}, encode(p));
    expect(Buffer.from(await b.publicKey(h))).toEqual(Buffer.from(p));
    const again = await b.publicKey(h); // from the cache: a copy each time
    again[0] = 0;
    expect((await b.publicKey(h))[0]).toBe(4);
  });

  it.each([
    ['missing', () => undefined, 'length undefined'],
    ['66 bytes', (p: Uint8Array) => Buffer.concat([Buffer.from([0x04]), p]), 'length 66'],
    ['67 bytes with another tag', (p: Uint8Array) => Buffer.concat([Buffer.from([0x03, 0x41]), p]), 'length 67'],
    ['67 bytes with another length', (p: Uint8Array) => Buffer.concat([Buffer.from([0x04, 0x42]), p]), 'length 67'],
    ['a compressed point in 67 bytes', (p: Uint8Array) => Buffer.concat([Buffer.from([0x04, 0x41, 0x02]), p.subarray(1)]), 'length 67'],
    ['65 bytes not starting 04', (p: Uint8Array) => Buffer.concat([Buffer.from([0x02]), p.subarray(1)]), 'length 65'],
  ])('%s is refused', async (_name, encode, detail) => {
    const t = token();
    const b = await open();
    const h = foreignKey(t, 'pt', {}, encode(point()) as Buffer | undefined);
    expect((await code(b.publicKey(h), 'ERR_HSM_OPERATION_FAILED')).context).toEqual({ detail });
  });

  it('a point off the curve is ERR_KEY_INVALID', async () => {
    const t = token();
    const b = await open();
    const p = Buffer.from(point());
    p[64] = p[64]! ^ 1;
    await code(b.publicKey(foreignKey(t, 'off', {}, p)), 'ERR_KEY_INVALID');
  });
});

describe('generateKey', () => {
  it('asks for a token key pair: sensitive, never extractable, sign and derive only, P-256, CKA_ID and label', async () => {
    token();
    const b = await open({ labelPrefix: 'ks/' });
    const { handle, publicKey } = await b.generateKey({ keyId: 'K1', label: 'org/p/DS/g1' });
    expect(handle).toBe('4B31');
    expect(publicKey).toHaveLength(65);
    const [{ pub, priv }] = fake.generated as [(typeof fake.generated)[0]];
    expect(pub).toEqual({ keyType: CKK_EC, token: true, private: false, verify: true, paramsEC: P256, id: Buffer.from('K1'), label: 'ks/org/p/DS/g1' });
    expect(priv).toEqual({ keyType: CKK_EC, token: true, private: true, sensitive: true, extractable: false, sign: true, derive: true, decrypt: false, unwrap: false, id: Buffer.from('K1'), label: 'ks/org/p/DS/g1' });
    // cached: the first use looks nothing up
    const finds = fake.finds;
    await b.sign(handle, new Uint8Array(1));
    expect(fake.finds).toBe(finds);
    const out = await b.generateKey({ keyId: 'K2', label: 'x' });
    out.publicKey[0] = 0;
    expect((await b.publicKey(out.handle))[0]).toBe(4);
  });

  it.each([
    ['not always sensitive', { alwaysSensitive: false }],
    ['ever extractable', { neverExtractable: false }],
    ['not generated on the token', { local: false }],
    ['extractable', { extractable: true }],
  ] as [string, Attrs][])('a token that makes the key %s: ERR_KEY_INVALID, and both objects are destroyed', async (_name, attrs) => {
    const t = token();
    const b = await open();
    fake.generatedPrivate = attrs;
    const e = await code(b.generateKey({ keyId: 'K1', label: 'x' }), 'ERR_KEY_INVALID');
    expect(String((e.context as { detail: string }).detail)).toMatch(attrs.extractable ? /CKA_EXTRACTABLE is true/ : /not generated on the token as always sensitive and never extractable/);
    expect(t.objects.size).toBe(0);
    expect(fake.destroyed).toEqual([String(PRIVATE_KEY), String(PUBLIC_KEY)]);
  });

  it('a bad point from the token: refused, destroyed; a destroy that fails does not hide the error', async () => {
    token();
    const b = await open();
    fake.encodePoint = () => undefined;
    fake.fail('destroy', new Error('cannot'), 1);
    await code(b.generateKey({ keyId: 'K1', label: 'x' }), 'ERR_HSM_OPERATION_FAILED');
    expect(fake.destroyed).toEqual([String(PRIVATE_KEY), String(PUBLIC_KEY)]);
  });

  it('any object with the CKA_ID, whatever its label, blocks the key id', async () => {
    const t = token();
    const b = await open();
    t.add({ class: SECRET_KEY, id: Buffer.from('K1'), label: 'not ours' });
    expect((await code(b.generateKey({ keyId: 'K1', label: 'x' }), 'ERR_HSM_KEY_EXISTS')).context).toEqual({ detail: '4B31' });
    expect(fake.generated).toHaveLength(0);
  });

  it('key id up to 64 bytes, label with its prefix up to 255 bytes', async () => {
    token();
    const b = await open();
    await b.generateKey({ keyId: 'é'.repeat(32), label: 'l'.repeat(250) }); // 64 bytes; 5 + 250
    await code(b.generateKey({ keyId: 'é'.repeat(32) + 'x', label: 'x' }), 'ERR_INVALID_ARGUMENT');
    await code(b.generateKey({ keyId: 'k2', label: 'é'.repeat(126) }), 'ERR_INVALID_ARGUMENT'); // 5 + 252
    await code(b.generateKey({ keyId: 5 as unknown as string, label: 'x' }), 'ERR_INVALID_ARGUMENT');
    await code(b.generateKey(undefined as never), 'ERR_INVALID_ARGUMENT');
  });

  it('an empty key id, or a label that is not a string, is refused; an over-long key id says its length in bytes', async () => {
    token();
    const b = await open();
    expect((await code(b.generateKey({ keyId: '', label: 'x' }), 'ERR_INVALID_ARGUMENT')).context).toStrictEqual({});
    expect((await code(b.generateKey({ keyId: 'é'.repeat(33), label: 'x' }), 'ERR_INVALID_ARGUMENT')).context).toEqual({ detail: '66 bytes' });
    for (const label of [undefined, null, 5]) await code(b.generateKey({ keyId: 'K1', label: label as unknown as string }), 'ERR_INVALID_ARGUMENT');
    expect(fake.generated).toHaveLength(0);
  });

  it('the fault point after generation sees both objects on the token; a failure there leaves nothing behind', async () => {
    const t = token();
    const points: string[] = [];
    const crash = new Error('crash');
    const b = await open({
      fault: (point) => {
        points.push(`${point} ${t.objects.size}`);
        if (points.length > 1) throw crash;
      },
    });
    const { handle } = await b.generateKey({ keyId: 'K1', label: 'x' });
    expect(points).toEqual(['pkcs11:after-generate 2']);
    expect((await code(b.generateKey({ keyId: 'K2', label: 'x' }), 'ERR_HSM_OPERATION_FAILED')).cause).toBe(crash);
    expect(points).toEqual(['pkcs11:after-generate 2', 'pkcs11:after-generate 4']);
    expect(await b.listHandles()).toEqual([handle]);
  });

  it('a native call that throws before it is under way is mapped, not left pending', async () => {
    token();
    const b = await open();
    const refused = p11('CKR_ATTRIBUTE_VALUE_INVALID', 'C_GenerateKeyPair');
    fake.fail('generateKeyPair:start', refused);
    const e = await code(within(b.generateKey({ keyId: 'K1', label: 'x' }), 'generateKey'), 'ERR_HSM_OPERATION_FAILED');
    expect(e.context).toEqual({ detail: 'CKR_ATTRIBUTE_VALUE_INVALID' });
    expect(e.cause).toBe(refused);
    expect((await b.generateKey({ keyId: 'K1', label: 'x' })).handle).toBe('4B31');
  });

  it('a failing C_GenerateKeyPair is mapped, with its return code', async () => {
    token();
    const b = await open();
    fake.fail('generateKeyPair', p11('CKR_TEMPLATE_INCONSISTENT', 'C_GenerateKeyPair'));
    const e = await code(b.generateKey({ keyId: 'K1', label: 'x' }), 'ERR_HSM_OPERATION_FAILED');
    expect(e.context).toEqual({ detail: 'CKR_TEMPLATE_INCONSISTENT' });
    expect((e.cause as Error).message).toMatch(/CKR_TEMPLATE_INCONSISTENT/);
  });
});

describe('sign and derive', () => {
  it('signs the SHA-256 digest of the message, never the message', async () => {
    const t = token();
    const b = await open();
    const h = foreignKey(t, 'k', {});
    await b.sign(h, new TextEncoder().encode('message'));
    expect(fake.signed).toEqual([createHash('sha256').update('message').digest()]);
    expect(fake.calls).toContain('sign-init ECDSA');
  });

  it('a signature that is not 64 bytes is refused', async () => {
    const t = token();
    const b = await open();
    fake.signature = Buffer.alloc(72, 1);
    expect((await code(b.sign(foreignKey(t, 'k', {}), new Uint8Array(1)), 'ERR_HSM_OPERATION_FAILED')).context).toEqual({ detail: 'length 72' });
  });

  it.each(['CKR_OBJECT_HANDLE_INVALID', 'CKR_KEY_HANDLE_INVALID'])('a stale cached object handle (%s): looked up again once; a second failure is mapped', async (ckr) => {
    const t = token();
    const b = await open();
    const h = foreignKey(t, 'k', {});
    await b.sign(h, new Uint8Array(1));
    fake.fail('sign', p11(ckr, 'C_SignInit'));
    const finds = fake.finds;
    expect(await b.sign(h, new Uint8Array(1))).toHaveLength(64);
    expect(fake.finds).toBeGreaterThan(finds);
    fake.fail('sign', p11(ckr, 'C_SignInit'), 2);
    expect((await code(b.sign(h, new Uint8Array(1)), 'ERR_HSM_OPERATION_FAILED')).context).toEqual({ detail: ckr });
    expect(fake.failures.get('sign')).toEqual([]);
    // another failure is not retried
    fake.fail('sign', p11('CKR_FUNCTION_FAILED', 'C_Sign'));
    const signs = fake.signed.length;
    await code(b.sign(h, new Uint8Array(1)), 'ERR_HSM_OPERATION_FAILED');
    expect(fake.signed.length).toBe(signs + 1);
  });

  it.each([
    'CKR_CRYPTOKI_NOT_INITIALIZED',
    'CKR_DEVICE_ERROR',
    'CKR_DEVICE_MEMORY',
    'CKR_DEVICE_REMOVED',
    'CKR_SESSION_CLOSED',
    'CKR_SESSION_HANDLE_INVALID',
    'CKR_SLOT_ID_INVALID',
    'CKR_TOKEN_NOT_PRESENT',
    'CKR_TOKEN_NOT_RECOGNIZED',
    'CKR_USER_NOT_LOGGED_IN',
  ])('%s means the token cannot be reached: ERR_HSM_UNAVAILABLE', async (ckr) => {
    const t = token();
    const b = await open();
    const h = foreignKey(t, 'k', {});
    fake.fail('sign', p11(ckr, 'C_Sign'));
    const e = await code(b.sign(h, new Uint8Array(1)), 'ERR_HSM_UNAVAILABLE');
    expect(e.context).toEqual({ detail: ckr });
  });

  it.each(['CKR_GENERAL_ERROR', 'CKR_FUNCTION_FAILED', 'CKR_OBJECT_HANDLE_INVALID', 'CKR_KEY_HANDLE_INVALID'])(
    'after %s the token is probed: gone is ERR_HSM_UNAVAILABLE, there is ERR_HSM_OPERATION_FAILED',
    async (ckr) => {
      const t = token();
      const b = await open();
      const h = foreignKey(t, 'k', {});
      await b.sign(h, new Uint8Array(1));
      fake.fail('sign', p11(ckr, 'C_Sign'), 2);
      expect((await code(b.sign(h, new Uint8Array(1)), 'ERR_HSM_OPERATION_FAILED')).context).toEqual({ detail: ckr });
      fake.fail('sign', p11(ckr, 'C_Sign'), 2);
      t.gone = true;
      const e = await code(b.sign(h, new Uint8Array(1)), 'ERR_HSM_UNAVAILABLE');
      expect(e.context).toEqual({ detail: 'CKR_TOKEN_NOT_PRESENT' });
      expect((e.cause as Error).message).toMatch(ckr);
    },
  );

  it.each(['CKR_GENERAL_ERROR', 'CKR_FUNCTION_FAILED', 'CKR_OBJECT_HANDLE_INVALID', 'CKR_KEY_HANDLE_INVALID'])(
    '%s from any call of an operation (here C_GetAttributeValue while listing) makes it probe the token',
    async (ckr) => {
      const t = token();
      const b = await open();
      foreignKey(t, 'k', {});
      const failure = p11(ckr, 'C_GetAttributeValue');
      fake.fail('getAttribute', failure);
      expect((await code(b.listHandles(), 'ERR_HSM_OPERATION_FAILED')).context).toEqual({ detail: ckr });
      t.flags = TOKEN_INITIALIZED | ERROR_STATE;
      fake.fail('getAttribute', failure);
      const e = await code(b.listHandles(), 'ERR_HSM_UNAVAILABLE');
      expect(e.context).toEqual({ detail: 'CKR_TOKEN_NOT_PRESENT' });
      expect(e.cause).toBe(failure);
    },
  );

  it.each([
    ['a refusal', p11('CKR_ATTRIBUTE_SENSITIVE', 'C_GetAttributeValue'), 'CKR_ATTRIBUTE_SENSITIVE'],
    ['an error without a return code', new Error('no return code'), 'native error'],
  ])('%s is not probed (the token is not asked whether it is there)', async (_name, failure, detail) => {
    const t = token();
    const b = await open();
    foreignKey(t, 'k', {});
    t.flags = TOKEN_INITIALIZED | ERROR_STATE; // a probe would say it is gone
    const infos = fake.tokenInfos;
    fake.fail('getAttribute', failure);
    expect((await code(b.listHandles(), 'ERR_HSM_OPERATION_FAILED')).context).toEqual({ detail });
    expect(fake.tokenInfos).toBe(infos);
  });

  it('the probe: a token relabelled, uninitialised or in an error state is gone', async () => {
    for (const change of [(t: FakeToken) => (t.label = 'renamed'), (t: FakeToken) => (t.flags = 0), (t: FakeToken) => (t.flags = TOKEN_INITIALIZED | ERROR_STATE)]) {
      const t = token();
      const b = await open();
      const h = foreignKey(t, 'k', {});
      await b.sign(h, new Uint8Array(1));
      change(t);
      fake.fail('sign', p11('CKR_GENERAL_ERROR', 'C_Sign'));
      expect((await code(b.sign(h, new Uint8Array(1)), 'ERR_HSM_UNAVAILABLE')).context).toEqual({ detail: 'CKR_TOKEN_NOT_PRESENT' });
      await b.close();
      fake.reset();
    }
  });

  it('a probe whose C_GetTokenInfo fails without a return code says so', async () => {
    const t = token();
    const b = await open();
    const h = foreignKey(t, 'k', {});
    await b.sign(h, new Uint8Array(1));
    fake.fail('sign', p11('CKR_GENERAL_ERROR', 'C_Sign'));
    fake.fail('getToken', new Error('segfault averted'));
    expect((await code(b.sign(h, new Uint8Array(1)), 'ERR_HSM_UNAVAILABLE')).context).toEqual({ detail: 'native error' });
  });

  it('an error without a return code, or a non-Error, is ERR_HSM_OPERATION_FAILED with "native error"', async () => {
    const t = token();
    const b = await open();
    const h = foreignKey(t, 'k', {});
    fake.fail('sign', new Error('weird'));
    expect((await code(b.sign(h, new Uint8Array(1)), 'ERR_HSM_OPERATION_FAILED')).context).toEqual({ detail: 'native error' });
    fake.fail('sign', 'a string' as unknown as Error);
    expect((await code(b.sign(h, new Uint8Array(1)), 'ERR_HSM_OPERATION_FAILED')).context).toEqual({ detail: 'native error' });
    const inStack = Object.assign(new Error('no code here'), { stack: 'Error: at C_Sign CKR_DEVICE_REMOVED' });
    fake.fail('sign', inStack);
    expect((await code(b.sign(h, new Uint8Array(1)), 'ERR_HSM_UNAVAILABLE')).context).toEqual({ detail: 'CKR_DEVICE_REMOVED' });
    // the code in the message is enough (a stack need not repeat the message)
    const inMessage = Object.assign(new Error('CKR_DEVICE_REMOVED: 0x32'), { stack: 'at C_Sign (native)' });
    fake.fail('sign', inMessage);
    expect((await code(b.sign(h, new Uint8Array(1)), 'ERR_HSM_UNAVAILABLE')).context).toEqual({ detail: 'CKR_DEVICE_REMOVED' });
    // even a thrown null is mapped, never a TypeError of ours
    fake.fail('find', null);
    const e = await code(b.listHandles(), 'ERR_HSM_OPERATION_FAILED');
    expect(e.context).toEqual({ detail: 'native error' });
  });

  it('derive: ECDH1_DERIVE with the peer point into a session secret that is read, wiped and destroyed', async () => {
    const t = token();
    const b = await open();
    const h = foreignKey(t, 'k', {});
    const peer = peerPoint();
    const z = await b.deriveSharedSecret(h, peer);
    expect(Buffer.from(z)).toEqual(Buffer.alloc(32, 7));
    const [{ algorithm, template }] = fake.derived as [(typeof fake.derived)[0]];
    expect((algorithm as { name: string }).name).toBe('ECDH1_DERIVE');
    expect(Buffer.from((algorithm as { params: { publicData: Buffer } }).params.publicData)).toEqual(Buffer.from(peer));
    expect(template).toEqual({ class: SECRET_KEY, keyType: 0x10, token: false, private: true, sensitive: false, extractable: true, valueLen: 32 });
    expect(fake.lastSecret).toEqual(Buffer.alloc(32, 0)); // the token's copy is wiped
    expect(fake.destroyed).toEqual([String(SECRET_KEY)]);
  });

  it('derive: a secret that is not 32 bytes is refused and still destroyed; a destroy that fails is ignored', async () => {
    const t = token();
    const b = await open();
    const h = foreignKey(t, 'k', {});
    fake.secretValue = Buffer.alloc(31, 1);
    expect((await code(b.deriveSharedSecret(h, peerPoint()), 'ERR_HSM_OPERATION_FAILED')).context).toEqual({ detail: 'length 31' });
    expect(fake.destroyed).toEqual([String(SECRET_KEY)]);
    fake.secretValue = null; // no CKA_VALUE at all
    expect((await code(b.deriveSharedSecret(h, peerPoint()), 'ERR_HSM_OPERATION_FAILED')).context).toEqual({ detail: 'length undefined' });
    expect(fake.destroyed).toEqual([String(SECRET_KEY), String(SECRET_KEY)]);
    fake.secretValue = undefined;
    fake.fail('destroy', new Error('cannot'));
    expect(await b.deriveSharedSecret(h, peerPoint())).toHaveLength(32);
  });

  it('derive: a bad peer point is refused before the token is asked; a call that returns nothing is refused', async () => {
    const t = token();
    const b = await open();
    const h = foreignKey(t, 'k', {});
    await code(b.deriveSharedSecret(h, new Uint8Array(65)), 'ERR_KEY_INVALID');
    expect(fake.derived).toHaveLength(0);
    fake.deriveReturns = null;
    expect((await code(b.deriveSharedSecret(h, peerPoint()), 'ERR_HSM_OPERATION_FAILED')).context).toEqual({ detail: 'no result' });
    fake.deriveReturns = undefined;
    expect((await code(b.deriveSharedSecret(h, peerPoint()), 'ERR_HSM_OPERATION_FAILED')).context).toEqual({ detail: 'no result' });
  });

  it('a message that is not bytes is refused before anything is signed', async () => {
    const t = token();
    const b = await open();
    const h = foreignKey(t, 'k', {});
    for (const m of ['text', [1, 2], undefined]) await code(b.sign(h, m as unknown as Uint8Array), 'ERR_INVALID_ARGUMENT');
    expect(fake.signed).toHaveLength(0);
  });

  it('handles: hex of 1 to 64 bytes, either case', async () => {
    const t = token();
    const b = await open();
    const h = foreignKey(t, 'k', {});
    expect(await b.sign(h.toLowerCase(), new Uint8Array(1))).toHaveLength(64);
    for (const bad of ['', 'A', 'AG', 'A'.repeat(130), 5 as unknown as string]) await code(b.sign(bad, new Uint8Array(1)), 'ERR_INVALID_ARGUMENT');
    expect(await b.sign('AB'.repeat(64), new Uint8Array(1)).catch((e: SmkiError) => e.code)).toBe('ERR_KEY_NOT_FOUND');
  });

  it('a handle that is not pure hex is refused whatever its length; the detail gives its length or type', async () => {
    const t = token();
    const b = await open();
    foreignKey(t, 'K', {}); // handle 4B
    for (const [bad, detail] of [
      ['', 'length 0'],
      ['ABC', 'length 3'],
      ['GA', 'length 2'],
      [' 4B1', 'length 4'],
      ['A'.repeat(130), 'length 130'],
      [5, 'number'],
      [null, 'object'],
      [undefined, 'undefined'],
      [new String('4B'), 'object'],
    ] as [unknown, string][]) {
      expect((await code(b.sign(bad as string, new Uint8Array(1)), 'ERR_INVALID_ARGUMENT')).context).toEqual({ detail });
    }
    expect(fake.signed).toHaveLength(0);
  });
});

describe('listHandles, destroyKey, sessions and close', () => {
  it('lists private and public objects of ours with an id, sorted; an empty list is checked against the token', async () => {
    const t = token();
    const b = await open();
    const h1 = foreignKey(t, 'zz', {});
    const h2 = foreignKey(t, 'aa', {});
    t.add({ class: PUBLIC_KEY, keyType: CKK_EC, id: Buffer.from('orphan'), label: 'smki/o' });
    t.add({ class: PRIVATE_KEY, keyType: CKK_EC, id: Buffer.alloc(0), label: 'smki/no-id' });
    t.add({ class: PRIVATE_KEY, keyType: CKK_EC, label: 'smki/undefined-id' });
    t.add({ class: PRIVATE_KEY, keyType: 0, id: Buffer.from('rsa'), label: 'smki/rsa' });
    t.add({ class: PRIVATE_KEY, keyType: CKK_EC, id: Buffer.from('nolabel') });
    expect(await b.listHandles()).toEqual([h2, Buffer.from('orphan').toString('hex').toUpperCase(), h1]);
    const empty = token('empty', 'S9');
    const e = await open({ tokenLabel: 'empty' });
    expect(await e.listHandles()).toEqual([]);
    empty.gone = true;
    await code(e.listHandles(), 'ERR_HSM_UNAVAILABLE');
  });

  it('destroyKey: private object first, then the public one; nothing to destroy is checked against the token', async () => {
    const t = token();
    const points: string[] = [];
    const b = await open({ fault: (p) => points.push(`${p} ${t.objects.size}`) });
    const h = foreignKey(t, 'k', {});
    await b.sign(h, new Uint8Array(1));
    await b.destroyKey(h);
    expect(fake.destroyed).toEqual([String(PRIVATE_KEY), String(PUBLIC_KEY)]);
    expect(points).toEqual(['pkcs11:after-destroy-private 1']);
    await code(b.sign(h, new Uint8Array(1)), 'ERR_KEY_NOT_FOUND'); // the cache was dropped
    await b.destroyKey(h);
    t.gone = true;
    await code(b.destroyKey(h), 'ERR_HSM_UNAVAILABLE');
  });

  it('listHandles and destroyKey ask the token whether it is there only when they found nothing', async () => {
    const t = token();
    const b = await open();
    const h = foreignKey(t, 'k', {});
    t.add({ class: PUBLIC_KEY, keyType: CKK_EC, id: Buffer.from('k') }); // same CKA_ID, no label: not ours
    const infos = fake.tokenInfos;
    expect(await b.listHandles()).toEqual([h]);
    await b.destroyKey(h);
    expect(fake.tokenInfos).toBe(infos);
    expect([...t.objects.values()].map((o) => o.attrs.label)).toEqual([undefined]); // the unlabelled object stays
    await b.destroyKey(h); // nothing of ours left: probed, the token is there
    expect(await b.listHandles()).toEqual([]); // probed too
    expect(fake.tokenInfos).toBe(infos + 2);
  });

  it('a cached public key is answered without waiting for a session', async () => {
    const t = token();
    const b = await open({ sessions: 1 });
    const h = foreignKey(t, 'k', {});
    const pub = await b.publicKey(h);
    const signing = b.sign(h, new Uint8Array(1)); // holds the only session until the token answers
    const signedBefore = await b.publicKey(h).then((p) => {
      expect(p).toEqual(pub);
      return fake.calls.includes('sign-done');
    });
    expect(signedBefore).toBe(false);
    await signing;
  });

  it('close waits for the operations under way, then logs out and closes the sessions', async () => {
    const t = token();
    const b = await open({ sessions: 2 });
    const h = foreignKey(t, 'k', {});
    const running = [b.sign(h, new Uint8Array(1)), b.sign(h, new Uint8Array(2))];
    const before = fake.calls.length;
    await within(b.close(), 'close');
    expect(fake.calls.slice(before).filter((c) => !c.startsWith('sign-init'))).toEqual(['sign-done', 'sign-done', 'logout', 'close', 'close', 'finalize']);
    expect((await Promise.all(running)).map((s) => s.length)).toEqual([64, 64]);
    opened.splice(opened.indexOf(b), 1);
  });

  it('operations beyond the pool wait for a session, and all complete', async () => {
    const t = token();
    const b = await open({ sessions: 1 });
    const h = foreignKey(t, 'k', {});
    const sigs = await Promise.all(Array.from({ length: 5 }, () => b.sign(h, new Uint8Array(1))));
    expect(sigs.every((s) => s.length === 64)).toBe(true);
  });

  it('close: queued operations are refused, the running one finishes; logout and close failures are ignored', async () => {
    const t = token();
    const b = await open({ sessions: 1 });
    const h = foreignKey(t, 'k', {});
    const running = b.sign(h, new Uint8Array(1));
    const queued = b.sign(h, new Uint8Array(2)).catch((e: SmkiError) => e);
    fake.fail('logout', new Error('not logged in'));
    fake.fail('close', new Error('gone'));
    fake.fail('finalize', new Error('finalised already'));
    await b.close();
    expect((await running).length).toBe(64);
    expect(((await queued) as SmkiError).code).toBe('ERR_HSM_UNAVAILABLE');
    expect(((await queued) as SmkiError).context).toEqual({ detail: 'closed' });
    expect((await code(b.sign(h, new Uint8Array(1)), 'ERR_HSM_UNAVAILABLE')).context).toEqual({ detail: 'closed' });
    expect((await code(b.publicKey(h), 'ERR_HSM_UNAVAILABLE')).context).toEqual({ detail: 'closed' }); // even from the cache
    await b.close();
    opened.splice(opened.indexOf(b), 1);
    expect(fake.initialized).toBe(false);
  });
});
