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
import { assignmentListDigest, deviceListDigest, type CredentialUpdate, type ExposureCount, type KeyInfo, type KeyPurpose, type KeyStore, type RotationSummary } from '@smki/keystore';
import { choice, example, intOption, type Ctx, type Outcome, type Register } from '../program.js';
import { table } from '../io.js';
import { writeFileAtomic } from '../files.js';
import { eui, type State } from '../state.js';
import { Actor, deferredOutcome, operatorOptions, sha256Upper, type OperatorFlags } from '../access.js';

/** The purposes `key generate` and `key rotate` take: `xmlSigning` is the DUIS XML-signing key (role 135), which no meter trusts. */
const PURPOSES = ['signing', 'keyAgreement', 'xmlSigning'] as const;
const PURPOSE_HELP = 'signing, keyAgreement, or xmlSigning (DUIS XML signing, role 135: an organisation key no meter trusts)';

/**
 * Issue the test organisation CA's certificate for a pending key (CSR from the key store), attach
 * and keep it: role 2 (supplier), or 135 for an `xmlSigning` key. Under access control the CSR
 * and the attachment are each a signed request of the actor's operator.
 */
export async function certifyKey(state: State, ks: KeyStore, keyId: string, actor?: Actor): Promise<SmkiCertificate> {
  const info = await ks.key(keyId);
  const csr = actor ? await actor.step({ op: 'key.csr', keyId }, {}, () => ks.createCsr(keyId)) : await ks.createCsr(keyId);
  const cert = await issueKeyCertificate(state, info, csr);
  if (actor) await actor.step({ op: 'key.attach', keyId, certificateSha256: sha256Upper(cert.der) }, { certificate: cert.der }, () => ks.attachCertificate(keyId, cert));
  else await ks.attachCertificate(keyId, cert);
  state.saveCertificate(cert);
  return cert;
}

/**
 * The test organisation CA's certificate for a key from its CSR (role 2, or 135 for an
 * `xmlSigning` key), not yet attached or kept.
 */
export async function issueKeyCertificate(state: State, info: KeyInfo, csr: Uint8Array): Promise<SmkiCertificate> {
  return issueOrganisationCertificate({
    issuer: state.hierarchy().organisationCa,
    role: info.purpose === 'xmlSigning' ? RemotePartyRole.XmlSigning135 : 2,
    entityId: info.organisation,
    keyUsage: info.purpose === 'signing' || info.purpose === 'xmlSigning' ? 'digitalSignature' : 'keyAgreement',
    csr,
  });
}

/** The certificate of a key (attached), parsed. */
export function keyCertificate(info: KeyInfo): SmkiCertificate | undefined {
  return info.certificate === undefined ? undefined : parseCertificate(info.certificate);
}

/**
 * The meters each key exposes, largest first: the key store's report (every active or pending
 * key, and every retired or revoked key that meters still trust: after a compromise, those are
 * the meters at risk), as counts (`devicesTrusting` pages the meters). An `xmlSigning` key is not
 * listed: no meter trusts it (it signs DUIS XML only).
 */
export async function exposureOf(ks: KeyStore, organisation: string): Promise<ExposureCount[]> {
  return (await ks.exposureReport(organisation)).filter((e) => e.purpose !== 'xmlSigning');
}

/** Most meters one page of a listing reads from the key store. */
const PAGE = 10_000;

/** How many meters trust a key (paged). */
async function countTrusting(ks: KeyStore, keyId: string): Promise<number> {
  let n = 0;
  for (let after: string | undefined; ; ) {
    const page = await ks.devicesTrusting(keyId, { limit: PAGE, ...(after !== undefined ? { after } : {}) });
    n += page.devices.length;
    if (page.next === undefined) return n;
    after = page.next;
  }
}

/** Up to `limit` meters that trust a key, from `after`; and where the next page starts. */
export async function trustingPage(ks: KeyStore, keyId: string, limit: number, after?: string): Promise<{ devices: string[]; next?: string }> {
  const devices: string[] = [];
  let cursor = after;
  for (;;) {
    const page = await ks.devicesTrusting(keyId, { limit: Math.min(PAGE, limit - devices.length), ...(cursor !== undefined ? { after: cursor } : {}) });
    devices.push(...page.devices);
    cursor = page.next;
    if (cursor === undefined) return { devices };
    if (devices.length >= limit) return { devices, next: cursor };
  }
}

