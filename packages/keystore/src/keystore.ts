// The public key store: the database store (SQLite by default, PostgreSQL to share one store
// between signing services) behind one class. The engine does the work; this module chooses the
// database, refuses a directory that still holds JSON metadata of an earlier release, migrates one
// in place, and gives the auditor a check that needs only the audit public key.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseEui64, SmkiError, type Eui64, type KeyAgreement } from '@smki/core';
import type { CertificateInput } from '@smki/pki';
import type { PostgresStateStoreOptions } from '@smki/store';
import type { KeyBackend } from './backend.js';
import type { AuditAnchor } from './anchor.js';
import type { AuditRecord } from './audit.js';
import type { AccessPolicy, BACKEND_NAME, OperatorInfo, Proposal } from './access.js';
import { checkScryptN, fail, useOf } from './internal/rules.js';
import { METADATA_FILE } from './internal/metadata.js';
import { PostgresDriver, SqliteDriver, type SqlDriver } from './internal/db/driver.js';
import { POSTGRES_SCHEMA, SQLITE_SCHEMA } from './internal/db/schema.js';
import { DbKeyStore, type Assignment, type CredentialUpdatePage, type ExecutePayload, type ExposureCount, type RowFinding, type SigningSession } from './internal/db/engine.js';
import { migrateJsonStore, type MigrationReport } from './internal/db/migrate.js';
import { verifyTrail, type TrailHead, type TrailVerification } from './internal/db/trail.js';
import type {
  CredentialUpdate,
  DeviceInfo,
  KeyAgreementKeyHandle,
  KeyAgreementPurpose,
  KeyHandle,
  KeyInfo,
  KeyPurpose,
  OrganisationInfo,
  PortfolioInfo,
  SigningKeyHandle,
  UseContext,
  XmlSigner,
  XmlSignerOptions,
  XmlSigningKeyHandle,
} from './types.js';

export type { Assignment, CredentialUpdatePage, ExecutePayload, ExposureCount, RowFinding, SigningSession, MigrationReport, TrailHead, TrailVerification };

/** The SQLite file of a store in its directory (the embedded default). */
export const KEYSTORE_DATABASE_FILE = 'keystore.db';

/** Most meters one {@link KeyStore.assignDevices} or {@link KeyStore.moveDevices} call takes (one transaction). */
export const MAX_BULK_DEVICES = 100_000;

/**
 * Where a store keeps its metadata and audit trail: SQLite (a file, by default
 * `keystore.db` in the store directory) or PostgreSQL (one schema, shared by several processes
 * and machines; connection as @smki/store's, default schema `smki_keystore`).
 */
export type KeyStoreDatabase = SqliteKeyStoreDatabase | PostgresKeyStoreDatabase;

/** A store in a SQLite file. */
export interface SqliteKeyStoreDatabase {
  /** SQLite. */
  readonly kind: 'sqlite';
  /** The database file (default `keystore.db` in the store directory). */
  readonly path?: string;
}

/** A store in a PostgreSQL schema (the connection options of @smki/store; default schema `smki_keystore`). */
export interface PostgresKeyStoreDatabase extends Omit<PostgresStateStoreOptions, 'keepLogLines'> {
  /** PostgreSQL. */
  readonly kind: 'postgres';
}

/** Options of {@link KeyStore.open}. */
export interface KeyStoreOptions {
  /**
   * The store directory (created mode 0700): the SQLite database by default, and where a store
   * of an earlier release kept its JSON metadata (then {@link KeyStore.open} refuses until it is
   * migrated). Required unless `database` is PostgreSQL.
   */
  readonly directory?: string;
  /** Where the private keys live. */
  readonly backend: KeyBackend;
  /**
   * Further backends by name ({@link BACKEND_NAME}), for keys that must not live beside the
   * others: a replacement for a compromised key made in another HSM token or key directory
   * (`generateKey(…, { backend: name })`). A key made in one records `@name` as its backend and
   * is only ever used through the backend given under that name; opened without it, the key is
   * refused (`ERR_KEY_BACKEND_UNAVAILABLE`) and the rest of the store works. Not closed by the store.
   */
  readonly backends?: Readonly<Record<string, KeyBackend>>;
  /**
   * The store passphrase (authenticates every row, keys the audit MACs, decrypts the audit
   * signing key). Default: the environment variable `SMKI_KEYSTORE_PASSPHRASE`. Never logged.
   */
  readonly passphrase?: string;
  /** The database (default SQLite in `directory`). */
  readonly database?: KeyStoreDatabase;
  /**
   * A second place the audit head is checkpointed to, signed (a {@link DirectoryAnchor} on
   * another volume, or a {@link PostgresAnchor}): checked when the store opens, written every
   * `anchorIntervalMs` and at close. Not closed by the store.
   */
  readonly anchor?: AuditAnchor;
  /** How often the audit head is checkpointed to the anchor (ms, default 1000). */
  readonly anchorIntervalMs?: number;
  /** Clock (default `() => new Date()`). */
  readonly now?: () => Date;
  /** scrypt cost for a new store's secret (default 2^15). */
  readonly scryptN?: number;
  /**
   * Most meters whose rows, read and checked against their MAC, the store keeps in memory to sign
   * for them without reading them again (about 25 bytes each; default 2,000,000; beyond it the
   * cache starts again empty; 0 keeps none). A kept row is trusted by a use batch only while no
   * commit can have changed it since it was read (SQLite: no other connection has committed
   * anything; PostgreSQL: no transaction has written a meter's row, which every such transaction
   * records by moving a counter the batch locks), and the store's own changes drop the rows they
   * write. Set it to at least the number of meters the store signs for. See {@link KeyStore.prewarm}.
   */
  readonly meterCache?: number;
  /** Fault-injection hook for crash tests (points `db:*`). Never set in production. */
  readonly fault?: (point: string) => void;
}

