/**
 * A supplier's signing keys segregated per portfolio of meters, on an HSM (SoftHSM2 through
 * PKCS#11): portfolios, keys generated on the token, certification requests, certificates from a
 * test hierarchy, signing for a meter with the one key it trusts, a signature refused for a meter
 * outside the key's portfolio, rotation, a move between portfolios, the blast-radius cap and a
 * compromised key's exposure (docs/domain.md §1, §2).
 *
 *   SMKI_HSM_TOKEN=… SMKI_HSM_PIN=… pnpm exec tsx examples/supplier-key-segregation/main.ts
 *
 * Exits non-zero if any claim it prints does not hold. See README.md beside this file.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromHex, isSmkiError, parseEui64, toHex, verifyP1363, type Signer, type SmkiErrorCode } from '@smki/core';
import { buildDisableSupply, signPreCommand, verifySignature } from '@smki/gbcs';
import { KeyStore, Pkcs11KeyBackend, type SigningKeyHandle } from '@smki/keystore';
import { createHierarchy, issueOrganisationCertificate, parseCsr, type SmkiCertificate } from '@smki/pki';

const SUPPLIER = parseEui64('90B3D51F30010000');
const MODULE = process.env.SMKI_HSM_MODULE ?? '/usr/lib/softhsm/libsofthsm2.so';
/** Every key this example makes carries this CKA_LABEL prefix; it touches no other key on the token. */
const LABEL_PREFIX = 'smki-example-segregation/';
const CAP = 3;
const A1 = parseEui64('00DB1234567890A1');
const A2 = parseEui64('00DB1234567890A2');
const A3 = parseEui64('00DB1234567890A3');
const B1 = parseEui64('00DB1234567890B1');
const B2 = parseEui64('00DB1234567890B2');

let failures = 0;
const line = (s = '') => console.log(s);
/** Print a claim and count it as failed unless it holds. */
function check(holds: boolean, claim: string): void {
  console.log(`  ${holds ? '✔' : '✘'} ${claim}`);
  if (!holds) failures++;
}
/** The call must be refused with exactly `code`; print the claim with what happened. */
async function refused(code: SmkiErrorCode, what: string, attempt: () => Promise<unknown>): Promise<void> {
  try {
    await attempt();
    check(false, `${what}: accepted, expected ${code}`);
  } catch (e) {
    if (!isSmkiError(e)) throw e;
    check(e.code === code, `${what}: refused ${e.code}${e.code === code ? '' : ` (expected ${code})`}`);
  }
}

const token = process.env.SMKI_HSM_TOKEN;
const pin = process.env.SMKI_HSM_PIN;
if (!token || !pin) {
  console.error('Set SMKI_HSM_TOKEN (the token label) and SMKI_HSM_PIN (its user PIN); see README.md for creating a SoftHSM2 token.');
  process.exit(2);
}

line('Supplier key segregation on an HSM (PKCS#11)\n');

