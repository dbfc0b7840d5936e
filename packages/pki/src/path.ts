/**
 * Certification path building and validation for SMKI (RFC 5280 §6.1 with the SMKI rules of
 * docs/domain.md §2), with revocation from CRLs and ARLs (RFC 5280 §6.3).
 *
 * Two steps, as RFC 4158 recommends: {@link buildPaths} finds every candidate path from a leaf
 * to a trusted anchor (trying every issuer whose subject equals the leaf's issuer name, since one
 * CA name can have several keys and generations); {@link validatePath} checks each candidate and
 * returns the first fully valid one, or the best failing one with its findings.
 *
 * Security posture: fail closed. Every check that throws becomes an error finding; a result is
 * valid only when no error finding was produced. Anchors are trusted as given (their own
 * signature and revocation are not checked) but must still be CAs, in date and within profile.
 * @module
 */
import type { KeyObject } from 'node:crypto';
import {
  equalBytes,
  isSmkiError,
  SmkiError,
  verifyDer,
  type Finding,
  type SmkiErrorCode,
  type SmkiErrorContext,
} from '@smki/core';
import { parseCrl, type CrlInput, type SmkiCrl } from './crl.js';
import { OID, TEST_ENVIRONMENT, type SmkiEnvironment } from './environment.js';
import { KNOWN_EXTENSIONS } from './internal/extensions.js';
import { certificateProfile, lintCertificate } from './lint.js';
import { toCertificate } from './parse.js';
import type { CertificateInput, CertificateKind, SmkiCertificate } from './types.js';

/**
 * Most certificates in an SMKI path, leaf and anchor included: leaf, one issuing CA, the root
 * (docs/domain.md §2).
 */
export const DEFAULT_MAX_PATH_DEPTH = 3;

/** Hard upper bound for `maxDepth`. */
const MAX_PATH_DEPTH_LIMIT = 8;
/** Most candidate paths built for one leaf (bounds the work on hostile certificate lists). */
const MAX_CANDIDATE_PATHS = 64;
/** Most search steps for one leaf. */
const MAX_SEARCH_STEPS = 4096;


/** Options of {@link buildPaths}. */
export interface PathBuildOptions {
  /** Trust anchors: any CA certificates the caller trusts, self-signed or not (PEM, DER or parsed). */
  readonly anchors: readonly CertificateInput[];
  /** Untrusted intermediate CA certificates that may complete a path. */
  readonly intermediates?: readonly CertificateInput[];
  /**
   * Most certificates in a path, leaf and anchor included (default {@link DEFAULT_MAX_PATH_DEPTH}
   * = 3: leaf, one issuing CA, root; 2 … 8).
   */
  readonly maxDepth?: number;
  /** Prefer certificates valid at this time when ordering candidates (no effect on which are built). */
  readonly at?: Date;
}

/** A finding of path validation: a `Finding` (from `@smki/core`) with the code's context where there is one. */
export interface PathFinding extends Finding {
  /** Structured detail: for `ERR_REVOKED` the serial number, revocation date and reason. */
  readonly context?: SmkiErrorContext<SmkiErrorCode>;
}

/** One candidate path that {@link validatePath} checked, with its own findings. */
export interface PathCandidate {
  /** The candidate, leaf first and anchor last. */
  readonly path: readonly SmkiCertificate[];
  /** Findings for this candidate (as {@link PathValidationResult.findings}). */
  readonly findings: readonly PathFinding[];
  /** True when this candidate passed every check. */
  readonly valid: boolean;
  /**
   * How many signatures verify in an unbroken run from the leaf up: 0 when the leaf's signature
   * does not verify under `path[1]`, `path.length - 1` when every one does.
   */
  readonly verifiedSignatures: number;
  /** True only when every certificate of `path` but the anchor was covered by a usable CRL. */
  readonly revocationChecked: boolean;
}

/** The outcome of {@link validatePath}. */
export interface PathValidationResult {
  /** True when a path to an anchor passed every check (no finding of severity `error`). */
  readonly valid: boolean;
  /**
   * The path that was checked, leaf first and anchor last: the valid one, or else the best
   * failing candidate (see {@link validatePath}: the one whose signatures verify furthest up from
   * the leaf), or just the leaf when no path to an anchor exists.
   */
  readonly path: readonly SmkiCertificate[];
  /** Findings for `path`, each with `certificateIndex` (0 = leaf) where it concerns one certificate. */
  readonly findings: readonly PathFinding[];
  /** True only when every certificate of `path` but the anchor was covered by a usable CRL. */
  readonly revocationChecked: boolean;
  /**
   * Every candidate path that was checked, in the order tried (the order of {@link buildPaths});
   * checking stops at the first valid one, which is then the last entry. Empty when no path to an
   * anchor was found (or no anchor was given). `path` and `findings` above are one of these.
   */
  readonly candidates: readonly PathCandidate[];
}

/** Options that can change per validation. */
export interface PathValidateOptions {
  /**
   * The validation time (default now). The public test certificates have expired, so callers
   * validating them pass a time.
   */
  readonly at?: Date;
  /** More untrusted intermediates for this validation only (e.g. carried in a message). */
  readonly intermediates?: readonly CertificateInput[];
  /** More CRLs for this validation only. */
  readonly crls?: readonly CrlInput[];
  /**
   * Require every certificate but the anchor to be covered by a usable CRL (otherwise
   * `ERR_CRL_MISSING`). Default: the validator's setting, else false.
   */
  readonly requireRevocation?: boolean;
}

/** Options of {@link createPathValidator}: what stays the same across validations. */
export interface PathValidatorOptions {
  /** Trust anchors: CA certificates the caller trusts (PEM, DER or parsed). Must not be empty. */
  readonly anchors: readonly CertificateInput[];
  /** Untrusted intermediate CA certificates. */
  readonly intermediates?: readonly CertificateInput[];
  /** CRLs and ARLs (PEM, DER or parsed). */
  readonly crls?: readonly CrlInput[];
  /** Policy OIDs and profiles (default {@link TEST_ENVIRONMENT}). */
  readonly environment?: SmkiEnvironment;
  /** Seconds a CRL stays usable after its nextUpdate (default `environment.crlGraceSeconds`). */
  readonly crlGraceSeconds?: number;
  /** Default for {@link PathValidateOptions.requireRevocation} (default false). */
  readonly requireRevocation?: boolean;
  /** Most certificates in a path (default {@link DEFAULT_MAX_PATH_DEPTH}). */
  readonly maxDepth?: number;
}

/** Options of {@link validatePath}: the validator's options and the per-call ones together. */
export interface PathValidationOptions extends PathValidatorOptions {
  /** The validation time (default now); see {@link PathValidateOptions.at}. */
  readonly at?: Date;
}

/** A reusable validator with its anchors, intermediates and CRLs parsed and indexed once. */
export interface PathValidator {
  /** The anchors, parsed. */
  readonly anchors: readonly SmkiCertificate[];
  /** The intermediates, parsed (those that are also anchors are left out). */
  readonly intermediates: readonly SmkiCertificate[];
  /** The CRLs, parsed. */
  readonly crls: readonly SmkiCrl[];
  /** The environment in force. */
  readonly environment: SmkiEnvironment;
  /**
   * Validate a leaf; see {@link validatePath}.
   * @throws SmkiError `ERR_CERT_MALFORMED`, `ERR_PEM_INVALID`, `ERR_CRL_MALFORMED`,
   *   `ERR_INVALID_ARGUMENT` for inputs that do not parse or are look-alike objects
   */
  validate(leaf: CertificateInput, options?: PathValidateOptions): PathValidationResult;
  /**
   * Candidate paths for a leaf; see {@link buildPaths}.
   * @throws SmkiError as {@link PathValidator.validate}
   */
  buildPaths(leaf: CertificateInput, options?: Pick<PathValidateOptions, 'at' | 'intermediates'>): SmkiCertificate[][];
}

