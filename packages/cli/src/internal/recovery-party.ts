/**
 * The Recovery party of a state directory: the party whose key sits in every meter's recovery
 * cell (Remote Party Role 1) and authorises CS02b mode 8, the route when a supplier's own key is
 * stolen (GBCS CS02b; docs/domain.md §9). It keeps its key in its own key store, never beside the
 * supplier's: its own directory, its own passphrase (`SMKI_RECOVERY_PASSPHRASE` or
 * `--recovery-passphrase-file`; refused when it is the supplier's), its own operators, and a
 * policy that puts every signing session under dual control (a proposal bound to the exact
 * commands, approved by operators other than the proposer; docs/keystore-estate.md §2).
 *
 * ```text
 * <party>/party.json         what the party is (entity, portfolio, key, certificate, store id); no secret
 * <party>/keystore/          its key store (@smki/keystore): encrypted key files, keystore.db,
 *                            its operators and proposals, its own sealed audit trail
 * <party>/recovery-ds.pem    its DS certificate (role 1), issued by the test organisation CA
 * <party>/audit-public-key.hex  what its trail is verified with
 * ```
 *
 * The state directory's `smki.json` records where the party is (`recoveryParty`); the default
 * place is `<state>/recovery-party/`.
 * @module
 * @internal
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { isSmkiError, SmkiError, type Eui64 } from '@smki/core';
import { certificateToPem, issueOrganisationCertificate, parseCertificate, type SmkiCertificate } from '@smki/pki';
import { decodeUpdateSecurityCredentialsCommand, parseMessage, signedBytes, UPDATE_SECURITY_CREDENTIALS_BASE_CODE } from '@smki/gbcs';
import {
  assignmentListDigest,
  createApproval,
  DEFAULT_ACCESS_POLICY,
  FileKeyBackend,
  KeyStore,
  messageListDigest,
  operationHash,
  parseAccessPolicy,
  type AccessPolicy,
  type OperatorInfo,
} from '@smki/keystore';
import type { BatchProposal, RecoverySigning } from '@smki/recovery';
import { writeFileAtomic } from './files.js';
import { withHint } from './exit.js';
import { secretFromFile } from './secrets.js';
import { signRequest, type Operator } from './access.js';
import type { CliIo } from './io.js';
import type { State, StateConfig } from './state.js';

/** The environment variable of the Recovery party's key store passphrase (never the supplier's). */
export const RECOVERY_PASSPHRASE_ENV = 'SMKI_RECOVERY_PASSPHRASE';
/** The default directory of the Recovery party, under the state directory. */
export const RECOVERY_PARTY_DIR = 'recovery-party';
/** The Recovery party's portfolio: its DS key, which every meter holds in its recovery cell. */
export const RECOVERY_PORTFOLIO = 'recovery';
/** The format tag of `party.json`. */
export const PARTY_FORMAT = 'smki-recovery-party/1';
/** Most meters one `device.assign` request of the party carries (under the default policy's dual-control threshold of 1000). */
const ASSIGN_CHUNK = 999;
/** How long an approval given on the command line stands. */
const APPROVAL_TTL_MS = 3_600_000;

/** `party.json`. */
export interface PartyConfig {
  readonly format: typeof PARTY_FORMAT;
  /** The Recovery party's EUI-64 (Remote Party Role 1). */
  readonly entityId: Eui64;
  /** Its portfolio in its own store. */
  readonly portfolioId: string;
  /** Its DS key in its own store. */
  readonly keyId: string;
  /** Its DS certificate's serial number. */
  readonly certificateSerial: string;
  /** Approvals by other operators each signing session needs (the policy of its ceremony). */
  readonly approvals: number;
  /** Its key store's id (checked when opened). */
  readonly storeId: string;
  /** When it was made (ISO 8601). */
  readonly createdAt: string;
}

/** An opened Recovery party: its store, its configuration and certificate; close when done. */
export interface RecoveryParty {
  readonly dir: string;
  readonly config: PartyConfig;
  readonly store: KeyStore;
  readonly certificate: SmkiCertificate;
  close(): Promise<void>;
}

/** The Recovery party's passphrase: `--recovery-passphrase-file`, else `SMKI_RECOVERY_PASSPHRASE`. */
export function recoveryPassphrase(io: CliIo, file: string | undefined): string {
  if (file !== undefined) return secretFromFile(io, file, 'Recovery party passphrase');
  const v = io.env[RECOVERY_PASSPHRASE_ENV];
  if (v === undefined || v === '') {
    throw withHint(
      new SmkiError('ERR_CLI_SECRET_MISSING', `no Recovery party passphrase: set ${RECOVERY_PASSPHRASE_ENV} or give --recovery-passphrase-file (its own, never the supplier's)`, {}),
      `set ${RECOVERY_PASSPHRASE_ENV}, or give --recovery-passphrase-file: the Recovery party's own passphrase`,
    );
  }
  return v;
}

