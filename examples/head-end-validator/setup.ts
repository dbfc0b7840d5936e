/**
 * The worker setup module of the head-end example's `ValidatorPool`: every worker thread imports
 * it and calls its default export once, with its slot (0, 1, …) and the pool's `data`. Each
 * worker opens its own PostgreSQL connections (where to connect comes from the libpq
 * environment: PGHOST, PGPORT, PGUSER, PGDATABASE or PGSERVICE; the password from a password
 * file), reads the Access Control Broker's key and the decision-log key from files (the pool's
 * `data` carries paths, never keys), and keeps a decision log of its own, named by its slot.
 *
 * In production the ACB key would live in an HSM (one PKCS#11 session per worker) or in the
 * keystore; a PKCS#8 file of mode 0600 keeps this example self-contained.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createKeyAgreement } from '@smki/core';
import { PostgresDeviceRegistry, PostgresFirmwareAllowlist, PostgresStateStore } from '@smki/store';
import type { ValidatorSetup } from '@smki/validator';

/** What the example passes to every worker (structured-cloneable: paths and public data only). */
export interface HeadEndSetupData {
  /** The PostgreSQL schema holding the state, the registry and the allowlist. */
  readonly schema: string;
  /** Root, CAs and the Users' organisation certificates (DER). */
  readonly certificates: readonly Uint8Array[];
  /** The organisation CRL and the authority revocation list (DER). */
  readonly crls: readonly Uint8Array[];
  /** Path of the ACB key-agreement private key (PKCS#8 PEM, mode 0600). */
  readonly acbKeyFile: string;
  /** Path of the decision log's 32-byte HMAC key (mode 0600). */
  readonly logKeyFile: string;
  /** Directory under which each worker keeps its decision log (`worker-<slot>`). */
  readonly logDir: string;
}

/** The decision-log id of a worker: one log per validator (docs/validator.md, the decision log). */
export const logIdOf = (slot: number): string => `head-end-worker-${slot}`;

const setup: ValidatorSetup = async ({ slot, data }) => {
  const d = data as HeadEndSetupData;
  const acbKey = createPrivateKey(readFileSync(d.acbKeyFile, 'utf8'));
  const logKey = new Uint8Array(readFileSync(d.logKeyFile));
  // Small pools: two workers with three connections each stay far under max_connections.
  const connection = { schema: d.schema, maxConnections: 2 };
  return {
    store: await PostgresStateStore.open(connection),
    registry: await PostgresDeviceRegistry.open(connection),
    firmware: await PostgresFirmwareAllowlist.open(connection),
    trust: { certificates: d.certificates, crls: d.crls },
    acb: { keyId: 'acb-ka-1', keyAgreement: createKeyAgreement(acbKey) },
    log: { dir: join(d.logDir, `worker-${slot}`), id: logIdOf(slot), key: logKey },
  };
};
export default setup;
