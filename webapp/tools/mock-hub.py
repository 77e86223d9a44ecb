#!/usr/bin/env python3
"""Development stand-in for the hub's control-room API, for working on the
web app without a hub, a dispatcher or a build.

    python3 webapp/tools/mock-hub.py 8099 [--alert-every 20] [--filler 0]
    then open http://127.0.0.1:8099/

Plaintext on 127.0.0.1 only. Serves webapp/ as the hub does ("/" is
index.html, "/app/<path>" is webapp/<path>) with the hub's
Content-Security-Policy, and fakes the API of
docs/design/control-room-api.md over a handful of realistic alerts:

  CSQU3054383-3  CRITICAL  e-seal opened at an off-corridor stop between
                           Laem Chabang and Saraburi; RPM gamma alarm; the
                           goods description holds "<script>" (must render
                           as text); earlier alerts -1 and -2
  TGHU...-1      CRITICAL  seal swap 45 min out of Turkmenbashi seaport (TM):
                           20 fixes near the port on a 531 km corridor to
                           Ashgabat, seal OPENED at the last fix (the real
                           case the map's track framing is made for)
  TCLU...-1      HIGH      stop by the Mekong near the Nong Khai border
                           crossing after a tracking gap
  MSKU...-2      MEDIUM    late manifest amendment, weight mismatch, no track
  OOLU...-1      LOW       random selection

Users (password = user name): ofc (officer, TH), supervisor (supervisor,
TH LA TM), admin (admin, TH LA TM), ofc-th-2 (officer, TH), ofc-la-1
(officer, LA). Five wrong passwords in a row give 429 for 30 s.

The live feed emits a new random alert every --alert-every seconds.
Test hooks, without session: POST /mock/emit (one alert now; body
{"priority": "CRITICAL"} optional) and POST /mock/overflow (sends
"overflow" to every feed). --filler N adds N older random alerts (paging).
"""

import argparse
import http.server
import json
import math
import queue
import random
import secrets
import threading
import time
import urllib.parse
from pathlib import Path

WEBAPP = Path(__file__).resolve().parent.parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'")
TYPES = {'.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
         '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.svg': 'image/svg+xml',
         '.png': 'image/png', '.md': 'text/plain; charset=utf-8'}
PRIORITY_RANK = {'LOW': 1, 'MEDIUM': 2, 'HIGH': 3, 'CRITICAL': 4}
LANES = {'LOW': 'LANE_GREEN', 'MEDIUM': 'LANE_YELLOW', 'HIGH': 'LANE_RED', 'CRITICAL': 'LANE_RED'}
MIN = 60_000

USERS = {
    'ofc': {'name': 'ofc', 'role': 'officer', 'regions': ['TH']},
    'supervisor': {'name': 'supervisor', 'role': 'supervisor', 'regions': ['TH', 'LA', 'TM']},
    'admin': {'name': 'admin', 'role': 'admin', 'regions': ['TH', 'LA', 'TM']},
    'ofc-th-2': {'name': 'ofc-th-2', 'role': 'officer', 'regions': ['TH']},
    'ofc-la-1': {'name': 'ofc-la-1', 'role': 'officer', 'regions': ['LA']},
}

lock = threading.RLock()
alerts = {}        # alert_id -> {'alert': proto JSON, 'stored_ms': int}
workflows = {}     # alert_id -> Workflow
sessions = {}      # cookie -> {'user': User, 'csrf': str}
audit = []         # entries, oldest first
feeds = []         # (queue, regions) of open /api/events streams
failures = {'count': 0, 'locked_until': 0.0}
opts = None


def now_ms():
    return int(time.time() * 1000)


# ------------------------------------------------------------------ data

def check_digit(code10):
    """ISO 6346 check digit of owner code + category + serial."""
    values, v = {}, 10
    for ch in 'ABCDEFGHIJKLMNOPQRSTUVWXYZ':
        if v % 11 == 0:
            v += 1
        values[ch] = v
        v += 1
    total = sum((values[c] if c.isalpha() else int(c)) * 2 ** i for i, c in enumerate(code10))
    return str(total % 11 % 10)


def container(prefix, serial):
    code = f'{prefix}{serial:06d}'
    return code + check_digit(code)


def prune(v):
    """Proto3 JSON leaves out fields at their default value."""
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            x = prune(x)
            if x in (None, False, 0, 0.0, '', '0', [], {}):
                continue
            out[k] = x
        return out
    if isinstance(v, list):
        return [prune(x) for x in v]
    return v


def metres(a, b):
    """Equirectangular distance between (lat, lon) pairs, metres."""
    lat = math.radians((a[0] + b[0]) / 2)
    dx = math.radians(b[1] - a[1]) * math.cos(lat) * 6371000
    dy = math.radians(b[0] - a[0]) * 6371000
    return math.hypot(dx, dy)


def dist_to_polyline(p, line):
    best = float('inf')
    lat0 = math.radians(p[0])
    to_xy = lambda q: ((q[1] - p[1]) * math.cos(lat0) * 111320, (q[0] - p[0]) * 111320)
    for a, b in zip(line, line[1:]):
        ax, ay = to_xy(a)
        bx, by = to_xy(b)
        dx, dy = bx - ax, by - ay
        t = 0 if dx == dy == 0 else max(0, min(1, -(ax * dx + ay * dy) / (dx * dx + dy * dy)))
        best = min(best, math.hypot(ax + t * dx, ay + t * dy))
    return best


def drive(waypoints, start_ms, speed_kmh=55, step_ms=5 * MIN):
    """Fixes every step_ms along the waypoints at a steady speed."""
    fixes, t = [], start_ms
    legs = list(zip(waypoints, waypoints[1:]))
    step_m = speed_kmh / 3.6 * step_ms / 1000
    pos_m = 0.0
    total = sum(metres(a, b) for a, b in legs)
    while pos_m <= total:
        acc = 0.0
        for a, b in legs:
            d = metres(a, b)
            if acc + d >= pos_m:
                f = (pos_m - acc) / d if d else 0
                fixes.append({'t': t, 'lat': a[0] + f * (b[0] - a[0]), 'lon': a[1] + f * (b[1] - a[1]),
                              'speed': speed_kmh + random.uniform(-6, 6)})
                break
            acc += d
        pos_m += step_m
        t += step_ms
    return fixes


