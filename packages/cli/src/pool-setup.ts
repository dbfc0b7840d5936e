/**
 * The worker-thread setup of `smki command validate --workers N`: each thread opens its own
 * connections to the state directory's stores (the shared SQLite files or PostgreSQL), its own
 * decision log (`log/worker-<slot>`), and the ACB key from its encrypted file.
 * @module
 * @internal
 */
import { join } from 'node:path';
import { createKeyAgreement } from '@smki/core';
import type { ValidatorSetup } from '@smki/validator';
import { openStores, readEncryptedKey, type StateConfig } from './internal/state.js';

/** What the CLI passes to every worker (in memory, never written). */
export interface PoolSetupData {
  readonly dir: string;
  readonly config: StateConfig;
  readonly passphrase: string;
  readonly certificates: readonly Uint8Array[];
  readonly crls: readonly Uint8Array[];
  readonly logKey: Uint8Array;
  readonly thresholds: Readonly<Record<string, { limit: number; windowMs: number }>>;
}

const setup: ValidatorSetup = async ({ slot, data }) => {
  const d = data as PoolSetupData;
  const stores = await openStores(d.config, d.dir);
  const thresholds = new Map(Object.entries(d.thresholds).map(([k, v]) => [parseInt(k, 16), v]));
  return {
    ...stores,
    trust: { certificates: d.certificates, crls: d.crls },
    acb: { keyId: 'acb-ka', keyAgreement: createKeyAgreement(readEncryptedKey(join(d.dir, 'dcc', 'acb-ka.key.pem'), d.passphrase)) },
    log: { dir: join(d.dir, 'log', `worker-${slot}`), id: `worker-${slot}`, key: d.logKey },
    anomalyThreshold: (_user, code) => thresholds.get(code),
    counterClockWindowMs: d.config.clockCounters ? 300_000 : false,
  };
};
export default setup;
