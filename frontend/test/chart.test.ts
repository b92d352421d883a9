import { describe, expect, it } from "vitest";
import { escapeXml, formatValue, linearScale, niceStep, niceTicks, paddedExtent, seriesChart } from "../src/chart";

describe("scales", () => {
  it("maps a domain linearly onto a range, also reversed", () => {
    const y = linearScale([0, 100], [200, 0]);
    expect(y(0)).toBe(200);
    expect(y(25)).toBe(150);
    expect(y(100)).toBe(0);
    expect(linearScale([5, 5], [0, 10])(5)).toBe(5);
  });

  it("picks 1-2-5 steps", () => {
    expect(niceStep(100, 4)).toBe(20);
    expect(niceStep(100, 2)).toBe(50);
    expect(niceStep(0.9, 3)).toBe(0.2);
    expect(niceStep(58, 4)).toBe(20);
    expect(niceStep(0, 4)).toBe(1);
  });

  it("puts ticks on round values inside the range", () => {
    expect(niceTicks(-3, 97, 4)).toEqual([0, 20, 40, 60, 80]);
    expect(niceTicks(0, 1, 4)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(-60, 60, 2)).toEqual([-50, 0, 50]);
    expect(niceTicks(-0.35, 0.35, 3)).toEqual([-0.2, 0, 0.2]);
    expect(niceTicks(7, 7)).toEqual([7]);
  });

  it("pads the extent", () => {
    expect(paddedExtent([])).toBeNull();
    expect(paddedExtent([3])).toEqual([2, 4]);
    expect(paddedExtent([0, 100])).toEqual([-5, 105]);
  });

  it("formats values briefly", () => {
    expect(formatValue(0)).toBe("0");
    expect(formatValue(1234.567)).toBe("1235");
    expect(formatValue(-0.123456)).toBe("-0.1235");
    expect(formatValue(12345678)).toBe("1.23e+7");
  });
});

describe("series chart", () => {
  const day = 86_400_000;
  const points = [
    { time: 0, value: 10, label: "a <1>", winner: false },
    { time: 10 * day, value: null, label: "b", winner: false },
    { time: 20 * day, value: 30, label: "c", winner: true },
  ];
  const svg = seriesChart(points, { title: "quality", color: "#f00", width: 300, height: 120 });

  it("draws one marker per item and highlights the winner", () => {
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg.match(/<circle/g)).toHaveLength(3);
    expect(svg.match(/class="winner"/g)).toHaveLength(1);
    expect(svg).toContain('class="winner-line"');
    expect(svg).toContain('class="nodata"');
    expect(svg).toContain("<title>c: 30</title>");
  });

  it("escapes labels", () => {
    expect(svg).toContain("a &#60;1&#62;: 10");
    expect(escapeXml(`<&"'>`)).toBe("&#60;&#38;&#34;&#39;&#62;");
  });

  it("joins only the valued points", () => {
    const line = svg.match(/<polyline[^>]*points="([^"]*)"/);
    expect(line?.[1].split(" ")).toHaveLength(2);
  });

  it("draws an empty series without failing", () => {
    expect(seriesChart([], { title: "B4", color: "#00f", width: 300, height: 120 })).toContain("</svg>");
  });
});
