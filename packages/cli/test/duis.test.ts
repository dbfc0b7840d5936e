// `smki duis …` run as a user would (docs/domain.md §8, DUIS XML signatures; §4 and §5 for the
// GBCS pre-command inside): init provisions the supplier's XML-signing key (role 135, in the key
// store) and the lab DCC's (role 137); sign → verify; anti-replay of request ids (W3C XML
// Signature, enveloped, as profiled in §8); a tampered document; the critical-command round trip
// by commands (service request, the lab DCC's pre-command Response, the signed pre-command
// Request, the DCC's verification, the GBCS validation); --json shapes; batches of files and of
// lines on standard input; a state directory made before DUIS.
import { createPrivateKey } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createKeySigner, parseEui64 } from '@smki/core';
import { formatRequestId, signResponse } from '@smki/duis';
import { buildDisableSupply } from '@smki/gbcs';
import { initLab, PASSPHRASE, smki, steps, tempDir, type SmkiResult } from './_smki.js';

const SUPPLIER = '90B3D51F30010000';
const DCC = '90B3D51F30000002';
const M1 = '00DB123456789001';
const M2 = '00DB123456789002';
const GAS = '00DB123456789003';
const UNKNOWN = '00DB12345678FFFF';

/** A DUIS Request as a User writes it (pretty-printed; the signer digests it without the white space between elements). */
function request(target: string, options: { service?: string; body?: string; counter?: string; variant?: string } = {}): string {
  const pairs = (e: string) => e.match(/../g)!.join('-');
  const service = options.service ?? '7.2';
  return [
    '<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4">',
    '  <sr:Header>',
    `    <sr:RequestID>${pairs(SUPPLIER)}:${pairs(target)}:${options.counter ?? '0'}</sr:RequestID>`,
    `    <sr:CommandVariant>${options.variant ?? '4'}</sr:CommandVariant>`,
    `    <sr:ServiceReference>${service}</sr:ServiceReference>`,
    `    <sr:ServiceReferenceVariant>${service}</sr:ServiceReferenceVariant>`,
    '  </sr:Header>',
    `  <sr:Body><sr:${options.body ?? 'DisableSupply'}/></sr:Body>`,
    '</sr:Request>',
    '',
  ].join('\n');
}

/** The same, on one line (a line of a batch on standard input). */
const compact = (xml: string): string => xml.replace(/>\s+</g, '><').trim();

const jsonLines = (s: string): Record<string, unknown>[] =>
  s
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

