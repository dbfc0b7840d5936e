// Every refusal of the key store's state machine, one case each with exactly its code, and proof
// that a refusal changes no state and writes no audit record. Each case breaks one guard: with
// the guard commented out, its case fails (the mutation-testing run checks the same).
import { describe, expect, it } from 'vitest';
import type { SmkiErrorCode } from '@smki/core';
import { type KeyAgreementKeyHandle, type SigningKeyHandle } from '../src/index.js';
import { type JsonKeyStore as KeyStore } from '../src/store.js';
import { auditRecords, expectCode, issue, M1, M2, M3, message, openStore, OTHER_SUPPLIER, supplierEstate, SUPPLIER } from './_store-fixtures.js';

/** A supplier estate with a second north signing key in every state: pending without and with a certificate, active, retired, revoked. */
async function estateWithEveryState() {
  const { store, dir, backend } = await openStore();
  const estate = await supplierEstate(store);
  const g1 = estate.north.ds.handle.keyId;
  const pendingBare = (await store.generateKey(SUPPLIER, 'north', 'signing')).keyId; // g2: no certificate
  const g3 = (await issue(store, SUPPLIER, 'north', 'signing')).handle.keyId; // pending with certificate
  await store.rotate(g3); // g3 current; g1 still trusted by M1, M2
  await store.markCredentialsUpdated(SUPPLIER, M1, 'signing');
  await store.markCredentialsUpdated(SUPPLIER, M2, 'signing');
  await store.retire(g1); // nobody trusts g1 now
  const revoked = estate.south.ds.handle.keyId;
  await store.revoke(revoked);
  const pendingCert = (await issue(store, SUPPLIER, 'north', 'signing')).handle.keyId; // g4
  await store.flush();
  return { store, dir, backend, ...estate, retired: g1, active: g3, pendingBare, pendingCert, revoked };
}

/** Run `attempt`, expect `code`, and check that neither the state nor the audit log changed. */
async function refusedWithoutChange(store: KeyStore, dir: string, attempt: () => unknown, code: SmkiErrorCode): Promise<void> {
  await store.flush();
  const records = auditRecords(dir).length;
  const snapshot = JSON.stringify([store.keys(), store.portfolio(SUPPLIER, 'north'), store.portfolio(SUPPLIER, 'south'), [M1, M2, M3].map((d) => store.device(SUPPLIER, d))]);
  await expectCode(attempt as () => Promise<unknown>, code);
  await store.flush();
  expect(auditRecords(dir)).toHaveLength(records);
  expect(JSON.stringify([store.keys(), store.portfolio(SUPPLIER, 'north'), store.portfolio(SUPPLIER, 'south'), [M1, M2, M3].map((d) => store.device(SUPPLIER, d))])).toBe(snapshot);
}

describe('key state transitions', () => {
  it('rotate refuses a revoked, a retired, an already active key, and a pending key without a certificate', async () => {
    const e = await estateWithEveryState();
    for (const keyId of [e.revoked, e.retired, e.active, e.pendingBare]) {
      await refusedWithoutChange(e.store, e.dir, () => e.store.rotate(keyId), 'ERR_KEY_STATE_TRANSITION');
    }
    // the one legal case, for contrast
    expect((await e.store.rotate(e.pendingCert)).map((u) => u.device).sort()).toEqual([M1, M2]);
  });

  it('retire refuses a revoked key, a retired key, the current key, and a key meters still trust', async () => {
    const e = await estateWithEveryState();
    await refusedWithoutChange(e.store, e.dir, () => e.store.retire(e.revoked), 'ERR_KEY_STATE_TRANSITION');
    await refusedWithoutChange(e.store, e.dir, () => e.store.retire(e.retired), 'ERR_KEY_STATE_TRANSITION');
    await refusedWithoutChange(e.store, e.dir, () => e.store.retire(e.active), 'ERR_KEY_STATE_TRANSITION'); // current
    await e.store.rotate(e.pendingCert); // g3 no longer current, still trusted by M1 and M2
    await refusedWithoutChange(e.store, e.dir, () => e.store.retire(e.active), 'ERR_KEY_STATE_TRANSITION');
    await e.store.markCredentialsUpdated(SUPPLIER, M1, 'signing');
    await refusedWithoutChange(e.store, e.dir, () => e.store.retire(e.active), 'ERR_KEY_STATE_TRANSITION'); // M2 still
    await e.store.markCredentialsUpdated(SUPPLIER, M2, 'signing');
    expect((await e.store.retire(e.active)).state).toBe('retired');
  });

  it('revoke refuses a key revoked already; a retired key may still be revoked', async () => {
    const e = await estateWithEveryState();
    await refusedWithoutChange(e.store, e.dir, () => e.store.revoke(e.revoked), 'ERR_KEY_STATE_TRANSITION');
    expect((await e.store.revoke(e.retired)).state).toBe('revoked');
  });

  it('retire refuses the current key even when no meter trusts it', async () => {
    const e = await estateWithEveryState();
    await e.store.createPortfolio(SUPPLIER, { id: 'empty' });
    const { handle } = await issue(e.store, SUPPLIER, 'empty', 'signing');
    expect(e.store.devicesExposedBy(handle.keyId).devices).toEqual([]);
    await refusedWithoutChange(e.store, e.dir, () => e.store.retire(handle.keyId), 'ERR_KEY_STATE_TRANSITION');
  });

  it('a CSR only for a pending key, refused before the key is used at all; a certificate only onto a pending key without one', async () => {
    const e = await estateWithEveryState();
    let signs = 0;
    const backend = e.backend;
    const sign = backend.sign.bind(backend);
    backend.sign = (handle: string, m: Uint8Array) => {
      signs++;
      return sign(handle, m);
    };
    for (const keyId of [e.revoked, e.retired, e.active]) {
      await refusedWithoutChange(e.store, e.dir, () => e.store.createCsr(keyId), 'ERR_KEY_STATE_TRANSITION');
    }
    expect(signs).toBe(0); // a revoked or retired key never signs, not even a CSR that is then withheld
    const cert = e.store.key(e.pendingCert).certificate!;
    await refusedWithoutChange(e.store, e.dir, () => e.store.attachCertificate(e.pendingCert, cert), 'ERR_KEY_STATE_TRANSITION');
  });
});