const dir = mkdtempSync(join(tmpdir(), 'smki-segregation-'));
let backend: Pkcs11KeyBackend | undefined;
let store: KeyStore | undefined;
try {
  line(`1. Open the token "${token}" through ${MODULE}`);
  backend = await Pkcs11KeyBackend.open({ module: MODULE, tokenLabel: token, pin, labelPrefix: LABEL_PREFIX });
  const hsm = backend;
  // Keys an interrupted earlier run of this example left (its own label prefix only).
  const leftovers = await hsm.listHandles();
  for (const h of leftovers) await hsm.destroyKey(h);
  check((await hsm.listHandles()).length === 0, `logged in; ${leftovers.length} key(s) left by an earlier run of this example (label ${LABEL_PREFIX}…) removed`);

  line('\n2. A key store whose keys live on the token (metadata and audit trail in its SQLite database)');
  // The store passphrase authenticates the metadata and keys the audit trail's MACs.
  const passphrase = process.env.SMKI_KEYSTORE_PASSPHRASE ?? randomBytes(24).toString('base64url');
  line(`  directory ${dir}; passphrase from ${process.env.SMKI_KEYSTORE_PASSPHRASE ? 'SMKI_KEYSTORE_PASSPHRASE' : 'a random value made for this run'}`);
  store = await KeyStore.open({ directory: dir, backend: hsm, passphrase });
  const ks = store;
  await ks.addOrganisation({ entityId: SUPPLIER, role: 2, maxDevicesPerKey: CAP });
  line(`  supplier ${SUPPLIER} (role 2), at most ${CAP} meters per key (the blast-radius cap)`);
  const { organisationCa } = await createHierarchy();

  line('\n3. Portfolios north and south: a signing key each, generated on the token, certified from a CSR');
  const certificates = new Map<string, SmkiCertificate>();
  const newSigningKey = async (portfolio: string): Promise<SigningKeyHandle> => {
    const h = await ks.generateKey(SUPPLIER, portfolio, 'signing');
    const csrDer = await ks.createCsr(h.keyId); // signed on the token: proof of possession
    const csr = parseCsr(csrDer);
    const info = await ks.key(h.keyId);
    const certificate = await issueOrganisationCertificate({ issuer: organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', csr: csrDer });
    await ks.attachCertificate(h.keyId, certificate);
    certificates.set(h.keyId, certificate);
    check(
      info.backend === 'pkcs11' && toHex(csr.publicKeyBytes) === info.publicKey && csr.entityId === SUPPLIER && csr.role === 2,
      `${h.keyId}: generated on the token (backend ${info.backend}); CSR for entity ${csr.entityId}, role ${csr.role}; certificate serial ${certificate.serialNumber}`,
    );
    return h;
  };
  await ks.createPortfolio(SUPPLIER, { id: 'north', name: 'North region' });
  await ks.createPortfolio(SUPPLIER, { id: 'south', name: 'South region' });
  const north1 = await newSigningKey('north');
  const south1 = await newSigningKey('south');
  check((await ks.key(north1.keyId)).state === 'active' && (await ks.key(south1.keyId)).state === 'active', 'both keys active (the first key of a portfolio becomes current with its certificate)');
  check((await hsm.listHandles()).length === 2, 'the token holds exactly these two key pairs under the example\'s label prefix');

  line('\n4. Assign meters: A1, A2 to north; B1, B2 to south');
  for (const [device, portfolio] of [[A1, 'north'], [A2, 'north'], [B1, 'south'], [B2, 'south']] as const) await ks.assignDevice(SUPPLIER, device, portfolio);
  const membersOf = async (portfolio: string) => (await ks.devicesOf(SUPPLIER, portfolio)).devices.map((d) => d.device).join(',');
  check((await membersOf('north')) === `${A1},${A2}` && (await membersOf('south')) === `${B1},${B2}`, 'north: A1, A2; south: B1, B2');

  /** Does this signature over `data` verify under the certificate of `keyId`? */
  const verifiesWith = (keyId: string, data: Uint8Array, signature: Uint8Array) => verifyP1363(certificates.get(keyId)!.publicKey!, data, signature);

  line('\n5. A remote disconnect for A1: the store signs with the key A1 trusts');
  const counter = BigInt(Date.now());
  const pre = buildDisableSupply({ fuel: 'electricity', originator: SUPPLIER, recipient: A1, counter });
  const forA1: Signer = { publicKey: fromHex((await ks.key(north1.keyId)).publicKey), sign: (m) => ks.signFor(A1, m, { messageCode: 0x0050, counter }) };
  const signed = await signPreCommand(pre, forA1);
  check(verifySignature(signed, certificates.get(north1.keyId)!), `ECS43 for A1 (counter ${counter}) signed on the token; verifies against the north certificate`);
  check(!verifySignature(signed, certificates.get(south1.keyId)!), 'and not against the south certificate');

  line('\n6. A signature for a meter outside the key\'s portfolio is refused');
  await refused('ERR_KEY_PORTFOLIO_MISMATCH', 'north key for B1 (a south meter)', () => ks.signWith(north1, B1, pre, { messageCode: 0x0050, counter }));
  await refused('ERR_KEY_PORTFOLIO_MISMATCH', 'south key for A1 (a north meter)', () => ks.signWith(south1, A1, pre));
  await refused('ERR_DEVICE_UNKNOWN', 'any key for 00DB1234567890FF (in no portfolio)', () => ks.signFor('00DB1234567890FF', pre));

  line('\n7. Blast radius: which meters each key endangers');
  // The report counts (a query over the estate); the meters themselves are paged per key.
  const exposure = async () => {
    const out = new Map<string, string>();
    for (const e of await ks.exposureReport(SUPPLIER)) out.set(e.keyId, (await ks.devicesTrusting(e.keyId)).devices.join(','));
    return out;
  };
  for (const [keyId, devices] of await exposure()) line(`  ${keyId}: ${devices.split(',').filter(Boolean).length} meter(s) ${devices.split(',').join(', ')}`);
  check((await exposure()).get(north1.keyId) === `${A1},${A2}` && (await exposure()).get(south1.keyId) === `${B1},${B2}`, 'a stolen north key endangers A1 and A2 only; a stolen south key B1 and B2 only');

  line('\n8. Rotate north: a second generation, then each meter\'s credentials updated in turn');
  const north2 = await newSigningKey('north');
  check((await ks.key(north2.keyId)).state === 'pending', `${north2.keyId} waits (pending) until it is rotated in`);
  const rotation = await ks.rotate(north2.keyId);
  const { updates } = await ks.credentialUpdates(SUPPLIER, 'north');
  check(
    rotation.devicesToUpdate === 2 && updates.map((u) => `${u.device}:${u.fromKeyId}>${u.toKeyId}`).join(' ') === `${A1}:${north1.keyId}>${north2.keyId} ${A2}:${north1.keyId}>${north2.keyId}`,
    `rotation: ${rotation.devicesToUpdate} credential updates due (A1, A2), each signed with ${north1.keyId}`,
  );
  const m1 = new Uint8Array([0xdf, 0x09, 0x01]);
  check(verifiesWith(north1.keyId, m1, await ks.signFor(A1, m1)), 'before its update, A1 is still signed for with generation 1 (the certificate it has installed)');
  await ks.markCredentialsUpdated(SUPPLIER, A1, 'signing');
  const s2 = await ks.signFor(A1, m1);
  check(verifiesWith(north2.keyId, m1, s2) && !verifiesWith(north1.keyId, m1, s2), 'after it, A1 is signed for with generation 2 only');
  await refused('ERR_KEY_STATE_TRANSITION', `retire ${north1.keyId} while A2 still trusts it`, () => ks.retire(north1.keyId));
  await ks.markCredentialsUpdated(SUPPLIER, A2, 'signing');
  await ks.retire(north1.keyId);
  check((await ks.key(north1.keyId)).state === 'retired' && !(await exposure()).has(north1.keyId), `${north1.keyId} retired once no meter trusts it; gone from the exposure report`);

  line('\n9. Move B2 from south to north');
  const moves = await ks.moveDevice(SUPPLIER, B2, 'north');
  check(moves.length === 1 && moves[0]!.fromKeyId === south1.keyId && moves[0]!.toKeyId === north2.keyId, `one credential update due: B2 from ${south1.keyId} to ${north2.keyId}`);
  const m2 = new Uint8Array([0xdf, 0x09, 0x02]);
  check(verifiesWith(south1.keyId, m2, await ks.signWith(south1, B2, m2)), 'until it is done, B2 is signed for with the south key it still trusts');
  await refused('ERR_KEY_STATE_TRANSITION', 'the north key for B2 before its update', () => ks.signWith(north2, B2, m2));
  await ks.markCredentialsUpdated(SUPPLIER, B2, 'signing');
  check(verifiesWith(north2.keyId, m2, await ks.signWith(north2, B2, m2)), 'after the update, B2 is signed for with the north key');
  await refused('ERR_KEY_PORTFOLIO_MISMATCH', 'the south key for B2 now', () => ks.signWith(south1, B2, m2));

  line(`\n10. The cap: no key may be trusted by more than ${CAP} meters`);
  await refused('ERR_PORTFOLIO_DEVICE_CAP', `assign A3 to north (its key already has ${CAP} meters)`, () => ks.assignDevice(SUPPLIER, A3, 'north'));

  line('\n11. The south key is compromised: its blast radius, then revocation');
  check((await exposure()).get(south1.keyId) === B1, `${south1.keyId} endangers B1 only (B2 has moved and no longer trusts it)`);
  await ks.revoke(south1.keyId, 'keyCompromise');
  await refused('ERR_KEY_REVOKED', 'a signature for B1 after the revocation', () => ks.signFor(B1, m2));
  const report = await ks.exposureReport(SUPPLIER);
  for (const e of report) line(`  ${e.keyId} (${e.state}): ${e.deviceCount} meter(s)`);
  const active = report.filter((e) => e.state === 'active');
  check(active.length === 1 && active[0]?.keyId === north2.keyId && (await exposure()).get(north2.keyId) === `${A1},${A2},${B2}`, `only ${north2.keyId} is left in use, for A1, A2, B2`);
  // Revoked is not re-keyed: B1 still trusts the stolen key until its credentials are replaced.
  const stolen = report.find((e) => e.keyId === south1.keyId);
  check(stolen?.state === 'revoked' && stolen.deviceCount === 1 && (await exposure()).get(south1.keyId) === B1, `the revoked ${south1.keyId} stays in the report while B1 still trusts it (B1 is to be re-credentialed)`);

  line('\n12. Close, and verify the audit trail as an auditor would');
  const keyHandles = (await ks.keys(SUPPLIER)).map((k) => k.handle);
  const full = await ks.verifyStore();
  check(full.trail.ok && full.findings.length === 0, `the whole store: trail replayed (every signature with the key its meter trusted then), every row as the trail last wrote it`);
  // What an auditor holds: the audit public key, given out of band; no passphrase.
  const auditPublicKey = ks.auditPublicKey;
  await ks.close();
  store = undefined;
  const audit = await KeyStore.verifyAuditTrail({ directory: dir, auditPublicKey });
  check(audit.ok, `audit trail: ${audit.count} records in ${audit.batches} sealed batches (every lifecycle change and every signature), verified with the audit public key only`);

  line('\n13. Clean up the token: destroy the keys this run made (the example\'s label prefix only)');
  for (const h of keyHandles) await hsm.destroyKey(h);
  check((await hsm.listHandles()).length === 0, `${keyHandles.length} key pairs destroyed; none of this example's keys is left on the token`);
} catch (e) {
  failures++;
  console.error(`\n  ✘ ${isSmkiError(e) ? `${e.code}: ${e.message}` : e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
} finally {
  await store?.close().catch(() => undefined);
  await backend?.close().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}

line(failures === 0 ? '\nDone: every claim above holds.' : `\nFAILED: ${failures} claim(s) above do not hold.`);
process.exitCode = failures === 0 ? 0 : 1;
