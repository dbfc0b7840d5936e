// docs/domain.md §5 (Critical commands): the message-code catalogue, criticality as a property of
// (message code, originator role), and eligibility stated in DUIS roles but checked on the wire as
// (Remote Party Role, device fuel). docs/domain.md §2 for the Remote Party Role codes.
import { describe, expect, it } from 'vitest';
import { isSmkiError } from '@smki/core';
import {
  DUIS_ROLES,
  MESSAGE_CATALOGUE,
  classify,
  duisRoleFor,
  duisRoleOnWire,
  isCritical,
  isEligible,
  lookupMessageCode,
  type DeviceFuel,
  type DuisRole,
} from '../src/catalogue.js';

// ---- the expected table, written out from the text of docs/domain.md §5 --------------------------------
// One line per code: code, use case, DUIS service, device (E = ESME, G = GSME, * = any), roles.
// Where a domain-table row gives "IS / GS" the roles pair with the codes; where it gives "IS, GS" for a
// group of ESME and GSME codes, an ESME code keeps the electricity roles (IS, ED) and a GSME code
// the gas roles (GS, GT) of the row; a common (CS) code keeps the whole row.
const DOMAIN_TABLE = `
0050 ECS43  7.2    E IS        | 7.2 Disable Supply
0081 GCS32  7.2    G GS        | 7.2 Disable Supply
004F ECS42  7.1    E IS        | 7.1 Enable Supply
0051 ECS44  7.3    E IS        | 7.3 Arm Supply
0085 GCS39  7.3    G GS        | 7.3 Arm Supply
0012 CS06   11.3   * IS,GS     | 11.3 Activate Firmware
0062 ECS70  6.11   E IS
007F GCS28  6.11   G GS
0068 ECS81  6.25   E IS
007D GCS24  6.7    G GS
00FC GCS24a 6.7    G GS
000A CS02c  6.17   * IS,GS
000B CS02d  6.15.2 * IS,GS
000C CS02e  6.24.2 * IS,GS
0100 CS02b  6.15.1 * IS,GS,ED,GT
0101 CS02b  6.15.1 * IS,GS,ED,GT
0102 CS02b  6.15.1 * IS,GS,ED,GT
0103 CS02b  6.15.1 * IS,GS,ED,GT
0104 CS02b  6.15.1 * IS,GS,ED,GT
0105 CS02b  6.15.1 * IS,GS,ED,GT
0106 CS02b  6.15.1 * IS,GS,ED,GT
0107 CS02b  6.15.1 * IS,GS,ED,GT
0108 CS02b  6.15.1 * IS,GS,ED,GT
0109 CS02b  6.15.1 * IS,GS,ED,GT
0019 ECS01a 1.1    E IS
00A2 ECS01b 1.2    E IS
00B7 ECS01c 1.1    E IS
00C7 ECS01d 1.2    E IS
006B GCS01a 1.1    G GS
00A3 GCS01b 1.2    G GS
001A ECS02  1.6    E IS
001B ECS03  1.6    E IS
006C GCS02  1.6    G GS
006D GCS03  1.6    G GS
001C ECS04a 1.5    E IS
00B3 ECS04b 1.5    E IS
0086 GCS40a 1.5    G GS
00B4 GCS40b 1.5    G GS
00C0 GCS40c 1.5    G GS
00C2 GCS40d 1.5    G GS
001E ECS07  2.3    E IS
006E GCS04  2.3    G GS
001F ECS08  2.1    E IS
00DE ECS08a 2.1    E IS
006F GCS05  2.1    G GS
0020 ECS09  2.5    E IS
0070 GCS06  2.5    G GS
000D CS03A1 8.7.1  * IS,GS
00AB CS03A2 8.7.1  * IS,GS
00AF CS03C  8.7.1  * IS,GS
000F CS04AC 8.8.1  * IS,GS
`;

interface Row {
  code: number;
  hex: string;
  useCase: string;
  service: string;
  fullService?: string;
  device: 'electricity' | 'gas' | 'any';
  roles: DuisRole[];
}

