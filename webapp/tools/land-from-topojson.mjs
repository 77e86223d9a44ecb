#!/usr/bin/env node
// Converts the "land" object of a world-atlas TopoJSON file (Natural Earth
// land polygons) into the control room's compact base map, webapp/land.json:
//
//   {"source": "...", "licence": "...", "polygons": [[[lon, lat], ...], ...]}
//
// Each entry of "polygons" is one closed ring, outer boundary or hole alike
// (lakes such as the Caspian are holes of the land): the map draws all rings
// as one path with the even-odd fill rule, so holes stay open without the
// file having to say which ring is which. Coordinates are WGS84 degrees
// rounded to 3 decimals (about 100 m, far below the 1:50m source accuracy);
// points that round onto their predecessor are dropped.
//
// Run once, by hand, when the base map is renewed:
//   cd /tmp && npm pack world-atlas@2 && tar xzf world-atlas-2.0.2.tgz
//   node webapp/tools/land-from-topojson.mjs /tmp/package/land-50m.json \
//        webapp/land.json "world-atlas 2.0.2, land-50m.json"
// No dependency: TopoJSON decoding is the few lines below.
import { readFileSync, writeFileSync } from 'node:fs';

const [input, output, sourceLabel] = process.argv.slice(2);
if (!input || !output) {
  console.error('usage: land-from-topojson.mjs LAND.topojson OUT.json [SOURCE-LABEL]');
  process.exit(2);
}

const topology = JSON.parse(readFileSync(input, 'utf8'));
const land = topology.objects.land;
if (!land) throw new Error(`${input}: no "land" object`);

// Arcs of a quantized topology are delta-encoded integers; the transform
// maps them back to degrees. Unquantized topologies have absolute positions.
const transform = topology.transform;
const arcs = topology.arcs.map((arc) => {
  if (!transform) return arc.map(([x, y]) => [x, y]);
  let x = 0, y = 0;
  return arc.map(([dx, dy]) => {
    x += dx; y += dy;
    return [x * transform.scale[0] + transform.translate[0],
            y * transform.scale[1] + transform.translate[1]];
  });
});

const round3 = (v) => Math.round(v * 1000) / 1000;

// A ring is a list of arc indices; a negative index ~i is arc i reversed.
// Consecutive arcs share their joining point, so it is kept once.
function ring(indices) {
  const points = [];
  for (const index of indices) {
    const arc = index >= 0 ? arcs[index] : arcs[~index].slice().reverse();
    arc.forEach((p, k) => { if (k > 0 || points.length === 0) points.push(p); });
  }
  const out = [];
  for (const [lon, lat] of points) {
    const q = [round3(lon), round3(lat)];
    const last = out[out.length - 1];
    if (!last || last[0] !== q[0] || last[1] !== q[1]) out.push(q);
  }
  return out;
}

const rings = [];
function geometry(g) {
  switch (g.type) {
    case 'GeometryCollection': g.geometries.forEach(geometry); break;
    case 'Polygon': g.arcs.forEach((r) => rings.push(ring(r))); break;
    case 'MultiPolygon': g.arcs.forEach((p) => p.forEach((r) => rings.push(ring(r)))); break;
    default: break; // land has no points or lines
  }
}
geometry(land);

// A ring needs at least 4 points (3 distinct and the closing one) to enclose
// anything; tiny islands that rounding collapsed are left out.
const polygons = rings.filter((r) => r.length >= 4);

const doc = {
  source: `Natural Earth land polygons via npm package ${sourceLabel || input}`,
  licence: 'Natural Earth data: public domain. world-atlas packaging: ISC licence (c) Michael Bostock.',
  polygons,
};
// One ring per line keeps the file diffable without bloating it.
const body = polygons.map((r) => JSON.stringify(r)).join(',\n');
writeFileSync(output,
  `{"source": ${JSON.stringify(doc.source)},\n"licence": ${JSON.stringify(doc.licence)},\n"polygons": [\n${body}\n]}\n`);
console.log(`${output}: ${polygons.length} rings, ${polygons.reduce((n, r) => n + r.length, 0)} points`);
