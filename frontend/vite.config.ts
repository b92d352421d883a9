import { defineConfig } from "vitest/config";
import { sourceHashPlugin } from "./source-hash.mjs";

// The server serves the built page at `/` and this folder at `/static/viewer/`.
// `npm run dev` proxies the API to a running server (VIEWER_API, default http://127.0.0.1:8000).
const api = process.env.VIEWER_API ?? "http://127.0.0.1:8000";

export default defineConfig({
  base: "/static/viewer/",
  // Writes source-hash.txt into the bundle: ../tests/test_viewer_bundle.py fails when it is stale.
  plugins: [sourceHashPlugin()],
  build: {
    outDir: "../tiler/static/viewer",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
  },
  server: {
    proxy: { "/collections": api, "/healthz": api },
  },
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
  },
});
