// prepare.mjs turns world-atlas's Natural Earth TopoJSON (countries at
// 1:110m) into the dashboard's world map: one SVG path per country, keyed by
// ISO 3166-1 alpha-2 (world-atlas keys countries by ISO numeric code), in
// an equirectangular projection 1000 units wide. Output:
// ../../internal/dashboard/static/world.json, committed so that `go build`
// needs no npm. Run: npm ci && node prepare.mjs
import { readFileSync, writeFileSync } from "node:fs";
import { feature } from "topojson-client";
import countries from "i18n-iso-countries";

const topo = JSON.parse(readFileSync("node_modules/world-atlas/countries-110m.json", "utf8"));
const fc = feature(topo, topo.objects.countries);
const W = 1000, H = 500; // lon -180..180 → 0..W, lat 90..-90 → 0..H
const x = (lon) => Math.round(((lon + 180) / 360) * W * 10) / 10;
const y = (lat) => Math.round(((90 - lat) / 180) * H * 10) / 10;

// Territories without an ISO numeric code in Natural Earth.
const byName = { Kosovo: "XK", "N. Cyprus": "CY", Somaliland: "SO" };

function ring(coords) {
  let d = "", px = null, py = null;
  for (const [lon, lat] of coords) {
    const X = x(lon), Y = y(lat);
    if (X === px && Y === py) continue;
    // A ring that crosses the antimeridian jumps across the map: start
    // a new subpath there instead of drawing a line over the world.
    const jump = px !== null && Math.abs(X - px) > W / 2;
    d += (d === "" || jump ? "M" : "L") + X + " " + Y;
    px = X; py = Y;
  }
  return d === "" ? "" : d + "Z";
}

const out = {};
for (const f of fc.features) {
  let cc = f.id ? countries.numericToAlpha2(f.id) : undefined;
  if (!cc) cc = byName[f.properties.name];
  if (cc === "AQ") continue; // Antarctica: no sightings, much ink
  if (!cc || !f.geometry) {
    console.error("skipped", f.id, f.properties.name);
    continue;
  }
  const polys = f.geometry.type === "Polygon" ? [f.geometry.coordinates] : f.geometry.coordinates;
  let d = "";
  for (const p of polys) for (const r of p) if (r.length > 3) d += ring(r);
  if (!out[cc]) out[cc] = { n: f.properties.name, d: "" };
  out[cc].d += d;
}
const doc = { width: W, height: H, source: "Natural Earth via world-atlas 2.0.2 (ISC)", countries: out };
writeFileSync("../../internal/dashboard/static/world.json", JSON.stringify(doc));
console.log(Object.keys(out).length, "countries");
