// `smki recovery`: re-keying a portfolio's meters after a rotation or a compromise, run as a user
// runs smki, on a fresh state directory (GBCS CS02b: mode 2 signed with the key the meter still
// trusts, mode 8 from the Recovery party; docs/domain.md §9–§10). Each meter answers as
// docs/domain.md §9 describes (response CRA 02, same message code, one outcome per requested cell,
// signed with the meter's own DS key, whose certificate is in the device registry); a response
// that does not verify changes nothing; the south portfolio is never touched
// (docs/key-segregation.md).
import { createPrivateKey, generateKeyPairSync, sign as nodeSign, type KeyObject } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { concatBytes, fromHex, toHex } from '@smki/core';
import { buildGeneralSigning, CREDENTIALS_STATUS, decodeUpdateSecurityCredentialsCommand, encodeUpdateSecurityCredentialsResponse, parseMessage, signedBytes, verifySignature, type CellOutcome } from '@smki/gbcs';
import { issueDeviceCertificate, parseCertificate, type SmkiCertificate } from '@smki/pki';
import { deviceCa, euis } from './_devices.js';
import { initLab, PASSPHRASE, smki, steps } from './_smki.js';

const NORTH = euis('00DB123456780010', 4);
const SOUTH = euis('00DB123456790010', 2);
const RECOVERY_PARTY = '90B3D51F30000001';

interface LabMeter {
  readonly eui: string;
  readonly dsKey: KeyObject;
  readonly ds: SmkiCertificate;
  readonly ka: SmkiCertificate;
}

/** A lab with north (4 meters) and south (2), each with DS and KA keys certified; every meter with its DS and KA certificate in the registry. */
async function lab(): Promise<{ dir: string; meters: Map<string, LabMeter> }> {
  const dir = initLab();
  steps(dir, [
    ['portfolio', 'create', 'north'],
    ['portfolio', 'create', 'south'],
    ['key', 'generate', 'north', '--certify'],
    ['key', 'generate', 'north', '--purpose', 'keyAgreement', '--certify'],
    ['key', 'generate', 'south', '--certify'],
    ['key', 'generate', 'south', '--purpose', 'keyAgreement', '--certify'],
  ]);
  const issuer = deviceCa(dir);
  const meters = new Map<string, LabMeter>();
  const rows: string[] = [];
  for (const [portfolio, list] of [['north', NORTH], ['south', SOUTH]] as const) {
    for (const e of list) {
      const dsPair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const kaPair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const ds = await issueDeviceCertificate({ issuer, entityId: e, keyUsage: 'digitalSignature', publicKey: dsPair.publicKey });
      const ka = await issueDeviceCertificate({ issuer, entityId: e, keyUsage: 'keyAgreement', publicKey: kaPair.publicKey });
      meters.set(e, { eui: e, dsKey: dsPair.privateKey, ds, ka });
      rows.push([e, 'ESME', 'electricity', '', portfolio, Buffer.from(ka.der).toString('base64'), Buffer.from(ds.der).toString('base64')].join(','));
    }
  }
  const csv = join(dir, '..', 'devices.csv');
  writeFileSync(csv, `device,type,fuel,model,portfolio,ka_certificate,ds_certificate\n${rows.join('\n')}\n`);
  steps(dir, [['device', 'import', csv]]);
  return { dir, meters };
}

function json<T = Record<string, unknown>>(dir: string, args: readonly string[], expectStatus = 0): T {
  const r = smki(['--dir', dir, '--json', ...args]);
  expect(r.status, `smki ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`).toBe(expectStatus);
  return JSON.parse(r.stdout) as T;
}

/** The certificate a key store key was issued (certs/organisation/<serial>.pem). */
function keyCert(dir: string, keyId: string): SmkiCertificate {
  const keys = json<{ keyId: string; serialNumber: string }[]>(dir, ['key', 'list']);
  const k = keys.find((x) => x.keyId === keyId)!;
  return parseCertificate(readFileSync(join(dir, 'certs', 'organisation', `${k.serialNumber}.pem`), 'utf8'));
}

