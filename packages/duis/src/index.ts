/**
 * `@smki/duis`: DUIS XML signatures for GB smart metering, both sides. A User signs its service
 * requests and signed pre-commands; the DCC (or a User checking a Response) verifies them under
 * the profile, with the certificate looked up by issuer and serial, its path, revocation,
 * validity and role checked, and anti-replay on request ids.
 *
 * Security posture: fail closed. A document that breaks the profile in any way is refused with
 * its own code; what a caller may process is only the document as verified.
 * @see docs/domain.md §8
 * @module
 */
export { parseRequestId, formatRequestId } from './message.js';
export type { RequestId } from './message.js';
export { DuisTrust } from './trust.js';
export type { DuisTrustOptions } from './trust.js';
export { DEFAULT_MAX_DUIS_BYTES, signRequest, signResponse } from './sign.js';
export type { SignRequestOptions, SignedDuis } from './sign.js';
export { claimRequestId, verifyDuis } from './verify.js';
export type { DuisReplayOptions, VerifyDuisOptions, VerifiedDuis } from './verify.js';
export type { DuisKind } from './internal/document.js';
export { preCommandFromResponse, signedPreCommandRequest, signedPreCommandFromRequest } from './precommand.js';
export type {
  PreCommand,
  PreCommandSigner,
  PreCommandUse,
  SignedPreCommandHeader,
  SignedPreCommandRequest,
  SignedPreCommandRequestOptions,
  SignedPreCommandTaken,
} from './precommand.js';
