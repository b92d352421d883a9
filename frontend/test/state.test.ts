import { describe, expect, it } from "vitest";
import { decodeState, encodeState, resolveState, type ViewState } from "../src/state";
import { demo } from "./fixtures";

const full: ViewState = {
  collection: "demo",
  layer: "custom",
  quality: "(B8-B4)/(B8+B4)",
  bands: ["B8", "B4", "B3"],
  min: 10,
  max: 3000.5,
  start: "2020-07-01",
  end: "2020-08-15",
  cloud: 20,
  item: "S2B_20200713",
  chartBand: "B8",
  basemap: true,
  view: { zoom: 12.5, lat: 40.14, lon: -103.19 },
};

describe("URL state", () => {
  it("round-trips every field", () => {
    expect(resolveState(decodeState(`#${encodeState(full)}`), demo)).toEqual(full);
  });

  it("keeps expression characters intact", () => {
    const hash = encodeState({ ...full, quality: "where(B8 > 0, B8 + B4 & 1, -1)" });
    expect(decodeState(hash).quality).toBe("where(B8 > 0, B8 + B4 & 1, -1)");
  });

  it("leaves unset optional fields out of the hash", () => {
    const hash = encodeState({ ...full, start: "", end: "", cloud: null, item: "", chartBand: "", basemap: false, view: null });
    expect(hash).toBe("c=demo&layer=custom&q=(B8-B4)/(B8%2BB4)&bands=B8,B4,B3&min=10&max=3000.5");
  });

  it("rounds the map view", () => {
    const hash = encodeState({ ...full, view: { zoom: 11.123456, lat: 40.1234567, lon: -103.1234567 } });
    expect(hash).toContain("&map=11.12/40.12346/-103.12346");
  });

  it("drops invalid values", () => {
    const state = decodeState("layer=nope&min=abc&max=&from=2020-13&cc=150&map=1/2&bands=,,");
    expect(state).toEqual({});
  });

  it("accepts cloud cover 0 and basemap off", () => {
    expect(decodeState("cc=0&osm=0")).toEqual({ cloud: 0, basemap: false });
  });

  it("resolves missing fields from the collection defaults", () => {
    expect(resolveState({ layer: "worst" }, demo)).toEqual({
      collection: "demo",
      layer: "worst",
      quality: "-MSK_CLDPRB",
      bands: ["B4", "B3", "B2"],
      min: 0,
      max: 4500,
      start: "",
      end: "",
      cloud: null,
      item: "",
      chartBand: "",
      basemap: false,
      view: null,
    });
  });
});