describe('devices', () => {
  it('moveDevice and markCredentialsUpdated refuse a device in no portfolio', async () => {
    const e = await estateWithEveryState();
    await refusedWithoutChange(e.store, e.dir, () => e.store.moveDevice(SUPPLIER, '00DB1234567890FF', 'south'), 'ERR_DEVICE_UNKNOWN');
    await refusedWithoutChange(e.store, e.dir, () => e.store.markCredentialsUpdated(SUPPLIER, '00DB1234567890FF', 'signing'), 'ERR_DEVICE_UNKNOWN');
  });

  it('moving a device to the portfolio it is in is refused', async () => {
    const e = await estateWithEveryState();
    await refusedWithoutChange(e.store, e.dir, () => e.store.moveDevice(SUPPLIER, M1, 'north'), 'ERR_INVALID_ARGUMENT');
  });

  it('moving to an unknown portfolio is refused', async () => {
    const e = await estateWithEveryState();
    await refusedWithoutChange(e.store, e.dir, () => e.store.moveDevice(SUPPLIER, M1, 'west'), 'ERR_PORTFOLIO_NOT_FOUND');
  });

  it('assigning a device twice is refused', async () => {
    const e = await estateWithEveryState();
    await refusedWithoutChange(e.store, e.dir, () => e.store.assignDevice(SUPPLIER, M1, 'south'), 'ERR_DEVICE_ALREADY_ASSIGNED');
  });

  it('a portfolio with no current key: no credential update, and its meters are not signed for', async () => {
    const e = await estateWithEveryState();
    // south's only signing key is revoked: it has no current signing key
    expect(e.store.portfolio(SUPPLIER, 'south').current.signing).toBeUndefined();
    await refusedWithoutChange(e.store, e.dir, () => e.store.markCredentialsUpdated(SUPPLIER, M3, 'signing'), 'ERR_DEVICE_NO_INSTALLED_CERTIFICATE');
    await e.store.createPortfolio(SUPPLIER, { id: 'empty' });
    await e.store.assignDevice(SUPPLIER, '00DB1234567890A4', 'empty');
    expect(e.store.device(SUPPLIER, '00DB1234567890A4').installed).toEqual({});
    await expectCode(e.store.signFor('00DB1234567890A4', message), 'ERR_DEVICE_NO_INSTALLED_CERTIFICATE');
    await expectCode(() => e.store.keyAgreementFor('00DB1234567890A4'), 'ERR_DEVICE_NO_INSTALLED_CERTIFICATE');
  });
});

