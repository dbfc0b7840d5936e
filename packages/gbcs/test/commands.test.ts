// docs/domain.md §5 (critical commands: codes and payloads of ECS42/43/44, GCS32/39, CS06), docs/domain.md §3 (the
// general-signing layout, pre-command endings, DLMS invoke-id = 0x20 ‖ low 24 bits of the counter),
// docs/domain.md §4 (signing a pre-command). Expected bytes are written here from docs/domain.md, not from
// the code under test.
import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { fromHex, SmkiError, toHex } from '@smki/core';
import { describe, expect, it } from 'vitest';
import { classify, lookupMessageCode } from '../src/catalogue.js';
import { buildGeneralSigning, parseMessage } from '../src/codec.js';
import {
  ACTIVATE_FIRMWARE_MESSAGE_CODE,
  SUPPLY_COMMANDS,
  buildActivateFirmware,
  buildArmSupply,
  buildDisableSupply,
  buildEnableSupply,
  buildSupplyCommand,
  decodeActivateFirmware,
  decodeDlmsInvokeCounter,
  decodeSupplyPayload,
  encodeActivateFirmwarePayload,
  encodeSupplyPayload,
  type CommandOptions,
  type SupplyUseCase,
} from '../src/commands.js';
import { signPreCommand, verifySignature } from '../src/signature.js';

const ORIGINATOR = '90B3D51F30010000';
const RECIPIENT = '00DB1234567890A0';
const BASE: CommandOptions = { originator: ORIGINATOR, recipient: RECIPIENT, counter: 1000n };
const U64_MAX = (1n << 64n) - 1n;
const HASH = fromHex('00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF');

/** docs/domain.md §5: D9 ‖ 20 ‖ low 24 bits of the counter ‖ 00 ‖ 01 03 0009 00000A006AFF 01 ‖ 01 12 ‖ script id. */
const dlms = (low24hex: string, script: string) => `D920${low24hex}00` + '0103' + '0009' + '00000A006AFF' + '01' + '0112' + script;
/** docs/domain.md §5: the GCS32 reference payload, and GCS39 = the same with the second-last byte 01. */
const GCS32_HEX = '01 09 01 01 07 02 00 15 01 00 0B 00 00 00 00 80 4A 37 1C 00 00 00 00 00 00 00 00 00 01'.replace(/ /g, '');
const GCS39_HEX = '01 09 01 01 07 02 00 15 01 00 0B 00 00 00 00 80 4A 37 1C 00 00 00 00 00 00 00 00 01 01'.replace(/ /g, '');

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return e instanceof SmkiError ? e.code : `not SmkiError: ${String(e)}`;
  }
  return undefined;
}

function errorOf(f: () => unknown): SmkiError {
  try {
    f();
  } catch (e) {
    if (e instanceof SmkiError) return e;
    throw e;
  }
  throw new Error('did not throw');
}

const BUILDS: readonly { useCase: SupplyUseCase; code: number; build: (o: CommandOptions) => Uint8Array; payload: (low24: string) => string }[] = [
  { useCase: 'ECS42', code: 0x004f, build: (o) => buildEnableSupply(o), payload: (c) => dlms(c, '0033') },
  { useCase: 'ECS43', code: 0x0050, build: (o) => buildDisableSupply({ ...o, fuel: 'electricity' }), payload: (c) => dlms(c, '0034') },
  { useCase: 'ECS44', code: 0x0051, build: (o) => buildArmSupply({ ...o, fuel: 'electricity' }), payload: (c) => dlms(c, '0036') },
  { useCase: 'GCS32', code: 0x0081, build: (o) => buildDisableSupply({ ...o, fuel: 'gas' }), payload: () => GCS32_HEX },
  { useCase: 'GCS39', code: 0x0085, build: (o) => buildArmSupply({ ...o, fuel: 'gas' }), payload: () => GCS39_HEX },
];

