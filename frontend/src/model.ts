// What the viewer knows (the store's value), and the values derived from it.
import type { Collection, CollectionSummary, Item, PointResult } from "./api";
import { DATE_PALETTE, dateRange } from "./legend";
import { BAKED_PREFIX, matchingBaked } from "./baked";
import { filtersOf, layerParams, type TileParams } from "./params";
import type { ViewState } from "./state";

/** The pixel inspector: loading keeps the previous body on screen until the answer arrives. */
export type Inspection = { lonLat: [number, number] } & (
  | { status: "loading" }
  | { status: "ready"; result: PointResult; bands: string[]; band: string }
  | { status: "error"; message: string }
);

export interface ViewerModel {
  /** The server's collections, the collection picker's options. */
  collections: CollectionSummary[];
  collection: Collection | null;
  /** A collection the URL asked for that the server does not have (the first one is shown). */
  missingCollection: string | null;
  /** The view state, mirrored in the URL hash; null until a collection is open. */
  state: ViewState | null;
  /** The collection's items that pass the state's filters, in collection order. */
  items: Item[];
  /** How many items matched the filters at the last successful item search. */
  matched: { count: number; total: number } | null;
  /** The tile URL template on the map, null if none. */
  applied: string | null;
  /** Busy: loading the page, validating a layer, or loading its tiles. */
  starting: boolean;
  checking: boolean;
  tilesLoading: boolean;
  /** The message in the banner over the map, null for none. */
  error: string | null;
  /** Too many items here: the zoom from which the server says tiles stay under its items limit
   * (the hint under the map, with the collection's footprint drawn); null for none. */
  zoomHint: number | null;
  inspection: Inspection | null;
}

export function initialModel(): ViewerModel {
  return {
    collections: [],
    collection: null,
    missingCollection: null,
    state: null,
    items: [],
    matched: null,
    applied: null,
    starting: true,
    checking: false,
    tilesLoading: false,
    error: null,
    zoomHint: null,
    inspection: null,
  };
}

export function isBusy(model: ViewerModel): boolean {
  return model.starting || model.checking || model.tilesLoading;
}

/** The item the item layer shows: the state's, else the first matching one. */
export function currentItem(model: ViewerModel): Item | undefined {
  return model.items.find((item) => item.id === model.state?.item) ?? model.items[0];
}

/** The provenance colour scale: the filtered items' dates, else the collection's. */
export function provenanceRange(model: ViewerModel): [number, number] {
  return (
    dateRange(model.items.map((item) => item.properties.datetime)) ??
    dateRange(model.collection?.datetime ?? []) ?? [0, 1]
  );
}

/** The tile parameters of the current layer, null if there is none or it has nothing to show. */
export function currentParams(model: ViewerModel): TileParams | null {
  if (!model.collection || !model.state) return null;
  return layerParams(model.state, model.collection, {
    dateRange: provenanceRange(model),
    palette: DATE_PALETTE,
    itemId: currentItem(model)?.id,
  });
}

/** The baked layer answering the state's quality, bands and filters at every zoom, else the render
 * preset matching the state's quality (and bands, if several share the quality). */
export function presetKey(state: ViewState, collection: Collection): string {
  const params = { quality: state.quality, bands: state.bands, ...filtersOf(state) };
  const baked = matchingBaked(params, collection);
  if (baked !== null) return `${BAKED_PREFIX}${baked}`;
  const matches = Object.entries(collection.renders ?? {}).filter(
    ([, render]) => render.quality === state.quality,
  );
  const exact = matches.find(([, render]) => render.bands?.join(",") === state.bands.join(","));
  return (exact ?? matches[0])?.[0] ?? "";
}

/** The band the inspector charts: the state's if the collection has it, else a shown band. */
export function chartBand(state: ViewState, collection: Collection): string {
  const bands = collection.bands;
  if (bands.includes(state.chartBand)) return state.chartBand;
  return state.bands.find((band) => bands.includes(band)) ?? bands[0] ?? "";
}
