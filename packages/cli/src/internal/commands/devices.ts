/**
 * `smki device …` and `smki firmware …`: devices in the registry (the DCC's view: type, fuel,
 * model, responsible parties, trust-anchor cells, key-agreement certificate) and in the supplier's
 * key store (which portfolio, which key the meter trusts); firmware images per model.
 * @module
 * @internal
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { SmkiError, type Eui64 } from '@smki/core';
import { issueDeviceCertificate, parseCertificate, type SmkiCertificate } from '@smki/pki';
import { DEVICE_TYPES, MAX_REGISTRY_BATCH, type DeviceRecord, type DeviceType, type Fuel } from '@smki/store';
import { assignmentListDigest, MAX_BULK_DEVICES, type DeviceInfo, type KeyPurpose, type KeyStore } from '@smki/keystore';
import { choice, example, intOption, type Register } from '../program.js';
import { table } from '../io.js';
import { readInput } from '../files.js';
import { eui, newKeyPair, writeEncryptedKey, type State } from '../state.js';
import { keyCertificate } from './keys.js';
import { Actor, deferredOutcome, operatorOptions, type ChangeResult, type OperatorFlags } from '../access.js';

/** Most rows of one `device import`. */
export const MAX_IMPORT_ROWS = 1_000_000;

/** A device to add: what the registry needs and the portfolio it belongs to. */
export interface DeviceInput {
  readonly device: Eui64;
  readonly type: DeviceType;
  readonly fuel: Fuel;
  readonly model?: string;
  readonly portfolio: string;
  readonly kaCertificate: SmkiCertificate;
  readonly dsCertificate?: SmkiCertificate;
}

/** The network operator's signing certificate issued in this state directory. */
export function networkOperatorCertificate(state: State): SmkiCertificate {
  const no = state.config.parties.networkOperator;
  const c = state.organisationCertificates().find((x) => x.entityId === no && x.role === 3 && x.keyUsage.includes('digitalSignature'));
  if (!c) throw new SmkiError('ERR_CLI_STATE_INVALID', "the network operator's signing certificate is missing from certs/organisation", { detail: no });
  return c;
}

/** The registry record of a device whose supplier cell names the certificate of `supplierKeyCert`. */
export function deviceRecord(state: State, d: DeviceInput, supplierKeyCert: SmkiCertificate, noCert: SmkiCertificate): DeviceRecord {
  return {
    device: d.device,
    type: d.type,
    fuel: d.fuel,
    ...(d.model !== undefined ? { model: d.model } : {}),
    supplier: state.config.parties.supplier,
    networkOperator: state.config.parties.networkOperator,
    cells: [
      { role: 2, keyUsage: 'digitalSignature', cellUsage: 'management', ski: supplierKeyCert.subjectKeyId!, entity: state.config.parties.supplier },
      { role: 3, keyUsage: 'digitalSignature', cellUsage: 'management', ski: noCert.subjectKeyId!, entity: state.config.parties.networkOperator },
    ],
    keyAgreementCertificate: d.kaCertificate.der,
    ...(d.dsCertificate ? { digitalSignatureCertificate: d.dsCertificate.der } : {}),
  };
}

/** Check a device's certificates: device kind, its own entity id, the right key usage. */
function checkDeviceCertificates(d: Omit<DeviceInput, 'kaCertificate' | 'dsCertificate'>, ka: SmkiCertificate, ds: SmkiCertificate | undefined, where: string): void {
  const checks: [SmkiCertificate, 'keyAgreement' | 'digitalSignature'][] = [[ka, 'keyAgreement']];
  if (ds) checks.push([ds, 'digitalSignature']);
  for (const [c, usage] of checks) {
    if (c.kind !== 'device' || c.entityId !== d.device || !c.keyUsage.includes(usage)) {
      throw new SmkiError('ERR_CLI_INPUT_INVALID', `${where}: the ${usage} certificate is not a device certificate of ${d.device} for ${usage}`, { detail: `${c.kind} ${c.entityId ?? '-'} ${c.keyUsage.join('+')}` });
    }
  }
}

/**
 * Add devices: every one checked first (its portfolio has a certified key; it is in no other
 * portfolio), then assigned in the key store all or none (per {@link MAX_BULK_DEVICES}; an
 * existing assignment to the same portfolio is kept, so an import can be run again), then the
 * registry records put in batches. Under access control each assignment is a signed request of
 * the actor's operator; with `--propose` or `--request-out` nothing is assigned or registered
 * (the result says what was proposed or written).
 */
