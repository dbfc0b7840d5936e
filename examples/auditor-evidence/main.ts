/**
 * An auditor's checks on the evidence a supplier and the DCC keep: the supplier's key-store audit
 * trail (every lifecycle change and every use of a key) and the validator's decision log (every
 * decision on a command), both hash-chained: the trail in sealed batches an auditor verifies with
 * the store's audit public key, the decision log HMAC'd (docs/validator.md, the decision log).
 *
 * Part 1 makes the evidence: a supplier's key store (encrypted key files, two portfolios) signs
 * remote disconnects, one meter moves between portfolios, and a validator on SQLite decides the
 * commands. Part 2 audits a copy of it: both logs verify; every use of one portfolio's keys is
 * listed; replaying the trail's lifecycle records shows that no key signed for a meter outside
 * its portfolio (or a key the meter did not trust); every accepted command was signed, by the key
 * whose certificate the validator named; a one-byte edit of either log is detected.
 *
 *   pnpm exec tsx examples/auditor-evidence/main.ts
 *
 * Exits non-zero if any claim it prints does not hold. See README.md beside this file.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { cpSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createKeyAgreement, fromHex, isSmkiError, parseEui64, type Eui64, type Signer } from '@smki/core';
import { buildDisableSupply, parseMessage, signPreCommand } from '@smki/gbcs';
import { FileKeyBackend, KEYSTORE_DATABASE_FILE, KeyStore, verifyAuditLog, type AuditHead, type AuditRecord, type SigningKeyHandle } from '@smki/keystore';
import { createHierarchy, issueCrl, issueDeviceCertificate, issueOrganisationCertificate, type SmkiCertificate } from '@smki/pki';
import { SqliteDeviceRegistry, SqliteFirmwareAllowlist, SqliteStateStore, type DeviceRecord } from '@smki/store';
import { DECISION_LOG_FILE, DECISION_LOG_SCHEMA, Validator, type Decision } from '@smki/validator';

const SUPPLIER = parseEui64('90B3D51F30010000');
const NETWORK_OPERATOR = parseEui64('90B3D51F30030000');
const ACB = parseEui64('90B3D51F30000004');
const N1 = parseEui64('00DB1234567890C1');
const N2 = parseEui64('00DB1234567890C2');
const S1 = parseEui64('00DB1234567890D1');
const S2 = parseEui64('00DB1234567890D2');
const LOG_ID = 'validator-1';

let failures = 0;
const line = (s = '') => console.log(s);
/** Print a claim and count it as failed unless it holds. */
function check(holds: boolean, claim: string): void {
  console.log(`  ${holds ? '✔' : '✘'} ${claim}`);
  if (!holds) failures++;
}
const hex4 = (n: unknown) => `0x${Number(n).toString(16).toUpperCase().padStart(4, '0')}`;

const work = mkdtempSync(join(tmpdir(), 'smki-auditor-'));
const keystoreDir = join(work, 'supplier-keystore');
const keysDir = join(work, 'supplier-keys');
const validatorDir = join(work, 'dcc-validator');
const evidenceDir = join(work, 'evidence');
const passphrase = randomBytes(24).toString('base64url'); // the supplier's own (the auditor needs only the audit public key)
const logKey = randomBytes(32); // the decision log's key, given to the auditor by the DCC

/** What the key store itself says at the end, to compare with what the auditor reconstructs. */
interface LiveView {
  readonly portfolioOf: ReadonlyMap<string, string>;
  readonly installed: ReadonlyMap<string, string | undefined>;
}

