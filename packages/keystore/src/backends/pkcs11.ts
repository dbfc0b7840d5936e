/**
 * The PKCS#11 key backend: P-256 keys generated on an HSM token through
 * [graphene-pk11](https://github.com/PeculiarVentures/graphene), sensitive and non-extractable,
 * used there for ECDSA and ECDH. Tested against SoftHSM2.
 *
 * Security posture:
 * - Private keys are generated on the token (`CKM_EC_KEY_PAIR_GEN`) with `CKA_SENSITIVE` true and
 *   `CKA_EXTRACTABLE` false, and the backend reads the attributes back after generation (and on
 *   every first use of a key) and refuses a key the token did not make so (fail closed).
 * - The SHA-256 digest is computed on the host; the token signs the 32-byte digest with
 *   `CKM_ECDSA`. The message never goes to the token, the private key never leaves it.
 * - ECDH runs on the token (`CKM_ECDH1_DERIVE`, KDF NULL). The shared secret Z has to reach the
 *   host (the GBCS KDF runs there, per the `KeyAgreement` interface), so it is derived as a
 *   session object that is extractable and not sensitive, read, and destroyed at once.
 * - The PIN is used for `C_Login` and otherwise kept only as an HMAC under a random key held in
 *   this process (to check that a second backend on an already logged-in token has the same
 *   PIN). It is never put in an error, a message or a log.
 * - graphene-pk11 is an optional peer dependency, loaded only by {@link Pkcs11KeyBackend.open}:
 *   importing `@smki/keystore` never loads a native addon.
 * @see PKCS #11 Cryptographic Token Interface Base Specification v2.40 / Current Mechanisms v2.40 §2.3
 * @module
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { realpathSync } from 'node:fs';
import type * as GrapheneNs from 'graphene-pk11';
import { fromHex, isP256Point, publicKeyFromRaw, SmkiError, toHex, type SmkiErrorCode } from '@smki/core';
import type { GeneratedKey, KeyBackend, KeySpec } from '../backend.js';
import type { FaultHook } from '../internal/fsutil.js';

type Graphene = typeof GrapheneNs;
type Session = GrapheneNs.Session;
type Slot = GrapheneNs.Slot;
type Module = GrapheneNs.Module;
type Key = GrapheneNs.Key;

/** `CKF_OS_LOCKING_OK` (PKCS #11 v2.40 §5.4 C_Initialize): the library uses OS mutexes. */
const CKF_OS_LOCKING_OK = 0x00000002;
/** DER of the OID prime256v1 / secp256r1 (1.2.840.10045.3.1.7), the value of `CKA_EC_PARAMS`. */
const P256_EC_PARAMS = Buffer.from('06082a8648ce3d030107', 'hex');
/** Longest CKA_ID this backend makes (bytes of the key id). */
const MAX_ID_BYTES = 64;
/** Longest CKA_LABEL (prefix + label) this backend makes. */
const MAX_LABEL_BYTES = 255;
/** Most sessions one backend opens. */
const MAX_SESSIONS = 64;

// The sets take `undefined` (an error without a return code), which none of them holds.
/** PKCS#11 return codes that mean the token or the module cannot be reached any more. */
const UNAVAILABLE_CKR: ReadonlySet<string | undefined> = new Set([
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
]);
/** Return codes after which the token is probed, to tell "gone" from "refused". */
const PROBE_CKR: ReadonlySet<string | undefined> = new Set(['CKR_GENERAL_ERROR', 'CKR_FUNCTION_FAILED', 'CKR_OBJECT_HANDLE_INVALID', 'CKR_KEY_HANDLE_INVALID']);
/** Return codes meaning the cached object handle is stale (the object was destroyed). */
const STALE_HANDLE_CKR: ReadonlySet<string | undefined> = new Set(['CKR_OBJECT_HANDLE_INVALID', 'CKR_KEY_HANDLE_INVALID']);
/** Return codes of a refused PIN. */
const LOGIN_CKR: ReadonlySet<string | undefined> = new Set(['CKR_PIN_INCORRECT', 'CKR_PIN_INVALID', 'CKR_PIN_LEN_RANGE', 'CKR_PIN_LOCKED', 'CKR_PIN_EXPIRED']);

/** Options of {@link Pkcs11KeyBackend.open}. */
export interface Pkcs11BackendOptions {
  /** Path of the PKCS#11 module (shared library), e.g. `/usr/lib/softhsm/libsofthsm2.so`. */
  readonly module: string;
  /** The token's label (`CK_TOKEN_INFO.label`, trailing blanks ignored). Exactly one token must carry it. */
  readonly tokenLabel: string;
  /** The user PIN. Used for `C_Login` only; never stored, never put in an error. */
  readonly pin: string;
  /**
   * Prefix of the `CKA_LABEL` of every key this backend makes (default `smki/`). The backend only
   * lists, uses and destroys keys whose label has this prefix, so several stores can share a token
   * without seeing each other's keys.
   */
  readonly labelPrefix?: string;
  /**
   * How many sessions to open (default 4, at most 64). Each operation holds one session for its
   * duration; the token works on up to this many operations at once, on libuv's thread pool.
   */
  readonly sessions?: number;
  /**
   * Fault-injection hook for crash tests; points `pkcs11:after-generate` (both key objects on the
   * token, not yet returned) and `pkcs11:after-destroy-private` (private object gone, public not
   * yet). Never set in production.
   */
  readonly fault?: FaultHook;
}

