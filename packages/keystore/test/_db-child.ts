// Child process for db-processes.test.ts and db-crash.test.ts: opens the database store named by
// the environment (SMKI_DB=sqlite:<path> or postgres:<schema>, with PG* variables), keys in a
// shared file backend (SMKI_KEYS), and runs one role:
//   sign <n> <base>     n signatures on random meters, counters base.., results to SMKI_OUT
//   rotate <rounds>     rotate a portfolio's DS key, update its meters, retire the old key
//   move <rounds>       move meters between portfolios and update their credentials
//   op <name>           one lifecycle operation (crash tests: SMKI_KILL_AT names a fault point)
// Usage: node --import tsx _db-child.ts <role> <args…>
import { writeFileSync } from 'node:fs';
import { createHierarchy, issueOrganisationCertificate } from '@smki/pki';
import { createKeySigner, isSmkiError } from '@smki/core';
import { FileKeyBackend } from '../src/backends/file.js';
import { DbKeyStore } from '../src/internal/db/engine.js';
import { PostgresDriver, SqliteDriver, type SqlDriver } from '../src/internal/db/driver.js';
import { POSTGRES_SCHEMA, SQLITE_SCHEMA } from '../src/internal/db/schema.js';

export const PASS = 'db child passphrase';
export const SUPPLIER = '90B3D51F30010000';
export const meter = (i: number): string => `00DB${i.toString(16).toUpperCase().padStart(12, '0')}`;

export async function openDriver(spec: string): Promise<SqlDriver> {
  const [kind, where] = [spec.slice(0, spec.indexOf(':')), spec.slice(spec.indexOf(':') + 1)];
  return kind === 'sqlite' ? SqliteDriver.open(where, SQLITE_SCHEMA, 30_000) : PostgresDriver.open({ schema: where, statementTimeoutMs: 60_000 }, POSTGRES_SCHEMA);
}

/** An organisation CA from the PEM key in SMKI_OCA_KEY (every process issues under the same key). */
export async function orgCa() {
  const signer = createKeySigner(process.env.SMKI_OCA_KEY as string);
  return (await createHierarchy({ signers: { organisationCa: signer } })).organisationCa;
}

