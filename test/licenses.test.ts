// No GPL package may be a dependency, not even a dev one (the DCC's reference tools are
// GPL: facts may be learnt from public material, code never copied or linked).
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';

it('no installed dependency (production or dev, direct or transitive) is under a GPL-family licence', () => {
  const out = execFileSync('pnpm', ['licenses', 'list', '--json'], { cwd: join(import.meta.dirname, '..'), encoding: 'utf8', maxBuffer: 64 << 20 });
  const byLicence = JSON.parse(out) as Record<string, { name: string; versions: string[] }[]>;
  const packages = Object.values(byLicence).flat().length;
  expect(packages).toBeGreaterThan(50); // the list is real, not empty
  const gpl = Object.entries(byLicence)
    .filter(([licence]) => /\b(A|L)?GPL\b|GNU/i.test(licence) || /^unknown$/i.test(licence))
    .flatMap(([licence, pkgs]) => pkgs.map((p) => `${p.name} (${licence})`));
  expect(gpl).toEqual([]);
}, 60_000);
