/**
 * Mutations of real inputs, for the property tests (packages/<name>/test/property.test.ts) and the
 * long fuzz run (scripts/fuzz.ts). A mutation starts from a valid encoding made by the project's
 * own issuers and builders or read from test-vectors/, and changes it the way a hostile or broken
 * peer would: bytes flipped or overwritten, the input truncated or extended, ranges spliced or
 * duplicated, bytes crossed over from another seed, and, where the seed is DER (X.690 §8.1,
 * §10.1), structural edits with every enclosing length recomputed: tags and values changed, TLVs
 * dropped, duplicated, swapped, wrapped, unwrapped or grown, lengths made to lie (indefinite,
 * non-minimal, too long, too short, 5 octets). The DER edits reach the inner decoders (extension
 * values, names, times, OIDs), which a byte flip mostly cannot, because the outer structure check
 * stops it first.
 *
 * A mutation is a plain, printable plan ({@link MutationPlan}): fast-check generates and shrinks
 * it, and {@link applyPlan} turns it into bytes. The same plan on the same seeds always gives the
 * same bytes.
 * @module
 */
import fc from 'fast-check';
import { SMKI_ERROR_CODES, SmkiError } from '@smki/core';

/** One valid input to start from. */
export interface Seed {
  /** What it is (for reports). */
  readonly name: string;
  /** Its bytes (text inputs: latin1 bytes of the text). */
  readonly bytes: Uint8Array;
  /** Offsets worth hitting (length and tag fields of a non-DER format such as GBCS). */
  readonly hints?: readonly number[];
  /**
   * For a text target: the seed is DER, mutated as DER and wrapped in a PEM block with this label
   * before it is parsed (so that the mutations reach the DER parser behind the armour).
   */
  readonly armour?: string;
}

// ---------------------------------------------------------------------------------------------
// Interesting values

/** Bytes that are lengths, tags or boundaries in DER and GBCS. */
const INTERESTING_BYTES = [
  0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0c, 0x11, 0x13, 0x17, 0x18, 0x1f, 0x20, 0x30, 0x31, 0x40, 0x7f, 0x80, 0x81,
  0x82, 0x83, 0x84, 0x85, 0x88, 0x8f, 0xa0, 0xa3, 0xbf, 0xdd, 0xdf, 0xfe, 0xff,
] as const;

/** Short sequences to splice in: long-form lengths, indefinite lengths, GBCS frame starts, text that breaks PEM and JSON. */
const INTERESTING_INSERTS: readonly (readonly number[])[] = [
  [0x80],
  [0x81, 0x7f],
  [0x81, 0xff],
  [0x82, 0x00, 0x01],
  [0x82, 0xff, 0xff],
  [0x83, 0xff, 0xff, 0xff],
  [0x84, 0xff, 0xff, 0xff, 0xff],
  [0x84, 0x7f, 0xff, 0xff, 0xff],
  [0x85, 0x01, 0x00, 0x00, 0x00, 0x00],
  [0x30, 0x80],
  [0x30, 0x00],
  [0x05, 0x00],
  [0x00, 0x00],
  [0x1f, 0x81, 0x80, 0x01],
  [0xdf, 0x09],
  [0xdd, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
  [0x11, 0x00, 0x00, 0x00, 0x00],
  [0x40],
  [0x0c],
  // text: PEM armour, white space, base64 padding, JSON and line breaks
  [...Buffer.from('-----BEGIN CERTIFICATE-----\n', 'latin1')],
  [...Buffer.from('-----END CERTIFICATE-----\n', 'latin1')],
  [...Buffer.from('-----BEGIN X509 CRL-----', 'latin1')],
  [...Buffer.from('-----END ENCRYPTED PRIVATE KEY-----', 'latin1')],
  [...Buffer.from('-', 'latin1')],
  [...Buffer.from('=', 'latin1')],
  [...Buffer.from('==\n', 'latin1')],
  [...Buffer.from('\r\n', 'latin1')],
  [...Buffer.from('\n\n', 'latin1')],
  [...Buffer.from(' \t', 'latin1')],
  [...Buffer.from('"}', 'latin1')],
  [...Buffer.from('{"seq":', 'latin1')],
  [...Buffer.from(',"mac":"', 'latin1')],
  [...Buffer.from('\\u0000', 'latin1')],
  [0xc3, 0x28],
  [0xe2, 0x80, 0xa8],
  [0xef, 0xbb, 0xbf],
];

/** DER tags to put on a TLV (universal, context, constructed, high-tag-number form). */
const INTERESTING_TAGS = [
  0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0a, 0x0c, 0x13, 0x14, 0x16, 0x17, 0x18, 0x1e, 0x1f, 0x21, 0x23, 0x24, 0x30, 0x31, 0x80, 0x81,
  0x82, 0x86, 0x87, 0x88, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xbf, 0xff,
] as const;

const text = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'latin1'));