describe('SUPPLY_COMMANDS (docs/domain.md §5 table)', () => {
  it('message codes, fuels, actions and DUIS services', () => {
    // docs/domain.md §5: 004F ECS42 7.1; 0050 ECS43 7.2; 0081 GCS32 7.2; 0051/0085 ECS44/GCS39 7.3
    expect(SUPPLY_COMMANDS.ECS42).toMatchObject({ messageCode: 0x004f, fuel: 'electricity', action: 'enable', duisService: '7.1', scriptId: 0x0033 });
    expect(SUPPLY_COMMANDS.ECS43).toMatchObject({ messageCode: 0x0050, fuel: 'electricity', action: 'disable', duisService: '7.2', scriptId: 0x0034 });
    expect(SUPPLY_COMMANDS.ECS44).toMatchObject({ messageCode: 0x0051, fuel: 'electricity', action: 'arm', duisService: '7.3', scriptId: 0x0036 });
    expect(SUPPLY_COMMANDS.GCS32).toMatchObject({ messageCode: 0x0081, fuel: 'gas', action: 'disable', duisService: '7.2', payloadKind: 'gbz-template' });
    expect(SUPPLY_COMMANDS.GCS39).toMatchObject({ messageCode: 0x0085, fuel: 'gas', action: 'arm', duisService: '7.3', payloadKind: 'gbz-template' });
    expect(ACTIVATE_FIRMWARE_MESSAGE_CODE).toBe(0x0012);
    expect(Object.isFrozen(SUPPLY_COMMANDS)).toBe(true);
    expect(Object.isFrozen(SUPPLY_COMMANDS.ECS43)).toBe(true);
  });

  it('agrees with the message-code catalogue: same use case, fuel and DUIS service; critical from a supplier', () => {
    const cs06 = { useCase: 'CS06', messageCode: ACTIVATE_FIRMWARE_MESSAGE_CODE, fuel: 'any', duisService: '11.3' };
    for (const c of [...Object.values(SUPPLY_COMMANDS), cs06]) {
      const e = lookupMessageCode(c.messageCode);
      expect(e?.useCase).toBe(c.useCase);
      expect(e?.deviceType).toBe(c.fuel);
      expect(e?.duisService.startsWith(`${c.duisService} `)).toBe(true);
      expect(classify({ messageCode: c.messageCode, originatorRole: 2 })).toBe('critical');
    }
  });
});

describe('supply payloads byte for byte (docs/domain.md §5)', () => {
  it.each(BUILDS)('$useCase: payload and message code for counter 1000', ({ useCase, code, build, payload }) => {
    const m = parseMessage(build(BASE));
    expect(m.messageCode).toBe(code);
    expect(toHex(m.payload)).toBe(payload('0003E8'));
    expect(toHex(encodeSupplyPayload(useCase, 1000n))).toBe(payload('0003E8'));
  });

  it('DLMS payloads are 21 bytes, GBZ payloads 29', () => {
    for (const u of ['ECS42', 'ECS43', 'ECS44'] as const) expect(encodeSupplyPayload(u, 5n)).toHaveLength(21);
    for (const u of ['GCS32', 'GCS39'] as const) expect(encodeSupplyPayload(u, 5n)).toHaveLength(29);
  });

  // docs/domain.md §3: invoke-id = 0x20 then the low 24 bits of the originator counter
  it.each([
    [1000n, '0003E8'],
    [0xffffffn, 'FFFFFF'],
    [0x1000000n, '000000'],
    [0x1000001n, '000001'],
    [0x123456789abcdefn, 'ABCDEF'],
    [U64_MAX, 'FFFFFF'],
    [0n, '000000'],
  ])('counter %s → invoke-id 20 %s, header keeps the full counter', (counter, low) => {
    for (const { useCase, build, payload } of BUILDS.slice(0, 3)) {
      const m = parseMessage(build({ ...BASE, counter }));
      expect(toHex(m.payload), useCase).toBe(payload(low));
      expect(m.originatorCounter).toBe(counter);
      expect(decodeDlmsInvokeCounter(m.payload)).toBe(parseInt(low, 16));
      expect(BigInt(decodeDlmsInvokeCounter(m.payload))).toBe(m.originatorCounter & 0xffffffn);
      expect(decodeSupplyPayload(m.payload)).toEqual({ useCase, scriptId: SUPPLY_COMMANDS[useCase].scriptId, invokeCounter: parseInt(low, 16) });
    }
  });

  it('GBZ templates are verbatim: no byte depends on the counter or the parties', () => {
    for (const counter of [0n, 1000n, 0xffffffn, U64_MAX]) {
      expect(toHex(parseMessage(buildDisableSupply({ ...BASE, counter, fuel: 'gas' })).payload)).toBe(GCS32_HEX);
      expect(toHex(parseMessage(buildArmSupply({ ...BASE, recipient: '00DB123456789100', counter, fuel: 'gas' })).payload)).toBe(GCS39_HEX);
    }
    // the returned payload is a copy: mutating it does not change the next one
    const p = encodeSupplyPayload('GCS32', 1n);
    p[0] = 0xff;
    expect(toHex(encodeSupplyPayload('GCS32', 1n))).toBe(GCS32_HEX);
  });

  it('buildSupplyCommand by use case equals the named builders', () => {
    for (const { useCase, build } of BUILDS) expect(toHex(buildSupplyCommand(useCase, BASE))).toBe(toHex(build(BASE)));
  });
});

