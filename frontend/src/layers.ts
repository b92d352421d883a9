// The MapLibre map and its layers: the mosaic being viewed, the optional OSM basemap, and the
// collection's footprint outline (shown with the too-many-items hint).
import maplibregl, { type GeoJSONSource, type RasterTileSource, type StyleSpecification } from "maplibre-gl";
import type { Collection } from "./api";
import { tileOf, tileUrl } from "./urls";

export const MOSAIC = "mosaic";
/** The footprint's source and line layer (the end-to-end test looks for the layer id). */
const FOOTPRINT = "footprint-outline";
const FOOTPRINT_COLOR = "#111827";
/** Also the name the user sees in a basemap tile error. */
const OSM = "OpenStreetMap";
/** The map background; the end-to-end test tells painted tiles from it. */
const BACKGROUND = "#dfe3e8";
/** The mosaic's tile size. MapLibre's zoom is for 512-px tiles: at zoom z it loads 256-px tiles of
 * level round(z + 1), so the server's levels (its "zoom in to N") are one above the map's zoom. */
const TILE_SIZE = 256;
const LEVEL_OFFSET = Math.log2(512 / TILE_SIZE);

const EMPTY_STYLE: StyleSpecification = {
  version: 8,
  sources: {},
  layers: [{ id: "background", type: "background", paint: { "background-color": BACKGROUND } }],
};

export function createMap(container: HTMLElement): maplibregl.Map {
  const map = new maplibregl.Map({
    container,
    style: EMPTY_STYLE,
    center: [0, 0],
    zoom: 1,
    attributionControl: { compact: true },
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  map.addControl(new maplibregl.ScaleControl(), "bottom-left");
  return map;
}

/** Shows the mosaic tiles of a template, creating the layer on first use. */
export function setMosaic(map: maplibregl.Map, collection: Collection, template: string): void {
  const source = map.getSource<RasterTileSource>(MOSAIC);
  if (source) {
    source.setTiles([template]);
    return;
  }
  map.addSource(MOSAIC, {
    type: "raster",
    tiles: [template],
    tileSize: TILE_SIZE,
    bounds: collection.bounds,
    minzoom: collection.minzoom,
    maxzoom: collection.maxzoom,
  });
  map.addLayer({
    id: MOSAIC,
    type: "raster",
    source: MOSAIC,
    paint: { "raster-fade-duration": 0, "raster-resampling": "nearest" },
  }, map.getLayer(FOOTPRINT) ? FOOTPRINT : undefined);
}

export function removeMosaic(map: maplibregl.Map): void {
  if (map.getLayer(MOSAIC)) map.removeLayer(MOSAIC);
  if (map.getSource(MOSAIC)) map.removeSource(MOSAIC);
}

/** Shows or hides the OpenStreetMap basemap (online), under the mosaic; added on first use. */
export function setBasemap(map: maplibregl.Map, visible: boolean): void {
  if (visible && !map.getSource(OSM)) {
    map.addSource(OSM, {
      type: "raster",
      tiles: ["https://tile.openstreetmap.org/{z}/{x}/{y}.png"],
      tileSize: 256,
      maxzoom: 19,
      attribution: '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>',
    });
    map.addLayer({ id: OSM, type: "raster", source: OSM }, map.getLayer(MOSAIC) ? MOSAIC : undefined);
  }
  if (map.getLayer(OSM)) map.setLayoutProperty(OSM, "visibility", visible ? "visible" : "none");
}

/** A tile of the template to validate it with: one the map would load (its level, under the map
 * centre if that is in the collection, else at the collection's centre), so a layer refused for too
 * many items passes as soon as the map's tiles would. */
export function probeTile(map: maplibregl.Map, collection: Collection, template: string): string {
  const [west, south, east, north] = collection.bounds;
  const { lng, lat } = map.getCenter();
  const inside = lng >= west && lng <= east && lat >= south && lat <= north;
  const [lon, probeLat] = inside ? [lng, lat] : collection.center;
  const level = Math.round(map.getZoom() + LEVEL_OFFSET);
  const z = Math.min(collection.maxzoom, Math.max(collection.minzoom, level));
  const { x, y } = tileOf(lon, probeLat, z);
  return tileUrl(template, z, x, y);
}

/** A GeoJSON line feature (typed here: @types/geojson is only MapLibre's dependency). */
export interface FootprintLine {
  type: "Feature";
  properties: Record<string, never>;
  geometry: { type: "LineString"; coordinates: [number, number][] };
}

/** The outline of a bounding box (west, south, east, north) as a closed line; across the
 * antimeridian (east < west) east goes past 180. */
export function footprintLine(bounds: [number, number, number, number]): FootprintLine {
  const [west, south, north] = [bounds[0], bounds[1], bounds[3]];
  const east = bounds[2] < west ? bounds[2] + 360 : bounds[2];
  const ring: [number, number][] = [
    [west, south],
    [east, south],
    [east, north],
    [west, north],
    [west, south],
  ];
  return { type: "Feature", properties: {}, geometry: { type: "LineString", coordinates: ring } };
}

/** Draws a collection's footprint outline (a dashed dark line over the mosaic), or moves it. */
export function showFootprint(map: maplibregl.Map, bounds: [number, number, number, number]): void {
  const data = footprintLine(bounds);
  const source = map.getSource<GeoJSONSource>(FOOTPRINT);
  if (source) {
    source.setData(data);
    return;
  }
  map.addSource(FOOTPRINT, { type: "geojson", data });
  map.addLayer({
    id: FOOTPRINT,
    type: "line",
    source: FOOTPRINT,
    layout: { "line-join": "round" },
    paint: { "line-color": FOOTPRINT_COLOR, "line-width": 2.5, "line-dasharray": [3, 2] },
  });
}

export function hideFootprint(map: maplibregl.Map): void {
  if (map.getLayer(FOOTPRINT)) map.removeLayer(FOOTPRINT);
  if (map.getSource(FOOTPRINT)) map.removeSource(FOOTPRINT);
}
