// The audit log with a record schema of another package: the same chain, MACs (RFC 2104,
// HMAC-SHA256 over the canonical bytes), SHA-256 hash chain (FIPS 180-4), head, group commit,
// staged appends and crash recovery, for records the schema describes (RFC 8259 JSON, one per
// line); the checks defineAuditSchema makes; the `file` option; the staged-append protocol in two
// halves (beginStage, then stageSync inside the caller's transaction); and the bound on the
// longest record of any schema.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isSmkiError, parseEui64, type Eui64, type SmkiError } from '@smki/core';
import {
  AUDIT_LOG_FILE,
  AuditLog,
  defineAuditSchema,
  deriveAuditKey,
  KEYSTORE_AUDIT_SCHEMA,
  MAX_AUDIT_LINE_BYTES,
  verifyAuditLog,
  type AuditEvent,
  type AuditFieldSpec,
  type AuditHead,
  type AuditSchema,
} from '../src/audit.js';

const KEY = new Uint8Array(32).fill(0x5a); // a validator's own key: 32 bytes, no HKDF of the key store's
const DEV = parseEui64('00DB1234567890A0');
const ORG = parseEui64('90B3D51F30010000');
const AT = '2025-01-01T00:00:00.000Z';
const Z = '0'.repeat(64);

type Decision =
  | { readonly type: 'command.accepted'; readonly device: Eui64; readonly originator: Eui64; readonly messageCode: number; readonly counter: bigint }
  | { readonly type: 'command.refused'; readonly device: Eui64; readonly code: string; readonly detail?: string }
  | { readonly type: 'policy.loaded'; readonly version: number; readonly digest: string }
  | { readonly type: 'validator.v2-started' };

const DECISIONS = defineAuditSchema<Decision>({
  types: {
    'command.accepted': [
      { name: 'device', kind: 'eui64' },
      { name: 'originator', kind: 'eui64' },
      { name: 'messageCode', kind: 'messageCode' },
      { name: 'counter', kind: 'counter' },
    ],
    'command.refused': [
      { name: 'device', kind: 'eui64' },
      { name: 'code', kind: 'id' },
      { name: 'detail', kind: 'text', optional: true },
    ],
    'policy.loaded': [
      { name: 'version', kind: 'uint' },
      { name: 'digest', kind: 'hex' },
    ],
    'validator.v2-started': [],
  },
  useTypes: ['command.accepted', 'command.refused'],
});

const accepted = (i: number): Decision => ({ type: 'command.accepted', device: DEV, originator: ORG, messageCode: 0x0050, counter: BigInt(i) });
const refused = (code: string): Decision => ({ type: 'command.refused', device: DEV, code });
const policy = (version: number): Decision => ({ type: 'policy.loaded', version, digest: 'AB'.repeat(32) });

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'smki-audit-schema-'));
  dirs.push(d);
  return d;
}
const fixedClock = () => {
  let t = Date.parse(AT);
  return () => new Date((t += 1000));
};
const sha = (line: string) => createHash('sha256').update(line).digest('hex').toUpperCase();
const linesOf = (path: string) => readFileSync(path, 'utf8').split('\n').slice(0, -1);

async function refusal(p: Promise<unknown>, code = 'ERR_INVALID_ARGUMENT'): Promise<SmkiError> {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  );
  if (!isSmkiError(e)) throw new Error(`expected ${code}, got ${String(e)}`);
  expect(e.code).toBe(code);
  return e;
}
function thrown(f: () => unknown, code = 'ERR_INVALID_ARGUMENT'): SmkiError {
  let e: unknown;
  try {
    f();
  } catch (x) {
    e = x;
  }
  if (!isSmkiError(e)) throw new Error(`expected ${code}, got ${String(e)}`);
  expect(e.code).toBe(code);
  return e;
}
/** Whether `p` is still pending after the event loop has had a few turns. */
async function pending(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((r) => setTimeout(r, 20));
  return !settled;
}

async function decisionLog(options: { file?: string; groupCommitMs?: number; head?: AuditHead } = {}) {
  const dir = tempDir();
  const log = await AuditLog.open(dir, { key: KEY, schema: DECISIONS, file: 'decisions.log', now: fixedClock(), ...options });
  return { dir, log };
}

