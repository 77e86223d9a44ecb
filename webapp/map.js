// Map of an alert's GPS track against the profile's geometry, drawn as SVG
// on a Natural Earth land base map (/app/land.json, see MAP-DATA.md).
//
// Projection: equirectangular around the centre of the view, x scaled by
// cos(latitude of the centre), so that at the scale of a port region (tens
// to hundreds of km) distances are true to a few per cent in every
// direction and metres convert to pixels with one factor (scale bar,
// corridor buffers, zone radii).
//
// Framing: with a track, the view fits the track (every fix) and the stop
// zones and border crossings a fix is in or near (FOCUS_ZONE_M), with
// TRACK_MARGIN free on each side and at least MIN_VIEW_M across, so that a
// 20-fix alert at a port is not a few pixels at the end of a 500 km
// corridor; corridors and other zones run off the edge (clipped). The
// #map-fit-toggle button switches to the whole geometry (track, every
// corridor and zone), which is also the only view when there is no track.
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
const MARGIN = 0.08;                 // whole view: share of each side left free
const MIN_SPAN_DEG = 0.02;           // whole view: ~2 km, a single zone is not zoomed to nothing
const TRACK_MARGIN = 0.15;           // track view: share of each side left free
const MIN_VIEW_M = 20000;            // track view: at least 20 km across (a parked box)
const FOCUS_ZONE_M = 5000;           // zones whose circle a fix is within this of join the track view
const FIRST_LABEL_MIN_PX = 60;       // first-fix label dropped when this close to the last fix
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

// Equirectangular distance in metres, good to well under 1 % at 100 km.
function metresBetween(a, b) {
  const cos = Math.cos((((a.lat + b.lat) / 2) * Math.PI) / 180);
  return Math.hypot((b.lon - a.lon) * cos, b.lat - a.lat) * M_PER_DEG;
}

// Bounding box in degrees, grown by points with an optional radius in metres.
function bbox() {
  const b = { minLat: Infinity, maxLat: -Infinity, minLon: Infinity, maxLon: -Infinity };
  b.add = (lat, lon, rM = 0) => {
    const dLat = rM / M_PER_DEG;
    const dLon = rM / (M_PER_DEG * Math.max(0.01, Math.cos((lat * Math.PI) / 180)));
    b.minLat = Math.min(b.minLat, lat - dLat); b.maxLat = Math.max(b.maxLat, lat + dLat);
    b.minLon = Math.min(b.minLon, lon - dLon); b.maxLon = Math.max(b.maxLon, lon + dLon);
  };
  return b;
}

// View of a box: centre, cos(lat) and px per degree of latitude. The box
// plus `margin` of each side, at least minDeg (degrees of latitude) across
// in both directions. Height from the box's shape unless given.
function frame(b, margin, minDeg, fixedH) {
  const latC = (b.minLat + b.maxLat) / 2;
  const lonC = (b.minLon + b.maxLon) / 2;
  const cosC = Math.max(0.01, Math.cos((latC * Math.PI) / 180));
  const needX = Math.max(((b.maxLon - b.minLon) * cosC) / (1 - 2 * margin), minDeg);
  const needY = Math.max((b.maxLat - b.minLat) / (1 - 2 * margin), minDeg);
  const H = fixedH || Math.round(Math.min(H_MAX, Math.max(H_MIN, (W * needY) / needX)));
  return { latC, lonC, cosC, H, k: Math.min(W / needX, H / needY) };
}

// Does view v show all of box b?
function shows(v, b) {
  const halfLon = W / 2 / (v.cosC * v.k), halfLat = v.H / 2 / v.k;
  return b.minLon >= v.lonC - halfLon && b.maxLon <= v.lonC + halfLon &&
    b.minLat >= v.latC - halfLat && b.maxLat <= v.latC + halfLat;
}

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

