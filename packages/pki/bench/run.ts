/**
 * `pnpm run bench` for @smki/pki: certificates parsed per second, 3-level paths validated per
 * second (cold: DER in, parsed every time; warm: parsed certificates reused), and beside them the
 * raw node:crypto ECDSA P-256 verify rate measured in the same process, so the overhead is a
 * ratio. Prints numbers; never fails on speed.
 */
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { createHierarchy, issueOrganisationCertificate, parseCertificate, validatePath } from '../src/index.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? '1.5');

function rate(name: string, fn: () => unknown): number {
  // warm-up
  for (let i = 0; i < 200; i++) fn();
  let n = 0;
  const t0 = performance.now();
  const until = t0 + SECONDS * 1000;
  let now = t0;
  while (now < until) {
    for (let i = 0; i < 100; i++) fn();
    n += 100;
    now = performance.now();
  }
  const r = n / ((now - t0) / 1000);
  console.log(`${name.padEnd(52)} ${Math.round(r).toLocaleString('en-GB').padStart(10)} /s`);
  return r;
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

console.log(`@smki/pki benchmarks (node ${process.version}, ${SECONDS}s per row)\n`);
const verifyRate = rate('node:crypto ECDSA P-256 verify (baseline)', () => verify('sha256', msg, raw.publicKey, rawSig));
const parseRate = rate('parseCertificate (DER)', () => parseCertificate(leaf.der));
rate('parseCertificate + its KeyObject (made on first use)', () => parseCertificate(leaf.der).publicKey);
const leafDer = leaf.der;
const ocaDer = organisationCa.certificate.der;
const rootDer = root.certificate.der;
const cold = rate('validatePath 3-level, cold (DER in, parsed each call)', () => {
  const r = validatePath(leafDer, { intermediates: [ocaDer], anchors: [rootDer], at });
  if (!r.valid) throw new Error('bench path invalid');
});
const oca = organisationCa.certificate;
const rootCert = root.certificate;
const warm = rate('validatePath 3-level, warm (parsed certificates)', () => {
  const r = validatePath(leaf, { intermediates: [oca], anchors: [rootCert], at });
  if (!r.valid) throw new Error('bench path invalid');
});

const us = (r: number) => 1e6 / r;
console.log('\nratios (same process, same run)');
console.log(`  parse vs one raw verify:                 ${(parseRate / verifyRate).toFixed(2)}x the verify rate`);
console.log(`  warm path vs one raw verify:             ${(warm / verifyRate).toFixed(2)}x (the leaf signature is verified on every call;`);
console.log(`                                           CA-over-CA signatures are cached per parsed certificate)`);
console.log(`  warm path vs two raw verifies:           ${(warm / (verifyRate / 2)).toFixed(2)}x`);
console.log(`  warm path cost beyond one verify:        ${(us(warm) - us(verifyRate)).toFixed(1)} µs per call`);
console.log(`  cold path vs two raw verifies:           ${(cold / (verifyRate / 2)).toFixed(2)}x (three parses per call)`);
console.log(`  warm vs cold:                            ${(warm / cold).toFixed(1)}x`);
