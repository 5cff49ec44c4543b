/* lineage-tools report page: vanilla JS + SVG, no network, every name inserted as text.
 * Layout: ranks, order and positions come from the report (grandalf, at report time); the page
 * keeps them and only pushes nodes apart when it shows their columns. Pan by dragging, zoom with
 * the wheel or the buttons; the graph (or the selected path) is fitted to the window. */
(function () {
  'use strict';
  var SVGNS = 'http://www.w3.org/2000/svg';
  var DATA = JSON.parse(document.getElementById('lineage-data').textContent);
  var HEAD_H = 24, ROW_H = 17, GAP_Y = 10, GAP_X = 32, MIN_W = 90, PAD_TEXT = 30, FIT_PAD = 24;
  var MAX_FIT_ZOOM = 1, MIN_ZOOM = 0.002, MAX_ZOOM = 4;
  var BIG = 150;             // above this many nodes, a selection draws only its path by default
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
  var extraRank = 0;
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

  // rank (the column a node is drawn in) and its place in the rank: from the report's layout;
  // a node without one (an older report, a relation only an edge names) goes by its depth
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
  var fallbackY = ((DATA.layout && DATA.layout.height) || 0) + 40;
  nodes.forEach(function (n) {
    if (!n.layout) { n.layout = { rank: depth(n.id), order: 1e6 + extraRank, y: fallbackY }; fallbackY += HEAD_H + GAP_Y; extraRank++; }
  });

  // ---------------------------------------------------------------- lineage walks (as graph.py)
  function upstream(start, directOnly) {
    var seen = new Set(), used = new Set(), stack = [start];
    while (stack.length) {
      var cur = stack.pop(), parts = splitKey(cur), targets = [cur];
      if (parts[1] !== '') targets.push(key(parts[0], null));
      targets.forEach(function (t) {
        (inEdges.get(t) || []).forEach(function (e) {
          if (e.source.node === parts[0] || (directOnly && e.type !== 'DIRECT')) return;
          used.add(e._i);
          var s = key(e.source.node, e.source.column);
          if (!seen.has(s)) { seen.add(s); stack.push(s); }
        });
      });
    }
    seen.delete(start);
    return { cols: seen, edges: used };
  }
  function downstream(start, directOnly) {
    var seen = new Set(), used = new Set(), stack = [start];
    while (stack.length) {
      var cur = stack.pop(), parts = splitKey(cur);
      (outEdges.get(cur) || []).forEach(function (e) {
        if (e.target.node === parts[0] || (directOnly && e.type !== 'DIRECT')) return;
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
  var state = { kind: null, id: null, col: null, source: null, expanded: new Set() };
  var view = { k: 1, tx: 0, ty: 0 };
  var hl = emptyHighlight();
  var lay = null;
  var pathOnly = document.getElementById('path-only');
  var indirect = document.getElementById('indirect');
  function emptyHighlight() {
    return { nodes: new Set(), cols: new Set(), icols: new Set(), edges: new Set(), iedges: new Set(), models: new Set() };
  }

  function computeHighlight() {
    hl = emptyHighlight();
    if (state.kind === 'column') {
      var k = key(state.id, state.col);
      var up = upstream(k, true), down = downstream(k, true);
      hl.cols = new Set([k]);
      [up, down].forEach(function (w) {
        w.cols.forEach(function (c) { hl.cols.add(c); });
        w.edges.forEach(function (i) { hl.edges.add(i); });
      });
      if (indirect.checked) {
        [upstream(k, false), downstream(k, false)].forEach(function (w) {
          w.cols.forEach(function (c) { if (!hl.cols.has(c)) hl.icols.add(c); });
          w.edges.forEach(function (i) { if (!hl.edges.has(i)) hl.iedges.add(i); });
        });
      }
      [hl.cols, hl.icols].forEach(function (s) { s.forEach(function (c) { hl.nodes.add(splitKey(c)[0]); }); });
      [hl.edges, hl.iedges].forEach(function (s) {
        s.forEach(function (i) { hl.nodes.add(edges[i].target.node); hl.nodes.add(edges[i].source.node); });
      });
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
  // a name as text with a line-break opportunity after each `_` and `.`: it wraps between words
  function nameEl(tag, attrs, text) {
    var e = el(tag, attrs);
    String(text).split(/(?<=[._])/).forEach(function (part, i) {
      if (i) e.appendChild(document.createElement('wbr'));
      e.appendChild(document.createTextNode(part));
    });
    return e;
  }
  function plural(n, word, many) { return n + ' ' + (n === 1 ? word : (many || word + 's')); }

  // text widths, measured once with the page's fonts
  var measure = document.createElement('canvas').getContext('2d');
  var widthMemo = new Map();
  function textWidth(text, font) {
    var k = font + '\u0000' + text, w = widthMemo.get(k);
    if (w == null) {
      measure.font = font + ' system-ui, -apple-system, "Segoe UI", sans-serif';
      w = measure.measureText(String(text)).width;
      widthMemo.set(k, w);
    }
    return w;
  }

  // ---------------------------------------------------------------- header, legend
  function header() {
    document.getElementById('project-name').textContent = (DATA.project && DATA.project.name) || '';
    var counts = document.getElementById('counts');
    var models = nodes.filter(function (n) { return n.status; });
    var by = { FULL: 0, PARTIAL: 0, FAILED: 0 };
    models.forEach(function (n) { by[n.status] = (by[n.status] || 0) + 1; });
    [[models.length + ' models', ''], [by.FULL + ' FULL', 'FULL'], [by.PARTIAL + ' PARTIAL', 'PARTIAL'],
     [by.FAILED + ' FAILED', 'FAILED'], [plural((DATA.findings || []).length, 'finding'), ''],
     [(DATA.sources || []).filter(function (s) { return s.status === 'quarantined'; }).length + ' quarantined', '']
    ].forEach(function (c) { counts.appendChild(el('span', { 'class': 'count ' + c[1] }, c[0])); });
    var legend = document.getElementById('legend');
    SUBTYPES.forEach(function (st) {
      var item = el('span', { 'class': 'item ' + st[1], 'data-subtype': st[0] });
      var s = sv('svg', { width: 24, height: 8 });
      s.appendChild(sv('path', { d: 'M0 4 H24', 'class': 'edge ' + st[1] + ' ' + st[0] + ' sub-' + st[0] }));
      item.appendChild(s);
      item.appendChild(document.createTextNode(st[0].toLowerCase().replace('_', ' ')));
      legend.appendChild(item);
    });
    legend.setAttribute('title', 'solid: values (DIRECT); dashed: rows (INDIRECT)');
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
    var b = el('button', { type: 'button', 'class': 'result', role: 'option', title: r.text });
    if (r.col != null) {
      var m = nameEl('span', { 'class': 'main' }, r.col);
      b.appendChild(m);
      b.appendChild(nameEl('span', { 'class': 'sub' }, label(r.id)));
      b.dataset.node = r.id; b.dataset.column = r.col;
    } else {
      var main = nameEl('span', { 'class': 'main' }, r.text);
      main.appendChild(el('span', { 'class': 'kind' }, r.kind));
      b.appendChild(main);
      if (r.source != null) b.dataset.source = r.source; else b.dataset.node = r.id;
    }
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
      var tail = r.col != null ? (r.col.toLowerCase() === q || r.lower === q) : r.lower === q;
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
  // rows of a source still in the models it reaches: a number when counted, else null
  function rowsLeft(s) {
    var imp = s && s.impact;
    if (!imp || !imp.rows_counted) return null;
    var total = 0, counted = false;
    (imp.models || []).forEach(function (m) { if (m.tainted_rows != null) { total += m.tainted_rows; counted = true; } });
    return counted || !(imp.models || []).length ? total : null;
  }
  function settled(s) { return s && s.status === 'quarantined' && rowsLeft(s) === 0; }
  function statusPill(s, id) {
    var left = rowsLeft(s), attrs = { 'class': 'pill ' + s.status };
    if (id) attrs.id = id;
    if (s.status === 'quarantined' && left) attrs['class'] += ' live';
    return el('span', attrs, s.status);
  }
  function sourcesList() {
    var box = document.getElementById('sources');
    var list = DATA.sources || [];
    if (!list.length) { box.appendChild(el('div', { 'class': 'more' }, 'no source registry')); return; }
    list.forEach(function (s) {
      var b = el('button', { type: 'button', 'class': 'result', 'data-source': s.source_id });
      var main = el('span', { 'class': 'main' });
      main.appendChild(statusPill(s));
      main.appendChild(document.createTextNode(' '));
      main.appendChild(nameEl('span', null, s.source_id));
      b.appendChild(main);
      if (s.status === 'quarantined') {
        var left = rowsLeft(s);
        b.appendChild(el('span', { 'class': 'sub' }, left == null ? 'rows left not counted' : plural(left, 'row') + ' remain'));
      }
      b.addEventListener('click', function () { selectSource(s.source_id); });
      box.appendChild(b);
    });
  }
  function overview() {
    var box = document.getElementById('overview');
    clear(box);
    var fs = DATA.findings || [];
    if (fs.length) {
      box.appendChild(el('h3', null, 'Findings (' + fs.length + ')'));
      fs.slice(0, 30).forEach(function (f) { box.appendChild(findingEl(f, true)); });
      if (fs.length > 30) box.appendChild(el('div', { 'class': 'more' }, (fs.length - 30) + ' more in lineage.json'));
    }
    var bad = nodes.filter(function (n) { return n.status === 'FAILED' || n.status === 'PARTIAL'; });
    if (bad.length) {
      box.appendChild(el('h3', null, 'Lineage not FULL (' + bad.length + ')'));
      bad.slice(0, 30).forEach(function (n) {
        var d = el('div');
        d.appendChild(el('span', { 'class': 'pill ' + n.status }, n.status));
        d.appendChild(document.createTextNode(' '));
        d.appendChild(linkTo(label(n.id), function () { selectModel(n.id); }));
        box.appendChild(d);
      });
    }
  }

  // ---------------------------------------------------------------- selection
  function selectColumn(id, col) {
    state.kind = 'column'; state.id = id; state.col = col; state.source = null;
    state.expanded = new Set();
    pathOnly.checked = true;
    update(true);
  }
  function selectModel(id) {
    state.kind = 'model'; state.id = id; state.col = null; state.source = null;
    state.expanded = new Set([id]);
    pathOnly.checked = true;
    update(true);
  }
  function selectSource(sid) {
    state.kind = 'source'; state.id = null; state.col = null; state.source = sid;
    state.expanded = new Set();
    pathOnly.checked = true;
    update(true);
  }
  function clearSelection() {
    state.kind = null; state.id = null; state.col = null; state.source = null; state.expanded = new Set();
    pathOnly.checked = false;
    update(true);
  }
  function update(refit) {
    computeHighlight();
    document.getElementById('main').classList.toggle('with-details', state.kind !== null);
    details();
    draw();
    if (refit) fit();
    writeHash();
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
    else update(true);
  }

  // ---------------------------------------------------------------- layout
  function visibleNodes() {
    if (state.kind !== null && pathOnly.checked && hl.nodes.size) {
      return nodes.filter(function (n) { return hl.nodes.has(n.id) || n.id === state.id; });
    }
    return nodes;
  }
  // the column rows a node shows: all of them when expanded, else the selected path's
  function rowsOf(n) {
    var cols = n.columns.map(function (c) { return c.name; });
    if (state.expanded.has(n.id)) {
      if (state.kind === 'column' && hl.nodes.has(n.id)) {
        var on = cols.filter(function (c) { return onPath(n.id, c); });
        cols = on.concat(cols.filter(function (c) { return !onPath(n.id, c); }));
      }
      return { rows: cols.slice(0, MAX_ROWS), more: Math.max(0, cols.length - MAX_ROWS) };
    }
    if (state.kind === 'column' && hl.nodes.has(n.id)) {
      var path = cols.filter(function (c) { return onPath(n.id, c); });
      return { rows: path, more: cols.length - path.length };
    }
    return null;
  }
  function onPath(id, c) { var k = key(id, c); return hl.cols.has(k) || hl.icols.has(k); }
  function nodeWidth(n, shown) {
    var w = textWidth(label(n.id), '600 12px') + PAD_TEXT + ((findingsOf.get(n.id) || []).length ? 30 : 0);
    if (shown) {
      shown.rows.forEach(function (c) { w = Math.max(w, textWidth(c + ' \u25c6', '11px') + 24); });
      if (shown.more) w = Math.max(w, textWidth('+ ' + shown.more + ' more columns', 'italic 11px') + 24);
    }
    return Math.max(MIN_W, Math.ceil(w));
  }
  function computeLayout(list) {
    var compact = list.length < nodes.length;  // a path: ranks and places closed up
    var byRank = new Map();
    list.forEach(function (n) { push(byRank, n.layout.rank, n); });
    var ranks = Array.from(byRank.keys()).sort(function (a, b) { return a - b; });
    var pos = new Map(), x = 0, height = 0, rankX = [];
    ranks.forEach(function (r) {
      var col = byRank.get(r), w = 0;
      col.sort(function (a, b) { return (a.layout.y - b.layout.y) || (a.layout.order - b.layout.order); });
      var items = col.map(function (n) {
        var shown = rowsOf(n), nw = nodeWidth(n, shown);
        w = Math.max(w, nw);
        var h = HEAD_H + (shown ? (shown.rows.length + (shown.more ? 1 : 0)) * ROW_H + 4 : 0);
        return { n: n, shown: shown, w: nw, h: h };
      });
      var bottom = -Infinity;
      items.forEach(function (it) {
        var y = compact ? (bottom === -Infinity ? 0 : bottom + GAP_Y) : Math.max(it.n.layout.y, bottom + GAP_Y);
        pos.set(it.n.id, { x: x, y: y, w: it.w, h: it.h, shown: it.shown, rank: r });
        bottom = y + it.h;
      });
      height = Math.max(height, bottom);
      rankX.push({ rank: r, x: x, w: w, nodes: col });
      x += w + GAP_X;
    });
    if (compact) {  // centre each rank on the tallest
      rankX.forEach(function (rk) {
        var top = Infinity, bot = -Infinity;
        rk.nodes.forEach(function (n) { var p = pos.get(n.id); top = Math.min(top, p.y); bot = Math.max(bot, p.y + p.h); });
        var shift = (height - (bot - top)) / 2 - top;
        rk.nodes.forEach(function (n) { pos.get(n.id).y += shift; });
      });
    }
    return { pos: pos, ranks: rankX, width: Math.max(0, x - GAP_X), height: height, compact: compact };
  }
  function layerOf(n) {
    if (n.layer) return n.layer;
    if (n.type !== 'model') return n.type;
    var m = /(^|\/)(staging|intermediate|marts)(\/|$)/.exec(n.file || '');
    return m ? m[2] : 'models';
  }
  function anchor(id, col, side) {
    var p = lay.pos.get(id);
    if (!p) return null;
    var x = side === 'out' ? p.x + p.w : p.x;
    if (col == null || !p.shown) return { x: x, y: p.y + HEAD_H / 2 };
    var i = p.shown.rows.indexOf(col);
    if (i < 0) return { x: x, y: p.y + HEAD_H / 2 };
    return { x: x, y: p.y + HEAD_H + i * ROW_H + ROW_H / 2 + 2 };
  }
  function curve(a, b) {
    var dx = Math.max(30, (b.x - a.x) / 2);
    return 'M' + a.x + ' ' + a.y + ' C' + (a.x + dx) + ' ' + a.y + ' ' + (b.x - dx) + ' ' + b.y + ' ' + b.x + ' ' + b.y;
  }

  // ---------------------------------------------------------------- drawing
  function draw() {
    var vp = document.getElementById('viewport');
    clear(vp);
    var list = visibleNodes();
    lay = computeLayout(list);
    var gLayers = sv('g', { 'class': 'layers' }), gM = sv('g', { 'class': 'model-edges' }),
        gE = sv('g', { 'class': 'column-edges' }), gN = sv('g', { 'class': 'nodes' });
    // edges first: nodes are drawn over them
    vp.appendChild(gLayers); vp.appendChild(gM); vp.appendChild(gE); vp.appendChild(gN);
    var sel = state.kind !== null;
    if (!lay.compact) {
      lay.ranks.forEach(function (rk) {
        var names = new Set(rk.nodes.map(layerOf));
        gLayers.appendChild(sv('text', { x: rk.x, y: -8, 'class': 'layer-label' }, Array.from(names).sort().join(', ')));
      });
    }
    // model-level edges (thin), left out of a column's path drawn alone
    if (!(state.kind === 'column' && lay.compact)) {
      list.forEach(function (n) {
        (n.depends_on || []).forEach(function (p) {
          if (!lay.pos.has(p)) return;
          var on = hl.models.has(n.id + '>' + p) || hl.models.has(p + '>' + n.id) ||
                   (state.kind === 'source' && hl.nodes.has(n.id) && hl.nodes.has(p));
          if (sel && !on && list.length > BIG) return;  // big graphs: only the path's model edges
          var a = anchor(p, null, 'out'), b = anchor(n.id, null, 'in');
          gM.appendChild(sv('path', { d: curve(a, b), 'class': 'medge' + (on ? ' hl' : sel ? ' dim' : ''),
                                      'data-source': p, 'data-target': n.id }));
        });
      });
    }
    list.forEach(function (n) { gN.appendChild(drawNode(n, lay.pos.get(n.id), sel)); });
    // the selected column's path: values (DIRECT) in colour; with INDIRECT, the rest muted
    [[hl.iedges, true], [hl.edges, false]].forEach(function (pair) {
      pair[0].forEach(function (i) { drawEdge(gE, edges[i], pair[1]); });
    });
    var svg = document.getElementById('graph');
    svg.setAttribute('data-nodes', String(list.length));
    svg.classList.toggle('settled', state.kind === 'source' && settled(sourceById(state.source)));
    applyView();
    var shown = list.length + ' of ' + nodes.length + ' nodes';
    if (state.kind === 'column') {
      shown += ' \u00b7 ' + plural(hl.edges.size, 'value edge') + (indirect.checked ? ', ' + hl.iedges.size + ' INDIRECT' : '');
    }
    document.getElementById('status-line').textContent = shown;
  }
  function drawEdge(g, e, muted) {
    var a = anchor(e.source.node, e.source.column, 'out'), b = anchor(e.target.node, e.target.column, 'in');
    if (!a || !b) return;
    var path = sv('path', {
      d: curve(a, b), 'class': 'edge hl ' + e.type + ' ' + e.subtype + ' sub-' + e.subtype + (muted ? ' muted' : ''),
      'data-source': e.source.node, 'data-source-column': e.source.column,
      'data-target': e.target.node, 'data-target-column': e.target.column == null ? '' : e.target.column,
      'data-type': e.type, 'data-subtype': e.subtype
    });
    path.appendChild(sv('title', null, label(e.source.node) + '.' + e.source.column + ' \u2192 ' +
      label(e.target.node) + '.' + (e.target.column == null ? '* (every row)' : e.target.column) + ': ' + e.type + ' ' + e.subtype));
    g.appendChild(path);
  }
  function drawNode(n, p, sel) {
    var cls = 'node layer-' + layerOf(n) + (n.flags && n.flags.root ? ' root' : '');
    if (sel && hl.nodes.has(n.id)) cls += ' hl';
    if (state.kind === 'source' && settled(sourceById(state.source))) cls += ' settled';
    if (sel && !hl.nodes.has(n.id) && state.id !== n.id) cls += ' dim';
    if ((state.kind === 'model' || state.kind === 'column') && state.id === n.id) cls += ' selected';
    var g = sv('g', { 'class': cls, 'data-id': n.id, transform: 'translate(' + p.x + ',' + p.y + ')' });
    g.appendChild(sv('rect', { 'class': 'box', width: p.w, height: p.h }));
    g.appendChild(sv('rect', { 'class': 'head', x: 1, y: 1, width: p.w - 2, height: HEAD_H - 2 }));
    if (n.status) {
      var dot = sv('circle', { 'class': 'status ' + n.status, cx: 10, cy: HEAD_H / 2, r: 5 });
      dot.appendChild(sv('title', null, 'lineage ' + n.status));
      g.appendChild(dot);
    }
    var name = sv('text', { x: n.status ? 20 : 8, y: 16, 'class': 'name' }, label(n.id));
    name.appendChild(sv('title', null, label(n.id) + ' (' + n.type + (n.status ? ', ' + n.status : '') + ')'));
    name.addEventListener('click', function () { selectModel(n.id); });
    g.appendChild(name);
    var nf = (findingsOf.get(n.id) || []).length;
    if (nf) g.appendChild(sv('text', { x: p.w - 8, y: 16, 'text-anchor': 'end', 'class': 'badge' }, '\u26a0 ' + nf));
    if (p.shown) {
      var prov = new Set(n.provenance_columns || []);
      p.shown.rows.forEach(function (c, i) {
        var k = key(n.id, c), y = HEAD_H + i * ROW_H + 2;
        var rc = 'colrow' + (hl.cols.has(k) ? ' hl' : hl.icols.has(k) ? ' ihl' : '') +
                 (state.kind === 'column' && state.id === n.id && state.col === c ? ' selected' : '');
        var row = sv('rect', { 'class': rc, x: 2, y: y, width: p.w - 4, height: ROW_H, 'data-column': c });
        var t = sv('text', { x: 10, y: y + 12, 'class': 'col' + (prov.has(c) ? ' prov' : ''), 'data-column': c },
                   c + (prov.has(c) ? ' \u25c6' : ''));
        [row, t].forEach(function (x) { x.addEventListener('click', function () { selectColumn(n.id, c); }); });
        g.appendChild(row); g.appendChild(t);
      });
      if (p.shown.more) {
        var more = sv('text', { x: 10, y: HEAD_H + p.shown.rows.length * ROW_H + 14, 'class': 'col more-cols' },
                      '+ ' + p.shown.more + ' more column' + (p.shown.more === 1 ? '' : 's'));
        more.addEventListener('click', function () { state.expanded.add(n.id); update(false); });
        g.appendChild(more);
      }
    }
    return g;
  }

  // ---------------------------------------------------------------- pan, zoom, fit
  function applyView() {
    document.getElementById('viewport').setAttribute('transform',
      'translate(' + view.tx.toFixed(2) + ',' + view.ty.toFixed(2) + ') scale(' + view.k.toFixed(5) + ')');
    document.getElementById('graph').classList.toggle('far', view.k < 0.3);
  }
  function canvasSize() {
    var c = document.getElementById('canvas');
    return { w: c.clientWidth, h: c.clientHeight };
  }
  // fit these nodes (default: the selection, or everything drawn) inside the canvas
  function fit() {
    if (!lay) return;
    var ids = [];
    if (state.kind !== null && hl.nodes.size) hl.nodes.forEach(function (id) { if (lay.pos.has(id)) ids.push(id); });
    if (state.id && lay.pos.has(state.id) && ids.indexOf(state.id) < 0) ids.push(state.id);
    if (!ids.length) ids = Array.from(lay.pos.keys());
    var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    ids.forEach(function (id) {
      var p = lay.pos.get(id);
      x0 = Math.min(x0, p.x); y0 = Math.min(y0, p.y); x1 = Math.max(x1, p.x + p.w); y1 = Math.max(y1, p.y + p.h);
    });
    if (!lay.compact && ids.length === lay.pos.size) y0 = Math.min(y0, -22);  // the layer names
    if (!isFinite(x0)) { view = { k: 1, tx: FIT_PAD, ty: FIT_PAD }; applyView(); return; }
    var size = canvasSize(), bw = x1 - x0, bh = y1 - y0;
    var k = Math.min((size.w - 2 * FIT_PAD) / Math.max(bw, 1), (size.h - 2 * FIT_PAD - 30) / Math.max(bh, 1), MAX_FIT_ZOOM);
    k = Math.max(MIN_ZOOM, k);
    view = { k: k, tx: (size.w - bw * k) / 2 - x0 * k, ty: Math.max(FIT_PAD, (size.h - 30 - bh * k) / 2) - y0 * k };
    applyView();
  }
  function zoomAt(factor, cx, cy) {
    var k = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, view.k * factor));
    view.tx = cx - (cx - view.tx) * (k / view.k);
    view.ty = cy - (cy - view.ty) * (k / view.k);
    view.k = k;
    applyView();
  }
  function wirePanZoom() {
    var canvas = document.getElementById('canvas');
    var drag = null;
    canvas.addEventListener('pointerdown', function (ev) {
      if (ev.button !== 0) return;
      drag = { x: ev.clientX, y: ev.clientY, tx: view.tx, ty: view.ty, moved: false, id: ev.pointerId };
    });
    canvas.addEventListener('pointermove', function (ev) {
      if (!drag) return;
      var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
      if (!drag.moved) { drag.moved = true; canvas.classList.add('dragging'); canvas.setPointerCapture(drag.id); }
      view.tx = drag.tx + dx; view.ty = drag.ty + dy;
      applyView();
    });
    var swallow = false;  // a drag is not a click on whatever it ended over
    canvas.addEventListener('click', function (e) {
      if (swallow) { e.stopPropagation(); e.preventDefault(); swallow = false; }
    }, true);
    function end() {
      if (drag && drag.moved) { swallow = true; setTimeout(function () { swallow = false; }, 0); }
      drag = null; canvas.classList.remove('dragging');
    }
    canvas.addEventListener('pointerup', end);
    canvas.addEventListener('pointercancel', end);
    canvas.addEventListener('wheel', function (ev) {
      ev.preventDefault();
      var r = canvas.getBoundingClientRect();
      zoomAt(Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
    }, { passive: false });
    function centre(f) { var s = canvasSize(); zoomAt(f, s.w / 2, s.h / 2); }
    document.getElementById('zoom-in').addEventListener('click', function () { centre(1.25); });
    document.getElementById('zoom-out').addEventListener('click', function () { centre(1 / 1.25); });
    document.getElementById('fit').addEventListener('click', fit);
    var last = canvasSize();
    window.addEventListener('resize', function () {
      var now = canvasSize();
      if (now.w !== last.w || now.h !== last.h) { last = now; fit(); }
    });
  }

  // ---------------------------------------------------------------- details panel
  function details() {
    var box = document.getElementById('details');
    clear(box);
    if (state.kind === 'source') return sourceDetails(box, state.source);
    if (state.kind === 'model' || state.kind === 'column') return modelDetails(box, byId.get(state.id));
  }
  function linkTo(text, fn) { var a = nameEl('a', { 'class': 'link', tabindex: 0 }, text); a.addEventListener('click', fn); return a; }
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
      d.appendChild(nameEl('code', null, f.column));
    }
    d.appendChild(el('div', null, f.message));
    return d;
  }
  // cells: text (a name, wrapping only between words), a DOM node, or {text, nowrap}
  function table(head, rows, nowrapCols) {
    if (!rows.length) return el('div', { 'class': 'hint' }, 'none');
    var t = el('table'), tr = el('tr');
    head.forEach(function (h) { tr.appendChild(el('th', null, h)); });
    t.appendChild(tr);
    rows.forEach(function (r) {
      var row = el('tr');
      r.forEach(function (c, i) {
        var nowrap = (nowrapCols || []).indexOf(i) >= 0;
        var td = el('td', nowrap ? { 'class': 'nowrap' } : null);
        if (c instanceof Node) td.appendChild(c);
        else if (c != null && nowrap) td.textContent = String(c);  // Chrome breaks at <wbr> even in nowrap
        else if (c != null) td.appendChild(nameEl('span', null, c));
        row.appendChild(td);
      });
      t.appendChild(row);
    });
    return t;
  }
  function modelDetails(box, n) {
    if (!n) return;
    box.appendChild(nameEl('h2', null, label(n.id) + (state.kind === 'column' ? '.' + state.col : '')));
    var meta = el('div');
    if (n.status) { meta.appendChild(el('span', { 'class': 'pill ' + n.status, id: 'detail-status' }, n.status)); meta.appendChild(document.createTextNode(' ')); }
    meta.appendChild(nameEl('span', null, n.type + (n.materialized ? ', ' + n.materialized : '') + (n.file ? ' \u00b7 ' + n.file : '')));
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
    box.appendChild(prov.length ? nameEl('div', { id: 'detail-provenance' }, prov.join(', ')) : el('div', { 'class': 'hint', id: 'detail-provenance' }, 'none'));
    var fs = findingsOf.get(n.id) || [];
    if (fs.length) {
      box.appendChild(el('h3', null, 'Findings'));
      fs.forEach(function (f) { box.appendChild(findingEl(f, false)); });
    }
    box.appendChild(el('h3', null, 'Columns (' + n.columns.length + ')'));
    var provSet = new Set(prov);
    var typed = n.columns.some(function (c) { return c.type; });
    box.appendChild(table(typed ? ['column', 'type', ''] : ['column', ''], n.columns.map(function (c) {
      var link = linkTo(c.name, function () { selectColumn(n.id, c.name); });
      var mark = provSet.has(c.name) ? 'provenance' : '';
      return typed ? [link, c.type || '', mark] : [link, mark];
    }), typed ? [1, 2] : [1]));
    if ((n.row_influences || []).length) {
      box.appendChild(el('h3', null, 'Rows changed by'));
      box.appendChild(table(['relation', 'effect'], n.row_influences.map(function (r) { return [label(r.node), r.effect]; }), [1]));
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
  function edgeRows(list, far, link) {
    return list.map(function (e) {
      var other = far(e);
      return [linkTo(label(other.node) + '.' + (other.column == null ? '*' : other.column), function () { link(e); }),
              e.subtype.toLowerCase().replace('_', ' ') + (e.target.column == null ? ' (every row)' : '') + (e.masking ? ', masking' : '')];
    });
  }
  function columnDetails(box, n, col) {
    var k = key(n.id, col);
    var ins = (inEdges.get(k) || []).concat(inEdges.get(key(n.id, null)) || []);
    var outs = outEdges.get(k) || [];
    var src = function (e) { return e.source; }, tgt = function (e) { return e.target; };
    var goIn = function (e) { selectColumn(e.source.node, e.source.column); };
    var goOut = function (e) { if (e.target.column == null) selectModel(e.target.node); else selectColumn(e.target.node, e.target.column); };
    [['Made of (DIRECT inputs)', 'Rows shaped by (INDIRECT inputs)', ins, src, goIn, 'input'],
     ['Flows into (DIRECT)', 'Shapes the rows of (INDIRECT)', outs, tgt, goOut, 'output']].forEach(function (g) {
      var direct = g[2].filter(function (e) { return e.type === 'DIRECT'; });
      var other = g[2].filter(function (e) { return e.type !== 'DIRECT'; });
      box.appendChild(el('h3', null, g[0]));
      box.appendChild(table([g[5], 'how'], edgeRows(direct, g[3], g[4]), [1]));
      if (other.length) {
        var d = el('details');
        d.appendChild(el('summary', null, g[1] + ': ' + other.length));
        d.appendChild(table([g[5], 'how'], edgeRows(other, g[3], g[4]), [1]));
        box.appendChild(d);
      }
    });
    box.appendChild(el('div', { 'class': 'hint' }, hl.nodes.size + ' nodes and ' + plural(hl.edges.size, 'value edge') +
      ' on the path' + (indirect.checked ? ', ' + hl.iedges.size + ' INDIRECT edges' : ' (tick INDIRECT for the rows that shape it)')));
  }
  function rowsText(m) {
    if (m.tainted_rows == null) return m.total_rows == null ? 'rows not counted' : m.total_rows + ' rows';
    return m.tainted_rows + (m.total_rows != null ? ' of ' + m.total_rows : '') + ' rows tainted';
  }
  function sourceDetails(box, sid) {
    var s = sourceById(sid);
    box.appendChild(nameEl('h2', null, sid));
    if (!s) { box.appendChild(el('div', { 'class': 'hint' }, 'unknown source')); return; }
    var head = el('div');
    head.appendChild(statusPill(s, 'detail-source-status'));
    if (s.status_reason) head.appendChild(document.createTextNode(' ' + s.status_reason));
    box.appendChild(head);
    var imp = s.impact, ms = (imp && imp.models) || [], left = rowsLeft(s);
    if (imp) {
      var roots = (imp.root_rows && imp.root_rows.length) ? imp.root_rows : (imp.roots || []).map(function (r) { return { node: r, tainted_rows: null }; });
      var summary = el('div', { 'class': 'summary', id: 'detail-source-summary' });
      if (s.status === 'quarantined') {
        summary.className = left === 0 ? 'summary settled-note' : 'summary';
        summary.appendChild(document.createTextNode(left == null
          ? 'quarantined: rows left in the ' + plural(ms.length, 'model') + ' it reaches were not counted'
          : left === 0 ? 'quarantined: 0 rows remain in the ' + plural(ms.length, 'model') + ' it reaches; nothing to rebuild'
          : 'quarantined, but ' + plural(left, 'row') + ' remain in the models it reaches: rebuild them'));
      } else {
        summary.appendChild(document.createTextNode(ms.length ? 'reaches ' + plural(ms.length, 'model') : 'reaches no model'));
        if (ms.length && !imp.rows_counted) {
          summary.appendChild(document.createTextNode(' (rows not counted: '));
          summary.appendChild(el('code', null, 'report --rows all'));
          summary.appendChild(document.createTextNode(' counts them)'));
        }
      }
      box.appendChild(summary);
      if (roots.length) {
        var r = el('div', null, s.status === 'quarantined' ? 'Raw rows kept in ' : 'Rows enter through ');
        roots.forEach(function (x, i) {
          if (i) r.appendChild(document.createTextNode(', '));
          r.appendChild(linkTo(label(x.node), function () { selectModel(x.node); }));
          if (x.tainted_rows != null) r.appendChild(document.createTextNode(' (' + plural(x.tainted_rows, 'row') + ')'));
        });
        box.appendChild(r);
      }
      if (imp.note) box.appendChild(el('div', { 'class': 'hint' }, imp.note));
    }
    var fields = s.fields || {};
    var keys = Object.keys(fields).filter(function (k) { return ['source_id', 'status', 'status_reason'].indexOf(k) < 0 && fields[k] !== ''; });
    if (keys.length) {
      box.appendChild(el('h3', null, 'Registry'));
      box.appendChild(table(['field', 'value'], keys.map(function (k) { return [k, fields[k]]; }), [0]));
    }
    if (!imp) { box.appendChild(el('div', { 'class': 'hint' }, 'no impact computed')); return; }
    if (!ms.length) return;
    var container = box;
    if (settled(s)) {  // nothing left to do: the list is there, folded
      container = el('details');
      container.appendChild(el('summary', null, 'Models it would reach (' + ms.length + ')'));
      box.appendChild(container);
    } else {
      box.appendChild(el('h3', null, 'Models reached (' + ms.length + ')'));
    }
    // models grouped by mode and reason: a reason shared by several models is said once
    var groups = [], byKey = new Map();
    ms.forEach(function (m) {
      var why = (m.reasons || []).join('; '), k = m.mode + '\u0000' + why;
      if (!byKey.has(k)) { var gr = { mode: m.mode, why: why, models: [] }; byKey.set(k, gr); groups.push(gr); }
      byKey.get(k).models.push(m);
    });
    groups.forEach(function (gr) {
      var div = el('div', { 'class': 'group' });
      var shared = gr.models.length > 1;
      if (shared) {
        var h = el('div');
        h.appendChild(el('span', { 'class': 'pill ' + gr.mode }, gr.mode));
        h.appendChild(document.createTextNode(' ' + plural(gr.models.length, 'model')));
        div.appendChild(h);
        if (gr.why) div.appendChild(el('div', { 'class': 'why' }, gr.why));
      }
      gr.models.forEach(function (m) {
        var card = el('div', { 'class': 'impact', 'data-model': m.model });
        if (!shared) { card.appendChild(el('span', { 'class': 'pill ' + m.mode }, m.mode)); card.appendChild(document.createTextNode(' ')); }
        card.appendChild(linkTo(label(m.model), function () { selectModel(m.model); }));
        card.appendChild(el('span', { 'class': 'rows' }, ' \u00b7 ' + rowsText(m)));
        if (!shared && gr.why) card.appendChild(el('div', { 'class': 'why' }, gr.why));
        div.appendChild(card);
      });
      container.appendChild(div);
    });
    if (imp.rebuild_command && !settled(s)) {
      box.appendChild(el('h3', null, s.status === 'quarantined' ? 'Rebuild' : 'Rebuild without it'));
      box.appendChild(el('code', { 'class': 'cmd' }, imp.rebuild_command));
    }
  }

  // ---------------------------------------------------------------- wiring
  header();
  sourcesList();
  overview();
  wirePanZoom();
  document.getElementById('search').addEventListener('input', search);
  document.getElementById('search').addEventListener('keydown', function (ev) {
    if (ev.key === 'Enter') { var first = document.querySelector('#results .result'); if (first) first.click(); }
  });
  pathOnly.addEventListener('change', function () { draw(); fit(); });
  indirect.addEventListener('change', function () { update(true); });
  document.getElementById('clear').addEventListener('click', clearSelection);
  readHash();
  document.body.setAttribute('data-ready', '1');
})();
