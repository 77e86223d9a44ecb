// Map of an alert's GPS track against the profile's geometry, drawn as SVG
// on a Natural Earth land base map (/app/land.json, see MAP-DATA.md).
//
// Projection: equirectangular around the centre of the data, x scaled by
// cos(latitude of the centre), so that at the scale of a port region (tens
// to hundreds of km) distances are true to a few per cent in every
// direction and metres convert to pixels with one factor (scale bar,
// corridor buffers, zone radii).
//
// Drawn from the alert context: the track (one polyline per stretch without
// a gap; fixes outside every corridor in red; gaps > 30 min dashed and
// labelled; stops — consecutive fixes under 3 km/h lasting 10 min or more —
// as circles labelled with their duration), corridors (translucent band as
// wide as the buffer either side, plus the centre line), authorised stop
// zones (green) and approved border crossings (blue).

import { clear, h, s } from './dom.js';
import { enumName, fmtDuration, fmtInt, fmtUtc, num } from './format.js';

const W = 960;
const H_MIN = 380;                   // height follows the data's shape within these
const H_MAX = 640;
const MARGIN = 0.08;                 // share of each side left free
const MIN_SPAN_DEG = 0.02;           // ~2 km: a single fix is not zoomed to nothing
const M_PER_DEG = 111320;            // metres per degree of latitude
const STOP_SPEED_KMH = 3;
const STOP_MIN_MS = 10 * 60 * 1000;
const GAP_MS = 30 * 60 * 1000;

let landPromise = null;

// Land rings with their bounding boxes, loaded once per page.
function loadLand() {
  if (!landPromise) {
    landPromise = fetch('/app/land.json', { credentials: 'same-origin' })
      .then((r) => { if (!r.ok) throw new Error(`land.json: ${r.status}`); return r.json(); })
      .then((doc) => (doc.polygons || []).map((ring) => {
        let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
        for (const [lon, lat] of ring) {
          if (lon < x0) x0 = lon; if (lon > x1) x1 = lon;
          if (lat < y0) y0 = lat; if (lat > y1) y1 = lat;
        }
        return { ring, x0, y0, x1, y1 };
      }))
      .catch((e) => { landPromise = null; throw e; });
  }
  return landPromise;
}

const SEALS = { 1: 'CLOSED', 2: 'OPENED', 3: 'TAMPERED' };

function normTrack(track) {
  return (track || []).map((p) => ({
    t: num(p.fix_time_ms), lat: num(p.lat), lon: num(p.lon), speed: num(p.speed_kmh),
    outside: !!p.outside_corridors, inZone: !!p.in_stop_zone,
    seal: enumName(p.seal_state, 'SEAL_STATE_', SEALS), border: p.border_geofence || '',
  // A fix at exactly 0,0 is a receiver without position, not a place.
  })).filter((p) => p.lat !== 0 || p.lon !== 0);
}

const geo = (p) => ({ lat: num(p && p.lat), lon: num(p && p.lon) });

// Runs of consecutive fixes below the stop speed that last long enough.
export function findStops(fixes) {
  const stops = [];
  let i = 0;
  while (i < fixes.length) {
    if (fixes[i].speed >= STOP_SPEED_KMH) { i += 1; continue; }
    let j = i;
    while (j + 1 < fixes.length && fixes[j + 1].speed < STOP_SPEED_KMH) j += 1;
    const dur = fixes[j].t - fixes[i].t;
    if (dur >= STOP_MIN_MS) {
      const run = fixes.slice(i, j + 1);
      stops.push({
        from: fixes[i].t, to: fixes[j].t, dur,
        lat: run.reduce((t, p) => t + p.lat, 0) / run.length,
        lon: run.reduce((t, p) => t + p.lon, 0) / run.length,
        authorised: run.every((p) => p.inZone),
        outside: run.some((p) => p.outside),
      });
    }
    i = j + 1;
  }
  return stops;
}

