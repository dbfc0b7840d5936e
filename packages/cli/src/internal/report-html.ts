/**
 * The audit report as one self-contained HTML page (`smki audit report --html FILE`): the page an
 * auditor opens offline, prints or files. It shows the same data as the tables and the JSON.
 *
 * Security posture: the report's strings come from logs an attacker may have written to (a
 * rejection code, a portfolio id, a finding's message), so every one of them is HTML-escaped
 * (`& < > " '`) wherever it lands (element text, attribute values, SVG text and titles), and
 * control and bidirectional-formatting characters are shown as visible `⟨U+XXXX⟩` markers so a
 * log cannot reorder or hide what the auditor reads. The page holds no script and references no
 * external resource (styles are inline, charts are inline SVG drawn here), and it carries a
 * Content-Security-Policy that forbids both, as a second wall behind the escaping.
 * @module
 * @internal
 */
import type {
  AuditReport,
  CrossCheck,
  DecisionCountRow,
  ExposureRow,
  KeyUseRow,
  LogVerificationSummary,
  TimelineBucket,
} from './report-types.js';

/** At most this many bars in the decisions-over-time chart; more buckets are summed into groups. */
const TIMELINE_MAX_BARS = 120;
/** At most this many keys in the exposure chart (those trusted by the most meters); the table lists all. */
const EXPOSURE_MAX_BARS = 40;
/** Chart labels longer than this (in code points) are cut with an ellipsis; tables show them whole. */
const LABEL_MAX_CHARS = 44;

/** The policy the page carries: nothing may load or run except inline styles and `data:` images. */
const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

// ---------------------------------------------------------------------------------------------
// Text: escaping, visible controls, numbers, times
// ---------------------------------------------------------------------------------------------

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escape `& < > " '`: safe as element text and inside a double- or single-quoted attribute. */
function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

/**
 * C0/C1 controls (except tab, line feed, carriage return), bidirectional and zero-width formatting
 * characters, line/paragraph separators, the byte-order mark, and lone surrogates.
 */
// eslint-disable-next-line no-control-regex
const INVISIBLE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u2028-\u202E\u2060-\u2069\uFEFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Show invisible and reordering characters as `⟨U+XXXX⟩`, so a hostile string reads as it is. */
function visible(s: string): string {
  return s.replace(INVISIBLE, (c) => `⟨U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}⟩`);
}

/** Report text, ready for element text or a quoted attribute. Anything not a string is stringified first. */
function t(value: unknown): string {
  return escapeHtml(visible(typeof value === 'string' ? value : String(value)));
}

/**
 * Report text as element content (not for attributes, titles or SVG): as {@link t}, with a `<wbr>`
 * every 20 characters inside any run of more than 40 without a space, so a long token (an
 * attacker's, say) wraps in its table cell instead of widening the page. Codes and key ids stay whole.
 */
function tb(value: unknown): string {
  const s = visible(typeof value === 'string' ? value : String(value));
  return s
    .split(/(\s+)/)
    .map((run) => {
      const chars = Array.from(run);
      if (chars.length <= 40) return escapeHtml(run);
      const pieces: string[] = [];
      for (let i = 0; i < chars.length; i += 20) pieces.push(escapeHtml(chars.slice(i, i + 20).join('')));
      return pieces.join('<wbr>');
    })
    .join('');
}

/** Like {@link t}, cut to `max` code points (with `…`) for a chart label. */
function tShort(value: unknown, max = LABEL_MAX_CHARS): string {
  const chars = Array.from(visible(typeof value === 'string' ? value : String(value)));
  return escapeHtml(chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : chars.join(''));
}

/** Group an unsigned run of digits in threes with commas. */
function groupDigits(digits: string): string {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/**
 * A count with thousands separators (`12,345`), the same on every machine (no locale). A value
 * that is not a finite number is shown as it is, escaped.
 */
function n(value: unknown): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return t(value);
  if (Math.abs(value) >= 1e21) return t(String(value));
  const sign = value < 0 ? '-' : '';
  const abs = Math.abs(value);
  if (Number.isInteger(abs)) return sign + groupDigits(String(abs));
  const [whole, frac] = abs.toFixed(2).split('.');
  return `${sign}${groupDigits(whole ?? '0')}.${frac ?? '00'}`;
}

