/**
 * The exit statuses of `smki`, one table (documented in the package README and kept by a test).
 * @module
 * @internal
 */

/**
 * Every exit status of `smki`, by name. A script tells the outcomes apart by status alone:
 * `OK` 0, `REJECTED` 1 (a command refused, or an input that fails its check: a certificate, a
 * signature, an audit trail), `USAGE` 2 (a command line that does not parse), `QUARANTINED` 3 (a
 * command held by the anomaly threshold), `RETRY` 4 (a store or HSM unreachable: worth retrying
 * unchanged), `STATE` 5 (the state directory is missing, locked or damaged, or a secret is
 * missing or wrong), `INTERNAL` 70 (a defect: please report it).
 */
export const EXIT_CODES = {
  /** Done as asked. */
  OK: 0,
  /** A command refused, or an input that fails its check (a certificate, a signature, an audit trail). */
  REJECTED: 1,
  /** A command line that does not parse. */
  USAGE: 2,
  /** A command held by the anomaly threshold, for an operator to release or discard. */
  QUARANTINED: 3,
  /** A store or HSM unreachable: nothing changed; worth retrying unchanged. */
  RETRY: 4,
  /** The state directory is missing, locked or damaged, or a secret is missing or wrong. */
  STATE: 5,
  /** A defect: please report it. */
  INTERNAL: 70,
} as const;

/** A name of {@link EXIT_CODES}. */
export type ExitCodeName = keyof typeof EXIT_CODES;

/** Codes that say a store or HSM could not be reached: the same command may succeed later. */
const RETRY_CODES: ReadonlySet<string> = new Set(['ERR_STORE_UNAVAILABLE', 'ERR_HSM_UNAVAILABLE', 'ERR_KEYSTORE_LOCKED', 'ERR_AUDIT_WRITE_FAILED']);

/** Codes that say the state directory, a store or a secret is wrong, not the input. */
const STATE_CODES: ReadonlySet<string> = new Set([
  'ERR_CLI_SECRET_MISSING',
  'ERR_CLI_STATE_INVALID',
  'ERR_CLI_STATE_EXISTS',
  'ERR_KEYSTORE_WRONG_PASSPHRASE',
  'ERR_KEYSTORE_CORRUPT',
  'ERR_KEYSTORE_METADATA_ROLLBACK',
  'ERR_KEYSTORE_CLOSED',
  'ERR_KEY_FILE_CORRUPT',
  'ERR_HSM_LOGIN_FAILED',
  'ERR_STORE_CORRUPT',
  'ERR_STORE_SCHEMA',
  'ERR_STORE_CLOSED',
  'ERR_STORE_LOG_CONFLICT',
  'ERR_VALIDATOR_STATE_BEHIND',
  'ERR_AUDIT_TAMPERED',
  'ERR_AUDIT_TRUNCATED',
  'ERR_KEYSTORE_MIGRATION_REQUIRED',
  'ERR_KEYSTORE_ROW_TAMPERED',
]);

/** The exit status for an error code (a toolkit code; anything else is internal). */
export function exitForCode(code: string | undefined): ExitCodeName {
  if (code === undefined) return 'INTERNAL';
  if (code === 'ERR_CLI_USAGE') return 'USAGE';
  if (code === 'ERR_COMMAND_QUARANTINED') return 'QUARANTINED';
  if (RETRY_CODES.has(code)) return 'RETRY';
  if (STATE_CODES.has(code)) return 'STATE';
  return 'REJECTED';
}

