/**
 * The cases of test-vectors/gbcs/credentials.json (docs/domain.md §9, §10): CS02b commands of modes
 * 2 to 8 (pre-commands and signed), their payloads, responses and alerts 0x00CB (DER and the
 * devices' long-form lengths), and CS02c / CS02d / CS02e commands and responses; valid and broken,
 * each broken case breaking one rule.
 *
 * Reproducible byte for byte: the hierarchy and every certificate come from labelled keys and
 * labelled serial-number sources (scripts/vectors/deterministic.ts), signatures are RFC 6979, and
 * every time is fixed. Every case is run through the library before it is written; a case that does
 * not behave as declared is reported as a problem and nothing is written.
 */
import { concatBytes, fromHex, toHex, type Eui64 } from '../../packages/core/src/index.js';
import { createHierarchy, issueDeviceCertificate, issueOrganisationCertificate, createCsr, type SmkiCertificate } from '../../packages/pki/src/index.js';
import {
  buildGeneralSigning,
  buildIssueCredentials,
  buildProvideDeviceCertificate,
  buildUpdateDeviceCertificate,
  buildUpdateSecurityCredentials,
  decodeCredentialsAlert,
  decodeIssueCredentials,
  decodeIssueCredentialsResponse,
  decodeProvideDeviceCertificate,
  decodeProvideDeviceCertificateResponse,
  decodeUpdateDeviceCertificate,
  decodeUpdateDeviceCertificateResponse,
  decodeUpdateSecurityCredentials,
  decodeUpdateSecurityCredentialsCommand,
  decodeUpdateSecurityCredentialsResponse,
  encodeCredentialsAlert,
  encodeIssueCredentialsResponse,
  encodeProvideDeviceCertificateResponse,
  encodeUpdateDeviceCertificateResponse,
  encodeUpdateSecurityCredentialsPayload,
  encodeUpdateSecurityCredentialsResponse,
  parseMessage,
  signedBytes,
  type CredentialsExecutionOutcome,
  type TrustAnchorCell,
  type UpdateSecurityCredentialsOptions,
  type UpdateSecurityCredentialsPayload,
} from '../../packages/gbcs/src/index.js';
import { seededRandom, seededSigner } from './deterministic.js';
import { outcome } from './gbcs-fields.js';

/** The decoders a case may name, each given the case's hex input. */
export const CREDENTIAL_DECODERS = {
  command: (b: Uint8Array) => {
    const d = decodeUpdateSecurityCredentialsCommand(b);
    return { mode: d.entry.mode, messageCode: d.message.messageCode, payload: d.payload };
  },
  payload: decodeUpdateSecurityCredentials,
  response: decodeUpdateSecurityCredentialsResponse,
  alert: decodeCredentialsAlert,
  'cs02c-command': decodeIssueCredentials,
  'cs02c-response': decodeIssueCredentialsResponse,
  'cs02d-command': decodeUpdateDeviceCertificate,
  'cs02d-response': decodeUpdateDeviceCertificateResponse,
  'cs02e-command': decodeProvideDeviceCertificate,
  'cs02e-response': decodeProvideDeviceCertificateResponse,
} as const;

/** The name of a decoder in {@link CREDENTIAL_DECODERS}. */
export type CredentialDecoder = keyof typeof CREDENTIAL_DECODERS;

/** A decoded value in the vectors' spelling: bigints as decimal strings, bytes as upper-case hex, times as ISO text. */
export function jsonify(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return toHex(v);
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(jsonify);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonify(x)]));
  return v;
}

/** One case of credentials.json. */
export interface CredentialCase {
  id: string;
  comment: string;
  clause: string;
  input: { decoder: CredentialDecoder; data: string };
  result: 'valid' | 'invalid';
  expected?: unknown;
  errorCode?: string;
  offset?: number;
}

