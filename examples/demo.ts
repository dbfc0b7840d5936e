/**
 * The toolkit's end-to-end demo on the embedded (test) defaults. Today it shows the PKI:
 * create a hierarchy, issue organisation and device certificates, lint and validate them, look
 * them up in a trust store, revoke one and show the rejection. Later issues grow it into the
 * whole flow (segregated keys, signed critical commands, the ACB MAC).
 *
 *   bash scripts/demo.sh
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createKeySigner, isSmkiError, roleName } from '@smki/core';
import { FileKeyBackend, KeyStore, type SigningKeyHandle } from '@smki/keystore';
import { buildDisableSupply, classify, parseMessage, signPreCommand, verifyMac, verifySignature, wrapWithMac } from '@smki/gbcs';
import {
  createCsr,
  createHierarchy,
  issueCrl,
  issueDeviceCertificate,
  issueOrganisationCertificate,
  lintCertificate,
  TrustStore,
  validatePath,
  type SmkiCertificate,
} from '@smki/pki';

const SUPPLIER = '90-B3-D5-1F-30-01-00-00';
const ACB = '90B3D51F30000004';
const METER = '00 DB 12 34 56 78 90 A0';

const line = (s = '') => console.log(s);
const ok = (s: string) => console.log(`  ✔ ${s}`);
const no = (s: string) => console.log(`  ✘ ${s}`);
const show = (c: SmkiCertificate) =>
  `${c.kind.padEnd(12)} ${(c.subject.text || '(empty subject)').padEnd(44)} ${c.keyUsage.join('|').padEnd(24)} serial ${c.serialNumber}`;
const newKey = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });

line('SMKI toolkit demo: certificate hierarchy (test environment)\n');

line('1. Create the hierarchy: root (OU=00), organisation CA (OU=07), device CA');
const { root, organisationCa, deviceCa } = await createHierarchy();
for (const ca of [root, organisationCa, deviceCa]) line(`  ${show(ca.certificate)}`);

line('\n2. Issue organisation certificates');
const supplierKey = newKey();
const csr = await createCsr({ signer: createKeySigner(supplierKey.privateKey), subject: { role: 2, entityId: SUPPLIER, commonName: 'Supplier A' }, keyUsage: 'digitalSignature' });
const supplierDs = await issueOrganisationCertificate({ issuer: organisationCa, role: 2, entityId: SUPPLIER, commonName: 'Supplier A', keyUsage: 'digitalSignature', csr });
ok(`supplier DS from a PKCS#10 request (proof of possession checked): entity ${supplierDs.entityId}, role ${supplierDs.role} (${roleName(supplierDs.role ?? -1)})`);
const acbKa = await issueOrganisationCertificate({ issuer: organisationCa, role: 4, entityId: ACB, keyUsage: 'keyAgreement', publicKey: newKey().publicKey });
ok(`access control broker KA from a public key: entity ${acbKa.entityId}`);
try {
  const greedy = await createCsr({ signer: createKeySigner(newKey().privateKey), subject: { role: 2, entityId: '90B3D51F30019999' } });
  await issueOrganisationCertificate({ issuer: organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', csr: greedy });
  no('a request naming another entity was accepted');
} catch (e) {
  if (!isSmkiError(e)) throw e;
  ok(`a request naming another entity is refused: ${e.code}`);
}

line('\n3. Issue device certificates for meter ' + METER);
const meterKa = await issueDeviceCertificate({ issuer: deviceCa, entityId: METER, keyUsage: 'keyAgreement', publicKey: newKey().publicKey });
const meterDs = await issueDeviceCertificate({ issuer: deviceCa, entityId: METER, keyUsage: 'digitalSignature', publicKey: newKey().publicKey });
line('  issued so far:');
for (const c of [supplierDs, acbKa, meterKa, meterDs]) line(`  ${show(c)}`);
ok(`device notAfter ${meterKa.details.notAfterText}, hwSerialNum ${meterKa.hardwareModuleName?.hwSerialNum}, hwType ${meterKa.hardwareModuleName?.hwType}`);

line('\n4. Lint every certificate against the SMKI profile');
for (const c of [root.certificate, organisationCa.certificate, deviceCa.certificate, supplierDs, acbKa, meterKa, meterDs]) {
  const findings = lintCertificate(c);
  if (findings.length === 0) ok(`${c.kind.padEnd(12)} ${c.subject.text || c.entityId}: conformant`);
  else no(`${c.subject.text}: ${findings.map((f) => f.code).join(', ')}`);
}

line('\n5. Trust store look-ups (each one hash-map look-up)');
const store = new TrustStore();
store.addAll([root.certificate, organisationCa.certificate, deviceCa.certificate, supplierDs, acbKa, meterKa, meterDs]);
const found = store.findByEntity(SUPPLIER, 2, 'digitalSignature');
ok(`by (entity, role, key usage): ${found.length} certificate(s), serial ${found[0]?.serialNumber}`);
ok(`by SKI ${supplierDs.subjectKeyId}: ${store.findBySubjectKeyId(supplierDs.subjectKeyId ?? '').length} certificate(s)`);

line('\n6. Validate paths (RFC 5280 §6.1 and the SMKI rules)');
const anchors = [root.certificate];
for (const [leaf, ca] of [[supplierDs, organisationCa], [meterKa, deviceCa]] as const) {
  const r = validatePath(leaf, { intermediates: [ca.certificate], anchors });
  (r.valid ? ok : no)(`${leaf.kind} ${leaf.entityId}: valid=${r.valid}, path of ${r.path.length}, revocationChecked=${r.revocationChecked}`);
}

line('\n7. Revoke the supplier DS certificate and validate again, revocation required');
const crl = await issueCrl({ issuer: organisationCa, crlNumber: 1n, kind: 'crl', revoked: [{ serialNumber: supplierDs, revocationDate: new Date(), reason: 'keyCompromise' }] });
const arl = await issueCrl({ issuer: root, crlNumber: 1n, kind: 'arl' });
ok(`organisation CRL #1 lists ${crl.revoked.size} certificate(s); authority revocation list #1 lists ${arl.revoked.size}`);
const before = validatePath(meterKa, { intermediates: [deviceCa.certificate], anchors, crls: [crl, arl], requireRevocation: false });
ok(`meter KA still valid: valid=${before.valid}`);
const after = validatePath(supplierDs, { intermediates: [organisationCa.certificate], anchors, crls: [crl, arl], requireRevocation: true });
if (after.valid) {
  no('revoked certificate accepted');
  process.exitCode = 1;
} else {
  for (const f of after.findings.filter((x) => x.severity === 'error')) ok(`rejected: ${f.code} (certificate ${f.certificateIndex}): ${f.message}`);
}
const nocrl = validatePath(acbKa, { intermediates: [organisationCa.certificate], anchors, requireRevocation: true });
ok(`ACB KA with revocation required and no CRL: valid=${nocrl.valid} (${nocrl.findings.map((f) => f.code).join(', ')})`);

line('\n8. Segregate the supplier\'s keys per portfolio (encrypted PKCS#8 files, audited)');
const dir = mkdtempSync(join(tmpdir(), 'smki-demo-keys-'));
try {
  const passphrase = 'demo passphrase (use SMKI_KEYSTORE_PASSPHRASE)';
  const backend = await FileKeyBackend.open({ directory: dir, passphrase });
  const store = await KeyStore.open({ directory: dir, backend, passphrase });
  await store.addOrganisation({ entityId: SUPPLIER, role: 2, maxDevicesPerKey: 2 });
  const keyFor = async (portfolio: string) => {
    await store.createPortfolio(SUPPLIER, { id: portfolio });
    const h = await store.generateKey(SUPPLIER, portfolio, 'signing');
    const cert = await issueOrganisationCertificate({ issuer: organisationCa, role: 2, entityId: SUPPLIER, keyUsage: 'digitalSignature', csr: await store.createCsr(h.keyId) });
    await store.attachCertificate(h.keyId, cert);
    return { h, cert };
  };
  const north = await keyFor('north');
  const south = await keyFor('south');
  await store.assignDevice(SUPPLIER, '00DB1234567890A1', 'north');
  await store.assignDevice(SUPPLIER, '00DB1234567890A2', 'north');
  await store.assignDevice(SUPPLIER, '00DB1234567890A3', 'south');
  ok(`portfolios north (A1, A2) and south (A3), each with its own DS key and certificate`);
  const sig = await store.signFor('00DB1234567890A1', new Uint8Array([0xdf, 0x09, 0x01]), { messageCode: 0x0050, counter: 1000n });
  ok(`signed a disconnect for meter A1 with ${store.device(SUPPLIER, '00DB1234567890A1').installed.signing} (${sig.length} bytes)`);
  for (const attempt of [
    () => store.signWith(south.h as SigningKeyHandle, '00DB1234567890A1', new Uint8Array([1])),
    () => store.assignDevice(SUPPLIER, '00DB1234567890A4', 'north'),
  ]) {
    try {
      await attempt();
      no('accepted');
    } catch (e) {
      if (!isSmkiError(e)) throw e;
      ok(`refused: ${e.code}`);
    }
  }
  const moves = await store.moveDevice(SUPPLIER, '00DB1234567890A2', 'south');
  ok(`moved A2 to south: ${moves.length} credential update(s) due, still signed with ${moves[0]?.fromKeyId} until done`);
  for (const e of store.exposureReport(SUPPLIER)) ok(`key ${e.keyId} exposes ${e.devices.length} meter(s): ${e.devices.join(', ')}`);

  line('\n9. A remote disconnect: pre-command, the supplier\'s signature from the store, the ACB MAC');
  const counter = 1_700_000_000_000n; // the DCC tools use milliseconds since the epoch
  const pre = buildDisableSupply({ fuel: 'electricity', originator: SUPPLIER, recipient: '00DB1234567890A1', counter });
  const m0 = parseMessage(pre);
  ok(`pre-command ECS43, code 0x${m0.messageCode.toString(16).padStart(4, '0')}, ${pre.length} bytes: ${classify({ messageCode: m0.messageCode, originatorRole: 2 })} from a supplier`);
  const meterSigner = { publicKey: north.cert.publicKeyBytes, sign: (data: Uint8Array) => store.signFor('00DB1234567890A1', data, { messageCode: m0.messageCode, counter }) };
  const signedPre = await signPreCommand(pre, meterSigner);
  ok(`signed with the key meter A1 trusts: signature verifies against the north certificate: ${verifySignature(signedPre, north.cert)}`);
  const acbKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const meterKa = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const frame = wrapWithMac(signedPre, { privateKey: acbKey.privateKey, publicKey: meterKa.publicKey });
  ok(`ACB MAC added: ${frame.length}-byte general-ciphering frame; the meter's check: ${verifyMac(frame, { privateKey: meterKa.privateKey, publicKey: acbKey.publicKey })}`);
  const tampered = new Uint8Array(frame);
  tampered[40] = (tampered[40] as number) ^ 1;
  ok(`one bit changed on the way: MAC ${verifyMac(tampered, { privateKey: meterKa.privateKey, publicKey: acbKey.publicKey }) ? 'accepted' : 'rejected'}`);
  await store.close();
  await backend.close();
  const audit = await KeyStore.verifyAuditTrail(dir, passphrase);
  ok(`audit trail: ${audit.count} records, chain and MACs ${audit.ok ? 'verify' : 'FAIL'}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
line('\nDone.');
