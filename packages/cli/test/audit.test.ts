// `smki audit verify` and `smki audit report` as an auditor runs them: every log verifies; a one-byte
// edit of either log is found at its line; the report counts key use and decisions; a command of
// this supplier accepted by the validator but never signed by the key store (a key used outside
// the store: a stolen key file and its passphrase) is flagged by the cross-check, in the JSON, the
// text and the HTML page (rendered in headless Chromium).
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeySigner } from '@smki/core';
import { openSqliteDatabase } from '@smki/store';
import { SQLITE_SCHEMA } from '../../keystore/src/internal/db/schema.js';
import { buildDisableSupply, signPreCommand } from '@smki/gbcs';
import { initLab, PASSPHRASE, smki, tempDir } from './_smki.js';
import { launchChromium } from '../../../test/_chromium.js';

const SUPPLIER = '90B3D51F30010000';
const M1 = '00DB123456789001';
const M2 = '00DB123456789002';

let lab: string;
const run = (args: string[]) => smki(['--dir', lab, ...args]);
const json = <T>(args: string[]): { status: number | null; body: T } => {
  const r = run([...args, '--json']);
  return { status: r.status, body: JSON.parse(r.stdout) as T };
};

interface Report {
  keystoreTrail: { ok: boolean; records: number };
  decisionLog: { ok: boolean; records: number };
  keyUse: { portfolio: string; keyId: string; messageCode: string; uses: number }[];
  decisions: { outcome: string; code: string; count: number }[];
  timeline: { buckets: { accepted: number; rejected: number }[] };
  exposure: { keyId: string; meters: number }[];
  crossCheck: { matched: number; keystoreOnly: number; decisionLogOnly: number; disagreements: { device: string; counter: string; issue: string }[] };
}