// ---------------------------------------------------------------------------------------------
// Indexes

/** A map key for a name's DER (one char per byte: cheap to build, exact to compare). */
function nameKey(der: Uint8Array): string {
  return Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('latin1');
}

function isSelfIssued(c: SmkiCertificate): boolean {
  return equalBytes(c.subject.der, c.issuer.der);
}

interface CertIndex {
  readonly bySubject: ReadonlyMap<string, readonly SmkiCertificate[]>;
  /** By subjectKeyIdentifier: only for the diagnostic search when no name matches. */
  readonly bySki: ReadonlyMap<string, readonly SmkiCertificate[]>;
  /** Fingerprints of the anchors. */
  readonly anchorPrints: ReadonlySet<string>;
}

function indexCertificates(anchors: readonly SmkiCertificate[], intermediates: readonly SmkiCertificate[]): CertIndex {
  const bySubject = new Map<string, SmkiCertificate[]>();
  const bySki = new Map<string, SmkiCertificate[]>();
  const prints = new Set<string>();
  const anchorPrints = new Set<string>();
  const add = (c: SmkiCertificate): void => {
    // Stryker disable next-line ConditionalExpression: equivalent; candidatesFor skips a fingerprint seen before, so a repeat here changes no path
    if (prints.has(c.fingerprint)) return;
    prints.add(c.fingerprint);
    const k = nameKey(c.subject.der);
    const list = bySubject.get(k);
    if (list === undefined) bySubject.set(k, [c]);
    else list.push(c);
    if (c.subjectKeyId !== undefined) {
      const s = bySki.get(c.subjectKeyId);
      if (s === undefined) bySki.set(c.subjectKeyId, [c]);
      else s.push(c);
    }
  };
  for (const a of anchors) {
    anchorPrints.add(a.fingerprint);
    add(a);
  }
  for (const i of intermediates) add(i);
  return { bySubject, bySki, anchorPrints };
}

function toCertificateList(list: readonly CertificateInput[] | undefined, what: string): SmkiCertificate[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new SmkiError('ERR_INVALID_ARGUMENT', `${what} must be an array`, { detail: typeof list });
  return list.map((c) => toCertificate(c));
}

function toCrlList(list: readonly CrlInput[] | undefined): SmkiCrl[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new SmkiError('ERR_INVALID_ARGUMENT', 'crls must be an array', { detail: typeof list });
  return list.map((c) => parseCrl(c));
}

function indexCrls(crls: readonly SmkiCrl[]): Map<string, SmkiCrl[]> {
  const m = new Map<string, SmkiCrl[]>();
  for (const c of crls) {
    const k = nameKey(c.issuer.der);
    const list = m.get(k);
    // Unsorted, repeats kept: checkRevocation drops repeats and orders the validator's and the
    // call's CRLs together.
    if (list === undefined) m.set(k, [c]);
    else list.push(c);
  }
  return m;
}

/** Newest first: highest cRLNumber (none counts as -1), then latest thisUpdate. */
function compareCrlNewestFirst(a: SmkiCrl, b: SmkiCrl): number {
  const an = a.crlNumber ?? -1n;
  const bn = b.crlNumber ?? -1n;
  // Number() of a non-zero bigint keeps its sign (it is never 0 or NaN).
  return Number(bn - an) || b.thisUpdate.getTime() - a.thisUpdate.getTime();
}

function checkMaxDepth(maxDepth: number | undefined): number {
  const d = maxDepth ?? DEFAULT_MAX_PATH_DEPTH;
  if (!Number.isInteger(d) || d < 2 || d > MAX_PATH_DEPTH_LIMIT) {
    throw new SmkiError('ERR_INVALID_ARGUMENT', `maxDepth must be an integer from 2 to ${MAX_PATH_DEPTH_LIMIT}`, { detail: String(maxDepth) });
  }
  return d;
}

/**
 * The validation time truncated to its whole second. Certificate and CRL times are encoded to the
 * second (RFC 5280 §4.1.2.5, §5.1.2.4, §5.1.2.5), and the whole encoded second counts: a
 * certificate with notAfter `120000Z` is valid through 12:00:00.999, and one with notBefore
 * `120000Z` from 12:00:00.000 (so 11:59:59.999 is too early).
 */
function wholeSecond(at: Date): number {
  return Math.floor(at.getTime() / 1000) * 1000;
}

/** notBefore ≤ at ≤ notAfter, both ends inclusive to the whole second (see {@link wholeSecond}). */
function withinValidity(c: SmkiCertificate, at: Date): boolean {
  const t = wholeSecond(at);
  return c.notBefore.getTime() <= t && t <= c.notAfter.getTime();
}

function checkAt(at: Date | undefined): Date {
  if (at === undefined) return new Date();
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new SmkiError('ERR_INVALID_ARGUMENT', 'at must be a valid Date', {});
  return at;
}

// ---------------------------------------------------------------------------------------------
// Path building

/**
 * Preference of `issuer` as the issuer of `child`: an AKI equal to the issuer's SKI first, then
 * certificates where either identifier is absent, mismatching ones last (tried, never excluded);
 * then valid at `at`; then anchors (shorter paths); then the newest generation.
 */
function rankIssuers(child: SmkiCertificate, candidates: readonly SmkiCertificate[], anchorPrints: ReadonlySet<string>, at: Date | undefined): SmkiCertificate[] {
  const scored = candidates.map((c) => {
    const aki = child.authorityKeyId === undefined || c.subjectKeyId === undefined ? 1 : child.authorityKeyId === c.subjectKeyId ? 0 : 2;
    const valid = at === undefined || withinValidity(c, at) ? 0 : 1;
    const anchor = anchorPrints.has(c.fingerprint) ? 0 : 1;
    return { c, key: [aki, valid, anchor, -c.notBefore.getTime()] as const };
  });
  scored.sort((a, b) => {
    // Stryker disable next-line EqualityOperator: equivalent; a fifth, undefined key compares as NaN, which sort treats as equal
    for (let k = 0; k < 4; k++) {
      const d = (a.key[k] as number) - (b.key[k] as number);
      if (d !== 0) return d;
    }
    // Array.prototype.sort is stable (ECMAScript 2019): equal keys keep the order given.
    return 0;
  });
  return scored.map((s) => s.c);
}

interface SearchSpace {
  readonly indexes: readonly CertIndex[];
  readonly anchorPrints: ReadonlySet<string>;
}

function candidatesFor(child: SmkiCertificate, space: SearchSpace, at: Date | undefined, byKeyId: boolean): SmkiCertificate[] {
  const k = nameKey(child.issuer.der);
  const found: SmkiCertificate[] = [];
  const seen = new Set<string>();
  for (const ix of space.indexes) {
    for (const c of ix.bySubject.get(k) ?? []) {
      if (seen.has(c.fingerprint)) continue;
      seen.add(c.fingerprint);
      found.push(c);
    }
  }
  if (byKeyId) {
    // Diagnostic only: a certificate whose key the AKI names but whose subject differs, so that
    // the failure can be reported as ERR_CHAIN_NAME_MISMATCH rather than "no issuer". (Without an
    // AKI nothing is found: bySki holds only certificates that have an SKI.)
    for (const ix of space.indexes) {
      for (const c of ix.bySki.get(child.authorityKeyId as string) ?? []) {
        if (seen.has(c.fingerprint)) continue;
        seen.add(c.fingerprint);
        found.push(c);
      }
    }
  }
  // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent; ranking one candidate (or none) returns it as it is
  return found.length <= 1 ? found : rankIssuers(child, found, space.anchorPrints, at);
}

