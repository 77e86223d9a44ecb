// DOM construction helpers. The control room never assigns innerHTML: every
// value from the hub (manifest text may hold anything, "<script>" included)
// reaches the page as a text node, and the Content-Security-Policy forbids
// inline style attributes, so styles go through classes or the CSSOM
// (el.style.x), which the policy allows.

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// h('tr', {class: 'a b', dataset: {alertId: id}, on: {click: fn}}, child...)
// Keys: class, text, dataset, on, attrs, style (object, via CSSOM); any other
// key is set as a DOM property when the element has one, else as attribute.
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null) continue;
    switch (key) {
      case 'class': el.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value; break;
      case 'text': el.textContent = String(value); break;
      case 'dataset': Object.assign(el.dataset, value); break;
      case 'on': for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn); break;
      case 'attrs': for (const [a, v] of Object.entries(value)) el.setAttribute(a, String(v)); break;
      case 'style': Object.assign(el.style, value); break;
      default:
        if (key in el) el[key] = value; else el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

// SVG element with attributes (presentation attributes such as fill and
// stroke are attributes, not inline style, so the policy allows them).
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === 'class') el.setAttribute('class', Array.isArray(value) ? value.filter(Boolean).join(' ') : value);
    else if (key === 'text') el.textContent = String(value);
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

// Replace all children of el.
export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// A <dl> from [label, value] pairs; values that are empty are shown as "—".
export function defList(pairs, cls = 'kv') {
  const dl = h('dl', { class: cls });
  for (const [label, value] of pairs) {
    dl.append(h('dt', { text: label }));
    const empty = value === undefined || value === null || value === '';
    dl.append(h('dd', { class: empty ? 'empty' : '' }, empty ? '—' : value));
  }
  return dl;
}

// A <table> with a header row; rows are arrays of cell contents (nodes or
// text). opts.id, opts.class apply to the table.
export function table(headers, rows, opts = {}) {
  return h('table', { id: opts.id, class: opts.class || 'data' },
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', { text: t })))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c))))));
}
