// Helpers common to the Streaming page and the dashboard pages. Each page
// loads this file before its own script and takes what it needs from the one
// global it defines, `window.ember`.
'use strict';
(function () {
  const FETCH_TIMEOUT_MS = 5000;     // a request still unanswered by then is abandoned
  const SVG_NS = 'http://www.w3.org/2000/svg';

  // ---------------------------------------------------------------- formatting
  const pad2 = n => String(n).padStart(2, '0');
  const isNum = v => typeof v === 'number' && isFinite(v);

  // Local date and time as Spark writes them: "yyyy/MM/dd HH:mm:ss".
  function fmtDateTime(ms) {
    if (!isNum(ms)) return '-';
    const d = new Date(ms);
    return d.getFullYear() + '/' + pad2(d.getMonth() + 1) + '/' + pad2(d.getDate()) + ' ' +
      pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
  }
  // Local time of day only: "HH:mm:ss".
  function fmtClock(ms) {
    const d = new Date(ms);
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
  }

  const trimNum = (x, digits) => String(parseFloat(x.toFixed(digits)));
  // Whole numbers with thousands separators: "1,606,796".
  const fmtCount = v => isNum(v) ? Math.round(v).toLocaleString('en-US') : '-';

  // Compact durations: "0.04 ms", "0.4 ms", "3.2 ms", "17 ms", "1.2 s",
  // "1 min 5 s", "2 h 3 min" (small values keep their fraction: the API
  // gives milliseconds with microsecond precision).
  function fmtDuration(ms) {
    if (!isNum(ms)) return '-';
    if (ms < 1) return trimNum(ms, 2) + ' ms';
    if (ms < 10) return trimNum(ms, 1) + ' ms';
    ms = Math.round(ms);
    if (ms < 1000) return ms + ' ms';
    if (ms < 60000) return trimNum(ms / 1000, 1) + ' s';
    if (ms < 3600000) {
      const m = Math.floor(ms / 60000), s = Math.floor((ms % 60000) / 1000);
      return s ? m + ' min ' + s + ' s' : m + ' min';
    }
    const h = Math.floor(ms / 3600000), m = Math.floor((ms % 3600000) / 60000);
    return m ? h + ' h ' + m + ' min' : h + ' h';
  }
  // Byte sizes: "512 B", "1.5 KiB", "3.2 MiB".
  function fmtBytes(n) {
    if (!isNum(n)) return '-';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? String(n) : trimNum(n, 1)) + ' ' + units[i];
  }

  // ------------------------------------------------------------- DOM helpers
  const $ = id => document.getElementById(id);
  // Sets the attributes whose value is not null or undefined; returns the node.
  function setAttrs(node, attrs) {
    if (attrs) for (const k in attrs) if (attrs[k] != null) node.setAttribute(k, attrs[k]);
    return node;
  }
  // A new HTML element with the given attributes and, if given, text.
  function el(tag, attrs, text) {
    const n = setAttrs(document.createElement(tag), attrs);
    if (text != null) n.textContent = text;
    return n;
  }
  // The same for an SVG element.
  function sv(tag, attrs, text) {
    const n = setAttrs(document.createElementNS(SVG_NS, tag), attrs);
    if (text != null) n.textContent = text;
    return n;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  // Replaces the text of element `id` only when it changed; returns the element.
  function setText(id, text) { const n = $(id); if (n.textContent !== text) n.textContent = text; return n; }

  // GETs `url` as JSON, bypassing the cache. A failed answer rejects with an
  // Error whose `status` is the HTTP status, so a caller can tell "no such
  // thing" (404) from a server that is down.
  async function getJSON(url) {
    const ctl = typeof AbortController === 'function' ? new AbortController() : null;
    const timer = ctl ? setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS) : null;
    try {
      const res = await fetch(url, { cache: 'no-store', signal: ctl ? ctl.signal : undefined });
      if (!res.ok) { const e = new Error(url + ' → HTTP ' + res.status); e.status = res.status; throw e; }
      return await res.json();
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  // ------------------------------------------------------------- page chrome
  // Returns a function that fills the navigation's dashboard links
  // (#dashboard-links, with its #dashboards-label) from the list that
  // /api/v1/dashboards answers. It redraws only when the list changed, and
  // marks the link to dashboard `activeId` as active when one is given.
  function dashboardLinks(activeId) {
    let shownKey = null;
    return function (list) {
      if (!Array.isArray(list)) return;
      const key = JSON.stringify(list.map(d => [d.id, d.title]));
      if (key === shownKey) return;
      shownKey = key;
      const box = $('dashboard-links');
      clear(box);
      for (const d of list) {
        const a = box.appendChild(el('a', { class: 'dashboard-link', href: '/dashboard/' + encodeURIComponent(d.id),
          'data-dashboard-id': String(d.id) }, d.title || ('dashboard ' + d.id)));
        if (activeId != null && String(d.id) === String(activeId)) a.classList.add('active');
      }
      $('dashboards-label').hidden = list.length === 0;
    };
  }

  // Tracks whether the page's refreshes succeed: the time of the last good one
  // in #last-updated, the #disconnected banner while they fail, and the number
  // of good ones in body[data-updates].
  function connectionStatus() {
    let updates = 0, lastOk = null;
    return {
      // A refresh fetched and rendered everything.
      ok() {
        $('disconnected').hidden = true;
        lastOk = Date.now();
        setText('last-updated', 'updated ' + fmtClock(lastOk));
        updates++;
        document.body.setAttribute('data-updates', String(updates));
      },
      // A refresh failed: `detail` goes into the banner, `status` into the top bar.
      failed(detail, status) {
        $('disconnected').hidden = false;
        setText('disconnected-detail', detail + (lastOk ? ' · last update ' + fmtClock(lastOk) : ''));
        setText('last-updated', status);
      },
    };
  }

  window.ember = Object.freeze({
    SVG_NS, pad2, isNum, fmtDateTime, fmtClock, trimNum, fmtCount, fmtDuration, fmtBytes,
    $, setAttrs, el, sv, clear, setText, getJSON,
    dashboardLinks, connectionStatus,
  });
})();