const ROWS: Row[] = DOMAIN_TABLE.trim()
  .split('\n')
  .map((line) => {
    const [main, full] = line.split('|').map((s) => s.trim());
    const [hex, useCase, service, dev, roles] = (main as string).split(/\s+/) as [string, string, string, string, string];
    const device = dev === 'E' ? 'electricity' : dev === 'G' ? 'gas' : 'any';
    return {
      code: parseInt(hex, 16),
      hex,
      useCase,
      service,
      ...(full ? { fullService: full } : {}),
      device,
      roles: roles.split(',') as DuisRole[],
    };
  });

/** docs/domain.md §5: "five codes (000F, 00AB, 00AF, 0102, 0103) appear both User-signed and ACB-originated". */
const DUAL = [0x000f, 0x00ab, 0x00af, 0x0102, 0x0103];

/** docs/domain.md §2 Remote Party Role codes, plus values that are no role at all. */
const ROLES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 127, 135, 137];
const NOT_ROLES = [-1, 9, 126, 128, 255, 2.5, Number.NaN, Number.POSITIVE_INFINITY];
const FUELS: DeviceFuel[] = ['electricity', 'gas'];

/** docs/domain.md §5 mapping, written out independently: (role, fuel) → DUIS role. */
function specDuisRole(role: number, fuel: DeviceFuel): DuisRole | undefined {
  if (role === 2) return fuel === 'electricity' ? 'IS' : 'GS';
  if (role === 3) return fuel === 'electricity' ? 'ED' : 'GT';
  return undefined;
}

/** Codes the catalogue must not hold: docs/domain.md §5 gives them no row (top-up 0007, reads, alerts, …). */
const UNKNOWN_CODES = [0x0000, 0x0001, 0x0007, 0x000e, 0x0010, 0x0052, 0x0069, 0x0097, 0x010a, 0x1000, 0x8f12, 0xffff];
const NOT_CODES = [-1, 0x10000, 0x50 + 0.5, Number.NaN, Number.POSITIVE_INFINITY];

describe('catalogue contents (docs/domain.md §5 table)', () => {
  it('the expected table has 51 codes, all distinct', () => {
    expect(ROWS).toHaveLength(51);
    expect(new Set(ROWS.map((r) => r.code)).size).toBe(51);
  });

  it('holds exactly the codes docs/domain.md §5 names: none missing, none invented', () => {
    expect([...MESSAGE_CATALOGUE.keys()].sort((a, b) => a - b)).toEqual(ROWS.map((r) => r.code).sort((a, b) => a - b));
    expect(MESSAGE_CATALOGUE.size).toBe(51);
  });

  it.each(ROWS.map((r) => [r.hex, r] as const))('%s: use case, DUIS service, device type and eligible roles', (_hex, r) => {
    const e = lookupMessageCode(r.code);
    expect(e).toBeDefined();
    if (!e) return;
    expect(e.code).toBe(r.code);
    expect(e.useCase).toBe(r.useCase);
    expect(e.duisService.split(' ')[0]).toBe(r.service);
    if (r.fullService) expect(e.duisService).toBe(r.fullService);
    expect(e.deviceType).toBe(r.device);
    expect([...e.eligibleRoles].sort()).toEqual([...r.roles].sort());
    expect(e.critical).toBe(true);
    expect(e.acbOriginated).toBe(DUAL.includes(r.code));
    expect(e.name.length).toBeGreaterThan(0);
  });

  it('iterates in ascending code order, and entries agree with their keys', () => {
    const keys = [...MESSAGE_CATALOGUE.keys()];
    expect(keys).toEqual([...keys].sort((a, b) => a - b));
    for (const [k, v] of MESSAGE_CATALOGUE) expect(v.code).toBe(k);
    const seen: number[] = [];
    MESSAGE_CATALOGUE.forEach((v, k, m) => {
      expect(v.code).toBe(k);
      expect(m).toBe(MESSAGE_CATALOGUE);
      seen.push(k);
    });
    expect(seen).toEqual(keys);
    expect([...MESSAGE_CATALOGUE.values()].map((v) => v.code)).toEqual(keys);
    expect([...MESSAGE_CATALOGUE.entries()].map(([k]) => k)).toEqual(keys);
    expect(MESSAGE_CATALOGUE.has(0x0050)).toBe(true);
    expect(MESSAGE_CATALOGUE.has(0x0052)).toBe(false);
  });

  it('exactly the five dual codes are marked ACB-originated', () => {
    const acb = [...MESSAGE_CATALOGUE.values()].filter((e) => e.acbOriginated).map((e) => e.code);
    expect(acb.sort((a, b) => a - b)).toEqual([...DUAL].sort((a, b) => a - b));
  });
});

