// A small smart-metering world for the validator's tests: an SMKI hierarchy, one supplier with
// two portfolios (each its own signing key and certificate), a second supplier, a network
// operator, the ACB's key-agreement key, meters with their own key-agreement certificates and
// trust-anchor cells, and the CRL and ARL that cover the organisation certificates
// (docs/domain.md §2, §5; RFC 5280 §5 for the CRLs).
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeyAgreement, createKeySigner, parseEui64, type Eui64, type Signer } from '@smki/core';
import {
  createHierarchy,
  issueCrl,
  issueDeviceCertificate,
  issueOrganisationCertificate,
  type RevokedCertificateInput,
  type SmkiCertificate,
  type SmkiCrl,
  type SmkiHierarchy,
} from '@smki/pki';
import { MemoryDeviceRegistry, MemoryFirmwareAllowlist, MemoryStateStore, type DeviceRecord, type DeviceRegistry, type FirmwareAllowlist, type StateStore } from '@smki/store';
import { buildActivateFirmware, buildDisableSupply, buildEnableSupply, signPreCommand } from '@smki/gbcs';
import { Validator, type ValidatorOptions } from '../src/index.js';

export const SUPPLIER = parseEui64('90B3D51F30010000');
export const OTHER_SUPPLIER = parseEui64('90B3D51F30020000');
export const NETWORK_OPERATOR = parseEui64('90B3D51F30030000');
export const ACB = parseEui64('90B3D51F30000004');
export const MODEL = 'ACME-ESME-1';
export const T0 = new Date('2026-06-01T12:00:00Z');

export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly signer: Signer;
}

export interface Party extends KeyPair {
  readonly certificate: SmkiCertificate;
}

export interface Meter {
  readonly eui: Eui64;
  readonly fuel: 'electricity' | 'gas';
  readonly ka: KeyPair;
  readonly kaCertificate: SmkiCertificate;
  readonly portfolio: number;
  readonly record: DeviceRecord;
}

export interface World {
  readonly hierarchy: SmkiHierarchy;
  /** The supplier's signing keys, one per portfolio. */
  readonly portfolios: readonly Party[];
  readonly otherSupplier: Party;
  readonly networkOperator: Party;
  /** The supplier's key-agreement certificate (a wrong key usage for a signing cell). */
  readonly supplierKa: Party;
  readonly acb: Party;
  readonly meters: readonly Meter[];
  readonly crls: readonly SmkiCrl[];
  readonly certificates: readonly SmkiCertificate[];
  readonly now: Date;
  /** CRL and ARL again, with these organisation certificates revoked (and the given times). */
  crlsWith(options: { revoked?: readonly SmkiCertificate[]; thisUpdate?: Date; nextUpdate?: Date; crlNumber?: bigint }): Promise<SmkiCrl[]>;
}

export function keyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicKey, signer: createKeySigner(privateKey) };
}

/** Meter n's EUI-64: 00DB1234 then n in 8 hex digits. */
export const meterEui = (n: number): Eui64 => parseEui64(`00DB1234${n.toString(16).toUpperCase().padStart(8, '0')}`);