/** Up to `limit` credential updates a portfolio's meters are due, from `after`; how many in all. */
export async function updatesPage(ks: KeyStore, organisation: string, portfolioId: string, purpose: KeyPurpose | undefined, limit: number): Promise<{ updates: CredentialUpdate[]; next?: string }> {
  const updates: CredentialUpdate[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await ks.credentialUpdates(organisation, portfolioId, { limit: Math.min(PAGE, limit - updates.length), ...(purpose !== undefined ? { purpose } : {}), ...(cursor !== undefined ? { after: cursor } : {}) });
    updates.push(...page.updates);
    cursor = page.next;
    if (cursor === undefined) return { updates };
    if (updates.length >= limit) return { updates, next: cursor };
  }
}

function keyRow(k: KeyInfo): (string | number)[] {
  return [k.keyId, k.portfolioId, k.purpose, k.state, k.serialNumber ?? '-', k.backend];
}

/** The credential updates shown in text (all with --json, up to --limit). */
const SHOWN_UPDATES = 20;

function updatesText(ctx: Ctx, updates: readonly CredentialUpdate[], total: number, what: string, more: string | undefined): string {
  if (total === 0) return `${ctx.paint.green('✔')} ${what}: no meter needs a credential update`;
  const shown = updates.slice(0, SHOWN_UPDATES).map((u) => [u.device, u.purpose, u.fromKeyId ?? '-', u.toKeyId]);
  return [
    `${ctx.paint.green('✔')} ${what}: ${total} meter(s) need a credential update (signed with the old key until done)`,
    table(['device', 'purpose', 'from key', 'to key'], shown),
    ...(total > shown.length ? [`… and ${total - shown.length} more (--json lists them${more !== undefined ? `, a page at a time: ${more}` : ''})`] : []),
  ].join('\n');
}

/** The supplier, and a failure for an outcome that was proposed or written instead of run. */
function actorFor(ctx: Ctx, ks: KeyStore, o: Record<string, unknown>): Actor {
  return new Actor(ctx.io, ks, o as OperatorFlags);
}

/** A key without its certificate bytes (JSON output). */
function keyJson(k: KeyInfo): Record<string, unknown> {
  return { ...k, certificate: undefined };
}

/** Put a revoked key's certificate on a new CRL (unless it is listed); the CRL number, if issued. */
export async function revokeCertificate(state: State, info: KeyInfo, reason: string, hours = 24 * 7): Promise<string | undefined> {
  if (info.serialNumber === undefined) return undefined;
  const rev = state.revocation();
  if (rev.entries.some((e) => e.serialNumber === info.serialNumber)) return undefined;
  await state.issueCrls({ ...rev, entries: [...rev.entries, { serialNumber: info.serialNumber, revocationDate: new Date().toISOString(), reason, issuer: 'organisation-ca' }] }, hours);
  return state.revocation().crlNumber;
}

const limitOption = (what: string) => ['--limit <n>', `list at most this many ${what} (default 10000; the rest a page at a time)`, intOption('--limit', 1, 1_000_000), 10_000] as const;

