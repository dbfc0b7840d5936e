import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  isRemotePartyRole,
  parseEui64,
  publicKeyToRaw,
  SmkiError,
  toHex,
  toPublicKey,
  type Eui64,
  type KeyAgreement,
  RemotePartyRole,
  type RemotePartyRoleCode,
  type Signer,
  type SmkiErrorCode,
} from '@smki/core';
import { certificateToPem, createCsr, toCertificate, type CertificateInput } from '@smki/pki';
import type { KeyObject } from 'node:crypto';
import type { KeyBackend } from './backend.js';
import {
  AUDIT_LOG_FILE,
  AuditLog,
  deriveAuditKey,
  verifyAuditLog,
  type AuditEvent,
  type AuditEventType,
  type AuditHead,
  type AuditIntent,
  type AuditRecord,
  type AuditVerification,
} from './audit.js';
import { lockDirectory, removeStaleTemporaries, type DirectoryLock, type FaultHook } from './internal/fsutil.js';
import { MetadataFileStore, type StoreKdf } from './internal/metadata.js';
import { checkPurpose, DEVICE_PURPOSES, fail, MAX_REASON, optional, PORTFOLIO_ID, PURPOSE_SHORT, PURPOSE_USAGE, REQUEST_ID, useOf, XML_SIGNING_ROLE, xmlUseOf } from './internal/rules.js';
import {
  KEY_PURPOSES,
  type CredentialUpdate,
  type DeviceInfo,
  type Exposure,
  type KeyAgreementKeyHandle,
  type KeyAgreementPurpose,
  type KeyHandle,
  type KeyInfo,
  type KeyPurpose,
  type KeyState,
  type OrganisationInfo,
  type PortfolioInfo,
  type SigningKeyHandle,
  type UseContext,
  type XmlSigner,
  type XmlSignerOptions,
  type XmlSigningKeyHandle,
  type XmlSignUse,
} from './types.js';

// ---------------------------------------------------------------------------------------------
// State (what the metadata file holds)

export interface OrganisationState {
  entityId: Eui64;
  role: RemotePartyRoleCode;
  maxDevicesPerKey?: number;
}
export interface PortfolioState {
  organisation: Eui64;
  id: string;
  name: string;
  wholeEstate: KeyPurpose[];
  current: Partial<Record<KeyPurpose, string>>;
}
export interface KeyState_ {
  keyId: string;
  organisation: Eui64;
  portfolioId: string;
  purpose: KeyPurpose;
  generation: number;
  state: KeyState;
  backend: string;
  handle: string;
  publicKey: string;
  certificate?: string;
  serialNumber?: string;
  createdAt: string;
  revokedAt?: string;
}
export interface DeviceState {
  device: Eui64;
  organisation: Eui64;
  portfolioId: string;
  installed: Partial<Record<KeyPurpose, string>>;
}
interface State {
  organisations: Record<string, OrganisationState>;
  /** key: `${organisation}/${portfolioId}` */
  portfolios: Record<string, PortfolioState>;
  keys: Record<string, KeyState_>;
  /** key: `${organisation}/${device}` */
  devices: Record<string, DeviceState>;
  auditHead?: AuditHead;
  /** The audit lines this state was saved with, written to the log after it (see #mutate). */
  auditIntent?: AuditIntent;
}

const emptyState = (): State => ({ organisations: {}, portfolios: {}, keys: {}, devices: {} });

/**
 * The metadata state from its authenticated JSON text. The MAC already passed, so only the holder of
 * the passphrase can have written it; still, a payload whose top level is not the four maps is
 * refused as corrupt rather than failing later on a property of `null`.
 * @throws SmkiError `ERR_KEYSTORE_CORRUPT`; a SyntaxError for text that is not JSON
 */
function parseState(payload: string): State {
  const v: unknown = JSON.parse(payload);
  const isMap = (x: unknown): boolean => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (!isMap(v)) fail('ERR_KEYSTORE_CORRUPT', 'metadata payload is not an object');
  for (const k of ['organisations', 'portfolios', 'keys', 'devices'] as const) {
    if (!isMap((v as Record<string, unknown>)[k])) fail('ERR_KEYSTORE_CORRUPT', `metadata payload has no ${k} map`, k);
  }
  return v as State;
}

/** The Remote Party Role a key's certificate must name: 135 for `xmlSigning`, else the organisation's. */
function certificateRole(purpose: KeyPurpose, org: OrganisationState): RemotePartyRoleCode {
  return purpose === 'xmlSigning' ? XML_SIGNING_ROLE : org.role;
}

/**
 * A map entry by an outside string: own properties only, so that `__proto__`, `constructor` or
 * `toString` never reach `Object.prototype` (the state's maps are plain objects from JSON).
 */
function own<V>(map: Record<string, V>, key: unknown): V | undefined {
  return typeof key === 'string' && Object.hasOwn(map, key) ? map[key] : undefined;
}

/**
 * Record types that may legitimately lie beyond the head the metadata names: use records are
 * group-committed after it, and `store.opened` is written before the head is saved on open.
 * Every lifecycle change is saved in the metadata before its records reach the log, so any other
 * record beyond the head means the metadata is older than the log.
 */
const ALLOWED_BEYOND_HEAD: readonly AuditEventType[] = ['key.used', 'store.opened'];
/** Lifecycle records beyond the head that {@link JsonKeyStore.open} applies again: they only ever take power away from a key. */
const REAPPLIED_BEYOND_HEAD: readonly AuditEventType[] = ['key.revoked', 'key.retired'];
const MAX_REAPPLIED = 1000;




function handleOf<P extends KeyPurpose>(k: KeyState_): KeyHandle<P> {
  return Object.freeze({ keyId: k.keyId, purpose: k.purpose }) as unknown as KeyHandle<P>;
}

function keyInfo(k: KeyState_): KeyInfo {
  return Object.freeze({ ...k });
}

// ---------------------------------------------------------------------------------------------
// Options

/** Most devices one {@link JsonKeyStore.assignDevices} call assigns. */
export const MAX_ASSIGN_BATCH = 10_000;

/** Options of {@link JsonKeyStore.open}. */
export interface JsonKeyStoreOptions {
  /** The store directory (created mode 0700): metadata, audit log and lock. */
  readonly directory: string;
  /** Where the private keys live. */
  readonly backend: KeyBackend;
  /**
   * The store passphrase (authenticates the metadata and keys the audit MACs). Default: the
   * environment variable `SMKI_KEYSTORE_PASSPHRASE`. Never logged.
   */
  readonly passphrase?: string;
  /** Clock (default `() => new Date()`). */
  readonly now?: () => Date;
  /** How long use records (sign, key agreement) may wait before they are on disk, in ms (default 50). */
  readonly auditGroupCommitMs?: number;
  /** scrypt cost for a new store's secret (default 2^15; at least 2^15). */
  readonly scryptN?: number;
  /** Fault-injection hook for crash tests. Never set in production. */
  readonly fault?: FaultHook;
}

/** Options of {@link JsonKeyStore.addOrganisation}. */
export interface OrganisationOptions {
  /** EUI-64 entity id, any accepted spelling. */
  readonly entityId: string;
  /** Remote Party Role (2 supplier, 3 network operator, 4 ACB, …). */
  readonly role: number;
  /** Most devices one key may be trusted by; enforced when devices are assigned. */
  readonly maxDevicesPerKey?: number;
}

/** Options of {@link JsonKeyStore.createPortfolio}. */
export interface PortfolioOptions {
  /** Portfolio id: 1–64 of `A–Z a–z 0–9 _ -`. */
  readonly id: string;
  /** A display name. */
  readonly name?: string;
  /**
   * Purposes for which this portfolio's key serves every device of the organisation (one
   * portfolio per purpose at most). An explicit setting for a party whose one key covers the
   * estate, such as the Access Control Broker's key-agreement key; never a default. Never
   * `xmlSigning` (no device trusts that key).
   */
  readonly wholeEstate?: readonly KeyPurpose[];
}

// ---------------------------------------------------------------------------------------------
// The store

/** What a migration reads from a store with JSON metadata (internal; see snapshotForMigration). */
export interface LegacySnapshot {
  readonly state: {
    readonly organisations: Record<string, OrganisationState>;
    readonly portfolios: Record<string, PortfolioState>;
    readonly keys: Record<string, KeyState_>;
    readonly devices: Record<string, DeviceState>;
  };
  readonly head: AuditHead;
  readonly kdf: StoreKdf;
}