/**
 * Depth-first search from the leaf: every path of at most `limit` certificates that ends at an
 * anchor, with no certificate twice, in preference order. Bounded in paths and steps.
 */
function searchPaths(leaf: SmkiCertificate, space: SearchSpace, limit: number, at: Date | undefined, byKeyId = false): SmkiCertificate[][] {
  const out: SmkiCertificate[][] = [];
  const path: SmkiCertificate[] = [leaf];
  const onPath = new Set<string>([leaf.fingerprint]);
  let steps = 0;
  const visit = (): void => {
    const cur = path[path.length - 1] as SmkiCertificate;
    for (const cand of candidatesFor(cur, space, at, byKeyId)) {
      if (out.length >= MAX_CANDIDATE_PATHS) return;
      // Stryker disable next-line EqualityOperator: equivalent; one step more or less of a 4096-step budget changes no result a test can see
      if (++steps > MAX_SEARCH_STEPS) return;
      if (onPath.has(cand.fingerprint)) continue;
      if (space.anchorPrints.has(cand.fingerprint)) {
        out.push([...path, cand]);
      } else if (path.length + 2 <= limit) {
        // An intermediate needs room for at least an anchor after it.
        path.push(cand);
        onPath.add(cand.fingerprint);
        visit();
        path.pop();
        onPath.delete(cand.fingerprint);
      }
    }
  };
  visit();
  return out;
}

/**
 * Build every candidate certification path from `leaf` to a trust anchor, in preference order.
 *
 * Every certificate whose subject name equals (by DER, RFC 5280 §7.1) the issuer name of the
 * certificate before it is tried — one CA name can have several keys and generations — with
 * those whose subjectKeyIdentifier equals the authorityKeyIdentifier first, but none excluded.
 * A path ends at the first anchor reached: an anchor may be any CA the caller trusts, self-signed
 * or not (trusting an organisation CA directly gives the path `[leaf, OCA]`). No certificate
 * appears twice; at most `maxDepth` certificates (leaf and anchor included); at most 64 paths.
 * Nothing is verified here: {@link validatePath} does that.
 *
 * @returns the paths, each leaf first and anchor last (empty when none reaches an anchor)
 * @throws SmkiError `ERR_CERT_MALFORMED`, `ERR_PEM_INVALID` (inputs that do not parse),
 *   `ERR_INVALID_ARGUMENT` (look-alike objects, bad `maxDepth`)
 * @see RFC 5280 §6.1 (a prospective path), §4.2.1.1 (AKI as a hint); RFC 4158; docs/domain.md §2
 * @example
 * ```ts
 * import { buildPaths, createHierarchy, issueOrganisationCertificate } from '@smki/pki';
 * import { generateKeyPairSync } from 'node:crypto';
 * const { root, organisationCa } = await createHierarchy();
 * const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
 * const leaf = await issueOrganisationCertificate({
 *   issuer: organisationCa, role: 2, entityId: '90B3D51F30010000', keyUsage: 'digitalSignature', publicKey,
 * });
 * const paths = buildPaths(leaf, { anchors: [root.certificate], intermediates: [organisationCa.certificate] });
 * console.log(paths.length, paths[0]?.length); // 1 3
 * ```
 */
export function buildPaths(leaf: CertificateInput, options: PathBuildOptions): SmkiCertificate[][] {
  if (typeof options !== 'object' || options === null) throw new SmkiError('ERR_INVALID_ARGUMENT', 'options are required', {});
  const maxDepth = checkMaxDepth(options.maxDepth);
  const at = options.at === undefined ? undefined : checkAt(options.at);
  const l = toCertificate(leaf);
  // Stryker disable next-line StringLiteral: equivalent; the name only appears in the text of the error for a list that is not an array
  const ix = indexCertificates(toCertificateList(options.anchors, 'anchors'), toCertificateList(options.intermediates, 'intermediates'));
  return searchPaths(l, { indexes: [ix], anchorPrints: ix.anchorPrints }, maxDepth, at);
}

// ---------------------------------------------------------------------------------------------
// Caches keyed by parsed, frozen views

/**
 * Signature results of CA certificates (never leaves) under their issuers, and of CRLs under
 * their issuers, keyed by the parsed objects themselves. Views made by `parseCertificate` and
 * `parseCrl` are frozen and own a private copy of their bytes, so a cached result cannot go
 * stale; entries disappear with the objects (WeakMap). A leaf's signature is verified on every
 * validation.
 */
const caSignatureCache = new WeakMap<SmkiCertificate, WeakMap<SmkiCertificate, boolean>>();
const crlSignatureCache = new WeakMap<SmkiCrl, WeakMap<SmkiCertificate, boolean>>();

/** ecdsa-with-SHA256 without parameters (or NULL), the same inside and outside (`match` compares OID and parameters). */
function algorithmOk(alg: string, params: 'absent' | 'null' | 'other', match: boolean): boolean {
  return alg === OID.ecdsaWithSha256 && params !== 'other' && match;
}

/** Whether `child`'s signature verifies under `key` (the key of `issuer`); the algorithm was checked. */
function certSignatureValid(child: SmkiCertificate, issuer: SmkiCertificate, key: KeyObject, cacheable: boolean): boolean {
  // The cache is for speed only: the views are frozen and own their bytes, so a verification
  // repeated instead of looked up gives the same answer.
  // Stryker disable next-line ConditionalExpression,BooleanLiteral: equivalent; caching the leaf too changes no result (performance only)
  if (!cacheable) return verifyDer(key, child.tbsDer, child.signature);
  let byIssuer = caSignatureCache.get(child);
  const hit = byIssuer?.get(issuer);
  // Stryker disable next-line ConditionalExpression: equivalent; verifying again gives the cached answer (performance only)
  if (hit !== undefined) return hit;
  const ok = verifyDer(key, child.tbsDer, child.signature);
  // Stryker disable next-line ConditionalExpression: equivalent; a fresh map per result only forgets earlier results (performance only)
  if (byIssuer === undefined) {
    byIssuer = new WeakMap();
    caSignatureCache.set(child, byIssuer);
  }
  byIssuer.set(issuer, ok);
  return ok;
}

/** Whether `crl` is signed with ecdsa-with-SHA256 under `key` (the key of `issuer`). */
function crlSignatureValid(crl: SmkiCrl, issuer: SmkiCertificate, key: KeyObject): boolean {
  let byIssuer = crlSignatureCache.get(crl);
  const hit = byIssuer?.get(issuer);
  // Stryker disable next-line ConditionalExpression: equivalent; verifying again gives the cached answer (performance only)
  if (hit !== undefined) return hit;
  let ok = false;
  const d = crl.details;
  if (algorithmOk(crl.signatureAlgorithm, d.signatureAlgorithmParams, d.signatureAlgorithmsMatch)) {
    ok = verifyDer(key, crl.tbsDer, crl.signature);
  }
  // Stryker disable next-line ConditionalExpression: equivalent; a fresh map per result only forgets earlier results (performance only)
  if (byIssuer === undefined) {
    byIssuer = new WeakMap();
    crlSignatureCache.set(crl, byIssuer);
  }
  byIssuer.set(issuer, ok);
  return ok;
}

// ---------------------------------------------------------------------------------------------
// Checking one path

interface CheckContext {
  readonly env: SmkiEnvironment;
  readonly at: Date;
  readonly graceMs: number;
  readonly requireRevocation: boolean;
  readonly crlIndexes: readonly ReadonlyMap<string, readonly SmkiCrl[]>[];
  readonly crlCount: number;
  /** Leaf signature results within this call, by issuer. */
  readonly leafSignatures: Map<SmkiCertificate, boolean>;
}