/** Where the state directory's Recovery party is (absolute), or undefined when it has none. */
export function partyDir(state: State): string | undefined {
  const r = state.config.recoveryParty;
  return r === undefined ? undefined : resolve(state.dir, r.dir);
}

const inside = (dir: string, parent: string): boolean => {
  const r = relative(parent, dir);
  return r === '' || (!r.startsWith('..') && !isAbsolute(r));
};

/** The policy of a Recovery party's store: the default rules, and every signing session under dual control. */
export function partyPolicy(approvals: number): AccessPolicy {
  return parseAccessPolicy({ v: 1, rules: [...DEFAULT_ACCESS_POLICY.rules.filter((r) => r.operation !== 'session.sign'), { operation: 'session.sign', approvals }] });
}

/**
 * Create the state directory's Recovery party: its own key store in `dir` (new or empty; not
 * the supplier's key store nor inside it), under its own passphrase; its DS key and a role 1
 * certificate from the test organisation CA; its operators and a policy that puts signing under
 * dual control (`approvals` other operators). Everything is checked before anything is written; a
 * failure half way removes the directory it made.
 * @throws SmkiError `ERR_CLI_STATE_EXISTS` (a party already, or `dir` not empty),
 *   `ERR_CLI_USAGE` (the supplier's passphrase, a directory of the supplier's store, too few
 *   signers for the approvals), `ERR_CLI_STATE_INVALID` (not a test state directory)
 */
export async function createRecoveryParty(
  state: State,
  options: { readonly dir?: string; readonly entityId: Eui64; readonly passphrase: string; readonly operators: readonly OperatorInfo[]; readonly approvals: number },
): Promise<{ dir: string; config: PartyConfig; certificate: SmkiCertificate; policy: AccessPolicy }> {
  if (state.config.environment !== 'test') throw new SmkiError('ERR_CLI_STATE_INVALID', "the Recovery party's certificate comes from this directory's test hierarchy: not a test state directory", {});
  if (state.config.recoveryParty !== undefined) {
    throw new SmkiError('ERR_CLI_STATE_EXISTS', `this state directory has a Recovery party already (${partyDir(state)!})`, { detail: partyDir(state)! });
  }
  const dir = resolve(state.dir, options.dir ?? RECOVERY_PARTY_DIR);
  for (const own of [state.path('keystore'), state.path('keystore-backends')]) {
    if (inside(dir, own) || inside(own, dir)) throw new SmkiError('ERR_CLI_USAGE', `the Recovery party's store is never in or around the supplier's key store (${own})`, { detail: dir });
  }
  if (dir === state.dir) throw new SmkiError('ERR_CLI_USAGE', "the Recovery party's store has its own directory, not the state directory itself", { detail: dir });
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new SmkiError('ERR_CLI_STATE_EXISTS', `${dir} is not empty`, { detail: dir });
  if (options.passphrase === state.passphrase) {
    throw new SmkiError('ERR_CLI_USAGE', "the Recovery party's passphrase is the supplier's: its key store takes its own (SMKI_RECOVERY_PASSPHRASE or --recovery-passphrase-file)", {});
  }
  const policy = partyPolicy(options.approvals);
  const org = options.entityId;
  const signers = options.operators.filter((o) => o.grants.some((g) => g.role === 'signer' && (g.organisation === org || g.organisation === '*') && (g.portfolioId === undefined || g.portfolioId === RECOVERY_PORTFOLIO)));
  if (signers.length < options.approvals + 1) {
    throw new SmkiError('ERR_CLI_USAGE', `a session needs a proposer and ${options.approvals} other approver(s): give at least ${options.approvals + 1} operators with signer@${org}/${RECOVERY_PORTFOLIO} (${signers.length} given)`, {});
  }
  const issuer = state.hierarchy().organisationCa;
  const made = !existsSync(dir);
  mkdirSync(join(dir, 'keystore'), { recursive: true, mode: 0o700 });
  let backend: FileKeyBackend | undefined;
  let store: KeyStore | undefined;
  try {
    backend = await FileKeyBackend.open({ directory: join(dir, 'keystore'), passphrase: options.passphrase });
    store = await KeyStore.open({ directory: join(dir, 'keystore'), backend, passphrase: options.passphrase });
    await store.addOrganisation({ entityId: org, role: 1 });
    await store.createPortfolio(org, { id: RECOVERY_PORTFOLIO, name: 'Recovery (the key in every meter’s recovery cell)' });
    const handle = await store.generateKey(org, RECOVERY_PORTFOLIO, 'signing');
    const csr = await store.createCsr(handle.keyId);
    const certificate = await issueOrganisationCertificate({ issuer, role: 1, entityId: org, keyUsage: 'digitalSignature', csr, commonName: 'Recovery party' });
    await store.attachCertificate(handle.keyId, certificate);
    await store.initialiseAccess({ operators: options.operators, policy });
    const config: PartyConfig = { format: PARTY_FORMAT, entityId: org, portfolioId: RECOVERY_PORTFOLIO, keyId: handle.keyId, certificateSerial: certificate.serialNumber, approvals: options.approvals, storeId: store.storeId, createdAt: new Date().toISOString() };
    writeFileAtomic(join(dir, 'recovery-ds.pem'), certificateToPem(certificate), 0o644);
    writeFileAtomic(join(dir, 'audit-public-key.hex'), `${Buffer.from(store.auditPublicKey).toString('hex').toUpperCase()}\n`, 0o644);
    writeFileAtomic(join(dir, 'party.json'), `${JSON.stringify(config, null, 2)}\n`, 0o644);
    await store.close();
    store = undefined;
    await backend.close();
    backend = undefined;
    // The validator's trust takes the party's certificate (a mode 8 command's signer).
    state.saveCertificate(certificate);
    const rel = relative(state.dir, dir);
    const next: StateConfig = { ...state.config, recoveryParty: { dir: inside(dir, state.dir) ? rel.split(sep).join('/') : dir, entityId: org } };
    state.writeConfig(next);
    return { dir, config, certificate, policy };
  } catch (e) {
    await store?.close().catch(() => undefined);
    await backend?.close().catch(() => undefined);
    if (made) rmSync(dir, { recursive: true, force: true });
    else for (const f of readdirSync(dir)) rmSync(join(dir, f), { recursive: true, force: true });
    throw e;
  }
}

