/**
 * The state directory of `smki`: what `smki init` creates and every other command opens.
 *
 * ```text
 * <dir>/smki.json            configuration (parties, backends, thresholds); no secret
 * <dir>/ca/                  the test hierarchy: root, organisation CA, device CA
 *                            (certificate PEM; private key as encrypted PKCS#8, PBES2)
 * <dir>/certs/organisation/  organisation certificates issued here (the validator's trust)
 * <dir>/certs/device/        device certificates issued here
 * <dir>/crl/                 the organisation CA's CRL and the root's ARL, and what they list
 * <dir>/dcc/                 the Access Control Broker's key-agreement key and certificate; the
 *                            lab DCC's DUIS XML-signing key and certificate (role 137)
 * <dir>/keystore/            the User's keys per portfolio (@smki/keystore): encrypted files
 *                            or references to an HSM; keystore.db (SQLite: metadata, operators,
 *                            proposals, the sealed audit trail); audit-public-key.hex (what the
 *                            trail is verified with)
 * <dir>/keystore-backends/   the key store's further backends, one directory per name (file
 *                            backends: encrypted key files under the store passphrase), made by
 *                            `smki recovery plan --route compromise --backend <name>`
 * <dir>/state/               counters, device registry, firmware allowlist (SQLite), unless
 *                            they are in PostgreSQL (libpq environment); the DUIS stores:
 *                            duis-user.db (the supplier's request id counters) and
 *                            duis-dcc.db (the DCC side's request id anti-replay); recovery.db
 *                            (the recovery plans of `smki recovery`, always SQLite)
 * <dir>/recovery-party/     the Recovery party's own key store (`smki recovery party init`;
 *                            or a directory given there): its own passphrase and operators
 * <dir>/log/                 the decision logs (one directory per validator process) and the
 *                            sealed log key
 * ```
 * @module
 * @internal
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createKeyAgreement, createKeySigner, parseEui64, SmkiError, type Eui64, type KeyAgreement, type Signer } from '@smki/core';
import {
  certificateToPem,
  crlToPem,
  issueCrl,
  parseCertificate,
  parseCrl,
  type CertificateAuthority,
  type SmkiCertificate,
  type SmkiCrl,
  type SmkiHierarchy,
} from '@smki/pki';
import {
  PostgresDeviceRegistry,
  PostgresFirmwareAllowlist,
  PostgresStateStore,
  SqliteDeviceRegistry,
  SqliteFirmwareAllowlist,
  SqliteStateStore,
  type DeviceRegistry,
  type FirmwareAllowlist,
  type StateStore,
} from '@smki/store';
import { FileKeyBackend, KeyStore, Pkcs11KeyBackend, type KeyBackend } from '@smki/keystore';
import type { ValidatorOptions } from '@smki/validator';
import { writeFileAtomic } from './files.js';
import { withHint } from './exit.js';
import { hsmPin, passphrase as readPassphrase, seal, unseal, type Sealed } from './secrets.js';
import type { CliIo } from './io.js';

/** The key store's audit public key in the state directory (under keystore/): hex of the 65-byte point. */
export const AUDIT_PUBLIC_KEY_FILE = 'audit-public-key.hex';

/** Where the key store's further backends are kept (one directory per name). */
export const FURTHER_BACKENDS_DIR = 'keystore-backends';
/** What a further backend may be named (the key store's rule: 1-32 lower-case letters, digits or `-`, starting with a letter). */
const FURTHER_BACKEND_NAME = /^[a-z][a-z0-9-]{0,31}$/;

/** The configuration file's name. */
export const CONFIG_FILE = 'smki.json';
/** The configuration's format tag. */
export const CONFIG_FORMAT = 'smki-state/1';

/** An anomaly threshold per message code (4 hex digits). */
export interface ThresholdConfig {
  readonly limit: number;
  readonly windowMs: number;
}

/**
 * The DUIS set-up of a state directory (`smki init` makes it; a directory made before has none,
 * and `smki duis provision` adds it).
 */
export interface DuisConfig {
  /** The lab DCC's entity id: its XML-signing certificate (role 137) signs Responses. */
  readonly dcc: Eui64;
  /** The supplier's portfolio holding its XML-signing key (role 135): an organisation key no meter trusts. */
  readonly xmlPortfolio: string;
}