describe('the whole pre-command (docs/domain.md §3 layout)', () => {
  it('ECS43 remote disconnect, counter 1000: every byte', () => {
    // DF ‖ 09 ‖ 01 command ‖ counter (8) ‖ 08 originator ‖ 08 recipient ‖ 00 no date-time ‖
    // 02 other-information = code 0050 ‖ 15 content (21 bytes) ‖ 00 empty signature (the default)
    const expected = `DF0901${'00000000000003E8'}08${ORIGINATOR}08${RECIPIENT}00` + '020050' + '15' + dlms('0003E8', '0034') + '00';
    expect(toHex(buildDisableSupply({ ...BASE, fuel: 'electricity' }))).toBe(expected);
    expect(toHex(buildDisableSupply({ ...BASE, fuel: 'electricity', signatureField: 'absent' }))).toBe(expected.slice(0, -2));
  });

  it('equals buildGeneralSigning of the same fields (nothing re-encoded by hand)', () => {
    const pre = buildActivateFirmware({ ...BASE, imageHash: HASH });
    const m = parseMessage(pre);
    expect(toHex(buildGeneralSigning({ ...m, signatureField: 'empty' }))).toBe(toHex(pre));
  });

  it.each(BUILDS)('$useCase: parseMessage gives the fields back, with either ending and a date-time', ({ code, build }) => {
    const dateTime = fromHex('07E9061E01020304FF800000');
    for (const signatureField of ['empty', 'absent'] as const) {
      const m = parseMessage(build({ originator: '90-b3-d5-1f-30-01-00-00', recipient: '00 DB 12 34 56 78 90 A0', counter: 0x0123456789abcdefn, dateTime, signatureField }));
      expect(m.frame).toBe('signed');
      expect(m.cra).toBe('command');
      expect(m.originatorCounter).toBe(0x0123456789abcdefn);
      expect(m.originator).toBe(ORIGINATOR);
      expect(m.recipient).toBe(RECIPIENT);
      expect(toHex(m.dateTime as Uint8Array)).toBe('07E9061E01020304FF800000');
      expect(m.messageCode).toBe(code);
      expect(m.signatureField).toBe(signatureField);
      expect(m.signature).toBeNull();
      expect(m.supplementaryRemotePartyId).toBeUndefined();
    }
    expect(parseMessage(build(BASE)).dateTime).toBeUndefined();
    expect(parseMessage(build(BASE)).signatureField).toBe('empty');
  });
});

describe('signing the pre-commands (docs/domain.md §4)', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  const all: readonly { name: string; build: (o: CommandOptions) => Uint8Array }[] = [
    ...BUILDS.map((b) => ({ name: b.useCase, build: b.build })),
    { name: 'CS06', build: (o: CommandOptions) => buildActivateFirmware({ ...o, imageHash: HASH, executionTime: new Date('2030-01-01T02:00:00Z') }) },
    { name: 'CS06 (no time)', build: (o: CommandOptions) => buildActivateFirmware({ ...o, imageHash: HASH }) },
  ];

  it.each(all)('$name: signPreCommand accepts the 00 and the absent ending; the signature verifies', async ({ build }) => {
    const empty = build({ ...BASE, signatureField: 'empty' });
    const absent = build({ ...BASE, signatureField: 'absent' });
    expect(empty[empty.length - 1]).toBe(0x00);
    expect(toHex(empty.subarray(0, -1))).toBe(toHex(absent));
    for (const pre of [empty, absent]) {
      const signed = await signPreCommand(pre, privateKey);
      expect(signed).toHaveLength(absent.length + 65);
      expect(toHex(signed.subarray(0, absent.length))).toBe(toHex(absent));
      expect(signed[absent.length]).toBe(0x40);
      const m = parseMessage(signed);
      expect(m.signatureField).toBe('present');
      expect(verifySignature(m, publicKey)).toBe(true);
      expect(verifySignature(signed, other)).toBe(false);
      await expect(signPreCommand(signed, privateKey)).rejects.toMatchObject({ code: 'ERR_GBCS_ALREADY_SIGNED' });
    }
  });
});

