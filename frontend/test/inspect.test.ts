import { describe, expect, it } from "vitest";
import type { PointResult } from "../src/api";
import { inspectionHtml, seriesOf } from "../src/inspect";

const result: PointResult = {
  coordinates: [-103.19, 40.14],
  winner: { id: "b", index: 1, datetime: "2020-07-08T17:50:00Z" },
  values: { B4: 812, B3: 700, B2: null },
  items: [
    { id: "a", index: 0, datetime: "2020-07-03T17:50:00Z", quality: -80, values: { B4: 3000 } },
    { id: "b", index: 1, datetime: "2020-07-08T17:50:00Z", quality: 0, values: { B4: 812 } },
    { id: "c", index: 2, datetime: "2020-07-13T17:50:00Z", quality: null, values: { B4: null } },
  ],
};

describe("inspector", () => {
  it("turns the point's items into series with the winner flagged", () => {
    expect(seriesOf(result, "quality")).toEqual([
      { time: Date.parse("2020-07-03T17:50:00Z"), value: -80, label: "a (2020-07-03)", winner: false },
      { time: Date.parse("2020-07-08T17:50:00Z"), value: 0, label: "b (2020-07-08)", winner: true },
      { time: Date.parse("2020-07-13T17:50:00Z"), value: null, label: "c (2020-07-13)", winner: false },
    ]);
    expect(seriesOf(result, "B4").map((point) => point.value)).toEqual([3000, 812, null]);
    expect(seriesOf(result, "B8").map((point) => point.value)).toEqual([null, null, null]);
  });

  it("shows the winner, its values and two charts", () => {
    const html = inspectionHtml(result, ["B2", "B3", "B4"], "B4");
    expect(html).toContain('<strong id="winner-id">b</strong>');
    expect(html).toContain("2020-07-08");
    expect(html).toContain("B2: –");
    expect(html).toContain('<option value="B4" selected>');
    expect(html.match(/<svg/g)).toHaveLength(2);
  });

  it("says so when no item is valid", () => {
    expect(inspectionHtml({ ...result, winner: null }, ["B4"], "B4")).toContain("No item has a valid quality");
  });
});
