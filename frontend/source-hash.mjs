// The viewer bundle's source hash: `npm run build` writes it to the bundle's source-hash.txt and
// ../tests/test_viewer_bundle.py recomputes it from the sources, failing when the committed bundle
// was built from other sources. Plain JavaScript: it runs in Node (vite.config.ts), where the
// TypeScript project has no Node types. Types: source-hash.d.mts.
//
// The rule (keep it identical in tests/test_viewer_bundle.py):
//   files   ROOT_FILES that exist, and every file under src/ (recursively) with no path segment
//           starting with "." (editor and OS droppings such as .DS_Store);
//   paths   relative to frontend/, "/"-separated, sorted by their UTF-8 bytes;
//   content the file's bytes with every CRLF replaced by LF (so a Windows checkout hashes alike);
//   hash    sha256 hex of the concatenation, over the sorted files, of
//           "<path>\0<sha256 hex of content>\n" (UTF-8).
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The files besides src/ that shape the bundle. */
export const ROOT_FILES = [
  "index.html",
  "package-lock.json",
  "package.json",
  "source-hash.mjs",
  "tsconfig.json",
  "vite.config.ts",
];
export const SOURCE_DIR = "src";
export const HASH_FILE = "source-hash.txt";

const FRONTEND = fileURLToPath(new URL(".", import.meta.url));

/** Whether a path (relative to frontend/) is part of the hash, if it exists. */
export function isSourceFile(path) {
  if (ROOT_FILES.includes(path)) return true;
  const parts = path.split("/");
  return parts.length > 1 && parts[0] === SOURCE_DIR && !parts.some((part) => part.startsWith("."));
}

function listFiles(root, dir) {
  const found = [];
  for (const name of readdirSync(join(root, dir))) {
    const path = `${dir}/${name}`;
    const stats = statSync(join(root, path));
    if (stats.isDirectory()) found.push(...listFiles(root, path));
    else if (stats.isFile()) found.push(path);
  }
  return found;
}

function byUtf8(a, b) {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** The hashed files of a frontend folder (default: this one), sorted. */
export function sourceFiles(root = FRONTEND) {
  const roots = ROOT_FILES.filter((path) => existsSync(join(root, path)));
  return [...roots, ...listFiles(root, SOURCE_DIR)].filter(isSourceFile).sort(byUtf8);
}

const sha256 = (data) => createHash("sha256").update(data).digest("hex");

/** The hash of some files' contents, given with their paths. */
export function hashFiles(files) {
  const lines = [...files]
    .sort((a, b) => byUtf8(a.path, b.path))
    .map(({ path, content }) => {
      // latin1 maps bytes 1:1 to characters, so this replaces CRLF byte pairs only.
      const text = Buffer.from(content).toString("latin1").replaceAll("\r\n", "\n");
      return `${path}\0${sha256(Buffer.from(text, "latin1"))}\n`;
    });
  return sha256(Buffer.from(lines.join(""), "utf8"));
}

/** The source hash of a frontend folder (default: this one). */
export function sourceHash(root = FRONTEND) {
  return hashFiles(sourceFiles(root).map((path) => ({ path, content: readFileSync(join(root, path)) })));
}

/** A Vite plugin writing the source hash next to the bundle, as HASH_FILE. */
export function sourceHashPlugin() {
  return {
    name: "qualitymosaic-source-hash",
    apply: "build",
    generateBundle() {
      this.emitFile({ type: "asset", fileName: HASH_FILE, source: `${sourceHash()}\n` });
    },
  };
}