describe('CS06 activate firmware payload (docs/domain.md §5: DER SEQUENCE { OCTET STRING (32), INTEGER, GeneralizedTime OPTIONAL })', () => {
  const ascii = (s: string) => Buffer.from(s, 'latin1').toString('hex').toUpperCase();

  it('byte for byte, with the reference cancellation time 99991231235959Z', () => {
    const pre = buildActivateFirmware({ ...BASE, imageHash: HASH, executionTime: new Date('9999-12-31T23:59:59Z') });
    const m = parseMessage(pre);
    expect(m.messageCode).toBe(0x0012);
    // 30 L ‖ 04 20 hash ‖ 02 02 03E8 ‖ 18 0F "99991231235959Z"
    const body = `0420${toHex(HASH)}` + '020203E8' + `180F${ascii('99991231235959Z')}`;
    expect(toHex(m.payload)).toBe(`30${(body.length / 2).toString(16).toUpperCase()}${body}`);
    expect(m.payload).toHaveLength(2 + 34 + 4 + 17);
  });

  it('without an execution time', () => {
    const payload = parseMessage(buildActivateFirmware({ ...BASE, imageHash: HASH })).payload;
    expect(toHex(payload)).toBe(`3026` + `0420${toHex(HASH)}` + '020203E8');
    expect(decodeActivateFirmware(payload)).toEqual({ imageHash: HASH, counter: 1000n });
  });

  // X.690 8.3: minimal two's complement; a positive value with the top bit set needs a leading 00
  it.each([
    [0n, '020100'],
    [1n, '020101'],
    [0x7fn, '02017F'],
    [0x80n, '02020080'],
    [0xffn, '020200FF'],
    [0x100n, '02020100'],
    [1000n, '020203E8'],
    [0x7fffffffffffffffn, '02087FFFFFFFFFFFFFFF'],
    [0x8000000000000000n, '0209008000000000000000'],
    [U64_MAX, '020900FFFFFFFFFFFFFFFF'],
  ])('counter %s → INTEGER %s, and back', (counter, intHex) => {
    const der = encodeActivateFirmwarePayload({ imageHash: HASH, counter });
    expect(toHex(der)).toBe(`30${(34 + intHex.length / 2).toString(16).toUpperCase().padStart(2, '0')}0420${toHex(HASH)}${intHex}`);
    expect(decodeActivateFirmware(der).counter).toBe(counter);
  });

  it.each([
    ['0000-01-01T00:00:00Z', '00000101000000Z'],
    ['0099-03-04T05:06:07Z', '00990304050607Z'],
    ['1999-12-31T23:59:59Z', '19991231235959Z'],
    ['2030-01-01T02:00:00Z', '20300101020000Z'],
    ['2024-02-29T12:00:00Z', '20240229120000Z'],
    ['9999-12-31T23:59:59Z', '99991231235959Z'],
  ])('execution time %s → GeneralizedTime %s, and back', (iso, text) => {
    const t = new Date(iso);
    const der = encodeActivateFirmwarePayload({ imageHash: HASH, counter: 7n, executionTime: t });
    expect(toHex(der.subarray(-17))).toBe(`180F${ascii(text)}`);
    const back = decodeActivateFirmware(der);
    expect(back.executionTime?.getTime()).toBe(t.getTime());
    expect(back.counter).toBe(7n);
    expect(toHex(back.imageHash)).toBe(toHex(HASH));
  });

  it('the validator check: payload counter equals header counter', () => {
    for (const counter of [0n, 1000n, 0x80n, U64_MAX]) {
      const m = parseMessage(buildActivateFirmware({ ...BASE, counter, imageHash: HASH }));
      expect(decodeActivateFirmware(m.payload).counter).toBe(m.originatorCounter);
    }
  });

  it('openssl asn1parse -inform DER agrees', () => {
    const imageHash = new Uint8Array(createHash('sha256').update('firmware image').digest());
    for (const [counter, time, intText] of [
      [1000n, new Date('9999-12-31T23:59:59Z'), '03E8'],
      [0x8000000000000000n, new Date('2030-06-01T00:00:00Z'), '8000000000000000'],
      [0n, undefined, '00'],
    ] as const) {
      const der = encodeActivateFirmwarePayload({ imageHash, counter, ...(time ? { executionTime: time } : {}) });
      const out = execFileSync('openssl', ['asn1parse', '-inform', 'DER'], { input: der, encoding: 'utf8' });
      const lines = out.trim().split('\n');
      expect(lines).toHaveLength(time ? 4 : 3);
      expect(lines[0]).toMatch(new RegExp(`^\\s*0:d=0\\s+hl=2 l=\\s*${der.length - 2} cons: SEQUENCE`));
      expect(lines[1]).toMatch(/d=1\s+hl=2 l=\s*32 prim: OCTET STRING\s+\[HEX DUMP\]:([0-9A-F]{64})$/);
      expect(lines[1]?.match(/:([0-9A-F]{64})$/)?.[1]).toBe(toHex(imageHash));
      expect(lines[2]).toMatch(new RegExp(`d=1\\s+hl=2 l=\\s*\\d+ prim: INTEGER\\s+:${intText}$`));
      if (time) expect(lines[3]).toMatch(/d=1\s+hl=2 l=\s*15 prim: GENERALIZEDTIME\s+:\d{14}Z$/);
      if (time) expect(lines[3]?.slice(-15)).toBe(time.toISOString().replace(/[-:T]/g, '').replace('.000', ''));
      const decoded = decodeActivateFirmware(der);
      expect(decoded.counter).toBe(counter);
      expect(decoded.executionTime?.getTime()).toBe(time?.getTime());
    }
  });
});

