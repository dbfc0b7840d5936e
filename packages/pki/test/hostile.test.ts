// Hostile inputs (docs/conventions.md "Inputs"): every parse of outside bytes is bounded — lengths
// checked before reads, no reads past the end, no unbounded recursion, under 50 ms for any input
// up to 64 KiB — and bad input gets a SmkiError (never a RangeError or TypeError). X.690 §8.1,
// §10.1 (DER lengths); RFC 5280 §4.1 (certificates), §5.1 (CRLs), §6.1 (path validation fails closed).
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { createKeySigner, SmkiError, type SmkiErrorCode } from '@smki/core';
import { issueCrl, parseCrl } from '../src/crl.js';
import { createHierarchy, issueOrganisationCertificate } from '../src/issue.js';
import { certificateToPem, parseCertificate } from '../src/parse.js';
import { validatePath } from '../src/path.js';
import type { SmkiCertificate } from '../src/types.js';
import {
  buildCertificate,
  buildDeviceCertificate,
  buildHierarchy,
  buildOrganisationCertificate,
  ctx,
  extension,
  keyId,
  kuExt,
  name,
  newKeyPair,
  octets,
  oid,
  OIDS,
  policiesExt,
  seq,
  skiExt,
  akiExt,
} from './_x509-builder.js';

const LIMIT_MS = 50;
const KiB = 1024;

/** Every cause in the chain is a SmkiError (a wrapped RangeError or TypeError is a bug too). */
function causesAreSmki(e: SmkiError): boolean {
  let c: unknown = e.cause;
  for (let i = 0; c !== undefined && i < 8; i++) {
    if (!(c instanceof SmkiError)) return false;
    c = c.cause;
  }
  return true;
}

type Outcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: SmkiError };

/**
 * Run `fn(input)`, requiring a result or a SmkiError with one of `codes` (and only SmkiErrors as
 * causes). The time bound is on the fastest of up to three runs, so that a GC pause or a busy
 * CPU is not mistaken for super-linear work.
 */
