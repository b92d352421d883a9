// The controller's ports: what it needs from the server API, the map and the URL hash, and what
// it offers the views. main.ts plugs in the real ones; the tests plug in fakes.
import type { Collection, CollectionSummary, Item, PointResult, TileFailure } from "./api";
import type { ViewerModel } from "./model";
import type { LayerKind, MapView, ViewState } from "./state";
import type { Store } from "./store";

/** The server routes the viewer reads (api.ts). */
export interface ViewerApi {
  fetchCollections(url: string): Promise<CollectionSummary[]>;
  fetchCollection(url: string): Promise<Collection>;
  fetchItems(url: string, signal?: AbortSignal): Promise<Item[]>;
  fetchPoint(url: string, signal?: AbortSignal): Promise<PointResult>;
  checkTile(url: string, signal?: AbortSignal): Promise<void>;
}

/** The map operations the viewer needs (mapview.ts implements them with MapLibre). */
export interface MapAdapter {
  /** Resolves once the map's style has loaded. */
  loaded(): Promise<void>;
  jumpTo(view: MapView): void;
  setBasemap(visible: boolean): void;
  /** Shows the mosaic tiles of a template (replacing the previous ones). */
  setMosaic(collection: Collection, template: string): void;
  removeMosaic(): void;
  /** One tile of the template, near the map centre, to validate the layer with. */
  probeTile(collection: Collection, template: string): string;
  /** Outlines the collection's footprint (its bounds, west, south, east, north). */
  showFootprint(bounds: [number, number, number, number]): void;
  hideFootprint(): void;
  showMarker(lonLat: [number, number]): void;
  hideMarker(): void;
}

/** The URL hash (without '#'): read on load and on `hashchange`, rewritten on each change. */
export interface HashAdapter {
  read(): string;
  write(hash: string): void;
}

export interface ControllerDeps {
  store: Store<ViewerModel>;
  api: ViewerApi;
  map: MapAdapter;
  hash: HashAdapter;
  /** The server's origin, e.g. "http://127.0.0.1:8000". */
  origin: string;
}

export type UrlKind = "xyz" | "wmts" | "tilejson";

export interface ViewerController {
  /** Loads the collections and opens the one in the URL hash (else the first). */
  start(): Promise<void>;
  /** Applies an edited or pasted URL hash. */
  hashChanged(): Promise<void>;
  selectCollection(id: string): Promise<void>;
  setLayer(layer: LayerKind): void;
  /** Applies a render preset of the collection; "" (custom) does nothing. */
  choosePreset(key: string): void;
  /** A quality expression as typed; blank is ignored. */
  setQuality(text: string): void;
  /** Comma-separated band names as typed; none is ignored. */
  setBands(text: string): void;
  setRange(key: "min" | "max", value: number): void;
  setFilters(filters: Partial<Pick<ViewState, "start" | "end" | "cloud">>): void;
  /** Shows the item at an index of the matching items (clamped). */
  pickItem(index: number): void;
  /** Shows the previous (-1) or next (+1) item. */
  stepItem(step: number): void;
  setBasemap(visible: boolean): void;
  setChartBand(band: string): void;
  dismissError(): void;
  /** Jumps to the zoom the too-many-items hint asks for, at the current centre (not past the
   * collection's maxzoom: then only narrower dates help). */
  zoomToHint(): void;
  inspect(lonLat: [number, number]): Promise<void>;
  closeInspector(): void;
  /** A URL of the current layer for other clients, null if there is no layer. */
  layerUrl(kind: UrlKind): string | null;
  mapMoved(view: MapView): void;
  /** The map started loading mosaic tiles. */
  tilesLoading(): void;
  /** The map finished loading and painting. */
  mapIdle(): void;
  /** A map error; `source` names it for the user ("Tile", "OpenStreetMap", "Map"). */
  mapError(error: TileFailure, source: string): Promise<void>;
}
