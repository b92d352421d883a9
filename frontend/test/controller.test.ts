import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ApiError, type PointResult } from "../src/api";
import { APPLY_DELAY_MS } from "../src/controller";
import { isBusy } from "../src/model";
import { decodeState, encodeState, resolveState } from "../src/state";
import {
  BAD_EXPRESSION,
  BEST,
  ORIGIN,
  items,
  moveMap,
  other,
  pointResult,
  rejectOnAbort,
  settle,
  setup,
  template,
  tooManyItems,
} from "./harness";
import { demo } from "./fixtures";

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

/** A started viewer with its first layer applied. */
async function started(hash = "") {
  const viewer = setup(hash);
  await viewer.controller.start();
  await settle();
  return viewer;
}

describe("start", () => {
  it("opens the first collection, searches its items and shows the best layer", async () => {
    const { api, map, hash, model } = await started();
    expect(api.fetchCollections).toHaveBeenCalledWith(`${ORIGIN}/collections`);
    expect(model().collection).toBe(demo);
    expect(model().state).toEqual(resolveState({}, demo));
    expect(api.fetchItems).toHaveBeenCalledOnce();
    expect(api.fetchItems.mock.calls[0][0]).toBe(`${ORIGIN}/collections/demo/items?limit=1000`);
    expect(model().items).toEqual(items);
    expect(model().matched).toEqual({ count: 3, total: 13 });
    expect(api.checkTile).toHaveBeenCalledOnce();
    expect(api.checkTile.mock.calls[0][0]).toBe(
      `${ORIGIN}/collections/demo/tiles/WebMercatorQuad/12/873/1548.png?${BEST}`,
    );
    expect(map.setMosaic).toHaveBeenCalledExactlyOnceWith(demo, template("demo", BEST));
    expect(model().applied).toBe(template("demo", BEST));
    expect(map.jumpTo).toHaveBeenCalledWith({ lon: -103.19, lat: 40.14, zoom: 12 });
    expect(map.setBasemap).toHaveBeenCalledWith(false);
    expect(hash.value).toBe(`#c=demo&layer=best&${BEST.replace("quality", "q")}`);
    expect(model().error).toBeNull();
  });

  it("is busy from the start until the first tiles are painted", async () => {
    const viewer = setup();
    const busy: boolean[] = [];
    viewer.store.subscribe((model) => busy.push(isBusy(model)));
    expect(isBusy(viewer.model())).toBe(true);
    await viewer.controller.start();
    await settle();
    expect(viewer.model()).toMatchObject({ starting: false, checking: false, tilesLoading: true });
    expect(busy.every(Boolean)).toBe(true);
    viewer.controller.mapIdle();
    expect(isBusy(viewer.model())).toBe(false);
    viewer.controller.tilesLoading();
    expect(isBusy(viewer.model())).toBe(true);
  });

  it("restores a shared link", async () => {
    const { map, hash, model } = await started("#c=other&layer=worst&osm=1&map=9/50.5/10.25");
    expect(model().collection).toBe(other);
    expect(model().state).toMatchObject({ layer: "worst", basemap: true, view: { zoom: 9, lat: 50.5, lon: 10.25 } });
    expect(map.jumpTo).toHaveBeenCalledWith({ zoom: 9, lat: 50.5, lon: 10.25 });
    expect(map.setBasemap).toHaveBeenCalledWith(true);
    expect(hash.value).toBe("#c=other&layer=worst&q=B8&bands=B8&min=0&max=1000&osm=1&map=9/50.5/10.25");
  });

  it("opens the first collection without the link's settings when its collection is unknown", async () => {
    const { model } = await started("#c=gone&layer=worst");
    expect(model().collection).toBe(demo);
    expect(model().missingCollection).toBe("gone");
    expect(model().state?.layer).toBe("best");
  });

  it("says so when the server has no collections", async () => {
    const viewer = setup();
    viewer.api.fetchCollections.mockResolvedValue([]);
    await viewer.controller.start();
    expect(viewer.model().error).toBe("The server has no collections.");
    expect(isBusy(viewer.model())).toBe(false);
  });

  it("shows why the server cannot be reached", async () => {
    const viewer = setup();
    viewer.api.fetchCollections.mockRejectedValue(new TypeError("Failed to fetch"));
    await viewer.controller.start();
    expect(viewer.model().error).toBe("Cannot reach the server (Failed to fetch).");
    expect(isBusy(viewer.model())).toBe(false);
  });
});