describe('the catalogue cannot be changed', () => {
  it('has no set, delete or clear, and the view itself is frozen', () => {
    const m = MESSAGE_CATALOGUE as unknown as Record<string, unknown>;
    expect(m.set).toBeUndefined();
    expect(m.delete).toBeUndefined();
    expect(m.clear).toBeUndefined();
    expect(Object.isFrozen(MESSAGE_CATALOGUE)).toBe(true);
    expect(() => {
      (m as { get: unknown }).get = () => undefined;
    }).toThrow(TypeError);
    expect(lookupMessageCode(0x0050)?.useCase).toBe('ECS43');
  });

  it('forEach hands out the read-only view, not a mutable Map', () => {
    MESSAGE_CATALOGUE.forEach((_v, _k, map) => {
      expect(map instanceof Map).toBe(false);
      expect((map as unknown as Record<string, unknown>).set).toBeUndefined();
    });
  });

  it('entries and their role lists are frozen: a critical code cannot be downgraded', () => {
    for (const e of MESSAGE_CATALOGUE.values()) {
      expect(Object.isFrozen(e)).toBe(true);
      expect(Object.isFrozen(e.eligibleRoles)).toBe(true);
    }
    const e = lookupMessageCode(0x0050) as unknown as { critical: boolean; eligibleRoles: string[] };
    expect(() => {
      e.critical = false;
    }).toThrow(TypeError);
    expect(() => e.eligibleRoles.push('GT')).toThrow(TypeError);
    expect(isCritical({ messageCode: 0x0050, originatorRole: 2 })).toBe(true);
    expect(Object.isFrozen(DUIS_ROLES)).toBe(true);
  });
});