describe('a log of another schema: append, stage, reopen with an intent, verify', () => {
  it('writes records of the schema, in its field order, to its own file, and they verify with it', async () => {
    const { dir, log } = await decisionLog();
    expect(log.path).toBe(join(dir, 'decisions.log'));
    const first = await log.append({ type: 'validator.v2-started' }, { durable: true });
    expect(first).toEqual({ type: 'validator.v2-started', seq: 1, at: '2025-01-01T00:00:01.000Z', prev: Z, mac: expect.stringMatching(/^[0-9A-F]{64}$/) });
    await log.append(policy(3), { durable: true });
    const use = await log.append(accepted(7), { durable: false });
    expect(use).toMatchObject({ type: 'command.accepted', device: DEV, originator: ORG, messageCode: 0x50, counter: 7n, seq: 3 });
    await log.append({ type: 'command.refused', device: DEV, code: 'ERR_COMMAND_REPLAYED', detail: 'counter 6 <= 7' }, { durable: false });
    const head = await log.flush();
    await log.close();
    expect(existsSync(join(dir, AUDIT_LOG_FILE))).toBe(false);
    const lines = linesOf(log.path);
    expect(lines).toHaveLength(4);
    expect(Object.keys(JSON.parse(lines[2]!))).toEqual(['seq', 'at', 'type', 'device', 'originator', 'messageCode', 'counter', 'prev', 'mac']);
    expect(JSON.parse(lines[2]!)).toMatchObject({ counter: '7', messageCode: 80 });
    expect(Object.keys(JSON.parse(lines[3]!))).toEqual(['seq', 'at', 'type', 'device', 'code', 'detail', 'prev', 'mac']);
    expect(JSON.parse(lines[1]!).prev).toBe(sha(lines[0]!));
    expect(head).toEqual({ count: 4, lastHash: sha(lines[3]!), bytes: statSync(log.path).size });
    expect(await verifyAuditLog(log.path, { key: KEY, head, schema: DECISIONS })).toMatchObject({ ok: true, count: 4, head, findings: [] });
    expect(await verifyAuditLog(lines, { key: KEY, head, schema: DECISIONS })).toMatchObject({ ok: true, count: 4 });
    // reopened, in both verification modes, the chain goes on
    for (const verifyOnOpen of ['full', 'tail'] as const) {
      const again = await AuditLog.open(dir, { key: KEY, schema: DECISIONS, file: 'decisions.log', head, verifyOnOpen });
      expect(again.head()).toEqual(head);
      expect(again.recovery).toEqual({ tornBytesRemoved: 0, recordsBeyondHead: 0, lifecycleBeyondHead: [], intentLinesWritten: 0 });
      await again.close();
    }
  });

  it('stage and commit; after a crash between the saved state and the log, open with the intent writes the lines', async () => {
    const { dir, log } = await decisionLog();
    await log.append(policy(1), { durable: true });
    const staged = await log.stage([policy(2), refused('ERR_X')]);
    expect(staged.lines.map((l) => JSON.parse(l).type)).toEqual(['policy.loaded', 'command.refused']);
    expect(await log.commitStaged()).toEqual(staged.after);
    // a second stage is saved with the state, but the process dies before commitStaged
    const before = await log.beginStage();
    const lost = log.stageSync([policy(3), accepted(1)]);
    expect(lost.before).toEqual(before);
    log.abortStaged(); // (the crash: nothing written)
    await log.close();
    expect(statSync(log.path).size).toBe(lost.before.bytes);
    const intent = { before: lost.before, lines: lost.lines };
    expect(await verifyAuditLog(log.path, { key: KEY, head: lost.after, intent, schema: DECISIONS })).toMatchObject({ ok: true, intentLinesMissing: 2 });
    const reopened = await AuditLog.open(dir, { key: KEY, schema: DECISIONS, file: 'decisions.log', head: lost.after, intent });
    expect(reopened.recovery.intentLinesWritten).toBe(2);
    expect(reopened.head()).toEqual(lost.after);
    await reopened.close();
    expect(linesOf(log.path).slice(-2)).toEqual(lost.lines);
    expect(await verifyAuditLog(log.path, { key: KEY, head: lost.after, schema: DECISIONS })).toMatchObject({ ok: true, count: 5 });
  });
});