/** A session of the pool and whether an operation holds it. */
interface Lane {
  readonly session: Session;
  busy: boolean;
}

/** What the backend caches about a key it has found. */
interface CachedKey {
  /** Object handle of the private key (valid in every session of this application). */
  readonly privateHandle: Buffer;
  /** Its 65-byte public point. */
  readonly publicKey: Uint8Array;
}

/** A module loaded in this process, shared by every backend that opens it. */
interface SharedModule {
  readonly module: Module;
  /** Backends that hold it open. */
  refs: number;
  /**
   * How many times `open` has initialised it. A backend opened in an earlier epoch is dead: its
   * session handles are void, and the numbers may since have been given to new sessions.
   */
  epoch: number;
  /** Logged-in tokens, by slot handle + serial number; replaced when the module is re-initialised. */
  tokens: Map<string, SharedLogin>;
}

/** A token this process is logged in to. */
interface SharedLogin {
  refs: number;
  /** HMAC of the PIN that logged in, under {@link pinTagKey}. */
  readonly pinTag: Buffer;
}

// PKCS#11 state (initialisation, login) is per process and per module, not per handle: two
// `Module.load` calls of one library share it. Backends therefore share one Module per library
// path and one login per token, counted. Filled by `open`, never at import time.
const sharedModules = new Map<string, SharedModule>();
let pinTagKeyValue: Buffer | undefined;
function pinTagKey(): Buffer {
  pinTagKeyValue ??= randomBytes(32);
  return pinTagKeyValue;
}
function pinTag(pin: string): Buffer {
  return createHmac('sha256', pinTagKey()).update(pin).digest(); // a string is hashed as UTF-8
}

/** The `CKR_…` name in a pkcs11js error, if there is one. */
function ckrOf(e: unknown): string | undefined {
  if (!(e instanceof Error)) return undefined;
  return /\bCKR_[A-Z0-9_]+/.exec(e.message)?.[0] ?? /\bCKR_[A-Z0-9_]+/.exec(String(e.stack))?.[0];
}

// Stryker disable all: functionOf only names the PKCS#11 function in the message text of hsmError's SmkiError
/** The PKCS#11 function a pkcs11js error came from (`C_Sign`), if it says. */
function functionOf(e: unknown): string {
  const m = (e as { method?: unknown } | undefined)?.method;
  return typeof m === 'string' && /^C_\w+$/.test(m) ? m : 'PKCS#11';
}
// Stryker restore all

/**
 * Wrap an error from the native layer (never a SmkiError: callers pass those on) in a SmkiError:
 * the `CKR_…` name goes in `context.detail`, the original error is the `cause`. The message names
 * the operation and the return code, never arguments (so never the PIN).
 */
function hsmError(operationForMessage: string, e: unknown, code?: SmkiErrorCode): SmkiError {
  const ckr = ckrOf(e);
  const c: SmkiErrorCode = code ?? (UNAVAILABLE_CKR.has(ckr) ? 'ERR_HSM_UNAVAILABLE' : 'ERR_HSM_OPERATION_FAILED');
  const what = ckr ?? 'native error';
  return new SmkiError(c, `PKCS#11 ${operationForMessage} failed: ${functionOf(e)} returned ${what}`, { detail: what }, { cause: e });
}

function invalid(message: string, detail?: string): SmkiError {
  return new SmkiError('ERR_INVALID_ARGUMENT', message, detail === undefined ? {} : { detail });
}

/**
 * Turn a graphene callback call into a promise; a synchronous throw rejects it too, and so does a
 * call that reports success with no result (`ERR_HSM_OPERATION_FAILED`, detail `no result`).
 */
function nativeAsync<T>(start: (cb: (err: Error | null, value: T | null) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    try {
      start((err, value) => {
        if (err) reject(err);
        else if (value === null || value === undefined) reject(new SmkiError('ERR_HSM_OPERATION_FAILED', 'the PKCS#11 call returned no result', { detail: 'no result' }));
        else resolve(value);
      });
    } catch (e) {
      reject(e);
    }
  });
}

/** The 65-byte point from `CKA_EC_POINT` (a DER OCTET STRING per PKCS #11 v2.40; some tokens give it bare). */
function unwrapEcPoint(value: Buffer | undefined): Uint8Array {
  let point: Buffer | undefined;
  if (value?.length === 67 && value[0] === 0x04 && value[1] === 0x41) point = value.subarray(2);
  else if (value?.length === 65) point = value;
  // Either way the point itself must start 04 (uncompressed).
  if (!point || point[0] !== 0x04) {
    throw new SmkiError('ERR_HSM_OPERATION_FAILED', 'CKA_EC_POINT is not an uncompressed P-256 point', { detail: `length ${value?.length}` });
  }
  const raw = new Uint8Array(point);
  publicKeyFromRaw(raw); // on the curve, or ERR_KEY_INVALID
  return raw;
}