export async function addDevices(
  state: State,
  ks: KeyStore,
  devices: readonly DeviceInput[],
  tick: (n: number) => void = () => {},
  actor?: Actor,
): Promise<{ records: DeviceRecord[]; deferred?: ChangeResult<number> }> {
  const supplier = state.config.parties.supplier;
  const noCert = networkOperatorCertificate(state);
  const certOfPortfolio = new Map<string, SmkiCertificate>();
  for (const d of devices) {
    if (certOfPortfolio.has(d.portfolio)) continue;
    const keyId = (await ks.portfolio(supplier, d.portfolio)).current.signing;
    const cert = keyId === undefined ? undefined : keyCertificate(await ks.key(keyId));
    if (!cert) throw new SmkiError('ERR_CLI_INPUT_INVALID', `portfolio ${d.portfolio} has no certified signing key: smki key generate ${d.portfolio} --certify`, { detail: d.portfolio });
    certOfPortfolio.set(d.portfolio, cert);
  }
  const certOfKey = new Map<string, SmkiCertificate>();
  const trustedCert = async (keyId: string): Promise<SmkiCertificate> => {
    let c = certOfKey.get(keyId);
    if (c === undefined) {
      c = keyCertificate(await ks.key(keyId))!;
      certOfKey.set(keyId, c);
    }
    return c;
  };
  // Every device is checked before any is assigned: one already in another portfolio refuses the
  // whole input. One already in the same portfolio keeps its assignment (an import run again).
  const fresh: DeviceInput[] = [];
  const known = new Map<Eui64, string>();
  for (const d of devices) {
    try {
      const existing = await ks.device(supplier, d.device);
      if (existing.portfolioId !== d.portfolio) {
        throw new SmkiError('ERR_CLI_INPUT_INVALID', `device ${d.device} is already in portfolio ${existing.portfolioId}: use smki portfolio move`, { detail: d.device });
      }
      known.set(d.device, existing.installed.signing!);
    } catch (e) {
      if (!(e instanceof SmkiError && e.code === 'ERR_DEVICE_UNKNOWN')) throw e;
      fresh.push(d);
    }
  }
  // Then assigned all or none per call of the key store (at most MAX_BULK_DEVICES each).
  if (actor?.deferred === true && fresh.length > MAX_BULK_DEVICES) {
    throw new SmkiError('ERR_CLI_INPUT_INVALID', `a proposed or written assignment holds at most ${MAX_BULK_DEVICES} devices: split the input`, {});
  }
  for (let i = 0; i < fresh.length; i += MAX_BULK_DEVICES) {
    const chunk = fresh.slice(i, i + MAX_BULK_DEVICES);
    const assignments = chunk.map((d) => ({ device: d.device, portfolioId: d.portfolio }));
    if (actor !== undefined) {
      const digest = assignmentListDigest(assignments);
      const r = await actor.main({ op: 'device.assign', organisation: supplier, count: digest.count, listSha256: digest.listSha256 }, { assignments }, () => ks.assignDevices(supplier, assignments));
      if (r.kind !== 'done') return { records: [], deferred: r };
    } else {
      await ks.assignDevices(supplier, assignments);
    }
    for (const d of chunk) known.set(d.device, (await ks.device(supplier, d.device)).installed.signing!);
    tick(chunk.length);
  }
  const records: DeviceRecord[] = [];
  for (const d of devices) records.push(deviceRecord(state, d, await trustedCert(known.get(d.device)!), noCert));
  const { registry } = await state.stores();
  for (let i = 0; i < records.length; i += MAX_REGISTRY_BATCH) await registry.put(records.slice(i, i + MAX_REGISTRY_BATCH));
  return { records };
}

function readCertificate(cwd: string, file: string, what: string): SmkiCertificate {
  let bytes: Buffer;
  try {
    bytes = readFileSync(resolve(cwd, file));
  } catch {
    throw new SmkiError('ERR_CLI_INPUT_INVALID', `the ${what} file cannot be read`, { detail: file });
  }
  return parseCertificate(bytes);
}

