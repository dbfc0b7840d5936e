// docs/domain.md §3 (GBCS message layout: the general-signing APDU and the general-ciphering
// frame). Cases that pin down the codec one rule at a time where mutation testing (StrykerJS)
// showed that no other test told the rules apart: length boundaries, which error is reported
// directly and which wraps a cause, the exact set of fields a parse returns, and the builder's
// refusals with their full context.
import { describe, expect, it } from 'vitest';
import type { SmkiError } from '@smki/core';
import { buildGeneralCiphering, buildGeneralSigning, buildMessage, MAX_MESSAGE_BYTES, parseMessage, type GbcsFields } from '../src/codec.js';

const ORIGINATOR = '90B3D51F30010000';
const RECIPIENT = '00DB1234567890A0';
const SUPP_ID = '00DB1234567890A4';
const BASE: GbcsFields = { cra: 'command', originatorCounter: 1000n, originator: ORIGINATOR, recipient: RECIPIENT, messageCode: 0x0050, payload: Uint8Array.of(0xd9, 0x20) };
const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s/g, ''), 'hex'));

function thrown(f: () => unknown): SmkiError {
  try {
    f();
  } catch (e) {
    expect(e, String(e)).toHaveProperty('code');
    return e as SmkiError;
  }
  throw new Error('expected a throw');
}
function refuses(f: () => unknown, code: string, context: object): SmkiError {
  const e = thrown(f);
  expect({ code: e.code, context: e.context }).toEqual({ code, context });
  return e;
}

describe('parse errors: a broken rule is reported directly; a read past the end wraps its cause', () => {
  it('a structural error (CRA 04) has no cause; a truncation has ERR_BYTES_TRUNCATED as cause', () => {
    const bad = buildMessage(BASE);
    bad[2] = 0x04;
    const direct = refuses(() => parseMessage(bad), 'ERR_GBCS_MALFORMED', { offset: 2 });
    expect(direct.cause).toBeUndefined();
    const cut = refuses(() => parseMessage(buildMessage(BASE).subarray(0, 10)), 'ERR_GBCS_MALFORMED', { offset: 3 });
    expect((cut.cause as SmkiError).code).toBe('ERR_BYTES_TRUNCATED');
  });

  it('a DD frame whose content is 18 bytes (header, DF, MAC) gets as far as the APDU; 17 is too short', () => {
    // DD 00×6 ‖ 12 ‖ 11 00 00 00 00 ‖ DF ‖ MAC: the APDU runs out after its tag, at offset 14
    refuses(() => parseMessage(hex(`DD000000000000 12 1100000000 DF ${'AA'.repeat(12)}`)), 'ERR_GBCS_MALFORMED', { offset: 14 });
    refuses(() => parseMessage(hex(`DD000000000000 11 1100000000 ${'AA'.repeat(12)}`)), 'ERR_GBCS_MALFORMED', { offset: 7 });
  });
});

describe('other-information: 2, 10, 18, 26, or a certificate from 27 bytes', () => {
  it('26 bytes carry a supplementary originator counter and no certificate', () => {
    const m = parseMessage(buildMessage({ ...BASE, supplementaryRemotePartyId: SUPP_ID, supplementaryRemotePartyCounter: 5n, supplementaryOriginatorCounter: 6n }));
    expect(m.supplementaryOriginatorCounter).toBe(6n);
    expect(m).not.toHaveProperty('keyAgreementCertificate');
  });

  it('27 bytes (the shortest certificate the builder writes: 9 bytes) carry a certificate and no originator counter', () => {
    const cert = Uint8Array.of(0x30, 0x07, 1, 2, 3, 4, 5, 6, 7);
    const bytes = buildMessage({ ...BASE, supplementaryRemotePartyId: SUPP_ID, supplementaryRemotePartyCounter: 5n, keyAgreementCertificate: cert });
    expect(bytes[30]).toBe(27); // the other-information length
    const m = parseMessage(bytes);
    expect([...(m.keyAgreementCertificate as Uint8Array)]).toEqual([...cert]);
    expect(m.supplementaryRemotePartyCounter).toBe(5n);
    expect(m).not.toHaveProperty('supplementaryOriginatorCounter');
  });
});