describe('the schema decides what a record may be', () => {
  it('a type the schema does not have is refused (a key store type too), and nothing is written', async () => {
    const { log } = await decisionLog();
    for (const event of [{ type: 'key.csr', keyId: 'K' }, { type: 'command.deleted' }, { type: 'constructor' }]) {
      const e = await refusal(log.append(event as unknown as Decision, { durable: true }));
      expect(e.context).toEqual({ detail: event.type });
    }
    await log.beginStage();
    expect(thrown(() => log.stageSync([{ type: 'key.retired', keyId: 'K' } as unknown as Decision])).context).toEqual({ detail: 'key.retired' });
    log.abortStaged();
    await log.close();
    expect(statSync(log.path).size).toBe(0);
  });

  it('a field the type does not list is refused, naming it and not its value; so is a missing one and a value of the wrong kind', async () => {
    const { log } = await decisionLog();
    const secret = 'C0FFEE'.repeat(10);
    const e = await refusal(log.append({ ...refused('X'), privateKey: secret } as unknown as Decision, { durable: true }));
    expect(e.context).toEqual({ detail: 'command.refused.privateKey' });
    expect(e.message).not.toContain(secret);
    // a field of another type of the same schema is not one of this type's
    expect((await refusal(log.append({ ...refused('X'), version: 1 } as unknown as Decision, { durable: true }))).context).toEqual({ detail: 'command.refused.version' });
    expect((await refusal(log.append({ type: 'policy.loaded', version: 1 } as unknown as Decision, { durable: true }))).context).toEqual({ detail: 'policy.loaded.digest' });
    expect((await refusal(log.append({ type: 'policy.loaded', version: -1, digest: 'AB' }, { durable: true }))).context).toEqual({ detail: 'policy.loaded.version' });
    expect((await refusal(log.append({ ...refused('bad id') }, { durable: true }))).context).toEqual({ detail: 'command.refused.code' });
    // a stray field is refused even when a listed field is hidden (own but not enumerable): the
    // check looks at every enumerable key, it does not count them
    const hidden = { ...refused('X'), privateKey: secret };
    Object.defineProperty(hidden, 'code', { value: 'X', enumerable: false });
    expect((await refusal(log.append(hidden as unknown as Decision, { durable: true }))).context).toEqual({ detail: 'command.refused.privateKey' });
    await log.beginStage();
    expect(thrown(() => log.stageSync([hidden as unknown as Decision])).context).toEqual({ detail: 'command.refused.privateKey' });
    log.abortStaged();
    // the optional field may be left out, or given
    expect(await log.append(refused('X'), { durable: true })).not.toHaveProperty('detail');
    await log.close();
    expect(linesOf(log.path)).toHaveLength(1);
  });

  it('useTypes decides which records beyond the head are handed over as lifecycle records', async () => {
    const dir = tempDir();
    const write = await AuditLog.open(dir, { key: KEY, schema: DECISIONS, file: 'd.log' });
    await write.append(policy(1), { durable: true });
    const head = write.head();
    await write.append(accepted(1), { durable: true });
    await write.append(policy(2), { durable: true });
    await write.append(refused('ERR_X'), { durable: true });
    await write.append({ type: 'validator.v2-started' }, { durable: true });
    await write.close();
    const reopen = async (schema: AuditSchema<Decision>) => {
      const log = await AuditLog.open(dir, { key: KEY, schema, file: 'd.log', head });
      const r = log.recovery;
      await log.close();
      return { count: r.recordsBeyondHead, types: r.lifecycleBeyondHead.map((x) => `${x.seq}:${x.type}`) };
    };
    expect(await reopen(DECISIONS)).toEqual({ count: 4, types: ['3:policy.loaded', '5:validator.v2-started'] });
    const noUse = defineAuditSchema<Decision>({ ...DECISIONS, useTypes: [] });
    expect(await reopen(noUse)).toEqual({ count: 4, types: ['2:command.accepted', '3:policy.loaded', '4:command.refused', '5:validator.v2-started'] });
    const allUse = defineAuditSchema<Decision>({ ...DECISIONS, useTypes: ['command.accepted', 'command.refused', 'policy.loaded', 'validator.v2-started'] });
    expect(await reopen(allUse)).toEqual({ count: 4, types: [] });
    // the lifecycle records come with their fields
    const log = await AuditLog.open(dir, { key: KEY, schema: DECISIONS, file: 'd.log', head });
    expect(log.recovery.lifecycleBeyondHead[0]).toMatchObject({ type: 'policy.loaded', version: 2, digest: 'AB'.repeat(32), seq: 3 });
    await log.close();
    // verifyAuditLog: allowBeyondHead is separate from useTypes, and typed by the schema
    const r = await verifyAuditLog(join(dir, 'd.log'), { key: KEY, head, schema: DECISIONS, allowBeyondHead: ['command.accepted', 'command.refused'] });
    expect(r.findings.map((x) => [x.code, x.seq])).toEqual([
      ['ERR_KEYSTORE_METADATA_ROLLBACK', 3],
      ['ERR_KEYSTORE_METADATA_ROLLBACK', 5],
    ]);
  });

  it('the key store keeps its own: key.used is its one use type', async () => {
    expect(KEYSTORE_AUDIT_SCHEMA.useTypes).toEqual(['key.used']);
    expect(Object.keys(KEYSTORE_AUDIT_SCHEMA.types)).toHaveLength(25);
    expect(KEYSTORE_AUDIT_SCHEMA.types['key.revoked']).toStrictEqual([
      { name: 'keyId', kind: 'id' },
      { name: 'reason', kind: 'text', optional: true },
    ]);
    // frozen all the way down, and already in the form defineAuditSchema gives
    const ks = KEYSTORE_AUDIT_SCHEMA;
    for (const o of [ks, ks.types, ks.useTypes, ks.types['key.used'], ks.types['key.used'][0]]) expect(Object.isFrozen(o)).toBe(true);
    expect(defineAuditSchema(ks)).toStrictEqual(ks);
    const dir = tempDir();
    // the schema given explicitly is the default
    const log = await AuditLog.open(dir, { key: KEY, schema: KEYSTORE_AUDIT_SCHEMA });
    await log.append({ type: 'key.csr', keyId: 'K' }, { durable: true });
    const head = log.head();
    await log.append({ type: 'key.used', operation: 'sign', keyId: 'K', portfolioId: 'p', device: DEV }, { durable: true });
    await log.append({ type: 'key.retired', keyId: 'K' }, { durable: true });
    await log.close();
    const again = await AuditLog.open(dir, { key: KEY, head });
    expect(again.recovery.recordsBeyondHead).toBe(2);
    expect(again.recovery.lifecycleBeyondHead.map((r) => r.type)).toEqual(['key.retired']);
    await again.close();
  });
});

