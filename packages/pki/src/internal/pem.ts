import { fromBase64, SmkiError } from '@smki/core';

const MAX_PEM_CHARS = 1 << 20;

/**
 * The DER inside one PEM block with the given label (e.g. `CERTIFICATE`). Text outside the armour
 * is ignored (as OpenSSL does); inside it only base64 and white space are accepted, and the
 * END label must match the BEGIN label.
 * @throws SmkiError `ERR_PEM_INVALID`
 */
export function pemToDer(text: string, labels: readonly string[]): { label: string; der: Uint8Array } {
  const blocks = pemBlocks(text, labels);
  if (blocks.length !== 1) {
    throw new SmkiError('ERR_PEM_INVALID', blocks.length === 0 ? `no PEM block labelled ${labels.join(' or ')}` : 'more than one PEM block', {
      detail: `${blocks.length} blocks`,
    });
  }
  return blocks[0] as { label: string; der: Uint8Array };
}

/**
 * Every PEM block with one of the given labels, in order.
 * @throws SmkiError `ERR_PEM_INVALID`
 */
export function pemBlocks(text: string, labels: readonly string[]): { label: string; der: Uint8Array }[] {
  if (typeof text !== 'string') throw new SmkiError('ERR_PEM_INVALID', 'PEM input must be a string', { detail: typeof text });
  if (text.length > MAX_PEM_CHARS) throw new SmkiError('ERR_PEM_INVALID', 'PEM input over 1 MiB', { detail: `${text.length} chars` });
  const out: { label: string; der: Uint8Array }[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]{1,40})-----([^-]*)-----END ([A-Z0-9 ]{1,40})-----/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const [, begin, body, end] = m as unknown as [string, string, string, string];
    if (begin !== end) throw new SmkiError('ERR_PEM_INVALID', `BEGIN ${begin} closed by END ${end}`, { offset: m.index });
    if (!labels.includes(begin)) continue;
    if (!/^[\sA-Za-z0-9+/=]*$/.test(body)) throw new SmkiError('ERR_PEM_INVALID', `junk inside PEM block ${begin}`, { offset: m.index });
    let der: Uint8Array;
    try {
      der = fromBase64(body);
    } catch (cause) {
      throw new SmkiError('ERR_PEM_INVALID', `bad base64 in PEM block ${begin}`, { offset: m.index }, { cause });
    }
    if (der.length === 0) throw new SmkiError('ERR_PEM_INVALID', `empty PEM block ${begin}`, { offset: m.index });
    out.push({ label: begin, der });
  }
  // A wanted block the pattern did not match (unterminated, or a '-' inside) must fail, not vanish.
  let begins = 0;
  for (const label of new Set(labels)) begins += text.split(`-----BEGIN ${label}-----`).length - 1;
  if (begins !== out.length) {
    throw new SmkiError('ERR_PEM_INVALID', 'a PEM block is unterminated or has junk inside', { detail: `${begins} BEGIN lines, ${out.length} blocks` });
  }
  if (out.length === 0 && /-----BEGIN /.test(text) && !/-----END /.test(text)) {
    throw new SmkiError('ERR_PEM_INVALID', 'PEM block without END line', {});
  }
  return out;
}

/** PEM text (64-column base64) for DER bytes under a label. */
export function derToPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
