// A small SMKI test hierarchy for the DUIS tests: a User's XML-signing certificate (role 135),
// the DCC's (role 137), the organisation CA's CRL and the root's ARL. docs/domain.md §2, §8.
import { generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { createKeySigner, isSmkiError, publicKeyToRaw } from '@smki/core';
import type { Signer } from '@smki/core';
import { createHierarchy, issueCrl, issueOrganisationCertificate } from '@smki/pki';
import type { SmkiCertificate, SmkiCrl, SmkiHierarchy } from '@smki/pki';
import { DuisTrust, signRequest } from '../src/index.js';

export const USER = '90B3D51F30010000';
export const DEVICE = '00DB1234567890A0';
export const DCC = '90B3D51F30000002';
export const REQUEST_ID = '90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:1700000000000';

export interface Party {
  readonly key: KeyObject;
  readonly signer: Signer;
  readonly certificate: SmkiCertificate;
}

export interface Fixture {
  readonly hierarchy: SmkiHierarchy;
  readonly user: Party;
  readonly dcc: Party;
  readonly crls: readonly SmkiCrl[];
  readonly trust: DuisTrust;
  /** Issue one more organisation certificate. */
  party(role: number, entityId: string, keyUsage?: 'digitalSignature' | 'keyAgreement'): Promise<Party>;
}

export async function fixture(): Promise<Fixture> {
  const hierarchy = await createHierarchy();
  const party = async (role: number, entityId: string, keyUsage: 'digitalSignature' | 'keyAgreement' = 'digitalSignature'): Promise<Party> => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const certificate = await issueOrganisationCertificate({ issuer: hierarchy.organisationCa, role, entityId, keyUsage, publicKey: publicKeyToRaw(publicKey) });
    return { key: privateKey, signer: createKeySigner(privateKey), certificate };
  };
  const user = await party(135, USER);
  const dcc = await party(137, DCC);
  const crls = [await issueCrl({ issuer: hierarchy.organisationCa, crlNumber: 1n, kind: 'crl' }), await issueCrl({ issuer: hierarchy.root, crlNumber: 1n, kind: 'arl' })];
  const trust = new DuisTrust({
    certificates: [hierarchy.root.certificate, hierarchy.organisationCa.certificate, user.certificate, dcc.certificate],
    crls,
  });
  return { hierarchy, user, dcc, crls, trust, party };
}

/** A DUIS Request for a service, compact. */
export function request(body = '<sr:DisableSupply/>', options: { requestId?: string; service?: string; rootNs?: string } = {}): string {
  const service = options.service ?? '7.2';
  return (
    `<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway"${options.rootNs ?? ''} schemaVersion="5.4">` +
    `<sr:Header><sr:RequestID>${options.requestId ?? REQUEST_ID}</sr:RequestID><sr:CommandVariant>4</sr:CommandVariant>` +
    `<sr:ServiceReference>${service}</sr:ServiceReference><sr:ServiceReferenceVariant>${service}</sr:ServiceReferenceVariant></sr:Header>` +
    `<sr:Body>${body}</sr:Body></sr:Request>`
  );
}

/** A DUIS Response (the DCC's) with the given body, compact. */
export function response(body = '<sr:PreCommand><sr:GBCSVersion>3.2</sr:GBCSVersion><sr:GBCSPayload>3wk=</sr:GBCSPayload></sr:PreCommand>', options: { requestId?: string; rootNs?: string } = {}): string {
  return request(body, options).replace('<sr:Request ', '<sr:Response ').replace('</sr:Request>', '</sr:Response>');
}

/** The code a promise is refused with (an `SmkiError`'s), or `accepted`; anything else is rethrown. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isSmkiError(e)) return e.code;
    throw e;
  }
  return 'accepted';
}

/** A fixture and a compact 7.2 request signed by its User, made once per test file. */
export async function signedFixture(): Promise<{ f: Fixture; signed: string }> {
  const f = await fixture();
  return { f, signed: (await signRequest(request(), f.user.signer, f.user.certificate)).xml };
}
