// The agent console: screen pops pushed over server-sent events (gateway/http/agent_console.py).
// EventSource reconnects by itself after a cut stream (the stream's `retry:`), but gives up for
// good when a reconnection is answered with an HTTP error (a proxy's 502/503 while the gateway
// restarts), and retries a gateway that is down every 2 s forever. So after its own first try
// this page starts a new stream itself, after a growing, jittered wait (2 s, up to 30 s),
// telling the last event id it saw. It stops only when the session is over (the stream's `bye`,
// or a check of the page answered by the login redirect, 401 or 403) and says so.
// Everything is drawn with textContent, never as HTML, so nothing a caller or visitor sent can
// become markup.
(function () {
  'use strict';
  var MAX_POPS = 20;
  var EVENTS = '/staff/agent/events';
  var FIRST_WAIT_MS = 2000;
  var MAX_WAIT_MS = 30000;
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

  var source = null;
  var lastId = ''; // the last event id seen, told to a new EventSource (it starts with none)
  var failures = 0; // reconnections given up in a row, for the wait before the next
  var retryTimer = null;

  function remember(event) {
    if (event.lastEventId) lastId = event.lastEventId;
  }

  function stop(text) {
    if (source) source.close();
    source = null;
    if (retryTimer) clearTimeout(retryTimer);
    retryTimer = null;
    setStatus('down', text);
  }

  // Full jitter between 2 s and a cap that doubles with each failure, up to 30 s: pages cut
  // together (a gateway restart) do not all come back in the same second.
  function nextWait() {
    var cap = Math.min(MAX_WAIT_MS, FIRST_WAIT_MS * Math.pow(2, failures));
    failures += 1;
    return FIRST_WAIT_MS + Math.random() * (cap - FIRST_WAIT_MS);
  }

  function scheduleRetry() {
    var wait = nextWait();
    setStatus('connecting', 'Reconnecting in ' + Math.ceil(wait / 1000) + ' s…');
    retryTimer = setTimeout(check, wait);
  }

  // Before a new stream: is the session still there? The page answers 200 to a logged-in
  // agent, redirects to the login page (seen here as an opaque redirect) or says 401/403
  // otherwise; anything else (a proxy's 5xx, no network) is worth another try later.
  function check() {
    retryTimer = null;
    fetch('/staff/agent', {credentials: 'same-origin', redirect: 'manual', cache: 'no-store'})
      .then(function (response) {
        if (response.type === 'opaqueredirect' || response.status === 401) {
          stop('Logged out: reload the page to log in again.');
        } else if (response.status === 403) {
          stop('Your account may not use the agent console any more: reload the page.');
        } else if (response.ok) {
          connect();
        } else {
          scheduleRetry();
        }
      }, scheduleRetry);
  }

  function connect() {
    setStatus('connecting', 'Connecting…');
    var url = lastId ? EVENTS + '?last_event_id=' + encodeURIComponent(lastId) : EVENTS;
    var es = source = new EventSource(url);
    var ownTries = 0; // EventSource's own reconnections since this stream was last open
    es.addEventListener('open', function () {
      failures = 0;
      ownTries = 0;
      setStatus('live', 'Live: waiting for calls.');
    });
    es.addEventListener('hello', function (event) {
      var hello = JSON.parse(event.data);
      if (!hello.endpoints.length) setStatus('live', 'Live, but no phone is mapped to you.');
    });
    es.addEventListener('pop', function (event) { remember(event); onPop(event); });
    es.addEventListener('end', function (event) { remember(event); onEnd(event); });
    es.addEventListener('bye', function () {
      stop('Logged out: reload the page to log in again.');
    });
    es.addEventListener('error', function () {
      if (es !== source) return; // an old stream, already replaced or stopped
      // After a cut EventSource tries once by itself (in `retry:` ms, telling Last-Event-ID);
      // when that fails too, or the answer was an HTTP error, the waits below take over.
      if (es.readyState !== EventSource.CLOSED && ownTries < 1) {
        ownTries += 1;
        setStatus('connecting', 'Reconnecting…');
        return;
      }
      es.close();
      source = null;
      scheduleRetry();
    });
  }

  connect();
})();
