// Interoperability with an independent implementation of the profile: the JDK's own XML
// Signature (javax.xml.crypto.dsig), driven by test/java/DuisXmlSig.java. W3C XML Signature,
// Canonical XML 1.0, Exclusive XML Canonicalization 1.0; docs/domain.md §8.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateToPem } from '@smki/pki';
import { signRequest, signResponse, verifyDuis } from '../src/index.js';
import { compileJava, runJava } from './_java.js';
import { DCC, USER, fixture, request, response } from './_fixture.js';
import type { Fixture } from './_fixture.js';

let f: Fixture;
let classes: string;
let dir: string;
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

/** Pretty-print a compact document: white space between elements only, never inside a value. */
export function pretty(xml: string): string {
  return xml.replace(/>(<[^/])/g, '>\n  $1').replace(/(<\/[^>]+>)(<\/)/g, '$1\r\n$2');
}

beforeAll(async () => {
  classes = await compileJava();
  f = await fixture();
  dir = mkdtempSync(join(tmpdir(), 'duis-java-'));
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const pem = (p: { key: import('node:crypto').KeyObject }) => p.key.export({ type: 'pkcs8', format: 'pem' }) as string;

describe('this package signs, the JDK verifies', () => {
  it.each([
    ['a compact request', () => request()],
    ['a request whose root declares xmlns:ds', () => request('<sr:ArmSupply/>', { rootNs: ' xmlns:ds="http://www.w3.org/2000/09/xmldsig#"', service: '7.3' })],
    ['a pretty-printed request', () => pretty(request('<sr:EnableSupply/>', { service: '7.1' }))],
  ])('%s', async (_name, make) => {
    const signed = await signRequest(make(), f.user.signer, f.user.certificate);
    const cert = file('user.pem', certificateToPem(f.user.certificate));
    for (const form of [signed.xml, pretty(signed.xml)]) {
      const r = runJava(classes, ['verify', file('in.xml', form), cert]);
      expect(r.stdout.trim(), r.stderr).toBe('VALID');
    }
    const tampered = runJava(classes, ['verify', file('in.xml', signed.xml.replace('<sr:CommandVariant>4<', '<sr:CommandVariant>5<')), cert]);
    expect(tampered.stdout).toMatch(/^INVALID/);
  });

  it('a DCC response', async () => {
    const signed = await signResponse(response(), f.dcc.signer, f.dcc.certificate);
    const r = runJava(classes, ['verify', file('in.xml', signed.xml), file('dcc.pem', certificateToPem(f.dcc.certificate))]);
    expect(r.stdout.trim(), r.stderr).toBe('VALID');
  });
});

describe('the JDK signs, this package verifies', () => {
  it.each([
    ['compact', 'sign'],
    ['pretty-printed', 'sign-pretty'],
  ])('%s', async (_name, verb) => {
    const r = runJava(classes, [verb, file('in.xml', pretty(request())), file('user.key', pem(f.user)), file('user.pem', certificateToPem(f.user.certificate))]);
    expect(r.status, r.stderr).toBe(0);
    const v = await verifyDuis(r.stdout, f.trust, { expect: 'request' });
    expect(v.originator).toBe(USER);
    await expect(verifyDuis(r.stdout.replace('DisableSupply', 'EnableSupply').replace('DisableSupply', 'EnableSupply'), f.trust, { expect: 'request' })).rejects.toMatchObject({
      code: 'ERR_DUIS_DIGEST_MISMATCH',
    });
  });

  it('a DCC response signed by the JDK', async () => {
    const r = runJava(classes, ['sign', file('in.xml', response()), file('dcc.key', pem(f.dcc)), file('dcc.pem', certificateToPem(f.dcc.certificate))]);
    expect(r.status, r.stderr).toBe(0);
    const v = await verifyDuis(r.stdout, f.trust, { expect: 'response', dcc: DCC as never });
    expect(v.body).toBe('PreCommand');
  });
});
