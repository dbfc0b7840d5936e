/**
 * Secrets for `smki`: from an environment variable or a file, never from a flag (a flag shows in
 * the process list and the shell history). Sealing of the small secrets the state directory keeps
 * (the decision log's key): scrypt (RFC 7914) and AES-256-GCM (NIST SP 800-38D).
 * @module
 * @internal
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { KEYSTORE_PASSPHRASE_ENV } from '@smki/keystore';
import { SmkiError } from '@smki/core';
import type { CliIo } from './io.js';

/** The environment variable of the HSM user PIN. */
export const HSM_PIN_ENV = 'SMKI_HSM_PIN';

/** Most bytes a secret file may hold. */
const MAX_SECRET_FILE_BYTES = 4096;

/** A secret read from a file (at most 4 KiB; one trailing newline dropped). */
export function secretFromFile(io: CliIo, file: string, what: string): string {
  let text: string;
  try {
    const buf = readFileSync(resolve(io.cwd, file));
    if (buf.length > MAX_SECRET_FILE_BYTES) throw new Error('too large');
    text = buf.toString('utf8');
  } catch {
    throw new SmkiError('ERR_CLI_SECRET_MISSING', `the ${what} file cannot be read (or is over ${MAX_SECRET_FILE_BYTES} bytes)`, { detail: file });
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw new SmkiError('ERR_CLI_SECRET_MISSING', `the ${what} file is empty`, { detail: file });
  return value;
}

/** The store passphrase: `--passphrase-file`, else `SMKI_KEYSTORE_PASSPHRASE`. */
export function passphrase(io: CliIo, file: string | undefined): string {
  if (file !== undefined) return secretFromFile(io, file, 'passphrase');
  const v = io.env[KEYSTORE_PASSPHRASE_ENV];
  if (v === undefined || v === '') {
    throw new SmkiError('ERR_CLI_SECRET_MISSING', `no passphrase: set ${KEYSTORE_PASSPHRASE_ENV} or give --passphrase-file`, {});
  }
  return v;
}

/** The HSM user PIN: `--pin-file`, else `SMKI_HSM_PIN`. */
export function hsmPin(io: CliIo, file: string | undefined): string {
  if (file !== undefined) return secretFromFile(io, file, 'PIN');
  const v = io.env[HSM_PIN_ENV];
  if (v === undefined || v === '') throw new SmkiError('ERR_CLI_SECRET_MISSING', `no HSM PIN: set ${HSM_PIN_ENV} or give --pin-file`, {});
  return v;
}

/** The environment variable of an operator key's passphrase. */
export const OPERATOR_PASSPHRASE_ENV = 'SMKI_OPERATOR_PASSPHRASE';

/** An operator key's passphrase: `--operator-passphrase-file`, else `SMKI_OPERATOR_PASSPHRASE`, else none. */
export function operatorPassphrase(io: CliIo, file: string | undefined): string | undefined {
  if (file !== undefined) return secretFromFile(io, file, 'operator key passphrase');
  const v = io.env[OPERATOR_PASSPHRASE_ENV];
  return v === undefined || v === '' ? undefined : v;
}

/** A sealed secret as stored (JSON). */
export interface Sealed {
  readonly kdf: 'scrypt';
  readonly N: number;
  readonly salt: string;
  readonly iv: string;
  readonly tag: string;
  readonly data: string;
}

const SCRYPT_R = 8;
const SCRYPT_P = 1;

function scryptKey(pass: string, salt: Buffer, N: number): Buffer {
  return scryptSync(pass, salt, 32, { N, r: SCRYPT_R, p: SCRYPT_P, maxmem: 256 * N * SCRYPT_R });
}

/** Seal `secret` under the passphrase (scrypt N=2^15, AES-256-GCM, a label bound as AAD). */
export function seal(pass: string, secret: Uint8Array, label: string, N = 1 << 15): Sealed {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', scryptKey(pass, salt, N), iv);
  c.setAAD(Buffer.from(label, 'utf8'));
  const data = Buffer.concat([c.update(secret), c.final()]);
  return { kdf: 'scrypt', N, salt: salt.toString('base64'), iv: iv.toString('base64'), tag: c.getAuthTag().toString('base64'), data: data.toString('base64') };
}

/**
 * Open a sealed secret.
 * @throws SmkiError `ERR_KEYSTORE_WRONG_PASSPHRASE` when it does not authenticate (wrong passphrase or altered), `ERR_CLI_STATE_INVALID` when malformed
 */
export function unseal(pass: string, sealed: Sealed, label: string): Uint8Array {
  if (sealed?.kdf !== 'scrypt' || !Number.isSafeInteger(sealed.N) || sealed.N < 1 << 14 || sealed.N > 1 << 20) {
    throw new SmkiError('ERR_CLI_STATE_INVALID', 'a sealed secret of the state directory is malformed', { detail: label });
  }
  try {
    const d = createDecipheriv('aes-256-gcm', scryptKey(pass, Buffer.from(sealed.salt, 'base64'), sealed.N), Buffer.from(sealed.iv, 'base64'));
    d.setAAD(Buffer.from(label, 'utf8'));
    d.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return new Uint8Array(Buffer.concat([d.update(Buffer.from(sealed.data, 'base64')), d.final()]));
  } catch {
    throw new SmkiError('ERR_KEYSTORE_WRONG_PASSPHRASE', 'the passphrase does not open a sealed secret of the state directory (wrong passphrase, or the file was altered)', { detail: label });
  }
}
