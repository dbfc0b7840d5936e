/**
 * `smki init <dir>`: a state directory with a test hierarchy, the User's key store (encrypted
 * files, or PKCS#11), the Access Control Broker's key, a network operator, the stores (SQLite, or
 * PostgreSQL from the libpq environment), the first CRL and ARL, and for DUIS the supplier's
 * XML-signing key (role 135, in the key store) and the lab DCC's (role 137).
 * @module
 * @internal
 */
import { existsSync, readFileSync } from 'node:fs';
import { certificateToPem, createHierarchy, issueOrganisationCertificate, parseCertificate } from '@smki/pki';
import { RemotePartyRole, SmkiError } from '@smki/core';
import { Option } from 'commander';
import { example, intOption, type Register } from '../program.js';
import { AUDIT_PUBLIC_KEY_FILE, CONFIG_FORMAT, eui, newKeyPair, openDuisStore, openStores, State, writeEncryptedKey, type DuisConfig, type StateConfig, type ThresholdConfig } from '../state.js';
import { writeFileAtomic } from '../files.js';
import { table } from '../io.js';
import { certifyKey } from './keys.js';

/** The default parties of a test state directory (`dcc`: the lab DCC's entity, whose XML-signing certificate signs DUIS Responses). */
export const DEFAULT_PARTIES = { supplier: '90B3D51F30010000', networkOperator: '90B3D51F30030000', acb: '90B3D51F30000004', dcc: '90B3D51F30000002' } as const;

/** The supplier's portfolio that holds its DUIS XML-signing key in a lab (no meter is in it or trusts the key). */
export const XML_PORTFOLIO = 'duis';

/**
 * The DUIS keys of a lab: the supplier's XML-signing key (purpose xmlSigning, in the key store's
 * backend, certified with role 135 by the organisation CA) in portfolio `duis.xmlPortfolio`, and
 * the lab DCC's XML-signing key and certificate (role 137), kept encrypted under dcc/ like the
 * ACB's key. What exists already is kept (a provisioning that stopped half way is finished, never
 * redone). Returns the rows for the summary table.
 */
export async function provisionDuis(state: State, duis: DuisConfig): Promise<string[][]> {
  const supplier = state.config.parties.supplier;
  const ks = await state.keystore();
  if (!(await ks.portfolios(supplier)).some((p) => p.id === duis.xmlPortfolio)) {
    await ks.createPortfolio(supplier, { id: duis.xmlPortfolio, name: 'DUIS XML signing (no meters)' });
  }
  let keyId = (await ks.portfolio(supplier, duis.xmlPortfolio)).current.xmlSigning;
  let serial: string;
  if (keyId === undefined) {
    const pending = (await ks.keys(supplier)).find((k) => k.portfolioId === duis.xmlPortfolio && k.purpose === 'xmlSigning' && k.state === 'pending' && k.certificate === undefined);
    keyId = pending?.keyId ?? (await ks.generateKey(supplier, duis.xmlPortfolio, 'xmlSigning')).keyId;
    serial = (await certifyKey(state, ks, keyId)).serialNumber;
  } else serial = (await ks.key(keyId)).serialNumber ?? '-';
  // The lab DCC's XML-signing key: a simulated party, like the ACB (an encrypted file under dcc/).
  const certFile = state.path('dcc', 'xml-signing.pem');
  let dccSerial: string;
  if (existsSync(certFile) && existsSync(state.path('dcc', 'xml-signing.key.pem'))) {
    dccSerial = parseCertificate(readFileSync(certFile, 'utf8')).serialNumber;
  } else {
    const dcc = newKeyPair();
    const cert = await issueOrganisationCertificate({ issuer: state.hierarchy().organisationCa, role: RemotePartyRole.XmlSigning137, entityId: duis.dcc, keyUsage: 'digitalSignature', publicKey: dcc.publicKey, commonName: 'DCC XML signing (lab simulator)' });
    writeEncryptedKey(state.path('dcc', 'xml-signing.key.pem'), dcc.privateKey, state.passphrase);
    writeFileAtomic(certFile, certificateToPem(cert), 0o644);
    state.saveCertificate(cert);
    dccSerial = cert.serialNumber;
  }
  // The two DUIS stores exist from the start (SQLite files, or PostgreSQL schemas).
  for (const side of ['user', 'dcc'] as const) await (await openDuisStore(state.config, state.dir, side)).close();
  return [
    [`supplier ${supplier} XML signing (135), key ${keyId}`, serial, `certs/organisation/${serial}.pem`],
    [`DCC ${duis.dcc} XML signing (137), lab simulator`, dccSerial, 'dcc/xml-signing.pem'],
  ];
}

/** The SoftHSM2 module of Debian's `softhsm2` package. */
export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

