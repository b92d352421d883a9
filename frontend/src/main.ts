// The viewer: keeps the state (mirrored in the URL hash), validates and shows the chosen layer,
// and inspects clicked pixels.
import "maplibre-gl/dist/maplibre-gl.css";
import "./style.css";
import maplibregl from "maplibre-gl";
import {
  ApiError,
  type Collection,
  checkTile,
  errorMessage,
  fetchCollection,
  fetchCollections,
  fetchItems,
  fetchPoint,
  type Item,
} from "./api";
import {
  cloudLabel,
  renderItemPicker,
  renderLegend,
  showBusy,
  showError,
  ui,
} from "./dom";
import { inspectionHtml } from "./inspect";
import { createMap, MOSAIC, probeTile, removeMosaic, setBasemap, setMosaic } from "./layers";
import { DATE_PALETTE, dateLegend, dateRange, paletteGradient } from "./legend";
import { decodeState, encodeState, type LayerKind, resolveState, type ViewState } from "./state";
import {
  collectionsUrl,
  collectionUrl,
  filtersOf,
  itemsUrl,
  layerParams,
  layerQuality,
  pointUrl,
  type TileParams,
  tileJsonUrl,
  tileTemplate,
  wmtsUrl,
} from "./urls";

const ORIGIN = window.location.origin;
const ITEM_LIMIT = 1000;
const APPLY_DELAY_MS = 250;

const map = createMap(ui.map);
const marker = new maplibregl.Marker({ color: "#c2410c" });

let collection: Collection | null = null;
let state: ViewState | null = null;
/** The collection's items that pass the state's filters, in collection order. */
let items: Item[] = [];
/** The tile URL template on the map, null if none. */
let applied: string | null = null;
let applySeq = 0;
let applyTimer: number | undefined;
let starting = true;
let checking = false;
let tilesLoading = false;
let checkAbort: AbortController | null = null;
let itemsAbort: AbortController | null = null;
let pointAbort: AbortController | null = null;
let inspected: [number, number] | null = null;

// ---------------------------------------------------------------- feedback

function describe(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof TypeError) return `Cannot reach the server (${error.message}).`;
  return error instanceof Error ? error.message : String(error);
}

function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === "AbortError";
}

function setBusy(): void {
  showBusy(starting || checking || tilesLoading);
}

function setChecking(value: boolean): void {
  checking = value;
  setBusy();
}

/** Shows a map error; a tile's HTTP error with the server's `detail` (from MapLibre's AJAXError). */
async function showMapError(
  error: { message: string; name?: string; status?: number; body?: Blob },
  sourceId: string | undefined,
): Promise<void> {
  if (error.name === "AbortError") return;
  const prefix = sourceId === MOSAIC ? "Tile error" : sourceId ? `${sourceId} error` : "Map error";
  if (!error.status || !(error.body instanceof Blob)) {
    showError(`${prefix}: ${error.message}`);
    return;
  }
  let body: unknown = null;
  try {
    body = JSON.parse(await error.body.text());
  } catch {
    body = null;
  }
  showError(`${prefix}: ${errorMessage(body, error.status)}`);
}

// ---------------------------------------------------------------- state

function writeHash(): void {
  if (state) history.replaceState(null, "", `#${encodeState(state)}`);
}

function update(patch: Partial<ViewState>): void {
  if (!state) return;
  const filtersChanged = ["start", "end", "cloud"].some((key) => key in patch);
  state = { ...state, ...patch };
  writeHash();
  renderControls();
  if (filtersChanged) void refreshItems();
  else scheduleApply();
  if (inspected) void inspect(inspected);
}

function currentItem(): Item | undefined {
  return items.find((item) => item.id === state?.item) ?? items[0];
}

/** The provenance colour scale: the filtered items' dates, else the collection's. */
function provenanceRange(): [number, number] {
  return (
    dateRange(items.map((item) => item.properties.datetime)) ??
    dateRange(collection?.datetime ?? []) ?? [0, 1]
  );
}

function currentParams(): TileParams | null {
  if (!collection || !state) return null;
  return layerParams(state, collection, {
    dateRange: provenanceRange(),
    palette: DATE_PALETTE,
    itemId: currentItem()?.id,
  });
}

// ---------------------------------------------------------------- controls

/** The render preset matching the state's quality (and bands, if several share the quality). */
function presetKey(current: ViewState, target: Collection): string {
  const matches = Object.entries(target.renders ?? {}).filter(
    ([, render]) => render.quality === current.quality,
  );
  const exact = matches.find(([, render]) => render.bands?.join(",") === current.bands.join(","));
  return (exact ?? matches[0])?.[0] ?? "";
}

