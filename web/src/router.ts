// Path routing with the History API (the server answers index.html for app paths).
import { useEffect, useState } from "preact/hooks";

const listeners = new Set<() => void>();

export function navigate(path: string) {
  if (path !== location.pathname + location.search) history.pushState(null, "", path);
  for (const f of listeners) f();
}

export function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const f = () => setPath(location.pathname);
    listeners.add(f);
    addEventListener("popstate", f);
    return () => {
      listeners.delete(f);
      removeEventListener("popstate", f);
    };
  }, []);
  return path;
}

// For <a href> clicks: navigate in the page instead of reloading (a reload would lose
// the in-memory session).
export function linkClick(e: MouseEvent) {
  const a = (e.target as Element).closest("a");
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
  const href = a.getAttribute("href");
  if (!href || !href.startsWith("/") || href.startsWith("/api/") || a.target) return;
  e.preventDefault();
  navigate(href);
}
