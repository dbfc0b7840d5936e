/**
 * Benchmark of the PKCS#11 backend: signatures per second through {@link Pkcs11KeyBackend},
 * beside the raw node:crypto sign rate and the raw graphene-pk11 one-shot rate on the same token,
 * all in this process, so the overhead reads as a ratio: one JSON line per row
 * (`{"bench", "opsPerSec", "baseline", "ratio"}`). Never fails on speed.
 *
 *   pnpm exec tsx --tsconfig tsconfig.json packages/keystore/bench/pkcs11.ts
 *
 * Uses a private SoftHSM2 token (test/_softhsm.ts) unless SMKI_BENCH_PKCS11_MODULE,
 * SMKI_BENCH_PKCS11_TOKEN and SMKI_BENCH_PKCS11_PIN name another token. BENCH_SECONDS sets the
 * time per row (default 1.5). `runPkcs11Bench()` is exported for bench/run.ts.
 */
import { createHash, generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as GrapheneNs from 'graphene-pk11';
import { Pkcs11KeyBackend } from '../src/backends/pkcs11.js';
import { createSoftHsm } from '../test/_softhsm.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? '1.5');

const BASELINE = 'node:crypto ECDSA P-256 sign (in memory)';
let baselineRate: number | undefined;
let info: Record<string, unknown> = {};

/**
 * One JSON line per row: `{"bench", "opsPerSec", "baseline", "ratio"}`, the ratio against the
 * in-memory node:crypto sign rate measured in the same process (the baseline row has `baseline: null`).
 */
function print(name: string, perSecond: number, baseline = BASELINE, base = baselineRate): number {
  if (name === BASELINE) baselineRate = perSecond;
  const isBaseline = name === BASELINE;
  console.log(
    JSON.stringify({
      bench: name,
      opsPerSec: Math.round(perSecond),
      baseline: isBaseline ? null : baseline,
      ratio: isBaseline || base === undefined ? null : Number((perSecond / base).toFixed(4)),
      ...(isBaseline ? info : {}),
    }),
  );
  return perSecond;
}

function syncRate(name: string, fn: () => unknown): number {
  for (let i = 0; i < 100; i++) fn();
  let n = 0;
  const t0 = performance.now();
  const until = t0 + SECONDS * 1000;
  let now = t0;
  while (now < until) {
    for (let i = 0; i < 50; i++) fn();
    n += 50;
    now = performance.now();
  }
  return print(name, n / ((now - t0) / 1000));
}

/** `callers` async loops calling `fn` until the time is up. */
async function asyncRate(name: string, callers: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  await Promise.all(Array.from({ length: callers }, (_, i) => fn(i)));
  let n = 0;
  const t0 = performance.now();
  const until = t0 + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: callers }, async (_, i) => {
      while (performance.now() < until) {
        await fn(i);
        n++;
      }
    }),
  );
  return print(name, n / ((performance.now() - t0) / 1000));
}

/** Run the PKCS#11 rows; returns the rates by row name. */
export async function runPkcs11Bench(): Promise<Record<string, number>> {
  const own = process.env.SMKI_BENCH_PKCS11_MODULE === undefined ? createSoftHsm('smki-bench') : undefined;
  const module = process.env.SMKI_BENCH_PKCS11_MODULE ?? own!.module;
  const tokenLabel = process.env.SMKI_BENCH_PKCS11_TOKEN ?? own!.tokenLabel;
  const pin = process.env.SMKI_BENCH_PKCS11_PIN ?? own!.pin;
  const sessions = 4;
  const out: Record<string, number> = {};
  const backend = await Pkcs11KeyBackend.open({ module, tokenLabel, pin, sessions });
  try {
    const { handle } = await backend.generateKey({ keyId: `bench-${process.pid}`, label: 'bench/DS/g1' });
    const message = Buffer.alloc(128, 0x5a); // about a GBCS command's signed part
    const digest = createHash('sha256').update(message).digest();

    // Raw graphene-pk11 on the same library, token and key: the module is already initialised
    // and the token logged in by the backend (PKCS#11 state is per process).
    const g = createRequire(import.meta.url)('graphene-pk11') as typeof GrapheneNs;
    const mod = g.Module.load(module);
    mod.initialize({ flags: 2 /* CKF_OS_LOCKING_OK */ });
    const slots = mod.getSlots(true);
    let slot: GrapheneNs.Slot | undefined;
    for (let i = 0; i < slots.length; i++) if (slots.items(i).getToken().label.trimEnd() === tokenLabel) slot = slots.items(i);
    if (!slot) throw new Error(`no token ${tokenLabel}`);
    const rawSessions = Array.from({ length: sessions }, () => slot!.open(g.SessionFlag.SERIAL_SESSION));
    const found = rawSessions[0]!.find({ class: g.ObjectClass.PRIVATE_KEY, id: Buffer.from(handle, 'hex') });
    if (found.length !== 1) throw new Error('bench key not found');
    const keyHandle = found.items(0).handle;
    const keys = rawSessions.map((s) => new g.PrivateKey(keyHandle, s, s.lib));

    const node = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const version = `${mod.libraryDescription} ${mod.libraryVersion.major}.${mod.libraryVersion.minor}`;
    info = { pkcs11: version, node: process.version, secondsPerRow: SECONDS };
    out.node = syncRate(BASELINE, () =>
      nodeSign('sha256', message, { key: node, dsaEncoding: 'ieee-p1363' }),
    );
    out.rawSync = syncRate('graphene-pk11 raw one-shot C_Sign, sync (host SHA-256)', () =>
      rawSessions[0]!.createSign('ECDSA', keys[0]!).once(createHash('sha256').update(message).digest()),
    );
    out.rawAsync = await asyncRate(`graphene-pk11 raw one-shot C_Sign, async, ${sessions} sessions`, sessions, (i) =>
      new Promise<Buffer>((resolve, reject) =>
        rawSessions[i]!.createSign('ECDSA', keys[i]!).once(digest, (e, sig) => (e ? reject(e) : resolve(sig))),
      ),
    );
    for (const s of rawSessions) s.close();
    out.backend1 = await asyncRate('Pkcs11KeyBackend.sign, 1 caller', 1, () => backend.sign(handle, message));
    out.backend4 = await asyncRate(`Pkcs11KeyBackend.sign, ${sessions} callers (${sessions} sessions)`, sessions, () => backend.sign(handle, message));
    out.backend64 = await asyncRate(`Pkcs11KeyBackend.sign, 64 callers (${sessions} sessions)`, 64, () => backend.sign(handle, message));
    const peer = new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' }).subarray(-65));
    out.derive = await asyncRate(`Pkcs11KeyBackend.deriveSharedSecret, 64 callers`, 64, () => backend.deriveSharedSecret(handle, peer));
    const rawAsyncName = `graphene-pk11 raw one-shot C_Sign, async, ${sessions} sessions`;
    print(`Pkcs11KeyBackend.sign, 64 callers (${sessions} sessions), against raw graphene-pk11`, out.backend64, rawAsyncName, out.rawAsync);
    await backend.destroyKey(handle);
  } finally {
    await backend.close();
    own?.cleanup();
  }
  return out;
}

if (process.argv[1]?.endsWith('pkcs11.ts') || process.argv[1]?.endsWith('pkcs11.js')) {
  await runPkcs11Bench();
}
