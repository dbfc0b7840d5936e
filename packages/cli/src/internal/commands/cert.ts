/**
 * `smki cert` and `smki crl`: issue organisation and device certificates from the state
 * directory's test hierarchy (docs/domain.md §2), inspect, lint and verify certificates, and
 * issue and extend the organisation CRL and the authority revocation list (RFC 5280 §5).
 *
 * Keys the command generates are written only as encrypted PKCS#8 (PBES2, RFC 8018) under the
 * state passphrase, never in clear; a file that would be overwritten is refused.
 * @module
 * @internal
 */
import { close, closeSync, existsSync, fsync, fsyncSync, mkdirSync, open, openSync, rename, unlink, write } from 'node:fs';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { basename, dirname, join, resolve } from 'node:path';
import { isRemotePartyRole, roleName, SmkiError, type EndEntityKeyUsage, type Eui64 } from '@smki/core';
import {
  certificateProfile,
  certificateToPem,
  issueDeviceCertificate,
  issueOrganisationCertificate,
  lintCertificate,
  parseCertificate,
  validatePath,
  type CrlReason,
  type PathFinding,
  type SmkiCertificate,
  type SmkiCrl,
} from '@smki/pki';
import type { Command } from 'commander';
import { choice, example, intOption, type Ctx, type Register } from '../program.js';
import { eui, writeEncryptedKey, type RevocationState, type State } from '../state.js';
import { readInput, writeFileAtomic } from '../files.js';
import { table } from '../io.js';

/** Most device certificates one `cert issue --count` run issues. */
export const MAX_BATCH = 100_000;

/** The key usages by their short names on the command line. */
const USAGES: ReadonlyMap<string, EndEntityKeyUsage> = new Map([
  ['ds', 'digitalSignature'],
  ['ka', 'keyAgreement'],
]);

/** Reasons a `crl revoke` may give (RFC 5280 §5.3.1; removeFromCRL belongs to delta CRLs only). */
const REASONS: readonly Exclude<CrlReason, 'removeFromCRL'>[] = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'privilegeWithdrawn',
  'aACompromise',
];

/** Roles an organisation certificate may carry (0 and 7 name CAs), by number and by name. */
const END_ENTITY_ROLES = [1, 2, 3, 4, 5, 6, 8, 127, 135, 137] as const;

/** Parse `--role`: a decimal Remote Party Role code or its name (`2`, `supplier`). */
function parseRole(v: string): number {
  const t = v.trim();
  let code: number | undefined;
  if (/^\d{1,3}$/.test(t)) code = Number(t);
  else code = END_ENTITY_ROLES.find((c) => roleName(c).toLowerCase() === t.toLowerCase().replace(/[-_ ]/g, ''));
  if (code === undefined || !isRemotePartyRole(code) || code === 0 || code === 7) {
    throw new SmkiError('ERR_CLI_USAGE', `--role must be an end-entity Remote Party Role: ${END_ENTITY_ROLES.map((c) => `${c} (${roleName(c)})`).join(', ')}`, { detail: v.slice(0, 32) });
  }
  return code;
}

/** A role as `2 (supplier)`. */
function roleText(role: number | undefined): string | undefined {
  return role === undefined ? undefined : `${role} (${isRemotePartyRole(role) ? roleName(role) : 'unknown'})`;
}

/** Whether bytes hold PEM text rather than DER. */
function isPem(buf: Uint8Array): boolean {
  return Buffer.from(buf.subarray(0, 4096)).toString('latin1').includes('-----BEGIN ');
}

/** A path given on the command line, resolved against the working directory. */
function here(ctx: Ctx, file: string): string {
  return resolve(ctx.io.cwd, file);
}

/** A serial number argument: hex digits, optionally `0x`, at most 20 octets (RFC 5280 §4.1.2.2). */
const SERIAL = /^(?:0[xX])?[0-9a-fA-F]{1,40}$/;

/**
 * The certificate an argument names: a PEM or DER file, else a serial number of a certificate
 * issued here (or of a CA of the hierarchy).
 * @throws SmkiError `ERR_CLI_INPUT_INVALID` (an unreadable file), `ERR_CLI_NOT_FOUND` (an unknown
 *   serial), `ERR_CERT_MALFORMED` / `ERR_PEM_INVALID` (not a certificate)
 */