describe("changing the layer", () => {
  it("validates only the last of quick edits, after a pause, without searching the items", async () => {
    const { api, map, controller, model } = await started();
    controller.setQuality("B8");
    controller.setQuality(" B8-B4 ");
    await vi.advanceTimersByTimeAsync(APPLY_DELAY_MS - 1);
    expect(api.checkTile).toHaveBeenCalledOnce();
    await settle();
    expect(api.checkTile).toHaveBeenCalledTimes(2);
    expect(map.setMosaic).toHaveBeenCalledTimes(2);
    expect(model().applied).toBe(template("demo", "quality=B8-B4&bands=B4,B3,B2&min=0&max=4500"));
    expect(model().state?.layer).toBe("custom");
    expect(api.fetchItems).toHaveBeenCalledOnce();
  });

  it("shows the server's message for a rejected layer and keeps the last good one", async () => {
    const { api, map, controller, model } = await started();
    controller.setQuality("B4 *");
    await settle();
    expect(api.checkTile).toHaveBeenCalledTimes(2);
    expect(model().error).toBe(BAD_EXPRESSION);
    expect(model().checking).toBe(false);
    expect(model().applied).toBe(template("demo", BEST));
    expect(map.setMosaic).toHaveBeenCalledOnce();

    controller.setQuality("B8");
    await settle();
    expect(model().error).toBeNull();
    expect(model().applied).toContain("quality=B8&");
  });

  it("does not validate the layer already shown again, and clears the error", async () => {
    const { api, controller, model } = await started();
    controller.setLayer("worst");
    controller.setLayer("best");
    controller.setQuality("B4 *"); // edits the custom expression: switches to the custom layer
    controller.setLayer("best");
    await settle();
    expect(api.checkTile).toHaveBeenCalledOnce();
    expect(model().error).toBeNull();
  });

  it("shows only the newest layer when an older check answers last", async () => {
    const { api, map, controller, model } = await started();
    api.checkTile.mockImplementationOnce(() => new Promise((resolve) => setTimeout(resolve, 5_000)));
    controller.setQuality("B8");
    await vi.advanceTimersByTimeAsync(APPLY_DELAY_MS);
    expect(model().checking).toBe(true);
    controller.setQuality("B2");
    await settle();
    expect(api.checkTile).toHaveBeenCalledTimes(3);
    expect(api.checkTile.mock.calls[1][1]?.aborted).toBe(true);
    expect(map.setMosaic).toHaveBeenCalledTimes(2);
    expect(model().applied).toContain("quality=B2&");
    expect(model().checking).toBe(false);
  });

  it("applies a render preset, switching best to the custom layer", async () => {
    const { controller, model } = await started();
    controller.choosePreset("greenest");
    expect(model().state).toMatchObject({ layer: "custom", quality: "(B8-B4)/(B8+B4)", bands: ["B4", "B3", "B2"] });
    controller.setLayer("provenance");
    controller.choosePreset("worst");
    expect(model().state).toMatchObject({ layer: "provenance", quality: "MSK_CLDPRB" });
    const before = model().state;
    controller.choosePreset("");
    controller.setQuality("  ");
    controller.setBands(" , ");
    controller.setRange("min", Number.NaN);
    expect(model().state).toBe(before);
    controller.setBands(" B8, ,B4 ");
    controller.setRange("max", 3000);
    expect(model().state).toMatchObject({ bands: ["B8", "B4"], max: 3000 });
  });
});

