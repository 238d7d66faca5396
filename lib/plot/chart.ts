// Line charts as SVG (and PNG through sharp's librsvg), enough for the paper's figures: training error
// dashed and test error solid against iterations (Fig. 6), layer responses by depth (Fig. 7).
import { writeFileAtomic } from '../io/atomic';

export interface Series {
  label: string;
  points: [number, number][];
  dashed?: boolean;
  color?: string;
  markers?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  /** Show y as a percentage of 1 (0.25 -> 25%). */
  yPercent?: boolean;
  yMin?: number;
  yMax?: number;
}

const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#17becf',
  '#7f7f7f',
  '#bcbd22',
];

export function colorFor(i: number): string {
  return PALETTE[i % PALETTE.length];
}

function niceStep(span: number, count: number): number {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const m = raw / power;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * power;
}

function ticks(min: number, max: number, count: number): number[] {
  if (!(max > min)) return [min];
  const step = niceStep(max - min, count);
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

const escape = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function formatTick(v: number, percent: boolean): string {
  if (percent) return `${Number((v * 100).toPrecision(3))}%`;
  if (Math.abs(v) >= 1000) return `${Number((v / 1000).toPrecision(3))}k`;
  return String(Number(v.toPrecision(3)));
}

export function lineChart(series: Series[], o: ChartOptions): string {
  // The legend's column fits the longest label (about 7.5 px a character at 13 px); the image widens with it.
  const legend = Math.max(200, 60 + Math.ceil(7.5 * Math.max(0, ...series.map((s) => s.label.length))));
  const width = (o.width ?? 820) + legend - 200,
    height = o.height ?? 520;
  const m = { left: 72, right: legend, top: 48, bottom: 58 };
  const pw = width - m.left - m.right,
    ph = height - m.top - m.bottom;
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = all.map((p) => p[0]),
    ys = all.map((p) => p[1]);
  const xMin = Math.min(0, ...xs),
    xMax = Math.max(1, ...xs);
  let yMin = o.yMin ?? Math.min(...ys),
    yMax = o.yMax ?? Math.max(...ys);
  if (!Number.isFinite(yMin) || !Number.isFinite(yMax)) [yMin, yMax] = [0, 1];
  if (yMax === yMin) [yMin, yMax] = [yMin - 0.5, yMax + 0.5];
  const pad = (yMax - yMin) * 0.05;
  if (o.yMin === undefined) yMin = Math.max(o.yPercent ? 0 : -Infinity, yMin - pad);
  if (o.yMax === undefined) yMax += pad;
  const sx = (x: number) => m.left + ((x - xMin) / (xMax - xMin || 1)) * pw;
  const sy = (y: number) => m.top + ph - ((y - yMin) / (yMax - yMin)) * ph;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="13">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    // Centred on the whole image and shrunk to fit: a long title is not cut off at the edges.
    `<text x="${width / 2}" y="26" text-anchor="middle" font-size="${Math.min(16, (width - 24) / (o.title.length * 0.62)).toFixed(1)}" font-weight="bold">${escape(o.title)}</text>`,
  ];
  for (const t of ticks(yMin, yMax, 6)) {
    out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${sy(t)}" y2="${sy(t)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 8}" y="${sy(t) + 4}" text-anchor="end">${formatTick(t, !!o.yPercent)}</text>`);
  }
  for (const t of ticks(xMin, xMax, 8)) {
    out.push(`<line x1="${sx(t)}" x2="${sx(t)}" y1="${m.top + ph}" y2="${m.top + ph + 5}" stroke="#333"/>`);
    out.push(`<text x="${sx(t)}" y="${m.top + ph + 20}" text-anchor="middle">${formatTick(t, false)}</text>`);
  }
  out.push(`<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${m.left + pw / 2}" y="${height - 14}" text-anchor="middle">${escape(o.xLabel)}</text>`);
  out.push(
    `<text transform="translate(18 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${escape(o.yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const color = s.color ?? colorFor(i);
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    if (pts.length > 0) {
      const d = pts
        .map(([x, y], k) => `${k ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(Math.min(yMax, Math.max(yMin, y))).toFixed(1)}`)
        .join('');
      out.push(
        `<path d="${d}" fill="none" stroke="${color}" stroke-width="${s.dashed ? 1.4 : 2.2}"${s.dashed ? ' stroke-dasharray="5,4"' : ''}/>`,
      );
      if (s.markers)
        for (const [x, y] of pts)
          out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3" fill="${color}"/>`);
    }
    const ly = m.top + 12 + i * 20;
    out.push(
      `<line x1="${m.left + pw + 14}" x2="${m.left + pw + 44}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,4"' : ''}/>`,
    );
    out.push(`<text x="${m.left + pw + 50}" y="${ly + 4}">${escape(s.label)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

/** Writes `<base>.svg` and `<base>.png`; returns both paths. */
export async function writeChart(
  base: string,
  series: Series[],
  options: ChartOptions,
): Promise<{ svg: string; png: string }> {
  const svg = lineChart(series, options);
  await writeFileAtomic(`${base}.svg`, [svg]);
  const sharp = (await import('sharp')).default;
  const png = await sharp(Buffer.from(svg), { density: 96 }).png().toBuffer();
  await writeFileAtomic(`${base}.png`, [png]);
  return { svg: `${base}.svg`, png: `${base}.png` };
}
