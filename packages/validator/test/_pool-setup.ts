// The worker setup of the pool tests and benchmark: each worker opens its own connections to
// the shared SQLite files and its own decision log (by slot).
import { createPrivateKey } from 'node:crypto';
import { join } from 'node:path';
import { createKeyAgreement } from '@smki/core';
import { SqliteDeviceRegistry, SqliteFirmwareAllowlist, SqliteStateStore } from '@smki/store';
import type { ValidatorSetup } from '../src/index.js';

export interface BenchSetupData {
  readonly statePath: string;
  readonly registryPath: string;
  readonly firmwarePath: string;
  readonly logDir: string;
  readonly certificates: readonly Uint8Array[];
  readonly crls: readonly Uint8Array[];
  readonly acbPkcs8: Uint8Array;
  readonly logKey: Uint8Array;
  readonly now: number;
}

const setup: ValidatorSetup = async ({ slot, data }) => {
  const d = data as BenchSetupData;
  return {
    store: await SqliteStateStore.open({ path: d.statePath }),
    registry: await SqliteDeviceRegistry.open({ path: d.registryPath }),
    firmware: await SqliteFirmwareAllowlist.open({ path: d.firmwarePath }),
    trust: { certificates: d.certificates, crls: d.crls },
    acb: { keyId: 'acb-ka-1', keyAgreement: createKeyAgreement(createPrivateKey({ key: Buffer.from(d.acbPkcs8), format: 'der', type: 'pkcs8' })) },
    log: { dir: join(d.logDir, `worker-${slot}`), id: `bench-worker-${slot}`, key: d.logKey },
    now: () => new Date(d.now),
  };
};
export default setup;
