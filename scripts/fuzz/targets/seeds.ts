/**
 * Seeds for the fuzz targets: the committed vectors under test-vectors/, and encodings made by
 * the project's own issuers and builders from fixed keys, dates and randomness, so that the same
 * seeds come out on every run (a failing input reproduces from its plan and the fast-check seed).
 * @module
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Seed } from '../mutate.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** A committed vector file, parsed. */
export function vectorFile<T = Record<string, unknown>>(kind: 'pki' | 'gbcs', name: string): T {
  return JSON.parse(readFileSync(`${ROOT}test-vectors/${kind}/${name}.json`, 'utf8')) as T;
}

/** The DER of every PEM block labelled `label` in `text` (a plain decoder, independent of the one under test). */
export function pemBodies(text: string, label: string): Uint8Array[] {
  const re = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]*)-----END ${label}-----`, 'g');
  return [...text.matchAll(re)].map((m) => Uint8Array.from(Buffer.from((m[1] as string).replace(/\s/g, ''), 'base64')));
}

/** Bytes of a text (latin1, as the text targets read them back). */
export function textBytes(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s, 'latin1'));
}

interface CertificateCase {
  readonly id: string;
  readonly input: { readonly certificate: string };
}

interface Hierarchy {
  readonly root: { readonly certificate: string; readonly keyLabel: string };
  readonly organisationCa: { readonly certificate: string; readonly keyLabel: string };
  readonly deviceCa: { readonly certificate: string; readonly keyLabel: string };
  readonly organisations: readonly { readonly name: string; readonly certificate: string }[];
  readonly devices: readonly { readonly name: string; readonly certificate: string }[];
}

/** The test hierarchy of test-vectors/pki/hierarchy.json. */
export function hierarchy(): Hierarchy {
  return vectorFile<Hierarchy>('pki', 'hierarchy');
}

let certs: Seed[] | undefined;

/**
 * Every certificate of test-vectors/pki/certificates.json (74 of them: each SMKI kind, and one
 * for each profile rule broken; all parse, since parsing checks structure only), as DER.
 */
export async function certificateSeeds(): Promise<readonly Seed[]> {
  if (!certs) {
    const file = vectorFile<{ cases: CertificateCase[] }>('pki', 'certificates');
    certs = file.cases.map((c) => ({ name: c.id, bytes: pemBodies(c.input.certificate, 'CERTIFICATE')[0] as Uint8Array }));
  }
  return certs;
}

/** The same certificates as PEM text. */
export async function certificatePemSeeds(): Promise<readonly Seed[]> {
  const file = vectorFile<{ cases: CertificateCase[] }>('pki', 'certificates');
  return file.cases.map((c) => ({ name: c.id, bytes: textBytes(c.input.certificate) }));
}

/** PEM text of DER under a label, base64 in 64-character lines (RFC 7468 §2). */
export function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/.{64}/g, '$&\n').replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

/** The text a text target parses: the mutated text itself, or the mutated DER of an {@link Seed.armour} seed in its PEM block. */
export function asText(input: Uint8Array, seed: Seed): string {
  return seed.armour !== undefined ? pem(seed.armour, input) : Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('latin1');
}

/** Text seeds plus the same DER seeds to be mutated as DER and armoured. */
export function textAndArmoured(text: readonly Seed[], der: readonly Seed[], label: string): Seed[] {
  return [...text, ...der.map((s) => ({ name: `${s.name} (DER, armoured)`, bytes: s.bytes, armour: label }))];
}
