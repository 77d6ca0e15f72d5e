/** Benchmark output: aligned terminal tables, Markdown for the README, and an SVG plot. */

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

export function markdownTable(headers: string[], rows: (string | number)[][]): string {
  return [
    `| ${headers.join(' | ')} |`,
    `|${headers.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** The README's measured tables live between these lines; `npm run bench -- --readme` replaces what is between them. */
export const README_MARKERS = ['<!-- bench:start (npm run bench -- --readme writes this part) -->', '<!-- bench:end -->'] as const;

/** `text` with what lies between README_MARKERS replaced by `md`; throws if the markers are missing. */
export function pasteBetweenMarkers(text: string, md: string): string {
  const [open, close] = README_MARKERS;
  const a = text.indexOf(open), b = text.indexOf(close);
  if (a < 0 || b < a) throw new Error(`no ${open} ... ${close} block to paste the tables into`);
  return `${text.slice(0, a + open.length)}\n${md.trimEnd()}\n${text.slice(b)}`;
}

export interface Series { name: string; color: string; points: { x: number; y: number }[] }

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A log-log line chart. */
export function svgChart(title: string, subtitle: string, xLabel: string, yLabel: string, series: Series[]): string {
  const W = 760, Hh = 460, left = 80, right = 170, top = 60, bottom = 60;
  const all = series.flatMap((s) => s.points).filter((p) => p.x > 0 && p.y > 0);
  if (all.length === 0) return '';
  const lx = (v: number) => Math.log10(v);
  const [x0, x1] = [Math.floor(lx(Math.min(...all.map((p) => p.x))) * 2) / 2, Math.ceil(lx(Math.max(...all.map((p) => p.x))) * 2) / 2];
  const [y0, y1] = [Math.floor(lx(Math.min(...all.map((p) => p.y)))), Math.ceil(lx(Math.max(...all.map((p) => p.y))))];
  const px = (v: number) => left + ((lx(v) - x0) / Math.max(1e-9, x1 - x0)) * (W - left - right);
  const py = (v: number) => Hh - bottom - ((lx(v) - y0) / Math.max(1e-9, y1 - y0)) * (Hh - top - bottom);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${Hh}" viewBox="0 0 ${W} ${Hh}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${Hh}" fill="white"/>`,
    `<text x="${left}" y="24" font-size="16" font-weight="bold">${esc(title)}</text>`,
    `<text x="${left}" y="42" fill="#555">${esc(subtitle)}</text>`,
  ];
  for (let e = y0; e <= y1; e++) {
    const y = py(10 ** e);
    out.push(`<line x1="${left}" x2="${W - right}" y1="${y}" y2="${y}" stroke="#ddd"/>`, `<text x="${left - 8}" y="${y + 4}" text-anchor="end">${10 ** e >= 1 ? (10 ** e).toLocaleString('en') : 10 ** e}</text>`);
  }
  const xs = [...new Set(all.map((p) => p.x))].sort((a, b) => a - b);
  for (const x of xs) {
    out.push(`<line x1="${px(x)}" x2="${px(x)}" y1="${top}" y2="${Hh - bottom}" stroke="#eee"/>`, `<text x="${px(x)}" y="${Hh - bottom + 18}" text-anchor="middle">${x}</text>`);
  }
  out.push(`<text x="${(left + W - right) / 2}" y="${Hh - 16}" text-anchor="middle">${esc(xLabel)}</text>`);
  out.push(`<text transform="translate(18 ${(top + Hh - bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => p.x > 0 && p.y > 0).sort((a, b) => a.x - b.x);
    if (pts.length === 0) return;
    out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2.5" points="${pts.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' ')}"/>`);
    for (const p of pts) out.push(`<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3.5" fill="${s.color}"/>`);
    const ly = top + 10 + i * 22;
    out.push(`<line x1="${W - right + 16}" x2="${W - right + 40}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="3"/>`, `<text x="${W - right + 46}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