/**
 * Open the state directory's Recovery party with its own passphrase.
 * @throws SmkiError `ERR_CLI_STATE_INVALID` (no party, or its files damaged), `ERR_CLI_USAGE`
 *   (the supplier's passphrase given for it), `ERR_KEYSTORE_WRONG_PASSPHRASE`, and the key store's
 */
export async function openRecoveryParty(state: State, passphrase: string): Promise<RecoveryParty> {
  const dir = partyDir(state);
  if (dir === undefined) {
    throw new SmkiError('ERR_CLI_STATE_INVALID', 'this state directory has no Recovery party key store (smki recovery party init makes one)', { detail: 'recovery party' });
  }
  let config: PartyConfig;
  try {
    config = JSON.parse(readFileSync(join(dir, 'party.json'), 'utf8')) as PartyConfig;
  } catch {
    throw new SmkiError('ERR_CLI_STATE_INVALID', `the Recovery party's party.json in ${dir} is missing or not JSON`, { detail: dir });
  }
  if (config?.format !== PARTY_FORMAT || config.entityId !== state.config.recoveryParty!.entityId) {
    throw new SmkiError('ERR_CLI_STATE_INVALID', `${join(dir, 'party.json')} is not the Recovery party smki.json names`, { detail: dir });
  }
  if (passphrase === state.passphrase) throw new SmkiError('ERR_CLI_USAGE', "the Recovery party's passphrase is never the supplier's", {});
  const backend = await FileKeyBackend.open({ directory: join(dir, 'keystore'), passphrase });
  let store: KeyStore;
  try {
    store = await KeyStore.open({ directory: join(dir, 'keystore'), backend, passphrase });
  } catch (e) {
    await backend.close();
    if (isSmkiError(e) && e.code === 'ERR_KEYSTORE_WRONG_PASSPHRASE') throw withHint(e, `the passphrase does not open the Recovery party's key store: check ${RECOVERY_PASSPHRASE_ENV} or --recovery-passphrase-file (its own, not the supplier's)`);
    throw e;
  }
  try {
    if (store.storeId !== config.storeId) throw new SmkiError('ERR_CLI_STATE_INVALID', `the key store in ${dir} is not the one party.json names`, { detail: store.storeId });
    const pem = (await store.key(config.keyId)).certificate;
    if (pem === undefined) throw new SmkiError('ERR_CLI_STATE_INVALID', "the Recovery party's key has no certificate", { detail: config.keyId });
    const certificate = parseCertificate(pem);
    return {
      dir,
      config,
      store,
      certificate,
      close: async () => {
        await store.close();
        await backend.close();
      },
    };
  } catch (e) {
    await store.close().catch(() => undefined);
    await backend.close().catch(() => undefined);
    throw e;
  }
}

