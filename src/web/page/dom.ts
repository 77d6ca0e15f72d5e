/**
 * The page's DOM helpers and number formats. Text from data (corpora, files, samples, adapter
 * names, messages quoting them) only ever reaches the DOM through textContent: `el` sets text,
 * never markup.
 */

export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page is missing #${id}`);
  return el as T;
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

/** An <option> whose label is text. */
export function option(value: string, label = value): HTMLOptionElement {
  const o = el('option', label);
  o.value = value;
  return o;
}

const nf = new Intl.NumberFormat('en-US');
export const fmtInt = (n: number) => nf.format(Math.round(n));
export const fmtLoss = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(3));

export function fmtRate(n: number): string {
  if (!Number.isFinite(n) || n <= 0) return '–';
  return n >= 100 ? fmtInt(n) : n.toFixed(n >= 10 ? 1 : 2);
}

export function fmtTime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

export function fmtParams(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)} k` : String(n);
}

export const fmtTemperature = (t: number) => (t === 0 ? '0 (argmax)' : t.toFixed(2));