async function loadGraphene(): Promise<Graphene> {
  try {
    const m = (await import('graphene-pk11')) as Graphene & { default?: Graphene };
    return m.default ?? m;
  } catch (cause) {
    throw new SmkiError(
      'ERR_HSM_UNAVAILABLE',
      'graphene-pk11 is not installed; it is an optional peer dependency of @smki/keystore (npm install graphene-pk11@2.3.6)',
      { detail: 'graphene-pk11' },
      { cause },
    );
  }
}

/**
 * A {@link KeyBackend} over a PKCS#11 token (an HSM, SoftHSM2): keys are generated and used on the
 * token, `CKA_SENSITIVE` true and `CKA_EXTRACTABLE` false, and never leave it.
 *
 * Each key is a token key pair: the private key (`CKA_SIGN` and `CKA_DERIVE` true; the store, not
 * the token, decides which purpose a key serves) and the public key, both with `CKA_ID` = the
 * UTF-8 bytes of the store's key id and `CKA_LABEL` = `labelPrefix + label` (organisation,
 * portfolio, purpose and generation). The handle is the upper-case hex of `CKA_ID`.
 *
 * Concurrency: any number of async callers may use one backend. Operations run on a pool of
 * sessions, one operation per session at a time (so a `C_SignInit`/`C_Sign` pair is never
 * interleaved on a session), on libuv's thread pool; the module is initialised with
 * `CKF_OS_LOCKING_OK` so the library locks its own state between those threads. Key generation
 * and destruction are serialised within a backend.
 *
 * Failures: a token or module that is gone gives `ERR_HSM_UNAVAILABLE`, a refused operation
 * `ERR_HSM_OPERATION_FAILED`, both with the `CKR_…` name in `context.detail` and the pkcs11js
 * error as `cause`; no raw pkcs11js error escapes.
 *
 * @example
 * ```ts
 * import { Pkcs11KeyBackend } from '@smki/keystore';
 * const hsm = await Pkcs11KeyBackend.open({
 *   module: '/usr/lib/softhsm/libsofthsm2.so',
 *   tokenLabel: 'smki',
 *   pin: process.env.SMKI_HSM_PIN ?? '',
 * });
 * const { handle, publicKey } = await hsm.generateKey({ keyId: 'K1', label: '90B3D51F30010000/north/DS/g1' });
 * const signature = await hsm.sign(handle, new TextEncoder().encode('message'));
 * await hsm.close();
 * ```
 * @see PKCS #11 Current Mechanisms v2.40 §2.3 (CKM_EC_KEY_PAIR_GEN, CKM_ECDSA, CKM_ECDH1_DERIVE)
 */
export class Pkcs11KeyBackend implements KeyBackend {
  /** Always `pkcs11`. */
  readonly kind = 'pkcs11';
  /** The `CKA_LABEL` prefix of this backend's keys. */
  readonly labelPrefix: string;
  /** The label of the token in use. */
  readonly tokenLabel: string;

  readonly #g: Graphene;
  readonly #shared: SharedModule;
  readonly #epoch: number;
  readonly #login: SharedLogin;
  readonly #loginKey: string;
  readonly #slot: Slot;
  readonly #lanes: Lane[];
  readonly #fault: FaultHook | undefined;
  readonly #cache = new Map<string, CachedKey>();
  #waiters: Array<{ resolve: (lane: Lane) => void; reject: (e: unknown) => void }> = [];
  #inFlight = 0;
  #drained: (() => void) | undefined;
  #closed = false;
  #mutex: Promise<void> = Promise.resolve();

  private constructor(init: {
    g: Graphene;
    shared: SharedModule;
    login: SharedLogin;
    loginKey: string;
    slot: Slot;
    sessions: Session[];
    labelPrefix: string;
    tokenLabel: string;
    fault: FaultHook | undefined;
  }) {
    this.#g = init.g;
    this.#shared = init.shared;
    this.#epoch = init.shared.epoch;
    this.#login = init.login;
    this.#loginKey = init.loginKey;
    this.#slot = init.slot;
    this.#lanes = init.sessions.map((session) => ({ session, busy: false }));
    this.labelPrefix = init.labelPrefix;
    this.tokenLabel = init.tokenLabel;
    this.#fault = init.fault;
  }

