// The page's elements and the sidebar widgets that only display data.
import type { Item } from "./api";
import type { LegendEntry } from "./legend";

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} is missing from the page`);
  return found as T;
}

export const ui = {
  collection: element<HTMLSelectElement>("collection"),
  collectionInfo: element<HTMLParagraphElement>("collection-info"),
  layers: element<HTMLDivElement>("layers"),
  layerQuality: element<HTMLParagraphElement>("layer-quality"),
  itemPicker: element<HTMLDivElement>("item-picker"),
  itemSlider: element<HTMLInputElement>("item-slider"),
  itemPrev: element<HTMLButtonElement>("item-prev"),
  itemNext: element<HTMLButtonElement>("item-next"),
  itemLabel: element<HTMLParagraphElement>("item-label"),
  legend: element<HTMLDivElement>("legend"),
  legendBar: element<HTMLDivElement>("legend-bar"),
  legendDates: element<HTMLUListElement>("legend-dates"),
  preset: element<HTMLSelectElement>("preset"),
  quality: element<HTMLInputElement>("quality"),
  bands: element<HTMLInputElement>("bands"),
  bandsHint: element<HTMLParagraphElement>("bands-hint"),
  min: element<HTMLInputElement>("min"),
  max: element<HTMLInputElement>("max"),
  start: element<HTMLInputElement>("start"),
  end: element<HTMLInputElement>("end"),
  cloud: element<HTMLInputElement>("cloud"),
  cloudValue: element<HTMLOutputElement>("cloud-value"),
  itemCount: element<HTMLParagraphElement>("item-count"),
  basemap: element<HTMLInputElement>("basemap"),
  copyXyz: element<HTMLButtonElement>("copy-xyz"),
  copyWmts: element<HTMLButtonElement>("copy-wmts"),
  copyTileJson: element<HTMLButtonElement>("copy-tilejson"),
  copiedUrl: element<HTMLInputElement>("copied-url"),
  map: element<HTMLDivElement>("map"),
  error: element<HTMLDivElement>("error"),
  errorText: element<HTMLSpanElement>("error-text"),
  errorClose: element<HTMLButtonElement>("error-close"),
  zoomHint: element<HTMLDivElement>("zoom-hint"),
  zoomHintText: element<HTMLSpanElement>("zoom-hint-text"),
  zoomHintGo: element<HTMLButtonElement>("zoom-hint-go"),
  loading: element<HTMLDivElement>("loading"),
  inspector: element<HTMLDivElement>("inspector"),
  inspectorCoords: element<HTMLSpanElement>("inspector-coords"),
  inspectorBody: element<HTMLDivElement>("inspector-body"),
  inspectorClose: element<HTMLButtonElement>("inspector-close"),
};

/** Shows a message in the banner over the map; null hides it. */
export function showError(message: string | null): void {
  ui.errorText.textContent = message ?? "";
  ui.error.hidden = message === null;
}

/** The too-many-items hint under the map, asking to zoom in to `zoom` (with a button), or only to
 * narrow the dates if that is past the collection's `maxzoom`; null hides it. */
export function showZoomHint(zoom: number | null, maxzoom: number): void {
  ui.zoomHint.hidden = zoom === null;
  if (zoom === null) return;
  const reachable = zoom <= maxzoom;
  ui.zoomHintText.textContent = reachable
    ? `Too many items here: zoom in to ${zoom} or narrow the dates`
    : "Too many items here, even zoomed in: narrow the dates";
  ui.zoomHintGo.textContent = `Zoom to ${zoom}`;
  ui.zoomHintGo.hidden = !reachable;
}

/** The loading indicator; `data-loading` on the map lets tests wait for tiles. */
export function showBusy(busy: boolean): void {
  ui.loading.hidden = !busy;
  ui.map.dataset.loading = String(busy);
}

export function cloudLabel(cloud: number | null): string {
  return cloud === null ? "any" : `< ${cloud} %`;
}

/** The cloud-cover limit of the slider's value: its maximum (100) means no filter. */
export function cloudOf(value: number): number | null {
  return value >= 100 ? null : value;
}

/** The single-item slider at `index` of `items` (index -1: none). */
export function renderItemPicker(items: Item[], index: number): void {
  ui.itemSlider.max = String(Math.max(0, items.length - 1));
  ui.itemSlider.value = String(Math.max(0, index));
  ui.itemSlider.disabled = items.length < 2;
  ui.itemPrev.disabled = index <= 0;
  ui.itemNext.disabled = index < 0 || index >= items.length - 1;
  const item = items[index];
  if (!item) {
    ui.itemLabel.textContent = "No item matches the filters.";
    return;
  }
  const cloud = item.properties["eo:cloud_cover"];
  ui.itemLabel.textContent =
    `${index + 1}/${items.length} · ${(item.properties.datetime ?? "").slice(0, 10)} · ${item.id}` +
    (cloud === undefined ? "" : ` · cloud ${cloud} %`);
}

export function renderLegend(gradient: string, entries: LegendEntry[]): void {
  ui.legendBar.style.background = gradient;
  ui.legendDates.replaceChildren(
    ...entries.map((entry) => {
      const row = document.createElement("li");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = entry.color;
      row.append(swatch, entry.label);
      return row;
    }),
  );
}
