// The signature profile element by element (W3C XML Signature §4; docs/domain.md §8): each
// deviation inside ds:Signature is refused with its code, and what the profile tolerates
// (white space in base64, namespace declarations) is accepted.
import { beforeAll, describe, expect, it } from 'vitest';
import { isSmkiError } from '@smki/core';
import { signRequest, verifyDuis } from '../src/index.js';
import { fixture, request } from './_fixture.js';
import type { Fixture } from './_fixture.js';

let f: Fixture;
let signed: string;
beforeAll(async () => {
  f = await fixture();
  signed = (await signRequest(request(), f.user.signer, f.user.certificate)).xml;
});

async function refusal(xml: string): Promise<{ code: string; message: string; detail?: string }> {
  try {
    await verifyDuis(xml, f.trust, { expect: 'request' });
  } catch (e) {
    if (isSmkiError(e)) return { code: e.code, message: e.message, ...((e.context as { detail?: string }).detail !== undefined ? { detail: (e.context as { detail: string }).detail } : {}) };
    throw e;
  }
  return { code: 'accepted', message: '' };
}
const code = async (xml: string) => (await refusal(xml)).code;
const swap = (xml: string, from: string, to: string) => {
  expect(xml).toContain(from);
  return xml.replace(from, to);
};
const sigValue = () => /<ds:SignatureValue>([^<]+)</.exec(signed)![1]!;
const digestValue = () => /<ds:DigestValue>([^<]+)</.exec(signed)![1]!;
const element = (name: string) => new RegExp(`<ds:${name}[ >][\\s\\S]*?</ds:${name}>`).exec(signed)![0];