/** Options of {@link KeyStore.generateKey}. */
export interface GenerateKeyOptions {
  /** One of the store's further backends ({@link KeyStoreOptions.backends}), by name; default the store's `backend`. */
  readonly backend?: string;
}

/** Options of {@link KeyStore.verifyAuditTrail}: the database and the audit public key, no passphrase. */
export interface AuditTrailCheckOptions {
  /** The store directory (for the default SQLite database). */
  readonly directory?: string;
  /** The database (default SQLite in `directory`). */
  readonly database?: KeyStoreDatabase;
  /** The store's audit public key (65-byte uncompressed point, from {@link KeyStore.auditPublicKey}), obtained out of band. */
  readonly auditPublicKey: Uint8Array;
  /** An anchor the trail must reach: a trail that ends before its latest checkpoint, or differs at it, fails. */
  readonly anchor?: AuditAnchor;
  /**
   * Called with each record, in order, as it is read: the auditor's copy of the trail. Rely on the
   * records only when the verification that returns is `ok`.
   */
  readonly onRecord?: (record: AuditRecord) => void;
}

/** What a rotation did: the key now current, and how many meters still trust an older key. */
export interface RotationSummary {
  /** The key that was current for the purpose before (if any). */
  readonly fromKeyId?: string;
  /** The key now current. */
  readonly toKeyId: string;
  /** Meters of the portfolio that must be sent a credential update ({@link KeyStore.credentialUpdates} pages them). */
  readonly devicesToUpdate: number;
}

/** A portfolio and how many meters it holds. */
export interface PortfolioSummary extends Omit<PortfolioInfo, 'devices'> {
  /** Meters in the portfolio. */
  readonly deviceCount: number;
}

/** A page of a portfolio's meters. */
export interface DevicePage {
  /** The meters, in EUI-64 order. */
  readonly devices: readonly DeviceInfo[];
  /** Pass as `after` for the next page; undefined on the last page. */
  readonly next?: string;
}

/** What {@link KeyStore.verifyStore} found. */
export interface StoreVerification {
  /** The trail's own verification (seals, chain, numbering). */
  readonly trail: TrailVerification;
  /** Rows that disagree with the trail, and uses the replay refuses; empty when the store is as its trail says. */
  readonly findings: readonly RowFinding[];
}

/** An operator as the store holds it. */
export interface OperatorState extends OperatorInfo {
  /** Whether it was removed (a removed operator signs and requests nothing). */
  readonly removed: boolean;
  /** The last request counter the store accepted from it (its next request must be above). */
  readonly lastCounter: bigint;
}

/** Where a proposal's quorum stands after an approval. */
export interface ApprovalProgress {
  /** Approvals the policy requires. */
  readonly required: number;
  /** The distinct operators (never the proposer) whose approvals count. */
  readonly approvers: readonly string[];
  /** Whether the quorum is met (the proposal may be executed before it expires). */
  readonly met: boolean;
}

/** A proposal and its state. */
export interface ProposalState extends Proposal {
  /** `open` until executed (`executed`); an expired one stays `open` and can no longer execute. */
  readonly state: string;
}

/** A page of the meters that trust a key. */
export interface TrustingDevicesPage {
  /** Whether the key serves the whole estate (then the page lists every meter of the organisation). */
  readonly wholeEstate: boolean;
  /** The meters, in EUI-64 order. */
  readonly devices: readonly Eui64[];
  /** Pass as `after` for the next page; undefined on the last page. */
  readonly next?: string;
}

