/**
 * `smki demo`: the whole flow on the embedded defaults, in a temporary state directory. A test
 * hierarchy; one supplier with two portfolios of meters, each with its own key and certificate;
 * remote disconnects and firmware activations signed with the key each meter trusts; validated
 * and counter-signed (the ACB MAC); simulated meters check the MACs; then what the validator
 * refuses and why; a summary table and the measured commands per second.
 * @module
 * @internal
 */
import { createHash, createPrivateKey, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createKeySigner, parseEui64, type Eui64, type Signer } from '@smki/core';
import { issueDeviceCertificate, type SmkiCertificate } from '@smki/pki';
import { ACTIVATE_FIRMWARE_MESSAGE_CODE, buildActivateFirmware, buildDisableSupply, buildEnableSupply, signPreCommand, SUPPLY_COMMANDS, verifyMac } from '@smki/gbcs';
import { Validator, type BatchCommand, type Decision } from '@smki/validator';
import type { KeyObject } from 'node:crypto';
import { example, intOption, type Register } from '../program.js';
import { table } from '../io.js';
import { writeFileAtomic } from '../files.js';
import { CONFIG_FORMAT, newKeyPair, State, type StateConfig } from '../state.js';
import { DEFAULT_PARTIES, initState } from './init.js';
import { certifyKey } from './keys.js';
import { addDevices } from './devices.js';
import { networkOperatorSigner, validatorOptions } from './command.js';
import { verifyAll } from './audit.js';

const MODEL = 'ACME-ESME-1';
/** Reconnects (ECS42) a User may send per minute before the rest are held (the demo's threshold). */
const RECONNECT_LIMIT = 20;

/** Meter n's EUI-64. */
const meterEui = (n: number): Eui64 => parseEui64(`00DB1234${n.toString(16).toUpperCase().padStart(8, '0')}`);