let legacySnapshot: (store: JsonKeyStore) => LegacySnapshot;

/**
 * The state of an open store with JSON metadata, its audit head (after a flush) and its KDF
 * parameters: what a migration into a database reads. Internal.
 * @throws SmkiError `ERR_KEYSTORE_CLOSED`
 * @internal
 */
export function snapshotForMigration(store: JsonKeyStore): LegacySnapshot {
  return legacySnapshot(store);
}

/**
 * The key store of earlier releases, its metadata in one JSON file (`store.json`) beside its audit
 * log. Kept, not exported, so that such a store can be opened with every check it had and
 * migrated into a database (`KeyStore.migrate`); its tests keep the rules it applied pinned.
 *
 * Private keys segregated per device portfolio. An organisation splits its meters into
 * portfolios; each portfolio has its own signing and key-agreement keys, so a stolen key
 * endangers the meters of one portfolio only. Signing for a meter always uses the key whose
 * certificate that meter has installed (which after a rotation or a move may be an older
 * generation, until the meter's credentials are updated).
 *
 * Durability: every lifecycle change (organisation, portfolio, key generation, certificate,
 * assignment, move, rotation, retirement, revocation) is written to the audit log and the
 * authenticated metadata before its promise resolves; a crash at any point leaves the old state
 * or the new one. Use records (sign, key agreement) are group-committed: they reach the disk
 * within `auditGroupCommitMs` (default 50 ms), or at the next lifecycle change or `close()`.
 *
 * Concurrency: one process per store directory (a lock file; a second process gets
 * `ERR_KEYSTORE_LOCKED`). Inside the process, lifecycle changes run one at a time in call order,
 * and each takes effect only after it is durable; signing reads the state committed when it is
 * called.
 */
export class JsonKeyStore {
  readonly #backend: KeyBackend;
  readonly #metadata: MetadataFileStore;
  readonly #audit: AuditLog;
  readonly #lock: DirectoryLock;
  readonly #now: () => Date;
  readonly #fault: FaultHook | undefined;
  #state: State;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  readonly #orphans: readonly string[];

  static {
    legacySnapshot = (store) => {
      store.#assertOpen();
      return { state: structuredClone(store.#state), head: store.#audit.head(), kdf: store.#metadata.kdf };
    };
  }

  private constructor(init: {
    backend: KeyBackend;
    metadata: MetadataFileStore;
    audit: AuditLog;
    lock: DirectoryLock;
    now: () => Date;
    fault: FaultHook | undefined;
    state: State;
    orphans: readonly string[];
  }) {
    this.#backend = init.backend;
    this.#metadata = init.metadata;
    this.#audit = init.audit;
    this.#lock = init.lock;
    this.#now = init.now;
    this.#fault = init.fault;
    this.#state = init.state;
    this.#orphans = init.orphans;
  }

  /**
   * Open (or create) a store. Takes the directory's lock, verifies the metadata's MAC and the
   * audit log against the head the metadata records, and lists backend keys the metadata does
   * not know (left by a crash between key generation and the metadata write: see
   * {@link JsonKeyStore.orphanHandles}).
   * @throws SmkiError `ERR_KEYSTORE_LOCKED`, `ERR_KEYSTORE_WRONG_PASSPHRASE`, `ERR_KEYSTORE_CORRUPT`,
   *   `ERR_AUDIT_TAMPERED`, `ERR_AUDIT_TRUNCATED`, `ERR_INVALID_ARGUMENT` (no passphrase)
   */
  static async open(options: JsonKeyStoreOptions): Promise<JsonKeyStore> {
    const passphrase = options.passphrase ?? process.env.SMKI_KEYSTORE_PASSPHRASE;
    if (typeof passphrase !== 'string' || passphrase.length === 0) {
      fail('ERR_INVALID_ARGUMENT', 'a key store needs a passphrase (option or SMKI_KEYSTORE_PASSPHRASE)');
    }
    mkdirSync(options.directory, { recursive: true, mode: 0o700 });
    const lock = lockDirectory(options.directory);
    try {
      removeStaleTemporaries(options.directory, readdirSync(options.directory));
      const { store: metadata, payload } = await MetadataFileStore.open(options.directory, passphrase, {
        ...optional('scryptN', options.scryptN),
        ...(options.fault ? { fault: options.fault } : {}),
      });
      let state: State;
      try {
        state = payload === undefined ? emptyState() : parseState(payload);
      } catch (e) {
        if (e instanceof SmkiError) throw e;
        fail('ERR_KEYSTORE_CORRUPT', 'metadata payload is not JSON');
      }
      const now = options.now ?? (() => new Date());
      const audit = await AuditLog.open(options.directory, {
        key: deriveAuditKey(metadata.secrets.auditSecret),
        ...(state.auditHead ? { head: state.auditHead } : {}),
        ...(state.auditIntent ? { intent: state.auditIntent } : {}),
        ...optional('groupCommitMs', options.auditGroupCommitMs),
        ...(options.fault ? { fault: options.fault } : {}),
        now,
      });
      let reapplied: number;
      try {
        reapplied = reapplyBeyondHead(state, audit.recovery.lifecycleBeyondHead);
      } catch (e) {
        await audit.close();
        throw e;
      }
      const known = new Set(Object.values(state.keys).map((k) => k.handle));
      const orphans = (await options.backend.listHandles()).filter((h) => !known.has(h));
      const store = new JsonKeyStore({ backend: options.backend, metadata, audit, lock, now, fault: options.fault, state, orphans });
      // Records beyond the committed head are use records written since the last metadata write
      // (adopted), or revocations and retirements whose metadata an older file replaced (applied
      // again above). The trail says how many of each, and how many committed lines a crash had
      // kept out of the log.
      const r = audit.recovery;
      await audit.append(
        {
          type: 'store.opened',
          ...(r.recordsBeyondHead > 0 ? { recoveredRecords: r.recordsBeyondHead } : {}),
          ...(r.tornBytesRemoved > 0 ? { tornBytesRemoved: r.tornBytesRemoved } : {}),
          ...(reapplied > 0 ? { reappliedRecords: reapplied } : {}),
          ...(r.intentLinesWritten > 0 ? { completedRecords: r.intentLinesWritten } : {}),
        },
        { durable: true },
      );
      store.#persist(state);
      return store;
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /**
   * Verify a store's audit trail as an auditor would: derive the audit key from the passphrase,
   * read the head from the authenticated metadata, and check every record (chain, MACs, order,
   * count). Read-only: takes no lock and changes nothing.
   * @throws SmkiError `ERR_KEYSTORE_WRONG_PASSPHRASE`, `ERR_KEYSTORE_CORRUPT`
   */
  static async verifyAuditTrail(directory: string, passphrase: string): Promise<AuditVerification> {
    const { store: metadata, payload } = await MetadataFileStore.open(directory, passphrase);
    let state: State;
    try {
      // No metadata at all reads as the text `undefined`, which is not JSON either.
      state = parseState(String(payload));
    } catch (e) {
      if (e instanceof SmkiError) throw e;
      fail('ERR_KEYSTORE_CORRUPT', payload === undefined ? `no key store metadata in ${directory}` : 'metadata payload is not JSON');
    }
    return verifyAuditLog(join(directory, AUDIT_LOG_FILE), {
      key: deriveAuditKey(metadata.secrets.auditSecret),
      ...(state.auditHead ? { head: state.auditHead } : {}),
      ...(state.auditIntent ? { intent: state.auditIntent } : {}),
      allowBeyondHead: ALLOWED_BEYOND_HEAD,
    });
  }

  // -------------------------------------------------------------------------------------------
  // internals

  #assertOpen(): void {
    if (this.#closed) fail('ERR_KEYSTORE_CLOSED', 'the key store is closed');
  }

  #persist(state: State): void {
    state.auditHead = this.#audit.head();
    delete state.auditIntent;
    this.#metadata.write(JSON.stringify(state));
  }

  /**
   * Run a lifecycle change: serialised, durable, audited, then applied. Throws change nothing.
   *
   * Write order (write-ahead in the metadata): the audit log stages the change's records (their
   * exact lines and the head after them); the new state is saved together with those lines in
   * one atomic metadata write; then the lines are appended to the log. A crash before the
   * metadata write leaves the old state and no record; after it, the new state, and the next open
   * writes whatever lines the log lacks. So a lifecycle record never lies beyond the head the
   * metadata names, unless the metadata was replaced by an older file: {@link JsonKeyStore.open}
   * then applies revocations and retirements again and refuses anything else.
   */
  #mutate<T>(change: (draft: State) => Promise<{ result: T; events: AuditEvent[] }> | { result: T; events: AuditEvent[] }): Promise<T> {
    this.#assertOpen();
    const run = async (): Promise<T> => {
      this.#assertOpen();
      const draft = structuredClone(this.#state);
      const { result, events } = await change(draft);
      const staged = await this.#audit.stage(events);
      try {
        this.#fault?.('store:before-metadata');
        draft.auditHead = staged.after;
        draft.auditIntent = { before: staged.before, lines: staged.lines };
        this.#metadata.write(JSON.stringify(draft));
      } catch (e) {
        this.#audit.abortStaged();
        throw e;
      }
      this.#fault?.('store:after-metadata');
      // Durable from here: the metadata is the state; the log catches up on reopen if need be.
      this.#state = draft;
      await this.#audit.commitStaged();
      this.#fault?.('store:after-audit');
      return result;
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  #org(state: State, entityId: string): OrganisationState {
    const eui = parseEui64(entityId);
    const o = own(state.organisations, eui);
    if (!o) fail('ERR_ORGANISATION_NOT_FOUND', `no organisation ${eui}`, eui);
    return o;
  }

  #portfolio(state: State, org: Eui64, id: string): PortfolioState {
    const p = own(state.portfolios, `${org}/${id}`);
    if (!p) fail('ERR_PORTFOLIO_NOT_FOUND', `no portfolio ${id} in ${org}`, id);
    return p;
  }

  #key(state: State, keyId: string): KeyState_ {
    const k = own(state.keys, keyId);
    if (!k) fail('ERR_KEY_NOT_FOUND', `no key ${String(keyId)}`, String(keyId));
    return k;
  }

  #devicesOf(state: State, org: Eui64, portfolioId?: string): DeviceState[] {
    return Object.values(state.devices).filter((d) => d.organisation === org && (portfolioId === undefined || d.portfolioId === portfolioId));
  }

  #wholeEstatePortfolio(state: State, org: Eui64, purpose: KeyPurpose): PortfolioState | undefined {
    return Object.values(state.portfolios).find((p) => p.organisation === org && p.wholeEstate.includes(purpose));
  }