// Labels that keep inside the map and off each other. Boxes are estimated
// from the text length (the SVG is not in the document yet, so nothing can
// be measured). Hard obstacles (legend, scale bar, markers, labels placed
// before) are never covered unless a required label has no other place;
// soft ones (the track line, small zone circles) are avoided when a spot
// free of them exists.
function labelPlacer(W_, H_, layer) {
  const boxes = [];
  const soft = [];
  const PAD = 3;
  const hit = (list, b) => list.some((o) => b.x0 < o.x1 && b.x1 > o.x0 && b.y0 < o.y1 && b.y1 > o.y0);
  const inside = (b) => b.x0 >= PAD && b.x1 <= W_ - PAD && b.y0 >= PAD && b.y1 <= H_ - PAD;
  const boxOf = (x, y, text, anchor, font, bold) => {
    const w = text.length * font * (bold ? 0.68 : 0.6);
    const x0 = anchor === 'end' ? x - w : anchor === 'middle' ? x - w / 2 : x;
    return { x0, x1: x0 + w, y0: y - font * 0.85, y1: y + font * 0.3 };
  };
  // Candidate spots around a point marker of radius r: right, left, above,
  // below, then the four diagonals.
  const around = (r) => [
    [r + 5, 4, 'start'], [-(r + 5), 4, 'end'], [0, -(r + 6), 'middle'], [0, r + 15, 'middle'],
    [r + 3, -(r + 3), 'start'], [-(r + 3), -(r + 3), 'end'], [r + 3, r + 13, 'start'], [-(r + 3), r + 13, 'end'],
  ];
  return {
    block(x0, y0, x1, y1) { boxes.push({ x0, y0, x1, y1 }); },
    mark(x, y, r) { boxes.push({ x0: x - r, y0: y - r, x1: x + r, y1: y + r }); },
    soft(x, y, r) { soft.push({ x0: x - r, y0: y - r, x1: x + r, y1: y + r }); },
    // A polyline of [x, y] as soft obstacles, sampled every few pixels.
    softLine(pts) {
      for (let i = 1; i < pts.length; i += 1) {
        const [x0, y0] = pts[i - 1], [x1, y1] = pts[i];
        const n = Math.min(400, Math.ceil(Math.hypot(x1 - x0, y1 - y0) / 5));
        for (let j = 0; j <= n; j += 1) this.soft(x0 + ((x1 - x0) * j) / (n || 1), y0 + ((y1 - y0) * j) / (n || 1), 2);
      }
    },
    // Place text near (x, y), which must be in the view. Optional labels
    // are dropped when no spot is free; others go to the first spot,
    // shifted inside the map.
    place(x, y, text, cls, { r = 6, optional = false, font = 12, bold = false, spots = around(r) } = {}) {
      if (!(x >= 0 && x <= W_ && y >= 0 && y <= H_)) return null;
      let pick = null;
      for (const avoidSoft of [true, false]) {
        for (const [dx, dy, anchor] of spots) {
          const b = boxOf(x + dx, y + dy, text, anchor, font, bold);
          if (inside(b) && !hit(boxes, b) && !(avoidSoft && hit(soft, b))) { pick = { x: x + dx, y: y + dy, anchor, b }; break; }
        }
        if (pick) break;
      }
      if (!pick) {
        if (optional) return null;
        const [dx, dy, anchor] = spots[0];
        const b = boxOf(x + dx, y + dy, text, anchor, font, bold);
        const sx = b.x0 < PAD ? PAD - b.x0 : b.x1 > W_ - PAD ? W_ - PAD - b.x1 : 0;
        const sy = b.y0 < PAD ? PAD - b.y0 : b.y1 > H_ - PAD ? H_ - PAD - b.y1 : 0;
        pick = { x: x + dx + sx, y: y + dy + sy, anchor,
          b: { x0: b.x0 + sx, x1: b.x1 + sx, y0: b.y0 + sy, y1: b.y1 + sy } };
      }
      boxes.push(pick.b);
      const el = s('text', { x: pick.x.toFixed(1), y: pick.y.toFixed(1), class: ['map-label', cls], text,
        'text-anchor': pick.anchor === 'start' ? null : pick.anchor });
      layer.append(el);
      return el;
    },
  };
}