/** A certificate in a CSV cell: PEM (with or without armour), or base64 or hex DER. */
function cellCertificate(value: string, where: string): SmkiCertificate {
  const v = value.trim();
  try {
    if (v.startsWith('-----BEGIN')) return parseCertificate(v);
    if (/^[0-9a-fA-F]+$/.test(v) && v.length % 2 === 0) return parseCertificate(Buffer.from(v, 'hex'));
    return parseCertificate(Buffer.from(v.replace(/\s+/g, ''), 'base64'));
  } catch (e) {
    throw new SmkiError('ERR_CLI_INPUT_INVALID', `${where}: not a certificate (${e instanceof SmkiError ? e.code : 'unreadable'})`, { detail: where });
  }
}

function deviceType(v: string, where: string): DeviceType {
  if (!(DEVICE_TYPES as readonly string[]).includes(v)) throw new SmkiError('ERR_CLI_INPUT_INVALID', `${where}: type must be one of ${DEVICE_TYPES.join(', ')}`, { detail: v.slice(0, 32) });
  return v as DeviceType;
}

function fuel(v: string, where: string): Fuel {
  if (v !== 'electricity' && v !== 'gas') throw new SmkiError('ERR_CLI_INPUT_INVALID', `${where}: fuel must be electricity or gas`, { detail: v.slice(0, 32) });
  return v;
}

