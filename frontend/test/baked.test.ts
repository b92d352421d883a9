import { describe, expect, it } from "vitest";
import type { BakedLayer, Collection } from "../src/api";
import { BAKED_PREFIX, bakedState, matchingBaked } from "../src/baked";
import { presetKey } from "../src/model";
import { filtersOf } from "../src/params";
import { resolveState } from "../src/state";
import { demo } from "./fixtures";

const summer: BakedLayer = {
  title: "summer (baked)",
  quality: "-MSK_CLDPRB",
  bands: ["B4", "B3", "B2", "_date"],
  datetime: "2020-07-01T00:00:00+00:00/2020-08-31T23:59:59.999999+00:00",
  filter: "eo:cloud_cover < 30",
  ids: null,
  sortby: null,
  unscale: false,
  bounds: [-103.3, 40.05, -103.1, 40.23],
};
const collection: Collection = { ...demo, baked: { summer } };

describe("baked layers", () => {
  it("turns a baked layer into the view state that asks for it", () => {
    expect(bakedState(summer, collection)).toEqual({
      quality: "-MSK_CLDPRB",
      bands: ["B4", "B3", "B2"],
      start: "2020-07-01",
      end: "2020-08-31",
      cloud: 30,
    });
    const open = { ...summer, datetime: null, filter: null, bands: ["B8", "quality"] };
    expect(bakedState(open, collection)).toEqual({ quality: "-MSK_CLDPRB", bands: ["B8"], start: "", end: "", cloud: null });
  });

  it("refuses what the viewer cannot ask for", () => {
    for (const other of [
      { ...summer, sortby: "-eo:cloud_cover" },
      { ...summer, ids: ["a"] },
      { ...summer, unscale: true },
      { ...summer, filter: "platform = 'sentinel-2a'" },
      { ...summer, datetime: "2020-07-01T10:00:00+00:00/.." },
      { ...summer, bands: ["quality", "_date"] },
    ]) {
      expect(bakedState(other, collection)).toBeNull();
    }
  });

  it("the state made from a baked layer matches it, and its preset shows it", () => {
    const state = { ...resolveState({}, collection), ...bakedState(summer, collection) };
    const params = { quality: state.quality, bands: state.bands, ...filtersOf(state) };
    expect(matchingBaked(params, collection)).toBe("summer");
    expect(presetKey(state, collection)).toBe(`${BAKED_PREFIX}summer`);
  });

  it("another quality, filter, date or band is not the baked layer", () => {
    const state = { ...resolveState({}, collection), ...bakedState(summer, collection) };
    const base = { quality: state.quality, bands: state.bands, ...filtersOf(state) };
    expect(matchingBaked({ ...base, quality: "MSK_CLDPRB" }, collection)).toBeNull();
    expect(matchingBaked({ ...base, filter: "eo:cloud_cover < 31" }, collection)).toBeNull();
    expect(matchingBaked({ ...base, datetime: "2020-07-01T00:00:00Z/.." }, collection)).toBeNull();
    expect(matchingBaked({ ...base, bands: ["B8"] }, collection)).toBeNull();
    expect(matchingBaked({ ...base, ids: ["x"] }, collection)).toBeNull();
    expect(presetKey(resolveState({}, collection), collection)).toBe("best");
  });
});
