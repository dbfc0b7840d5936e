/**
 * `pnpm run bench` for @smki/pki: certificates parsed per second, certificates linted (first lint
 * and cached), CRLs parsed, 3-level paths validated per second (cold: DER in, parsed every time;
 * warm: parsed certificates reused; through a path validator), each beside the raw node:crypto
 * ECDSA P-256 verify rate measured in the same process, so the overhead is a ratio.
 *
 * Prints one JSON line per row: `{"bench", "opsPerSec", "baseline", "ratio"}` (`ratio` is
 * opsPerSec over the baseline's, measured in the same run; a baseline row has `baseline: null`).
 * Never fails on speed. BENCH_SECONDS sets the time per row (default 1.5).
 */
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import {
  createHierarchy,
  createPathValidator,
  issueCrl,
  issueOrganisationCertificate,
  lintCertificate,
  parseCertificate,
  parseCrl,
  validatePath,
} from '../src/index.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? '1.5');

/** Operations per second of `fn` (after a warm-up), over SECONDS. */
function rate(fn: () => unknown, batch = 100): number {
  for (let i = 0; i < 200; i++) fn();
  let n = 0;
  const t0 = performance.now();
  const until = t0 + SECONDS * 1000;
  let now = t0;
  while (now < until) {
    for (let i = 0; i < batch; i++) fn();
    n += batch;
    now = performance.now();
  }
  return n / ((now - t0) / 1000);
}

const baselines = new Map<string, number>();

/** Measure and print one row, as a JSON line; `baseline` names an earlier baseline row. */
function row(bench: string, opsPerSec: number, baseline?: string, extra: Record<string, unknown> = {}): number {
  if (baseline === undefined) baselines.set(bench, opsPerSec);
  const base = baseline === undefined ? undefined : baselines.get(baseline);
  console.log(
    JSON.stringify({
      bench,
      opsPerSec: Math.round(opsPerSec),
      baseline: baseline ?? null,
      ratio: base === undefined ? null : Number((opsPerSec / base).toFixed(4)),
      ...extra,
    }),
  );
  return opsPerSec;
}

const { root, organisationCa } = await createHierarchy();
const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const leaf = await issueOrganisationCertificate({
  issuer: organisationCa,
  role: 2,
  entityId: '90B3D51F30010000',
  keyUsage: 'digitalSignature',
  publicKey,
});
const at = new Date();

const raw = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const msg = leaf.tbsDer;
const rawSig = sign('sha256', msg, raw.privateKey);

const VERIFY = 'node:crypto ECDSA P-256 verify';
row(VERIFY, rate(() => verify('sha256', msg, raw.publicKey, rawSig)), undefined, { node: process.version, secondsPerRow: SECONDS });
row('parseCertificate (DER)', rate(() => parseCertificate(leaf.der)), VERIFY, { bytes: leaf.der.length });
row('parseCertificate + its KeyObject (made on first use)', rate(() => parseCertificate(leaf.der).publicKey), VERIFY);

// Lint: the first lint of a certificate (a fresh parse each time, so nothing is cached), and a
// lint of a certificate already linted (the cached findings; the validator lints every
// certificate of every path it checks).
const chain = [root.certificate, organisationCa.certificate, leaf];
const chainDer = chain.map((c) => c.der);
row('lintCertificate, first lint of a 3-certificate path (parse included)', rate(() => chainDer.map((d) => lintCertificate(parseCertificate(d))), 10), VERIFY);
row('lintCertificate, cached, 3-certificate path', rate(() => chain.map((c) => lintCertificate(c))), VERIFY);

// CRLs: a small one, and one of 1,500 entries (over 64 KiB).
const serialOf = (i: number): string => (0x10000000000000000000000000000000n + BigInt(i)).toString(16).toUpperCase();
const thisUpdate = new Date(Math.floor(Date.now() / 1000) * 1000);
const small = await issueCrl({ issuer: organisationCa, crlNumber: 1n, thisUpdate, revoked: [{ serialNumber: serialOf(1), revocationDate: thisUpdate, reason: 'keyCompromise' }] });
const big = await issueCrl({
  issuer: organisationCa,
  crlNumber: 2n,
  thisUpdate,
  revoked: Array.from({ length: 1500 }, (_, i) => ({ serialNumber: serialOf(i), revocationDate: thisUpdate, reason: 'superseded' as const })),
});
row('parseCrl (1 entry)', rate(() => parseCrl(small.der)), VERIFY, { bytes: small.der.length });
row('parseCrl (1,500 entries)', rate(() => parseCrl(big.der), 1), VERIFY, { bytes: big.der.length });

const leafDer = leaf.der;
const ocaDer = organisationCa.certificate.der;
const rootDer = root.certificate.der;
row(
  'validatePath 3-level, cold (DER in, parsed each call)',
  rate(() => {
    const r = validatePath(leafDer, { intermediates: [ocaDer], anchors: [rootDer], at });
    if (!r.valid) throw new Error('bench path invalid');
  }),
  VERIFY,
  { note: 'three parses and the leaf signature per call' },
);
const oca = organisationCa.certificate;
const rootCert = root.certificate;
row(
  'validatePath 3-level, warm (parsed certificates)',
  rate(() => {
    const r = validatePath(leaf, { intermediates: [oca], anchors: [rootCert], at });
    if (!r.valid) throw new Error('bench path invalid');
  }),
  VERIFY,
  { note: 'the leaf signature is verified on every call; CA-over-CA signatures are cached per parsed certificate' },
);
const leaves = await Promise.all(
  Array.from({ length: 20 }, async () =>
    issueOrganisationCertificate({
      issuer: organisationCa,
      role: 2,
      entityId: '90B3D51F30010000',
      keyUsage: 'digitalSignature',
      publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey,
    }),
  ),
);
const crl = await issueCrl({ issuer: organisationCa, crlNumber: 3n, kind: 'crl', thisUpdate });
const arl = await issueCrl({ issuer: root, crlNumber: 1n, kind: 'arl', thisUpdate });
const validator = createPathValidator({ anchors: [rootCert], intermediates: [oca], crls: [crl, arl], requireRevocation: true });
const later = new Date(Date.now() + 1000); // the leaves were issued after `at`
let i = 0;
row(
  'createPathValidator.validate, warm, CRL and ARL checked, 20 leaves in turn',
  rate(() => {
    const r = validator.validate(leaves[i++ % leaves.length]!, { at: later });
    if (!r.valid) throw new Error('bench path invalid');
  }),
  VERIFY,
);
