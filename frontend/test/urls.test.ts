import { describe, expect, it } from "vitest";
import { resolveState } from "../src/state";
import {
  cloudFilter,
  datetimeParam,
  itemsUrl,
  layerParams,
  layerQuality,
  pointUrl,
  queryString,
  tileJsonUrl,
  tileOf,
  tileTemplate,
  tileUrl,
  wmtsUrl,
} from "../src/urls";
import { demo } from "./fixtures";

const origin = "http://127.0.0.1:8000";
const context = { dateRange: [18446, 18504] as [number, number], palette: ["440154", "fde725"] };
const state = resolveState({}, demo);

describe("filters", () => {
  it("builds a STAC datetime interval with open ends", () => {
    expect(datetimeParam("", "")).toBeUndefined();
    expect(datetimeParam("2020-07-01", "2020-09-01")).toBe("2020-07-01T00:00:00Z/2020-09-01T23:59:59Z");
    expect(datetimeParam("2020-07-01", "")).toBe("2020-07-01T00:00:00Z/..");
    expect(datetimeParam("", "2020-09-01")).toBe("../2020-09-01T23:59:59Z");
  });

  it("builds the cloud-cover CQL2 filter", () => {
    expect(cloudFilter(null)).toBeUndefined();
    expect(cloudFilter(20)).toBe("eo:cloud_cover < 20");
  });
});

describe("layers", () => {
  it("ranks best and worst by the collection's renders, custom by the state", () => {
    const custom = { ...state, quality: "B8" };
    expect(layerQuality("best", custom, demo)).toBe("-MSK_CLDPRB");
    expect(layerQuality("worst", custom, demo)).toBe("MSK_CLDPRB");
    expect(layerQuality("custom", custom, demo)).toBe("B8");
    expect(layerQuality("provenance", custom, demo)).toBe("B8");
  });

  it("negates the default quality when the collection has no worst render", () => {
    expect(layerQuality("worst", state, { ...demo, renders: {} })).toBe("-(-MSK_CLDPRB)");
  });

  it("makes the provenance layer a paletted _date band over the date range", () => {
    expect(layerParams({ ...state, layer: "provenance", cloud: 30 }, demo, context)).toEqual({
      quality: "-MSK_CLDPRB",
      bands: ["_date"],
      min: 18446,
      max: 18504,
      palette: ["440154", "fde725"],
      datetime: undefined,
      filter: "eo:cloud_cover < 30",
    });
  });

  it("filters the item layer to one id, and has nothing to show without one", () => {
    const item = { ...state, layer: "item" as const };
    expect(layerParams(item, demo, { ...context, itemId: "a" })?.ids).toEqual(["a"]);
    expect(layerParams(item, demo, context)).toBeNull();
  });
});

describe("URLs", () => {
  const params = layerParams({ ...state, start: "2020-07-01", end: "2020-09-01" }, demo, context);
  if (!params) throw new Error("no params");

  it("encodes query values, keeping , / : readable and + encoded", () => {
    expect(queryString({ quality: "(B8-B4)/(B8+B4)", bands: ["B4", "B3"], filter: "eo:cloud_cover < 5" })).toBe(
      "quality=(B8-B4)/(B8%2BB4)&bands=B4,B3&filter=eo:cloud_cover%20%3C%205",
    );
    expect(queryString({ quality: "" })).toBe("");
  });

  it("builds the XYZ template and a tile URL", () => {
    const template = tileTemplate(origin, "demo", params);
    expect(template).toBe(
      "http://127.0.0.1:8000/collections/demo/tiles/WebMercatorQuad/{z}/{x}/{y}.png" +
        "?quality=-MSK_CLDPRB&bands=B4,B3,B2&min=0&max=4500" +
        "&datetime=2020-07-01T00:00:00Z/2020-09-01T23:59:59Z",
    );
    expect(tileUrl(template, 12, 849, 1550)).toContain("/WebMercatorQuad/12/849/1550.png?");
  });

  it("builds the TileJSON, WMTS, point and items URLs", () => {
    const simple = { quality: "B8", bands: ["B8"] };
    expect(tileJsonUrl(origin, "demo", simple)).toBe(
      "http://127.0.0.1:8000/collections/demo/WebMercatorQuad/tilejson.json?quality=B8&bands=B8",
    );
    expect(wmtsUrl(origin, "my col", simple)).toBe(
      "http://127.0.0.1:8000/collections/my%20col/WebMercatorQuad/WMTSCapabilities.xml?quality=B8&bands=B8",
    );
    expect(pointUrl(origin, "demo", -103.19, 40.14, simple)).toBe(
      "http://127.0.0.1:8000/collections/demo/point/-103.190000,40.140000?quality=B8&bands=B8",
    );
    expect(itemsUrl(origin, "demo", { filter: "eo:cloud_cover < 5" }, 100)).toBe(
      "http://127.0.0.1:8000/collections/demo/items?filter=eo:cloud_cover%20%3C%205&limit=100",
    );
  });

  it("finds the tile under a point", () => {
    expect(tileOf(0, 0, 0)).toEqual({ x: 0, y: 0 });
    expect(tileOf(-103.19, 40.14, 12)).toEqual({ x: 873, y: 1548 });
    expect(tileOf(180, -90, 3)).toEqual({ x: 7, y: 7 });
  });
});
