/**
 * `smki quarantine list|release|discard`: the commands held by an anomaly threshold, and an
 * operator's decision on each. A release runs the checks again (a signer revoked meanwhile is
 * still refused) and is logged with the operator; a discard is logged likewise.
 * @module
 * @internal
 */
import { SmkiError } from '@smki/core';
import { Validator } from '@smki/validator';
import { example, intOption, type Register } from '../program.js';
import { table } from '../io.js';
import { decisionJson, validatorOptions } from './command.js';

export const register: Register = (program, wrap) => {
  const q = program.command('quarantine').description('commands held by an anomaly threshold: list, release, discard');
  example(q, 'smki quarantine list', 'smki quarantine release 6f1c…-… --operator alice');

  example(q.command('list').description('held commands, oldest first').option('--limit <n>', 'at most this many', intOption('--limit', 1, 100_000), 1000), 'smki quarantine list --json').action(
    wrap(async (ctx, _a, o) => {
      const { store } = await ctx.state().stores();
      const held = await store.heldQuarantine(o.limit as number);
      const rows = held.map((r) => ({ id: r.id, at: new Date(r.at).toISOString(), user: r.user, device: r.device, messageCode: r.messageCode.toString(16).toUpperCase().padStart(4, '0'), counter: r.counter }));
      return { json: rows, text: rows.length === 0 ? 'nothing held' : table(['id', 'held since', 'user', 'device', 'code', 'counter'], rows.map((r) => [r.id, r.at, r.user, r.device, r.messageCode, r.counter.toString()])) };
    }),
  );

  const decide = (name: 'release' | 'discard', description: string) =>
    example(
      q
        .command(name)
        .description(description)
        .argument('<id>', 'the quarantine record id (smki quarantine list)')
        .requiredOption('--operator <name>', 'who decides (recorded in the decision log)'),
      `smki quarantine ${name} 6f1c2d1e-0b7a-4c3e-9a55-0d2b9f1e8c41 --operator alice`,
    ).action(
      wrap(async (ctx, [id], o) => {
        const state = ctx.state();
        const validator = await Validator.open(await validatorOptions(state, 'main'));
        try {
          if (name === 'discard') {
            const held = await validator.discard(String(id), String(o.operator));
            if (!held) throw new SmkiError('ERR_QUARANTINE_NOT_HELD', `quarantine record ${String(id)} is not held`, { detail: String(id) });
            return { json: { id, discarded: true, operator: o.operator }, text: `${ctx.paint.green('✔')} ${String(id)} discarded by ${String(o.operator)}` };
          }
          const d = await validator.release(String(id), String(o.operator));
          const frame = d.outcome === 'accepted' ? Buffer.from(d.frame).toString('hex').toUpperCase() : undefined;
          return {
            json: decisionJson(d, 0),
            text: d.outcome === 'accepted' ? `${ctx.paint.green('✔')} released by ${String(o.operator)}: frame ${frame}` : `${ctx.paint.red('✘')} release refused: ${d.code} at ${d.step}${d.outcome === 'rejected' ? `: ${d.message}` : ''}`,
            exit: d.outcome === 'accepted' ? 'OK' : d.outcome === 'quarantined' ? 'QUARANTINED' : 'REJECTED',
          };
        } finally {
          await validator.close();
        }
      }),
    );
  decide('release', 'release a held command: the checks run again; its MAC\'d frame is printed');
  decide('discard', 'discard a held command');
};