describe("baked layers", () => {
  it("choosing a baked layer asks for exactly its quality, bands, dates and filter", async () => {
    const summer = {
      quality: "-MSK_CLDPRB",
      bands: ["B4", "B3", "B2"],
      datetime: "2020-07-01T00:00:00+00:00/2020-08-31T23:59:59.999999+00:00",
      filter: "eo:cloud_cover < 30",
      ids: null,
      sortby: null,
      unscale: false,
      bounds: demo.bounds,
    };
    const viewer = setup();
    viewer.api.fetchCollection.mockResolvedValue({ ...demo, baked: { summer } });
    await viewer.controller.start();
    await settle();
    viewer.controller.choosePreset("baked:summer");
    await settle();
    expect(viewer.model().state).toMatchObject({ start: "2020-07-01", end: "2020-08-31", cloud: 30 });
    const applied = new URL(viewer.model().applied ?? "");
    expect(applied.searchParams.get("datetime")).toBe("2020-07-01T00:00:00Z/2020-08-31T23:59:59.999999Z");
    expect(applied.searchParams.get("filter")).toBe("eo:cloud_cover < 30");
    expect(applied.searchParams.get("quality")).toBe("-MSK_CLDPRB");
    viewer.controller.choosePreset("baked:nothing");
    expect(viewer.model().state).toMatchObject({ cloud: 30 });
  });
});

describe("filters", () => {
  it("search the items once and re-apply the layer once", async () => {
    const { api, map, hash, controller, model } = await started();
    controller.setFilters({ cloud: 50 });
    await settle();
    expect(api.fetchItems).toHaveBeenCalledTimes(2);
    expect(api.fetchItems.mock.calls[1][0]).toBe(
      `${ORIGIN}/collections/demo/items?filter=eo:cloud_cover%20%3C%2050&limit=1000`,
    );
    expect(model().items.map((item) => item.id)).toEqual(["b", "c"]);
    expect(model().matched).toEqual({ count: 2, total: 13 });
    expect(api.checkTile).toHaveBeenCalledTimes(2);
    expect(map.setMosaic).toHaveBeenCalledTimes(2);
    expect(model().applied).toBe(template("demo", `${BEST}&filter=eo:cloud_cover%20%3C%2050`));
    expect(hash.value).toContain("&cc=50");
  });

  it("abort the item search they replace", async () => {
    const { api, controller, model } = await started();
    api.fetchItems.mockImplementationOnce((_, signal) => rejectOnAbort(signal));
    controller.setFilters({ start: "2020-07-05" });
    controller.setFilters({ end: "2020-07-10" });
    await settle();
    expect(api.fetchItems.mock.calls[1][1]?.aborted).toBe(true);
    expect(api.fetchItems.mock.calls[2][0]).toContain("datetime=2020-07-05T00:00:00Z/2020-07-10T23:59:59.999999Z");
    expect(model().error).toBeNull();
    expect(api.checkTile).toHaveBeenCalledTimes(2);
  });

  it("show an item search error", async () => {
    const { api, controller, model } = await started();
    api.fetchItems.mockRejectedValueOnce(new ApiError("filter: unknown property", 400));
    controller.setFilters({ cloud: 10 });
    await settle();
    expect(model().error).toBe("Items: filter: unknown property");
    expect(model().items).toEqual([]);
    expect(api.checkTile).toHaveBeenCalledOnce();
  });

  it("leave the item layer nothing to show when no item matches", async () => {
    const { map, controller, model } = await started();
    controller.setLayer("item");
    await settle();
    expect(model().applied).toContain("&ids=a");
    controller.setFilters({ cloud: 1 });
    await settle();
    expect(model().error).toBe("No item matches the filters.");
    expect(map.removeMosaic).toHaveBeenCalledTimes(2); // on opening the collection, and now
    expect(model().applied).toBeNull();
  });
});

