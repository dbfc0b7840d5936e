// docs/domain.md §3 (GBCS message layout): general-signing APDUs (DF …) and general-ciphering frames (DD …).
// The expected bytes here come from a small encoder written in this file straight from the docs/domain.md §3
// tables (and from hex written out byte by byte), never from the codec, so that these tests are an
// independent check that the codec matches docs/domain.md. Negative cases break one structural rule each
// and expect ERR_GBCS_MALFORMED with the offset of the offending byte.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createKeySigner, SmkiError } from '@smki/core';
import { createHierarchy, issueOrganisationCertificate } from '@smki/pki';
import {
  apduBytes,
  buildGeneralCiphering,
  buildGeneralSigning,
  buildMessage,
  MAX_MESSAGE_BYTES,
  parseMessage,
  signedBytes,
  type GbcsFields,
  type GbcsMessage,
} from '../src/codec.js';

// ---------------------------------------------------------------------------------------------
// helpers: an independent docs/domain.md §3 encoder

const hex = (s: string): Uint8Array => {
  const t = s.replace(/[\s|]/g, '');
  if (!/^(?:[0-9A-Fa-f]{2})*$/.test(t)) throw new Error(`bad hex in test: ${s}`);
  return Uint8Array.from(Buffer.from(t, 'hex'));
};
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex').toUpperCase();
const h2 = (n: number): string => n.toString(16).padStart(2, '0').toUpperCase();
const fill = (n: number, seed = 1): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

// docs/domain.md §3 "Lengths": one byte below 0x80, else 0x81/0x82/0x83 followed by 1–3 big-endian bytes.
function lenHex(n: number): string {
  if (n < 0x80) return h2(n);
  if (n < 0x100) return `81${h2(n)}`;
  if (n < 0x10000) return `82${n.toString(16).padStart(4, '0').toUpperCase()}`;
  return `83${n.toString(16).padStart(6, '0').toUpperCase()}`;
}
const u64Hex = (v: bigint): string => v.toString(16).padStart(16, '0').toUpperCase();

type Sig = 'absent' | 'empty' | Uint8Array;
interface Model {
  cra: 1 | 2 | 3;
  counter: bigint;
  originator: string; // 16 hex digits
  recipient: string;
  dateTime?: Uint8Array;
  code: number;
  suppId?: string;
  suppCounter?: bigint;
  suppOrig?: bigint;
  cert?: Uint8Array;
  payload: Uint8Array;
  sig: Sig;
  mac?: Uint8Array;
}

/** The general-signing APDU's bytes up to the last content byte (the signed part plus DF). */
function headHex(m: Model): string {
  const oi = `${m.code.toString(16).padStart(4, '0').toUpperCase()}${m.suppId ?? ''}${m.suppCounter !== undefined ? u64Hex(m.suppCounter) : ''}${
    m.suppOrig !== undefined ? u64Hex(m.suppOrig) : ''
  }${m.cert ? toHex(m.cert) : ''}`;
  return [
    'DF', // general-signing tag
    '09', // transaction-id length
    h2(m.cra),
    u64Hex(m.counter),
    '08',
    m.originator,
    '08',
    m.recipient,
    m.dateTime ? `0C${toHex(m.dateTime)}` : '00',
    lenHex(oi.length / 2),
    oi,
    lenHex(m.payload.length),
    toHex(m.payload),
  ].join('');
}

function apduHex(m: Model): string {
  const tail = m.sig === 'absent' ? '' : m.sig === 'empty' ? '00' : `40${toHex(m.sig)}`;
  return headHex(m) + tail;
}

/** docs/domain.md §3: `DD 00 00 00 00 00 00 ‖ len ‖ 11 00 00 00 00 ‖ APDU ‖ MAC`, len over header+APDU+MAC. */
function assemble(m: Model): Uint8Array {
  const apdu = apduHex(m);
  if (!m.mac) return hex(apdu);
  const inner = `1100000000${apdu}${toHex(m.mac)}`;
  return hex(`DD000000000000${lenHex(inner.length / 2)}${inner}`);
}

function toFields(m: Model): GbcsFields & { mac?: Uint8Array } {
  return {
    cra: (['command', 'response', 'alert'] as const)[m.cra - 1] ?? 'command',
    originatorCounter: m.counter,
    originator: m.originator,
    recipient: m.recipient,
    ...(m.dateTime ? { dateTime: m.dateTime } : {}),
    messageCode: m.code,
    ...(m.suppId !== undefined ? { supplementaryRemotePartyId: m.suppId } : {}),
    ...(m.suppCounter !== undefined ? { supplementaryRemotePartyCounter: m.suppCounter } : {}),
    ...(m.suppOrig !== undefined ? { supplementaryOriginatorCounter: m.suppOrig } : {}),
    ...(m.cert ? { keyAgreementCertificate: m.cert } : {}),
    payload: m.payload,
    ...(m.sig === 'absent' ? {} : m.sig === 'empty' ? { signatureField: 'empty' as const } : { signature: m.sig }),
    ...(m.mac ? { mac: m.mac } : {}),
  };
}

