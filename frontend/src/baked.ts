// Baked layers: exports the server answers at every zoom, for requests of exactly their
// quality and filters (the collection document lists them under `baked`).
import type { BakedLayer, Collection } from "./api";
import type { TileParams } from "./params";
import type { ViewState } from "./state";

/** The preset select's value of a baked layer (render presets use their plain key). */
export const BAKED_PREFIX = "baked:";

/** Output bands computed from the winner rather than read: not shown as colour bands. */
const DERIVED = new Set(["quality", "_index", "_date", "_doy"]);
const WHOLE_DAY_START = /^(\d{4}-\d{2}-\d{2})T00:00:00(?:\.0+)?(?:Z|\+00:00)$/;
const WHOLE_DAY_END = /^(\d{4}-\d{2}-\d{2})T23:59:59\.999999(?:Z|\+00:00)$/;
const CLOUD = /^eo:cloud_cover\s*<\s*(\d+(?:\.\d+)?)$/;

/** An interval end as the viewer's date ("" when open), or null when it is not a whole day. */
function day(value: string | undefined, pattern: RegExp): string | null {
  if (value === undefined || value === "" || value === "..") return "";
  return pattern.exec(value)?.[1] ?? null;
}

/** The view state fields that ask for exactly what a baked layer holds, or null when the viewer
 * cannot express its filters (ids, sortby, unscale, a filter other than its cloud cover, or dates
 * that are not whole days). */
export function bakedState(layer: BakedLayer, collection: Collection): Partial<ViewState> | null {
  if (layer.ids || layer.sortby || layer.unscale) return null;
  const [from, to] = (layer.datetime ?? "/").split("/");
  const start = day(from, WHOLE_DAY_START);
  const end = day(to, WHOLE_DAY_END);
  const cloud = layer.filter ? CLOUD.exec(layer.filter.trim()) : null;
  if (start === null || end === null || (layer.filter && !cloud)) return null;
  const held = new Set(layer.bands);
  const preferred = collection.default.bands;
  const bands = preferred.every((band) => held.has(band))
    ? preferred
    : layer.bands.filter((band) => !DERIVED.has(band)).slice(0, 3);
  if (bands.length === 0) return null;
  return { quality: layer.quality, bands, start, end, cloud: cloud ? Number(cloud[1]) : null };
}

function instant(value: string | undefined): number | null {
  if (value === undefined || value === "" || value === "..") return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? Number.NaN : ms;
}

/** Whether two STAC datetime intervals are the same instants (to the millisecond). */
function sameInterval(a: string | undefined | null, b: string | undefined | null): boolean {
  const [a0, a1] = (a ?? "/").split("/");
  const [b0, b1] = (b ?? "/").split("/");
  return instant(a0) === instant(b0) && instant(a1) === instant(b1);
}

const spaced = (text: string | undefined | null): string => (text ?? "").replace(/\s+/g, " ").trim();

/** The name of the baked layer that answers tiles of these parameters at every zoom, or null.
 * The server decides (it compares parsed filters); this only tells the user. */
export function matchingBaked(params: TileParams | null, collection: Collection): string | null {
  if (!params || params.ids?.length) return null;
  for (const [name, layer] of Object.entries(collection.baked ?? {})) {
    if (layer.quality !== params.quality || layer.ids || layer.sortby || layer.unscale) continue;
    if (!params.bands.every((band) => layer.bands.includes(band))) continue;
    if (!sameInterval(layer.datetime, params.datetime)) continue;
    if (spaced(layer.filter) !== spaced(params.filter)) continue;
    return name;
  }
  return null;
}
