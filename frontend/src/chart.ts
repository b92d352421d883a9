// A small time-series chart rendered as SVG markup: scales, ticks and the winner highlighted.

export interface SeriesPoint {
  /** Acquisition time, ms since 1970-01-01. */
  time: number;
  value: number | null;
  label: string;
  winner: boolean;
}

export interface ChartOptions {
  title: string;
  color: string;
  width: number;
  height: number;
}

const MARGIN = { top: 18, right: 10, bottom: 20, left: 46 };
const DAY_MS = 86_400_000;

/** A linear map from domain to range; a degenerate domain maps everything to the range's middle. */
export function linearScale(
  domain: [number, number],
  range: [number, number],
): (value: number) => number {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  if (d0 === d1) return () => (r0 + r1) / 2;
  return (value) => r0 + ((value - d0) / (d1 - d0)) * (r1 - r0);
}

/** The 1, 2 or 5 × 10^k step nearest to `span / count` (on a log scale, as d3's ticks pick it). */
export function niceStep(span: number, count: number): number {
  const raw = span / Math.max(1, count);
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  const error = raw / power;
  const multiple = error >= Math.sqrt(50) ? 10 : error >= Math.sqrt(10) ? 5 : error >= Math.SQRT2 ? 2 : 1;
  return multiple * power;
}

/** Round tick values (multiples of a nice step) inside [min, max]. */
export function niceTicks(min: number, max: number, count = 4): number[] {
  if (min === max) return [min];
  const step = niceStep(max - min, count);
  const ticks: number[] = [];
  for (let k = Math.ceil(min / step); k * step <= max + step * 1e-9; k++) {
    ticks.push(Number((k * step).toPrecision(12)));
  }
  return ticks;
}

/** [min, max] of the values, widened by 5% (or ±1 around a single value); null if none. */
export function paddedExtent(values: number[]): [number, number] | null {
  if (values.length === 0) return null;
  const min = Math.min(...values);
  const max = Math.max(...values);
  if (min === max) return [min - 1, max + 1];
  const pad = (max - min) * 0.05;
  return [min - pad, max + pad];
}

/** A short label for a number: up to 4 significant digits, no exponent for usual magnitudes. */
export function formatValue(value: number): string {
  if (value === 0) return "0";
  const magnitude = Math.abs(value);
  if (magnitude >= 1e6 || magnitude < 1e-3) return value.toExponential(2);
  return String(Number(value.toPrecision(4)));
}

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function dateLabel(time: number): string {
  return new Date(time).toISOString().slice(5, 10);
}

/** The SVG markup of one series over time; points without a value are ticked on the time axis. */
export function seriesChart(points: SeriesPoint[], options: ChartOptions): string {
  const { width, height, title, color } = options;
  const left = MARGIN.left;
  const right = width - MARGIN.right;
  const top = MARGIN.top;
  const bottom = height - MARGIN.bottom;
  const times = points.map((point) => point.time);
  const valid = points.filter((point): point is SeriesPoint & { value: number } => point.value !== null);
  const first = times.length > 0 ? Math.min(...times) : 0;
  const last = times.length > 0 ? Math.max(...times) : DAY_MS;
  const timePad = Math.max(DAY_MS, (last - first) * 0.04); // keeps the end markers off the axes
  const timeDomain: [number, number] = [first - timePad, last + timePad];
  const valueDomain = paddedExtent(valid.map((point) => point.value)) ?? [0, 1];
  const x = linearScale(timeDomain, [left, right]);
  const y = linearScale(valueDomain, [bottom, top]);

  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${escapeXml(title)}">`,
    `<text class="chart-title" x="${left}" y="12">${escapeXml(title)}</text>`,
    `<line class="axis" x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}"/>`,
    `<line class="axis" x1="${left}" y1="${top}" x2="${left}" y2="${bottom}"/>`,
  ];
  for (const tick of niceTicks(valueDomain[0], valueDomain[1], 3)) {
    const ty = y(tick).toFixed(1);
    parts.push(
      `<line class="grid" x1="${left}" y1="${ty}" x2="${right}" y2="${ty}"/>`,
      `<text class="tick" x="${left - 4}" y="${ty}" text-anchor="end" dominant-baseline="middle">${formatValue(tick)}</text>`,
    );
  }
  const dayTicks = niceTicks(timeDomain[0] / DAY_MS, timeDomain[1] / DAY_MS, 4);
  for (const day of dayTicks) {
    const tx = x(day * DAY_MS).toFixed(1);
    parts.push(
      `<text class="tick" x="${tx}" y="${bottom + 14}" text-anchor="middle">${dateLabel(day * DAY_MS)}</text>`,
    );
  }
  const winner = points.find((point) => point.winner);
  if (winner) {
    const wx = x(winner.time).toFixed(1);
    parts.push(`<line class="winner-line" x1="${wx}" y1="${top}" x2="${wx}" y2="${bottom}"/>`);
  }
  if (valid.length > 1) {
    const path = valid.map((point) => `${x(point.time).toFixed(1)},${y(point.value).toFixed(1)}`);
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${path.join(" ")}"/>`);
  }
  for (const point of points) {
    const px = x(point.time).toFixed(1);
    const value = point.value === null ? "no data" : formatValue(point.value);
    const tip = `<title>${escapeXml(`${point.label}: ${value}`)}</title>`;
    if (point.value === null) {
      parts.push(`<circle class="nodata" cx="${px}" cy="${bottom}" r="2.5">${tip}</circle>`);
    } else if (point.winner) {
      parts.push(
        `<circle class="winner" cx="${px}" cy="${y(point.value).toFixed(1)}" r="5.5" fill="${color}">${tip}</circle>`,
      );
    } else {
      parts.push(`<circle cx="${px}" cy="${y(point.value).toFixed(1)}" r="3" fill="${color}">${tip}</circle>`);
    }
  }
  parts.push("</svg>");
  return parts.join("");
}