async function openDriver(options: { directory?: string; database?: KeyStoreDatabase }, mustExist = false): Promise<SqlDriver> {
  const db = options.database ?? { kind: 'sqlite' as const };
  if (typeof db !== 'object' || db === null) fail('ERR_INVALID_ARGUMENT', 'database must be { kind: "sqlite" } or { kind: "postgres", … }', 'database');
  if (db.kind === 'postgres') {
    const { kind: _kind, ...connection } = db;
    return PostgresDriver.open(connection, POSTGRES_SCHEMA);
  }
  if (db.kind !== 'sqlite') fail('ERR_INVALID_ARGUMENT', `unknown database kind ${String((db as { kind?: unknown }).kind)}`, 'database');
  let path = db.path;
  if (path === undefined) {
    if (typeof options.directory !== 'string' || options.directory === '') fail('ERR_INVALID_ARGUMENT', 'a SQLite key store needs a directory (or database.path)', 'directory');
    if (!mustExist) mkdirSync(options.directory, { recursive: true, mode: 0o700 });
    path = join(options.directory, KEYSTORE_DATABASE_FILE);
  }
  // An auditor's check never creates a store where there is none.
  if (mustExist && !existsSync(path)) fail('ERR_INVALID_ARGUMENT', `no key store database at ${path}`, path);
  return SqliteDriver.open(path, SQLITE_SCHEMA);
}

function passphraseOf(given: string | undefined): string {
  const passphrase = given ?? process.env.SMKI_KEYSTORE_PASSPHRASE;
  if (typeof passphrase !== 'string' || passphrase.length === 0) fail('ERR_INVALID_ARGUMENT', 'a key store needs a passphrase (option or SMKI_KEYSTORE_PASSPHRASE)');
  return passphrase;
}

/**
 * SMKI private keys segregated per portfolio, with their metadata in a database (SQLite, or
 * PostgreSQL shared by several signing services) and every change and use in a sealed audit trail
 * in the same database. Each lifecycle change is one transaction with its audit records; every
 * row is authenticated (an HMAC under a key from the passphrase) and checked against the trail; a
 * signature is returned only once its use record is durable.
 *
 * @example
 * ```ts
 * import { KeyStore, MemoryKeyBackend } from '@smki/keystore';
 * const store = await KeyStore.open({ directory: '/var/lib/smki/keystore', backend: new MemoryKeyBackend(), passphrase: 'correct horse battery staple' });
 * await store.addOrganisation({ entityId: '90B3D51F30010000', role: 2 });
 * await store.createPortfolio('90B3D51F30010000', { id: 'north' });
 * const key = await store.generateKey('90B3D51F30010000', 'north', 'signing');
 * const csr = await store.createCsr(key.keyId); // certify it, then store.attachCertificate(key.keyId, certificate)
 * await store.close();
 * ```
 * @see docs/key-segregation.md, docs/keystore-estate.md
 */
export class KeyStore {
  readonly #e: DbKeyStore;

  private constructor(engine: DbKeyStore) {
    this.#e = engine;
  }

  /**
   * Open the store in its database, or create it there. A directory that still holds the JSON
   * metadata of an earlier release is refused until it is migrated ({@link KeyStore.migrate}).
   * Several processes may open one store (one SQLite file, or one PostgreSQL schema) at once.
   * @throws SmkiError `ERR_KEYSTORE_MIGRATION_REQUIRED`, `ERR_KEYSTORE_WRONG_PASSPHRASE`,
   *   `ERR_KEYSTORE_ROW_TAMPERED`, `ERR_KEYSTORE_METADATA_ROLLBACK`, `ERR_KEYSTORE_CORRUPT`,
   *   `ERR_AUDIT_CHECKPOINT_INVALID`, `ERR_AUDIT_TRUNCATED`, `ERR_AUDIT_ANCHOR_UNAVAILABLE`,
   *   `ERR_STORE_UNAVAILABLE`, `ERR_INVALID_ARGUMENT`
   */
  static async open(options: KeyStoreOptions): Promise<KeyStore> {
    if (typeof options !== 'object' || options === null) fail('ERR_INVALID_ARGUMENT', 'options must be an object', 'options');
    const passphrase = passphraseOf(options.passphrase);
    checkScryptN(options.scryptN);
    if (typeof options.directory === 'string' && existsSync(join(options.directory, METADATA_FILE))) {
      fail('ERR_KEYSTORE_MIGRATION_REQUIRED', `${options.directory} holds the JSON metadata of an earlier release: migrate it (KeyStore.migrate, or smki keystore migrate)`, options.directory);
    }
    const driver = await openDriver(options);
    try {
      const engine = await DbKeyStore.open({
        driver,
        backend: options.backend,
        ...(options.backends !== undefined ? { backends: options.backends } : {}),
        passphrase,
        ...(options.anchor !== undefined ? { anchor: options.anchor } : {}),
        ...(options.anchorIntervalMs !== undefined ? { anchorIntervalMs: options.anchorIntervalMs } : {}),
        ...(options.now !== undefined ? { now: options.now } : {}),
        ...(options.scryptN !== undefined ? { scryptN: options.scryptN } : {}),
        ...(options.meterCache !== undefined ? { meterCache: options.meterCache } : {}),
        ...(options.fault !== undefined ? { fault: options.fault } : {}),
      });
      return new KeyStore(engine);
    } catch (e) {
      await driver.close().catch(() => undefined);
      throw e;
    }
  }