class Findings {
  readonly list: PathFinding[] = [];

  add(code: SmkiErrorCode, message: string, certificateIndex: number | undefined, severity: Finding['severity'] = 'error', context?: SmkiErrorContext<SmkiErrorCode>): void {
    this.list.push(
      Object.freeze({
        code,
        message,
        severity,
        ...(certificateIndex !== undefined ? { certificateIndex } : {}),
        ...(context !== undefined ? { context } : {}),
      }),
    );
  }

  /** Run a check; an exception becomes an error finding of `code` (fail closed). */
  guard(code: SmkiErrorCode, certificateIndex: number | undefined, what: string, check: () => void): void {
    try {
      check();
    } catch (e) {
      const detail = e instanceof Error ? e.message.slice(0, 160) : 'internal error';
      this.add(code, `${what} could not be checked (${isSmkiError(e) ? `${e.code}: ` : ''}${detail})`, certificateIndex);
    }
  }

  get errors(): number {
    let n = 0;
    for (const f of this.list) if (f.severity === 'error') n++;
    return n;
  }
}

function isEndEntity(kind: CertificateKind): kind is 'organisation' | 'device' {
  return kind === 'organisation' || kind === 'device';
}

function allowedPolicies(cert: SmkiCertificate, index: number, env: SmkiEnvironment): readonly string[] {
  if (index === 0 && cert.kind === 'organisation') return env.organisationPolicies;
  if (index === 0 && cert.kind === 'device') return env.devicePolicies;
  if (index > 0 && isSelfIssued(cert) && env.rootPolicies.length > 0) return env.rootPolicies;
  return [...env.organisationPolicies, ...env.devicePolicies];
}

/**
 * The kind lint judges a certificate at this level as: the leaf as what it is (checkLeaf reports a
 * leaf that is not an end entity), an issuer as a root or an issuing CA.
 */
function expectedKindAt(cert: SmkiCertificate, index: number): CertificateKind {
  if (index === 0) return cert.kind;
  return isSelfIssued(cert) ? 'root' : 'issuingCa';
}

const fmt = (d: Date): string => d.toISOString();

function checkCertificateLevel(f: Findings, cert: SmkiCertificate, i: number, ctx: CheckContext): void {
  // RFC 5280 6.1.3 (a)(2): validity at the validation time, for every certificate, anchor included.
  // Both ends inclusive, to the whole encoded second (see wholeSecond).
  // Stryker disable next-line StringLiteral: equivalent; the code and name are reported only if this check throws, and it reads only parsed certificates, which it cannot fail on
  f.guard('ERR_CHAIN_EXPIRED', i, 'validity', () => {
    const t = wholeSecond(ctx.at);
    if (t < cert.notBefore.getTime()) {
      f.add('ERR_CHAIN_NOT_YET_VALID', `certificate ${i} (${cert.subject.text || 'empty subject'}) is not valid before ${fmt(cert.notBefore)}; validation time ${fmt(ctx.at)}`, i);
    }
    if (t > cert.notAfter.getTime()) {
      f.add('ERR_CHAIN_EXPIRED', `certificate ${i} (${cert.subject.text || 'empty subject'}) expired at ${fmt(cert.notAfter)}; validation time ${fmt(ctx.at)}`, i);
    }
  });
  // RFC 5280 6.1.4 (o) / 6.1.5 (f): an unrecognised critical extension fails the path.
  // Stryker disable next-line StringLiteral: equivalent; the code and name are reported only if this check throws, and it reads only parsed certificates, which it cannot fail on
  f.guard('ERR_CHAIN_UNKNOWN_CRITICAL_EXTENSION', i, 'extensions', () => {
    for (const e of cert.extensions) {
      if (e.critical && !KNOWN_EXTENSIONS.has(e.oid)) {
        f.add('ERR_CHAIN_UNKNOWN_CRITICAL_EXTENSION', `certificate ${i} has critical extension ${e.oid}, which path validation does not process`, i);
      }
    }
  });
  // docs/domain.md §2: policy OIDs from the environment.
  f.guard('ERR_CHAIN_POLICY_NOT_ALLOWED', i, 'certificatePolicies', () => {
    const allowed = allowedPolicies(cert, i, ctx.env);
    if (!cert.policies.some((p) => allowed.includes(p))) {
      f.add(
        'ERR_CHAIN_POLICY_NOT_ALLOWED',
        `certificate ${i} carries policies [${cert.policies.join(', ')}], none allowed here in environment ${ctx.env.name} ([${allowed.join(', ')}])`,
        i,
      );
    }
  });
  // docs/domain.md §2: the profile of the level, from lint (errors break the path, warnings are kept).
  f.guard('ERR_CHAIN_PROFILE_VIOLATION', i, 'profile', () => {
    const lint = lintCertificate(cert, { environment: ctx.env, expectedKind: expectedKindAt(cert, i) });
    for (const l of lint) f.add(l.code, `certificate ${i}: ${l.message}`, i, l.severity);
  });
}

/**
 * Why the signature of `child` (index i) is not valid under `issuer` (index j), or undefined when
 * it is: RFC 5280 6.1.3 (a)(1), with the issuer's P-256 key, ecdsa-with-SHA256 only.
 */
function signatureProblem(child: SmkiCertificate, i: number, issuer: SmkiCertificate, j: number, ctx: CheckContext): string | undefined {
  const key = issuer.publicKey;
  if (key === undefined) return `certificate ${j} has no usable P-256 key`;
  const d = child.details;
  if (!algorithmOk(child.signatureAlgorithm, d.signatureAlgorithmParams, d.signatureAlgorithmsMatch)) return `algorithm ${child.signatureAlgorithm} is not ecdsa-with-SHA256`;
  let ok: boolean;
  // (Sending the leaf to the shared cache as well would change no result; no Stryker directive
  // marks that, since one would also hide the mutant that sends CAs to the per-call map.)
  if (i === 0) {
    // The leaf's result is kept for this call only (per issuer); CA results in the shared cache.
    const hit = ctx.leafSignatures.get(issuer);
    // Stryker disable next-line BooleanLiteral: equivalent; caching the leaf's result too changes no result (performance only)
    ok = hit ?? certSignatureValid(child, issuer, key, false);
    // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent; storing the same result again changes nothing (performance only)
    if (hit === undefined) ctx.leafSignatures.set(issuer, ok);
  } else {
    // Stryker disable next-line BooleanLiteral: equivalent; not caching a CA's result changes no result (performance only)
    ok = certSignatureValid(child, issuer, key, true);
  }
  return ok ? undefined : `it does not verify under the key of certificate ${j} (${issuer.subject.text})`;
}

