// Renders the store onto the page: each part is redrawn only when the values it shows change.
import type { Collection } from "./api";
import { BAKED_PREFIX } from "./baked";
import { cloudLabel, renderItemPicker, renderLegend, showBusy, showError, showZoomHint, ui } from "./dom";
import { inspectionHtml } from "./inspect";
import { DATE_PALETTE, dateLegend, paletteGradient } from "./legend";
import {
  currentItem,
  type Inspection,
  isBusy,
  presetKey,
  provenanceRange,
  type ViewerModel,
} from "./model";
import { layerQuality } from "./params";
import type { ViewState } from "./state";
import type { Store } from "./store";

/** Whether the form must be redrawn for a new state. Not when only the map view changed: a pan
 * would overwrite a value being typed. A new state from an edit is redrawn even if equal, which
 * normalises what was typed (e.g. "1e3" becomes "1000"). */
function controlsChanged(previous: ViewState | null, current: ViewState | null): boolean {
  if (previous === current) return false;
  if (!previous || !current || previous.view === current.view) return true;
  return (Object.keys(current) as (keyof ViewState)[]).some(
    (key) => key !== "view" && current[key] !== previous[key],
  );
}

function renderCollections(model: ViewerModel): void {
  ui.collection.replaceChildren(
    ...model.collections.map((entry) => new Option(entry.title ?? entry.id, entry.id)),
  );
}

function renderCollection(collection: Collection, missing: string | null): void {
  const [first, last] = collection.datetime.map((value) => (value ?? "").slice(0, 10));
  const notice = missing === null ? "" : `No collection "${missing}". `;
  ui.collectionInfo.textContent = `${notice}${collection.item_count} items, ${first} – ${last}`;
  const outputs = collection.output_bands ?? [...collection.bands, "quality", "_index", "_date"];
  ui.bandsHint.textContent = `Available: ${outputs.join(", ")}`;
  ui.preset.replaceChildren(new Option("(custom)", ""));
  for (const [key, render] of Object.entries(collection.renders ?? {})) {
    ui.preset.add(new Option(`${render.title ?? key} — ${render.quality}`, key));
  }
  for (const [name, layer] of Object.entries(collection.baked ?? {})) {
    const label = `${layer.title ?? name} — every zoom — ${layer.quality}`;
    ui.preset.add(new Option(label, `${BAKED_PREFIX}${name}`));
  }
  for (const input of [ui.start, ui.end]) {
    input.min = first;
    input.max = last;
  }
}

function renderControls(state: ViewState, collection: Collection): void {
  ui.collection.value = collection.id;
  for (const input of ui.layers.querySelectorAll<HTMLInputElement>("input[name=layer]")) {
    input.checked = input.value === state.layer;
  }
  ui.layerQuality.textContent = `Ranked by: ${layerQuality(state.layer, state, collection)}`;
  ui.preset.value = presetKey(state, collection);
  // The expression and band fields keep what is being typed (applied on Enter or blur).
  if (document.activeElement !== ui.quality) ui.quality.value = state.quality;
  if (document.activeElement !== ui.bands) ui.bands.value = state.bands.join(",");
  ui.min.value = String(state.min);
  ui.max.value = String(state.max);
  ui.start.value = state.start;
  ui.end.value = state.end;
  ui.cloud.value = String(state.cloud ?? 100);
  ui.cloudValue.textContent = cloudLabel(state.cloud);
  ui.basemap.checked = state.basemap;
  ui.itemPicker.hidden = state.layer !== "item";
  ui.legend.hidden = state.layer !== "provenance";
}

/** The single-item picker and the provenance legend (both depend on the matching items). */
function renderItemWidgets(model: ViewerModel): void {
  const { items } = model;
  const item = currentItem(model);
  renderItemPicker(items, item ? items.indexOf(item) : -1);
  const datetimes = items.map((entry) => entry.properties.datetime);
  const legend = dateLegend(DATE_PALETTE, provenanceRange(model), datetimes);
  renderLegend(paletteGradient(DATE_PALETTE), legend);
}

function renderInspector(inspection: Inspection | null): void {
  if (!inspection) {
    ui.inspector.hidden = true;
    return;
  }
  const [lon, lat] = inspection.lonLat;
  ui.inspector.hidden = false;
  ui.inspectorCoords.textContent = `${lon.toFixed(5)}, ${lat.toFixed(5)}`;
  // While loading, the previous answer stays until the new one replaces it.
  if (inspection.status === "ready") {
    ui.inspectorBody.innerHTML = inspectionHtml(inspection.result, inspection.bands, inspection.band);
  } else if (inspection.status === "error") {
    ui.inspectorBody.textContent = inspection.message;
  }
  ui.inspector.dataset.state = inspection.status;
}

/** Draws what changed between two models (everything when `previous` is null). */
export function render(model: ViewerModel, previous: ViewerModel | null): void {
  const changed = <K extends keyof ViewerModel>(...keys: K[]): boolean =>
    previous === null || keys.some((key) => model[key] !== previous[key]);
  const { collection, state } = model;

  if (previous === null || isBusy(model) !== isBusy(previous)) showBusy(isBusy(model));
  if (changed("error")) showError(model.error);
  if (changed("zoomHint", "collection")) showZoomHint(model.zoomHint, collection?.maxzoom ?? Infinity);
  if (changed("collections")) renderCollections(model);
  const collectionChanged = changed("collection", "missingCollection");
  if (collection && collectionChanged) renderCollection(collection, model.missingCollection);
  if (collection && state && (collectionChanged || controlsChanged(previous?.state ?? null, state))) {
    renderControls(state, collection);
  }
  if (collection && (changed("collection", "items") || state?.item !== previous?.state?.item)) {
    renderItemWidgets(model);
  }
  if (changed("matched") && model.matched) {
    ui.itemCount.textContent = `${model.matched.count} of ${model.matched.total} items match.`;
  }
  if (changed("applied")) {
    // The tile template on the map: the end-to-end test waits for it.
    if (model.applied) ui.map.dataset.tiles = model.applied;
    else delete ui.map.dataset.tiles;
  }
  if (changed("inspection")) renderInspector(model.inspection);
}

/** Renders the store now and after each change. */
export function renderViews(store: Store<ViewerModel>): void {
  render(store.get(), null);
  store.subscribe(render);
}