function renderControls(): void {
  if (!collection || !state) return;
  const current = state;
  ui.collection.value = collection.id;
  for (const input of ui.layers.querySelectorAll<HTMLInputElement>("input[name=layer]")) {
    input.checked = input.value === current.layer;
  }
  ui.layerQuality.textContent = `Ranked by: ${layerQuality(current.layer, current, collection)}`;
  ui.preset.value = presetKey(current, collection);
  if (document.activeElement !== ui.quality) ui.quality.value = current.quality;
  if (document.activeElement !== ui.bands) ui.bands.value = current.bands.join(",");
  ui.min.value = String(current.min);
  ui.max.value = String(current.max);
  ui.start.value = current.start;
  ui.end.value = current.end;
  ui.cloud.value = String(current.cloud ?? 100);
  ui.cloudValue.textContent = cloudLabel(current.cloud);
  ui.basemap.checked = current.basemap;
  ui.itemPicker.hidden = current.layer !== "item";
  ui.legend.hidden = current.layer !== "provenance";
}

function renderCollection(target: Collection): void {
  const [first, last] = target.datetime.map((value) => (value ?? "").slice(0, 10));
  ui.collectionInfo.textContent = `${target.item_count} items, ${first} – ${last}`;
  const outputs = target.output_bands ?? [...target.bands, "quality", "_index", "_date"];
  ui.bandsHint.textContent = `Available: ${outputs.join(", ")}`;
  ui.preset.replaceChildren(new Option("(custom)", ""));
  for (const [key, render] of Object.entries(target.renders ?? {})) {
    ui.preset.add(new Option(`${render.title ?? key} — ${render.quality}`, key));
  }
  for (const input of [ui.start, ui.end]) {
    input.min = first;
    input.max = last;
  }
}

function renderItemWidgets(): void {
  const item = currentItem();
  renderItemPicker(items, item ? items.indexOf(item) : -1);
  const datetimes = items.map((entry) => entry.properties.datetime);
  renderLegend(paletteGradient(DATE_PALETTE), dateLegend(DATE_PALETTE, provenanceRange(), datetimes));
}

// ---------------------------------------------------------------- layers

function scheduleApply(): void {
  window.clearTimeout(applyTimer);
  applyTimer = window.setTimeout(() => void applyLayer(), APPLY_DELAY_MS);
}

/** Validates the state's layer with one tile request, then shows it (or the server's message). */
async function applyLayer(): Promise<void> {
  if (!collection) return;
  renderItemWidgets();
  const seq = ++applySeq;
  checkAbort?.abort();
  const params = currentParams();
  if (!params) {
    removeMosaic(map);
    applied = null;
    delete ui.map.dataset.tiles;
    setChecking(false);
    showError("No item matches the filters.");
    return;
  }
  const template = tileTemplate(ORIGIN, collection.id, params);
  if (template === applied) {
    setChecking(false);
    showError(null);
    return;
  }
  const abort = new AbortController();
  checkAbort = abort;
  setChecking(true);
  let failure: unknown = null;
  try {
    await checkTile(probeTile(map, collection, template), abort.signal);
  } catch (error) {
    failure = error;
  }
  if (seq !== applySeq) return; // superseded: the newer call owns the indicator and the map
  setChecking(false);
  if (failure) {
    showError(describe(failure));
    return;
  }
  showError(null);
  setMosaic(map, collection, template);
  applied = template;
  ui.map.dataset.tiles = template;
  tilesLoading = true;
  setBusy();
}

async function refreshItems(): Promise<void> {
  if (!collection || !state) return;
  itemsAbort?.abort();
  const abort = new AbortController();
  itemsAbort = abort;
  try {
    const url = itemsUrl(ORIGIN, collection.id, filtersOf(state), ITEM_LIMIT);
    items = await fetchItems(url, abort.signal);
    ui.itemCount.textContent = `${items.length} of ${collection.item_count} items match.`;
  } catch (error) {
    if (isAbort(error)) return;
    items = [];
    showError(`Items: ${describe(error)}`);
    return;
  }
  void applyLayer();
}

// ---------------------------------------------------------------- inspector

function chartBand(current: ViewState, target: Collection): string {
  const bands = target.bands;
  if (bands.includes(current.chartBand)) return current.chartBand;
  return current.bands.find((band) => bands.includes(band)) ?? bands[0] ?? "";
}

