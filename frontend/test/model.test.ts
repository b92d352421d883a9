import { describe, expect, it } from "vitest";
import {
  chartBand,
  currentItem,
  currentParams,
  initialModel,
  isBusy,
  presetKey,
  provenanceRange,
  type ViewerModel,
} from "../src/model";
import { resolveState } from "../src/state";
import { demo } from "./fixtures";
import { items } from "./harness";

const state = resolveState({}, demo);
const model = (patch: Partial<ViewerModel>): ViewerModel => ({
  ...initialModel(),
  starting: false,
  collection: demo,
  state,
  items,
  ...patch,
});

describe("model", () => {
  it("is busy while starting, validating a layer or loading tiles", () => {
    expect(isBusy(initialModel())).toBe(true);
    expect(isBusy(model({}))).toBe(false);
    expect(isBusy(model({ checking: true }))).toBe(true);
    expect(isBusy(model({ tilesLoading: true }))).toBe(true);
  });

  it("shows the state's item, else the first matching one", () => {
    expect(currentItem(model({ state: { ...state, item: "c" } }))?.id).toBe("c");
    expect(currentItem(model({ state: { ...state, item: "gone" } }))?.id).toBe("a");
    expect(currentItem(model({ items: [] }))).toBeUndefined();
  });

  it("scales provenance over the matching items' dates, else the collection's", () => {
    expect(provenanceRange(model({}))).toEqual([18446, 18457]);
    expect(provenanceRange(model({ items: [] }))).toEqual([18446, 18505]);
    expect(provenanceRange(initialModel())).toEqual([0, 1]);
  });

  it("has layer parameters only with a collection, a state and something to show", () => {
    expect(currentParams(initialModel())).toBeNull();
    expect(currentParams(model({}))?.quality).toBe("-MSK_CLDPRB");
    expect(currentParams(model({ state: { ...state, layer: "item", item: "b" } }))?.ids).toEqual(["b"]);
    expect(currentParams(model({ state: { ...state, layer: "item" }, items: [] }))).toBeNull();
    expect(currentParams(model({ state: { ...state, layer: "provenance" } }))).toMatchObject({
      bands: ["_date"],
      min: 18446,
      max: 18457,
    });
  });

  it("finds the preset of the state's expression, preferring the same bands", () => {
    expect(presetKey(state, demo)).toBe("best");
    expect(presetKey({ ...state, quality: "(B8-B4)/(B8+B4)" }, demo)).toBe("greenest");
    expect(presetKey({ ...state, quality: "B8" }, demo)).toBe("");
    const twins = {
      ...demo,
      renders: {
        rgb: { quality: "B8", bands: ["B4", "B3", "B2"] },
        nir: { quality: "B8", bands: ["B8"] },
      },
    };
    expect(presetKey({ ...state, quality: "B8", bands: ["B8"] }, twins)).toBe("nir");
    expect(presetKey({ ...state, quality: "B8", bands: ["B2"] }, twins)).toBe("rgb");
  });

  it("charts the chosen band if the collection has it, else the first shown one", () => {
    expect(chartBand({ ...state, chartBand: "B8" }, demo)).toBe("B8");
    expect(chartBand({ ...state, chartBand: "nope" }, demo)).toBe("B4");
    expect(chartBand({ ...state, bands: ["_date"] }, demo)).toBe("B2");
  });
});