let lab: string;
let work: string;
const run = (args: string[], input?: string): SmkiResult => smki(['--dir', lab, ...args], { cwd: work, ...(input !== undefined ? { input } : {}) });
const ok = (args: string[], input?: string): SmkiResult => {
  const r = run(args, input);
  if (r.status !== 0) throw new Error(`smki ${args.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r;
};
/** Write a file in the working directory; returns its name. */
const put = (name: string, text: string): string => {
  writeFileSync(join(work, name), text);
  return name;
};
const read = (name: string): string => readFileSync(join(work, name), 'utf8');

beforeAll(() => {
  lab = initLab();
  work = tempDir('smki-duis-');
  steps(lab, [
    ['portfolio', 'create', 'north'],
    ['key', 'generate', 'north', '--certify'],
    ['device', 'add', M1, '--portfolio', 'north', '--simulate'],
    ['device', 'add', M2, '--portfolio', 'north', '--simulate'],
    ['device', 'add', GAS, '--portfolio', 'north', '--fuel', 'gas', '--type', 'GSME', '--simulate'],
  ]);
}, 180_000);

describe('smki init provisions DUIS (docs/domain.md §8: role 135 for Requests, 137 for Responses)', () => {
  it("records the lab DCC and the supplier's XML-signing portfolio; the key is in the key store, its certificate role 135; the DCC's role 137", () => {
    const config = JSON.parse(readFileSync(join(lab, 'smki.json'), 'utf8')) as { duis?: { dcc: string; xmlPortfolio: string } };
    expect(config.duis).toEqual({ dcc: DCC, xmlPortfolio: 'duis' });
    const keys = JSON.parse(ok(['key', 'list', '--json']).stdout) as { keyId: string; purpose: string; state: string; serialNumber: string; backend: string; portfolioId: string }[];
    const xml = keys.find((k) => k.purpose === 'xmlSigning')!;
    expect(xml).toMatchObject({ keyId: `${SUPPLIER}.duis.XML.g1`, portfolioId: 'duis', state: 'active', backend: 'file' });
    const cert = JSON.parse(ok(['cert', 'inspect', xml.serialNumber, '--json']).stdout) as { role: number; entityId: string; keyUsage: string[] };
    expect(cert).toMatchObject({ role: 135, entityId: SUPPLIER, keyUsage: ['digitalSignature'] });
    const dcc = JSON.parse(ok(['cert', 'inspect', join(lab, 'dcc', 'xml-signing.pem'), '--json']).stdout) as { role: number; entityId: string; serialNumber: string };
    expect(dcc).toMatchObject({ role: 137, entityId: DCC });
    // Issued here, so trusted, and valid with revocation checked.
    expect(existsSync(join(lab, 'certs', 'organisation', `${dcc.serialNumber}.pem`))).toBe(true);
    expect(ok(['cert', 'verify', dcc.serialNumber]).status).toBe(0);
    // The DCC's key is kept like the ACB's: encrypted PKCS#8 under the passphrase.
    expect(readFileSync(join(lab, 'dcc', 'xml-signing.key.pem'), 'utf8')).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    // Two DUIS stores of their own, beside the validator's.
    expect(readdirSync(join(lab, 'state'))).toEqual(expect.arrayContaining(['duis-user.db', 'duis-dcc.db', 'state.db']));
  });

  it('the XML-signing key endangers no meter: blast-radius leaves it out, portfolio list shows where it is', () => {
    const br = JSON.parse(ok(['portfolio', 'blast-radius', '--json']).stdout) as { keyId: string }[];
    expect(br.map((e) => e.keyId)).toEqual([`${SUPPLIER}.north.DS.g1`]);
    const text = ok(['portfolio', 'list']).stdout;
    expect(text).toMatch(new RegExp(`^duis\\s.*${SUPPLIER}\\.duis\\.XML\\.g1\\s+0$`, 'm'));
  });
});

describe('smki duis sign and verify', () => {
  it('signs a Request (counter kept) and verifies it: text, exit 0', () => {
    const file = put('keep.xml', request(M1, { counter: '1000' }));
    const s = ok(['duis', 'sign', file, '--out', 'keep.signed.xml']);
    expect(s.stdout).toMatch(/✔ keep\.xml: signed 90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-01:1000 with 90B3D51F30010000\.duis\.XML\.g1/);
    expect(s.stdout).toMatch(/1 signed, 0 refused of 1 → keep\.signed\.xml/);
    const signed = read('keep.signed.xml');
    expect(signed).toMatch(/<\/ds:Signature><\/sr:Request>\n$/);
    const v = ok(['duis', 'verify', 'keep.signed.xml', '--expect', 'request']);
    expect(v.stdout).toMatch(/✔ keep\.signed\.xml: Request 7\.2 DisableSupply, 90B3D51F30010000 → 00DB123456789001, counter 1000/);
    expect(v.stdout).toMatch(/1 verified, 0 refused of 1/);
  });

  it('--counter now: the counter from the durable store, milliseconds since the epoch, increasing across runs', () => {
    const file = put('now.xml', request(M2));
    const before = Date.now();
    const a = jsonLines(ok(['duis', 'sign', file, '--counter', 'now', '--json']).stdout);
    const b = jsonLines(ok(['duis', 'sign', file, '--counter', 'now', '--json']).stdout);
    const ca = BigInt(a[0]!.counter as string);
    const cb = BigInt(b[0]!.counter as string);
    expect(ca).toBeGreaterThanOrEqual(BigInt(before));
    expect(cb).toBeGreaterThan(ca);
    // --json without --out: one JSON line per document, the signed document in it.
    expect(a[0]).toEqual({ file: 'now.xml', ok: true, requestId: `90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-02:${ca}`, originator: SUPPLIER, target: M2, counter: String(ca), xml: expect.stringMatching(/^<\?xml version="1\.0" encoding="UTF-8"\?><sr:Request /) });
  });

  it('verify --json: one line with ok, originator, target, counter, serviceReference, body', () => {
    const signed = ok(['duis', 'sign', put('j.xml', request(M1, { counter: '2000' }))]).stdout;
    put('j.signed.xml', signed);
    const [line] = jsonLines(ok(['duis', 'verify', 'j.signed.xml', '--expect', 'request', '--json']).stdout);
    expect(line).toMatchObject({ file: 'j.signed.xml', ok: true, kind: 'request', originator: SUPPLIER, target: M1, counter: '2000', serviceReference: '7.2', body: 'DisableSupply' });
    expect(line!.signer).toMatch(/^[0-9A-F]{32}$/);
  });

  it('verify --replay: the first time ok, the second refused ERR_DUIS_REPLAYED with exit 1', () => {
    ok(['duis', 'sign', put('r.xml', request(M1)), '--counter', 'now', '--out', 'r.signed.xml']);
    const first = ok(['duis', 'verify', 'r.signed.xml', '--expect', 'request', '--replay', '--json']);
    expect(jsonLines(first.stdout)[0]).toMatchObject({ ok: true, claimed: true });
    const again = run(['duis', 'verify', 'r.signed.xml', '--expect', 'request', '--replay', '--json']);
    expect(again.status).toBe(1);
    expect(jsonLines(again.stdout)).toEqual([{ file: 'r.signed.xml', ok: false, code: 'ERR_DUIS_REPLAYED', message: expect.stringMatching(/not newer than the last one accepted/), detail: expect.any(String), hint: expect.stringMatching(/--counter now/) }]);
    const text = run(['duis', 'verify', 'r.signed.xml', '--expect', 'request', '--replay']);
    expect(text.status).toBe(1);
    expect(text.stdout).toMatch(/✘ r\.signed\.xml: refused ERR_DUIS_REPLAYED: /);
    expect(text.stdout).toMatch(/what to do: the request id was used before/);
    // Without --replay nothing is claimed: it still verifies.
    ok(['duis', 'verify', 'r.signed.xml', '--expect', 'request']);
  });

  it('a document changed after signing is refused ERR_DUIS_DIGEST_MISMATCH (exit 1)', () => {
    ok(['duis', 'sign', put('t.xml', request(M1, { counter: '3000' })), '--out', 't.signed.xml']);
    const tampered = read('t.signed.xml').replace('<sr:CommandVariant>4</sr:CommandVariant>', '<sr:CommandVariant>5</sr:CommandVariant>');
    expect(tampered).not.toBe(read('t.signed.xml'));
    put('t.tampered.xml', tampered);
    const r = run(['duis', 'verify', 't.tampered.xml', '--expect', 'request', '--json']);
    expect(r.status).toBe(1);
    expect(jsonLines(r.stdout)[0]).toMatchObject({ file: 't.tampered.xml', ok: false, code: 'ERR_DUIS_DIGEST_MISMATCH' });
    // The wrong direction is refused too, and --expect is required.
    expect(jsonLines(run(['duis', 'verify', 't.signed.xml', '--expect', 'response', '--json']).stdout)[0]).toMatchObject({ ok: false, code: 'ERR_DUIS_DOCUMENT_KIND' });
    const none = run(['duis', 'verify', 't.signed.xml']);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('ERR_CLI_USAGE');
  });
});

describe('batches', () => {
  it('several files: one JSON line each in order, a refused one among them (exit 1), an output directory with one file per input', () => {
    const files = [put('b1.xml', request(M1)), put('b2.xml', request(M2)), put('b3.xml', '<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway"><sr:Header/></sr:Request>')];
    const r = run(['duis', 'sign', ...files, '--counter', 'now', '--out', 'batch-out/', '--json']);
    expect(r.status).toBe(1);
    const lines = jsonLines(r.stdout);
    expect(lines.map((l) => [l.file, l.ok, l.code])).toEqual([
      ['b1.xml', true, undefined],
      ['b2.xml', true, undefined],
      ['b3.xml', false, 'ERR_DUIS_STRUCTURE'],
    ]);
    expect(lines[0]!.xml).toBeUndefined();
    expect(readdirSync(join(work, 'batch-out')).sort()).toEqual(['b1.xml', 'b2.xml']);
    // The directory's files verify as a batch: all ok, exit 0.
    const v = ok(['duis', 'verify', 'batch-out/b1.xml', 'batch-out/b2.xml', '--expect', 'request', '--json']);
    expect(jsonLines(v.stdout).map((l) => [l.target, l.ok])).toEqual([
      [M1, true],
      [M2, true],
    ]);
  });

  it('lines on standard input: one signed document per line out (empty for a refused one), then verified from standard input', () => {
    const input = [compact(request(M1)), '', compact(request(M2)), '<sr:Request/>', ''].join('\n');
    const r = run(['duis', 'sign', '-', '--counter', 'now'], input);
    expect(r.status).toBe(1);
    const out = r.stdout.split('\n');
    expect(out).toHaveLength(4);
    expect(out[0]).toMatch(/^<\?xml .*<\/sr:Request>$/);
    expect(out[1]).toMatch(/^<\?xml .*<\/sr:Request>$/);
    expect(out[2]).toBe('');
    expect(out[3]).toBe('');
    // Status lines go to standard error when the documents go to standard output.
    expect(r.stderr).toMatch(/✔ -:1: signed/);
    expect(r.stderr).toMatch(/✔ -:3: signed/);
    expect(r.stderr).toMatch(/✘ -:4: refused ERR_DUIS_/);
    expect(r.stderr).toMatch(/2 signed, 1 refused of 3/);
    const v = ok(['duis', 'verify', '-', '--expect', 'request', '--replay', '--json'], r.stdout);
    expect(jsonLines(v.stdout).map((l) => [l.file, l.line, l.ok, l.target])).toEqual([
      ['-', 1, true, M1],
      ['-', 2, true, M2],
    ]);
    // --out FILE: one line each.
    ok(['duis', 'sign', '-', '--counter', 'now', '--out', 'lines.out'], [compact(request(M1)), compact(request(M2))].join('\n'));
    expect(read('lines.out').trim().split('\n')).toHaveLength(2);
  });
});

describe('the round trip by commands (docs/domain.md §8): 7.2 Disable Supply', () => {
  it('sign --counter now → respond (the lab DCC) → precommand → verify --replay → command validate accepts the GBCS command', () => {
    ok(['duis', 'sign', put('rt.xml', request(M1)), '--counter', 'now', '--out', 'rt.signed.xml']);
    // The lab's DCC simulator answers with a signed pre-command Response.
    const resp = ok(['duis', 'respond', 'rt.signed.xml', '--out', 'rt.response.xml', '--json']);
    const [answered] = jsonLines(resp.stdout);
    expect(answered).toMatchObject({ ok: true, target: M1, serviceReference: '7.2' });
    expect(answered!.preCommand).toMatch(/^[0-9A-F]+$/);
    // The same request again is a replay at the DCC.
    const replay = run(['duis', 'respond', 'rt.signed.xml', '--json']);
    expect(replay.status).toBe(1);
    expect(jsonLines(replay.stdout)[0]).toMatchObject({ ok: false, code: 'ERR_DUIS_REPLAYED' });
    // The User verifies the Response (the lab DCC's entity, role 137).
    const vr = jsonLines(ok(['duis', 'verify', 'rt.response.xml', '--expect', 'response', '--json']).stdout)[0]!;
    expect(vr).toMatchObject({ ok: true, kind: 'response', body: 'PreCommand', messageCode: '0050', target: M1, counter: answered!.counter });
    // The User signs the pre-command with north's key (the one the meter trusts) and the XML with its XML-signing key.
    const [spc] = jsonLines(ok(['duis', 'precommand', 'rt.response.xml', '--out', 'rt.spc.xml', '--json']).stdout);
    expect(spc).toMatchObject({ file: 'rt.response.xml', ok: true, requestId: answered!.requestId, target: M1, counter: answered!.counter, messageCode: '0050' });
    // The DCC verifies the signed pre-command Request once, and takes the GBCS command out of what it verified.
    const v = ok(['duis', 'verify', 'rt.spc.xml', '--expect', 'request', '--replay', '--gbcs-out', 'rt.gbcs.hex', '--json']);
    expect(jsonLines(v.stdout)[0]).toMatchObject({ ok: true, body: 'SignedPreCommand', messageCode: '0050', claimed: true });
    const again = run(['duis', 'verify', 'rt.spc.xml', '--expect', 'request', '--replay', '--json']);
    expect(again.status).toBe(1);
    expect(jsonLines(again.stdout)[0]).toMatchObject({ ok: false, code: 'ERR_DUIS_REPLAYED' });
    // The GBCS signed pre-command inside validates as any other: accepted, MAC'd frame out.
    const gbcs = read('rt.gbcs.hex').trim();
    expect(gbcs).toMatch(/^[0-9A-F]+$/);
    const c = run(['command', 'validate', '--in', join(work, 'rt.gbcs.hex'), '--json']);
    expect(c.status, c.stderr).toBe(0);
    expect(jsonLines(c.stdout)[0]).toMatchObject({ outcome: 'accepted', device: M1, messageCode: '0050', counter: answered!.counter });
  });

  it('duis validate decides a signed pre-command Request in one step: accepted with its frame, then refused as a replay, and a tampered one changes nothing', () => {
    ok(['duis', 'sign', put('dv.xml', request(M2)), '--counter', 'now', '--out', 'dv.signed.xml']);
    ok(['duis', 'respond', 'dv.signed.xml', '--out', 'dv.response.xml']);
    ok(['duis', 'precommand', 'dv.response.xml', '--out', 'dv.spc.xml']);
    const spc = read('dv.spc.xml');
    // A tampered copy is refused at the XML signature, and claims nothing.
    const bad = run(['duis', 'validate', put('dv.bad.xml', spc.replace('<sr:CommandVariant>4<', '<sr:CommandVariant>5<')), '--json']);
    expect(bad.status).toBe(1);
    expect(jsonLines(bad.stdout)[0]).toMatchObject({ ok: false, code: 'ERR_DUIS_DIGEST_MISMATCH' });
    const v = run(['duis', 'validate', 'dv.spc.xml', '--out', 'dv.frames.hex', '--json']);
    expect(v.status, v.stderr).toBe(0);
    const [d] = jsonLines(v.stdout);
    expect(d).toMatchObject({ ok: true, outcome: 'accepted', target: M2, serviceReference: '7.2' });
    expect(read('dv.frames.hex').trim()).toBe(d!.frame);
    expect(String(d!.frame)).toMatch(/^DD/);
    const again = run(['duis', 'validate', 'dv.spc.xml', '--json']);
    expect(again.status).toBe(1);
    expect(jsonLines(again.stdout)[0]).toMatchObject({ ok: false, code: 'ERR_DUIS_REPLAYED' });
  });

  it('the lab DCC answers 7.1 and 7.3 too, refuses what it cannot answer without claiming the id, and a gas meter is never enabled remotely', () => {
    const files = [
      put('s71.xml', request(M1, { service: '7.1', body: 'EnableSupply' })),
      put('s73.xml', request(GAS, { service: '7.3', body: 'ArmSupply' })),
      put('s74.xml', request(M2, { service: '7.4', body: 'DisableSupply' })),
      put('s72wrong.xml', request(M2, { service: '7.2', body: 'ArmSupply' })),
      put('s71gas.xml', request(GAS, { service: '7.1', body: 'EnableSupply' })),
      put('s72unknown.xml', request(UNKNOWN)),
    ];
    ok(['duis', 'sign', ...files, '--counter', 'now', '--out', 'svc/']);
    const r = run(['duis', 'respond', ...files.map((f) => `svc/${f}`), '--json']);
    expect(r.status).toBe(1);
    expect(jsonLines(r.stdout).map((l) => [l.file, l.ok, l.code ?? l.serviceReference])).toEqual([
      ['svc/s71.xml', true, '7.1'],
      ['svc/s73.xml', true, '7.3'],
      ['svc/s74.xml', false, 'ERR_CLI_INPUT_INVALID'],
      ['svc/s72wrong.xml', false, 'ERR_CLI_INPUT_INVALID'],
      ['svc/s71gas.xml', false, 'ERR_CLI_INPUT_INVALID'],
      ['svc/s72unknown.xml', false, 'ERR_CLI_NOT_FOUND'],
    ]);
    // A refused request's id was not claimed: it still verifies with --replay.
    ok(['duis', 'verify', 'svc/s74.xml', '--expect', 'request', '--replay']);
  });

  it('precommand refuses a Request (it takes the DCC Responses), and a Response for a meter the key store does not know', async () => {
    ok(['duis', 'sign', put('pc.xml', request(M1, { counter: '4000' })), '--out', 'pc.signed.xml']);
    const r = run(['duis', 'precommand', 'pc.signed.xml', '--json']);
    expect(r.status).toBe(1);
    expect(jsonLines(r.stdout)[0]).toMatchObject({ ok: false, code: 'ERR_DUIS_DOCUMENT_KIND' });
    // A Response the lab DCC signed for a meter in no portfolio of the key store: nothing is signed.
    const counter = BigInt(Date.now());
    const pre = buildDisableSupply({ fuel: 'electricity', originator: parseEui64(SUPPLIER), recipient: parseEui64(UNKNOWN), counter });
    const requestId = formatRequestId({ originator: parseEui64(SUPPLIER), target: parseEui64(UNKNOWN), counter });
    const response =
      `<sr:Response xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header><sr:RequestID>${requestId}</sr:RequestID></sr:Header>` +
      `<sr:Body><sr:PreCommand><sr:GBCSVersion>3.2</sr:GBCSVersion><sr:GBCSPayload>${Buffer.from(pre).toString('base64')}</sr:GBCSPayload></sr:PreCommand></sr:Body></sr:Response>`;
    const dccKey = createPrivateKey({ key: readFileSync(join(lab, 'dcc', 'xml-signing.key.pem'), 'utf8'), format: 'pem', passphrase: PASSPHRASE });
    const signed = await signResponse(response, createKeySigner(dccKey), readFileSync(join(lab, 'dcc', 'xml-signing.pem'), 'utf8'));
    put('unknown.response.xml', signed.xml);
    expect(jsonLines(ok(['duis', 'verify', 'unknown.response.xml', '--expect', 'response', '--json']).stdout)[0]).toMatchObject({ ok: true, target: UNKNOWN });
    const u = run(['duis', 'precommand', 'unknown.response.xml', '--json']);
    expect(u.status).toBe(1);
    expect(jsonLines(u.stdout)[0]).toMatchObject({ ok: false, code: 'ERR_DEVICE_UNKNOWN' });
  });

  it('--help marks respond as the lab DCC simulator, not a DCC', () => {
    const h = smki(['duis', 'respond', '--help']);
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/LAB ONLY: the lab's DCC simulator, not a DCC/);
  });
});

describe('key generate --purpose xmlSigning with key csr and key attach', () => {
  it('a second XML-signing key certified outside smki (role 135 from its CSR) signs with --portfolio', () => {
    const gen = JSON.parse(ok(['key', 'generate', 'north', '--purpose', 'xmlSigning', '--json']).stdout) as { keyId: string; state: string };
    expect(gen).toMatchObject({ keyId: `${SUPPLIER}.north.XML.g1`, state: 'pending' });
    ok(['key', 'csr', gen.keyId, '--out', join(work, 'north-xml.csr.pem')]);
    const issued = JSON.parse(ok(['cert', 'issue', '--kind', 'organisation', '--role', '135', '--entity', SUPPLIER, '--usage', 'ds', '--csr', join(work, 'north-xml.csr.pem'), '--out', join(work, 'north-xml.pem'), '--json']).stdout) as { serialNumber: string };
    const attached = JSON.parse(ok(['key', 'attach', gen.keyId, join(work, 'north-xml.pem'), '--json']).stdout) as { state: string; purpose: string };
    expect(attached).toMatchObject({ state: 'active', purpose: 'xmlSigning' });
    // The CA refuses another role for it: its CSR names role 135.
    const other = JSON.parse(ok(['key', 'generate', 'north', '--purpose', 'xmlSigning', '--json']).stdout) as { keyId: string };
    ok(['key', 'csr', other.keyId, '--out', join(work, 'other.csr.pem')]);
    const bad = run(['cert', 'issue', '--kind', 'organisation', '--role', '2', '--entity', SUPPLIER, '--usage', 'ds', '--csr', join(work, 'other.csr.pem')]);
    expect(bad.status).toBe(1);
    // Signed with north's XML key, verified against its certificate.
    const signed = ok(['duis', 'sign', put('np.xml', request(M1, { counter: '5000' })), '--portfolio', 'north']).stdout;
    put('np.signed.xml', signed);
    expect(jsonLines(ok(['duis', 'verify', 'np.signed.xml', '--expect', 'request', '--json']).stdout)[0]).toMatchObject({ ok: true, signer: issued.serialNumber });
    // The lab's own stays the default.
    const dflt = jsonLines(ok(['duis', 'verify', '-', '--expect', 'request', '--json'], ok(['duis', 'sign', 'np.xml']).stdout).stdout)[0]!;
    expect(dflt.signer).not.toBe(issued.serialNumber);
    // --certify issues role 135 itself.
    const certified = JSON.parse(ok(['key', 'generate', 'duis', '--purpose', 'xmlSigning', '--certify', '--json']).stdout) as { certificateSerial: string };
    expect((JSON.parse(ok(['cert', 'inspect', certified.certificateSerial, '--json']).stdout) as { role: number }).role).toBe(135);
  });
});

describe('a state directory made before DUIS (smki demo --keep writes one)', () => {
  let old: string;
  let env: Record<string, string>;
  const at = (args: string[], input?: string) => smki(['--dir', old, ...args], { cwd: work, env, ...(input !== undefined ? { input } : {}) });
  beforeAll(() => {
    old = join(tempDir(), 'old');
    const d = smki(['demo', '--meters', '1', '--keep', old]);
    if (d.status !== 0) throw new Error(`smki demo exited ${d.status}:\n${d.stdout}\n${d.stderr}`);
    env = { SMKI_KEYSTORE_PASSPHRASE: readFileSync(join(old, 'demo-passphrase'), 'utf8').trim() };
  }, 180_000);

  it('every other command keeps working; the duis commands say what is missing and what to do; duis provision adds it', () => {
    expect((JSON.parse(readFileSync(join(old, 'smki.json'), 'utf8')) as { duis?: unknown }).duis).toBeUndefined();
    expect(at(['portfolio', 'list']).status).toBe(0);
    expect(at(['key', 'list']).status).toBe(0);
    expect(at(['audit', 'verify']).status).toBe(0);
    mkdirSync(join(work, 'old'), { recursive: true });
    put('old/req.xml', request('00DB123400000000'));
    // User side: no XML-signing key (exit 1, ERR_CLI_NOT_FOUND) and what to do.
    const s = at(['duis', 'sign', 'old/req.xml']);
    expect(s.status).toBe(1);
    expect(s.stderr).toMatch(/error ERR_CLI_NOT_FOUND: the supplier 90B3D51F30010000 has no usable XML-signing key/);
    expect(s.stderr).toMatch(/what to do: run `smki duis provision`/);
    const sj = at(['duis', 'sign', 'old/req.xml', '--json']);
    expect(JSON.parse(sj.stdout)).toMatchObject({ error: { code: 'ERR_CLI_NOT_FOUND', exit: 1, hint: expect.stringMatching(/smki duis provision/) } });
    // The lab DCC: no DUIS set-up at all (exit 5, ERR_CLI_STATE_INVALID).
    const resp = at(['duis', 'respond', 'old/req.xml']);
    expect(resp.status).toBe(5);
    expect(resp.stderr).toMatch(/error ERR_CLI_STATE_INVALID: .* has no DUIS set-up/);
    expect(resp.stderr).toMatch(/what to do: run `smki duis provision`/);
    // Provisioned, the whole thing works; a second provision has nothing to do.
    const p = JSON.parse(at(['duis', 'provision', '--json']).stdout) as { provisioned: boolean; duis: { dcc: string } };
    expect(p).toMatchObject({ provisioned: true, duis: { dcc: DCC } });
    expect((JSON.parse(at(['duis', 'provision', '--json']).stdout) as { provisioned: boolean }).provisioned).toBe(false);
    const signed = at(['duis', 'sign', 'old/req.xml', '--counter', 'now']);
    expect(signed.status, signed.stderr).toBe(0);
    const r = at(['duis', 'respond', '-', '--json'], signed.stdout);
    expect(r.status, r.stderr).toBe(0);
    expect(jsonLines(r.stdout)[0]).toMatchObject({ ok: true, target: '00DB123400000000' });
    expect(at(['audit', 'verify']).status).toBe(0);
  });
});