/** Values to put in a primitive TLV: INTEGER, OID, time and string edge cases. */
const INTERESTING_VALUES: readonly Uint8Array[] = [
  new Uint8Array(0),
  Uint8Array.of(0x00),
  Uint8Array.of(0x80),
  Uint8Array.of(0xff),
  Uint8Array.of(0x00, 0x00),
  Uint8Array.of(0x00, 0x80),
  Uint8Array.of(0xff, 0x80),
  Uint8Array.of(0xff, 0x7f),
  Uint8Array.of(0x7f, 0xff, 0xff, 0xff),
  Uint8Array.of(0x01, 0x00, 0x00, 0x00, 0x00),
  new Uint8Array(9).fill(0xff),
  new Uint8Array(17).fill(0x7f),
  new Uint8Array(21).fill(0x01),
  new Uint8Array(33).fill(0x80),
  Uint8Array.of(0x07, 0x80), // BIT STRING with 7 unused bits
  Uint8Array.of(0x08, 0x00), // more than 7 unused bits
  Uint8Array.of(0x2a, 0x86), // OID ending inside an arc
  Uint8Array.of(0x80, 0x01), // OID arc with a leading 0x80
  Uint8Array.of(0x55, 0x1d, 0x11), // subjectAltName
  Uint8Array.of(0x55, 0x1d, 0x0f), // keyUsage
  Uint8Array.of(0x55, 0x1d, 0x13), // basicConstraints
  Uint8Array.of(0x55, 0x1d, 0x20), // certificatePolicies
  Uint8Array.of(0x55, 0x1d, 0x23), // authorityKeyIdentifier
  Uint8Array.of(0x55, 0x1d, 0x1c), // issuingDistributionPoint
  Uint8Array.of(0x55, 0x1d, 0x15), // reasonCode
  Uint8Array.of(0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x04), // id-on-hardwareModuleName
  Uint8Array.of(0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02), // ecdsa-with-SHA256
  Uint8Array.of(0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x0e), // extensionRequest
  new Uint8Array(40).fill(0xff), // OID arc past 2^53
  new Uint8Array(65).fill(0x81),
  text('991231235960Z'),
  text('500101000000Z'),
  text('491231235959Z'),
  text('20500101000000Z'),
  text('99991231235959Z'),
  text('00000101000000Z'),
  text('20250230000000Z'),
  text('2025010100000Z'),
  text('20250101000000.5Z'),
  text('20250101000000+0100'),
  text('9912312359Z'),
  text('07'),
  text('7'),
  text('0x'),
  text('\u0000'),
  Uint8Array.of(0xc3, 0x28),
  Uint8Array.of(0xed, 0xa0, 0x80),
  Uint8Array.of(0xff, 0xfe, 0x00),
];