export async function issueInto(store: DbKeyStore, portfolio: string): Promise<string> {
  const h = await store.generateKey(SUPPLIER, portfolio, 'signing');
  const csr = await store.createCsr(h.keyId);
  const cert = await issueOrganisationCertificate({ issuer: await orgCa(), role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', csr });
  await store.attachCertificate(h.keyId, cert);
  return h.keyId;
}

/** The crash tests' operations, each run on a copy of the same base state. */
export async function runOp(store: DbKeyStore, op: string): Promise<void> {
  const g2 = `${SUPPLIER}.north.DS.g2`;
  switch (op) {
    case 'generate':
      await store.generateKey(SUPPLIER, 'north', 'keyAgreement');
      return;
    case 'rotate':
      await store.rotate(g2);
      return;
    case 'assign':
      await store.assignDevices(SUPPLIER, [1, 2, 3, 4, 5].map((i) => ({ device: meter(100 + i), portfolioId: 'south' })));
      return;
    case 'move':
      await store.moveDevices(SUPPLIER, [meter(1), meter(3), meter(5)], 'south');
      return;
    case 'revoke':
      await store.revoke(`${SUPPLIER}.south.DS.g1`, 'keyCompromise');
      return;
    case 'credentials':
      await store.markCredentialsUpdated(SUPPLIER, meter(2), 'signing');
      return;
    case 'sign':
      await store.signFor(meter(1), new Uint8Array([1, 2, 3]), { counter: 42n });
      return;
    default:
      throw new Error(`unknown op ${op}`);
  }
}

const main = async (): Promise<void> => {
  const [role, a, b] = process.argv.slice(2) as [string, string, string];
  // Crash tests: SMKI_KILL_AT names a fault point and SMKI_KILL_NTH which time it is reached to
  // die there (SIGKILL); SMKI_RECORD saves every point passed instead.
  const points: string[] = [];
  let seen = 0;
  const fault = (point: string): void => {
    points.push(point);
    if (point === process.env.SMKI_KILL_AT && ++seen === Number(process.env.SMKI_KILL_NTH ?? '1')) process.kill(process.pid, 'SIGKILL');
  };
  const backend = await FileKeyBackend.open({ directory: process.env.SMKI_KEYS as string, passphrase: PASS, ...(role === 'op' ? { fault } : {}) });
  const store = await DbKeyStore.open({ driver: await openDriver(process.env.SMKI_DB as string), backend, passphrase: PASS, ...(role === 'op' ? { fault } : {}) });
  if (role === 'op') {
    try {
      await runOp(store, a);
    } finally {
      await store.close();
      await backend.close();
    }
    if (process.env.SMKI_RECORD) writeFileSync(process.env.SMKI_RECORD, JSON.stringify(points));
    return;
  }
  const meters = Number(process.env.SMKI_METERS ?? '40');
  const out: unknown[] = [];
  const rnd = (n: number) => Math.floor(Math.random() * n);
  try {
    if (role === 'sign') {
      const n = Number(a);
      const base = Number(b);
      const inFlight: Promise<void>[] = [];
      for (let i = 0; i < n; i++) {
        const device = meter(1 + rnd(meters));
        const counter = BigInt(base + i);
        // A signature made with a key the meter stopped trusting before its record committed (a
        // concurrent credential update or retirement) is withheld: the caller asks again, and the
        // store then signs with the key the meter trusts now.
        const attempt = async (tries: number): Promise<void> => {
          try {
            const sig = await store.signFor(device, new TextEncoder().encode(`command ${counter}`), { counter });
            out.push({ device, counter: String(counter), signature: Buffer.from(sig).toString('hex'), retries: tries });
          } catch (e) {
            if (tries < 5 && (isSmkiError(e, 'ERR_KEY_STATE_TRANSITION') || isSmkiError(e, 'ERR_KEY_RETIRED'))) return attempt(tries + 1);
            out.push({ device, counter: String(counter), error: isSmkiError(e) ? e.code : String(e) });
          }
        };
        inFlight.push(attempt(0));
        if (inFlight.length >= 16) await Promise.all(inFlight.splice(0));
      }
      await Promise.all(inFlight);
    } else if (role === 'rotate') {
      for (let r = 0; r < Number(a); r++) {
        const portfolio = r % 2 === 0 ? 'north' : 'south';
        const before = (await store.portfolio(SUPPLIER, portfolio)).current.signing as string;
        const next = await issueInto(store, portfolio);
        await store.rotate(next);
        for (let page = await store.credentialUpdates(SUPPLIER, portfolio, { limit: 50 }); ; ) {
          for (const u of page.updates) {
            try {
              await store.markCredentialsUpdated(SUPPLIER, u.device, 'signing');
            } catch (e) {
              // The mover may have taken the meter to the other portfolio meanwhile: it is updated there.
              if (!isSmkiError(e)) throw e;
            }
          }
          if (page.next === undefined) break;
          page = await store.credentialUpdates(SUPPLIER, portfolio, { limit: 50, after: page.next });
        }
        try {
          await store.retire(before);
          out.push({ retired: before });
        } catch (e) {
          // Still trusted by a meter the mover brought elsewhere: retired in a later round, or never.
          if (!isSmkiError(e, 'ERR_KEY_STATE_TRANSITION')) throw e;
        }
      }
    } else if (role === 'move') {
      for (let r = 0; r < Number(a); r++) {
        const picked = [...new Set(Array.from({ length: 5 }, () => meter(1 + rnd(meters))))];
        const to = r % 2 === 0 ? 'south' : 'north';
        const moving: string[] = [];
        for (const d of picked) if ((await store.device(SUPPLIER, d)).portfolioId !== to) moving.push(d);
        if (moving.length === 0) continue;
        try {
          await store.moveDevices(SUPPLIER, moving, to);
        } catch (e) {
          // Another mover's view: a meter already there. Nothing moved; go on.
          if (!isSmkiError(e, 'ERR_INVALID_ARGUMENT')) throw e;
          continue;
        }
        for (const d of moving) {
          try {
            await store.markCredentialsUpdated(SUPPLIER, d, 'signing');
          } catch (e) {
            if (!isSmkiError(e)) throw e;
          }
        }
        out.push({ moved: moving.length });
      }
    }
  } finally {
    await store.close();
    await backend.close();
  }
  if (process.env.SMKI_OUT) writeFileSync(process.env.SMKI_OUT, JSON.stringify(out));
};

if (process.argv[1]?.endsWith('_db-child.ts')) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