describe('criticality depends on (message code, originator role) (docs/domain.md §5)', () => {
  it.each(DUAL.map((c) => [c.toString(16).padStart(4, '0')] as const))(
    '%s: critical from a supplier or network operator, not from the ACB',
    (hex) => {
      const messageCode = parseInt(hex, 16);
      expect(classify({ messageCode, originatorRole: 2 })).toBe('critical');
      expect(classify({ messageCode, originatorRole: 3 })).toBe('critical');
      expect(classify({ messageCode, originatorRole: 4 })).toBe('non-critical');
      expect(isCritical({ messageCode, originatorRole: 2 })).toBe(true);
      expect(isCritical({ messageCode, originatorRole: 3 })).toBe(true);
      expect(isCritical({ messageCode, originatorRole: 4 })).toBe(false);
    },
  );

  it('every catalogued code is critical from a User (roles 2 and 3)', () => {
    for (const r of ROWS) {
      for (const originatorRole of [2, 3]) {
        expect(classify({ messageCode: r.code, originatorRole }), r.hex).toBe('critical');
        expect(isCritical({ messageCode: r.code, originatorRole }), r.hex).toBe(true);
      }
    }
  });

  it('the ACB sending a code docs/domain.md does not say it originates is unknown, and isCritical fails closed', () => {
    const others = ROWS.filter((r) => !DUAL.includes(r.code) && r.code !== 0x0104);
    expect(others).toHaveLength(45);
    for (const r of others) {
      expect(classify({ messageCode: r.code, originatorRole: 4 }), r.hex).toBe('unknown');
      expect(isCritical({ messageCode: r.code, originatorRole: 4 }), r.hex).toBe(true);
    }
  });

  it('CS02b from the party its mode names: critical from recovery (8), transitional CoS (6, 7) and WAN provider (5); mode 4 from the ACB unsigned; every other pairing of a non-User role unknown', () => {
    const authorising: Record<number, number> = { 0x0105: 6, 0x0106: 5, 0x0107: 5, 0x0108: 1 };
    for (const [code, role] of Object.entries(authorising)) {
      expect(classify({ messageCode: Number(code), originatorRole: role }), code).toBe('critical');
      expect(isCritical({ messageCode: Number(code), originatorRole: role }), code).toBe(true);
    }
    expect(classify({ messageCode: 0x0104, originatorRole: 4 })).toBe('non-critical');
    expect(isCritical({ messageCode: 0x0104, originatorRole: 4 })).toBe(false);
    for (let code = 0x0100; code <= 0x0109; code++) {
      for (const role of [1, 5, 6, 7, 8, 127]) {
        if (authorising[code] === role) continue;
        expect(classify({ messageCode: code, originatorRole: role }), `${code.toString(16)} from ${role}`).toBe('unknown');
      }
    }
    // Modes without a public layout are unknown from anyone but a User role, whoever their party.
    expect(classify({ messageCode: 0x0109, originatorRole: 1 })).toBe('unknown');
    expect(classify({ messageCode: 0x0100, originatorRole: 4 })).toBe('unknown');
  });

  it('remote disconnect (0050, 0081) is never non-critical, whoever sends it', () => {
    for (const messageCode of [0x0050, 0x0081]) {
      for (const originatorRole of [...ROLES, ...NOT_ROLES]) {
        expect(classify({ messageCode, originatorRole })).not.toBe('non-critical');
        expect(isCritical({ messageCode, originatorRole })).toBe(true);
      }
    }
  });

  it('originators with other roles (0, 1, 5–8, 127, 135, 137) or no role are unknown, even for dual codes', () => {
    for (const originatorRole of [0, 1, 5, 6, 7, 8, 127, 135, 137, ...NOT_ROLES]) {
      for (const messageCode of [...DUAL, 0x0050, 0x0012]) {
        expect(classify({ messageCode, originatorRole }), `${messageCode}/${originatorRole}`).toBe('unknown');
        expect(isCritical({ messageCode, originatorRole })).toBe(true);
      }
    }
  });

  it('unknown message codes are classified unknown from every originator, and isCritical treats them as critical', () => {
    for (const messageCode of [...UNKNOWN_CODES, ...NOT_CODES]) {
      expect(lookupMessageCode(messageCode)).toBeUndefined();
      for (const originatorRole of [...ROLES, ...NOT_ROLES]) {
        expect(classify({ messageCode, originatorRole })).toBe('unknown');
        expect(isCritical({ messageCode, originatorRole })).toBe(true);
      }
    }
  });

  it('malformed queries are unknown (and so critical), never non-critical', () => {
    const bad = [null, undefined, 0x0102, 'x', {}, { messageCode: '0102', originatorRole: 4 }, { messageCode: 0x0102, originatorRole: '4' }];
    for (const q of bad) {
      expect(classify(q as never)).toBe('unknown');
      expect(isCritical(q as never)).toBe(true);
    }
  });
});