def along(line, d_m):
    """(lat, lon) d_m metres along a polyline of (lat, lon), clamped to its ends."""
    acc = 0.0
    for a, b in zip(line, line[1:]):
        d = metres(a, b)
        if d and acc + d >= d_m:
            f = max(0.0, (d_m - acc) / d)
            return (a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]))
        acc += d
    return line[-1]


def park(at, start_ms, minutes, step_ms=5 * MIN):
    return [{'t': start_ms + i * step_ms, 'lat': at[0] + random.uniform(-0.0002, 0.0002),
             'lon': at[1] + random.uniform(-0.0002, 0.0002), 'speed': random.uniform(0, 1.5)}
            for i in range(minutes * MIN // step_ms + 1)]


def track_points(fixes, corridors, zones, seal_at=None):
    out = []
    for f in fixes:
        p = (f['lat'], f['lon'])
        outside = bool(corridors) and all(dist_to_polyline(p, c['line']) > c['buffer'] for c in corridors)
        in_zone = any(metres(p, z['c']) <= z['r'] for z in zones)
        seal = 'SEAL_STATE_OPENED' if seal_at and f['t'] == seal_at else 'SEAL_STATE_CLOSED'
        out.append({'fix_time_ms': str(f['t']), 'lat': round(f['lat'], 6), 'lon': round(f['lon'], 6),
                    'speed_kmh': round(f['speed'], 1), 'outside_corridors': outside,
                    'in_stop_zone': in_zone, 'seal_state': seal, 'border_geofence': f.get('geofence', '')})
    return out


def corridor_json(c):
    return {'name': c['name'], 'buffer_m': c['buffer'],
            'points': [{'lat': a, 'lon': b} for a, b in c['line']]}


def zone_json(z):
    return {'name': z['name'], 'centre': {'lat': z['c'][0], 'lon': z['c'][1]}, 'radius_m': z['r']}


def indicator(id_, family, contribution, summary, evidence, fired_ms, critical=False):
    return {'id': id_, 'family': family, 'contribution': contribution, 'critical': critical,
            'summary': summary, 'evidence': [{'key': k, 'value': v} for k, v in evidence],
            'fired_at_ms': str(fired_ms)}


def make_alert(cn, seq, priority, indicators, regions, pod, fd, event_ms, context,
               reason='ALERT_REASON_FIRST_PRIORITY', imo=''):
    score = round(sum(i['contribution'] for i in indicators), 2)
    return prune({
        'alert_id': f'{cn}-{seq}', 'container_number': cn, 'sequence': seq,
        'priority': f'PRIORITY_{priority}', 'lane': LANES[priority], 'score': score,
        'indicators': indicators, 'profile_name': 'default', 'profile_version': '2026.11',
        'regions': regions, 'event_time_ms': str(event_ms), 'emit_time_ms': str(event_ms + 140),
        'reason': reason, 'port_of_discharge': pod, 'final_destination': fd, 'vessel_imo': imo,
        'context': context,
    })


def store(alert, stored_ms=None, broadcast=True):
    with lock:
        alerts[alert['alert_id']] = {'alert': alert, 'stored_ms': stored_ms or now_ms()}
        workflows.setdefault(alert['alert_id'], {'status': 'new', 'assignee': '', 'acknowledged_by': '',
                                                 'acknowledged_ms': 0, 'updated_by': '', 'updated_ms': 0})
        sm = summary(alert['alert_id'])
    if broadcast:
        publish('alert', sm, alert.get('regions', []))
    return sm


def seed():
    t0 = now_ms() - 9 * 60 * MIN          # the CRITICAL container left the port 9 h ago
    random.seed(6346)

    # CSQU3054383: Laem Chabang -> Saraburi with an off-corridor stop.
    cn = 'CSQU3054383'
    corr = {'name': 'THLCH – Saraburi ICD (Motorway 7 / Route 1)', 'buffer': 2000,
            'line': [(13.080, 100.900), (13.300, 100.960), (13.550, 100.960), (13.800, 100.880),
                     (14.050, 100.780), (14.300, 100.840), (14.530, 100.920)]}
    zones = [{'name': 'Laem Chabang terminal B1', 'c': (13.083, 100.897), 'r': 1800},
             {'name': 'Saraburi ICD', 'c': (14.528, 100.918), 'r': 1200},
             {'name': 'Rest area km 62', 'c': (13.420, 100.975), 'r': 600}]
    off = (13.668, 101.062)
    leg1 = drive([(13.083, 100.897), (13.300, 100.960), (13.550, 100.960), (13.620, 101.000), off], t0 + 30 * MIN)
    stop = park(off, leg1[-1]['t'] + 5 * MIN, 50)
    leg2 = drive([off, (13.720, 100.990), (13.800, 100.880), (14.050, 100.780), (14.300, 100.840),
                  (14.528, 100.918)], stop[-1]['t'] + 5 * MIN)
    # A 40-minute hole in the fixes after leaving the stop.
    hole_from = leg2[4]['t']
    leg2 = [f for f in leg2 if not hole_from < f['t'] < hole_from + 40 * MIN]
    end = park((14.528, 100.918), leg2[-1]['t'] + 5 * MIN, 20)
    fixes = leg1 + stop + leg2 + end
    seal_ms = stop[3]['t']
    track = track_points(fixes, [corr], zones, seal_at=seal_ms)
    event_ms = fixes[-1]['t']
    rpm_ms = t0 + 10 * MIN
    manifest = {
        'container_number': cn, 'version': 2, 'bill_of_lading': 'MEDUTH2611053',
        'shipper': {'name': 'Guangzhou Huaxin Ceramics Co., Ltd',
                    'address': 'No. 18 Foshan Road\nNanhai District, Foshan 528200', 'country': 'CN',
                    'id': '91440605MA4UX1234K'},
        'consignee': {'name': 'Siam Tile Trading Co., Ltd', 'address': '88/12 Moo 3, Nong Khae\nSaraburi 18140',
                      'country': 'TH', 'id': '0105561234567'},
        'notify_party': {'name': 'Lao-Thai Logistics Sole Co.', 'address': 'Thadeua Road km 6, Vientiane',
                         'country': 'LA'},
        'goods': [
            {'hs_code': '690721', 'description': 'Glazed ceramic floor tiles 600x600 mm <script>alert(1)</script>',
             'packages': 960, 'package_type': 'CT', 'gross_weight_kg': 21600},
            {'hs_code': '382450', 'description': 'Tile adhesive, cement based, 25 kg bags',
             'packages': 40, 'package_type': 'PX', 'gross_weight_kg': 2000},
        ],
        'seal_numbers': ['CN4471023', 'EMS-0098812'], 'vessel_imo': '9321483', 'vessel_name': 'KOTA HARUM',
        'voyage': '0WK3SN1MA', 'port_of_loading': 'CNNSA', 'transhipment_ports': ['SGSIN'],
        'port_of_discharge': 'THLCH', 'final_destination': 'LAVTE', 'eta_ms': str(t0 - 20 * 60 * MIN),
        'declared_at_ms': str(t0 - 4 * 24 * 60 * MIN), 'freight_payment': 'FREIGHT_PAYMENT_COLLECT',
        'carrier_scac': 'MSCU', 'container_size_type': '22G1', 'tare_weight_kg': 2230,
        'amended_fields': ['consignee'],
    }
    scans = [
        {'container_number': cn, 'scan_id': 'LCH-NII-20261118-0442', 'site': 'THLCH-B1', 'device_id': 'NII-LCH-02',
         'scanned_at_ms': str(t0 - 3 * 60 * MIN), 'kind': 'SCAN_KIND_NII_XRAY',
         'nii': {'verdict': 'VERDICT_INCONCLUSIVE', 'anomaly_score': 0.46, 'estimated_weight_kg': 26400,
                 'analyst_note': 'Uniform tile stacks; density change at the door end, rows 1-2. '
                                 'Note <b>not</b> markup.',
                 'image_ref': 'nii://THLCH/2026/11/18/0442'}},
        {'container_number': cn, 'scan_id': 'RPM-LCH-03-88121', 'site': 'THLCH-B1', 'device_id': 'RPM-LCH-03',
         'scanned_at_ms': str(rpm_ms), 'kind': 'SCAN_KIND_RPM',
         'rpm': {'gamma_cps': 412.0, 'gamma_background_cps': 121.5, 'neutron_cps': 3.4,
                 'neutron_background_cps': 1.1, 'gamma_alarm': True, 'neutron_alarm': False,
                 'occupancy_seconds': 9.2}},
    ]
    outcomes = [{'container_number': cn, 'outcome_id': 'CSQU3054383-1-ofc-th-7-1731900000000',
                 'alert_id': '', 'inspected_at_ms': str(t0 - 370 * 24 * 60 * MIN), 'site': 'THLCH-B1',
                 'officer_unit': 'PCU Laem Chabang', 'result': 'RESULT_NO_FINDING',
                 'notes': 'Tiles as declared.', 'final': True}]
    stop_dur_s = (stop[-1]['t'] - stop[0]['t']) // 1000
    outside_n = sum(1 for p in track if p.get('outside_corridors'))
    inds = [
        indicator('gps.seal_opened_outside_zone', 'gps', 3.0,
                  f'E-seal reported OPENED at {off[0]:.3f}, {off[1]:.3f}, 9.9 km from corridor '
                  f'"{corr["name"]}", outside every authorised stop zone',
                  [('seal_state', 'OPENED'), ('fix_time', time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(seal_ms / 1000))),
                   ('distance_to_corridor_m', '9870'), ('tracker_id', 'ES-TH-220871')], seal_ms, critical=True),
        indicator('gps.unscheduled_stop', 'gps', 1.75,
                  f'Stopped {stop_dur_s // 60} min outside authorised stop zones near Phanat Nikhom',
                  [('stop_duration_s', str(stop_dur_s)), ('position', f'{off[0]:.4f}, {off[1]:.4f}'),
                   ('nearest_zone', 'Rest area km 62 (27.9 km)')], stop[-1]['t']),
        indicator('gps.off_corridor', 'gps', 1.2,
                  f'{outside_n} fixes more than 2,000 m from the corridor', [('fixes_outside', str(outside_n)),
                                                                          ('max_distance_m', '9870')], stop[0]['t']),
        indicator('scan.rpm_gamma_alarm', 'scan', 0.9,
                  'Gamma 412 cps against background 121.5 cps at THLCH-B1 RPM-LCH-03 (alarm); neutron 3.4 cps, no alarm',
                  [('gamma_cps', '412.0'), ('gamma_background_cps', '121.5'), ('neutron_cps', '3.4')], rpm_ms),
        indicator('manifest.description_mismatch', 'manifest', 0.4,
                  'Goods line 1 description does not read as HS 6907.21: "Glazed ceramic floor tiles 600x600 mm <script>alert(1)</script>"',
                  [('goods[0].hs_code', '690721'), ('goods[0].description', '<script>alert(1)</script>')],
                  int(manifest['declared_at_ms'])),
    ]
    ctx = {'manifest': manifest, 'manifest_versions': 2, 'scans': scans, 'outcomes': outcomes, 'track': track,
           'fixes_seen': len(track) + 36, 'corridors': [corridor_json(corr)],
           'stop_zones': [zone_json(z) for z in zones], 'border_crossings': []}
    early_ctx = {'manifest': manifest, 'manifest_versions': 2, 'scans': scans[:1], 'outcomes': outcomes}
    store(make_alert(cn, 1, 'MEDIUM', [inds[4], indicator('scan.nii_inconclusive', 'scan', 1.3,
                     'X-ray verdict INCONCLUSIVE (anomaly 0.46) at THLCH-B1', [('anomaly_score', '0.46')],
                     int(scans[0]['scanned_at_ms']))], ['TH', 'LA'], 'THLCH', 'LAVTE',
                     int(scans[0]['scanned_at_ms']), early_ctx, imo='9321483'), t0 - 3 * 60 * MIN, False)
    store(make_alert(cn, 2, 'HIGH', [inds[3], inds[4], indicator('scan.nii_inconclusive', 'scan', 1.3,
                     'X-ray verdict INCONCLUSIVE (anomaly 0.46) at THLCH-B1', [('anomaly_score', '0.46')],
                     int(scans[0]['scanned_at_ms']))], ['TH', 'LA'], 'THLCH', 'LAVTE', rpm_ms,
                     {**early_ctx, 'scans': scans}, reason='ALERT_REASON_PRIORITY_RAISED', imo='9321483'),
          rpm_ms + 300, False)
    store(make_alert(cn, 3, 'CRITICAL', inds, ['TH', 'LA'], 'THLCH', 'LAVTE', event_ms, ctx,
                     reason='ALERT_REASON_NEW_CRITICAL_INDICATOR', imo='9321483'), event_ms + 400, False)

    # TGHU: the simulator's seal_swap case out of Turkmenbashi, as the real
    # hub shows it: 20 fixes 1-5 min apart from the port gate along the first
    # ~45 km of a 531 km corridor, seal OPENED at fix 20 (the last one).
    cn5 = container('TGHU', 430117)
    corr5 = {'name': 'turkmenbashi-ashgabat', 'buffer': 6000,
             'line': [(40.00, 52.97), (40.02, 53.20), (39.98, 53.52), (39.93, 53.84), (39.63, 54.23),
                      (39.51, 54.37), (39.38, 54.95), (39.24, 55.52), (39.11, 55.90), (38.98, 56.28),
                      (38.71, 56.86), (38.44, 57.43), (38.16, 57.96), (37.95, 58.38)]}
    zones5 = [{'name': 'Turkmenbashi seaport', 'c': (40.00, 52.97), 'r': 4000},
              {'name': 'Balkanabat truck park', 'c': (39.51, 54.37), 'r': 800},
              {'name': 'Ashgabat dry port', 'c': (37.95, 58.38), 'r': 5000}]
    rng5 = random.Random(5207)           # own stream: the other cases stay as they were
    t5 = now_ms() - 70 * MIN
    fx5, t, d = [], t5, 1800.0
    for i in range(20):
        lat, lon = along(corr5['line'], d)
        speed = 58 + rng5.uniform(-10, 10)
        fx5.append({'t': t, 'lat': lat + rng5.uniform(-0.0004, 0.0004), 'lon': lon + rng5.uniform(-0.0004, 0.0004),
                    'speed': speed})
        dt = rng5.randint(1, 5) * MIN
        t += dt
        d += speed / 3.6 * dt / 1000
    seal5 = fx5[-1]['t']
    track5 = track_points(fx5, [corr5], zones5, seal_at=seal5)
    man5 = {'container_number': cn5, 'version': 1, 'bill_of_lading': 'KRWASB2611207',
            'shipper': {'name': 'Kura Agro Trading LLC', 'address': 'Baku, Azerbaijan', 'country': 'AZ'},
            'consignee': {'name': 'Ahal Textile Import', 'address': 'Ashgabat', 'country': 'TM'},
            'goods': [{'hs_code': '520812', 'description': 'Unbleached cotton woven fabric', 'packages': 220,
                       'package_type': 'BL', 'gross_weight_kg': 18700}],
            'seal_numbers': ['SL208841'], 'port_of_loading': 'AZBAK', 'port_of_discharge': 'TMKRW',
            'final_destination': 'TMASB', 'declared_at_ms': str(t5 - 3 * 24 * 60 * MIN),
            'container_size_type': '22G1', 'tare_weight_kg': 2200}
    inds5 = [
        indicator('gps.seal_breach', 'gps', 3.0, f'E-seal reported OPENED at fix 20, {metres(zones5[0]["c"], (fx5[-1]["lat"], fx5[-1]["lon"])) / 1000:.0f} km out of Turkmenbashi '
                  'seaport, outside every authorised stop zone', [('seal_state', 'OPENED'), ('fix', '20')],
                  seal5, critical=True),
        indicator('gps.seal_mismatch', 'gps', 2.0, 'Seal read SX208841 from fix 20 on, declared SL208841',
                  [('declared', 'SL208841'), ('read', 'SX208841')], seal5),
    ]
    store(make_alert(cn5, 1, 'CRITICAL', inds5, ['TM'], 'TMKRW', 'TMASB', seal5,
                     {'manifest': man5, 'manifest_versions': 1, 'track': track5, 'fixes_seen': len(track5),
                      'corridors': [corridor_json(corr5)], 'stop_zones': [zone_json(z) for z in zones5]}),
          seal5 + 300, False)

    # TCLU: Udon Thani -> near the Nong Khai bridge, gap, then a stop by the river.
    cn2 = container('TCLU', 123456)
    t1 = now_ms() - 5 * 60 * MIN
    corr2 = {'name': 'Udon Thani – Nong Khai (Route 2)', 'buffer': 1500,
             'line': [(17.405, 102.790), (17.600, 102.760), (17.780, 102.745), (17.868, 102.727)]}
    border = {'name': 'Nong Khai – Friendship Bridge I', 'c': (17.8785, 102.7175), 'r': 800}
    fx = drive([(17.405, 102.790), (17.600, 102.760), (17.780, 102.745)], t1, speed_kmh=62)
    after_gap = fx[-1]['t'] + 45 * MIN
    river = (17.8830, 102.6620)
    fx += drive([(17.842, 102.700), river], after_gap, speed_kmh=35) + park(river, after_gap + 20 * MIN, 25)
    fx[-1]['geofence'] = ''
    track2 = track_points(fx, [corr2], [])
    ev2 = fx[-1]['t']
    man2 = {'container_number': cn2, 'version': 1, 'bill_of_lading': 'ONEYTHB7731020',
            'shipper': {'name': 'Kuala Lumpur Fresh Trading Sdn Bhd', 'address': 'Lot 7, Jalan Kapar, Klang', 'country': 'MY'},
            'consignee': {'name': 'Vientiane Import-Export Co.', 'address': 'Ban Phonxay, Saysettha, Vientiane',
                          'country': 'LA', 'id': 'LA-0199-2231'},
            'goods': [{'hs_code': '210690', 'description': 'Food preparations, instant noodles', 'packages': 1800,
                       'package_type': 'CT', 'gross_weight_kg': 14400}],
            'seal_numbers': ['ONE7731020'], 'vessel_imo': '9806079', 'vessel_name': 'SITC HAIPHONG', 'voyage': '2247S',
            'port_of_loading': 'MYPKG', 'transhipment_ports': [], 'port_of_discharge': 'THLCH',
            'final_destination': 'LAVTE', 'declared_at_ms': str(t1 - 6 * 24 * 60 * MIN),
            'freight_payment': 'FREIGHT_PAYMENT_THIRD_PARTY', 'carrier_scac': 'ONEY', 'container_size_type': '45G1',
            'tare_weight_kg': 3800}
    inds2 = [
        indicator('gps.stop_near_border', 'gps', 1.6, 'Stopped 25 min on the Mekong bank 6.0 km west of the '
                  'approved crossing Nong Khai – Friendship Bridge I', [('stop_duration_s', '1500'),
                  ('distance_to_crossing_m', '6030')], ev2),
        indicator('gps.tracking_gap', 'gps', 0.9, 'No fix for 45 min within 10 km of the border',
                  [('gap_s', '2700')], after_gap),
        indicator('manifest.freight_third_party', 'manifest', 0.8, 'Freight paid by a third party on a transit '
                  'consignment to LAVTE', [('freight_payment', 'THIRD_PARTY')], int(man2['declared_at_ms'])),
        indicator('history.consignee_prior_discrepancy', 'history', 0.7, 'Consignee had a DISCREPANCY outcome '
                  '41 days ago', [('consignee', 'Vientiane Import-Export Co.'), ('outcome', 'DISCREPANCY')], ev2),
    ]
    store(make_alert(cn2, 1, 'HIGH', inds2, ['TH', 'LA'], 'THLCH', 'LAVTE', ev2,
                     {'manifest': man2, 'manifest_versions': 1, 'track': track2, 'fixes_seen': len(track2),
                      'corridors': [corridor_json(corr2)], 'border_crossings': [zone_json(border)]},
                     imo='9806079'), ev2 + 250, False)

    # MSKU: documentary, no track.
    cn3 = container('MSKU', 765432)
    t2 = now_ms() - 95 * MIN
    man3 = {'container_number': cn3, 'version': 3, 'bill_of_lading': 'MAEU258114470',
            'shipper': {'name': 'Shenzhen Bright Electronics Ltd', 'address': 'Bao\'an District, Shenzhen', 'country': 'CN'},
            'consignee': {'name': 'BKK Gadget Distribution Co., Ltd', 'address': '1200 Rama IV Road, Khlong Toei, Bangkok',
                          'country': 'TH', 'id': '0105559988776'},
            'goods': [{'hs_code': '851830', 'description': 'Headphones, wireless', 'packages': 420, 'package_type': 'CT',
                       'gross_weight_kg': 3150},
                      {'hs_code': '', 'description': 'Phone cases, silicone', 'packages': 300, 'package_type': 'CT',
                       'gross_weight_kg': 2400}],
            'seal_numbers': ['ML-CN4410092'], 'vessel_imo': '9778791', 'vessel_name': 'MAERSK SEMARANG', 'voyage': '247W',
            'port_of_loading': 'CNYTN', 'port_of_discharge': 'THBKK', 'final_destination': 'THBKK',
            'eta_ms': str(t2 + 2 * 60 * MIN), 'declared_at_ms': str(t2 - 30 * MIN),
            'freight_payment': 'FREIGHT_PAYMENT_PREPAID', 'carrier_scac': 'MAEU', 'container_size_type': '42G1',
            'tare_weight_kg': 3750, 'amended_fields': ['goods', 'consignee'], 'unusable_fields': ['goods[1].hs_code']}
    scans3 = [{'container_number': cn3, 'scan_id': 'BKK-NII-0912', 'site': 'THBKK', 'device_id': 'NII-BKK-01',
               'scanned_at_ms': str(t2), 'kind': 'SCAN_KIND_NII_XRAY',
               'nii': {'verdict': 'VERDICT_SUSPICIOUS', 'anomaly_score': 0.71, 'estimated_weight_kg': 12900,
                       'analyst_note': 'Dense block behind front row not consistent with headphones.'}}]
    inds3 = [
        indicator('manifest.weight_mismatch', 'manifest', 1.1, 'Estimated weight 12,900 kg is 38 % above declared '
                  '9,300 kg including tare', [('estimated_kg', '12900'), ('declared_kg', '9300')], t2),
        indicator('manifest.late_amendment', 'manifest', 0.9, 'Goods and consignee amended 30 min before the scan '
                  '(version 3)', [('amended_fields', 'goods, consignee'), ('version', '3')], t2 - 30 * MIN),
        indicator('history.prior_discrepancy', 'history', 0.6, 'Container had a DISCREPANCY outcome at THBKK',
                  [('outcome_id', 'MSKU-old-1')], t2),
        indicator('manifest.incomplete', 'manifest', 0.4, '1 field unusable: goods[1].hs_code',
                  [('unusable_fields', 'goods[1].hs_code')], t2 - 30 * MIN),
    ]
    out3 = [{'container_number': cn3, 'outcome_id': 'MSKU-old-1', 'alert_id': f'{cn3}-1',
             'inspected_at_ms': str(t2 - 200 * 24 * 60 * MIN), 'site': 'THBKK', 'officer_unit': 'PCU Bangkok Port',
             'result': 'RESULT_DISCREPANCY', 'quantity_description': '40 cartons undeclared',
             'notes': 'Extra cartons of phone accessories.', 'final': True}]
    store(make_alert(cn3, 2, 'MEDIUM', inds3, ['TH'], 'THBKK', 'THBKK', t2,
                     {'manifest': man3, 'manifest_versions': 3, 'scans': scans3, 'outcomes': out3},
                     imo='9778791'), t2 + 300, False)

    # OOLU: random selection.
    cn4 = container('OOLU', 887766)
    t3 = now_ms() - 35 * MIN
    man4 = {'container_number': cn4, 'version': 1, 'bill_of_lading': 'OOLU2650118870',
            'shipper': {'name': 'Hai Phong Garment JSC', 'country': 'VN'},
            'consignee': {'name': 'Chonburi Apparel Co., Ltd', 'country': 'TH'},
            'goods': [{'hs_code': '620462', 'description': "Women's cotton trousers", 'packages': 650,
                       'package_type': 'CT', 'gross_weight_kg': 7800}],
            'seal_numbers': ['OOL0551299'], 'vessel_name': 'OOCL BRISBANE', 'voyage': '112S', 'port_of_loading': 'VNHPH',
            'port_of_discharge': 'THLCH', 'final_destination': 'THLCH', 'declared_at_ms': str(t3 - 3 * 24 * 60 * MIN),
            'container_size_type': '45G1', 'tare_weight_kg': 3900}
    store(make_alert(cn4, 1, 'LOW', [indicator('selection.random', 'selection', 0,
                     'Picked by the profile\'s random selection (2 % of containers)', [('rate', '0.02')], t3)],
                     ['TH'], 'THLCH', 'THLCH', t3, {'manifest': man4, 'manifest_versions': 1},
                     reason='ALERT_REASON_RANDOM_SELECTION'), t3 + 90, False)


HEADLINES = [
    ('manifest', 'manifest.hs_high_risk', 'HS 2106.90 food preparations from a high-risk route'),
    ('manifest', 'manifest.new_consignee', 'Consignee first seen 3 days ago'),
    ('scan', 'scan.nii_suspicious', 'X-ray verdict SUSPICIOUS (anomaly 0.83)'),
    ('gps', 'gps.off_corridor', '7 fixes more than 2,000 m from the corridor'),
    ('gps', 'gps.unscheduled_stop', 'Stopped 22 min outside authorised stop zones'),
    ('history', 'history.shipper_seizure', 'Shipper linked to a SEIZURE outcome'),
    ('scan', 'scan.rpm_neutron_alarm', 'Neutron 9.8 cps against background 1.2 cps (alarm)'),
]
PARTIES = ['Golden Lotus Trading', 'Mekong Star Logistics', 'Eastern Seaboard Parts Co.', 'Asia Pacific Rubber Ltd',
           'Nanning Hardware Export', 'Bangna Foods Co.', 'Isan Agro Supply']


def random_alert(event_ms, priority=None):
    priority = priority or random.choices(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], [40, 30, 20, 10])[0]
    prefix = random.choice(['MSCU', 'TGHU', 'CMAU', 'HLXU', 'SEGU', 'TEMU', 'BMOU'])
    cn = container(prefix, random.randint(100000, 999999))
    picks = random.sample(HEADLINES, random.randint(1, 3))
    if priority == 'CRITICAL' and not any(p[1] == 'scan.rpm_neutron_alarm' for p in picks):
        picks.insert(0, HEADLINES[6])
    scale = {'LOW': 0.5, 'MEDIUM': 1.0, 'HIGH': 1.6, 'CRITICAL': 2.2}[priority]
    inds = [indicator(i, f, round(random.uniform(0.5, 1.5) * scale, 2), text, [('source', 'mock')], event_ms,
                      critical=(priority == 'CRITICAL' and i == 'scan.rpm_neutron_alarm')) for f, i, text in picks]
    # Critical indicators first, then by contribution (the summary's headline is the first).
    inds.sort(key=lambda x: (not x['critical'], -x['contribution']))
    region = random.choice(['TH', 'TH', 'TH', 'LA'])
    pod = random.choice(['THLCH', 'THLCH', 'THBKK', 'THSCT'])
    fd = 'LAVTE' if region == 'LA' else random.choice([pod, 'THBKK', 'THLKR'])
    regions = ['TH', 'LA'] if region == 'LA' else ['TH']
    man = {'container_number': cn, 'version': 1, 'bill_of_lading': f'MOCK{random.randint(10**8, 10**9 - 1)}',
           'shipper': {'name': random.choice(PARTIES), 'country': 'CN'},
           'consignee': {'name': random.choice(PARTIES), 'country': region},
           'goods': [{'hs_code': '847130', 'description': 'Laptop computers', 'packages': 300, 'package_type': 'CT',
                      'gross_weight_kg': 4200}],
           'seal_numbers': [f'SL{random.randint(100000, 999999)}'], 'port_of_loading': 'CNSHA',
           'port_of_discharge': pod, 'final_destination': fd, 'declared_at_ms': str(event_ms - 2 * 24 * 60 * MIN)}
    seq = random.randint(1, 3)
    return make_alert(cn, seq, priority, inds, regions, pod, fd, event_ms,
                      {'manifest': man, 'manifest_versions': 1})


