// Formatting and normalisation of hub data. The alert arrives as protobuf
// JSON: int64 fields are strings, enums are names with their prefix
// ("PRIORITY_CRITICAL"), and fields at their default value are absent; the
// list summaries use plain names ("CRITICAL") and numbers. Everything here
// accepts either form.

// A number from a proto JSON value (string int64, number, or absent → 0).
export function num(v) {
  if (v === undefined || v === null || v === '') return 0;
  const n = Number(v);
  return Number.isFinite(n) ? n : 0;
}

export const PRIORITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW'];
const PRIORITY_BY_NUMBER = { 1: 'LOW', 2: 'MEDIUM', 3: 'HIGH', 4: 'CRITICAL' };
const PRIORITY_RANK = { LOW: 1, MEDIUM: 2, HIGH: 3, CRITICAL: 4 };

// Enum value without its prefix: enumName("SCAN_KIND_RPM", "SCAN_KIND_") →
// "RPM". Numbers are looked up in byNumber when given.
export function enumName(v, prefix, byNumber = {}) {
  if (v === undefined || v === null || v === '') return '';
  if (typeof v === 'number') return byNumber[v] || String(v);
  const str = String(v);
  return str.startsWith(prefix) ? str.slice(prefix.length) : str;
}

export function priorityName(v) {
  const name = enumName(v, 'PRIORITY_', PRIORITY_BY_NUMBER);
  return PRIORITY_RANK[name] ? name : 'UNSPECIFIED';
}

export function priorityRank(v) {
  return PRIORITY_RANK[priorityName(v)] || 0;
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

// UTC time as "2026-11-18 03:41Z" (with seconds: "2026-11-18 03:41:07Z").
export function fmtUtc(ms, { seconds = false } = {}) {
  const t = num(ms);
  if (!t) return '—';
  const d = new Date(t);
  const base = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  return seconds ? `${base}:${pad(d.getUTCSeconds())}Z` : `${base}Z`;
}

// Machine-readable ISO time for <time datetime=...>.
export function isoUtc(ms) {
  const t = num(ms);
  return t ? new Date(t).toISOString() : '';
}

export function fmtInt(n) {
  return num(n).toLocaleString('en-US', { maximumFractionDigits: 0 });
}

export function fmtNum(n, digits = 1) {
  return num(n).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function fmtScore(n) {
  return num(n).toFixed(2);
}

export function fmtKg(n) {
  return `${num(n).toLocaleString('en-US', { maximumFractionDigits: 1 })} kg`;
}

// Duration as "35 s", "42 min", "1 h 05 min", "2 d 3 h".
export function fmtDuration(ms) {
  const s = Math.max(0, Math.round(num(ms) / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs} h ${pad(m % 60)} min`;
  return `${Math.floor(hrs / 24)} d ${hrs % 24} h`;
}

export function fmtAgo(ms, now = Date.now()) {
  const t = num(ms);
  if (!t) return 'never';
  return `${fmtDuration(Math.max(0, now - t))} ago`;
}

// "THLCH → LAVTE", leaving out unknown ends.
export function fmtRoute(...ports) {
  const known = ports.flat().filter(Boolean);
  return known.length ? known.join(' → ') : '—';
}

// Lower-case class suffix for a priority: "priority-critical".
export function priorityClass(v) {
  return `priority-${priorityName(v).toLowerCase()}`;
}
