/**
 * `smki audit verify|report`: the evidence. `verify` checks the key store's audit trail and every
 * decision log (hash chain and HMAC of each record); `report` counts key use per portfolio and
 * message code, decisions by outcome and code, over a time range, the meters each key exposes,
 * and cross-checks the two logs where both speak of the same command (device, originator counter,
 * message code): the decision log accepting a command of this User that the key store never
 * signed, or one whose signer is not the key the key store used, is flagged.
 * @module
 * @internal
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join, relative, resolve } from 'node:path';
import { isSmkiError, SmkiError } from '@smki/core';
import { KEYSTORE_DATABASE_FILE, KeyStore, verifyAuditLog, type AuditRecord, type AuditVerification, type TrailVerification } from '@smki/keystore';
import { DECISION_LOG_FILE, DECISION_LOG_SCHEMA } from '@smki/validator';
import { PostgresStateStore, type LogIntent } from '@smki/store';
import { example, intOption, type Register } from '../program.js';
import { table } from '../io.js';
import { writeFileAtomic } from '../files.js';
import type { State } from '../state.js';
import type { AuditReport, CrossCheckDisagreement, DecisionCountRow, KeyUseRow, LogVerificationSummary, TimelineBucket } from '../report-types.js';
import { renderReportHtml } from '../report-html.js';
import { exposureOf } from './keys.js';
import { withHint } from '../exit.js';

/** Most disagreements listed (all are counted). */
const MAX_DISAGREEMENTS = 1000;

function summary(source: string, v: AuditVerification): LogVerificationSummary {
  return { source, records: v.count, ok: v.ok, findings: v.findings.map((f) => ({ code: f.code, message: f.message, ...(f.line !== undefined ? { line: f.line } : {}) })) };
}

/** A key store trail's verification as a log's (a record's sequence number is its line). */
function trailSummary(source: string, v: TrailVerification): LogVerificationSummary {
  return { source, records: v.count, ok: v.ok, findings: v.findings.map((f) => ({ code: f.code, message: f.message, ...(f.seq !== undefined ? { line: f.seq } : {}) })) };
}

/**
 * The key store's audit public key: from `file` (an auditor's own copy), else the one `smki init`
 * wrote in the state directory.
 * @throws SmkiError `ERR_CLI_INPUT_INVALID` (not 65 bytes of hex), `ERR_CLI_STATE_INVALID` (no file)
 */
export function readAuditPublicKey(state: State, file?: string): { key: Uint8Array; source: string } {
  const path = file !== undefined ? resolve(state.io.cwd, file) : state.auditPublicKeyPath();
  if (!existsSync(path)) {
    throw withHint(
      new SmkiError(file !== undefined ? 'ERR_CLI_INPUT_INVALID' : 'ERR_CLI_STATE_INVALID', `the key store's audit public key file ${file ?? relative(state.dir, path)} is missing`, { detail: path }),
      file !== undefined ? 'give the file with the hex of the audit public key (smki keystore info prints it)' : 'give --audit-public-key FILE (your own copy of the key; smki keystore info prints it)',
    );
  }
  const hex = readFileSync(path, 'utf8').trim();
  if (!/^04[0-9A-Fa-f]{128}$/.test(hex)) throw new SmkiError('ERR_CLI_INPUT_INVALID', 'the audit public key file is not the hex of a 65-byte uncompressed P-256 point', { detail: file ?? relative(state.dir, path) });
  return { key: new Uint8Array(Buffer.from(hex, 'hex')), source: file ?? relative(state.dir, path) };
}

/** What `verifyAll` checks. */
export interface VerifyAllOptions {
  /** An auditor's own copy of the audit public key (default: the state directory's). */
  readonly auditPublicKeyFile?: string;
  /**
   * Only what the audit public key verifies (the key store's trail): no passphrase needed, and
   * neither the store's rows nor the decision logs (whose MACs need it) are checked.
   */
  readonly trailOnly?: boolean;
  /** Called with each record of the key store's trail as it is verified (rely on them only when it verified). */
  readonly onTrailRecord?: (record: AuditRecord) => void;
}

