// docs/conventions.md, "Docs": the API reference is written for auditors, so it has to work as a
// reader uses it. This test builds the site once with the root typedoc.json (as `pnpm run docs`
// does, into a temporary directory), opens it in headless Chromium from index.html, follows every
// link inside the site breadth-first, and fails listing each broken one: a target file that does
// not exist, or a `#fragment` with no element of that id on the target page (WHATWG HTML, "the
// indicated part of the document"). Links are read from the rendered DOM, after typedoc's scripts
// have built the navigation, so the links a reader can click are the links checked. It also
// checks that the error-code page (docs/errors.md) is reachable from the front page.
//
// Whether typedoc warns (an undocumented export, an unresolved {@link}) is test/docs.test.ts's
// concern: here the site is built with warnings allowed, so that one undocumented symbol in a
// package being written does not hide every broken link behind it. typedoc must still exit 0.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { SMKI_ERROR_CODES } from '@smki/core';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './_chromium.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TYPEDOC = join(ROOT, 'node_modules', '.bin', 'typedoc');

/** A link found on a page: where it was, what it said, and where it points. */
interface Link {
  /** Page the link is on, relative to the site root. */
  readonly from: string;
  /** The href as written. */
  readonly href: string;
  /** Absolute file path of the target (no fragment). */
  readonly target: string;
  /** The fragment without `#`, decoded; empty when there is none. */
  readonly fragment: string;
  /** Whether the link is in the page's main content (not the navigation). */
  readonly inContent: boolean;
}

interface Crawl {
  /** Pages visited, relative to the site root. */
  readonly visited: Set<string>;
  /** Element ids (and `a[name]`s) of each visited page, by absolute path. */
  readonly ids: Map<string, Set<string>>;
  /** Every same-site link seen. */
  readonly links: Link[];
  /** Links that leave the site directory through file:// (a relative path gone wrong). */
  readonly outside: Link[];
  /** Uncaught script errors, by page. */
  readonly scriptErrors: string[];
}

let out: string;
let browser: Browser | undefined;
let page: Page;
let build: { ok: boolean; output: string };
let crawl: Crawl;

// The little of the DOM that the page functions below use (the repository's tsconfig has no DOM
// lib, and adding one would change the types of every Node file in the program).
interface DomElement {
  readonly id: string;
  readonly href?: string;
  getAttribute(name: string): string | null;
  closest(selector: string): DomElement | null;
}
interface DomDocument {
  querySelector(selector: string): DomElement | null;
  querySelectorAll(selector: string): Iterable<DomElement>;
}

/** Read a rendered page: its ids and its links (absolute, as the browser resolves them). */
async function readPage(p: Page, withNavigation: boolean): Promise<{ ids: string[]; links: { href: string; url: string; inContent: boolean }[] }> {
  return p.evaluate((nav: boolean) => {
    const doc = (globalThis as unknown as { document: DomDocument }).document;
    const ids = [...doc.querySelectorAll('[id]')].map((e) => e.id);
    for (const a of doc.querySelectorAll('a[name]')) ids.push(a.getAttribute('name') ?? '');
    const anchors = [...doc.querySelectorAll('a[href]')].filter((a) => nav || a.closest('#tsd-nav-container') === null);
    const links = anchors.map((a) => ({
      href: a.getAttribute('href') ?? '',
      url: a.href ?? '',
      inContent: a.closest('.col-content') !== null && a.closest('nav, .tsd-navigation, .page-menu, .site-menu, header') === null,
    }));
    return { ids, links };
  }, withNavigation);
}