/** `smki.json`. */
export interface StateConfig {
  readonly format: typeof CONFIG_FORMAT;
  readonly environment: 'test';
  readonly createdAt: string;
  readonly parties: { readonly supplier: Eui64; readonly networkOperator: Eui64; readonly acb: Eui64 };
  readonly keystore: { readonly backend: 'file' } | { readonly backend: 'pkcs11'; readonly module: string; readonly tokenLabel: string };
  readonly stores: { readonly kind: 'sqlite' } | { readonly kind: 'postgres'; readonly schema: string };
  /** Anomaly thresholds by message code (`"0050"`) for every User. */
  readonly anomalyThresholds: Readonly<Record<string, ThresholdConfig>>;
  /** Whether originator counters are milliseconds since the epoch (the clock window applies). */
  readonly clockCounters: boolean;
  /** DUIS: the lab DCC and where the supplier's XML-signing key is (absent from directories made before). */
  readonly duis?: DuisConfig;
  /**
   * The Recovery party (`smki recovery party init`): its own key store's directory (relative to
   * the state directory when inside it) and its EUI-64. Its passphrase is its own, never kept here.
   */
  readonly recoveryParty?: { readonly dir: string; readonly entityId: Eui64 };
}

/** The two DUIS state stores: the User's request counters, the DCC side's anti-replay of request ids. */
export type DuisSide = 'user' | 'dcc';

/** Options every command that opens the state takes. */
export interface StateOptions {
  readonly dir: string;
  readonly passphraseFile?: string;
  readonly pinFile?: string;
}

const CA_NAMES = ['root', 'organisation-ca', 'device-ca'] as const;
type CaName = (typeof CA_NAMES)[number];
/** The AAD label of the sealed decision-log key. */
const LOG_KEY_LABEL = 'smki decision log key v1';

function readJson<T>(path: string, what: string): T {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    throw new SmkiError('ERR_CLI_STATE_INVALID', `${what} is missing or not JSON`, { detail: path });
  }
}

/** Write a private key as encrypted PKCS#8 PEM (PBES2, AES-256-CBC; RFC 8018) under the passphrase. */
export function writeEncryptedKey(path: string, key: KeyObject, pass: string): void {
  writeFileAtomic(path, key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: pass }) as string);
}

/** Read an encrypted PKCS#8 PEM key. */
export function readEncryptedKey(path: string, pass: string): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch {
    throw new SmkiError('ERR_CLI_STATE_INVALID', 'a private key of the state directory is missing', { detail: path });
  }
  try {
    return createPrivateKey({ key: pem, format: 'pem', passphrase: pass });
  } catch {
    throw new SmkiError('ERR_KEYSTORE_WRONG_PASSPHRASE', 'the passphrase does not open a private key of the state directory', { detail: path });
  }
}

/** The revocation state the CRLs are issued from. */
export interface RevocationState {
  readonly crlNumber: string;
  readonly entries: readonly { readonly serialNumber: string; readonly revocationDate: string; readonly reason?: string; readonly issuer: 'organisation-ca' | 'root' }[];
}

/** An opened state directory; components open on first use and close together. */
export class State {
  readonly dir: string;
  #config: StateConfig;
  readonly io: CliIo;
  readonly #options: StateOptions;
  #passphrase: string | undefined;
  #hierarchy: SmkiHierarchy | undefined;
  #keystore: Promise<KeyStore> | undefined;
  #backend: KeyBackend | undefined;
  #further: KeyBackend[] = [];
  #stores: Promise<{ store: StateStore; registry: DeviceRegistry; firmware: FirmwareAllowlist }> | undefined;
  readonly #duisStores = new Map<DuisSide, Promise<StateStore>>();

  private constructor(dir: string, config: StateConfig, io: CliIo, options: StateOptions) {
    this.dir = dir;
    this.#config = config;
    this.io = io;
    this.#options = options;
  }

