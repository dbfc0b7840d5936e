/**
 * The toolkit's one PEM reader and writer (RFC 7468). Every package that accepts PEM text reads
 * it here, so that a block is used only under the label it carries: a reader asks for the labels
 * it accepts and gets nothing else. Node's own PEM parsing (`createPublicKey(text)`) is never
 * used on outside input, because it takes a public key out of any of several labels (a
 * `CERTIFICATE`, but also `X509 CERTIFICATE` or `TRUSTED CERTIFICATE`) without the checks a
 * certificate needs.
 *
 * Security posture: bounded (at most 1 MiB of text, linear time); the END label must equal the
 * BEGIN label; inside the armour only base64 and white space (no RFC 1421 headers); a wanted
 * block that is unterminated or damaged fails instead of being skipped.
 * @module
 */
import { fromBase64 } from './bytes.js';
import { SmkiError } from './errors.js';

/** Largest PEM text read (1 MiB of characters). */
export const MAX_PEM_CHARS = 1 << 20;

/** One PEM block: its label, the DER it carries, and where its BEGIN line starts in the text. */
export interface PemBlock {
  /** The label of the BEGIN and END lines, e.g. `CERTIFICATE`. */
  readonly label: string;
  /** The decoded base64 body (never empty). */
  readonly der: Uint8Array;
  /** Character offset of `-----BEGIN` in the text. */
  readonly offset: number;
}

/** Options of {@link pemBlocks} and {@link pemToDer}. */
export interface PemReadOptions {
  /**
   * RFC 7468 §3 "strict" reading: nothing but white space before, between and after the blocks
   * returned, and the base64 padded to a multiple of four characters. Default false: text outside
   * the blocks is ignored, as OpenSSL ignores it (certificate files often carry a human-readable
   * dump before the block).
   */
  readonly strict?: boolean;
  /** Largest text accepted, in characters (default and ceiling {@link MAX_PEM_CHARS}). */
  readonly maxChars?: number;
}

/** A block's armour: RFC 7468 labels as the toolkit reads them (upper-case letters, digits, spaces). */
const BLOCK = /-----BEGIN ([A-Z0-9 ]{1,40})-----([^-]*)-----END ([A-Z0-9 ]{1,40})-----/g;
const BEGIN = '-----BEGIN ';

function invalid(message: string, offset?: number, detail?: string, cause?: unknown): SmkiError<'ERR_PEM_INVALID'> {
  const context = { ...(offset !== undefined ? { offset } : {}), ...(detail !== undefined ? { detail } : {}) };
  return new SmkiError('ERR_PEM_INVALID', message, context, cause === undefined ? undefined : { cause });
}

/** Offsets of every `-----BEGIN ` in `text` (linear: indexOf from the last hit). */
function beginOffsets(text: string): number[] {
  const out: number[] = [];
  for (let i = text.indexOf(BEGIN); i >= 0; i = text.indexOf(BEGIN, i + BEGIN.length)) out.push(i);
  return out;
}

/**
 * Every PEM block of `text` with one of `labels`, in order; with `labels` omitted, every block
 * whatever its label.
 *
 * With `labels` given, blocks with other labels are skipped whatever they hold (a key file's
 * `EC PARAMETERS` block, a bundle's private key), but a block with a wanted label that is
 * unterminated, carries junk, or does not decode fails the whole read. With `labels` omitted,
 * every `-----BEGIN ` must start a well-formed block: a label outside `A–Z 0–9 space` (such as
 * `X.509 CERTIFICATE`) or an unterminated block fails, so no block can hide from the caller.
 *
 * @param text - the PEM text
 * @param labels - the labels wanted (exact, case-sensitive), or none for all
 * @param options - strict reading and a lower size limit
 * @throws SmkiError `ERR_PEM_INVALID` (with the character `offset` where it applies)
 * @see RFC 7468 §2 (general considerations), §3 (ABNF, lax and strict parsers)
 * @example
 * ```ts
 * import { pemBlocks } from '@smki/core';
 * const text = '-----BEGIN PUBLIC KEY-----\nAAEC\n-----END PUBLIC KEY-----\n';
 * console.log(pemBlocks(text).map((b) => b.label)); // [ 'PUBLIC KEY' ]
 * console.log(pemBlocks(text, ['CERTIFICATE'])); // []
 * ```
 */
