// Hostile input (docs/conventions.md "Inputs"; docs/domain.md §3 GBCS message layout): every length field may lie
// and any byte may be cut off. The only outcomes allowed are a parse that rebuilds to exactly the
// same bytes, or SmkiError ERR_GBCS_MALFORMED with an offset inside the input, whose cause chain
// holds only SmkiErrors (never a RangeError or TypeError), within 50 ms for any input up to 64 KiB.
import { generateKeyPairSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createKeySigner, SmkiError } from '@smki/core';
import { createHierarchy, issueOrganisationCertificate } from '@smki/pki';
import { buildMessage, MAX_MESSAGE_BYTES, parseMessage, type GbcsFields, type GbcsMessage } from '../src/codec.js';

const LIMIT_MS = 50;
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex').toUpperCase();
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s/g, ''), 'hex'));
const fill = (n: number, seed = 1): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
const equal = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && Buffer.compare(a, b) === 0;

/** docs/domain.md §3 length encoding, written here independently of the codec. */
function lenBytes(n: number): number[] {
  if (n < 0x80) return [n];
  if (n < 0x100) return [0x81, n];
  if (n < 0x10000) return [0x82, n >> 8, n & 0xff];
  return [0x83, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
}

/** A deterministic byte generator (xorshift32), so failures reproduce. */
function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Why `e` is not an acceptable failure for an input of `length` bytes, or null if it is. */
function whyNotMalformed(e: unknown, length: number): string | null {
  if (!(e instanceof SmkiError)) return `threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`;
  if (e.code !== 'ERR_GBCS_MALFORMED') return `threw ${e.code}`;
  const offset = (e.context as { offset?: unknown }).offset;
  if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0 || offset > length) return `offset ${String(offset)} outside 0..${length}`;
  let c: unknown = e.cause;
  for (let depth = 0; c !== undefined; depth++) {
    if (depth > 8) return 'cause chain too deep';
    if (!(c instanceof SmkiError)) return `cause is ${c instanceof Error ? `${c.name}: ${c.message}` : String(c)}`;
    c = c.cause;
  }
  return null;
}

/**
 * Parse hostile bytes: return the message (after checking it rebuilds to exactly these bytes), or
 * null after checking that the failure is a well-formed ERR_GBCS_MALFORMED. Throws otherwise.
 */
function parseOrMalformed(bytes: Uint8Array): GbcsMessage | null {
  let m: GbcsMessage;
  try {
    m = parseMessage(bytes);
  } catch (e) {
    const why = whyNotMalformed(e, bytes.length);
    if (why !== null) throw new Error(`${why} for ${toHex(bytes.subarray(0, 64))}… (${bytes.length} bytes)`, { cause: e });
    return null;
  }
  const rebuilt = buildMessage(m);
  if (!equal(rebuilt, bytes)) throw new Error(`accepted ${toHex(bytes)} but rebuilt ${toHex(rebuilt)}`);
  return m;
}

function expectMalformed(bytes: Uint8Array): void {
  expect(parseOrMalformed(bytes), `accepted ${toHex(bytes).slice(0, 80)}`).toBeNull();
}

// ---------------------------------------------------------------------------------------------
// messages

const ORIGINATOR = '90B3D51F30010000';
const RECIPIENT = '00DB1234567890A0';
const SUPP_ID = '00DB1234567890A4';
const NOW = () => new Date('2025-01-01T00:00:00Z');
const hierarchy = await createHierarchy({ now: NOW });
const CERT_DER = (
  await issueOrganisationCertificate({
    issuer: hierarchy.organisationCa,
    publicKey: createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey).publicKey,
    role: 2,
    entityId: SUPP_ID,
    keyUsage: 'keyAgreement',
    now: NOW,
  })
).der;