/** Checks of the link from `child` (index i) to its issuer (index j = i + 1); returns whether the signature verified. */
function checkIssuerLink(f: Findings, child: SmkiCertificate, i: number, issuer: SmkiCertificate, j: number, path: readonly SmkiCertificate[], ctx: CheckContext): boolean {
  // Stryker disable next-line BooleanLiteral: equivalent; the signature check below always assigns it (it cannot throw first)
  let signatureOk = false;
  // RFC 5280 6.1.3 (a)(4): issuer name equals the issuer's subject (DER, §7.1).
  // Stryker disable next-line StringLiteral: equivalent; the code and name are reported only if this check throws, and it reads only parsed certificates, which it cannot fail on
  f.guard('ERR_CHAIN_NAME_MISMATCH', i, 'issuer name', () => {
    if (!equalBytes(child.issuer.der, issuer.subject.der)) {
      f.add('ERR_CHAIN_NAME_MISMATCH', `certificate ${i} issuer "${child.issuer.text}" is not certificate ${j} subject "${issuer.subject.text}"`, i);
    }
  });
  // RFC 5280 4.2.1.1: the AKI identifies the issuer's key.
  // Stryker disable next-line StringLiteral: equivalent; the code and name are reported only if this check throws, and it reads only parsed certificates, which it cannot fail on
  f.guard('ERR_CHAIN_KEY_ID_MISMATCH', i, 'authorityKeyIdentifier', () => {
    if (child.authorityKeyId !== undefined && issuer.subjectKeyId !== undefined && child.authorityKeyId !== issuer.subjectKeyId) {
      f.add('ERR_CHAIN_KEY_ID_MISMATCH', `certificate ${i} authorityKeyIdentifier ${child.authorityKeyId} is not certificate ${j} subjectKeyIdentifier ${issuer.subjectKeyId}`, i);
    }
  });
  // RFC 5280 6.1.3 (a)(1): the signature, with the issuer's P-256 key, ecdsa-with-SHA256 only.
  // Stryker disable next-line StringLiteral: equivalent; the code and name are reported only if this check throws, and it reads only parsed certificates, which it cannot fail on
  f.guard('ERR_CHAIN_SIGNATURE_INVALID', i, 'signature', () => {
    const why = signatureProblem(child, i, issuer, j, ctx);
    signatureOk = why === undefined;
    if (why !== undefined) f.add('ERR_CHAIN_SIGNATURE_INVALID', `certificate ${i} signature is invalid: ${why}`, i);
  });
  // RFC 5280 6.1.4 (k): the issuer is a CA.
  // Stryker disable next-line StringLiteral: equivalent; the code and name are reported only if this check throws, and it reads only parsed certificates, which it cannot fail on
  f.guard('ERR_CHAIN_ISSUER_NOT_CA', j, 'basicConstraints', () => {
    if (issuer.basicConstraints?.ca !== true) f.add('ERR_CHAIN_ISSUER_NOT_CA', `certificate ${j} (${issuer.subject.text}) issues certificate ${i} but is not a CA (basicConstraints cA)`, j);
  });
  // RFC 5280 6.1.4 (n): keyCertSign.
  // Stryker disable next-line StringLiteral: equivalent; the code and name are reported only if this check throws, and it reads only parsed certificates, which it cannot fail on
  f.guard('ERR_CHAIN_ISSUER_KEY_USAGE', j, 'keyUsage', () => {
    if (!issuer.keyUsage.includes('keyCertSign')) f.add('ERR_CHAIN_ISSUER_KEY_USAGE', `certificate ${j} (${issuer.subject.text}) issues certificate ${i} without keyCertSign`, j);
  });
  // RFC 5280 6.1.4 (l), (m): pathLenConstraint counts the non-self-issued CAs below the issuer.
  // Applied to the anchor too (SMKI anchors are certificates whose constraints are meant).
  // Stryker disable next-line StringLiteral: equivalent; the code and name are reported only if this check throws, and it reads only parsed certificates, which it cannot fail on
  f.guard('ERR_CHAIN_PATH_LENGTH_EXCEEDED', j, 'pathLenConstraint', () => {
    const limit = issuer.basicConstraints?.pathLength;
    // Stryker disable next-line ConditionalExpression: equivalent; `below > undefined` is false, so the early return only saves the loop
    if (limit === undefined) return;
    let below = 0;
    for (let k = 1; k < j; k++) if (!isSelfIssued(path[k] as SmkiCertificate)) below++;
    if (below > limit) {
      f.add('ERR_CHAIN_PATH_LENGTH_EXCEEDED', `certificate ${j} (${issuer.subject.text}) allows ${limit} CA certificate(s) below it; the path has ${below}`, j);
    }
  });
  return signatureOk;
}

function checkLeaf(f: Findings, path: readonly SmkiCertificate[], ctx: CheckContext): void {
  const leaf = path[0] as SmkiCertificate;
  // Stryker disable next-line StringLiteral: equivalent; the code and name are reported only if this check throws, and it reads only parsed certificates, which it cannot fail on
  f.guard('ERR_CHAIN_PROFILE_VIOLATION', 0, 'leaf kind', () => {
    if (!isEndEntity(leaf.kind)) {
      f.add('ERR_CHAIN_PROFILE_VIOLATION', `the leaf is of kind ${leaf.kind}; an SMKI path ends in an organisation or device certificate`, 0);
    }
  });
  // docs/domain.md §2: organisation certificates under an OCA, device certificates under a DCA.
  f.guard('ERR_CHAIN_PKI_MISMATCH', 0, 'issuing CA', () => {
    if (!isEndEntity(leaf.kind) || path.length < 2) return;
    const issuer = path[1] as SmkiCertificate;
    const want = leaf.kind === 'organisation' ? 'organisationCa' : 'deviceCa';
    const got = isSelfIssued(issuer) ? 'root' : certificateProfile(issuer, { environment: ctx.env, expectedKind: 'issuingCa' });
    if (got !== want) {
      f.add(
        'ERR_CHAIN_PKI_MISMATCH',
        `${want === 'organisationCa' ? 'an organisation certificate must be issued by an organisation CA' : 'a device certificate must be issued by a device CA'}; its issuer ${issuer.subject.text || '(empty)'} is ${got}`,
        0,
      );
    }
  });
}

interface CrlProblem {
  readonly code: SmkiErrorCode;
  readonly message: string;
}

