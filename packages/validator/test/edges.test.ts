// The validator's decisions at the edges of its configuration and inputs (docs/validator.md):
// anomaly thresholds at and past their bounds (a bad one fails its command alone), windows on a
// clock that is not on a window boundary, the clock window switched off, a KeyAgreement chosen
// per device, a key agreement that fails for the store's sake or its own, a registry
// key-agreement certificate that is not a device's, a device certificate replaced without a
// shared-secret cache, the bound on the portfolio look-up, and validateBatch's own argument.
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createKeyAgreement, p1363ToDer, parseEui64, SmkiError, type KeyAgreement } from '@smki/core';
import { OID, TrustStore, defineEnvironment, issueDeviceCertificate, issueOrganisationCertificate, parseCrl, type SmkiCertificate } from '@smki/pki';
import { bitString, ctx, extension as rawExtension, int, oid, seq, time } from '../../pki/test/_x509-builder.js';
import { buildDisableSupply, buildGeneralSigning, createCatalogue, signPreCommand } from '@smki/gbcs';
import { simulatorCrypto } from '../../gbcs/test/_device-simulator.js';
import { MAX_BATCH, verifyDcoEnvelope, type Decision } from '../src/index.js';
import { MemoryStateStore, type StateStore } from '@smki/store';
import { NETWORK_OPERATOR, SUPPLIER, activate, buildWorld, disconnect, keyPair, memoryStores, openValidator, tempDir, type KeyPair, type World } from './_world.js';
import { expectRejectedAt } from './_expect.js';

const DCO = parseEui64('90B3D51F300D0000');
let world: World;
let dcoKey: KeyPair;
let dcoCert: SmkiCertificate;
beforeAll(async () => {
  world = await buildWorld({ meters: 4, portfolios: 20 });
  dcoKey = keyPair();
  dcoCert = await issueOrganisationCertificate({ issuer: world.hierarchy.organisationCa, role: 127, entityId: DCO, keyUsage: 'digitalSignature', publicKey: dcoKey.publicKey, now: () => new Date(world.now.getTime() - 3600_000) });
});
const NOW = () => BigInt(world.now.getTime());
const IMAGE = createHash('sha256').update('edge image').digest();
const outcomes = (ds: readonly Decision[]) => ds.map((d) => (d.outcome === 'rejected' ? d.code : d.outcome));
const macOk = (d: Decision, i: number, ka = world.meters[i]!.ka.privateKey) =>
  d.outcome === 'accepted' && simulatorCrypto.frameMacVerifies(d.frame, ka, world.acb.publicKey) === true;

describe('anomaly thresholds', () => {
  const DAY31 = 31 * 24 * 3600 * 1000;
  it.each([
    ['a negative limit', { limit: -1, windowMs: 60_000 }],
    ['a limit of 2^31', { limit: 2 ** 31, windowMs: 60_000 }],
    ['a fractional limit', { limit: 1.5, windowMs: 60_000 }],
    ['a zero window', { limit: 1, windowMs: 0 }],
    ['a window past 31 days', { limit: 1, windowMs: DAY31 + 1 }],
    ['a fractional window', { limit: 1, windowMs: 1.5 }],
    ['null', null],
    ['a string', 'ten a minute'],
  ])('%s fails its own command alone (ERR_INVALID_ARGUMENT at the anomaly step)', async (_name, threshold) => {
    const v = await openValidator(world, await memoryStores(world, [IMAGE]), { anomalyThreshold: (_u, code) => (code === 0x0050 ? (threshold as never) : undefined) });
    const [bad, good] = await v.validateBatch([
      { bytes: await disconnect(world, world.meters[0]!, NOW()), sender: SUPPLIER },
      { bytes: await activate(world, world.meters[1]!, NOW(), IMAGE), sender: SUPPLIER },
    ]);
    expectRejectedAt(bad as Decision, 'ERR_INVALID_ARGUMENT');
    expect(macOk(good as Decision, 1)).toBe(true);
    await v.close();
  });

  it.each([
    ['the largest limit', { limit: 0x7fffffff, windowMs: 60_000 }, 'accepted'],
    ['a 1 ms window', { limit: 5, windowMs: 1 }, 'accepted'],
    ['a 31-day window', { limit: 5, windowMs: DAY31 }, 'accepted'],
    ['limit 0: every command held', { limit: 0, windowMs: 60_000 }, 'quarantined'],
  ])('%s is a threshold', async (_name, threshold, outcome) => {
    const v = await openValidator(world, await memoryStores(world), { anomalyThreshold: () => threshold });
    expect((await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER })).outcome).toBe(outcome);
    await v.close();
  });

  it('windows start on a multiple of their length, whatever the clock (ACB and DCO modes)', async () => {
    const now = new Date(world.now.getTime() + 12_345);
    const v = await openValidator(world, await memoryStores(world), { now: () => now, anomalyThreshold: () => ({ limit: 1, windowMs: 60_000 }) });
    const ds = [];
    for (const i of [0, 1]) ds.push(await v.validate(await disconnect(world, world.meters[i]!, NOW()), { sender: SUPPLIER }));
    expect(outcomes(ds)).toEqual(['accepted', 'quarantined']);
    await v.close();
    const d = await openValidator(world, await memoryStores(world), { now: () => now, acb: undefined as never, dco: { signer: dcoKey.signer, certificate: dcoCert }, anomalyThreshold: () => ({ limit: 1, windowMs: 60_000 }) });
    const flags = [];
    for (const i of [0, 1]) flags.push(((await d.validate(await disconnect(world, world.meters[i]!, NOW()), { sender: SUPPLIER })) as { dco?: { anomaly: boolean } }).dco?.anomaly);
    expect(flags).toEqual([false, true]);
    await d.close();
  });
});