/** Parse `CODE:LIMIT:WINDOW_MS` (message code in hex). */
function threshold(v: string, prev: Record<string, ThresholdConfig> = {}): Record<string, ThresholdConfig> {
  const m = /^(?:0x)?([0-9a-fA-F]{1,4}):(\d{1,10}):(\d{1,11})$/.exec(v);
  if (!m) throw new SmkiError('ERR_CLI_USAGE', '--anomaly-threshold is CODE:LIMIT:WINDOW_MS, e.g. 0050:100:60000', { detail: v.slice(0, 40) });
  return { ...prev, [m[1]!.toUpperCase().padStart(4, '0')]: { limit: Number(m[2]), windowMs: Number(m[3]) } };
}

/** Create a state directory; the hierarchy, parties and stores in it. Returns the opened state. */
export async function initState(
  state: State,
  options: { now?: () => Date; maxDevicesPerKey?: number } = {},
): Promise<{ rows: string[][]; storeId: string; auditPublicKey: string }> {
  const cfg = state.config;
  const keys = { root: newKeyPair(), 'organisation-ca': newKeyPair(), 'device-ca': newKeyPair() };
  const hierarchy = await createHierarchy({
    signers: { root: keys.root.signer, organisationCa: keys['organisation-ca'].signer, deviceCa: keys['device-ca'].signer },
    ...(options.now ? { now: options.now } : {}),
  });
  state.saveHierarchy(hierarchy, { root: keys.root.privateKey, 'organisation-ca': keys['organisation-ca'].privateKey, 'device-ca': keys['device-ca'].privateKey });
  // The Access Control Broker's key-agreement key (the DCC side of this lab).
  const acb = newKeyPair();
  const acbCert = await issueOrganisationCertificate({ issuer: hierarchy.organisationCa, role: 4, entityId: cfg.parties.acb, keyUsage: 'keyAgreement', publicKey: acb.publicKey, commonName: 'Access Control Broker' });
  writeEncryptedKey(state.path('dcc', 'acb-ka.key.pem'), acb.privateKey, state.passphrase);
  writeFileAtomic(state.path('dcc', 'acb-ka.pem'), certificateToPem(acbCert), 0o644);
  state.saveCertificate(acbCert);
  // A network operator (another User of this lab), with one signing key for its whole estate.
  const no = newKeyPair();
  const noCert = await issueOrganisationCertificate({ issuer: hierarchy.organisationCa, role: 3, entityId: cfg.parties.networkOperator, keyUsage: 'digitalSignature', publicKey: no.publicKey, commonName: 'Network Operator' });
  writeEncryptedKey(state.path('parties', 'network-operator-ds.key.pem'), no.privateKey, state.passphrase);
  state.saveCertificate(noCert);
  // The supplier's key store (portfolios and keys come later: smki portfolio create, smki key generate).
  const ks = await state.keystore();
  // The audit public key: what the trail is verified with, without the passphrase (an auditor keeps a copy of their own).
  state.writeAuditPublicKey(ks.auditPublicKey);
  await ks.addOrganisation({ entityId: cfg.parties.supplier, role: 2, ...(options.maxDevicesPerKey !== undefined ? { maxDevicesPerKey: options.maxDevicesPerKey } : {}) });
  // Stores, log key, first CRL and ARL.
  const stores = await openStores(cfg, state.dir);
  await Promise.all([stores.store.close(), stores.registry.close(), stores.firmware.close()]);
  state.createLogKey();
  await state.issueCrls({ crlNumber: '0', entries: [] });
  const duisRows = cfg.duis !== undefined ? await provisionDuis(state, cfg.duis) : [];
  const rows = [
    ['root', hierarchy.root.certificate.serialNumber, 'ca/root.pem'],
    ['organisation CA', hierarchy.organisationCa.certificate.serialNumber, 'ca/organisation-ca.pem'],
    ['device CA', hierarchy.deviceCa.certificate.serialNumber, 'ca/device-ca.pem'],
    [`ACB ${cfg.parties.acb} (KA)`, acbCert.serialNumber, 'dcc/acb-ka.pem'],
    [`network operator ${cfg.parties.networkOperator} (DS)`, noCert.serialNumber, `certs/organisation/${noCert.serialNumber}.pem`],
    ...duisRows,
  ];
  return { rows, storeId: ks.storeId, auditPublicKey: Buffer.from(ks.auditPublicKey).toString('hex').toUpperCase() };
}

