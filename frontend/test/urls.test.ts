import { describe, expect, it } from "vitest";
import { layerParams } from "../src/params";
import { resolveState } from "../src/state";
import { itemsUrl, pointUrl, tileJsonUrl, tileOf, tileTemplate, tileUrl, wmtsUrl } from "../src/urls";
import { demo } from "./fixtures";

const origin = "http://127.0.0.1:8000";
const context = { dateRange: [18446, 18504] as [number, number], palette: ["440154", "fde725"] };
const state = resolveState({}, demo);

describe("URLs", () => {
  const params = layerParams({ ...state, start: "2020-07-01", end: "2020-09-01" }, demo, context);
  if (!params) throw new Error("no params");

  it("builds the XYZ template and a tile URL", () => {
    const template = tileTemplate(origin, "demo", params);
    expect(template).toBe(
      "http://127.0.0.1:8000/collections/demo/tiles/WebMercatorQuad/{z}/{x}/{y}.png" +
        "?quality=-MSK_CLDPRB&bands=B4,B3,B2&min=0&max=4500" +
        "&datetime=2020-07-01T00:00:00Z/2020-09-01T23:59:59.999999Z",
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