  /**
   * Load the module, find the token by label, open a pool of read-write sessions and log in as
   * the user.
   *
   * The module is initialised with `CKF_OS_LOCKING_OK` and shared by every backend of this
   * process that names the same library (PKCS#11 state is per process); it is finalised when the
   * last of them closes. A second backend on a token this process is already logged in to must
   * present the same PIN.
   *
   * @throws SmkiError `ERR_INVALID_ARGUMENT` (bad options), `ERR_HSM_UNAVAILABLE` (graphene-pk11
   *   missing, module not loadable, no token or more than one with this label),
   *   `ERR_HSM_LOGIN_FAILED` (PIN refused, locked or expired; or the token is logged in with
   *   another PIN), `ERR_HSM_OPERATION_FAILED`
   */
  static async open(options: Pkcs11BackendOptions): Promise<Pkcs11KeyBackend> {
    const { module: modulePath, tokenLabel, pin } = options ?? ({} as Pkcs11BackendOptions);
    const labelPrefix = options?.labelPrefix ?? 'smki/';
    const sessionCount = options?.sessions ?? 4;
    if (typeof modulePath !== 'string' || modulePath.length === 0) throw invalid('module must be the path of a PKCS#11 library');
    if (typeof tokenLabel !== 'string' || tokenLabel.length === 0 || Buffer.byteLength(tokenLabel) > 32) {
      throw invalid('tokenLabel must be 1 to 32 bytes');
    }
    if (typeof pin !== 'string' || pin.length === 0) throw invalid('pin must be a non-empty string');
    if (typeof labelPrefix !== 'string' || Buffer.byteLength(labelPrefix) > 128) throw invalid('labelPrefix must be a string of at most 128 bytes');
    if (!Number.isInteger(sessionCount) || sessionCount < 1 || sessionCount > MAX_SESSIONS) {
      throw invalid(`sessions must be an integer from 1 to ${MAX_SESSIONS}`, String(sessionCount));
    }
    const g = await loadGraphene();

    let path: string;
    try {
      path = realpathSync(modulePath);
    } catch (cause) {
      throw new SmkiError('ERR_HSM_UNAVAILABLE', `PKCS#11 module ${modulePath} not found`, { detail: modulePath }, { cause });
    }
    let shared = sharedModules.get(path);
    if (!shared) {
      let module: Module;
      try {
        module = g.Module.load(path, path);
      } catch (cause) {
        throw hsmError(`load of ${modulePath}`, cause, 'ERR_HSM_UNAVAILABLE');
      }
      shared = { module, refs: 0, epoch: 0, tokens: new Map() };
      sharedModules.set(path, shared);
    }
    // Initialise unless this process already has (graphene tolerates ALREADY_INITIALIZED). If the
    // module was finalised underneath us, the old logins are void: start a new map.
    let initialised = true;
    try {
      shared.module.lib.C_GetInfo();
    } catch {
      initialised = false;
    }
    if (!initialised) {
      try {
        shared.module.initialize({ flags: CKF_OS_LOCKING_OK });
      } catch (cause) {
        throw hsmError(`initialisation of ${modulePath}`, cause, 'ERR_HSM_UNAVAILABLE');
      }
      shared.tokens = new Map();
      // Stryker disable next-line UpdateOperator: equivalent; the epoch is only compared for equality, and -- gives a new value each time as ++ does
      shared.epoch++;
    }
    shared.refs++;

    const sessions: Session[] = [];
    try {
      const slot = findSlot(shared.module, tokenLabel);
      const token = slot.getToken();
      const loginKey = `${slot.handle.toString('hex')}:${token.serialNumber}`;
      for (let i = 0; i < sessionCount; i++) sessions.push(slot.open(g.SessionFlag.SERIAL_SESSION | g.SessionFlag.RW_SESSION));
      const tag = pinTag(pin);
      let login = shared.tokens.get(loginKey);
      if (login) {
        if (!timingSafeEqual(login.pinTag, tag)) {
          throw new SmkiError('ERR_HSM_LOGIN_FAILED', `token ${tokenLabel} is logged in by this process with another PIN`, { detail: 'PIN mismatch' });
        }
        login.refs++;
      } else {
        try {
          sessions[0]!.login(pin, g.UserType.USER);
        } catch (cause) {
          const ckr = ckrOf(cause);
          if (LOGIN_CKR.has(ckr)) {
            throw new SmkiError('ERR_HSM_LOGIN_FAILED', `token ${tokenLabel} refused the PIN: ${ckr}`, { detail: ckr! }, { cause }); // in LOGIN_CKR: defined
          }
          if (ckr === 'CKR_USER_ALREADY_LOGGED_IN' || ckr === 'CKR_USER_ANOTHER_ALREADY_LOGGED_IN') {
            // Logged in by someone else in this process: we cannot check the PIN, so refuse.
            throw new SmkiError('ERR_HSM_LOGIN_FAILED', `token ${tokenLabel} is already logged in by other code in this process; cannot verify the PIN`, { detail: ckr }, { cause });
          }
          throw hsmError('C_Login', cause);
        }
        login = { refs: 1, pinTag: tag };
        shared.tokens.set(loginKey, login);
      }
      return new Pkcs11KeyBackend({ g, shared, login, loginKey, slot, sessions, labelPrefix, tokenLabel, fault: options.fault });
    } catch (e) {
      for (const s of sessions) {
        try {
          s.close();
        } catch {
          /* the session is unusable anyway */
        }
      }
      releaseModule(shared);
      throw e instanceof SmkiError ? e : hsmError(`open of token ${tokenLabel}`, e);
    }
  }

