// What verifyDuis and claimRequestId accept as arguments (fail closed on anything else), the
// validity boundaries of the signer's certificate (RFC 5280 §4.1.2.5: both ends inclusive), and
// the fields a verified document carries (docs/domain.md §8).
import { beforeAll, describe, expect, it } from 'vitest';
import { isSmkiError } from '@smki/core';
import { MemoryStateStore } from '@smki/store';
import { DuisTrust, claimRequestId, signRequest, signResponse, verifyDuis } from '../src/index.js';
import { USER, fixture, request, response, codeOf, signedFixture } from './_fixture.js';
import type { Fixture } from './_fixture.js';

let f: Fixture;
let signed: string;
beforeAll(async () => {
  ({ f, signed } = await signedFixture());
});
const code = codeOf;


describe('verifyDuis arguments', () => {
  it('options: an object with expect request or response', async () => {
    for (const bad of [null, undefined, 'request', {}, { expect: 'both' }]) {
      expect(await code(verifyDuis(signed, f.trust, bad as never)), String(bad)).toBe('ERR_INVALID_ARGUMENT');
    }
  });
  it('trust: a DuisTrust', async () => {
    for (const bad of [null, undefined, {}, 'trust', { find: 1 }]) {
      expect(await code(verifyDuis(signed, bad as never, { expect: 'request' })), String(bad)).toBe('ERR_INVALID_ARGUMENT');
    }
  });
  it('now: a valid Date', async () => {
    for (const bad of [new Date(Number.NaN), Date.now(), '2026-12-07']) {
      expect(await code(verifyDuis(signed, f.trust, { expect: 'request', now: bad as never })), String(bad)).toBe('ERR_INVALID_ARGUMENT');
    }
  });
  it('maxBytes: a positive integer', async () => {
    for (const bad of [0, -1, 1.5, Number.NaN, '100']) {
      expect(await code(verifyDuis(signed, f.trust, { expect: 'request', maxBytes: bad as never })), String(bad)).toBe('ERR_INVALID_ARGUMENT');
    }
    expect(await code(verifyDuis(signed, f.trust, { expect: 'request', maxBytes: 1 }))).toBe('ERR_DUIS_TOO_LARGE');
  });
  it('the document: a string or bytes', async () => {
    for (const bad of [null, 42, { xml: signed }]) expect(await code(verifyDuis(bad as never, f.trust, { expect: 'request' })), String(bad)).toBe('ERR_INVALID_ARGUMENT');
  });
  it('replay windows: non-negative integers, checked before anything is claimed', async () => {
    const store = new MemoryStateStore();
    for (const [maxAgeMs, maxFutureMs] of [[-1, 0], [0, -1], [1.5, 0], [0, Number.POSITIVE_INFINITY]] as const) {
      expect(await code(verifyDuis(signed, f.trust, { expect: 'request', replay: { store, maxAgeMs, maxFutureMs } })), `${maxAgeMs} ${maxFutureMs}`).toBe('ERR_INVALID_ARGUMENT');
    }
    expect(await store.lastCounter(f.user.certificate.entityId!, '00DB1234567890A0' as never)).toBeUndefined();
    // Zero is a window: a counter of exactly now is fresh.
    const now = await signRequest(request('<sr:DisableSupply/>', { requestId: `90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:${Date.now()}` }), f.user.signer, f.user.certificate);
    const at = new Date(Number(now.requestId.counter));
    expect(await code(verifyDuis(now.xml, f.trust, { expect: 'request', now: at, replay: { store, maxAgeMs: 0, maxFutureMs: 0 } }))).toBe('accepted');
  });
  it('a refusal carries its detail, cut to 200 characters', async () => {
    try {
      await verifyDuis(signed.replace(/<ds:X509SerialNumber>[^<]*</, `<ds:X509SerialNumber>${'9'.repeat(300)}<`), f.trust, { expect: 'request' });
      expect.unreachable();
    } catch (e) {
      expect(isSmkiError(e, 'ERR_DUIS_KEY_INFO')).toBe(true);
      expect((e as { context: { detail: string } }).context.detail).toBe('9'.repeat(200));
    }
    try {
      await verifyDuis(signed.replace('</sr:Body>', '</sr:Body><sr:Body/>'), f.trust, { expect: 'request' });
      expect.unreachable();
    } catch (e) {
      expect(isSmkiError(e, 'ERR_DUIS_STRUCTURE')).toBe(true);
      expect((e as { context: object }).context).toEqual({});
    }
  });
});

