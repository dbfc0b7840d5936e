// Concurrent use from several async callers is safe in every backend: rotate, move,
// credential updates and signing interleaved at their await points, over the memory, file and
// PKCS#11 (SoftHSM2) backends; the invariants are checked after each step and every signature
// is checked against the certificates the meter may trust at that moment.
import { verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHierarchy, issueOrganisationCertificate, parseCertificate, type SmkiHierarchy } from '@smki/pki';
import { FileKeyBackend } from '../src/backends/file.js';
import { Pkcs11KeyBackend } from '../src/backends/pkcs11.js';
import { MemoryKeyBackend, type KeyBackend, type KeyPurpose } from '../src/index.js';
import { JsonKeyStore as KeyStore } from '../src/store.js';
import { createSoftHsm, type SoftHsm } from './_softhsm.js';

const SUPPLIER = '90B3D51F30010000';
const METERS = ['00DB1234567890A1', '00DB1234567890A2', '00DB1234567890A3', '00DB1234567890A4'] as const;
const PASS = 'concurrency test passphrase';
const work = mkdtempSync(join(tmpdir(), 'smki-conc-'));
let pki: SmkiHierarchy;
let hsm: SoftHsm;
beforeAll(async () => {
  pki = await createHierarchy();
  hsm = createSoftHsm();
});
afterAll(() => {
  hsm?.cleanup();
  rmSync(work, { recursive: true, force: true });
});

const factories: Record<string, (dir: string) => Promise<KeyBackend>> = {
  memory: async () => new MemoryKeyBackend(),
  file: (dir) => FileKeyBackend.open({ directory: dir, passphrase: PASS }),
  pkcs11: () => Pkcs11KeyBackend.open({ module: hsm.module, tokenLabel: hsm.tokenLabel, pin: hsm.pin }),
};

const message = new Uint8Array([0xdf, 0x09, 0x01, 0x02]);
const usage = (p: KeyPurpose) => (p === 'signing' ? 'digitalSignature' : 'keyAgreement');

describe.each(Object.keys(factories))('%s backend', (kind) => {
  it('interleaved rotate, move, credential updates and signs keep every invariant', async () => {
    const dir = join(work, kind);
    const backend = await factories[kind]!(dir);
    const store = await KeyStore.open({ directory: dir, backend, passphrase: PASS, auditGroupCommitMs: 2 });
    try {
      const issue = async (portfolio: string) => {
        const h = await store.generateKey(SUPPLIER, portfolio, 'signing');
        const cert = await issueOrganisationCertificate({ issuer: pki.organisationCa, role: 2, entityId: SUPPLIER, keyUsage: usage('signing'), csr: await store.createCsr(h.keyId) });
        await store.attachCertificate(h.keyId, cert);
        return { keyId: h.keyId, der: cert.der };
      };
      await store.addOrganisation({ entityId: SUPPLIER, role: 2 });
      await store.createPortfolio(SUPPLIER, { id: 'north' });
      await store.createPortfolio(SUPPLIER, { id: 'south' });
      const n1 = await issue('north');
      const s1 = await issue('south');
      for (const m of METERS.slice(0, 3)) await store.assignDevice(SUPPLIER, m, 'north');
      await store.assignDevice(SUPPLIER, METERS[3], 'south');
      const n2 = await issue('north'); // pending, certified, not yet rotated in
      const ders = new Map([n1, s1, n2].map((k) => [k.keyId, k.der]));

      const invariants = (): void => {
        // each meter is in exactly one portfolio, trusts an existing active key, and the portfolios agree
        const north = store.portfolio(SUPPLIER, 'north').devices;
        const south = store.portfolio(SUPPLIER, 'south').devices;
        expect(new Set([...north, ...south]).size).toBe(METERS.length);
        expect(north.length + south.length).toBe(METERS.length);
        for (const m of METERS) {
          const d = store.device(SUPPLIER, m);
          const k = store.key(d.installed.signing!);
          expect(k.state).toBe('active');
          expect(ders.has(k.keyId)).toBe(true);
        }
      };

      const checks: Promise<void>[] = [];
      const sign = (m: string): void => {
        // signFor decides on the state committed when it is called: exactly the key installed then
        const trusted = store.device(SUPPLIER, m).installed.signing!;
        const others = [...ders.keys()].filter((id) => id !== trusted);
        const check = (id: string, sig: Uint8Array) => verify('sha256', message, { key: parseCertificate(ders.get(id)!).publicKey!, dsaEncoding: 'ieee-p1363' }, sig);
        checks.push(
          store.signFor(m, message).then((sig) => {
            expect(check(trusted, sig), `signature for ${m} with ${trusted}`).toBe(true);
            for (const id of others) expect(check(id, sig)).toBe(false);
          }),
        );
      };
      const steps: (() => Promise<unknown>)[] = [
        () => store.rotate(n2.keyId),
        () => store.moveDevice(SUPPLIER, METERS[2], 'south'),
        () => store.markCredentialsUpdated(SUPPLIER, METERS[0], 'signing'),
        () => store.markCredentialsUpdated(SUPPLIER, METERS[2], 'signing'),
        () => store.markCredentialsUpdated(SUPPLIER, METERS[1], 'signing'),
      ];
      for (const step of steps) {
        const change = step();
        for (let i = 0; i < 8; i++) for (const m of METERS) sign(m); // signs racing the change at its await points
        await change;
        invariants();
      }
      await Promise.all(checks);
      expect(checks.length).toBe(steps.length * 8 * METERS.length);
      expect(store.device(SUPPLIER, METERS[2])).toMatchObject({ portfolioId: 'south', installed: { signing: s1.keyId } });
      expect(store.devicesExposedBy(n1.keyId).devices).toEqual([]);
      await store.retire(n1.keyId);
    } finally {
      await store.close();
      await backend.close();
    }
    const audit = await KeyStore.verifyAuditTrail(dir, PASS);
    expect(audit.findings).toEqual([]);
    expect(audit.ok).toBe(true);
  }, 120_000);
});
