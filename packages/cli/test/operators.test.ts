// The key store's access control at the command line (docs/keystore-estate.md §2): operator keys,
// the initialisation ceremony, signed requests with the operator's next counter, roles per
// portfolio, M-of-N dual control (propose, approve, execute), request files run once, and signing
// sessions. Real stores, real signatures, each refusal with its code and nothing changed.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initLab, smki, steps, tempDir, type SmkiResult } from './_smki.js';

const SUPPLIER = '90B3D51F30010000';
const M1 = '00DB123456789001';
const M2 = '00DB123456789002';
const OPERATOR_PASSPHRASE = 'operator passphrase: tr0ub4dor&3';

let lab: string;
let keys: string;
const run = (args: readonly string[], env: Record<string, string | undefined> = {}): SmkiResult => smki(['--dir', lab, ...args], { env: { SMKI_OPERATOR_PASSPHRASE: OPERATOR_PASSPHRASE, ...env } });
const as = (id: string): string[] => ['--operator', id, '--operator-key', join(keys, `${id}.key.pem`)];
const ok = (args: readonly string[]): SmkiResult => {
  const r = run(args);
  expect(r.status, `smki ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r;
};
const json = <T>(args: readonly string[]): T => JSON.parse(ok([...args, '--json']).stdout) as T;
/** A refusal: its exit status and code (the JSON error document). */
const refused = (args: readonly string[], code: string, status = 1, env: Record<string, string | undefined> = {}): { code: string; message: string; hint: string } => {
  const r = run([...args, '--json'], env);
  expect(r.status, `smki ${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(status);
  const e = (JSON.parse(r.stdout) as { error: { code: string; message: string; hint: string } }).error;
  expect(e.code, e.message).toBe(code);
  return e;
};
const lastCounter = (id: string): number => Number(json<{ operators: { operatorId: string; lastCounter: string }[] }>(['operator', 'list']).operators.find((o) => o.operatorId === id)!.lastCounter);
const keyState = (keyId: string): string | undefined => json<{ keyId: string; state: string }[]>(['key', 'list']).find((k) => k.keyId === keyId)?.state;

const OPERATORS = {
  admin: 'administrator@*',
  admin2: 'administrator@*',
  alice: 'custodian@north',
  bob: 'custodian@north',
  erin: 'custodian@north',
  carol: 'custodian@south',
  gwen: 'custodian',
  hank: 'custodian',
  dave: 'deviceManager',
  svc: 'signer@north',
  xsvc: 'signer@duis,signer@north',
};

beforeAll(() => {
  lab = initLab();
  keys = tempDir('smki-operators-');
  steps(lab, [
    ['portfolio', 'create', 'north'],
    ['key', 'generate', 'north', '--certify'],
    ['portfolio', 'create', 'south'],
    ['key', 'generate', 'south', '--certify'],
    ['device', 'add', M1, '--portfolio', 'north', '--simulate'],
    ['device', 'add', M2, '--portfolio', 'south', '--simulate'],
  ]);
  for (const id of [...Object.keys(OPERATORS), 'frank']) ok(['operator', 'key', join(keys, `${id}.key.pem`)]);
  // Revoking a key needs two approvals; generating one, adding and removing an operator one; the rest none.
  const policy = { v: 1, rules: [{ operation: 'key.revoke', approvals: 2 }, { operation: 'key.generate', approvals: 1 }, { operation: 'operator.add', approvals: 1 }, { operation: 'operator.remove', approvals: 1 }] };
  writeFileSync(join(keys, 'policy.json'), JSON.stringify(policy));
  const members = Object.entries(OPERATORS).flatMap(([id, grant]) => ['--member', `${id}:${join(keys, `${id}.key.pem.pub`)}:${grant}`]);
  ok(['operator', 'init', ...members, '--policy', join(keys, 'policy.json')]);
}, 300_000);

describe('smki operator key', () => {
  it('writes the private key encrypted, mode 0600, and its public key; never overwrites; refuses without a passphrase', () => {
    const file = join(keys, 'alice.key.pem');
    expect(readFileSync(file, 'utf8')).toContain('-----BEGIN ENCRYPTED PRIVATE KEY-----');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(`${file}.pub`, 'utf8')).toContain('-----BEGIN PUBLIC KEY-----');
    refused(['operator', 'key', file], 'ERR_CLI_INPUT_INVALID');
    const r = smki(['operator', 'key', join(keys, 'nobody.key.pem'), '--json']);
    expect(r.status).toBe(5);
    expect((JSON.parse(r.stdout) as { error: { code: string } }).error.code).toBe('ERR_CLI_SECRET_MISSING');
    // The key does not open with another passphrase.
    refused(['portfolio', 'create', 'east', ...as('admin')], 'ERR_CLI_SECRET_MISSING', 5, { SMKI_OPERATOR_PASSPHRASE: 'not the passphrase' });
    refused(['portfolio', 'create', 'east', ...as('admin')], 'ERR_CLI_SECRET_MISSING', 5, { SMKI_OPERATOR_PASSPHRASE: undefined });
  }, 300_000);
});

describe('under access control', () => {
  it('a change without an operator is refused (ERR_OPERATOR_REQUIRED, what to do) and nothing changes', () => {
    const e = refused(['portfolio', 'create', 'east'], 'ERR_OPERATOR_REQUIRED');
    expect(e.hint).toContain('--operator ID --operator-key FILE');
    refused(['key', 'revoke', `${SUPPLIER}.south.DS.g1`], 'ERR_OPERATOR_REQUIRED');
    const text = run(['device', 'updated', M1]);
    expect(text.status).toBe(1);
    expect(text.stderr).toMatch(/ERR_OPERATOR_REQUIRED[\s\S]*--operator ID --operator-key FILE/);
    expect(json<{ id: string }[]>(['portfolio', 'list']).map((p) => p.id)).not.toContain('east');
    expect(keyState(`${SUPPLIER}.south.DS.g1`)).toBe('active');
    // Signing too: outside a session the store signs nothing.
    ok(['command', 'build', 'disconnect', '--device', M1, '--out', join(keys, 'pre-none.hex')]);
    refused(['command', 'sign', '--in', join(keys, 'pre-none.hex')], 'ERR_OPERATOR_REQUIRED');
  }, 300_000);

  it('a request signed by an operator without the role, or with another operator key, is refused and nothing changes', () => {
    const before = lastCounter('carol');
    // Carol is custodian of south only; Alice has no administrator grant.
    refused(['key', 'retire', `${SUPPLIER}.north.DS.g1`, ...as('carol')], 'ERR_OPERATOR_FORBIDDEN');
    refused(['portfolio', 'create', 'east', ...as('alice')], 'ERR_OPERATOR_FORBIDDEN');
    expect(keyState(`${SUPPLIER}.north.DS.g1`)).toBe('active');
    expect(json<{ id: string }[]>(['portfolio', 'list']).map((p) => p.id)).not.toContain('east');
    expect(lastCounter('carol')).toBe(before);
    // Alice's id with Bob's key: the signature does not verify under Alice's key.
    refused(['key', 'csr', `${SUPPLIER}.north.DS.g1`, '--operator', 'alice', '--operator-key', join(keys, 'bob.key.pem')], 'ERR_OPERATOR_SIGNATURE_INVALID');
  }, 300_000);

  it('each signed request takes the next counter: an administrator creates a portfolio', () => {
    const before = lastCounter('admin');
    const p = json<{ id: string; organisation: string }>(['portfolio', 'create', 'west', ...as('admin')]);
    expect(p).toMatchObject({ id: 'west', organisation: SUPPLIER });
    expect(lastCounter('admin')).toBe(before + 1);
  }, 300_000);

  it('a signed request file runs once: run again, it is refused (ERR_OPERATOR_REPLAYED) and changes nothing', () => {
    const file = join(keys, 'create-east.json');
    const w = json<{ written: boolean; counter: string }>(['portfolio', 'create', 'east', ...as('admin'), '--request-out', file]);
    expect(w.written).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // Written, not run.
    expect(json<{ id: string }[]>(['portfolio', 'list']).map((p) => p.id)).not.toContain('east');
    expect(json<{ executed: boolean }>(['request', 'submit', file]).executed).toBe(true);
    expect(json<{ id: string }[]>(['portfolio', 'list']).map((p) => p.id)).toContain('east');
    const counter = lastCounter('admin');
    expect(counter).toBe(Number(w.counter));
    refused(['request', 'submit', file], 'ERR_OPERATOR_REPLAYED');
    expect(lastCounter('admin')).toBe(counter);
    // A file changed after it was signed is refused too.
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { request: { operation: { portfolioId: string }; counter: string } };
    doc.request.operation.portfolioId = 'east2';
    doc.request.counter = String(counter + 1);
    writeFileSync(file, JSON.stringify(doc));
    refused(['request', 'submit', file], 'ERR_OPERATOR_SIGNATURE_INVALID');
    expect(json<{ id: string }[]>(['portfolio', 'list']).map((p) => p.id)).not.toContain('east2');
  }, 300_000);

  it('a revocation under two-approval dual control: refused directly, not run with one approval, run with two', () => {
    const southKey = `${SUPPLIER}.south.DS.g1`;
    refused(['key', 'revoke', southKey, ...as('carol')], 'ERR_APPROVAL_REQUIRED');
    const proposed = json<{ proposed: boolean; proposal: { proposalId: string; operationHash: string; proposer: string } }>(['key', 'revoke', southKey, ...as('carol'), '--propose']);
    expect(proposed.proposed).toBe(true);
    const id = proposed.proposal.proposalId;
    expect(json<{ state: string; proposer: string; operation: { op: string; keyId: string } }>(['proposal', 'show', id])).toMatchObject({ state: 'open', proposer: 'carol', operation: { op: 'key.revoke', keyId: southKey } });
    // The proposer never counts; a custodian of north, or an administrator, may not approve the revocation of a south key.
    refused(['approve', id, ...as('carol')], 'ERR_APPROVAL_DUPLICATE');
    refused(['approve', id, ...as('alice')], 'ERR_APPROVAL_INVALID');
    refused(['approve', id, ...as('admin')], 'ERR_APPROVAL_INVALID');
    expect(json<{ required: number; approvers: string[]; met: boolean }>(['approve', id, ...as('gwen')])).toMatchObject({ required: 2, approvers: ['gwen'], met: false });
    refused(['approve', id, ...as('gwen')], 'ERR_APPROVAL_DUPLICATE');
    // One approval of two: not run, the key still signs.
    refused(['key', 'revoke', southKey, ...as('carol'), '--proposal', id], 'ERR_PROPOSAL_QUORUM_NOT_MET');
    expect(keyState(southKey)).toBe('active');
    expect(json<{ met: boolean; approvers: string[] }>(['approve', id, ...as('hank')])).toMatchObject({ met: true, approvers: ['gwen', 'hank'] });
    // Another operation under these approvals is refused.
    refused(['key', 'revoke', southKey, '--reason', 'superseded', ...as('carol'), '--proposal', id], 'ERR_OPERATION_MISMATCH');
    expect(keyState(southKey)).toBe('active');
    const r = json<{ keyId: string; state: string; crlNumber: string }>(['key', 'revoke', southKey, ...as('carol'), '--proposal', id]);
    expect(r).toMatchObject({ keyId: southKey, state: 'revoked' });
    expect(Number(r.crlNumber)).toBeGreaterThan(1);
    expect(json<{ state: string }>(['proposal', 'show', id]).state).toBe('executed');
    // Approvals are used once.
    refused(['key', 'revoke', southKey, ...as('carol'), '--proposal', id], 'ERR_PROPOSAL_CLOSED');
  }, 300_000);

  it('a key generation under dual control: proposed by one custodian, approved by another, executed and certified; then rotated in', () => {
    const before = lastCounter('alice');
    const proposed = json<{ proposal: { proposalId: string } }>(['key', 'generate', 'north', ...as('alice'), '--propose']);
    const id = proposed.proposal.proposalId;
    expect(json<{ required: number; met: boolean }>(['approve', id, ...as('bob')])).toMatchObject({ required: 1, met: true });
    const k = json<{ keyId: string; state: string; certificateSerial: string }>(['key', 'generate', 'north', '--certify', ...as('alice'), '--proposal', id]);
    // A second key of the purpose: certified, pending until rotated in.
    expect(k).toMatchObject({ keyId: `${SUPPLIER}.north.DS.g2`, state: 'pending' });
    expect(k.certificateSerial).toMatch(/^[0-9A-F]+$/);
    expect(json<{ state: string }>(['proposal', 'show', id]).state).toBe('executed');
    // The proposal, its execution, the CSR and the attachment: four requests of alice's, four counters.
    expect(lastCounter('alice')).toBe(before + 4);
    // Generating is a change of its own: an operator's rotation names the key.
    refused(['key', 'rotate', 'north', ...as('alice')], 'ERR_CLI_USAGE', 2);
    const rotated = json<{ keyId: string; fromKeyId: string; devicesToUpdate: number; updates: { device: string }[] }>(['key', 'rotate', 'north', '--key', k.keyId, ...as('alice')]);
    expect(rotated).toMatchObject({ keyId: k.keyId, fromKeyId: `${SUPPLIER}.north.DS.g1`, devicesToUpdate: 1, updates: [{ device: M1 }] });
  }, 300_000);

  it("signing goes through the operator's session: a signer of north signs for north's meters, not south's", () => {
    const pre = join(keys, 'pre-m1.hex');
    const signed = join(keys, 'signed-m1.hex');
    ok(['command', 'build', 'disconnect', '--device', M1, '--out', pre]);
    ok(['command', 'sign', '--in', pre, '--out', signed, ...as('svc')]);
    const v = run(['command', 'validate', '--in', signed, '--json']);
    expect(v.status, v.stdout + v.stderr).toBe(0);
    expect(JSON.parse(v.stdout.trim().split('\n')[0]!)).toMatchObject({ outcome: 'accepted' });
    ok(['command', 'build', 'disconnect', '--device', M2, '--out', join(keys, 'pre-m2.hex')]);
    refused(['command', 'sign', '--in', join(keys, 'pre-m2.hex'), ...as('svc')], 'ERR_OPERATOR_FORBIDDEN');
    // A custodian holds no signer grant.
    refused(['command', 'sign', '--in', pre, ...as('alice')], 'ERR_OPERATOR_FORBIDDEN');
  }, 300_000);

  it("DUIS: the XML signature and the pre-command's GBCS signature come from the operator's sessions (the XML-signing key's portfolio, the meter's)", () => {
    const pairs = (e: string) => e.match(/../g)!.join('-');
    const xml = [
      '<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4">',
      `  <sr:Header><sr:RequestID>${pairs(SUPPLIER)}:${pairs(M1)}:0</sr:RequestID><sr:CommandVariant>4</sr:CommandVariant><sr:ServiceReference>7.2</sr:ServiceReference><sr:ServiceReferenceVariant>7.2</sr:ServiceReferenceVariant></sr:Header>`,
      '  <sr:Body><sr:DisableSupply/></sr:Body>',
      '</sr:Request>',
    ].join('\n');
    const req = join(keys, 'disable.xml');
    writeFileSync(req, xml);
    // Without an operator the store signs nothing; a signer of north only may not use the XML-signing key (portfolio duis).
    const none = run(['duis', 'sign', req, '--json']);
    expect(none.status).toBe(1);
    expect(none.stdout + none.stderr).toContain('ERR_OPERATOR_REQUIRED');
    const north = run(['duis', 'sign', req, ...as('svc'), '--json']);
    expect(north.status).toBe(1);
    expect(north.stdout + north.stderr).toContain('ERR_OPERATOR_FORBIDDEN');
    const signed = join(keys, 'disable.signed.xml');
    ok(['duis', 'sign', req, '--counter', 'now', '--out', signed, ...as('xsvc')]);
    const response = join(keys, 'disable.response.xml');
    ok(['duis', 'respond', signed, '--out', response]);
    const spc = join(keys, 'disable.spc.xml');
    ok(['duis', 'precommand', response, '--out', spc, ...as('xsvc')]);
    const v = run(['duis', 'validate', spc, '--json']);
    expect(v.status, v.stdout + v.stderr).toBe(0);
    expect(JSON.parse(v.stdout.trim().split('\n')[0]!)).toMatchObject({ ok: true, outcome: 'accepted' });
  }, 300_000);

  it('operators are added and removed under dual control; a removed operator signs nothing', () => {
    const add = json<{ proposal: { proposalId: string } }>(['operator', 'add', 'frank', '--public-key', join(keys, 'frank.key.pem.pub'), '--grant', 'signer@north', ...as('admin'), '--propose']);
    refused(['operator', 'add', 'frank', '--public-key', join(keys, 'frank.key.pem.pub'), '--grant', 'signer@north', ...as('admin')], 'ERR_APPROVAL_REQUIRED');
    ok(['approve', add.proposal.proposalId, ...as('admin2')]);
    ok(['operator', 'add', 'frank', '--public-key', join(keys, 'frank.key.pem.pub'), '--grant', 'signer@north', ...as('admin'), '--proposal', add.proposal.proposalId]);
    ok(['command', 'sign', '--in', join(keys, 'pre-m1.hex'), '--out', join(keys, 'signed-m1b.hex'), ...as('frank')]);

    const remove = json<{ proposal: { proposalId: string } }>(['operator', 'remove', 'svc', ...as('admin'), '--propose']);
    ok(['approve', remove.proposal.proposalId, ...as('admin2')]);
    ok(['operator', 'remove', 'svc', ...as('admin'), '--proposal', remove.proposal.proposalId]);
    const list = json<{ accessControlled: boolean; operators: { operatorId: string; removed: boolean; grants: { role: string; portfolioId?: string }[] }[] }>(['operator', 'list']);
    expect(list.accessControlled).toBe(true);
    expect(list.operators.find((o) => o.operatorId === 'svc')?.removed).toBe(true);
    expect(list.operators.find((o) => o.operatorId === 'frank')).toMatchObject({ removed: false, grants: [{ role: 'signer', portfolioId: 'north' }] });
    refused(['command', 'sign', '--in', join(keys, 'pre-m1.hex'), ...as('svc')], 'ERR_OPERATOR_UNKNOWN');
  }, 300_000);

  it("the trail (operators' requests and approvals in it) verifies with the audit public key, and the store's own check finds nothing", () => {
    const v = json<{ ok: boolean; keystore: { ok: boolean; records: number }; keystoreRows: { ok: boolean; findings: unknown[] } }>(['audit', 'verify']);
    expect(v.ok).toBe(true);
    expect(v.keystoreRows.findings).toEqual([]);
    expect(v.keystore.records).toBeGreaterThan(20);
  }, 300_000);
});