  /**
   * Generate a P-256 key pair on the token. Resolves once both objects are token objects (durable
   * on the token) and the token has confirmed the private key is sensitive, never extractable
   * and generated on the token; if any step fails, the objects made so far are destroyed before
   * the promise rejects. A crash between generation and the caller's metadata leaves a key pair
   * that {@link Pkcs11KeyBackend.listHandles} reports.
   * @throws SmkiError `ERR_INVALID_ARGUMENT` (key id empty or over 64 bytes, label too long),
   *   `ERR_HSM_KEY_EXISTS`, `ERR_HSM_UNAVAILABLE`, `ERR_HSM_OPERATION_FAILED`
   */
  async generateKey(spec: KeySpec): Promise<GeneratedKey> {
    const keyId = spec?.keyId;
    const label = spec?.label;
    if (typeof keyId !== 'string' || keyId.length === 0) throw invalid('keyId must be a non-empty string');
    const id = Buffer.from(keyId); // UTF-8
    if (id.length > MAX_ID_BYTES) throw invalid(`keyId is over ${MAX_ID_BYTES} bytes`, `${id.length} bytes`);
    if (typeof label !== 'string') throw invalid('label must be a string');
    const fullLabel = this.labelPrefix + label;
    if (Buffer.byteLength(fullLabel) > MAX_LABEL_BYTES) throw invalid(`label is over ${MAX_LABEL_BYTES} bytes with its prefix`);
    const handle = toHex(id);
    return this.#exclusive(() =>
      this.#run('generateKey', async (session) => {
        const g = this.#g;
        // Any object with this CKA_ID, whatever its label: never two keys behind one handle.
        const existing = session.find({ id }).length;
        if (existing > 0) throw new SmkiError('ERR_HSM_KEY_EXISTS', `the token already holds an object with CKA_ID ${handle}`, { detail: handle });
        const pair = await nativeAsync<GrapheneNs.IKeyPair>((cb) =>
          session.generateKeyPair(
            g.KeyGenMechanism.EC,
            { keyType: g.KeyType.EC, token: true, private: false, verify: true, paramsEC: P256_EC_PARAMS, id, label: fullLabel },
            {
              keyType: g.KeyType.EC,
              token: true,
              private: true,
              sensitive: true,
              extractable: false,
              sign: true,
              derive: true,
              decrypt: false,
              unwrap: false,
              id,
              label: fullLabel,
            },
            cb,
          ),
        );
        try {
          // Another process on the token may have made a key under the same CKA_ID between the
          // check above and this generation (the check is not atomic across processes): then
          // neither pair may stand behind the handle. Ours is destroyed and the call refused.
          const now = session.find({ id }).length;
          if (now !== 2) throw new SmkiError('ERR_HSM_KEY_EXISTS', `another process made an object with CKA_ID ${handle} at the same time (${now} objects under it)`, { detail: handle });
          this.#fault?.('pkcs11:after-generate');
          checkPrivateKeyAttributes(pair.privateKey, handle, true);
          const publicKey = unwrapEcPoint(pair.publicKey.getAttribute({ pointEC: null }).pointEC ?? undefined);
          this.#cache.set(handle, { privateHandle: pair.privateKey.handle, publicKey });
          return { handle, publicKey: new Uint8Array(publicKey) };
        } catch (e) {
          for (const obj of [pair.privateKey, pair.publicKey]) {
            try {
              obj.destroy();
            } catch {
              /* best effort: listHandles reports what is left */
            }
          }
          throw e;
        }
      }),
    );
  }

  /**
   * ECDSA P-256 over SHA-256 of `message`: the digest is computed on the host, the token signs
   * it with `CKM_ECDSA`. Returns the 64-byte `r ‖ s` (high-S values as the token makes them).
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_KEY_NOT_FOUND`, `ERR_KEY_INVALID` (an object
   *   under this handle is not a sensitive, non-extractable P-256 key), `ERR_HSM_UNAVAILABLE`,
   *   `ERR_HSM_OPERATION_FAILED`
   * @see PKCS #11 Current Mechanisms v2.40 §2.3.6 (ECDSA: signature is r ‖ s)
   */
  async sign(handle: string, message: Uint8Array): Promise<Uint8Array> {
    const h = normaliseHandle(handle);
    if (!(message instanceof Uint8Array)) throw invalid('message must be a Uint8Array');
    const digest = createHash('sha256').update(message).digest();
    return this.#run('sign', async (session) =>
      this.#withKey(session, h, async (key) => {
        const signature = await nativeAsync<Buffer>((cb) => session.createSign('ECDSA', key).once(digest, cb));
        if (signature.length !== 64) {
          throw new SmkiError('ERR_HSM_OPERATION_FAILED', 'the token returned a signature that is not 64 bytes', { detail: `length ${signature.length}` });
        }
        return new Uint8Array(signature);
      }),
    );
  }

  /**
   * ECDH on the token (`CKM_ECDH1_DERIVE`, KDF NULL) with a 65-byte uncompressed peer point:
   * the 32-byte x-coordinate Z. The peer point is checked to be on P-256 first. Z is derived as
   * a session object (not a token object) that is extractable so the host can read it, and
   * destroyed right after.
   * @throws SmkiError `ERR_KEY_INVALID` (peer point), `ERR_INVALID_ARGUMENT`, `ERR_KEY_NOT_FOUND`,
   *   `ERR_HSM_UNAVAILABLE`, `ERR_HSM_OPERATION_FAILED`
   * @see PKCS #11 Current Mechanisms v2.40 §2.3.16 (CKM_ECDH1_DERIVE); SEC 1 v2 §3.3.1
   */
  async deriveSharedSecret(handle: string, peerPublicKey: Uint8Array): Promise<Uint8Array> {
    const h = normaliseHandle(handle);
    if (!isP256Point(peerPublicKey)) throw new SmkiError('ERR_KEY_INVALID', 'expected a 65-byte uncompressed point on P-256', {});
    const peer = Buffer.from(peerPublicKey);
    return this.#run('deriveSharedSecret', async (session) =>
      this.#withKey(session, h, async (key) => {
        const g = this.#g;
        const secret = await nativeAsync<GrapheneNs.SecretKey>((cb) =>
          session.deriveKey(
            { name: 'ECDH1_DERIVE', params: new g.EcdhParams(g.EcKdf.NULL, null, peer) },
            key,
            {
              class: g.ObjectClass.SECRET_KEY,
              keyType: g.KeyType.GENERIC_SECRET,
              token: false,
              private: true,
              sensitive: false,
              extractable: true,
              valueLen: 32,
            },
            cb as (error: Error | null, data: GrapheneNs.Key | null) => void,
          ),
        );
        try {
          const value = secret.getAttribute({ value: null }).value;
          if (!value || value.length !== 32) {
            throw new SmkiError('ERR_HSM_OPERATION_FAILED', 'the token returned a shared secret that is not 32 bytes', { detail: `length ${value?.length}` });
          }
          const z = new Uint8Array(value);
          value.fill(0);
          return z;
        } finally {
          try {
            secret.destroy();
          } catch {
            /* a session object; it dies with the session at the latest */
          }
        }
      }),
    );
  }

  /**
   * The 65-byte public point of a key on the token (from the public key object's
   * `CKA_EC_POINT`, cached).
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_KEY_NOT_FOUND`, `ERR_KEY_INVALID`,
   *   `ERR_HSM_UNAVAILABLE`, `ERR_HSM_OPERATION_FAILED`
   */
  async publicKey(handle: string): Promise<Uint8Array> {
    const h = normaliseHandle(handle);
    const cached = this.#cache.get(h);
    if (cached) {
      this.#assertOpen();
      return new Uint8Array(cached.publicKey);
    }
    return this.#run('publicKey', async (session) => new Uint8Array(this.#lookup(session, h).publicKey));
  }

  /**
   * The handles of every key object (private or public) on the token whose label has this
   * backend's prefix, sorted. A public key without its private key (a crash inside generation
   * or destruction) is listed too, so a store can find and destroy it.
   * @throws SmkiError `ERR_HSM_UNAVAILABLE`, `ERR_HSM_OPERATION_FAILED`
   */
  async listHandles(): Promise<string[]> {
    return this.#run('listHandles', async (session) => {
      const g = this.#g;
      const handles = new Set<string>();
      for (const cls of [g.ObjectClass.PRIVATE_KEY, g.ObjectClass.PUBLIC_KEY]) {
        const found = session.find({ class: cls, keyType: g.KeyType.EC });
        for (let i = 0; i < found.length; i++) {
          const attrs = found.items(i).getAttribute({ id: null, label: null });
          if (typeof attrs.label === 'string' && attrs.label.startsWith(this.labelPrefix) && attrs.id && attrs.id.length > 0) {
            handles.add(toHex(attrs.id));
          }
        }
      }
      if (handles.size === 0) this.#probe('listHandles', undefined);
      return [...handles].sort();
    });
  }

  /**
   * Destroy the private and public key objects under `handle` (private first). Idempotent: a
   * handle with nothing left on the token resolves, so a store can retry clean-up after a
   * crash.
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_HSM_UNAVAILABLE`, `ERR_HSM_OPERATION_FAILED`
   */
  async destroyKey(handle: string): Promise<void> {
    const h = normaliseHandle(handle);
    return this.#exclusive(() =>
      this.#run('destroyKey', async (session) => {
        const g = this.#g;
        const id = Buffer.from(fromHex(h));
        this.#cache.delete(h);
        let destroyedAny = false;
        for (const cls of [g.ObjectClass.PRIVATE_KEY, g.ObjectClass.PUBLIC_KEY]) {
          const found = session.find({ class: cls, id });
          for (let i = 0; i < found.length; i++) {
            const obj = found.items(i);
            const label = obj.getAttribute({ label: null }).label;
            if (typeof label === 'string' && label.startsWith(this.labelPrefix)) {
              obj.destroy();
              destroyedAny = true;
            }
          }
          if (cls === g.ObjectClass.PRIVATE_KEY) this.#fault?.('pkcs11:after-destroy-private');
        }
        if (!destroyedAny) this.#probe('destroyKey', undefined);
      }),
    );
  }

  /**
   * Close the sessions (after the operations in progress finish; those queued are refused), log
   * out when this is the last backend of the process on the token, and finalise the module when
   * it is the last on the module. Idempotent; never throws (a token that is gone has nothing left
   * to release).
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(new SmkiError('ERR_HSM_UNAVAILABLE', 'the PKCS#11 backend was closed', { detail: 'closed' }));
    if (this.#inFlight > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    this.#cache.clear();
    if (this.#shared.epoch !== this.#epoch) {
      // The module was finalised and initialised again: our session handles are void, and the
      // same numbers may now be another backend's sessions. Touch nothing.
      releaseModule(this.#shared);
      return;
    }
    // In the backend's own epoch the map's entry under its login key is its login: the map is only
    // replaced with a new epoch, or when no backend holds the module.
    if (--this.#login.refs === 0) {
      this.#shared.tokens.delete(this.#loginKey);
      try {
        this.#lanes[0]!.session.logout();
      } catch {
        /* not logged in any more, or the token is gone */
      }
    }
    for (const lane of this.#lanes) {
      try {
        lane.session.close();
      } catch {
        /* already closed or the token is gone */
      }
    }
    releaseModule(this.#shared);
  }

  #assertOpen(): void {
    if (this.#closed) throw new SmkiError('ERR_HSM_UNAVAILABLE', 'the PKCS#11 backend is closed', { detail: 'closed' });
    this.#assertCurrentEpoch();
  }

  #assertCurrentEpoch(): void {
    if (this.#shared.epoch !== this.#epoch) {
      throw new SmkiError(
        'ERR_HSM_UNAVAILABLE',
        `the PKCS#11 module was finalised and initialised again since this backend opened token ${this.tokenLabel}; open it again`,
        { detail: 'CKR_CRYPTOKI_NOT_INITIALIZED' },
      );
    }
  }

  /** Run `fn` after every earlier generate/destroy of this backend has finished. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#mutex.then(fn);
    this.#mutex = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  #acquire(): Promise<Lane> {
    const free = this.#lanes.find((l) => !l.busy);
    if (free) {
      free.busy = true;
      return Promise.resolve(free);
    }
    return new Promise<Lane>((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  #release(lane: Lane): void {
    const next = this.#waiters.shift();
    if (next) next.resolve(lane);
    else lane.busy = false;
  }

  /** Run one operation on a session of its own; map every native error to a SmkiError. */
  async #run<T>(operationForMessage: string, fn: (session: Session) => Promise<T>): Promise<T> {
    this.#assertOpen();
    this.#inFlight++;
    let lane: Lane | undefined;
    try {
      lane = await this.#acquire();
      // An operation admitted before close() runs (close waits for it); one whose module was
      // re-initialised meanwhile does not.
      this.#assertCurrentEpoch();
      return await fn(lane.session);
    } catch (e) {
      if (e instanceof SmkiError) throw e;
      if (PROBE_CKR.has(ckrOf(e))) this.#probe(operationForMessage, e);
      throw hsmError(operationForMessage, e);
    } finally {
      if (lane) this.#release(lane);
      if (--this.#inFlight === 0 && this.#drained) this.#drained();
    }
  }

  /**
   * Check that the token is still in its slot, initialised and not in an error state; if not,
   * throw `ERR_HSM_UNAVAILABLE` naming the operation and the return code (with `cause`, the
   * error that made us look, when there is one).
   */
  #probe(operationForMessage: string, cause: unknown): void {
    let token: GrapheneNs.Token;
    try {
      token = this.#slot.getToken();
    } catch (e) {
      const ckr = ckrOf(e) ?? 'native error';
      throw new SmkiError(
        'ERR_HSM_UNAVAILABLE',
        `PKCS#11 ${operationForMessage} failed: token ${this.tokenLabel} is gone or failing (C_GetTokenInfo returned ${ckr})`,
        { detail: ckr },
        { cause: cause ?? e },
      );
    }
    const flags = token.flags;
    const g = this.#g;
    if (token.label.trimEnd() !== this.tokenLabel || (flags & g.TokenFlag.TOKEN_INITIALIZED) === 0 || (flags & g.TokenFlag.ERROR_STATE) !== 0) {
      throw new SmkiError(
        'ERR_HSM_UNAVAILABLE',
        `PKCS#11 ${operationForMessage} failed: token ${this.tokenLabel} is no longer in its slot`,
        { detail: 'CKR_TOKEN_NOT_PRESENT' },
        { cause }, // SmkiError leaves an undefined cause out
      );
    }
  }

  /** Use the key under `handle`; if its cached object handle went stale, look it up once more. */
  async #withKey<T>(session: Session, handle: string, fn: (key: Key) => Promise<T>): Promise<T> {
    const Private = this.#g.PrivateKey;
    const first = this.#lookup(session, handle);
    try {
      return await fn(new Private(first.privateHandle, session, session.lib));
    } catch (e) {
      if (!STALE_HANDLE_CKR.has(ckrOf(e))) throw e;
      this.#cache.delete(handle);
      this.#probe('key lookup', e);
      const again = this.#lookup(session, handle);
      return fn(new Private(again.privateHandle, session, session.lib));
    }
  }

  /** Find (or take from the cache) the key under `handle`, checking it is ours and sound. */
  #lookup(session: Session, handle: string): CachedKey {
    const cached = this.#cache.get(handle);
    if (cached) return cached;
    const g = this.#g;
    const id = Buffer.from(fromHex(handle));
    const mine = (cls: number): GrapheneNs.SessionObject[] => {
      const found = session.find({ class: cls, id });
      const out: GrapheneNs.SessionObject[] = [];
      for (let i = 0; i < found.length; i++) {
        const obj = found.items(i);
        const label = obj.getAttribute({ label: null }).label;
        if (typeof label === 'string' && label.startsWith(this.labelPrefix)) out.push(obj);
      }
      return out;
    };
    const privates = mine(g.ObjectClass.PRIVATE_KEY);
    if (privates.length === 0) {
      this.#probe('key lookup', undefined);
      throw new SmkiError('ERR_KEY_NOT_FOUND', `no private key with CKA_ID ${handle} on token ${this.tokenLabel}`, { detail: handle });
    }
    if (privates.length > 1) {
      throw new SmkiError('ERR_HSM_OPERATION_FAILED', `more than one private key with CKA_ID ${handle}`, { detail: handle });
    }
    const privateKey = privates[0]!;
    checkPrivateKeyAttributes(privateKey, handle, false);
    const publics = mine(g.ObjectClass.PUBLIC_KEY);
    if (publics.length !== 1) {
      throw new SmkiError('ERR_HSM_OPERATION_FAILED', `key ${handle} has ${publics.length} public key objects, expected 1`, { detail: handle });
    }
    const publicKey = unwrapEcPoint(publics[0]!.getAttribute({ pointEC: null }).pointEC ?? undefined);
    const entry: CachedKey = { privateHandle: privateKey.handle, publicKey };
    this.#cache.set(handle, entry);
    return entry;
  }
}