describe("the item layer", () => {
  it("steps through the matching items, clamped", async () => {
    const { controller, model } = await started();
    controller.setLayer("item");
    controller.stepItem(1);
    expect(model().state?.item).toBe("b");
    controller.stepItem(1);
    controller.stepItem(1);
    expect(model().state?.item).toBe("c");
    controller.pickItem(-5);
    expect(model().state?.item).toBe("a");
    controller.stepItem(-1);
    expect(model().state?.item).toBe("a");
    controller.pickItem(1);
    await settle();
    expect(model().applied).toContain("&ids=b");
  });
});

describe("switching collection", () => {
  it("resets the state, the items, the layer and the inspector, keeping the layer kind and basemap", async () => {
    const { api, map, hash, controller, model } = await started();
    controller.setLayer("worst");
    controller.setBasemap(true);
    controller.setFilters({ cloud: 50, start: "2020-07-01" });
    await controller.inspect([-103.19, 40.14]);
    await settle();
    map.removeMosaic.mockClear();

    await controller.selectCollection("other");
    await settle();
    expect(model().collection).toBe(other);
    expect(model().state).toEqual({ ...resolveState({}, other), layer: "worst", basemap: true });
    expect(map.removeMosaic).toHaveBeenCalledOnce();
    expect(map.hideMarker).toHaveBeenCalled();
    expect(model().inspection).toBeNull();
    expect(map.jumpTo).toHaveBeenLastCalledWith({ lon: 10, lat: 50, zoom: 9 });
    expect(api.fetchItems).toHaveBeenLastCalledWith(`${ORIGIN}/collections/other/items?limit=1000`, expect.anything());
    expect(model().items).toEqual([]);
    expect(model().applied).toBe(template("other", "quality=-(B8)&bands=B8&min=0&max=1000"));
    expect(hash.value).toBe("#c=other&layer=worst&q=B8&bands=B8&min=0&max=1000&osm=1");
  });

  it("does not show a layer of the previous collection validated meanwhile", async () => {
    const { api, map, controller, model } = await started();
    api.checkTile.mockImplementationOnce(() => new Promise((resolve) => setTimeout(resolve, 100)));
    api.fetchItems.mockImplementationOnce(
      () => new Promise((resolve) => setTimeout(() => resolve([]), 1_000)),
    );
    controller.setQuality("B8");
    await vi.advanceTimersByTimeAsync(APPLY_DELAY_MS);
    const switching = controller.selectCollection("other");
    await settle();
    await switching;
    expect(map.setMosaic.mock.calls.map(([collection]) => collection.id)).toEqual(["demo", "other"]);
    expect(model().applied).toContain("/collections/other/");
  });

  it("keeps the current collection when the new one fails to load", async () => {
    const { controller, model } = await started();
    await controller.selectCollection("gone");
    expect(model().error).toBe("Unknown collection: gone");
    expect(model().collection).toBe(demo);
  });
});

