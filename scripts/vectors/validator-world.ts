/**
 * The validator decision vectors' format, and how one case is run: shared by the generator
 * (scripts/generate-validator-vectors.ts, which refuses to write a case that does not decide as
 * declared) and the harness (test/validator-vectors.test.ts).
 */
import { createPrivateKey } from 'node:crypto';
import { createKeyAgreement, fromHex, parseEui64, toHex, type Eui64 } from '../../packages/core/src/index.js';
import { MemoryDeviceRegistry, MemoryFirmwareAllowlist, MemoryStateStore, type DeviceRecord } from '../../packages/store/src/index.js';
import { Validator, type Decision } from '../../packages/validator/src/index.js';

/** A device record with its certificate as hex. */
export type HexDeviceRecord = Omit<DeviceRecord, 'keyAgreementCertificate' | 'digitalSignatureCertificate'> & { readonly keyAgreementCertificate?: string };

/** The world every case runs in. */
export interface ValidatorVectorWorld {
  /** The validator's clock (ISO 8601). */
  readonly now: string;
  readonly counterClockWindowMs: number;
  /** Root, CAs and organisation certificates, DER hex. */
  readonly certificates: readonly string[];
  /** Named sets of CRL + ARL (DER hex); `current` unless a case names another. */
  readonly crls: Readonly<Record<string, readonly string[]>>;
  /** The ACB key-agreement private key (PKCS#8 DER hex): a test key, published on purpose. */
  readonly acbPrivateKey: string;
  readonly acbKeyId: string;
  readonly devices: readonly HexDeviceRecord[];
  readonly firmware: { readonly model: string; readonly approved: readonly string[]; readonly revoked: readonly string[] };
  /** The meters' key-agreement private keys (PKCS#8 DER hex), for checking the MACs of accepted frames. */
  readonly meterKeys: readonly string[];
}

/** One command and who sent it. */
export interface VectorCommand {
  /** The command, hex. */
  readonly command: string;
  /** The authenticated sender. */
  readonly sender: string;
}

/** One case. */
export interface ValidatorVectorCase {
  readonly id: string;
  readonly comment: string;
  readonly input: Partial<VectorCommand> & {
    /** Commands validated first, one by one; each must be accepted. */
    readonly prior?: readonly VectorCommand[];
    /** Instead of one command: one validateBatch call. */
    readonly batch?: readonly VectorCommand[];
    /** Device records replacing the world's (same device). */
    readonly devices?: readonly HexDeviceRecord[];
    /** The CRL set (default `current`). */
    readonly crls?: string;
    /** The clock (default the world's). */
    readonly now?: string;
    /** An anomaly threshold for every (User, message code). */
    readonly anomaly?: { readonly limit: number; readonly windowMs: number };
  };
  readonly result: 'valid' | 'invalid';
  readonly outcome: Decision['outcome'];
  readonly errorCode?: string;
  /** For a batch: the outcome and code of each command. */
  readonly outcomes?: readonly Decision['outcome'][];
  readonly errorCodes?: readonly (string | null)[];
  /** The MAC'd frame of an accepted single command, hex. */
  readonly frame?: string;
}

const LOG_KEY = new Uint8Array(32).fill(0x5a);

export function deviceRecord(r: HexDeviceRecord): DeviceRecord {
  const { keyAgreementCertificate, ...rest } = r;
  return {
    ...rest,
    device: parseEui64(r.device),
    ...(rest.supplier ? { supplier: parseEui64(rest.supplier) } : {}),
    ...(rest.networkOperator ? { networkOperator: parseEui64(rest.networkOperator) } : {}),
    cells: r.cells.map((c) => ({ ...c, ...(c.entity ? { entity: parseEui64(c.entity) } : {}) })),
    ...(keyAgreementCertificate ? { keyAgreementCertificate: fromHex(keyAgreementCertificate) } : {}),
  };
}

const code = (d: Decision): string | null => (d.outcome === 'accepted' ? null : d.code);

/**
 * Run one case on fresh memory stores and a validator whose decision log is in `dir`; returns
 * what disagreed with the case (empty when it decided as declared) and the frame of an accepted
 * single command.
 */
export async function runVectorCase(world: ValidatorVectorWorld, c: ValidatorVectorCase, dir: string): Promise<{ problems: string[]; frame?: string; decisions: Decision[] }> {
  const problems: string[] = [];
  const registry = new MemoryDeviceRegistry();
  const byDevice = new Map<Eui64, DeviceRecord>();
  for (const r of world.devices) byDevice.set(parseEui64(r.device), deviceRecord(r));
  for (const r of c.input.devices ?? []) byDevice.set(parseEui64(r.device), deviceRecord(r));
  await registry.put([...byDevice.values()]);
  const firmware = new MemoryFirmwareAllowlist();
  const at = Date.parse(world.now);
  await firmware.approve(world.firmware.approved.map((h) => ({ model: world.firmware.model, imageHash: h })), at);
  for (const h of world.firmware.revoked) await firmware.revoke(world.firmware.model, h, at, 'vector');
  const crls = world.crls[c.input.crls ?? 'current'];
  if (!crls) throw new Error(`case ${c.id}: no CRL set ${c.input.crls}`);
  const now = new Date(c.input.now ?? world.now);
  const anomaly = c.input.anomaly;
  const validator = await Validator.open({
    store: new MemoryStateStore(),
    registry,
    firmware,
    trust: { certificates: world.certificates.map(fromHex), crls: crls.map(fromHex) },
    acb: { keyId: world.acbKeyId, keyAgreement: createKeyAgreement(createPrivateKey({ key: Buffer.from(fromHex(world.acbPrivateKey)), format: 'der', type: 'pkcs8' })) },
    log: { dir, id: 'vectors', key: LOG_KEY },
    counterClockWindowMs: world.counterClockWindowMs,
    now: () => now,
    ...(anomaly ? { anomalyThreshold: () => anomaly } : {}),
  });
  try {
    for (const [i, p] of (c.input.prior ?? []).entries()) {
      const d = await validator.validate(fromHex(p.command), { sender: p.sender });
      if (d.outcome !== 'accepted') problems.push(`prior ${i} was ${d.outcome} ${code(d) ?? ''}`);
    }
    if (c.input.batch) {
      const ds = await validator.validateBatch(c.input.batch.map((b) => ({ bytes: fromHex(b.command), sender: b.sender })));
      const outcomes = ds.map((d) => d.outcome);
      const codes = ds.map(code);
      if (JSON.stringify(outcomes) !== JSON.stringify(c.outcomes)) problems.push(`outcomes ${outcomes.join(',')}`);
      if (JSON.stringify(codes) !== JSON.stringify(c.errorCodes)) problems.push(`codes ${codes.join(',')}`);
      return { problems, decisions: ds };
    }
    const d = await validator.validate(fromHex(c.input.command ?? ''), { sender: c.input.sender as string });
    if (d.outcome !== c.outcome) problems.push(`outcome ${d.outcome} (${code(d) ?? ''}: ${d.outcome === 'rejected' ? d.message : ''})`);
    if ((code(d) ?? undefined) !== c.errorCode) problems.push(`code ${code(d) ?? 'none'}`);
    return { problems, decisions: [d], ...(d.outcome === 'accepted' ? { frame: toHex(d.frame) } : {}) };
  } finally {
    await validator.close();
  }
}
