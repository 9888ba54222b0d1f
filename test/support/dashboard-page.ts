import type { Page } from "playwright-core";

/** How far the page scrolls sideways: 0 or less when it fits. */
export function sidewaysOverflow(page: Page): Promise<number> {
  return page.evaluate<number>(
    "document.documentElement.scrollWidth - document.documentElement.clientWidth",
  );
}

/**
 * Shown elements whose content is cut off or scrolls sideways inside them (an ellipsis, hidden
 * overflow, a scroll bar), each named by its tag, class and text. Boxes kept for screen readers
 * only (1 px, clipped) are left out.
 */
export function clippedElements(page: Page): Promise<string[]> {
  return page.evaluate<string[]>(`(() => {
    const found = [];
    for (const element of document.querySelectorAll("header *, main *, .demo-banner")) {
      if (element.closest(".visually-hidden, [hidden], svg")) continue;
      if (element.getClientRects().length === 0) continue;
      let forReaders = false;
      for (let box = element; box && !forReaders; box = box.parentElement) {
        const rect = box.getBoundingClientRect();
        forReaders = rect.width <= 1 && rect.height <= 1;
      }
      if (forReaders) continue;
      const style = getComputedStyle(element);
      const cuts = ["hidden", "clip", "auto", "scroll"].includes(style.overflowX);
      if (!cuts && style.textOverflow !== "ellipsis") continue;
      if (element.scrollWidth > element.clientWidth + 1) {
        found.push(element.tagName.toLowerCase() + "." + element.className + ": " +
          (element.textContent || "").trim().slice(0, 60));
      }
    }
    return found;
  })()`);
}