function bounded(fn: (input: never) => unknown, input: unknown, codes: readonly SmkiErrorCode[], limitMs = LIMIT_MS): Outcome {
  let best = Number.POSITIVE_INFINITY;
  let outcome: Outcome | undefined;
  for (let attempt = 0; attempt < 3 && best >= limitMs; attempt++) {
    const t0 = performance.now();
    try {
      const value = fn(input as never);
      outcome = { ok: true, value };
    } catch (e) {
      if (!(e instanceof SmkiError)) throw new Error(`not a SmkiError: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
      if (!codes.includes(e.code)) throw new Error(`unexpected code ${e.code}: ${e.message}`);
      if (!causesAreSmki(e)) {
        const c = e.cause as Error;
        throw new Error(`${e.code} wraps a ${c?.name ?? typeof c}: ${c?.message ?? String(c)}`);
      }
      outcome = { ok: false, error: e };
    }
    best = Math.min(best, performance.now() - t0);
  }
  if (best >= limitMs) throw new Error(`took ${best.toFixed(1)} ms (limit ${limitMs} ms) on ${describeInput(input)}`);
  return outcome as Outcome;
}

function describeInput(input: unknown): string {
  if (input instanceof Uint8Array) return `${input.length} bytes ${Buffer.from(input.subarray(0, 16)).toString('hex')}…`;
  if (typeof input === 'string') return `${input.length} chars ${JSON.stringify(input.slice(0, 40))}…`;
  return typeof input;
}

const CERT_CODES: readonly SmkiErrorCode[] = ['ERR_CERT_MALFORMED'];
const CERT_TEXT_CODES: readonly SmkiErrorCode[] = ['ERR_CERT_MALFORMED', 'ERR_PEM_INVALID'];
const CRL_CODES: readonly SmkiErrorCode[] = ['ERR_CRL_MALFORMED', 'ERR_PEM_INVALID'];

const parseCert = (input: string | Uint8Array): SmkiCertificate => parseCertificate(input);
const certOutcome = (input: Uint8Array | string): Outcome => bounded(parseCert, input, typeof input === 'string' ? CERT_TEXT_CODES : CERT_CODES);
const mustFail = (input: Uint8Array | string): SmkiError => {
  const o = certOutcome(input);
  if (o.ok) throw new Error(`parsed: ${describeInput(input)}`);
  return o.error;
};

/** Where every TLV of a DER tree is (iterative walk of well-formed input). */
interface TlvPos {
  readonly start: number;
  readonly lenStart: number;
  readonly valueStart: number;
  readonly end: number;
  readonly constructed: boolean;
}

function walk(der: Uint8Array): TlvPos[] {
  const out: TlvPos[] = [];
  const stack: [number, number][] = [[0, der.length]];
  while (stack.length > 0) {
    const frame = stack.pop() as [number, number];
    let [o] = frame;
    const end = frame[1];
    const children: [number, number][] = [];
    while (o < end) {
      const start = o;
      const tag = der[o++] as number;
      const lenStart = o;
      let len = der[o++] as number;
      if (len & 0x80) {
        const n = len & 0x7f;
        len = 0;
        for (let i = 0; i < n; i++) len = len * 256 + (der[o++] as number);
      }
      const pos = { start, lenStart, valueStart: o, end: o + len, constructed: (tag & 0x20) !== 0 };
      out.push(pos);
      if (pos.constructed) children.push([pos.valueStart, pos.end]);
      o = pos.end;
    }
    stack.push(...children.reverse());
  }
  return out.sort((a, b) => a.start - b.start);
}

function derLength(n: number): number[] {
  if (n < 0x80) return [n];
  const b: number[] = [];
  while (n > 0) {
    b.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return [0x80 | b.length, ...b];
}

/** `bytes` with its outer length rewritten to fit, so a mutation reaches the inner parser. */
function fixOuterLength(bytes: Uint8Array): Uint8Array {
  if (bytes.length < 4 || bytes[0] !== 0x30 || bytes[1] !== 0x82) return bytes;
  const out = new Uint8Array(bytes);
  const n = Math.min(0xffff, bytes.length - 4);
  out[2] = n >> 8;
  out[3] = n & 0xff;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Fixtures

const pki = buildHierarchy(new Date(Date.UTC(2022, 0, 1)));
const orgDer = buildOrganisationCertificate({ issuer: pki.oca, eui: '90B3D51F30010000', ou: '02', cn: 'Supplier', keyUsage: 'digitalSignature', notBefore: new Date(Date.UTC(2023, 0, 1)) });
const deviceDer = buildDeviceCertificate({ issuer: pki.dca, eui: '00DB1234567890A0', keyUsage: 'keyAgreement', notBefore: new Date(Date.UTC(2023, 0, 1)) });
const samples: readonly [string, Uint8Array][] = [
  ['organisation certificate', orgDer],
  ['device certificate', deviceDer],
  ['organisation CA', pki.oca.der],
];

beforeAll(() => {
  // Warm the parser (JIT, lazy module state) so the time bound measures the input, not start-up.
  for (let i = 0; i < 20; i++) for (const [, der] of samples) parseCertificate(der);
});

describe.each(samples)('parseCertificate on a %s, damaged', (_label, der) => {
  it('parses intact', () => {
    expect(certOutcome(der).ok).toBe(true);
  });

  it('truncated at every offset → ERR_CERT_MALFORMED', () => {
    for (let i = 0; i < der.length; i++) mustFail(der.subarray(0, i));
  });

  it('every byte changed to a few values → parses or ERR_CERT_MALFORMED', () => {
    let parsed = 0;
    let failed = 0;
    const original = parseCertificate(der).fingerprint;
    // Tag and length octets get more values (constructed bit, high bit, long forms, 0x30).
    const header = new Set<number>();
    for (const t of walk(der)) for (let i = t.start; i < t.valueStart; i++) header.add(i);
    for (let i = 0; i < der.length; i++) {
      const b = der[i] as number;
      const values = header.has(i) ? [b ^ 0x01, b ^ 0x80, b ^ 0x20, b ^ 0x40, 0x00, 0xff, 0x80, 0x30] : [b ^ 0x01, b ^ 0x80, 0x00];
      for (const v of new Set(values)) {
        if (v === b) continue;
        const m = new Uint8Array(der);
        m[i] = v;
        const o = certOutcome(m);
        if (o.ok) {
          parsed++;
          expect((o.value as SmkiCertificate).fingerprint).not.toBe(original);
        } else failed++;
      }
    }
    expect(failed).toBeGreaterThan(0);
    expect(parsed).toBeGreaterThan(0); // e.g. a changed key or signature byte still parses
  });

  it('lying lengths at every TLV (0x84 FF FF FF FF, 0x80 indefinite, 5 octets, non-minimal, longer than the input) → ERR_CERT_MALFORMED', () => {
    const tlvs = walk(der);
    expect(tlvs.length).toBeGreaterThan(30);
    for (const t of tlvs) {
      const realLen = t.end - t.valueStart;
      const lies: number[][] = [
        [0x84, 0xff, 0xff, 0xff, 0xff],
        [0x80],
        [0x85, 0x00, 0x00, 0x00, 0x00, realLen],
        [0x82, 0x00, realLen], // non-minimal
        derLength(der.length + 1),
        derLength(realLen + 1),
        ...(realLen > 0 ? [derLength(realLen - 1)] : []),
      ];
      for (const lie of lies) {
        const m = new Uint8Array([...der.subarray(0, t.lenStart), ...lie, ...der.subarray(t.valueStart)]);
        mustFail(m);
        if (t.start > 0) mustFail(fixOuterLength(m));
      }
    }
  });

  it('wrong outer tags → ERR_CERT_MALFORMED', () => {
    for (let tag = 0; tag < 256; tag++) {
      if (tag === 0x30) continue;
      const m = new Uint8Array(der);
      m[0] = tag;
      mustFail(m);
    }
  });

  it('wrong tags on every inner TLV → parses or ERR_CERT_MALFORMED', () => {
    for (const t of walk(der)) {
      for (const tag of [0x00, 0x05, 0x1f, 0x30, 0x31, 0xa0, 0xa3, 0xff]) {
        const m = new Uint8Array(der);
        if (m[t.start] === tag) continue;
        m[t.start] = tag;
        certOutcome(m);
      }
    }
  });

  it('trailing bytes and doubled certificates → ERR_CERT_MALFORMED', () => {
    mustFail(new Uint8Array([...der, 0x00]));
    mustFail(new Uint8Array([...der, ...der]));
  });
});

describe('parseCertificate on deep nesting and 64 KiB inputs (≤ 50 ms each)', () => {
  const nested = (depth: number, tag = 0x30): Uint8Array => {
    // tag 82 LL LL, each wrapping the next: consistent lengths all the way down.
    const out = new Uint8Array(depth * 4);
    for (let i = 0; i < depth; i++) {
      const len = (depth - i - 1) * 4;
      out.set([tag, 0x82, len >> 8, len & 0xff], i * 4);
    }
    return out;
  };
  const nestedShort = (depth: number): Uint8Array => {
    // Shortest-form nesting under 128 bytes per level: 30 7E 30 7C …
    const out = new Uint8Array(depth * 2);
    for (let i = 0; i < depth; i++) out.set([0x30, (depth - i - 1) * 2], i * 2);
    return out;
  };
  const fill = (n: number, pattern: number[]): Uint8Array => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = pattern[i % pattern.length] as number;
    return out;
  };
  const random = (n: number, seed: number): Uint8Array => {
    const out = new Uint8Array(n);
    let x = seed >>> 0 || 1;
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[i] = x & 0xff;
    }
    return out;
  };
  const withOuter = (body: Uint8Array): Uint8Array => new Uint8Array([0x30, ...derLength(body.length), ...body]);

  const inputs: [string, Uint8Array][] = [
    ['64 KiB of 30 80 (indefinite lengths)', fill(64 * KiB, [0x30, 0x80])],
    ['64 KiB of 30 (lengths of 0x30)', fill(64 * KiB, [0x30])],
    ['64 KiB of zeros', new Uint8Array(64 * KiB)],
    ['64 KiB of FF', fill(64 * KiB, [0xff])],
    ['64 KiB of nested 30 82 LL LL', nested(16 * KiB)],
    ['30 KiB of nested 30 82 LL LL (under the size cap: depth limit)', nested(7 * KiB + 512)],
    ['30 KiB of nested A0 82 LL LL', nested(7 * KiB + 512, 0xa0)],
    ['30 KiB of nested 31 82 LL LL', nested(7 * KiB + 512, 0x31)],
    ['nesting 33 deep (one over the limit)', nested(33)],
    ['nesting 63 deep, short lengths', nestedShort(63)],
    ['64 KiB of random bytes', random(64 * KiB, 1)],
    ['30 KiB of random bytes after a SEQUENCE header', withOuter(random(30 * KiB, 2))],
    ['30 KiB of empty SEQUENCEs in a SEQUENCE', withOuter(fill(30 * KiB, [0x30, 0x00]))],
    ['30 KiB of empty OCTET STRINGs in a SEQUENCE', withOuter(fill(30 * KiB, [0x04, 0x00]))],
    ['a SEQUENCE claiming 4 GiB', new Uint8Array([0x30, 0x84, 0xff, 0xff, 0xff, 0xff, ...new Uint8Array(64 * KiB - 6)])],
    ['a certificate followed by 60 KiB', new Uint8Array([...orgDer, ...new Uint8Array(60 * KiB)])],
  ];

  it.each(inputs)('%s → ERR_CERT_MALFORMED', (_label, input) => {
    mustFail(input);
  });

  const bigCert = (extensions: Uint8Array[], subject = name([{ type: 'OU', value: '02' }, { type: 'UID', eui: '90B3D51F30010000' }])): Uint8Array => {
    const key = newKeyPair();
    return buildCertificate({
      issuer: pki.oca.name,
      subject,
      notBefore: new Date(Date.UTC(2023, 0, 1)),
      notAfter: new Date(Date.UTC(2033, 0, 1)),
      publicKey: key.publicKey,
      signingKey: pki.oca.key.privateKey,
      extensions,
    });
  };
  const manyPolicies = Array.from({ length: 3000 }, (_, i) => `1.2.3.${i}`);
  const manyOtherNames = seq(...Array.from({ length: 700 }, (_, i) => ctx(0, false, oid(OIDS.hmn), ctx(0, false, seq(oid(OIDS.hwType), octets(new Uint8Array(8).fill(i & 0xff)))))));
  const big: [string, () => Uint8Array][] = [
    ['3000 certificate policies', () => bigCert([kuExt(['digitalSignature']), policiesExt(manyPolicies)])],
    ['700 hardwareModuleNames in the SAN', () => bigCert([extension(OIDS.san, true, manyOtherNames), kuExt(['keyAgreement'])], seq())],
    ['1500 RDNs in the subject', () => bigCert([kuExt(['digitalSignature'])], name(Array.from({ length: 1500 }, (_, i) => ({ type: 'OU' as const, value: String(i % 100) }))))],
    ['1000 unknown extensions', () => bigCert(Array.from({ length: 1000 }, (_, i) => extension(`1.3.6.1.4.1.99999.${i}`, false, octets(new Uint8Array(4)))))],
    ['1000 duplicate keyUsage extensions', () => bigCert(Array.from({ length: 1000 }, () => kuExt(['digitalSignature'])))],
    ['a 30 KiB OCTET STRING extension', () => bigCert([extension('1.3.6.1.4.1.99999.1', false, octets(new Uint8Array(30 * KiB)))])],
  ];

  it.each(big)('a certificate under 32 KiB with %s parses or fails in ≤ 50 ms', (_label, make) => {
    const der = make();
    expect(der.length).toBeLessThanOrEqual(32 * KiB);
    certOutcome(der);
    certOutcome(fixOuterLength(der.subarray(0, der.length - 100)));
  });

  it('a certificate with a 30 KiB serial number parses or fails in ≤ 50 ms', () => {
    const key = newKeyPair();
    const der = buildCertificate({
      serial: new Uint8Array(30 * KiB).fill(0x11),
      issuer: pki.oca.name,
      subject: name([{ type: 'OU', value: '02' }]),
      notBefore: new Date(Date.UTC(2023, 0, 1)),
      notAfter: new Date(Date.UTC(2033, 0, 1)),
      publicKey: key.publicKey,
      signingKey: pki.oca.key.privateKey,
      extensions: [skiExt(keyId(key.publicKey)), akiExt(keyId(pki.oca.key.publicKey))],
    });
    certOutcome(der);
  });

  it('a 64 KiB certificate is refused by size', () => {
    const der = bigCert([extension('1.3.6.1.4.1.99999.1', false, octets(new Uint8Array(63 * KiB)))]);
    expect(der.length).toBeGreaterThan(63 * KiB);
    expect(mustFail(der).message).toMatch(/over/);
  });

  const pem = certificateToPem(parseCertificate(orgDer));
  const body = pem.split('\n').slice(1, -2).join('');
  const texts: [string, string][] = [
    ['64 KiB of base64 in the armour', `-----BEGIN CERTIFICATE-----\n${'QUFB'.repeat(16 * KiB)}\n-----END CERTIFICATE-----\n`],
    ['64 KiB of BEGIN lines', '-----BEGIN CERTIFICATE-----\n'.repeat(Math.floor((64 * KiB) / 28))],
    ['64 KiB of dashes', '-'.repeat(64 * KiB)],
    ['64 KiB of "-----BEGIN " with no label end', '-----BEGIN '.repeat(Math.floor((64 * KiB) / 11))],
    ['64 KiB of white space in the armour', `-----BEGIN CERTIFICATE-----${' \n'.repeat(32 * KiB)}-----END CERTIFICATE-----`],
    ['64 KiB of labels 40 characters long', `-----BEGIN ${'A'.repeat(40)}-----`.repeat(Math.floor((64 * KiB) / 56))],
    ['64 KiB of certificates', (pem).repeat(Math.ceil((64 * KiB) / pem.length))],
    ['64 KiB of text then a certificate', `${'x'.repeat(64 * KiB)}${pem}`],
    ['a certificate with one bad character', pem.replace(body.slice(100, 104), `${body.slice(100, 102)}!${body.slice(103, 104)}`)],
    ['64 KiB of random text', Array.from({ length: 64 * KiB }, (_, i) => String.fromCharCode(32 + ((i * 7919) % 95))).join('')],
  ];

  it.each(texts)('PEM: %s → parses or fails in ≤ 50 ms with ERR_PEM_INVALID / ERR_CERT_MALFORMED', (_label, text) => {
    certOutcome(text);
  });
});

describe('fast-check: parseCertificate only ever throws SmkiError', () => {
  it('on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => {
        certOutcome(bytes);
      }),
      { numRuns: 1500 },
    );
  });

  it('on arbitrary bytes behind a plausible certificate header', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 1200 }), (bytes) => {
        certOutcome(new Uint8Array([0x30, ...derLength(bytes.length + 4), 0x30, 0x82, bytes.length >> 8, bytes.length & 0xff, ...bytes].slice(0, bytes.length + 8)));
        certOutcome(fixOuterLength(new Uint8Array([0x30, 0x82, 0, 0, ...bytes])));
      }),
      { numRuns: 800 },
    );
  });

  it('on arbitrary strings, with and without armour', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 600 }), fc.boolean(), (s, armour) => {
        certOutcome(armour ? `-----BEGIN CERTIFICATE-----\n${s}\n-----END CERTIFICATE-----\n` : s);
      }),
      { numRuns: 800 },
    );
  });

  const splice = fc.record({
    at: fc.nat(),
    remove: fc.nat({ max: 24 }),
    insert: fc.uint8Array({ maxLength: 24 }),
    fixOuter: fc.boolean(),
    which: fc.nat({ max: samples.length - 1 }),
  });

  it('on certificates with random splices (delete, insert, overwrite)', () => {
    fc.assert(
      fc.property(fc.array(splice, { minLength: 1, maxLength: 4 }), (edits) => {
        let bytes: Uint8Array = (samples[edits[0]?.which ?? 0] as [string, Uint8Array])[1];
        for (const e of edits) {
          const at = e.at % (bytes.length + 1);
          bytes = new Uint8Array([...bytes.subarray(0, at), ...e.insert, ...bytes.subarray(Math.min(bytes.length, at + e.remove))]);
          if (e.fixOuter) bytes = fixOuterLength(bytes);
        }
        certOutcome(bytes);
      }),
      { numRuns: 1500 },
    );
  });

  it('on certificates with bit flips', () => {
    fc.assert(
      fc.property(fc.nat({ max: samples.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.nat({ max: 7 })), { minLength: 1, maxLength: 6 }), (which, flips) => {
        const bytes = new Uint8Array((samples[which] as [string, Uint8Array])[1]);
        for (const [pos, bit] of flips) bytes[pos % bytes.length] = (bytes[pos % bytes.length] as number) ^ (1 << bit);
        certOutcome(bytes);
      }),
      { numRuns: 1500 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// CRLs and path validation

describe('parseCrl on hostile input (RFC 5280 §5.1)', () => {
  let crlDer: Uint8Array;
  let bigCrlDer: Uint8Array;
  const parse = (input: string | Uint8Array): unknown => parseCrl(input);
  const crlOutcome = (input: string | Uint8Array, limit = LIMIT_MS): Outcome => bounded(parse, input, CRL_CODES, limit);

  beforeAll(async () => {
    const { organisationCa } = await createHierarchy({ now: () => new Date(Date.UTC(2025, 0, 1)) });
    const revoked = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        serialNumber: (0x1000 + i).toString(16).padStart(32, '4'),
        revocationDate: new Date(Date.UTC(2025, 0, 2)),
        reason: i % 2 ? ('keyCompromise' as const) : ('superseded' as const),
      }));
    crlDer = (await issueCrl({ issuer: organisationCa, crlNumber: 7n, kind: 'crl', revoked: revoked(3), now: () => new Date(Date.UTC(2025, 0, 3)) })).der;
    bigCrlDer = (await issueCrl({ issuer: organisationCa, crlNumber: 8n, revoked: revoked(1250), now: () => new Date(Date.UTC(2025, 0, 3)) })).der;
    for (let i = 0; i < 5; i++) {
      parseCrl(crlDer);
      parseCrl(bigCrlDer);
    }
  });

  it('parses intact', () => {
    expect(crlOutcome(crlDer).ok).toBe(true);
  });

  it('a 60 KiB CRL with 1250 entries parses in ≤ 50 ms', () => {
    expect(bigCrlDer.length).toBeGreaterThan(48 * KiB);
    expect(bigCrlDer.length).toBeLessThanOrEqual(64 * KiB);
    expect(crlOutcome(bigCrlDer).ok).toBe(true);
  });

  it('truncated at every offset → ERR_CRL_MALFORMED', () => {
    for (let i = 0; i < crlDer.length; i++) {
      const o = crlOutcome(crlDer.subarray(0, i));
      expect(o.ok).toBe(false);
    }
  });

  it('every byte changed to a few values → parses or ERR_CRL_MALFORMED', () => {
    for (let i = 0; i < crlDer.length; i++) {
      for (const v of [0x00, 0xff, 0x80, 0x30, (crlDer[i] as number) ^ 0x20]) {
        const m = new Uint8Array(crlDer);
        m[i] = v;
        crlOutcome(m);
      }
    }
  });

  it('lying lengths at every TLV → ERR_CRL_MALFORMED', () => {
    for (const t of walk(crlDer)) {
      for (const lie of [[0x84, 0xff, 0xff, 0xff, 0xff], [0x80], derLength(crlDer.length + 1)]) {
        const m = new Uint8Array([...crlDer.subarray(0, t.lenStart), ...lie, ...crlDer.subarray(t.valueStart)]);
        expect(crlOutcome(m).ok).toBe(false);
      }
    }
  });

  it.each([
    ['64 KiB of 30 80', new Uint8Array(64 * KiB).map((_, i) => (i % 2 ? 0x80 : 0x30))],
    ['64 KiB of nested 30 82 LL LL', new Uint8Array(64 * KiB).map((_, i) => {
      const level = Math.floor(i / 4);
      const len = 64 * KiB - (level + 1) * 4;
      return [0x30, 0x82, len >> 8, len & 0xff][i % 4] as number;
    })],
    ['64 KiB of zeros', new Uint8Array(64 * KiB)],
    ['64 KiB of random bytes', new Uint8Array(64 * KiB).map((_, i) => (i * 2654435761) >>> 24)],
    ['64 KiB of text', 'x'.repeat(64 * KiB)],
    ['64 KiB of base64 in the armour', `-----BEGIN X509 CRL-----\n${'QUFB'.repeat(16 * KiB)}\n-----END X509 CRL-----\n`],
  ] as [string, string | Uint8Array][])('%s → ERR_CRL_MALFORMED / ERR_PEM_INVALID in ≤ 50 ms', (_label, input) => {
    expect(crlOutcome(input).ok).toBe(false);
  });

  it('fast-check: arbitrary bytes, strings, splices and bit flips only ever throw SmkiError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 1024 }),
          fc.string({ maxLength: 300 }),
          fc.record({ at: fc.nat(), remove: fc.nat({ max: 16 }), insert: fc.uint8Array({ maxLength: 16 }), fix: fc.boolean() }).map(({ at, remove, insert, fix }) => {
            const p = at % (crlDer.length + 1);
            const b = new Uint8Array([...crlDer.subarray(0, p), ...insert, ...crlDer.subarray(Math.min(crlDer.length, p + remove))]);
            return fix ? fixOuterLength(b) : b;
          }),
          fc.array(fc.tuple(fc.nat(), fc.nat({ max: 7 })), { minLength: 1, maxLength: 4 }).map((flips) => {
            const b = new Uint8Array(crlDer);
            for (const [pos, bit] of flips) b[pos % b.length] = (b[pos % b.length] as number) ^ (1 << bit);
            return b;
          }),
        ),
        (input) => {
          crlOutcome(input);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('refuses look-alike objects with ERR_INVALID_ARGUMENT', () => {
    const crl = parseCrl(crlDer);
    for (const v of [{ ...crl }, Object.create(crl), {}, []]) {
      expect(() => parseCrl(v as never)).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }) as Error);
    }
    for (const v of [null, undefined, 1, true]) {
      const o = bounded(parse, v, ['ERR_CRL_MALFORMED', 'ERR_INVALID_ARGUMENT']);
      expect(o.ok).toBe(false);
    }
  });
});

describe('validatePath on garbage (RFC 5280 §6.1: fails closed)', () => {
  let root: SmkiCertificate;
  let oca: SmkiCertificate;
  let leaf: SmkiCertificate;
  const at = new Date(Date.UTC(2026, 0, 1));
  const PATH_CODES: readonly SmkiErrorCode[] = ['ERR_CERT_MALFORMED', 'ERR_PEM_INVALID', 'ERR_CRL_MALFORMED', 'ERR_INVALID_ARGUMENT', 'ERR_CHAIN_NO_ANCHORS'];

  beforeAll(async () => {
    const h = await createHierarchy({ now: () => new Date(Date.UTC(2025, 0, 1)) });
    root = h.root.certificate;
    oca = h.organisationCa.certificate;
    leaf = await issueOrganisationCertificate({
      issuer: h.organisationCa,
      role: 2,
      entityId: '90B3D51F30010000',
      keyUsage: 'digitalSignature',
      publicKey: createKeySigner(newKeyPair().privateKey).publicKey,
      now: () => new Date(Date.UTC(2025, 0, 2)),
    });
  });

  /** Run validatePath; it must return valid:false or throw a SmkiError from `PATH_CODES`. */
  function neverValid(leafInput: unknown, options: unknown): void {
    let result: { valid: unknown } | undefined;
    try {
      result = validatePath(leafInput as never, options as never);
    } catch (e) {
      if (!(e instanceof SmkiError)) throw new Error(`validatePath threw a ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
      if (!PATH_CODES.includes(e.code)) throw new Error(`unexpected code ${e.code}: ${e.message}`);
      return;
    }
    expect(typeof result).toBe('object');
    expect(result?.valid).toBe(false);
  }

  it('the real path is valid (the property below would be vacuous otherwise)', () => {
    expect(validatePath(leaf, { anchors: [root], intermediates: [oca], at }).valid).toBe(true);
  });

  const garbage = (): fc.Arbitrary<unknown> =>
    fc.oneof(
      fc.uint8Array({ maxLength: 700 }),
      fc.string({ maxLength: 200 }),
      fc.object({ maxDepth: 2 }),
      fc.constantFrom(null, undefined, 0, 1n, true, [], {}, new Date(0), new ArrayBuffer(4)),
      fc.constant('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'),
    );

  const mutated = (base: () => Uint8Array): fc.Arbitrary<Uint8Array> =>
    fc
      .array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 3 })
      .map((edits) => {
        const b = new Uint8Array(base());
        for (const [pos, x] of edits) b[pos % b.length] = (b[pos % b.length] as number) ^ x;
        return b;
      });

  it('garbage leaf, intermediates and anchors: SmkiError or valid:false, never valid:true', () => {
    fc.assert(
      fc.property(
        garbage(),
        fc.oneof(fc.array(garbage(), { maxLength: 3 }), garbage()),
        fc.oneof(fc.array(garbage(), { maxLength: 3 }), garbage()),
        fc.oneof(fc.constant(at), fc.constant(undefined), garbage()),
        (l, intermediates, anchors, when) => {
          neverValid(l, { anchors, intermediates, at: when });
        },
      ),
      { numRuns: 400 },
    );
  });

  it('garbage around real certificates: a garbage or mutated leaf is never valid', () => {
    fc.assert(
      fc.property(
        fc.oneof(garbage(), mutated(() => leaf.der)),
        fc.array(fc.oneof(garbage(), fc.constant<unknown>(oca), mutated(() => oca.der)), { maxLength: 3 }),
        (l, intermediates) => {
          if (l instanceof Uint8Array && Buffer.compare(Buffer.from(l), Buffer.from(leaf.der)) === 0) return;
          neverValid(l, { anchors: [root], intermediates, at });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('garbage or mutated anchors and intermediates never make the real leaf valid', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(garbage(), mutated(() => root.der)), { maxLength: 3 }),
        fc.array(fc.oneof(garbage(), mutated(() => oca.der)), { maxLength: 3 }),
        fc.array(fc.oneof(garbage(), fc.constant('-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n')), { maxLength: 2 }),
        (anchors, intermediates, crls) => {
          neverValid(leaf, { anchors, intermediates, crls, at });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a look-alike leaf object with a real certificate’s fields is refused', () => {
    neverValid({ ...leaf }, { anchors: [root], intermediates: [oca], at });
    neverValid(leaf, { anchors: [{ ...root }], intermediates: [oca], at });
    neverValid(leaf, { anchors: [root], intermediates: [{ ...oca }], at });
  });

  it('garbage options are refused', () => {
    for (const options of [null, undefined, 1, 'x', [], {}, { anchors: null }, { anchors: 'x' }, { anchors: [root], at: 'yesterday' }, { anchors: [root], at: new Date(NaN) }]) {
      neverValid(leaf, options);
    }
  });
});
