// A state directory whose key store was made by an earlier release (JSON metadata, keystore/store.json):
// every command that opens the key store refuses it (exit 5, ERR_KEYSTORE_MIGRATION_REQUIRED)
// naming `smki keystore migrate`; the migration keeps the keys where they are; afterwards the
// store opens, its keys sign commands the validator accepts, and the trail verifies with the audit
// public key the migration wrote. The key store's rules: docs/key-segregation.md.
import { createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createKeySigner } from '@smki/core';
import { certificateToPem, issueOrganisationCertificate, parseCertificate } from '@smki/pki';
import { FileKeyBackend } from '@smki/keystore';
import { JsonKeyStore } from '../../keystore/src/store.js';
import { initLab, PASSPHRASE, smki, steps } from './_smki.js';

const SUPPLIER = '90B3D51F30010000';
const M1 = '00DB123456789001';
const M2 = '00DB123456789002';

/** Replace the lab's key store by one of the earlier release: portfolio north, a certified signing key, meter M1 in it. */
async function oldKeyStore(lab: string): Promise<string> {
  const dir = join(lab, 'keystore');
  for (const f of ['keystore.db', 'keystore.db-wal', 'keystore.db-shm', 'audit-public-key.hex']) rmSync(join(dir, f), { force: true });
  const backend = await FileKeyBackend.open({ directory: dir, passphrase: PASSPHRASE });
  const store = await JsonKeyStore.open({ directory: dir, backend, passphrase: PASSPHRASE });
  await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
  await store.createPortfolio(SUPPLIER, { id: 'north' });
  const h = await store.generateKey(SUPPLIER, 'north', 'signing');
  const issuer = {
    certificate: parseCertificate(readFileSync(join(lab, 'ca', 'organisation-ca.pem'), 'utf8')),
    signer: createKeySigner(createPrivateKey({ key: readFileSync(join(lab, 'ca', 'organisation-ca.key.pem'), 'utf8'), passphrase: PASSPHRASE })),
  };
  const cert = await issueOrganisationCertificate({ issuer, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', csr: await store.createCsr(h.keyId) });
  await store.attachCertificate(h.keyId, cert);
  writeFileSync(join(lab, 'certs', 'organisation', `${cert.serialNumber}.pem`), certificateToPem(cert));
  await store.close();
  await backend.close();
  return h.keyId;
}

describe('smki keystore migrate', () => {
  it('refuses the old key store until migrated, then its keys sign and its trail verifies', async () => {
    const lab = initLab();
    const keyId = await oldKeyStore(lab);
    expect(existsSync(join(lab, 'keystore', 'store.json'))).toBe(true);

    // Refused before: exit 5, the code, and the command that fixes it.
    const refused = smki(['--dir', lab, 'key', 'list']);
    expect(refused.status, refused.stderr).toBe(5);
    expect(refused.stderr).toContain('ERR_KEYSTORE_MIGRATION_REQUIRED');
    expect(refused.stderr).toContain('smki keystore migrate');
    const refusedJson = JSON.parse(smki(['--dir', lab, 'portfolio', 'list', '--json']).stdout) as { error: { code: string; hint: string; exit: number } };
    expect(refusedJson.error).toMatchObject({ code: 'ERR_KEYSTORE_MIGRATION_REQUIRED', exit: 5 });
    expect(refusedJson.error.hint).toContain('smki keystore migrate');

    // Migrated.
    const m = smki(['--dir', lab, 'keystore', 'migrate', '--json']);
    expect(m.status, m.stderr).toBe(0);
    const report = JSON.parse(m.stdout) as { storeId: string; rows: number; fromRecords: number; resumed: boolean; auditPublicKey: string };
    expect(report.resumed).toBe(false);
    expect(report.rows).toBe(3); // the organisation, the portfolio, the key
    expect(report.fromRecords).toBeGreaterThan(0);
    expect(existsSync(join(lab, 'keystore', 'store.json'))).toBe(false);
    expect(readFileSync(join(lab, 'keystore', 'audit-public-key.hex'), 'utf8').trim()).toBe(report.auditPublicKey);
    const info = JSON.parse(smki(['--dir', lab, 'keystore', 'info', '--json']).stdout) as { storeId: string; auditPublicKey: string; accessControlled: boolean };
    expect(info).toMatchObject({ storeId: report.storeId, auditPublicKey: report.auditPublicKey, accessControlled: false });
    // Nothing more to migrate: a usage error, nothing changed.
    expect(smki(['--dir', lab, 'keystore', 'migrate']).status).toBe(2);

    // Opens: the key is there, active, and signs for a meter the validator accepts.
    const keys = JSON.parse(smki(['--dir', lab, 'key', 'list', '--json']).stdout) as { keyId: string; state: string }[];
    expect(keys).toEqual([expect.objectContaining({ keyId, state: 'active' })]);
    steps(lab, [
      ['device', 'add', M1, '--portfolio', 'north', '--simulate'],
      ['command', 'build', 'disconnect', '--device', M1, '--out', join(lab, '..', 'pre.hex')],
      ['command', 'sign', '--in', join(lab, '..', 'pre.hex'), '--out', join(lab, '..', 'signed.hex')],
    ]);
    const v = smki(['--dir', lab, 'command', 'validate', '--in', join(lab, '..', 'signed.hex'), '--json']);
    expect(v.status, v.stdout + v.stderr).toBe(0);
    expect(JSON.parse(v.stdout.trim().split('\n')[0]!)).toMatchObject({ outcome: 'accepted' });
    // The trail, old head bound in, verifies with the key the migration wrote; and with the store's own check.
    const a = smki(['--dir', lab, 'audit', 'verify', '--json']);
    expect(a.status, a.stdout).toBe(0);
    const body = JSON.parse(a.stdout) as { ok: boolean; keystore: { ok: boolean; records: number }; keystoreRows: { ok: boolean } };
    expect(body.ok && body.keystore.ok && body.keystoreRows.ok).toBe(true);
    // A meter of another portfolio that does not exist is refused as before (the store enforces its rules).
    expect(smki(['--dir', lab, 'device', 'add', M2, '--portfolio', 'south', '--simulate']).status).toBe(1);
  });
});
