/**
 * DER GeneralizedTime `YYYYMMDDHHMMSSZ` (UTC, whole seconds, no fraction; X.690 §11.7) and minimal
 * unsigned INTEGER contents, shared by the CS06 and CS02b codecs. Each codec reports failures
 * with its own words; these helpers only say whether the value is one.
 * @internal
 */

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/** Why a Date cannot be written as DER GeneralizedTime, or undefined when it can. */
export function generalizedTimeProblem(t: unknown): { readonly message: string; readonly detail?: string } | undefined {
  if (!(t instanceof Date) || Number.isNaN(t.getTime())) return { message: 'must be a valid Date' };
  const y = t.getUTCFullYear();
  if (y < 0 || y > 9999) return { message: 'must be in years 0000–9999', detail: String(y) };
  if (t.getUTCMilliseconds() !== 0) return { message: 'must be a whole second', detail: t.toISOString() };
  return undefined;
}

/** The 15 ASCII bytes of a Date that {@link generalizedTimeProblem} accepts. */
export function generalizedTimeBytes(t: Date): Uint8Array {
  const s = `${pad(t.getUTCFullYear(), 4)}${pad(t.getUTCMonth() + 1, 2)}${pad(t.getUTCDate(), 2)}${pad(t.getUTCHours(), 2)}${pad(t.getUTCMinutes(), 2)}${pad(t.getUTCSeconds(), 2)}Z`;
  return Uint8Array.from(s, (ch) => ch.charCodeAt(0));
}

const DIGITS = /^[0-9]{14}Z$/;

/**
 * The time the contents of a GeneralizedTime say: `'form'` unless exactly `YYYYMMDDHHMMSSZ`,
 * `'calendar'` unless a real calendar time (no 31 February), else the Date.
 */
export function readGeneralizedTime(bytes: Uint8Array): Date | { readonly problem: 'form' | 'calendar'; readonly text: string } {
  const s = bytes.length === 15 ? String.fromCharCode(...bytes) : '';
  if (!DIGITS.test(s)) return { problem: 'form', text: s };
  const [y, mo, d, h, mi, sec] = [s.slice(0, 4), s.slice(4, 6), s.slice(6, 8), s.slice(8, 10), s.slice(10, 12), s.slice(12, 14)].map(Number) as [number, number, number, number, number, number];
  const t = new Date(0);
  t.setUTCFullYear(y, mo - 1, d); // setUTCFullYear, not Date.UTC: years 0–99 must not become 19xx
  t.setUTCHours(h, mi, sec, 0);
  const ok = t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === d && t.getUTCHours() === h && t.getUTCMinutes() === mi && t.getUTCSeconds() === sec;
  return ok ? t : { problem: 'calendar', text: s };
}

/** The contents of a non-negative INTEGER in minimal two's complement (a leading 00 when the top bit is set). */
export function unsignedContents(v: bigint): Uint8Array {
  const bytes: number[] = [];
  let x = v;
  do {
    bytes.unshift(Number(x & 0xffn));
    x >>= 8n;
  } while (x > 0n);
  if ((bytes[0] as number) & 0x80) bytes.unshift(0);
  return Uint8Array.from(bytes);
}