beforeAll(() => {
  lab = initLab();
  for (const args of [
    ['portfolio', 'create', 'north'],
    ['key', 'generate', 'north', '--certify'],
    ['portfolio', 'create', 'south'],
    ['key', 'generate', 'south', '--certify'],
    ['device', 'add', M1, '--portfolio', 'north', '--simulate'],
    ['device', 'add', M2, '--portfolio', 'south', '--simulate'],
    ['command', 'build', 'disconnect', '--device', M1, '--device', M2, '--repeat', '2', '--out', join(lab, '..', 'pre.hex')],
    ['command', 'sign', '--in', join(lab, '..', 'pre.hex'), '--out', join(lab, '..', 'signed.hex')],
    ['command', 'validate', '--in', join(lab, '..', 'signed.hex')],
  ]) {
    const r = run(args);
    expect(r.status, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  }
  // A replay: refused, and logged.
  expect(run(['command', 'validate', '--in', join(lab, '..', 'signed.hex')]).status).toBe(1);
}, 180_000);

describe('smki audit verify', () => {
  it('every log verifies on a state directory in use (exit 0, JSON ok)', () => {
    const r = json<{ ok: boolean; keystore: { records: number; ok: boolean }; decisionLogs: { source: string; records: number; ok: boolean }[] }>(['audit', 'verify']);
    expect(r.status).toBe(0);
    expect(r.body.ok).toBe(true);
    expect(r.body.keystore.ok).toBe(true);
    expect(r.body.keystore.records).toBeGreaterThan(10);
    expect(r.body.decisionLogs).toHaveLength(1);
    expect(r.body.decisionLogs[0]!.records).toBe(8);
  });

  it('a one-byte edit of the decision log is found at its line (exit 1, ERR_AUDIT_TAMPERED)', () => {
    const copy = join(tempDir(), 'lab');
    // Work on a copy: the other tests keep the intact directory.
    expect(smki(['--dir', lab, 'audit', 'verify']).status).toBe(0);
    cpSync(lab, copy, { recursive: true });
    const path = join(copy, 'log/main/decisions.log');
    const text = readFileSync(path, 'utf8');
    const lines = text.split('\n');
    expect(lines[2]).toContain('"at":"20');
    lines[2] = lines[2]!.replace('"at":"20', '"at":"19'); // one byte: the record's time moved a century
    writeFileSync(path, lines.join('\n'));
    const r = smki(['--dir', copy, 'audit', 'verify', '--json']);
    expect(r.status).toBe(1);
    const body = JSON.parse(r.stdout) as { ok: boolean; keystore: { ok: boolean }; decisionLogs: { findings: { code: string; line?: number }[] }[] };
    expect(body.ok).toBe(false);
    expect(body.keystore.ok).toBe(true);
    expect(body.decisionLogs[0]!.findings[0]).toMatchObject({ code: 'ERR_AUDIT_TAMPERED', line: 3 });
    const t = smki(['--dir', copy, 'audit', 'verify']);
    expect(t.stdout).toMatch(/line 3: ERR_AUDIT_TAMPERED/);
    expect(t.stdout).toMatch(/verification failed/);
  });

  it("a one-byte edit of a key store trail record is found with the audit public key alone (no passphrase), at that record or the next (exit 1)", () => {
    const copy = join(tempDir(), 'lab');
    cpSync(lab, copy, { recursive: true });
    const db = openSqliteDatabase({ path: join(copy, 'keystore', 'keystore.db') }, SQLITE_SCHEMA);
    try {
      const line = db.prepare('SELECT line FROM audit_records WHERE seq = 3').pluck().get() as string;
      expect(line).toContain('"at":"20');
      db.prepare('UPDATE audit_records SET line = ? WHERE seq = 3').run(line.replace('"at":"20', '"at":"19'));
    } finally {
      db.close();
    }
    // The auditor: the audit public key (their own copy), no passphrase.
    const key = join(tempDir(), 'audit-key.hex');
    writeFileSync(key, readFileSync(join(lab, 'keystore', 'audit-public-key.hex')));
    const r = smki(['--dir', copy, 'audit', 'verify', '--trail-only', '--audit-public-key', key, '--json'], { env: { SMKI_KEYSTORE_PASSPHRASE: undefined } });
    expect(r.status, r.stderr).toBe(1);
    const body = JSON.parse(r.stdout) as { ok: boolean; keystore: { findings: { code: string; line?: number }[] } };
    expect(body.ok).toBe(false);
    expect(body.keystore.findings[0]!.code).toBe('ERR_AUDIT_TAMPERED');
    expect([3, 4]).toContain(body.keystore.findings[0]!.line);
    // The intact directory verifies the same way.
    const intact = smki(['--dir', lab, 'audit', 'verify', '--trail-only', '--audit-public-key', key, '--json'], { env: { SMKI_KEYSTORE_PASSPHRASE: undefined } });
    expect(intact.status, intact.stdout).toBe(0);
    // Another store's key does not verify this trail.
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    writeFileSync(key, `04${Buffer.from(other.x!, 'base64url').toString('hex')}${Buffer.from(other.y!, 'base64url').toString('hex')}\n`);
    expect(smki(['--dir', lab, 'audit', 'verify', '--trail-only', '--audit-public-key', key]).status).toBe(1);
    // And with the passphrase, the store's own check finds it too.
    const full = JSON.parse(smki(['--dir', copy, 'audit', 'verify', '--json']).stdout) as { keystoreRows: { ok: boolean; findings: { code: string }[] } };
    expect(full.keystoreRows.ok).toBe(false);
    expect(full.keystoreRows.findings.length).toBeGreaterThan(0);
  });
});

describe('smki audit report', () => {
  it('counts key use per portfolio and message code, decisions by outcome and code, exposure; the logs agree', () => {
    const r = json<Report>(['audit', 'report']);
    expect(r.status).toBe(0);
    const b = r.body;
    expect(b.keystoreTrail.ok && b.decisionLog.ok).toBe(true);
    expect(b.keyUse.map((u) => [u.portfolio, u.messageCode, u.uses])).toEqual([
      ['north', '0050', 2],
      ['south', '0050', 2],
    ]);
    expect(b.decisions).toEqual(
      expect.arrayContaining([
        { outcome: 'accepted', code: '-', count: 4 },
        { outcome: 'rejected', code: 'ERR_COMMAND_REPLAYED', count: 4 },
      ]),
    );
    expect(b.timeline.buckets.reduce((n, x) => n + x.accepted, 0)).toBe(4);
    expect(b.exposure.map((e) => e.meters)).toEqual([1, 1]);
    expect(b.crossCheck).toMatchObject({ matched: 8, keystoreOnly: 0, decisionLogOnly: 0, disagreements: [] });
  });

  it('a range after the last record holds no decision', () => {
    const r = json<Report>(['audit', 'report', '--from', new Date(Date.now() + 3600_000).toISOString()]);
    expect(r.body.decisions).toEqual([]);
    expect(r.body.keyUse).toEqual([]);
    expect(smki(['--dir', lab, 'audit', 'report', '--from', 'yesterday']).status).toBe(2);
  });

  describe('a key used outside the store (its file and passphrase stolen)', () => {
    let counter: bigint;
    beforeAll(async () => {
      const keyFile = join(lab, 'keystore', 'keys', `${SUPPLIER}.north.DS.g1.p8`);
      const stolen = createKeySigner(createPrivateKey({ key: readFileSync(keyFile, 'utf8'), format: 'pem', passphrase: PASSPHRASE }));
      counter = BigInt(Date.now());
      const cmd = await signPreCommand(buildDisableSupply({ fuel: 'electricity', originator: SUPPLIER, recipient: M1, counter }), stolen);
      const file = join(lab, '..', 'stolen.hex');
      writeFileSync(file, `${Buffer.from(cmd).toString('hex')}\n`);
      // The validator cannot tell: the signature is the key the meter trusts.
      expect(run(['command', 'validate', '--in', file]).status).toBe(0);
    });

    it('the cross-check flags the accepted command the key store never signed (JSON, text, exit 1)', () => {
      const r = json<Report>(['audit', 'report']);
      expect(r.status).toBe(1);
      expect(r.body.crossCheck.disagreements).toHaveLength(1);
      expect(r.body.crossCheck.disagreements[0]).toMatchObject({ device: M1, counter: counter.toString() });
      expect(r.body.crossCheck.disagreements[0]!.issue).toMatch(/never signed/);
      expect(r.body.keystoreTrail.ok && r.body.decisionLog.ok).toBe(true);
      const t = run(['audit', 'report']);
      expect(t.status).toBe(1);
      expect(t.stdout).toContain(M1);
      expect(t.stdout).toMatch(/never signed/);
    });

    describe('the HTML page, in headless Chromium', () => {
      let browser: Awaited<ReturnType<typeof launchChromium>>;
      beforeAll(async () => {
        browser = await launchChromium();
      });
      afterAll(async () => {
        await browser?.close();
      });

      it('opens offline and shows the disagreement, the tables and the charts', async () => {
        const html = join(lab, '..', 'report.html');
        expect(run(['audit', 'report', '--html', html]).status).toBe(1);
        const page = await browser.newPage();
        const requests: string[] = [];
        page.on('request', (q) => requests.push(q.url()));
        await page.goto(pathToFileURL(html).href);
        const seen = await page.evaluate(`({
          text: document.body.innerText,
          svgs: [...document.querySelectorAll('svg')].map((s) => s.getBoundingClientRect().height),
        })`) as { text: string; svgs: number[] };
        expect(requests).toEqual([pathToFileURL(html).href]);
        expect(seen.text).toContain(M1);
        expect(seen.text).toMatch(/never signed/);
        expect(seen.text).toContain('ERR_COMMAND_REPLAYED');
        expect(seen.svgs.length).toBe(2);
        for (const h of seen.svgs) expect(h).toBeGreaterThan(0);
        await page.close();
      });
    });
  });
});