# ------------------------------------------------------------ summaries

def summary(alert_id):
    entry = alerts[alert_id]
    a = entry['alert']
    man = a.get('context', {}).get('manifest', {})
    inds = a.get('indicators', [])
    families = sorted({i['family'] for i in inds if i.get('family')})   # the hub's order
    return {
        'alert_id': a['alert_id'], 'container_number': a['container_number'], 'sequence': a.get('sequence', 0),
        'priority': a['priority'].replace('PRIORITY_', ''), 'score': a.get('score', 0),
        'regions': a.get('regions', []), 'port_of_discharge': a.get('port_of_discharge', ''),
        'final_destination': a.get('final_destination', ''), 'event_time_ms': int(a.get('event_time_ms', 0)),
        'emit_time_ms': int(a.get('emit_time_ms', 0)), 'stored_ms': entry['stored_ms'], 'families': families,
        'headline': inds[0]['summary'] if inds else 'random selection',
        'bill_of_lading': man.get('bill_of_lading', ''), 'shipper': man.get('shipper', {}).get('name', ''),
        'consignee': man.get('consignee', {}).get('name', ''),
        'profile': f"{a.get('profile_name', '')} {a.get('profile_version', '')}".strip(),
        'workflow': dict(workflows[alert_id]),
    }


def visible(alert, user):
    return any(r in user['regions'] for r in alert.get('regions', []))