const base: GbcsFields = {
  cra: 'command',
  originatorCounter: 1000n,
  originator: ORIGINATOR,
  recipient: RECIPIENT,
  messageCode: 0x0050,
  payload: hex('D9 20 0003E8 00 01 03 0009 00000A006AFF 01 01 12 0034'),
};
const withCert: GbcsFields = {
  ...base,
  cra: 'response',
  dateTime: fill(12, 3),
  supplementaryRemotePartyId: SUPP_ID,
  supplementaryRemotePartyCounter: 2n ** 63n,
  keyAgreementCertificate: CERT_DER,
  signature: fill(64, 9),
};
const MESSAGES: ReadonlyArray<[string, Uint8Array]> = [
  ['pre-command ending 00', buildMessage({ ...base, signatureField: 'empty' })],
  ['pre-command ending after the content', buildMessage(base)],
  ['signed, date-time, all supplementary fields', buildMessage({ ...base, cra: 'alert', dateTime: fill(12), supplementaryRemotePartyId: SUPP_ID, supplementaryRemotePartyCounter: 5n, supplementaryOriginatorCounter: 6n, signature: fill(64, 5) })],
  ['signed with a key-agreement certificate', buildMessage(withCert)],
  ['DD frame around a signed pre-command', buildMessage({ ...base, signature: fill(64, 2), mac: fill(12, 4) })],
  ['DD frame with a certificate (82 lengths)', buildMessage({ ...withCert, payload: fill(300), mac: fill(12, 8) })],
];

// ---------------------------------------------------------------------------------------------

describe('docs/domain.md §3: truncation at every offset', () => {
  it.each(MESSAGES)('%s', (_name, full) => {
    const m = parseMessage(full);
    let accepted = 0;
    for (let k = 0; k < full.length; k++) {
      const cut = full.subarray(0, k);
      const r = parseOrMalformed(cut);
      if (r !== null) {
        // the one valid prefix: a signed APDU cut right after its content is an unsigned pre-command
        expect(m.frame).toBe('signed');
        expect(k).toBe(m.signedRange.end);
        expect(r.signatureField).toBe('absent');
        accepted++;
      }
    }
    expect(accepted).toBe(m.frame === 'signed' && m.signatureField !== 'absent' ? 1 : 0);
    // a copy (not a view) cut short behaves the same
    expectMalformed(Uint8Array.from(full.subarray(0, full.length - (m.frame === 'signed' && m.signatureField === 'empty' ? 2 : 1))));
  });
});

describe('docs/domain.md §3: every byte mutated to several values parses (and round-trips) or is ERR_GBCS_MALFORMED', () => {
  it.each(MESSAGES)('%s', (_name, full) => {
    const values = [0x00, 0x01, 0x02, 0x03, 0x04, 0x08, 0x09, 0x0c, 0x11, 0x40, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0xdd, 0xdf, 0xff];
    let parsed = 0;
    let refused = 0;
    for (let i = 0; i < full.length; i++) {
      const original = full[i] as number;
      for (const v of [...values, original ^ 0x01, original ^ 0x80, (original + 1) & 0xff, (original - 1) & 0xff]) {
        if (v === original) continue;
        const b = Uint8Array.from(full);
        b[i] = v;
        if (parseOrMalformed(b) === null) refused++;
        else parsed++;
      }
    }
    // both happen: payload/counter/title bytes are free, structural bytes are not
    expect(parsed).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  });
});