export const register: Register = (program, wrap) => {
  const portfolio = program.command('portfolio').description("the supplier's portfolios of meters, each with its own keys");
  example(portfolio, 'smki portfolio create north', 'smki portfolio blast-radius');

  example(
    operatorOptions(
      portfolio
        .command('create')
        .description('create a portfolio')
        .argument('<id>', 'portfolio id (letters, digits, . _ -)')
        .option('--name <name>', 'display name'),
    ),
    'smki portfolio create north --name "North region"',
    'smki portfolio create north --operator admin --operator-key admin.key.pem',
  ).action(
    wrap(async (ctx, [id], o) => {
      const state = ctx.state();
      const ks = await state.keystore();
      const supplier = state.config.parties.supplier;
      const name = o.name !== undefined ? String(o.name) : undefined;
      const r = await actorFor(ctx, ks, o).main({ op: 'portfolio.create', organisation: supplier, portfolioId: String(id), ...(name !== undefined ? { name } : {}) }, {}, () =>
        ks.createPortfolio(supplier, { id: String(id), ...(name !== undefined ? { name } : {}) }),
      );
      const d = deferredOutcome(ctx, r, `portfolio ${String(id)}`);
      if (d) return d;
      const p = await ks.portfolio(supplier, String(id));
      return { json: p, text: `${ctx.paint.green('✔')} portfolio ${p.id} created for supplier ${p.organisation}\n  next: smki key generate ${p.id} --certify` };
    }),
  );

  example(portfolio.command('list').description('list the portfolios with their current keys and meters'), 'smki portfolio list --json').action(
    wrap(async (ctx) => {
      const state = ctx.state();
      const ks = await state.keystore();
      const list = await ks.portfolios(state.config.parties.supplier);
      return {
        json: list.map(({ deviceCount, ...p }) => ({ ...p, devices: deviceCount })),
        text:
          list.length === 0
            ? 'no portfolio yet: smki portfolio create <id>'
            : table(['portfolio', 'name', 'signing key', 'key-agreement key', 'XML-signing key', 'meters'], list.map((p) => [p.id, p.name, p.current.signing ?? '-', p.current.keyAgreement ?? '-', p.current.xmlSigning ?? '-', p.deviceCount])),
      };
    }),
  );

  example(
    operatorOptions(
      portfolio
        .command('assign')
        .description('assign meters already in the registry to a portfolio (they trust its current keys)')
        .argument('<portfolio>', 'portfolio id')
        .argument('<devices...>', 'device EUI-64s'),
    ),
    'smki portfolio assign north 00DB123456789001 00DB123456789002',
  ).action(
    wrap(async (ctx, [pid, devices], o) => {
      const state = ctx.state();
      const ks = await state.keystore();
      const supplier = state.config.parties.supplier;
      const list = (devices as string[]).map((d) => eui(d, 'a device'));
      const assignments = list.map((device) => ({ device, portfolioId: String(pid) }));
      const digest = assignmentListDigest(assignments);
      const r = await actorFor(ctx, ks, o).main({ op: 'device.assign', organisation: supplier, count: digest.count, listSha256: digest.listSha256 }, { assignments }, () => ks.assignDevices(supplier, assignments));
      const d = deferredOutcome(ctx, r, `the assignment of ${list.length} meter(s) to ${String(pid)}`);
      if (d) return d;
      const out = await Promise.all(list.map((x) => ks.device(supplier, x)));
      return { json: out, text: `${ctx.paint.green('✔')} ${out.length} meter(s) assigned to ${String(pid)}` };
    }),
  );

  example(
    operatorOptions(
      portfolio
        .command('move')
        .description('move meters to another portfolio; lists the credential updates due')
        .argument('<device>', 'device EUI-64')
        .argument('<portfolio>', 'target portfolio id')
        .option('--also <devices...>', 'more meters to move in the same change'),
    ),
    'smki portfolio move 00DB123456789001 south',
  ).action(
    wrap(async (ctx, [device, pid], o) => {
      const state = ctx.state();
      const ks = await state.keystore();
      const supplier = state.config.parties.supplier;
      const list = [String(device), ...((o.also as string[] | undefined) ?? [])].map((d) => eui(d, 'a device'));
      const digest = deviceListDigest(list);
      const r = await actorFor(ctx, ks, o).main({ op: 'device.move', organisation: supplier, toPortfolioId: String(pid), count: digest.count, listSha256: digest.listSha256 }, { devices: list }, () =>
        ks.moveDevices(supplier, list, String(pid)),
      );
      const deferred = deferredOutcome(ctx, r, `the move of ${list.length} meter(s) to ${String(pid)}`);
      if (deferred) return deferred;
      // The updates each moved meter now needs: the portfolio's current keys it does not trust yet.
      const p = await ks.portfolio(supplier, String(pid));
      const updates: CredentialUpdate[] = [];
      for (const x of list) {
        const info = await ks.device(supplier, x);
        for (const purpose of ['signing', 'keyAgreement', 'prepaymentKeyAgreement'] as const) {
          const to = p.current[purpose];
          if (to !== undefined && info.installed[purpose] !== to) updates.push({ device: info.device, purpose, ...(info.installed[purpose] !== undefined ? { fromKeyId: info.installed[purpose] } : {}), toKeyId: to } as CredentialUpdate);
        }
      }
      const what = list.length === 1 ? `moved ${list[0]!} to ${String(pid)}` : `moved ${list.length} meters to ${String(pid)}`;
      return { json: { device: list[0], devices: list, portfolio: pid, updates }, text: updatesText(ctx, updates, updates.length, what, undefined) };
    }),
  );

  example(
    portfolio
      .command('blast-radius')
      .description('the meters each key endangers (exposure report, counted by the key store), largest first')
      .option('--key <keyId>', 'one key only')
      .option('--list', 'list the meters (of --key, or of every key), a page at a time')
      .option(...limitOption('meters per key'))
      .option('--after <eui>', 'with --key --list: start after this meter (the `next` of the page before)'),
    'smki portfolio blast-radius',
    'smki portfolio blast-radius --key 90B3D51F30010000.north.DS.g1 --list --json',
  ).action(
    wrap(async (ctx, _a, o) => {
      const state = ctx.state();
      const ks = await state.keystore();
      const supplier = state.config.parties.supplier;
      let report: ExposureCount[];
      if (o.key !== undefined) {
        const k = await ks.key(String(o.key));
        const counted = (await ks.exposureReport(k.organisation)).find((e) => e.keyId === k.keyId);
        report = [counted ?? { keyId: k.keyId, portfolioId: k.portfolioId, purpose: k.purpose, state: k.state, wholeEstate: (await ks.devicesTrusting(k.keyId, { limit: 1 })).wholeEstate, deviceCount: await countTrusting(ks, k.keyId) }];
      } else {
        if (o.after !== undefined) throw new SmkiError('ERR_CLI_USAGE', '--after pages the meters of one key: give --key too', {});
        report = await exposureOf(ks, supplier);
      }
      const limit = o.limit as number;
      const lists = new Map<string, { devices: string[]; next?: string }>();
      if (o.list === true) for (const e of report) lists.set(e.keyId, await trustingPage(ks, e.keyId, limit, o.after !== undefined ? String(o.after) : undefined));
      const total = report.reduce((n, e) => n + e.deviceCount, 0);
      return {
        json: report.map((e) => ({ ...e, meters: e.deviceCount, devices: lists.get(e.keyId)?.devices, next: lists.get(e.keyId)?.next })),
        text: [
          table(['key', 'portfolio', 'purpose', 'state', 'whole estate', 'meters'], report.map((e) => [e.keyId, e.portfolioId, e.purpose, e.state, e.wholeEstate ? 'yes' : 'no', e.deviceCount])),
          `${report.length} key(s), ${total} meter exposure(s): a stolen key endangers only its own row`,
          ...(o.list === true
            ? report.map((e) => {
                const l = lists.get(e.keyId)!;
                return `${e.keyId}: ${l.devices.join(' ') || '(none)'}${l.next !== undefined ? ` … (more: --key ${e.keyId} --list --after ${l.next})` : ''}`;
              })
            : []),
        ].join('\n'),
      };
    }),
  );

  const key = program.command('key').description("the supplier's keys: generate, certify, rotate, retire, revoke");
  example(key, 'smki key generate north --certify', 'smki key revoke 90B3D51F30010000.north.DS.g1');

  example(
    operatorOptions(
      key
        .command('generate')
        .description('generate a key for a portfolio (pending until its certificate is attached)')
        .argument('<portfolio>', 'portfolio id')
        .addOption(choice('--purpose <purpose>', PURPOSE_HELP, PURPOSES, 'signing'))
        .option('--certify', "issue its certificate from the state directory's test organisation CA and attach it (role 2, or 135 for xmlSigning)"),
    ),
    'smki key generate north --certify',
    'smki key generate north --purpose xmlSigning --certify',
    'smki key generate north --operator alice --operator-key alice.key.pem --propose',
  ).action(
    wrap(async (ctx, [pid], o) => {
      const state = ctx.state();
      const ks = await state.keystore();
      const supplier = state.config.parties.supplier;
      const actor = actorFor(ctx, ks, o);
      const purpose = o.purpose as KeyPurpose;
      const r = await actor.main({ op: 'key.generate', organisation: supplier, portfolioId: String(pid), purpose }, {}, () => ks.generateKey(supplier, String(pid), purpose));
      const d = deferredOutcome(ctx, r, `a ${purpose} key for ${String(pid)}`);
      if (d) return d;
      const h = (r as { result: { keyId: string } }).result;
      const cert = o.certify === true ? await certifyKey(state, ks, h.keyId, actor) : undefined;
      const info = await ks.key(h.keyId);
      return {
        json: { ...keyJson(info), certificateSerial: cert?.serialNumber },
        text: `${ctx.paint.green('✔')} key ${info.keyId} (${info.purpose}, ${info.backend}) is ${info.state}${cert ? `; certificate ${cert.serialNumber}` : `\n  next: smki key csr ${info.keyId} --out req.pem`}`,
      };
    }),
  );

  example(
    operatorOptions(
      key.command('csr').description('a PKCS#10 request for a pending key (signed by that key)').argument('<keyId>', 'key id').option('--out <file>', 'write the PEM here (default: stdout)'),
    ),
    'smki key csr 90B3D51F30010000.north.DS.g2 --out north-g2.csr.pem',
  ).action(
    wrap(async (ctx, [keyId], o) => {
      const ks = await ctx.state().keystore();
      const r = await actorFor(ctx, ks, o).main({ op: 'key.csr', keyId: String(keyId) }, {}, () => ks.createCsr(String(keyId)));
      const d = deferredOutcome(ctx, r, `the CSR of ${String(keyId)}`);
      if (d) return d;
      const der = (r as { result: Uint8Array }).result;
      const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE REQUEST-----\n`;
      if (o.out !== undefined) writeFileAtomic(resolve(ctx.io.cwd, String(o.out)), pem, 0o644);
      return { json: { keyId, csr: pem, file: o.out }, text: o.out !== undefined ? `${ctx.paint.green('✔')} wrote ${String(o.out)}` : pem };
    }),
  );

  example(
    operatorOptions(key.command('attach').description('attach a certificate issued elsewhere to its pending key').argument('<keyId>', 'key id').argument('<certificate>', 'PEM or DER file')),
    'smki key attach 90B3D51F30010000.north.DS.g2 north-g2.pem',
  ).action(
    wrap(async (ctx, [keyId, file], o) => {
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
      const r = await actorFor(ctx, ks, o).main({ op: 'key.attach', keyId: String(keyId), certificateSha256: sha256Upper(cert.der) }, { certificate: cert.der }, () => ks.attachCertificate(String(keyId), cert));
      const d = deferredOutcome(ctx, r, `the certificate of ${String(keyId)}`);
      if (d) return d;
      const info = await ks.key(String(keyId));
      state.saveCertificate(cert);
      return { json: keyJson(info), text: `${ctx.paint.green('✔')} key ${info.keyId} is ${info.state}, certificate ${cert.serialNumber}` };
    }),
  );

  example(
    operatorOptions(
      key
        .command('rotate')
        .description("rotate a portfolio's key: a new key and certificate become current; lists the meters to update")
        .argument('<portfolio>', 'portfolio id')
        .addOption(choice('--purpose <purpose>', PURPOSE_HELP, PURPOSES, 'signing'))
        .option('--key <keyId>', 'rotate in this pending key with its certificate, instead of generating one')
        .option(...limitOption('credential updates')),
    ),
    'smki key rotate north',
    'smki key rotate north --key 90B3D51F30010000.north.DS.g2 --operator alice --operator-key alice.key.pem',
  ).action(
    wrap(async (ctx, [pid], o): Promise<Outcome> => {
      const state = ctx.state();
      const ks = await state.keystore();
      const supplier = state.config.parties.supplier;
      const actor = actorFor(ctx, ks, o);
      let keyId = o.key as string | undefined;
      if (keyId === undefined) {
        // Under access control the generation is a change of its own (often under dual control): made first, with smki key generate.
        if (actor.operator !== undefined) throw new SmkiError('ERR_CLI_USAGE', 'as an operator, rotate names the key to rotate in (--key): generate and certify it first (smki key generate <portfolio> --certify, with --propose under dual control)', {});
        keyId = (await actor.step({ op: 'key.generate', organisation: supplier, portfolioId: String(pid), purpose: o.purpose as KeyPurpose }, {}, () => ks.generateKey(supplier, String(pid), o.purpose as KeyPurpose))).keyId;
        await certifyKey(state, ks, keyId, actor);
      } else if ((await ks.key(keyId)).portfolioId !== String(pid)) {
        throw new SmkiError('ERR_CLI_USAGE', `key ${keyId} is not of portfolio ${String(pid)}`, { detail: keyId });
      }
      const id = keyId;
      const r = await actor.main({ op: 'key.rotate', keyId: id }, {}, () => ks.rotate(id));
      const d = deferredOutcome(ctx, r, `the rotation to ${id}`);
      if (d) return d;
      const summary = (r as { result: RotationSummary }).result;
      const info = await ks.key(id);
      const page = info.purpose === 'xmlSigning' || summary.devicesToUpdate === 0 ? { updates: [] } : await updatesPage(ks, supplier, String(pid), info.purpose, o.limit as number);
      return {
        json: { keyId: id, fromKeyId: summary.fromKeyId, devicesToUpdate: summary.devicesToUpdate, updates: page.updates, next: page.next },
        text: updatesText(ctx, page.updates, summary.devicesToUpdate, `${id} is now current in ${String(pid)}`, page.next !== undefined ? 'smki device updates' : undefined),
      };
    }),
  );

  example(operatorOptions(key.command('retire').description('retire a key no meter trusts any more').argument('<keyId>', 'key id')), 'smki key retire 90B3D51F30010000.north.DS.g1').action(
    wrap(async (ctx, [keyId], o) => {
      const ks = await ctx.state().keystore();
      const r = await actorFor(ctx, ks, o).main({ op: 'key.retire', keyId: String(keyId) }, {}, () => ks.retire(String(keyId)));
      const d = deferredOutcome(ctx, r, `the retirement of ${String(keyId)}`);
      if (d) return d;
      const info = await ks.key(String(keyId));
      return { json: keyJson(info), text: `${ctx.paint.green('✔')} key ${info.keyId} is ${info.state}` };
    }),
  );

  example(
    operatorOptions(
      key
        .command('revoke')
        .description('revoke a key (compromise): the store refuses it at once, and its certificate goes on a new CRL')
        .argument('<keyId>', 'key id')
        .addOption(choice('--reason <reason>', 'CRL reason', ['keyCompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'unspecified'], 'keyCompromise'))
        .option('--crl-hours <n>', 'validity of the new CRL in hours (default 168)', intOption('--crl-hours', 1, 24 * 366)),
    ),
    'smki key revoke 90B3D51F30010000.north.DS.g1 --reason keyCompromise',
  ).action(
    wrap(async (ctx, [keyId], o) => {
      const state = ctx.state();
      const ks = await state.keystore();
      const r = await actorFor(ctx, ks, o).main({ op: 'key.revoke', keyId: String(keyId), reason: String(o.reason) }, {}, () => ks.revoke(String(keyId), String(o.reason)));
      const d = deferredOutcome(ctx, r, `the revocation of ${String(keyId)}`);
      if (d) return d;
      const info = await ks.key(String(keyId));
      const crlNumber = await revokeCertificate(state, info, String(o.reason), (o.crlHours as number | undefined) ?? 24 * 7);
      return {
        json: { ...keyJson(info), crlNumber },
        text: `${ctx.paint.green('✔')} key ${info.keyId} revoked${info.serialNumber ? `; certificate ${info.serialNumber} is on CRL #${crlNumber ?? '(already listed)'}` : ' (it had no certificate)'}\n  exposure: smki portfolio blast-radius --key ${info.keyId} --list`,
      };
    }),
  );

  example(key.command('list').description('list the keys with their state and certificate'), 'smki key list --json').action(
    wrap(async (ctx) => {
      const state = ctx.state();
      const keys = await (await state.keystore()).keys(state.config.parties.supplier);
      return { json: keys.map(keyJson), text: keys.length === 0 ? 'no key yet' : table(['key', 'portfolio', 'purpose', 'state', 'certificate serial', 'backend'], keys.map(keyRow)) };
    }),
  );
};
