// The public KeyStore's state machine (docs/domain.md §1 key segregation, §2 a meter trusts one
// supplier DS certificate per cell): every refusal, one case each with exactly its code, and proof
// that a refusal changes no row and writes no audit record (the trail's head is where it was, every
// read is the same, and the store verifies). Each case breaks one guard.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { DirectoryAnchor, KeyStore, type KeyAgreementKeyHandle, type SigningKeyHandle } from '../src/index.js';
import {
  allTrusting,
  allUpdates,
  expectCode,
  issue,
  M1,
  M2,
  M3,
  message,
  openPublic,
  OTHER_SUPPLIER,
  PASS,
  publicTempDir,
  refusedWithoutChange,
  supplierEstate,
  SUPPLIER,
} from './_public-fixtures.js';

/** A supplier estate with a second north signing key in every state: pending without and with a certificate, active, retired, revoked. */
async function estateWithEveryState() {
  const { store, dir, backend } = await openPublic();
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

describe('key state transitions', () => {
  it('the estate holds a key in every state', async () => {
    const e = await estateWithEveryState();
    expect((await e.store.key(e.retired)).state).toBe('retired');
    expect((await e.store.key(e.active)).state).toBe('active');
    expect(await e.store.key(e.pendingBare)).toMatchObject({ state: 'pending' });
    expect((await e.store.key(e.pendingBare)).certificate).toBeUndefined();
    expect((await e.store.key(e.pendingCert)).state).toBe('pending');
    expect((await e.store.key(e.pendingCert)).certificate).toBeDefined();
    expect((await e.store.key(e.revoked)).state).toBe('revoked');
  });

  it('rotate refuses a revoked, a retired, an already active key, and a pending key without a certificate', async () => {
    const e = await estateWithEveryState();
    for (const keyId of [e.revoked, e.retired, e.active, e.pendingBare]) {
      await refusedWithoutChange(e.store, () => e.store.rotate(keyId), 'ERR_KEY_STATE_TRANSITION');
    }
    // the one legal case, for contrast
    expect(await e.store.rotate(e.pendingCert)).toEqual({ fromKeyId: e.active, toKeyId: e.pendingCert, devicesToUpdate: 2 });
    expect((await allUpdates(e.store, SUPPLIER, 'north')).map((u) => u.device)).toEqual([M1, M2]);
  });

  it('retire refuses a revoked key, a retired key, the current key, and a key meters still trust', async () => {
    const e = await estateWithEveryState();
    await refusedWithoutChange(e.store, () => e.store.retire(e.revoked), 'ERR_KEY_STATE_TRANSITION');
    await refusedWithoutChange(e.store, () => e.store.retire(e.retired), 'ERR_KEY_STATE_TRANSITION');
    await refusedWithoutChange(e.store, () => e.store.retire(e.active), 'ERR_KEY_STATE_TRANSITION'); // current
    await e.store.rotate(e.pendingCert); // g3 no longer current, still trusted by M1 and M2
    await refusedWithoutChange(e.store, () => e.store.retire(e.active), 'ERR_KEY_STATE_TRANSITION');
    await e.store.markCredentialsUpdated(SUPPLIER, M1, 'signing');
    await refusedWithoutChange(e.store, () => e.store.retire(e.active), 'ERR_KEY_STATE_TRANSITION'); // M2 still
    await e.store.markCredentialsUpdated(SUPPLIER, M2, 'signing');
    expect((await e.store.retire(e.active)).state).toBe('retired');
  });

  it('revoke refuses a key revoked already, and a reason an audit record cannot carry; a retired key may still be revoked', async () => {
    const e = await estateWithEveryState();
    await refusedWithoutChange(e.store, () => e.store.revoke(e.revoked), 'ERR_KEY_STATE_TRANSITION');
    await refusedWithoutChange(e.store, () => e.store.revoke(e.active, 'key\ncompromise'), 'ERR_INVALID_ARGUMENT');
    // a long reason is cut, never a reason to refuse a revocation
    expect((await e.store.revoke(e.pendingBare, 'x'.repeat(500))).state).toBe('revoked');
    expect((await e.store.revoke(e.retired)).state).toBe('revoked');
  });

  it('retire refuses the current key even when no meter trusts it', async () => {
    const e = await estateWithEveryState();
    await e.store.createPortfolio(SUPPLIER, { id: 'empty' });
    const { handle } = await issue(e.store, SUPPLIER, 'empty', 'signing');
    expect(await allTrusting(e.store, handle.keyId)).toEqual([]);
    await refusedWithoutChange(e.store, () => e.store.retire(handle.keyId), 'ERR_KEY_STATE_TRANSITION');
  });

  it('a CSR only for a pending key, refused before the key is used at all; a certificate only onto a pending key without one', async () => {
    const e = await estateWithEveryState();
    const signs = vi.spyOn(e.backend, 'sign');
    for (const keyId of [e.revoked, e.retired, e.active]) {
      await refusedWithoutChange(e.store, () => e.store.createCsr(keyId), 'ERR_KEY_STATE_TRANSITION');
    }
    expect(signs).not.toHaveBeenCalled(); // a revoked or retired key never signs, not even a CSR that is then withheld
    const cert = (await e.store.key(e.pendingCert)).certificate!;
    await refusedWithoutChange(e.store, () => e.store.attachCertificate(e.pendingCert, cert), 'ERR_KEY_STATE_TRANSITION');
    // and the legal CSR, for contrast: the pending key signs its own proof of possession
    expect((await e.store.createCsr(e.pendingBare)).length).toBeGreaterThan(0);
    expect(signs).toHaveBeenCalledTimes(1);
  });
});

describe('devices', () => {
  it('moveDevice and markCredentialsUpdated refuse a device in no portfolio', async () => {
    const e = await estateWithEveryState();
    await refusedWithoutChange(e.store, () => e.store.moveDevice(SUPPLIER, '00DB1234567890FF', 'south'), 'ERR_DEVICE_UNKNOWN');
    await refusedWithoutChange(e.store, () => e.store.moveDevices(SUPPLIER, [M3, '00DB1234567890FF'], 'north'), 'ERR_DEVICE_UNKNOWN');
    await refusedWithoutChange(e.store, () => e.store.markCredentialsUpdated(SUPPLIER, '00DB1234567890FF', 'signing'), 'ERR_DEVICE_UNKNOWN');
  });

  it('moving a device to the portfolio it is in is refused', async () => {
    const e = await estateWithEveryState();
    await refusedWithoutChange(e.store, () => e.store.moveDevice(SUPPLIER, M1, 'north'), 'ERR_INVALID_ARGUMENT');
    // in a bulk move too: none of them moves
    await refusedWithoutChange(e.store, () => e.store.moveDevices(SUPPLIER, [M3, M1], 'north'), 'ERR_INVALID_ARGUMENT');
  });

  it('moving to an unknown portfolio is refused', async () => {
    const e = await estateWithEveryState();
    await refusedWithoutChange(e.store, () => e.store.moveDevice(SUPPLIER, M1, 'west'), 'ERR_PORTFOLIO_NOT_FOUND');
  });

  it('assigning a device twice is refused', async () => {
    const e = await estateWithEveryState();
    await refusedWithoutChange(e.store, () => e.store.assignDevice(SUPPLIER, M1, 'south'), 'ERR_DEVICE_ALREADY_ASSIGNED');
    await refusedWithoutChange(e.store, () => e.store.assignDevices(SUPPLIER, [{ device: '00DB1234567890A4', portfolioId: 'north' }, { device: M3, portfolioId: 'north' }]), 'ERR_DEVICE_ALREADY_ASSIGNED');
  });

  it('a portfolio with no current key: no credential update, and its meters are not signed for', async () => {
    const e = await estateWithEveryState();
    // south's only signing key is revoked: it has no current signing key
    expect((await e.store.portfolio(SUPPLIER, 'south')).current.signing).toBeUndefined();
    await refusedWithoutChange(e.store, () => e.store.markCredentialsUpdated(SUPPLIER, M3, 'signing'), 'ERR_DEVICE_NO_INSTALLED_CERTIFICATE');
    await e.store.createPortfolio(SUPPLIER, { id: 'empty' });
    await e.store.assignDevice(SUPPLIER, '00DB1234567890A4', 'empty');
    expect((await e.store.device(SUPPLIER, '00DB1234567890A4')).installed).toEqual({});
    await refusedWithoutChange(e.store, () => e.store.signFor('00DB1234567890A4', message), 'ERR_DEVICE_NO_INSTALLED_CERTIFICATE');
    await refusedWithoutChange(e.store, () => e.store.keyAgreementFor('00DB1234567890A4'), 'ERR_DEVICE_NO_INSTALLED_CERTIFICATE');
  });
});

describe('organisations and portfolios', () => {
  it('a duplicate organisation is ERR_ORGANISATION_EXISTS (in any spelling of its EUI-64)', async () => {
    const e = await estateWithEveryState();
    await refusedWithoutChange(e.store, () => e.store.addOrganisation({ entityId: SUPPLIER, role: 2 }), 'ERR_ORGANISATION_EXISTS');
    await refusedWithoutChange(e.store, () => e.store.addOrganisation({ entityId: '90-b3-d5-1f-30-01-00-00', role: 3 }), 'ERR_ORGANISATION_EXISTS');
  });

  it('an unknown organisation is ERR_ORGANISATION_NOT_FOUND everywhere one is named', async () => {
    const e = await estateWithEveryState();
    const generated = vi.spyOn(e.backend, 'generateKey');
    const attempts: [string, () => unknown][] = [
      ['createPortfolio', () => e.store.createPortfolio(OTHER_SUPPLIER, { id: 'north' })],
      ['generateKey', () => e.store.generateKey(OTHER_SUPPLIER, 'north', 'signing')],
      ['assignDevice', () => e.store.assignDevice(OTHER_SUPPLIER, M1, 'north')],
      ['assignDevices', () => e.store.assignDevices(OTHER_SUPPLIER, [{ device: M1, portfolioId: 'north' }])],
      ['moveDevice', () => e.store.moveDevice(OTHER_SUPPLIER, M1, 'south')],
      ['moveDevices', () => e.store.moveDevices(OTHER_SUPPLIER, [M1], 'south')],
      ['markCredentialsUpdated', () => e.store.markCredentialsUpdated(OTHER_SUPPLIER, M1, 'signing')],
      ['organisation', () => e.store.organisation(OTHER_SUPPLIER)],
      ['portfolio', () => e.store.portfolio(OTHER_SUPPLIER, 'north')],
      ['portfolios', () => e.store.portfolios(OTHER_SUPPLIER)],
      ['devicesOf', () => e.store.devicesOf(OTHER_SUPPLIER, 'north')],
      ['credentialUpdates', () => e.store.credentialUpdates(OTHER_SUPPLIER, 'north')],
      ['device', () => e.store.device(OTHER_SUPPLIER, M1)],
      ['signFor', () => e.store.signFor(M1, message, { organisation: OTHER_SUPPLIER })],
      ['keyAgreementFor', () => e.store.keyAgreementFor(M1, { organisation: OTHER_SUPPLIER })],
      ['xmlSigner', () => e.store.xmlSigner(OTHER_SUPPLIER)],
    ];
    for (const [name, attempt] of attempts) {
      await refusedWithoutChange(e.store, attempt, 'ERR_ORGANISATION_NOT_FOUND').catch((x: unknown) => {
        throw new Error(`${name}: ${String(x)}`);
      });
    }
    expect(generated).not.toHaveBeenCalled(); // no backend key is made for an organisation the store does not know
  });

  it('a duplicate portfolio is ERR_PORTFOLIO_EXISTS; an unknown one ERR_PORTFOLIO_NOT_FOUND', async () => {
    const e = await estateWithEveryState();
    const generated = vi.spyOn(e.backend, 'generateKey');
    await refusedWithoutChange(e.store, () => e.store.createPortfolio(SUPPLIER, { id: 'north' }), 'ERR_PORTFOLIO_EXISTS');
    for (const attempt of [
      () => e.store.generateKey(SUPPLIER, 'west', 'signing'),
      () => e.store.assignDevice(SUPPLIER, '00DB1234567890A4', 'west'),
      () => e.store.portfolio(SUPPLIER, 'west'),
      () => e.store.credentialUpdates(SUPPLIER, 'west'),
      () => e.store.xmlSigner(SUPPLIER, { portfolioId: 'west' }),
    ]) {
      await refusedWithoutChange(e.store, attempt, 'ERR_PORTFOLIO_NOT_FOUND');
    }
    expect(generated).not.toHaveBeenCalled();
    expect(e.store.orphanHandles()).toEqual([]);
  });

  // Once a bug, now pinned: devicesOf checks the organisation but not the portfolio, so a misspelt portfolio
  // reads as an empty one (every other read that names a portfolio refuses it).
  it('devicesOf an unknown portfolio is ERR_PORTFOLIO_NOT_FOUND, not an empty page', async () => {
    const e = await estateWithEveryState();
    await refusedWithoutChange(e.store, () => e.store.devicesOf(SUPPLIER, 'west'), 'ERR_PORTFOLIO_NOT_FOUND');
  });
});

describe('a closed KeyStore refuses every operation with ERR_KEYSTORE_CLOSED', () => {
  it('lifecycle, use and reading alike, and a KeyAgreement and an XML signer obtained before the close', async () => {
    const { store } = await openPublic();
    const { north } = await supplierEstate(store);
    await store.createPortfolio(SUPPLIER, { id: 'org' });
    await issue(store, SUPPLIER, 'org', 'xmlSigning', 135);
    const ka = await store.keyAgreementFor(M1);
    const xml = await store.xmlSigner(SUPPLIER);
    await store.close();
    const anchor = await DirectoryAnchor.open({ directory: publicTempDir() });
    const peer = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
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
      ['assignDevices', () => store.assignDevices(SUPPLIER, [{ device: '00DB1234567890A4', portfolioId: 'north' }])],
      ['moveDevice', () => store.moveDevice(SUPPLIER, M1, 'south')],
      ['moveDevices', () => store.moveDevices(SUPPLIER, [M1], 'south')],
      ['markCredentialsUpdated', () => store.markCredentialsUpdated(SUPPLIER, M1, 'signing')],
      ['credentialUpdates', () => store.credentialUpdates(SUPPLIER, 'north')],
      ['signFor', () => store.signFor(M1, message)],
      ['signWith', () => store.signWith(north.ds.handle as SigningKeyHandle, M1, message)],
      ['keyAgreementFor', () => store.keyAgreementFor(M1)],
      ['keyAgreementWith', () => store.keyAgreementWith(north.ka.handle as KeyAgreementKeyHandle, M1)],
      ['deriveSharedSecret', () => ka.deriveSharedSecret(peer)],
      ['xmlSigner', () => store.xmlSigner(SUPPLIER)],
      ['xmlSigner.sign', () => xml.sign(message)],
      ['key', () => store.key(north.ds.handle.keyId)],
      ['keys', () => store.keys()],
      ['organisation', () => store.organisation(SUPPLIER)],
      ['portfolio', () => store.portfolio(SUPPLIER, 'north')],
      ['portfolios', () => store.portfolios(SUPPLIER)],
      ['devicesOf', () => store.devicesOf(SUPPLIER, 'north')],
      ['device', () => store.device(SUPPLIER, M1)],
      ['devicesTrusting', () => store.devicesTrusting(north.ds.handle.keyId)],
      ['exposureReport', () => store.exposureReport()],
      ['verifyStore', () => store.verifyStore()],
      ['verifyAuditTrail', () => store.verifyAuditTrail()],
      ['auditHead', () => store.auditHead()],
      ['checkAnchor', () => store.checkAnchor(anchor)],
      ['accessControlled', () => store.accessControlled()],
      ['operators', () => store.operators()],
      ['operator', () => store.operator('alice')],
      ['initialiseAccess', () => store.initialiseAccess({ operators: [] })],
      ['execute', () => store.execute({})],
      ['propose', () => store.propose({})],
      ['approve', () => store.approve({})],
      ['proposal', () => store.proposal('P1')],
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

  it('a closed store can be opened again: the close lost nothing', async () => {
    const { store, dir, backend } = await openPublic();
    const { north } = await supplierEstate(store);
    const keys = await store.keys();
    await store.close();
    const again = await KeyStore.open({ directory: dir, backend, passphrase: PASS });
    try {
      expect(await again.keys()).toEqual(keys);
      expect((await again.device(SUPPLIER, M1)).installed.signing).toBe(north.ds.handle.keyId);
    } finally {
      await again.close();
    }
  });
});
