// The provenance layer's colour scale: acquisition dates (days since 1970-01-01) to palette colours.

/** Viridis, as hex colours for the server's `palette` parameter. */
export const DATE_PALETTE = ["440154", "3b528b", "21918c", "5ec962", "fde725"];

const DAY_MS = 86_400_000;

/** Days since 1970-01-01 (float), as the server's `_date` band counts them. */
export function isoToDays(iso: string): number {
  return Date.parse(iso) / DAY_MS;
}

/** The UTC calendar date (YYYY-MM-DD) of a day count. */
export function daysToDate(days: number): string {
  return new Date(Math.round(days * DAY_MS)).toISOString().slice(0, 10);
}

/** The colour scale's [min, max] for some acquisition times: whole days around them, never empty. */
export function dateRange(datetimes: (string | null)[]): [number, number] | null {
  const days = datetimes.filter((value): value is string => value !== null).map(isoToDays);
  const finite = days.filter(Number.isFinite);
  if (finite.length === 0) return null;
  const min = Math.floor(Math.min(...finite));
  const max = Math.ceil(Math.max(...finite));
  return [min, Math.max(max, min + 1)];
}

function channels(hex: string): [number, number, number] {
  const value = Number.parseInt(hex.replace(/^#/, ""), 16);
  return [(value >> 16) & 255, (value >> 8) & 255, value & 255];
}

function toHex(rgb: number[]): string {
  return `#${rgb.map((channel) => Math.round(channel).toString(16).padStart(2, "0")).join("")}`;
}

/** The colour at t in [0, 1] (clamped) of a palette with evenly spaced stops, linearly interpolated. */
export function paletteColor(palette: string[], t: number): string {
  if (palette.length === 1) return toHex(channels(palette[0]));
  const position = Math.max(0, Math.min(1, t)) * (palette.length - 1);
  const index = Math.min(Math.floor(position), palette.length - 2);
  const fraction = position - index;
  const from = channels(palette[index]);
  const to = channels(palette[index + 1]);
  return toHex(from.map((channel, i) => channel + (to[i] - channel) * fraction));
}

export interface LegendEntry {
  color: string;
  label: string;
}

/** The colour of a date (days) on the scale [min, max]. */
export function dateColor(palette: string[], range: [number, number], days: number): string {
  const [min, max] = range;
  return paletteColor(palette, (days - min) / (max - min));
}

/** One legend row per distinct acquisition date, in date order, coloured as the layer paints it. */
export function dateLegend(
  palette: string[],
  range: [number, number],
  datetimes: (string | null)[],
): LegendEntry[] {
  const dates = new Map<string, number>();
  for (const datetime of datetimes) {
    if (datetime === null) continue;
    const days = isoToDays(datetime);
    if (Number.isFinite(days) && !dates.has(daysToDate(days))) dates.set(daysToDate(days), days);
  }
  return [...dates.entries()]
    .sort((a, b) => a[1] - b[1])
    .map(([label, days]) => ({ label, color: dateColor(palette, range, days) }));
}

/** A CSS linear-gradient of the palette, for the legend's colour bar. */
export function paletteGradient(palette: string[]): string {
  return `linear-gradient(to right, ${palette.map((hex) => `#${hex}`).join(", ")})`;
}
