// The key store over a database (SQLite or PostgreSQL): the same rules as the JSON-metadata
// store, each lifecycle change one transaction holding its rows and its audit records, every row
// authenticated, every read by key or index (no scan of the estate), uses group-committed.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createCipheriv, createDecipheriv, createHash, generateKeyPairSync, hkdfSync, randomBytes, sign as nodeSign, timingSafeEqual, type KeyObject } from 'node:crypto';
import { createPrivateKey } from 'node:crypto';
import {
  isRemotePartyRole,
  parseEui64,
  publicKeyToRaw,
  RemotePartyRole,
  SmkiError,
  toHex,
  toPublicKey,
  type Eui64,
  type KeyAgreement,
  type RemotePartyRoleCode,
  type Signer,
  type SmkiErrorCode,
} from '@smki/core';
import { certificateToPem, createCsr, toCertificate, type CertificateInput } from '@smki/pki';
import type { KeyBackend } from '../../backend.js';
import { deriveAuditKey, trailLineHash, type AuditEvent, type AuditFinding, type AuditRecord } from '../../audit.js';
import { AuditCheckpointer, checkTrailAgainstCheckpoint, verifyAuditCheckpoint, type AuditAnchor, type AuditTrailView, type SignedAuditCheckpoint } from '../../anchor.js';
import { deriveSecrets, type StoreKdf } from '../metadata.js';
import { checkPurpose, checkScryptN, DEVICE_PURPOSES, fail, MAX_REASON, optional, PORTFOLIO_ID, PURPOSE_SHORT, PURPOSE_USAGE, REQUEST_ID, useOf, XML_SIGNING_ROLE, xmlUseOf } from '../rules.js';
import type { LegacySnapshot } from '../../store.js';
import {
  approvalSignatureValid,
  assertNoApprovalsRequired,
  assertQuorum,
  assignmentListDigest,
  authorise,
  canonicalJson,
  checkOperationMatches,
  createProposal,
  DEFAULT_ACCESS_POLICY,
  deviceListDigest,
  evaluateQuorum,
  BACKEND_NAME,
  grantScopes,
  messageListDigest,
  type MessageToSign,
  OPERATION_NAMES,
  parseAccessPolicy,
  parseOperatorInfo,
  parseProposal,
  policyHash,
  requiredApprovals,
  verifyApproval,
  operatorRequestSignatureValid,
  verifyOperatorRequest,
  type AccessPolicy,
  type AccessScope,
  type Operation,
  type OperatorInfo,
  type OperatorRequest,
  type Proposal,
  type VerifiedOperatorRequest,
} from '../../access.js';
import {
  KEY_PURPOSES,
  type CredentialUpdate,
  type DeviceInfo,
  type KeyAgreementPurpose,
  type KeyHandle,
  type KeyInfo,
  type KeyPurpose,
  type KeyState,
  type OrganisationInfo,
  type PortfolioInfo,
  type UseContext,
  type XmlSigner,
  type XmlSignerOptions,
  type XmlSignUse,
} from '../../types.js';
import { SqliteDriver, type Row, type SqlDriver, type SqlReader, type SqlTx, type SqlValue } from './driver.js';
import { checkRow, COLUMNS, CURRENT_COLUMN, INSTALLED_COLUMN, PRIMARY_KEY, rowMac, upsertSql, type AuthTable } from './schema.js';
import { DbTrail, verifyTrail, type TrailEntry, type TrailHead, type TrailVerification } from './trail.js';
import { UseWorker } from './use-committer.js';
import { MeterCache, type MeterContent } from './meter-cache.js';
import { checkUses, lockMeterEpoch, type UseCheckResult } from './uses.js';
import { TrailReplay, type ReplayedDevice, type ReplayedKey, type ReplayedPortfolio } from './replay.js';

/** The format of a database store (the meta row's `format`). */
export const DB_FORMAT = 'smki-keystore-db/1';
/** Most devices one bulk assignment or move takes. */
export const MAX_BULK = 100_000;





// ---------------------------------------------------------------------------------------------
// Rows

interface OrgRow extends Row {
  entity_id: Eui64;
  role: number;
  max_devices_per_key: number | null;
}
interface PortfolioRow extends Row {
  organisation: Eui64;
  id: string;
  name: string;
  whole_estate: string;
  cur_signing: string | null;
  cur_key_agreement: string | null;
  cur_prepayment: string | null;
  cur_xml: string | null;
}
interface KeyRow extends Row {
  key_id: string;
  organisation: Eui64;
  portfolio_id: string;
  purpose: string;
  generation: number;
  state: string;
  backend: string;
  handle: string;
  public_key: string;
  certificate: string | null;
  serial_number: string | null;
  created_at: string;
  revoked_at: string | null;
}
interface DeviceRow extends Row {
  organisation: Eui64;
  device: Eui64;
  portfolio_id: string;
  inst_signing: string | null;
  inst_key_agreement: string | null;
  inst_prepayment: string | null;
}
/** What the hot path and the use batches need of a meter's row (what the meter cache keeps). */
type MeterRow = MeterContent;

/** Meters {@link DbKeyStore.prewarm} reads at a time. */
const PREWARM_CHUNK = 20_000;
/** Default most meters whose verified rows a store keeps for signing (see DbKeyStoreOptions.meterCache). */
export const DEFAULT_METER_CACHE = 2_000_000;
/** Meters' rows one change writes from which, on PostgreSQL, the meters' statistics are refreshed after it commits. */
const ANALYZE_AFTER_METERS = 10_000;
/** Most meters a change drops one by one from the meter cache on PostgreSQL (beyond it, the cache starts again empty). */
const FORGET_AFTER_CHANGE = 10_000;

/**
 * Refresh PostgreSQL's statistics of the meters' table after a write of `meters` rows, if that is
 * {@link ANALYZE_AFTER_METERS} or more. Until autovacuum gets to it (a minute or more), the planner
 * knows nothing of rows loaded in bulk: it takes the default selectivity of 0.5% per value, so a
 * use batch's lookup of a few hundred meters by key can look like most of the table and be planned
 * as a sequential scan, on every batch (measured: a third of the signatures per second at 100,000
 * meters). Called after the write committed: a failure here (e.g. a role that does not own the
 * table) leaves the statistics to autovacuum.
 */
async function analyzeMetersAfter(db: SqlDriver, meters: number): Promise<void> {
  if (meters < ANALYZE_AFTER_METERS || db.kind !== 'postgres') return;
  try {
    await db.tx((t) => t.run(`ANALYZE ${db.table('devices')}`));
  } catch {
    // Statistics only: nothing authorises on them, and the write is done.
  }
}
const current = (p: PortfolioRow, purpose: KeyPurpose): string | undefined => (p[CURRENT_COLUMN[purpose]] as string | null) ?? undefined;
const installed = (d: MeterRow, purpose: KeyPurpose): string | undefined => {
  const c = INSTALLED_COLUMN[purpose];
  return c === undefined ? undefined : (((d as unknown as Readonly<Record<string, string | null>>)[c] as string | null) ?? undefined);
};
const wholeEstateOf = (p: PortfolioRow): KeyPurpose[] => JSON.parse(p.whole_estate) as KeyPurpose[];

function keyInfoOf(k: KeyRow): KeyInfo {
  return Object.freeze({
    keyId: k.key_id,
    organisation: k.organisation as Eui64,
    portfolioId: k.portfolio_id,
    purpose: k.purpose as KeyPurpose,
    generation: k.generation,
    state: k.state as KeyState,
    backend: k.backend,
    handle: k.handle,
    publicKey: k.public_key,
    ...optional('certificate', k.certificate ?? undefined),
    ...optional('serialNumber', k.serial_number ?? undefined),
    createdAt: k.created_at,
    ...optional('revokedAt', k.revoked_at ?? undefined),
  });
}

function deviceInfoOf(d: DeviceRow): DeviceInfo {
  const inst: Partial<Record<KeyPurpose, string>> = {};
  for (const p of DEVICE_PURPOSES) {
    const k = installed(d, p);
    if (k !== undefined) inst[p] = k;
  }
  return Object.freeze({ device: d.device as Eui64, organisation: d.organisation as Eui64, portfolioId: d.portfolio_id, installed: Object.freeze(inst) });
}

function handleOf<P extends KeyPurpose>(k: KeyRow): KeyHandle<P> {
  return Object.freeze({ keyId: k.key_id, purpose: k.purpose }) as unknown as KeyHandle<P>;
}

/** A row to write in a change, with the entry (audit record) that writes it. */
interface RowWrite {
  readonly table: AuthTable;
  readonly row: Row;
}

/** What a change returns: its result, and its records with the rows each writes. */
interface Change<T> {
  readonly result: T;
  readonly entries: readonly { readonly event: AuditEvent; readonly rows: readonly RowWrite[] }[];
}

const subjectOf = (w: RowWrite): string => `${w.table}:${PRIMARY_KEY[w.table].map((c) => String(w.row[c])).join('/')}`;

// ---------------------------------------------------------------------------------------------
// Secrets

interface DbSecrets {
  readonly rowKey: Buffer;
  readonly auditMacKey: Buffer;
  readonly wrapKey: Buffer;
  readonly check: Buffer;
}

async function secretsOf(passphrase: string, kdf: StoreKdf): Promise<DbSecrets> {
  const s = await deriveSecrets(passphrase, kdf);
  const sub = (info: string): Buffer => Buffer.from(hkdfSync('sha256', s.metadataKey, Buffer.alloc(0), info, 32));
  return { rowKey: sub('smki-keystore db rows v1'), auditMacKey: Buffer.from(deriveAuditKey(s.auditSecret)), wrapKey: sub('smki-keystore db audit key v1'), check: s.check };
}

function wrapPrivateKey(key: KeyObject, wrapKey: Buffer, storeId: string): string {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', wrapKey, iv);
  c.setAAD(Buffer.from(`smki-keystore audit key\n${storeId}`));
  const ct = Buffer.concat([c.update(key.export({ type: 'pkcs8', format: 'der' })), c.final()]);
  return JSON.stringify({ iv: iv.toString('hex'), ct: ct.toString('hex'), tag: c.getAuthTag().toString('hex') });
}

