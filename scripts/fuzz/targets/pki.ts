/**
 * Fuzz targets of @smki/pki: certificates (RFC 5280 §4.1), CRLs (RFC 5280 §5.1), certification
 * requests (RFC 2986 §4), as DER and as PEM (RFC 7468 §5, §6, §7), and trust-store files (a PEM
 * bundle or one DER certificate).
 * @module
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  certificateToPem,
  createCsr,
  crlToPem,
  issueCrl,
  parseCertificate,
  parseCertificateBundle,
  parseCrl,
  parseCsr,
  TrustStore,
  type ParsedCsr,
  type SmkiCertificate,
  type SmkiCrl,
} from '@smki/pki';
import { seededSigner } from '../../vectors/deterministic.js';
import type { Instance, Target } from '../harness.js';
import type { Seed } from '../mutate.js';
import { asText, certificatePemSeeds, certificateSeeds, hierarchy, pem, pemBodies, textAndArmoured, textBytes, vectorFile } from './seeds.js';

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;
}

function sha256Hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex').toUpperCase();
}

/** A parsed certificate's own invariants: its DER is the input, its views lie inside it, its PEM round-trips. */
function checkCertificate(c: SmkiCertificate, der: Uint8Array): void {
  if (!equal(c.der, der)) throw new Error('the certificate DER is not the input');
  if (c.fingerprint !== sha256Hex(der)) throw new Error('the fingerprint is not SHA-256 of the DER');
  const tbsAt = Buffer.from(der).indexOf(Buffer.from(c.tbsDer));
  if (tbsAt < 0 || c.tbsDer.length >= der.length) throw new Error('tbsDer is not inside the DER');
  const again = parseCertificate(certificateToPem(c));
  if (!equal(again.der, der)) throw new Error('parseCertificate(certificateToPem(c)).der is not c.der');
}

/** parseCertificate over DER. */
export const certificateDerTarget: Target = {
  name: 'pki.certificate.der',
  about: 'parseCertificate(DER): X.509 v3 certificate (RFC 5280 §4.1), the SMKI profile (docs/domain.md §2)',
  der: true,
  codes: ['ERR_CERT_MALFORMED'],
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    return {
      seeds: await certificateSeeds(),
      run: (input) => parseCertificate(input),
      check: (input, _seed, result) => checkCertificate(result as SmkiCertificate, input),
    };
  },
};

/** parseCertificate over PEM text: mutated text, and mutated DER re-armoured. */
export const certificatePemTarget: Target = {
  name: 'pki.certificate.pem',
  about: 'parseCertificate(PEM): RFC 7468 §5 CERTIFICATE armour around RFC 5280 §4.1 DER',
  der: true,
  codes: ['ERR_CERT_MALFORMED', 'ERR_PEM_INVALID'],
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    return {
      seeds: textAndArmoured(await certificatePemSeeds(), (await certificateSeeds()).filter((_, i) => i % 3 === 0), 'CERTIFICATE'),
      run: (input, seed) => parseCertificate(asText(input, seed)),
      check(input, seed, result) {
        const c = result as SmkiCertificate;
        const bodies = pemBodies(asText(input, seed), 'CERTIFICATE');
        if (bodies.length !== 1 || !equal(bodies[0] as Uint8Array, c.der)) throw new Error('the certificate is not the DER of the one CERTIFICATE block');
        checkCertificate(c, c.der);
      },
    };
  },
};

const CRL_AT = new Date('2026-05-31T00:00:00Z');

let crls: Seed[] | undefined;