describe("the URL hash", () => {
  it("round-trips the state into a new page", async () => {
    const first = await started();
    first.controller.choosePreset("greenest");
    first.controller.setFilters({ start: "2020-07-01", cloud: 30 });
    first.controller.setBasemap(true);
    first.controller.setChartBand("B8");
    first.controller.mapMoved({ zoom: 13.256, lat: 40.123456, lon: -103.2 });
    await settle();

    const second = await started(first.hash.value);
    const state = first.model().state;
    expect(state).not.toBeNull();
    expect(second.model().state).toEqual({ ...state, view: { zoom: 13.26, lat: 40.12346, lon: -103.2 } });
    expect(second.hash.value).toBe(first.hash.value);
    expect(second.model().applied).toBe(first.model().applied);
  });

  it("writes pans to the hash without touching the layer", async () => {
    const { api, hash, controller, model } = await started();
    controller.mapMoved({ zoom: 11.123456, lat: 40.1234567, lon: -103.1234567 });
    await settle();
    expect(hash.value).toContain("&map=11.12/40.12346/-103.12346");
    expect(decodeState(hash.value).view).toEqual({ zoom: 11.12, lat: 40.12346, lon: -103.12346 });
    expect(model().state?.view?.zoom).toBe(11.123456);
    expect(api.checkTile).toHaveBeenCalledOnce();
  });

  it("applies an edited hash: new filters search the items, other edits only re-apply the layer", async () => {
    const { api, map, hash, controller, model } = await started();
    hash.value = "#c=demo&layer=worst&map=10/40/-103";
    await controller.hashChanged();
    await settle();
    expect(model().state).toMatchObject({ layer: "worst", view: { zoom: 10, lat: 40, lon: -103 } });
    expect(map.jumpTo).toHaveBeenLastCalledWith({ zoom: 10, lat: 40, lon: -103 });
    expect(api.fetchItems).toHaveBeenCalledOnce();
    expect(api.checkTile).toHaveBeenCalledTimes(2);

    hash.value = "#c=demo&layer=worst&cc=50&map=10/40/-103";
    await controller.hashChanged();
    await settle();
    expect(api.fetchItems).toHaveBeenCalledTimes(2);
    expect(api.checkTile).toHaveBeenCalledTimes(3);

    const state = model().state;
    await controller.hashChanged(); // unchanged: nothing to do
    await settle();
    expect(model().state).toBe(state);
    expect(api.checkTile).toHaveBeenCalledTimes(3);
    // Restoring keeps the hash as written; the next edit rewrites it in full.
    expect(hash.value).toBe("#c=demo&layer=worst&cc=50&map=10/40/-103");
    controller.setBasemap(true);
    expect(hash.value).toBe(`#${encodeState({ ...resolveState(decodeState(hash.value), demo), basemap: true })}`);
  });

  it("opens the collection an edited hash names", async () => {
    const { hash, controller, model } = await started();
    hash.value = "#c=other&layer=worst";
    await controller.hashChanged();
    expect(model().collection).toBe(other);
    expect(model().state?.layer).toBe("worst");
  });
});

describe("the pixel inspector", () => {
  it("queries the point with the layer's quality, the filters and the charted band", async () => {
    const { api, map, controller, model } = await started();
    controller.setFilters({ cloud: 50 });
    await settle();
    const inspecting = controller.inspect([-103.19, 40.14]);
    expect(model().inspection).toEqual({ lonLat: [-103.19, 40.14], status: "loading" });
    expect(map.showMarker).toHaveBeenCalledWith([-103.19, 40.14]);
    await inspecting;
    expect(api.fetchPoint.mock.calls[0][0]).toBe(
      `${ORIGIN}/collections/demo/point/-103.190000,40.140000` +
        "?quality=-MSK_CLDPRB&bands=B4,B3,B2&filter=eo:cloud_cover%20%3C%2050",
    );
    expect(model().inspection).toEqual({
      lonLat: [-103.19, 40.14],
      status: "ready",
      result: pointResult,
      bands: demo.bands,
      band: "B4",
    });
  });

  it("shows the point's error", async () => {
    const { api, controller, model } = await started();
    api.fetchPoint.mockRejectedValueOnce(new ApiError("Point outside the collection", 400));
    await controller.inspect([0, 0]);
    expect(model().inspection).toEqual({ lonLat: [0, 0], status: "error", message: "Point outside the collection" });
  });

  it("re-inspects after an edit; closing stops it", async () => {
    const { api, map, controller, model } = await started();
    await controller.inspect([-103.19, 40.14]);
    controller.setChartBand("B8");
    await settle();
    expect(api.fetchPoint).toHaveBeenCalledTimes(2);
    expect(api.fetchPoint.mock.calls[1][0]).toContain("bands=B4,B3,B2,B8");
    expect(model().inspection).toMatchObject({ status: "ready", band: "B8" });

    map.hideMarker.mockClear();
    let answer: (result: PointResult) => void = () => undefined;
    api.fetchPoint.mockImplementationOnce(() => new Promise((resolve) => (answer = resolve)));
    const late = controller.inspect([-103.2, 40.1]);
    controller.closeInspector();
    answer(pointResult);
    await late;
    expect(model().inspection).toBeNull();
    expect(map.hideMarker).toHaveBeenCalledOnce();
    controller.setLayer("worst");
    await settle();
    expect(api.fetchPoint).toHaveBeenCalledTimes(3);
  });
});

