// The audit report as one self-contained HTML page, checked the way an auditor sees it: rendered in
// headless Chromium from a file, offline. W3C Content Security Policy Level 3 (a policy in
// <meta http-equiv>); HTML Living Standard 13.1.4 (character references in text and attribute
// values) and 13.1.2.6 (escapable raw text: the document's <title>); WAI-ARIA 1.2 `img` role and
// SVG 2 <title> (accessible charts). docs/conventions.md, "Tests": the negative cases (failed
// verification, disagreements, empty, hostile, huge and malformed reports) outnumber the normal one.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../../../test/_chromium.js';
import { renderReportHtml } from '../src/internal/report-html.js';
import type { AuditReport, ExposureRow, KeyUseRow, TimelineBucket } from '../src/internal/report-types.js';

// The functions given to page.evaluate run in Chromium. The project's tsconfig has no DOM lib (the
// code is Node code, and a lib reference here would add DOM globals to every package), so they
// see the page through this narrow, module-local view of what they use.
interface El {
  readonly id: string;
  readonly tagName: string;
  readonly textContent: string | null;
  readonly innerText: string;
  readonly scrollWidth: number;
  readonly attributes: ArrayLike<{ readonly name: string; readonly value: string }>;
  readonly nextElementSibling: El | null;
  readonly cells: ArrayLike<El>;
  getAttribute(name: string): string | null;
  querySelector(selector: string): El | null;
  querySelectorAll(selector: string): ArrayLike<El>;
  closest(selector: string): El | null;
  getBoundingClientRect(): { readonly width: number; readonly height: number };
}
declare const document: {
  readonly body: El;
  readonly documentElement: El;
  readonly scripts: ArrayLike<El>;
  querySelector(selector: string): El | null;
  querySelectorAll(selector: string): ArrayLike<El>;
  getElementById(id: string): El | null;
};
declare const window: { readonly __pwned?: unknown };
declare function getComputedStyle(e: El): { readonly display: string };

const CSP = `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`;

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const HOUR = 3_600_000;
const hourIso = (i: number) => new Date(Date.UTC(2024, 4, 1) + i * HOUR).toISOString();

const normal: AuditReport = {
  generatedAt: '2024-05-02T09:30:00.000Z',
  range: { from: '2024-05-01T00:00:00.000Z', to: '2024-05-01T06:00:00.000Z' },
  keystoreTrail: { source: '/var/lib/smki/keystore-audit.log', records: 18_532, ok: true, findings: [] },
  decisionLog: { source: '/var/lib/smki/decisions.log', records: 1_204_311, ok: true, findings: [] },
  keyUse: [
    { organisation: 'ACME Energy', portfolio: 'acme-north', keyId: '0A1B2C3D4E5F6071', messageCode: '0010', uses: 12_345 },
    { organisation: 'ACME Energy', portfolio: 'acme-north', keyId: '0A1B2C3D4E5F6071', messageCode: '0011', uses: 7 },
    { organisation: 'ACME Energy', portfolio: 'acme-south', keyId: '1122334455667788', messageCode: '00CB', uses: 1_000 },
    { organisation: 'Bolt Power', portfolio: 'bolt-1', keyId: 'FFEEDDCCBBAA9988', messageCode: 'other', uses: 3 },
  ],
  decisions: [
    { outcome: 'accepted', code: '-', count: 1_180_002 },
    { outcome: 'rejected', code: 'ERR_COMMAND_REPLAYED', count: 12 },
    { outcome: 'rejected', code: 'ERR_KEY_PORTFOLIO_MISMATCH', count: 3 },
    { outcome: 'quarantined', code: '-', count: 1_001 },
  ],
  timeline: {
    bucketMs: HOUR,
    buckets: [
      { start: hourIso(0), accepted: 120, rejected: 5, quarantined: 0 },
      { start: hourIso(1), accepted: 300, rejected: 0, quarantined: 2 },
      { start: hourIso(2), accepted: 0, rejected: 0, quarantined: 0 },
      { start: hourIso(3), accepted: 1_450, rejected: 10, quarantined: 1 },
      { start: hourIso(4), accepted: 80, rejected: 0, quarantined: 0 },
      { start: hourIso(5), accepted: 0, rejected: 2, quarantined: 0 },
    ],
  },
  exposure: [
    { organisation: 'ACME Energy', portfolio: 'acme-north', keyId: '0A1B2C3D4E5F6071', state: 'active', meters: 250_000 },
    { organisation: 'ACME Energy', portfolio: 'acme-south', keyId: '1122334455667788', state: 'pending', meters: 1_234 },
    { organisation: 'Bolt Power', portfolio: 'bolt-1', keyId: 'FFEEDDCCBBAA9988', state: 'retired', meters: 0 },
  ],
  crossCheck: { matched: 18_400, keystoreOnly: 120, decisionLogOnly: 1_185_903, disagreements: [] },
};
/** Bars' segments in `normal`: the non-zero (bucket, outcome) counts. */
const NORMAL_SEGMENTS = normal.timeline.buckets.reduce((k, b) => k + [b.accepted, b.rejected, b.quarantined].filter((v) => v > 0).length, 0);

