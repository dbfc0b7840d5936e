// A stolen key is refused by the DCC-side validator before any meter is re-keyed: once the plan
// has revoked the key in the key store (planCompromise) the organisation CA's CRL lists its
// certificate (RFC 5280 §5, §6.3), and a command the thief signs with it for a north meter is
// refused by @smki/validator with ERR_COMMAND_SIGNER_REVOKED, while the same kind of command was
// accepted before the CRL (docs/domain.md §9: mode 8 exists because the stolen key must not
// authorise anything, its own replacement included; docs/key-segregation.md).
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createKeyAgreement, parseEui64, type Signer } from '@smki/core';
import { buildDisableSupply, signPreCommand } from '@smki/gbcs';
import { MemoryKeyBackend } from '@smki/keystore';
import { issueCrl, issueDeviceCertificate, issueOrganisationCertificate, parseCertificate, type SmkiCertificate } from '@smki/pki';
import { MemoryDeviceRegistry, MemoryFirmwareAllowlist, MemoryStateStore, type DeviceRecord } from '@smki/store';
import { Validator } from '@smki/validator';
import { RecoveryPlans } from '../src/index.js';
import { closeLater, deviceTrust, NORTH, pki, RECOVERY, SOUTH, SUPPLIER, tempDir, supplierStore } from './_fixtures.js';

const NETWORK_OPERATOR = parseEui64('90B3D51F30030000');
const ACB = parseEui64('90B3D51F30000004');

describe('the validator refuses the stolen key once the CRL lists it (RFC 5280 §6.3; docs/domain.md §9)', () => {
  it('before the CRL a command signed with the north key is accepted; after planCompromise and the CRL, the same key is refused for every north meter', async () => {
    // The thief's copy of the key material: the backend that held it, called directly (the key
    // store's own revocation does not reach a copy outside it).
    const backend = new MemoryKeyBackend();
    const estate = await supplierStore({ backend, backends: { 'token-b': new MemoryKeyBackend() } });
    const { store, northKeys, south } = estate;
    const stolen = await store.key(northKeys.signing!);
    const stolenCert: SmkiCertificate = parseCertificate(stolen.certificate!);

    const now = new Date();
    const thisUpdate = new Date(now.getTime() - 60_000);
    const nextUpdate = new Date(now.getTime() + 24 * 3600_000);
    const crls = async (revoked: readonly SmkiCertificate[], crlNumber: bigint) => [
      await issueCrl({ issuer: pki().organisationCa, crlNumber, kind: 'crl', revoked: revoked.map((c) => ({ serialNumber: c.serialNumber, revocationDate: thisUpdate })), thisUpdate, nextUpdate }),
      await issueCrl({ issuer: pki().root, crlNumber, kind: 'arl', thisUpdate, nextUpdate }),
    ];
    const acb = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const acbCert = await issueOrganisationCertificate({ issuer: pki().organisationCa, role: 4, entityId: ACB, keyUsage: 'keyAgreement', publicKey: acb.publicKey });
    const certificates = [pki().root.certificate, pki().organisationCa.certificate, pki().deviceCa.certificate, stolenCert, south.signing, acbCert];

    // The DCC's registry: the north meters hold the north DS key in the supplier's cell, the south meters the south key.
    const registry = new MemoryDeviceRegistry();
    const records: DeviceRecord[] = [];
    for (const [device, cert] of [...NORTH.slice(0, 2).map((d) => [d, stolenCert] as const), [SOUTH[0]!, south.signing] as const]) {
      const ka = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const kaCert = await issueDeviceCertificate({ issuer: pki().deviceCa, entityId: device, keyUsage: 'keyAgreement', publicKey: ka.publicKey });
      records.push({
        device: parseEui64(device),
        type: 'ESME',
        fuel: 'electricity',
        model: 'ACME-ESME-1',
        supplier: parseEui64(SUPPLIER),
        networkOperator: NETWORK_OPERATOR,
        cells: [{ role: 2, keyUsage: 'digitalSignature', cellUsage: 'management', ski: cert.subjectKeyId!, entity: parseEui64(SUPPLIER) }],
        keyAgreementCertificate: kaCert.der,
      });
    }
    await registry.put(records);
    const validator = await Validator.open({
      store: new MemoryStateStore(),
      registry,
      firmware: new MemoryFirmwareAllowlist(),
      trust: { certificates, crls: await crls([], 1n) },
      acb: { keyId: 'acb-ka-1', keyAgreement: createKeyAgreement(acb.privateKey) },
      log: { dir: tempDir(), id: 'validator-recovery', key: new Uint8Array(32).fill(7) },
      now: () => now,
    });
    closeLater(() => validator.close());

    const stolenSigner = (): Signer => ({ publicKey: stolenCert.publicKeyBytes, sign: (data) => backend.sign(stolen.handle, data) });
    let counter = BigInt(now.getTime());
    const disconnect = (device: string, signer: Signer) => signPreCommand(buildDisableSupply({ fuel: 'electricity', originator: SUPPLIER, recipient: device, counter: counter++ }), signer);

    // Before: the north key signs (through the store) and the validator accepts.
    const viaStore: Signer = { publicKey: stolenCert.publicKeyBytes, sign: (data) => store.signFor(NORTH[0]!, data, { organisation: SUPPLIER }) };
    expect((await validator.validate(await disconnect(NORTH[0]!, viaStore), { sender: parseEui64(SUPPLIER) })).outcome).toBe('accepted');

    // The compromise is declared: the key store revokes the key at once (no meter is re-keyed yet).
    const plans = await RecoveryPlans.open({ deviceTrust: deviceTrust(), path: join(tempDir(), 'plans.db'), keystore: store, counters: { startCounter: 1n } });
    closeLater(() => plans.close());
    const { plan } = await plans.planCompromise({ organisation: SUPPLIER, portfolioId: 'north', recoveryParty: RECOVERY, backend: 'token-b' });
    expect((await store.key(stolen.keyId)).state).toBe('revoked');
    expect((await plans.status(plan.planId)).counts.built).toBe(0);

    // The thief still holds the key, and the validator does not know yet: still accepted.
    expect((await validator.validate(await disconnect(NORTH[1]!, stolenSigner()), { sender: parseEui64(SUPPLIER) })).outcome).toBe('accepted');

    // The organisation CA's CRL lists the stolen certificate: the thief's commands are refused, for every north meter.
    validator.updateTrust({ certificates, crls: await crls([stolenCert], 2n) });
    for (const device of NORTH.slice(0, 2)) {
      const d = await validator.validate(await disconnect(device, stolenSigner()), { sender: parseEui64(SUPPLIER) });
      expect(d.outcome).toBe('rejected');
      expect((d as { code: string }).code).toBe('ERR_COMMAND_SIGNER_REVOKED');
    }
    // The south key, not stolen, still works (segregation).
    const south0: Signer = { publicKey: south.signing.publicKeyBytes, sign: (data) => store.signFor(SOUTH[0]!, data, { organisation: SUPPLIER }) };
    expect((await validator.validate(await disconnect(SOUTH[0]!, south0), { sender: parseEui64(SUPPLIER) })).outcome).toBe('accepted');
    // And still no meter has been re-keyed.
    expect((await plans.status(plan.planId)).remaining).toEqual({ signing: 20, keyAgreement: 20 });
  });
});