describe('anti-replay clock window', () => {
  it('false switches it off: a counter a day ahead is accepted; by default it is ERR_COMMAND_COUNTER_AHEAD', async () => {
    const ahead = NOW() + 24n * 3600_000n;
    const off = await openValidator(world, await memoryStores(world), { counterClockWindowMs: false });
    expect((await off.validate(await disconnect(world, world.meters[0]!, ahead), { sender: SUPPLIER })).outcome).toBe('accepted');
    await off.close();
    const on = await openValidator(world, await memoryStores(world));
    expectRejectedAt(await on.validate(await disconnect(world, world.meters[0]!, ahead), { sender: SUPPLIER }), 'ERR_COMMAND_COUNTER_AHEAD');
    await on.close();
  });
});

describe('the ACB key agreement', () => {
  it('chosen per device: called with the device, the message code and the counter, and the MAC verifies', async () => {
    const calls: unknown[] = [];
    const ka = createKeyAgreement(world.acb.privateKey);
    const v = await openValidator(world, await memoryStores(world), {
      acb: { keyId: 'per-device', keyAgreement: (device, use) => (calls.push([device, use]), ka) },
    });
    const d = await v.validate(await disconnect(world, world.meters[1]!, NOW()), { sender: SUPPLIER });
    expect(macOk(d, 1)).toBe(true);
    expect(calls).toEqual([[world.meters[1]!.eui, { messageCode: 0x0050, counter: NOW() }]]);
    await v.close();
  });

  it('chosen per device by a function that answers later (as a key store does): the MAC verifies; a refusal is ERR_COMMAND_COUNTER_SIGN_FAILED', async () => {
    const ka = createKeyAgreement(world.acb.privateKey);
    const v = await openValidator(world, await memoryStores(world), {
      acb: { keyId: 'later', keyAgreement: async (device) => (device === world.meters[0]!.eui ? Promise.reject(new SmkiError('ERR_DEVICE_UNKNOWN', 'no such meter', {})) : ka) },
    });
    expect(macOk(await v.validate(await disconnect(world, world.meters[1]!, NOW()), { sender: SUPPLIER }), 1)).toBe(true);
    expectRejectedAt(await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER }), 'ERR_COMMAND_COUNTER_SIGN_FAILED');
    await v.close();
  });

  it("failing for the store's sake is a store failure (ERR_STORE_UNAVAILABLE, commit); failing otherwise is ERR_COMMAND_COUNTER_SIGN_FAILED naming why", async () => {
    const failing = (e: Error): KeyAgreement => ({ publicKey: new Uint8Array(65), deriveSharedSecret: () => Promise.reject(e) });
    const a = await openValidator(world, await memoryStores(world), { acb: { keyId: 'k', keyAgreement: failing(new SmkiError('ERR_STORE_UNAVAILABLE', 'metadata store gone', {})) } });
    expectRejectedAt(await a.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER }), 'ERR_STORE_UNAVAILABLE');
    await a.close();
    const closed = await openValidator(world, await memoryStores(world), { acb: { keyId: 'k', keyAgreement: failing(new SmkiError('ERR_STORE_CLOSED', 'the key store is closed', {})) } });
    expectRejectedAt(await closed.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER }), 'ERR_STORE_CLOSED');
    await closed.close();
    const b = await openValidator(world, await memoryStores(world), { acb: { keyId: 'k', keyAgreement: failing(new SmkiError('ERR_KEY_STATE_TRANSITION', 'the meter now trusts another key', {})) } });
    const d = await b.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER });
    expectRejectedAt(d, 'ERR_COMMAND_COUNTER_SIGN_FAILED');
    expect((d as { message: string }).message).toContain('ERR_KEY_STATE_TRANSITION the meter now trusts another key');
    await b.close();
  });

  it('with one shared secret cached at most, two devices in turn each derive again', async () => {
    let derivations = 0;
    const ka = createKeyAgreement(world.acb.privateKey);
    const counting: KeyAgreement = { publicKey: ka.publicKey, deriveSharedSecret: (p) => (derivations++, ka.deriveSharedSecret(p)) };
    const v = await openValidator(world, await memoryStores(world), { acb: { keyId: 'k', keyAgreement: counting }, sharedSecretCache: { maxEntries: 1 } });
    for (const [i, c] of [[0, 0n], [1, 0n], [0, 1n], [0, 2n]] as const) expect(macOk(await v.validate(await disconnect(world, world.meters[i]!, NOW() + c), { sender: SUPPLIER }), i)).toBe(true);
    expect(derivations).toBe(3);
    await v.close();
  });
});

