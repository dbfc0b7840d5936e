// Child process for test/pkcs11.test.ts: a second process on the same SoftHSM2 token (reopen by
// handle), and a clean process to show that importing the backend loads no native addon.
// Inputs come from the environment (never the PIN on a command line): SMKI_T_MODE, SMKI_T_MODULE,
// SMKI_T_TOKEN, SMKI_T_PIN, SMKI_T_HANDLE, SMKI_T_MESSAGE (hex), and for the generation race
// SMKI_T_KEY_ID and SMKI_T_START (epoch ms). Prints one JSON line.
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
const openBackend = () => Pkcs11KeyBackend.open({ module: env('SMKI_T_MODULE'), tokenLabel: env('SMKI_T_TOKEN'), pin: env('SMKI_T_PIN') });
// SoftHSM2 may not list a token while another process rewrites its object files: the racing
// children retry their open (the race under test is the generation, not the open).
let backend: Awaited<ReturnType<typeof openBackend>> | undefined;
for (let attempt = 0; backend === undefined; attempt++) {
  try {
    backend = await openBackend();
  } catch (e) {
    if (env('SMKI_T_MODE') !== 'generate' || attempt >= 20) throw e;
    await new Promise((r) => setTimeout(r, 100));
  }
}
const afterOpen = nativeLoaded();
const out: Record<string, unknown> = { before, afterImport, afterOpen };
if (env('SMKI_T_MODE') === 'generate') {
  // Race: every child waits for the same instant, then generates a key under the same key id.
  const wait = Number(env('SMKI_T_START')) - Date.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  try {
    const g = await backend.generateKey({ keyId: env('SMKI_T_KEY_ID'), label: 'race' });
    out.handle = g.handle;
    out.publicKey = Buffer.from(g.publicKey).toString('hex');
  } catch (e) {
    out.code = (e as { code?: string }).code ?? String(e);
  }
} else if (env('SMKI_T_MODE') === 'sign') {
  const handle = env('SMKI_T_HANDLE');
  out.handles = await backend.listHandles();
  out.publicKey = Buffer.from(await backend.publicKey(handle)).toString('hex');
  out.signature = Buffer.from(await backend.sign(handle, Buffer.from(env('SMKI_T_MESSAGE'), 'hex'))).toString('hex');
}
await backend.close();
process.stdout.write(`${JSON.stringify(out)}\n`);