describe('a parse returns the fields the bytes carry, and no others', () => {
  const ALWAYS = ['apduRange', 'bytes', 'cra', 'frame', 'messageCode', 'originator', 'originatorCounter', 'payload', 'recipient', 'signature', 'signatureField', 'signedRange'];
  it.each<[string, Partial<GbcsFields> & { mac?: Uint8Array }, string[]]>([
    ['a bare APDU', {}, []],
    ['with a date-time', { dateTime: new Uint8Array(12) }, ['dateTime']],
    ['with a supplementary id', { supplementaryRemotePartyId: SUPP_ID }, ['supplementaryRemotePartyId']],
    ['with an id and a counter', { supplementaryRemotePartyId: SUPP_ID, supplementaryRemotePartyCounter: 1n }, ['supplementaryRemotePartyCounter', 'supplementaryRemotePartyId']],
    [
      'with all three supplementary fields, in a DD frame',
      { supplementaryRemotePartyId: SUPP_ID, supplementaryRemotePartyCounter: 1n, supplementaryOriginatorCounter: 2n, mac: new Uint8Array(12) },
      ['mac', 'supplementaryOriginatorCounter', 'supplementaryRemotePartyCounter', 'supplementaryRemotePartyId'],
    ],
  ])('%s', (_name, extra, keys) => {
    const m = parseMessage(buildMessage({ ...BASE, ...extra }));
    expect(Object.keys(m).sort()).toEqual([...ALWAYS, ...keys].sort());
  });
});

describe('the builder refuses what it cannot encode, with the offending value in the context', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['cra "x"', { cra: 'x' }, 'x'],
    ['cra as an array holding a CRA name (only a real string names one)', { cra: ['command'] }, 'command'],
    ['message code 0x10000', { messageCode: 0x10000 }, '65536'],
    ['originator counter −1', { originatorCounter: -1n }, '-1'],
    ['supplementary counter 2^64', { supplementaryRemotePartyId: SUPP_ID, supplementaryRemotePartyCounter: 1n << 64n }, '18446744073709551616'],
    ['originator that is not an EUI-64 (cut to 32 characters)', { originator: 'x'.repeat(40) }, 'x'.repeat(32)],
    ['signature field "none"', { signatureField: 'none' }, 'none'],
    ['frame "plain"', { frame: 'plain', mac: new Uint8Array(12) }, 'plain'],
    ['a long frame name (cut to 32 characters)', { frame: 'f'.repeat(40), mac: new Uint8Array(12) }, 'f'.repeat(32)],
  ])('%s → ERR_GBCS_INVALID_FIELD', (_name, over, detail) => {
    refuses(() => buildMessage({ ...BASE, ...over } as unknown as GbcsFields), 'ERR_GBCS_INVALID_FIELD', { detail });
  });

  it('a ciphered frame named explicitly is built like one chosen by its MAC', () => {
    const mac = new Uint8Array(12).fill(9);
    expect(Buffer.from(buildMessage({ ...BASE, frame: 'ciphered', mac })).equals(Buffer.from(buildMessage({ ...BASE, mac })))).toBe(true);
    expect(parseMessage(buildMessage({ ...BASE, mac })).frame).toBe('ciphered');
  });

  it('sizes: the whole message over 64 KiB reports its length; a field of 64 KiB reports the field', () => {
    // 33 header bytes, 82 xx xx, the content: 36 + n bytes
    refuses(() => buildMessage({ ...BASE, payload: new Uint8Array(65_501) }), 'ERR_GBCS_INVALID_FIELD', { detail: '65537' });
    refuses(() => buildMessage({ ...BASE, payload: new Uint8Array(65_535) }), 'ERR_GBCS_INVALID_FIELD', { detail: '65571' });
    refuses(() => buildMessage({ ...BASE, payload: new Uint8Array(65_536) }), 'ERR_GBCS_INVALID_FIELD', { detail: '65536' });
    refuses(() => buildMessage({ ...BASE, payload: new Uint8Array(70_000) }), 'ERR_GBCS_INVALID_FIELD', { detail: '70000' });
    // a 64 KiB APDU: the frame's content (5 + 65536 + 12) cannot be given a length
    const apdu = buildGeneralSigning({ ...BASE, payload: new Uint8Array(65_500) });
    expect(apdu.length).toBe(MAX_MESSAGE_BYTES);
    refuses(() => buildGeneralCiphering(apdu, new Uint8Array(12)), 'ERR_GBCS_INVALID_FIELD', { detail: '65553' });
  });
});