/** One line on what to do, for the codes a user meets at the command line; else by exit class. */
const HINTS: Readonly<Record<string, string>> = {
  ERR_CLI_USAGE: 'see `smki <command> --help` for the arguments and an example',
  ERR_CLI_SECRET_MISSING: 'set SMKI_KEYSTORE_PASSPHRASE (or SMKI_HSM_PIN), or give --passphrase-file / --pin-file',
  ERR_CLI_STATE_INVALID: 'run `smki init <dir>` first, or point --dir (or SMKI_DIR) at an initialised state directory',
  ERR_CLI_STATE_EXISTS: 'choose a new or empty directory; smki init never overwrites state',
  ERR_CLI_INPUT_INVALID: 'check the input the message names (a command batch is one command per line in the --format given)',
  ERR_CLI_WRITE_FAILED: 'check the path (not a directory, its folder exists), the permissions and the free space; nothing was replaced',
  ERR_CLI_NOT_FOUND: 'list what exists with `smki portfolio list`, `smki device show` or `smki cert inspect`',
  ERR_KEYSTORE_WRONG_PASSPHRASE: 'the passphrase does not open this state directory; check SMKI_KEYSTORE_PASSPHRASE or --passphrase-file',
  ERR_KEYSTORE_LOCKED: 'another smki process holds the key store; wait for it to finish and retry',
  ERR_STORE_UNAVAILABLE: 'the state store is unreachable (PostgreSQL down, disk full?); nothing was changed; retry when it is back',
  ERR_HSM_UNAVAILABLE: 'the HSM (PKCS#11 module or token) is unreachable; nothing was changed; retry when it is back',
  ERR_HSM_LOGIN_FAILED: 'the PIN does not open the token; check SMKI_HSM_PIN or --pin-file',
  ERR_VALIDATOR_STATE_BEHIND: 'the state store is older than the decision log (restored backup?): put back the current store before validating',
  ERR_AUDIT_TAMPERED: 'the audit trail or decision log was altered: keep the files as evidence and investigate',
  ERR_AUDIT_TRUNCATED: 'the audit trail or decision log lost records: keep the files as evidence and investigate',
  ERR_COMMAND_REPLAYED: 'build the command again with a counter above the last accepted one',
  ERR_COMMAND_PORTFOLIO_MISMATCH: 'sign with the key of the portfolio the meter belongs to (`smki device show <eui>`)',
  ERR_COMMAND_SIGNER_REVOKED: "the signer's certificate is revoked: rotate to a new key and certificate",
  ERR_COMMAND_UNKNOWN_DEVICE: 'register the device first (`smki device add` or `smki device import`)',
  ERR_FIRMWARE_NOT_APPROVED: 'approve the image for the model first (`smki firmware approve`), unless it was revoked on purpose',
  ERR_COMMAND_QUARANTINED: 'an operator releases or discards the held command after review',
  ERR_DUIS_REPLAYED: 'the request id was used before: sign the Request again with a new counter (`smki duis sign --counter now`)',
  ERR_DUIS_STALE: 'the request id counter is not the current time in milliseconds: sign again with `smki duis sign --counter now`, or check the clocks',
  ERR_DUIS_PRECOMMAND_UNEXPECTED: 'a signed pre-command is accepted once, after its service request and before the next one: send the service request first',
  ERR_DUIS_DIGEST_MISMATCH: 'the document was changed after it was signed: use the document as signed, or sign it again',
  ERR_DUIS_SIGNATURE_INVALID: "the signature does not verify with the named certificate's key: the document's signature was altered or made with another key",
  ERR_DUIS_CERTIFICATE_NOT_FOUND: "the signer's certificate is not among this state directory's certificates (certs/organisation/): issue or import it, or check the document's KeyInfo",
  ERR_DUIS_DOCUMENT_KIND: 'check --expect: the DCC verifies Requests, a User verifies Responses',
  ERR_KEYSTORE_MIGRATION_REQUIRED: 'the key store was made by an earlier release: run `smki keystore migrate` once, then retry',
  ERR_OPERATOR_REQUIRED: 'the key store is under access control: give --operator ID --operator-key FILE (`smki operator list` shows the operators)',
  ERR_OPERATOR_REPLAYED: "a signed request is accepted once: sign a new one (the CLI takes the operator's next counter from the store)",
  ERR_OPERATOR_REQUEST_STALE: 'a signed request is accepted within minutes of being made: sign it again, or check the clocks',
  ERR_OPERATOR_FORBIDDEN: "the operator's grants do not cover this operation here: `smki operator list` shows them",
  ERR_OPERATOR_UNKNOWN: '`smki operator list` shows the operators (a removed one signs nothing)',
  ERR_APPROVAL_REQUIRED: 'the policy puts this under dual control: run it with --propose, have other operators run `smki approve <id>`, then run it with --proposal <id>',
  ERR_PROPOSAL_QUORUM_NOT_MET: 'more approvals are needed: other operators run `smki approve <id>` (`smki proposal show <id>` shows the proposal)',
  ERR_DUIS_SIGNER_NOT_ORIGINATOR: "a Request is signed by its originator: the request id's originator must be the XML-signing certificate's entity",
};

/** Hints given to one error where its code's general line would mislead (e.g. what a state directory lacks). */
const OWN_HINTS = new WeakMap<object, string>();

/** Give `error` its own line on what to do (reported instead of its code's general hint). */
export function withHint<E extends Error>(error: E, hint: string): E {
  OWN_HINTS.set(error, hint);
  return error;
}

/** The line on what to do about `error`: its own, else its code's. */
export function hintOf(error: unknown, code: string | undefined): string {
  return (typeof error === 'object' && error !== null ? OWN_HINTS.get(error) : undefined) ?? hintFor(code);
}

/** One line on what to do about an error with this code. */
export function hintFor(code: string | undefined): string {
  if (code !== undefined && Object.hasOwn(HINTS, code)) return HINTS[code]!;
  switch (exitForCode(code)) {
    case 'RETRY':
      return 'a store or HSM could not be reached; nothing was changed; retry';
    case 'STATE':
      return 'the state directory or a store is damaged or inconsistent: restore it from a backup or investigate';
    case 'INTERNAL':
      return 'this is a defect in smki: please report it with the command line (never with secrets)';
    default:
      return 'the input was refused for the reason given; see docs/errors.md for the code';
  }
}
