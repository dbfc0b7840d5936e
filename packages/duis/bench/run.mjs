/**
 * `pnpm -C packages/duis run bench`: DUIS XML signing and verification rates beside raw
 * node:crypto ECDSA P-256 sign and verify over the same canonical SignedInfo bytes, measured in
 * the same process, so the ratio says what the XML layer (parse, profile checks, two
 * canonicalisations, a digest, the certificate lookup) costs on top of the cryptography.
 *
 * It runs the built packages (`dist/`, as a consumer does) with plain Node: the script builds
 * @smki/duis and what it depends on first. (Loaded through tsx, whose transform keeps function
 * names, the same code runs several times slower and the ratio would measure the loader.)
 *
 * Prints one JSON line per row: `{"bench", "opsPerSec", "baseline", "ratio"}` (`ratio` is
 * opsPerSec over the baseline's, measured in the same run; a baseline row has `baseline: null`).
 * Each pair (raw, DUIS) is measured in five alternating rounds and each rate is the median of its
 * rounds, so a change in the machine's load falls on both. BENCH_MS sets the time per row
 * (default 1000). Aim: `duis.verify` at 0.5 or more of
 * `ecdsa.verify` (the certificate's path verdict is cached, as in a running verifier).
 */
import { generateKeyPairSync, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { createKeySigner, publicKeyToRaw } from '@smki/core';
import { createHierarchy, issueCrl, issueOrganisationCertificate } from '@smki/pki';
import { DuisTrust, signRequest, verifyDuis } from '@smki/duis';

const MIN_MS = Number(process.env.BENCH_MS ?? 1000);
const ROUNDS = 5;

/** Operations per second of `fn` (awaited one at a time) over about `ms` milliseconds. */
async function rateFor(fn, ms) {
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let i = 0; i < 32; i++) await fn();
    n += 32;
    t = performance.now();
  }
  return n / ((t - t0) / 1000);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * The rates of a baseline and a subject, measured in alternating rounds (so that a change in the
 * machine's load falls on both), each the median of its rounds. Warmed up first.
 */
async function pair(baseline, subject) {
  for (let i = 0; i < 500; i++) {
    await baseline();
    await subject();
  }
  const b = [];
  const s = [];
  for (let r = 0; r < ROUNDS; r++) {
    b.push(await rateFor(baseline, MIN_MS / ROUNDS));
    s.push(await rateFor(subject, MIN_MS / ROUNDS));
  }
  return [median(b), median(s)];
}

const rates = new Map();
function row(bench, opsPerSec, baseline, extra = {}) {
  rates.set(bench, opsPerSec);
  const base = baseline === undefined ? undefined : rates.get(baseline);
  console.log(JSON.stringify({ bench, opsPerSec: Math.round(opsPerSec), baseline: baseline ?? null, ratio: base === undefined ? null : Number((opsPerSec / base).toFixed(4)), ...extra }));
}

// A User's XML-signing certificate (role 135) under a test hierarchy, with its CRL and ARL.
const h = await createHierarchy();
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const certificate = await issueOrganisationCertificate({ issuer: h.organisationCa, role: 135, entityId: '90B3D51F30010000', keyUsage: 'digitalSignature', publicKey: publicKeyToRaw(publicKey) });
const crls = [await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, kind: 'crl' }), await issueCrl({ issuer: h.root, crlNumber: 1n, kind: 'arl' })];
const trust = new DuisTrust({ certificates: [h.root.certificate, h.organisationCa.certificate, certificate], crls });
const signer = createKeySigner(privateKey);

// A typical request: 11.3 Activate Firmware with its values.
const xml =
  '<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header>' +
  '<sr:RequestID>90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1700000000000</sr:RequestID><sr:CommandVariant>4</sr:CommandVariant>' +
  '<sr:ServiceReference>11.3</sr:ServiceReference><sr:ServiceReferenceVariant>11.3</sr:ServiceReferenceVariant></sr:Header>' +
  '<sr:Body><sr:ActivateFirmware><sr:ManufacturerImageHash>9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08</sr:ManufacturerImageHash>' +
  '<sr:ExecutionDateTime>2026-12-07T02:00:00Z</sr:ExecutionDateTime></sr:ActivateFirmware></sr:Body></sr:Request>';
const signed = await signRequest(xml, signer, certificate);
// The canonical SignedInfo the signature is over (exclusive C14N, as the document carries it).
const signedInfo = Buffer.from(
  /<ds:SignedInfo>[\s\S]*<\/ds:SignedInfo>/
    .exec(signed.xml)[0]
    .replace('<ds:SignedInfo>', '<ds:SignedInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">')
    .replace(/<(ds:[A-Za-z]+)([^>]*)\/>/g, '<$1$2></$1>'),
  'utf8',
);
const signature = nodeSign('sha256', signedInfo, { key: privateKey, dsaEncoding: 'ieee-p1363' });
if (!nodeVerify('sha256', signedInfo, { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(/<ds:SignatureValue>([^<]+)</.exec(signed.xml)[1], 'base64'))) {
  throw new Error('the SignedInfo reconstructed for the baseline is not what was signed');
}
await verifyDuis(signed.xml, trust, { expect: 'request' });

const [ecdsaSign, duisSign] = await pair(() => nodeSign('sha256', signedInfo, { key: privateKey, dsaEncoding: 'ieee-p1363' }), () => signRequest(xml, signer, certificate));
row('ecdsa.sign', ecdsaSign, undefined, { bytes: signedInfo.length });
row('duis.sign', duisSign, 'ecdsa.sign', { bytes: signed.xml.length });
const [ecdsaVerify, duisVerify] = await pair(() => nodeVerify('sha256', signedInfo, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature), () => verifyDuis(signed.xml, trust, { expect: 'request' }));
row('ecdsa.verify', ecdsaVerify, undefined, { bytes: signedInfo.length });
row('duis.verify', duisVerify, 'ecdsa.verify', { bytes: signed.xml.length });