/** What a meter answers to a CS02b command: one outcome per requested cell (success), signed with `signWith` (default: its own DS key). */
function meterResponse(command: Uint8Array, oldCerts: Record<string, SmkiCertificate>, signWith: KeyObject): Uint8Array {
  const { payload, message } = decodeUpdateSecurityCredentialsCommand(command);
  const results: CellOutcome[] = payload.replacements.map((r) => {
    const old = oldCerts[r.cell.keyUsage]!;
    const next = parseCertificate(r.certificate);
    return { cell: r.cell, status: CREDENTIALS_STATUS.success, oldEntityId: old.entityId!, oldKeyId: old.subjectKeyId!, newEntityId: next.entityId!, newKeyId: next.subjectKeyId! };
  });
  const body = encodeUpdateSecurityCredentialsResponse({ outcome: { sequenceNumber: message.originatorCounter, mode: payload.mode, floorChanges: [], results } });
  const unsigned = buildGeneralSigning({ cra: 'response', originatorCounter: message.originatorCounter, originator: message.recipient, recipient: message.originator, messageCode: message.messageCode, payload: body, signatureField: 'empty' });
  const m = parseMessage(unsigned);
  const sig = nodeSign('sha256', signedBytes(m), { key: signWith, dsaEncoding: 'ieee-p1363' });
  return concatBytes(m.bytes.subarray(0, m.signedRange.end), Uint8Array.of(0x40), new Uint8Array(sig));
}

/** Everything smki shows of the south portfolio (keys, exposure, meters' credentials). */
function southView(dir: string): string {
  const keys = json<{ portfolioId: string }[]>(dir, ['key', 'list']).filter((k) => k.portfolioId === 'south');
  const portfolio = json<{ id: string }[]>(dir, ['portfolio', 'list']).filter((p) => p.id === 'south');
  const exposure = json<{ portfolioId: string }[]>(dir, ['portfolio', 'blast-radius']).filter((e) => e.portfolioId === 'south');
  const devices = SOUTH.map((d) => json(dir, ['device', 'show', d]));
  return JSON.stringify([keys, portfolio, exposure, devices]);
}

interface PlanJson {
  plan: { planId: string; route: string; state: string; oldKeys: Record<string, string>; newKeys: Record<string, string>; backend?: string; originator: string };
  meters: Record<string, { count: number; devices: string[] }>;
  warnings: string[];
  crlNumber?: string;
}
interface StatusJson {
  plan: { state: string };
  counts: Record<string, number>;
  remaining: Record<string, number>;
}
interface RecordJson {
  recorded: number;
  refused: number;
  planState: string;
  results: { line: number; device?: string; ok: boolean; outcomes?: { purpose: string; state: string; status: number }[]; error?: { code: string } }[];
}