/** A count usable as a bar length: finite and non-negative, else 0. */
function magnitude(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0;
}

/** A coordinate for an SVG attribute: at most two decimals, no `-0`. */
function c(x: number): string {
  const r = Math.round(x * 100) / 100;
  return Object.is(r, -0) ? '0' : String(r);
}

/** Plural: `1 key`, `2 keys`. */
function plural(count: number, one: string, many = `${one}s`): string {
  return `${n(count)} ${count === 1 ? one : many}`;
}

/** A bucket width in words (`1 h`, `1 h 30 min`, `15 min`, `1 d`); deterministic. */
function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return `${n(ms)} ms`;
  const units: [number, string][] = [
    [86_400_000, 'd'],
    [3_600_000, 'h'],
    [60_000, 'min'],
    [1_000, 's'],
    [1, 'ms'],
  ];
  const parts: string[] = [];
  let rest = Math.round(ms);
  for (const [size, name] of units) {
    if (parts.length === 2) break;
    const q = Math.floor(rest / size);
    if (q > 0) {
      parts.push(`${n(q)} ${name}`);
      rest -= q * size;
    } else if (parts.length > 0) break;
  }
  return parts.length > 0 ? parts.join(' ') : `${n(ms)} ms`;
}

const ISO = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/**
 * A short form of an ISO 8601 time for chart labels (`2024-05-01 10:00 UTC`, or without ` UTC`
 * when `utcSaid`: the axis says it); anything else as it is, cut short. Escaped.
 */
function shortTime(iso: unknown, utcSaid = false): string {
  if (typeof iso !== 'string') return tShort(iso, 24);
  const m = ISO.exec(iso);
  if (!m) return tShort(iso, 24);
  const [, date, hm, sec, zone] = m;
  const secs = sec !== undefined && sec !== '00' ? `:${sec}` : '';
  const z = zone === undefined ? '' : zone === 'Z' ? (utcSaid ? '' : ' UTC') : ` ${zone}`;
  return t(`${date ?? ''} ${hm ?? ''}${secs}${z}`);
}

// ---------------------------------------------------------------------------------------------
// Page pieces
// ---------------------------------------------------------------------------------------------

/** A "none" line, so an empty section reads as empty rather than broken. */
function none(what: string): string {
  return `<p class="none"><strong>None:</strong> ${what}</p>`;
}

/** A table: header cells (a leading `#` marks a numeric column), body rows of ready HTML, an optional footer row. */
function table(id: string, caption: string, headers: readonly string[], rows: readonly (readonly string[])[], foot?: readonly string[], cls = ''): string {
  const numeric = headers.map((h) => h.startsWith('#'));
  const cell = (html: string, i: number, tag: 'td' | 'th') => `<${tag}${numeric[i] === true ? ' class="num"' : ''}>${html}</${tag}>`;
  const head = headers.map((h, i) => `<th scope="col"${numeric[i] === true ? ' class="num"' : ''}>${h.replace(/^#/, '')}</th>`).join('');
  const body = rows.map((r) => `<tr>${r.map((v, i) => cell(v, i, 'td')).join('')}</tr>`).join('\n');
  const footer = foot ? `<tfoot><tr>${foot.map((v, i) => cell(v, i, i === 0 ? 'th' : 'td')).join('')}</tr></tfoot>` : '';
  return `<table id="${id}"${cls ? ` class="${cls}"` : ''}><caption>${caption}</caption><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody>${footer}</table>`;
}

function sum<T>(rows: readonly T[], pick: (row: T) => unknown): number {
  let total = 0;
  for (const r of rows) total += magnitude(pick(r));
  return total;
}

