/* lineage-tools report page: vanilla JS + SVG, no network, every name inserted as text. */
(function () {
  'use strict';
  var SVGNS = 'http://www.w3.org/2000/svg';
  var DATA = JSON.parse(document.getElementById('lineage-data').textContent);
  var NODE_W = 230, HEAD_H = 24, ROW_H = 16, GAP_Y = 10, GAP_X = 120, PAD = 30;
  var BIG = 150;             // above this many nodes, a selection shows only its path by default
  var MAX_RESULTS = 100;     // search results shown at once
  var MAX_ROWS = 60;         // column rows drawn per expanded node
  var SUBTYPES = [
    ['IDENTITY', 'DIRECT'], ['TRANSFORMATION', 'DIRECT'], ['AGGREGATION', 'DIRECT'],
    ['JOIN', 'INDIRECT'], ['FILTER', 'INDIRECT'], ['GROUP_BY', 'INDIRECT'],
    ['SORT', 'INDIRECT'], ['WINDOW', 'INDIRECT'], ['CONDITIONAL', 'INDIRECT']
  ];

  // ---------------------------------------------------------------- indexes
  var nodes = DATA.nodes || [];
  var edges = DATA.edges || [];
  var byId = new Map();
  nodes.forEach(function (n) { byId.set(n.id, n); });
  function key(node, col) { return node + '\u0000' + (col == null ? '' : col); }
  function splitKey(k) { var i = k.indexOf('\u0000'); return [k.slice(0, i), k.slice(i + 1)]; }
  var inEdges = new Map(), outEdges = new Map();
  function push(map, k, v) { var a = map.get(k); if (!a) { a = []; map.set(k, a); } a.push(v); }
  edges.forEach(function (e, i) {
    e._i = i;
    if (!byId.has(e.source.node)) {
      var ext = { id: e.source.node, name: e.source.node, label: e.source.node, type: 'external',
                  columns: [], depends_on: [], reasons: [], row_influences: [], flags: { root: true } };
      nodes.push(ext); byId.set(ext.id, ext);
    }
    var src = byId.get(e.source.node);
    if (src.type === 'external' && !src.columns.some(function (c) { return c.name === e.source.column; })) {
      src.columns.push({ name: e.source.column });
    }
    push(inEdges, key(e.target.node, e.target.column), e);
    push(outEdges, key(e.source.node, e.source.column), e);
  });
  function columnsOf(id) { var n = byId.get(id); return n ? n.columns.map(function (c) { return c.name; }) : []; }
  function label(id) { var n = byId.get(id); return n ? (n.label || n.name) : id; }
  var children = new Map();
  nodes.forEach(function (n) {
    (n.depends_on || []).forEach(function (p) { if (byId.has(p)) push(children, p, n.id); });
  });
  var findingsOf = new Map();
  (DATA.findings || []).forEach(function (f, i) { f._i = i; f.node = f.node || f.model; push(findingsOf, f.node, f); });

  // depth (layer) by longest path from the roots, when the report did not give one
  var depthMemo = new Map();
  function depth(id, guard) {
    var n = byId.get(id);
    if (n && typeof n.depth === 'number') return n.depth;
    if (depthMemo.has(id)) return depthMemo.get(id);
    guard = guard || new Set();
    if (guard.has(id)) return 0;
    guard.add(id);
    var d = 0;
    ((n && n.depends_on) || []).forEach(function (p) { if (byId.has(p)) d = Math.max(d, depth(p, guard) + 1); });
    depthMemo.set(id, d);
    return d;
  }

  // ---------------------------------------------------------------- lineage walks (as graph.py)
  function upstream(start) {
    var seen = new Set(), used = new Set(), stack = [start];
    while (stack.length) {
      var cur = stack.pop(), parts = splitKey(cur), targets = [cur];
      if (parts[1] !== '') targets.push(key(parts[0], null));
      targets.forEach(function (t) {
        (inEdges.get(t) || []).forEach(function (e) {
          if (e.source.node === parts[0] || (directOnly.checked && e.type !== 'DIRECT')) return;
          used.add(e._i);
          var s = key(e.source.node, e.source.column);
          if (!seen.has(s)) { seen.add(s); stack.push(s); }
        });
      });
    }
    seen.delete(start);
    return { cols: seen, edges: used };
  }
  function downstream(start) {
    var seen = new Set(), used = new Set(), stack = [start];
    while (stack.length) {
      var cur = stack.pop(), parts = splitKey(cur);
      (outEdges.get(cur) || []).forEach(function (e) {
        if (e.target.node === parts[0] || (directOnly.checked && e.type !== 'DIRECT')) return;
        used.add(e._i);
        var targets = e.target.column == null ? columnsOf(e.target.node) : [e.target.column];
        targets.forEach(function (c) {
          var t = key(e.target.node, c);
          if (!seen.has(t)) { seen.add(t); stack.push(t); }
        });
      });
    }
    seen.delete(start);
    return { cols: seen, edges: used };
  }

  // ---------------------------------------------------------------- state
  var state = { kind: null, id: null, col: null, source: null, expanded: new Set(), zoom: 1 };
  var hl = { nodes: new Set(), cols: new Set(), edges: new Set(), models: new Set() };
  var pathOnly = document.getElementById('path-only');
  var directOnly = document.getElementById('direct-only');
  pathOnly.checked = nodes.length > BIG;

  function computeHighlight() {
    hl = { nodes: new Set(), cols: new Set(), edges: new Set(), models: new Set() };
    if (state.kind === 'column') {
      var k = key(state.id, state.col), up = upstream(k), down = downstream(k);
      hl.cols = new Set([k]);
      up.cols.forEach(function (c) { hl.cols.add(c); });
      down.cols.forEach(function (c) { hl.cols.add(c); });
      up.edges.forEach(function (i) { hl.edges.add(i); });
      down.edges.forEach(function (i) { hl.edges.add(i); });
      hl.cols.forEach(function (c) { hl.nodes.add(splitKey(c)[0]); });
      hl.edges.forEach(function (i) { hl.nodes.add(edges[i].target.node); hl.nodes.add(edges[i].source.node); });
    } else if (state.kind === 'model') {
      hl.nodes.add(state.id);
      walkModels(state.id, function (n) { return (byId.get(n) || {}).depends_on || []; });
      walkModels(state.id, function (n) { return children.get(n) || []; });
    } else if (state.kind === 'source') {
      var src = sourceById(state.source);
      ((src && src.impact && src.impact.models) || []).forEach(function (m) { hl.nodes.add(m.model); });
      ((src && src.impact && src.impact.roots) || []).forEach(function (r) { hl.nodes.add(r); });
    }
  }
  function walkModels(start, next) {
    var stack = [start];
    while (stack.length) {
      var cur = stack.pop();
      next(cur).forEach(function (p) {
        if (!byId.has(p)) return;
        hl.models.add(cur + '>' + p);
        if (!hl.nodes.has(p)) { hl.nodes.add(p); stack.push(p); }
      });
    }
  }

  // ---------------------------------------------------------------- DOM helpers (text only)
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (a) { e.setAttribute(a, attrs[a]); });
    if (text != null) e.textContent = String(text);
    return e;
  }
  function sv(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    if (attrs) Object.keys(attrs).forEach(function (a) { e.setAttribute(a, attrs[a]); });
    if (text != null) e.textContent = String(text);
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  // ---------------------------------------------------------------- header, legend
  function header() {
    document.getElementById('project-name').textContent = (DATA.project && DATA.project.name) || '';
    var counts = document.getElementById('counts');
    var models = nodes.filter(function (n) { return n.status; });
    var by = { FULL: 0, PARTIAL: 0, FAILED: 0 };
    models.forEach(function (n) { by[n.status] = (by[n.status] || 0) + 1; });
    [[models.length + ' models', ''], [by.FULL + ' FULL', 'FULL'], [by.PARTIAL + ' PARTIAL', 'PARTIAL'],
     [by.FAILED + ' FAILED', 'FAILED'], [(DATA.findings || []).length + ' findings', ''],
     [(DATA.sources || []).filter(function (s) { return s.status === 'quarantined'; }).length + ' quarantined', '']
    ].forEach(function (c) { counts.appendChild(el('span', { 'class': 'count ' + c[1] }, c[0])); });
    var legend = document.getElementById('legend');
    SUBTYPES.forEach(function (st) {
      var item = el('span', { 'class': 'item', 'data-subtype': st[0] });
      var s = sv('svg', { width: 28, height: 8 });
      s.appendChild(sv('path', { d: 'M0 4 H28', 'class': 'edge ' + st[1] + ' ' + st[0] + ' sub-' + st[0] }));
      item.appendChild(s);
      item.appendChild(document.createTextNode(st[1] + ' ' + st[0]));
      legend.appendChild(item);
    });
  }

  // ---------------------------------------------------------------- sidebar: search, sources
  var searchIndex = [];
  nodes.forEach(function (n) {
    searchIndex.push({ kind: n.type, text: label(n.id), lower: label(n.id).toLowerCase(), id: n.id, col: null });
    n.columns.forEach(function (c) {
      var t = label(n.id) + '.' + c.name;
      searchIndex.push({ kind: 'column', text: t, lower: t.toLowerCase(), id: n.id, col: c.name });
    });
  });
  (DATA.sources || []).forEach(function (s) {
    searchIndex.push({ kind: 'source id', text: s.source_id, lower: String(s.source_id).toLowerCase(), source: s.source_id });
  });
  function resultButton(r) {
    var b = el('button', { type: 'button', 'class': 'result', role: 'option' });
    b.appendChild(el('span', { 'class': 'kind' }, r.kind));
    b.appendChild(document.createTextNode(r.text));
    if (r.col != null) { b.dataset.node = r.id; b.dataset.column = r.col; }
    else if (r.source != null) { b.dataset.source = r.source; }
    else { b.dataset.node = r.id; }
    b.addEventListener('click', function () { pick(r); });
    return b;
  }
  function pick(r) {
    if (r.source != null) selectSource(r.source);
    else if (r.col != null) selectColumn(r.id, r.col);
    else selectModel(r.id);
  }
  function search() {
    var q = document.getElementById('search').value.trim().toLowerCase();
    var box = document.getElementById('results');
    clear(box);
    if (!q) return;
    var hits = [], exact = [];
    for (var i = 0; i < searchIndex.length; i++) {
      var r = searchIndex[i], pos = r.lower.indexOf(q);
      if (pos < 0) continue;
      var tail = r.col != null ? r.col.toLowerCase() === q : r.lower === q;
      (tail ? exact : hits).push(r);
    }
    var all = exact.concat(hits);
    all.slice(0, MAX_RESULTS).forEach(function (r) { box.appendChild(resultButton(r)); });
    if (all.length > MAX_RESULTS) box.appendChild(el('div', { 'class': 'more' }, (all.length - MAX_RESULTS) + ' more: refine the search'));
    if (!all.length) box.appendChild(el('div', { 'class': 'more' }, 'nothing matches'));
  }
  function sourceById(id) {
    var list = DATA.sources || [];
    for (var i = 0; i < list.length; i++) if (list[i].source_id === id) return list[i];
    return null;
  }
  function sourcesList() {
    var box = document.getElementById('sources');
    var list = DATA.sources || [];
    if (!list.length) { box.appendChild(el('div', { 'class': 'more' }, 'no source registry')); return; }
    list.forEach(function (s) {
      var b = el('button', { type: 'button', 'class': 'result', 'data-source': s.source_id });
      b.appendChild(el('span', { 'class': 'pill ' + s.status }, s.status));
      b.appendChild(document.createTextNode(' ' + s.source_id));
      b.addEventListener('click', function () { selectSource(s.source_id); });
      box.appendChild(b);
    });
  }

  // ---------------------------------------------------------------- selection
  function selectColumn(id, col) {
    state.kind = 'column'; state.id = id; state.col = col; state.source = null;
    state.expanded = new Set();
    update();
  }
  function selectModel(id) {
    state.kind = 'model'; state.id = id; state.col = null; state.source = null;
    state.expanded = new Set([id]);
    update();
  }
  function selectSource(sid) {
    state.kind = 'source'; state.id = null; state.col = null; state.source = sid;
    state.expanded = new Set();
    update();
  }
  function clearSelection() {
    state.kind = null; state.id = null; state.col = null; state.source = null; state.expanded = new Set();
    update();
  }
  function update() {
    computeHighlight();
    draw();
    details();
    writeHash();
    reveal();
  }
  function reveal() {
    // bring the selected node (or the first node on the path) into view
    var target = state.id ? document.querySelector('g.node.selected') : document.querySelector('g.node.hl');
    if (!target || !target.getBoundingClientRect) return;
    var canvas = document.getElementById('canvas'), box = target.getBoundingClientRect(), frame = canvas.getBoundingClientRect();
    // scroll as little as shows the node whole (its left edge wins when it is wider than the view)
    if (box.right > frame.right) canvas.scrollLeft += Math.min(box.right - frame.right + 40, box.left - frame.left - 40);
    else if (box.left < frame.left) canvas.scrollLeft -= frame.left - box.left + 40;
    if (box.bottom > frame.bottom) canvas.scrollTop += Math.min(box.bottom - frame.bottom + 40, box.top - frame.top - 40);
    else if (box.top < frame.top) canvas.scrollTop -= frame.top - box.top + 40;
  }
  function writeHash() {
    var h = '';
    if (state.kind === 'column') h = 'column=' + encodeURIComponent(state.id) + '&name=' + encodeURIComponent(state.col);
    else if (state.kind === 'model') h = 'model=' + encodeURIComponent(state.id);
    else if (state.kind === 'source') h = 'source=' + encodeURIComponent(state.source);
    if (location.hash.slice(1) === h) return;
    try { history.replaceState(null, '', h ? '#' + h : location.pathname + location.search); }
    catch (err) { /* some browsers refuse history changes on file:// pages: the link just does not follow */ }
  }
  function readHash() {
    var p = new URLSearchParams(location.hash.slice(1));
    if (p.get('column') && byId.has(p.get('column'))) selectColumn(p.get('column'), p.get('name') || '');
    else if (p.get('model') && byId.has(p.get('model'))) selectModel(p.get('model'));
    else if (p.get('source')) selectSource(p.get('source'));
    else update();
  }

  // ---------------------------------------------------------------- layout and drawing
  function visibleNodes() {
    var sel = state.kind !== null;
    if (sel && pathOnly.checked && hl.nodes.size) return nodes.filter(function (n) { return hl.nodes.has(n.id); });
    return nodes;
  }
  function isExpanded(id) {
    return state.expanded.has(id) || (state.kind === 'column' && hl.nodes.has(id));
  }
  function rowsOf(n) {
    var cols = n.columns.map(function (c) { return c.name; });
    if (state.kind === 'column' && hl.nodes.has(n.id)) {
      // a node on the path shows its path columns first
      var on = cols.filter(function (c) { return hl.cols.has(key(n.id, c)); });
      var off = cols.filter(function (c) { return !hl.cols.has(key(n.id, c)); });
      cols = on.concat(off);
    }
    return cols.slice(0, MAX_ROWS);
  }
  function layout(list) {
    var cols = new Map();
    list.forEach(function (n) { push(cols, depth(n.id), n); });
    var depths = Array.from(cols.keys()).sort(function (a, b) { return a - b; });
    var pos = new Map(), order = new Map(), width = 0, height = 0;
    depths.forEach(function (d, xi) {
      var col = cols.get(d);
      // order by the mean position of parents (one barycentre pass), then by name
      col.forEach(function (n) {
        var ps = (n.depends_on || []).filter(function (p) { return order.has(p); });
        n._bary = ps.length ? ps.reduce(function (s, p) { return s + order.get(p); }, 0) / ps.length : -1;
      });
      col.sort(function (a, b) { return (a._bary - b._bary) || (label(a.id) < label(b.id) ? -1 : 1); });
      var y = PAD + 18, x = PAD + xi * (NODE_W + GAP_X);
      col.forEach(function (n, i) {
        var h = HEAD_H + (isExpanded(n.id) ? Math.max(1, rowsOf(n).length) * ROW_H + 4 : 0);
        pos.set(n.id, { x: x, y: y, h: h });
        order.set(n.id, i);
        y += h + GAP_Y;
      });
      height = Math.max(height, y);
      width = x + NODE_W + PAD;
    });
    return { pos: pos, depths: depths, width: width, height: height + PAD };
  }
  function layerOf(n) {
    if (n.layer) return n.layer;
    if (n.type !== 'model') return n.type;
    var f = n.file || '';
    var m = /(^|\/)(staging|intermediate|marts)(\/|$)/.exec(f);
    return m ? m[2] : 'models';
  }
  function anchor(lay, id, col, side) {
    var p = lay.pos.get(id);
    if (!p) return null;
    var x = side === 'out' ? p.x + NODE_W : p.x;
    if (col == null || !isExpanded(id)) return { x: x, y: p.y + HEAD_H / 2 };
    var rows = rowsOf(byId.get(id)), i = rows.indexOf(col);
    if (i < 0) return { x: x, y: p.y + HEAD_H / 2 };
    return { x: x, y: p.y + HEAD_H + i * ROW_H + ROW_H / 2 + 2 };
  }
  function curve(a, b) {
    var dx = Math.max(40, (b.x - a.x) / 2);
    return 'M' + a.x + ' ' + a.y + ' C' + (a.x + dx) + ' ' + a.y + ' ' + (b.x - dx) + ' ' + b.y + ' ' + b.x + ' ' + b.y;
  }
  function draw() {
    var svg = document.getElementById('graph');
    clear(svg);
    var list = visibleNodes();
    var lay = layout(list);
    svg.setAttribute('width', Math.max(lay.width, 200) * state.zoom);
    svg.setAttribute('height', Math.max(lay.height, 200) * state.zoom);
    svg.setAttribute('viewBox', '0 0 ' + Math.max(lay.width, 200) + ' ' + Math.max(lay.height, 200));
    var gLayers = sv('g', { 'class': 'layers' }), gM = sv('g', { 'class': 'model-edges' }),
        gE = sv('g', { 'class': 'column-edges' }), gN = sv('g', { 'class': 'nodes' });
    svg.appendChild(gLayers); svg.appendChild(gM); svg.appendChild(gN); svg.appendChild(gE);
    lay.depths.forEach(function (d, xi) {
      var names = new Set(list.filter(function (n) { return depth(n.id) === d; }).map(layerOf));
      gLayers.appendChild(sv('text', { x: PAD + xi * (NODE_W + GAP_X), y: PAD, 'class': 'layer-label' },
        'depth ' + d + ' \u00b7 ' + Array.from(names).sort().join(', ')));
    });
    var sel = state.kind !== null;
    // model-level edges (thin); highlighted when on a model selection's path
    list.forEach(function (n) {
      (n.depends_on || []).forEach(function (p) {
        if (!lay.pos.has(p)) return;
        var on = hl.models.has(n.id + '>' + p) || hl.models.has(p + '>' + n.id) ||
                 (state.kind !== 'model' && hl.nodes.has(n.id) && hl.nodes.has(p));
        if (sel && !on && list.length > BIG) return;  // big graphs: only the path's model edges
        var a = anchor(lay, p, null, 'out'), b = anchor(lay, n.id, null, 'in');
        gM.appendChild(sv('path', { d: curve(a, b), 'class': 'medge' + (on && state.kind !== 'column' ? ' hl' : sel && !on ? ' dim' : ''),
                                    'data-source': p, 'data-target': n.id }));
      });
    });
    list.forEach(function (n) { gN.appendChild(drawNode(n, lay.pos.get(n.id), sel)); });
    // column-level edges of the selected column's path, styled by type and subtype
    hl.edges.forEach(function (i) {
      var e = edges[i];
      var a = anchor(lay, e.source.node, e.source.column, 'out'), b = anchor(lay, e.target.node, e.target.column, 'in');
      if (!a || !b) return;
      var path = sv('path', {
        d: curve(a, b), 'class': 'edge hl ' + e.type + ' ' + e.subtype + ' sub-' + e.subtype,
        'data-source': e.source.node, 'data-source-column': e.source.column,
        'data-target': e.target.node, 'data-target-column': e.target.column == null ? '' : e.target.column,
        'data-type': e.type, 'data-subtype': e.subtype
      });
      path.appendChild(sv('title', null, label(e.source.node) + '.' + e.source.column + ' \u2192 ' +
        label(e.target.node) + '.' + (e.target.column == null ? '* (every row)' : e.target.column) + ': ' + e.type + ' ' + e.subtype));
      gE.appendChild(path);
    });
    document.getElementById('status-line').textContent =
      list.length + ' of ' + nodes.length + ' nodes shown' + (hl.edges.size ? ', ' + hl.edges.size + ' column edges on the path' : '');
  }
  function drawNode(n, p, sel) {
    var cls = 'node layer-' + layerOf(n) + (n.flags && n.flags.root ? ' root' : '');
    if (sel && hl.nodes.has(n.id)) cls += ' hl';
    if (sel && !hl.nodes.has(n.id) && !(state.kind === 'model' && state.id === n.id)) cls += ' dim';
    if ((state.kind === 'model' || state.kind === 'column') && state.id === n.id) cls += ' selected';
    var g = sv('g', { 'class': cls, 'data-id': n.id, transform: 'translate(' + p.x + ',' + p.y + ')' });
    g.appendChild(sv('rect', { 'class': 'box', width: NODE_W, height: p.h }));
    g.appendChild(sv('rect', { 'class': 'head', x: 1, y: 1, width: NODE_W - 2, height: HEAD_H - 2 }));
    if (n.status) {
      var dot = sv('circle', { 'class': 'status ' + n.status, cx: 10, cy: HEAD_H / 2, r: 5 });
      dot.appendChild(sv('title', null, 'lineage ' + n.status));
      g.appendChild(dot);
    }
    var name = sv('text', { x: n.status ? 20 : 8, y: 16, 'class': 'name' }, truncate(label(n.id), 28));
    name.appendChild(sv('title', null, label(n.id) + ' (' + n.type + (n.status ? ', ' + n.status : '') + ')'));
    name.addEventListener('click', function () { selectModel(n.id); });
    g.appendChild(name);
    var nf = (findingsOf.get(n.id) || []).length;
    if (nf) g.appendChild(sv('text', { x: NODE_W - 8, y: 16, 'text-anchor': 'end', 'class': 'badge' }, '\u26a0 ' + nf));
    if (isExpanded(n.id)) {
      var prov = new Set(n.provenance_columns || []);
      rowsOf(n).forEach(function (c, i) {
        var k = key(n.id, c), y = HEAD_H + i * ROW_H + 2;
        var rc = 'colrow' + (hl.cols.has(k) ? ' hl' : '') + (state.kind === 'column' && state.id === n.id && state.col === c ? ' selected' : '');
        var row = sv('rect', { 'class': rc, x: 2, y: y, width: NODE_W - 4, height: ROW_H, 'data-column': c });
        var t = sv('text', { x: 10, y: y + 12, 'class': 'col' + (prov.has(c) ? ' prov' : ''), 'data-column': c },
                   truncate(c, 34) + (prov.has(c) ? ' \u25c6' : ''));
        [row, t].forEach(function (x) { x.addEventListener('click', function () { selectColumn(n.id, c); }); });
        g.appendChild(row); g.appendChild(t);
      });
      if (n.columns.length > MAX_ROWS) {
        g.appendChild(sv('text', { x: 10, y: p.h - 2, 'class': 'col' }, '\u2026 ' + (n.columns.length - MAX_ROWS) + ' more (see details)'));
      }
    }
    return g;
  }
  function truncate(s, n) { s = String(s); return s.length > n ? s.slice(0, n - 1) + '\u2026' : s; }

  // ---------------------------------------------------------------- details panel
  function details() {
    var box = document.getElementById('details');
    clear(box);
    if (state.kind === 'source') return sourceDetails(box, state.source);
    if (state.kind === 'model' || state.kind === 'column') return modelDetails(box, byId.get(state.id));
    box.appendChild(el('p', { 'class': 'hint' }, 'Pick a model, a column or a source. Search by name; click a column to see its upstream and downstream paths.'));
    var q = (DATA.sources || []).filter(function (s) { return s.status === 'quarantined'; });
    if (q.length) {
      box.appendChild(el('h3', null, 'Quarantined sources'));
      q.forEach(function (s) { box.appendChild(linkTo(s.source_id, function () { selectSource(s.source_id); })); box.appendChild(el('br')); });
    }
    if ((DATA.findings || []).length) {
      box.appendChild(el('h3', null, 'Findings'));
      DATA.findings.forEach(function (f) { box.appendChild(findingEl(f, true)); });
    }
  }
  function linkTo(text, fn) { var a = el('a', { 'class': 'link', tabindex: 0 }, text); a.addEventListener('click', fn); return a; }
  function findingEl(f, withModel) {
    var d = el('div', { 'class': 'finding ' + f.severity, 'data-rule': f.rule });
    d.appendChild(el('span', { 'class': 'pill ' + f.severity }, f.severity));
    d.appendChild(document.createTextNode(' '));
    d.appendChild(el('code', null, /^\d+$/.test(String(f.rule)) ? 'rule ' + f.rule : f.rule));
    if (withModel) {
      d.appendChild(document.createTextNode(' in '));
      d.appendChild(linkTo(label(f.node) + (f.column ? '.' + f.column : ''), function () {
        if (f.column && byId.has(f.node)) selectColumn(f.node, f.column); else if (byId.has(f.node)) selectModel(f.node);
      }));
    } else if (f.column) {
      d.appendChild(document.createTextNode(' on '));
      d.appendChild(el('code', null, f.column));
    }
    d.appendChild(el('div', null, f.message));
    return d;
  }
  function table(head, rows) {
    if (!rows.length) return el('div', { 'class': 'hint' }, 'none');
    var t = el('table'), tr = el('tr');
    head.forEach(function (h) { tr.appendChild(el('th', null, h)); });
    t.appendChild(tr);
    rows.forEach(function (r) {
      var row = el('tr');
      r.forEach(function (c) { var td = el('td'); if (c instanceof Node) td.appendChild(c); else td.textContent = c == null ? '' : String(c); row.appendChild(td); });
      t.appendChild(row);
    });
    return t;
  }
  function modelDetails(box, n) {
    if (!n) return;
    box.appendChild(el('h2', null, label(n.id) + (state.kind === 'column' ? '.' + state.col : '')));
    var meta = el('div');
    if (n.status) { meta.appendChild(el('span', { 'class': 'pill ' + n.status, id: 'detail-status' }, n.status)); meta.appendChild(document.createTextNode(' ')); }
    meta.appendChild(document.createTextNode(n.type + (n.materialized ? ', ' + n.materialized : '') + (n.file ? ' \u00b7 ' + n.file : '')));
    box.appendChild(meta);
    if ((n.reasons || []).length) {
      box.appendChild(el('h3', null, 'Why not FULL'));
      n.reasons.forEach(function (r) {
        box.appendChild(el('div', { 'class': 'finding warning' }, r.code + (r.line ? ' (line ' + r.line + ')' : '') + ': ' + r.message));
      });
    }
    if (state.kind === 'column') columnDetails(box, n, state.col);
    box.appendChild(el('h3', null, 'Provenance columns'));
    var prov = n.provenance_columns || [];
    box.appendChild(prov.length ? el('div', { id: 'detail-provenance' }, prov.join(', ')) : el('div', { 'class': 'hint', id: 'detail-provenance' }, 'none'));
    box.appendChild(el('h3', null, 'Findings'));
    var fs = findingsOf.get(n.id) || [];
    if (!fs.length) box.appendChild(el('div', { 'class': 'hint' }, 'none'));
    fs.forEach(function (f) { box.appendChild(findingEl(f, false)); });
    box.appendChild(el('h3', null, 'Columns (' + n.columns.length + ')'));
    var provSet = new Set(prov);
    box.appendChild(table(['column', 'type', ''], n.columns.map(function (c) {
      return [linkTo(c.name, function () { selectColumn(n.id, c.name); }), c.type || '', provSet.has(c.name) ? 'provenance' : ''];
    })));
    if ((n.row_influences || []).length) {
      box.appendChild(el('h3', null, 'Rows changed by'));
      box.appendChild(table(['relation', 'effect'], n.row_influences.map(function (r) { return [label(r.node), r.effect]; })));
    }
    var ups = (n.depends_on || []).filter(function (p) { return byId.has(p); });
    var downs = children.get(n.id) || [];
    box.appendChild(el('h3', null, 'Parents / children'));
    var pc = el('div');
    ups.concat(downs).forEach(function (id, i) {
      if (i) pc.appendChild(document.createTextNode(', '));
      if (i === ups.length) pc.appendChild(document.createTextNode('\u2192 '));
      pc.appendChild(linkTo(label(id), function () { selectModel(id); }));
    });
    box.appendChild(pc);
  }
  function columnDetails(box, n, col) {
    var k = key(n.id, col);
    var ins = (inEdges.get(k) || []).concat(inEdges.get(key(n.id, null)) || []);
    box.appendChild(el('h3', null, 'Inputs'));
    box.appendChild(table(['input', 'type', 'subtype'], ins.map(function (e) {
      return [linkTo(label(e.source.node) + '.' + e.source.column, function () { selectColumn(e.source.node, e.source.column); }),
              e.type, e.subtype + (e.target.column == null ? ' (every row)' : '') + (e.masking ? ', masking' : '')];
    })));
    var outs = outEdges.get(k) || [];
    box.appendChild(el('h3', null, 'Used by'));
    box.appendChild(table(['output', 'type', 'subtype'], outs.map(function (e) {
      var tc = e.target.column == null ? '*' : e.target.column;
      return [linkTo(label(e.target.node) + '.' + tc, function () {
        if (e.target.column == null) selectModel(e.target.node); else selectColumn(e.target.node, e.target.column);
      }), e.type, e.subtype];
    })));
    box.appendChild(el('div', { 'class': 'hint' }, hl.nodes.size + ' nodes and ' + hl.edges.size + ' column edges on the path'));
  }
  function sourceDetails(box, sid) {
    var s = sourceById(sid);
    box.appendChild(el('h2', null, sid));
    if (!s) { box.appendChild(el('div', { 'class': 'hint' }, 'unknown source')); return; }
    var head = el('div');
    head.appendChild(el('span', { 'class': 'pill ' + s.status, id: 'detail-source-status' }, s.status));
    if (s.status_reason) head.appendChild(document.createTextNode(' ' + s.status_reason));
    box.appendChild(head);
    var fields = s.fields || {};
    var keys = Object.keys(fields).filter(function (k) { return ['source_id', 'status', 'status_reason'].indexOf(k) < 0 && fields[k] !== ''; });
    if (keys.length) box.appendChild(table(['field', 'value'], keys.map(function (k) { return [k, fields[k]]; })));
    var imp = s.impact;
    box.appendChild(el('h3', null, 'Impact'));
    if (!imp) { box.appendChild(el('div', { 'class': 'hint' }, 'no impact computed')); return; }
    if (imp.roots && imp.roots.length) {
      var r = el('div', null, 'Rows enter through: ');
      imp.roots.forEach(function (id, i) { if (i) r.appendChild(document.createTextNode(', ')); r.appendChild(linkTo(label(id), function () { selectModel(id); })); });
      box.appendChild(r);
    }
    var ms = imp.models || [];
    if (!ms.length) { box.appendChild(el('div', { 'class': 'hint' }, 'no model reached')); return; }
    var modes = { filter: 0, rebuild: 0 };
    ms.forEach(function (m) { modes[m.mode] = (modes[m.mode] || 0) + 1; });
    box.appendChild(el('div', null, ms.length + ' models reached: ' + modes.filter + ' filter, ' + modes.rebuild + ' rebuild' +
      (imp.rows_counted ? '' : ' (rows not counted)')));
    if (imp.note) box.appendChild(el('div', { 'class': 'hint' }, imp.note));
    ms.forEach(function (m) {
      var card = el('div', { 'class': 'impact', 'data-model': m.model });
      var head = el('div');
      head.appendChild(el('span', { 'class': 'pill ' + m.mode }, m.mode));
      head.appendChild(document.createTextNode(' '));
      head.appendChild(linkTo(label(m.model), function () { selectModel(m.model); }));
      var rows = m.tainted_rows == null ? 'tainted rows not counted'
        : m.tainted_rows + (m.total_rows != null ? ' of ' + m.total_rows : '') + ' rows tainted';
      head.appendChild(el('span', { 'class': 'rows' }, ' \u00b7 ' + rows));
      card.appendChild(head);
      if ((m.reasons || []).length) card.appendChild(el('div', { 'class': 'why' }, m.reasons.join('; ')));
      box.appendChild(card);
    });
    if (imp.rebuild_command) { box.appendChild(el('h3', null, 'Rebuild')); box.appendChild(el('code', null, imp.rebuild_command)); }
  }

  // ---------------------------------------------------------------- wiring
  header();
  sourcesList();
  document.getElementById('search').addEventListener('input', search);
  document.getElementById('search').addEventListener('keydown', function (ev) {
    if (ev.key === 'Enter') { var first = document.querySelector('#results .result'); if (first) first.click(); }
  });
  pathOnly.addEventListener('change', draw);
  directOnly.addEventListener('change', function () { update(); });
  document.getElementById('clear').addEventListener('click', clearSelection);
  document.getElementById('zoom-in').addEventListener('click', function () { state.zoom = Math.min(3, state.zoom * 1.25); draw(); });
  document.getElementById('zoom-out').addEventListener('click', function () { state.zoom = Math.max(0.2, state.zoom / 1.25); draw(); });
  readHash();
  document.body.setAttribute('data-ready', '1');
})();
