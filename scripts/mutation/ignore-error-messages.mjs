// A StrykerJS ignorer: the human-readable message of an error is not behaviour. It skips
//
// - the message argument (the second) of `new SmkiError(code, message, context)`, and
// - the argument a call passes to a parameter named `message` of a function declared in the same
//   module (the modules' throw helpers: `fail(code, message, detail)`, `malformed(message, offset)`,
//   `invalidRequest(message, detail)`, …),
//
// so that a mutant which only rewrites message text is not counted. Codes, contexts, details,
// offsets and every condition stay mutated: a mutant that changes which code is thrown, what
// context it carries, or whether anything is thrown, is still reported.
import { declareValuePlugin, PluginKind } from '@stryker-mutator/api/plugin';

/** The parameter list of the function a call's callee names, if it is declared in this module. */
function calleeParams(callPath) {
  const callee = callPath.node.callee;
  if (callee.type !== 'Identifier') return undefined;
  const binding = callPath.scope.getBinding(callee.name);
  if (!binding) return undefined;
  const node = binding.path.node;
  if (node.type === 'FunctionDeclaration') return node.params;
  if (node.type === 'VariableDeclarator' && node.init && (node.init.type === 'ArrowFunctionExpression' || node.init.type === 'FunctionExpression')) return node.init.params;
  return undefined;
}

function isMessageArgument(path) {
  const parent = path.parentPath;
  if (!parent || path.listKey !== 'arguments' || typeof path.key !== 'number') return false;
  const node = parent.node;
  if (node.type === 'NewExpression') return path.key === 1 && node.callee.type === 'Identifier' && node.callee.name === 'SmkiError';
  if (node.type === 'CallExpression') {
    const param = calleeParams(parent)?.[path.key];
    const name = param?.type === 'AssignmentPattern' ? param.left.name : param?.name;
    return name === 'message';
  }
  return false;
}

export const strykerPlugins = [
  declareValuePlugin(PluginKind.Ignore, 'error-messages', {
    shouldIgnore(path) {
      return isMessageArgument(path) ? 'error message text (not behaviour)' : undefined;
    },
  }),
];