function header(report: AuditReport, failed: readonly string[], disagreements: number): string {
  const from = report.range.from === undefined ? 'the first record' : `<time datetime="${t(report.range.from)}">${tb(report.range.from)}</time>`;
  const to = report.range.to === undefined ? 'open (no end)' : `<time datetime="${t(report.range.to)}">${tb(report.range.to)}</time>`;
  const alerts: string[] = [];
  if (failed.length > 0) {
    alerts.push(
      `<div class="alert alert-fail" role="alert" id="alert-verification"><span class="mark" aria-hidden="true">✗</span><div><strong>VERIFICATION FAILED:</strong> ${failed.join(' and ')} did not verify. The counts below come from a log that failed its check: treat them as unreliable until the findings are explained.</div></div>`,
    );
  }
  if (disagreements > 0) {
    alerts.push(
      `<div class="alert alert-warn" role="alert" id="alert-disagreements"><span class="mark" aria-hidden="true">⚠</span><div><strong>${plural(disagreements, 'disagreement')}</strong> between the keystore trail and the decision log: see <a href="#crosscheck">the cross-check</a>.</div></div>`,
    );
  }
  return `<header>
<h1>SMKI audit report</h1>
<p class="meta">Generated <time datetime="${t(report.generatedAt)}" id="generated-at">${tb(report.generatedAt)}</time>. Range: from <span id="range-from">${from}</span> to <span id="range-to">${to}</span>.</p>
${alerts.join('\n')}
</header>`;
}

function verificationCard(id: string, name: string, v: LogVerificationSummary): string {
  const ok = v.ok === true;
  const findings = v.findings ?? [];
  const status = ok
    ? `<p class="status status-ok"><span class="mark" aria-hidden="true">✓</span> Verified: the chain and every MAC check out.</p>`
    : `<p class="status status-fail"><span class="mark" aria-hidden="true">✗</span> FAILED: this log did not verify.</p>`;
  let list: string;
  if (findings.length > 0) {
    list = table(
      `${id}-findings`,
      `${ok ? 'Notes' : 'Findings'} (${n(findings.length)})`,
      ['Code', 'Message', '#Line'],
      findings.map((f) => [`<code>${tb(f.code)}</code>`, tb(f.message), f.line === undefined ? '—' : n(f.line)]),
      undefined,
      'findings',
    );
  } else {
    list = ok ? '' : `<p class="status-fail-note"><strong>No findings were recorded</strong> for this failure.</p>`;
  }
  return `<article class="card ${ok ? 'card-ok' : 'card-fail'}" id="${id}" data-ok="${ok ? 'true' : 'false'}">
<h3>${name}</h3>
${status}
<dl><dt>Source</dt><dd><code>${tb(v.source)}</code></dd><dt>Records read</dt><dd>${n(v.records)}</dd></dl>
${list}
</article>`;
}

function verificationSection(report: AuditReport): string {
  return `<section id="verification">
<h2>Verification</h2>
<div class="cards">
${verificationCard('verify-keystore', 'Keystore trail', report.keystoreTrail)}
${verificationCard('verify-decisions', 'Decision log', report.decisionLog)}
</div>
</section>`;
}

function crossCheckSection(x: CrossCheck): string {
  const d = x.disagreements ?? [];
  const summary = table(
    'crosscheck-summary',
    'Commands by where they are recorded',
    ['Where', '#Commands'],
    [
      ['Both logs, consistent (matched)', n(x.matched)],
      ['Keystore trail only', n(x.keystoreOnly)],
      ['Decision log only', n(x.decisionLogOnly)],
      [d.length > 0 ? '<strong>Both logs, disagreeing</strong>' : 'Both logs, disagreeing', d.length > 0 ? `<strong>${n(d.length)}</strong>` : n(0)],
    ],
  );
  const detail =
    d.length === 0
      ? none('no disagreements: every command both logs record, they record alike.')
      : `<div class="flagged"><p class="flag-title"><span class="mark" aria-hidden="true">⚠</span> <strong>${plural(d.length, 'disagreement')}</strong>: commands both logs record, differently.</p>
${table(
  'disagreements',
  `Disagreements (${n(d.length)})`,
  ['Device', 'Counter', 'Message code', 'Keystore trail says', 'Decision log says', 'Why flagged'],
  d.map((r) => [`<code>${tb(r.device)}</code>`, `<code>${tb(r.counter)}</code>`, `<code>${tb(r.messageCode)}</code>`, tb(r.keystore), tb(r.decisionLog), `<strong>${tb(r.issue)}</strong>`]),
  undefined,
  'disagreements',
)}</div>`;
  return `<section id="crosscheck">
<h2>Cross-check: keystore trail against decision log</h2>
${summary}
${detail}
</section>`;
}