export function pemBlocks(text: string, labels?: readonly string[], options: PemReadOptions = {}): PemBlock[] {
  if (typeof text !== 'string') throw invalid('PEM input must be a string', undefined, typeof text);
  const max = Math.min(options.maxChars ?? MAX_PEM_CHARS, MAX_PEM_CHARS);
  if (text.length > max) throw invalid(`PEM input over ${max} characters`, undefined, `${text.length} chars`);
  const strict = options.strict === true;
  const wanted = (label: string): boolean => labels === undefined || labels.includes(label);
  const out: PemBlock[] = [];
  const spans: [number, number][] = [];
  const re = new RegExp(BLOCK.source, 'g');
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const [all, begin, body, end] = m as unknown as [string, string, string, string];
    if (begin !== end) throw invalid(`BEGIN ${begin} closed by END ${end}`, m.index);
    if (!wanted(begin)) continue;
    const bodyStart = m.index + BEGIN.length + begin.length + 5;
    const bad = /[^\sA-Za-z0-9+/=]/.exec(body);
    if (bad) throw invalid(`junk inside PEM block ${begin}`, bodyStart + bad.index, 'a character outside base64');
    if (strict && body.replace(/\s+/g, '').length % 4 !== 0) throw invalid(`the base64 of PEM block ${begin} is not padded to a multiple of 4`, bodyStart);
    let der: Uint8Array;
    try {
      der = fromBase64(body);
    } catch (cause) {
      throw invalid(`bad base64 in PEM block ${begin}`, bodyStart, undefined, cause);
    }
    if (der.length === 0) throw invalid(`empty PEM block ${begin}`, m.index);
    out.push({ label: begin, der, offset: m.index });
    spans.push([m.index, m.index + all.length]);
  }
  // A wanted block the pattern did not match (unterminated, a '-' inside, a label outside the
  // pattern) must fail, not vanish.
  const begins = beginOffsets(text);
  const counted = labels === undefined ? begins : begins.filter((i) => labels.includes(labelAt(text, i)));
  if (counted.length !== out.length) {
    const starts = new Set(out.map((b) => b.offset));
    const first = counted.find((i) => !starts.has(i));
    throw invalid('a PEM block is unterminated, has junk inside or has a label this reader does not take', first, `${counted.length} BEGIN lines, ${out.length} blocks`);
  }
  if (out.length === 0 && /-----BEGIN /.test(text) && !/-----END /.test(text)) {
    throw invalid('PEM block without END line', text.indexOf(BEGIN));
  }
  if (strict && out.length > 0) {
    let at = 0;
    for (const [s, e] of [...spans, [text.length, text.length] as [number, number]]) {
      const gap = /\S/.exec(text.slice(at, s));
      if (gap) throw invalid(at === 0 ? 'text before the PEM block' : 'text outside the PEM block', at + gap.index);
      at = e;
    }
  }
  return out;
}

/** The label of the BEGIN line at `i`: up to `-----` or the end of the line, at most 64 characters. */
function labelAt(text: string, i: number): string {
  const start = i + BEGIN.length;
  const window = text.slice(start, start + 64);
  const close = window.indexOf('-----');
  const eol = window.search(/[\r\n]/);
  const stops = [close, eol].filter((n) => n >= 0);
  return stops.length === 0 ? window : window.slice(0, Math.min(...stops));
}

/**
 * The DER of the one PEM block with one of `labels` in `text` (with `labels` omitted: the one
 * block of any label). Zero or several such blocks fail.
 *
 * @param text - the PEM text
 * @param labels - the labels accepted, e.g. `['CERTIFICATE']`
 * @param options - strict reading and a lower size limit
 * @throws SmkiError `ERR_PEM_INVALID`
 * @see RFC 7468 §2, §3
 * @example
 * ```ts
 * import { pemToDer, toHex } from '@smki/core';
 * const { label, der } = pemToDer('-----BEGIN PUBLIC KEY-----\nAAEC\n-----END PUBLIC KEY-----\n', ['PUBLIC KEY']);
 * console.log(label, toHex(der)); // PUBLIC KEY 000102
 * ```
 */
export function pemToDer(text: string, labels?: readonly string[], options: PemReadOptions = {}): PemBlock {
  const blocks = pemBlocks(text, labels, options);
  if (blocks.length !== 1) {
    const what = labels === undefined ? 'PEM block' : labels.map((l) => `"-----BEGIN ${l}-----" block`).join(' or ');
    throw invalid(blocks.length === 0 ? `no ${what}` : `more than one ${what}`, blocks[1]?.offset ?? 0, `${blocks.length} blocks`);
  }
  return blocks[0] as PemBlock;
}

/**
 * PEM text for DER bytes under a label: BEGIN line, base64 in 64-character lines, END line, each
 * ending in `\n` (RFC 7468 §3 strict form, as OpenSSL writes it).
 * @see RFC 7468 §2, §3
 * @example
 * ```ts
 * import { derToPem } from '@smki/core';
 * console.log(derToPem(new Uint8Array([0, 1, 2]), 'PUBLIC KEY'));
 * // -----BEGIN PUBLIC KEY-----
 * // AAEC
 * // -----END PUBLIC KEY-----
 * ```
 */
export function derToPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