/** CRLs of test-vectors/pki/paths.json, and CRLs and ARLs issued by the test hierarchy's CAs with deterministic signatures. */
export async function crlSeeds(): Promise<readonly Seed[]> {
  if (crls) return crls;
  const out: Seed[] = [];
  const seen = new Set<string>();
  const paths = vectorFile<{ cases: { id: string; input: { crls?: string[] } }[] }>('pki', 'paths');
  for (const c of paths.cases) {
    for (const pem of c.input.crls ?? []) {
      const der = pemBodies(pem, 'X509 CRL')[0] as Uint8Array;
      const key = sha256Hex(der);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({ name: `${c.id}-crl`, bytes: der });
    }
  }
  const h = hierarchy();
  const serials = ['0A', '7F', '0080', '00FF00FF00FF00FF00FF00FF00FF00FF', '01'.repeat(20)];
  const issuers = [
    ['oca', h.organisationCa, 'crl'],
    ['root', h.root, 'arl'],
    ['dca', h.deviceCa, undefined],
  ] as const;
  for (const [name, ca, kind] of issuers) {
    const crl = await issueCrl({
      issuer: { certificate: ca.certificate, signer: seededSigner(ca.keyLabel) },
      crlNumber: 1234567890123456789n,
      thisUpdate: CRL_AT,
      nextUpdate: new Date('2050-06-01T00:00:00Z'),
      revoked: serials.map((s, i) => ({
        serialNumber: s,
        revocationDate: new Date(CRL_AT.getTime() - i * 86_400_000),
        reason: (['keyCompromise', 'superseded', 'cessationOfOperation', 'unspecified', 'cACompromise'] as const)[i % 5] as 'keyCompromise',
      })),
      ...(kind ? { kind } : {}),
    });
    out.push({ name: `issued-${name}`, bytes: crl.der });
    const empty = await issueCrl({ issuer: { certificate: ca.certificate, signer: seededSigner(ca.keyLabel) }, crlNumber: 1n, thisUpdate: CRL_AT });
    out.push({ name: `issued-${name}-empty`, bytes: empty.der });
  }
  crls = out;
  return out;
}

function checkCrl(crl: SmkiCrl, der: Uint8Array): void {
  if (!equal(crl.der, der)) throw new Error('the CRL DER is not the input');
  if (crl.fingerprint !== sha256Hex(der)) throw new Error('the fingerprint is not SHA-256 of the DER');
  const again = parseCrl(crlToPem(crl));
  if (!equal(again.der, der)) throw new Error('parseCrl(crlToPem(crl)).der is not crl.der');
  if (again.revoked.size !== crl.revoked.size) throw new Error('the re-read CRL lists another number of entries');
}

/** parseCrl over DER. */
export const crlDerTarget: Target = {
  name: 'pki.crl.der',
  about: 'parseCrl(DER): X.509 v2 CRL (RFC 5280 §5.1, §5.2, §5.3)',
  der: true,
  codes: ['ERR_CRL_MALFORMED'],
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    return { seeds: await crlSeeds(), run: (input) => parseCrl(input), check: (input, _s, r) => checkCrl(r as SmkiCrl, input) };
  },
};

/** parseCrl over PEM text. */
export const crlPemTarget: Target = {
  name: 'pki.crl.pem',
  about: 'parseCrl(PEM): RFC 7468 §6 X509 CRL armour',
  der: true,
  codes: ['ERR_CRL_MALFORMED', 'ERR_PEM_INVALID'],
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    const der = await crlSeeds();
    const seeds = textAndArmoured(der.map((s) => ({ name: s.name, bytes: textBytes(pem('X509 CRL', s.bytes)) })), der, 'X509 CRL');
    return {
      seeds,
      run: (input, seed) => parseCrl(asText(input, seed)),
      check(input, seed, r) {
        const crl = r as SmkiCrl;
        const bodies = pemBodies(asText(input, seed), 'X509 CRL');
        if (bodies.length !== 1 || !equal(bodies[0] as Uint8Array, crl.der)) throw new Error('the CRL is not the DER of the one X509 CRL block');
        checkCrl(crl, crl.der);
      },
    };
  },
};

let csrs: { seeds: Seed[]; parsed: ParsedCsr[] } | undefined;