function unwrapPrivateKey(text: string, wrapKey: Buffer, storeId: string): KeyObject {
  try {
    const w = JSON.parse(text) as { iv: string; ct: string; tag: string };
    const d = createDecipheriv('aes-256-gcm', wrapKey, Buffer.from(w.iv, 'hex'));
    d.setAAD(Buffer.from(`smki-keystore audit key\n${storeId}`));
    d.setAuthTag(Buffer.from(w.tag, 'hex'));
    const der = Buffer.concat([d.update(Buffer.from(w.ct, 'hex')), d.final()]);
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch {
    return fail('ERR_KEYSTORE_CORRUPT', 'the audit signing key does not decrypt');
  }
}

// ---------------------------------------------------------------------------------------------

/** Options of {@link DbKeyStore.open}. */
export interface DbKeyStoreOptions {
  /**
   * A second place the audit head is checkpointed to (a directory on another volume, or a
   * PostgreSQL table): checked on open (a trail that ends before the latest checkpoint, or has
   * another record at its seq, refuses the store), written every `anchorIntervalMs` and at close,
   * and the store refuses to change or sign anything once no checkpoint has reached it for longer
   * than twice the interval and 5 s. Not closed by the store.
   */
  readonly anchor?: AuditAnchor;
  /** How often the head is checkpointed (ms, default 1000). */
  readonly anchorIntervalMs?: number;
  /** Fault-injection hook for crash tests (points `db:*`). Never set in production. */
  readonly fault?: (point: string) => void;
  readonly driver: SqlDriver;
  readonly backend: KeyBackend;
  /** Further backends by name (see {@link BACKEND_NAME}): keys generated in one record `@name` and are used only through it. */
  readonly backends?: Readonly<Record<string, KeyBackend>>;
  readonly passphrase: string;
  readonly now?: () => Date;
  readonly scryptN?: number;
  /**
   * Most meters whose rows, read and checked against their MAC, the store keeps in memory for
   * signing (about 25 bytes each; default {@link DEFAULT_METER_CACHE}; beyond it the cache starts
   * again empty; 0 keeps none). A kept row is used only while no commit can have changed it since
   * it was read (SQLite: the writer connection's `data_version`; PostgreSQL: the meter epoch), and
   * the store's own changes drop the rows they write.
   */
  readonly meterCache?: number;
}

/** A page of credential updates and where the next one starts. */
export interface CredentialUpdatePage {
  /** The meters' updates, in EUI-64 order. */
  readonly updates: readonly CredentialUpdate[];
  /** Pass as `after` for the next page; undefined on the last page. */
  readonly next?: string;
}

/** What {@link KeyStore.execute} needs beside the signed request: what its operation names by digest, and the proposal it executes. */
export interface ExecutePayload {
  /** `device.assign`: the assignments (their digest is in the operation). */
  readonly assignments?: readonly Assignment[];
  /** `device.move`: the devices (their digest is in the operation). */
  readonly devices?: readonly string[];
  /** `key.attach`: the certificate (its SHA-256 is in the operation). */
  readonly certificate?: CertificateInput;
  /** `policy.set`: the policy (its hash is in the operation). */
  readonly policy?: AccessPolicy;
  /** `session.sign` bound to messages: the meters and the hashes of the messages (their digest is in the operation). */
  readonly messages?: readonly MessageToSign[];
  /** The proposal this request executes, when the policy puts the operation under dual control. */
  readonly proposalId?: string;
}

/** One meter to assign, and its portfolio. */
export interface Assignment {
  /** The meter's EUI-64. */
  readonly device: string;
  /** The portfolio it joins. */
  readonly portfolioId: string;
}

/** What a session may use: its operator, organisation and portfolios. */
interface SessionScope {
  readonly operatorId: string;
  readonly organisation: Eui64;
  readonly allowed: ReadonlySet<string>;
}

/**
 * A signer's session: signs, agrees keys and signs DUIS XML only with keys of its portfolios, for
 * meters of its portfolios (a whole-estate key serves every meter); every use is recorded with
 * the operator, and refused once the operator is removed.
 */
export interface SigningSession {
  /** The operator that opened it (named in every use record). */
  readonly operatorId: string;
  /** Its organisation. */
  readonly organisation: Eui64;
  /** The portfolios it signs for. */
  readonly portfolioIds: readonly string[];
  /**
   * For a session bound to messages (its `session.sign` request named `count` and
   * `messagesSha256`), how many of them it has not signed yet; undefined for an unbound session.
   */
  remaining(): number | undefined;
  /**
   * As {@link KeyStore.signFor}, refused (`ERR_OPERATOR_FORBIDDEN`) for a meter or key outside the
   * session's portfolios, and, in a bound session, for a message its request did not name or one
   * already signed.
   */
  signFor(device: string, data: Uint8Array, use?: UseContext): Promise<Uint8Array>;
  /** As {@link KeyStore.keyAgreementFor}, refused (`ERR_OPERATOR_FORBIDDEN`) for a key outside the session's portfolios or a meter outside them (but with a whole-estate key). */
  keyAgreementFor(device: string, options?: { purpose?: KeyAgreementPurpose } & UseContext): Promise<KeyAgreement>;
  /** As {@link KeyStore.xmlSigner} for the session's organisation, refused (`ERR_OPERATOR_FORBIDDEN`) for an XML signing key outside the session's portfolios. */
  xmlSigner(options?: XmlSignerOptions): Promise<XmlSigner>;
}

interface Auth {
  readonly verified: VerifiedOperatorRequest;
  /** The signed request's canonical JSON, as verified: what is kept beside the trail. */
  readonly requestJson: string;
  readonly payload: ExecutePayload;
  readonly proposalId?: string;
}

/** The verified request a change runs under (set by execute for the call it dispatches). */
const authContext = new AsyncLocalStorage<Auth>();

const sha256Upper = (text: string): string => createHash('sha256').update(text).digest('hex').toUpperCase();

/**
 * Copies of what a request's payload carries (lists, the certificate's DER, the policy), made once:
 * checked against the request's digests and then executed, never read again from the caller's objects.
 */
function snapshotPayload(p: ExecutePayload | undefined): ExecutePayload {
  if (p === undefined || p === null) return {};
  if (typeof p !== 'object') fail('ERR_INVALID_ARGUMENT', 'the payload must be an object', 'payload');
  const out: { -readonly [K in keyof ExecutePayload]: ExecutePayload[K] } = {};
  if (p.assignments !== undefined) {
    if (!Array.isArray(p.assignments)) fail('ERR_INVALID_ARGUMENT', 'assignments must be a list', 'assignments');
    out.assignments = Object.freeze(p.assignments.map((a) => Object.freeze({ device: String(a?.device), portfolioId: String(a?.portfolioId) })));
  }
  if (p.devices !== undefined) {
    if (!Array.isArray(p.devices)) fail('ERR_INVALID_ARGUMENT', 'devices must be a list', 'devices');
    out.devices = Object.freeze(p.devices.map((d) => String(d)));
  }
  if (p.certificate !== undefined) out.certificate = new Uint8Array(toCertificate(p.certificate).der);
  if (p.policy !== undefined) out.policy = parseAccessPolicy(JSON.parse(canonicalJson(p.policy)));
  if (p.messages !== undefined) {
    if (!Array.isArray(p.messages)) fail('ERR_INVALID_ARGUMENT', 'messages must be a list', 'messages');
    out.messages = Object.freeze(p.messages.map((m) => Object.freeze({ device: String(m?.device), sha256: String(m?.sha256) })));
  }
  if (p.proposalId !== undefined) out.proposalId = String(p.proposalId);
  return Object.freeze(out);
}

/** A row that does not agree with the trail. */
export interface RowFinding {
  /** `ERR_KEYSTORE_ROW_TAMPERED` (MAC, content, a row missing or made up), `ERR_KEYSTORE_METADATA_ROLLBACK` (an older authentic version), `ERR_AUDIT_TAMPERED` (a use the replay refuses). */
  readonly code: 'ERR_KEYSTORE_ROW_TAMPERED' | 'ERR_KEYSTORE_METADATA_ROLLBACK' | 'ERR_AUDIT_TAMPERED';
  /** `table:key` */
  readonly row: string;
  /** What is wrong with it. */
  readonly message: string;
}

/** How many meters trust a key now. */
export interface ExposureCount {
  /** The key. */
  readonly keyId: string;
  /** Its portfolio. */
  readonly portfolioId: string;
  /** Its purpose. */
  readonly purpose: KeyPurpose;
  /**
   * Its state. Active and pending keys are always listed; a revoked or retired key only while
   * meters still trust it (after a compromise: the meters still to re-credential).
   */
  readonly state: KeyState;
  /** Whether it serves the whole estate (then every meter of the organisation counts). */
  readonly wholeEstate: boolean;
  /** The meters that trust it now. */
  readonly deviceCount: number;
}

/**
 * The key store's rules over a database. Every method checks its arguments before anything is
 * read; every lifecycle change is one transaction with its audit records; every row read is
 * checked against its MAC before it is used.
 */
export class DbKeyStore {
  readonly #db: SqlDriver;
  readonly #backend: KeyBackend;
  readonly #backends: ReadonlyMap<string, KeyBackend>;
  readonly #now: () => Date;
  readonly #storeId: string;
  readonly #secrets: DbSecrets;
  readonly #auditPublicKey: Uint8Array;
  readonly #trail: DbTrail;
  /** The use worker, when use batches commit in a thread of their own. */
  readonly #useWorker: UseWorker | undefined;
  #orphans: readonly string[];
  readonly #fault: ((point: string) => void) | undefined;
  #checkpointer: AuditCheckpointer | undefined;
  /** The seq of the record that initialised access control, from the authenticated meta row (0: none when read). */
  #accessSeq = 0;
  readonly #auditKey: KeyObject;
  #closed = false;

  private constructor(init: { db: SqlDriver; backend: KeyBackend; backends: ReadonlyMap<string, KeyBackend>; now: () => Date; storeId: string; secrets: DbSecrets; auditKey: KeyObject; auditPublicKey: Uint8Array; orphans: readonly string[]; fault: ((point: string) => void) | undefined; meterCache: number }) {
    this.#db = init.db;
    this.#meterCacheMax = init.meterCache;
    this.#meters = new MeterCache(init.meterCache);
    this.#fault = init.fault;
    this.#auditKey = init.auditKey;
    this.#backend = init.backend;
    this.#backends = init.backends;
    this.#now = init.now;
    this.#storeId = init.storeId;
    this.#secrets = init.secrets;
    this.#auditPublicKey = init.auditPublicKey;
    this.#orphans = init.orphans;
    // Use batches commit in the use worker (a thread with its own connection) where the database
    // can be opened again; in this thread's transactions otherwise. The same checks either way.
    const spec = init.db.spec;
    const committer =
      spec === undefined
        ? undefined
        : new UseWorker({
            spec,
            storeId: init.storeId,
            rowKey: init.secrets.rowKey,
            macKey: init.secrets.auditMacKey,
            auditKey: init.auditKey,
            auditPublicKey: init.auditPublicKey,
            ...optional('fault', init.fault),
            stamp: () => this.#changes,
            onChecked: (r, stamp) => this.#applyUseChecks(r, stamp),
          });
    this.#useWorker = committer;
    this.#trail = new DbTrail(init.db, { storeId: init.storeId, macKey: init.secrets.auditMacKey, signingKey: init.auditKey, publicKey: init.auditPublicKey }, init.now, (t, uses) => this.#validateUses(t, uses), init.fault, committer);
  }

  /** The store id (bound into every row MAC and batch seal). */
  get storeId(): string {
    return this.#storeId;
  }

  /** The audit public key (65-byte point): what an auditor verifies the trail with. */
  get auditPublicKey(): Uint8Array {
    return new Uint8Array(this.#auditPublicKey);
  }

  /**
   * Open the store in `driver`'s database, or create it there.
   * @throws SmkiError `ERR_KEYSTORE_WRONG_PASSPHRASE`, `ERR_KEYSTORE_ROW_TAMPERED`, `ERR_KEYSTORE_CORRUPT`, `ERR_KEYSTORE_METADATA_ROLLBACK`
   */
  static async open(options: DbKeyStoreOptions): Promise<DbKeyStore> {
    const { driver: db, backend, passphrase } = options;
    if (typeof passphrase !== 'string' || passphrase.length === 0) fail('ERR_INVALID_ARGUMENT', 'a key store needs a passphrase');
    const backends = namedBackends(options.backends);
    checkScryptN(options.scryptN);
    const meterCache = options.meterCache ?? DEFAULT_METER_CACHE;
    if (!Number.isSafeInteger(meterCache) || meterCache < 0) fail('ERR_INVALID_ARGUMENT', 'meterCache must be a non-negative integer', 'meterCache');
    const now = options.now ?? (() => new Date());
    let meta = await db.get(`SELECT * FROM ${db.table('meta')} WHERE id = 1`);
    if (!meta) {
      await DbKeyStore.#create(db, passphrase, now, options.scryptN);
      meta = await db.get(`SELECT * FROM ${db.table('meta')} WHERE id = 1`);
      if (!meta) fail('ERR_KEYSTORE_CORRUPT', 'the store was created but its meta row cannot be read');
    }
    let kdf: StoreKdf;
    try {
      kdf = JSON.parse(String(meta['kdf'])) as StoreKdf;
    } catch {
      return fail('ERR_KEYSTORE_CORRUPT', 'the meta row has no KDF parameters');
    }
    const secrets = await secretsOf(passphrase, kdf);
    const check = Buffer.from(String(meta['check_value']), 'hex');
    if (check.length !== 32 || !timingSafeEqual(check, secrets.check)) fail('ERR_KEYSTORE_WRONG_PASSPHRASE', 'the passphrase does not open this key store');
    const storeId = String(meta['store_id']);
    checkRow(secrets.rowKey, storeId, 'meta', meta, 'the store');
    if (meta['format'] !== DB_FORMAT) fail('ERR_KEYSTORE_CORRUPT', `unknown store format ${String(meta['format'])}`);
    const auditKey = unwrapPrivateKey(String(meta['audit_private_key']), secrets.wrapKey, storeId);
    const auditPublicKey = new Uint8Array(Buffer.from(String(meta['audit_public_key']), 'hex'));
    if (toHex(publicKeyToRaw(auditKey)) !== String(meta['audit_public_key'])) fail('ERR_KEYSTORE_CORRUPT', 'the audit public key is not the private key’s');
    const store = new DbKeyStore({ db, backend, backends, now, storeId, secrets, auditKey, auditPublicKey, orphans: [], fault: options.fault, meterCache });
    // Orphans per backend: a handle no key row of that backend references. Handles are listed before
    // the rows are read, so a key another process makes meanwhile is not taken for an orphan.
    const listed: [string | undefined, string[]][] = [];
    for (const [recorded, b] of [[undefined, backend] as const, ...[...backends].map(([name, b]) => [`@${name}`, b] as const)]) listed.push([recorded, await b.listHandles()]);
    // The rows and the trail's index of what wrote them, read on one snapshot: another process
    // committing between the two reads would look like a row put back (a rollback).
    const keys = await db.snapshot((q) => store.#checkSmallTables(q));
    const orphans: string[] = [];
    for (const [recorded, handles] of listed) {
      const known = new Set(keys.filter((k) => (recorded === undefined ? !k.backend.startsWith('@') : k.backend === recorded)).map((k) => k.handle));
      for (const h of handles) if (!known.has(h)) orphans.push(recorded === undefined ? h : `${recorded}/${h}`);
    }
    store.#orphans = orphans;
    // The authenticated meta row says whether the ceremony was held: deleting the policy row (and
    // its index entry) does not lift access control.
    store.#accessSeq = Number(meta['access_seq']);
    store.#controlled = await store.accessControlled();
    if (store.#accessSeq > 0 && !store.#controlled) fail('ERR_KEYSTORE_ROW_TAMPERED', `record ${store.#accessSeq} initialised access control; the policy row is gone`, 'access:1');
    if (options.anchor !== undefined) await store.#startAnchor(options.anchor, options.anchorIntervalMs);
    return store;
  }

  static async #create(db: SqlDriver, passphrase: string, now: () => Date, scryptN: number | undefined): Promise<void> {
    const kdf: StoreKdf = { alg: 'scrypt', salt: randomBytes(16).toString('hex'), N: scryptN ?? 2 ** 15, r: 8, p: 1 };
    const secrets = await secretsOf(passphrase, kdf);
    const storeId = randomBytes(16).toString('hex');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const publicKey = toHex(publicKeyToRaw(privateKey));
    const trail = new DbTrail(db, { storeId, macKey: secrets.auditMacKey, signingKey: privateKey, publicKey: publicKeyToRaw(privateKey) }, now, async () => []);
    try {
      await db.tx(async (t) => {
        // Another process may have created it meanwhile: then this transaction does nothing.
        if (await t.get(`SELECT id FROM ${db.table('meta')} WHERE id = 1`)) return;
        await DbTrail.create(t, (n) => db.table(n));
        const [seq] = await trail.appendInTx(t, [{ event: { type: 'store.created', storeId, database: db.kind }, subjects: ['meta:1'] }]);
        const meta: Row = {
          id: 1,
          store_id: storeId,
          format: DB_FORMAT,
          kdf: JSON.stringify(kdf),
          check_value: secrets.check.toString('hex'),
          audit_public_key: publicKey,
          audit_private_key: wrapPrivateKey(privateKey, secrets.wrapKey, storeId),
          created_at: now().toISOString(),
          access_seq: 0,
          rev: seq as number,
        };
        await writeRow(t, db, secrets.rowKey, storeId, 'meta', meta);
      });
    } catch (e) {
      // Lost a race to create: the other process's store is opened.
      if (!(await db.get(`SELECT id FROM ${db.table('meta')} WHERE id = 1`))) throw e;
    }
  }

  /**
   * The `store.migrated` record of the store in `db`, if it was made by a migration: what the old
   * log's head was. `undefined` for an empty database; `null` for a store not made by a migration.
   */
  static async migrationOf(db: SqlDriver): Promise<{ fromRecords: number; fromHash: string } | null | undefined> {
    if (!(await db.get(`SELECT id FROM ${db.table('meta')} WHERE id = 1`))) return undefined;
    const r = await db.get(`SELECT line FROM ${db.table('audit_records')} WHERE seq = 2`);
    if (!r) return null;
    const o = JSON.parse(String(r['line'])) as { type?: string; fromRecords?: number; fromHash?: string };
    return o.type === 'store.migrated' && typeof o.fromRecords === 'number' && typeof o.fromHash === 'string' ? { fromRecords: o.fromRecords, fromHash: o.fromHash } : null;
  }

  /**
   * Create a store in the empty database `db` from the state of a store with JSON metadata, in one
   * transaction: the meta row (the same KDF parameters: the same passphrase opens it), the records
   * `store.created` and `store.migrated` (the old log's head), and every row, each with the
   * `store.migrated` record's seq as its `rev`.
   * @throws SmkiError `ERR_INVALID_ARGUMENT` (the database already holds a store)
   */
  static async importJson(db: SqlDriver, passphrase: string, snapshot: LegacySnapshot, now: () => Date = () => new Date()): Promise<{ storeId: string; rows: number }> {
    const { state, head, kdf } = snapshot;
    const secrets = await secretsOf(passphrase, kdf);
    const storeId = randomBytes(16).toString('hex');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const trail = new DbTrail(db, { storeId, macKey: secrets.auditMacKey, signingKey: privateKey, publicKey: publicKeyToRaw(privateKey) }, now, async () => []);
    const rows: { table: AuthTable; row: Row }[] = [];
    for (const o of Object.values(state.organisations)) rows.push({ table: 'organisations', row: { entity_id: o.entityId, role: o.role, max_devices_per_key: o.maxDevicesPerKey ?? null } });
    for (const p of Object.values(state.portfolios)) {
      const row: Row = { organisation: p.organisation, id: p.id, name: p.name, whole_estate: JSON.stringify(p.wholeEstate) };
      for (const purpose of KEY_PURPOSES) row[CURRENT_COLUMN[purpose]] = p.current[purpose] ?? null;
      rows.push({ table: 'portfolios', row });
    }
    for (const k of Object.values(state.keys)) {
      rows.push({
        table: 'keys',
        row: {
          key_id: k.keyId,
          organisation: k.organisation,
          portfolio_id: k.portfolioId,
          purpose: k.purpose,
          generation: k.generation,
          state: k.state,
          backend: k.backend,
          handle: k.handle,
          public_key: k.publicKey,
          certificate: k.certificate ?? null,
          serial_number: k.serialNumber ?? null,
          created_at: k.createdAt,
          revoked_at: k.revokedAt ?? null,
        },
      });
    }
    for (const d of Object.values(state.devices)) {
      const row: Row = { organisation: d.organisation, device: d.device, portfolio_id: d.portfolioId };
      for (const purpose of DEVICE_PURPOSES) row[INSTALLED_COLUMN[purpose] as string] = d.installed[purpose] ?? null;
      rows.push({ table: 'devices', row });
    }
    const count = rows.length;
    await db.tx(async (t) => {
      if (await t.get(`SELECT id FROM ${db.table('meta')} WHERE id = 1`)) fail('ERR_INVALID_ARGUMENT', 'the database already holds a key store: migrate into an empty one');
      await DbTrail.create(t, (n) => db.table(n));
      const [, migrated] = await trail.appendInTx(t, [
        { event: { type: 'store.created', storeId, database: db.kind }, subjects: ['meta:1'] },
        { event: { type: 'store.migrated', fromRecords: head.count, fromHash: head.lastHash, rows: count }, subjects: [] },
      ]);
      const rev = migrated as number;
      await writeRow(t, db, secrets.rowKey, storeId, 'meta', {
        id: 1,
        store_id: storeId,
        format: DB_FORMAT,
        kdf: JSON.stringify(kdf),
        check_value: secrets.check.toString('hex'),
        audit_public_key: toHex(publicKeyToRaw(privateKey)),
        audit_private_key: wrapPrivateKey(privateKey, secrets.wrapKey, storeId),
        created_at: now().toISOString(),
        access_seq: 0,
        rev: rev - 1,
      });
      for (const table of ['organisations', 'portfolios', 'keys', 'devices'] as const) {
        const cols = [...COLUMNS[table], 'mac'];
        const values: SqlValue[][] = [];
        const copies: SqlValue[][] = [];
        for (const r of rows) {
          if (r.table !== table) continue;
          const row: Row = { ...r.row, rev };
          row['mac'] = rowMac(secrets.rowKey, storeId, table, row);
          values.push(cols.map((c) => (row[c] === undefined ? null : (row[c] as SqlValue))));
          // The rows as migrated, kept unchanged: what an audit replays the trail from.
          copies.push([table, PRIMARY_KEY[table].map((c) => String(row[c])).join('/'), JSON.stringify(row)]);
        }
        if (values.length > 0) {
          await t.insertMany(db.table(table), cols, values);
          await t.insertMany(db.table('migrated_rows'), ['tbl', 'name', 'row'], copies);
        }
      }
    });
    await analyzeMetersAfter(db, Object.keys(state.devices).length);
    return { storeId, rows: count };
  }

  /**
   * The small tables (organisations, portfolios, keys) checked when the store opens: every row's
   * MAC, and its `rev` against the last record of the trail that wrote it (a row put back to an
   * older authentic version has an older `rev`).
   */
  async #checkSmallTables(q: SqlReader): Promise<KeyRow[]> {
    const db = this.#db;
    const last = async (subject: string): Promise<number> => {
      const r = await q.get(`SELECT max(seq) AS seq FROM ${db.table('audit_subjects')} WHERE subject = ?`, [subject]);
      return r && r['seq'] !== null ? Number(r['seq']) : 0;
    };
    const check = async (table: AuthTable, row: Row): Promise<void> => {
      const name = PRIMARY_KEY[table].map((c) => String(row[c])).join('/');
      checkRow(this.#secrets.rowKey, this.#storeId, table, row, name);
      const l = await last(`${table}:${name}`);
      if (l > Number(row['rev'])) {
        fail('ERR_KEYSTORE_METADATA_ROLLBACK', `the ${table} row of ${name} is older than its audit trail: record ${l} wrote it after the version found (${String(row['rev'])}); restore the metadata that goes with this trail`, `${table}:${name}`);
      }
    };
    const keys = (await q.all(`SELECT * FROM ${db.table('keys')}`)) as KeyRow[];
    for (const k of keys) await check('keys', k);
    for (const o of await q.all(`SELECT * FROM ${db.table('organisations')}`)) await check('organisations', o);
    for (const p of await q.all(`SELECT * FROM ${db.table('portfolios')}`)) await check('portfolios', p);
    // Operators too: a row put back would un-remove an operator or lower its counter (a replay).
    for (const o of await q.all(`SELECT * FROM ${db.table('operators')}`)) await check('operators', o);
    const access = await q.get(`SELECT * FROM ${db.table('access')} WHERE id = 1`);
    if (access) await check('access', access);
    else await this.#accessRow(q); // refuses when the trail initialised access control and the row is gone
    const meta = await q.get(`SELECT * FROM ${db.table('meta')} WHERE id = 1`);
    if (meta) await check('meta', meta);
    return keys;
  }

  // -------------------------------------------------------------------------------------------
  // internals

  #assertOpen(): void {
    if (this.#closed) fail('ERR_KEYSTORE_CLOSED', 'the key store is closed');
  }

  #check<R extends Row>(table: AuthTable, row: R | undefined, name: string): R | undefined {
    return row === undefined ? undefined : checkRow(this.#secrets.rowKey, this.#storeId, table, row, name);
  }

  async #org(q: SqlReader, entityId: string): Promise<OrgRow> {
    const eui = parseEui64(entityId);
    const o = this.#check('organisations', (await q.get(`SELECT * FROM ${this.#db.table('organisations')} WHERE entity_id = ?`, [eui])) as OrgRow | undefined, eui);
    if (!o) fail('ERR_ORGANISATION_NOT_FOUND', `no organisation ${eui}`, eui);
    return o;
  }

  async #orgFor(q: SqlReader, organisation: string | undefined): Promise<OrgRow> {
    if (organisation !== undefined) return this.#org(q, organisation);
    const all = (await q.all(`SELECT * FROM ${this.#db.table('organisations')} LIMIT 2`)) as OrgRow[];
    if (all.length !== 1) fail('ERR_INVALID_ARGUMENT', 'name the organisation: the store holds more than one (or none)');
    return this.#check('organisations', all[0] as OrgRow, (all[0] as OrgRow).entity_id) as OrgRow;
  }

  async #portfolio(q: SqlReader, org: string, id: string, lock = ''): Promise<PortfolioRow> {
    const p = this.#check(
      'portfolios',
      (await q.get(`SELECT * FROM ${this.#db.table('portfolios')} WHERE organisation = ? AND id = ?${lock}`, [org, String(id)])) as PortfolioRow | undefined,
      `${org}/${String(id)}`,
    );
    if (!p) fail('ERR_PORTFOLIO_NOT_FOUND', `no portfolio ${String(id)} in ${org}`, String(id));
    return p;
  }

  async #portfoliosOf(q: SqlReader, org: string, lock = ''): Promise<PortfolioRow[]> {
    const rows = (await q.all(`SELECT * FROM ${this.#db.table('portfolios')} WHERE organisation = ? ORDER BY id${lock}`, [org])) as PortfolioRow[];
    return rows.map((p) => this.#check('portfolios', p, `${org}/${p.id}`) as PortfolioRow);
  }

  async #wholeEstate(q: SqlReader, org: string, purpose: KeyPurpose): Promise<PortfolioRow | undefined> {
    const rows = (await q.all(`SELECT * FROM ${this.#db.table('portfolios')} WHERE organisation = ? AND whole_estate <> '[]'`, [org])) as PortfolioRow[];
    for (const p of rows) {
      this.#check('portfolios', p, `${org}/${p.id}`);
      if (wholeEstateOf(p).includes(purpose)) return p;
    }
    return undefined;
  }

  async #key(q: SqlReader, keyId: unknown, lock = ''): Promise<KeyRow> {
    // Only a string names a key: an array, a String object or anything with a toString names none.
    if (typeof keyId !== 'string') fail('ERR_KEY_NOT_FOUND', 'a key id is a string', typeof keyId);
    const id = keyId;
    const k = this.#check('keys', (await q.get(`SELECT * FROM ${this.#db.table('keys')} WHERE key_id = ?${lock}`, [id])) as KeyRow | undefined, id);
    if (!k) fail('ERR_KEY_NOT_FOUND', `no key ${id}`, id);
    return k;
  }

  async #device(q: SqlReader, org: string, eui: string, lock = ''): Promise<DeviceRow | undefined> {
    return this.#check('devices', (await q.get(`SELECT * FROM ${this.#db.table('devices')} WHERE organisation = ? AND device = ?${lock}`, [org, eui])) as DeviceRow | undefined, `${org}/${eui}`);
  }

  /** Devices that trust `keyId` now (by the index of installed keys). */
  async #exposureCount(q: SqlReader, k: KeyRow): Promise<number> {
    const col = INSTALLED_COLUMN[k.purpose as KeyPurpose];
    if (col === undefined) return 0;
    const r = await q.get(`SELECT count(*) AS n FROM ${this.#db.table('devices')} WHERE ${col} = ?`, [k.key_id]);
    return Number(r?.['n'] ?? 0);
  }

  async #checkCap(q: SqlReader, org: OrgRow, k: KeyRow, adding: number): Promise<void> {
    const cap = org.max_devices_per_key;
    if (cap === null) return;
    const n = (await this.#exposureCount(q, k)) + adding;
    if (!(n <= cap)) fail('ERR_PORTFOLIO_DEVICE_CAP', `key ${k.key_id} would be trusted by ${n} devices; the cap is ${String(cap)}`, k.key_id);
  }

  /**
   * Run a lifecycle change in one transaction: `change` reads (inside the transaction: the latest
   * committed state, locked where it says so) and returns its records and rows; the records are
   * appended as one sealed batch, each row gets the seq of the record that writes it as `rev` and
   * its MAC, and everything commits together.
   */
  async #change<T>(change: (t: SqlTx) => Promise<Change<T>>): Promise<T> {
    this.#assertOpen();
    this.#assertAnchored();
    const auth = authContext.getStore();
    this.#fault?.('db:before-tx');
    let meterRows = 0;
    // PostgreSQL: the meter epoch when this change locked it, and the meters it wrote.
    let epoch: number | undefined;
    let written: [string, string][] = [];
    const db = this.#db;
    const out = await db.tx(async (t) => {
      meterRows = 0;
      written = [];
      // PostgreSQL: the meter epoch is locked first, as use batches lock it first (one lock order),
      // and moved below if a meter's row is written (see POSTGRES_SCHEMA).
      // (A use batch of any process holds it for share until it commits: a change waits for those
      // under way, and batches that start meanwhile wait for the change.)
      epoch = db.kind === 'postgres' ? await lockMeterEpoch(t, (n) => db.table(n), t.forUpdate, this.#epochSeen) : undefined;
      // Under access control, only a verified operator request changes anything: its counter is
      // consumed, its role and the policy checked again, here, in the transaction of its effect.
      const before = await this.#authoriseInTx(t, auth);
      const changed = await change(t);
      const { result } = changed;
      const entries = [...before.entries, ...changed.entries, ...before.after];
      const trailEntries: TrailEntry[] = entries.map((e) => ({ event: e.event, subjects: e.rows.map(subjectOf) }));
      const seqs = await this.#trail.appendInTx(t, trailEntries);
      if (auth !== undefined && before.entries.length > 0) {
        await t.run(`INSERT INTO ${this.#db.table('signed_requests')} (seq, request) VALUES (?, ?)`, [seqs[0] as number, auth.requestJson]);
      }
      // The last write of a row wins (a row written by two records of one change gets the later rev).
      const finalRows = new Map<string, { w: RowWrite; rev: number }>();
      entries.forEach((e, i) => {
        for (const w of e.rows) finalRows.set(subjectOf(w), { w, rev: seqs[i] as number });
      });
      // Each table's rows in one multi-row statement per chunk.
      const byTable = new Map<AuthTable, SqlValue[][]>();
      for (const { w, rev } of finalRows.values()) {
        // SQLite: a meter row written here leaves the meter cache before it is written (this
        // connection's own commits leave its data_version as it was, so nothing else would tell
        // the cache). PostgreSQL: after the commit (#afterMeterChange), since reads of the pool
        // run meanwhile and could put the old row back.
        if (w.table === 'devices') {
          if (epoch === undefined) this.#forgetMeter(String(w.row['organisation']), String(w.row['device']));
          if (written.length < FORGET_AFTER_CHANGE) written.push([String(w.row['organisation']), String(w.row['device'])]);
          meterRows++;
        }
        if (w.table === 'organisations') this.#soleOrg = undefined;
        const row: Row = { ...w.row, rev };
        const values: SqlValue[] = [...COLUMNS[w.table].map((c) => (row[c] === undefined ? null : (row[c] as SqlValue))), rowMac(this.#secrets.rowKey, this.#storeId, w.table, row)];
        const list = byTable.get(w.table) ?? [];
        list.push(values);
        byTable.set(w.table, list);
      }
      for (const [table, list] of byTable) await t.upsertMany(this.#db.table(table), [...COLUMNS[table], 'mac'], PRIMARY_KEY[table], list);
      if (epoch !== undefined && meterRows > 0) {
        const moved = await t.run(`UPDATE ${db.table('meter_epoch')} SET epoch = ? WHERE id = 1`, [epoch + 1]);
        if (moved !== 1) fail('ERR_KEYSTORE_ROW_TAMPERED', 'the meter epoch row is gone', 'meter_epoch:1');
      }
      this.#fault?.('db:before-commit');
      return result;
    });
    this.#fault?.('db:after-commit');
    this.#changes++;
    this.#keyCache.clear();
    this.#estateCache.clear();
    if (epoch !== undefined && meterRows > 0) this.#afterMeterChange(epoch, meterRows, written);
    await analyzeMetersAfter(this.#db, meterRows);
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // the audit anchor

  /** The audit key as a core Signer (checkpoints are signed with it, like the batch seals). */
  #auditSigner(): Signer {
    const key = this.#auditKey;
    return { publicKey: new Uint8Array(this.#auditPublicKey), sign: async (m) => new Uint8Array(nodeSign('sha256', m, { key, dsaEncoding: 'ieee-p1363' })) };
  }

  /** What the anchor module needs of this trail: its head, and the hash of a record. */
  async #trailView(): Promise<AuditTrailView> {
    const head = await this.#trail.head();
    const db = this.#db;
    return {
      head: { seq: head.seq, hash: head.hash },
      hashAt: async (seq) => {
        const r = await db.get(`SELECT line FROM ${db.table('audit_records')} WHERE seq = ?`, [seq]);
        return r ? trailLineHash(String(r['line'])) : undefined;
      },
    };
  }

  /**
   * The trail against the anchor's latest checkpoint of this store (verified under the audit
   * public key): nothing when the anchor holds none.
   * @throws SmkiError `ERR_AUDIT_TRUNCATED`, `ERR_AUDIT_TAMPERED`, `ERR_AUDIT_CHECKPOINT_INVALID`, `ERR_AUDIT_ANCHOR_UNAVAILABLE`
   */
  async checkAnchor(anchor: AuditAnchor): Promise<SignedAuditCheckpoint | undefined> {
    const latest = await anchor.latest(this.#storeId);
    if (latest === undefined) {
      // An anchor this store has checkpointed to before cannot be empty (an unmounted volume, another directory).
      if (await this.#db.get(`SELECT seq FROM ${this.#db.table('audit_subjects')} WHERE subject = 'anchor:1' LIMIT 1`)) {
        fail('ERR_AUDIT_ANCHOR_UNAVAILABLE', `the ${anchor.kind} anchor holds no checkpoint of this store, which has checkpointed to an anchor before`, anchor.kind);
      }
      return undefined;
    }
    const checkpoint = verifyAuditCheckpoint(latest, this.#auditPublicKey, this.#storeId);
    await checkTrailAgainstCheckpoint(await this.#trailView(), checkpoint);
    return checkpoint;
  }

  /**
   * An auditor's check of the trail in `db` with the audit public key only: the seals and chain
   * ({@link verifyTrail}), and with `anchor` the trail against the anchor's latest checkpoint of
   * this store (an anchor that holds none, for a trail that says it was anchored, is a finding).
   * @throws SmkiError `ERR_KEYSTORE_CORRUPT` (no store in the database)
   */
  static async verifyTrailOf(db: SqlDriver, publicKey: Uint8Array, anchor?: AuditAnchor, onRecord?: (record: AuditRecord) => void): Promise<TrailVerification> {
    const meta = await db.get(`SELECT store_id FROM ${db.table('meta')} WHERE id = 1`);
    if (!meta) fail('ERR_KEYSTORE_CORRUPT', 'the database holds no key store');
    const storeId = String(meta['store_id']);
    let anchored = false;
    const v = await verifyTrail(db, { storeId, publicKey }, (r) => {
      if (r.type === 'audit.anchored') anchored = true;
      onRecord?.(r);
    });
    if (anchor === undefined) return v;
    const findings = [...v.findings];
    try {
      const latest = await anchor.latest(storeId);
      if (latest === undefined) {
        if (anchored) fail('ERR_AUDIT_ANCHOR_UNAVAILABLE', `the ${anchor.kind} anchor holds no checkpoint of this store, whose trail says it was anchored`, anchor.kind);
      } else {
        const checkpoint = verifyAuditCheckpoint(latest, publicKey, storeId);
        const head = await db.get(`SELECT seq, hash FROM ${db.table('audit_head')} WHERE id = 1`);
        await checkTrailAgainstCheckpoint(
          {
            head: { seq: Number(head?.['seq'] ?? 0), hash: String(head?.['hash'] ?? '') },
            hashAt: async (seq) => {
              const r = await db.get(`SELECT line FROM ${db.table('audit_records')} WHERE seq = ?`, [seq]);
              return r ? trailLineHash(String(r['line'])) : undefined;
            },
          },
          checkpoint,
        );
      }
    } catch (e) {
      if (!(e instanceof SmkiError)) throw e;
      findings.push({ code: e.code as AuditFinding['code'], message: e.message });
    }
    const ok = findings.length === 0;
    const { head: _head, ...rest } = v;
    return { ...rest, ok, ...(ok && v.head ? { head: v.head } : {}), findings };
  }

  async #startAnchor(anchor: AuditAnchor, intervalMs: number | undefined): Promise<void> {
    if ((await this.checkAnchor(anchor)) === undefined) {
      // The first time: say so in the trail, so that an empty anchor later is refused.
      await this.#db.tx(async (t) => {
        await this.#trail.appendInTx(t, [{ event: { type: 'audit.anchored', anchor: anchor.kind }, subjects: ['anchor:1'] }]);
      });
    }
    const checkpointer = new AuditCheckpointer({
      storeId: this.#storeId,
      signer: this.#auditSigner(),
      anchor,
      head: async () => {
        const h = await this.#trail.head();
        return { seq: h.seq, hash: h.hash };
      },
      ...optional('intervalMs', intervalMs),
      now: this.#now,
    });
    // The head as the store opens: an anchor that cannot take it refuses the store now.
    const first = await checkpointer.checkpointNow();
    if (first === undefined && checkpointer.lastError !== undefined) throw checkpointer.lastError;
    checkpointer.start();
    this.#checkpointer = checkpointer;
  }

  /** Fail closed when the anchor has taken no checkpoint for too long. */
  #assertAnchored(): void {
    this.#checkpointer?.assertHealthy();
  }

  // -------------------------------------------------------------------------------------------
  // access control: operators, signed requests, dual control

  async #accessRow(q: SqlReader): Promise<AccessPolicy | undefined> {
    const r = await q.get(`SELECT * FROM ${this.#db.table('access')} WHERE id = 1`);
    if (!r) {
      // Gone, or never there: the meta row (as this process read it) and the trail's index say
      // which. Deleting the row must not lift access control.
      if (this.#accessSeq > 0) fail('ERR_KEYSTORE_ROW_TAMPERED', `record ${this.#accessSeq} initialised access control; the policy row is gone`, 'access:1');
      if (await q.get(`SELECT seq FROM ${this.#db.table('audit_subjects')} WHERE subject = 'access:1' LIMIT 1`)) {
        fail('ERR_KEYSTORE_ROW_TAMPERED', 'the trail initialised access control and its policy row is gone', 'access:1');
      }
      return undefined;
    }
    checkRow(this.#secrets.rowKey, this.#storeId, 'access', r, 'the policy');
    return parseAccessPolicy(JSON.parse(String(r['policy'])));
  }

  async #operator(q: SqlReader, operatorId: string, lock = ''): Promise<{ row: Row; info: OperatorInfo; lastCounter: bigint; removed: boolean } | undefined> {
    const r = await q.get(`SELECT * FROM ${this.#db.table('operators')} WHERE operator_id = ?${lock}`, [operatorId]);
    if (!r) return undefined;
    checkRow(this.#secrets.rowKey, this.#storeId, 'operators', r, operatorId);
    const info = parseOperatorInfo({ operatorId, publicKey: new Uint8Array(Buffer.from(String(r['public_key']), 'hex')), grants: JSON.parse(String(r['grants'])) });
    return { row: r, info, lastCounter: BigInt(String(r['last_counter'])), removed: r['removed'] === 1 };
  }

  /** The operators' lookup for the access module: live operators only (a removed one signs nothing). */
  async #lookup(q: SqlReader, ids: readonly string[]): Promise<{ lookup: (id: string) => OperatorInfo | undefined; last: (id: string) => bigint | undefined }> {
    const found = new Map<string, { info: OperatorInfo; lastCounter: bigint }>();
    for (const id of ids) {
      if (typeof id !== 'string' || !/^[A-Za-z0-9._@-]{1,64}$/.test(id)) continue;
      const o = await this.#operator(q, id);
      if (o && !o.removed) found.set(id, o);
    }
    return { lookup: (id) => found.get(id)?.info, last: (id) => found.get(id)?.lastCounter };
  }

  /**
   * The scope of an operation, from the store's state: the key's portfolio, the portfolios of an
   * assignment list, a move's origins, a meter's portfolio, a removed operator's grants.
   */
  async #scopeOf(q: SqlReader, op: Operation, payload: ExecutePayload): Promise<AccessScope[]> {
    switch (op.op) {
      case 'key.csr':
      case 'key.attach':
      case 'key.rotate':
      case 'key.retire':
      case 'key.revoke': {
        const k = await this.#key(q, op.keyId);
        return [{ organisation: k.organisation, portfolioIds: [k.portfolio_id] }];
      }
      case 'device.assign':
        return [{ organisation: op.organisation, portfolioIds: [...new Set((payload.assignments ?? []).map((a) => String(a.portfolioId)))] }];
      case 'device.move': {
        const from = new Set<string>();
        const list = payload.devices ?? [];
        for (let i = 0; i < list.length; i += 500) {
          const chunk = list.slice(i, i + 500).map((d) => parseEui64(d));
          const rows = await q.all(`SELECT portfolio_id FROM ${this.#db.table('devices')} WHERE organisation = ? AND device IN (${chunk.map(() => '?').join(', ')})`, [op.organisation, ...chunk]);
          for (const r of rows) from.add(String(r['portfolio_id']));
        }
        return [{ organisation: op.organisation, portfolioIds: [...from] }];
      }
      case 'device.credentialsUpdated': {
        const d = await this.#device(q, op.organisation, op.device);
        return [{ organisation: op.organisation, portfolioIds: d ? [d.portfolio_id] : [] }];
      }
      case 'operator.remove': {
        const o = await this.#operator(q, op.operatorId);
        if (!o) fail('ERR_OPERATOR_UNKNOWN', `no operator ${op.operatorId}`, op.operatorId);
        return [...grantScopes(o.info.grants)];
      }
      default:
        return [];
    }
  }

  /** The payload a request's operation names by digest, checked against it. */
  #checkPayload(op: Operation, payload: ExecutePayload): void {
    if (op.op === 'device.assign') {
      const d = assignmentListDigest(payload.assignments ?? []);
      if (d.count !== op.count || d.listSha256 !== op.listSha256) fail('ERR_OPERATION_MISMATCH', 'the assignments are not the ones the request signed', 'assignments');
    } else if (op.op === 'device.move') {
      const d = deviceListDigest(payload.devices ?? []);
      if (d.count !== op.count || d.listSha256 !== op.listSha256) fail('ERR_OPERATION_MISMATCH', 'the devices are not the ones the request signed', 'devices');
    } else if (op.op === 'key.attach') {
      if (payload.certificate === undefined) fail('ERR_INVALID_ARGUMENT', 'key.attach needs the certificate', 'certificate');
      const der = toCertificate(payload.certificate).der;
      if (createHash('sha256').update(der).digest('hex').toUpperCase() !== op.certificateSha256) fail('ERR_OPERATION_MISMATCH', 'the certificate is not the one the request signed', 'certificate');
    } else if (op.op === 'policy.set') {
      if (payload.policy === undefined) fail('ERR_INVALID_ARGUMENT', 'policy.set needs the policy', 'policy');
      if (policyHash(parseAccessPolicy(payload.policy)) !== op.policySha256) fail('ERR_OPERATION_MISMATCH', 'the policy is not the one the request signed', 'policy');
    } else if (op.op === 'session.sign') {
      if ((op.count === undefined) !== (op.messagesSha256 === undefined)) fail('ERR_INVALID_ARGUMENT', 'a bound session.sign names both count and messagesSha256', 'messagesSha256');
      if (op.messagesSha256 !== undefined) {
        const d = messageListDigest(payload.messages ?? []);
        if (d.count !== op.count || d.listSha256 !== op.messagesSha256) fail('ERR_OPERATION_MISMATCH', 'the messages are not the ones the request signed', 'messages');
      } else if (payload.messages !== undefined) {
        fail('ERR_INVALID_ARGUMENT', 'messages are given, but the request does not bind the session to them (count, messagesSha256)', 'messages');
      }
    }
  }

  /** Verify a request against the store as it is now (no lock): signature, window, counter, role. */
  async #verify(q: SqlReader, request: unknown, given: ExecutePayload): Promise<Auth> {
    // Copies, taken before anything is checked: what is verified is what is executed and kept,
    // whatever the caller does with its objects meanwhile.
    const payload = snapshotPayload(given);
    let requestJson: string;
    try {
      requestJson = canonicalJson(request);
    } catch {
      return fail('ERR_OPERATOR_SIGNATURE_INVALID', 'the operator request is not a signed request (not canonical JSON)');
    }
    const copy = JSON.parse(requestJson) as unknown;
    const claimed = typeof copy === 'object' && copy !== null ? (copy as { operatorId?: unknown }).operatorId : undefined;
    const { lookup, last } = await this.#lookup(q, typeof claimed === 'string' ? [claimed] : []);
    const verified = verifyOperatorRequest(copy, { storeId: this.#storeId, lookup, lastCounter: last, now: this.#now() });
    this.#checkPayload(verified.operation, payload);
    authorise(lookup(verified.operatorId) as OperatorInfo, verified.operation, await this.#scopeOf(q, verified.operation, payload));
    return { verified, requestJson, payload, ...optional('proposalId', payload.proposalId) };
  }

  /** Before a request is dispatched: its approvals (so that a refusal makes no backend key, as a key generation would). */
  async #preflight(auth: Auth): Promise<void> {
    const policy = await this.#accessRow(this.#db);
    if (policy !== undefined) await this.#approvalsMet(this.#db, policy, auth);
  }

  /**
   * Inside a change's transaction: nothing when the store has no access control and the call
   * carries no request; otherwise the request checked again with the operator's row locked (not
   * removed, counter above the last, role for the scope), the policy's approvals required, or the
   * proposal's quorum met (each approval verified again), and the records: `operator.authorised`
   * before the change, `proposal.executed` after it.
   */
  async #authoriseInTx(t: SqlTx, auth: Auth | undefined): Promise<{ entries: { event: AuditEvent; rows: RowWrite[] }[]; after: { event: AuditEvent; rows: RowWrite[] }[] }> {
    const policy = await this.#accessRow(t);
    if (policy === undefined && auth === undefined) return { entries: [], after: [] };
    if (auth === undefined) fail('ERR_OPERATOR_REQUIRED', 'this store is under access control: send the change as a signed operator request (execute)');
    if (policy === undefined) fail('ERR_OPERATOR_UNKNOWN', 'this store has no operators: its access control is not initialised');
    const { verified } = auth;
    const op = await this.#operator(t, verified.operatorId, t.forUpdate);
    if (!op || op.removed) fail('ERR_OPERATOR_UNKNOWN', `no operator ${verified.operatorId}`, verified.operatorId);
    if (verified.counter <= op.lastCounter) fail('ERR_OPERATOR_REPLAYED', `operator ${verified.operatorId}'s counter ${verified.counter} is not above ${op.lastCounter}`, verified.operatorId);
    authorise(op.info, verified.operation, await this.#scopeOf(t, verified.operation, auth.payload));
    const after: { event: AuditEvent; rows: RowWrite[] }[] = [];
    const executed = await this.#approvalsMet(t, policy, auth, t.forUpdate);
    if (executed !== undefined) {
      after.push({
        event: { type: 'proposal.executed', proposalId: executed.proposalId, approvals: executed.approvals },
        rows: [{ table: 'proposals', row: { ...executed.row, state: 'executed' } }],
      });
    }
    const entry = {
      event: {
        type: 'operator.authorised',
        operatorId: verified.operatorId,
        counter: verified.counter,
        operation: verified.operation.op,
        operationHash: verified.operationHash,
        requestSha256: sha256Upper(auth.requestJson),
        ...optional('proposalId', auth.proposalId),
      } as AuditEvent,
      rows: [{ table: 'operators' as const, row: { ...op.row, last_counter: String(verified.counter) } }],
    };
    return { entries: [entry], after };
  }

  /**
   * The policy's approvals for a request: none required, or its proposal open, for this very
   * operation, and its quorum met (each approval verified). Run before anything is done (so that a
   * refused request makes no backend key) and again in the change's transaction, locked.
   * @returns the proposal's row and approval count, when the request executes a proposal
   */
  async #approvalsMet(q: SqlReader, policy: AccessPolicy, auth: Auth, lock = ''): Promise<{ proposalId: string; row: Row; approvals: number } | undefined> {
    const { verified } = auth;
    if (auth.proposalId === undefined) {
      if (requiredApprovals(policy, verified.operation) > 0) assertNoApprovalsRequired(policy, verified.operation);
      return undefined;
    }
    const pr = await q.get(`SELECT * FROM ${this.#db.table('proposals')} WHERE proposal_id = ?${lock}`, [auth.proposalId]);
    if (!pr) fail('ERR_PROPOSAL_NOT_FOUND', `no proposal ${auth.proposalId}`, auth.proposalId);
    checkRow(this.#secrets.rowKey, this.#storeId, 'proposals', pr, auth.proposalId);
    if (pr['state'] !== 'open') fail('ERR_PROPOSAL_CLOSED', `proposal ${auth.proposalId} is ${String(pr['state'])}`, auth.proposalId);
    const proposal = parseProposal(JSON.parse(String(pr['proposal'])));
    checkOperationMatches(proposal, verified.operation);
    const approvals = (await q.all(`SELECT approval FROM ${this.#db.table('approvals')} WHERE proposal_id = ?`, [auth.proposalId])).map((r) => JSON.parse(String(r['approval'])) as unknown);
    const approverIds = approvals.map((a) => String((a as { approverId?: unknown }).approverId));
    const { lookup } = await this.#lookup(q, approverIds);
    const scope = await this.#scopeOf(q, verified.operation, auth.payload);
    const quorum = assertQuorum({ proposal, approvals, lookup, scope, policy, now: this.#now() });
    return { proposalId: auth.proposalId, row: pr, approvals: quorum.approvers.length };
  }

  /** Record a refused request (its own transaction; a failure to record does not hide the refusal). */
  async #refused(request: unknown, e: unknown): Promise<void> {
    const code = e instanceof SmkiError ? e.code : 'ERR_INTERNAL';
    const r = (typeof request === 'object' && request !== null ? request : {}) as { operatorId?: unknown; operation?: { op?: unknown } };
    const id = /^[A-Za-z0-9._@-]{1,64}$/;
    const event = {
      type: 'operator.refused',
      code,
      ...(typeof r.operatorId === 'string' && id.test(r.operatorId) ? { operatorId: r.operatorId } : {}),
      ...(typeof r.operation?.op === 'string' && (OPERATION_NAMES as readonly string[]).includes(r.operation.op) ? { operation: r.operation.op } : {}),
    } as AuditEvent;
    try {
      await this.#db.tx(async (t) => {
        await this.#trail.appendInTx(t, [{ event, subjects: [] }]);
      });
    } catch {
      // The refusal stands.
    }
  }

  /**
   * The initialisation ceremony: the store's first operators and its access policy, once. From
   * then on every change is a signed operator request ({@link DbKeyStore.execute}), and adding or
   * removing an operator is one too.
   * @throws SmkiError `ERR_INVALID_ARGUMENT` (already initialised; no operators; an operator twice), `ERR_ACCESS_POLICY_INVALID`
   */
  async initialiseAccess(ceremony: { readonly operators: readonly OperatorInfo[]; readonly policy?: AccessPolicy }): Promise<void> {
    this.#assertOpen();
    this.#assertAnchored();
    const operators = (Array.isArray(ceremony?.operators) ? ceremony.operators : []).map((o) => parseOperatorInfo(o));
    if (operators.length === 0) fail('ERR_INVALID_ARGUMENT', 'the ceremony needs at least one operator');
    if (new Set(operators.map((o) => o.operatorId)).size !== operators.length) fail('ERR_INVALID_ARGUMENT', 'an operator is named twice');
    if (!operators.some((o) => o.grants.some((g) => g.role === 'administrator' && g.organisation === '*'))) {
      fail('ERR_INVALID_ARGUMENT', 'the ceremony needs an administrator of the whole store (to manage operators and the policy afterwards)');
    }
    const policy = parseAccessPolicy(ceremony.policy ?? DEFAULT_ACCESS_POLICY);
    let accessSeq = 0;
    await this.#db.tx(async (t) => {
      if (await this.#accessRow(t)) fail('ERR_INVALID_ARGUMENT', 'access control is already initialised: add operators by signed request');
      const entries: { event: AuditEvent; rows: RowWrite[] }[] = [
        { event: { type: 'access.initialised', operators: operators.length, policySha256: policyHash(policy) }, rows: [{ table: 'access', row: { id: 1, policy: canonicalJson(policy) } }] },
        ...operators.map((o) => this.#operatorAdded(o)),
      ];
      const seqs = await this.#trail.appendInTx(t, entries.map((e) => ({ event: e.event, subjects: [...e.rows.map(subjectOf), ...(e.event.type === 'access.initialised' ? ['meta:1'] : [])] })));
      for (const [i, e] of entries.entries()) for (const w of e.rows) await writeRow(t, this.#db, this.#secrets.rowKey, this.#storeId, w.table, { ...w.row, rev: seqs[i] as number });
      // The meta row, authenticated, remembers the ceremony.
      const meta = checkRow(this.#secrets.rowKey, this.#storeId, 'meta', (await t.get(`SELECT * FROM ${this.#db.table('meta')} WHERE id = 1${t.forUpdate}`)) as Row, 'the store');
      await writeRow(t, this.#db, this.#secrets.rowKey, this.#storeId, 'meta', { ...meta, access_seq: seqs[0] as number, rev: seqs[0] as number });
      accessSeq = seqs[0] as number;
    });
    this.#accessSeq = accessSeq;
    this.#controlled = true;
  }

  #operatorAdded(o: OperatorInfo): { event: AuditEvent; rows: RowWrite[] } {
    const publicKey = toHex(o.publicKey);
    const grants = canonicalJson(o.grants);
    return {
      event: { type: 'operator.added', operatorId: o.operatorId, publicKey, grantsSha256: sha256Upper(grants) },
      rows: [{ table: 'operators', row: { operator_id: o.operatorId, public_key: publicKey, grants, last_counter: '0', removed: 0 } }],
    };
  }

  /** Whether the store is under access control (its ceremony ran). */
  async accessControlled(): Promise<boolean> {
    return (await this.#accessRow(this.#db)) !== undefined;
  }

  /** An operator as the store holds it. @throws SmkiError `ERR_OPERATOR_UNKNOWN` */
  async operator(operatorId: string): Promise<OperatorInfo & { readonly removed: boolean; readonly lastCounter: bigint }> {
    const o = await this.#operator(this.#db, String(operatorId));
    if (!o) fail('ERR_OPERATOR_UNKNOWN', `no operator ${String(operatorId)}`, String(operatorId));
    return Object.freeze({ ...o.info, removed: o.removed, lastCounter: o.lastCounter });
  }

  /** Every operator, by id. */
  async operators(): Promise<(OperatorInfo & { readonly removed: boolean; readonly lastCounter: bigint })[]> {
    const rows = await this.#db.all(`SELECT operator_id FROM ${this.#db.table('operators')} ORDER BY operator_id`);
    return Promise.all(rows.map((r) => this.operator(String(r['operator_id']))));
  }

  /**
   * Execute a signed operator request: verified (signature under the operator's key, its window,
   * its counter above the last accepted), authorised (the operator's role for the organisation and
   * portfolios the operation touches), checked against the policy (an operation that needs
   * approvals runs only as `proposalId`'s execution, when its quorum is met), and executed in one
   * transaction with its records. A refusal is audited (`operator.refused`) and changes nothing.
   * `payload` carries what the operation names by digest (assignments, devices, certificate,
   * policy) and the proposal executed.
   * @returns what the operation's method returns (`session.sign`: a signing session)
   * @throws SmkiError `ERR_OPERATOR_REQUIRED`, `ERR_OPERATOR_SIGNATURE_INVALID`, `ERR_OPERATOR_UNKNOWN`,
   *   `ERR_OPERATOR_REQUEST_STALE`, `ERR_OPERATOR_REPLAYED`, `ERR_OPERATOR_FORBIDDEN`, `ERR_APPROVAL_REQUIRED`,
   *   `ERR_OPERATION_MISMATCH`, `ERR_PROPOSAL_NOT_FOUND`, `ERR_PROPOSAL_CLOSED`, `ERR_PROPOSAL_EXPIRED`,
   *   `ERR_PROPOSAL_QUORUM_NOT_MET`, `ERR_APPROVAL_INVALID`, `ERR_APPROVAL_DUPLICATE`, and the operation's own codes
   */
  async execute(request: unknown, payload: ExecutePayload = {}): Promise<unknown> {
    this.#assertOpen();
    let auth: Auth;
    try {
      auth = await this.#verify(this.#db, request, payload ?? {});
    } catch (e) {
      await this.#refused(request, e);
      throw e;
    }
    try {
      await this.#preflight(auth);
      return await authContext.run(auth, () => this.#dispatch(auth.verified.operation, auth.payload, auth.verified.operatorId));
    } catch (e) {
      await this.#refused(request, e);
      throw e;
    }
  }

  async #dispatch(op: Operation, payload: ExecutePayload, operatorId: string): Promise<unknown> {
    switch (op.op) {
      case 'organisation.add':
        return this.addOrganisation({ entityId: op.entityId, role: op.role, ...optional('maxDevicesPerKey', op.maxDevicesPerKey) });
      case 'portfolio.create':
        return this.createPortfolio(op.organisation, { id: op.portfolioId, ...optional('name', op.name), ...optional('wholeEstate', op.wholeEstate) });
      case 'key.generate':
        return this.generateKey(op.organisation, op.portfolioId, op.purpose, optional('backend', op.backend));
      case 'key.csr':
        return this.createCsr(op.keyId);
      case 'key.attach':
        return this.attachCertificate(op.keyId, payload.certificate as CertificateInput);
      case 'key.rotate':
        return this.rotate(op.keyId);
      case 'key.retire':
        return this.retire(op.keyId);
      case 'key.revoke':
        return this.revoke(op.keyId, op.reason);
      case 'device.assign':
        return this.assignDevices(op.organisation, payload.assignments ?? []);
      case 'device.move':
        return this.moveDevices(op.organisation, payload.devices ?? [], op.toPortfolioId);
      case 'device.credentialsUpdated':
        return this.markCredentialsUpdated(op.organisation, op.device, op.purpose);
      case 'operator.add':
        return this.#change(async (t) => {
          if (await this.#operator(t, op.operatorId)) fail('ERR_OPERATOR_EXISTS', `operator ${op.operatorId} exists`, op.operatorId);
          const info = parseOperatorInfo({ operatorId: op.operatorId, publicKey: new Uint8Array(Buffer.from(op.publicKey, 'hex')), grants: op.grants });
          return { result: undefined, entries: [this.#operatorAdded(info)] };
        });
      case 'operator.remove':
        return this.#change(async (t) => {
          const o = await this.#operator(t, op.operatorId, t.forUpdate);
          if (!o || o.removed) fail('ERR_OPERATOR_UNKNOWN', `no operator ${op.operatorId}`, op.operatorId);
          if (op.operatorId === operatorId) fail('ERR_OPERATOR_FORBIDDEN', 'an operator does not remove itself', op.operatorId);
          return { result: undefined, entries: [{ event: { type: 'operator.removed', operatorId: op.operatorId }, rows: [{ table: 'operators', row: { ...o.row, removed: 1 } }] }] };
        });
      case 'policy.set': {
        const policy = parseAccessPolicy(payload.policy);
        return this.#change(async () => ({ result: undefined, entries: [{ event: { type: 'policy.set', policySha256: policyHash(policy) }, rows: [{ table: 'access', row: { id: 1, policy: canonicalJson(policy) } }] }] }));
      }
      case 'session.sign': {
        await this.#change(async () => ({ result: undefined, entries: [] }));
        const bound = op.messagesSha256 === undefined ? undefined : new Set((payload.messages ?? []).map((m) => messageKey(m.device, m.sha256)));
        return this.#session(operatorId, op.organisation, op.portfolioIds, bound);
      }
      case 'session.audit':
        await this.#change(async () => ({ result: undefined, entries: [] }));
        return undefined;
    }
  }

  /**
   * Propose an operation the policy puts under dual control: the proposer's signed request (its
   * operation is the one proposed; verified and authorised like any request, its counter consumed)
   * opens a proposal that expires after `ttlMs` (default one day).
   * @throws SmkiError the codes of {@link DbKeyStore.execute}'s verification, `ERR_INVALID_ARGUMENT` (an operation that needs no approval; a ttl out of range)
   */
  async propose(request: unknown, options: { readonly ttlMs?: number; readonly payload?: ExecutePayload } = {}): Promise<Proposal> {
    this.#assertOpen();
    this.#assertAnchored();
    const ttl = options.ttlMs ?? 24 * 3600 * 1000;
    if (!Number.isSafeInteger(ttl) || ttl < 1000) fail('ERR_INVALID_ARGUMENT', 'ttlMs must be at least 1000', 'ttlMs');
    let auth: Auth;
    try {
      auth = await this.#verify(this.#db, request, options.payload ?? {});
    } catch (e) {
      await this.#refused(request, e);
      throw e;
    }
    const { verified } = auth;
    const now = this.#now();
    const proposal = createProposal({ storeId: this.#storeId, proposer: verified.operatorId, operation: verified.operation, createdAt: now, expiresAt: new Date(now.getTime() + ttl) });
    try {
      await this.#db.tx(async (t) => {
        const policy = await this.#accessRow(t);
        if (!policy) fail('ERR_OPERATOR_UNKNOWN', 'this store has no operators');
        if (requiredApprovals(policy, verified.operation) === 0) fail('ERR_INVALID_ARGUMENT', `${verified.operation.op} needs no approval under the policy: execute it`, verified.operation.op);
        const op = await this.#operator(t, verified.operatorId, t.forUpdate);
        if (!op || op.removed) fail('ERR_OPERATOR_UNKNOWN', `no operator ${verified.operatorId}`, verified.operatorId);
        if (verified.counter <= op.lastCounter) fail('ERR_OPERATOR_REPLAYED', `operator ${verified.operatorId}'s counter is not above ${op.lastCounter}`, verified.operatorId);
        const requestJson = auth.requestJson;
        const entries = [
          {
            event: { type: 'proposal.created', proposalId: proposal.proposalId, proposer: proposal.proposer, operation: verified.operation.op, operationHash: proposal.operationHash, expiresAt: proposal.expiresAt, requestSha256: sha256Upper(requestJson) } as AuditEvent,
            rows: [
              { table: 'operators' as const, row: { ...op.row, last_counter: String(verified.counter) } },
              { table: 'proposals' as const, row: { proposal_id: proposal.proposalId, proposal: canonicalJson(proposal), state: 'open' } },
            ],
          },
        ];
        const seqs = await this.#trail.appendInTx(t, entries.map((e) => ({ event: e.event, subjects: e.rows.map(subjectOf) })));
        await t.run(`INSERT INTO ${this.#db.table('signed_requests')} (seq, request) VALUES (?, ?)`, [seqs[0] as number, requestJson]);
        for (const w of entries[0]!.rows) await writeRow(t, this.#db, this.#secrets.rowKey, this.#storeId, w.table, { ...w.row, rev: seqs[0] as number });
      });
    } catch (e) {
      await this.#refused(request, e);
      throw e;
    }
    return proposal;
  }

  /**
   * Record an operator's signed approval of an open proposal: verified (signature, store, proposal,
   * operation hash, expiry, not the proposer, the approver's role for the operation's scope) and
   * kept with a `proposal.approved` record; one per approver.
   * @returns where the proposal stands
   * @throws SmkiError `ERR_PROPOSAL_NOT_FOUND`, `ERR_PROPOSAL_CLOSED`, `ERR_PROPOSAL_EXPIRED`, `ERR_APPROVAL_INVALID`, `ERR_APPROVAL_DUPLICATE`
   */
  async approve(approval: unknown): Promise<{ readonly required: number; readonly approvers: readonly string[]; readonly met: boolean }> {
    this.#assertOpen();
    this.#assertAnchored();
    const proposalId = typeof approval === 'object' && approval !== null ? String((approval as { proposalId?: unknown }).proposalId) : '';
    try {
      return await this.#db.tx(async (t) => {
        const policy = await this.#accessRow(t);
        if (!policy) fail('ERR_OPERATOR_UNKNOWN', 'this store has no operators');
        const pr = await t.get(`SELECT * FROM ${this.#db.table('proposals')} WHERE proposal_id = ?${t.forUpdate}`, [proposalId]);
        if (!pr) fail('ERR_PROPOSAL_NOT_FOUND', `no proposal ${proposalId.slice(0, 64)}`, proposalId.slice(0, 64));
        checkRow(this.#secrets.rowKey, this.#storeId, 'proposals', pr, proposalId);
        if (pr['state'] !== 'open') fail('ERR_PROPOSAL_CLOSED', `proposal ${proposalId} is ${String(pr['state'])}`, proposalId);
        const proposal = parseProposal(JSON.parse(String(pr['proposal'])));
        const approverId = String((approval as { approverId?: unknown }).approverId);
        const { lookup } = await this.#lookup(t, [approverId]);
        const scope = await this.#scopeOf(t, proposal.operation, {});
        const v = verifyApproval(approval, { proposal, lookup, scope, now: this.#now() });
        if (await t.get(`SELECT approver_id FROM ${this.#db.table('approvals')} WHERE proposal_id = ? AND approver_id = ?`, [proposalId, v.approverId])) {
          fail('ERR_APPROVAL_DUPLICATE', `operator ${v.approverId} already approved ${proposalId}`, v.approverId);
        }
        const json = canonicalJson(approval);
        await t.run(`INSERT INTO ${this.#db.table('approvals')} (proposal_id, approver_id, approval) VALUES (?, ?, ?)`, [proposalId, v.approverId, json]);
        await this.#trail.appendInTx(t, [{ event: { type: 'proposal.approved', proposalId, approverId: v.approverId, approvalSha256: sha256Upper(json) }, subjects: [] }]);
        const all = (await t.all(`SELECT approval FROM ${this.#db.table('approvals')} WHERE proposal_id = ?`, [proposalId])).map((r) => JSON.parse(String(r['approval'])) as unknown);
        const ids = all.map((a) => String((a as { approverId?: unknown }).approverId));
        const l2 = await this.#lookup(t, ids);
        return evaluateQuorum({ proposal, approvals: all, lookup: l2.lookup, scope, policy, now: this.#now() });
      });
    } catch (e) {
      await this.#refused({ operatorId: (approval as { approverId?: unknown })?.approverId }, e);
      throw e;
    }
  }

  /** A proposal as the store holds it, with its state. @throws SmkiError `ERR_PROPOSAL_NOT_FOUND` */
  async proposal(proposalId: string): Promise<Proposal & { readonly state: string }> {
    const pr = await this.#db.get(`SELECT * FROM ${this.#db.table('proposals')} WHERE proposal_id = ?`, [String(proposalId)]);
    if (!pr) fail('ERR_PROPOSAL_NOT_FOUND', `no proposal ${String(proposalId).slice(0, 64)}`, String(proposalId).slice(0, 64));
    checkRow(this.#secrets.rowKey, this.#storeId, 'proposals', pr, String(proposalId));
    return Object.freeze({ ...parseProposal(JSON.parse(String(pr['proposal']))), state: String(pr['state']) });
  }

  /**
   * A signing session: signs only for meters of `portfolioIds` of `organisation`, each use recorded
   * with the operator. Bound to messages (`bound`: `EUI-64 SHA-256` of each), it signs exactly
   * those, each once, and neither agrees keys nor signs XML.
   */
  #session(operatorId: string, organisation: Eui64, portfolioIds: readonly string[], bound?: Set<string>): SigningSession {
    const scope: SessionScope = { operatorId, organisation, allowed: new Set(portfolioIds) };
    const allowed = scope.allowed;
    const unbound = (what: string): void => {
      if (bound !== undefined) fail('ERR_OPERATOR_FORBIDDEN', `operator ${operatorId}'s session is bound to the messages its request named: it does not ${what}`, operatorId);
    };
    return Object.freeze({
      operatorId,
      organisation,
      portfolioIds: Object.freeze([...portfolioIds]),
      remaining: () => bound?.size,
      signFor: async (device: string, data: Uint8Array, use: UseContext = {}): Promise<Uint8Array> => {
        this.#assertOpen();
        this.#assertAnchored();
        const fields = useOf(use);
        if (!(data instanceof Uint8Array)) fail('ERR_INVALID_ARGUMENT', 'data must be a Uint8Array');
        let claimed: string | undefined;
        if (bound !== undefined) {
          // Claimed before anything awaits, so that two concurrent calls cannot both use it.
          claimed = messageKey(device, createHash('sha256').update(data).digest('hex'));
          if (!bound.delete(claimed)) fail('ERR_OPERATOR_FORBIDDEN', `operator ${operatorId}'s session may not sign this message for ${String(device)}: it is not among the messages its request named, or was signed already`, operatorId);
        }
        try {
          const { key, dev, eui } = await this.#resolve(organisation, device, 'signing');
          if (!allowed.has(dev.portfolio_id) || !allowed.has(key.portfolio_id)) {
            fail('ERR_OPERATOR_FORBIDDEN', `operator ${operatorId} signs for ${[...allowed].join(', ')}; device ${device} is in ${dev.portfolio_id} and trusts a key of ${key.portfolio_id}`, operatorId);
          }
          const signature = await this.#backendFor(key).sign(key.handle, data);
          await this.#trail.recordUse({ ...useEvent('sign', key, eui, fields), operatorId } as AuditEvent & { keyId: string });
          return signature;
        } catch (e) {
          // Nothing left the store: the message may be signed again.
          if (claimed !== undefined) bound?.add(claimed);
          throw e;
        }
      },
      keyAgreementFor: async (device: string, options: { purpose?: KeyAgreementPurpose } & UseContext = {}): Promise<KeyAgreement> => {
        this.#assertOpen();
        this.#assertAnchored();
        unbound('agree keys');
        if (typeof options !== 'object' || options === null) fail('ERR_INVALID_ARGUMENT', 'the use context must be an object', 'use');
        return this.#keyAgreement(device, { ...options, organisation }, scope);
      },
      xmlSigner: async (options: XmlSignerOptions = {}): Promise<XmlSigner> => {
        this.#assertOpen();
        this.#assertAnchored();
        unbound('sign DUIS XML');
        return this.#xmlSigner(organisation, options, scope);
      },
    });
  }

  // -------------------------------------------------------------------------------------------
  // organisations and portfolios

  /** @throws SmkiError `ERR_ORGANISATION_EXISTS`, `ERR_EUI64_INVALID`, `ERR_ROLE_UNKNOWN`, `ERR_INVALID_ARGUMENT` */
  async addOrganisation(options: { entityId: string; role: number; maxDevicesPerKey?: number }): Promise<OrganisationInfo> {
    const entityId = parseEui64(options.entityId);
    if (!isRemotePartyRole(options.role)) throw new SmkiError('ERR_ROLE_UNKNOWN', `unknown Remote Party Role ${String(options.role)}`, { role: String(options.role) });
    const cap = options.maxDevicesPerKey;
    if (cap !== undefined && (!Number.isSafeInteger(cap) || cap < 1)) fail('ERR_INVALID_ARGUMENT', 'maxDevicesPerKey must be a positive integer');
    const role = options.role;
    return this.#change(async (t) => {
      if (await t.get(`SELECT entity_id FROM ${this.#db.table('organisations')} WHERE entity_id = ?`, [entityId])) fail('ERR_ORGANISATION_EXISTS', `organisation ${entityId} exists`, entityId);
      const row: Row = { entity_id: entityId, role, max_devices_per_key: cap ?? null };
      return {
        result: Object.freeze({ entityId, role, ...optional('maxDevicesPerKey', cap) }),
        entries: [{ event: { type: 'organisation.created', entityId, role }, rows: [{ table: 'organisations', row }] }],
      };
    });
  }

  /** @throws SmkiError `ERR_ORGANISATION_NOT_FOUND`, `ERR_PORTFOLIO_EXISTS`, `ERR_INVALID_ARGUMENT`, `ERR_PORTFOLIO_WHOLE_ESTATE_CONFLICT` */
  async createPortfolio(organisation: string, options: { id: string; name?: string; wholeEstate?: readonly KeyPurpose[] }): Promise<PortfolioInfo> {
    if (typeof options?.id !== 'string' || !PORTFOLIO_ID.test(options.id)) fail('ERR_INVALID_ARGUMENT', 'portfolio id must be 1–64 of A–Z a–z 0–9 _ -');
    const wholeEstate = [...new Set((options.wholeEstate ?? []).map(checkPurpose))];
    for (const p of wholeEstate) if (!DEVICE_PURPOSES.includes(p)) fail('ERR_INVALID_ARGUMENT', `${p} keys serve no device: a portfolio cannot serve the whole estate with one`, p);
    const name = options.name ?? options.id;
    if (typeof name !== 'string' || name.length > 128 || /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(name)) fail('ERR_INVALID_ARGUMENT', 'a portfolio name is at most 128 characters without control characters');
    return this.#change(async (t) => {
      const org = await this.#org(t, organisation);
      if (await t.get(`SELECT id FROM ${this.#db.table('portfolios')} WHERE organisation = ? AND id = ?`, [org.entity_id, options.id])) fail('ERR_PORTFOLIO_EXISTS', `portfolio ${options.id} exists`, options.id);
      for (const p of wholeEstate) {
        const other = await this.#wholeEstate(t, org.entity_id, p);
        if (other) fail('ERR_INVALID_ARGUMENT', `portfolio ${other.id} already serves the whole estate for ${p}`);
        const col = INSTALLED_COLUMN[p] as string;
        const r = await t.get(`SELECT count(*) AS n FROM ${this.#db.table('devices')} WHERE organisation = ? AND ${col} IS NOT NULL`, [org.entity_id]);
        const trusting = Number(r?.['n'] ?? 0);
        if (trusting > 0) fail('ERR_PORTFOLIO_WHOLE_ESTATE_CONFLICT', `${trusting} device(s) record an installed ${p} key: a whole-estate ${p} key would override the keys they trust`, options.id);
      }
      const row: PortfolioRow = { organisation: org.entity_id, id: options.id, name, whole_estate: JSON.stringify(wholeEstate), cur_signing: null, cur_key_agreement: null, cur_prepayment: null, cur_xml: null };
      return {
        result: portfolioInfoOf(row, []),
        entries: [{ event: { type: 'portfolio.created', organisation: org.entity_id, portfolioId: options.id, name, wholeEstate }, rows: [{ table: 'portfolios', row }] }],
      };
    });
  }

  // -------------------------------------------------------------------------------------------
  // keys

  /**
   * Generate a key in the backend (outside any transaction: it creates a key nobody uses yet),
   * then record it. If the record never commits, the backend key is an orphan.
   * `options.backend` names one of the store's further backends (default: the store's backend).
   * @throws SmkiError `ERR_ORGANISATION_NOT_FOUND`, `ERR_PORTFOLIO_NOT_FOUND`, `ERR_INVALID_ARGUMENT`, `ERR_KEY_STATE_TRANSITION` (another process generated that generation meanwhile)
   */
  async generateKey(organisation: string, portfolioId: string, purpose: KeyPurpose, options: { backend?: string } = {}): Promise<KeyHandle> {
    this.#assertOpen();
    // Refused before the backend makes a key its transaction would then refuse (an orphan).
    this.#assertAnchored();
    checkPurpose(purpose);
    if (typeof options !== 'object' || options === null) fail('ERR_INVALID_ARGUMENT', 'the generateKey options must be an object', 'options');
    const named = options.backend;
    if (named !== undefined && (typeof named !== 'string' || !this.#backends.has(named))) {
      fail('ERR_INVALID_ARGUMENT', `backend ${String(named)} is not one of this store's backends (${[...this.#backends.keys()].join(', ') || 'none named'})`, 'backend');
    }
    const chosen = named === undefined ? this.#backend : (this.#backends.get(named) as KeyBackend);
    const recorded = named === undefined ? this.#backend.kind : `@${named}`;
    const db = this.#db;
    // Before the backend makes a key nobody may record.
    if (authContext.getStore() === undefined && (await this.accessControlled())) fail('ERR_OPERATOR_REQUIRED', 'this store is under access control: send the change as a signed operator request (execute)');
    const org = await this.#org(db, organisation);
    const p = await this.#portfolio(db, org.entity_id, portfolioId);
    const max = await db.get(`SELECT max(generation) AS g FROM ${db.table('keys')} WHERE organisation = ? AND portfolio_id = ? AND purpose = ?`, [org.entity_id, p.id, purpose]);
    const generation = 1 + Number(max?.['g'] ?? 0);
    const keyId = `${org.entity_id}.${p.id}.${PURPOSE_SHORT[purpose]}.g${generation}`;
    const generated = await chosen.generateKey({ keyId, label: `${org.entity_id}/${p.id}/${PURPOSE_SHORT[purpose]}/g${generation}` });
    this.#fault?.('db:after-backend-generate');
    return this.#change(async (t) => {
      await this.#portfolio(t, org.entity_id, p.id);
      if (await t.get(`SELECT key_id FROM ${db.table('keys')} WHERE key_id = ?`, [keyId])) fail('ERR_KEY_STATE_TRANSITION', `key ${keyId} was generated meanwhile by another process; the key just made is an orphan: generate again`, keyId);
      const row: KeyRow = {
        key_id: keyId,
        organisation: org.entity_id,
        portfolio_id: p.id,
        purpose,
        generation,
        state: 'pending',
        backend: recorded,
        handle: generated.handle,
        public_key: toHex(generated.publicKey),
        certificate: null,
        serial_number: null,
        created_at: this.#now().toISOString(),
        revoked_at: null,
      };
      return {
        result: handleOf(row),
        entries: [{ event: { type: 'key.generated', keyId, organisation: org.entity_id, portfolioId: p.id, purpose, generation, backend: recorded }, rows: [{ table: 'keys', row }] }],
      };
    });
  }

  /** @throws SmkiError `ERR_KEY_NOT_FOUND`, `ERR_KEY_STATE_TRANSITION` */
  async createCsr(keyId: string, options: { commonName?: string } = {}): Promise<Uint8Array> {
    this.#assertOpen();
    if (authContext.getStore() === undefined && (await this.accessControlled())) fail('ERR_OPERATOR_REQUIRED', 'this store is under access control: send the change as a signed operator request (execute)');
    const k = await this.#key(this.#db, keyId);
    if (k.state !== 'pending') fail('ERR_KEY_STATE_TRANSITION', `key ${keyId} is ${k.state}: a CSR is made only for a pending key`, keyId);
    const org = await this.#org(this.#db, k.organisation);
    const backend = this.#backendFor(k);
    const pop: Signer = { publicKey: Buffer.from(k.public_key, 'hex'), sign: (m) => backend.sign(k.handle, m) };
    const purpose = k.purpose as KeyPurpose;
    const csr = await createCsr({
      signer: pop,
      subject: { role: purpose === 'xmlSigning' ? XML_SIGNING_ROLE : (org.role as RemotePartyRoleCode), entityId: org.entity_id as Eui64, ...optional('commonName', options.commonName) },
      keyUsage: PURPOSE_USAGE[purpose],
    });
    await this.#change(async (t) => {
      const now = await this.#key(t, keyId, t.forUpdate);
      if (now.state !== 'pending') fail('ERR_KEY_STATE_TRANSITION', `key ${keyId} became ${now.state} while its CSR was made`, keyId);
      return { result: undefined, entries: [{ event: { type: 'key.csr', keyId }, rows: [] }] };
    });
    return csr;
  }

  /** @throws SmkiError `ERR_CERTIFICATE_KEY_MISMATCH`, `ERR_CERTIFICATE_ENTITY_MISMATCH`, `ERR_CERTIFICATE_ROLE_MISMATCH`, `ERR_CERTIFICATE_PURPOSE_MISMATCH`, `ERR_KEY_STATE_TRANSITION`, `ERR_KEY_NOT_FOUND`, `ERR_CERT_MALFORMED` */
  async attachCertificate(keyId: string, certificate: CertificateInput): Promise<KeyInfo> {
    const cert = toCertificate(certificate);
    return this.#change(async (t) => {
      const k = await this.#key(t, keyId, t.forUpdate);
      if (k.state !== 'pending' || k.certificate !== null) fail('ERR_KEY_STATE_TRANSITION', `key ${keyId} is ${k.state}${k.certificate ? ' and has a certificate' : ''}`, keyId);
      if (toHex(cert.publicKeyBytes) !== k.public_key) fail('ERR_CERTIFICATE_KEY_MISMATCH', `the certificate's key is not key ${keyId}'s`, keyId);
      const org = await this.#org(t, k.organisation);
      if (cert.kind !== 'organisation' || cert.entityId !== org.entity_id) fail('ERR_CERTIFICATE_ENTITY_MISMATCH', `the certificate names entity ${cert.entityId ?? '(none)'}, not ${org.entity_id}`, keyId);
      const purpose = k.purpose as KeyPurpose;
      const role = purpose === 'xmlSigning' ? XML_SIGNING_ROLE : org.role;
      if (cert.role !== role) fail('ERR_CERTIFICATE_ROLE_MISMATCH', `the certificate's role is ${cert.role ?? '(none)'}, not ${role}${purpose === 'xmlSigning' ? ' (DUIS XML signing)' : ''}`, keyId);
      if (cert.keyUsage.length !== 1 || cert.keyUsage[0] !== PURPOSE_USAGE[purpose]) {
        fail('ERR_CERTIFICATE_PURPOSE_MISMATCH', `key ${keyId} is for ${purpose}; the certificate allows ${cert.keyUsage.join('+') || 'nothing'}`, keyId);
      }
      const row: KeyRow = { ...k, certificate: certificateToPem(cert), serial_number: cert.serialNumber };
      const rows: RowWrite[] = [{ table: 'keys', row }];
      const p = await this.#portfolio(t, k.organisation, k.portfolio_id, t.forUpdate);
      if (current(p, purpose) === undefined) {
        row.state = 'active';
        rows.push({ table: 'portfolios', row: { ...p, [CURRENT_COLUMN[purpose]]: k.key_id } });
      }
      return { result: keyInfoOf(row), entries: [{ event: { type: 'certificate.attached', keyId, serialNumber: cert.serialNumber, fingerprint: cert.fingerprint }, rows }] };
    });
  }

  /**
   * Make a pending key with a certificate current. Returns how many meters must now have their
   * credentials updated; {@link DbKeyStore.credentialUpdates} pages through them.
   * @throws SmkiError `ERR_KEY_NOT_FOUND`, `ERR_KEY_STATE_TRANSITION`
   */
  async rotate(keyId: string): Promise<{ readonly fromKeyId?: string; readonly toKeyId: string; readonly devicesToUpdate: number }> {
    return this.#change(async (t) => {
      const k = await this.#key(t, keyId, t.forUpdate);
      if (k.state !== 'pending' || k.certificate === null) fail('ERR_KEY_STATE_TRANSITION', `key ${keyId} must be pending with a certificate to rotate in`, keyId);
      const purpose = k.purpose as KeyPurpose;
      const p = await this.#portfolio(t, k.organisation, k.portfolio_id, t.forUpdate);
      const from = current(p, purpose);
      let devicesToUpdate = 0;
      const col = INSTALLED_COLUMN[purpose];
      if (col !== undefined) {
        const r = await t.get(`SELECT count(*) AS n FROM ${this.#db.table('devices')} WHERE organisation = ? AND portfolio_id = ? AND (${col} IS NULL OR ${col} <> ?)`, [k.organisation, p.id, k.key_id]);
        devicesToUpdate = Number(r?.['n'] ?? 0);
      }
      return {
        result: Object.freeze({ ...optional('fromKeyId', from), toKeyId: k.key_id, devicesToUpdate }),
        entries: [
          {
            event: { type: 'key.rotated', organisation: k.organisation as Eui64, portfolioId: p.id, purpose, ...optional('fromKeyId', from), toKeyId: k.key_id, devicesToUpdate },
            rows: [
              { table: 'keys', row: { ...k, state: 'active' } },
              { table: 'portfolios', row: { ...p, [CURRENT_COLUMN[purpose]]: k.key_id } },
            ],
          },
        ],
      };
    });
  }

  /** @throws SmkiError `ERR_KEY_STATE_TRANSITION`, `ERR_KEY_NOT_FOUND` */
  async retire(keyId: string): Promise<KeyInfo> {
    return this.#change(async (t) => {
      const k = await this.#key(t, keyId, t.forUpdate);
      if (k.state === 'revoked' || k.state === 'retired') fail('ERR_KEY_STATE_TRANSITION', `key ${keyId} is ${k.state}`, keyId);
      const p = await this.#portfolio(t, k.organisation, k.portfolio_id, t.forUpdate);
      if (current(p, k.purpose as KeyPurpose) === keyId) fail('ERR_KEY_STATE_TRANSITION', `key ${keyId} is current: rotate another key in first`, keyId);
      const trusting = await this.#exposureCount(t, k);
      if (trusting > 0) fail('ERR_KEY_STATE_TRANSITION', `${trusting} meter(s) still trust key ${keyId}: update their credentials first`, keyId);
      const row: KeyRow = { ...k, state: 'retired' };
      return { result: keyInfoOf(row), entries: [{ event: { type: 'key.retired', keyId }, rows: [{ table: 'keys', row }] }] };
    });
  }

  /** @throws SmkiError `ERR_KEY_NOT_FOUND`, `ERR_KEY_STATE_TRANSITION` */
  async revoke(keyId: string, reason?: string): Promise<KeyInfo> {
    return this.#change(async (t) => {
      const k = await this.#key(t, keyId, t.forUpdate);
      if (k.state === 'revoked') fail('ERR_KEY_STATE_TRANSITION', `key ${keyId} is already revoked`, keyId);
      const row: KeyRow = { ...k, state: 'revoked', revoked_at: this.#now().toISOString() };
      const rows: RowWrite[] = [{ table: 'keys', row }];
      const p = await this.#portfolio(t, k.organisation, k.portfolio_id, t.forUpdate);
      const purpose = k.purpose as KeyPurpose;
      if (current(p, purpose) === keyId) rows.push({ table: 'portfolios', row: { ...p, [CURRENT_COLUMN[purpose]]: null } });
      const text = reason === undefined ? undefined : String(reason).slice(0, MAX_REASON);
      return { result: keyInfoOf(row), entries: [{ event: { type: 'key.revoked', keyId, ...optional('reason', text) }, rows }] };
    });
  }

  // -------------------------------------------------------------------------------------------
  // devices

  /**
   * Assign devices to portfolios, all or none, in one transaction: each takes its portfolio's
   * current keys. Up to {@link MAX_BULK} at once.
   * @throws SmkiError `ERR_DEVICE_ALREADY_ASSIGNED`, `ERR_PORTFOLIO_DEVICE_CAP`, `ERR_PORTFOLIO_NOT_FOUND`, `ERR_EUI64_INVALID`, `ERR_INVALID_ARGUMENT`
   */
  async assignDevices(organisation: string, assignments: readonly { readonly device: string; readonly portfolioId: string }[]): Promise<number> {
    if (!Array.isArray(assignments) || assignments.length < 1 || assignments.length > MAX_BULK) {
      fail('ERR_INVALID_ARGUMENT', `assign 1 to ${MAX_BULK} devices at once`, String(Array.isArray(assignments) ? assignments.length : typeof assignments));
    }
    // Checked before anything is read: every EUI-64 and portfolio id, no device twice.
    const list = assignments.map((a) => ({ device: parseEui64(a?.device), portfolioId: String(a?.portfolioId) }));
    const seen = new Set<string>();
    for (const a of list) {
      if (seen.has(a.device)) fail('ERR_DEVICE_ALREADY_ASSIGNED', `device ${a.device} is named twice`, a.device);
      seen.add(a.device);
    }
    return this.#change(async (t) => {
      const org = await this.#org(t, organisation);
      const db = this.#db;
      // Already assigned: looked up in chunks by primary key.
      for (let i = 0; i < list.length; i += 500) {
        const chunk = list.slice(i, i + 500);
        const found = await t.get(`SELECT device, portfolio_id FROM ${db.table('devices')} WHERE organisation = ? AND device IN (${chunk.map(() => '?').join(', ')}) LIMIT 1`, [org.entity_id, ...chunk.map((a) => a.device)]);
        if (found) fail('ERR_DEVICE_ALREADY_ASSIGNED', `device ${String(found['device'])} is in portfolio ${String(found['portfolio_id'])}`, String(found['device']));
      }
      // Locked against a rotation until this commits: a meter assigned now never gets a key that
      // a concurrent rotation and retirement take out of service.
      const portfolios = new Map((await this.#portfoliosOf(t, org.entity_id, t.forShare)).map((p) => [p.id, p]));
      const estate = new Set<KeyPurpose>();
      for (const p of portfolios.values()) for (const w of wholeEstateOf(p)) estate.add(w);
      const perKey = new Map<string, number>();
      const entries: { event: AuditEvent; rows: RowWrite[] }[] = [];
      for (const a of list) {
        const p = portfolios.get(a.portfolioId);
        if (!p) fail('ERR_PORTFOLIO_NOT_FOUND', `no portfolio ${a.portfolioId} in ${org.entity_id}`, a.portfolioId);
        const row: DeviceRow = { organisation: org.entity_id, device: a.device, portfolio_id: p.id, inst_signing: null, inst_key_agreement: null, inst_prepayment: null };
        for (const purpose of DEVICE_PURPOSES) {
          if (estate.has(purpose)) continue;
          const keyId = current(p, purpose);
          if (keyId === undefined) continue;
          row[INSTALLED_COLUMN[purpose] as string] = keyId;
          perKey.set(keyId, (perKey.get(keyId) ?? 0) + 1);
        }
        entries.push({ event: { type: 'device.assigned', organisation: org.entity_id as Eui64, device: a.device, portfolioId: p.id }, rows: [{ table: 'devices', row }] });
      }
      for (const [keyId, n] of perKey) await this.#checkCap(t, org, await this.#key(t, keyId), n);
      return { result: list.length, entries };
    });
  }

  /**
   * Move devices to another portfolio, all or none, in one transaction. The meters keep trusting
   * their installed certificates until their credentials are updated
   * ({@link DbKeyStore.credentialUpdates} lists them).
   * @returns how many devices moved
   * @throws SmkiError `ERR_DEVICE_UNKNOWN`, `ERR_PORTFOLIO_NOT_FOUND`, `ERR_PORTFOLIO_DEVICE_CAP`, `ERR_INVALID_ARGUMENT`
   */
  async moveDevices(organisation: string, devices: readonly string[], toPortfolioId: string): Promise<number> {
    if (!Array.isArray(devices) || devices.length < 1 || devices.length > MAX_BULK) {
      fail('ERR_INVALID_ARGUMENT', `move 1 to ${MAX_BULK} devices at once`, String(Array.isArray(devices) ? devices.length : typeof devices));
    }
    const list = [...new Set(devices.map((d) => parseEui64(d)))];
    return this.#change(async (t) => {
      const org = await this.#org(t, organisation);
      const to = await this.#portfolio(t, org.entity_id, toPortfolioId, t.forUpdate);
      const db = this.#db;
      const entries: { event: AuditEvent; rows: RowWrite[] }[] = [];
      for (let i = 0; i < list.length; i += 500) {
        const chunk = list.slice(i, i + 500);
        const rows = (await t.all(`SELECT * FROM ${db.table('devices')} WHERE organisation = ? AND device IN (${chunk.map(() => '?').join(', ')})${t.forUpdate}`, [org.entity_id, ...chunk])) as DeviceRow[];
        if (rows.length !== chunk.length) {
          const have = new Set(rows.map((r) => r.device));
          const missing = chunk.find((d) => !have.has(d)) as string;
          fail('ERR_DEVICE_UNKNOWN', `device ${missing} is in no portfolio of ${org.entity_id}`, missing);
        }
        for (const d of rows) {
          this.#check('devices', d, `${org.entity_id}/${d.device}`);
          if (d.portfolio_id === to.id) fail('ERR_INVALID_ARGUMENT', `device ${d.device} is already in ${to.id}`);
          entries.push({
            event: { type: 'device.moved', organisation: org.entity_id as Eui64, device: d.device as Eui64, fromPortfolioId: d.portfolio_id, toPortfolioId: to.id },
            rows: [{ table: 'devices', row: { ...d, portfolio_id: to.id } }],
          });
        }
      }
      const cap = org.max_devices_per_key;
      // The meters moved will be updated to the destination's keys: a destination with no key for
      // a meter purpose gives no key a meter, and the cap is checked again at each update.
      if (cap !== null && DEVICE_PURPOSES.some((p) => current(to, p) !== undefined)) {
        const r = await t.get(`SELECT count(*) AS n FROM ${db.table('devices')} WHERE organisation = ? AND portfolio_id = ?`, [org.entity_id, to.id]);
        if (!(Number(r?.['n'] ?? 0) + list.length <= cap)) fail('ERR_PORTFOLIO_DEVICE_CAP', `portfolio ${to.id} would hold more than ${cap} devices`, to.id);
      }
      return { result: list.length, entries };
    });
  }

  /** @throws SmkiError `ERR_DEVICE_UNKNOWN`, `ERR_DEVICE_NO_INSTALLED_CERTIFICATE`, `ERR_PORTFOLIO_DEVICE_CAP`, `ERR_PORTFOLIO_WHOLE_ESTATE_CONFLICT`, `ERR_INVALID_ARGUMENT` */
  async markCredentialsUpdated(organisation: string, device: string, purpose: KeyPurpose): Promise<DeviceInfo> {
    const eui = parseEui64(device);
    checkPurpose(purpose);
    if (!DEVICE_PURPOSES.includes(purpose)) fail('ERR_INVALID_ARGUMENT', `no meter trusts an ${purpose} key: there are no credentials to update`, eui);
    return this.#change(async (t) => {
      const org = await this.#org(t, organisation);
      const d = await this.#device(t, org.entity_id, eui, t.forUpdate);
      if (!d) fail('ERR_DEVICE_UNKNOWN', `device ${eui} is in no portfolio of ${org.entity_id}`, eui);
      const estate = await this.#wholeEstate(t, org.entity_id, purpose);
      if (estate) fail('ERR_PORTFOLIO_WHOLE_ESTATE_CONFLICT', `${purpose} is served by the whole-estate key of ${estate.id}: no per-device ${purpose} key is recorded`, eui);
      // Locked against a rotation until this commits (as in assignDevices).
      const p = await this.#portfolio(t, org.entity_id, d.portfolio_id, t.forShare);
      const keyId = current(p, purpose);
      if (keyId === undefined) fail('ERR_DEVICE_NO_INSTALLED_CERTIFICATE', `portfolio ${p.id} has no current ${purpose} key`, eui);
      if (installed(d, purpose) !== keyId) await this.#checkCap(t, org, await this.#key(t, keyId), 1);
      const row: DeviceRow = { ...d, [INSTALLED_COLUMN[purpose] as string]: keyId };
      return { result: deviceInfoOf(row), entries: [{ event: { type: 'device.credentials-updated', device: eui, purpose, keyId }, rows: [{ table: 'devices', row }] }] };
    });
  }

  /**
   * The meters of a portfolio whose installed key for `purpose` is not the portfolio's current
   * one, in device order, a page at a time.
   * @throws SmkiError `ERR_ORGANISATION_NOT_FOUND`, `ERR_PORTFOLIO_NOT_FOUND`, `ERR_INVALID_ARGUMENT`
   */
  async credentialUpdates(organisation: string, portfolioId: string, options: { purpose?: KeyPurpose; after?: string; limit?: number } = {}): Promise<CredentialUpdatePage> {
    this.#assertOpen();
    const purpose = checkPurpose(options.purpose ?? 'signing');
    const col = INSTALLED_COLUMN[purpose];
    if (col === undefined) fail('ERR_INVALID_ARGUMENT', `no meter trusts an ${purpose} key`);
    const limit = options.limit ?? 1000;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) fail('ERR_INVALID_ARGUMENT', 'limit must be 1 to 10000');
    const after = options.after === undefined ? '' : parseEui64(options.after);
    const org = await this.#org(this.#db, organisation);
    const p = await this.#portfolio(this.#db, org.entity_id, portfolioId);
    const to = current(p, purpose);
    if (to === undefined) return Object.freeze({ updates: Object.freeze([]) });
    const rows = (await this.#db.all(
      `SELECT * FROM ${this.#db.table('devices')} WHERE organisation = ? AND portfolio_id = ? AND device > ? AND (${col} IS NULL OR ${col} <> ?) ORDER BY device LIMIT ?`,
      [org.entity_id, p.id, after, to, limit],
    )) as DeviceRow[];
    const updates = rows.map((d) => {
      this.#check('devices', d, `${org.entity_id}/${d.device}`);
      return Object.freeze({ device: d.device as Eui64, purpose, fromKeyId: installed(d, purpose), toKeyId: to });
    });
    const last = rows[rows.length - 1];
    return Object.freeze({ updates: Object.freeze(updates), ...(rows.length === limit && last ? { next: last.device } : {}) });
  }

  // -------------------------------------------------------------------------------------------
  // use

  /**
   * The backend that holds a key: the one its (authenticated) row names, `@name` for a further
   * backend. A key whose backend this process was not given is refused, never looked for elsewhere.
   */
  #backendFor(key: { readonly key_id: string; readonly backend: string }): KeyBackend {
    if (!key.backend.startsWith('@')) return this.#backend;
    const b = this.#backends.get(key.backend.slice(1));
    if (b === undefined) fail('ERR_KEY_BACKEND_UNAVAILABLE', `key ${key.key_id} is held by backend ${key.backend.slice(1)}, which this key store was not opened with`, key.key_id);
    return b;
  }

  /**
   * The key a device trusts for `purpose`, read and checked (MACs, state). Fails closed with a
   * distinct code for each reason.
   */
  async #resolve(organisation: string | undefined, device: string, purpose: KeyPurpose): Promise<{ key: KeyRow; dev: MeterRow; eui: Eui64 }> {
    const db = this.#db;
    // The hot path reads one row (the meter's), and takes the key and the organisation's
    // whole-estate portfolios from caches of verified rows. Nothing read here is trusted to
    // authorise: the use batch reads the key, the meter and the whole-estate portfolios again
    // inside its transaction and withholds the signature unless the meter still trusts that key
    // and it is usable (see #validateUses). The caches only choose the key to try.
    const orgId = organisation === undefined ? await this.#soleOrganisation() : parseEui64(organisation);
    const eui = parseEui64(device);
    const dev = this.#keptMeter(orgId, eui) ?? (await this.#deviceForUse(orgId, eui));
    if (!dev) {
      await this.#org(db, orgId); // ERR_ORGANISATION_NOT_FOUND first, as for every other call
      fail('ERR_DEVICE_UNKNOWN', `device ${eui} is in no portfolio of ${orgId}`, eui);
    }
    const estate = (await this.#estates(orgId)).find((p) => wholeEstateOf(p).includes(purpose));
    let keyId: string | undefined;
    if (estate) {
      if (installed(dev, purpose) !== undefined) fail('ERR_PORTFOLIO_WHOLE_ESTATE_CONFLICT', `device ${eui} records an installed ${purpose} key; the whole-estate key of ${estate.id} would override it`, eui);
      keyId = current(estate, purpose);
      if (keyId === undefined) fail('ERR_DEVICE_NO_INSTALLED_CERTIFICATE', `the whole-estate portfolio ${estate.id} has no current ${purpose} key`, eui);
    } else {
      keyId = installed(dev, purpose);
      if (keyId === undefined) fail('ERR_DEVICE_NO_INSTALLED_CERTIFICATE', `the store does not know which ${purpose} certificate device ${eui} trusts`, eui);
    }
    let key = this.#keyCache.get(keyId);
    if (key === undefined) {
      key = await this.#key(db, keyId);
      this.#keyCache.set(keyId, key);
    }
    usable(key);
    if (key.purpose !== purpose || key.organisation !== orgId) fail('ERR_KEYSTORE_CORRUPT', `device ${eui} points at a key of another purpose or organisation`);
    return { key, dev, eui };
  }

  /** Verified key rows the hot path chose keys from (cleared by every change this process makes, refreshed by every use batch). */
  readonly #keyCache = new Map<string, KeyRow>();
  /** Each organisation's whole-estate portfolios (verified), for the hot path; refreshed likewise. */
  readonly #estateCache = new Map<string, PortfolioRow[]>();
  /**
   * The meter cache (batches on this thread): what signing needs of meters' rows read and checked
   * against their MAC, by organisation and EUI-64, all read at one version {@link #metersVersion}
   * (SQLite: the writer connection's `data_version`, the rows read on that connection; PostgreSQL:
   * the meter epoch, read with the rows in one statement). The hot path chooses keys from them; a
   * use batch whose transaction reads the same version (SQLite: no other connection committed
   * since; PostgreSQL: no transaction wrote a meter since) takes them as read. The store's own
   * changes drop the rows they write ({@link #change}, {@link #afterMeterChange}). At most
   * {@link #meterCacheMax} meters (then it starts again empty).
   */
  readonly #meters: MeterCache;
  /** The version the kept meters were read at: SQLite's `data_version`, PostgreSQL's meter epoch. */
  #metersVersion = -1;
  /** PostgreSQL: the highest meter epoch this store's transactions read (it never goes back). */
  readonly #epochSeen = { seen: 0 };
  readonly #meterCacheMax: number;
  /**
   * The store's one organisation, for calls that name none (SQLite, batches on this thread), with
   * the writer's `data_version` when it was read: used while that is unchanged and this store has
   * changed nothing since (see {@link #change}).
   */
  #soleOrg: { readonly id: string; readonly version: number } | undefined;

  /** The organisation of a call that names none: the store must hold exactly one. */
  async #soleOrganisation(): Promise<string> {
    const db = this.#db;
    if (!(db instanceof SqliteDriver) || this.#useWorker !== undefined) return (await this.#orgFor(db, undefined)).entity_id;
    const known = this.#soleOrg;
    if (known !== undefined && known.version === db.dataVersion()) return known.id;
    return db.readOnWriter(async (q, dataVersion) => {
      const id = (await this.#orgFor(q, undefined)).entity_id;
      this.#soleOrg = { id, version: dataVersion() };
      return id;
    });
  }
  /** Key rows the use batches verified (see UseCheckContext.verifiedKeys). */
  readonly #verifiedKeys = new Map<string, Row>();
  /** Device lookups waiting to go to the database in one query. */
  #deviceWaiters = new Map<string, { org: string; eui: string; waiters: { resolve: (d: MeterRow | undefined) => void; reject: (e: unknown) => void }[] }>();

  async #estates(org: string): Promise<PortfolioRow[]> {
    let e = this.#estateCache.get(org);
    if (e === undefined) {
      const rows = (await this.#db.all(`SELECT * FROM ${this.#db.table('portfolios')} WHERE organisation = ? AND whole_estate <> '[]'`, [org])) as PortfolioRow[];
      e = rows.map((p) => this.#check('portfolios', p, `${org}/${p.id}`) as PortfolioRow);
      this.#estateCache.set(org, e);
    }
    return e;
  }

  /**
   * A meter's row from the meter cache for the hot path, only while nothing can have changed it
   * since it was read: on SQLite, while the writer connection's `data_version` is the cache's (a
   * prepared pragma); on PostgreSQL never here (a cache hit waits for the turn's read of the meter
   * epoch, {@link #loadDevices}). The hot path decides on it as on a row it read (which key, which
   * portfolio an operator's session may sign for), so it must be as fresh as a read.
   */
  #keptMeter(org: string, eui: string): MeterRow | undefined {
    const db = this.#db;
    if (this.#meters.size === 0 || !(db instanceof SqliteDriver) || db.dataVersion() !== this.#metersVersion) return undefined;
    return this.#meters.get(org, eui);
  }

  /**
   * A meter's row, to choose the key to try. The lookups of one turn of the event loop go to the
   * database as one query (as use records go as one batch): on SQLite each batch's commit empties
   * the reading connection's page cache, and one query for a turn's meters reads the upper pages
   * of the index once instead of once per meter.
   */
  #deviceForUse(org: string, eui: string): Promise<MeterRow | undefined> {
    // Not checked against its MAC here: it only chooses the key to try, and the use batch reads it
    // again and checks it before any signature leaves (a tampered row withholds the signature).
    return new Promise((resolve, reject) => {
      const k = `${org}/${eui}`;
      const first = this.#deviceWaiters.size === 0;
      const w = this.#deviceWaiters.get(k) ?? { org, eui, waiters: [] };
      w.waiters.push({ resolve, reject });
      this.#deviceWaiters.set(k, w);
      if (first) setImmediate(() => void this.#loadDevices());
    });
  }

  async #loadDevices(): Promise<void> {
    let batch = [...this.#deviceWaiters.values()];
    this.#deviceWaiters = new Map();
    const db = this.#db;
    if (db.kind === 'postgres' && this.#meters.size > 0) {
      // The turn's kept meters are as fresh as a read if the meter epoch is still theirs: one
      // small read for the turn, and the meters not kept are read below.
      try {
        const r = await db.get(`SELECT epoch FROM ${db.table('meter_epoch')} WHERE id = 1`);
        if (r !== undefined && Number(r['epoch']) === this.#metersVersion) {
          batch = batch.filter((w) => {
            const d = this.#meters.get(w.org, w.eui);
            if (d === undefined) return true;
            for (const x of w.waiters) x.resolve(d);
            return false;
          });
        }
      } catch (e) {
        for (const w of batch) for (const x of w.waiters) x.reject(e);
        return;
      }
    }
    const byOrg = new Map<string, typeof batch>();
    for (const w of batch) {
      const list = byOrg.get(w.org);
      if (list === undefined) byOrg.set(w.org, [w]);
      else list.push(w);
    }
    for (const [org, ws] of byOrg) {
      for (let i = 0; i < ws.length; i += 500) {
        const chunk = ws.slice(i, i + 500);
        try {
          const sql = `SELECT * FROM ${this.#db.table('devices')} WHERE organisation = ? AND device IN (${chunk.map(() => '?').join(', ')})`;
          const params = [org, ...chunk.map((w) => w.eui)];
          let rows: DeviceRow[];
          if (db.kind === 'postgres' && this.#useWorker === undefined) {
            // The meters and the meter epoch in one statement (one snapshot): the rows are kept
            // with the epoch they were read at, and a use batch trusts them only at that epoch.
            rows = (await db.all(`SELECT d.*, (SELECT epoch FROM ${db.table('meter_epoch')} WHERE id = 1) AS meter_epoch FROM ${db.table('devices')} d WHERE d.organisation = ? AND d.device IN (${chunk.map(() => '?').join(', ')})`, params)) as DeviceRow[];
            const epoch = rows.length === 0 ? NaN : Number(rows[0]!['meter_epoch']);
            if (Number.isSafeInteger(epoch)) this.#rememberMeters(rows, epoch);
          } else if (db instanceof SqliteDriver && this.#useWorker === undefined) {
            // Use batches commit on this thread's writer connection: read the meters there too (its
            // page cache stays warm; the reading connection's is emptied by every commit), check
            // them, and keep them in the meter cache, inside the read (before any transaction of
            // this driver can change them). A row that fails its MAC is not kept: the batch reads
            // it again and refuses it.
            rows = await db.readOnWriter(async (q, dataVersion) => {
              const read = (await q.all(sql, params)) as DeviceRow[];
              this.#rememberMeters(read, dataVersion());
              return read;
            });
          } else rows = (await db.all(sql, params)) as DeviceRow[];
          const found = new Map(rows.map((r) => [r.device as string, r]));
          for (const w of chunk) {
            const d = found.get(w.eui);
            for (const x of w.waiters) x.resolve(d);
          }
        } catch (e) {
          for (const w of chunk) for (const x of w.waiters) x.reject(e);
        }
      }
    }
  }

  /**
   * Keep `rows` (meters' rows read on the writer connection at `version`) in the meter cache,
   * each checked against its MAC first (one that fails is not kept). Rows of another `data_version`
   * than the cache's replace it all. Call inside the read.
   */
  #rememberMeters(rows: readonly DeviceRow[], version: number): void {
    if (this.#meterCacheMax === 0) return;
    // PostgreSQL: a read from before an epoch the cache already holds (reads run concurrently on
    // the pool) is stale, and dropped.
    if (this.#db.kind === 'postgres' && version < this.#metersVersion) return;
    if (version !== this.#metersVersion) {
      this.#meters.clear();
      this.#metersVersion = version;
    }
    for (const row of rows) {
      try {
        checkRow(this.#secrets.rowKey, this.#storeId, 'devices', row, `${row.organisation}/${row.device}`);
      } catch {
        this.#meters.delete(row.organisation, row.device);
        continue;
      }
      this.#meters.set(row.organisation, row.device, row);
    }
  }

  /**
   * PostgreSQL, once a change that wrote meters' rows committed, moving the meter epoch from
   * `from` to `from + 1`: if the kept rows were read at `from`, only the meters written changed,
   * and the rest stand for the new epoch too. Runs with no await between the commit's return and
   * the cache's new epoch: a read of the pool that began before the commit returns rows at `from`,
   * dropped from here on; one that began after, rows at `from + 1`. (Use batches and changes of
   * this store never run at the same time: the driver runs its transactions one at a time.)
   */
  #afterMeterChange(from: number, meterRows: number, written: readonly (readonly [string, string])[]): void {
    this.#epochSeen.seen = Math.max(this.#epochSeen.seen, from + 1);
    if (this.#metersVersion === from && meterRows === written.length) {
      for (const [org, device] of written) this.#meters.delete(org, device);
    } else this.#meters.clear();
    this.#metersVersion = from + 1;
  }

  /** Drop a meter from the meter cache (its row is being written by this store). */
  #forgetMeter(org: string, device: string): void {
    this.#meters.delete(org, device);
  }

  /**
   * Whether the store was under access control when this process last looked (on open, and at every
   * use batch): uses outside a session are refused before any key is used. The batch's own check
   * is the authoritative one.
   */
  #controlled = false;

  #refuseUnderAccessControl(): void {
    this.#assertAnchored();
    if (this.#controlled) fail('ERR_OPERATOR_REQUIRED', 'this store is under access control: sign through an operator session (execute a session.sign request)');
  }

  /**
   * Inside a use batch's transaction: the keys the batch's records used, read again (locked against
   * a concurrent revocation on PostgreSQL) and checked still usable; and each meter's row, checked
   * to trust that key still (a concurrent credential update withholds a signature made with the key
   * the meter no longer trusts).
   */
  async #validateUses(t: SqlTx, uses: readonly AuditEvent[]): Promise<readonly (SmkiError | undefined)[]> {
    const stamp = this.#changes;
    const db = this.#db;
    const kept = (org: string, device: string) => this.#meters.get(org, device) as unknown as Row | undefined;
    // The kept rows stand for what this transaction would read only if no commit has changed a
    // meter since they were read (SQLite: no other connection committed; PostgreSQL: the meter
    // epoch this batch locked is theirs): else they all go, and the batch reads its meters itself.
    const prior = (epoch: number | undefined): typeof kept | undefined => {
      if (this.#meters.size === 0) return undefined;
      const version = db instanceof SqliteDriver ? db.txDataVersion() : epoch;
      if (version === this.#metersVersion) return kept;
      this.#meters.clear();
      return undefined;
    };
    const r = await checkUses(t, uses, { rowKey: this.#secrets.rowKey, storeId: this.#storeId, table: (n) => this.#db.table(n), verifiedKeys: this.#verifiedKeys, ...(db.kind === 'postgres' ? { meterEpoch: this.#epochSeen } : {}) }, prior);
    this.#applyUseChecks(r, stamp);
    return r.refused;
  }

  /** Changes this process committed (a batch's key rows refresh the caches only if none came between). */
  #changes = 0;

  /** What the hot path chooses keys from, refreshed from what a use batch's transaction read. */
  #applyUseChecks(r: Omit<UseCheckResult, 'refused'>, stamp: number): void {
    for (const id of r.unusable) this.#keyCache.delete(id);
    this.#estateCache.clear();
    if (stamp === this.#changes) {
      for (const [id, k] of r.keys) this.#keyCache.set(id, k as KeyRow);
      for (const [org, rows] of r.estates) this.#estateCache.set(org, rows as PortfolioRow[]);
    }
    // Access control, once initialised, is never lifted.
    if (r.controlled) this.#controlled = true;
  }

  /**
   * Sign for a device with the key it trusts; returned only once the use record is durable and the
   * key was still usable when it committed.
   * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_DEVICE_UNKNOWN`, `ERR_DEVICE_NO_INSTALLED_CERTIFICATE`, `ERR_KEY_NOT_ACTIVE`, `ERR_KEY_RETIRED`, `ERR_KEY_REVOKED`, `ERR_KEYSTORE_CLOSED`, `ERR_KEYSTORE_ROW_TAMPERED`
   */
  async signFor(device: string, data: Uint8Array, use: UseContext & { organisation?: string } = {}): Promise<Uint8Array> {
    this.#assertOpen();
    this.#refuseUnderAccessControl();
    const fields = useOf(use);
    if (!(data instanceof Uint8Array)) fail('ERR_INVALID_ARGUMENT', 'data must be a Uint8Array');
    const { key, eui } = await this.#resolve(use.organisation, device, 'signing');
    const signature = await this.#backendFor(key).sign(key.handle, data);
    await this.#trail.recordUse(useEvent('sign', key, eui, fields));
    return signature;
  }

  /** @throws SmkiError `ERR_KEY_PORTFOLIO_MISMATCH`, `ERR_KEY_NOT_FOR_SIGNING`, `ERR_KEY_STATE_TRANSITION`, and those of {@link DbKeyStore.signFor} */
  async signWith(handle: KeyHandle<'signing'>, device: string, data: Uint8Array, use: UseContext = {}): Promise<Uint8Array> {
    this.#assertOpen();
    this.#refuseUnderAccessControl();
    const fields = useOf(use);
    if (!(data instanceof Uint8Array)) fail('ERR_INVALID_ARGUMENT', 'data must be a Uint8Array');
    const given = await this.#key(this.#db, handle?.keyId);
    if (given.purpose === 'xmlSigning') fail('ERR_KEY_NOT_FOR_SIGNING', `key ${given.key_id} is an xmlSigning key: it signs DUIS XML (KeyStore.xmlSigner), never for a meter`, given.key_id);
    if (given.purpose !== 'signing') fail('ERR_KEY_NOT_FOR_SIGNING', `key ${given.key_id} is a ${given.purpose} key: it never signs (but its own CSR)`, given.key_id);
    const { key, dev, eui } = await this.#resolve(given.organisation, device, 'signing');
    if (key.key_id !== given.key_id) {
      if (given.portfolio_id !== dev.portfolio_id && given.portfolio_id !== key.portfolio_id) {
        fail('ERR_KEY_PORTFOLIO_MISMATCH', `key ${given.key_id} belongs to portfolio ${given.portfolio_id}; device ${device} is in ${dev.portfolio_id}`, given.key_id);
      }
      fail('ERR_KEY_STATE_TRANSITION', `device ${device} trusts key ${key.key_id}, not ${given.key_id}`, given.key_id);
    }
    const signature = await this.#backendFor(key).sign(key.handle, data);
    await this.#trail.recordUse(useEvent('sign', key, eui, fields));
    return signature;
  }

  /** @throws SmkiError `ERR_KEY_NOT_FOR_KEY_AGREEMENT`, and those of {@link DbKeyStore.signFor} */
  async keyAgreementFor(device: string, options: { purpose?: KeyAgreementPurpose; organisation?: string } & UseContext = {}): Promise<KeyAgreement> {
    this.#assertOpen();
    this.#refuseUnderAccessControl();
    return this.#keyAgreement(device, options, undefined);
  }

  /** A key agreement for a meter; in a session, only with a key of its portfolios (and for a meter of them, but with a whole-estate key). */
  async #keyAgreement(device: string, options: { purpose?: KeyAgreementPurpose; organisation?: string } & UseContext, session: SessionScope | undefined): Promise<KeyAgreement> {
    const fields = useOf(options);
    const { organisation } = options;
    const purpose = options.purpose ?? 'keyAgreement';
    if (purpose === ('signing' as KeyPurpose) || purpose === ('xmlSigning' as KeyPurpose)) fail('ERR_KEY_NOT_FOR_KEY_AGREEMENT', `a ${purpose} key is never used for key agreement`);
    const { key, dev } = await this.#resolve(organisation ?? session?.organisation, device, purpose);
    if (session !== undefined) {
      const estate = (await this.#estates(key.organisation)).some((p) => p.id === key.portfolio_id && wholeEstateOf(p).includes(purpose));
      if (!session.allowed.has(key.portfolio_id) || (!estate && !session.allowed.has(dev.portfolio_id))) {
        fail('ERR_OPERATOR_FORBIDDEN', `operator ${session.operatorId} uses keys of ${[...session.allowed].join(', ')}; device ${device} is in ${dev.portfolio_id} and trusts a key of ${key.portfolio_id}`, session.operatorId);
      }
    }
    return {
      publicKey: Buffer.from(key.public_key, 'hex'),
      deriveSharedSecret: async (peer) => {
        this.#assertOpen();
        this.#assertAnchored();
        const now = (await this.#resolve(organisation ?? session?.organisation, device, purpose)).key;
        if (now.key_id !== key.key_id) fail('ERR_KEY_STATE_TRANSITION', `device ${device} now trusts key ${now.key_id}`, key.key_id);
        const point = peer instanceof Uint8Array && peer.length === 65 && peer[0] === 0x04 ? peer : publicKeyToRaw(toPublicKey(peer));
        const z = await this.#backendFor(key).deriveSharedSecret(key.handle, point);
        const event = useEvent('keyAgreement', key, parseEui64(device), fields);
        await this.#trail.recordUse((session === undefined ? event : { ...event, operatorId: session.operatorId }) as AuditEvent & { keyId: string });
        return z;
      },
    };
  }

  /** @throws SmkiError `ERR_KEY_NOT_FOUND`, `ERR_INVALID_ARGUMENT`, `ERR_KEY_NOT_ACTIVE`, `ERR_KEY_RETIRED`, `ERR_KEY_REVOKED`, `ERR_KEYSTORE_CORRUPT` */
  async xmlSigner(organisation: string, options: XmlSignerOptions = {}): Promise<XmlSigner> {
    this.#assertOpen();
    this.#refuseUnderAccessControl();
    return this.#xmlSigner(organisation, options, undefined);
  }

  /** The organisation's XML signer; in a session, only with a key of its portfolios, each signature recorded with the operator. */
  async #xmlSigner(organisation: string, options: XmlSignerOptions, session: SessionScope | undefined): Promise<XmlSigner> {
    if (typeof options !== 'object' || options === null) fail('ERR_INVALID_ARGUMENT', 'the xmlSigner options must be an object', 'options');
    const defaults = xmlUseOf(options);
    const db = this.#db;
    const org = await this.#org(db, organisation);
    let keyId: string | undefined;
    if (options.portfolioId !== undefined) {
      if (typeof options.portfolioId !== 'string') fail('ERR_INVALID_ARGUMENT', 'portfolioId must be a string', 'portfolioId');
      keyId = current(await this.#portfolio(db, org.entity_id, options.portfolioId), 'xmlSigning');
      if (keyId === undefined) fail('ERR_KEY_NOT_FOUND', `portfolio ${options.portfolioId} of ${org.entity_id} has no current xmlSigning key`, `${org.entity_id}/${options.portfolioId}/xmlSigning`);
    } else {
      const holders = (await this.#portfoliosOf(db, org.entity_id)).filter((p) => current(p, 'xmlSigning') !== undefined && (session === undefined || session.allowed.has(p.id)));
      if (holders.length === 0) fail('ERR_KEY_NOT_FOUND', `organisation ${org.entity_id} has no current xmlSigning key${session === undefined ? '' : ` in ${[...session.allowed].join(', ')}`}`, `${org.entity_id}/xmlSigning`);
      if (holders.length > 1) fail('ERR_INVALID_ARGUMENT', `portfolios ${holders.map((p) => p.id).join(', ')} of ${org.entity_id} each have a current xmlSigning key: name one with portfolioId`, 'portfolioId');
      keyId = current(holders[0] as PortfolioRow, 'xmlSigning') as string;
    }
    const key = await this.#usableXmlKey(keyId, org.entity_id);
    if (key.certificate === null) fail('ERR_KEYSTORE_CORRUPT', `the current xmlSigning key ${key.key_id} has no certificate`, key.key_id);
    if (session !== undefined && (org.entity_id !== session.organisation || !session.allowed.has(key.portfolio_id))) {
      fail('ERR_OPERATOR_FORBIDDEN', `operator ${session.operatorId} uses keys of ${[...session.allowed].join(', ')} of ${session.organisation}; the XML signing key is ${key.portfolio_id}'s of ${org.entity_id}`, session.operatorId);
    }
    const bound = key.key_id;
    return Object.freeze({
      keyId: bound,
      portfolioId: key.portfolio_id,
      publicKey: new Uint8Array(Buffer.from(key.public_key, 'hex')),
      certificate: new Uint8Array(toCertificate(key.certificate).der),
      sign: async (message: Uint8Array, use?: XmlSignUse): Promise<Uint8Array> => {
        this.#assertOpen();
        this.#assertAnchored();
        const fields = use === undefined ? defaults : xmlUseOf(use);
        if (!(message instanceof Uint8Array)) fail('ERR_INVALID_ARGUMENT', 'message must be a Uint8Array', 'message');
        const now = await this.#usableXmlKey(bound, org.entity_id);
        const signature = await this.#backendFor(now).sign(now.handle, message);
        await this.#trail.recordUse({ type: 'key.used', operation: 'xml-sign', keyId: now.key_id, portfolioId: now.portfolio_id, ...optional('requestId', fields.requestId), ...optional('operatorId', session?.operatorId) });
        return signature;
      },
    });
  }

  async #usableXmlKey(keyId: string, organisation: string): Promise<KeyRow> {
    const key = await this.#key(this.#db, keyId);
    usable(key);
    if (key.purpose !== 'xmlSigning' || key.organisation !== organisation) fail('ERR_KEYSTORE_CORRUPT', `key ${key.key_id} is not an xmlSigning key of ${organisation}`, key.key_id);
    return key;
  }

  // -------------------------------------------------------------------------------------------
  // reading

  /** @throws SmkiError `ERR_KEY_NOT_FOUND`, `ERR_KEYSTORE_CLOSED` */
  async key(keyId: string): Promise<KeyInfo> {
    this.#assertOpen();
    return keyInfoOf(await this.#key(this.#db, keyId));
  }

  /** @throws SmkiError `ERR_KEYSTORE_CLOSED` */
  async keys(organisation?: string): Promise<KeyInfo[]> {
    this.#assertOpen();
    const db = this.#db;
    const rows = (organisation === undefined
      ? await db.all(`SELECT * FROM ${db.table('keys')} ORDER BY key_id`)
      : await db.all(`SELECT * FROM ${db.table('keys')} WHERE organisation = ? ORDER BY key_id`, [parseEui64(organisation)])) as KeyRow[];
    return rows.map((k) => keyInfoOf(this.#check('keys', k, k.key_id) as KeyRow));
  }

  /** @throws SmkiError `ERR_ORGANISATION_NOT_FOUND`, `ERR_KEYSTORE_CLOSED` */
  async organisation(entityId: string): Promise<OrganisationInfo> {
    this.#assertOpen();
    const o = await this.#org(this.#db, entityId);
    return Object.freeze({ entityId: o.entity_id as Eui64, role: o.role as RemotePartyRoleCode, ...optional('maxDevicesPerKey', o.max_devices_per_key ?? undefined) });
  }

  /** A portfolio and its device count (its devices are paged by {@link DbKeyStore.devicesOf}). @throws SmkiError `ERR_PORTFOLIO_NOT_FOUND`, `ERR_ORGANISATION_NOT_FOUND` */
  async portfolio(organisation: string, id: string): Promise<PortfolioInfo & { readonly deviceCount: number }> {
    this.#assertOpen();
    const org = await this.#org(this.#db, organisation);
    const p = await this.#portfolio(this.#db, org.entity_id, id);
    const r = await this.#db.get(`SELECT count(*) AS n FROM ${this.#db.table('devices')} WHERE organisation = ? AND portfolio_id = ?`, [org.entity_id, p.id]);
    return Object.freeze({ ...portfolioInfoOf(p, []), deviceCount: Number(r?.['n'] ?? 0) });
  }

  /** Every portfolio of an organisation, by id. @throws SmkiError `ERR_ORGANISATION_NOT_FOUND` */
  async portfolios(organisation: string): Promise<PortfolioInfo[]> {
    this.#assertOpen();
    const org = await this.#org(this.#db, organisation);
    return (await this.#portfoliosOf(this.#db, org.entity_id)).map((p) => portfolioInfoOf(p, []));
  }

  /** The devices of a portfolio, in order, a page at a time. @throws SmkiError `ERR_ORGANISATION_NOT_FOUND`, `ERR_INVALID_ARGUMENT` */
  async devicesOf(organisation: string, portfolioId: string, options: { after?: string; limit?: number } = {}): Promise<{ devices: readonly DeviceInfo[]; next?: string }> {
    this.#assertOpen();
    const limit = options.limit ?? 1000;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) fail('ERR_INVALID_ARGUMENT', 'limit must be 1 to 10000');
    const org = await this.#org(this.#db, organisation);
    const p = await this.#portfolio(this.#db, org.entity_id, portfolioId);
    const after = options.after === undefined ? '' : parseEui64(options.after);
    const rows = (await this.#db.all(`SELECT * FROM ${this.#db.table('devices')} WHERE organisation = ? AND portfolio_id = ? AND device > ? ORDER BY device LIMIT ?`, [org.entity_id, p.id, after, limit])) as DeviceRow[];
    const devices = rows.map((d) => deviceInfoOf(this.#check('devices', d, `${org.entity_id}/${d.device}`) as DeviceRow));
    const last = rows[rows.length - 1];
    return Object.freeze({ devices: Object.freeze(devices), ...(rows.length === limit && last ? { next: last.device } : {}) });
  }

  /** @throws SmkiError `ERR_DEVICE_UNKNOWN`, `ERR_KEYSTORE_CLOSED` */
  async device(organisation: string, device: string): Promise<DeviceInfo> {
    this.#assertOpen();
    const org = await this.#org(this.#db, organisation);
    const eui = parseEui64(device);
    const d = await this.#device(this.#db, org.entity_id, eui);
    if (!d) fail('ERR_DEVICE_UNKNOWN', `device ${eui} is in no portfolio of ${org.entity_id}`, eui);
    return deviceInfoOf(d);
  }

  /**
   * The meters that trust `keyId` now (its certificate is installed on them), in order, a page at
   * a time; every meter of the organisation for a whole-estate key.
   * @throws SmkiError `ERR_KEY_NOT_FOUND`, `ERR_INVALID_ARGUMENT`, `ERR_KEYSTORE_CLOSED`
   */
  async devicesTrusting(keyId: string, options: { after?: string; limit?: number } = {}): Promise<{ wholeEstate: boolean; devices: readonly Eui64[]; next?: string }> {
    this.#assertOpen();
    const limit = options.limit ?? 1000;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) fail('ERR_INVALID_ARGUMENT', 'limit must be 1 to 10000');
    const after = options.after === undefined ? '' : parseEui64(options.after);
    const db = this.#db;
    const k = await this.#key(db, keyId);
    const purpose = k.purpose as KeyPurpose;
    const col = INSTALLED_COLUMN[purpose];
    const p = await this.#portfolio(db, k.organisation, k.portfolio_id);
    const wholeEstate = wholeEstateOf(p).includes(purpose) && current(p, purpose) === k.key_id;
    let rows: Row[] = [];
    if (wholeEstate) {
      rows = await db.all(`SELECT device FROM ${db.table('devices')} WHERE organisation = ? AND device > ? ORDER BY device LIMIT ?`, [k.organisation, after, limit]);
    } else if (col !== undefined) {
      rows = await db.all(`SELECT device FROM ${db.table('devices')} WHERE ${col} = ? AND device > ? ORDER BY device LIMIT ?`, [k.key_id, after, limit]);
    }
    const devices = rows.map((r) => String(r['device']) as Eui64);
    const last = devices[devices.length - 1];
    return Object.freeze({ wholeEstate, devices: Object.freeze(devices), ...(rows.length === limit && last ? { next: last } : {}) });
  }

  /**
   * Read every meter row once on the connection the hot path reads meters on (SQLite's writer
   * connection, whose page cache of up to 256 MiB outlives its own commits), so that signing for a
   * meter after a restart does not wait for its row to come from the file; a chunk of
   * `options.chunk` meters (default 20,000) at a time, other calls running in between. A service
   * calls it after opening a large estate; without it the cache fills as meters are used. On
   * PostgreSQL (the server keeps its own buffers) it fills the meter cache only, as far as it goes.
   * @returns the meters read
   * @throws SmkiError `ERR_KEYSTORE_CLOSED`, `ERR_INVALID_ARGUMENT`
   */
  async prewarm(options: { readonly chunk?: number } = {}): Promise<number> {
    this.#assertOpen();
    const chunk = options.chunk ?? PREWARM_CHUNK;
    if (!Number.isSafeInteger(chunk) || chunk < 1) fail('ERR_INVALID_ARGUMENT', 'chunk must be a positive integer');
    const db = this.#db;
    const devices = db.table('devices');
    let after: [string, string] = ['', ''];
    let n = 0;
    if (!(db instanceof SqliteDriver)) {
      // PostgreSQL: the meter cache only (the server keeps its own buffers), each chunk read with
      // the meter epoch in one statement.
      const keep = this.#useWorker === undefined ? this.#meterCacheMax : 0;
      while (n < keep) {
        this.#assertOpen();
        const want = Math.min(chunk, keep - n);
        const rows = (await db.all(`SELECT d.*, (SELECT epoch FROM ${db.table('meter_epoch')} WHERE id = 1) AS meter_epoch FROM ${devices} d WHERE (d.organisation, d.device) > (?, ?) ORDER BY d.organisation, d.device LIMIT ?`, [...after, want])) as DeviceRow[];
        const last = rows.at(-1);
        if (last === undefined) return n;
        this.#rememberMeters(rows, Number(last['meter_epoch']));
        n += rows.length;
        if (rows.length < want) return n;
        after = [last.organisation, last.device];
      }
      return n;
    }
    // First the meter cache, as far as it goes: whole rows in key order, each checked and kept.
    const keep = this.#useWorker === undefined ? this.#meterCacheMax : 0;
    while (n < keep) {
      this.#assertOpen();
      const want = Math.min(chunk, keep - n);
      const rows = await db.readOnWriter(async (q, dataVersion) => {
        const read = (await q.all(`SELECT * FROM ${devices} WHERE (organisation, device) > (?, ?) ORDER BY organisation, device LIMIT ?`, [...after, want])) as DeviceRow[];
        this.#rememberMeters(read, dataVersion());
        return read;
      });
      n += rows.length;
      const last = rows.at(-1);
      if (last === undefined || rows.length < want) return n;
      after = [last.organisation, last.device];
      await new Promise((r) => setImmediate(r));
    }
    // Then the rest into the page cache only.
    for (;;) {
      this.#assertOpen();
      // The primary key's b-tree is the table (WITHOUT ROWID): stepping over a chunk of it in key
      // order reads its pages into the cache, and returns one row.
      const last = await db.readOnWriter((q) => q.get(`SELECT organisation, device FROM ${devices} WHERE (organisation, device) > (?, ?) ORDER BY organisation, device LIMIT 1 OFFSET ?`, [...after, chunk - 1]));
      if (last === undefined) {
        const rest = await db.readOnWriter((q) => q.get(`SELECT count(*) AS n FROM ${devices} WHERE (organisation, device) > (?, ?)`, after));
        return n + Number(rest?.['n'] ?? 0);
      }
      n += chunk;
      after = [String(last['organisation']), String(last['device'])];
      await new Promise((r) => setImmediate(r));
    }
  }

  /**
   * How many meters each key endangers, largest first: every active or pending key, and every
   * revoked or retired key that meters still trust (after a compromise, the meters still to
   * re-credential). One `GROUP BY` per purpose over the index of installed keys (whole-estate keys
   * count every device of the organisation).
   * @throws SmkiError `ERR_KEYSTORE_CLOSED`
   */
  async exposureReport(organisation?: string): Promise<ExposureCount[]> {
    this.#assertOpen();
    const db = this.#db;
    const keys = await this.keys(organisation);
    const counts = new Map<string, number>();
    for (const purpose of DEVICE_PURPOSES) {
      const col = INSTALLED_COLUMN[purpose] as string;
      const rows = await db.all(`SELECT ${col} AS key_id, count(*) AS n FROM ${db.table('devices')} WHERE ${col} IS NOT NULL GROUP BY ${col}`);
      for (const r of rows) counts.set(String(r['key_id']), Number(r['n']));
    }
    const orgTotals = new Map<string, number>();
    const out: ExposureCount[] = [];
    for (const k of keys) {
      const ps = await this.#portfoliosOf(db, k.organisation);
      const p = ps.find((x) => x.id === k.portfolioId);
      const wholeEstate = p !== undefined && wholeEstateOf(p).includes(k.purpose) && current(p, k.purpose) === k.keyId;
      let deviceCount = counts.get(k.keyId) ?? 0;
      if (wholeEstate) {
        if (!orgTotals.has(k.organisation)) {
          const r = await db.get(`SELECT count(*) AS n FROM ${db.table('devices')} WHERE organisation = ?`, [k.organisation]);
          orgTotals.set(k.organisation, Number(r?.['n'] ?? 0));
        }
        deviceCount = orgTotals.get(k.organisation) as number;
      }
      // A revoked or retired key that meters still trust is what a compromise leaves exposed: it
      // stays in the report until its last meter has been re-credentialed.
      if (k.state !== 'active' && k.state !== 'pending' && deviceCount === 0) continue;
      out.push(Object.freeze({ keyId: k.keyId, portfolioId: k.portfolioId, purpose: k.purpose, state: k.state, wholeEstate, deviceCount }));
    }
    return out.sort((a, b) => b.deviceCount - a.deviceCount || a.keyId.localeCompare(b.keyId));
  }

  /** The names of the further backends this store was opened with (`backends`), for `generateKey(…, { backend })`. */
  backendNames(): readonly string[] {
    return Object.freeze([...this.#backends.keys()]);
  }

  /** Backend keys no key row references (left by a transaction that never committed). */
  orphanHandles(): readonly string[] {
    return this.#orphans;
  }

  /** The head of the audit trail as committed. */
  auditHead(): Promise<TrailHead> {
    return this.#trail.head();
  }

  /** Verify the whole trail with the audit public key (and the batch MACs). */
  verifyTrail(): Promise<TrailVerification> {
    return verifyTrail(this.#db, { storeId: this.#storeId, publicKey: this.#auditPublicKey, macKey: this.#secrets.auditMacKey });
  }

  /**
   * Verify the store as an auditor would: the trail (seals, chain), the trail replayed (every use
   * with the active key its meter trusted), and every row against the replay: its MAC, its
   * content, and its `rev` (a row put back to an older authentic version has an older `rev` than
   * the last record that wrote it). Reads the estate in pages; holds the replayed state in memory.
   */
  async verifyStore(): Promise<{ readonly trail: TrailVerification; readonly findings: readonly RowFinding[] }> {
    this.#assertOpen();
    const db = this.#db;
    const replay = new TrailReplay();
    const findings: RowFinding[] = [];
    const add = (code: RowFinding['code'], row: string, message: string): void => {
      if (findings.length < 1000) findings.push({ code, row, message });
    };
    const macOk = (table: AuthTable, row: Row, name: string): boolean => {
      try {
        checkRow(this.#secrets.rowKey, this.#storeId, table, row, name);
        return true;
      } catch {
        add('ERR_KEYSTORE_ROW_TAMPERED', `${table}:${name}`, 'fails its MAC');
        return false;
      }
    };
    // A migrated store: the rows the migration wrote seed the replay, as they were written then.
    const migrated = await db.get(`SELECT seq, line FROM ${db.table('audit_records')} WHERE seq = 2`);
    const migratedAt = migrated && String(migrated['line']).includes('"type":"store.migrated"') ? 2 : 0;
    const seedKeys: [string, ReplayedKey][] = [];
    const seedPortfolios: [string, ReplayedPortfolio][] = [];
    const seedDevices: [string, ReplayedDevice][] = [];
    const seedOrgs: [string, number][] = [];
    if (migratedAt > 0) {
      // The rows as the migration wrote them (each still authenticated, with the migration's rev).
      for (let after = ''; ; ) {
        const page = await db.all(`SELECT tbl, name, row FROM ${db.table('migrated_rows')} WHERE tbl || '/' || name > ? ORDER BY tbl || '/' || name LIMIT 10000`, [after]);
        for (const m of page) {
          const table = String(m['tbl']) as AuthTable;
          const name = String(m['name']);
          let row: Row;
          try {
            row = JSON.parse(String(m['row'])) as Row;
          } catch {
            add('ERR_KEYSTORE_ROW_TAMPERED', `migrated:${table}:${name}`, 'is not a row');
            continue;
          }
          if (!(table in COLUMNS) || !macOk(table, row, `migrated ${name}`) || row['rev'] !== migratedAt) {
            if (row['rev'] !== migratedAt) add('ERR_KEYSTORE_ROW_TAMPERED', `migrated:${table}:${name}`, 'is not a row of the migration');
            continue;
          }
          if (table === 'organisations') seedOrgs.push([name, migratedAt]);
          else if (table === 'keys') {
            const k = row as KeyRow;
            seedKeys.push([k.key_id, { organisation: k.organisation, portfolioId: k.portfolio_id, purpose: k.purpose as KeyPurpose, state: k.state as KeyState, rev: migratedAt }]);
          } else if (table === 'portfolios') {
            const p = row as PortfolioRow;
            const cur: Partial<Record<KeyPurpose, string>> = {};
            for (const purpose of KEY_PURPOSES) if (current(p, purpose) !== undefined) cur[purpose] = current(p, purpose) as string;
            seedPortfolios.push([`${p.organisation}/${p.id}`, { wholeEstate: wholeEstateOf(p), current: cur, rev: migratedAt }]);
          } else if (table === 'devices') {
            const d = row as DeviceRow;
            const inst: Partial<Record<KeyPurpose, string>> = {};
            for (const purpose of DEVICE_PURPOSES) if (installed(d, purpose) !== undefined) inst[purpose] = installed(d, purpose) as string;
            seedDevices.push([`${d.organisation}/${d.device}`, { portfolioId: d.portfolio_id, installed: inst, rev: migratedAt }]);
          }
        }
        if (page.length < 10000) break;
        const last = page[page.length - 1] as Row;
        after = `${String(last['tbl'])}/${String(last['name'])}`;
      }
      replay.seed({ organisations: seedOrgs, keys: seedKeys, portfolios: seedPortfolios, devices: seedDevices });
    }
    // Requests and approvals: each kept beside the trail, bound by its hash in a record, and
    // signed by an operator the trail added before.
    const operatorKeys = new Map<string, Uint8Array>();
    const signed: { seq: number; kind: 'request' | 'approval'; operatorId: string; sha256: string; proposalId?: string }[] = [];
    let accessInitialised = 0;
    // Each operator's row as the trail wrote it: its key and grants (added), removed, and the
    // counter of the last request it made (authorised: in the record; a proposal: in its kept request).
    const operators = new Map<string, { publicKey: string; grantsSha256: string; removed: boolean; counter: string | { fromRequestAt: number }; rev: number }>();
    const trail = await verifyTrail(db, { storeId: this.#storeId, publicKey: this.#auditPublicKey, macKey: this.#secrets.auditMacKey }, (r) => {
      replay.apply(r);
      if (r.type === 'access.initialised') accessInitialised = r.seq;
      if (r.type === 'operator.added') operators.set(r.operatorId, { publicKey: r.publicKey, grantsSha256: r.grantsSha256, removed: false, counter: '0', rev: r.seq });
      else if (r.type === 'operator.removed') {
        const o = operators.get(r.operatorId);
        if (o) Object.assign(o, { removed: true, rev: r.seq });
      } else if (r.type === 'operator.authorised') {
        const o = operators.get(r.operatorId);
        if (o) Object.assign(o, { counter: String(r.counter), rev: r.seq });
      } else if (r.type === 'proposal.created') {
        const o = operators.get(r.proposer);
        if (o) Object.assign(o, { counter: { fromRequestAt: r.seq }, rev: r.seq });
      }
      if (r.type === 'operator.added') operatorKeys.set(r.operatorId, new Uint8Array(Buffer.from(r.publicKey, 'hex')));
      else if (r.type === 'operator.authorised' || r.type === 'proposal.created') {
        signed.push({ seq: r.seq, kind: 'request', operatorId: r.type === 'operator.authorised' ? r.operatorId : r.proposer, sha256: r.requestSha256 });
      } else if (r.type === 'proposal.approved') signed.push({ seq: r.seq, kind: 'approval', operatorId: r.approverId, sha256: r.approvalSha256, proposalId: r.proposalId });
    });
    for (const f of replay.findings) add('ERR_AUDIT_TAMPERED', `record:${String(f.seq)}`, f.message);
    // The meta row names the ceremony's record, if any (what open relies on).
    const metaRow = await db.get(`SELECT * FROM ${db.table('meta')} WHERE id = 1`);
    if (metaRow && macOk('meta', metaRow, 'the store') && Number(metaRow['access_seq']) !== accessInitialised) {
      add(accessInitialised > Number(metaRow['access_seq']) ? 'ERR_KEYSTORE_METADATA_ROLLBACK' : 'ERR_KEYSTORE_ROW_TAMPERED', 'meta:1', `names record ${String(metaRow['access_seq'])} as the ceremony; the trail's is ${accessInitialised}`);
    }
    // Access control, once initialised, cannot be lifted by deleting its row (and its index entry).
    if (accessInitialised > 0) {
      const a = await db.get(`SELECT * FROM ${db.table('access')} WHERE id = 1`);
      if (!a) add('ERR_KEYSTORE_ROW_TAMPERED', 'access:1', `record ${accessInitialised} initialised access control; the policy row is gone`);
      else macOk('access', a, 'the policy');
    }
    for (const x of signed) {
      const row =
        x.kind === 'request'
          ? await db.get(`SELECT request AS json FROM ${db.table('signed_requests')} WHERE seq = ?`, [x.seq])
          : await db.get(`SELECT approval AS json FROM ${db.table('approvals')} WHERE proposal_id = ? AND approver_id = ?`, [x.proposalId as string, x.operatorId]);
      const key = operatorKeys.get(x.operatorId);
      let value: unknown;
      try {
        value = row ? JSON.parse(String(row['json'])) : undefined;
      } catch {
        value = undefined;
      }
      const ok =
        row !== undefined &&
        key !== undefined &&
        sha256Upper(String(row['json'])) === x.sha256 &&
        (x.kind === 'request' ? operatorRequestSignatureValid(value, key) : approvalSignatureValid(value, key)) &&
        (value as { operatorId?: unknown; approverId?: unknown }) !== undefined &&
        (x.kind === 'request' ? (value as { operatorId?: unknown }).operatorId : (value as { approverId?: unknown }).approverId) === x.operatorId;
      if (!ok) add('ERR_AUDIT_TAMPERED', `record:${x.seq}`, `the signed ${x.kind} of operator ${x.operatorId} is missing, is not the one recorded, or its signature does not verify`);
    }
    const compare = (table: AuthTable, name: string, row: Row, expectedRev: number | undefined, same: boolean): void => {
      if (!macOk(table, row, name)) return;
      if (expectedRev === undefined) return add('ERR_KEYSTORE_ROW_TAMPERED', `${table}:${name}`, 'no record of the trail wrote this row');
      const rev = Number(row['rev']);
      if (rev < expectedRev) return add('ERR_KEYSTORE_METADATA_ROLLBACK', `${table}:${name}`, `is the version of record ${rev}; record ${expectedRev} wrote it since`);
      if (rev !== expectedRev || !same) add('ERR_KEYSTORE_ROW_TAMPERED', `${table}:${name}`, `is not what the trail wrote (rev ${rev}, the trail's ${expectedRev})`);
    };
    const seen = { keys: new Set<string>(), portfolios: new Set<string>(), devices: new Set<string>(), organisations: new Set<string>() };
    for (const o of (await db.all(`SELECT * FROM ${db.table('organisations')}`)) as OrgRow[]) {
      seen.organisations.add(o.entity_id);
      compare('organisations', o.entity_id, o, replay.organisations.get(o.entity_id), true);
    }
    for (const k of (await db.all(`SELECT * FROM ${db.table('keys')}`)) as KeyRow[]) {
      seen.keys.add(k.key_id);
      const e = replay.keys.get(k.key_id);
      compare('keys', k.key_id, k, e?.rev, e !== undefined && e.state === k.state && e.portfolioId === k.portfolio_id && e.purpose === k.purpose);
    }
    for (const p of (await db.all(`SELECT * FROM ${db.table('portfolios')}`)) as PortfolioRow[]) {
      const name = `${p.organisation}/${p.id}`;
      seen.portfolios.add(name);
      const e = replay.portfolios.get(name);
      compare('portfolios', name, p, e?.rev, e !== undefined && KEY_PURPOSES.every((x) => current(p, x) === e.current[x]));
    }
    for (let after = ''; ; ) {
      const rows = (await db.all(`SELECT * FROM ${db.table('devices')} WHERE organisation || '/' || device > ? ORDER BY organisation || '/' || device LIMIT 10000`, [after])) as DeviceRow[];
      for (const d of rows) {
        const name = `${d.organisation}/${d.device}`;
        seen.devices.add(name);
        const e = replay.devices.get(name);
        compare('devices', name, d, e?.rev, e !== undefined && e.portfolioId === d.portfolio_id && DEVICE_PURPOSES.every((x) => installed(d, x) === e.installed[x]));
      }
      if (rows.length < 10000) break;
      after = `${(rows[rows.length - 1] as DeviceRow).organisation}/${(rows[rows.length - 1] as DeviceRow).device}`;
    }
    const seenOperators = new Set<string>();
    for (const o of await db.all(`SELECT * FROM ${db.table('operators')}`)) {
      const id = String(o['operator_id']);
      seenOperators.add(id);
      const e = operators.get(id);
      let counter = e?.counter;
      if (counter !== undefined && typeof counter !== 'string') {
        const kept = await db.get(`SELECT request FROM ${db.table('signed_requests')} WHERE seq = ?`, [counter.fromRequestAt]);
        try {
          counter = String((JSON.parse(String(kept?.['request'])) as { counter?: unknown }).counter);
        } catch {
          counter = undefined;
        }
      }
      const same = e !== undefined && String(o['public_key']) === e.publicKey && sha256Upper(String(o['grants'])) === e.grantsSha256 && (o['removed'] === 1) === e.removed && String(o['last_counter']) === counter;
      compare('operators', id, o, e?.rev, same);
    }
    for (const [name] of operators) if (!seenOperators.has(name)) add('ERR_KEYSTORE_ROW_TAMPERED', `operators:${name}`, 'the trail wrote it; the row is gone');
    // Rows the trail wrote that are gone.
    for (const [name] of replay.keys) if (!seen.keys.has(name)) add('ERR_KEYSTORE_ROW_TAMPERED', `keys:${name}`, 'the trail wrote it; the row is gone');
    for (const [name] of replay.portfolios) if (!seen.portfolios.has(name)) add('ERR_KEYSTORE_ROW_TAMPERED', `portfolios:${name}`, 'the trail wrote it; the row is gone');
    for (const [name] of replay.devices) if (!seen.devices.has(name)) add('ERR_KEYSTORE_ROW_TAMPERED', `devices:${name}`, 'the trail wrote it; the row is gone');
    for (const [name] of replay.organisations) if (!seen.organisations.has(name)) add('ERR_KEYSTORE_ROW_TAMPERED', `organisations:${name}`, 'the trail wrote it; the row is gone');
    return Object.freeze({ trail, findings: Object.freeze(findings) });
  }

  /** Wait until every use recorded so far is committed. */
  async flush(): Promise<void> {
    this.#assertOpen();
    await this.#trail.flush();
  }

  /** Wait for pending uses, then close the database. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    // Refuse new work first; then let the uses already under way reach the trail.
    this.#closed = true;
    await this.#trail.close();
    // The last head, to the anchor, before the database goes: a close that could not anchor it
    // says so (the trail is whole; the anchor is behind it until the next open checkpoints).
    let uncovered: SmkiError | undefined;
    try {
      if (this.#checkpointer !== undefined) {
        await this.#checkpointer.close();
        const head = await this.#trail.head();
        if (this.#checkpointer.lastCheckpoint?.seq !== head.seq) uncovered = this.#checkpointer.lastError ?? new SmkiError('ERR_AUDIT_ANCHOR_UNAVAILABLE', 'the final audit checkpoint did not reach the anchor', {});
      }
    } finally {
      await this.#db.close();
    }
    if (uncovered !== undefined) throw uncovered;
  }
}

// ---------------------------------------------------------------------------------------------

async function writeRow(t: SqlTx, db: SqlDriver, key: Buffer, storeId: string, table: AuthTable, row: Row): Promise<void> {
  const mac = rowMac(key, storeId, table, row);
  const values: SqlValue[] = [...COLUMNS[table].map((c) => (row[c] === undefined ? null : (row[c] as SqlValue))), mac];
  await t.run(upsertSql(db.table(table), table, PRIMARY_KEY[table]), values);
}

function usable(key: KeyRow): void {
  if (key.state === 'revoked') fail('ERR_KEY_REVOKED', `key ${key.key_id} is revoked`, key.key_id);
  if (key.state === 'retired') fail('ERR_KEY_RETIRED', `key ${key.key_id} is retired`, key.key_id);
  if (key.state !== 'active') fail('ERR_KEY_NOT_ACTIVE', `key ${key.key_id} is ${key.state}`, key.key_id);
}

function portfolioInfoOf(p: PortfolioRow, devices: readonly Eui64[]): PortfolioInfo {
  const cur: Partial<Record<KeyPurpose, string>> = {};
  for (const purpose of KEY_PURPOSES) {
    const k = current(p, purpose);
    if (k !== undefined) cur[purpose] = k;
  }
  return Object.freeze({ organisation: p.organisation as Eui64, id: p.id, name: p.name, wholeEstate: Object.freeze(wholeEstateOf(p)), current: Object.freeze(cur), devices: Object.freeze([...devices]) });
}



function useEvent(operation: 'sign' | 'keyAgreement', key: KeyRow, device: Eui64, use: UseContext): AuditEvent & { keyId: string } {
  // Built field by field, in the same order (no spread of temporaries: this runs for every signature).
  const e: Record<string, unknown> = { type: 'key.used', operation, keyId: key.key_id, portfolioId: key.portfolio_id, device };
  if (use.messageCode !== undefined) e['messageCode'] = use.messageCode;
  if (use.counter !== undefined) e['counter'] = use.counter;
  return e as AuditEvent & { keyId: string };
}

/** The further backends, checked: each a key backend under a name of {@link BACKEND_NAME}. */
function namedBackends(backends: Readonly<Record<string, KeyBackend>> | undefined): ReadonlyMap<string, KeyBackend> {
  if (backends === undefined) return new Map();
  if (typeof backends !== 'object' || backends === null || Array.isArray(backends)) fail('ERR_INVALID_ARGUMENT', 'backends must be an object of named key backends', 'backends');
  const out = new Map<string, KeyBackend>();
  for (const [name, b] of Object.entries(backends)) {
    if (!BACKEND_NAME.test(name)) fail('ERR_INVALID_ARGUMENT', `backend name ${JSON.stringify(name)} is not 1-32 lower-case letters, digits or '-' starting with a letter`, 'backends');
    if (typeof b !== 'object' || b === null || typeof b.generateKey !== 'function' || typeof b.sign !== 'function' || typeof b.listHandles !== 'function') {
      fail('ERR_INVALID_ARGUMENT', `backend ${name} is not a key backend`, 'backends');
    }
    out.set(name, b);
  }
  return out;
}

/** How a bound session names a message: the canonical EUI-64 and the upper-case SHA-256. */
function messageKey(device: string, sha256: string): string {
  return `${parseEui64(device)} ${sha256.toUpperCase()}`;
}