  /**
   * Open an initialised state directory (reads only the configuration; nothing else yet).
   * @throws SmkiError `ERR_CLI_STATE_INVALID`
   */
  static open(io: CliIo, options: StateOptions): State {
    const dir = resolve(io.cwd, options.dir);
    const path = join(dir, CONFIG_FILE);
    if (!existsSync(path)) {
      throw new SmkiError('ERR_CLI_STATE_INVALID', `${dir} is not an smki state directory (no ${CONFIG_FILE})`, { detail: dir });
    }
    const config = readJson<StateConfig>(path, CONFIG_FILE);
    if (config?.format !== CONFIG_FORMAT) throw new SmkiError('ERR_CLI_STATE_INVALID', `${CONFIG_FILE} is not of format ${CONFIG_FORMAT}`, { detail: path });
    return new State(dir, config, io, options);
  }

  /** Create the state directory's files for a fresh configuration (used by `smki init`). */
  static create(io: CliIo, options: StateOptions, config: StateConfig): State {
    const dir = resolve(io.cwd, options.dir);
    if (existsSync(dir) && readdirSync(dir).length > 0) throw new SmkiError('ERR_CLI_STATE_EXISTS', `${dir} is not empty`, { detail: dir });
    const state = new State(dir, config, io, options);
    // The secrets are read before anything is written: a missing one leaves no half-made directory.
    void state.passphrase;
    if (config.keystore.backend === 'pkcs11') hsmPin(io, options.pinFile);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(join(dir, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`, 0o644);
    return state;
  }

  /** The configuration (`smki.json`). */
  get config(): StateConfig {
    return this.#config;
  }

  /** Replace the configuration (written atomically; no secret in it). */
  writeConfig(config: StateConfig): void {
    writeFileAtomic(this.path(CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`, 0o644);
    this.#config = config;
  }

  /**
   * The DUIS set-up.
   * @throws SmkiError `ERR_CLI_STATE_INVALID` for a directory made before DUIS (with what to do)
   */
  duisConfig(): DuisConfig {
    const d = this.config.duis;
    if (d === undefined) {
      throw withHint(
        new SmkiError('ERR_CLI_STATE_INVALID', `${this.dir} has no DUIS set-up (no duis in ${CONFIG_FILE}: it was made before smki had DUIS commands)`, { detail: `${CONFIG_FILE}: duis` }),
        "run `smki duis provision` to add the supplier's XML-signing key and the lab DCC's; every other command works without them",
      );
    }
    return d;
  }

  /**
   * The lab DCC's XML-signing key and certificate (role 137), kept like the ACB's key.
   * @throws SmkiError `ERR_CLI_STATE_INVALID` (no DUIS set-up, or its files missing), `ERR_KEYSTORE_WRONG_PASSPHRASE`
   */
  dccXmlSigning(): { signer: Signer; certificate: SmkiCertificate; entity: Eui64 } {
    const { dcc } = this.duisConfig();
    const cert = this.path('dcc', 'xml-signing.pem');
    if (!existsSync(cert)) throw new SmkiError('ERR_CLI_STATE_INVALID', "the lab DCC's XML-signing certificate dcc/xml-signing.pem is missing: restore it from a backup", { detail: cert });
    return {
      signer: createKeySigner(readEncryptedKey(this.path('dcc', 'xml-signing.key.pem'), this.passphrase)),
      certificate: parseCertificate(readFileSync(cert, 'utf8')),
      entity: dcc,
    };
  }

  /**
   * A DUIS state store, each of its own (never the GBCS validator's: request ids and GBCS counters
   * are separate series under the same key): `state/duis-user.db` and `state/duis-dcc.db`, or,
   * with PostgreSQL, the schemas `<schema>_duis_user` and `<schema>_duis_dcc`.
   */
  duisStore(side: DuisSide): Promise<StateStore> {
    let p = this.#duisStores.get(side);
    if (p === undefined) {
      p = openDuisStore(this.config, this.dir, side);
      this.#duisStores.set(side, p);
    }
    return p;
  }

  /** A path inside the state directory. */
  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  /** The store passphrase (read once). */
  get passphrase(): string {
    this.#passphrase ??= readPassphrase(this.io, this.#options.passphraseFile);
    return this.#passphrase;
  }

  /** Write the hierarchy's certificates and encrypted keys (init). */
  saveHierarchy(h: SmkiHierarchy, keys: Readonly<Record<CaName, KeyObject>>): void {
    const cas: Record<CaName, CertificateAuthority> = { root: h.root, 'organisation-ca': h.organisationCa, 'device-ca': h.deviceCa };
    for (const name of CA_NAMES) {
      writeFileAtomic(this.path('ca', `${name}.pem`), certificateToPem(cas[name].certificate), 0o644);
      writeEncryptedKey(this.path('ca', `${name}.key.pem`), keys[name], this.passphrase);
    }
    this.#hierarchy = h;
  }

  /** The test hierarchy with its signers. */
  hierarchy(): SmkiHierarchy {
    if (this.#hierarchy === undefined) {
      const ca = (name: CaName): CertificateAuthority => ({
        certificate: parseCertificate(readFileSync(this.path('ca', `${name}.pem`), 'utf8')),
        signer: createKeySigner(readEncryptedKey(this.path('ca', `${name}.key.pem`), this.passphrase)),
      });
      this.#hierarchy = { root: ca('root'), organisationCa: ca('organisation-ca'), deviceCa: ca('device-ca') };
    }
    return this.#hierarchy;
  }

  /** The CA certificates without opening their keys (no passphrase needed). */
  caCertificates(): SmkiCertificate[] {
    return CA_NAMES.map((n) => parseCertificate(readFileSync(this.path('ca', `${n}.pem`), 'utf8')));
  }

  /** Keep an issued certificate (organisation ones are the validator's trust). */
  saveCertificate(c: SmkiCertificate): string {
    const kind = c.kind === 'device' ? 'device' : 'organisation';
    const file = this.path('certs', kind, `${c.serialNumber}.pem`);
    writeFileAtomic(file, certificateToPem(c), 0o644);
    return file;
  }

  /** Every organisation certificate issued here. */
  organisationCertificates(): SmkiCertificate[] {
    const dir = this.path('certs', 'organisation');
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith('.pem'))
      .sort()
      .map((f) => parseCertificate(readFileSync(join(dir, f), 'utf8')));
  }

