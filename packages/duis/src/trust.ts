/**
 * The certificates and CRLs a DUIS verifier trusts, and its cache of path verdicts.
 * @module
 */
import { SmkiError } from '@smki/core';
import type { SmkiErrorCode } from '@smki/core';
import { TrustStore, createPathValidator, parseCrl, toCertificate } from '@smki/pki';
import type { CertificateInput, CrlInput, PathValidator, SmkiCertificate, SmkiCrl, SmkiEnvironment } from '@smki/pki';
import { rfc2253, serialToDecimal } from './internal/names.js';

/** Options of {@link DuisTrust}. */
export interface DuisTrustOptions {
  /**
   * Roots, CAs and the XML-signing certificates (Users' role 135, the DCC's role 137). Copied
   * when given. KeyInfo only names a certificate (issuer and serial); it is looked up here.
   */
  readonly certificates: TrustStore | Iterable<CertificateInput>;
  /** CRLs and ARLs. Revocation is always required: a path without a current CRL is refused. */
  readonly crls: readonly CrlInput[];
  /** Policy OIDs and profiles (default the test environment). */
  readonly environment?: SmkiEnvironment;
  /** Seconds a CRL stays usable after its nextUpdate (default the environment's). */
  readonly crlGraceSeconds?: number;
  /** Most path verdicts cached (default 4096; 0 for none). */
  readonly cacheSize?: number;
}

/** A path verdict. */
type Verdict = { readonly ok: true } | { readonly ok: false; readonly code: SmkiErrorCode; readonly message: string };

/**
 * The one profile error tolerated: a DCC XML-signing certificate still in use spells role 137 in
 * its OU as the decimal `137` instead of two hex digits (docs/domain.md §8). Only that finding,
 * only on the leaf, only for that spelling of that role; the verification reports it as a warning.
 */
function tolerated(cert: SmkiCertificate, errors: readonly { readonly code: SmkiErrorCode; readonly certificateIndex?: number }[]): boolean {
  return (
    errors.length > 0 &&
    cert.role === 137 &&
    cert.details.ou === '137' &&
    errors.every((f) => f.code === 'ERR_PROFILE_ORG_ROLE_FORMAT' && f.certificateIndex === 0)
  );
}

/** How long a negative verdict is kept (a certificate not yet valid may become valid). */
const NEGATIVE_TTL_MS = 60_000;

/**
 * What a DUIS verifier trusts: a private copy of the certificates (indexed by RFC 2253 issuer
 * name and decimal serial, the way KeyInfo names them), the CRLs, and a path validator that
 * always requires revocation. A path verdict is cached per certificate until the earliest of its
 * path's notAfter and the CRLs' nextUpdate (plus grace); a failure for at most a minute.
 *
 * @throws SmkiError `ERR_INVALID_ARGUMENT`, `ERR_CERT_MALFORMED`, `ERR_PEM_INVALID`, `ERR_CRL_MALFORMED`,
 *   `ERR_TRUST_STORE_SERIAL_CONFLICT` (from the constructor)
 * @see RFC 5280 §6.1 (path validation), docs/domain.md §8
 * @example
 * ```ts
 * import { createHierarchy, issueCrl } from '@smki/pki';
 * import { DuisTrust } from '@smki/duis';
 * const h = await createHierarchy();
 * const crl = await issueCrl({ issuer: h.organisationCa, crlNumber: 1n, kind: 'crl' });
 * const arl = await issueCrl({ issuer: h.root, crlNumber: 1n, kind: 'arl' });
 * const trust = new DuisTrust({ certificates: [h.root.certificate, h.organisationCa.certificate], crls: [crl, arl] });
 * console.log(trust.size); // 2
 * ```
 */
export class DuisTrust {
  readonly #store: TrustStore;
  readonly #byIssuerSerial = new Map<string, SmkiCertificate>();
  readonly #paths: PathValidator;
  readonly #crlHorizon: number;
  readonly #cacheSize: number;
  readonly #verdicts = new Map<string, { verdict: Verdict; until: number }>();

