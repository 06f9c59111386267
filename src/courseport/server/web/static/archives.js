// The admin's archive jobs, kept live: while a job runs, the table is redrawn
// every second from /admin/archives/jobs (progress, rate, ETA), with no reload.
(function () {
  'use strict';
  var table = document.getElementById('jobs');
  if (!table) { return; }
  var token = table.getAttribute('data-token');
  var body = table.tBodies[0];

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = text; }
    if (className) { node.className = className; }
    return node;
  }
  function number(n) { return (n || 0).toLocaleString('en-US'); }
  function duration(seconds) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) { return seconds + ' s'; }
    var m = Math.floor(seconds / 60), s = seconds % 60;
    if (m < 60) { return m + ' min ' + (s < 10 ? '0' : '') + s + ' s'; }
    return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }

  function progressCell(job) {
    var td = el('td', null, 'cp-job-progress');
    if (job.total) {
      var bar = el('progress');
      bar.max = job.total;
      bar.value = job.done;
      td.appendChild(bar);
      td.appendChild(document.createTextNode(' '));
    }
    var counts = number(job.done) + (job.total ? ' / ' + number(job.total) : '');
    if (job.total && job.state === 'running') {
      counts += ' (' + Math.floor(job.done * 100 / job.total) + '%)';
    }
    td.appendChild(el('span', counts, 'cp-job-counts'));
    if (job.state === 'running') {
      var live = job.rate > 0 ? number(Math.round(job.rate)) + ' rows/s' : 'starting';
      if (job.eta !== null && job.eta !== undefined) { live += ', ETA ' + duration(job.eta); }
      live += ', ' + duration(job.seconds) + ' so far';
      td.appendChild(el('br'));
      td.appendChild(el('span', live, 'cp-job-rate'));
    } else if (job.message) {
      td.appendChild(el('br'));
      td.appendChild(el('span', job.message, 'cp-note'));
    }
    return td;
  }

  function archiveCell(job) {
    var td = el('td');
    if (job.state === 'done' && job.file) {
      var link = el('a', job.file);
      link.href = '/admin/archives/file?id=' + encodeURIComponent(job.id);
      link.setAttribute('download', '');
      td.appendChild(link);
      td.appendChild(el('br'));
      var note = el('span', number(job.size) + ' bytes, ' + number(job.rows) + ' rows', 'cp-note');
      note.appendChild(el('br'));
      note.appendChild(document.createTextNode('SHA-256 '));
      note.appendChild(el('code', job.sha256, 'cp-sha'));
      td.appendChild(note);
    }
    return td;
  }

  // Delete an ended job; cancel a running download (an upload runs to its end).
  function actionCell(job) {
    var td = el('td');
    var live = job.state === 'running';
    if (live && job.action !== 'download') { return td; }
    var action = live ? 'cancel' : 'delete';
    var form = el('form', null, 'cp-inline');
    form.method = 'post';
    form.action = '/admin/archives';
    [['xsrf_token', token], ['action', action], ['id', job.id]].forEach(function (pair) {
      var input = el('input');
      input.type = 'hidden';
      input.name = pair[0];
      input.value = pair[1];
      form.appendChild(input);
    });
    form.appendChild(el('button', live ? 'Cancel' : 'Delete', 'cp-small cp-danger'));
    td.appendChild(form);
    return td;
  }

  function row(job) {
    var tr = el('tr');
    tr.setAttribute('data-job', job.id);
    tr.setAttribute('data-state', job.state);
    tr.appendChild(el('td', (job.started || '').slice(0, 19).replace('T', ' ')));
    var what = el('td', job.action + ' ' + job.type + ' ');
    what.appendChild(el('b', job.course));
    what.appendChild(el('br'));
    what.appendChild(el('span', job.options, 'cp-note'));
    tr.appendChild(what);
    tr.appendChild(el('td', job.who));
    tr.appendChild(el('td', job.state, 'cp-job-state cp-job-' + job.state));
    tr.appendChild(progressCell(job));
    tr.appendChild(archiveCell(job));
    tr.appendChild(actionCell(job));
    return tr;
  }

  function running() {
    return body.querySelector('tr[data-state="running"]') !== null;
  }

  function poll() {
    fetch('/admin/archives/jobs', {credentials: 'same-origin', headers: {'Accept': 'application/json'}})
      .then(function (response) {
        if (!response.ok) { throw new Error('HTTP ' + response.status); }
        return response.json();
      })
      .then(function (data) {
        var rows = document.createDocumentFragment();
        data.jobs.forEach(function (job) { rows.appendChild(row(job)); });
        body.replaceChildren(rows);
        if (running()) { setTimeout(poll, 1000); }
      })
      .catch(function () { setTimeout(poll, 5000); });  // the server restarting: try again later
  }

  if (running()) { setTimeout(poll, 500); }
  document.addEventListener('submit', function (e) {
    if (e.target.id === 'export-form' || e.target.id === 'import-form') {
      var button = e.target.querySelector('button[type=submit]');
      if (button) { button.disabled = true; }
    }
  });
})();