describe('docs/domain.md §3: lying lengths at every length field', () => {
  interface LengthField {
    name: string;
    at: number;
    size: number; // bytes the encoding takes
    value: number; // the true value
  }
  /** Where the length fields are, computed from the docs/domain.md §3 layout (not from the codec's ranges). */
  function lengthFields(bytes: Uint8Array): LengthField[] {
    const out: LengthField[] = [];
    let a = 0; // APDU start
    if (bytes[0] === 0xdd) {
      const size = (bytes[7] as number) < 0x80 ? 1 : 1 + (bytes[7] as number) - 0x80;
      out.push({ name: 'DD length', at: 7, size, value: bytes.length - 7 - size });
      a = 7 + size + 5;
    }
    out.push({ name: 'transaction-id length', at: a + 1, size: 1, value: 9 });
    out.push({ name: 'originator length', at: a + 11, size: 1, value: 8 });
    out.push({ name: 'recipient length', at: a + 20, size: 1, value: 8 });
    const dt = bytes[a + 29] as number;
    out.push({ name: 'date-time length', at: a + 29, size: 1, value: dt });
    const readLen = (at: number): [number, number] => {
      const f = bytes[at] as number;
      if (f < 0x80) return [f, 1];
      let v = 0;
      for (let i = 1; i <= f - 0x80; i++) v = v * 256 + (bytes[at + i] as number);
      return [v, 1 + f - 0x80];
    };
    const oiAt = a + 30 + dt;
    const [oiLen, oiSize] = readLen(oiAt);
    out.push({ name: 'other-information length', at: oiAt, size: oiSize, value: oiLen });
    const cAt = oiAt + oiSize + oiLen;
    const [cLen, cSize] = readLen(cAt);
    out.push({ name: 'content length', at: cAt, size: cSize, value: cLen });
    const sAt = cAt + cSize + cLen;
    const apduEnd = bytes[0] === 0xdd ? bytes.length - 12 : bytes.length;
    if (sAt < apduEnd) out.push({ name: 'signature length', at: sAt, size: 1, value: bytes[sAt] as number });
    return out;
  }

  const splice = (b: Uint8Array, at: number, del: number, ins: readonly number[]): Uint8Array =>
    Uint8Array.from([...b.subarray(0, at), ...ins, ...b.subarray(at + del)]);

  it.each(MESSAGES)('%s', (_name, full) => {
    const fields = lengthFields(full);
    expect(fields.length).toBeGreaterThanOrEqual(6);
    for (const f of fields) {
      // the layout computed here agrees with the message (the true value parses)
      expect(parseOrMalformed(splice(full, f.at, f.size, lenBytes(f.value))), f.name).not.toBeNull();
      // every single-byte value in the first length byte, the rest left as it was
      for (let v = 0; v < 256; v++) {
        if (v === full[f.at]) continue;
        const b = Uint8Array.from(full);
        b[f.at] = v;
        parseOrMalformed(b);
      }
      // every length encoding of many lying values, minimal and not
      const lies = new Set<number>([0, 1, 2, 8, 9, 10, 12, 26, 27, 0x40, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffff]);
      for (let d = -20; d <= 20; d++) if (f.value + d >= 0) lies.add(f.value + d);
      for (const v of lies) {
        const encodings: number[][] = [lenBytes(v)];
        if (v < 0x100) encodings.push([0x81, v]);
        if (v < 0x10000) encodings.push([0x82, v >> 8, v & 0xff]);
        encodings.push([0x83, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff]);
        encodings.push([0x84, 0, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff], [0x80]);
        for (const enc of encodings) {
          const b = splice(full, f.at, f.size, enc);
          const m = parseOrMalformed(b);
          // only the minimal encoding of a length is ever accepted
          if (m !== null && !equal(Uint8Array.from(enc), Uint8Array.from(lenBytes(v)))) {
            throw new Error(`${f.name}: non-minimal ${toHex(Uint8Array.from(enc))} accepted`);
          }
        }
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('docs/conventions.md "Inputs": 64 KiB inputs are refused or parsed within 50 ms', () => {
  const K64 = MAX_MESSAGE_BYTES;
  const dfHeader = (oiLen: number[], extra = ''): Uint8Array =>
    hex(`DF 09 01 00000000000003E8 08 ${ORIGINATOR} 08 ${RECIPIENT} 00 ${toHex(Uint8Array.from(oiLen))} ${extra}`);
  const pad = (head: Uint8Array, n = K64, seed = 7): Uint8Array => {
    const out = randomBytes(n, seed);
    out.set(head.subarray(0, n));
    return out;
  };
  // a valid signed APDU of exactly 64 KiB: 33 + 82 FF DC + 65500
  const maxSigned = buildMessage({ ...base, payload: fill(65_500) });
  // a valid DD frame of exactly 64 KiB: 7 + 82 FF F6 + 5 + (36 + 65473) + 12
  const maxCiphered = buildMessage({ ...base, payload: fill(65_473), mac: fill(12) });

  const inputs: ReadonlyArray<[string, Uint8Array]> = [
    ['random 64 KiB (seed 1)', randomBytes(K64, 1)],
    ['random 64 KiB (seed 2)', randomBytes(K64, 2)],
    ['random 64 KiB starting DF', pad(hex('DF'), K64, 3)],
    ['random 64 KiB starting DF 09 01', pad(hex('DF0901'), K64, 4)],
    ['random 64 KiB starting DD', pad(hex('DD'), K64, 5)],
    ['random 64 KiB starting DD 00 00 00 00 00 00', pad(hex('DD000000000000'), K64, 6)],
    ['64 KiB of 00', new Uint8Array(K64)],
    ['64 KiB of FF', new Uint8Array(K64).fill(0xff)],
    ['64 KiB of DF', new Uint8Array(K64).fill(0xdf)],
    ['64 KiB of 82', pad(hex('DF'), K64).fill(0x82, 1)],
    ['DF, other-information 82 FF FF', pad(dfHeader([0x82, 0xff, 0xff]))],
    ['DF, other-information 83 FF FF FF', pad(dfHeader([0x83, 0xff, 0xff, 0xff]))],
    ['DF, other-information 82 FF 00 (a certificate filling 64 KiB)', pad(dfHeader([0x82, 0xff, 0x00], `0050 ${SUPP_ID} 0000000000000001`))],
    ['DF, content 82 FF FF', pad(dfHeader([0x02], '0050 82FFFF'))],
    ['DF, content 83 FF FF FF', pad(dfHeader([0x02], '0050 83FFFFFF'))],
    ['DF, content 82 FF DC (fits), then garbage signature field', pad(dfHeader([0x02], '0050 82FFDB'))],
    ['DD, length 82 FF FF', pad(hex('DD000000000000 82FFFF 1100000000 DF'))],
    ['DD, length 83 FF FF FF', pad(hex('DD000000000000 83FFFFFF 1100000000 DF'))],
    ['DD, length 82 FF F6 (fits), inner content 82 FF FF', pad(hex(`DD000000000000 82FFF6 1100000000 ${toHex(dfHeader([0x02], '0050 82FFFF'))}`))],
    ['DD, length 82 FF F6 (fits), inner other-information 82 FF F0', pad(hex(`DD000000000000 82FFF6 1100000000 ${toHex(dfHeader([0x82, 0xff, 0xf0]))}`))],
    ['valid signed APDU of exactly 64 KiB', maxSigned],
    ['valid DD frame of exactly 64 KiB', maxCiphered],
    ['64 KiB + 1 (signed)', Uint8Array.from([...maxSigned, 0])],
    ['64 KiB + 1 (ciphered)', Uint8Array.from([...maxCiphered, 0])],
    ['1 MiB', pad(hex('DF'), 1024 * 1024)],
  ];

  it.each(inputs)('%s', (_name, bytes) => {
    let fastest = Number.POSITIVE_INFINITY;
    for (let run = 0; run < 3; run++) {
      const t0 = performance.now();
      try {
        parseMessage(bytes);
      } catch {
        // classified below
      }
      fastest = Math.min(fastest, performance.now() - t0);
    }
    expect(fastest).toBeLessThan(LIMIT_MS);
    parseOrMalformed(bytes);
  });

  it('the two maximal valid messages parse', () => {
    expect(parseOrMalformed(maxSigned)?.payload.length).toBe(65_500);
    expect(parseOrMalformed(maxCiphered)?.payload.length).toBe(65_473);
    expect(maxSigned.length).toBe(K64);
    expect(maxCiphered.length).toBe(K64);
  });
});

// ---------------------------------------------------------------------------------------------
// fast-check: valid messages round-trip; mutated and truncated ones parse-and-round-trip or are
// ERR_GBCS_MALFORMED, and nothing else escapes.

const eui = fc.uint8Array({ minLength: 8, maxLength: 8 }).map(toHex);
const u64 = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(0n, 1n, 1000n, 2n ** 63n, 2n ** 64n - 1n));
type Supplementary = Pick<GbcsFields, 'supplementaryRemotePartyId' | 'supplementaryRemotePartyCounter' | 'supplementaryOriginatorCounter' | 'keyAgreementCertificate'>;
const supplementary: fc.Arbitrary<Supplementary> = fc.oneof(
  fc.constant({}),
  eui.map((id) => ({ supplementaryRemotePartyId: id })),
  fc.tuple(eui, u64).map(([id, c]) => ({ supplementaryRemotePartyId: id, supplementaryRemotePartyCounter: c })),
  fc.tuple(eui, u64, u64).map(([id, c, o]) => ({ supplementaryRemotePartyId: id, supplementaryRemotePartyCounter: c, supplementaryOriginatorCounter: o })),
  fc
    .tuple(eui, u64, fc.oneof(fc.uint8Array({ minLength: 9, maxLength: 300 }), fc.constant(CERT_DER)))
    .map(([id, c, cert]) => ({ supplementaryRemotePartyId: id, supplementaryRemotePartyCounter: c, keyAgreementCertificate: cert })),
);
type Built = GbcsFields & { mac?: Uint8Array };
const fieldsArb: fc.Arbitrary<Built> = fc
  .record({
    cra: fc.constantFrom('command' as const, 'response' as const, 'alert' as const),
    originatorCounter: u64,
    originator: eui,
    recipient: eui,
    dateTime: fc.option(fc.uint8Array({ minLength: 12, maxLength: 12 }), { nil: undefined }),
    messageCode: fc.integer({ min: 0, max: 0xffff }),
    supplementary,
    payload: fc.oneof(
      { weight: 4, arbitrary: fc.uint8Array({ maxLength: 140 }) },
      { weight: 1, arbitrary: fc.uint8Array({ minLength: 120, maxLength: 600 }) },
    ),
    sig: fc.oneof(fc.constant('absent' as const), fc.constant('empty' as const), fc.uint8Array({ minLength: 64, maxLength: 64 })),
    mac: fc.option(fc.uint8Array({ minLength: 12, maxLength: 12 }), { nil: undefined }),
  })
  .map((r): Built => ({
    cra: r.cra,
    originatorCounter: r.originatorCounter,
    originator: r.originator,
    recipient: r.recipient,
    ...(r.dateTime ? { dateTime: r.dateTime } : {}),
    messageCode: r.messageCode,
    ...r.supplementary,
    payload: r.payload,
    ...(r.sig === 'absent' ? {} : r.sig === 'empty' ? { signatureField: 'empty' as const } : { signature: r.sig }),
    ...(r.mac ? { mac: r.mac } : {}),
  }));

type Mutation =
  | { kind: 'set'; at: number; value: number }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'splice'; at: number; remove: number; insert: Uint8Array }
  | { kind: 'truncate'; keep: number };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), remove: fc.integer({ min: 0, max: 16 }), insert: fc.uint8Array({ maxLength: 16 }) }),
  fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat() }),
);
function mutate(b: Uint8Array, mu: Mutation): Uint8Array {
  const n = b.length;
  switch (mu.kind) {
    case 'set': {
      const o = Uint8Array.from(b);
      if (n > 0) o[mu.at % n] = mu.value;
      return o;
    }
    case 'flip': {
      const o = Uint8Array.from(b);
      if (n > 0) o[mu.at % n] = (o[mu.at % n] as number) ^ (1 << mu.bit);
      return o;
    }
    case 'splice': {
      const at = mu.at % (n + 1);
      return Uint8Array.from([...b.subarray(0, at), ...mu.insert, ...b.subarray(at + mu.remove)]);
    }
    case 'truncate':
      return b.slice(0, mu.keep % (n + 1));
  }
}

