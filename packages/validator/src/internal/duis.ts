/**
 * The DUIS step of {@link Validator.validateDuisRequest}: a signed pre-command Request's XML
 * signature, its body, the GBCS command it carries and that command's binding to the request id
 * and to the XML signer, and only then the claim of the request id (docs/domain.md §8).
 * @module
 */
import { SmkiError } from '@smki/core';
import type { Eui64, SmkiErrorCode } from '@smki/core';
import { claimRequestId, signedPreCommandFromRequest, verifyDuis } from '@smki/duis';
import type { VerifiedDuis, VerifyDuisOptions } from '@smki/duis';
import type { GbcsMessage } from '@smki/gbcs';
import type { DuisRequestFacts, ValidatorDuisOptions } from '../types.js';

/** What the DUIS step established: the GBCS bytes to decide on, and who signed them in XML. */
export interface DuisChecked {
  /** The signed GBCS pre-command, from the document as verified. */
  readonly signedPreCommand: Uint8Array;
  /** Its parsed view (the originator and recipient checked against the request id and the XML signer). */
  readonly message: GbcsMessage;
  /** The XML signer's entity: the sender the GBCS decision holds the originator to. */
  readonly sender: Eui64;
  /** The verified Request's fields. */
  readonly request: DuisRequestFacts;
}

/**
 * A refusal at the DUIS step, with what was known when it was made: the Request's fields once its
 * signature verified, the GBCS command once it parsed.
 */
export class DuisRefusal {
  constructor(
    readonly error: SmkiError,
    readonly request: DuisRequestFacts | undefined,
    readonly gbcs: GbcsMessage | undefined,
    readonly sender: Eui64 | undefined,
  ) {}
}

function facts(v: VerifiedDuis): DuisRequestFacts {
  return {
    requestId: v.requestIdText,
    originator: v.originator,
    target: v.target,
    counter: v.counter,
    ...(v.serviceReference !== undefined ? { serviceReference: v.serviceReference } : {}),
    ...(v.serviceReferenceVariant !== undefined ? { serviceReferenceVariant: v.serviceReferenceVariant } : {}),
    ...(v.commandVariant !== undefined ? { commandVariant: v.commandVariant } : {}),
    body: v.body,
    xmlSignerSerial: v.certificate.serialNumber,
  };
}

function refuse(code: SmkiErrorCode, message: string): never {
  throw new SmkiError(code, message, {});
}

/**
 * Run the DUIS step on a Request as received. Throws a {@link DuisRefusal} for every refusal.
 *
 * With `replay`, the request id is claimed after this entry's own checks (`claimRequestId`), so
 * that a Request it refuses (another body, a GBCS command not bound to the request id or to the
 * signer) does not use its request id.
 */
export async function checkDuisRequest(doc: string | Uint8Array, duis: ValidatorDuisOptions, now: Date): Promise<DuisChecked> {
  const trust = duis.trust;
  const base: VerifyDuisOptions = { expect: 'request', now, ...(duis.maxBytes !== undefined ? { maxBytes: duis.maxBytes } : {}) };
  let request: DuisRequestFacts | undefined;
  let message: GbcsMessage | undefined;
  let sender: Eui64 | undefined;
  try {
    // 1. The XML signature under the profile: the certificate by issuer and serial, its path and
    //    revocation, role 135 and the request id's originator (no claim yet).
    const verified = await verifyDuis(doc, trust, base);
    request = facts(verified);
    sender = verified.certificate.entityId as Eui64 | undefined;
    // 2. This entry takes signed pre-commands only.
    if (verified.body !== 'SignedPreCommand') refuse('ERR_DUIS_DOCUMENT_KIND', `the body is sr:${verified.body}, not sr:SignedPreCommand`);
    // 3. The signed GBCS pre-command from the document as verified. @smki/duis checks its header
    //    against the request id; checked here again, so that the binding cannot go unnoticed.
    const taken = await signedPreCommandFromRequest(verified);
    message = taken.message;
    if (message.originator !== verified.originator || message.recipient !== verified.target) {
      refuse(
        'ERR_DUIS_GBCS_MISMATCH',
        `the signed pre-command's GBCS header (originator ${message.originator}, recipient ${message.recipient}) is not the request id's (${verified.originator}, ${verified.target})`,
      );
    }
    // 4. The XML signer is the GBCS originator (it is, through the request id: asserted anyway).
    if (sender === undefined || sender !== message.originator) {
      refuse('ERR_DUIS_SIGNER_NOT_ORIGINATOR', `the XML signer's entity ${sender ?? '(none)'} is not the GBCS originator ${message.originator}`);
    }
    // The request id is claimed only now, after every check of this entry.
    if (duis.replay !== undefined) await claimRequestId(duis.replay, verified, now);
    return { signedPreCommand: taken.signedPreCommand, message, sender, request };
  } catch (e) {
    const error = e instanceof SmkiError ? e : new SmkiError('ERR_INVALID_ARGUMENT', `the DUIS check failed: ${e instanceof Error ? e.message : String(e)}`, {});
    throw new DuisRefusal(error, request, message, sender);
  }
}