/** What `verifyAll` found. */
export interface VerifiedLogs {
  /** The key store's trail, verified with the audit public key only. */
  readonly keystore: LogVerificationSummary;
  /** The key store as a whole (`verifyStore`: the trail replayed, every row against it; needs the passphrase). */
  readonly keystoreRows?: LogVerificationSummary;
  readonly decisionLogs: LogVerificationSummary[];
}

/**
 * Verify the key store's trail (with its audit public key), the store's rows against the trail
 * (with the passphrase), and every decision log of the state directory. A decision log is
 * also held against the head its state store committed with it (the store's log intent): a log
 * with records beyond that head means the store was restored from an older copy
 * (`ERR_VALIDATOR_STATE_BEHIND`); one with fewer records than the store says were written lost
 * records (`ERR_AUDIT_TRUNCATED`); one whose last record is not the head's was rewritten
 * (`ERR_AUDIT_TAMPERED`).
 */
export async function verifyAll(state: State, options: VerifyAllOptions = {}): Promise<VerifiedLogs> {
  const pub = readAuditPublicKey(state, options.auditPublicKeyFile);
  const dbFile = relative(state.dir, state.path('keystore', KEYSTORE_DATABASE_FILE));
  const trail = await KeyStore.verifyAuditTrail({
    directory: state.path('keystore'),
    auditPublicKey: pub.key,
    ...(options.onTrailRecord !== undefined ? { onRecord: options.onTrailRecord } : {}),
  });
  const keystore = trailSummary(`${dbFile} trail (audit public key ${pub.source})`, trail);
  if (options.trailOnly === true) return { keystore, decisionLogs: [] };
  const keystoreRows = await verifyKeystoreRows(state, `${dbFile} rows and replay (passphrase)`);
  const key = state.logKey();
  const dirs = state.logDirs().filter((d) => existsSync(join(d, DECISION_LOG_FILE)));
  const pgStore = await postgresStore(state);
  const { store } = dirs.length > 0 || pgStore ? await state.stores() : { store: undefined };
  const decisionLogs: LogVerificationSummary[] = [];
  // With PostgreSQL, a log the database holds is verified there (below), its file compared with it.
  const inDatabase = new Set(pgStore ? await pgStore.logIds() : []);
  for (const dir of dirs.filter((d) => !inDatabase.has(basename(d)))) {
    const file = join(dir, DECISION_LOG_FILE);
    const raw = await verifyAuditLog(file, { key, schema: DECISION_LOG_SCHEMA });
    const v = summary(relative(state.dir, file), raw);
    decisionLogs.push(v.ok ? againstHead(v, await store!.logIntent(basename(dir)), raw.head) : v);
  }
  // With PostgreSQL, the records are in the database as well: each log there is verified, held
  // against its head, and the local file (a process's own copy) must be the same records.
  if (pgStore) {
    for (const id of inDatabase) {
      const lines = await allLogLines(pgStore, id);
      const raw = await verifyAuditLog(lines, { key, schema: DECISION_LOG_SCHEMA });
      let v = summary(`postgresql ${state.postgresOptions().schema}.log_lines ${id}`, raw);
      if (v.ok) v = againstHead(v, await pgStore.logIntent(id), raw.head);
      const file = state.path('log', id, DECISION_LOG_FILE);
      if (v.ok && existsSync(file)) {
        const local = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
        const differs = local.findIndex((l, i) => l !== lines[i]);
        if (differs >= 0 || local.length > lines.length) {
          const at = differs >= 0 ? differs + 1 : lines.length + 1;
          v = { ...v, ok: false, findings: [{ code: 'ERR_AUDIT_TAMPERED', message: `the file ${relative(state.dir, file)} differs from the database's records at record ${at}`, line: at }] };
        }
      }
      decisionLogs.push(v);
    }
  }
  return { keystore, keystoreRows, decisionLogs };
}