describe('smki recovery: a rotation of the north portfolio (CS02b mode 2, GBCS 13.3.3.x credentials update)', () => {
  let dir: string;
  let meters: Map<string, LabMeter>;
  beforeAll(async () => {
    ({ dir, meters } = await lab());
  }, 300_000);

  it('plan → build → record (a forged response refused, nothing changed) → status: every meter replaced, the old keys retired, south untouched', () => {
    const south = southView(dir);
    const planned = json<PlanJson>(dir, ['recovery', 'plan', '--route', 'rotation', '--portfolio', 'north']);
    expect(planned.plan).toMatchObject({ route: 'rotation', state: 'in-progress', originator: '90B3D51F30010000' });
    expect(Object.keys(planned.plan.oldKeys)).toEqual(['signing', 'keyAgreement']);
    expect(planned.plan.newKeys.signing).not.toBe(planned.plan.oldKeys.signing);
    expect(planned.meters.signing).toEqual({ count: 4, devices: NORTH });
    expect(planned.meters.keyAgreement).toEqual({ count: 4, devices: NORTH });
    expect(planned.warnings).toEqual([]);
    const id = planned.plan.planId;
    const oldCerts = { digitalSignature: keyCert(dir, planned.plan.oldKeys.signing!), keyAgreement: keyCert(dir, planned.plan.oldKeys.keyAgreement!) };

    // Text output names the plan, the keys and the meters.
    const before = smki(['--dir', dir, 'recovery', 'status', id]);
    expect(before.status, before.stderr).toBe(0);
    expect(before.stdout).toContain(`plan ${id} (rotation, portfolio north) is in-progress`);

    // Build: two meters to a file, the rest to stdout as JSON lines.
    const out = join(dir, '..', 'batch.jsonl');
    const built = json<{ built: number; counts: Record<string, number> }>(dir, ['recovery', 'build', id, '--limit', '2', '--out', out]);
    expect(built).toMatchObject({ planId: id, built: 2, counts: { pending: 4, built: 4 } });
    // Without --out, stdout carries the JSON lines only (with --json too: no summary document mixed in).
    const rest = smki(['--dir', dir, '--json', 'recovery', 'build', id]);
    expect(rest.status, rest.stderr).toBe(0);
    expect(rest.stdout.trim().split('\n')).toHaveLength(2);
    const lines = [...readFileSync(out, 'utf8').trim().split('\n'), ...rest.stdout.trim().split('\n')].map((l) => JSON.parse(l) as { device: string; counter: string; purposes: string[]; command: string });
    expect(lines.map((l) => l.device)).toEqual(NORTH);
    for (const l of lines) {
      const { payload, message } = decodeUpdateSecurityCredentialsCommand(fromHex(l.command));
      expect(payload.mode).toBe(2);
      expect(message.recipient).toBe(l.device);
      expect(message.originatorCounter.toString()).toBe(l.counter);
      expect(l.purposes).toEqual(['signing', 'keyAgreement']);
    }
    expect(new Set(lines.map((l) => l.counter)).size).toBe(4);
    expect(json<StatusJson>(dir, ['recovery', 'status', id]).counts).toEqual({ pending: 0, built: 8, replaced: 0, failed: 0, escalated: 0 });

    // A response signed by another meter's key: refused, exit 1, nothing changed.
    const responses = lines.map((l) => toHex(meterResponse(fromHex(l.command), oldCerts, meters.get(l.device)!.dsKey)));
    const forged = toHex(meterResponse(fromHex(lines[0]!.command), oldCerts, meters.get(NORTH[1]!)!.dsKey));
    const forgedFile = join(dir, '..', 'forged.txt');
    writeFileSync(forgedFile, `${forged}\n`);
    const refused = json<RecordJson>(dir, ['recovery', 'record', id, forgedFile], 1);
    expect(refused).toMatchObject({ recorded: 0, refused: 1, planState: 'in-progress' });
    expect(refused.results[0]).toMatchObject({ line: 1, device: NORTH[0], ok: false, error: { code: 'ERR_RECOVERY_RESPONSE_SIGNATURE' } });
    expect(json<StatusJson>(dir, ['recovery', 'status', id])).toMatchObject({ counts: { built: 8, replaced: 0 }, remaining: { signing: 4, keyAgreement: 4 } });

    // The true responses: hex lines and JSON lines { device, response }.
    const respFile = join(dir, '..', 'responses.txt');
    writeFileSync(respFile, [responses[0], responses[1], JSON.stringify({ device: NORTH[2], response: responses[2] }), JSON.stringify({ device: NORTH[3], response: responses[3] })].join('\n'));
    const recorded = json<RecordJson>(dir, ['recovery', 'record', id, respFile]);
    expect(recorded).toMatchObject({ recorded: 4, refused: 0, planState: 'complete' });
    for (const [i, r] of recorded.results.entries()) {
      expect(r).toMatchObject({ line: i + 1, device: NORTH[i], ok: true });
      expect(r.outcomes).toEqual([
        { purpose: 'signing', state: 'replaced', status: 0 },
        { purpose: 'keyAgreement', state: 'replaced', status: 0 },
      ]);
    }
    // The same responses again answer no command awaiting one: refused, nothing changed.
    const again = json<RecordJson>(dir, ['recovery', 'record', id, respFile], 1);
    expect(again.refused).toBe(4);
    expect(again.results.every((r) => r.error?.code === 'ERR_RECOVERY_RESPONSE_UNMATCHED')).toBe(true);

    const done = json<StatusJson>(dir, ['recovery', 'status', id]);
    expect(done).toMatchObject({ plan: { state: 'complete' }, counts: { pending: 0, built: 0, replaced: 8, failed: 0, escalated: 0 }, remaining: { signing: 0, keyAgreement: 0 } });
    const keys = json<{ keyId: string; state: string }[]>(dir, ['key', 'list']);
    expect(keys.find((k) => k.keyId === planned.plan.oldKeys.signing)?.state).toBe('retired');
    expect(keys.find((k) => k.keyId === planned.plan.oldKeys.keyAgreement)?.state).toBe('retired');
    expect(keys.find((k) => k.keyId === planned.plan.newKeys.signing)?.state).toBe('active');
    // Each meter now trusts the new keys, in the key store and in the registry's supplier cell.
    const newSki = keyCert(dir, planned.plan.newKeys.signing!).subjectKeyId;
    for (const d of NORTH) {
      const show = json<{ portfolio: { installed: Record<string, string> }; registry: { cells: { role: number; keyUsage: string; ski: string }[] } }>(dir, ['device', 'show', d]);
      expect(JSON.stringify(show)).toContain(planned.plan.newKeys.signing!);
      expect(JSON.stringify(show)).toContain(newSki!);
    }
    const text = smki(['--dir', dir, 'recovery', 'status', id]);
    expect(text.stdout).toContain('every meter confirmed; the old keys are retired');
    // South: its keys, exposure and meters as they were.
    expect(southView(dir)).toBe(south);
  }, 300_000);

  it('refuses a rotation with --backend, a compromise without --backend or --recovery-party, and an unknown plan', () => {
    for (const args of [
      ['recovery', 'plan', '--route', 'rotation', '--portfolio', 'south', '--backend', 'standby'],
      ['recovery', 'plan', '--route', 'compromise', '--portfolio', 'south', '--recovery-party', RECOVERY_PARTY],
      ['recovery', 'plan', '--route', 'compromise', '--portfolio', 'south', '--backend', 'standby'],
      ['recovery', 'plan', '--route', 'sideways', '--portfolio', 'south'],
    ]) {
      const r = json<{ error: { code: string; exit: number } }>(dir, args, 2);
      expect(r.error).toMatchObject({ code: 'ERR_CLI_USAGE', exit: 2 });
    }
    const none = json<{ error: { code: string } }>(dir, ['recovery', 'status', '00000000000000000000000000000000'], 1);
    expect(none.error.code).toBe('ERR_RECOVERY_PLAN_NOT_FOUND');
    // Nothing of south was revoked by the refused compromise.
    expect(json<{ portfolioId: string; state: string }[]>(dir, ['key', 'list']).filter((k) => k.portfolioId === 'south').map((k) => k.state)).toEqual(['active', 'active']);
  }, 120_000);
});