describe("layer URLs and map errors", () => {
  it("builds the current layer's URLs for other clients", async () => {
    const viewer = setup();
    expect(viewer.controller.layerUrl("xyz")).toBeNull();
    await viewer.controller.start();
    await settle();
    const { controller } = viewer;
    expect(controller.layerUrl("xyz")).toBe(template("demo", BEST));
    expect(controller.layerUrl("wmts")).toBe(`${ORIGIN}/collections/demo/WebMercatorQuad/WMTSCapabilities.xml?${BEST}`);
    expect(controller.layerUrl("tilejson")).toBe(`${ORIGIN}/collections/demo/WebMercatorQuad/tilejson.json?${BEST}`);
  });

  it("shows a tile's error with the server's detail; aborted tiles are no error", async () => {
    const { controller, model } = await started();
    const body = new Blob([JSON.stringify({ detail: "band 'B99' not found" })]);
    await controller.mapError({ message: "Bad Request", status: 400, body }, "Tile");
    expect(model().error).toBe("Tile error: band 'B99' not found");
    await controller.mapError({ message: "Failed to fetch", status: 0 }, "OpenStreetMap");
    expect(model().error).toBe("OpenStreetMap error: Failed to fetch");
    await controller.mapError({ message: "Not JSON", status: 502, body: new Blob(["<html>"]) }, "Map");
    expect(model().error).toBe("Map error: HTTP 502");
    await controller.mapError({ message: "aborted", name: "AbortError" }, "Tile");
    expect(model().error).toBe("Map error: HTTP 502");
    controller.dismissError();
    expect(model().error).toBeNull();
  });
});