/**
 * The key store's full check (`verifyStore`): the trail with the store's own keys, replayed (each
 * use with the key its meter trusted then), and every row against what the trail last wrote. A
 * store that refuses to open (a row or the trail altered) is a finding with its code.
 */
async function verifyKeystoreRows(state: State, source: string): Promise<LogVerificationSummary> {
  let v: Awaited<ReturnType<KeyStore['verifyStore']>>;
  try {
    v = await (await state.keystore()).verifyStore();
  } catch (e) {
    if (!isSmkiError(e) || e.code === 'ERR_CLI_SECRET_MISSING' || e.code === 'ERR_KEYSTORE_WRONG_PASSPHRASE' || e.code === 'ERR_KEYSTORE_MIGRATION_REQUIRED') throw e;
    return { source, records: 0, ok: false, findings: [{ code: e.code, message: `the key store does not open: ${e.message}` }] };
  }
  const findings = [...trailSummary(source, v.trail).findings, ...v.findings.map((f) => ({ code: f.code, message: `${f.row}: ${f.message}` }))];
  return { source, records: v.trail.count, ok: v.trail.ok && v.findings.length === 0, findings };
}

/** A trail record as the report reads it: its fields, counters as decimal text (as in the record's JSON). */
function reportRecord(r: AuditRecord): Record<string, unknown> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? v.toString() : v]));
}

/** The PostgreSQL state store of the directory, when it has one. */
async function postgresStore(state: State): Promise<PostgresStateStore | undefined> {
  if (state.config.stores.kind !== 'postgres') return undefined;
  const { store } = await state.stores();
  return store instanceof PostgresStateStore ? store : undefined;
}

/** Every line PostgreSQL keeps for a log, page by page. */
async function allLogLines(store: PostgresStateStore, id: string): Promise<string[]> {
  const all: string[] = [];
  for (;;) {
    const page = await store.logLines(id, all.length, 100_000);
    all.push(...page);
    if (page.length < 100_000) return all;
  }
}

/** The decision records a report reads: PostgreSQL's when the state is there, else the files. */
async function decisionRecords(state: State): Promise<Record<string, unknown>[]> {
  const pgStore = await postgresStore(state);
  if (pgStore) {
    const out: Record<string, unknown>[] = [];
    for (const id of await pgStore.logIds()) out.push(...parseRecords(await allLogLines(pgStore, id)));
    return out;
  }
  return state.logDirs().flatMap((d) => records(join(d, DECISION_LOG_FILE)));
}

/** Hold a verified decision log against the state store's intent for it. */
export function againstHead(v: LogVerificationSummary, intent: LogIntent | undefined, head: { count: number; lastHash: string } | undefined): LogVerificationSummary {
  const fail = (code: string, message: string): LogVerificationSummary => ({ ...v, ok: false, findings: [{ code, message }] });
  if (intent === undefined) {
    return v.records === 0 ? v : fail('ERR_VALIDATOR_STATE_BEHIND', `the log holds ${v.records} record(s) but the state store has no head for it (a store restored from before its first commit, or another store)`);
  }
  const { before, after } = intent;
  if (v.records > after.count) return fail('ERR_VALIDATOR_STATE_BEHIND', `the log holds ${v.records - after.count} record(s) beyond the head the state store committed (${after.count}): the store is older than the log`);
  if (v.records < before.count) return fail('ERR_AUDIT_TRUNCATED', `the log holds ${v.records} record(s); the state store committed ${after.count}: records were cut off`);
  // Whatever the count within [before, after], the file's last record must be the one the store
  // knows at that count: the head's, or the intent line the file stopped at. A log rewritten with
  // the key (re-chained, MACs valid) to the same length is caught here.
  const expected =
    v.records === after.count ? after.lastHash : v.records === before.count ? before.lastHash : sha256Hex(intent.lines[v.records - before.count - 1] ?? '');
  if (v.records > 0 && (head === undefined || head.lastHash.toUpperCase() !== expected.toUpperCase())) {
    return fail('ERR_AUDIT_TAMPERED', 'the log verifies on its own but its last record is not the one the state store committed at that length: the log was rewritten');
  }
  // before ≤ records < after: the last commit's lines are in the store, not yet (all) in the file
  // (a crash between the two writes); the next validator start writes them.
  return v;
}

