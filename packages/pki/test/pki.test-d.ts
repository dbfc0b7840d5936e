// docs/domain.md §2, docs/conventions.md (types that carry security meaning): what the compiler refuses.
// These run in vitest's typecheck mode; a @ts-expect-error that stops erroring fails the test.
import { describe, expectTypeOf, test } from 'vitest';
import type { Finding } from '@smki/core';
import {
  issueDeviceCertificate,
  issueOrganisationCertificate,
  lintCertificate,
  validatePath,
  type CertificateAuthority,
  type IssueOrganisationOptions,
  type PathValidationResult,
  type SmkiCertificate,
} from '@smki/pki';

declare const ca: CertificateAuthority;
declare const cert: SmkiCertificate;

describe('issuance: the profile decides, the types agree', () => {
  test('an end-entity certificate has exactly one of the two key usages', () => {
    expectTypeOf<IssueOrganisationOptions['keyUsage']>().toEqualTypeOf<'digitalSignature' | 'keyAgreement'>();
    // @ts-expect-error a CA key usage cannot be asked for on an organisation certificate
    void issueOrganisationCertificate({ issuer: ca, role: 2, entityId: '90B3D51F30010000', keyUsage: 'keyCertSign', publicKey: new Uint8Array(65) });
    // @ts-expect-error nor two of them
    void issueDeviceCertificate({ issuer: ca, entityId: '00DB1234567890A0', keyUsage: ['digitalSignature', 'keyAgreement'], publicKey: new Uint8Array(65) });
  });

  test('a CA is its certificate and a signer, not a raw private key', () => {
    expectTypeOf<CertificateAuthority['signer']['sign']>().returns.toEqualTypeOf<Promise<Uint8Array>>();
    // @ts-expect-error a bare certificate cannot issue
    void issueOrganisationCertificate({ issuer: cert, role: 2, entityId: '90B3D51F30010000', keyUsage: 'digitalSignature', publicKey: new Uint8Array(65) });
  });
});

describe('parsed views and results are read-only', () => {
  test('a parsed certificate cannot be edited through its type', () => {
    // @ts-expect-error kind is readonly
    cert.kind = 'root';
    // @ts-expect-error keyUsage is a readonly array
    cert.keyUsage.push('keyCertSign');
    // @ts-expect-error policies is a readonly array
    cert.policies.push('1.2.3');
  });

  test('lint findings and path results are read-only', () => {
    expectTypeOf(lintCertificate).returns.toEqualTypeOf<readonly Finding[]>();
    const r = validatePath(cert, { anchors: [cert] });
    expectTypeOf(r).toEqualTypeOf<PathValidationResult>();
    // @ts-expect-error valid is readonly: nothing downstream can flip a verdict
    r.valid = true;
  });
});