def publish(event, data, regions):
    with lock:
        for q, user_regions in list(feeds):
            if any(r in user_regions for r in regions):
                q.put((event, data))


def record(user, action, alert_id='', container_number='', detail=''):
    with lock:
        audit.append({'seq': len(audit) + 1, 'time_ms': now_ms(), 'user': user, 'action': action,
                      'alert_id': alert_id, 'container_number': container_number, 'detail': detail})


def emitter():
    while True:
        time.sleep(opts.alert_every)
        a = random_alert(now_ms() - random.randint(500, 4000))
        store(a)


# -------------------------------------------------------------- handler

class Handler(http.server.BaseHTTPRequestHandler):
    server_version = 'boxwatch-mock-hub'

    def log_message(self, fmt, *args):
        if not opts.quiet:
            super().log_message(fmt, *args)

    # --- plumbing
    def send(self, status, body=b'', ctype='application/json', headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Security-Policy', CSP)
        self.send_header('X-Content-Type-Options', 'nosniff')
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        if ctype == 'application/json':
            self.send_header('Cache-Control', 'no-store')
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != 'HEAD':
            self.wfile.write(body)

    def error(self, status, message, headers=None):
        self.send(status, {'error': message}, headers=headers)

    def body(self):
        n = int(self.headers.get('Content-Length') or 0)
        try:
            return json.loads(self.rfile.read(n) or b'null')
        except ValueError:
            return None

    def session(self):
        cookies = {}
        for part in (self.headers.get('Cookie') or '').split(';'):
            if '=' in part:
                k, v = part.strip().split('=', 1)
                cookies[k] = v
        with lock:
            return sessions.get(cookies.get('bw_session', '')), cookies.get('bw_session', '')

    def need_session(self, write=False, roles=None):
        sess, _ = self.session()
        if not sess:
            self.error(401, 'no session')
            return None
        if write and self.headers.get('X-CSRF-Token') != sess['csrf']:
            self.error(403, 'missing or wrong CSRF token')
            return None
        if roles and sess['user']['role'] not in roles:
            self.error(403, 'not permitted for role ' + sess['user']['role'])
            return None
        return sess

    # --- static
    def static(self, path):
        if path == '/':
            rel = 'index.html'
        else:
            rel = path[len('/app/'):]
        parts = [p for p in rel.split('/') if p]
        if not parts or any(p.startswith('.') or p == '..' for p in parts) or parts[0] == 'tools':
            return self.error(404, 'not found')
        f = WEBAPP.joinpath(*parts)
        if not f.is_file():
            return self.error(404, 'not found')
        self.send(200, f.read_bytes(), TYPES.get(f.suffix, 'application/octet-stream'),
                  {'Cache-Control': 'no-cache'})

    # --- routes
    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        path, q = url.path, {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
        if path == '/' or path.startswith('/app/'):
            return self.static(path)
        if path == '/healthz':
            return self.send(200, {'ok': True})
        if path == '/api/session':
            sess, _ = self.session()
            return self.send(200, {'user': sess['user'], 'csrf_token': sess['csrf']}) if sess else self.error(401, 'no session')
        if path == '/api/events':
            return self.events()
        sess = self.need_session()
        if not sess:
            return
        user = sess['user']
        if path == '/api/alerts':
            return self.list_alerts(user, q)
        if path.startswith('/api/alerts/'):
            alert_id = urllib.parse.unquote(path[len('/api/alerts/'):])
            with lock:
                entry = alerts.get(alert_id)
                if not entry or not visible(entry['alert'], user):
                    return self.error(404, 'unknown alert')
                a = entry['alert']
                others = [summary(k) for k, e in alerts.items()
                          if e['alert']['container_number'] == a['container_number'] and k != alert_id
                          and visible(e['alert'], user)]
                answer = {'alert': a, 'summary': summary(alert_id), 'others': others}
            record(user['name'], 'view', alert_id, a['container_number'])
            return self.send(200, answer)
        if path == '/api/status':
            return self.status(user)
        if path == '/api/users':
            if user['role'] not in ('supervisor', 'admin'):
                return self.error(403, 'supervisor or admin only')
            return self.send(200, {'users': list(USERS.values())})
        if path == '/api/audit':
            if user['role'] not in ('supervisor', 'admin'):
                return self.error(403, 'supervisor or admin only')
            with lock:
                rows = list(reversed(audit))
            if q.get('alert_id'):
                rows = [r for r in rows if r['alert_id'] == q['alert_id']]
            if q.get('container'):
                rows = [r for r in rows if r['container_number'] == q['container']]
            if q.get('user'):
                rows = [r for r in rows if r['user'] == q['user']]
            if q.get('before'):
                rows = [r for r in rows if r['seq'] < int(q['before'])]
            return self.send(200, {'entries': rows[:int(q.get('limit') or 100)]})
        return self.error(404, 'not found')

    def do_HEAD(self):
        self.do_GET()

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path
        if path == '/api/session':
            return self.login()
        if path == '/mock/emit':
            b = self.body() or {}
            sm = store(random_alert(now_ms() - 300, b.get('priority')))
            return self.send(200, sm)
        if path == '/mock/overflow':
            publish('overflow', {}, ['TH', 'LA'])
            return self.send(200, {})
        sess = self.need_session(write=True)
        if not sess:
            return
        user = sess['user']
        m = path.split('/')
        if len(m) == 5 and m[1] == 'api' and m[2] == 'alerts' and m[4] in ('workflow', 'outcome'):
            alert_id = urllib.parse.unquote(m[3])
            with lock:
                entry = alerts.get(alert_id)
            if not entry or not visible(entry['alert'], user):
                return self.error(404, 'unknown alert')
            b = self.body()
            if not isinstance(b, dict):
                return self.error(400, 'body must be a JSON object')
            return (self.workflow if m[4] == 'workflow' else self.outcome)(user, entry['alert'], b)
        return self.error(404, 'not found')

    def do_DELETE(self):
        if urllib.parse.urlsplit(self.path).path != '/api/session':
            return self.error(404, 'not found')
        sess = self.need_session(write=True)
        if not sess:
            return
        _, cookie = self.session()
        with lock:
            sessions.pop(cookie, None)
        record(sess['user']['name'], 'logout')
        self.send(200, {}, headers={'Set-Cookie': 'bw_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0'})

    # --- API bodies
    def login(self):
        b = self.body() or {}
        name, password = str(b.get('username', '')), str(b.get('password', ''))
        left = failures['locked_until'] - time.time()
        if left > 0:
            return self.error(429, f'too many failed logins; try again in {math.ceil(left)} s',
                              {'Retry-After': str(math.ceil(left))})
        if name not in USERS or password != name:
            failures['count'] += 1
            if failures['count'] >= 5:
                failures['count'] = 0
                failures['locked_until'] = time.time() + 30
            record(name, 'login_failed')
            return self.error(401, 'wrong user name or password')
        failures['count'] = 0
        cookie, csrf = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        with lock:
            sessions[cookie] = {'user': USERS[name], 'csrf': csrf}
        record(name, 'login')
        self.send(200, {'user': USERS[name], 'csrf_token': csrf},
                  headers={'Set-Cookie': f'bw_session={cookie}; HttpOnly; SameSite=Strict; Path=/'})

    def list_alerts(self, user, q):
        prios = [p for p in (q.get('priority') or '').split(',') if p]
        statuses = [s for s in (q.get('status') or '').split(',') if s]
        text = (q.get('q') or '').lower()
        try:
            limit = max(1, min(500, int(q.get('limit') or 50)))
            offset = max(0, int(q.get('offset') or 0))
        except ValueError:
            return self.error(400, 'bad limit or offset')
        with lock:
            rows = [summary(k) for k, e in alerts.items() if visible(e['alert'], user)]
        def keep(s):
            if prios and s['priority'] not in prios:
                return False
            if statuses and s['workflow']['status'] not in statuses:
                return False
            if q.get('region') and q['region'] not in s['regions']:
                return False
            if q.get('port') and q['port'] not in (s['port_of_discharge'], s['final_destination']):
                return False
            if q.get('family') and q['family'] not in s['families']:
                return False
            if text and not any(text in v.lower() for v in (s['container_number'], s['bill_of_lading'],
                                                            s['shipper'], s['consignee'])):
                return False
            return True
        rows = [s for s in rows if keep(s)]
        rows.sort(key=lambda s: (-PRIORITY_RANK[s['priority']], -s['event_time_ms'], s['alert_id']))
        self.send(200, {'total': len(rows), 'alerts': rows[offset:offset + limit]})

    def status(self, user):
        t = now_ms()
        cur = t // MIN * MIN
        with lock:
            stored = [(e['stored_ms'], e['alert']['priority'].replace('PRIORITY_', '')) for e in alerts.values()]
        rng = random.Random(cur // MIN // 5)        # background rate, steady for a few minutes
        per_minute = []
        for i in range(30):
            m0 = cur - (29 - i) * MIN
            row = {'minute_ms': m0, 'LOW': rng.randint(2, 9), 'MEDIUM': rng.randint(1, 5),
                   'HIGH': rng.randint(0, 2), 'CRITICAL': 1 if rng.random() < 0.05 else 0}
            for ms, p in stored:
                if m0 <= ms < m0 + MIN:
                    row[p] += 1
            per_minute.append(row)
        self.send(200, {'hub_id': 'hub-th-lch-1', 'regions': ['TH', 'LA', 'TM'], 'connected': not opts.not_ready,
                        'not_ready': opts.not_ready or '', 'alerts_stored': len(stored),
                        'last_alert_ms': max(ms for ms, _ in stored) if stored else 0, 'per_minute': per_minute})

    def workflow(self, user, a, b):
        alert_id = a['alert_id']
        action = b.get('action')
        t = now_ms()
        with lock:
            wf = workflows[alert_id]
            if action == 'acknowledge':
                wf.update(acknowledged_by=user['name'], acknowledged_ms=t)
                detail = ''
            elif action == 'assign':
                if user['role'] not in ('supervisor', 'admin'):
                    return self.error(403, 'assigning is for supervisors and admins')
                who = USERS.get(str(b.get('assignee', '')))
                if not who or not any(r in a.get('regions', []) for r in who['regions']):
                    return self.error(400, 'assignee is no user of the alert\'s regions')
                wf.update(assignee=who['name'], status='assigned')
                detail = who['name']
            elif action == 'status' and b.get('status') in ('new', 'assigned', 'inspecting', 'closed'):
                wf['status'] = b['status']
                detail = b['status']
            else:
                return self.error(400, 'unknown action or status')
            wf.update(updated_by=user['name'], updated_ms=t)
            answer = dict(wf)
        record(user['name'], action, alert_id, a['container_number'], detail)
        publish('workflow', {'alert_id': alert_id, 'workflow': answer}, a.get('regions', []))
        self.send(200, {'workflow': answer})

    def outcome(self, user, a, b):
        if b.get('result') not in ('NO_FINDING', 'DISCREPANCY', 'SEIZURE'):
            return self.error(400, 'result must be NO_FINDING, DISCREPANCY or SEIZURE')
        if b['result'] == 'SEIZURE' and not b.get('seizure_categories'):
            return self.error(400, 'a seizure needs at least one seizure category')
        t = now_ms()
        outcome_id = f"{a['alert_id']}-{user['name']}-{t}"
        with lock:
            wf = workflows[a['alert_id']]
            if b.get('final'):
                wf['status'] = 'closed'
            wf.update(updated_by=user['name'], updated_ms=t)
            answer = dict(wf)
        cats = ','.join(b.get('seizure_categories') or [])
        record(user['name'], 'outcome', a['alert_id'], a['container_number'],
               f"{b['result']}{' ' + cats if cats else ''}{' final' if b.get('final') else ''}: {b.get('notes', '')}")
        publish('workflow', {'alert_id': a['alert_id'], 'workflow': answer}, a.get('regions', []))
        self.send(200, {'outcome_id': outcome_id, 'accepted': True, 'workflow': answer})

    def events(self):
        sess, _ = self.session()
        if not sess:
            return self.error(401, 'no session')
        q = queue.Queue()
        item = (q, sess['user']['regions'])
        with lock:
            feeds.append(item)
        try:
            self.send_response(200)
            self.send_header('Content-Type', 'text/event-stream')
            self.send_header('Cache-Control', 'no-cache')
            self.send_header('Content-Security-Policy', CSP)
            self.end_headers()
            self.wfile.write(b': connected\n\n')
            self.wfile.flush()
            while True:
                try:
                    event, data = q.get(timeout=15)
                except queue.Empty:
                    self.wfile.write(b': keep-alive\n\n')
                    self.wfile.flush()
                    continue
                self.wfile.write(f'event: {event}\ndata: {json.dumps(data)}\n\n'.encode())
                self.wfile.flush()
                if event == 'overflow':
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with lock:
                if item in feeds:
                    feeds.remove(item)


def main():
    global opts
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('port', type=int)
    ap.add_argument('--alert-every', type=float, default=20, help='seconds between live alerts')
    ap.add_argument('--filler', type=int, default=0, help='older random alerts to add (paging)')
    ap.add_argument('--not-ready', default='', help='report "not subscribed" with this reason')
    ap.add_argument('--quiet', action='store_true')
    opts = ap.parse_args()
    seed()
    for i in range(opts.filler):
        a = random_alert(now_ms() - random.randint(60, 6 * 3600) * 1000)
        store(a, int(a['event_time_ms']) + random.randint(100, 3000), broadcast=False)
    threading.Thread(target=emitter, daemon=True).start()
    server = http.server.ThreadingHTTPServer(('127.0.0.1', opts.port), Handler)
    server.daemon_threads = True
    print(f'mock hub on http://127.0.0.1:{opts.port}/ (users: {", ".join(USERS)}; password = user name)', flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
