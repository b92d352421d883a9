// The viewer's logic: turns user intents and map events into store changes, requests and map
// updates. It touches neither the DOM nor MapLibre: the server API, the map and the URL hash are
// injected through the ports (ports.ts; see main.ts), so tests drive it with fakes.
import { describeError, isAbort, tileError, tooManyItemsZoom } from "./api";
import { BAKED_PREFIX, bakedState } from "./baked";
import { chartBand, currentItem, currentParams } from "./model";
import { filtersChanged, filtersOf, layerQuality, type TileParams } from "./params";
import type { ControllerDeps, UrlKind, ViewerController } from "./ports";
import { decodeState, encodeState, type LayerKind, resolveState, type ViewState } from "./state";
import {
  collectionsUrl,
  collectionUrl,
  itemsUrl,
  pointUrl,
  tileJsonUrl,
  tileTemplate,
  wmtsUrl,
} from "./urls";

export const ITEM_LIMIT = 1000;
/** Edits that keep the filters re-apply the layer after this pause, so typing or dragging
 * through values validates only the last one. */
export const APPLY_DELAY_MS = 250;

const URL_BUILDERS: Record<UrlKind, (origin: string, id: string, params: TileParams) => string> = {
  xyz: tileTemplate,
  wmts: wmtsUrl,
  tilejson: tileJsonUrl,
};

/** Editing the quality expression while viewing best or worst switches to the custom layer. */
function customLayer(layer: LayerKind): LayerKind {
  return layer === "best" || layer === "worst" ? "custom" : layer;
}

