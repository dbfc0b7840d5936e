// Devices for the CLI's subprocess tests: key-agreement certificates issued with the library from
// a lab's own device CA (its key read as smki keeps it: encrypted PKCS#8 under the passphrase), and
// the CSV `smki device import` reads. The meters' KA private keys are kept here, so a test can
// check a frame's MAC as the meter would.
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createKeySigner } from '@smki/core';
import { certificateToPem, issueDeviceCertificate, parseCertificate, type CertificateAuthority, type SmkiCertificate } from '@smki/pki';
import { PASSPHRASE } from './_smki.js';

/** A lab's device CA, its key opened with the test passphrase. */
export function deviceCa(lab: string): CertificateAuthority {
  return {
    certificate: parseCertificate(readFileSync(join(lab, 'ca', 'device-ca.pem'), 'utf8')),
    signer: createKeySigner(createPrivateKey({ key: readFileSync(join(lab, 'ca', 'device-ca.key.pem'), 'utf8'), format: 'pem', passphrase: PASSPHRASE })),
  };
}

/** A meter made outside smki: its KA key pair and the certificate the lab's device CA issued. */
export interface Meter {
  readonly eui: string;
  readonly portfolio: string;
  readonly model?: string;
  readonly fuel: 'electricity' | 'gas';
  readonly privateKey: KeyObject;
  readonly certificate: SmkiCertificate;
}

/** `count` consecutive EUI-64s from `first` (16 hex digits). */
export function euis(first: string, count: number): string[] {
  const base = BigInt(`0x${first}`);
  return Array.from({ length: count }, (_, i) => (base + BigInt(i)).toString(16).toUpperCase().padStart(16, '0'));
}

/** Issue KA certificates for meters (each with a fresh P-256 key) from the lab's device CA. */
export async function makeMeters(lab: string, specs: readonly { eui: string; portfolio: string; model?: string; fuel?: 'electricity' | 'gas' }[]): Promise<Meter[]> {
  const issuer = deviceCa(lab);
  const out: Meter[] = [];
  for (const s of specs) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const certificate = await issueDeviceCertificate({ issuer, entityId: s.eui, keyUsage: 'keyAgreement', publicKey });
    out.push({ eui: s.eui, portfolio: s.portfolio, fuel: s.fuel ?? 'electricity', ...(s.model !== undefined ? { model: s.model } : {}), privateKey, certificate });
  }
  return out;
}

/** The CSV of `smki device import` (certificates as base64 DER, one line each). */
export function importCsv(meters: readonly Meter[], type = 'ESME'): string {
  const rows = meters.map((m) => [m.eui, type, m.fuel, m.model ?? '', m.portfolio, Buffer.from(m.certificate.der).toString('base64')].join(','));
  return `device,type,fuel,model,portfolio,ka_certificate\n${rows.join('\n')}\n`;
}

/** The KA private key of a meter smki simulated (meters/<EUI>.ka.key.pem, encrypted under the passphrase). */
export function simulatedMeterKey(lab: string, eui: string): KeyObject {
  return createPrivateKey({ key: readFileSync(join(lab, 'meters', `${eui}.ka.key.pem`), 'utf8'), format: 'pem', passphrase: PASSPHRASE });
}

/** The ACB's key-agreement certificate of a lab (the public key a meter checks MACs with). */
export function acbCertificate(lab: string): SmkiCertificate {
  return parseCertificate(readFileSync(join(lab, 'dcc', 'acb-ka.pem'), 'utf8'));
}

export { certificateToPem };
