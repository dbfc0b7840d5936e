// A StrykerJS ignorer: the human-readable message of an error is not behaviour. It skips
//
// - the message argument (the second) of `new SmkiError(code, message, context)`, and
// - the argument a call passes to a message-text parameter of a function declared in the same
//   module, or of a private method (`this.#name(…)`) of the same class. A message-text parameter
//   is one named `message` (the modules' throw helpers: `fail(code, message, detail)`,
//   `malformed(message, offset)`, `invalidRequest(message, detail)`, …) or one whose name ends in
//   `ForMessage`, for a part of a message that is built elsewhere (the operation named in a
//   PKCS#11 failure: `hsmError(operationForMessage, e, code)`). Such a parameter must carry only
//   message text: the name is the promise that nothing decides on it.
//
// so that a mutant which only rewrites message text is not counted. Codes, contexts, details,
// offsets and every condition stay mutated: a mutant that changes which code is thrown, what
// context it carries, or whether anything is thrown, is still reported.
import { declareValuePlugin, PluginKind } from '@stryker-mutator/api/plugin';

/** The parameter list of the function a call's callee names, if it is declared in this module. */
function calleeParams(callPath) {
  const callee = callPath.node.callee;
  if (callee.type === 'Identifier') {
    const binding = callPath.scope.getBinding(callee.name);
    if (!binding) return undefined;
    const node = binding.path.node;
    if (node.type === 'FunctionDeclaration') return node.params;
    if (node.type === 'VariableDeclarator' && node.init && (node.init.type === 'ArrowFunctionExpression' || node.init.type === 'FunctionExpression')) return node.init.params;
    return undefined;
  }
  // this.#name(…): a private method of the enclosing class (private names cannot reach further).
  if (callee.type === 'MemberExpression' && callee.object.type === 'ThisExpression' && callee.property.type === 'PrivateName') {
    const name = callee.property.id.name;
    const body = callPath.findParent((p) => p.isClassBody());
    const method = body?.node.body.find((m) => m.type === 'ClassPrivateMethod' && m.key.id.name === name);
    return method?.params;
  }
  return undefined;
}

/** Whether a parameter name promises message text only. */
function isMessageParameter(name) {
  return typeof name === 'string' && (name === 'message' || /.ForMessage$/.test(name));
}

function isMessageArgument(path) {
  const parent = path.parentPath;
  if (!parent || path.listKey !== 'arguments' || typeof path.key !== 'number') return false;
  const node = parent.node;
  if (node.type === 'NewExpression') return path.key === 1 && node.callee.type === 'Identifier' && node.callee.name === 'SmkiError';
  if (node.type === 'CallExpression') {
    const param = calleeParams(parent)?.[path.key];
    const name = param?.type === 'AssignmentPattern' ? param.left.name : param?.name;
    return isMessageParameter(name);
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