async function loadCertificate(ctx: Ctx, arg: string): Promise<{ cert: SmkiCertificate; source: string }> {
  if (arg === '-' || existsSync(here(ctx, arg))) {
    const buf = await readInput(ctx.io, arg);
    const cert = parseCertificate(isPem(buf) ? buf.toString('utf8') : new Uint8Array(buf));
    return { cert, source: arg === '-' ? 'standard input' : here(ctx, arg) };
  }
  if (SERIAL.test(arg)) {
    const cert = ctx.state().certificateBySerial(arg);
    if (cert === undefined) throw new SmkiError('ERR_CLI_NOT_FOUND', `no certificate with serial ${arg.toUpperCase()} was issued in this state directory`, { detail: arg.toUpperCase() });
    return { cert, source: `serial ${cert.serialNumber}` };
  }
  throw new SmkiError('ERR_CLI_INPUT_INVALID', 'no such file, and not a certificate serial number (hex)', { detail: arg.slice(0, 200) });
}

/** Read a CSR or public-key file as PEM text or DER bytes. */
async function readPemOrDer(ctx: Ctx, file: string): Promise<string | Uint8Array> {
  const buf = await readInput(ctx.io, file);
  if (buf.length === 0) throw new SmkiError('ERR_CLI_INPUT_INVALID', 'the file is empty', { detail: file });
  return isPem(buf) ? buf.toString('utf8') : new Uint8Array(buf);
}

/** The fields `cert inspect` shows (and `--json` prints). */
function describe(c: SmkiCertificate, profile: string): Record<string, unknown> {
  return {
    kind: c.kind,
    profile,
    subject: c.subject.text,
    issuer: c.issuer.text,
    serialNumber: c.serialNumber,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    ...(c.role !== undefined ? { role: c.role, roleName: isRemotePartyRole(c.role) ? roleName(c.role) : undefined } : {}),
    ...(c.entityId !== undefined ? { entityId: c.entityId } : {}),
    ...(c.commonName !== undefined ? { commonName: c.commonName } : {}),
    keyUsage: c.keyUsage,
    ...(c.basicConstraints !== undefined ? { basicConstraints: c.basicConstraints } : {}),
    ...(c.subjectKeyId !== undefined ? { subjectKeyId: c.subjectKeyId } : {}),
    ...(c.authorityKeyId !== undefined ? { authorityKeyId: c.authorityKeyId } : {}),
    policies: c.policies,
    ...(c.hardwareModuleName !== undefined ? { hwSerialNum: c.hardwareModuleName.hwSerialNum, hwType: c.hardwareModuleName.hwType } : {}),
    publicKey: Buffer.from(c.publicKeyBytes).toString('hex').toUpperCase(),
    signatureAlgorithm: c.signatureAlgorithm,
    fingerprint: c.fingerprint,
  };
}

/** `label: value` lines, labels padded. */
function fields(rows: readonly (readonly [string, string | undefined])[]): string {
  const shown = rows.filter((r): r is readonly [string, string] => r[1] !== undefined);
  const w = Math.max(...shown.map(([k]) => k.length));
  return shown.map(([k, v]) => `${`${k}:`.padEnd(w + 2)}${v}`).join('\n');
}

/** A finding as one line: code, severity, certificate index, message. */
function findingLine(ctx: Ctx, f: { code: string; severity: string; message: string; certificateIndex?: number }): string {
  const sev = f.severity === 'error' ? ctx.paint.red('error  ') : ctx.paint.yellow('warning');
  return `  ${sev} ${f.code}${f.certificateIndex !== undefined ? ` [certificate ${f.certificateIndex}]` : ''}: ${f.message}`;
}

/** Refuse to overwrite a private key file. */
function freshKeyPath(path: string, option: string): void {
  if (existsSync(path)) throw new SmkiError('ERR_CLI_USAGE', `${option}: ${path} exists; smki never overwrites a private key file`, { detail: path });
}

/** The EUI-64 `n` after `start`, or a usage error past FFFFFFFFFFFFFFFF. */
function nextEui(start: bigint, n: number): Eui64 {
  return (start + BigInt(n)).toString(16).toUpperCase().padStart(16, '0') as Eui64;
}

/** How many certificate files a batch has in flight at once (open, write, fsync, rename). */
const WRITES_IN_FLIGHT = 32;

/**
 * Durable writes that overlap with issuance: each file is written to a temporary name, fsynced
 * and renamed (so a crash never leaves a torn certificate), on libuv's thread pool while the main
 * thread signs the next certificates; {@link BatchWriter.finish} waits for all of them and then
 * fsyncs the directory once, so by the time the batch reports success every file is as durable
 * as `writeFileAtomic` makes one. Per file, fsync of the file and of the directory one after the
 * other (as `state.saveCertificate`) costs more than issuing the certificate.
 */
class BatchWriter {
  readonly #pending = new Set<Promise<void>>();
  readonly #dirs = new Set<string>();
  #error: unknown;