function decisionsSection(rows: readonly DecisionCountRow[]): string {
  const body =
    rows.length === 0
      ? none('no decisions in the range.')
      : table(
          'decisions',
          'Decisions by outcome and code',
          ['Outcome', 'Code', '#Decisions'],
          rows.map((r) => [tb(r.outcome), `<code>${tb(r.code)}</code>`, n(r.count)]),
          ['Total', '', n(sum(rows, (r) => r.count))],
        );
  return `<section id="decisions-section">\n<h2>Decisions by outcome and code</h2>\n${body}\n</section>`;
}

function keyUseSection(rows: readonly KeyUseRow[]): string {
  const body =
    rows.length === 0
      ? none('no key was used to sign in the range.')
      : table(
          'key-use',
          'Signatures per key and message code',
          ['Organisation', 'Portfolio', 'Key', 'Message code', '#Signatures'],
          rows.map((r) => [tb(r.organisation), tb(r.portfolio), `<code>${tb(r.keyId)}</code>`, `<code>${tb(r.messageCode)}</code>`, n(r.uses)]),
          ['Total', '', '', '', n(sum(rows, (r) => r.uses))],
        );
  return `<section id="key-use-section">\n<h2>Key use per portfolio and message code</h2>\n${body}\n</section>`;
}

function exposureSection(rows: readonly ExposureRow[]): string {
  const body =
    rows.length === 0
      ? none('no keys in the keystore.')
      : `${table(
          'exposure',
          'Meters that trust each key (or are due to)',
          ['Organisation', 'Portfolio', 'Key', 'State', '#Meters'],
          rows.map((r) => [tb(r.organisation), tb(r.portfolio), `<code>${tb(r.keyId)}</code>`, tb(r.state), n(r.meters)]),
          ['Sum of rows', '', '', '', n(sum(rows, (r) => r.meters))],
        )}\n<p class="note">A meter that trusts several keys counts once for each.</p>`;
  return `<section id="exposure-section">\n<h2>Exposure: meters per key</h2>\n${body}\n</section>`;
}

// ---------------------------------------------------------------------------------------------
// Charts (inline SVG)
// ---------------------------------------------------------------------------------------------

/** The three outcomes the timeline counts, bottom to top, each with a fill that reads in greyscale too. */
const SERIES = [
  { key: 'accepted', label: 'Accepted', fill: '#0072b2', swatch: 'solid' },
  { key: 'rejected', label: 'Rejected', fill: 'url(#smki-pat-rejected)', swatch: 'diagonal stripes' },
  { key: 'quarantined', label: 'Quarantined', fill: 'url(#smki-pat-quarantined)', swatch: 'dots' },
] as const;

const PATTERNS = `<defs>
<pattern id="smki-pat-rejected" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)"><rect width="6" height="6" fill="#d55e00"/><rect width="2" height="6" fill="#ffffff"/></pattern>
<pattern id="smki-pat-quarantined" patternUnits="userSpaceOnUse" width="6" height="6"><rect width="6" height="6" fill="#e6b400"/><circle cx="3" cy="3" r="1.4" fill="#000000"/></pattern>
</defs>`;

/** A "nice" tick step (1, 2 or 5 × 10ᵏ) giving about `target` ticks up to `max`. */
function niceStep(max: number, target: number): number {
  if (max <= 0) return 1;
  const raw = max / target;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const f = raw / pow;
  const step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * pow;
  return Math.max(1, step);
}

interface Bar {
  readonly start: unknown;
  readonly buckets: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly quarantined: number;
}

/** The timeline as bars: one per bucket, or consecutive buckets summed when there are too many. */
function timelineBars(buckets: readonly TimelineBucket[]): { bars: Bar[]; perBar: number } {
  const perBar = Math.max(1, Math.ceil(buckets.length / TIMELINE_MAX_BARS));
  const bars: Bar[] = [];
  for (let i = 0; i < buckets.length; i += perBar) {
    const group = buckets.slice(i, i + perBar);
    bars.push({
      start: group[0]?.start,
      buckets: group.length,
      accepted: sum(group, (b) => b.accepted),
      rejected: sum(group, (b) => b.rejected),
      quarantined: sum(group, (b) => b.quarantined),
    });
  }
  return { bars, perBar };
}