  /** @throws SmkiError see the class */
  constructor(options: DuisTrustOptions) {
    if (typeof options !== 'object' || options === null) throw new SmkiError('ERR_INVALID_ARGUMENT', 'trust options are required', { detail: 'options' });
    if (!Array.isArray(options.crls)) throw new SmkiError('ERR_INVALID_ARGUMENT', 'crls must be an array of CRLs and ARLs', { detail: 'crls' });
    const cacheSize = options.cacheSize ?? 4096;
    if (!Number.isSafeInteger(cacheSize) || cacheSize < 0) throw new SmkiError('ERR_INVALID_ARGUMENT', 'cacheSize must be a non-negative integer', { detail: String(cacheSize) });
    this.#cacheSize = cacheSize;
    const given = options.certificates instanceof TrustStore ? [...options.certificates] : [...(options.certificates ?? [])].map((c) => toCertificate(c));
    this.#store = new TrustStore(given);
    for (const c of this.#store) this.#byIssuerSerial.set(`${rfc2253(c.issuer)}|${serialToDecimal(c.serialNumber)}`, c);
    const crls: SmkiCrl[] = options.crls.map((c) => parseCrl(c));
    this.#paths = createPathValidator({
      anchors: [...this.#store.anchors()],
      intermediates: [...this.#store.intermediates()],
      crls,
      requireRevocation: true,
      ...(options.environment ? { environment: options.environment } : {}),
      ...(options.crlGraceSeconds !== undefined ? { crlGraceSeconds: options.crlGraceSeconds } : {}),
    });
    const graceMs = (options.crlGraceSeconds ?? this.#paths.environment.crlGraceSeconds ?? 0) * 1000;
    let horizon = Infinity;
    for (const c of crls) horizon = Math.min(horizon, c.nextUpdate ? c.nextUpdate.getTime() + graceMs : -Infinity);
    this.#crlHorizon = horizon;
  }

  /** How many certificates are trusted. */
  get size(): number {
    return this.#store.size;
  }

  /**
   * The certificate KeyInfo names: issuer name in RFC 2253 form (as written by the signer, no
   * space after commas) and serial number in decimal. Both must match; never the serial alone.
   */
  find(issuerName: string, serialDecimal: string): SmkiCertificate | undefined {
    return this.#byIssuerSerial.get(`${issuerName}|${serialDecimal}`);
  }

  /** @internal The path verdict for a certificate at `now` (ms), revocation required; cached. */
  verdict(cert: SmkiCertificate, now: number): Verdict {
    const hit = this.#verdicts.get(cert.fingerprint);
    if (hit !== undefined && hit.until > now) return hit.verdict;
    const result = this.#paths.validate(cert, { at: new Date(now) });
    let until = Math.min(this.#crlHorizon, ...result.path.map((c) => c.notAfter.getTime()));
    let verdict: Verdict;
    const errors = result.findings.filter((f) => f.severity === 'error');
    if (result.revocationChecked && (result.valid || tolerated(cert, errors))) {
      verdict = { ok: true };
    } else {
      const revoked = errors.find((f) => f.code === 'ERR_REVOKED');
      const first = revoked ?? errors[0];
      verdict = {
        ok: false,
        code: revoked ? 'ERR_DUIS_CERTIFICATE_REVOKED' : 'ERR_DUIS_CERTIFICATE_PATH_INVALID',
        message: first ? `${first.code}: ${first.message}` : 'no valid certification path with revocation checked',
      };
      until = Math.min(until, now + NEGATIVE_TTL_MS);
    }
    if (until > now && this.#cacheSize > 0) {
      this.#verdicts.delete(cert.fingerprint);
      this.#verdicts.set(cert.fingerprint, { verdict, until });
      if (this.#verdicts.size > this.#cacheSize) this.#verdicts.delete(this.#verdicts.keys().next().value as string);
    }
    return verdict;
  }
}
