import { SmkiError } from '@smki/core';
import type { Eui64, SmkiErrorCode } from '@smki/core';
import { TrustStore, createPathValidator, parseCrl, toCertificate } from '@smki/pki';
import type { PathValidator, SmkiCertificate, SmkiCrl } from '@smki/pki';
import type { CrlStatus, ValidatorTrust } from '../types.js';
import { Lru } from './lru.js';

/** A cached path verdict for one certificate. */
export type Verdict = { readonly ok: true } | { readonly ok: false; readonly code: SmkiErrorCode; readonly message: string };

/** How long a negative verdict is kept (a certificate not yet valid may become valid). */
const NEGATIVE_TTL_MS = 60_000;

const OK: Verdict = Object.freeze({ ok: true });

/** The most certificates of one entity tried when looking for the key a signature was made with. */
export const MAX_PORTFOLIO_LOOKUP = 16;

/**
 * The trust the validator decides with: a private copy of the certificates, the CRLs, a path
 * validator that requires revocation, and a bounded cache of path verdicts that lives until the
 * earliest of the certificate's notAfter, the CRLs' nextUpdate, or a change of either.
 */
export class TrustState {
  readonly store: TrustStore;
  readonly crls: readonly SmkiCrl[];
  readonly #paths: PathValidator;
  readonly #verdicts: Lru<string, Verdict>;
  readonly #crlHorizon: number;
  readonly #graceMs: number;

  constructor(trust: ValidatorTrust, cacheSize: number) {
    if (typeof trust !== 'object' || trust === null) throw new SmkiError('ERR_INVALID_ARGUMENT', 'trust is required', { detail: 'trust' });
    if (!Array.isArray(trust.crls)) throw new SmkiError('ERR_INVALID_ARGUMENT', 'trust.crls must be an array of CRLs and ARLs', { detail: 'trust.crls' });
    const certificates = trust.certificates instanceof TrustStore ? [...trust.certificates] : [...(trust.certificates ?? [])].map((c) => toCertificate(c));
    this.store = new TrustStore(certificates);
    this.crls = Object.freeze(trust.crls.map((c) => parseCrl(c)));
    this.#paths = createPathValidator({
      anchors: [...this.store.anchors()],
      intermediates: [...this.store.intermediates()],
      crls: [...this.crls],
      requireRevocation: true,
      ...(trust.environment ? { environment: trust.environment } : {}),
      ...(trust.crlGraceSeconds !== undefined ? { crlGraceSeconds: trust.crlGraceSeconds } : {}),
    });
    this.#graceMs = (trust.crlGraceSeconds ?? this.#paths.environment.crlGraceSeconds ?? 0) * 1000;
    let horizon = Infinity;
    for (const c of this.crls) horizon = Math.min(horizon, c.nextUpdate ? c.nextUpdate.getTime() + this.#graceMs : -Infinity);
    this.#crlHorizon = horizon;
    this.#verdicts = new Lru(cacheSize);
  }

  /** The organisation signing certificates of an entity in a role. */
  signingCertificates(entity: Eui64, role: number): readonly SmkiCertificate[] {
    return this.store.findByEntity(entity, role, 'digitalSignature');
  }

  /** Certificates by subject key identifier. */
  bySki(ski: string): readonly SmkiCertificate[] {
    return this.store.findBySubjectKeyId(ski);
  }

  /** Whether the certificate has a valid path now, revocation checked (cached). */
  verdict(cert: SmkiCertificate, now: number): Verdict {
    const cached = this.#verdicts.get(cert.fingerprint, now);
    if (cached !== undefined) return cached;
    const result = this.#paths.validate(cert, { at: new Date(now) });
    let until = Math.min(this.#crlHorizon, ...result.path.map((c) => c.notAfter.getTime()));
    let verdict: Verdict;
    if (result.valid && result.revocationChecked) {
      verdict = OK;
    } else {
      verdict = failure(result.findings);
      until = Math.min(until, now + NEGATIVE_TTL_MS);
    }
    if (until > now) this.#verdicts.set(cert.fingerprint, verdict, until);
    return verdict;
  }

  /**
   * The freshness of each CRL at `now`, given the warning time. Expired as path validation judges
   * it: the whole second of `now` past nextUpdate plus the grace (CRL times are whole seconds).
   */
  crlStatus(now: number, warningMs: number): CrlStatus[] {
    const second = Math.floor(now / 1000) * 1000;
    return this.crls.map((c) => {
      const next = c.nextUpdate?.getTime();
      const state = next === undefined || second > next + this.#graceMs ? 'expired' : now >= next - warningMs ? 'expiring' : 'fresh';
      return {
        issuer: c.issuer.text,
        ...(c.crlNumber !== undefined ? { crlNumber: c.crlNumber } : {}),
        thisUpdate: c.thisUpdate,
        ...(c.nextUpdate ? { nextUpdate: c.nextUpdate } : {}),
        state,
      };
    });
  }
}

function failure(findings: readonly { readonly code: SmkiErrorCode; readonly message: string; readonly severity: string }[]): Verdict {
  const errors = findings.filter((f) => f.severity === 'error');
  const pick = (match: (code: SmkiErrorCode) => boolean, code: SmkiErrorCode): Verdict | undefined => {
    const f = errors.find((x) => match(x.code));
    return f ? { ok: false, code, message: `${f.code}: ${f.message}` } : undefined;
  };
  return (
    pick((c) => c === 'ERR_REVOKED', 'ERR_COMMAND_SIGNER_REVOKED') ??
    pick((c) => c === 'ERR_CHAIN_EXPIRED' || c === 'ERR_CHAIN_NOT_YET_VALID', 'ERR_COMMAND_SIGNER_EXPIRED') ??
    pick((c) => c.startsWith('ERR_CRL_'), 'ERR_COMMAND_REVOCATION_UNKNOWN') ?? {
      ok: false,
      code: 'ERR_COMMAND_SIGNER_PATH_INVALID',
      message: errors[0] ? `${errors[0].code}: ${errors[0].message}` : 'no valid certification path with revocation checked',
    }
  );
}