describe("the device's key-agreement certificate", () => {
  it("an organisation certificate naming the device's EUI-64 is not the device's: ERR_COMMAND_DEVICE_KEY_UNUSABLE", async () => {
    const m = world.meters[0]!;
    const k = keyPair();
    const org = await issueOrganisationCertificate({ issuer: world.hierarchy.organisationCa, role: 2, entityId: m.eui, keyUsage: 'keyAgreement', publicKey: k.publicKey, now: () => new Date(world.now.getTime() - 3600_000) });
    const stores = await memoryStores(world);
    await stores.registry.put([{ ...m.record, keyAgreementCertificate: org.der }]);
    const v = await openValidator(world, stores);
    const d = await v.validate(await disconnect(world, m, NOW()), { sender: SUPPLIER });
    expectRejectedAt(d, 'ERR_COMMAND_DEVICE_KEY_UNUSABLE');
    await v.close();
  });

  it('replaced in the registry (no shared-secret cache): the next MAC is made with the new key', async () => {
    const m = world.meters[2]!;
    const stores = await memoryStores(world);
    const v = await openValidator(world, stores);
    expect(macOk(await v.validate(await disconnect(world, m, NOW()), { sender: SUPPLIER }), 2)).toBe(true);
    const k = keyPair();
    const cert = await issueDeviceCertificate({ issuer: world.hierarchy.deviceCa, entityId: m.eui, keyUsage: 'keyAgreement', publicKey: k.publicKey, now: () => new Date(world.now.getTime() - 3600_000) });
    await stores.registry.put([{ ...m.record, keyAgreementCertificate: cert.der }]);
    const d = await v.validate(await disconnect(world, m, NOW() + 1n), { sender: SUPPLIER });
    expect(macOk(d, 2, k.privateKey)).toBe(true);
    expect(macOk(d, 2)).toBe(false);
    await v.close();
  });
});

describe('the signer', () => {
  it("a certificate of the originator's entity for another role, named by the cell: ERR_COMMAND_SIGNER_WRONG_CERTIFICATE", async () => {
    const m = world.meters[0]!;
    const k = keyPair();
    const asNetworkOperator = await issueOrganisationCertificate({ issuer: world.hierarchy.organisationCa, role: 3, entityId: SUPPLIER, keyUsage: 'digitalSignature', publicKey: k.publicKey, now: () => new Date(world.now.getTime() - 3600_000) });
    const stores = await memoryStores(world);
    await stores.registry.put([{ ...m.record, cells: m.record.cells.map((c) => (c.role === 2 ? { ...c, ski: asNetworkOperator.subjectKeyId! } : c)) }]);
    const v = await openValidator(world, stores, { trust: { certificates: [...world.certificates, asNetworkOperator], crls: world.crls } });
    expectRejectedAt(await v.validate(await disconnect(world, m, NOW(), k.signer), { sender: SUPPLIER }), 'ERR_COMMAND_SIGNER_WRONG_CERTIFICATE');
    await v.close();
  });

  it("the portfolio look-up tries at most 16 of the entity's other keys", async () => {
    // Meter 0 trusts portfolio 0; the entity has 19 other signing keys.
    const v = await openValidator(world, await memoryStores(world));
    const m = world.meters[0]!;
    const ds: Decision[] = [];
    for (let p = 1; p < 20; p++) ds.push(await v.validate(await disconnect(world, m, NOW() + BigInt(p), world.portfolios[p]!.signer), { sender: SUPPLIER }));
    const codes = outcomes(ds);
    expect(codes.filter((c) => c === 'ERR_COMMAND_PORTFOLIO_MISMATCH')).toHaveLength(16);
    expect(codes.filter((c) => c === 'ERR_COMMAND_SIGNATURE_INVALID')).toHaveLength(3);
    await v.close();
  });
});