describe('a log read with another schema does not verify', () => {
  async function keystoreLog() {
    const dir = tempDir();
    const key = deriveAuditKey(new Uint8Array(32).fill(3));
    const log = await AuditLog.open(dir, { key });
    await log.append({ type: 'key.csr', keyId: 'K1' }, { durable: true });
    await log.append({ type: 'key.used', operation: 'sign', keyId: 'K1', portfolioId: 'p', device: DEV, counter: 5n }, { durable: true });
    const head = log.head();
    await log.close();
    return { dir, key, path: log.path, head };
  }

  it('the key store’s log with a schema of other types: tampering at line 1, and open refuses', async () => {
    const { dir, key, path, head } = await keystoreLog();
    const r = await verifyAuditLog(path, { key, head, schema: DECISIONS });
    expect(r.ok).toBe(false);
    expect(r.findings[0]).toMatchObject({ code: 'ERR_AUDIT_TAMPERED', line: 1, seq: 1, message: 'malformed record: unknown record type' });
    const e = await refusal(AuditLog.open(dir, { key, head, schema: DECISIONS }), 'ERR_AUDIT_TAMPERED');
    expect(e.message).toMatch(/line 1/);
    expect((await verifyAuditLog(path, { key, head })).ok).toBe(true);
  });

  it('a schema with the same types but one field of another kind, or one field fewer, or in another order: tampering at that record', async () => {
    const { key, path } = await keystoreLog();
    const used = KEYSTORE_AUDIT_SCHEMA.types['key.used'];
    const variant = (fields: readonly AuditFieldSpec[]) => defineAuditSchema<AuditEvent>({ types: { ...KEYSTORE_AUDIT_SCHEMA.types, 'key.used': fields as typeof used }, useTypes: ['key.used'] });
    for (const schema of [
      variant(used.map((s) => (s.name === 'counter' ? { ...s, kind: 'uint' } : s))),
      variant(used.filter((s) => s.name !== 'counter')),
      variant([...used.slice(1), used[0]!]),
    ]) {
      const r = await verifyAuditLog(path, { key, schema });
      expect(r.ok).toBe(false);
      expect(r.findings).toHaveLength(1);
      expect(r.findings[0]).toMatchObject({ code: 'ERR_AUDIT_TAMPERED', line: 2, seq: 2 });
    }
  });

  it('a decision log read as the key store’s: tampering; a schema that grew (a new type, a new optional field) still reads it', async () => {
    const { log } = await decisionLog();
    await log.append(refused('ERR_X'), { durable: true });
    const head = log.head();
    await log.close();
    expect((await verifyAuditLog(log.path, { key: KEY, head })).findings[0]).toMatchObject({ code: 'ERR_AUDIT_TAMPERED', line: 1, message: 'malformed record: unknown record type' });
    type Grown =
      | Exclude<Decision, { type: 'command.refused' }>
      | { readonly type: 'command.refused'; readonly device: Eui64; readonly code: string; readonly detail?: string; readonly hint?: string }
      | { readonly type: 'command.held'; readonly device: Eui64 };
    const grown = defineAuditSchema<Grown>({
      types: {
        ...DECISIONS.types,
        'command.refused': [...DECISIONS.types['command.refused'], { name: 'hint', kind: 'text', optional: true }],
        'command.held': [{ name: 'device', kind: 'eui64' }],
      },
      useTypes: DECISIONS.useTypes,
    });
    expect((await verifyAuditLog(log.path, { key: KEY, head, schema: grown })).ok).toBe(true);
  });

  it('a schema that is not one is refused before anything is read', async () => {
    const { key, path } = await keystoreLog();
    const e = await refusal(verifyAuditLog(path, { key, schema: { types: {}, useTypes: [] } as unknown as AuditSchema }));
    expect(e.context).toEqual({ detail: 'types' });
    const dir = tempDir();
    expect((await refusal(AuditLog.open(dir, { key, schema: null as unknown as AuditSchema }))).context).toEqual({ detail: 'schema' });
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('the file option: a plain file name in the directory', () => {
  it('defaults to audit.log; two logs of two schemas live side by side', async () => {
    const dir = tempDir();
    const ks = await AuditLog.open(dir, { key: KEY });
    const vs = await AuditLog.open(dir, { key: KEY, schema: DECISIONS, file: 'Az09._-' });
    expect(ks.path).toBe(join(dir, AUDIT_LOG_FILE));
    expect(vs.path).toBe(join(dir, 'Az09._-'));
    await ks.append({ type: 'key.csr', keyId: 'K' }, { durable: true });
    await vs.append(refused('ERR_X'), { durable: true });
    await ks.close();
    await vs.close();
    expect(statSync(vs.path).mode & 0o777).toBe(0o600);
    expect((await verifyAuditLog(ks.path, { key: KEY, head: ks.head() })).ok).toBe(true);
    expect((await verifyAuditLog(vs.path, { key: KEY, head: vs.head(), schema: DECISIONS })).ok).toBe(true);
  });

  it('a name of 1 or 255 characters is accepted; anything that is not a plain name is refused and nothing is created', async () => {
    const dir = tempDir();
    const long = 'x'.repeat(255);
    for (const file of [long, 'a']) {
      const ok = await AuditLog.open(dir, { key: KEY, file });
      expect(ok.path).toBe(join(dir, file));
      await ok.close();
    }
    for (const file of ['', '.', '..', 'a/b', '../audit.log', '/etc/passwd', 'a\\b', 'a b', 'a\0', 'x'.repeat(256), ['audit.log'], 5, null]) {
      const e = await refusal(AuditLog.open(dir, { key: KEY, file: file as string }));
      expect(e.context).toEqual({ detail: 'file' });
    }
    expect(readdirSync(dir).sort()).toEqual(['a', long]);
  });
});

/** Events of any shape: the type of a schema built at run time. */
type Wide = { readonly type: string; readonly [field: string]: unknown };

describe('defineAuditSchema: a checked, frozen copy', () => {
  const ok = (types: Record<string, unknown>, useTypes: unknown[] = []) => defineAuditSchema({ types, useTypes } as unknown as AuditSchema<Wide>);
  const bad = (schema: unknown, detail: string) => {
    const e = thrown(() => defineAuditSchema(schema as AuditSchema<Wide>));
    expect(e.context).toEqual({ detail });
  };
  const field = (name: unknown, kind: unknown = 'id', extra: object = {}) => ({ name, kind, ...extra });

  it('returns a deep, frozen copy: later changes to what was given change nothing', () => {
    const fields = [field('a'), field('b', 'text', { optional: true }), field('c', 'uint', { optional: undefined })];
    const use = ['t.x'];
    const given = { types: { 't.x': fields, 'u-1': [] }, useTypes: use };
    const s = defineAuditSchema(given as unknown as AuditSchema<Wide>);
    fields.push(field('d'));
    fields[0]!.name = 'z';
    use.pop();
    expect(s).toStrictEqual({
      types: {
        't.x': [
          { name: 'a', kind: 'id' },
          { name: 'b', kind: 'text', optional: true },
          { name: 'c', kind: 'uint' },
        ],
        'u-1': [],
      },
      useTypes: ['t.x'],
    });
    expect(Object.keys(s.types['t.x']![2]!)).toEqual(['name', 'kind']);
    for (const o of [s, s.types, s.useTypes, s.types['t.x'], s.types['t.x']![0]]) expect(Object.isFrozen(o)).toBe(true);
    expect(s).not.toBe(given);
  });

  it('the schema itself: an object with types and a list of use types, and at least one type', () => {
    bad(null, 'schema');
    bad(undefined, 'schema');
    bad({}, 'schema');
    bad({ types: {} }, 'schema');
    bad({ types: null, useTypes: [] }, 'schema');
    bad({ types: 'abc', useTypes: [] }, 'schema');
    bad({ types: { a: [] }, useTypes: 'a' }, 'schema');
    bad({ types: { a: [] }, useTypes: { length: 0 } }, 'schema');
    bad({ types: {}, useTypes: [] }, 'types');
    bad({ types: [], useTypes: [] }, 'types');
    expect(ok({ a: [] }).types).toEqual({ a: [] });
  });

  it('type names: [a-z][a-z0-9.-]{0,63}', () => {
    const longest = `a${'z0.-'.repeat(16)}`.slice(0, 64);
    expect(Object.keys(ok({ [longest]: [], a: [], 'a.b-9': [], constructor: [] }).types)).toEqual([longest, 'a', 'a.b-9', 'constructor']);
    for (const t of ['A', 'aB', '9a', '.a', '-a', 'a_b', 'a b', 'a/b', `a${'b'.repeat(64)}`]) bad({ types: { [t]: [] }, useTypes: [] }, `types.${t.slice(0, 64)}`);
    bad({ types: { a: [], '': [] }, useTypes: [] }, 'types.');
  });

  it('at most 12 fields per type, in a list', () => {
    const twelve = Array.from({ length: 12 }, (_, i) => field(`f${i}`));
    expect(ok({ t: twelve }).types['t']).toHaveLength(12);
    bad({ types: { t: [...twelve, field('f12')] }, useTypes: [] }, 'types.t');
    bad({ types: { t: { length: 0 } }, useTypes: [] }, 'types.t');
    bad({ types: { t: undefined }, useTypes: [] }, 'types.t');
    bad({ types: { t: 'abc' }, useTypes: [] }, 'types.t');
  });

  it('field names: [A-Za-z][A-Za-z0-9_]{0,63}, not reserved, not from Object.prototype, not twice', () => {
    const longest = `Z${'a0_'.repeat(21)}`;
    expect(longest).toHaveLength(64);
    expect(ok({ t: [field(longest), field('a'), field('B')] }).types['t']!.map((s) => s.name)).toEqual([longest, 'a', 'B']);
    const names: unknown[] = ['', '0a', '_a', 'a-b', 'a.b', 'a b', `${longest}x`, 'seq', 'at', 'type', 'prev', 'mac', 'constructor', 'toString', 'hasOwnProperty', '__proto__', ['ab'], 5, undefined];
    for (const name of names) bad({ types: { t: [field('ok'), field(name)] }, useTypes: [] }, 'types.t[1]');
    bad({ types: { t: [field('ok'), null] }, useTypes: [] }, 'types.t[1]');
    bad({ types: { t: [field('ok'), 'ok'] }, useTypes: [] }, 'types.t[1]');
    bad({ types: { t: [field('a'), field('b'), field('a', 'uint')] }, useTypes: [] }, 'types.t.a');
    // the same name in two types is fine
    expect(ok({ t: [field('a')], u: [field('a', 'uint')] }).types['u']).toEqual([{ name: 'a', kind: 'uint' }]);
  });

  it('kinds: the eleven known ones only; optional is true or absent', () => {
    const kinds = ['eui64', 'role', 'id', 'text', 'purpose', 'purposes', 'uint', 'hex', 'operation', 'messageCode', 'counter'];
    expect(ok({ t: kinds.map((k, i) => field(`f${i}`, k)) }).types['t']!.map((s) => s.kind)).toEqual(kinds);
    for (const kind of ['bytes', 'ID', '', undefined, ['id']]) bad({ types: { t: [{ name: 'a', kind }] }, useTypes: [] }, 'types.t.a');
    for (const optional of [false, 1, 'true', null]) bad({ types: { t: [field('a', 'id', { optional })] }, useTypes: [] }, 'types.t.a');
  });

  it('use types: each one of the types', () => {
    expect(ok({ a: [], b: [] }, ['b', 'a']).useTypes).toEqual(['b', 'a']);
    for (const u of ['c', 'constructor', 'toString', ['a'], 1]) bad({ types: { a: [] }, useTypes: ['a', u] }, 'useTypes');
  });

  it('a type name that is too long is named by its first 64 characters', () => {
    const t = `a${'b'.repeat(99)}`;
    bad({ types: { [t]: [] }, useTypes: [] }, `types.${t.slice(0, 64)}`);
    bad({ types: { [t.slice(0, 64)]: [field('x'), field('x')] }, useTypes: [] }, `types.${t.slice(0, 64)}.x`);
  });
});

describe('the staged append in two halves: beginStage, then stageSync inside the caller’s transaction', () => {
  it('beginStage flushes what is waiting and returns the head the lines follow; stageSync computes them at once; commitStaged writes them', async () => {
    const { log } = await decisionLog({ groupCommitMs: 10_000 });
    await log.append(accepted(1), { durable: false });
    expect(statSync(log.path).size).toBe(0);
    const before = await log.beginStage();
    const size = statSync(log.path).size;
    expect(before).toEqual({ count: 1, lastHash: sha(linesOf(log.path)[0]!), bytes: size });
    // (a database transaction would run here, synchronously, and decide on these events)
    const staged = log.stageSync([policy(1), refused('ERR_Y')]);
    expect(staged.before).toEqual(before);
    expect(staged.lines.map((l) => JSON.parse(l).seq)).toEqual([2, 3]);
    expect(staged.after).toEqual({ count: 3, lastHash: sha(staged.lines[1]!), bytes: size + Buffer.byteLength(staged.lines.join('\n')) + 1 });
    expect(statSync(log.path).size).toBe(size);
    expect(await log.commitStaged()).toEqual(staged.after);
    expect(linesOf(log.path).slice(1)).toEqual(staged.lines);
    // the stage is over: appends go straight on, and a new stage may begin
    expect((await log.append(policy(2), { durable: true })).seq).toBe(4);
    expect((await log.beginStage()).count).toBe(4);
    log.abortStaged();
    await log.close();
    expect((await verifyAuditLog(log.path, { key: KEY, schema: DECISIONS })).ok).toBe(true);
  });

  it('the returned heads are copies', async () => {
    const { log } = await decisionLog();
    const before = (await log.beginStage()) as { count: number };
    before.count = 99;
    const staged = log.stageSync([policy(1)]);
    expect(staged.before.count).toBe(0);
    expect(await log.commitStaged()).toEqual(staged.after);
    await log.close();
  });

  it('appends and other stages wait from beginStage until commitStaged, in the order they came', async () => {
    const { log } = await decisionLog();
    await log.beginStage();
    const append = log.append(policy(9), { durable: true });
    const next = log.beginStage();
    expect(await pending(append)).toBe(true);
    expect(await pending(next)).toBe(true);
    log.stageSync([policy(1)]);
    await log.commitStaged();
    expect((await append).seq).toBe(2);
    expect(await next).toMatchObject({ count: 2 });
    log.abortStaged();
    await log.close();
  });

  it('stageSync with no stage begun, before beginStage has resolved, or a second time: refused, and the stage stays as it was', async () => {
    const { log } = await decisionLog();
    expect(thrown(() => log.stageSync([policy(1)])).context).toEqual({ detail: 'stageSync' });
    const begun = log.beginStage();
    expect(thrown(() => log.stageSync([policy(1)])).context).toEqual({ detail: 'stageSync' });
    await begun;
    const first = log.stageSync([policy(1)]);
    expect(thrown(() => log.stageSync([policy(2)])).context).toEqual({ detail: 'stageSync' });
    expect(await log.commitStaged()).toEqual(first.after); // the first lines, not the second
    expect(linesOf(log.path)).toEqual(first.lines);
    expect(thrown(() => log.stageSync([policy(3)])).context).toEqual({ detail: 'stageSync' });
    await log.close();
  });

  it('stageSync refuses no events, not a list, or an event of the wrong shape; the stage stays open and unchanged, to retry or abort', async () => {
    const { log } = await decisionLog();
    const before = await log.beginStage();
    expect(thrown(() => log.stageSync([])).context).toEqual({ detail: 'events' });
    expect(thrown(() => log.stageSync('ab' as unknown as Decision[])).context).toEqual({ detail: 'events' });
    expect(thrown(() => log.stageSync([policy(1), { type: 'policy.loaded', version: 1, digest: 'x' }])).context).toEqual({ detail: 'policy.loaded.digest' });
    // still open: an append waits, commit has nothing to write
    const append = log.append(policy(9), { durable: true });
    expect(await pending(append)).toBe(true);
    await refusal(log.commitStaged());
    expect(await pending(append)).toBe(true);
    // a retry stages after the same head
    expect(log.stageSync([policy(1)]).before).toEqual(before);
    log.abortStaged();
    expect((await append).seq).toBe(1);
    await log.close();
    expect(linesOf(log.path)).toHaveLength(1);
  });

  it('abortStaged ends a stage with or without lines staged; nothing is written and the chain goes on', async () => {
    const { log } = await decisionLog();
    await log.append(policy(1), { durable: true });
    const head = log.head();
    await log.beginStage();
    log.abortStaged();
    await log.beginStage();
    log.stageSync([policy(2)]);
    log.abortStaged();
    await refusal(log.commitStaged()); // the aborted lines are gone
    expect(log.head()).toEqual(head);
    const r = await log.append(policy(3), { durable: true });
    expect([r.seq, r.prev]).toEqual([2, head.lastHash]);
    await log.close();
    expect(linesOf(log.path).map((l) => JSON.parse(l).version)).toEqual([1, 3]);
  });

  it('stage is beginStage and stageSync: it refuses bad events and leaves no stage open', async () => {
    const { log } = await decisionLog({ groupCommitMs: 10_000 });
    await log.append(accepted(1), { durable: false });
    expect((await refusal(log.stage([]))).context).toEqual({ detail: 'events' });
    expect((await refusal(log.stage([refused('bad id')]))).context).toEqual({ detail: 'command.refused.code' });
    expect(thrown(() => log.stageSync([policy(1)])).context).toEqual({ detail: 'stageSync' });
    const s = await log.stage([policy(1)]);
    expect(s.before.count).toBe(1); // the use record was flushed first
    await log.commitStaged();
    expect((await log.append(policy(2), { durable: true })).seq).toBe(3);
    await log.close();
  });

  it('beginStage on a closed or failed log is refused and leaves no stage open', async () => {
    let armed = false;
    const dir = tempDir();
    const log = await AuditLog.open(dir, {
      key: KEY,
      schema: DECISIONS,
      groupCommitMs: 10_000,
      fault: (p) => {
        if (armed && p === 'audit:after-write') throw new Error('EIO');
      },
    });
    await log.append(accepted(1), { durable: false });
    armed = true;
    await refusal(log.beginStage(), 'ERR_AUDIT_WRITE_FAILED'); // its flush failed
    expect(thrown(() => log.stageSync([policy(1)])).context).toEqual({ detail: 'stageSync' });
    await refusal(log.beginStage(), 'ERR_AUDIT_WRITE_FAILED');
    await log.close();
    await refusal(log.beginStage(), 'ERR_KEYSTORE_CLOSED');
  });

  it('a clock outside years 0000..9999 is refused by stageSync, and the stage stays open', async () => {
    let at = new Date('+010000-01-01T00:00:00.000Z');
    const log = await AuditLog.open(tempDir(), { key: KEY, schema: DECISIONS, now: () => at });
    await log.beginStage();
    expect(thrown(() => log.stageSync([policy(1)])).context).toEqual({ detail: '+010000-01-01T00:00:00.000Z' });
    at = new Date(AT);
    expect(log.stageSync([policy(1)]).lines).toHaveLength(1);
    await log.commitStaged();
    await log.close();
  });
});

describe('the longest record of any schema is far under the verifier’s line limit', () => {
  it('12 text fields of 128 lone surrogates with 64-character names, a 64-character type: 10,333 bytes with a 16-digit seq', async () => {
    const type = `x${'y'.repeat(63)}`;
    const names = Array.from({ length: 12 }, (_, i) => `F${String(i).padStart(2, '0')}${'n'.repeat(61)}`);
    expect(names.every((n) => n.length === 64)).toBe(true);
    const schema = defineAuditSchema<Wide>({ types: { [type]: names.map((name) => ({ name, kind: 'text' as const })) }, useTypes: [] });
    const text = '\ud800'.repeat(128); // 6 bytes each as JSON: the longest text there is
    const event = Object.fromEntries([['type', type], ...names.map((n) => [n, text])]) as Wide;
    const dir = tempDir();
    const log = await AuditLog.open(dir, { key: KEY, schema });
    await log.append(event, { durable: true });
    const head = log.head();
    await log.close();
    const [line] = linesOf(log.path);
    // seq 1 written with one digit; the longest seq (2^53 - 1) has 16
    const longest = Buffer.byteLength(line!) + 15;
    expect(longest).toBe(10_333);
    expect(longest + 1).toBeLessThan(MAX_AUDIT_LINE_BYTES / 6);
    expect(await verifyAuditLog(log.path, { key: KEY, head, schema })).toMatchObject({ ok: true, count: 1 });
    const tail = await AuditLog.open(dir, { key: KEY, schema, head, verifyOnOpen: 'tail' });
    await tail.close();
  });

  it('the arithmetic: fixed part, then per field its name and its longest value', () => {
    const fixed = `{"seq":${2 ** 53 - 1},"at":"${AT}","type":"${'t'.repeat(64)}","prev":"${Z}","mac":"${Z}"}`;
    const perField = `,"${'n'.repeat(64)}":${JSON.stringify('\ud800'.repeat(128))}`;
    expect([fixed.length, perField.length]).toEqual([277, 838]);
    expect(fixed.length + 12 * perField.length).toBe(10_333);
  });
});