  /**
   * Migrate a store of an earlier release (JSON metadata `store.json` and `audit.log` in
   * `directory`) into its database, in place. The old store is opened with every check it has
   * (its MAC, its log against the head, records beyond the head); its state and a
   * `store.migrated` record carrying the old log's head are written in one transaction; then
   * `store.json` is renamed `store.json.migrated`. A migration interrupted at any point is
   * finished by running it again. The key backend is not touched: keys stay where they are.
   * @throws SmkiError `ERR_INVALID_ARGUMENT` (nothing to migrate; the database holds another
   *   store), and every code of opening the old store (`ERR_KEYSTORE_WRONG_PASSPHRASE`,
   *   `ERR_KEYSTORE_CORRUPT`, `ERR_AUDIT_TAMPERED`, `ERR_AUDIT_TRUNCATED`,
   *   `ERR_KEYSTORE_METADATA_ROLLBACK`, `ERR_KEYSTORE_LOCKED`)
   */
  static async migrate(options: Omit<KeyStoreOptions, 'anchor' | 'anchorIntervalMs' | 'scryptN' | 'now'> & { readonly directory: string }): Promise<MigrationReport> {
    if (typeof options !== 'object' || options === null || typeof options.directory !== 'string') fail('ERR_INVALID_ARGUMENT', 'migrate needs the store directory', 'directory');
    const passphrase = passphraseOf(options.passphrase);
    if (!existsSync(join(options.directory, METADATA_FILE))) {
      throw new SmkiError('ERR_INVALID_ARGUMENT', `no store with JSON metadata in ${options.directory} (no ${METADATA_FILE})`, { detail: options.directory });
    }
    const driver = await openDriver(options);
    try {
      return await migrateJsonStore({ directory: options.directory, backend: options.backend, passphrase, driver, ...(options.fault !== undefined ? { fault: options.fault } : {}) });
    } finally {
      await driver.close();
    }
  }

  /**
   * Verify a store's audit trail as an auditor would, with its audit public key only (no
   * passphrase): every batch's seal, the chain of records, contiguous numbering, the head at the
   * end of the last batch, and, with `anchor`, that the trail reaches the latest checkpoint
   * unchanged. Read-only.
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_KEYSTORE_CORRUPT` (no store in the database), `ERR_STORE_UNAVAILABLE`
   */
  static async verifyAuditTrail(options: AuditTrailCheckOptions): Promise<TrailVerification> {
    if (typeof options !== 'object' || options === null) fail('ERR_INVALID_ARGUMENT', 'options must be an object', 'options');
    if (!(options.auditPublicKey instanceof Uint8Array) || options.auditPublicKey.length !== 65) fail('ERR_INVALID_ARGUMENT', 'auditPublicKey must be a 65-byte uncompressed P-256 point', 'auditPublicKey');
    const driver = await openDriver(options, true);
    try {
      return await DbKeyStore.verifyTrailOf(driver, options.auditPublicKey, options.anchor, options.onRecord);
    } finally {
      await driver.close();
    }
  }

  /** The store id (bound into every row MAC, batch seal and checkpoint). */
  get storeId(): string {
    return this.#e.storeId;
  }

  /** The audit public key (65-byte point): what an auditor verifies the trail and checkpoints with. */
  get auditPublicKey(): Uint8Array {
    return this.#e.auditPublicKey;
  }

  // --- organisations, portfolios, keys --------------------------------------------------------

  /** @throws SmkiError `ERR_ORGANISATION_EXISTS`, `ERR_EUI64_INVALID`, `ERR_ROLE_UNKNOWN`, `ERR_INVALID_ARGUMENT` */
  addOrganisation(options: { readonly entityId: string; readonly role: number; readonly maxDevicesPerKey?: number }): Promise<OrganisationInfo> {
    return this.#e.addOrganisation(options);
  }

  /** @throws SmkiError `ERR_ORGANISATION_NOT_FOUND`, `ERR_PORTFOLIO_EXISTS`, `ERR_INVALID_ARGUMENT`, `ERR_PORTFOLIO_WHOLE_ESTATE_CONFLICT` */
  createPortfolio(organisation: string, options: { readonly id: string; readonly name?: string; readonly wholeEstate?: readonly KeyPurpose[] }): Promise<PortfolioSummary> {
    return this.#e.createPortfolio(organisation, options).then(summary);
  }

  /**
   * Generate a key for a portfolio in the backend, or in the further backend `options.backend`
   * names (state `pending` until its certificate is attached).
   * @throws SmkiError `ERR_ORGANISATION_NOT_FOUND`, `ERR_PORTFOLIO_NOT_FOUND`, `ERR_INVALID_ARGUMENT` (also an unknown backend name, before any key is made), `ERR_KEY_STATE_TRANSITION` (another process generated that generation meanwhile), the backend's codes
   */
  generateKey(organisation: string, portfolioId: string, purpose: 'signing', options?: GenerateKeyOptions): Promise<SigningKeyHandle>;
  generateKey(organisation: string, portfolioId: string, purpose: KeyAgreementPurpose, options?: GenerateKeyOptions): Promise<KeyAgreementKeyHandle>;
  generateKey(organisation: string, portfolioId: string, purpose: 'xmlSigning', options?: GenerateKeyOptions): Promise<XmlSigningKeyHandle>;
  generateKey(organisation: string, portfolioId: string, purpose: KeyPurpose, options?: GenerateKeyOptions): Promise<KeyHandle>;
  generateKey(organisation: string, portfolioId: string, purpose: KeyPurpose, options: GenerateKeyOptions = {}): Promise<KeyHandle> {
    return this.#e.generateKey(organisation, portfolioId, purpose, options);
  }