/** Lengths that lie, as a function of the true length. */
const LYING_LENGTHS: readonly ((n: number) => readonly number[])[] = [
  () => [0x80], // indefinite
  (n) => derLength(n + 1),
  (n) => derLength(Math.max(0, n - 1)),
  (n) => derLength(n + 1000),
  (n) => (n < 0x80 ? [0x81, n] : [0x82, n >> 8, n & 0xff]), // non-minimal
  (n) => [0x84, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff], // non-minimal, 4 octets
  () => [0x84, 0xff, 0xff, 0xff, 0xff],
  () => [0x85, 0x00, 0x00, 0x00, 0x00, 0x01],
  () => [0xff],
  () => [0x81],
  () => [],
];

// ---------------------------------------------------------------------------------------------
// Plans

/** A byte-level edit. Offsets and lengths are taken modulo the current size when applied. */
export type ByteEdit =
  | { readonly op: 'flip'; readonly at: number; readonly bit: number }
  | { readonly op: 'set'; readonly at: number; readonly value: number }
  | { readonly op: 'truncate'; readonly at: number }
  | { readonly op: 'extend'; readonly bytes: Uint8Array }
  | { readonly op: 'splice'; readonly at: number; readonly remove: number; readonly insert: Uint8Array }
  | { readonly op: 'duplicate'; readonly from: number; readonly length: number; readonly to: number }
  | { readonly op: 'crossover'; readonly donor: number; readonly from: number; readonly length: number; readonly to: number; readonly replace: boolean }
  | { readonly op: 'hint'; readonly hint: number; readonly insert: Uint8Array; readonly replace: boolean };

/** A structural edit of a DER seed; every enclosing length is recomputed afterwards. */
export type TreeEdit =
  | { readonly op: 'tag'; readonly node: number; readonly tag: number }
  | { readonly op: 'value'; readonly node: number; readonly value: Uint8Array }
  | { readonly op: 'valueFlip'; readonly node: number; readonly at: number; readonly bit: number }
  | { readonly op: 'drop'; readonly node: number }
  | { readonly op: 'dup'; readonly node: number; readonly times: number }
  | { readonly op: 'swap'; readonly node: number; readonly other: number }
  | { readonly op: 'wrap'; readonly node: number; readonly tag: number }
  | { readonly op: 'unwrap'; readonly node: number }
  | { readonly op: 'grow'; readonly node: number; readonly factor: number }
  | { readonly op: 'length'; readonly node: number; readonly lie: number };

/** What to do to which seed. */
export interface MutationPlan {
  /** Index of the seed (modulo the number of seeds). */
  readonly seed: number;
  /** Structural edits (ignored when the seed is not DER). */
  readonly tree: readonly TreeEdit[];
  /** Byte edits, after the structural ones. */
  readonly bytes: readonly ByteEdit[];
}

/** Largest input a plan may produce (the parsers' bound is 64 KiB; a little over tests the refusal). */
export const MAX_MUTATED_BYTES = 66 * 1024;

const pos = fc.nat({ max: 0x7fffffff });
const interestingByte = fc.oneof(fc.constantFrom(...INTERESTING_BYTES), fc.integer({ min: 0, max: 255 }));
const insertBytes = fc.oneof(
  fc.constantFrom(...INTERESTING_INSERTS).map((a) => Uint8Array.from(a)),
  fc.uint8Array({ minLength: 1, maxLength: 32 }),
);

const byteEdit: fc.Arbitrary<ByteEdit> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('flip' as const), at: pos, bit: fc.nat({ max: 7 }) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('set' as const), at: pos, value: interestingByte }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('truncate' as const), at: pos }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('extend' as const), bytes: insertBytes }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('splice' as const), at: pos, remove: fc.nat({ max: 32 }), insert: fc.oneof(insertBytes, fc.constant(new Uint8Array(0))) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('duplicate' as const), from: pos, length: fc.integer({ min: 1, max: 256 }), to: pos }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('crossover' as const), donor: pos, from: pos, length: fc.integer({ min: 1, max: 128 }), to: pos, replace: fc.boolean() }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('hint' as const), hint: pos, insert: fc.oneof(insertBytes, interestingByte.map((b) => Uint8Array.of(b))), replace: fc.boolean() }) },
);

