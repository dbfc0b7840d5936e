// The validator's caches (docs/validator.md, caches and what they trade): the shared-secret
// cache fills only through the ACB KeyAgreement, keys by (ACB key id, device key SKI), expires,
// and is purged on demand; MACs made from a cached Z are the same frames the meter accepts.
import { beforeAll, describe, expect, it } from 'vitest';
import { createKeyAgreement, type KeyAgreement } from '@smki/core';
import { issueDeviceCertificate } from '@smki/pki';
import { SimulatedMeter } from '../../gbcs/test/_device-simulator.js';
import { SUPPLIER, buildWorld, disconnect, keyPair, memoryStores, openValidator, type World } from './_world.js';

let world: World;
beforeAll(async () => {
  world = await buildWorld({ meters: 3 });
});

function counting(): { agreement: KeyAgreement; calls: () => number } {
  const inner = createKeyAgreement(world.acb.privateKey);
  let n = 0;
  return {
    agreement: {
      publicKey: inner.publicKey,
      deriveSharedSecret: (peer) => {
        n++;
        return inner.deriveSharedSecret(peer);
      },
    },
    calls: () => n,
  };
}

const meterFor = (i: number, ka = world.meters[i]!.ka) =>
  new SimulatedMeter({
    eui64: world.meters[i]!.eui,
    supplier: { entityId: SUPPLIER, dsPublicKey: world.portfolios[world.meters[i]!.portfolio]!.publicKey, kaPublicKey: world.acb.publicKey },
    acb: { entityId: '90B3D51F30000004', kaPublicKey: world.acb.publicKey },
    criticalCodes: [0x0050],
    ka: { privateKey: ka.privateKey, publicKey: ka.publicKey },
  });

describe('shared-secret cache', () => {
  it('off by default: every command derives Z through the KeyAgreement', async () => {
    const { agreement, calls } = counting();
    const v = await openValidator(world, await memoryStores(world), { acb: { keyId: 'acb-1', keyAgreement: agreement } });
    const c = BigInt(world.now.getTime());
    for (let i = 0n; i < 3n; i++) expect((await v.validate(await disconnect(world, world.meters[0]!, c + i), { sender: SUPPLIER })).outcome).toBe('accepted');
    expect(calls()).toBe(3);
    await v.close();
  });

  it('on: one derivation per (ACB key, device key) until the TTL, the same frames, purged on demand', async () => {
    const { agreement, calls } = counting();
    let now = world.now.getTime();
    const v = await openValidator(world, await memoryStores(world), { acb: { keyId: 'acb-1', keyAgreement: agreement }, sharedSecretCache: { ttlMs: 60_000 }, now: () => new Date(now) });
    const meter = meterFor(0);
    const c = BigInt(world.now.getTime());
    for (let i = 0n; i < 3n; i++) {
      const d = await v.validate(await disconnect(world, world.meters[0]!, c + i), { sender: SUPPLIER });
      expect(meter.receive((d as { frame: Uint8Array }).frame).accepted).toBe(true);
    }
    expect(calls()).toBe(1);
    // Another device: its own derivation.
    expect((await v.validate(await disconnect(world, world.meters[1]!, c), { sender: SUPPLIER })).outcome).toBe('accepted');
    expect(calls()).toBe(2);
    // The TTL ends: derived again.
    now += 60_000;
    expect((await v.validate(await disconnect(world, world.meters[0]!, c + 10n), { sender: SUPPLIER })).outcome).toBe('accepted');
    expect(calls()).toBe(3);
    // Purged for this ACB key: derived again; a purge for another key id removes nothing.
    expect(v.purgeSharedSecrets({ acbKeyId: 'other' })).toBe(0);
    expect(v.purgeSharedSecrets({ acbKeyId: 'acb-1' })).toBe(2);
    expect((await v.validate(await disconnect(world, world.meters[0]!, c + 11n), { sender: SUPPLIER })).outcome).toBe('accepted');
    expect(calls()).toBe(4);
    const ski = world.meters[0]!.kaCertificate.subjectKeyId!;
    expect(v.purgeSharedSecrets({ deviceKeySki: ski })).toBe(1);
    expect(v.purgeSharedSecrets()).toBe(0);
    await v.close();
  });

  it('a replaced device key-agreement certificate is a new entry: the MAC follows the new key', async () => {
    const { agreement, calls } = counting();
    const stores = await memoryStores(world);
    const v = await openValidator(world, stores, { acb: { keyId: 'acb-1', keyAgreement: agreement }, sharedSecretCache: {} });
    const m = world.meters[2]!;
    const c = BigInt(world.now.getTime());
    expect((await v.validate(await disconnect(world, m, c), { sender: SUPPLIER })).outcome).toBe('accepted');
    const ka = keyPair();
    const cert = await issueDeviceCertificate({ issuer: world.hierarchy.deviceCa, entityId: m.eui, keyUsage: 'keyAgreement', publicKey: ka.publicKey });
    await stores.registry.put([{ ...m.record, keyAgreementCertificate: cert.der }]);
    const d = await v.validate(await disconnect(world, m, c + 1n), { sender: SUPPLIER });
    expect(calls()).toBe(2);
    // The old key's entry went with the old certificate: only the new one is cached.
    expect(v.purgeSharedSecrets({ deviceKeySki: m.kaCertificate.subjectKeyId! })).toBe(0);
    expect(v.purgeSharedSecrets({ deviceKeySki: cert.subjectKeyId! })).toBe(1);
    // A trust update clears the cache.
    expect((await v.validate(await disconnect(world, m, c + 2n), { sender: SUPPLIER })).outcome).toBe('accepted');
    v.updateTrust({ certificates: world.certificates, crls: world.crls });
    expect(v.purgeSharedSecrets()).toBe(0);
    expect(meterFor(2, ka).receive((d as { frame: Uint8Array }).frame).accepted).toBe(true);
    expect(meterFor(2).receive((d as { frame: Uint8Array }).frame).reason).toBe('mac-invalid');
    await v.close();
  });
});