try {
  // ===========================================================================================
  line('Auditor evidence: the key-store audit trail and the validator\'s decision log\n');
  line('PART 1: the evidence (a supplier\'s key store and a DCC validator at work)\n');

  line('1. The supplier\'s key store: portfolios north (C1, C2) and south (D1, D2), a signing key each');
  const issued = new Date(Date.now() - 24 * 3600_000);
  const clock = () => issued;
  const hierarchy = await createHierarchy({ now: clock });
  const backend = await FileKeyBackend.open({ directory: keysDir, passphrase });
  const ks = await KeyStore.open({ directory: keystoreDir, backend, passphrase });
  await ks.addOrganisation({ entityId: SUPPLIER, role: 2 });
  const certOf = new Map<string, SmkiCertificate>();
  const handleOf = new Map<string, SigningKeyHandle>();
  for (const portfolio of ['north', 'south']) {
    await ks.createPortfolio(SUPPLIER, { id: portfolio });
    const h = await ks.generateKey(SUPPLIER, portfolio, 'signing');
    handleOf.set(portfolio, h);
    const certificate = await issueOrganisationCertificate({ issuer: hierarchy.organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', csr: await ks.createCsr(h.keyId), now: clock });
    await ks.attachCertificate(h.keyId, certificate);
    certOf.set(portfolio, certificate);
    line(`  ${h.keyId}: certificate serial ${certificate.serialNumber}`);
  }
  for (const [device, portfolio] of [[N1, 'north'], [N2, 'north'], [S1, 'south'], [S2, 'south']] as const) await ks.assignDevice(SUPPLIER, device, portfolio);

  line('\n2. The DCC\'s validator (SQLite state, registry and allowlist; its own decision log)');
  const newKey = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const nop = newKey();
  const nopCert = await issueOrganisationCertificate({ issuer: hierarchy.organisationCa, role: 3, entityId: NETWORK_OPERATOR, keyUsage: 'digitalSignature', publicKey: nop.publicKey, now: clock });
  const acbKey = newKey();
  const acbCert = await issueOrganisationCertificate({ issuer: hierarchy.organisationCa, role: 4, entityId: ACB, keyUsage: 'keyAgreement', publicKey: acbKey.publicKey, now: clock });
  const now = Date.now();
  const crl = await issueCrl({ issuer: hierarchy.organisationCa, crlNumber: 1n, kind: 'crl', thisUpdate: new Date(now - 3600_000), nextUpdate: new Date(now + 7 * 24 * 3600_000) });
  const arl = await issueCrl({ issuer: hierarchy.root, crlNumber: 1n, kind: 'arl', thisUpdate: new Date(now - 3600_000), nextUpdate: new Date(now + 7 * 24 * 3600_000) });
  const recordFor = async (device: Eui64, portfolio: string, kaCertificate: Uint8Array): Promise<DeviceRecord> => ({
    device,
    type: 'ESME',
    fuel: 'electricity',
    model: 'ACME-ESME-1',
    supplier: SUPPLIER,
    networkOperator: NETWORK_OPERATOR,
    cells: [
      { role: 2, keyUsage: 'digitalSignature', cellUsage: 'management', ski: certOf.get(portfolio)!.subjectKeyId!, entity: SUPPLIER },
      { role: 3, keyUsage: 'digitalSignature', cellUsage: 'management', ski: nopCert.subjectKeyId!, entity: NETWORK_OPERATOR },
    ],
    keyAgreementCertificate: kaCertificate,
  });
  const kaCert = new Map<string, Uint8Array>();
  for (const device of [N1, N2, S1, S2]) {
    kaCert.set(device, (await issueDeviceCertificate({ issuer: hierarchy.deviceCa, entityId: device, keyUsage: 'keyAgreement', publicKey: newKey().publicKey, now: clock })).der);
  }
  mkdirSync(validatorDir, { mode: 0o700 });
  const state = await SqliteStateStore.open({ path: join(validatorDir, 'state.db') });
  const registry = await SqliteDeviceRegistry.open({ path: join(validatorDir, 'registry.db') });
  const firmware = await SqliteFirmwareAllowlist.open({ path: join(validatorDir, 'firmware.db') });
  await registry.put(await Promise.all([[N1, 'north'], [N2, 'north'], [S1, 'south'], [S2, 'south']].map(([d, p]) => recordFor(d as Eui64, p!, kaCert.get(d!)!))));
  const validator = await Validator.open({
    store: state,
    registry,
    firmware,
    trust: { certificates: [hierarchy.root.certificate, hierarchy.organisationCa.certificate, hierarchy.deviceCa.certificate, ...certOf.values(), nopCert, acbCert], crls: [crl, arl] },
    acb: { keyId: 'acb-ka-1', keyAgreement: createKeyAgreement(acbKey.privateKey) },
    log: { dir: join(validatorDir, 'decisions'), id: LOG_ID, key: logKey },
  });

  line('\n3. Remote disconnects: the key store signs each for the key its meter trusts; the validator decides');
  let counter = BigInt(Date.now());
  const decisions: Decision[] = [];
  const sent: Uint8Array[] = [];
  const disconnect = async (device: Eui64): Promise<Decision> => {
    const c = counter++;
    const pre = buildDisableSupply({ fuel: 'electricity', originator: SUPPLIER, recipient: device, counter: c });
    const messageCode = parseMessage(pre).messageCode;
    const trusted = await ks.key((await ks.device(SUPPLIER, device)).installed.signing!);
    const signer: Signer = { publicKey: fromHex(trusted.publicKey), sign: (m) => ks.signFor(device, m, { messageCode, counter: c }) };
    const bytes = await signPreCommand(pre, signer);
    sent.push(bytes);
    const d = await validator.validate(bytes, { sender: SUPPLIER });
    decisions.push(d);
    line(`  ${device} counter ${c}: ${d.outcome}${d.outcome === 'rejected' ? ` ${d.code}` : ''}`);
    return d;
  };
  for (const device of [N1, N2, S1, S2]) await disconnect(device);
  line(`  C2 moves from north to south; until its credentials are updated it trusts the north key`);
  await ks.moveDevice(SUPPLIER, N2, 'south');
  await disconnect(N2);
  line('  C2\'s credentials updated (the validator\'s registry follows the meter\'s new trust anchor)');
  await ks.markCredentialsUpdated(SUPPLIER, N2, 'signing');
  await registry.put([await recordFor(N2, 'south', kaCert.get(N2)!)]);
  await disconnect(N2);
  const replay = await validator.validate(sent[0]!, { sender: SUPPLIER });
  decisions.push(replay);
  line(`  the first command sent again: ${replay.outcome}${replay.outcome === 'rejected' ? ` ${replay.code}` : ''}`);
  let refusal = '';
  try {
    await ks.signWith(handleOf.get('north')!, S1, new Uint8Array([1]));
  } catch (e) {
    if (!isSmkiError(e)) throw e;
    refusal = e.code;
  }
  line(`  the north key asked to sign for D1 (a south meter): ${refusal || 'signed'}`);
  const accepted = decisions.filter((d) => d.outcome === 'accepted').length;
  check(accepted === 6 && replay.outcome === 'rejected' && replay.code === 'ERR_COMMAND_REPLAYED' && refusal === 'ERR_KEY_PORTFOLIO_MISMATCH', `6 commands accepted, the replay rejected, the out-of-portfolio signature refused by the key store`);

  const liveDevices = await Promise.all([N1, N2, S1, S2].map((d) => ks.device(SUPPLIER, d)));
  const live: LiveView = {
    portfolioOf: new Map(liveDevices.map((d) => [d.device, d.portfolioId])),
    installed: new Map(liveDevices.map((d) => [d.device, d.installed.signing])),
  };
  // The auditor gets the store's audit public key from the supplier out of band (it is no secret).
  const auditPublicKey = ks.auditPublicKey;
  await validator.close();
  await ks.close();
  await backend.close();

  line('\n4. Hand the evidence over: a copy of the key store\'s database (metadata and trail), the decision log and its head');
  // The auditor works on a copy, never on the live files: what is verified is what is read.
  mkdirSync(evidenceDir, { mode: 0o700 });
  const trailDir = join(evidenceDir, 'keystore');
  cpSync(keystoreDir, trailDir, { recursive: true });
  copyFileSync(join(validatorDir, 'decisions', DECISION_LOG_FILE), join(evidenceDir, DECISION_LOG_FILE));
  // The decision log's head is committed in the validator's state store with every decision.
  const intent = await state.logIntent(LOG_ID);
  writeFileSync(join(evidenceDir, 'decisions.head.json'), JSON.stringify(intent?.after ?? null));
  await Promise.all([state.close(), registry.close(), firmware.close()]);
  line(`  ${evidenceDir}: keystore/${KEYSTORE_DATABASE_FILE}, ${DECISION_LOG_FILE}, decisions.head.json`);

  // ===========================================================================================
  line('\nPART 2: the audit, on the copy, with the key store\'s audit public key and the decision log\'s key');
  line('(what part 1 saw is used only to confirm what the audit finds)\n');

  line('5. Both logs verify: the key-store trail\'s sealed batches and chain; the decision log\'s chain, HMACs, count and head');
  type Rec = { readonly seq: number; readonly at: string; readonly type: string } & Readonly<Record<string, unknown>>;
  const trail: Rec[] = [];
  const trailCheck = await KeyStore.verifyAuditTrail({ directory: trailDir, auditPublicKey, onRecord: (r: AuditRecord) => trail.push(r as unknown as Rec) });
  check(trailCheck.ok, `key-store audit trail: ${trailCheck.count} records in ${trailCheck.batches} batches, each sealed with the store's audit key, verify with its public key alone`);
  const head = JSON.parse(readFileSync(join(evidenceDir, 'decisions.head.json'), 'utf8')) as AuditHead;
  const decisionCheck = await verifyAuditLog(join(evidenceDir, DECISION_LOG_FILE), { key: logKey, schema: DECISION_LOG_SCHEMA, head });
  check(decisionCheck.ok && decisionCheck.count === decisions.length, `decision log: ${decisionCheck.count} records verify against the head the state store committed`);

  // The decision log's records, from the verified copy (the format: packages/keystore/src/audit.ts, one JSON object per line).
  const readRecords = (path: string): Rec[] =>
    readFileSync(path, 'utf8')
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as Rec);
  const decided = readRecords(join(evidenceDir, DECISION_LOG_FILE));
  check(trail.length === trailCheck.count && decided.length === decisionCheck.count, 'the records read are the records verified');

  line('\n6. Every use of the north portfolio\'s keys');
  const uses = trail.filter((r) => r.type === 'key.used');
  const northUses = uses.filter((r) => r.portfolioId === 'north');
  line('  seq  at                        operation  key                               device            message  counter');
  for (const r of northUses) {
    line(`  ${String(r.seq).padEnd(4)} ${r.at}  ${String(r.operation).padEnd(9)}  ${String(r.keyId).padEnd(32)}  ${r.device}  ${hex4(r.messageCode)}   ${r.counter}`);
  }
  check(northUses.length === 3 && northUses.every((r) => r.operation === 'sign'), `${northUses.length} signatures with north keys (C1, C2, and C2 once more after it moved), nothing else`);

  line('\n7. Replay the trail: no key signed for a meter outside its portfolio, nor with a key the meter did not trust');
  interface KeyFacts {
    organisation: string;
    portfolio: string;
    purpose: string;
    state: string;
    serial?: string;
  }
  const keys = new Map<string, KeyFacts>();
  const current = new Map<string, string>(); // organisation/portfolio/purpose -> key id
  const wholeEstate = new Map<string, readonly string[]>(); // organisation/portfolio -> purposes
  const devices = new Map<string, { portfolio: string; installed: Record<string, string> }>(); // organisation/device
  const verdicts = { inPortfolio: 0, movedNotYetUpdated: 0, violations: [] as string[] };
  for (const r of trail) {
    const key = keys.get(String(r.keyId));
    switch (r.type) {
      case 'portfolio.created':
        wholeEstate.set(`${r.organisation}/${r.portfolioId}`, r.wholeEstate as string[]);
        break;
      case 'key.generated':
        keys.set(String(r.keyId), { organisation: String(r.organisation), portfolio: String(r.portfolioId), purpose: String(r.purpose), state: 'pending' });
        break;
      case 'certificate.attached':
        if (!key) break;
        key.serial = String(r.serialNumber);
        // The first key of a (portfolio, purpose) becomes current with its certificate; a later one at its rotation.
        if (!current.has(`${key.organisation}/${key.portfolio}/${key.purpose}`)) {
          current.set(`${key.organisation}/${key.portfolio}/${key.purpose}`, String(r.keyId));
          key.state = 'active';
        }
        break;
      case 'key.rotated': {
        current.set(`${r.organisation}/${r.portfolioId}/${r.purpose}`, String(r.toKeyId));
        const to = keys.get(String(r.toKeyId));
        if (to) to.state = 'active';
        break;
      }
      case 'key.retired':
      case 'key.revoked':
        if (!key) break;
        key.state = r.type === 'key.retired' ? 'retired' : 'revoked';
        if (current.get(`${key.organisation}/${key.portfolio}/${key.purpose}`) === r.keyId) current.delete(`${key.organisation}/${key.portfolio}/${key.purpose}`);
        break;
      case 'device.assigned': {
        // The meter was commissioned with the portfolio's current certificates (the store's default).
        const installed: Record<string, string> = {};
        for (const purpose of ['signing', 'keyAgreement', 'prepaymentKeyAgreement']) {
          const k = current.get(`${r.organisation}/${r.portfolioId}/${purpose}`);
          if (k !== undefined) installed[purpose] = k;
        }
        devices.set(`${r.organisation}/${r.device}`, { portfolio: String(r.portfolioId), installed });
        break;
      }
      case 'device.moved': {
        const d = devices.get(`${r.organisation}/${r.device}`);
        if (d) d.portfolio = String(r.toPortfolioId);
        break;
      }
      case 'device.credentials-updated': {
        const d = key && devices.get(`${key.organisation}/${r.device}`);
        if (d) d.installed[String(r.purpose)] = String(r.keyId);
        break;
      }
      case 'key.used': {
        if (r.operation !== 'sign') break;
        const where = `seq ${r.seq}: ${r.keyId} for ${r.device}`;
        const d = key && devices.get(`${key.organisation}/${r.device}`);
        const estate = key !== undefined && (wholeEstate.get(`${key.organisation}/${key.portfolio}`) ?? []).includes('signing');
        if (!key || key.purpose !== 'signing') verdicts.violations.push(`${where}: not a known signing key`);
        else if (r.portfolioId !== key.portfolio) verdicts.violations.push(`${where}: the record names portfolio ${r.portfolioId}, the key is ${key.portfolio}'s`);
        else if (key.state !== 'active') verdicts.violations.push(`${where}: the key was ${key.state}`);
        else if (!d) verdicts.violations.push(`${where}: the meter was in no portfolio`);
        else if (!estate && d.installed.signing !== r.keyId) verdicts.violations.push(`${where}: the meter trusted ${d.installed.signing ?? 'no key'}`);
        else if (d.portfolio === key.portfolio || estate) verdicts.inPortfolio++;
        else verdicts.movedNotYetUpdated++; // moved, still trusting its old portfolio's key until its update
        break;
      }
    }
  }
  const signs = uses.filter((r) => r.operation === 'sign').length;
  line(`  ${signs} signatures: ${verdicts.inPortfolio} for a meter of the key's own portfolio, ${verdicts.movedNotYetUpdated} for a meter that had just left it and still trusted that key`);
  for (const v of verdicts.violations) line(`  ✘ ${v}`);
  check(verdicts.violations.length === 0 && verdicts.inPortfolio + verdicts.movedNotYetUpdated === signs, 'no signature for a meter outside the key\'s portfolio, none with a key the meter did not trust');
  check(verdicts.movedNotYetUpdated === 1, 'the one signature across portfolios is C2\'s, after its move and before its credential update');
  const rebuilt = [...live.portfolioOf.keys()].every((d) => devices.get(`${SUPPLIER}/${d}`)?.portfolio === live.portfolioOf.get(d) && devices.get(`${SUPPLIER}/${d}`)?.installed.signing === live.installed.get(d));
  check(rebuilt, 'the assignments and trusted keys rebuilt from the trail are the key store\'s own (C1 north; C2, D1, D2 south)');

  line('\n8. Cross-reference the decision log with the trail: every accepted command was signed by the key the validator named');
  const serialOf = new Map([...keys].map(([id, k]) => [id, k.serial]));
  let matched = 0;
  for (const a of decided.filter((r) => r.type === 'command.accepted')) {
    const signed = uses.filter((u) => u.operation === 'sign' && u.device === a.device && Number(u.messageCode) === Number(a.messageCode) && String(u.counter) === String(a.counter));
    const ok = signed.length === 1 && serialOf.get(String(signed[0]!.keyId)) === a.signerSerial;
    if (ok) matched++;
    line(`  ${ok ? '✔' : '✘'} ${a.device} ${hex4(a.messageCode)} counter ${a.counter}: signer ${a.signerSerial} = ${signed[0]?.keyId ?? '(no sign record)'} (trail seq ${signed[0]?.seq ?? '-'})`);
  }
  check(matched === accepted, `${matched} of ${accepted} accepted commands matched to exactly one signature of the key whose certificate the validator checked`);
  const rejected = decided.filter((r) => r.type === 'command.rejected');
  check(rejected.length === 1 && rejected[0]!.code === 'ERR_COMMAND_REPLAYED', `${rejected.length} rejection in the decision log: ${rejected.map((r) => `${r.code} for ${r.device} counter ${r.counter}`).join('')}`);
  const hashes = new Set(sent.map((b) => createHash('sha256').update(b).digest('hex').toUpperCase()));
  check(decided.every((r) => hashes.has(String(r.commandHash))), 'every decision names the SHA-256 of a command that was sent (the log holds no command bytes)');

  line('\n9. A one-byte edit of either log is detected');
  const tampered = join(work, 'tampered');
  cpSync(trailDir, join(tampered, 'keystore'), { recursive: true });
  const target = northUses[0]!;
  const edited = editTrailRecord(join(tampered, 'keystore', KEYSTORE_DATABASE_FILE), target.seq, `"device":"${target.device}"`);
  const t1 = await KeyStore.verifyAuditTrail({ directory: join(tampered, 'keystore'), auditPublicKey });
  check(!t1.ok && t1.findings[0]?.code === 'ERR_AUDIT_TAMPERED' && t1.findings[0].seq === target.seq, `trail, record ${target.seq}'s device ${edited}: ${t1.findings[0]?.code ?? 'not detected'} at record ${t1.findings[0]?.seq}`);
  const decisionPath = join(tampered, DECISION_LOG_FILE);
  copyFileSync(join(evidenceDir, DECISION_LOG_FILE), decisionPath);
  const victim = decided.find((r) => r.type === 'command.accepted')!;
  const edited2 = editOneByte(decisionPath, victim.seq, `"counter":"${victim.counter}"`);
  const t2 = await verifyAuditLog(decisionPath, { key: logKey, schema: DECISION_LOG_SCHEMA, head });
  check(!t2.ok && t2.findings[0]?.code === 'ERR_AUDIT_TAMPERED' && t2.findings[0].line === victim.seq, `decision log, record ${victim.seq}'s counter ${edited2}: ${t2.findings[0]?.code ?? 'not detected'} at line ${t2.findings[0]?.line}`);
  const lines = readFileSync(join(evidenceDir, DECISION_LOG_FILE), 'utf8').split('\n').filter((l) => l.length > 0);
  writeFileSync(decisionPath, `${lines.slice(0, -1).join('\n')}\n`);
  const t3 = await verifyAuditLog(decisionPath, { key: logKey, schema: DECISION_LOG_SCHEMA, head });
  check(!t3.ok && t3.findings[0]?.code === 'ERR_AUDIT_TRUNCATED', `decision log with its last record cut off: ${t3.findings[0]?.code ?? 'not detected'} (the head in the state store says ${head.count} records)`);
} catch (e) {
  failures++;
  console.error(`\n  ✘ ${isSmkiError(e) ? `${e.code}: ${e.message}` : e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}

/**
 * Change one byte of line `lineNo` (from 1) of a log file: the last hex digit of the value that
 * follows `field` on that line, to another hex digit (the line stays well-formed JSON).
 * Returns the edit as `old → new`.
 */
function editOneByte(path: string, lineNo: number, field: string): string {
  const bytes = readFileSync(path);
  let start = 0;
  for (let n = 1; n < lineNo; n++) start = bytes.indexOf(0x0a, start) + 1;
  return flipLastValueByte(path, bytes, start, bytes.indexOf(0x0a, start), field, `line ${lineNo}`);
}

/**
 * Change one byte of record `seq` of a key-store trail in the database file itself, as someone
 * with the file and a hex editor would (SQLite keeps no checksum of its pages: only the seals
 * notice). The file may also hold stale copies of the record in free pages: each is changed.
 */
function editTrailRecord(path: string, seq: number, field: string): string {
  const marker = `{"seq":${seq},"`;
  let edited = '';
  for (let start = readFileSync(path).indexOf(marker); start >= 0; ) {
    const bytes = readFileSync(path);
    edited = flipLastValueByte(path, bytes, start, bytes.indexOf('}', start), field, `record ${seq}`);
    start = bytes.indexOf(marker, start + 1);
  }
  if (edited === '') throw new Error(`record ${seq} is not in ${path}`);
  return edited;
}

function flipLastValueByte(path: string, bytes: Buffer, start: number, end: number, field: string, where: string): string {
  const at = bytes.indexOf(field, start);
  if (at < 0 || at > end) throw new Error(`${field} is not in ${where}`);
  const i = at + field.length - 2; // the last character inside the value's quotes
  const before = String.fromCharCode(bytes[i]!);
  const after = before === '1' ? '2' : '1';
  bytes[i] = after.charCodeAt(0);
  writeFileSync(path, bytes);
  const value = field.slice(field.lastIndexOf(':"') + 2, -1);
  return `${value} → ${value.slice(0, -1)}${after}`;
}

line(failures === 0 ? '\nDone: every claim above holds.' : `\nFAILED: ${failures} claim(s) above do not hold.`);
process.exitCode = failures === 0 ? 0 : 1;