/**
 * Refuse a private key that is not a sensitive, non-extractable P-256 key (for a key we just
 * generated, also one that was ever extractable, not always sensitive, or not made on the token).
 */
function checkPrivateKeyAttributes(key: GrapheneNs.SessionObject, handle: string, fresh: boolean): void {
  const a = key.getAttribute({
    keyType: null,
    paramsEC: null,
    sensitive: null,
    extractable: null,
    alwaysSensitive: null,
    neverExtractable: null,
    local: null,
  });
  const problems: string[] = [];
  if (a.keyType !== 3 /* CKK_EC */) problems.push('not an EC key');
  // CKA_EC_PARAMS and CKA_ECDSA_PARAMS are one attribute; graphene names it back paramsECDSA.
  const params: unknown = a.paramsEC ?? a.paramsECDSA;
  if (!Buffer.isBuffer(params) || !P256_EC_PARAMS.equals(params)) problems.push('not on P-256');
  if (a.sensitive !== true) problems.push('CKA_SENSITIVE is false');
  if (a.extractable !== false) problems.push('CKA_EXTRACTABLE is true');
  if (fresh && (a.alwaysSensitive !== true || a.neverExtractable !== true || a.local !== true)) {
    problems.push('not generated on the token as always sensitive and never extractable');
  }
  if (problems.length > 0) {
    throw new SmkiError('ERR_KEY_INVALID', `the token's key ${handle} is unfit: ${problems.join(', ')}`, { detail: problems.join(', ') });
  }
}

