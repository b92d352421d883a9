import { describe, expect, it } from "vitest";
import {
  DATE_PALETTE,
  dateColor,
  dateLegend,
  dateRange,
  daysToDate,
  isoToDays,
  paletteColor,
  paletteGradient,
} from "../src/legend";

describe("dates", () => {
  it("counts days since 1970-01-01 as the server's _date band does", () => {
    expect(isoToDays("1970-01-02T00:00:00Z")).toBe(1);
    expect(isoToDays("2020-07-03T12:00:00Z")).toBe(18446.5);
    expect(daysToDate(18446.5)).toBe("2020-07-03");
  });

  it("spans the dates in whole days, never empty", () => {
    expect(dateRange(["2020-07-03T17:50:00Z", null, "2020-07-01T17:50:00Z"])).toEqual([18444, 18447]);
    expect(dateRange(["2020-07-03T00:00:00Z"])).toEqual([18446, 18447]);
    expect(dateRange([null])).toBeNull();
  });
});

describe("palette", () => {
  it("interpolates between evenly spaced stops, clamping outside [0, 1]", () => {
    const palette = ["000000", "ff0000", "ffffff"];
    expect(paletteColor(palette, 0)).toBe("#000000");
    expect(paletteColor(palette, 0.25)).toBe("#800000");
    expect(paletteColor(palette, 0.5)).toBe("#ff0000");
    expect(paletteColor(palette, 1)).toBe("#ffffff");
    expect(paletteColor(palette, 2)).toBe("#ffffff");
    expect(paletteColor(palette, -1)).toBe("#000000");
    expect(paletteColor(["abcdef"], 0.7)).toBe("#abcdef");
  });

  it("colours dates on the scale", () => {
    expect(dateColor(DATE_PALETTE, [10, 20], 10)).toBe("#440154");
    expect(dateColor(DATE_PALETTE, [10, 20], 20)).toBe("#fde725");
    expect(dateColor(DATE_PALETTE, [10, 20], 15)).toBe("#21918c");
  });

  it("lists each distinct date once, in order", () => {
    const legend = dateLegend(["000000", "ffffff"], [18444, 18446], [
      "2020-07-03T00:00:00Z",
      "2020-07-01T00:00:00Z",
      "2020-07-03T00:00:00Z",
      null,
    ]);
    expect(legend).toEqual([
      { label: "2020-07-01", color: "#000000" },
      { label: "2020-07-03", color: "#ffffff" },
    ]);
  });

  it("makes a CSS gradient", () => {
    expect(paletteGradient(["000000", "ffffff"])).toBe("linear-gradient(to right, #000000, #ffffff)");
  });
});