function timelineChart(timeline: AuditReport['timeline']): string {
  const buckets = timeline.buckets ?? [];
  const width = duration(timeline.bucketMs);
  const heading = '<h3>Decisions over time, by outcome</h3>';
  if (buckets.length === 0) return `<figure class="chart" id="figure-timeline">${heading}${none('no time buckets: no decisions in the range to chart.')}</figure>`;
  const { bars, perBar } = timelineBars(buckets);
  const totals = { accepted: 0, rejected: 0, quarantined: 0 };
  for (const b of bars) for (const s of SERIES) totals[s.key] += b[s.key];
  const grand = totals.accepted + totals.rejected + totals.quarantined;
  if (grand === 0) {
    return `<figure class="chart" id="figure-timeline">${heading}${none(`no accepted, rejected or quarantined decisions in any of the ${plural(buckets.length, 'bucket')} of ${width}.`)}</figure>`;
  }

  // Tick labels drop " UTC" when every bar starts at a UTC time; the axis title says it once.
  const allUtc = bars.every((b) => typeof b.start === 'string' && ISO.test(b.start) && b.start.endsWith('Z'));
  const W = 900;
  const left = 84;
  const right = 24;
  const top = 16;
  const plotH = 260;
  const labelEvery = bars.length <= 24 ? 1 : Math.ceil(bars.length / 16);
  const bottom = 150;
  const H = top + plotH + bottom;
  const plotW = W - left - right;
  const slot = plotW / bars.length;
  const barW = Math.min(56, Math.max(1, slot * (bars.length > 60 ? 0.9 : 0.72)));
  const maxTotal = Math.max(...bars.map((b) => b.accepted + b.rejected + b.quarantined));
  const step = niceStep(maxTotal, 5);
  const yMax = Math.ceil(maxTotal / step) * step;
  const y = (v: number) => top + plotH - (v / yMax) * plotH;

  const grid: string[] = [];
  for (let v = 0; v <= yMax + step / 2; v += step) {
    grid.push(
      `<line class="grid" x1="${left}" x2="${W - right}" y1="${c(y(v))}" y2="${c(y(v))}"/><text class="tick" x="${left - 6}" y="${c(y(v) + 4)}" text-anchor="end">${n(v)}</text>`,
    );
  }

  const barsSvg: string[] = [];
  const xLabels: string[] = [];
  bars.forEach((b, i) => {
    const x = left + slot * i + (slot - barW) / 2;
    const total = b.accepted + b.rejected + b.quarantined;
    const span = b.buckets === 1 ? `bucket from ${shortTime(b.start)}` : `${n(b.buckets)} buckets from ${shortTime(b.start)}`;
    const tip = `${span}: ${n(b.accepted)} accepted, ${n(b.rejected)} rejected, ${n(b.quarantined)} quarantined`;
    let base = 0;
    const segs: string[] = [];
    for (const s of SERIES) {
      const v = b[s.key];
      if (v <= 0) continue;
      const y0 = y(base);
      const y1 = y(base + v);
      segs.push(`<rect class="seg seg-${s.key}" data-count="${v}" x="${c(x)}" y="${c(y1)}" width="${c(barW)}" height="${c(Math.max(0.5, y0 - y1))}" fill="${s.fill}"/>`);
      base += v;
    }
    barsSvg.push(`<g class="bar" data-total="${total}"><title>${tip}</title>${segs.join('')}</g>`);
    if (i % labelEvery === 0) {
      const lx = left + slot * i + slot / 2;
      const ly = top + plotH + 12;
      xLabels.push(`<line class="axis" x1="${c(lx)}" x2="${c(lx)}" y1="${top + plotH}" y2="${top + plotH + 4}"/><text class="tick xlabel" x="${c(lx)}" y="${ly}" text-anchor="end" transform="rotate(-45 ${c(lx)} ${ly})">${shortTime(b.start, allUtc)}</text>`);
    }
  });

  const legendY = H - 12;
  const legend = SERIES.map((s, i) => {
    const lx = left + i * 170;
    return `<g class="legend-item"><rect x="${lx}" y="${legendY - 11}" width="14" height="14" fill="${s.fill}" stroke="#000" stroke-width="0.6"/><text x="${lx + 20}" y="${legendY}">${s.label} (${n(totals[s.key])})</text></g>`;
  }).join('');

  const first = shortTime(bars[0]?.start);
  const last = shortTime(bars[bars.length - 1]?.start);
  const description = `Stacked bars of decisions over time: ${plural(bars.length, 'bar')}${perBar > 1 ? `, each ${n(perBar)} buckets of ${width}` : ` of ${width} each`}, from ${first} to ${last}; ${n(totals.accepted)} accepted (solid), ${n(totals.rejected)} rejected (stripes), ${n(totals.quarantined)} quarantined (dots).`;
  const note =
    perBar > 1
      ? `<p class="note" id="timeline-aggregated"><strong>Aggregated:</strong> ${plural(buckets.length, 'bucket')} of ${width} are drawn as ${plural(bars.length, 'bar')}, each the sum of ${n(perBar)} consecutive buckets (${duration(perBar * timeline.bucketMs)})${bars[bars.length - 1]?.buckets !== perBar ? `; the last bar sums ${n(bars[bars.length - 1]?.buckets ?? 0)}` : ''}.</p>`
      : '';

  return `<figure class="chart" id="figure-timeline">${heading}
<svg id="chart-timeline" role="img" aria-label="${description}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" preserveAspectRatio="xMinYMin meet">
<title>${description}</title>
${PATTERNS}
${grid.join('\n')}
<line class="axis" x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}"/><line class="axis" x1="${left}" x2="${W - right}" y1="${top + plotH}" y2="${top + plotH}"/>
<text class="axis-title" x="18" y="${top + plotH / 2}" text-anchor="middle" transform="rotate(-90 18 ${top + plotH / 2})">Decisions per ${perBar > 1 ? 'bar' : 'bucket'}</text>
${barsSvg.join('\n')}
${xLabels.join('\n')}
<text class="axis-title" x="${c(left + plotW / 2)}" y="${H - 36}" text-anchor="middle">${perBar > 1 ? 'Start of each bar' : 'Start of each bucket'}${allUtc ? ', UTC' : ''} (bucket ${width})</text>
${legend}
</svg>
<figcaption>Accepted (solid), rejected (stripes) and quarantined (dots) decisions per ${perBar > 1 ? 'bar' : 'bucket'}; hover a bar for its counts.</figcaption>
${note}
</figure>`;
}