describe('the responsible party', () => {
  it("a network operator's command its role may send, to a meter it is the network operator of: accepted, as role 3", async () => {
    const catalogue = createCatalogue([
      { code: 0x0401, useCase: 'XR02', name: 'a network read (test entry)', duisService: '4.x', deviceType: 'any', eligibleRoles: ['ED', 'GT', 'IS', 'GS'], critical: false, acbOriginated: false },
    ]);
    const v = await openValidator(world, await memoryStores(world), { catalogue });
    const m = world.meters[0]!;
    const read = (originator: typeof SUPPLIER, counter: bigint) =>
      buildGeneralSigning({ cra: 'command', originatorCounter: counter, originator, recipient: m.eui, messageCode: 0x0401, payload: Uint8Array.of(0x01, 0x09, 0x00), signatureField: 'empty' });
    const d = await v.validate(read(NETWORK_OPERATOR, NOW()), { sender: NETWORK_OPERATOR });
    expect(d).toMatchObject({ outcome: 'accepted', role: 3, critical: false, originator: NETWORK_OPERATOR });
    expect(macOk(d, 0)).toBe(true);
    await v.close();
  });
});

describe('validateBatch', () => {
  it('refuses what is not an array of at most 10,000 commands (ERR_INVALID_ARGUMENT, commands), and answers a null entry', async () => {
    const v = await openValidator(world, await memoryStores(world), { dir: tempDir() });
    await expect(v.validateBatch('commands' as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', context: { detail: 'commands' } });
    await expect(v.validateBatch(Array.from({ length: 10_001 }, () => null) as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', context: { detail: 'commands' } });
    const [d] = await v.validateBatch([null as never]);
    expectRejectedAt(d as Decision, 'ERR_COMMAND_SENDER_MISMATCH');
    await v.close();
  });
});

describe('inputs and failures around the decision', () => {
  it(`a batch of exactly MAX_BATCH commands is decided; one more is refused before anything is decided`, async () => {
    const v = await openValidator(world, await memoryStores(world));
    const junk = { bytes: Uint8Array.of(0xdf), sender: SUPPLIER };
    await expect(v.validateBatch(Array.from({ length: MAX_BATCH + 1 }, () => junk))).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', context: { detail: 'commands' } });
    expect(v.logHead().count).toBe(0);
    const ds = await v.validateBatch(Array.from({ length: MAX_BATCH }, () => junk));
    expect(ds.length).toBe(MAX_BATCH);
    expect(ds.filter((d) => d.outcome === 'rejected' && d.code === 'ERR_GBCS_MALFORMED').length).toBe(MAX_BATCH);
    expect(v.logHead().count).toBe(MAX_BATCH);
    await v.close();
  }, 60_000);

  it('without a clock in the options, the validator decides on the system clock', async () => {
    const live = await buildWorld({ meters: 1, now: new Date() });
    const v = await openValidator(live, await memoryStores(live), { now: undefined } as never); // no clock given
    expect((await v.validate(await disconnect(live, live.meters[0]!, BigInt(Date.now())), { sender: SUPPLIER })).outcome).toBe('accepted');
    await v.close();
  });

  it('a command that is not bytes, or 64 KiB of nothing: ERR_GBCS_MALFORMED; one byte more: ERR_COMMAND_TOO_LARGE', async () => {
    const v = await openValidator(world, await memoryStores(world));
    const [notBytes, max, over] = await v.validateBatch([
      { bytes: 'a command' as never, sender: SUPPLIER },
      { bytes: new Uint8Array(64 * 1024), sender: SUPPLIER },
      { bytes: new Uint8Array(64 * 1024 + 1), sender: SUPPLIER },
    ]);
    expectRejectedAt(notBytes as Decision, 'ERR_GBCS_MALFORMED');
    expect((notBytes as { message: string }).message).toMatch(/not a Uint8Array/);
    expectRejectedAt(max as Decision, 'ERR_GBCS_MALFORMED');
    expectRejectedAt(over as Decision, 'ERR_COMMAND_TOO_LARGE');
    await v.close();
  });

  it('a registry that fails: ERR_STORE_UNAVAILABLE at the commit step; one that throws anything else fails closed too', async () => {
    const stores = await memoryStores(world);
    let failure: Error = new SmkiError('ERR_STORE_UNAVAILABLE', 'registry gone', {});
    const registry = new Proxy(stores.registry, {
      get: (t, k) => (k === 'device' ? () => Promise.reject(failure) : (Reflect.get(t, k) as (...a: unknown[]) => unknown).bind(t)),
    });
    const v = await openValidator(world, { ...stores, registry });
    expectRejectedAt(await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER }), 'ERR_STORE_UNAVAILABLE');
    failure = new SmkiError('ERR_STORE_CLOSED', 'closed', {});
    expectRejectedAt(await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER }), 'ERR_STORE_CLOSED');
    failure = new SmkiError('ERR_STORE_CORRUPT', 'bad row', {});
    expectRejectedAt(await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER }), 'ERR_STORE_CORRUPT');
    failure = new TypeError('a bug in a registry');
    const d = await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER });
    expect(d).toMatchObject({ outcome: 'rejected', code: 'ERR_INVALID_ARGUMENT', step: 'commit', message: 'a bug in a registry' });
    failure = new SmkiError('ERR_KEY_INVALID', 'odd', {});
    expect(await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER })).toMatchObject({ outcome: 'rejected', code: 'ERR_KEY_INVALID', step: 'commit' });
    expect(await stores.store.lastCounter(SUPPLIER, world.meters[0]!.eui)).toBeUndefined();
    await v.close();
  });

  it('a commit that fails: every command of its group answered with the store failure (a rejection keeps its own code), and the next commit goes on', async () => {
    const inner = new MemoryStateStore();
    let failNext = true;
    const store = new Proxy(inner, {
      get: (t, k) => {
        if (k === 'commit' && failNext) {
          return () => {
            failNext = false;
            return Promise.reject(new SmkiError('ERR_STORE_UNAVAILABLE', 'connection reset before the commit', {}));
          };
        }
        return (Reflect.get(t, k) as (...a: unknown[]) => unknown).bind(t);
      },
    }) as StateStore;
    const stores = { ...(await memoryStores(world)), store };
    const v = await openValidator(world, stores, { dir: tempDir() });
    failNext = true;
    const [ok, bad] = await v.validateBatch([
      { bytes: await disconnect(world, world.meters[0]!, NOW()), sender: SUPPLIER },
      { bytes: await disconnect(world, world.meters[1]!, NOW(), world.otherSupplier.signer), sender: SUPPLIER },
    ]);
    expectRejectedAt(ok as Decision, 'ERR_STORE_UNAVAILABLE');
    expectRejectedAt(bad as Decision, 'ERR_COMMAND_SIGNATURE_INVALID');
    expect(macOk(await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER }), 0)).toBe(true);
    await v.close();
  });

  it('a key agreement that throws a plain Error: ERR_COMMAND_COUNTER_SIGN_FAILED with its message alone', async () => {
    const v = await openValidator(world, await memoryStores(world), { acb: { keyId: 'k', keyAgreement: { publicKey: new Uint8Array(65), deriveSharedSecret: () => Promise.reject(new Error('HSM gone')) } } });
    const d = await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER });
    expect(d).toMatchObject({ outcome: 'rejected', code: 'ERR_COMMAND_COUNTER_SIGN_FAILED', step: 'counter-sign', message: 'the ACB key agreement failed: HSM gone' });
    await v.close();
  });

  it('a device with no key-agreement certificate is told apart from one whose certificate does not parse', async () => {
    const stores = await memoryStores(world);
    const m = world.meters[0]!;
    const { keyAgreementCertificate: _ka, ...noKa } = m.record;
    await stores.registry.put([noKa]);
    const v = await openValidator(world, stores);
    const d = await v.validate(await disconnect(world, m, NOW()), { sender: SUPPLIER });
    expectRejectedAt(d, 'ERR_COMMAND_DEVICE_KEY_UNUSABLE');
    expect((d as { message: string }).message).toMatch(/has no key-agreement certificate/);
    await stores.registry.put([{ ...m.record, keyAgreementCertificate: Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x00) }]);
    const e = await v.validate(await disconnect(world, m, NOW() + 1n), { sender: SUPPLIER });
    expectRejectedAt(e, 'ERR_COMMAND_DEVICE_KEY_UNUSABLE');
    expect((e as { message: string }).message).toMatch(/key-agreement certificate does not parse: /);
    await v.close();
  });

  it("the device's signing cell is the management digital-signature one, whatever else is listed first", async () => {
    const stores = await memoryStores(world);
    const m = world.meters[0]!;
    const ds = m.record.cells.find((c) => c.role === 2 && c.keyUsage === 'digitalSignature')!;
    await stores.registry.put([
      {
        ...m.record,
        cells: [
          { role: 2, keyUsage: 'keyAgreement', cellUsage: 'management', ski: world.supplierKa.certificate.subjectKeyId! },
          { role: 2, keyUsage: 'digitalSignature', cellUsage: 'prepayment', ski: world.portfolios[7]!.certificate.subjectKeyId! },
          ...m.record.cells,
        ],
      },
    ]);
    expect(ds.cellUsage).toBe('management');
    const v = await openValidator(world, stores);
    expect(macOk(await v.validate(await disconnect(world, m, NOW()), { sender: SUPPLIER }), 0)).toBe(true);
    await v.close();
  });

  it('a gas meter: the gas disconnect is eligible for it; a device of no fuel is eligible for neither', async () => {
    const stores = await memoryStores(world);
    const m = world.meters[3]!;
    await stores.registry.put([{ ...m.record, type: 'GSME', fuel: 'gas' }]);
    const v = await openValidator(world, stores);
    const gas = await signPreCommand(buildDisableSupply({ fuel: 'gas', originator: SUPPLIER, recipient: m.eui, counter: NOW() }), world.portfolios[m.portfolio]!.signer);
    expect(macOk(await v.validate(gas, { sender: SUPPLIER }), 3)).toBe(true);
    await stores.registry.put([{ ...m.record, type: 'CHF', fuel: 'none' }]);
    expectRejectedAt(await v.validate(await disconnect(world, m, NOW() + 1n), { sender: SUPPLIER }), 'ERR_COMMAND_ROLE_NOT_ELIGIBLE');
    await v.close();
  });
});