const treeEdit: fc.Arbitrary<TreeEdit> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('tag' as const), node: pos, tag: fc.oneof(fc.constantFrom(...INTERESTING_TAGS), fc.integer({ min: 0, max: 255 })) }) },
  {
    weight: 5,
    arbitrary: fc.record({ op: fc.constant('value' as const), node: pos, value: fc.oneof(fc.constantFrom(...INTERESTING_VALUES), fc.uint8Array({ maxLength: 40 })) }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('valueFlip' as const), node: pos, at: pos, bit: fc.nat({ max: 7 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('drop' as const), node: pos }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('dup' as const), node: pos, times: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 4, max: 3000 })) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('swap' as const), node: pos, other: pos }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('wrap' as const), node: pos, tag: fc.constantFrom(0x30, 0x31, 0x04, 0xa0, 0xa3, 0x03) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('unwrap' as const), node: pos }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('grow' as const), node: pos, factor: fc.integer({ min: 2, max: 2000 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('length' as const), node: pos, lie: fc.nat({ max: LYING_LENGTHS.length - 1 }) }) },
);

/**
 * Plans of one to four edits on one of the seeds. `der: false` leaves out the structural edits
 * (for seeds that are not DER, they would be no-ops).
 */
export function mutationPlan(options: { readonly der?: boolean } = {}): fc.Arbitrary<MutationPlan> {
  const der = options.der ?? true;
  return fc
    .record({
      seed: pos,
      tree: der ? fc.array(treeEdit, { maxLength: 3 }) : fc.constant([] as TreeEdit[]),
      bytes: fc.array(byteEdit, { maxLength: der ? 3 : 4 }),
    })
    .filter((p) => p.tree.length + p.bytes.length > 0);
}

// ---------------------------------------------------------------------------------------------
// DER trees

interface DerNode {
  tag: number;
  /** Content octets of a primitive (or of a constructed TLV whose content is not DER). */
  value?: Uint8Array;
  /** Children of a constructed TLV, or of an OCTET STRING / BIT STRING that holds DER. */
  children?: DerNode[];
  /** Bytes before the children (the unused-bits octet of a BIT STRING that holds DER). */
  prefix?: Uint8Array;
  /** A lying length, replacing the true one. */
  length?: readonly number[];
}

function derLength(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}

/** TLVs tiling `bytes[start, end)` exactly, or undefined (lenient about nothing: definite, minimal, single-octet tags). */
function parseNodes(bytes: Uint8Array, start: number, end: number, depth: number): DerNode[] | undefined {
  if (depth > 40) return undefined;
  const out: DerNode[] = [];
  let o = start;
  while (o < end) {
    const tag = bytes[o++] as number;
    if ((tag & 0x1f) === 0x1f || o >= end) return undefined;
    let len = bytes[o++] as number;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 3 || o + n > end) return undefined;
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + (bytes[o++] as number);
      if (len < 0x80 || (n > 1 && len < 256 ** (n - 1))) return undefined;
    }
    if (len > end - o) return undefined;
    const content = bytes.subarray(o, o + len);
    const node: DerNode = { tag };
    let kids: DerNode[] | undefined;
    if (tag & 0x20) kids = len > 0 ? parseNodes(bytes, o, o + len, depth + 1) : [];
    else if (tag === 0x04 && len >= 2 && ((content[0] as number) & 0x20) !== 0) kids = parseNodes(bytes, o, o + len, depth + 1);
    else if (tag === 0x03 && len >= 3 && content[0] === 0 && ((content[1] as number) & 0x20) !== 0) {
      kids = parseNodes(bytes, o + 1, o + len, depth + 1);
      if (kids) node.prefix = Uint8Array.of(0);
    }
    if (kids) node.children = kids;
    else node.value = content.slice();
    out.push(node);
    o += len;
  }
  return out;
}