describe('attributes the profile does not use', () => {
  it.each(['Signature', 'SignedInfo', 'Transforms', 'DigestValue', 'SignatureValue', 'KeyInfo', 'X509Data', 'X509IssuerSerial', 'X509IssuerName', 'X509SerialNumber'])('an Id on ds:%s', async (name) => {
    const open = name === 'Signature' ? '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"' : `<ds:${name}`;
    const r = await refusal(swap(signed, `${open}>`, `${open} Id="x">`));
    expect(r.code).toBe('ERR_DUIS_SIGNATURE_STRUCTURE');
    expect(r.message).toContain(`ds:${name} has an attribute Id`);
  });
  it('an attribute beside Algorithm, and content inside an algorithm element', async () => {
    expect(await code(swap(signed, '<ds:SignatureMethod Algorithm=', '<ds:SignatureMethod Id="x" Algorithm='))).toBe('ERR_DUIS_SIGNATURE_STRUCTURE');
    const c = element('DigestValue');
    expect(c).toBeTruthy();
    expect(await code(signed.replace(/<ds:DigestMethod Algorithm="([^"]+)"\/>/, '<ds:DigestMethod Algorithm="$1">x</ds:DigestMethod>'))).toBe('ERR_DUIS_ALGORITHM');
  });
  it('a namespace declaration is not an attribute: a default namespace on KeyInfo (unsigned, no effect on ds: names) verifies', async () => {
    expect(await code(swap(signed, '<ds:KeyInfo>', '<ds:KeyInfo xmlns="urn:example">'))).toBe('accepted');
    expect(await code(swap(signed, '<ds:KeyInfo>', '<ds:KeyInfo xmlns:x="urn:example">'))).toBe('accepted');
  });
});

describe('the elements, in their order', () => {
  it('ds:Signature holds SignedInfo, SignatureValue, KeyInfo, in that order, and nothing else', async () => {
    const si = element('SignedInfo');
    const sv = element('SignatureValue');
    const ki = element('KeyInfo');
    expect(await code(swap(signed, ki, ''))).toBe('ERR_DUIS_SIGNATURE_STRUCTURE');
    expect(await code(swap(signed, sv, ''))).toBe('ERR_DUIS_SIGNATURE_STRUCTURE');
    expect(await code(swap(signed, ki, `${ki}<ds:Object>x</ds:Object>`))).toBe('ERR_DUIS_SIGNATURE_STRUCTURE');
    expect(await code(swap(swap(signed, sv, ''), si, `${sv}${si}`))).toBe('ERR_DUIS_SIGNATURE_STRUCTURE');
    expect(await code(swap(swap(signed, ki, ''), si, `${ki}${si}`))).toBe('ERR_DUIS_SIGNATURE_STRUCTURE');
  });
  it('ds:SignedInfo holds CanonicalizationMethod, SignatureMethod, Reference, in that order', async () => {
    const cm = /<ds:CanonicalizationMethod[^>]*\/>/.exec(signed)![0];
    const sm = /<ds:SignatureMethod[^>]*\/>/.exec(signed)![0];
    const ref = element('Reference');
    expect(await code(swap(signed, `${cm}${sm}`, `${sm}${cm}`))).toBe('ERR_DUIS_SIGNATURE_STRUCTURE');
    expect(await code(swap(signed, cm, ''))).toBe('ERR_DUIS_SIGNATURE_STRUCTURE');
    expect(await code(swap(signed, ref, ''))).toBe('ERR_DUIS_SIGNATURE_STRUCTURE');
    expect(await code(swap(signed, ref, '<ds:Object/>'))).toBe('ERR_DUIS_SIGNATURE_STRUCTURE');
    expect(await code(swap(signed, ref, `${ref}<ds:Object/>`))).toBe('ERR_DUIS_SIGNATURE_STRUCTURE');
    expect(await code(swap(signed, ref, `${ref}${ref}`))).toBe('ERR_DUIS_REFERENCE_COUNT');
  });
  it('the algorithms, with the one found as the detail', async () => {
    const r = await refusal(swap(signed, 'xmldsig-more#ecdsa-sha256', 'xmldsig-more#ecdsa-sha384'));
    expect(r).toMatchObject({ code: 'ERR_DUIS_ALGORITHM', detail: 'http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384' });
    expect(await code(signed.replace(/<ds:CanonicalizationMethod Algorithm="[^"]+"\/>/, '<ds:CanonicalizationMethod/>'))).toBe('ERR_DUIS_ALGORITHM');
  });
  it('KeyInfo holds exactly an X509IssuerSerial with the issuer name, then the serial', async () => {
    const name = /<ds:X509IssuerName>[^<]*<\/ds:X509IssuerName>/.exec(signed)![0];
    const serial = /<ds:X509SerialNumber>[^<]*<\/ds:X509SerialNumber>/.exec(signed)![0];
    expect(await code(swap(signed, `${name}${serial}`, `${serial}${name}`))).toBe('ERR_DUIS_KEY_INFO');
    expect(await code(swap(signed, name, ''))).toBe('ERR_DUIS_KEY_INFO');
    expect(await code(swap(signed, '</ds:X509Data>', '<ds:X509SubjectName>CN=x</ds:X509SubjectName></ds:X509Data>'))).toBe('ERR_DUIS_KEY_INFO');
    expect(await code(swap(signed, '</ds:KeyInfo>', '<ds:KeyName>x</ds:KeyName></ds:KeyInfo>'))).toBe('ERR_DUIS_KEY_INFO');
  });
  it('the issuer name is not empty nor over 1024 characters; the serial is decimal', async () => {
    expect(await code(signed.replace(/<ds:X509IssuerName>[^<]*</, '<ds:X509IssuerName><'))).toBe('ERR_DUIS_KEY_INFO');
    expect(await code(signed.replace(/<ds:X509IssuerName>[^<]*</, `<ds:X509IssuerName>CN=${'x'.repeat(1022)}<`))).toBe('ERR_DUIS_KEY_INFO');
    expect(await code(signed.replace(/<ds:X509IssuerName>[^<]*</, `<ds:X509IssuerName>CN=${'x'.repeat(1021)}<`))).toBe('ERR_DUIS_CERTIFICATE_NOT_FOUND');
    for (const bad of ['0x1F', '01', '1 ', '+1', '']) {
      expect(await code(signed.replace(/<ds:X509SerialNumber>[^<]*</, `<ds:X509SerialNumber>${bad}<`)), bad).toBe('ERR_DUIS_KEY_INFO');
    }
    expect(await code(signed.replace(/<ds:X509SerialNumber>[^<]*</, '<ds:X509SerialNumber>-5<'))).toBe('ERR_DUIS_CERTIFICATE_NOT_FOUND');
  });
});

describe('base64 values', () => {
  it('white space anywhere is accepted', async () => {
    const v = sigValue();
    expect(await code(swap(signed, v, ` ${v.slice(0, 10)}\t${v.slice(10, 50)}\r\n${v.slice(50)} `))).toBe('accepted');
    const d = digestValue();
    expect(await code(swap(signed, d, `\n${d}\n`))).not.toBe('ERR_DUIS_SIGNATURE_STRUCTURE');
  });
  it('other characters, a length that is not a multiple of four, padding inside, or a non-canonical last character', async () => {
    const v = sigValue();
    for (const bad of [`${v.slice(0, -2)}*=`, v.slice(0, -1), `${v.slice(0, 4)}=${v.slice(5)}`, `-${v.slice(1)}`, `${v.slice(0, 40)}_${v.slice(41)}`]) {
      expect(await code(swap(signed, v, bad)), bad).toBe('ERR_DUIS_SIGNATURE_STRUCTURE');
    }
    // 64 bytes end in two padding characters; the last data character carries 4 unused bits.
    expect(v.endsWith('==')).toBe(true);
    const last = v.at(-3)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const nonCanonical = alphabet[alphabet.indexOf(last) ^ 1]!;
    const r = await refusal(swap(signed, v, `${v.slice(0, -3)}${nonCanonical}==`));
    expect(r.code).toBe('ERR_DUIS_SIGNATURE_STRUCTURE');
    expect(r.message).toContain('not canonical base64');
  });
  it('a DER signature value is refused and named', async () => {
    const der = Buffer.from([0x30, 0x44, 0x02, 0x20, ...Buffer.alloc(32, 1), 0x02, 0x20, ...Buffer.alloc(32, 2)]).toString('base64');
    const r = await refusal(swap(signed, sigValue(), der));
    expect(r.code).toBe('ERR_DUIS_SIGNATURE_STRUCTURE');
    expect(r.message).toContain('70 bytes, not 64 (a DER signature');
    const notDer = Buffer.alloc(70, 0x31).toString('base64');
    const n = await refusal(swap(signed, sigValue(), notDer));
    expect(n.message).not.toContain('DER');
    const digest = await refusal(swap(signed, digestValue(), Buffer.from([0x30, ...Buffer.alloc(31)]).toString('base64').slice(0, -4)));
    expect(digest.code).toBe('ERR_DUIS_SIGNATURE_STRUCTURE');
    expect(digest.message).not.toContain('DER');
  });
});