  /** A certificate issued here, by serial number (organisation first, then device). */
  certificateBySerial(serial: string): SmkiCertificate | undefined {
    const s = serial.toUpperCase().replace(/^0X/, '');
    for (const kind of ['organisation', 'device']) {
      const file = this.path('certs', kind, `${s}.pem`);
      if (existsSync(file)) return parseCertificate(readFileSync(file, 'utf8'));
    }
    for (const c of this.caCertificates()) if (c.serialNumber.toUpperCase() === s) return c;
    return undefined;
  }

  /**
   * What the CRLs list. `crl/revoked.json` is what the next lists are issued from; it is held
   * against the current signed lists, so that deleting an entry from it (or putting back an older
   * copy) cannot quietly un-revoke a certificate at the next `crl issue`.
   * @throws SmkiError `ERR_CLI_STATE_INVALID` when it omits a revocation the signed lists carry, or its number is not theirs
   */
  revocation(): RevocationState {
    const file = this.path('crl', 'revoked.json');
    const rev: RevocationState = existsSync(file) ? readJson<RevocationState>(file, 'crl/revoked.json') : { crlNumber: '0', entries: [] };
    const lists: [string, 'organisation-ca' | 'root'][] = [
      ['organisation-ca.crl.pem', 'organisation-ca'],
      ['root.arl.pem', 'root'],
    ];
    for (const [name, issuer] of lists) {
      const p = this.path('crl', name);
      // `smki init` issues both lists: a list missing later was removed, and issuing from the
      // unsigned state alone could drop a revocation. Put the lists back from a backup.
      if (!existsSync(p)) throw new SmkiError('ERR_CLI_STATE_INVALID', `the signed ${name} is missing: restore it from a backup (the revocation state alone is not trusted)`, { detail: name });
      const crl = parseCrl(readFileSync(p, 'utf8'));
      // Equal, or one ahead: issueCrls writes the state before the lists, and a crash between the
      // two leaves it one ahead (the next `crl issue` issues the lists again).
      const n = BigInt(rev.crlNumber);
      if (crl.crlNumber !== undefined && n !== crl.crlNumber && n !== crl.crlNumber + 1n) {
        throw new SmkiError('ERR_CLI_STATE_INVALID', `crl/revoked.json is at number ${rev.crlNumber} but the signed ${name} is number ${crl.crlNumber}: it was altered or restored`, { detail: name });
      }
      const listed = new Set(rev.entries.filter((e) => e.issuer === issuer).map((e) => e.serialNumber.toUpperCase()));
      for (const serial of crl.revoked.keys()) {
        if (!listed.has(serial.toUpperCase())) {
          throw new SmkiError('ERR_CLI_STATE_INVALID', `crl/revoked.json omits serial ${serial}, which the signed ${name} revokes: it was altered`, { detail: serial });
        }
      }
    }
    return rev;
  }

