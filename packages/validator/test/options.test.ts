// Validator.open's option checks: every option refused names itself (ERR_INVALID_ARGUMENT with
// the option in `detail`), and every edge the documentation allows is accepted (0 where 0 is
// allowed, false where false is, a KeyAgreement given as a function). A validator that opens
// with an option it cannot use would fail later, on a command; these fail at the door.
import { beforeAll, describe, expect, it } from 'vitest';
import { parseEui64 } from '@smki/core';
import { issueDeviceCertificate, issueOrganisationCertificate, parseCertificate, type SmkiCertificate } from '@smki/pki';
import { Validator, type ValidatorOptions } from '../src/index.js';
import { LOG_KEY, buildWorld, keyPair, memoryStores, tempDir, type KeyPair, type World } from './_world.js';
import { createKeyAgreement } from '@smki/core';

const DCO = parseEui64('90B3D51F300D0000');
let world: World;
let base: ValidatorOptions;
let dcoKey: KeyPair;
let dcoCert: SmkiCertificate;
let deviceSigning: SmkiCertificate;

beforeAll(async () => {
  world = await buildWorld({ meters: 1 });
  const stores = await memoryStores(world);
  base = {
    ...stores,
    trust: { certificates: world.certificates, crls: world.crls },
    acb: { keyId: 'acb-ka-1', keyAgreement: createKeyAgreement(world.acb.privateKey) },
    log: { dir: tempDir(), id: 'validator-1', key: LOG_KEY },
    now: () => world.now,
  };
  dcoKey = keyPair();
  dcoCert = await issueOrganisationCertificate({ issuer: world.hierarchy.organisationCa, role: 127, entityId: DCO, keyUsage: 'digitalSignature', publicKey: dcoKey.publicKey, now: () => new Date(world.now.getTime() - 3600_000) });
  deviceSigning = await issueDeviceCertificate({ issuer: world.hierarchy.deviceCa, entityId: world.meters[0]!.eui, keyUsage: 'digitalSignature', publicKey: keyPair().publicKey, now: () => new Date(world.now.getTime() - 3600_000) });
  expect(deviceSigning).toMatchObject({ kind: 'device', keyUsage: ['digitalSignature'] });
});

type Change = (o: ValidatorOptions) => unknown;
const set =
  (patch: Record<string, unknown>): Change =>
  (o) => ({ ...o, ...patch });
const log =
  (patch: Record<string, unknown>): Change =>
  (o) => ({ ...o, log: { ...o.log, dir: tempDir(), ...patch } });
const dco =
  (patch: Record<string, unknown>): Change =>
  (o) => ({ ...o, acb: undefined, dco: { signer: dcoKey.signer, certificate: dcoCert, ...patch } });