async function inspect(lonLat: [number, number]): Promise<void> {
  if (!collection || !state) return;
  inspected = lonLat;
  const [lon, lat] = lonLat;
  marker.setLngLat(lonLat).addTo(map);
  ui.inspector.hidden = false;
  ui.inspectorCoords.textContent = `${lon.toFixed(5)}, ${lat.toFixed(5)}`;
  ui.inspector.dataset.state = "loading";
  pointAbort?.abort();
  const abort = new AbortController();
  pointAbort = abort;
  const band = chartBand(state, collection);
  const url = pointUrl(ORIGIN, collection.id, lon, lat, {
    quality: layerQuality(state.layer, state, collection),
    bands: [...new Set([...state.bands, band])],
    ...filtersOf(state),
  });
  try {
    const result = await fetchPoint(url, abort.signal);
    ui.inspectorBody.innerHTML = inspectionHtml(result, collection.bands, band);
    ui.inspector.dataset.state = "ready";
  } catch (error) {
    if (isAbort(error)) return;
    ui.inspectorBody.textContent = describe(error);
    ui.inspector.dataset.state = "error";
  }
}

function closeInspector(): void {
  pointAbort?.abort();
  inspected = null;
  marker.remove();
  ui.inspector.hidden = true;
}

// ---------------------------------------------------------------- collections

async function openCollection(id: string, partial: Partial<ViewState>): Promise<void> {
  const target = await fetchCollection(collectionUrl(ORIGIN, id));
  collection = target;
  state = resolveState(partial, target);
  items = [];
  removeMosaic(map);
  applied = null;
  closeInspector();
  renderCollection(target);
  const view = state.view;
  if (view) map.jumpTo({ center: [view.lon, view.lat], zoom: view.zoom });
  else map.jumpTo({ center: [target.center[0], target.center[1]], zoom: target.center[2] });
  setBasemap(map, state.basemap);
  renderControls();
  writeHash();
  await refreshItems();
}

/** Applies the URL hash: on load, and when the user edits it or pastes a shared link. */
async function restoreFromHash(): Promise<void> {
  const partial = decodeState(window.location.hash);
  if (collection && state && (partial.collection ?? collection.id) === collection.id) {
    const restored = resolveState(partial, collection);
    if (encodeState(restored) === encodeState(state)) return;
    const filtersChanged = ["start", "end", "cloud"].some(
      (key) => restored[key as keyof ViewState] !== state?.[key as keyof ViewState],
    );
    state = restored;
    if (restored.view) {
      map.jumpTo({ center: [restored.view.lon, restored.view.lat], zoom: restored.view.zoom });
    }
    setBasemap(map, restored.basemap);
    renderControls();
    if (filtersChanged) await refreshItems();
    else scheduleApply();
    return;
  }
  const known = [...ui.collection.options].map((option) => option.value);
  const wanted = partial.collection;
  const id = wanted && known.includes(wanted) ? wanted : known[0];
  if (!id) {
    showError("The server has no collections.");
    return;
  }
  await openCollection(id, id === wanted ? partial : {});
  if (wanted && wanted !== id) {
    ui.collectionInfo.textContent = `No collection "${wanted}". ${ui.collectionInfo.textContent}`;
  }
}

// ---------------------------------------------------------------- events

/** Copies a URL of the current layer (shown too, for browsers without clipboard access). */
function copyUrl(button: HTMLButtonElement, build: (id: string, params: TileParams) => string): void {
  const params = currentParams();
  if (!collection || !params) return;
  const url = build(collection.id, params);
  ui.copiedUrl.hidden = false;
  ui.copiedUrl.value = url;
  ui.copiedUrl.select();
  const label = button.textContent;
  const done = (text: string) => {
    button.textContent = text;
    window.setTimeout(() => (button.textContent = label), 1500);
  };
  if (!navigator.clipboard) {
    done("Copy it below");
    return;
  }
  navigator.clipboard.writeText(url).then(
    () => done("Copied"),
    () => done("Copy it below"),
  );
}

/** Editing the quality expression while viewing best or worst switches to the custom layer. */
function customLayer(current: ViewState): LayerKind {
  return current.layer === "best" || current.layer === "worst" ? "custom" : current.layer;
}

