// Child process for test/pkcs11.test.ts: a second process on the same SoftHSM2 token (reopen by
// handle), and a clean process to show that importing the backend loads no native addon.
// Inputs come from the environment (never the PIN on a command line): SMKI_T_MODE, SMKI_T_MODULE,
// SMKI_T_TOKEN, SMKI_T_PIN, SMKI_T_HANDLE, SMKI_T_MESSAGE (hex). Prints one JSON line.
import { readFileSync } from 'node:fs';

const nativeLoaded = (): boolean => readFileSync('/proc/self/maps', 'utf8').includes('pkcs11.node');

const env = (name: string): string => {
  const v = process.env[name];
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};

const before = nativeLoaded();
const { Pkcs11KeyBackend } = await import('../src/backends/pkcs11.js');
const afterImport = nativeLoaded();
const backend = await Pkcs11KeyBackend.open({ module: env('SMKI_T_MODULE'), tokenLabel: env('SMKI_T_TOKEN'), pin: env('SMKI_T_PIN') });
const afterOpen = nativeLoaded();
const out: Record<string, unknown> = { before, afterImport, afterOpen };
if (env('SMKI_T_MODE') === 'sign') {
  const handle = env('SMKI_T_HANDLE');
  out.handles = await backend.listHandles();
  out.publicKey = Buffer.from(await backend.publicKey(handle)).toString('hex');
  out.signature = Buffer.from(await backend.sign(handle, Buffer.from(env('SMKI_T_MESSAGE'), 'hex'))).toString('hex');
}
await backend.close();
process.stdout.write(`${JSON.stringify(out)}\n`);
