/**
 * `smki demo`: the whole flow on the embedded defaults, in a temporary state directory. A test
 * hierarchy; one supplier with two portfolios of meters, each with its own key and certificate;
 * remote disconnects and firmware activations signed with the key each meter trusts; validated
 * and counter-signed (the ACB MAC); simulated meters check the MACs; then what the validator
 * refuses and why; then the north portfolio's key declared stolen: revoked at once, replaced in a
 * second backend, and north's meters re-keyed by CS02b mode 8 commands the Recovery party signs
 * from its own key store under dual control, the meters applying them and answering (device-signed
 * responses, verified and recorded), south untouched and the stolen key refused; a summary table
 * and the measured commands per second.
 * @module
 * @internal
 */
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { createKeySigner, isSmkiError, parseEui64, type Eui64, type Signer } from '@smki/core';
import { issueDeviceCertificate, type SmkiCertificate } from '@smki/pki';
import { KeyStore, type OperatorInfo } from '@smki/keystore';
import type { DeviceRecord, DeviceRegistry } from '@smki/store';
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
import { issueKeyCertificate, revokeCertificate } from './keys.js';
import { DEFAULT_RECOVERY_PARTY, openPlans } from './recovery.js';
import { assignToRecovery, createRecoveryParty, openRecoveryParty, recoverySigning, RECOVERY_PARTY_DIR, RECOVERY_PORTFOLIO, type RecoveryParty } from '../recovery-party.js';
import { DemoMeter } from '../demo-meter.js';
import type { Operator } from '../access.js';

const MODEL = 'ACME-ESME-1';
/** Reconnects (ECS42) a User may send per minute before the rest are held (the demo's threshold). */
const RECONNECT_LIMIT = 20;

/** The key store's second backend the replacement of a stolen key is made in. */
const STANDBY = 'standby';
/** The cells the demo's meters hold for the supplier and the Recovery party. */
const SUPPLIER_DS = { role: 2, keyUsage: 'digitalSignature' } as const;
const RECOVERY_DS = { role: 1, keyUsage: 'digitalSignature' } as const;

/** An operator of the demo's Recovery party: a fresh P-256 key, in memory only. */
function demoOperator(operatorId: string): Operator {
  return { operatorId, signer: createKeySigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey) };
}

/** Everything the toolkit shows of a portfolio: its keys, the meters trusting its key, its exposure, and its meters' registry cells (a before/after comparison). */
async function portfolioView(ks: KeyStore, registry: DeviceRegistry, organisation: Eui64, portfolioId: string, meters: readonly Eui64[]): Promise<string> {
  const portfolio = await ks.portfolio(organisation, portfolioId);
  const keys = (await ks.keys(organisation)).filter((k) => k.portfolioId === portfolioId);
  const trusting: string[] = [];
  for (let after: string | undefined; ; ) {
    const page = await ks.devicesTrusting(portfolio.current.signing!, { limit: 10_000, ...(after !== undefined ? { after } : {}) });
    trusting.push(...page.devices);
    if (page.next === undefined) break;
    after = page.next;
  }
  const exposure = (await ks.exposureReport(organisation)).filter((e) => e.portfolioId === portfolioId);
  const cells = [];
  for (const d of meters) cells.push((await registry.device(d))?.cells);
  return JSON.stringify([portfolio, keys, trusting, exposure, cells]);
}

/**
 * What the validator answers for the stolen key once the north meters are re-keyed: their supplier
 * cell (in the DCC's registry) names the new key, so a command signed with the stolen one is not
 * signed with the key the meter trusts, whatever its revocation.
 */
