// The page's controls and window events, turned into the controller's intents.
import type { UrlKind, ViewerController } from "./ports";
import { cloudLabel, cloudOf, ui } from "./dom";
import type { LayerKind } from "./state";

const COPIED_LABEL_MS = 1500;

/** Copies a URL of the current layer (shown too, for browsers without clipboard access). */
function copyUrl(controller: ViewerController, button: HTMLButtonElement, kind: UrlKind): void {
  const url = controller.layerUrl(kind);
  if (url === null) return;
  ui.copiedUrl.hidden = false;
  ui.copiedUrl.value = url;
  ui.copiedUrl.select();
  const label = button.textContent;
  const done = (text: string) => {
    button.textContent = text;
    window.setTimeout(() => (button.textContent = label), COPIED_LABEL_MS);
  };
  if (!navigator.clipboard) {
    done("Copy it below");
    return;
  }
  navigator.clipboard.writeText(url).then(
    () => done("Copied"),
    () => done("Copy it below"),
  );
}

export function bindControls(controller: ViewerController): void {
  ui.collection.addEventListener("change", () => void controller.selectCollection(ui.collection.value));
  ui.layers.addEventListener("change", (event) => {
    const input = event.target as HTMLInputElement;
    if (input.name === "layer") controller.setLayer(input.value as LayerKind);
  });
  ui.preset.addEventListener("change", () => controller.choosePreset(ui.preset.value));
  ui.quality.addEventListener("change", () => controller.setQuality(ui.quality.value));
  ui.bands.addEventListener("change", () => controller.setBands(ui.bands.value));
  for (const [input, key] of [[ui.min, "min"], [ui.max, "max"]] as const) {
    input.addEventListener("change", () => controller.setRange(key, input.valueAsNumber));
  }
  ui.start.addEventListener("change", () => controller.setFilters({ start: ui.start.value }));
  ui.end.addEventListener("change", () => controller.setFilters({ end: ui.end.value }));
  // The label follows the slider while dragging; the filter applies on release.
  const cloud = () => cloudOf(ui.cloud.valueAsNumber);
  ui.cloud.addEventListener("input", () => (ui.cloudValue.textContent = cloudLabel(cloud())));
  ui.cloud.addEventListener("change", () => controller.setFilters({ cloud: cloud() }));
  ui.itemSlider.addEventListener("input", () => controller.pickItem(ui.itemSlider.valueAsNumber));
  ui.itemPrev.addEventListener("click", () => controller.stepItem(-1));
  ui.itemNext.addEventListener("click", () => controller.stepItem(1));
  ui.basemap.addEventListener("change", () => controller.setBasemap(ui.basemap.checked));
  ui.copyXyz.addEventListener("click", () => copyUrl(controller, ui.copyXyz, "xyz"));
  ui.copyWmts.addEventListener("click", () => copyUrl(controller, ui.copyWmts, "wmts"));
  ui.copyTileJson.addEventListener("click", () => copyUrl(controller, ui.copyTileJson, "tilejson"));
  ui.errorClose.addEventListener("click", () => controller.dismissError());
  ui.zoomHintGo.addEventListener("click", () => controller.zoomToHint());
  ui.inspectorClose.addEventListener("click", () => controller.closeInspector());
  ui.inspectorBody.addEventListener("change", (event) => {
    const select = event.target as HTMLSelectElement;
    if (select.id === "chart-band") controller.setChartBand(select.value);
  });
  window.addEventListener("hashchange", () => void controller.hashChanged());
}
