/**
 * `smki portfolio …` and `smki key …`: the supplier's portfolios and their keys (@smki/keystore),
 * certified by the state directory's test organisation CA.
 * @module
 * @internal
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { RemotePartyRole, SmkiError } from '@smki/core';
import { issueOrganisationCertificate, parseCertificate, type SmkiCertificate } from '@smki/pki';
import type { CredentialUpdate, Exposure, KeyInfo, KeyPurpose, KeyStore } from '@smki/keystore';
import { choice, example, intOption, type Ctx, type Register } from '../program.js';
import { table } from '../io.js';
import { writeFileAtomic } from '../files.js';
import type { State } from '../state.js';

/** The purposes `key generate` and `key rotate` take: `xmlSigning` is the DUIS XML-signing key (role 135), which no meter trusts. */
const PURPOSES = ['signing', 'keyAgreement', 'xmlSigning'] as const;
const PURPOSE_HELP = 'signing, keyAgreement, or xmlSigning (DUIS XML signing, role 135: an organisation key no meter trusts)';

/**
 * Issue the test organisation CA's certificate for a pending key (CSR from the key store), attach
 * and keep it: role 2 (supplier), or 135 for an `xmlSigning` key.
 */
export async function certifyKey(state: State, ks: KeyStore, keyId: string): Promise<SmkiCertificate> {
  const info = ks.key(keyId);
  const csr = await ks.createCsr(keyId);
  const cert = await issueOrganisationCertificate({
    issuer: state.hierarchy().organisationCa,
    role: info.purpose === 'xmlSigning' ? RemotePartyRole.XmlSigning135 : 2,
    entityId: info.organisation,
    keyUsage: info.purpose === 'signing' || info.purpose === 'xmlSigning' ? 'digitalSignature' : 'keyAgreement',
    csr,
  });
  await ks.attachCertificate(keyId, cert);
  state.saveCertificate(cert);
  return cert;
}

/** The certificate of a key (attached), parsed. */
export function keyCertificate(info: KeyInfo): SmkiCertificate | undefined {
  return info.certificate === undefined ? undefined : parseCertificate(info.certificate);
}

/**
 * The meters each key exposes, largest first: every active or pending key, and every retired or
 * revoked key that meters still trust (after a compromise, those are the meters at risk). An
 * `xmlSigning` key is not listed: no meter trusts it (it signs DUIS XML only).
 */
export function exposureOf(ks: KeyStore, organisation: string): Exposure[] {
  return ks
    .keys(organisation)
    .filter((k) => k.purpose !== 'xmlSigning')
    .map((k) => ({ k, e: ks.devicesExposedBy(k.keyId) }))
    .filter(({ k, e }) => k.state === 'active' || k.state === 'pending' || e.devices.length > 0)
    .map(({ e }) => e)
    .sort((a, b) => b.devices.length - a.devices.length || (a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : 0));
}

function keyRow(k: KeyInfo): (string | number)[] {
  return [k.keyId, k.portfolioId, k.purpose, k.state, k.serialNumber ?? '-', k.backend];
}

function updatesText(ctx: Ctx, updates: readonly CredentialUpdate[], what: string): string {
  if (updates.length === 0) return `${ctx.paint.green('✔')} ${what}: no meter needs a credential update`;
  const shown = updates.slice(0, 20).map((u) => [u.device, u.purpose, u.fromKeyId ?? '-', u.toKeyId]);
  return [
    `${ctx.paint.green('✔')} ${what}: ${updates.length} meter(s) need a credential update (signed with the old key until done)`,
    table(['device', 'purpose', 'from key', 'to key'], shown),
    ...(updates.length > shown.length ? [`… and ${updates.length - shown.length} more (--json lists all)`] : []),
  ].join('\n');
}