/** The one slot whose token carries `label`. */
function findSlot(module: Module, label: string): Slot {
  let slots: GrapheneNs.SlotCollection;
  try {
    slots = module.getSlots(true);
  } catch (cause) {
    throw hsmError('C_GetSlotList', cause, 'ERR_HSM_UNAVAILABLE');
  }
  const matches: Slot[] = [];
  for (let i = 0; i < slots.length; i++) {
    const slot = slots.items(i);
    let tokenLabel: string | undefined;
    try {
      tokenLabel = slot.getToken().label.trimEnd();
    } catch {
      // a slot whose token went away between the two calls: it matches no label
    }
    if (tokenLabel === label) matches.push(slot);
  }
  if (matches.length === 0) throw new SmkiError('ERR_HSM_UNAVAILABLE', `no PKCS#11 token labelled ${label}`, { detail: 'no token with this label' });
  if (matches.length > 1) throw new SmkiError('ERR_HSM_UNAVAILABLE', `${matches.length} PKCS#11 tokens are labelled ${label}`, { detail: 'ambiguous token label' });
  return matches[0]!;
}

/** Drop one reference to a shared module; finalise it when none is left (the library stays loaded). */
function releaseModule(shared: SharedModule): void {
  if (--shared.refs > 0) return;
  shared.tokens = new Map();
  try {
    shared.module.finalize();
  } catch {
    /* finalised already (or underneath us) */
  }
  // The library is not unloaded (dlclose): some modules, SoftHSM2 among them, crash at process
  // exit after being unloaded. It stays in the map, and a later open initialises it again.
}

/** Upper-case hex handle, 1 to 64 bytes. */
function normaliseHandle(handle: string): string {
  // The regex also refuses the empty string.
  if (typeof handle !== 'string' || handle.length > 2 * MAX_ID_BYTES || handle.length % 2 !== 0 || !/^[0-9A-Fa-f]+$/.test(handle)) {
    throw invalid('a PKCS#11 handle is the hex of a CKA_ID of 1 to 64 bytes', typeof handle === 'string' ? `length ${handle.length}` : typeof handle);
  }
  return handle.toUpperCase();
}
