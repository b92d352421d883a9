import { describe, expect, it } from "vitest";
import { errorMessage, responseError, tooManyItemsZoom } from "../src/api";

describe("error messages", () => {
  it("uses the server's detail string", () => {
    expect(errorMessage({ detail: "unknown band 'B99'" }, 400)).toBe("unknown band 'B99'");
  });

  it("joins FastAPI validation issues", () => {
    const body = { detail: [{ loc: ["query", "min"], msg: "Input should be a valid number" }, { msg: "bad" }] };
    expect(errorMessage(body, 422)).toBe("min: Input should be a valid number; bad");
  });

  it("falls back to the status", () => {
    expect(errorMessage(null, 500, "Internal Server Error")).toBe("HTTP 500 Internal Server Error");
    expect(errorMessage({ detail: "" }, 404)).toBe("HTTP 404");
  });

  it("reads a response's JSON body", async () => {
    const response = new Response(JSON.stringify({ detail: "bad expression" }), { status: 400 });
    const error = await responseError(response);
    expect(error.message).toBe("bad expression");
    expect(error.status).toBe(400);
    expect((await responseError(new Response("oops", { status: 502 }))).message).toBe("HTTP 502");
  });
});

describe("too many items", () => {
  it("reads the zoom the server asks for", () => {
    const suffix = "or narrow the dates (narrow it with datetime, bbox, ids or filter)";
    expect(tooManyItemsZoom(`More than 500 items (the limit) match this request: zoom in to 9 ${suffix}`)).toBe(9);
    expect(tooManyItemsZoom(`1234 items match this request, more than the limit of 500: zoom in to 12 ${suffix}`)).toBe(
      12,
    );
  });

  it("is null for other messages", () => {
    expect(tooManyItemsZoom("More than 500 items (the limit) match this request: zoom in (narrow it)")).toBeNull();
    expect(tooManyItemsZoom("unknown band 'B99'")).toBeNull();
    expect(tooManyItemsZoom("HTTP 400")).toBeNull();
  });
});
