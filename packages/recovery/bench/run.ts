// Recovery plan benchmarks: `pnpm -C packages/recovery run bench` (never run by the test command).
// One JSON line per figure; ratios against a baseline measured in the same process; never fails on
// speed.
//
//   recovery.plan   from declaring a compromise (`planCompromise` on a supplier key store whose
//                   north portfolio holds BENCH_METERS meters, default 100,000, assigned in bulk
//                   with `assignDevices`), through attaching the new certificates, to every
//                   command built and signed (mode 8, batches of BENCH_BATCH): ms, meters per second
//   recovery.build  commands built and signed per second over the portfolio, per route:
//                   `rotation` (mode 2, the supplier's key store signs each with the key the meter
//                   trusts) and `compromise` (mode 8, the Recovery party's own key store through a
//                   signing session bound to each batch's commands, approved by another operator;
//                   batches of BENCH_BATCH, default 1,000), each with `ratio` to bare node:crypto
//                   ECDSA P-256 signing of the same number of messages (one command's signed bytes)
//                   measured in the same run, and rssMiB
//
// Building stops after BENCH_BUDGET_S seconds per route (default 150, so that a run at 100,000
// meters stays under 10 minutes on a busy 2-core machine); a line that stopped early says so in
// `note`, with `built` below `meters` and `estimatedFullMs` the whole portfolio at the measured rate.
//
// The key stores are file-backed (SQLite) with memory key backends; the plan database is SQLite
// (synchronous FULL). docs/domain.md §9 (CS02b modes 2 and 8), docs/keystore-estate.md §2.
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createKeySigner, parseEui64 } from '@smki/core';
import { parseMessage, signedBytes } from '@smki/gbcs';
import { createApproval, KeyStore, MemoryKeyBackend, type KeyPurpose } from '@smki/keystore';
import { createHierarchy, issueOrganisationCertificate, type SmkiHierarchy } from '@smki/pki';
import { RecoveryPlans, type BatchProposal, type RecoverySigning } from '../src/index.js';

const METERS = Number(process.env.BENCH_METERS ?? '100000');
const BATCH = Number(process.env.BENCH_BATCH ?? '1000');
/** Per route, building stops after this many seconds (default 150) and the line says so: the full portfolio's time is then an estimate. */
const BUDGET_S = Number(process.env.BENCH_BUDGET_S ?? '150');
const SUPPLIER = '90B3D51F30010000';
const RECOVERY = '90B3D51F30000001';
const BULK = 100_000;
const PASS = 'bench passphrase';
const meter = (i: number) => `00DB${i.toString(16).toUpperCase().padStart(12, '0')}`;
const mib = () => Math.round(process.memoryUsage().rss / (1 << 20));
const line = (bench: string, fields: Record<string, unknown>) => console.log(JSON.stringify({ bench, ...fields }));
const usage = (p: KeyPurpose) => (p === 'signing' ? 'digitalSignature' : 'keyAgreement');

const dir = mkdtempSync(join(tmpdir(), 'smki-recovery-bench-'));
let n = 0;
const sub = () => join(dir, String(n++));
const meters = Array.from({ length: METERS }, (_, i) => meter(i + 1));

async function assign(store: KeyStore, org: string, portfolioId: string): Promise<void> {
  for (let from = 0; from < METERS; from += BULK) await store.assignDevices(org, meters.slice(from, from + BULK).map((device) => ({ device, portfolioId })));
}

async function issue(h: SmkiHierarchy, store: KeyStore, org: string, portfolio: string, purpose: KeyPurpose, role = 2) {
  const handle = await store.generateKey(org, portfolio, purpose);
  const cert = await issueOrganisationCertificate({ issuer: h.organisationCa, role, entityId: org, keyUsage: usage(purpose), csr: await store.createCsr(handle.keyId) });
  await store.attachCertificate(handle.keyId, cert);
  return cert;
}

