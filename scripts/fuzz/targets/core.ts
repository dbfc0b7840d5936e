/**
 * Fuzz targets of @smki/core: the DER structure walker (X.690 §8.1, §10.1), EUI-64 spellings
 * (docs/domain.md §2), hexadecimal and base64 (RFC 4648 §4, §8).
 * @module
 */
import { checkDerStructure, eui64ToBytes, eui64FromBytes, fromBase64, fromHex, parseEui64, toBase64, toHex, type Tlv } from '@smki/core';
import type { Instance, Target } from '../harness.js';
import { derTree, encodeTree, type Seed } from '../mutate.js';
import { certificateSeeds } from './seeds.js';

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
const textSeed = (name: string, s: string): Seed => ({ name, bytes: Uint8Array.from(Buffer.from(s, 'latin1')) });

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;
}

/**
 * Run a text parser; a refusal of what the oracle accepts is a bug (thrown as a plain Error so
 * the harness reports it), a refusal of what it refuses is the parser's own SmkiError.
 */
function oracleAgrees<T>(input: Uint8Array, oracle: (s: string) => boolean, parse: (s: string) => T): T {
  const s = latin1(input);
  try {
    return parse(s);
  } catch (e) {
    if (oracle(s)) throw new Error(`refused ${JSON.stringify(s.slice(0, 80))}, which the spelling rules accept`, { cause: e });
    throw e;
  }
}

/** checkDerStructure: one well-formed TLV tree, bounded depth, nothing trailing. */
export const derTarget: Target = {
  name: 'core.der',
  about: 'checkDerStructure: one DER TLV tree (X.690 §8.1, §10.1), nesting bounded, nothing trailing',
  der: true,
  codes: ['ERR_DER_INVALID', 'ERR_DER_DEPTH_EXCEEDED', 'ERR_DER_TRAILING_DATA', 'ERR_BYTES_TRUNCATED'],
  async setup(): Promise<Instance> {
    return {
      seeds: (await certificateSeeds()).slice(0, 24),
      run: (input) => checkDerStructure(input),
      check(input, _seed, result) {
        const t = result as Tlv;
        if (t.start !== 0 || t.end !== input.length) throw new Error(`outer TLV [${t.start}, ${t.end}) is not the whole input of ${input.length} bytes`);
        // An independent walker (definite lengths of at most 3 octets, which covers 64 KiB) reads
        // the same tree; re-encoding it gives the input back.
        const tree = derTree(input);
        if (tree && !equal(encodeTree(tree), input)) throw new Error('re-encoding the accepted tree does not give the input');
      },
    };
  },
};

/** The spellings docs/domain.md §2 accepts, written independently of the parser: the oracle. */
function eui64Oracle(s: string): string | undefined {
  const hex = '[0-9A-Fa-f]{2}';
  if (new RegExp(`^(?:${hex}){8}$`).test(s)) return s.toUpperCase();
  for (const sep of ['-', ':', ' ']) {
    const parts = s.split(sep);
    if (parts.length === 8 && parts.every((p) => new RegExp(`^${hex}$`).test(p))) return parts.join('').toUpperCase();
  }
  return undefined;
}

/** parseEui64 against the oracle, and the bytes round trip. */
export const eui64Target: Target = {
  name: 'core.eui64',
  about: 'parseEui64: 16 hex digits or eight pairs with one separator (docs/domain.md §2)',
  der: false,
  codes: ['ERR_EUI64_INVALID'],
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    const seeds = ['00DB1234567890A0', '00db1234567890a0', '00-DB-12-34-56-78-90-A0', '00:db:12:34:56:78:90:a0', '00 DB 12 34 56 78 90 A0', 'FFFFFFFFFFFFFFFF', '0000000000000000'];
    return {
      seeds: seeds.map((s, i) => textSeed(`eui64-${i}`, s)),
      run: (input) => oracleAgrees(input, (s) => eui64Oracle(s) !== undefined, parseEui64),
      check(input) {
        const s = latin1(input);
        const got = parseEui64(s);
        const want = eui64Oracle(s);
        if (got !== want) throw new Error(`parseEui64(${JSON.stringify(s)}) = ${got}, the spelling rules give ${String(want)}`);
        if (eui64FromBytes(eui64ToBytes(got)) !== got) throw new Error('eui64ToBytes/eui64FromBytes do not round-trip');
      },
    };
  },
};

/** fromHex against the oracle; toHex round trip. */
export const hexTarget: Target = {
  name: 'core.hex',
  about: 'fromHex: even-length hexadecimal, either case (RFC 4648 §8 alphabet)',
  der: false,
  codes: ['ERR_HEX_INVALID'],
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    const seeds = ['', '00', 'DEADBEEF', 'deadbeef', '0123456789abcdefABCDEF', '30820100'];
    return {
      seeds: seeds.map((s, i) => textSeed(`hex-${i}`, s)),
      run: (input) => oracleAgrees(input, (s) => /^(?:[0-9A-Fa-f]{2})*$/.test(s), fromHex),
      check(input, _seed, result) {
        const s = latin1(input);
        if (!/^(?:[0-9A-Fa-f]{2})*$/.test(s)) throw new Error(`accepted ${JSON.stringify(s)}, which is not even-length hexadecimal`);
        if (toHex(result as Uint8Array) !== s.toUpperCase()) throw new Error('toHex(fromHex(s)) is not s in upper case');
      },
    };
  },
};

/** RFC 4648 §4 base64, padding optional but exact when present, white space ignored: the oracle. */
function base64Oracle(s: string): boolean {
  const compact = s.replace(/\s/g, '');
  const m = /^([A-Za-z0-9+/]*)(=*)$/.exec(compact);
  if (!m) return false;
  const data = m[1] as string;
  const pad = (m[2] as string).length;
  if (data.length % 4 === 1) return false;
  if (pad === 0) return true;
  return data.length > 0 && data.length % 4 !== 0 && pad === 4 - (data.length % 4);
}

/** fromBase64 against the oracle and node's decoder; toBase64 round trip. */
export const base64Target: Target = {
  name: 'core.base64',
  about: 'fromBase64: standard base64, white space between groups, optional padding (RFC 4648 §4)',
  der: false,
  codes: ['ERR_BASE64_INVALID'],
  mutantsMayParse: true,
  async setup(): Promise<Instance> {
    const seeds = ['', 'AA==', 'AAA=', 'AAAA', 'MIIBmDCCAT+gAwIBAgIQ', 'TWFu\nTWE=\n', 'q80+/w', ' 3q2+7w== '];
    return {
      seeds: seeds.map((s, i) => textSeed(`base64-${i}`, s)),
      run: (input) => oracleAgrees(input, base64Oracle, fromBase64),
      check(input, _seed, result) {
        const s = latin1(input);
        const bytes = result as Uint8Array;
        if (!base64Oracle(s)) throw new Error(`accepted ${JSON.stringify(s)}, which RFC 4648 §4 does not allow`);
        if (!equal(bytes, Buffer.from(s.replace(/\s/g, ''), 'base64'))) throw new Error('decodes differently from node');
        if (!equal(fromBase64(toBase64(bytes)), bytes)) throw new Error('fromBase64(toBase64(b)) is not b');
      },
    };
  },
};

/** @smki/core targets. */
export const coreTargets: readonly Target[] = [derTarget, eui64Target, hexTarget, base64Target];