describe('eligibility on the wire: (Remote Party Role, device fuel) → DUIS role (docs/domain.md §5)', () => {
  it('remote disconnect 0050: supplier on electricity only; not on gas, not for the network operator or ACB', () => {
    expect(isEligible({ messageCode: 0x0050, originatorRole: 2, deviceFuel: 'electricity' })).toBe(true);
    expect(isEligible({ messageCode: 0x0050, originatorRole: 2, deviceFuel: 'gas' })).toBe(false);
    expect(isEligible({ messageCode: 0x0050, originatorRole: 3, deviceFuel: 'electricity' })).toBe(false);
    expect(isEligible({ messageCode: 0x0050, originatorRole: 3, deviceFuel: 'gas' })).toBe(false);
    expect(isEligible({ messageCode: 0x0050, originatorRole: 4, deviceFuel: 'electricity' })).toBe(false);
    expect(isEligible({ messageCode: 0x0050, originatorRole: 4, deviceFuel: 'gas' })).toBe(false);
  });

  it('remote disconnect 0081: supplier on gas only', () => {
    expect(isEligible({ messageCode: 0x0081, originatorRole: 2, deviceFuel: 'gas' })).toBe(true);
    expect(isEligible({ messageCode: 0x0081, originatorRole: 2, deviceFuel: 'electricity' })).toBe(false);
    expect(isEligible({ messageCode: 0x0081, originatorRole: 3, deviceFuel: 'gas' })).toBe(false);
    expect(isEligible({ messageCode: 0x0081, originatorRole: 3, deviceFuel: 'electricity' })).toBe(false);
    expect(isEligible({ messageCode: 0x0081, originatorRole: 4, deviceFuel: 'gas' })).toBe(false);
  });

  it('0100–0109 (CS02b) are eligible for IS, GS, ED and GT, and for no other role', () => {
    for (let messageCode = 0x0100; messageCode <= 0x0109; messageCode++) {
      for (const role of DUIS_ROLES) {
        const { remotePartyRole, fuel } = duisRoleOnWire(role);
        expect(isEligible({ messageCode, originatorRole: remotePartyRole, deviceFuel: fuel }), `${messageCode}/${role}`).toBe(true);
      }
      for (const originatorRole of [0, 1, 4, 5, 6, 7, 8, 127, 135, 137, ...NOT_ROLES]) {
        for (const deviceFuel of FUELS) expect(isEligible({ messageCode, originatorRole, deviceFuel })).toBe(false);
      }
    }
  });

  it('ESME codes sent to a gas meter, and GSME codes sent to an electricity meter, are never eligible', () => {
    for (const r of ROWS.filter((x) => x.device !== 'any')) {
      const wrong: DeviceFuel = r.device === 'electricity' ? 'gas' : 'electricity';
      for (const originatorRole of ROLES) {
        expect(isEligible({ messageCode: r.code, originatorRole, deviceFuel: wrong }), `${r.hex}/${originatorRole}`).toBe(false);
      }
    }
  });

  it('network operators are eligible for nothing but CS02b', () => {
    for (const r of ROWS) {
      for (const deviceFuel of FUELS) {
        expect(isEligible({ messageCode: r.code, originatorRole: 3, deviceFuel }), r.hex).toBe(r.useCase === 'CS02b');
      }
    }
  });

  it('unknown codes are eligible for nobody', () => {
    for (const messageCode of [...UNKNOWN_CODES, ...NOT_CODES]) {
      for (const originatorRole of [...ROLES, ...NOT_ROLES]) {
        for (const deviceFuel of FUELS) expect(isEligible({ messageCode, originatorRole, deviceFuel })).toBe(false);
      }
    }
  });

  it('an unknown fuel or a malformed query is not eligible', () => {
    for (const deviceFuel of ['water', 'Electricity', 'GAS', '', undefined, null, 1]) {
      expect(isEligible({ messageCode: 0x0012, originatorRole: 2, deviceFuel } as never)).toBe(false);
    }
    for (const q of [null, undefined, 'x', {}, { messageCode: 0x0050, originatorRole: '2', deviceFuel: 'electricity' }]) {
      expect(isEligible(q as never)).toBe(false);
    }
  });

  // The whole matrix, computed from the expected table and the role mapping written out above.
  const MATRIX = ROWS.flatMap((r) =>
    [...ROLES, ...NOT_ROLES].flatMap((originatorRole) =>
      FUELS.map((deviceFuel) => {
        const duis = specDuisRole(originatorRole, deviceFuel);
        const fits = r.device === 'any' || r.device === deviceFuel;
        return { r, originatorRole, deviceFuel, expected: fits && duis !== undefined && r.roles.includes(duis) };
      }),
    ),
  );

  it('every (code, role, fuel) matches the domain table; negative cases outnumber positive ones', () => {
    for (const { r, originatorRole, deviceFuel, expected } of MATRIX) {
      expect(isEligible({ messageCode: r.code, originatorRole, deviceFuel }), `${r.hex}/${originatorRole}/${deviceFuel}`).toBe(expected);
    }
    const positive = MATRIX.filter((m) => m.expected).length;
    expect(positive).toBeGreaterThan(0);
    expect(MATRIX.length - positive).toBeGreaterThan(positive);
  });
});