  /** The only organisation, when `organisation` is not given. */
  #orgFor(state: State, organisation: string | undefined): OrganisationState {
    if (organisation !== undefined) return this.#org(state, organisation);
    const all = Object.values(state.organisations);
    if (all.length !== 1) fail('ERR_INVALID_ARGUMENT', 'name the organisation: the store holds more than one (or none)');
    return all[0] as OrganisationState;
  }

  /** How many devices trust `keyId` now. */
  #exposureCount(state: State, k: KeyState_): number {
    let n = 0;
    for (const d of Object.values(state.devices)) if (d.organisation === k.organisation && d.installed[k.purpose] === k.keyId) n++;
    return n;
  }

  #checkCap(state: State, org: OrganisationState, k: KeyState_, adding: number): void {
    const cap = org.maxDevicesPerKey;
    if (cap === undefined) return;
    const n = this.#exposureCount(state, k) + adding;
    // Refused unless within the cap, so that a cap which is not a number (an edited metadata file) refuses too.
    if (!(n <= cap)) fail('ERR_PORTFOLIO_DEVICE_CAP', `key ${k.keyId} would be trusted by ${n} devices; the cap is ${String(cap)}`, k.keyId);
  }

  /**
   * The key a device trusts for `purpose`, checked for use. Fails closed with a distinct code for
   * each reason.
   */
  #resolve(state: State, organisation: string | undefined, device: string, purpose: KeyPurpose): { key: KeyState_; dev: DeviceState } {
    const org = this.#orgFor(state, organisation);
    const eui = parseEui64(device);
    const dev = own(state.devices, `${org.entityId}/${eui}`);
    let keyId: string | undefined;
    const estate = this.#wholeEstatePortfolio(state, org.entityId, purpose);
    // Whole-estate or not, only a device the organisation knows is ever signed for.
    if (!dev) fail('ERR_DEVICE_UNKNOWN', `device ${eui} is in no portfolio of ${org.entityId}`, eui);
    if (estate) {
      // Never override a key the meter is recorded to trust (the store refuses to create this
      // state; an edited or older metadata file could still hold it).
      if (dev.installed[purpose] !== undefined) fail('ERR_PORTFOLIO_WHOLE_ESTATE_CONFLICT', `device ${eui} records an installed ${purpose} key; the whole-estate key of ${estate.id} would override it`, eui);
      keyId = estate.current[purpose];
      if (keyId === undefined) fail('ERR_DEVICE_NO_INSTALLED_CERTIFICATE', `the whole-estate portfolio ${estate.id} has no current ${purpose} key`, eui);
    } else {
      keyId = dev.installed[purpose];
      if (keyId === undefined) fail('ERR_DEVICE_NO_INSTALLED_CERTIFICATE', `the store does not know which ${purpose} certificate device ${eui} trusts`, eui);
    }
    const key = this.#key(state, keyId);
    if (key.state === 'revoked') fail('ERR_KEY_REVOKED', `key ${key.keyId} is revoked`, key.keyId);
    if (key.state === 'retired') fail('ERR_KEY_RETIRED', `key ${key.keyId} is retired`, key.keyId);
    if (key.state !== 'active') fail('ERR_KEY_NOT_ACTIVE', `key ${key.keyId} is ${key.state}`, key.keyId);
    if (key.purpose !== purpose || key.organisation !== org.entityId) fail('ERR_KEYSTORE_CORRUPT', `device ${eui} points at a key of another purpose or organisation`);
    return { key, dev };
  }

  // -------------------------------------------------------------------------------------------
  // organisations and portfolios

  /**
   * Add an organisation (a User): its entity id and role, and optionally the cap on devices per key.
   * @throws SmkiError `ERR_ORGANISATION_EXISTS`, `ERR_EUI64_INVALID`, `ERR_ROLE_UNKNOWN`, `ERR_INVALID_ARGUMENT`
   */
  addOrganisation(options: OrganisationOptions): Promise<OrganisationInfo> {
    return this.#mutate((s) => {
      const entityId = parseEui64(options.entityId);
      if (!isRemotePartyRole(options.role)) throw new SmkiError('ERR_ROLE_UNKNOWN', `unknown Remote Party Role ${String(options.role)}`, { role: String(options.role) });
      const cap = options.maxDevicesPerKey;
      if (cap !== undefined && (!Number.isSafeInteger(cap) || cap < 1)) fail('ERR_INVALID_ARGUMENT', 'maxDevicesPerKey must be a positive integer');
      if (own(s.organisations, entityId)) fail('ERR_ORGANISATION_EXISTS', `organisation ${entityId} exists`, entityId);
      const o: OrganisationState = { entityId, role: options.role, ...optional('maxDevicesPerKey', cap) };
      s.organisations[entityId] = o;
      return { result: Object.freeze({ ...o }), events: [{ type: 'organisation.created', entityId, role: options.role }] };
    });
  }

  /**
   * Create a portfolio in an organisation.
   * @throws SmkiError `ERR_ORGANISATION_NOT_FOUND`, `ERR_PORTFOLIO_EXISTS`, `ERR_INVALID_ARGUMENT`
   *   (an id out of shape; a whole-estate purpose unknown, already served, or `xmlSigning`)
   */
  createPortfolio(organisation: string, options: PortfolioOptions): Promise<PortfolioInfo> {
    return this.#mutate((s) => {
      const org = this.#org(s, organisation);
      if (typeof options.id !== 'string' || !PORTFOLIO_ID.test(options.id)) fail('ERR_INVALID_ARGUMENT', 'portfolio id must be 1–64 of A–Z a–z 0–9 _ -');
      if (own(s.portfolios, `${org.entityId}/${options.id}`)) fail('ERR_PORTFOLIO_EXISTS', `portfolio ${options.id} exists`, options.id);
      const wholeEstate = [...new Set((options.wholeEstate ?? []).map(checkPurpose))];
      for (const p of wholeEstate) {
        if (!DEVICE_PURPOSES.includes(p)) fail('ERR_INVALID_ARGUMENT', `${p} keys serve no device: a portfolio cannot serve the whole estate with one`, p);
        const other = this.#wholeEstatePortfolio(s, org.entityId, p);
        if (other) fail('ERR_INVALID_ARGUMENT', `portfolio ${other.id} already serves the whole estate for ${p}`);
        const trusting = this.#devicesOf(s, org.entityId).filter((d) => d.installed[p] !== undefined).length;
        if (trusting > 0) {
          fail('ERR_PORTFOLIO_WHOLE_ESTATE_CONFLICT', `${trusting} device(s) record an installed ${p} key: a whole-estate ${p} key would override the keys they trust`, options.id);
        }
      }
      const p: PortfolioState = { organisation: org.entityId, id: options.id, name: options.name ?? options.id, wholeEstate, current: {} };
      s.portfolios[`${org.entityId}/${options.id}`] = p;
      return {
        result: this.#portfolioInfo(s, p),
        events: [{ type: 'portfolio.created', organisation: org.entityId, portfolioId: p.id, name: p.name, wholeEstate }],
      };
    });
  }

  #portfolioInfo(s: State, p: PortfolioState): PortfolioInfo {
    return Object.freeze({
      ...p,
      wholeEstate: Object.freeze([...p.wholeEstate]),
      current: Object.freeze({ ...p.current }),
      devices: Object.freeze(this.#devicesOf(s, p.organisation, p.id).map((d) => d.device)),
    });
  }

  // -------------------------------------------------------------------------------------------
  // keys

  /**
   * Generate a key inside the backend for a portfolio and purpose. The key starts `pending`; it
   * becomes usable when its certificate is attached ({@link JsonKeyStore.attachCertificate}) and, if the
   * portfolio already has a current key for the purpose, when it is rotated in.
   *
   * `xmlSigning` makes the organisation's DUIS XML signing key (its certificate names Remote Party
   * Role 135): an organisation key that no meter trusts, used only through
   * {@link JsonKeyStore.xmlSigner}. It may live in any backend, like the others.
   * @throws SmkiError `ERR_ORGANISATION_NOT_FOUND`, `ERR_PORTFOLIO_NOT_FOUND`, `ERR_INVALID_ARGUMENT`
   */
  generateKey(organisation: string, portfolioId: string, purpose: 'signing'): Promise<SigningKeyHandle>;
  generateKey(organisation: string, portfolioId: string, purpose: KeyAgreementPurpose): Promise<KeyAgreementKeyHandle>;
  generateKey(organisation: string, portfolioId: string, purpose: 'xmlSigning'): Promise<XmlSigningKeyHandle>;
  generateKey(organisation: string, portfolioId: string, purpose: KeyPurpose): Promise<KeyHandle>;
  generateKey(organisation: string, portfolioId: string, purpose: KeyPurpose): Promise<KeyHandle> {
    return this.#mutate(async (s) => {
      const org = this.#org(s, organisation);
      const p = this.#portfolio(s, org.entityId, portfolioId);
      checkPurpose(purpose);
      const generation = 1 + Math.max(0, ...Object.values(s.keys).filter((k) => k.organisation === org.entityId && k.portfolioId === p.id && k.purpose === purpose).map((k) => k.generation));
      const keyId = `${org.entityId}.${p.id}.${PURPOSE_SHORT[purpose]}.g${generation}`;
      if (own(s.keys, keyId)) fail('ERR_KEYSTORE_CORRUPT', `key id ${keyId} exists`);
      const label = `${org.entityId}/${p.id}/${PURPOSE_SHORT[purpose]}/g${generation}`;
      const generated = await this.#backend.generateKey({ keyId, label });
      this.#fault?.('store:after-backend-generate');
      const k: KeyState_ = {
        keyId,
        organisation: org.entityId,
        portfolioId: p.id,
        purpose,
        generation,
        state: 'pending',
        backend: this.#backend.kind,
        handle: generated.handle,
        publicKey: toHex(generated.publicKey),
        createdAt: this.#now().toISOString(),
      };
      s.keys[keyId] = k;
      return {
        result: handleOf(k),
        events: [{ type: 'key.generated', keyId, organisation: org.entityId, portfolioId: p.id, purpose, generation, backend: this.#backend.kind }],
      };
    });
  }

  /**
   * A PKCS#10 request for a pending key, signed by that key as proof of possession. This is the
   * one signature a key-agreement key ever makes; the store refuses every other. The subject names
   * the organisation's entity id and role, except for an `xmlSigning` key, whose subject names
   * role 135 (OU `87`); the key usage is the purpose's one (digitalSignature or keyAgreement).
   * @throws SmkiError `ERR_KEY_NOT_FOUND`, `ERR_KEY_STATE_TRANSITION` (not pending)
   */
  async createCsr(keyId: string, options: { commonName?: string } = {}): Promise<Uint8Array> {
    this.#assertOpen();
    const k = this.#key(this.#state, keyId);
    if (k.state !== 'pending') fail('ERR_KEY_STATE_TRANSITION', `key ${keyId} is ${k.state}: a CSR is made only for a pending key`, keyId);
    const org = this.#org(this.#state, k.organisation);
    const backend = this.#backend;
    const pop: Signer = { publicKey: Buffer.from(k.publicKey, 'hex'), sign: (m) => backend.sign(k.handle, m) };
    const csr = await createCsr({
      signer: pop,
      subject: { role: certificateRole(k.purpose, org), entityId: org.entityId, ...optional('commonName', options.commonName) },
      keyUsage: PURPOSE_USAGE[k.purpose],
    });
    // Audited and recorded in the metadata head like a lifecycle change (serialised with them). The
    // state is checked again there: a revocation that committed while the CSR was being signed
    // withholds it (fail closed).
    await this.#mutate((s) => {
      const now = this.#key(s, keyId);
      if (now.state !== 'pending') fail('ERR_KEY_STATE_TRANSITION', `key ${keyId} became ${now.state} while its CSR was made`, keyId);
      return { result: undefined, events: [{ type: 'key.csr', keyId }] };
    });
    return csr;
  }

  /**
   * Attach the issued certificate to a pending key. Refused unless the certificate is an
   * organisation certificate for exactly this key, the organisation's entity id and role, and
   * the key's purpose (its one key usage). For an `xmlSigning` key the role must be 135 (DUIS
   * XML signing), never the organisation's own role. The first key of a (portfolio, purpose)
   * becomes active and current at once; a later one waits for {@link JsonKeyStore.rotate}.
   * @throws SmkiError `ERR_CERTIFICATE_KEY_MISMATCH`, `ERR_CERTIFICATE_ENTITY_MISMATCH`,
   *   `ERR_CERTIFICATE_ROLE_MISMATCH`, `ERR_CERTIFICATE_PURPOSE_MISMATCH`, `ERR_KEY_STATE_TRANSITION`,
   *   `ERR_KEY_NOT_FOUND`, `ERR_CERT_MALFORMED`
   */
  attachCertificate(keyId: string, certificate: CertificateInput): Promise<KeyInfo> {
    return this.#mutate((s) => {
      const k = this.#key(s, keyId);
      const cert = toCertificate(certificate);
      if (k.state !== 'pending' || k.certificate !== undefined) fail('ERR_KEY_STATE_TRANSITION', `key ${keyId} is ${k.state}${k.certificate ? ' and has a certificate' : ''}`, keyId);
      if (toHex(cert.publicKeyBytes) !== k.publicKey) fail('ERR_CERTIFICATE_KEY_MISMATCH', `the certificate's key is not key ${keyId}'s`, keyId);
      const org = this.#org(s, k.organisation);
      if (cert.kind !== 'organisation' || cert.entityId !== org.entityId) {
        fail('ERR_CERTIFICATE_ENTITY_MISMATCH', `the certificate names entity ${cert.entityId ?? '(none)'}, not ${org.entityId}`, keyId);
      }
      const role = certificateRole(k.purpose, org);
      if (cert.role !== role) fail('ERR_CERTIFICATE_ROLE_MISMATCH', `the certificate's role is ${cert.role ?? '(none)'}, not ${role}${k.purpose === 'xmlSigning' ? ' (DUIS XML signing)' : ''}`, keyId);
      if (cert.keyUsage.length !== 1 || cert.keyUsage[0] !== PURPOSE_USAGE[k.purpose]) {
        fail('ERR_CERTIFICATE_PURPOSE_MISMATCH', `key ${keyId} is for ${k.purpose}; the certificate allows ${cert.keyUsage.join('+') || 'nothing'}`, keyId);
      }
      k.certificate = certificateToPem(cert);
      k.serialNumber = cert.serialNumber;
      const p = this.#portfolio(s, k.organisation, k.portfolioId);
      if (p.current[k.purpose] === undefined) {
        k.state = 'active';
        p.current[k.purpose] = k.keyId;
      }
      return { result: keyInfo(k), events: [{ type: 'certificate.attached', keyId, serialNumber: cert.serialNumber, fingerprint: cert.fingerprint }] };
    });
  }

  /**
   * Make a pending key with a certificate the current key of its portfolio and purpose. The old
   * current key stays active for the meters that still trust it, until it is retired. Returns the
   * meters whose credentials must now be updated (sign each update with `fromKeyId`): none for an
   * `xmlSigning` key, which no meter trusts (an {@link XmlSigner} made before keeps the old key).
   * @throws SmkiError `ERR_KEY_NOT_FOUND`, `ERR_KEY_STATE_TRANSITION`
   */
  rotate(keyId: string): Promise<CredentialUpdate[]> {
    return this.#mutate((s) => {
      const k = this.#key(s, keyId);
      if (k.state !== 'pending' || k.certificate === undefined) fail('ERR_KEY_STATE_TRANSITION', `key ${keyId} must be pending with a certificate to rotate in`, keyId);
      const p = this.#portfolio(s, k.organisation, k.portfolioId);
      const from = p.current[k.purpose];
      k.state = 'active';
      p.current[k.purpose] = k.keyId;
      const updates = (DEVICE_PURPOSES.includes(k.purpose) ? this.#devicesOf(s, k.organisation, p.id) : [])
        .filter((d) => d.installed[k.purpose] !== k.keyId)
        .map((d) => Object.freeze({ device: d.device, purpose: k.purpose, fromKeyId: d.installed[k.purpose], toKeyId: k.keyId }));
      return {
        result: updates,
        events: [{ type: 'key.rotated', organisation: k.organisation, portfolioId: p.id, purpose: k.purpose, ...optional('fromKeyId', from), toKeyId: k.keyId, devicesToUpdate: updates.length }],
      };
    });
  }

  /**
   * Retire a key that no meter trusts any more and that is not current (an `xmlSigning` key that is
   * not current may always be retired: no meter trusts it).
   * @throws SmkiError `ERR_KEY_STATE_TRANSITION` (current, still trusted by meters, or revoked), `ERR_KEY_NOT_FOUND`
   */
  retire(keyId: string): Promise<KeyInfo> {
    return this.#mutate((s) => {
      const k = this.#key(s, keyId);
      if (k.state === 'revoked' || k.state === 'retired') fail('ERR_KEY_STATE_TRANSITION', `key ${keyId} is ${k.state}`, keyId);
      const p = this.#portfolio(s, k.organisation, k.portfolioId);
      if (p.current[k.purpose] === keyId) fail('ERR_KEY_STATE_TRANSITION', `key ${keyId} is current: rotate another key in first`, keyId);
      const trusting = this.#exposureCount(s, k);
      if (trusting > 0) fail('ERR_KEY_STATE_TRANSITION', `${trusting} meter(s) still trust key ${keyId}: update their credentials first`, keyId);
      k.state = 'retired';
      return { result: keyInfo(k), events: [{ type: 'key.retired', keyId }] };
    });
  }

  /**
   * Revoke a key (compromise): it is never used again, whatever its state. Meters that still
   * trust it cannot be signed for until their credentials are replaced by other means. `reason`
   * (e.g. `keyCompromise`) goes into the audit record, cut to 128 characters.
   * @throws SmkiError `ERR_KEY_NOT_FOUND`, `ERR_KEY_STATE_TRANSITION` (already revoked),
   *   `ERR_INVALID_ARGUMENT` (a reason with control characters; nothing changes)
   */
  revoke(keyId: string, reason?: string): Promise<KeyInfo> {
    return this.#mutate((s) => {
      const k = this.#key(s, keyId);
      if (k.state === 'revoked') fail('ERR_KEY_STATE_TRANSITION', `key ${keyId} is already revoked`, keyId);
      k.state = 'revoked';
      k.revokedAt = this.#now().toISOString();
      const p = this.#portfolio(s, k.organisation, k.portfolioId);
      if (p.current[k.purpose] === keyId) delete p.current[k.purpose];
      // Cut to the 128 characters an audit record's text carries: a long reason never blocks a revocation.
      return { result: keyInfo(k), events: [{ type: 'key.revoked', keyId, ...(reason !== undefined ? { reason: String(reason).slice(0, MAX_REASON) } : {}) }] };
    });
  }

  // -------------------------------------------------------------------------------------------
  // devices

  /**
   * Assign a device to a portfolio. The device must be in no other portfolio of the
   * organisation. Unless told otherwise, the store records that the meter trusts the portfolio's
   * current key for each purpose (it was commissioned with those certificates). The
   * organisation's `xmlSigning` key is never among them: no meter installs it.
   * @throws SmkiError `ERR_DEVICE_ALREADY_ASSIGNED`, `ERR_PORTFOLIO_DEVICE_CAP`, `ERR_PORTFOLIO_NOT_FOUND`, `ERR_EUI64_INVALID`,
   *   `ERR_INVALID_ARGUMENT` (an `installed` key of another organisation or purpose, or an `xmlSigning` entry)
   */
  assignDevice(organisation: string, device: string, portfolioId: string, options: { installed?: Partial<Record<KeyPurpose, string>> } = {}): Promise<DeviceInfo> {
    return this.#mutate((s) => {
      const { info, event } = this.#assign(s, this.#org(s, organisation), device, portfolioId, options.installed);
      return { result: info, events: [event] };
    });
  }

  /**
   * Assign many devices at once, all or none: one durable metadata write and one audit record
   * per device. Each device takes its portfolio's current keys (as {@link JsonKeyStore.assignDevice}
   * without `installed`); any refusal (a device already assigned, or named twice, a portfolio
   * missing, the per-key cap) leaves every device unassigned.
   * @throws SmkiError `ERR_INVALID_ARGUMENT` (none, or more than {@link MAX_ASSIGN_BATCH}), and those of {@link JsonKeyStore.assignDevice}
   */
  assignDevices(organisation: string, assignments: readonly { readonly device: string; readonly portfolioId: string }[]): Promise<DeviceInfo[]> {
    if (!Array.isArray(assignments) || assignments.length < 1 || assignments.length > MAX_ASSIGN_BATCH) {
      return Promise.reject(new SmkiError('ERR_INVALID_ARGUMENT', `assign 1 to ${MAX_ASSIGN_BATCH} devices at once`, { detail: String(Array.isArray(assignments) ? assignments.length : typeof assignments) }));
    }
    return this.#mutate((s) => {
      const org = this.#org(s, organisation);
      const out = assignments.map((a) => this.#assign(s, org, a.device, a.portfolioId, undefined));
      return { result: out.map((o) => o.info), events: out.map((o) => o.event) };
    });
  }

  /** Assign one device in the draft `s` (the body of assignDevice and assignDevices). */
  #assign(s: State, org: OrganisationState, device: string, portfolioId: string, given: Partial<Record<KeyPurpose, string>> | undefined): { info: DeviceInfo; event: AuditEvent } {
    const eui = parseEui64(device);
    const p = this.#portfolio(s, org.entityId, portfolioId);
    const existing = own(s.devices, `${org.entityId}/${eui}`);
    if (existing) fail('ERR_DEVICE_ALREADY_ASSIGNED', `device ${eui} is in portfolio ${existing.portfolioId}`, eui);
    if (given !== undefined && given !== null && Object.hasOwn(given, 'xmlSigning')) {
      fail('ERR_INVALID_ARGUMENT', 'no meter installs an xmlSigning key: it is an organisation key for DUIS XML signatures', eui);
    }
    const installed: Partial<Record<KeyPurpose, string>> = {};
    for (const purpose of DEVICE_PURPOSES) {
      const keyGiven = given !== undefined && Object.hasOwn(given, purpose) ? given[purpose] : undefined;
      if (this.#wholeEstatePortfolio(s, org.entityId, purpose)) {
        if (keyGiven !== undefined) fail('ERR_PORTFOLIO_WHOLE_ESTATE_CONFLICT', `${purpose} is served by a whole-estate key in ${org.entityId}: no per-device ${purpose} key is recorded`, eui);
        continue;
      }
      const keyId = keyGiven ?? p.current[purpose];
      if (keyId === undefined) continue;
      const k = this.#key(s, keyId);
      if (k.organisation !== org.entityId || k.purpose !== purpose) fail('ERR_INVALID_ARGUMENT', `key ${keyId} is not a ${purpose} key of ${org.entityId}`);
      this.#checkCap(s, org, k, 1);
      installed[purpose] = keyId;
    }
    const d: DeviceState = { device: eui, organisation: org.entityId, portfolioId: p.id, installed };
    s.devices[`${org.entityId}/${eui}`] = d;
    return { info: deviceInfo(d), event: { type: 'device.assigned', organisation: org.entityId, device: eui, portfolioId: p.id } };
  }

  /**
   * Move a device to another portfolio. The meter keeps trusting its installed certificates until
   * its credentials are updated; the result lists those updates (never one for `xmlSigning`).
   * @throws SmkiError `ERR_DEVICE_UNKNOWN`, `ERR_PORTFOLIO_NOT_FOUND`, `ERR_PORTFOLIO_DEVICE_CAP`
   */
  moveDevice(organisation: string, device: string, toPortfolioId: string): Promise<CredentialUpdate[]> {
    return this.#mutate((s) => {
      const org = this.#org(s, organisation);
      const eui = parseEui64(device);
      const d = own(s.devices, `${org.entityId}/${eui}`);
      if (!d) fail('ERR_DEVICE_UNKNOWN', `device ${eui} is in no portfolio of ${org.entityId}`, eui);
      const to = this.#portfolio(s, org.entityId, toPortfolioId);
      if (d.portfolioId === to.id) fail('ERR_INVALID_ARGUMENT', `device ${eui} is already in ${to.id}`);
      const from = d.portfolioId;
      d.portfolioId = to.id;
      const updates: CredentialUpdate[] = [];
      for (const purpose of DEVICE_PURPOSES) {
        const target = to.current[purpose];
        if (this.#wholeEstatePortfolio(s, org.entityId, purpose) || target === undefined || d.installed[purpose] === target) continue;
        // As in #checkCap: refused unless within the cap.
        if (org.maxDevicesPerKey !== undefined && !(this.#devicesOf(s, org.entityId, to.id).length <= org.maxDevicesPerKey)) {
          fail('ERR_PORTFOLIO_DEVICE_CAP', `portfolio ${to.id} would hold more than ${org.maxDevicesPerKey} devices`, to.id);
        }
        updates.push(Object.freeze({ device: eui, purpose, fromKeyId: d.installed[purpose], toKeyId: target }));
      }
      return { result: updates, events: [{ type: 'device.moved', organisation: org.entityId, device: eui, fromPortfolioId: from, toPortfolioId: to.id }] };
    });
  }

  /**
   * Record that a meter's credentials were updated: it now trusts its portfolio's current key for
   * `purpose`.
   * @throws SmkiError `ERR_DEVICE_UNKNOWN`, `ERR_DEVICE_NO_INSTALLED_CERTIFICATE` (no current key), `ERR_PORTFOLIO_DEVICE_CAP`,
   *   `ERR_INVALID_ARGUMENT` (not a purpose, or `xmlSigning`: no meter trusts that key)
   */
  markCredentialsUpdated(organisation: string, device: string, purpose: KeyPurpose): Promise<DeviceInfo> {
    return this.#mutate((s) => {
      const org = this.#org(s, organisation);
      const eui = parseEui64(device);
      checkPurpose(purpose);
      if (!DEVICE_PURPOSES.includes(purpose)) fail('ERR_INVALID_ARGUMENT', `no meter trusts an ${purpose} key: there are no credentials to update`, eui);
      const d = own(s.devices, `${org.entityId}/${eui}`);
      if (!d) fail('ERR_DEVICE_UNKNOWN', `device ${eui} is in no portfolio of ${org.entityId}`, eui);
      const estate = this.#wholeEstatePortfolio(s, org.entityId, purpose);
      if (estate) fail('ERR_PORTFOLIO_WHOLE_ESTATE_CONFLICT', `${purpose} is served by the whole-estate key of ${estate.id}: no per-device ${purpose} key is recorded`, eui);
      const p = this.#portfolio(s, org.entityId, d.portfolioId);
      const keyId = p.current[purpose];
      if (keyId === undefined) fail('ERR_DEVICE_NO_INSTALLED_CERTIFICATE', `portfolio ${p.id} has no current ${purpose} key`, eui);
      if (d.installed[purpose] !== keyId) this.#checkCap(s, org, this.#key(s, keyId), 1);
      d.installed[purpose] = keyId;
      return { result: deviceInfo(d), events: [{ type: 'device.credentials-updated', device: eui, purpose, keyId }] };
    });
  }

  // -------------------------------------------------------------------------------------------
  // use

  /**
   * Sign `data` for a device with the digital-signing key whose certificate that meter has
   * installed: ECDSA P-256/SHA-256, 64-byte `r ‖ s`. Each use is audited (group-committed), with
   * the message code and counter of `use` (checked before the key is used).
   * @throws SmkiError `ERR_INVALID_ARGUMENT` (`use` not an object, a message code outside
   *   0..0xFFFF, a counter that is not a bigint in 0..2^64-1), `ERR_DEVICE_UNKNOWN`, `ERR_DEVICE_NO_INSTALLED_CERTIFICATE`, `ERR_KEY_NOT_ACTIVE`,
   *   `ERR_KEY_RETIRED`, `ERR_KEY_REVOKED`, `ERR_KEYSTORE_CLOSED`
   */
  async signFor(device: string, data: Uint8Array, use: UseContext & { organisation?: string } = {}): Promise<Uint8Array> {
    this.#assertOpen();
    const fields = useOf(use);
    const { key } = this.#resolve(this.#state, use.organisation, device, 'signing');
    return this.#signWithKey(key, device, data, fields);
  }

  /**
   * Sign for a device with a given signing key, refused unless it is the key that meter trusts.
   * @throws SmkiError `ERR_KEY_PORTFOLIO_MISMATCH` (a key of another portfolio), `ERR_KEY_NOT_FOR_SIGNING`
   *   (a key-agreement key, or an `xmlSigning` key: it signs only DUIS XML, through
   *   {@link JsonKeyStore.xmlSigner}), `ERR_KEY_STATE_TRANSITION` (a key of the same portfolio the meter does
   *   not trust), and every code of {@link JsonKeyStore.signFor}
   */
  async signWith(handle: SigningKeyHandle, device: string, data: Uint8Array, use: UseContext = {}): Promise<Uint8Array> {
    this.#assertOpen();
    const fields = useOf(use);
    const s = this.#state;
    const given = this.#key(s, handle?.keyId);
    if (given.purpose === 'xmlSigning') fail('ERR_KEY_NOT_FOR_SIGNING', `key ${given.keyId} is an xmlSigning key: it signs DUIS XML (KeyStore.xmlSigner), never for a meter`, given.keyId);
    if (given.purpose !== 'signing') fail('ERR_KEY_NOT_FOR_SIGNING', `key ${given.keyId} is a ${given.purpose} key: it never signs (but its own CSR)`, given.keyId);
    const { key, dev } = this.#resolve(s, given.organisation, device, 'signing');
    if (key.keyId !== given.keyId) {
      const devPortfolio = dev.portfolioId;
      if (given.portfolioId !== devPortfolio && given.portfolioId !== key.portfolioId) {
        fail('ERR_KEY_PORTFOLIO_MISMATCH', `key ${given.keyId} belongs to portfolio ${given.portfolioId}; device ${device} is in ${devPortfolio}`, given.keyId);
      }
      fail('ERR_KEY_STATE_TRANSITION', `device ${device} trusts key ${key.keyId}, not ${given.keyId}`, given.keyId);
    }
    return this.#signWithKey(key, device, data, fields);
  }

  async #signWithKey(key: KeyState_, device: string, data: Uint8Array, use: UseContext): Promise<Uint8Array> {
    if (!(data instanceof Uint8Array)) fail('ERR_INVALID_ARGUMENT', 'data must be a Uint8Array');
    const signature = await this.#backend.sign(key.handle, data);
    // Stryker disable next-line ObjectLiteral: equivalent; AuditLog.append syncs only for durable === true, so {} is the same group-committed append
    await this.#audit.append(useEvent('sign', key, device, use), { durable: false });
    return signature;
  }

  /**
   * A `KeyAgreement` for a device: the key-agreement key whose certificate that meter has
   * installed (or the whole-estate key, where the organisation declared one). The checks run again
   * at each derivation, so a key revoked meanwhile is refused.
   * @throws SmkiError `ERR_KEY_NOT_FOR_KEY_AGREEMENT` (a purpose of a signing key: `signing` or
   *   `xmlSigning`), and as {@link JsonKeyStore.signFor}
   */
  keyAgreementFor(device: string, options: { purpose?: KeyAgreementPurpose; organisation?: string } & UseContext = {}): KeyAgreement {
    this.#assertOpen();
    // Read once: what a later derivation resolves and records cannot change after this call.
    const fields = useOf(options);
    const { organisation } = options;
    const purpose = options.purpose ?? 'keyAgreement';
    if (purpose === ('signing' as KeyPurpose) || purpose === ('xmlSigning' as KeyPurpose)) fail('ERR_KEY_NOT_FOR_KEY_AGREEMENT', `a ${purpose} key is never used for key agreement`);
    const { key } = this.#resolve(this.#state, organisation, device, purpose);
    const publicKey = Buffer.from(key.publicKey, 'hex');
    return {
      publicKey,
      deriveSharedSecret: async (peer: Uint8Array | KeyObject): Promise<Uint8Array> => {
        this.#assertOpen();
        const now = this.#resolve(this.#state, organisation, device, purpose).key;
        if (now.keyId !== key.keyId) fail('ERR_KEY_STATE_TRANSITION', `device ${device} now trusts key ${now.keyId}`, key.keyId);
        // An uncompressed point goes to the backend as it is (every backend checks it is on the curve); anything
        // else is normalised to one (no KeyObject is made for a point: that costs more than the ECDH).
        const point = peer instanceof Uint8Array && peer.length === 65 && peer[0] === 0x04 ? peer : publicKeyToRaw(toPublicKey(peer));
        const z = await this.#backend.deriveSharedSecret(key.handle, point);
        // Stryker disable next-line ObjectLiteral: equivalent; AuditLog.append syncs only for durable === true, so {} is the same group-committed append
        await this.#audit.append(useEvent('keyAgreement', key, device, fields), { durable: false });
        return z;
      },
    };
  }

  /**
   * Key agreement with a given key-agreement key, refused unless the device trusts it.
   * @throws SmkiError `ERR_KEY_NOT_FOR_KEY_AGREEMENT` (a signing or `xmlSigning` key), `ERR_KEY_PORTFOLIO_MISMATCH`, and as {@link JsonKeyStore.keyAgreementFor}
   */
  keyAgreementWith(handle: KeyAgreementKeyHandle, device: string, use: UseContext = {}): KeyAgreement {
    this.#assertOpen();
    const fields = useOf(use);
    const given = this.#key(this.#state, handle?.keyId);
    if (given.purpose === 'signing' || given.purpose === 'xmlSigning') fail('ERR_KEY_NOT_FOR_KEY_AGREEMENT', `key ${given.keyId} is a ${given.purpose} key`, given.keyId);
    const { key } = this.#resolve(this.#state, given.organisation, device, given.purpose);
    if (key.keyId !== given.keyId) {
      if (key.portfolioId !== given.portfolioId) fail('ERR_KEY_PORTFOLIO_MISMATCH', `key ${given.keyId} belongs to portfolio ${given.portfolioId}`, given.keyId);
      fail('ERR_KEY_STATE_TRANSITION', `device ${device} trusts key ${key.keyId}, not ${given.keyId}`, given.keyId);
    }
    // `use` may be built from request data: only its use fields are taken (its message code and
    // counter, recorded); the purpose and organisation are the given key's.
    return this.keyAgreementFor(device, { purpose: given.purpose as KeyAgreementPurpose, organisation: given.organisation, ...fields });
  }

  /**
   * The organisation's DUIS XML signer: a core `Signer` (ECDSA P-256/SHA-256, 64-byte `r ‖ s`) over
   * its current `xmlSigning` key, with that key's id and its certificate (role 135, DER) for the
   * signature's KeyInfo. When exactly one portfolio of the organisation has a current `xmlSigning`
   * key, that key is used; when several have one, `portfolioId` must name one.
   *
   * The signer stays bound to that key: a later rotation does not change it (make a new signer
   * for the new key; the old key stays active until retired). The checks run again at every
   * `sign`: the store open, the key active, not retired, not revoked, so a key revoked after the
   * signer was made is refused. Every signature is audited (group-committed, like
   * {@link JsonKeyStore.signFor}) as `key.used` with operation `xml-sign`, no device, and the request
   * id of `options` or of the `sign` call, checked before the key is used.
   * @throws SmkiError `ERR_ORGANISATION_NOT_FOUND`, `ERR_PORTFOLIO_NOT_FOUND` (a `portfolioId` the
   *   organisation does not have), `ERR_KEY_NOT_FOUND` (no current `xmlSigning` key in the
   *   organisation, or in the portfolio named), `ERR_INVALID_ARGUMENT` (`options` not an object, a
   *   `portfolioId` that is not a string, a request id that is not an identifier of at most 128
   *   characters, or several portfolios with a current key and none named), `ERR_KEY_NOT_ACTIVE`,
   *   `ERR_KEY_RETIRED`, `ERR_KEY_REVOKED`, `ERR_KEYSTORE_CORRUPT` (the current key is of another
   *   purpose or organisation, or has no certificate), `ERR_KEYSTORE_CLOSED`, `ERR_EUI64_INVALID`
   * @see docs/domain.md §8 (DUIS XML signatures: the User signs its requests with its role 135 certificate)
   */
  xmlSigner(organisation: string, options: XmlSignerOptions = {}): XmlSigner {
    this.#assertOpen();
    if (typeof options !== 'object' || options === null) fail('ERR_INVALID_ARGUMENT', 'the xmlSigner options must be an object', 'options');
    const { portfolioId } = options;
    // Read once and checked now: what every signature of this signer records by default.
    const defaults = xmlUseOf(options);
    const s = this.#state;
    const org = this.#org(s, organisation);
    let keyId: string | undefined;
    if (portfolioId !== undefined) {
      if (typeof portfolioId !== 'string') fail('ERR_INVALID_ARGUMENT', 'portfolioId must be a string', 'portfolioId');
      keyId = this.#portfolio(s, org.entityId, portfolioId).current.xmlSigning;
      if (keyId === undefined) fail('ERR_KEY_NOT_FOUND', `portfolio ${portfolioId} of ${org.entityId} has no current xmlSigning key (none with a certificate attached, or it was revoked)`, `${org.entityId}/${portfolioId}/xmlSigning`);
    } else {
      const holders = Object.values(s.portfolios)
        .filter((p) => p.organisation === org.entityId && p.current.xmlSigning !== undefined)
        .sort((a, b) => (a.id < b.id ? -1 : 1));
      if (holders.length === 0) fail('ERR_KEY_NOT_FOUND', `organisation ${org.entityId} has no current xmlSigning key (none with a certificate attached, or it was revoked)`, `${org.entityId}/xmlSigning`);
      if (holders.length > 1) fail('ERR_INVALID_ARGUMENT', `portfolios ${holders.map((p) => p.id).join(', ')} of ${org.entityId} each have a current xmlSigning key: name one with portfolioId`, 'portfolioId');
      keyId = (holders[0] as PortfolioState).current.xmlSigning as string;
    }
    const key = this.#usableXmlKey(s, keyId, org.entityId);
    if (key.certificate === undefined) fail('ERR_KEYSTORE_CORRUPT', `the current xmlSigning key ${key.keyId} has no certificate`, key.keyId);
    const certificate = new Uint8Array(toCertificate(key.certificate).der);
    const bound = key.keyId;
    return Object.freeze({
      keyId: bound,
      portfolioId: key.portfolioId,
      publicKey: new Uint8Array(Buffer.from(key.publicKey, 'hex')),
      certificate,
      sign: async (message: Uint8Array, use?: XmlSignUse): Promise<Uint8Array> => {
        this.#assertOpen();
        // Checked before the key is used: a value the audit record cannot carry refuses the signature.
        const fields = use === undefined ? defaults : xmlUseOf(use);
        if (!(message instanceof Uint8Array)) fail('ERR_INVALID_ARGUMENT', 'message must be a Uint8Array', 'message');
        const now = this.#usableXmlKey(this.#state, bound, org.entityId);
        const signature = await this.#backend.sign(now.handle, message);
        // Stryker disable next-line ObjectLiteral: equivalent; AuditLog.append syncs only for durable === true, so {} is the same group-committed append
        await this.#audit.append(xmlUseEvent(now, fields), { durable: false });
        return signature;
      },
    });
  }

  /**
   * An organisation's `xmlSigning` key, checked for use: active, neither retired nor revoked. Fails
   * closed with a distinct code for each reason.
   */
  #usableXmlKey(state: State, keyId: string, organisation: Eui64): KeyState_ {
    const key = this.#key(state, keyId);
    if (key.state === 'revoked') fail('ERR_KEY_REVOKED', `key ${key.keyId} is revoked`, key.keyId);
    if (key.state === 'retired') fail('ERR_KEY_RETIRED', `key ${key.keyId} is retired`, key.keyId);
    if (key.state !== 'active') fail('ERR_KEY_NOT_ACTIVE', `key ${key.keyId} is ${key.state}`, key.keyId);
    if (key.purpose !== 'xmlSigning' || key.organisation !== organisation) fail('ERR_KEYSTORE_CORRUPT', `key ${key.keyId} is not an xmlSigning key of ${organisation}`, key.keyId);
    return key;
  }

  // -------------------------------------------------------------------------------------------
  // reading

  /** One key. @throws SmkiError `ERR_KEY_NOT_FOUND`, `ERR_KEYSTORE_CLOSED` */
  key(keyId: string): KeyInfo {
    this.#assertOpen();
    return keyInfo(this.#key(this.#state, keyId));
  }

  /** Every key, optionally of one organisation. @throws SmkiError `ERR_KEYSTORE_CLOSED` */
  keys(organisation?: string): KeyInfo[] {
    this.#assertOpen();
    const org = organisation === undefined ? undefined : parseEui64(organisation);
    return Object.values(this.#state.keys).filter((k) => org === undefined || k.organisation === org).map(keyInfo);
  }

  /** One portfolio. @throws SmkiError `ERR_PORTFOLIO_NOT_FOUND`, `ERR_ORGANISATION_NOT_FOUND`, `ERR_KEYSTORE_CLOSED` */
  portfolio(organisation: string, id: string): PortfolioInfo {
    this.#assertOpen();
    const org = this.#org(this.#state, organisation);
    return this.#portfolioInfo(this.#state, this.#portfolio(this.#state, org.entityId, id));
  }

  /** Every portfolio of an organisation, by id. @throws SmkiError `ERR_ORGANISATION_NOT_FOUND`, `ERR_KEYSTORE_CLOSED` */
  portfolios(organisation: string): PortfolioInfo[] {
    this.#assertOpen();
    const s = this.#state;
    const org = this.#org(s, organisation);
    return Object.values(s.portfolios)
      .filter((p) => p.organisation === org.entityId)
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((p) => this.#portfolioInfo(s, p));
  }

  /** One device. @throws SmkiError `ERR_DEVICE_UNKNOWN`, `ERR_KEYSTORE_CLOSED` */
  device(organisation: string, device: string): DeviceInfo {
    this.#assertOpen();
    const org = this.#org(this.#state, organisation);
    const eui = parseEui64(device);
    const d = own(this.#state.devices, `${org.entityId}/${eui}`);
    if (!d) fail('ERR_DEVICE_UNKNOWN', `device ${eui} is in no portfolio of ${org.entityId}`, eui);
    return deviceInfo(d);
  }

  /**
   * Which devices a key endangers: the meters that trust it now (its certificate is installed),
   * or every device of the organisation for a whole-estate key; none for an `xmlSigning` key (an
   * organisation key no meter trusts: its compromise endangers the DUIS requests signed in the
   * organisation's name, not a meter's trust anchor).
   * @throws SmkiError `ERR_KEY_NOT_FOUND`
   */
  devicesExposedBy(keyId: string): Exposure {
    this.#assertOpen();
    const s = this.#state;
    const k = this.#key(s, keyId);
    const p = this.#portfolio(s, k.organisation, k.portfolioId);
    const wholeEstate = p.wholeEstate.includes(k.purpose) && p.current[k.purpose] === k.keyId;
    const devices = Object.values(s.devices)
      .filter((d) => d.organisation === k.organisation && (wholeEstate || d.installed[k.purpose] === k.keyId))
      .map((d) => d.device)
      .sort();
    return Object.freeze({ keyId: k.keyId, portfolioId: k.portfolioId, purpose: k.purpose, wholeEstate, devices: Object.freeze(devices) });
  }

  /** The exposure of every key that is not revoked or retired, largest first. */
  exposureReport(organisation?: string): Exposure[] {
    return this.keys(organisation)
      .filter((k) => k.state === 'active' || k.state === 'pending')
      .map((k) => this.devicesExposedBy(k.keyId))
      .sort((a, b) => b.devices.length - a.devices.length || a.keyId.localeCompare(b.keyId));
  }

  /**
   * Backend keys the metadata does not reference: left by a crash between generating a key and
   * recording it (never acknowledged to a caller). Never used; never destroyed automatically.
   */
  orphanHandles(): readonly string[] {
    return this.#orphans;
  }

  /** Flush use records to disk now. @throws SmkiError `ERR_KEYSTORE_CLOSED`, `ERR_AUDIT_WRITE_FAILED` */
  async flush(): Promise<void> {
    this.#assertOpen();
    await this.#audit.flush();
  }

  /** Wait for pending changes, flush the audit trail, release the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#queue;
    this.#closed = true;
    try {
      await this.#audit.flush();
      this.#persist(this.#state); // the head now covers every use record too
      await this.#audit.close();
    } finally {
      this.#lock.release();
    }
  }
}

function deviceInfo(d: DeviceState): DeviceInfo {
  return Object.freeze({ ...d, installed: Object.freeze({ ...d.installed }) });
}



function xmlUseEvent(key: KeyState_, use: XmlSignUse): AuditEvent {
  return { type: 'key.used', operation: 'xml-sign', keyId: key.keyId, portfolioId: key.portfolioId, ...optional('requestId', use.requestId) };
}

function useEvent(operation: 'sign' | 'keyAgreement', key: KeyState_, device: string, use: UseContext): AuditEvent {
  return {
    type: 'key.used',
    operation,
    keyId: key.keyId,
    portfolioId: key.portfolioId,
    device: parseEui64(device),
    ...optional('messageCode', use.messageCode),
    ...optional('counter', use.counter),
  } as AuditEvent;
}

/**
 * Apply again the revocations and retirements the log holds beyond the metadata's head (an older
 * metadata file was put back, e.g. from a backup); refuse any other lifecycle record there, since
 * the store cannot tell what else the newer state held.
 * @returns how many records changed the state
 * @throws SmkiError `ERR_KEYSTORE_METADATA_ROLLBACK`
 */
function reapplyBeyondHead(state: State, beyond: readonly AuditRecord[]): number {
  if (beyond.length >= MAX_REAPPLIED) rolledBack(`${beyond.length} or more lifecycle records lie beyond its head`);
  for (const r of beyond) {
    if (!ALLOWED_BEYOND_HEAD.includes(r.type) && !REAPPLIED_BEYOND_HEAD.includes(r.type)) rolledBack(recordAt(r), `record ${r.seq} (${r.type}) lies beyond its head`);
  }
  let n = 0;
  for (const r of beyond) {
    if (r.type !== 'key.revoked' && r.type !== 'key.retired') continue;
    const k = own(state.keys, r.keyId);
    if (!k) rolledBack(recordAt(r), `record ${r.seq} (${r.type}) names key ${r.keyId}, which the metadata does not know`);
    if (k.state === 'revoked' || (r.type === 'key.retired' && k.state === 'retired')) continue;
    if (r.type === 'key.revoked') {
      k.state = 'revoked';
      k.revokedAt = r.at;
    } else {
      k.state = 'retired';
    }
    const p = own(state.portfolios, `${k.organisation}/${k.portfolioId}`);
    if (p && p.current[k.purpose] === k.keyId) delete p.current[k.purpose];
    n++;
  }
  return n;
}

/** Where a record lies: the `detail` of a rollback error. */
function recordAt(r: AuditRecord): string {
  return `seq ${r.seq}: ${r.type}`;
}

/**
 * @throws SmkiError `ERR_KEYSTORE_METADATA_ROLLBACK` with `detail` (a record, or a count); `message`
 *   says what is wrong (default: the detail)
 */
function rolledBack(detail: string, message: string = detail): never {
  throw new SmkiError('ERR_KEYSTORE_METADATA_ROLLBACK', `the store metadata is older than its audit trail: ${message}; restore the metadata that goes with this log`, { detail });
}
