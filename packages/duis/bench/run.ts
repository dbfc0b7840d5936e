/**
 * `pnpm -C packages/duis run bench`: DUIS XML signing and verification rates beside raw
 * node:crypto ECDSA P-256 sign and verify over the same canonical SignedInfo bytes, measured in
 * the same process, so the ratio says what the XML layer (parse, profile checks, two
 * canonicalisations, a digest) costs on top of the cryptography.
 *
 * Prints one JSON line per row: `{"bench", "opsPerSec", "baseline", "ratio"}` (`ratio` is
 * opsPerSec over the baseline's, measured in the same run; a baseline row has `baseline: null`).
 * BENCH_MS sets the time per row (default 1000). Aim: `duis.verify` at 0.5 or more of
 * `ecdsa.verify` (the path verdict is cached, as in a running verifier).
 */
import { sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { DuisTrust, signRequest, verifyDuis } from '../src/index.js';
import { excC14n, parseXml } from '../src/internal/xml.js';
import { fixture, request } from '../test/_fixture.js';

const MIN_MS = Number(process.env['BENCH_MS'] ?? 1000);

function rate(fn: () => unknown): number {
  for (let i = 0; i < 200; i++) fn();
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < MIN_MS) {
    for (let i = 0; i < 64; i++) fn();
    n += 64;
    t = performance.now();
  }
  return n / ((t - t0) / 1000);
}

async function rateAsync(fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 100; i++) await fn();
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < MIN_MS) {
    for (let i = 0; i < 32; i++) await fn();
    n += 32;
    t = performance.now();
  }
  return n / ((t - t0) / 1000);
}

const rates = new Map<string, number>();
function row(bench: string, opsPerSec: number, baseline?: string, extra: Record<string, unknown> = {}): void {
  rates.set(bench, opsPerSec);
  const base = baseline === undefined ? undefined : rates.get(baseline);
  console.log(JSON.stringify({ bench, opsPerSec: Math.round(opsPerSec), baseline: baseline ?? null, ratio: base === undefined ? null : Number((opsPerSec / base).toFixed(4)), ...extra }));
}

// A typical request: 11.3 Activate Firmware with its values, pretty-printed as a User would send it.
const f = await fixture();
const body = '<sr:ActivateFirmware><sr:ManufacturerImageHash>9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08</sr:ManufacturerImageHash><sr:ExecutionDateTime>2026-12-07T02:00:00Z</sr:ExecutionDateTime></sr:ActivateFirmware>';
const xml = request(body, { service: '11.3' });
const signed = await signRequest(xml, f.user.signer, f.user.certificate);
const trust: DuisTrust = f.trust;
const sig = (await parseXml(signed.xml)).doc.getElementsByTagNameNS('http://www.w3.org/2000/09/xmldsig#', 'SignedInfo')[0];
const signedInfo = Buffer.from(await excC14n(sig as never), 'utf8');
const signature = nodeSign('sha256', signedInfo, { key: f.user.key, dsaEncoding: 'ieee-p1363' });
const publicKey = f.user.certificate.publicKey!;

row('ecdsa.sign', rate(() => nodeSign('sha256', signedInfo, { key: f.user.key, dsaEncoding: 'ieee-p1363' })), undefined, { bytes: signedInfo.length });
row('duis.sign', await rateAsync(() => signRequest(xml, f.user.signer, f.user.certificate)), 'ecdsa.sign', { bytes: signed.xml.length });
row('ecdsa.verify', rate(() => nodeVerify('sha256', signedInfo, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)), undefined, { bytes: signedInfo.length });
row('duis.verify', await rateAsync(() => verifyDuis(signed.xml, trust, { expect: 'request' })), 'ecdsa.verify', { bytes: signed.xml.length });