function exposureChart(rows: readonly ExposureRow[]): string {
  const heading = '<h3>Meters exposed per key</h3>';
  if (rows.length === 0) return `<figure class="chart" id="figure-exposure">${heading}${none('no keys to chart.')}</figure>`;
  const ranked = rows.map((r, i) => ({ r, i, m: magnitude(r.meters) })).sort((a, b) => b.m - a.m || a.i - b.i);
  const shown = ranked.slice(0, EXPOSURE_MAX_BARS);
  const hidden = ranked.slice(EXPOSURE_MAX_BARS);
  const labels = shown.map(({ r }) => tShort(`${r.portfolio} / ${r.keyId}`));
  const labelChars = Math.max(8, ...shown.map(({ r }) => Math.min(LABEL_MAX_CHARS, Array.from(visible(`${r.portfolio} / ${r.keyId}`)).length)));

  const W = 900;
  const left = Math.min(400, Math.ceil(labelChars * 6.7) + 16);
  const right = 90;
  const top = 10;
  const rowH = 22;
  const plotW = W - left - right;
  const plotH = shown.length * rowH;
  const H = top + plotH + 56;
  const max = Math.max(...shown.map((s) => s.m));
  const step = niceStep(max, 5);
  const xMax = max === 0 ? 1 : Math.ceil(max / step) * step;
  const x = (v: number) => left + (v / xMax) * plotW;

  const grid: string[] = [];
  for (let v = 0; v <= xMax + step / 2; v += step) {
    grid.push(`<line class="grid" x1="${c(x(v))}" x2="${c(x(v))}" y1="${top}" y2="${top + plotH}"/><text class="tick" x="${c(x(v))}" y="${top + plotH + 16}" text-anchor="middle">${n(v)}</text>`);
  }
  const bars = shown.map(({ r, m }, i) => {
    const yy = top + i * rowH;
    const w = Math.max(m > 0 ? 1 : 0, x(m) - left);
    return `<g class="bar" data-meters="${m}"><title>${t(r.organisation)} / ${t(r.portfolio)} / ${t(r.keyId)} (${t(r.state)}): ${plural(m, 'meter')}</title><text class="label" x="${left - 8}" y="${yy + 15}" text-anchor="end">${labels[i] ?? ''}</text><rect x="${left}" y="${yy + 4}" width="${c(w)}" height="${rowH - 8}" fill="#0072b2"/><text class="value" x="${c(left + w + 6)}" y="${yy + 15}">${n(r.meters)}</text></g>`;
  });

  const description = `Horizontal bars of meters exposed per key: ${plural(shown.length, 'key')}${hidden.length > 0 ? ` (the ${n(shown.length)} with the most meters, of ${n(rows.length)})` : ''}, from ${n(shown[0]?.m ?? 0)} meters down to ${n(shown[shown.length - 1]?.m ?? 0)}.`;
  const note =
    hidden.length > 0
      ? `<p class="note" id="exposure-capped"><strong>Capped:</strong> the chart shows the ${n(shown.length)} keys trusted by the most meters, of ${n(rows.length)}; the other ${plural(hidden.length, 'key')} (${n(sum(hidden, (h) => h.m))} meters in all, at most ${n(hidden[0]?.m ?? 0)} for one key) are listed in the exposure table.</p>`
      : '';
  return `<figure class="chart" id="figure-exposure">${heading}
<svg id="chart-exposure" role="img" aria-label="${description}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" preserveAspectRatio="xMinYMin meet">
<title>${description}</title>
${grid.join('\n')}
<line class="axis" x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}"/>
${bars.join('\n')}
<text class="axis-title" x="${c(left + plotW / 2)}" y="${H - 12}" text-anchor="middle">Meters that trust the key (portfolio / key, count at the end of each bar)</text>
</svg>
${note}
</figure>`;
}