const STOLEN_AFTER_CODE = 'ERR_COMMAND_PORTFOLIO_MISMATCH';

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
      // The Recovery party's own passphrase (never the supplier's), likewise.
      const recoveryPassphrase = randomBytes(24).toString('base64url');
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
      // The key store's second backend (a file backend of its own): where a stolen key's replacement is made.
      state.addFurtherBackend(STANDBY);
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
      const recovery: Record<string, unknown> = {};
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

        step(`${2 * perPortfolio} meters: key-agreement and digital-signature certificates from the device CA, registered, assigned to their portfolio`);
        const meterKeys = new Map<Eui64, KeyObject>();
        const meterDs = new Map<Eui64, SmkiCertificate>();
        const meters = new Map<Eui64, DemoMeter>();
        const anchors = { root: state.hierarchy().root.certificate, acbPublicKey: state.acb().certificate.publicKeyBytes };
        const inputs = [];
        for (let i = 0; i < 2 * perPortfolio; i++) {
          const d = meterEui(i);
          const k = newKeyPair();
          const dsPair = newKeyPair();
          meterKeys.set(d, k.privateKey);
          const ka = await issueDeviceCertificate({ issuer: state.hierarchy().deviceCa, entityId: d, keyUsage: 'keyAgreement', publicKey: k.publicKey });
          const ds = await issueDeviceCertificate({ issuer: state.hierarchy().deviceCa, entityId: d, keyUsage: 'digitalSignature', publicKey: dsPair.publicKey });
          meterDs.set(d, ds);
          const portfolio = i < perPortfolio ? 'north' : 'south';
          // The meter's own cells: the root, the ACB, and its supplier's signing key (its portfolio's).
          const meter = new DemoMeter(d, { ds: dsPair.privateKey, ka: k.privateKey }, anchors);
          meter.install(SUPPLIER_DS, portfolioCert[portfolio]!);
          meters.set(d, meter);
          inputs.push({ device: d, type: 'ESME' as const, fuel: 'electricity' as const, model: MODEL, portfolio, kaCertificate: ka, dsCertificate: ds });
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

        step("the north portfolio's key is declared stolen: revoked at once, replaced in a second backend, north's meters re-keyed by the Recovery party (CS02b mode 8); south untouched");
        const tRecovery = process.hrtime.bigint();
        const { registry } = await state.stores();
        // Signed with north's key before the theft is declared, presented after.
        const cEarly = nextCounter();
        const earlyNorth = await signPreCommand(buildDisableSupply({ fuel: 'electricity', originator: supplier, recipient: north[1 % north.length]!, counter: cEarly }), signFor(north[1 % north.length]!, SUPPLY_COMMANDS.ECS43.messageCode, cEarly));
        // The Recovery party: its own key store, passphrase and operators (a signing session needs
        // an approval by an operator other than its proposer); every meter holds its key in the recovery cell.
        const recoveryEui = parseEui64(DEFAULT_RECOVERY_PARTY);
        const proposer = demoOperator('recovery-service');
        const approver = demoOperator('duty-officer');
        const admin = demoOperator('admin');
        const member = (o: Operator, grants: OperatorInfo['grants']): OperatorInfo => ({ operatorId: o.operatorId, publicKey: o.signer.publicKey, grants });
        const signerGrant = { role: 'signer' as const, organisation: recoveryEui, portfolioId: RECOVERY_PORTFOLIO };
        await createRecoveryParty(state, {
          entityId: recoveryEui,
          passphrase: recoveryPassphrase,
          approvals: 1,
          operators: [member(proposer, [signerGrant, { role: 'deviceManager', organisation: recoveryEui }]), member(approver, [signerGrant]), member(admin, [{ role: 'administrator', organisation: '*' }])],
        });
        const party: RecoveryParty = await openRecoveryParty(state, recoveryPassphrase);
        try {
          await assignToRecovery(party, proposer, devices);
          for (const meter of meters.values()) meter.install(RECOVERY_DS, party.certificate);
          // The DCC's registry names the recovery cell of every meter too (the validator checks a mode 8 signer against it).
          const withRecovery: DeviceRecord[] = [];
          for (const d of devices) {
            const reg = await registry.device(d);
            if (reg !== undefined) withRecovery.push({ ...reg, cells: [...reg.cells.filter((x) => x.role !== 1), { role: 1, keyUsage: 'digitalSignature', cellUsage: 'management', ski: party.certificate.subjectKeyId!, entity: recoveryEui }] });
          }
          await registry.put(withRecovery);
          validator.updateTrust(state.trust());
          const southBefore = await portfolioView(ks, registry, supplier, 'south', south);
          const southKeyBefore = portfolioCert.south!.subjectKeyId!;
          ok(`Recovery party ${recoveryEui}: its own key store in ${relative(dir, party.dir)}/ (its own passphrase; operators ${proposer.operatorId}, ${approver.operatorId}, ${admin.operatorId}), DS certificate ${party.certificate.serialNumber} (role 1); all ${devices.length} meters hold it in their recovery cell`);

          const plans = await openPlans(state, ks);
          try {
            const planned = await plans.planCompromise({ organisation: supplier, portfolioId: 'north', recoveryParty: recoveryEui, backend: STANDBY, purposes: ['signing'] });
            const planId = planned.plan.planId;
            const oldKey = planned.plan.oldKeys.signing!;
            const newKey = planned.plan.newKeys.signing!;
            const crlNumber = await revokeCertificate(state, await ks.key(oldKey), 'keyCompromise');
            const newCert = await issueKeyCertificate(state, await ks.key(newKey), planned.csrs.signing!);
            state.saveCertificate(newCert);
            await plans.attachCertificates(planId, { certificates: { signing: newCert.der }, certificationPath: [state.hierarchy().organisationCa.certificate] });
            validator.updateTrust(state.trust());
            const remainingBefore = (await plans.status(planId)).remaining.signing ?? 0;
            ok(`north's key ${oldKey} revoked at once (keyCompromise; its certificate on CRL #${crlNumber ?? '?'}); replacement ${newKey} made in backend ${STANDBY} (${relative(dir, state.path('keystore-backends', STANDBY))}/), certificate ${newCert.serialNumber}; ${remainingBefore} meters still trust the stolen key`);
            const c7 = nextCounter();
            if (!expect(await one(await signPreCommand(buildDisableSupply({ fuel: 'electricity', originator: supplier, recipient: north[0]!, counter: c7 }), stolenNorth)), 'ERR_COMMAND_SIGNER_REVOKED', "the thief's copy of north's key signs a disconnect for a north meter")) failures++;
            if (!expect(await one(earlyNorth), 'ERR_COMMAND_SIGNER_REVOKED', "a disconnect north's key signed before the theft was declared")) failures++;

            // Without the duty officer's approval the party's store signs nothing.
            let unapproved = 'signed (wrong)';
            try {
              await plans.buildBatch(planId, { limit: Math.min(500, perPortfolio), recovery: recoverySigning(party, proposer, []) });
            } catch (e) {
              unapproved = isSmkiError(e) ? e.code : String(e);
            }
            (unapproved === 'ERR_PROPOSAL_QUORUM_NOT_MET' ? refused : (t: string) => out(`  ${p.red('!')} ${t}`))(`the mode 8 batch proposed by ${proposer.operatorId} without another operator's approval: the Recovery party's store refuses to sign: ${p.bold(unapproved)}`);
            if (unapproved !== 'ERR_PROPOSAL_QUORUM_NOT_MET') failures++;

            const tBuild = process.hrtime.bigint();
            const sessions: number[] = [];
            const signing = recoverySigning(party, proposer, [approver], (x) => sessions.push(x.commands.length));
            const built = [];
            for (;;) {
              const b = await plans.buildBatch(planId, { limit: 500, recovery: signing });
              if (b.length === 0) break;
              built.push(...b);
            }
            const buildSeconds = Number(process.hrtime.bigint() - tBuild) / 1e9;
            (built.length === north.length ? ok : refused)(`${built.length} mode 8 commands for north's meters signed by the Recovery party in ${buildSeconds.toFixed(2)} s: ${sessions.length} signing session(s), each bound to exactly its commands, proposed by ${proposer.operatorId} and approved by ${approver.operatorId}`);
            if (built.length !== north.length) failures++;

            // The DCC validates them as any critical command (the Recovery party's role 1 certificate,
            // each meter's recovery cell in the registry, replay, anomaly) and counter-signs them (ACB MAC).
            const delivered: { device: Eui64; frame: Uint8Array }[] = [];
            for (let i = 0; i < built.length; i += 256) {
              const chunk = built.slice(i, i + 256);
              const ds = await validator.validateBatch(chunk.map((c) => ({ bytes: c.command, sender: recoveryEui })));
              ds.forEach((d, j) => {
                count(d);
                if (d.outcome === 'accepted') delivered.push({ device: chunk[j]!.device, frame: d.frame });
              });
            }
            (delivered.length === built.length ? ok : refused)(`${delivered.length} of ${built.length} accepted and counter-signed at the DCC (the signer checked against the Recovery party's role 1 certificate and each meter's recovery cell)`);
            if (delivered.length !== built.length) failures++;

            // The meters apply them and answer.
            const responses: { device: Eui64; response: Uint8Array }[] = [];
            const refusedBy: string[] = [];
            for (const c of delivered) {
              const a = meters.get(c.device)!.applyCredentials(c.frame);
              if (a.ok) responses.push({ device: c.device, response: a.response });
              else refusedBy.push(`${c.device}: ${a.reason}`);
            }
            const first = delivered[0];
            const replay = first === undefined ? undefined : meters.get(first.device)!.applyCredentials(first.frame);
            const elsewhere = first === undefined ? undefined : meters.get(south[0]!)!.applyCredentials(first.frame);
            const meterOk = responses.length === built.length && replay?.ok === false && elsewhere?.ok === false;
            (meterOk ? ok : refused)(`${responses.length} of ${built.length} north meters applied their command (the ACB MAC checked with their key-agreement key, the Recovery party's signature with their recovery cell, the new certificate with their root) and answered, signed with their own DS key; the same frame again is refused (${replay?.ok === false ? replay.reason : 'APPLIED (wrong)'}), and by a south meter (${elsewhere?.ok === false ? elsewhere.reason : 'APPLIED (wrong)'})`);
            if (!meterOk) failures++;
            if (refusedBy.length > 0) out(`  ${p.red('!')} refused by ${refusedBy.slice(0, 3).join('; ')}`);

            // Each response believed only once its device signature verifies (recordResponse), then the registry follows.
            let recorded = 0;
            const moved: DeviceRecord[] = [];
            const recordOne = async (r: { device: Eui64; response: Uint8Array }): Promise<void> => {
              const rec = await plans.recordResponse(planId, r.response, { deviceCertificate: meterDs.get(r.device)! });
              if (rec.outcomes.every((x) => x.state === 'replaced')) recorded++;
              const reg = await registry.device(r.device);
              if (reg !== undefined) moved.push({ ...reg, cells: reg.cells.map((x) => (x.role === 2 && x.keyUsage === 'digitalSignature' ? { ...x, ski: newCert.subjectKeyId! } : x)) });
            };
            // 32 at a time (their durable commits overlap); the last one alone, after the others,
            // so that exactly one response finds every meter replaced and completes the plan.
            const last = responses.length - 1;
            for (let i = 0; i < last; i += 32) await Promise.all(responses.slice(i, Math.min(i + 32, last)).map(recordOne));
            if (last >= 0) await recordOne(responses[last]!);
            await registry.put(moved);
            const after = await plans.status(planId);
            const history = await plans.verifyPlanHistory();
            const done = recorded === north.length && (after.remaining.signing ?? -1) === 0 && after.plan.state === 'complete' && history.ok;
            (done ? ok : refused)(`${recorded} responses recorded, each verified with its meter's DS certificate (chained to the root): meters still trusting the stolen key ${remainingBefore} → ${p.bold(String(after.remaining.signing ?? 0))}; plan ${after.plan.state}; its history (${history.events} events) ${history.ok ? 'verifies' : 'FAILS'}`);
            if (!done) failures++;

            const southAfter = await portfolioView(ks, registry, supplier, 'south', south);
            const southCells = south.every((d) => meters.get(d)!.keyIdIn(SUPPLIER_DS) === southKeyBefore);
            const southSame = southAfter === southBefore && southCells;
            const southKey = (await ks.portfolio(supplier, 'south')).current.signing!;
            (southSame ? ok : refused)(`south untouched: key ${southKey}, certificate ${portfolioCert.south!.serialNumber}, its ${south.length} meters trusting it and their cells ${southSame ? 'exactly as before' : 'CHANGED'}`);
            if (!southSame) failures++;

            // Afterwards: the stolen key refused; north's new key accepted.
            const c8 = nextCounter();
            const stolenAgain = await one(await signPreCommand(buildDisableSupply({ fuel: 'electricity', originator: supplier, recipient: north[2 % north.length]!, counter: c8 }), stolenNorth));
            if (!expect(stolenAgain, STOLEN_AFTER_CODE, "the stolen key again, now that north's meters trust the new one")) failures++;
            const c9 = nextCounter();
            const fresh = await one(await signPreCommand(buildDisableSupply({ fuel: 'electricity', originator: supplier, recipient: north[3 % north.length]!, counter: c9 }), signFor(north[3 % north.length]!, SUPPLY_COMMANDS.ECS43.messageCode, c9)));
            if (fresh !== undefined) count(fresh);
            (fresh?.outcome === 'accepted' ? ok : refused)(`a north meter's disconnect signed with its new key: ${fresh?.outcome ?? 'no decision'}${fresh !== undefined && fresh.outcome !== 'accepted' ? ` ${fresh.code}` : ''}`);
            if (fresh?.outcome !== 'accepted') failures++;
            Object.assign(recovery, {
              planId,
              party: recoveryEui,
              stolenKey: oldKey,
              newKey,
              backend: STANDBY,
              crlNumber,
              commands: built.length,
              sessions: sessions.length,
              applied: responses.length,
              recorded,
              remainingBefore,
              remainingAfter: after.remaining.signing ?? 0,
              planState: after.plan.state,
              southUntouched: southSame,
              seconds: Number(process.hrtime.bigint() - tRecovery) / 1e9,
            });
          } finally {
            await plans.close();
          }
        } finally {
          await party.close();
        }
        await validator.close();

        step('the evidence');
        const v = await verifyAll(state);
        const logs = [v.keystore, ...(v.keystoreRows ? [v.keystoreRows] : []), ...v.decisionLogs];
        (logs.every((l) => l.ok) ? ok : refused)(`key store trail (${v.keystore.records} records, verified with its audit public key; every row against it) and decision log (${v.decisionLogs.reduce((n, l) => n + l.records, 0)} records): every record's chain and MAC ${logs.every((l) => l.ok) ? 'verify' : 'FAIL'}`);
        if (!logs.every((l) => l.ok)) failures++;
        // The Recovery party's own trail, verified with its own audit public key (no passphrase).
        const partyTrail = await KeyStore.verifyAuditTrail({ directory: join(state.path(RECOVERY_PARTY_DIR), 'keystore'), auditPublicKey: Buffer.from(readFileSync(state.path(RECOVERY_PARTY_DIR, 'audit-public-key.hex'), 'utf8').trim(), 'hex') });
        (partyTrail.ok ? ok : refused)(`the Recovery party's trail (${partyTrail.count} records, verified with its own audit public key): ${partyTrail.ok ? 'verifies' : 'FAILS'}`);
        if (!partyTrail.ok) failures++;

        const rows = [...tally].sort((a, b) => (a[0] === 'accepted' ? -1 : b[0] === 'accepted' ? 1 : a[0].localeCompare(b[0]))).map(([k, n]) => {
          const [outcome, code] = k.split(' ');
          return [outcome!, code ?? '-', n];
        });
        out('');
        out(table(['outcome', 'code', 'commands'], rows));
        out('');
        out(`${p.bold(`${Math.round(rate).toLocaleString('en-GB')} commands/s`)} validated and counter-signed (${signedCommands.length} commands, one process, SQLite, each committed durably); whole demo ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        out(`recovery: ${String(recovery.recorded)} of ${north.length} north meters re-keyed from the stolen key through the Recovery party in ${Number(recovery.seconds).toFixed(1)} s (plan ${String(recovery.planState)}; meters still trusting the stolen key: ${String(recovery.remainingAfter)}); south ${recovery.southUntouched === true ? 'untouched' : 'CHANGED'}`);
        out(failures === 0 ? `${p.green('✔')} every step behaved as expected` : `${p.red('✘')} ${failures} step(s) did not behave as expected`);
        if (o.keep !== undefined) {
          writeFileAtomic(join(dir, 'demo-passphrase'), `${passphrase}\n`);
          writeFileAtomic(join(dir, 'demo-recovery-passphrase'), `${recoveryPassphrase}\n`);
          out(`state kept in ${dir}; its passphrase is in ${join(dir, 'demo-passphrase')} (use --passphrase-file with it), the Recovery party's in ${join(dir, 'demo-recovery-passphrase')} (--recovery-passphrase-file)`);
        }
        return {
          json: { meters: 2 * perPortfolio, commands: signedCommands.length, seconds, commandsPerSecond: rate, outcomes: rows.map(([outcome, code, n]) => ({ outcome, code, commands: n })), recovery, failures, dir: o.keep !== undefined ? dir : undefined },
          exit: failures === 0 ? 'OK' : 'INTERNAL',
        };
      } finally {
        await state.close();
        if (o.keep === undefined) rmSync(join(dir, '..'), { recursive: true, force: true });
      }
    }),
  );
};
