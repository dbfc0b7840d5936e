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
  OK: 0,
  REJECTED: 1,
  USAGE: 2,
  QUARANTINED: 3,
  RETRY: 4,
  STATE: 5,
  INTERNAL: 70,
} as const;

/** A name of {@link EXIT_CODES}. */
export type ExitCodeName = keyof typeof EXIT_CODES;