const failed: AuditReport = {
  ...normal,
  keystoreTrail: {
    source: '/var/lib/smki/keystore-audit.log',
    records: 912,
    ok: false,
    findings: [
      { code: 'ERR_AUDIT_MAC_MISMATCH', message: 'record MAC does not verify', line: 412 },
      { code: 'ERR_AUDIT_CHAIN_BROKEN', message: 'previous-hash does not match record 412' },
    ],
  },
};

const disagreeing: AuditReport = {
  ...normal,
  crossCheck: {
    matched: 18_397,
    keystoreOnly: 120,
    decisionLogOnly: 1_185_903,
    disagreements: [
      { device: '00DB1234567890A0', counter: '1099511627776', messageCode: '0010', keystore: 'no signature', decisionLog: 'accepted, signer serial 7A01', issue: 'accepted a command the keystore never signed' },
      { device: '00DB1234567890A1', counter: '42', messageCode: '00CB', keystore: 'signed with key 0A1B2C3D4E5F6071', decisionLog: 'accepted, signer serial 7A02', issue: 'key is not the certificate the validator checked' },
      { device: '00DB1234567890A2', counter: '43', messageCode: '0011', keystore: 'signed with key 1122334455667788', decisionLog: 'accepted, signer serial 7A03', issue: 'times 3 h apart' },
    ],
  },
};

const empty: AuditReport = {
  generatedAt: '2024-05-02T09:30:00.000Z',
  range: {},
  keystoreTrail: { source: 'keystore-audit.log', records: 0, ok: true, findings: [] },
  decisionLog: { source: 'decisions.log', records: 0, ok: true, findings: [] },
  keyUse: [],
  decisions: [],
  timeline: { bucketMs: HOUR, buckets: [] },
  exposure: [],
  crossCheck: { matched: 0, keystoreOnly: 0, decisionLogOnly: 0, disagreements: [] },
};

/** Buckets that exist but are all zero: still "none", not an empty frame. */
const zeroBuckets: AuditReport = { ...empty, timeline: { bucketMs: HOUR, buckets: [0, 1, 2].map((i) => ({ start: hourIso(i), accepted: 0, rejected: 0, quarantined: 0 })) } };

const SCRIPT = '<script>window.__pwned=1</script>';
const IMG = '<img src=x onerror="window.__pwned=2">';
const QUOTES = `p" onmouseover="window.__pwned=3" x='`;
const SVG_BREAK = '</title></svg><svg onload="window.__pwned=4"><title>';
const STYLE_BREAK = '</style><style>body{display:none}</style>';
const REMOTE = '<img src="https://evil.example/x.png"><link rel=stylesheet href=http://evil.example/s.css>';
const BIDI = 'ERR_OK\u202Egnp.exe\u202C\u0000';
const HOSTILE = [SCRIPT, IMG, QUOTES, SVG_BREAK, STYLE_BREAK, REMOTE];