  /**
   * Issue the next CRL (organisation CA) and ARL (root) from `state`, valid for `hours`, and keep them.
   * The revocation state is written first, then both lists: a crash leaves the old lists or the
   * new state with old lists, and the next `crl issue` issues them again.
   */
  async issueCrls(state: RevocationState, hours = 24 * 7): Promise<SmkiCrl[]> {
    const h = this.hierarchy();
    const number = BigInt(state.crlNumber) + 1n;
    const next: RevocationState = { crlNumber: number.toString(), entries: state.entries };
    writeFileAtomic(this.path('crl', 'revoked.json'), `${JSON.stringify(next, null, 2)}\n`);
    const now = new Date();
    const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000 - 60_000);
    const nextUpdate = new Date(thisUpdate.getTime() + hours * 3600_000);
    const of = (issuer: 'organisation-ca' | 'root') =>
      next.entries.filter((e) => e.issuer === issuer).map((e) => ({ serialNumber: e.serialNumber, revocationDate: new Date(e.revocationDate), ...(e.reason ? { reason: e.reason as 'keyCompromise' } : {}) }));
    const crl = await issueCrl({ issuer: h.organisationCa, crlNumber: number, kind: 'crl', revoked: of('organisation-ca'), thisUpdate, nextUpdate });
    const arl = await issueCrl({ issuer: h.root, crlNumber: number, kind: 'arl', revoked: of('root'), thisUpdate, nextUpdate });
    writeFileAtomic(this.path('crl', 'organisation-ca.crl.pem'), crlToPem(crl), 0o644);
    writeFileAtomic(this.path('crl', 'root.arl.pem'), crlToPem(arl), 0o644);
    return [crl, arl];
  }

  /** The current CRL and ARL. */
  crls(): SmkiCrl[] {
    return ['organisation-ca.crl.pem', 'root.arl.pem'].map((f) => {
      const p = this.path('crl', f);
      if (!existsSync(p)) throw new SmkiError('ERR_CLI_STATE_INVALID', 'a CRL of the state directory is missing: run `smki crl issue`', { detail: p });
      return parseCrl(readFileSync(p, 'utf8'));
    });
  }

  /** Everything the validator trusts: the hierarchy, the organisation certificates, the CRLs. */
  trust(): { certificates: SmkiCertificate[]; crls: SmkiCrl[] } {
    return { certificates: [...this.caCertificates(), ...this.organisationCertificates()], crls: this.crls() };
  }

  /** The key backend (file, or PKCS#11 with the PIN from the environment or a file). */
  async #openBackend(): Promise<KeyBackend> {
    const k = this.config.keystore;
    if (k.backend === 'pkcs11') {
      return Pkcs11KeyBackend.open({ module: k.module, tokenLabel: k.tokenLabel, pin: hsmPin(this.io, this.#options.pinFile) });
    }
    return FileKeyBackend.open({ directory: this.path('keystore'), passphrase: this.passphrase });
  }

  /** The names of the key store's further backends (directories under keystore-backends/). */
  furtherBackendNames(): string[] {
    const dir = this.path(FURTHER_BACKENDS_DIR);
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((n) => FURTHER_BACKEND_NAME.test(n) && statSync(join(dir, n)).isDirectory())
      .sort();
  }

  /**
   * Add a further backend by name (a file backend in keystore-backends/<name>/), before the key
   * store is opened; an existing one is kept. Every later `smki` command opens it with the store,
   * so the keys made in it stay usable.
   * @throws SmkiError `ERR_CLI_USAGE` (a name the key store refuses)
   */
  addFurtherBackend(name: string): void {
    if (!FURTHER_BACKEND_NAME.test(name)) throw new SmkiError('ERR_CLI_USAGE', 'a backend name is 1-32 lower-case letters, digits or -, starting with a letter', { detail: name.slice(0, 40) });
    if (this.#keystore !== undefined) throw new Error('addFurtherBackend: the key store is already open');
    mkdirSync(this.path(FURTHER_BACKENDS_DIR, name), { recursive: true, mode: 0o700 });
  }

  /** The User's key store (with its further backends, by name). */
  keystore(): Promise<KeyStore> {
    this.#keystore ??= (async () => {
      const backend = await this.#openBackend();
      this.#backend = backend;
      try {
        const backends: Record<string, KeyBackend> = {};
        for (const name of this.furtherBackendNames()) {
          const b = await FileKeyBackend.open({ directory: this.path(FURTHER_BACKENDS_DIR, name), passphrase: this.passphrase });
          this.#further.push(b);
          backends[name] = b;
        }
        return await KeyStore.open({ directory: this.path('keystore'), backend, passphrase: this.passphrase, ...(this.#further.length > 0 ? { backends } : {}) });
      } catch (e) {
        await backend.close();
        for (const b of this.#further.splice(0)) await b.close().catch(() => undefined);
        this.#backend = undefined;
        this.#keystore = undefined;
        if (e instanceof SmkiError && e.code === 'ERR_KEYSTORE_MIGRATION_REQUIRED') {
          throw withHint(e, `the key store in ${this.path('keystore')} was made by an earlier release: run \`smki keystore migrate\` (once; it keeps the keys and the trail's head), then retry`);
        }
        throw e;
      }
    })();
    return this.#keystore;
  }

  /**
   * The key store's backend and passphrase without opening the store (for `smki keystore
   * migrate`); the caller closes the backend.
   */
  async keystoreBackend(): Promise<KeyBackend> {
    return this.#openBackend();
  }

  /** Where the key store's audit public key is kept (hex of the 65-byte point; an auditor keeps a copy of their own). */
  auditPublicKeyPath(): string {
    return this.path('keystore', AUDIT_PUBLIC_KEY_FILE);
  }

  /** Write the key store's audit public key (when the store is created or migrated). */
  writeAuditPublicKey(key: Uint8Array): void {
    writeFileAtomic(this.auditPublicKeyPath(), `${Buffer.from(key).toString('hex').toUpperCase()}\n`, 0o644);
  }

  /** Connection options of the PostgreSQL stores: the libpq environment, the configured schema. */
  postgresOptions(): { schema: string } {
    const s = this.config.stores;
    if (s.kind !== 'postgres') throw new SmkiError('ERR_CLI_STATE_INVALID', 'the stores are not in PostgreSQL', {});
    return { schema: s.schema };
  }

  /** Counters, registry and firmware allowlist. */
  stores(): Promise<{ store: StateStore; registry: DeviceRegistry; firmware: FirmwareAllowlist }> {
    this.#stores ??= openStores(this.config, this.dir);
    return this.#stores;
  }

  /** The decision log's key (sealed under the passphrase). */
  logKey(): Uint8Array {
    return unseal(this.passphrase, readJson<Sealed>(this.path('log', 'key.sealed.json'), 'log/key.sealed.json'), LOG_KEY_LABEL);
  }

  /** Make and seal a new decision-log key (init). */
  createLogKey(): void {
    writeFileAtomic(this.path('log', 'key.sealed.json'), `${JSON.stringify(seal(this.passphrase, randomBytes(32), LOG_KEY_LABEL))}\n`);
  }

  /** The ACB's key-agreement key and certificate. */
  acb(): { key: KeyAgreement; certificate: SmkiCertificate } {
    return {
      key: createKeyAgreement(readEncryptedKey(this.path('dcc', 'acb-ka.key.pem'), this.passphrase)),
      certificate: parseCertificate(readFileSync(this.path('dcc', 'acb-ka.pem'), 'utf8')),
    };
  }

  /** Every decision-log directory under log/ (one per validator process). */
  logDirs(): string[] {
    const dir = this.path('log');
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((d) => statSync(join(dir, d)).isDirectory())
      .sort()
      .map((d) => join(dir, d));
  }

  /** The anomaly threshold function of the configuration. */
  anomalyThreshold(): NonNullable<ValidatorOptions['anomalyThreshold']> {
    const t = this.config.anomalyThresholds;
    const map = new Map<number, ThresholdConfig>(Object.entries(t).map(([k, v]) => [parseInt(k, 16), v]));
    return (_user, messageCode) => map.get(messageCode);
  }

  /** Close whatever was opened. */
  async close(): Promise<void> {
    const errors: unknown[] = [];
    if (this.#keystore) {
      try {
        await (await this.#keystore).close();
      } catch (e) {
        errors.push(e);
      }
    }
    if (this.#backend) {
      try {
        await this.#backend.close();
      } catch (e) {
        errors.push(e);
      }
    }
    for (const b of this.#further.splice(0)) {
      try {
        await b.close();
      } catch (e) {
        errors.push(e);
      }
    }
    if (this.#stores) {
      try {
        const s = await this.#stores;
        await Promise.all([s.store.close(), s.registry.close(), s.firmware.close()]);
      } catch (e) {
        errors.push(e);
      }
    }
    for (const p of this.#duisStores.values()) {
      try {
        await (await p).close();
      } catch (e) {
        errors.push(e);
      }
    }
    this.#keystore = undefined;
    this.#backend = undefined;
    this.#stores = undefined;
    this.#duisStores.clear();
    if (errors.length > 0) throw errors[0];
  }
}

/** Open the three stores of a configuration (used in the CLI process and in its pool's workers). */
export async function openStores(config: StateConfig, dir: string): Promise<{ store: StateStore; registry: DeviceRegistry; firmware: FirmwareAllowlist }> {
  if (config.stores.kind === 'postgres') {
    const o = { schema: config.stores.schema };
    // The decision logs' records are kept in the database too (log_lines), with the counters.
    const store = await PostgresStateStore.open({ ...o, keepLogLines: true });
    try {
      const registry = await PostgresDeviceRegistry.open(o);
      try {
        return { store, registry, firmware: await PostgresFirmwareAllowlist.open(o) };
      } catch (e) {
        await registry.close();
        throw e;
      }
    } catch (e) {
      await store.close();
      throw e;
    }
  }
  mkdirSync(join(dir, 'state'), { recursive: true, mode: 0o700 });
  return {
    store: await SqliteStateStore.open({ path: join(dir, 'state', 'state.db') }),
    registry: await SqliteDeviceRegistry.open({ path: join(dir, 'state', 'registry.db') }),
    firmware: await SqliteFirmwareAllowlist.open({ path: join(dir, 'state', 'firmware.db') }),
  };
}

/** Open a DUIS state store of a configuration (SQLite file of its own, or a PostgreSQL schema of its own). */
export async function openDuisStore(config: StateConfig, dir: string, side: DuisSide): Promise<StateStore> {
  if (config.stores.kind === 'postgres') {
    const schema = `${config.stores.schema}_duis_${side}`;
    if (schema.length > 63) throw new SmkiError('ERR_CLI_STATE_INVALID', `the PostgreSQL schema ${schema} of the DUIS store is over 63 characters: use a shorter --pg-schema`, { detail: schema.slice(0, 80) });
    return PostgresStateStore.open({ schema });
  }
  mkdirSync(join(dir, 'state'), { recursive: true, mode: 0o700 });
  return SqliteStateStore.open({ path: join(dir, 'state', `duis-${side}.db`) });
}

/** A fresh P-256 key pair (node:crypto). */
export function newKeyPair(): { privateKey: KeyObject; publicKey: KeyObject; signer: Signer } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicKey, signer: createKeySigner(privateKey) };
}

/** An EUI-64 argument, or a usage error naming the option. */
export function eui(value: string, what: string): Eui64 {
  try {
    return parseEui64(value);
  } catch {
    throw new SmkiError('ERR_CLI_USAGE', `${what} is not an EUI-64 (16 hex digits, optionally with - or spaces)`, { detail: value.slice(0, 64) });
  }
}
