// `smki cert` and `smki crl`, run as a user runs them (a separate process per command). Issuance to
// the organisation and device profiles of docs/domain.md §2 from a CSR (RFC 2986: proof of
// possession checked), a public key (RFC 5480 SPKI) or a generated key (kept as encrypted PKCS#8,
// RFC 5958 / RFC 8018); lint against the profile; path validation (RFC 5280 §6.1) with revocation by
// CRL and ARL (RFC 5280 §5, §6.3; reasonCode §5.3.1). OpenSSL is the independent check: it reads
// the certificates, keys and CRLs smki writes, makes CSRs and keys smki reads, and verifies paths.
// docs/conventions.md, "Tests": usage errors, refused inputs and invalid paths outnumber the
// successes.
import { spawnSync } from 'node:child_process';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { createKeySigner } from '@smki/core';
import { createCsr } from '@smki/pki';
import { beforeAll, describe, expect, it } from 'vitest';
import { register } from '../src/internal/commands/cert.js';
import { run as runProgram } from '../src/internal/program.js';
import { initLab, PASSPHRASE, smki, tempDir, type SmkiResult } from './_smki.js';

/** Run openssl; fail the test with its stderr unless it exits 0 (or `allowFail`). */
function openssl(args: readonly string[], allowFail = false): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  if (r.error) throw r.error;
  if (!allowFail && r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The JSON document of a run (fails with the output when it is not JSON). */
function json<T = Record<string, unknown>>(r: SmkiResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (status ${r.status}):\n${r.stdout}\n${r.stderr}`);
  }
}

/** Expect a usage error: exit 2, ERR_CLI_USAGE on stderr. */
function expectUsage(r: SmkiResult, mentions?: string): void {
  expect(r.status, r.stdout + r.stderr).toBe(2);
  expect(r.stderr).toMatch(/^error ERR_CLI_USAGE: /);
  if (mentions !== undefined) expect(r.stderr).toContain(mentions);
  expect(r.stdout).toBe('');
}

/** The SPKI PEM of a certificate file (OpenSSL's reading). */
function certPublicKey(file: string): string {
  return openssl(['x509', '-in', file, '-noout', '-pubkey']).stdout;
}

const SUPPLIER = '90B3D51F30010000';
const NETWORK_OPERATOR = '90B3D51F30030000';

let lab: string;
let work: string;
/** smki with --dir <lab>, working directory `work`. */
const run = (args: readonly string[], timeoutMs?: number): SmkiResult => smki(['--dir', lab, ...args], { cwd: work, ...(timeoutMs ? { timeoutMs } : {}) });

/**
 * The same program in this process (the cert and crl groups only), for the many usage errors and
 * help texts: each subprocess costs a second of start-up, and these never reach a command's work.
 */
async function runHere(args: readonly string[]): Promise<SmkiResult> {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: [] as Buffer[], err: [] as Buffer[] };
  out.on('data', (c: Buffer) => chunks.out.push(c));
  err.on('data', (c: Buffer) => chunks.err.push(c));
  const io = { stdout: out, stderr: err, stdin: new PassThrough(), env: { SMKI_KEYSTORE_PASSPHRASE: PASSPHRASE, NO_COLOR: '1' }, cwd: work };
  const status = await runProgram(['--dir', lab, ...args], [register], io);
  return { status, stdout: Buffer.concat(chunks.out).toString('utf8'), stderr: Buffer.concat(chunks.err).toString('utf8') };
}

beforeAll(() => {
  lab = initLab();
  work = tempDir('smki-cert-');
});

describe('smki cert issue: organisation certificates (docs/domain.md §2)', () => {
  it('from a CSR (DER, made by createCsr): proof of possession checked, kept in the state directory', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const signer = createKeySigner(privateKey);
    const csr = await createCsr({ signer, subject: { role: 2, entityId: SUPPLIER }, keyUsage: 'digitalSignature' });
    writeFileSync(join(work, 'supplier-ds.csr'), csr);
    const r = run(['cert', 'issue', '--kind', 'organisation', '--role', '2', '--entity', '90-B3-D5-1F-30-01-00-00', '--usage', 'ds', '--csr', 'supplier-ds.csr', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const out = json<{ kind: string; serialNumber: string; entityId: string; role: number; keyUsage: string[]; file: string; keySource: string }>(r);
    expect(out).toMatchObject({ kind: 'organisation', entityId: SUPPLIER, role: 2, keyUsage: ['digitalSignature'], keySource: 'csr' });
    expect(out.file).toBe(join(lab, 'certs', 'organisation', `${out.serialNumber}.pem`));
    // OpenSSL reads the same serial, and the subject key is the CSR's.
    expect(openssl(['x509', '-in', out.file, '-noout', '-serial']).stdout.trim()).toBe(`serial=${out.serialNumber}`);
    expect(certPublicKey(out.file)).toBe(createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }));

    // The text form prints the serial and the file.
    const t = run(['cert', 'issue', '--kind', 'organisation', '--role', 'supplier', '--entity', SUPPLIER, '--usage', 'ds', '--csr', 'supplier-ds.csr']);
    expect(t.status, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/issued organisation certificate [0-9A-F]{32}\n/);
    expect(t.stdout).toMatch(/file: +\S+\/certs\/organisation\/[0-9A-F]{32}\.pem/);
  });

  it('refuses a CSR whose signature does not verify, or that names another entity (RFC 2986 §3)', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const csr = await createCsr({ signer: createKeySigner(privateKey), subject: { role: 2, entityId: SUPPLIER }, keyUsage: 'digitalSignature' });
    const broken = new Uint8Array(csr);
    broken[broken.length - 5]! ^= 0x01; // a bit of the signature's s
    writeFileSync(join(work, 'broken.csr'), broken);
    const bad = run(['cert', 'issue', '--kind', 'organisation', '--role', '2', '--entity', SUPPLIER, '--usage', 'ds', '--csr', 'broken.csr']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^error ERR_CSR_SIGNATURE_INVALID: /);
    const other = run(['cert', 'issue', '--kind', 'organisation', '--role', '2', '--entity', '90B3D51F30019999', '--usage', 'ds', '--csr', 'supplier-ds.csr']);
    expect(other.status).toBe(1);
    expect(other.stderr).toMatch(/^error ERR_ISSUE_CSR_ENTITY_MISMATCH: /);
  });

  it('from a public key (PEM SPKI made by OpenSSL)', () => {
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', join(work, 'dno.key')]);
    openssl(['pkey', '-in', join(work, 'dno.key'), '-pubout', '-out', join(work, 'dno.pub.pem')]);
    const r = run(['cert', 'issue', '--kind', 'organisation', '--role', '3', '--entity', NETWORK_OPERATOR, '--usage', 'ka', '--public-key', 'dno.pub.pem', '--out', 'dno-ka.pem', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const out = json<{ role: number; keyUsage: string[]; out: string; file: string; keySource: string }>(r);
    expect(out).toMatchObject({ role: 3, keyUsage: ['keyAgreement'], keySource: 'publicKey', out: join(work, 'dno-ka.pem') });
    expect(certPublicKey(join(work, 'dno-ka.pem'))).toBe(readFileSync(join(work, 'dno.pub.pem'), 'utf8'));
    expect(readFileSync(join(work, 'dno-ka.pem'), 'utf8')).toBe(readFileSync(out.file, 'utf8'));
    // A private key given as the public key is refused, not used.
    expectUsage(run(['cert', 'issue', '--kind', 'organisation', '--role', '3', '--entity', NETWORK_OPERATOR, '--usage', 'ka', '--public-key', 'dno.key']), 'never hand a private key');
  });

  it('with a generated key: written encrypted under the passphrase, never overwritten', () => {
    const r = run(['cert', 'issue', '--kind', 'organisation', '--role', '2', '--entity', SUPPLIER, '--usage', 'ka', '--key-out', 'supplier-ka.key.pem', '--out', 'supplier-ka.pem', '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(json(r)).toMatchObject({ keySource: 'generated', keyFile: join(work, 'supplier-ka.key.pem') });
    const keyPem = readFileSync(join(work, 'supplier-ka.key.pem'), 'utf8');
    expect(keyPem).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
    // OpenSSL opens it with the passphrase (and not without); its public key is the certificate's.
    const pub = openssl(['pkey', '-in', join(work, 'supplier-ka.key.pem'), '-passin', `pass:${PASSPHRASE}`, '-pubout']).stdout;
    expect(pub).toBe(certPublicKey(join(work, 'supplier-ka.pem')));
    expect(openssl(['pkey', '-in', join(work, 'supplier-ka.key.pem'), '-passin', 'pass:wrong', '-pubout'], true).status).not.toBe(0);
    expectUsage(run(['cert', 'issue', '--kind', 'organisation', '--role', '2', '--entity', SUPPLIER, '--usage', 'ka', '--key-out', 'supplier-ka.key.pem']), 'never overwrites a private key');
    expect(readFileSync(join(work, 'supplier-ka.key.pem'), 'utf8')).toBe(keyPem);
  });
});

describe('smki cert issue: device certificates (docs/domain.md §2, GBCS 12)', () => {
  it('from an OpenSSL CSR with an empty subject, and from a public key', () => {
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', join(work, 'meter.key')]);
    openssl(['req', '-new', '-key', join(work, 'meter.key'), '-subj', '/', '-addext', 'keyUsage=critical,keyAgreement', '-out', join(work, 'meter.csr')]);
    const r = run(['cert', 'issue', '--kind', 'device', '--entity', '00-DB-12-34-56-78-90-A0', '--usage', 'ka', '--csr', 'meter.csr', '--out', 'meter-ka.pem', '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(json(r)).toMatchObject({ kind: 'device', entityId: '00DB1234567890A0', keyUsage: ['keyAgreement'], notAfter: '9999-12-31T23:59:59.000Z' });
    // The CSR asked for keyAgreement: a ds certificate for it is refused.
    const wrong = run(['cert', 'issue', '--kind', 'device', '--entity', '00DB1234567890A0', '--usage', 'ds', '--csr', 'meter.csr']);
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(/^error ERR_ISSUE_CSR_KEY_USAGE: /);

    openssl(['pkey', '-in', join(work, 'meter.key'), '-pubout', '-out', join(work, 'meter.pub.pem')]);
    const p = run(['cert', 'issue', '--kind', 'device', '--entity', '00DB1234567890A1', '--usage', 'ds', '--public-key', 'meter.pub.pem', '--json']);
    expect(p.status, p.stderr).toBe(0);
    expect(json(p)).toMatchObject({ kind: 'device', entityId: '00DB1234567890A1', keyUsage: ['digitalSignature'] });
    const text = openssl(['x509', '-in', json<{ file: string }>(p).file, '-noout', '-text']).stdout;
    expect(text).toMatch(/X509v3 Subject Alternative Name: critical/);
    expect(text).toMatch(/Not After : Dec 31 23:59:59 9999 GMT/);
  });

  it('--count 3 --key-out <dir>: consecutive device ids, one encrypted key per device', () => {
    const r = run(['cert', 'issue', '--kind', 'device', '--entity', '00DB00000000FFFE', '--usage', 'ka', '--count', '3', '--key-out', 'keys', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const list = json<{ entity: string; serial: string; file: string; keyFile: string }[]>(r);
    expect(list.map((x) => x.entity)).toEqual(['00DB00000000FFFE', '00DB00000000FFFF', '00DB000000010000']);
    for (const x of list) {
      expect(x.keyFile).toBe(join(work, 'keys', `${x.entity}-ka.key.pem`));
      const pub = openssl(['pkey', '-in', x.keyFile, '-passin', `pass:${PASSPHRASE}`, '-pubout']).stdout;
      expect(pub).toBe(certPublicKey(x.file));
    }
    // A second run into the same directory would overwrite keys: refused before anything is issued.
    const before = readdirSync(join(lab, 'certs', 'device')).length;
    expectUsage(run(['cert', 'issue', '--kind', 'device', '--entity', '00DB00000000FFFD', '--usage', 'ka', '--count', '3', '--key-out', 'keys']), 'never overwrites a private key');
    expect(readdirSync(join(lab, 'certs', 'device')).length).toBe(before);
  });

  it('--count 10000 in one run: 10,000 certificates with distinct serials, each kept and found by serial', () => {
    const t0 = performance.now();
    const r = run(['cert', 'issue', '--kind', 'device', '--entity', '00DB200000000000', '--usage', 'ka', '--count', '10000', '--json'], 240_000);
    const seconds = (performance.now() - t0) / 1000;
    expect(r.status, r.stderr).toBe(0);
    const list = json<{ entity: string; serial: string; file: string }[]>(r);
    expect(list).toHaveLength(10_000);
    expect(new Set(list.map((x) => x.serial)).size).toBe(10_000);
    list.forEach((x, i) => {
      expect(x.entity).toBe((0x00db200000000000n + BigInt(i)).toString(16).toUpperCase().padStart(16, '0'));
      expect(x.file).toBe(join(lab, 'certs', 'device', `${x.serial}.pem`));
    });
    const files = new Set(readdirSync(join(lab, 'certs', 'device')));
    expect(list.every((x) => files.has(`${x.serial}.pem`))).toBe(true);
    expect([...files].some((f) => f.endsWith('.tmp'))).toBe(false);
    // The last one, by serial, as any other command finds it; OpenSSL reads it.
    const last = list[list.length - 1]!;
    const i = run(['cert', 'inspect', last.serial, '--json']);
    expect(json(i)).toMatchObject({ kind: 'device', serialNumber: last.serial, hwSerialNum: '00DB20000000270F', entityId: '00DB20000000270F' });
    expect(openssl(['x509', '-in', last.file, '-noout', '-serial']).stdout.trim()).toBe(`serial=${last.serial}`);
    console.log(`smki cert issue --count 10000: ${seconds.toFixed(1)} s including process start (${Math.round(10_000 / seconds)} certificates/s)`);
  }, 300_000);
});

describe('smki cert inspect', () => {
  it('text and --json show the same fields, from a PEM file, a DER file or a serial', () => {
    const file = join(work, 'supplier-ka.pem');
    const j = json<Record<string, unknown>>(run(['cert', 'inspect', 'supplier-ka.pem', '--json']));
    expect(j).toMatchObject({ kind: 'organisation', role: 2, roleName: 'supplier', entityId: SUPPLIER, keyUsage: ['keyAgreement'], policies: ['1.2.826.0.1.8641679.1.2.1.4'], issuer: 'OU=07, CN=Z1' });
    expect(j.subjectKeyId).toMatch(/^[0-9A-F]{16}$/);
    expect(j.authorityKeyId).toMatch(/^[0-9A-F]{16}$/);
    expect(j.hwSerialNum).toBeUndefined();

    const t = run(['cert', 'inspect', 'supplier-ka.pem']);
    expect(t.status, t.stderr).toBe(0);
    const text = new Map(
      t.stdout
        .split('\n')
        .slice(1)
        .filter((l) => l.includes(': '))
        .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]),
    );
    expect(text.get('kind')).toBe(j.kind);
    expect(text.get('subject')).toBe(j.subject);
    expect(text.get('issuer')).toBe(j.issuer);
    expect(text.get('serial')).toBe(j.serialNumber);
    expect(text.get('not before')).toBe(j.notBefore);
    expect(text.get('not after')).toBe(j.notAfter);
    expect(text.get('role')).toBe('2 (supplier)');
    expect(text.get('entity id')).toBe(j.entityId);
    expect(text.get('key usage')).toBe('keyAgreement');
    expect(text.get('SKI')).toBe(j.subjectKeyId);
    expect(text.get('AKI')).toBe(j.authorityKeyId);
    expect(text.get('policies')).toBe('1.2.826.0.1.8641679.1.2.1.4');
    expect(text.get('SHA-256')).toBe(j.fingerprint);

    // The same certificate as DER, and by its serial.
    openssl(['x509', '-in', file, '-outform', 'DER', '-out', join(work, 'supplier-ka.der')]);
    expect(json(run(['cert', 'inspect', 'supplier-ka.der', '--json']))).toEqual(j);
    expect(json(run(['cert', 'inspect', String(j.serialNumber).toLowerCase(), '--json']))).toEqual(j);
    // OpenSSL agrees on the SKI.
    expect(openssl(['x509', '-in', file, '-noout', '-ext', 'subjectKeyIdentifier']).stdout.replace(/[^0-9A-F]/g, '').slice(-16)).toBe(j.subjectKeyId);
  });

  it('a device certificate shows hwSerialNum and hwType', () => {
    const t = run(['cert', 'inspect', 'meter-ka.pem']);
    expect(t.status, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/^hwSerialNum: +00DB1234567890A0$/m);
    expect(t.stdout).toMatch(/^subject: +\(empty\)$/m);
    expect(json(run(['cert', 'inspect', 'meter-ka.pem', '--json']))).toMatchObject({ kind: 'device', hwSerialNum: '00DB1234567890A0', hwType: '1.2.826.0.1.8641679.1.2.2.1', subject: '' });
  });

  it('an unknown serial is ERR_CLI_NOT_FOUND; a missing file or non-certificate is refused (exit 1)', () => {
    const nf = run(['cert', 'inspect', '0123456789ABCDEF0123456789ABCDEF']);
    expect(nf.status).toBe(1);
    expect(nf.stderr).toMatch(/^error ERR_CLI_NOT_FOUND: /);
    const missing = run(['cert', 'inspect', 'no-such-file.pem', '--json']);
    expect(missing.status).toBe(1);
    expect(json<{ error: { code: string } }>(missing).error.code).toBe('ERR_CLI_INPUT_INVALID');
    const notCert = run(['cert', 'inspect', 'meter.csr']);
    expect(notCert.status).toBe(1);
    expect(notCert.stderr).toMatch(/^error ERR_(PEM_INVALID|CERT_MALFORMED): /);
  });
});

describe('smki cert lint (docs/domain.md §2)', () => {
  it('exit 0 on certificates smki issued', () => {
    for (const f of ['supplier-ka.pem', 'meter-ka.pem', 'dno-ka.pem']) {
      const r = run(['cert', 'lint', f, '--json']);
      expect(r.status, r.stdout).toBe(0);
      expect(json(r)).toMatchObject({ conforms: true, errors: 0, findings: [] });
    }
    const t = run(['cert', 'lint', 'meter-ka.pem']);
    expect(t.stdout).toMatch(/conforms to the device profile/);
  });

  it('exit 1 on a P-256 certificate without the SMKI extensions (made by OpenSSL)', () => {
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(work, 'plain.key'), '-out', join(work, 'plain.pem'), '-subj', '/CN=not smki', '-days', '30']);
    const r = run(['cert', 'lint', 'plain.pem', '--json']);
    expect(r.status).toBe(1);
    const out = json<{ conforms: boolean; errors: number; findings: { code: string; severity: string }[] }>(r);
    expect(out.conforms).toBe(false);
    expect(out.errors).toBeGreaterThan(0);
    expect(out.findings.map((f) => f.code)).toEqual(expect.arrayContaining(['ERR_PROFILE_KEY_USAGE_MISSING', 'ERR_PROFILE_POLICIES_MISSING']));
    const t = run(['cert', 'lint', 'plain.pem']);
    expect(t.status).toBe(1);
    expect(t.stdout).toMatch(/breaks the root profile/);
    expect(t.stdout).toMatch(/error +ERR_PROFILE_KEY_USAGE_MISSING: /);
  });
});

describe('smki cert verify and smki crl (RFC 5280 §6.1, §6.3)', () => {
  it('valid, then revoked: exit 1 with ERR_REVOKED; OpenSSL reads the serial in the CRL and refuses the path', () => {
    const ok = run(['cert', 'verify', 'dno-ka.pem', '--json']);
    expect(ok.status, ok.stdout).toBe(0);
    const okJson = json<{ valid: boolean; revocationRequired: boolean; revocationChecked: boolean; path: { kind: string }[] }>(ok);
    expect(okJson).toMatchObject({ valid: true, revocationRequired: true, revocationChecked: true });
    expect(okJson.path.map((p) => p.kind)).toEqual(['organisation', 'issuingCa', 'root']);
    const serial = json<{ serialNumber: string }>(run(['cert', 'inspect', 'dno-ka.pem', '--json'])).serialNumber;
    const osslArgs = ['verify', '-CAfile', join(lab, 'ca', 'root.pem'), '-untrusted', join(lab, 'ca', 'organisation-ca.pem'), '-crl_check', '-CRLfile', join(lab, 'crl', 'organisation-ca.crl.pem'), join(work, 'dno-ka.pem')];
    expect(openssl(osslArgs).stdout).toMatch(/: OK/);

    const rev = run(['crl', 'revoke', serial, '--reason', 'keyCompromise', '--json']);
    expect(rev.status, rev.stderr).toBe(0);
    expect(json(rev)).toMatchObject({ revoked: { serialNumber: serial, reason: 'keyCompromise', issuer: 'organisation-ca', list: 'crl' } });

    const bad = run(['cert', 'verify', 'dno-ka.pem']);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/invalid/);
    expect(bad.stdout).toMatch(/error +ERR_REVOKED \[certificate 0\]: /);
    const badJson = json<{ valid: boolean; findings: { code: string; certificateIndex?: number }[] }>(run(['cert', 'verify', 'dno-ka.pem', '--json']));
    expect(badJson.valid).toBe(false);
    expect(badJson.findings).toContainEqual(expect.objectContaining({ code: 'ERR_REVOKED', certificateIndex: 0 }));

    const crlText = openssl(['crl', '-in', join(lab, 'crl', 'organisation-ca.crl.pem'), '-noout', '-text']).stdout;
    expect(crlText).toContain(`Serial Number: ${serial}`);
    expect(crlText).toMatch(/Key Compromise/);
    const refused = openssl(osslArgs, true);
    expect(refused.status).not.toBe(0);
    expect(refused.stdout + refused.stderr).toMatch(/certificate revoked/);

    // A second revocation is refused and changes nothing.
    const numberBefore = JSON.parse(readFileSync(join(lab, 'crl', 'revoked.json'), 'utf8')).crlNumber;
    const again = run(['crl', 'revoke', 'dno-ka.pem']);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/^error ERR_CLI_INPUT_INVALID: certificate [0-9A-F]+ is already revoked/);
    expect(JSON.parse(readFileSync(join(lab, 'crl', 'revoked.json'), 'utf8')).crlNumber).toBe(numberBefore);
  });

  it('crl revoke refuses an unknown serial (ERR_CLI_NOT_FOUND), a certificate not issued here, a device certificate and the root', () => {
    const unknown = run(['crl', 'revoke', '7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF']);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/^error ERR_CLI_NOT_FOUND: /);
    const foreign = run(['crl', 'revoke', 'plain.pem', '--json']);
    expect(foreign.status).toBe(1);
    expect(json<{ error: { code: string } }>(foreign).error.code).toBe('ERR_CLI_NOT_FOUND');
    const device = run(['crl', 'revoke', 'meter-ka.pem']);
    expect(device.status).toBe(1);
    expect(device.stderr).toMatch(/^error ERR_CLI_INPUT_INVALID: only organisation certificates and the organisation and device CAs/);
    const root = run(['crl', 'revoke', join(lab, 'ca', 'root.pem')]);
    expect(root.status).toBe(1);
    expect(root.stderr).toMatch(/^error ERR_CLI_INPUT_INVALID: the root cannot be revoked/);
  });

  it('a device certificate: no device-CA CRL, so exit 1 (ERR_CRL_MISSING) unless --no-revocation; --at before notBefore', () => {
    const strict = run(['cert', 'verify', 'meter-ka.pem']);
    expect(strict.status).toBe(1);
    expect(strict.stdout).toMatch(/ERR_CRL_MISSING \[certificate 0\]/);
    const loose = run(['cert', 'verify', 'meter-ka.pem', '--no-revocation', '--json']);
    expect(loose.status, loose.stdout).toBe(0);
    expect(json(loose)).toMatchObject({ valid: true, revocationRequired: false });
    const early = run(['cert', 'verify', 'meter-ka.pem', '--no-revocation', '--at', '2020-01-01T00:00:00Z']);
    expect(early.status).toBe(1);
    expect(early.stdout).toMatch(/ERR_CHAIN_NOT_YET_VALID \[certificate 0\]/);
  });

  it('crl issue --hours 2: the next number, a 2-hour list, the revoked entry kept (OpenSSL reads it)', () => {
    const before = Number(JSON.parse(readFileSync(join(lab, 'crl', 'revoked.json'), 'utf8')).crlNumber);
    const r = run(['crl', 'issue', '--hours', '2', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const { lists } = json<{ lists: { list: string; crlNumber: string; thisUpdate: string; nextUpdate: string; entries: unknown[] }[] }>(r);
    expect(lists.map((l) => l.list)).toEqual(['crl', 'arl']);
    for (const l of lists) {
      expect(l.crlNumber).toBe(String(before + 1));
      expect(Date.parse(l.nextUpdate) - Date.parse(l.thisUpdate)).toBe(2 * 3600_000);
    }
    expect(lists[0]!.entries).toHaveLength(1);
    expect(openssl(['crl', '-in', join(lab, 'crl', 'organisation-ca.crl.pem'), '-noout', '-crlnumber']).stdout.trim()).toBe(`crlNumber=0x${(before + 1).toString(16).toUpperCase().padStart(2, '0')}`);
    const t = run(['crl', 'issue']);
    expect(t.stdout).toMatch(new RegExp(`issued CRL and ARL number ${before + 2}, valid 168 h`));
  });

  it('revoking the device CA puts it on the ARL (issuer root): its device certificates no longer verify', () => {
    const ca = join(lab, 'ca', 'device-ca.pem');
    const serial = json<{ serialNumber: string }>(run(['cert', 'inspect', ca, '--json'])).serialNumber;
    const r = run(['crl', 'revoke', ca, '--reason', 'cACompromise', '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(json(r)).toMatchObject({ revoked: { serialNumber: serial, issuer: 'root', list: 'arl', reason: 'cACompromise' } });
    expect(openssl(['crl', '-in', join(lab, 'crl', 'root.arl.pem'), '-noout', '-text']).stdout).toContain(`Serial Number: ${serial}`);
    const v = run(['cert', 'verify', 'meter-ka.pem', '--no-revocation']);
    expect(v.status).toBe(1);
    expect(v.stdout).toMatch(/ERR_REVOKED \[certificate 1\]/);
  });
});

describe('usage errors: exit 2 with ERR_CLI_USAGE', () => {
  const base = ['cert', 'issue', '--kind', 'organisation', '--role', '2', '--entity', SUPPLIER, '--usage', 'ds'];
  it.each([
    ['no --kind', ['cert', 'issue', '--entity', SUPPLIER, '--usage', 'ds', '--key-out', 'x.key'], "'--kind <kind>' not specified"],
    ['--usage not ds|ka', ['cert', 'issue', '--kind', 'device', '--entity', SUPPLIER, '--usage', 'sign', '--key-out', 'x.key'], 'Allowed choices are ds, ka'],
    ['organisation without --role', ['cert', 'issue', '--kind', 'organisation', '--entity', SUPPLIER, '--usage', 'ds', '--key-out', 'x.key'], '--role <n> is required'],
    ['a CA role', [...base.slice(0, 4), '--role', '7', '--key-out', 'x.key'], '--role must be an end-entity Remote Party Role'],
    ['--role on a device', ['cert', 'issue', '--kind', 'device', '--role', '2', '--entity', SUPPLIER, '--usage', 'ds', '--key-out', 'x.key'], '--role is for organisation certificates'],
    ['a malformed EUI-64', ['cert', 'issue', '--kind', 'device', '--entity', '00DB12', '--usage', 'ds', '--key-out', 'x.key'], '--entity is not an EUI-64'],
    ['no key source', base, '--key-out <file> for a generated key'],
    ['--csr and --public-key', [...base, '--csr', 'a', '--public-key', 'b'], 'not both'],
    ['--count 0', ['cert', 'issue', '--kind', 'device', '--entity', SUPPLIER, '--usage', 'ds', '--count', '0'], '--count must be 1 to 100000'],
    ['--count 100001', ['cert', 'issue', '--kind', 'device', '--entity', SUPPLIER, '--usage', 'ds', '--count', '100001'], '--count must be 1 to 100000'],
    ['--count past FFFFFFFFFFFFFFFF', ['cert', 'issue', '--kind', 'device', '--entity', 'FFFFFFFFFFFFFFFE', '--usage', 'ds', '--count', '3'], 'runs past FFFFFFFFFFFFFFFF'],
    ['--count on an organisation', [...base, '--count', '2'], '--count is for device certificates'],
    ['--at not a time', ['cert', 'verify', 'x.pem', '--at', 'yesterday'], '--at must be an ISO 8601 time'],
    ['--hours 0', ['crl', 'issue', '--hours', '0'], '--hours must be 1 to 87600'],
    ['an unknown reason', ['crl', 'revoke', 'ABCD', '--reason', 'removeFromCRL'], 'Allowed choices are'],
    ['an unknown subcommand', ['cert', 'frobnicate'], 'unknown command'],
  ])('%s', async (_name, args, mentions) => {
    expectUsage(await runHere(args), mentions);
    expect(existsSync(join(work, 'x.key'))).toBe(false);
  });

  it('as a separate process too: exit status 2, the code on stderr', () => {
    expectUsage(run(['cert', 'issue', '--entity', SUPPLIER, '--usage', 'ds', '--key-out', 'x.key']), "'--kind <kind>' not specified");
    expectUsage(run(['crl', 'revoke', 'ABCD', '--reason', 'removeFromCRL']), 'Allowed choices are');
  });

  it('--json: the usage error is a JSON document on stdout', () => {
    const r = run(['cert', 'issue', '--kind', 'device', '--entity', 'nope', '--usage', 'ka', '--key-out', 'x.key', '--json']);
    expect(r.status).toBe(2);
    expect(json<{ error: { code: string; exit: number } }>(r).error).toMatchObject({ code: 'ERR_CLI_USAGE', exit: 2 });
  });

  it('every cert and crl command has a description and an example in its --help', async () => {
    for (const cmd of [['cert'], ['cert', 'issue'], ['cert', 'inspect'], ['cert', 'lint'], ['cert', 'verify'], ['crl'], ['crl', 'issue'], ['crl', 'revoke']]) {
      const r = await runHere([...cmd, '--help']);
      expect(r.status, cmd.join(' ')).toBe(0);
      expect(r.stdout, cmd.join(' ')).toMatch(/\nExample:\n {2}\$ smki /);
      const lines = r.stdout.split('\n');
      expect(lines[0]).toMatch(new RegExp(`^Usage: smki ${cmd.join(' ')} `));
      expect(lines[2]?.length ?? 0, `${cmd.join(' ')} has a description`).toBeGreaterThan(20);
    }
  });
});