const hostile: AuditReport = {
  generatedAt: `2024-05-02T09:30:00Z${SCRIPT}`,
  range: { from: IMG, to: QUOTES },
  keystoreTrail: { source: SCRIPT, records: 1, ok: false, findings: [{ code: SCRIPT, message: IMG, line: 1 }, { code: BIDI, message: STYLE_BREAK }] },
  decisionLog: { source: QUOTES, records: 2, ok: true, findings: [] },
  keyUse: [{ organisation: SCRIPT, portfolio: QUOTES, keyId: SVG_BREAK, messageCode: IMG, uses: 5 }],
  decisions: [
    { outcome: SCRIPT, code: IMG, count: 4 },
    { outcome: 'rejected', code: REMOTE, count: 2 },
  ],
  timeline: {
    bucketMs: HOUR,
    buckets: [
      { start: SVG_BREAK, accepted: 1, rejected: 1, quarantined: 1 },
      { start: QUOTES, accepted: 2, rejected: 0, quarantined: 0 },
    ],
  },
  exposure: [
    { organisation: IMG, portfolio: QUOTES, keyId: SCRIPT, state: STYLE_BREAK, meters: 9 },
    { organisation: 'x', portfolio: SVG_BREAK, keyId: REMOTE, state: 'active', meters: 3 },
  ],
  crossCheck: {
    matched: 1,
    keystoreOnly: 0,
    decisionLogOnly: 0,
    disagreements: [{ device: SCRIPT, counter: QUOTES, messageCode: IMG, keystore: SVG_BREAK, decisionLog: STYLE_BREAK, issue: REMOTE }],
  },
};

const BIG_BUCKETS = 10_000;
const BIG_KEYS = 5_000;
const bigBuckets: TimelineBucket[] = Array.from({ length: BIG_BUCKETS }, (_, i) => ({ start: hourIso(i), accepted: (i * 7) % 50, rejected: i % 13 === 0 ? 3 : 0, quarantined: i % 101 === 0 ? 1 : 0 }));
const bigExposure: ExposureRow[] = Array.from({ length: BIG_KEYS }, (_, i) => ({
  organisation: `Org ${i % 17}`,
  portfolio: `portfolio-${i % 250}`,
  keyId: (0x1000_0000_0000 + i).toString(16).toUpperCase().padStart(16, '0'),
  state: i % 3 === 0 ? 'active' : 'pending',
  meters: (i * 7919) % 20_000,
}));
const bigKeyUse: KeyUseRow[] = bigExposure.map((e, i) => ({ organisation: e.organisation, portfolio: e.portfolio, keyId: e.keyId, messageCode: i % 2 === 0 ? '0010' : '00CB', uses: i }));
const large: AuditReport = { ...normal, keyUse: bigKeyUse, timeline: { bucketMs: HOUR, buckets: bigBuckets }, exposure: bigExposure };

// ---------------------------------------------------------------------------------------------
// The browser
// ---------------------------------------------------------------------------------------------

let browser: Browser;
let dir: string;
let files = 0;

