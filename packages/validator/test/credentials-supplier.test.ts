// CS02b modes 7 and 8 (docs/domain.md §9, §10; docs/validator.md, CS02b): the party that signs is
// not the supplier (the transitional change-of-supplier party, the Recovery party), so a
// replacement that goes into a supplier cell must be a certificate of the supplier the registry
// names for the device; another organisation's certificate, or a device with no supplier in the
// registry, is refused with ERR_COMMAND_CREDENTIALS_CERTIFICATE_ENTITY and changes nothing.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Eui64 } from '@smki/core';
import type { DeviceRecord } from '@smki/store';
import type { Decision, Validator } from '../src/index.js';
import { COS, DS, KA, RECOVERY, cs02bFixture, type Cs02bFixture, type Cs02bOptions } from './_cs02b.js';
import { OTHER_SUPPLIER, SUPPLIER, memoryStores, openValidator, type Stores } from './_world.js';

let f: Cs02bFixture;
beforeAll(async () => {
  f = await cs02bFixture();
});

async function fresh(edit: (r: DeviceRecord) => DeviceRecord = (r) => r): Promise<{ v: Validator; stores: Stores }> {
  const stores = await memoryStores(f.world);
  await stores.registry.put([edit(f.record())]);
  const v = await openValidator(f.world, stores, { trust: { certificates: f.certificates, crls: f.world.crls } });
  return { v, stores };
}

const why = (d: Decision): string => (d.outcome === 'rejected' ? `${d.code}: ${d.message}` : d.outcome);

function expectEntityRefusal(d: Decision, message: RegExp): void {
  expect(d.outcome, why(d)).toBe('rejected');
  if (d.outcome !== 'rejected') return;
  expect([d.code, d.step]).toEqual(['ERR_COMMAND_CREDENTIALS_CERTIFICATE_ENTITY', 'credentials']);
  expect(d.message).toMatch(message);
}

const withoutSupplier = (r: DeviceRecord): DeviceRecord => {
  const { supplier: _s, ...rest } = r;
  return rest;
};
const supplierIs = (supplier: Eui64) => (r: DeviceRecord): DeviceRecord => ({ ...r, supplier });

describe('mode 8 (recovery): a supplier cell takes only the registry\'s supplier\'s certificate', () => {
  const mode8 = (replacements: Cs02bOptions['replacements']) =>
    f.cs02b({ mode: 8, originator: RECOVERY, signer: f.recovery, ...(replacements ? { replacements } : {}) });

  it('accepts the supplier\'s own new DS and KA certificates', async () => {
    const { v, stores } = await fresh();
    const command = await mode8(undefined);
    const d = await v.validate(command, { sender: RECOVERY });
    expect(d.outcome, why(d)).toBe('accepted');
    // And the device's answer moves both supplier cells.
    const r = await v.recordCredentialsResponse(f.response(command), command);
    expect(r.cells.map((c) => c.moved)).toEqual([true, true]);
    expect((await stores.registry.device(f.world.meters[0]!.eui))?.cells.find((c) => c.role === 2 && c.keyUsage === 'digitalSignature')?.ski).toBe(f.newDs.certificate.subjectKeyId);
    await v.close();
  });

  it('refuses another organisation\'s certificate in the supplier DS cell, even next to a right one; no state moves', async () => {
    const { v, stores } = await fresh();
    for (const replacements of [[{ certificate: f.otherDs.certificate, cell: DS }], [{ certificate: f.newKa.certificate, cell: KA }, { certificate: f.thirdDs.certificate, cell: DS }]]) {
      const command = await mode8(replacements);
      expectEntityRefusal(await v.validate(command, { sender: RECOVERY }), /supplier cell .* not the device's supplier/);
      expect(await stores.store.lastCounter(RECOVERY, f.world.meters[0]!.eui)).toBeUndefined();
    }
    await v.close();
  });

  it('refuses a supplier-cell replacement for a device whose registry record names no supplier (fail closed)', async () => {
    const { v } = await fresh(withoutSupplier);
    expectEntityRefusal(await v.validate(await mode8(undefined), { sender: RECOVERY }), /names no supplier/);
    await v.close();
  });

  it('a mode 8 that replaces no supplier cell is not held to it (the network operator\'s cell; no supplier in the registry)', async () => {
    const { v } = await fresh(withoutSupplier);
    const d = await v.validate(await mode8([{ certificate: f.world.networkOperator.certificate, cell: { role: 3, keyUsage: 'digitalSignature' } }]), { sender: RECOVERY });
    expect(d.outcome, why(d)).toBe('accepted');
    await v.close();
  });
});

describe('mode 7 (transitional change of supplier): the registry names the gaining supplier', () => {
  const mode7 = (certificate = f.otherDs.certificate) => f.cs02b({ mode: 7, originator: COS, signer: f.cos, replacements: [{ certificate, cell: DS }] });

  it('accepts the gaining supplier\'s certificate once the registry names it as the device\'s supplier', async () => {
    const { v } = await fresh(supplierIs(OTHER_SUPPLIER));
    const d = await v.validate(await mode7(), { sender: COS });
    expect(d.outcome, why(d)).toBe('accepted');
    expect(d.outcome === 'accepted' && d.role).toBe(5);
    await v.close();
  });

  it('refuses the gaining supplier\'s certificate while the registry still names the losing supplier', async () => {
    const { v } = await fresh(supplierIs(SUPPLIER));
    expectEntityRefusal(await v.validate(await mode7(), { sender: COS }), /not the device's supplier 90B3D51F30010000/);
    await v.close();
  });

  it('refuses a third organisation\'s certificate, and any when the registry names no supplier', async () => {
    const { v } = await fresh(supplierIs(OTHER_SUPPLIER));
    expectEntityRefusal(await v.validate(await mode7(f.thirdDs.certificate), { sender: COS }), /not the device's supplier/);
    await v.close();
    const { v: v2 } = await fresh(withoutSupplier);
    expectEntityRefusal(await v2.validate(await mode7(), { sender: COS }), /names no supplier/);
    await v2.close();
  });
});