describe('bad inputs to the builders', () => {
  const cases: readonly [string, () => unknown, string][] = [
    ['hash of 31 bytes', () => buildActivateFirmware({ ...BASE, imageHash: new Uint8Array(31) }), 'ERR_GBCS_INVALID_FIELD'],
    ['hash of 33 bytes', () => buildActivateFirmware({ ...BASE, imageHash: new Uint8Array(33) }), 'ERR_GBCS_INVALID_FIELD'],
    ['hash not bytes', () => buildActivateFirmware({ ...BASE, imageHash: '00'.repeat(32) as unknown as Uint8Array }), 'ERR_GBCS_INVALID_FIELD'],
    ['negative counter (supply)', () => buildEnableSupply({ ...BASE, counter: -1n }), 'ERR_GBCS_INVALID_FIELD'],
    ['negative counter (CS06)', () => buildActivateFirmware({ ...BASE, counter: -1n, imageHash: HASH }), 'ERR_GBCS_INVALID_FIELD'],
    ['counter 2^64', () => buildDisableSupply({ ...BASE, counter: 1n << 64n, fuel: 'electricity' }), 'ERR_GBCS_INVALID_FIELD'],
    ['counter 2^64 (gas template)', () => buildDisableSupply({ ...BASE, counter: 1n << 64n, fuel: 'gas' }), 'ERR_GBCS_INVALID_FIELD'],
    ['counter 2^64 (CS06)', () => buildActivateFirmware({ ...BASE, counter: 1n << 64n, imageHash: HASH }), 'ERR_GBCS_INVALID_FIELD'],
    ['counter a number', () => buildArmSupply({ ...BASE, counter: 1000 as unknown as bigint, fuel: 'electricity' }), 'ERR_GBCS_INVALID_FIELD'],
    ['fuel missing', () => buildDisableSupply({ ...BASE } as never), 'ERR_GBCS_INVALID_FIELD'],
    ['fuel water', () => buildArmSupply({ ...BASE, fuel: 'water' as never }), 'ERR_GBCS_INVALID_FIELD'],
    ['unknown use case', () => buildSupplyCommand('ECS45' as never, BASE), 'ERR_GBCS_INVALID_FIELD'],
    ['prototype key as use case', () => encodeSupplyPayload('toString' as never, 1n), 'ERR_GBCS_INVALID_FIELD'],
    ['signatureField present', () => buildEnableSupply({ ...BASE, signatureField: 'present' as never }), 'ERR_GBCS_INVALID_FIELD'],
    ['date-time of 11 bytes', () => buildEnableSupply({ ...BASE, dateTime: new Uint8Array(11) }), 'ERR_GBCS_INVALID_FIELD'],
    ['execution time with milliseconds', () => buildActivateFirmware({ ...BASE, imageHash: HASH, executionTime: new Date('2030-01-01T00:00:00.001Z') }), 'ERR_GBCS_INVALID_FIELD'],
    ['execution time in year 10000', () => buildActivateFirmware({ ...BASE, imageHash: HASH, executionTime: new Date(Date.UTC(10000, 0, 1)) }), 'ERR_GBCS_INVALID_FIELD'],
    ['execution time in year -1', () => buildActivateFirmware({ ...BASE, imageHash: HASH, executionTime: new Date('-000001-12-31T00:00:00Z') }), 'ERR_GBCS_INVALID_FIELD'],
    ['execution time invalid Date', () => buildActivateFirmware({ ...BASE, imageHash: HASH, executionTime: new Date('nope') }), 'ERR_GBCS_INVALID_FIELD'],
    ['execution time a string', () => buildActivateFirmware({ ...BASE, imageHash: HASH, executionTime: '2030-01-01T00:00:00Z' as never }), 'ERR_GBCS_INVALID_FIELD'],
    ['options null', () => buildEnableSupply(null as never), 'ERR_GBCS_INVALID_FIELD'],
  ];
  it.each(cases)('%s → %s', (_name, f, code) => {
    expect(codeOf(f)).toBe(code);
  });

  it.each([
    ['originator', { ...BASE, originator: '90B3D51F3001000' }],
    ['originator with mixed separators', { ...BASE, originator: '90-B3:D5-1F-30-01-00-00' }],
    ['recipient', { ...BASE, recipient: 'not an eui' }],
  ])('bad %s EUI-64 → ERR_GBCS_INVALID_FIELD caused by ERR_EUI64_INVALID', (_name, o) => {
    for (const f of [() => buildEnableSupply(o), () => buildDisableSupply({ ...o, fuel: 'gas' }), () => buildActivateFirmware({ ...o, imageHash: HASH })]) {
      const e = errorOf(f);
      expect(e.code).toBe('ERR_GBCS_INVALID_FIELD');
      expect((e.cause as SmkiError).code).toBe('ERR_EUI64_INVALID');
    }
  });
});

