// `smki duis …` on the other back ends of a state directory (docs/domain.md §8): with `--hsm` the
// supplier's DUIS XML-signing key is generated on the token like its other keys (SoftHSM2 here,
// PKCS#11); with `--postgres` the two DUIS stores (the User's request counters, the DCC side's
// anti-replay of request ids) are PostgreSQL schemas of their own beside the state's.
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSoftHsm, type SoftHsm } from '../../keystore/test/_softhsm.js';
import { startPostgres, type PgServer } from '../../store/test/_postgres.js';
import { ROOT, smki, tempDir } from './_smki.js';

const REQUEST = (target: string) =>
  '<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header>' +
  `<sr:RequestID>90-B3-D5-1F-30-01-00-00:${target.match(/../g)!.join('-')}:0</sr:RequestID><sr:CommandVariant>4</sr:CommandVariant>` +
  '<sr:ServiceReference>7.2</sr:ServiceReference><sr:ServiceReferenceVariant>7.2</sr:ServiceReferenceVariant></sr:Header>' +
  '<sr:Body><sr:DisableSupply/></sr:Body></sr:Request>';

const line = (stdout: string) => JSON.parse(stdout.trim().split('\n')[0]!) as Record<string, unknown>;

describe('smki init --hsm: the DUIS XML-signing key on the token (PKCS#11, SoftHSM2)', () => {
  let hsm: SoftHsm;
  let lab: string;
  let env: Record<string, string>;
  beforeAll(() => {
    hsm = createSoftHsm();
    lab = join(tempDir(), 'lab');
    env = { SOFTHSM2_CONF: hsm.conf, SMKI_HSM_PIN: hsm.pin };
  });
  afterAll(() => hsm?.cleanup());
  const run = (args: string[]) => smki(['--dir', lab, ...args], { env });

  it('init --hsm generates it on the token; duis sign uses it there; the lab DCC key stays an encrypted file', () => {
    const init = smki(['init', lab, '--hsm', '--hsm-module', hsm.module, '--hsm-token', hsm.tokenLabel], { env });
    expect(init.status, init.stderr).toBe(0);
    const keys = JSON.parse(run(['key', 'list', '--json']).stdout) as { purpose: string; backend: string; state: string }[];
    expect(keys.map((k) => [k.purpose, k.backend, k.state])).toEqual([['xmlSigning', 'pkcs11', 'active']]);
    const keyFiles = existsSync(join(lab, 'keystore', 'keys')) ? readdirSync(join(lab, 'keystore', 'keys')) : [];
    expect(keyFiles).toEqual([]);
    expect(existsSync(join(lab, 'dcc', 'xml-signing.key.pem'))).toBe(true);
    const file = join(lab, '..', 'req.xml');
    writeFileSync(file, REQUEST('00DB123456789001'));
    const signed = run(['duis', 'sign', file, '--counter', 'now', '--out', join(lab, '..', 'signed.xml'), '--json']);
    expect(signed.status, signed.stderr).toBe(0);
    const v = run(['duis', 'verify', join(lab, '..', 'signed.xml'), '--expect', 'request', '--replay', '--json']);
    expect(v.status, v.stdout).toBe(0);
    expect(line(v.stdout)).toMatchObject({ ok: true, originator: '90B3D51F30010000', target: '00DB123456789001', counter: line(signed.stdout).counter });
    // Without the PIN nothing is signed: a state error, exit 5.
    const noPin = smki(['--dir', lab, 'duis', 'sign', file], { env: { SOFTHSM2_CONF: hsm.conf } });
    expect(noPin.status).toBe(5);
    expect(noPin.stderr).toContain('ERR_CLI_SECRET_MISSING');
  });
});

describe('smki init --postgres: the DUIS stores are schemas of their own', () => {
  let pg: PgServer;
  let lab: string;
  beforeAll(async () => {
    pg = await startPostgres();
    lab = join(tempDir(), 'lab');
  }, 120_000);
  afterAll(() => pg?.destroy());
  const run = (args: string[]) => smki(['--dir', lab, ...args], { env: pg.env, cwd: ROOT });

  it('request counters in <schema>_duis_user, claimed request ids in <schema>_duis_dcc, none in the validator schema; a replay refused', () => {
    const init = smki(['init', lab, '--postgres', '--pg-schema', 'smki_dx'], { env: pg.env });
    expect(init.status, init.stderr).toBe(0);
    expect(existsSync(join(lab, 'state'))).toBe(false);
    const file = join(lab, '..', 'req.xml');
    writeFileSync(file, REQUEST('00DB123456789002'));
    const a = run(['duis', 'sign', file, '--counter', 'now', '--out', join(lab, '..', 'a.xml'), '--json']);
    const b = run(['duis', 'sign', file, '--counter', 'now', '--out', join(lab, '..', 'b.xml'), '--json']);
    expect(a.status, a.stderr).toBe(0);
    expect(BigInt(line(b.stdout).counter as string)).toBeGreaterThan(BigInt(line(a.stdout).counter as string));
    // The store keeps the counter as fixed-width hex.
    expect(BigInt(`0x${pg.psql('SELECT counter FROM smki_dx_duis_user.counters').trim()}`)).toBe(BigInt(line(b.stdout).counter as string));
    expect(run(['duis', 'verify', join(lab, '..', 'a.xml'), '--expect', 'request', '--replay']).status).toBe(0);
    const again = run(['duis', 'verify', join(lab, '..', 'a.xml'), '--expect', 'request', '--replay', '--json']);
    expect(again.status).toBe(1);
    expect(line(again.stdout)).toMatchObject({ ok: false, code: 'ERR_DUIS_REPLAYED' });
    expect(Number(pg.psql('SELECT count(*) FROM smki_dx_duis_dcc.counters').trim())).toBe(1);
    expect(Number(pg.psql('SELECT count(*) FROM smki_dx.counters').trim())).toBe(0);
  }, 120_000);
});
