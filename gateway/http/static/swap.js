// ctgw swap.js: swaps a site's phone numbers for the tracking numbers leased to this visit.
// Embed: <script async src="https://GATEWAY/swap.js" data-site="KEY"></script>
// Plain ES2017, no eval, no inline styles: works under script-src 'self'. Any failure leaves the
// page as it was, silently. Full-line comments and indentation are stripped when served.
(function (W, D) {
  'use strict';
  var tag = D.currentScript || D.querySelector('script[data-site]');
  if (!tag || W.ctgw) return;
  var site = tag.getAttribute('data-site');
  var domain = tag.getAttribute('data-cookie-domain');
  // The API lives where the script came from (path prefix included).
  var api = tag.src.split(/[?#]/)[0].replace(/\/[^/]*$/, '');
  var KEY = 'ctgw_' + site, PEND = KEY + '_p';
  var TAGS = /[?&](utm_[a-z]+|gclid|gbraid|wbraid|fbclid|msclkid|bd_vid)=[^&#]*/g;
  var SEP = '[-\\s.()/\\u00a0\\u2010-\\u2015]{0,3}';
  var SKIP = /^(SCRIPT|STYLE|TEXTAREA|INPUT|SELECT|OPTION|NOSCRIPT|TEMPLATE|svg)$/;
  var INLINE = /^(A|ABBR|B|BDI|BDO|BIG|CITE|CODE|DATA|DFN|EM|FONT|I|KBD|LABEL|MARK|Q|S|SAMP|SMALL|SPAN|STRONG|SUB|SUP|TIME|TT|U|VAR|WBR)$/;
  var pairs = [], map = {}, find = null, sess = null, timer = 0, busy = 0, gone = 0;
  var queue = [], frame = 0, observer = null, jar = null, waiting = 0;
  // Renewals since the last answered heartbeat, the heartbeat interval, the next renewal's time.
  var fails = 0, H = 60, next = 0;

  function now() { return Date.now(); }

  // Storage: a first-party cookie (optionally for a parent domain); localStorage when the
  // browser refuses cookies. One store only: each access is a round trip to the browser process.
  function cookies() {
    if (jar == null) jar = navigator.cookieEnabled;  // asked once a page: it is a round trip too
    return jar;
  }
  // `c`: the cookie string when the caller read it already (one read for several keys).
  function read(k, c) {
    try {
      var m = (c == null ? D.cookie : c).match('(?:^|; )' + k + '=([^;]*)');
      if (!m && !cookies()) m = [0, localStorage.getItem(k)];
      return m && m[1] ? decodeURIComponent(m[1]) : '';
    } catch (e) { return ''; }
  }
  function write(k, v, age) {
    try {
      if (cookies()) D.cookie = k + '=' + encodeURIComponent(v) + ';path=/;max-age=' + age + ';samesite=lax' +
        (domain ? ';domain=' + domain : '') + (location.protocol == 'https:' ? ';secure' : '');
      else if (age) localStorage.setItem(k, encodeURIComponent(v));
      else localStorage.removeItem(k);
    } catch (e) { return; }
  }
  function stored(c) {
    try {
      var s = JSON.parse(read(KEY, c));
      return s && s.e > now() ? s : null;
    } catch (e) { return null; }
  }
  function keep(s) { write(KEY, JSON.stringify(s), 86400); return s; }

  // Digit sequences a number is written with: with country code, national (trunk 0), bare.
  function forms(e164) {
    var d = e164.replace(/\D/g, '');
    var cc = (d.match(/^(1|7|2[07]|3[0-469]|4[013-9]|5[1-8]|6[0-6]|8[1246]|9[0-58])/) || [d.slice(0, 3)])[0];
    var n = d.slice(cc.length);
    return cc == '1' ? [d, n] : [d, '00' + d, cc + '0' + n, '0' + n, n];
  }
  function rules(numbers) {
    var old = pairs;
    pairs = numbers.map(function (x) { return [x.target, x.number]; });
    // Numbers shown by an earlier session on this page move to the new one.
    old.forEach(function (p) {
      pairs.forEach(function (q) { if (p[0] == q[0] && p[1] != q[1]) pairs.push([p[1], q[1]]); });
    });
    map = {};
    var alts = [];
    pairs.forEach(function (p) {
      var a = forms(p[0]), b = forms(p[1]);
      a.forEach(function (f, i) { if (f != b[i] && !map[f]) { map[f] = b[i]; alts.push(f); } });
    });
    alts.sort(function (x, y) { return y.length - x.length; });
    find = alts.length ? new RegExp(alts.map(function (f) { return f.split('').join(SEP); }).join('|'), 'g') : null;
  }

  // Edits [index, replacement] that put the new digits in place of the old, keeping separators.
  function edits(t) {
    var out = [], m, a, z, d, n, k, i;
    if (!find) return out;
    find.lastIndex = 0;
    while ((m = find.exec(t))) {
      a = m.index; z = a + m[0].length;
      if (/\d/.test(t.charAt(a - 1) + t.charAt(z))) continue;
      d = m[0].replace(/\D/g, ''); n = map[d]; k = 0;
      if (!n) continue;
      for (i = a; i < z; i++) {
        if (/\d/.test(t[i])) out.push([i, ++k < d.length ? n[k - 1] || '' : n.slice(k - 1)]);
      }
    }
    return out;
  }
  function apply(t, e) {
    var o = '', p = 0;
    e.forEach(function (x) { o += t.slice(p, x[0]) + x[1]; p = x[0] + 1; });
    return o + t.slice(p);
  }
  // One run of text nodes that reads as one line: split numbers are matched across them.
  function fix(nodes) {
    var t = '', at = [], e, j = 0;
    nodes.forEach(function (n) { at.push(t.length); t += n.data; });
    if (!/\d/.test(t) || !(e = edits(t)).length) return;
    nodes.forEach(function (n, i) {
      var a = at[i], z = a + n.data.length, mine = [];
      for (; j < e.length && e[j][0] < z; j++) mine.push([e[j][0] - a, e[j][1]]);
      if (mine.length) n.data = apply(n.data, mine);
    });
  }
  function blocked(el) {
    return (el.closest && el.closest('[data-ctgw-noswap]')) || SKIP.test(el.nodeName);
  }
  function block(n) {
    while (n.parentNode && (n.nodeType != 1 || INLINE.test(n.nodeName))) n = n.parentNode;
    return n;
  }
  function swap(root) {
    root = root || D.body;
    if (root && root.nodeType == 3) root = root.parentNode;
    if (!find || !root || blocked(root)) return;
    // Per element: null when its text is left alone, else the block that text belongs to.
    // Memoised per element: a TreeWalker filter (a call into JS per node) cost more than this.
    var memo = new Map();
    function look(el) {
      var v = memo.get(el), up;
      if (v !== undefined) return v;
      up = el != root && el.parentElement ? look(el.parentElement) : el;
      v = up === null || SKIP.test(el.nodeName) || el.hasAttribute('data-ctgw-noswap') ? null :
        INLINE.test(el.nodeName) && up != el ? up : el;
      memo.set(el, v);
      return v;
    }
    var walk = D.createTreeWalker(root, 4), run = [], last = null, n, b;
    while ((n = walk.nextNode())) {
      b = n.parentNode.nodeType == 1 ? look(n.parentNode) : n.parentNode;
      if (b === null) continue;
      if (b != last && run.length) { fix(run); run = []; }
      last = b; run.push(n);
    }
    if (run.length) fix(run);
    [].forEach.call(root.querySelectorAll('a[href]'), link);
    if (root.nodeName == 'A') link(root);
  }
  function link(a) {
    var h = a.getAttribute('href'), e;
    if (/^(tel|sms|callto):/i.test(h) && !blocked(a) && (e = edits(h)).length) a.setAttribute('href', apply(h, e));
  }

  // Content added later (popups, route changes) is swapped once per frame, before it is painted.
  function watch() {
    if (observer || !W.MutationObserver) return;
    observer = new MutationObserver(function (list) {
      list.forEach(function (r) {
        if (r.type == 'characterData') queue.push(r.target);
        else if (r.type == 'attributes') queue.push(r.target);
        else [].forEach.call(r.addedNodes, function (n) { queue.push(n); });
      });
      if (!frame) frame = requestAnimationFrame(flush);
    });
    observer.observe(D.documentElement, {
      childList: true, subtree: true, characterData: true, attributes: true, attributeFilter: ['href']
    });
  }
  function flush() {
    var q = queue, seen = new Set();
    queue = []; frame = 0;
    q.forEach(function (n) {
      n = block(n);
      if (n.isConnected && !seen.has(n)) { seen.add(n); swap(n); }
    });
  }

  function use(s) {
    sess = s;
    H = s.h;
    rules(s.n);
    swap();
    watch();
    W.ctgw.numbers = s.n;
    var detail = { numbers: s.n, session_id: s.i };
    D.dispatchEvent(new CustomEvent('ctgw:numbers', { detail: detail }));
    if (typeof W.ctgwReady == 'function') try { W.ctgwReady(s.n); } catch (e) { return; }
    // Nothing leased (a bot, a pool rule): nothing to keep alive.
    if (find) beat(s.b + s.h * 1000 - now());
  }

  // One request, two seconds at most; any failure resolves to null and changes nothing.
  function call(path, body) {
    var ctl = W.AbortController && new AbortController();
    var t = setTimeout(function () { if (ctl) ctl.abort(); }, 2000);
    return fetch(api + path, {
      method: 'POST', credentials: 'omit', signal: ctl && ctl.signal,
      // text/plain keeps it a simple request: no CORS preflight round trip (the API reads JSON).
      headers: { 'Content-Type': 'text/plain' }, body: body ? JSON.stringify(body) : null
    }).then(function (r) {
      clearTimeout(t);
      // 410: the lease has ended; 404: the gateway does not know the session (a wiped store).
      return r.status == 410 || r.status == 404 ? { gone: 1 } : r.ok ? r.json() : null;
    }).catch(function () { return null; });
  }
  // The lease end on this browser's clock: `expires_in` (seconds from now) is immune to a
  // wrong clock; else ISO 8601 (microseconds cut to the milliseconds every engine parses).
  function expiry(r) {
    var v = r.expires_at;
    return typeof r.expires_in == 'number' ? now() + r.expires_in * 1000 :
      Date.parse(String(v).replace(/(\.\d{3})\d+/, '$1')) || now() + 6e4;
  }
  // Campaign tags in this URL; a landing with other tags than the session's is a new touch.
  function tags() { return (location.search.match(TAGS) || []).sort().join(''); }
  function start(tries) {
    var c = '';
    try { c = D.cookie; } catch (e) { c = ''; }
    var s = stored(c), a = tags();
    if (s && (!a || a == s.a)) return use(s);
    if (busy) return;
    // Another tab of this visitor is opening a session this page would keep (same tags, or
    // this page has none): wait up to 3 s for it rather than lease a second number; the mark
    // goes when that request ends.
    var p = read(PEND, c).split('|');
    tries = tries || 0;
    waiting = p.length > 1 && (!a || p[1] == a) && now() - p[0] < 3000 && tries < 30;
    if (waiting) {
      timer = setTimeout(function () { start(tries + 1); }, 100);
      return;
    }
    busy = 1;
    write(PEND, now() + '|' + a, 3);
    var vid = read('ctgw_vid', c);
    var body = { site: site, url: location.href, referrer: D.referrer };
    if (vid) body.visitor_id = vid;
    call('/v1/sessions', body).then(function (r) {
      if (!gone) write(PEND, '', 0);
      // A page load tries once; a page showing an ended lease's number tries again, later
      // (a failed try counts, also when it was not itself started by renew).
      if (!r || !r.numbers || !r.session_id) {
        if (pairs.length) { busy = 0; fails = fails || 1; renew(); }
        return;
      }
      busy = 0;
      if (r.visitor_id) write('ctgw_vid', r.visitor_id, 31536000);
      use(keep({
        i: r.session_id, e: expiry(r), h: r.heartbeat_seconds || 60, b: now(), a: a,
        n: r.numbers.map(function (x) { return { target: x.target, number: x.number, display: x.display }; })
      }));
    });
  }

  // Heartbeats only while the page is visible and not being left.
  function beat(ms) {
    clearTimeout(timer);
    if (gone || !sess || D.visibilityState == 'hidden') return;
    timer = setTimeout(function () {
      var s = sess;
      if (gone || !s || D.visibilityState == 'hidden') return;
      call('/v1/sessions/' + encodeURIComponent(s.i) + '/heartbeat').then(function (r) {
        if (s != sess) return;
        // The lease has ended or is unknown: go on with the visitor's next session if another
        // tab has stored it, else open one now (the number may go to someone else after the
        // cooldown). Another tab opening one meanwhile is waited for, as on a page load.
        if (r && r.gone) {
          var cur = stored();
          if (cur && cur.i != s.i) use(cur); else { write(KEY, '', 0); renew(); }
          return;
        }
        if (r) { fails = 0; s.b = now(); s.e = r.expires_at || r.expires_in ? expiry(r) : s.e; keep(s); }
        beat(s.h * 1000);
      });
    }, Math.max(ms, 0));
  }
  // A new session at once, then after 2, 4, 8... heartbeat intervals (10 min at most) while
  // renewals keep failing: a gateway that ends every lease or refuses sessions sees no loop.
  function renew() {
    sess = null;
    later(fails ? Math.min(H * 1000 * Math.pow(2, fails), 6e5) : 0);
    fails++;
  }
  // Start a session `ms` from now if the page is shown then; else the next show starts it.
  function later(ms) {
    clearTimeout(timer);
    next = now() + ms;
    timer = setTimeout(function () { if (!gone && D.visibilityState != 'hidden') start(); }, ms);
  }
  function shown() {
    clearTimeout(timer);
    if (gone || D.visibilityState == 'hidden') return;
    var s = stored();
    // Same session (maybe kept alive by another tab), a newer one from another tab, or none.
    if (s && sess && s.i == sess.i) { sess = s; beat(s.b + s.h * 1000 - now()); }
    else if (s) use(s);
    // A new session after a lease ended (not before its back-off), or the wait for another
    // tab's session, cut short.
    else if (pairs.length || waiting) { sess = null; later(next - now()); }
  }
  D.addEventListener('visibilitychange', shown);
  W.addEventListener('pagehide', function () {
    // Leaving before our session came: other tabs must not wait for it.
    if (busy && !sess) write(PEND, '', 0);
    gone = 1; clearTimeout(timer);
  });
  W.addEventListener('pageshow', function (ev) { if (ev.persisted) { gone = 0; shown(); } });

  W.ctgw = { swap: swap, numbers: [] };
  if (site) start();
})(window, document);