describe('malformed payloads to the decoders → ERR_GBCS_MALFORMED with the offset', () => {
  const good = dlms('0003E8', '0034');
  it.each([
    ['empty', '', 0],
    ['4 bytes', 'D9200003', 4],
    ['not D9', 'DA200003E8', 0],
    ['invoke-id not 0x20', 'D9210003E8', 1],
    ['ZigBee payload', GCS32_HEX, 0],
    ['DER payload', '3003020100', 0],
  ])('decodeDlmsInvokeCounter: %s', (_n, hex, offset) => {
    const e = errorOf(() => decodeDlmsInvokeCounter(fromHex(hex)));
    expect(e.code).toBe('ERR_GBCS_MALFORMED');
    expect((e.context as { offset: number }).offset).toBe(offset);
  });

  it('decodeDlmsInvokeCounter: not bytes', () => {
    expect(codeOf(() => decodeDlmsInvokeCounter('D920' as never))).toBe('ERR_GBCS_MALFORMED');
  });

  it.each([
    ['truncated before the script id', good.slice(0, 38), 19],
    ['truncated inside the OBIS code', good.slice(0, 20), 10],
    ['one byte too many', `${good}00`, 21],
    ['unknown script id 0035', dlms('0003E8', '0035'), 19],
    ['another OBIS code', good.replace('00000A006AFF', '00000A0064FF'), 14],
    ['a date-time present', good.replace('D9200003E800', 'D9200003E80C'), 5],
  ])('decodeSupplyPayload: %s', (_n, hex, offset) => {
    const e = errorOf(() => decodeSupplyPayload(fromHex(hex)));
    expect(e.code).toBe('ERR_GBCS_MALFORMED');
    expect((e.context as { offset: number }).offset).toBe(offset);
  });

  const H = `0420${toHex(HASH)}`;
  const seq = (body: string) => `30${(body.length / 2).toString(16).toUpperCase().padStart(2, '0')}${body}`;
  const T = `180F${Buffer.from('20300101020000Z').toString('hex')}`;
  it.each([
    ['empty', '', 0],
    ['not a SEQUENCE', `31${seq(H + '020101').slice(2)}`, 0],
    ['SEQUENCE truncated', seq(H + '020101').slice(0, -2), 2],
    ['indefinite length', `3080${H}0201010000`, 1],
    ['trailing byte after the SEQUENCE', `${seq(H + '020101')}00`, 39],
    ['hash of 31 bytes', seq(`041F${toHex(HASH).slice(2)}020101`), 2],
    ['hash missing', seq('020101'), 2],
    ['counter missing', seq(H), 36],
    ['counter negative', seq(`${H}0201FF`), 38],
    ['counter empty INTEGER', seq(`${H}0200`), 36],
    ['counter not minimal', seq(`${H}02020001`), 38],
    ['counter 2^64', seq(`${H}0209010000000000000000`), 36],
    ['counter of 10 bytes', seq(`${H}020A00FFFFFFFFFFFFFFFFFF`), 36],
    ['time is UTCTime', seq(`${H}020101170D${Buffer.from('300101020000Z').toString('hex')}`), 39],
    ['time without Z', seq(`${H}020101180E${Buffer.from('20300101020000').toString('hex')}`), 39],
    ['time with fraction', seq(`${H}0201011811${Buffer.from('20300101020000.5Z').toString('hex')}`), 39],
    ['time 30 February', seq(`${H}020101180F${Buffer.from('20300230020000Z').toString('hex')}`), 39],
    ['time 24:00:00', seq(`${H}020101180F${Buffer.from('20300101240000Z').toString('hex')}`), 39],
    ['time leap second', seq(`${H}020101180F${Buffer.from('20301231235960Z').toString('hex')}`), 39],
    ['element after the time', seq(`${H}020101${T}0500`), 56],
    ['inner length past the SEQUENCE', `3024${H}0202`, 38],
  ])('decodeActivateFirmware: %s', (_n, hex, offset) => {
    const e = errorOf(() => decodeActivateFirmware(fromHex(hex)));
    expect(e.code).toBe('ERR_GBCS_MALFORMED');
    expect((e.context as { offset: number }).offset).toBe(offset);
  });

  it('decodeActivateFirmware: not bytes, and a 64 KiB blob is refused in under 50 ms (fastest of three runs)', () => {
    expect(codeOf(() => decodeActivateFirmware(null as never))).toBe('ERR_GBCS_MALFORMED');
    const big = new Uint8Array(64 * 1024).fill(0x30);
    let fastest = Number.POSITIVE_INFINITY; // a GC pause or a busy CI core is not slow parsing
    for (let run = 0; run < 3; run++) {
      const t0 = performance.now();
      expect(codeOf(() => decodeActivateFirmware(big))).toBe('ERR_GBCS_MALFORMED');
      fastest = Math.min(fastest, performance.now() - t0);
    }
    expect(fastest).toBeLessThan(50);
    // a 64 KiB GeneralizedTime inside a well-formed SEQUENCE: refused with its offset, no RangeError
    const inner = new Uint8Array(4 + 65000);
    inner.set([0x18, 0x82, 65000 >> 8, 65000 & 0xff]);
    const body = new Uint8Array([...fromHex(`${H}020101`), ...inner]);
    const der = new Uint8Array([0x30, 0x82, body.length >> 8, body.length & 0xff, ...body]);
    const e = errorOf(() => decodeActivateFirmware(der));
    expect(e.code).toBe('ERR_GBCS_MALFORMED');
    expect((e.context as { offset: number }).offset).toBe(4 + 37);
    expect(e.cause).toBeUndefined();
  });
});
