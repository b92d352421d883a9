import { describe, expect, it } from "vitest";
import { errorMessage, minzoomOf, responseError, tooManyItemsZoom } from "../src/api";

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
  it("reads the zoom from the body's minzoom, not from the message", async () => {
    const body = { detail: "More than 500 items (the limit) match this request: zoom in", minzoom: 9 };
    const error = await responseError(new Response(JSON.stringify(body), { status: 400 }));
    expect(error.minzoom).toBe(9);
    expect(tooManyItemsZoom(error)).toBe(9);
    expect(minzoomOf({ detail: "x", minzoom: 12 })).toBe(12);
  });

  it("is null for other errors", async () => {
    const error = await responseError(new Response(JSON.stringify({ detail: "zoom in to 9" }), { status: 400 }));
    expect(tooManyItemsZoom(error)).toBeNull();
    expect(tooManyItemsZoom(new Error("zoom in to 9"))).toBeNull();
    expect(minzoomOf({ minzoom: "9" })).toBeNull();
    expect(minzoomOf({ minzoom: -1 })).toBeNull();
    expect(minzoomOf(null)).toBeNull();
  });
});