describe("too many items", () => {
  /** A viewer whose server refuses tiles below zoom `minZoom` (too many items), started. */
  async function crowded(minZoom: number, hash = "") {
    const viewer = setup(hash);
    viewer.api.minZoom = minZoom;
    await viewer.controller.start();
    await settle();
    return viewer;
  }

  it("hint at the zoom the server names and outline the footprint, instead of an error", async () => {
    const { api, map, model } = await crowded(14);
    expect(api.checkTile.mock.calls[0][0]).toContain("/12/873/1548.png");
    expect(model().zoomHint).toBe(14);
    expect(model().error).toBeNull();
    expect(model().checking).toBe(false);
    expect(map.showFootprint).toHaveBeenCalledExactlyOnceWith(demo.bounds);
    expect(map.hideFootprint).not.toHaveBeenCalled();
    expect(map.setMosaic).not.toHaveBeenCalled();
    expect(model().applied).toBeNull();
  });

  it("'Zoom to N' jumps there at the map's centre; the layer then shows and the hint goes", async () => {
    const viewer = await crowded(14);
    const { api, map, controller, model } = viewer;
    moveMap(viewer, { lon: -103.2, lat: 40.1, zoom: 11.6 });
    await settle(); // still too many: the same hint
    expect(api.checkTile).toHaveBeenCalledTimes(2);
    expect(model().zoomHint).toBe(14);
    expect(map.showFootprint).toHaveBeenCalledOnce();

    controller.zoomToHint();
    expect(map.jumpTo).toHaveBeenLastCalledWith({ lon: -103.2, lat: 40.1, zoom: 14 });
    controller.mapMoved({ lon: -103.2, lat: 40.1, zoom: 14 }); // MapLibre's moveend
    await settle();
    expect(api.checkTile).toHaveBeenCalledTimes(3);
    expect(api.checkTile.mock.calls[2][0]).toContain("/14/873/1548.png");
    expect(model().zoomHint).toBeNull();
    expect(map.hideFootprint).toHaveBeenCalledOnce();
    expect(map.setMosaic).toHaveBeenCalledExactlyOnceWith(demo, template("demo", BEST));
    expect(model().applied).toBe(template("demo", BEST));
    expect(model().error).toBeNull();

    controller.zoomToHint(); // no hint: nothing to do
    moveMap(viewer, { lon: -103.2, lat: 40.1, zoom: 10 }); // pans without a hint check nothing
    await settle();
    expect(api.checkTile).toHaveBeenCalledTimes(3);
    expect(map.jumpTo).toHaveBeenCalledTimes(4); // opening, two moves and one 'Zoom to N'
  });

  it("'Zoom to N' goes to the collection's centre when the map has left its footprint", async () => {
    const viewer = await crowded(14, "#c=demo&map=5/10/10");
    expect(viewer.model().zoomHint).toBe(14);
    viewer.controller.zoomToHint();
    expect(viewer.map.jumpTo).toHaveBeenLastCalledWith({ lon: -103.19, lat: 40.14, zoom: 14 });
  });

  it("offer no zoom past the collection's maxzoom (the server found none under the limit)", async () => {
    const { map, controller, model } = await crowded(demo.maxzoom + 10);
    expect(model().zoomHint).toBe(24);
    controller.zoomToHint();
    expect(map.jumpTo).toHaveBeenCalledOnce(); // only when the collection opened
  });

  it("go when narrower dates bring the tile under the limit", async () => {
    const { api, map, controller, model } = await crowded(14);
    api.minZoom = 0; // the server: fewer items now
    controller.setFilters({ start: "2020-07-05" });
    await settle();
    expect(model().zoomHint).toBeNull();
    expect(map.hideFootprint).toHaveBeenCalledOnce();
    expect(model().applied).toContain("datetime=2020-07-05");
  });

  it("give way to another error, which still shows as one; switching collection hides them", async () => {
    const { api, map, controller, model } = await crowded(14);
    controller.setQuality("B4 *");
    await settle();
    expect(model().error).toBe(BAD_EXPRESSION);
    expect(model().zoomHint).toBeNull();
    expect(map.hideFootprint).toHaveBeenCalledOnce();

    controller.setQuality("B8");
    await settle();
    expect(model().zoomHint).toBe(14);
    expect(model().error).toBeNull();
    expect(map.showFootprint).toHaveBeenCalledTimes(2);
    api.minZoom = 0;
    await controller.selectCollection("other");
    expect(map.hideFootprint).toHaveBeenCalledTimes(2);
    expect(model().zoomHint).toBeNull();
  });

  it("from a map tile: hint, keep the layer, and re-check it where the map goes", async () => {
    const viewer = await started();
    const { api, map, controller, model } = viewer;
    const tooMany = (zoom: number) => ({
      message: "Bad Request",
      status: 400,
      body: new Blob([JSON.stringify(tooManyItems(zoom))]),
    });
    moveMap(viewer, { lon: -103.19, lat: 40.14, zoom: 6 });
    await settle();
    await controller.mapError(tooMany(9), "Tile");
    expect(model().zoomHint).toBe(9);
    expect(model().error).toBeNull();
    expect(map.showFootprint).toHaveBeenCalledExactlyOnceWith(demo.bounds);
    expect(map.removeMosaic).toHaveBeenCalledOnce(); // only when the collection opened
    expect(model().applied).toBe(template("demo", BEST));
    await controller.mapError(tooMany(9), "Tile"); // the other tiles of the view
    expect(map.showFootprint).toHaveBeenCalledOnce();

    // Back at zoom 9 the same layer is checked again (not just taken as applied), and works.
    moveMap(viewer, { lon: -103.19, lat: 40.14, zoom: 9 });
    await settle();
    expect(api.checkTile).toHaveBeenCalledTimes(2);
    expect(api.checkTile.mock.calls[1][0]).toContain("/9/873/1548.png");
    expect(model().zoomHint).toBeNull();
    expect(map.hideFootprint).toHaveBeenCalledOnce();
    expect(map.setMosaic).toHaveBeenCalledOnce(); // the same tiles stay
    expect(model().applied).toBe(template("demo", BEST));

    // A late error of a tile from a zoom the map has left is no hint.
    await controller.mapError(tooMany(9), "Tile");
    expect(model().zoomHint).toBeNull();
  });
});