const SUPPLIER = '90B3D51F30010000';
const NETWORK = '90B3D51F30020000';
const ACB = '90B3D51F30000004';
const WAN = '90B3D51F30060000';
const TRANS_COS = '90B3D51F30050000';
const RECOVERY = '90B3D51F30000001';
const DEVICE = '00DB1234567890A0';
const NOT_BEFORE = new Date('2025-01-01T00:00:00Z');

const DS = (role: number): TrustAnchorCell => ({ role, keyUsage: 'digitalSignature', cellUsage: 'management' });
const KA = (role: number): TrustAnchorCell => ({ role, keyUsage: 'keyAgreement', cellUsage: 'management' });
const PREPAY: TrustAnchorCell = { role: 2, keyUsage: 'keyAgreement', cellUsage: 'prepayment' };

/** Build every case; `problems` lists the cases that do not behave as declared. */
export async function credentialCases(): Promise<{ cases: CredentialCase[]; problems: string[]; titles: Record<string, string> }> {
  const hierarchy = await createHierarchy({
    signers: { root: seededSigner('cred-root'), organisationCa: seededSigner('cred-oca'), deviceCa: seededSigner('cred-dca') },
    notBefore: NOT_BEFORE,
    random: seededRandom('cred-hierarchy'),
  });
  const org = (label: string, role: number, entityId: string, keyUsage: 'digitalSignature' | 'keyAgreement'): Promise<SmkiCertificate> =>
    issueOrganisationCertificate({ issuer: hierarchy.organisationCa, role, entityId, keyUsage, publicKey: seededSigner(label).publicKey, notBefore: NOT_BEFORE, random: seededRandom(label) });
  const cert = {
    supplierDs: await org('cred-supplier-ds', 2, SUPPLIER, 'digitalSignature'),
    supplierDsNew: await org('cred-supplier-ds-new', 2, SUPPLIER, 'digitalSignature'),
    supplierKaNew: await org('cred-supplier-ka-new', 2, SUPPLIER, 'keyAgreement'),
    supplierPrepayNew: await org('cred-supplier-prepay-new', 2, SUPPLIER, 'keyAgreement'),
    networkKaNew: await org('cred-network-ka-new', 3, NETWORK, 'keyAgreement'),
    acbKaNew: await org('cred-acb-ka-new', 4, ACB, 'keyAgreement'),
    wanDsNew: await org('cred-wan-ds-new', 6, WAN, 'digitalSignature'),
    transCosKaNew: await org('cred-transcos-ka-new', 5, TRANS_COS, 'keyAgreement'),
    recoveryDs: await org('cred-recovery-ds', 1, RECOVERY, 'digitalSignature'),
    deviceKa: await issueDeviceCertificate({ issuer: hierarchy.deviceCa, entityId: DEVICE, keyUsage: 'keyAgreement', publicKey: seededSigner('cred-device-ka').publicKey, notBefore: NOT_BEFORE, random: seededRandom('cred-device-ka') }),
  };
  const path = [hierarchy.organisationCa.certificate.der];

  const cases: CredentialCase[] = [];
  const problems: string[] = [];
  const ids = new Set<string>();
  function add(id: string, comment: string, clause: string, decoder: CredentialDecoder, data: Uint8Array, expect: { value: unknown } | { errorCode: string; offset?: number }): void {
    if (ids.has(id)) throw new Error(`duplicate credentials case ${id}`);
    ids.add(id);
    const r = outcome(() => (CREDENTIAL_DECODERS[decoder] as (b: Uint8Array) => unknown)(data));
    if ('value' in expect) {
      if (r.code !== undefined || JSON.stringify(jsonify(r.value)) !== JSON.stringify(jsonify(expect.value))) problems.push(`credentials ${id}: expected a decode, got ${r.code ?? 'other fields'}`);
    } else if (r.code !== expect.errorCode || (expect.offset !== undefined && r.offset !== expect.offset)) {
      problems.push(`credentials ${id}: expected ${expect.errorCode}${expect.offset !== undefined ? ` at ${expect.offset}` : ''}, got ${r.code ?? 'a decode'}${r.offset !== undefined ? ` at ${r.offset}` : ''}`);
    }
    cases.push({
      id,
      comment,
      clause,
      input: { decoder, data: toHex(data) },
      result: 'value' in expect ? 'valid' : 'invalid',
      ...('value' in expect ? { expected: jsonify(expect.value) } : { errorCode: expect.errorCode, ...(expect.offset !== undefined ? { offset: expect.offset } : {}) }),
    });
  }
  const sign = async (pre: Uint8Array, label: string): Promise<Uint8Array> => {
    const m = parseMessage(pre);
    const sig = await seededSigner(label).sign(signedBytes(m));
    return concatBytes(m.bytes.subarray(0, m.signedRange.end), Uint8Array.of(0x40), sig);
  };
  const expectedPayload = (o: UpdateSecurityCredentialsOptions): UpdateSecurityCredentialsPayload => decodeUpdateSecurityCredentials(parseMessage(buildUpdateSecurityCredentials(o)).payload);
  const cmd = (o: UpdateSecurityCredentialsOptions) => ({ mode: o.mode, messageCode: 0x0100 + o.mode, payload: expectedPayload(o) });

  // ---- CS02b commands, one per mode -------------------------------------------------------------
  const base = { recipient: DEVICE, certificationPath: path };
  const modes: [string, string, UpdateSecurityCredentialsOptions, string | undefined][] = [
    ['mode-2-supplier-by-supplier', "mode 2: the supplier replaces its DS, KA and prepayment KA cells, signed with its current DS key; [4] = 0, [5] = prepayment floor 0", {
      ...base, counter: 2000n, mode: 2, originator: SUPPLIER, authorisingCell: DS(2),
      replacements: [{ certificate: cert.supplierDsNew.der, cell: DS(2) }, { certificate: cert.supplierKaNew.der, cell: KA(2) }, { certificate: cert.supplierPrepayNew.der, cell: PREPAY }],
      authorisingFloor: 0n, authorisingUsageFloors: [{ usage: 0, floor: 0n }],
    }, 'cred-supplier-ds'],
    ['mode-3-network-operator', 'mode 3: the network operator replaces its KA cell', { ...base, counter: 2001n, mode: 3, originator: NETWORK, authorisingCell: DS(3), replacements: [{ certificate: cert.networkKaNew.der, cell: KA(3) }] }, undefined],
    ['mode-4-acb-by-acb', 'mode 4: the ACB replaces its KA cell; no authorising cell, no User signature', { ...base, counter: 2002n, mode: 4, originator: ACB, replacements: [{ certificate: cert.acbKaNew.der, cell: KA(4) }] }, undefined],
    ['mode-5-wan-provider', 'mode 5: the WAN provider (role 6) replaces its DS cell, future-dated: [1] omitted', { ...base, counter: 2003n, mode: 5, originator: WAN, authorisingCell: DS(6), replacements: [{ certificate: cert.wanDsNew.der, cell: DS(6) }], executionTime: new Date('2030-06-01T02:00:00Z') }, undefined],
    ['mode-6-transitional-cos', 'mode 6: the transitional change of supplier (role 5) replaces its KA cell', { ...base, counter: 2004n, mode: 6, originator: TRANS_COS, authorisingCell: DS(5), replacements: [{ certificate: cert.transCosKaNew.der, cell: KA(5) }] }, undefined],
    ['mode-7-supplier-by-transitional-cos', "mode 7: change of supplier, the transitional CoS installs the new supplier's cells; [6] resets the supplier's floor", {
      ...base, counter: 2005n, mode: 7, originator: TRANS_COS, authorisingCell: DS(5),
      replacements: [{ certificate: cert.supplierDsNew.der, cell: DS(2) }, { certificate: cert.supplierKaNew.der, cell: KA(2) }],
      otherRoleFloors: [{ role: 2, floor: 0n }],
    }, undefined],
    ['mode-8-recovery', "mode 8: the Recovery party replaces a compromised supplier's DS cell; [6] resets the floors of roles 2 to 5", {
      ...base, counter: 2006n, mode: 8, originator: RECOVERY, authorisingCell: DS(1),
      replacements: [{ certificate: cert.supplierDsNew.der, cell: DS(2) }],
      otherRoleFloors: [2, 3, 4, 5].map((role) => ({ role, floor: 0n })),
    }, 'cred-recovery-ds'],
  ];
  for (const [id, comment, o, signer] of modes) {
    const pre = buildUpdateSecurityCredentials(o);
    add(`${id}-pre-command`, `${comment} (unsigned pre-command)`, 'docs/domain.md §9 (CS02b), §10', 'command', pre, { value: cmd(o) });
    if (signer !== undefined) add(`${id}-signed`, `${comment} (signed, RFC 6979)`, 'docs/domain.md §9 (CS02b), §4 (User signature)', 'command', await sign(pre, signer), { value: cmd(o) });
  }
  const mode2 = modes[0]![2];

  // ---- CS02b commands broken: one rule each -------------------------------------------------------
  const raw = (messageCode: number, payload: UpdateSecurityCredentialsPayload, counter = 2000n, signature?: Uint8Array) =>
    buildGeneralSigning({
      cra: 'command', originatorCounter: counter, originator: SUPPLIER, recipient: DEVICE, messageCode, payload: encodeUpdateSecurityCredentialsPayload(payload),
      ...(signature ? { signatureField: 'present' as const, signature } : { signatureField: 'empty' as const }),
    });
  const p2 = expectedPayload(mode2);
  add('counter-not-header', '[3] = 2001 under header counter 2000', 'docs/domain.md §9 ([3] = the originator counter), §10', 'command', raw(0x0102, { ...p2, sequenceNumber: 2001n }), { errorCode: 'ERR_GBCS_CREDENTIALS_COUNTER_MISMATCH' });
  add('mode-not-message-code', 'payload mode 2 under message code 0x0103', 'docs/domain.md §9 (mode = message code − 0x100)', 'command', raw(0x0103, p2), { errorCode: 'ERR_GBCS_CREDENTIALS_MODE_MISMATCH' });
  for (const m of [0, 1, 9]) add(`mode-${m}-unsupported`, `message code 0x010${m}: mode ${m} has no public layout`, 'docs/domain.md §9, §10 (modes 0, 1, 9 refused)', 'command', raw(0x0100 + m, { ...p2, mode: m }), { errorCode: 'ERR_GBCS_CREDENTIALS_MODE_UNSUPPORTED' });
  add('mode-2-authorised-by-transitional-cos', 'mode 2 whose authorising cell is the transitional CoS DS cell', 'docs/domain.md §9 (2 supplier by supplier), §10', 'command', raw(0x0102, { ...p2, authorisingCell: DS(5) }), { errorCode: 'ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH' });
  add('mode-8-authorised-by-supplier', "mode 8 authorised by the supplier's DS cell (its own key must not authorise its replacement)", 'docs/domain.md §9 (8 by the Recovery party)', 'command', raw(0x0108, { ...p2, mode: 8, authorisingCell: DS(2) }), { errorCode: 'ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH' });
  add('mode-2-no-authorising-cell', 'mode 2 without the authorising cell [2]', 'docs/domain.md §9 ([2] omitted only for ACB by ACB)', 'command', raw(0x0102, (({ authorisingCell: _a, ...rest }) => rest)(p2)), { errorCode: 'ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH' });
  const p4 = expectedPayload(modes[2]![2]);
  add('mode-4-with-authorising-cell', 'mode 4 with an authorising cell', 'docs/domain.md §9 ([2] omitted for ACB-by-ACB)', 'command', raw(0x0104, { ...p4, sequenceNumber: 2000n, authorisingCell: DS(4) }), { errorCode: 'ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH' });
  add('mode-4-signed', 'mode 4 carrying a User signature', 'docs/domain.md §9 (4: no User signature)', 'command', raw(0x0104, { ...p4, sequenceNumber: 2000n }, 2000n, await seededSigner('cred-supplier-ds').sign(new Uint8Array(1))), { errorCode: 'ERR_GBCS_CREDENTIALS_SIGNER_MISMATCH' });
  const r0 = p2.replacements[0]!;
  add('cell-of-another-role', 'mode 2 replacing the network operator DS cell', 'docs/domain.md §10 (a mode replaces its own role’s cells)', 'command', raw(0x0102, { ...p2, replacements: [{ certificate: cert.networkKaNew.der, cell: KA(3) }] }), { errorCode: 'ERR_GBCS_CREDENTIALS_CELL_NOT_ALLOWED' });
  add('mode-8-root-cell', 'mode 8 replacing the root cell', 'docs/domain.md §9 (8: any cell except an abnormal root), §10', 'command', raw(0x0108, { ...p2, mode: 8, authorisingCell: DS(1), replacements: [{ certificate: r0.certificate, cell: { role: 0, keyUsage: 'keyCertSign', cellUsage: 'management' } }] }), { errorCode: 'ERR_GBCS_CREDENTIALS_CELL_NOT_ALLOWED' });
  add('same-cell-twice', 'the supplier DS cell targeted twice', 'docs/domain.md §10', 'command', raw(0x0102, { ...p2, replacements: [r0, r0] }), { errorCode: 'ERR_GBCS_CREDENTIALS_CELL_NOT_ALLOWED' });
  add('certificate-wrong-key-usage', 'a KA certificate for the supplier DS cell', 'docs/domain.md §10 (DS cell: digitalSignature)', 'command', raw(0x0102, { ...p2, replacements: [{ certificate: cert.supplierKaNew.der, cell: DS(2) }] }), { errorCode: 'ERR_GBCS_CREDENTIALS_CERTIFICATE_KEY_USAGE' });
  add('certificate-wrong-role', "the WAN provider's DS certificate for the supplier DS cell", 'docs/domain.md §10 (the role must be the cell’s)', 'command', raw(0x0102, { ...p2, replacements: [{ certificate: cert.wanDsNew.der, cell: DS(2) }] }), { errorCode: 'ERR_GBCS_CREDENTIALS_CERTIFICATE_ROLE' });

  // ---- CS02b payloads broken: strict DER ------------------------------------------------------------
  const small = encodeUpdateSecurityCredentialsPayload({ mode: 4, disapplyTimeChecks: true, sequenceNumber: 2002n, replacements: [], certificationPath: [] });
  add('payload-minimal', 'the smallest payload: mode, [1], [3], empty lists', 'docs/domain.md §9', 'payload', small, { value: decodeUpdateSecurityCredentials(small) });
  const put = (b: Uint8Array, at: number, v: number) => {
    const o = b.slice();
    o[at] = v;
    return o;
  };
  // small = 30 10 | 30 0A 02 01 04 81 01 01 83 02 07 D2 | 30 00 | 30 00
  add('payload-outer-tag', 'outer tag 31', 'X.690 (DER), docs/domain.md §10', 'payload', put(small, 0, 0x31), { errorCode: 'ERR_GBCS_MALFORMED', offset: 0 });
  add('payload-mode-enumerated', 'mode as ENUMERATED', 'docs/domain.md §9 (mode INTEGER)', 'payload', put(small, 4, 0x0a), { errorCode: 'ERR_GBCS_MALFORMED', offset: 4 });
  add('payload-time-checks-2', '[1] = 2 (only 0 apply, 1 disapply)', 'docs/domain.md §9 ([1])', 'payload', put(small, 9, 0x02), { errorCode: 'ERR_GBCS_MALFORMED', offset: 7 });
  add('payload-counter-wrong-tag', '[3] tagged [4]', 'docs/domain.md §9 ([3] required)', 'payload', put(small, 10, 0x84), { errorCode: 'ERR_GBCS_MALFORMED', offset: 10 });
  add('payload-non-minimal-length', 'the control length written 81 0A (commands are strict DER)', 'X.690 §10.1, docs/domain.md §10', 'payload', concatBytes(Uint8Array.of(0x30, (small[1] as number) + 1, 0x30, 0x81), small.subarray(3)), { errorCode: 'ERR_GBCS_MALFORMED', offset: 3 });
  add('payload-trailing', 'a byte after the SEQUENCE', 'docs/domain.md §10', 'payload', concatBytes(small, Uint8Array.of(0)), { errorCode: 'ERR_GBCS_MALFORMED', offset: small.length });
  add('payload-truncated', 'the last byte missing', 'docs/domain.md §10', 'payload', small.subarray(0, small.length - 1), { errorCode: 'ERR_GBCS_MALFORMED' });

  // ---- responses and alerts ------------------------------------------------------------------------
  const outcome2: CredentialsExecutionOutcome = {
    sequenceNumber: 2000n,
    mode: 2,
    floorChanges: [fromHex('3006020102020100')],
    results: [
      { cell: DS(2), status: 0, oldEntityId: SUPPLIER as Eui64, oldKeyId: cert.supplierDs.subjectKeyId as string, newEntityId: SUPPLIER as Eui64, newKeyId: cert.supplierDsNew.subjectKeyId as string },
      { cell: KA(2), status: 5, oldEntityId: SUPPLIER as Eui64, oldKeyId: '4000000000000001', newEntityId: SUPPLIER as Eui64, newKeyId: '4000000000000001' },
      { cell: PREPAY, status: 0, oldEntityId: SUPPLIER as Eui64, oldKeyId: '4000000000000002', newEntityId: SUPPLIER as Eui64, newKeyId: cert.supplierPrepayNew.subjectKeyId as string },
    ],
  };
  const resp = encodeUpdateSecurityCredentialsResponse({ outcome: outcome2 });
  const respDevice = encodeUpdateSecurityCredentialsResponse({ outcome: outcome2 }, { lengths: 'device' });
  add('response-immediate', 'the response to the mode 2 command: DS replaced, KA failed (bad certificate, old ids kept), prepayment replaced', 'docs/domain.md §9 (response)', 'response', resp, { value: { outcome: outcome2 } });
  add('response-device-lengths', 'the same with every SEQUENCE length as 82 hh ll, as devices write it', 'docs/domain.md §9 (non-minimal long form accepted in responses)', 'response', respDevice, { value: { outcome: outcome2 } });
  add('response-future-dated', 'a future-dated command: SEQUENCE { NULL } now', 'docs/domain.md §9', 'response', fromHex('30020500'), { value: {} });
  add('response-future-dated-device-length', 'SEQUENCE { NULL } with the length 82 00 02', 'docs/domain.md §9', 'response', fromHex('308200020500'), { value: {} });
  add('response-no-null', 'the NULL missing', 'docs/domain.md §9', 'response', fromHex('3000'), { errorCode: 'ERR_GBCS_MALFORMED', offset: 2 });
  add('response-indefinite-length', 'indefinite length 80 (only non-minimal definite lengths are tolerated)', 'X.690 §10.1, docs/domain.md §10', 'response', fromHex('308005000000'), { errorCode: 'ERR_GBCS_MALFORMED', offset: 1 });
  add('response-status-integer', 'a cell status as INTEGER instead of ENUMERATED', 'docs/domain.md §9 (status ENUMERATED)', 'response', (() => {
    const h = toHex(resp);
    const i = h.indexOf('0A0100');
    return fromHex(h.slice(0, i) + '020100' + h.slice(i + 6));
  })(), { errorCode: 'ERR_GBCS_MALFORMED' });
  add('response-truncated', 'the device-length response without its last byte', 'docs/domain.md §9', 'response', respDevice.subarray(0, respDevice.length - 1), { errorCode: 'ERR_GBCS_MALFORMED' });
  add('response-trailing', 'a byte after the response', 'docs/domain.md §9', 'response', concatBytes(resp, Uint8Array.of(0)), { errorCode: 'ERR_GBCS_MALFORMED', offset: resp.length });
  const alertOk = { code: 0x8f66, executionTime: new Date('2030-06-01T02:00:00Z'), outcome: { ...outcome2, sequenceNumber: 2003n, mode: 5, floorChanges: [], results: [{ ...outcome2.results[0]!, cell: DS(6), oldEntityId: WAN as Eui64, newEntityId: WAN as Eui64, newKeyId: cert.wanDsNew.subjectKeyId as string }] } };
  const alertFail = { ...alertOk, code: 0x8f67, outcome: { ...alertOk.outcome, results: [{ ...alertOk.outcome.results[0]!, status: 30, newKeyId: alertOk.outcome.results[0]!.oldKeyId }] } };
  const alertDer = encodeCredentialsAlert(alertOk, { lengths: 'device' });
  add('alert-success', 'alert 0x00CB 0x8F66 for the future-dated mode 5 command (device lengths)', 'docs/domain.md §9 (alert 0x00CB)', 'alert', alertDer, { value: alertOk });
  add('alert-failure', 'alert 0x00CB 0x8F67: the device was busy, the cell kept its ids', 'docs/domain.md §9 (alert 0x00CB)', 'alert', encodeCredentialsAlert(alertFail), { value: alertFail });
  add('alert-other-code', 'alert code 0x8F68', 'docs/domain.md §9 (0x8F66 success, 0x8F67 failure)', 'alert', put(alertDer, 8, 0x68), { errorCode: 'ERR_GBCS_MALFORMED', offset: 4 });
  add('alert-utctime', 'execution time as UTCTime', 'docs/domain.md §9 (executionDateTime GeneralizedTime)', 'alert', put(alertDer, 9, 0x17), { errorCode: 'ERR_GBCS_MALFORMED', offset: 9 });
  add('alert-truncated', 'the alert without its last byte', 'docs/domain.md §9', 'alert', alertDer.subarray(0, alertDer.length - 1), { errorCode: 'ERR_GBCS_MALFORMED' });

  // ---- CS02c / CS02d / CS02e ------------------------------------------------------------------------
  const o = { originator: SUPPLIER, recipient: DEVICE };
  const cs02c = parseMessage(buildIssueCredentials({ ...o, counter: 3000n, keyUsage: 'keyAgreement' })).payload;
  add('cs02c-command-ka', 'CS02c: issue a KA key pair', 'docs/domain.md §9 (CS02c)', 'cs02c-command', cs02c, { value: { keyUsage: 'keyAgreement' } });
  add('cs02c-command-ds', 'CS02c: issue a DS key pair', 'docs/domain.md §9 (CS02c)', 'cs02c-command', parseMessage(buildIssueCredentials({ ...o, counter: 3001n, keyUsage: 'digitalSignature' })).payload, { value: { keyUsage: 'digitalSignature' } });
  add('cs02c-command-keycertsign', 'CS02c asking for keyCertSign', 'docs/domain.md §9 (CS02c: DS or KA)', 'cs02c-command', fromHex('300403020204'), { errorCode: 'ERR_GBCS_MALFORMED', offset: 2 });
  add('cs02c-command-non-minimal', 'CS02c with the length 81 04 (commands are strict DER)', 'X.690 §10.1', 'cs02c-command', fromHex('30810403020308'), { errorCode: 'ERR_GBCS_MALFORMED', offset: 1 });
  const csr = await createCsr({ signer: seededSigner('cred-device-new-ka'), keyUsage: 'keyAgreement' });
  add('cs02c-response-request', 'CS02c response: the device’s PKCS#10 request', 'docs/domain.md §9 (CS02c response)', 'cs02c-response', encodeIssueCredentialsResponse({ request: csr }), { value: { request: csr } });
  add('cs02c-response-error', 'CS02c response: key generation failed (2)', 'docs/domain.md §9', 'cs02c-response', encodeIssueCredentialsResponse({ error: 2 }), { value: { error: 2 } });
  add('cs02c-response-error-0', 'CS02c response INTEGER 0 (not an error code)', 'docs/domain.md §9 (1, 2, 3)', 'cs02c-response', fromHex('020100'), { errorCode: 'ERR_GBCS_MALFORMED', offset: 0 });
  const cs02d = parseMessage(buildUpdateDeviceCertificate({ ...o, counter: 3002n, certificate: cert.deviceKa })).payload;
  add('cs02d-command', 'CS02d: the bare device KA certificate', 'docs/domain.md §9 (CS02d)', 'cs02d-command', cs02d, { value: { certificate: cert.deviceKa.der } });
  add('cs02d-command-trailing', 'CS02d: a byte after the certificate', 'docs/domain.md §9', 'cs02d-command', concatBytes(cs02d, Uint8Array.of(0)), { errorCode: 'ERR_GBCS_MALFORMED', offset: cs02d.length });
  add('cs02d-response-success', 'CS02d response: success (0)', 'docs/domain.md §9 (CS02d response)', 'cs02d-response', encodeUpdateDeviceCertificateResponse(0), { value: 0 });
  add('cs02d-response-wrong-public-key', 'CS02d response: wrong public key (5)', 'docs/domain.md §9', 'cs02d-response', encodeUpdateDeviceCertificateResponse(5), { value: 5 });
  add('cs02d-response-8', 'CS02d response 8 (not a status)', 'docs/domain.md §9 (0 to 7)', 'cs02d-response', fromHex('020108'), { errorCode: 'ERR_GBCS_MALFORMED', offset: 0 });
  add('cs02d-response-enumerated', 'CS02d response as ENUMERATED', 'docs/domain.md §9 (INTEGER)', 'cs02d-response', fromHex('0A0100'), { errorCode: 'ERR_GBCS_MALFORMED', offset: 0 });
  add('cs02e-command', 'CS02e: provide the DS certificate', 'docs/domain.md §9 (CS02e)', 'cs02e-command', parseMessage(buildProvideDeviceCertificate({ ...o, counter: 3003n, keyUsage: 'digitalSignature' })).payload, { value: { keyUsage: 'digitalSignature' } });
  add('cs02e-command-extra', 'CS02e with an element after the key usage', 'docs/domain.md §9', 'cs02e-command', fromHex('3006030207800500'), { errorCode: 'ERR_GBCS_MALFORMED', offset: 6 });
  add('cs02e-response-certificate', 'CS02e response: the device certificate', 'docs/domain.md §9 (CS02e response)', 'cs02e-response', encodeProvideDeviceCertificateResponse({ certificate: cert.deviceKa.der }), { value: { certificate: cert.deviceKa.der } });
  add('cs02e-response-none-held', 'CS02e response: none held (2)', 'docs/domain.md §9', 'cs02e-response', encodeProvideDeviceCertificateResponse({ error: 2 }), { value: { error: 2 } });
  add('cs02e-response-4', 'CS02e response 4 (not an error code)', 'docs/domain.md §9 (1, 2, 3)', 'cs02e-response', fromHex('020104'), { errorCode: 'ERR_GBCS_MALFORMED', offset: 0 });

  const titles = { supplier: SUPPLIER, networkOperator: NETWORK, acb: ACB, wanProvider: WAN, transitionalChangeOfSupplier: TRANS_COS, recovery: RECOVERY, electricityMeter: DEVICE };
  return { cases, problems, titles };
}