export const register: Register = (program, wrap) => {
  example(
    program
      .command('demo')
      .description('the end-to-end demo on the embedded defaults, in a temporary directory (under a minute)')
      .option('--meters <n>', 'meters per portfolio', intOption('--meters', 1, 100_000), 500)
      .option('--keep <dir>', 'keep the state directory here (a new or empty directory) instead of deleting it'),
    'smki demo',
    'smki demo --meters 100 --keep ./demo-state && smki --dir ./demo-state audit report --html report.html',
  ).action(
    wrap(async (ctx, _a, o) => {
      const p = ctx.paint;
      const t0 = Date.now();
      const out = (s: string) => {
        if (!ctx.json) ctx.line(s);
      };
      const step = (s: string) => out(`${p.bold('▸')} ${s}`);
      const ok = (s: string) => out(`  ${p.green('✔')} ${s}`);
      const refused = (s: string) => out(`  ${p.red('✘')} ${s}`);
      const perPortfolio = o.meters as number;
      const dir = o.keep !== undefined ? resolve(ctx.io.cwd, String(o.keep)) : join(mkdtempSync(join(tmpdir(), 'smki-demo-')), 'state');
      // The demo's own passphrase: random, in memory only (a real state directory takes it from
      // SMKI_KEYSTORE_PASSPHRASE or --passphrase-file); --keep writes it to <dir>/demo-passphrase
      // (mode 0600): the kept directory is a demonstration, its keys test keys.
      const passphrase = randomBytes(24).toString('base64url');
      const env = { ...ctx.io.env, SMKI_KEYSTORE_PASSPHRASE: passphrase };
      const config: StateConfig = {
        format: CONFIG_FORMAT,
        environment: 'test',
        createdAt: new Date().toISOString(),
        parties: { supplier: parseEui64(DEFAULT_PARTIES.supplier), networkOperator: parseEui64(DEFAULT_PARTIES.networkOperator), acb: parseEui64(DEFAULT_PARTIES.acb) },
        keystore: { backend: 'file' },
        stores: { kind: 'sqlite' },
        anomalyThresholds: { [SUPPLY_COMMANDS.ECS42.messageCode.toString(16).toUpperCase().padStart(4, '0')]: { limit: RECONNECT_LIMIT, windowMs: 60_000 } },
        clockCounters: true,
      };
      const state = State.create({ ...ctx.io, env }, { dir }, config);
      ctx.adopt(state);
      const tally = new Map<string, number>();
      const count = (d: Decision) => {
        const k = d.outcome === 'accepted' ? 'accepted' : `${d.outcome} ${d.code}`;
        tally.set(k, (tally.get(k) ?? 0) + 1);
      };
      const expect = (d: Decision | undefined, code: string, what: string): boolean => {
        if (d === undefined) return false;
        count(d);
        if (d.outcome !== 'accepted' && d.code === code) {
          refused(`${what}: ${d.outcome} ${p.bold(d.code)} at ${d.step}`);
          return true;
        }
        out(`  ${p.red('!')} ${what}: expected ${code}, got ${d.outcome}${d.outcome === 'accepted' ? '' : ` ${d.code}`}`);
        return false;
      };
      let failures = 0;
      try {
        out(p.bold(`SMKI toolkit demo: ${2 * perPortfolio} meters, two portfolios, critical commands end to end (${dir})`));
        step('a test SMKI hierarchy, the ACB, a network operator, the stores');
        await initState(state);
        ok('root, organisation CA and device CA; ACB key-agreement and network operator signing certificates; CRL #1 and ARL #1');

        step("the supplier's two portfolios, each with its own signing key and certificate (encrypted key files)");
        const ks = await state.keystore();
        const supplier = config.parties.supplier;
        const portfolioCert: Record<string, SmkiCertificate> = {};
        for (const id of ['north', 'south']) {
          await ks.createPortfolio(supplier, { id });
          const h = await ks.generateKey(supplier, id, 'signing');
          portfolioCert[id] = await certifyKey(state, ks, h.keyId);
          ok(`${id}: key ${h.keyId}, certificate ${portfolioCert[id]!.serialNumber} from its CSR`);
        }

        step(`${2 * perPortfolio} meters: key-agreement certificates from the device CA, registered, assigned to their portfolio`);
        const meterKeys = new Map<Eui64, KeyObject>();
        const inputs = [];
        for (let i = 0; i < 2 * perPortfolio; i++) {
          const d = meterEui(i);
          const k = newKeyPair();
          meterKeys.set(d, k.privateKey);
          const ka = await issueDeviceCertificate({ issuer: state.hierarchy().deviceCa, entityId: d, keyUsage: 'keyAgreement', publicKey: k.publicKey });
          inputs.push({ device: d, type: 'ESME' as const, fuel: 'electricity' as const, model: MODEL, portfolio: i < perPortfolio ? 'north' : 'south', kaCertificate: ka });
        }
        const bar = ctx.progress('meters', inputs.length);
        await addDevices(state, ks, inputs, (n) => bar.tick(n));
        bar.stop();
        const north = inputs.filter((m) => m.portfolio === 'north').map((m) => m.device);
        const south = inputs.filter((m) => m.portfolio === 'south').map((m) => m.device);
        ok(`north: ${north.length} meters trust ${portfolioCert.north!.serialNumber}; south: ${south.length} meters trust ${portfolioCert.south!.serialNumber}`);

        step('firmware: one image approved for the model');
        const approved = createHash('sha256').update('ACME ESME firmware 2.1.0').digest();
        const unapproved = createHash('sha256').update('ACME ESME firmware 2.2.0-rc1').digest();
        const { firmware } = await state.stores();
        await firmware.approve([{ model: MODEL, imageHash: approved }], Date.now());
        ok(`${MODEL}: ${approved.toString('hex').slice(0, 16)}… approved`);

        step('sign: a remote disconnect for every meter and a firmware activation for every tenth, each with the key its meter trusts');
        let counter = BigInt(Date.now()) - 60_000n;
        const signFor = (device: Eui64, messageCode: number, c: bigint): Signer => ({ publicKey: new Uint8Array(0), sign: (data) => ks.signFor(device, data, { messageCode, counter: c }) });
        const signedCommands: { bytes: Uint8Array; device: Eui64 }[] = [];
        const devices = [...north, ...south];
        const tSign = process.hrtime.bigint();
        for (let i = 0; i < devices.length; i += 64) {
          const chunk = devices.slice(i, i + 64);
          const made = await Promise.all(
            chunk.flatMap((d, j) => {
              const c = counter + BigInt(2 * (i + j));
              const list = [signPreCommand(buildDisableSupply({ fuel: 'electricity', originator: supplier, recipient: d, counter: c }), signFor(d, SUPPLY_COMMANDS.ECS43.messageCode, c)).then((bytes) => ({ bytes, device: d }))];
              if ((i + j) % 10 === 0) {
                list.push(signPreCommand(buildActivateFirmware({ originator: supplier, recipient: d, counter: c + 1n, imageHash: approved }), signFor(d, ACTIVATE_FIRMWARE_MESSAGE_CODE, c + 1n)).then((bytes) => ({ bytes, device: d })));
              }
              return list;
            }),
          );
          signedCommands.push(...made);
        }
        counter += BigInt(2 * devices.length);
        const signSeconds = Number(process.hrtime.bigint() - tSign) / 1e9;
        ok(`${signedCommands.length} commands signed in ${signSeconds.toFixed(2)} s; every signature recorded in the key store's audit trail`);

        step('validate and counter-sign at the DCC (SQLite state, one process): role, portfolio, path, revocation, signature, replay, firmware, anomaly, ACB MAC');
        const validator = await Validator.open(await validatorOptions(state, 'main'));
        let accepted = 0;
        let frames: { device: Eui64; frame: Uint8Array }[] = [];
        const tValidate = process.hrtime.bigint();
        for (let i = 0; i < signedCommands.length; i += 256) {
          const batch: BatchCommand[] = signedCommands.slice(i, i + 256).map((c) => ({ bytes: c.bytes, sender: supplier }));
          const ds = await validator.validateBatch(batch);
          ds.forEach((d, j) => {
            count(d);
            if (d.outcome === 'accepted') {
              accepted++;
              frames.push({ device: signedCommands[i + j]!.device, frame: d.frame });
            }
          });
        }
        const seconds = Number(process.hrtime.bigint() - tValidate) / 1e9;
        const rate = signedCommands.length / seconds;
        (accepted === signedCommands.length ? ok : refused)(`${accepted} of ${signedCommands.length} accepted in ${seconds.toFixed(2)} s: ${p.bold(`${Math.round(rate).toLocaleString('en-GB')} commands/s`)}, each durable before its frame is released`);
        if (accepted !== signedCommands.length) failures++;

        step("the meters check the ACB MAC with their own key-agreement key");
        const acbPublic = state.acb().certificate.publicKeyBytes;
        let macOk = 0;
        for (const f of frames) if (verifyMac(f.frame, { privateKey: meterKeys.get(f.device)!, publicKey: acbPublic })) macOk++;
        const wrongMeter = frames.length > 1 && verifyMac(frames[0]!.frame, { privateKey: meterKeys.get(frames[frames.length - 1]!.device)!, publicKey: acbPublic });
        (macOk === frames.length && !wrongMeter ? ok : refused)(`${macOk} of ${frames.length} MACs verify on their meter; a frame checked by another meter ${wrongMeter ? 'VERIFIES (wrong)' : 'fails'}`);
        if (macOk !== frames.length || wrongMeter) failures++;
        frames = [];

        step('what the validator refuses, and why');
        const one = async (bytes: Uint8Array, sender: Eui64 = supplier) => (await validator.validateBatch([{ bytes, sender }]))[0];
        const nextCounter = () => counter++;
        // A stolen key: the north key file and the passphrase, used outside the key store.
        const stolenNorth = createKeySigner(createPrivateKey({ key: readFileSync(state.path('keystore', 'keys', `${supplier}.north.DS.g1.p8`), 'utf8'), format: 'pem', passphrase }));
        const m = south[0]!;
        const c1 = nextCounter();
        const good = await signPreCommand(buildDisableSupply({ fuel: 'electricity', originator: supplier, recipient: m, counter: c1 }), signFor(m, SUPPLY_COMMANDS.ECS43.messageCode, c1));
        const tampered = new Uint8Array(good);
        tampered[tampered.length - 70] = tampered[tampered.length - 70]! ^ 0x01;
        if (!expect(await one(tampered), 'ERR_COMMAND_SIGNATURE_INVALID', 'a command with one bit changed on the way')) failures++;
        if (!expect(await one(signedCommands[0]!.bytes), 'ERR_COMMAND_REPLAYED', 'a replay of an accepted disconnect')) failures++;
        const c2 = nextCounter();
        if (!expect(await one(await signPreCommand(buildDisableSupply({ fuel: 'electricity', originator: supplier, recipient: m, counter: c2 }), stolenNorth)), 'ERR_COMMAND_PORTFOLIO_MISMATCH', "a south meter's disconnect signed with the north portfolio's key")) failures++;
        const c3 = nextCounter();
        if (!expect(await one(await signPreCommand(buildDisableSupply({ fuel: 'electricity', originator: config.parties.networkOperator, recipient: m, counter: c3 }), networkOperatorSigner(state)), config.parties.networkOperator), 'ERR_COMMAND_ROLE_NOT_ELIGIBLE', "a network operator's remote disconnect")) failures++;
        const c4 = nextCounter();
        if (!expect(await one(await signPreCommand(buildDisableSupply({ fuel: 'electricity', originator: supplier, recipient: meterEui(0xfffff), counter: c4 }), stolenNorth)), 'ERR_COMMAND_UNKNOWN_DEVICE', 'a disconnect for a meter the DCC does not know')) failures++;
        const c5 = nextCounter();
        if (!expect(await one(await signPreCommand(buildActivateFirmware({ originator: supplier, recipient: m, counter: c5, imageHash: unapproved }), signFor(m, ACTIVATE_FIRMWARE_MESSAGE_CODE, c5))), 'ERR_FIRMWARE_NOT_APPROVED', 'a firmware activation of an unapproved image')) failures++;
        // A burst: more reconnects in a minute than the threshold allows.
        const burst: BatchCommand[] = [];
        for (let i = 0; i < RECONNECT_LIMIT + 10; i++) {
          const c = nextCounter();
          const d = north[i % north.length]!;
          burst.push({ bytes: await signPreCommand(buildEnableSupply({ originator: supplier, recipient: d, counter: c }), signFor(d, SUPPLY_COMMANDS.ECS42.messageCode, c)), sender: supplier });
        }
        const bd = await validator.validateBatch(burst);
        bd.forEach(count);
        const held = bd.filter((d) => d.outcome === 'quarantined').length;
        const passed = bd.filter((d) => d.outcome === 'accepted').length;
        (held === 10 && passed === RECONNECT_LIMIT ? refused : (s: string) => out(`  ${p.red('!')} ${s}`))(`a burst of ${burst.length} reconnects in a minute (threshold ${RECONNECT_LIMIT}): ${passed} accepted, ${held} ${p.bold('quarantined')} ERR_COMMAND_QUARANTINED for an operator to release or discard`);
        if (held !== 10 || passed !== RECONNECT_LIMIT) failures++;
        // A revoked key: signed before the revocation, presented after it.
        const c6 = nextCounter();
        const early = await signPreCommand(buildDisableSupply({ fuel: 'electricity', originator: supplier, recipient: m, counter: c6 }), signFor(m, SUPPLY_COMMANDS.ECS43.messageCode, c6));
        const southKey = (await ks.portfolio(supplier, 'south')).current.signing!;
        const info = await ks.revoke(southKey, 'keyCompromise');
        const rev = state.revocation();
        await state.issueCrls({ ...rev, entries: [...rev.entries, { serialNumber: info.serialNumber!, revocationDate: new Date().toISOString(), reason: 'keyCompromise', issuer: 'organisation-ca' }] });
        validator.updateTrust(state.trust());
        if (!expect(await one(early), 'ERR_COMMAND_SIGNER_REVOKED', `south's key revoked (CRL #${state.revocation().crlNumber}); a disconnect it signed before`)) failures++;
        await validator.close();

        step('the evidence');
        const v = await verifyAll(state);
        const logs = [v.keystore, ...(v.keystoreRows ? [v.keystoreRows] : []), ...v.decisionLogs];
        (logs.every((l) => l.ok) ? ok : refused)(`key store trail (${v.keystore.records} records, verified with its audit public key; every row against it) and decision log (${v.decisionLogs.reduce((n, l) => n + l.records, 0)} records): every record's chain and MAC ${logs.every((l) => l.ok) ? 'verify' : 'FAIL'}`);
        if (!logs.every((l) => l.ok)) failures++;

        const rows = [...tally].sort((a, b) => (a[0] === 'accepted' ? -1 : b[0] === 'accepted' ? 1 : a[0].localeCompare(b[0]))).map(([k, n]) => {
          const [outcome, code] = k.split(' ');
          return [outcome!, code ?? '-', n];
        });
        out('');
        out(table(['outcome', 'code', 'commands'], rows));
        out('');
        out(`${p.bold(`${Math.round(rate).toLocaleString('en-GB')} commands/s`)} validated and counter-signed (${signedCommands.length} commands, one process, SQLite, each committed durably); whole demo ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        out(failures === 0 ? `${p.green('✔')} every step behaved as expected` : `${p.red('✘')} ${failures} step(s) did not behave as expected`);
        if (o.keep !== undefined) {
          writeFileAtomic(join(dir, 'demo-passphrase'), `${passphrase}\n`);
          out(`state kept in ${dir}; its passphrase is in ${join(dir, 'demo-passphrase')} (use --passphrase-file with it)`);
        }
        return {
          json: { meters: 2 * perPortfolio, commands: signedCommands.length, seconds, commandsPerSecond: rate, outcomes: rows.map(([outcome, code, n]) => ({ outcome, code, commands: n })), failures, dir: o.keep !== undefined ? dir : undefined },
          exit: failures === 0 ? 'OK' : 'INTERNAL',
        };
      } finally {
        await state.close();
        if (o.keep === undefined) rmSync(join(dir, '..'), { recursive: true, force: true });
      }
    }),
  );
};