describe('organisations and portfolios', () => {
  it('a duplicate organisation is ERR_ORGANISATION_EXISTS (in any spelling of its EUI-64)', async () => {
    const e = await estateWithEveryState();
    await refusedWithoutChange(e.store, e.dir, () => e.store.addOrganisation({ entityId: SUPPLIER, role: 2 }), 'ERR_ORGANISATION_EXISTS');
    await refusedWithoutChange(e.store, e.dir, () => e.store.addOrganisation({ entityId: '90-b3-d5-1f-30-01-00-00', role: 3 }), 'ERR_ORGANISATION_EXISTS');
  });

  it('an unknown organisation is ERR_ORGANISATION_NOT_FOUND everywhere one is named', async () => {
    const e = await estateWithEveryState();
    const attempts: (() => unknown)[] = [
      () => e.store.createPortfolio(OTHER_SUPPLIER, { id: 'north' }),
      () => e.store.generateKey(OTHER_SUPPLIER, 'north', 'signing'),
      () => e.store.assignDevice(OTHER_SUPPLIER, M1, 'north'),
      () => e.store.moveDevice(OTHER_SUPPLIER, M1, 'south'),
      () => e.store.markCredentialsUpdated(OTHER_SUPPLIER, M1, 'signing'),
      () => e.store.portfolio(OTHER_SUPPLIER, 'north'),
      () => e.store.device(OTHER_SUPPLIER, M1),
      () => e.store.signFor(M1, message, { organisation: OTHER_SUPPLIER }),
      () => e.store.keyAgreementFor(M1, { organisation: OTHER_SUPPLIER }),
    ];
    for (const attempt of attempts) await refusedWithoutChange(e.store, e.dir, attempt, 'ERR_ORGANISATION_NOT_FOUND');
  });

  it('a duplicate portfolio is ERR_PORTFOLIO_EXISTS; an unknown one ERR_PORTFOLIO_NOT_FOUND', async () => {
    const e = await estateWithEveryState();
    await refusedWithoutChange(e.store, e.dir, () => e.store.createPortfolio(SUPPLIER, { id: 'north' }), 'ERR_PORTFOLIO_EXISTS');
    for (const attempt of [
      () => e.store.generateKey(SUPPLIER, 'west', 'signing'),
      () => e.store.assignDevice(SUPPLIER, '00DB1234567890A4', 'west'),
      () => e.store.portfolio(SUPPLIER, 'west'),
    ]) {
      await refusedWithoutChange(e.store, e.dir, attempt, 'ERR_PORTFOLIO_NOT_FOUND');
    }
  });
});

describe('a closed KeyStore refuses every operation with ERR_KEYSTORE_CLOSED', () => {
  it('lifecycle, use and reading alike, and a KeyAgreement obtained before the close', async () => {
    const { store } = await openStore();
    const { north } = await supplierEstate(store);
    const ka = store.keyAgreementFor(M1);
    await store.close();
    const peer = north.ka.cert.publicKeyBytes;
    const attempts: [string, () => unknown][] = [
      ['addOrganisation', () => store.addOrganisation({ entityId: OTHER_SUPPLIER, role: 2 })],
      ['createPortfolio', () => store.createPortfolio(SUPPLIER, { id: 'west' })],
      ['generateKey', () => store.generateKey(SUPPLIER, 'north', 'signing')],
      ['createCsr', () => store.createCsr(north.ds.handle.keyId)],
      ['attachCertificate', () => store.attachCertificate(north.ds.handle.keyId, north.ds.cert)],
      ['rotate', () => store.rotate(north.ds.handle.keyId)],
      ['retire', () => store.retire(north.ds.handle.keyId)],
      ['revoke', () => store.revoke(north.ds.handle.keyId)],
      ['assignDevice', () => store.assignDevice(SUPPLIER, '00DB1234567890A4', 'north')],
      ['moveDevice', () => store.moveDevice(SUPPLIER, M1, 'south')],
      ['markCredentialsUpdated', () => store.markCredentialsUpdated(SUPPLIER, M1, 'signing')],
      ['signFor', () => store.signFor(M1, message)],
      ["signWith", () => store.signWith(north.ds.handle as SigningKeyHandle, M1, message)],
      ['keyAgreementFor', () => store.keyAgreementFor(M1)],
      ["keyAgreementWith", () => store.keyAgreementWith(north.ka.handle as KeyAgreementKeyHandle, M1)],
      ['deriveSharedSecret', () => ka.deriveSharedSecret(peer)],
      ['key', () => store.key(north.ds.handle.keyId)],
      ['keys', () => store.keys()],
      ['portfolio', () => store.portfolio(SUPPLIER, 'north')],
      ['device', () => store.device(SUPPLIER, M1)],
      ['devicesExposedBy', () => store.devicesExposedBy(north.ds.handle.keyId)],
      ['exposureReport', () => store.exposureReport()],
      ['flush', () => store.flush()],
    ];
    for (const [name, attempt] of attempts) {
      try {
        await attempt();
      } catch (e) {
        expect((e as { code?: string }).code, name).toBe('ERR_KEYSTORE_CLOSED');
        continue;
      }
      throw new Error(`${name} did not refuse on a closed store`);
    }
    await store.close(); // idempotent
  });
});
