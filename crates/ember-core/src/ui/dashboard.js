// A dashboard page: polls /api/v1/dashboards/<id> and draws the chart and
// table (after ember.js, served from /static/ so that the page's
// Content-Security-Policy needs no inline script).
'use strict';
(function () {
  const { isNum, fmtDateTime, $, el, sv, clear, setText, getJSON,
    dashboardLinks, connectionStatus } = window.ember;
  const POLL_MS = 1000, CHART_KEYS = 20;

  // The dashboard id is the last segment of /dashboard/{id} (?id= also accepted).
  const dashId = new URLSearchParams(location.search).get('id') ||
    decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() || '0');

  // ---------------------------------------------------------------- helpers
  // Integers without decimals; other numbers with up to 4 decimals, trailing zeros dropped.
  function fmtValue(v) {
    if (!isNum(v)) return v == null ? '-' : String(v);
    return Number.isInteger(v) ? String(v) : String(parseFloat(v.toFixed(4)));
  }

  // --------------------------------------------------------------- rendering
  // Horizontal bars for the top keys; long keys are shortened in the label only.
  function drawChart(rows) {
    const svg = $('dashboard-chart');
    clear(svg);
    const top = rows.slice(0, CHART_KEYS);
    const W = 900, labelW = 200, valueW = 80, rowH = 24, padTop = 6;
    const H = Math.max(1, top.length) * rowH + padTop * 2;
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    const maxV = Math.max(0, ...top.map(r => isNum(r.value) ? r.value : 0));
    const x0 = labelW + 10, plotW = W - x0 - valueW;
    for (let i = 1; i <= 4; i++) {
      const x = (x0 + plotW * i / 4).toFixed(1);
      svg.appendChild(sv('line', { class: 'grid', x1: x, x2: x, y1: 0, y2: H }));
    }
    top.forEach((r, i) => {
      const y = padTop + i * rowH, v = isNum(r.value) ? r.value : 0;
      const w = maxV > 0 ? Math.max(0, v) / maxV * plotW : 0;
      const key = String(r.key);
      const label = key.length > 28 ? key.slice(0, 27) + '…' : key;
      svg.appendChild(sv('text', { x: labelW, y: y + rowH / 2 + 4, 'text-anchor': 'end' }, label))
        .appendChild(sv('title', null, key));
      const bar = sv('rect', { class: 'bar', x: x0, y: y + 3, width: w.toFixed(1), height: rowH - 6, rx: 2,
        'data-key': key, 'data-value': String(r.value) });
      bar.appendChild(sv('title', null, key + ': ' + fmtValue(r.value)));
      svg.appendChild(bar);
      svg.appendChild(sv('text', { class: 'value-label', x: (x0 + w + 6).toFixed(1), y: y + rowH / 2 + 4 }, fmtValue(r.value)));
    });
    setText('chart-note', top.length ? '(top ' + top.length + ' by value)' : '');
  }

  function renderPairs(d) {
    const rows = Array.isArray(d.rows) ? d.rows : [];
    drawChart(rows);
    const body = $('dashboard-rows').tBodies[0];
    clear(body);
    const maxV = Math.max(0, ...rows.map(r => isNum(r.value) ? r.value : 0));
    rows.forEach((r, i) => {
      const tr = body.appendChild(el('tr', { 'data-key': String(r.key), 'data-value': String(r.value) }));
      tr.appendChild(el('td', { class: 'rank' }, String(i + 1)));
      tr.appendChild(el('td', { class: 'key' }, String(r.key)));
      tr.appendChild(el('td', { class: 'value' }, fmtValue(r.value)));
      const share = tr.appendChild(el('td', { class: 'share' })).appendChild(el('div', { class: 'share-bar' }));
      share.appendChild(el('div')).style.width = (maxV > 0 && isNum(r.value) ? Math.max(0, r.value) / maxV * 100 : 0) + '%';
    });
    const total = isNum(d.numRows) ? d.numRows : rows.length;
    setText('rows-note', (rows.length < total ? '(showing top ' + rows.length + ' of ' + total + ')' : '(' + rows.length + ')') +
      cutNote(d, 'key'));
    return rows.length;
  }

  // Says how many of the shown keys or records the server shortened (each
  // ends with "…[N bytes in all]").
  function cutNote(d, what) {
    const n = isNum(d.numTruncated) ? d.numTruncated : 0;
    return n > 0 ? ' · ' + n + ' ' + what + (n === 1 ? '' : 's') + ' too long, shortened' : '';
  }

  function renderRecords(d) {
    const recs = Array.isArray(d.records) ? d.records : [];
    const body = $('dashboard-records').tBodies[0];
    clear(body);
    recs.forEach((line, i) => {
      const tr = body.appendChild(el('tr'));
      tr.appendChild(el('td', { class: 'rank' }, String(i + 1)));
      tr.appendChild(el('td', { class: 'record' }, line == null ? '' : String(line)));
    });
    const total = isNum(d.numRows) ? d.numRows : recs.length;
    setText('records-note', (recs.length < total ? '(showing first ' + recs.length + ' of ' + total + ')' : '(' + recs.length + ')') +
      cutNote(d, 'record'));
    return recs.length;
  }

  function render(d) {
    const title = d.title == null ? 'Dashboard ' + dashId : String(d.title);
    setText('dashboard-title', title);
    document.title = title + ' · ember';
    setText('dashboard-batch-time', fmtDateTime(d.batchTime)).setAttribute('data-batch-time', isNum(d.batchTime) ? String(d.batchTime) : '');
    setText('dashboard-num-rows', isNum(d.numRows) ? String(d.numRows) : '-');
    setText('dashboard-updated', fmtDateTime(d.updated));
    const isRecords = d.kind === 'records';
    setText('num-rows-label', isRecords ? 'Records' : 'Keys');
    $('pairs-section').hidden = isRecords;
    $('records-section').hidden = !isRecords;
    // Only the table for the current kind keeps content.
    if (isRecords) { clear($('dashboard-rows').tBodies[0]); clear($('dashboard-chart')); }
    else clear($('dashboard-records').tBodies[0]);
    const n = isRecords ? renderRecords(d) : renderPairs(d);
    const empty = $('dashboard-empty');
    empty.hidden = n > 0;
    empty.textContent = isNum(d.batchTime) ? 'The latest batch produced no results.' : 'Waiting for the first batch…';
    if (n === 0) { $('pairs-section').hidden = true; $('records-section').hidden = true; }
  }

  // Links to the dashboards in the navigation, this one marked active.
  const renderNav = dashboardLinks(dashId);

  // ------------------------------------------------------------------ polling
  const connection = connectionStatus();

  // A 404 means no such dashboard (yet), which the banner says instead of "disconnected".
  function setFailed(e) {
    const notFound = e.status === 404;
    $('disconnected').firstChild.textContent = notFound ? 'Dashboard ' + dashId + ' not found — retrying… ' : 'Disconnected — retrying… ';
    connection.failed(e.message || String(e), notFound ? 'not found' : 'disconnected');
  }

  async function refresh() {
    let d = null;
    const navReq = getJSON('/api/v1/dashboards').catch(() => null);
    try {
      d = await getJSON('/api/v1/dashboards/' + encodeURIComponent(dashId));
    } catch (e) {
      setFailed(e);
    }
    const list = await navReq;
    if (d) {
      try {
        render(d);
        connection.ok();
      } catch (e) {
        console.error('render failed', e);
      }
    }
    try { renderNav(list); } catch (e) { console.error(e); }
    setTimeout(refresh, POLL_MS);
  }

  refresh();
})();
