// The MapLibre map and its raster layers: the mosaic being viewed and the optional OSM basemap.
import maplibregl, { type RasterTileSource, type StyleSpecification } from "maplibre-gl";
import type { Collection } from "./api";
import { tileOf, tileUrl } from "./urls";

export const MOSAIC = "mosaic";
/** Also the name the user sees in a basemap tile error. */
const OSM = "OpenStreetMap";
/** The map background; the end-to-end test tells painted tiles from it. */
const BACKGROUND = "#dfe3e8";

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
    tileSize: 256,
    bounds: collection.bounds,
    minzoom: collection.minzoom,
    maxzoom: collection.maxzoom,
  });
  map.addLayer({
    id: MOSAIC,
    type: "raster",
    source: MOSAIC,
    paint: { "raster-fade-duration": 0, "raster-resampling": "nearest" },
  });
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

/** A tile of the template to validate its parameters with: under the map centre if that is in the
 * collection, else at the collection's centre. */
export function probeTile(map: maplibregl.Map, collection: Collection, template: string): string {
  const [west, south, east, north] = collection.bounds;
  const { lng, lat } = map.getCenter();
  const inside = lng >= west && lng <= east && lat >= south && lat <= north;
  const [lon, probeLat] = inside ? [lng, lat] : collection.center;
  const z = Math.min(collection.maxzoom, Math.max(collection.minzoom, Math.round(map.getZoom())));
  const { x, y } = tileOf(lon, probeLat, z);
  return tileUrl(template, z, x, y);
}
