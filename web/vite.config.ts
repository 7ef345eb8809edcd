import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// Static files for the portal nodes (src/http/static_site.hpp): hashed names under
// assets/ (cached for a year), no inline script or style (the strict CSP), no
// modulepreload polyfill (it would be an inline script).
export default defineConfig({
  plugins: [preact()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: "es2020",
  },
  server: {
    // `npm run dev` against a running node: CONTINUUM_API=http://127.0.0.1:8080
    proxy: Object.fromEntries(
      ["/api", "/fhir"].map((p) => [p, process.env.CONTINUUM_API ?? "http://127.0.0.1:8080"]),
    ),
  },
});