describe('release, discard, purge and trust updates', () => {
  it('releasing an id nobody holds: ERR_QUARANTINE_NOT_HELD, logged with the id and the operator', async () => {
    const v = await openValidator(world, await memoryStores(world), { dir: tempDir() });
    const id = '00000000-0000-4000-8000-000000000000';
    const d = await v.release(id, 'dave');
    expectRejectedAt(d, 'ERR_QUARANTINE_NOT_HELD');
    expect((d as { message: string }).message).toContain(id);
    await v.close();
  });

  it('an operator is 1 to 128 characters without control characters (release and discard)', async () => {
    const v = await openValidator(world, await memoryStores(world));
    const id = '00000000-0000-4000-8000-000000000000';
    for (const bad of ['', 'x'.repeat(129), 'a\nb', 'a\u2028b', 7]) {
      await expect(v.release(id, bad as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', context: { detail: 'operator' } });
      await expect(v.discard(id, bad as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', context: { detail: 'operator' } });
    }
    expectRejectedAt(await v.release(id, 'x'.repeat(128)), 'ERR_QUARANTINE_NOT_HELD');
    await v.close();
  });

  it('DCO mode refuses release by name (ERR_INVALID_ARGUMENT, release)', async () => {
    const v = await openValidator(world, await memoryStores(world), { acb: undefined as never, dco: { signer: dcoKey.signer, certificate: dcoCert } });
    await expect(v.release('00000000-0000-4000-8000-000000000000', 'dave')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', context: { detail: 'release' } });
    await v.close();
  });

  it('DCO mode: an anomaly envelope names its rule; a signer that fails leaves a rejection with the command\'s facts and why', async () => {
    const adapter = new MemoryStateStore();
    const v = await openValidator(world, await memoryStores(world), { acb: undefined as never, dco: { signer: dcoKey.signer, certificate: dcoCert }, anomalyThreshold: () => ({ limit: 0, windowMs: 60_000 }) });
    const a = (await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER })) as Extract<Decision, { outcome: 'accepted' }>;
    const opened = await verifyDcoEnvelope(a.frame, { trust: [dcoCert], store: adapter, now: () => world.now });
    expect(opened.decision).toMatchObject({ outcome: 'anomaly', rule: 'anomaly threshold of 0050' });
    await v.close();
    const failing = await openValidator(world, await memoryStores(world), { acb: undefined as never, dco: { signer: { publicKey: dcoKey.signer.publicKey, sign: () => Promise.reject(new Error('HSM gone')) }, certificate: dcoCert } });
    const m = world.meters[1]!;
    const d = await failing.validate(await disconnect(world, m, NOW()), { sender: SUPPLIER });
    expectRejectedAt(d, 'ERR_COMMAND_COUNTER_SIGN_FAILED');
    expect(d).toMatchObject({ originator: SUPPLIER, device: m.eui, messageCode: 0x0050, counter: NOW(), message: 'the DCO envelope could not be signed: HSM gone' });
    await failing.close();
  });

  it('purgeSharedSecrets without a cache purges nothing; updateTrust with a lapsed CRL warns at once', async () => {
    const events: string[] = [];
    const v = await openValidator(world, await memoryStores(world), { onEvent: (e) => events.push(e.type) });
    expect(v.purgeSharedSecrets()).toBe(0);
    expect((await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER })).outcome).toBe('accepted');
    expect(events).toEqual([]);
    const lapsed = await world.crlsWith({ thisUpdate: new Date(world.now.getTime() - 3 * 24 * 3600_000), nextUpdate: new Date(world.now.getTime() - 3600_000), crlNumber: 2n });
    v.updateTrust({ certificates: world.certificates, crls: lapsed });
    expect(events).toContain('crl-expired');
    await v.close();
  });
});

describe('trust: path verdicts, their cache, CRL freshness', () => {
  const H = 3600_000;
  it('a signer not yet valid is refused (ERR_COMMAND_SIGNER_EXPIRED), and accepted once it is: a negative verdict is kept a minute at most', async () => {
    const m = world.meters[0]!;
    const k = keyPair();
    const later = await issueOrganisationCertificate({ issuer: world.hierarchy.organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', publicKey: k.publicKey, now: () => new Date(world.now.getTime() + 10 * 60_000) });
    const stores = await memoryStores(world);
    await stores.registry.put([{ ...m.record, cells: m.record.cells.map((c) => (c.role === 2 ? { ...c, ski: later.subjectKeyId! } : c)) }]);
    let now = world.now;
    const v = await openValidator(world, stores, { now: () => now, trust: { certificates: [...world.certificates, later], crls: world.crls } });
    const early = await v.validate(await disconnect(world, m, NOW(), k.signer), { sender: SUPPLIER });
    expectRejectedAt(early, 'ERR_COMMAND_SIGNER_EXPIRED');
    expect((early as { message: string }).message).toMatch(/^ERR_CHAIN_NOT_YET_VALID: /);
    now = new Date(world.now.getTime() + 11 * 60_000);
    expect((await v.validate(await disconnect(world, m, NOW() + 2n, k.signer), { sender: SUPPLIER })).outcome).toBe('accepted');
    await v.close();
  });

  it('a cached verdict ends with the first CRL to lapse: ERR_COMMAND_REVOCATION_UNKNOWN after it, even while the other is fresh', async () => {
    const short = await world.crlsWith({ nextUpdate: new Date(world.now.getTime() + H), crlNumber: 3n });
    let now = world.now;
    const v = await openValidator(world, await memoryStores(world), { now: () => now, trust: { certificates: world.certificates, crls: [short[0]!, world.crls[1]!] } });
    expect((await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER })).outcome).toBe('accepted');
    now = new Date(world.now.getTime() + H + 60_000);
    const d = await v.validate(await disconnect(world, world.meters[0]!, NOW() + BigInt(H)), { sender: SUPPLIER });
    expectRejectedAt(d, 'ERR_COMMAND_REVOCATION_UNKNOWN');
    await v.close();
  });

  it('crlGraceSeconds lets a CRL serve past its nextUpdate for that long, and no longer', async () => {
    const lapsed = await world.crlsWith({ thisUpdate: new Date(world.now.getTime() - 3 * H), nextUpdate: new Date(world.now.getTime() - H), crlNumber: 4n });
    const graced = await openValidator(world, await memoryStores(world), { trust: { certificates: world.certificates, crls: lapsed, crlGraceSeconds: 2 * 3600 } });
    expect((await graced.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER })).outcome).toBe('accepted');
    await graced.close();
    const strict = await openValidator(world, await memoryStores(world), { trust: { certificates: world.certificates, crls: lapsed, crlGraceSeconds: 1800 } });
    expectRejectedAt(await strict.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER }), 'ERR_COMMAND_REVOCATION_UNKNOWN');
    await strict.close();
  });

  it('a revoked signer is refused naming the path finding; crlStatus reports each list with its number, dates and state at the edges', async () => {
    const revoked = await world.crlsWith({ revoked: [world.portfolios[0]!.certificate], crlNumber: 5n });
    const nextUpdate = revoked[0]!.nextUpdate!.getTime();
    let now = world.now;
    const v = await openValidator(world, await memoryStores(world), { now: () => now, crlWarningMs: H, trust: { certificates: world.certificates, crls: revoked } });
    const d = await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER });
    expectRejectedAt(d, 'ERR_COMMAND_SIGNER_REVOKED');
    expect((d as { message: string }).message).toMatch(/^ERR_REVOKED: /);
    expect(v.crlStatus()).toEqual(revoked.map((c) => ({ issuer: c.issuer.text, crlNumber: 5n, thisUpdate: c.thisUpdate, nextUpdate: c.nextUpdate, state: 'fresh' })));
    now = new Date(nextUpdate - H - 1);
    expect(v.crlStatus().map((s) => s.state)).toEqual(['fresh', 'fresh']);
    now = new Date(nextUpdate - H);
    expect(v.crlStatus().map((s) => s.state)).toEqual(['expiring', 'expiring']);
    now = new Date(nextUpdate);
    expect(v.crlStatus().map((s) => s.state)).toEqual(['expiring', 'expiring']);
    // The whole second of nextUpdate still counts, as in path validation (CRL times are whole seconds).
    now = new Date(nextUpdate + 999);
    expect(v.crlStatus().map((s) => s.state)).toEqual(['expiring', 'expiring']);
    now = new Date(nextUpdate + 1000);
    expect(v.crlStatus().map((s) => s.state)).toEqual(['expired', 'expired']);
    await v.close();
  });

  it('trust is an object with a list of CRLs; its certificates may be a TrustStore', async () => {
    const stores = await memoryStores(world);
    for (const trust of [null, 'trust', 5]) {
      await expect(openValidator(world, stores, { trust: trust as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', context: { detail: 'trust' } });
    }
    await expect(openValidator(world, stores, { trust: { certificates: world.certificates, crls: 'none' as never } })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', context: { detail: 'trust.crls' } });
    const v = await openValidator(world, stores, { trust: { certificates: new TrustStore(world.certificates), crls: world.crls } });
    expect((await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER })).outcome).toBe('accepted');
    const none = await openValidator(world, await memoryStores(world), { trust: { crls: world.crls } as never });
    expectRejectedAt(await none.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER }), 'ERR_COMMAND_ORIGINATOR_UNKNOWN');
    await Promise.all([v.close(), none.close()]);
  });
  it('a CRL in its grace time is expiring, not expired, in crlStatus; past it, expired (grace from trust, or else from the environment)', async () => {
    const crls = await world.crlsWith({ nextUpdate: new Date(world.now.getTime() + H), crlNumber: 6n });
    const nextUpdate = crls[0]!.nextUpdate!.getTime();
    let now = world.now;
    const byTrust = await openValidator(world, await memoryStores(world), { now: () => now, crlWarningMs: H, trust: { certificates: world.certificates, crls, crlGraceSeconds: 2 * 3600 } });
    const byEnvironment = await openValidator(world, await memoryStores(world), {
      now: () => now,
      crlWarningMs: H,
      trust: { certificates: world.certificates, crls, environment: defineEnvironment({ name: 'graced', crlGraceSeconds: 2 * 3600 }) },
    });
    const plain = await openValidator(world, await memoryStores(world), { now: () => now, crlWarningMs: H, trust: { certificates: world.certificates, crls } });
    now = new Date(nextUpdate + H);
    for (const v of [byTrust, byEnvironment]) {
      expect(v.crlStatus().map((x) => x.state)).toEqual(['expiring', 'expiring']);
      expect((await v.validate(await disconnect(world, world.meters[0]!, BigInt(now.getTime())), { sender: SUPPLIER })).outcome).toBe('accepted');
    }
    expect(plain.crlStatus().map((x) => x.state)).toEqual(['expired', 'expired']);
    expectRejectedAt(await plain.validate(await disconnect(world, world.meters[0]!, BigInt(now.getTime())), { sender: SUPPLIER }), 'ERR_COMMAND_REVOCATION_UNKNOWN');
    now = new Date(nextUpdate + 2 * H);
    for (const v of [byTrust, byEnvironment]) expect(v.crlStatus().map((x) => x.state)).toEqual(['expiring', 'expiring']);
    now = new Date(nextUpdate + 2 * H + 999);
    for (const v of [byTrust, byEnvironment]) expect(v.crlStatus().map((x) => x.state)).toEqual(['expiring', 'expiring']);
    now = new Date(nextUpdate + 2 * H + 1000);
    for (const v of [byTrust, byEnvironment]) {
      expect(v.crlStatus().map((x) => x.state)).toEqual(['expired', 'expired']);
      expectRejectedAt(await v.validate(await disconnect(world, world.meters[0]!, BigInt(now.getTime())), { sender: SUPPLIER }), 'ERR_COMMAND_REVOCATION_UNKNOWN');
    }
    await Promise.all([byTrust.close(), byEnvironment.close(), plain.close()]);
  });

  it('no CRL for the signer\'s issuer at all: revocation cannot be checked, so ERR_COMMAND_REVOCATION_UNKNOWN (never a pass)', async () => {
    for (const crls of [[], [world.crls[1]!]]) {
      const v = await openValidator(world, await memoryStores(world), { trust: { certificates: world.certificates, crls } });
      const d = await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER });
      expectRejectedAt(d, 'ERR_COMMAND_REVOCATION_UNKNOWN');
      expect((d as { message: string }).message).toMatch(/^ERR_CRL_MISSING: /);
      await v.close();
    }
  });

  it('a CRL with no nextUpdate and no cRLNumber (RFC 5280 allows both out): expired in crlStatus, with neither field, and the signer it covers is refused', async () => {
    const ca = world.hierarchy.organisationCa;
    const thisUpdate = new Date(world.now.getTime() - H);
    const tbs = seq(
      int(1),
      seq(oid(OID.ecdsaWithSha256)),
      ca.certificate.subject.der,
      time(thisUpdate),
      ctx(0, false, seq(rawExtension(OID.authorityKeyIdentifier, false, seq(ctx(0, true, Buffer.from(ca.certificate.subjectKeyId!, 'hex')))))),
    );
    const bare = parseCrl(seq(tbs, seq(oid(OID.ecdsaWithSha256)), bitString(p1363ToDer(await ca.signer.sign(tbs)))));
    expect(bare.nextUpdate).toBeUndefined();
    expect(bare.crlNumber).toBeUndefined();
    const v = await openValidator(world, await memoryStores(world), { trust: { certificates: world.certificates, crls: [bare, world.crls[1]!] } });
    expect(v.crlStatus()[0]).toStrictEqual({ issuer: bare.issuer.text, thisUpdate: bare.thisUpdate, state: 'expired' });
    expectRejectedAt(await v.validate(await disconnect(world, world.meters[0]!, NOW()), { sender: SUPPLIER }), 'ERR_COMMAND_REVOCATION_UNKNOWN');
    await v.close();
  });
});