/** The DER tree of `bytes` when it is exactly one TLV, else undefined. */
export function derTree(bytes: Uint8Array): DerNode | undefined {
  const nodes = parseNodes(bytes, 0, bytes.length, 0);
  return nodes && nodes.length === 1 ? nodes[0] : undefined;
}

function encodedSize(node: DerNode): number {
  const content = node.children ? (node.prefix?.length ?? 0) + node.children.reduce((s, c) => s + encodedSize(c), 0) : (node.value?.length ?? 0);
  return 1 + (node.length ?? derLength(content)).length + content;
}

function encodeInto(node: DerNode, out: number[]): void {
  const parts: number[] = [];
  if (node.children) {
    if (node.prefix) parts.push(...node.prefix);
    for (const c of node.children) encodeInto(c, parts);
  } else if (node.value) {
    for (const b of node.value) parts.push(b);
  }
  out.push(node.tag, ...(node.length ?? derLength(parts.length)));
  for (const b of parts) out.push(b);
}

/** Bytes of a DER tree (lying lengths as set; every other length true). */
export function encodeTree(node: DerNode): Uint8Array {
  const out: number[] = [];
  encodeInto(node, out);
  return Uint8Array.from(out);
}

function clone(node: DerNode): DerNode {
  const c: DerNode = { tag: node.tag };
  if (node.value) c.value = node.value;
  if (node.children) c.children = node.children.map(clone);
  if (node.prefix) c.prefix = node.prefix;
  if (node.length) c.length = node.length;
  return c;
}

interface Located {
  readonly node: DerNode;
  readonly parent: DerNode | undefined;
}

function flatten(root: DerNode): Located[] {
  const out: Located[] = [];
  const stack: Located[] = [{ node: root, parent: undefined }];
  while (stack.length > 0) {
    const l = stack.pop() as Located;
    out.push(l);
    const kids = l.node.children ?? [];
    for (let i = kids.length - 1; i >= 0; i--) stack.push({ node: kids[i] as DerNode, parent: l.node });
  }
  return out;
}

function contentBytes(node: DerNode): Uint8Array {
  if (!node.children) return node.value ?? new Uint8Array(0);
  const out: number[] = [];
  if (node.prefix) out.push(...node.prefix);
  for (const c of node.children) encodeInto(c, out);
  return Uint8Array.from(out);
}

