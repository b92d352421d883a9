import { describe, expect, it } from "vitest";
import {
  cloudFilter,
  datetimeParam,
  filtersChanged,
  filtersOf,
  layerParams,
  layerQuality,
  queryString,
} from "../src/params";
import { encodeValue } from "../src/query";
import { resolveState } from "../src/state";
import { demo } from "./fixtures";

const context = { dateRange: [18446, 18504] as [number, number], palette: ["440154", "fde725"] };
const state = resolveState({}, demo);

describe("filters", () => {
  it("builds a STAC datetime interval with open ends", () => {
    expect(datetimeParam("", "")).toBeUndefined();
    expect(datetimeParam("2020-07-01", "2020-09-01")).toBe("2020-07-01T00:00:00Z/2020-09-01T23:59:59.999999Z");
    expect(datetimeParam("2020-07-01", "")).toBe("2020-07-01T00:00:00Z/..");
    expect(datetimeParam("", "2020-09-01")).toBe("../2020-09-01T23:59:59.999999Z");
  });

  it("builds the cloud-cover CQL2 filter", () => {
    expect(cloudFilter(null)).toBeUndefined();
    expect(cloudFilter(20)).toBe("eo:cloud_cover < 20");
  });

  it("takes the filters from the state", () => {
    expect(filtersOf({ ...state, start: "2020-07-01", cloud: 0 })).toEqual({
      datetime: "2020-07-01T00:00:00Z/..",
      filter: "eo:cloud_cover < 0",
    });
  });

  it("tells item-selecting changes from the others", () => {
    expect(filtersChanged(state, { ...state, start: "2020-07-01" })).toBe(true);
    expect(filtersChanged(state, { ...state, end: "2020-08-01" })).toBe(true);
    expect(filtersChanged(state, { ...state, cloud: 20 })).toBe(true);
    expect(filtersChanged({ ...state, cloud: 20 }, { ...state, cloud: 0 })).toBe(true);
    expect(filtersChanged(state, { ...state, quality: "B8", layer: "item", item: "x", basemap: true })).toBe(false);
    expect(filtersChanged(state, { ...state, view: { zoom: 3, lat: 1, lon: 2 } })).toBe(false);
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

describe("query strings", () => {
  it("encodes query values, keeping , / : readable and + encoded", () => {
    expect(queryString({ quality: "(B8-B4)/(B8+B4)", bands: ["B4", "B3"], filter: "eo:cloud_cover < 5" })).toBe(
      "quality=(B8-B4)/(B8%2BB4)&bands=B4,B3&filter=eo:cloud_cover%20%3C%205",
    );
    expect(queryString({ quality: "" })).toBe("");
    expect(encodeValue("a,b/c:d e&f")).toBe("a,b/c:d%20e%26f");
  });

  it("orders the parameters stably, whatever the object's key order", () => {
    expect(queryString({ limit: 5, ids: ["a"], quality: "q", min: 0 })).toBe("quality=q&min=0&ids=a&limit=5");
  });
});