  /** A PKCS#10 CSR (DER) for a pending key, signed by that key (its proof of possession). @throws SmkiError `ERR_KEY_NOT_FOUND`, `ERR_KEY_STATE_TRANSITION` */
  createCsr(keyId: string, options: { readonly commonName?: string } = {}): Promise<Uint8Array> {
    return this.#e.createCsr(keyId, options);
  }

  /**
   * Attach a key's certificate (its public key, role and key usage checked): a pending key
   * becomes active; the first active key of a purpose becomes its portfolio's current key.
   * @throws SmkiError `ERR_CERTIFICATE_KEY_MISMATCH`, `ERR_CERTIFICATE_ENTITY_MISMATCH`, `ERR_CERTIFICATE_ROLE_MISMATCH`, `ERR_CERTIFICATE_PURPOSE_MISMATCH`, `ERR_KEY_STATE_TRANSITION`, `ERR_KEY_NOT_FOUND`, `ERR_CERT_MALFORMED`
   */
  attachCertificate(keyId: string, certificate: CertificateInput): Promise<KeyInfo> {
    return this.#e.attachCertificate(keyId, certificate);
  }

  /**
   * Make an active key its portfolio's current key for its purpose: meters keep trusting the
   * old key until their credentials are updated ({@link KeyStore.credentialUpdates}, then
   * {@link KeyStore.markCredentialsUpdated}).
   * @throws SmkiError `ERR_KEY_NOT_FOUND`, `ERR_KEY_STATE_TRANSITION`
   */
  rotate(keyId: string): Promise<RotationSummary> {
    return this.#e.rotate(keyId);
  }

  /** The meters of a portfolio that do not trust its current key for `purpose` yet, a page at a time. @throws SmkiError `ERR_ORGANISATION_NOT_FOUND`, `ERR_PORTFOLIO_NOT_FOUND`, `ERR_INVALID_ARGUMENT` */
  credentialUpdates(organisation: string, portfolioId: string, options: { readonly purpose?: KeyPurpose; readonly after?: string; readonly limit?: number } = {}): Promise<CredentialUpdatePage> {
    return this.#e.credentialUpdates(organisation, portfolioId, options);
  }

  /** Retire a key no meter trusts any more (never the current key). @throws SmkiError `ERR_KEY_NOT_FOUND`, `ERR_KEY_STATE_TRANSITION` */
  retire(keyId: string): Promise<KeyInfo> {
    return this.#e.retire(keyId);
  }

  /** Revoke a key at once (compromise): it never signs or derives again. @throws SmkiError `ERR_KEY_NOT_FOUND`, `ERR_KEY_STATE_TRANSITION`, `ERR_INVALID_ARGUMENT` */
  revoke(keyId: string, reason?: string): Promise<KeyInfo> {
    return this.#e.revoke(keyId, reason);
  }

  // --- devices ----------------------------------------------------------------------------------

  /** Assign one meter to a portfolio (it trusts the portfolio's current keys). As {@link KeyStore.assignDevices}. */
  async assignDevice(organisation: string, device: string, portfolioId: string): Promise<DeviceInfo> {
    await this.#e.assignDevices(organisation, [{ device, portfolioId }]);
    return this.#e.device(organisation, device);
  }

  /**
   * Assign up to {@link MAX_BULK_DEVICES} meters in one transaction, all or none: a meter already
   * in a portfolio refuses the whole call. Each meter trusts its portfolio's current keys.
   * @returns how many meters were assigned
   * @throws SmkiError `ERR_DEVICE_ALREADY_ASSIGNED`, `ERR_PORTFOLIO_DEVICE_CAP`, `ERR_PORTFOLIO_NOT_FOUND`, `ERR_EUI64_INVALID`, `ERR_INVALID_ARGUMENT`
   */
  assignDevices(organisation: string, assignments: readonly Assignment[]): Promise<number> {
    return this.#e.assignDevices(organisation, assignments);
  }