/** Requests made by createCsr with deterministic (RFC 6979) signatures: organisation DS and KA, a device, no key usage. */
export async function csrSeeds(): Promise<{ seeds: readonly Seed[]; parsed: readonly ParsedCsr[] }> {
  if (csrs) return csrs;
  const made: [string, Uint8Array][] = [
    ['org-ds', await createCsr({ signer: seededSigner('supplier-ds'), subject: { role: 2, entityId: '90B3D51F30010000', commonName: 'Supplier A' }, keyUsage: 'digitalSignature' })],
    ['org-ka', await createCsr({ signer: seededSigner('supplier-ka'), subject: { role: 2, entityId: '90B3D51F30010000' }, keyUsage: 'keyAgreement' })],
    ['acb-ka-high-s', await createCsr({ signer: seededSigner('acb-ka', 'high'), subject: { role: 4, entityId: '90B3D51F30000004', commonName: 'ACB' }, keyUsage: 'keyAgreement' })],
    ['device', await createCsr({ signer: seededSigner('esme-ds'), keyUsage: 'digitalSignature' })],
    ['no-key-usage', await createCsr({ signer: seededSigner('network-ds'), subject: { role: 1, entityId: '90B3D51F30020000' } })],
  ];
  const seeds = made.map(([name, bytes]) => ({ name, bytes }));
  csrs = { seeds, parsed: seeds.map((s) => parseCsr(s.bytes)) };
  return csrs;
}

/** A parsed request asks for exactly what one of the seeds asks for: proof of possession cannot be moved to other fields by mutation. */
function checkCsr(csr: ParsedCsr, der: Uint8Array, parsed: readonly ParsedCsr[]): void {
  if (!equal(csr.der, der)) throw new Error('the CSR DER is not the input');
  const same = parsed.some(
    (p) =>
      equal(p.publicKeyBytes, csr.publicKeyBytes) &&
      equal(p.subject.der, csr.subject.der) &&
      p.requestedExtensions.length === csr.requestedExtensions.length &&
      p.requestedExtensions.every((e, i) => e.oid === csr.requestedExtensions[i]?.oid && e.critical === csr.requestedExtensions[i]?.critical && equal(e.value, csr.requestedExtensions[i]!.value)),
  );
  if (!same) throw new Error('a mutated request verified with a subject, key or extensions no seed has (proof of possession forged)');
}

/** parseCsr over DER. */
export const csrDerTarget: Target = {
  name: 'pki.csr.der',
  about: 'parseCsr(DER): PKCS#10 request and its proof of possession (RFC 2986 §4, RFC 2985 §5.4.2)',
  der: true,
  codes: ['ERR_CSR_MALFORMED', 'ERR_KEY_CURVE_UNSUPPORTED', 'ERR_KEY_INVALID', 'ERR_CSR_SIGNATURE_INVALID'],
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    const { seeds, parsed } = await csrSeeds();
    return { seeds, run: (input) => parseCsr(input), check: (input, _s, r) => checkCsr(r as ParsedCsr, input, parsed) };
  },
};

/** parseCsr over PEM text. */
export const csrPemTarget: Target = {
  name: 'pki.csr.pem',
  about: 'parseCsr(PEM): RFC 7468 §7 CERTIFICATE REQUEST armour',
  der: true,
  codes: ['ERR_CSR_MALFORMED', 'ERR_PEM_INVALID', 'ERR_KEY_CURVE_UNSUPPORTED', 'ERR_KEY_INVALID', 'ERR_CSR_SIGNATURE_INVALID'],
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    const { seeds, parsed } = await csrSeeds();
    const label = (i: number) => (i % 2 === 0 ? 'CERTIFICATE REQUEST' : 'NEW CERTIFICATE REQUEST');
    return {
      seeds: [
        ...seeds.map((s, i) => ({ name: s.name, bytes: textBytes(pem(label(i), s.bytes)) })),
        ...seeds.map((s, i) => ({ name: `${s.name} (DER, armoured)`, bytes: s.bytes, armour: label(i + 1) })),
      ],
      run: (input, seed) => parseCsr(asText(input, seed)),
      check: (_input, _s, r) => checkCsr(r as ParsedCsr, (r as ParsedCsr).der, parsed),
    };
  },
};