  /** Queue a write; waits only when {@link WRITES_IN_FLIGHT} are already under way. */
  async write(path: string, data: string, mode: number): Promise<void> {
    if (this.#error !== undefined) throw this.#error;
    const dir = dirname(path);
    if (!this.#dirs.has(dir)) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      this.#dirs.add(dir);
    }
    const p: Promise<void> = writeDurable(path, data, mode)
      .catch((e: unknown) => {
        this.#error ??= e;
      })
      .finally(() => this.#pending.delete(p));
    this.#pending.add(p);
    if (this.#pending.size >= WRITES_IN_FLIGHT) await Promise.race(this.#pending);
    // Let finished file operations hand over their next step (each file takes five).
    else await new Promise<void>((r) => setImmediate(r));
  }

  /** Wait for every write, then fsync each directory written to; throws the first failure. */
  async finish(): Promise<void> {
    await Promise.all(this.#pending);
    for (const dir of this.#dirs) {
      const fd = openSync(dir, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    if (this.#error !== undefined) throw this.#error;
  }
}

const openP = promisify(open);
const writeP = promisify(write);
const fsyncP = promisify(fsync);
const closeP = promisify(close);
const renameP = promisify(rename);
const unlinkP = promisify(unlink);

/**
 * Write, fsync and rename into place one file (the directory's fsync is the caller's). The
 * callback API, not `FileHandle`: a handle object per file costs the main thread more than the
 * certificate's signature.
 */
async function writeDurable(path: string, data: string, mode: number): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = await openP(tmp, 'wx', mode);
  try {
    const buf = Buffer.from(data, 'utf8');
    let off = 0;
    while (off < buf.length) off += (await writeP(fd, buf, off, buf.length - off)).bytesWritten;
    await fsyncP(fd);
  } catch (e) {
    await closeP(fd).catch(() => {});
    await unlinkP(tmp).catch(() => {});
    throw e;
  }
  await closeP(fd);
  await renameP(tmp, path);
}

interface IssueOptions {
  readonly kind: 'organisation' | 'device';
  readonly role?: number;
  readonly entity?: string;
  readonly usage: string;
  readonly csr?: string;
  readonly publicKey?: string;
  readonly keyOut?: string;
  readonly out?: string;
  readonly count?: number;
  readonly commonName?: string;
}

/** `cert issue --kind device --count n`: n certificates, consecutive device ids, fresh keys. */
async function issueBatch(ctx: Ctx, o: IssueOptions, keyUsage: EndEntityKeyUsage, first: Eui64, count: number) {
  const start = BigInt(`0x${first}`);
  if (start + BigInt(count - 1) > 0xffff_ffff_ffff_ffffn) throw new SmkiError('ERR_CLI_USAGE', `--entity ${first} plus --count ${count} runs past FFFFFFFFFFFFFFFF`, { detail: first });
  const usage = o.usage.toLowerCase();
  const keyDir = o.keyOut === undefined ? undefined : here(ctx, o.keyOut);
  const keyFile = (e: Eui64) => join(keyDir as string, `${e}-${usage}.key.pem`);
  if (keyDir !== undefined) {
    // Every key file is checked before the first certificate: no batch stops half-way on a clash.
    for (let i = 0; i < count; i++) freshKeyPath(keyFile(nextEui(start, i)), '--key-out');
    mkdirSync(keyDir, { recursive: true, mode: 0o700 });
  }
  const state = ctx.state();
  const { deviceCa } = state.hierarchy();
  const pass = keyDir !== undefined ? state.passphrase : undefined;
  const issued: { entity: Eui64; serial: string; file: string; keyFile?: string }[] = [];
  const bar = ctx.progress('issuing device certificates', count);
  const writer = new BatchWriter();
  const t0 = performance.now();
  try {
    for (let i = 0; i < count; i++) {
      const entity = nextEui(start, i);
      // A bare key pair: state's newKeyPair() also builds a signer, which costs a third of an issuance.
      const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const c = await issueDeviceCertificate({ issuer: deviceCa, entityId: entity, keyUsage, publicKey: kp.publicKey });
      let kf: string | undefined;
      if (keyDir !== undefined) {
        kf = keyFile(entity);
        // Encrypted as writeEncryptedKey does (PKCS#8, PBES2 with AES-256-CBC); a failed write fails the batch.
        await writer.write(kf, kp.privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: pass as string }) as string, 0o600);
      }
      // Where state.saveCertificate keeps it (state.certificateBySerial finds it there).
      const file = state.path('certs', 'device', `${c.serialNumber}.pem`);
      await writer.write(file, certificateToPem(c), 0o644);
      issued.push({ entity, serial: c.serialNumber, file, ...(kf !== undefined ? { keyFile: kf } : {}) });
      bar.tick();
    }
  } catch (e) {
    bar.stop();
    // Whatever was issued before the failure is still written out; the first error is reported.
    await writer.finish().catch(() => {});
    throw e;
  }
  bar.stop();
  await writer.finish();
  const seconds = (performance.now() - t0) / 1000;
  const rate = Math.round(count / Math.max(seconds, 1e-9));
  const shown = count <= 20 ? issued : [...issued.slice(0, 3), undefined, ...issued.slice(-3)];
  return {
    json: issued,
    text: [
      `${ctx.paint.green('✔')} issued ${count.toLocaleString('en-GB')} device certificates (${keyUsage}), ${issued[0]!.entity} to ${issued[issued.length - 1]!.entity}, in ${seconds.toFixed(seconds < 10 ? 2 : 1)} s (${rate.toLocaleString('en-GB')}/s)`,
      `  certificates: ${state.path('certs', 'device')}`,
      keyDir !== undefined ? `  keys (encrypted PKCS#8): ${keyDir}` : '  keys: not kept (give --key-out <dir> to keep them, encrypted)',
      '',
      table(
        ['device', 'serial', 'file'],
        shown.map((r) => (r === undefined ? ['…', '…', '…'] : [r.entity, r.serial, r.file])),
      ),
      count > 20 ? '(--json lists every certificate)' : '',
    ].join('\n'),
  };
}

/** `cert issue`. */
async function issue(ctx: Ctx, o: IssueOptions) {
  const keyUsage = USAGES.get(o.usage.toLowerCase());
  if (keyUsage === undefined) throw new SmkiError('ERR_CLI_USAGE', '--usage must be ds (digitalSignature) or ka (keyAgreement)', { detail: o.usage.slice(0, 16) });
  if (o.entity === undefined) throw new SmkiError('ERR_CLI_USAGE', `--entity <eui> is required (the ${o.kind === 'device' ? 'device id' : "party's entity id"})`, {});
  const entity = eui(o.entity, '--entity');
  if (o.csr !== undefined && o.publicKey !== undefined) throw new SmkiError('ERR_CLI_USAGE', 'give one of --csr and --public-key, not both', {});
  const given = o.csr !== undefined || o.publicKey !== undefined;
  if (given && o.keyOut !== undefined) throw new SmkiError('ERR_CLI_USAGE', '--key-out is for a key smki generates; with --csr or --public-key the private key stays with you', {});
  if (o.kind === 'organisation') {
    if (o.role === undefined) throw new SmkiError('ERR_CLI_USAGE', '--role <n> is required for an organisation certificate (2 supplier, 3 network operator, 4 ACB, …)', {});
    if (o.count !== undefined) throw new SmkiError('ERR_CLI_USAGE', '--count is for device certificates', {});
  } else {
    if (o.role !== undefined) throw new SmkiError('ERR_CLI_USAGE', '--role is for organisation certificates (a device certificate has an empty subject)', {});
    if (o.commonName !== undefined) throw new SmkiError('ERR_CLI_USAGE', '--common-name is for organisation certificates (a device certificate has an empty subject)', {});
  }
  if (o.count !== undefined) {
    if (given) throw new SmkiError('ERR_CLI_USAGE', '--count issues each device a fresh generated key: leave out --csr and --public-key', {});
    if (o.out !== undefined) throw new SmkiError('ERR_CLI_USAGE', '--out writes one certificate: leave it out with --count (the certificates are kept in the state directory; --json lists them)', {});
    return issueBatch(ctx, o, keyUsage, entity, o.count);
  }
  if (!given && o.keyOut === undefined) {
    throw new SmkiError('ERR_CLI_USAGE', 'give --csr <file> or --public-key <file>, or --key-out <file> for a generated key (written encrypted under the passphrase)', {});
  }
  const keyPath = o.keyOut === undefined ? undefined : here(ctx, o.keyOut);
  if (keyPath !== undefined) freshKeyPath(keyPath, '--key-out');

  let subjectKey: { csr: string | Uint8Array } | { publicKey: string | Uint8Array | KeyObject };
  let generated: { privateKey: KeyObject; publicKey: KeyObject } | undefined;
  if (o.csr !== undefined) {
    subjectKey = { csr: await readPemOrDer(ctx, o.csr) };
  } else if (o.publicKey !== undefined) {
    const k = await readPemOrDer(ctx, o.publicKey);
    if (typeof k === 'string' && /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(k)) {
      throw new SmkiError('ERR_CLI_USAGE', '--public-key takes a public key (PEM SPKI); never hand a private key over', { detail: o.publicKey });
    }
    subjectKey = { publicKey: k };
  } else {
    generated = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    subjectKey = { publicKey: generated.publicKey };
  }
  const state = ctx.state();
  const h = state.hierarchy();
  const c =
    o.kind === 'organisation'
      ? await issueOrganisationCertificate({ issuer: h.organisationCa, role: o.role as number, entityId: entity, keyUsage, ...subjectKey, ...(o.commonName !== undefined ? { commonName: o.commonName } : {}) })
      : await issueDeviceCertificate({ issuer: h.deviceCa, entityId: entity, keyUsage, ...subjectKey });
  // The key first, then the certificate: a certificate is never kept for a key that was lost.
  if (generated !== undefined && keyPath !== undefined) writeEncryptedKey(keyPath, generated.privateKey, state.passphrase);
  const file = state.saveCertificate(c);
  const out = o.out === undefined ? undefined : here(ctx, o.out);
  if (out !== undefined) writeFileAtomic(out, certificateToPem(c), 0o644);
  return {
    json: {
      kind: c.kind,
      serialNumber: c.serialNumber,
      entityId: c.entityId,
      ...(c.role !== undefined ? { role: c.role } : {}),
      keyUsage: c.keyUsage,
      notBefore: c.notBefore.toISOString(),
      notAfter: c.notAfter.toISOString(),
      file,
      ...(out !== undefined ? { out } : {}),
      ...(keyPath !== undefined ? { keyFile: keyPath } : {}),
      keySource: o.csr !== undefined ? 'csr' : o.publicKey !== undefined ? 'publicKey' : 'generated',
    },
    text: [
      `${ctx.paint.green('✔')} issued ${c.kind} certificate ${c.serialNumber}`,
      fields([
        ['  entity', c.entityId],
        ['  role', roleText(c.role)],
        ['  key usage', c.keyUsage.join(', ')],
        ['  valid', `${c.notBefore.toISOString()} to ${c.notAfter.toISOString()}`],
        ['  file', file],
        ['  also written to', out],
        ['  private key', keyPath === undefined ? undefined : `${keyPath} (encrypted PKCS#8 under the store passphrase)`],
      ]),
    ].join('\n'),
  };
}

/** `cert inspect`. */
async function inspect(ctx: Ctx, arg: string) {
  const { cert: c, source } = await loadCertificate(ctx, arg);
  const d = describe(c, certificateProfile(c));
  return {
    json: d,
    text: [
      ctx.paint.bold(`${c.kind} certificate ${c.serialNumber}`) + ctx.paint.dim(` (${source})`),
      fields([
        ['kind', c.kind],
        ['profile', String(d.profile)],
        ['subject', c.subject.text === '' ? '(empty)' : c.subject.text],
        ['issuer', c.issuer.text],
        ['serial', c.serialNumber],
        ['not before', c.notBefore.toISOString()],
        ['not after', c.notAfter.toISOString()],
        ['role', roleText(c.role)],
        ['entity id', c.entityId],
        ['common name', c.commonName],
        ['key usage', c.keyUsage.join(', ') || '(none)'],
        ['basic constraints', c.basicConstraints === undefined ? undefined : `cA ${c.basicConstraints.ca ? 'TRUE' : 'FALSE'}${c.basicConstraints.pathLength !== undefined ? `, pathLen ${c.basicConstraints.pathLength}` : ''}`],
        ['SKI', c.subjectKeyId],
        ['AKI', c.authorityKeyId],
        ['policies', c.policies.join(', ') || '(none)'],
        ['hwSerialNum', c.hardwareModuleName?.hwSerialNum],
        ['hwType', c.hardwareModuleName?.hwType],
        ['public key', String(d.publicKey)],
        ['signature', c.signatureAlgorithm],
        ['SHA-256', c.fingerprint],
      ]),
    ].join('\n'),
  };
}

/** `cert lint`. */
async function lint(ctx: Ctx, arg: string) {
  const { cert: c, source } = await loadCertificate(ctx, arg);
  const findings = lintCertificate(c);
  const errors = findings.filter((f) => f.severity === 'error').length;
  const warnings = findings.length - errors;
  const profile = certificateProfile(c);
  return {
    json: { serialNumber: c.serialNumber, kind: c.kind, profile, conforms: errors === 0, errors, warnings, findings },
    text: [
      errors === 0
        ? `${ctx.paint.green('✔')} ${c.serialNumber} conforms to the ${profile} profile${warnings > 0 ? ` (${warnings} warning${warnings === 1 ? '' : 's'})` : ''} ${ctx.paint.dim(`(${source})`)}`
        : `${ctx.paint.red('✘')} ${c.serialNumber} breaks the ${profile} profile: ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'} ${ctx.paint.dim(`(${source})`)}`,
      ...findings.map((f) => findingLine(ctx, f)),
    ].join('\n'),
    exit: errors > 0 ? ('REJECTED' as const) : ('OK' as const),
  };
}

/** `--at`: an ISO 8601 time, or a usage error. */
function parseAt(v: string): Date {
  const d = new Date(v);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || Number.isNaN(d.getTime())) throw new SmkiError('ERR_CLI_USAGE', '--at must be an ISO 8601 time, e.g. 2027-01-01T00:00:00Z', { detail: v.slice(0, 40) });
  return d;
}

/** `cert verify`. */
async function verify(ctx: Ctx, arg: string, o: { revocation: boolean; at?: Date }) {
  const { cert: leaf, source } = await loadCertificate(ctx, arg);
  const state = ctx.state();
  const [root, ...intermediates] = state.caCertificates();
  let crls: SmkiCrl[];
  try {
    crls = state.crls();
  } catch (e) {
    // Without the revocation requirement, a missing list is no reason to refuse to look at the path.
    if (o.revocation || !(e instanceof SmkiError && e.code === 'ERR_CLI_STATE_INVALID')) throw e;
    crls = [];
  }
  const at = o.at ?? new Date();
  const r = validatePath(leaf, { anchors: [root!], intermediates, crls, requireRevocation: o.revocation, at });
  const findings = r.findings.map((f: PathFinding) => ({ code: f.code, severity: f.severity, message: f.message, ...(f.certificateIndex !== undefined ? { certificateIndex: f.certificateIndex } : {}), ...(f.context !== undefined ? { context: f.context } : {}) }));
  const names = r.path.map((c, i) => (i === 0 ? c.serialNumber : c.subject.text));
  const deviceNoCrl = !r.valid && leaf.kind === 'device' && r.findings.some((f) => f.code === 'ERR_CRL_MISSING' && f.certificateIndex === 0);
  return {
    json: {
      valid: r.valid,
      serialNumber: leaf.serialNumber,
      kind: leaf.kind,
      at: at.toISOString(),
      revocationRequired: o.revocation,
      revocationChecked: r.revocationChecked,
      path: r.path.map((c) => ({ serialNumber: c.serialNumber, kind: c.kind, subject: c.subject.text })),
      findings,
    },
    text: [
      r.valid
        ? `${ctx.paint.green('✔ valid')}: ${names.join(' → ')} at ${at.toISOString()}; revocation ${r.revocationChecked ? 'checked' : 'not checked'} ${ctx.paint.dim(`(${source})`)}`
        : `${ctx.paint.red('✘ invalid')}: ${names.join(' → ')} at ${at.toISOString()} ${ctx.paint.dim(`(${source})`)}`,
      ...findings.map((f) => findingLine(ctx, f)),
      ...(deviceNoCrl ? ['  note: this state directory issues no CRL for the device CA (devices never fetch CRLs, docs/domain.md §2); use --no-revocation to check the rest'] : []),
    ].join('\n'),
    exit: r.valid ? ('OK' as const) : ('REJECTED' as const),
  };
}

/** The CRL and ARL as rows and JSON. */
function listsOut(lists: readonly SmkiCrl[], state: State) {
  const names = ['organisation CRL', 'ARL (root)'];
  const files = [state.path('crl', 'organisation-ca.crl.pem'), state.path('crl', 'root.arl.pem')];
  const json = lists.map((l, i) => ({
    list: i === 0 ? 'crl' : 'arl',
    issuer: l.issuer.text,
    crlNumber: l.crlNumber,
    thisUpdate: l.thisUpdate.toISOString(),
    nextUpdate: l.nextUpdate?.toISOString(),
    entries: [...l.revoked.values()].map((e) => ({ serialNumber: e.serialNumber, revocationDate: e.revocationDate.toISOString(), ...(e.reason !== undefined ? { reason: e.reason } : {}) })),
    file: files[i],
  }));
  const rows = lists.map((l, i) => [names[i]!, String(l.crlNumber ?? '-'), l.thisUpdate.toISOString(), l.nextUpdate?.toISOString() ?? '-', l.revoked.size, files[i]!]);
  const entries = json.flatMap((l) => l.entries.map((e) => `  ${l.list === 'crl' ? 'CRL' : 'ARL'} ${e.serialNumber} revoked ${e.revocationDate}${e.reason ? ` (${e.reason})` : ''}`));
  return { json, text: [table(['list', 'number', 'thisUpdate', 'nextUpdate', 'entries', 'file'], rows), ...(entries.length > 0 ? ['', 'revoked:', ...entries] : [])].join('\n') };
}

/** `crl issue`. */
async function crlIssue(ctx: Ctx, hours: number) {
  const state = ctx.state();
  const lists = await state.issueCrls(state.revocation(), hours);
  const out = listsOut(lists, state);
  return { json: { lists: out.json }, text: `${ctx.paint.green('✔')} issued CRL and ARL number ${String(lists[0]!.crlNumber)}, valid ${hours} h\n\n${out.text}` };
}

/** `crl revoke`. */
async function crlRevoke(ctx: Ctx, arg: string, o: { reason?: Exclude<CrlReason, 'removeFromCRL'>; hours: number }) {
  const state = ctx.state();
  const { cert } = await loadCertificate(ctx, arg);
  // Only what this hierarchy issued: the serial must name the same certificate here.
  const known = state.certificateBySerial(cert.serialNumber);
  if (known === undefined || known.fingerprint !== cert.fingerprint) {
    throw new SmkiError('ERR_CLI_NOT_FOUND', `certificate ${cert.serialNumber} was not issued in this state directory`, { detail: cert.serialNumber });
  }
  const [root, oca, dca] = state.caCertificates();
  let issuer: 'organisation-ca' | 'root';
  if (cert.fingerprint === root!.fingerprint) {
    throw new SmkiError('ERR_CLI_INPUT_INVALID', 'the root cannot be revoked by a list it signs itself: replace the hierarchy instead (smki init)', { detail: cert.serialNumber });
  } else if (cert.fingerprint === oca!.fingerprint || cert.fingerprint === dca!.fingerprint) {
    issuer = 'root';
  } else if (cert.kind === 'organisation') {
    issuer = 'organisation-ca';
  } else {
    throw new SmkiError('ERR_CLI_INPUT_INVALID', 'only organisation certificates and the organisation and device CAs are revoked by list here; devices never fetch CRLs (docs/domain.md §2)', { detail: `${cert.serialNumber} (${cert.kind})` });
  }
  const current: RevocationState = state.revocation();
  const previous = current.entries.find((e) => e.serialNumber.toUpperCase() === cert.serialNumber);
  if (previous !== undefined) {
    throw new SmkiError('ERR_CLI_INPUT_INVALID', `certificate ${cert.serialNumber} is already revoked (since ${previous.revocationDate}); nothing was changed`, { detail: cert.serialNumber });
  }
  const entry = {
    serialNumber: cert.serialNumber,
    revocationDate: new Date(Math.floor(Date.now() / 1000) * 1000).toISOString(),
    ...(o.reason !== undefined && o.reason !== 'unspecified' ? { reason: o.reason } : {}),
    issuer,
  };
  const lists = await state.issueCrls({ crlNumber: current.crlNumber, entries: [...current.entries, entry] }, o.hours);
  const out = listsOut(lists, state);
  const where = issuer === 'root' ? 'the ARL (root)' : 'the organisation CRL';
  return {
    json: { revoked: { ...entry, kind: cert.kind, list: issuer === 'root' ? 'arl' : 'crl' }, lists: out.json },
    text: `${ctx.paint.green('✔')} revoked ${cert.kind} certificate ${cert.serialNumber}${entry.reason ? ` (${entry.reason})` : ''}; listed in ${where}, number ${String(lists[0]!.crlNumber)}\n\n${out.text}`,
  };
}

export const register: Register = (program, wrap) => {
  const cert = program.command('cert').description('issue, inspect, lint and verify SMKI certificates (organisation and device)');
  example(cert, 'smki cert issue --kind organisation --role 2 --entity 90-B3-D5-1F-30-01-00-00 --usage ds --key-out supplier-ds.key.pem', 'smki cert verify certs/supplier.pem');

  const issueCmd: Command = cert
    .command('issue')
    .description('issue an organisation or device certificate from the test hierarchy (docs/domain.md §2) and keep it in the state directory')
    .addOption(choice('--kind <kind>', 'organisation or device', ['organisation', 'device']).makeOptionMandatory())
    .option('--role <n>', 'organisation: the Remote Party Role, number or name (2 supplier, 3 network operator, 4 ACB, …)', parseRole)
    .option('--entity <eui>', "the EUI-64: the party's entity id, or the (first) device id")
    .addOption(choice('--usage <usage>', 'the one key usage: ds (digitalSignature) or ka (keyAgreement)', ['ds', 'ka']).makeOptionMandatory())
    .option('--csr <file>', 'a PKCS#10 request (PEM or DER; its proof of possession is checked)')
    .option('--public-key <file>', 'the subject public key (PEM SPKI, P-256)')
    .option('--key-out <path>', 'generate the key pair and write the private key here, encrypted PKCS#8 under the passphrase (with --count: a directory, one file per device)')
    .option('--common-name <cn>', 'organisation: an optional common name')
    .option('--count <n>', `device: issue n certificates (1 to ${MAX_BATCH.toLocaleString('en-GB')}) for consecutive device ids from --entity, each with a fresh key`, intOption('--count', 1, MAX_BATCH))
    .option('--out <file>', 'also write the certificate PEM here');
  example(
    issueCmd,
    'smki cert issue --kind organisation --role 2 --entity 90B3D51F30010000 --usage ds --csr supplier-ds.csr.pem',
    'smki cert issue --kind organisation --role 3 --entity 90B3D51F30030000 --usage ka --key-out dno-ka.key.pem --out dno-ka.pem',
    'smki cert issue --kind device --entity 00-DB-12-34-56-78-90-A0 --usage ka --public-key meter-ka.pub.pem',
    'smki cert issue --kind device --entity 00DB123400000000 --usage ka --count 10000 --json > devices.json',
  );
  issueCmd.action(wrap(async (ctx, _args, o) => issue(ctx, o as unknown as IssueOptions)));

  const inspectCmd = cert
    .command('inspect')
    .description('show a certificate: kind, subject, issuer, serial, validity, role, entity id, key usage, SKI/AKI, policies, hwSerialNum')
    .argument('<file-or-serial>', 'a PEM or DER file (- for standard input), or the serial of a certificate issued here');
  example(inspectCmd, 'smki cert inspect ca/organisation-ca.pem', 'smki cert inspect 3C3FD8718EF908DF7B1F44FB761E07F3 --json');
  inspectCmd.action(wrap(async (ctx, args) => inspect(ctx, args[0] as string)));

  const lintCmd = cert
    .command('lint')
    .description('check a certificate against its SMKI profile (docs/domain.md §2); exit 1 on any error-severity finding')
    .argument('<file-or-serial>', 'a PEM or DER file (- for standard input), or the serial of a certificate issued here');
  example(lintCmd, 'smki cert lint supplier-ds.pem', 'smki cert lint meter.der --json');
  lintCmd.action(wrap(async (ctx, args) => lint(ctx, args[0] as string)));

  const verifyCmd = cert
    .command('verify')
    .description("validate a certificate's path to the state's root (RFC 5280 §6.1 and the SMKI rules) with the CRL and ARL; exit 1 when invalid")
    .argument('<file-or-serial>', 'a PEM or DER file (- for standard input), or the serial of a certificate issued here')
    .option('--no-revocation', 'do not require every certificate below the root to be covered by a CRL (listed ones still count as revoked)')
    .option('--at <iso-time>', 'validate at this time instead of now', parseAt);
  example(verifyCmd, 'smki cert verify supplier-ds.pem', 'smki cert verify 3C3FD8718EF908DF7B1F44FB761E07F3 --at 2030-01-01T00:00:00Z --json', 'smki cert verify meter-ka.pem --no-revocation');
  verifyCmd.action(wrap(async (ctx, args, o) => verify(ctx, args[0] as string, o as { revocation: boolean; at?: Date })));

  const crl = program.command('crl').description('issue the organisation CRL and the authority revocation list, and revoke certificates (RFC 5280 §5)');
  example(crl, 'smki crl revoke 3C3FD8718EF908DF7B1F44FB761E07F3 --reason keyCompromise', 'smki crl issue --hours 24');

  const crlIssueCmd = crl
    .command('issue')
    .description('issue the next CRL (organisation CA) and ARL (root) from the revocation state')
    .option('--hours <n>', 'hours until nextUpdate (1 to 87,600)', intOption('--hours', 1, 87_600), 24 * 7);
  example(crlIssueCmd, 'smki crl issue', 'smki crl issue --hours 24 --json');
  crlIssueCmd.action(wrap(async (ctx, _args, o) => crlIssue(ctx, o.hours as number)));

  const revokeCmd = crl
    .command('revoke')
    .description('revoke a certificate issued here (organisation certificate → CRL; organisation or device CA → ARL) and issue new lists at once')
    .argument('<serial-or-file>', 'the serial of a certificate issued here, or its PEM or DER file')
    .addOption(choice('--reason <reason>', 'the CRLReason (RFC 5280 §5.3.1)', REASONS))
    .option('--hours <n>', 'hours until nextUpdate of the new lists (1 to 87,600)', intOption('--hours', 1, 87_600), 24 * 7);
  example(revokeCmd, 'smki crl revoke 3C3FD8718EF908DF7B1F44FB761E07F3 --reason keyCompromise', 'smki crl revoke certs/organisation/3C3FD8718EF908DF7B1F44FB761E07F3.pem --json');
  revokeCmd.action(wrap(async (ctx, args, o) => crlRevoke(ctx, args[0] as string, o as { reason?: Exclude<CrlReason, 'removeFromCRL'>; hours: number })));
};
