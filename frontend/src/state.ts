// The viewer's whole state, and its round trip through the URL hash (so a view can be shared).
import type { Collection } from "./api";
import { encodeValue } from "./query";

export const LAYER_KINDS = ["best", "worst", "custom", "provenance", "item"] as const;
export type LayerKind = (typeof LAYER_KINDS)[number];

export interface MapView {
  zoom: number;
  lat: number;
  lon: number;
}

export interface ViewState {
  collection: string;
  layer: LayerKind;
  /** The custom quality expression (also used by the provenance and item layers). */
  quality: string;
  bands: string[];
  min: number;
  max: number;
  /** Date filter bounds as YYYY-MM-DD, "" for open. */
  start: string;
  end: string;
  /** Keep items with `eo:cloud_cover < cloud`; null for no filter. */
  cloud: number | null;
  /** The item shown by the item layer ("" for the first one). */
  item: string;
  /** The band charted by the point inspector ("" for the first output band). */
  chartBand: string;
  basemap: boolean;
  view: MapView | null;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

function parseNumber(text: string | null): number | undefined {
  if (text === null || text.trim() === "") return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

function parseView(text: string | null): MapView | undefined {
  const parts = (text ?? "").split("/").map((part) => parseNumber(part));
  if (parts.length !== 3 || parts.some((part) => part === undefined)) return undefined;
  const [zoom, lat, lon] = parts as number[];
  if (zoom < 0 || zoom > 24 || Math.abs(lat) > 90 || Math.abs(lon) > 180) return undefined;
  return { zoom, lat, lon };
}

function round(value: number, digits: number): string {
  return String(Number(value.toFixed(digits)));
}

/** The URL hash (without '#') for a state. */
export function encodeState(state: ViewState): string {
  const params = new Map<string, string>();
  params.set("c", state.collection);
  params.set("layer", state.layer);
  params.set("q", state.quality);
  params.set("bands", state.bands.join(","));
  params.set("min", String(state.min));
  params.set("max", String(state.max));
  if (state.start) params.set("from", state.start);
  if (state.end) params.set("to", state.end);
  if (state.cloud !== null) params.set("cc", String(state.cloud));
  if (state.item) params.set("item", state.item);
  if (state.chartBand) params.set("cb", state.chartBand);
  if (state.basemap) params.set("osm", "1");
  if (state.view) {
    const { zoom, lat, lon } = state.view;
    params.set("map", `${round(zoom, 2)}/${round(lat, 5)}/${round(lon, 5)}`);
  }
  return [...params].map(([key, value]) => `${key}=${encodeValue(value)}`).join("&");
}

/** The valid fields found in a URL hash (with or without its leading '#'); the rest is dropped. */
export function decodeState(hash: string): Partial<ViewState> {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const state: Partial<ViewState> = {};
  const text = (key: string): string | undefined => params.get(key)?.trim() || undefined;

  const collection = text("c");
  if (collection) state.collection = collection;
  const layer = text("layer");
  if (layer && (LAYER_KINDS as readonly string[]).includes(layer)) state.layer = layer as LayerKind;
  const quality = text("q");
  if (quality) state.quality = quality;
  const bands = text("bands")
    ?.split(",")
    .map((band) => band.trim())
    .filter(Boolean);
  if (bands?.length) state.bands = bands;
  const min = parseNumber(params.get("min"));
  const max = parseNumber(params.get("max"));
  if (min !== undefined) state.min = min;
  if (max !== undefined) state.max = max;
  const start = text("from");
  if (start && DATE.test(start)) state.start = start;
  const end = text("to");
  if (end && DATE.test(end)) state.end = end;
  const cloud = parseNumber(params.get("cc"));
  if (cloud !== undefined && cloud >= 0 && cloud <= 100) state.cloud = cloud;
  const item = text("item");
  if (item) state.item = item;
  const chartBand = text("cb");
  if (chartBand) state.chartBand = chartBand;
  if (params.has("osm")) state.basemap = params.get("osm") === "1";
  const view = parseView(params.get("map"));
  if (view) state.view = view;
  return state;
}

/** A complete state: the given fields, the rest from the collection's defaults. */
export function resolveState(partial: Partial<ViewState>, collection: Collection): ViewState {
  const defaults = collection.default;
  return {
    collection: collection.id,
    layer: partial.layer ?? "best",
    quality: partial.quality ?? defaults.quality,
    bands: partial.bands ?? defaults.bands,
    min: partial.min ?? defaults.min,
    max: partial.max ?? defaults.max,
    start: partial.start ?? "",
    end: partial.end ?? "",
    cloud: partial.cloud ?? null,
    item: partial.item ?? "",
    chartBand: partial.chartBand ?? "",
    basemap: partial.basemap ?? false,
    view: partial.view ?? null,
  };
}