/** RFC 5280 6.3.3: revocation of certificate `i` by CRLs from its issuer `j`. Returns coverage. */
function checkRevocation(f: Findings, cert: SmkiCertificate, i: number, issuer: SmkiCertificate, j: number, ctx: CheckContext): boolean {
  const name = nameKey(cert.issuer.der);
  const candidates: SmkiCrl[] = [];
  for (const ix of ctx.crlIndexes) for (const c of ix.get(name) ?? []) if (!candidates.includes(c)) candidates.push(c);
  // The validator's CRLs and the call's, newest first together.
  candidates.sort(compareCrlNewestFirst);

  const problems: CrlProblem[] = [];
  const otherKey: SmkiCrl[] = [];
  const outOfScope: (() => string)[] = [];
  let covered = false;
  let newestAuthentic: SmkiCrl | undefined;
  let revokedBy: { crl: SmkiCrl; serialNumber: string; revocationDate: Date; reason?: string } | undefined;
  const isCa = cert.basicConstraints?.ca === true;
  // thisUpdate ≤ at ≤ nextUpdate + grace, to the whole second as for certificates.
  const t = wholeSecond(ctx.at);

  for (const crl of candidates) {
    const label = (): string => `CRL #${crl.crlNumber ?? '?'} from ${crl.issuer.text} (thisUpdate ${fmt(crl.thisUpdate)})`;
    // A CRL naming another key of the same-named CA is not this issuer's (RFC 5280 5.2.1).
    if (crl.authorityKeyId !== undefined && issuer.subjectKeyId !== undefined && crl.authorityKeyId !== issuer.subjectKeyId) {
      otherKey.push(crl);
      continue;
    }
    // RFC 5280 6.3.3 (f), (g): the issuer may sign CRLs and the signature verifies.
    if (!issuer.keyUsage.includes('cRLSign')) {
      problems.push({ code: 'ERR_CRL_ISSUER_KEY_USAGE', message: `${label()}: certificate ${j} (${issuer.subject.text}) lacks cRLSign` });
      continue;
    }
    const key = issuer.publicKey;
    if (key === undefined) {
      problems.push({ code: 'ERR_CRL_SIGNATURE_INVALID', message: `${label()}: certificate ${j} has no usable P-256 key` });
      continue;
    }
    if (!crlSignatureValid(crl, issuer, key)) {
      problems.push({ code: 'ERR_CRL_SIGNATURE_INVALID', message: `${label()}: signature does not verify under the key of certificate ${j}` });
      continue;
    }
    // RFC 5280 5.2, 5.3: a critical extension not processed makes the CRL unusable.
    if (crl.unknownCriticalExtensions.length > 0) {
      const list = crl.unknownCriticalExtensions.map((u) => (u.serialNumber ? `${u.oid} (entry ${u.serialNumber})` : u.oid)).join(', ');
      problems.push({ code: 'ERR_CRL_UNKNOWN_CRITICAL_EXTENSION', message: `${label()}: unprocessed critical extension(s) ${list}` });
      continue;
    }
    // RFC 5280 6.3.3 (b)(2): scope from issuingDistributionPoint.
    if (crl.scope === 'unsupported') {
      outOfScope.push(() => `${label()} is partitioned, indirect or a delta CRL`);
      continue;
    }
    if ((crl.scope === 'userCertificates' && isCa) || (crl.scope === 'caCertificates' && !isCa)) {
      outOfScope.push(() => `${label()} covers only ${crl.scope === 'userCertificates' ? 'end-entity' : 'CA'} certificates`);
      continue;
    }
    // Authentic and in scope: an entry revokes, whatever the CRL's dates (fail closed). A
    // certificateHold counts only from the newest authentic CRL (a later one may release it);
    // removeFromCRL belongs to delta CRLs and never revokes.
    newestAuthentic ??= crl;
    if (revokedBy === undefined) {
      const e = crl.revoked.get(cert.serialNumber);
      if (e !== undefined && e.reason !== 'removeFromCRL' && (e.reason !== 'certificateHold' || crl === newestAuthentic)) {
        revokedBy = { crl, serialNumber: e.serialNumber, revocationDate: e.revocationDate, ...(e.reason !== undefined ? { reason: e.reason } : {}) };
      }
    }
    // RFC 5280 5.2.3: conforming CRL issuers include a non-critical cRLNumber. A CRL without one
    // (or with a critical one) does not conform, so it never says "not revoked" (fail closed);
    // its entries, checked above, still revoke.
    const numberExtension = crl.extensions.find((x) => x.oid === OID.cRLNumber);
    // (parseCrl sets crlNumber exactly when the extension is present.)
    if (numberExtension === undefined) {
      problems.push({ code: 'ERR_CRL_NUMBER_MISSING', message: `${label()}: has no cRLNumber (RFC 5280 5.2.3)` });
      continue;
    }
    if (numberExtension.critical) {
      problems.push({ code: 'ERR_CRL_NUMBER_CRITICAL', message: `${label()}: its cRLNumber is marked critical (RFC 5280 5.2.3: non-critical)` });
      continue;
    }
    // RFC 5280 6.3.3 (a): currency.
    if (crl.thisUpdate.getTime() > t) {
      problems.push({ code: 'ERR_CRL_NOT_YET_VALID', message: `${label()}: not valid before its thisUpdate; validation time ${fmt(ctx.at)}` });
      continue;
    }
    if (crl.nextUpdate === undefined) {
      problems.push({ code: 'ERR_CRL_EXPIRED', message: `${label()}: has no nextUpdate, so its currency cannot be judged` });
      continue;
    }
    if (t > crl.nextUpdate.getTime() + ctx.graceMs) {
      problems.push({
        code: 'ERR_CRL_EXPIRED',
        message: `${label()}: past its nextUpdate ${fmt(crl.nextUpdate)}${ctx.graceMs > 0 ? ` + ${ctx.graceMs / 1000} s grace` : ''}; validation time ${fmt(ctx.at)}`,
      });
      continue;
    }
    covered = true;
  }

  if (revokedBy !== undefined) {
    const { crl, ...context } = revokedBy;
    f.add(
      'ERR_REVOKED',
      `certificate ${i} (serial ${context.serialNumber}) is revoked since ${fmt(context.revocationDate)}${context.reason ? ` (${context.reason})` : ''} by CRL #${crl.crlNumber ?? '?'} from ${crl.issuer.text}`,
      i,
      'error',
      { certificateIndex: i, ...context },
    );
  }
  // Problems of CRLs that would have spoken for this certificate: errors unless a usable CRL
  // covered it anyway (then they are stale or stray copies, kept as warnings).
  for (const p of problems) f.add(p.code, p.message, i, covered ? 'warning' : 'error');
  if (!covered) {
    if (ctx.crlCount > 0 && candidates.length - otherKey.length === 0) {
      f.add(
        'ERR_CRL_ISSUER_MISMATCH',
        `none of the ${ctx.crlCount} CRL(s) given is from the issuer of certificate ${i} (${issuer.subject.text}${issuer.subjectKeyId ? `, key ${issuer.subjectKeyId}` : ''})${
          otherKey.length > 0 ? `; ${otherKey.length} name it but another key` : ''
        }`,
        i,
        'warning',
      );
    }
    if (ctx.requireRevocation) {
      const why = problems.length > 0 ? 'no CRL from its issuer is usable' : outOfScope.length > 0 ? outOfScope.map((m) => m()).join('; ') : 'no CRL from its issuer was given';
      f.add('ERR_CRL_MISSING', `certificate ${i} (serial ${cert.serialNumber}) is not covered by a usable CRL: ${why}`, i);
    }
  }
  return covered;
}

interface PathOutcome {
  readonly path: readonly SmkiCertificate[];
  readonly findings: Findings;
  readonly revocationChecked: boolean;
  /** Signatures that verify in an unbroken run from the leaf up. */
  readonly verifiedSignatures: number;
}

function checkPath(path: readonly SmkiCertificate[], ctx: CheckContext, tooLong: number | undefined): PathOutcome {
  const f = new Findings();
  // Set only once every level below the anchor was checked: false if a check throws first, and
  // false for a path of the leaf alone (nothing checked for revocation; validate reports that
  // outcome when no path to an anchor exists).
  let revocationChecked = false;
  let verifiedSignatures = 0;
  // Stryker disable next-line StringLiteral: equivalent; the code and name are reported only if this check throws, and it reads only parsed certificates, which it cannot fail on
  f.guard('ERR_CHAIN_PROFILE_VIOLATION', undefined, 'path', () => {
    const n = path.length - 1;
    if (tooLong !== undefined) {
      f.add('ERR_CHAIN_TOO_LONG', `the path has ${path.length} certificates; at most ${tooLong} are allowed (leaf, issuing CA, root)`, n);
    }
    checkLeaf(f, path, ctx);
    for (let i = 0; i <= n; i++) checkCertificateLevel(f, path[i] as SmkiCertificate, i, ctx);
    let unbroken = true;
    for (let i = 0; i < n; i++) {
      const ok = checkIssuerLink(f, path[i] as SmkiCertificate, i, path[i + 1] as SmkiCertificate, i + 1, path, ctx);
      unbroken &&= ok;
      if (unbroken) verifiedSignatures++;
    }
    // RFC 5280 6.1.3 (a)(3): revocation of every certificate but the anchor.
    let allCovered = true;
    for (let i = 0; i < n; i++) {
      // Stryker disable next-line BooleanLiteral: equivalent; checkRevocation always returns (it cannot throw), so `covered` is always assigned
      let covered = false;
      // Stryker disable next-line StringLiteral: equivalent; the code and name are reported only if this check throws, and it reads only parsed certificates, which it cannot fail on
      f.guard('ERR_CRL_MISSING', i, 'revocation', () => {
        covered = checkRevocation(f, path[i] as SmkiCertificate, i, path[i + 1] as SmkiCertificate, i + 1, ctx);
      });
      if (!covered) allCovered = false;
    }
    revocationChecked = n > 0 && allCovered;
  });
  return { path, findings: f, revocationChecked, verifiedSignatures };
}

