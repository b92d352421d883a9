import type { Collection } from "../src/api";

export const demo: Collection = {
  id: "demo",
  title: "Demo",
  item_count: 13,
  bounds: [-103.3, 40.05, -103.1, 40.23],
  center: [-103.19, 40.14, 12],
  minzoom: 8,
  maxzoom: 14,
  datetime: ["2020-07-03T17:50:00Z", "2020-08-30T17:50:00Z"],
  bands: ["B2", "B3", "B4", "B8", "MSK_CLDPRB"],
  default: { quality: "-MSK_CLDPRB", bands: ["B4", "B3", "B2"], min: 0, max: 4500 },
  renders: {
    best: { title: "Least cloudy", quality: "-MSK_CLDPRB", bands: ["B4", "B3", "B2"], min: 0, max: 4500 },
    worst: { title: "Most cloudy", quality: "MSK_CLDPRB", bands: ["B4", "B3", "B2"], min: 0, max: 4500 },
    greenest: { title: "Greenest", quality: "(B8-B4)/(B8+B4)", bands: ["B4", "B3", "B2"], min: 0, max: 4500 },
  },
};