  /** Move one meter to another portfolio; the credential updates it now needs. As {@link KeyStore.moveDevices}. */
  async moveDevice(organisation: string, device: string, toPortfolioId: string): Promise<CredentialUpdate[]> {
    await this.#e.moveDevices(organisation, [device], toPortfolioId);
    const d = await this.#e.device(organisation, device);
    const p = await this.#e.portfolio(organisation, toPortfolioId);
    // A purpose a whole-estate portfolio serves is never installed per meter: no update for it.
    const estate = new Set((await this.#e.portfolios(organisation)).flatMap((x) => x.wholeEstate));
    const out: CredentialUpdate[] = [];
    for (const purpose of ['signing', 'keyAgreement', 'prepaymentKeyAgreement'] as const) {
      if (estate.has(purpose)) continue;
      const to = p.current[purpose];
      if (to !== undefined && d.installed[purpose] !== to) out.push(Object.freeze({ device: d.device, purpose, fromKeyId: d.installed[purpose], toKeyId: to }));
    }
    return out;
  }

  /**
   * Move up to {@link MAX_BULK_DEVICES} meters to another portfolio in one transaction: each keeps
   * trusting its installed keys (still usable) until its credentials are updated.
   * @returns how many meters moved
   * @throws SmkiError `ERR_DEVICE_UNKNOWN`, `ERR_PORTFOLIO_NOT_FOUND`, `ERR_PORTFOLIO_DEVICE_CAP`, `ERR_INVALID_ARGUMENT`
   */
  moveDevices(organisation: string, devices: readonly string[], toPortfolioId: string): Promise<number> {
    return this.#e.moveDevices(organisation, devices, toPortfolioId);
  }

  /**
   * Record that a meter now trusts its portfolio's current key for `purpose` (its credential update succeeded).
   * @throws SmkiError `ERR_DEVICE_UNKNOWN`, `ERR_DEVICE_NO_INSTALLED_CERTIFICATE`, `ERR_PORTFOLIO_DEVICE_CAP`, `ERR_PORTFOLIO_WHOLE_ESTATE_CONFLICT`, `ERR_INVALID_ARGUMENT`
   */
  markCredentialsUpdated(organisation: string, device: string, purpose: KeyPurpose): Promise<DeviceInfo> {
    return this.#e.markCredentialsUpdated(organisation, device, purpose);
  }

  // --- use --------------------------------------------------------------------------------------

  /**
   * Sign for a meter with the key it trusts; returned only once the use record is durable and the
   * key was still usable, and still trusted by the meter, when the record committed.
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_DEVICE_UNKNOWN`, `ERR_DEVICE_NO_INSTALLED_CERTIFICATE`, `ERR_KEY_NOT_ACTIVE`, `ERR_KEY_RETIRED`,
   *   `ERR_KEY_REVOKED`, `ERR_KEY_STATE_TRANSITION` (the meter stopped trusting the key before the record committed),
   *   `ERR_KEYSTORE_CLOSED`, `ERR_KEYSTORE_ROW_TAMPERED`, `ERR_OPERATOR_REQUIRED` (under access control: use a session)
   */
  signFor(device: string, data: Uint8Array, use: UseContext & { readonly organisation?: string } = {}): Promise<Uint8Array> {
    return this.#e.signFor(device, data, use);
  }

  /** As {@link KeyStore.signFor}, refused unless `handle` is the key the meter trusts. @throws SmkiError `ERR_KEY_PORTFOLIO_MISMATCH`, `ERR_KEY_NOT_FOR_SIGNING`, `ERR_KEY_STATE_TRANSITION`, and those of {@link KeyStore.signFor} */
  signWith(handle: SigningKeyHandle, device: string, data: Uint8Array, use: UseContext = {}): Promise<Uint8Array> {
    return this.#e.signWith(handle, device, data, use);
  }

  /** ECDH with the key-agreement key a meter trusts; each derivation checked again and recorded. @throws SmkiError `ERR_KEY_NOT_FOR_KEY_AGREEMENT`, and those of {@link KeyStore.signFor} */
  keyAgreementFor(device: string, options: { readonly purpose?: KeyAgreementPurpose; readonly organisation?: string } & UseContext = {}): Promise<KeyAgreement> {
    return this.#e.keyAgreementFor(device, options);
  }

  /**
   * As {@link KeyStore.keyAgreementFor}, refused unless `handle` is the key-agreement key the
   * meter trusts for its purpose (nothing is derived or recorded before that is checked).
   * @throws SmkiError `ERR_KEY_NOT_FOR_KEY_AGREEMENT`, `ERR_KEY_PORTFOLIO_MISMATCH`, `ERR_KEY_STATE_TRANSITION`, and those of {@link KeyStore.keyAgreementFor}
   */
  async keyAgreementWith(handle: KeyAgreementKeyHandle, device: string, use: UseContext = {}): Promise<KeyAgreement> {
    const fields = useOf(use);
    const given = await this.#e.key(handle?.keyId);
    if (given.purpose !== 'keyAgreement' && given.purpose !== 'prepaymentKeyAgreement') {
      fail('ERR_KEY_NOT_FOR_KEY_AGREEMENT', `key ${given.keyId} is a ${given.purpose} key: it never agrees a key`, given.keyId);
    }
    const agreement = await this.#e.keyAgreementFor(device, { ...fields, purpose: given.purpose, organisation: given.organisation });
    if (Buffer.from(agreement.publicKey).toString('hex').toUpperCase() !== given.publicKey.toUpperCase()) {
      // As signWith: a key of neither the meter's portfolio nor the portfolio of the key it
      // trusts is another portfolio's; otherwise the meter does not trust it (yet, or any more).
      const dev = await this.#e.device(given.organisation, device);
      const trusted = dev.installed[given.purpose];
      const trustedPortfolio = trusted === undefined ? undefined : (await this.#e.key(trusted)).portfolioId;
      if (given.portfolioId !== dev.portfolioId && given.portfolioId !== trustedPortfolio) {
        fail('ERR_KEY_PORTFOLIO_MISMATCH', `key ${given.keyId} belongs to portfolio ${given.portfolioId}; device ${dev.device} is in ${dev.portfolioId}`, given.keyId);
      }
      fail('ERR_KEY_STATE_TRANSITION', `device ${dev.device} trusts ${trusted ?? 'another key'}, not ${given.keyId}, for ${given.purpose}`, given.keyId);
    }
    return agreement;
  }

  /**
   * The organisation's DUIS XML signer (its current xmlSigning key, role 135), each signature recorded.
   * @throws SmkiError `ERR_KEY_NOT_FOUND`, `ERR_INVALID_ARGUMENT`, `ERR_KEY_NOT_ACTIVE`, `ERR_KEY_RETIRED`, `ERR_KEY_REVOKED`, `ERR_KEYSTORE_CORRUPT`, `ERR_OPERATOR_REQUIRED`
   */
  xmlSigner(organisation: string, options: XmlSignerOptions = {}): Promise<XmlSigner> {
    return this.#e.xmlSigner(organisation, options);
  }

  // --- reading ----------------------------------------------------------------------------------

  /** @throws SmkiError `ERR_KEY_NOT_FOUND` */
  key(keyId: string): Promise<KeyInfo> {
    return this.#e.key(keyId);
  }

  /** Every key (of one organisation), by id. */
  keys(organisation?: string): Promise<KeyInfo[]> {
    return this.#e.keys(organisation);
  }

  /** @throws SmkiError `ERR_ORGANISATION_NOT_FOUND` */
  organisation(entityId: string): Promise<OrganisationInfo> {
    return this.#e.organisation(entityId);
  }

  /** A portfolio and its meter count (the meters are paged by {@link KeyStore.devicesOf}). @throws SmkiError `ERR_PORTFOLIO_NOT_FOUND` */
  portfolio(organisation: string, id: string): Promise<PortfolioSummary> {
    return this.#e.portfolio(organisation, id).then(summary);
  }

  /** Every portfolio of an organisation, by id, with meter counts. */
  async portfolios(organisation: string): Promise<PortfolioSummary[]> {
    const list = await this.#e.portfolios(organisation);
    return Promise.all(list.map((p) => this.portfolio(organisation, p.id)));
  }

  /** The meters of a portfolio, in order, a page at a time. @throws SmkiError `ERR_ORGANISATION_NOT_FOUND`, `ERR_INVALID_ARGUMENT` */
  devicesOf(organisation: string, portfolioId: string, options: { readonly after?: string; readonly limit?: number } = {}): Promise<DevicePage> {
    return this.#e.devicesOf(organisation, portfolioId, options);
  }

  /** @throws SmkiError `ERR_DEVICE_UNKNOWN` */
  device(organisation: string, device: string): Promise<DeviceInfo> {
    return this.#e.device(organisation, device);
  }

  /** The meters that trust a key now, a page at a time (what its compromise would endanger). @throws SmkiError `ERR_KEY_NOT_FOUND`, `ERR_INVALID_ARGUMENT` */
  devicesTrusting(keyId: string, options: { readonly after?: string; readonly limit?: number } = {}): Promise<TrustingDevicesPage> {
    return this.#e.devicesTrusting(keyId, options);
  }

  /**
   * How many meters each key endangers, largest first (a query, not a scan): every active or
   * pending key, and every revoked or retired key that meters still trust (after a compromise,
   * its count falls to zero as its meters are re-credentialed, and then it leaves the report).
   */
  exposureReport(organisation?: string): Promise<ExposureCount[]> {
    if (organisation !== undefined) parseEui64(organisation);
    return this.#e.exposureReport(organisation);
  }

  /**
   * Read every meter's row once, so that the first signatures after a restart do not wait for rows
   * to come from the database: as many as `meterCache` allows into the meter cache, each checked
   * against its MAC; on SQLite, the rest into the page cache of the connection signing reads on,
   * up to 256 MiB (PostgreSQL keeps its own buffers). A chunk at a time, other calls running in
   * between. Optional: without it the caches fill as meters are used.
   * @returns the meters read (on PostgreSQL, at most `meterCache`)
   * @throws SmkiError `ERR_KEYSTORE_CLOSED`
   */
  prewarm(): Promise<number> {
    return this.#e.prewarm();
  }

  /** The names of the further backends this store was opened with (`backends`), for `generateKey(…, { backend })`. */
  backendNames(): readonly string[] {
    return this.#e.backendNames();
  }

  /** Backend keys no key row references (left by a transaction that never committed). */
  orphanHandles(): readonly string[] {
    return this.#e.orphanHandles();
  }

  // --- audit ------------------------------------------------------------------------------------

  /** The head of the audit trail as committed (sequence number, hash, batch). */
  auditHead(): Promise<TrailHead> {
    return this.#e.auditHead();
  }

  /** Verify the whole trail (seals, chain, numbering). */
  verifyAuditTrail(): Promise<TrailVerification> {
    return this.#e.verifyTrail();
  }

  /**
   * Verify the store as an auditor would: the trail, the trail replayed (every use with the key
   * its meter trusted then), every row against what the trail last wrote, and every kept signed
   * request and approval.
   */
  verifyStore(): Promise<StoreVerification> {
    return this.#e.verifyStore();
  }

  /**
   * The store's latest checkpoint in `anchor` checked against the trail.
   * @throws SmkiError `ERR_AUDIT_CHECKPOINT_INVALID`, `ERR_AUDIT_TRUNCATED`, `ERR_AUDIT_TAMPERED`, `ERR_AUDIT_ANCHOR_UNAVAILABLE`
   */
  checkAnchor(anchor: AuditAnchor): Promise<unknown> {
    return this.#e.checkAnchor(anchor);
  }

  // --- access control ---------------------------------------------------------------------------

  /**
   * The initialisation ceremony: the first operators (one at least an administrator of the whole
   * store) and the policy, once. From then on every change is a signed request ({@link KeyStore.execute}).
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_OPERATOR_EXISTS`, `ERR_ACCESS_POLICY_INVALID`
   */
  initialiseAccess(ceremony: { readonly operators: readonly OperatorInfo[]; readonly policy?: AccessPolicy }): Promise<void> {
    return this.#e.initialiseAccess(ceremony);
  }

  /** Whether the store is under access control (its ceremony was held). */
  accessControlled(): Promise<boolean> {
    return this.#e.accessControlled();
  }

  /** An operator (its grants, whether removed, its last accepted counter). @throws SmkiError `ERR_OPERATOR_UNKNOWN` */
  operator(operatorId: string): Promise<OperatorState> {
    return this.#e.operator(operatorId);
  }

  /** Every operator. */
  operators(): Promise<OperatorState[]> {
    return this.#e.operators();
  }

  /**
   * Run one signed operator request (and what its operation names by digest, in `payload`).
   * @returns what the operation's method returns (`session.sign`: a {@link SigningSession})
   * @throws SmkiError `ERR_OPERATOR_SIGNATURE_INVALID`, `ERR_OPERATOR_REPLAYED`, `ERR_OPERATOR_REQUEST_STALE`,
   *   `ERR_OPERATOR_FORBIDDEN`, `ERR_OPERATOR_UNKNOWN`, `ERR_APPROVAL_REQUIRED`, `ERR_PROPOSAL_QUORUM_NOT_MET`,
   *   `ERR_PROPOSAL_EXPIRED`, `ERR_OPERATION_MISMATCH`, and the operation's own codes
   */
  execute(request: unknown, payload: ExecutePayload = {}): Promise<unknown> {
    return this.#e.execute(request, payload);
  }

  /** Propose an operation the policy puts under dual control (`proposal.created`). @throws SmkiError the codes of {@link KeyStore.execute}'s verification, `ERR_INVALID_ARGUMENT` (an operation that needs no approval; a ttl out of range) */
  propose(request: unknown, options: { readonly ttlMs?: number; readonly payload?: ExecutePayload } = {}): Promise<Proposal> {
    return this.#e.propose(request, options);
  }

  /** Record one operator's signed approval of a proposal (`proposal.approved`). @throws SmkiError `ERR_PROPOSAL_NOT_FOUND`, `ERR_PROPOSAL_CLOSED`, `ERR_PROPOSAL_EXPIRED`, `ERR_APPROVAL_INVALID`, `ERR_APPROVAL_DUPLICATE` */
  approve(approval: unknown): Promise<ApprovalProgress> {
    return this.#e.approve(approval);
  }

  /** A proposal and its state (`open`, `executed`). @throws SmkiError `ERR_PROPOSAL_NOT_FOUND` */
  proposal(proposalId: string): Promise<ProposalState> {
    return this.#e.proposal(proposalId);
  }

  // --- closing ----------------------------------------------------------------------------------

  /** Wait until every use record so far is durable. */
  flush(): Promise<void> {
    return this.#e.flush();
  }

  /** Refuse new work, wait for uses under way, checkpoint to the anchor, close the database. */
  close(): Promise<void> {
    return this.#e.close();
  }
}

function summary(p: PortfolioInfo & { readonly deviceCount?: number }): PortfolioSummary {
  const { devices: _devices, ...rest } = p;
  return Object.freeze({ ...rest, deviceCount: p.deviceCount ?? 0 });
}