let clipSeq = 0;

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

  // Whole geometry: everything drawn, zones and buffers included.
  const whole = bbox();
  fixes.forEach((p) => whole.add(p.lat, p.lon));
  corridors.forEach((c) => c.points.forEach((p) => whole.add(p.lat, p.lon, c.buffer)));
  stopZones.forEach((z) => whole.add(z.c.lat, z.c.lon, z.r));
  borders.forEach((z) => whole.add(z.c.lat, z.c.lon, z.r));

  // Track view: the fixes and the zones they are in or near.
  let views;
  if (noTrack) {
    views = { whole: frame(whole, MARGIN, MIN_SPAN_DEG / (1 - 2 * MARGIN)) };
  } else {
    const focus = bbox();
    fixes.forEach((p) => focus.add(p.lat, p.lon));
    for (const z of [...stopZones, ...borders]) {
      if (fixes.some((p) => metresBetween(p, z.c) <= z.r + FOCUS_ZONE_M)) focus.add(z.c.lat, z.c.lon, z.r);
    }
    const track = frame(focus, TRACK_MARGIN, MIN_VIEW_M / M_PER_DEG);
    views = { track };
    // Same height for both, so that the toggle does not move the page.
    if (!shows(track, whole)) views.whole = frame(whole, MARGIN, MIN_SPAN_DEG / (1 - 2 * MARGIN), track.H);
  }
  const stops = findStops(fixes);

  let mode = noTrack ? 'whole' : 'track';
  const toggle = views.track && views.whole
    ? h('button', { id: 'map-fit-toggle', type: 'button', class: 'btn btn-small map-fit-toggle',
      on: { click: () => { mode = mode === 'track' ? 'whole' : 'track'; show(); } } })
    : null;

  const facts = [];
  if (fixes.length) {
    facts.push(`${fmtInt(fixes.length)} fixes ${fmtUtc(fixes[0].t)} – ${fmtUtc(fixes[fixes.length - 1].t)}`);
    if (num(ctx.fixes_seen) > fixes.length) facts.push(`${fmtInt(ctx.fixes_seen)} seen in all`);
    facts.push(`${fmtInt(fixes.filter((p) => p.outside).length)} outside corridors`);
    facts.push(`${stops.length} stop${stops.length === 1 ? '' : 's'} ≥ 10 min` +
      (stops.length ? ` (${stops.filter((x) => !x.authorised).length} outside stop zones)` : ''));
    const gaps = fixes.filter((p, i) => i > 0 && p.t - fixes[i - 1].t > GAP_MS).length;
    facts.push(`${gaps} gap${gaps === 1 ? '' : 's'} > 30 min`);
  }

  let svg = null;
  function show() {
    const next = drawSvg(views[mode], mode, { fixes, corridors, stopZones, borders, stops });
    if (svg && svg.parentNode) svg.replaceWith(next);
    svg = next;
    if (toggle) {
      const on = (m) => ['map-fit-opt', mode === m ? 'on' : ''];
      toggle.replaceChildren(h('span', { class: 'map-fit-key', text: 'fit: ' }),
        h('span', { class: on('track'), text: 'track' }), ' | ', h('span', { class: on('whole'), text: 'whole corridor' }));
      toggle.title = mode === 'track' ? 'show the whole corridor and every zone' : 'zoom to the GPS track';
      toggle.setAttribute('aria-pressed', String(mode === 'whole'));
    }
    return svg;
  }
  show();

  // Text summary under the map, for reading and for print.
  clear(container,
    noTrack ? h('p', { id: 'map-no-track', class: 'no-track', text: 'no GPS track' }) : null,
    svg,
    facts.length || toggle ? h('div', { class: 'map-foot' },
      facts.length ? h('p', { id: 'map-summary', class: 'map-summary muted', text: facts.join(' · ') }) : null,
      toggle) : null);
}