/** Parse `bytes` and check every field, the ranges and the exact round trip against the model. */
function checkAgainstModel(bytes: Uint8Array, m: Model): GbcsMessage {
  const msg = parseMessage(bytes);
  expect(msg.frame).toBe(m.mac ? 'ciphered' : 'signed');
  expect(msg.cra).toBe(toFields(m).cra);
  expect(msg.originatorCounter).toBe(m.counter);
  expect(msg.originator).toBe(m.originator);
  expect(msg.recipient).toBe(m.recipient);
  expect(msg.messageCode).toBe(m.code);
  if (m.dateTime) expect(toHex(msg.dateTime as Uint8Array)).toBe(toHex(m.dateTime));
  else expect('dateTime' in msg).toBe(false);
  expect(msg.supplementaryRemotePartyId).toBe(m.suppId);
  expect(msg.supplementaryRemotePartyCounter).toBe(m.suppCounter);
  expect(msg.supplementaryOriginatorCounter).toBe(m.suppOrig);
  if (m.cert) expect(toHex(msg.keyAgreementCertificate as Uint8Array)).toBe(toHex(m.cert));
  else expect('keyAgreementCertificate' in msg).toBe(false);
  expect(toHex(msg.payload)).toBe(toHex(m.payload));
  if (m.sig === 'absent' || m.sig === 'empty') {
    expect(msg.signatureField).toBe(m.sig);
    expect(msg.signature).toBeNull();
  } else {
    expect(msg.signatureField).toBe('present');
    expect(toHex(msg.signature as Uint8Array)).toBe(toHex(m.sig));
  }
  // docs/domain.md §3: the APDU inside a DD frame excludes the 8+len header bytes, the 5-byte security header
  // and the 12-byte MAC; docs/domain.md §4: the signed range is from after DF to the last content byte.
  const apduStart = m.mac ? 7 + lenHex(5 + apduHex(m).length / 2 + 12).length / 2 + 5 : 0;
  const apduEnd = m.mac ? bytes.length - 12 : bytes.length;
  expect(msg.apduRange).toEqual({ start: apduStart, end: apduEnd });
  expect(toHex(apduBytes(msg))).toBe(apduHex(m));
  expect(msg.signedRange).toEqual({ start: apduStart + 1, end: apduStart + headHex(m).length / 2 });
  expect(toHex(signedBytes(msg))).toBe(headHex(m).slice(2));
  if (m.mac) expect(toHex(msg.mac as Uint8Array)).toBe(toHex(m.mac));
  else expect(msg.mac).toBeUndefined();
  expect(toHex(msg.bytes)).toBe(toHex(bytes));
  // the builder works from the fields of the parsed message and reproduces its bytes exactly
  expect(toHex(buildMessage(msg))).toBe(toHex(bytes));
  return msg;
}

function errorOf(f: () => unknown): SmkiError {
  try {
    f();
  } catch (e) {
    if (e instanceof SmkiError) return e;
    throw new Error(`expected a SmkiError, got ${String(e)}`);
  }
  throw new Error('expected a SmkiError, nothing was thrown');
}

function expectMalformedAt(bytes: Uint8Array, offset: number): void {
  const e = errorOf(() => parseMessage(bytes));
  expect(e.code).toBe('ERR_GBCS_MALFORMED');
  expect((e.context as { offset?: number }).offset).toBe(offset);
}

function expectInvalidField(f: () => unknown): void {
  expect(errorOf(f).code).toBe('ERR_GBCS_INVALID_FIELD');
}

// ---------------------------------------------------------------------------------------------
// fixtures

const ORIGINATOR = '90B3D51F30010000';
const RECIPIENT = '00DB1234567890A0';
const SUPP_ID = '00DB1234567890A4';
const DATE_TIME = hex('07E9 0C 1F 03 17 3B 3B 00 0000 00'); // a 12-byte COSEM date-time
// docs/domain.md §5, ECS43 remote disconnect, counter 1000: D9 ‖ 20 ‖ 0003E8 ‖ 00 ‖ 01 03 0009 00000A006AFF 01 ‖ 01 12 ‖ 0034
const DISCONNECT = 'D9 20 0003E8 00 01 03 0009 00000A006AFF 01 01 12 0034';

// A real DER key-agreement certificate to carry in other-information (docs/domain.md §3, from offset 18).
const hierarchy = await createHierarchy({ now: () => new Date('2025-01-01T00:00:00Z') });
const kaCert = await issueOrganisationCertificate({
  issuer: hierarchy.organisationCa,
  publicKey: createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey).publicKey,
  role: 2,
  entityId: SUPP_ID,
  keyUsage: 'keyAgreement',
  now: () => new Date('2025-01-01T00:00:00Z'),
});
const CERT_DER = kaCert.der;

// ---------------------------------------------------------------------------------------------