beforeAll(async () => {
  browser = await launchChromium();
  dir = mkdtempSync(join(tmpdir(), 'smki-report-html-'));
});
afterAll(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Opened {
  readonly page: Page;
  readonly url: string;
  readonly requests: string[];
  readonly failedRequests: string[];
  readonly errors: string[];
}

/** Write `html` to a file and open it; every request, console error and page error is recorded. */
async function open(html: string): Promise<Opened> {
  const file = join(dir, `report-${++files}.html`);
  writeFileSync(file, html, 'utf8');
  const url = pathToFileURL(file).href;
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  const requests: string[] = [];
  const failedRequests: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('requestfailed', (r) => failedRequests.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn') errors.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${String(e)}`));
  await page.goto(url, { waitUntil: 'load' });
  return { page, url, requests, failedRequests, errors };
}

/** Open a rendered report, check what every page must satisfy, run `body`, close the page. */
async function withReport(report: AuditReport, body: (o: Opened, html: string) => Promise<void>): Promise<void> {
  const html = renderReportHtml(report);
  expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
  expect(html).toContain(CSP);
  expect(html).not.toMatch(/<script/i);
  const o = await open(html);
  try {
    expect(o.requests).toEqual([o.url]);
    expect(o.errors).toEqual([]);
    const dom = await o.page.evaluate(() => ({
      scripts: document.scripts.length,
      pwned: window.__pwned,
      handlers: Array.from(document.querySelectorAll('*')).flatMap((e) => Array.from(e.attributes).filter((a) => /^on/i.test(a.name)).map((a) => `${e.tagName}@${a.name}`)),
      resources: Array.from(document.querySelectorAll('img, link, iframe, object, embed, image, use, audio, video, source')).length,
      styles: document.querySelectorAll('style').length,
      svgs: Array.from(document.querySelectorAll('svg')).map((s) => ({
        id: s.id,
        role: s.getAttribute('role'),
        label: s.getAttribute('aria-label') ?? '',
        title: s.querySelector(':scope > title')?.textContent ?? '',
      })),
    }));
    expect(dom.scripts).toBe(0);
    expect(dom.pwned).toBeUndefined();
    expect(dom.handlers).toEqual([]);
    expect(dom.resources).toBe(0);
    expect(dom.styles).toBe(1);
    for (const s of dom.svgs) {
      expect(s.role, s.id).toBe('img');
      expect(s.label.length, s.id).toBeGreaterThan(20);
      expect(s.title, s.id).toBe(s.label);
    }
    await body(o, html);
  } finally {
    await o.page.close();
  }
}

/** The cell texts of a table's body rows. */
function rows(page: Page, selector: string): Promise<string[][]> {
  return page.evaluate(
    (sel) => Array.from(document.querySelectorAll(`${sel} tbody tr`)).map((tr) => Array.from(tr.cells).map((td) => (td.textContent ?? '').trim())),
    selector,
  );
}

/** The cell texts of a table's footer row. */
function foot(page: Page, selector: string): Promise<string[]> {
  return page.evaluate((sel) => Array.from(document.querySelectorAll(`${sel} tfoot td, ${sel} tfoot th`)).map((td) => (td.textContent ?? '').trim()), selector);
}

/** A chart's rendered size and its bars and segments. */
function chart(page: Page, id: string) {
  return page.evaluate((sel) => {
    const svg = document.getElementById(sel);
    if (!svg) return null;
    const box = svg.getBoundingClientRect();
    const bars = Array.from(svg.querySelectorAll('g.bar'));
    return {
      width: box.width,
      height: box.height,
      bars: bars.length,
      segments: Array.from(svg.querySelectorAll('rect.seg')).map((r) => ({ cls: r.getAttribute('class') ?? '', count: Number(r.getAttribute('data-count')), h: r.getBoundingClientRect().height })),
      barRects: bars.map((g) => g.querySelector('rect')?.getBoundingClientRect().width ?? 0),
      labels: Array.from(svg.querySelectorAll('text.label')).map((x) => x.textContent ?? ''),
      values: Array.from(svg.querySelectorAll('text.value')).map((x) => x.textContent ?? ''),
      xlabels: Array.from(svg.querySelectorAll('text.xlabel')).map((x) => x.textContent ?? ''),
      legend: Array.from(svg.querySelectorAll('.legend-item text')).map((x) => x.textContent ?? ''),
      patterns: svg.querySelectorAll('pattern').length,
    };
  }, id);
}

const text = (page: Page, selector: string) => page.$eval(selector, (e) => (e as unknown as El).innerText);

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

describe('renderReportHtml', () => {
  it('is pure: the same report gives the same bytes, whatever the clock', async () => {
    const a = renderReportHtml(normal);
    await new Promise((r) => setTimeout(r, 5));
    expect(renderReportHtml(structuredClone(normal))).toBe(a);
    expect(a).not.toMatch(/https?:\/\//);
  });

  it('a normal report: the title, both logs verified, every table holds the numbers, both charts drawn', async () => {
    await withReport(normal, async ({ page }) => {
      const title = await page.title();
      expect(title).toBe('SMKI audit report, generated 2024-05-02T09:30:00.000Z');
      const header = await text(page, 'header');
      expect(header).toContain('Generated 2024-05-02T09:30:00.000Z');
      expect(header).toContain('from 2024-05-01T00:00:00.000Z to 2024-05-01T06:00:00.000Z');
      expect(await page.$('#alert-verification')).toBeNull();
      expect(await page.$('#alert-disagreements')).toBeNull();

      // Order on the page: verification, cross-check, decisions, key use, exposure, charts.
      const order = await page.evaluate(() => Array.from(document.querySelectorAll('main > section')).map((s) => s.id));
      expect(order).toEqual(['verification', 'crosscheck', 'decisions-section', 'key-use-section', 'exposure-section', 'charts']);

      for (const id of ['verify-keystore', 'verify-decisions']) {
        expect(await page.$eval(`#${id}`, (e) => (e as unknown as El).getAttribute('data-ok'))).toBe('true');
        expect(await text(page, `#${id}`)).toContain('✓ Verified');
      }
      expect(await text(page, '#verify-keystore')).toContain('18,532');
      expect(await text(page, '#verify-decisions')).toContain('1,204,311');

      expect(await rows(page, '#crosscheck-summary')).toEqual([
        ['Both logs, consistent (matched)', '18,400'],
        ['Keystore trail only', '120'],
        ['Decision log only', '1,185,903'],
        ['Both logs, disagreeing', '0'],
      ]);
      expect(await page.$('#disagreements')).toBeNull();
      expect(await text(page, '#crosscheck')).toContain('None: no disagreements');

      expect(await rows(page, '#decisions')).toEqual([
        ['accepted', '-', '1,180,002'],
        ['rejected', 'ERR_COMMAND_REPLAYED', '12'],
        ['rejected', 'ERR_KEY_PORTFOLIO_MISMATCH', '3'],
        ['quarantined', '-', '1,001'],
      ]);
      expect(await foot(page, '#decisions')).toEqual(['Total', '', '1,181,018']);
      expect(await rows(page, '#key-use')).toEqual([
        ['ACME Energy', 'acme-north', '0A1B2C3D4E5F6071', '0010', '12,345'],
        ['ACME Energy', 'acme-north', '0A1B2C3D4E5F6071', '0011', '7'],
        ['ACME Energy', 'acme-south', '1122334455667788', '00CB', '1,000'],
        ['Bolt Power', 'bolt-1', 'FFEEDDCCBBAA9988', 'other', '3'],
      ]);
      expect(await foot(page, '#key-use')).toEqual(['Total', '', '', '', '13,355']);
      expect(await rows(page, '#exposure')).toEqual([
        ['ACME Energy', 'acme-north', '0A1B2C3D4E5F6071', 'active', '250,000'],
        ['ACME Energy', 'acme-south', '1122334455667788', 'pending', '1,234'],
        ['Bolt Power', 'bolt-1', 'FFEEDDCCBBAA9988', 'retired', '0'],
      ]);

      const tl = await chart(page, 'chart-timeline');
      expect(tl).not.toBeNull();
      expect(tl!.width).toBeGreaterThan(300);
      expect(tl!.height).toBeGreaterThan(150);
      expect(tl!.bars).toBe(normal.timeline.buckets.length);
      expect(tl!.segments).toHaveLength(NORMAL_SEGMENTS);
      for (const s of tl!.segments) expect(s.h).toBeGreaterThan(0);
      const byOutcome = (k: string) => tl!.segments.filter((s) => s.cls.includes(`seg-${k}`)).map((s) => s.count);
      expect(byOutcome('accepted')).toEqual([120, 300, 1_450, 80]);
      expect(byOutcome('rejected')).toEqual([5, 10, 2]);
      expect(byOutcome('quarantined')).toEqual([2, 1]);
      expect(tl!.xlabels).toEqual(['2024-05-01 00:00', '2024-05-01 01:00', '2024-05-01 02:00', '2024-05-01 03:00', '2024-05-01 04:00', '2024-05-01 05:00']);
      expect(tl!.legend).toEqual(['Accepted (1,950)', 'Rejected (17)', 'Quarantined (3)']);
      expect(tl!.patterns).toBe(2); // rejected and quarantined are patterned, not told apart by colour alone
      expect(await page.$('#timeline-aggregated')).toBeNull();

      const ex = await chart(page, 'chart-exposure');
      expect(ex).not.toBeNull();
      expect(ex!.width).toBeGreaterThan(300);
      expect(ex!.height).toBeGreaterThan(50);
      expect(ex!.bars).toBe(3);
      expect(ex!.labels).toEqual(['acme-north / 0A1B2C3D4E5F6071', 'acme-south / 1122334455667788', 'bolt-1 / FFEEDDCCBBAA9988']);
      expect(ex!.values).toEqual(['250,000', '1,234', '0']);
      expect(ex!.barRects[0]).toBeGreaterThan(ex!.barRects[1]!);
      expect(await page.$('#exposure-capped')).toBeNull();

      // Printed, the charts keep their size.
      await page.emulateMediaType('print');
      expect((await chart(page, 'chart-timeline'))!.height).toBeGreaterThan(150);
      expect((await chart(page, 'chart-exposure'))!.height).toBeGreaterThan(50);
    });
  });

  it('a failed verification heads the page and lists its findings', async () => {
    await withReport(failed, async ({ page }) => {
      expect(await page.title()).toMatch(/^VERIFICATION FAILED/);
      // The banner is the first thing after the title.
      const first = await page.evaluate(() => document.querySelector('header h1')?.nextElementSibling?.nextElementSibling?.id);
      expect(first).toBe('alert-verification');
      const banner = await text(page, '#alert-verification');
      expect(banner).toContain('VERIFICATION FAILED');
      expect(banner).toContain('the keystore trail did not verify');
      expect(await page.$eval('#alert-verification', (e) => (e as unknown as El).getBoundingClientRect().height)).toBeGreaterThan(30);

      expect(await page.$eval('#verify-keystore', (e) => (e as unknown as El).getAttribute('data-ok'))).toBe('false');
      const card = await text(page, '#verify-keystore');
      expect(card).toContain('✗ FAILED');
      expect(card).toContain('912');
      expect(await rows(page, '#verify-keystore-findings')).toEqual([
        ['ERR_AUDIT_MAC_MISMATCH', 'record MAC does not verify', '412'],
        ['ERR_AUDIT_CHAIN_BROKEN', 'previous-hash does not match record 412', '—'],
      ]);
      // The other log still verified.
      expect(await page.$eval('#verify-decisions', (e) => (e as unknown as El).getAttribute('data-ok'))).toBe('true');
      expect(await page.$('#verify-decisions-findings')).toBeNull();
    });
  });

  it('a failure without findings still says FAILED, and that none were recorded', async () => {
    const report: AuditReport = { ...normal, decisionLog: { source: 'decisions.log', records: 3, ok: false, findings: [] } };
    await withReport(report, async ({ page }) => {
      expect(await text(page, '#alert-verification')).toContain('the decision log did not verify');
      const card = await text(page, '#verify-decisions');
      expect(card).toContain('✗ FAILED');
      expect(card).toContain('No findings were recorded');
    });
  });

  it('disagreements are flagged at the top and listed row by row', async () => {
    await withReport(disagreeing, async ({ page }) => {
      expect(await page.title()).toMatch(/^DISAGREEMENTS/);
      expect(await text(page, '#alert-disagreements')).toContain('3 disagreements');
      expect(await page.$('#alert-verification')).toBeNull();
      expect((await rows(page, '#crosscheck-summary'))[3]).toEqual(['Both logs, disagreeing', '3']);
      expect(await rows(page, '#disagreements')).toEqual(
        disagreeing.crossCheck.disagreements.map((d) => [d.device, d.counter, d.messageCode, d.keystore, d.decisionLog, d.issue]),
      );
      expect(await page.$eval('#disagreements', (e) => (e as unknown as El).closest('.flagged') !== null)).toBe(true);
    });
  });

  it('an empty report says "None" in every section instead of drawing empty charts', async () => {
    await withReport(empty, async ({ page }) => {
      expect(await text(page, '#range-from')).toBe('the first record');
      expect(await text(page, '#range-to')).toBe('open (no end)');
      for (const sel of ['#crosscheck', '#decisions-section', '#key-use-section', '#exposure-section', '#figure-timeline', '#figure-exposure']) {
        expect(await text(page, sel), sel).toMatch(/None:/);
      }
      for (const sel of ['#decisions', '#key-use', '#exposure', '#disagreements', '#chart-timeline', '#chart-exposure']) {
        expect(await page.$(sel), sel).toBeNull();
      }
      expect(await page.evaluate(() => document.querySelectorAll('svg').length)).toBe(0);
    });
    await withReport(zeroBuckets, async ({ page }) => {
      expect(await page.$('#chart-timeline')).toBeNull();
      expect(await text(page, '#figure-timeline')).toContain('None: no accepted, rejected or quarantined decisions in any of the 3 buckets of 1 h');
    });
  });

  it('hostile strings stay text: escaped everywhere, nothing runs or loads, even without the CSP', async () => {
    await withReport(hostile, async ({ page }, html) => {
      // Every hostile string is on the page, as the text it is.
      const body = await page.evaluate(() => document.body.textContent ?? '');
      for (const h of HOSTILE) expect(body, h).toContain(h);
      // Bidi overrides and NUL are shown, not obeyed.
      expect(body).toContain('ERR_OK⟨U+202E⟩gnp.exe⟨U+202C⟩⟨U+0000⟩');
      expect(body).not.toContain('\u202E');
      // The document title and the charts' SVG titles hold the strings as text too.
      expect(await page.title()).toContain(SCRIPT);
      const svgTitles = await page.evaluate(() => Array.from(document.querySelectorAll('svg title')).map((x) => x.textContent ?? ''));
      expect(svgTitles.some((x) => x.includes(SVG_BREAK))).toBe(true);
      expect(await page.evaluate(() => document.querySelectorAll('svg').length)).toBe(2);
      expect((await rows(page, '#disagreements'))[0]).toEqual([SCRIPT, QUOTES, IMG, SVG_BREAK, STYLE_BREAK, REMOTE]);
      expect((await rows(page, '#key-use'))[0]).toEqual([SCRIPT, QUOTES, SVG_BREAK, IMG, '5']);
      // The style sheet was not closed early and the page is shown.
      expect(await page.evaluate(() => getComputedStyle(document.body).display)).toBe('block');
      // No reference to a remote resource outside text: no attribute names a URL.
      const urlAttrs = await page.evaluate(() => Array.from(document.querySelectorAll('*')).flatMap((e) => Array.from(e.attributes).filter((a) => /https?:|^x$/i.test(a.value) && a.name !== 'aria-label').map((a) => `${e.tagName}@${a.name}=${a.value}`)));
      expect(urlAttrs).toEqual([]);
      expect(html).not.toMatch(/<(img|link|svg onload)/i);

      // The escaping holds on its own: the same page without its CSP runs and loads nothing either.
      const bare = html.replace(CSP, '');
      expect(bare).not.toContain('Content-Security-Policy');
      const o = await open(bare);
      try {
        expect(o.requests).toEqual([o.url]);
        expect(o.errors).toEqual([]);
        expect(await o.page.evaluate(() => window.__pwned)).toBeUndefined();
        expect(await o.page.evaluate(() => document.querySelectorAll('script, img, link').length)).toBe(0);
        const bareBody = await o.page.evaluate(() => document.body.textContent ?? '');
        for (const h of HOSTILE) expect(bareBody, h).toContain(h);
      } finally {
        await o.page.close();
      }
    });
  });

  it('the CSP is a second wall: markup forced into the page past the escaping neither runs nor loads', async () => {
    const injected = renderReportHtml(normal).replace(
      '<main>',
      '<main><script>window.__pwned=9</script><img src="x" onerror="window.__pwned=10"><div id="bg" style="height:5px;background:url(https://evil.example/b.png)"></div>',
    );
    const o = await open(injected);
    try {
      expect(await o.page.evaluate(() => window.__pwned)).toBeUndefined();
      // Chromium announces each load, then the policy blocks it: it fails, and the console says why.
      const loads = o.requests.slice(1);
      expect(loads).toEqual([new URL('x', o.url).href, 'https://evil.example/b.png']);
      expect(o.failedRequests).toEqual(loads);
      for (const u of loads) expect(o.errors.some((e) => e.includes(`Loading the image '${u}' violates`) && e.includes('img-src data:')), u).toBe(true);
      expect(o.errors.some((e) => e.includes('Executing inline script violates'))).toBe(true);
      expect(o.errors.some((e) => e.includes('Executing inline event handler violates'))).toBe(true);
    } finally {
      await o.page.close();
    }
  });

  it('large inputs render: 10,000 buckets summed into at most 120 bars, the 40 most-exposed of 5,000 keys charted, every row tabled', async () => {
    const started = performance.now();
    const html = renderReportHtml(large);
    const renderMs = performance.now() - started;
    expect(renderMs).toBeLessThan(2_000);
    expect(html).not.toMatch(/https?:\/\//);
    await withReport(large, async ({ page }) => {
      const tl = await chart(page, 'chart-timeline');
      expect(tl).not.toBeNull();
      expect(tl!.width).toBeGreaterThan(300);
      expect(tl!.bars).toBeGreaterThan(60);
      expect(tl!.bars).toBeLessThanOrEqual(120);
      // Summing loses nothing: the segments add up to the fixture's totals, outcome by outcome.
      for (const k of ['accepted', 'rejected', 'quarantined'] as const) {
        const drawn = tl!.segments.filter((s) => s.cls.includes(`seg-${k}`)).reduce((a, s) => a + s.count, 0);
        expect(drawn, k).toBe(bigBuckets.reduce((a, b) => a + b[k], 0));
      }
      expect(tl!.xlabels.length).toBeGreaterThan(4);
      expect(tl!.xlabels.length).toBeLessThanOrEqual(20);
      const agg = await text(page, '#timeline-aggregated');
      expect(agg).toContain('10,000 buckets of 1 h are drawn as');
      expect(agg).toContain('each the sum of 84 consecutive buckets (3 d 12 h)');

      const ex = await chart(page, 'chart-exposure');
      expect(ex).not.toBeNull();
      expect(ex!.bars).toBe(40);
      expect(ex!.width).toBeGreaterThan(300);
      const top = [...bigExposure].sort((a, b) => b.meters - a.meters).slice(0, 40).map((e) => e.meters.toLocaleString('en-GB'));
      expect(ex!.values).toEqual(top);
      const capped = await text(page, '#exposure-capped');
      expect(capped).toContain('the 40 keys trusted by the most meters, of 5,000');
      expect(capped).toContain('the other 4,960 keys');

      expect(await page.evaluate(() => document.querySelectorAll('#exposure tbody tr').length)).toBe(BIG_KEYS);
      expect(await page.evaluate(() => document.querySelectorAll('#key-use tbody tr').length)).toBe(BIG_KEYS);
      const last = (await rows(page, '#exposure')).at(-1);
      expect(last?.[4]).toBe(bigExposure.at(-1)!.meters.toLocaleString('en-GB'));
    });
  });

  it('odd numbers and widths do not break the page: NaN, negatives, fractions, zero-width buckets, long labels', async () => {
    const long = 'K'.repeat(300);
    const odd: AuditReport = {
      ...normal,
      decisions: [{ outcome: 'rejected', code: 'ERR_X', count: Number.NaN }, { outcome: 'accepted', code: '-', count: 1234.5 }],
      timeline: { bucketMs: 0, buckets: [{ start: 'not a time', accepted: -5, rejected: Number.POSITIVE_INFINITY, quarantined: 3 }] },
      exposure: [{ organisation: 'o', portfolio: long, keyId: long, state: 'active', meters: 7 }],
    };
    await withReport(odd, async ({ page }, html) => {
      expect(html).not.toMatch(/="[^"]*NaN/); // no NaN in an attribute (a coordinate)
      expect(await rows(page, '#decisions')).toEqual([
        ['rejected', 'ERR_X', 'NaN'],
        ['accepted', '-', '1,234.50'],
      ]);
      const tl = await chart(page, 'chart-timeline');
      expect(tl!.bars).toBe(1);
      expect(tl!.segments.map((s) => s.cls)).toEqual(['seg seg-quarantined']);
      // A 300-character token wraps in its cell (the text intact) instead of widening the page.
      expect((await rows(page, '#exposure'))[0]).toEqual(['o', long, long, 'active', '7']);
      expect(await page.evaluate(() => document.getElementById('exposure')!.getBoundingClientRect().width)).toBeLessThanOrEqual(1000);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1200);
      const ex = await chart(page, 'chart-exposure');
      expect(ex!.labels[0]!.length).toBeLessThanOrEqual(44);
      expect(ex!.labels[0]!.endsWith('…')).toBe(true);
      expect(ex!.width).toBeGreaterThan(300);
    });
  });
});
