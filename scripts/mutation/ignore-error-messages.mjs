// A StrykerJS ignorer: the human-readable message of an error is not behaviour. It skips
//
// - the message argument (the second) of `new SmkiError(code, message, context)`, and
// - the argument a call passes to a message-text parameter of a function declared in the same
//   module, or of a private method (`this.#name(…)`) of the same class. A message-text parameter
//   is one named `message` (the modules' throw helpers: `fail(code, message, detail)`,
//   `malformed(message, offset)`, `invalidRequest(message, detail)`, …) or one whose name ends in
//   `ForMessage`, for a part of a message that is built elsewhere (the operation named in a
//   PKCS#11 failure: `hsmError(operationForMessage, e, code)`). Such a parameter must carry only
//   message text: the name is the promise that nothing decides on it. The function may also be one
//   imported from a module of the same package (a relative import: its declaration is read from
//   that file), a public method of a class so imported called through a private field of that
//   type (`this.#conn.query(operationForMessage, sql, params)`), or be called through a parameter
//   or variable whose type is a function type declared in this module (`type Fail = (field:
//   string, message: string) => SmkiError`).
//
// so that a mutant which only rewrites message text is not counted. Codes, contexts, details,
// offsets and every condition stay mutated: a mutant that changes which code is thrown, what
// context it carries, or whether anything is thrown, is still reported.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { declareValuePlugin, PluginKind } from '@stryker-mutator/api/plugin';
import ts from 'typescript';

/** Parameter names of the top-level functions a TypeScript file declares, by name (cached per file). */
const declaredIn = new Map();
function functionParamsOf(file) {
  let found = declaredIn.get(file);
  if (found) return found;
  found = new Map();
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    declaredIn.set(file, found);
    return found;
  }
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const params = (f) => f.parameters.map((p) => ({ type: 'Identifier', name: ts.isIdentifier(p.name) ? p.name.text : undefined }));
  for (const statement of source.statements) {
    if (ts.isFunctionDeclaration(statement) && statement.name) found.set(statement.name.text, params(statement));
    // A class's public methods, as `Class.method`.
    if (ts.isClassDeclaration(statement) && statement.name) {
      for (const m of statement.members) {
        if (ts.isMethodDeclaration(m) && m.name && ts.isIdentifier(m.name)) found.set(`${statement.name.text}.${m.name.text}`, params(m));
      }
    }
  }
  declaredIn.set(file, found);
  return found;
}

/**
 * The parameters of an imported function (or, with `member`, of a public method of an imported
 * class), when the import is relative (a module of this package).
 */
function importedParams(binding, callPath, member) {
  const spec = binding.path.node;
  const decl = binding.path.parent;
  if (spec.type !== 'ImportSpecifier' || decl?.type !== 'ImportDeclaration') return undefined;
  const from = decl.source.value;
  const here = callPath.hub?.file?.opts?.filename;
  if (typeof from !== 'string' || !from.startsWith('.') || typeof here !== 'string') return undefined;
  const file = resolve(dirname(here), from).replace(/\.js$/, '.ts');
  const name = spec.imported.type === 'Identifier' ? spec.imported.name : spec.imported.value;
  return functionParamsOf(file).get(member === undefined ? name : `${name}.${member}`);
}

/** The parameters of a function type: inline, or a type alias declared at the top of this module. */
function typedParams(typeAnnotation, callPath) {
  let t = typeAnnotation?.typeAnnotation;
  if (t?.type === 'TSTypeReference' && t.typeName.type === 'Identifier') {
    const program = callPath.findParent((p) => p.isProgram());
    const alias = program?.node.body
      .map((s) => (s.type === 'ExportNamedDeclaration' ? s.declaration : s))
      .find((s) => s?.type === 'TSTypeAliasDeclaration' && s.id.name === t.typeName.name);
    t = alias?.typeAnnotation;
  }
  if (t?.type !== 'TSFunctionType') return undefined;
  return t.parameters ?? t.params;
}

/** The parameter list of the function a call's callee names, if it is declared in this module. */
function calleeParams(callPath) {
  const callee = callPath.node.callee;
  if (callee.type === 'Identifier') {
    const binding = callPath.scope.getBinding(callee.name);
    if (!binding) return undefined;
    if (binding.kind === 'module') return importedParams(binding, callPath);
    const node = binding.path.node;
    if (node.type === 'FunctionDeclaration') return node.params;
    if (node.type === 'VariableDeclarator' && node.init && (node.init.type === 'ArrowFunctionExpression' || node.init.type === 'FunctionExpression')) return node.init.params;
    if (node.type === 'VariableDeclarator') return typedParams(node.id.typeAnnotation, callPath);
    if (binding.kind === 'param') {
      const param = node.type === 'AssignmentPattern' ? node.left : node;
      return typedParams(param.typeAnnotation, callPath);
    }
    return undefined;
  }
  // this.#name(…): a private method of the enclosing class (private names cannot reach further).
  if (callee.type === 'MemberExpression' && callee.object.type === 'ThisExpression' && callee.property.type === 'PrivateName') {
    const name = callee.property.id.name;
    const body = callPath.findParent((p) => p.isClassBody());
    const method = body?.node.body.find((m) => m.type === 'ClassPrivateMethod' && m.key.id.name === name);
    return method?.params;
  }
  // this.#field.method(…): a public method of a class imported from this package, held in a
  // private field declared with that class as its type (`readonly #conn: PgConnection`).
  if (
    callee.type === 'MemberExpression' &&
    callee.property.type === 'Identifier' &&
    callee.object.type === 'MemberExpression' &&
    callee.object.object.type === 'ThisExpression' &&
    callee.object.property.type === 'PrivateName'
  ) {
    const field = callee.object.property.id.name;
    const body = callPath.findParent((p) => p.isClassBody());
    const prop = body?.node.body.find((m) => m.type === 'ClassPrivateProperty' && m.key.id.name === field);
    const t = prop?.typeAnnotation?.typeAnnotation;
    if (t?.type !== 'TSTypeReference' || t.typeName.type !== 'Identifier') return undefined;
    const binding = callPath.scope.getBinding(t.typeName.name);
    return binding?.kind === 'module' ? importedParams(binding, callPath, callee.property.name) : undefined;
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