// ---------------------------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------------------------

const STYLE = `
:root { color-scheme: light; --fail: #b00020; --fail-bg: #fdecee; --ok: #1b6e3a; --ok-bg: #eaf6ee; --warn: #8a4b00; --warn-bg: #fff4e0; --rule: #c8ccd0; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0 auto; max-width: 1000px; padding: 24px; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "DejaVu Sans", sans-serif; color: #111; background: #fff; }
h1 { font-size: 1.8em; margin: 0 0 4px; }
h2 { font-size: 1.3em; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #111; }
h3 { font-size: 1.08em; margin: 0 0 8px; }
code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 0.92em; }
.meta { margin: 0 0 12px; color: #333; }
.alert { display: flex; gap: 12px; align-items: flex-start; margin: 12px 0; padding: 12px 16px; font-size: 1.05em; border: 4px solid; }
.alert .mark { font-size: 2em; line-height: 1; font-weight: 700; }
.alert-fail { color: var(--fail); background: var(--fail-bg); border-color: var(--fail); border-style: double; border-width: 6px; }
.alert-warn { color: var(--warn); background: var(--warn-bg); border-color: var(--warn); border-style: dashed; }
.alert a { color: inherit; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 16px; }
.card { padding: 12px 16px; border: 2px solid var(--rule); }
.card-ok { border-color: var(--ok); border-left-width: 8px; }
.card-fail { border: 4px double var(--fail); border-left-width: 12px; background: var(--fail-bg); }
.status { margin: 0 0 8px; font-weight: 700; font-size: 1.1em; }
.status .mark { font-size: 1.4em; }
.status-ok { color: var(--ok); }
.status-fail { color: var(--fail); text-transform: none; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0 0 8px; }
dt { font-weight: 600; }
dd { margin: 0; overflow-wrap: break-word; min-width: 0; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 12px; font-size: 0.93em; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border: 1px solid var(--rule); padding: 4px 8px; text-align: left; vertical-align: top; overflow-wrap: break-word; }
thead th { background: #eef0f2; border-bottom: 2px solid #555; }
tfoot th, tfoot td { border-top: 2px solid #555; font-weight: 700; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) { background: #f7f8f9; }
.flagged { border: 3px solid var(--fail); border-left-width: 10px; padding: 8px 12px; background: var(--fail-bg); }
.flag-title { margin: 0 0 4px; color: var(--fail); font-size: 1.05em; }
table.disagreements tbody tr { background: #fff; }
.none { padding: 8px 12px; border: 1px dashed #777; background: #f7f8f9; }
.note { font-size: 0.9em; color: #333; }
.chart { margin: 16px 0 24px; padding: 0; }
.chart svg { display: block; width: 100%; max-width: 900px; height: auto; }
figcaption { font-size: 0.9em; color: #333; }
svg text { font: 11px "DejaVu Sans", system-ui, sans-serif; fill: #111; }
svg .label { font-family: "DejaVu Sans Mono", ui-monospace, monospace; }
svg .axis-title { font-size: 12px; font-weight: 600; }
svg .legend-item text { font-size: 12px; }
svg .axis { stroke: #111; stroke-width: 1; }
svg .grid { stroke: #d5d8dc; stroke-width: 1; }
footer { margin-top: 32px; padding-top: 8px; border-top: 1px solid var(--rule); font-size: 0.85em; color: #444; }
@page { margin: 14mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  h2 { break-after: avoid; }
  .card, .alert, .chart, tr { break-inside: avoid; }
  thead { display: table-header-group; }
  a { color: inherit; text-decoration: none; }
}
`;

