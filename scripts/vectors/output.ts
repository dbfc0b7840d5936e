import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Write each vector file as stable JSON (two-space indent, final newline), or with `check` compare
 * instead and return how many differ. Shared by every vector generator.
 */
export function writeOrCheck(outDir: string, files: Record<string, unknown>, check: boolean, root: string): number {
  mkdirSync(outDir, { recursive: true });
  let differ = 0;
  for (const [name, content] of Object.entries(files)) {
    const text = `${JSON.stringify(content, null, 2)}\n`;
    const path = join(outDir, name);
    if (!check) {
      writeFileSync(path, text);
      continue;
    }
    let old = '';
    try {
      old = readFileSync(path, 'utf8');
    } catch {
      /* missing counts as different */
    }
    if (old !== text) {
      differ++;
      console.error(`differs: ${relative(root, path)}`);
    }
  }
  return differ;
}