export function createController({ store, api, map, hash, origin }: ControllerDeps): ViewerController {
  // Request bookkeeping: each newer request aborts or outdates the previous one of its kind.
  let applySeq = 0;
  let applyTimer: ReturnType<typeof setTimeout> | undefined;
  let checkAbort: AbortController | null = null;
  let itemsAbort: AbortController | null = null;
  let pointAbort: AbortController | null = null;

  const showError = (error: string | null): void => store.set({ error });

  function writeHash(): void {
    const { state } = store.get();
    if (state) hash.write(encodeState(state));
  }

  /** Shows the too-many-items hint (the zoom it asks for) with the collection's footprint on the
   * map, or hides both (null). */
  function setZoomHint(zoomHint: number | null): void {
    const { collection, zoomHint: shown } = store.get();
    if (zoomHint === shown) return;
    if (zoomHint === null) map.hideFootprint();
    else if (shown === null && collection) map.showFootprint(collection.bounds);
    store.set({ zoomHint });
  }

  // ------------------------------------------------------------ layer

  function scheduleApply(): void {
    clearTimeout(applyTimer);
    applyTimer = setTimeout(() => void applyLayer(), APPLY_DELAY_MS);
  }

  /** Forgets a pending or running layer validation (the collection changed under it). */
  function cancelApply(): void {
    clearTimeout(applyTimer);
    checkAbort?.abort();
    applySeq += 1;
    store.set({ checking: false });
  }

  /** Validates the state's layer with one tile request, then shows it (or the server's message;
   * too many items under the tile: the zoom hint instead, keeping the layer on the map). */
  async function applyLayer(): Promise<void> {
    const model = store.get();
    const { collection } = model;
    if (!collection) return;
    const seq = ++applySeq;
    checkAbort?.abort();
    const params = currentParams(model);
    if (!params) {
      map.removeMosaic();
      setZoomHint(null);
      store.set({ applied: null, checking: false, error: "No item matches the filters." });
      return;
    }
    const template = tileTemplate(origin, collection.id, params);
    // While the hint is shown, the layer on the map is not known to work here: check it again.
    if (template === model.applied && model.zoomHint === null) {
      store.set({ checking: false, error: null });
      return;
    }
    const abort = new AbortController();
    checkAbort = abort;
    store.set({ checking: true });
    let failure: unknown = null;
    try {
      await api.checkTile(map.probeTile(collection, template), abort.signal);
    } catch (error) {
      failure = error;
    }
    if (seq !== applySeq) return; // superseded: the newer call owns the indicator and the map
    if (failure) {
      const message = describeError(failure);
      const zoom = tooManyItemsZoom(failure);
      setZoomHint(zoom);
      store.set({ checking: false, error: zoom === null ? message : null });
      return;
    }
    setZoomHint(null);
    if (template === store.get().applied) {
      store.set({ checking: false, error: null }); // re-checked where the map is now
      return;
    }
    map.setMosaic(collection, template);
    store.set({ checking: false, error: null, applied: template, tilesLoading: true });
  }

  /** Searches the items passing the filters, then applies the layer (which may depend on them). */
  async function refreshItems(): Promise<void> {
    const { collection, state } = store.get();
    if (!collection || !state) return;
    itemsAbort?.abort();
    const abort = new AbortController();
    itemsAbort = abort;
    try {
      const url = itemsUrl(origin, collection.id, filtersOf(state), ITEM_LIMIT);
      const items = await api.fetchItems(url, abort.signal);
      store.set({ items, matched: { count: items.length, total: collection.item_count } });
    } catch (error) {
      if (isAbort(error)) return;
      store.set({ items: [], error: `Items: ${describeError(error)}` });
      return;
    }
    void applyLayer();
  }

  /** After the state changed from `previous`: new filters select new items (and then re-apply
   * the layer), any other change re-applies the layer after a pause. The one place deciding it. */
  function stateChanged(previous: ViewState, next: ViewState): Promise<void> {
    if (filtersChanged(previous, next)) return refreshItems();
    scheduleApply();
    return Promise.resolve();
  }

  /** A change made in the page: stored, written to the hash, shown, and the inspector refreshed. */
  function update(patch: Partial<ViewState>): void {
    const { state, inspection } = store.get();
    if (!state) return;
    const next = { ...state, ...patch };
    store.set({ state: next });
    writeHash();
    void stateChanged(state, next);
    if (inspection) void inspect(inspection.lonLat);
  }

  function pickItem(index: number): void {
    const { items } = store.get();
    const item = items[Math.max(0, Math.min(items.length - 1, index))];
    if (item) update({ item: item.id });
  }

  // ------------------------------------------------------------ inspector

  async function inspect(lonLat: [number, number]): Promise<void> {
    const { collection, state } = store.get();
    if (!collection || !state) return;
    const [lon, lat] = lonLat;
    map.showMarker(lonLat);
    store.set({ inspection: { lonLat, status: "loading" } });
    pointAbort?.abort();
    const abort = new AbortController();
    pointAbort = abort;
    const band = chartBand(state, collection);
    const url = pointUrl(origin, collection.id, lon, lat, {
      quality: layerQuality(state.layer, state, collection),
      bands: [...new Set([...state.bands, band])],
      ...filtersOf(state),
    });
    try {
      const result = await api.fetchPoint(url, abort.signal);
      if (abort.signal.aborted) return;
      store.set({ inspection: { lonLat, status: "ready", result, bands: collection.bands, band } });
    } catch (error) {
      if (isAbort(error) || abort.signal.aborted) return;
      store.set({ inspection: { lonLat, status: "error", message: describeError(error) } });
    }
  }

  function closeInspector(): void {
    pointAbort?.abort();
    map.hideMarker();
    store.set({ inspection: null });
  }

  // ------------------------------------------------------------ collections

  async function openCollection(
    id: string,
    partial: Partial<ViewState>,
    missingCollection: string | null = null,
  ): Promise<void> {
    const collection = await api.fetchCollection(collectionUrl(origin, id));
    const state = resolveState(partial, collection);
    cancelApply();
    map.removeMosaic();
    setZoomHint(null);
    closeInspector();
    store.set({ collection, state, missingCollection, items: [], applied: null });
    const [lon, lat, zoom] = collection.center;
    map.jumpTo(state.view ?? { lon, lat, zoom });
    map.setBasemap(state.basemap);
    writeHash();
    await refreshItems();
  }

  /** Applies the URL hash: on load, and when the user edits it or pastes a shared link. */
  async function restoreFromHash(): Promise<void> {
    const partial = decodeState(hash.read());
    const { collection, state, collections } = store.get();
    if (collection && state && (partial.collection ?? collection.id) === collection.id) {
      const restored = resolveState(partial, collection);
      if (encodeState(restored) === encodeState(state)) return;
      // Stored before the map moves: the move writes the hash from the stored state.
      store.set({ state: restored });
      if (restored.view) map.jumpTo(restored.view);
      map.setBasemap(restored.basemap);
      await stateChanged(state, restored);
      return;
    }
    const known = collections.map((entry) => entry.id);
    const wanted = partial.collection;
    const id = wanted && known.includes(wanted) ? wanted : known[0];
    if (!id) {
      showError("The server has no collections.");
      return;
    }
    const missing = wanted && wanted !== id ? wanted : null;
    await openCollection(id, id === wanted ? partial : {}, missing);
  }

  // ------------------------------------------------------------ intents

  return {
    async start() {
      store.set({ starting: true });
      try {
        const [collections] = await Promise.all([
          api.fetchCollections(collectionsUrl(origin)),
          map.loaded(),
        ]);
        store.set({ collections });
        await restoreFromHash();
      } catch (error) {
        showError(describeError(error));
      } finally {
        store.set({ starting: false });
      }
    },

    async hashChanged() {
      await restoreFromHash().catch((error: unknown) => showError(describeError(error)));
    },

    async selectCollection(id) {
      const { state } = store.get();
      const keep: Partial<ViewState> = state ? { layer: state.layer, basemap: state.basemap } : {};
      await openCollection(id, keep).catch((error: unknown) => showError(describeError(error)));
    },

    setLayer(layer) {
      update({ layer });
    },

    choosePreset(key) {
      const { collection, state } = store.get();
      if (key.startsWith(BAKED_PREFIX)) {
        const name = key.slice(BAKED_PREFIX.length);
        const layer = collection?.baked?.[name];
        if (!layer || !collection || !state) return;
        const fields = bakedState(layer, collection);
        if (fields === null) {
          showError(`The baked layer ${name} has filters this viewer cannot set (ids, sortby, unscale or a filter other than cloud cover).`);
          return;
        }
        update({ ...fields, layer: customLayer(state.layer) });
        return;
      }
      const render = collection?.renders?.[key];
      if (!render || !state) return;
      update({
        layer: customLayer(state.layer),
        quality: render.quality,
        bands: render.bands ?? state.bands,
        min: render.min ?? state.min,
        max: render.max ?? state.max,
      });
    },

    setQuality(text) {
      const quality = text.trim();
      const { state } = store.get();
      if (quality && state) update({ quality, layer: customLayer(state.layer) });
    },

    setBands(text) {
      const bands = text
        .split(",")
        .map((band) => band.trim())
        .filter(Boolean);
      if (bands.length) update({ bands });
    },

    setRange(key, value) {
      if (Number.isFinite(value)) update({ [key]: value });
    },

    setFilters(filters) {
      update(filters);
    },

    pickItem,

    stepItem(step) {
      const model = store.get();
      const current = currentItem(model);
      pickItem((current ? model.items.indexOf(current) : -1) + step);
    },

    setBasemap(visible) {
      map.setBasemap(visible);
      update({ basemap: visible });
    },

    setChartBand(band) {
      update({ chartBand: band });
    },

    dismissError() {
      showError(null);
    },

    zoomToHint() {
      const { collection, state, zoomHint } = store.get();
      if (!collection || zoomHint === null || zoomHint > collection.maxzoom) return;
      // At the map's centre, or the collection's if the map has left its footprint.
      const [west, south, east, north] = collection.bounds;
      const view = state?.view;
      const inside = view && view.lon >= west && view.lon <= east && view.lat >= south && view.lat <= north;
      const [lon, lat] = inside ? [view.lon, view.lat] : collection.center;
      map.jumpTo({ lon, lat, zoom: zoomHint });
    },

    inspect,
    closeInspector,

    layerUrl(kind) {
      const model = store.get();
      const params = currentParams(model);
      if (!model.collection || !params) return null;
      return URL_BUILDERS[kind](origin, model.collection.id, params);
    },

    mapMoved(view) {
      const { state, zoomHint } = store.get();
      if (!state) return;
      store.set({ state: { ...state, view } });
      writeHash();
      // Too many items where the map was: see (after a pause) whether the layer works here.
      if (zoomHint !== null) scheduleApply();
    },

    tilesLoading() {
      store.set({ tilesLoading: true });
    },

    mapIdle() {
      store.set({ tilesLoading: false });
    },

    async mapError(error, source) {
      if (error.name === "AbortError") return;
      const failure = await tileError(error);
      const zoom = tooManyItemsZoom(failure);
      if (zoom === null) {
        showError(`${source} error: ${failure.message}`);
        return;
      }
      // A tile over too many items: the hint, unless the map has since zoomed in that far.
      const view = store.get().state?.view;
      if (!view || view.zoom < zoom) setZoomHint(zoom);
    },
  };
}
