import { describe, expect, it } from "vitest";
import { hashFiles, isSourceFile, sourceFiles } from "../source-hash.mjs";

// The same cases as ../tests/test_viewer_bundle.py: both implementations must agree on them.
const text = (value: string) => new TextEncoder().encode(value);
const GOLDEN_FILES = [
  { path: "src/b.ts", content: text("export const b = 1;\r\n") },
  { path: "index.html", content: text("<!doctype html>\n") },
  { path: "src/a/é.css", content: text("body{}\r") },
  { path: "src/A.ts", content: text("") },
];
const GOLDEN_HASH = "5da50b69b8c8b1c1d7e097af87075387b82c659381bbaae576614a252dca2cdc";
const GOLDEN_PATHS: Record<string, boolean> = {
  "index.html": true,
  "vite.config.ts": true,
  "source-hash.mjs": true,
  "README.md": false,
  "test/store.test.ts": false,
  src: false,
  "src/main.ts": true,
  "src/deep/er/x.css": true,
  "src/.DS_Store": false,
  "src/.cache/x.ts": false,
  "node_modules/x/index.js": false,
};

describe("the bundle's source hash", () => {
  it("follows the rule the Python test checks it with", () => {
    expect(hashFiles(GOLDEN_FILES)).toBe(GOLDEN_HASH);
    expect(hashFiles([...GOLDEN_FILES].reverse())).toBe(GOLDEN_HASH);
    const crlf = GOLDEN_FILES.map(({ path, content }) => ({
      path,
      content: text(new TextDecoder().decode(content).replaceAll("\r\n", "\n").replaceAll("\n", "\r\n")),
    }));
    expect(hashFiles(crlf)).toBe(GOLDEN_HASH);
    expect(hashFiles([...GOLDEN_FILES, { path: "src/c.ts", content: text("") }])).not.toBe(GOLDEN_HASH);
    expect(Object.fromEntries(Object.keys(GOLDEN_PATHS).map((path) => [path, isSourceFile(path)]))).toEqual(
      GOLDEN_PATHS,
    );
  });

  it("covers the sources and build configuration, not the tests", () => {
    const files = sourceFiles();
    expect(files).toContain("src/main.ts");
    expect(files).toContain("src/style.css");
    expect(files).toContain("index.html");
    expect(files).toContain("package-lock.json");
    expect(files).toContain("vite.config.ts");
    expect(files.some((path) => path.startsWith("test/"))).toBe(false);
    expect(files).toEqual([...files].sort());
  });
});