describe('smki recovery: a compromise of the north portfolio (CS02b mode 8, docs/domain.md §9)', () => {
  let dir: string;
  beforeAll(async () => {
    ({ dir } = await lab());
  }, 300_000);

  it('revokes the stolen keys at once (a north command is then refused by smki command sign), makes the replacements in the named backend, and refuses to build without a Recovery party store', () => {
    // Before: a north meter's command is signed.
    const pre = join(dir, '..', 'pre.hex');
    steps(dir, [['command', 'build', 'disconnect', '--device', NORTH[0]!, '--out', pre], ['command', 'sign', '--in', pre, '--out', join(dir, '..', 'signed-before.hex')]]);
    const south = southView(dir);

    const r = smki(['--dir', dir, 'recovery', 'plan', '--route', 'compromise', '--portfolio', 'north', '--backend', 'standby', '--recovery-party', RECOVERY_PARTY]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/warning backend standby is a file backend in .*keystore-backends\/standby \(made now\)/);
    expect(r.stdout).toContain('the stolen key(s) are revoked now (keyCompromise)');
    const planId = /compromise plan ([0-9A-F]{32})/.exec(r.stdout)![1]!;
    const status = json<StatusJson & { plan: { oldKeys: Record<string, string>; newKeys: Record<string, string>; backend: string; originator: string } }>(dir, ['recovery', 'status', planId]);
    expect(status.plan).toMatchObject({ route: 'compromise', state: 'in-progress', backend: 'standby', originator: RECOVERY_PARTY });
    expect(status.remaining).toEqual({ signing: 4, keyAgreement: 4 });

    const keys = json<{ keyId: string; state: string; backend: string; serialNumber: string }[]>(dir, ['key', 'list']);
    const old = keys.find((k) => k.keyId === status.plan.oldKeys.signing)!;
    expect(old.state).toBe('revoked');
    expect(keys.find((k) => k.keyId === status.plan.oldKeys.keyAgreement)!.state).toBe('revoked');
    expect(keys.find((k) => k.keyId === status.plan.newKeys.signing)).toMatchObject({ state: 'active', backend: '@standby' });
    // The stolen key's certificate is on the new CRL.
    const verify = json<{ valid: boolean; findings: { code: string }[] }>(dir, ['cert', 'verify', old.serialNumber], 1);
    expect(JSON.stringify(verify)).toContain('REVOKED');

    // A north meter still trusts the stolen key: smki refuses to sign with it.
    const signed = smki(['--dir', dir, '--json', 'command', 'sign', '--in', pre, '--out', join(dir, '..', 'signed-after.hex')]);
    expect(signed.status, signed.stdout).not.toBe(0);
    expect(signed.stdout).toContain('ERR_KEY_REVOKED');
    // A south meter's command is still signed.
    const southPre = join(dir, '..', 'south-pre.hex');
    steps(dir, [['command', 'build', 'disconnect', '--device', SOUTH[0]!, '--out', southPre], ['command', 'sign', '--in', southPre, '--out', join(dir, '..', 'south-signed.hex')]]);

    // Build: no Recovery party key store in a state directory, so nothing is signed.
    const build = json<{ error: { code: string; message: string; hint: string; exit: number } }>(dir, ['recovery', 'build', planId], 5);
    expect(build.error).toMatchObject({ code: 'ERR_CLI_STATE_INVALID', exit: 5 });
    expect(build.error.message).toContain('no Recovery party key store');
    expect(build.error.hint).toContain('dual control');
    expect(json<StatusJson>(dir, ['recovery', 'status', planId]).counts).toEqual({ pending: 0, built: 0, replaced: 0, failed: 0, escalated: 0 });
    // The further backend is opened by every later command (the new keys stay usable): key list above, and south untouched.
    expect(southView(dir)).toBe(south);
  }, 300_000);
});