export const register: Register = (program, wrap) => {
  const portfolio = program.command('portfolio').description("the supplier's portfolios of meters, each with its own keys");
  example(portfolio, 'smki portfolio create north', 'smki portfolio blast-radius');

  example(
    portfolio
      .command('create')
      .description('create a portfolio')
      .argument('<id>', 'portfolio id (letters, digits, . _ -)')
      .option('--name <name>', 'display name'),
    'smki portfolio create north --name "North region"',
  ).action(
    wrap(async (ctx, [id], o) => {
      const state = ctx.state();
      const ks = await state.keystore();
      const p = await ks.createPortfolio(state.config.parties.supplier, { id: String(id), ...(o.name !== undefined ? { name: String(o.name) } : {}) });
      return { json: p, text: `${ctx.paint.green('✔')} portfolio ${p.id} created for supplier ${p.organisation}\n  next: smki key generate ${p.id} --certify` };
    }),
  );

  example(portfolio.command('list').description('list the portfolios with their current keys and meters'), 'smki portfolio list --json').action(
    wrap(async (ctx) => {
      const state = ctx.state();
      const ks = await state.keystore();
      const list = ks.portfolios(state.config.parties.supplier);
      return {
        json: list.map((p) => ({ ...p, devices: p.devices.length })),
        text:
          list.length === 0
            ? 'no portfolio yet: smki portfolio create <id>'
            : table(['portfolio', 'name', 'signing key', 'key-agreement key', 'XML-signing key', 'meters'], list.map((p) => [p.id, p.name, p.current.signing ?? '-', p.current.keyAgreement ?? '-', p.current.xmlSigning ?? '-', p.devices.length])),
      };
    }),
  );

  example(
    portfolio
      .command('assign')
      .description('assign meters already in the registry to a portfolio (they trust its current keys)')
      .argument('<portfolio>', 'portfolio id')
      .argument('<devices...>', 'device EUI-64s'),
    'smki portfolio assign north 00DB123456789001 00DB123456789002',
  ).action(
    wrap(async (ctx, [pid, devices]) => {
      const state = ctx.state();
      const ks = await state.keystore();
      const out = [];
      for (const d of devices as string[]) out.push(await ks.assignDevice(state.config.parties.supplier, d, String(pid)));
      return { json: out, text: `${ctx.paint.green('✔')} ${out.length} meter(s) assigned to ${String(pid)}` };
    }),
  );

  example(
    portfolio.command('move').description('move a meter to another portfolio; lists the credential updates due').argument('<device>', 'device EUI-64').argument('<portfolio>', 'target portfolio id'),
    'smki portfolio move 00DB123456789001 south',
  ).action(
    wrap(async (ctx, [device, pid]) => {
      const state = ctx.state();
      const ks = await state.keystore();
      const updates = await ks.moveDevice(state.config.parties.supplier, String(device), String(pid));
      return { json: { device, portfolio: pid, updates }, text: updatesText(ctx, updates, `moved ${String(device)} to ${String(pid)}`) };
    }),
  );

  example(
    portfolio
      .command('blast-radius')
      .description('the meters each key endangers (exposure report), largest first')
      .option('--key <keyId>', 'one key only')
      .option('--list', 'list the meters, not only count them'),
    'smki portfolio blast-radius',
    'smki portfolio blast-radius --key 90B3D51F30010000.north.DS.g1 --list --json',
  ).action(
    wrap(async (ctx, _a, o) => {
      const state = ctx.state();
      const ks = await state.keystore();
      const report = o.key !== undefined ? [ks.devicesExposedBy(String(o.key))] : exposureOf(ks, state.config.parties.supplier);
      const stateOf = (keyId: string) => ks.key(keyId).state;
      const total = report.reduce((n, e) => n + e.devices.length, 0);
      return {
        json: report.map((e) => ({ ...e, state: stateOf(e.keyId), meters: e.devices.length, devices: o.list === true ? e.devices : undefined })),
        text: [
          table(['key', 'portfolio', 'purpose', 'state', 'whole estate', 'meters'], report.map((e) => [e.keyId, e.portfolioId, e.purpose, stateOf(e.keyId), e.wholeEstate ? 'yes' : 'no', e.devices.length])),
          `${report.length} key(s), ${total} meter exposure(s): a stolen key endangers only its own row`,
          ...(o.list === true ? report.map((e) => `${e.keyId}: ${e.devices.join(' ') || '(none)'}`) : []),
        ].join('\n'),
      };
    }),
  );

  const key = program.command('key').description("the supplier's keys: generate, certify, rotate, retire, revoke");
  example(key, 'smki key generate north --certify', 'smki key revoke 90B3D51F30010000.north.DS.g1');

  example(
    key
      .command('generate')
      .description('generate a key for a portfolio (pending until its certificate is attached)')
      .argument('<portfolio>', 'portfolio id')
      .addOption(choice('--purpose <purpose>', PURPOSE_HELP, PURPOSES, 'signing'))
      .option('--certify', "issue its certificate from the state directory's test organisation CA and attach it (role 2, or 135 for xmlSigning)"),
    'smki key generate north --certify',
    'smki key generate north --purpose xmlSigning --certify',
  ).action(
    wrap(async (ctx, [pid], o) => {
      const state = ctx.state();
      const ks = await state.keystore();
      const h = await ks.generateKey(state.config.parties.supplier, String(pid), o.purpose as KeyPurpose);
      const cert = o.certify === true ? await certifyKey(state, ks, h.keyId) : undefined;
      const info = ks.key(h.keyId);
      return {
        json: { ...info, certificate: undefined, certificateSerial: cert?.serialNumber },
        text: `${ctx.paint.green('✔')} key ${info.keyId} (${info.purpose}, ${info.backend}) is ${info.state}${cert ? `; certificate ${cert.serialNumber}` : `\n  next: smki key csr ${info.keyId} --out req.pem`}`,
      };
    }),
  );

  example(
    key.command('csr').description('a PKCS#10 request for a pending key (signed by that key)').argument('<keyId>', 'key id').option('--out <file>', 'write the PEM here (default: stdout)'),
    'smki key csr 90B3D51F30010000.north.DS.g2 --out north-g2.csr.pem',
  ).action(
    wrap(async (ctx, [keyId], o) => {
      const ks = await ctx.state().keystore();
      const der = await ks.createCsr(String(keyId));
      const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE REQUEST-----\n`;
      if (o.out !== undefined) writeFileAtomic(resolve(ctx.io.cwd, String(o.out)), pem, 0o644);
      return { json: { keyId, csr: pem, file: o.out }, text: o.out !== undefined ? `${ctx.paint.green('✔')} wrote ${String(o.out)}` : pem };
    }),
  );

  example(
    key.command('attach').description('attach a certificate issued elsewhere to its pending key').argument('<keyId>', 'key id').argument('<certificate>', 'PEM or DER file'),
    'smki key attach 90B3D51F30010000.north.DS.g2 north-g2.pem',
  ).action(
    wrap(async (ctx, [keyId, file]) => {
      const state = ctx.state();
      const ks = await state.keystore();
      let cert: SmkiCertificate;
      try {
        // PEM (as `smki cert issue --out` writes it) or DER: a PEM file read as bytes is not DER.
        const bytes = readFileSync(resolve(ctx.io.cwd, String(file)));
        const text = bytes.toString('latin1').trimStart();
        cert = parseCertificate(text.startsWith('-----BEGIN') ? bytes.toString('utf8') : new Uint8Array(bytes));
      } catch (e) {
        if (e instanceof SmkiError) throw e;
        throw new SmkiError('ERR_CLI_INPUT_INVALID', 'the certificate file cannot be read', { detail: String(file) });
      }
      const info = await ks.attachCertificate(String(keyId), cert);
      state.saveCertificate(cert);
      return { json: { ...info, certificate: undefined }, text: `${ctx.paint.green('✔')} key ${info.keyId} is ${info.state}, certificate ${cert.serialNumber}` };
    }),
  );

  example(
    key
      .command('rotate')
      .description("rotate a portfolio's key: a new key and certificate become current; lists the meters to update")
      .argument('<portfolio>', 'portfolio id')
      .addOption(choice('--purpose <purpose>', PURPOSE_HELP, PURPOSES, 'signing'))
      .option('--key <keyId>', 'rotate in this pending key with its certificate, instead of generating one'),
    'smki key rotate north',
  ).action(
    wrap(async (ctx, [pid], o) => {
      const state = ctx.state();
      const ks = await state.keystore();
      let keyId = o.key as string | undefined;
      if (keyId === undefined) {
        keyId = (await ks.generateKey(state.config.parties.supplier, String(pid), o.purpose as KeyPurpose)).keyId;
        await certifyKey(state, ks, keyId);
      } else if (ks.key(keyId).portfolioId !== String(pid)) {
        throw new SmkiError('ERR_CLI_USAGE', `key ${keyId} is not of portfolio ${String(pid)}`, { detail: keyId });
      }
      const updates = await ks.rotate(keyId);
      return { json: { keyId, updates }, text: updatesText(ctx, updates, `${keyId} is now current in ${String(pid)}`) };
    }),
  );

  example(key.command('retire').description('retire a key no meter trusts any more').argument('<keyId>', 'key id'), 'smki key retire 90B3D51F30010000.north.DS.g1').action(
    wrap(async (ctx, [keyId]) => {
      const info = await (await ctx.state().keystore()).retire(String(keyId));
      return { json: { ...info, certificate: undefined }, text: `${ctx.paint.green('✔')} key ${info.keyId} is ${info.state}` };
    }),
  );

  example(
    key
      .command('revoke')
      .description('revoke a key (compromise): the store refuses it at once, and its certificate goes on a new CRL')
      .argument('<keyId>', 'key id')
      .addOption(choice('--reason <reason>', 'CRL reason', ['keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'unspecified'], 'keyCompromise'))
      .option('--crl-hours <n>', 'validity of the new CRL in hours (default 168)', intOption('--crl-hours', 1, 24 * 366)),
    'smki key revoke 90B3D51F30010000.north.DS.g1 --reason keyCompromise',
  ).action(
    wrap(async (ctx, [keyId], o) => {
      const state = ctx.state();
      const ks = await state.keystore();
      const info = await ks.revoke(String(keyId), String(o.reason));
      let crlNumber: string | undefined;
      if (info.serialNumber !== undefined) {
        const rev = state.revocation();
        if (!rev.entries.some((e) => e.serialNumber === info.serialNumber)) {
          await state.issueCrls({ ...rev, entries: [...rev.entries, { serialNumber: info.serialNumber, revocationDate: new Date().toISOString(), reason: String(o.reason), issuer: 'organisation-ca' }] }, (o.crlHours as number | undefined) ?? 24 * 7);
          crlNumber = state.revocation().crlNumber;
        }
      }
      return {
        json: { ...info, certificate: undefined, crlNumber },
        text: `${ctx.paint.green('✔')} key ${info.keyId} revoked${info.serialNumber ? `; certificate ${info.serialNumber} is on CRL #${crlNumber ?? '(already listed)'}` : ' (it had no certificate)'}\n  exposure: smki portfolio blast-radius --key ${info.keyId} --list`,
      };
    }),
  );

  example(key.command('list').description('list the keys with their state and certificate'), 'smki key list --json').action(
    wrap(async (ctx) => {
      const state = ctx.state();
      const keys = (await state.keystore()).keys(state.config.parties.supplier);
      return { json: keys.map((k) => ({ ...k, certificate: undefined })), text: keys.length === 0 ? 'no key yet' : table(['key', 'portfolio', 'purpose', 'state', 'certificate serial', 'backend'], keys.map(keyRow)) };
    }),
  );
};