/**
 * Record in the party's store that `devices` hold its key in their recovery cell (assigned to its
 * portfolio), those not yet there; each request signed by `operator` (a deviceManager of the
 * party), at most {@link ASSIGN_CHUNK} meters a request. Returns how many were assigned.
 */
export async function assignToRecovery(party: RecoveryParty, operator: Operator, devices: Iterable<string>): Promise<number> {
  const { store, config } = party;
  const known = new Set<string>();
  for (let after: string | undefined; ; ) {
    const page = await store.devicesOf(config.entityId, config.portfolioId, { limit: 10_000, ...(after !== undefined ? { after } : {}) });
    for (const d of page.devices) known.add(d.device);
    if (page.next === undefined) break;
    after = page.next;
  }
  const todo = [...new Set(devices)].filter((d) => !known.has(d)).sort();
  for (let i = 0; i < todo.length; i += ASSIGN_CHUNK) {
    const assignments = todo.slice(i, i + ASSIGN_CHUNK).map((device) => ({ device, portfolioId: config.portfolioId }));
    const digest = assignmentListDigest(assignments);
    await store.execute(await signRequest(store, operator, { op: 'device.assign', organisation: config.entityId, count: digest.count, listSha256: digest.listSha256 }), { assignments });
  }
  return todo.length;
}

/**
 * Check a proposal as an approver would before signing an approval of it: its operation hash is
 * the hash of its operation, the operation binds exactly the commands shown (their count and the
 * digest of their signed bytes), and each command is a CS02b mode 8 from the party to its meter.
 * @throws SmkiError `ERR_OPERATION_MISMATCH`
 */
export function checkProposal(p: BatchProposal, party: Eui64): void {
  const bad = (why: string): never => {
    throw new SmkiError('ERR_OPERATION_MISMATCH', `the batch proposal ${p.proposalId} is not approved: ${why}`, { detail: p.proposalId });
  };
  if (operationHash(p.operation) !== p.operationHash) bad("its operation hash is not the hash of its operation");
  const op = p.operation;
  if (op.op !== 'session.sign' || op.organisation !== party) bad('it is not a signing session of the Recovery party');
  const messages = p.commands.map((c) => {
    const m = parseMessage(c.command);
    const { payload } = decodeUpdateSecurityCredentialsCommand(c.command);
    if (m.messageCode !== UPDATE_SECURITY_CREDENTIALS_BASE_CODE + 8 || payload.mode !== 8 || m.originator !== party || m.recipient !== c.device || m.originatorCounter !== c.counter) bad(`a command for ${c.device} is not a CS02b mode 8 from ${party} to it`);
    return { device: c.device, sha256: createHash('sha256').update(signedBytes(m)).digest('hex').toUpperCase() };
  });
  const digest = messageListDigest(messages);
  if (op.op === 'session.sign' && (op.count !== digest.count || op.messagesSha256 !== digest.listSha256)) bad('the session it opens is not bound to exactly the commands shown');
}

/**
 * How the Recovery party signs a compromise batch: `operator` proposes each batch's bound session
 * (and assigns the batch's meters first); `approvers` (other operators of the party, keys given
 * here) each check the proposal and sign an approval. The proposer never approves its own
 * proposal (`ERR_CLI_USAGE`; the store would not count it either).
 * @throws SmkiError `ERR_CLI_USAGE`
 */
export function recoverySigning(party: RecoveryParty, operator: Operator, approvers: readonly Operator[], onProposal?: (p: BatchProposal) => void): RecoverySigning {
  if (approvers.some((a) => a.operatorId === operator.operatorId)) {
    throw new SmkiError('ERR_CLI_USAGE', `operator ${operator.operatorId} proposes the batch: its own approval never counts (dual control); give another operator's key with --approver`, { detail: operator.operatorId });
  }
  if (new Set(approvers.map((a) => a.operatorId)).size !== approvers.length) throw new SmkiError('ERR_CLI_USAGE', 'an approver is named twice', {});
  return {
    store: party.store,
    portfolioId: party.config.portfolioId,
    operatorId: operator.operatorId,
    operatorSigner: operator.signer,
    certificate: party.certificate,
    approve: async (p) => {
      onProposal?.(p);
      if (approvers.length === 0) return [];
      checkProposal(p, party.config.entityId);
      const expiresAt = new Date(Date.now() + APPROVAL_TTL_MS);
      return Promise.all(approvers.map((a) => createApproval(a.signer, { storeId: p.storeId, proposalId: p.proposalId, operationHash: p.operationHash, approverId: a.operatorId, expiresAt })));
    },
  };
}
