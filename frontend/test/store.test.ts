import { describe, expect, it, vi } from "vitest";
import { createStore } from "../src/store";

describe("store", () => {
  it("applies patches and tells listeners the new and previous value", () => {
    const store = createStore({ a: 1, b: [1] });
    const listener = vi.fn();
    store.subscribe(listener);
    const before = store.get();
    store.set({ a: 2 });
    expect(store.get()).toEqual({ a: 2, b: [1] });
    expect(before).toEqual({ a: 1, b: [1] });
    expect(listener).toHaveBeenCalledExactlyOnceWith({ a: 2, b: [1] }, before);
  });

  it("does not notify when no field changes", () => {
    const store = createStore({ a: 1, b: [1] as number[] });
    const listener = vi.fn();
    store.subscribe(listener);
    const value = store.get();
    store.set({ a: 1, b: value.b });
    store.set({});
    expect(listener).not.toHaveBeenCalled();
    expect(store.get()).toBe(value);
    store.set({ b: [1] }); // a new array is a change
    expect(listener).toHaveBeenCalledOnce();
  });

  it("stops notifying unsubscribed listeners", () => {
    const store = createStore({ a: 1 });
    const kept = vi.fn();
    const dropped = vi.fn();
    store.subscribe(kept);
    const unsubscribe = store.subscribe(dropped);
    unsubscribe();
    store.set({ a: 2 });
    expect(kept).toHaveBeenCalledOnce();
    expect(dropped).not.toHaveBeenCalled();
  });
});
