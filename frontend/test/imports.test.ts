import { describe, expect, it } from "vitest";

// The sources as text (Vite's glob import), keyed "../src/name.ts".
const sources = import.meta.glob<string>("../src/*.ts", { query: "?raw", import: "default", eager: true });

/** The local modules each module imports (type-only imports included). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const [path, text] of Object.entries(sources)) {
    const name = path.replace("../src/", "").replace(/\.ts$/, "");
    const imports = [...text.matchAll(/^(?:import|export)\b[^;]*?from\s+"\.\/([^"]+)"/gms)];
    graph.set(name, imports.map((match) => match[1].replace(/\.ts$/, "")));
  }
  return graph;
}

/** One import cycle as a path (first module repeated at the end), or null. */
function findCycle(graph: Map<string, string[]>): string[] | null {
  const done = new Set<string>();
  const visit = (name: string, path: string[]): string[] | null => {
    if (path.includes(name)) return [...path.slice(path.indexOf(name)), name];
    if (done.has(name)) return null;
    for (const next of graph.get(name) ?? []) {
      const cycle = visit(next, [...path, name]);
      if (cycle) return cycle;
    }
    done.add(name);
    return null;
  };
  for (const name of graph.keys()) {
    const cycle = visit(name, []);
    if (cycle) return cycle;
  }
  return null;
}

describe("module graph", () => {
  const graph = importGraph();

  it("reads the imports", () => {
    expect(graph.get("urls")).toEqual(["params"]);
    expect(graph.get("state")).toEqual(["api", "query"]);
    expect(findCycle(new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]]]))).toEqual(["a", "b", "c", "a"]);
  });

  it("has no import cycle", () => {
    expect(findCycle(graph)).toBeNull();
  });

  it("keeps the controller free of the DOM and MapLibre, so it runs under Node", () => {
    const reachable = new Set<string>();
    const walk = (name: string): void => {
      if (reachable.has(name)) return;
      reachable.add(name);
      for (const next of graph.get(name) ?? []) walk(next);
    };
    walk("controller");
    for (const name of ["dom", "layers", "mapview", "render", "events", "main"]) {
      expect(reachable.has(name), name).toBe(false);
    }
    expect(sources["../src/controller.ts"]).not.toMatch(/maplibre-gl/);
  });
});
