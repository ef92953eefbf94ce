// The Streaming page: polls the JSON API and draws the statistics, timelines,
// histograms and tables (after ember.js, served from /static/ so that the
// page's Content-Security-Policy needs no inline script).
'use strict';
(function () {
  const { isNum, fmtDateTime, fmtClock, trimNum, fmtCount, fmtDuration, fmtBytes, $, el, sv, clear,
    setText, getJSON, dashboardLinks, connectionStatus } = window.ember;
  const POLL_MS = 1000;              // refresh period
  const MAX_CHART_BATCHES = 1000;    // completed batches plotted
  const MAX_TABLE_ROWS = 100;        // completed batches listed

  // ---------------------------------------------------------------- formatting
  // Verbose durations for the header sentence: "1 second", "2 minutes 3 seconds".
  function fmtDurationVerbose(ms) {
    if (!isNum(ms)) return '-';
    ms = Math.round(ms);
    if (ms < 1000) return ms + ' ms';
    if (ms < 60000 && ms % 1000 !== 0) return trimNum(ms / 1000, 3) + ' seconds';
    const units = [['day', 86400000], ['hour', 3600000], ['minute', 60000], ['second', 1000]];
    const parts = [];
    let rest = ms;
    for (const [name, size] of units) {
      const n = Math.floor(rest / size);
      rest -= n * size;
      if (n > 0 || parts.length) parts.push([n, name]);
      if (parts.length === 2) break;      // two most significant units are enough
    }
    return parts.filter(p => p[0] > 0).map(p => p[0] + ' ' + p[1] + (p[0] === 1 ? '' : 's')).join(' ');
  }
  const fmtRate = v => isNum(v) ? v.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 }) +
    ' records/sec' : '-';
  const fmtInt = v => isNum(v) ? String(Math.round(v)) : '-';

  // -------------------------------------------------------------- chart axes
  // Picks a display unit (durations only) and a "nice" tick step so the y axis
  // reads 0, 5, 10, 15 ... rather than arbitrary numbers.
  function axisFor(maxValue, isDuration) {
    let unit = isDuration ? 'ms' : 'records/sec', div = 1;
    if (isDuration && maxValue >= 120000) { unit = 'min'; div = 60000; }
    else if (isDuration && maxValue >= 2000) { unit = 's'; div = 1000; }
    const m = Math.max(maxValue / div, unit === 'ms' ? 4 : 1);
    const raw = m / 4, mag = Math.pow(10, Math.floor(Math.log10(raw))), norm = raw / mag;
    const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
    const n = Math.max(1, Math.ceil(m / step - 1e-9));
    const ticks = [];
    for (let i = 0; i <= n; i++) ticks.push(i * step * div);
    return { unit, top: n * step * div, ticks, label: t => trimNum(t / div, 2) };
  }

  // Shared geometry: timelines and histograms have the same vertical layout so
  // that a histogram bin lines up with the same value on the timeline next to it.
  const TOP = 22, BOTTOM = 26, HEIGHT = 196;
  const TL = { w: 620, l: 54, r: 14 };
  const HG = { w: 300, l: 12, r: 34 };
  const yOf = (axis, v) => TOP + (HEIGHT - TOP - BOTTOM) * (1 - v / axis.top);

  function drawYGrid(svg, axis, x1, x2, withLabels) {
    for (const t of axis.ticks) {
      const y = yOf(axis, t).toFixed(1);
      svg.appendChild(sv('line', { class: 'grid', x1, x2, y1: y, y2: y }));
      if (withLabels) svg.appendChild(sv('text', { x: x1 - 6, y: +y + 3, 'text-anchor': 'end' }, axis.label(t)));
    }
  }
  // Dashed line at the batch interval; the label is added last so it sits above the data.
  function drawIntervalLine(svg, axis, interval, x1, x2) {
    const y = yOf(axis, interval).toFixed(1);
    svg.appendChild(sv('line', { class: 'batch-interval-line', x1, x2, y1: y, y2: y }));
    return () => svg.appendChild(sv('text', { class: 'interval-label', x: x2 - 2, y: y - 4, 'text-anchor': 'end' }, 'batch interval'));
  }

  // Line chart: x = batch time, y = value, one circle per batch.
  function drawTimeline(svg, pts, axis, opt) {
    clear(svg);
    svg.setAttribute('viewBox', '0 0 ' + TL.w + ' ' + HEIGHT);
    const x1 = TL.l, x2 = TL.w - TL.r, yBase = yOf(axis, 0);
    drawYGrid(svg, axis, x1, x2, true);
    svg.appendChild(sv('text', { x: 2, y: 10 }, axis.unit));
    svg.appendChild(sv('line', { class: 'axis', x1, x2, y1: yBase, y2: yBase }));
    const intervalLabel = opt.interval != null ? drawIntervalLine(svg, axis, opt.interval, x1, x2) : () => {};
    if (!pts.length) {
      svg.appendChild(sv('text', { class: 'empty', x: (x1 + x2) / 2, y: HEIGHT / 2, 'text-anchor': 'middle' }, 'No completed batches yet'));
      intervalLabel();
      return;
    }
    let t0 = pts[0].t, t1 = pts[pts.length - 1].t;
    if (t1 === t0) { t0 -= opt.pad; t1 += opt.pad; }
    const xOf = t => x1 + (t - t0) / (t1 - t0) * (x2 - x1);
    // Five evenly spaced time labels.
    for (let i = 0; i <= 4; i++) {
      const t = t0 + (t1 - t0) * i / 4;
      svg.appendChild(sv('text', { x: xOf(t).toFixed(1), y: HEIGHT - 8,
        'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' }, fmtClock(t)));
    }
    const path = pts.map((p, i) => (i ? 'L' : 'M') + xOf(p.t).toFixed(1) + ',' + yOf(axis, p.v).toFixed(1)).join('');
    svg.appendChild(sv('path', { class: 'area',
      d: path + 'L' + xOf(pts[pts.length - 1].t).toFixed(1) + ',' + yBase + 'L' + xOf(pts[0].t).toFixed(1) + ',' + yBase + 'Z' }));
    svg.appendChild(sv('path', { class: 'line', d: path }));
    const r = pts.length > 300 ? 1.5 : pts.length > 100 ? 2 : 2.8;
    for (const p of pts) {
      const c = sv('circle', { cx: xOf(p.t).toFixed(1), cy: yOf(axis, p.v).toFixed(1), r,
        'data-batch-time': String(p.t), 'data-value': String(p.v) });
      c.appendChild(sv('title', null, fmtDateTime(p.t) + '  ·  ' + opt.fmt(p.v)));
      svg.appendChild(c);
    }
    intervalLabel();
  }

  // Sideways histogram sharing the timeline's y axis; bar length = batch count.
  function drawHistogram(svg, values, axis, opt) {
    clear(svg);
    svg.setAttribute('viewBox', '0 0 ' + HG.w + ' ' + HEIGHT);
    const x1 = HG.l, x2 = HG.w - HG.r, yBase = yOf(axis, 0);
    drawYGrid(svg, axis, x1, x2, false);
    // Bin edges coincide with the y ticks (each tick interval split evenly).
    const nInt = axis.ticks.length - 1;
    const nBins = nInt * Math.max(1, Math.round(12 / nInt));
    const bw = axis.top / nBins;
    const counts = new Array(values.length ? nBins : 0).fill(0);   // no bars at all without data
    for (const v of values) counts[Math.min(nBins - 1, Math.max(0, Math.floor(v / bw)))]++;
    const maxC = Math.max(1, ...counts);
    for (let i = 0; i < counts.length; i++) {
      const lo = i * bw, hi = lo + bw, yTop = yOf(axis, hi), h = yOf(axis, lo) - yTop;
      const w = counts[i] / maxC * (x2 - x1);
      const bar = sv('rect', { class: 'bar', x: x1, y: (yTop + 0.5).toFixed(1), width: w.toFixed(1),
        height: Math.max(0.5, h - 1).toFixed(1), 'data-count': String(counts[i]),
        'data-min': String(lo), 'data-max': String(hi) });
      bar.appendChild(sv('title', null, opt.fmt(lo) + ' – ' + opt.fmt(hi) + ': ' + counts[i] + ' batches'));
      svg.appendChild(bar);
      if (counts[i] > 0 && h >= 9) {
        svg.appendChild(sv('text', { x: (x1 + w + 3).toFixed(1), y: (yTop + h / 2 + 3.5).toFixed(1) }, String(counts[i])));
      }
    }
    svg.appendChild(sv('line', { class: 'axis', x1, x2, y1: yBase, y2: yBase }));
    svg.appendChild(sv('line', { class: 'axis', x1, x2: x1, y1: TOP, y2: yBase }));
    svg.appendChild(sv('text', { x: x1, y: HEIGHT - 8 }, '0'));
    svg.appendChild(sv('text', { x: (x1 + x2) / 2, y: HEIGHT - 8, 'text-anchor': 'middle' }, '#batches'));
    svg.appendChild(sv('text', { x: x2, y: HEIGHT - 8, 'text-anchor': 'end' }, String(maxC)));
    if (opt.interval != null) drawIntervalLine(svg, axis, opt.interval, x1, x2);
  }

  // --------------------------------------------------------------- rendering
  let lastStats = null, lastCompleted = [];
  const expanded = new Set();      // batch ids whose output operations are shown
  const opsCache = new Map();      // batch id -> array | {error} | 'loading'

  function renderStats(s) {
    setText('app-name', s.appName || 'Streaming');
    document.title = (s.appName ? s.appName + ' · ' : '') + 'Streaming · ember';
    setText('batch-interval', fmtDurationVerbose(s.batchDuration)).setAttribute('data-ms', fmtInt(s.batchDuration));
    setText('uptime', fmtDurationVerbose(s.uptime)).setAttribute('data-ms', fmtInt(s.uptime));
    setText('start-time', fmtDateTime(s.startTime)).setAttribute('data-ms', fmtInt(s.startTime));
    $('running-for').hidden = !isNum(s.startTime);
    $('not-started').hidden = isNum(s.startTime);
    setText('num-completed-batches', fmtCount(s.numTotalCompletedBatches));
    setText('num-retained-batches', fmtCount(s.numRetainedCompletedBatches));
    setText('num-active-batches', fmtCount(s.numActiveBatches));
    setText('num-received-records', fmtCount(s.numReceivedRecords));
    setText('num-processed-records', fmtCount(s.numProcessedRecords));
    setText('num-receivers', fmtCount(s.numReceivers));
    setText('receivers-note', fmtCount(s.numActiveReceivers) + ' active, ' + fmtCount(s.numInactiveReceivers) + ' inactive');
    const state = s.state || 'UNKNOWN';
    setText('state', state).className = 'badge ' + (state === 'ACTIVE' ? 'ok' : state === 'STOPPED' ? 'bad' : 'warn');
    const bp = s.backpressure || {};
    setText('backpressure', bp.enabled ? 'enabled' : 'disabled');
    setText('backpressure-rate', bp.enabled && isNum(bp.rate) ? 'rate limit ' + fmtRate(bp.rate) : '\u00a0');
    setText('input-rate-receivers', fmtInt(s.numReceivers) + ' receiver' + (s.numReceivers === 1 ? '' : 's') +
      ' (' + fmtInt(s.numActiveReceivers) + ' active)');
    setText('avg-input-rate', fmtRate(s.avgInputRate));
    setText('avg-submission-delay', fmtDuration(s.avgSubmissionDelay));
    setText('avg-scheduling-delay', fmtDuration(s.avgSchedulingDelay));
    setText('avg-processing-time', fmtDuration(s.avgProcessingTime));
    setText('avg-total-delay', fmtDuration(s.avgTotalDelay));
  }

  // The checkpoint panel: the last checkpoint this process committed, all
  // of them, and the keys each stateful operator holds.
  function renderCheckpoints(s) {
    const c = s.checkpoint, all = s.checkpoints || {}, keys = Array.isArray(s.stateKeys) ? s.stateKeys : [];
    const on = !!c || keys.length > 0;
    $('checkpoint-panel').hidden = !on;
    $('checkpoint-off').hidden = on;
    if (!on) return;
    setText('checkpoint-batch-time', c ? fmtDateTime(c.batchTime) : 'none yet')
      .setAttribute('data-ms', c ? fmtInt(c.batchTime) : '');
    setText('checkpoint-committed', c ? fmtDateTime(c.committed) : '-');
    setText('checkpoint-duration', c ? fmtDuration(c.duration) : '-')
      .setAttribute('data-ms', c ? String(c.duration) : '');
    setText('checkpoint-size', c ? fmtBytes(c.bytes) : '-').setAttribute('data-bytes', c ? fmtInt(c.bytes) : '');
    setText('checkpoint-count', fmtCount(all.count)).setAttribute('data-count', fmtInt(all.count));
    setText('checkpoint-total', fmtBytes(all.bytes) + ' in all' +
      (all.count ? ', ' + fmtDuration(all.duration / all.count) + ' each on average' : ''));
    const body = $('state-keys').tBodies[0];
    clear(body);
    for (const k of keys) {
      const tr = body.appendChild(el('tr', { 'data-operator': k.operator }));
      tr.appendChild(el('td', { class: 'operator' }, k.operator));
      tr.appendChild(el('td', { class: 'keys', 'data-keys': fmtInt(k.keys) }, fmtCount(k.keys)));
    }
    $('state-keys').tFoot.hidden = keys.length > 0;
  }

  function renderCharts(s, completed) {
    const recent = completed.slice(0, MAX_CHART_BATCHES).reverse();   // oldest first
    const bd = isNum(s.batchDuration) && s.batchDuration > 0 ? s.batchDuration : null;
    const series = [
      { key: 'input-rate', duration: false, fmt: fmtRate,
        val: b => (isNum(b.inputSize) && bd) ? b.inputSize * 1000 / bd : null },
      { key: 'scheduling-delay', duration: true, fmt: fmtDuration, val: b => b.schedulingDelay },
      { key: 'processing-time', duration: true, fmt: fmtDuration, val: b => b.processingTime, interval: true },
      { key: 'total-delay', duration: true, fmt: fmtDuration, val: b => b.totalDelay },
    ];
    for (const se of series) {
      const pts = [];
      for (const b of recent) {
        const v = se.val(b), t = isNum(b.batchTime) ? b.batchTime : b.batchId;
        if (isNum(v) && isNum(t)) pts.push({ t, v });
      }
      const interval = se.interval && bd ? bd : null;
      let max = interval || 0;
      for (const p of pts) if (p.v > max) max = p.v;
      const axis = axisFor(max, se.duration);
      const opt = { fmt: se.fmt, interval, pad: bd || 1000 };
      drawTimeline($('timeline-' + se.key), pts, axis, opt);
      drawHistogram($('histogram-' + se.key), pts.map(p => p.v), axis, opt);
    }
    setText('stats-note', recent.length ? 'last ' + recent.length + ' completed batch' + (recent.length === 1 ? '' : 'es') : '');
  }

  // One table row for a batch; the same cell classes are used in both tables.
  function batchRow(b, withStatus) {
    const tr = el('tr', { class: 'batch', 'data-batch-time': fmtInt(b.batchTime), 'data-batch-id': fmtInt(b.batchId),
      'data-status': b.status });
    tr.appendChild(el('td', { class: 'batch-time' })).appendChild(
      el('a', { href: '/streaming/batch?id=' + encodeURIComponent(b.batchId) }, fmtDateTime(b.batchTime)));
    const rec = el('td', { class: 'records', 'data-records': fmtInt(b.inputSize) }, fmtCount(b.inputSize));
    if (b.recordsByInput) rec.title = Object.keys(b.recordsByInput).map(k => k + ': ' + b.recordsByInput[k]).join('\n');
    tr.appendChild(rec);
    for (const [cls, v] of [['submission-delay', b.submissionDelay], ['scheduling-delay', b.schedulingDelay],
      ['processing-time', b.processingTime], ['total-delay', b.totalDelay]]) {
      tr.appendChild(el('td', { class: cls, 'data-ms': isNum(v) ? String(v) : null }, fmtDuration(v)));
    }
    const done = b.numCompletedOutputOps || 0, failed = b.numFailedOutputOps || 0, total = b.numTotalOutputOps || 0;
    const ops = el('td', { class: 'output-ops', 'data-succeeded': String(done), 'data-failed': String(failed),
      'data-total': String(total) }, done + '/' + total);
    if (total > 0) {   // thin progress bar: green succeeded, red failed
      const a = done / total * 100, f = (done + failed) / total * 100;
      ops.style.backgroundImage = 'linear-gradient(90deg, #4caf50 ' + a + '%, #e53935 ' + a + '%, #e53935 ' + f +
        '%, #e4e8ee ' + f + '%)';
    }
    if (failed > 0) {
      ops.appendChild(document.createTextNode(' (' + failed + ' failed)'));
      if (b.firstFailureReason) {
        const reason = String(b.firstFailureReason);
        ops.appendChild(el('div', { class: 'failure-reason', title: reason }, reason.split('\n')[0]));
      }
    }
    tr.appendChild(ops);
    if (withStatus) {
      tr.appendChild(el('td', { class: 'status' }, '')).appendChild(
        el('span', { class: 'badge ' + (b.status === 'PROCESSING' ? 'ok' : 'warn') }, b.status || '-'));
    }
    return tr;
  }

  // Expanded detail row listing a completed batch's output operations.
  function opsRow(batchId) {
    const tr = el('tr', { class: 'ops-row', 'data-ops-for': String(batchId) });
    const td = tr.appendChild(el('td', { colspan: '7' }));
    const ops = opsCache.get(batchId);
    if (ops === 'loading' || ops == null) { td.appendChild(el('span', { class: 'muted' }, 'Loading output operations…')); return tr; }
    if (ops.error) { td.appendChild(el('span', { class: 'failure-reason' }, 'Could not load output operations: ' + ops.error)); return tr; }
    if (!ops.length) { td.appendChild(el('span', { class: 'muted' }, 'No output operations.')); return tr; }
    const t = td.appendChild(el('table', { class: 'ops' }));
    const head = t.appendChild(el('tr'));
    for (const h of ['Op', 'Name', 'Start', 'Duration', 'Status']) head.appendChild(el('th', null, h));
    for (const op of ops) {
      const r = t.appendChild(el('tr', { 'data-output-op-id': fmtInt(op.outputOpId) }));
      r.appendChild(el('td', null, fmtInt(op.outputOpId)));
      r.appendChild(el('td', null, op.name || '-'));
      r.appendChild(el('td', null, fmtDateTime(op.startTime)));
      r.appendChild(el('td', null, fmtDuration(op.duration)));
      const st = r.appendChild(el('td'));
      if (op.failureReason) st.appendChild(el('div', { class: 'failure-reason' }, 'Failed: ' + op.failureReason));
      else st.appendChild(el('span', { class: 'badge ' + (isNum(op.endTime) ? 'ok' : 'warn') }, isNum(op.endTime) ? 'succeeded' : 'running'));
    }
    return tr;
  }

  function renderBatchTables(batches) {
    const active = batches.filter(b => b.status === 'QUEUED' || b.status === 'PROCESSING');
    const completed = batches.filter(b => b.status === 'COMPLETED');
    lastCompleted = completed;

    const aBody = $('active-batches').tBodies[0];
    clear(aBody);
    for (const b of active) aBody.appendChild(batchRow(b, true));
    $('active-batches').tFoot.hidden = active.length > 0;
    setText('active-batches-count', '(' + active.length + ')');

    renderCompleted();
    return completed;
  }

  function renderCompleted() {
    const completed = lastCompleted;
    const cBody = $('completed-batches').tBodies[0];
    clear(cBody);
    const shown = completed.slice(0, MAX_TABLE_ROWS);
    for (const b of shown) {
      const tr = cBody.appendChild(batchRow(b, false));
      if (expanded.has(b.batchId)) { tr.classList.add('expanded'); cBody.appendChild(opsRow(b.batchId)); }
    }
    $('completed-batches').tFoot.hidden = shown.length > 0;
    const total = lastStats && isNum(lastStats.numTotalCompletedBatches) ? lastStats.numTotalCompletedBatches : completed.length;
    setText('completed-batches-count', shown.length < total ? '(showing latest ' + shown.length + ' of ' + total + ')' : '(' + total + ')');
  }

  // Tiny line of a receiver's recent event rates.
  function sparkline(rates) {
    const s = sv('svg', { class: 'sparkline', viewBox: '0 0 120 24', preserveAspectRatio: 'none' });
    const pts = (rates || []).filter(p => Array.isArray(p) && isNum(p[0]) && isNum(p[1]));
    if (pts.length < 2) return s;
    const t0 = pts[0][0], t1 = pts[pts.length - 1][0] || t0 + 1;
    const vmax = Math.max(1, ...pts.map(p => p[1]));
    s.appendChild(sv('polyline', { points: pts.map(p =>
      ((p[0] - t0) / ((t1 - t0) || 1) * 118 + 1).toFixed(1) + ',' + (22 - p[1] / vmax * 20).toFixed(1)).join(' ') }));
    return s;
  }

  function renderReceivers(receivers) {
    const body = $('receivers').tBodies[0];
    clear(body);
    let active = 0;
    for (const r of receivers) {
      if (r.isActive) active++;
      const tr = body.appendChild(el('tr', { 'data-stream-id': fmtInt(r.streamId) }));
      tr.appendChild(el('td', { class: 'name' }, r.streamName || ('stream-' + fmtInt(r.streamId))));
      tr.appendChild(el('td', { class: 'status' }, r.isActive ? 'ACTIVE' : 'INACTIVE'))
        .style.color = r.isActive ? 'var(--ok)' : 'var(--err)';
      tr.appendChild(el('td', { class: 'worker' }, r.worker == null ? '-' : String(r.worker)));
      tr.appendChild(el('td', { class: 'avg-event-rate' }, fmtRate(r.avgEventRate)));
      const rec = tr.appendChild(el('td', { class: 'records', 'data-records': fmtInt(r.numRecords) }, fmtCount(r.numRecords)));
      if (isNum(r.numRecordsRead) && r.numRecordsRead !== r.numRecords) {
        rec.title = fmtCount(r.numRecordsRead - r.numRecords) + ' more read, waiting for the next batch';
      }
      tr.appendChild(el('td', { class: 'event-rate' })).appendChild(sparkline(r.eventRates));
      tr.appendChild(el('td', { class: 'last-error-time' }, r.lastError ? fmtDateTime(r.lastErrorTime) : '-'));
      tr.appendChild(el('td', { class: r.lastError ? 'last-error' : 'last-error muted' },
        r.lastError ? String(r.lastError) : '-'));
    }
    $('receivers').tFoot.hidden = receivers.length > 0;
    setText('receivers-count', receivers.length ? '(' + active + ' active of ' + receivers.length + ')' : '');
  }

  // Links to the dashboards in the navigation; none of them is this page.
  const renderDashboards = dashboardLinks(null);

  // ------------------------------------------------------------------ polling
  const connection = connectionStatus();

  async function refresh() {
    let data = null;
    try {
      data = await Promise.all([
        getJSON('/api/v1/streaming/statistics'),
        getJSON('/api/v1/streaming/batches'),
        getJSON('/api/v1/streaming/receivers'),
        getJSON('/api/v1/dashboards').catch(() => null),   // optional: nav links only
      ]);
    } catch (e) {
      connection.failed(e && e.message ? e.message : String(e), 'disconnected');
    }
    if (data) {
      try {
        const [stats, batches, receivers, dashboards] = data;
        lastStats = stats || {};
        renderStats(lastStats);
        renderCheckpoints(lastStats);
        const completed = renderBatchTables(Array.isArray(batches) ? batches : []);
        renderCharts(lastStats, completed);
        renderReceivers(Array.isArray(receivers) ? receivers : []);
        renderDashboards(dashboards);
        connection.ok();
      } catch (e) {
        console.error('render failed', e);
      }
    }
    setTimeout(refresh, POLL_MS);
  }

  // Click a completed batch to show/hide its output operations.
  $('completed-batches').tBodies[0].addEventListener('click', ev => {
    const tr = ev.target.closest('tr.batch');
    if (!tr || ev.target.closest('a')) return;   // the time links to the batch page
    const id = Number(tr.getAttribute('data-batch-id'));
    if (expanded.has(id)) { expanded.delete(id); renderCompleted(); return; }
    expanded.add(id);
    if (!opsCache.has(id) || opsCache.get(id).error) {
      opsCache.set(id, 'loading');
      getJSON('/api/v1/streaming/batches/' + encodeURIComponent(id) + '/operations')
        .then(ops => opsCache.set(id, Array.isArray(ops) ? ops : []))
        .catch(e => opsCache.set(id, { error: e.message || String(e) }))
        .then(renderCompleted);
    }
    renderCompleted();
  });

  // Click a point on a timeline to jump to that batch in the table.
  document.querySelector('.stats').addEventListener('click', ev => {
    const c = ev.target.closest('circle[data-batch-time]');
    if (!c) return;
    const row = document.querySelector('#completed-batches tr[data-batch-time="' + c.getAttribute('data-batch-time') + '"]');
    if (!row) return;
    row.scrollIntoView({ block: 'center', behavior: 'smooth' });
    row.classList.add('highlight');
    setTimeout(() => row.classList.remove('highlight'), 1500);
  });

  refresh();
})();
