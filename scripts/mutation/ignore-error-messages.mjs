// A StrykerJS ignorer: the human-readable message of an error is not behaviour. It skips the
// message argument (the second) of `new SmkiError(code, message, context)` and of the modules'
// throw helpers that take (code, message, ...) — `fail`, `refuse` — so that a mutant which only
// rewrites message text is not counted. Codes, contexts and every condition stay mutated: a
// mutant that changes which code is thrown, or whether anything is thrown, is still reported.
import { declareValuePlugin, PluginKind } from '@stryker-mutator/api/plugin';

const HELPERS = new Set(['fail', 'refuse']);

function isMessageArgument(path) {
  const parent = path.parentPath;
  if (!parent || path.listKey !== 'arguments' || path.key !== 1) return false;
  const node = parent.node;
  if (node.type === 'NewExpression') return node.callee.type === 'Identifier' && node.callee.name === 'SmkiError';
  if (node.type === 'CallExpression') return node.callee.type === 'Identifier' && HELPERS.has(node.callee.name);
  return false;
}

export const strykerPlugins = [
  declareValuePlugin(PluginKind.Ignore, 'error-messages', {
    shouldIgnore(path) {
      return isMessageArgument(path) ? 'error message text (not behaviour)' : undefined;
    },
  }),
];