/** A supplier key store with one portfolio of METERS meters (DS and KA keys), and a named further backend. */
async function supplier(h: SmkiHierarchy) {
  const store = await KeyStore.open({ directory: sub(), backend: new MemoryKeyBackend(), passphrase: PASS, backends: { 'token-b': new MemoryKeyBackend() } });
  await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
  await store.createPortfolio(SUPPLIER, { id: 'north' });
  await issue(h, store, SUPPLIER, 'north', 'signing');
  await issue(h, store, SUPPLIER, 'north', 'keyAgreement');
  const t = performance.now();
  await assign(store, SUPPLIER, 'north');
  return { store, assignMs: Math.round(performance.now() - t) };
}

/** The Recovery party's store: its DS key for every meter, a service operator and a duty officer who approves (policy: one approval). */
async function recoveryParty(h: SmkiHierarchy): Promise<{ store: KeyStore; signing: RecoverySigning }> {
  const store = await KeyStore.open({ directory: sub(), backend: new MemoryKeyBackend(), passphrase: PASS });
  await store.addOrganisation({ entityId: RECOVERY, role: 1 });
  await store.createPortfolio(RECOVERY, { id: 'recovery' });
  const certificate = await issue(h, store, RECOVERY, 'recovery', 'signing', 1);
  await assign(store, RECOVERY, 'recovery');
  const org = parseEui64(RECOVERY);
  const svc = createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
  const officer = createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
  const admin = createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
  await store.initialiseAccess({
    operators: [
      { operatorId: 'svc', publicKey: svc.publicKey, grants: [{ role: 'signer' as const, organisation: org, portfolioId: 'recovery' }] },
      { operatorId: 'officer', publicKey: officer.publicKey, grants: [{ role: 'signer' as const, organisation: org, portfolioId: 'recovery' }] },
      { operatorId: 'admin', publicKey: admin.publicKey, grants: [{ role: 'administrator' as const, organisation: '*' as const }] },
    ],
    policy: { v: 1, rules: [{ operation: 'session.sign', approvals: 1 }] },
  });
  const approve = async (p: BatchProposal) => [await createApproval(officer, { storeId: p.storeId, proposalId: p.proposalId, operationHash: p.operationHash, approverId: 'officer', expiresAt: new Date(Date.now() + 3_600_000) })];
  return { store, signing: { store, portfolioId: 'recovery', operatorId: 'svc', operatorSigner: svc, certificate, approve } };
}

/** Bare node:crypto ECDSA P-256 signing of `count` messages like `message`: signatures per second. */
function baseline(message: Uint8Array, count: number): number {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const t = performance.now();
  for (let i = 0; i < count; i++) sign('sha256', message, { key, dsaEncoding: 'ieee-p1363' });
  return count / ((performance.now() - t) / 1000);
}

/** When building stopped at the budget: a note, and the whole portfolio's time at the measured rate. */
function early(built: number, ms: number, perSec: number, fixedMs = 0): Record<string, unknown> {
  if (built >= METERS) return {};
  return {
    note: `stopped after ${BUDGET_S} s of building with ${built} of ${METERS} meters built: ${METERS} is too slow for a 10-minute run here; estimatedFullMs is the whole portfolio at the measured rate`,
    estimatedFullMs: Math.round(fixedMs + (METERS / perSec) * 1000),
    measuredMs: Math.round(ms),
  };
}

let counter = BigInt(Date.now()) * 1000n;
const counters = { nextCounter: () => counter++ };