describe('fast-check (docs/domain.md §3): build → parse → build, then mutate and truncate', () => {
  it('every generated message round-trips: fields in, the same fields and bytes out', () => {
    fc.assert(
      fc.property(fieldsArb, (f) => {
        const bytes = buildMessage(f);
        const m = parseMessage(bytes);
        expect(m.frame).toBe(f.mac ? 'ciphered' : 'signed');
        expect(m.cra).toBe(f.cra);
        expect(m.originatorCounter).toBe(f.originatorCounter);
        expect(m.originator).toBe(f.originator);
        expect(m.recipient).toBe(f.recipient);
        expect(m.messageCode).toBe(f.messageCode);
        expect(m.dateTime && toHex(m.dateTime)).toBe(f.dateTime && toHex(f.dateTime));
        expect(m.supplementaryRemotePartyId).toBe(f.supplementaryRemotePartyId);
        expect(m.supplementaryRemotePartyCounter).toBe(f.supplementaryRemotePartyCounter);
        expect(m.supplementaryOriginatorCounter).toBe(f.supplementaryOriginatorCounter);
        expect(m.keyAgreementCertificate && toHex(m.keyAgreementCertificate)).toBe(f.keyAgreementCertificate && toHex(f.keyAgreementCertificate));
        expect(toHex(m.payload)).toBe(toHex(f.payload));
        expect(m.signatureField).toBe(f.signatureField ?? (f.signature ? 'present' : 'absent'));
        expect(m.signature && toHex(m.signature)).toBe(f.signature ? toHex(f.signature) : null);
        expect(m.mac && toHex(m.mac)).toBe(f.mac && toHex(f.mac));
        // the signed range ends where the content ends, the APDU range excludes the DD header and MAC
        expect(m.signedRange.start).toBe(m.apduRange.start + 1);
        expect(m.signedRange.end).toBe(m.payload.byteOffset - m.bytes.byteOffset + m.payload.length);
        expect(m.apduRange.end).toBe(bytes.length - (f.mac ? 12 : 0));
        expect(equal(buildMessage(m), bytes)).toBe(true);
      }),
      { numRuns: 400, seed: 0x6bc5 },
    );
  });

  it('mutated messages (byte sets, bit flips, splices, truncations) parse and round-trip or are ERR_GBCS_MALFORMED', () => {
    let accepted = 0;
    let refused = 0;
    fc.assert(
      fc.property(fieldsArb, fc.array(mutation, { minLength: 1, maxLength: 4 }), (f, mus) => {
        let b = buildMessage(f);
        for (const mu of mus) {
          b = mutate(b, mu);
          if (parseOrMalformed(b) === null) refused++;
          else accepted++;
        }
      }),
      { numRuns: 1500, seed: 0x5eed },
    );
    expect(refused).toBeGreaterThan(0);
    expect(accepted).toBeGreaterThan(0);
  });

  it('every truncation of a generated message is ERR_GBCS_MALFORMED, bar the unsigned prefix of a signed APDU', () => {
    fc.assert(
      fc.property(fieldsArb, fc.nat(), (f, k) => {
        const bytes = buildMessage(f);
        const keep = k % bytes.length;
        const m = parseOrMalformed(bytes.subarray(0, keep));
        if (m !== null) {
          expect(f.mac).toBeUndefined();
          expect(m.signatureField).toBe('absent');
          expect(keep).toBe(parseMessage(bytes).signedRange.end);
        }
      }),
      { numRuns: 600, seed: 0x7a11 },
    );
  });

  it('arbitrary bytes starting DF or DD (and anything else) parse and round-trip or are ERR_GBCS_MALFORMED', () => {
    fc.assert(
      fc.property(fc.constantFrom(0xdf, 0xdd, 0x00, 0xff), fc.uint8Array({ maxLength: 400 }), (first, rest) => {
        parseOrMalformed(Uint8Array.from([first, ...rest]));
      }),
      { numRuns: 1000, seed: 0xd0d0 },
    );
  });
});
