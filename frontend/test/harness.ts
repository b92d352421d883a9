// Fakes for the controller's dependencies: an in-memory server API, map and URL hash.
import { vi } from "vitest";
import { ApiError, type Collection, type Item, type PointResult } from "../src/api";
import { createController } from "../src/controller";
import type { HashAdapter, MapAdapter, ViewerApi } from "../src/ports";
import type { MapView } from "../src/state";
import { initialModel } from "../src/model";
import { createStore } from "../src/store";
import { demo } from "./fixtures";

export const ORIGIN = "http://viewer.test";

export const other: Collection = {
  ...demo,
  id: "other",
  title: "Other",
  item_count: 2,
  center: [10, 50, 9],
  datetime: ["2021-05-01T10:00:00Z", "2021-06-01T10:00:00Z"],
  bands: ["B8", "SCL"],
  default: { quality: "B8", bands: ["B8"], min: 0, max: 1000 },
  renders: {},
};

export const items: Item[] = [
  { id: "a", properties: { datetime: "2020-07-03T17:50:00Z", "eo:cloud_cover": 80 } },
  { id: "b", properties: { datetime: "2020-07-08T17:50:00Z", "eo:cloud_cover": 5 } },
  { id: "c", properties: { datetime: "2020-07-13T17:50:00Z", "eo:cloud_cover": 40 } },
];

export const pointResult: PointResult = {
  coordinates: [-103.19, 40.14],
  winner: { id: "b", index: 1, datetime: "2020-07-08T17:50:00Z" },
  values: { B4: 812 },
  items: [],
};

/** The JSON body the server answers for a tile over more items than its limit (tiler/errors.py). */
export function tooManyItems(zoom: number): { detail: string; minzoom: number } {
  const detail =
    `More than 500 items (the limit) match this request: zoom in to ${zoom} or narrow the dates ` +
    "(narrow it with datetime, bbox, ids or filter)";
  return { detail, minzoom: zoom };
}

/** What the fake server answers for a bad quality expression (any containing '*'). */
export const BAD_EXPRESSION = "Invalid quality expression";

function abortError(): DOMException {
  return new DOMException("The operation was aborted.", "AbortError");
}

/** Rejects like fetch() once the signal aborts. */
export function rejectOnAbort(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => signal?.addEventListener("abort", () => reject(abortError())));
}

/** The server: the two collections, items filtered by the cloud-cover CQL2 filter, and tiles
 * that validate unless their quality expression contains '*', or they are below `minZoom` (too
 * many items: a 400 asking to zoom in to it). */
export function fakeApi() {
  const collections: Record<string, Collection> = { demo, other };
  const server = {
    minZoom: 0,
    fetchCollections: vi.fn<ViewerApi["fetchCollections"]>(async () => [
      { id: "demo", title: "Demo" },
      { id: "other" },
    ]),
    fetchCollection: vi.fn<ViewerApi["fetchCollection"]>(async (url) => {
      const id = decodeURIComponent(url.split("/").pop() ?? "");
      const collection = collections[id];
      if (!collection) throw new ApiError(`Unknown collection: ${id}`, 404);
      return collection;
    }),
    fetchItems: vi.fn<ViewerApi["fetchItems"]>(async (url) => {
      const filter = new URL(url).searchParams.get("filter");
      const below = filter ? Number(filter.replace("eo:cloud_cover < ", "")) : Infinity;
      return url.includes("/collections/demo/")
        ? items.filter((item) => (item.properties["eo:cloud_cover"] ?? 0) < below)
        : [];
    }),
    fetchPoint: vi.fn<ViewerApi["fetchPoint"]>(async () => pointResult),
    checkTile: vi.fn<ViewerApi["checkTile"]>(async (url) => {
      if (new URL(url).searchParams.get("quality")?.includes("*")) throw new ApiError(BAD_EXPRESSION, 400);
      const z = Number(/\/(\d+)\/\d+\/\d+\.png/.exec(url)?.[1]);
      if (z < server.minZoom) throw new ApiError(tooManyItems(server.minZoom).detail, 400, server.minZoom);
    }),
  };
  return server;
}

/** The map: it remembers where it was jumped to; its probe tile is at that zoom (rounded). */
export function fakeMap() {
  let view: MapView | null = null;
  return {
    /** Where the map was last jumped to. */
    view: () => view,
    loaded: vi.fn<MapAdapter["loaded"]>(async () => undefined),
    jumpTo: vi.fn<MapAdapter["jumpTo"]>((next) => void (view = next)),
    setBasemap: vi.fn<MapAdapter["setBasemap"]>(),
    setMosaic: vi.fn<MapAdapter["setMosaic"]>(),
    removeMosaic: vi.fn<MapAdapter["removeMosaic"]>(),
    probeTile: vi.fn<MapAdapter["probeTile"]>((_, template) =>
      template.replace("{z}/{x}/{y}", `${Math.round(view?.zoom ?? 12)}/873/1548`),
    ),
    showFootprint: vi.fn<MapAdapter["showFootprint"]>(),
    hideFootprint: vi.fn<MapAdapter["hideFootprint"]>(),
    showMarker: vi.fn<MapAdapter["showMarker"]>(),
    hideMarker: vi.fn<MapAdapter["hideMarker"]>(),
  };
}

/** The URL hash as `location.hash` has it (with '#'). */
export function fakeHash(initial = ""): HashAdapter & { value: string } {
  const hash = {
    value: initial,
    read: () => hash.value,
    write: (value: string) => void (hash.value = `#${value}`),
  };
  return hash;
}

export function setup(initialHash = "") {
  const store = createStore(initialModel());
  const api = fakeApi();
  const map = fakeMap();
  const hash = fakeHash(initialHash);
  const controller = createController({ store, api, map, hash, origin: ORIGIN });
  return { store, api, map, hash, controller, model: () => store.get() };
}

/** The user moves the map: it lands there, then tells the controller (MapLibre's moveend). */
export function moveMap(viewer: ReturnType<typeof setup>, view: MapView): void {
  viewer.map.jumpTo(view);
  viewer.controller.mapMoved(view);
}

/** Runs the pending timers (the apply delay) and settles the promises they start. */
export function settle(): Promise<unknown> {
  return vi.runAllTimersAsync();
}

/** The tile template the viewer builds for a collection and query. */
export function template(collection: string, query: string): string {
  return `${ORIGIN}/collections/${collection}/tiles/WebMercatorQuad/{z}/{x}/{y}.png?${query}`;
}

export const BEST = "quality=-MSK_CLDPRB&bands=B4,B3,B2&min=0&max=4500";