/** PEM bundles of the test hierarchy, with text around and between the blocks (as real bundles have). */
async function bundleSeeds(): Promise<Seed[]> {
  const h = hierarchy();
  const cas = [h.root.certificate, h.organisationCa.certificate, h.deviceCa.certificate];
  const orgs = h.organisations.map((o) => o.certificate);
  const devices = h.devices.map((d) => d.certificate);
  const pem = await certificatePemSeeds();
  return [
    { name: 'bundle-cas', bytes: textBytes(cas.join('')) },
    { name: 'bundle-annotated', bytes: textBytes(`# SMKI test anchors\nroot:\n${cas[0]}\r\nOCA:\n${cas[1]}\n\nDCA:\n${cas[2]}trailing note\n`) },
    { name: 'bundle-organisations', bytes: textBytes(orgs.join('\n')) },
    { name: 'bundle-devices', bytes: textBytes(devices.join('')) },
    { name: 'bundle-one', bytes: pem[0]?.bytes as Uint8Array },
    { name: 'bundle-with-key-block', bytes: textBytes(`${cas[0]}-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n${cas[1]}`) },
  ];
}

/** The certificates a file holds, read by a plain decoder independent of the parser: DER if it is a .der file starting 30, else the CERTIFICATE blocks. */
function expectedCertificates(bytes: Uint8Array, pemName: boolean): Uint8Array[] {
  if (!pemName && bytes[0] === 0x30) return [bytes];
  return pemBodies(latin1(bytes), 'CERTIFICATE');
}

function checkList(certs: readonly SmkiCertificate[], expected: readonly Uint8Array[]): void {
  if (certs.length !== expected.length || !certs.every((c, i) => equal(c.der, expected[i] as Uint8Array))) {
    throw new Error(`read ${certs.length} certificate(s), the file holds ${expected.length}`);
  }
  for (const c of certs) checkCertificate(c, c.der);
}

/** parseCertificateBundle over PEM text. */
export const bundleTarget: Target = {
  name: 'pki.truststore.bundle',
  about: 'parseCertificateBundle: a PEM bundle of CERTIFICATE blocks (RFC 7468 §2, §5)',
  der: false,
  codes: ['ERR_CERT_MALFORMED', 'ERR_PEM_INVALID'],
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    return {
      seeds: await bundleSeeds(),
      run: (input) => parseCertificateBundle(latin1(input)),
      check: (input, _s, r) => checkList(r as SmkiCertificate[], expectedCertificates(input, true)),
    };
  },
};

/** TrustStore.loadDirectory over a directory holding one mutated file (PEM bundle or DER). */
export const trustStoreFileTarget: Target = {
  name: 'pki.truststore.file',
  about: 'TrustStore.loadDirectory: one .pem bundle or .der certificate file, fail-closed (RFC 5280 §6.1 inputs)',
  der: false,
  codes: ['ERR_TRUST_STORE_LOAD'],
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    const dir = mkdtempSync(join(tmpdir(), 'smki-fuzz-trust-'));
    const pem = await bundleSeeds();
    const der = (await certificateSeeds()).filter((_, i) => i % 8 === 0).map((s) => ({ name: `der-${s.name}`, bytes: s.bytes }));
    const seeds = [...pem, ...der];
    const isPem = new Set(pem);
    let n = 0;
    let current = '';
    return {
      seeds,
      async run(input, seed) {
        // A fresh directory name each time: the store reads every file of the directory.
        if (current) rmSync(join(dir, current), { force: true });
        current = `${n++}${isPem.has(seed) ? '.pem' : '.der'}`;
        writeFileSync(join(dir, current), input);
        return (await TrustStore.loadDirectory(dir)).certificates;
      },
      check: (input, seed, r) => checkList(r as SmkiCertificate[], expectedCertificates(input, isPem.has(seed))),
      async close() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

/** @smki/pki targets. */
export const pkiTargets: readonly Target[] = [
  certificateDerTarget,
  certificatePemTarget,
  crlDerTarget,
  crlPemTarget,
  csrDerTarget,
  csrPemTarget,
  bundleTarget,
  trustStoreFileTarget,
];