function applyTreeEdit(root: DerNode, e: TreeEdit): DerNode {
  const all = flatten(root);
  const at = all[e.node % all.length] as Located;
  const { node, parent } = at;
  const siblings = parent?.children;
  const index = siblings ? siblings.indexOf(node) : -1;
  switch (e.op) {
    case 'tag':
      node.tag = e.tag;
      return root;
    case 'value':
      delete node.children;
      delete node.prefix;
      node.value = e.value;
      return root;
    case 'valueFlip': {
      const v = contentBytes(node).slice();
      if (v.length > 0) v[e.at % v.length] = (v[e.at % v.length] as number) ^ (1 << e.bit);
      delete node.children;
      delete node.prefix;
      node.value = v;
      return root;
    }
    case 'drop':
      if (siblings) siblings.splice(index, 1);
      return root;
    case 'dup': {
      if (!siblings) return root;
      const budget = Math.max(1, Math.floor(MAX_MUTATED_BYTES / Math.max(1, encodedSize(node))));
      const copies = Array.from({ length: Math.min(e.times, budget) }, () => clone(node));
      siblings.splice(index + 1, 0, ...copies);
      return root;
    }
    case 'swap': {
      const other = clone((all[e.other % all.length] as Located).node);
      if (!siblings) return other;
      siblings[index] = other;
      return root;
    }
    case 'wrap': {
      const wrapped: DerNode = { tag: e.tag, children: [node] };
      if (e.tag === 0x03) wrapped.prefix = Uint8Array.of(0);
      if (!siblings) return wrapped;
      siblings[index] = wrapped;
      return root;
    }
    case 'unwrap':
      if (siblings && node.children) siblings.splice(index, 1, ...node.children);
      return root;
    case 'grow': {
      const size = Math.max(1, encodedSize(node));
      const factor = Math.max(2, Math.min(e.factor, Math.floor(MAX_MUTATED_BYTES / size)));
      if (node.children && node.children.length > 0) {
        const base = node.children.map(clone);
        for (let i = 1; i < factor; i++) node.children.push(...base.map(clone));
      } else {
        const v = node.value ?? new Uint8Array(0);
        const big = new Uint8Array(Math.min(MAX_MUTATED_BYTES, Math.max(1, v.length) * factor));
        for (let i = 0; i < big.length; i++) big[i] = v.length > 0 ? (v[i % v.length] as number) : 0x41;
        node.value = big;
      }
      return root;
    }
    case 'length': {
      const lie = LYING_LENGTHS[e.lie] as (n: number) => readonly number[];
      node.length = lie(contentBytes(node).length);
      return root;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Byte edits

function applyByteEdit(b: Uint8Array, e: ByteEdit, seeds: readonly Seed[], hints: readonly number[]): Uint8Array {
  const n = b.length;
  switch (e.op) {
    case 'flip': {
      if (n === 0) return b;
      const out = b.slice();
      out[e.at % n] = (out[e.at % n] as number) ^ (1 << e.bit);
      return out;
    }
    case 'set': {
      if (n === 0) return Uint8Array.of(e.value);
      const out = b.slice();
      out[e.at % n] = e.value;
      return out;
    }
    case 'truncate':
      return b.slice(0, e.at % (n + 1));
    case 'extend':
      return concat(b, e.bytes);
    case 'splice': {
      const at = e.at % (n + 1);
      return concat(b.subarray(0, at), e.insert, b.subarray(Math.min(n, at + e.remove)));
    }
    case 'duplicate': {
      if (n === 0) return b;
      const from = e.from % n;
      const piece = b.subarray(from, Math.min(n, from + e.length));
      const to = e.to % (n + 1);
      return concat(b.subarray(0, to), piece, b.subarray(to));
    }
    case 'crossover': {
      const donor = (seeds[e.donor % seeds.length] as Seed).bytes;
      if (donor.length === 0) return b;
      const from = e.from % donor.length;
      const piece = donor.subarray(from, Math.min(donor.length, from + e.length));
      const to = e.to % (n + 1);
      return concat(b.subarray(0, to), piece, b.subarray(e.replace ? Math.min(n, to + piece.length) : to));
    }
    case 'hint': {
      const at = hints.length > 0 ? Math.min(n, hints[e.hint % hints.length] as number) : e.hint % (n + 1);
      return concat(b.subarray(0, at), e.insert, b.subarray(e.replace ? Math.min(n, at + e.insert.length) : at));
    }
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** DER TLV offsets (tags and length octets) of a DER seed, as hints for byte edits. */
function derHints(bytes: Uint8Array): number[] {
  const out: number[] = [];
  const walk = (start: number, end: number, depth: number): void => {
    let o = start;
    while (o < end && depth < 40) {
      const t = o;
      const tag = bytes[o++] as number;
      let len = bytes[o++] as number;
      out.push(t, t + 1);
      if (len & 0x80) {
        const k = len & 0x7f;
        len = 0;
        for (let i = 0; i < k; i++) len = len * 256 + (bytes[o++] as number);
      }
      if (tag & 0x20 && len > 0) walk(o, o + len, depth + 1);
      o += len;
    }
  };
  if (derTree(bytes)) walk(0, bytes.length, 0);
  return out;
}

const treeCache = new WeakMap<Seed, { tree: DerNode | undefined; hints: readonly number[] }>();

function seedInfo(seed: Seed): { tree: DerNode | undefined; hints: readonly number[] } {
  let info = treeCache.get(seed);
  if (!info) {
    const tree = derTree(seed.bytes);
    info = { tree, hints: seed.hints ?? (tree ? derHints(seed.bytes) : []) };
    treeCache.set(seed, info);
  }
  return info;
}

/** The bytes a plan makes from the seeds (deterministic). */
export function applyPlan(seeds: readonly Seed[], plan: MutationPlan): Uint8Array {
  const seed = seeds[plan.seed % seeds.length] as Seed;
  const info = seedInfo(seed);
  let bytes = seed.bytes;
  if (info.tree && plan.tree.length > 0) {
    let root = clone(info.tree);
    for (const e of plan.tree) root = applyTreeEdit(root, e);
    bytes = encodeTree(root);
  }
  for (const e of plan.bytes) {
    bytes = applyByteEdit(bytes, e, seeds, info.hints);
    if (bytes.length > MAX_MUTATED_BYTES) bytes = bytes.subarray(0, MAX_MUTATED_BYTES);
  }
  return bytes.length > MAX_MUTATED_BYTES ? bytes.slice(0, MAX_MUTATED_BYTES) : bytes;
}

// ---------------------------------------------------------------------------------------------
// Judging an outcome

/**
 * What is wrong with an exception a parser threw, or undefined if it is one the parser may throw:
 * a `SmkiError` with a code in `SMKI_ERROR_CODES` (and, when `codes` is given, one of those), whose
 * `cause` chain holds only `SmkiError`s, except node:crypto's own verdicts (OpenSSL error codes)
 * and where `foreignCause` allows one (say, node's AES-GCM error behind `ERR_GBCS_DECRYPT_FAILED`). A RangeError or TypeError wrapped in a
 * `SmkiError` is a bug too: the parser read past a bound and its wrapper hid it.
 */
export function judgeError(
  e: unknown,
  codes?: readonly string[],
  foreignCause?: (wrapper: SmkiError, cause: unknown) => boolean,
): string | undefined {
  if (!(e instanceof SmkiError)) {
    const err = e as { name?: unknown; message?: unknown };
    return `threw ${typeof err?.name === 'string' ? err.name : typeof e}: ${typeof err?.message === 'string' ? err.message : String(e)}`;
  }
  if (!Object.prototype.hasOwnProperty.call(SMKI_ERROR_CODES, e.code)) return `SmkiError with unknown code ${String(e.code)}`;
  if (codes && !codes.includes(e.code)) return `undocumented code ${e.code}: ${e.message}`;
  let wrapper: SmkiError = e;
  let c: unknown = e.cause;
  for (let i = 0; c !== undefined && i < 16; i++) {
    if (!(c instanceof SmkiError)) {
      if (isCryptoVerdict(c) || foreignCause?.(wrapper, c)) return undefined;
      const err = c as { name?: unknown; message?: unknown };
      return `${wrapper.code} wraps ${typeof err?.name === 'string' ? err.name : typeof c}: ${typeof err?.message === 'string' ? err.message : String(c)}`;
    }
    wrapper = c;
    c = c.cause;
  }
  return undefined;
}

/**
 * Whether a cause is node:crypto's (OpenSSL's) verdict on key or signature bytes, e.g.
 * `ERR_OSSL_EVP_DECODE_ERROR` behind `ERR_KEY_INVALID` "not a point on P-256": the wrapper
 * classifies the bytes, and the cause says why OpenSSL refused them. Not a bounds bug.
 */
function isCryptoVerdict(c: unknown): boolean {
  const code = (c as { code?: unknown } | null)?.code;
  return c instanceof Error && typeof code === 'string' && /^ERR_(OSSL|CRYPTO)_/.test(code);
}

/** The innermost non-SmkiError of an error chain (for its stack), or the error itself. */
export function rootCause(e: unknown): unknown {
  let c = e;
  for (let i = 0; c instanceof SmkiError && c.cause !== undefined && i < 16; i++) c = c.cause;
  return c;
}

/** Upper-case hex, for reports. */
export function hexOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex').toUpperCase();
}
