// Property-based tests of the @smki/core parsers of outside bytes (docs/conventions.md "Inputs"), and
// of the fuzz machinery every package's property tests share (scripts/fuzz/):
// - checkDerStructure (X.690 §8.1, §10.1) over mutated certificates of test-vectors/pki: accepted
//   or the parser's own SmkiError, and what it accepts re-encodes to itself;
// - parseEui64 (docs/domain.md §2), fromHex and fromBase64 (RFC 4648 §4, §8) over mutated spellings,
//   against oracles written from the rules: they accept exactly what the rules accept, and round-trip;
// - the judge and the mutations themselves: a parser that throws a RangeError, or wraps one in a
//   SmkiError, is caught; structural DER edits keep every enclosing length true; a plan always
//   gives the same bytes.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDerStructure, SmkiError } from '@smki/core';
import { checkSeeds, checkTarget, type Instance, type Target } from '../../../scripts/fuzz/harness.js';
import { applyPlan, derTree, encodeTree, judgeError, mutationPlan, type Seed } from '../../../scripts/fuzz/mutate.js';
import { coreTargets } from '../../../scripts/fuzz/targets/core.js';
import { certificateSeeds } from '../../../scripts/fuzz/targets/seeds.js';

const SEED = 690;
const RUNS = 400;

describe.each(coreTargets.map((t) => [t.name, t] as const))('%s', (_name, target) => {
  let inst: Instance;
  beforeAll(async () => {
    inst = await target.setup();
  });

  it('every seed parses and round-trips', async () => {
    await checkSeeds(target, inst);
  });

  it(`mutated seeds: accepted as the rules say (and round-trips) or ${target.codes.join(' / ')}, nothing else`, async () => {
    const stats = await checkTarget(target, inst, { seed: SEED, numRuns: RUNS });
    expect(stats.rejected.size).toBeGreaterThan(0);
    expect(stats.parsed).toBeGreaterThan(0);
  });
});

describe('the judge: what counts as a parser bug', () => {
  it('a bare RangeError or TypeError is a bug; a SmkiError with a known code is not', () => {
    expect(judgeError(new RangeError('offset out of bounds'))).toMatch(/^threw RangeError/);
    expect(judgeError(new TypeError('x is undefined'))).toMatch(/^threw TypeError/);
    expect(judgeError('a string')).toMatch(/^threw string/);
    expect(judgeError(new SmkiError('ERR_DER_INVALID', 'bad', { offset: 3 }))).toBeUndefined();
  });

  it('a SmkiError that wraps a RangeError is a bug (the wrapper hid a read past a bound)', () => {
    const wrapped = new SmkiError('ERR_CERT_MALFORMED', 'not a certificate', {}, { cause: new RangeError('Offset is outside the bounds of the DataView') });
    expect(judgeError(wrapped)).toMatch(/ERR_CERT_MALFORMED wraps RangeError/);
    const deep = new SmkiError('ERR_TRUST_STORE_LOAD', 'file', { path: 'a', detail: 'x' }, { cause: wrapped });
    expect(judgeError(deep)).toMatch(/ERR_CERT_MALFORMED wraps RangeError/);
  });

  it("node:crypto's own verdict (an OpenSSL error code) may be the cause; anything else only where the target allows it", () => {
    const ossl = Object.assign(new Error('error:03000072:digital envelope routines::decode error'), { code: 'ERR_OSSL_EVP_DECODE_ERROR' });
    expect(judgeError(new SmkiError('ERR_KEY_INVALID', 'not a point on P-256', {}, { cause: ossl }))).toBeUndefined();
    const gcm = new Error('Unsupported state or unable to authenticate data');
    const failed = new SmkiError('ERR_GBCS_DECRYPT_FAILED', 'does not authenticate', { offset: 0 }, { cause: gcm });
    expect(judgeError(failed)).toMatch(/wraps Error/);
    expect(judgeError(failed, undefined, (w) => w.code === 'ERR_GBCS_DECRYPT_FAILED')).toBeUndefined();
  });

  it('a code the parser does not document is reported', () => {
    expect(judgeError(new SmkiError('ERR_HEX_INVALID', 'x', {}), ['ERR_DER_INVALID'])).toMatch(/undocumented code ERR_HEX_INVALID/);
  });

  it('checkTarget fails, with the input in hex, on a parser that reads past the end', async () => {
    // A deliberately broken parser: trusts its length byte and reads through a DataView.
    const broken: Target = {
      name: 'self-test.broken',
      about: 'a length-prefixed value read without a bound check',
      der: false,
      codes: ['ERR_BYTES_TRUNCATED'],
      async setup() {
        return {
          seeds: [{ name: 'ok', bytes: Uint8Array.of(2, 0xab, 0xcd) }],
          run(input: Uint8Array) {
            const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
            const n = view.getUint8(0);
            return view.getUint16(n - 1);
          },
        };
      },
    };
    const inst = await broken.setup();
    await expect(checkTarget(broken, inst, { seed: 1, numRuns: 200 })).rejects.toThrow(/threw RangeError[\s\S]*input \(\d+ bytes\) [0-9A-F]*/);
  });
});

describe('the mutations', () => {
  let seeds: readonly Seed[];
  beforeAll(async () => {
    seeds = await certificateSeeds();
  });
  afterAll(() => undefined);

  it('read every certificate seed as a DER tree that re-encodes to itself', () => {
    for (const s of seeds) {
      const tree = derTree(s.bytes);
      expect(tree, s.name).toBeDefined();
      expect(Buffer.from(encodeTree(tree!)).equals(Buffer.from(s.bytes)), s.name).toBe(true);
    }
  });

  it('are deterministic: a plan gives the same bytes every time', () => {
    fc.assert(
      fc.property(mutationPlan(), (plan) => {
        expect(Buffer.from(applyPlan(seeds, plan)).equals(Buffer.from(applyPlan(seeds, plan)))).toBe(true);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  it('structural edits that move whole TLVs keep the DER well-formed (every enclosing length recomputed)', () => {
    const structural = fc.record({
      seed: fc.nat(),
      tree: fc.array(
        fc.oneof(
          fc.record({ op: fc.constant('drop' as const), node: fc.nat() }),
          fc.record({ op: fc.constant('dup' as const), node: fc.nat(), times: fc.integer({ min: 1, max: 4 }) }),
          fc.record({ op: fc.constant('swap' as const), node: fc.nat(), other: fc.nat() }),
          fc.record({ op: fc.constant('wrap' as const), node: fc.nat(), tag: fc.constantFrom(0x30, 0x31, 0xa0) }),
          fc.record({ op: fc.constant('unwrap' as const), node: fc.nat() }),
        ),
        { minLength: 1, maxLength: 3 },
      ),
      bytes: fc.constant([]),
    });
    fc.assert(
      fc.property(structural, (plan) => {
        const bytes = applyPlan(seeds, plan);
        expect(() => checkDerStructure(bytes, 64)).not.toThrow();
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});
