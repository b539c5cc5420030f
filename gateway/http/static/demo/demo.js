// Demo site behaviour: a popup after load, client-side routes, and the ctgw:numbers event shown.
(function () {
  'use strict';
  var status = document.getElementById('ctgw-status');

  function show(numbers) {
    if (!status || !numbers || !numbers.length) return;
    var none = numbers.every(function (n) { return n.number === n.target; });
    // A bot (HeadlessChrome is one) is answered with the site's own numbers: say so.
    status.textContent = none ? 'No tracking number for this visit, so the numbers stay the ' +
      'business\'s own (bots get none, and a headless browser counts as one).' :
      'Tracking number for this visit: ' +
      numbers.map(function (n) { return n.display || n.number; }).join(', ');
  }
  document.addEventListener('ctgw:numbers', function (ev) { show(ev.detail.numbers); });
  if (window.ctgw && window.ctgw.numbers) show(window.ctgw.numbers);

  // A popup that appears after load: content swap.js has never seen.
  setTimeout(function () {
    var box = document.createElement('div');
    box.id = 'popup';
    box.className = 'popup';
    box.innerHTML = 'Need a plumber now? Call <strong id="popup-number">(415) 555-0100</strong>' +
      ' or <a id="popup-tel" href="tel:4155550100">tap to call</a>.';
    document.body.appendChild(box);
  }, 800);

  // Client-side routes: history.pushState and new content rendered without a page load.
  var routes = {
    pricing: '<h1>Pricing</h1><p>Call-out from $89. Questions about a quote? Call ' +
      '<span id="route-number">415-555-0100</span> or ' +
      '<a id="route-tel" href="tel:+1-415-555-0100">call us</a>.</p>'
  };
  var home = document.getElementById('view');
  var homeHtml = home ? home.innerHTML : '';
  function render(name) {
    if (!home) return;
    home.innerHTML = routes[name] || homeHtml;
  }
  document.addEventListener('click', function (ev) {
    var link = ev.target.closest && ev.target.closest('a[data-route]');
    if (!link || !home) return;
    ev.preventDefault();
    history.pushState({ route: link.dataset.route }, '', link.href);
    render(link.dataset.route);
  });
  window.addEventListener('popstate', function (ev) { render(ev.state && ev.state.route); });
  if (location.pathname.replace(/\/$/, '').endsWith('/pricing')) render('pricing');
})();