describe('DUIS role ↔ wire mapping (docs/domain.md §5)', () => {
  it('IS = 2 + electricity, GS = 2 + gas, ED = 3 + electricity, GT = 3 + gas', () => {
    expect(duisRoleOnWire('IS')).toEqual({ remotePartyRole: 2, fuel: 'electricity' });
    expect(duisRoleOnWire('GS')).toEqual({ remotePartyRole: 2, fuel: 'gas' });
    expect(duisRoleOnWire('ED')).toEqual({ remotePartyRole: 3, fuel: 'electricity' });
    expect(duisRoleOnWire('GT')).toEqual({ remotePartyRole: 3, fuel: 'gas' });
    expect(DUIS_ROLES).toEqual(['IS', 'GS', 'ED', 'GT']);
  });

  it('round-trips both ways', () => {
    for (const role of DUIS_ROLES) {
      const w = duisRoleOnWire(role);
      expect(duisRoleFor(w.remotePartyRole, w.fuel)).toBe(role);
    }
    for (const r of [2, 3]) {
      for (const fuel of FUELS) {
        const role = duisRoleFor(r, fuel);
        expect(role).toBeDefined();
        expect(duisRoleOnWire(role as DuisRole)).toEqual({ remotePartyRole: r, fuel });
      }
    }
  });

  it('the results are frozen', () => {
    const w = duisRoleOnWire('IS') as { remotePartyRole: number };
    expect(Object.isFrozen(w)).toBe(true);
    expect(() => {
      w.remotePartyRole = 3;
    }).toThrow(TypeError);
    expect(duisRoleOnWire('IS').remotePartyRole).toBe(2);
  });

  it('no other Remote Party Role has a DUIS role (the ACB included)', () => {
    for (const r of [0, 1, 4, 5, 6, 7, 8, 127, 135, 137, ...NOT_ROLES]) {
      for (const fuel of FUELS) expect(duisRoleFor(r, fuel)).toBeUndefined();
    }
  });

  it('an unknown fuel has no DUIS role', () => {
    for (const fuel of ['water', 'Gas', '', undefined, null]) {
      expect(duisRoleFor(2, fuel as never)).toBeUndefined();
      expect(duisRoleFor(3, fuel as never)).toBeUndefined();
    }
  });

  it.each(['XX', 'is', 'ACB', '', 'IS ', 2, null, undefined])('duisRoleOnWire(%j) throws ERR_INVALID_ARGUMENT', (bad) => {
    let caught: unknown;
    try {
      duisRoleOnWire(bad as never);
    } catch (e) {
      caught = e;
    }
    expect(isSmkiError(caught, 'ERR_INVALID_ARGUMENT')).toBe(true);
  });
});

describe('createCatalogue: codes docs/domain.md does not number are configuration (docs/domain.md §5, "keep it configurable")', () => {
  const read = { code: 0x0400, useCase: 'XR01', name: 'a read', duisService: '4.x', deviceType: 'any', eligibleRoles: ['IS', 'GS'], critical: false, acbOriginated: false } as const;

  it("adds a non-critical User code; the catalogue's own codes are unchanged", async () => {
    const { createCatalogue } = await import('../src/catalogue.js');
    const c = createCatalogue([read]);
    expect(c.classify({ messageCode: 0x0400, originatorRole: 2 })).toBe('non-critical');
    expect(c.isCritical({ messageCode: 0x0400, originatorRole: 2 })).toBe(false);
    expect(c.isEligible({ messageCode: 0x0400, originatorRole: 2, deviceFuel: 'gas' })).toBe(true);
    expect(c.isEligible({ messageCode: 0x0400, originatorRole: 3, deviceFuel: 'gas' })).toBe(false);
    expect(c.classify({ messageCode: 0x0050, originatorRole: 2 })).toBe('critical');
    expect(c.classify({ messageCode: 0x0401, originatorRole: 2 })).toBe('unknown');
  });

  it.each([
    ['a catalogue code redefined as non-critical', { ...read, code: 0x0050 }],
    ['a code out of range', { ...read, code: 0x10000 }],
    ['an unknown DUIS role', { ...read, eligibleRoles: ['XX'] }],
    ['an unknown device type', { ...read, deviceType: 'water' }],
    ['critical not a boolean', { ...read, critical: 'no' }],
  ])('refuses %s', async (_name, entry) => {
    const { createCatalogue } = await import('../src/catalogue.js');
    expect(() => createCatalogue([entry as never])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });

  it('refuses the same code twice', async () => {
    const { createCatalogue } = await import('../src/catalogue.js');
    expect(() => createCatalogue([read, read])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });
});