describe('docs/domain.md §3: a hand-written remote disconnect pre-command parses to the right fields', () => {
  // Written out byte by byte from the docs/domain.md §3 table (offsets on the left).
  const PRE_COMMAND = [
    'DF', //                   0  general-signing tag
    '09', //                   1  transaction-id length
    '01', //                   2  CRA: command
    '00 00 00 00 00 00 03 E8', // 3  originator counter 1000
    '08 90 B3 D5 1F 30 01 00 00', // 11 originator system title
    '08 00 DB 12 34 56 78 90 A0', // 20 recipient system title
    '00', //                   29 date-time absent
    '02 00 50', //             30 other-information: message code 0050 (ECS43)
    '15', //                   33 content length 21
    DISCONNECT, //             34 the DLMS ACTION (docs/domain.md §5)
    '00', //                   55 signature length 00: none yet
  ].join(' ');

  it('parses every field', () => {
    const bytes = hex(PRE_COMMAND);
    expect(bytes.length).toBe(56);
    const m = parseMessage(bytes);
    expect(m.frame).toBe('signed');
    expect(m.cra).toBe('command');
    expect(m.originatorCounter).toBe(1000n);
    expect(m.originator).toBe('90B3D51F30010000');
    expect(m.recipient).toBe('00DB1234567890A0');
    expect(m.dateTime).toBeUndefined();
    expect(m.messageCode).toBe(0x0050);
    expect(m.supplementaryRemotePartyId).toBeUndefined();
    expect(m.supplementaryRemotePartyCounter).toBeUndefined();
    expect(m.supplementaryOriginatorCounter).toBeUndefined();
    expect(m.keyAgreementCertificate).toBeUndefined();
    expect(toHex(m.payload)).toBe(toHex(hex(DISCONNECT)));
    expect(m.payload.length).toBe(21);
    // the DLMS invoke-id repeats the low 24 bits of the counter (docs/domain.md §3)
    expect(m.payload[1]).toBe(0x20);
    expect((m.payload[2]! << 16) | (m.payload[3]! << 8) | m.payload[4]!).toBe(1000);
    expect(m.signatureField).toBe('empty');
    expect(m.signature).toBeNull();
    expect(m.apduRange).toEqual({ start: 0, end: 56 });
    expect(m.signedRange).toEqual({ start: 1, end: 55 });
    expect(toHex(signedBytes(m))).toBe(toHex(hex(PRE_COMMAND)).slice(2, -2));
  });

  it('is what the builder makes from those fields, and round-trips', () => {
    const built = buildMessage({
      cra: 'command',
      originatorCounter: 1000n,
      originator: '90-B3-D5-1F-30-01-00-00',
      recipient: '00db1234567890a0',
      messageCode: 0x0050,
      payload: hex(DISCONNECT),
      signatureField: 'empty',
    });
    expect(toHex(built)).toBe(toHex(hex(PRE_COMMAND)));
    expect(toHex(buildMessage(parseMessage(built)))).toBe(toHex(built));
  });

  it('parses the same command with a signature and inside a hand-written DD frame', () => {
    const sig = fill(64, 7);
    const signed = `${PRE_COMMAND.slice(0, -2)} 40 ${toHex(sig)}`; // 00 → 40 ‖ r‖s: 120 bytes
    const mac = 'A1 A2 A3 A4 A5 A6 A7 A8 A9 AA AB AC';
    // len = 5 (security header) + 120 (APDU) + 12 (MAC) = 137 = 81 89
    const frame = hex(`DD 00 00 00 00 00 00 81 89 11 00 00 00 00 ${signed} ${mac}`);
    expect(frame.length).toBe(9 + 137);
    const m = parseMessage(frame);
    expect(m.frame).toBe('ciphered');
    expect(m.messageCode).toBe(0x50);
    expect(m.originatorCounter).toBe(1000n);
    expect(m.signatureField).toBe('present');
    expect(toHex(m.signature as Uint8Array)).toBe(toHex(sig));
    expect(toHex(m.mac as Uint8Array)).toBe(toHex(hex(mac)));
    expect(m.apduRange).toEqual({ start: 14, end: 14 + 120 });
    expect(m.signedRange).toEqual({ start: 15, end: 14 + 55 });
    expect(toHex(apduBytes(m))).toBe(toHex(hex(signed)));
    expect(toHex(buildMessage(m))).toBe(toHex(frame));
    expect(toHex(buildGeneralCiphering(hex(signed), hex(mac)))).toBe(toHex(frame));
  });

  it('parses a hand-written alert with date-time and every supplementary field', () => {
    const bytes = hex(
      [
        'DF 09 03', // alert
        'FF FF FF FF FF FF FF FF', // counter 2^64 − 1
        '08 00 DB 12 34 56 78 90 A0', // originator (the device)
        '08 90 B3 D5 1F 30 01 00 00', // recipient
        `0C ${toHex(DATE_TIME)}`, // date-time present (offset 29: 0C, then 12 bytes)
        '1A 8F 0F', // other-information 26: code 8F0F
        '00 DB 12 34 56 78 90 A4', // supplementary remote party id
        '80 00 00 00 00 00 00 00', // supplementary remote party counter 2^63
        '00 00 00 00 00 00 00 01', // supplementary originator counter 1
        '01 0F', // content: 1 byte
      ].join(' '),
    );
    const m = parseMessage(bytes);
    expect(m.cra).toBe('alert');
    expect(m.originatorCounter).toBe(2n ** 64n - 1n);
    expect(m.originator).toBe(RECIPIENT);
    expect(toHex(m.dateTime as Uint8Array)).toBe(toHex(DATE_TIME));
    expect(m.messageCode).toBe(0x8f0f);
    expect(m.supplementaryRemotePartyId).toBe(SUPP_ID);
    expect(m.supplementaryRemotePartyCounter).toBe(2n ** 63n);
    expect(m.supplementaryOriginatorCounter).toBe(1n);
    expect(m.keyAgreementCertificate).toBeUndefined();
    expect(toHex(m.payload)).toBe('0F');
    expect(m.signatureField).toBe('absent');
    expect(m.signedRange).toEqual({ start: 1, end: bytes.length });
    expect(toHex(buildMessage(m))).toBe(toHex(bytes));
  });

  it('parses a key-agreement certificate carried from other-information offset 18', () => {
    const oi = `0105 ${SUPP_ID} 0000000000000002 ${toHex(CERT_DER)}`;
    const oiLen = 18 + CERT_DER.length; // above 255 for a real certificate: 82 form
    expect(oiLen).toBeGreaterThan(255);
    const bytes = hex(`DF 09 01 0000000000000005 08 ${ORIGINATOR} 08 ${RECIPIENT} 00 82 ${oiLen.toString(16).padStart(4, '0')} ${oi} 01 30 00`);
    const m = parseMessage(bytes);
    expect(m.messageCode).toBe(0x0105);
    expect(m.supplementaryRemotePartyId).toBe(SUPP_ID);
    expect(m.supplementaryRemotePartyCounter).toBe(2n);
    expect(m.supplementaryOriginatorCounter).toBeUndefined();
    expect(toHex(m.keyAgreementCertificate as Uint8Array)).toBe(toHex(CERT_DER));
    expect(toHex(m.payload)).toBe('30');
    expect(m.signatureField).toBe('empty');
    expect(toHex(buildMessage(m))).toBe(toHex(bytes));
  });
});

