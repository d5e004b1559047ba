/**
 * The dashboard page: HTML, CSS and a small script, served as they are (no build step). The
 * script builds every element with `createElement` and puts data only in `textContent` and
 * in attributes set with `setAttribute`/`style` properties, never in markup: lock names,
 * holder descriptions and election values are user data.
 */

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>baton dashboard</title>
<link rel="stylesheet" href="app.css">
<script src="app.js" defer></script>
</head>
<body>
<header>
  <h1>baton</h1>
  <div id="health" class="health"><span class="dot"></span><span id="health-text">connecting…</span></div>
  <div id="stream" class="stream">connecting…</div>
</header>
<main>
  <section>
    <h2>Locks</h2>
    <div id="locks" class="locks"><p class="empty">No locks yet.</p></div>
  </section>
  <section class="side">
    <h2>Elections</h2>
    <div id="elections" class="locks"><p class="empty">No elections.</p></div>
    <h2>Changes</h2>
    <ol id="changes" class="changes"></ol>
  </section>
</main>
<footer id="footer"></footer>
</body>
</html>
`;

export const APP_CSS = `
:root { --bg: #f6f7f9; --card: #fff; --ink: #1d2330; --muted: #6b7385; --line: #e2e5ea; --ok: #1f9d55; --warn: #d97706; --bad: #dc2626; --bar: #3b82f6; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink); background: var(--bg); }
header { display: flex; align-items: center; gap: 16px; padding: 10px 20px; background: var(--card); border-bottom: 1px solid var(--line); }
h1 { font-size: 18px; margin: 0; }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); margin: 16px 0 8px; }
.health { display: flex; align-items: center; gap: 6px; }
.dot { width: 10px; height: 10px; border-radius: 50%; background: var(--muted); display: inline-block; }
.health.connected .dot { background: var(--ok); }
.health.unreachable .dot { background: var(--bad); }
.health.unreachable { color: var(--bad); }
.stream { margin-left: auto; color: var(--muted); }
.stream.down { color: var(--warn); }
main { display: grid; grid-template-columns: minmax(0, 2fr) minmax(0, 1fr); gap: 20px; padding: 0 20px 20px; }
.locks { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 10px; }
.side .locks { grid-template-columns: 1fr; }
.lock { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.lock.held { border-left: 4px solid var(--bar); }
.lock.free { opacity: .7; }
.lock.changed { animation: flash 1.2s ease-out; }
@keyframes flash { from { background: #fff7d6; } to { background: var(--card); } }
.title { display: flex; align-items: baseline; gap: 8px; }
.name { font-weight: 600; word-break: break-all; }
.kind, .fence, .status { color: var(--muted); font-size: 12px; white-space: nowrap; }
.status { margin-left: auto; white-space: nowrap; }
.holder { margin-top: 8px; }
.who { word-break: break-all; }
.meta { color: var(--muted); font-size: 12px; }
.bar { height: 6px; background: var(--line); border-radius: 3px; overflow: hidden; margin-top: 4px; }
.bar > span { display: block; height: 100%; background: var(--bar); }
.bar.low > span { background: var(--warn); }
.bar.out > span { background: var(--bad); }
.leader { font-size: 15px; margin-top: 6px; word-break: break-all; }
.waiters { margin: 8px 0 0; padding-left: 20px; color: var(--muted); font-size: 12px; }
.chart svg { display: block; width: 100%; height: 36px; margin-top: 8px; background: #fafbfc; border-radius: 4px; }
.chart .holding { fill: none; stroke: var(--bar); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
.chart .waiting { fill: rgba(217, 119, 6, .3); stroke: none; }
button.admin { margin-top: 8px; font: inherit; font-size: 12px; color: var(--bad); background: none; border: 1px solid var(--bad); border-radius: 4px; padding: 2px 8px; cursor: pointer; }
.changes { list-style: none; margin: 0; padding: 0; font-size: 12px; }
.changes li { padding: 4px 0; border-bottom: 1px solid var(--line); word-break: break-all; }
.changes time { color: var(--muted); margin-right: 6px; }
.empty { color: var(--muted); }
footer { padding: 0 20px 20px; color: var(--muted); font-size: 12px; }
`;

export const APP_JS = String.raw`'use strict';
(function () {
  var $ = function (id) { return document.getElementById(id); };
  /** el makes an element with a class and text: data only ever goes into textContent. */
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function seconds(ms) {
    if (ms < 0) ms = 0;
    if (ms < 10000) return (ms / 1000).toFixed(1) + ' s';
    if (ms < 120000) return Math.round(ms / 1000) + ' s';
    if (ms < 7200000) return Math.round(ms / 60000) + ' min';
    return Math.round(ms / 3600000) + ' h';
  }
  function short(owner) { return owner.length > 12 ? owner.slice(0, 8) + '…' : owner; }
  function who(h) {
    if (h.foreign) return 'not a baton holder (' + h.owner + ')';
    if (!h.holder) return short(h.owner);
    var d = h.holder, parts = [];
    if (d.label) parts.push(d.label);
    if (d.command) parts.push(d.command);
    var where = [d.host, d.pid !== undefined ? 'pid ' + d.pid : null].filter(Boolean).join(' ');
    if (where) parts.push(where);
    return parts.join(' · ') + ' · ' + short(h.owner);
  }

  var firstSeen = new Map();   // owner -> when this page first saw it hold
  var previous = new Map();    // kind + name -> { owners, fence }
  var HISTORY_MS = 5 * 60 * 1000;
  var history = new Map();     // kind + name -> { samples: [{ t, h, w }], holds: [ms], waits: [ms] }
  var waitingSince = new Map(); // owner -> when this page first saw it wait
  var SVG = 'http://www.w3.org/2000/svg';
  // The admin token, when the page was opened at #token=... (a dashboard started with --admin).
  function tokenOf(hash) { return (/(?:^#|&)token=([0-9a-f]{32})/.exec(hash) || [])[1] || null; }
  var adminToken = tokenOf(location.hash);
  window.addEventListener('hashchange', function () { adminToken = tokenOf(location.hash); });

  /** Asks the dashboard to force-release a lock (same-origin POST with the token), and logs the answer. */
  function forceRelease(lock) {
    if (!window.confirm('Force-release ' + lock.kind + ' "' + lock.name + '"? Its holders lose it at their next renewal.')) return;
    fetch('release', { method: 'POST', headers: { 'content-type': 'application/json', 'x-baton-token': adminToken }, body: JSON.stringify({ kind: lock.kind, name: lock.name }) })
      .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
      .then(function (r) {
        logChange(r.ok ? 'force-released: ' + lock.kind + ' ' + lock.name + ' (' + r.body.removed + ' holder' + (r.body.removed === 1 ? '' : 's') + ')' : 'force-release refused: ' + r.body.error);
      }, function (e) { logChange('force-release failed: ' + e); });
  }

  /** Records a lock's holders and waiters at t, and the holds and waits this page saw end. */
  function remember(lock, t, before) {
    var k = key(lock), hist = history.get(k);
    if (!hist) history.set(k, hist = { samples: [], holds: [], waits: [] });
    hist.samples.push({ t: t, h: lock.holders.length, w: lock.waiters.length });
    while (hist.samples.length && hist.samples[0].t < t - HISTORY_MS) hist.samples.shift();
    var owners = lock.holders.map(function (h) { return h.owner; });
    if (before) before.owners.forEach(function (o) {
      if (owners.indexOf(o) < 0 && firstSeen.has(o)) push(hist.holds, t - firstSeen.get(o));
    });
    lock.waiters.forEach(function (w) { if (!waitingSince.has(w.owner)) waitingSince.set(w.owner, t); });
    owners.forEach(function (o) {
      if (waitingSince.has(o)) { push(hist.waits, t - waitingSince.get(o)); waitingSince.delete(o); }
    });
  }
  function push(list, ms) { list.push(ms); if (list.length > 100) list.shift(); }
  function median(list) { var s = list.slice().sort(function (a, b) { return a - b; }); return s[Math.floor(s.length / 2)]; }

  /** A chart of up to the last five minutes: holders (blue line) and waiters (amber area), drawn from the snapshots this page saw. */
  function chart(lock, now) {
    var hist = history.get(key(lock));
    var box = el('div', 'chart');
    if (!hist || hist.samples.length < 2) return box;
    var W = 300, H = 36, top = 1;
    hist.samples.forEach(function (s) { top = Math.max(top, s.h, s.w); });
    // The window grows with what this page has seen, up to five minutes.
    var span = Math.min(HISTORY_MS, Math.max(10000, now - hist.samples[0].t));
    var x = function (t) { return Math.max(0, W * (1 - (now - t) / span)).toFixed(1); };
    var y = function (v) { return (H - 2 - (H - 4) * v / top).toFixed(1); };
    var svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    svg.setAttribute('preserveAspectRatio', 'none');
    var area = 'M' + x(hist.samples[0].t) + ' ' + H;
    var line = '';
    hist.samples.forEach(function (s, i) {
      area += ' L' + x(s.t) + ' ' + y(s.w);
      line += (i ? ' L' : 'M') + x(s.t) + ' ' + y(s.h);
    });
    area += ' L' + x(hist.samples[hist.samples.length - 1].t) + ' ' + H + ' Z';
    var a = document.createElementNS(SVG, 'path');
    a.setAttribute('d', area);
    a.setAttribute('class', 'waiting');
    var l = document.createElementNS(SVG, 'path');
    l.setAttribute('d', line);
    l.setAttribute('class', 'holding');
    svg.appendChild(a);
    svg.appendChild(l);
    box.appendChild(svg);
    var notes = [];
    if (hist.holds.length) notes.push(hist.holds.length + ' hold' + (hist.holds.length === 1 ? '' : 's') + ' seen, median ' + seconds(median(hist.holds)));
    if (hist.waits.length) notes.push(hist.waits.length + ' wait' + (hist.waits.length === 1 ? '' : 's') + ' seen, median ' + seconds(median(hist.waits)));
    notes.push('last ' + seconds(span) + ', up to ' + top + ' at once');
    box.appendChild(el('div', 'meta', notes.join(' · ')));
    return box;
  }
  var bars = [];               // { bar, fill, text, deadline, ttl }
  var changes = [];
  var lastSnapshot = null;

  function key(lock) { return lock.kind + '\u0000' + lock.name; }

  function logChange(text) {
    changes.unshift({ at: new Date(), text: text });
    if (changes.length > 50) changes.length = 50;
    var list = $('changes');
    list.textContent = '';
    changes.forEach(function (c) {
      var li = el('li');
      li.appendChild(el('time', null, c.at.toLocaleTimeString()));
      li.appendChild(document.createTextNode(c.text));
      list.appendChild(li);
    });
  }

  /** Compares a lock with what the page showed before and logs acquisitions, hand-offs and releases. */
  function diff(lock, first) {
    var k = key(lock), before = previous.get(k);
    remember(lock, Date.now(), before);
    var owners = lock.holders.map(function (h) { return h.owner; });
    previous.set(k, { owners: owners, fence: lock.fence });
    if (first || !before) return false;
    var gone = before.owners.filter(function (o) { return owners.indexOf(o) < 0; });
    var came = owners.filter(function (o) { return before.owners.indexOf(o) < 0; });
    var label = lock.kind + ' ' + lock.name;
    came.forEach(function (o) {
      var h = lock.holders.filter(function (x) { return x.owner === o; })[0];
      var token = h && h.token !== null ? ' (token ' + h.token + ')' : '';
      if (gone.length > 0) logChange('hand-off: ' + label + ' → ' + who(h) + token);
      else logChange('acquired: ' + label + ' by ' + who(h) + token);
    });
    if (came.length === 0 && gone.length > 0) logChange('released: ' + label + (lock.holders.length ? '' : ' (free)'));
    return came.length > 0 || gone.length > 0;
  }

  function holderRow(h, receivedAt) {
    var row = el('div', 'holder');
    if (!firstSeen.has(h.owner)) firstSeen.set(h.owner, receivedAt);
    row.appendChild(el('div', 'who', who(h)));
    var bar = el('div', 'bar'), fill = el('span');
    bar.appendChild(fill);
    row.appendChild(bar);
    var meta = el('div', 'meta');
    row.appendChild(meta);
    bars.push({ bar: bar, fill: fill, meta: meta, h: h, deadline: receivedAt + h.expiresInMs, ttl: h.ttlMs, seen: firstSeen.get(h.owner) });
    return row;
  }

  function card(lock, receivedAt, changed) {
    var held = lock.holders.length > 0;
    var c = el('article', 'lock ' + (held ? 'held' : 'free') + (changed ? ' changed' : ''));
    c.setAttribute('data-kind', lock.kind);
    var title = el('div', 'title');
    title.appendChild(el('span', 'name', lock.name));
    title.appendChild(el('span', 'kind', lock.kind));
    if (lock.fence !== null) title.appendChild(el('span', 'fence', 'fence ' + lock.fence));
    var status;
    if (lock.kind === 'semaphore') status = lock.holders.length + ' permit' + (lock.holders.length === 1 ? '' : 's') + ' used';
    else if (lock.kind === 'rwlock') status = held ? (lock.holders[0].mode === 'shared' ? lock.holders.length + ' reader' + (lock.holders.length === 1 ? '' : 's') : 'writer') : 'free';
    else status = held ? 'held' : 'free';
    if (lock.waiters.length) status += ' · ' + lock.waiters.length + ' waiting';
    title.appendChild(el('span', 'status', status));
    c.appendChild(title);
    if (lock.kind === 'election' && held) {
      var leader = lock.holders[0];
      c.appendChild(el('div', 'leader', 'leader: ' + (leader.value !== undefined ? leader.value : '')));
    }
    lock.holders.forEach(function (h) { c.appendChild(holderRow(h, receivedAt)); });
    if (lock.waiters.length) {
      var ol = el('ol', 'waiters');
      lock.waiters.forEach(function (w) { ol.appendChild(el('li', null, short(w.owner) + (w.mode === 'shared' ? ' (shared)' : ''))); });
      c.appendChild(ol);
    }
    c.appendChild(chart(lock, receivedAt));
    if (adminToken && held) {
      var button = el('button', 'admin', 'force release');
      button.addEventListener('click', function () { forceRelease(lock); });
      c.appendChild(button);
    }
    return c;
  }

  function render(snapshot) {
    var receivedAt = Date.now();
    var first = lastSnapshot === null;
    lastSnapshot = snapshot;
    var s = snapshot.store;
    var health = $('health');
    health.className = 'health ' + s.state;
    var text = s.name + ' store: ' + s.state;
    if (s.state === 'connected' && s.rttMs !== null) text += ' · list ' + s.rttMs + ' ms';
    if (s.state === 'unreachable' && s.error) text += ' · ' + s.error;
    if (s.clock !== null) text += ' · TTL clock: ' + s.clock + (s.fencing ? ' · fencing' : ' · no fencing tokens');
    $('health-text').textContent = text;
    bars = [];
    var locks = $('locks'), elections = $('elections');
    locks.textContent = '';
    elections.textContent = '';
    var seenOwners = new Set();
    snapshot.locks.forEach(function (lock) {
      var changed = diff(lock, first);
      lock.holders.forEach(function (h) { seenOwners.add(h.owner); });
      (lock.kind === 'election' ? elections : locks).appendChild(card(lock, receivedAt, changed));
    });
    firstSeen.forEach(function (_, owner) { if (!seenOwners.has(owner)) firstSeen.delete(owner); });
    var seenWaiters = new Set();
    snapshot.locks.forEach(function (lock) { lock.waiters.forEach(function (w) { seenWaiters.add(w.owner); }); });
    waitingSince.forEach(function (_, owner) { if (!seenWaiters.has(owner)) waitingSince.delete(owner); });
    if (!locks.firstChild) locks.appendChild(el('p', 'empty', s.lastOkAt === null ? 'Waiting for the store to answer…' : 'No locks yet.'));
    if (!elections.firstChild) elections.appendChild(el('p', 'empty', 'No elections.'));
    var listed = s.lastOkAt === null ? 'no listing yet' : (s.state === 'connected' ? 'listed ' : 'the store has not answered since ') + new Date(s.lastOkAt).toLocaleTimeString() + (s.state === 'connected' ? '' : ': showing that listing');
    $('footer').textContent = snapshot.locks.length + ' locks' + (snapshot.truncated ? ' (more not shown)' : '') + ' · ' + listed;
    tick();
  }

  /** Moves the time-left bars between snapshots. */
  function tick() {
    var now = Date.now();
    bars.forEach(function (b) {
      var left = b.deadline - now;
      var share = b.ttl > 0 ? Math.max(0, Math.min(1, left / b.ttl)) : 0;
      b.fill.style.width = (share * 100).toFixed(1) + '%';
      b.bar.className = 'bar' + (left <= 0 ? ' out' : share < 0.34 ? ' low' : '');
      var token = b.h.token !== null ? 'token ' + b.h.token + ' · ' : '';
      b.meta.textContent = token + (left > 0 ? seconds(left) + ' left of ' + seconds(b.ttl) : 'expired, not renewed') + ' · seen holding ' + seconds(now - b.seen);
    });
  }
  setInterval(tick, 250);

  var source = new EventSource('events');
  source.addEventListener('snapshot', function (e) { render(JSON.parse(e.data)); });
  source.onopen = function () { var s = $('stream'); s.textContent = 'live'; s.className = 'stream'; };
  source.onerror = function () { var s = $('stream'); s.textContent = 'reconnecting…'; s.className = 'stream down'; };
})();
`;
