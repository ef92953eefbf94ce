// The batch page: one batch's delays, records per input and output
// operations, from /api/v1/streaming/batches/{id}; refreshed until the batch
// completes.
'use strict';
(function () {
  const { isNum, fmtDateTime, fmtCount, fmtDuration, $, el, clear, setText, getJSON, dashboardLinks,
    connectionStatus } = window.ember;
  const POLL_MS = 1000;
  const id = new URLSearchParams(location.search).get('id') || '';
  const renderDashboards = dashboardLinks(null);
  const connection = connectionStatus();

  function render(b) {
    $('batch-missing').hidden = true;
    $('batch-details').hidden = false;
    document.title = 'Batch ' + fmtDateTime(b.batchTime) + ' · Streaming · ember';
    setText('batch-time', fmtDateTime(b.batchTime)).setAttribute('data-ms', String(b.batchTime));
    const status = b.status || '-';
    setText('batch-status', status).className = 'badge ' + (status === 'COMPLETED' ? 'ok' : 'warn');
    setText('batch-records', fmtCount(b.inputSize)).setAttribute('data-records', String(b.inputSize));
    for (const [key, v] of [['submission-delay', b.submissionDelay], ['scheduling-delay', b.schedulingDelay],
      ['processing-time', b.processingTime], ['total-delay', b.totalDelay]]) {
      setText('batch-' + key, fmtDuration(v)).setAttribute('data-ms', isNum(v) ? String(v) : '');
    }

    const inputs = $('batch-inputs').tBodies[0];
    clear(inputs);
    const byInput = b.recordsByInput || {};
    for (const name of Object.keys(byInput)) {
      const tr = inputs.appendChild(el('tr', { 'data-input': name }));
      tr.appendChild(el('td', { class: 'name' }, name));
      tr.appendChild(el('td', { class: 'records', 'data-records': String(byInput[name]) }, fmtCount(byInput[name])));
    }
    $('batch-inputs').tFoot.hidden = Object.keys(byInput).length > 0;

    const opsBody = $('batch-operations').tBodies[0];
    clear(opsBody);
    const ops = Array.isArray(b.outputOperations) ? b.outputOperations : [];
    for (const op of ops) {
      const tr = opsBody.appendChild(el('tr', { 'data-output-op-id': String(op.outputOpId) }));
      tr.appendChild(el('td', { class: 'num' }, String(op.outputOpId)));
      tr.appendChild(el('td', { class: 'name' }, op.name || '-'));
      tr.appendChild(el('td', { class: 'start' }, fmtDateTime(op.startTime)));
      tr.appendChild(el('td', { class: 'duration num', 'data-ms': isNum(op.duration) ? String(op.duration) : '' },
        fmtDuration(op.duration)));
      const st = tr.appendChild(el('td', { class: 'status' }));
      if (op.failureReason) {
        st.setAttribute('data-status', 'FAILED');
        st.appendChild(el('div', { class: 'failure-reason' }, 'Failed: ' + op.failureReason));
      } else {
        const done = isNum(op.endTime);
        st.setAttribute('data-status', done ? 'SUCCEEDED' : 'RUNNING');
        st.appendChild(el('span', { class: 'badge ' + (done ? 'ok' : 'warn') }, done ? 'succeeded' : 'running'));
      }
    }
    $('batch-operations').tFoot.hidden = ops.length > 0;
  }

  function missing() {
    $('batch-missing').hidden = false;
    $('batch-details').hidden = true;
    setText('batch-time', /^\d+$/.test(id) ? fmtDateTime(Number(id)) : id || '(no id)');
    setText('batch-status', 'UNKNOWN').className = 'badge bad';
  }

  async function refresh() {
    let done = false;
    try {
      const [b, dashboards] = await Promise.all([
        getJSON('/api/v1/streaming/batches/' + encodeURIComponent(id)),
        getJSON('/api/v1/dashboards').catch(() => null),
      ]);
      render(b);
      renderDashboards(dashboards);
      connection.ok();
      done = b.status === 'COMPLETED';   // a completed batch no longer changes
    } catch (e) {
      if (e && e.status === 404) { missing(); connection.ok(); done = true; }
      else connection.failed(e && e.message ? e.message : String(e), 'disconnected');
    }
    if (!done) setTimeout(refresh, POLL_MS);
  }

  refresh();
})();