function drawSvg(v, mode, { fixes, corridors, stopZones, borders, stops }) {
  const { latC, lonC, cosC, k, H } = v;
  const noTrack = fixes.length === 0;
  const pxPerM = k / M_PER_DEG;
  const X = (lon) => W / 2 + (lon - lonC) * cosC * k;
  const Y = (lat) => H / 2 - (lat - latC) * k;
  const xy = (p) => `${X(p.lon).toFixed(1)},${Y(p.lat).toFixed(1)}`;
  const f1 = (n) => n.toFixed(1);

  const svg = s('svg', { id: 'map-svg', class: ['map-svg', `fit-${mode}`], viewBox: `0 0 ${W} ${H}`, role: 'img',
    'aria-label': noTrack ? 'map of corridors, no GPS track'
      : mode === 'track' ? 'map of the GPS track' : 'map of the GPS track and the whole corridor' });
  // Everything geographic runs off the edge in the track view: clip it.
  const clipId = `map-clip-${(clipSeq += 1)}`;
  svg.append(s('defs', {}, s('clipPath', { id: clipId }, s('rect', { x: 0, y: 0, width: W, height: H }))));
  svg.append(s('rect', { x: 0, y: 0, width: W, height: H, class: 'sea' }));
  const geoG = s('g', { 'clip-path': `url(#${clipId})` });
  svg.append(geoG);
  const layer = (cls, parent = geoG) => { const g = s('g', { class: cls }); parent.append(g); return g; };
  const gLand = layer('land-layer');
  const gCorr = layer('corridor-layer');
  const gZones = layer('zone-layer');
  const gTrack = layer('track-layer');
  const gOff = layer('track-off-layer');
  const gFixes = layer('fix-layer');
  const gEnds = layer('track-end-layer');
  const gEvents = layer('event-layer');       // stops and seal events, above the fixes
  const gLabels = layer('label-layer', svg);
  const gOver = layer('overlay-layer', svg);

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
    gOver.append(s('text', { x: 10, y: 20, class: 'map-note', text: 'base map unavailable' }));
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

  const zoneLabels = [];
  const zone = (z, cls, what) => {
    const cx = X(z.c.lon), cy = Y(z.c.lat), r = Math.max(z.r * pxPerM, 4);
    gZones.append(s('circle', { cx: f1(cx), cy: f1(cy), r: f1(r), class: cls },
      s('title', { text: `${what} ${z.name} (radius ${fmtInt(z.r)} m)` })));
    if (z.name) zoneLabels.push([cx, cy, r, z.name, `${cls}-label`]);
  };
  stopZones.forEach((z) => zone(z, 'stop-zone', 'authorised stop zone'));
  borders.forEach((z) => zone(z, 'border-crossing', 'approved border crossing'));

  // Track: polylines between gaps; gaps dashed; off-corridor stretches red.
  let gaps = 0;
  const gapLabels = [];
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
      gapLabels.push([(X(a.lon) + X(b.lon)) / 2, (Y(a.lat) + Y(b.lat)) / 2, `gap ${fmtDuration(b.t - a.t)}`]);
    } else {
      run.push(b);
      if (a.outside && b.outside) {
        gOff.append(s('line', { class: 'track-off', x1: X(a.lon), y1: Y(a.lat), x2: X(b.lon), y2: Y(b.lat) }));
      }
    }
  }
  flushRun();

  // Fixes, then the first and last fix, then events on top of them.
  let outside = 0;
  const sealEvents = [];
  fixes.forEach((p, i) => {
    const title = s('title', { text: `${fmtUtc(p.t, { seconds: true })} · ${p.speed.toFixed(0)} km/h` +
      `${p.outside ? ' · outside corridors' : ''}${p.seal && p.seal !== 'UNSPECIFIED' ? ` · seal ${p.seal}` : ''}` });
    if (p.outside) {
      outside += 1;
      gFixes.append(s('circle', { class: 'fix-outside', cx: f1(X(p.lon)), cy: f1(Y(p.lat)), r: 3 }, title));
    } else {
      gFixes.append(s('circle', { class: 'fix', cx: f1(X(p.lon)), cy: f1(Y(p.lat)), r: 1.6 }, title));
    }
    // One marker per run of the same opened/tampered state.
    if ((p.seal === 'OPENED' || p.seal === 'TAMPERED') && !(i > 0 && fixes[i - 1].seal === p.seal)) sealEvents.push(p);
  });

  const first = fixes[0], last = fixes[fixes.length - 1];
  if (fixes.length) {
    gEnds.append(s('circle', { class: 'track-start', cx: f1(X(first.lon)), cy: f1(Y(first.lat)), r: 5 },
      s('title', { text: `first fix ${fmtUtc(first.t, { seconds: true })}` })));
    if (fixes.length > 1) {
      gEnds.append(s('circle', { class: 'track-end', cx: f1(X(last.lon)), cy: f1(Y(last.lat)), r: 6 },
        s('title', { text: `last fix ${fmtUtc(last.t, { seconds: true })}` })));
    }
  }

  for (const st of stops) {
    gEvents.append(s('circle', { class: ['stop-marker', st.authorised ? 'authorised' : 'unauthorised'], cx: f1(X(st.lon)), cy: f1(Y(st.lat)), r: 8 },
      s('title', { text: `stop ${fmtDuration(st.dur)}: ${fmtUtc(st.from)} – ${fmtUtc(st.to)}${st.authorised ? ' (authorised zone)' : ''}` })));
  }
  const SEAL_H = 11, SEAL_W = 9;     // half-sizes of the diamond: well above a fix dot or the last-fix ring
  for (const p of sealEvents) {
    const x = X(p.lon), y = Y(p.lat);
    const d = `M${f1(x)},${f1(y - SEAL_H)}L${f1(x + SEAL_W)},${f1(y)}L${f1(x)},${f1(y + SEAL_H)}L${f1(x - SEAL_W)},${f1(y)}Z`;
    gEvents.append(s('path', { class: 'seal-halo', d }));
    gEvents.append(s('path', { class: 'seal-event', d }, s('title', { text: `seal ${p.seal} at ${fmtUtc(p.t, { seconds: true })}` })));
  }

  // Scale bar, bottom left: about 140 px of a round length.
  const metres = niceLength(140 / pxPerM);
  const barPx = metres * pxPerM;
  const sx = 16, sy = H - 18;
  gOver.append(s('g', { class: 'scale-bar' },
    s('rect', { x: sx - 6, y: sy - 20, width: f1(barPx + 12), height: 28, class: 'overlay-bg' }),
    s('path', { d: `M${sx},${sy - 5}V${sy}H${f1(sx + barPx)}V${sy - 5}`, class: 'scale-line' }),
    s('text', { x: sx, y: sy - 8, class: 'scale-text', text: metres >= 1000 ? `${metres / 1000} km` : `${metres} m` })));

  // Legend: only what is on the map, in the corner (top right, top left,
  // bottom right) that hides the fewest fixes and zone centres.
  const items = [];
  if (fixes.length) items.push(['track', 'GPS track']);
  if (outside) items.push(['outside', 'fix outside corridors']);
  if (gaps) items.push(['gap', 'gap > 30 min']);
  if (stops.some((x) => !x.authorised)) items.push(['stop-bad', 'stop ≥ 10 min']);
  if (stops.some((x) => x.authorised)) items.push(['stop-ok', 'stop in authorised zone']);
  if (sealEvents.length) items.push(['seal', 'seal opened / tampered']);
  if (corridors.length) items.push(['corridor', 'corridor (± buffer)']);
  if (stopZones.length) items.push(['zone', 'authorised stop zone']);
  if (borders.length) items.push(['border', 'approved border crossing']);
  const lw = 190, lh = 10 + items.length * 17;
  const pts = [...fixes, ...stopZones.map((z) => z.c), ...borders.map((z) => z.c)].map((p) => [X(p.lon), Y(p.lat)]);
  const corners = [[W - lw - 10, 10], [10, 10], [W - lw - 10, H - lh - 22]];
  const hidden = ([x, y]) => pts.filter(([px, py]) => px > x - 12 && px < x + lw + 12 && py > y - 12 && py < y + lh + 12).length;
  const [lx, ly] = corners.reduce((best, c) => (hidden(c) < hidden(best) ? c : best), corners[0]);
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
      case 'seal': sym = s('path', { d: `M${x + 11},${y - 7}L${x + 17},${y}L${x + 11},${y + 7}L${x + 5},${y}Z`, class: 'seal-event' }); break;
      case 'corridor': sym = s('g', {}, s('line', { x1: x, y1: y, x2: x + 22, y2: y, class: 'corridor-band', 'stroke-width': 9 }),
        s('line', { x1: x, y1: y, x2: x + 22, y2: y, class: 'corridor-line' })); break;
      case 'zone': sym = s('circle', { cx: x + 11, cy: y, r: 6, class: 'stop-zone' }); break;
      default: sym = s('circle', { cx: x + 11, cy: y, r: 6, class: 'border-crossing' });
    }
    legend.append(sym, s('text', { x: x + 30, y: y + 4, class: 'legend-text', text }));
  });
  if (items.length) gOver.append(legend);
  gOver.append(s('text', { x: W - 8, y: H - 6, class: 'attribution', 'text-anchor': 'end', text: 'land: Natural Earth' }));

  // Labels, most important first, each clear of the ones before, of the
  // overlays and of the markers, and inside the map.
  const L = labelPlacer(W, H, gLabels);
  if (items.length) L.block(lx, ly, lx + lw, ly + lh);
  L.block(sx - 6, sy - 20, sx + barPx + 6, sy + 8);
  L.block(W - 120, H - 18, W, H);                      // attribution
  if (fixes.length) {
    L.mark(X(first.lon), Y(first.lat), 6);
    L.mark(X(last.lon), Y(last.lat), 7);
  }
  stops.forEach((st) => L.mark(X(st.lon), Y(st.lat), 9));
  sealEvents.forEach((p) => L.mark(X(p.lon), Y(p.lat), SEAL_H));
  L.softLine(fixes.map((p) => [X(p.lon), Y(p.lat)]));
  for (const [x, y, r] of zoneLabels) if (r < 25) L.soft(x, y, r + 2);

  if (!fixes.length) {
    gOver.append(s('text', { id: 'map-no-track-label', x: W / 2, y: 28, class: 'map-note big', 'text-anchor': 'middle', text: 'no GPS track' }));
  } else {
    const lastSeal = sealEvents.includes(last) ? ` · seal ${last.seal}` : '';
    if (fixes.length > 1) {
      L.place(X(last.lon), Y(last.lat), `last fix ${fmtUtc(last.t).slice(5)}${lastSeal}`, 'end-label',
        { r: lastSeal ? SEAL_W + 1 : 7 });
    }
    for (const p of sealEvents) {
      if (p === last) continue;
      L.place(X(p.lon), Y(p.lat), `seal ${p.seal} ${fmtUtc(p.t).slice(11)}`, 'seal-label', { r: SEAL_W + 1, optional: true });
    }
    for (const st of stops) {
      L.place(X(st.lon), Y(st.lat), `stop ${fmtDuration(st.dur)}`, st.authorised ? 'stop-label' : 'stop-label bad',
        { r: 9, bold: true });
    }
    for (const [x, y, text] of gapLabels) L.place(x, y, text, 'gap-label', { r: 4, optional: true });
    // The first fix's label only when it is clear of the last fix's.
    const near = fixes.length > 1 && Math.hypot(X(first.lon) - X(last.lon), Y(first.lat) - Y(last.lat)) < FIRST_LABEL_MIN_PX;
    const firstText = fixes.length > 1 ? `first fix ${fmtUtc(first.t).slice(5)}` : `fix ${fmtUtc(first.t).slice(5)}`;
    if (!near) L.place(X(first.lon), Y(first.lat), firstText, 'end-label', { r: 6, optional: fixes.length > 1 });
  }
  // Zone names above or below the circle, else clear of the markers on it.
  for (const [x, y, r, text, cls] of zoneLabels) {
    const R = Math.max(r, 12);
    L.place(x, y, text, cls, { r, font: 11, optional: true,
      spots: [[0, -(r + 4), 'middle'], [0, r + 13, 'middle'], [r + 4, 4, 'start'], [-(r + 4), 4, 'end'],
        [0, -(R + 4), 'middle'], [0, R + 13, 'middle'], [R + 4, -(R - 2), 'start'], [-(R + 4), -(R - 2), 'end'],
        [R + 4, R + 10, 'start'], [-(R + 4), R + 10, 'end']] });
  }
  return svg;
}