function bindControls(): void {
  ui.collection.addEventListener("change", () => {
    const keep: Partial<ViewState> = state ? { layer: state.layer, basemap: state.basemap } : {};
    openCollection(ui.collection.value, keep).catch((error) => showError(describe(error)));
  });
  ui.layers.addEventListener("change", (event) => {
    const input = event.target as HTMLInputElement;
    if (input.name === "layer") update({ layer: input.value as LayerKind });
  });
  ui.preset.addEventListener("change", () => {
    const render = collection?.renders?.[ui.preset.value];
    if (!render || !state) return;
    update({
      layer: customLayer(state),
      quality: render.quality,
      bands: render.bands ?? state.bands,
      min: render.min ?? state.min,
      max: render.max ?? state.max,
    });
  });
  ui.quality.addEventListener("change", () => {
    const quality = ui.quality.value.trim();
    if (quality && state) update({ quality, layer: customLayer(state) });
  });
  ui.bands.addEventListener("change", () => {
    const bands = ui.bands.value.split(",").map((band) => band.trim()).filter(Boolean);
    if (bands.length) update({ bands });
  });
  for (const [input, key] of [[ui.min, "min"], [ui.max, "max"]] as const) {
    input.addEventListener("change", () => {
      if (Number.isFinite(input.valueAsNumber)) update({ [key]: input.valueAsNumber });
    });
  }
  ui.start.addEventListener("change", () => update({ start: ui.start.value }));
  ui.end.addEventListener("change", () => update({ end: ui.end.value }));
  const cloudOf = (): number | null => (ui.cloud.valueAsNumber >= 100 ? null : ui.cloud.valueAsNumber);
  ui.cloud.addEventListener("input", () => (ui.cloudValue.textContent = cloudLabel(cloudOf())));
  ui.cloud.addEventListener("change", () => update({ cloud: cloudOf() }));
  const pickItem = (index: number) => {
    const item = items[Math.max(0, Math.min(items.length - 1, index))];
    if (item) update({ item: item.id });
  };
  const currentIndex = () => items.indexOf(currentItem() as Item);
  ui.itemSlider.addEventListener("input", () => pickItem(ui.itemSlider.valueAsNumber));
  ui.itemPrev.addEventListener("click", () => pickItem(currentIndex() - 1));
  ui.itemNext.addEventListener("click", () => pickItem(currentIndex() + 1));
  ui.basemap.addEventListener("change", () => {
    setBasemap(map, ui.basemap.checked);
    update({ basemap: ui.basemap.checked });
  });
  ui.copyXyz.addEventListener("click", () =>
    copyUrl(ui.copyXyz, (id, params) => tileTemplate(ORIGIN, id, params)),
  );
  ui.copyWmts.addEventListener("click", () =>
    copyUrl(ui.copyWmts, (id, params) => wmtsUrl(ORIGIN, id, params)),
  );
  ui.copyTileJson.addEventListener("click", () =>
    copyUrl(ui.copyTileJson, (id, params) => tileJsonUrl(ORIGIN, id, params)),
  );
  ui.errorClose.addEventListener("click", () => showError(null));
  ui.inspectorClose.addEventListener("click", closeInspector);
  ui.inspectorBody.addEventListener("change", (event) => {
    const select = event.target as HTMLSelectElement;
    if (select.id === "chart-band") update({ chartBand: select.value });
  });
  window.addEventListener("hashchange", () => {
    restoreFromHash().catch((error) => showError(describe(error)));
  });
}

function bindMap(): void {
  map.on("sourcedataloading", (event) => {
    if (event.sourceId !== MOSAIC) return;
    tilesLoading = true;
    setBusy();
  });
  map.on("idle", () => {
    tilesLoading = false;
    setBusy();
  });
  map.on("error", (event: maplibregl.ErrorEvent & { sourceId?: string }) => {
    void showMapError(event.error, event.sourceId);
  });
  map.on("moveend", () => {
    if (!state) return;
    const { lng, lat } = map.getCenter();
    state = { ...state, view: { zoom: map.getZoom(), lat, lon: lng } };
    writeHash();
  });
  map.on("click", (event) => void inspect([event.lngLat.lng, event.lngLat.lat]));
}

async function start(): Promise<void> {
  bindControls();
  bindMap();
  setBusy();
  try {
    const [collections] = await Promise.all([
      fetchCollections(collectionsUrl(ORIGIN)),
      new Promise((resolve) => map.once("load", resolve)),
    ]);
    ui.collection.replaceChildren(
      ...collections.map((entry) => new Option(entry.title ?? entry.id, entry.id)),
    );
    await restoreFromHash();
  } catch (error) {
    showError(describe(error));
  } finally {
    starting = false;
    setBusy();
  }
}

void start();
