import { describe, expect, it } from "vitest";
import { errorMessage, responseError } from "../src/api";

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