// ---------------------------------------------------------------------------------------------

describe('docs/domain.md §3: every field combination builds to the documented bytes, parses back and round-trips', () => {
  const CRAS = [1, 2, 3] as const;
  const COUNTERS = [0n, 1000n, 2n ** 63n, 2n ** 64n - 1n];
  const CONTENT_LENGTHS = [0, 1, 127, 128, 255, 256];
  const SIGS: readonly Sig[] = ['absent', 'empty', fill(64, 99)];
  const OI: ReadonlyArray<[string, number, Partial<Model>]> = [
    ['code only', 2, {}],
    ['+ supplementary remote party id', 10, { suppId: SUPP_ID }],
    ['+ supplementary remote party counter', 18, { suppId: SUPP_ID, suppCounter: 2n ** 64n - 2n }],
    ['+ supplementary originator counter', 26, { suppId: SUPP_ID, suppCounter: 7n, suppOrig: 2n ** 63n + 1n }],
    ['+ key-agreement certificate (real DER)', 18 + CERT_DER.length, { suppId: SUPP_ID, suppCounter: 0n, cert: CERT_DER }],
    ['+ smallest key-agreement certificate (27)', 27, { suppId: SUPP_ID, suppCounter: 1n, cert: fill(9) }],
  ];

  describe.each(OI)('other-information %s (length %i)', (_name, oiLen, oi) => {
    it.each(CONTENT_LENGTHS)('content length %i', (contentLength) => {
      let n = 0;
      for (const cra of CRAS)
        for (const counter of COUNTERS)
          for (const dateTime of [undefined, DATE_TIME])
            for (const sig of SIGS)
              for (const mac of [undefined, fill(12, 200)]) {
                const m: Model = {
                  cra,
                  counter,
                  originator: ORIGINATOR,
                  recipient: RECIPIENT,
                  ...(dateTime ? { dateTime } : {}),
                  code: [0x0050, 0x0000, 0xffff][n % 3] as number,
                  ...oi,
                  payload: fill(contentLength, n),
                  sig,
                  ...(mac ? { mac } : {}),
                };
                const expected = assemble(m);
                const built = buildMessage(toFields(m));
                expect(toHex(built)).toBe(toHex(expected));
                const msg = checkAgainstModel(built, m);
                // the other-information length byte(s) sit right after the date-time field
                const oiAt = msg.apduRange.start + 29 + (dateTime ? 12 : 0) + 1;
                expect(toHex(built.subarray(oiAt, oiAt + lenHex(oiLen).length / 2))).toBe(lenHex(oiLen));
                n++;
              }
      expect(n).toBe(3 * 4 * 2 * 3 * 2);
    });
  });

  it('writes content lengths 127, 128, 255 and 256 as 7F, 81 80, 81 FF and 82 01 00', () => {
    const at = 33; // content length offset with no date-time and a code-only other-information
    for (const [n, enc] of [
      [0, '00'],
      [1, '01'],
      [127, '7F'],
      [128, '8180'],
      [255, '81FF'],
      [256, '820100'],
      [65_500, '82FFDC'],
    ] as const) {
      const b = buildGeneralSigning({ cra: 'command', originatorCounter: 1n, originator: ORIGINATOR, recipient: RECIPIENT, messageCode: 1, payload: new Uint8Array(n) });
      expect(toHex(b.subarray(at, at + enc.length / 2))).toBe(enc);
      expect(parseMessage(b).payload.length).toBe(n);
    }
  });

  it('accepts a message of exactly 64 KiB and refuses one byte more (offset 0)', () => {
    // 33 bytes of header, 82 FF DC, then content: 36 + 65500 = 65536
    const fields = { cra: 'command', originatorCounter: 1n, originator: ORIGINATOR, recipient: RECIPIENT, messageCode: 1 } as const;
    const max = buildMessage({ ...fields, payload: new Uint8Array(65_500) });
    expect(max.length).toBe(MAX_MESSAGE_BYTES);
    expect(toHex(buildMessage(parseMessage(max)))).toBe(toHex(max));
    // one byte more: the builder refuses to make it, and the parser refuses it made by hand
    expect(() => buildMessage({ ...fields, payload: new Uint8Array(65_501) })).toThrow(expect.objectContaining({ code: 'ERR_GBCS_INVALID_FIELD' }));
    expectMalformedAt(Uint8Array.from([...max, 0]), 0);
    // the same boundary for a DD frame: 7 + 82 xxxx + 5 + APDU (36 + content) + 12 = 65536
    const apdu = buildGeneralSigning({ ...fields, payload: new Uint8Array(65_473) });
    const frame = buildGeneralCiphering(apdu, new Uint8Array(12));
    expect(frame.length).toBe(MAX_MESSAGE_BYTES);
    expect(parseMessage(frame).payload.length).toBe(65_473);
    expect(() => buildGeneralCiphering(buildGeneralSigning({ ...fields, payload: new Uint8Array(65_474) }), new Uint8Array(12))).toThrow(
      expect.objectContaining({ code: 'ERR_GBCS_INVALID_FIELD' }),
    );
  });

  it('content of 70000 bytes is over the 64 KiB message limit: the builder refuses it', () => {
    expect(() => buildMessage({ cra: 'command', originatorCounter: 1n, originator: ORIGINATOR, recipient: RECIPIENT, messageCode: 1, payload: new Uint8Array(70_000) })).toThrow(
      expect.objectContaining({ code: 'ERR_GBCS_INVALID_FIELD' }),
    );
  });

  it('keeps its own copy of the input', () => {
    const input = assemble({ cra: 1, counter: 5n, originator: ORIGINATOR, recipient: RECIPIENT, code: 0x50, payload: fill(4), sig: 'empty' });
    const m = parseMessage(input);
    input.fill(0);
    expect(m.bytes[0]).toBe(0xdf);
    expect(m.payload.length).toBe(4);
    expect(m.payload[0]).toBe(fill(4)[0]);
    expect(Object.isFrozen(m)).toBe(true);
  });

  it('parses a Buffer the same as a Uint8Array', () => {
    const bytes = assemble({ cra: 1, counter: 5n, originator: ORIGINATOR, recipient: RECIPIENT, code: 0x50, payload: fill(4), sig: 'absent' });
    expect(toHex(buildMessage(parseMessage(Buffer.from(bytes))))).toBe(toHex(bytes));
  });
});