export async function buildWorld(options: { meters?: number; portfolios?: number; now?: Date } = {}): Promise<World> {
  const now = options.now ?? T0;
  const clock = () => new Date(now.getTime() - 24 * 3600_000);
  const hierarchy = await createHierarchy({ now: clock });
  const org = async (entityId: string, role: number, keyUsage: 'digitalSignature' | 'keyAgreement'): Promise<Party> => {
    const k = keyPair();
    const certificate = await issueOrganisationCertificate({ issuer: hierarchy.organisationCa, role, entityId, keyUsage, publicKey: k.publicKey, now: clock });
    return { ...k, certificate };
  };
  const portfolios: Party[] = [];
  for (let i = 0; i < (options.portfolios ?? 2); i++) portfolios.push(await org(SUPPLIER, 2, 'digitalSignature'));
  const otherSupplier = await org(OTHER_SUPPLIER, 2, 'digitalSignature');
  const networkOperator = await org(NETWORK_OPERATOR, 3, 'digitalSignature');
  const supplierKa = await org(SUPPLIER, 2, 'keyAgreement');
  const acb = await org(ACB, 4, 'keyAgreement');
  const meters: Meter[] = [];
  const n = options.meters ?? 8;
  for (let i = 0; i < n; i++) {
    const eui = meterEui(i);
    const ka = keyPair();
    const kaCertificate = await issueDeviceCertificate({ issuer: hierarchy.deviceCa, entityId: eui, keyUsage: 'keyAgreement', publicKey: ka.publicKey, now: clock });
    const portfolio = i % portfolios.length;
    const record: DeviceRecord = {
      device: eui,
      type: 'ESME',
      fuel: 'electricity',
      model: MODEL,
      supplier: SUPPLIER,
      networkOperator: NETWORK_OPERATOR,
      cells: [
        { role: 2, keyUsage: 'digitalSignature', cellUsage: 'management', ski: portfolios[portfolio]!.certificate.subjectKeyId!, entity: SUPPLIER },
        { role: 3, keyUsage: 'digitalSignature', cellUsage: 'management', ski: networkOperator.certificate.subjectKeyId!, entity: NETWORK_OPERATOR },
      ],
      keyAgreementCertificate: kaCertificate.der,
    };
    meters.push({ eui, fuel: 'electricity', ka, kaCertificate, portfolio, record });
  }
  const crlsWith = async (o: { revoked?: readonly SmkiCertificate[]; thisUpdate?: Date; nextUpdate?: Date; crlNumber?: bigint }): Promise<SmkiCrl[]> => {
    const thisUpdate = o.thisUpdate ?? new Date(now.getTime() - 3600_000);
    const nextUpdate = o.nextUpdate ?? new Date(now.getTime() + 7 * 24 * 3600_000);
    const revoked: RevokedCertificateInput[] = (o.revoked ?? []).map((c) => ({ serialNumber: c.serialNumber, revocationDate: thisUpdate }));
    const crl = await issueCrl({ issuer: hierarchy.organisationCa, crlNumber: o.crlNumber ?? 1n, kind: 'crl', revoked, thisUpdate, nextUpdate });
    const arl = await issueCrl({ issuer: hierarchy.root, crlNumber: o.crlNumber ?? 1n, kind: 'arl', thisUpdate, nextUpdate });
    return [crl, arl];
  };
  const crls = await crlsWith({});
  const certificates = [
    hierarchy.root.certificate,
    hierarchy.organisationCa.certificate,
    hierarchy.deviceCa.certificate,
    ...portfolios.map((p) => p.certificate),
    otherSupplier.certificate,
    networkOperator.certificate,
    supplierKa.certificate,
    acb.certificate,
  ];
  return { hierarchy, portfolios, otherSupplier, networkOperator, supplierKa, acb, meters, crls, certificates, now, crlsWith };
}

export interface Stores {
  readonly store: StateStore;
  readonly registry: DeviceRegistry;
  readonly firmware: FirmwareAllowlist;
}

export async function memoryStores(world: World, images: readonly Uint8Array[] = []): Promise<Stores> {
  const registry = new MemoryDeviceRegistry();
  await registry.put(world.meters.map((m) => m.record));
  const firmware = new MemoryFirmwareAllowlist();
  if (images.length > 0) await firmware.approve(images.map((imageHash) => ({ model: MODEL, imageHash })), world.now.getTime());
  return { store: new MemoryStateStore(), registry, firmware };
}

export const LOG_KEY = new Uint8Array(32).fill(7);

export function tempDir(prefix = 'smki-validator-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function openValidator(world: World, stores: Stores, extra: Partial<ValidatorOptions> & { dir?: string; id?: string } = {}): Promise<Validator> {
  const { dir, id, ...rest } = extra;
  return Validator.open({
    ...stores,
    trust: { certificates: world.certificates, crls: world.crls },
    acb: { keyId: 'acb-ka-1', keyAgreement: createKeyAgreement(world.acb.privateKey) },
    log: { dir: dir ?? tempDir(), id: id ?? 'validator-1', key: LOG_KEY },
    now: () => world.now,
    ...rest,
  });
}

/** A signed ECS43 remote disconnect for a meter, by a portfolio's key (default the meter's own). */
export async function disconnect(world: World, meter: Meter, counter: bigint, signer: Signer = world.portfolios[meter.portfolio]!.signer, originator: Eui64 = SUPPLIER): Promise<Uint8Array> {
  return signPreCommand(buildDisableSupply({ fuel: meter.fuel, originator, recipient: meter.eui, counter }), signer);
}

/** An unsigned ECS42 reconnect pre-command. */
export function reconnectUnsigned(meter: Meter, counter: bigint, originator: Eui64 = SUPPLIER): Uint8Array {
  return buildEnableSupply({ originator, recipient: meter.eui, counter });
}

/** A signed CS06 activate-firmware command. */
export async function activate(world: World, meter: Meter, counter: bigint, imageHash: Uint8Array): Promise<Uint8Array> {
  return signPreCommand(buildActivateFirmware({ originator: SUPPLIER, recipient: meter.eui, counter, imageHash }), world.portfolios[meter.portfolio]!.signer);
}

