/**
 * A head-end on PostgreSQL: the device registry, the firmware allowlist and the anti-replay state
 * in one database, and a pool of two validator worker threads deciding a batch of remote
 * disconnects (GBCS ECS43 pre-commands signed by the supplier, docs/domain.md §3–§5). Shows the
 * accepted frames (checked as the meter checks the ACB MAC), a replay refused, a command signed
 * with another portfolio's key refused, and every decision in a verified log.
 *
 *   PGHOST=… PGPORT=… PGUSER=… PGDATABASE=… PGPASSFILE=… pnpm exec tsx examples/head-end-validator/main.ts
 *
 * Exits non-zero if any claim it prints does not hold. See README.md beside this file.
 */
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeySigner, isSmkiError, parseEui64, type Eui64, type Signer } from '@smki/core';
import { buildDisableSupply, signPreCommand, verifyMac, verifySignature } from '@smki/gbcs';
import { verifyAuditLog } from '@smki/keystore';
import { createHierarchy, issueCrl, issueDeviceCertificate, issueOrganisationCertificate, type SmkiCertificate } from '@smki/pki';
import { PostgresDeviceRegistry, PostgresFirmwareAllowlist, PostgresStateStore, type DeviceRecord } from '@smki/store';
import { DECISION_LOG_FILE, DECISION_LOG_SCHEMA, ValidatorPool, type AcceptedDecision, type Decision } from '@smki/validator';
import { logIdOf, type HeadEndSetupData } from './setup.js';

const SUPPLIER = parseEui64('90B3D51F30010000');
const NETWORK_OPERATOR = parseEui64('90B3D51F30030000');
const ACB = parseEui64('90B3D51F30000004');
const MODEL = 'ACME-ESME-1';
const WORKERS = 2;

let failures = 0;
const line = (s = '') => console.log(s);
/** Print a claim and count it as failed unless it holds. */
function check(holds: boolean, claim: string): void {
  console.log(`  ${holds ? '✔' : '✘'} ${claim}`);
  if (!holds) failures++;
}

// ---------------------------------------------------------------------------------------------
line('Head-end validator on PostgreSQL, two worker threads\n');

line('1. Where the stores connect (libpq environment; the password only from a password file)');
const env = process.env;
if (env.PGPASSWORD !== undefined) line('  note: PGPASSWORD is set; prefer a password file (PGPASSFILE or ~/.pgpass, mode 0600)');
const target = env.PGSERVICE !== undefined ? `service ${env.PGSERVICE}` : `${env.PGUSER ?? '(OS user)'}@${env.PGHOST ?? 'localhost'}:${env.PGPORT ?? '5432'}/${env.PGDATABASE ?? env.PGUSER ?? '(user name)'}`;
line(`  server: ${target}; password file: ${env.PGPASSFILE ?? '~/.pgpass (or the service file)'}`);
// A schema of its own per run: every table of this run lives there (drop it afterwards).
const schema = `smki_example_${randomBytes(4).toString('hex')}`;
line(`  schema: ${schema} (created now; drop it later with: psql -c 'DROP SCHEMA ${schema} CASCADE')`);