describe('claimRequestId arguments', () => {
  it('refuses what it cannot claim, and claims nothing', async () => {
    const store = new MemoryStateStore();
    const v = await verifyDuis(signed, f.trust, { expect: 'request' });
    expect(await code(claimRequestId(null as never, v))).toBe('ERR_INVALID_ARGUMENT');
    expect(await code(claimRequestId({ store: {} } as never, v))).toBe('ERR_INVALID_ARGUMENT');
    expect(await code(claimRequestId({ store }, null as never))).toBe('ERR_DUIS_DOCUMENT_KIND');
    expect(await code(claimRequestId({ store }, { ...v, kind: 'response' }))).toBe('ERR_DUIS_DOCUMENT_KIND');
    expect(await code(claimRequestId({ store }, v, new Date(Number.NaN)))).toBe('ERR_INVALID_ARGUMENT');
    expect(await code(claimRequestId({ store }, v, 'now' as never))).toBe('ERR_INVALID_ARGUMENT');
    expect(await code(claimRequestId({ store }, { ...v, counter: -1n }))).toBe('ERR_INVALID_ARGUMENT');
    expect(await code(claimRequestId({ store }, { ...v, counter: 5 as never }))).toBe('ERR_INVALID_ARGUMENT');
    expect(await store.lastCounter(v.originator, v.target)).toBeUndefined();
    // A counter of 0 is a counter (far in the past here, so stale).
    expect(await code(claimRequestId({ store }, { ...v, counter: 0n }))).toBe('ERR_DUIS_STALE');
  });
});

describe('the signer certificate s validity, both ends included', () => {
  it('at notBefore and at notAfter it verifies; a millisecond outside it does not', async () => {
    const { notBefore, notAfter } = f.user.certificate;
    expect(await code(verifyDuis(signed, f.trust, { expect: 'request', now: notBefore }))).toBe('accepted');
    expect(await code(verifyDuis(signed, f.trust, { expect: 'request', now: new Date(notBefore.getTime() - 1) }))).toBe('ERR_DUIS_CERTIFICATE_EXPIRED');
    const late = new DuisTrust({ certificates: [f.hierarchy.root.certificate, f.hierarchy.organisationCa.certificate, f.user.certificate], crls: f.crls, crlGraceSeconds: 10 ** 10 });
    const atEnd = await code(verifyDuis(signed, late, { expect: 'request', now: notAfter }));
    expect(atEnd).not.toBe('ERR_DUIS_CERTIFICATE_EXPIRED');
    expect(await code(verifyDuis(signed, late, { expect: 'request', now: new Date(notAfter.getTime() + 1) }))).toBe('ERR_DUIS_CERTIFICATE_EXPIRED');
  });
  it('a role 135 certificate for key agreement is not an XML-signing one', async () => {
    const ka = await f.party(135, USER, 'keyAgreement');
    const trust = new DuisTrust({ certificates: [f.hierarchy.root.certificate, f.hierarchy.organisationCa.certificate, ka.certificate], crls: f.crls });
    const x = signed.replace(/<ds:X509SerialNumber>[^<]*</, `<ds:X509SerialNumber>${BigInt(`0x${ka.certificate.serialNumber}`).toString(10)}<`);
    expect(await code(verifyDuis(x, trust, { expect: 'request' }))).toBe('ERR_DUIS_SIGNER_ROLE');
    const dccKa = await f.party(137, '90B3D51F30000002', 'keyAgreement');
    const r = (await signResponse(response(), f.dcc.signer, f.dcc.certificate)).xml;
    const trust2 = new DuisTrust({ certificates: [f.hierarchy.root.certificate, f.hierarchy.organisationCa.certificate, dccKa.certificate], crls: f.crls });
    const y = r.replace(/<ds:X509SerialNumber>[^<]*</, `<ds:X509SerialNumber>${BigInt(`0x${dccKa.certificate.serialNumber}`).toString(10)}<`);
    expect(await code(verifyDuis(y, trust2, { expect: 'response' }))).toBe('ERR_DUIS_SIGNER_ROLE');
  });
});

describe('the fields of a verified document', () => {
  it('header fields that are absent are absent, not undefined; no warning for a profile certificate', async () => {
    const bare =
      '<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway" schemaVersion="5.4"><sr:Header>' +
      '<sr:RequestID>90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:7</sr:RequestID></sr:Header><sr:Body/></sr:Request>';
    const v = await verifyDuis((await signRequest(bare, f.user.signer, f.user.certificate)).xml, f.trust, { expect: 'request' });
    expect(Object.keys(v)).not.toContain('serviceReference');
    expect(Object.keys(v)).not.toContain('serviceReferenceVariant');
    expect(Object.keys(v)).not.toContain('commandVariant');
    expect(v.body).toBe('');
    expect(v.warnings).toEqual([]);
    const dccResponse = await verifyDuis((await signResponse(response(), f.dcc.signer, f.dcc.certificate)).xml, f.trust, { expect: 'response' });
    expect(dccResponse.warnings).toEqual([]);
    const full = await verifyDuis(signed, f.trust, { expect: 'request' });
    expect([full.serviceReference, full.serviceReferenceVariant, full.commandVariant]).toEqual(['7.2', '7.2', '4']);
    expect(full.warnings).toEqual([]);
  });
});