function isValidOutcome(o: PathOutcome): boolean {
  // Stryker disable next-line ConditionalExpression,EqualityOperator: equivalent; a path of the leaf alone always carries an error (no anchor, no issuer); kept so that it can never be valid
  return o.findings.errors === 0 && o.path.length > 1;
}

function candidateOf(o: PathOutcome): PathCandidate {
  return Object.freeze({
    path: Object.freeze([...o.path]),
    findings: Object.freeze([...o.findings.list]),
    valid: isValidOutcome(o),
    verifiedSignatures: o.verifiedSignatures,
    revocationChecked: o.revocationChecked,
  });
}

/**
 * Whether failing candidate `a` is a better report than `b`: more signatures verified in an
 * unbroken run from the leaf (the path the leaf's issuer actually signed, rather than a
 * same-named certificate with another key); then fewer errors. Equal candidates keep the one
 * tried first (the builder's preference order).
 */
function betterCandidate(a: PathOutcome, b: PathOutcome): boolean {
  const d = a.verifiedSignatures - b.verifiedSignatures;
  return d > 0 || (d === 0 && a.findings.errors < b.findings.errors);
}

function result(o: PathOutcome, tried: readonly PathOutcome[]): PathValidationResult {
  return Object.freeze({
    valid: isValidOutcome(o),
    path: Object.freeze([...o.path]),
    findings: Object.freeze([...o.findings.list]),
    revocationChecked: o.revocationChecked,
    candidates: Object.freeze(tried.map(candidateOf)),
  });
}

// ---------------------------------------------------------------------------------------------
// The validator

/**
 * A reusable path validator: anchors, intermediates and CRLs are parsed and indexed once, so
 * each validation costs little more than its signature checks. Use one per trust configuration
 * (rebuild it when the CRLs change); it holds no per-validation state and may be shared.
 *
 * Caching: lint results are cached per certificate by {@link lintCertificate}; signature results
 * of CA certificates under their issuers and of CRLs under their issuers are cached per pair of
 * parsed objects (frozen views that own their bytes; do not mutate a view's bytes). The leaf's
 * signature is verified on every validation.
 *
 * @throws SmkiError `ERR_CERT_MALFORMED`, `ERR_PEM_INVALID`, `ERR_CRL_MALFORMED` (inputs that do not
 *   parse), `ERR_INVALID_ARGUMENT` (look-alike objects, bad options)
 * @see RFC 5280 §6.1, §6.3; docs/domain.md §2
 * @example
 * ```ts
 * import { createHierarchy, createPathValidator, issueCrl, issueOrganisationCertificate } from '@smki/pki';
 * import { generateKeyPairSync } from 'node:crypto';
 * const { root, organisationCa } = await createHierarchy();
 * const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
 * const leaf = await issueOrganisationCertificate({
 *   issuer: organisationCa, role: 2, entityId: '90B3D51F30010000', keyUsage: 'digitalSignature', publicKey,
 * });
 * const validator = createPathValidator({
 *   anchors: [root.certificate],
 *   intermediates: [organisationCa.certificate],
 *   crls: [await issueCrl({ issuer: organisationCa, crlNumber: 1n, kind: 'crl' }), await issueCrl({ issuer: root, crlNumber: 1n, kind: 'arl' })],
 *   requireRevocation: true,
 * });
 * const r = validator.validate(leaf);
 * console.log(r.valid, r.revocationChecked); // true true
 * ```
 */
export function createPathValidator(options: PathValidatorOptions): PathValidator {
  if (typeof options !== 'object' || options === null) throw new SmkiError('ERR_INVALID_ARGUMENT', 'options are required', {});
  const env = options.environment ?? TEST_ENVIRONMENT;
  if (typeof env !== 'object' || !Array.isArray(env.organisationPolicies)) {
    throw new SmkiError('ERR_INVALID_ARGUMENT', 'environment must be an SmkiEnvironment', {});
  }
  const maxDepth = checkMaxDepth(options.maxDepth);
  const graceSeconds = options.crlGraceSeconds ?? env.crlGraceSeconds ?? 0;
  // (Number.isFinite is false for anything that is not a number.)
  if (!Number.isFinite(graceSeconds) || graceSeconds < 0) {
    throw new SmkiError('ERR_INVALID_ARGUMENT', 'crlGraceSeconds must be a non-negative number', { detail: String(graceSeconds) });
  }
  if (!Array.isArray(options.anchors)) throw new SmkiError('ERR_INVALID_ARGUMENT', 'anchors must be an array', { detail: typeof options.anchors });
  // Stryker disable next-line StringLiteral: equivalent; the name only appears in the text of the error for a list that is not an array
  const anchors = Object.freeze(toCertificateList(options.anchors, 'anchors'));
  // Stryker disable next-line StringLiteral: equivalent; the name only appears in the text of the error for a list that is not an array
  const given = toCertificateList(options.intermediates, 'intermediates');
  const crls = Object.freeze(toCrlList(options.crls));
  const index = indexCertificates(anchors, given);
  const intermediates = Object.freeze(given.filter((c) => !index.anchorPrints.has(c.fingerprint)));
  const crlIndex = indexCrls(crls);
  const requireDefault = options.requireRevocation === true;

  const spaceFor = (extra: readonly CertificateInput[] | undefined): SearchSpace => {
    // Extra intermediates never become anchors, even if they equal one (the anchor copy wins).
    // Stryker disable next-line StringLiteral: equivalent; the name only appears in the text of the error for a list that is not an array
    const extraIndex = indexCertificates([], toCertificateList(extra, 'intermediates'));
    return { indexes: [index, extraIndex], anchorPrints: index.anchorPrints };
  };

  const validate = (leafInput: CertificateInput, call: PathValidateOptions = {}): PathValidationResult => {
    if (typeof call !== 'object' || call === null) throw new SmkiError('ERR_INVALID_ARGUMENT', 'options must be an object', {});
    const at = checkAt(call.at);
    const leaf = toCertificate(leafInput);
    const space = spaceFor(call.intermediates);
    const extraCrls = toCrlList(call.crls);
    const ctx: CheckContext = {
      env,
      at,
      graceMs: graceSeconds * 1000,
      requireRevocation: call.requireRevocation ?? requireDefault,
      crlIndexes: [crlIndex, indexCrls(extraCrls)],
      crlCount: crls.length + extraCrls.length,
      leafSignatures: new Map(),
    };

    if (anchors.length === 0) {
      const f = new Findings();
      f.add('ERR_CHAIN_NO_ANCHORS', 'no trust anchor was given', undefined);
      return result({ path: [leaf], findings: f, revocationChecked: false, verifiedSignatures: 0 }, []);
    }

    const limit = Math.min(maxDepth + 2, MAX_PATH_DEPTH_LIMIT);
    let all = searchPaths(leaf, space, limit, at);
    // No issuer by name: look for one by key identifier, only to report why (never valid, since
    // the name check then fails).
    if (all.length === 0) all = searchPaths(leaf, space, limit, at, true);
    const inLimit = all.filter((p) => p.length <= maxDepth);
    const candidates = inLimit.length > 0 ? inLimit : all;
    const tooLong = inLimit.length > 0 ? undefined : maxDepth;

    if (candidates.length === 0) {
      // The leaf alone: the missing issuer, then what can be checked of the leaf by itself.
      const leafOnly = checkPath([leaf], ctx, undefined);
      const f = new Findings();
      f.add('ERR_CHAIN_ISSUER_NOT_FOUND', `no certificate named "${leaf.issuer.text}" leads to a trust anchor`, 0);
      for (const x of leafOnly.findings.list) f.list.push(x);
      return result({ ...leafOnly, findings: f }, []);
    }

    const tried: PathOutcome[] = [];
    let best: PathOutcome | undefined;
    for (const p of candidates) {
      const o = checkPath(p, ctx, tooLong);
      tried.push(o);
      if (isValidOutcome(o)) return result(o, tried);
      if (best === undefined || betterCandidate(o, best)) best = o;
    }
    return result(best as PathOutcome, tried);
  };

  const build = (leafInput: CertificateInput, call: Pick<PathValidateOptions, 'at' | 'intermediates'> = {}): SmkiCertificate[][] => {
    const at = call.at === undefined ? undefined : checkAt(call.at);
    return searchPaths(toCertificate(leafInput), spaceFor(call.intermediates), maxDepth, at);
  };

  return Object.freeze({ anchors, intermediates, crls, environment: env, validate, buildPaths: build });
}