try {
  const started = performance.now();
  const h = await createHierarchy();
  const deviceTrust = { anchors: [h.root.certificate], intermediates: [h.deviceCa.certificate] };
  const certs = async (store: KeyStore, csrs: Partial<Record<KeyPurpose, Uint8Array>>) => ({
    certificates: Object.fromEntries(await Promise.all(Object.entries(csrs).map(async ([p, csr]) => [p, (await issueOrganisationCertificate({ issuer: h.organisationCa, role: 2, entityId: SUPPLIER, keyUsage: usage(p as KeyPurpose), csr })).der]))),
    certificationPath: [h.organisationCa.certificate.der],
  });

  // Rotation: mode 2, each command signed through the supplier's key store with the key the meter trusts.
  {
    const { store, assignMs } = await supplier(h);
    const plans = await RecoveryPlans.open({ path: `${sub()}.plans.db`, keystore: store, counters, deviceTrust });
    const { plan, csrs } = await plans.planRotation({ organisation: SUPPLIER, portfolioId: 'north' });
    await plans.attachCertificates(plan.planId, await certs(store, csrs));
    let built = 0;
    let sample: Uint8Array | undefined;
    const t = performance.now();
    while (performance.now() - t < BUDGET_S * 1000) {
      const b = await plans.buildBatch(plan.planId, { limit: BATCH });
      if (b.length === 0) break;
      built += b.length;
      sample ??= b[0]!.command;
    }
    const s = (performance.now() - t) / 1000;
    const base = baseline(signedBytes(parseMessage(sample!)), built);
    const perSec = built / s;
    line('recovery.build', { route: 'rotation', mode: 2, meters: METERS, built, batch: BATCH, seconds: Number(s.toFixed(1)), commandsPerSec: Math.round(perSec), baseline: 'node:crypto ECDSA P-256 sign', baselineOpsPerSec: Math.round(base), ratio: Number((perSec / base).toFixed(4)), assignMs, rssMiB: mib(), ...early(built, s * 1000, perSec) });
    await plans.close();
    await store.close();
  }

  // Compromise: declared, certificates attached, every command built (mode 8, the Recovery party under dual control).
  {
    const { store, assignMs } = await supplier(h);
    const recovery = await recoveryParty(h);
    const plans = await RecoveryPlans.open({ path: `${sub()}.plans.db`, keystore: store, counters, deviceTrust });
    const t0 = performance.now();
    const { plan, csrs } = await plans.planCompromise({ organisation: SUPPLIER, portfolioId: 'north', recoveryParty: RECOVERY, backend: 'token-b' });
    await plans.attachCertificates(plan.planId, await certs(store, csrs));
    const t1 = performance.now();
    let built = 0;
    let sample: Uint8Array | undefined;
    while (performance.now() - t1 < BUDGET_S * 1000) {
      const b = await plans.buildBatch(plan.planId, { limit: BATCH, recovery: recovery.signing });
      if (b.length === 0) break;
      built += b.length;
      sample ??= b[0]!.command;
    }
    const t2 = performance.now();
    const base = baseline(signedBytes(parseMessage(sample!)), built);
    const buildPerSec = built / ((t2 - t1) / 1000);
    line('recovery.plan', { route: 'compromise', meters: METERS, built, batch: BATCH, ms: Math.round(t2 - t0), planAndAttachMs: Math.round(t1 - t0), metersPerSec: Math.round(built / ((t2 - t0) / 1000)), rssMiB: mib(), ...early(built, t2 - t0, buildPerSec, t1 - t0) });
    line('recovery.build', { route: 'compromise', mode: 8, meters: METERS, built, batch: BATCH, seconds: Number(((t2 - t1) / 1000).toFixed(1)), commandsPerSec: Math.round(buildPerSec), baseline: 'node:crypto ECDSA P-256 sign', baselineOpsPerSec: Math.round(base), ratio: Number((buildPerSec / base).toFixed(4)), assignMs, rssMiB: mib(), ...early(built, t2 - t1, buildPerSec) });
    await plans.close();
    await recovery.store.close();
    await store.close();
  }
  const total = (performance.now() - started) / 1000;
  line('recovery.bench', { meters: METERS, batch: BATCH, cpus: cpus().length, seconds: Math.round(total), ...(total > 600 ? { note: `the run at ${METERS} meters took ${Math.round(total)} s, over the 10-minute aim` } : {}) });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