/** Breadth-first from index.html over every same-site link. */
async function crawlSite(p: Page, siteDir: string): Promise<Crawl> {
  const rel = (abs: string) => relative(siteDir, abs).split(sep).join('/');
  const visited = new Set<string>();
  const ids = new Map<string, Set<string>>();
  const links: Link[] = [];
  const outside: Link[] = [];
  const scriptErrors: string[] = [];
  let current = '';
  p.on('pageerror', (e) => scriptErrors.push(`${current}: ${e instanceof Error ? e.message : String(e)}`));

  // typedoc's navigation tree is built by its script, after load, from one data file
  // (assets/navigation.js) with hrefs relative to the page's directory: every page of a directory
  // gets the same links. It is waited for and read on the first page of each directory; on the
  // others, the links of the page itself are read.
  const navigationRead = new Set<string>();
  const start = join(siteDir, 'index.html');
  const queue = [start];
  const queued = new Set(queue);
  while (queue.length > 0) {
    const file = queue.shift()!;
    current = rel(file);
    visited.add(current);
    await p.goto(pathToFileURL(file).href, { waitUntil: 'load' });
    const withNavigation = !navigationRead.has(dirname(file));
    if (withNavigation && (await p.$('#tsd-nav-container'))) {
      navigationRead.add(dirname(file));
      await p.waitForFunction(() => (globalThis as unknown as { document: DomDocument }).document.querySelector('#tsd-nav-container a') !== null, {
        timeout: 15_000,
      });
    }
    const found = await readPage(p, withNavigation);
    ids.set(file, new Set(found.ids));
    for (const l of found.links) {
      const url = new URL(l.url);
      if (url.protocol !== 'file:') continue; // https://typedoc.org and the like: not part of the site
      const fragment = decodeURIComponent(url.hash.replace(/^#/, ''));
      url.hash = '';
      url.search = '';
      const target = fileURLToPath(url);
      const link: Link = {
        from: current,
        href: l.href,
        target: url.pathname.endsWith('/') ? join(target, 'index.html') : target,
        fragment,
        inContent: l.inContent,
      };
      if (!link.target.startsWith(siteDir + sep)) {
        outside.push(link);
        continue;
      }
      links.push(link);
      if (extname(link.target) === '.html' && !queued.has(link.target) && existsSync(link.target)) {
        queued.add(link.target);
        queue.push(link.target);
      }
    }
  }
  return { visited, ids, links, outside, scriptErrors };
}

/** Broken links, grouped by target and reason (a broken navigation link is on every page). */
function brokenLinks(c: Crawl, siteDir: string): string[] {
  const rel = (abs: string) => relative(siteDir, abs).split(sep).join('/');
  const problems = new Map<string, string[]>();
  const isFile = new Map<string, boolean>();
  const fileExists = (f: string) => {
    let r = isFile.get(f);
    if (r === undefined) isFile.set(f, (r = existsSync(f) && statSync(f).isFile()));
    return r;
  };
  const report = (what: string, from: string) => {
    const list = problems.get(what) ?? [];
    list.push(from);
    problems.set(what, list);
  };
  for (const l of c.outside) report(`${l.href} leaves the site (${l.target})`, l.from);
  for (const l of c.links) {
    if (!fileExists(l.target)) {
      report(`${l.href} → ${rel(l.target)}: no such file`, l.from);
      continue;
    }
    if (!l.fragment) continue;
    const targetIds = c.ids.get(l.target);
    if (!targetIds) report(`${l.href} → ${rel(l.target)}#${l.fragment}: a fragment on a page that is not HTML`, l.from);
    else if (!targetIds.has(l.fragment)) report(`${l.href} → ${rel(l.target)}: no element with id "${l.fragment}"`, l.from);
  }
  return [...problems].map(([what, from]) => `${what} (on ${from.length} page${from.length === 1 ? '' : 's'}: ${from.slice(0, 3).join(', ')}${from.length > 3 ? ', …' : ''})`);
}

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'smki-docs-site-'));
  const r = await promisify(execFile)(TYPEDOC, ['--out', out, '--treatWarningsAsErrors', 'false', '--treatValidationWarningsAsErrors', 'false'], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
    maxBuffer: 64 * 1024 * 1024,
  }).then(
    (x) => ({ ok: true, output: `${x.stdout}\n${x.stderr}` }),
    (e: { stdout?: string; stderr?: string; message: string }) => ({ ok: false, output: `${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}` }),
  );
  build = r;
  if (!build.ok) return;
  browser = await launchChromium();
  page = await browser.newPage();
  crawl = await crawlSite(page, out);
}, 240_000);

afterAll(async () => {
  await browser?.close();
  if (out) rmSync(out, { recursive: true, force: true });
});

describe('the API site, read in a browser (root typedoc.json, built to a temporary directory)', () => {
  it('typedoc builds the site', () => {
    expect(build.ok, build.output).toBe(true);
    expect(existsSync(join(out, 'index.html'))).toBe(true);
  });

  it('the crawl reaches every page of the site', () => {
    expect(build.ok, 'typedoc did not build the site').toBe(true);
    // Every package's module page, and pages of all kinds, are reachable from the front page.
    expect(crawl.visited.size).toBeGreaterThan(50);
    expect([...crawl.visited].some((p) => p.startsWith('functions/'))).toBe(true);
    expect([...crawl.visited].some((p) => p.startsWith('classes/'))).toBe(true);
    expect([...crawl.visited].some((p) => p.startsWith('documents/'))).toBe(true);
    expect(crawl.links.some((l) => l.fragment !== ''), 'no link with a fragment was seen: the crawl checks nothing of anchors').toBe(true);
  });

  it('no internal link is broken (missing file or missing anchor)', () => {
    expect(build.ok, 'typedoc did not build the site').toBe(true);
    const broken = brokenLinks(crawl, out);
    expect(broken, `${broken.length} broken link(s):\n${broken.join('\n')}`).toEqual([]);
  });

  it('no page throws a script error', () => {
    expect(build.ok, 'typedoc did not build the site').toBe(true);
    expect(crawl.scriptErrors, crawl.scriptErrors.join('\n')).toEqual([]);
  });

  it('the error-code page is linked from the front page, and has an anchor for every code', async () => {
    expect(build.ok, 'typedoc did not build the site').toBe(true);
    const fromFront = crawl.links.filter((l) => l.from === 'index.html' && l.inContent);
    let errorPage: string | undefined;
    for (const l of fromFront) {
      if (extname(l.target) !== '.html' || !existsSync(l.target)) continue;
      await page.goto(pathToFileURL(l.target).href, { waitUntil: 'load' });
      const h1 = await page.$eval('h1', (e) => e.textContent?.trim() ?? '').catch(() => '');
      if (h1 === 'Error codes') errorPage = l.target;
    }
    expect(errorPage, `no link in the front page's text leads to a page titled "Error codes" (links: ${fromFront.map((l) => l.href).join(', ')})`).toBeDefined();
    const ids = crawl.ids.get(errorPage!) ?? new Set();
    const missing = Object.keys(SMKI_ERROR_CODES).filter((c) => !ids.has(c.toLowerCase()));
    expect(missing, `codes without an anchor on the error page: ${missing.join(', ')}`).toEqual([]);
  });
});
