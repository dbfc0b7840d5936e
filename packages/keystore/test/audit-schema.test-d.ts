// Type-level: a log is typed by its record schema, so an event of another schema (a key store
// event in a validator's log, or the reverse), a field name its event does not have, or a use type
// that is not one of the types, is a compile error. Run in vitest's typecheck mode.
import { describe, expectTypeOf, test } from 'vitest';
import type { Eui64 } from '@smki/core';
import { AuditLog, defineAuditSchema, verifyAuditLog, type AuditEvent, type AuditRecord, type AuditSchema } from '@smki/keystore';

type Decision =
  | { readonly type: 'command.refused'; readonly device: Eui64; readonly code: string }
  | { readonly type: 'policy.loaded'; readonly version: number };
declare const schema: AuditSchema<Decision>;
declare const key: Uint8Array;
declare const decisions: AuditLog<Decision>;
declare const keystore: AuditLog;

describe('an audit log is typed by its schema', () => {
  test('open with a schema gives a log of its events; without one, the key store’s', () => {
    expectTypeOf(AuditLog.open('/d', { key, schema })).resolves.toEqualTypeOf<AuditLog<Decision>>();
    expectTypeOf(AuditLog.open('/d', { key })).resolves.toEqualTypeOf<AuditLog<AuditEvent>>();
    expectTypeOf(keystore).toEqualTypeOf<AuditLog<AuditEvent>>();
  });

  test('append and stage take only events of the schema; records and recovery carry them', () => {
    // @ts-expect-error a key store event is not a decision
    void decisions.append({ type: 'key.retired', keyId: 'K' }, { durable: true });
    // @ts-expect-error nor is a decision a key store event
    void keystore.append({ type: 'policy.loaded', version: 1 }, { durable: true });
    // @ts-expect-error
    decisions.stageSync([{ type: 'key.csr', keyId: 'K' }]);
    expectTypeOf(decisions.append({ type: 'policy.loaded', version: 1 }, { durable: true })).resolves.toEqualTypeOf<AuditRecord<Decision>>();
    expectTypeOf(decisions.recovery.lifecycleBeyondHead).toEqualTypeOf<readonly AuditRecord<Decision>[]>();
    expectTypeOf(keystore.recovery.lifecycleBeyondHead).toEqualTypeOf<readonly AuditRecord[]>();
  });

  test('a schema names fields of its events, every type, and use types among them', () => {
    defineAuditSchema<Decision>({
      types: {
        // @ts-expect-error 'cod' is not a property of a command.refused event
        'command.refused': [{ name: 'device', kind: 'eui64' }, { name: 'cod', kind: 'id' }],
        'policy.loaded': [{ name: 'version', kind: 'uint' }],
      },
      useTypes: [],
    });
    // @ts-expect-error every type needs its field list
    defineAuditSchema<Decision>({ types: { 'policy.loaded': [] }, useTypes: [] });
    // @ts-expect-error a use type must be one of the types
    defineAuditSchema<Decision>({ types: { 'policy.loaded': [], 'command.refused': [] }, useTypes: ['key.used'] });
    // @ts-expect-error not a kind
    defineAuditSchema<Decision>({ types: { 'policy.loaded': [{ name: 'version', kind: 'bytes' }], 'command.refused': [] }, useTypes: [] });
  });

  test('verifyAuditLog: the types allowed beyond the head are the schema’s', () => {
    void verifyAuditLog('/d/a.log', { key, schema, allowBeyondHead: ['command.refused'] });
    // @ts-expect-error key.used is not a decision type
    void verifyAuditLog('/d/a.log', { key, schema, allowBeyondHead: ['key.used'] });
    void verifyAuditLog('/d/a.log', { key, allowBeyondHead: ['key.used', 'store.opened'] });
  });
});