/**
 * Validate a certification path from `leaf` to one of `anchors` at time `at`, with revocation.
 *
 * Builds every candidate path ({@link buildPaths}) and checks each, in the builder's order; the
 * first fully valid path wins. Otherwise the result carries the best failing candidate and its
 * findings: the one whose signatures verify furthest up from the leaf (the most signatures
 * verified in an unbroken run starting with the leaf's), so that a same-named issuer with
 * another key, offered first or making a shorter path, does not hide the path the leaf was
 * really issued on; ties go to the candidate with fewer error findings, then to the one tried
 * first. Every candidate checked, with its own findings, is in `candidates`.
 * Inputs may be PEM, DER or parsed views (look-alike objects are refused).
 *
 * Checks (RFC 5280 §6.1 and docs/domain.md §2), each a finding with `certificateIndex` (0 = leaf):
 * - every signature with the issuer's P-256 key, ecdsa-with-SHA256 only, high-S accepted
 *   (`ERR_CHAIN_SIGNATURE_INVALID`);
 * - validity at `at` of every certificate, anchor included (`ERR_CHAIN_NOT_YET_VALID`,
 *   `ERR_CHAIN_EXPIRED`). Certificate times are whole seconds (RFC 5280 §4.1.2.5), and both ends
 *   are inclusive to the whole encoded second: `at` is first truncated to its second, so a
 *   certificate with notAfter 12:00:00Z is valid through 12:00:00.999Z and expired from
 *   12:00:01.000Z, and one with notBefore 12:00:00Z is not yet valid at 11:59:59.999Z;
 * - issuer name equals issuer subject by DER (`ERR_CHAIN_NAME_MISMATCH`); AKI equals the issuer's
 *   SKI when both are present (`ERR_CHAIN_KEY_ID_MISMATCH`);
 * - every issuer, the anchor included, is a CA (`ERR_CHAIN_ISSUER_NOT_CA`) with keyCertSign
 *   (`ERR_CHAIN_ISSUER_KEY_USAGE`) whose pathLenConstraint holds (`ERR_CHAIN_PATH_LENGTH_EXCEEDED`);
 * - no unprocessed critical extension (`ERR_CHAIN_UNKNOWN_CRITICAL_EXTENSION`);
 * - at most `maxDepth` certificates (`ERR_CHAIN_TOO_LONG`, reported when only longer paths exist);
 * - the profile of each level by {@link lintCertificate} (its `ERR_PROFILE_*` errors break the
 *   path; its warnings are passed on as warnings);
 * - the leaf is an organisation or device certificate (`ERR_CHAIN_PROFILE_VIOLATION`), issued by
 *   an organisation CA or a device CA respectively (`ERR_CHAIN_PKI_MISMATCH`);
 * - every certificate carries a policy the environment allows at its level
 *   (`ERR_CHAIN_POLICY_NOT_ALLOWED`).
 *
 * Revocation (RFC 5280 §6.3), for every certificate but the anchor (anchors are trusted as
 * given): the CRLs whose issuer name equals the certificate's issuer name and whose
 * authorityKeyIdentifier (if any) names the issuer's key are tried, newest first. A CRL is usable
 * when the issuer has cRLSign (`ERR_CRL_ISSUER_KEY_USAGE`), its signature verifies with the
 * issuer's key (`ERR_CRL_SIGNATURE_INVALID`), it has no unprocessed critical extension
 * (`ERR_CRL_UNKNOWN_CRITICAL_EXTENSION`), its scope covers the certificate (an ARL marked
 * onlyContainsCACerts covers CAs only, a CRL marked onlyContainsUserCerts end entities only),
 * it carries a cRLNumber (`ERR_CRL_NUMBER_MISSING`) that is not marked critical
 * (`ERR_CRL_NUMBER_CRITICAL`; RFC 5280 §5.2.3: conforming issuers include it, non-critical;
 * {@link issueCrl} always does), thisUpdate ≤ `at` (`ERR_CRL_NOT_YET_VALID`) and
 * `at` ≤ nextUpdate + grace (`ERR_CRL_EXPIRED`), to the whole second as for certificates.
 * Such problems are errors unless another usable CRL covers the certificate (then warnings).
 * A serial listed in any authentic in-scope CRL gives `ERR_REVOKED` (context: serial, revocation
 * date, reason), whatever that CRL's dates. When no CRL from the issuer was given, a warning
 * `ERR_CRL_ISSUER_MISMATCH` says so; with `requireRevocation` an uncovered certificate is
 * `ERR_CRL_MISSING` (an error). `revocationChecked` is true only when every certificate but the
 * anchor was covered.
 *
 * No anchors gives `ERR_CHAIN_NO_ANCHORS`; no path to an anchor `ERR_CHAIN_ISSUER_NOT_FOUND`.
 * Any exception inside a check becomes an error finding (fail closed).
 *
 * For many validations with the same anchors, intermediates and CRLs use
 * {@link createPathValidator}; this function builds one per call (cheap with parsed inputs).
 *
 * @throws SmkiError `ERR_CERT_MALFORMED`, `ERR_PEM_INVALID`, `ERR_CRL_MALFORMED` for inputs that
 *   do not parse; `ERR_INVALID_ARGUMENT` for look-alike objects and bad options. Validation
 *   problems are findings, never exceptions.
 * @see RFC 5280 §4.1.2.5 (validity), §5.2.3 (cRLNumber), §6.1 (basic path validation), §6.3 (CRL
 *   processing), §7.1 (name comparison); RFC 4158 (path building); docs/domain.md §2
 * @example
 * ```ts
 * import { createHierarchy, issueCrl, issueOrganisationCertificate, validatePath } from '@smki/pki';
 * import { generateKeyPairSync } from 'node:crypto';
 * const { root, organisationCa } = await createHierarchy();
 * const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
 * const leaf = await issueOrganisationCertificate({
 *   issuer: organisationCa, role: 2, entityId: '90B3D51F30010000', keyUsage: 'digitalSignature', publicKey,
 * });
 * const crl = await issueCrl({
 *   issuer: organisationCa, crlNumber: 2n, kind: 'crl',
 *   revoked: [{ serialNumber: leaf, revocationDate: new Date(), reason: 'keyCompromise' }],
 * });
 * const r = validatePath(leaf, { anchors: [root.certificate], intermediates: [organisationCa.certificate], crls: [crl] });
 * console.log(r.valid, r.findings.filter((f) => f.severity === 'error').map((f) => f.code)); // false [ 'ERR_REVOKED' ]
 * ```
 */
export function validatePath(leaf: CertificateInput, options: PathValidationOptions): PathValidationResult {
  // createPathValidator refuses options that are not an object before `options.at` is read.
  // Stryker disable next-line ConditionalExpression: equivalent; validate treats an `at` of undefined as absent
  return createPathValidator(options).validate(leaf, { ...(options.at !== undefined ? { at: options.at } : {}) });
}