export const register: Register = (program, wrap) => {
  const cmd = program
    .command('init')
    .description("create a state directory: test hierarchy, key store, stores, CRLs, and the DUIS XML-signing keys (the supplier's, the lab DCC's)")
    .argument('<dir>', 'the directory to create (must be new or empty)')
    .option('--hsm', 'keep the keys in an HSM through PKCS#11 (PIN from $SMKI_HSM_PIN or --pin-file)')
    .option('--hsm-module <path>', 'the PKCS#11 module', SOFTHSM_MODULE)
    .option('--hsm-token <label>', 'the token label (required with --hsm)')
    .option('--postgres', 'counters, registry, firmware allowlist and log heads in PostgreSQL (libpq environment: PGHOST, PGSERVICE, PGPASSFILE …)')
    .option('--pg-schema <name>', 'the PostgreSQL schema', 'smki')
    .option('--supplier <eui>', 'the supplier (the User whose keys this store keeps)', DEFAULT_PARTIES.supplier)
    .option('--network-operator <eui>', 'the network operator', DEFAULT_PARTIES.networkOperator)
    .option('--acb <eui>', 'the Access Control Broker', DEFAULT_PARTIES.acb)
    .option('--dcc <eui>', "the lab DCC's entity (its DUIS XML-signing certificate, role 137, signs Responses)", DEFAULT_PARTIES.dcc)
    .addOption(new Option('--anomaly-threshold <code:limit:windowMs>', 'hold commands of this message code over LIMIT per window per User (repeatable)').argParser(threshold))
    .option('--no-clock-counters', 'originator counters are not milliseconds since the epoch (no clock window)')
    .option('--max-devices-per-key <n>', "the most meters one of the supplier's keys may be trusted by (the key store refuses more)", intOption('--max-devices-per-key', 1, 100_000_000));
  example(cmd, 'SMKI_KEYSTORE_PASSPHRASE=… smki init ./lab', 'SMKI_HSM_PIN=… smki init ./lab --hsm --hsm-token smki', 'PGHOST=db.internal PGSERVICE=smki smki init ./lab --postgres');
  cmd.action(
    wrap(async (ctx, args, o) => {
      const dir = args[0] as string;
      if (o.hsm === true && typeof o.hsmToken !== 'string') throw new SmkiError('ERR_CLI_USAGE', '--hsm needs --hsm-token <label>', {});
      if (o.pgSchema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(String(o.pgSchema))) throw new SmkiError('ERR_CLI_USAGE', '--pg-schema must be a lower-case SQL identifier', { detail: String(o.pgSchema).slice(0, 64) });
      const config: StateConfig = {
        format: CONFIG_FORMAT,
        environment: 'test',
        createdAt: new Date().toISOString(),
        parties: { supplier: eui(String(o.supplier), '--supplier'), networkOperator: eui(String(o.networkOperator), '--network-operator'), acb: eui(String(o.acb), '--acb') },
        keystore: o.hsm === true ? { backend: 'pkcs11', module: String(o.hsmModule), tokenLabel: String(o.hsmToken) } : { backend: 'file' },
        stores: o.postgres === true ? { kind: 'postgres', schema: String(o.pgSchema) } : { kind: 'sqlite' },
        anomalyThresholds: (o.anomalyThreshold as Record<string, ThresholdConfig> | undefined) ?? {},
        clockCounters: o.clockCounters !== false,
        duis: { dcc: eui(String(o.dcc), '--dcc'), xmlPortfolio: XML_PORTFOLIO },
      };
      const g = ctx.stateOptions(dir);
      // Read the secrets before anything is written: a missing passphrase leaves no half-made directory.
      const state = State.create(ctx.io, g, config);
      ctx.adopt(state);
      const { rows, storeId, auditPublicKey } = await initState(state, o.maxDevicesPerKey !== undefined ? { maxDevicesPerKey: o.maxDevicesPerKey as number } : {});
      return {
        json: { dir: state.dir, config, certificates: rows.map(([what, serial, file]) => ({ what, serial, file })), keystore: { storeId, auditPublicKey, auditPublicKeyFile: `keystore/${AUDIT_PUBLIC_KEY_FILE}` } },
        text: [
          `${ctx.paint.green('✔')} initialised ${state.dir}`,
          `  keys: ${config.keystore.backend === 'file' ? 'encrypted files' : `PKCS#11 token "${(config.keystore as { tokenLabel: string }).tokenLabel}"`}; stores: ${config.stores.kind}`,
          '',
          table(['certificate', 'serial', 'file'], rows),
          '',
          `key store ${storeId}: its audit public key is in keystore/${AUDIT_PUBLIC_KEY_FILE} (give an auditor a copy: smki audit verify --audit-public-key FILE)`,
          '',
          `next: export SMKI_DIR=${dir}; smki portfolio create north; smki key generate north --certify`,
          `DUIS: smki duis sign request.xml --counter now (the supplier's XML-signing key is in portfolio ${XML_PORTFOLIO})`,
        ].join('\n'),
      };
    }),
  );
};