export const register: Register = (program, wrap) => {
  const device = program.command('device').description('devices: the registry (DCC) and their portfolio (supplier)');
  example(device, 'smki device add 00DB123456789001 --portfolio north --simulate', 'smki device import meters.csv', 'smki device show 00DB123456789001');

  example(
    operatorOptions(
    device
      .command('add')
      .description('add a device to the registry and to a portfolio')
      .argument('<eui>', 'device EUI-64')
      .requiredOption('--portfolio <id>', 'the portfolio whose keys the meter trusts')
      .addOption(choice('--fuel <fuel>', 'electricity or gas', ['electricity', 'gas'], 'electricity'))
      .addOption(choice('--type <type>', 'device type', DEVICE_TYPES, 'ESME'))
      .option('--model <model>', 'model (the firmware allowlist key)')
      .option('--ka-cert <file>', "the device's key-agreement certificate (PEM or DER)")
      .option('--ds-cert <file>', "the device's digital-signature certificate (PEM or DER)")
      .option('--simulate', "a simulated meter: generate its key-agreement key and certificate (device CA of this state); key kept encrypted in meters/"),
    ),
    'smki device add 00DB123456789001 --portfolio north --model ACME-ESME-1 --simulate',
    'smki device add 00DB123456789002 --portfolio south --ka-cert 00DB123456789002-ka.pem',
  ).action(
    wrap(async (ctx, [id], o) => {
      const state = ctx.state();
      const d = eui(String(id), 'the device');
      if ((o.kaCert === undefined) === (o.simulate !== true)) throw new SmkiError('ERR_CLI_USAGE', 'give exactly one of --ka-cert <file> and --simulate', {});
      let ka: SmkiCertificate;
      let simulated: ReturnType<typeof newKeyPair> | undefined;
      if (o.simulate === true) {
        simulated = newKeyPair();
        ka = await issueDeviceCertificate({ issuer: state.hierarchy().deviceCa, entityId: d, keyUsage: 'keyAgreement', publicKey: simulated.publicKey });
      } else {
        ka = readCertificate(ctx.io.cwd, String(o.kaCert), 'key-agreement certificate');
      }
      const ds = o.dsCert !== undefined ? readCertificate(ctx.io.cwd, String(o.dsCert), 'digital-signature certificate') : undefined;
      const input = { device: d, type: o.type as DeviceType, fuel: o.fuel as Fuel, ...(o.model !== undefined ? { model: String(o.model) } : {}), portfolio: String(o.portfolio) };
      checkDeviceCertificates(input, ka, ds, 'device');
      const ks = await state.keystore();
      const added = await addDevices(state, ks, [{ ...input, kaCertificate: ka, ...(ds ? { dsCertificate: ds } : {}) }], () => {}, new Actor(ctx.io, ks, o as OperatorFlags));
      const deferred = added.deferred ? deferredOutcome(ctx, added.deferred, `the assignment of ${d} to ${input.portfolio}`) : undefined;
      if (deferred) return deferred;
      const rec = added.records[0];
      // A simulated meter's key is kept only once the device is added (a refusal writes nothing).
      if (simulated) {
        writeEncryptedKey(state.path('meters', `${d}.ka.key.pem`), simulated.privateKey, state.passphrase);
        state.saveCertificate(ka);
      }
      return { json: rec, text: `${ctx.paint.green('✔')} device ${d} (${input.type}, ${input.fuel}) added to ${input.portfolio}; its supplier cell trusts certificate SKI ${rec!.cells[0]!.ski}` };
    }),
  );

  example(
    operatorOptions(
      device
        .command('import')
        .description('import devices from a CSV file (header: device,type,fuel,model,portfolio,ka_certificate[,ds_certificate]); all rows are checked before any is written')
        .argument('<csv>', 'the CSV file (- for standard input)'),
    ),
    'smki device import meters.csv --json',
  ).action(
    wrap(async (ctx, [file], o) => {
      const state = ctx.state();
      const text = (await readInput(ctx.io, String(file))).toString('utf8');
      let rows: Record<string, string>[];
      try {
        rows = parseCsv(text, { columns: true, skip_empty_lines: true, trim: true, max_record_size: 64 * 1024, to: MAX_IMPORT_ROWS + 1 }) as Record<string, string>[];
      } catch (e) {
        throw new SmkiError('ERR_CLI_INPUT_INVALID', `the CSV does not parse: ${(e as Error).message.slice(0, 200)}`, { detail: String(file) });
      }
      if (rows.length > MAX_IMPORT_ROWS) throw new SmkiError('ERR_CLI_INPUT_INVALID', `at most ${MAX_IMPORT_ROWS} rows per import`, {});
      const inputs: DeviceInput[] = [];
      const seen = new Set<string>();
      rows.forEach((r, i) => {
        const where = `row ${i + 2}`;
        for (const col of ['device', 'type', 'fuel', 'portfolio', 'ka_certificate']) {
          if (typeof r[col] !== 'string' || r[col] === '') throw new SmkiError('ERR_CLI_INPUT_INVALID', `${where}: column ${col} is missing or empty`, { detail: where });
        }
        let d: Eui64;
        try {
          d = eui(r.device!, where);
        } catch {
          throw new SmkiError('ERR_CLI_INPUT_INVALID', `${where}: device is not an EUI-64`, { detail: r.device!.slice(0, 40) });
        }
        if (seen.has(d)) throw new SmkiError('ERR_CLI_INPUT_INVALID', `${where}: device ${d} appears twice`, { detail: d });
        seen.add(d);
        const base = { device: d, type: deviceType(r.type!, where), fuel: fuel(r.fuel!, where), ...(r.model ? { model: r.model } : {}), portfolio: r.portfolio! };
        const ka = cellCertificate(r.ka_certificate!, `${where} ka_certificate`);
        const ds = r.ds_certificate ? cellCertificate(r.ds_certificate, `${where} ds_certificate`) : undefined;
        checkDeviceCertificates(base, ka, ds, where);
        inputs.push({ ...base, kaCertificate: ka, ...(ds ? { dsCertificate: ds } : {}) });
      });
      const ks = await state.keystore();
      const bar = ctx.progress('importing devices', inputs.length);
      let added: Awaited<ReturnType<typeof addDevices>>;
      try {
        added = await addDevices(state, ks, inputs, (n) => bar.tick(n), new Actor(ctx.io, ks, o as OperatorFlags));
      } finally {
        bar.stop();
      }
      const deferred = added.deferred ? deferredOutcome(ctx, added.deferred, `the assignment of ${inputs.length} device(s)`) : undefined;
      if (deferred) return deferred;
      const records = added.records;
      const byPortfolio = new Map<string, number>();
      for (const d of inputs) byPortfolio.set(d.portfolio, (byPortfolio.get(d.portfolio) ?? 0) + 1);
      return {
        json: { imported: records.length, portfolios: Object.fromEntries(byPortfolio) },
        text: `${ctx.paint.green('✔')} imported ${records.length} device(s)\n${table(['portfolio', 'devices'], [...byPortfolio].map(([p, n]) => [p, n]))}`,
      };
    }),
  );

  example(device.command('show').description("a device's registry record and portfolio").argument('<eui>', 'device EUI-64'), 'smki device show 00DB123456789001 --json').action(
    wrap(async (ctx, [id]) => {
      const state = ctx.state();
      const d = eui(String(id), 'the device');
      const { registry } = await state.stores();
      const rec = await registry.device(d);
      const ks = await state.keystore();
      let info: DeviceInfo | undefined;
      try {
        info = await ks.device(state.config.parties.supplier, d);
      } catch (e) {
        if (!(e instanceof SmkiError && e.code === 'ERR_DEVICE_UNKNOWN')) throw e;
      }
      if (rec === undefined && info === undefined) throw new SmkiError('ERR_CLI_NOT_FOUND', `device ${d} is neither in the registry nor in a portfolio`, { detail: d });
      const ka = rec?.keyAgreementCertificate ? parseCertificate(rec.keyAgreementCertificate) : undefined;
      const json = {
        device: d,
        registry: rec ? { type: rec.type, fuel: rec.fuel, model: rec.model, supplier: rec.supplier, networkOperator: rec.networkOperator, cells: rec.cells, keyAgreementCertificateSerial: ka?.serialNumber } : null,
        keystore: info ? { portfolio: info.portfolioId, installed: info.installed } : null,
      };
      const lines = [
        `device ${d}`,
        rec ? `  registry: ${rec.type} ${rec.fuel}${rec.model ? ` model ${rec.model}` : ''}; supplier ${rec.supplier ?? '-'}; network operator ${rec.networkOperator ?? '-'}; KA certificate ${ka?.serialNumber ?? '-'}` : '  registry: (not registered)',
        ...(rec ? rec.cells.map((c) => `  cell role ${c.role} ${c.keyUsage} ${c.cellUsage}: SKI ${c.ski}${c.entity ? ` (${c.entity})` : ''}`) : []),
        info ? `  portfolio ${info.portfolioId}; trusts signing key ${info.installed.signing ?? '-'}` : '  portfolio: (none)',
      ];
      return { json, text: lines.join('\n') };
    }),
  );

  example(
    operatorOptions(
      device
        .command('updated')
        .description("record that a meter now trusts its portfolio's current key (its credential update, after a rotation or a move, is confirmed)")
        .argument('<eui>', 'device EUI-64')
        .addOption(choice('--purpose <purpose>', 'signing or keyAgreement', ['signing', 'keyAgreement'], 'signing')),
    ),
    'smki device updated 00DB123456789001',
  ).action(
    wrap(async (ctx, [id], o) => {
      const state = ctx.state();
      const d = eui(String(id), 'the device');
      const ks = await state.keystore();
      const supplier = state.config.parties.supplier;
      const purpose = o.purpose as 'signing' | 'keyAgreement';
      const r = await new Actor(ctx.io, ks, o as OperatorFlags).main({ op: 'device.credentialsUpdated', organisation: supplier, device: d, purpose }, {}, () => ks.markCredentialsUpdated(supplier, d, purpose));
      const deferred = deferredOutcome(ctx, r, `the credential update of ${d}`);
      if (deferred) return deferred;
      const info = await ks.device(supplier, d);
      // The DCC's registry follows: the supplier cell now names the new key's certificate.
      const { registry } = await state.stores();
      const rec = await registry.device(d);
      const keyId = info.installed[o.purpose as 'signing' | 'keyAgreement'];
      if (rec && o.purpose === 'signing' && keyId !== undefined) {
        const cert = keyCertificate(await ks.key(keyId))!;
        await registry.put([{ ...rec, cells: rec.cells.map((c) => (c.role === 2 && c.keyUsage === 'digitalSignature' ? { ...c, ski: cert.subjectKeyId! } : c)) }]);
      }
      return { json: { device: d, portfolio: info.portfolioId, installed: info.installed }, text: `${ctx.paint.green('✔')} ${d} now trusts ${keyId ?? '-'} (${String(o.purpose)})` };
    }),
  );

  example(
    device
      .command('updates')
      .description("the meters of a portfolio that do not trust its current key yet (credential updates due), a page at a time")
      .argument('<portfolio>', 'portfolio id')
      .addOption(choice('--purpose <purpose>', 'signing, keyAgreement or prepaymentKeyAgreement', ['signing', 'keyAgreement', 'prepaymentKeyAgreement'], 'signing'))
      .option('--after <eui>', 'start after this meter (the `next` of the page before)')
      .option('--limit <n>', 'at most this many (default 1000)', intOption('--limit', 1, 1_000_000), 1000),
    'smki device updates north --limit 100 --json',
  ).action(
    wrap(async (ctx, [pid], o) => {
      const state = ctx.state();
      const ks = await state.keystore();
      const supplier = state.config.parties.supplier;
      const limit = o.limit as number;
      const after = o.after !== undefined ? eui(String(o.after), '--after') : undefined;
      const updates = [];
      let next: string | undefined = after;
      do {
        const page = await ks.credentialUpdates(supplier, String(pid), { purpose: o.purpose as KeyPurpose, limit: Math.min(10_000, limit - updates.length), ...(next !== undefined ? { after: next } : {}) });
        updates.push(...page.updates);
        next = page.next;
      } while (next !== undefined && updates.length < limit);
      return {
        json: { portfolio: pid, purpose: o.purpose, updates, next },
        text:
          updates.length === 0
            ? `${ctx.paint.green('✔')} every meter of ${String(pid)} trusts its current ${String(o.purpose)} key`
            : [table(['device', 'purpose', 'from key', 'to key'], updates.map((u) => [u.device, u.purpose, u.fromKeyId ?? '-', u.toKeyId])), ...(next !== undefined ? [`… more: smki device updates ${String(pid)} --after ${next}`] : [])].join('\n'),
      };
    }),
  );

  const firmware = program.command('firmware').description('the firmware allowlist: images each model may activate');
  example(firmware, 'smki firmware approve ACME-ESME-1 <sha256-hex>', 'smki firmware list');
  const hashArg = (v: unknown): string => {
    const h = String(v).replace(/^0x/i, '');
    if (!/^[0-9a-fA-F]{64}$/.test(h)) throw new SmkiError('ERR_CLI_USAGE', 'the image hash is 64 hexadecimal digits (32 bytes)', { detail: String(v).slice(0, 80) });
    return h.toUpperCase();
  };
  example(firmware.command('approve').description('approve an image for a model').argument('<model>', 'device model').argument('<hash>', 'manufacturer image hash, 64 hex digits'), 'smki firmware approve ACME-ESME-1 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08').action(
    wrap(async (ctx, [model, hash]) => {
      const { firmware: fw } = await ctx.state().stores();
      const [r] = await fw.approve([{ model: String(model), imageHash: hashArg(hash) }], Date.now());
      if (r === 'revoked') throw new SmkiError('ERR_FIRMWARE_NOT_APPROVED', 'this image was revoked for the model; revocation is final', { detail: hashArg(hash) });
      return { json: { model, imageHash: hashArg(hash), result: r }, text: `${ctx.paint.green('✔')} ${r === 'already' ? 'already approved' : 'approved'}: ${String(model)} ${hashArg(hash)}` };
    }),
  );
  example(
    firmware.command('revoke').description('revoke an image for a model (final)').argument('<model>', 'device model').argument('<hash>', 'manufacturer image hash').option('--reason <text>', 'why (recorded)'),
    'smki firmware revoke ACME-ESME-1 9F86D0…0A08 --reason "CVE-2026-0001"',
  ).action(
    wrap(async (ctx, [model, hash], o) => {
      const { firmware: fw } = await ctx.state().stores();
      const changed = await fw.revoke(String(model), hashArg(hash), Date.now(), o.reason !== undefined ? String(o.reason) : undefined);
      return { json: { model, imageHash: hashArg(hash), revoked: true, changed }, text: `${ctx.paint.green('✔')} revoked: ${String(model)} ${hashArg(hash)}${changed ? '' : ' (already revoked)'}` };
    }),
  );
  example(firmware.command('list').description('list images').option('--model <model>', 'one model only'), 'smki firmware list --model ACME-ESME-1').action(
    wrap(async (ctx, _a, o) => {
      const { firmware: fw } = await ctx.state().stores();
      const list = await fw.list(o.model !== undefined ? String(o.model) : undefined);
      return {
        json: list,
        text: list.length === 0 ? 'no image approved' : table(['model', 'image hash', 'state', 'since', 'reason'], list.map((i) => [i.model, i.imageHash, i.state, new Date((i.state === 'revoked' ? i.revokedAt : i.approvedAt) ?? 0).toISOString(), i.reason ?? ''])),
      };
    }),
  );
};