describe('smki recovery party: the Recovery party’s own key store, and a compromise built under its dual control (CS02b mode 8, docs/domain.md §9)', () => {
  let dir: string;
  let meters: Map<string, LabMeter>;
  let keys: string;
  const PARTY_PASS = 'the Recovery party: another passphrase entirely';
  const party = (args: readonly string[], expectStatus = 0, env: Record<string, string | undefined> = { SMKI_RECOVERY_PASSPHRASE: PARTY_PASS }) => {
    const r = smki(['--dir', dir, '--json', ...args], { env });
    expect(r.status, `smki ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`).toBe(expectStatus);
    return JSON.parse(r.stdout) as Record<string, any>;
  };
  const members = () => [
    '--member', `officer-a:${join(keys, 'a.pem.pub')}:signer@recovery,deviceManager`,
    '--member', `officer-b:${join(keys, 'b.pem.pub')}:signer@recovery`,
    '--member', `admin:${join(keys, 'admin.pem.pub')}:administrator@*`,
  ];
  beforeAll(async () => {
    ({ dir, meters } = await lab());
    keys = join(dir, '..', 'operator-keys');
    for (const k of ['a', 'b', 'admin']) {
      const r = smki(['operator', 'key', join(keys, `${k}.pem`), '--plain']);
      expect(r.status, r.stderr).toBe(0);
    }
  }, 300_000);

  it('party init refuses the supplier’s passphrase, no passphrase, and too few signers for dual control, and makes nothing', () => {
    const same = party(['recovery', 'party', 'init', ...members()], 2, { SMKI_RECOVERY_PASSPHRASE: PASSPHRASE });
    expect(same.error).toMatchObject({ code: 'ERR_CLI_USAGE' });
    expect(same.error.message).toContain("passphrase is the supplier's");
    const none = party(['recovery', 'party', 'init', ...members()], 5, { SMKI_RECOVERY_PASSPHRASE: undefined });
    expect(none.error).toMatchObject({ code: 'ERR_CLI_SECRET_MISSING' });
    const lone = party(['recovery', 'party', 'init', '--member', `officer-a:${join(keys, 'a.pem.pub')}:signer@recovery,deviceManager`, '--member', `admin:${join(keys, 'admin.pem.pub')}:administrator@*`], 2);
    expect(lone.error.message).toContain('at least 2 operators with signer');
    // Nothing was made: no directory, no party in smki.json, and show says so.
    expect(existsSync(join(dir, 'recovery-party'))).toBe(false);
    expect(JSON.parse(readFileSync(join(dir, 'smki.json'), 'utf8')).recoveryParty).toBeUndefined();
    expect(party(['recovery', 'party', 'show'], 5).error).toMatchObject({ code: 'ERR_CLI_STATE_INVALID' });
  }, 120_000);

  it('party init and show: its own directory and passphrase (the supplier’s neither opens it nor is accepted), a role 1 DS certificate, three operators; a second init refused', () => {
    const made = party(['recovery', 'party', 'init', ...members()]);
    expect(made.dir).toBe(join(dir, 'recovery-party'));
    expect(made.party).toMatchObject({ entityId: RECOVERY_PARTY, portfolioId: 'recovery', approvals: 1 });
    expect(made.certificate).toMatchObject({ role: 1 });
    expect(made.supplierKeystore).toBe(join(dir, 'keystore'));
    // The certificate is the validator's trust too, and it is what the party's file holds.
    const cert = parseCertificate(readFileSync(join(dir, 'recovery-party', 'recovery-ds.pem'), 'utf8'));
    expect(cert).toMatchObject({ role: 1, entityId: RECOVERY_PARTY, keyUsage: ['digitalSignature'] });
    expect(existsSync(join(dir, 'certs', 'organisation', `${cert.serialNumber}.pem`))).toBe(true);
    // Not the supplier's store: its own key store id, directory and key files, encrypted under its own passphrase.
    const partyKeys = readdirSync(join(dir, 'recovery-party', 'keystore')).filter((f) => f.endsWith('.p8'));
    expect(partyKeys).toHaveLength(1);
    expect(readdirSync(join(dir, 'keystore')).filter((f) => f.startsWith(RECOVERY_PARTY))).toEqual([]);
    const pem = readFileSync(join(dir, 'recovery-party', 'keystore', partyKeys[0]!), 'utf8');
    expect(() => createPrivateKey({ key: pem, format: 'pem', passphrase: PASSPHRASE })).toThrow();
    expect(createPrivateKey({ key: pem, format: 'pem', passphrase: PARTY_PASS }).asymmetricKeyType).toBe('ec');
    expect(readFileSync(join(dir, 'recovery-party', 'keystore', 'keystore.db')).equals(readFileSync(join(dir, 'keystore', 'keystore.db')))).toBe(false);

    const shown = party(['recovery', 'party', 'show']);
    expect(shown).toMatchObject({ dir: join(dir, 'recovery-party'), accessControlled: true, meters: 0, certificate: { serialNumber: cert.serialNumber, role: 1 } });
    expect(shown.party.storeId).not.toBe(party(['keystore', 'info']).storeId);
    expect(party(['keystore', 'info']).storeId).toMatch(/^[0-9a-fA-F]{16,}$/);
    expect(shown.operators.map((o: { operatorId: string }) => o.operatorId).sort()).toEqual(['admin', 'officer-a', 'officer-b']);
    // The supplier's passphrase is refused for it; another wrong one does not open it.
    expect(party(['recovery', 'party', 'show'], 2, { SMKI_RECOVERY_PASSPHRASE: PASSPHRASE }).error.code).toBe('ERR_CLI_USAGE');
    expect(party(['recovery', 'party', 'show'], 5, { SMKI_RECOVERY_PASSPHRASE: 'not the one' }).error.code).toBe('ERR_KEYSTORE_WRONG_PASSPHRASE');
    const text = smki(['--dir', dir, 'recovery', 'party', 'show'], { env: { SMKI_RECOVERY_PASSPHRASE: PARTY_PASS } });
    expect(text.stdout).toContain(`Recovery party ${RECOVERY_PARTY} (Remote Party Role 1)`);
    expect(text.stdout).toMatch(/officer-a\s+signer@90B3D51F30000001\/recovery deviceManager@90B3D51F30000001/);

    expect(party(['recovery', 'party', 'init', ...members()], 5).error.code).toBe('ERR_CLI_STATE_EXISTS');
  }, 120_000);

  it('a compromise of north: build refused without an approval and with the proposer’s own; built with another operator’s, signed by the Recovery party (mode 8); the meters’ answers recorded; south untouched', () => {
    const south = southView(dir);
    // --recovery-party defaults to the state directory's party.
    const planned = json<PlanJson>(dir, ['recovery', 'plan', '--route', 'compromise', '--portfolio', 'north', '--backend', 'standby']);
    expect(planned.plan).toMatchObject({ route: 'compromise', originator: RECOVERY_PARTY, backend: 'standby' });
    const id = planned.plan.planId;
    const oldCerts = { digitalSignature: keyCert(dir, planned.plan.oldKeys.signing!), keyAgreement: keyCert(dir, planned.plan.oldKeys.keyAgreement!) };
    const operator = ['--operator', 'officer-a', '--operator-key', join(keys, 'a.pem')];
    const nothingBuilt = { pending: 0, built: 0, replaced: 0, failed: 0, escalated: 0 };

    // No operator: a usage error before anything.
    expect(party(['recovery', 'build', id], 2).error.code).toBe('ERR_CLI_USAGE');
    // No approval: the party's store refuses to open the session; nothing is signed.
    const unapproved = party(['recovery', 'build', id, ...operator], 1);
    expect(unapproved.error).toMatchObject({ code: 'ERR_PROPOSAL_QUORUM_NOT_MET' });
    expect(unapproved.error.hint).toContain('--approver');
    expect(json<StatusJson>(dir, ['recovery', 'status', id]).counts).toMatchObject({ built: 0, replaced: 0 });
    // The proposer approving its own batch: refused.
    const own = party(['recovery', 'build', id, ...operator, '--approver', `officer-a:${join(keys, 'a.pem')}`], 2);
    expect(own.error.code).toBe('ERR_CLI_USAGE');
    expect(own.error.message).toContain('its own approval never counts');
    // The supplier's passphrase for the party: refused.
    expect(party(['recovery', 'build', id, ...operator, '--approver', `officer-b:${join(keys, 'b.pem')}`], 2, { SMKI_RECOVERY_PASSPHRASE: PASSPHRASE }).error.code).toBe('ERR_CLI_USAGE');
    expect(json<StatusJson>(dir, ['recovery', 'status', id]).counts).toMatchObject({ ...nothingBuilt, pending: 8 });

    // With officer-b's approval: every north meter's command, signed by the Recovery party.
    const out = join(dir, '..', 'compromise.jsonl');
    const built = party(['recovery', 'build', id, ...operator, '--approver', `officer-b:${join(keys, 'b.pem')}`, '--out', out]);
    expect(built).toMatchObject({ planId: id, built: 4, signedBy: RECOVERY_PARTY, counts: { pending: 0, built: 8 } });
    expect(built.proposals).toHaveLength(1);
    expect(built.proposals[0].commands).toBe(4);
    const partyCert = parseCertificate(readFileSync(join(dir, 'recovery-party', 'recovery-ds.pem'), 'utf8'));
    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { device: string; command: string });
    expect(lines.map((l) => l.device)).toEqual(NORTH);
    for (const l of lines) {
      const { payload, message } = decodeUpdateSecurityCredentialsCommand(fromHex(l.command));
      expect(payload.mode).toBe(8);
      expect(message.originator).toBe(RECOVERY_PARTY);
      expect(verifySignature(parseMessage(fromHex(l.command)), partyCert.publicKey!)).toBe(true);
      expect(verifySignature(parseMessage(fromHex(l.command)), oldCerts.digitalSignature.publicKey!)).toBe(false);
    }
    expect(party(['recovery', 'party', 'show']).meters).toBe(4);

    const respFile = join(dir, '..', 'compromise-responses.txt');
    writeFileSync(respFile, lines.map((l) => toHex(meterResponse(fromHex(l.command), oldCerts, meters.get(l.device)!.dsKey))).join('\n'));
    expect(json<RecordJson>(dir, ['recovery', 'record', id, respFile])).toMatchObject({ recorded: 4, refused: 0, planState: 'complete' });
    expect(json<StatusJson>(dir, ['recovery', 'status', id])).toMatchObject({ counts: { replaced: 8 }, remaining: { signing: 0, keyAgreement: 0 } });
    expect(southView(dir)).toBe(south);
  }, 300_000);
});