const sha256Hex = (line: string): string => createHash('sha256').update(line, 'utf8').digest('hex').toUpperCase();

/** The records of JSON lines (lines that do not parse are left out: `verify` reports them). */
function parseRecords(lines: readonly string[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of lines) {
    if (line === '') continue;
    try {
      const r = JSON.parse(line) as unknown;
      if (typeof r === 'object' && r !== null && !Array.isArray(r)) out.push(r as Record<string, unknown>);
    } catch {
      // a torn or altered line: counted by verification, not here
    }
  }
  return out;
}

/** The records of a JSON-lines log file. */
function records(file: string): Record<string, unknown>[] {
  return existsSync(file) ? parseRecords(readFileSync(file, 'utf8').split('\n')) : [];
}

const hex4 = (n: unknown): string => (typeof n === 'number' && Number.isInteger(n) ? n.toString(16).toUpperCase().padStart(4, '0') : 'other');

/** Bucket widths tried for the timeline, smallest first: at most 60 buckets over the range. */
const BUCKETS = [1_000, 10_000, 60_000, 600_000, 3_600_000, 6 * 3_600_000, 86_400_000, 7 * 86_400_000];

/** Build the report of the state directory over [from, to). */
export async function buildReport(state: State, range: { from?: Date; to?: Date }, bucketMs?: number, options: VerifyAllOptions = {}): Promise<AuditReport> {
  // The trail's records, handed over by its verification (used only when it verified).
  const records: Record<string, unknown>[] = [];
  const verified = await verifyAll(state, { ...options, trailOnly: false, onTrailRecord: (r) => records.push(reportRecord(r)) });
  const inRange = (r: Record<string, unknown>): boolean => {
    const t = Date.parse(String(r.at));
    if (Number.isNaN(t)) return false;
    return (range.from === undefined || t >= range.from.getTime()) && (range.to === undefined || t < range.to.getTime());
  };
  const allTrail = verified.keystore.ok ? records : [];
  const trail = allTrail.filter(inRange);
  const decisions = (await decisionRecords(state))
    .filter(inRange)
    .sort((a, b) => Date.parse(String(a.at)) - Date.parse(String(b.at)));
  const ks = await state.keystore();
  const supplier = state.config.parties.supplier;
  const keyInfo = new Map((await ks.keys()).map((k) => [k.keyId, k]));

  // Key use per (portfolio, key, message code).
  const uses = trail.filter((r) => r.type === 'key.used' && r.operation === 'sign');
  const useCount = new Map<string, KeyUseRow>();
  for (const u of uses) {
    const keyId = String(u.keyId);
    const k = `${String(u.portfolioId)}\u0000${keyId}\u0000${hex4(u.messageCode)}`;
    const prev = useCount.get(k);
    useCount.set(k, { organisation: keyInfo.get(keyId)?.organisation ?? keyId.split('.')[0] ?? '', portfolio: String(u.portfolioId), keyId, messageCode: hex4(u.messageCode), uses: (prev?.uses ?? 0) + 1 });
  }
  const keyUse = [...useCount.values()].sort((a, b) => a.portfolio.localeCompare(b.portfolio) || a.keyId.localeCompare(b.keyId) || a.messageCode.localeCompare(b.messageCode));

  // Decisions by outcome and code.
  const outcomeOf = (r: Record<string, unknown>): string => String(r.type).replace(/^command\./, '');
  const dc = new Map<string, DecisionCountRow>();
  for (const r of decisions) {
    if (!String(r.type).startsWith('command.') && r.type !== 'quarantine.discarded') continue;
    const outcome = outcomeOf(r);
    const code = typeof r.code === 'string' ? r.code : '-';
    const k = `${outcome}\u0000${code}`;
    dc.set(k, { outcome, code, count: (dc.get(k)?.count ?? 0) + 1 });
  }
  const decisionRows = [...dc.values()].sort((a, b) => b.count - a.count || a.outcome.localeCompare(b.outcome) || a.code.localeCompare(b.code));

  // Timeline.
  const times = decisions.map((r) => Date.parse(String(r.at)));
  const start = range.from?.getTime() ?? times[0] ?? Date.now();
  const end = range.to?.getTime() ?? (times.length > 0 ? times[times.length - 1]! + 1 : start + 1);
  const width = bucketMs ?? BUCKETS.find((b) => (end - start) / b <= 60) ?? BUCKETS[BUCKETS.length - 1]!;
  const origin = Math.floor(start / width) * width;
  const nBuckets = times.length === 0 ? 0 : Math.min(100_000, Math.floor((end - 1 - origin) / width) + 1);
  const buckets: { start: string; accepted: number; rejected: number; quarantined: number }[] = Array.from({ length: nBuckets }, (_, i) => ({ start: new Date(origin + i * width).toISOString(), accepted: 0, rejected: 0, quarantined: 0 }));
  decisions.forEach((r, i) => {
    const b = buckets[Math.floor((times[i]! - origin) / width)];
    if (!b) return;
    const o = outcomeOf(r);
    if (o === 'accepted' || o === 'countersigned') b.accepted++;
    else if (o === 'rejected') b.rejected++;
    else if (o === 'quarantined') b.quarantined++;
  });

  // Exposure.
  const exposure = (await exposureOf(ks, supplier)).map((e) => ({ organisation: supplier, portfolio: e.portfolioId, keyId: e.keyId, state: e.state, meters: e.deviceCount }));

  // Cross-check: the same command in both logs.
  // Every signature of the trail, in range or not: a command signed just before the range and
  // decided in it was signed all the same.
  const signed = new Map<string, Record<string, unknown>>();
  for (const u of allTrail.filter((r) => r.type === 'key.used' && r.operation === 'sign')) signed.set(`${String(u.device)}/${String(u.counter)}/${String(u.messageCode)}`, u);
  const seen = new Set<string>();
  let matched = 0;
  let decisionLogOnly = 0;
  let disagreementsTotal = 0;
  const disagreements: CrossCheckDisagreement[] = [];
  const flag = (d: CrossCheckDisagreement) => {
    disagreementsTotal++;
    if (disagreements.length < MAX_DISAGREEMENTS) disagreements.push(d);
  };
  for (const r of decisions) {
    if (!String(r.type).startsWith('command.') || r.device === undefined || r.counter === undefined) continue;
    const k = `${String(r.device)}/${String(r.counter)}/${String(r.messageCode)}`;
    const u = signed.get(k);
    const outcome = outcomeOf(r);
    const acceptedSigned = (outcome === 'accepted' || outcome === 'countersigned') && typeof r.signerSerial === 'string';
    if (u === undefined) {
      if (acceptedSigned && r.originator === supplier) {
        flag({ device: String(r.device), counter: String(r.counter), messageCode: hex4(r.messageCode), keystore: 'no signature recorded', decisionLog: `${outcome}, signer serial ${String(r.signerSerial)}`, issue: `a command of ${supplier} was accepted that this key store never signed (a key used outside the store?)` });
      } else decisionLogOnly++;
      continue;
    }
    seen.add(k);
    const serial = keyInfo.get(String(u.keyId))?.serialNumber;
    if (acceptedSigned && serial !== undefined && serial !== r.signerSerial) {
      flag({ device: String(r.device), counter: String(r.counter), messageCode: hex4(r.messageCode), keystore: `signed with ${String(u.keyId)} (certificate ${serial})`, decisionLog: `${outcome}, signer serial ${String(r.signerSerial)}`, issue: 'the validator checked another certificate than the key the key store used' });
    } else matched++;
  }
  const keystoreOnly = uses.filter((u) => !seen.has(`${String(u.device)}/${String(u.counter)}/${String(u.messageCode)}`)).length;
  const decisionLog: LogVerificationSummary = {
    source: verified.decisionLogs.map((l) => l.source).join(', ') || '(no decision log yet)',
    records: verified.decisionLogs.reduce((n, l) => n + l.records, 0),
    ok: verified.decisionLogs.every((l) => l.ok),
    findings: verified.decisionLogs.flatMap((l) => l.findings.map((f) => ({ ...f, message: `${l.source}: ${f.message}` }))),
  };
  return {
    generatedAt: new Date().toISOString(),
    range: { ...(range.from ? { from: range.from.toISOString() } : {}), ...(range.to ? { to: range.to.toISOString() } : {}) },
    keystoreTrail: withRows(verified.keystore, verified.keystoreRows),
    decisionLog,
    keyUse,
    decisions: decisionRows,
    timeline: { bucketMs: width, buckets: buckets as TimelineBucket[] },
    exposure,
    crossCheck: { matched, keystoreOnly, decisionLogOnly, disagreements: disagreementsTotal > disagreements.length ? [...disagreements, { device: '…', counter: '…', messageCode: '…', keystore: '…', decisionLog: '…', issue: `${disagreementsTotal - disagreements.length} more not listed` }] : disagreements },
  };
}

