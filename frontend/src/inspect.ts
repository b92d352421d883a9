// The pixel inspector: the winning item at a point and its quality and band series over time.
import type { PointResult } from "./api";
import { escapeXml, formatValue, type SeriesPoint, seriesChart } from "./chart";

const CHART_SIZE = { width: 340, height: 130 };

/** The series of one value ("quality" or a band name) over the point's items, winner flagged. */
export function seriesOf(result: PointResult, key: string): SeriesPoint[] {
  return result.items
    .filter((item) => item.datetime !== null)
    .map((item) => ({
      time: Date.parse(item.datetime as string),
      value: key === "quality" ? item.quality : (item.values[key] ?? null),
      label: `${item.id} (${(item.datetime as string).slice(0, 10)})`,
      winner: result.winner?.id === item.id,
    }));
}

function bandOptions(bands: string[], selected: string): string {
  return bands
    .map((band) => {
      const attributes = band === selected ? " selected" : "";
      return `<option value="${escapeXml(band)}"${attributes}>${escapeXml(band)}</option>`;
    })
    .join("");
}

/** The inspector's HTML for a point result, charting `band` (one of `bands`). */
export function inspectionHtml(result: PointResult, bands: string[], band: string): string {
  const winner = result.winner;
  const head = winner
    ? `<p class="winner-info">Winner: <strong id="winner-id">${escapeXml(winner.id)}</strong>` +
      ` <span class="hint">#${winner.index} · ${escapeXml((winner.datetime ?? "").slice(0, 10))}</span></p>`
    : `<p class="winner-info">No item has a valid quality here.</p>`;
  const values = Object.entries(result.values)
    .map(([name, value]) => `<span>${escapeXml(name)}: ${value === null ? "–" : formatValue(value)}</span>`)
    .join(" ");
  const charts =
    seriesChart(seriesOf(result, "quality"), { ...CHART_SIZE, title: "quality", color: "#c2410c" }) +
    seriesChart(seriesOf(result, band), { ...CHART_SIZE, title: band, color: "#1d4ed8" });
  return (
    head +
    (values ? `<p class="values">${values}</p>` : "") +
    `<label class="chart-band">Chart band <select id="chart-band">${bandOptions(bands, band)}</select></label>` +
    `<div class="charts">${charts}</div>` +
    `<p class="hint">${result.items.length} items; the large dot and line mark the winner.</p>`
  );
}
