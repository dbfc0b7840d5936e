// The subjectAltName of a device certificate is read directly when it has the one shape SMKI
// device certificates carry (RFC 5280 §4.2.1.6 otherName; RFC 4108 §5 hardwareModuleName) and by
// asn1-schema otherwise. The direct reader must decide exactly as the general one: here both run
// on real device certificates, on structured variants (other type OIDs, serial lengths, extra
// names, long-form lengths) and on random byte damage, and wherever the direct reader answers, the
// answer is the general decoder's.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeSanFast, decodeSanGeneral, decodeSubjectAltName } from '../src/internal/san.js';
import { parseCertificate } from '@smki/pki';

const HMN_OID = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x04];

function tlv(tag: number, body: number[], longForm = false): number[] {
  const n = body.length;
  const len = !longForm && n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return [tag, ...len, ...body];
}
function oid(arcs: number[]): number[] {
  const body: number[] = [40 * (arcs[0] as number) + (arcs[1] as number)];
  for (const a of arcs.slice(2)) {
    const b: number[] = [a & 0x7f];
    for (let v = Math.floor(a / 128); v > 0; v = Math.floor(v / 128)) b.unshift((v & 0x7f) | 0x80);
    body.push(...b);
  }
  return tlv(0x06, body);
}
function san(hwType: number[], serial: number[], opts: { typeOid?: number[]; extra?: number[]; longForm?: boolean } = {}): Uint8Array {
  const hmn = tlv(0x30, [...oid(hwType), ...tlv(0x04, serial)], opts.longForm);
  const other = tlv(0xa0, [...(opts.typeOid ?? HMN_OID), ...tlv(0xa0, hmn)]);
  return new Uint8Array(tlv(0x30, [...other, ...(opts.extra ?? [])]));
}

const general = (v: Uint8Array) => {
  try {
    return decodeSanGeneral(v);
  } catch {
    return 'refused';
  }
};

/** Where the direct reader answers, it answers as the general decoder. */
function agree(v: Uint8Array): boolean {
  const fast = decodeSanFast(v);
  if (fast !== undefined) expect(fast).toEqual(general(v));
  return fast !== undefined;
}

describe('subjectAltName: the direct reader of the device shape agrees with asn1-schema', () => {
  // Every certificate in the repository's vectors (PEM inside the JSON files).
  const root = join(import.meta.dirname, '..', '..', '..', 'test-vectors');
  const certs = readdirSync(root, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.json'))
    .flatMap((f) => readFileSync(join(root, f), 'utf8').replace(/\\n/g, '\n').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [])
    .flatMap((pem) => {
      try {
        return [parseCertificate(pem)];
      } catch {
        return [];
      }
    });

  it('takes the device certificates of the vectors directly, with the same answer (the others: not the one-name shape)', () => {
    const notDirect: string[] = [];
    let direct = 0;
    for (const c of certs) {
      const ext = c.extensions.find((e) => e.oid === '2.5.29.17');
      if (ext === undefined) continue;
      if (agree(ext.value)) direct++;
      else if (c.kind === 'device') notDirect.push(Buffer.from(ext.value).toString('hex'));
    }
    expect(direct).toBeGreaterThan(10);
    // Device certificates whose SAN is not the one-name shape (negative lint cases) take the general path.
    for (const h of notDirect) expect(general(Buffer.from(h, 'hex')), h).not.toEqual(expect.objectContaining({ summary: { names: 1, hardwareModuleNames: 1 } }));
  });

  it('structured variants: direct where the shape is the device one, the general answer everywhere', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 2 ** 31 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 0, max: 39 }),
        fc.uint8Array({ minLength: 0, maxLength: 40 }),
        fc.constantFrom('plain', 'other type', 'extra name', 'long form'),
        (tail, a0, a1, serial, variant) => {
          const hwType = [a0, a1, ...tail];
          const v = san(hwType, [...serial], {
            ...(variant === 'other type' ? { typeOid: oid([1, 3, 6, 1, 4, 1, 99]) } : {}),
            ...(variant === 'extra name' ? { extra: tlv(0x82, [0x61, 0x2e, 0x62]) } : {}),
            ...(variant === 'long form' ? { longForm: true } : {}),
          });
          const direct = agree(v);
          // The device shape in DER is always taken directly; a long-form length under 128 is not DER.
          expect(direct).toBe(variant === 'plain');
          if (variant !== 'long form') expect(decodeSubjectAltName(v)).toEqual(general(v));
        },
      ),
      { numRuns: 400, seed: 4108 },
    );
  });

  it('damaged bytes (one changed, truncated, extended): never an answer the general decoder would not give', () => {
    const base = san([1, 3, 6, 1, 4, 1, 40, 1], [0x00, 0xdb, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc]);
    fc.assert(
      fc.property(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'cut', 'add'), (at, byte, how) => {
        const v = how === 'flip' ? Uint8Array.from(base, (b, i) => (i === at ? byte : b)) : how === 'cut' ? base.subarray(0, at) : new Uint8Array([...base, byte]);
        agree(v);
      }),
      { numRuns: 1500, seed: 5280 },
    );
  });

  it('a refused value is refused by the whole decoder too (the general path throws)', () => {
    expect(() => decodeSubjectAltName(new Uint8Array([0x30, 0x03, 0xa0, 0x01]))).toThrow();
    expect(decodeSanFast(new Uint8Array([0x30, 0x03, 0xa0, 0x01]))).toBeUndefined();
  });
});