/** The trail's verification with the store's full check folded in (the report shows one line for the key store). */
function withRows(trail: LogVerificationSummary, rows: LogVerificationSummary | undefined): LogVerificationSummary {
  if (rows === undefined) return trail;
  return { source: `${trail.source}; ${rows.source}`, records: trail.records, ok: trail.ok && rows.ok, findings: [...trail.findings, ...rows.findings.map((f) => ({ ...f, message: `rows: ${f.message}` }))] };
}

function time(v: unknown, what: string): Date | undefined {
  if (v === undefined) return undefined;
  const d = new Date(String(v));
  if (Number.isNaN(d.getTime())) throw new SmkiError('ERR_CLI_USAGE', `${what} is not an ISO 8601 time`, { detail: String(v).slice(0, 40) });
  return d;
}

export const register: Register = (program, wrap) => {
  const audit = program.command('audit').description('the evidence: verify the audit trail and decision logs; report on them');
  example(audit, 'smki audit verify', 'smki audit report --from 2026-12-01 --html report.html');

  example(
    audit
      .command('verify')
      .description("verify the key store's audit trail with its audit public key, the store's rows against the trail (passphrase), and every decision log (chain and MACs); exit 1 if any fails")
      .option('--audit-public-key <file>', "the key store's audit public key (hex), an auditor's own copy (default: keystore/audit-public-key.hex)")
      .option('--trail-only', 'only what the audit public key verifies (no passphrase needed): the key store trail'),
    'smki audit verify --json',
    'smki audit verify --audit-public-key ~/evidence/store-audit-key.hex --trail-only',
  ).action(
    wrap(async (ctx, _a, o) => {
      const state = ctx.state();
      const v = await verifyAll(state, { ...(o.auditPublicKey !== undefined ? { auditPublicKeyFile: String(o.auditPublicKey) } : {}), trailOnly: o.trailOnly === true });
      const all = [v.keystore, ...(v.keystoreRows ? [v.keystoreRows] : []), ...v.decisionLogs];
      const ok = all.every((l) => l.ok);
      return {
        json: { ok, keystore: v.keystore, ...(v.keystoreRows ? { keystoreRows: v.keystoreRows } : {}), decisionLogs: v.decisionLogs, trailOnly: o.trailOnly === true },
        text: [
          table(['log', 'records', 'verifies'], all.map((l) => [l.source, l.records, l.ok ? 'yes' : 'NO'])),
          ...all.flatMap((l) => l.findings.map((f) => `${ctx.paint.red('✘')} ${l.source}${f.line !== undefined ? ` line ${f.line}` : ''}: ${f.code}: ${f.message}`)),
          ok
            ? `${ctx.paint.green('✔')} every record of every log verifies${o.trailOnly === true ? ' (the key store trail only: its rows and the decision logs need the passphrase)' : ''}`
            : `${ctx.paint.red('✘')} verification failed: keep the files as evidence`,
        ].join('\n'),
        exit: ok ? 'OK' : 'REJECTED',
      };
    }),
  );

  example(
    audit
      .command('report')
      .description('key use per portfolio and message code, decisions by outcome and code, exposure, and the cross-check of the two logs')
      .option('--from <time>', 'from this time (ISO 8601), inclusive')
      .option('--to <time>', 'to this time (ISO 8601), exclusive')
      .option('--bucket-ms <ms>', 'timeline bucket width (default: at most 60 buckets)', intOption('--bucket-ms', 1000, 366 * 86_400_000))
      .option('--html <file>', 'also write the report as one self-contained HTML page')
      .option('--audit-public-key <file>', "the key store's audit public key (hex), an auditor's own copy (default: keystore/audit-public-key.hex)"),
    'smki audit report --from 2026-12-01T00:00:00Z --html report.html',
  ).action(
    wrap(async (ctx, _a, o) => {
      const state = ctx.state();
      const from = time(o.from, '--from');
      const to = time(o.to, '--to');
      const report = await buildReport(state, { ...(from ? { from } : {}), ...(to ? { to } : {}) }, o.bucketMs as number | undefined, o.auditPublicKey !== undefined ? { auditPublicKeyFile: String(o.auditPublicKey) } : {});
      if (o.html !== undefined) writeFileAtomic(resolve(ctx.io.cwd, String(o.html)), renderReportHtml(report), 0o644);
      const ok = report.keystoreTrail.ok && report.decisionLog.ok && report.crossCheck.disagreements.length === 0;
      const p = ctx.paint;
      return {
        json: report,
        text: [
          `audit report ${report.range.from ?? '(start)'} … ${report.range.to ?? '(now)'}`,
          `  key store trail: ${report.keystoreTrail.records} records, ${report.keystoreTrail.ok ? p.green('verifies') : p.red('DOES NOT VERIFY')}`,
          `  decision logs:   ${report.decisionLog.records} records, ${report.decisionLog.ok ? p.green('verify') : p.red('DO NOT VERIFY')}`,
          '',
          'key use (signatures) per portfolio and message code',
          report.keyUse.length === 0 ? '  none' : table(['portfolio', 'key', 'message code', 'signatures'], report.keyUse.map((r) => [r.portfolio, r.keyId, r.messageCode, r.uses])),
          '',
          'decisions by outcome and code',
          report.decisions.length === 0 ? '  none' : table(['outcome', 'code', 'commands'], report.decisions.map((r) => [r.outcome, r.code, r.count])),
          '',
          'meters exposed per key',
          report.exposure.length === 0 ? '  none' : table(['portfolio', 'key', 'state', 'meters'], report.exposure.map((r) => [r.portfolio, r.keyId, r.state, r.meters])),
          '',
          `cross-check: ${report.crossCheck.matched} matched, ${report.crossCheck.keystoreOnly} signed but not (yet) decided, ${report.crossCheck.decisionLogOnly} decided without a signature of this store (other parties, or refused)`,
          report.crossCheck.disagreements.length === 0
            ? `  ${p.green('✔')} no disagreement`
            : table(['device', 'counter', 'code', 'key store', 'decision log', 'issue'], report.crossCheck.disagreements.map((d) => [d.device, d.counter, d.messageCode, d.keystore, d.decisionLog, d.issue])),
          ...(o.html !== undefined ? ['', `${p.green('✔')} HTML report → ${String(o.html)}`] : []),
        ].join('\n'),
        exit: ok ? 'OK' : 'REJECTED',
      };
    }),
  );
};