// 1, 2 or 5 times a power of ten, not above m.
function niceLength(m) {
  const p = 10 ** Math.floor(Math.log10(m));
  for (const f of [5, 2, 1]) if (f * p <= m) return f * p;
  return p;
}

function label(x, y, text, cls = '') {
  return s('text', { x: x.toFixed(1), y: y.toFixed(1), class: ['map-label', cls] , text });
}

export function renderMap(container, ctx) {
  const fixes = normTrack(ctx.track);
  const corridors = (ctx.corridors || []).map((c) => ({ name: c.name || 'corridor', buffer: num(c.buffer_m), points: (c.points || []).map(geo) }))
    .filter((c) => c.points.length > 0);
  const stopZones = (ctx.stop_zones || []).map((z) => ({ name: z.name || '', c: geo(z.centre), r: num(z.radius_m) }));
  const borders = (ctx.border_crossings || []).map((z) => ({ name: z.name || '', c: geo(z.centre), r: num(z.radius_m) }));

  const noTrack = fixes.length === 0;
  if (noTrack && !corridors.length && !stopZones.length && !borders.length) {
    clear(container, h('p', { id: 'map-no-track', class: 'no-track', text: 'no GPS track' }));
    return;
  }

  // Bounds of everything drawn, zones and buffers included.
  let minLat = Infinity, maxLat = -Infinity, minLon = Infinity, maxLon = -Infinity;
  const extend = (lat, lon, rM = 0) => {
    const dLat = rM / M_PER_DEG;
    const dLon = rM / (M_PER_DEG * Math.max(0.01, Math.cos((lat * Math.PI) / 180)));
    minLat = Math.min(minLat, lat - dLat); maxLat = Math.max(maxLat, lat + dLat);
    minLon = Math.min(minLon, lon - dLon); maxLon = Math.max(maxLon, lon + dLon);
  };
  fixes.forEach((p) => extend(p.lat, p.lon));
  corridors.forEach((c) => c.points.forEach((p) => extend(p.lat, p.lon, c.buffer)));
  stopZones.forEach((z) => extend(z.c.lat, z.c.lon, z.r));
  borders.forEach((z) => extend(z.c.lat, z.c.lon, z.r));

  const latC = (minLat + maxLat) / 2;
  const lonC = (minLon + maxLon) / 2;
  const cosC = Math.max(0.01, Math.cos((latC * Math.PI) / 180));
  const spanX = Math.max((maxLon - minLon) * cosC, MIN_SPAN_DEG);
  const spanY = Math.max(maxLat - minLat, MIN_SPAN_DEG);
  const H = Math.round(Math.min(H_MAX, Math.max(H_MIN, (W * spanY) / spanX)));
  const k = Math.min((W * (1 - 2 * MARGIN)) / spanX, (H * (1 - 2 * MARGIN)) / spanY); // px per degree
  const pxPerM = k / M_PER_DEG;
  const X = (lon) => W / 2 + (lon - lonC) * cosC * k;
  const Y = (lat) => H / 2 - (lat - latC) * k;
  const xy = (p) => `${X(p.lon).toFixed(1)},${Y(p.lat).toFixed(1)}`;

  const svg = s('svg', { id: 'map-svg', class: 'map-svg', viewBox: `0 0 ${W} ${H}`, role: 'img',
    'aria-label': noTrack ? 'map of corridors, no GPS track' : 'map of the GPS track' });
  const layer = (cls) => { const g = s('g', { class: cls }); svg.append(g); return g; };
  svg.append(s('rect', { x: 0, y: 0, width: W, height: H, class: 'sea' }));
  const gLand = layer('land-layer');
  const gCorr = layer('corridor-layer');
  const gZones = layer('zone-layer');
  const gTrack = layer('track-layer');
  const gOff = layer('track-off-layer');
  const gMarks = layer('marker-layer');
  const gLabels = layer('label-layer');
  const gOver = layer('overlay-layer');

  // Base map, once loaded: only rings whose box meets the view, all in one
  // path filled even-odd so that lakes (hole rings) stay open.
  const viewLon0 = lonC - W / 2 / (cosC * k), viewLon1 = lonC + W / 2 / (cosC * k);
  const viewLat0 = latC - H / 2 / k, viewLat1 = latC + H / 2 / k;
  loadLand().then((rings) => {
    const parts = [];
    for (const r of rings) {
      if (r.x1 < viewLon0 || r.x0 > viewLon1 || r.y1 < viewLat0 || r.y0 > viewLat1) continue;
      parts.push(`M${r.ring.map(([lon, lat]) => `${X(lon).toFixed(1)},${Y(lat).toFixed(1)}`).join('L')}Z`);
    }
    if (parts.length) gLand.append(s('path', { class: 'land', d: parts.join(''), 'fill-rule': 'evenodd' }));
  }).catch(() => {
    gLand.append(s('text', { x: W - 10, y: 20, class: 'map-note', 'text-anchor': 'end', text: 'base map unavailable' }));
  });

  // Corridors: band of the buffer's width either side, then the centre line.
  for (const c of corridors) {
    const pts = c.points.map(xy).join(' ');
    const width = Math.max(2 * c.buffer * pxPerM, 3);
    if (c.points.length === 1) {
      gCorr.append(s('circle', { cx: X(c.points[0].lon), cy: Y(c.points[0].lat), r: width / 2, class: 'corridor-band' }));
      continue;
    }
    gCorr.append(s('polyline', { points: pts, class: 'corridor-band', 'stroke-width': width.toFixed(1) },
      s('title', { text: `corridor ${c.name}, ±${fmtInt(c.buffer)} m` })));
    gCorr.append(s('polyline', { points: pts, class: 'corridor-line' }));
  }

  const zone = (z, cls, what) => {
    const cx = X(z.c.lon), cy = Y(z.c.lat);
    gZones.append(s('circle', { cx: cx.toFixed(1), cy: cy.toFixed(1), r: Math.max(z.r * pxPerM, 4).toFixed(1), class: cls },
      s('title', { text: `${what} ${z.name} (radius ${fmtInt(z.r)} m)` })));
    if (z.name) gLabels.append(label(cx, cy - Math.max(z.r * pxPerM, 4) - 4, z.name, `${cls}-label`));
  };
  stopZones.forEach((z) => zone(z, 'stop-zone', 'authorised stop zone'));
  borders.forEach((z) => zone(z, 'border-crossing', 'approved border crossing'));

  // Track: polylines between gaps; gaps dashed; off-corridor stretches red.
  let gaps = 0;
  let run = fixes.length ? [fixes[0]] : [];
  const flushRun = () => {
    if (run.length) gTrack.append(s('polyline', { class: 'track', points: run.map(xy).join(' ') }));
  };
  for (let i = 1; i < fixes.length; i += 1) {
    const a = fixes[i - 1], b = fixes[i];
    if (b.t - a.t > GAP_MS) {
      flushRun();
      run = [b];
      gaps += 1;
      gTrack.append(s('line', { class: 'track-gap', x1: X(a.lon), y1: Y(a.lat), x2: X(b.lon), y2: Y(b.lat) },
        s('title', { text: `no fix for ${fmtDuration(b.t - a.t)}: ${fmtUtc(a.t)} – ${fmtUtc(b.t)}` })));
      gLabels.append(label((X(a.lon) + X(b.lon)) / 2 + 6, (Y(a.lat) + Y(b.lat)) / 2, `gap ${fmtDuration(b.t - a.t)}`, 'gap-label'));
    } else {
      run.push(b);
      if (a.outside && b.outside) {
        gOff.append(s('line', { class: 'track-off', x1: X(a.lon), y1: Y(a.lat), x2: X(b.lon), y2: Y(b.lat) }));
      }
    }
  }
  flushRun();

  let outside = 0;
  for (const p of fixes) {
    const title = s('title', { text: `${fmtUtc(p.t, { seconds: true })} · ${p.speed.toFixed(0)} km/h` +
      `${p.outside ? ' · outside corridors' : ''}${p.seal && p.seal !== 'UNSPECIFIED' ? ` · seal ${p.seal}` : ''}` });
    if (p.outside) {
      outside += 1;
      gMarks.append(s('circle', { class: 'fix-outside', cx: X(p.lon).toFixed(1), cy: Y(p.lat).toFixed(1), r: 3 }, title));
    } else {
      gMarks.append(s('circle', { class: 'fix', cx: X(p.lon).toFixed(1), cy: Y(p.lat).toFixed(1), r: 1.6 }, title));
    }
    if (p.seal === 'OPENED' || p.seal === 'TAMPERED') {
      const x = X(p.lon), y = Y(p.lat);
      gMarks.append(s('path', { class: 'seal-event', d: `M${x},${y - 7}L${x + 6},${y}L${x},${y + 7}L${x - 6},${y}Z` },
        s('title', { text: `seal ${p.seal} at ${fmtUtc(p.t, { seconds: true })}` })));
    }
  }

  const stops = findStops(fixes);
  for (const st of stops) {
    const x = X(st.lon), y = Y(st.lat);
    gMarks.append(s('circle', { class: ['stop-marker', st.authorised ? 'authorised' : 'unauthorised'], cx: x.toFixed(1), cy: y.toFixed(1), r: 8 },
      s('title', { text: `stop ${fmtDuration(st.dur)}: ${fmtUtc(st.from)} – ${fmtUtc(st.to)}${st.authorised ? ' (authorised zone)' : ''}` })));
    gLabels.append(label(x + 11, y + 4, `stop ${fmtDuration(st.dur)}`, st.authorised ? 'stop-label' : 'stop-label bad'));
  }

  if (fixes.length) {
    const f = fixes[0], l = fixes[fixes.length - 1];
    gMarks.append(s('circle', { class: 'track-start', cx: X(f.lon), cy: Y(f.lat), r: 5 }));
    gLabels.append(label(X(f.lon) + 8, Y(f.lat) + 14, `first fix ${fmtUtc(f.t).slice(5)}`, 'end-label'));
    if (fixes.length > 1) {
      gMarks.append(s('circle', { class: 'track-end', cx: X(l.lon), cy: Y(l.lat), r: 6 }));
      const lastLabel = label(X(l.lon) - 10, Y(l.lat) + 4, `last fix ${fmtUtc(l.t).slice(5)}`, 'end-label');
      lastLabel.setAttribute('text-anchor', 'end');
      gLabels.append(lastLabel);
    }
  } else {
    gOver.append(s('text', { id: 'map-no-track-label', x: W / 2, y: 28, class: 'map-note big', 'text-anchor': 'middle', text: 'no GPS track' }));
  }

  // Scale bar, bottom left: about 140 px of a round length.
  const metres = niceLength(140 / pxPerM);
  const barPx = metres * pxPerM;
  const sx = 16, sy = H - 18;
  gOver.append(s('g', { class: 'scale-bar' },
    s('rect', { x: sx - 6, y: sy - 20, width: barPx + 12, height: 28, class: 'overlay-bg' }),
    s('path', { d: `M${sx},${sy - 5}V${sy}H${(sx + barPx).toFixed(1)}V${sy - 5}`, class: 'scale-line' }),
    s('text', { x: sx, y: sy - 8, class: 'scale-text', text: metres >= 1000 ? `${metres / 1000} km` : `${metres} m` })));

  // Legend, top right: only what is on the map.
  const items = [];
  if (fixes.length) items.push(['track', 'GPS track']);
  if (outside) items.push(['outside', 'fix outside corridors']);
  if (gaps) items.push(['gap', 'gap > 30 min']);
  if (stops.some((x) => !x.authorised)) items.push(['stop-bad', 'stop ≥ 10 min']);
  if (stops.some((x) => x.authorised)) items.push(['stop-ok', 'stop in authorised zone']);
  if (fixes.some((p) => p.seal === 'OPENED' || p.seal === 'TAMPERED')) items.push(['seal', 'seal opened / tampered']);
  if (corridors.length) items.push(['corridor', 'corridor (± buffer)']);
  if (stopZones.length) items.push(['zone', 'authorised stop zone']);
  if (borders.length) items.push(['border', 'approved border crossing']);
  const lw = 190, lh = 10 + items.length * 17;
  const lx = W - lw - 10, ly = 10;
  const legend = s('g', { class: 'legend', id: 'map-legend' },
    s('rect', { x: lx, y: ly, width: lw, height: lh, class: 'overlay-bg' }));
  items.forEach(([kind, text], i) => {
    const y = ly + 14 + i * 17, x = lx + 10;
    let sym;
    switch (kind) {
      case 'track': sym = s('line', { x1: x, y1: y, x2: x + 22, y2: y, class: 'track' }); break;
      case 'outside': sym = s('circle', { cx: x + 11, cy: y, r: 3.5, class: 'fix-outside' }); break;
      case 'gap': sym = s('line', { x1: x, y1: y, x2: x + 22, y2: y, class: 'track-gap' }); break;
      case 'stop-bad': sym = s('circle', { cx: x + 11, cy: y, r: 6, class: 'stop-marker unauthorised' }); break;
      case 'stop-ok': sym = s('circle', { cx: x + 11, cy: y, r: 6, class: 'stop-marker authorised' }); break;
      case 'seal': sym = s('path', { d: `M${x + 11},${y - 6}L${x + 16},${y}L${x + 11},${y + 6}L${x + 6},${y}Z`, class: 'seal-event' }); break;
      case 'corridor': sym = s('g', {}, s('line', { x1: x, y1: y, x2: x + 22, y2: y, class: 'corridor-band', 'stroke-width': 9 }),
        s('line', { x1: x, y1: y, x2: x + 22, y2: y, class: 'corridor-line' })); break;
      case 'zone': sym = s('circle', { cx: x + 11, cy: y, r: 6, class: 'stop-zone' }); break;
      default: sym = s('circle', { cx: x + 11, cy: y, r: 6, class: 'border-crossing' });
    }
    legend.append(sym, s('text', { x: x + 30, y: y + 4, class: 'legend-text', text }));
  });
  if (items.length) gOver.append(legend);
  gOver.append(s('text', { x: W - 8, y: H - 6, class: 'attribution', 'text-anchor': 'end', text: 'land: Natural Earth' }));

  // Text summary under the map, for reading and for print.
  const facts = [];
  if (fixes.length) {
    facts.push(`${fmtInt(fixes.length)} fixes ${fmtUtc(fixes[0].t)} – ${fmtUtc(fixes[fixes.length - 1].t)}`);
    if (num(ctx.fixes_seen) > fixes.length) facts.push(`${fmtInt(ctx.fixes_seen)} seen in all`);
    facts.push(`${fmtInt(outside)} outside corridors`);
    facts.push(`${stops.length} stop${stops.length === 1 ? '' : 's'} ≥ 10 min` +
      (stops.length ? ` (${stops.filter((x) => !x.authorised).length} outside stop zones)` : ''));
    facts.push(`${gaps} gap${gaps === 1 ? '' : 's'} > 30 min`);
  }
  clear(container,
    noTrack ? h('p', { id: 'map-no-track', class: 'no-track', text: 'no GPS track' }) : null,
    svg,
    facts.length ? h('p', { id: 'map-summary', class: 'map-summary muted', text: facts.join(' · ') }) : null);
}