// ---------------------------------------------------------------------------------------------

describe('docs/domain.md §3: each structural rule broken once is ERR_GBCS_MALFORMED at the offending byte', () => {
  // The hand-written pre-command again, as named parts that one case at a time replaces.
  const PARTS = {
    tag: 'DF', //  0
    tid: '09', //  1
    cra: '01', //  2
    counter: '00000000000003E8', // 3
    oLen: '08', // 11
    orig: ORIGINATOR, // 12
    rLen: '08', // 20
    recip: RECIPIENT, // 21
    dt: '00', // 29
    oiLen: '02', // 30
    oi: '0050', // 31
    cLen: '15', // 33
    content: DISCONNECT, // 34
    sig: '00', // 55
    trailing: '',
  };
  type Parts = typeof PARTS;
  const pre = (over: Partial<Parts> = {}): Uint8Array => hex(Object.values({ ...PARTS, ...over }).join(''));
  const PRE = pre();
  // DD 00×6 ‖ 49 (5 + 56 + 12 = 73) ‖ 11 00 00 00 00 ‖ APDU (offset 13) ‖ MAC (12)
  const MAC = 'C0C1C2C3C4C5C6C7C8C9CACB';
  const dd = (apdu: Uint8Array = PRE, over: { prefix?: string; len?: string; header?: string; mac?: string; trailing?: string } = {}): Uint8Array =>
    hex(
      `${over.prefix ?? 'DD000000000000'}${over.len ?? lenHex(5 + apdu.length + 12)}${over.header ?? '1100000000'}${toHex(apdu)}${over.mac ?? MAC}${over.trailing ?? ''}`,
    );

  it('the unbroken parts parse (signed and ciphered)', () => {
    expect(parseMessage(PRE).signatureField).toBe('empty');
    expect(parseMessage(pre({ sig: '' })).signatureField).toBe('absent');
    expect(parseMessage(pre({ sig: `40${'11'.repeat(64)}` })).signatureField).toBe('present');
    expect(parseMessage(dd()).frame).toBe('ciphered');
    expect(parseMessage(dd(pre({ sig: '' }))).signatureField).toBe('absent');
  });

  const cases: Array<[string, () => Uint8Array, number]> = [
    // first byte and empty input
    ['empty input', () => new Uint8Array(0), 0],
    ['first byte 00', () => pre({ tag: '00' }), 0],
    ['first byte DE', () => pre({ tag: 'DE' }), 0],
    ['first byte DB', () => pre({ tag: 'DB' }), 0],
    ['first byte FF', () => pre({ tag: 'FF' }), 0],
    ['first byte 30 (bare DER)', () => hex('3003020101'), 0],
    ['DF alone', () => hex('DF'), 1],
    ['DD alone', () => hex('DD'), 1],
    // transaction-id length ≠ 9
    ...['00', '08', '0A', '19', '89', 'FF'].map((v): [string, () => Uint8Array, number] => [`transaction-id length ${v}`, () => pre({ tid: v }), 1]),
    // CRA flag other than 01/02/03
    ...['00', '04', '05', '81', 'FF'].map((v): [string, () => Uint8Array, number] => [`CRA ${v}`, () => pre({ cra: v }), 2]),
    // system title lengths ≠ 8
    ...['00', '07', '09', '10', '88'].map((v): [string, () => Uint8Array, number] => [`originator title length ${v}`, () => pre({ oLen: v }), 11]),
    ...['00', '07', '09', '10', '88'].map((v): [string, () => Uint8Array, number] => [`recipient title length ${v}`, () => pre({ rLen: v }), 20]),
    // date-time length other than 00 / 0C
    ...['01', '0B', '0D', '18', '80', '8C', 'FF'].map((v): [string, () => Uint8Array, number] => [
      `date-time length ${v}`,
      () => pre({ dt: `${v}${toHex(DATE_TIME)}` }),
      29,
    ]),
    // other-information lengths 0, 1, 3, 9, 11, 19, 25 (with that many bytes really there)
    ...[0, 1, 3, 9, 11, 17, 19, 25].map((n): [string, () => Uint8Array, number] => [
      `other-information length ${n}`,
      () => pre({ oiLen: h2(n), oi: toHex(fill(n, 0x50)) }),
      30,
    ]),
    // non-minimal and unknown length forms: other-information
    ['other-information length 81 02 (non-minimal)', () => pre({ oiLen: '8102' }), 30],
    ['other-information length 81 7F (non-minimal)', () => pre({ oiLen: '817F', oi: toHex(fill(0x7f)) }), 30],
    ['other-information length 82 00 02 (non-minimal)', () => pre({ oiLen: '820002' }), 30],
    ['other-information length 82 00 FF (non-minimal)', () => pre({ oiLen: '8200FF', oi: toHex(fill(0xff)) }), 30],
    ['other-information length 83 00 00 02 (non-minimal)', () => pre({ oiLen: '83000002' }), 30],
    ['other-information length 83 00 FF FF (non-minimal)', () => pre({ oiLen: '8300FFFF' }), 30],
    ['other-information length form 80', () => pre({ oiLen: '80' }), 30],
    ['other-information length form 84', () => pre({ oiLen: '8400000002' }), 30],
    ['other-information length form FF', () => pre({ oiLen: 'FF' }), 30],
    ['other-information longer than the input', () => pre({ oiLen: '7F' }), 31],
    ['other-information 82 FF FF longer than the input', () => pre({ oiLen: '82FFFF' }), 33],
    ['other-information length cut inside 82 xx', () => hex(toHex(PRE).slice(0, 60) + '8201'), 32],
    // content length: non-minimal, unknown forms, longer than the input
    ['content length 81 05 (non-minimal)', () => pre({ cLen: '8105', content: '0102030405' }), 33],
    ['content length 81 15 (non-minimal)', () => pre({ cLen: '8115' }), 33],
    ['content length 82 00 15 (non-minimal)', () => pre({ cLen: '820015' }), 33],
    ['content length 82 00 80 (non-minimal for 128)', () => pre({ cLen: '820080', content: toHex(fill(128)) }), 33],
    ['content length 83 00 01 00 (non-minimal for 256)', () => pre({ cLen: '83000100', content: toHex(fill(256)) }), 33],
    ['content length form 80', () => pre({ cLen: '80' }), 33],
    ['content length form 84', () => pre({ cLen: '8400000015' }), 33],
    ['content length form 85', () => pre({ cLen: '85' }), 33],
    ['content length form FF', () => pre({ cLen: 'FF' }), 33],
    ['content longer than the input by 1', () => pre({ cLen: '17' }), 34], // 23 > 21 + the 00
    ['content length 81 80 longer than the input', () => pre({ cLen: '8180' }), 35],
    ['content length 82 FF FF longer than the input', () => pre({ cLen: '82FFFF' }), 36],
    ['content length 83 FF FF FF longer than the input', () => pre({ cLen: '83FFFFFF' }), 37],
    // signature length other than 00 / 40
    ...['01', '20', '3F', '41', '48', '80', '81', 'C0', 'FF'].map((v): [string, () => Uint8Array, number] => [
      `signature length ${v}`,
      () => pre({ sig: `${v}${'11'.repeat(64)}` }),
      55,
    ]),
    ['signature 40 with 63 bytes', () => pre({ sig: `40${'11'.repeat(63)}` }), 56],
    // trailing bytes after a complete signed APDU
    ['a byte after an empty signature', () => pre({ trailing: '00' }), 56],
    ['two bytes after an empty signature', () => pre({ trailing: 'DF09' }), 56],
    ['a byte after a 64-byte signature', () => pre({ sig: `40${'11'.repeat(64)}`, trailing: '00' }), 120],
    ['a whole second APDU after the first', () => pre({ trailing: toHex(PRE) }), 56],
    ['00 00 after the content (signature absent, then a stray byte)', () => pre({ sig: '0000' }), 56],
    // general-ciphering header (DD 00 00 00 00 00 00)
    ...[1, 2, 3, 4, 5, 6].flatMap((i): Array<[string, () => Uint8Array, number]> =>
      ['01', '80', 'FF'].map((v) => [`DD header byte ${i} = ${v}`, () => dd(PRE, { prefix: `DD${'00'.repeat(i - 1)}${v}${'00'.repeat(6 - i)}` }), i]),
    ),
    ['DF transaction-id read as a DD header', () => pre({ tag: 'DD' }), 1],
    // DD length mismatch and forms
    ['DD length one more than follows', () => dd(PRE, { len: h2(5 + 56 + 12 + 1) }), 7],
    ['DD length 82 FF FF', () => dd(PRE, { len: '82FFFF' }), 7],
    ['DD length one less than follows (a trailing byte)', () => dd(PRE, { len: h2(5 + 56 + 12 - 1) }), 8 + 72],
    ['a byte after a complete DD frame', () => dd(PRE, { trailing: '00' }), 81],
    ['a second DD frame after a complete DD frame', () => dd(PRE, { trailing: toHex(dd()) }), 81],
    ['DD length 81 49 (non-minimal)', () => dd(PRE, { len: '8149' }), 7],
    ['DD length form 80', () => dd(PRE, { len: '80' }), 7],
    ['DD length form 84', () => dd(PRE, { len: '8400000049' }), 7],
    ['DD cut after the header', () => hex('DD000000000000'), 7],
    ['DD length 11: too short for header, APDU and MAC', () => hex(`DD000000000000 11 1100000000 DF ${'00'.repeat(11)}`), 7],
    ['DD length 00', () => hex('DD000000000000 00'), 7],
    ['DD frame missing its last MAC byte', () => dd(PRE).subarray(0, 80), 7],
    // security header not 11 00 00 00 00
    ...[0, 1, 2, 3, 4].flatMap((i): Array<[string, () => Uint8Array, number]> =>
      ['01', '10', 'FF'].map((v) => {
        const header = `${'1100000000'.slice(0, 2 * i)}${v}${'1100000000'.slice(2 * i + 2)}`;
        return [`security header byte ${i} = ${v}`, () => dd(PRE, { header }), 8 + i];
      }),
    ),
    ['security header byte 1 after an 82 length', () => dd(pre({ cLen: '820100', content: toHex(fill(256)) }), { header: '1101000000' }), 11],
    // the APDU inside the DD frame: the offsets are absolute in the frame
    ['inner tag DD', () => dd(pre({ tag: 'DD' })), 13],
    ['inner tag 00', () => dd(pre({ tag: '00' })), 13],
    ['inner transaction-id length 08', () => dd(pre({ tid: '08' })), 14],
    ['inner CRA 04', () => dd(pre({ cra: '04' })), 15],
    ['inner CRA 00', () => dd(pre({ cra: '00' })), 15],
    ['inner recipient title length 07', () => dd(pre({ rLen: '07' })), 13 + 20],
    ['inner date-time length 0B', () => dd(pre({ dt: `0B${toHex(DATE_TIME)}` })), 13 + 29],
    ['inner other-information length 09', () => dd(pre({ oiLen: '09', oi: toHex(fill(9)) })), 13 + 30],
    ['inner content length 81 05', () => dd(pre({ cLen: '8105', content: '0102030405' })), 13 + 33],
    ['inner content running into the MAC', () => dd(pre({ cLen: h2(21 + 12) })), 13 + 34],
    ['inner signature length 41', () => dd(pre({ sig: '41' })), 13 + 55],
    // 5 + 119 + 12 = 136 needs 81 88, so this APDU starts at 14
    ['inner signature 40 with 63 bytes (the MAC is not signature)', () => dd(pre({ sig: `40${'11'.repeat(63)}` })), 14 + 56],
    ['inner byte after the empty signature', () => dd(pre({ trailing: 'AA' })), 13 + 56],
    ['over 64 KiB', () => hex(toHex(PRE) + '00'.repeat(MAX_MESSAGE_BYTES)), 0],
  ];

  it.each(cases)('%s', (_name, make, offset) => {
    expectMalformedAt(make(), offset);
  });

  it('negative cases outnumber positive ones', () => {
    expect(cases.length).toBeGreaterThan(100);
  });

  it.each([
    ['a string', 'DF09'],
    ['null', null],
    ['undefined', undefined],
    ['an array of numbers', [0xdf, 0x09]],
    ['an ArrayBuffer', new ArrayBuffer(8)],
  ])('refuses %s as input with ERR_GBCS_MALFORMED at offset 0', (_name, v) => {
    const e = errorOf(() => parseMessage(v as unknown as Uint8Array));
    expect(e.code).toBe('ERR_GBCS_MALFORMED');
    expect((e.context as { offset?: number }).offset).toBe(0);
  });

  it('a truncation error carries its cause, a SmkiError, and no other exception type', () => {
    const e = errorOf(() => parseMessage(PRE.subarray(0, 40)));
    expect(e.code).toBe('ERR_GBCS_MALFORMED');
    expect(e.cause).toBeInstanceOf(SmkiError);
    expect((e.cause as SmkiError).code).toBe('ERR_BYTES_TRUNCATED');
  });
});

