/**
 * `smki keystore migrate|info`: the key store itself. A state directory made by an earlier release
 * keeps the key store's metadata in JSON (`keystore/store.json`); this release keeps it in a
 * database (`keystore/keystore.db`) and refuses the old layout until `smki keystore migrate` has
 * moved it, in place, keeping the keys where they are and binding the old log's head into the new
 * trail. `info` shows what an auditor needs: the store id and its audit public key.
 * @module
 * @internal
 */
import { existsSync } from 'node:fs';
import { SmkiError } from '@smki/core';
import { KEYSTORE_DATABASE_FILE, KeyStore, type MigrationReport } from '@smki/keystore';
import { example, type Register } from '../program.js';
import { table } from '../io.js';
import { AUDIT_PUBLIC_KEY_FILE } from '../state.js';

export const register: Register = (program, wrap) => {
  const keystore = program.command('keystore').description("the supplier's key store: migrate one made by an earlier release; its id and audit public key");
  example(keystore, 'smki keystore migrate', 'smki keystore info');

  example(
    keystore
      .command('migrate')
      .description("migrate a key store made by an earlier release (JSON metadata, keystore/store.json) into its database (keystore/keystore.db), in place: keys stay where they are, the old trail's head is bound into the new one; a migration interrupted is finished by running it again"),
    'smki keystore migrate',
    'smki keystore migrate --json',
  ).action(
    wrap(async (ctx) => {
      const state = ctx.state();
      if (!existsSync(state.path('keystore', 'store.json'))) {
        throw new SmkiError('ERR_CLI_USAGE', `nothing to migrate: ${state.path('keystore')} holds no key store of an earlier release (no store.json)`, { detail: state.path('keystore') });
      }
      const backend = await state.keystoreBackend();
      let report: MigrationReport;
      try {
        report = await KeyStore.migrate({ directory: state.path('keystore'), backend, passphrase: state.passphrase });
      } finally {
        await backend.close();
      }
      // The migrated store opens, and its audit public key is kept for the auditor.
      const ks = await state.keystore();
      state.writeAuditPublicKey(ks.auditPublicKey);
      const head = await ks.auditHead();
      return {
        json: { ...report, auditPublicKey: ks.auditPublicKey, auditPublicKeyFile: `keystore/${AUDIT_PUBLIC_KEY_FILE}`, database: `keystore/${KEYSTORE_DATABASE_FILE}`, trailRecords: head.seq },
        text: [
          `${ctx.paint.green('✔')} migrated the key store in ${state.path('keystore')}${report.resumed ? ' (an interrupted migration, finished)' : ''}`,
          table(
            ['', ''],
            [
              ['store id', report.storeId],
              ['rows written', report.rows],
              ['old log', `${report.fromRecords} record(s), last hash ${report.fromHash}`],
              ['database', `keystore/${KEYSTORE_DATABASE_FILE}`],
              ['audit public key', `keystore/${AUDIT_PUBLIC_KEY_FILE}`],
            ],
          ),
          'the old metadata is kept as keystore/store.json.migrated; give an auditor the audit public key (smki keystore info)',
        ].join('\n'),
      };
    }),
  );

  example(keystore.command('info').description('the key store: its id, audit public key, trail head, and whether it is under access control'), 'smki keystore info --json').action(
    wrap(async (ctx) => {
      const state = ctx.state();
      const ks = await state.keystore();
      const head = await ks.auditHead();
      const controlled = await ks.accessControlled();
      const hex = Buffer.from(ks.auditPublicKey).toString('hex').toUpperCase();
      return {
        json: { storeId: ks.storeId, auditPublicKey: hex, database: `keystore/${KEYSTORE_DATABASE_FILE}`, trailHead: head, accessControlled: controlled, orphanHandles: ks.orphanHandles() },
        text: [
          `key store ${ks.storeId} (keystore/${KEYSTORE_DATABASE_FILE})`,
          `  audit public key: ${hex}`,
          `  trail: ${head.seq} record(s) in ${head.batch} batch(es), head ${head.hash}`,
          `  access control: ${controlled ? 'yes (smki operator list)' : 'no'}`,
          ...(ks.orphanHandles().length > 0 ? [`  backend keys no key row references (left by a change that never committed): ${ks.orphanHandles().join(' ')}`] : []),
        ].join('\n'),
      };
    }),
  );
};