/**
 * Render an audit report as one self-contained HTML5 page, for an auditor to open offline, print
 * or file: the title with when it was made and the range; whether the keystore trail and the
 * decision log verified (a failure heads the page and lists its findings); the cross-check of the
 * two logs with every disagreement; decisions by outcome and code; key use per portfolio and
 * message code; meters exposed per key; and two inline SVG charts (decisions over time by
 * outcome, meters per key).
 *
 * Security: every string from the report is HTML-escaped (`& < > " '`) wherever it is placed, and
 * control and bidirectional-formatting characters are shown as `⟨U+XXXX⟩`, since the logs the
 * report is made from may hold attacker-chosen text. The page contains no script and loads
 * nothing (inline CSS, inline SVG, no fonts or images from anywhere), and its
 * Content-Security-Policy (`default-src 'none'; style-src 'unsafe-inline'; img-src data:`) would
 * block either if it crept in.
 *
 * Large inputs stay readable: past 120 timeline buckets, consecutive buckets are summed into at
 * most 120 bars, and the exposure chart shows the 40 keys with the most meters; the page says so
 * where it happens, and the tables always list every row. Empty sections say "None" instead of
 * drawing an empty chart.
 *
 * The function is pure: the same report gives the same bytes (no clock, no locale; numbers are
 * grouped with commas).
 *
 * @param report - The report's data, as `smki audit report` gathers it.
 * @returns The complete page, starting `<!DOCTYPE html>`; write it as UTF-8 (`smki audit report --html FILE` does).
 */
export function renderReportHtml(report: AuditReport): string {
  const failed: string[] = [];
  if (report.keystoreTrail.ok !== true) failed.push('the keystore trail');
  if (report.decisionLog.ok !== true) failed.push('the decision log');
  const disagreements = report.crossCheck.disagreements?.length ?? 0;
  const status = failed.length > 0 ? 'VERIFICATION FAILED - ' : disagreements > 0 ? 'DISAGREEMENTS - ' : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>${status}SMKI audit report, generated ${t(report.generatedAt)}</title>
<style>${STYLE}</style>
</head>
<body>
${header(report, failed, disagreements)}
<main>
${verificationSection(report)}
${crossCheckSection(report.crossCheck)}
${decisionsSection(report.decisions ?? [])}
${keyUseSection(report.keyUse ?? [])}
${exposureSection(report.exposure ?? [])}
<section id="charts">
<h2>Charts</h2>
${timelineChart(report.timeline)}
${exposureChart(report.exposure ?? [])}
</section>
</main>
<footer>This page is self-contained: it loads nothing from anywhere and runs no script. Text from the logs is shown escaped; invisible or reordering characters in it appear as ⟨U+XXXX⟩.</footer>
</body>
</html>
`;
}