// ---------------------------------------------------------------------------------------------

describe('docs/domain.md §3: the builder refuses fields it cannot encode (ERR_GBCS_INVALID_FIELD)', () => {
  const ok: GbcsFields = { cra: 'command', originatorCounter: 1n, originator: ORIGINATOR, recipient: RECIPIENT, messageCode: 0x50, payload: fill(3) };

  it('builds the baseline', () => {
    expect(parseMessage(buildMessage(ok)).signatureField).toBe('absent');
  });

  it.each<[string, Record<string, unknown>]>([
    ['cra "x"', { cra: 'x' }],
    ['counter −1', { originatorCounter: -1n }],
    ['counter 2^64', { originatorCounter: 2n ** 64n }],
    ['counter as a number', { originatorCounter: 1 }],
    ['message code 0x10000', { messageCode: 0x10000 }],
    ['message code −1', { messageCode: -1 }],
    ['message code 1.5', { messageCode: 1.5 }],
    ['message code NaN', { messageCode: Number.NaN }],
    ['originator not an EUI-64', { originator: '90B3D51F300100' }],
    ['recipient not an EUI-64', { recipient: 'zz' }],
    ['date-time of 11 bytes', { dateTime: new Uint8Array(11) }],
    ['date-time of 13 bytes', { dateTime: new Uint8Array(13) }],
    ['payload not bytes', { payload: 'D9' }],
    ['signature of 63 bytes', { signature: new Uint8Array(63) }],
    ['signature of 65 bytes', { signature: new Uint8Array(65) }],
    ['present signature field without a signature', { signatureField: 'present' }],
    ['empty signature field with a signature', { signatureField: 'empty', signature: new Uint8Array(64) }],
    ['absent signature field with a signature', { signatureField: 'absent', signature: new Uint8Array(64) }],
    ['unknown signature field', { signatureField: 'none' }],
    ['supplementary counter without the id', { supplementaryRemotePartyCounter: 1n }],
    ['supplementary originator counter without the counter', { supplementaryRemotePartyId: SUPP_ID, supplementaryOriginatorCounter: 1n }],
    ['certificate without the supplementary counter', { supplementaryRemotePartyId: SUPP_ID, keyAgreementCertificate: CERT_DER }],
    [
      'certificate and supplementary originator counter',
      { supplementaryRemotePartyId: SUPP_ID, supplementaryRemotePartyCounter: 1n, supplementaryOriginatorCounter: 1n, keyAgreementCertificate: CERT_DER },
    ],
    ['certificate of 8 bytes (would read as an originator counter)', { supplementaryRemotePartyId: SUPP_ID, supplementaryRemotePartyCounter: 1n, keyAgreementCertificate: new Uint8Array(8) }],
    ['supplementary id not an EUI-64', { supplementaryRemotePartyId: 'x' }],
    ['supplementary counter 2^64', { supplementaryRemotePartyId: SUPP_ID, supplementaryRemotePartyCounter: 2n ** 64n }],
    ['MAC of 11 bytes', { mac: new Uint8Array(11) }],
    ['MAC of 13 bytes', { mac: new Uint8Array(13) }],
    ['signed frame with a MAC', { frame: 'signed', mac: new Uint8Array(12) }],
    ['ciphered frame without a MAC', { frame: 'ciphered' }],
  ])('%s', (_name, over) => {
    expectInvalidField(() => buildMessage({ ...ok, ...over } as unknown as GbcsFields));
  });

  it('buildGeneralCiphering refuses a non-DF APDU and a MAC that is not 12 bytes', () => {
    const apdu = buildGeneralSigning(ok);
    expectInvalidField(() => buildGeneralCiphering(hex('DD00'), new Uint8Array(12)));
    expectInvalidField(() => buildGeneralCiphering(new Uint8Array(0), new Uint8Array(12)));
    expectInvalidField(() => buildGeneralCiphering(apdu, new Uint8Array(0)));
    expect(parseMessage(buildGeneralCiphering(apdu, new Uint8Array(12))).frame).toBe('ciphered');
  });

  it('builds from fields, never from the kept bytes of a parsed message', () => {
    const m = parseMessage(buildMessage({ ...ok, signatureField: 'empty' }));
    const changed = buildMessage({ ...m, originatorCounter: 2n, signatureField: 'absent' });
    expect(toHex(changed)).toBe(
      toHex(assemble({ cra: 1, counter: 2n, originator: ORIGINATOR, recipient: RECIPIENT, code: 0x50, payload: fill(3), sig: 'absent' })),
    );
  });
});
