import { isSmkiError, toHex } from '../../packages/core/src/index.js';
import type { GbcsMessage } from '../../packages/gbcs/src/index.js';

/** A parsed message in the spelling of test-vectors/gbcs/messages.json: bigints as decimal strings, bytes as hex, ranges as pairs. */
export function gbcsFields(m: GbcsMessage): Record<string, unknown> {
  return {
    frame: m.frame,
    cra: m.cra,
    originatorCounter: m.originatorCounter.toString(),
    originator: m.originator,
    recipient: m.recipient,
    ...(m.dateTime ? { dateTime: toHex(m.dateTime) } : {}),
    messageCode: m.messageCode.toString(16).toUpperCase().padStart(4, '0'),
    ...(m.supplementaryRemotePartyId !== undefined ? { supplementaryRemotePartyId: m.supplementaryRemotePartyId } : {}),
    ...(m.supplementaryRemotePartyCounter !== undefined ? { supplementaryRemotePartyCounter: m.supplementaryRemotePartyCounter.toString() } : {}),
    ...(m.supplementaryOriginatorCounter !== undefined ? { supplementaryOriginatorCounter: m.supplementaryOriginatorCounter.toString() } : {}),
    ...(m.keyAgreementCertificate ? { keyAgreementCertificate: toHex(m.keyAgreementCertificate) } : {}),
    payload: toHex(m.payload),
    signatureField: m.signatureField,
    signature: m.signature ? toHex(m.signature) : null,
    ...(m.mac ? { mac: toHex(m.mac) } : {}),
    apduRange: [m.apduRange.start, m.apduRange.end],
    signedRange: [m.signedRange.start, m.signedRange.end],
  };
}

/** Run `f`, giving its value or the code and offset of the SmkiError it throws (any other exception propagates). */
export function outcome<T>(f: () => T): { value?: T; code?: string; offset?: number } {
  try {
    return { value: f() };
  } catch (e) {
    if (!isSmkiError(e)) throw e;
    const o = (e.context as { offset?: unknown }).offset;
    return { code: e.code, ...(typeof o === 'number' ? { offset: o } : {}) };
  }
}