const runDir = mkdtempSync(join(tmpdir(), 'smki-head-end-'));
const opened: { close(): Promise<void> }[] = [];
let pool: ValidatorPool | undefined;
try {
  // -------------------------------------------------------------------------------------------
  line('\n2. A test SMKI hierarchy, the supplier\'s two portfolio keys, the network operator, the ACB');
  const issued = new Date(Date.now() - 24 * 3600_000);
  const clock = () => issued;
  const hierarchy = await createHierarchy({ now: clock });
  const newKey = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const org = async (entityId: Eui64, role: number, keyUsage: 'digitalSignature' | 'keyAgreement', commonName: string) => {
    const k = newKey();
    const certificate = await issueOrganisationCertificate({ issuer: hierarchy.organisationCa, role, entityId, keyUsage, publicKey: k.publicKey, commonName, now: clock });
    return { privateKey: k.privateKey, signer: createKeySigner(k.privateKey), certificate };
  };
  const portfolios = [await org(SUPPLIER, 2, 'digitalSignature', 'Supplier north'), await org(SUPPLIER, 2, 'digitalSignature', 'Supplier south')];
  const names = ['north', 'south'];
  const networkOperator = await org(NETWORK_OPERATOR, 3, 'digitalSignature', 'Network operator');
  const acb = await org(ACB, 4, 'keyAgreement', 'ACB');
  const now = Date.now();
  const crl = await issueCrl({ issuer: hierarchy.organisationCa, crlNumber: 1n, kind: 'crl', thisUpdate: new Date(now - 3600_000), nextUpdate: new Date(now + 7 * 24 * 3600_000) });
  const arl = await issueCrl({ issuer: hierarchy.root, crlNumber: 1n, kind: 'arl', thisUpdate: new Date(now - 3600_000), nextUpdate: new Date(now + 7 * 24 * 3600_000) });
  for (const [i, p] of portfolios.entries()) line(`  supplier DS (${names[i]}): serial ${p.certificate.serialNumber}, SKI ${p.certificate.subjectKeyId}`);
  line(`  network operator DS: serial ${networkOperator.certificate.serialNumber}; ACB KA: serial ${acb.certificate.serialNumber}`);

  // -------------------------------------------------------------------------------------------
  line('\n3. Register six meters in the PostgreSQL device registry (each trusts one portfolio\'s key)');
  interface Meter {
    readonly eui: Eui64;
    readonly portfolio: number;
    readonly ka: KeyObject;
    readonly record: DeviceRecord;
  }
  const meters: Meter[] = [];
  for (let i = 0; i < 6; i++) {
    const eui = parseEui64(`00DB1234567890${(0xa0 + i).toString(16).toUpperCase()}`);
    const ka = newKey();
    const kaCertificate = await issueDeviceCertificate({ issuer: hierarchy.deviceCa, entityId: eui, keyUsage: 'keyAgreement', publicKey: ka.publicKey, now: clock });
    const portfolio = i % 2;
    const record: DeviceRecord = {
      device: eui,
      type: 'ESME',
      fuel: 'electricity',
      model: MODEL,
      supplier: SUPPLIER,
      networkOperator: NETWORK_OPERATOR,
      cells: [
        { role: 2, keyUsage: 'digitalSignature', cellUsage: 'management', ski: portfolios[portfolio]!.certificate.subjectKeyId!, entity: SUPPLIER },
        { role: 3, keyUsage: 'digitalSignature', cellUsage: 'management', ski: networkOperator.certificate.subjectKeyId!, entity: NETWORK_OPERATOR },
      ],
      keyAgreementCertificate: kaCertificate.der,
    };
    meters.push({ eui, portfolio, ka: ka.privateKey, record });
  }
  const registry = await PostgresDeviceRegistry.open({ schema, maxConnections: 1 });
  opened.push(registry);
  await registry.put(meters.map((m) => m.record));
  const firmware = await PostgresFirmwareAllowlist.open({ schema, maxConnections: 1 });
  opened.push(firmware);
  const state = await PostgresStateStore.open({ schema, maxConnections: 1 });
  opened.push(state);
  for (const m of meters) line(`  ${m.eui}  ESME electricity, trusts the ${names[m.portfolio]} key`);
  check((await registry.count()) === meters.length, `the registry holds ${meters.length} devices`);
  const back = await registry.device(meters[3]!.eui);
  check(back?.cells[0]?.ski === portfolios[1]!.certificate.subjectKeyId, `read back: ${meters[3]!.eui}'s supplier cell names the south key's SKI`);

  // -------------------------------------------------------------------------------------------
  line('\n4. Start a ValidatorPool of two workers (setup.ts: own connections, own decision log each)');
  const acbKeyFile = join(runDir, 'acb-ka.pem');
  writeFileSync(acbKeyFile, acb.privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  const logKeyFile = join(runDir, 'decision-log.key');
  const logKey = randomBytes(32);
  writeFileSync(logKeyFile, logKey, { mode: 0o600 });
  const logDir = join(runDir, 'decisions');
  const data: HeadEndSetupData = {
    schema,
    certificates: [hierarchy.root.certificate, hierarchy.organisationCa.certificate, hierarchy.deviceCa.certificate, ...portfolios.map((p) => p.certificate), networkOperator.certificate, acb.certificate].map((c: SmkiCertificate) => c.der),
    crls: [crl.der, arl.der],
    acbKeyFile,
    logKeyFile,
    logDir,
  };
  const started = Date.now();
  pool = await ValidatorPool.open({ setup: new URL('./setup.ts', import.meta.url), workers: WORKERS, data, chunkSize: 4 });
  check(pool.workers === WORKERS, `${pool.workers} workers opened their validators in ${Date.now() - started} ms`);

  // -------------------------------------------------------------------------------------------
  const south = meters[1]!;
  line('\n5. The supplier signs a remote disconnect (ECS43) for each meter with the key that meter trusts');
  const base = BigInt(Date.now()); // counters: milliseconds since the epoch, as the DCC's tools make them
  const disconnect = (m: Meter, counter: bigint, signer: Signer) =>
    signPreCommand(buildDisableSupply({ fuel: 'electricity', originator: SUPPLIER, recipient: m.eui, counter }), signer);
  const commands = await Promise.all(meters.map((m, i) => disconnect(m, base + BigInt(i), portfolios[m.portfolio]!.signer)));
  check(commands.every((c, i) => verifySignature(c, portfolios[meters[i]!.portfolio]!.certificate)), `${commands.length} signed pre-commands, each verifies against its portfolio's certificate`);
  // A command for a south meter signed with the north key: a key used outside its portfolio.
  const wrongKey = await disconnect(south, base + 100n, portfolios[0]!.signer);
  line(`  and one more for ${south.eui} (a south meter) signed with the north key, counter ${base + 100n}`);

  // -------------------------------------------------------------------------------------------
  line('\n6. Validate one batch through the pool: six commands, a copy of the first, the wrong-key command');
  const batch = [...commands, commands[0]!, wrongKey].map((bytes) => ({ bytes, sender: SUPPLIER }));
  const decisions = await pool.validateBatch(batch);
  check(decisions.length === batch.length, `${decisions.length} decisions, in the order of the batch`);
  const first = [decisions[0]!, decisions[6]!];
  const accepted = decisions.filter((d): d is AcceptedDecision => d.outcome === 'accepted');
  const show = (d: Decision) =>
    d.outcome === 'accepted'
      ? `accepted  ${d.device} counter ${d.counter} signer ${d.signerSerial} frame ${d.frame.length} bytes`
      : `${d.outcome}  ${d.device ?? '?'} counter ${d.counter ?? '?'} ${'code' in d ? `${d.code} (step ${d.step})` : ''}`;
  for (const d of decisions) line(`  ${show(d)}`);
  for (let i = 1; i < meters.length; i++) check(decisions[i]!.outcome === 'accepted', `${meters[i]!.eui}: accepted`);
  const onceFirst = first.filter((d) => d.outcome === 'accepted').length === 1 && first.some((d) => d.outcome === 'rejected' && d.code === 'ERR_COMMAND_REPLAYED');
  check(onceFirst, `${meters[0]!.eui}: the command and its copy (two chunks, two workers): one accepted, the other rejected ERR_COMMAND_REPLAYED`);
  const mismatch = decisions[7]!;
  check(mismatch.outcome === 'rejected' && mismatch.code === 'ERR_COMMAND_PORTFOLIO_MISMATCH', `wrong-key command: rejected ${mismatch.outcome === 'rejected' ? mismatch.code : mismatch.outcome} (the meter trusts the south key only)`);

  line('\n7. Each accepted frame, checked as the meter checks it (its own KA key and the ACB certificate)');
  for (const d of accepted) {
    const m = meters.find((x) => x.eui === d.device)!;
    const macOk = verifyMac(d.frame, { privateKey: m.ka, publicKey: acb.certificate });
    const otherOk = verifyMac(d.frame, { privateKey: meters.find((x) => x.eui !== d.device)!.ka, publicKey: acb.certificate });
    check(macOk && !otherOk && d.signerSerial === portfolios[m.portfolio]!.certificate.serialNumber, `${d.device}: ACB MAC verifies for this meter only; signer is the ${names[m.portfolio]} certificate`);
  }
  check(accepted.length === meters.length, `${accepted.length} frames released, one per meter`);

  // -------------------------------------------------------------------------------------------
  line('\n8. The same command again, in a later batch: a replay');
  const replay = await pool.validate(commands[2]!, { sender: SUPPLIER });
  line(`  ${show(replay)}`);
  check(replay.outcome === 'rejected' && replay.code === 'ERR_COMMAND_REPLAYED' && replay.step === 'replay', `rejected ERR_COMMAND_REPLAYED (step replay): counter ${base + 2n} was already accepted for this meter`);
  const stats = pool.stats();
  line(`  pool stats: ${JSON.stringify(stats)}`);
  check(
    stats.accepted === meters.length && stats.rejected['ERR_COMMAND_REPLAYED'] === 2 && stats.rejected['ERR_COMMAND_PORTFOLIO_MISMATCH'] === 1,
    `${stats.accepted} accepted, 2 replays and 1 portfolio mismatch rejected`,
  );

  // -------------------------------------------------------------------------------------------
  line('\n9. Close the pool (each worker closes its validator, its log and its connections)');
  await pool.close();
  pool = undefined;
  line('  closed');

  line('\n10. What is durable: the counters in PostgreSQL, every decision in a verified log');
  for (const [i, m] of meters.entries()) {
    const last = await state.lastCounter(SUPPLIER, m.eui);
    check(last === base + BigInt(i), `${m.eui}: last accepted counter ${last}${m === south ? ` (the wrong-key command, counter ${base + 100n}, moved nothing)` : ''}`);
  }
  let records = 0;
  for (let slot = 0; slot < WORKERS; slot++) {
    const intent = await state.logIntent(logIdOf(slot));
    const path = join(logDir, `worker-${slot}`, DECISION_LOG_FILE);
    const v = await verifyAuditLog(path, { key: logKey, schema: DECISION_LOG_SCHEMA, ...(intent ? { head: intent.after } : {}) });
    records += v.count;
    check(v.ok, `worker ${slot}: decision log ${v.count} records, chain and MACs verify against the head PostgreSQL holds${v.ok ? '' : `: ${v.findings[0]?.code}`}`);
  }
  check(records === batch.length + 1, `${records} decision records in all: one per decision`);
} catch (e) {
  failures++;
  console.error(`\n  ✘ ${isSmkiError(e) ? `${e.code}: ${e.message}` : e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
} finally {
  if (pool) await pool.close().catch(() => undefined);
  for (const s of opened.reverse()) await s.close().catch(() => undefined);
  rmSync(runDir, { recursive: true, force: true });
}

line(failures === 0 ? '\nDone: every claim above holds.' : `\nFAILED: ${failures} claim(s) above do not hold.`);
process.exitCode = failures === 0 ? 0 : 1;
