// The agent console: screen pops pushed over server-sent events (gateway/http/agent_console.py).
// EventSource reconnects by itself (the stream's `retry:`); everything is drawn with
// textContent, never as HTML, so nothing a caller or visitor sent can become markup.
(function () {
  'use strict';
  var MAX_POPS = 20;
  var statusLine = document.getElementById('console-status');
  var list = document.getElementById('pops');
  var ended = {}; // linkedid -> DialEnd status, for an end that arrives before its pop

  function setStatus(state, text) {
    statusLine.dataset.state = state;
    statusLine.textContent = text;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function row(dl, label, value, className) {
    if (value === undefined || value === null || value === '') return;
    dl.appendChild(el('dt', null, label));
    var dd = el('dd', className);
    if (value instanceof Node) dd.appendChild(value); else dd.textContent = String(value);
    dl.appendChild(dd);
  }

  function when(stamp) {
    if (!stamp) return '';
    var date = new Date(stamp);
    return isNaN(date.getTime()) ? stamp : date.toLocaleString();
  }

  function pagesList(pages) {
    if (!pages || !pages.length) return null;
    var ul = el('ul', 'pages');
    pages.forEach(function (p) { ul.appendChild(el('li', null, p)); });
    return ul;
  }

  function visitRows(dl, visit) {
    if (!visit) { row(dl, 'Visit', 'no visit known', 'kind'); return; }
    row(dl, 'Source', [visit.source, visit.medium].filter(Boolean).join(' / ') || visit.kind, 'source');
    row(dl, 'Campaign', visit.campaign, 'campaign');
    row(dl, 'Keyword', visit.keyword, 'keyword');
    row(dl, 'Landing page', visit.landing_page, 'landing-page');
    row(dl, 'Referrer', visit.referrer, 'referrer');
    row(dl, 'Pages seen', pagesList(visit.pages), 'pages-seen');
  }

  function itemList(items, className, describe) {
    if (!items || !items.length) return null;
    var ul = el('ul', className);
    items.forEach(function (item) { ul.appendChild(el('li', null, describe(item))); });
    return ul;
  }

  function change(entry) {
    var moved = entry.before || entry.after ? ': ' + (entry.before || '—') + ' → ' + (entry.after || '—') : '';
    return entry.what + moved + ' (' + when(entry.at) + ')';
  }

  function contactRows(dl, pop) {
    var c = pop.contact;
    if (pop.first_time) row(dl, 'Contact', 'first call', 'first-time');
    if (!c) return;
    row(dl, 'Status', c.spam ? (c.status + ' · marked spam') : c.status, 'contact-status');
    row(dl, 'Tags', (c.tags || []).join(', '), 'contact-tags');
    row(dl, 'Calls here', c.calls, 'contact-calls');
    row(dl, 'First call', when(c.first_call_at), 'contact-first');
    row(dl, 'Line', [c.line_type, c.carrier, c.geo || c.region].filter(Boolean).join(' · '), 'contact-line');
    row(dl, 'Open tasks', itemList(c.open_tasks, 'tasks', function (task) {
      return 'call back, due ' + when(task.due_at);
    }), 'contact-tasks');
    row(dl, 'History', itemList(c.history, 'history', change), 'contact-history');
  }

  function render(pop) {
    var article = el('article', 'pop');
    article.dataset.linkedid = pop.linkedid;
    article.dataset.endpoint = pop.endpoint;
    article.dataset.callId = pop.call_id || '';
    var title = el('h2', 'caller', pop.caller || 'Unknown caller');
    if (pop.caller_name) title.appendChild(el('span', 'caller-name', pop.caller_name));
    article.appendChild(el('span', 'state', 'ringing ' + pop.endpoint));
    article.appendChild(title);
    var dl = el('dl');
    row(dl, 'Site', pop.site, 'site');
    row(dl, 'Dialed', pop.dialed, 'dialed');
    visitRows(dl, pop.visit);
    contactRows(dl, pop);
    article.appendChild(dl);
    return article;
  }

  function existing(linkedid, endpoint) {
    var found = null;
    list.querySelectorAll('article.pop').forEach(function (a) {
      if (a.dataset.linkedid === linkedid && a.dataset.endpoint === endpoint) found = a;
    });
    return found;
  }

  function markEnded(article, status) {
    article.dataset.state = 'ended';
    article.querySelector('.state').textContent =
      (status === 'ANSWER' ? 'answered' : (status || 'ended').toLowerCase()) + ' ' +
      article.dataset.endpoint;
  }

  function onPop(event) {
    var pop = JSON.parse(event.data);
    var article = render(pop);
    article.dataset.state = 'ringing';
    article.dataset.shownAt = String(Date.now());
    var old = existing(pop.linkedid, pop.endpoint);
    var empty = list.querySelector('.empty');
    if (empty) empty.remove();
    if (old) old.replaceWith(article); else list.insertBefore(article, list.firstChild);
    if (ended[pop.linkedid]) markEnded(article, ended[pop.linkedid]);
    while (list.querySelectorAll('article.pop').length > MAX_POPS) list.lastChild.remove();
  }

  function onEnd(event) {
    var end = JSON.parse(event.data);
    ended[end.linkedid] = end.status;
    var article = existing(end.linkedid, end.endpoint);
    if (article) markEnded(article, end.status);
  }

  var source = new EventSource('/staff/agent/events');
  source.addEventListener('open', function () { setStatus('live', 'Live: waiting for calls.'); });
  source.addEventListener('hello', function (event) {
    var hello = JSON.parse(event.data);
    if (!hello.endpoints.length) setStatus('live', 'Live, but no phone is mapped to you.');
  });
  source.addEventListener('pop', onPop);
  source.addEventListener('end', onEnd);
  source.addEventListener('bye', function () {
    source.close();
    setStatus('down', 'Logged out: reload the page to log in again.');
  });
  source.addEventListener('error', function () {
    if (source.readyState === EventSource.CLOSED) {
      setStatus('down', 'Disconnected: reload the page (or log in again).');
    } else {
      setStatus('connecting', 'Reconnecting…');
    }
  });
})();