const refusals: [string, Change][] = [
  ['options', () => null],
  ['store', set({ store: undefined })],
  ['store', set({ store: null })],
  ['registry', set({ registry: 'db' })],
  ['firmware', set({ firmware: null })],
  ['acb/dco', set({ acb: undefined })],
  ['acb/dco', (o) => ({ ...o, dco: { signer: dcoKey.signer, certificate: dcoCert } })],
  ['acb', set({ acb: null })],
  ['acb', (o) => ({ ...o, acb: { ...o.acb, keyId: '' } })],
  ['acb', (o) => ({ ...o, acb: { ...o.acb, keyId: 7 } })],
  ['acb.keyAgreement', (o) => ({ ...o, acb: { keyId: 'k', keyAgreement: null } })],
  ['acb.keyAgreement', (o) => ({ ...o, acb: { keyId: 'k', keyAgreement: { publicKey: new Uint8Array(65) } } })],
  ['acb.keyAgreement', (o) => ({ ...o, acb: { keyId: 'k', keyAgreement: 'ka' } })],
  ['dco.signer', (o) => ({ ...o, acb: undefined, dco: null })],
  ['dco.signer', dco({ signer: { publicKey: new Uint8Array(65) } })],
  ['dco.signer', dco({ signer: undefined })],
  ['dco.certificate', dco({ certificate: undefined })],
  ['dco.certificate', dco({ certificate: { ...({} as object), kind: 'organisation' } })],
  ['dco.certificate', () => ({ ...base, acb: undefined, dco: { signer: dcoKey.signer, certificate: world.hierarchy.organisationCa.certificate } })],
  ['dco.certificate', () => ({ ...base, acb: undefined, dco: { signer: dcoKey.signer, certificate: parseCertificate(world.meters[0]!.kaCertificate.der) } })],
  // A device's signing certificate: a digitalSignature key with an entity, but not an organisation's.
  ['dco.certificate', () => ({ ...base, acb: undefined, dco: { signer: dcoKey.signer, certificate: deviceSigning } })],
  ['log', set({ log: null })],
  ['log.dir', log({ dir: '' })],
  ['log.dir', log({ dir: 5 })],
  ['log.id', log({ id: 'bad id' })],
  ['log.id', log({ id: '' })],
  ['log.id', log({ id: 'x'.repeat(129) })],
  ['log.id', log({ id: 7 })],
  ['log.key', log({ key: new Uint8Array(31) })],
  ['log.key', log({ key: new Uint8Array(33) })],
  ['log.key', log({ key: 'k'.repeat(32) })],
  ['anomalyThreshold', set({ anomalyThreshold: { limit: 1, windowMs: 1 } })],
  ['onEvent', set({ onEvent: 'log' })],
  ['now', set({ now: new Date() })],
  ['counterClockWindowMs', set({ counterClockWindowMs: -1 })],
  ['counterClockWindowMs', set({ counterClockWindowMs: 1.5 })],
  ['counterClockWindowMs', set({ counterClockWindowMs: true })],
  ['crlWarningMs', set({ crlWarningMs: -1 })],
  ['crlWarningMs', set({ crlWarningMs: 0.5 })],
  ['cacheSize', set({ cacheSize: -1 })],
  ['cacheSize', set({ cacheSize: 2.5 })],
  ['sharedSecretCache', set({ sharedSecretCache: true })],
  ['sharedSecretCache', set({ sharedSecretCache: null })],
  ['sharedSecretCache.maxEntries', set({ sharedSecretCache: { maxEntries: 0 } })],
  ['sharedSecretCache.maxEntries', set({ sharedSecretCache: { maxEntries: 1.5 } })],
  ['sharedSecretCache.ttlMs', set({ sharedSecretCache: { ttlMs: 0 } })],
  ['sharedSecretCache.ttlMs', set({ sharedSecretCache: { ttlMs: '1h' } })],
];

describe('Validator.open options', () => {
  it.each(refusals.map(([detail, change], i) => [i, detail, change] as const))('refusal %i: %s', async (_i, detail, change) => {
    await expect(Validator.open(change(base) as ValidatorOptions)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', context: { detail } });
  });

  const accepted: [string, Change][] = [
    ['a KeyAgreement chosen per device (a function)', (o) => ({ ...o, acb: { keyId: 'k', keyAgreement: () => createKeyAgreement(world.acb.privateKey) } })],
    ['DCO mode', dco({})],
    ['a log id of 128 characters of every allowed kind', log({ id: `aZ09._:@-${'x'.repeat(119)}` })],
    ['counterClockWindowMs false, crlWarningMs 0, cacheSize 0', set({ counterClockWindowMs: false, crlWarningMs: 0, cacheSize: 0 })],
    ['counterClockWindowMs 0', set({ counterClockWindowMs: 0 })],
    ['sharedSecretCache false', set({ sharedSecretCache: false })],
    ['sharedSecretCache with one entry and a 1 ms TTL', set({ sharedSecretCache: { maxEntries: 1, ttlMs: 1 } })],
    ['callbacks given as functions', set({ anomalyThreshold: () => undefined, onEvent: () => undefined })],
  ];
  it.each(accepted)('accepts %s', async (_name, change) => {
    const o = change(base) as ValidatorOptions;
    const v = await Validator.open({ ...o, log: { ...o.log, dir: tempDir() } });
    await v.close();
  });
});
